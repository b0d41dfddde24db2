'use strict';
// Copied into a fresh application and run there after installing keyward as the README says: the package
// must load from the application's node_modules (no KEYWARD_LIB), create a key, and accept
// it over node:http on 127.0.0.1 while refusing a request without one.
//   node check.js <expected library source: a path fragment>
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

assert.equal(process.env.KEYWARD_LIB, undefined, 'KEYWARD_LIB must not be set');
const appModules = path.join(process.cwd(), 'node_modules');
const keywardDir = path.join(appModules, 'keyward');
assert.ok(!fs.lstatSync(keywardDir).isSymbolicLink(), 'keyward is copied into node_modules, not linked');
const keyward = require('keyward');
const expected = path.join(appModules, process.argv[2]);
assert.equal(keyward.library.file, expected, 'the library comes from the expected package');
assert.ok(fs.realpathSync(keyward.library.file).startsWith(fs.realpathSync(appModules)), 'a copy inside the application');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-install-check-'));
const store = new keyward.Store(path.join(dir, 'keys.redb'));
const { key, info } = store.create({ owner: 'acct_1', scopes: ['read'] });
assert.equal(store.verify(key, { scopes: ['read'] }).ok, true);

const read = new keyward.Scopes(['read']);
const server = http.createServer((req, res) => {
  const verdict = store.verifyHeaders(req.headers, { scopes: read });
  if (!verdict.ok) return keyward.sendRefusal(res, verdict);
  res.end(JSON.stringify({ owner: verdict.owner }));
});
server.listen(0, '127.0.0.1', async () => {
  const url = `http://127.0.0.1:${server.address().port}/`;
  try {
    const ok = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { owner: 'acct_1' });
    const refused = await fetch(url);
    assert.equal(refused.status, 401);
    assert.equal((await refused.json()).code, 'CREDENTIAL_MISSING');
    store.revoke(info.id, 'install check');
    assert.equal((await fetch(url, { headers: { 'x-api-key': key } })).status, 401);
    console.log(`ok: ${path.relative(process.cwd(), keyward.library.file)} (libkeyward ${keyward.library.version}), key served and verified over node:http`);
  } finally {
    server.close();
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
