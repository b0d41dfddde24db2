//! Management through the C ABI: create, get, list, export, update, revoke, delete, rotate.
//! Records are written as JSON (the Rust `KeyInfo` serialization: metadata as base64) into
//! caller buffers. Calls that change the store check their buffers against the fixed
//! maxima (`KW_MAX_KEY_LEN`, `KW_KEY_INFO_MAX_LEN`) before changing anything, so a short
//! buffer never loses a new key; read-only calls report the exact size needed.

use std::ffi::c_char;
use std::time::Duration;

use super::args::{self, OutBuf};
use super::handles::{self, kw_store};
use super::panic::guard;
use super::status::kw_status;
use super::types::{
    KW_KEY_INFO_MAX_LEN, KW_MAX_CREATE_MANY, KW_MAX_KEY_LEN, KW_MAX_METADATA_LEN, KW_MAX_SCOPE_LEN,
    KW_MAX_SCOPES, kw_created_key, kw_credits, kw_key_update, kw_new_key, kw_refill_interval,
    kw_state_filter, kw_update_field,
};
use crate::clock::Timestamp;
use crate::schema::{Refill, RefillInterval};
use crate::store::{CreatedKey, KeyUpdate, ListOptions, NewCredits, NewKey, StateFilter};

/// # Safety
/// `ptr` NULL or a valid `kw_credits`.
unsafe fn credits_of(ptr: *const kw_credits) -> Result<Option<NewCredits>, kw_status> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, valid by contract.
    let c = unsafe { &*ptr };
    let refill = match c.refill_interval {
        x if x == kw_refill_interval::KW_REFILL_NONE as u32 => None,
        x if x == kw_refill_interval::KW_REFILL_DAILY as u32 => Some(RefillInterval::Daily),
        x if x == kw_refill_interval::KW_REFILL_MONTHLY as u32 => Some(RefillInterval::Monthly),
        _ => return Err(kw_status::KW_INVALID_ARGUMENT),
    };
    Ok(Some(NewCredits {
        remaining: c.remaining,
        refill: refill.map(|interval| Refill {
            amount: c.refill_amount,
            interval,
        }),
        cost: c.cost.max(1),
    }))
}

fn expiry_of(ms: i64) -> Result<Option<Timestamp>, kw_status> {
    match ms {
        0 => Ok(None),
        ms if ms < 0 => Err(kw_status::KW_INVALID_ARGUMENT),
        ms => Ok(Some(Timestamp::from_millis(ms))),
    }
}

/// # Safety
/// `ptr` NULL or `len` readable bytes.
unsafe fn metadata_of(ptr: *const u8, len: usize) -> Result<Vec<u8>, kw_status> {
    if len > KW_MAX_METADATA_LEN {
        return Err(kw_status::KW_TOO_LONG);
    }
    // SAFETY: forwarded contract.
    Ok(unsafe { args::opt_bytes(ptr, len) }?
        .unwrap_or_default()
        .to_vec())
}

/// # Safety
/// Every pointer of `n` NULL or valid for its stated length.
unsafe fn new_key_of(n: &kw_new_key) -> Result<NewKey, kw_status> {
    // SAFETY: forwarded contract.
    unsafe {
        Ok(NewKey {
            owner: args::str_field(&n.owner)?.to_owned(),
            name: args::opt_str_field(&n.name)?.unwrap_or("").to_owned(),
            scopes: args::owned_strings(
                args::str_array(n.scopes, n.scopes_len)?,
                KW_MAX_SCOPES,
                KW_MAX_SCOPE_LEN,
            )?,
            env: args::opt_str_field(&n.env)?.map(str::to_owned),
            expires_at: expiry_of(n.expires_at_ms)?,
            metadata: metadata_of(n.metadata, n.metadata_len)?,
            credits: credits_of(n.credits)?,
            // Set by `kw_set_rate_limit` (`kw_new_key` keeps its layout).
            rate_limit: None,
        })
    }
}

/// The checked key and record buffers of create and rotate.
struct KeyOut {
    key: OutBuf,
    info: Option<OutBuf>,
}

impl KeyOut {
    /// # Safety
    /// Length pointers writable if not NULL.
    unsafe fn new(
        key_buf: *mut u8,
        key_cap: usize,
        out_key_len: *mut usize,
        info_buf: *mut u8,
        info_cap: usize,
        out_info_len: *mut usize,
    ) -> Result<KeyOut, kw_status> {
        let key = OutBuf::new(key_buf, key_cap, out_key_len)?;
        let info = OutBuf::optional(info_buf, info_cap, out_info_len)?;
        // SAFETY: forwarded contract.
        unsafe {
            key.require(KW_MAX_KEY_LEN)?;
            if let Some(info) = &info {
                info.require(KW_KEY_INFO_MAX_LEN)?;
            }
        }
        Ok(KeyOut { key, info })
    }

    /// # Safety
    /// Buffers writable for their capacities.
    unsafe fn write(&self, created: &CreatedKey) -> Result<(), kw_status> {
        // SAFETY: forwarded contract.
        unsafe {
            if let Some(info) = &self.info {
                info.write_json(&created.info)?;
            }
            self.key.write(created.key().as_bytes())
        }
    }
}

/// Creates a key. The full key is written once to `key_buf` (not NUL-terminated; it exists
/// nowhere else, ever: hand it to the customer and wipe the buffer) and, optionally, the
/// new record as JSON to `info_buf`.
///
/// - `new_key`: required; see `kw_new_key`;
/// - `key_buf`, `key_cap`, `out_key_len`: required; `key_cap` must be at least
///   `KW_MAX_KEY_LEN` (else `KW_BUFFER_TOO_SMALL`, with `*out_key_len = KW_MAX_KEY_LEN`,
///   before anything is created);
/// - `info_buf`, `info_cap`, `out_info_len`: optional (`NULL, 0, NULL`); when given,
///   `info_cap` must be at least `KW_KEY_INFO_MAX_LEN`.
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT` (blank owner, bad env
/// tag, control characters, empty or blank scope, bad credits, negative expiry), `KW_TOO_LONG`
/// (past a `KW_MAX_*` limit), `KW_BUFFER_TOO_SMALL`, `KW_POLICY_*`,
/// `KW_CREDIT_SLOTS_EXHAUSTED`, `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_create(
    store: kw_store,
    new_key: *const kw_new_key,
    key_buf: *mut u8,
    key_cap: usize,
    out_key_len: *mut usize,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    guard(|| {
        if new_key.is_null() {
            return Err(kw_status::KW_NULL_ARGUMENT);
        }
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = KeyOut::new(
                key_buf,
                key_cap,
                out_key_len,
                info_buf,
                info_cap,
                out_info_len,
            )?;
            let new = new_key_of(&*new_key)?;
            let created = handles::cloned(store)?.create(new)?;
            out.write(&created)
        }
    })
}

/// Creates `count` keys in one durable transaction: all of them, or none. Much faster than
/// `count` calls of `kw_create` (one commit, one update of the shared verify table).
///
/// - `new_keys`, `count`: required; `count` from 1 to `KW_MAX_CREATE_MANY` (else
///   `KW_INVALID_ARGUMENT` for 0, `KW_TOO_LONG` above); each `kw_new_key` as for `kw_create`;
/// - `out`, `out_cap`: required; `out_cap` must be at least `count` (else
///   `KW_BUFFER_TOO_SMALL`, with `*out_count = count`, before anything is created); on
///   success `out[i]` holds the key made from `new_keys[i]` (its full key, NUL-terminated,
///   exists nowhere else, ever: hand it out and wipe the array);
/// - `out_count`: required; receives `count` on success.
///
/// A new key that is refused (a bad field, a policy) fails the whole call and creates
/// nothing; `kw_last_error_message()` then names its index (0-based), e.g.
/// `"new key 3 of the batch (0-based), nothing created: invalid owner: must not be empty"`.
///
/// Errors: those of `kw_create`.
///
/// # Safety
/// `new_keys` readable for `count` entries (each valid as for `kw_create`); `out` writable
/// for `out_cap` entries; `out_count` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_create_many(
    store: kw_store,
    new_keys: *const kw_new_key,
    count: usize,
    out: *mut kw_created_key,
    out_cap: usize,
    out_count: *mut usize,
) -> kw_status {
    guard(|| {
        if new_keys.is_null() || out.is_null() || out_count.is_null() {
            return Err(kw_status::KW_NULL_ARGUMENT);
        }
        if count == 0 {
            super::error_detail::record("count must be at least 1");
            return Err(kw_status::KW_INVALID_ARGUMENT);
        }
        if count > KW_MAX_CREATE_MANY {
            super::error_detail::record(format_args!(
                "count {count} is above KW_MAX_CREATE_MANY ({KW_MAX_CREATE_MANY})"
            ));
            return Err(kw_status::KW_TOO_LONG);
        }
        if out_cap < count {
            // SAFETY: out_count checked non-NULL; writable by contract.
            unsafe { args::put(out_count, count) };
            return Err(kw_status::KW_BUFFER_TOO_SMALL);
        }
        // SAFETY: caller's contract: `count` readable entries.
        let specs = unsafe { std::slice::from_raw_parts(new_keys, count) };
        let mut batch = Vec::with_capacity(count);
        for (index, spec) in specs.iter().enumerate() {
            // SAFETY: caller's contract on each entry's pointers.
            match unsafe { new_key_of(spec) } {
                Ok(new) => batch.push(new),
                Err(status) => {
                    super::error_detail::record(format_args!(
                        "new key {index} of the batch (0-based), nothing created: {}",
                        status.name()
                    ));
                    return Err(status);
                }
            }
        }
        let created = handles::cloned(store)?.create_many(batch)?;
        // SAFETY: `out` writable for `out_cap >= count` entries by contract.
        let out = unsafe { std::slice::from_raw_parts_mut(out, count) };
        for (slot, key) in out.iter_mut().zip(&created) {
            let mut entry = kw_created_key::zeroed();
            args::fill_cstr(&mut entry.key, key.key());
            entry.key_len = key.key().len();
            args::fill_cstr(&mut entry.id, key.id());
            *slot = entry;
        }
        // SAFETY: checked non-NULL above.
        unsafe { args::put(out_count, count) };
        Ok(())
    })
}

/// The public record of a key as JSON. Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`,
/// `KW_NOT_FOUND` (also for text that is not a key id), `KW_BUFFER_TOO_SMALL` (with the
/// size needed), `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_get(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let id = args::text(id, id_len)?;
            let info = handles::cloned(store)?.get(id)?;
            out.write_json(&info)
        }
    })
}

/// One page of an owner's keys in creation order, as JSON
/// `{"keys": [record, ...], "next": cursor-or-null}`.
///
/// - `owner`, `owner_len`: required (at most `KW_MAX_OWNER_LEN`);
/// - `after`: the previous page's `next`, or 0 for the first page;
/// - `limit`: page size 1..=`KW_MAX_PAGE_SIZE`; 0 = 100;
/// - `state`: a `kw_state_filter` value.
///
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT` (limit, state),
/// `KW_TOO_LONG`, `KW_BUFFER_TOO_SMALL` (with the size needed), `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_list(
    store: kw_store,
    owner: *const c_char,
    owner_len: usize,
    after: u64,
    limit: u32,
    state: u32,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        let state = match state {
            x if x == kw_state_filter::KW_STATE_ALL as u32 => StateFilter::All,
            x if x == kw_state_filter::KW_STATE_ACTIVE as u32 => StateFilter::Active,
            x if x == kw_state_filter::KW_STATE_REVOKED as u32 => StateFilter::Revoked,
            x if x == kw_state_filter::KW_STATE_EXPIRED as u32 => StateFilter::Expired,
            _ => return Err(kw_status::KW_INVALID_ARGUMENT),
        };
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let owner = args::text(owner, owner_len)?;
            let options = ListOptions {
                after: (after != 0).then_some(after),
                limit: if limit == 0 { 100 } else { limit as usize },
                state,
            };
            let page = handles::cloned(store)?.list(owner, options)?;
            out.write_json(&page)
        }
    })
}

/// Every key of the store in creation order, as a JSON array of records (export).
/// Errors: `KW_NULL_ARGUMENT`, `KW_BUFFER_TOO_SMALL` (with the size needed), `KW_CLOSED`,
/// `KW_STORAGE`.
///
/// # Safety
/// Outputs writable for their stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_all_keys(
    store: kw_store,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> kw_status {
    guard(|| {
        let out = OutBuf::new(buf, cap, out_len)?;
        let all = handles::cloned(store)?.all_keys()?;
        // SAFETY: caller's contract on the buffer.
        unsafe { out.write_json(&all) }
    })
}

/// Updates the fields of a key named in `update->fields`; the new record is written as
/// JSON to the optional `info_buf` (at least `KW_KEY_INFO_MAX_LEN` when given).
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT` (unknown field bit,
/// bad scope or credits), `KW_TOO_LONG`, `KW_BUFFER_TOO_SMALL`, `KW_NOT_FOUND`,
/// `KW_POLICY_MAX_LIFETIME`, `KW_CREDIT_SLOTS_EXHAUSTED`, `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_update(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    update: *const kw_key_update,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    guard(|| {
        if update.is_null() {
            return Err(kw_status::KW_NULL_ARGUMENT);
        }
        let out = OutBuf::optional(info_buf, info_cap, out_info_len)?;
        // SAFETY: caller's contract on every pointer.
        unsafe {
            if let Some(out) = &out {
                out.require(KW_KEY_INFO_MAX_LEN)?;
            }
            let id = args::text(id, id_len)?;
            let u = &*update;
            let known = kw_update_field::KW_UPDATE_NAME as u32
                | kw_update_field::KW_UPDATE_SCOPES as u32
                | kw_update_field::KW_UPDATE_METADATA as u32
                | kw_update_field::KW_UPDATE_EXPIRES_AT as u32
                | kw_update_field::KW_UPDATE_CREDITS as u32;
            if u.fields & !known != 0 {
                return Err(kw_status::KW_INVALID_ARGUMENT);
            }
            let has = |f: kw_update_field| u.fields & f as u32 != 0;
            let change = KeyUpdate {
                name: if has(kw_update_field::KW_UPDATE_NAME) {
                    Some(args::opt_str_field(&u.name)?.unwrap_or("").to_owned())
                } else {
                    None
                },
                scopes: if has(kw_update_field::KW_UPDATE_SCOPES) {
                    Some(args::owned_strings(
                        args::str_array(u.scopes, u.scopes_len)?,
                        KW_MAX_SCOPES,
                        KW_MAX_SCOPE_LEN,
                    )?)
                } else {
                    None
                },
                metadata: if has(kw_update_field::KW_UPDATE_METADATA) {
                    Some(metadata_of(u.metadata, u.metadata_len)?)
                } else {
                    None
                },
                expires_at: if has(kw_update_field::KW_UPDATE_EXPIRES_AT) {
                    Some(expiry_of(u.expires_at_ms)?)
                } else {
                    None
                },
                credits: if has(kw_update_field::KW_UPDATE_CREDITS) {
                    Some(credits_of(u.credits)?)
                } else {
                    None
                },
                // Changed by `kw_set_rate_limit` (`kw_key_update` keeps its layout).
                rate_limit: None,
            };
            let info = handles::cloned(store)?.update(id, change)?;
            if let Some(out) = &out {
                out.write_json(&info)?;
            }
            Ok(())
        }
    })
}

/// Revokes a key for good (revoking a revoked key changes nothing). `reason` is optional
/// (NULL; at most `KW_MAX_REASON_LEN`). The record is written as JSON to the optional
/// `info_buf` (at least `KW_KEY_INFO_MAX_LEN` when given).
/// Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`, `KW_INVALID_ARGUMENT`, `KW_TOO_LONG`,
/// `KW_BUFFER_TOO_SMALL`, `KW_NOT_FOUND`, `KW_POLICY_LAST_ACTIVE_KEY`, `KW_CLOSED`,
/// `KW_STORAGE`.
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_revoke(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    reason: *const c_char,
    reason_len: usize,
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
            let reason = args::opt_text(reason, reason_len)?;
            let info = handles::cloned(store)?.revoke(id, reason)?;
            if let Some(out) = &out {
                out.write_json(&info)?;
            }
            Ok(())
        }
    })
}

/// Deletes a key and its usage history. Errors: `KW_NULL_ARGUMENT`, `KW_INVALID_UTF8`,
/// `KW_NOT_FOUND`, `KW_POLICY_LAST_ACTIVE_KEY`, `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// `id` must be NULL or valid for `id_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_delete(store: kw_store, id: *const c_char, id_len: usize) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract.
        let id = unsafe { args::text(id, id_len) }?;
        Ok(handles::cloned(store)?.delete(id)?)
    })
}

/// Replaces a key with a new one (same owner, name, scopes, env, metadata, lifetime length
/// and remaining credits). The old key stays valid for `grace_ms` (0 = refused at once;
/// `KW_DEFAULT_ROTATION_GRACE_MS` is the usual choice). The new full key and record are
/// written as by `kw_create` (same buffer rules).
/// Errors: those of `kw_create`, plus `KW_NOT_FOUND` and `KW_INVALID_ARGUMENT` (revoked key).
///
/// # Safety
/// Every pointer must be NULL or valid for its stated length; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_rotate(
    store: kw_store,
    id: *const c_char,
    id_len: usize,
    grace_ms: u64,
    key_buf: *mut u8,
    key_cap: usize,
    out_key_len: *mut usize,
    info_buf: *mut u8,
    info_cap: usize,
    out_info_len: *mut usize,
) -> kw_status {
    guard(|| {
        // SAFETY: caller's contract on every pointer.
        unsafe {
            let out = KeyOut::new(
                key_buf,
                key_cap,
                out_key_len,
                info_buf,
                info_cap,
                out_info_len,
            )?;
            let id = args::text(id, id_len)?;
            let created = handles::cloned(store)?.rotate(id, Duration::from_millis(grace_ms))?;
            out.write(&created)
        }
    })
}
