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

// --- stacked middlewares: one verify per request ---------------------------------------------
//
// Today's single middleware, for the record: a request it accepts counts one use (and spends
// the key's cost on a limited key); a request refused for a missing scope counts no use and
// one refusal, and spends nothing (the library checks scopes before credits).

/** [uses, refused] of a key after flushing the pending counts. */
function counts(store, id) {
  store.flush();
  const u = store.usage(id);
  return [u.uses, u.refused];
}

/** An Express app: keyward on /api (any key), then route-level middlewares on GET /api/x. */
async function stackedApp(t, store, ...routeMiddlewares) {
  const app = express();
  app.use('/api', keyward.middleware(store));
  app.get('/api/x', ...routeMiddlewares, (req, res) =>
    res.json({ owner: req.keyward.owner, ok: req.keyward.ok, name: req.apiKey ? req.apiKey.info.name : null }),
  );
  app.use((err, req, res, next) => res.status(500).json({ ok: false, code: err.code }));
  const server = await listen(app);
  t.after(() => server.close());
  return `http://127.0.0.1:${server.address().port}/api/x`;
}

test('stacked (Express app + route, three layers): N requests count N uses', async (t) => {
  const store = freshStore(t);
  const admin = store.create({ owner: 'acct_a', name: 'ops', scopes: ['read', 'admin'] });
  const url = await stackedApp(t, store,
    keyward.middleware(store, { scopes: ['read'] }),
    keyward.middleware(() => store, { scopes: new keyward.Scopes(['admin']), info: true, property: 'apiKey' }));
  for (let i = 0; i < 5; i++) {
    const r = await request(url, { headers: { 'x-api-key': admin.key } });
    assert.deepEqual([r.status, r.body], [200, { owner: 'acct_a', ok: true, name: 'ops' }]);
  }
  assert.deepEqual(counts(store, admin.info.id), [5, 0]);
});

test('stacked: a limited key spends one credit per request (5 accepted, the 6th USAGE_EXCEEDED)', async (t) => {
  const store = freshStore(t);
  const limited = store.create({ owner: 'acct_l', scopes: ['read', 'admin'], credits: { remaining: 5 } });
  const url = await stackedApp(t, store,
    keyward.middleware(store, { scopes: ['read'] }), keyward.middleware(store, { scopes: ['admin'], cost: 1 }));
  const answers = [];
  for (let i = 0; i < 6; i++) answers.push(await request(url, { headers: { 'x-api-key': limited.key } }));
  assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 200, 200, 403]);
  assert.equal(answers[5].body.code, 'USAGE_EXCEEDED');
  assert.equal(store.credits(limited.info.id).remaining, 0);
  assert.deepEqual(counts(store, limited.info.id), [5, 1], 'the 6th: refused once, by the first layer');
});

test('stacked: a route needing a scope the key lacks answers 403 as the single middleware does', async (t) => {
  const store = freshStore(t);
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const admin = store.create({ owner: 'acct_a', scopes: ['read', 'admin'] });
  // The route alone behind one middleware: 403, no use, one refusal (unchanged).
  const single = express();
  single.get('/api/x', keyward.middleware(store, { scopes: ['admin'] }), (req, res) => res.json({}));
  const server = await listen(single);
  t.after(() => server.close());
  const one = await request(`http://127.0.0.1:${server.address().port}/api/x`, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual([one.status, one.body.code], [403, 'INSUFFICIENT_SCOPE']);
  assert.deepEqual(counts(store, reader.info.id), [0, 1]);
  // Stacked: the app-level layer accepted the key (one use, as it would alone); the route's
  // layer refuses it with the same answer and counts nothing more.
  const url = await stackedApp(t, store, keyward.middleware(store, { scopes: ['admin'] }));
  const two = await request(url, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual([two.status, two.body], [one.status, one.body]);
  assert.equal(two.headers['www-authenticate'], one.headers['www-authenticate']);
  assert.equal(two.headers['cache-control'], 'no-store');
  assert.deepEqual(counts(store, reader.info.id), [1, 1]);
  const ok = await request(url, { headers: { 'x-api-key': admin.key } });
  assert.equal(ok.status, 200);
  assert.deepEqual(counts(store, admin.info.id), [1, 0]);
});

test('stacked: a refused request stops at the first middleware', async (t) => {
  const store = freshStore(t);
  const revoked = store.create({ owner: 'acct_x', scopes: ['admin'] });
  store.revoke(revoked.info.id);
  let reached = 0;
  const url = await stackedApp(t, store, (req, res, next) => {
    reached++;
    next();
  }, keyward.middleware(store, { scopes: ['admin'] }));
  let r = await request(url, { headers: { 'x-api-key': revoked.key } });
  assert.deepEqual([r.status, r.body.code], [401, 'REVOKED']);
  r = await request(url);
  assert.deepEqual([r.status, r.body.code], [401, 'CREDENTIAL_MISSING']);
  assert.equal(reached, 0);
  assert.deepEqual(counts(store, revoked.info.id), [0, 1]);
});

test('stacked (node:http chain): the key record is read once per request, only for new scopes', (t) => {
  const store = freshStore(t);
  const admin = store.create({ owner: 'acct_a', scopes: ['read', 'admin'] });
  const reads = [];
  const get = store.get.bind(store);
  store.get = (id) => {
    reads.push(id);
    return get(id);
  };
  /** Runs middlewares in a row the way Connect does; returns the status and the last verdict. */
  function run(layers) {
    const req = { headers: { 'x-api-key': admin.key } };
    const res = { statusCode: 200, setHeader() {}, end() {} };
    let i = 0;
    const next = (err) => {
      if (err) throw err;
      if (i < layers.length) layers[i++](req, res, next);
    };
    next();
    return [res.statusCode, i, req.keyward];
  }
  const any = keyward.middleware(store);
  const read = keyward.middleware(store, { scopes: ['read'] });
  const adminOnly = keyward.middleware(store, { scopes: ['admin'] });
  let [status, ran, verdict] = run([any, read, adminOnly, read]);
  assert.deepEqual([status, ran, verdict.ok, reads.length], [200, 4, true, 1]);
  [status, ran] = run([read, read]); // "read" already checked by the first layer: no read
  assert.deepEqual([status, ran, reads.length], [200, 2, 1]);
  assert.deepEqual(counts(store, admin.info.id), [2, 0]);
});

test('stacked: a middleware on another store verifies the request itself', async (t) => {
  const store = freshStore(t);
  const other = freshStore(t);
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const url = await stackedApp(t, store, keyward.middleware(other));
  let r = await request(url, { headers: { 'x-api-key': reader.key } });
  assert.deepEqual([r.status, r.body.code], [401, 'NOT_FOUND']);
  assert.deepEqual(counts(store, reader.info.id), [1, 0], 'the first layer\'s use');
  // A second handle onto the same store is the same store: its verdict is reused.
  const same = new keyward.Store(store.path);
  t.after(() => same.close());
  const url2 = await stackedApp(t, store, keyward.middleware(same, { scopes: ['read'] }));
  r = await request(url2, { headers: { 'x-api-key': reader.key } });
  assert.equal(r.status, 200);
  assert.deepEqual(counts(store, reader.info.id), [2, 0]);
});

test('node:http: the credential is read from rawHeaders while req.headers is unbuilt, from req.headers once it is', (t) => {
  const { IncomingMessage } = require('node:http');
  const kHeaders = Object.getOwnPropertySymbols(new IncomingMessage(null)).find((s) => s.description === 'kHeaders');
  assert.ok(kHeaders, 'this Node keeps the built header object under kHeaders');
  const store = freshStore(t);
  const reader = store.create({ owner: 'acct_r', scopes: ['read'] });
  const other = store.create({ owner: 'acct_o', scopes: ['read'] });
  const auth = keyward.middleware(store, { scopes: ['read'] });
  /** A request as node:http's parser hands it over, `prepare` run on it first (an earlier middleware). */
  function serve(rawHeaders, prepare = () => {}) {
    const req = new IncomingMessage(null);
    req._addHeaderLines(rawHeaders, rawHeaders.length);
    prepare(req);
    const res = { statusCode: 200, setHeader() {}, end() {} };
    let passed = false;
    auth(req, res, (err) => {
      if (err) throw err;
      passed = true;
    });
    return { req, passed, verdict: req.keyward };
  }

  // Untouched: any case of the name, no header object built.
  for (const raw of [['Host', 'h', 'X-API-Key', reader.key], ['authorization', `Bearer ${reader.key}`, 'Accept', '*/*']]) {
    const { req, passed, verdict } = serve(raw);
    assert.deepEqual([passed, verdict.owner], [true, 'acct_r']);
    assert.equal(req[kHeaders], null, 'req.headers was not built');
  }
  let served = serve(['Host', 'h']);
  assert.deepEqual([served.passed, served.verdict.code], [false, 'CREDENTIAL_MISSING']);
  assert.equal(served.req[kHeaders], null);
  served = serve(['X-Api-Token-Id', keyward.parseKey(reader.key).id]);
  assert.deepEqual([served.passed, served.verdict.code], [false, 'HALF_PAIR']);

  // An earlier middleware set the credential header (from a cookie, say): req.headers rules.
  served = serve(['Host', 'h', 'x-api-key', 'kw_not_a_key'], (req) => {
    req.headers['x-api-key'] = other.key;
  });
  assert.deepEqual([served.passed, served.verdict.owner], [true, 'acct_o']);
  served = serve(['Host', 'h'], (req) => {
    req.headers = { authorization: `Bearer ${other.key}` };
  });
  assert.deepEqual([served.passed, served.verdict.owner], [true, 'acct_o']);

  // Repeated credential headers: node:http's rules, as req.headers applies them (the first
  // Authorization kept; x-api-key values joined, which is no key).
  served = serve(['Authorization', `Bearer ${reader.key}`, 'authorization', `Bearer ${other.key}`]);
  assert.deepEqual([served.passed, served.verdict.owner], [true, 'acct_r']);
  assert.notEqual(served.req[kHeaders], null, 'req.headers was built for the repeated header');
  served = serve(['x-api-key', reader.key, 'X-Api-Key', reader.key]);
  assert.deepEqual([served.passed, served.verdict.code], [false, 'MALFORMED']);

  assert.deepEqual(counts(store, reader.info.id), [3, 0]);
  assert.deepEqual(counts(store, other.info.id), [2, 0]);
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

test('express: a suspended owner is answered 403 OWNER_SUSPENDED, and served again once resumed', async (t) => {
  const store = freshStore(t);
  const created = store.create({ owner: 'acct_suspended' });
  const app = express();
  app.get('/me', keyward.middleware(store), (req, res) => res.json({ ok: true }));
  const server = await listen(app);
  t.after(() => server.close());
  const url = `http://127.0.0.1:${server.address().port}/me`;
  assert.equal((await request(url, { headers: { 'x-api-key': created.key } })).status, 200);
  store.suspendOwner('acct_suspended');
  const r = await request(url, { headers: { 'x-api-key': created.key } });
  assert.equal(r.status, 403);
  assert.equal(r.body.code, 'OWNER_SUSPENDED');
  assert.equal(r.headers['www-authenticate'], undefined);
  store.resumeOwner('acct_suspended');
  assert.equal((await request(url, { headers: { 'x-api-key': created.key } })).status, 200);
});
