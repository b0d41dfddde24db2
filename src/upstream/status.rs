//! The replica status file lives with the store (`crate::store::replica_status`), so a build
//! without the `postgres` feature reads it too (`Store::stats`); re-exported here.

pub use crate::store::replica_status::{ReplicaStatus, status_file_path};
