'use strict';
// Loading libkeyward: KEYWARD_LIB, the search order, and the refusal of a library with
// another ABI version (a stand-in library compiled with the C compiler, when there is one).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const abi = require('../lib/abi');
const { tempDir } = require('./helpers/common');

const PACKAGE = path.resolve(__dirname, '..');

/** Requires the package in a fresh process with `env`; returns {status, stdout, stderr}. */
function requireWith(env) {
  const script = `
    try {
      const k = require(${JSON.stringify(PACKAGE)});
      console.log(JSON.stringify({ loaded: k.library }));
    } catch (e) {
      console.log(JSON.stringify({ name: e.name, message: e.message, found: e.found, expected: e.expected }));
    }`;
  const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function cc() {
  for (const c of [process.env.CC, 'cc', 'gcc', 'clang']) {
    if (c && spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0) return c;
  }
  return null;
}

test('KEYWARD_LIB names the library; the loaded one is reported', () => {
  const lib = require('..').library.file;
  const r = requireWith({ KEYWARD_LIB: lib });
  assert.equal(r.loaded.file, path.resolve(lib));
  assert.equal(r.loaded.abiVersion, abi.ABI_VERSION);
});

test('a missing library is a clear LibraryError naming what was tried', () => {
  const r = requireWith({ KEYWARD_LIB: '/nonexistent/libkeyward.so' });
  assert.equal(r.name, 'LibraryError');
  assert.match(r.message, /cannot load libkeyward/);
  assert.match(r.message, /\/nonexistent\/libkeyward\.so: no such file/);
  assert.match(r.message, /KEYWARD_LIB/);
});

test('without KEYWARD_LIB: the package\'s native/ directory, then the repository build, then the system', () => {
  const c = abi.libraryCandidates({});
  const file = abi.libraryFileName();
  assert.deepEqual(c, [
    path.join(PACKAGE, 'native', file),
    path.resolve(PACKAGE, '..', '..', 'target', 'release', file),
    path.resolve(PACKAGE, '..', '..', 'target', 'debug', file),
    file,
  ]);
  assert.deepEqual(abi.libraryCandidates({ KEYWARD_LIB: 'x/lib.so' }), [path.resolve('x/lib.so')]);
});

test('a library with another ABI version is refused at load (AbiMismatchError)', (t) => {
  const compiler = cc();
  if (!compiler) return t.skip('no C compiler to build a stand-in library');
  const dir = tempDir(t);
  const src = path.join(dir, 'fake.c');
  fs.writeFileSync(src, 'unsigned int kw_abi_version(void) { return 999; }\n');
  const lib = path.join(dir, 'libfake.so');
  execFileSync(compiler, ['-shared', '-fPIC', src, '-o', lib]);
  const r = requireWith({ KEYWARD_LIB: lib });
  assert.equal(r.name, 'AbiMismatchError');
  assert.equal(r.found, 999);
  assert.equal(r.expected, abi.ABI_VERSION);
  assert.match(r.message, /C ABI version 999, but this binding needs version 1/);
});

test('a library that is not keyward is refused at load', (t) => {
  const compiler = cc();
  if (!compiler) return t.skip('no C compiler to build a stand-in library');
  const dir = tempDir(t);
  const src = path.join(dir, 'other.c');
  fs.writeFileSync(src, 'int something_else(void) { return 1; }\n');
  const lib = path.join(dir, 'libother.so');
  execFileSync(compiler, ['-shared', '-fPIC', src, '-o', lib]);
  const r = requireWith({ KEYWARD_LIB: lib });
  assert.equal(r.name, 'LibraryError');
  assert.match(r.message, /is not a keyward library/);
});
