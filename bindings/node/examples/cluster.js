'use strict';
// keyward under node:cluster: one store file shared by every worker process (multi-process
// mode, the default). Each worker opens the store itself, after the fork, and closes it on
// exit so its pending usage counts are flushed. A key revoked in any process is refused by
// every worker on its next verify. Run:
//
//   KEYWARD_DB=/tmp/keys.redb WORKERS=4 node examples/cluster.js
const cluster = require('node:cluster');
const http = require('node:http');
const os = require('node:os');

if (cluster.isPrimary) {
  const workers = Number(process.env.WORKERS || os.availableParallelism());
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  });
} else {
  const { Store, middleware } = require('keyward');
  const store = new Store(process.env.KEYWARD_DB || 'keys.redb'); // per worker, never before the fork
  const auth = middleware(store, { scopes: ['read'] });
  const server = http.createServer((req, res) => {
    auth(req, res, (err) => {
      if (err) {
        res.writeHead(500).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, owner: req.keyward.owner, worker: cluster.worker.id }));
    });
  });
  server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
    console.log(`worker ${cluster.worker.id} listening on http://127.0.0.1:${server.address().port}`);
  });
  process.on('SIGTERM', () => server.close(() => {
    store.close(); // flushes this worker's usage counts
    process.exit(0);
  }));
}
