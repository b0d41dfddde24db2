'use strict';
// Verify throughput from Node, next to a no-op koffi call (kw_abi_version).
//
//   cargo build --release
//   node bindings/node/bench.js [--rust-verify-ns=N] [--rounds=R] [--calls=C]
//
// The library is KEYWARD_LIB, else the repository's release build, else its debug build
// (say which in the output: a debug build is ~10x slower and meaningless here).
// --rust-verify-ns is the Rust verify time to compare with (from
// `cargo bench --bench ffi_reopen`, line verify_rust); with it the script prints the target
// verify <= 1.5 x (no-op koffi call + Rust verify) and whether it is met.
//
// Each row runs `calls` calls per round, `rounds` rounds; it reports the CPU time per call
// of the median round (and calls per second of one core), the best round, and wall time. A store in the default
// multi-process mode, one key, warm index: the steady state of a web worker.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function arg(name, fallback) {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
}
const ROUNDS = arg('rounds', 15);
const CALLS = arg('calls', 200000);
const RUST_VERIFY_NS = arg('rust-verify-ns', Number(process.env.KEYWARD_RUST_VERIFY_NS || NaN));

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

let sink = 0;
const rows = [
  ['no-op koffi call (kw_abi_version)', () => fn.kw_abi_version()],
  ['kw_verify through koffi, nothing decoded', () => rawVerify()],
  ['store.verify(key)', () => store.verify(key).httpStatus],
  ['store.verify(key, {scopes: Scopes})', () => store.verify(key, { scopes: read }).httpStatus],
  ['store.verify(key, {scopes: ["read"]})', () => store.verify(key, { scopes: ['read'] }).httpStatus],
  ['store.verifyPair(id, secret)', () => store.verifyPair(id, secret).httpStatus],
  ['store.verifyHeaders(10 headers, Bearer)', () => store.verifyHeaders(headers, { scopes: read }).httpStatus],
];

// CPU time (user + system of this process) per call, not wall time: on a shared machine
// wall time also counts the time other processes held the CPU.
function measure(call) {
  for (let i = 0; i < Math.min(CALLS, 50000); i++) sink += call(); // warm up (JIT)
  const cpu = [];
  const wall = [];
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) sink += call();
    const t = Number(process.hrtime.bigint() - t0);
    const c = process.cpuUsage(c0);
    cpu.push(((c.user + c.system) * 1000) / CALLS);
    wall.push(t / CALLS);
  }
  cpu.sort((a, b) => a - b);
  wall.sort((a, b) => a - b);
  const mid = Math.floor(ROUNDS / 2);
  return { median: cpu[mid], best: cpu[0], wall: wall[mid] };
}

console.log(`keyward Node benchmark: node ${process.version}, koffi ${require('koffi').version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`library: ${keyward.library.file}${/[\\/]debug[\\/]/.test(keyward.library.file) ? '  (DEBUG BUILD: build with --release for meaningful figures)' : ''}`);
console.log(`${ROUNDS} rounds x ${CALLS} calls per row; CPU ns per call: median round (best round), and median wall ns\n`);
const results = {};
const width = Math.max(...rows.map(([name]) => name.length));
for (const [name, call] of rows) {
  const m = measure(call);
  results[name] = m;
  console.log(
    `${name.padEnd(width)}  ${m.median.toFixed(0).padStart(5)} ns  ${(1e9 / m.median / 1e6).toFixed(2).padStart(5)} M calls/s  (best ${m.best.toFixed(0).padStart(5)} ns, wall ${m.wall.toFixed(0).padStart(5)} ns)`,
  );
}
if (sink === 0.5) console.log('');

const noop = results[rows[0][0]].median;
const verify = results['store.verify(key)'].median;
console.log(`\nstore.verify(key) = ${verify.toFixed(0)} ns; no-op koffi call = ${noop.toFixed(0)} ns`);
if (Number.isFinite(RUST_VERIFY_NS)) {
  const target = 1.5 * (noop + RUST_VERIFY_NS);
  console.log(`Rust verify (given) = ${RUST_VERIFY_NS} ns -> target 1.5 x (${noop.toFixed(0)} + ${RUST_VERIFY_NS}) = ${target.toFixed(0)} ns`);
  console.log(`verify / (no-op + Rust verify) = ${(verify / (noop + RUST_VERIFY_NS)).toFixed(2)}  -> target ${verify <= target ? 'MET' : 'NOT MET'}`);
} else {
  console.log('pass --rust-verify-ns=N (verify_rust of `cargo bench --bench ffi_reopen`) to check the target');
}

store.close();
fs.rmSync(dir, { recursive: true, force: true });
void info;
