'use strict';
// Replays the shared test vectors (tests/vectors/*.json), as the Rust tests, the C test and
// every binding do: one source of truth for key parsing, header extraction, verify and the
// edge inputs every entry point must answer alike (edge.json).
const test = require('node:test');
const assert = require('node:assert/strict');
const { parseKey, extractCredential, CredentialError, InvalidArgumentError } = require('..');
const { vectors, freshStore } = require('./helpers/common');

const keys = vectors('keys.json');
const headers = vectors('headers.json');
const verify = vectors('verify.json');
const edge = vectors('edge.json');

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
        const opts = { scopes: step.scopes || [], at, cost: step.cost || 0, dryRun: step.dry_run === true };
        switch (step.op) {
          case 'create': {
            const spec = { owner: step.owner, scopes: step.scopes || [] };
            if (step.env) spec.env = step.env;
            if (step.expires_in_ms) spec.expiresAt = Date.now() + step.expires_in_ms;
            if (step.credits) spec.credits = { remaining: step.credits.remaining, cost: step.credits.cost };
            if (step.rate_limit) {
              spec.rateLimit = { rate: step.rate_limit.rate, periodMs: step.rate_limit.period_ms, burst: step.rate_limit.burst };
            }
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
          case 'verify': {
            const v = store.verify(made.get(step.key).key, step.expect_scopes ? { ...opts, info: true } : opts);
            assert.equal(v.code, step.expect, where);
            if (step.expect_scopes) assert.deepEqual(v.info.scopes, step.expect_scopes, `${where} (effective scopes)`);
            break;
          }
          case 'owner_suspend':
            store.suspendOwner(step.owner);
            break;
          case 'owner_resume':
            store.resumeOwner(step.owner);
            break;
          case 'owner_scopes':
            store.setOwnerScopes(step.owner, step.clear ? null : step.scopes);
            break;
          case 'verify_text':
            assert.equal(store.verify(step.text, opts).code, step.expect, where);
            break;
          case 'import_legacy': {
            const o = step.options;
            const report = store.importLegacy(step.from, step.data, { allScopes: o.all_scopes, defaultOwner: o.default_owner });
            assert.equal(report.imported, step.imported, where);
            break;
          }
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

/** A text of edge.json: a string, or a Buffer for {"hex": ...} (bytes that are not UTF-8 or hold a NUL). */
function edgeText(v) {
  return typeof v === 'string' ? v : Buffer.from(v.hex, 'hex');
}

/** The error class of a family (the binding chooses it from kw_status_family). */
const FAMILY_CLASS = { ARGUMENT: InvalidArgumentError, CREDENTIAL: CredentialError };

/** What a call answered, in edge.json's terms. */
function outcome(call) {
  let result;
  try {
    result = call();
  } catch (err) {
    const family = Object.keys(FAMILY_CLASS).find((f) => err instanceof FAMILY_CLASS[f]) || `${err.name} (no family)`;
    return ['error', family, err.code];
  }
  if (result && typeof result.key === 'string' && result.info) return ['created'];
  return ['verdict', result.code, result.httpStatus];
}

/** The expected outcome; `style` 'verdict' for calls that answer a request (verifyHeaders), 'error' else. */
function expected(e, style) {
  if (e.created) return ['created'];
  if (e.reason) return ['verdict', e.reason, e.http_status];
  if (e.family === 'CREDENTIAL' && style === 'verdict') return ['verdict', e.code, e.http_status];
  return ['error', e.family, e.status || e.code];
}

test('edge.json: every case for the node door, counted', async (t) => {
  const store = freshStore(t, { prefix: 'kw' });
  let run = 0;
  for (const c of edge.cases) {
    if (!c.doors.includes('node')) continue;
    await t.test(c.name, () => {
      const scopes = c.scopes.map((s) => {
        assert.equal(typeof s, 'string', 'Node takes scopes only as strings');
        return s;
      });
      const calls = []; // [name, style, thunk]
      switch (c.op) {
        case 'verify': {
          const key = edgeText(c.key);
          const forms = typeof key === 'string' ? [key, Buffer.from(key, 'utf8')] : [key];
          for (const k of forms) {
            const what = typeof k === 'string' ? 'string' : 'Buffer';
            if (scopes.length === 0) calls.push([`verify(${what})`, 'error', () => store.verify(k)]);
            calls.push([`verify(${what}, {scopes})`, 'error', () => store.verify(k, { scopes })]);
            calls.push([`verify(${what}, {scopes, info})`, 'error', () => store.verify(k, { scopes, info: true })]);
          }
          break;
        }
        case 'pair': {
          const id = edgeText(c.id);
          const secret = edgeText(c.secret);
          calls.push(['verifyPair', 'error', () => store.verifyPair(id, secret, { scopes })]);
          break;
        }
        case 'headers': {
          const one = c.headers.map(([n, v]) => [edgeText(n), edgeText(v)]);
          const headers = [];
          for (let i = 0; i < (c.repeat || 1); i++) headers.push(...one);
          // verifyHeaders answers a request: a header problem is a 401 verdict.
          calls.push(['verifyHeaders', 'verdict', () => store.verifyHeaders(headers, { scopes })]);
          // extractCredential reports it: a CredentialError (the scopes play no part there).
          if (c.expect.family === 'CREDENTIAL') calls.push(['extractCredential', 'error', () => extractCredential(headers)]);
          else if (c.expect.reason) {
            assert.doesNotThrow(() => extractCredential(headers), 'a credential the verify then refuses');
          }
          break;
        }
        case 'create': {
          const owner = edgeText(c.owner);
          calls.push(['create', 'error', () => store.create({ owner, scopes })]);
          break;
        }
        default:
          assert.fail(`unknown op ${c.op}`);
      }
      for (const [name, style, call] of calls) {
        assert.deepEqual(outcome(call), expected(c.expect, style), `${c.name} (${name})`);
      }
      run++;
    });
  }
  assert.equal(run, edge.applicable.node, 'edge cases run by the node door');
  assert.equal(run, edge.cases.filter((c) => c.doors.includes('node')).length);
});
