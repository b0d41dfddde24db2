//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keyward::{ManualClock, NewKey, Store, StoreOptions, Timestamp};

/// A store in a fresh temporary directory (kept alive by the returned guard).
pub struct TempStore {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub path: PathBuf,
}

/// Options with a manual clock and no background flush.
pub fn options(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions {
        clock: clock.clone(),
        flush_interval: Duration::ZERO,
        ..StoreOptions::default()
    }
}

/// A fresh store at a fixed start time, opened unshared with no background flush.
pub fn temp_store() -> TempStore {
    temp_store_with(|_| {})
}

/// A fresh store whose options `tweak` adjusts.
pub fn temp_store_with(tweak: impl FnOnce(&mut StoreOptions)) -> TempStore {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(1_750_000_000));
    let mut opts = options(&clock);
    tweak(&mut opts);
    let path = dir.path().join("keys.redb");
    let store = Store::open_unshared(&path, opts).unwrap();
    TempStore {
        dir,
        store,
        clock,
        path,
    }
}

/// A minimal new key for `owner` with `scopes`.
pub fn new_key(owner: &str, scopes: &[&str]) -> NewKey {
    NewKey {
        owner: owner.into(),
        name: format!("key of {owner}"),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        env: Some("live".into()),
        ..NewKey::default()
    }
}
