'use strict';
/**
 * Where libkeyward is looked for. No koffi here: the packages' prepare script
 * (scripts/build-library.js) uses it too, before koffi is installed.
 * @module keyward/lib/platform
 */

const path = require('node:path');

/** The library file name on this platform. */
function libraryFileName(platform = process.platform) {
  if (platform === 'darwin') return 'libkeyward.dylib';
  if (platform === 'win32') return 'keyward.dll';
  return 'libkeyward.so';
}

/** Whether this Linux runs on musl rather than glibc (Alpine): its report names no glibc. */
function isMusl() {
  if (process.platform !== 'linux') return false;
  const report = process.report && process.report.getReport ? process.report.getReport() : null;
  return Boolean(report) && !report.header.glibcVersionRuntime;
}

/**
 * The per-platform package that carries the library for this machine, as koffi, sharp and
 * esbuild ship binaries: `@keyward/lib-<platform>-<arch>` (`-musl` on a musl Linux), listed
 * in the main package's `optionalDependencies` with `os`/`cpu` so npm installs only the one
 * that fits.
 */
function platformPackageName(platform = process.platform, arch = process.arch, musl = isMusl()) {
  return `@keyward/lib-${platform}-${arch}${musl ? '-musl' : ''}`;
}

/**
 * Where the library is looked for, in order: `KEYWARD_LIB` (alone, when set: an override);
 * the per-platform package; the library bundled in this package's `native/` folder (a
 * package installed from a checkout on a platform without its own package). Each candidate
 * is `{file, source}`; `file` is null for a per-platform package that is not installed.
 * @param {NodeJS.ProcessEnv} [env]
 * @param {(request: string) => string} [resolve] module resolution (require.resolve)
 */
function libraryCandidates(env = process.env, resolve = require.resolve) {
  const file = libraryFileName();
  if (env.KEYWARD_LIB) return [{ file: path.resolve(env.KEYWARD_LIB), source: 'KEYWARD_LIB' }];
  const name = platformPackageName();
  let dir = null;
  try {
    dir = path.dirname(resolve(`${name}/package.json`));
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
  }
  return [
    { file: dir && path.join(dir, file), source: name },
    { file: path.join(__dirname, '..', 'native', file), source: 'bundled' },
  ];
}

module.exports = { libraryFileName, platformPackageName, libraryCandidates, isMusl };
