//! Three simulated hosts on one PostgreSQL, each with its own store and its own
//! `keyward replicate` process (feature `postgres`; scripts/test-postgres.sh runs this).
//! The workers of each host are threads of this process verifying against that host's store.
//!
//! - `revokes_reach_every_host`: N keys revoked one by one on host 0 while every host
//!   verifies in a loop; each revoke is refused on hosts 1 and 2 (latencies printed with the
//!   load: `KEYWARD_PG_REVOKES=1000` for the benchmark in BENCHMARKS.md; 100 by default).
//! - `postgres_outage_under_load`: PostgreSQL killed for `KEYWARD_PG_OUTAGE_SECS` (3 by
//!   default; 30 for the long run) while every host verifies: no verify of an unchanged key
//!   fails, management fails with exit 7 / UPSTREAM_UNAVAILABLE, `keyward status` reports the
//!   staleness; every change made before and after is applied on every host; a host whose
//!   replicator was down while the log was pruned resynchronises.
//! - `usage_and_credits_across_host_processes`: usage pushed by each host's replicator process
//!   sums exactly upstream, pushes repeated; credits leased to the three hosts are never
//!   over-spent and all of them can be spent.

#[path = "common/pg.rs"]
mod pg;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyward::upstream::Upstream;
use keyward::{ErrorCode, NewCredits, NewKey, Pepper, PepperSource, Reason, Store, StoreOptions};
use pg::PgServer;

const HOSTS: usize = 3;

struct Cluster {
    _dir: tempfile::TempDir,
    pepper: PathBuf,
    dbs: Vec<PathBuf>,
    stores: Vec<Store>,
    replicators: Vec<Option<Child>>,
    url: String,
}

impl Cluster {
    fn new(pg: &PgServer) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let pepper = dir.path().join("shared.pepper");
        Pepper::create_file(&pepper).unwrap();
        let mut dbs = Vec::new();
        let mut stores = Vec::new();
        for i in 0..HOSTS {
            std::fs::create_dir(dir.path().join(format!("host{i}"))).unwrap();
            let db = dir.path().join(format!("host{i}/keys.redb"));
            stores.push(
                Store::open(
                    &db,
                    StoreOptions {
                        pepper: PepperSource::File(pepper.clone()),
                        ..StoreOptions::default()
                    },
                )
                .unwrap(),
            );
            dbs.push(db);
        }
        let mut cluster = Cluster {
            _dir: dir,
            pepper,
            dbs,
            stores,
            replicators: (0..HOSTS).map(|_| None).collect(),
            url: pg.url.clone(),
        };
        let out = cluster.cli(0, &["upstream", "init"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for i in 0..HOSTS {
            cluster.start_replicator(i);
        }
        cluster
    }

    fn command(&self, host: usize) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyward"));
        cmd.arg("--db")
            .arg(&self.dbs[host])
            .arg("--pepper-file")
            .arg(&self.pepper)
            .env("KEYWARD_UPSTREAM", &self.url)
            .stdin(Stdio::null());
        cmd
    }

    fn cli(&self, host: usize, args: &[&str]) -> std::process::Output {
        self.command(host).args(args).output().unwrap()
    }

    fn start_replicator(&mut self, host: usize) {
        let child = self
            .command(host)
            .args([
                "replicate",
                "--host",
                &format!("host{host}"),
                "--poll",
                "1s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.replicators[host] = Some(child);
    }

    fn stop_replicator(&mut self, host: usize) {
        if let Some(mut child) = self.replicators[host].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `keyward status --json` of a host.
    fn status(&self, host: usize) -> serde_json::Value {
        let out = self.cli(host, &["status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn wait_all_at(&self, head: u64, secs: u64) {
        for host in 0..HOSTS {
            wait_until(secs, &format!("host{host} at {head}"), || {
                self.status(host)["cursor"].as_u64() == Some(head)
            });
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for host in 0..HOSTS {
            self.stop_replicator(host);
        }
    }
}

fn wait_until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn new_key(owner: &str) -> NewKey {
    NewKey {
        owner: owner.into(),
        name: "k".into(),
        ..NewKey::default()
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verifier threads, one per host, verifying `keys` in a loop until stopped. Each counts its
/// verifies and the verdicts that broke `expect` (key index → the reasons allowed now).
struct Load {
    stop: Arc<AtomicBool>,
    verifies: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(stores: &[Store], keys: Vec<String>, stable: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let verifies = Arc::new(AtomicU64::new(0));
        let threads = stores
            .iter()
            .enumerate()
            .map(|(host, store)| {
                let (store, keys) = (store.clone(), keys.clone());
                let (stop, verifies) = (stop.clone(), verifies.clone());
                std::thread::spawn(move || {
                    let mut broken = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        for (i, key) in keys.iter().enumerate() {
                            let verdict = store.verify(key, &[]);
                            verifies.fetch_add(1, Ordering::Relaxed);
                            match verdict {
                                // The first `stable` keys never change: always valid.
                                Ok(v) if i < stable && v.reason != Reason::Valid => {
                                    broken.push(format!("host{host} key {i}: {:?}", v.reason))
                                }
                                Ok(_) => {}
                                Err(e) => broken.push(format!("host{host} key {i}: error {e}")),
                            }
                        }
                    }
                    broken
                })
            })
            .collect();
        Load {
            stop,
            verifies,
            threads,
        }
    }

    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let broken = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        (self.verifies.load(Ordering::Relaxed), broken)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[test]
fn revokes_reach_every_host() {
    let revokes = env_u64("KEYWARD_PG_REVOKES", 100) as usize;
    let pg = PgServer::start();
    let cluster = Cluster::new(&pg);
    let up = Upstream::connect(&cluster.stores[0], &pg.url).unwrap();
    let keys: Vec<_> = (0..revokes)
        .map(|i| up.create(new_key(&format!("acct_{}", i % 50))).unwrap())
        .collect();
    cluster.wait_all_at(up.head().unwrap(), 60);
    for store in &cluster.stores {
        for k in &keys {
            assert_eq!(store.verify(k.key(), &[]).unwrap().reason, Reason::Valid);
        }
    }
    let load = Load::start(
        &cluster.stores,
        keys.iter().map(|k| k.key().to_owned()).collect(),
        0,
    );
    let mut latencies = Vec::with_capacity(2 * revokes);
    for k in &keys {
        let started = Instant::now();
        up.revoke(k.id(), None).unwrap();
        for store in &cluster.stores[1..] {
            wait_until(30, "a revoke to reach the other hosts", || {
                store.verify(k.key(), &[]).unwrap().reason == Reason::Revoked
            });
            latencies.push(started.elapsed());
        }
    }
    let (verifies, broken) = load.finish();
    assert!(broken.is_empty(), "{broken:?}");
    assert!(verifies > 0);
    latencies.sort();
    println!(
        "revoke on host0 -> refused on hosts 1 and 2: {} revokes, p50 {:?}, p99 {:?}, max {:?}; {} verifies meanwhile; load {}",
        revokes,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
        verifies,
        load_average()
    );
}

#[test]
fn postgres_outage_under_load() {
    let outage = Duration::from_secs(env_u64("KEYWARD_PG_OUTAGE_SECS", 3));
    let pg = PgServer::start();
    let mut cluster = Cluster::new(&pg);
    let up = Upstream::connect(&cluster.stores[0], &pg.url).unwrap();
    let stable: Vec<_> = (0..10)
        .map(|i| up.create(new_key(&format!("stable_{i}"))).unwrap())
        .collect();
    let changing: Vec<_> = (0..12)
        .map(|i| up.create(new_key(&format!("changing_{i}"))).unwrap())
        .collect();
    cluster.wait_all_at(up.head().unwrap(), 60);
    let all: Vec<String> = stable
        .iter()
        .chain(&changing)
        .map(|k| k.key().to_owned())
        .collect();
    let load = Load::start(&cluster.stores, all, stable.len());

    // Changes just before the outage (acknowledged, maybe not yet replicated).
    for k in &changing[0..3] {
        up.revoke(k.id(), None).unwrap();
    }
    pg.kill();
    let started = Instant::now();
    let err = up.revoke(changing[3].id(), None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UpstreamUnavailable);
    let out = cluster.cli(1, &["upstream", "revoke", changing[3].id()]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(30, "host1 to report the outage", || {
        cluster.status(1)["connected"] == false
    });
    while started.elapsed() < outage {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = cluster.status(1);
    let stale = status["staleness_ms"].as_u64().unwrap();
    assert!(
        stale >= outage.as_millis() as u64 / 2,
        "staleness {stale} ms after {outage:?} down: {status}"
    );
    assert!(status["last_error"].is_string());
    let text = String::from_utf8(cluster.cli(2, &["status"]).stdout).unwrap();
    assert!(text.contains("NOT connected"), "{text}");
    println!("host1 during an outage of {outage:?}: {status}");

    pg.restart();
    // Host 2's replicator is down while the log is pruned: it must resynchronise.
    cluster.stop_replicator(2);
    for k in &changing[3..6] {
        up.revoke(k.id(), None).unwrap();
    }
    up.delete(changing[6].id()).unwrap();
    let fresh = up.create(new_key("after_the_outage")).unwrap();
    up.prune_changes(0).unwrap();
    up.revoke(changing[7].id(), None).unwrap();
    cluster.start_replicator(2);
    cluster.wait_all_at(up.head().unwrap(), 60);
    let (verifies, broken) = load.finish();
    assert!(
        broken.is_empty(),
        "verifies of unchanged keys failed: {broken:?}"
    );
    assert!(verifies > 0);
    assert!(cluster.status(2)["resyncs"].as_u64().unwrap() >= 1);
    let upstream_keys = cluster.stores[0].all_keys().unwrap();
    for (host, store) in cluster.stores.iter().enumerate() {
        assert_eq!(store.all_keys().unwrap(), upstream_keys, "host{host}");
        for k in &changing[0..6] {
            assert_eq!(store.verify(k.key(), &[]).unwrap().reason, Reason::Revoked);
        }
        assert_eq!(
            store.verify(changing[6].key(), &[]).unwrap().reason,
            Reason::NotFound
        );
        assert_eq!(
            store.verify(changing[7].key(), &[]).unwrap().reason,
            Reason::Revoked
        );
        assert_eq!(
            store.verify(fresh.key(), &[]).unwrap().reason,
            Reason::Valid
        );
    }
    println!(
        "outage {outage:?}: {verifies} verifies on 3 hosts, 0 failed; load {}",
        load_average()
    );
}

/// Usage and credits across three host processes: each host's own `keyward replicate`
/// pushes its usage as absolute counts (pushed again by extra `--once` runs and by a
/// restarted replicator: the upstream sums stay exact) and leases credits for the verifies
/// of its store; however the hosts race, no more credits are accepted than the key had.
#[test]
fn usage_and_credits_across_host_processes() {
    const CREDITS: u64 = 300;
    let pg = PgServer::start();
    let mut cluster = Cluster::new(&pg);
    let up = Upstream::connect(&cluster.stores[0], &pg.url).unwrap();
    let counted = up.create(new_key("acct_counted")).unwrap();
    let limited = up
        .create(NewKey {
            credits: Some(NewCredits {
                remaining: CREDITS,
                refill: None,
                cost: 1,
            }),
            ..new_key("acct_limited")
        })
        .unwrap();
    cluster.wait_all_at(up.head().unwrap(), 60);

    // Usage: a different number of verifies on each host.
    let per_host = [400u64, 700, 1000];
    for (store, n) in cluster.stores.iter().zip(per_host) {
        for _ in 0..n {
            assert!(store.verify(counted.key(), &[]).unwrap().is_valid());
        }
        store.flush().unwrap();
    }
    let upstream_uses = || {
        pg.psql(&format!(
            "SELECT coalesce(sum(uses), 0) FROM keyward_usage WHERE key_id = '{}'",
            counted.id()
        ))
        .parse::<u64>()
        .unwrap()
    };
    // A replicator killed and started again pushes its counts again.
    cluster.stop_replicator(1);
    cluster.start_replicator(1);
    let total: u64 = per_host.iter().sum();
    wait_until(60, "the hosts' usage upstream", || upstream_uses() == total);
    for host in 0..HOSTS {
        // Each run pushes the host's absolute counts once more (a retry).
        let out = cluster.cli(
            host,
            &["replicate", "--once", "--host", &format!("host{host}")],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(upstream_uses(), total, "pushes repeated: still exact");

    // Credits: every host spends from what its replicator leases, round robin, until the
    // key's credits are all spent and then for a few more lease cycles.
    let mut accepted = [0u64; HOSTS];
    let mut refused = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut spent_at = None;
    while Instant::now() < deadline {
        for (host, store) in cluster.stores.iter().enumerate() {
            match store.verify(limited.key(), &[]).unwrap().reason {
                Reason::Valid => accepted[host] += 1,
                Reason::UsageExceeded => refused += 1,
                other => panic!("host{host}: {other:?}"),
            }
        }
        let sum: u64 = accepted.iter().sum();
        assert!(sum <= CREDITS, "over-spent: {accepted:?}");
        if sum == CREDITS && spent_at.is_none() {
            spent_at = Some(Instant::now());
        }
        // Three more seconds of trying (three poll cycles of every replicator) after the
        // last credit went.
        if spent_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
    }
    let sum: u64 = accepted.iter().sum();
    assert_eq!(sum, CREDITS, "every credit spendable: {accepted:?}");
    assert!(
        accepted.iter().filter(|&&n| n > 0).count() >= 2,
        "the credits were spread over hosts: {accepted:?}"
    );
    assert!(
        refused > 0,
        "the hosts kept trying after the credits were gone"
    );
    println!(
        "credits {CREDITS}: accepted per host {accepted:?}, {refused} refused; usage {total} upstream"
    );
}
