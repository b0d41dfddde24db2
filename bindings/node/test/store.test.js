'use strict';
// Every function of the binding, and bad input: closed store, oversize key, wrong types,
// limits, policies, open errors.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const kw = require('..');
const { Store, Scopes, KeywardError } = kw;
const { tempDir, freshStore } = require('./helpers/common');

const DAY = 86400000;

test('library: version, ABI version, constants', () => {
  assert.equal(kw.library.abiVersion, kw.ABI_VERSION);
  assert.match(kw.library.version, /^\d+\.\d+\.\d+/);
  assert.ok(path.isAbsolute(kw.library.file) || !kw.library.file.includes('/'));
  assert.equal(kw.constants.KW_MAX_KEY_LEN, 88);
  assert.equal(kw.statusName(10), 'NOT_FOUND');
  assert.equal(typeof kw.statusMessage(10), 'string');
  assert.equal(kw.statusName(9999), 'UNKNOWN');
});

test('open: defaults, pepper (bytes and hex), pepper file, prefix, options', (t) => {
  const dir = tempDir(t);
  const a = new Store(path.join(dir, 'a.redb'));
  t.after(() => a.close());
  assert.ok(Number.isSafeInteger(a.handle) && a.handle > 0);
  assert.ok(fs.existsSync(path.join(dir, 'a.redb.pepper')), 'default pepper file beside the database');
  assert.equal(a.path, path.join(dir, 'a.redb'));

  const pepper = Buffer.alloc(32, 7);
  const b = Store.open(path.join(dir, 'b.redb'), { pepper, prefix: 'acme', concurrency: 'multi-process', flushIntervalMs: 'manual' });
  const { key } = b.create({ owner: 'o' });
  assert.match(key, /^acme_/);
  assert.equal(b.verify(key).ok, true);
  b.close();
  // The same pepper as 64 hexadecimal characters opens it again.
  const b2 = new Store(path.join(dir, 'b.redb'), { pepper: pepper.toString('hex') });
  assert.equal(b2.verify(key).ok, true);
  b2.close();
  // A wrong pepper is refused at open.
  assert.throws(() => new Store(path.join(dir, 'b.redb'), { pepper: Buffer.alloc(32, 8) }), {
    name: 'OpenError',
    code: 'WRONG_PEPPER',
  });
  assert.throws(() => new Store(path.join(dir, 'c.redb'), { pepper: 'not hex' }), { code: 'PEPPER_INVALID' });

  const pepperFile = path.join(dir, 'pepper.hex');
  fs.writeFileSync(pepperFile, pepper.toString('hex'), { mode: 0o600 });
  const c = new Store(path.join(dir, 'b.redb'), { pepperFile });
  assert.equal(c.verify(key).ok, true);
  c.close();
  assert.throws(() => new Store(path.join(dir, 'd.redb'), { pepper, pepperFile }), { name: 'InvalidArgumentError', code: 'INVALID_ARGUMENT' });

  const e = new Store(path.join(dir, 'e.redb'), {
    concurrency: 'single-process',
    maxActiveKeysPerOwner: 10,
    keepLastKey: true,
    maxLifetimeMs: 30 * DAY,
    flushIntervalMs: 50,
    indexCapacity: 1000,
  });
  e.close();
});

test('open: errors and wrong types', (t) => {
  const dir = tempDir(t);
  assert.throws(() => new Store(path.join(dir, 'missing', 'x.redb')), (err) => {
    assert.ok(err instanceof kw.OpenError && err instanceof KeywardError && err instanceof Error);
    assert.equal(err.code, 'DIRECTORY_MISSING');
    assert.equal(err.status, 30);
    assert.equal(err.operation, 'open');
    assert.match(err.message, /DIRECTORY_MISSING/);
    return true;
  });
  assert.throws(() => new Store(''), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => new Store('x'.repeat(5000)), { code: 'TOO_LONG' });
  assert.throws(() => new Store(42), TypeError);
  assert.throws(() => new Store(), TypeError);
  assert.throws(() => new Store(path.join(dir, 'a.redb'), 'fast'), TypeError);
  assert.throws(() => new Store(path.join(dir, 'a.redb'), { flushInterval: 5 }), /unknown option "flushInterval"/);
  assert.throws(() => new Store(path.join(dir, 'a.redb'), { concurrency: 'many' }), TypeError);
  assert.throws(() => new Store(path.join(dir, 'a.redb'), { pepper: 42 }), TypeError);
  assert.throws(() => new Store(path.join(dir, 'a.redb'), { maxActiveKeysPerOwner: -1 }), TypeError);
  assert.throws(() => new Store(path.join(dir, 'a.redb'), { prefix: 'UPPER' }), { code: 'INVALID_ARGUMENT' });
});

test('errors carry the library\'s detail of the failure (kw_last_error_message)', (t) => {
  const dir = tempDir(t);
  // A directory where the store file should be: the message says so, not just "invalid".
  assert.throws(() => new Store(dir), (err) => {
    assert.ok(err instanceof kw.InvalidArgumentError);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.detail, /is a directory/);
    assert.ok(err.detail.includes(dir), err.detail);
    assert.equal(err.message, `keyward open: ${err.detail} (INVALID_ARGUMENT)`);
    return true;
  });
  // A pepper file readable by others: the message names the file and what to do.
  const db = path.join(dir, 'keys.redb');
  new Store(db).close();
  fs.chmodSync(`${db}.pepper`, 0o644);
  assert.throws(() => new Store(db), (err) => {
    assert.ok(err instanceof kw.OpenError);
    assert.equal(err.code, 'PEPPER_PERMISSIONS');
    assert.ok(err.message.includes(`${db}.pepper`), err.message);
    assert.match(err.message, /chmod 600/);
    return true;
  });
  fs.chmodSync(`${db}.pepper`, 0o600);
  const store = new Store(db);
  t.after(() => store.close());
  assert.throws(() => store.get('k_unknown'), (err) => {
    assert.equal(err.code, 'NOT_FOUND');
    assert.match(err.message, /k_unknown/);
    return true;
  });
  // An error the binding raises before calling the library never carries an older detail.
  assert.throws(() => store.get('k_unknown'), { code: 'NOT_FOUND' });
  assert.throws(() => store.verify('x', { scopes: Array(100).fill('s') }), (err) => {
    assert.equal(err.code, 'TOO_LONG');
    assert.equal(err.detail, '');
    assert.doesNotMatch(err.message, /k_unknown/);
    return true;
  });
});

test('re-opening a path shares the store; persistent; config mismatch; sameStore', (t) => {
  const dir = tempDir(t);
  const p = path.join(dir, 'k.redb');
  const a = new Store(p);
  const b = new Store(p);
  const other = new Store(path.join(dir, 'other.redb'));
  t.after(() => [a, b, other].forEach((s) => s.close()));
  assert.notEqual(a.handle, b.handle);
  assert.equal(a.sameStore(b), true);
  assert.equal(a.sameStore(other), false);
  assert.throws(() => a.sameStore({}), TypeError);
  const { key } = a.create({ owner: 'o' });
  assert.equal(b.verify(key).ok, true);
  assert.throws(() => new Store(p, { concurrency: 'single-process' }), { code: 'CONFIG_MISMATCH' });
  // persistent: the store stays open (warm) after its last close, until releasePersistent().
  const pPath = path.join(dir, 'p.redb');
  const persistent = new Store(pPath, { persistent: true, flushIntervalMs: 'manual' });
  const pk = persistent.create({ owner: 'o' });
  assert.equal(persistent.verify(pk.key).ok, true);
  persistent.close();
  const again = new Store(pPath, { persistent: true, flushIntervalMs: 'manual' });
  assert.equal(again.stats().dirtyKeys, 1, 'still the same warm store, its count not yet flushed');
  again.close();
  kw.releasePersistent();
  const fresh = new Store(pPath);
  assert.equal(fresh.stats().dirtyKeys, 0, 'released: flushed and closed, this is a new store');
  assert.equal(fresh.usage(pk.info.id).uses, 1);
  fresh.close();
});

test('create: every field, the key once, records', (t) => {
  const store = freshStore(t);
  const expiresAt = Date.now() + 7 * DAY;
  const { key, info } = store.create({
    owner: 'acct_42',
    name: 'CI deploy',
    scopes: ['write', 'read', 'read'],
    env: 'live',
    metadata: { team: 'infra' },
    expiresAt: new Date(expiresAt),
    credits: { remaining: 100, refillAmount: 100, refillInterval: 'monthly', cost: 2 },
  });
  assert.match(key, /^kw_live_[0-9A-Za-z]+$/);
  assert.equal(kw.parseKey(key).id, info.id);
  assert.deepEqual(info.scopes, ['read', 'write'], 'sorted, without duplicates');
  assert.equal(info.owner, 'acct_42');
  assert.equal(info.name, 'CI deploy');
  assert.equal(info.env, 'live');
  assert.equal(info.expiresAt, expiresAt);
  assert.deepEqual(JSON.parse(info.metadata.toString()), { team: 'infra' });
  assert.deepEqual(info.credits, { cost: 2, refill: { interval: 'monthly', amount: 100 } });
  assert.equal(info.revokedAt, null);
  assert.ok(info.serial >= 1);
  // The record never holds the secret.
  assert.ok(!JSON.stringify(info).includes(kw.parseKey(key).secret));
  assert.ok(!JSON.stringify(store.get(info.id)).includes(kw.parseKey(key).secret));

  const minimal = store.create({ owner: 'acct_42' });
  assert.match(minimal.key, /^kw_[0-9A-Za-z]+$/);
  assert.equal(minimal.info.env, null);
  assert.equal(minimal.info.expiresAt, null);
  assert.equal(minimal.info.credits, null);
  assert.equal(minimal.info.metadata.length, 0);
  assert.deepEqual(store.create({ owner: 'o', metadata: Buffer.from([0, 255]) }).info.metadata, Buffer.from([0, 255]));
  assert.equal(store.create({ owner: 'o', metadata: 'plain' }).info.metadata.toString(), 'plain');
});

test('create: bad input', (t) => {
  const store = freshStore(t);
  assert.throws(() => store.create(), TypeError);
  assert.throws(() => store.create('acct'), TypeError);
  assert.throws(() => store.create({}), TypeError);
  assert.throws(() => store.create({ owner: 7 }), TypeError);
  assert.throws(() => store.create({ owner: 'o', scopes: 'read' }), TypeError);
  assert.throws(() => store.create({ owner: 'o', scopes: [1] }), TypeError);
  assert.throws(() => store.create({ owner: 'o', expiresAt: 'tomorrow' }), TypeError);
  assert.throws(() => store.create({ owner: 'o', credits: 5 }), TypeError);
  assert.throws(() => store.create({ owner: 'o', credits: { remaining: 1, refillInterval: 'weekly' } }), TypeError);
  assert.throws(() => store.create({ owner: 'o', credits: { remaining: 1, extra: 1 } }), TypeError);
  assert.throws(() => store.create({ owner: 'o', metadata: 42 }), TypeError);
  assert.throws(() => store.create({ owner: 'o', colour: 'red' }), /unknown option "colour"/);
  assert.throws(() => store.create({ owner: '   ' }), { name: 'InvalidArgumentError', code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.create({ owner: '' }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.create({ owner: 'o'.repeat(129) }), { code: 'TOO_LONG' });
  assert.throws(() => store.create({ owner: 'o', name: 'n'.repeat(257) }), { code: 'TOO_LONG' });
  assert.throws(() => store.create({ owner: 'o', env: 'LIVE' }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.create({ owner: 'o', scopes: [''] }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.create({ owner: 'o', scopes: ['s'.repeat(65)] }), { code: 'TOO_LONG' });
  assert.throws(() => store.create({ owner: 'o', scopes: Array.from({ length: 65 }, (_, i) => `s${i}`) }), { code: 'TOO_LONG' });
  assert.throws(() => store.create({ owner: 'o', metadata: Buffer.alloc(4097) }), { code: 'TOO_LONG' });
  assert.throws(() => store.create({ owner: 'o', expiresAt: -5 }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.create({ owner: Buffer.from([0xff, 0xfe]) }), { code: 'INVALID_UTF8' });
});

test('policies: max active keys, keep last key, max lifetime', (t) => {
  const store = freshStore(t, { maxActiveKeysPerOwner: 2, keepLastKey: true, maxLifetimeMs: 10 * DAY });
  const soon = Date.now() + DAY;
  assert.throws(() => store.create({ owner: 'o' }), { name: 'PolicyError', code: 'POLICY_MAX_LIFETIME' });
  assert.throws(() => store.create({ owner: 'o', expiresAt: Date.now() + 11 * DAY }), { code: 'POLICY_MAX_LIFETIME' });
  const a = store.create({ owner: 'o', expiresAt: soon });
  const b = store.create({ owner: 'o', expiresAt: soon });
  assert.throws(() => store.create({ owner: 'o', expiresAt: soon }), { name: 'PolicyError', code: 'POLICY_MAX_ACTIVE_KEYS', status: 20 });
  store.revoke(a.info.id);
  assert.throws(() => store.revoke(b.info.id), { code: 'POLICY_LAST_ACTIVE_KEY' });
  assert.throws(() => store.delete(b.info.id), { code: 'POLICY_LAST_ACTIVE_KEY' });
});

test('get, list (pages, states), listAll, allKeys', (t) => {
  const store = freshStore(t);
  const made = [];
  for (let i = 0; i < 5; i++) made.push(store.create({ owner: 'acct', name: `k${i}` }).info);
  store.create({ owner: 'someone else' });
  store.revoke(made[1].id, 'leaked');
  store.create({ owner: 'acct', expiresAt: Date.now() + 1 });

  assert.deepEqual(store.get(made[0].id), made[0]);
  assert.throws(() => store.get('ZZZZzzzz00009999'), { name: 'NotFoundError', code: 'NOT_FOUND', status: 10 });
  assert.throws(() => store.get('not an id'), { code: 'NOT_FOUND' });
  assert.throws(() => store.get(5), TypeError);

  const first = store.list('acct', { limit: 2 });
  assert.deepEqual(first.keys.map((k) => k.name), ['k0', 'k1']);
  assert.equal(typeof first.next, 'number');
  const second = store.list('acct', { limit: 2, after: first.next });
  assert.deepEqual(second.keys.map((k) => k.name), ['k2', 'k3']);
  assert.equal(store.list('acct').keys.length, 6);
  assert.equal(store.list('acct').next, null);
  assert.equal(store.list('nobody').keys.length, 0);
  const until = Date.now() + 5;
  while (Date.now() < until); // let the 1 ms key expire
  assert.deepEqual(store.list('acct', { state: 'revoked' }).keys.map((k) => k.id), [made[1].id]);
  assert.equal(store.list('acct', { state: 'revoked' }).keys[0].revokeReason, 'leaked');
  assert.equal(store.list('acct', { state: 'active' }).keys.length, 4);
  assert.equal(store.list('acct', { state: 'expired' }).keys.length, 1);
  assert.equal(store.list('acct', { state: 'all' }).keys.length, 6);
  assert.deepEqual([...store.listAll('acct', { pageSize: 2 })].map((k) => k.id), store.list('acct').keys.map((k) => k.id));
  assert.throws(() => store.list('acct', { state: 'gone' }), TypeError);
  assert.throws(() => store.list('acct', { limit: 1001 }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.list('acct', { limit: -1 }), TypeError);
  assert.throws(() => store.list('acct', { page: 2 }), TypeError);
  assert.throws(() => store.list('o'.repeat(129)), { code: 'TOO_LONG' });

  const all = store.allKeys();
  assert.equal(all.length, 7);
  assert.deepEqual(all.map((k) => k.serial), [...all.map((k) => k.serial)].sort((x, y) => x - y));
});

test('JSON outputs larger than the first buffer grow it', (t) => {
  const store = freshStore(t);
  const metadata = Buffer.alloc(4096, 0x41);
  for (let i = 0; i < 40; i++) store.create({ owner: 'big', metadata });
  const all = store.allKeys();
  assert.equal(all.length, 40);
  assert.ok(all.every((k) => k.metadata.equals(metadata)));
  assert.equal(store.list('big', { limit: 1000 }).keys.length, 40);
});

test('update: every field, nulls, bad input', (t) => {
  const store = freshStore(t);
  const { key, info } = store.create({ owner: 'o', scopes: ['read'], credits: { remaining: 5 } });
  const later = Date.now() + DAY;
  let u = store.update(info.id, { name: 'renamed', scopes: ['admin', 'read'], metadata: { v: 2 }, expiresAt: later, credits: { remaining: 9, cost: 3 } });
  assert.equal(u.name, 'renamed');
  assert.deepEqual(u.scopes, ['admin', 'read']);
  assert.deepEqual(JSON.parse(u.metadata), { v: 2 });
  assert.equal(u.expiresAt, later);
  assert.deepEqual(store.credits(info.id), { cost: 3, remaining: 9, refillAmount: 0, refillInterval: 'none' });
  assert.equal(store.verify(key, { scopes: ['admin'] }).ok, true);
  u = store.update(info.id, { expiresAt: null, credits: null, metadata: null });
  assert.equal(u.expiresAt, null);
  assert.equal(u.credits, null);
  assert.equal(u.metadata.length, 0);
  assert.equal(store.credits(info.id), null);
  assert.equal(u.name, 'renamed', 'untouched fields stay');
  assert.deepEqual(store.update(info.id, {}), store.get(info.id));
  u = store.update(info.id, { scopes: [] });
  assert.deepEqual(u.scopes, []);
  assert.equal(store.verify(key, { scopes: ['read'] }).code, 'INSUFFICIENT_SCOPE');
  assert.throws(() => store.update(info.id, { owner: 'x' }), /unknown option "owner"/);
  assert.throws(() => store.update(info.id), TypeError);
  assert.throws(() => store.update(info.id, { name: 5 }), TypeError);
  assert.throws(() => store.update(info.id, { scopes: 'admin' }), TypeError);
  assert.throws(() => store.update('ZZZZzzzz00009999', { name: 'x' }), { code: 'NOT_FOUND' });
  assert.throws(() => store.update(info.id, { name: 'n'.repeat(300) }), { code: 'TOO_LONG' });
});

test('revoke, delete, rotate', (t) => {
  const store = freshStore(t);
  const a = store.create({ owner: 'o', scopes: ['read'] });
  const r = store.revoke(a.info.id, 'compromised');
  assert.ok(r.revokedAt > 0);
  assert.equal(r.revokeReason, 'compromised');
  assert.equal(store.revoke(a.info.id).revokedAt, r.revokedAt, 'revoking again changes nothing');
  const v = store.verify(a.key);
  assert.equal(v.code, 'REVOKED');
  assert.equal(v.revoked, true);
  assert.equal(v.httpStatus, 401);
  assert.throws(() => store.revoke(a.info.id, 'r'.repeat(513)), { code: 'TOO_LONG' });
  assert.throws(() => store.revoke(a.info.id, 5), TypeError);
  assert.throws(() => store.revoke('ZZZZzzzz00009999'), { code: 'NOT_FOUND' });

  const b = store.create({ owner: 'o', scopes: ['read'], name: 'b' });
  const rotated = store.rotate(b.info.id);
  assert.notEqual(rotated.key, b.key);
  assert.equal(rotated.info.rotatedFrom, b.info.id);
  assert.equal(rotated.info.name, 'b');
  assert.equal(store.get(b.info.id).rotatedTo, rotated.info.id);
  assert.equal(store.verify(b.key).ok, true, 'the old key stays valid for the default grace (24 h)');
  assert.equal(store.verify(b.key, { at: Date.now() + DAY + 60000 }).code, 'EXPIRED');
  const vr = store.verify(b.key);
  assert.equal(vr.rotated, true);
  assert.equal(store.verify(rotated.key, { scopes: ['read'] }).ok, true);
  const c = store.rotate(rotated.info.id, { graceMs: 0 });
  assert.equal(store.verify(rotated.key, { at: Date.now() + 1000 }).code, 'EXPIRED');
  assert.throws(() => store.rotate(c.info.id, { graceMs: -1 }), TypeError);
  assert.throws(() => store.rotate(c.info.id, { grace: 5 }), TypeError);
  assert.throws(() => store.rotate(a.info.id), { code: 'INVALID_ARGUMENT' }, 'a revoked key cannot be rotated');

  store.delete(c.info.id);
  assert.throws(() => store.get(c.info.id), { code: 'NOT_FOUND' });
  assert.equal(store.verify(c.key).code, 'NOT_FOUND');
  assert.throws(() => store.delete(c.info.id), { code: 'NOT_FOUND' });
  assert.throws(() => store.delete(null), TypeError);
});

test('verify: options, verdict fields, info, prepared scopes', (t) => {
  const store = freshStore(t);
  const expiresAt = Date.now() + DAY;
  const { key, info } = store.create({ owner: 'acct_ü', scopes: ['read', 'write'], env: 'test', expiresAt, credits: { remaining: 20 } });
  const v = store.verify(key, { scopes: ['read'] });
  assert.equal(v instanceof kw.Verdict, true);
  assert.deepEqual(
    { ...v },
    {
      ok: true, code: 'VALID', reason: 0, httpStatus: 200, message: v.message, keyFound: true, keyId: info.id,
      owner: 'acct_ü', env: 'test', createdAt: info.createdAt, expiresAt, limited: true, revoked: false, rotated: false, info: null, rate: null,
    },
  );
  assert.deepEqual(v.toResponse(), { ok: true, code: 'VALID', message: v.message });
  assert.deepEqual(store.verify(key, { info: true }).info, store.get(info.id));
  assert.equal(store.verify(key, { scopes: new Scopes(['read', 'write']) }).ok, true);
  assert.equal(store.verify(key, { scopes: new Scopes(['admin']) }).code, 'INSUFFICIENT_SCOPE');
  assert.equal(store.verify(key, { scopes: new Scopes([]) }).ok, true);
  assert.equal(store.verify(key, { scopes: null }).ok, true);
  assert.equal(store.verify(key, null).ok, true);
  assert.equal(store.verify(Buffer.from(key)).ok, true);
  assert.equal(store.verify(new Uint8Array(Buffer.from(key))).ok, true);
  // Eight accepted verifies so far (the refused one spent nothing: scopes come first).
  assert.equal(store.credits(info.id).remaining, 12);
  assert.equal(store.verify(key, { cost: 5 }).ok, true);
  assert.equal(store.verify(key, { cost: 5 }).ok, true);
  assert.equal(store.credits(info.id).remaining, 2);
  const exhausted = store.verify(key, { cost: 5 });
  assert.equal(exhausted.code, 'USAGE_EXCEEDED');
  assert.equal(exhausted.httpStatus, 403);
  assert.equal(store.verify(key, { at: new Date(expiresAt + 1) }).code, 'EXPIRED');

  const refused = store.verify('kw_test_0000000000000000000000000000000000000000000000000');
  assert.equal(refused.ok, false);
  assert.equal(refused.keyFound, false);
  assert.equal(refused.keyId, null);
  assert.equal(refused.owner, null);
  assert.equal(refused.createdAt, null);
  assert.equal(refused.reason, 1);
  assert.equal(refused.code, 'MALFORMED');
  assert.equal(refused.httpStatus, 401);
  assert.equal(store.verify(key.slice(0, -1) + (key.endsWith('a') ? 'b' : 'a')).code, 'MALFORMED', 'checksum');
});

test('verify: oversize keys and wrong types', (t) => {
  const store = freshStore(t);
  const { key } = store.create({ owner: 'o' });
  for (const big of ['k'.repeat(1025), 'kw_' + 'A'.repeat(100000), key + 'x'.repeat(2000), Buffer.alloc(70000, 0x41), 'é'.repeat(400)]) {
    const v = store.verify(big);
    assert.equal(v.code, 'MALFORMED');
    assert.equal(v.httpStatus, 401);
  }
  assert.equal(store.verify('').code, 'MALFORMED');
  assert.equal(store.verify(Buffer.alloc(0)).code, 'MALFORMED');
  // Strings reach the ABI as exactly their UTF-8 bytes (embedded NULs, surrogates, long ones).
  for (const s of [key, `${key}\0`, `\0${key}`, key.replace('_', '\0'), `${key.slice(0, 20)}\ud800${key.slice(21)}`, 'é'.repeat(340), `${key}é`, `é${key}`, `${key.slice(0, 30)}€${key.slice(30)}`, `${key}\u{1F511}`]) {
    // (Messages name the case by its length: a key is never printed.)
    assert.deepEqual({ ...store.verify(s) }, { ...store.verify(Buffer.from(s, 'utf8')) }, `text of ${s.length} characters`);
    if (s !== key) assert.equal(store.verify(s).code, 'MALFORMED', `text of ${s.length} characters`);
  }
  assert.equal(store.verify('\ud800').code, 'MALFORMED', 'a lone surrogate');
  // Bytes that are not UTF-8 are client input like any malformed key (kw_verify_key).
  assert.equal(store.verify(Buffer.from([0xff, 0xfe])).code, 'MALFORMED');
  assert.equal(store.verify(Buffer.from([0xff, 0xfe]), { scopes: ['read'] }).code, 'MALFORMED');
  // The same answer from kw_verify (the path of a time, a cost or the record).
  for (const opts of [{ info: true }, { at: Date.now() }, { cost: 1 }]) {
    const v = store.verify(Buffer.from([0xff, 0xfe]), opts);
    assert.deepEqual([v.code, v.httpStatus, v.keyFound, v.info], ['MALFORMED', 401, false, null], JSON.stringify(opts));
  }
  for (const bad of [undefined, null, 42, {}, [key], Symbol('k')]) {
    assert.throws(() => store.verify(bad), TypeError);
  }
  assert.throws(() => store.verify(key, 'read'), TypeError);
  assert.throws(() => store.verify(key, { scopes: 'read' }), TypeError);
  assert.throws(() => store.verify(key, { scopes: [1] }), TypeError);
  assert.throws(() => store.verify(key, { cost: -1 }), TypeError);
  assert.throws(() => store.verify(key, { cost: 1.5 }), TypeError);
  assert.throws(() => store.verify(key, { cost: 2 ** 32 }), TypeError);
  assert.throws(() => store.verify(key, { at: 'now' }), TypeError);
  assert.throws(() => store.verify(key, { at: new Date(NaN) }), TypeError);
  assert.throws(() => store.verify(key, { info: 1 }), TypeError);
  assert.throws(() => store.verify(key, { scope: ['read'] }), /unknown option "scope"/);
  assert.throws(() => store.verify(key, { at: -1 }), { name: 'InvalidArgumentError', code: 'INVALID_ARGUMENT' });
  const many = Array.from({ length: 65 }, (_, i) => `s${i}`);
  assert.throws(() => store.verify(key, { scopes: many }), { name: 'InvalidArgumentError', code: 'TOO_LONG' });
  assert.throws(() => new Scopes(many), { code: 'TOO_LONG' });
  assert.throws(() => new Scopes('read'), TypeError);
  // The route's scopes are the application's: one past KW_MAX_SCOPE_LEN is an argument error
  // (whatever the key), one at the limit that the key lacks a refusal.
  assert.throws(() => store.verify(key, { scopes: ['s'.repeat(65)] }), { name: 'InvalidArgumentError', code: 'TOO_LONG' });
  assert.throws(() => store.verify('garbage', { scopes: ['s'.repeat(10000)] }), { name: 'InvalidArgumentError', code: 'TOO_LONG' });
  assert.equal(store.verify(key, { scopes: ['s'.repeat(64)] }).code, 'INSUFFICIENT_SCOPE');
  assert.equal(store.verify(key).ok, true, 'still working after all that');
});

test('verifyPair', (t) => {
  const store = freshStore(t);
  const { key } = store.create({ owner: 'o', scopes: ['read'] });
  const { id, secret } = kw.parseKey(key);
  assert.equal(store.verifyPair(id, secret).ok, true);
  assert.equal(store.verifyPair(id, key).ok, true, 'the full key is accepted as the secret');
  assert.equal(store.verifyPair(Buffer.from(id), Buffer.from(secret), { scopes: ['read'], info: true }).info.id, id);
  assert.equal(store.verifyPair(id, secret, { scopes: ['admin'] }).code, 'INSUFFICIENT_SCOPE');
  assert.equal(store.verifyPair(id, 'x'.repeat(5000)).code, 'MALFORMED');
  assert.equal(store.verifyPair(id, secret.slice(1)).code, 'MALFORMED');
  assert.equal(store.verifyPair('', '').ok, false);
  assert.throws(() => store.verifyPair(id), TypeError);
  assert.throws(() => store.verifyPair(7, secret), TypeError);
  assert.throws(() => store.verifyPair(id, secret, { at: -3 }), { code: 'INVALID_ARGUMENT' });
});

test('verify with dryRun: the verdict, no use counted, no credit spent (issue 18)', (t) => {
  const store = freshStore(t);
  const plain = store.create({ owner: 'acct', scopes: ['read'] });
  const limited = store.create({ owner: 'acct', credits: { remaining: 5 } });
  const { secret } = kw.parseKey(limited.key);
  for (let i = 0; i < 100; i++) {
    const v = store.verify(plain.key, { scopes: ['read'], dryRun: true, info: true });
    assert.equal(v.ok, true);
    assert.equal(v.info.owner, 'acct');
    assert.equal(store.verify(plain.key, { scopes: ['admin'], dryRun: true }).code, 'INSUFFICIENT_SCOPE');
    assert.equal(store.verifyPair(plain.info.id, secret, { dryRun: true }).code, 'NOT_FOUND');
    assert.equal(store.verify(limited.key, { cost: 5, dryRun: true }).ok, true);
    assert.equal(store.verifyPair(limited.info.id, secret, { cost: 6, dryRun: true }).code, 'USAGE_EXCEEDED');
    assert.equal(store.verifyHeaders({ 'x-api-key': limited.key }, { dryRun: true }).ok, true);
  }
  store.flush();
  assert.deepEqual(store.usage(plain.info.id), { uses: 0, refused: 0, lastUsedAt: null });
  assert.deepEqual(store.usage(limited.info.id), { uses: 0, refused: 0, lastUsedAt: null });
  assert.equal(store.credits(limited.info.id).remaining, 5);
  assert.equal(store.verify(limited.key, { cost: 5 }).ok, true, 'a real verify spends');
  assert.equal(store.verify(limited.key, { dryRun: true }).code, 'USAGE_EXCEEDED');
  assert.equal(store.usage(limited.info.id).uses, 1);
  assert.throws(() => store.verify(plain.key, { dryRun: 1 }), TypeError);
});

test('verifyHeaders: every way headers come, and credential problems as verdicts', (t) => {
  const store = freshStore(t);
  const { key, info } = store.create({ owner: 'o', scopes: ['read'] });
  const other = store.create({ owner: 'o' }).key;
  const ok = (h, opts) => assert.equal(store.verifyHeaders(h, opts).keyId, info.id);
  ok({ 'x-api-key': key });
  ok({ host: 'example.com', 'user-agent': 'curl', authorization: `Bearer ${key}` }, { scopes: ['read'] });
  ok({ Authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` });
  ok({ 'X-API-KEY': key, Accept: '*/*' });
  ok({ 'x-api-key': [key, key] }, { info: true });
  ok(['Host', 'h', 'X-Api-Key', key]);
  ok([['x-api-key', key]]);
  ok(new Map([['x-api-key', key]]));
  ok(new Headers({ 'x-api-key': key }));
  ok({ 'x-api-key': Buffer.from(key) });
  ok({ [Buffer.from('x-api-key').toString()]: key });
  ok({ 'x-api-token-id': info.id, 'x-api-token-secret-key': kw.parseKey(key).secret });
  // Names the ABI accepts in any case and with surrounding whitespace: none is skipped.
  for (const name of [' x-api-key', 'X-Api-Key ', '\tX-API-KEY', 'x-API-key']) ok({ [name]: key, accept: 'x' });
  for (const name of [' Authorization', 'AUTHORIZATION\t', 'aUTHORIZATION']) ok({ [name]: `Bearer ${key}` });
  ok({ ' X-Api-Token-Id ': info.id, 'X-API-TOKEN-SECRET-KEY\t': kw.parseKey(key).secret, 'x-request-id': 'r' });
  ok({ 'x-api-key': key }, { scopes: new Scopes(['read']) });
  assert.equal(store.verifyHeaders({ 'x-api-key': key }, { scopes: ['admin'] }).httpStatus, 403);

  const refusal = (h, code) => {
    const v = store.verifyHeaders(h);
    assert.equal(v.ok, false);
    assert.equal(v.code, code);
    assert.equal(v.httpStatus, 401);
    assert.equal(typeof v.message, 'string');
  };
  refusal({}, 'CREDENTIAL_MISSING');
  refusal(undefined, 'CREDENTIAL_MISSING');
  refusal([], 'CREDENTIAL_MISSING');
  refusal({ 'x-api-key': undefined }, 'CREDENTIAL_MISSING');
  refusal({ 'x-api-key': [key, other] }, 'AMBIGUOUS_CREDENTIAL');
  refusal({ authorization: 'Digest x' }, 'UNSUPPORTED_SCHEME');
  refusal({ authorization: 'Basic ***' }, 'BAD_BASE64');
  refusal({ 'x-api-token-id': info.id }, 'HALF_PAIR');
  // What the client sent is a refusal, never an argument error: an over-long credential
  // header is MALFORMED_KEY, a value that is not UTF-8 is read with U+FFFD (a malformed key),
  // more than 1024 credential headers are ambiguous.
  refusal({ 'x-api-key': 'A'.repeat(9000) }, 'MALFORMED_KEY');
  refusal({ 'x-api-key': Buffer.from([0xff, 0xfe]) }, 'MALFORMED');
  refusal({ 'x-api-key': Array(1025).fill(key) }, 'AMBIGUOUS_CREDENTIAL');
  refusal({ 'x-api-key': 'not-a-key' }, 'MALFORMED');
  // node:http hands header bytes over as latin1 characters; they are sent back as those bytes.
  refusal({ 'x-api-key': Buffer.from('é', 'utf8').toString('latin1') }, 'MALFORMED');
  refusal({ 'x-api-key': '\u20ac' }, 'MALFORMED');

  assert.throws(() => store.verifyHeaders('x-api-key: k'), TypeError);
  assert.throws(() => store.verifyHeaders(42), TypeError);
  assert.throws(() => store.verifyHeaders({ 'x-api-key': 42n }), TypeError);
  assert.throws(() => store.verifyHeaders({ 'x-api-key': {} }), TypeError);
  assert.throws(() => store.verifyHeaders(['x-api-key']), TypeError);
  assert.throws(() => store.verifyHeaders([['x-api-key']]), TypeError);
  assert.throws(() => store.verifyHeaders({ 'x-api-key': key }, { at: -1 }), { code: 'INVALID_ARGUMENT' });
  // Long credential-free headers are skipped, never copied; a long credential header is refused.
  ok({ 'x-api-key': key, cookie: 'c'.repeat(100000) });
  // A header value bigger than the scratch memory.
  refusal({ authorization: `Bearer ${'A'.repeat(20000)}` }, 'MALFORMED_KEY');
  ok({ 'x-api-key': key }, { scopes: ['read'] });
});

test('extractCredential', () => {
  assert.deepEqual(kw.extractCredential({ authorization: 'Bearer abc' }), { kind: 'key', key: 'abc' });
  assert.deepEqual(kw.extractCredential({ 'x-api-token-id': 'i', 'x-api-token-secret-key': 's' }), { kind: 'pair', id: 'i', secret: 's' });
  assert.throws(() => kw.extractCredential({}), (err) => {
    assert.ok(err instanceof kw.CredentialError);
    assert.equal(err.status, 50);
    assert.equal(err.code, 'CREDENTIAL_MISSING');
    assert.equal(err.httpStatus, 401);
    return true;
  });
  assert.throws(() => kw.extractCredential({ 'x-api-key': 'A'.repeat(9000) }), { name: 'CredentialError', code: 'MALFORMED_KEY' });
  assert.deepEqual(kw.extractCredential({ 'x-api-key': Buffer.from([0xff, 0xfe]) }), { kind: 'key', key: '\ufffd\ufffd' });
  assert.throws(() => kw.extractCredential({ 'x-api-key': Array(1025).fill('k') }), { name: 'CredentialError', code: 'AMBIGUOUS_CREDENTIAL' });
  assert.throws(() => kw.extractCredential(5), TypeError);
  // The longest value the ABI accepts fits the output buffer.
  const long = 'B'.repeat(8192);
  assert.deepEqual(kw.extractCredential({ 'x-api-key': long }), { kind: 'key', key: long });
});

test('parseKey: prefix option and bad input', () => {
  const k = 'kw_live_3hZ0bq9XcV1mT7pKQw8rT2yU4iO6pA1sD3fG5hJ7kL9zX0cV';
  assert.equal(kw.parseKey(k).valid, false); // no checksum
  assert.equal(kw.parseKey('').error, 'empty');
  assert.throws(() => kw.parseKey(5), TypeError);
  assert.throws(() => kw.parseKey('x', { prefix: 5 }), TypeError);
  assert.throws(() => kw.parseKey('x', { prefx: 'kw' }), TypeError);
  assert.throws(() => kw.parseKey('x', { prefix: Buffer.from([0xff]) }), { code: 'INVALID_UTF8' });
});

test('expiringWithin and creditsBelow: keys to warn about (issue 18)', (t) => {
  const store = freshStore(t);
  const soon = store.create({ owner: 'acct', expiresAt: Date.now() + DAY }).info;
  const later = store.create({ owner: 'acct', expiresAt: Date.now() + 3 * DAY }).info;
  store.create({ owner: 'acct', expiresAt: Date.now() + 30 * DAY });
  store.create({ owner: 'acct' });
  assert.deepEqual(store.expiringWithin(7 * DAY).map((k) => k.id), [soon.id, later.id]);
  assert.deepEqual(store.expiringWithin(2 * DAY).map((k) => k.id), [soon.id]);
  assert.deepEqual(store.expiringWithin(0), []);
  const low = store.create({ owner: 'acct', credits: { remaining: 2 } });
  store.create({ owner: 'acct', credits: { remaining: 100 } });
  assert.deepEqual(store.creditsBelow(10).map((e) => [e.info.id, e.remaining]), [[low.info.id, 2]]);
  assert.equal(store.verify(low.key).ok, true);
  assert.deepEqual(store.creditsBelow(2).map((e) => [e.info.id, e.remaining]), [[low.info.id, 1]]);
  assert.deepEqual(store.creditsBelow(1), []);
  assert.throws(() => store.creditsBelow('5'), TypeError);
  assert.throws(() => store.expiringWithin(-1), { code: 'INVALID_ARGUMENT' });
});

test('usage, usageByDay, unusedSince, credits, flush, stats', (t) => {
  const store = freshStore(t, { flushIntervalMs: 'manual' });
  const before = Date.now();
  const { key, info } = store.create({ owner: 'acct', credits: { remaining: 100, refillAmount: 50, refillInterval: 'daily' } });
  const idle = store.create({ owner: 'acct' }).info;
  assert.deepEqual(store.usage(info.id), { uses: 0, refused: 0, lastUsedAt: null });
  for (let i = 0; i < 3; i++) assert.equal(store.verify(key).ok, true);
  assert.equal(store.verify(key, { scopes: ['nope'] }).ok, false);
  const u = store.usage(info.id);
  assert.equal(u.uses, 3);
  assert.equal(u.refused, 1);
  assert.ok(u.lastUsedAt >= before);
  assert.deepEqual(store.credits(info.id), { cost: 1, remaining: 97, refillAmount: 50, refillInterval: 'daily' });
  assert.equal(store.credits(idle.id), null);
  assert.throws(() => store.credits('ZZZZzzzz00009999'), { code: 'NOT_FOUND' });
  assert.throws(() => store.usage('ZZZZzzzz00009999'), { code: 'NOT_FOUND' });

  const s = store.stats();
  assert.ok(s.dirtyKeys >= 1);
  assert.equal(typeof s.commits, 'number');
  assert.equal(typeof s.refreshes, 'number');
  assert.ok(s.indexedKeys >= 2);
  assert.equal(typeof s.indexComplete, 'boolean');
  // The shared verify table: mapped, holding the keys, its lookup part a fraction of the file.
  assert.ok(s.table.mapped && s.table.generation !== 0);
  assert.equal(s.table.keys, s.indexedKeys);
  assert.ok(s.table.slots >= s.table.keys);
  assert.ok(s.table.lookupBytes > 0 && s.table.lookupBytes < s.table.fileBytes);
  assert.ok(s.table.cachedRecords >= 1);
  assert.ok(store.flush() >= 1);
  assert.equal(store.stats().dirtyKeys, 0);
  assert.equal(store.flush(), 0);

  const today = new Date().toISOString().slice(0, 10);
  const dayNumber = Math.floor(Date.now() / DAY);
  assert.deepEqual(store.usageByDay(info.id, today, today), [{ day: today, uses: 3 }]);
  assert.deepEqual(store.usageByDay(info.id, dayNumber - 10, new Date()), [{ day: today, uses: 3 }]);
  assert.deepEqual(store.usageByDay(idle.id, today, today), []);
  assert.throws(() => store.usageByDay(info.id, today, '2000-01-01'), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.usageByDay(info.id, dayNumber - 4000, dayNumber), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.usageByDay(info.id, 'yesterday', today), TypeError);
  assert.throws(() => store.usageByDay(info.id, 1.5, 2), TypeError);

  assert.deepEqual(store.unusedSince('acct', before).map((k) => k.id), [idle.id]);
  assert.deepEqual(store.unusedSince('acct', new Date(Date.now() + 60000)).map((k) => k.id).sort(), [idle.id, info.id].sort());
  assert.throws(() => store.unusedSince('acct', -1), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.unusedSince('acct', 'today'), TypeError);
});

test('a closed store refuses every call with StoreClosedError; close twice is harmless', (t) => {
  const dir = tempDir(t);
  const store = new Store(path.join(dir, 'k.redb'));
  const { key, info } = store.create({ owner: 'o' });
  const keeper = new Store(path.join(dir, 'k.redb'));
  store.close();
  assert.equal(store.closed, true);
  store.close();
  const id = info.id;
  const calls = {
    verify: () => store.verify(key),
    verifyPair: () => store.verifyPair(id, 'secret'),
    verifyHeaders: () => store.verifyHeaders({ 'x-api-key': key }),
    create: () => store.create({ owner: 'o' }),
    get: () => store.get(id),
    list: () => store.list('o'),
    allKeys: () => store.allKeys(),
    update: () => store.update(id, { name: 'x' }),
    revoke: () => store.revoke(id),
    delete: () => store.delete(id),
    rotate: () => store.rotate(id),
    usage: () => store.usage(id),
    usageByDay: () => store.usageByDay(id, 0, 1),
    unusedSince: () => store.unusedSince('o', 0),
    credits: () => store.credits(id),
    flush: () => store.flush(),
    stats: () => store.stats(),
    sameStore: () => store.sameStore(keeper),
  };
  for (const [name, call] of Object.entries(calls)) {
    assert.throws(call, (err) => err instanceof kw.StoreClosedError && err.code === 'CLOSED' && err.status === 7 && err.operation === name, name);
  }
  // The other handle onto the same store is untouched.
  assert.equal(keeper.verify(key).ok, true);
  keeper.close();
});

test('a panic inside keyward is a PanicError and the process goes on', (t) => {
  // kw_test_panic is a test hook: exported only by a library built with `--features test-hooks`
  // (scripts/test-node.sh builds the one KEYWARD_LIB names so) and declared in no header, so
  // the test declares it here.
  const { _native, _internal } = require('../lib/store');
  let testPanic;
  try {
    testPanic = _native.lib.func('kw_test_panic', 'uint32_t', []);
  } catch (e) {
    assert.fail(`${_native.file} has no kw_test_panic: build it with \`cargo build --lib --features test-hooks\` (${e.message})`);
  }
  const status = testPanic(); // the panic hook prints one line to stderr, by design
  assert.equal(status, require('../lib/abi').ENUMS.kw_status.KW_PANIC);
  const err = _internal.failure(status, 'kw_test_panic');
  assert.ok(err instanceof kw.PanicError && err.code === 'PANIC' && err.status === 6, String(err));
  const store = freshStore(t);
  assert.equal(store.verify(store.create({ owner: 'o' }).key).ok, true);
});

test('a process that exits without close() still writes its usage counts', (t) => {
  const { spawnSync } = require('node:child_process');
  const db = path.join(tempDir(t), 'k.redb');
  const store = new Store(db);
  t.after(() => store.close());
  const { key, info } = store.create({ owner: 'o' });
  const script = `const { Store } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    const s = new Store(${JSON.stringify(db)}, { flushIntervalMs: 'manual' });
    for (let i = 0; i < 7; i++) if (!s.verify(${JSON.stringify(key)}).ok) process.exit(3);
    // no close(): the exit hook closes it`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(store.usage(info.id).uses, 7);
});

test('a store dropped without close() is released by the garbage collector', { skip: typeof global.gc !== 'function' && 'run node with --expose-gc' }, async (t) => {
  const db = path.join(tempDir(t), 'k.redb');
  const keeper = new Store(db);
  t.after(() => keeper.close());
  let handle;
  (() => {
    const dropped = new Store(db);
    handle = dropped.handle;
  })();
  for (let i = 0; i < 10; i++) {
    global.gc();
    await new Promise((r) => setImmediate(r));
  }
  const probe = Object.create(Store.prototype);
  probe._h = handle;
  probe._closed = false;
  assert.throws(() => probe.flush(), { code: 'CLOSED' });
});

test('error classes follow the family the library gives each status (kw_status_family)', (t) => {
  const errors = require('../lib/errors');
  const { _native } = require('../lib/store');
  const classOf = (status) => errors.classOf(status, _native.fn.kw_status_family(status));
  assert.equal(classOf(39), kw.InvalidArgumentError); // CONFIG_MISMATCH: options that do not fit
  assert.equal(classOf(42), kw.PolicyError); // CREDIT_SLOTS_EXHAUSTED: a limit of the store
  assert.equal(classOf(33), kw.OpenError); // CORRUPT
  assert.equal(classOf(38), kw.OpenError); // PEPPER_PERMISSIONS
  assert.equal(classOf(40), kw.StorageError); // STORAGE
  assert.equal(classOf(7), kw.StoreClosedError); // CLOSED
  assert.equal(classOf(55), kw.CredentialError); // AMBIGUOUS_CREDENTIAL
  assert.equal(classOf(6), kw.PanicError); // PANIC
  const p = path.join(tempDir(t), 'family.redb');
  const store = new Store(p);
  try {
    assert.throws(() => new Store(p, { concurrency: 'single-process' }), { name: 'InvalidArgumentError', code: 'CONFIG_MISMATCH' });
  } finally {
    store.close();
  }
});

test('createMany: every key valid, all or nothing, the index of a refused spec', (t) => {
  const store = freshStore(t);
  const specs = Array.from({ length: 300 }, (_, i) => ({ owner: `bulk_${i % 3}`, scopes: ['read'], env: 'live' }));
  const made = store.createMany(specs);
  assert.equal(made.length, 300);
  made.forEach(({ key, id }, i) => {
    assert.match(key, /^kw_live_/);
    assert.equal(kw.parseKey(key).id, id);
    const v = store.verify(key, { scopes: ['read'] });
    assert.equal(v.ok, true);
    assert.equal(v.owner, `bulk_${i % 3}`);
    assert.equal(v.keyId, id);
  });
  const bad = Array.from({ length: 10 }, () => ({ owner: 'atomic' }));
  bad[6] = { owner: '   ' };
  assert.throws(() => store.createMany(bad), (err) => err.code === 'INVALID_ARGUMENT' && /new key 6 of the batch/.test(err.message));
  bad[6] = { owner: 'atomic', name: 'n'.repeat(10000) };
  assert.throws(() => store.createMany(bad), (err) => err.code === 'TOO_LONG' && /new key 6 of the batch/.test(err.message));
  assert.equal(store.list('atomic').keys.length, 0);
  assert.throws(() => store.createMany([]), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => store.createMany('nope'), TypeError);
  assert.throws(() => store.createMany([{ owner: 'a' }, { owner: 'b', colour: 'red' }]), TypeError);
  assert.equal(store.list('a').keys.length, 0);
});
