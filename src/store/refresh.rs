//! Cross-process invalidation. Every committed change appends the changed key ids to the
//! `changes` log (same transaction) and, after the commit returns, raises the shared change
//! counter in the sync file to the new sequence. Before answering, a verify compares that
//! counter (one atomic load from shared memory, no system call) with the sequence its index
//! reflects; if another process has committed since, it reads the log entries it missed and
//! reloads exactly those keys. A process that fell further behind than the log keeps reloads
//! everything.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::engine::Engine;
use crate::error::Result;
use crate::key_format::KeyId;
use crate::schema::{CHANGES, CREDITS, KEYS, META, StoredKey, stored_change_seq};

impl Engine {
    /// Makes the index reflect every change whose signal this process can see.
    #[inline]
    pub(super) fn ensure_fresh(&self) -> Result<()> {
        let shared = self.sync.change_counter().load(Ordering::Acquire);
        // Checked after the counter load: a file re-initialised (or zeroed by a truncation)
        // changes its epoch before its counter, so a zeroed counter is never trusted.
        if !self.sync.is_current() {
            return self.recover_sync_file(false);
        }
        if shared > self.seen_seq.load(Ordering::Acquire) {
            self.refresh()?;
        }
        Ok(())
    }

    /// Applies the change log from the last seen sequence to the database's current one.
    pub(super) fn refresh(&self) -> Result<()> {
        self.contained(|| self.refresh_inner())
    }

    fn refresh_inner(&self) -> Result<()> {
        let _guard = self.refresh_lock.lock();
        let seen = self.seen_seq.load(Ordering::Acquire);
        let txn = self.db.begin_read()?;
        let db_seq = read_change_seq(&txn)?;
        if db_seq <= seen {
            return Ok(());
        }
        let log = txn.open_table(CHANGES)?;
        let oldest = log.first()?.map(|(k, _)| k.value());
        if oldest.is_none_or(|oldest| oldest > seen + 1) {
            drop(log);
            drop(txn);
            drop(_guard);
            self.reload_all()?;
            self.refreshes.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut changed = HashSet::new();
        for item in log.range(seen + 1..=db_seq)? {
            let (_, id) = item?;
            if let Ok(id) = KeyId::parse(id.value()) {
                changed.insert(id);
            }
        }
        let keys = txn.open_table(KEYS)?;
        let credits = txn.open_table(CREDITS)?;
        for id in changed {
            match keys.get(id.as_str())? {
                Some(bytes) => {
                    let stored = StoredKey::decode(id.as_str(), bytes.value())?;
                    let slot = credits.get(id.as_str())?.map(|row| row.value().2);
                    let (digest, entry) = self.entry_for(&stored, slot)?;
                    self.index.upsert(digest, entry, false);
                }
                None => self.index.remove(&id),
            }
        }
        self.seen_seq.store(db_seq, Ordering::Release);
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Loads the whole index (when the store fits its capacity) from one read transaction.
    /// Returns the change sequence the index now reflects.
    pub(super) fn reload_all(&self) -> Result<u64> {
        let _guard = self.refresh_lock.lock();
        let txn = self.db.begin_read()?;
        let db_seq = read_change_seq(&txn)?;
        let keys = txn.open_table(KEYS)?;
        let count = keys.len()? as usize;
        let complete = count <= self.index.capacity();
        let mut entries = Vec::new();
        if complete {
            let credits = txn.open_table(CREDITS)?;
            entries.reserve(count);
            for item in keys.iter()? {
                let (id, bytes) = item?;
                let stored = StoredKey::decode(id.value(), bytes.value())?;
                let slot = credits.get(id.value())?.map(|row| row.value().2);
                entries.push(self.entry_for(&stored, slot)?);
            }
        }
        self.index.replace_all(entries, complete);
        self.seen_seq.store(db_seq, Ordering::Release);
        Ok(db_seq)
    }
}

pub(super) fn read_change_seq(txn: &ReadTransaction) -> Result<u64> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    stored_change_seq(&meta)
}
