// Compiled (never run) by test/types.test.js with `tsc --strict`: the declarations of
// keyward/fastify describe its documented uses, with fastify's own types.
import Fastify from 'fastify';
import keyward = require('keyward/fastify');
import { Store, Scopes, Verdict } from 'keyward';

const store = new Store('/tmp/keys.redb');
const app = Fastify();
app.register(keyward, { store, scopes: ['read'], cost: 1, info: false });
app.register(keyward, { store: () => store, scopes: new Scopes(['read']), onRefused: (request, reply, verdict: Verdict) => reply.code(418).send({ code: verdict.code }) });
app.get('/me', async (request) => {
  const v: Verdict | null = request.keyward;
  return { owner: v ? v.owner : null };
});
app.post('/deploy', { config: { keyward: { scopes: ['deploy'], cost: 5 } } }, async (request) => ({ by: request.keyward?.owner }));
app.get('/health', { config: { keyward: false } }, async () => ({ ok: true }));
app.get('/reports', { preHandler: keyward.require('reports:read') }, async () => ({}));
app.get('/both', { preHandler: [keyward.require(['a', 'b'], 'c'), keyward.require(new Scopes(['d']))] }, async () => ({}));
const opts: keyward.KeywardFastifyOptions = { store };
const route: keyward.KeywardRouteOptions = { scopes: ['x'] };
void opts;
void route;
// @ts-expect-error: the store is required
app.register(keyward, {});
