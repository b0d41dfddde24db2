//! The store: a redb file shared by many processes, a per-process verify index in front of it,
//! and usage counters flushed in batches.
//!
//! Split by job: [`open`] (opening, options, the process-wide registry, fork handling),
//! `engine` (the state of one open store), `refresh` (cross-process invalidation), `verify`
//! (the hot path), `manage` (create, update, revoke, delete, rotate, queries), `usage`
//! (flushing and usage queries), `credits` (usage credits shared across processes) and
//! `owners` (owner suspension and allowed scopes, seen by every process's next verify).
//! `rate_limits` (rate limits per key and per owner, shared across processes).

mod audit;
mod credits;
mod engine;
mod flush_pacing;
mod key_view;
mod legacy;
mod manage;
mod open;
mod owners;
mod rate_limits;
mod refresh;
mod registry;
#[cfg(feature = "postgres")]
mod replica;
mod replica_guard;
pub(crate) mod replica_status;
mod sync_binding;
mod table_sync;
mod upstream_link;
mod usage;
mod usage_rows;
mod verify;
mod warnings;

pub(crate) use key_view::VerdictRef;
#[cfg(feature = "postgres")]
pub(crate) use legacy::{empty_report, tally};
pub(crate) use manage::check_scopes;
#[cfg(feature = "postgres")]
pub(crate) use manage::normalize_scopes as normalize_scopes_for_upstream;
#[cfg(feature = "postgres")]
pub(crate) use owners::{OwnerRecordV1, OwnerState, check_owner_args};
#[cfg(feature = "postgres")]
pub(crate) use replica::{Snapshot, Subject, UpstreamChange};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

pub use self::audit::{AuditAction, AuditEvent, AuditPage, AuditQuery, MAX_ACTOR_LEN};
use self::engine::Engine;
pub use self::legacy::{LegacyImportReport, MAX_LEGACY_SOURCE_ID_LEN};
pub use self::manage::{
    CreatedKey, DEFAULT_ROTATION_GRACE, KeyUpdate, ListOptions, MAX_METADATA_LEN, MAX_NAME_LEN,
    MAX_OWNER_LEN, MAX_PAGE_SIZE, MAX_REASON_LEN, MAX_SCOPE_LEN, MAX_SCOPES, NewCredits, NewKey,
    Page, StateFilter,
};
pub use self::open::{
    Concurrency, DEFAULT_FLUSH_INTERVAL, DEFAULT_INDEX_CAPACITY, DEFAULT_PREFIX, PepperSource,
    StoreOptions, default_pepper_path,
};
pub use self::owners::OwnerInfo;
pub use self::usage::{CreditBalance, MAX_USAGE_DAYS};
pub use self::verify::{MAX_PRESENTED_LEN, Presented, VerifyRequest};
use crate::error::{Error, Result};
use crate::sys::fork;

/// Counters describing one process's view of a store (for tests, benchmarks and operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Write transactions this process committed on the store.
    pub commits: u64,
    /// Times this process mapped another generation of the shared verify table or applied
    /// changes a killed writer had left unapplied.
    pub refreshes: u64,
    /// Rate-limit compare-and-swaps this process retried because another request (of any
    /// process) moved the word first.
    pub rate_cas_retries: u64,
    /// Rate units a refused verify of this process could not hand back (see `rate_limits`).
    pub rate_refunds_lost: u64,
    /// Keys in the shared verify table this process answers from.
    pub indexed_keys: usize,
    /// Whether this process maps the shared verify table (every key is then in it, and a
    /// miss is answered from memory).
    pub index_complete: bool,
    /// Keys with usage not yet flushed (host-wide counts in the shared table plus this
    /// process's own).
    pub dirty_keys: usize,
    /// Times this process found its mapping of the sync file damaged, truncated or replaced
    /// and mapped it again.
    pub sync_recoveries: u64,
    /// The shared verify table.
    pub table: TableStats,
    /// For a replica of an upstream PostgreSQL (several hosts): its cursor, whether its
    /// replicator is connected, and how stale it is. `None` for a store of its own.
    pub replica: Option<ReplicaStats>,
}

/// A replica store's state against its upstream PostgreSQL (see `StoreStats::replica`), from
/// the store (its cursor) and the status file its replicator writes (`<db>.replica`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// The last upstream change sequence applied to this store.
    pub cursor: u64,
    /// Whether the host's replicator (`keyward replicate` or a `Replicator` thread) was
    /// connected to PostgreSQL at its last report.
    pub connected: bool,
    /// When the store was last known up to date with the upstream (ms since the epoch); 0 =
    /// never (no replicator has synced it yet).
    pub synced_at_ms: i64,
    /// How long ago that was, in ms (`None` when never synced). A replicator that is
    /// connected and idle confirms it every poll interval (1 s by default), so a figure well
    /// above that means the host may be missing changes: verifies go on with what it has.
    pub staleness_ms: Option<u64>,
    /// When the replicator last wrote its status (ms since the epoch; 0 = never): a
    /// replicator that died stops updating it.
    pub reported_at_ms: i64,
}

/// The shared verify table as one process sees it (see `StoreStats::table`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Generation (a random number naming the table file now in use); 0 = none mapped.
    pub generation: u64,
    /// Slots of the lookup array.
    pub slots: u64,
    /// Keys in the table.
    pub keys: u64,
    /// Bytes of the part every verify touches (slots, usage cells, dirty bits).
    pub lookup_bytes: u64,
    /// Bytes of the whole file (with the record heap).
    pub file_bytes: u64,
    /// Whether this process maps it.
    pub mapped: bool,
    /// Key records this process keeps decoded.
    pub cached_records: usize,
    /// Generations this process built (missing, damaged or outgrown table).
    pub rebuilds: u64,
    /// Slots a killed writer left in doubt that this process repaired.
    pub slots_repaired: u64,
}

/// An open key store. Cheap to clone; safe to share between threads.
///
/// Opening a path this process already has open hands back the same store (see
/// [`Store::open`]). The last clone to go flushes pending usage and closes the database.
#[derive(Clone)]
pub struct Store {
    handle: Arc<Handle>,
    /// Stamped on the audit events of this handle's changes (`Store::with_actor`).
    actor: Option<Arc<str>>,
}

/// The shared state behind every clone of a [`Store`].
pub(crate) struct Handle {
    path: PathBuf,
    options: StoreOptions,
    engine: ArcSwap<Engine>,
    /// False for stores over a custom backend: the path cannot reopen them.
    reopenable: bool,
    /// Days of audit events kept (0 = all).
    audit_keep_days: std::sync::atomic::AtomicU32,
    /// The upstream PostgreSQL its management calls go to (`StoreOptions::upstream`).
    upstream: Option<upstream_link::Link>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let engine = self.engine.load_full();
        if engine.fork_generation() != fork::generation() {
            // Opened by a parent before fork(): its redb state and locks belong to the
            // parent. Dropping it here could release the parent's locks, so leak it.
            std::mem::forget(engine);
            return;
        }
        // The last handle: stop the flusher here, so the engine's final flush runs on this
        // thread before the close returns (see `Engine::stop_flusher`).
        engine.stop_flusher();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.handle.path)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`. If this process already has that path
    /// open, returns the same store (sharing its warm verify index), provided the options
    /// agree on mode, pepper and policies.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        registry::open(path.as_ref(), options)
    }

    /// Opens a store that is not shared through the process-wide registry (mostly for tests
    /// that want two independent views of one file in one process).
    pub fn open_unshared(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_owned();
        let upstream = upstream_link::from_option(options.upstream.as_deref())?;
        let engine = Engine::open(&path, &options)?;
        Store::from_engine(path, options, engine, true, upstream).marked_if_replica()
    }

    /// Opens a store over a custom redb storage backend, outside the registry. For the
    /// reliability suite's fault injection; `path` only names the sync and pepper files.
    /// Only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn open_with_backend(
        path: impl AsRef<Path>,
        backend: impl redb::StorageBackend,
        options: StoreOptions,
    ) -> Result<Store> {
        let path = path.as_ref().to_owned();
        let upstream = upstream_link::from_option(options.upstream.as_deref())?;
        let engine = Engine::open_with_backend(&path, backend, &options)?;
        Store::from_engine(path, options, engine, false, upstream).marked_if_replica()
    }

    fn from_engine(
        path: PathBuf,
        options: StoreOptions,
        engine: Engine,
        reopenable: bool,
        upstream: Option<upstream_link::Link>,
    ) -> Store {
        let engine = Arc::new(engine);
        engine.spawn_flusher(options.flush_interval);
        let audit_keep_days = options.audit_retention_days.unwrap_or(0).into();
        Store {
            handle: Arc::new(Handle {
                path,
                options,
                engine: ArcSwap::new(engine),
                reopenable,
                audit_keep_days,
                upstream,
            }),
            actor: None,
        }
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.handle.path
    }

    /// The current engine, reopened first if this process is a fork child of the one that
    /// opened the store.
    ///
    /// Also reopens, in multi-process mode, after a storage failure that left redb refusing
    /// writes (a full disk, say), so a long-lived worker recovers by itself.
    #[inline]
    fn engine(&self) -> Result<Guard<Arc<Engine>>> {
        let engine = self.handle.engine.load();
        if engine.fork_generation() == fork::generation() && !engine.is_poisoned() {
            return Ok(engine);
        }
        drop(engine);
        self.reopen()?;
        Ok(self.handle.engine.load())
    }

    /// Takes no lock: a fork child must never wait on a lock a parent thread held at the
    /// fork. Racing threads may each open an engine; one installs its own with a
    /// compare-and-swap, the others close theirs.
    #[cold]
    fn reopen(&self) -> Result<()> {
        let current = self.handle.engine.load_full();
        let forked = current.fork_generation() != fork::generation();
        if !forked && !current.is_poisoned() {
            return Ok(());
        }
        if !forked
            && (self.handle.options.concurrency == Concurrency::SingleProcess
                || !self.handle.reopenable)
        {
            // An exclusive lock cannot be taken twice: keep reporting the failure. The host
            // must close and reopen the store.
            return Ok(());
        }
        let fresh = Arc::new(Engine::open(&self.handle.path, &self.handle.options)?);
        fresh.spawn_flusher(self.handle.options.flush_interval);
        let previous = self.handle.engine.compare_and_swap(&current, fresh.clone());
        if !Arc::ptr_eq(&previous, &current) {
            // Another thread reopened first; `fresh` closes when dropped here.
            return Ok(());
        }
        let previous = Guard::into_inner(previous);
        if forked {
            // The inherited engine's redb handle, flusher and locks belong to the parent:
            // never drop it in the child (see `Handle::drop`). Its unflushed usage is the
            // parent's to write.
            std::mem::forget(previous);
            std::mem::forget(current);
        } else {
            // Its flusher is stopped and joined here, as in `Handle::drop`.
            current.stop_flusher();
            current.hand_over_usage(&fresh);
        }
        Ok(())
    }

    /// Writes all pending usage now. Returns the number of keys written.
    ///
    /// Also checks that this process still maps the sync file the database is bound to (the
    /// background flusher does this every interval; a process that flushes only by hand does
    /// it here).
    pub fn flush(&self) -> Result<usize> {
        let engine = self.engine()?;
        let written = engine.flush()?;
        engine.check_sync_binding()?;
        Ok(written)
    }

    /// For a process about to exit with the store still open (pinned stores, at `atexit`):
    /// stops the background flusher (waiting for its pass in flight), then writes all
    /// pending usage. A flusher left running could take the host's counts out of the shared
    /// cells just before the exit and never write them.
    pub(crate) fn flush_before_exit(&self) -> Result<usize> {
        let engine = self.engine()?;
        engine.stop_flusher();
        engine.flush()
    }

    /// Flushes pending usage and releases this handle. The database closes when the last
    /// handle onto it is gone.
    pub fn close(self) -> Result<()> {
        self.flush().map(|_| ())
    }

    /// This process's counters for the store.
    pub fn stats(&self) -> Result<StoreStats> {
        let engine = self.engine()?;
        let mut stats = engine.stats();
        stats.replica = self.replica_stats(engine.now())?;
        Ok(stats)
    }

    /// The replica part of [`Store::stats`]: a store is a replica once it holds an upstream
    /// cursor (or was opened with an upstream URL).
    fn replica_stats(&self, now: crate::clock::Timestamp) -> Result<Option<ReplicaStats>> {
        let cursor = self.engine()?.upstream_cursor()?;
        if cursor.is_none() && self.upstream_link().is_none() {
            return Ok(None);
        }
        // A status file that cannot be read counts as no report (never synced): `stats` must
        // not start failing because of it, and "never synced" is what an operator should see.
        let status = replica_status::ReplicaStatus::read(&self.handle.path)
            .ok()
            .flatten();
        Ok(Some(ReplicaStats {
            cursor: cursor.unwrap_or(0),
            connected: status.as_ref().is_some_and(|s| s.connected),
            synced_at_ms: status.as_ref().map_or(0, |s| s.synced_at),
            staleness_ms: status.as_ref().and_then(|s| s.staleness_ms(now)),
            reported_at_ms: status.as_ref().map_or(0, |s| s.updated_at),
        }))
    }

    /// Marks the store as if a write had failed in the storage layer (tests of the recovery).
    /// Only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn simulate_storage_failure(&self) -> Result<()> {
        let engine = self.engine()?;
        let _ = engine.note_write_failure::<()>(Err(Error::storage("simulated failure")));
        Ok(())
    }

    /// Makes every flush pause between taking its batch and writing it (tests of the races
    /// around the background flusher). Only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn pause_flushes_for_test(&self, pause: std::time::Duration) -> Result<()> {
        self.engine()?.flush_pause_micros.store(
            pause.as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// How many flushes have taken their batch and entered the pause set by
    /// `Store::pause_flushes_for_test` (tests wait for it instead of sleeping). Only with the
    /// `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn paused_flushes_for_test(&self) -> Result<u64> {
        Ok(self
            .engine()?
            .paused_flushes
            .load(std::sync::atomic::Ordering::Acquire))
    }

    /// How many times the background flusher has woken (every flush interval, whether its
    /// paced flush ran or waited; tests wait for it instead of sleeping). Only with the
    /// `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn flusher_passes_for_test(&self) -> Result<u64> {
        Ok(self
            .engine()?
            .flusher_passes
            .load(std::sync::atomic::Ordering::Acquire))
    }

    /// The host's usage-flush lease as the shared table holds it: (holder pid, deadline in
    /// seconds since the epoch, low 32 bits); `(0, 0)` when free or without a table. Only with
    /// the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn flush_lease_for_test(&self) -> Result<(u32, u64)> {
        Ok(self.engine()?.flush_lease().unwrap_or((0, 0)))
    }

    /// How many `Store::usage` calls of this handle's store found a flush in flight (of this
    /// process or another) and waited for its commit (tests wait for it instead of sleeping).
    /// Only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn usage_reads_waited_for_test(&self) -> Result<u64> {
        Ok(self
            .engine()?
            .usage_reads_waited
            .load(std::sync::atomic::Ordering::Acquire))
    }

    /// Holds (`true`) every top-up of usage credits between its commit and its credits
    /// reaching the shared pool, or releases them (tests of the race between processes
    /// spending one key's credits). Only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn hold_top_ups_for_test(&self, hold: bool) -> Result<()> {
        self.engine()?.top_up_gate.set_closed(hold);
        Ok(())
    }

    /// Top-ups held by `Store::hold_top_ups_for_test` so far, and top-ups and reads of credits
    /// that found their credit slot locked by another top-up (tests wait for these instead of sleeping). Only
    /// with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn top_up_counts_for_test(&self) -> Result<(u64, u64)> {
        let gate = &self.engine()?.top_up_gate;
        Ok((
            gate.held.load(std::sync::atomic::Ordering::Acquire),
            gate.slot_waits.load(std::sync::atomic::Ordering::Acquire),
        ))
    }

    /// Whether two handles share one underlying store.
    pub fn same_store(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }

    /// Runs redb's integrity check on the file (needs exclusive use of the store in this
    /// process; used by the reliability suite and the CLI).
    pub fn check_integrity(path: impl AsRef<Path>) -> Result<bool> {
        let mut db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(path.as_ref())
            .map_err(|e| open::map_open_error(path.as_ref(), e))?;
        db.check_integrity()
            .map_err(|e| open::map_open_error(path.as_ref(), e))
    }
}

pub(crate) fn not_found(id: &str) -> Error {
    Error::NotFound {
        key_id: id.to_owned(),
    }
}
