'use strict';
// Legacy keys through the Node binding (issue 18, item 1): exports made with the real
// algorithms of Sanctum, djangorestframework-api-key, Unkey and Better Auth
// (tests/legacy/make_exports.py: Python's hashlib, SQLite tables shaped like theirs) are
// imported with store.importLegacy; their keys verify VALID, wrong ones are refused, the first
// use upgrades the record (info.legacy.upgradedAt), a second process sees the keys and the
// upgrade, and the store's files hold no raw legacy hash.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const kw = require('..');

const REPO = path.resolve(__dirname, '..', '..', '..');
const exportsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-legacy-'));
execFileSync('python3', [
  path.join(REPO, 'tests', 'legacy', 'make_exports.py'), '--now', String(Math.floor(Date.now() / 1000)), exportsDir,
]);
const cases = JSON.parse(fs.readFileSync(path.join(exportsDir, 'cases.json'), 'utf8'));
test.after(() => fs.rmSync(exportsDir, { recursive: true, force: true }));

const optionsOf = (c) => ({
  sanctumExpirationMinutes: c.options.sanctum_expiration_minutes,
  allScopes: c.options.all_scopes,
  defaultOwner: c.options.default_owner,
});

const CHILD = `
const kw = require(${JSON.stringify(path.resolve(__dirname, '..'))});
const store = new kw.Store(process.argv[1]);
console.log(JSON.stringify(JSON.parse(process.argv[2]).map((k) => store.verify(k).code)));
store.close();
`;

for (const source of ['sanctum', 'drf', 'unkey', 'better-auth']) {
  test(`legacy: ${source} keys verify after import and upgrade on first use`, () => {
    const c = cases[source];
    const data = fs.readFileSync(path.join(exportsDir, c.file));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-legacy-store-'));
    try {
      const file = path.join(dir, 'keys.redb');
      const store = new kw.Store(file);
      assert.equal(store.verify(c.valid[0].key).code, 'MALFORMED');
      const importable = c.valid.length + c.revoked.length + c.expired.length;
      const dry = store.importLegacy(source, data, { ...optionsOf(c), dryRun: true });
      assert.equal(dry.dryRun, true);
      assert.equal(dry.imported, importable);
      assert.equal(store.verify(c.valid[0].key).code, 'MALFORMED');
      const report = store.importLegacy(source, data, optionsOf(c));
      assert.deepEqual([report.imported, report.revoked, report.expired], [importable, c.revoked.length, c.expired.length]);
      const child = execFileSync(process.execPath, ['-e', CHILD, file, JSON.stringify(c.valid.map((v) => v.key))], {
        encoding: 'utf8',
      });
      assert.deepEqual(JSON.parse(child), c.valid.map(() => 'VALID'));
      for (const v of c.valid) {
        const id = kw.legacyKeyId(source, v.source_id);
        const info = store.get(id);
        assert.equal(info.legacy.scheme, source);
        assert.equal(info.legacy.sourceId, v.source_id);
        assert.equal(typeof info.legacy.upgradedAt, 'number', 'the child process upgraded it');
        assert.equal(info.owner, v.owner);
        assert.deepEqual(info.scopes, v.scopes);
        const verdict = store.verify(v.key, { scopes: v.scopes });
        assert.equal(verdict.code, 'VALID');
        assert.equal(verdict.keyId, id);
      }
      for (const w of c.wrong) assert.equal(store.verify(w).code, 'NOT_FOUND');
      for (const r of c.revoked) assert.equal(store.verify(r.key).code, 'REVOKED');
      for (const e of c.expired) assert.equal(store.verify(e.key).code, 'EXPIRED');
      store.close();
      for (const name of fs.readdirSync(dir)) {
        const bytes = fs.readFileSync(path.join(dir, name));
        for (const h of c.raw_hashes) assert.ok(!bytes.includes(Buffer.from(h)), `${name} holds a raw legacy hash`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('legacy: bad exports and arguments', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-legacy-bad-'));
  try {
    const store = new kw.Store(path.join(dir, 'keys.redb'));
    const data = fs.readFileSync(path.join(exportsDir, 'sanctum.csv'));
    assert.throws(
      () => store.importLegacy('sanctum', data),
      (e) => e instanceof kw.InvalidArgumentError && e.code === 'LEGACY_IMPORT_INVALID' && /line 2/.test(e.message),
    );
    assert.throws(() => store.importLegacy('lotus-notes', data), kw.InvalidArgumentError);
    assert.throws(() => store.importLegacy('drf', 42), TypeError);
    assert.throws(() => store.importLegacy('drf', data, { bogus: 1 }), TypeError);
    assert.throws(() => kw.legacyKeyId('sanctum', ''), kw.InvalidArgumentError);
    assert.equal(kw.legacyKeyId('sanctum', '7'), kw.legacyKeyId('sanctum', '7'));
    assert.notEqual(kw.legacyKeyId('sanctum', '7'), kw.legacyKeyId('unkey', '7'));
    store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
