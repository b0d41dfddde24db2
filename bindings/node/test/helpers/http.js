'use strict';
// A tiny HTTP client for the tests (node:http; a fresh connection per request so that
// requests to a worker always reach that worker).
const http = require('node:http');

/**
 * GET `url` with `headers`; resolves {status, headers, body (parsed JSON or text)}.
 * Rejects after `timeoutMs`.
 */
function request(url, { method = 'GET', headers = {}, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

module.exports = { request };
