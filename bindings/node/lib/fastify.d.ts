// Declarations of `keyward/fastify` (lib/fastify.js): the Fastify 5 plugin. Needs fastify's own
// types (the application has fastify installed).
import type { FastifyPluginCallback, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import type { Scopes, Store, Verdict } from '../index';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verdict on the request's API key; `null` on a public route (`config.keyward: false`). */
    keyward: Verdict | null;
  }
  interface FastifyContextConfig {
    /** This route's keyward requirements, or `false` for a route that needs no key. */
    keyward?: keyward.KeywardRouteOptions | false;
  }
}

/**
 * The keyward plugin: verifies each request's key in an `onRequest` hook (once per request,
 * however many keyward layers it meets), puts the verdict on `request.keyward`, and answers
 * 401/403 with the same JSON body and headers as the Express middleware. Not encapsulated
 * (fastify-plugin semantics): it covers the routes of the context that registers it.
 */
declare const keyward: FastifyPluginCallback<keyward.KeywardFastifyOptions> & {
  /**
   * A route hook requiring scopes (`{ preHandler: keyward.require('reports:read') }`): checked
   * against the key the plugin accepted, with no second use counted; 403 INSUFFICIENT_SCOPE
   * when one is missing.
   */
  require(...scopes: Array<string | readonly string[] | Scopes>): preHandlerHookHandler;
  default: typeof keyward;
  keyward: typeof keyward;
};
declare namespace keyward {
  /** What a route asks beyond the plugin's options: `{ config: { keyward: { scopes: ['admin'] } } }`. */
  interface KeywardRouteOptions {
    /** Scopes this route requires, in addition to the plugin's. */
    scopes?: readonly string[] | Scopes;
    /** Credits a request to this route spends (default: the plugin's `cost`, else the key's own). */
    cost?: number;
    /** Read the key's record into the verdict's `info`. */
    info?: boolean;
  }

  /** Options of `app.register(keyward, options)`. */
  interface KeywardFastifyOptions {
    /** The store (one per process), or a function returning this process's store. */
    store: Store | (() => Store);
    /** Scopes every route requires. */
    scopes?: readonly string[] | Scopes;
    /** Credits to spend per request for limited keys (default: the key's own cost). */
    cost?: number;
    /** Read the key's record into `request.keyward.info`. */
    info?: boolean;
    /** Where the verdict goes on the request (default `"keyward"`; declared for `"keyward"` only). */
    property?: string;
    /** Called instead of the default JSON 401/403 answer; it must send the reply. */
    onRefused?: (request: FastifyRequest, reply: FastifyReply, verdict: Verdict) => void;
  }
}
export = keyward;
