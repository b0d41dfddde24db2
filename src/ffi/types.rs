//! The C-visible types and constants: limits, flags, the options, verdict, new-key,
//! update, usage, credit and stats structs. Every struct is `#[repr(C)]` with fixed-size
//! fields (no `bool`, no `enum` fields: enumerations travel as `uint32_t`).

use std::ffi::c_char;

use crate::credential::{MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN};
use crate::key_format::{ID_LEN, MAX_KEY_LEN, MAX_TAG_LEN, SECRET_LEN};
use crate::{
    MAX_METADATA_LEN, MAX_NAME_LEN, MAX_OWNER_LEN, MAX_PAGE_SIZE, MAX_PRESENTED_LEN,
    MAX_REASON_LEN, MAX_SCOPE_LEN, MAX_SCOPES, MAX_USAGE_DAYS,
};

/// Longest owner id, in bytes.
pub const KW_MAX_OWNER_LEN: usize = 128;
/// Longest key name, in bytes.
pub const KW_MAX_NAME_LEN: usize = 256;
/// Longest scope, in bytes.
pub const KW_MAX_SCOPE_LEN: usize = 64;
/// Most scopes per key, and most required scopes per verify.
pub const KW_MAX_SCOPES: usize = 64;
/// Largest metadata, in bytes.
pub const KW_MAX_METADATA_LEN: usize = 4096;
/// Longest revoke reason, in bytes.
pub const KW_MAX_REASON_LEN: usize = 512;
/// Largest page of `kw_list`.
pub const KW_MAX_PAGE_SIZE: usize = 1000;
/// Longest prefix or env tag (`[a-z0-9]{1,16}`).
pub const KW_MAX_TAG_LEN: usize = 16;
/// Length of a public key id.
pub const KW_KEY_ID_LEN: usize = 16;
/// Length of a bare secret.
pub const KW_SECRET_LEN: usize = 32;
/// Longest well-formed key. A key buffer of `KW_MAX_KEY_LEN` bytes always suffices.
pub const KW_MAX_KEY_LEN: usize = 88;
/// Longest key or secret text verify looks at; longer text is answered `KW_REASON_MALFORMED`.
pub const KW_MAX_PRESENTED_LEN: usize = 1024;
/// Longest header name looked at (a longer one is not a credential header: ignored).
pub const KW_MAX_HEADER_NAME_LEN: usize = 256;
/// Longest credential header value (`KW_MALFORMED_KEY` beyond: client input, HTTP 401).
pub const KW_MAX_HEADER_VALUE_LEN: usize = 8192;
/// Most credential headers read from one request (`KW_AMBIGUOUS_CREDENTIAL` beyond: client
/// input, HTTP 401); other headers are not counted.
pub const KW_MAX_HEADERS: usize = 1024;
/// Longest database or pepper-file path, in bytes.
pub const KW_MAX_PATH_LEN: usize = 4096;
/// Longest range of days of `kw_usage_by_day`.
pub const KW_MAX_USAGE_DAYS: i32 = 3660;
/// Most new keys of one `kw_create_many` call.
pub const KW_MAX_CREATE_MANY: usize = 100_000;
/// Size of a buffer that always holds one key record as JSON (the `info` output of verify,
/// create, update, revoke and rotate, which require at least this much so a key is never
/// lost to a short buffer).
pub const KW_KEY_INFO_MAX_LEN: usize = 24576;
/// Longest text `kw_rate_headers` writes.
pub const KW_RATE_HEADERS_MAX_LEN: usize = 256;
/// Default rotation grace period, in milliseconds (24 hours).
pub const KW_DEFAULT_ROTATION_GRACE_MS: u64 = 24 * 3600 * 1000;
/// Longest `kw_options.upstream` URL, in bytes.
pub const KW_MAX_UPSTREAM_URL_LEN: usize = 4096;
/// `flush_interval_ms` value that turns the background flush off (usage is then written
/// only by `kw_flush` and `kw_close`).
pub const KW_FLUSH_MANUAL: u64 = u64::MAX;

const _: () = {
    assert!(KW_MAX_OWNER_LEN == MAX_OWNER_LEN);
    assert!(KW_MAX_NAME_LEN == MAX_NAME_LEN);
    assert!(KW_MAX_SCOPE_LEN == MAX_SCOPE_LEN);
    assert!(KW_MAX_SCOPES == MAX_SCOPES);
    assert!(KW_MAX_METADATA_LEN == MAX_METADATA_LEN);
    assert!(KW_MAX_REASON_LEN == MAX_REASON_LEN);
    assert!(KW_MAX_PAGE_SIZE == MAX_PAGE_SIZE);
    assert!(KW_MAX_TAG_LEN == MAX_TAG_LEN);
    assert!(KW_KEY_ID_LEN == ID_LEN);
    assert!(KW_SECRET_LEN == SECRET_LEN);
    assert!(KW_MAX_KEY_LEN == MAX_KEY_LEN);
    assert!(KW_MAX_PRESENTED_LEN == MAX_PRESENTED_LEN);
    assert!(KW_MAX_HEADER_NAME_LEN == MAX_HEADER_NAME_LEN);
    assert!(KW_MAX_HEADER_VALUE_LEN == MAX_HEADER_VALUE_LEN);
    assert!(KW_MAX_HEADERS == crate::credential::MAX_CREDENTIAL_HEADERS);
    assert!(KW_MAX_USAGE_DAYS == MAX_USAGE_DAYS);
};

/// Why a key was accepted or refused (`kw_verdict.reason`). Stable numbers.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_reason {
    /// The key is valid for this request (HTTP 200).
    KW_REASON_VALID = 0,
    /// The text is not a well-formed key (HTTP 401).
    KW_REASON_MALFORMED = 1,
    /// No key matches: unknown id or wrong secret, not told apart (HTTP 401).
    KW_REASON_NOT_FOUND = 2,
    /// The key was revoked (HTTP 401).
    KW_REASON_REVOKED = 3,
    /// The key has expired, including a rotated key past its grace period (HTTP 401).
    KW_REASON_EXPIRED = 4,
    /// The key lacks a scope the route requires (HTTP 403).
    KW_REASON_INSUFFICIENT_SCOPE = 5,
    /// The key's usage credits are exhausted (HTTP 403).
    KW_REASON_USAGE_EXCEEDED = 6,
    /// The key's owner is suspended (`kw_owner_suspend`): every key of it is refused (HTTP 403).
    KW_REASON_OWNER_SUSPENDED = 7,
    /// The key's or its owner's rate limit refuses the request for now (HTTP 429); with
    /// `KW_VERIFY_RATE_FIELDS`, `kw_verdict.retry_after_ms` says when to retry.
    KW_REASON_RATE_LIMITED = 8,
}

/// How processes share the database file (`kw_options.concurrency`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_concurrency {
    /// Any number of processes open the store at once. The default.
    KW_CONCURRENCY_MULTI_PROCESS = 0,
    /// This process is the only one: faster commits; other processes get `KW_LOCKED`.
    KW_CONCURRENCY_SINGLE_PROCESS = 1,
}

/// Flags of `kw_options.flags`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_open_flags {
    /// Keep the store open (warm verify index) for the life of the process, even after its
    /// last handle is closed. For hosts whose objects die with every request (PHP-FPM): each
    /// request then re-opens in well under a microsecond. Usage still flushes every
    /// `flush_interval_ms`; at process exit at most one interval of counts is lost, unless
    /// the host calls `kw_release_persistent` first.
    KW_OPEN_PERSISTENT = 1,
    /// `options` points to a whole `kw_options` of this header, with the `upstream` fields,
    /// and they are to be read. Without it the library reads only the fields before
    /// `upstream`, so a caller built against an older header, whose `kw_options` ends there,
    /// is never read past its end.
    KW_OPEN_UPSTREAM = 2,
}

/// Flags of the `flags` argument of `kw_verify_ex`, `kw_verify_pair_ex` and
/// `kw_verify_headers_ex`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_verify_flags {
    /// A dry run: the full verdict, but no use, refusal or last-used time is counted and no
    /// credit is spent (a limited key is `KW_REASON_VALID` if the credits available now cover
    /// the cost, `KW_REASON_USAGE_EXCEEDED` otherwise). For a dashboard's "test this key".
    KW_VERIFY_DRY_RUN = 1,
    /// `out_verdict` points to a whole `kw_verdict` of this header, with the rate-limit
    /// fields (`rate_scope` onwards), and they are to be filled. Without it only the fields
    /// before `rate_scope` are written, so a caller built against an older header, whose
    /// `kw_verdict` ends there, is never written past its end.
    KW_VERIFY_RATE_FIELDS = 2,
}

/// Every `kw_verify_flags` bit this library knows.
pub(crate) const KW_VERIFY_KNOWN_FLAGS: u32 =
    kw_verify_flags::KW_VERIFY_DRY_RUN as u32 | kw_verify_flags::KW_VERIFY_RATE_FIELDS as u32;

/// Which keys `kw_list` returns.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_state_filter {
    /// Every key.
    KW_STATE_ALL = 0,
    /// Neither revoked nor expired.
    KW_STATE_ACTIVE = 1,
    /// Revoked.
    KW_STATE_REVOKED = 2,
    /// Expired and not revoked.
    KW_STATE_EXPIRED = 3,
}

/// How often a limited key's credits refill (`kw_credits.refill_interval`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_refill_interval {
    /// No refill.
    KW_REFILL_NONE = 0,
    /// At the start of every UTC day.
    KW_REFILL_DAILY = 1,
    /// At the start of every UTC month.
    KW_REFILL_MONTHLY = 2,
}

/// Bits of `kw_key_update.fields`: which fields an update changes.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_update_field {
    /// Set `name`.
    KW_UPDATE_NAME = 1,
    /// Replace the scope set with `scopes`.
    KW_UPDATE_SCOPES = 2,
    /// Replace `metadata`.
    KW_UPDATE_METADATA = 4,
    /// Set `expires_at_ms` (0 removes the expiry).
    KW_UPDATE_EXPIRES_AT = 8,
    /// Set `credits` (NULL makes the key unlimited).
    KW_UPDATE_CREDITS = 16,
}

/// What kind of credential `kw_extract_credential` found.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_credential_kind {
    /// A full key (`x-api-key`, `Authorization: Bearer` or `Basic`).
    KW_CREDENTIAL_KEY = 1,
    /// A public id + secret pair (`X-Api-Token-Id` + `X-Api-Token-Secret-Key`).
    KW_CREDENTIAL_PAIR = 2,
}

/// Why a text is not a well-formed key (`kw_parsed_key.error`). Stable numbers; the names
/// (`kw_key_error_name`) are those of the shared test vectors.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_key_error {
    /// Well-formed.
    KW_KEY_OK = 0,
    /// `empty`: the text is empty.
    KW_KEY_EMPTY = 1,
    /// `too_long`: longer than any valid key.
    KW_KEY_TOO_LONG = 2,
    /// `bad_structure`: not `<prefix>_<env>_<body>` or `<prefix>_<body>`.
    KW_KEY_BAD_STRUCTURE = 3,
    /// `bad_prefix`: the prefix is invalid or not the expected one.
    KW_KEY_BAD_PREFIX = 4,
    /// `bad_env`: the env tag is not `[a-z0-9]{1,16}`.
    KW_KEY_BAD_ENV = 5,
    /// `bad_length`: the body has the wrong length.
    KW_KEY_BAD_LENGTH = 6,
    /// `not_base62`: the body holds a character outside base62.
    KW_KEY_NOT_BASE62 = 7,
    /// `bad_checksum`: the checksum does not match.
    KW_KEY_BAD_CHECKSUM = 8,
}

/// Bits of `kw_verdict.key_flags`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_key_flag {
    /// The key has usage credits.
    KW_KEY_LIMITED = 1,
    /// The key has been revoked.
    KW_KEY_REVOKED_FLAG = 2,
    /// The key was replaced by rotation.
    KW_KEY_ROTATED = 4,
    /// The key or its owner is rate-limited (the rate fields, if asked for, are set).
    KW_KEY_RATE_LIMITED = 8,
}

/// A borrowed byte string: `ptr` to `len` bytes, not NUL-terminated. For optional fields,
/// `{NULL, 0}` means absent; `NULL` with a non-zero length is `KW_NULL_ARGUMENT`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_str {
    /// First byte (may be NULL only when absent).
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

/// One HTTP request header (name and value as byte strings).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_header {
    /// Header name (any case; surrounding whitespace ignored).
    pub name: *const c_char,
    /// Length of `name`.
    pub name_len: usize,
    /// Header value.
    pub value: *const c_char,
    /// Length of `value`.
    pub value_len: usize,
}

/// Options of `kw_open`. An all-zero struct (apart from `path`) means every default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_options {
    /// Database path (bytes, no NUL; required; at most `KW_MAX_PATH_LEN`). The directory must
    /// exist; the file is created if missing.
    pub path: *const c_char,
    /// Length of `path`.
    pub path_len: usize,
    /// The pepper: 32 raw bytes or 64 hexadecimal characters; NULL = not given.
    pub pepper: *const u8,
    /// Length of `pepper`.
    pub pepper_len: usize,
    /// Path of a pepper file (64 hex characters or 32 bytes, mode 0600); NULL = not given.
    /// With neither `pepper` nor `pepper_file`, `<path>.pepper` is used (created with a new
    /// store). Giving both is `KW_INVALID_ARGUMENT`.
    pub pepper_file: *const c_char,
    /// Length of `pepper_file`.
    pub pepper_file_len: usize,
    /// Key prefix of a new store (`[a-z0-9]{1,16}`); NULL = the stored one, or `kw`.
    pub prefix: *const c_char,
    /// Length of `prefix`.
    pub prefix_len: usize,
    /// A `kw_concurrency` value (0 = multi-process).
    pub concurrency: u32,
    /// `kw_open_flags` bits; unknown bits are `KW_INVALID_ARGUMENT`.
    pub flags: u32,
    /// Most active keys per owner; 0 = unlimited.
    pub max_active_keys_per_owner: u32,
    /// Non-zero: refuse to revoke or delete an owner's last active key.
    pub keep_last_key: u32,
    /// Longest key lifetime in ms; 0 = unlimited (when set, every key needs an expiry).
    pub max_lifetime_ms: u64,
    /// Background usage flush interval in ms; 0 = default (1000); `KW_FLUSH_MANUAL` = off.
    /// After a long flush the next waits 100 times its duration (at most 30 s, unless the
    /// interval is longer).
    pub flush_interval_ms: u64,
    /// Most key records this process keeps decoded in front of the shared verify table for
    /// the Rust API's verifies (the C ABI's verifies read records in place: only calls
    /// asking for the JSON record decode); 0 = default (65 536).
    pub index_capacity: u64,
    // Appended for several hosts: read only with `KW_OPEN_UPSTREAM` in `flags` (a
    // `kw_options` of an older header ends here).
    /// Connection URL of the upstream PostgreSQL this store replicates (UTF-8, at most
    /// `KW_MAX_UPSTREAM_URL_LEN` bytes; `postgresql://user@host/db` or `key=value` form);
    /// NULL = none. With it, `kw_create`, `kw_create_many`, `kw_update`, `kw_revoke`,
    /// `kw_delete`, `kw_rotate`, `kw_set_rate_limit`, `kw_set_owner_rate_limit`, the
    /// `kw_owner_*` changes and `kw_import_legacy` are written to PostgreSQL first and applied
    /// to this store once it committed (README, "Several hosts"). Opening connects to nothing: the first
    /// of those calls does, and a later call reconnects after a failure; verifies never use
    /// it. A library built without PostgreSQL support refuses it (`KW_UPSTREAM_UNSUPPORTED`).
    pub upstream: *const c_char,
    /// Length of `upstream`.
    pub upstream_len: usize,
}

/// The result of a verify: fixed size, filled without allocation.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_verdict {
    /// A `kw_reason` value.
    pub reason: u32,
    /// HTTP status to answer: 200, 401 or 403.
    pub http_status: u32,
    /// 1 when the key is known and its secret was right (the fields below are set, even for
    /// a refused key: revoked, expired, insufficient scope, usage exceeded); else 0.
    pub key_found: u32,
    /// `kw_key_flag` bits.
    pub key_flags: u32,
    /// Creation time, ms since the epoch (0 when `key_found` is 0).
    pub created_at_ms: i64,
    /// Expiry, ms since the epoch; 0 = never.
    pub expires_at_ms: i64,
    /// Public key id, NUL-terminated ("" when `key_found` is 0).
    pub key_id: [c_char; 24],
    /// Env tag, NUL-terminated ("" when none).
    pub env: [c_char; 24],
    /// Owner, NUL-terminated (at most `KW_MAX_OWNER_LEN` bytes).
    pub owner: [c_char; 136],
    // Appended for rate limits: written only when the verify was given
    // `KW_VERIFY_RATE_FIELDS` (a `kw_verdict` of an older header ends here).
    /// A `kw_rate_scope`: whose limit the fields below describe; 0 = neither the key nor its
    /// owner is rate-limited (or the key was refused before the rate was checked).
    pub rate_scope: u32,
    /// Reserved, 0.
    pub rate_reserved: u32,
    /// For `KW_REASON_RATE_LIMITED`: milliseconds until the next request would be accepted
    /// (≥ 1); else 0. `Retry-After` is this in seconds, rounded up.
    pub retry_after_ms: u64,
    /// Requests per period of the limit (the `q` of `RateLimit-Policy`).
    pub rate_limit: u64,
    /// The limit's period in ms (the `w` of `RateLimit-Policy`, in seconds rounded up).
    pub rate_period_ms: u64,
    /// The limit's burst.
    pub rate_burst: u64,
    /// Requests that could pass right now (the `r` of `RateLimit`).
    pub rate_remaining: u64,
    /// Milliseconds until a full burst is available again (the `t` of `RateLimit`, in
    /// seconds rounded up).
    pub rate_reset_ms: u64,
}

/// Whose rate limit `kw_verdict.rate_*` describes.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kw_rate_scope {
    /// Not rate-limited.
    KW_RATE_NONE = 0,
    /// The key's own limit.
    KW_RATE_KEY = 1,
    /// The limit its owner shares among its keys.
    KW_RATE_OWNER = 2,
}

/// A rate limit: `rate` requests per `period_ms`, bursts of up to `burst` (`kw_set_rate_limit`,
/// `kw_set_owner_rate_limit`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_rate_limit {
    /// Requests per period (≥ 1, at most one per nanosecond).
    pub rate: u64,
    /// The period in ms (1 ms to 366 days).
    pub period_ms: u64,
    /// Requests that may pass at once from rest (1 to 1,000,000,000); 0 = `rate`.
    pub burst: u64,
}

impl kw_verdict {
    /// An all-zero verdict.
    pub const fn zeroed() -> kw_verdict {
        kw_verdict {
            reason: 0,
            http_status: 0,
            key_found: 0,
            key_flags: 0,
            created_at_ms: 0,
            expires_at_ms: 0,
            key_id: [0; 24],
            env: [0; 24],
            owner: [0; 136],
            rate_scope: 0,
            rate_reserved: 0,
            retry_after_ms: 0,
            rate_limit: 0,
            rate_period_ms: 0,
            rate_burst: 0,
            rate_remaining: 0,
            rate_reset_ms: 0,
        }
    }
}

/// Usage credits of a new or updated key.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_credits {
    /// Credits available now (below 2^40).
    pub remaining: u64,
    /// Credits after each refill (below 2^40); ignored without a refill interval.
    pub refill_amount: u64,
    /// A `kw_refill_interval` value.
    pub refill_interval: u32,
    /// Default cost of one verify; 0 = 1.
    pub cost: u32,
}

/// What `kw_create` creates.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_new_key {
    /// Owner (account or workspace id): required, non-blank, at most `KW_MAX_OWNER_LEN`.
    pub owner: kw_str,
    /// Human name (optional, at most `KW_MAX_NAME_LEN`).
    pub name: kw_str,
    /// Scopes granted (may be NULL when `scopes_len` is 0).
    pub scopes: *const kw_str,
    /// Number of scopes (at most `KW_MAX_SCOPES`, each at most `KW_MAX_SCOPE_LEN`).
    pub scopes_len: usize,
    /// Env tag written into the key (`[a-z0-9]{1,16}`, e.g. `live`); absent = none.
    pub env: kw_str,
    /// Metadata bytes (often JSON; at most `KW_MAX_METADATA_LEN`); may be NULL.
    pub metadata: *const u8,
    /// Length of `metadata`.
    pub metadata_len: usize,
    /// Expiry in ms since the epoch; 0 = never.
    pub expires_at_ms: i64,
    /// Usage credits; NULL = unlimited.
    pub credits: *const kw_credits,
}

/// One key made by `kw_create_many`. Holds a secret: wipe it once handed out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct kw_created_key {
    /// The full key, NUL-terminated (at most `KW_MAX_KEY_LEN` bytes before the NUL).
    pub key: [c_char; 96],
    /// Length of `key` in bytes (without the NUL).
    pub key_len: usize,
    /// Public key id, NUL-terminated.
    pub id: [c_char; 24],
}

impl kw_created_key {
    /// An all-zero entry.
    pub const fn zeroed() -> kw_created_key {
        kw_created_key {
            key: [0; 96],
            key_len: 0,
            id: [0; 24],
        }
    }
}

impl std::fmt::Debug for kw_created_key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("kw_created_key")
            .field("key", &"<redacted>")
            .field("key_len", &self.key_len)
            .finish_non_exhaustive()
    }
}

/// Changes of `kw_update`: only the fields named in `fields` are changed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_key_update {
    /// `kw_update_field` bits; unknown bits are `KW_INVALID_ARGUMENT`.
    pub fields: u32,
    /// New name (`KW_UPDATE_NAME`).
    pub name: kw_str,
    /// New scopes (`KW_UPDATE_SCOPES`).
    pub scopes: *const kw_str,
    /// Number of new scopes.
    pub scopes_len: usize,
    /// New metadata (`KW_UPDATE_METADATA`).
    pub metadata: *const u8,
    /// Length of `metadata`.
    pub metadata_len: usize,
    /// New expiry in ms since the epoch, 0 = none (`KW_UPDATE_EXPIRES_AT`).
    pub expires_at_ms: i64,
    /// New credits, NULL = unlimited (`KW_UPDATE_CREDITS`).
    pub credits: *const kw_credits,
}

/// A key's usage (`kw_usage`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kw_usage_stats {
    /// Accepted verifies.
    pub uses: u64,
    /// Refused verifies where the key id was known.
    pub refused: u64,
    /// Latest accepted verify, ms since the epoch; 0 = never.
    pub last_used_ms: i64,
}

/// A key's usage credits (`kw_credit_balance`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kw_credit_balance {
    /// 1 for a limited key (the fields below are set); 0 for an unlimited key.
    pub limited: u32,
    /// Default cost of one verify.
    pub cost: u32,
    /// Credits left now.
    pub remaining: u64,
    /// Credits after each refill (0 without refill).
    pub refill_amount: u64,
    /// A `kw_refill_interval` value.
    pub refill_interval: u32,
    /// Reserved, 0.
    pub reserved: u32,
}

/// This process's counters for a store (`kw_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kw_store_stats {
    /// Write transactions this process committed on the store.
    pub commits: u64,
    /// Times this process reloaded changes committed elsewhere.
    pub refreshes: u64,
    /// Keys in this process's verify index.
    pub indexed_keys: u64,
    /// Keys with usage not yet flushed.
    pub dirty_keys: u64,
    /// 1 when the index holds every key (a miss is answered from memory).
    pub index_complete: u32,
    /// Reserved, 0.
    pub reserved: u32,
}

/// A replica store's state against its upstream PostgreSQL (`kw_replica_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kw_store_replica_stats {
    /// 1 when the store replicates an upstream (it holds an upstream cursor, or was opened
    /// with `upstream`); 0 for a store of its own (every other field is then 0).
    pub is_replica: u32,
    /// 1 when the host's replicator (`keyward replicate`) was connected at its last report.
    pub connected: u32,
    /// The last upstream change sequence applied to the store.
    pub cursor: u64,
    /// When the store was last known up to date (ms since the epoch); 0 = never.
    pub synced_at_ms: i64,
    /// Milliseconds since then; -1 = never synced. A connected replicator confirms it every
    /// poll interval (1 s by default).
    pub staleness_ms: i64,
    /// When the replicator last wrote its status (ms since the epoch); 0 = never.
    pub reported_at_ms: i64,
}

/// The shared verify table as this process sees it (`kw_table_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct kw_store_table_stats {
    /// Generation (a random number naming the table file in use); 0 = none mapped.
    pub generation: u64,
    /// Slots of the lookup array.
    pub slots: u64,
    /// Keys in the table.
    pub keys: u64,
    /// Bytes of the part every verify touches (slots, usage cells).
    pub lookup_bytes: u64,
    /// Bytes of the whole file (with the key records).
    pub file_bytes: u64,
    /// Key records this process keeps decoded.
    pub cached_records: u64,
    /// Generations this process built (missing, damaged or outgrown table).
    pub rebuilds: u64,
    /// Slots a killed writer left in doubt that this process repaired.
    pub slots_repaired: u64,
    /// 1 when this process maps the table.
    pub mapped: u32,
    /// Reserved, 0.
    pub reserved: u32,
}

/// A key split into its parts by `kw_parse_key`. Holds the secret: wipe it after use.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kw_parsed_key {
    /// 1 when well-formed (the fields below are set); else 0 and `error` says why.
    pub valid: u32,
    /// A `kw_key_error` value.
    pub error: u32,
    /// Prefix, NUL-terminated.
    pub prefix: [c_char; 24],
    /// Env tag, NUL-terminated ("" when none).
    pub env: [c_char; 24],
    /// Public id, NUL-terminated.
    pub id: [c_char; 24],
    /// Secret, NUL-terminated.
    pub secret: [c_char; 40],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{CreditTerms, KeyInfo, Refill, RefillInterval};

    /// `KW_KEY_INFO_MAX_LEN` holds the largest record the limits allow: every text field at
    /// its limit and made of characters JSON escapes to two bytes.
    #[test]
    fn key_info_max_len_bounds_every_record() {
        let worst = |n: usize| "\"".repeat(n);
        let info = KeyInfo {
            id: "A".repeat(KW_KEY_ID_LEN),
            owner: worst(KW_MAX_OWNER_LEN),
            name: worst(KW_MAX_NAME_LEN),
            scopes: (0..KW_MAX_SCOPES)
                .map(|_| worst(KW_MAX_SCOPE_LEN))
                .collect(),
            env: Some("e".repeat(KW_MAX_TAG_LEN)),
            created_at: i64::MIN,
            expires_at: Some(i64::MIN),
            metadata: vec![0xff; KW_MAX_METADATA_LEN],
            revoked_at: Some(i64::MIN),
            revoke_reason: Some(worst(KW_MAX_REASON_LEN)),
            rotated_from: Some("A".repeat(KW_KEY_ID_LEN)),
            rotated_to: Some("A".repeat(KW_KEY_ID_LEN)),
            credits: Some(CreditTerms {
                refill: Some(Refill {
                    amount: u64::MAX,
                    interval: RefillInterval::Monthly,
                }),
                cost: u32::MAX,
            }),
            rate_limit: Some(crate::RateLimit {
                rate: u64::MAX,
                period_ms: u64::MAX,
                burst: u64::MAX,
            }),
            serial: u64::MAX,
            legacy: Some(crate::legacy::LegacyOrigin {
                scheme: crate::legacy::LegacyScheme::BetterAuth,
                source_id: worst(crate::store::MAX_LEGACY_SOURCE_ID_LEN),
                upgraded_at: Some(i64::MIN),
            }),
        };
        let len = serde_json::to_vec(&info).unwrap().len();
        assert!(len <= KW_KEY_INFO_MAX_LEN, "{len} > {KW_KEY_INFO_MAX_LEN}");
    }
}
