'use strict';
// What the Express and Fastify integration tests share: every credential style the engine
// accepts, taken from tests/vectors/headers.json and re-aimed at a real key, and the matrix
// of answers (200 / 401 / 403 / revoked 401) with the use counts it must leave.
const assert = require('node:assert/strict');
const { parseKey } = require('../..');
const { vectors } = require('./common');

const HEADERS = vectors('headers.json');
const VECTOR = parseKey(HEADERS.key);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/; // a header name HTTP can carry

/** `value` with the vector's key (or its id and secret) replaced by `key`'s. */
function retarget(value, key) {
  const { id, secret } = parseKey(key);
  return value.replaceAll(HEADERS.key, key).replaceAll(VECTOR.id, id).replaceAll(VECTOR.secret, secret);
}

/**
 * Every accepting case of the header vectors (x-api-key in any case and with whitespace,
 * Bearer, Basic with the key alone / as the user / as the password, the X-Api-Token-Id +
 * X-Api-Token-Secret-Key pair, a key sent twice), as [name, headers of `key`] pairs; cases
 * whose header name no HTTP client can send (spaces in it) are left out.
 */
function credentialStyles(key) {
  const styles = [];
  for (const c of HEADERS.cases) {
    if (c.expect.key !== HEADERS.key && !c.expect.pair) continue;
    if (!c.headers.every(([name]) => TOKEN.test(name))) continue;
    const headers = {};
    for (const [name, value] of c.headers) {
      let v = value;
      const basic = /^(\s*basic\s+)(\S+)(\s*)$/i.exec(value);
      if (basic && name.toLowerCase() === 'authorization') {
        const text = retarget(Buffer.from(basic[2], 'base64').toString('utf8'), key);
        let b64 = Buffer.from(text, 'utf8').toString('base64');
        if (!basic[2].endsWith('=')) b64 = b64.replace(/=+$/, '');
        v = basic[1] + b64 + basic[3];
      } else {
        v = retarget(value, key);
      }
      headers[name] = v;
    }
    styles.push([c.name, headers]);
  }
  return styles;
}

/**
 * Runs the matrix through `send(path, headers) → {status, headers, body}` on an app whose
 * GET /read requires the scope "read" and GET /admin the scope "admin" (per route). Keys:
 * `reader` ("read"), `revoked` ("read", revoked), `unknown` (never issued here). For each
 * credential style: reader on /read → 200 with its owner; reader on /admin → 403
 * INSUFFICIENT_SCOPE; revoked → 401 REVOKED; unknown → 401 NOT_FOUND; plus no credential →
 * 401 CREDENTIAL_MISSING and one tampered key → 401. Every refusal is checked against the
 * shared JSON body and headers. Returns the number of styles.
 */
async function credentialMatrix(send, { reader, revoked, unknown }) {
  const styles = credentialStyles(reader.key);
  assert.ok(styles.length >= 12, `credential styles: ${styles.length}`);
  const kinds = new Set(styles.map(([, h]) => Object.keys(h).map((n) => n.toLowerCase()).join('+')));
  for (const k of ['x-api-key', 'authorization', 'x-api-token-id+x-api-token-secret-key']) assert.ok(kinds.has(k), k);
  const revokedStyles = new Map(credentialStyles(revoked.key));
  const unknownStyles = new Map(credentialStyles(unknown.key));
  for (const [name, headers] of styles) {
    let r = await send('/read', headers);
    assert.deepEqual([r.status, r.body], [200, { owner: reader.info.owner, key: reader.info.id }], name);
    r = await send('/admin', headers);
    refused(r, 403, 'INSUFFICIENT_SCOPE', name);
    refused(await send('/read', revokedStyles.get(name)), 401, 'REVOKED', name);
    refused(await send('/read', unknownStyles.get(name)), 401, 'NOT_FOUND', name);
  }
  refused(await send('/read', {}), 401, 'CREDENTIAL_MISSING', 'no credential');
  refused(await send('/read', { 'x-api-key': reader.key.slice(0, -1) + (reader.key.endsWith('A') ? 'B' : 'A') }), 401, null, 'tampered');
  refused(await send('/read', { authorization: 'Digest x' }), 401, 'UNSUPPORTED_SCHEME', 'digest');
  return styles.length;
}

/** Checks a refusal: status, the JSON body, and the headers every keyward refusal carries. */
function refused(r, status, code, what) {
  assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  assert.deepEqual(Object.keys(r.body), ['ok', 'code', 'message'], what);
  assert.equal(r.body.ok, false, what);
  if (code) assert.equal(r.body.code, code, what);
  assert.equal(typeof r.body.message, 'string', what);
  assert.match(r.headers['content-type'], /^application\/json; charset=utf-8$/, what);
  assert.equal(r.headers['cache-control'], 'no-store', what);
  const challenge = status === 401 ? 'Bearer' : r.body.code === 'INSUFFICIENT_SCOPE' ? 'Bearer error="insufficient_scope"' : undefined;
  assert.equal(r.headers['www-authenticate'], challenge, what);
}

/** [uses, refused] of a key after flushing the pending counts. */
function counts(store, id) {
  store.flush();
  const u = store.usage(id);
  return [u.uses, u.refused];
}

module.exports = { credentialStyles, credentialMatrix, refused, counts };
