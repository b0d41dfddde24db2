'use strict';
// Loading libkeyward: KEYWARD_LIB, the search order (per-platform package, then the bundled
// library), the packages' metadata, and the refusal of a library with another ABI version
// (a stand-in library compiled with the C compiler, when there is one).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const abi = require('../lib/abi');
const platform = require('../lib/platform');
const { tempDir } = require('./helpers/common');

const PACKAGE = path.resolve(__dirname, '..');

/** Requires the package (or `pkg`) in a fresh process with `env`; returns what it printed. */
function requireWith(env, pkg = PACKAGE) {
  const script = `
    try {
      const k = require(${JSON.stringify(pkg)});
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
  assert.match(r.message, /\/nonexistent\/libkeyward\.so \(KEYWARD_LIB\): no such file/);
  assert.match(r.message, /KEYWARD_LIB/);
});

test('the per-platform package name', () => {
  assert.equal(platform.platformPackageName('linux', 'x64', false), '@keyward/lib-linux-x64');
  assert.equal(platform.platformPackageName('linux', 'arm64', true), '@keyward/lib-linux-arm64-musl');
  assert.equal(platform.platformPackageName('darwin', 'arm64', false), '@keyward/lib-darwin-arm64');
  assert.equal(platform.libraryFileName('linux'), 'libkeyward.so');
  assert.equal(platform.libraryFileName('darwin'), 'libkeyward.dylib');
});

test('candidates: KEYWARD_LIB alone; else the per-platform package, then the bundled library', () => {
  const file = platform.libraryFileName();
  const name = platform.platformPackageName();
  const notInstalled = () => {
    throw Object.assign(new Error('not found'), { code: 'MODULE_NOT_FOUND' });
  };
  assert.deepEqual(platform.libraryCandidates({}, notInstalled), [
    { file: null, source: name },
    { file: path.join(PACKAGE, 'native', file), source: 'bundled' },
  ]);
  const installed = (request) => {
    assert.equal(request, `${name}/package.json`);
    return `/app/node_modules/${name}/package.json`;
  };
  assert.deepEqual(platform.libraryCandidates({}, installed)[0], { file: `/app/node_modules/${name}/${file}`, source: name });
  assert.deepEqual(platform.libraryCandidates({ KEYWARD_LIB: 'x/lib.so' }, installed), [
    { file: path.resolve('x/lib.so'), source: 'KEYWARD_LIB' },
  ]);
});

test('without KEYWARD_LIB, an installed package loads from its platform package, else from native/', (t) => {
  // An app's node_modules made by hand: keyward (its JavaScript) and koffi.
  const app = tempDir(t);
  const modules = path.join(app, 'node_modules');
  const pkg = path.join(modules, 'keyward');
  fs.mkdirSync(pkg, { recursive: true });
  for (const f of ['index.js', 'package.json', 'lib']) fs.cpSync(path.join(PACKAGE, f), path.join(pkg, f), { recursive: true });
  fs.symlinkSync(path.join(PACKAGE, 'node_modules', 'koffi'), path.join(modules, 'koffi'));
  const built = require('..').library.file;
  const name = platform.platformPackageName();
  const file = platform.libraryFileName();

  let r = requireWith({ KEYWARD_LIB: '' }, pkg);
  assert.equal(r.name, 'LibraryError');
  assert.ok(r.message.includes(`install ${name} with keyward`), r.message);
  assert.ok(r.message.includes(`${name}: not installed`), r.message);
  assert.ok(r.message.includes(`${path.join(pkg, 'native', file)} (bundled): no such file`), r.message);

  fs.mkdirSync(path.join(pkg, 'native'));
  fs.copyFileSync(built, path.join(pkg, 'native', file));
  r = requireWith({ KEYWARD_LIB: '' }, pkg);
  assert.equal(r.loaded.file, path.join(pkg, 'native', file));

  const own = path.join(modules, ...name.split('/'));
  fs.mkdirSync(own, { recursive: true });
  fs.writeFileSync(path.join(own, 'package.json'), JSON.stringify({ name, version: '0.1.0' }));
  fs.copyFileSync(built, path.join(own, file));
  r = requireWith({ KEYWARD_LIB: '' }, pkg);
  assert.equal(r.loaded.file, path.join(own, file));
  assert.equal(r.loaded.abiVersion, abi.ABI_VERSION);
});

test('package metadata: every per-platform package is an optional dependency with os/cpu', () => {
  const main = JSON.parse(fs.readFileSync(path.join(PACKAGE, 'package.json'), 'utf8'));
  const dirs = fs.readdirSync(path.join(PACKAGE, 'platforms'));
  assert.ok(dirs.length > 0);
  for (const dir of dirs) {
    const p = JSON.parse(fs.readFileSync(path.join(PACKAGE, 'platforms', dir, 'package.json'), 'utf8'));
    assert.equal(p.os.length, 1);
    assert.equal(p.cpu.length, 1);
    const musl = Array.isArray(p.libc) && p.libc[0] === 'musl';
    assert.equal(p.name, platform.platformPackageName(p.os[0], p.cpu[0], musl));
    assert.equal(p.name, `@keyward/lib-${dir}`);
    assert.equal(p.version, main.version);
    assert.equal(main.optionalDependencies[p.name], main.version, `${p.name} in optionalDependencies`);
    assert.deepEqual(p.files, [platform.libraryFileName(p.os[0])]);
    assert.match(p.scripts.prepare, /build-library\.js platform$/);
  }
  assert.deepEqual(Object.keys(main.optionalDependencies).sort(), dirs.map((d) => `@keyward/lib-${d}`).sort());
  assert.ok(main.files.includes('native/'));
  assert.match(main.scripts.prepare, /build-library\.js bundle$/);
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
