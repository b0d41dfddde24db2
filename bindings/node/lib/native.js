'use strict';
/**
 * Loads libkeyward, refuses a library of another ABI version, and declares every `kw_`
 * function with koffi from the prototypes of lib/abi.js.
 * @module keyward/lib/native
 */

const fs = require('node:fs');
const koffi = require('koffi');
const abi = require('./abi');
const platform = require('./platform');
const { LibraryError, AbiMismatchError } = require('./errors');

/**
 * Opens the first library found (see {@link platform.libraryCandidates}: KEYWARD_LIB, the
 * per-platform package, the bundled library) and checks its ABI.
 * @param {NodeJS.ProcessEnv} [env]
 */
function load(env = process.env) {
  const tried = [];
  for (const { file, source } of platform.libraryCandidates(env)) {
    if (file === null) {
      tried.push(`${source}: not installed`);
      continue;
    }
    if (!fs.existsSync(file)) {
      tried.push(`${file} (${source}): no such file`);
      continue;
    }
    let lib;
    try {
      lib = koffi.load(file);
    } catch (e) {
      tried.push(`${file} (${source}): ${e.message}`);
      continue;
    }
    let abiVersion;
    try {
      abiVersion = lib.func('kw_abi_version', 'uint32_t', []);
    } catch (e) {
      throw new LibraryError(`keyward: ${file} is not a keyward library (no kw_abi_version: ${e.message})`);
    }
    const found = abiVersion();
    if (found !== abi.ABI_VERSION) throw new AbiMismatchError(file, found, abi.ABI_VERSION);
    return declare(lib, file);
  }
  const hint = env.KEYWARD_LIB
    ? 'KEYWARD_LIB names a file that cannot be loaded'
    : `install ${platform.platformPackageName()} with keyward (the README, "Use from Node.js", says how, ` +
      'from a clone or from tarballs), or set KEYWARD_LIB to the path of a libkeyward built with `cargo build --release`';
  throw new LibraryError(`keyward: cannot load libkeyward (${hint}); tried:\n  ${tried.join('\n  ')}`);
}

/** Declares every function of the ABI on an opened library. */
function declare(lib, file) {
  const types = abi.makeTypes();
  const fn = {};
  for (const proto of abi.FUNCTIONS) {
    const { name, ret, params } = abi.splitPrototype(proto);
    fn[name] = lib.func(name, types.resolve(ret), params.map((p) => types.resolve(p.type)));
  }
  return { lib, file, fn, structs: types.structs };
}

module.exports = { load, koffi };
