'use strict';
/**
 * Express / Connect middleware (no dependency on express: it uses only the node:http
 * request and response API, so it also works with Connect, Polka or plain node:http).
 * @module keyward/lib/middleware
 */

const { IncomingMessage } = require('node:http');
const { Store, Scopes, Verdict, reasonInfo, CREDENTIAL_HEADER_NAMES } = require('./store');
const { NotFoundError } = require('./errors');

/**
 * The answer to a refused verdict, as data: `{ status, headers, body }`, status 401, 403 or
 * 429 (RATE_LIMITED, with `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy` fields),
 * body the JSON text `{"ok": false, "code": "...", "message": "..."}`, headers
 * `Content-Type`, `Cache-Control: no-store` and `WWW-Authenticate` (`Bearer` on a 401, RFC
 * 6750; `Bearer error="insufficient_scope"` on a 403 for a missing scope). The one mapping
 * from verdict to response: `sendRefusal()` writes it to a node:http response, the Fastify
 * plugin (lib/fastify.js) to a reply. `Content-Length` is left to the writer.
 * @param {import('./store').Verdict} verdict
 * @returns {{ status: number, headers: Record<string, string>, body: string }}
 */
function refusal(verdict) {
  const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };
  if (verdict.httpStatus === 401) headers['WWW-Authenticate'] = 'Bearer';
  else if (verdict.code === 'INSUFFICIENT_SCOPE') headers['WWW-Authenticate'] = 'Bearer error="insufficient_scope"';
  Object.assign(headers, verdict.rateHeaders); // RateLimit-Policy, RateLimit, Retry-After on a 429
  const body = JSON.stringify({ ok: false, code: verdict.code, message: verdict.message });
  return { status: verdict.httpStatus, headers, body };
}

/**
 * Sends the JSON refusal for a verdict (`refusal()`): status 401 or 403, body
 * `{"ok": false, "code": "...", "message": "..."}`; a 401 carries
 * `WWW-Authenticate: Bearer` (RFC 6750). Works on any node:http ServerResponse.
 * @param {import('node:http').ServerResponse} res
 * @param {import('./store').Verdict} verdict
 */
function sendRefusal(res, verdict) {
  const { status, headers, body } = refusal(verdict);
  res.statusCode = status;
  for (const name in headers) res.setHeader(name, headers[name]);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/**
 * Where a keyward layer leaves the request it accepted, for the keyward layers after it on
 * the same request (app-level + route-level in Express): `req[ACCEPTED]` = { store, verdict,
 * required (the scopes the first layer checked, its own array), scopes (a Set of every scope
 * checked so far, made only when a later layer needs more), keyScopes (the key's own, once
 * read) }. A symbol-keyed property: invisible to `Object.keys()` and JSON, gone with its
 * request, and, unlike a WeakMap entry, no ephemeron for the garbage collector to trace on
 * every request (measured: about 1 µs of a Node worker's CPU per request).
 */
const ACCEPTED = Symbol('keyward.accepted');

const REASON_NOT_FOUND = 2;
const REASON_INSUFFICIENT_SCOPE = 5;

function sameStore(a, b) {
  if (a === b) return true;
  try {
    return a.sameStore(b);
  } catch {
    return false; // a closed handle: verify afresh
  }
}

/** A copy of a verdict with another reason (the key's fields kept) or another record. */
function derived(verdict, reason, info) {
  const r = reasonInfo(reason);
  const flags = (verdict.limited ? 1 : 0) | (verdict.revoked ? 2 : 0) | (verdict.rotated ? 4 : 0);
  const found = reason !== REASON_NOT_FOUND;
  return new Verdict(reason, r.code, r.httpStatus, r.message, found, found ? verdict.keyId : null,
    found ? verdict.owner : null, found ? verdict.env : null, found ? verdict.createdAt : null,
    found ? verdict.expiresAt : null, found ? flags : 0, found ? info : null);
}

/**
 * Judges a request an earlier middleware accepted against this middleware's scopes, without
 * verifying it again (no use counted, no credit spent). Scopes the earlier checks covered
 * pass at once; others are looked up in the key's record (the verdict's `info`, else
 * `store.get()`, which counts nothing; read once per request). Returns the verdict to use.
 */
function recheck(store, earlier, required, wantInfo) {
  const verdict = earlier.verdict;
  earlier.scopes ??= new Set(earlier.required);
  const extra = required.filter((s) => !earlier.scopes.has(s));
  let record = verdict.info;
  if (!record && ((extra.length > 0 && earlier.keyScopes === null) || wantInfo)) {
    try {
      record = store.get(verdict.keyId);
    } catch (err) {
      if (err instanceof NotFoundError) return derived(verdict, REASON_NOT_FOUND, null); // deleted since
      throw err;
    }
  }
  if (extra.length > 0) {
    earlier.keyScopes ??= new Set(record.scopes);
    if (!extra.every((s) => earlier.keyScopes.has(s))) return derived(verdict, REASON_INSUFFICIENT_SCOPE, verdict.info);
    for (const s of extra) earlier.scopes.add(s);
  }
  if (wantInfo && !verdict.info) {
    earlier.verdict = derived(verdict, verdict.reason, record); // later layers keep the record
    return earlier.verdict;
  }
  return verdict;
}

/**
 * The verdict on one request, verified at most once per request and store: a request an
 * earlier keyward layer (this middleware, the Fastify plugin, `require()`) accepted on the
 * same store is rechecked for `required` without a second verify (`recheck()`); otherwise
 * `store.verifyHeaders(headers, verifyOptions)` (`headers` undefined: the request's own, read
 * without building `req.headers` where node:http allows), and an accepted request is remembered.
 * `req` is the node:http IncomingMessage (the WeakMap key every layer shares: Fastify's
 * `request.raw`). Throws what the store throws.
 */
function judge(req, headers, store, required, verifyOptions, wantInfo) {
  const earlier = req[ACCEPTED];
  if (earlier !== undefined && sameStore(store, earlier.store)) return recheck(store, earlier, required, wantInfo);
  const verdict = verifyRequest(req, headers, store, verifyOptions, wantInfo);
  if (verdict.ok) req[ACCEPTED] = { store, verdict, required, scopes: null, keyScopes: null };
  return verdict;
}

/**
 * node:http keeps the header object it builds from `rawHeaders` (on the first read of
 * `req.headers`) under this symbol: null until `req.headers` is read or assigned. Building
 * it costs a Node worker about as much as the verify itself, and a request that reaches
 * keyward first (the usual place of an auth middleware) has not built it yet. Undefined on
 * a Node whose IncomingMessage keeps it elsewhere: then `req.headers` is always used.
 */
const K_HEADERS = Object.getOwnPropertySymbols(new IncomingMessage(null)).find((s) => s.description === 'kHeaders');

/** The four credential header names by length: a name of another length is none of them. */
const CREDENTIAL_NAME_LENGTHS = new Set(CREDENTIAL_HEADER_NAMES.map((n) => n.length));
const CREDENTIAL_NAMES = new Set(CREDENTIAL_HEADER_NAMES);
const UNTOUCHED_NONE = -1;

/**
 * Where the one credential header of a request whose `req.headers` was never read or set
 * sits in its `rawHeaders` (the index of its name), `UNTOUCHED_NONE` when it has none, or
 * undefined when `req.headers` must be used: it was built or assigned (what it holds is what
 * the application means), or several credential headers arrived (node:http's own rules join
 * or drop repeated headers, and `req.headers` applies them).
 */
function untouchedCredential(req) {
  if (K_HEADERS === undefined || req[K_HEADERS] !== null) return undefined;
  const raw = req.rawHeaders;
  if (!Array.isArray(raw)) return undefined;
  let at = UNTOUCHED_NONE;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (typeof name !== 'string' || typeof raw[i + 1] !== 'string') return undefined;
    if (CREDENTIAL_NAME_LENGTHS.has(name.length) && CREDENTIAL_NAMES.has(name.toLowerCase())) {
      if (at !== UNTOUCHED_NONE) return undefined;
      at = i;
    }
  }
  return at;
}

/**
 * `store.verifyHeaders(headers, verifyOptions)` (`headers` undefined: the request's own),
 * through the store's request hot path when the options need nothing else: the credential
 * read from `rawHeaders` while `req.headers` is unbuilt (`untouchedCredential()`), else from
 * a node:http request's own header object (lower-cased names: four lookups instead of a
 * walk over every header).
 */
function verifyRequest(req, headers, store, verifyOptions, wantInfo) {
  const scopes = verifyOptions.scopes;
  const cost = verifyOptions.cost === undefined ? 0 : verifyOptions.cost;
  if (!wantInfo && verifyOptions.dryRun === undefined && req.rawHeaders !== undefined
      && (scopes === undefined || scopes instanceof Scopes) && cost >>> 0 === cost) {
    if (headers === undefined) {
      const at = untouchedCredential(req);
      if (at === UNTOUCHED_NONE) return store._verifyCredentialHeader(undefined, undefined, scopes, cost);
      if (at !== undefined) return store._verifyCredentialHeader(req.rawHeaders[at].toLowerCase(), req.rawHeaders[at + 1], scopes, cost);
      headers = req.headers;
    }
    if (headers === req.headers) return store._verifyRequest(headers, scopes, cost);
  }
  return store.verifyHeaders(headers === undefined ? req.headers : headers, verifyOptions);
}

/** The verdict an earlier keyward layer accepted for `req` on `store` (else undefined). */
function acceptedVerdict(req, store) {
  const earlier = req[ACCEPTED];
  return earlier !== undefined && sameStore(store, earlier.store) ? earlier.verdict : undefined;
}

/**
 * Middleware that verifies the request's API key (x-api-key, Authorization: Bearer / Basic,
 * or X-Api-Token-Id + X-Api-Token-Secret-Key) and either calls `next()` with the verdict on
 * `req.keyward` (or `req[property]`), or answers 401/403 with a JSON body.
 *
 *   app.use('/api', keyward.middleware(store));
 *   app.post('/api/deploy', keyward.middleware(store, { scopes: ['deploy'] }), handler);
 *
 * Stacking is safe: a request an earlier keyward middleware (on the same store) accepted is
 * not verified again. The later middleware reuses that verdict, so the request counts one
 * use and spends its credits once (the first middleware's `cost`); scopes it needs beyond
 * those already checked are checked against the key's record, and a missing one answers the
 * same 403 INSUFFICIENT_SCOPE.
 *
 * A failing store (closed, storage error) goes to `next(err)`.
 *
 * @param {Store | (() => Store)} store a Store, or a function returning this process's Store
 * @param {import('../index').MiddlewareOptions} [options]
 * @returns {(req: any, res: any, next: (err?: any) => void) => void}
 */
function middleware(store, options = {}) {
  if (!(store instanceof Store) && typeof store !== 'function') {
    throw new TypeError('keyward middleware: store must be a Store or a function returning one');
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('keyward middleware: options must be an object');
  const known = ['scopes', 'cost', 'info', 'property', 'onRefused'];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new TypeError(`keyward middleware: unknown option ${JSON.stringify(k)} (known: ${known.join(', ')})`);
  }
  const scopes = options.scopes === undefined ? undefined : options.scopes instanceof Scopes ? options.scopes : new Scopes(options.scopes);
  const required = scopes === undefined ? [] : scopes.list;
  const wantInfo = options.info === true;
  const verifyOptions = { scopes, cost: options.cost, info: wantInfo };
  const property = options.property || 'keyward';
  const onRefused = options.onRefused || ((req, res, verdict) => sendRefusal(res, verdict));
  if (typeof onRefused !== 'function') throw new TypeError('keyward middleware: onRefused must be a function');
  const getStore = store instanceof Store ? () => store : store;
  return function keywardMiddleware(req, res, next) {
    let verdict;
    try {
      verdict = judge(req, undefined, getStore(), required, verifyOptions, wantInfo);
    } catch (err) {
      next(err);
      return;
    }
    req[property] = verdict;
    if (verdict.ok) {
      // A rate-limited key's state goes out with the response (set again by a stacked layer:
      // the same values).
      if (verdict.rate !== null) {
        const headers = verdict.rate.headers;
        for (const name in headers) res.setHeader(name, headers[name]);
      }
      next();
    } else onRefused(req, res, verdict);
  };
}

module.exports = { middleware, sendRefusal, refusal, judge, acceptedVerdict };
