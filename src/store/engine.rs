//! The state of one open store in one process, its background flusher, and the write path
//! shared by every change (commit, then log, then signal).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redb::{ReadableDatabase, WriteTransaction};

use super::StoreStats;
use super::flush_pacing::FlushPacing;
use super::open::DEFAULT_FLUSH_INTERVAL;
use super::open::{StoreOptions, sync_file_path};
use super::table_sync::KnownStates;
use super::table_sync::TableView;
use crate::clock::Clock;
use crate::digest::Pepper;
use crate::error::{ErrorCode, Result};
use crate::key_format::KeyId;
use crate::locks::Mutex;
use crate::policy::Policies;
use crate::schema::{
    CHANGE_LOG_KEEP, CHANGES, CREDITS, KeyInfo, META, META_CHANGE_SEQ, StoredKey, stored_change_seq,
};
use crate::sys::fork;
use crate::sys::shared_memory::SyncFile;
use crate::table::Slots;
use crate::usage::PendingUsage;

#[cfg(test)]
thread_local! {
    /// Test hook: runs in `Engine::start` between loading the index and binding the sync
    /// file (the window of the open race of issue 13, item 8).
    pub(super) static BEFORE_SYNC_BIND: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Most unmatched presentations queued between two flushes; past that they are not counted
/// (a flood of garbage must not grow memory).
pub(crate) const MAX_QUEUED_REFUSALS: usize = 65_536;

/// One open store in one process.
pub(crate) struct Engine {
    /// The database file (the table and sync files sit beside it).
    pub(super) path: PathBuf,
    pub(super) db: ClosingGuard,
    pub(super) sync: SyncFile,
    pub(super) pepper: Pepper,
    pub(super) prefix: String,
    pub(super) policies: Policies,
    pub(super) clock: Arc<dyn Clock>,
    /// The shared verify table generation this process maps (see `table_sync`).
    pub(super) table: ArcSwapOption<TableView>,
    /// Generations this process mapped before the current one, with the flushes left before
    /// they are unmapped (each flush moves counts made in them late).
    pub(super) retired: Mutex<Vec<(Arc<TableView>, u32)>>,
    /// Serialises remapping in this process.
    pub(super) table_lock: Mutex<()>,
    /// Serialises this process's table writers (before the host-wide lease).
    pub(super) table_writer_lock: Mutex<()>,
    /// Most decoded key records this process keeps (`StoreOptions::index_capacity`).
    pub(super) record_cache_capacity: usize,
    /// This process's owner rules (see `owners`).
    pub(super) owners: super::owners::OwnerCache,
    /// Usage this process could not count in the shared table (keys answered from redb
    /// while their slot was in doubt, counts moved out of a retired generation).
    pub(super) dirty: Mutex<HashMap<KeyId, PendingUsage>>,
    /// Ids presented with a secret that matched no key (unknown id or wrong secret: the
    /// verify path cannot tell them apart, by design). The flush counts a refusal for those
    /// that exist. Bounded by [`MAX_QUEUED_REFUSALS`].
    pub(super) unmatched: Mutex<Vec<KeyId>>,
    /// Held for a whole flush, so `flush()` returns only once every count recorded before it
    /// is written — including a batch the background flusher had already taken.
    pub(super) flush_lock: Mutex<()>,
    /// Test hook: a pause (µs) inside each flush between taking the batch and writing it.
    #[cfg(feature = "test-hooks")]
    pub(super) flush_pause_micros: AtomicU64,
    /// Test hook: flushes that have taken their batch and entered that pause.
    #[cfg(feature = "test-hooks")]
    pub(super) paused_flushes: AtomicU64,
    /// Test hook: passes of the background flusher (every interval, paced flush or not).
    #[cfg(feature = "test-hooks")]
    pub(super) flusher_passes: AtomicU64,
    /// Test hook: holds top-ups of credits between commit and pool.
    #[cfg(feature = "test-hooks")]
    pub(super) top_up_gate: super::credits::TopUpGate,
    /// Test hook: `Store::usage` calls that found a flush in flight and waited for it.
    #[cfg(feature = "test-hooks")]
    pub(super) usage_reads_waited: AtomicU64,
    pub(super) commits: AtomicU64,
    /// Times this process mapped another table generation.
    pub(super) table_remaps: AtomicU64,
    /// Table generations this process built.
    pub(super) table_rebuilds: AtomicU64,
    /// Changes committed by a writer that died before applying them, applied by this one.
    pub(super) catch_ups: AtomicU64,
    /// Slots left in doubt by a dead writer that this process repaired.
    pub(super) slots_repaired: AtomicU64,
    /// Times this process found its sync mapping damaged, truncated or replaced, and remapped.
    pub(super) sync_recoveries: AtomicU64,
    /// The owner rate limits as this process last read them (see `rate_limits`).
    pub(super) owner_limits: arc_swap::ArcSwap<super::rate_limits::OwnerLimits>,
    /// Rate-limit compare-and-swaps this process had to retry (another request moved the
    /// word between its read and its swap): evidence of contention.
    pub(super) rate_cas_retries: AtomicU64,
    /// Rate units this process could not hand back (another request moved the word first).
    pub(super) rate_refunds_lost: AtomicU64,
    fork_generation: u64,
    /// Set when a write failed in the storage layer: redb then refuses further writes until
    /// the database is reopened, which the store does on its next call (multi-process mode).
    poisoned: AtomicBool,
    flusher: Mutex<Option<Flusher>>,
}

struct Flusher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Engine {
    /// Finishes opening: sync file, initial index, background flusher.
    pub(super) fn start(
        path: &Path,
        db: redb::Database,
        pepper: Pepper,
        prefix: String,
        options: &StoreOptions,
    ) -> Result<Engine> {
        fork::install();
        let sync = SyncFile::open(&sync_file_path(path))?;
        let engine = Engine {
            path: path.to_owned(),
            db: ClosingGuard(Some(db)),
            sync,
            pepper,
            prefix,
            policies: options.policies.clone(),
            clock: options.clock.clone(),
            table: ArcSwapOption::empty(),
            retired: Mutex::new(Vec::new()),
            table_lock: Mutex::new(()),
            table_writer_lock: Mutex::new(()),
            record_cache_capacity: options.index_capacity,
            owners: super::owners::OwnerCache::new(),
            dirty: Mutex::new(HashMap::new()),
            unmatched: Mutex::new(Vec::new()),
            flush_lock: Mutex::new(()),
            #[cfg(feature = "test-hooks")]
            flush_pause_micros: AtomicU64::new(0),
            #[cfg(feature = "test-hooks")]
            paused_flushes: AtomicU64::new(0),
            #[cfg(feature = "test-hooks")]
            flusher_passes: AtomicU64::new(0),
            #[cfg(feature = "test-hooks")]
            top_up_gate: Default::default(),
            #[cfg(feature = "test-hooks")]
            usage_reads_waited: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            table_remaps: AtomicU64::new(0),
            table_rebuilds: AtomicU64::new(0),
            catch_ups: AtomicU64::new(0),
            slots_repaired: AtomicU64::new(0),
            sync_recoveries: AtomicU64::new(0),
            owner_limits: arc_swap::ArcSwap::from_pointee(Default::default()),
            rate_cas_retries: AtomicU64::new(0),
            rate_refunds_lost: AtomicU64::new(0),
            fork_generation: fork::generation(),
            poisoned: AtomicBool::new(false),
            flusher: Mutex::new(None),
        };
        #[cfg(test)]
        if let Some(hook) = BEFORE_SYNC_BIND.with(|hook| hook.borrow_mut().take()) {
            hook();
        }
        // Processes still holding a replaced sync file notice within one of their flush
        // intervals; wait for two (see `sync_binding`).
        let grace = 2 * options.flush_interval.max(DEFAULT_FLUSH_INTERVAL);
        engine.bind_sync_file(Some(grace))?;
        engine.current_table()?;
        Ok(engine)
    }

    /// Starts the background flusher (needs the engine behind an `Arc`).
    pub(super) fn spawn_flusher(self: &Arc<Engine>, interval: Duration) {
        if interval.is_zero() {
            return;
        }
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let weak: Weak<Engine> = Arc::downgrade(self);
        let stop_in_thread = stop.clone();
        let thread = std::thread::Builder::new()
            .name("keyward-flush".into())
            .spawn(move || flusher_loop(weak, stop_in_thread, interval))
            .expect("cannot spawn the keyward flush thread");
        *self.flusher.lock() = Some(Flusher { stop, thread });
    }

    /// Stops the background flusher and waits for the flush it may be running: once this
    /// returns, no flush of this engine runs on that thread again.
    ///
    /// The flusher holds the engine (a strong reference) for the length of each pass, so the
    /// owner must call this before letting go of its reference: otherwise the engine's last
    /// reference, and with it the final flush in [`Engine`]'s `Drop`, can end up on the
    /// flusher thread after the owner's close has returned, where a process exit cuts it
    /// short — losing the counts it had already taken out of the shared cells, other
    /// processes' counts included.
    pub(super) fn stop_flusher(&self) {
        let Some(flusher) = self.flusher.lock().take() else {
            return;
        };
        *flusher.stop.0.lock() = true;
        flusher.stop.1.notify_all();
        if flusher.thread.thread().id() != std::thread::current().id() {
            let _ = flusher.thread.join();
        }
    }

    pub(crate) fn fork_generation(&self) -> u64 {
        self.fork_generation
    }

    /// Whether a storage failure left the database needing a reopen.
    #[inline]
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Records a failed write: storage-level errors poison the engine.
    pub(crate) fn note_write_failure<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result
            && matches!(e.code(), ErrorCode::Storage | ErrorCode::Corrupt)
        {
            self.poisoned.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Runs storage work so that a panic inside redb (it can panic on a damaged file) becomes
    /// a `Corrupt` error and marks the store for reopening, instead of unwinding into the
    /// host.
    pub(super) fn contained<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
            Ok(result) => result,
            Err(panic) => {
                self.poisoned.store(true, Ordering::Relaxed);
                Err(crate::error::Error::Corrupt {
                    path: Default::default(),
                    detail: format!(
                        "the storage layer failed ({}); the file may be damaged",
                        super::open::panic_message(&panic)
                    ),
                })
            }
        }
    }

    /// Moves this engine's unflushed usage to `successor` (a reopen in the same process).
    pub(super) fn hand_over_usage(&self, successor: &Engine) {
        let queued = std::mem::take(&mut *self.dirty.lock());
        let mut theirs = successor.dirty.lock();
        for (id, pending) in queued {
            theirs.entry(id).or_default().absorb(pending);
        }
    }

    pub(super) fn now(&self) -> crate::clock::Timestamp {
        self.clock.now()
    }

    pub(super) fn stats(&self) -> StoreStats {
        let view = self.table.load_full();
        let (indexed_keys, table) = match &view {
            Some(view) => {
                let geometry = view.table.geometry();
                let keys = view.table.live_keys();
                (
                    keys as usize,
                    super::TableStats {
                        generation: view.table.generation(),
                        slots: geometry.slots,
                        keys,
                        lookup_bytes: geometry.lookup_bytes(),
                        file_bytes: geometry.file_bytes(),
                        mapped: true,
                        cached_records: view.cached_records(),
                        rebuilds: self.table_rebuilds.load(Ordering::Relaxed),
                        slots_repaired: self.slots_repaired.load(Ordering::Relaxed),
                    },
                )
            }
            None => (0, super::TableStats::default()),
        };
        let shared_dirty = view.as_ref().map_or(0, |v| v.table.dirty_cell_count());
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            refreshes: self.table_remaps.load(Ordering::Relaxed)
                + self.catch_ups.load(Ordering::Relaxed),
            indexed_keys,
            index_complete: view.is_some(),
            dirty_keys: self.dirty.lock().len() + shared_dirty,
            sync_recoveries: self.sync_recoveries.load(Ordering::Relaxed),
            rate_cas_retries: self.rate_cas_retries.load(Ordering::Relaxed),
            rate_refunds_lost: self.rate_refunds_lost.load(Ordering::Relaxed),
            table,
            replica: None,
        }
    }

    /// Runs `body` in one write transaction, appends the ids it reports changed to the change
    /// log, commits, then signals other processes and refreshes this one's index. The signal
    /// comes strictly after the commit returns: a reader that reloads on the new counter must
    /// find the change.
    pub(super) fn write_change<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<(T, Vec<KeyId>)>,
    ) -> Result<T> {
        let result = self.contained(|| {
            self.write_change_inner(|txn| {
                body(txn).map(|(value, ids)| {
                    (value, ids, Vec::new(), Vec::new(), CommitSignals::default())
                })
            })
        });
        self.note_write_failure(result)
    }

    /// As [`Engine::write_change`], for a change that moves keys to new digests: `body` also
    /// reports the digests given up, whose slots are removed from the shared table with the
    /// commit (an upgraded legacy key's wrapped legacy digest).
    pub(super) fn write_change_retiring<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<(T, Vec<KeyId>, Vec<blake3::Hash>)>,
    ) -> Result<T> {
        let result = self.contained(|| {
            self.write_change_inner(|txn| {
                body(txn).map(|(value, ids, retired)| {
                    (value, ids, Vec::new(), retired, CommitSignals::default())
                })
            })
        });
        self.note_write_failure(result)
    }

    /// As [`Engine::write_change_retiring`], for a change that may also change owner records
    /// or owner rate limits (a replica applying the upstream's log): `body` says which, and
    /// the owner epoch and the owner-limit version move around the commit as the owners'
    /// own writes move them.
    #[cfg(feature = "postgres")]
    pub(super) fn write_change_signalling<T>(
        &self,
        body: impl FnOnce(
            &WriteTransaction,
        ) -> Result<(T, Vec<KeyId>, Vec<blake3::Hash>, CommitSignals)>,
    ) -> Result<T> {
        let result = self.contained(|| {
            self.write_change_inner(|txn| {
                body(txn).map(|(value, ids, retired, signals)| {
                    (value, ids, Vec::new(), retired, signals)
                })
            })
        });
        self.note_write_failure(result)
    }

    /// As [`Engine::write_change`], for a change that knows the state after it of (some of)
    /// the keys it changed (see [`KnownStates`]): the shared table is updated without
    /// reading them back.
    pub(super) fn write_change_known<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<(T, Vec<KeyId>, KnownStates)>,
    ) -> Result<T> {
        let result = self.contained(|| {
            self.write_change_inner(|txn| {
                body(txn).map(|(value, ids, known)| {
                    (value, ids, known, Vec::new(), CommitSignals::default())
                })
            })
        });
        self.note_write_failure(result)
    }

    #[allow(clippy::type_complexity)]
    fn write_change_inner<T>(
        &self,
        body: impl FnOnce(
            &WriteTransaction,
        )
            -> Result<(T, Vec<KeyId>, KnownStates, Vec<blake3::Hash>, CommitSignals)>,
    ) -> Result<T> {
        let signals = std::cell::Cell::new(CommitSignals::default());
        self.write_with_table(
            |txn| {
                body(txn).map(|(value, ids, known, retired, s)| {
                    signals.set(s);
                    (value, ids, known, retired)
                })
            },
            |txn, changed| {
                let signals = signals.get();
                let mut new_seq = None;
                if !changed.is_empty() {
                    let mut meta = txn.open_table(META)?;
                    let mut seq = stored_change_seq(&meta)?;
                    let mut log = txn.open_table(CHANGES)?;
                    for id in changed {
                        seq += 1;
                        log.insert(seq, id.as_str())?;
                    }
                    meta.insert(META_CHANGE_SEQ, seq.to_le_bytes().as_slice())?;
                    if seq > CHANGE_LOG_KEEP && seq % 256 < changed.len() as u64 {
                        log.retain_in(..seq - CHANGE_LOG_KEEP, |_, _| false)?;
                    }
                    new_seq = Some(seq);
                }
                // Owner records changed: the epoch is odd from before the commit until after
                // it (see `owners`), so no process keeps rules read in between.
                let marked = signals.owner_records.then(|| self.mark_owner_epoch_word());
                let committed = txn.commit();
                if let Some(before) = marked {
                    self.settle_owner_epoch_word(before);
                }
                committed?;
                self.commits.fetch_add(1, Ordering::Relaxed);
                if let Some(seq) = new_seq {
                    self.sync.change_counter().fetch_max(seq, Ordering::AcqRel);
                }
                if let Some(seq) = signals.owner_rate_seq {
                    // Strictly after the commit, as `Store::set_owner_rate_limit` does.
                    self.sync
                        .owner_rate_version()
                        .fetch_max(seq, Ordering::AcqRel);
                }
                Ok(new_seq)
            },
        )
    }

    /// Reads one key and its credit slot in a read transaction.
    pub(super) fn read_key(&self, id: &KeyId) -> Result<Option<(StoredKey, Slots)>> {
        self.contained(|| self.read_key_inner(id))
    }

    fn read_key_inner(&self, id: &KeyId) -> Result<Option<(StoredKey, Slots)>> {
        let txn = self.db.begin_read()?;
        let keys = txn.open_table(crate::schema::KEYS)?;
        let Some(bytes) = keys.get(id.as_str())? else {
            return Ok(None);
        };
        let stored = StoredKey::decode(id.as_str(), bytes.value())?;
        let credit = txn
            .open_table(CREDITS)?
            .get(id.as_str())?
            .map(|row| row.value().2);
        let rate = match super::table_sync::open_rate_slots(&txn)? {
            Some(table) => table.get(id.as_str())?.map(|row| row.value()),
            None => None,
        };
        Ok(Some((stored, Slots { credit, rate })))
    }

    /// Public info of a key.
    pub(super) fn info(&self, id: &KeyId) -> Result<Option<KeyInfo>> {
        self.ensure_fresh()?;
        Ok(self.read_key(id)?.map(|(stored, _)| stored.info))
    }

    /// Runs `work` in a read transaction, inside the panic guard that turns a redb panic on
    /// a damaged file into `CORRUPT` (every read of the store goes through here or through
    /// another guarded engine method).
    pub(super) fn read<T>(
        &self,
        work: impl FnOnce(&redb::ReadTransaction) -> Result<T>,
    ) -> Result<T> {
        self.contained(|| {
            let txn = self.db.begin_read()?;
            work(&txn)
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_flusher();
        // Best effort: a failure here loses at most this interval's counts (documented).
        let _ = self.flush();
    }
}

/// The redb handle, closed inside a panic guard: on a damaged file redb can panic while it
/// writes its allocator state at close, and a drop must never unwind into the host.
pub(crate) struct ClosingGuard(Option<redb::Database>);

impl std::ops::Deref for ClosingGuard {
    type Target = redb::Database;

    fn deref(&self) -> &redb::Database {
        self.0
            .as_ref()
            .expect("the database is only taken when the engine drops")
    }
}

impl Drop for ClosingGuard {
    fn drop(&mut self) {
        let db = self.0.take();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(db)));
    }
}

fn flusher_loop(engine: Weak<Engine>, stop: Arc<(Mutex<bool>, Condvar)>, interval: Duration) {
    let mut pacing = FlushPacing::new(interval);
    loop {
        {
            let stopped = stop.0.lock();
            if *stopped {
                return;
            }
            let (stopped, _) = stop
                .1
                .wait_timeout(stopped, interval)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *stopped {
                return;
            }
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        #[cfg(feature = "test-hooks")]
        engine.flusher_passes.fetch_add(1, Ordering::Release);
        let now = Instant::now();
        if pacing.is_due(now) {
            // Errors are retried at the next due pass; the counts stay pending meanwhile.
            let _ = engine.flush_periodic(interval);
            pacing.flushed(now, Instant::now());
        } else {
            // The last flush was long: this one waits (see `flush_pacing`), keeping the
            // host's lease so no other process's flusher takes the counts meanwhile.
            engine.hold_flush_lease(interval);
        }
        // Re-derive the shared counter from the database now and then, so a process that
        // died between a commit and its signal cannot leave the others stale for long, and
        // move to a sync file that replaced ours.
        let _ = engine.check_sync_binding();
        let _ = engine.check_table();
    }
}

/// What a change tells other processes besides the change log (see
/// [`Engine::write_change_signalling`]).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CommitSignals {
    /// Owner records changed: the owner epoch moves around the commit.
    pub owner_records: bool,
    /// Owner rate limits changed: the version to publish after the commit.
    pub owner_rate_seq: Option<u64>,
}
