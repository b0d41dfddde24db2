'use strict';
/**
 * keyward for Node.js: an embedded API-key engine (issue, verify, revoke, rotate and count
 * API keys in-process) over libkeyward's C ABI, with koffi. CommonJS; ES modules import it
 * too (`import { Store } from 'keyward'`).
 *
 *   const { Store } = require('keyward');
 *   const store = new Store('/var/lib/app/keys.redb');
 *   const { key } = store.create({ owner: 'acct_42', scopes: ['read'] });
 *   store.verify(key, { scopes: ['read'] }).ok; // true
 *
 * @module keyward
 */

const store = require('./lib/store');
const errors = require('./lib/errors');
const abi = require('./lib/abi');
const middleware = require('./lib/middleware');

// Every export assigned by name, so that ES modules can import each one by name.
exports.Store = store.Store;
exports.Verdict = store.Verdict;
exports.Scopes = store.Scopes;
exports.extractCredential = store.extractCredential;
exports.parseKey = store.parseKey;
exports.legacyKeyId = store.legacyKeyId;
exports.LEGACY_SCHEMES = store.LEGACY_SCHEMES;
exports.releasePersistent = store.releasePersistent;
exports.statusName = store.statusName;
exports.statusMessage = store.statusMessage;
exports.middleware = middleware.middleware;
exports.sendRefusal = middleware.sendRefusal;
exports.library = store.library;
exports.ABI_VERSION = abi.ABI_VERSION;
exports.constants = abi.DEFINES;
exports.KeywardError = errors.KeywardError;
exports.InvalidArgumentError = errors.InvalidArgumentError;
exports.BufferTooSmallError = errors.BufferTooSmallError;
exports.PanicError = errors.PanicError;
exports.StoreClosedError = errors.StoreClosedError;
exports.NotFoundError = errors.NotFoundError;
exports.PolicyError = errors.PolicyError;
exports.OpenError = errors.OpenError;
exports.StorageError = errors.StorageError;
exports.UpstreamError = errors.UpstreamError;
exports.CredentialError = errors.CredentialError;
exports.LibraryError = errors.LibraryError;
exports.AbiMismatchError = errors.AbiMismatchError;
