//! Opening and closing stores, flush and stats.

use std::path::PathBuf;
use std::time::Duration;

use super::args::{self, out_ptr, put};
use super::handles::{self, kw_store};
use super::panic::guard;
use super::status::kw_status;
use super::types::{
    KW_FLUSH_MANUAL, KW_MAX_PATH_LEN, KW_MAX_UPSTREAM_URL_LEN, kw_concurrency, kw_open_flags,
    kw_options, kw_store_replica_stats, kw_store_stats, kw_store_table_stats,
};
use crate::digest::{PEPPER_LEN, Pepper};
use crate::policy::Policies;
use crate::store::{Concurrency, PepperSource, Store, StoreOptions};

/// A path from C bytes (no NUL, at most `KW_MAX_PATH_LEN`).
fn path_from_bytes(raw: &[u8]) -> Result<PathBuf, kw_status> {
    if raw.len() > KW_MAX_PATH_LEN {
        return Err(kw_status::KW_TOO_LONG);
    }
    if raw.is_empty() || raw.contains(&0) {
        return Err(kw_status::KW_INVALID_ARGUMENT);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(raw)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(raw)
            .map(PathBuf::from)
            .map_err(|_| kw_status::KW_INVALID_UTF8)
    }
}

/// Converts `kw_options` to the engine's options. Returns the path and whether to pin.
///
/// # Safety
/// Every pointer of `o` as in [`args::bytes`].
unsafe fn convert_options(o: &kw_options) -> Result<(PathBuf, StoreOptions, bool), kw_status> {
    // SAFETY: caller's contract on the options' pointers.
    let path = path_from_bytes(unsafe { args::bytes(o.path.cast(), o.path_len) }?)?;
    // SAFETY: as above.
    let pepper = unsafe { args::opt_bytes(o.pepper, o.pepper_len) }?;
    // SAFETY: as above.
    let pepper_file = unsafe { args::opt_bytes(o.pepper_file.cast(), o.pepper_file_len) }?;
    // SAFETY: as above.
    let prefix = unsafe { args::opt_text(o.prefix, o.prefix_len) }?;
    let concurrency = match o.concurrency {
        x if x == kw_concurrency::KW_CONCURRENCY_MULTI_PROCESS as u32 => Concurrency::MultiProcess,
        x if x == kw_concurrency::KW_CONCURRENCY_SINGLE_PROCESS as u32 => {
            Concurrency::SingleProcess
        }
        _ => return Err(kw_status::KW_INVALID_ARGUMENT),
    };
    let known_flags =
        kw_open_flags::KW_OPEN_PERSISTENT as u32 | kw_open_flags::KW_OPEN_UPSTREAM as u32;
    if o.flags & !known_flags != 0 {
        return Err(kw_status::KW_INVALID_ARGUMENT);
    }
    let upstream = if o.flags & kw_open_flags::KW_OPEN_UPSTREAM as u32 != 0 {
        // SAFETY: the caller set KW_OPEN_UPSTREAM: `o` is a whole kw_options of this header,
        // and `upstream` follows the (pointer, length) rules.
        let url = unsafe { args::opt_text(o.upstream, o.upstream_len) }?;
        if url.is_some_and(|u| u.len() > KW_MAX_UPSTREAM_URL_LEN) {
            return Err(kw_status::KW_TOO_LONG);
        }
        url.map(str::to_owned)
    } else {
        None
    };
    let pepper = match (pepper, pepper_file) {
        (Some(_), Some(_)) => return Err(kw_status::KW_INVALID_ARGUMENT),
        (Some(bytes), None) if bytes.len() == PEPPER_LEN => {
            PepperSource::Bytes(Pepper::from_bytes(bytes)?)
        }
        (Some(bytes), None) => {
            let hex = std::str::from_utf8(bytes).map_err(|_| kw_status::KW_PEPPER_INVALID)?;
            PepperSource::Bytes(Pepper::from_hex(hex)?)
        }
        (None, Some(file)) => PepperSource::File(path_from_bytes(file)?),
        (None, None) => PepperSource::DefaultFile,
    };
    let flush_interval = match o.flush_interval_ms {
        0 => crate::DEFAULT_FLUSH_INTERVAL,
        KW_FLUSH_MANUAL => Duration::ZERO,
        ms => Duration::from_millis(ms),
    };
    let index_capacity = match o.index_capacity {
        0 => crate::DEFAULT_INDEX_CAPACITY,
        n => usize::try_from(n).map_err(|_| kw_status::KW_INVALID_ARGUMENT)?,
    };
    let options = StoreOptions {
        concurrency,
        pepper,
        prefix: prefix.map(str::to_owned),
        policies: Policies {
            max_active_keys_per_owner: (o.max_active_keys_per_owner != 0)
                .then_some(o.max_active_keys_per_owner),
            keep_last_key: o.keep_last_key != 0,
            max_lifetime: (o.max_lifetime_ms != 0)
                .then(|| Duration::from_millis(o.max_lifetime_ms)),
        },
        flush_interval,
        index_capacity,
        upstream,
        ..StoreOptions::default()
    };
    Ok((
        path,
        options,
        o.flags & kw_open_flags::KW_OPEN_PERSISTENT as u32 != 0,
    ))
}

/// Opens (creating if needed) the store at `options->path` and writes a new handle to
/// `*out_store`.
///
/// Re-opening a path this process already has open (through any handle still open, or
/// pinned by `KW_OPEN_PERSISTENT`) returns a new handle onto the same store with its warm
/// verify index, without touching the disk; the options must then agree on concurrency,
/// pepper, policies, prefix and upstream URL (a prefix or URL not given takes the open
/// store's; else `KW_CONFIG_MISMATCH`). Each handle must be closed
/// with `kw_close`; the store really closes when its last handle is closed (unless pinned).
///
/// Errors: `KW_NULL_ARGUMENT` (`options`, `options->path` or `out_store` NULL),
/// `KW_INVALID_ARGUMENT` (empty path, NUL in it, unknown flag or concurrency, both pepper
/// and pepper file, prefix not `[a-z0-9]{1,16}`, an upstream that is not a PostgreSQL
/// connection URL), `KW_TOO_LONG` (path or pepper-file path past `KW_MAX_PATH_LEN`, upstream
/// past `KW_MAX_UPSTREAM_URL_LEN`), `KW_INVALID_UTF8` (prefix, upstream), the pepper errors,
/// `KW_DIRECTORY_MISSING`, `KW_LOCKED`, `KW_READ_ONLY`, `KW_CORRUPT`, `KW_WRONG_PEPPER`,
/// `KW_NEWER_FORMAT`, `KW_CONFIG_MISMATCH`, `KW_STORAGE`, `KW_UPSTREAM_UNSUPPORTED` (an
/// upstream given to a library built without PostgreSQL support).
///
/// With an upstream, the management calls listed at `kw_options.upstream` may fail with
/// `KW_UPSTREAM_UNAVAILABLE` (PostgreSQL unreachable: nothing was changed),
/// `KW_UPSTREAM_SCHEMA` or `KW_WRONG_PEPPER` (the upstream's hosts use another pepper);
/// `kw_last_error_message` says which.
///
/// # Safety
/// `options` must be NULL or point to a valid `kw_options` whose pointers follow the
/// (pointer, length) rules; `out_store` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_open(
    options: *const kw_options,
    out_store: *mut kw_store,
) -> kw_status {
    guard(|| {
        let out = out_ptr(out_store)?;
        if options.is_null() {
            return Err(kw_status::KW_NULL_ARGUMENT);
        }
        // SAFETY: non-NULL; the caller guarantees a valid kw_options.
        let options = unsafe { &*options };
        // SAFETY: caller's contract on the options' pointers.
        let (path, options, persistent) = unsafe { convert_options(options) }?;
        let store = Store::open(&path, options)?;
        if persistent {
            handles::pin(&store);
        }
        let handle = handles::insert(store)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, handle) };
        Ok(())
    })
}

/// Closes a handle. Closing the store's last handle (of a store not pinned by
/// `KW_OPEN_PERSISTENT`) flushes pending usage and closes the store; closing any other handle
/// only releases it (pending usage is left to the background flush, so a per-request
/// open/close costs no disk write). The handle is released even when the flush fails (the
/// flush's status is then returned; the counts stay queued for the store's next flush).
///
/// `kw_close(KW_STORE_NONE)` (0) is a no-op returning `KW_OK`. Closing an already closed
/// (or never issued) handle returns `KW_CLOSED` and does nothing else.
///
/// Thread safety: a close waits for verifies in flight on the same handle; other calls in
/// flight finish normally (they keep the store alive until they return); calls that start
/// after the close get `KW_CLOSED`.
#[unsafe(no_mangle)]
pub extern "C" fn kw_close(store: kw_store) -> kw_status {
    guard(|| {
        if store == handles::KW_STORE_NONE {
            return Ok(());
        }
        let (store, last) = handles::remove(store)?;
        if last {
            store.close()?;
        }
        // Otherwise the store stays open behind other handles (or pinned): its pending usage
        // is flushed by the background flush, so a per-request close never costs a commit.
        Ok(())
    })
}

/// Writes all pending usage of the store now; `*out_written` receives the number of keys
/// written. Errors: `KW_NULL_ARGUMENT` (store 0 or `out_written` NULL), `KW_CLOSED`,
/// `KW_STORAGE`.
///
/// # Safety
/// `out_written` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_flush(store: kw_store, out_written: *mut usize) -> kw_status {
    guard(|| {
        let out = out_ptr(out_written)?;
        let written = handles::cloned(store)?.flush()?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, written) };
        Ok(())
    })
}

/// This process's counters for the store. Errors: `KW_NULL_ARGUMENT`, `KW_CLOSED`.
///
/// # Safety
/// `out_stats` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_stats(store: kw_store, out_stats: *mut kw_store_stats) -> kw_status {
    guard(|| {
        let out = out_ptr(out_stats)?;
        let stats = handles::cloned(store)?.stats()?;
        let value = kw_store_stats {
            commits: stats.commits,
            refreshes: stats.refreshes,
            indexed_keys: stats.indexed_keys as u64,
            dirty_keys: stats.dirty_keys as u64,
            index_complete: stats.index_complete as u32,
            reserved: 0,
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, value) };
        Ok(())
    })
}

/// The store's state against its upstream PostgreSQL (several hosts): whether it is a
/// replica, its cursor, whether its replicator is connected and how stale it is (from the
/// status file `<db>.replica` that `keyward replicate` writes). All 0 (staleness -1 when a
/// replica never synced) for a store of its own; a status file that cannot be read counts as
/// no report (never synced). Errors: `KW_NULL_ARGUMENT`, `KW_CLOSED`, `KW_STORAGE`.
///
/// # Safety
/// `out_stats` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_replica_stats(
    store: kw_store,
    out_stats: *mut kw_store_replica_stats,
) -> kw_status {
    guard(|| {
        let out = out_ptr(out_stats)?;
        let value = match handles::cloned(store)?.stats()?.replica {
            None => kw_store_replica_stats::default(),
            Some(r) => kw_store_replica_stats {
                is_replica: 1,
                connected: r.connected as u32,
                cursor: r.cursor,
                synced_at_ms: r.synced_at_ms,
                staleness_ms: r
                    .staleness_ms
                    .map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                reported_at_ms: r.reported_at_ms,
            },
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, value) };
        Ok(())
    })
}

/// The shared verify table of the store as this process sees it: generation, size, keys,
/// bytes, whether it is mapped, records cached, rebuilds and repairs. Errors:
/// `KW_NULL_ARGUMENT`, `KW_CLOSED`.
///
/// # Safety
/// `out_stats` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_table_stats(
    store: kw_store,
    out_stats: *mut kw_store_table_stats,
) -> kw_status {
    guard(|| {
        let out = out_ptr(out_stats)?;
        let table = handles::cloned(store)?.stats()?.table;
        let value = kw_store_table_stats {
            generation: table.generation,
            slots: table.slots,
            keys: table.keys,
            lookup_bytes: table.lookup_bytes,
            file_bytes: table.file_bytes,
            cached_records: table.cached_records as u64,
            rebuilds: table.rebuilds,
            slots_repaired: table.slots_repaired,
            mapped: table.mapped as u32,
            reserved: 0,
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, value) };
        Ok(())
    })
}

/// Whether two open handles share one store (`*out_same` = 1) or not (0): re-opening a path
/// this process has open yields the same store. Errors: `KW_NULL_ARGUMENT`, `KW_CLOSED`.
///
/// # Safety
/// `out_same` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kw_same_store(a: kw_store, b: kw_store, out_same: *mut u32) -> kw_status {
    guard(|| {
        let out = out_ptr(out_same)?;
        let first = handles::cloned(a)?;
        let same = handles::with(b, |s| Ok(s.same_store(&first)))?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { put(out, same as u32) };
        Ok(())
    })
}

/// Releases every store pinned by `KW_OPEN_PERSISTENT`: a pinned store with no open handle
/// is flushed and closed now; one with open handles closes with its last `kw_close`. For
/// hosts with an orderly shutdown (an `atexit` hook, a test harness); a PHP-FPM worker may
/// simply exit (losing at most one flush interval of usage counts). Returns the first flush
/// error, if any (every store is released regardless). Never fails otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn kw_release_persistent() -> kw_status {
    guard(|| {
        let mut result = Ok(());
        for (store, last) in handles::unpin_all() {
            if last && let Err(e) = store.close() {
                result = result.and(Err(kw_status::from(e)));
            }
        }
        result
    })
}
