'use strict';
/**
 * Errors of the keyward binding. Every failed `kw_` call becomes a {@link KeywardError}
 * subclass carrying the C status: `status` (the number) and `code` (its stable name,
 * e.g. `"NOT_FOUND"`). Problems loading the library are {@link LibraryError}s.
 * @module keyward/lib/errors
 */

/** Base class of every error of a `kw_` call. */
class KeywardError extends Error {
  /**
   * @param {number} status the `kw_status` value
   * @param {string} code its stable name without `KW_` (e.g. `"NOT_FOUND"`)
   * @param {string} message
   * @param {string} [operation] the binding method that failed (e.g. `"revoke"`)
   * @param {string} [detail] the library's account of this failure (`kw_last_error_message`):
   *   which file, which permission, what to do; the message says it instead of the status's
   *   generic message when it is not empty
   */
  constructor(status, code, message, operation, detail = '') {
    const text = detail || message; // the library's detail names the cause; the status message is generic
    super(operation ? `keyward ${operation}: ${text} (${code})` : `keyward: ${text} (${code})`);
    /** @type {number} */
    this.status = status;
    /** @type {string} */
    this.code = code;
    /** @type {string|undefined} */
    this.operation = operation;
    /** The library's detail of the failure ('' when it gave none). @type {string} */
    this.detail = detail;
  }

  get name() {
    return this.constructor.name;
  }
}

/** An argument was refused: INVALID_ARGUMENT, NULL_ARGUMENT, INVALID_UTF8, TOO_LONG, CONFIG_MISMATCH. */
class InvalidArgumentError extends KeywardError {}
/** An output buffer was too small (BUFFER_TOO_SMALL): a binding bug if it ever escapes. */
class BufferTooSmallError extends KeywardError {}
/** A panic inside keyward was caught at the C boundary (PANIC): a keyward bug. */
class PanicError extends KeywardError {}
/** The store is closed (CLOSED). */
class StoreClosedError extends KeywardError {}
/** No key with that id (NOT_FOUND). */
class NotFoundError extends KeywardError {}
/** A store policy refused the change (POLICY_*, CREDIT_SLOTS_EXHAUSTED). */
class PolicyError extends KeywardError {}
/**
 * The store could not be opened (DIRECTORY_MISSING, LOCKED, READ_ONLY, CORRUPT,
 * WRONG_PEPPER, NEWER_FORMAT, PEPPER_*).
 */
class OpenError extends KeywardError {}
/** Any other storage or I/O failure (STORAGE). */
class StorageError extends KeywardError {}
/**
 * The store replicates an upstream PostgreSQL (UPSTREAM_REQUIRED: make the change through the
 * upstream), or the upstream is unreachable or of another schema (UPSTREAM_UNAVAILABLE,
 * UPSTREAM_SCHEMA); nothing was changed.
 */
class UpstreamError extends KeywardError {}
/**
 * The request carries no usable credential (CREDENTIAL_MISSING, UNSUPPORTED_SCHEME,
 * BAD_BASE64, HALF_PAIR, MALFORMED_KEY (also a credential header value over
 * KW_MAX_HEADER_VALUE_LEN), AMBIGUOUS_CREDENTIAL). `httpStatus` is 401.
 */
class CredentialError extends KeywardError {
  constructor(status, code, message, operation, detail) {
    super(status, code, message, operation, detail);
    /** @type {401} */
    this.httpStatus = 401;
  }
}

/** libkeyward could not be found or loaded. */
class LibraryError extends Error {
  get name() {
    return this.constructor.name;
  }
}
/** The loaded libkeyward has another C ABI version than this binding. */
class AbiMismatchError extends LibraryError {
  /**
   * @param {string} file
   * @param {number} found
   * @param {number} expected
   */
  constructor(file, found, expected) {
    super(
      `keyward: ${file} has C ABI version ${found}, but this binding needs version ${expected}; ` +
        'use the libkeyward built from the same keyward release as this package (or point KEYWARD_LIB at it)',
    );
    this.file = file;
    this.found = found;
    this.expected = expected;
  }
}

// kw_family values (see the header): the class follows the family the library gives each code
// (kw_status_family, from its one table of codes), so a code added later lands in the right
// class. A few codes have a class of their own.
const FAMILY = { ARGUMENT: 1, NOT_FOUND: 2, POLICY: 3, STORAGE: 4, PEPPER: 5, CREDENTIAL: 6, INTERNAL: 7, UPSTREAM: 8 };
const CLASS_BY_FAMILY = new Map([
  [FAMILY.ARGUMENT, InvalidArgumentError],
  [FAMILY.NOT_FOUND, NotFoundError],
  [FAMILY.POLICY, PolicyError],
  [FAMILY.STORAGE, OpenError],
  [FAMILY.PEPPER, OpenError],
  [FAMILY.CREDENTIAL, CredentialError],
  [FAMILY.INTERNAL, PanicError],
  [FAMILY.UPSTREAM, UpstreamError],
]);
const CLASS_BY_STATUS = new Map([
  [5, BufferTooSmallError], // KW_BUFFER_TOO_SMALL: a binding bug if it ever escapes
  [7, StoreClosedError], // KW_CLOSED
  [40, StorageError], // KW_STORAGE: any other storage or I/O failure, after the store opened
]);

/**
 * The error class for a status and its family (`kw_status_family`); KeywardError for an
 * unknown family.
 * @param {number} status
 * @param {number} family
 */
function classOf(status, family) {
  return CLASS_BY_STATUS.get(status) || CLASS_BY_FAMILY.get(family) || KeywardError;
}

module.exports = {
  KeywardError,
  InvalidArgumentError,
  BufferTooSmallError,
  PanicError,
  StoreClosedError,
  NotFoundError,
  PolicyError,
  OpenError,
  StorageError,
  UpstreamError,
  CredentialError,
  LibraryError,
  AbiMismatchError,
  classOf,
};
