//! The audit log through the Rust API: an event per change with the host's actor, policy
//! refusals, paging and filters, retention, old store files, and no secret in any event.

mod common;

use std::time::Duration;

use common::{new_key, temp_store, temp_store_with};
use keyward::{AuditAction, AuditQuery, Error, KeyUpdate, Policies, Store};

fn all_events(store: &Store) -> Vec<keyward::AuditEvent> {
    store
        .audit(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .unwrap()
        .events
}

#[test]
fn every_change_appends_an_event_with_the_actor() {
    let t = temp_store();
    let alice = t.store.with_actor("alice").unwrap();
    assert_eq!(alice.actor(), Some("alice"));
    assert!(alice.same_store(&t.store));
    let a = alice.create(new_key("acct_1", &["read"])).unwrap();
    let b = t.store.create(new_key("acct_1", &["read"])).unwrap();
    alice
        .update(
            a.id(),
            KeyUpdate {
                name: Some("renamed".into()),
                scopes: Some(vec!["write".into()]),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    let rotated = alice.rotate(a.id(), Duration::ZERO).unwrap();
    alice.revoke(rotated.id(), Some("leaked")).unwrap();
    alice.delete(b.id()).unwrap();
    let imported = alice
        .import_many(vec![new_key("acct_2", &[]), new_key("acct_2", &[])])
        .unwrap();
    let many = alice.create_many(vec![new_key("acct_3", &[])]).unwrap();

    let events = all_events(&t.store);
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e.action, e.key_id.clone().unwrap(), e.actor.clone()))
        .collect();
    let al = Some("alice".to_owned());
    assert_eq!(
        summary,
        vec![
            (AuditAction::Create, a.id().to_owned(), al.clone()),
            (AuditAction::Create, b.id().to_owned(), None),
            (AuditAction::Update, a.id().to_owned(), al.clone()),
            (AuditAction::Rotate, a.id().to_owned(), al.clone()),
            (AuditAction::Rotate, rotated.id().to_owned(), al.clone()),
            (AuditAction::Revoke, rotated.id().to_owned(), al.clone()),
            (AuditAction::Delete, b.id().to_owned(), al.clone()),
            (AuditAction::Import, imported[0].id().to_owned(), al.clone()),
            (AuditAction::Import, imported[1].id().to_owned(), al.clone()),
            (AuditAction::Create, many[0].id().to_owned(), al.clone()),
        ]
    );
    assert_eq!(events[2].changed, ["name", "scopes"]);
    assert_eq!(events[3].detail.as_deref(), Some(rotated.id()));
    assert_eq!(events[4].detail.as_deref(), Some(a.id()));
    assert_eq!(events[5].changed, ["revoked_at", "revoke_reason"]);
    assert!(events.iter().all(|e| e.owner.is_some()));
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));

    // Revoking a revoked key changes nothing and logs nothing.
    alice.revoke(rotated.id(), None).unwrap();
    assert_eq!(all_events(&t.store).len(), events.len());
    // A failed change (unknown key) logs nothing.
    assert!(alice.revoke(b.id(), None).is_err());
    assert_eq!(all_events(&t.store).len(), events.len());
}

#[test]
fn policy_refusals_are_logged_and_change_nothing() {
    let t = temp_store_with(|o| {
        o.policies = Policies {
            max_active_keys_per_owner: Some(1),
            keep_last_key: true,
            max_lifetime: None,
        }
    });
    let ops = t.store.with_actor("ops").unwrap();
    let a = ops.create(new_key("acct", &[])).unwrap();
    assert!(matches!(
        ops.create(new_key("acct", &[])),
        Err(Error::PolicyMaxActiveKeys { .. })
    ));
    assert!(matches!(
        ops.revoke(a.id(), None),
        Err(Error::PolicyLastActiveKey { .. })
    ));
    assert!(matches!(
        ops.delete(a.id()),
        Err(Error::PolicyLastActiveKey { .. })
    ));
    let events = all_events(&t.store);
    assert_eq!(events.len(), 4);
    let refusals: Vec<_> = events[1..]
        .iter()
        .map(|e| {
            assert_eq!(e.action, AuditAction::PolicyRefused);
            assert_eq!(e.owner.as_deref(), Some("acct"));
            assert_eq!(e.actor.as_deref(), Some("ops"));
            (e.key_id.clone(), e.detail.clone().unwrap())
        })
        .collect();
    assert_eq!(
        refusals,
        vec![
            (None, "POLICY_MAX_ACTIVE_KEYS".to_owned()),
            (Some(a.id().to_owned()), "POLICY_LAST_ACTIVE_KEY".to_owned()),
            (Some(a.id().to_owned()), "POLICY_LAST_ACTIVE_KEY".to_owned()),
        ]
    );
    assert!(t.store.get(a.id()).unwrap().revoked_at.is_none());
}

#[test]
fn queries_filter_and_page() {
    let t = temp_store();
    let mut ids = Vec::new();
    for i in 0..10 {
        let actor = if i % 2 == 0 { "even" } else { "odd" };
        let owner = format!("acct_{}", i % 3);
        let created = t
            .store
            .with_actor(actor)
            .unwrap()
            .create(new_key(&owner, &[]))
            .unwrap();
        ids.push(created.id().to_owned());
        t.clock.advance(Duration::from_secs(60));
    }
    let q = |tweak: &dyn Fn(&mut AuditQuery)| {
        let mut query = AuditQuery::default();
        tweak(&mut query);
        t.store.audit(&query).unwrap()
    };
    assert_eq!(q(&|q| q.actor = Some("even".into())).events.len(), 5);
    assert_eq!(q(&|q| q.owner = Some("acct_0".into())).events.len(), 4);
    let by_key = q(&|q| q.key_id = Some(ids[3].clone()));
    assert_eq!(by_key.events.len(), 1);
    assert_eq!(by_key.events[0].key_id.as_deref(), Some(ids[3].as_str()));
    let start = t.store.get(&ids[0]).unwrap().created_at;
    let window = q(&|q| {
        q.since = Some(start + 2 * 60_000);
        q.until = Some(start + 5 * 60_000);
    });
    let got: Vec<_> = window
        .events
        .iter()
        .map(|e| e.key_id.clone().unwrap())
        .collect();
    assert_eq!(got, ids[2..5]);
    // Paging with a filter: pages of 2 over the 5 "odd" events.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = q(&|q| {
            q.actor = Some("odd".into());
            q.limit = 2;
            q.after = after;
        });
        assert!(page.events.len() <= 2);
        seen.extend(page.events.iter().map(|e| e.key_id.clone().unwrap()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let odd: Vec<_> = ids.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(seen, odd);
    assert!(matches!(
        t.store.audit(&AuditQuery {
            limit: 5000,
            ..AuditQuery::default()
        }),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn retention_prunes_old_events_as_part_of_writes() {
    let t = temp_store_with(|o| o.audit_retention_days = Some(7));
    assert_eq!(t.store.audit_retention_days(), 7);
    let old = t.store.create(new_key("acct", &[])).unwrap();
    t.clock.advance(Duration::from_secs(6 * 86_400));
    t.store.create(new_key("acct", &[])).unwrap();
    assert_eq!(all_events(&t.store).len(), 2);
    t.clock.advance(Duration::from_secs(2 * 86_400));
    // No write, no pruning.
    assert_eq!(all_events(&t.store).len(), 2);
    t.store.create(new_key("acct", &[])).unwrap();
    let events = all_events(&t.store);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.key_id.as_deref() != Some(old.id())));
    // 0 keeps everything.
    t.store.set_audit_retention_days(0);
    t.clock.advance(Duration::from_secs(365 * 86_400));
    t.store.create(new_key("acct", &[])).unwrap();
    assert_eq!(all_events(&t.store).len(), 3);
}

#[test]
fn actor_is_checked() {
    let t = temp_store();
    assert!(
        t.store
            .with_actor(&"a".repeat(keyward::MAX_ACTOR_LEN + 1))
            .is_err()
    );
    assert!(t.store.with_actor("bad\nactor").is_err());
    assert_eq!(t.store.with_actor("").unwrap().actor(), None);
}

#[test]
fn no_secret_or_digest_in_any_event_or_in_the_audit_table() {
    let t = temp_store();
    let store = t.store.with_actor("alice").unwrap();
    let mut keys = Vec::new();
    let mut secrets = Vec::new();
    let a = store.create(new_key("acct", &["read"])).unwrap();
    let rotated = store.rotate(a.id(), Duration::ZERO).unwrap();
    let imported = store.import_many(vec![new_key("acct", &[])]).unwrap();
    for c in [&a, &rotated, &imported[0]] {
        keys.push(c.key().to_owned());
        secrets.push(c.secret().to_owned());
    }
    let json = serde_json::to_string(&all_events(&t.store)).unwrap();
    for (key, secret) in keys.iter().zip(&secrets) {
        assert!(!json.contains(secret.as_str()), "secret in an event");
        assert!(!json.contains(key.as_str()));
    }
    assert!(!json.contains("digest"));
    drop(store);
    t.store.flush().unwrap();
    let bytes = std::fs::read(&t.path).unwrap();
    for secret in &secrets {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
}

#[test]
fn a_format_1_store_without_the_audit_table_opens_and_starts_logging() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1");
    for name in ["keys.redb", "pepper"] {
        std::fs::copy(fixture.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::set_permissions(
        dir.path().join("pepper"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let options = keyward::StoreOptions {
        pepper: keyward::PepperSource::File(dir.path().join("pepper")),
        flush_interval: Duration::ZERO,
        ..keyward::StoreOptions::default()
    };
    let store = Store::open_unshared(dir.path().join("keys.redb"), options).unwrap();
    assert!(all_events(&store).is_empty());
    let created = store
        .with_actor("m")
        .unwrap()
        .create(new_key("acct", &[]))
        .unwrap();
    let events = all_events(&store);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key_id.as_deref(), Some(created.id()));
}
