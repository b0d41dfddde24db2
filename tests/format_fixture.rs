//! A store file written in format 1 (`tests/fixtures/format-1/`, checked in) must open and
//! answer the same in every later version, the way redb tests files written by older
//! releases. The fixture was written by this test with `KEYWARD_WRITE_FIXTURE=1` (a test
//! pepper, test keys: nothing secret); `expected.json` holds the keys and what they answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyward::{
    Day, ManualClock, NewCredits, NewKey, PepperSource, Reason, Store, StoreOptions, Timestamp,
};
use serde_json::{Value, json};

const CREATED_AT_SECS: i64 = 1_750_000_000;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1")
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
    let dir = fixture_dir();
    for name in ["keys.redb", "keys.redb.kwsync", "pepper", "expected.json"] {
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
    let _ = std::fs::remove_file(dir.join("keys.redb.kwsync"));
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
fn a_store_of_format_1_opens_and_answers_the_same() {
    if std::env::var_os("KEYWARD_WRITE_FIXTURE").is_some() {
        write_fixture();
    }
    let fixture = fixture_dir();
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
        .expect("a format-1 store opens");

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
}
