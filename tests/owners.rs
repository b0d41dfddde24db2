//! Owner controls through the Rust API: suspension, allowed scopes (effective scopes), the
//! owner records and their audit events, and old stores without the `owners` table.

mod common;

use std::time::Duration;

use common::{new_key, temp_store};
use keyward::{AuditAction, AuditQuery, Error, ErrorCode, Reason, Store, StoreOptions};

fn options() -> StoreOptions {
    StoreOptions {
        flush_interval: Duration::ZERO,
        ..StoreOptions::default()
    }
}

#[test]
fn a_suspend_through_one_handle_is_seen_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("owners.redb");
    let a = Store::open_unshared(&path, options()).unwrap();
    let b = Store::open_unshared(&path, options()).unwrap();
    let key = a.create(new_key("acct", &["read"])).unwrap();
    for round in 0..50 {
        assert_eq!(
            b.verify(key.key(), &["read"]).unwrap().reason,
            Reason::Valid,
            "round {round}"
        );
        a.suspend_owner("acct", None).unwrap();
        assert_eq!(
            b.verify(key.key(), &["read"]).unwrap().reason,
            Reason::OwnerSuspended,
            "round {round}"
        );
        a.resume_owner("acct").unwrap();
    }
}

#[test]
fn a_suspended_owner_refuses_every_key_and_counts_refusals() {
    let t = temp_store();
    let a = t.store.create(new_key("acct", &["read"])).unwrap();
    let b = t.store.create(new_key("acct", &[])).unwrap();
    let other = t.store.create(new_key("other", &["read"])).unwrap();
    let info = t
        .store
        .with_actor("ops")
        .unwrap()
        .suspend_owner("acct", Some("unpaid"))
        .unwrap();
    assert!(info.is_suspended());
    assert_eq!(info.suspend_reason.as_deref(), Some("unpaid"));
    assert_eq!(info.keys, 2);
    for key in [a.key(), b.key()] {
        let verdict = t.store.verify(key, &[]).unwrap();
        assert_eq!(verdict.reason, Reason::OwnerSuspended);
        assert_eq!(verdict.reason.http_status(), 403);
        assert_eq!(verdict.reason.code(), "OWNER_SUSPENDED");
        // The key's details come with the refusal, like a revoked key's.
        assert_eq!(verdict.key.unwrap().owner, "acct");
    }
    // A dry run reports it too, and counts nothing.
    let dry = t
        .store
        .verify_request(&keyward::VerifyRequest {
            dry_run: true,
            ..keyward::VerifyRequest::key(a.key(), &[])
        })
        .unwrap();
    assert_eq!(dry.reason, Reason::OwnerSuspended);
    assert!(t.store.verify(other.key(), &["read"]).unwrap().is_valid());
    t.store.flush().unwrap();
    let usage = t.store.usage(a.id()).unwrap();
    assert_eq!((usage.uses, usage.refused), (0, 1));
    // A revoked key of a suspended owner says REVOKED.
    t.store.revoke(b.id(), None).unwrap();
    assert_eq!(
        t.store.verify(b.key(), &[]).unwrap().reason,
        Reason::Revoked
    );
    // Suspending twice changes nothing; resume brings the keys back.
    t.store.suspend_owner("acct", Some("again")).unwrap();
    assert_eq!(
        t.store.owner("acct").unwrap().suspend_reason.as_deref(),
        Some("unpaid")
    );
    let resumed = t.store.resume_owner("acct").unwrap();
    assert!(!resumed.is_suspended());
    assert!(t.store.verify(a.key(), &["read"]).unwrap().is_valid());
    // Events: one suspend (the second changed nothing), one resume, with the actor.
    let events: Vec<_> = t
        .store
        .audit(&AuditQuery {
            owner: Some("acct".into()),
            ..AuditQuery::default()
        })
        .unwrap()
        .events
        .into_iter()
        .filter(|e| e.key_id.is_none())
        .collect();
    let actions: Vec<_> = events.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [AuditAction::OwnerSuspend, AuditAction::OwnerResume]
    );
    assert_eq!(events[0].actor.as_deref(), Some("ops"));
    assert_eq!(events[0].changed, ["suspended_at", "suspend_reason"]);
}

#[test]
fn effective_scopes_are_the_keys_own_within_its_owners() {
    let t = temp_store();
    let key = t.store.create(new_key("acct", &["read", "write"])).unwrap();
    t.store
        .set_owner_scopes("acct", Some(&["read", "admin"]))
        .unwrap();
    let verdict = t.store.verify(key.key(), &["read"]).unwrap();
    assert!(verdict.is_valid());
    assert_eq!(verdict.key.unwrap().scopes, ["read"]);
    assert_eq!(
        t.store.verify(key.key(), &["write"]).unwrap().reason,
        Reason::InsufficientScope
    );
    // The owner's scopes grant nothing the key lacks.
    assert_eq!(
        t.store.verify(key.key(), &["admin"]).unwrap().reason,
        Reason::InsufficientScope
    );
    // The key record keeps its own scopes.
    assert_eq!(t.store.get(key.id()).unwrap().scopes, ["read", "write"]);
    let info = t.store.owner("acct").unwrap();
    assert_eq!(
        info.allowed_scopes,
        Some(vec!["admin".to_owned(), "read".to_owned()])
    );
    t.store.set_owner_scopes::<&str>("acct", None).unwrap();
    let verdict = t.store.verify(key.key(), &["write"]).unwrap();
    assert!(verdict.is_valid());
    assert_eq!(verdict.key.unwrap().scopes, ["read", "write"]);
    let actions: Vec<_> = t
        .store
        .audit(&AuditQuery::default())
        .unwrap()
        .events
        .iter()
        .filter(|e| e.key_id.is_none())
        .map(|e| (e.action, e.changed.clone()))
        .collect();
    assert_eq!(
        actions,
        [
            (AuditAction::OwnerScopes, vec!["allowed_scopes".to_owned()]),
            (AuditAction::OwnerScopes, vec!["allowed_scopes".to_owned()])
        ]
    );
}

#[test]
fn owner_records_are_listed_and_bad_owners_refused() {
    let t = temp_store();
    assert!(t.store.owners().unwrap().is_empty());
    t.store.create(new_key("acct", &[])).unwrap();
    // An owner with keys but no record is shown; one with neither is not found.
    let shown = t.store.owner("acct").unwrap();
    assert_eq!((shown.keys, shown.created_at), (1, None));
    let missing = t.store.owner("nobody").unwrap_err();
    assert_eq!(missing.code(), ErrorCode::OwnerNotFound);
    assert_eq!(
        t.store.resume_owner("nobody").unwrap_err().code(),
        ErrorCode::OwnerNotFound
    );
    assert!(matches!(
        t.store.suspend_owner("", None).unwrap_err(),
        Error::InvalidArgument { field: "owner", .. }
    ));
    assert_eq!(
        t.store
            .set_owner_scopes("acct", Some(&["has space"]))
            .unwrap_err()
            .code(),
        ErrorCode::InvalidArgument
    );
    // Suspending an owner without keys is allowed (its future keys are refused too).
    t.store.suspend_owner("future", None).unwrap();
    let later = t.store.create(new_key("future", &[])).unwrap();
    assert_eq!(
        t.store.verify(later.key(), &[]).unwrap().reason,
        Reason::OwnerSuspended
    );
    let listed: Vec<_> = t
        .store
        .owners()
        .unwrap()
        .into_iter()
        .map(|o| (o.owner.clone(), o.keys, o.is_suspended()))
        .collect();
    assert_eq!(listed, [("future".to_owned(), 1, true)]);
}

/// A store written before owner controls existed (the format-1 fixture: no `owners` table)
/// opens with no owner records, verifies as before, and takes its first owner change.
#[test]
fn a_format_1_store_without_the_owners_table_has_no_owner_records() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1");
    for name in ["keys.redb", "pepper", "expected.json"] {
        std::fs::copy(fixture.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::set_permissions(
        dir.path().join("pepper"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("expected.json")).unwrap()).unwrap();
    let key = expected["valid"]["key"].as_str().unwrap();
    let store = Store::open_unshared(
        dir.path().join("keys.redb"),
        StoreOptions {
            pepper: keyward::PepperSource::File(dir.path().join("pepper")),
            ..options()
        },
    )
    .unwrap();
    assert!(store.owners().unwrap().is_empty());
    assert!(store.verify(key, &["write"]).unwrap().is_valid());
    assert_eq!(store.owner("acct_valid").unwrap().created_at, None);
    store.suspend_owner("acct_valid", None).unwrap();
    assert_eq!(
        store.verify(key, &["write"]).unwrap().reason,
        Reason::OwnerSuspended
    );
    assert_eq!(store.owners().unwrap().len(), 1);
}
