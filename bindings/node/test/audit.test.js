'use strict';
// The audit log through the Node binding: an event per change with the actor, a policy
// refusal, filters, paging, retention, and no secret in any event.
const test = require('node:test');
const assert = require('node:assert/strict');
const kw = require('..');
const { freshStore } = require('./helpers/common');

test('audit: every change is logged with its actor', (t) => {
  const store = freshStore(t);
  const alice = store.withActor('alice');
  const a = alice.create({ owner: 'acct', name: 'a', scopes: ['read'] });
  const b = store.create({ owner: 'acct' });
  alice.update(a.info.id, { name: 'renamed' });
  const rotated = alice.rotate(a.info.id, { graceMs: 0 });
  alice.revoke(rotated.info.id, 'leaked');
  alice.delete(b.info.id);
  assert.throws(() => alice.delete(b.info.id), kw.NotFoundError); // a failed change logs nothing
  alice.close();
  const events = store.audit({ limit: 1000 }).events;
  assert.deepEqual(
    events.map((e) => [e.action, e.keyId, e.actor]),
    [
      ['create', a.info.id, 'alice'],
      ['create', b.info.id, null],
      ['update', a.info.id, 'alice'],
      ['rotate', a.info.id, 'alice'],
      ['rotate', rotated.info.id, 'alice'],
      ['revoke', rotated.info.id, 'alice'],
      ['delete', b.info.id, 'alice'],
    ],
  );
  assert.deepEqual(events[2].changed, ['name']);
  assert.equal(events[3].detail, rotated.info.id);
  assert.ok(events.every((e) => e.owner === 'acct'));
  const dump = JSON.stringify(events);
  for (const k of [a.key, b.key, rotated.key]) {
    assert.ok(!dump.includes(k));
    assert.ok(!dump.includes(k.slice(-38, -6)), 'secret in an event');
  }
});

test('audit: a policy refusal is logged', (t) => {
  const store = freshStore(t, { keepLastKey: true });
  const k = store.create({ owner: 'acct' });
  const ops = store.withActor('ops');
  t.after(() => ops.close());
  assert.throws(() => ops.revoke(k.info.id), kw.PolicyError);
  const last = store.audit().events.at(-1);
  assert.deepEqual([last.action, last.keyId, last.actor, last.detail], ['policy_refused', k.info.id, 'ops', 'POLICY_LAST_ACTIVE_KEY']);
});

test('audit: filters, paging, limits, retention', (t) => {
  const store = freshStore(t);
  const ids = [];
  for (let i = 0; i < 7; i++) {
    const h = store.withActor(i % 2 === 0 ? 'even' : 'odd');
    ids.push(h.create({ owner: `acct_${i % 2}` }).info.id);
    h.close();
  }
  assert.deepEqual(store.audit({ actor: 'odd' }).events.map((e) => e.keyId), ids.filter((_, i) => i % 2 === 1));
  assert.deepEqual(store.audit({ owner: 'acct_0' }).events.map((e) => e.keyId), ids.filter((_, i) => i % 2 === 0));
  assert.deepEqual(store.audit({ keyId: ids[3] }).events.map((e) => e.keyId), [ids[3]]);
  assert.equal(store.audit({ since: new Date(Date.now() + 86400000) }).events.length, 0);
  assert.equal(store.audit({ until: Date.now() + 86400000 }).events.length, 7);
  const first = store.audit({ limit: 3 });
  assert.equal(first.events.length, 3);
  assert.notEqual(first.next, null);
  assert.deepEqual([...store.auditAll({ pageSize: 2 })].map((e) => e.keyId), ids);
  assert.throws(() => store.audit({ limit: 5000 }), kw.ArgumentError);
  assert.throws(() => store.audit({ bogus: 1 }), TypeError);
  assert.throws(() => store.withActor('a'.repeat(257)), kw.KeywardError);
  store.setAuditRetention(30);
  assert.throws(() => store.setAuditRetention(-1), TypeError);
});
