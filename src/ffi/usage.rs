//! Usage and credit queries through the C ABI.

use std::ffi::c_char;
use std::time::Duration;

use super::args::{self, OutBuf, out_ptr, put};
use super::handles::{self, kw_store};
use super::panic::guard;
use super::status::kw_status;
use super::types::{kw_credit_balance, kw_usage_stats};
use crate::clock::{Day, Timestamp};
use crate::schema::KeyInfo;

/// A key's usage: what is stored plus what this process has not flushed yet.
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_NOT_FOUND`, `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// `id` valid for `id_len` bytes; `out_usage` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_usage(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    out_usage: *mut kw_usage_stats,
) -> kw_status {
    guard(|| {
        let out = out_ptr(out_usage)?;
        // SAFETY: caller's contract.
        let id = unsafe { args::text(id, id_len) }?;
        let usage = handles::cloned(store)?.usage(id)?;
        let value = kw_usage_stats {
            uses: usage.uses,
            refused: usage.refused,
            last_used_ms: usage.last_used.unwrap_or(0),
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, value) };
        Ok(())
    })
}

/// Uses per UTC day of a key from `from_day` to `to_day` inclusive, as JSON
/// `[{"day": "YYYY-MM-DD", "uses": n}, ...]` (days without use omitted; flushed counts only:
/// call `kw_flush` first for this process's latest). Days are counted from 1970-01-01
/// (day = ms / 86400000). Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`,
/// `KW_INVALID_ARGUMENT` (range unordered or longer than `KW_MAX_USAGE_DAYS`),
/// `KW_NOT_FOUND`, `KW_BUFFER_TOO_SMALL` (with the size needed), `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_usage_by_day(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    from_day: i32,
    to_day: i32,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        // SAFETY: caller's contract.
        let id = unsafe { args::text(id, id_len) }?;
        let days = handles::cloned(store)?.usage_by_day(id, Day(from_day), Day(to_day))?;
        // SAFETY: caller's contract on the buffer.
        unsafe { out.write_json(&days) }
    })
}

/// An owner's keys not used since `since_ms` (never used, or last used before it), oldest
/// first, as a JSON array of records. Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`,
/// `KW_INVALID_ARGUMENT` (negative time), `KW_TOO_LONG` (owner), `KW_BUFFER_TOO_SMALL`
/// (with the size needed), `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_unused_since(
    store: kw_store,
    owner: *const c_char,
    owner_len: usize,
    since_ms: i64,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        // SAFETY: caller's contract.
        let owner = unsafe { args::text(owner, owner_len) }?;
        if owner.len() > super::types::KW_MAX_OWNER_LEN {
            return Err(kw_status::KW_TOO_LONG);
        }
        if since_ms < 0 {
            return Err(kw_status::KW_INVALID_ARGUMENT);
        }
        let since = Timestamp::from_millis(since_ms);
        let keys = handles::cloned(store)?.unused_since(owner, since)?;
        // SAFETY: caller's contract on the buffer.
        unsafe { out.write_json(&keys) }
    })
}

/// A key's usage credits: `limited = 0` for an unlimited key, else the credits left and
/// the key's terms. Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_NOT_FOUND`,
/// `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// `id` valid for `id_len` bytes; `out_balance` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_key_credits(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    out_balance: *mut kw_credit_balance,
) -> kw_status {
    guard(|| {
        let out = out_ptr(out_balance)?;
        // SAFETY: caller's contract.
        let id = unsafe { args::text(id, id_len) }?;
        let balance = handles::cloned(store)?.credits(id)?;
        let value = match balance {
            None => kw_credit_balance::default(),
            Some(b) => kw_credit_balance {
                limited: 1,
                cost: b.terms.cost,
                remaining: b.remaining,
                refill_amount: b.terms.refill.map_or(0, |r| r.amount),
                refill_interval: b.terms.refill.map_or(0, |r| r.interval.code()),
                reserved: 0,
            },
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, value) };
        Ok(())
    })
}

/// Active keys (neither revoked nor expired, not rotated away) whose expiry falls within
/// `within_ms` from now, soonest first, as a JSON array of records: keys to warn about.
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_ARGUMENT` (negative `within_ms`),
/// `KW_BUFFER_TOO_SMALL` (with the size needed), `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// `buf` valid for `cap` bytes (or NULL with `cap` 0); `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_expiring_within(
    store: kw_store,
    within_ms: i64,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        let within = u64::try_from(within_ms).map_err(|_| kw_status::KW_INVALID_ARGUMENT)?;
        let keys = handles::cloned(store)?.expiring_within(Duration::from_millis(within))?;
        // SAFETY: caller's contract on the buffer.
        unsafe { out.write_json(&keys) }
    })
}

/// One entry of `kw_credits_below`.
#[derive(serde::Serialize)]
struct LowCredits<'a> {
    key: &'a KeyInfo,
    remaining: u64,
}

/// Active limited keys (not rotated away) with fewer than `threshold` credits left now,
/// fewest first, as a JSON array of `{"key": record, "remaining": credits}`: keys to warn
/// about. Errors: `KW_NULL_ARGUMENT`, `KW_BUFFER_TOO_SMALL` (with the size needed),
/// `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// `buf` valid for `cap` bytes (or NULL with `cap` 0); `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_credits_below(
    store: kw_store,
    threshold: u64,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        let low = handles::cloned(store)?.credits_below(threshold)?;
        let entries: Vec<LowCredits<'_>> = low
            .iter()
            .map(|(key, balance)| LowCredits {
                key,
                remaining: balance.remaining,
            })
            .collect();
        // SAFETY: caller's contract on the buffer.
        unsafe { out.write_json(&entries) }
    })
}
