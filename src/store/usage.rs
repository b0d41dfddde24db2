//! Writing pending usage in one batched transaction, and reading usage back.

use std::sync::atomic::Ordering;

use redb::ReadableTable;
use serde::Serialize;

use std::collections::BTreeMap;

use super::engine::{Engine, MAX_QUEUED_REFUSALS};
use super::{Store, not_found};
use crate::clock::{Day, Timestamp};
use crate::error::{Error, Result};
use crate::key_format::KeyId;
use crate::schema::{
    CREDITS, CreditTerms, KEYS, KeyInfo, OWNER_KEYS, StoredKey, USAGE, USAGE_DAYS,
};
use crate::usage::{DailyUsage, UsageStats};

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
    /// Writes every pending count in one transaction. Returns the number of keys written.
    pub(super) fn flush(&self) -> Result<usize> {
        self.contained(|| self.flush_inner())
    }

    fn flush_inner(&self) -> Result<usize> {
        let _serialised = self.flush_lock.lock();
        let queued = std::mem::take(&mut *self.dirty.lock());
        let unmatched_ids = std::mem::take(&mut *self.unmatched.lock());
        let mut batch: Vec<_> = queued
            .into_iter()
            .map(|(id, cell)| {
                let pending = cell.take();
                (id, cell, pending)
            })
            .filter(|(_, _, pending)| !pending.is_empty())
            .collect();
        // Refusals of presentations that matched no key, per id (most ids are unknown).
        let mut unmatched: BTreeMap<KeyId, u64> = BTreeMap::new();
        for id in &unmatched_ids {
            *unmatched.entry(*id).or_default() += 1;
        }
        if batch.is_empty() && unmatched.is_empty() {
            return Ok(0);
        }
        // Key order: neighbouring rows share B-tree pages.
        batch.sort_unstable_by_key(|(id, _, _)| *id);
        #[cfg(feature = "test-hooks")]
        {
            let pause = self.flush_pause_micros.load(Ordering::Relaxed);
            if pause > 0 {
                self.paused_flushes.fetch_add(1, Ordering::Release);
                std::thread::sleep(std::time::Duration::from_micros(pause));
            }
        }
        let write = || -> Result<()> {
            let txn = self.db.begin_write()?;
            {
                let keys = txn.open_table(KEYS)?;
                let mut usage = txn.open_table(USAGE)?;
                let mut days = txn.open_table(USAGE_DAYS)?;
                for (id, _, pending) in &batch {
                    if keys.get(id.as_str())?.is_none() {
                        continue; // deleted meanwhile: its history went with it
                    }
                    let (uses, refused, last) = usage
                        .get(id.as_str())?
                        .map(|v| v.value())
                        .unwrap_or((0, 0, 0));
                    let added: u64 = pending.uses_by_day.iter().map(|(_, n)| n).sum();
                    usage.insert(
                        id.as_str(),
                        (
                            uses + added,
                            refused + pending.refused,
                            last.max(pending.last_used),
                        ),
                    )?;
                    for (day, n) in &pending.uses_by_day {
                        let before = days
                            .get((id.as_str(), day.0))?
                            .map(|v| v.value())
                            .unwrap_or(0);
                        days.insert((id.as_str(), day.0), before + n)?;
                    }
                }
                for (id, n) in &unmatched {
                    if keys.get(id.as_str())?.is_none() {
                        continue; // an unknown id: nothing to count it against
                    }
                    let (uses, refused, last) = usage
                        .get(id.as_str())?
                        .map(|v| v.value())
                        .unwrap_or((0, 0, 0));
                    usage.insert(id.as_str(), (uses, refused + n, last))?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        match write() {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                Ok(batch.len() + unmatched.len())
            }
            Err(e) => {
                let e = self.note_write_failure::<()>(Err(e)).unwrap_err();
                // Nothing is lost: the counts go back to their cells for the next flush.
                let mut dirty = self.dirty.lock();
                for (id, cell, pending) in batch {
                    if cell.restore(pending) {
                        dirty.push((id, cell));
                    }
                }
                let mut queue = self.unmatched.lock();
                let room = MAX_QUEUED_REFUSALS.saturating_sub(queue.len());
                queue.extend(unmatched_ids.into_iter().take(room));
                Err(e)
            }
        }
    }

    fn stored_usage(&self, id: &KeyId) -> Result<UsageStats> {
        self.read(|txn| {
            let row = txn.open_table(USAGE)?.get(id.as_str())?.map(|v| v.value());
            let (uses, refused, last) = row.unwrap_or((0, 0, 0));
            Ok(UsageStats {
                uses,
                refused,
                last_used: (last > 0).then_some(last),
            })
        })
    }
}

impl Store {
    /// A key's usage: what is stored plus what this process has not flushed yet.
    pub fn usage(&self, id: &str) -> Result<UsageStats> {
        let engine = self.engine()?;
        let key_id = KeyId::parse(id).map_err(|_| not_found(id))?;
        if engine.info(&key_id)?.is_none() {
            return Err(not_found(id));
        }
        let mut stats = engine.stored_usage(&key_id)?;
        if let Some(cell) = engine.index.usage_cell(&key_id) {
            let pending = cell.snapshot();
            stats.uses += pending.uses_by_day.iter().map(|(_, n)| n).sum::<u64>();
            stats.refused += pending.refused;
            if pending.last_used > 0 {
                stats.last_used = Some(stats.last_used.unwrap_or(0).max(pending.last_used));
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
            let days = txn.open_table(USAGE_DAYS)?;
            let mut out = Vec::new();
            for item in days.range((key_id.as_str(), from.0)..=(key_id.as_str(), to.0))? {
                let (k, v) = item?;
                out.push(DailyUsage {
                    day: Day(k.value().1),
                    uses: v.value(),
                });
            }
            Ok(out)
        })
    }

    /// An owner's keys not used since `since` (never used, or last used before it), oldest
    /// first — the keys an operator may want to revoke.
    pub fn unused_since(&self, owner: &str, since: Timestamp) -> Result<Vec<KeyInfo>> {
        let engine = self.engine()?;
        engine.read(|txn| {
            let owner_keys = txn.open_table(OWNER_KEYS)?;
            let keys = txn.open_table(KEYS)?;
            let usage = txn.open_table(USAGE)?;
            let mut out = Vec::new();
            for item in owner_keys.range((owner, 0)..=(owner, u64::MAX))? {
                let (_, id) = item?;
                let Some(bytes) = keys.get(id.value())? else {
                    continue;
                };
                let info = StoredKey::decode(id.value(), bytes.value())?.info;
                let mut last = usage.get(id.value())?.map(|v| v.value().2).unwrap_or(0);
                if let Ok(key_id) = KeyId::parse(&info.id)
                    && let Some(cell) = engine.index.usage_cell(&key_id)
                {
                    last = last.max(cell.snapshot().last_used);
                }
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
        engine.read(|txn| {
            let row = txn
                .open_table(CREDITS)?
                .get(key_id.as_str())?
                .map(|v| v.value());
            let Some((remaining, period, slot)) = row else {
                return Ok(None);
            };
            Ok(Some(CreditBalance {
                remaining: engine.credits_left(remaining, period, slot, &terms, engine.now()),
                terms,
            }))
        })
    }
}
