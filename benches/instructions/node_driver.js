'use strict';
// One binding path run N times, for benches/instructions/run.sh (see py_driver.py).
//   node node_driver.js PATH STORE KEYFILE N
// PATH: http-noauth / http (keyward.middleware on a node:http request, scope "read") /
// http-stacked (two middlewares) / express-stacked (app-level + route-level middleware in
// Express, when express is installed) / verify (store.verify(key, {scopes})) /
// verify-headers (store.verifyHeaders(req.headers, {scopes})).
// Requests are node:http IncomingMessage objects fed the raw headers as the HTTP parser
// feeds them (so `req.headers` is built lazily, as in a server).
const path = require('node:path');
const fs = require('node:fs');
const { IncomingMessage, ServerResponse } = require('node:http');
const keyward = require(path.join(__dirname, '../../bindings/node'));

const [, , which, storePath, keyFile, nText] = process.argv;
const n = Number(nText);
const keys = fs.readFileSync(keyFile, 'utf8').split('\n').filter(Boolean);
const store = new keyward.Store(storePath, { flushIntervalMs: keyward.FLUSH_MANUAL });
const scopes = new keyward.Scopes(['read']);

function request(key) {
  const req = new IncomingMessage(null);
  const raw = ['Host', '127.0.0.1:18104', 'User-Agent', 'wrk', 'Accept', '*/*', 'X-Api-Key', key];
  req._addHeaderLines(raw, raw.length);
  req.method = 'GET';
  req.url = '/keyward';
  return req;
}

let served = 0;
const ok = () => { served++; };
const fail = (err) => { throw err || new Error('refused'); };
const res = { statusCode: 200, setHeader() {}, end: fail };

// WARMUP requests first (default 4000, also in the N1 run): the JIT compiles the path
// then, so the difference between two N is the steady state.
const warmup = Number(process.env.WARMUP || 4000);
function loop(handle) {
  for (let i = 0; i < n + warmup; i++) handle(request(keys[i % keys.length]));
}

switch (which) {
  case 'http-noauth':
    loop(() => ok());
    break;
  case 'http': {
    const auth = keyward.middleware(store, { scopes: ['read'] });
    loop((req) => auth(req, res, (err) => (err ? fail(err) : ok())));
    break;
  }
  case 'http-stacked': {
    const outer = keyward.middleware(store, { scopes: ['read'] });
    const inner = keyward.middleware(store, { scopes: ['read'] });
    loop((req) => outer(req, res, (err) => (err ? fail(err) : inner(req, res, (e) => (e ? fail(e) : ok())))));
    break;
  }
  case 'verify':
    loop((req) => (store.verify(keys[served % keys.length], { scopes }).ok ? ok() : fail()));
    break;
  case 'verify-headers':
    loop((req) => (store.verifyHeaders(req.headers, { scopes }).ok ? ok() : fail()));
    break;
  default:
    throw new Error(`unknown path ${which}`);
}
if (served !== n + warmup) throw new Error(`served ${served} of ${n + warmup}`);
store.close();
void ServerResponse;
