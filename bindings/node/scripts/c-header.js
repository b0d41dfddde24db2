'use strict';
// A small parser for include/keyward.h (cbindgen output): function prototypes, structs,
// #define constants and enum values. scripts/gen-abi.js generates lib/abi.js from what it
// finds; test/abi-drift.test.js checks that file and the library against it.

const fs = require('node:fs');

/** Removes C comments and preprocessor lines (keeping #define lines apart). */
function strip(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
}

/** Normalizes a C type or declaration: single spaces, `*` attached to the name side. */
function norm(s) {
  return s.replace(/\s+/g, ' ').replace(/\s*\*\s*/g, ' *').replace(/\( /g, '(').replace(/ \)/g, ')').trim();
}

/** Evaluates a simple constant expression of the header (integers, * + - and parentheses). */
function evalConst(expr) {
  const e = expr.replace(/UINT64_MAX/g, '18446744073709551615n').replace(/(\d+)(?!n|\d)/g, '$1n');
  if (!/^[\d\sn()*+\-]+$/.test(e)) return undefined;
  // eslint-disable-next-line no-new-func
  return Function(`"use strict"; return (${e});`)();
}

/**
 * Parses the header text.
 * @returns {{functions: Map<string,{ret:string,params:{type:string,name:string}[],text:string}>,
 *   structs: Map<string,{type:string,name:string,array:number|null}[]>,
 *   defines: Map<string,bigint>, enums: Map<string,Map<string,bigint>>, typedefs: Map<string,string>}}
 */
function parseHeader(text) {
  const defines = new Map();
  for (const m of text.matchAll(/^#define (KW_[A-Z0-9_]+) (.+)$/gm)) {
    const v = evalConst(m[2]);
    if (v !== undefined) defines.set(m[1], v);
  }
  const code = strip(text)
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/extern "C" \{/g, '')
    .replace(/\}\s*(?=\n*$)/, '');
  const enums = new Map();
  for (const m of code.matchAll(/enum (kw_[a-z_]+)\s*(?::\s*uint32_t\s*)?\{([^}]*)\}/g)) {
    const values = new Map();
    for (const item of m[2].split(',')) {
      const mm = item.trim().match(/^([A-Z0-9_]+)\s*=\s*(.+)$/);
      if (mm) values.set(mm[1], evalConst(mm[2]));
    }
    enums.set(m[1], values);
  }
  const typedefs = new Map();
  for (const m of code.matchAll(/typedef ([a-z0-9_ ]+?) (kw_[a-z_]+);/g)) {
    if (!m[1].startsWith('enum')) typedefs.set(m[2], m[1].trim());
  }
  const structs = new Map();
  for (const m of code.matchAll(/typedef struct (kw_[a-z_]+)\s*\{([^}]*)\}\s*(kw_[a-z_]+);/g)) {
    const fields = [];
    for (const decl of m[2].split(';')) {
      const d = decl.replace(/\s+/g, ' ').trim();
      if (!d) continue;
      const mm = d.match(/^(.*?)([a-z_0-9]+)(?:\[(\d+)\])?$/);
      fields.push({ type: norm(mm[1]), name: mm[2], array: mm[3] ? Number(mm[3]) : null });
    }
    structs.set(m[1], fields);
  }
  const functions = new Map();
  for (const chunk of code.split(/[;{}]/)) {
    const m = chunk.match(/^\s*((?:const )?[a-z0-9_]+ \**\s*(kw_[a-z_0-9]+)\(([^)]*)\))\s*$/);
    if (!m) continue;
    const text = norm(m[1]);
    const head = text.slice(0, text.indexOf('('));
    const ret = norm(head.slice(0, head.length - m[2].length));
    const params = m[3].trim() === 'void' ? [] : m[3].split(',').map((p) => {
      const pm = norm(p).match(/^(.*?)([a-z_0-9]+)$/);
      return { type: norm(pm[1]), name: pm[2] };
    });
    functions.set(m[2], { ret, params, text });
  }
  return { functions, structs, defines, enums, typedefs };
}

function parseHeaderFile(path) {
  return parseHeader(fs.readFileSync(path, 'utf8'));
}

module.exports = { parseHeader, parseHeaderFile, norm };
