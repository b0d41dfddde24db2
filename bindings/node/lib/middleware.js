'use strict';
/**
 * Express / Connect middleware (no dependency on express: it uses only the node:http
 * request and response API, so it also works with Connect, Polka or plain node:http).
 * @module keyward/lib/middleware
 */

const { Store, Scopes } = require('./store');

/**
 * Sends the JSON refusal for a verdict: status 401 or 403, body
 * `{"ok": false, "code": "...", "message": "..."}`; a 401 carries
 * `WWW-Authenticate: Bearer` (RFC 6750). Works on any node:http ServerResponse.
 * @param {import('node:http').ServerResponse} res
 * @param {import('./store').Verdict} verdict
 */
function sendRefusal(res, verdict) {
  const body = JSON.stringify({ ok: false, code: verdict.code, message: verdict.message });
  res.statusCode = verdict.httpStatus;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  if (verdict.httpStatus === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  else if (verdict.code === 'INSUFFICIENT_SCOPE') res.setHeader('WWW-Authenticate', 'Bearer error="insufficient_scope"');
  res.end(body);
}

/**
 * Middleware that verifies the request's API key (x-api-key, Authorization: Bearer / Basic,
 * or X-Api-Token-Id + X-Api-Token-Secret-Key) and either calls `next()` with the verdict on
 * `req.keyward` (or `req[property]`), or answers 401/403 with a JSON body.
 *
 *   app.use('/api', keyward.middleware(store));
 *   app.post('/api/deploy', keyward.middleware(store, { scopes: ['deploy'] }), handler);
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
  const verifyOptions = { scopes, cost: options.cost, info: options.info === true };
  const property = options.property || 'keyward';
  const onRefused = options.onRefused || ((req, res, verdict) => sendRefusal(res, verdict));
  if (typeof onRefused !== 'function') throw new TypeError('keyward middleware: onRefused must be a function');
  const getStore = store instanceof Store ? () => store : store;
  return function keywardMiddleware(req, res, next) {
    let verdict;
    try {
      verdict = getStore().verifyHeaders(req.headers, verifyOptions);
    } catch (err) {
      next(err);
      return;
    }
    req[property] = verdict;
    if (verdict.ok) next();
    else onRefused(req, res, verdict);
  };
}

module.exports = { middleware, sendRefusal };
