'use strict';
// keyward with plain node:http: one protected endpoint, GET /v1/data, which needs the
// scope "read". Run:
//
//   KEYWARD_DB=/tmp/keys.redb node examples/http-server.js
//   curl -H "x-api-key: kw_live_..." http://127.0.0.1:8080/v1/data
//
// PORT (default 8080; 0 = any free port) and HOST (default 127.0.0.1) choose where to listen.
const http = require('node:http');
const { Store, Scopes, sendRefusal } = require('keyward');

const store = new Store(process.env.KEYWARD_DB || 'keys.redb');
const read = new Scopes(['read']); // encoded once, verified against on every request

const server = http.createServer((req, res) => {
  if (req.url !== '/v1/data') {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"ok":false,"code":"NO_ROUTE"}');
    return;
  }
  const verdict = store.verifyHeaders(req.headers, { scopes: read });
  if (!verdict.ok) return sendRefusal(res, verdict); // 401 or 403, {"ok": false, "code", "message"}
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ok: true, owner: verdict.owner, key: verdict.keyId, pid: process.pid }));
});

server.listen(Number(process.env.PORT ?? 8080), process.env.HOST || '127.0.0.1', () => {
  console.log(`listening on http://${server.address().address}:${server.address().port}`);
});

// Stop cleanly: close the server, then the store (which flushes pending usage counts).
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => {
    store.close();
    process.exit(0);
  }));
}
