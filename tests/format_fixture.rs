//! Store files written in every format so far (`tests/fixtures/format-N/`, checked in) must
//! open and answer the same in every later version, the way redb tests files written by older
//! releases. Each fixture was written by this test with `KEYWARD_WRITE_FIXTURE=1` (the current
//! format's; a test pepper, test keys: nothing secret); `expected.json` holds the keys and
//! what they answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyward::{
    Day, ManualClock, NewCredits, NewKey, PepperSource, Reason, Store, StoreOptions, Timestamp,
};
use redb::ReadableDatabase;
use serde_json::{Value, json};

// The tables this test reads directly (as `src/schema.rs` defines them).
const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
const USAGE_V1: redb::TableDefinition<&str, (u64, u64, i64)> = redb::TableDefinition::new("usage");
const KEY_USAGE: redb::TableDefinition<&str, (u64, u64, i64, i32, u64)> =
    redb::TableDefinition::new("key_usage");
const USAGE_DAYS: redb::TableDefinition<(&str, i32), u64> =
    redb::TableDefinition::new("usage_days");

const CREATED_AT_SECS: i64 = 1_750_000_000;

/// Every format with a checked-in fixture.
const FIXTURE_FORMATS: [u32; 2] = [1, 2];

fn fixture_dir(format: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/format-{format}"))
}

fn options(clock: &Arc<ManualClock>, pepper: &Path) -> StoreOptions {
    StoreOptions {
        clock: clock.clone(),
        flush_interval: Duration::ZERO,
        pepper: PepperSource::File(pepper.to_owned()),
        ..StoreOptions::default()
    }
}

fn write_fixture() {
    let dir = fixture_dir(keyward::FORMAT_VERSION);
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "keys.redb",
        "keys.redb.kwsync",
        "keys.redb.kwtable",
        "pepper",
        "expected.json",
    ] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let pepper = dir.join("pepper");
    std::fs::write(&pepper, format!("{}\n", "5a".repeat(32))).unwrap();
    std::fs::set_permissions(&pepper, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(CREATED_AT_SECS));
    let store = Store::open_unshared(dir.join("keys.redb"), options(&clock, &pepper)).unwrap();
    let new = |owner: &str, scopes: &[&str]| NewKey {
        owner: owner.into(),
        name: format!("{owner} key"),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        env: Some("live".into()),
        metadata: br#"{"plan":"pro"}"#.to_vec(),
        ..NewKey::default()
    };
    let valid = store.create(new("acct_valid", &["read", "write"])).unwrap();
    let revoked = store.create(new("acct_revoked", &["read"])).unwrap();
    store.revoke(revoked.id(), Some("leaked")).unwrap();
    let expiring = store
        .create(NewKey {
            expires_at: Some(Timestamp::from_secs(CREATED_AT_SECS + 3600)),
            ..new("acct_expiring", &["read"])
        })
        .unwrap();
    let limited = store
        .create(NewKey {
            credits: Some(NewCredits {
                remaining: 10,
                refill: None,
                cost: 1,
            }),
            ..new("acct_limited", &["read"])
        })
        .unwrap();
    let old = store.create(new("acct_rotating", &["read"])).unwrap();
    let rotated = store.rotate(old.id(), Duration::ZERO).unwrap();
    // (The limited key is not verified here: credits moved into the shared pool live in the
    // sync file, which is not part of the fixture.)
    for _ in 0..3 {
        assert!(store.verify(valid.key(), &["read"]).unwrap().is_valid());
    }
    store.flush().unwrap();
    drop(store);
    // The sync and table files are the host's, rebuilt from the database: not the fixture.
    let _ = std::fs::remove_file(dir.join("keys.redb.kwsync"));
    let _ = std::fs::remove_file(dir.join("keys.redb.kwtable"));
    let key = |k: &keyward::CreatedKey| json!({"id": k.id(), "key": k.key()});
    let expected = json!({
        "format_version": keyward::FORMAT_VERSION,
        "day": Timestamp::from_secs(CREATED_AT_SECS).day().0,
        "valid": key(&valid),
        "revoked": key(&revoked),
        "expiring": key(&expiring),
        "limited": key(&limited),
        "rotated_old": key(&old),
        "rotated_new": key(&rotated),
    });
    std::fs::write(
        dir.join("expected.json"),
        serde_json::to_string_pretty(&expected).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
fn a_store_of_every_format_opens_and_answers_the_same() {
    if std::env::var_os("KEYWARD_WRITE_FIXTURE").is_some() {
        write_fixture();
    }
    assert!(
        FIXTURE_FORMATS.contains(&keyward::FORMAT_VERSION),
        "write the new format's fixture"
    );
    for format in FIXTURE_FORMATS {
        opens_and_answers_the_same(format);
    }
}

fn opens_and_answers_the_same(format: u32) {
    let fixture = fixture_dir(format);
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture.join("expected.json")).unwrap()).unwrap();
    let key = |name: &str| expected[name]["key"].as_str().unwrap().to_owned();
    let id = |name: &str| expected[name]["id"].as_str().unwrap().to_owned();
    // Work on a copy: opening binds a sync file and may write.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture.join("keys.redb"), dir.path().join("keys.redb")).unwrap();
    let pepper = dir.path().join("pepper");
    std::fs::copy(fixture.join("pepper"), &pepper).unwrap();
    std::fs::set_permissions(&pepper, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(CREATED_AT_SECS + 60));
    let store = Store::open_unshared(dir.path().join("keys.redb"), options(&clock, &pepper))
        .unwrap_or_else(|e| panic!("a format-{format} store opens: {e}"));

    let verdict = store.verify(&key("valid"), &["write"]).unwrap();
    assert_eq!(verdict.reason, Reason::Valid);
    let info = verdict.key.unwrap();
    assert_eq!(
        (info.owner.as_str(), info.name.as_str(), info.env.as_deref()),
        ("acct_valid", "acct_valid key", Some("live"))
    );
    assert_eq!(info.scopes, vec!["read", "write"]);
    assert_eq!(info.metadata, br#"{"plan":"pro"}"#);
    assert_eq!(info.created_at, CREATED_AT_SECS * 1000);
    assert_eq!(
        store.verify(&key("revoked"), &[]).unwrap().reason,
        Reason::Revoked
    );
    assert_eq!(
        store.get(&id("revoked")).unwrap().revoke_reason.as_deref(),
        Some("leaked")
    );
    assert_eq!(
        store.verify(&key("expiring"), &[]).unwrap().reason,
        Reason::Valid
    );
    assert_eq!(
        store.verify(&key("rotated_old"), &[]).unwrap().reason,
        Reason::Expired
    );
    assert_eq!(
        store.get(&id("rotated_old")).unwrap().rotated_to,
        Some(id("rotated_new"))
    );
    assert!(
        store
            .verify(&key("rotated_new"), &["read"])
            .unwrap()
            .is_valid()
    );
    let usage = store.usage(&id("valid")).unwrap();
    assert_eq!(usage.uses, 4, "3 stored uses + the one above");
    let day = Day(expected["day"].as_i64().unwrap() as i32);
    let days = store.usage_by_day(&id("valid"), day, day).unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].uses, 3);
    assert_eq!(expected["format_version"], format);
    // Format 2 keeps the latest day's uses in the key's usage row: the first flush folds a
    // format-1 row into it, and the day reads as its `usage_days` row plus the row's count.
    store.flush().unwrap();
    assert_eq!(store.usage(&id("valid")).unwrap().uses, 4);
    assert_eq!(
        store.usage_by_day(&id("valid"), day, day).unwrap()[0].uses,
        4
    );
    assert!(store.verify(&key("valid"), &["read"]).unwrap().is_valid());
    store.flush().unwrap();
    assert_eq!(store.usage(&id("valid")).unwrap().uses, 5);
    assert_eq!(
        store.usage_by_day(&id("valid"), day, day).unwrap()[0].uses,
        5
    );
    assert_eq!(
        store.credits(&id("limited")).unwrap().unwrap().remaining,
        10
    );
    assert!(store.verify(&key("limited"), &["read"]).unwrap().is_valid());
    assert_eq!(store.credits(&id("limited")).unwrap().unwrap().remaining, 9);
    // Later: the expiring key expired.
    clock.set(Timestamp::from_secs(CREATED_AT_SECS + 7200));
    assert_eq!(
        store.verify(&key("expiring"), &[]).unwrap().reason,
        Reason::Expired
    );
    drop(store);

    // The file now says this build's format (older builds refuse it instead of reading its
    // usage low), and no format-1 row is left of the key used since: it was folded into its
    // format-2 row.
    let db = redb::Database::open(dir.path().join("keys.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let version = meta.get("format_version").unwrap().unwrap().value()[..4].to_vec();
    assert_eq!(version, keyward::FORMAT_VERSION.to_le_bytes());
    match txn.open_table(USAGE_V1) {
        Ok(v1) => assert!(v1.get(id("valid").as_str()).unwrap().is_none()),
        Err(redb::TableError::TableDoesNotExist(_)) => assert!(format >= 2),
        Err(e) => panic!("{e}"),
    }
    let row = txn
        .open_table(KEY_USAGE)
        .unwrap()
        .get(id("valid").as_str())
        .unwrap()
        .unwrap()
        .value();
    let in_days = txn
        .open_table(USAGE_DAYS)
        .unwrap()
        .get((id("valid").as_str(), day.0))
        .unwrap()
        .map_or(0, |v| v.value());
    assert_eq!((row.0, row.3, row.4 + in_days), (5, day.0, 5));
    // Format 1 wrote its 3 uses to `usage_days`; format 2 keeps the day in the row.
    assert_eq!(in_days, if format == 1 { 3 } else { 0 });
}

/// A format-1 process still running beside a format-2 one during a rolling upgrade writes
/// format-1 rows after the upgrade: they are added to the key's format-2 row, not lost, and
/// deleting the key removes both.
#[test]
fn a_format_1_row_written_after_the_upgrade_is_added_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let clock = ManualClock::new(Timestamp::from_secs(CREATED_AT_SECS));
    let pepper = dir.path().join("pepper");
    std::fs::write(&pepper, format!("{}\n", "5a".repeat(32))).unwrap();
    std::fs::set_permissions(&pepper, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let store = Store::open_unshared(&path, options(&clock, &pepper)).unwrap();
    let created = store
        .create(NewKey {
            owner: "acct".into(),
            ..NewKey::default()
        })
        .unwrap();
    assert!(store.verify(created.key(), &[]).unwrap().is_valid());
    store.flush().unwrap();
    drop(store);
    let last_v1 = (CREATED_AT_SECS + 10) * 1000;
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(USAGE_V1)
            .unwrap()
            .insert(created.id(), (7u64, 2u64, last_v1))
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open_unshared(&path, options(&clock, &pepper)).unwrap();
    let usage = store.usage(created.id()).unwrap();
    assert_eq!(
        (usage.uses, usage.refused, usage.last_used),
        (8, 2, Some(last_v1))
    );
    let since = Timestamp::from_millis(last_v1 + 1);
    assert_eq!(store.unused_since("acct", since).unwrap().len(), 1);
    assert!(
        store
            .unused_since("acct", Timestamp::from_millis(last_v1))
            .unwrap()
            .is_empty(),
        "the format-1 row's last use counts"
    );
    store.delete(created.id()).unwrap();
    drop(store);
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    assert!(
        txn.open_table(USAGE_V1)
            .unwrap()
            .get(created.id())
            .unwrap()
            .is_none()
    );
    assert!(
        txn.open_table(KEY_USAGE)
            .unwrap()
            .get(created.id())
            .unwrap()
            .is_none()
    );
}
