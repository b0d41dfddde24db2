'use strict';
/**
 * keyward for Node.js: an embedded API-key engine (issue, verify, revoke, rotate and count
 * API keys in-process) over libkeyward's C ABI, with koffi.
 *
 *   const { Store } = require('keyward');
 *   const store = new Store('/var/lib/app/keys.redb');
 *   const { key } = store.create({ owner: 'acct_42', scopes: ['read'] });
 *   store.verify(key, { scopes: ['read'] }).ok; // true
 *
 * @module keyward
 */

const store = require('./lib/store');
const { classOf, ...errors } = require('./lib/errors');
const abi = require('./lib/abi');
const middleware = require('./lib/middleware');

module.exports = {
  Store: store.Store,
  Verdict: store.Verdict,
  Scopes: store.Scopes,
  extractCredential: store.extractCredential,
  parseKey: store.parseKey,
  statusName: store.statusName,
  statusMessage: store.statusMessage,
  middleware: middleware.middleware,
  sendRefusal: middleware.sendRefusal,
  library: store.library,
  ABI_VERSION: abi.ABI_VERSION,
  constants: abi.DEFINES,
  ...errors,
  _testPanic: store.testPanic,
};
