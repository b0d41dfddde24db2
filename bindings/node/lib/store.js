'use strict';
/**
 * The keyward Store: every management, usage and verify function of the C ABI.
 * @module keyward/lib/store
 */

const native = require('./native');
const { koffi } = native;
const { DEFINES, ENUMS } = require('./abi');
const errors = require('./errors');
const { Block, writeText, textBound, TWO_32 } = require('./memory');

const N = native.load();
const fn = N.fn;
const S = N.structs;

// --- static strings of the library -------------------------------------------------------

const statusNames = new Map();
const statusMessages = new Map();
/** The stable name of a status, e.g. `"NOT_FOUND"` (from the library). */
function statusName(status) {
  let s = statusNames.get(status);
  if (s === undefined) statusNames.set(status, (s = fn.kw_status_name(status)));
  return s;
}
/** The English message of a status (from the library). */
function statusMessage(status) {
  let s = statusMessages.get(status);
  if (s === undefined) statusMessages.set(status, (s = fn.kw_status_message(status)));
  return s;
}

/**
 * Reason code, message and HTTP status by `kw_reason` value (the index), read once from the
 * library. Values are not contiguous (7 belongs to another reason): a gap holds the library's
 * answer for an unknown value.
 */
const REASONS = Array.from({ length: Math.max(...Object.values(ENUMS.kw_reason)) + 1 }, (_, r) =>
  Object.freeze({ code: fn.kw_reason_code(r), message: fn.kw_reason_message(r), httpStatus: fn.kw_reason_http_status(r) }),
);
function reasonInfo(reason) {
  return (
    REASONS[reason] ||
    Object.freeze({ code: fn.kw_reason_code(reason), message: fn.kw_reason_message(reason), httpStatus: fn.kw_reason_http_status(reason) })
  );
}

/** Buffer of kw_last_error_message (grows on KW_BUFFER_TOO_SMALL). */
let detailBuf = Buffer.alloc(1024);
const DETAIL_LEN = new Block(8);

/**
 * The detail the library recorded for the last failed call on this thread ("… is a
 * directory", which file has which permissions, what to do), or '' when it has none. Must
 * be read before any other `kw_` call, which clears it.
 */
function lastErrorDetail() {
  let st = fn.kw_last_error_message(detailBuf, detailBuf.length, DETAIL_LEN.ptr);
  if (st === ENUMS.kw_status.KW_BUFFER_TOO_SMALL) {
    detailBuf = Buffer.alloc(DETAIL_LEN.get64(0));
    st = fn.kw_last_error_message(detailBuf, detailBuf.length, DETAIL_LEN.ptr);
  }
  return st === 0 ? detailBuf.toString('utf8', 0, DETAIL_LEN.get64(0)) : '';
}

/**
 * The error for a failed call. Call it right after the failing `kw_` call: it carries the
 * library's detail of that failure. `fromCall` false is for a failure the binding decides
 * itself before any call (too many scopes, say), which has no detail to read.
 */
function failure(status, operation, fromCall = true) {
  const detail = fromCall ? lastErrorDetail() : '';
  const Class = errors.classOf(status, fn.kw_status_family(status));
  return new Class(status, statusName(status), statusMessage(status), operation, detail);
}

// --- native scratch memory -----------------------------------------------------------------

const off = (struct, field) => S[struct].members[field].offset;
const V = {
  keyId: off('kw_verdict', 'key_id'),
  env: off('kw_verdict', 'env'),
  owner: off('kw_verdict', 'owner'),
  end: off('kw_verdict', 'rate_scope'),
};

// Layout of the fixed block (offsets in bytes, 8-aligned).
const F_VERDICT = 0;
const F_LEN_A = 320;
const F_LEN_B = 328;
const F_U32 = 336;
const F_STORE = 344;
const F_STRUCT = 352; // stats, usage, credits, parsed key, rate limit (one at a time; at most 128 bytes)
const F_KEY = 512; // a new key (KW_MAX_KEY_LEN bytes at most)
const F_SCOPES = 1024; // kw_str[KW_MAX_SCOPES]
const F_SIZE = F_SCOPES + DEFINES.KW_MAX_SCOPES * S.kw_str.size;

if (
  S.kw_verdict.size > F_LEN_A ||
  Math.max(S.kw_store_stats.size, S.kw_store_table_stats.size, S.kw_usage_stats.size, S.kw_credit_balance.size, S.kw_parsed_key.size) > F_KEY - F_STRUCT ||
  DEFINES.KW_MAX_KEY_LEN > F_SCOPES - F_KEY
) {
  throw new Error('keyward: the C structs no longer fit the binding\'s scratch layout (lib/store.js)');
}

const FIXED = new Block(F_SIZE);
const BYTES = new Block(16384); // the header bytes of one verifyHeaders / extractCredential
const HEADERS = new Block(16 * S.kw_header.size); // kw_header array of one call
const at = (offset) => FIXED.ptr + BigInt(offset);
const P_VERDICT = at(F_VERDICT);
const P_LEN_A = at(F_LEN_A);
const P_LEN_B = at(F_LEN_B);
const P_U32 = at(F_U32);
const P_STORE = at(F_STORE);
const P_STRUCT = at(F_STRUCT);
const P_KEY = at(F_KEY);
const P_SCOPES = at(F_SCOPES);
const KW_STR = S.kw_str.size;
// The verdict's fields as indexes of 32-bit words of the fixed block (which never moves).
const W = FIXED.u32;
const V_REASON = (F_VERDICT + off('kw_verdict', 'reason')) >>> 2;
const V_HTTP = (F_VERDICT + off('kw_verdict', 'http_status')) >>> 2;
const V_FOUND = (F_VERDICT + off('kw_verdict', 'key_found')) >>> 2;
const V_FLAGS = (F_VERDICT + off('kw_verdict', 'key_flags')) >>> 2;
const V_CREATED = (F_VERDICT + off('kw_verdict', 'created_at_ms')) >>> 2;
const V_EXPIRES = (F_VERDICT + off('kw_verdict', 'expires_at_ms')) >>> 2;
const V_RATE_SCOPE = (F_VERDICT + off('kw_verdict', 'rate_scope')) >>> 2;
/** kw_verify_flags bit: our kw_verdict has the rate fields, fill them (every verify sets it). */
const RATE = ENUMS.kw_verify_flags.KW_VERIFY_RATE_FIELDS;
const RATE_SCOPES = [null, 'key', 'owner'];
const RATE_HEADERS_BUF = Buffer.alloc(DEFINES.KW_RATE_HEADERS_MAX_LEN);

/** NULL as koffi takes it fastest: a BigInt 0 (a JS null costs more per argument). */
const NULL = 0n;
const KW_HEADER = S.kw_header.size;

/** Output buffer of key records (verify with info, create, update, revoke, rotate). */
const INFO_BUF = Buffer.alloc(DEFINES.KW_KEY_INFO_MAX_LEN);
/** Output buffer of the JSON queries (grows on KW_BUFFER_TOO_SMALL). */
let jsonBuf = Buffer.alloc(64 * 1024);
/** Output buffers of kw_extract_credential (a credential header value is at most this long). */
const SECRET_BUF = Buffer.alloc(DEFINES.KW_MAX_HEADER_VALUE_LEN);
const ID_BUF = Buffer.alloc(DEFINES.KW_MAX_HEADER_VALUE_LEN);

/**
 * Longest string key verify hands to koffi as it is; a longer one (which the ABI answers
 * MALFORMED) is copied into a Buffer first, so koffi's call memory never has to grow.
 */
const INLINE = DEFINES.KW_MAX_PRESENTED_LEN;

// --- argument checks -------------------------------------------------------------------------

function isBytes(v) {
  return v instanceof Uint8Array;
}

function typeError(operation, what, expected, value) {
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
  return new TypeError(`keyward ${operation}: ${what} must be ${expected} (got ${got})`);
}

/** A required text argument for a (pointer, length) pair: a string or bytes. */
function text(value, operation, what) {
  if (typeof value === 'string' || isBytes(value)) return value;
  throw typeError(operation, what, 'a string', value);
}

/**
 * The byte length of a text argument passed to koffi as it is: a string (koffi writes its
 * UTF-8) or bytes.
 */
function argLength(value, operation, what) {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (isBytes(value)) return value.byteLength;
  throw typeError(operation, what, 'a string or a Buffer', value);
}

/** Bytes for a `const char *` argument of a management call. */
function cbytes(value) {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

/** A `kw_str` for koffi: `{NULL, 0}` when absent; never NULL when present (even empty). */
function kwStr(value, operation, what, required) {
  if (value === undefined || value === null) {
    if (required) throw typeError(operation, what, 'a string', value);
    return { ptr: null, len: 0 };
  }
  if (typeof value === 'string') return { ptr: value, len: Buffer.byteLength(value, 'utf8') };
  if (isBytes(value)) return value.byteLength ? { ptr: value, len: value.byteLength } : { ptr: '', len: 0 };
  throw typeError(operation, what, 'a string', value);
}

function scopeList(scopes, operation) {
  if (!Array.isArray(scopes)) throw typeError(operation, 'scopes', 'an array of strings', scopes);
  for (const s of scopes) if (typeof s !== 'string') throw typeError(operation, 'each scope', 'a string', s);
  return scopes;
}

function tooManyScopes(operation) {
  return failure(ENUMS.kw_status.KW_TOO_LONG, operation, false);
}

function u32(value, operation, what) {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff) return value;
  throw typeError(operation, what, 'an integer from 0 to 2^32-1', value);
}

function safeInt(value, operation, what) {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  throw typeError(operation, what, 'an integer', value);
}

/** Milliseconds since the epoch from a number or a Date. */
function millis(value, operation, what) {
  if (value instanceof Date) {
    const t = value.getTime();
    if (Number.isNaN(t)) throw typeError(operation, what, 'a valid Date', value);
    return t;
  }
  return safeInt(value, operation, what);
}

const DAY_MS = 86400000;
/** A day number (days since 1970-01-01) from a number, a Date or `"YYYY-MM-DD"`. */
function dayOf(value, operation, what) {
  if (typeof value === 'string') {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    const t = m ? Date.UTC(+m[1], +m[2] - 1, +m[3]) : NaN;
    if (Number.isNaN(t)) throw typeError(operation, what, 'a day ("YYYY-MM-DD", a Date or a day number)', value);
    return t / DAY_MS;
  }
  if (value instanceof Date) return Math.floor(millis(value, operation, what) / DAY_MS);
  if (typeof value === 'number' && Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff) return value;
  throw typeError(operation, what, 'a day ("YYYY-MM-DD", a Date or a day number)', value);
}

function options(value, operation, allowed) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(operation, 'options', 'an object', value);
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k)) throw new TypeError(`keyward ${operation}: unknown option ${JSON.stringify(k)} (known: ${allowed.join(', ')})`);
  }
  return value;
}

const REFILL = { none: 0, daily: 1, monthly: 2 };
const REFILL_NAMES = ['none', 'daily', 'monthly'];

/** A `kw_credits` for koffi from `{remaining, refillAmount, refillInterval, cost}`. */
function creditsOf(c, operation) {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw typeError(operation, 'credits', 'an object', c);
  options(c, operation, ['remaining', 'refillAmount', 'refillInterval', 'cost']);
  const interval = c.refillInterval === undefined ? 'none' : c.refillInterval;
  if (!(interval in REFILL)) throw typeError(operation, 'credits.refillInterval', '"none", "daily" or "monthly"', interval);
  return {
    remaining: safeInt(c.remaining, operation, 'credits.remaining'),
    refill_amount: c.refillAmount === undefined ? 0 : safeInt(c.refillAmount, operation, 'credits.refillAmount'),
    refill_interval: REFILL[interval],
    cost: c.cost === undefined ? 0 : u32(c.cost, operation, 'credits.cost'),
  };
}

function metadataOf(m, operation) {
  if (m === undefined || m === null) return null;
  if (isBytes(m)) return m;
  if (typeof m === 'string') return Buffer.from(m, 'utf8');
  if (typeof m === 'object') return Buffer.from(JSON.stringify(m), 'utf8');
  throw typeError(operation, 'metadata', 'a Buffer, a string or a JSON-serializable object', m);
}

// --- records -----------------------------------------------------------------------------

/**
 * A key's public record (the JSON `KeyInfo` of the ABI, in camelCase; metadata decoded).
 * @param {any} r
 */
function keyInfo(r) {
  return {
    id: r.id,
    owner: r.owner,
    name: r.name,
    scopes: r.scopes,
    env: r.env,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    metadata: Buffer.from(r.metadata || '', 'base64'),
    revokedAt: r.revoked_at,
    revokeReason: r.revoke_reason,
    rotatedFrom: r.rotated_from,
    rotatedTo: r.rotated_to,
    credits: r.credits
      ? {
          cost: r.credits.cost,
          refill: r.credits.refill ? { interval: r.credits.refill.interval, amount: r.credits.refill.amount } : null,
        }
      : null,
    serial: r.serial,
    // Keys imported from another system (`importLegacy`): which, its id there, and when the
    // first use upgraded it to keyward's own digest.
    legacy: r.legacy
      ? { scheme: r.legacy.scheme, sourceId: r.legacy.source_id, upgradedAt: r.legacy.upgraded_at }
      : null,
    rateLimit: r.rate_limit ? { rate: r.rate_limit.rate, periodMs: r.rate_limit.period_ms, burst: r.rate_limit.burst } : null,
  };
}

/** The systems `importLegacy` reads, by name (`kw_legacy_scheme`). */
const LEGACY_SCHEMES = Object.freeze({
  sanctum: ENUMS.kw_legacy_scheme.KW_LEGACY_SANCTUM,
  drf: ENUMS.kw_legacy_scheme.KW_LEGACY_DRF,
  unkey: ENUMS.kw_legacy_scheme.KW_LEGACY_UNKEY,
  'better-auth': ENUMS.kw_legacy_scheme.KW_LEGACY_BETTER_AUTH,
});

function legacyScheme(source, operation) {
  if (typeof source !== 'string') throw typeError(operation, 'source', 'a string', source);
  if (!Object.prototype.hasOwnProperty.call(LEGACY_SCHEMES, source)) {
    const e = failure(ENUMS.kw_status.KW_INVALID_ARGUMENT, operation, false);
    e.message += `: unknown source ${JSON.stringify(source)} (sanctum, drf, unkey or better-auth)`;
    throw e;
  }
  return LEGACY_SCHEMES[source];
}

/**
 * The public id keyward gives the key with id `sourceId` in system `source` (Sanctum: its
 * numeric id; DRF: its prefix; Unkey, Better Auth: its key id). The same on every import.
 * @param {'sanctum'|'drf'|'unkey'|'better-auth'} source
 * @param {string} sourceId
 * @returns {string}
 */
function legacyKeyId(source, sourceId) {
  const op = 'legacyKeyId';
  const scheme = legacyScheme(source, op);
  const b = cbytes(text(sourceId, op, 'sourceId'));
  const out = Buffer.alloc(DEFINES.KW_KEY_ID_LEN + 1);
  const st = fn.kw_legacy_key_id(scheme, b, b.length, out);
  if (st !== 0) throw failure(st, op);
  return out.toString('latin1', 0, out.indexOf(0));
}

function parseJson(buf, length) {
  return JSON.parse(buf.toString('utf8', 0, length));
}

// --- verdicts ------------------------------------------------------------------------------

/** The `rateHeaders` of a key without a rate limit: one frozen empty object, not one per verdict. */
const NO_HEADERS = Object.freeze({});

/**
 * The answer of a verify. `ok` is true only for a valid key; otherwise `code` says why and
 * `httpStatus` what to answer (401 or 403).
 */
class Verdict {
  constructor(reason, code, httpStatus, message, keyFound, keyId, owner, env, createdAt, expiresAt, flags, info, rate = null) {
    /** @type {boolean} */
    this.ok = reason === 0;
    /** @type {string} */
    this.code = code;
    /** @type {number|null} */
    this.reason = reason;
    /** @type {number} */
    this.httpStatus = httpStatus;
    /** @type {string} */
    this.message = message;
    /** @type {boolean} */
    this.keyFound = keyFound;
    /** @type {string|null} */
    this.keyId = keyId;
    /** @type {string|null} */
    this.owner = owner;
    /** @type {string|null} */
    this.env = env;
    /** @type {number|null} */
    this.createdAt = createdAt;
    /** @type {number|null} */
    this.expiresAt = expiresAt;
    /** @type {boolean} */
    this.limited = (flags & 1) !== 0;
    /** @type {boolean} */
    this.revoked = (flags & 2) !== 0;
    /** @type {boolean} */
    this.rotated = (flags & 4) !== 0;
    /** @type {object|null} */
    this.info = info;
    /**
     * A rate-limited key's state (its own or its owner's limit, the tighter): `{scope, limit,
     * periodMs, burst, remaining, resetMs, retryAfterMs, headers}`, `headers` the response
     * fields (`RateLimit-Policy`, `RateLimit`, `Retry-After` on a 429) as the library formats
     * them; null for a key without a rate limit.
     * @type {object|null}
     */
    this.rate = rate;
  }

  /** For RATE_LIMITED: milliseconds until the next request would be accepted (else null). */
  get retryAfterMs() {
    return this.rate === null ? null : this.rate.retryAfterMs;
  }

  /** The rate-limit response header fields (name -> value); empty for other keys. */
  get rateHeaders() {
    return this.rate === null ? NO_HEADERS : this.rate.headers;
  }

  /** The JSON body of a refusal: `{ok: false, code, message}` (or `{ok: true, ...}`). */
  toResponse() {
    return { ok: this.ok, code: this.code, message: this.message };
  }
}

function cString(buf, start, end, encoding) {
  let z = buf.indexOf(0, start);
  if (z < 0 || z > end) z = end;
  return buf.toString(encoding, start, z);
}

// The identity of the last key verified (id, owner, env never change for a key id), so
// that verifying the same key again decodes no string: the id's bytes are compared as
// 32-bit words instead. (A bounded id -> identity map was tried as well: with keys that
// rarely repeat within a worker, the usual case of a busy service, its lookups, inserts and
// clears cost more than the two short strings they saved.)
const ID_WORDS = (V.env - V.keyId) >>> 2; // key_id[24]: 6 words
const lastId = new Uint32Array(ID_WORDS);
let lastKeyId = null;
let lastOwner = null;
let lastEnv = null;

function sameAsLast(w) {
  const base = V.keyId >>> 2;
  for (let i = 0; i < ID_WORDS; i++) if (w[base + i] !== lastId[i]) return false;
  return lastKeyId !== null;
}

/** Decodes key id, owner and env of the verdict in the fixed block into lastKeyId/... */
function decodeIdentity(w, b) {
  if (sameAsLast(w)) return;
  const env = b.latin1Slice(V.env, nul(b, V.env, V.owner));
  lastKeyId = b.latin1Slice(V.keyId, nul(b, V.keyId, V.env));
  lastOwner = b.utf8Slice(V.owner, nul(b, V.owner, V.end));
  lastEnv = env === '' ? null : env;
  const base = V.keyId >>> 2;
  for (let i = 0; i < ID_WORDS; i++) lastId[i] = w[base + i];
}

/** The index of the first NUL byte in [start, end), or end. */
function nul(b, start, end) {
  for (let i = start; i < end; i++) if (b[i] === 0) return i;
  return end;
}

/** Reads the verdict the last verify wrote into the fixed block. */
function readVerdict(withInfo) {
  const w = W;
  const reason = w[V_REASON];
  let keyId = null;
  let owner = null;
  let env = null;
  let createdAt = null;
  let expiresAt = null;
  const found = w[V_FOUND] !== 0;
  if (found) {
    decodeIdentity(w, FIXED.buf);
    keyId = lastKeyId;
    owner = lastOwner;
    env = lastEnv;
    createdAt = w[V_CREATED] + (w[V_CREATED + 1] | 0) * TWO_32;
    const x = w[V_EXPIRES] + (w[V_EXPIRES + 1] | 0) * TWO_32;
    expiresAt = x === 0 ? null : x;
  }
  let info = null;
  if (withInfo) {
    const n = FIXED.get64(F_LEN_A);
    if (n > 0) info = keyInfo(parseJson(INFO_BUF, n));
  }
  const r = reason < REASONS.length ? REASONS[reason] : reasonInfo(reason);
  const rate = w[V_RATE_SCOPE] === 0 ? null : readRate(reason);
  return new Verdict(reason, r.code, w[V_HTTP], r.message, found, keyId, owner, env, createdAt, expiresAt, w[V_FLAGS], info, rate);
}

/** The rate fields of the verdict in the fixed block, with the headers the library formats. */
function readRate(reason) {
  const g = (field) => FIXED.get64(F_VERDICT + off('kw_verdict', field));
  const headers = {};
  if (fn.kw_rate_headers(P_VERDICT, RATE_HEADERS_BUF, RATE_HEADERS_BUF.length, P_LEN_B) === 0) {
    const text = RATE_HEADERS_BUF.toString('latin1', 0, FIXED.get64(F_LEN_B));
    for (const line of text.split('\r\n')) {
      const at = line.indexOf(': ');
      if (at > 0) headers[line.slice(0, at)] = line.slice(at + 2);
    }
  }
  return Object.freeze({
    scope: RATE_SCOPES[W[V_RATE_SCOPE]] || null,
    limit: g('rate_limit'),
    periodMs: g('rate_period_ms'),
    burst: g('rate_burst'),
    remaining: g('rate_remaining'),
    resetMs: g('rate_reset_ms'),
    retryAfterMs: reason === ENUMS.kw_reason.KW_REASON_RATE_LIMITED ? g('retry_after_ms') : null,
    headers: Object.freeze(headers),
  });
}

/** The statuses of kw_verify_headers that describe the request's credential (HTTP 401). */
/** Whether a failed header call's status is a header problem (the client's: HTTP 401). */
function isCredentialStatus(status) {
  return fn.kw_status_family(status) === ENUMS.kw_family.KW_FAMILY_CREDENTIAL;
}

function credentialVerdict(status) {
  return new Verdict(null, statusName(status), 401, statusMessage(status), false, null, null, null, null, NULL, 0, NULL);
}

// --- prepared scopes -------------------------------------------------------------------------

const freeBlock = new FinalizationRegistry((block) => block.free());

/**
 * A scope list encoded once into native memory, for routes that verify against the same
 * scopes on every request (the middleware uses one). Immutable.
 */
class Scopes {
  /** @param {readonly string[]} scopes */
  constructor(scopes) {
    const list = Object.freeze(scopeList(scopes, 'Scopes').slice());
    if (list.length > DEFINES.KW_MAX_SCOPES) throw tooManyScopes('Scopes');
    let bytes = 0;
    for (const s of list) bytes += Buffer.byteLength(s, 'utf8');
    const block = new Block(list.length * KW_STR + bytes + 8);
    let at = list.length * KW_STR;
    list.forEach((s, i) => {
      const n = block.buf.write(s, at, 'utf8');
      block.put64(i * KW_STR, block.addr + at);
      block.put64(i * KW_STR + 8, n);
      at += n;
    });
    /** @type {readonly string[]} */
    this.list = list;
    /** @type {number} */
    this.length = list.length;
    /** @internal */
    this.ptr = list.length ? block.ptr : NULL;
    /** @internal */
    this.block = block;
    freeBlock.register(this, block);
    Object.freeze(this);
  }
}

const SCOPE_BYTES = new Block(4096); // the text of one call's scopes
let scopeCount = 0;

/**
 * The `scopes` argument of a verify: NULL, a prepared Scopes' array, or the array written
 * into the fixed block (its text in SCOPE_BYTES). Sets `scopeCount`.
 */
function scopeArg(scopes, operation) {
  scopeCount = 0;
  if (scopes === undefined) return NULL;
  if (scopes instanceof Scopes) {
    scopeCount = scopes.length;
    return scopes.ptr;
  }
  scopeList(scopes, operation);
  const n = scopes.length;
  if (n > DEFINES.KW_MAX_SCOPES) throw tooManyScopes(operation);
  if (n === 0) return NULL;
  let bound = 0;
  for (let i = 0; i < n; i++) bound += scopes[i].length * 3;
  SCOPE_BYTES.reserve(bound);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const len = SCOPE_BYTES.buf.utf8Write(scopes[i], at);
    FIXED.put64(F_SCOPES + i * KW_STR, SCOPE_BYTES.addr + at);
    FIXED.put64(F_SCOPES + i * KW_STR + 8, len);
    at += len;
  }
  scopeCount = n;
  return P_SCOPES;
}

// --- headers ---------------------------------------------------------------------------------

const PENDING_NAMES = [];
const PENDING_VALUES = [];
let pending = 0;
let pendingBytes = 0;

/**
 * Whether a header name may be a credential header. The ABI decides (names are trimmed and
 * compared without case there); this only skips the headers it would ignore anyway, so
 * that a request's twenty other headers are not copied on every verify.
 */
function maybeCredential(name) {
  switch (name) {
    case 'x-api-key':
    case 'authorization':
    case 'x-api-token-id':
    case 'x-api-token-secret-key':
      return true;
    default: {
      // Trimmed, a credential name starts with an x or an a: any other letter, digit or
      // dash first (most header names) rules it out at once.
      const c = name.charCodeAt(0);
      const lower = c | 0x20;
      if (lower !== 0x78 && lower !== 0x61 && ((lower >= 0x61 && lower <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d)) return false;
      if (PLAIN_NAME.test(name)) return false;
      name = name.toLowerCase();
      return name.includes('x-api-key') || name.includes('authorization') || name.includes('x-api-token-');
    }
  }
}
const PLAIN_NAME = /^[a-z0-9-]*$/;

/** The four credential header names, lower-case as node:http gives them. */
const CREDENTIAL_HEADER_NAMES = Object.freeze(['x-api-key', 'authorization', 'x-api-token-id', 'x-api-token-secret-key']);
// Those names written once: a header with one of them points at this copy instead of having
// its name written per call.
const CANONICAL = new Map();
const NAMES = new Block(64);
{
  let at = 0;
  for (const name of CREDENTIAL_HEADER_NAMES) {
    CANONICAL.set(name, NAMES.addr + at);
    at += NAMES.buf.latin1Write(name, at);
  }
}
const API_KEY_NAME = CANONICAL.get('x-api-key');
const AUTHORIZATION_NAME = CANONICAL.get('authorization');

function addHeader(name, value, operation) {
  if (typeof name !== 'string') {
    if (!isBytes(name)) throw typeError(operation, 'a header name', 'a string', name);
    name = Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
  }
  if (value === undefined || value === null || !maybeCredential(name)) return;
  if (Array.isArray(value)) {
    for (const v of value) addHeader(name, v, operation);
    return;
  }
  if (typeof value === 'number') value = String(value);
  else if (typeof value !== 'string' && !isBytes(value)) throw typeError(operation, `header ${JSON.stringify(name)}`, 'a string, an array of strings or a Buffer', value);
  PENDING_NAMES[pending] = name;
  PENDING_VALUES[pending] = value;
  pending++;
  pendingBytes += textBound(name) + textBound(value);
}

/**
 * Collects the credential headers of `headers` (an IncomingHttpHeaders-like object, an array
 * of [name, value] pairs, a flat rawHeaders array, a Map or a fetch Headers) and writes them
 * as a kw_header array. Returns the count.
 */
function encodeHeaders(headers, operation) {
  pending = 0;
  pendingBytes = 0;
  try {
    if (headers === undefined || headers === null) {
      // no headers: the ABI answers CREDENTIAL_MISSING
    } else if (Array.isArray(headers)) {
      if (headers.length > 0 && !Array.isArray(headers[0])) {
        if (headers.length % 2 !== 0) throw typeError(operation, 'a flat header list', 'an even-length array [name, value, ...]', headers);
        for (let i = 0; i < headers.length; i += 2) addHeader(headers[i], headers[i + 1], operation);
      } else {
        for (const pair of headers) {
          if (!Array.isArray(pair) || pair.length !== 2) throw typeError(operation, 'each header', 'a [name, value] pair', pair);
          addHeader(pair[0], pair[1], operation);
        }
      }
    } else if (typeof headers === 'object') {
      if (typeof headers.forEach === 'function' && typeof headers.get === 'function') {
        headers.forEach((value, name) => addHeader(name, value, operation));
      } else {
        for (const name of Object.keys(headers)) addHeader(name, headers[name], operation);
      }
    } else {
      throw typeError(operation, 'headers', 'an object, an array or a Map', headers);
    }
    return encodePending();
  } finally {
    clearPending();
  }
}

/**
 * Collects the credential headers of a node:http request's header object (`req.headers`:
 * node lower-cases the names): four lookups, no walk over every header. Then as
 * `encodeHeaders()`.
 */
function encodeRequestHeaders(headers) {
  const apiKey = headers['x-api-key'];
  const authorization = headers.authorization;
  // The usual request: one credential header with one string value, written at once.
  if ((apiKey === undefined) !== (authorization === undefined) && headers['x-api-token-id'] === undefined
      && headers['x-api-token-secret-key'] === undefined) {
    const value = apiKey === undefined ? authorization : apiKey;
    if (typeof value === 'string') return encodeOne(apiKey === undefined ? 'authorization' : 'x-api-key', value);
  }
  pending = 0;
  pendingBytes = 0;
  try {
    let v = apiKey;
    if (v !== undefined) addHeader('x-api-key', v, 'verifyHeaders');
    v = authorization;
    if (v !== undefined) addHeader('authorization', v, 'verifyHeaders');
    v = headers['x-api-token-id'];
    if (v !== undefined) addHeader('x-api-token-id', v, 'verifyHeaders');
    v = headers['x-api-token-secret-key'];
    if (v !== undefined) addHeader('x-api-token-secret-key', v, 'verifyHeaders');
    return encodePending();
  } finally {
    clearPending();
  }
}

/**
 * Writes one credential header (`name` one of the four, lower-case; `value` a string) as
 * the kw_header array; returns 1.
 */
function encodeOne(name, value) {
  BYTES.reserve(value.length * 3);
  const len = writeText(BYTES, 0, value, true);
  HEADERS.put64(0, CANONICAL.get(name));
  HEADERS.put64(8, name.length);
  HEADERS.put64(16, BYTES.addr);
  HEADERS.put64(24, len);
  pendingBytes = len;
  return 1;
}

/** Writes the collected headers (PENDING_*) as the kw_header array; returns their count. */
function encodePending() {
  HEADERS.reserve(pending * KW_HEADER);
  BYTES.reserve(pendingBytes);
  let at = 0;
  for (let i = 0; i < pending; i++) {
    const name = PENDING_NAMES[i];
    const value = PENDING_VALUES[i];
    const canonical = CANONICAL.get(name);
    if (canonical !== undefined) {
      HEADERS.put64(i * KW_HEADER, canonical);
      HEADERS.put64(i * KW_HEADER + 8, name.length);
    } else {
      const nameLen = writeText(BYTES, at, name, true);
      HEADERS.put64(i * KW_HEADER, BYTES.addr + at);
      HEADERS.put64(i * KW_HEADER + 8, nameLen);
      at += nameLen;
    }
    const valueLen = writeText(BYTES, at, value, true);
    HEADERS.put64(i * KW_HEADER + 16, BYTES.addr + at);
    HEADERS.put64(i * KW_HEADER + 24, valueLen);
    at += valueLen;
  }
  pendingBytes = at;
  return pending;
}

function clearPending() {
  for (let i = 0; i < pending; i++) {
    PENDING_NAMES[i] = undefined;
    PENDING_VALUES[i] = undefined;
  }
}

// --- the store -------------------------------------------------------------------------------

// A store that is garbage-collected without close() releases its handle (flushing its
// usage); at a normal process exit every store still open is closed, so no count is lost
// (a killed process loses at most one flush interval, as documented).
const closeForgotten = new FinalizationRegistry((handle) => fn.kw_close(handle));
const openStores = new Set();
process.on('exit', () => {
  for (const ref of openStores) {
    const store = ref.deref();
    if (store && !store._closed) {
      try {
        store.close();
      } catch {
        // exiting: nothing more to do
      }
    }
  }
  fn.kw_release_persistent(); // stores kept open by `persistent: true` flush and close too
});

const OPEN_OPTIONS = ['pepper', 'pepperFile', 'prefix', 'concurrency', 'persistent', 'maxActiveKeysPerOwner', 'keepLastKey', 'maxLifetimeMs', 'flushIntervalMs', 'indexCapacity', 'upstream'];
const VERIFY_OPTIONS = ['scopes', 'cost', 'at', 'info', 'dryRun'];
const CREATE_FIELDS = ['owner', 'name', 'scopes', 'env', 'metadata', 'expiresAt', 'credits', 'rateLimit'];

/**
 * The kw_rate_limit of a `{rate, periodMs, burst}` option (null stays null): a rate limit of
 * `rate` requests per `periodMs` (default 1000), bursts of `burst` (default `rate`).
 */
function rateLimitOf(value, op) {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(op, 'rateLimit', 'an object {rate, periodMs, burst} or null', value);
  options(value, `${op} rateLimit`, ['rate', 'periodMs', 'burst']);
  const n = (v, name, dflt) => {
    if (v === undefined) return dflt;
    if (!Number.isSafeInteger(v) || v < 0) throw typeError(op, `rateLimit.${name}`, 'a non-negative integer', v);
    return v;
  };
  return { rate: n(value.rate, 'rate', 0), period_ms: n(value.periodMs, 'periodMs', 1000), burst: n(value.burst, 'burst', 0) };
}

/** The kw_new_key of a create() spec (checked). */
function newKeyStruct(spec, op) {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw typeError(op, 'the new key', 'an object', spec);
  options(spec, op, CREATE_FIELDS);
  const scopes = spec.scopes === undefined ? [] : scopeList(spec.scopes, op);
  const metadata = metadataOf(spec.metadata, op);
  return {
    owner: kwStr(spec.owner, op, 'owner', true),
    name: kwStr(spec.name, op, 'name', false),
    scopes: scopes.length ? scopes.map((s) => kwStr(s, op, 'scope', true)) : null,
    scopes_len: scopes.length,
    env: kwStr(spec.env, op, 'env', false),
    metadata: metadata && metadata.byteLength ? metadata : null,
    metadata_len: metadata ? metadata.byteLength : 0,
    expires_at_ms: spec.expiresAt === undefined || spec.expiresAt === null ? 0 : millis(spec.expiresAt, op, 'expiresAt'),
    credits: spec.credits === undefined || spec.credits === null ? null : creditsOf(spec.credits, op),
  };
}
const UPDATE_FIELDS = ['name', 'scopes', 'metadata', 'expiresAt', 'credits', 'rateLimit'];
const STATES = { all: 0, active: 1, revoked: 2, expired: 3 };

/**
 * An open keyward store (one handle of the C ABI). Open one per process and reuse it:
 * opening a path this process has open again shares the same store and warm index.
 * Every method is synchronous; verify never touches the disk.
 */
class Store {
  /**
   * Opens (creating if needed) the store at `path`.
   * @param {string|Buffer} path database file (its directory must exist)
   * @param {import('../index').OpenOptions} [opts]
   */
  constructor(path, opts) {
    const op = 'open';
    text(path, op, 'path');
    const o = options(opts, op, OPEN_OPTIONS);
    const raw = {
      path: kwStr(path, op, 'path', true),
      pepper: { ptr: null, len: 0 },
      pepper_file: kwStr(o.pepperFile, op, 'pepperFile', false),
      prefix: kwStr(o.prefix, op, 'prefix', false),
      upstream: kwStr(o.upstream, op, 'upstream', false),
    };
    if (o.pepper !== undefined && o.pepper !== null) {
      if (typeof o.pepper === 'string') raw.pepper = { ptr: Buffer.from(o.pepper, 'utf8'), len: Buffer.byteLength(o.pepper) };
      else if (isBytes(o.pepper)) raw.pepper = { ptr: o.pepper.byteLength ? o.pepper : '', len: o.pepper.byteLength };
      else throw typeError(op, 'pepper', 'a Buffer of 32 bytes or a string of 64 hexadecimal characters', o.pepper);
    }
    let concurrency = 0;
    if (o.concurrency !== undefined) {
      if (o.concurrency === 'multi-process') concurrency = 0;
      else if (o.concurrency === 'single-process') concurrency = 1;
      else throw typeError(op, 'concurrency', '"multi-process" or "single-process"', o.concurrency);
    }
    let flush = 0;
    if (o.flushIntervalMs === 'manual') flush = DEFINES.KW_FLUSH_MANUAL;
    else if (o.flushIntervalMs !== undefined) flush = safeInt(o.flushIntervalMs, op, 'flushIntervalMs');
    const struct = {
      path: raw.path.ptr,
      path_len: raw.path.len,
      pepper: raw.pepper.ptr,
      pepper_len: raw.pepper.len,
      pepper_file: raw.pepper_file.ptr,
      pepper_file_len: raw.pepper_file.len,
      prefix: raw.prefix.ptr,
      prefix_len: raw.prefix.len,
      concurrency,
      // KW_OPEN_UPSTREAM (only with an upstream): the library reads the upstream fields.
      flags:
        (o.persistent ? ENUMS.kw_open_flags.KW_OPEN_PERSISTENT : 0) |
        (raw.upstream.ptr === null ? 0 : ENUMS.kw_open_flags.KW_OPEN_UPSTREAM),
      max_active_keys_per_owner: o.maxActiveKeysPerOwner === undefined ? 0 : u32(o.maxActiveKeysPerOwner, op, 'maxActiveKeysPerOwner'),
      keep_last_key: o.keepLastKey ? 1 : 0,
      max_lifetime_ms: o.maxLifetimeMs === undefined ? 0 : safeInt(o.maxLifetimeMs, op, 'maxLifetimeMs'),
      flush_interval_ms: flush,
      index_capacity: o.indexCapacity === undefined ? 0 : safeInt(o.indexCapacity, op, 'indexCapacity'),
      upstream: raw.upstream.ptr,
      upstream_len: raw.upstream.len,
    };
    const st = fn.kw_open(struct, P_STORE);
    if (st !== 0) throw failure(st, op);
    /** @private */
    this._h = FIXED.get64(F_STORE);
    /** @private */
    this._closed = false;
    /** The path the store was opened with. @type {string} */
    this.path = typeof path === 'string' ? path : Buffer.from(path).toString('utf8');
    /** @private */
    this._ref = new WeakRef(this);
    openStores.add(this._ref);
    closeForgotten.register(this, this._h, this);
  }

  /**
   * Opens a store (same as `new Store(path, opts)`).
   * @param {string|Buffer} path
   * @param {import('../index').OpenOptions} [opts]
   * @returns {Store}
   */
  static open(path, opts) {
    return new Store(path, opts);
  }

  /** The opaque C handle (a number below 2^53). */
  get handle() {
    return this._h;
  }

  /** Whether close() was called. */
  get closed() {
    return this._closed;
  }

  /**
   * Flushes pending usage and releases this handle (the store closes with its last handle).
   * Closing twice does nothing; any other call on a closed store throws StoreClosedError.
   */
  close() {
    if (this._closed) return;
    this._closed = true;
    openStores.delete(this._ref);
    closeForgotten.unregister(this);
    const st = fn.kw_close(this._h);
    if (st !== 0) throw failure(st, 'close');
  }

  /** Writes pending usage now; returns the number of keys written. */
  flush() {
    const st = fn.kw_flush(this._h, P_LEN_A);
    if (st !== 0) throw failure(st, 'flush');
    return FIXED.get64(F_LEN_A);
  }

  /** This process's counters for the store. */
  stats() {
    const st = fn.kw_stats(this._h, P_STRUCT);
    if (st !== 0) throw failure(st, 'stats');
    const o = (f) => F_STRUCT + off('kw_store_stats', f);
    const stats = {
      commits: FIXED.get64(o('commits')),
      refreshes: FIXED.get64(o('refreshes')),
      indexedKeys: FIXED.get64(o('indexed_keys')),
      dirtyKeys: FIXED.get64(o('dirty_keys')),
      indexComplete: FIXED.u32[o('index_complete') >>> 2] !== 0,
    };
    const tt = fn.kw_table_stats(this._h, P_STRUCT);
    if (tt !== 0) throw failure(tt, 'stats');
    const t = (f) => F_STRUCT + off('kw_store_table_stats', f);
    stats.table = {
      generation: FIXED.get64(t('generation')),
      slots: FIXED.get64(t('slots')),
      keys: FIXED.get64(t('keys')),
      lookupBytes: FIXED.get64(t('lookup_bytes')),
      fileBytes: FIXED.get64(t('file_bytes')),
      cachedRecords: FIXED.get64(t('cached_records')),
      rebuilds: FIXED.get64(t('rebuilds')),
      slotsRepaired: FIXED.get64(t('slots_repaired')),
      mapped: FIXED.u32[t('mapped') >>> 2] !== 0,
    };
    const rt = fn.kw_replica_stats(this._h, P_STRUCT);
    if (rt !== 0) throw failure(rt, 'stats');
    const r = (f) => F_STRUCT + off('kw_store_replica_stats', f);
    stats.replica = null;
    if (FIXED.u32[r('is_replica') >>> 2] !== 0) {
      const staleness = FIXED.getI64(r('staleness_ms'));
      stats.replica = {
        cursor: FIXED.get64(r('cursor')),
        connected: FIXED.u32[r('connected') >>> 2] !== 0,
        syncedAtMs: FIXED.getI64(r('synced_at_ms')),
        stalenessMs: staleness < 0 ? null : staleness,
        reportedAtMs: FIXED.getI64(r('reported_at_ms')),
      };
    }
    return stats;
  }

  /**
   * Whether this store and `other` are handles onto the same open store.
   * @param {Store} other
   */
  sameStore(other) {
    if (!(other instanceof Store)) throw typeError('sameStore', 'other', 'a Store', other);
    const st = fn.kw_same_store(this._h, other._h, P_U32);
    if (st !== 0) throw failure(st, 'sameStore');
    return FIXED.u32[F_U32 >>> 2] === 1;
  }

  // --- verify (the hot path) ---------------------------------------------------------------

  /**
   * Verifies a full key. A refused key is not an error: the verdict says why.
   * @param {string|Buffer} key the key as sent
   * @param {import('../index').VerifyOptions} [opts]
   * @returns {Verdict}
   */
  verify(key, opts) {
    if (opts === undefined && typeof key === 'string' && key.length <= INLINE) {
      // The hot path: no options, through the six-argument kw_verify_key (koffi charges per
      // argument). Passing the string's length is exact for ASCII, i.e. for every key that
      // can be valid; for other text it cuts the UTF-8 inside or after a non-ASCII byte,
      // which kw_verify_key answers MALFORMED, as it would the whole text.
      const st = fn.kw_verify_key_ex(this._h, key, key.length, NULL, 0, RATE, P_VERDICT);
      if (st === 0) return readVerdict(false);
      throw failure(st, 'verify');
    }
    let scopes;
    let cost = 0;
    let atMs = 0;
    let info = false;
    let flags = 0;
    if (opts !== undefined) ({ scopes, cost, atMs, info, flags } = verifyOptions(opts, 'verify'));
    // A string key goes to koffi as it is: koffi writes its UTF-8 into its own call memory,
    // which costs less than writing it into a Buffer here. Its length is passed as the
    // string's length, exact for ASCII, i.e. for every key that can be valid; for other text
    // it is a prefix of the UTF-8 that holds a non-ASCII byte, which the ABI answers
    // MALFORMED (as it would the whole text: key bytes that are not UTF-8 are MALFORMED too).
    // This saves measuring every key's UTF-8 length.
    let keyArg = key;
    let keyLen;
    if (typeof key === 'string') {
      if (key.length <= INLINE) keyLen = key.length;
      else keyLen = (keyArg = Buffer.from(key, 'utf8')).byteLength;
    } else if (isBytes(key)) {
      if ((keyLen = key.byteLength) === 0) keyArg = ''; // koffi passes an empty Buffer as NULL
    } else throw typeError('verify', 'key', 'a string or a Buffer', key);
    const pScopes = scopeArg(scopes, 'verify');
    const nScopes = scopeCount;
    if (!info && cost === 0 && atMs === 0) {
      // Scopes (or a dry run) only: the seven-argument entry point (MALFORMED for any non-UTF-8 text).
      const st = fn.kw_verify_key_ex(this._h, keyArg, keyLen, pScopes, nScopes, flags | RATE, P_VERDICT);
      if (st !== 0) throw failure(st, 'verify');
      return readVerdict(false);
    }
    const st = info
      ? fn.kw_verify_ex(this._h, keyArg, keyLen, pScopes, nScopes, cost, atMs, flags | RATE, P_VERDICT, INFO_BUF, INFO_BUF.length, P_LEN_A)
      : fn.kw_verify_ex(this._h, keyArg, keyLen, pScopes, nScopes, cost, atMs, flags | RATE, P_VERDICT, NULL, 0, NULL);
    if (st !== 0) throw failure(st, 'verify');
    return readVerdict(info);
  }

  /**
   * Verifies a (public id, secret) pair, as sent in X-Api-Token-Id / X-Api-Token-Secret-Key.
   * @param {string|Buffer} id
   * @param {string|Buffer} secret
   * @param {import('../index').VerifyOptions} [opts]
   * @returns {Verdict}
   */
  verifyPair(id, secret, opts) {
    let scopes;
    let cost = 0;
    let atMs = 0;
    let info = false;
    let flags = 0;
    if (opts !== undefined) ({ scopes, cost, atMs, info, flags } = verifyOptions(opts, 'verifyPair'));
    const idLen = argLength(id, 'verifyPair', 'id');
    const secretLen = argLength(secret, 'verifyPair', 'secret');
    const pScopes = scopeArg(scopes, 'verifyPair');
    const nScopes = scopeCount;
    const idArg = idLen === 0 ? '' : id;
    const secretArg = secretLen === 0 ? '' : secret;
    const st = info
      ? fn.kw_verify_pair_ex(this._h, idArg, idLen, secretArg, secretLen, pScopes, nScopes, cost, atMs, flags | RATE, P_VERDICT, INFO_BUF, INFO_BUF.length, P_LEN_A)
      : fn.kw_verify_pair_ex(this._h, idArg, idLen, secretArg, secretLen, pScopes, nScopes, cost, atMs, flags | RATE, P_VERDICT, NULL, 0, NULL);
    if (st !== 0) throw failure(st, 'verifyPair');
    return readVerdict(info);
  }

  /**
   * Finds the credential in request headers (x-api-key, Authorization: Bearer / Basic, or
   * the X-Api-Token-Id + X-Api-Token-Secret-Key pair) and verifies it. A request without a
   * usable credential is a refused verdict too (`reason` null, `code` e.g.
   * `"CREDENTIAL_MISSING"`, `httpStatus` 401).
   * @param {import('../index').HeadersInput} headers e.g. `req.headers`
   * @param {import('../index').VerifyOptions} [opts]
   * @returns {Verdict}
   */
  verifyHeaders(headers, opts) {
    let scopes;
    let cost = 0;
    let atMs = 0;
    let info = false;
    let flags = 0;
    if (opts !== undefined) ({ scopes, cost, atMs, info, flags } = verifyOptions(opts, 'verifyHeaders'));
    const pScopes = scopeArg(scopes, 'verifyHeaders');
    const nScopes = scopeCount;
    const n = encodeHeaders(headers, 'verifyHeaders');
    const used = pendingBytes;
    const pHeaders = n ? HEADERS.ptr : NULL;
    const st = info
      ? fn.kw_verify_headers_ex(this._h, pHeaders, n, pScopes, nScopes, cost, atMs, flags | RATE, P_VERDICT, INFO_BUF, INFO_BUF.length, P_LEN_A)
      : fn.kw_verify_headers_ex(this._h, pHeaders, n, pScopes, nScopes, cost, atMs, flags | RATE, P_VERDICT, NULL, 0, NULL);
    BYTES.buf.fill(0, 0, used);
    if (st === 0) return readVerdict(info);
    if (isCredentialStatus(st)) return credentialVerdict(st);
    throw failure(st, 'verifyHeaders');
  }

  /**
   * The middlewares' hot path: `verifyHeaders()` for a node:http request's lower-cased
   * header object (`req.headers`), scopes already a `Scopes` (or undefined) and `cost` a
   * checked u32, judged now, without the key's record.
   * @internal
   * @param {Record<string, string | string[] | undefined>} headers
   * @param {Scopes | undefined} scopes
   * @param {number} cost
   * @returns {Verdict}
   */
  _verifyRequest(headers, scopes, cost) {
    return this._verifyEncoded(encodeRequestHeaders(headers), scopes, cost);
  }

  /**
   * `_verifyRequest()` for a request whose only credential header is `name` (lower-case,
   * one of the four) with the string `value`, or that has none (`name` undefined): what
   * the middleware finds in node:http's `rawHeaders` without building `req.headers`.
   * @internal
   * @param {string | undefined} name
   * @param {string | undefined} value
   * @param {Scopes | undefined} scopes
   * @param {number} cost
   * @returns {Verdict}
   */
  _verifyCredentialHeader(name, value, scopes, cost) {
    if (name === undefined) pendingBytes = 0;
    return this._verifyEncoded(name === undefined ? 0 : encodeOne(name, value), scopes, cost);
  }

  /** Verifies the `n` headers the encoders wrote (the request hot path's common end). */
  _verifyEncoded(n, scopes, cost) {
    const used = pendingBytes;
    const st = fn.kw_verify_headers_ex(this._h, n ? HEADERS.ptr : NULL, n, scopes === undefined ? NULL : scopes.ptr,
      scopes === undefined ? 0 : scopes.length, cost, 0, RATE, P_VERDICT, NULL, 0, NULL);
    BYTES.buf.fill(0, 0, used);
    if (st === 0) return readVerdict(false);
    if (isCredentialStatus(st)) return credentialVerdict(st);
    throw failure(st, 'verifyHeaders');
  }

  // --- management ----------------------------------------------------------------------------

  /**
   * Creates a key. The full key is returned once, here, and exists nowhere else: hand it to
   * the customer and do not log it.
   * @param {import('../index').NewKey} spec
   * @returns {{key: string, info: import('../index').KeyInfo}}
   */
  create(spec) {
    const op = 'create';
    const struct = newKeyStruct(spec, op);
    const limit = spec.rateLimit === undefined ? null : rateLimitOf(spec.rateLimit, op);
    const st = fn.kw_create(this._h, struct, P_KEY, DEFINES.KW_MAX_KEY_LEN, P_LEN_A, INFO_BUF, INFO_BUF.length, P_LEN_B);
    const created = this._newKey(st, op);
    if (limit === null) return created;
    // kw_new_key keeps its layout: the key's own rate limit is set right after; if that
    // fails, the new key is deleted and the error thrown.
    const b = cbytes(created.info.id);
    const set = fn.kw_set_rate_limit(this._h, b, b.length, limit, INFO_BUF, INFO_BUF.length, P_LEN_A);
    if (set !== 0) {
      const error = failure(set, op);
      fn.kw_delete(this._h, b, b.length);
      throw error;
    }
    return { key: created.key, info: keyInfo(parseJson(INFO_BUF, FIXED.get64(F_LEN_A))) };
  }

  /**
   * Sets (or with null removes) the rate limit `owner` shares among all of its keys
   * (`{rate, periodMs, burst}`); a key with its own limit must pass both. Every process of
   * the host applies it from its next verify.
   * @param {string} owner
   * @param {{rate: number, periodMs?: number, burst?: number} | null} limit
   */
  setOwnerRateLimit(owner, limit) {
    const op = 'setOwnerRateLimit';
    const b = cbytes(text(owner, op, 'owner'));
    const st = fn.kw_set_owner_rate_limit(this._h, b, b.length, rateLimitOf(limit, op));
    if (st !== 0) throw failure(st, op);
  }

  /**
   * The rate limit `owner` shares among its keys, or null.
   * @param {string} owner
   * @returns {{rate: number, periodMs: number, burst: number} | null}
   */
  ownerRateLimit(owner) {
    const op = 'ownerRateLimit';
    const b = cbytes(text(owner, op, 'owner'));
    const st = fn.kw_owner_rate_limit(this._h, b, b.length, P_STRUCT, P_U32);
    if (st !== 0) throw failure(st, op);
    if (W[F_U32 >>> 2] === 0) return null;
    const g = (field) => FIXED.get64(F_STRUCT + off('kw_rate_limit', field));
    return { rate: g('rate'), periodMs: g('period_ms'), burst: g('burst') };
  }

  /**
   * Creates many keys in one durable transaction: all of them, or none. Each spec is what
   * `create()` takes. Returns `[{key, id}, ...]` in the order of `specs` (the full keys,
   * this once); much faster than one `create()` per key. At most `KW_MAX_CREATE_MANY`
   * (100,000) specs. A refused spec throws the error `create()` would, naming its index
   * (`"new key 3 of the batch (0-based) ..."`), and nothing is created.
   * @param {import('../index').NewKey[]} specs
   * @returns {{key: string, id: string}[]}
   */
  createMany(specs) {
    const op = 'createMany';
    if (!Array.isArray(specs)) throw typeError(op, 'specs', 'an array', specs);
    const count = specs.length;
    if (count === 0) throw failure(ENUMS.kw_status.KW_INVALID_ARGUMENT, op, false);
    const structs = specs.map((spec, i) => newKeyStruct(spec, `${op} (spec ${i})`));
    const size = koffi.sizeof(S.kw_created_key);
    const out = Buffer.alloc(count * size);
    try {
      const st = fn.kw_create_many(this._h, structs, count, out, count, P_LEN_A);
      if (st !== 0) throw failure(st, op);
      const keyAt = off('kw_created_key', 'key');
      const lenAt = off('kw_created_key', 'key_len');
      const idAt = off('kw_created_key', 'id');
      const made = [];
      for (let i = 0; i < count; i++) {
        const base = i * size;
        const keyLen = Number(out.readBigUInt64LE(base + lenAt));
        const idEnd = out.indexOf(0, base + idAt);
        made.push({
          key: out.toString('latin1', base + keyAt, base + keyAt + keyLen),
          id: out.toString('latin1', base + idAt, idEnd),
        });
      }
      return made;
    } finally {
      out.fill(0);
    }
  }

  /**
   * Imports the keys another system issued, from its export (CSV with a header row, or JSON
   * lines; the columns are in README.md, "Migrating keys from another system"), so they keep
   * working as they are; each is upgraded to keyward's own digest on its first successful
   * verify. All or nothing: a row keyward cannot read throws InvalidArgumentError
   * (`LEGACY_IMPORT_INVALID`, its message names the line).
   * @param {'sanctum'|'drf'|'unkey'|'better-auth'} source
   * @param {string|Buffer} data the export
   * @param {import('../index').LegacyImportOptions} [opts]
   * @returns {import('../index').LegacyImportReport}
   */
  importLegacy(source, data, opts) {
    const op = 'importLegacy';
    const scheme = legacyScheme(source, op);
    if (typeof data !== 'string' && !isBytes(data)) throw typeError(op, 'data', 'a string or Buffer', data);
    const bytes = cbytes(data);
    const o = options(opts, op, ['dryRun', 'sanctumExpirationMinutes', 'allScopes', 'defaultOwner']);
    const scopes = o.allScopes === undefined || o.allScopes === null ? null : scopeList(o.allScopes, op);
    if (scopes && scopes.length > DEFINES.KW_MAX_SCOPES) throw tooManyScopes(op);
    const expiration = o.sanctumExpirationMinutes;
    const raw = {
      dry_run: o.dryRun ? 1 : 0,
      reserved: 0,
      sanctum_expiration_minutes:
        expiration === undefined || expiration === null ? 0 : safeInt(expiration, op, 'sanctumExpirationMinutes'),
      // A present but empty list still needs a non-NULL pointer.
      all_scopes: scopes ? (scopes.length ? scopes : ['']).map((s) => kwStr(s, op, 'scope', true)) : null,
      all_scopes_len: scopes ? scopes.length : 0,
      default_owner: kwStr(o.defaultOwner, op, 'defaultOwner', false),
    };
    const out = Buffer.alloc(S.kw_legacy_import_report.size);
    const st = fn.kw_import_legacy(this._h, scheme, bytes, bytes.length, raw, out);
    if (st !== 0) throw failure(st, op);
    const u64 = (field) => Number(out.readBigUInt64LE(off('kw_legacy_import_report', field)));
    return {
      scheme: source,
      dryRun: out.readUInt32LE(off('kw_legacy_import_report', 'dry_run')) === 1,
      rows: u64('rows'),
      imported: u64('imported'),
      alreadyPresent: u64('already_present'),
      deleted: u64('deleted'),
      revoked: u64('revoked'),
      expired: u64('expired'),
    };
  }

  /** Reads the new key and record of kw_create / kw_rotate, then wipes the key buffer. */
  _newKey(st, op) {
    if (st !== 0) throw failure(st, op);
    const keyLen = FIXED.get64(F_LEN_A);
    const key = FIXED.buf.toString('latin1', F_KEY, F_KEY + keyLen);
    FIXED.wipe(F_KEY, DEFINES.KW_MAX_KEY_LEN);
    return { key, info: keyInfo(parseJson(INFO_BUF, FIXED.get64(F_LEN_B))) };
  }

  /**
   * A key's public record. Throws NotFoundError for an unknown id.
   * @param {string} id public key id
   * @returns {import('../index').KeyInfo}
   */
  get(id) {
    const b = cbytes(text(id, 'get', 'id'));
    return keyInfo(this._json('get', (buf, cap) => fn.kw_get(this._h, b, b.length, buf, cap, P_LEN_A)));
  }

  /**
   * One page of an owner's keys in creation order.
   * @param {string} owner
   * @param {import('../index').ListOptions} [opts]
   * @returns {{keys: import('../index').KeyInfo[], next: number|null}}
   */
  list(owner, opts) {
    const op = 'list';
    const b = cbytes(text(owner, op, 'owner'));
    const o = options(opts, op, ['after', 'limit', 'state']);
    const after = o.after === undefined || o.after === null ? 0 : safeInt(o.after, op, 'after');
    const limit = o.limit === undefined ? 0 : u32(o.limit, op, 'limit');
    const state = o.state === undefined ? 'all' : o.state;
    if (!(state in STATES)) throw typeError(op, 'state', '"all", "active", "revoked" or "expired"', state);
    const page = this._json(op, (buf, cap) => fn.kw_list(this._h, b, b.length, after, limit, STATES[state], buf, cap, P_LEN_A));
    return { keys: page.keys.map(keyInfo), next: page.next };
  }

  /**
   * Every key of an owner, page after page.
   * @param {string} owner
   * @param {{state?: 'all'|'active'|'revoked'|'expired', pageSize?: number}} [opts]
   * @returns {Generator<import('../index').KeyInfo>}
   */
  *listAll(owner, opts) {
    const o = options(opts, 'listAll', ['state', 'pageSize']);
    let after = 0;
    for (;;) {
      const page = this.list(owner, { after, limit: o.pageSize === undefined ? 0 : o.pageSize, state: o.state });
      yield* page.keys;
      if (page.next === null || page.next === undefined) return;
      after = page.next;
    }
  }

  /**
   * A second handle onto the same store whose changes are stamped with `actor` in the audit
   * log (the user, service or request the application acts for). Close it like any store;
   * an empty actor means none.
   * @param {string} actor
   * @returns {Store}
   */
  withActor(actor) {
    const a = cbytes(text(actor, 'withActor', 'actor'));
    const st = fn.kw_with_actor(this._h, a.length ? a : '', a.length, P_STORE);
    if (st !== 0) throw failure(st, 'withActor');
    const other = Object.create(Store.prototype);
    other._h = FIXED.get64(F_STORE);
    other._closed = false;
    other.path = this.path;
    other._ref = new WeakRef(other);
    openStores.add(other._ref);
    closeForgotten.register(other, other._h, other);
    return other;
  }

  /**
   * One page of audit events, oldest first, matching every filter given.
   * @param {import('../index').AuditOptions} [opts]
   * @returns {import('../index').AuditPage}
   */
  audit(opts) {
    const op = 'audit';
    const o = options(opts, op, ['keyId', 'owner', 'actor', 'since', 'until', 'after', 'limit']);
    const k = kwStr(o.keyId, op, 'keyId', false);
    const w = kwStr(o.owner, op, 'owner', false);
    const a = kwStr(o.actor, op, 'actor', false);
    const when = (v, name) => (v === undefined || v === null ? 0 : v instanceof Date ? v.getTime() : safeInt(v, op, name));
    const since = when(o.since, 'since');
    const until = when(o.until, 'until');
    const after = o.after === undefined || o.after === null ? 0 : safeInt(o.after, op, 'after');
    const limit = o.limit === undefined ? 0 : u32(o.limit, op, 'limit');
    const page = this._json(op, (buf, cap) =>
      fn.kw_audit(this._h, k.ptr, k.len, w.ptr, w.len, a.ptr, a.len, since, until, after, limit, buf, cap, P_LEN_A));
    return {
      events: page.events.map((e) => ({
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        action: e.action,
        keyId: e.key_id,
        owner: e.owner,
        changed: e.changed,
        detail: e.detail,
      })),
      next: page.next,
    };
  }

  /**
   * Every audit event matching the filters, page after page.
   * @param {import('../index').AuditOptions & {pageSize?: number}} [opts]
   * @returns {Generator<import('../index').AuditEvent>}
   */
  *auditAll(opts) {
    const { pageSize, ...filters } = opts || {};
    let after = 0;
    for (;;) {
      const page = this.audit({ ...filters, after, limit: pageSize === undefined ? 0 : pageSize });
      yield* page.events;
      if (page.next === null || page.next === undefined) return;
      after = page.next;
    }
  }

  /**
   * Keeps `days` days of audit events (0 = all); older ones are pruned by later writes.
   * Applies to every handle onto this store in this process.
   * @param {number} days
   */
  setAuditRetention(days) {
    const st = fn.kw_set_audit_retention(this._h, u32(days, 'setAuditRetention', 'days'));
    if (st !== 0) throw failure(st, 'setAuditRetention');
  }

  /**
   * Every key of the store in creation order (an export).
   * @returns {import('../index').KeyInfo[]}
   */
  allKeys() {
    return this._json('allKeys', (buf, cap) => fn.kw_all_keys(this._h, buf, cap, P_LEN_A)).map(keyInfo);
  }

  /**
   * Changes the fields present in `changes` (`expiresAt: null` removes the expiry,
   * `credits: null` makes the key unlimited) and returns the new record.
   * @param {string} id
   * @param {import('../index').KeyChanges} changes
   * @returns {import('../index').KeyInfo}
   */
  update(id, changes) {
    const op = 'update';
    const b = cbytes(text(id, op, 'id'));
    if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) throw typeError(op, 'changes', 'an object', changes);
    options(changes, op, UPDATE_FIELDS);
    if (changes.rateLimit !== undefined) {
      // Its own call (kw_key_update keeps its layout), after the other fields.
      const limit = rateLimitOf(changes.rateLimit, op);
      const { rateLimit, ...rest } = changes;
      if (Object.values(rest).some((v) => v !== undefined)) this.update(id, rest);
      const st = fn.kw_set_rate_limit(this._h, b, b.length, limit, INFO_BUF, INFO_BUF.length, P_LEN_A);
      if (st !== 0) throw failure(st, op);
      return keyInfo(parseJson(INFO_BUF, FIXED.get64(F_LEN_A)));
    }
    const F = ENUMS.kw_update_field;
    const has = (k) => changes[k] !== undefined;
    let fields = 0;
    const struct = {
      fields: 0,
      name: { ptr: null, len: 0 },
      scopes: null,
      scopes_len: 0,
      metadata: null,
      metadata_len: 0,
      expires_at_ms: 0,
      credits: null,
    };
    if (has('name')) {
      fields |= F.KW_UPDATE_NAME;
      struct.name = kwStr(changes.name, op, 'name', true);
    }
    if (has('scopes')) {
      fields |= F.KW_UPDATE_SCOPES;
      const scopes = scopeList(changes.scopes, op);
      struct.scopes = scopes.length ? scopes.map((s) => kwStr(s, op, 'scope', true)) : null;
      struct.scopes_len = scopes.length;
    }
    if (has('metadata')) {
      fields |= F.KW_UPDATE_METADATA;
      const m = metadataOf(changes.metadata, op);
      struct.metadata = m && m.byteLength ? m : null;
      struct.metadata_len = m ? m.byteLength : 0;
    }
    if (has('expiresAt')) {
      fields |= F.KW_UPDATE_EXPIRES_AT;
      struct.expires_at_ms = changes.expiresAt === null ? 0 : millis(changes.expiresAt, op, 'expiresAt');
    }
    if (has('credits')) {
      fields |= F.KW_UPDATE_CREDITS;
      struct.credits = changes.credits === null ? null : creditsOf(changes.credits, op);
    }
    struct.fields = fields;
    const st = fn.kw_update(this._h, b, b.length, struct, INFO_BUF, INFO_BUF.length, P_LEN_A);
    if (st !== 0) throw failure(st, op);
    return keyInfo(parseJson(INFO_BUF, FIXED.get64(F_LEN_A)));
  }

  /**
   * Revokes a key for good (revoking a revoked key changes nothing); every process refuses
   * it from its next verify on.
   * @param {string} id
   * @param {string} [reason]
   * @returns {import('../index').KeyInfo}
   */
  revoke(id, reason) {
    const op = 'revoke';
    const b = cbytes(text(id, op, 'id'));
    const r = kwStr(reason, op, 'reason', false);
    const st = fn.kw_revoke(this._h, b, b.length, r.ptr, r.len, INFO_BUF, INFO_BUF.length, P_LEN_A);
    if (st !== 0) throw failure(st, op);
    return keyInfo(parseJson(INFO_BUF, FIXED.get64(F_LEN_A)));
  }

  // --- owner controls -------------------------------------------------------------------

  /**
   * Suspends an owner: every key of it is refused with `OWNER_SUSPENDED` (HTTP 403) from the
   * next verify in every process, until `resumeOwner`. Audited (`owner_suspend`).
   * @param {string} owner
   * @param {string} [reason]
   * @returns {import('../index').OwnerInfo}
   */
  suspendOwner(owner, reason) {
    const op = 'suspendOwner';
    const o = cbytes(text(owner, op, 'owner'));
    const r = kwStr(reason, op, 'reason', false);
    return ownerInfo(this._json(op, (buf, cap) => fn.kw_owner_suspend(this._h, o, o.length, r.ptr, r.len, buf, cap, P_LEN_A)));
  }

  /**
   * Resumes a suspended owner (changes nothing if it is not suspended); `OWNER_NOT_FOUND` for
   * an owner with neither a record nor keys. Audited (`owner_resume`).
   * @param {string} owner
   * @returns {import('../index').OwnerInfo}
   */
  resumeOwner(owner) {
    const op = 'resumeOwner';
    const o = cbytes(text(owner, op, 'owner'));
    return ownerInfo(this._json(op, (buf, cap) => fn.kw_owner_resume(this._h, o, o.length, buf, cap, P_LEN_A)));
  }

  /**
   * Sets the scopes an owner's keys may use (`null`: unrestricted): a key's effective scopes,
   * checked and reported by verify, are its own within these. Audited (`owner_scopes`).
   * @param {string} owner
   * @param {readonly string[] | null} scopes
   * @returns {import('../index').OwnerInfo}
   */
  setOwnerScopes(owner, scopes) {
    const op = 'setOwnerScopes';
    const o = cbytes(text(owner, op, 'owner'));
    const clear = scopes === null || scopes === undefined;
    const ptr = clear ? NULL : scopeArg(scopeList(scopes, op), op);
    const n = clear ? 0 : scopeCount;
    return ownerInfo(
      this._json(op, (buf, cap) => fn.kw_owner_set_scopes(this._h, o, o.length, ptr, n, clear ? 1 : 0, buf, cap, P_LEN_A)),
    );
  }

  /**
   * An owner's controls and key count; `OWNER_NOT_FOUND` for an owner with neither a record
   * nor keys.
   * @param {string} owner
   * @returns {import('../index').OwnerInfo}
   */
  owner(owner) {
    const op = 'owner';
    const o = cbytes(text(owner, op, 'owner'));
    return ownerInfo(this._json(op, (buf, cap) => fn.kw_owner_get(this._h, o, o.length, buf, cap, P_LEN_A)));
  }

  /**
   * Every owner record (owners ever suspended or given allowed scopes), by owner.
   * @returns {import('../index').OwnerInfo[]}
   */
  owners() {
    return this._json('owners', (buf, cap) => fn.kw_owners_list(this._h, buf, cap, P_LEN_A)).map(ownerInfo);
  }

  /**
   * Deletes a key and its usage history.
   * @param {string} id
   */
  delete(id) {
    const b = cbytes(text(id, 'delete', 'id'));
    const st = fn.kw_delete(this._h, b, b.length);
    if (st !== 0) throw failure(st, 'delete');
  }

  /**
   * Replaces a key with a new one; the old key stays valid for `graceMs` (default 24 h,
   * 0 = refused at once). Returns the new key (once) and its record.
   * @param {string} id
   * @param {{graceMs?: number}} [opts]
   * @returns {{key: string, info: import('../index').KeyInfo}}
   */
  rotate(id, opts) {
    const op = 'rotate';
    const b = cbytes(text(id, op, 'id'));
    const o = options(opts, op, ['graceMs']);
    const grace = o.graceMs === undefined ? DEFINES.KW_DEFAULT_ROTATION_GRACE_MS : safeInt(o.graceMs, op, 'graceMs');
    if (grace < 0) throw typeError(op, 'graceMs', 'a non-negative integer', grace);
    const st = fn.kw_rotate(this._h, b, b.length, grace, P_KEY, DEFINES.KW_MAX_KEY_LEN, P_LEN_A, INFO_BUF, INFO_BUF.length, P_LEN_B);
    return this._newKey(st, op);
  }

  // --- usage -----------------------------------------------------------------------------------

  /**
   * A key's usage: what is stored plus what this process has not flushed yet.
   * @param {string} id
   * @returns {{uses: number, refused: number, lastUsedAt: number|null}}
   */
  usage(id) {
    const b = cbytes(text(id, 'usage', 'id'));
    const st = fn.kw_usage(this._h, b, b.length, P_STRUCT);
    if (st !== 0) throw failure(st, 'usage');
    const o = (f) => F_STRUCT + off('kw_usage_stats', f);
    const last = FIXED.getI64(o('last_used_ms'));
    return { uses: FIXED.get64(o('uses')), refused: FIXED.get64(o('refused')), lastUsedAt: last === 0 ? null : last };
  }

  /**
   * Uses per UTC day from `from` to `to` inclusive (flushed counts only: call flush() first
   * for this process's latest). Days without use are omitted.
   * @param {string} id
   * @param {string|Date|number} from `"YYYY-MM-DD"`, a Date, or days since 1970-01-01
   * @param {string|Date|number} to
   * @returns {{day: string, uses: number}[]}
   */
  usageByDay(id, from, to) {
    const op = 'usageByDay';
    const b = cbytes(text(id, op, 'id'));
    const f = dayOf(from, op, 'from');
    const t = dayOf(to, op, 'to');
    return this._json(op, (buf, cap) => fn.kw_usage_by_day(this._h, b, b.length, f, t, buf, cap, P_LEN_A));
  }

  /**
   * An owner's keys not used since `since` (never used, or last used before it), oldest first.
   * @param {string} owner
   * @param {Date|number} since a Date or ms since the epoch
   * @returns {import('../index').KeyInfo[]}
   */
  unusedSince(owner, since) {
    const op = 'unusedSince';
    const b = cbytes(text(owner, op, 'owner'));
    const ms = millis(since, op, 'since');
    return this._json(op, (buf, cap) => fn.kw_unused_since(this._h, b, b.length, ms, buf, cap, P_LEN_A)).map(keyInfo);
  }

  /**
   * Active keys (neither revoked nor expired, not rotated away) whose expiry falls within
   * `withinMs` from now, soonest first: keys to warn about.
   * @param {number} withinMs
   * @returns {import('../index').KeyInfo[]}
   */
  expiringWithin(withinMs) {
    const op = 'expiringWithin';
    const ms = safeInt(withinMs, op, 'withinMs');
    return this._json(op, (buf, cap) => fn.kw_expiring_within(this._h, ms, buf, cap, P_LEN_A)).map(keyInfo);
  }

  /**
   * Active limited keys (not rotated away) with fewer than `threshold` credits left now,
   * fewest first, each as `{ info, remaining }`: keys to warn about.
   * @param {number} threshold
   * @returns {{ info: import('../index').KeyInfo, remaining: number }[]}
   */
  creditsBelow(threshold) {
    const op = 'creditsBelow';
    const n = safeInt(threshold, op, 'threshold');
    if (n < 0) throw typeError(op, 'threshold', 'a non-negative integer', threshold);
    return this._json(op, (buf, cap) => fn.kw_credits_below(this._h, n, buf, cap, P_LEN_A))
      .map((e) => ({ info: keyInfo(e.key), remaining: e.remaining }));
  }

  /**
   * A key's usage credits: null for an unlimited key.
   * @param {string} id
   * @returns {import('../index').CreditBalance|null}
   */
  credits(id) {
    const b = cbytes(text(id, 'credits', 'id'));
    const st = fn.kw_key_credits(this._h, b, b.length, P_STRUCT);
    if (st !== 0) throw failure(st, 'credits');
    const o = (f) => F_STRUCT + off('kw_credit_balance', f);
    if (FIXED.u32[o('limited') >>> 2] === 0) return null;
    return {
      cost: FIXED.u32[o('cost') >>> 2],
      remaining: FIXED.get64(o('remaining')),
      refillAmount: FIXED.get64(o('refill_amount')),
      refillInterval: REFILL_NAMES[FIXED.u32[o('refill_interval') >>> 2]],
    };
  }

  /** Calls a JSON-output function, growing the buffer on KW_BUFFER_TOO_SMALL. */
  _json(op, call) {
    for (let attempt = 0; attempt < 8; attempt++) {
      const st = call(jsonBuf, jsonBuf.length);
      if (st === 0) return parseJson(jsonBuf, FIXED.get64(F_LEN_A));
      if (st !== ENUMS.kw_status.KW_BUFFER_TOO_SMALL) throw failure(st, op);
      const need = FIXED.get64(F_LEN_A);
      jsonBuf = Buffer.alloc(Math.max(need, jsonBuf.length * 2));
    }
    throw failure(ENUMS.kw_status.KW_BUFFER_TOO_SMALL, op);
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Store.prototype[Symbol.dispose] = Store.prototype.close;
}

/** An owner record from the library's JSON. */
function ownerInfo(r) {
  return {
    owner: r.owner,
    suspendedAt: r.suspended_at,
    suspendReason: r.suspend_reason,
    allowedScopes: r.allowed_scopes,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    keys: r.keys,
  };
}

/** Parses the options of a verify call. */
function verifyOptions(opts, operation) {
  if (opts === null) return { scopes: undefined, cost: 0, atMs: 0, info: false, flags: 0 };
  if (typeof opts !== 'object' || Array.isArray(opts)) throw typeError(operation, 'options', 'an object', opts);
  const scopes = opts.scopes === null ? undefined : opts.scopes;
  let cost = 0;
  let atMs = 0;
  if (opts.cost !== undefined) cost = u32(opts.cost, operation, 'cost');
  if (opts.at !== undefined && opts.at !== null) atMs = millis(opts.at, operation, 'at');
  if (opts.info !== undefined && typeof opts.info !== 'boolean') throw typeError(operation, 'info', 'a boolean', opts.info);
  if (opts.dryRun !== undefined && typeof opts.dryRun !== 'boolean') throw typeError(operation, 'dryRun', 'a boolean', opts.dryRun);
  for (const k in opts) if (!VERIFY_OPTIONS.includes(k)) throw new TypeError(`keyward ${operation}: unknown option ${JSON.stringify(k)} (known: ${VERIFY_OPTIONS.join(', ')})`);
  return { scopes, cost, atMs, info: opts.info === true, flags: opts.dryRun === true ? ENUMS.kw_verify_flags.KW_VERIFY_DRY_RUN : 0 };
}

// --- functions without a store -------------------------------------------------------------------

/**
 * Extracts the credential from request headers without verifying it. Throws CredentialError
 * (status and code say why) when there is none usable.
 * @param {import('../index').HeadersInput} headers
 * @returns {{kind: 'key', key: string} | {kind: 'pair', id: string, secret: string}}
 */
function extractCredential(headers) {
  const op = 'extractCredential';
  const n = encodeHeaders(headers, op);
  const used = pendingBytes;
  let secretBuf = SECRET_BUF;
  let idBuf = ID_BUF;
  let st = fn.kw_extract_credential(n ? HEADERS.ptr : NULL, n, P_U32, secretBuf, secretBuf.length, P_LEN_A, idBuf, idBuf.length, P_LEN_B);
  if (st === ENUMS.kw_status.KW_BUFFER_TOO_SMALL) {
    // A value that is not UTF-8 is read with U+FFFD (3 bytes) for each bad byte, so it can
    // come back longer than any header value: once more with the sizes asked for.
    secretBuf = Buffer.alloc(Math.max(FIXED.get64(F_LEN_A), secretBuf.length));
    idBuf = Buffer.alloc(Math.max(FIXED.get64(F_LEN_B), idBuf.length));
    st = fn.kw_extract_credential(n ? HEADERS.ptr : NULL, n, P_U32, secretBuf, secretBuf.length, P_LEN_A, idBuf, idBuf.length, P_LEN_B);
  }
  BYTES.buf.fill(0, 0, used);
  if (st !== 0) throw failure(st, op);
  const secretLen = FIXED.get64(F_LEN_A);
  const idLen = FIXED.get64(F_LEN_B);
  const secret = secretBuf.toString('utf8', 0, secretLen);
  const id = idBuf.toString('utf8', 0, idLen);
  secretBuf.fill(0, 0, secretLen);
  if (FIXED.u32[F_U32 >>> 2] === ENUMS.kw_credential_kind.KW_CREDENTIAL_PAIR) return { kind: 'pair', id, secret };
  return { kind: 'key', key: secret };
}

const KEY_ERROR_NAMES = Object.values(ENUMS.kw_key_error).map((e) => fn.kw_key_error_name(e));

/**
 * Parses and checks a key offline (structure, charset, CRC32 checksum), with no store.
 * @param {string|Buffer} key
 * @param {{prefix?: string}} [opts] the expected prefix (any valid prefix when absent)
 * @returns {import('../index').ParsedKey}
 */
function parseKey(key, opts) {
  const op = 'parseKey';
  const k = cbytes(text(key, op, 'key'));
  const o = options(opts, op, ['prefix']);
  const p = kwStr(o.prefix, op, 'prefix', false);
  const st = fn.kw_parse_key(k.byteLength ? k : '', k.byteLength, p.ptr, p.len, P_STRUCT);
  if (st !== 0) throw failure(st, op);
  const o2 = (f) => F_STRUCT + off('kw_parsed_key', f);
  const b = FIXED.buf;
  const field = (f, len) => cString(b, o2(f), o2(f) + len, 'utf8');
  let result;
  if (FIXED.u32[o2('valid') >>> 2] === 1) {
    const env = field('env', 24);
    result = { valid: true, error: null, prefix: field('prefix', 24), env: env === '' ? null : env, id: field('id', 24), secret: field('secret', 40) };
  } else {
    const e = FIXED.u32[o2('error') >>> 2];
    result = { valid: false, error: KEY_ERROR_NAMES[e] || fn.kw_key_error_name(e), prefix: null, env: null, id: null, secret: null };
  }
  FIXED.wipe(F_STRUCT, S.kw_parsed_key.size);
  return result;
}

/**
 * Releases every store kept open by `persistent: true`: one with no open Store is flushed
 * and closed now, one still open closes with its last close(). The binding calls it at a
 * normal process exit; call it yourself at an orderly shutdown that does not end the
 * process (a test harness).
 */
function releasePersistent() {
  const st = fn.kw_release_persistent();
  if (st !== 0) throw failure(st, 'releasePersistent');
}

module.exports = {
  Store,
  Verdict,
  Scopes,
  extractCredential,
  parseKey,
  legacyKeyId,
  LEGACY_SCHEMES,
  releasePersistent,
  statusName,
  statusMessage,
  reasonInfo,
  library: { file: N.file, version: fn.kw_version(), abiVersion: fn.kw_abi_version() },
  /** @internal for the benchmark and the drift test */
  _native: N,
  /** @internal for the benchmark and the tests */
  _internal: { readVerdict, P_VERDICT, NULL, failure },
  /** @internal for the middleware */
  CREDENTIAL_HEADER_NAMES,
};
