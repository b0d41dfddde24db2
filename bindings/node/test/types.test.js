'use strict';
// The TypeScript declarations: they compile with `tsc --strict` against a file using the
// whole documented API (test/types/usage.ts), and declare every runtime export.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const keyward = require('..');

const PACKAGE = path.resolve(__dirname, '..');

test('index.d.ts declares every export of index.js, and nothing else', () => {
  const dts = fs.readFileSync(path.join(PACKAGE, 'index.d.ts'), 'utf8');
  const declared = new Set([...dts.matchAll(/^export (?:declare )?(?:class|function|const) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual([...declared].sort(), Object.keys(keyward).sort());
});

test('index.d.ts compiles against test/types/usage.ts with tsc --strict', (t) => {
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [PACKAGE] });
  } catch {
    return t.skip('typescript is not installed (npm install in bindings/node)');
  }
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types')], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `tsc:\n${r.stdout}${r.stderr}`);
});

test('ES modules import every export by name', () => {
  const names = Object.keys(keyward);
  const source = `import * as k from ${JSON.stringify(PACKAGE + '/index.js')}; import d from ${JSON.stringify(PACKAGE + '/index.js')};
    const missing = ${JSON.stringify(names)}.filter((n) => !(n in k) || k[n] !== d[n]);
    console.log(JSON.stringify(missing));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
});
