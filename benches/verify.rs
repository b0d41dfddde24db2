//! Verify throughput: hits at 1 k / 100 k / 1 M keys beside the baselines (same keys, same
//! run), refusals side by side, limited keys (credits), verify while a usage flush runs, and
//! 1 → N threads (spread keys and one hot key), plus the cost of the pieces every verify pays.
//!
//! `cargo bench --bench verify` (append `-- <filter>` to pick groups). The 1 M-key size runs
//! only under `cargo bench`; `KEYWARD_BENCH_SKIP_1M=1` skips it there too.

mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use keyward::format_key;
use keyward::{Concurrency, KeyId, Store, parse_key};

use common::baselines::{Floor, RedbTxn, SqliteSha256};
use common::{Cycle, Fixture, SCOPES, xorshift};

/// A verify that must accept.
#[inline]
fn accept(store: &Store, key: &str) -> bool {
    store.verify(key, SCOPES).is_ok_and(|v| v.is_valid())
}

/// Copies a closed store (database and pepper) so it can be opened in another mode.
fn copy_store(fixture: &Fixture, name: &str) -> std::path::PathBuf {
    let to = fixture.file(name);
    std::fs::copy(&fixture.path, &to).expect("copy the database");
    std::fs::copy(
        keyward::default_pepper_path(&fixture.path),
        keyward::default_pepper_path(&to),
    )
    .expect("copy the pepper");
    to
}

/// The pieces every verify pays for, for reading the profiles.
fn components(c: &mut Criterion) {
    let fixture = Fixture::new(1_000);
    let key = fixture.keys[0].clone();
    let parsed = parse_key(&key, Some("kw")).expect("well formed");
    let mut group = c.benchmark_group("components");
    group.bench_function("parse_key", |b| {
        b.iter(|| parse_key(black_box(&key), Some("kw")).is_ok())
    });
    group.bench_function("keyed_blake3_id_secret", |b| {
        b.iter(|| {
            let mut hasher = blake3::Hasher::new_keyed(&[7u8; 32]);
            hasher.update(black_box(parsed.id.as_bytes()));
            hasher.update(black_box(parsed.secret.expose()));
            hasher.finalize()
        })
    });
    group.bench_function("crc32_of_key", |b| {
        b.iter(|| crc32fast::hash(black_box(&key.as_bytes()[..key.len() - 6])))
    });
    group.bench_function("timestamp_now", |b| b.iter(keyward::Timestamp::now));
    group.finish();
}

/// Verify hits at each size: keyward in both modes and every baseline, on the same keys.
fn verify_hit(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify_hit");
    group.throughput(Throughput::Elements(1));
    for n in common::sizes() {
        if n >= 1_000_000 {
            group
                .sample_size(20)
                .measurement_time(Duration::from_secs(4));
        }
        let fixture = Fixture::new(n);
        let keys = &fixture.keys;
        {
            let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
            let mut cycle = Cycle::new(keys);
            group.bench_function(BenchmarkId::new("keyward_multi", n), |b| {
                b.iter(|| accept(&store, cycle.next_key()))
            });
        }
        {
            let path = copy_store(&fixture, "exclusive.redb");
            let store = Store::open_unshared(
                &path,
                common::options(Concurrency::SingleProcess, Duration::ZERO),
            )
            .expect("open exclusive");
            let mut cycle = Cycle::new(keys);
            group.bench_function(BenchmarkId::new("keyward_exclusive", n), |b| {
                b.iter(|| accept(&store, cycle.next_key()))
            });
        }
        {
            let floor = Floor::new(keys);
            let mut cycle = Cycle::new(keys);
            group.bench_function(BenchmarkId::new("floor", n), |b| {
                b.iter(|| floor.verify(cycle.next_key()))
            });
        }
        {
            let sqlite = SqliteSha256::create(&fixture.file("sanctum.sqlite"), keys)
                .expect("sqlite baseline");
            let mut cycle = Cycle::new(keys);
            group.bench_function(BenchmarkId::new("sqlite_sha256", n), |b| {
                b.iter(|| sqlite.verify(cycle.next_key()))
            });
        }
        {
            let path = fixture.file("baseline.redb");
            RedbTxn::create(&path, keys).expect("redb baseline");
            for (name, exclusive) in [
                ("redb_txn_multiwriter", false),
                ("redb_txn_exclusive", true),
            ] {
                let redb = RedbTxn::open(&path, exclusive).expect("open redb baseline");
                let mut cycle = Cycle::new(keys);
                group.bench_function(BenchmarkId::new(name, n), |b| {
                    b.iter(|| redb.verify(cycle.next_key()))
                });
            }
        }
    }
    group.finish();
}

/// Keys that must be refused, built from the keys of a store.
pub struct Refusals {
    /// Bad checksum (last character changed).
    pub malformed: Vec<String>,
    /// Well-formed, checksum right, id unknown.
    pub unknown_id: Vec<String>,
    /// Right id, secret wrong in its first character, checksum recomputed.
    pub wrong_secret: Vec<String>,
}

/// Replaces the base62 character `c` by another one.
fn other_char(c: u8) -> u8 {
    if c == b'a' { b'b' } else { b'a' }
}

impl Refusals {
    pub fn from_keys(keys: &[String]) -> Refusals {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut malformed = Vec::new();
        let mut unknown_id = Vec::new();
        let mut wrong_secret = Vec::new();
        for key in keys.iter().take(10_000) {
            let mut bytes = key.clone().into_bytes();
            let last = bytes.len() - 1;
            bytes[last] = other_char(bytes[last]);
            malformed.push(String::from_utf8(bytes).expect("ASCII"));

            let parsed = parse_key(key, Some("kw")).expect("well formed");
            let mut id = *parsed.id.as_bytes();
            for byte in id.iter_mut() {
                state = xorshift(state);
                *byte = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    [(state % 62) as usize];
            }
            let id = KeyId::parse(std::str::from_utf8(&id).expect("ASCII")).expect("base62");
            unknown_id
                .push(format_key("kw", parsed.env.as_deref(), &id, &parsed.secret).to_string());

            let mut secret = *parsed.secret.expose();
            secret[0] = other_char(secret[0]);
            let secret = keyward::Secret::parse(std::str::from_utf8(&secret).expect("ASCII"))
                .expect("base62");
            wrong_secret
                .push(format_key("kw", parsed.env.as_deref(), &parsed.id, &secret).to_string());
        }
        Refusals {
            malformed,
            unknown_id,
            wrong_secret,
        }
    }
}

/// Malformed, unknown id and wrong secret side by side (the last two must cost the same), with
/// a valid key for reference, at 100 k keys.
fn verify_refused(c: &mut Criterion) {
    let fixture = Fixture::new(100_000);
    let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
    let refusals = Refusals::from_keys(&fixture.keys);
    let mut group = c.benchmark_group("verify_refused");
    group.throughput(Throughput::Elements(1));
    let sets: [(&str, &[String]); 4] = [
        ("malformed", &refusals.malformed),
        ("unknown_id", &refusals.unknown_id),
        ("wrong_secret", &refusals.wrong_secret),
        ("valid_for_reference", &fixture.keys[..10_000]),
    ];
    for (name, keys) in sets {
        let mut cycle = Cycle::new(keys);
        group.bench_function(name, |b| {
            b.iter(|| store.verify(cycle.next_key(), SCOPES).map(|v| v.reason))
        });
    }
    group.finish();
}

/// Limited keys (usage credits), at 100 k keys: one with a large balance (a compare-and-swap on
/// the shared pool per verify, and every 1 000 credits a top-up that commits), and one with
/// none left (every verify looks at the database and the slot lock before it answers
/// USAGE_EXCEEDED), beside an unlimited key.
fn verify_limited(c: &mut Criterion) {
    let fixture = Fixture::new(100_000);
    let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
    let limited = |remaining: u64| {
        let mut new = common::new_key(0);
        new.credits = Some(keyward::NewCredits {
            remaining,
            refill: None,
            cost: 1,
        });
        store
            .create(new)
            .expect("create a limited key")
            .key()
            .to_owned()
    };
    let large = limited(u64::from(u32::MAX));
    let exhausted = limited(0);
    let mut group = c.benchmark_group("verify_limited");
    group.throughput(Throughput::Elements(1));
    let cases: [(&str, &str, keyward::Reason); 3] = [
        (
            "unlimited_for_reference",
            &fixture.keys[0],
            keyward::Reason::Valid,
        ),
        ("large_balance", &large, keyward::Reason::Valid),
        ("exhausted", &exhausted, keyward::Reason::UsageExceeded),
    ];
    for (name, key, expected) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let reason = store.verify(key, SCOPES).expect("verify").reason;
                assert_eq!(reason, expected);
            })
        });
    }
    group.finish();
}

/// Verify hits while another thread flushes usage back to back, beside the same without.
fn verify_during_flush(c: &mut Criterion) {
    let fixture = Fixture::new(100_000);
    let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
    let mut group = c.benchmark_group("verify_during_flush");
    group.throughput(Throughput::Elements(1));
    let mut cycle = Cycle::new(&fixture.keys);
    group.bench_function("no_flush", |b| b.iter(|| accept(&store, cycle.next_key())));
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if store.flush().unwrap_or(0) == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        group.bench_function("flushing_back_to_back", |b| {
            b.iter(|| accept(&store, cycle.next_key()))
        });
        stop.store(true, Ordering::Relaxed);
    });
    group.finish();
}

/// Aggregate verify throughput of 1, 2 and 4 threads sharing one store: each thread on its
/// own scattered keys, or every thread on one hot key.
fn threads(c: &mut Criterion) {
    let fixture = Fixture::new(100_000);
    let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
    let mut group = c.benchmark_group("threads");
    group.throughput(Throughput::Elements(1));
    for hot in [false, true] {
        for n_threads in [1usize, 2, 4] {
            let name = if hot { "one_hot_key" } else { "spread_keys" };
            group.bench_function(BenchmarkId::new(name, n_threads), |b| {
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(n_threads as u64);
                    let barrier = Barrier::new(n_threads + 1);
                    std::thread::scope(|scope| {
                        for t in 0..n_threads {
                            let (store, keys, barrier) = (&store, &fixture.keys, &barrier);
                            scope.spawn(move || {
                                let slice = if hot {
                                    &keys[..1]
                                } else {
                                    &keys[t * 20_000..(t + 1) * 20_000]
                                };
                                let mut cycle = Cycle::new(slice);
                                barrier.wait();
                                for _ in 0..per_thread {
                                    black_box(accept(store, cycle.next_key()));
                                }
                            });
                        }
                        barrier.wait();
                        let begin = Instant::now();
                        // Scoped threads are joined when the scope ends.
                        begin
                    })
                    .elapsed()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    components,
    verify_hit,
    verify_refused,
    verify_limited,
    verify_during_flush,
    threads
);
criterion_main!(benches);
