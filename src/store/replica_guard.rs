//! Refusing local management calls on a replica of an upstream PostgreSQL (compiled in every
//! build: a replica's store may be opened by a library built without the `postgres` feature,
//! e.g. through the C ABI, and a revoke made there alone would never reach the other hosts).

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::schema::{META, META_UPSTREAM_CURSOR};

impl Engine {
    /// Fails with [`Error::UpstreamRequired`] when the store replicates an upstream (its meta
    /// table holds an upstream cursor: written by `Upstream::connect` and by the replicator).
    pub(super) fn refuse_on_replica(&self) -> Result<()> {
        let replica =
            self.read(|txn| Ok(txn.open_table(META)?.get(META_UPSTREAM_CURSOR)?.is_some()))?;
        if replica {
            return Err(Error::UpstreamRequired);
        }
        Ok(())
    }
}
