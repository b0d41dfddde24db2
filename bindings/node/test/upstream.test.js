'use strict';
// Stores opened with an upstream PostgreSQL (`new Store(path, { upstream })`, README "Several
// hosts"): two hosts with one pepper on a real server (scripts/pg-test-server.sh starts it in a
// temporary directory); keys created and revoked through host A's ordinary calls reach host B
// once its replicator (`keyward replicate --once`, the CLI in $KEYWARD_CLI) ran; a server that
// is down, or a URL that is not one, throws UpstreamError (or ArgumentError) and changes
// nothing. scripts/test-node.sh builds the CLI and sets $KEYWARD_CLI.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const kw = require('..');
const { REPO, tempDir } = require('./helpers/common');

const CLI = process.env.KEYWARD_CLI;
const PG_SCRIPT = path.join(REPO, 'scripts', 'pg-test-server.sh');
const PEPPER = '07'.repeat(32);
const skip = CLI ? false : 'needs $KEYWARD_CLI (keyward built with --features postgres; scripts/test-node.sh sets it)';

/** A PostgreSQL server of its own, stopped when the test ends. */
function pgServer(t) {
  const dir = `/tmp/kw-pg-${process.pid}-node-${Math.random().toString(16).slice(2, 10)}`;
  const run = (action) => execFileSync('bash', [PG_SCRIPT, action, dir], { encoding: 'utf8' }).trim();
  const url = run('start');
  t.after(() => run('stop'));
  return { url, kill: () => run('kill'), restart: () => run('start') };
}

function host(t, dir, name, upstream) {
  const store = new kw.Store(path.join(dir, name), { pepper: PEPPER, upstream, flushIntervalMs: 'manual' });
  t.after(() => store.close());
  return store;
}

/** Host `name`'s replicator: catches up with the upstream once. */
function replicateOnce(dir, name, url) {
  const pepper = path.join(dir, 'shared.pepper');
  if (!fs.existsSync(pepper)) fs.writeFileSync(pepper, PEPPER, { mode: 0o600 });
  execFileSync(CLI, ['replicate', '--once', '--db', path.join(dir, name), '--pepper-file', pepper, '--upstream', url]);
}

test('upstream: create and revoke on host A reach host B', { skip }, (t) => {
  const pg = pgServer(t);
  const dir = tempDir(t);
  const a = host(t, dir, 'a.redb', pg.url);
  const b = host(t, dir, 'b.redb', pg.url);
  const created = a.create({ owner: 'acct_1', scopes: ['read'] });
  const other = a.create({ owner: 'acct_2' });
  assert.equal(a.verify(created.key).code, 'VALID');
  assert.equal(b.verify(created.key).code, 'NOT_FOUND');
  replicateOnce(dir, 'b.redb', pg.url);
  assert.equal(b.verify(created.key).code, 'VALID');

  a.revoke(created.info.id, 'leaked');
  assert.equal(a.verify(created.key).code, 'REVOKED');
  assert.equal(b.verify(created.key).code, 'VALID'); // until B's replicator ran
  replicateOnce(dir, 'b.redb', pg.url);
  assert.equal(b.verify(created.key).code, 'REVOKED');
  assert.equal(b.verify(other.key).code, 'VALID');

  const replica = b.stats().replica;
  assert.equal(replica.cursor, 3);
  assert.ok(replica.syncedAtMs > 0 && replica.stalenessMs !== null);

  // Update, rotate and delete made on B reach the upstream too.
  b.update(other.info.id, { name: 'renamed on b' });
  const rotated = b.rotate(other.info.id, { graceMs: 0 });
  b.delete(rotated.info.id);
  replicateOnce(dir, 'a.redb', pg.url);
  assert.equal(a.get(other.info.id).name, 'renamed on b');
  assert.equal(a.verify(rotated.key).code, 'NOT_FOUND');
});

test('upstream: a store of its own has no replica stats', (t) => {
  const store = host(t, tempDir(t), 'own.redb', undefined);
  assert.equal(store.stats().replica, null);
});

test('upstream: server down throws UpstreamError and loses nothing', { skip }, (t) => {
  const pg = pgServer(t);
  const a = host(t, tempDir(t), 'a.redb', pg.url);
  const created = a.create({ owner: 'acct_1' });
  pg.kill();
  assert.throws(() => a.revoke(created.info.id), (e) => {
    assert.ok(e instanceof kw.UpstreamError);
    assert.equal(e.code, 'UPSTREAM_UNAVAILABLE');
    assert.match(e.message, /nothing was changed/);
    return true;
  });
  assert.throws(() => a.create({ owner: 'acct_2' }), kw.UpstreamError);
  assert.equal(a.verify(created.key).code, 'VALID');
  pg.restart();
  a.revoke(created.info.id); // reconnects by itself
  assert.equal(a.verify(created.key).code, 'REVOKED');
});

test('upstream: a URL that is not one is refused at open', (t) => {
  const dir = tempDir(t);
  assert.throws(() => host(t, dir, 'bad.redb', 'postgresql://host:notaport/db'), (e) => {
    assert.ok(e instanceof kw.InvalidArgumentError);
    assert.match(e.message, /not a PostgreSQL connection URL/);
    return true;
  });
  // Well-formed, but nothing listens: the first management call says so.
  const s = host(t, dir, 'nowhere.redb', 'postgresql://kw@%2Fnonexistent%2Fdir/kw');
  assert.throws(() => s.create({ owner: 'acct_1' }), (e) => e instanceof kw.UpstreamError && e.code === 'UPSTREAM_UNAVAILABLE');
  assert.notEqual(s.stats().replica, null);
});
