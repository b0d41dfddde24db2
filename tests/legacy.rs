//! Legacy keys (issue 18, item 1): keys made by Laravel Sanctum, djangorestframework-api-key,
//! Unkey and Better Auth with their real algorithms (tests/legacy/make_exports.py, Python's
//! hashlib, SQLite tables shaped like theirs) verify VALID after `Store::import_legacy`, wrong
//! ones are refused, the first use upgrades the record, every process sees the keys and the
//! upgrade, and no file of the store holds a raw legacy hash in any form.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use keyward::{
    AuditAction, AuditQuery, ErrorCode, LegacyImportOptions, LegacyScheme, Reason, Store,
    legacy_key_id,
};
use serde_json::Value;

/// The exports and the cases of tests/legacy/make_exports.py, in their own directory (not
/// the store's: the source databases hold the raw hashes).
struct Exports {
    _dir: tempfile::TempDir,
    path: PathBuf,
    cases: Value,
}

fn make_exports() -> Exports {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/legacy/make_exports.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .status()
        .expect("python3 runs tests/legacy/make_exports.py");
    assert!(status.success());
    let cases: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cases.json")).unwrap()).unwrap();
    Exports {
        path: dir.path().to_owned(),
        _dir: dir,
        cases,
    }
}

fn options_of(case: &Value) -> LegacyImportOptions {
    let o = &case["options"];
    LegacyImportOptions {
        dry_run: false,
        sanctum_expiration_minutes: o["sanctum_expiration_minutes"].as_u64(),
        all_scopes: o["all_scopes"]
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect()),
        default_owner: o["default_owner"].as_str().map(str::to_owned),
    }
}

fn keys<'a>(case: &'a Value, kind: &str) -> Vec<&'a Value> {
    case[kind]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Every byte of every file keyward keeps beside the database.
fn store_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn check_scheme(scheme: LegacyScheme) {
    let exports = make_exports();
    let case = &exports.cases[scheme.name()];
    let data = std::fs::read(exports.path.join(case["file"].as_str().unwrap())).unwrap();
    let t = common::temp_store();
    let store = &t.store;
    let mut options = options_of(case);

    // A store without legacy keys: such text is not a key (MALFORMED), at no cost.
    let first = keys(case, "valid")[0]["key"].as_str().unwrap();
    assert_eq!(store.verify(first, &[]).unwrap().reason, Reason::Malformed);

    // Dry run: the report, and nothing written.
    options.dry_run = true;
    let dry = store.import_legacy(scheme, &data, &options).unwrap();
    let importable =
        keys(case, "valid").len() + keys(case, "revoked").len() + keys(case, "expired").len();
    assert!(dry.dry_run);
    assert_eq!(dry.imported, importable);
    assert_eq!(dry.ids.len(), importable);
    assert_eq!(dry.revoked, keys(case, "revoked").len());
    assert_eq!(dry.expired, keys(case, "expired").len());
    assert!(store.all_keys().unwrap().is_empty());
    assert_eq!(store.verify(first, &[]).unwrap().reason, Reason::Malformed);

    options.dry_run = false;
    let report = store.import_legacy(scheme, &data, &options).unwrap();
    assert_eq!(report.imported, importable);
    assert_eq!(report.ids, dry.ids);
    assert_eq!(
        report.deleted,
        case["deleted"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(store.all_keys().unwrap().len(), importable);
    // One import event per key, as for a native import.
    let events = store.audit(&AuditQuery::default()).unwrap().events;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == AuditAction::Import)
            .count(),
        importable
    );

    // A second process's view (an independent engine on the same files).
    let other = Store::open_unshared(&t.path, common::options(&t.clock)).unwrap();

    for valid in keys(case, "valid") {
        let key = valid["key"].as_str().unwrap();
        let id = legacy_key_id(scheme, valid["source_id"].as_str().unwrap());
        let before = store.get(id.as_str()).unwrap();
        let origin = before.legacy.clone().expect("a legacy record");
        assert_eq!(origin.scheme, scheme);
        assert_eq!(origin.upgraded_at, None);
        assert_eq!(before.owner, valid["owner"].as_str().unwrap());
        let scopes: Vec<&str> = valid["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(before.scopes, scopes);

        // A dry run upgrades nothing.
        let dry = store
            .verify_request(&keyward::VerifyRequest {
                dry_run: true,
                ..keyward::VerifyRequest::key(key, &[])
            })
            .unwrap();
        assert_eq!(dry.reason, Reason::Valid);
        assert_eq!(
            store.get(id.as_str()).unwrap().legacy.unwrap().upgraded_at,
            None
        );

        // The other process finds it through the shared table, before any upgrade.
        let verdict = other.verify(key, &scopes).unwrap();
        assert_eq!(verdict.reason, Reason::Valid, "{scheme} key {key}");
        assert_eq!(verdict.key.unwrap().id, id.as_str());
        // That use upgraded the record, in redb and for every process.
        let after = store.get(id.as_str()).unwrap();
        let upgraded_at = after.legacy.as_ref().unwrap().upgraded_at;
        assert_eq!(upgraded_at, Some(t.clock.now_ms()));
        for process in [store, &other] {
            let verdict = process.verify(key, &scopes).unwrap();
            assert_eq!(verdict.reason, Reason::Valid);
            assert_eq!(
                verdict.key.unwrap().legacy.as_ref().unwrap().upgraded_at,
                upgraded_at,
                "the table serves the upgraded record"
            );
        }
        if !scopes.is_empty() {
            assert_eq!(
                store.verify(key, &["not-granted"]).unwrap().reason,
                Reason::InsufficientScope
            );
        }
    }
    for wrong in keys(case, "wrong") {
        let key = wrong.as_str().unwrap();
        assert_eq!(
            store.verify(key, &[]).unwrap().reason,
            Reason::NotFound,
            "{scheme}: {key}"
        );
        assert_eq!(other.verify(key, &[]).unwrap().reason, Reason::NotFound);
    }
    for revoked in keys(case, "revoked") {
        let key = revoked["key"].as_str().unwrap();
        assert_eq!(store.verify(key, &[]).unwrap().reason, Reason::Revoked);
    }
    for expired in keys(case, "expired") {
        let key = expired["key"].as_str().unwrap();
        assert_eq!(store.verify(key, &[]).unwrap().reason, Reason::Expired);
    }
    for deleted in case["deleted"].as_array().into_iter().flatten() {
        let key = deleted.as_str().unwrap();
        assert_eq!(store.verify(key, &[]).unwrap().reason, Reason::NotFound);
    }
    // Refused legacy keys were not upgraded.
    for kind in ["revoked", "expired"] {
        for k in keys(case, kind) {
            let id = legacy_key_id(scheme, k["source_id"].as_str().unwrap());
            assert_eq!(
                store.get(id.as_str()).unwrap().legacy.unwrap().upgraded_at,
                None
            );
        }
    }

    // Importing the same export again changes nothing.
    let again = store.import_legacy(scheme, &data, &options).unwrap();
    assert_eq!((again.imported, again.already_present), (0, importable));

    // Usage of the legacy keys is counted like any key's.
    store.flush().unwrap();
    other.flush().unwrap();
    let id = legacy_key_id(
        scheme,
        keys(case, "valid")[0]["source_id"].as_str().unwrap(),
    );
    assert!(store.usage(id.as_str()).unwrap().uses >= 2);

    // No file of the store holds a raw legacy hash, in any form.
    drop(other);
    let files = store_bytes(t.dir.path());
    assert!(files.len() >= 3, "database, pepper, sync and table files");
    let hashes: Vec<&str> = case["raw_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(!hashes.is_empty());
    // The scan reads what the store wrote: the imported records' source ids are there.
    let source_id = keys(case, "valid")[0]["source_id"].as_str().unwrap();
    assert!(
        files
            .iter()
            .any(|(_, bytes)| contains(bytes, source_id.as_bytes())),
        "the scan sees the records"
    );
    for (path, bytes) in &files {
        for hash in &hashes {
            assert!(
                !contains(bytes, hash.as_bytes()),
                "{} holds a raw legacy hash",
                path.display()
            );
        }
        // And not the raw bytes either (the hex form decodes to them).
        for hash in hashes.iter().filter(|h| h.len() == 64 || h.len() == 128) {
            if let Some(raw) = decode_hex(hash) {
                assert!(
                    !contains(bytes, &raw),
                    "{} holds raw hash bytes",
                    path.display()
                );
            }
        }
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[test]
fn sanctum_tokens_verify_after_import_and_upgrade_on_first_use() {
    check_scheme(LegacyScheme::Sanctum);
}

#[test]
fn drf_keys_verify_after_import_and_upgrade_on_first_use() {
    check_scheme(LegacyScheme::Drf);
}

#[test]
fn unkey_keys_verify_after_import_and_upgrade_on_first_use() {
    check_scheme(LegacyScheme::Unkey);
}

#[test]
fn better_auth_keys_verify_after_import_and_upgrade_on_first_use() {
    check_scheme(LegacyScheme::BetterAuth);
}

#[test]
fn a_bad_export_is_refused_whole_with_its_line() {
    let exports = make_exports();
    let case = &exports.cases["sanctum"];
    let data = std::fs::read(exports.path.join("sanctum.csv")).unwrap();
    let t = common::temp_store();
    // `*` abilities without saying which scopes they stand for.
    let mut options = options_of(case);
    options.all_scopes = None;
    let err = t
        .store
        .import_legacy(LegacyScheme::Sanctum, &data, &options)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LegacyImportInvalid);
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(t.store.all_keys().unwrap().is_empty());
    // A damaged hash on line 3: nothing imported, the line named, the hash not echoed.
    let text = String::from_utf8(data).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let stored = lines[2].split(',').nth(4).unwrap().to_owned();
    lines[2] = lines[2].replace(&stored, &stored[..60]);
    let damaged = lines.join("\n");
    let err = t
        .store
        .import_legacy(LegacyScheme::Sanctum, damaged.as_bytes(), &options_of(case))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LegacyImportInvalid);
    assert!(err.to_string().contains("line 3"), "{err}");
    assert!(!err.to_string().contains(&stored[..60]));
    assert!(t.store.all_keys().unwrap().is_empty());
    // DRF keys hashed with a password hasher (before 2.0) are named, not imported.
    let drf = "prefix,hashed_key,created,name,revoked\nabc,pbkdf2_sha256$1$s$h,2024-01-01,x,0\n";
    let err = t
        .store
        .import_legacy(
            LegacyScheme::Drf,
            drf.as_bytes(),
            &LegacyImportOptions {
                default_owner: Some("o".into()),
                ..LegacyImportOptions::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("pbkdf2_sha256"), "{err}");
}

#[test]
fn a_deleted_legacy_key_is_gone_for_every_process() {
    let exports = make_exports();
    let case = &exports.cases["unkey"];
    let data = std::fs::read(exports.path.join("unkey.jsonl")).unwrap();
    let t = common::temp_store();
    t.store
        .import_legacy(LegacyScheme::Unkey, &data, &options_of(case))
        .unwrap();
    let valid = keys(case, "valid");
    let other = Store::open_unshared(&t.path, common::options(&t.clock)).unwrap();
    for (n, k) in valid.iter().enumerate() {
        let key = k["key"].as_str().unwrap();
        if n == 1 {
            // The second one upgraded before its deletion.
            assert_eq!(t.store.verify(key, &[]).unwrap().reason, Reason::Valid);
        }
        let id = legacy_key_id(LegacyScheme::Unkey, k["source_id"].as_str().unwrap());
        t.store.delete(id.as_str()).unwrap();
        assert_eq!(other.verify(key, &[]).unwrap().reason, Reason::NotFound);
        assert_eq!(t.store.verify(key, &[]).unwrap().reason, Reason::NotFound);
    }
}

#[test]
fn a_revoke_after_the_upgrade_is_seen_by_every_process() {
    let exports = make_exports();
    let case = &exports.cases["drf"];
    let data = std::fs::read(exports.path.join("drf.csv")).unwrap();
    let t = common::temp_store();
    t.store
        .import_legacy(LegacyScheme::Drf, &data, &options_of(case))
        .unwrap();
    let other = Store::open_unshared(&t.path, common::options(&t.clock)).unwrap();
    let k = keys(case, "valid")[0];
    let key = k["key"].as_str().unwrap();
    assert_eq!(t.store.verify(key, &[]).unwrap().reason, Reason::Valid);
    assert_eq!(other.verify(key, &[]).unwrap().reason, Reason::Valid);
    let id = legacy_key_id(LegacyScheme::Drf, k["source_id"].as_str().unwrap());
    other.revoke(id.as_str(), Some("migrated")).unwrap();
    assert_eq!(t.store.verify(key, &[]).unwrap().reason, Reason::Revoked);
}
