//! Owner controls through the C ABI: suspend, resume and allowed scopes of an owner, and its
//! record (JSON `{"owner", "suspended_at", "suspend_reason", "allowed_scopes", "created_at",
//! "updated_at", "keys"}`; times in ms since the epoch, `null` when unset).

use std::ffi::c_char;

use super::args::{self, OutBuf};
use super::handles::{self, kw_store};
use super::panic::guard;
use super::status::kw_status;
use super::types::{KW_MAX_SCOPE_LEN, KW_MAX_SCOPES, kw_str};

/// Buffer size that always holds an owner record written by `kw_owner_suspend`,
/// `kw_owner_resume` and `kw_owner_set_scopes` (they check it before changing anything).
pub const KW_OWNER_INFO_MAX_LEN: usize = 16_384;

/// The output buffer of a change: optional, and when given at least `KW_OWNER_INFO_MAX_LEN`.
///
/// # Safety
/// `out_len` writable if not NULL.
unsafe fn change_out(
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> Result<Option<OutBuf>, kw_status> {
    let out = OutBuf::optional(buf, cap, out_len)?;
    if let Some(out) = &out {
        // SAFETY: forwarded contract.
        unsafe { out.require(KW_OWNER_INFO_MAX_LEN) }?;
    }
    Ok(out)
}

/// Suspends an owner: every key of it is refused with `KW_REASON_OWNER_SUSPENDED` (HTTP 403)
/// from the next verify in every process, until `kw_owner_resume`. Suspending a suspended
/// owner changes nothing. Audited (`owner_suspend`) with the handle's actor.
///
/// - `owner`, `owner_len`: required (at most `KW_MAX_OWNER_LEN`);
/// - `reason`, `reason_len`: optional (NULL, 0), at most `KW_MAX_REASON_LEN`;
/// - `buf`, `cap`, `out_len`: optional (NULL, 0, NULL): the owner record as JSON; `cap` at
///   least `KW_OWNER_INFO_MAX_LEN` (else `KW_BUFFER_TOO_SMALL` before anything changes).
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT` (blank owner,
/// control characters), `KW_TOO_LONG`, `KW_BUFFER_TOO_SMALL`, `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_owner_suspend(
    store: kw_store,
    owner: *const c_char,
    owner_len: usize,
    reason: *const c_char,
    reason_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = change_out(buf, cap, out_len)?;
            let owner = args::text(owner, owner_len)?;
            let reason = args::opt_text(reason, reason_len)?;
            let info = handles::cloned(store)?.suspend_owner(owner, reason)?;
            match out {
                Some(out) => out.write_json(&info),
                None => Ok(()),
            }
        }
    })
}

/// Resumes a suspended owner (its keys are judged on their own again from the next verify in
/// every process). Resuming an owner that is not suspended changes nothing. Audited
/// (`owner_resume`). Outputs as for `kw_owner_suspend`.
///
/// Errors: those of `kw_owner_suspend`, and `KW_OWNER_NOT_FOUND` (no record and no key).
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_owner_resume(
    store: kw_store,
    owner: *const c_char,
    owner_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = change_out(buf, cap, out_len)?;
            let owner = args::text(owner, owner_len)?;
            let info = handles::cloned(store)?.resume_owner(owner)?;
            match out {
                Some(out) => out.write_json(&info),
                None => Ok(()),
            }
        }
    })
}

/// Sets the scopes an owner's keys may use: a key's effective scopes (checked and reported
/// by verify) are its own ∩ these, from the next verify in every process. `clear` non-zero
/// removes the restriction (`scopes` is then ignored). Audited (`owner_scopes`). Outputs as
/// for `kw_owner_suspend`.
///
/// Errors: those of `kw_owner_suspend` (`KW_INVALID_ARGUMENT` also for an empty or blank
/// scope, `KW_TOO_LONG` past `KW_MAX_SCOPES` or `KW_MAX_SCOPE_LEN`).
///
/// # Safety
/// `scopes` NULL (when `scopes_len` is 0) or readable for `scopes_len` entries, each valid;
/// every other pointer NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_owner_set_scopes(
    store: kw_store,
    owner: *const c_char,
    owner_len: usize,
    scopes: *const kw_str,
    scopes_len: usize,
    clear: u32,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = change_out(buf, cap, out_len)?;
            let owner = args::text(owner, owner_len)?;
            let scopes = if clear != 0 {
                None
            } else {
                Some(args::owned_strings(
                    args::str_array(scopes, scopes_len)?,
                    KW_MAX_SCOPES,
                    KW_MAX_SCOPE_LEN,
                )?)
            };
            let info = handles::cloned(store)?.set_owner_scopes(owner, scopes.as_deref())?;
            match out {
                Some(out) => out.write_json(&info),
                None => Ok(()),
            }
        }
    })
}

/// An owner's record and key count as JSON. Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`,
/// `KW_INVALID_ARGUMENT`, `KW_TOO_LONG`, `KW_OWNER_NOT_FOUND` (no record and no key),
/// `KW_BUFFER_TOO_SMALL` (with the size needed), `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_owner_get(
    store: kw_store,
    owner: *const c_char,
    owner_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let owner = args::text(owner, owner_len)?;
            let info = handles::cloned(store)?.owner(owner)?;
            out.write_json(&info)
        }
    })
}

/// Every owner record (owners ever suspended or given allowed scopes), in owner order, as a
/// JSON array of owner records. Errors: `KW_NULL_ARGUMENT`, `KW_BUFFER_TOO_SMALL` (with the
/// size needed), `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// `buf` writable for `cap` bytes; `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_owners_list(
    store: kw_store,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        let owners = handles::cloned(store)?.owners()?;
        // SAFETY: caller's contract on the buffer.
        unsafe { out.write_json(&owners) }
    })
}
