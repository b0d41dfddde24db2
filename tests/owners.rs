//! Owner controls through the Rust API: suspension, allowed scopes (effective scopes), the
//! owner records and their audit events, and old stores without the `owners` table.

mod common;

use std::time::Duration;

use common::{new_key, temp_store};
use keyward::{AuditAction, AuditQuery, Error, ErrorCode, Reason, Store, StoreOptions};

fn options() -> StoreOptions {
    StoreOptions {
        flush_interval: Duration::ZERO,
        ..StoreOptions::default()
    }
}

#[test]
fn a_suspend_through_one_handle_is_seen_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("owners.redb");
    let a = Store::open_unshared(&path, options()).unwrap();
    let b = Store::open_unshared(&path, options()).unwrap();
    let key = a.create(new_key("acct", &["read"])).unwrap();
    for round in 0..50 {
        assert_eq!(
            b.verify(key.key(), &["read"]).unwrap().reason,
            Reason::Valid,
            "round {round}"
        );
        a.suspend_owner("acct", None).unwrap();
        assert_eq!(
            b.verify(key.key(), &["read"]).unwrap().reason,
            Reason::OwnerSuspended,
            "round {round}"
        );
        a.resume_owner("acct").unwrap();
    }
}
