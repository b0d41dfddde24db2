'use strict';
// The Fastify plugin (keyward/fastify) in real Fastify apps: fastify.inject, and real HTTP on
// an ephemeral port where a node:http layer runs first. Every credential style the engine
// accepts, 200 / 401 / 403 / revoked, the same refusals as the Express middleware, exactly one
// use (or one refusal) counted per request however many keyward layers a request meets.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const keyward = require('..');
const { freshStore, tempDir } = require('./helpers/common');
const { request } = require('./helpers/http');
const { credentialMatrix, refused, counts } = require('./helpers/frameworks');

const major = Number(process.versions.node.split('.')[0]);
const skip = major < 20 ? `fastify 5 needs Node >= 20 (this is ${process.version})` : false;
const Fastify = skip ? null : require('fastify');
const plugin = require('keyward/fastify'); // the package's own export map

/** A Fastify app, closed when the test ends; `send(path, headers)` through inject. */
function fastify(t, options) {
  const app = Fastify(options);
  t.after(() => app.close());
  const send = async (url, headers = {}, method = 'GET') => {
    const r = await app.inject({ method, url, headers });
    let body = r.body;
    try {
      body = JSON.parse(r.body);
    } catch {
      // not JSON
    }
    return { status: r.statusCode, headers: r.headers, body };
  };
  return { app, send };
}

function matrixKeys(t, store) {
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const revoked = store.create({ owner: 'acct_x', scopes: ['read'] });
  store.revoke(revoked.info.id);
  const unknown = freshStore(t).create({ owner: 'acct_u', scopes: ['read', 'admin'] });
  return { reader, revoked, unknown };
}

const show = async (request) => ({ owner: request.keyward.owner, key: request.keyward.keyId });

test('fastify: route option scopes, every credential style → 200 / 403 / 401, one count per request', { skip }, async (t) => {
  const store = freshStore(t);
  const keys = matrixKeys(t, store);
  const { app, send } = fastify(t);
  app.register(plugin, { store });
  app.get('/read', { config: { keyward: { scopes: ['read'] } } }, show);
  app.get('/admin', { config: { keyward: { scopes: ['admin'] } } }, show);
  const n = await credentialMatrix(send, keys);
  // Registered at the root, the hook also runs for the 404 handler: unknown routes need a key.
  refused(await send('/nowhere'), 401, 'CREDENTIAL_MISSING', 'unknown route');
  assert.equal((await send('/nowhere', { 'x-api-key': keys.reader.key })).status, 404);
  // One verify per request with the route's scopes: a 200 counts one use, a 403 one refusal.
  assert.deepEqual(counts(store, keys.reader.info.id), [n + 1, n]);
  assert.deepEqual(counts(store, keys.revoked.info.id), [0, n]);
});

test('fastify: preHandler keyward.require(), every credential style; the 403 reuses the accepted verdict', { skip }, async (t) => {
  const store = freshStore(t);
  const keys = matrixKeys(t, store);
  const { app, send } = fastify(t);
  app.register(plugin, { store, scopes: ['read'] });
  app.get('/read', show);
  app.get('/admin', { preHandler: plugin.require('admin') }, show);
  const n = await credentialMatrix(send, keys);
  // /admin: the plugin accepted the key (one use); require('admin') refused it without a
  // second verify. So every request counted exactly one use, and nothing was refused twice.
  assert.deepEqual(counts(store, keys.reader.info.id), [2 * n, 0]);
  assert.deepEqual(counts(store, keys.revoked.info.id), [0, n]);
});

test('fastify: the same refusals (status, body, headers) as the Express middleware', { skip }, async (t) => {
  const store = freshStore(t);
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const { app, send } = fastify(t);
  app.register(plugin, { store });
  app.get('/admin', { config: { keyward: { scopes: ['admin'] } } }, show);
  const server = http.createServer((req, res) => {
    const mw = keyward.middleware(store, { scopes: ['admin'] });
    mw(req, res, () => res.end('{}'));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${server.address().port}/admin`;
  for (const headers of [{}, { 'x-api-key': reader.key }, { 'x-api-key': 'kw_live_nope' }, { authorization: 'Digest x' }]) {
    const a = await send('/admin', headers);
    const b = await request(url, { headers });
    assert.deepEqual([a.status, a.body], [b.status, b.body]);
    for (const h of ['content-type', 'cache-control', 'www-authenticate', 'content-length']) assert.equal(a.headers[h], b.headers[h], h);
  }
});

test('fastify: stacked with the node:http middleware (real HTTP), and registered twice: verified and counted once', { skip }, async (t) => {
  const store = freshStore(t);
  const admin = store.create({ owner: 'acct_a', name: 'ops', scopes: ['read', 'admin'] });
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const limited = store.create({ owner: 'acct_l', scopes: ['read', 'admin'], credits: { remaining: 3 } });
  const verifies = [];
  const verifyHeaders = store.verifyHeaders.bind(store);
  store.verifyHeaders = (h, o) => {
    verifies.push(1);
    return verifyHeaders(h, o);
  };
  const verifyRequest = store._verifyRequest.bind(store); // the middlewares' hot path
  store._verifyRequest = (h, s, c) => {
    verifies.push(1);
    return verifyRequest(h, s, c);
  };
  // The generic middleware runs first, in the server's request listener, then Fastify.
  const generic = keyward.middleware(store, { scopes: ['read'] });
  const app = Fastify({
    serverFactory: (handler) => http.createServer((req, res) => generic(req, res, (err) => (err ? res.destroy(err) : handler(req, res)))),
  });
  t.after(() => app.close());
  app.register(plugin, { store, info: true }); // root
  app.register(async (child) => {
    child.register(plugin, { store, scopes: ['admin'] }); // a second layer in a child context
    child.get('/admin', { preHandler: plugin.require('read', 'admin') }, async (request) => ({ owner: request.keyward.owner, name: request.keyward.info.name }));
  });
  app.get('/read', async (request) => ({ owner: request.keyward.owner }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${app.server.address().port}`;

  const N = 6;
  for (let i = 0; i < N; i++) {
    const r = await request(`${base}/admin`, { headers: { 'x-api-key': admin.key } });
    assert.deepEqual([r.status, r.body], [200, { owner: 'acct_a', name: 'ops' }]);
  }
  assert.equal(verifies.length, N, 'one verify per request, by the first layer');
  assert.deepEqual(counts(store, admin.info.id), [N, 0]);

  // A key lacking the child's scope: accepted (one use) by the first layer, 403 from the plugin.
  refused(await request(`${base}/admin`, { headers: { 'x-api-key': reader.key } }), 403, 'INSUFFICIENT_SCOPE', 'reader on /admin');
  let r = await request(`${base}/read`, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual([r.status, r.body], [200, { owner: 'acct_r' }]);
  assert.deepEqual(counts(store, reader.info.id), [2, 0]);
  // A refused request stops at the first layer: the same 401.
  r = await request(`${base}/read`);
  refused(r, 401, 'CREDENTIAL_MISSING', 'missing');
  // A limited key spends one credit per request, however many layers.
  for (let i = 0; i < 3; i++) assert.equal((await request(`${base}/admin`, { headers: { 'x-api-key': limited.key } })).status, 200);
  refused(await request(`${base}/admin`, { headers: { 'x-api-key': limited.key } }), 403, 'USAGE_EXCEEDED', 'credits');
  assert.deepEqual(counts(store, limited.info.id), [3, 1]);
  assert.equal(verifies.length, N + 2 + 1 + 4);
});

test('fastify: skip-override (routes after register are covered), encapsulation by context, public routes, 404s', { skip }, async (t) => {
  const store = freshStore(t);
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const { app, send } = fastify(t);
  app.get('/before', async () => ({ open: true })); // declared before the plugin: not covered
  let named = false;
  app.register(async (api) => {
    await api.register(plugin, { store });
    named = api.hasPlugin('keyward'); // registered under its name, in this very context
    api.get('/me', show);
    api.get('/health', { config: { keyward: false } }, async (request) => ({ verdict: request.keyward }));
    api.get('/open-but-read', { config: { keyward: false }, preHandler: plugin.require('read') }, show);
  }, { prefix: '/api' });
  app.get('/sibling', async (request) => ({ verdict: request.keyward ?? 'none' }));
  assert.deepEqual((await send('/api/me', { 'x-api-key': reader.key })).body, { owner: 'acct_r', key: reader.info.id });
  refused(await send('/api/me'), 401, 'CREDENTIAL_MISSING', '/api/me');
  assert.deepEqual((await send('/api/health')).body, { verdict: null });
  refused(await send('/api/open-but-read'), 401, 'CREDENTIAL_MISSING', 'require() on a public route verifies');
  assert.equal((await send('/api/open-but-read', { authorization: `Bearer ${reader.key}` })).status, 200);
  assert.equal((await send('/api/nowhere')).status, 404, "Fastify's 404 handler is the root's: not covered");
  assert.deepEqual((await send('/sibling')).body, { verdict: 'none' }, 'a sibling context is not covered');
  assert.deepEqual((await send('/before')).body, { open: true });
  assert.deepEqual(counts(store, reader.info.id), [2, 0]);
  assert.equal(named, true);
  assert.equal(app.hasPlugin('keyward'), false, 'not in the parent');
});

test('fastify: options (info, property, cost, onRefused, store as a function), route cost', { skip }, async (t) => {
  const store = freshStore(t);
  const limited = store.create({ owner: 'acct_l', name: 'metered', scopes: ['read'], credits: { remaining: 10 } });
  const { app, send } = fastify(t);
  app.register(plugin, {
    store: () => store,
    scopes: new keyward.Scopes(['read']),
    info: true,
    property: 'apiKey',
    cost: 2,
    onRefused: (request, reply, verdict) => reply.code(418).send({ teapot: verdict.code, seen: request.apiKey.code }),
  });
  app.get('/cheap', async (request) => ({ name: request.apiKey.info.name, plain: request.keyward === undefined }));
  app.get('/dear', { config: { keyward: { cost: 5, info: false } } }, async (request) => ({ info: request.apiKey.info }));
  let r = await send('/cheap', { 'x-api-key': limited.key });
  assert.deepEqual(r.body, { name: 'metered', plain: true });
  assert.equal(store.credits(limited.info.id).remaining, 8);
  r = await send('/dear', { 'x-api-key': limited.key });
  assert.deepEqual(r.body, { info: null });
  assert.equal(store.credits(limited.info.id).remaining, 3);
  r = await send('/dear', { 'x-api-key': limited.key });
  assert.deepEqual([r.status, r.body], [418, { teapot: 'USAGE_EXCEEDED', seen: 'USAGE_EXCEEDED' }]);
  r = await send('/cheap');
  assert.deepEqual([r.status, r.body], [418, { teapot: 'CREDENTIAL_MISSING', seen: 'CREDENTIAL_MISSING' }]);
});

test('fastify: a failing store goes to the error handler (500); bad options fail at startup', { skip }, async (t) => {
  const closing = keyward.Store.open(path.join(tempDir(t), 'c.redb'));
  const key = closing.create({ owner: 'a' }).key;
  const { app, send } = fastify(t);
  app.register(plugin, { store: closing });
  app.get('/', async () => ({}));
  app.setErrorHandler((err, request, reply) => reply.code(500).send({ code: err.code }));
  closing.close();
  const r = await send('/', { 'x-api-key': key });
  assert.deepEqual([r.status, r.body], [500, { code: 'CLOSED' }]);

  const store = freshStore(t);
  const bad = async (options) => {
    const a = Fastify();
    a.register(plugin, options);
    try {
      await assert.rejects(a.ready(), TypeError, JSON.stringify(options));
    } finally {
      await a.close().catch(() => {});
    }
  };
  await bad({});
  await bad({ store: {} });
  await bad({ store, scope: ['x'] });
  await bad({ store, scopes: 'x' });
  await bad({ store, info: 'yes' });
  await bad({ store, onRefused: 1 });
  // A bad route option: refused when the route is declared once the plugin has loaded (onRoute),
  // else at its first request (500), never a pass.
  for (const route of [{ scope: ['x'] }, true, { scopes: 'x' }]) {
    const { app: a, send: sendA } = fastify(t);
    await a.register(plugin, { store });
    assert.throws(() => a.get('/', { config: { keyward: route } }, async () => ({})), TypeError);
    const { app: b, send: sendB } = fastify(t, { logger: false });
    b.register(plugin, { store });
    b.get('/', { config: { keyward: route } }, async () => ({}));
    assert.equal((await sendB('/', { 'x-api-key': key })).status, 500);
    void sendA;
  }
  assert.throws(() => plugin.require(5), TypeError);
  // require() without the plugin in the route's context: a 500, never a pass.
  const { app: bare, send: sendBare } = fastify(t);
  bare.get('/', { preHandler: plugin.require('read') }, async () => ({}));
  assert.equal((await sendBare('/', { 'x-api-key': key })).status, 500);
});

test('keyward/fastify loads no fastify, and keyward loads no keyward/fastify', () => {
  const pkg = path.resolve(__dirname, '..');
  const r = spawnSync(process.execPath, ['-e', `const p = require('keyward/fastify'); require('keyward');
    console.log(JSON.stringify([typeof p, typeof p.require, p[Symbol.for('skip-override')], Object.keys(require.cache).filter((f) => f.includes('node_modules') && !f.includes('koffi'))]))`],
  { cwd: pkg, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), ['function', 'function', true, []]);
  const r2 = spawnSync(process.execPath, ['-e', `require('keyward'); console.log(Object.keys(require.cache).some((f) => f.endsWith('fastify.js')))`], { cwd: pkg, encoding: 'utf8', timeout: 30000 });
  assert.equal(r2.stdout.trim(), 'false', r2.stderr);
});

test('fastify: a rate-limited key → RateLimit-Policy / RateLimit on 200, then 429 with Retry-After', { skip }, async (t) => {
  const store = freshStore(t);
  const limited = store.create({ owner: 'acct_rl', rateLimit: { rate: 1, periodMs: 60000, burst: 1 } });
  const { app, send } = fastify(t);
  app.register(plugin, { store });
  app.get('/x', show);
  let r = await send('/x', { 'x-api-key': limited.key });
  assert.equal(r.status, 200);
  assert.equal(r.headers['ratelimit-policy'], '"key";q=1;w=60');
  assert.equal(r.headers.ratelimit, '"key";r=0;t=60');
  r = await send('/x', { 'x-api-key': limited.key });
  assert.equal(r.status, 429);
  assert.equal(r.body.code, 'RATE_LIMITED');
  assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 60);
});
