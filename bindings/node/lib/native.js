'use strict';
/**
 * Loads libkeyward, refuses a library of another ABI version, and declares every `kw_`
 * function with koffi from the prototypes of lib/abi.js (generated from include/keyward.h).
 * @module keyward/lib/native
 */

const fs = require('node:fs');
const koffi = require('koffi');
const abi = require('./abi');
const platform = require('./platform');
const { LibraryError, AbiMismatchError } = require('./errors');

// --- koffi types -----------------------------------------------------------------------

/**
 * Turns a C type of the header into a koffi type. Types are anonymous koffi objects (no
 * global koffi type names), so two copies of this module can coexist in one process.
 */
function makeTypes() {
  const structs = {};
  const resolve = (ctype) => {
    let t = ctype.replace(/\bconst\b/g, '').replace(/\bstruct\b/g, '').replace(/\s+/g, ' ').trim();
    let arr = t.match(/^(\w+)\[(\d+)\]$/);
    if (arr) return koffi.array(resolve(arr[1]), Number(arr[2]), 'Array');
    let stars = 0;
    while (t.endsWith('*')) {
      stars++;
      t = t.slice(0, -1).trim();
    }
    if (structs[t]) {
      let type = structs[t];
      for (let i = 0; i < stars; i++) type = koffi.pointer(type);
      return type;
    }
    // Scalars and pointers to scalars by name: koffi reads `char *` as a string.
    return koffi.type(`${abi.TYPEDEFS[t] || t}${stars ? ' ' + '*'.repeat(stars) : ''}`);
  };
  for (const [name, fields] of Object.entries(abi.STRUCTS)) {
    const members = {};
    for (const [ctype, field] of fields) members[field] = resolve(ctype);
    structs[name] = koffi.struct(members);
  }
  return { structs, resolve };
}

/** Splits a prototype into name, return type and parameter types. */
function splitPrototype(proto) {
  const open = proto.indexOf('(');
  const head = proto.slice(0, open);
  const name = head.match(/(kw_\w+)$/)[1];
  const ret = head.slice(0, head.length - name.length).trim();
  const inner = proto.slice(open + 1, -1).trim();
  const params = inner === 'void' ? [] : inner.split(',').map((p) => {
    const m = p.trim().match(/^(.*?)(\w+)$/);
    return { type: m[1].trim(), name: m[2] };
  });
  return { name, ret, params };
}


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
  const types = makeTypes();
  const fn = {};
  for (const proto of abi.FUNCTIONS) {
    const { name, ret, params } = splitPrototype(proto);
    fn[name] = lib.func(name, types.resolve(ret), params.map((p) => types.resolve(p.type)));
  }
  return { lib, file, fn, structs: types.structs };
}

module.exports = { load, koffi, makeTypes, splitPrototype };
