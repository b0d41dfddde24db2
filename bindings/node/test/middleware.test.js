'use strict';
// The Express middleware (in a real Express app over loopback) and the plain node:http
// example (examples/http-server.js, run as its own process).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const express = require('express');
const keyward = require('..');
const { freshStore, tempDir } = require('./helpers/common');
const { request } = require('./helpers/http');

function listen(app) {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
}

test('express: 200 with the verdict on req.keyward, 401/403 JSON refusals, per-route scopes', async (t) => {
  const store = freshStore(t);
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const admin = store.create({ owner: 'acct_a', scopes: ['read', 'admin'] });
  const revoked = store.create({ owner: 'acct_x', scopes: ['read'] });
  store.revoke(revoked.info.id);

  const app = express();
  app.use('/api', keyward.middleware(store));
  app.get('/api/me', (req, res) => res.json({ ok: true, owner: req.keyward.owner, key: req.keyward.keyId, valid: req.keyward.ok }));
  app.get('/api/admin', keyward.middleware(store, { scopes: ['admin'] }), (req, res) => res.json({ ok: true, admin: req.keyward.owner }));
  app.get('/info', keyward.middleware(() => store, { info: true, property: 'apiKey', scopes: new keyward.Scopes(['read']) }), (req, res) =>
    res.json({ name: req.apiKey.info.name, id: req.apiKey.keyId }),
  );
  app.get('/custom', keyward.middleware(store, { onRefused: (req, res, v) => res.status(418).json({ teapot: v.code }) }), (req, res) => res.json({}));
  app.use((err, req, res, next) => res.status(500).json({ ok: false, code: err.code, message: err.message }));
  const server = await listen(app);
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.address().port}`;

  let r = await request(`${base}/api/me`, { headers: { 'x-api-key': reader.key } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { ok: true, owner: 'acct_r', key: reader.info.id, valid: true });
  r = await request(`${base}/api/me`, { headers: { authorization: `Bearer ${admin.key}` } });
  assert.equal(r.body.owner, 'acct_a');
  r = await request(`${base}/api/me`, { headers: { authorization: `Basic ${Buffer.from(`${reader.key}:`).toString('base64')}` } });
  assert.equal(r.status, 200);
  const { id, secret } = keyward.parseKey(reader.key);
  r = await request(`${base}/api/me`, { headers: { 'X-Api-Token-Id': id, 'X-Api-Token-Secret-Key': secret } });
  assert.equal(r.status, 200);

  r = await request(`${base}/api/me`);
  assert.equal(r.status, 401);
  assert.deepEqual(Object.keys(r.body), ['ok', 'code', 'message']);
  assert.equal(r.body.ok, false);
  assert.equal(r.body.code, 'CREDENTIAL_MISSING');
  assert.equal(typeof r.body.message, 'string');
  assert.equal(r.headers['www-authenticate'], 'Bearer');
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.equal(r.headers['cache-control'], 'no-store');

  r = await request(`${base}/api/me`, { headers: { 'x-api-key': revoked.key } });
  assert.deepEqual([r.status, r.body.code], [401, 'REVOKED']);
  r = await request(`${base}/api/me`, { headers: { 'x-api-key': reader.key.slice(0, -2) } });
  assert.deepEqual([r.status, r.body.code], [401, 'MALFORMED']);
  r = await request(`${base}/api/me`, { headers: { authorization: 'Digest x' } });
  assert.deepEqual([r.status, r.body.code], [401, 'UNSUPPORTED_SCHEME']);
  r = await request(`${base}/api/me`, { headers: { 'x-api-key': reader.key, authorization: `Bearer ${admin.key}` } });
  assert.deepEqual([r.status, r.body.code], [401, 'AMBIGUOUS_CREDENTIAL']);

  r = await request(`${base}/api/admin`, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual([r.status, r.body.ok, r.body.code], [403, false, 'INSUFFICIENT_SCOPE']);
  assert.match(r.headers['www-authenticate'], /insufficient_scope/);
  r = await request(`${base}/api/admin`, { headers: { 'x-api-key': admin.key } });
  assert.deepEqual([r.status, r.body], [200, { ok: true, admin: 'acct_a' }]);

  r = await request(`${base}/info`, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual(r.body, { name: '', id: reader.info.id });
  r = await request(`${base}/custom`);
  assert.deepEqual([r.status, r.body], [418, { teapot: 'CREDENTIAL_MISSING' }]);

  // A failing store reaches Express's error handler (500), never a crash.
  const closing = keyward.Store.open(path.join(tempDir(t), 'c.redb'));
  const app2 = express();
  app2.use(keyward.middleware(closing));
  app2.get('/', (req, res) => res.json({}));
  app2.use((err, req, res, next) => res.status(500).json({ code: err.code }));
  closing.close();
  const server2 = await listen(app2);
  t.after(() => server2.close());
  r = await request(`http://127.0.0.1:${server2.address().port}/`, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual([r.status, r.body], [500, { code: 'CLOSED' }]);

  // Usage was counted for every accepted request.
  assert.equal(store.usage(reader.info.id).uses, 5);
});

test('middleware: bad arguments', () => {
  assert.throws(() => keyward.middleware(), TypeError);
  assert.throws(() => keyward.middleware({}), TypeError);
  const fake = () => null;
  assert.throws(() => keyward.middleware(fake, { scope: ['x'] }), /unknown option "scope"/);
  assert.throws(() => keyward.middleware(fake, { scopes: 'x' }), TypeError);
  assert.throws(() => keyward.middleware(fake, { onRefused: 5 }), TypeError);
  assert.throws(() => keyward.middleware(fake, null), TypeError);
});

test('examples/http-server.js (plain node:http) serves 200/401/403', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'keys.redb');
  const store = new keyward.Store(db);
  t.after(() => store.close());
  const reader = store.create({ owner: 'acct', scopes: ['read'] });
  const writer = store.create({ owner: 'acct', scopes: ['write'] });

  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'http-server.js')], {
    env: { ...process.env, KEYWARD_DB: db, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  t.after(() => {
    if (!exited) child.kill('SIGKILL');
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('the example did not start in 20 s')), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`the example exited with ${code}`)));
  });
  let r = await request(`${url}/v1/data`, { headers: { 'x-api-key': reader.key } });
  assert.equal(r.status, 200);
  assert.equal(r.body.key, reader.info.id);
  r = await request(`${url}/v1/data`, { headers: { 'x-api-key': writer.key } });
  assert.deepEqual([r.status, r.body.ok, r.body.code], [403, false, 'INSUFFICIENT_SCOPE']);
  r = await request(`${url}/v1/data`);
  assert.deepEqual([r.status, r.body.code], [401, 'CREDENTIAL_MISSING']);
  store.revoke(reader.info.id);
  r = await request(`${url}/v1/data`, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual([r.status, r.body.code], [401, 'REVOKED']);

  const code = await new Promise((resolve) => {
    child.once('exit', (c) => resolve(c));
    child.kill('SIGTERM');
  });
  assert.equal(code, 0);
  assert.equal(store.usage(reader.info.id).uses, 1, 'the example flushed its count on SIGTERM');
});

test('the middleware needs no express at run time', () => {
  const { spawnSync } = require('node:child_process');
  const pkg = path.resolve(__dirname, '..');
  const r = spawnSync(process.execPath, ['-e', `const k = require(${JSON.stringify(pkg)}); k.middleware(() => null);
    console.log(JSON.stringify(Object.keys(require.cache).filter((f) => f.includes('node_modules') && !f.includes('koffi'))))`], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
});

/** Runs an example with `env`; resolves {child, url} once it prints "listening on <url>". */
async function startExample(t, file, env) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', file)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${file} did not start in 20 s`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
  return { child, url };
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code, signal) => resolve(code ?? signal));
    child.kill('SIGTERM');
  });
}

test('examples/express-app.js serves /api/me and /api/deploy', async (t) => {
  const db = path.join(tempDir(t), 'keys.redb');
  const store = new keyward.Store(db);
  t.after(() => store.close());
  const deployer = store.create({ owner: 'acct_d', scopes: ['deploy'] });
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const { child, url } = await startExample(t, 'express-app.js', { KEYWARD_DB: db, PORT: '0' });
  let r = await request(`${url}/api/me`, { headers: { authorization: `Bearer ${reader.key}` } });
  assert.deepEqual([r.status, r.body.owner], [200, 'acct_r']);
  r = await request(`${url}/api/deploy`, { method: 'POST', headers: { 'x-api-key': reader.key } });
  assert.deepEqual([r.status, r.body.code], [403, 'INSUFFICIENT_SCOPE']);
  r = await request(`${url}/api/deploy`, { method: 'POST', headers: { 'x-api-key': deployer.key } });
  assert.deepEqual([r.status, r.body.deployedBy], [200, 'acct_d']);
  r = await request(`${url}/api/me`);
  assert.deepEqual([r.status, r.body.code], [401, 'CREDENTIAL_MISSING']);
  await stop(child);
});

test('examples/cluster.js: node:cluster workers on one store file', async (t) => {
  const db = path.join(tempDir(t), 'keys.redb');
  const store = new keyward.Store(db);
  t.after(() => store.close());
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const { child, url } = await startExample(t, 'cluster.js', { KEYWARD_DB: db, PORT: '0', WORKERS: '2' });
  for (let i = 0; i < 4; i++) {
    const r = await request(url, { headers: { 'x-api-key': reader.key } });
    assert.deepEqual([r.status, r.body.owner], [200, 'acct_r']);
  }
  store.revoke(reader.info.id);
  const r = await request(url, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual([r.status, r.body.code], [401, 'REVOKED']);
  await stop(child);
});
