//! Writing pending usage in one batched transaction, and reading usage back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redb::ReadableTable;
use serde::Serialize;

use std::collections::BTreeMap;

use super::engine::{Engine, MAX_QUEUED_REFUSALS};
use super::usage_rows::{self, UsageRow};
use super::{Store, not_found};
use crate::clock::{Day, Timestamp};
use crate::error::{Error, Result};
use crate::key_format::KeyId;
use crate::schema::{
    CREDITS, CreditTerms, KEY_USAGE, KEYS, KeyInfo, OWNER_KEYS, StoredKey, USAGE_DAYS, USAGE_V1,
};
use crate::table::CellCounts;
use crate::usage::{DailyUsage, PendingUsage, UsageStats};

/// How long a flush waits for readers of usage (each reads two rows) before it goes on
/// without the flush lock.
const FLUSH_LOCK_PATIENCE: Duration = Duration::from_secs(1);
/// How long a reader of usage waits for a flush in flight (normally a commit: milliseconds)
/// before it reads what it can see.
const USAGE_READ_PATIENCE: Duration = Duration::from_secs(5);

/// Longest range of days a usage query may span.
pub const MAX_USAGE_DAYS: i32 = 3660;

/// A limited key's credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreditBalance {
    /// Credits left now (database and shared pool).
    pub remaining: u64,
    /// The key's terms.
    pub terms: CreditTerms,
}

impl Engine {
    /// Writes every pending count — this process's and the host's in the shared table — in
    /// one transaction. Returns the number of keys written.
    pub(super) fn flush(&self) -> Result<usize> {
        self.contained(|| self.flush_inner(true))
    }

    /// The background flusher's flush: the host's shared counts only if this process holds
    /// the host-wide flush lease (one commit per interval for the whole host, whatever the
    /// number of processes), its own counts always.
    pub(super) fn flush_periodic(&self, interval: std::time::Duration) -> Result<usize> {
        let shared = self.hold_flush_lease(interval);
        self.contained(|| self.flush_inner(shared))
    }

    /// Takes or renews the flush lease of the current table generation: free, already ours,
    /// expired, or held by a process that no longer exists.
    pub(super) fn hold_flush_lease(&self, interval: std::time::Duration) -> bool {
        let Some(view) = self.table.load_full() else {
            return false;
        };
        let word = view.table.flush_lease();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let me = std::process::id();
        let lasts = (interval * 3)
            .max(std::time::Duration::from_secs(3))
            .as_secs();
        let mine = pack_lease(me, now + lasts);
        let current = word.load(Ordering::Acquire);
        let (holder, deadline) = unpack_lease(current);
        let takeable = current == 0
            || holder == me
            || deadline < (now & 0xffff_ffff)
            || !crate::sys::mapped_file::process_exists(holder);
        takeable
            && word
                .compare_exchange(current, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// The flush lease as the current table holds it: (holder pid, deadline in seconds since
    /// the epoch, low 32 bits); `None` without a table, `(0, 0)` when free.
    #[cfg(feature = "test-hooks")]
    pub(super) fn flush_lease(&self) -> Option<(u32, u64)> {
        let view = self.table.load_full()?;
        Some(unpack_lease(
            view.table.flush_lease().load(Ordering::Acquire),
        ))
    }

    fn flush_inner(&self, shared_counts: bool) -> Result<usize> {
        let _serialised = self.flush_lock.lock();
        // Counts made late in generations this process no longer uses join its own.
        self.drain_retired();
        // The host's counts in the shared table are taken out of their cells inside the write
        // transaction, so no other writer (a flusher, a table rebuild moving counts to a new
        // generation) can take them at the same time. A flusher killed between taking them
        // and its commit loses them (at most one interval, the documented cost of a flusher
        // crash); a commit that fails puts them back.
        // (Not from a table found damaged: it is rebuilt, and its counts are lost with it.)
        let view = self
            .table
            .load_full()
            .filter(|v| shared_counts && v.table.is_intact() && !v.table.damage_reported());
        let nothing_local = self.dirty.lock().values().all(PendingUsage::is_empty)
            && self.unmatched.lock().is_empty();
        if nothing_local
            && view
                .as_ref()
                .is_none_or(|v| v.table.dirty_cell_count() == 0)
        {
            return Ok(0);
        }
        let txn = self.db.begin_write()?;
        // From here to the commit, the counts taken out of memory and the shared table are in
        // neither place for readers: `Store::usage` waits on this lock meanwhile. Taken once
        // the write lock is ours, so readers never wait for another writer's transaction.
        let _readers_wait = self.sync.lock_flushes(true, FLUSH_LOCK_PATIENCE, || {});
        // This process's own counts.
        let local: Vec<(KeyId, PendingUsage)> = std::mem::take(&mut *self.dirty.lock())
            .into_iter()
            .filter(|(_, pending)| !pending.is_empty())
            .collect();
        let unmatched_ids = std::mem::take(&mut *self.unmatched.lock());
        let mut batch: Vec<(KeyId, PendingUsage)> = local.clone();
        // Refusals of presentations that matched no key, per id (most ids are unknown).
        let mut unmatched: BTreeMap<KeyId, u64> = BTreeMap::new();
        for id in &unmatched_ids {
            *unmatched.entry(*id).or_default() += 1;
        }
        let mut shared: Vec<(u32, KeyId, CellCounts)> = Vec::new();
        if let Some(view) = &view {
            for cell in view.table.take_dirty_cells() {
                let counts = view.table.drain_cell(cell);
                if counts.is_empty() {
                    continue;
                }
                match view.table.cell_key(cell) {
                    Some(id) => shared.push((cell, id, counts)),
                    None => continue, // a damaged cell: nothing to count it against
                }
            }
        }
        for (_, id, counts) in &shared {
            let mut pending = PendingUsage::default();
            for (day, n) in counts.days {
                if n > 0 {
                    pending.add_uses(day, n);
                }
            }
            pending.refused = counts.refused;
            pending.last_used = counts.last_used;
            batch.push((*id, pending));
        }
        // Key order, one entry per key (this process's counts and the shared cell's of the
        // same key merged): neighbouring rows share B-tree pages. A sorted list rather than
        // a map: a busy host's flush holds tens of thousands of keys.
        batch.sort_unstable_by_key(|(id, _)| *id);
        batch.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1.absorb(std::mem::take(&mut later.1));
            }
            same
        });
        if batch.is_empty() && unmatched.is_empty() {
            return Ok(0);
        }
        #[cfg(feature = "test-hooks")]
        {
            let pause = self.flush_pause_micros.load(Ordering::Relaxed);
            if pause > 0 {
                self.paused_flushes.fetch_add(1, Ordering::Release);
                std::thread::sleep(std::time::Duration::from_micros(pause));
            }
        }
        let write = |txn: redb::WriteTransaction| -> Result<()> {
            {
                let keys = txn.open_table(KEYS)?;
                let mut usage = txn.open_table(KEY_USAGE)?;
                let mut days = txn.open_table(USAGE_DAYS)?;
                let mut v1 = if usage_rows::has_v1_table(&txn)? {
                    Some(txn.open_table(USAGE_V1)?)
                } else {
                    None
                };
                for (id, pending) in &batch {
                    // One walk of the B-tree per key (get_mut reads and replaces in place):
                    // the flush writes a row for every key used since the last one, and its
                    // latest day's count rides in that row.
                    let added_to_stored = match usage.get_mut(id.as_str())? {
                        Some(mut stored) => {
                            let mut row = UsageRow::from_tuple(stored.value());
                            let to_days = row.add(pending);
                            stored.insert(row.to_tuple())?;
                            Some(to_days)
                        }
                        None => None,
                    };
                    let to_days = match added_to_stored {
                        Some(to_days) => to_days,
                        None => {
                            // A usage row exists only beside its key's record (both are
                            // removed in one transaction), so only a key's first flush reads
                            // `KEYS` to skip a key deleted meanwhile (its history went with
                            // it).
                            if keys.get(id.as_str())?.is_none() {
                                continue;
                            }
                            let mut row = match &mut v1 {
                                Some(v1) => usage_rows::take_v1_row(v1, id.as_str())?,
                                None => None,
                            }
                            .unwrap_or_default();
                            let to_days = row.add(pending);
                            usage.insert(id.as_str(), row.to_tuple())?;
                            to_days
                        }
                    };
                    usage_rows::add_to_days(&mut days, id.as_str(), &to_days)?;
                }
                for (id, n) in &unmatched {
                    // Most of these ids name no key: `get_mut` would copy the B-tree path
                    // of each miss, so the record is looked up first.
                    if keys.get(id.as_str())?.is_none() {
                        continue; // an unknown id: nothing to count it against
                    }
                    let mut row = match usage.get(id.as_str())? {
                        Some(stored) => UsageRow::from_tuple(stored.value()),
                        None => match &mut v1 {
                            Some(v1) => usage_rows::take_v1_row(v1, id.as_str())?,
                            None => None,
                        }
                        .unwrap_or_default(),
                    };
                    row.refused = row.refused.saturating_add(*n);
                    usage.insert(id.as_str(), row.to_tuple())?;
                }
            }
            crate::failpoint::hit("flush-before-commit");
            txn.commit()?;
            Ok(())
        };
        match write(txn) {
            Ok(()) => {
                crate::failpoint::hit("flush-after-commit");
                self.commits.fetch_add(1, Ordering::Relaxed);
                Ok(batch.len() + unmatched.len())
            }
            Err(e) => {
                let e = self.note_write_failure::<()>(Err(e)).unwrap_err();
                // Nothing is lost: the shared counts go back to their cells (or to this
                // process's memory if a cell moved on to another day meanwhile), this
                // process's own to its memory, for the next flush.
                if let Some(view) = &view {
                    for (cell, id, counts) in &shared {
                        let rest = view.table.add_counts(*cell, counts);
                        if !rest.is_empty() {
                            self.keep_counts_locally(*id, &rest);
                        }
                    }
                }
                let mut dirty = self.dirty.lock();
                for (id, pending) in local {
                    dirty.entry(id).or_default().absorb(pending);
                }
                let mut queue = self.unmatched.lock();
                let room = MAX_QUEUED_REFUSALS.saturating_sub(queue.len());
                queue.extend(unmatched_ids.into_iter().take(room));
                Err(e)
            }
        }
    }

    /// Moves counts made late in generations this process no longer maps into its own
    /// memory (each cell is taken by one process only: the move is an atomic swap), and
    /// unmaps generations that have had their last chance.
    ///
    /// A generation's chances run out only while nothing but this list holds it: a verify
    /// that loaded it before the switch (descheduled for longer than two flushes, say) still
    /// counts in it, and those counts need a drain after it let go.
    fn drain_retired(&self) {
        let mut retired = self.retired.lock();
        for (view, chances) in retired.iter_mut() {
            // Read before the drain, so the drain comes after the last count any other
            // holder made (the fence pairs with the release of the holder's reference).
            if Arc::strong_count(view) == 1 {
                std::sync::atomic::fence(Ordering::Acquire);
                *chances = chances.saturating_sub(1);
            } else {
                *chances = (*chances).max(1);
            }
            if !view.table.is_intact() || view.table.damage_reported() {
                continue; // a damaged table's counts cannot be trusted
            }
            for cell in 0..view.table.cells_used() {
                let counts = view.table.drain_cell(cell);
                if !counts.is_empty()
                    && let Some(id) = view.table.cell_key(cell)
                {
                    self.keep_counts_locally(id, &counts);
                }
            }
        }
        retired.retain(|(_, chances)| *chances > 0);
    }

    /// What the shared table holds, not yet flushed, for the key with this digest.
    pub(super) fn shared_pending(&self, digest: &blake3::Hash) -> Option<CellCounts> {
        let view = self.current_table().ok()?;
        let record = view.find(digest)?;
        Some(view.table.cell_counts(record.usage_cell))
    }

    fn stored_usage(&self, id: &KeyId) -> Result<UsageStats> {
        self.read(|txn| {
            Ok(usage_rows::read_row_in(txn, id.as_str())?
                .unwrap_or_default()
                .stats())
        })
    }
}

impl Store {
    /// A key's usage: what is stored, plus what this process and the host's shared table
    /// hold not yet flushed. Waits for a flush in flight (of any process) to commit, so every
    /// count is seen once. Counts other processes keep in their own memory (keys outside the
    /// shared table) are seen once they flush.
    pub fn usage(&self, id: &str) -> Result<UsageStats> {
        let engine = self.engine()?;
        let key_id = KeyId::parse(id).map_err(|_| not_found(id))?;
        if engine.info(&key_id)?.is_none() {
            return Err(not_found(id));
        }
        let digest = engine
            .read_key(&key_id)?
            .map(|(stored, _)| stored.digest_hash())
            .transpose()?;
        // Mapped (or built) before the flush lock: building a generation takes the write
        // lock, which a flush of this process may hold while it waits for that lock.
        let table = engine.current_table().ok();
        let _no_flush_in_flight = engine.sync.lock_flushes(false, USAGE_READ_PATIENCE, || {
            #[cfg(feature = "test-hooks")]
            engine.usage_reads_waited.fetch_add(1, Ordering::AcqRel);
        });
        let mut stats = engine.stored_usage(&key_id)?;
        if let Some(pending) = engine.dirty.lock().get(&key_id) {
            stats.uses += pending.uses_by_day.total();
            stats.refused += pending.refused;
            if pending.last_used > 0 {
                stats.last_used = Some(stats.last_used.unwrap_or(0).max(pending.last_used));
            }
        }
        let shared = table.as_deref().zip(digest).and_then(|(view, digest)| {
            let record = view.find(&digest)?;
            Some(view.table.cell_counts(record.usage_cell))
        });
        if let Some(shared) = shared {
            stats.uses += shared.uses();
            stats.refused += shared.refused;
            if shared.last_used > 0 {
                stats.last_used = Some(stats.last_used.unwrap_or(0).max(shared.last_used));
            }
        }
        Ok(stats)
    }

    /// Uses per UTC day of a key from `from` to `to` inclusive (flushed counts only; call
    /// [`Store::flush`] first for this process's latest). Days without use are omitted.
    pub fn usage_by_day(&self, id: &str, from: Day, to: Day) -> Result<Vec<DailyUsage>> {
        // In i64: the difference of two i32 day numbers can overflow i32.
        let days_spanned = i64::from(to.0) - i64::from(from.0) + 1;
        if to < from || days_spanned > i64::from(MAX_USAGE_DAYS) {
            return Err(Error::invalid(
                "date range",
                format!("must be ordered and span at most {MAX_USAGE_DAYS} days"),
            ));
        }
        let engine = self.engine()?;
        let key_id = KeyId::parse(id).map_err(|_| not_found(id))?;
        if engine.info(&key_id)?.is_none() {
            return Err(not_found(id));
        }
        engine.read(|txn| {
            let row = usage_rows::read_row_in(txn, key_id.as_str())?;
            let days = txn.open_table(USAGE_DAYS)?;
            usage_rows::days_in_range(&days, row, key_id.as_str(), from, to)
        })
    }

    /// An owner's keys not used since `since` (never used, or last used before it), oldest
    /// first — the keys an operator may want to revoke.
    pub fn unused_since(&self, owner: &str, since: Timestamp) -> Result<Vec<KeyInfo>> {
        let engine = self.engine()?;
        engine.read(|txn| {
            let owner_keys = txn.open_table(OWNER_KEYS)?;
            let keys = txn.open_table(KEYS)?;
            let usage = usage_rows::open_current(txn)?;
            let usage_v1 = usage_rows::open_v1(txn)?;
            let mut out = Vec::new();
            for item in owner_keys.range((owner, 0)..=(owner, u64::MAX))? {
                let (_, id) = item?;
                let Some(bytes) = keys.get(id.value())? else {
                    continue;
                };
                let stored = StoredKey::decode(id.value(), bytes.value())?;
                let stored_row = match &usage {
                    Some(usage) => usage_rows::read_row(usage, usage_v1.as_ref(), id.value())?,
                    None => None,
                };
                let mut last = stored_row.map_or(0, |row| row.last_used);
                if let Ok(key_id) = KeyId::parse(&stored.info.id)
                    && let Some(pending) = engine.dirty.lock().get(&key_id)
                {
                    last = last.max(pending.last_used);
                }
                if let Some(shared) = engine.shared_pending(&stored.digest_hash()?) {
                    last = last.max(shared.last_used);
                }
                let info = stored.info;
                if last < since.as_millis() {
                    out.push(info);
                }
            }
            Ok(out)
        })
    }

    /// A limited key's credits; `None` for an unlimited key.
    pub fn credits(&self, id: &str) -> Result<Option<CreditBalance>> {
        let engine = self.engine()?;
        let key_id = KeyId::parse(id).map_err(|_| not_found(id))?;
        let info = engine.info(&key_id)?.ok_or_else(|| not_found(id))?;
        let Some(terms) = info.credits else {
            return Ok(None);
        };
        // A top-up in flight has taken credits out of the database and not yet put them in the
        // pool: read once it has (see `Engine::with_slot_settled`), so none is missed.
        let slot = engine.read(|txn| {
            Ok(txn
                .open_table(CREDITS)?
                .get(key_id.as_str())?
                .map(|v| v.value().2))
        })?;
        let Some(slot) = slot else {
            return Ok(None);
        };
        engine.with_slot_settled(slot, || Self::read_credits(&engine, &key_id, terms))
    }

    /// A key's credit balance (database and pool), read as it is now.
    fn read_credits(
        engine: &Engine,
        key_id: &KeyId,
        terms: CreditTerms,
    ) -> Result<Option<CreditBalance>> {
        engine.read(|txn| {
            let row = txn
                .open_table(CREDITS)?
                .get(key_id.as_str())?
                .map(|v| v.value());
            let Some((remaining, period, slot)) = row else {
                return Ok(None);
            };
            let replica = super::engine::Engine::is_replica(&txn.open_table(crate::schema::META)?)?;
            Ok(Some(CreditBalance {
                remaining: engine.credits_left(
                    remaining,
                    period,
                    slot,
                    &terms,
                    engine.now(),
                    replica,
                ),
                terms,
            }))
        })
    }
}

/// The flush lease word: holder pid in the high half, deadline (seconds since the epoch, low
/// 32 bits) in the low half.
fn pack_lease(pid: u32, deadline_secs: u64) -> u64 {
    (u64::from(pid) << 32) | (deadline_secs & 0xffff_ffff)
}

/// (holder pid, deadline) of a flush lease word.
fn unpack_lease(word: u64) -> (u32, u64) {
    ((word >> 32) as u32, word & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::key_format::KeyId;
    use crate::store::{NewKey, Store, StoreOptions};

    /// The flush reads a key's record only when the key has no usage row yet (a usage row
    /// exists only beside its record): keys used before and keys used for the first time
    /// are both counted, and a key deleted between its verify and the flush, whether it had
    /// a usage row or not, leaves no usage or per-day row behind.
    #[test]
    fn a_flush_counts_known_and_new_keys_and_skips_keys_deleted_meanwhile() {
        use crate::clock::Day;
        use crate::schema::{KEY_USAGE, USAGE_DAYS};
        use crate::store::usage_rows;

        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            flush_interval: Duration::ZERO,
            ..StoreOptions::default()
        };
        let store = Store::open_unshared(dir.path().join("k.redb"), options).unwrap();
        let new_key = |owner: &str| {
            store
                .create(NewKey {
                    owner: owner.into(),
                    ..NewKey::default()
                })
                .unwrap()
        };
        let [flushed_kept, new_kept, new_deleted, flushed_deleted] =
            ["a", "b", "c", "d"].map(new_key);
        for created in [&flushed_kept, &flushed_deleted] {
            assert!(store.verify(created.key(), &[]).unwrap().is_valid());
        }
        assert_eq!(store.flush().unwrap(), 2);
        for created in [&flushed_kept, &new_kept, &new_deleted, &flushed_deleted] {
            assert!(store.verify(created.key(), &[]).unwrap().is_valid());
        }
        let engine = store.engine().unwrap();
        let rows = |id: &str| {
            engine
                .read(|txn| {
                    let row = usage_rows::read_row_in(txn, id)?;
                    let usage = txn.open_table(KEY_USAGE)?.get(id)?.is_some();
                    let day_rows = txn
                        .open_table(USAGE_DAYS)?
                        .range((id, i32::MIN)..=(id, i32::MAX))?
                        .count();
                    let days = usage_rows::days_in_range(
                        &txn.open_table(USAGE_DAYS)?,
                        row,
                        id,
                        Day(i32::MIN),
                        Day(i32::MAX),
                    )?
                    .len();
                    // Within a day, the day's count rides in the usage row.
                    assert_eq!(day_rows, 0);
                    Ok((usage, days))
                })
                .unwrap()
        };
        // The scenario: pending uses of both deleted keys, one of them with a usage row.
        assert_eq!(store.usage(new_deleted.id()).unwrap().uses, 1);
        assert_eq!(store.usage(flushed_deleted.id()).unwrap().uses, 2);
        assert_eq!(rows(flushed_deleted.id()), (true, 1));
        assert_eq!(rows(new_deleted.id()), (false, 0));
        store.delete(new_deleted.id()).unwrap();
        store.delete(flushed_deleted.id()).unwrap();

        store.flush().unwrap();
        assert_eq!(store.usage(flushed_kept.id()).unwrap().uses, 2);
        assert_eq!(store.usage(new_kept.id()).unwrap().uses, 1);
        assert_eq!(
            engine
                .stored_usage(&KeyId::parse(new_kept.id()).unwrap())
                .unwrap()
                .uses,
            1
        );
        assert_eq!(rows(new_kept.id()), (true, 1));
        assert_eq!(rows(new_deleted.id()), (false, 0));
        assert_eq!(rows(flushed_deleted.id()), (false, 0));
    }

    /// A verify that loaded the table before a new generation replaced it, and counted in the
    /// old generation only after that generation's two flushes ("chances") had passed, lost
    /// its count: the retired generation was unmapped without another drain.
    #[test]
    fn a_count_in_a_retired_generation_still_held_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            flush_interval: Duration::ZERO,
            ..StoreOptions::default()
        };
        let store = Store::open_unshared(dir.path().join("k.redb"), options).unwrap();
        let created = store
            .create(NewKey {
                owner: "acct".into(),
                ..NewKey::default()
            })
            .unwrap();
        let engine = store.engine().unwrap();
        let id = crate::key_format::KeyId::parse(created.id()).unwrap();
        let digest = engine
            .read_key(&id)
            .unwrap()
            .unwrap()
            .0
            .digest_hash()
            .unwrap();
        // What a verify holds between its lookup and its count.
        let held = engine.current_table().unwrap();
        let cell = held.find(&digest).unwrap().usage_cell;
        let old_generation = held.table.generation();
        {
            let _lease = engine.lock_table_writer().unwrap();
            engine.build_generation("test", 0, 0).unwrap();
        }
        assert_ne!(store.stats().unwrap().table.generation, old_generation);
        // The old generation's two chances pass; the verify holding it counts only now.
        store.flush().unwrap();
        store.flush().unwrap();
        assert!(held.table.count_use(cell, engine.now()));
        drop(held);
        store.flush().unwrap();
        assert_eq!(store.usage(created.id()).unwrap().uses, 1);
        // Once let go, the generation is unmapped after its chances.
        store.flush().unwrap();
        store.flush().unwrap();
        assert!(engine.retired.lock().is_empty());
    }

    /// A key with counts both in this process's memory and in its shared cell gets one
    /// usage row with both (the flush's batch merges the two entries of the key).
    #[test]
    fn a_flush_merges_a_keys_own_and_shared_counts() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            flush_interval: Duration::ZERO,
            ..StoreOptions::default()
        };
        let store = Store::open_unshared(dir.path().join("k.redb"), options).unwrap();
        let created: Vec<_> = (0..3)
            .map(|i| {
                store
                    .create(NewKey {
                        owner: format!("acct{i}"),
                        ..NewKey::default()
                    })
                    .unwrap()
            })
            .collect();
        let engine = store.engine().unwrap();
        for (i, key) in created.iter().enumerate() {
            for _ in 0..=i {
                assert!(store.verify(key.key(), &[]).unwrap().is_valid());
            }
        }
        let middle = KeyId::parse(created[1].id()).unwrap();
        let today = engine.now().day();
        let kept = crate::table::CellCounts {
            days: [(today, 5), (crate::clock::Day(today.0 - 1), 7)],
            refused: 3,
            last_used: 1,
        };
        engine.keep_counts_locally(middle, &kept);
        // The scenario: the key's counts are in both places before the flush.
        assert!(engine.dirty.lock().contains_key(&middle));
        assert!(
            !engine
                .shared_pending(
                    &engine
                        .read_key(&middle)
                        .unwrap()
                        .unwrap()
                        .0
                        .digest_hash()
                        .unwrap()
                )
                .unwrap()
                .is_empty()
        );
        assert_eq!(engine.flush_inner(true).unwrap(), 3, "one row per key");
        assert!(engine.dirty.lock().is_empty());
        let stored = engine.stored_usage(&middle).unwrap();
        assert_eq!((stored.uses, stored.refused), (2 + 5 + 7, 3));
        for (i, key) in created.iter().enumerate() {
            if i != 1 {
                let id = KeyId::parse(key.id()).unwrap();
                assert_eq!(engine.stored_usage(&id).unwrap().uses, i as u64 + 1);
            }
        }
    }
}
