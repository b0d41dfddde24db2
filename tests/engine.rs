//! The engine's behaviour, item by item: opening and its errors, the pepper, create, verify,
//! management, policies, the verify index and cross-store invalidation, usage and credits.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{new_key, temp_store, temp_store_with};
use keyward::{
    Concurrency, Day, Error, ErrorCode, KeyUpdate, ListOptions, NewCredits, NewKey, Pepper,
    PepperSource, Policies, Reason, Refill, RefillInterval, StateFilter, Store, StoreOptions,
    Timestamp, VerifyRequest,
};

// ---------------------------------------------------------------- opening and its errors

#[test]
fn missing_directory_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_unshared(dir.path().join("nope/keys.redb"), StoreOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::DirectoryMissing { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn single_process_store_refuses_a_second_opener() {
    let t = temp_store_with(|o| o.concurrency = Concurrency::SingleProcess);
    let err = Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Locked, "{err}");
}

#[test]
fn multi_process_stores_share_the_file() {
    let t = temp_store();
    let second = Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap();
    let created = t.store.create(new_key("acct", &[])).unwrap();
    assert_eq!(
        second.verify(created.key(), &[]).unwrap().reason,
        Reason::Valid
    );
}

#[test]
fn garbage_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
    let pepper = Pepper::generate();
    let err = Store::open_unshared(
        &path,
        StoreOptions {
            pepper: PepperSource::Bytes(pepper),
            ..StoreOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
}

#[test]
fn wrong_pepper_is_reported_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let opts = |p: Pepper| StoreOptions {
        pepper: PepperSource::Bytes(p),
        flush_interval: Duration::ZERO,
        ..StoreOptions::default()
    };
    let store = Store::open_unshared(&path, opts(Pepper::generate())).unwrap();
    store.create(new_key("acct", &[])).unwrap();
    drop(store);
    let err = Store::open_unshared(&path, opts(Pepper::generate())).unwrap_err();
    assert!(matches!(err, Error::WrongPepper), "{err}");
}

#[test]
fn newer_format_is_refused() {
    let t = temp_store();
    let path = t.path.clone();
    drop(t.store);
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
            let mut meta = txn.open_table(def).unwrap();
            // The record is the version followed by its CRC32.
            let mut record = 99u32.to_le_bytes().to_vec();
            record.extend_from_slice(&crc32fast::hash(&record).to_le_bytes());
            meta.insert("format_version", record.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = Store::open_unshared(&path, common::options(&t.clock)).unwrap_err();
    assert!(matches!(err, Error::NewerFormat { found: 99, .. }), "{err}");
}

#[test]
fn default_pepper_file_is_private_and_required_once_the_store_exists() {
    let t = temp_store();
    let pepper_path = keyward::default_pepper_path(&t.path.clone());
    let mode = std::fs::metadata(&pepper_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    drop(t.store);

    // World-readable: refused like ssh refuses a readable private key.
    std::fs::set_permissions(&pepper_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PepperPermissions, "{err}");

    // Wrong length.
    std::fs::set_permissions(&pepper_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let good = std::fs::read(&pepper_path).unwrap();
    std::fs::write(&pepper_path, b"0123").unwrap();
    let err = Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PepperInvalid, "{err}");

    // Missing: never silently regenerated for an existing store.
    std::fs::remove_file(&pepper_path).unwrap();
    let err = Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PepperMissing, "{err}");

    std::fs::write(&pepper_path, good).unwrap();
    std::fs::set_permissions(&pepper_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap();
}

#[test]
fn explicit_pepper_file_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let pepper_file = dir.path().join("pepper.hex");
    std::fs::write(&pepper_file, "ab".repeat(32) + "\n").unwrap();
    std::fs::set_permissions(&pepper_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let opts = StoreOptions {
        pepper: PepperSource::File(pepper_file.clone()),
        prefix: Some("acme".into()),
        flush_interval: Duration::ZERO,
        ..StoreOptions::default()
    };
    let store = Store::open_unshared(dir.path().join("k.redb"), opts.clone()).unwrap();
    let created = store.create(new_key("a", &[])).unwrap();
    assert!(created.key().starts_with("acme_live_"));
    assert_eq!(
        store.verify(created.key(), &[]).unwrap().reason,
        Reason::Valid
    );
    // A kw_ key is malformed for this store.
    let foreign = created.key().replacen("acme", "kw", 1);
    assert_eq!(
        store.verify(&foreign, &[]).unwrap().reason,
        Reason::Malformed
    );
    drop(store);
    let err = Store::open_unshared(
        dir.path().join("k.redb"),
        StoreOptions {
            prefix: Some("other".into()),
            ..opts
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigMismatch);
}

#[test]
fn read_only_database_is_a_typed_error() {
    let t = temp_store();
    let path = t.path.clone();
    drop(t.store);
    // SAFETY: plain system call.
    if unsafe { libc::geteuid() } != 0 {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let result = Store::open_unshared(&path, common::options(&t.clock));
        assert_eq!(result.unwrap_err().code(), ErrorCode::ReadOnly);
        return;
    }
    // As root (CI runs as root, and root ignores file modes) the open runs in a child that
    // has dropped to an unprivileged user: the store is created by that user, made read-only,
    // and opened again.
    const NOBODY: u32 = 65_534;
    let dir = t.dir.path().join("unprivileged");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let db = dir.join("keys.redb");
    let clock = t.clock.clone();
    // SAFETY: the child only drops privileges, makes keyward and file-system calls, and ends
    // with `_exit`; the parent waits for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: plain system calls; the group first, while we may still change it.
            let dropped = unsafe { libc::setgid(NOBODY) == 0 && libc::setuid(NOBODY) == 0 };
            assert!(dropped, "cannot drop privileges");
            assert!(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/etc/passwd")
                    .is_err()
            );
            let store = Store::open_unshared(&db, common::options(&clock)).unwrap();
            store.create(new_key("acct", &[])).unwrap();
            drop(store);
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
            let error = Store::open_unshared(&db, common::options(&clock)).unwrap_err();
            assert_eq!(error.code(), ErrorCode::ReadOnly, "{error}");
        }))
        .map_or(1, |()| 0);
        // SAFETY: ends the child without running the test harness's exit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the unprivileged child failed (status {status})"
    );
}

// ---------------------------------------------------------------- create and verify

#[test]
fn create_returns_the_key_once_and_verify_returns_public_fields() {
    let t = temp_store();
    let mut new = new_key("acct_1", &["write", "read", "read"]);
    new.metadata = br#"{"plan":"pro"}"#.to_vec();
    new.expires_at = Some(Timestamp::from_millis(t.clock.now_ms() + 3_600_000));
    let created = t.store.create(new).unwrap();
    assert!(created.key().starts_with("kw_live_"));
    assert_eq!(
        created.info.scopes,
        vec!["read", "write"],
        "sorted, deduplicated"
    );
    assert!(!format!("{created:?}").contains(created.secret()));

    let verdict = t.store.verify(created.key(), &["read"]).unwrap();
    assert_eq!(verdict.reason, Reason::Valid);
    let info = verdict.key.unwrap();
    assert_eq!(info.id, created.id());
    assert_eq!(info.owner, "acct_1");
    assert_eq!(info.env.as_deref(), Some("live"));
    assert_eq!(info.metadata, br#"{"plan":"pro"}"#);
    assert!(info.expires_at.is_some());

    let pair = t
        .store
        .verify_pair(created.id(), created.secret(), &["write"])
        .unwrap();
    assert_eq!(pair.reason, Reason::Valid);
    // The full key is accepted as the secret of a pair too, when the ids agree.
    let pair_full = t
        .store
        .verify_pair(created.id(), created.key(), &[])
        .unwrap();
    assert_eq!(pair_full.reason, Reason::Valid);
}

#[test]
fn refusals_carry_no_key_details_when_the_secret_is_wrong() {
    let t = temp_store();
    let created = t.store.create(new_key("acct", &[])).unwrap();
    let mut secret = created.secret().to_owned();
    secret.replace_range(0..1, if secret.starts_with('x') { "y" } else { "x" });
    let verdict = t.store.verify_pair(created.id(), &secret, &[]).unwrap();
    assert_eq!(verdict.reason, Reason::NotFound);
    assert!(verdict.key.is_none());
    assert_eq!(
        t.store.verify("nonsense", &[]).unwrap().reason,
        Reason::Malformed
    );
    let huge = "k".repeat(10_000);
    assert_eq!(
        t.store.verify(&huge, &[]).unwrap().reason,
        Reason::Malformed
    );
}

#[test]
fn env_tag_is_part_of_the_key() {
    let t = temp_store();
    let created = t.store.create(new_key("acct", &[])).unwrap();
    // Same id and secret, env swapped, checksum recomputed: not this key.
    let parsed = keyward::parse_key(created.key(), None).unwrap();
    let body_start = created.key().len() - keyward::BODY_LEN;
    let head = format!(
        "kw_test_{}",
        &created.key()[body_start..created.key().len() - 6]
    );
    let forged = format!("{head}{}", keyward::encode_checksum(crc32fast_hash(&head)));
    assert_eq!(parsed.env.as_deref(), Some("live"));
    assert_eq!(
        t.store.verify(&forged, &[]).unwrap().reason,
        Reason::NotFound
    );
}

fn crc32fast_hash(text: &str) -> u32 {
    // The same CRC-32 (IEEE) the key format uses, computed bit by bit here as a cross-check.
    let mut crc = 0xFFFF_FFFFu32;
    for b in text.bytes() {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn input_limits_are_enforced() {
    let t = temp_store();
    let mut new = new_key("acct", &[]);
    new.metadata = vec![0; 4097];
    assert_eq!(t.store.create(new).unwrap_err().code(), ErrorCode::TooLong);
    let mut new = new_key("acct", &[]);
    new.env = Some("LIVE".into());
    assert_eq!(
        t.store.create(new).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    let new = new_key("", &[]);
    assert_eq!(
        t.store.create(new).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    let new = new_key(&"o".repeat(129), &[]);
    assert_eq!(t.store.create(new).unwrap_err().code(), ErrorCode::TooLong);
    let new = new_key("acct", &["has space"]);
    assert_eq!(
        t.store.create(new).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    let many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
    let new = NewKey {
        owner: "a".into(),
        scopes: many,
        ..NewKey::default()
    };
    assert_eq!(t.store.create(new).unwrap_err().code(), ErrorCode::TooLong);
    assert_eq!(
        t.store.get("not an id").unwrap_err().code(),
        ErrorCode::NotFound
    );
}

#[test]
fn a_thousand_secrets_never_reach_the_database_file() {
    use base64::Engine as _;
    let t = temp_store();
    let batch: Vec<NewKey> = (0..1000)
        .map(|i| new_key(&format!("acct_{i}"), &["read"]))
        .collect();
    let created = t.store.create_many(batch).unwrap();
    assert_eq!(created.len(), 1000);
    let path = t.path.clone();
    drop(t.store);
    let bytes = std::fs::read(&path).unwrap();
    // One pass over the file: index every 8-byte window, then confirm candidates.
    let windows: std::collections::HashSet<[u8; 8]> =
        bytes.windows(8).map(|w| w.try_into().unwrap()).collect();
    let contains = |needle: &[u8]| {
        let head: [u8; 8] = needle[..8].try_into().unwrap();
        windows.contains(&head) && bytes.windows(needle.len()).any(|w| w == needle)
    };
    for key in &created {
        let secret = key.secret().as_bytes();
        assert!(!contains(secret), "secret found in plain text");
        assert!(!contains(&secret[..16]), "half a secret found");
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        assert!(!contains(b64.as_bytes()), "secret found in base64");
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!contains(hex.as_bytes()), "secret found in hex");
    }
    // The ids are public and are stored: the scan can see what is there.
    assert!(contains(created[0].id().as_bytes()));
}

// ---------------------------------------------------------------- management and policies

#[test]
fn list_is_paged_in_creation_order_and_filters_state() {
    let t = temp_store();
    let ids: Vec<String> = (0..7)
        .map(|_| {
            t.store
                .create(new_key("acct", &[]))
                .unwrap()
                .id()
                .to_owned()
        })
        .collect();
    t.store.create(new_key("someone_else", &[])).unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = t
            .store
            .list(
                "acct",
                ListOptions {
                    after,
                    limit: 3,
                    state: StateFilter::All,
                },
            )
            .unwrap();
        seen.extend(page.keys.iter().map(|k| k.id.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    t.store.revoke(&ids[2], Some("leaked")).unwrap();
    let revoked = t
        .store
        .list(
            "acct",
            ListOptions {
                state: StateFilter::Revoked,
                ..ListOptions::default()
            },
        )
        .unwrap();
    assert_eq!(revoked.keys.len(), 1);
    assert_eq!(revoked.keys[0].revoke_reason.as_deref(), Some("leaked"));
    let active = t
        .store
        .list(
            "acct",
            ListOptions {
                state: StateFilter::Active,
                ..ListOptions::default()
            },
        )
        .unwrap();
    assert_eq!(active.keys.len(), 6);
    assert!(
        t.store
            .list(
                "acct",
                ListOptions {
                    limit: 0,
                    ..ListOptions::default()
                }
            )
            .is_err()
    );
}

#[test]
fn update_changes_what_verify_sees() {
    let t = temp_store();
    let created = t.store.create(new_key("acct", &["read"])).unwrap();
    assert_eq!(
        t.store.verify(created.key(), &["write"]).unwrap().reason,
        Reason::InsufficientScope
    );
    let info = t
        .store
        .update(
            created.id(),
            KeyUpdate {
                name: Some("renamed".into()),
                scopes: Some(vec!["write".into()]),
                metadata: Some(b"m".to_vec()),
                expires_at: Some(Some(Timestamp::from_millis(t.clock.now_ms() + 1000))),
                credits: None,
                rate_limit: None,
            },
        )
        .unwrap();
    assert_eq!(info.name, "renamed");
    assert_eq!(
        t.store.verify(created.key(), &["write"]).unwrap().reason,
        Reason::Valid
    );
    assert_eq!(
        t.store.verify(created.key(), &["read"]).unwrap().reason,
        Reason::InsufficientScope
    );
    t.clock.advance(Duration::from_secs(2));
    assert_eq!(
        t.store.verify(created.key(), &["write"]).unwrap().reason,
        Reason::Expired
    );
    t.store
        .update(
            created.id(),
            KeyUpdate {
                expires_at: Some(None),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        t.store.verify(created.key(), &["write"]).unwrap().reason,
        Reason::Valid
    );
    assert_eq!(t.store.get(created.id()).unwrap().metadata, b"m");
}

#[test]
fn revoke_is_irreversible_and_recorded() {
    let t = temp_store();
    let created = t.store.create(new_key("acct", &[])).unwrap();
    let info = t.store.revoke(created.id(), Some("rotated out")).unwrap();
    assert_eq!(info.revoked_at, Some(t.clock.now_ms()));
    assert_eq!(info.revoke_reason.as_deref(), Some("rotated out"));
    assert_eq!(
        t.store.verify(created.key(), &[]).unwrap().reason,
        Reason::Revoked
    );
    // Revoking again changes nothing; updating does not bring it back.
    t.clock.advance(Duration::from_secs(5));
    let again = t.store.revoke(created.id(), None).unwrap();
    assert_eq!(again.revoked_at, info.revoked_at);
    t.store
        .update(
            created.id(),
            KeyUpdate {
                expires_at: Some(None),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        t.store.verify(created.key(), &[]).unwrap().reason,
        Reason::Revoked
    );
    assert!(t.store.rotate(created.id(), Duration::ZERO).is_err());
}

#[test]
fn delete_forgets_the_key() {
    let t = temp_store();
    let created = t.store.create(new_key("acct", &[])).unwrap();
    t.store.verify(created.key(), &[]).unwrap();
    t.store.flush().unwrap();
    t.store.delete(created.id()).unwrap();
    assert_eq!(
        t.store.verify(created.key(), &[]).unwrap().reason,
        Reason::NotFound
    );
    assert_eq!(
        t.store.get(created.id()).unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        t.store.usage(created.id()).unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        t.store.delete(created.id()).unwrap_err().code(),
        ErrorCode::NotFound
    );
}

#[test]
fn rotate_inherits_and_links_both_keys() {
    let t = temp_store();
    let mut new = new_key("acct", &["read", "write"]);
    new.metadata = b"meta".to_vec();
    new.expires_at = Some(Timestamp::from_millis(t.clock.now_ms() + 10 * 86_400_000));
    let old = t.store.create(new).unwrap();
    t.clock.advance(Duration::from_secs(86_400));
    let rotated = t
        .store
        .rotate(old.id(), keyward::DEFAULT_ROTATION_GRACE)
        .unwrap();
    assert_ne!(rotated.key(), old.key());
    let new_info = t.store.get(rotated.id()).unwrap();
    assert_eq!(new_info.owner, "acct");
    assert_eq!(new_info.scopes, vec!["read", "write"]);
    assert_eq!(new_info.metadata, b"meta");
    assert_eq!(new_info.env.as_deref(), Some("live"));
    assert_eq!(new_info.rotated_from.as_deref(), Some(old.id()));
    // Same lifetime length, counted from the rotation.
    assert_eq!(
        new_info.expires_at,
        Some(t.clock.now_ms() + 10 * 86_400_000)
    );
    let old_info = t.store.get(old.id()).unwrap();
    assert_eq!(old_info.rotated_to.as_deref(), Some(rotated.id()));
    assert_eq!(old_info.expires_at, Some(t.clock.now_ms() + 86_400_000));
    assert_eq!(
        t.store.verify(old.key(), &["read"]).unwrap().reason,
        Reason::Valid
    );
    t.clock.advance(Duration::from_secs(86_401));
    assert_eq!(
        t.store.verify(old.key(), &["read"]).unwrap().reason,
        Reason::Expired
    );
    assert_eq!(
        t.store.verify(rotated.key(), &["read"]).unwrap().reason,
        Reason::Valid
    );
    // A rotated key is not rotated again (found by the C-ABI fuzzer: the second successor
    // inherited the grace period as its lifetime); its successor is.
    let err = t.store.rotate(old.id(), Duration::ZERO).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains(rotated.id()));
    let next = t.store.rotate(rotated.id(), Duration::ZERO).unwrap();
    assert_eq!(
        t.store.get(next.id()).unwrap().expires_at,
        Some(t.clock.now_ms() + 10 * 86_400_000)
    );
}

#[test]
fn policy_max_active_keys_per_owner() {
    let t = temp_store_with(|o| {
        o.policies = Policies {
            max_active_keys_per_owner: Some(2),
            ..Policies::default()
        }
    });
    let a = t.store.create(new_key("acct", &[])).unwrap();
    t.store.create(new_key("acct", &[])).unwrap();
    let err = t.store.create(new_key("acct", &[])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PolicyMaxActiveKeys, "{err}");
    t.store.create(new_key("other", &[])).unwrap();
    t.store.revoke(a.id(), None).unwrap();
    t.store.create(new_key("acct", &[])).unwrap();
    // Rotation replaces a key rather than adding one.
    let page = t
        .store
        .list(
            "acct",
            ListOptions {
                state: StateFilter::Active,
                ..ListOptions::default()
            },
        )
        .unwrap();
    t.store.rotate(&page.keys[0].id, Duration::ZERO).unwrap();
}

#[test]
fn policy_keep_last_key() {
    let t = temp_store_with(|o| o.policies.keep_last_key = true);
    let a = t.store.create(new_key("acct", &[])).unwrap();
    assert_eq!(
        t.store.revoke(a.id(), None).unwrap_err().code(),
        ErrorCode::PolicyLastActiveKey
    );
    assert_eq!(
        t.store.delete(a.id()).unwrap_err().code(),
        ErrorCode::PolicyLastActiveKey
    );
    let b = t.store.create(new_key("acct", &[])).unwrap();
    t.store.revoke(a.id(), None).unwrap();
    assert_eq!(
        t.store.revoke(b.id(), None).unwrap_err().code(),
        ErrorCode::PolicyLastActiveKey
    );
    // A revoked key can be deleted: it is not active.
    t.store.delete(a.id()).unwrap();
    assert_eq!(t.store.verify(b.key(), &[]).unwrap().reason, Reason::Valid);
}

#[test]
fn policy_max_lifetime() {
    let t = temp_store_with(|o| o.policies.max_lifetime = Some(Duration::from_secs(365 * 86_400)));
    let now = t.clock.now_ms();
    let err = t.store.create(new_key("acct", &[])).unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::PolicyMaxLifetime,
        "expiry is mandatory"
    );
    let mut too_long = new_key("acct", &[]);
    too_long.expires_at = Some(Timestamp::from_millis(now + 366 * 86_400_000));
    assert_eq!(
        t.store.create(too_long).unwrap_err().code(),
        ErrorCode::PolicyMaxLifetime
    );
    let mut ok = new_key("acct", &[]);
    ok.expires_at = Some(Timestamp::from_millis(now + 30 * 86_400_000));
    let created = t.store.create(ok).unwrap();
    let err = t
        .store
        .update(
            created.id(),
            KeyUpdate {
                expires_at: Some(None),
                ..KeyUpdate::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PolicyMaxLifetime);
}

// ---------------------------------------------------------------- the verify index

#[test]
fn warm_verifies_commit_nothing_and_reload_nothing() {
    let t = temp_store();
    let created = t.store.create(new_key("acct", &["read"])).unwrap();
    t.store.verify(created.key(), &["read"]).unwrap();
    let before = t.store.stats().unwrap();
    for _ in 0..10_000 {
        assert!(t.store.verify(created.key(), &["read"]).unwrap().is_valid());
    }
    let after = t.store.stats().unwrap();
    assert_eq!(after.commits, before.commits, "the verify path committed");
    assert_eq!(
        after.refreshes, before.refreshes,
        "the verify path reloaded"
    );
    assert!(after.index_complete);
    t.store.flush().unwrap();
    assert_eq!(
        t.store.stats().unwrap().commits,
        before.commits + 1,
        "one batched flush"
    );
    assert_eq!(t.store.usage(created.id()).unwrap().uses, 10_001);
}

/// `index_capacity` bounds the records one process keeps decoded in front of the shared
/// table (before the shared table it bounded a per-process index that fell back to a cache).
#[test]
fn a_small_record_cache_stays_bounded_and_right() {
    let t = temp_store_with(|o| o.index_capacity = 8);
    let created = t
        .store
        .create_many((0..40).map(|i| new_key(&format!("o{i}"), &[])).collect())
        .unwrap();
    drop(t.store);
    let store = Store::open_unshared(
        t.path.clone(),
        StoreOptions {
            index_capacity: 8,
            ..common::options(&t.clock)
        },
    )
    .unwrap();
    for round in 0..3 {
        for key in &created {
            assert_eq!(
                store.verify(key.key(), &[]).unwrap().reason,
                Reason::Valid,
                "round {round}"
            );
        }
    }
    let stats = store.stats().unwrap();
    assert!(stats.index_complete);
    assert_eq!(stats.indexed_keys, 40, "{stats:?}");
    assert!(stats.table.cached_records <= 8, "{stats:?}");
    // Unknown ids are looked up, not cached as stale negatives.
    let late = store.create(new_key("late", &[])).unwrap();
    assert_eq!(store.verify(late.key(), &[]).unwrap().reason, Reason::Valid);
    store.revoke(created[0].id(), None).unwrap();
    assert_eq!(
        store.verify(created[0].key(), &[]).unwrap().reason,
        Reason::Revoked
    );
    store.flush().unwrap();
    assert_eq!(store.usage(created[5].id()).unwrap().uses, 3);
}

#[test]
fn changes_in_one_store_reach_another_on_its_next_verify() {
    let t = temp_store();
    let other = Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap();
    // Warm the other side's index first: a later create must not be a stale negative.
    let first = t.store.create(new_key("acct", &["read"])).unwrap();
    assert!(other.verify(first.key(), &["read"]).unwrap().is_valid());
    let second = t.store.create(new_key("acct", &["read"])).unwrap();
    assert!(other.verify(second.key(), &["read"]).unwrap().is_valid());
    t.store
        .update(
            first.id(),
            KeyUpdate {
                scopes: Some(vec![]),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        other.verify(first.key(), &["read"]).unwrap().reason,
        Reason::InsufficientScope
    );
    t.store.revoke(second.id(), None).unwrap();
    assert_eq!(
        other.verify(second.key(), &["read"]).unwrap().reason,
        Reason::Revoked
    );
    let rotated = t.store.rotate(first.id(), Duration::ZERO).unwrap();
    t.clock.advance(Duration::from_millis(1));
    assert_eq!(
        other.verify(first.key(), &[]).unwrap().reason,
        Reason::Expired
    );
    assert!(other.verify(rotated.key(), &[]).unwrap().is_valid());
    t.store.delete(rotated.id()).unwrap();
    assert_eq!(
        other.verify(rotated.key(), &[]).unwrap().reason,
        Reason::NotFound
    );
}

#[test]
fn registry_returns_the_same_store_for_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.redb");
    let a = Store::open(&path, StoreOptions::default()).unwrap();
    let b = Store::open(&path, StoreOptions::default()).unwrap();
    assert!(a.same_store(&b));
    // Another spelling of the same path.
    let c = Store::open(
        dir.path().join(".").join("shared.redb"),
        StoreOptions::default(),
    )
    .unwrap();
    assert!(a.same_store(&c));
    let err = Store::open(
        &path,
        StoreOptions {
            concurrency: Concurrency::SingleProcess,
            ..StoreOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigMismatch);
    let created = a.create(new_key("acct", &[])).unwrap();
    drop(a);
    drop(c);
    assert!(b.verify(created.key(), &[]).unwrap().is_valid());
}

#[test]
fn verify_headers_covers_every_style() {
    use base64::Engine as _;
    let t = temp_store();
    let created = t.store.create(new_key("acct", &["read"])).unwrap();
    let key = created.key();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    );
    let bearer = format!("Bearer {key}");
    let styles: Vec<Vec<(&str, &str)>> = vec![
        vec![("X-Api-Key", key)],
        vec![("Authorization", &bearer)],
        vec![("authorization", &basic)],
        vec![
            ("X-Api-Token-Id", created.id()),
            ("X-Api-Token-Secret-Key", created.secret()),
        ],
    ];
    for headers in styles {
        assert!(
            t.store
                .verify_headers(headers.clone(), &["read"])
                .unwrap()
                .is_valid(),
            "{headers:?}"
        );
    }
    let err = t
        .store
        .verify_headers([("X-Api-Token-Id", created.id())], &[])
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::HalfPair);
}

#[test]
fn a_storage_failure_reopens_the_store_and_keeps_pending_usage() {
    let t = temp_store();
    let created = t.store.create(new_key("acct", &[])).unwrap();
    for _ in 0..5 {
        t.store.verify(created.key(), &[]).unwrap();
    }
    let commits_before = t.store.stats().unwrap().commits;
    t.store.simulate_storage_failure().unwrap();
    // The next call runs on a freshly opened engine (its commit counter starts again).
    assert!(t.store.verify(created.key(), &[]).unwrap().is_valid());
    assert!(t.store.stats().unwrap().commits < commits_before);
    let second = t.store.create(new_key("acct", &[])).unwrap();
    assert!(t.store.verify(second.key(), &[]).unwrap().is_valid());
    t.store.flush().unwrap();
    assert_eq!(
        t.store.usage(created.id()).unwrap().uses,
        6,
        "usage pending before the failure survives"
    );
}

#[test]
fn close_waits_for_a_background_flush_in_flight() {
    let t = temp_store_with(|o| o.flush_interval = Duration::from_millis(1));
    let created = t.store.create(new_key("acct", &[])).unwrap();
    let reader = Store::open_unshared(&t.path, common::options(&t.clock)).unwrap();
    // Each flush now holds its batch for 50 ms before writing it.
    t.store
        .pause_flushes_for_test(Duration::from_millis(50))
        .unwrap();
    for _ in 0..100 {
        assert!(t.store.verify(created.key(), &[]).unwrap().is_valid());
    }
    // Wait until the background flusher has taken the batch and sits in its pause: the race
    // this test is about (close while a batch is in flight) then really happens.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while t.store.paused_flushes_for_test().unwrap() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the flusher never took a batch"
        );
        std::thread::yield_now();
    }
    t.store.close().unwrap();
    assert_eq!(
        reader.usage(created.id()).unwrap().uses,
        100,
        "close returned before the batch was durable"
    );
}

/// A background flush that took long delays the next periodic one (`flush_pacing`: at least
/// 100 times its duration), while the flusher keeps waking; the counts made meanwhile wait in
/// the shared table, where `usage()` sees them, and `flush()` writes them at once.
#[test]
fn a_long_background_flush_delays_the_next() {
    let t = temp_store_with(|o| o.flush_interval = Duration::from_millis(1));
    let created = t.store.create(new_key("acct", &[])).unwrap();
    let commits_before = t.store.stats().unwrap().commits;
    // The first flush with counts holds its batch for 200 ms: the next waits 20 s.
    t.store
        .pause_flushes_for_test(Duration::from_millis(200))
        .unwrap();
    for _ in 0..10 {
        assert!(t.store.verify(created.key(), &[]).unwrap().is_valid());
    }
    wait_until("the flusher takes a batch", || {
        t.store.paused_flushes_for_test().unwrap() > 0
    });
    t.store.pause_flushes_for_test(Duration::ZERO).unwrap();
    wait_until("the long flush commits", || {
        t.store.stats().unwrap().commits > commits_before
    });
    let commits_after_long = t.store.stats().unwrap().commits;
    assert_eq!(commits_after_long, commits_before + 1);
    let passes = t.store.flusher_passes_for_test().unwrap();
    for _ in 0..10 {
        assert!(t.store.verify(created.key(), &[]).unwrap().is_valid());
    }
    // Twenty wake-ups of a 1 ms flusher with counts pending: none flushed them.
    wait_until("the flusher wakes twenty times", || {
        t.store.flusher_passes_for_test().unwrap() >= passes + 20
    });
    assert_eq!(
        t.store.stats().unwrap().commits,
        commits_after_long,
        "a periodic flush ran within 100 times the last one's duration"
    );
    // While it waits, the flusher keeps renewing the host's flush lease (else another
    // process's flusher would take it and flush at once): its deadline, in seconds, moves on.
    let (holder, deadline) = t.store.flush_lease_for_test().unwrap();
    assert_eq!(holder, std::process::id());
    wait_until("the waiting flusher renews its lease", || {
        t.store.flush_lease_for_test().unwrap().1 > deadline
    });
    assert_eq!(
        t.store.stats().unwrap().commits,
        commits_after_long,
        "a periodic flush ran within 100 times the last one's duration"
    );
    assert_eq!(t.store.usage(created.id()).unwrap().uses, 20);
    assert_eq!(t.store.flush().unwrap(), 1, "flush() writes at once");
    assert_eq!(t.store.stats().unwrap().commits, commits_after_long + 1);
    assert_eq!(t.store.usage(created.id()).unwrap().uses, 20);
}

/// Waits (yielding, no sleep) until `done` holds; fails after 60 s naming `what`.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::yield_now();
    }
}

/// A new key with `remaining` credits, no refill, one credit per verify.
fn limited_key(remaining: u64) -> NewKey {
    let mut new = new_key("acct", &[]);
    new.credits = Some(NewCredits {
        remaining,
        refill: None,
        cost: 1,
    });
    new
}

/// `usage()` while a flush is in flight (its counts taken out of the shared table, its commit
/// not yet done: held there by the test hook) waits for the commit and sees every count once,
/// from another process (a second engine on the file) and from the flushing process itself.
#[test]
fn usage_waits_for_a_flush_in_flight() {
    let t = temp_store();
    let other = Store::open_unshared(&t.path, common::options(&t.clock)).unwrap();
    let created = t.store.create(new_key("acct", &[])).unwrap();
    let mut verified = 0;
    for reader in [&other, &t.store] {
        for _ in 0..10 {
            assert!(t.store.verify(created.key(), &[]).unwrap().is_valid());
            verified += 1;
        }
        let paused_before = t.store.paused_flushes_for_test().unwrap();
        let waited_before = reader.usage_reads_waited_for_test().unwrap();
        // The flush holds its batch for 300 ms between taking it and committing it.
        t.store
            .pause_flushes_for_test(Duration::from_millis(300))
            .unwrap();
        std::thread::scope(|threads| {
            let flush = threads.spawn(|| t.store.flush().unwrap());
            wait_until("the flush takes its batch", || {
                t.store.paused_flushes_for_test().unwrap() > paused_before
            });
            assert_eq!(reader.usage(created.id()).unwrap().uses, verified);
            assert_eq!(flush.join().unwrap(), 1, "the flush wrote the key's counts");
        });
        // The race happened: the reader found the flush in flight and waited for it.
        assert_eq!(
            reader.usage_reads_waited_for_test().unwrap(),
            waited_before + 1
        );
        t.store.pause_flushes_for_test(Duration::ZERO).unwrap();
    }
    assert_eq!(other.usage(created.id()).unwrap().uses, 20);
}

// ---------------------------------------------------------------- usage and credits

/// A key's latest day rides in its usage row: flushing a later day moves the earlier day's
/// count to the per-day rows, and no count is lost or doubled across flushes and reopens.
#[test]
fn day_counts_survive_flushes_across_days_and_a_reopen() {
    let t = temp_store();
    let a = t.store.create(new_key("acct", &["read"])).unwrap();
    let day1 = Day::from_civil(2025, 6, 15);
    t.clock.set(day1.start().plus(Duration::from_secs(3600)));
    let by_day = |store: &Store| -> Vec<u64> {
        store
            .usage_by_day(a.id(), day1, Day(day1.0 + 5))
            .unwrap()
            .iter()
            .map(|d| d.uses)
            .collect()
    };
    let verify = |n: usize| {
        for _ in 0..n {
            assert!(t.store.verify(a.key(), &["read"]).unwrap().is_valid());
        }
        t.store.flush().unwrap();
    };
    verify(3);
    assert_eq!(by_day(&t.store), vec![3]);
    t.clock.advance(Duration::from_secs(86_400));
    verify(2);
    assert_eq!(by_day(&t.store), vec![3, 2]);
    verify(1);
    assert_eq!(by_day(&t.store), vec![3, 3]);
    // Two days later, nothing on the day between.
    t.clock.advance(Duration::from_secs(2 * 86_400));
    verify(4);
    assert_eq!(by_day(&t.store), vec![3, 3, 4]);
    let days: Vec<i32> = t
        .store
        .usage_by_day(a.id(), day1, Day(day1.0 + 5))
        .unwrap()
        .iter()
        .map(|d| d.day.0 - day1.0)
        .collect();
    assert_eq!(days, vec![0, 1, 3]);
    // A range that holds only the row's day, or only earlier days.
    let only_last = t
        .store
        .usage_by_day(a.id(), Day(day1.0 + 3), Day(day1.0 + 3));
    assert_eq!(only_last.unwrap()[0].uses, 4);
    assert_eq!(
        t.store
            .usage_by_day(a.id(), day1, Day(day1.0 + 2))
            .unwrap()
            .len(),
        2
    );
    assert_eq!(t.store.usage(a.id()).unwrap().uses, 10);
    let path = t.path.clone();
    drop(t.store);
    let reopened = Store::open_unshared(&path, common::options(&t.clock)).unwrap();
    assert_eq!(reopened.usage(a.id()).unwrap().uses, 10);
    assert_eq!(by_day(&reopened), vec![3, 3, 4]);
}

#[test]
fn usage_is_counted_per_day_and_refusals_per_key() {
    let t = temp_store();
    let a = t.store.create(new_key("acct", &["read"])).unwrap();
    let b = t.store.create(new_key("acct", &["read"])).unwrap();
    let day1 = Day::from_civil(2025, 6, 15);
    t.clock.set(day1.start().plus(Duration::from_secs(3600)));
    for _ in 0..3 {
        t.store.verify(a.key(), &["read"]).unwrap();
    }
    t.clock.advance(Duration::from_secs(86_400));
    t.store.verify(a.key(), &["read"]).unwrap();
    let last = t.clock.now_ms();
    // Refusals where the id is known: wrong secret, missing scope.
    t.store.verify(a.key(), &["admin"]).unwrap();
    let mut wrong = a.secret().to_owned();
    wrong.replace_range(0..1, if wrong.starts_with('q') { "r" } else { "q" });
    t.store.verify_pair(a.id(), &wrong, &[]).unwrap();
    // Unflushed counts are already visible to this process.
    assert_eq!(t.store.usage(a.id()).unwrap().uses, 4);
    t.store.flush().unwrap();
    let stats = t.store.usage(a.id()).unwrap();
    assert_eq!(stats.uses, 4);
    assert_eq!(stats.refused, 2);
    assert_eq!(stats.last_used, Some(last));
    let days = t.store.usage_by_day(a.id(), day1, Day(day1.0 + 5)).unwrap();
    let got: Vec<(String, u64)> = days.iter().map(|d| (d.day.to_string(), d.uses)).collect();
    assert_eq!(
        got,
        vec![("2025-06-15".into(), 3), ("2025-06-16".into(), 1)]
    );
    assert!(t.store.usage_by_day(a.id(), Day(day1.0 + 1), day1).is_err());
    // b was never used: it shows up as unused; a does not.
    let unused = t
        .store
        .unused_since("acct", Timestamp::from_millis(last - 1000))
        .unwrap();
    let ids: Vec<&str> = unused.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, vec![b.id()]);
    // Counts survive a reopen.
    let path = t.path.clone();
    drop(t.store);
    let store = Store::open_unshared(&path, common::options(&t.clock)).unwrap();
    assert_eq!(store.usage(a.id()).unwrap().uses, 4);
}

/// Two processes (two engines on one file), then two threads of one, spend a key's 5
/// credits while the first one's top-up is held between its commit and the pool, where its
/// credits are in neither: the second verify waits for them instead of answering
/// USAGE_EXCEEDED (seen in CI as a PHP-FPM pool refusing one request of six against a key with
/// five credits), and a read of the balance waits too instead of reading 0.
#[test]
fn a_verify_meeting_credits_in_flight_waits_for_them() {
    let t = temp_store();
    let other = Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap();
    spend_while_a_top_up_is_held(&t, &other);
    spend_while_a_top_up_is_held(&t, &t.store);
}

/// The first verify of a new 5-credit key runs on `t.store` with its top-up held after the
/// commit; a verify and a read of the balance on `second` must wait for it (counted) and see
/// its credits; then 3 VALID and USAGE_EXCEEDED.
fn spend_while_a_top_up_is_held(t: &common::TempStore, second_store: &Store) {
    let key = t.store.create(limited_key(5)).unwrap();
    let (held_before, _) = t.store.top_up_counts_for_test().unwrap();
    let (_, waits_before) = second_store.top_up_counts_for_test().unwrap();
    t.store.hold_top_ups_for_test(true).unwrap();
    std::thread::scope(|threads| {
        let first = threads.spawn(|| t.store.verify(key.key(), &[]).unwrap().reason);
        wait_until("the first top-up is held after its commit", || {
            t.store.top_up_counts_for_test().unwrap().0 == held_before + 1
        });
        let second = threads.spawn(|| second_store.verify(key.key(), &[]).unwrap().reason);
        let balance = threads.spawn(|| second_store.credits(key.id()).unwrap().unwrap().remaining);
        wait_until("the second verify and the read wait for the first", || {
            second_store.top_up_counts_for_test().unwrap().1 == waits_before + 2
                || second.is_finished()
                || balance.is_finished()
        });
        t.store.hold_top_ups_for_test(false).unwrap();
        assert_eq!(first.join().unwrap(), Reason::Valid);
        assert_eq!(second.join().unwrap(), Reason::Valid);
        // Read once the credits were in the pool: before or after either verify took one.
        let read = balance.join().unwrap();
        assert!((3..=5).contains(&read), "balance read {read}");
    });
    // The race happened: both found the first's slot lock held, once each.
    assert_eq!(
        second_store.top_up_counts_for_test().unwrap().1,
        waits_before + 2
    );
    let rest: Vec<Reason> = (0..4)
        .map(|i| {
            let store = if i % 2 == 0 { &t.store } else { second_store };
            store.verify(key.key(), &[]).unwrap().reason
        })
        .collect();
    assert_eq!(
        rest,
        [
            Reason::Valid,
            Reason::Valid,
            Reason::Valid,
            Reason::UsageExceeded
        ]
    );
    assert_eq!(t.store.credits(key.id()).unwrap().unwrap().remaining, 0);
}

/// An update that sets a key's credits while another process's top-up has a batch between
/// database and pool waits for the batch to reach the pool before it empties the pool: the
/// new balance is exactly what can be spent (else the batch would land on top of it).
#[test]
fn setting_credits_during_a_top_up_in_flight_is_exact() {
    let t = temp_store();
    let other = Store::open_unshared(t.path.clone(), common::options(&t.clock)).unwrap();
    let key = t.store.create(limited_key(100)).unwrap();
    t.store.hold_top_ups_for_test(true).unwrap();
    std::thread::scope(|threads| {
        // Its top-up takes a batch of 25 out of the database and is held before the pool.
        let first = threads.spawn(|| t.store.verify(key.key(), &[]).unwrap().reason);
        wait_until("the top-up is held", || {
            t.store.top_up_counts_for_test().unwrap().0 == 1
        });
        let update = threads.spawn(|| {
            other
                .update(
                    key.id(),
                    KeyUpdate {
                        credits: Some(Some(NewCredits {
                            remaining: 3,
                            refill: None,
                            cost: 1,
                        })),
                        ..KeyUpdate::default()
                    },
                )
                .unwrap()
        });
        wait_until("the update waits for the batch", || {
            other.top_up_counts_for_test().unwrap().1 == 1 || update.is_finished()
        });
        t.store.hold_top_ups_for_test(false).unwrap();
        assert_eq!(first.join().unwrap(), Reason::Valid);
        update.join().unwrap();
    });
    // The update waited for the batch (the race happened) and then emptied the pool. The
    // first verify took its credit from the batch (before the update) or, when the update
    // emptied the pool between the batch's arrival and that verify's spend, from the new 3.
    assert_eq!(other.top_up_counts_for_test().unwrap().1, 1);
    let left = t.store.credits(key.id()).unwrap().unwrap().remaining;
    assert!(left == 3 || left == 2, "{left} credits left of the 3 set");
    let reasons: Vec<Reason> = (0..=left)
        .map(|_| other.verify(key.key(), &[]).unwrap().reason)
        .collect();
    let mut expected = vec![Reason::Valid; left as usize];
    expected.push(Reason::UsageExceeded);
    assert_eq!(reasons, expected, "exactly the credits left can be spent");
}

#[test]
fn credits_are_spent_refilled_and_moved_by_rotation() {
    let t = temp_store();
    let mut new = new_key("acct", &[]);
    new.credits = Some(NewCredits {
        remaining: 250,
        refill: Some(Refill {
            amount: 5,
            interval: RefillInterval::Daily,
        }),
        cost: 1,
    });
    let key = t.store.create(new).unwrap();
    let mut valid = 0;
    for _ in 0..300 {
        if t.store.verify(key.key(), &[]).unwrap().is_valid() {
            valid += 1;
        }
    }
    assert_eq!(valid, 250);
    assert_eq!(
        t.store.verify(key.key(), &[]).unwrap().reason,
        Reason::UsageExceeded
    );
    assert_eq!(t.store.credits(key.id()).unwrap().unwrap().remaining, 0);
    // Next UTC day: refilled to 5.
    t.clock.advance(Duration::from_secs(86_400));
    assert_eq!(t.store.credits(key.id()).unwrap().unwrap().remaining, 5);
    let cost = |c: u32| {
        t.store
            .verify_request(&VerifyRequest {
                cost: Some(c),
                ..VerifyRequest::key(key.key(), &[])
            })
            .unwrap()
            .reason
    };
    assert_eq!(cost(3), Reason::Valid);
    assert_eq!(cost(3), Reason::UsageExceeded);
    assert_eq!(cost(2), Reason::Valid);
    // Rotation hands what is left to the successor.
    t.clock.advance(Duration::from_secs(86_400));
    let rotated = t.store.rotate(key.id(), Duration::from_secs(60)).unwrap();
    assert_eq!(t.store.credits(rotated.id()).unwrap().unwrap().remaining, 5);
    assert_eq!(
        t.store.verify(key.key(), &[]).unwrap().reason,
        Reason::UsageExceeded
    );
    assert!(t.store.verify(rotated.key(), &[]).unwrap().is_valid());
    // Removing the limit.
    t.store
        .update(
            rotated.id(),
            KeyUpdate {
                credits: Some(None),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert!(t.store.credits(rotated.id()).unwrap().is_none());
    for _ in 0..10 {
        assert!(t.store.verify(rotated.key(), &[]).unwrap().is_valid());
    }
}

#[test]
fn bad_credit_terms_are_refused() {
    let t = temp_store();
    let mut new = new_key("acct", &[]);
    new.credits = Some(NewCredits {
        remaining: 1,
        refill: None,
        cost: 0,
    });
    assert_eq!(
        t.store.create(new).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn error_codes_are_unique_and_named() {
    let mut values: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.as_u32()).collect();
    let n = values.len();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), n);
    let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
    assert_eq!(ErrorCode::Ok.as_u32(), 0);
    // Pinned values: these are the C ABI's and must never change.
    assert_eq!(ErrorCode::NotFound.as_u32(), 10);
    assert_eq!(ErrorCode::WrongPepper.as_u32(), 34);
    assert_eq!(ErrorCode::HalfPair.as_u32(), 53);
    // In numeric order, never renumbered (7 is reserved for another branch's reason).
    assert!(
        Reason::ALL
            .windows(2)
            .all(|w| (w[0] as u32) < (w[1] as u32))
    );
    for (i, reason) in Reason::ALL.iter().take(7).enumerate() {
        assert_eq!(*reason as usize, i);
    }
    assert_eq!(Reason::RateLimited as u32, 8);
    for reason in Reason::ALL {
        assert_eq!(Reason::from_code(reason.code()), Some(*reason));
    }
    assert_eq!(Reason::InsufficientScope.http_status(), 403);
    assert_eq!(Reason::Revoked.http_status(), 401);
}

// ---------------------------------------------------------------- dry-run verify

#[test]
fn dry_run_verifies_count_nothing_and_spend_no_credit() {
    let t = temp_store();
    let dry = |key: &str, scopes: &'static [&'static str], cost: Option<u32>| {
        t.store
            .verify_request(&VerifyRequest {
                cost,
                dry_run: true,
                ..VerifyRequest::key(key, scopes)
            })
            .unwrap()
    };
    // An unlimited key: 100 dry runs are VALID (with the record) and count nothing.
    let plain = t.store.create(new_key("acct", &["read"])).unwrap();
    for _ in 0..100 {
        let verdict = dry(plain.key(), &["read"], None);
        assert_eq!(verdict.reason, Reason::Valid);
        assert_eq!(verdict.key.as_ref().unwrap().owner, "acct");
        assert_eq!(
            dry(plain.key(), &["admin"], None).reason,
            Reason::InsufficientScope
        );
    }
    // A wrong secret (another key's) for this id: NOT_FOUND, no refusal counted.
    let other = t.store.create(new_key("acct", &[])).unwrap();
    let parsed = keyward::parse_key(other.key(), None).unwrap();
    let secret = std::str::from_utf8(parsed.secret.expose()).unwrap();
    let wrong = t
        .store
        .verify_request(&VerifyRequest {
            credential: keyward::Presented::Pair {
                id: plain.id(),
                secret,
            },
            dry_run: true,
            ..VerifyRequest::key("", &[])
        })
        .unwrap();
    assert_eq!(wrong.reason, Reason::NotFound);
    t.store.flush().unwrap();
    let usage = t.store.usage(plain.id()).unwrap();
    assert_eq!((usage.uses, usage.refused, usage.last_used), (0, 0, None));

    // A limited key with 5 credits: dry runs say whether the cost is covered, take nothing.
    let mut new = new_key("acct", &[]);
    new.credits = Some(NewCredits {
        remaining: 5,
        refill: None,
        cost: 1,
    });
    let limited = t.store.create(new).unwrap();
    for _ in 0..100 {
        assert_eq!(dry(limited.key(), &[], None).reason, Reason::Valid);
        assert_eq!(dry(limited.key(), &[], Some(5)).reason, Reason::Valid);
        assert_eq!(
            dry(limited.key(), &[], Some(6)).reason,
            Reason::UsageExceeded
        );
    }
    assert_eq!(t.store.credits(limited.id()).unwrap().unwrap().remaining, 5);
    // Real verifies move credits into the shared pool; dry runs still see pool + database.
    assert!(t.store.verify(limited.key(), &[]).unwrap().is_valid());
    assert_eq!(dry(limited.key(), &[], Some(4)).reason, Reason::Valid);
    assert_eq!(
        dry(limited.key(), &[], Some(5)).reason,
        Reason::UsageExceeded
    );
    for _ in 0..4 {
        assert!(t.store.verify(limited.key(), &[]).unwrap().is_valid());
    }
    assert_eq!(dry(limited.key(), &[], None).reason, Reason::UsageExceeded);
    assert_eq!(t.store.credits(limited.id()).unwrap().unwrap().remaining, 0);
    t.store.flush().unwrap();
    let usage = t.store.usage(limited.id()).unwrap();
    assert_eq!((usage.uses, usage.refused), (5, 0));

    // Revoked and expired keys are judged as usual, still without counting.
    t.store.revoke(plain.id(), None).unwrap();
    assert_eq!(dry(plain.key(), &[], None).reason, Reason::Revoked);
    t.store.flush().unwrap();
    assert_eq!(t.store.usage(plain.id()).unwrap().refused, 0);
}

// ---------------------------------------------------------------- warnings

#[test]
fn warnings_list_keys_expiring_soon_and_keys_low_on_credits() {
    let t = temp_store();
    let now = t.clock.now_ms();
    let day = 86_400_000;
    let expiring = |owner: &str, at: Option<i64>| {
        let mut new = new_key(owner, &[]);
        new.expires_at = at.map(Timestamp::from_millis);
        t.store.create(new).unwrap()
    };
    let in_3d = expiring("a", Some(now + 3 * day));
    let in_1d = expiring("b", Some(now + day));
    let _in_30d = expiring("a", Some(now + 30 * day));
    let _never = expiring("a", None);
    let revoked = expiring("a", Some(now + 2 * day));
    t.store.revoke(revoked.id(), None).unwrap();
    let ids = |keys: Vec<keyward::KeyInfo>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(t
            .store
            .expiring_within(Duration::from_secs(7 * 86_400))
            .unwrap()),
        [in_1d.id(), in_3d.id()],
        "soonest first; revoked, later and never-expiring keys left out"
    );
    assert!(t.store.expiring_within(Duration::ZERO).unwrap().is_empty());
    t.clock.advance(Duration::from_secs(2 * 86_400));
    assert_eq!(
        ids(t
            .store
            .expiring_within(Duration::from_secs(7 * 86_400))
            .unwrap()),
        [in_3d.id()],
        "an expired key is past warning"
    );

    let limited = |remaining: u64| {
        let mut new = new_key("c", &[]);
        new.credits = Some(NewCredits {
            remaining,
            refill: None,
            cost: 1,
        });
        t.store.create(new).unwrap()
    };
    let low = limited(3);
    let lower = limited(1);
    let _plenty = limited(500);
    let low_ids = |n: u64| {
        t.store
            .credits_below(n)
            .unwrap()
            .into_iter()
            .map(|(k, b)| (k.id, b.remaining))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        low_ids(10),
        [(lower.id().to_string(), 1), (low.id().to_string(), 3)]
    );
    assert_eq!(low_ids(1), []);
    // Spending (credits in the shared pool count as left) moves a key under the threshold.
    assert!(t.store.verify(low.key(), &[]).unwrap().is_valid());
    assert_eq!(
        low_ids(3),
        [(lower.id().to_string(), 1), (low.id().to_string(), 2)]
    );
}

#[test]
fn create_many_makes_every_key_valid_or_none_of_them() {
    let t = temp_store();
    let batch: Vec<NewKey> = (0..2_500)
        .map(|i| new_key(&format!("bulk_{}", i % 7), &["read"]))
        .collect();
    let created = t.store.create_many(batch).unwrap();
    assert_eq!(created.len(), 2_500);
    for (i, key) in created.iter().enumerate() {
        assert_eq!(key.info.owner, format!("bulk_{}", i % 7));
        let verdict = t.store.verify(key.key(), &["read"]).unwrap();
        assert_eq!(verdict.reason, Reason::Valid, "key {i}");
    }

    // A bad new key in the middle: nothing is created, and the error names its index.
    let mut batch: Vec<NewKey> = (0..10).map(|_| new_key("atomic", &[])).collect();
    batch[6].owner = "   ".into();
    let error = t.store.create_many(batch).unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidArgument);
    assert!(
        matches!(error, Error::InBatch { index: 6, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("new key 6 of the batch"),
        "{error}"
    );
    let mut batch: Vec<NewKey> = (0..10).map(|_| new_key("atomic", &[])).collect();
    batch[3].name = "n".repeat(10_000);
    let error = t.store.create_many(batch).unwrap_err();
    assert_eq!(error.code(), ErrorCode::TooLong);
    assert!(
        error.to_string().contains("new key 3 of the batch"),
        "{error}"
    );
    let page = t.store.list("atomic", ListOptions::default()).unwrap();
    assert!(page.keys.is_empty(), "a refused batch created keys");
}

#[test]
fn create_many_enforces_max_active_keys_across_the_batch() {
    let t = temp_store_with(|o| {
        o.policies = Policies {
            max_active_keys_per_owner: Some(3),
            ..Policies::default()
        };
    });
    let batch: Vec<NewKey> = (0..5).map(|_| new_key("capped", &[])).collect();
    let error = t.store.create_many(batch).unwrap_err();
    assert_eq!(error.code(), ErrorCode::PolicyMaxActiveKeys);
    assert!(
        matches!(error, Error::InBatch { index: 3, .. }),
        "{error:?}"
    );
    let page = t.store.list("capped", ListOptions::default()).unwrap();
    assert!(page.keys.is_empty());
    let batch: Vec<NewKey> = (0..3).map(|_| new_key("capped", &[])).collect();
    assert_eq!(t.store.create_many(batch).unwrap().len(), 3);
}
