//! The hot path: verify a full key, an id + secret pair, or the credential in request
//! headers, into a fixed-size `kw_verdict` with no allocation and no JSON (the key's full
//! record as JSON is optional, into a caller buffer).

use std::ffi::c_char;

use super::args::{self, OutBuf, out_ptr, put};
use super::handles::{self, kw_store};
use super::panic::guard;
use super::status::kw_status;
use super::types::{
    KW_KEY_INFO_MAX_LEN, KW_MAX_SCOPES, KW_VERIFY_KNOWN_FLAGS, kw_header, kw_key_flag, kw_str,
    kw_verdict, kw_verify_flags,
};
use crate::clock::Timestamp;
use crate::credential::FoundCredential;
use crate::rate_limit::{RateLimit, RateScope, RateStatus};
use crate::schema::KeyInfo;
use crate::store::VerdictRef;
use crate::verdict::{Reason, Verdict};
use crate::{Presented, Store, VerifyRequest};

/// Required scopes as `&str`s: up to [`INLINE_SCOPES`] in a stack array (no allocation on
/// the hot path), more in a vector.
enum Scopes<'a> {
    Inline([&'a str; INLINE_SCOPES], usize),
    Spilled(Vec<&'a str>),
}

/// Required scopes held without allocation.
const INLINE_SCOPES: usize = 8;

impl<'a> Scopes<'a> {
    /// # Safety
    /// `ptr` must be NULL or point to `len` valid `kw_str`s whose bytes stay valid for `'a`.
    #[inline]
    unsafe fn new(ptr: *const kw_str, len: usize) -> Result<Scopes<'a>, kw_status> {
        // SAFETY: forwarded contract.
        let raw = unsafe { args::str_array(ptr, len) }?;
        if raw.len() > KW_MAX_SCOPES {
            return Err(kw_status::KW_TOO_LONG);
        }
        if raw.len() <= INLINE_SCOPES {
            let mut items = [""; INLINE_SCOPES];
            for (slot, s) in items.iter_mut().zip(raw) {
                // SAFETY: forwarded contract.
                *slot = unsafe { args::str_field(s) }?;
            }
            return Ok(Scopes::Inline(items, raw.len()));
        }
        let mut items = Vec::with_capacity(raw.len());
        for s in raw {
            // SAFETY: forwarded contract.
            items.push(unsafe { args::str_field(s) }?);
        }
        Ok(Scopes::Spilled(items))
    }

    #[inline]
    fn as_slice(&self) -> &[&'a str] {
        match self {
            Scopes::Inline(items, len) => &items[..*len],
            Scopes::Spilled(items) => items,
        }
    }
}

/// The verify options shared by the three verify functions.
fn at_of(at_ms: i64) -> Result<Option<Timestamp>, kw_status> {
    match at_ms {
        0 => Ok(None),
        ms if ms < 0 => Err(kw_status::KW_INVALID_ARGUMENT),
        ms => Ok(Some(Timestamp::from_millis(ms))),
    }
}

/// Whether `flags` (`kw_verify_flags` bits) ask for a dry run; unknown bits are
/// `KW_INVALID_ARGUMENT`.
fn dry_run_of(flags: u32) -> Result<bool, kw_status> {
    if flags & !KW_VERIFY_KNOWN_FLAGS != 0 {
        return Err(kw_status::KW_INVALID_ARGUMENT);
    }
    Ok(flags & kw_verify_flags::KW_VERIFY_DRY_RUN as u32 != 0)
}

fn rate_fields_of(flags: u32) -> bool {
    flags & kw_verify_flags::KW_VERIFY_RATE_FIELDS as u32 != 0
}

/// Bytes of a `kw_verdict` before the rate fields: all a caller of an older header has.
const VERDICT_BASE_LEN: usize = std::mem::offset_of!(kw_verdict, rate_scope);

/// The verdict for key text that is not UTF-8: client input like any other malformed key,
/// `KW_REASON_MALFORMED` (nothing looked up or counted), after the same checks of the
/// route's scopes as a verify of text (a bad scope is still the application's error).
fn malformed(_store: &crate::Store, scopes: &[&str]) -> Result<Verdict, kw_status> {
    crate::store::check_scopes(scopes)?;
    Ok(Verdict::refused(Reason::Malformed))
}

/// Checked output pointers of a verify (before anything is verified).
struct VerifyOut {
    verdict: *mut kw_verdict,
    info: Option<OutBuf>,
    /// Whether the caller's `kw_verdict` has the rate fields (`KW_VERIFY_RATE_FIELDS`).
    rate_fields: bool,
}

impl VerifyOut {
    /// # Safety
    /// `info_len` must be writable if not NULL.
    unsafe fn new(
        verdict: *mut kw_verdict,
        info_buf: *mut u8,
        info_cap: usize,
        info_len: *mut usize,
    ) -> Result<VerifyOut, kw_status> {
        let verdict = out_ptr(verdict)?;
        let info = OutBuf::optional(info_buf, info_cap, info_len)?;
        if let Some(info) = &info {
            // Before verifying: a verify counts usage and may spend credits, so it must not
            // be repeated because of a short buffer.
            // SAFETY: forwarded contract.
            unsafe { info.require(KW_KEY_INFO_MAX_LEN) }?;
        }
        Ok(VerifyOut {
            verdict,
            info,
            rate_fields: false,
        })
    }

    /// Fills the rate fields too (the caller passed `KW_VERIFY_RATE_FIELDS`).
    fn with_rate_fields(mut self, flags: u32) -> VerifyOut {
        self.rate_fields = rate_fields_of(flags);
        self
    }

    /// Verifies `request` on `store` and writes the verdict: read in place from the shared
    /// table (no record decoded) unless the caller asked for the JSON record.
    ///
    /// # Safety
    /// As [`VerifyOut::write`].
    unsafe fn verify(&self, store: &Store, request: &VerifyRequest<'_>) -> Result<(), kw_status> {
        if self.info.is_some() {
            let verdict = store.verify_request(request)?;
            // SAFETY: forwarded contract.
            return unsafe { self.write(&verdict) };
        }
        // SAFETY: forwarded contract.
        store.verify_request_with(request, |verdict| unsafe { self.write_ref(verdict, None) })?
    }

    /// Writes the verdict (and the record JSON if asked for).
    ///
    /// # Safety
    /// The pointers must be writable (the caller's contract).
    unsafe fn write(&self, verdict: &Verdict) -> Result<(), kw_status> {
        // SAFETY: as this function's own contract.
        unsafe { self.write_ref(&verdict.as_ref(), verdict.key.as_deref()) }
    }

    /// Writes a verdict read in place (`info`, the decoded record, only where the caller asked
    /// for the JSON record: the verify then took the decoding path).
    ///
    /// # Safety
    /// As [`VerifyOut::write`].
    unsafe fn write_ref(
        &self,
        verdict: &VerdictRef<'_>,
        info: Option<&KeyInfo>,
    ) -> Result<(), kw_status> {
        let mut out = kw_verdict::zeroed();
        out.reason = verdict.reason as u32;
        out.http_status = verdict.reason.http_status() as u32;
        if let Some(key) = verdict.key {
            out.key_found = 1;
            let mut flags = 0;
            if key.limited() {
                flags |= kw_key_flag::KW_KEY_LIMITED as u32;
            }
            if key.revoked() {
                flags |= kw_key_flag::KW_KEY_REVOKED_FLAG as u32;
            }
            if key.rotated() {
                flags |= kw_key_flag::KW_KEY_ROTATED as u32;
            }
            if verdict.rate.is_some() {
                flags |= kw_key_flag::KW_KEY_RATE_LIMITED as u32;
            }
            out.key_flags = flags;
            out.created_at_ms = key.created_at();
            out.expires_at_ms = key.expires_at().unwrap_or(0);
            args::fill_cstr(&mut out.key_id, key.id());
            args::fill_cstr(&mut out.env, key.env().unwrap_or(""));
            args::fill_cstr(&mut out.owner, key.owner());
        }
        if let Some(buf) = &self.info {
            match info {
                // SAFETY: caller's contract on the buffer.
                Some(info) => unsafe { buf.write_json(info) }?,
                // SAFETY: as above.
                None => unsafe { buf.write(&[]) }?,
            }
        }
        if let Some(rate) = &verdict.rate {
            out.rate_scope = rate.scope as u32;
            out.retry_after_ms = rate.retry_after_ms.unwrap_or(0);
            out.rate_limit = rate.limit.rate;
            out.rate_period_ms = rate.limit.period_ms;
            out.rate_burst = rate.limit.burst;
            out.rate_remaining = rate.remaining;
            out.rate_reset_ms = rate.reset_ms;
        }
        if self.rate_fields {
            // SAFETY: checked non-NULL in `new`; a whole `kw_verdict` by contract of the flag.
            unsafe { put(self.verdict, out) };
        } else {
            // SAFETY: checked non-NULL in `new`; writable for the fields before the rate fields
            // (every header's `kw_verdict` has them); `out` is a whole local struct.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (&raw const out).cast::<u8>(),
                    self.verdict.cast::<u8>(),
                    VERDICT_BASE_LEN,
                )
            };
        }
        Ok(())
    }
}

/// Verifies a full key against the scopes a route requires.
///
/// - `key`, `key_len`: the key as sent, any bytes (required; text longer than
///   `KW_MAX_PRESENTED_LEN`, not UTF-8 or not a well-formed key is client input, answered
///   `KW_REASON_MALFORMED`, not an error);
/// - `scopes`, `scopes_len`: required scopes, all needed (NULL when 0; at most
///   `KW_MAX_SCOPES`, else `KW_TOO_LONG`; each UTF-8 (`KW_INVALID_UTF8`), non-empty and
///   without whitespace (`KW_INVALID_ARGUMENT`), at most `KW_MAX_SCOPE_LEN` bytes
///   (`KW_TOO_LONG`): the application's errors, whatever the key);
/// - `cost`: credits to spend if the key is limited; 0 = the key's own cost;
/// - `at_ms`: the time to judge expiry at, ms since the epoch; 0 = now;
/// - `out_verdict`: required; receives the verdict;
/// - `info_buf`, `info_cap`, `out_info_len`: optional (`NULL, 0, NULL` on the hot path);
///   when given, `info_cap` must be at least `KW_KEY_INFO_MAX_LEN` (else
///   `KW_BUFFER_TOO_SMALL` with `*out_info_len = KW_KEY_INFO_MAX_LEN`, checked before
///   anything is verified) and the key's full public record is written as JSON (0 bytes
///   when the key is unknown).
///
/// A refused key is `KW_OK` with a non-zero `reason`; a non-`KW_OK` status means the call
/// itself failed: what the application passed (`KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`,
/// `KW_TOO_LONG` or `KW_INVALID_ARGUMENT` for a scope, `KW_INVALID_ARGUMENT` for a negative
/// `at_ms`, `KW_CLOSED`) or the store (`KW_STORAGE`), never what the client sent.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_verify(
    store: kw_store,
    key: *const c_char,
    key_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    cost: u32,
    at_ms: i64,
    out_verdict: *mut kw_verdict,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    // SAFETY: forwarded contract.
    unsafe {
        kw_verify_ex(
            store,
            key,
            key_len,
            scopes,
            scopes_len,
            cost,
            at_ms,
            0,
            out_verdict,
            info_buf,
            info_cap,
            out_info_len,
        )
    }
}

/// `kw_verify` with `flags`: `kw_verify_flags` bits (`KW_VERIFY_DRY_RUN`), 0 = none (then
/// exactly `kw_verify`); unknown bits are `KW_INVALID_ARGUMENT`. Everything else as
/// `kw_verify`.
///
/// # Safety
/// As `kw_verify`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_verify_ex(
    store: kw_store,
    key: *const c_char,
    key_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    cost: u32,
    at_ms: i64,
    flags: u32,
    out_verdict: *mut kw_verdict,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = VerifyOut::new(out_verdict, info_buf, info_cap, out_info_len)?
                .with_rate_fields(flags);
            let key = args::bytes(key.cast(), key_len)?;
            let scopes = Scopes::new(scopes, scopes_len)?;
            let at = at_of(at_ms)?;
            let dry_run = dry_run_of(flags)?;
            handles::with(store, |s| match std::str::from_utf8(key) {
                Ok(key) => out.verify(
                    s,
                    &VerifyRequest {
                        credential: Presented::Key(key),
                        scopes: scopes.as_slice(),
                        cost: (cost != 0).then_some(cost),
                        at,
                        dry_run,
                    },
                ),
                Err(_) => out.write(&malformed(s, scopes.as_slice())?),
            })
        }
    })
}

/// The hot path in six arguments, for FFI layers that pay per argument (PHP FFI, cffi):
/// verifies a full key against the required scopes, now, at the key's own cost, without
/// the JSON record. Arguments and answers as `kw_verify` (key text that is not UTF-8 is
/// `KW_REASON_MALFORMED` there too).
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT` or `KW_TOO_LONG` (a
/// scope), `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; `out_verdict` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_verify_key(
    store: kw_store,
    key: *const c_char,
    key_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    out_verdict: *mut kw_verdict,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = VerifyOut::new(out_verdict, std::ptr::null_mut(), 0, std::ptr::null_mut())?;
            let key = args::bytes(key.cast(), key_len)?;
            let scopes = Scopes::new(scopes, scopes_len)?;
            handles::with(store, |s| match std::str::from_utf8(key) {
                Ok(text) => out.verify(s, &VerifyRequest::key(text, scopes.as_slice())),
                Err(_) => out.write(&malformed(s, scopes.as_slice())?),
            })
        }
    })
}

/// `kw_verify_key` with `flags` (`kw_verify_flags`: `KW_VERIFY_DRY_RUN`,
/// `KW_VERIFY_RATE_FIELDS`; unknown bits are `KW_INVALID_ARGUMENT`): the bindings' hot path,
/// which passes `KW_VERIFY_RATE_FIELDS` to learn a rate-limited key's state in the same call.
/// Arguments, answers and errors otherwise as `kw_verify_key`.
///
/// # Safety
/// As `kw_verify_key`; with `KW_VERIFY_RATE_FIELDS`, `out_verdict` is a whole `kw_verdict`
/// of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_verify_key_ex(
    store: kw_store,
    key: *const c_char,
    key_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    flags: u32,
    out_verdict: *mut kw_verdict,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = VerifyOut::new(out_verdict, std::ptr::null_mut(), 0, std::ptr::null_mut())?
                .with_rate_fields(flags);
            let key = args::bytes(key.cast(), key_len)?;
            let scopes = Scopes::new(scopes, scopes_len)?;
            let dry_run = dry_run_of(flags)?;
            handles::with(store, |s| match std::str::from_utf8(key) {
                Ok(text) => out.verify(
                    s,
                    &VerifyRequest {
                        dry_run,
                        ..VerifyRequest::key(text, scopes.as_slice())
                    },
                ),
                Err(_) => out.write(&malformed(s, scopes.as_slice())?),
            })
        }
    })
}

/// Writes the HTTP response header fields for a verdict filled with `KW_VERIFY_RATE_FIELDS`
/// into `buf`, one `Name: value\r\n` line each: `RateLimit-Policy` and `RateLimit`
/// (draft-ietf-httpapi-ratelimit-headers) when `rate_scope` is set, plus `Retry-After` (whole
/// seconds, rounded up) for `KW_REASON_RATE_LIMITED`; nothing (length 0) for a key without a
/// rate limit. The one formatting every binding's middleware uses. At most
/// `KW_RATE_HEADERS_MAX_LEN` bytes. Errors: `KW_NULL_ARGUMENT`, `KW_BUFFER_TOO_SMALL` (with
/// the length needed).
///
/// # Safety
/// `verdict` a valid `kw_verdict` of this header; `buf` NULL (with `cap` 0) or writable for
/// `cap` bytes; `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_rate_headers(
    verdict: *const kw_verdict,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        if verdict.is_null() {
            return Err(kw_status::KW_NULL_ARGUMENT);
        }
        // SAFETY: caller's contract.
        let v = unsafe { &*verdict };
        let out = OutBuf::new(buf, cap, out_len)?;
        let text = match rate_status_of(v) {
            Some(status) => {
                let mut text = String::new();
                for (name, value) in (Verdict {
                    reason: reason_of_raw(v.reason),
                    key: None,
                    rate: Some(status),
                })
                .rate_headers()
                {
                    text.push_str(name);
                    text.push_str(": ");
                    text.push_str(&value);
                    text.push_str("\r\n");
                }
                text
            }
            None => String::new(),
        };
        // SAFETY: caller's contract on the buffer.
        unsafe { out.write(text.as_bytes()) }
    })
}

/// The rate status a `kw_verdict` carries (`None` when `rate_scope` is 0 or unknown).
fn rate_status_of(v: &kw_verdict) -> Option<RateStatus> {
    let scope = match v.rate_scope {
        1 => RateScope::Key,
        2 => RateScope::Owner,
        _ => return None,
    };
    Some(RateStatus {
        scope,
        limit: RateLimit {
            rate: v.rate_limit,
            period_ms: v.rate_period_ms,
            burst: v.rate_burst,
        },
        remaining: v.rate_remaining,
        reset_ms: v.rate_reset_ms,
        retry_after_ms: (v.reason == Reason::RateLimited as u32).then_some(v.retry_after_ms),
    })
}

fn reason_of_raw(value: u32) -> Reason {
    Reason::ALL
        .iter()
        .copied()
        .find(|r| *r as u32 == value)
        .unwrap_or(Reason::NotFound)
}

/// Verifies a (public id, secret) pair, as sent in `X-Api-Token-Id` /
/// `X-Api-Token-Secret-Key` (the full key is also accepted as the secret if its id matches).
/// Arguments, outputs and errors as `kw_verify` (an id or secret that is not UTF-8 is
/// `KW_REASON_MALFORMED`).
///
/// # Safety
/// As `kw_verify`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_verify_pair(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    secret: *const c_char,
    secret_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    cost: u32,
    at_ms: i64,
    out_verdict: *mut kw_verdict,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    // SAFETY: forwarded contract.
    unsafe {
        kw_verify_pair_ex(
            store,
            id,
            id_len,
            secret,
            secret_len,
            scopes,
            scopes_len,
            cost,
            at_ms,
            0,
            out_verdict,
            info_buf,
            info_cap,
            out_info_len,
        )
    }
}

/// `kw_verify_pair` with `flags` (`kw_verify_flags` bits, as `kw_verify_ex`).
///
/// # Safety
/// As `kw_verify`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_verify_pair_ex(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    secret: *const c_char,
    secret_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    cost: u32,
    at_ms: i64,
    flags: u32,
    out_verdict: *mut kw_verdict,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = VerifyOut::new(out_verdict, info_buf, info_cap, out_info_len)?
                .with_rate_fields(flags);
            let id = args::bytes(id.cast(), id_len)?;
            let secret = args::bytes(secret.cast(), secret_len)?;
            let scopes = Scopes::new(scopes, scopes_len)?;
            let at = at_of(at_ms)?;
            let dry_run = dry_run_of(flags)?;
            handles::with(store, |s| {
                match (std::str::from_utf8(id), std::str::from_utf8(secret)) {
                    (Ok(id), Ok(secret)) => out.verify(
                        s,
                        &VerifyRequest {
                            credential: Presented::Pair { id, secret },
                            scopes: scopes.as_slice(),
                            cost: (cost != 0).then_some(cost),
                            at,
                            dry_run,
                        },
                    ),
                    _ => out.write(&malformed(s, scopes.as_slice())?),
                }
            })
        }
    })
}

/// Extracts the credential from C headers (see
/// [`crate::credential::extract_credential_bytes`]: header problems are errors of the
/// credential family; non-UTF-8 names are skipped and non-UTF-8 credential values read with
/// U+FFFD, so they are refused as the client's input, never `KW_INVALID_UTF8`).
///
/// # Safety
/// `headers` must be NULL or point to `len` valid `kw_header`s.
pub(crate) unsafe fn extract<'a>(
    headers: *const kw_header,
    len: usize,
) -> Result<FoundCredential<'a>, kw_status> {
    if headers.is_null() && len != 0 {
        return Err(kw_status::KW_NULL_ARGUMENT);
    }
    let raw: &[kw_header] = if len == 0 {
        &[]
    } else {
        if len > isize::MAX as usize / std::mem::size_of::<kw_header>() {
            return Err(kw_status::KW_INVALID_ARGUMENT);
        }
        // SAFETY: non-NULL, `len` elements by contract.
        unsafe { std::slice::from_raw_parts(headers, len) }
    };
    // Every header's pointers are checked first, so that the search (which stops at the
    // first problem of the client's) sees only sound ones.
    for h in raw {
        // SAFETY: caller's contract on each header's pointers.
        unsafe {
            args::bytes(h.name.cast(), h.name_len)?;
            args::bytes(h.value.cast(), h.value_len)?;
        }
    }
    let pairs = raw.iter().map(|h| {
        // SAFETY: checked above (non-NULL, bounded length); valid for 'a by contract.
        unsafe {
            (
                std::slice::from_raw_parts(h.name.cast::<u8>(), h.name_len),
                std::slice::from_raw_parts(h.value.cast::<u8>(), h.value_len),
            )
        }
    });
    Ok(crate::credential::extract_credential_bytes(pairs)?)
}

/// Extracts the credential from request headers (`x-api-key`, `Authorization: Bearer` /
/// `Basic`, or the `X-Api-Token-Id` + `X-Api-Token-Secret-Key` pair) and verifies it.
///
/// - `headers`, `headers_len`: every request header, or just the credential ones (NULL
///   when 0). Names and values are byte strings; a header whose name is not UTF-8 or longer
///   than `KW_MAX_HEADER_NAME_LEN` is no credential header and is ignored; a credential
///   value that is not UTF-8 is read with U+FFFD in place of each bad sequence, so it is
///   refused like any other bad credential (a key `KW_REASON_MALFORMED`).
/// - the rest as `kw_verify`.
///
/// Header problems are what the client sent: statuses of the credential family
/// (`kw_status_family` = `KW_FAMILY_CREDENTIAL`), each meaning HTTP 401:
/// `KW_CREDENTIAL_MISSING`, `KW_UNSUPPORTED_SCHEME`, `KW_BAD_BASE64`, `KW_HALF_PAIR`,
/// `KW_AMBIGUOUS_CREDENTIAL` (also more than `KW_MAX_HEADERS` credential headers),
/// `KW_MALFORMED_KEY` (a credential value past `KW_MAX_HEADER_VALUE_LEN`). Other statuses
/// are the application's errors, as for `kw_verify`.
///
/// # Safety
/// As `kw_verify`; every header's pointers valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_verify_headers(
    store: kw_store,
    headers: *const kw_header,
    headers_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    cost: u32,
    at_ms: i64,
    out_verdict: *mut kw_verdict,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    // SAFETY: forwarded contract.
    unsafe {
        kw_verify_headers_ex(
            store,
            headers,
            headers_len,
            scopes,
            scopes_len,
            cost,
            at_ms,
            0,
            out_verdict,
            info_buf,
            info_cap,
            out_info_len,
        )
    }
}

/// `kw_verify_headers` with `flags` (`kw_verify_flags` bits, as `kw_verify_ex`).
///
/// # Safety
/// As `kw_verify_headers`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_verify_headers_ex(
    store: kw_store,
    headers: *const kw_header,
    headers_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    cost: u32,
    at_ms: i64,
    flags: u32,
    out_verdict: *mut kw_verdict,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = VerifyOut::new(out_verdict, info_buf, info_cap, out_info_len)?
                .with_rate_fields(flags);
            let scopes = Scopes::new(scopes, scopes_len)?;
            // The application's scopes are checked before the client's headers.
            crate::store::check_scopes(scopes.as_slice())?;
            let at = at_of(at_ms)?;
            let dry_run = dry_run_of(flags)?;
            let credential = extract(headers, headers_len)?;
            let request = VerifyRequest {
                credential: credential.presented(),
                scopes: scopes.as_slice(),
                cost: (cost != 0).then_some(cost),
                at,
                dry_run,
            };
            handles::with(store, |s| out.verify(s, &request))
        }
    })
}
