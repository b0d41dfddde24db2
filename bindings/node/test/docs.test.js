'use strict';
// The examples of the README's Node section run as written (with a temporary store path).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { REPO, tempDir } = require('./helpers/common');

// The Node section of the README (up to the next top-level section).
const FULL = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const START = FULL.indexOf('## Use from Node.js');
const README = FULL.slice(START, FULL.indexOf('\n## ', START + 1));
const PACKAGE = path.resolve(__dirname, '..');

/** The first ```js block after a heading. */
function block(heading) {
  const at = README.indexOf(heading);
  assert.ok(at >= 0, `heading ${heading}`);
  const m = /```js\n([\s\S]*?)```/.exec(README.slice(at));
  return m[1];
}

function run(source) {
  const r = spawnSync(process.execPath, ['-e', source], { cwd: PACKAGE, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('README: the five-line example', (t) => {
  const db = path.join(tempDir(t), 'keys.redb');
  const code = block('### Five lines');
  assert.equal(code.trim().split('\n').length, 5);
  const out = run(code.replace('/var/lib/myapp/keys.redb', db));
  assert.match(out, /^give this to the customer once: kw_live_\w+\ntrue\n$/);
});

test('README: the key management example', (t) => {
  const db = path.join(tempDir(t), 'keys.redb');
  const code = block('### Manage keys');
  run(`const { Store } = require('keyward'); const store = new Store(${JSON.stringify(db)});\n${code}\nstore.close();`);
});

/**
 * Runs a README framework example as written (its store at a temporary path through
 * KEYWARD_DB), serving on an ephemeral loopback port: the example's `app` and `store`, then
 * `epilogue` (an async body given `base`, the server's URL, and `send(method, path, headers)`
 * resolving [status, body]); returns what the epilogue prints as JSON.
 */
function serveExample(t, code, listen, epilogue) {
  const db = path.join(tempDir(t), 'keys.redb');
  const source = `${code}
;(async () => {
  const base = await (${listen})();
  const send = async (method, path, headers = {}) => {
    const r = await fetch(base + path, { method, headers });
    const text = await r.text();
    return [r.status, text ? JSON.parse(text) : null];
  };
  ${epilogue}
})().catch((err) => { console.error(err); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', source], { cwd: PACKAGE, encoding: 'utf8', timeout: 30000, env: { ...process.env, KEYWARD_DB: db } });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

// Keys made by the example's own store, then one request per case; the use counts after.
const FRAMEWORK_CASES = `
  const deployer = store.create({ owner: 'acct_d', scopes: ['deploy'] });
  const reader = store.create({ owner: 'acct_r', scopes: ['reports:read'] });
  const gone = store.create({ owner: 'acct_g', scopes: ['deploy'] });
  store.revoke(gone.info.id);
  const out = {
    me: await send('GET', '/api/me', { authorization: 'Bearer ' + reader.key }),
    missing: await send('GET', '/api/me'),
    deploy: await send('POST', '/api/deploy', { 'x-api-key': deployer.key }),
    noScope: await send('POST', '/api/deploy', { 'x-api-key': reader.key }),
    revoked: await send('POST', '/api/deploy', { 'x-api-key': gone.key }),
    extra: typeof EXTRA === 'function' ? await EXTRA(send, { deployer, reader }) : null,
  };
  store.flush();
  out.uses = [deployer, reader, gone].map((k) => store.usage(k.info.id).uses);
  console.log(JSON.stringify(out));
  await CLOSE();
  store.close();
`;

test('README: the Express example serves 200 / 401 / 403, one use per request', (t) => {
  const code = block('### Express\n');
  const out = serveExample(t, code,
    `() => new Promise((resolve) => { const server = app.listen(0, '127.0.0.1', () => { globalThis.CLOSE = () => new Promise((r) => server.close(r)); resolve('http://127.0.0.1:' + server.address().port); }); })`,
    FRAMEWORK_CASES);
  assert.deepEqual(out.me, [200, { owner: 'acct_r' }]);
  assert.deepEqual([out.missing[0], out.missing[1].code], [401, 'CREDENTIAL_MISSING']);
  assert.deepEqual(out.deploy, [200, { deployedBy: 'acct_d' }]);
  assert.deepEqual([out.noScope[0], out.noScope[1].code], [403, 'INSUFFICIENT_SCOPE']);
  assert.deepEqual([out.revoked[0], out.revoked[1].code], [401, 'REVOKED']);
  // deployer: POST /api/deploy through two layers, one use; reader: /api/me, and the app-level
  // layer accepted it on /api/deploy before the route's refused it (stacking, as documented).
  assert.deepEqual(out.uses, [1, 2, 0]);
});

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

test('README: the Fastify example serves 200 / 401 / 403, public /health, one use per request', { skip: NODE_MAJOR < 20 ? 'fastify 5 needs Node >= 20' : false }, (t) => {
  const code = block('### Fastify\n');
  const out = serveExample(t, code,
    `async () => { globalThis.CLOSE = () => app.close(); return app.listen({ port: 0, host: '127.0.0.1' }); }`,
    `const EXTRA = async (send, { deployer, reader }) => [
      await send('GET', '/api/reports', { 'x-api-key': reader.key }),
      await send('GET', '/api/reports', { 'x-api-key': deployer.key }),
      await send('GET', '/health'),
    ];
    ${FRAMEWORK_CASES}`);
  assert.deepEqual(out.me, [200, { owner: 'acct_r' }]);
  assert.deepEqual([out.missing[0], out.missing[1].code], [401, 'CREDENTIAL_MISSING']);
  assert.deepEqual(out.deploy, [200, { deployedBy: 'acct_d' }]);
  assert.deepEqual([out.noScope[0], out.noScope[1].code], [403, 'INSUFFICIENT_SCOPE']);
  assert.deepEqual([out.revoked[0], out.revoked[1].code], [401, 'REVOKED']);
  const [reports, reportsNoScope, health] = out.extra;
  assert.deepEqual(reports, [200, { reportsFor: 'acct_r' }]);
  assert.deepEqual([reportsNoScope[0], reportsNoScope[1].code], [403, 'INSUFFICIENT_SCOPE']);
  assert.deepEqual(health, [200, { ok: true }]);
  // deployer: /api/deploy, and /api/reports (accepted by the plugin, refused by require());
  // reader: /api/me and /api/reports (its /api/deploy was refused in the one verify: no use).
  assert.deepEqual(out.uses, [2, 2, 0]);
});
