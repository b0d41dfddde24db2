//! Usage counting in memory: each key's pending uses (per UTC day), refusals and last-used time
//! accumulate here on the verify path and are written by the store's periodic flush, in one
//! batched write transaction.

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

    /// Adds `n` uses on `day`.
    pub(crate) fn add_uses(&mut self, day: Day, n: u64) {
        match self.uses_by_day.iter_mut().find(|(d, _)| *d == day) {
            Some((_, count)) => *count = count.saturating_add(n),
            None => self.uses_by_day.push((day, n)),
        }
    }
}

impl PendingUsage {
    /// Records one accepted verify.
    pub(crate) fn record_use(&mut self, now: Timestamp) {
        self.add_uses(now.day(), 1);
        self.last_used = self.last_used.max(now.as_millis());
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
