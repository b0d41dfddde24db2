'use strict';
// The Express integration (keyward.middleware in a real Express app, over loopback HTTP on an
// ephemeral port): every credential style the engine accepts, 200 / 401 / 403 / revoked, and
// exactly one use (or one refusal) counted per request. More Express cases (stacking, info,
// property, onRefused, a failing store) are in middleware.test.js.
const test = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const keyward = require('..');
const { freshStore } = require('./helpers/common');
const { request } = require('./helpers/http');
const { credentialMatrix, refused, counts } = require('./helpers/frameworks');

function listen(t, app) {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      t.after(() => server.close());
      resolve(`http://127.0.0.1:${server.address().port}`);
    });
  });
}

/** Keys for the matrix: a reader, a revoked reader, and a key of another store. */
function matrixKeys(t, store) {
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const revoked = store.create({ owner: 'acct_x', scopes: ['read'] });
  store.revoke(revoked.info.id);
  const unknown = freshStore(t).create({ owner: 'acct_u', scopes: ['read', 'admin'] });
  return { reader, revoked, unknown };
}

test('express: every credential style → 200 / 403 / 401 (revoked, unknown, missing), one count per request', async (t) => {
  const store = freshStore(t);
  const keys = matrixKeys(t, store);
  const app = express();
  const show = (req, res) => res.json({ owner: req.keyward.owner, key: req.keyward.keyId });
  app.get('/read', keyward.middleware(store, { scopes: ['read'] }), show);
  app.get('/admin', keyward.middleware(store, { scopes: ['admin'] }), show);
  const base = await listen(t, app);
  const send = (path, headers) => request(base + path, { headers });
  const n = await credentialMatrix(send, keys);
  // One verify per request: each 200 counted one use, each 403 and each revoked 401 one refusal.
  assert.deepEqual(counts(store, keys.reader.info.id), [n, n], 'reader: n uses (200), n refusals (403)');
  assert.deepEqual(counts(store, keys.revoked.info.id), [0, n]);
});

test('express: app-level + route-level middleware, N requests → N uses; the key lacking the route scope → 403', async (t) => {
  const store = freshStore(t);
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const admin = store.create({ owner: 'acct_a', scopes: ['read', 'admin'] });
  const app = express();
  app.use(keyward.middleware(store, { scopes: ['read'] }));
  app.get('/admin', keyward.middleware(store, { scopes: ['admin'] }), keyward.middleware(store), (req, res) => res.json({ owner: req.keyward.owner }));
  const base = await listen(t, app);
  for (let i = 0; i < 7; i++) {
    const r = await request(`${base}/admin`, { headers: { authorization: `Bearer ${admin.key}` } });
    assert.deepEqual([r.status, r.body], [200, { owner: 'acct_a' }]);
  }
  assert.deepEqual(counts(store, admin.info.id), [7, 0]);
  refused(await request(`${base}/admin`, { headers: { 'x-api-key': reader.key } }), 403, 'INSUFFICIENT_SCOPE', 'reader');
  assert.deepEqual(counts(store, reader.info.id), [1, 0], 'accepted once by the app-level layer, refused by the route without a second count');
});

test('express: Basic base64(id:secret) is not a credential style (the user part is taken as the key) → 401', async (t) => {
  const store = freshStore(t);
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const app = express();
  app.get('/read', keyward.middleware(store), (req, res) => res.json({}));
  const base = await listen(t, app);
  const { id, secret } = keyward.parseKey(reader.key);
  const r = await request(`${base}/read`, { headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` } });
  refused(r, 401, 'MALFORMED', 'basic id:secret');
});

test('express: a rate-limited key → RateLimit-Policy / RateLimit on 200, then 429 with Retry-After; an owner limit too', async (t) => {
  const store = freshStore(t);
  const limited = store.create({ owner: 'acct_rl', rateLimit: { rate: 2, periodMs: 60000 } });
  assert.deepEqual(limited.info.rateLimit, { rate: 2, periodMs: 60000, burst: 2 });
  const plain = store.create({ owner: 'acct_p' });
  const app = express();
  app.get('/x', keyward.middleware(store), (req, res) => res.json({ ok: true }));
  const base = await listen(t, app);
  const send = (key) => request(base + '/x', { headers: { 'x-api-key': key } });
  let r = await send(limited.key);
  assert.equal(r.status, 200);
  assert.equal(r.headers['ratelimit-policy'], '"key";q=2;w=60');
  assert.equal(r.headers.ratelimit, '"key";r=1;t=30');
  assert.equal(r.headers['retry-after'], undefined);
  assert.equal((await send(limited.key)).status, 200);
  r = await send(limited.key);
  assert.equal(r.status, 429);
  assert.equal(r.body.code, 'RATE_LIMITED');
  assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 30);
  r = await send(plain.key);
  assert.equal(r.status, 200);
  assert.equal(r.headers.ratelimit, undefined, 'no fields for a key without a limit');
  store.setOwnerRateLimit('acct_p', { rate: 1, periodMs: 1000, burst: 1 });
  assert.deepEqual(store.ownerRateLimit('acct_p'), { rate: 1, periodMs: 1000, burst: 1 });
  r = await send(plain.key);
  assert.equal(r.status, 200);
  assert.equal(r.headers['ratelimit-policy'], '"owner";q=1;w=1');
  r = await send(plain.key);
  assert.equal(r.status, 429);
  store.setOwnerRateLimit('acct_p', null);
  assert.equal(store.ownerRateLimit('acct_p'), null);
  // The verdict API.
  const v = store.verify(limited.key);
  assert.equal(v.code, 'RATE_LIMITED');
  assert.equal(v.httpStatus, 429);
  assert.ok(v.retryAfterMs > 0 && v.rate.scope === 'key' && v.rate.remaining === 0);
  assert.equal(store.update(limited.info.id, { name: 'n', rateLimit: null }).rateLimit, null);
  assert.ok(store.verify(limited.key).ok);
  assert.throws(() => store.setOwnerRateLimit('acct_p', { rate: 0 }), keyward.InvalidArgumentError);
});
