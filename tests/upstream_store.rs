//! A store opened with an upstream URL (`StoreOptions::upstream`, feature `postgres`): its
//! ordinary management calls go to PostgreSQL first, exactly as `Upstream`'s methods do;
//! opening never connects; a replica's `Store::stats` carries its cursor and staleness.
//! Against a real server each test starts (tests/common/pg.rs; scripts/test-postgres.sh).

#[path = "common/pg.rs"]
mod pg;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keyward::upstream::{Replicator, ReplicatorOptions};
use keyward::{
    ErrorCode, ErrorFamily, KeyUpdate, NewKey, Pepper, PepperSource, RateLimit, Reason, Store,
    StoreOptions,
};
use pg::PgServer;

/// One simulated host: its own local store, opened with `upstream`.
struct Host {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
}

fn host(upstream: Option<&str>) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let store = Store::open_unshared(
        &path,
        StoreOptions {
            pepper: PepperSource::Bytes(Pepper::from_bytes(&[7; 32]).unwrap()),
            flush_interval: Duration::ZERO,
            upstream: upstream.map(str::to_owned),
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

fn new_key(owner: &str) -> NewKey {
    NewKey {
        owner: owner.into(),
        name: format!("key of {owner}"),
        ..NewKey::default()
    }
}

fn reason(store: &Store, key: &str) -> Reason {
    store.verify(key, &[]).unwrap().reason
}

fn replicator(store: &Store, url: &str) -> Replicator {
    Replicator::new(
        store,
        url,
        ReplicatorOptions {
            host: "b".into(),
            poll_interval: Duration::from_millis(100),
            reconnect_delay: Duration::from_millis(100),
            usage_interval: Duration::ZERO,
            ..ReplicatorOptions::default()
        },
    )
}

#[test]
fn management_calls_of_a_store_opened_with_an_upstream_reach_the_other_hosts() {
    let pg = PgServer::start();
    let a = host(Some(&pg.url));
    let b = host(Some(&pg.url));
    let rb = replicator(&b.store, &pg.url);

    let k = a.store.create(new_key("acct_1")).unwrap();
    // Committed upstream, applied on the writing host at once.
    assert_eq!(pg.psql("SELECT count(*) FROM keyward_keys"), "1");
    assert_eq!(reason(&a.store, k.key()), Reason::Valid);
    assert_eq!(a.store.get(k.id()).unwrap().serial, 1, "serial = sequence");
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, k.key()), Reason::Valid);

    // create_many: one upstream transaction.
    let many = a
        .store
        .create_many(vec![new_key("acct_2"), new_key("acct_3")])
        .unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(pg.psql("SELECT seq FROM keyward_counter"), "3");

    let updated = b
        .store
        .update(
            k.id(),
            KeyUpdate {
                name: Some("renamed on b".into()),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(updated.name, "renamed on b");
    let rotated = a.store.rotate(k.id(), Duration::ZERO).unwrap();
    a.store.revoke(many[0].id(), Some("leaked")).unwrap();
    b.store.delete(many[1].id()).unwrap();
    assert_eq!(
        pg.psql("SELECT string_agg(action, ',' ORDER BY seq) FROM keyward_audit"),
        "create,create,create,update,rotate,rotate,revoke,delete"
    );

    rb.sync_once().unwrap();
    assert_eq!(b.store.get(k.id()).unwrap().name, "renamed on b");
    assert_eq!(
        reason(&b.store, k.key()),
        Reason::Expired,
        "rotated, no grace"
    );
    assert_eq!(reason(&b.store, rotated.key()), Reason::Valid);
    assert_eq!(reason(&b.store, many[0].key()), Reason::Revoked);
    assert_eq!(reason(&b.store, many[1].key()), Reason::NotFound);
    assert_eq!(
        reason(&a.store, many[1].key()),
        Reason::Valid,
        "a has no replicator"
    );
    let ra = replicator(&a.store, &pg.url);
    ra.sync_once().unwrap();
    assert_eq!(a.store.all_keys().unwrap(), b.store.all_keys().unwrap());

    // Rate limits and owner controls go through the upstream too, and reach the other hosts.
    let limit = RateLimit::new(10, 1000, 10).unwrap();
    let limited = a
        .store
        .update(
            rotated.id(),
            KeyUpdate {
                rate_limit: Some(Some(limit)),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(limited.rate_limit, Some(limit));
    let owner_limit = RateLimit::new(100, 1000, 100).unwrap();
    a.store
        .set_owner_rate_limit("acct_1", Some(owner_limit))
        .unwrap();
    a.store.suspend_owner("acct_1", Some("unpaid")).unwrap();
    assert_eq!(reason(&a.store, rotated.key()), Reason::OwnerSuspended);
    assert_eq!(
        reason(&b.store, rotated.key()),
        Reason::Valid,
        "until b syncs"
    );
    rb.sync_once().unwrap();
    assert_eq!(reason(&b.store, rotated.key()), Reason::OwnerSuspended);
    assert_eq!(b.store.get(rotated.id()).unwrap().rate_limit, Some(limit));
    assert_eq!(
        b.store.owner_rate_limit("acct_1").unwrap(),
        Some(owner_limit)
    );
    b.store.resume_owner("acct_1").unwrap();
    ra.sync_once().unwrap();
    assert_eq!(reason(&a.store, rotated.key()), Reason::Valid);
}

#[test]
fn opening_never_connects_and_a_server_that_is_down_loses_nothing() {
    let pg = PgServer::start();
    let a = host(Some(&pg.url));
    let k = a.store.create(new_key("acct_1")).unwrap();

    pg.kill();
    // A second store opened while the server is down: opening and verifying need nothing
    // from it.
    let b = host(Some(&pg.url));
    assert_eq!(reason(&b.store, k.key()), Reason::NotFound);
    for store in [&a.store, &b.store] {
        let err = store.revoke(k.id(), None).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UpstreamUnavailable, "{err}");
        assert_eq!(err.code().family(), ErrorFamily::Upstream);
        let err = store.create(new_key("acct_2")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UpstreamUnavailable, "{err}");
    }
    assert_eq!(reason(&a.store, k.key()), Reason::Valid, "nothing changed");
    assert_eq!(a.store.all_keys().unwrap().len(), 1);

    // The next call after the restart reconnects by itself.
    pg.restart();
    a.store.revoke(k.id(), Some("after the outage")).unwrap();
    assert_eq!(reason(&a.store, k.key()), Reason::Revoked);
    assert_eq!(pg.psql("SELECT seq FROM keyward_counter"), "2");
}

#[test]
fn a_wrong_url_is_refused_at_open_or_at_the_first_call_with_an_upstream_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_unshared(
        dir.path().join("keys.redb"),
        StoreOptions {
            upstream: Some("postgresql://host:notaport/db".into()),
            ..StoreOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");

    // Well-formed, but nothing listens there.
    let a = host(Some(
        "postgresql://keyward@%2Fnonexistent%2Fsocket%2Fdir/keyward",
    ));
    let err = a.store.create(new_key("acct_1")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UpstreamUnavailable, "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert!(a.store.all_keys().unwrap().is_empty());
    assert!(
        a.store.stats().unwrap().replica.is_some(),
        "a store opened with an upstream is a replica"
    );
    // Owner controls too go to the upstream, never to the local file alone.
    let err = a.store.suspend_owner("acct_1", None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UpstreamUnavailable, "{err}");
    assert!(a.store.owners().unwrap().is_empty());
}

#[test]
fn a_replica_reports_its_cursor_connection_and_staleness_in_stats() {
    let pg = PgServer::start();
    let a = host(Some(&pg.url));
    let plain = host(None);
    assert_eq!(plain.store.stats().unwrap().replica, None);

    a.store.create(new_key("acct_1")).unwrap();
    let b = host(None);
    assert_eq!(b.store.stats().unwrap().replica, None, "not a replica yet");
    let rb = Arc::new(replicator(&b.store, &pg.url));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (rb, stop) = (rb.clone(), stop.clone());
        std::thread::spawn(move || rb.run(&stop))
    };
    wait_until("b to catch up", || {
        b.store
            .stats()
            .unwrap()
            .replica
            .is_some_and(|r| r.cursor == 1 && r.connected)
    });
    let replica = b.store.stats().unwrap().replica.unwrap();
    assert!(replica.synced_at_ms > 0);
    assert!(replica.staleness_ms.is_some());
    assert!(replica.reported_at_ms >= replica.synced_at_ms);
    assert!(b.path.with_extension("redb.replica").exists());

    // Server down: the replicator reports it, the last sync stays where it was, so the
    // staleness grows.
    pg.kill();
    wait_until("the replicator to report the outage", || {
        !b.store.stats().unwrap().replica.unwrap().connected
    });
    let down = b.store.stats().unwrap().replica.unwrap();
    let synced_then = down.synced_at_ms;
    wait_until("the staleness to grow past 1.5 s", || {
        b.store
            .stats()
            .unwrap()
            .replica
            .unwrap()
            .staleness_ms
            .unwrap()
            > 1_500
    });
    let later = b.store.stats().unwrap().replica.unwrap();
    assert_eq!(
        later.synced_at_ms, synced_then,
        "not synced since the outage"
    );
    assert_eq!(later.cursor, 1);
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
}

/// Polls `check` until it holds (30 s at most).
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tls_verify_full_with_the_right_root_succeeds_and_a_wrong_root_fails_clearly() {
    let pg = PgServer::start_tls();
    let url = |mode: &str, root: &str| {
        format!(
            "{}?sslmode={mode}&sslrootcert={}",
            pg.url,
            pg.file(root).display()
        )
    };
    // The right root: the key is created over TLS.
    let a = host(Some(&url("verify-full", "ca.crt")));
    let k = a.store.create(new_key("acct_1")).unwrap();
    assert_eq!(reason(&a.store, k.key()), Reason::Valid);
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_stat_ssl WHERE ssl AND pid <> pg_backend_pid()"),
        "1",
        "the store's connection is encrypted"
    );

    // A root that did not sign the server's certificate: a clear UPSTREAM error, nothing made.
    let b = host(Some(&url("verify-full", "other-ca.crt")));
    let err = b.store.create(new_key("acct_2")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UpstreamUnavailable, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(b.store.all_keys().unwrap().is_empty());

    // The certificate names localhost, not 127.0.0.1: verify-full refuses the address,
    // verify-ca (chain only) and require (encryption only) accept it.
    let by_ip = |mode: &str, root: &str| url(mode, root).replacen("localhost", "127.0.0.1", 1);
    let c = host(Some(&by_ip("verify-full", "ca.crt")));
    let err = c.store.revoke(k.id(), None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UpstreamUnavailable, "{err}");
    assert!(err.to_string().contains("not valid for name"), "{err}");
    let d = host(Some(&by_ip("verify-ca", "ca.crt")));
    d.store.create(new_key("acct_3")).unwrap();
    let e = host(Some(&format!(
        "{}?sslmode=require",
        pg.url.replacen("localhost", "127.0.0.1", 1)
    )));
    e.store.create(new_key("acct_4")).unwrap();
    assert_eq!(pg.psql("SELECT count(*) FROM keyward_keys"), "3");

    // A root file that does not exist is refused at open.
    let err = Store::open_unshared(
        a.path.with_extension("other"),
        StoreOptions {
            upstream: Some(format!(
                "{}?sslmode=verify-full&sslrootcert=/nonexistent.pem",
                pg.url
            )),
            ..StoreOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
}

#[test]
fn a_damaged_status_file_reads_as_never_synced_and_stats_go_on() {
    let pg = PgServer::start();
    let a = host(Some(&pg.url));
    a.store.create(new_key("acct_1")).unwrap();
    std::fs::write(a.path.with_extension("redb.replica"), b"{ not json").unwrap();
    let replica = a.store.stats().unwrap().replica.unwrap();
    assert_eq!(replica.cursor, 0, "a's own writes do not move its cursor");
    assert_eq!((replica.synced_at_ms, replica.staleness_ms), (0, None));
    assert!(!replica.connected);
}
