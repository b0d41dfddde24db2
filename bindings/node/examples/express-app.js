'use strict';
// keyward with Express: every /api route needs a valid key; POST /api/deploy also needs the
// scope "deploy". The verdict is on req.keyward. Run:
//
//   npm install express keyward
//   KEYWARD_DB=/tmp/keys.redb node examples/express-app.js
const express = require('express');
const keyward = require('keyward');

const store = new keyward.Store(process.env.KEYWARD_DB || 'keys.redb');
const app = express();

app.use('/api', keyward.middleware(store)); // 401 {"ok": false, "code": "...", "message": "..."}
app.get('/api/me', (req, res) => res.json({ owner: req.keyward.owner, key: req.keyward.keyId }));
app.post('/api/deploy', keyward.middleware(store, { scopes: ['deploy'] }), (req, res) => {
  res.json({ ok: true, deployedBy: req.keyward.owner }); // 403 INSUFFICIENT_SCOPE without "deploy"
});

const server = app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => store.close()));
