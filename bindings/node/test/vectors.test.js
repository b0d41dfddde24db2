'use strict';
// Replays the shared test vectors (tests/vectors/*.json), as the Rust tests, the C test and
// every binding do: one source of truth for key parsing, header extraction and verify.
const test = require('node:test');
const assert = require('node:assert/strict');
const { parseKey, extractCredential, CredentialError } = require('..');
const { vectors, freshStore } = require('./helpers/common');

const keys = vectors('keys.json');
const headers = vectors('headers.json');
const verify = vectors('verify.json');

test('keys.json: every case parses as expected', async (t) => {
  assert.ok(keys.cases.length >= 20);
  for (const c of keys.cases) {
    await t.test(c.name, () => {
      const p = parseKey(c.key, { prefix: keys.prefix });
      if (c.valid) {
        assert.equal(p.valid, true);
        assert.equal(p.error, null);
        assert.equal(p.prefix, keys.prefix);
        assert.equal(p.env, c.env);
        assert.equal(p.id, c.id);
        assert.equal(p.secret, c.secret);
      } else {
        assert.equal(p.valid, false);
        assert.equal(p.error, c.error);
      }
      // The same answer from the bytes of the key.
      assert.deepEqual(parseKey(Buffer.from(c.key, 'utf8'), { prefix: keys.prefix }), p);
    });
  }
});

test('headers.json: extraction and verify-from-headers agree with every case', async (t) => {
  const store = freshStore(t);
  for (const c of headers.cases) {
    await t.test(c.name, () => {
      const e = c.expect;
      if (e.error) {
        assert.throws(() => extractCredential(c.headers), (err) => {
          assert.ok(err instanceof CredentialError || err.code === 'TOO_LONG', `${err.name} ${err.code}`);
          assert.equal(err.code, e.error);
          return true;
        });
        const v = store.verifyHeaders(c.headers);
        assert.equal(v.ok, false);
        assert.equal(v.code, e.error);
        assert.equal(v.httpStatus, 401);
        assert.equal(v.reason, null);
      } else if (e.key !== undefined) {
        assert.deepEqual(extractCredential(c.headers), { kind: 'key', key: e.key });
        // The key is unknown to this store: a refusal, never a credential error.
        const v = store.verifyHeaders(c.headers);
        assert.equal(v.ok, false);
        assert.ok(v.code === 'NOT_FOUND' || v.code === 'MALFORMED', v.code);
        assert.equal(v.httpStatus, 401);
      } else {
        assert.deepEqual(extractCredential(c.headers), { kind: 'pair', id: e.pair.id, secret: e.pair.secret });
        assert.equal(store.verifyHeaders(c.headers).code, 'NOT_FOUND');
      }
    });
  }
});

test('headers.json: the same cases as Node gives them (lower-cased object, flat rawHeaders)', async (t) => {
  for (const c of headers.cases) {
    const names = c.headers.map(([n]) => n.trim().toLowerCase());
    if (new Set(names).size !== names.length) continue; // an object cannot hold both
    await t.test(c.name, () => {
      const asObject = Object.fromEntries(c.headers.map(([n, v]) => [n.trim().toLowerCase(), v]));
      const flat = c.headers.flat();
      for (const input of [asObject, flat, new Map(c.headers)]) {
        if (c.expect.error) {
          assert.throws(() => extractCredential(input), { code: c.expect.error });
        } else if (c.expect.key !== undefined) {
          assert.deepEqual(extractCredential(input), { kind: 'key', key: c.expect.key });
        } else {
          assert.deepEqual(extractCredential(input), { kind: 'pair', ...c.expect.pair });
        }
      }
    });
  }
});

/** Changes one character of a secret, as the C test does. */
function flipChar(s, i) {
  const c = s[i] === 'a' ? 'b' : 'a';
  return s.slice(0, i) + c + s.slice(i + 1);
}

test('verify.json: every scenario on a fresh store', async (t) => {
  assert.ok(verify.scenarios.length >= 9);
  for (const scenario of verify.scenarios) {
    await t.test(scenario.name, (t) => {
      const store = freshStore(t, { prefix: 'kw' });
      // As the C test reads the note: the scenario's clock starts at its first verify
      // (after the keys it verifies were created or rotated).
      let start = 0;
      const made = new Map();
      scenario.steps.forEach((step, i) => {
        const where = `${scenario.name}, step ${i} (${step.op})`;
        if (start === 0 && ['verify', 'verify_text', 'pair'].includes(step.op)) start = Date.now();
        const at = start + (step.at_offset_ms || 0);
        const opts = { scopes: step.scopes || [], at, cost: step.cost || 0 };
        switch (step.op) {
          case 'create': {
            const spec = { owner: step.owner, scopes: step.scopes || [] };
            if (step.env) spec.env = step.env;
            if (step.expires_in_ms) spec.expiresAt = Date.now() + step.expires_in_ms;
            if (step.credits) spec.credits = { remaining: step.credits.remaining, cost: step.credits.cost };
            const { key, info } = store.create(spec);
            assert.equal(parseKey(key).id, info.id, where);
            made.set(step.as, { key, id: info.id });
            break;
          }
          case 'revoke':
            store.revoke(made.get(step.key).id);
            break;
          case 'rotate': {
            const { key, info } = store.rotate(made.get(step.key).id, { graceMs: step.grace_ms });
            made.set(step.as, { key, id: info.id });
            break;
          }
          case 'verify':
            assert.equal(store.verify(made.get(step.key).key, opts).code, step.expect, where);
            break;
          case 'verify_text':
            assert.equal(store.verify(step.text, opts).code, step.expect, where);
            break;
          case 'pair': {
            const { id, secret } = parseKey(made.get(step.key).key);
            let [pid, psecret] = [id, secret];
            if (step.mutate === 'wrong_secret_first') psecret = flipChar(secret, 0);
            else if (step.mutate === 'wrong_secret_last') psecret = flipChar(secret, secret.length - 1);
            else if (step.mutate === 'unknown_id') pid = 'ZZZZzzzz00009999';
            else assert.equal(step.mutate, undefined, `unknown mutation in ${where}`);
            assert.equal(store.verifyPair(pid, psecret, opts).code, step.expect, where);
            // And the same pair as request headers.
            const v = store.verifyHeaders({ 'x-api-token-id': pid, 'x-api-token-secret-key': psecret }, opts);
            assert.equal(v.code, step.expect, `${where} (headers)`);
            break;
          }
          default:
            assert.fail(`unknown op ${step.op} in ${where}`);
        }
      });
    });
  }
});
