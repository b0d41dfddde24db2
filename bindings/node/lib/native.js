'use strict';
/**
 * Loads libkeyward, refuses a library of another ABI version, and declares every `kw_`
 * function with koffi from the prototypes of lib/abi.js.
 * @module keyward/lib/native
 */

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');
const abi = require('./abi');
const { LibraryError, AbiMismatchError } = require('./errors');

/**
 * Opens the first library found (see {@link abi.libraryCandidates}) and checks its ABI.
 * @param {NodeJS.ProcessEnv} [env]
 */
function load(env = process.env) {
  const candidates = abi.libraryCandidates(env);
  const explicit = Boolean(env.KEYWARD_LIB);
  const tried = [];
  for (const file of candidates) {
    const bare = !path.isAbsolute(file);
    if (!bare && !fs.existsSync(file)) {
      tried.push(`${file}: no such file`);
      continue;
    }
    let lib;
    try {
      lib = koffi.load(file);
    } catch (e) {
      tried.push(`${file}: ${e.message}`);
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
  const hint = explicit
    ? 'KEYWARD_LIB names a file that cannot be loaded'
    : 'set KEYWARD_LIB to the path of libkeyward, or build it in the repository with `cargo build --release`';
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
