'use strict';
// Owner controls through the Node binding: suspend / resume (OWNER_SUSPENDED, 403), allowed
// scopes (effective scopes), owner records, audit events, bad input.
const test = require('node:test');
const assert = require('node:assert/strict');
const kw = require('..');
const { freshStore } = require('./helpers/common');

test('owners: suspend, resume, allowed scopes, records and audit', (t) => {
  const store = freshStore(t);
  const { key } = store.create({ owner: 'acct', scopes: ['read', 'write'] });
  const ops = store.withActor('ops');
  const info = ops.suspendOwner('acct', 'unpaid');
  assert.equal(info.suspendReason, 'unpaid');
  assert.equal(info.keys, 1);
  assert.ok(info.suspendedAt > 0);
  const refused = store.verify(key);
  assert.equal(refused.code, 'OWNER_SUSPENDED');
  assert.equal(refused.reason, 7);
  assert.equal(refused.httpStatus, 403);
  assert.equal(refused.ok, false);
  assert.equal(ops.resumeOwner('acct').suspendedAt, null);
  assert.equal(store.verify(key, { scopes: ['write'] }).ok, true);
  ops.setOwnerScopes('acct', ['read']);
  assert.equal(store.verify(key, { scopes: ['write'] }).code, 'INSUFFICIENT_SCOPE');
  assert.deepEqual(store.verify(key, { scopes: ['read'], info: true }).info.scopes, ['read']);
  assert.equal(ops.setOwnerScopes('acct', null).allowedScopes, null);
  ops.close();
  assert.equal(store.verify(key, { scopes: ['write'] }).ok, true);
  assert.deepEqual(store.owners().map((o) => o.owner), ['acct']);
  assert.ok(store.owner('acct').createdAt > 0);
  const events = store.audit({ owner: 'acct' }).events.filter((e) => e.keyId === null);
  assert.deepEqual(
    events.map((e) => [e.action, e.actor]),
    [
      ['owner_suspend', 'ops'],
      ['owner_resume', 'ops'],
      ['owner_scopes', 'ops'],
      ['owner_scopes', 'ops'],
    ],
  );
  assert.deepEqual(events[0].changed, ['suspended_at', 'suspend_reason']);
});

test('owners: bad input is refused and changes nothing', (t) => {
  const store = freshStore(t);
  assert.throws(() => store.owner('nobody'), (e) => e instanceof kw.NotFoundError && e.code === 'OWNER_NOT_FOUND');
  assert.throws(() => store.resumeOwner('nobody'), kw.NotFoundError);
  assert.throws(() => store.suspendOwner(' '), kw.InvalidArgumentError);
  assert.throws(() => store.setOwnerScopes('acct', ['has space']), kw.InvalidArgumentError);
  assert.throws(() => store.setOwnerScopes('acct', 'read'), TypeError);
  assert.throws(() => store.suspendOwner(42), TypeError);
  assert.deepEqual(store.owners(), []);
});
