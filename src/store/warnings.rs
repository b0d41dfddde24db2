//! Warnings before keys stop working: active keys expiring soon, and limited keys running out
//! of credits (issue 18, item 4). Both scan every key of the store, for operators and for
//! notification jobs.

use std::time::Duration;

use redb::ReadableTable;

use super::Store;
use super::usage::CreditBalance;
use crate::error::Result;
use crate::schema::{CREDITS, KEYS, KeyInfo, StoredKey};

impl Store {
    /// Active keys (neither revoked nor expired, and not rotated away) whose expiry falls
    /// within `within` from now, soonest first.
    pub fn expiring_within(&self, within: Duration) -> Result<Vec<KeyInfo>> {
        let engine = self.engine()?;
        let now = engine.now().as_millis();
        let horizon = now.saturating_add(i64::try_from(within.as_millis()).unwrap_or(i64::MAX));
        let mut out = engine.read(|txn| {
            let keys = txn.open_table(KEYS)?;
            let mut out = Vec::new();
            for item in keys.iter()? {
                let (id, bytes) = item?;
                let info = StoredKey::decode(id.value(), bytes.value())?.info;
                if info.is_active_at(now)
                    && info.rotated_to.is_none()
                    && info.expires_at.is_some_and(|e| e <= horizon)
                {
                    out.push(info);
                }
            }
            Ok(out)
        })?;
        out.sort_by_key(|k| (k.expires_at, k.serial));
        Ok(out)
    }

    /// Active limited keys (not rotated away) with fewer than `threshold` credits left now
    /// (after any refill that is due), fewest first, each with its balance.
    pub fn credits_below(&self, threshold: u64) -> Result<Vec<(KeyInfo, CreditBalance)>> {
        let engine = self.engine()?;
        let now = engine.now();
        let mut out = engine.read(|txn| {
            let keys = txn.open_table(KEYS)?;
            let credits = txn.open_table(CREDITS)?;
            let replica = super::engine::Engine::is_replica(&txn.open_table(crate::schema::META)?)?;
            let mut out = Vec::new();
            for item in credits.iter()? {
                let (id, row) = item?;
                let (remaining, period, slot) = row.value();
                let Some(bytes) = keys.get(id.value())? else {
                    continue;
                };
                let info = StoredKey::decode(id.value(), bytes.value())?.info;
                let Some(terms) = info.credits else {
                    continue;
                };
                if !info.is_active_at(now.as_millis()) || info.rotated_to.is_some() {
                    continue;
                }
                let left = engine.credits_left(remaining, period, slot, &terms, now, replica);
                if left < threshold {
                    out.push((
                        info,
                        CreditBalance {
                            remaining: left,
                            terms,
                        },
                    ));
                }
            }
            Ok(out)
        })?;
        out.sort_by_key(|(k, b)| (b.remaining, k.serial));
        Ok(out)
    }
}
