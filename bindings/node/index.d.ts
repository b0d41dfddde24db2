// Type declarations of the keyward Node binding (CommonJS: `const keyward = require('keyward')`;
// ESM and TypeScript: `import { Store } from 'keyward'`).

/// <reference types="node" />

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';

// --- options and records ------------------------------------------------------------------------

/** Options of `new Store(path, options)`. Every field is optional. */
export interface OpenOptions {
  /** The pepper: 32 raw bytes, or 64 hexadecimal characters. Default: `<path>.pepper`. */
  pepper?: Uint8Array | string;
  /** Path of a pepper file (64 hex characters or 32 bytes, mode 0600). Not with `pepper`. */
  pepperFile?: string | Uint8Array;
  /** Key prefix of a new store (`[a-z0-9]{1,16}`); default: the stored one, or `kw`. */
  prefix?: string;
  /** `"multi-process"` (default: many processes share the file) or `"single-process"`. */
  concurrency?: 'multi-process' | 'single-process';
  /** Keep the store open (warm) for the life of the process, even after the last close. */
  persistent?: boolean;
  /** Most active keys per owner; 0 (default) = unlimited. */
  maxActiveKeysPerOwner?: number;
  /** Refuse to revoke or delete an owner's last active key. */
  keepLastKey?: boolean;
  /** Longest key lifetime in ms; 0 (default) = unlimited (when set, every key needs an expiry). */
  maxLifetimeMs?: number;
  /** Background usage flush interval in ms (default 1000), or `"manual"` (flush() and close() only). After a long flush the next waits 100 times its duration (at most 30 s, unless the interval is longer). */
  flushIntervalMs?: number | 'manual';
  /** Most key records this process keeps decoded in front of the shared verify table; 0 = default (65 536). */
  indexCapacity?: number;
  /**
   * Connection URL of the upstream PostgreSQL this store replicates (several hosts, README
   * "Several hosts"), e.g. `postgresql://keyward@db.internal/keyward`: `create`, `createMany`,
   * `update`, `revoke`, `delete` and `rotate` are then written to PostgreSQL first and applied
   * here once it committed (`UpstreamError` when it cannot be reached: nothing was changed).
   * Opening connects to nothing; verifies never use it.
   */
  upstream?: string;
}

/** Usage credits of a new or updated key. */
export interface CreditsInput {
  /** Credits available now (below 2^40). */
  remaining: number;
  /** Credits after each refill (below 2^40). */
  refillAmount?: number;
  /** How often credits refill (default `"none"`). */
  refillInterval?: 'none' | 'daily' | 'monthly';
  /** Default cost of one verify (0 or absent = 1). */
  cost?: number;
}

/** Metadata: bytes, text, or an object stored as JSON. */
export type MetadataInput = Uint8Array | string | Record<string, unknown> | unknown[];

/** What `store.create()` creates. */
export interface NewKey {
  /** Owner (account or workspace id): required, non-blank, at most 128 bytes. */
  owner: string;
  /** Human name (at most 256 bytes). */
  name?: string;
  /** Scopes granted (at most 64, each at most 64 bytes). */
  scopes?: readonly string[];
  /** Env tag written into the key (`[a-z0-9]{1,16}`, e.g. `"live"`). */
  env?: string;
  /** Host-defined metadata (at most 4096 bytes). */
  metadata?: MetadataInput | null;
  /** Expiry: a Date or ms since the epoch; absent or null = never. */
  expiresAt?: Date | number | null;
  /** Usage credits; absent or null = unlimited. */
  credits?: CreditsInput | null;
  /** The key's own rate limit; absent or null = none. */
  rateLimit?: RateLimitInput | null;
}

/** A rate limit: `rate` requests per `periodMs` (default 1000), bursts of `burst` (default `rate`). */
export interface RateLimitInput {
  rate: number;
  periodMs?: number;
  burst?: number;
}

/** A rate limit as recorded. */
export interface RateLimit {
  rate: number;
  periodMs: number;
  burst: number;
}

/** A rate-limited key's state in a verdict (the tighter of its own and its owner's limit). */
export interface RateStatus {
  readonly scope: 'key' | 'owner';
  /** Requests per period (`q` of RateLimit-Policy). */
  readonly limit: number;
  readonly periodMs: number;
  readonly burst: number;
  /** Requests that could pass now (`r` of RateLimit). */
  readonly remaining: number;
  /** Ms until a full burst is available again. */
  readonly resetMs: number;
  /** For RATE_LIMITED: ms until the next request would be accepted. */
  readonly retryAfterMs: number | null;
  /** The response fields, as the library formats them. */
  readonly headers: Readonly<Record<string, string>>;
}

/** The fields `store.update()` changes (only those present). */
export interface KeyChanges {
  name?: string;
  scopes?: readonly string[];
  metadata?: MetadataInput | null;
  /** null removes the expiry. */
  expiresAt?: Date | number | null;
  /** null makes the key unlimited. */
  credits?: CreditsInput | null;
  /** null removes the key's rate limit. */
  rateLimit?: RateLimitInput | null;
}

/** A key's public record (never its secret). Times are ms since the epoch. */
export interface KeyInfo {
  /** Public key id (safe to log and show). */
  id: string;
  owner: string;
  name: string;
  /** Sorted, without duplicates. */
  scopes: string[];
  env: string | null;
  createdAt: number;
  expiresAt: number | null;
  metadata: Buffer;
  revokedAt: number | null;
  revokeReason: string | null;
  rotatedFrom: string | null;
  rotatedTo: string | null;
  /** Credit terms of a limited key; null when unlimited. */
  credits: { cost: number; refill: { interval: 'daily' | 'monthly'; amount: number } | null } | null;
  /** Creation order within the store. */
  serial: number;
  /** For a key imported from another system (`importLegacy`); null for keyward's own keys. */
  legacy: LegacyOrigin | null;
  /** The key's own rate limit; null when none. */
  rateLimit: RateLimit | null;
}

/** Where an imported key came from, and when its first use upgraded it (null before). */
export interface LegacyOrigin {
  scheme: LegacySource;
  sourceId: string;
  upgradedAt: number | null;
}

/** A system whose keys `importLegacy` reads. */
export type LegacySource = 'sanctum' | 'drf' | 'unkey' | 'better-auth';

/** Options of `importLegacy`. */
export interface LegacyImportOptions {
  /** Report what would be imported; write nothing. */
  dryRun?: boolean;
  /** Sanctum's `sanctum.expiration` setting, in minutes. */
  sanctumExpirationMinutes?: number | null;
  /** The scopes a Sanctum ability "*" stands for (rows with "*" are refused without it). */
  allScopes?: string[] | null;
  /** Owner of rows that name none (DRF keys have none). */
  defaultOwner?: string | null;
}

/** What `importLegacy` did (or, for a dry run, would do). */
export interface LegacyImportReport {
  scheme: LegacySource;
  dryRun: boolean;
  rows: number;
  imported: number;
  alreadyPresent: number;
  deleted: number;
  revoked: number;
  expired: number;
}

/** The public id keyward gives the key with id `sourceId` in system `source`. */
export function legacyKeyId(source: LegacySource, sourceId: string): string;

/** The systems `importLegacy` reads, with their `kw_legacy_scheme` numbers. */
export const LEGACY_SCHEMES: Readonly<Record<LegacySource, number>>;

/** The result of `create()` and `rotate()`: the full key, shown once, and its record. */
/** A key made by `createMany`: the full key (returned this once) and its public id. */
export interface IssuedKey {
  key: string;
  id: string;
}

export interface CreatedKey {
  /** The full key. It exists nowhere else: hand it to the customer, never log it. */
  key: string;
  info: KeyInfo;
}

/** A key's usage credits (`store.credits()`; null for an unlimited key). */
export interface CreditBalance {
  cost: number;
  remaining: number;
  refillAmount: number;
  refillInterval: 'none' | 'daily' | 'monthly';
}

/** This process's counters for a store. */
export interface StoreStats {
  commits: number;
  refreshes: number;
  indexedKeys: number;
  dirtyKeys: number;
  indexComplete: boolean;
  /** The shared verify table as this process sees it. */
  table: TableStats;
  /** A replica's state against its upstream PostgreSQL; null for a store of its own. */
  replica: ReplicaStats | null;
}

/** A replica store's state against its upstream PostgreSQL (`stats().replica`). */
export interface ReplicaStats {
  /** The last upstream change sequence applied to this store. */
  cursor: number;
  /** Whether the host's replicator (`keyward replicate`) was connected at its last report. */
  connected: boolean;
  /** When the store was last known up to date (ms since the epoch); 0 = never. */
  syncedAtMs: number;
  /** Milliseconds since then; null = never synced. */
  stalenessMs: number | null;
  /** When the replicator last wrote its status (ms since the epoch); 0 = never. */
  reportedAtMs: number;
}

/** The shared verify table (one per store per host) as this process sees it. */
export interface TableStats {
  /** A random number naming the table file in use; 0 = none mapped. */
  generation: number;
  slots: number;
  keys: number;
  /** Bytes of the part every verify touches (slots, usage cells). */
  lookupBytes: number;
  /** Bytes of the whole file (with the key records). */
  fileBytes: number;
  /** Key records this process keeps decoded. */
  cachedRecords: number;
  /** Generations this process built (missing, damaged or outgrown table). */
  rebuilds: number;
  /** Slots a killed writer left in doubt that this process repaired. */
  slotsRepaired: number;
  mapped: boolean;
}

/** A key's usage: stored plus this process's unflushed counts. */
export interface UsageStats {
  /** Accepted verifies. */
  uses: number;
  /** Refused verifies where the key id was known. */
  refused: number;
  /** Latest accepted verify (ms since the epoch), or null. */
  lastUsedAt: number | null;
}

export interface ListOptions {
  /** The previous page's `next` (first page: absent or 0). */
  after?: number | null;
  /** Page size 1..1000; absent or 0 = 100. */
  limit?: number;
  state?: 'all' | 'active' | 'revoked' | 'expired';
}

/** An owner's controls and key count (`Store.owner`, `Store.owners`); times in ms. */
export interface OwnerInfo {
  owner: string;
  /** When the owner was suspended; null when it is not. */
  suspendedAt: number | null;
  suspendReason: string | null;
  /** The scopes the owner's keys may use; null = unrestricted. */
  allowedScopes: string[] | null;
  /** Null for an owner that has keys but no record. */
  createdAt: number | null;
  updatedAt: number | null;
  keys: number;
}

/** One event of the audit log: never a secret or a digest. */
export interface AuditEvent {
  seq: number;
  /** When, ms since the epoch. */
  at: number;
  actor: string | null;
  action:
    | 'create'
    | 'update'
    | 'rotate'
    | 'revoke'
    | 'delete'
    | 'import'
    | 'policy_refused'
    | 'owner_suspend'
    | 'owner_resume'
    | 'owner_scopes';
  keyId: string | null;
  owner: string | null;
  /** Names of the fields changed. */
  changed: string[];
  /** The other key of a rotation, or the error code of a policy refusal. */
  detail: string | null;
}

/** Filters and paging of `Store.audit` (every filter given must match). */
export interface AuditOptions {
  keyId?: string | null;
  owner?: string | null;
  actor?: string | null;
  /** At or after (ms since the epoch, or a Date). */
  since?: number | Date | null;
  /** Before (ms since the epoch, or a Date). */
  until?: number | Date | null;
  /** The previous page's `next`. */
  after?: number | null;
  /** 1..1000; default 100. */
  limit?: number;
}

/** One page of audit events, oldest first. */
export interface AuditPage {
  events: AuditEvent[];
  /** Cursor of the next page, or null on the last page. */
  next: number | null;
}

export interface KeyPage {
  keys: KeyInfo[];
  /** Cursor of the next page, or null on the last page. */
  next: number | null;
}

/** The result of `parseKey()`. */
export type ParsedKey =
  | { valid: true; error: null; prefix: string; env: string | null; id: string; secret: string }
  | {
      valid: false;
      error: 'empty' | 'too_long' | 'bad_structure' | 'bad_prefix' | 'bad_env' | 'bad_length' | 'not_base62' | 'bad_checksum' | 'unknown';
      prefix: null;
      env: null;
      id: null;
      secret: null;
    };

/** The credential found in request headers. */
export type Credential = { kind: 'key'; key: string } | { kind: 'pair'; id: string; secret: string };

/**
 * Request headers: `req.headers` (names lower-case, values strings or arrays), any object
 * of name → value, an array of `[name, value]` pairs, a flat `req.rawHeaders` array, a
 * `Map` or a fetch `Headers`. String values are sent as node:http received them (one
 * character per byte); values with a character above U+00FF are sent as UTF-8.
 */
export type HeadersInput =
  | IncomingHttpHeaders
  | Record<string, string | readonly string[] | Uint8Array | number | undefined | null>
  | ReadonlyArray<readonly [string, string | Uint8Array]>
  | readonly string[]
  | ReadonlyMap<string, string | Uint8Array>
  | { forEach(cb: (value: string, name: string) => void): void; get(name: string): string | null }
  | null
  | undefined;

/** Options of `verify()`, `verifyPair()` and `verifyHeaders()`. */
export interface VerifyOptions {
  /** Scopes the route requires (all needed; at most 64), or a prepared `Scopes`. */
  scopes?: readonly string[] | Scopes | null;
  /** Credits to spend if the key is limited; 0 or absent = the key's own cost. */
  cost?: number;
  /** The time to judge expiry at (Date or ms since the epoch); absent = now. */
  at?: Date | number | null;
  /** Also read the key's full record into `verdict.info` (slower). */
  info?: boolean;
  /**
   * Check without consuming: the full verdict, but no use, refusal or last-used time is
   * counted and no credit is spent (a limited key is VALID if the credits available now cover
   * the cost, USAGE_EXCEEDED otherwise).
   */
  dryRun?: boolean;
}

/** Stable reason codes of a refused (or accepted) key. */
export type ReasonCode =
  | 'VALID'
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'REVOKED'
  | 'EXPIRED'
  | 'INSUFFICIENT_SCOPE'
  | 'USAGE_EXCEEDED'
  | 'OWNER_SUSPENDED'
  | 'RATE_LIMITED';

/** Codes of a request without a usable credential (`verifyHeaders`; HTTP 401). */
export type CredentialCode =
  | 'CREDENTIAL_MISSING'
  | 'UNSUPPORTED_SCHEME'
  | 'BAD_BASE64'
  | 'HALF_PAIR'
  | 'MALFORMED_KEY'
  | 'AMBIGUOUS_CREDENTIAL';

/** Stable names of the C statuses (`error.code`). */
export type StatusCode =
  | 'OK' | 'INVALID_ARGUMENT' | 'NULL_ARGUMENT' | 'INVALID_UTF8' | 'TOO_LONG' | 'BUFFER_TOO_SMALL' | 'PANIC'
  | 'CLOSED' | 'NOT_FOUND' | 'POLICY_MAX_ACTIVE_KEYS' | 'POLICY_LAST_ACTIVE_KEY' | 'POLICY_MAX_LIFETIME'
  | 'DIRECTORY_MISSING' | 'LOCKED' | 'READ_ONLY' | 'CORRUPT' | 'WRONG_PEPPER' | 'NEWER_FORMAT'
  | 'PEPPER_MISSING' | 'PEPPER_INVALID' | 'PEPPER_PERMISSIONS' | 'CONFIG_MISMATCH' | 'STORAGE'
  | 'CREDIT_SLOTS_EXHAUSTED' | 'CREDENTIAL_MISSING' | 'UNSUPPORTED_SCHEME' | 'BAD_BASE64' | 'HALF_PAIR'
  | 'MALFORMED_KEY' | 'AMBIGUOUS_CREDENTIAL';

// --- classes ----------------------------------------------------------------------------------------

/** The answer of a verify. A refused key is a verdict, not an error. */
export class Verdict {
  private constructor();
  /** True only for a valid key (`code === "VALID"`). */
  readonly ok: boolean;
  /** Why: a reason code, or (verifyHeaders) a credential code. */
  readonly code: ReasonCode | CredentialCode;
  /** The `kw_reason` number; null when the request carried no usable credential. */
  readonly reason: number | null;
  /** What to answer: 200, 401, 403 or 429. */
  readonly httpStatus: 200 | 401 | 403 | 429;
  /** A short English message for the code. */
  readonly message: string;
  /** The key is known and its secret was right (the fields below are then set, even when refused). */
  readonly keyFound: boolean;
  readonly keyId: string | null;
  readonly owner: string | null;
  readonly env: string | null;
  readonly createdAt: number | null;
  readonly expiresAt: number | null;
  /** The key has usage credits. */
  readonly limited: boolean;
  readonly revoked: boolean;
  /** The key was replaced by rotation. */
  readonly rotated: boolean;
  /** The key's record, with `{info: true}` (null otherwise, or when unknown). */
  readonly info: KeyInfo | null;
  /** A rate-limited key's state; null for a key without a rate limit. */
  readonly rate: RateStatus | null;
  /** For RATE_LIMITED: ms until the next request would be accepted. */
  readonly retryAfterMs: number | null;
  /** RateLimit-Policy, RateLimit (and Retry-After on a 429); empty for other keys. */
  readonly rateHeaders: Readonly<Record<string, string>>;
  /** `{ok, code, message}`: the JSON body of a refusal. */
  toResponse(): { ok: boolean; code: string; message: string };
}

/** Scopes encoded once into native memory, for routes that verify against the same list. */
export class Scopes {
  constructor(scopes: readonly string[]);
  readonly list: readonly string[];
  readonly length: number;
}

/**
 * An open keyward store (one handle of the C ABI). Open one per process and reuse it; in
 * a cluster, open it in each worker. Every method is synchronous; verify never touches the
 * disk. Methods throw `KeywardError` subclasses (and `TypeError` for wrong argument types).
 */
export class Store {
  /** Opens (creating if needed) the store at `path`; its directory must exist. */
  constructor(path: string | Uint8Array, options?: OpenOptions);
  /** Same as `new Store(path, options)`. */
  static open(path: string | Uint8Array, options?: OpenOptions): Store;
  /** The path given to the constructor. */
  readonly path: string;
  /** The opaque C handle (a number below 2^53). */
  readonly handle: number;
  /** Whether close() was called. */
  readonly closed: boolean;
  /** Flushes pending usage and releases the handle. Closing twice does nothing. */
  close(): void;
  /** Writes pending usage now; returns the number of keys written. */
  flush(): number;
  /** This process's counters for the store. */
  stats(): StoreStats;
  /** Whether both handles share one open store. */
  sameStore(other: Store): boolean;

  /** Verifies a full key (as sent). */
  verify(key: string | Uint8Array, options?: VerifyOptions | null): Verdict;
  /** Verifies a (public id, secret) pair. */
  verifyPair(id: string | Uint8Array, secret: string | Uint8Array, options?: VerifyOptions | null): Verdict;
  /** Finds the credential in request headers and verifies it; no credential = a 401 verdict. */
  verifyHeaders(headers: HeadersInput, options?: VerifyOptions | null): Verdict;

  /** Creates a key; the full key is returned once, here. */
  create(spec: NewKey): CreatedKey;
  /** Sets (null removes) the rate limit `owner` shares among all of its keys. */
  setOwnerRateLimit(owner: string, limit: RateLimitInput | null): void;
  /** The rate limit `owner` shares among its keys, or null. */
  ownerRateLimit(owner: string): RateLimit | null;
  /** Creates many keys in one transaction (all or none); the full keys are returned once, here. */
  createMany(specs: NewKey[]): IssuedKey[];
  /**
   * Imports another system's keys from its export, so they keep working as they are
   * (all or nothing; InvalidArgumentError LEGACY_IMPORT_INVALID names the line of a bad row).
   */
  importLegacy(source: LegacySource, data: string | Buffer, opts?: LegacyImportOptions): LegacyImportReport;
  /** A key's record (NotFoundError for an unknown id). */
  get(id: string): KeyInfo;
  /** One page of an owner's keys, in creation order. */
  list(owner: string, options?: ListOptions): KeyPage;
  /** Every key of an owner, page after page. */
  listAll(owner: string, options?: { state?: ListOptions['state']; pageSize?: number }): Generator<KeyInfo, void, undefined>;
  /** Every key of the store, in creation order. */
  allKeys(): KeyInfo[];
  /** A second handle onto the same store that stamps its changes with `actor` in the audit log. */
  withActor(actor: string): Store;
  /** One page of audit events, oldest first. */
  audit(options?: AuditOptions): AuditPage;
  /** Every audit event matching the filters, page after page. */
  auditAll(options?: AuditOptions & { pageSize?: number }): Generator<AuditEvent, void, undefined>;
  /** Keeps `days` days of audit events (0 = all). */
  setAuditRetention(days: number): void;
  /** Changes the fields present in `changes`; returns the new record. */
  update(id: string, changes: KeyChanges): KeyInfo;
  /** Revokes a key for good; every process refuses it from its next verify on. */
  revoke(id: string, reason?: string | null): KeyInfo;
  /** Suspends an owner: every key of it is refused with OWNER_SUSPENDED (403). */
  suspendOwner(owner: string, reason?: string | null): OwnerInfo;
  /** Resumes a suspended owner. */
  resumeOwner(owner: string): OwnerInfo;
  /** Sets the scopes an owner's keys may use (null: unrestricted). */
  setOwnerScopes(owner: string, scopes: readonly string[] | null): OwnerInfo;
  /** An owner's controls and key count. */
  owner(owner: string): OwnerInfo;
  /** Every owner record. */
  owners(): OwnerInfo[];
  /** Deletes a key and its usage history. */
  delete(id: string): void;
  /** Replaces a key; the old one stays valid for `graceMs` (default 24 h; 0 = refused at once). */
  rotate(id: string, options?: { graceMs?: number }): CreatedKey;

  /** A key's usage (stored plus this process's unflushed counts). */
  usage(id: string): UsageStats;
  /** Uses per UTC day, `from`..`to` inclusive (flushed counts; days without use omitted). */
  usageByDay(id: string, from: string | Date | number, to: string | Date | number): { day: string; uses: number }[];
  /** An owner's keys not used since `since`, oldest first. */
  unusedSince(owner: string, since: Date | number): KeyInfo[];
  /** Active keys (not rotated away) expiring within `withinMs` from now, soonest first. */
  expiringWithin(withinMs: number): KeyInfo[];
  /** Active limited keys with fewer than `threshold` credits left now, fewest first. */
  creditsBelow(threshold: number): { info: KeyInfo; remaining: number }[];
  /** A key's usage credits, or null for an unlimited key. */
  credits(id: string): CreditBalance | null;

  [Symbol.dispose](): void;
}

// --- errors -------------------------------------------------------------------------------------------

/** Base class of every failed `kw_` call. */
export class KeywardError extends Error {
  /** The C status number (`kw_status`). */
  readonly status: number;
  /** Its stable name, e.g. `"NOT_FOUND"`. */
  readonly code: StatusCode | string;
  /** The method that failed, e.g. `"revoke"`. */
  readonly operation: string | undefined;
  /**
   * The library's detail of this failure (`kw_last_error_message`): which file, which
   * permission, what to do. Also part of `message`; `''` when the library gave none.
   */
  readonly detail: string;
}
/** INVALID_ARGUMENT, NULL_ARGUMENT, INVALID_UTF8, TOO_LONG, CONFIG_MISMATCH. */
export class InvalidArgumentError extends KeywardError {}
/** BUFFER_TOO_SMALL (a binding bug if it ever escapes). */
export class BufferTooSmallError extends KeywardError {}
/** PANIC: a panic inside keyward, caught at the boundary; the process goes on. */
export class PanicError extends KeywardError {}
/** CLOSED: the store was closed. */
export class StoreClosedError extends KeywardError {}
/** NOT_FOUND: no key with that id. */
export class NotFoundError extends KeywardError {}
/** POLICY_*, CREDIT_SLOTS_EXHAUSTED. */
export class PolicyError extends KeywardError {}
/** DIRECTORY_MISSING, LOCKED, READ_ONLY, CORRUPT, WRONG_PEPPER, NEWER_FORMAT, PEPPER_*. */
export class OpenError extends KeywardError {}
/** STORAGE: any other storage or I/O failure. */
export class StorageError extends KeywardError {}
/** The store replicates an upstream PostgreSQL, or the upstream is unreachable (UPSTREAM_*). */
export class UpstreamError extends KeywardError {}
/** No usable credential in the headers (`extractCredential`); HTTP 401. */
export class CredentialError extends KeywardError {
  readonly httpStatus: 401;
}
/** libkeyward could not be found or loaded. */
export class LibraryError extends Error {}
/** libkeyward has another C ABI version than this binding. */
export class AbiMismatchError extends LibraryError {
  readonly file: string;
  readonly found: number;
  readonly expected: number;
}

// --- functions ------------------------------------------------------------------------------------------

/** Extracts the credential from headers without verifying it (CredentialError when none). */
export function extractCredential(headers: HeadersInput): Credential;
/** Parses and checks a key offline (structure, charset, checksum), with no store. */
export function parseKey(key: string | Uint8Array, options?: { prefix?: string }): ParsedKey;
/**
 * Releases every store kept open by `persistent: true` (flushed and closed now when no Store
 * is open on it). Called by the binding at a normal process exit.
 */
export function releasePersistent(): void;
/** The stable name of a C status, e.g. `"NOT_FOUND"`. */
export function statusName(status: number): string;
/** The English message of a C status. */
export function statusMessage(status: number): string;

/** Options of `middleware()`. */
export interface MiddlewareOptions {
  /** Scopes every request must have (a list, or a prepared `Scopes`). */
  scopes?: readonly string[] | Scopes;
  /**
   * Credits to spend per request for limited keys (default: the key's own cost). Only the
   * middleware that verifies the request spends: a later one reusing its verdict spends none.
   */
  cost?: number;
  /** Read the key's record into `req.keyward.info`. */
  info?: boolean;
  /** Where the verdict goes on the request (default `"keyward"`). */
  property?: string;
  /** Called instead of the default JSON 401/403 answer. */
  onRefused?: (req: any, res: any, verdict: Verdict) => void;
}

/** A Connect/Express-style middleware function. */
export type Middleware = (req: IncomingMessage & { [property: string]: any }, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * Express/Connect middleware: verifies the request's key, then `next()` with the verdict on
 * `req.keyward`, or answers 401/403 with `{"ok": false, "code", "message"}`. A failing store
 * goes to `next(err)`. Needs no express at run time.
 *
 * Stacking is safe (app-level + route-level): a request an earlier keyward middleware on the
 * same store accepted is not verified again (one use counted, credits spent once); scopes a
 * later one needs beyond those already checked are checked against the key's record, and a
 * missing one answers the same 403 `INSUFFICIENT_SCOPE`.
 */
export function middleware(store: Store | (() => Store), options?: MiddlewareOptions): Middleware;
/** Sends the JSON refusal of a verdict (status 401/403) on any node:http response. */
export function sendRefusal(res: ServerResponse, verdict: Verdict): void;

/** The loaded library. */
export const library: { readonly file: string; readonly version: string; readonly abiVersion: number };
/** The `KW_ABI_VERSION` this binding is written against. */
export const ABI_VERSION: number;
/** The header's `KW_*` constants (limits and defaults). */
export const constants: Readonly<{
  KW_ABI_VERSION: number;
  KW_MAX_OWNER_LEN: number;
  KW_MAX_NAME_LEN: number;
  KW_MAX_SCOPE_LEN: number;
  KW_MAX_SCOPES: number;
  KW_MAX_METADATA_LEN: number;
  KW_MAX_REASON_LEN: number;
  KW_MAX_PAGE_SIZE: number;
  KW_MAX_TAG_LEN: number;
  KW_KEY_ID_LEN: number;
  KW_SECRET_LEN: number;
  KW_MAX_KEY_LEN: number;
  KW_MAX_PRESENTED_LEN: number;
  KW_MAX_HEADER_NAME_LEN: number;
  KW_MAX_HEADER_VALUE_LEN: number;
  KW_MAX_HEADERS: number;
  KW_MAX_PATH_LEN: number;
  KW_MAX_USAGE_DAYS: number;
  KW_KEY_INFO_MAX_LEN: number;
  KW_DEFAULT_ROTATION_GRACE_MS: number;
  KW_FLUSH_MANUAL: bigint;
  KW_STORE_NONE: number;
}>;
