'use strict';
// Fails when the binding's declarations (lib/abi.js) drift from include/keyward.h, the
// contract: lib/abi.js must be exactly what scripts/gen-abi.js generates from the header
// (regenerate with `node bindings/node/scripts/gen-abi.js`); then, as a check of the generator
// itself, every function prototype, struct field, typedef, constant and enum value, and (with a
// C compiler) every struct size and field offset as the C compiler lays them out.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const abi = require('../lib/abi');
const { _native } = require('../lib/store');
const { splitPrototype } = require('../lib/native');
const { parseHeaderFile, norm } = require('../scripts/c-header');
const { generate, OUTPUT } = require('../scripts/gen-abi');
const { HEADER, tempDir } = require('./helpers/common');

const header = parseHeaderFile(HEADER);

test('lib/abi.js is exactly what scripts/gen-abi.js generates from include/keyward.h', () => {
  assert.equal(OUTPUT, require.resolve('../lib/abi'));
  const expected = generate(fs.readFileSync(HEADER, 'utf8'));
  const current = fs.readFileSync(OUTPUT, 'utf8');
  if (current !== expected) {
    const a = current.split('\n');
    const b = expected.split('\n');
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    assert.fail(
      `lib/abi.js is stale (first difference at line ${i + 1}: ${JSON.stringify(a[i])} but the generator writes ` +
        `${JSON.stringify(b[i])}): run \`node bindings/node/scripts/gen-abi.js\` and commit lib/abi.js`,
    );
  }
});

test('every function of the header is declared with the same prototype, and no other', () => {
  const declared = new Map(abi.FUNCTIONS.map((p) => [splitPrototype(p).name, norm(p)]));
  const inHeader = [...header.functions.keys()].sort();
  assert.ok(inHeader.length >= 31, `parsed ${inHeader.length} functions from the header`);
  assert.deepEqual([...declared.keys()].sort(), inHeader, 'function names');
  for (const [name, f] of header.functions) {
    assert.equal(declared.get(name), f.text, `prototype of ${name}`);
  }
});

test('the loaded library exports every declared function', () => {
  for (const p of abi.FUNCTIONS) {
    const { name } = splitPrototype(p);
    assert.equal(typeof _native.fn[name], 'function', name);
  }
});

test('every struct has the header fields, types and order', () => {
  assert.deepEqual(Object.keys(abi.STRUCTS).sort(), [...header.structs.keys()].sort(), 'struct names');
  for (const [name, fields] of header.structs) {
    const expected = fields.map((f) => [f.array === null ? f.type : `${f.type}[${f.array}]`, f.name]);
    const declared = abi.STRUCTS[name].map(([t, n]) => [norm(t), n]);
    assert.deepEqual(declared, expected, `fields of ${name}`);
  }
});

test('typedefs, #define constants and enum values match the header', () => {
  assert.deepEqual(new Map(Object.entries(abi.TYPEDEFS)), header.typedefs, 'typedefs');
  const defines = new Map(Object.entries(abi.DEFINES).map(([k, v]) => [k, BigInt(v)]));
  assert.deepEqual(defines, header.defines, '#define constants');
  assert.deepEqual(Object.keys(abi.ENUMS).sort(), [...header.enums.keys()].sort(), 'enum names');
  for (const [name, values] of header.enums) {
    const declared = new Map(Object.entries(abi.ENUMS[name]).map(([k, v]) => [k, BigInt(v)]));
    assert.deepEqual(declared, values, `values of enum ${name}`);
  }
  assert.equal(abi.ABI_VERSION, Number(header.defines.get('KW_ABI_VERSION')));
});

function cCompiler() {
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang']) {
    if (!cc) continue;
    try {
      execFileSync(cc, ['--version'], { stdio: 'ignore' });
      return cc;
    } catch {
      // try the next one
    }
  }
  return null;
}

test('struct sizes and field offsets equal the C compiler\'s', (t) => {
  const cc = cCompiler();
  if (!cc) {
    t.skip('no C compiler (cc, gcc or clang): layouts checked by field list only');
    return;
  }
  const dir = tempDir(t);
  const lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "keyward.h"', 'int main(void) {'];
  for (const [name, fields] of header.structs) {
    lines.push(`  printf("${name} size %zu\\n", sizeof(struct ${name}));`);
    for (const f of fields) lines.push(`  printf("${name}.${f.name} %zu\\n", offsetof(struct ${name}, ${f.name}));`);
  }
  lines.push('  return 0;', '}');
  const src = path.join(dir, 'layout.c');
  fs.writeFileSync(src, lines.join('\n'));
  const exe = path.join(dir, 'layout');
  execFileSync(cc, ['-std=c11', '-I', path.dirname(HEADER), src, '-o', exe]);
  const c = new Map(
    execFileSync(exe, { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => {
        const [k, ...rest] = l.split(' ');
        return [rest.length === 2 ? `${k} size` : k, Number(rest[rest.length - 1])];
      }),
  );
  for (const [name, fields] of header.structs) {
    const s = _native.structs[name];
    assert.equal(s.size, c.get(`${name} size`), `sizeof(${name})`);
    for (const f of fields) assert.equal(s.members[f.name].offset, c.get(`${name}.${f.name}`), `offsetof(${name}, ${f.name})`);
  }
});

test('the header parser itself sees everything (guards the drift test)', () => {
  const text = fs.readFileSync(HEADER, 'utf8');
  const prototypes = (text.match(/^[a-z0-9_ ]+\**\s*\**kw_[a-z_]+\(/gm) || []).length;
  assert.equal(header.functions.size, prototypes, 'every prototype line is parsed');
  assert.equal(header.structs.size, (text.match(/^typedef struct kw_/gm) || []).length);
});
