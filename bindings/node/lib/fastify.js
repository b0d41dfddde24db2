'use strict';
/**
 * keyward for Fastify (5): a plugin that verifies every request's API key in an
 * `onRequest` hook, puts the verdict on `request.keyward`, and answers 401/403 exactly as the
 * Express middleware does (the same `refusal()` mapping, the same verify-once bookkeeping).
 * It needs no fastify at run time (nothing is required from it).
 *
 *   const keyward = require('keyward/fastify');
 *   app.register(keyward, { store });                                  // every route: a valid key
 *   app.post('/deploy', { config: { keyward: { scopes: ['deploy'] } } }, handler);
 *   app.get('/reports', { preHandler: keyward.require('reports:read') }, handler);
 *   app.get('/health', { config: { keyward: false } }, handler);        // public
 *
 * @module keyward/fastify
 */

const { Store, Scopes } = require('./store');
const { refusal, judge } = require('./middleware');

/** The plugin's state on a request it saw (for `require()`), a request decorator. */
const kState = Symbol('keyward.fastify');

const PLUGIN_OPTIONS = ['store', 'scopes', 'cost', 'info', 'property', 'onRefused'];
const ROUTE_OPTIONS = ['scopes', 'cost', 'info'];

function checkKeys(object, known, what) {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) throw new TypeError(`keyward fastify: ${what} must be an object`);
  for (const k of Object.keys(object)) {
    if (!known.includes(k)) throw new TypeError(`keyward fastify: unknown ${what} ${JSON.stringify(k)} (known: ${known.join(', ')})`);
  }
}

function toScopes(scopes) {
  if (scopes === undefined) return undefined;
  return scopes instanceof Scopes ? scopes : new Scopes(scopes);
}

/** What one route checks: its scopes (list and prepared), cost and info. */
function settings(scopes, cost, info) {
  return { required: scopes === undefined ? [] : scopes.list, verifyOptions: { scopes, cost, info }, wantInfo: info };
}

/**
 * The plugin's settings for a route given the route's `config.keyward`: undefined → the
 * plugin's own; false → null (the route is public); an object → the plugin's scopes plus the
 * route's, the route's cost and info (else the plugin's). Cached per route object.
 */
function routeSettings(state, config) {
  if (config === undefined) return state.base;
  if (config === false) return null;
  let s = state.routes.get(config);
  if (s === undefined) {
    checkKeys(config, ROUTE_OPTIONS, 'route option config.keyward (or false)');
    if (config.info !== undefined && typeof config.info !== 'boolean') throw new TypeError('keyward fastify: config.keyward.info must be a boolean');
    const own = toScopes(config.scopes);
    let scopes = state.base.verifyOptions.scopes;
    if (own !== undefined) scopes = scopes === undefined ? own : new Scopes([...new Set([...scopes.list, ...own.list])]);
    const base = state.base.verifyOptions;
    s = settings(scopes, config.cost ?? base.cost, config.info ?? base.info);
    state.routes.set(config, s);
  }
  return s;
}

/** Answers a refused verdict (the plugin's onRefused, else the shared JSON refusal). */
function refuse(state, request, reply, verdict, done) {
  if (state.onRefused) {
    try {
      state.onRefused(request, reply, verdict);
    } catch (err) {
      done(err);
    }
    return;
  }
  const { status, headers, body } = refusal(verdict);
  reply.code(status).headers(headers).send(body);
}

/**
 * The Fastify plugin: `app.register(keyward, { store, scopes, cost, info, property, onRefused })`.
 * Not encapsulated (the `skip-override` of fastify-plugin): the hook and the decorator apply
 * to the routes of the context that registers it, and its children.
 */
function keyward(fastify, options, done) {
  let state;
  try {
    checkKeys(options, PLUGIN_OPTIONS, 'option');
    const { store } = options;
    if (!(store instanceof Store) && typeof store !== 'function') {
      throw new TypeError('keyward fastify: options.store must be a Store or a function returning one');
    }
    if (options.info !== undefined && typeof options.info !== 'boolean') throw new TypeError('keyward fastify: options.info must be a boolean');
    if (options.onRefused !== undefined && typeof options.onRefused !== 'function') throw new TypeError('keyward fastify: options.onRefused must be a function');
    const property = options.property ?? 'keyward';
    if (typeof property !== 'string' || property === '') throw new TypeError('keyward fastify: options.property must be a non-empty string');
    state = {
      getStore: store instanceof Store ? () => store : store,
      base: settings(toScopes(options.scopes), options.cost, options.info === true),
      routes: new WeakMap(),
      property,
      onRefused: options.onRefused,
    };
  } catch (err) {
    done(err);
    return;
  }
  if (!fastify.hasRequestDecorator(state.property)) fastify.decorateRequest(state.property, null);
  if (!fastify.hasRequestDecorator(kState)) fastify.decorateRequest(kState, null);

  // Bad route options fail when the route is declared, not at its first request.
  fastify.addHook('onRoute', (route) => {
    if (route.config) routeSettings(state, route.config.keyward);
  });

  fastify.addHook('onRequest', function keywardOnRequest(request, reply, next) {
    request[kState] = state;
    let verdict;
    try {
      const config = request.routeOptions.config;
      const s = routeSettings(state, config ? config.keyward : undefined);
      if (s === null) {
        next(); // a public route: config.keyward === false
        return;
      }
      verdict = judge(request.raw, request.headers, state.getStore(), s.required, s.verifyOptions, s.wantInfo);
    } catch (err) {
      next(err);
      return;
    }
    request[state.property] = verdict;
    if (verdict.ok) {
      if (verdict.rate !== null) reply.headers(verdict.rateHeaders);
      next();
    } else refuse(state, request, reply, verdict, next);
  });
  done();
}

/**
 * A route hook (for `preHandler`, or `onRequest` after the plugin's) requiring scopes:
 * `{ preHandler: keyward.require('invoices:read') }`. A request the plugin already accepted
 * is not verified again (no second use): the scopes are checked against the key's record,
 * and a missing one answers 403 INSUFFICIENT_SCOPE. On a public route (`config.keyward:
 * false`) it verifies the request itself, with the plugin's store and cost. Needs the plugin
 * registered in the route's context.
 * @param {...(string | readonly string[] | Scopes)} scopes
 */
function requireScopes(...scopes) {
  const prepared = scopes.length === 1 && scopes[0] instanceof Scopes ? scopes[0] : new Scopes(scopes.flat());
  const required = prepared.list;
  return function keywardRequire(request, reply, done) {
    const state = request[kState];
    if (!state) {
      done(new Error('keyward.require(): register the keyward plugin (require("keyward/fastify")) in this route\'s context first'));
      return;
    }
    let verdict;
    try {
      verdict = judge(request.raw, request.headers, state.getStore(), required, { scopes: prepared, cost: state.base.verifyOptions.cost }, false);
    } catch (err) {
      done(err);
      return;
    }
    request[state.property] = verdict;
    if (verdict.ok) done();
    else refuse(state, request, reply, verdict, done);
  };
}

// fastify-plugin's semantics, set by hand (what fastify-plugin would set; Fastify reads these
// symbols, lib/plugin-utils.js) so that keyward has no run-time dependency for Fastify users
// to install and none for everyone else: not encapsulated, named, and checked against the
// Fastify version.
keyward[Symbol.for('skip-override')] = true;
keyward[Symbol.for('fastify.display-name')] = 'keyward';
keyward[Symbol.for('plugin-meta')] = { name: 'keyward', fastify: '5.x' };
keyward.default = keyward;
keyward.keyward = keyward;
keyward.require = requireScopes;

module.exports = keyward;
