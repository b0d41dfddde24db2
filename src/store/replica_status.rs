//! The replica status file: what a host's replicator last did, for the workers' `stats`, the
//! CLI's `keyward status` and operators. JSON in `<db>.replica`, replaced atomically (written
//! beside, then renamed) after every sync attempt. Compiled in every build (a store replicated
//! by `keyward replicate` may be opened by a library built without the `postgres` feature, and
//! its `Store::stats` still reports the staleness); `keyward::upstream` re-exports it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Where the replicator of the store at `db` writes its status.
pub fn status_file_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".replica");
    PathBuf::from(name)
}

/// What a host's replicator last did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// The host name the replicator reports upstream.
    pub host: String,
    /// Process id of the replicator.
    pub pid: u32,
    /// The last upstream change sequence applied to the local store.
    pub cursor: u64,
    /// When the local store was last known to be up to date with the upstream (ms since the
    /// epoch; 0 = never).
    pub synced_at: i64,
    /// When the replicator last wrote this status (ms since the epoch).
    pub updated_at: i64,
    /// Whether the replicator is connected to PostgreSQL now.
    pub connected: bool,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Times the replica resynchronised from a snapshot (the log was pruned past its cursor).
    pub resyncs: u64,
}

impl ReplicaStatus {
    /// Reads the status of the store at `db`; `None` when no replicator ever ran for it.
    pub fn read(db: &Path) -> Result<Option<ReplicaStatus>> {
        let path = status_file_path(db);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::storage(format!("unreadable replica status {}: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::storage(format!("{}: {e}", path.display()))),
        }
    }

    /// How long ago (ms) the local store was last known up to date, at `now`; `None` if never.
    pub fn staleness_ms(&self, now: Timestamp) -> Option<u64> {
        (self.synced_at > 0).then(|| (now.as_millis() - self.synced_at).max(0) as u64)
    }

    /// Writes the status beside the store at `db` (atomically).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn write(&self, db: &Path) -> Result<()> {
        let path = status_file_path(db);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let json = serde_json::to_vec(self).expect("the status always serializes");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::storage(format!("{}: {e}", path.display())))
    }
}
