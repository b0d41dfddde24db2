//! Rate limits per key and per owner, exact across every process of a host.
//!
//! Each limited key, and each owner with a limit shared by all of its keys, holds a *rate
//! slot*: one 64-bit word in the sync file, the GCRA theoretical arrival time (see
//! [`crate::rate_limit`]). A verify reads the word and replaces it with one compare-and-swap,
//! so every process of the host draws from the same budget, and a request is accepted only as
//! one step of the word's single sequence of values: the limit holds exactly, whatever the
//! number of processes. A process killed anywhere leaves the word either before or after its
//! swap, never half-changed: a crash can waste a unit of budget, never add one.
//!
//! Where things live:
//! - a key's terms in its record ([`KeyInfo::rate_limit`](crate::schema::KeyInfo::rate_limit)), its slot in `key_rate_slots` and in
//!   the shared verify table's record (so the hot path needs no lookup);
//! - an owner's terms and slot in `owner_rate_limits`. Each process keeps a map of them,
//!   tagged with the version it read; every change bumps the version in the database
//!   (`owner_rate_seq`) and then in the sync file (word 6), and a verify that finds the word
//!   changed reloads the map. A writer killed between its commit and the bump is repaired by
//!   the periodic check of every process (`check_sync_binding`), as for the change counter.
//! - slots are allocated in redb like credit slots (`free_rate_slots`, `next_rate_slot`),
//!   inside the write transaction of the change, and freed when a key or owner loses its limit
//!   or a key is deleted.
//!
//! **Key and owner in one verify.** The key's word is taken first, then the owner's; when the
//! owner refuses, the key's unit is handed back with one compare-and-swap from the value this
//! verify wrote to the value it found — only if no other request moved the word meanwhile.
//! Otherwise the key keeps the unit spent: the refund never hands back more than was taken, so
//! neither limit can be exceeded; the cost of a lost race is one unit of the key's budget. The
//! same undo runs when the credits of a rate-passed request are exhausted. A dry run takes
//! nothing and reports whether the request would pass.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use redb::{ReadableTable, WriteTransaction};

use super::engine::Engine;
use super::key_view::KeyFacts;
use super::{Store, not_found};
use crate::error::{Error, Result};
use crate::key_format::KeyId;
use crate::rate_limit::{self, RateLimit, RateScope, RateStatus};
use crate::schema::{
    FREE_RATE_SLOTS, KEY_RATE_SLOTS, META, META_NEXT_RATE_SLOT, META_OWNER_RATE_SEQ,
    OWNER_RATE_LIMITS, u64_from_meta,
};
use crate::sys::shared_memory::RATE_SLOTS;

/// The owner limits as one process last read them.
#[derive(Debug, Default)]
pub(crate) struct OwnerLimits {
    /// The sync file's version word when they were read.
    version: u64,
    limits: HashMap<String, (RateLimit, u32)>,
}

/// What the rate limits say about one request.
pub(super) enum RateCheck {
    /// Neither the key nor its owner is rate-limited.
    Unlimited,
    /// Passed (and, unless a dry run, taken): the status of the tighter limit, and how to
    /// hand the units back.
    Passed(RateStatus, Undo),
    /// Refused by the key's or the owner's limit; nothing was taken.
    Limited(RateStatus),
}

/// Units taken from rate words by one verify: (slot, value found, value written).
#[derive(Default)]
pub(super) struct Undo([Option<(u32, u64, u64)>; 2]);

impl Engine {
    /// Checks (and unless `dry_run`, takes) one request from the key's and its owner's rate
    /// limits at `now_ns`.
    #[inline]
    pub(super) fn check_rate<K: KeyFacts + ?Sized>(
        &self,
        info: &K,
        key_slot: Option<u32>,
        now_ns: u64,
        dry_run: bool,
    ) -> Result<RateCheck> {
        let key = match (info.rate_limit(), key_slot) {
            (Some(limit), Some(slot)) => Some((limit, slot)),
            _ => None,
        };
        let owner = self.owner_limit(info.owner())?;
        if key.is_none() && owner.is_none() {
            return Ok(RateCheck::Unlimited);
        }
        let mut undo = Undo::default();
        let mut tightest: Option<RateStatus> = None;
        for (index, (scope, limit, slot)) in [
            key.map(|(l, s)| (RateScope::Key, l, s)),
            owner.map(|(l, s)| (RateScope::Owner, l, s)),
        ]
        .into_iter()
        .flatten()
        .enumerate()
        {
            let word = self.sync.rate_word(slot);
            let taken = if dry_run {
                let tat = word.load(Ordering::Acquire);
                rate_limit::decide(tat, now_ns, &limit).map(|next| (tat, next))
            } else {
                if index == 1 && undo.0[0].is_some() {
                    // Between the key's swap and the owner's (crash tests).
                    crate::failpoint::hit("rate-between-key-and-owner");
                }
                self.take_rate(slot, &limit, now_ns)
            };
            match taken {
                Ok((found, written)) => {
                    if !dry_run {
                        undo.0[index] = Some((slot, found, written));
                    }
                    let status = rate_limit::status(scope, &limit, written, now_ns, None);
                    if tightest.is_none_or(|t| status.remaining < t.remaining) {
                        tightest = Some(status);
                    }
                }
                Err(wait) => {
                    self.undo_rate(undo);
                    let tat = word.load(Ordering::Acquire);
                    return Ok(RateCheck::Limited(rate_limit::status(
                        scope,
                        &limit,
                        tat,
                        now_ns,
                        Some(wait),
                    )));
                }
            }
        }
        Ok(match tightest {
            Some(status) => RateCheck::Passed(status, undo),
            None => RateCheck::Unlimited,
        })
    }

    /// One GCRA step on a rate word: `Ok((found, written))`, or `Err(ns to wait)`.
    #[inline]
    fn take_rate(
        &self,
        slot: u32,
        limit: &RateLimit,
        now_ns: u64,
    ) -> std::result::Result<(u64, u64), u64> {
        let word = self.sync.rate_word(slot);
        let mut tat = word.load(Ordering::Acquire);
        loop {
            let next = rate_limit::decide(tat, now_ns, limit)?;
            match word.compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok((tat, next)),
                Err(current) => {
                    tat = current;
                    self.rate_cas_retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Hands back units taken by this verify, where no other request moved the word since.
    pub(super) fn undo_rate(&self, undo: Undo) {
        for (slot, found, written) in undo.0.into_iter().flatten() {
            let handed_back = self
                .sync
                .rate_word(slot)
                .compare_exchange(written, found, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if !handed_back {
                self.rate_refunds_lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The owner's limit and slot, from this process's map (reloaded when another process
    /// changed the owner limits).
    #[inline]
    fn owner_limit(&self, owner: &str) -> Result<Option<(RateLimit, u32)>> {
        let version = self.sync.owner_rate_version().load(Ordering::Acquire);
        if version == 0 {
            // No owner limit was ever set in this store.
            return Ok(None);
        }
        let mut limits = self.owner_limits.load();
        if limits.version != version {
            self.reload_owner_limits(version)?;
            limits = self.owner_limits.load();
        }
        if limits.limits.is_empty() {
            return Ok(None);
        }
        Ok(limits.limits.get(owner).copied())
    }

    #[cold]
    fn reload_owner_limits(&self, version: u64) -> Result<()> {
        let limits = self.read(|txn| {
            let mut limits = HashMap::new();
            let table = match txn.open_table(OWNER_RATE_LIMITS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(limits),
                Err(e) => return Err(e.into()),
            };
            for item in table.iter()? {
                let (owner, row) = item?;
                let (rate, period_ms, burst, slot) = row.value();
                limits.insert(
                    owner.value().to_owned(),
                    (
                        RateLimit {
                            rate,
                            period_ms,
                            burst,
                        },
                        slot,
                    ),
                );
            }
            Ok(limits)
        })?;
        self.owner_limits
            .store(Arc::new(OwnerLimits { version, limits }));
        Ok(())
    }

    /// The owner-limit version recorded in the database.
    pub(super) fn stored_owner_rate_seq(
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
    ) -> Result<u64> {
        match meta.get(META_OWNER_RATE_SEQ)? {
            Some(v) => u64_from_meta(v.value()),
            None => Ok(0),
        }
    }

    /// Raises the sync file's owner-limit version to the database's (after a commit, at
    /// binding, and periodically: a writer killed between commit and signal is repaired).
    pub(super) fn publish_owner_rate_seq(&self, seq: u64) {
        self.sync
            .owner_rate_version()
            .fetch_max(seq, Ordering::AcqRel);
    }

    /// Sets (`Some`) or removes (`None`) an owner's shared rate limit in `txn` and bumps the
    /// owner-limit version in the database. Returns the new version to publish after the
    /// commit, or `None` when nothing changed (no limit to remove; with `skip_same`, the same
    /// limit as stored — a replica re-applying an upstream state).
    pub(super) fn put_owner_rate_limit(
        &self,
        txn: &WriteTransaction,
        owner: &str,
        limit: Option<RateLimit>,
        skip_same: bool,
    ) -> Result<Option<u64>> {
        let mut table = txn.open_table(OWNER_RATE_LIMITS)?;
        let existing = table.get(owner)?.map(|row| row.value());
        match (limit, existing) {
            (Some(limit), Some((rate, period_ms, burst, _)))
                if skip_same
                    && limit
                        == (RateLimit {
                            rate,
                            period_ms,
                            burst,
                        }) =>
            {
                return Ok(None);
            }
            (Some(limit), existing) => {
                let slot = match existing {
                    Some((.., slot)) => {
                        let cap = self.rate_now_ns().saturating_add(limit.tolerance_ns());
                        let _ = self.sync.rate_word(slot).fetch_min(cap, Ordering::AcqRel);
                        slot
                    }
                    None => {
                        let slot = self.allocate_rate_slot(txn)?;
                        self.sync.rate_word(slot).store(0, Ordering::Release);
                        slot
                    }
                };
                table.insert(owner, (limit.rate, limit.period_ms, limit.burst, slot))?;
            }
            (None, Some((.., slot))) => {
                table.remove(owner)?;
                self.free_rate_slot(txn, slot)?;
            }
            (None, None) => return Ok(None),
        }
        drop(table);
        let mut meta = txn.open_table(META)?;
        let seq = Engine::stored_owner_rate_seq(&meta)? + 1;
        meta.insert(META_OWNER_RATE_SEQ, seq.to_le_bytes().as_slice())?;
        Ok(Some(seq))
    }

    /// Every owner with a shared rate limit (for a resynchronisation).
    #[cfg(feature = "postgres")]
    pub(super) fn owner_rate_limit_names(txn: &WriteTransaction) -> Result<Vec<String>> {
        let table = txn.open_table(OWNER_RATE_LIMITS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            out.push(item?.0.value().to_owned());
        }
        Ok(out)
    }

    /// Takes a free rate slot (in the write transaction of the change that needs it).
    fn allocate_rate_slot(&self, txn: &WriteTransaction) -> Result<u32> {
        let mut free = txn.open_table(FREE_RATE_SLOTS)?;
        if let Some(slot) = free.pop_first()? {
            return Ok(slot.0.value());
        }
        drop(free);
        let mut meta = txn.open_table(META)?;
        let next = match meta.get(META_NEXT_RATE_SLOT)? {
            Some(v) => u64_from_meta(v.value())?,
            None => 0,
        };
        if next >= RATE_SLOTS as u64 {
            return Err(Error::RateSlotsExhausted { slots: RATE_SLOTS });
        }
        meta.insert(META_NEXT_RATE_SLOT, (next + 1).to_le_bytes().as_slice())?;
        Ok(next as u32)
    }

    fn free_rate_slot(&self, txn: &WriteTransaction, slot: u32) -> Result<()> {
        txn.open_table(FREE_RATE_SLOTS)?.insert(slot, ())?;
        self.sync.rate_word(slot).store(0, Ordering::Release);
        Ok(())
    }

    /// Gives a key a rate slot for `limit` (a new one starts from rest, or from `inherit`'s
    /// state for a rotated key); an existing slot keeps its state, no further ahead than the
    /// new limit's burst window. Before the commit: no other process knows a new slot yet.
    pub(super) fn set_key_rate_limit(
        &self,
        txn: &WriteTransaction,
        id: &KeyId,
        limit: &RateLimit,
        inherit: Option<u64>,
    ) -> Result<()> {
        let slots = txn.open_table(KEY_RATE_SLOTS)?;
        let existing = slots.get(id.as_str())?.map(|row| row.value());
        match existing {
            Some(slot) => {
                let cap = self.rate_now_ns().saturating_add(limit.tolerance_ns());
                let _ = self.sync.rate_word(slot).fetch_min(cap, Ordering::AcqRel);
            }
            None => {
                drop(slots);
                let slot = self.allocate_rate_slot(txn)?;
                txn.open_table(KEY_RATE_SLOTS)?.insert(id.as_str(), slot)?;
                self.sync
                    .rate_word(slot)
                    .store(inherit.unwrap_or(0), Ordering::Release);
            }
        }
        Ok(())
    }

    /// Removes a key's rate slot (limit removed, key deleted).
    pub(super) fn clear_key_rate_limit(&self, txn: &WriteTransaction, id: &KeyId) -> Result<()> {
        let removed = txn
            .open_table(KEY_RATE_SLOTS)?
            .remove(id.as_str())?
            .map(|row| row.value());
        if let Some(slot) = removed {
            self.free_rate_slot(txn, slot)?;
        }
        Ok(())
    }

    /// The state of a key's rate word (for a rotation to hand to the successor).
    pub(super) fn key_rate_state(&self, txn: &WriteTransaction, id: &KeyId) -> Result<Option<u64>> {
        Ok(txn
            .open_table(KEY_RATE_SLOTS)?
            .get(id.as_str())?
            .map(|row| self.sync.rate_word(row.value()).load(Ordering::Acquire)))
    }

    fn rate_now_ns(&self) -> u64 {
        self.clock.now_nanos().max(0) as u64
    }
}

impl Store {
    /// Sets (`Some`) or removes (`None`) the rate limit `owner` shares among all of its keys
    /// (whether or not it has keys yet). A key with its own limit must pass both. Changing a
    /// limit keeps the owner's current state (clamped to the new burst window); a new one
    /// starts from rest. Every process of the host applies it from its next verify.
    ///
    /// Errors: `INVALID_ARGUMENT` (blank owner, bad terms), `TOO_LONG`,
    /// `RATE_SLOTS_EXHAUSTED`, `STORAGE`.
    pub fn set_owner_rate_limit(&self, owner: &str, limit: Option<RateLimit>) -> Result<()> {
        super::manage::check_owner(owner)?;
        if let Some(limit) = &limit {
            limit.check()?;
        }
        if let Some(link) = self.upstream_link() {
            return self.upstream_set_owner_rate_limit(link, owner, limit);
        }
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let result = engine.contained(|| {
            let txn = engine.db.begin_write()?;
            let Some(seq) = engine.put_owner_rate_limit(&txn, owner, limit, false)? else {
                return Ok(());
            };
            txn.commit()?;
            engine.commits.fetch_add(1, Ordering::Relaxed);
            // Strictly after the commit: a process that reloads on the new version finds it.
            engine.publish_owner_rate_seq(seq);
            Ok(())
        });
        engine.note_write_failure(result)
    }

    /// The rate limit `owner` shares among its keys, if any.
    pub fn owner_rate_limit(&self, owner: &str) -> Result<Option<RateLimit>> {
        super::manage::check_owner(owner)?;
        let engine = self.engine()?;
        engine.read(|txn| {
            let table = match txn.open_table(OWNER_RATE_LIMITS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(table.get(owner)?.map(|row| {
                let (rate, period_ms, burst, _) = row.value();
                RateLimit {
                    rate,
                    period_ms,
                    burst,
                }
            }))
        })
    }

    /// Where a key stands against its own and its owner's rate limits now, taking nothing
    /// (`None` when neither is limited). For dashboards and `keyward show`.
    pub fn rate_status(&self, id: &str) -> Result<Option<RateStatus>> {
        let engine = self.engine()?;
        let key_id = KeyId::parse(id.trim()).map_err(|_| not_found(id))?;
        engine.ensure_fresh()?;
        let (stored, slots) = engine.read_key(&key_id)?.ok_or_else(|| not_found(id))?;
        let now_ns = engine.rate_now_ns();
        let key = match (stored.info.rate_limit, slots.rate) {
            (Some(limit), Some(slot)) => Some((RateScope::Key, limit, slot)),
            _ => None,
        };
        let owner = engine
            .owner_limit(&stored.info.owner)?
            .map(|(limit, slot)| (RateScope::Owner, limit, slot));
        let mut tightest: Option<RateStatus> = None;
        for (scope, limit, slot) in [key, owner].into_iter().flatten() {
            let tat = engine.sync.rate_word(slot).load(Ordering::Acquire);
            let wait = rate_limit::decide(tat, now_ns, &limit).err();
            let status = rate_limit::status(scope, &limit, tat, now_ns, wait);
            let tighter = match (&tightest, status.retry_after_ms) {
                (None, _) => true,
                (Some(t), Some(ms)) => t.retry_after_ms.is_none_or(|theirs| ms > theirs),
                (Some(t), None) => t.retry_after_ms.is_none() && status.remaining < t.remaining,
            };
            if tighter {
                tightest = Some(status);
            }
        }
        Ok(tightest)
    }
}
