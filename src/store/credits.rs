//! Usage credits, exact across processes and never over-spent.
//!
//! A limited key's credits live in two places: the database row (`credits` table: credits
//! not yet handed out, the refill period, the key's slot) and a shared pool in the sync file
//! (one 64-bit word per slot: `period << 40 | credits`). A verify spends from the pool with
//! one compare-and-swap on shared memory, so every process draws from the same pool. When
//! the pool runs dry, one process moves a batch from the database into the pool inside a
//! write transaction (which serialises such top-ups across processes) and adds it to the pool
//! only after the commit returns. A crash can therefore forfeit credits sitting in a pool or
//! in flight (a process killed between commit and add, or the machine losing the sync file),
//! but it can never create them: credits are never over-spent.
//!
//! **Refills.** A key with a refill gets `amount` credits at the start of each period (UTC day
//! or month); what the past period left lapses. On a store of its own the top-up that first
//! meets a new period refills the database row. On a replica of an upstream PostgreSQL
//! (feature `postgres`) refills are the upstream's: the top-up only lets the past period's
//! credits lapse (row and pool), and the host's replicator leases the new period's credits
//! from the upstream, which refills once per period for every host together.

use std::sync::atomic::Ordering;
use std::time::Duration;

use redb::{ReadableTable, WriteTransaction};

use super::engine::Engine;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::key_format::KeyId;
use crate::schema::{CREDITS, CreditTerms, META, RefillInterval};

/// Most credits moved from the database into the shared pool per top-up.
pub(crate) const MAX_TOP_UP: u64 = 1000;
/// Fewest credits moved per top-up (when that many are left).
pub(crate) const MIN_TOP_UP: u64 = 16;
const CREDIT_BITS: u32 = 40;
const CREDIT_MASK: u64 = (1 << CREDIT_BITS) - 1;
const PERIOD_MASK: u64 = (1 << (64 - CREDIT_BITS)) - 1;

/// The refill period `now` falls in (0 for keys without refill).
pub(crate) fn period_of(interval: Option<RefillInterval>, now: Timestamp) -> i32 {
    match interval {
        None => 0,
        Some(RefillInterval::Daily) => now.day().0,
        Some(RefillInterval::Monthly) => now.month(),
    }
}

/// Packs a pool word.
pub(crate) fn pack(period: i32, credits: u64) -> u64 {
    ((period as u32 as u64 & PERIOD_MASK) << CREDIT_BITS) | (credits & CREDIT_MASK)
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> CREDIT_BITS, word & CREDIT_MASK)
}

/// How long a top-up waits for another's credits in flight (normally microseconds: a
/// compare-and-swap after a commit) before it goes on without them.
pub(super) const SLOT_LOCK_PATIENCE: Duration = Duration::from_millis(250);

/// What a top-up found under the write lock.
#[derive(Clone, Copy)]
enum Found {
    /// The pool already covers the cost (another top-up filled it).
    Covered,
    /// These credits move from the database into the pool.
    Take(u64),
    /// Pool and database together hold fewer than the cost.
    Short,
}

/// How many credits a top-up moves when the pool holds `available` and the cost is `cost`:
/// a quarter of what is left, within [MIN_TOP_UP, MAX_TOP_UP] (few commits for large
/// balances, little forfeited if the process dies between commit and pool), at least what
/// the cost still needs, at most what is left.
fn take_for(remaining: u64, available: u64, cost: u64) -> u64 {
    let needed = cost - available.min(cost);
    let batch = (remaining / 4).clamp(MIN_TOP_UP, MAX_TOP_UP).max(cost);
    remaining.min(needed.max(batch))
}

/// Test hooks around top-ups: hold each one between its commit and its credits reaching the
/// pool (the moment another process could see them nowhere), and count the top-ups that
/// found their slot locked.
#[cfg(feature = "test-hooks")]
#[derive(Default)]
pub(super) struct TopUpGate {
    /// Whether top-ups are held.
    closed: crate::locks::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Top-ups that reached the gate while it was closed.
    pub(super) held: std::sync::atomic::AtomicU64,
    /// Top-ups and reads of credits that found their slot locked by another.
    pub(super) slot_waits: std::sync::atomic::AtomicU64,
}

#[cfg(feature = "test-hooks")]
impl TopUpGate {
    /// Closes (`true`) or opens the gate; opening releases every held top-up.
    pub(super) fn set_closed(&self, closed: bool) {
        *self.closed.lock() = closed;
        self.opened.notify_all();
    }

    /// Waits here while the gate is closed.
    fn pass(&self) {
        let mut closed = self.closed.lock();
        if *closed {
            self.held.fetch_add(1, Ordering::AcqRel);
        }
        while *closed {
            closed = self
                .opened
                .wait(closed)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

impl Engine {
    /// Spends `cost` credits of a limited key. Returns false when they are exhausted.
    pub(super) fn spend_credits(
        &self,
        id: &KeyId,
        slot: u32,
        terms: &CreditTerms,
        cost: u32,
        now: Timestamp,
    ) -> Result<bool> {
        let cost = cost as u64;
        let period = period_of(terms.refill.map(|r| r.interval), now);
        let tag = pack(period, 0) >> CREDIT_BITS;
        let pool = self.sync.credit_pool(slot);
        // A handful of rounds: each top-up either adds credits or proves there are none.
        for _ in 0..8 {
            let mut word = pool.load(Ordering::Acquire);
            loop {
                let (word_tag, available) = unpack(word);
                if word_tag != tag || available < cost {
                    break;
                }
                match pool.compare_exchange_weak(
                    word,
                    word - cost,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Ok(true),
                    Err(current) => word = current,
                }
            }
            let topped_up = self.contained(|| {
                // An exhausted key (the usual reason to get here again and again) is told
                // from a read, without the write lock every process would queue on.
                if self.plainly_short(id, slot, terms, cost, period)? {
                    return Ok(self.await_credits_in_flight(slot, period, cost));
                }
                self.top_up(id, slot, terms, cost, period)
            });
            if !self.note_write_failure(topped_up)? {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Whether `cost` credits of a limited key are available now, taking none (a dry-run
    /// verify): the shared pool, else the pool plus the database row (after any refill due).
    pub(super) fn credits_cover(
        &self,
        id: &KeyId,
        slot: u32,
        terms: &CreditTerms,
        cost: u32,
        now: Timestamp,
    ) -> Result<bool> {
        let cost = cost as u64;
        let period = period_of(terms.refill.map(|r| r.interval), now);
        if self.pooled(slot, period) >= cost {
            return Ok(true);
        }
        let (row, replica) = self.read(|txn| {
            let row = txn
                .open_table(CREDITS)?
                .get(id.as_str())?
                .map(|row| row.value());
            Ok((row, Engine::is_replica(&txn.open_table(META)?)?))
        })?;
        Ok(match row {
            Some((remaining, stored_period, stored_slot)) if stored_slot == slot => {
                self.credits_left(remaining, stored_period, slot, terms, now, replica) >= cost
            }
            _ => false,
        })
    }

    /// Moves credits from the database into the shared pool (applying a due refill first).
    /// Returns false when there are not enough credits for `cost`.
    ///
    /// Credits reach the pool only after the commit that takes them out of the database, so
    /// for a moment they are in neither. The mover holds its slot's lock (see
    /// [`SyncFile::lock_credit_slot`](crate::sys::shared_memory::SyncFile::lock_credit_slot))
    /// from before that commit until they are in the pool, and a top-up that finds too few
    /// credits waits for that lock before it refuses: a verify never answers
    /// `USAGE_EXCEEDED` while another one's credits are on their way.
    fn top_up(
        &self,
        id: &KeyId,
        slot: u32,
        terms: &CreditTerms,
        cost: u64,
        period: i32,
    ) -> Result<bool> {
        let pool = self.sync.credit_pool(slot);
        let tag = pack(period, 0) >> CREDIT_BITS;
        let txn = self.db.begin_write()?;
        let replica = Engine::is_replica(&txn.open_table(META)?)?;
        let (found, row_changed) = {
            let mut table = txn.open_table(CREDITS)?;
            let Some(row) = table.get(id.as_str())? else {
                return Ok(false);
            };
            let (mut remaining, mut stored_period, stored_slot) = row.value();
            drop(row);
            if stored_slot != slot {
                return Ok(false);
            }
            let mut changed = false;
            if let Some(refill) = terms.refill
                && period > stored_period
            {
                // A replica's refills are leased from the upstream (see the module
                // documentation): here the past period's credits only lapse.
                remaining = if replica { 0 } else { refill.amount };
                stored_period = period;
                changed = true;
                // Credits of the past period lapse.
                pool.store(pack(period, 0), Ordering::Release);
            }
            let (word_tag, available) = unpack(pool.load(Ordering::Acquire));
            let available = if word_tag == tag {
                available
            } else {
                // A stale or reset pool: whatever it held is forfeited, never reused.
                pool.store(pack(period, 0), Ordering::Release);
                0
            };
            let found = if available >= cost {
                // Another process topped up while this one waited for the write lock.
                Found::Covered
            } else {
                let take = take_for(remaining, available, cost);
                if available + take >= cost {
                    Found::Take(take)
                } else {
                    Found::Short
                }
            };
            if let Found::Take(take) = found {
                table.insert(id.as_str(), (remaining - take, stored_period, slot))?;
                changed = true;
            } else if changed {
                table.insert(id.as_str(), (remaining, stored_period, slot))?;
            }
            (found, changed)
        };
        let taken = match found {
            Found::Take(taken) => taken,
            Found::Covered | Found::Short => {
                if row_changed {
                    txn.commit()?;
                    self.commits.fetch_add(1, Ordering::Relaxed);
                } else {
                    drop(txn);
                }
                if matches!(found, Found::Covered) {
                    return Ok(true);
                }
                return Ok(self.await_credits_in_flight(slot, period, cost));
            }
        };
        // Locked before the commit: a top-up that sees the database without these credits
        // then also sees this lock until they are in the pool.
        let _lock = self
            .sync
            .lock_credit_slot(slot, SLOT_LOCK_PATIENCE, || self.note_slot_wait());
        txn.commit()?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "test-hooks")]
        self.top_up_gate.pass();
        // Only after the commit: credits reach the pool once the database no longer has them.
        let mut word = pool.load(Ordering::Acquire);
        loop {
            let (word_tag, available) = unpack(word);
            if word_tag != tag {
                // The period rolled over meanwhile: these credits belonged to the old one.
                return Ok(true);
            }
            match pool.compare_exchange_weak(
                word,
                pack(period, available + taken),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(true),
                Err(current) => word = current,
            }
        }
    }

    /// Whether the database row and the pool together hold fewer than `cost` credits, with
    /// no refill due (which only a top-up can apply): read-only. A key without a row or whose
    /// row names another slot is short too, as `top_up` would find.
    fn plainly_short(
        &self,
        id: &KeyId,
        slot: u32,
        terms: &CreditTerms,
        cost: u64,
        period: i32,
    ) -> Result<bool> {
        let row = self.read(|txn| {
            Ok(txn
                .open_table(CREDITS)?
                .get(id.as_str())?
                .map(|row| row.value()))
        })?;
        let Some((remaining, stored_period, stored_slot)) = row else {
            return Ok(true);
        };
        if stored_slot != slot {
            return Ok(true);
        }
        if terms.refill.is_some() && period > stored_period {
            return Ok(false);
        }
        Ok(self.pooled(slot, period).saturating_add(remaining) < cost)
    }

    /// After finding too few credits: whether the pool covers `cost` once any top-up in
    /// flight has put its credits there (it holds the slot's lock until then).
    fn await_credits_in_flight(&self, slot: u32, period: i32, cost: u64) -> bool {
        self.with_slot_settled(slot, || self.pooled(slot, period) >= cost)
    }

    /// The credits in `slot`'s pool for `period` (none if its word is of another period).
    fn pooled(&self, slot: u32, period: i32) -> u64 {
        let (word_tag, available) = unpack(self.sync.credit_pool(slot).load(Ordering::Acquire));
        if word_tag == pack(period, 0) >> CREDIT_BITS {
            available
        } else {
            0
        }
    }

    /// Runs `work` (which reads or resets a slot's pool) while no top-up has credits of the
    /// slot between database and pool: it waits for one in flight to put them in the pool,
    /// and no other can start meanwhile (a new top-up needs the slot's lock too).
    pub(super) fn with_slot_settled<T>(&self, slot: u32, work: impl FnOnce() -> T) -> T {
        let _settled = self
            .sync
            .lock_credit_slot(slot, SLOT_LOCK_PATIENCE, || self.note_slot_wait());
        work()
    }

    /// Counts (test hooks only) a top-up or a read of credits that found its slot locked by
    /// another.
    #[inline]
    pub(super) fn note_slot_wait(&self) {
        #[cfg(feature = "test-hooks")]
        self.top_up_gate.slot_waits.fetch_add(1, Ordering::AcqRel);
    }

    /// Credits left for a key: in the database plus in its shared pool (for queries). On a
    /// `replica`, a new period holds nothing until credits of it are leased.
    pub(super) fn credits_left(
        &self,
        db_remaining: u64,
        stored_period: i32,
        slot: u32,
        terms: &CreditTerms,
        now: Timestamp,
        replica: bool,
    ) -> u64 {
        let period = period_of(terms.refill.map(|r| r.interval), now);
        if let Some(refill) = terms.refill
            && period > stored_period
        {
            return if replica { 0 } else { refill.amount };
        }
        db_remaining + self.pooled(slot, period)
    }

    /// Empties a key's credits (database and pool, after any refill that is due) and returns
    /// how many there were: rotation hands them to the successor. The emptied key never
    /// refills again.
    pub(super) fn take_all_credits(
        &self,
        txn: &WriteTransaction,
        id: &KeyId,
        terms: &CreditTerms,
        now: Timestamp,
    ) -> Result<u64> {
        let mut table = txn.open_table(CREDITS)?;
        let Some(row) = table.get(id.as_str())? else {
            return Ok(0);
        };
        let (remaining, stored_period, slot) = row.value();
        drop(row);
        // Local rotations only (refused on a replica): refills are this store's.
        let left = self.with_slot_settled(slot, || {
            let left = self.credits_left(remaining, stored_period, slot, terms, now, false);
            self.sync
                .credit_pool(slot)
                .store(pack(i32::MAX, 0), Ordering::Release);
            left
        });
        table.insert(id.as_str(), (0, i32::MAX, slot))?;
        Ok(left)
    }
}
