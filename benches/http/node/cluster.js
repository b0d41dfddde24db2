'use strict';
// Node cluster (node:http), as README.md ("Cluster") sets it up: the primary forks WORKERS
// workers; each opens the store itself, keeps it, and closes it on SIGTERM (flushing its
// usage counts). Endpoints, one trivial JSON answer each:
//   /noauth    no authentication
//   /sqlite    SQLite + SHA-256 lookup (better-sqlite3, one connection per worker)
//   /sanctum   lookup + UPDATE last_used_at, uses (Sanctum's default)
//   /floor     the key looked up in a Map of every key (KW_BENCH_KEYS): no hashing, no counting
//   /keyward   keyward.middleware(store, { scopes: ['read'] })
// Environment: KW_BENCH_STORE, KW_BENCH_SQLITE, PORT, WORKERS; KEYWARD_LIB for the library.
const cluster = require('node:cluster');
const crypto = require('node:crypto');
const http = require('node:http');

if (cluster.isPrimary) {
  for (let i = 0; i < Number(process.env.WORKERS || 4); i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  });
} else {
  const keyward = require('keyward');
  const Database = require('better-sqlite3');
  const store = new keyward.Store(process.env.KW_BENCH_STORE, process.env.KW_BENCH_FLUSH_MS ? { flushIntervalMs: Number(process.env.KW_BENCH_FLUSH_MS) } : {}); // per worker, after the fork
  const auth = keyward.middleware(store, { scopes: ['read'] });
  const db = new Database(process.env.KW_BENCH_SQLITE, { timeout: 5000 }); // busy timeout
  db.pragma('synchronous = NORMAL'); // WAL: no fsync per commit, as on every host
  const find = db.prepare('SELECT id, abilities, expires_at FROM personal_access_tokens WHERE token = ?');
  const touch = db.prepare('UPDATE personal_access_tokens SET last_used_at = ?, uses = uses + 1 WHERE id = ?');
  const body = '{"ok":true}';
  // The floor: the cheapest check of a key a process can make (a Map of every key, its scopes).
  const floorKeys = new Map();
  for (const line of require('node:fs').readFileSync(process.env.KW_BENCH_KEYS, 'utf8').split('\n')) {
    if (line) floorKeys.set(line, ['read']);
  }
  // The header read as the keyward middleware reads it (rawHeaders, without building
  // req.headers: that object alone costs a Node worker about as much as a verify).
  function floor(req) {
    const raw = req.rawHeaders;
    let header;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i].length === 13 && raw[i].toLowerCase() === 'authorization') { header = raw[i + 1]; break; }
    }
    if (!header || !header.startsWith('Bearer ')) return false;
    const scopes = floorKeys.get(header.slice(7));
    return scopes !== undefined && scopes.includes('read');
  }

  const ok = (res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
  const deny = (res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"ok":false}');

  // Sanctum's lookup: SHA-256 hex of the bearer token, abilities checked; `update` writes.
  function sanctum(req, update) {
    const header = req.headers.authorization;
    if (!header || !header.startsWith('Bearer ')) return false;
    const row = find.get(crypto.createHash('sha256').update(header.slice(7)).digest('hex'));
    const now = new Date().toISOString().slice(0, 19).replace('T', ' ');
    if (!row || (row.expires_at !== null && row.expires_at <= now) || !JSON.parse(row.abilities).includes('read')) return false;
    if (update) touch.run(now, row.id);
    return true;
  }

  const server = http.createServer((req, res) => {
    switch (req.url) {
      case '/noauth':
        return ok(res);
      case '/sqlite':
      case '/sanctum':
        return sanctum(req, req.url === '/sanctum') ? ok(res) : deny(res);
      case '/floor':
        return floor(req) ? ok(res) : deny(res);
      case '/keyward':
        return auth(req, res, (err) => (err ? res.writeHead(500).end() : ok(res)));
      default:
        return res.writeHead(404).end();
    }
  });
  server.listen(Number(process.env.PORT), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => {
    store.close(); // flushes this worker's usage counts
    db.close();
    process.exit(0);
  }));
}
