'use strict';
// Four worker processes share one store file (multi-process mode) and serve a protected
// endpoint over loopback, each on its own port so that every worker is asked directly:
// valid → 200, revoked → 401, missing scope → 403, no key → 401; after a revoke in another
// process no worker accepts the key; a key created elsewhere is accepted at once; use
// counts are exact once the workers have stopped (each closes its store, which flushes).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { Store } = require('..');
const { tempDir } = require('./helpers/common');
const { request } = require('./helpers/http');

const WORKERS = 4;
const BURST = 25; // concurrent requests per worker with the same key

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

function startWorker(db, id) {
  const child = fork(path.join(__dirname, 'fixtures', 'cluster-worker.js'), [], {
    env: { ...process.env, KEYWARD_DB: db, WORKER_ID: String(id) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, id, port: m.port, pid: m.pid }));
    child.once('exit', (code) => reject(new Error(`worker ${id} exited with ${code} before listening`)));
  });
  return { child, ready: withTimeout(ready, 30000, `worker ${id} start`) };
}

function stopWorker(w) {
  const done = new Promise((resolve, reject) => {
    let report = null;
    w.child.on('message', (m) => {
      if (m && m.stopped) report = m;
    });
    w.child.once('exit', (code) => (code === 0 && report ? resolve(report) : reject(new Error(`worker ${w.id} exited with ${code}`))));
  });
  w.child.send('stop');
  return withTimeout(done, 20000, `worker ${w.id} stop`);
}

test('cluster: 4 workers, one store file', { timeout: 120000 }, async (t) => {
  const db = path.join(tempDir(t), 'shared.redb');
  const admin = new Store(db);
  const good = admin.create({ owner: 'acct_good', scopes: ['read'] });
  const noScope = admin.create({ owner: 'acct_write', scopes: ['write'] });
  const toRevoke = admin.create({ owner: 'acct_soon', scopes: ['read'] });
  const preRevoked = admin.create({ owner: 'acct_old', scopes: ['read'] });
  admin.revoke(preRevoked.info.id);

  const started = Array.from({ length: WORKERS }, (_, i) => startWorker(db, i));
  const children = started.map((s) => s.child);
  t.after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const workers = await Promise.all(started.map((s) => s.ready));
  assert.equal(new Set(workers.map((w) => w.pid)).size, WORKERS, 'four processes');
  assert.equal(new Set(workers.map((w) => w.port)).size, WORKERS, 'four ports');

  const get = (w, key) => request(`http://127.0.0.1:${w.port}/data`, { headers: key ? { 'x-api-key': key } : {} });
  const expected = new Map([[good.info.id, 0], [toRevoke.info.id, 0]]);
  for (const w of workers) {
    let r = await get(w, good.key);
    assert.deepEqual([r.status, r.body.worker, r.body.key], [200, w.id, good.info.id], `worker ${w.id}: valid key`);
    r = await get(w, noScope.key);
    assert.deepEqual([r.status, r.body.ok, r.body.code], [403, false, 'INSUFFICIENT_SCOPE'], `worker ${w.id}: missing scope`);
    r = await get(w, null);
    assert.deepEqual([r.status, r.body.ok, r.body.code], [401, false, 'CREDENTIAL_MISSING'], `worker ${w.id}: no key`);
    r = await get(w, preRevoked.key);
    assert.deepEqual([r.status, r.body.code], [401, 'REVOKED'], `worker ${w.id}: revoked key`);
    r = await get(w, toRevoke.key);
    assert.equal(r.status, 200, `worker ${w.id}: key about to be revoked, still valid (warm in its index)`);
    expected.set(good.info.id, expected.get(good.info.id) + 1);
    expected.set(toRevoke.info.id, expected.get(toRevoke.info.id) + 1);
  }

  // Revoked here, in the test process: every worker refuses the key on its very next verify.
  admin.revoke(toRevoke.info.id, 'cluster test');
  for (const w of workers) {
    const r = await get(w, toRevoke.key);
    assert.deepEqual([r.status, r.body.code], [401, 'REVOKED'], `worker ${w.id} still accepted a revoked key`);
  }
  // Created here after the workers warmed up: every worker accepts it at once.
  const late = admin.create({ owner: 'acct_late', scopes: ['read'] });
  expected.set(late.info.id, 0);
  for (const w of workers) {
    const r = await get(w, late.key);
    assert.equal(r.status, 200, `worker ${w.id}: a new key is visible at once`);
    expected.set(late.info.id, expected.get(late.info.id) + 1);
  }

  // A concurrent burst on every worker.
  const burst = await Promise.all(workers.flatMap((w) => Array.from({ length: BURST }, () => get(w, good.key))));
  const ok = burst.filter((r) => r.status === 200).length;
  assert.equal(ok, WORKERS * BURST);
  for (const w of workers) assert.equal(burst.filter((r) => r.body.worker === w.id).length, BURST, `burst reached worker ${w.id}`);
  expected.set(good.info.id, expected.get(good.info.id) + ok);

  // Graceful stop: each worker closes its store, which flushes its counts.
  const reports = await Promise.all(workers.map(stopWorker));
  const served = reports.reduce((n, r) => n + r.served, 0);
  assert.equal(served, [...expected.values()].reduce((a, b) => a + b, 0), 'requests served = accepted verifies');
  admin.close();

  // Reopen and check the counts on disk.
  const check = new Store(db);
  t.after(() => check.close());
  for (const [id, uses] of expected) assert.equal(check.usage(id).uses, uses, `uses of ${id}`);
  assert.equal(check.usage(noScope.info.id).uses, 0);
  assert.equal(check.usage(noScope.info.id).refused, WORKERS, 'refused: missing scope, once per worker');
  assert.equal(check.usage(preRevoked.info.id).refused, WORKERS, 'refused: revoked, once per worker');
  assert.equal(check.usage(toRevoke.info.id).refused, WORKERS, 'refused after the revoke, once per worker');
  assert.equal(check.stats().dirtyKeys, 0);
});
