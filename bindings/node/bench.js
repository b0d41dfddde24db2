'use strict';
// Verify throughput from Node, next to a no-op koffi call (kw_abi_version).
//
//   cargo build --release
//   node bindings/node/bench.js [--rust-verify-ns=N] [--rounds=R] [--calls=C]
//
// The library is KEYWARD_LIB, else the repository's release build, else its debug build
// (say which in the output: a debug build is ~10x slower and meaningless here).
// The Rust verify time to compare with: with a C compiler, the script builds a 10-line C
// loop around kw_verify and times it in this process (koffi's cost amortized over 200 000
// calls per koffi call): the library's verify as any C caller pays it. --rust-verify-ns=N
// overrides it (e.g. verify_ffi or verify_rust of `cargo bench --bench ffi_reopen`). The
// script then prints the target verify <= 1.5 x (no-op koffi call + Rust verify).
//
// Each row runs `calls` calls per round, `rounds` rounds; it reports the CPU time per call
// of the median round (and calls per second of one core), the best round, and wall time. A store in the default
// multi-process mode, one key, warm index: the steady state of a web worker.
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

function arg(name, fallback) {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
}
const ROUNDS = arg('rounds', 21);
const CALLS = arg('calls', 100000);
const RUST_VERIFY_NS = arg('rust-verify-ns', Number(process.env.KEYWARD_RUST_VERIFY_NS || NaN));

// The package itself looks only at KEYWARD_LIB and installed packages; the benchmark runs in
// the repository, so it points KEYWARD_LIB at the Cargo build when it is not set.
if (!process.env.KEYWARD_LIB) {
  const built = ['release', 'debug']
    .map((profile) => path.join(__dirname, '..', '..', 'target', profile, 'libkeyward.so'))
    .find((file) => fs.existsSync(file));
  if (built) process.env.KEYWARD_LIB = built;
}
const keyward = require('.');
const { _native } = require('./lib/store');
const fn = _native.fn;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-bench-'));
const store = new keyward.Store(path.join(dir, 'bench.redb'));
const { key, info } = store.create({ owner: 'acct_bench', scopes: ['read', 'write'], env: 'live' });
const { id, secret } = keyward.parseKey(key);
const read = new keyward.Scopes(['read']);
const headers = {
  host: 'api.example.com',
  'user-agent': 'curl/8.5.0',
  accept: 'application/json',
  'accept-encoding': 'gzip, deflate, br',
  'content-type': 'application/json',
  'content-length': '42',
  'x-request-id': '3b0c2f4e-8d1a-4c5e-9f7b-1a2b3c4d5e6f',
  'x-forwarded-for': '203.0.113.7',
  connection: 'keep-alive',
  authorization: `Bearer ${key}`,
};

// The floor of a verify through koffi: preallocated buffers, nothing decoded.
const keyBuf = Buffer.from(key);
const verdictBuf = Buffer.alloc(_native.structs.kw_verdict.size);
function rawVerify() {
  return fn.kw_verify(store.handle, keyBuf, keyBuf.length, 0n, 0, 0, 0, verdictBuf, 0n, 0, 0n);
}

// The middleware on a node:http request as the server's parser makes it (the raw headers
// above; req.headers built on first use), one new request per call.
const { IncomingMessage } = require('node:http');
const rawHeaders = Object.entries(headers).flat();
const auth = keyward.middleware(store, { scopes: ['read'] });
const noRes = { setHeader() {}, end() { throw new Error('refused'); } };
function middlewareRequest() {
  const req = new IncomingMessage(null);
  req._addHeaderLines(rawHeaders, rawHeaders.length);
  let ok = 0;
  auth(req, noRes, (err) => { if (err) throw err; ok = 1; });
  return ok;
}

let sink = 0;
const rows = [
  ['no-op koffi call (kw_abi_version)', () => fn.kw_abi_version()],
  ['kw_verify through koffi, nothing decoded', () => rawVerify()],
  ['store.verify(key)', () => store.verify(key).httpStatus],
  ['store.verify(key, {scopes: Scopes})', () => store.verify(key, { scopes: read }).httpStatus],
  ['store.verify(key, {scopes: ["read"]})', () => store.verify(key, { scopes: ['read'] }).httpStatus],
  ['store.verifyPair(id, secret)', () => store.verifyPair(id, secret).httpStatus],
  ['store.verifyHeaders(10 headers, Bearer)', () => store.verifyHeaders(headers, { scopes: read }).httpStatus],
  ['new node:http request (10 headers), no keyward', () => new IncomingMessage(null)._addHeaderLines(rawHeaders, rawHeaders.length)],
  ['new node:http request + middleware (scope read)', () => middlewareRequest()],
];

/**
 * kw_verify looped in C, in this process: builds the loop with the C compiler (null when
 * there is none) and returns a row measuring one kw_verify per call.
 */
function cLoopRow() {
  const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
  if (!cc) return null;
  const src = path.join(dir, 'loop.c');
  fs.writeFileSync(
    src,
    `#include "keyward.h"
uint32_t loop_verify(kw_store s, const char *key, size_t len, uint32_t n) {
  kw_verdict v; uint32_t refused = 0;
  for (uint32_t i = 0; i < n; i++)
    if (kw_verify(s, key, len, NULL, 0, 0, 0, &v, NULL, 0, NULL) != KW_OK || v.reason != KW_REASON_VALID) refused++;
  return refused;
}
`,
  );
  const include = path.resolve(__dirname, '..', '..', 'include');
  const libDir = path.dirname(keyward.library.file);
  const out = path.join(dir, 'libloop.so');
  const built = spawnSync(cc, ['-O2', '-shared', '-fPIC', `-I${include}`, src, '-o', out, `-L${libDir}`, '-lkeyward', `-Wl,-rpath,${libDir}`], { encoding: 'utf8' });
  if (built.status !== 0) return null;
  const loop = require('koffi').load(out).func('uint32_t loop_verify(uint64_t s, const char *key, size_t len, uint32_t n)');
  const PER = 1000;
  if (loop(store.handle, key, key.length, PER) !== 0) throw new Error('the C loop refused the key');
  return ['kw_verify looped in C (per verify)', () => loop(store.handle, key, key.length, PER) / PER, PER];
}

// CPU time (user + system of this process) per call, not wall time: on a shared machine
// wall time also counts the time other processes held the CPU. The rows are measured in
// turns (round 1 of every row, then round 2, ...) so that a change of machine load touches
// all of them alike.
function measureAll(list) {
  const state = list.map(([, call, per = 1]) => ({ call, per, calls: Math.max(1, Math.round(CALLS / per)), cpu: [], wall: [] }));
  for (const s of state) for (let i = 0; i < Math.min(s.calls, 50000); i++) sink += s.call(); // warm up (JIT)
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of state) {
      const { call, calls, per } = s;
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) sink += call();
      const t = Number(process.hrtime.bigint() - t0);
      const c = process.cpuUsage(c0);
      s.cpu.push(((c.user + c.system) * 1000) / (calls * per));
      s.wall.push(t / (calls * per));
    }
  }
  const mid = Math.floor(ROUNDS / 2);
  return state.map((s) => {
    s.cpu.sort((a, b) => a - b);
    s.wall.sort((a, b) => a - b);
    return { median: s.cpu[mid], best: s.cpu[0], wall: s.wall[mid] };
  });
}

console.log(`keyward Node benchmark: node ${process.version}, koffi ${require('koffi').version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`library: ${keyward.library.file}${/[\\/]debug[\\/]/.test(keyward.library.file) ? '  (DEBUG BUILD: build with --release for meaningful figures)' : ''}`);
console.log(`${ROUNDS} rounds x ${CALLS} calls per row; CPU ns per call: median round (best round), and median wall ns\n`);
const cRow = cLoopRow();
if (cRow) rows.splice(1, 0, cRow);
const results = {};
const width = Math.max(...rows.map(([name]) => name.length));
measureAll(rows).forEach((m, i) => {
  const name = rows[i][0];
  results[name] = m;
  console.log(
    `${name.padEnd(width)}  ${m.median.toFixed(0).padStart(5)} ns  ${(1e9 / m.median / 1e6).toFixed(2).padStart(5)} M calls/s  (best ${m.best.toFixed(0).padStart(5)} ns, wall ${m.wall.toFixed(0).padStart(5)} ns)`,
  );
});
if (sink === 0.5) console.log('');

const noop = results[rows[0][0]].median;
const verify = results['store.verify(key)'].median;
const rust = Number.isFinite(RUST_VERIFY_NS) ? RUST_VERIFY_NS : cRow ? results[cRow[0]].median : NaN;
const source = Number.isFinite(RUST_VERIFY_NS) ? 'given with --rust-verify-ns' : 'kw_verify looped in C, above';
console.log(`\nstore.verify(key) = ${verify.toFixed(0)} ns; no-op koffi call = ${noop.toFixed(0)} ns`);
if (Number.isFinite(rust)) {
  const target = 1.5 * (noop + rust);
  console.log(`Rust verify = ${rust.toFixed(0)} ns (${source}) -> target 1.5 x (${noop.toFixed(0)} + ${rust.toFixed(0)}) = ${target.toFixed(0)} ns`);
  console.log(`verify / (no-op + Rust verify) = ${(verify / (noop + rust)).toFixed(2)}  -> target ${verify <= target ? 'MET' : 'NOT MET'}`);
} else {
  console.log('no C compiler: pass --rust-verify-ns=N (verify_ffi of `cargo bench --bench ffi_reopen`) to check the target');
}

store.close();
fs.rmSync(dir, { recursive: true, force: true });
void info;
