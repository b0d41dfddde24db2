//! Reliability: injected I/O faults at every operation, damaged and hostile files, and
//! property tests of the parsers and of the store against an in-memory model.
//! (Crash loops and the long multi-process run are in tests/multiprocess.)

mod common;

use std::collections::HashMap;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use keyward::{
    Concurrency, ErrorCode, KeyUpdate, NewKey, Pepper, PepperSource, Reason, Store, StoreOptions,
    extract_credential, parse_key,
};
use proptest::prelude::*;
use std::sync::RwLock;

// ------------------------------------------------------------------ fault injection

/// Which storage operation a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Sync,
    SetLen,
}

/// When and how the k-th operation of one kind fails.
#[derive(Debug)]
struct FaultPlan {
    op: Op,
    fail_at: u64,
    persistent: bool,
    enospc: bool,
    seen: AtomicU64,
    fired: AtomicBool,
}

impl FaultPlan {
    fn check(&self, op: Op) -> io::Result<()> {
        if op != self.op {
            return Ok(());
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = if self.persistent {
            n >= self.fail_at
        } else {
            n == self.fail_at
        };
        if !fail {
            return Ok(());
        }
        self.fired.store(true, Ordering::SeqCst);
        Err(if self.enospc {
            io::Error::from_raw_os_error(libc::ENOSPC)
        } else {
            io::Error::other(format!("injected {op:?} fault #{n}"))
        })
    }
}

/// In-memory storage whose bytes outlive the database, with an optional fault plan.
#[derive(Debug, Clone, Default)]
struct MemStorage {
    bytes: Arc<RwLock<Vec<u8>>>,
}

#[derive(Debug)]
struct FaultyBackend {
    storage: MemStorage,
    plan: Option<Arc<FaultPlan>>,
}

impl FaultyBackend {
    fn check(&self, op: Op) -> io::Result<()> {
        match &self.plan {
            Some(plan) => plan.check(op),
            None => Ok(()),
        }
    }
}

impl redb::StorageBackend for FaultyBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.storage.bytes.read().unwrap().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.check(Op::Read)?;
        let bytes = self.storage.bytes.read().unwrap();
        let start = offset as usize;
        let source = bytes
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check(Op::SetLen)?;
        self.storage.bytes.write().unwrap().resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check(Op::Sync)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(Op::Write)?;
        let mut bytes = self.storage.bytes.write().unwrap();
        let start = offset as usize;
        if bytes.len() < start + data.len() {
            bytes.resize(start + data.len(), 0);
        }
        bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// What the workload has been told succeeded.
#[derive(Default, Debug)]
struct Model {
    /// id → (full key, revoked, name, rotated_to)
    keys: HashMap<String, (String, bool, String, Option<String>)>,
    flushed_uses: HashMap<String, u64>,
    /// The key a failed call was changing: a commit that fails may still have landed
    /// (redb: "may already have become durable"), so either state is right for it.
    in_flight: Option<String>,
    /// Whether the suspension of owner `acct_owner` was acknowledged.
    owner_suspended: bool,
}

fn workload(store: &Store, model: &mut Model) -> keyward::Result<()> {
    let mut ids = Vec::new();
    for i in 0..3 {
        let created = store.create(NewKey {
            owner: "acct".into(),
            name: format!("k{i}"),
            scopes: vec!["read".into()],
            ..NewKey::default()
        })?;
        model.keys.insert(
            created.id().into(),
            (created.key().into(), false, format!("k{i}"), None),
        );
        ids.push(created.id().to_owned());
    }
    for id in &ids {
        let key = model.keys[id].0.clone();
        for _ in 0..3 {
            assert!(store.verify(&key, &["read"])?.is_valid());
        }
    }
    store.flush()?;
    for id in &ids {
        *model.flushed_uses.entry(id.clone()).or_default() += 3;
    }
    model.in_flight = Some(ids[0].clone());
    store.update(
        &ids[0],
        KeyUpdate {
            name: Some("renamed".into()),
            ..KeyUpdate::default()
        },
    )?;
    model.keys.get_mut(&ids[0]).unwrap().2 = "renamed".into();
    model.in_flight = Some(ids[1].clone());
    store.revoke(&ids[1], Some("fault test"))?;
    model.keys.get_mut(&ids[1]).unwrap().1 = true;
    model.in_flight = Some(ids[2].clone());
    let rotated = store.rotate(&ids[2], Duration::ZERO)?;
    model.in_flight = None;
    model.keys.get_mut(&ids[2]).unwrap().3 = Some(rotated.id().into());
    model.keys.insert(
        rotated.id().into(),
        (rotated.key().into(), false, "k2".into(), None),
    );
    let key = model.keys[rotated.id()].0.clone();
    assert!(store.verify(&key, &["read"])?.is_valid());
    store.flush()?;
    *model.flushed_uses.entry(rotated.id().into()).or_default() += 1;
    // An owner change (an owner without keys, so the checks above stand).
    store.suspend_owner("acct_owner", Some("fault test"))?;
    model.owner_suspended = true;
    Ok(())
}

fn fault_options(dir: &std::path::Path, pepper: &Pepper) -> (std::path::PathBuf, StoreOptions) {
    (
        dir.join("faulty.redb"),
        StoreOptions {
            concurrency: Concurrency::SingleProcess,
            pepper: PepperSource::Bytes(pepper.clone()),
            flush_interval: Duration::ZERO,
            ..StoreOptions::default()
        },
    )
}

/// Checks a store reopened over healthy storage against what was acknowledged.
fn check_against_model(store: &Store, model: &Model) {
    for (id, (key, revoked, name, rotated_to)) in &model.keys {
        let info = store
            .get(id)
            .unwrap_or_else(|e| panic!("acknowledged key {id} lost: {e}"));
        if model.in_flight.as_ref() == Some(id) {
            continue;
        }
        assert_eq!(&info.name, name);
        let reason = store.verify(key, &["read"]).unwrap().reason;
        if *revoked {
            assert_eq!(reason, Reason::Revoked);
        } else if let Some(successor) = rotated_to {
            assert_eq!(info.rotated_to.as_ref(), Some(successor));
            assert_ne!(reason, Reason::Valid);
        } else {
            assert_eq!(reason, Reason::Valid, "key {id}");
        }
    }
    for (id, uses) in &model.flushed_uses {
        // The failed step may have been a flush that landed; never fewer than acknowledged.
        let stored = store.usage(id).unwrap().uses;
        assert!(stored >= *uses, "{id}: {stored} < {uses}");
    }
    // Nothing half there: every key record has its owner-index entry and vice versa.
    let all = store.all_keys().unwrap();
    let listed = store
        .list(
            "acct",
            keyward::ListOptions {
                limit: 1000,
                ..keyward::ListOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        all.len(),
        listed.keys.len(),
        "keys table and owner index disagree"
    );
    assert!(all.len() >= model.keys.len());
    if model.owner_suspended {
        assert!(store.owner("acct_owner").unwrap().is_suspended());
    }
    check_audit_matches_state(store, &all);
}

/// The audit log holds an event exactly for each change that committed: every key was
/// created by a logged create or rotation, and was renamed, revoked or rotated iff an
/// event says so; no event names a change that is not in the store.
fn check_audit_matches_state(store: &Store, all: &[keyward::KeyInfo]) {
    use keyward::AuditAction;
    let events = store
        .audit(&keyward::AuditQuery {
            limit: 1000,
            ..keyward::AuditQuery::default()
        })
        .unwrap()
        .events;
    let count = |id: &str, pred: &dyn Fn(&keyward::AuditEvent) -> bool| {
        events
            .iter()
            .filter(|e| e.key_id.as_deref() == Some(id) && pred(e))
            .count()
    };
    for info in all {
        let id = info.id.as_str();
        let born = count(id, &|e| {
            e.action == AuditAction::Create
                || (e.action == AuditAction::Rotate && e.changed == ["rotated_from"])
        });
        assert_eq!(born, 1, "{id}: creation events");
        let renamed = count(id, &|e| e.action == AuditAction::Update);
        assert_eq!(
            renamed,
            usize::from(info.name == "renamed"),
            "{id}: update events"
        );
        let revoked = count(id, &|e| e.action == AuditAction::Revoke);
        assert_eq!(revoked, usize::from(info.revoked_at.is_some()), "{id}");
        let rotated = count(id, &|e| {
            e.action == AuditAction::Rotate && e.changed != ["rotated_from"]
        });
        assert_eq!(rotated, usize::from(info.rotated_to.is_some()), "{id}");
        assert!(
            events
                .iter()
                .all(|e| e.actor.as_deref() == Some("fault-test"))
        );
    }
    // The owner change: its event exists exactly when it committed.
    let suspended = store
        .owners()
        .unwrap()
        .iter()
        .any(|o| o.owner == "acct_owner" && o.is_suspended());
    let suspends = events
        .iter()
        .filter(|e| e.action == AuditAction::OwnerSuspend)
        .count();
    assert_eq!(suspends, usize::from(suspended), "owner_suspend events");
    for event in events
        .iter()
        .filter(|e| e.action != AuditAction::OwnerSuspend)
    {
        let id = event.key_id.as_deref().unwrap();
        assert!(
            all.iter().any(|k| k.id == id),
            "event for a key never committed: {event:?}"
        );
    }
}

#[test]
fn every_injected_fault_is_an_error_and_loses_nothing_acknowledged() {
    let pepper = Pepper::generate();
    let mut injected = 0;
    let mut summary = Vec::new();
    for op in [Op::Write, Op::Sync, Op::SetLen, Op::Read] {
        for persistent in [false, true] {
            let mut k = 1;
            loop {
                let dir = tempfile::tempdir().unwrap();
                let (path, options) = fault_options(dir.path(), &pepper);
                let storage = MemStorage::default();
                let plan = Arc::new(FaultPlan {
                    op,
                    fail_at: k,
                    persistent,
                    enospc: k % 2 == 0,
                    seen: AtomicU64::new(0),
                    fired: AtomicBool::new(false),
                });
                let backend = FaultyBackend {
                    storage: storage.clone(),
                    plan: Some(plan.clone()),
                };
                let mut model = Model::default();
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    let store = Store::open_with_backend(&path, backend, options.clone())?;
                    let result = workload(&store.with_actor("fault-test")?, &mut model);
                    drop(store);
                    result
                }));
                let result = outcome.unwrap_or_else(|_| {
                    panic!("panic with {op:?} fault #{k} (persistent {persistent})")
                });
                if !plan.fired.load(Ordering::SeqCst) {
                    result.unwrap();
                    summary.push(format!(
                        "{op:?}/{}: {} points",
                        if persistent { "persistent" } else { "once" },
                        k - 1
                    ));
                    break;
                }
                injected += 1;
                // The fault must surface as an error, unless redb absorbed it (a failed read
                // retried from cache, say) and the workload still completed correctly.
                let healthy = FaultyBackend {
                    storage,
                    plan: None,
                };
                match Store::open_with_backend(&path, healthy, options.clone()) {
                    Ok(store) => check_against_model(&store, &model),
                    Err(e) => {
                        // Only acceptable when nothing was acknowledged yet (the very first
                        // commit, creating the store, failed).
                        assert!(
                            model.keys.is_empty(),
                            "{op:?} fault #{k}: cannot reopen: {e}"
                        );
                    }
                }
                k += 1;
                assert!(k < 5000, "the workload never completes");
            }
        }
    }
    println!(
        "fault injection: {injected} faults injected; {}",
        summary.join(", ")
    );
    assert!(injected > 100);
}

// ------------------------------------------------------------------ damaged files

fn populated_store() -> (common::TempStore, Vec<keyward::CreatedKey>) {
    let t = common::temp_store();
    let created = t
        .store
        .create_many(
            (0..200)
                .map(|i| common::new_key(&format!("acct_{i}"), &["read"]))
                .collect(),
        )
        .unwrap();
    t.store.revoke(created[0].id(), None).unwrap();
    (t, created)
}

#[test]
fn truncated_files_give_a_typed_error() {
    let (t, _created) = populated_store();
    let path = t.path.clone();
    let clock = t.clock.clone();
    drop(t.store);
    let original = std::fs::read(&path).unwrap();
    for keep in [
        0usize,
        100,
        511,
        4096,
        original.len() / 2,
        original.len() - 1,
    ] {
        std::fs::write(&path, &original[..keep]).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            Store::open_unshared(&path, common::options(&clock))
        }))
        .unwrap_or_else(|_| panic!("panic opening a file truncated to {keep} bytes"));
        match result {
            // An empty file is a new store: that is what redb does with it.
            Ok(store) => assert!(
                keep == 0 && store.all_keys().unwrap().is_empty(),
                "truncated to {keep} bytes but opened"
            ),
            Err(e) => assert!(
                matches!(e.code(), ErrorCode::Corrupt | ErrorCode::Storage),
                "truncated to {keep}: {e}"
            ),
        }
    }
}

#[test]
fn flipped_bytes_never_give_a_wrong_answer_or_a_panic() {
    let (t, created) = populated_store();
    let path = t.path.clone();
    let clock = t.clock.clone();
    drop(t.store);
    let original = std::fs::read(&path).unwrap();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut refused, mut opened, mut opened_from_table) = (0, 0, 0);
    let table = {
        let mut name = path.as_os_str().to_owned();
        name.push(".kwtable");
        std::path::PathBuf::from(name)
    };
    for trial in 0..60 {
        let mut damaged = original.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() % damaged.len() as u64) as usize;
            damaged[at] ^= 1 << (next() % 8);
        }
        std::fs::write(&path, &damaged).unwrap();
        // Twice per damaged file: with the shared verify table of an earlier open present (the
        // open then need not read every key, and verdicts come from the table), and with it
        // removed (the open rebuilds it from the damaged database, reading every key).
        for with_table in [true, false] {
            if !with_table {
                let _ = std::fs::remove_file(&table);
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let store = match Store::open_unshared(&path, common::options(&clock)) {
                    Ok(store) => store,
                    Err(e) => {
                        assert!(
                            matches!(e.code(), ErrorCode::Corrupt | ErrorCode::Storage),
                            "{e}"
                        );
                        return false;
                    }
                };
                // If it opened, every answer must be right (or an error, never a wrong verdict).
                for (i, key) in created.iter().enumerate() {
                    if let Ok(verdict) = store.verify(key.key(), &["read"]) {
                        let want = if i == 0 {
                            Reason::Revoked
                        } else {
                            Reason::Valid
                        };
                        assert_eq!(verdict.reason, want, "trial {trial}: key {i}");
                    }
                }
                true
            }));
            match outcome {
                Ok(true) if with_table => opened_from_table += 1,
                Ok(true) => opened += 1,
                Ok(false) => refused += 1,
                Err(_) => panic!("panic on damaged file, trial {trial}"),
            }
        }
    }
    println!("flipped bytes, table present: {opened_from_table} opened with right answers");
    println!(
        "flipped bytes, table rebuilt or absent: {refused} refused at open, {opened} opened with right answers"
    );
    // The damage was real and both outcomes were reached (the seed is fixed): a run in which
    // nothing opened would have checked no verdict at all.
    assert!(refused > 0, "no damaged file was refused");
    assert!(
        opened > 0,
        "no damaged file opened, so no verdict was checked"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    std::fs::write(&path, b"PK\x03\x04 this is a zip file, not a key store").unwrap();
    let err = Store::open_unshared(
        &path,
        StoreOptions {
            pepper: PepperSource::Bytes(Pepper::generate()),
            ..StoreOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
}

// ------------------------------------------------------------------ property tests

/// Cases per property: `PROPTEST_CASES` when set (the long runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// The key parser never panics, and what it accepts re-formats to the same text.
    #[test]
    fn key_parser_total(text in ".{0,120}") {
        if let Ok(parsed) = parse_key(&text, None) {
            let again = keyward::format_key(&parsed.prefix, parsed.env.as_deref(), &parsed.id, &parsed.secret);
            prop_assert_eq!(again.as_str(), text.as_str());
        }
    }

    /// Single-character edits of a valid key are always refused (the CRC catches them).
    #[test]
    fn key_edits_are_refused(pos in 0usize..86, replacement in "[0-9A-Za-z_]") {
        let id = keyward::KeyId::parse("a0B1c2D3e4F5g6H7").unwrap();
        let secret = keyward::Secret::parse("Qw8rT2yU4iO6pA1sD3fG5hJ7kL9zX0cV").unwrap();
        let key = keyward::format_key("kw", Some("live"), &id, &secret);
        let pos = pos % key.len();
        let mut bytes = key.as_bytes().to_vec();
        let new = replacement.as_bytes()[0];
        prop_assume!(bytes[pos] != new);
        bytes[pos] = new;
        let edited = String::from_utf8(bytes).unwrap();
        prop_assert!(parse_key(&edited, Some("kw")).is_err());
    }

    /// The credential parser never panics on arbitrary headers.
    #[test]
    fn credential_parser_total(headers in proptest::collection::vec(("[A-Za-z-]{0,24}", ".{0,80}"), 0..6)) {
        let _ = extract_credential(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    }
}

#[derive(Debug, Clone)]
enum Action {
    Create(u8),
    Verify(u8),
    Revoke(u8),
    Rotate(u8),
    Rescope(u8),
    Delete(u8),
    Flush,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => any::<u8>().prop_map(Action::Create),
        6 => any::<u8>().prop_map(Action::Verify),
        1 => any::<u8>().prop_map(Action::Revoke),
        1 => any::<u8>().prop_map(Action::Rotate),
        1 => any::<u8>().prop_map(Action::Rescope),
        1 => any::<u8>().prop_map(Action::Delete),
        1 => Just(Action::Flush),
    ]
}

#[derive(Debug, Clone)]
struct ModelKey {
    key: String,
    id: String,
    scoped: bool,
    state: Reason,
    uses: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(24)))]

    /// Random sequences of store operations, through two stores on one file, agree with a
    /// simple in-memory model — verdicts and use counts.
    #[test]
    fn store_matches_model(actions in proptest::collection::vec(action(), 1..40)) {
        let t = common::temp_store();
        let other = Store::open_unshared(&t.path, common::options(&t.clock)).unwrap();
        let mut model: Vec<ModelKey> = Vec::new();
        for (step, action) in actions.iter().enumerate() {
            let via = if step % 2 == 0 { &t.store } else { &other };
            let pick = |n: &u8, model: &Vec<ModelKey>| (!model.is_empty()).then(|| *n as usize % model.len());
            match action {
                Action::Create(n) => {
                    let scoped = n % 2 == 0;
                    let c = via.create(common::new_key("acct", if scoped { &["read"] } else { &[] })).unwrap();
                    model.push(ModelKey { key: c.key().into(), id: c.id().into(), scoped, state: Reason::Valid, uses: 0 });
                }
                Action::Verify(n) => if let Some(i) = pick(n, &model) {
                    let k = &mut model[i];
                    let got = via.verify(&k.key, &["read"]).unwrap().reason;
                    let want = match k.state {
                        Reason::Valid if !k.scoped => Reason::InsufficientScope,
                        s => s,
                    };
                    prop_assert_eq!(got, want);
                    if got == Reason::Valid { k.uses += 1; }
                },
                Action::Revoke(n) => if let Some(i) = pick(n, &model) {
                    let k = &mut model[i];
                    if k.state != Reason::NotFound {
                        via.revoke(&k.id, None).unwrap();
                        // Revoked takes precedence over expired.
                        k.state = Reason::Revoked;
                    }
                },
                Action::Rotate(n) => if let Some(i) = pick(n, &model)
                    && model[i].state == Reason::Valid
                {
                    let c = via.rotate(&model[i].id, Duration::ZERO).unwrap();
                    model[i].state = Reason::Expired;
                    let scoped = model[i].scoped;
                    model.push(ModelKey { key: c.key().into(), id: c.id().into(), scoped, state: Reason::Valid, uses: 0 });
                    t.clock.advance(Duration::from_millis(1));
                },
                Action::Rescope(n) => if let Some(i) = pick(n, &model) {
                    let k = &mut model[i];
                    if k.state != Reason::NotFound {
                        k.scoped = !k.scoped;
                        let scopes = if k.scoped { vec!["read".to_string()] } else { vec![] };
                        via.update(&k.id, KeyUpdate { scopes: Some(scopes), ..KeyUpdate::default() }).unwrap();
                    }
                },
                Action::Delete(n) => if let Some(i) = pick(n, &model) {
                    let k = &mut model[i];
                    if k.state != Reason::NotFound {
                        via.delete(&k.id).unwrap();
                        k.state = Reason::NotFound;
                    }
                },
                Action::Flush => {
                    t.store.flush().unwrap();
                    other.flush().unwrap();
                }
            }
        }
        t.store.flush().unwrap();
        other.flush().unwrap();
        for k in &model {
            if k.state != Reason::NotFound {
                prop_assert_eq!(t.store.usage(&k.id).unwrap().uses, k.uses);
            }
        }
    }
}
