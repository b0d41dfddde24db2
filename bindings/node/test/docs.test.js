'use strict';
// The examples of the README's Node section run as written (with a temporary store path).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { REPO, tempDir } = require('./helpers/common');

// The Node section of the README (up to the next top-level section).
const FULL = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const START = FULL.indexOf('## Use from Node.js');
const README = FULL.slice(START, FULL.indexOf('\n## ', START + 1));
const PACKAGE = path.resolve(__dirname, '..');

/** The first ```js block after a heading. */
function block(heading) {
  const at = README.indexOf(heading);
  assert.ok(at >= 0, `heading ${heading}`);
  const m = /```js\n([\s\S]*?)```/.exec(README.slice(at));
  return m[1];
}

function run(source) {
  const r = spawnSync(process.execPath, ['-e', source], { cwd: PACKAGE, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('README: the five-line example', (t) => {
  const db = path.join(tempDir(t), 'keys.redb');
  const code = block('### Five lines');
  assert.equal(code.trim().split('\n').length, 5);
  const out = run(code.replace('/var/lib/myapp/keys.redb', db));
  assert.match(out, /^give this to the customer once: kw_live_\w+\ntrue\n$/);
});

test('README: the key management example', (t) => {
  const db = path.join(tempDir(t), 'keys.redb');
  const code = block('### Manage keys');
  run(`const { Store } = require('keyward'); const store = new Store(${JSON.stringify(db)});\n${code}\nstore.close();`);
});
