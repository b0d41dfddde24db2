'use strict';
// Shared helpers of the node --test suites.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const VECTORS = path.join(REPO, 'tests', 'vectors');
const HEADER = path.join(REPO, 'include', 'keyward.h');

/** A fresh temporary directory, removed when the test ends. */
function tempDir(t, name = 'keyward-node-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), name));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh store in a temporary directory, closed when the test ends. */
function freshStore(t, options) {
  const { Store } = require('../..');
  const store = new Store(path.join(tempDir(t), 'keys.redb'), options);
  t.after(() => store.close());
  return store;
}

function vectors(name) {
  return JSON.parse(fs.readFileSync(path.join(VECTORS, name), 'utf8'));
}

module.exports = { REPO, VECTORS, HEADER, tempDir, freshStore, vectors };
