//! Binding the sync file to the database, and recovering when the file is damaged,
//! truncated, re-initialised or replaced under running processes.
//!
//! The database records which incarnation of the sync file belongs to it (epoch, device,
//! inode: `META_SYNC_FILE`). At open, a process maps the file and:
//! - if the record names this incarnation, repairs the change counter from the database;
//! - otherwise binds it inside a write transaction (so no commit overlaps): records it, and
//!   sets the counter from the database. If the record named another *file* (a different
//!   inode: the old one was deleted or renamed), processes still running may hold the old
//!   one, which nobody will ever signal again: they notice the new record within one flush
//!   interval (see [`Engine::check_sync_binding`]), so the opener waits two intervals before it
//!   goes on, and no change it makes is missed by them.
//!
//! The change counter is never lowered below a value another commit of this database may
//! have raised it to: the counter is read *before* the database (every value in it was
//! written after its commit returned, so a later read sees that commit), and lowered only when
//! it is still ahead of the database — a counter that belongs to another history (a file left
//! by another database at this path, a database restored from a backup).

use std::sync::atomic::Ordering;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::schema::{META, META_SYNC_FILE, stored_change_seq, with_crc, without_crc};
use crate::sys::shared_memory::Recovered;

/// The sync file a database is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SyncRecord {
    epoch: u64,
    identity: (u64, u64),
}

impl SyncRecord {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(24);
        bytes.extend_from_slice(&self.epoch.to_le_bytes());
        bytes.extend_from_slice(&self.identity.0.to_le_bytes());
        bytes.extend_from_slice(&self.identity.1.to_le_bytes());
        with_crc(&bytes)
    }

    fn read(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Option<SyncRecord>> {
        let Some(value) = meta.get(META_SYNC_FILE)? else {
            return Ok(None);
        };
        let damaged = || Error::Corrupt {
            path: Default::default(),
            detail: "the sync-file record is damaged".into(),
        };
        let bytes = without_crc(value.value()).ok_or_else(damaged)?;
        if bytes.len() != 24 {
            return Err(damaged());
        }
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        Ok(Some(SyncRecord {
            epoch: word(0),
            identity: (word(1), word(2)),
        }))
    }
}

impl Engine {
    fn mapped_record(&self) -> SyncRecord {
        SyncRecord {
            epoch: self.sync.epoch(),
            identity: self.sync.identity(),
        }
    }

    /// Binds the mapped sync file to the database and repairs its change counter (see the
    /// module documentation). `grace`: how long to wait when the file replaced another one
    /// that running processes may still hold (`None` after a remap in a running process).
    pub(super) fn bind_sync_file(&self, grace: Option<Duration>) -> Result<()> {
        self.contained(|| self.bind_sync_file_inner(grace))
    }

    fn bind_sync_file_inner(&self, grace: Option<Duration>) -> Result<()> {
        let mine = self.mapped_record();
        let counter = self.sync.change_counter();
        let shared = counter.load(Ordering::Acquire);
        let (db_seq, recorded, owner_rate_seq) = {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            (
                stored_change_seq(&meta)?,
                SyncRecord::read(&meta)?,
                Engine::stored_owner_rate_seq(&meta)?,
            )
        };
        // A version word lost with the file (or never raised by a writer killed after its
        // commit) is raised again before anything is verified.
        self.publish_owner_rate_seq(owner_rate_seq);
        if recorded.is_some_and(|r| r.epoch == mine.epoch) {
            if shared > db_seq {
                // Ahead of this database's history (restored from a backup).
                let _ =
                    counter.compare_exchange(shared, db_seq, Ordering::AcqRel, Ordering::Acquire);
            } else {
                // Repairs a counter left behind by a process that died between commit and
                // signal.
                counter.fetch_max(db_seq, Ordering::AcqRel);
            }
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        let replaced_file = {
            let mut meta = txn.open_table(META)?;
            let recorded = SyncRecord::read(&meta)?;
            let db_seq = stored_change_seq(&meta)?;
            if recorded.is_some_and(|r| r.epoch == mine.epoch) {
                counter.fetch_max(db_seq, Ordering::AcqRel);
                false
            } else {
                meta.insert(META_SYNC_FILE, mine.encode().as_slice())?;
                // No commit can overlap this write transaction, so every committed sequence is
                // at most `db_seq`: a counter above it belongs to another history.
                let shared = counter.load(Ordering::Acquire);
                if shared > db_seq {
                    counter.store(db_seq, Ordering::Release);
                } else {
                    counter.fetch_max(db_seq, Ordering::AcqRel);
                }
                recorded.is_some_and(|r| r.identity != mine.identity)
            }
        };
        txn.commit()?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        if replaced_file && let Some(grace) = grace {
            // Processes that still map the old, unlinked file see the new record at their next
            // flush interval and move over; changes made before that would be invisible to them.
            std::thread::sleep(grace);
        }
        Ok(())
    }

    /// The mapped sync file is no longer the one this process validated (damaged, truncated,
    /// re-initialised) or no longer the one at the path (`force`): maps the file at the path
    /// again, binds it, and refreshes the index from the database, since any change signalled
    /// meanwhile may have been missed.
    #[cold]
    pub(super) fn recover_sync_file(&self, force: bool) -> Result<()> {
        let recovered = self.sync.recover(force)?;
        if recovered != Recovered::AlreadyCurrent {
            self.sync_recoveries.fetch_add(1, Ordering::Relaxed);
            self.bind_sync_file(None)?;
        }
        self.refresh()
    }

    /// Periodic check (every flush interval, and on `flush()`): the mapping still holds the
    /// incarnation recorded in the database, and the change counter is not behind it (a
    /// process that died between a commit and its signal cannot leave the others stale for
    /// longer than this).
    pub(super) fn check_sync_binding(&self) -> Result<()> {
        let recorded = self.contained(|| {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            let seq = stored_change_seq(&meta)?;
            let recorded = SyncRecord::read(&meta)?;
            if recorded.is_some_and(|r| r.epoch == self.sync.epoch()) && self.sync.is_current() {
                self.sync.change_counter().fetch_max(seq, Ordering::AcqRel);
                self.publish_owner_rate_seq(Engine::stored_owner_rate_seq(&meta)?);
            }
            Ok(recorded)
        })?;
        match recorded {
            Some(r) if r.epoch == self.sync.epoch() && self.sync.is_current() => Ok(()),
            // Bound by an older keyward that kept no record: record it now.
            None if self.sync.is_current() => self.bind_sync_file(None),
            _ => self.recover_sync_file(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{NewKey, Reason, Store, StoreOptions};

    fn options() -> StoreOptions {
        StoreOptions {
            flush_interval: Duration::ZERO,
            ..StoreOptions::default()
        }
    }

    /// Issue 13, item 8: a revoke committed by another process while a third one is opening
    /// (after it loaded its index, before it repaired the shared counter) stays visible to
    /// every process. The opener used to lower the counter to its own, older view, and an
    /// already-open process then kept accepting the revoked key until a flusher repaired it.
    #[test]
    fn a_commit_during_another_open_is_not_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.redb");
        let revoker = Store::open_unshared(&path, options()).unwrap();
        let created = revoker
            .create(NewKey {
                owner: "acct".into(),
                ..NewKey::default()
            })
            .unwrap();
        let watcher = Store::open_unshared(&path, options()).unwrap();
        assert!(watcher.verify(created.key(), &[]).unwrap().is_valid());
        let revoked_in_window = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = revoked_in_window.clone();
        let revoker_in_hook = revoker.clone();
        let id = created.id().to_owned();
        super::super::engine::BEFORE_SYNC_BIND.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move || {
                revoker_in_hook.revoke(&id, None).unwrap();
                flag.set(true);
            }));
        });
        let opener = Store::open_unshared(&path, options()).unwrap();
        assert!(
            revoked_in_window.get(),
            "the revoke ran inside the open's window"
        );
        assert_eq!(
            watcher.verify(created.key(), &[]).unwrap().reason,
            Reason::Revoked,
            "the already-open process saw the revoke"
        );
        assert_eq!(
            opener.verify(created.key(), &[]).unwrap().reason,
            Reason::Revoked
        );
    }
}
