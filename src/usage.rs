//! Usage counting in memory: each key's pending uses (per UTC day), refusals and last-used time
//! accumulate here on the verify path and are written by the store's periodic flush, in one
//! batched write transaction.

use crate::locks::Mutex;
use serde::Serialize;

use crate::clock::{Day, Timestamp};

/// Usage not yet written to the database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PendingUsage {
    /// Uses per UTC day, in the order first seen (usually one entry).
    pub uses_by_day: Vec<(Day, u64)>,
    /// Refused verifies of this key (right id; wrong secret, revoked, expired, scope, credits).
    pub refused: u64,
    /// Latest use, ms since the epoch (0 = none).
    pub last_used: i64,
}

impl PendingUsage {
    pub(crate) fn is_empty(&self) -> bool {
        self.uses_by_day.is_empty() && self.refused == 0
    }

    /// Adds `other` into `self` (used to put back a batch whose commit failed).
    pub(crate) fn absorb(&mut self, other: PendingUsage) {
        for (day, n) in other.uses_by_day {
            self.add_uses(day, n);
        }
        self.refused += other.refused;
        self.last_used = self.last_used.max(other.last_used);
    }

    fn add_uses(&mut self, day: Day, n: u64) {
        match self.uses_by_day.iter_mut().find(|(d, _)| *d == day) {
            Some((_, count)) => *count += n,
            None => self.uses_by_day.push((day, n)),
        }
    }
}

/// One key's pending usage, shared between the verify index entries that describe the key over
/// time (a refresh replaces the entry, not the cell).
#[derive(Debug, Default)]
pub(crate) struct UsageCell {
    pending: Mutex<PendingUsage>,
}

impl UsageCell {
    /// Records one accepted verify. Returns true when the cell went from clean to dirty (the
    /// caller then queues it for the next flush).
    #[inline]
    pub(crate) fn record_use(&self, now: Timestamp) -> bool {
        let mut pending = self.pending.lock();
        let was_empty = pending.is_empty();
        pending.add_uses(now.day(), 1);
        pending.last_used = pending.last_used.max(now.as_millis());
        was_empty
    }

    /// Records one refused verify; same return value as [`UsageCell::record_use`].
    #[inline]
    pub(crate) fn record_refusal(&self) -> bool {
        let mut pending = self.pending.lock();
        let was_empty = pending.is_empty();
        pending.refused += 1;
        was_empty
    }

    /// Takes everything pending, leaving the cell clean.
    pub(crate) fn take(&self) -> PendingUsage {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Puts back a batch that could not be written. Returns true if the cell became dirty.
    pub(crate) fn restore(&self, batch: PendingUsage) -> bool {
        let mut pending = self.pending.lock();
        let was_empty = pending.is_empty();
        pending.absorb(batch);
        was_empty && !pending.is_empty()
    }

    /// A copy of what is pending (for queries that add unflushed counts).
    pub(crate) fn snapshot(&self) -> PendingUsage {
        self.pending.lock().clone()
    }
}

/// A key's usage as stored (plus, from [`crate::Store::usage`], what this process has not
/// flushed yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageStats {
    /// Accepted verifies.
    pub uses: u64,
    /// Refused verifies where the key id was known.
    pub refused: u64,
    /// Latest accepted verify, ms since the epoch.
    pub last_used: Option<i64>,
}

/// Uses of one key on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DailyUsage {
    /// The day.
    #[serde(serialize_with = "serialize_day")]
    pub day: Day,
    /// Accepted verifies that day.
    pub uses: u64,
}

fn serialize_day<S: serde::Serializer>(day: &Day, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(day)
}
