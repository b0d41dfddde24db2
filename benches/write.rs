//! The write side: a durable create (one key, each mode) and a bulk create; the cost of a usage
//! flush at 1 / 100 / 1 k / 10 k pending keys, and of the steady flush of a busy server (11 300
//! random keys of 100 000, every key already with usage rows); and revoke → the time until
//! *another process* refuses the key.
//!
//! `cargo bench --bench write` (append `-- <filter>` to pick groups).
//!
//! For the revoke benchmark this executable starts a copy of itself as the watching process
//! (environment variable `KEYWARD_BENCH_WATCHER` = the store path): it spins verifying the key
//! it is given and reports the wall-clock time at which the verify first refuses it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use keyward::{Concurrency, Reason, Store};

use common::{Fixture, SCOPES, new_key};

/// Environment variable that turns this executable into the watching process.
const WATCHER_ENV: &str = "KEYWARD_BENCH_WATCHER";

/// A durable create (one transaction per key) in each mode, and 1 000 keys in one transaction.
fn create(c: &mut Criterion) {
    let mut group = c.benchmark_group("create");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for (name, concurrency) in [
        ("durable_one_multi", Concurrency::MultiProcess),
        ("durable_one_exclusive", Concurrency::SingleProcess),
    ] {
        let fixture = Fixture::new(1_000);
        let store = fixture.open(concurrency, Duration::ZERO);
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                store.create(new_key(i)).expect("create")
            })
        });
    }
    let fixture = Fixture::new(1_000);
    let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("bulk_1000_multi", |b| {
        b.iter(|| {
            store
                .create_many((0..1_000).map(new_key).collect())
                .expect("create_many")
        })
    });
    group.finish();
}

/// One flush of N keys' pending usage (N distinct keys each verified once, untimed, before).
fn flush(c: &mut Criterion) {
    let fixture = Fixture::new(10_000);
    let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
    let mut group = c.benchmark_group("flush_pending_keys");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for n in [1usize, 100, 1_000, 10_000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for key in &fixture.keys[..n] {
                        assert!(store.verify(key, SCOPES).expect("verify").is_valid());
                    }
                    let begin = Instant::now();
                    let written = store.flush().expect("flush");
                    total += begin.elapsed();
                    assert_eq!(written, n);
                }
                total
            })
        });
    }
    group.finish();
}

/// The flush a busy host's flusher makes every interval in `benches/http` (~12 k requests/s,
/// each with one of 100 000 keys): 11 300 keys drawn at random, verified once each (untimed),
/// then flushed; keys already have usage rows (eight flushes of warm-up), as on a server that
/// has been up for a while. Also 4 and 16 times as many draws per flush (a flush that waited
/// 4 or 16 intervals): what one request's count costs as flushes carry more requests.
fn flush_steady(c: &mut Criterion) {
    const KEYS: usize = 100_000;
    const PER_INTERVAL: usize = 11_300;
    let fixture = Fixture::new(KEYS);
    let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut verify_batch = |draws: usize| {
        for _ in 0..draws {
            state = common::xorshift(state);
            let key = &fixture.keys[(state % KEYS as u64) as usize];
            assert!(store.verify(key, SCOPES).expect("verify").is_valid());
        }
    };
    for _ in 0..8 {
        verify_batch(PER_INTERVAL);
        store.flush().expect("flush");
    }
    let mut group = c.benchmark_group("flush_steady_100k_keys");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for intervals in [1, 4, 16] {
        let draws = PER_INTERVAL * intervals;
        group.throughput(Throughput::Elements(draws as u64));
        let name = format!("{draws}_random_keys");
        group.bench_function(name.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    verify_batch(draws);
                    let begin = Instant::now();
                    store.flush().expect("flush");
                    total += begin.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// Revoke in this process → refused in another. Measured from the start of `revoke()` to the
/// first refusing verify in the watcher (wall clock, both processes on one host).
fn revoke_propagation(c: &mut Criterion) {
    let fixture = Fixture::new(1_000);
    let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
    let mut watcher = Command::new(std::env::current_exe().expect("own executable"))
        .env(WATCHER_ENV, &fixture.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the watcher process");
    let mut to_watcher = watcher.stdin.take().expect("watcher stdin");
    let mut from_watcher = BufReader::new(watcher.stdout.take().expect("watcher stdout"));
    let mut line = String::new();
    let mut read_line = |line: &mut String| {
        line.clear();
        from_watcher.read_line(line).expect("read from the watcher");
        assert!(!line.is_empty(), "the watcher exited");
    };
    read_line(&mut line);
    assert_eq!(line.trim(), "ready");

    let mut group = c.benchmark_group("revoke");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    let mut i = 0;
    group.bench_function("until_other_process_refuses", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                let created = store.create(new_key(i)).expect("create");
                writeln!(to_watcher, "{}", created.key()).expect("send the key");
                to_watcher.flush().expect("send the key");
                read_line(&mut line);
                assert_eq!(line.trim(), "armed");
                let start = unix_nanos();
                store.revoke(created.id(), None).expect("revoke");
                read_line(&mut line);
                let refused_at: u128 = line.trim().parse().expect("a time from the watcher");
                total += Duration::from_nanos(refused_at.saturating_sub(start) as u64);
            }
            total
        })
    });
    group.bench_function("revoke_call_alone", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                let created = store.create(new_key(i)).expect("create");
                let begin = Instant::now();
                store.revoke(created.id(), None).expect("revoke");
                total += begin.elapsed();
            }
            total
        })
    });
    group.finish();
    drop(to_watcher);
    let _ = watcher.wait();
}

/// The watching process: for each key read from stdin, verify until it is accepted (creation
/// must be visible at once), say `armed`, then verify until it is refused and print the time.
fn watch(path: &str) {
    let store = Store::open(
        path,
        common::options(Concurrency::MultiProcess, Duration::ZERO),
    )
    .expect("open the store");
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")
        .and_then(|()| out.flush())
        .expect("stdout");
    for key in std::io::stdin().lock().lines() {
        let key = key.expect("stdin");
        while !store.verify(&key, SCOPES).expect("verify").is_valid() {}
        writeln!(out, "armed")
            .and_then(|()| out.flush())
            .expect("stdout");
        loop {
            let verdict = store.verify(&key, SCOPES).expect("verify");
            if verdict.reason == Reason::Revoked {
                break;
            }
        }
        let at = unix_nanos();
        writeln!(out, "{at}")
            .and_then(|()| out.flush())
            .expect("stdout");
    }
}

criterion_group!(benches, create, flush, flush_steady, revoke_propagation);

fn main() {
    if let Some(path) = std::env::var_os(WATCHER_ENV) {
        watch(path.to_str().expect("UTF-8 store path"));
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
