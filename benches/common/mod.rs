//! Setup shared by the Criterion benchmarks: temporary stores filled with keys, the baselines
//! (the same code `keyward bench` runs), and a scattered visiting order.
#![allow(dead_code)]

#[path = "../../src/cli/bench_baselines.rs"]
pub mod baselines;

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward::{Concurrency, NewKey, Store, StoreOptions};

/// The scopes every benchmark key holds and every verify asks for.
pub const SCOPES: &[&str] = &["read"];

/// Whether this is a real benchmark run (`cargo bench`), not `cargo test --benches` (which runs
/// each benchmark once): the 1 M-key setups run only then.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench") && std::env::var_os("KEYWARD_BENCH_SKIP_1M").is_none()
}

/// Key counts of the size-dependent benchmarks: 1 k, 100 k, and 1 M in a full run.
pub fn sizes() -> Vec<usize> {
    if full_run() {
        vec![1_000, 100_000, 1_000_000]
    } else {
        vec![1_000, 100_000]
    }
}

/// Options of a benchmark store: the given mode, no background flush unless asked for.
pub fn options(concurrency: Concurrency, flush_interval: Duration) -> StoreOptions {
    StoreOptions {
        concurrency,
        flush_interval,
        index_capacity: 2_000_000,
        ..StoreOptions::default()
    }
}

/// A new key description (owner spread over 1 000 accounts, scope `read`).
pub fn new_key(i: usize) -> NewKey {
    NewKey {
        owner: format!("acct_{}", i % 1000),
        name: format!("bench key {i}"),
        scopes: vec!["read".into()],
        ..NewKey::default()
    }
}

/// Creates `n` keys (bulk transactions of 50 k) and returns their texts.
pub fn fill(store: &Store, n: usize) -> Vec<String> {
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let batch = (keys.len()..n.min(keys.len() + 50_000))
            .map(new_key)
            .collect();
        for created in store.create_many(batch).expect("create keys") {
            keys.push(created.key().to_owned());
        }
    }
    keys
}

/// A temporary directory with a store of `n` keys in it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub keys: Vec<String>,
}

impl Fixture {
    /// Creates the store (multi-process mode) and its keys, then closes it.
    pub fn new(n: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("keys.redb");
        let store = Store::open_unshared(&path, options(Concurrency::MultiProcess, Duration::ZERO))
            .expect("open");
        let keys = fill(&store, n);
        store.close().expect("close");
        Fixture { dir, path, keys }
    }

    /// Opens the store (unshared) in `concurrency` mode.
    pub fn open(&self, concurrency: Concurrency, flush_interval: Duration) -> Store {
        Store::open_unshared(&self.path, options(concurrency, flush_interval))
            .expect("open the store")
    }

    /// A path for a baseline's own file.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A deterministic scattered permutation of `0..n` (xorshift Fisher-Yates).
pub fn scattered_order(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut state = seed | 1;
    for i in (1..n).rev() {
        state = xorshift(state);
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// One xorshift64 step.
pub fn xorshift(mut state: u64) -> u64 {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    state
}

/// Cycles through `keys` in a scattered order.
pub struct Cycle<'a> {
    keys: &'a [String],
    order: Vec<u32>,
    next: usize,
}

impl<'a> Cycle<'a> {
    pub fn new(keys: &'a [String]) -> Cycle<'a> {
        Cycle {
            keys,
            order: scattered_order(keys.len(), 0x9e37_79b9_7f4a_7c15),
            next: 0,
        }
    }

    #[inline]
    pub fn next_key(&mut self) -> &'a str {
        let key = &self.keys[self.order[self.next] as usize];
        self.next += 1;
        if self.next == self.order.len() {
            self.next = 0;
        }
        key
    }
}

/// Whether `path` exists (helper for setups that reuse files).
pub fn exists(path: &Path) -> bool {
    path.exists()
}
