#!/usr/bin/env node
'use strict';
/**
 * The `prepare` script of the keyward npm packages in a checkout: builds libkeyward
 * (`cargo build --release --lib -p keyward --features postgres` at the repository root) and copies it into the
 * package that npm is about to pack or link, so a package installed from a folder or packed
 * into a tarball carries the library it was built with.
 *
 *   node scripts/build-library.js platform   in bindings/node/platforms/<platform>-<arch>:
 *                                            the library goes into that package
 *   node scripts/build-library.js bundle     in bindings/node: into native/, unless this
 *                                            checkout has a per-platform package for this
 *                                            machine (which then carries the library alone)
 *
 * npm runs `prepare` in the package folder for `npm install --install-links <folder>`,
 * `npm install <folder>` and `npm pack`; never for a tarball or registry install. When npm
 * runs it for the development install (`npm ci` in bindings/node, which links the
 * per-platform packages as workspaces; INIT_CWD is that folder), there is nothing to
 * package and the build is skipped: the tests load the library through KEYWARD_LIB. Honours CARGO_TARGET_DIR (the path of the built
 * library comes from cargo's own messages).
 */

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { libraryFileName, platformPackageName } = require('../lib/platform');

const NODE_DIR = path.resolve(__dirname, '..');
const REPO = path.resolve(NODE_DIR, '..', '..');
const packageDir = process.cwd();
const pkg = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
const mode = process.argv[2];

function fail(message) {
  console.error(`${pkg.name} prepare: ${message}`);
  process.exit(1);
}

if (mode !== 'platform' && mode !== 'bundle') fail('usage: build-library.js platform|bundle');

const command = process.env.npm_command;
const initCwd = process.env.INIT_CWD ? path.resolve(process.env.INIT_CWD) : null;
if ((command === 'install' || command === 'ci') && (initCwd === packageDir || initCwd === NODE_DIR)) {
  console.error(`${pkg.name} prepare: development install of the package itself, libkeyward not copied (use KEYWARD_LIB)`);
  process.exit(0);
}

const file = libraryFileName();
let dest;
if (mode === 'platform') {
  const fits = (list, value) => !Array.isArray(list) || list.includes(value);
  if (!fits(pkg.os, process.platform) || !fits(pkg.cpu, process.arch) || pkg.name !== platformPackageName()) {
    fail(`this package is for ${pkg.os}-${pkg.cpu}; this machine needs ${platformPackageName()} (build it there)`);
  }
  dest = path.join(packageDir, file);
} else {
  dest = path.join(packageDir, 'native', file);
  const own = path.join(NODE_DIR, 'platforms', platformPackageName().replace('@keyward/lib-', ''), 'package.json');
  if (fs.existsSync(own)) {
    // The library comes with the per-platform package; a copy left by an earlier bundle
    // must not ship in this package as well.
    fs.rmSync(dest, { force: true });
    console.error(`${pkg.name} prepare: ${platformPackageName()} carries libkeyward on this platform; nothing bundled`);
    process.exit(0);
  }
}

if (!fs.existsSync(path.join(REPO, 'Cargo.toml'))) fail(`${REPO} is not a keyward checkout (no Cargo.toml)`);
const cargo = process.env.CARGO || 'cargo';
// With PostgreSQL support (`upstream` option, README "Several hosts"), as every shipped library.
console.error(`${pkg.name} prepare: cargo build --release --lib -p keyward --features postgres (in ${REPO})`);
const build = spawnSync(cargo, ['build', '--release', '--lib', '-p', 'keyward', '--features', 'postgres', '--message-format=json-render-diagnostics'], {
  cwd: REPO,
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
  maxBuffer: 256 * 1024 * 1024,
});
if (build.error) {
  fail(
    build.error.code === 'ENOENT'
      ? 'building libkeyward needs Rust (cargo, https://rustup.rs); without it, install the tarballs made where it is (README, "Use from Node.js")'
      : `cannot run ${cargo}: ${build.error.message}`,
  );
}
if (build.status !== 0) fail(`cargo build failed (exit ${build.status})`);

let built = null;
for (const line of build.stdout.split('\n')) {
  if (!line.startsWith('{')) continue;
  const msg = JSON.parse(line);
  if (msg.reason === 'compiler-artifact' && msg.target.name === 'keyward' && msg.target.kind.includes('cdylib')) {
    built = msg.filenames.find((f) => path.basename(f) === file) || built;
  }
}
if (!built) fail(`cargo built no ${file}`);

// Copy then rename, so a process loading the package never sees half a library.
fs.mkdirSync(path.dirname(dest), { recursive: true });
const tmp = `${dest}.${process.pid}.tmp`;
fs.copyFileSync(built, tmp);
fs.chmodSync(tmp, 0o755);
fs.renameSync(tmp, dest);
console.error(`${pkg.name} prepare: ${path.relative(packageDir, dest)} <- ${built}`);
