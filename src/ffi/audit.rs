//! The audit log through the C ABI: a handle that stamps an actor on its changes, queries
//! (JSON pages) and the retention setting.

use std::ffi::c_char;

use super::args::{self, OutBuf, out_ptr, put};
use super::handles::{self, kw_store};
use super::panic::guard;
use super::status::kw_status;
use crate::store::{AuditQuery, MAX_ACTOR_LEN};

/// Longest actor of `kw_with_actor`, in bytes.
pub const KW_MAX_ACTOR_LEN: usize = 256;

const _: () = assert!(KW_MAX_ACTOR_LEN == MAX_ACTOR_LEN);

/// Opens a second handle onto the same store that stamps every change made through it
/// (create, update, revoke, delete, rotate) with `actor` in the audit log: the user, service
/// or request the host acts for. Close it with `kw_close` like any handle; it shares the
/// store (and its verify index) with `store`. An empty actor means none.
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT` (control characters),
/// `KW_TOO_LONG` (over `KW_MAX_ACTOR_LEN`), `KW_CLOSED` (`KW_NULL_ARGUMENT` for handle 0).
///
/// # Safety
/// `actor` valid for `actor_len` bytes (NULL allowed when 0); `out_store` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_with_actor(
    store: kw_store,
    actor: *const c_char,
    actor_len: usize,
    out_store: *mut kw_store,
) -> kw_status {
    guard(|| {
        let out = out_ptr(out_store)?;
        // SAFETY: caller's contract on `actor`.
        let actor = unsafe { args::opt_text(actor, actor_len) }?.unwrap_or("");
        let stamped = handles::cloned(store)?.with_actor(actor)?;
        let handle = handles::insert(stamped)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, handle) };
        Ok(())
    })
}

/// One page of audit events, oldest first, as JSON
/// `{"events": [{"seq", "at", "actor", "action", "key_id", "owner", "changed", "detail"}, ...],
/// "next": cursor-or-null}`. `action` is one of `create`, `update`, `rotate`, `revoke`,
/// `delete`, `import`, `policy_refused`. Every filter given must match:
///
/// - `key_id`, `owner`, `actor` (pointer, length): NULL = any;
/// - `since_ms`: events at or after this time (ms since the epoch); 0 = any;
/// - `until_ms`: events before this time; 0 = any;
/// - `after`: the previous page's `next`, or 0 for the first page;
/// - `limit`: page size 1..=`KW_MAX_PAGE_SIZE`; 0 = 100.
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT` (limit),
/// `KW_BUFFER_TOO_SMALL` (with the size needed), `KW_CLOSED`, `KW_STORAGE`, `KW_CORRUPT`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_audit(
    store: kw_store,
    key_id: *const c_char,
    key_id_len: usize,
    owner: *const c_char,
    owner_len: usize,
    actor: *const c_char,
    actor_len: usize,
    since_ms: i64,
    until_ms: i64,
    after: u64,
    limit: u32,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let text = |p, n| args::opt_text(p, n).map(|t| t.map(str::to_owned));
            let query = AuditQuery {
                key_id: text(key_id, key_id_len)?,
                owner: text(owner, owner_len)?,
                actor: text(actor, actor_len)?,
                since: (since_ms != 0).then_some(since_ms),
                until: (until_ms != 0).then_some(until_ms),
                after: (after != 0).then_some(after),
                limit: limit as usize,
            };
            let page = handles::cloned(store)?.audit(&query)?;
            out.write_json(&page)
        }
    })
}

/// Sets how many days of audit events the store keeps (0 = all, the default); older events
/// are pruned as part of later writes. Applies to every handle onto the store in this
/// process. Errors: `KW_CLOSED`.
#[unsafe(no_mangle)]
pub extern "C" fn kw_set_audit_retention(store: kw_store, days: u32) -> kw_status {
    guard(|| {
        handles::cloned(store)?.set_audit_retention_days(days);
        Ok(())
    })
}
