//! The engine's side of the shared verify table (`crate::table`): mapping the current
//! generation, building one from redb when there is none fit to use, serialising writers
//! across processes, the writer's slot protocol around each commit, repairing what a killed
//! writer left, and the per-process cache of decoded records.
//!
//! **Writers.** Every change to the table happens under the *table-writer lease* (a word in
//! the sync file: holder pid and deadline; taken over when the holder is dead or late, so a
//! SIGKILLed writer never blocks the others, and a forked child, having another pid, never
//! inherits it) and inside a redb write transaction. A change then:
//! 1. repairs what a previous writer left (slots in its intent list, changes committed to
//!    redb but not applied to the table: `catch_up`);
//! 2. runs the change in the write transaction;
//! 3. marks the slots it will touch *in doubt* (recorded in the table's intent list first),
//!    appends the new records and fills the slots — readers meeting an in-doubt slot answer
//!    from redb, which still holds the old state;
//! 4. commits;
//! 5. settles the slots and records the applied change sequence.
//!
//! A writer killed anywhere leaves slots in doubt (answered from redb, so never wrong) or
//! the table behind redb's change log; the next writer, or the next process's flusher,
//! repairs both.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::key_format::KeyId;
use crate::locks::RwLock;
use crate::schema::{
    CHANGES, CREDITS, KEY_RATE_SLOTS, KEYS, KeyInfo, META, StoredKey, stored_change_seq,
};
use crate::sys::mapped_file::process_exists;
use crate::table::{Geometry, Lookup, SharedTable, Slots, TableRecord};

/// How long a table-writer lease lasts without renewal; a holder that is alive but has not
/// finished by then (it never should: a build of 1 M keys takes seconds) is overtaken.
const WRITER_LEASE: Duration = Duration::from_secs(60);

/// Why a generation is built, when that is routine (not logged; counted in `stats()`).
const NO_GENERATION: &str = "no generation is recorded in the sync file";
const TABLE_FULL: &str = "the table is full (or its counters are damaged)";

/// A key record decoded from the table, shared by the verifies of this process.
#[derive(Debug)]
pub(crate) struct CachedRecord {
    pub digest: blake3::Hash,
    pub usage_cell: u32,
    pub slots: Slots,
    pub info: Arc<KeyInfo>,
}

/// Hashes a record ref (a heap offset chosen by keyward, not by a client) with one multiply:
/// SipHash would cost more than the rest of the cache lookup.
#[derive(Default)]
pub(crate) struct RefHasher(u64);

impl std::hash::Hasher for RefHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        // hashbrown tags buckets with the top bits: the multiply spreads the offset into them.
        self.0 = (self.0 ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type RecordCache = HashMap<u64, Arc<CachedRecord>, std::hash::BuildHasherDefault<RefHasher>>;

/// One mapped table generation and this process's cache of its decoded records (records
/// never change once written, so a cached one is never stale; a new record means a new ref).
pub(crate) struct TableView {
    pub table: SharedTable,
    cache: RwLock<RecordCache>,
    cache_capacity: usize,
}

impl TableView {
    fn new(table: SharedTable, cache_capacity: usize) -> TableView {
        TableView {
            table,
            cache: RwLock::new(RecordCache::default()),
            cache_capacity: cache_capacity.max(1),
        }
    }

    /// The decoded record at `record_ref`; `None` if it is damaged.
    #[inline]
    pub(crate) fn record(&self, record_ref: u64) -> Option<Arc<CachedRecord>> {
        if let Some(hit) = self.cache.read().get(&record_ref) {
            return Some(Arc::clone(hit));
        }
        self.load_record(record_ref)
    }

    /// Runs `f` on the decoded record at `record_ref` (`None` if it is damaged), under the
    /// cache's read lock when it is cached: no reference count is touched.
    #[inline]
    pub(crate) fn with_record<R>(
        &self,
        record_ref: u64,
        f: impl FnOnce(Option<&CachedRecord>) -> R,
    ) -> R {
        {
            let cache = self.cache.read();
            if let Some(hit) = cache.get(&record_ref) {
                return f(Some(hit));
            }
        }
        let loaded = self.load_record(record_ref);
        f(loaded.as_deref())
    }

    #[cold]
    fn load_record(&self, record_ref: u64) -> Option<Arc<CachedRecord>> {
        let Some(record) = self.table.read_record(record_ref) else {
            self.table.report_damage();
            return None;
        };
        let cached = Arc::new(CachedRecord {
            digest: blake3::Hash::from_bytes(record.digest),
            usage_cell: record.usage_cell,
            slots: record.slots,
            info: Arc::new(record.info),
        });
        let mut cache = self.cache.write();
        if cache.len() >= self.cache_capacity
            && let Some(victim) = cache.keys().next().copied()
        {
            cache.remove(&victim);
        }
        cache.insert(record_ref, Arc::clone(&cached));
        Some(cached)
    }

    /// The cached record of the key with this digest, if the table holds it and it is not in
    /// doubt.
    pub(crate) fn find(&self, digest: &blake3::Hash) -> Option<Arc<CachedRecord>> {
        match self.table.lookup(digest.as_bytes()) {
            Lookup::Found { record_ref } => self
                .record(record_ref)
                .filter(|record| record.digest == *digest),
            Lookup::Missing | Lookup::InDoubt => None,
        }
    }

    /// Decoded records in this process's cache.
    pub(crate) fn cached_records(&self) -> usize {
        self.cache.read().len()
    }
}

/// The table generation a call uses: borrowed from the engine's slot without touching a
/// reference count (the common case), or owned after a remap.
pub(crate) enum TableRef {
    Loaded(arc_swap::Guard<Option<Arc<TableView>>>),
    Owned(Arc<TableView>),
}

impl std::ops::Deref for TableRef {
    type Target = TableView;

    #[inline]
    fn deref(&self) -> &TableView {
        match self {
            TableRef::Loaded(guard) => guard
                .as_deref()
                .expect("a loaded table reference holds a table"),
            TableRef::Owned(view) => view,
        }
    }
}

impl TableRef {
    /// Whether two references name the same mapping.
    pub(crate) fn same_as(&self, other: &TableRef) -> bool {
        std::ptr::eq::<TableView>(&**self, &**other)
    }
}

/// The table-writer lease, released on drop.
pub(crate) struct WriterLease<'e> {
    engine: &'e Engine,
    word: u64,
    _local: std::sync::MutexGuard<'e, ()>,
}

impl Drop for WriterLease<'_> {
    fn drop(&mut self) {
        let _ = self.engine.sync.table_writer().compare_exchange(
            self.word,
            0,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

/// The state after the transaction of the keys a change reports, when the change knows it
/// (a bulk create: the records it just wrote), by position in its list of changed ids;
/// `None` entries (and ids past the end) are read back from the transaction.
pub(super) type KnownStates = Vec<Option<(StoredKey, Slots)>>;

/// A change to apply to the table: the key's state after the transaction.
struct PlannedChange {
    id: KeyId,
    /// The stored key and its credit slot, or `None` when it was deleted.
    after: Option<(StoredKey, Slots)>,
    /// The digest the key is found under (from the record before or after the change).
    digest: Option<blake3::Hash>,
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Engine {
    /// Path of the table file: beside the database, like the sync file.
    pub(super) fn table_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".kwtable");
        PathBuf::from(name)
    }

    /// The table generation every process should use now, mapped; remaps or rebuilds when
    /// this process's mapping is not it.
    #[inline]
    pub(super) fn current_table(&self) -> Result<TableRef> {
        let wanted = self.sync.table_generation().load(Ordering::Acquire);
        let guard = self.table.load();
        if let Some(view) = &*guard
            && view.table.generation() == wanted
            && view.table.is_intact()
        {
            return Ok(TableRef::Loaded(guard));
        }
        self.remap_table().map(TableRef::Owned)
    }

    #[cold]
    fn remap_table(&self) -> Result<Arc<TableView>> {
        let _local = self.table_lock.lock();
        let wanted = self.sync.table_generation().load(Ordering::Acquire);
        if let Some(view) = &*self.table.load()
            && view.table.generation() == wanted
            && view.table.is_intact()
        {
            return Ok(Arc::clone(view));
        }
        SharedTable::check_writable(&self.table_path())?;
        let rejection = if wanted == 0 {
            NO_GENERATION.to_string()
        } else {
            match SharedTable::open(&self.table_path(), self.pepper.table_tag(), wanted) {
                // A table behind the database (a writer died between its commit and applying
                // it, or an old copy of the file was put back) is caught up first, under the
                // writer lease, before any verify trusts it.
                Ok(table) if table.applied_seq() == self.committed_change_seq()? => {
                    return Ok(self.install(table));
                }
                Ok(_) => "the table is behind the database".to_string(),
                Err(reason) => reason,
            }
        };
        drop(_local);
        let lease = self.lock_table_writer()?;
        let result = self.contained(|| {
            let txn = self.db.begin_write()?;
            // Another process may have built one while this one waited for the lease.
            let wanted = self.sync.table_generation().load(Ordering::Acquire);
            if wanted != 0
                && let Ok(table) =
                    SharedTable::open(&self.table_path(), self.pepper.table_tag(), wanted)
            {
                let view = self.install(table);
                self.catch_up(&txn, &view)?;
                drop(txn);
                return Ok(view);
            }
            let view = self.build_generation(&rejection, 0, 0)?;
            drop(txn);
            Ok(view)
        });
        drop(lease);
        result
    }

    fn committed_change_seq(&self) -> Result<u64> {
        self.read(super::refresh::read_change_seq)
    }

    fn install(&self, table: SharedTable) -> Arc<TableView> {
        let view = Arc::new(TableView::new(table, self.record_cache_capacity));
        if let Some(old) = self.table.swap(Some(Arc::clone(&view))) {
            self.retired.lock().push((old, 2));
        }
        self.table_remaps.fetch_add(1, Ordering::Relaxed);
        view
    }

    /// Takes the table-writer lease: this process's writers one at a time, then the
    /// host-wide word (holder pid and deadline), overtaking a dead or late holder.
    pub(super) fn lock_table_writer(&self) -> Result<WriterLease<'_>> {
        let local = self.table_writer_lock.lock();
        let word = self.sync.table_writer();
        let me = u64::from(std::process::id()) << 32;
        let mut pause = Duration::from_micros(50);
        let started = Instant::now();
        loop {
            let now = unix_seconds();
            let mine = me | ((now + WRITER_LEASE.as_secs()) & 0xffff_ffff);
            let current = word.load(Ordering::Acquire);
            let holder = (current >> 32) as u32;
            let deadline = current & 0xffff_ffff;
            let free = current == 0
                || deadline < (now & 0xffff_ffff)
                || (holder != std::process::id() && !process_exists(holder));
            if free
                && word
                    .compare_exchange(current, mine, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return Ok(WriterLease {
                    engine: self,
                    word: mine,
                    _local: local,
                });
            }
            if started.elapsed() > WRITER_LEASE * 2 {
                return Err(Error::storage(
                    "timed out waiting for another process to finish changing the shared \
                     verify table",
                ));
            }
            // A writer holds it for one commit (milliseconds): back off, up to 2 ms.
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    }

    /// Builds a new generation from the committed state of redb and publishes it. Runs under
    /// the writer lease, inside a write transaction (so no commit happens meanwhile).
    /// `extra_keys` and `extra_words` reserve room for the change about to be applied.
    pub(super) fn build_generation(
        &self,
        reason: &str,
        extra_keys: u64,
        extra_words: u64,
    ) -> Result<Arc<TableView>> {
        let started = Instant::now();
        let txn = self.db.begin_read()?;
        let db_seq = super::refresh::read_change_seq(&txn)?;
        let legacy_schemes = super::legacy::stored_schemes(&txn)?;
        let keys = txn.open_table(KEYS)?;
        let credits = txn.open_table(CREDITS)?;
        let rate_slots = open_rate_slots(&txn)?;
        let count = keys.len()?;
        // One pass over the keys: each record encoded into an arena (usage cells numbered in
        // order), so the new table's heap is sized exactly.
        let mut arena: Vec<u64> = Vec::new();
        let mut entries: Vec<(KeyId, [u8; 32], std::ops::Range<usize>)> =
            Vec::with_capacity(count as usize);
        for item in keys.iter()? {
            let (id, bytes) = item?;
            let stored = StoredKey::decode(id.value(), bytes.value())?;
            let slots = Slots {
                credit: credits.get(id.value())?.map(|row| row.value().2),
                rate: match &rate_slots {
                    Some(table) => table.get(id.value())?.map(|row| row.value()),
                    None => None,
                },
            };
            let key_id = parse_stored_id(&stored.info.id)?;
            let cell = entries.len() as u32;
            let words = record_words(&stored, cell, slots)?;
            let digest = *stored.digest_hash()?.as_bytes();
            entries.push((key_id, digest, arena.len()..arena.len() + words.len()));
            arena.extend_from_slice(&words);
        }
        drop((keys, credits, rate_slots, txn));
        let geometry = Geometry::for_contents(count + extra_keys, arena.len() as u64 + extra_words);
        let mut table = SharedTable::create(&self.table_path(), geometry, self.pepper.table_tag())?;
        let mut cells = HashMap::with_capacity(entries.len());
        for (id, digest, words) in &entries {
            match insert_new(&table, id, digest, &arena[words.clone()]) {
                Ok(cell) => {
                    cells.insert(*id, cell);
                }
                Err(e) => {
                    table.discard();
                    return Err(e);
                }
            }
        }
        drop(arena);
        table.clear_intents();
        table.set_applied_seq(db_seq);
        // Schemes enabled by a change not committed yet (an import in progress) carry over.
        let carried = self
            .table
            .load()
            .as_ref()
            .map_or(0, |old| old.table.legacy_schemes());
        table.enable_legacy_schemes(legacy_schemes | carried);
        // Counts still in the generation this process maps move with the keys (not out of a
        // damaged table: its counts cannot be trusted, and are lost with it).
        if let Some(old) = &*self.table.load()
            && old.table.is_intact()
            && !old.table.damage_reported()
        {
            for cell in 0..old.table.cells_used() {
                let counts = old.table.drain_cell(cell);
                if counts.is_empty() {
                    continue;
                }
                match old
                    .table
                    .cell_key(cell)
                    .and_then(|id| Some((id, *cells.get(&id)?)))
                {
                    Some((id, new_cell)) => {
                        let rest = table.add_counts(new_cell, &counts);
                        if !rest.is_empty() {
                            self.keep_counts_locally(id, &rest);
                        }
                    }
                    None => {
                        if let Some(id) = old.table.cell_key(cell) {
                            self.keep_counts_locally(id, &counts);
                        }
                    }
                }
            }
        }
        table.publish(&self.table_path())?;
        let generation = table.generation();
        self.sync
            .table_generation()
            .store(generation, Ordering::Release);
        let view = self.install(table);
        self.table_rebuilds.fetch_add(1, Ordering::Relaxed);
        let routine = [NO_GENERATION, "missing", TABLE_FULL].contains(&reason);
        if count > 0 && !routine {
            // A first table and growth are routine (counted in stats); damage is news.
            eprintln!(
                "keyward: built the shared verify table {} ({count} keys, {} MB, {} ms): {reason}",
                self.table_path().display(),
                geometry.file_bytes() / 1_000_000,
                started.elapsed().as_millis()
            );
        }
        Ok(view)
    }

    /// Repairs what earlier writers left: slots in doubt, and changes committed to redb but
    /// not yet applied to the table. Runs under the writer lease in a write transaction that
    /// has changed nothing yet (so it sees exactly the committed state).
    pub(super) fn catch_up(&self, txn: &WriteTransaction, view: &Arc<TableView>) -> Result<()> {
        let table = &view.table;
        if table.damage_reported() {
            self.build_generation("a verify met a damaged slot or record", 0, 0)?;
            return Ok(());
        }
        let in_doubt = table.intents().unwrap_or_else(|| table.slots_in_doubt());
        let mut repaired = 0u64;
        for slot in in_doubt {
            if !table.is_in_doubt(slot) {
                continue;
            }
            repaired += 1;
            match table.read_record(table.slot_record(slot)) {
                Some(record) => {
                    let id = parse_stored_id(&record.info.id)?;
                    match read_key_in(txn, &id)? {
                        Some((stored, slots))
                            if stored.digest_hash()? == blake3::Hash::from_bytes(record.digest) =>
                        {
                            let words = record_words(&stored, record.usage_cell, slots)?;
                            let Some(record_ref) = table.append_record(&words) else {
                                return self.build_generation("the heap is full", 0, 0).map(|_| ());
                            };
                            table.fill_slot(slot, &record.digest, record_ref);
                        }
                        _ => table.bury_slot(slot),
                    }
                }
                // Claimed for a new key whose record never got written: the key, if it was
                // committed, comes back through the change log below.
                None => table.bury_slot(slot),
            }
            table.settle(slot);
        }
        table.clear_intents();
        if repaired > 0 {
            self.slots_repaired.fetch_add(repaired, Ordering::Relaxed);
        }
        let meta = txn.open_table(META)?;
        let db_seq = stored_change_seq(&meta)?;
        drop(meta);
        let applied = table.applied_seq();
        if applied == db_seq {
            return Ok(());
        }
        if applied > db_seq {
            self.build_generation(
                "the table is ahead of the database (restored backup?)",
                0,
                0,
            )?;
            return Ok(());
        }
        let log = txn.open_table(CHANGES)?;
        let oldest = log.first()?.map(|(k, _)| k.value());
        if oldest.is_none_or(|oldest| oldest > applied + 1) {
            drop(log);
            self.build_generation("the table fell behind the change log", 0, 0)?;
            return Ok(());
        }
        let mut changed = Vec::new();
        for item in log.range(applied + 1..=db_seq)? {
            let (_, id) = item?;
            if let Ok(id) = KeyId::parse(id.value())
                && !changed.contains(&id)
            {
                changed.push(id);
            }
        }
        drop(log);
        let mut plan = Vec::with_capacity(changed.len());
        for id in changed {
            let after = read_key_in(txn, &id)?;
            let Some((stored, _)) = &after else {
                // A deletion whose slot is unknown (its digest went with the record).
                self.build_generation("a deleted key must be removed", 0, 0)?;
                return Ok(());
            };
            if stored
                .info
                .legacy
                .as_ref()
                .is_some_and(|origin| origin.upgraded_at.is_some())
            {
                // An upgrade may have moved the key off a digest whose slot this writer
                // cannot name any more (the wrapped legacy digest is not kept).
                self.build_generation("an upgraded legacy key's old digest must be removed", 0, 0)?;
                return Ok(());
            }
            let digest = Some(stored.digest_hash()?);
            plan.push(PlannedChange { id, after, digest });
        }
        let Some(slots) = self.apply_planned(view, &plan)? else {
            self.build_generation(TABLE_FULL, 0, 0)?;
            return Ok(());
        };
        for slot in slots {
            table.settle(slot);
        }
        table.clear_intents();
        table.set_applied_seq(db_seq);
        self.catch_ups.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Step 3 of a change (see the module documentation), for the keys in `plan`: marks their
    /// slots in doubt, appends records, fills slots. Returns the slots to settle after the
    /// commit, or `None` when the table has no room (nothing was marked).
    fn apply_planned(&self, view: &TableView, plan: &[PlannedChange]) -> Result<Option<Vec<u64>>> {
        let table = &view.table;
        let mut new_keys = 0u64;
        let mut words_needed = 0u64;
        for change in plan {
            if let Some((stored, slot)) = &change.after {
                words_needed += record_words(stored, 0, *slot)?.len() as u64;
                let present = change
                    .digest
                    .is_some_and(|d| table.find_slot(d.as_bytes()).is_some());
                if !present {
                    new_keys += 1;
                }
            }
        }
        if !table.has_room(new_keys, words_needed) {
            return Ok(None);
        }
        let mut touched = Vec::with_capacity(plan.len());
        for change in plan {
            let Some(digest) = change.digest else {
                continue;
            };
            let existing = table.find_slot(digest.as_bytes());
            match &change.after {
                Some((stored, slots)) => {
                    // Room was checked above; running out anyway means the table is damaged
                    // (counters or slots overwritten): the caller builds a new generation,
                    // and whatever was marked stays in doubt until then.
                    let cell = match existing
                        .and_then(|slot| table.read_record(table.slot_record(slot)))
                    {
                        Some(old) => old.usage_cell,
                        None => match table.assign_cell(&change.id) {
                            Some(cell) => cell,
                            None => return Ok(None),
                        },
                    };
                    let words = record_words(stored, cell, *slots)?;
                    let slot = match existing {
                        Some(slot) => {
                            table.mark_in_doubt(slot);
                            slot
                        }
                        None => match table.claim_slot(digest.as_bytes()) {
                            Some(slot) => slot,
                            None => return Ok(None),
                        },
                    };
                    touched.push(slot);
                    let Some(record_ref) = table.append_record(&words) else {
                        return Ok(None);
                    };
                    table.fill_slot(slot, digest.as_bytes(), record_ref);
                }
                None => {
                    if let Some(slot) = existing {
                        table.mark_in_doubt(slot);
                        touched.push(slot);
                        table.bury_slot(slot);
                    }
                }
            }
        }
        Ok(Some(touched))
    }

    /// Steps 1–5 of a change around `commit` (see the module documentation). `body` runs in
    /// the write transaction and reports the ids it changed; `commit` appends them to the
    /// change log and commits, returning the new change sequence.
    pub(super) fn write_with_table<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<(T, Vec<KeyId>, KnownStates, Vec<blake3::Hash>)>,
        commit: impl FnOnce(WriteTransaction, &[KeyId]) -> Result<Option<u64>>,
    ) -> Result<T> {
        let _lease = self.lock_table_writer()?;
        let txn = self.db.begin_write()?;
        let mut view = self.current_table_for_write()?;
        self.catch_up(&txn, &view)?;
        view = self.current_table_for_write()?;
        let (value, changed, mut known, retired) = body(&txn)?;
        let mut touched = Vec::new();
        if !changed.is_empty() {
            let mut plan = Vec::with_capacity(changed.len());
            for (index, id) in changed.iter().enumerate() {
                let after = match known.get_mut(index).and_then(Option::take) {
                    Some(state) => Some(state),
                    None => read_key_in(&txn, id)?,
                };
                let digest = match &after {
                    Some((stored, _)) => Some(stored.digest_hash()?),
                    None => self.committed_digest(id)?,
                };
                plan.push(PlannedChange {
                    id: *id,
                    after,
                    digest,
                });
            }
            touched = match self.apply_planned(&view, &plan)? {
                Some(touched) => touched,
                None => {
                    let (keys, words) = plan_size(&plan)?;
                    // Grow by at least the keys already there (doubling), so a run of big
                    // batches (an import) rebuilds the table a logarithmic number of times.
                    let live = view.table.live_keys();
                    let heap = view.table.geometry().heap_words / 2;
                    view = self.build_generation(TABLE_FULL, keys.max(live), words.max(heap))?;
                    self.apply_planned(&view, &plan)?.ok_or_else(|| {
                        Error::storage("the shared verify table has no room after growing")
                    })?
                }
            };
        }
        // Digests a key gave up (an upgraded legacy key's wrapped legacy digest): their
        // slots are buried like a deleted key's, in doubt until the commit settles them.
        for digest in &retired {
            if let Some(slot) = view.table.find_slot(digest.as_bytes()) {
                view.table.mark_in_doubt(slot);
                view.table.bury_slot(slot);
                touched.push(slot);
            }
        }
        if !touched.is_empty() {
            crate::failpoint::hit("table-after-mark");
        }
        let committed = commit(txn, &changed);
        if !touched.is_empty() && committed.is_ok() {
            crate::failpoint::hit("table-after-commit");
        }
        // Settle only what was committed: after a failed commit the slots stay in doubt
        // (answered from redb) until the next writer repairs them from the committed state.
        let new_seq = committed?;
        for slot in &touched {
            view.table.settle(*slot);
        }
        if let Some(seq) = new_seq {
            view.table.set_applied_seq(seq);
        }
        view.table.clear_intents();
        Ok(value)
    }

    fn current_table_for_write(&self) -> Result<Arc<TableView>> {
        let wanted = self.sync.table_generation().load(Ordering::Acquire);
        if let Some(view) = &*self.table.load()
            && view.table.generation() == wanted
            && view.table.is_intact()
        {
            if view.table.is_file_at_path() {
                return Ok(Arc::clone(view));
            }
            // Another file was put in place of the table (an old copy restored, a file
            // replaced by hand): processes that opened since may map it. A new generation
            // brings every process back onto one table.
            return self.build_generation("the table file was replaced", 0, 0);
        }
        // Under the lease already: open the published generation or build one.
        if wanted != 0
            && let Ok(table) =
                SharedTable::open(&self.table_path(), self.pepper.table_tag(), wanted)
        {
            return Ok(self.install(table));
        }
        self.build_generation("this process's mapping is not the current generation", 0, 0)
    }

    /// The digest of a key as last committed (for a key the transaction deletes).
    fn committed_digest(&self, id: &KeyId) -> Result<Option<blake3::Hash>> {
        let txn = self.db.begin_read()?;
        let keys = txn.open_table(KEYS)?;
        let Some(bytes) = keys.get(id.as_str())? else {
            return Ok(None);
        };
        Ok(Some(
            StoredKey::decode(id.as_str(), bytes.value())?.digest_hash()?,
        ))
    }

    /// Counts that could not go to a table cell: kept in process memory for this process's
    /// next flush.
    pub(super) fn keep_counts_locally(&self, id: KeyId, counts: &crate::table::CellCounts) {
        let mut local = self.dirty.lock();
        let pending = local.entry(id).or_default();
        for (day, n) in counts.days {
            if n > 0 {
                pending.add_uses(day, n);
            }
        }
        pending.refused = pending.refused.saturating_add(counts.refused);
        pending.last_used = pending.last_used.max(counts.last_used);
    }

    /// Periodic check by the flusher: repairs a table a killed writer left in doubt or
    /// behind, if no writer is active.
    pub(super) fn check_table(&self) -> Result<()> {
        let view = self.current_table()?;
        let behind = view.table.applied_seq() < self.sync.change_counter().load(Ordering::Acquire)
            || view.table.intents().is_none_or(|slots| !slots.is_empty())
            || !view.table.is_file_at_path()
            || view.table.damage_reported()
            || self.owner_epoch_in_doubt();
        // Leave it to an active writer; a writer killed mid-change leaves its word set until
        // its deadline, and its slots must not wait that long (`lock_table_writer` takes a
        // dead or late holder's lease the same way).
        let current = self.sync.table_writer().load(Ordering::Acquire);
        let holder = (current >> 32) as u32;
        let active = current != 0
            && (current & 0xffff_ffff) >= (unix_seconds() & 0xffff_ffff)
            && (holder == std::process::id() || process_exists(holder));
        if !behind || active {
            return Ok(());
        }
        let _lease = self.lock_table_writer()?;
        self.settle_owner_epoch();
        self.contained(|| {
            let txn = self.db.begin_write()?;
            let view = self.current_table_for_write()?;
            if view.table.damage_reported() {
                self.build_generation("a verify met a damaged record", 0, 0)?;
                return Ok(());
            }
            self.catch_up(&txn, &view)
        })
    }
}

fn parse_stored_id(id: &str) -> Result<KeyId> {
    KeyId::parse(id).map_err(|_| Error::Corrupt {
        path: Default::default(),
        detail: format!("bad key id {id:?} in a key record"),
    })
}

fn read_key_in(txn: &WriteTransaction, id: &KeyId) -> Result<Option<(StoredKey, Slots)>> {
    let keys = txn.open_table(KEYS)?;
    let Some(bytes) = keys.get(id.as_str())? else {
        return Ok(None);
    };
    let stored = StoredKey::decode(id.as_str(), bytes.value())?;
    let credit = txn
        .open_table(CREDITS)?
        .get(id.as_str())?
        .map(|row| row.value().2);
    let rate = txn
        .open_table(KEY_RATE_SLOTS)?
        .get(id.as_str())?
        .map(|row| row.value());
    Ok(Some((stored, Slots { credit, rate })))
}

/// The `key_rate_slots` table in a read transaction; `None` for a store written before rate
/// limits existed (no key has a rate slot).
pub(super) fn open_rate_slots(
    txn: &redb::ReadTransaction,
) -> Result<Option<redb::ReadOnlyTable<&'static str, u32>>> {
    match txn.open_table(KEY_RATE_SLOTS) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn record_words(stored: &StoredKey, cell: u32, slots: Slots) -> Result<Vec<u64>> {
    Ok(TableRecord {
        digest: *stored.digest_hash()?.as_bytes(),
        usage_cell: cell,
        slots,
        info: stored.info.clone(),
    }
    .encode())
}

fn plan_size(plan: &[PlannedChange]) -> Result<(u64, u64)> {
    let mut words = 0;
    for change in plan {
        if let Some((stored, slot)) = &change.after {
            words += record_words(stored, 0, *slot)?.len() as u64;
        }
    }
    Ok((plan.len() as u64, words))
}

/// Inserts a key into a table being built (no reader sees it yet), with its record already
/// encoded for the usage cell it gets (cells are assigned in order).
fn insert_new(table: &SharedTable, id: &KeyId, digest: &[u8; 32], record: &[u64]) -> Result<u32> {
    let full = || Error::storage("the new shared verify table is too small (this is a bug)");
    let cell = table.assign_cell(id).ok_or_else(full)?;
    let slot = table.claim_slot(digest).ok_or_else(full)?;
    let record_ref = table.append_record(record).ok_or_else(full)?;
    table.fill_slot(slot, digest, record_ref);
    table.settle(slot);
    Ok(cell)
}
