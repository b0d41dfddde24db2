//! Freshness of this process's view. Verifies answer from the shared verify table, which
//! every writer updates in place (see `table_sync`), so there is no per-process index to
//! refresh: a verify only checks that the sync file is still the one it validated and that
//! it maps the table generation the sync file names.

use redb::ReadTransaction;

use super::engine::Engine;
use crate::error::Result;
use crate::schema::{META, stored_change_seq};

impl Engine {
    /// Checks the sync mapping (damaged, truncated or replaced: remapped and rebound).
    #[inline]
    pub(super) fn ensure_fresh(&self) -> Result<()> {
        if !self.sync.is_current() {
            return self.recover_sync_file(false);
        }
        Ok(())
    }

    /// Re-derives this process's view after the sync file changed under it: maps the table
    /// generation it names (building one if it names none) and forgets the owner rules (the
    /// owner epoch restarted with the file).
    pub(super) fn refresh(&self) -> Result<()> {
        self.owners.invalidate();
        self.current_table().map(|_| ())
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
