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
    Clock, ErrorCode, ErrorFamily, KeyUpdate, LegacyImportOptions, LegacyScheme, ManualClock,
    NewCredits, NewKey, Pepper, PepperSource, RateLimit, Reason, Refill, RefillInterval, Store,
    StoreOptions, SystemClock, Timestamp, legacy_key_id,
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

/// A host whose store reads `clock` (several hosts may share one: their clocks agree).
fn host_with_clock(clock: &Arc<ManualClock>) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let store = Store::open_unshared(
        &path,
        StoreOptions {
            pepper: PepperSource::Bytes(Pepper::from_bytes(&[42; 32]).unwrap()),
            flush_interval: Duration::ZERO,
            clock: clock.clone(),
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

#[test]
fn owners_and_rate_limits_set_upstream_reach_every_host_and_replicas_refuse_them_locally() {
    let pg = PgServer::start();
    let (a, b) = (host(), host());
    let up = Upstream::connect(&a.store, &pg.url).unwrap();
    let rb = Replicator::new(&b.store, &pg.url, options("b"));
    let k = up.create(new_key("acct_1", &["read", "write"])).unwrap();
    let other = up.create(new_key("acct_2", &[])).unwrap();
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, k.key()), Reason::Valid);

    // Suspension: refused on the writing host at once, on b after its sync.
    let info = up.suspend_owner("acct_1", Some("unpaid")).unwrap();
    assert!(info.is_suspended());
    assert_eq!(info.keys, 1);
    assert_eq!(reason(&a.store, k.key()), Reason::OwnerSuspended);
    assert_eq!(reason(&b.store, k.key()), Reason::Valid, "not synced yet");
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, k.key()), Reason::OwnerSuspended);
    assert_eq!(reason(&b.store, other.key()), Reason::Valid);
    assert_eq!(
        b.store.owner("acct_1").unwrap(),
        a.store.owner("acct_1").unwrap()
    );
    // Suspending again changes nothing (no change-log entry).
    let head = up.head().unwrap();
    up.suspend_owner("acct_1", Some("again")).unwrap();
    assert_eq!(up.head().unwrap(), head);
    up.resume_owner("acct_1").unwrap();
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, k.key()), Reason::Valid);
    assert_eq!(
        up.resume_owner("acct_nobody").unwrap_err().code(),
        ErrorCode::OwnerNotFound
    );

    // Allowed scopes narrow the key's effective scopes on every host.
    up.set_owner_scopes("acct_1", Some(&["read"])).unwrap();
    rb.sync_once().unwrap();
    for store in [&a.store, &b.store] {
        assert!(store.verify(k.key(), &["read"]).unwrap().is_valid());
        assert_eq!(
            store.verify(k.key(), &["write"]).unwrap().reason,
            Reason::InsufficientScope
        );
    }

    // An owner's shared rate limit: the settings replicate, the state stays per host, so
    // each host lets `burst` through on its own.
    let limit = RateLimit::new(2, 3_600_000, 2).unwrap();
    up.set_owner_rate_limit("acct_1", Some(limit)).unwrap();
    rb.sync_once().unwrap();
    for store in [&a.store, &b.store] {
        assert_eq!(store.owner_rate_limit("acct_1").unwrap(), Some(limit));
        assert!(store.verify(k.key(), &[]).unwrap().is_valid());
        assert!(store.verify(k.key(), &[]).unwrap().is_valid());
        assert_eq!(reason(store, k.key()), Reason::RateLimited);
        assert_eq!(reason(store, other.key()), Reason::Valid, "another owner");
    }
    up.set_owner_rate_limit("acct_1", None).unwrap();
    rb.sync_once().unwrap();
    assert_eq!(b.store.owner_rate_limit("acct_1").unwrap(), None);
    assert_eq!(reason(&b.store, k.key()), Reason::Valid);

    // A key's own limit, at creation and changed later.
    let mut limited = new_key("acct_3", &[]);
    limited.rate_limit = Some(RateLimit::new(1, 3_600_000, 1).unwrap());
    let l = up.create(limited).unwrap();
    rb.sync_once().unwrap();
    for store in [&a.store, &b.store] {
        assert_eq!(reason(store, l.key()), Reason::Valid);
        assert_eq!(reason(store, l.key()), Reason::RateLimited);
    }
    let info = up.set_rate_limit(l.id(), None).unwrap();
    assert_eq!(info.rate_limit, None);
    rb.sync_once().unwrap();
    assert_eq!(b.store.get(l.id()).unwrap().rate_limit, None);
    assert_eq!(reason(&b.store, l.key()), Reason::Valid);

    // A replica refuses these calls made to it alone, in every form.
    for store in [&a.store, &b.store] {
        let refused = [
            store.suspend_owner("acct_2", None).unwrap_err().code(),
            store.resume_owner("acct_1").unwrap_err().code(),
            store
                .set_owner_scopes::<&str>("acct_2", None)
                .unwrap_err()
                .code(),
            store
                .set_owner_rate_limit("acct_2", Some(limit))
                .unwrap_err()
                .code(),
            store
                .update(
                    k.id(),
                    KeyUpdate {
                        rate_limit: Some(Some(limit)),
                        ..KeyUpdate::default()
                    },
                )
                .unwrap_err()
                .code(),
            store
                .import_legacy(LegacyScheme::Unkey, b"", &LegacyImportOptions::default())
                .unwrap_err()
                .code(),
        ];
        assert!(
            refused.iter().all(|&c| c == ErrorCode::UpstreamRequired),
            "{refused:?}"
        );
    }

    // A host that resynchronises from a snapshot gets the owners' states too, and loses an
    // owner state the upstream no longer has.
    let c = host();
    let rc = Replicator::new(&c.store, &pg.url, options("c"));
    up.suspend_owner("acct_2", None).unwrap();
    up.set_owner_rate_limit("acct_2", Some(limit)).unwrap();
    assert!(rc.sync_once().unwrap().resynced);
    assert_eq!(c.store.owners().unwrap(), a.store.owners().unwrap());
    assert_eq!(reason(&c.store, other.key()), Reason::OwnerSuspended);
    assert_eq!(c.store.owner_rate_limit("acct_2").unwrap(), Some(limit));
    pg.psql("UPDATE keyward_owners SET record = NULL, rate_limit = NULL WHERE owner = 'acct_2'");
    up.new_epoch().unwrap();
    assert!(rc.sync_once().unwrap().resynced);
    assert_eq!(reason(&c.store, other.key()), Reason::Valid);
    assert_eq!(c.store.owner_rate_limit("acct_2").unwrap(), None);
    // Audit upstream: one event per owner change that changed something.
    assert_eq!(
        pg.psql("SELECT count(*) FROM keyward_audit WHERE action LIKE 'owner%'"),
        "7"
    );
}

/// The exports of tests/legacy/make_exports.py, times relative to now.
fn legacy_exports() -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/legacy/make_exports.py");
    let now = SystemClock.now().as_millis() / 1000;
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .args(["--now", &now.to_string()])
        .status()
        .expect("python3 runs tests/legacy/make_exports.py");
    assert!(status.success());
    let cases =
        serde_json::from_slice(&std::fs::read(dir.path().join("cases.json")).unwrap()).unwrap();
    (dir, cases)
}

#[test]
fn legacy_keys_imported_upstream_verify_on_every_host_and_upgrade_locally() {
    let pg = PgServer::start();
    let (exports, cases) = legacy_exports();
    let case = &cases["unkey"];
    let data = std::fs::read(exports.path().join("unkey.jsonl")).unwrap();
    let (a, b, c) = (host(), host(), host());
    let up = Upstream::connect(&a.store, &pg.url).unwrap();
    let rb = Replicator::new(&b.store, &pg.url, options("b"));
    let rc = Replicator::new(&c.store, &pg.url, options("c"));

    let dry = up
        .import_legacy(
            LegacyScheme::Unkey,
            &data,
            &LegacyImportOptions {
                dry_run: true,
                ..LegacyImportOptions::default()
            },
        )
        .unwrap();
    assert_eq!(up.head().unwrap(), 0, "a dry run writes nothing");
    let report = up
        .import_legacy(LegacyScheme::Unkey, &data, &LegacyImportOptions::default())
        .unwrap();
    assert_eq!(report.ids, dry.ids);
    assert!(report.imported > 0);
    assert_eq!(up.head().unwrap(), report.imported as u64);
    // Imported again: nothing new.
    let again = up
        .import_legacy(LegacyScheme::Unkey, &data, &LegacyImportOptions::default())
        .unwrap();
    assert_eq!(
        (again.imported, again.already_present),
        (0, report.imported)
    );
    // Upstream holds the wrapped digests only: no raw hash in any form.
    let dump = pg.psql("SELECT string_agg(coalesce(record, ''), ' ') FROM keyward_changes")
        + &pg.psql("SELECT string_agg(record, ' ') FROM keyward_keys");
    for raw in case["raw_hashes"].as_array().unwrap() {
        assert!(!dump.contains(raw.as_str().unwrap()), "raw hash upstream");
    }

    rb.sync_once().unwrap();
    rc.sync_once().unwrap();
    let valid: Vec<_> = case["valid"].as_array().unwrap().iter().collect();
    assert_eq!(valid.len(), 2);
    let key_of = |k: &serde_json::Value| k["key"].as_str().unwrap().to_owned();
    let id_of = |k: &serde_json::Value| {
        legacy_key_id(LegacyScheme::Unkey, k["source_id"].as_str().unwrap())
    };
    for store in [&a.store, &b.store, &c.store] {
        for k in &valid {
            assert_eq!(reason(store, &key_of(k)), Reason::Valid);
        }
        for k in case["wrong"].as_array().unwrap() {
            assert_eq!(reason(store, k.as_str().unwrap()), Reason::NotFound);
        }
        for k in case["deleted"].as_array().unwrap() {
            assert_eq!(reason(store, k.as_str().unwrap()), Reason::NotFound);
        }
        for k in case["revoked"].as_array().into_iter().flatten() {
            assert_eq!(reason(store, k["key"].as_str().unwrap()), Reason::Revoked);
        }
    }
    // Upgrades stay local: each host upgraded on its own first use; upstream keeps the
    // wrapped legacy digest.
    let (k0, k1) = (valid[0], valid[1]);
    let id0 = id_of(k0);
    assert!(
        b.store
            .get(id0.as_str())
            .unwrap()
            .legacy
            .unwrap()
            .upgraded_at
            .is_some()
    );
    assert_eq!(
        pg.psql(&format!(
            "SELECT (record::jsonb) -> 'legacy' ->> 'upgraded_at' IS NULL FROM keyward_keys WHERE id = '{}'",
            id0.as_str()
        )),
        "t"
    );
    // An upstream change to an upgraded key puts the upstream record back on every host:
    // the revoke is seen through the upgraded digest too (its slot was retired)...
    up.revoke(id0.as_str(), Some("leaked")).unwrap();
    // ...and an update of another one keeps it verifying (it upgrades again).
    up.update(
        id_of(k1).as_str(),
        KeyUpdate {
            name: Some("renamed".into()),
            ..KeyUpdate::default()
        },
    )
    .unwrap();
    rb.sync_once().unwrap();
    rc.sync_once().unwrap();
    for store in [&a.store, &b.store, &c.store] {
        assert_eq!(reason(store, &key_of(k0)), Reason::Revoked);
        assert_eq!(reason(store, &key_of(k1)), Reason::Valid);
        assert_eq!(reason(store, &key_of(k1)), Reason::Valid);
        assert_eq!(store.get(id_of(k1).as_str()).unwrap().name, "renamed");
        assert!(
            store
                .get(id_of(k1).as_str())
                .unwrap()
                .legacy
                .unwrap()
                .upgraded_at
                .is_some()
        );
    }
    // A host that resynchronises (over its upgraded copies) verifies them all the same.
    up.prune_changes(0).unwrap();
    up.delete(id_of(k1).as_str()).unwrap();
    up.prune_changes(0).unwrap();
    assert!(rb.sync_once().unwrap().resynced);
    assert_eq!(reason(&b.store, &key_of(k0)), Reason::Revoked);
    assert_eq!(reason(&b.store, &key_of(k1)), Reason::NotFound);
    let revoked = case["revoked"][0]["key"].as_str().unwrap();
    assert_eq!(reason(&b.store, revoked), Reason::Revoked);
}

/// Verifies `key` on each host until every host refuses it, syncing each host's replicator
/// before its turn (at most `rounds` rounds); returns the valid verifies per host.
fn spend_until_refused(
    hosts: &[Host],
    replicators: &[Replicator],
    key: &str,
    per_turn: usize,
    limit: u64,
) -> [u64; 3] {
    let mut valid = [0u64; 3];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut refused_everywhere = true;
        for (i, (h, r)) in hosts.iter().zip(replicators).enumerate() {
            r.sync_once().unwrap();
            for _ in 0..per_turn {
                if valid.iter().sum::<u64>() == limit {
                    return valid;
                }
                match reason(&h.store, key) {
                    Reason::Valid => {
                        valid[i] += 1;
                        refused_everywhere = false;
                    }
                    Reason::UsageExceeded => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        if refused_everywhere {
            return valid;
        }
        assert!(Instant::now() < deadline, "no end in sight: {valid:?}");
    }
}

#[test]
fn refills_happen_upstream_once_per_period_for_three_hosts() {
    let pg = PgServer::start();
    let clock = ManualClock::new(Timestamp::from_secs(1_750_000_000));
    let hosts = [
        host_with_clock(&clock),
        host_with_clock(&clock),
        host_with_clock(&clock),
    ];
    let up = Upstream::connect(&hosts[0].store, &pg.url).unwrap();
    let mut new = new_key("acct_1", &[]);
    new.credits = Some(NewCredits {
        remaining: 100,
        refill: Some(Refill {
            amount: 100,
            interval: RefillInterval::Daily,
        }),
        cost: 1,
    });
    let k = up.create(new).unwrap();
    let replicators: Vec<Replicator> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Replicator::new(&h.store, &pg.url, options(&format!("host{i}"))))
        .collect();
    let credits_row = || {
        pg.psql(&format!(
            "SELECT remaining || '/' || coalesce(period::text, '-') FROM keyward_credits WHERE key_id = '{}'",
            k.id()
        ))
    };
    let day = clock.now().day().0;
    // Period 1: only 60 of the 100 are used (some of the rest leased to hosts, some not).
    let first = spend_until_refused(&hosts, &replicators, k.key(), 7, 60);
    assert_eq!(first.iter().sum::<u64>(), 60, "{first:?}");
    assert!(
        first.iter().all(|&n| n > 0),
        "every host spent some: {first:?}"
    );
    let leased: u64 = pg
        .psql(&format!(
            "SELECT sum(leased) FROM keyward_credit_leases WHERE key_id = '{}'",
            k.id()
        ))
        .parse()
        .unwrap();
    assert!(
        leased > 60,
        "credits were left on the hosts: leased {leased}"
    );
    assert!(
        credits_row().ends_with(&format!("/{day}")),
        "{}",
        credits_row()
    );

    // The next day: no host refills on its own (what it held of day 1 lapsed)...
    clock.advance(Duration::from_secs(86_400));
    for h in &hosts {
        assert_eq!(reason(&h.store, k.key()), Reason::UsageExceeded);
    }
    // ...the upstream refills once, for all of them together: exactly 100 more, nothing
    // carried over from day 1.
    let second = spend_until_refused(&hosts, &replicators, k.key(), 7, u64::MAX);
    assert_eq!(second.iter().sum::<u64>(), 100, "{second:?}");
    assert!(second.iter().all(|&n| n > 0), "{second:?}");
    assert_eq!(credits_row(), format!("0/{}", day + 1));
    assert!(first.iter().sum::<u64>() + second.iter().sum::<u64>() <= 200);
    // And a third day starts from 100 again.
    clock.advance(Duration::from_secs(86_400));
    let third = spend_until_refused(&hosts, &replicators, k.key(), 7, u64::MAX);
    assert_eq!(third.iter().sum::<u64>(), 100, "{third:?}");
}

#[test]
fn a_rotation_moves_the_credits_leased_to_each_host_to_the_new_key() {
    let pg = PgServer::start();
    let hosts = [host(), host(), host()];
    let up = Upstream::connect(&hosts[0].store, &pg.url).unwrap();
    let total = 300u64;
    let mut new = new_key("acct_1", &[]);
    new.credits = Some(NewCredits {
        remaining: total,
        refill: None,
        cost: 1,
    });
    let old = up.create(new).unwrap();
    let replicators: Vec<Replicator> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Replicator::new(&h.store, &pg.url, options(&format!("host{i}"))))
        .collect();
    // Every host leases (40 each) and spends 10 of them.
    let mut spent = 0;
    for (h, r) in hosts.iter().zip(&replicators) {
        assert_eq!(r.sync_once().unwrap().credits_leased, 40);
        for _ in 0..10 {
            assert_eq!(reason(&h.store, old.key()), Reason::Valid);
            spent += 1;
        }
    }
    let new = up.rotate(old.id(), Duration::from_secs(3600)).unwrap();
    // The writing host moved its own at once; the others still spend the old key's lease
    // until their next sync (only what they hold).
    assert_eq!(reason(&hosts[0].store, old.key()), Reason::UsageExceeded);
    for _ in 0..5 {
        assert_eq!(reason(&hosts[1].store, old.key()), Reason::Valid);
        spent += 1;
    }
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM keyward_credit_leases WHERE key_id = '{}'",
            new.id()
        )),
        "3",
        "the leases moved to the new key"
    );
    // The upstream's unleased credits moved too, the old key has none there.
    assert_eq!(
        pg.psql(&format!(
            "SELECT coalesce(sum(remaining), -1) FROM keyward_credits WHERE key_id = '{}'",
            old.id()
        )),
        "-1"
    );
    let mut held_before_sync = 0;
    for (h, r) in hosts.iter().zip(&replicators).skip(1) {
        let left = h.store.credits(old.id()).unwrap().unwrap().remaining;
        held_before_sync += left;
        // A sync that leases nothing (each holds at least half a batch): what moves is what
        // the host held.
        let report = r.sync_once().unwrap();
        assert_eq!(report.credits_leased, 0);
        assert_eq!(h.store.credits(new.id()).unwrap().unwrap().remaining, left);
        assert_eq!(h.store.credits(old.id()).unwrap().unwrap().remaining, 0);
        assert_eq!(reason(&h.store, old.key()), Reason::UsageExceeded);
    }
    assert_eq!(held_before_sync, 30 + 25);
    // The new key spends everything that was left, across the hosts: old + new = total,
    // nothing lost, nothing spent twice.
    let rest = spend_until_refused(&hosts, &replicators, new.key(), 9, u64::MAX);
    assert!(rest.iter().all(|&n| n > 0), "{rest:?}");
    assert_eq!(
        spent + rest.iter().sum::<u64>(),
        total,
        "old {spent} + new {rest:?}"
    );
    for h in &hosts {
        assert_eq!(reason(&h.store, old.key()), Reason::UsageExceeded);
    }
}

#[test]
fn an_upstream_of_schema_1_is_migrated_and_keeps_working() {
    let pg = PgServer::start();
    let (a, b) = (host(), host());
    let up = Upstream::connect(&a.store, &pg.url).unwrap();
    let mut new = new_key("acct_1", &[]);
    new.credits = Some(NewCredits {
        remaining: 50,
        refill: Some(Refill {
            amount: 70,
            interval: RefillInterval::Monthly,
        }),
        cost: 1,
    });
    let k = up.create(new).unwrap();
    let plain = up.create(new_key("acct_1", &[])).unwrap();
    drop(up);
    // Back to the shape of schema 1 (what an upstream made by the previous release holds).
    pg.psql(
        "BEGIN;
        ALTER TABLE keyward_changes DROP COLUMN kind;
        ALTER TABLE keyward_owners DROP COLUMN record, DROP COLUMN rate_limit;
        ALTER TABLE keyward_credits DROP COLUMN refill_amount, DROP COLUMN refill_interval,
            DROP COLUMN period;
        UPDATE keyward_schema SET version = 1;
        COMMIT;",
    );
    // A replicator of this build refuses it until the management side migrated it.
    let rb = Replicator::new(&b.store, &pg.url, options("b"));
    assert_eq!(
        rb.sync_once().unwrap_err().code(),
        ErrorCode::UpstreamSchema
    );
    let up = Upstream::connect(&a.store, &pg.url).unwrap();
    assert_eq!(pg.psql("SELECT version FROM keyward_schema"), "2");
    assert_eq!(
        pg.psql(&format!(
            "SELECT remaining || '/' || refill_amount || '/' || refill_interval || '/' || coalesce(period::text, '-')
             FROM keyward_credits WHERE key_id = '{}'",
            k.id()
        )),
        "50/70/2/-",
        "terms read from the record, period adopted at the first lease"
    );
    assert_eq!(
        pg.psql("SELECT string_agg(kind::text, ',') FROM keyward_changes"),
        "0,0"
    );
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, plain.key()), Reason::Valid);
    assert_eq!(
        b.store.credits(k.id()).unwrap().unwrap().remaining,
        40,
        "a lease of 40"
    );
    assert_eq!(
        pg.psql(&format!(
            "SELECT remaining FROM keyward_credits WHERE key_id = '{}'",
            k.id()
        )),
        "10",
        "no refill at the migration"
    );
    up.suspend_owner("acct_1", None).unwrap();
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, plain.key()), Reason::OwnerSuspended);
}
