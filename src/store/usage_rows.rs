//! A key's stored usage row (format 2), and the format-1 rows it replaces.
//!
//! Format 2 keeps a key's totals and its latest day's uses in one `key_usage` row, so a flush
//! walks one B-tree per key instead of two (`usage` and `usage_days`): −40 % of the flush's
//! work per key at 100 k keys. `usage_days` holds the other days; a day's uses are its
//! `usage_days` row plus the `key_usage` row's count if that row's day is that day.
//!
//! Rows of format 1 (`usage`) are not converted at the upgrade: a reader adds a key's format-1
//! row to its format-2 row, and the key's first flush in format 2 folds the old row into the
//! new one. So an upgrade writes nothing but the version, and a format-1 process still running
//! beside a format-2 one during a rolling upgrade loses no count (its rows are added too).

use redb::{ReadableTable, ReadableTableMetadata, TableHandle, WriteTransaction};

use crate::clock::Day;
use crate::error::Result;
use crate::schema::{KEY_USAGE, USAGE_V1};
use crate::usage::{DailyUsage, PendingUsage, UsageStats};

/// One key's `key_usage` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageRow {
    /// Accepted verifies, all days.
    pub uses: u64,
    /// Refused verifies where the key id was known.
    pub refused: u64,
    /// Latest accepted verify, ms since the epoch (0 = none).
    pub last_used: i64,
    /// The latest day with uses written to this row (`Day(0)` with `day_uses` 0: none yet).
    pub day: Day,
    /// Uses on `day` not in `usage_days`.
    pub day_uses: u64,
}

impl Default for UsageRow {
    fn default() -> UsageRow {
        UsageRow::from_tuple((0, 0, 0, 0, 0))
    }
}

/// The stored tuple of a `key_usage` row.
pub(crate) type UsageTuple = (u64, u64, i64, i32, u64);

/// The stored tuple of a format-1 `usage` row: (uses, refused, last used ms).
pub(crate) type UsageTupleV1 = (u64, u64, i64);

impl UsageRow {
    pub(crate) fn from_tuple((uses, refused, last_used, day, day_uses): UsageTuple) -> UsageRow {
        UsageRow {
            uses,
            refused,
            last_used,
            day: Day(day),
            day_uses,
        }
    }

    pub(crate) fn to_tuple(self) -> UsageTuple {
        (
            self.uses,
            self.refused,
            self.last_used,
            self.day.0,
            self.day_uses,
        )
    }

    /// A format-1 row's totals (it has no day of its own: its days are all in `usage_days`).
    fn from_v1((uses, refused, last_used): UsageTupleV1) -> UsageRow {
        UsageRow {
            uses,
            refused,
            last_used,
            ..UsageRow::default()
        }
    }

    /// The row's totals as the API reports them.
    pub(crate) fn stats(&self) -> UsageStats {
        UsageStats {
            uses: self.uses,
            refused: self.refused,
            last_used: (self.last_used > 0).then_some(self.last_used),
        }
    }

    /// Adds a format-1 row's totals.
    fn absorb_v1(&mut self, v1: UsageRow) {
        self.uses = self.uses.saturating_add(v1.uses);
        self.refused = self.refused.saturating_add(v1.refused);
        self.last_used = self.last_used.max(v1.last_used);
    }

    /// Adds pending usage. The row keeps the latest day's count; returns the day counts that
    /// go to `usage_days` instead (the row's previous day when a later one replaces it, and
    /// any pending day earlier than the row's).
    pub(crate) fn add(&mut self, pending: &PendingUsage) -> Vec<(Day, u64)> {
        let mut to_days = Vec::new();
        for (day, n) in pending.uses_by_day.iter() {
            self.uses = self.uses.saturating_add(n);
            if day == self.day {
                self.day_uses = self.day_uses.saturating_add(n);
            } else if day > self.day {
                if self.day_uses > 0 {
                    to_days.push((self.day, self.day_uses));
                }
                self.day = day;
                self.day_uses = n;
            } else {
                to_days.push((day, n));
            }
        }
        self.refused = self.refused.saturating_add(pending.refused);
        self.last_used = self.last_used.max(pending.last_used);
        to_days
    }
}

/// A key's stored usage: its format-2 row plus any format-1 row (`usage`, absent from stores
/// created in format 2).
pub(crate) fn read_row(
    current: &impl ReadableTable<&'static str, UsageTuple>,
    v1: Option<&impl ReadableTable<&'static str, UsageTupleV1>>,
    id: &str,
) -> Result<Option<UsageRow>> {
    let mut row = current.get(id)?.map(|v| UsageRow::from_tuple(v.value()));
    if let Some(v1) = v1
        && let Some(old) = v1.get(id)?
    {
        row.get_or_insert_default()
            .absorb_v1(UsageRow::from_v1(old.value()));
    }
    Ok(row)
}

/// Whether this store still has the format-1 `usage` table (stores created before format 2).
pub(crate) fn has_v1_table(txn: &WriteTransaction) -> Result<bool> {
    Ok(txn
        .list_tables()?
        .any(|table| table.name() == USAGE_V1.name()))
}

/// The format-1 row of `id`, removed (its totals move into the key's format-2 row).
pub(crate) fn take_v1_row(
    v1: &mut redb::Table<&'static str, UsageTupleV1>,
    id: &str,
) -> Result<Option<UsageRow>> {
    if v1.is_empty()? {
        return Ok(None);
    }
    Ok(v1.remove(id)?.map(|old| UsageRow::from_v1(old.value())))
}

/// Adds day counts to `usage_days` (one walk of the B-tree per existing row).
pub(crate) fn add_to_days(
    days: &mut redb::Table<(&'static str, i32), u64>,
    id: &str,
    counts: &[(Day, u64)],
) -> Result<()> {
    for &(day, n) in counts {
        let updated = match days.get_mut((id, day.0))? {
            Some(mut row) => {
                let sum = row.value().saturating_add(n);
                row.insert(sum)?;
                true
            }
            None => false,
        };
        if !updated {
            days.insert((id, day.0), n)?;
        }
    }
    Ok(())
}

/// Uses per day of `id` from `from` to `to` inclusive, from `usage_days` and the key's row.
pub(crate) fn days_in_range(
    days: &impl ReadableTable<(&'static str, i32), u64>,
    row: Option<UsageRow>,
    id: &str,
    from: Day,
    to: Day,
) -> Result<Vec<DailyUsage>> {
    let mut out = Vec::new();
    for item in days.range((id, from.0)..=(id, to.0))? {
        let (k, v) = item?;
        out.push(DailyUsage {
            day: Day(k.value().1),
            uses: v.value(),
        });
    }
    if let Some(row) = row.filter(|r| r.day_uses > 0 && (from..=to).contains(&r.day)) {
        match out.binary_search_by_key(&row.day, |d| d.day) {
            Ok(at) => out[at].uses = out[at].uses.saturating_add(row.day_uses),
            Err(at) => out.insert(
                at,
                DailyUsage {
                    day: row.day,
                    uses: row.day_uses,
                },
            ),
        }
    }
    Ok(out)
}

/// Opens `key_usage` for reading; a store of format 1 not yet written since its upgrade may
/// not have it.
pub(crate) fn open_current(
    txn: &redb::ReadTransaction,
) -> Result<Option<redb::ReadOnlyTable<&'static str, UsageTuple>>> {
    optional(txn.open_table(KEY_USAGE))
}

/// Opens the format-1 `usage` table for reading, if the store has one.
pub(crate) fn open_v1(
    txn: &redb::ReadTransaction,
) -> Result<Option<redb::ReadOnlyTable<&'static str, UsageTupleV1>>> {
    optional(txn.open_table(USAGE_V1))
}

fn optional<T>(opened: std::result::Result<T, redb::TableError>) -> Result<Option<T>> {
    match opened {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A key's stored usage row in a read transaction (format-2 row plus any format-1 row).
pub(crate) fn read_row_in(txn: &redb::ReadTransaction, id: &str) -> Result<Option<UsageRow>> {
    let v1 = open_v1(txn)?;
    match open_current(txn)? {
        Some(current) => read_row(&current, v1.as_ref(), id),
        None => Ok(match &v1 {
            Some(v1) => v1.get(id)?.map(|old| UsageRow::from_v1(old.value())),
            None => None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(days: &[(i32, u64)]) -> PendingUsage {
        PendingUsage {
            uses_by_day: days.iter().map(|&(d, n)| (Day(d), n)).collect(),
            refused: 1,
            last_used: 7,
        }
    }

    /// The row keeps the latest day; an older day (in the same batch or already in the row)
    /// goes to `usage_days`, whatever the order the batch lists them in.
    #[test]
    fn the_row_keeps_the_latest_day_and_hands_the_others_to_usage_days() {
        let mut row = UsageRow::default();
        assert_eq!(row.add(&pending(&[(100, 2)])), vec![]);
        assert_eq!((row.uses, row.day, row.day_uses), (2, Day(100), 2));
        assert_eq!(row.add(&pending(&[(100, 3)])), vec![]);
        assert_eq!(row.day_uses, 5);
        // A new day: the previous one leaves the row.
        assert_eq!(row.add(&pending(&[(101, 1)])), vec![(Day(100), 5)]);
        // Two days in one batch, either order; an earlier day than the row's.
        assert_eq!(
            row.add(&pending(&[(103, 4), (102, 6), (99, 1)])),
            vec![(Day(101), 1), (Day(102), 6), (Day(99), 1)]
        );
        assert_eq!((row.day, row.day_uses), (Day(103), 4));
        assert_eq!(row.uses, 2 + 3 + 1 + 4 + 6 + 1);
        assert_eq!((row.refused, row.last_used), (4, 7));
        // Refusals alone leave the day alone.
        assert_eq!(row.add(&pending(&[])), vec![]);
        assert_eq!((row.day, row.day_uses, row.refused), (Day(103), 4, 5));
    }
}
