//! Usage counting in memory: each key's pending uses (per UTC day), refusals and last-used time
//! accumulate here on the verify path and are written by the store's periodic flush, in one
//! batched write transaction.

use serde::Serialize;

use crate::clock::{Day, Timestamp};

/// Uses per UTC day, in the order the days were first seen. The first two days are held
/// inline (a shared cell holds at most two, and a flush usually sees one), so the usage
/// pending for each of the tens of thousands of keys a busy host's flush writes allocates
/// nothing; further days (a process that did not flush for days) go to a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayCounts {
    inline: [(Day, u64); 2],
    inline_len: u8,
    more: Vec<(Day, u64)>,
}

impl Default for DayCounts {
    fn default() -> DayCounts {
        DayCounts {
            inline: [(Day(0), 0); 2],
            inline_len: 0,
            more: Vec::new(),
        }
    }
}

impl DayCounts {
    /// Whether no day has been added.
    pub(crate) fn is_empty(&self) -> bool {
        self.inline_len == 0
    }

    /// Adds `n` uses on `day`.
    pub(crate) fn add(&mut self, day: Day, n: u64) {
        let len = usize::from(self.inline_len);
        if let Some((_, count)) = self.inline[..len]
            .iter_mut()
            .chain(self.more.iter_mut())
            .find(|(d, _)| *d == day)
        {
            *count = count.saturating_add(n);
        } else if len < self.inline.len() {
            self.inline[len] = (day, n);
            self.inline_len += 1;
        } else {
            self.more.push((day, n));
        }
    }

    /// Every (day, uses), in the order the days were first seen.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Day, u64)> + '_ {
        self.inline[..usize::from(self.inline_len)]
            .iter()
            .chain(&self.more)
            .copied()
    }

    /// Uses over every day.
    pub(crate) fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).fold(0, u64::saturating_add)
    }
}

impl FromIterator<(Day, u64)> for DayCounts {
    fn from_iter<I: IntoIterator<Item = (Day, u64)>>(days: I) -> DayCounts {
        let mut counts = DayCounts::default();
        for (day, n) in days {
            counts.add(day, n);
        }
        counts
    }
}

/// Usage not yet written to the database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PendingUsage {
    /// Uses per UTC day, in the order first seen (usually one entry).
    pub uses_by_day: DayCounts,
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
        for (day, n) in other.uses_by_day.iter() {
            self.add_uses(day, n);
        }
        self.refused += other.refused;
        self.last_used = self.last_used.max(other.last_used);
    }

    /// Adds `n` uses on `day`.
    pub(crate) fn add_uses(&mut self, day: Day, n: u64) {
        self.uses_by_day.add(day, n);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_counts_keep_every_day_in_first_seen_order_past_the_inline_two() {
        let mut counts = DayCounts::default();
        assert!(counts.is_empty());
        for (day, n) in [(5, 1), (3, 2), (5, 4), (9, 8), (3, 16), (11, 32), (9, 64)] {
            counts.add(Day(day), n);
        }
        assert!(!counts.is_empty());
        let seen: Vec<(i32, u64)> = counts.iter().map(|(d, n)| (d.0, n)).collect();
        assert_eq!(seen, [(5, 5), (3, 18), (9, 72), (11, 32)]);
        assert_eq!(counts.total(), 127);
        let rebuilt: DayCounts = counts.iter().collect();
        assert_eq!(rebuilt, counts);
        let mut saturated = DayCounts::default();
        saturated.add(Day(1), u64::MAX);
        saturated.add(Day(1), 1);
        saturated.add(Day(2), 1);
        assert_eq!(saturated.total(), u64::MAX);
    }
}
