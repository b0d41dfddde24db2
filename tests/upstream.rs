//! PostgreSQL as the source of truth (feature `postgres`), against a real server that each test
//! starts in a temporary directory (tests/common/pg.rs; scripts/test-postgres.sh runs this).
//!
//! Hosts are simulated by separate local stores in this process; the three-process runs (one
//! `keyward replicate` daemon per host) are in tests/replicate_cmd.rs.

#[path = "common/pg.rs"]
mod pg;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keyward::upstream::{ReplicaStatus, Replicator, ReplicatorOptions, Upstream};
use keyward::{
    Clock, ErrorCode, ErrorFamily, KeyUpdate, NewCredits, NewKey, Pepper, PepperSource, Reason,
    Store, StoreOptions, SystemClock,
};
use pg::PgServer;

/// One simulated host: its own local store.
struct Host {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
}

fn host_with_pepper(byte: u8) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let store = Store::open_unshared(
        &path,
        StoreOptions {
            pepper: PepperSource::Bytes(Pepper::from_bytes(&[byte; 32]).unwrap()),
            flush_interval: Duration::ZERO,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    Host {
        _dir: dir,
        path,
        store,
    }
}

fn host() -> Host {
    host_with_pepper(42)
}

fn options(name: &str) -> ReplicatorOptions {
    ReplicatorOptions {
        host: name.into(),
        poll_interval: Duration::from_millis(100),
        reconnect_delay: Duration::from_millis(100),
        usage_interval: Duration::ZERO,
        lease_batch: 40,
        lease_ttl: Duration::from_secs(60),
    }
}

fn new_key(owner: &str, scopes: &[&str]) -> NewKey {
    NewKey {
        owner: owner.into(),
        name: format!("key of {owner}"),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        env: Some("live".into()),
        ..NewKey::default()
    }
}

fn reason(store: &Store, key: &str) -> Reason {
    store.verify(key, &[]).unwrap().reason
}

/// Polls `check` until it holds or `secs` pass.
fn wait_until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_kind_of_change_made_on_one_host_reaches_another() {
    let pg = PgServer::start();
    let (a, b) = (host(), host());
    let up = Upstream::connect(&a.store, &pg.url).unwrap();
    let rb = Replicator::new(&b.store, &pg.url, options("b"));

    let k = up.create(new_key("acct_1", &["read"])).unwrap();
    // The writing host has it as soon as the call returns; the other one after a sync.
    assert_eq!(reason(&a.store, k.key()), Reason::Valid);
    assert_eq!(reason(&b.store, k.key()), Reason::NotFound);
    // A fresh replica starts from a snapshot.
    let report = rb.sync_once().unwrap();
    assert!(report.resynced);
    assert_eq!(reason(&b.store, k.key()), Reason::Valid);
    assert_eq!(b.store.get(k.id()).unwrap(), a.store.get(k.id()).unwrap());
    assert_eq!(
        b.store.get(k.id()).unwrap().serial,
        1,
        "serial = upstream sequence"
    );

    up.update(
        k.id(),
        KeyUpdate {
            scopes: Some(vec!["write".into()]),
            ..KeyUpdate::default()
        },
    )
    .unwrap();
    rb.sync_once().unwrap();
    assert_eq!(
        b.store.verify(k.key(), &["read"]).unwrap().reason,
        Reason::InsufficientScope
    );
    assert!(b.store.verify(k.key(), &["write"]).unwrap().is_valid());

    let rotated = up.rotate(k.id(), Duration::from_secs(3600)).unwrap();
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, rotated.key()), Reason::Valid);
    assert_eq!(
        reason(&b.store, k.key()),
        Reason::Valid,
        "old key in its grace period"
    );
    assert_eq!(
        b.store.get(k.id()).unwrap().rotated_to.as_deref(),
        Some(rotated.id())
    );

    up.revoke(rotated.id(), Some("leaked")).unwrap();
    assert_eq!(reason(&a.store, rotated.key()), Reason::Revoked);
    assert_eq!(
        reason(&b.store, rotated.key()),
        Reason::Valid,
        "not synced yet"
    );
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, rotated.key()), Reason::Revoked);

    up.delete(k.id()).unwrap();
    let report = rb.sync_once().unwrap();
    assert_eq!(report.applied, 1);
    assert_eq!(reason(&b.store, k.key()), Reason::NotFound);
    assert_eq!(b.store.get(k.id()).unwrap_err().code(), ErrorCode::NotFound);
    // Both hosts now hold what the upstream holds, and the cursor is its head.
    assert_eq!(report.cursor, up.head().unwrap());
    assert_eq!(a.store.all_keys().unwrap(), b.store.all_keys().unwrap());
    // One audit event per change (create, update, rotate ×2, revoke, delete).
    assert_eq!(pg.psql("SELECT count(*) FROM keyward_audit"), "6");
    // A sync with nothing new applies nothing.
    assert_eq!(rb.sync_once().unwrap().applied, 0);
}

#[test]
fn a_host_with_another_pepper_or_a_newer_schema_is_refused() {
    let pg = PgServer::start();
    let a = host();
    Upstream::connect(&a.store, &pg.url).unwrap();
    let other = host_with_pepper(7);
    let err = Upstream::connect(&other.store, &pg.url).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongPepper);
    let err = Replicator::new(&other.store, &pg.url, options("x"))
        .sync_once()
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongPepper);

    pg.psql("UPDATE keyward_schema SET version = 99");
    let err = Upstream::connect(&a.store, &pg.url).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UpstreamSchema);
    assert_eq!(err.code().family(), ErrorFamily::Upstream);
    let err = Replicator::new(&a.store, &pg.url, options("a"))
        .sync_once()
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UpstreamSchema);

    // A bad URL is the caller's error, not an outage.
    let err = Upstream::connect(&a.store, "postgresql://[bad").unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}

#[test]
fn a_replica_behind_a_pruned_log_resynchronises_from_a_snapshot() {
    let pg = PgServer::start();
    let (a, b) = (host(), host());
    let up = Upstream::connect(&a.store, &pg.url).unwrap();
    let rb = Replicator::new(&b.store, &pg.url, options("b"));
    // A key only this store has (made before it became a replica): the snapshot removes it.
    let stray = b.store.create(new_key("acct_9", &[])).unwrap();
    let k1 = up.create(new_key("acct_1", &[])).unwrap();
    let k2 = up.create(new_key("acct_1", &[])).unwrap();
    rb.sync_once().unwrap();
    // Once a replica, the store refuses changes made to it alone.
    let err = b.store.create(new_key("acct_9", &[])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UpstreamRequired);
    assert_eq!(err.code().family(), ErrorFamily::Upstream);
    assert_eq!(
        b.store.revoke(k1.id(), None).unwrap_err().code(),
        ErrorCode::UpstreamRequired
    );
    assert_eq!(
        a.store.delete(k1.id()).unwrap_err().code(),
        ErrorCode::UpstreamRequired,
        "the writing host's store too"
    );

    up.revoke(k1.id(), None).unwrap();
    up.delete(k2.id()).unwrap();
    let k3 = up.create(new_key("acct_2", &[])).unwrap();
    let through = up.prune_changes(0).unwrap();
    assert_eq!(through, up.head().unwrap());
    assert_eq!(pg.psql("SELECT count(*) FROM keyward_changes"), "0");

    let report = rb.sync_once().unwrap();
    assert!(report.resynced, "{report:?}");
    assert_eq!(report.cursor, through);
    assert_eq!(reason(&b.store, k1.key()), Reason::Revoked);
    assert_eq!(reason(&b.store, k2.key()), Reason::NotFound);
    assert_eq!(reason(&b.store, k3.key()), Reason::Valid);
    assert_eq!(reason(&b.store, stray.key()), Reason::NotFound);
    assert_eq!(a.store.all_keys().unwrap(), b.store.all_keys().unwrap());
    assert_eq!(rb.status().resyncs, 2, "the first sync and this one");

    // The log goes on from there.
    up.revoke(k3.id(), None).unwrap();
    let report = rb.sync_once().unwrap();
    assert_eq!((report.applied, report.resynced), (1, false));
    assert_eq!(reason(&b.store, k3.key()), Reason::Revoked);

    // An upstream restored from a backup that lost the last commit (the revoke of k3) hands
    // its sequence number out again.
    let lost = up.head().unwrap();
    pg.psql(&format!(
        r#"BEGIN;
        DELETE FROM keyward_changes WHERE seq = {lost};
        DELETE FROM keyward_audit WHERE seq = {lost};
        UPDATE keyward_counter SET seq = {lost} - 1;
        UPDATE keyward_keys SET record = regexp_replace(record, '"revoked_at":[0-9]+', '"revoked_at":null')
            WHERE id = '{}';
        COMMIT;"#,
        k3.id()
    ));
    let k4 = up.create(new_key("acct_3", &[])).unwrap();
    assert_eq!(
        up.head().unwrap(),
        lost,
        "the sequence was handed out again"
    );
    // The replica cannot tell: its cursor is the head.
    assert_eq!(rb.sync_once().unwrap().applied, 0);
    assert_eq!(reason(&b.store, k4.key()), Reason::NotFound);
    // A new epoch (`keyward upstream new-epoch`) makes every replica resynchronise.
    up.new_epoch().unwrap();
    let report = rb.sync_once().unwrap();
    assert!(report.resynced, "{report:?}");
    assert_eq!(rb.status().resyncs, 3);
    assert_eq!(reason(&b.store, k4.key()), Reason::Valid);
    assert_eq!(
        reason(&b.store, k3.key()),
        Reason::Valid,
        "as the restored upstream says"
    );
    // (Host a applied its own writes and runs no replicator here: it still holds the lost
    // revoke, which its replicator's resynchronisation would undo the same way.)
}

#[test]
fn usage_counts_sum_exactly_upstream_after_retried_pushes() {
    let pg = PgServer::start();
    let hosts = [host(), host(), host()];
    let up = Upstream::connect(&hosts[0].store, &pg.url).unwrap();
    let k = up.create(new_key("acct_1", &[])).unwrap();
    let replicators: Vec<Replicator> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Replicator::new(&h.store, &pg.url, options(&format!("host{i}"))))
        .collect();
    let uses = [137u64, 250, 613];
    for round in 0..2 {
        for ((h, r), n) in hosts.iter().zip(&replicators).zip(uses) {
            r.sync_once().unwrap();
            for _ in 0..n {
                assert_eq!(reason(&h.store, k.key()), Reason::Valid);
            }
            h.store.flush().unwrap();
            // Pushed, then pushed again as a retry would: the counts do not double.
            assert_eq!(r.sync_once().unwrap().usage_rows, 1);
            r.sync_once().unwrap();
        }
        let total: u64 = uses.iter().sum::<u64>() * (round + 1);
        let sql = format!(
            "SELECT sum(uses) FROM keyward_usage WHERE key_id = '{}'",
            k.id()
        );
        assert_eq!(pg.psql(&sql), total.to_string(), "round {round}");
        let per_host = pg.psql(&format!(
            "SELECT string_agg(uses::text, ',' ORDER BY host) FROM keyward_usage WHERE key_id = '{}'",
            k.id()
        ));
        let expected: Vec<String> = uses.iter().map(|n| (n * (round + 1)).to_string()).collect();
        assert_eq!(per_host, expected.join(","));
    }
}

#[test]
fn credits_leased_to_three_hosts_are_never_over_spent() {
    let pg = PgServer::start();
    let hosts = [host(), host(), host()];
    let up = Upstream::connect(&hosts[0].store, &pg.url).unwrap();
    let total = 250u64;
    let mut new = new_key("acct_1", &[]);
    new.credits = Some(NewCredits {
        remaining: total,
        refill: None,
        cost: 1,
    });
    let k = up.create(new).unwrap();
    // The writing host holds no credits until its replicator leases some.
    assert_eq!(reason(&hosts[0].store, k.key()), Reason::UsageExceeded);
    let replicators: Vec<Replicator> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Replicator::new(&h.store, &pg.url, options(&format!("host{i}"))))
        .collect();
    let mut valid = [0u64; 3];
    let mut refused = [0u64; 3];
    for _round in 0..200 {
        for (i, (h, r)) in hosts.iter().zip(&replicators).enumerate() {
            r.sync_once().unwrap();
            for _ in 0..25 {
                match reason(&h.store, k.key()) {
                    Reason::Valid => valid[i] += 1,
                    Reason::UsageExceeded => refused[i] += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        if pg.psql(&format!(
            "SELECT remaining FROM keyward_credits WHERE key_id = '{}'",
            k.id()
        )) == "0"
            && refused.iter().all(|&n| n > 0)
            && valid.iter().sum::<u64>() == total
        {
            break;
        }
    }
    assert_eq!(valid.iter().sum::<u64>(), total, "valid per host {valid:?}");
    assert!(
        valid.iter().all(|&n| n > 0),
        "every host spent some: {valid:?}"
    );
    assert_eq!(
        pg.psql(&format!(
            "SELECT sum(leased) FROM keyward_credit_leases WHERE key_id = '{}'",
            k.id()
        )),
        total.to_string()
    );
    // A host whose lease is not renewed is taken for dead: its lease expires and what it
    // was leased is written off (it may have spent it), never handed out again.
    let held_by_2 = pg.psql(&format!(
        "SELECT leased FROM keyward_credit_leases WHERE key_id = '{}' AND host = 'host2'",
        k.id()
    ));
    assert!(held_by_2.parse::<u64>().unwrap() >= valid[2]);
    pg.psql(
        "UPDATE keyward_credit_leases SET expires_at = now() - interval '1 second' WHERE host = 'host2'",
    );
    replicators[0].sync_once().unwrap();
    assert_eq!(
        pg.psql(&format!(
            "SELECT remaining || '/' || forfeited FROM keyward_credits WHERE key_id = '{}'",
            k.id()
        )),
        format!("0/{held_by_2}")
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM keyward_credit_leases WHERE host = 'host2'"),
        "0"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM keyward_credit_leases WHERE host <> 'host2'"),
        "2",
        "the live hosts' leases were renewed, not expired"
    );
}

#[test]
fn with_postgres_down_verifies_go_on_management_fails_and_catch_up_follows() {
    let outage = Duration::from_secs(
        std::env::var("KEYWARD_PG_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2),
    );
    let pg = PgServer::start();
    let (a, b) = (host(), host());
    let up = Upstream::connect(&a.store, &pg.url).unwrap();
    let keys: Vec<_> = (0..6)
        .map(|i| up.create(new_key(&format!("acct_{i}"), &[])).unwrap())
        .collect();
    let replicator = Arc::new(Replicator::new(&b.store, &pg.url, options("b")));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (replicator, stop) = (replicator.clone(), stop.clone());
        std::thread::spawn(move || replicator.run(&stop))
    };
    let head = up.head().unwrap();
    wait_until(30, "the replica to catch up", || {
        replicator.status().cursor == head
    });
    // A change just before the outage.
    up.revoke(keys[0].id(), None).unwrap();
    wait_until(30, "the revoke to reach b", || {
        reason(&b.store, keys[0].key()) == Reason::Revoked
    });

    pg.kill();
    let started = Instant::now();
    let mut verifies = 0u64;
    let mut management_refused = 0u64;
    while started.elapsed() < outage {
        assert_eq!(reason(&b.store, keys[0].key()), Reason::Revoked);
        for k in &keys[1..] {
            assert_eq!(reason(&b.store, k.key()), Reason::Valid);
            verifies += 1;
        }
        if management_refused < 3 {
            let err = up.revoke(keys[1].id(), None).unwrap_err();
            assert_eq!(err.code(), ErrorCode::UpstreamUnavailable, "{err}");
            assert_eq!(err.code().family(), ErrorFamily::Upstream);
            assert_eq!(err.code() as u32, 70);
            management_refused += 1;
        }
    }
    assert!(verifies > 0 && management_refused == 3);
    wait_until(30, "the replicator to notice the outage", || {
        !replicator.status().connected
    });
    let status = ReplicaStatus::read(&b.path).unwrap().unwrap();
    assert!(!status.connected);
    assert!(status.last_error.is_some());
    let stale = status.staleness_ms(SystemClock.now()).unwrap();
    assert!(
        stale >= outage.as_millis() as u64 / 2,
        "staleness {stale} ms after an outage of {outage:?}"
    );
    // Nothing was changed upstream by the refused calls.
    assert_eq!(reason(&a.store, keys[1].key()), Reason::Valid);

    pg.restart();
    // Changes after the restart, in order: revoke, then delete, then a new key.
    up.revoke(keys[1].id(), None).unwrap();
    up.delete(keys[2].id()).unwrap();
    let fresh = up.create(new_key("acct_new", &[])).unwrap();
    let head = up.head().unwrap();
    wait_until(30, "b to catch up after the restart", || {
        replicator.status().cursor == head
    });
    assert_eq!(reason(&b.store, keys[1].key()), Reason::Revoked);
    assert_eq!(reason(&b.store, keys[2].key()), Reason::NotFound);
    assert_eq!(reason(&b.store, fresh.key()), Reason::Valid);
    assert_eq!(a.store.all_keys().unwrap(), b.store.all_keys().unwrap());
    let status = replicator.status();
    assert!(status.connected);
    assert!(status.staleness_ms(SystemClock.now()).unwrap() < stale);
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
}
