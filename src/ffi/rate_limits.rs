//! Rate limits through the C ABI: a key's own limit and the limit an owner shares among its
//! keys. (`kw_new_key` and `kw_key_update` keep their layout: a key gets its limit through
//! `kw_set_rate_limit` after `kw_create`, or at once with the Rust API and the CLI.)

use std::ffi::c_char;

use super::args::{self, OutBuf};
use super::handles;
use super::handles::kw_store;
use super::panic::guard;
use super::status::kw_status;
use super::types::{KW_KEY_INFO_MAX_LEN, kw_rate_limit};
use crate::rate_limit::RateLimit;
use crate::store::KeyUpdate;

/// # Safety
/// `ptr` NULL or a valid `kw_rate_limit`.
unsafe fn limit_of(ptr: *const kw_rate_limit) -> Result<Option<RateLimit>, kw_status> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, valid by contract.
    let l = unsafe { &*ptr };
    let burst = if l.burst == 0 { l.rate } else { l.burst };
    Ok(Some(RateLimit::new(l.rate, l.period_ms, burst)?))
}

/// Sets (`limit` non-NULL) or removes (`limit` NULL) a key's own rate limit; the key's record
/// is written as JSON into `info_buf` if given (as `kw_update`, `info_cap` ≥
/// `KW_KEY_INFO_MAX_LEN`). A changed limit keeps the key's current state; a new one starts
/// from rest. Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_NOT_FOUND`,
/// `KW_INVALID_ARGUMENT` (bad terms), `KW_RATE_SLOTS_EXHAUSTED`, `KW_BUFFER_TOO_SMALL`,
/// `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_set_rate_limit(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    limit: *const kw_rate_limit,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::optional(info_buf, info_cap, out_info_len)?;
        // SAFETY: caller's contract on every pointer.
        unsafe {
            if let Some(out) = &out {
                out.require(KW_KEY_INFO_MAX_LEN)?;
            }
            let id = args::text(id, id_len)?;
            let limit = limit_of(limit)?;
            let info = handles::cloned(store)?.update(
                id,
                KeyUpdate {
                    rate_limit: Some(limit),
                    ..KeyUpdate::default()
                },
            )?;
            if let Some(out) = &out {
                out.write_json(&info)?;
            }
            Ok(())
        }
    })
}

/// Sets (`limit` non-NULL) or removes (`limit` NULL) the rate limit `owner` shares among all
/// of its keys. Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT` (blank
/// owner, bad terms), `KW_TOO_LONG`, `KW_RATE_SLOTS_EXHAUSTED`, `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_set_owner_rate_limit(
    store: kw_store,
    owner: *const c_char,
    owner_len: usize,
    limit: *const kw_rate_limit,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let owner = args::text(owner, owner_len)?;
            let limit = limit_of(limit)?;
            Ok(handles::cloned(store)?.set_owner_rate_limit(owner, limit)?)
        }
    })
}

/// Reads the rate limit `owner` shares among its keys: `*out_found` = 1 and `*out_limit` set
/// when it has one, `*out_found` = 0 (and `*out_limit` untouched) when not. Errors:
/// `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT`, `KW_TOO_LONG`, `KW_CLOSED`,
/// `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_owner_rate_limit(
    store: kw_store,
    owner: *const c_char,
    owner_len: usize,
    out_limit: *mut kw_rate_limit,
    out_found: *mut u32,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out_limit = args::out_ptr(out_limit)?;
            let out_found = args::out_ptr(out_found)?;
            let owner = args::text(owner, owner_len)?;
            let limit = handles::cloned(store)?.owner_rate_limit(owner)?;
            if let Some(l) = limit {
                args::put(
                    out_limit,
                    kw_rate_limit {
                        rate: l.rate,
                        period_ms: l.period_ms,
                        burst: l.burst,
                    },
                );
            }
            args::put(out_found, u32::from(limit.is_some()));
            Ok(())
        }
    })
}
