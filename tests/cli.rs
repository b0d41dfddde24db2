//! The `keyward` command line, run as a separate process (assert_cmd) through every
//! subcommand, in text and `--json` modes, with bad input, and against a store this test
//! process holds open at the same time.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use keyward::{KeyInfo, NewKey, Reason, Store, StoreOptions, Timestamp};
use serde_json::Value;
use tempfile::TempDir;

/// A fresh store in a temporary directory, and a way to run `keyward` on it.
struct Env {
    dir: TempDir,
    db: PathBuf,
}

impl Env {
    /// A new, initialised store.
    fn new() -> Env {
        let env = Env::empty();
        env.ok(&["init"]);
        env
    }

    /// A directory without a store yet.
    fn empty() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("keys.redb");
        Env { dir, db }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `keyward args...` on this store (through `KEYWARD_DB`), with `stdin`.
    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        assert_cmd::cargo::cargo_bin_cmd!("keyward")
            .args(args)
            .env("KEYWARD_DB", &self.db)
            .env_remove("KEYWARD_PEPPER_FILE")
            .env_remove("KEYWARD_MAX_ACTIVE_KEYS")
            .env_remove("KEYWARD_KEEP_LAST_KEY")
            .env_remove("KEYWARD_MAX_LIFETIME")
            .env_remove("KEYWARD_ACTOR")
            .env_remove("KEYWARD_UPSTREAM")
            .env("USER", "tester")
            .write_stdin(stdin)
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    /// Runs and expects exit status 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "keyward {args:?}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs with `--json`, expects `code`, and parses stdout.
    fn json_with(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "keyward {all:?}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}): {}", text(&out.stdout)))
    }

    fn json(&self, args: &[&str]) -> Value {
        self.json_with(args, 0)
    }

    /// Runs and expects a failure with exit status `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "keyward {args:?}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            out.stdout.is_empty(),
            "a failure printed on stdout: {}",
            text(&out.stdout)
        );
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "stderr: {stderr}");
        stderr
    }

    /// Runs with `--json`, expects a failure with `code`, and returns the error object
    /// printed on stderr.
    fn json_error(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "keyward {all:?}\nstderr: {}",
            text(&out.stderr)
        );
        let error: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(error["error"]["exit_code"], code);
        error["error"].clone()
    }

    /// Creates a key through the CLI; returns (full key, id).
    fn create(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        let created = self.json(&all);
        (
            created["key"].as_str().unwrap().to_owned(),
            created["id"].as_str().unwrap().to_owned(),
        )
    }
}

/// Bytes as (lossy) UTF-8 text.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Opens the store in this test process, as an application worker would.
fn open(db: &Path) -> Store {
    Store::open(db, StoreOptions::default()).unwrap()
}

#[test]
fn init_creates_the_store_and_its_pepper_once() {
    let env = Env::empty();
    let out = env.ok(&["init"]);
    assert!(out.contains("Created key store"), "{out}");
    let pepper = env.path("keys.redb.pepper");
    assert_eq!(
        std::fs::metadata(&pepper).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let again = env.ok(&["init"]);
    assert!(
        again.contains("already exists (0 keys); nothing changed"),
        "{again}"
    );
    let report = env.json(&["init"]);
    assert_eq!(report["created"], false);
    assert_eq!(report["pepper_created"], false);
    assert_eq!(report["keys"], 0);

    let bad = env.path("bad.redb");
    let err = env.fails(
        &["init", "--db", bad.to_str().unwrap(), "--prefix", "ACME"],
        2,
    );
    assert!(err.contains("invalid prefix"), "{err}");
    assert!(!bad.exists());

    // A new store with an explicit pepper file that does not exist yet; --db before the
    // subcommand works as well as after it.
    let other = env.path("other.redb");
    let other_pepper = env.path("secrets/pepper");
    std::fs::create_dir(env.path("secrets")).unwrap();
    let report = env.json(&[
        "--db",
        other.to_str().unwrap(),
        "init",
        "--pepper-file",
        other_pepper.to_str().unwrap(),
        "--prefix",
        "acme",
    ]);
    assert_eq!(report["created"], true);
    assert_eq!(report["pepper_created"], true);
    assert_eq!(
        std::fs::metadata(&other_pepper)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(!env.path("other.redb.pepper").exists());
    let key = env.ok(&[
        "create",
        "--db",
        other.to_str().unwrap(),
        "--pepper-file",
        other_pepper.to_str().unwrap(),
        "--owner",
        "o",
        "--key-only",
    ]);
    assert!(key.starts_with("acme_"), "{key}");
}

#[test]
fn create_shows_the_full_key_once_and_never_again() {
    let env = Env::new();
    let out = env.ok(&[
        "create",
        "--owner",
        "acct_42",
        "--name",
        "CI deploy",
        "--scope",
        "read,deploy",
        "--env",
        "live",
        "--expires",
        "90d",
        "--metadata",
        r#"{"team":"ops"}"#,
    ]);
    assert!(
        out.contains("FULL KEY, shown once and never again"),
        "{out}"
    );
    let key = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("kw_live_"))
        .expect("the key is on its own line")
        .to_owned();
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    assert!(key.contains(&id));
    let secret = &key[key.len() - 38..key.len() - 6];

    // No other output ever holds the key or its secret.
    let others = [
        env.ok(&["list"]),
        env.ok(&["list", "--json"]),
        env.ok(&["show", &id]),
        env.ok(&["show", &id, "--json"]),
        env.ok(&["export"]),
        env.ok(&["usage", &id]),
        env.ok(&["verify", &key]),
        env.ok(&["verify", &key, "--json"]),
        env.ok(&["update", &id, "--name", "renamed", "--json"]),
        env.ok(&["revoke", &id]),
    ];
    for output in &others {
        assert!(!output.contains(secret), "secret leaked in: {output}");
    }
}

#[test]
fn create_in_json_and_key_only_modes() {
    let env = Env::new();
    let created = env.json(&[
        "create",
        "--owner",
        "acct_1",
        "--name",
        "n",
        "--scope",
        "b",
        "--scope",
        "a",
        "--env",
        "test",
        "--expires",
        "2099-01-01",
        "--metadata",
        "hello",
        "--credits",
        "5",
        "--refill",
        "10",
        "--refill-every",
        "daily",
        "--cost",
        "2",
    ]);
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("kw_test_"));
    assert!(key.contains(created["id"].as_str().unwrap()));
    assert!(key.contains(created["secret"].as_str().unwrap()));
    let info = &created["info"];
    assert_eq!(info["owner"], "acct_1");
    assert_eq!(info["scopes"], serde_json::json!(["a", "b"]));
    assert_eq!(info["state"], "active");
    assert_eq!(info["expires_at"], 4_070_908_800_000i64);
    assert_eq!(info["metadata"], "aGVsbG8="); // base64 of "hello"
    assert_eq!(info["credits"]["refill"]["interval"], "daily");
    assert_eq!(info["credits"]["cost"], 2);

    let only = env.ok(&["create", "--owner", "acct_1", "--key-only"]);
    assert_eq!(only.lines().count(), 1);
    assert!(only.starts_with("kw_") && only.ends_with('\n'));
    env.fails(&["create", "--owner", "acct_1", "--key-only", "--json"], 2);
    let err = env.fails(&["create", "--owner", "acct_1", "--cost", "3"], 2);
    assert!(err.contains("--credits"), "{err}");
    let err = env.json_error(&["create", "--owner", "acct_1", "--env", "Live!"], 2);
    assert_eq!(err["code"], "INVALID_ARGUMENT");
}

#[test]
fn list_filters_by_owner_state_and_idleness() {
    let env = Env::new();
    let (key_a, id_a) = env.create(&["--owner", "alice", "--name", "a1"]);
    let (_, id_a2) = env.create(&["--owner", "alice", "--name", "a2"]);
    let (_, id_b) = env.create(&["--owner", "bob", "--name", "b1"]);
    env.ok(&["revoke", &id_a2]);
    // An expired key, made through the library (the CLI only accepts future expiries).
    let expired = {
        let store = open(&env.db);
        let created = store
            .create(NewKey {
                owner: "alice".into(),
                name: "old".into(),
                expires_at: Some(Timestamp::from_millis(
                    Timestamp::now().as_millis() - 60_000,
                )),
                ..NewKey::default()
            })
            .unwrap();
        created.id().to_owned()
    };
    let ids = |v: &Value| -> Vec<String> {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = env.json(&["list"]);
    assert_eq!(all["count"], 4);
    assert_eq!(
        ids(&env.json(&["list", "--owner", "alice"])),
        [id_a.as_str(), id_a2.as_str(), expired.as_str()]
    );
    assert_eq!(
        ids(&env.json(&["list", "--owner", "alice", "--state", "active"])),
        [id_a.as_str()]
    );
    assert_eq!(
        ids(&env.json(&["list", "--state", "revoked"])),
        [id_a2.as_str()]
    );
    assert_eq!(
        ids(&env.json(&["list", "--owner", "alice", "--state", "expired"])),
        [expired.as_str()]
    );
    assert_eq!(
        ids(&env.json(&["list", "--state", "active"])),
        [id_a.as_str(), id_b.as_str()]
    );
    assert_eq!(env.json(&["list", "--limit", "1"])["count"], 1);
    assert_eq!(env.json(&["list", "--owner", "nobody"])["count"], 0);

    // Idle since a day ago: every key so far; once a_1 is used, not that one.
    assert_eq!(env.json(&["list", "--idle-since", "1d"])["count"], 4);
    env.ok(&["verify", &key_a]);
    assert_eq!(
        ids(&env.json(&["list", "--owner", "alice", "--idle-since", "1d"])),
        [id_a2.as_str(), expired.as_str()]
    );
    assert!(!ids(&env.json(&["list", "--idle-since", "1d"])).contains(&id_a));
    assert_eq!(
        env.json(&["list", "--idle-since", "2000-01-01"])["count"],
        3
    );

    let table = env.ok(&["list", "--owner", "alice"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATE") && header.contains("LAST USED"),
        "{table}"
    );
    assert!(
        table.contains("revoked") && table.contains("expired") && table.contains("3 keys"),
        "{table}"
    );
    assert_eq!(env.ok(&["list", "--owner", "nobody"]), "no keys match\n");
    env.fails(&["list", "--idle-since", "yesterday"], 2);
}

#[test]
fn show_and_update() {
    let env = Env::new();
    let (key, id) = env.create(&[
        "--owner",
        "o",
        "--name",
        "first",
        "--scope",
        "read",
        "--metadata",
        "m1",
    ]);
    let shown = env.ok(&["show", &id]);
    for expected in [
        "id:",
        "owner:",
        "o",
        "state:",
        "active",
        "scopes:",
        "read",
        "metadata:",
        "m1",
        "0 accepted",
    ] {
        assert!(shown.contains(expected), "{expected} missing in {shown}");
    }
    // A full key names its key too.
    assert_eq!(env.json(&["show", &key])["id"], id.as_str());

    let updated = env.json(&[
        "update",
        &id,
        "--name",
        "second",
        "--add-scope",
        "write",
        "--remove-scope",
        "read",
        "--metadata",
        "m2",
        "--expires",
        "30d",
        "--credits",
        "2",
    ]);
    assert_eq!(updated["name"], "second");
    assert_eq!(updated["scopes"], serde_json::json!(["write"]));
    assert!(updated["expires_at"].as_i64().unwrap() > Timestamp::now().as_millis());
    let shown = env.json(&["show", &id]);
    assert_eq!(shown["credits_remaining"], 2);
    assert_eq!(shown["metadata"], "bTI="); // base64 of "m2"

    // Credits are spent by verify, across processes.
    env.ok(&["verify", &key]);
    env.ok(&["verify", &key]);
    let refused = env.json_with(&["verify", &key], 1);
    assert_eq!(refused["reason"], "USAGE_EXCEEDED");
    assert_eq!(refused["http_status"], 403);

    let text = env.ok(&[
        "update",
        &id,
        "--unlimited",
        "--expires",
        "never",
        "--no-scopes",
    ]);
    assert!(
        text.contains("Updated key") && text.contains("expires: never"),
        "{text}"
    );
    let shown = env.json(&["show", &id]);
    assert_eq!(shown["credits"], Value::Null);
    assert_eq!(shown["expires_at"], Value::Null);
    assert_eq!(shown["scopes"], serde_json::json!([]));
    assert_eq!(shown["usage"]["uses"], 2);
    assert_eq!(shown["usage"]["refused"], 1);
    env.ok(&["verify", &key]);

    let err = env.json_error(&["update", &id], 2);
    assert_eq!(err["code"], "NOTHING_TO_UPDATE");
    env.fails(&["update", &id, "--expires", "2001-01-01"], 2);
}

#[test]
fn revoke_and_delete() {
    let env = Env::new();
    let (key, id) = env.create(&["--owner", "o"]);
    let revoked = env.json(&["revoke", &id, "--reason", "leaked in CI logs"]);
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(revoked["revoke_reason"], "leaked in CI logs");
    assert_eq!(revoked["already_revoked"], false);
    assert_eq!(env.json(&["revoke", &id])["already_revoked"], true);
    assert!(env.ok(&["revoke", &id]).contains("already revoked"));
    assert!(env.ok(&["show", &id]).contains("leaked in CI logs"));
    assert_eq!(env.json_with(&["verify", &key], 1)["reason"], "REVOKED");

    // Revoking by the full key (e.g. one found leaked).
    let (key2, id2) = env.create(&["--owner", "o"]);
    let text = env.ok(&["revoke", &key2]);
    assert!(text.contains(&format!("Revoked key {id2}")), "{text}");

    let err = env.fails(&["delete", &id], 2);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(env.json(&["delete", &id, "--yes"])["deleted"], id.as_str());
    assert!(env.ok(&["delete", &id2, "--yes"]).contains("Deleted key"));
    let err = env.json_error(&["show", &id], 3);
    assert_eq!(err["code"], "NOT_FOUND");
    env.fails(&["delete", &id, "--yes"], 3);
    assert_eq!(env.json_with(&["verify", &key], 1)["reason"], "NOT_FOUND");
}

#[test]
fn rotate_with_and_without_grace() {
    let env = Env::new();
    let (old_key, old_id) = env.create(&["--owner", "o", "--name", "svc", "--scope", "read"]);
    let out = env.ok(&["rotate", &old_id, "--grace", "1h"]);
    assert!(out.contains("keeps working until"), "{out}");
    assert!(
        out.contains("FULL KEY, shown once and never again"),
        "{out}"
    );
    let new_key = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("kw_"))
        .unwrap()
        .to_owned();
    // During the grace period both work; the new one inherits the scopes.
    env.ok(&["verify", &old_key, "--scope", "read"]);
    env.ok(&["verify", &new_key, "--scope", "read"]);

    let rotated = env.json(&["rotate", &new_key, "--grace", "0"]);
    let newest = rotated["key"].as_str().unwrap();
    assert_eq!(rotated["old"]["rotated_to"], rotated["id"]);
    assert_eq!(rotated["info"]["rotated_from"], rotated["old"]["id"]);
    assert_eq!(rotated["info"]["name"], "svc");
    assert_eq!(env.json_with(&["verify", &new_key], 1)["reason"], "EXPIRED");
    env.ok(&["verify", newest]);

    // A rotated key is not rotated again: the chain goes on from the newest key.
    let err = env.json_error(&["rotate", &old_id], 2);
    assert_eq!(err["code"], "INVALID_ARGUMENT");
    let only = env.ok(&["rotate", newest, "--key-only"]);
    assert_eq!(only.lines().count(), 1);
    let latest = only.trim().to_owned();
    env.ok(&["verify", &latest]);
    env.fails(&["rotate", &latest, "--grace", "1 hour"], 2);
    env.ok(&["revoke", &latest]);
    let err = env.json_error(&["rotate", &latest], 2);
    assert_eq!(err["code"], "INVALID_ARGUMENT");
}

#[test]
fn verify_keys_and_header_lines() {
    let env = Env::new();
    let (key, id) = env.create(&["--owner", "o", "--name", "api", "--scope", "read"]);

    let out = env.run(&["verify", &key]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("VALID"));
    let valid = env.json(&["verify", &key, "--scope", "read"]);
    assert_eq!(valid["valid"], true);
    assert_eq!(valid["reason"], "VALID");
    assert_eq!(valid["http_status"], 200);
    assert_eq!(valid["key"]["id"], id.as_str());

    let scope = env.run(&["verify", &key, "--scope", "read,admin"]);
    assert_eq!(scope.status.code(), Some(1));
    let stdout = text(&scope.stdout);
    assert!(
        stdout.contains("INSUFFICIENT_SCOPE (HTTP 403)")
            && stdout.contains("missing scopes: admin"),
        "{stdout}"
    );

    let malformed = env.json_with(&["verify", "kw_not_a_key"], 1);
    assert_eq!(malformed["reason"], "MALFORMED");
    assert_eq!(malformed["key"], Value::Null);
    let mut typo = key.clone();
    typo.pop();
    typo.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(env.json_with(&["verify", &typo], 1)["reason"], "MALFORMED");

    // The key from stdin keeps it out of shell history.
    let piped = env.run_with_stdin(&["verify", "-", "--json"], &format!("{key}\n"));
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped.stderr));

    // Header lines, in each style.
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let secret = &key[key.len() - 38..key.len() - 6];
    for headers in [
        vec![format!("x-api-key: {key}")],
        vec![format!("Authorization: Bearer {key}")],
        vec![format!("Authorization: Basic {basic}")],
        vec![
            format!("X-Api-Token-Id: {id}"),
            format!("X-Api-Token-Secret-Key: {secret}"),
        ],
    ] {
        let mut args = vec!["verify"];
        for h in &headers {
            args.extend(["--header", h.as_str()]);
        }
        assert_eq!(env.json(&args)["reason"], "VALID", "{headers:?}");
    }
    let piped = env.run_with_stdin(
        &["verify", "--header", "-"],
        &format!("X-Api-Token-Id: {id}\nX-Api-Token-Secret-Key: {secret}\n"),
    );
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped.stderr));

    // Header problems are refusals (HTTP 401), not usage errors.
    for (header, reason) in [
        ("Authorization: Digest abc", "UNSUPPORTED_SCHEME"),
        ("X-Api-Token-Id: AAAAAAAAAAAAAAAA", "HALF_PAIR"),
        ("Authorization: Basic !!!", "BAD_BASE64"),
        ("Accept: */*", "CREDENTIAL_MISSING"),
    ] {
        let refused = env.json_with(&["verify", "--header", header], 1);
        assert_eq!(refused["reason"], reason, "{header}");
        assert_eq!(refused["http_status"], 401);
    }
    let err = env.fails(&["verify", "--header", "no colon here"], 2);
    assert!(err.contains("Name: value"), "{err}");
    env.fails(&["verify"], 2);
}

#[test]
fn usage_per_day_for_a_key_and_an_owner() {
    let env = Env::new();
    let (key, id) = env.create(&["--owner", "o", "--name", "busy"]);
    let (_, idle) = env.create(&["--owner", "o", "--name", "idle"]);
    for _ in 0..3 {
        env.ok(&["verify", &key]);
    }
    env.run(&["verify", &key, "--scope", "missing"]);
    let today = Timestamp::now().day().to_string();

    let one = env.json(&["usage", &id]);
    assert_eq!(one["uses_in_range"], 3);
    let k = &one["keys"][0];
    assert_eq!(k["total"]["uses"], 3);
    assert_eq!(k["total"]["refused"], 1);
    assert_eq!(k["days"], serde_json::json!([{ "day": today, "uses": 3 }]));

    let text = env.ok(&["usage", &id, "--days", "7"]);
    assert!(
        text.contains("DAY") && text.contains(&today) && text.contains("3 accepted, 1 refused"),
        "{text}"
    );

    let owner = env.json(&[
        "usage",
        "--owner",
        "o",
        "--from",
        "2020-01-01",
        "--to",
        &today,
    ]);
    assert_eq!(owner["owner"], "o");
    assert_eq!(owner["from"], "2020-01-01");
    assert_eq!(owner["uses_in_range"], 3);
    assert_eq!(owner["keys"].as_array().unwrap().len(), 2);
    assert_eq!(owner["keys"][1]["id"], idle.as_str());
    assert_eq!(owner["keys"][1]["uses_in_range"], 0);
    let table = env.ok(&["usage", "--owner", "o"]);
    assert!(
        table.contains("USES IN RANGE") && table.contains("busy") && table.contains("idle"),
        "{table}"
    );

    assert!(env.ok(&["usage", &idle]).contains("No uses in this period"));
    env.fails(
        &["usage", &id, "--from", "2030-01-02", "--to", "2030-01-01"],
        2,
    );
    let err = env.json_error(&["usage", &id, "--from", "2030-02-30"], 2);
    assert_eq!(err["code"], "BAD_DATE");
    env.fails(&["usage"], 2);
}

#[test]
fn export_then_import_recreates_keys_as_new_ones() {
    let source = Env::new();
    let (old_key, old_id) = source.create(&[
        "--owner",
        "acct",
        "--name",
        "main",
        "--scope",
        "read",
        "--env",
        "live",
        "--metadata",
        "meta",
        "--credits",
        "7",
    ]);
    let (_, revoked) = source.create(&["--owner", "acct", "--name", "gone"]);
    source.ok(&["revoke", &revoked]);

    let export = source.ok(&["export"]);
    let records: Vec<KeyInfo> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert!(!export.contains("digest"), "{export}");
    let first: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(first["credits_remaining"], 7);

    let file = source.path("export.jsonl");
    let report = source.json(&["export", "--out", file.to_str().unwrap()]);
    assert_eq!(report["exported"], 2);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), export);
    let err = source.json_error(&["export", "--out", file.to_str().unwrap()], 2);
    assert_eq!(err["code"], "FILE_EXISTS");
    source.ok(&[
        "export",
        "--out",
        file.to_str().unwrap(),
        "--force",
        "--owner",
        "acct",
    ]);

    let target = Env::new();
    let dry = target.json(&["import", file.to_str().unwrap(), "--dry-run"]);
    assert_eq!(dry["would_import"], 1);
    assert_eq!(dry["skipped"][0]["reason"], "revoked");
    assert_eq!(target.json(&["list"])["count"], 0);

    let imported = target.json(&["import", file.to_str().unwrap()]);
    assert_eq!(imported["complete"], true);
    let entry = &imported["imported"][0];
    assert_eq!(entry["old_id"], old_id.as_str());
    let new_key = entry["key"].as_str().unwrap();
    let new_id = entry["id"].as_str().unwrap();
    assert_ne!(new_id, old_id);
    assert!(new_key.starts_with("kw_live_"));
    let shown = target.json(&["show", new_id]);
    assert_eq!(shown["owner"], "acct");
    assert_eq!(shown["name"], "main");
    assert_eq!(shown["scopes"], serde_json::json!(["read"]));
    assert_eq!(shown["metadata"], "bWV0YQ==");
    assert_eq!(shown["credits_remaining"], 7);
    target.ok(&["verify", new_key, "--scope", "read"]);
    assert_eq!(
        target.json_with(&["verify", &old_key], 1)["reason"],
        "NOT_FOUND"
    );

    // Text mode prints the new keys clearly marked; --keys-out writes them to a 0600 file.
    let text = target.ok(&["import", file.to_str().unwrap()]);
    assert!(
        text.contains("NEW FULL KEYS") && text.contains("kw_live_") && text.contains("revoked"),
        "{text}"
    );
    let keys_out = target.path("new-keys.jsonl");
    let text = target.ok(&[
        "import",
        file.to_str().unwrap(),
        "--keys-out",
        keys_out.to_str().unwrap(),
    ]);
    assert!(!text.contains("kw_live_"), "{text}");
    assert_eq!(
        std::fs::metadata(&keys_out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved: Value =
        serde_json::from_str(std::fs::read_to_string(&keys_out).unwrap().trim()).unwrap();
    target.ok(&["verify", saved["key"].as_str().unwrap()]);
    target.fails(
        &[
            "import",
            file.to_str().unwrap(),
            "--keys-out",
            keys_out.to_str().unwrap(),
        ],
        2,
    );

    // A file that is not an export: nothing is imported.
    let bad = target.path("bad.jsonl");
    std::fs::write(
        &bad,
        format!("{}\nnot json\n", export.lines().next().unwrap()),
    )
    .unwrap();
    let before = target.json(&["list"])["count"].clone();
    let err = target.json_error(&["import", bad.to_str().unwrap()], 2);
    assert_eq!(err["code"], "BAD_RECORD");
    assert!(err["message"].as_str().unwrap().contains("line 2"));
    assert_eq!(target.json(&["list"])["count"], before);
    target.fails(
        &["import", target.path("missing.jsonl").to_str().unwrap()],
        2,
    );
}

#[test]
fn import_reports_records_the_store_refuses_and_imports_the_rest() {
    let env = Env::new();
    let (_, id) = env.create(&["--owner", "o", "--name", "good"]);
    let line = env.ok(&["export"]);
    let mut bad: Value = serde_json::from_str(line.trim()).unwrap();
    bad["owner"] = Value::from("");
    let file = env.path("mixed.jsonl");
    std::fs::write(&file, format!("{bad}\n{line}")).unwrap();
    let out = env.run(&["import", file.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"][0]["old_id"], id.as_str());
    assert_eq!(report["failed"][0]["line"], 1);
    assert_eq!(report["failed"][0]["code"], "INVALID_ARGUMENT");
    assert!(text(&out.stderr).contains("1 of 2 records were refused"));
}

#[test]
fn bad_input_says_what_is_wrong_and_what_to_do() {
    let env = Env::new();
    let (key, id) = env.create(&["--owner", "o"]);

    // Unknown key.
    let err = env.fails(&["show", "AAAAAAAAAAAAAAAA"], 3);
    assert!(
        err.contains("no key with id") && err.contains("hint: "),
        "{err}"
    );
    env.fails(&["revoke", "AAAAAAAAAAAAAAAA"], 3);
    env.fails(&["usage", "AAAAAAAAAAAAAAAA"], 3);

    // Bad durations.
    let err = env.fails(&["create", "--owner", "o", "--expires", "90x"], 2);
    assert!(
        err.contains("invalid duration \"90x\"") && err.contains("unknown unit"),
        "{err}"
    );
    let err = env.fails(&["create", "--owner", "o", "--expires", "90"], 2);
    assert!(err.contains("did you mean 90d?"), "{err}");
    let err = env.json_error(&["rotate", &id, "--grace=-1h"], 2);
    assert_eq!(err["code"], "BAD_DURATION");
    assert!(err["hint"].as_str().unwrap().contains("90d"));

    // Malformed keys and ids.
    let err = env.json_error(&["show", "kw_live_tooShort"], 2);
    assert_eq!(err["code"], "MALFORMED_KEY");
    let err = env.json_error(&["revoke", "not-an-id"], 2);
    assert_eq!(err["code"], "BAD_KEY_ID");

    // Missing store, no store given.
    let err = env.fails(
        &["list", "--db", env.path("typo.redb").to_str().unwrap()],
        5,
    );
    assert!(
        err.contains("no key store at") && err.contains("keyward init"),
        "{err}"
    );
    assert!(
        !env.path("typo.redb").exists(),
        "a mistyped --db must not create a store"
    );
    let out = assert_cmd::cargo::cargo_bin_cmd!("keyward")
        .args(["list"])
        .env_remove("KEYWARD_DB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--db PATH or set KEYWARD_DB"));

    // Pepper: a wrong file, a missing explicit file, then the default file gone.
    let wrong = env.path("wrong.pepper");
    std::fs::write(&wrong, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = env.json_error(&["list", "--pepper-file", wrong.to_str().unwrap()], 6);
    assert_eq!(err["code"], "WRONG_PEPPER");
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = env.json_error(&["list", "--pepper-file", wrong.to_str().unwrap()], 6);
    assert_eq!(err["code"], "PEPPER_PERMISSIONS");
    let err = env.json_error(
        &["list", "--pepper-file", env.path("nope").to_str().unwrap()],
        6,
    );
    assert_eq!(err["code"], "PEPPER_MISSING");
    std::fs::remove_file(env.path("keys.redb.pepper")).unwrap();
    let err = env.fails(&["verify", &key], 6);
    assert!(
        err.contains("pepper file") && err.contains("--pepper-file"),
        "{err}"
    );

    // clap's own usage errors exit with 2 as well.
    assert_eq!(
        env.run(&["list", "--state", "sleeping"]).status.code(),
        Some(2)
    );
    assert_eq!(env.run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn policies_refuse_with_their_own_exit_status() {
    let env = Env::new();
    let (_, id) = env.create(&["--owner", "o"]);
    let err = env.json_error(&["revoke", &id, "--keep-last-key"], 4);
    assert_eq!(err["code"], "POLICY_LAST_ACTIVE_KEY");
    env.fails(&["delete", &id, "--yes", "--keep-last-key"], 4);
    let err = env.json_error(&["create", "--owner", "o", "--max-active-keys", "1"], 4);
    assert_eq!(err["code"], "POLICY_MAX_ACTIVE_KEYS");
    let out = assert_cmd::cargo::cargo_bin_cmd!("keyward")
        .args(["create", "--owner", "o"])
        .env("KEYWARD_DB", &env.db)
        .env("KEYWARD_MAX_LIFETIME", "30d")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--expires"));
    env.ok(&[
        "create",
        "--owner",
        "o",
        "--max-lifetime",
        "30d",
        "--expires",
        "7d",
    ]);
}

#[test]
fn audit_shows_every_change_made_from_the_shell() {
    let env = Env::new();
    let (key, id) = env.create(&["--owner", "o", "--name", "a"]);
    let (key2, id2) = env.create(&["--owner", "o", "--actor", "bob"]);
    env.ok(&["update", &id, "--name", "renamed", "--actor", "bob"]);
    let rotated = env.json(&["rotate", &id, "--grace", "0s"]);
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    env.ok(&["revoke", &new_id]);
    env.ok(&["delete", &id2, "--yes"]);
    env.fails(&["delete", &id2, "--yes"], 3);
    let (_, id3) = env.create(&["--owner", "p"]);
    env.fails(&["revoke", &id3, "--keep-last-key"], 4);
    let file = env.path("export.jsonl");
    env.ok(&["export", "--out", file.to_str().unwrap()]);
    let imported = env.json(&["import", file.to_str().unwrap()]);
    let imported_count = imported["imported"].as_array().unwrap().len();
    assert_eq!(imported_count, 1, "{imported}");

    let page = env.json(&["audit", "--limit", "1000"]);
    let events = page["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let mut expected = vec![
        "create",
        "create",
        "update",
        "rotate",
        "rotate",
        "revoke",
        "delete",
        "create",
        "policy_refused",
    ];
    expected.extend(std::iter::repeat_n("import", imported_count));
    assert_eq!(actions, expected);
    assert_eq!(events[0]["actor"], "cli:tester");
    assert_eq!(events[1]["actor"], "bob");
    assert_eq!(events[2]["changed"], serde_json::json!(["name"]));
    assert_eq!(events[8]["detail"], "POLICY_LAST_ACTIVE_KEY");
    assert_eq!(events[8]["key_id"], id3.as_str());
    assert!(page["next"].is_null());
    let all = serde_json::to_string(&page).unwrap();
    assert!(
        !all.contains(&key[key.len() - 38..key.len() - 6]),
        "secret in the log"
    );
    assert!(!all.contains(&key2[key2.len() - 38..key2.len() - 6]));

    // Filters and paging.
    let by_key = env.json(&["audit", "--key", &key]);
    assert_eq!(by_key["events"].as_array().unwrap().len(), 3);
    let by_bob = env.json(&["audit", "--by", "bob"]);
    assert_eq!(by_bob["events"].as_array().unwrap().len(), 2);
    let by_owner = env.json(&["audit", "--owner", "p"]);
    assert_eq!(by_owner["events"].as_array().unwrap().len(), 3);
    assert!(
        env.json(&["audit", "--since", "2999-01-01"])["events"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        env.json(&["audit", "--since", "1h", "--until", "2999-01-01"])["events"]
            .as_array()
            .unwrap()
            .len(),
        events.len()
    );
    let first = env.json(&["audit", "--limit", "4"]);
    let next = first["next"].as_u64().unwrap();
    let second = env.json(&["audit", "--limit", "4", "--after", &next.to_string()]);
    assert_eq!(second["events"][0]["action"], "rotate");

    // The table.
    let table = env.ok(&["audit", "--limit", "3"]);
    assert!(
        table.contains("ACTION") && table.contains("cli:tester"),
        "{table}"
    );
    assert!(table.contains("3 events; more with --after 3"), "{table}");
    assert!(
        env.ok(&["audit", "--by", "nobody"])
            .contains("no events match")
    );
    env.fails(&["audit", "--limit", "0"], 2);
}

/// The acceptance test: the CLI revokes a key while this process holds the store open, and
/// this process refuses the key on its very next verify.
#[test]
fn a_revoke_from_the_shell_is_refused_by_a_process_holding_the_store_open() {
    let env = Env::new();
    let worker = open(&env.db);
    let (key, id) = env.create(&["--owner", "o", "--scope", "read"]);

    // A key created by the CLI is visible at once.
    assert_eq!(
        worker.verify(&key, &["read"]).unwrap().reason,
        Reason::Valid
    );
    assert_eq!(
        worker.verify(&key, &["read"]).unwrap().reason,
        Reason::Valid
    );

    let out = env.ok(&["revoke", &id, "--reason", "incident 42"]);
    assert!(out.contains("Revoked key"), "{out}");
    let verdict = worker.verify(&key, &["read"]).unwrap();
    assert_eq!(verdict.reason, Reason::Revoked);
    assert_eq!(
        verdict.key.unwrap().revoke_reason.as_deref(),
        Some("incident 42")
    );

    // And a rotation with no grace from the shell: the old key is refused at once.
    let (key2, id2) = env.create(&["--owner", "o"]);
    assert!(worker.verify(&key2, &[]).unwrap().is_valid());
    let rotated = env.json(&["rotate", &id2, "--grace", "0"]);
    assert_eq!(worker.verify(&key2, &[]).unwrap().reason, Reason::Expired);
    assert!(
        worker
            .verify(rotated["key"].as_str().unwrap(), &[])
            .unwrap()
            .is_valid()
    );

    // The worker's usage, once flushed, is what the CLI reports.
    worker.flush().unwrap();
    let usage = env.json(&["usage", &id]);
    assert_eq!(usage["keys"][0]["total"]["uses"], 2);
    assert_eq!(usage["keys"][0]["total"]["refused"], 1);
}

#[test]
fn help_documents_exit_codes() {
    let env = Env::empty();
    let help = env.ok(&["--help"]);
    for expected in [
        "Exit status:",
        "not found",
        "policy",
        "storage",
        "pepper",
        "90d",
    ] {
        assert!(help.contains(expected), "{expected} missing in {help}");
    }
    for sub in [
        "init", "create", "list", "show", "update", "revoke", "delete", "rotate", "verify",
        "usage", "export", "import", "bench",
    ] {
        assert!(help.contains(sub), "{sub} missing in help");
        env.ok(&[sub, "--help"]);
    }
}

#[test]
fn import_of_more_than_one_batch_and_options_before_the_subcommand() {
    let source = Env::new();
    {
        let store = open(&source.db);
        let batch = (0..520)
            .map(|i| NewKey {
                owner: format!("owner{}", i % 7),
                name: format!("key {i}"),
                ..NewKey::default()
            })
            .collect();
        store.create_many(batch).unwrap();
        store.close().unwrap();
    }
    let file = source.path("all.jsonl");
    let db = source.db.to_str().unwrap();
    // --db and --json given before the subcommand.
    let report = source.json(&["--db", db, "--json", "export", "-o", file.to_str().unwrap()]);
    assert_eq!(report["exported"], 520);

    let target = Env::new();
    let keys_out = target.path("keys.jsonl");
    let report = target.json(&[
        "import",
        file.to_str().unwrap(),
        "--keys-out",
        keys_out.to_str().unwrap(),
    ]);
    assert_eq!(report["imported"].as_array().unwrap().len(), 520);
    assert_eq!(report["imported"][519]["name"], "key 519");
    let lines = std::fs::read_to_string(&keys_out).unwrap();
    assert_eq!(lines.lines().count(), 520);
    assert_eq!(target.json(&["list", "--owner", "owner3"])["count"], 74);
    let last: Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    target.ok(&["verify", last["key"].as_str().unwrap()]);

    // `verify -` with nothing on stdin is bad input, not a refusal.
    let out = target.run_with_stdin(&["verify", "-"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no key on stdin"));
}

#[test]
fn a_store_held_in_single_process_mode_is_reported_as_locked() {
    let env = Env::new();
    let holder = Store::open_unshared(
        &env.db,
        StoreOptions {
            concurrency: keyward::Concurrency::SingleProcess,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let err = env.json_error(&["list"], 5);
    assert_eq!(err["code"], "LOCKED");
    assert!(err["message"].as_str().unwrap().contains("multi-process"));
    drop(holder);
    env.ok(&["list"]);
}

/// Bytes of an edge.json text: a JSON string or `{"hex": ...}`.
fn edge_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        other => {
            let hex = other["hex"].as_str().expect("a string or {hex}");
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect()
        }
    }
}

fn os(bytes: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).to_owned()
}

/// Replays tests/vectors/edge.json through `keyward verify` (a key as an argument, or on
/// stdin when it holds a NUL; header lines on stdin with `--header -`) and `keyward create`:
/// a verdict is exit 0/1 with the reason and HTTP status in the JSON; a header problem exit 1
/// with its code and 401 (the CLI answers like a server); the application's errors exit 2
/// (the ARGUMENT family; with the status name in the JSON error when the library reported
/// it, not clap). Counts the cases run against the number naming the cli door.
#[test]
fn edge_vectors() {
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/vectors/edge.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let env = Env::new();
    let mut run = 0;
    for case in vectors["cases"].as_array().unwrap() {
        if !case["doors"].as_array().unwrap().iter().any(|d| d == "cli") {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let mut args: Vec<std::ffi::OsString> = vec!["--json".into()];
        let mut stdin: Vec<u8> = Vec::new();
        match case["op"].as_str().unwrap() {
            "verify" => {
                let key = edge_bytes(&case["key"]);
                args.push("verify".into());
                if key.contains(&0) {
                    args.push("-".into());
                    stdin = key;
                } else {
                    args.push(os(&key));
                }
            }
            "headers" => {
                args.extend(["verify".into(), "--header".into(), "-".into()]);
                let repeat = case["repeat"].as_u64().unwrap_or(1);
                for _ in 0..repeat {
                    for h in case["headers"].as_array().unwrap() {
                        stdin.extend(edge_bytes(&h[0]));
                        stdin.extend(b": ");
                        stdin.extend(edge_bytes(&h[1]));
                        stdin.push(b'\n');
                    }
                }
            }
            "create" => {
                args.extend([
                    "create".into(),
                    "--owner".into(),
                    os(&edge_bytes(&case["owner"])),
                ]);
            }
            op => panic!("{name}: the cli door has no {op}"),
        }
        for scope in case["scopes"].as_array().unwrap() {
            args.push("--scope".into());
            args.push(os(&edge_bytes(scope)));
        }
        let out = assert_cmd::cargo::cargo_bin_cmd!("keyward")
            .args(&args)
            .env("KEYWARD_DB", &env.db)
            .env_remove("KEYWARD_PEPPER_FILE")
            .write_stdin(stdin)
            .output()
            .unwrap();
        let code = out.status.code();
        let expect = &case["expect"];
        let context = format!(
            "{name}: exit {code:?}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        if expect["created"] == true {
            assert_eq!(code, Some(0), "{context}");
        } else if expect["family"] == "ARGUMENT" {
            assert_eq!(code, Some(2), "{context}");
            if let Ok(error) = serde_json::from_slice::<Value>(&out.stderr) {
                assert_eq!(error["error"]["code"], expect["status"], "{context}");
            }
        } else {
            let want = expect["reason"]
                .as_str()
                .or(expect["code"].as_str())
                .unwrap();
            assert_eq!(code, Some(if want == "VALID" { 0 } else { 1 }), "{context}");
            let verdict: Value =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(verdict["reason"], want, "{context}");
            assert_eq!(verdict["http_status"], expect["http_status"], "{context}");
        }
        run += 1;
    }
    assert_eq!(
        run,
        vectors["applicable"]["cli"].as_u64().unwrap() as usize,
        "edge cases run by the cli door"
    );
}

#[test]
fn verify_dry_run_counts_nothing_and_spends_no_credit() {
    let env = Env::new();
    let (key, id) = env.create(&["--owner", "o", "--scope", "read", "--credits", "1"]);
    for _ in 0..3 {
        let dry = env.json(&["verify", &key, "--dry-run", "--scope", "read"]);
        assert_eq!(dry["reason"], "VALID");
        assert_eq!(dry["key"]["id"], id.as_str());
        let scope = env.json_with(&["verify", &key, "--dry-run", "--scope", "admin"], 1);
        assert_eq!(scope["reason"], "INSUFFICIENT_SCOPE");
        let header = format!("x-api-key: {key}");
        assert_eq!(
            env.json(&["verify", "--dry-run", "--header", &header])["reason"],
            "VALID"
        );
    }
    let text = env.ok(&["verify", &key, "--dry-run"]);
    assert!(text.contains("dry run"), "{text}");
    let refused = env.json_with(&["verify", "--dry-run", "--header", "Accept: */*"], 1);
    assert_eq!(refused["reason"], "CREDENTIAL_MISSING");
    let shown = env.json(&["show", &id]);
    assert_eq!(shown["credits_remaining"], 1);
    let usage = env.json(&["usage", &id]);
    let total = &usage["keys"][0]["total"];
    assert_eq!(total["uses"], 0, "{usage}");
    assert_eq!(total["refused"], 0, "{usage}");
    assert_eq!(total["last_used"], Value::Null, "{usage}");
    // The one real verify spends the credit; a dry run then says USAGE_EXCEEDED.
    env.ok(&["verify", &key]);
    let dry = env.json_with(&["verify", &key, "--dry-run"], 1);
    assert_eq!(dry["reason"], "USAGE_EXCEEDED");
    assert_eq!(env.json(&["usage", &id])["keys"][0]["total"]["uses"], 1);
}

#[test]
fn list_warns_of_keys_expiring_soon_and_low_on_credits() {
    let env = Env::new();
    let (_, soon) = env.create(&["--owner", "o", "--expires", "2d"]);
    let (_, _later) = env.create(&["--owner", "o", "--expires", "30d"]);
    let (_, _never) = env.create(&["--owner", "p"]);
    let (low_key, low) = env.create(&["--owner", "p", "--credits", "3"]);
    let (_, _plenty) = env.create(&["--owner", "p", "--credits", "500"]);
    let ids = |listing: Value| -> Vec<String> {
        listing["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(env.json(&["list", "--expiring", "7d"])),
        [soon.as_str()]
    );
    assert_eq!(
        ids(env.json(&["list", "--expiring", "7d", "--owner", "o"])),
        [soon.as_str()]
    );
    assert!(ids(env.json(&["list", "--expiring", "7d", "--owner", "p"])).is_empty());
    assert_eq!(
        ids(env.json(&["list", "--credits-below", "10"])),
        [low.as_str()]
    );
    assert!(ids(env.json(&["list", "--credits-below", "3"])).is_empty());
    env.ok(&["verify", &low_key]);
    assert_eq!(
        ids(env.json(&["list", "--credits-below", "3"])),
        [low.as_str()]
    );
    let text = env.ok(&["list", "--expiring", "7d"]);
    assert!(text.contains(&soon) && text.contains("1 key"), "{text}");
    let err = env.fails(&["list", "--expiring", "soon"], 2);
    assert!(err.contains("soon"), "{err}");
}

#[test]
fn bulk_import_skips_bad_records_in_a_batch_and_every_new_key_verifies() {
    let source = Env::new();
    let (_, _) = source.create(&["--owner", "o", "--name", "model", "--scope", "read"]);
    let line: Value = serde_json::from_str(source.ok(&["export"]).trim()).unwrap();
    let mut text_lines = String::new();
    for i in 0..3000 {
        let mut record = line.clone();
        record["owner"] = Value::from(format!("bulk{}", i % 11));
        record["name"] = Value::from(format!("key {i}"));
        if i == 999 || i == 2499 {
            record["owner"] = Value::from("");
        }
        text_lines.push_str(&format!("{record}\n"));
    }
    let file = source.path("bulk.jsonl");
    std::fs::write(&file, text_lines).unwrap();

    let target = Env::new();
    let keys_out = target.path("keys.jsonl");
    let out = target.run(&[
        "import",
        file.to_str().unwrap(),
        "--keys-out",
        keys_out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"].as_array().unwrap().len(), 2998);
    let failed: Vec<u64> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [1000, 2500]);
    assert_eq!(report["failed"][0]["code"], "INVALID_ARGUMENT");
    assert!(
        !report["failed"][0]["message"]
            .as_str()
            .unwrap()
            .contains("batch"),
        "{}",
        report["failed"][0]
    );
    let keys = std::fs::read_to_string(&keys_out).unwrap();
    assert_eq!(keys.lines().count(), 2998);
    let store = open(&target.db);
    for line in keys.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let verdict = store
            .verify(entry["key"].as_str().unwrap(), &["read"])
            .unwrap();
        assert_eq!(verdict.reason, keyward::Reason::Valid);
        assert_eq!(verdict.key.unwrap().owner, entry["owner"].as_str().unwrap());
    }
}

/// `keyward import --from …`: keys made by Sanctum's and Unkey's real algorithms
/// (tests/legacy/make_exports.py) are brought in as they are, verify with exit 0 (and are then
/// upgraded, as `show` says), wrong ones exit 1, a dry run writes nothing, a bad export
/// exits 2 naming its line, and a store without legacy keys calls such text malformed.
#[test]
fn import_from_other_systems_keeps_their_keys_working() {
    let env = Env::new();
    let exports = env.path("exports");
    let status = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/legacy/make_exports.py"))
        .arg(&exports)
        .status()
        .unwrap();
    assert!(status.success());
    let cases: Value =
        serde_json::from_slice(&std::fs::read(exports.join("cases.json")).unwrap()).unwrap();
    let sanctum_csv = exports.join("sanctum.csv");
    let sanctum_csv = sanctum_csv.to_str().unwrap();
    // The first Sanctum token has no expiry (the CLI judges at the real time).
    let valid = cases["sanctum"]["valid"][0]["key"].as_str().unwrap();
    let verdict = env.json_with(&["verify", valid], 1);
    assert_eq!(verdict["reason"], "MALFORMED");

    let dry = env.json(&[
        "import",
        "--from",
        "sanctum",
        sanctum_csv,
        "--all-scopes",
        "deploy,servers:read,servers:write",
        "--dry-run",
    ]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["imported"], 5);
    assert_eq!(env.json_with(&["verify", valid], 1)["reason"], "MALFORMED");

    // Without --all-scopes the "*" abilities cannot be mapped: bad input, line named.
    let err = env.json_error(&["import", "--from", "sanctum", sanctum_csv], 2);
    assert_eq!(err["code"], "LEGACY_IMPORT_INVALID");
    assert!(err["message"].as_str().unwrap().contains("line 2"), "{err}");
    let err = env.json_error(&["import", "--from", "lotus-notes", sanctum_csv], 2);
    assert_eq!(err["code"], "BAD_SCHEME");

    let report = env.json(&[
        "import",
        "--from",
        "sanctum",
        sanctum_csv,
        "--all-scopes",
        "deploy,servers:read,servers:write",
    ]);
    assert_eq!(report["imported"], 5);
    let id = report["ids"][0].as_str().unwrap().to_owned();
    let before = env.json(&["show", &id]);
    assert_eq!(before["legacy"]["scheme"], "sanctum", "{before}");
    assert_eq!(before["legacy"]["upgraded_at"], Value::Null);
    env.ok(&["verify", valid, "--scope", "deploy"]);
    let after = env.json(&["show", &id]);
    assert!(after["legacy"]["upgraded_at"].is_i64(), "{after}");
    env.ok(&["verify", valid]);
    for wrong in cases["sanctum"]["wrong"].as_array().unwrap() {
        let verdict = env.json_with(&["verify", wrong.as_str().unwrap()], 1);
        assert_eq!(verdict["reason"], "NOT_FOUND");
    }

    let unkey = exports.join("unkey.jsonl");
    let text = env.ok(&["import", "--from", "unkey", unkey.to_str().unwrap()]);
    assert!(text.contains("Imported 4 of 5 rows from unkey"), "{text}");
    env.ok(&[
        "verify",
        cases["unkey"]["valid"][0]["key"].as_str().unwrap(),
    ]);
    // The audit log names every import.
    let audit = env.json(&["audit", "--limit", "100"]);
    let imports = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "import")
        .count();
    assert_eq!(imports, 9, "{audit}");
}

#[test]
fn owners_suspend_resume_scopes_and_records() {
    let env = Env::new();
    let (key, _) = env.create(&["--owner", "acct", "--scope", "read", "--scope", "write"]);
    assert_eq!(env.ok(&["owners", "list"]), "no owner records\n");
    let shown = env.json(&["owners", "show", "acct"]);
    assert_eq!(
        (shown["keys"].as_u64(), shown["created_at"].is_null()),
        (Some(1), true)
    );
    let out = env.ok(&[
        "owners", "suspend", "acct", "--reason", "unpaid", "--actor", "ops",
    ]);
    assert!(out.contains("suspended"), "{out}");
    let verdict = env.json_with(&["verify", &key], 1);
    assert_eq!(verdict["reason"], "OWNER_SUSPENDED", "{verdict}");
    let again = env.ok(&["owners", "suspend", "acct"]);
    assert!(again.contains("already suspended"), "{again}");
    env.ok(&["owners", "resume", "acct"]);
    env.ok(&["verify", &key, "--scope", "write"]);
    let scoped = env.json(&["owners", "set-scopes", "acct", "read"]);
    assert_eq!(scoped["allowed_scopes"], serde_json::json!(["read"]));
    let narrowed = env.json_with(&["verify", &key, "--scope", "write"], 1);
    assert_eq!(narrowed["reason"], "INSUFFICIENT_SCOPE", "{narrowed}");
    env.ok(&["owners", "set-scopes", "acct", "--clear"]);
    env.ok(&["verify", &key, "--scope", "write"]);
    let listed = env.ok(&["owners", "list"]);
    assert!(
        listed.contains("acct") && listed.contains("active"),
        "{listed}"
    );
    let missing = env.json_error(&["owners", "show", "nobody"], 3);
    assert_eq!(missing["code"], "OWNER_NOT_FOUND", "{missing}");
    env.fails(&["owners", "set-scopes", "acct"], 2);
    let page = env.json(&["audit", "--owner", "acct"]);
    let owner_events: Vec<(&str, &str)> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key_id"].is_null())
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        owner_events,
        [
            ("owner_suspend", "ops"),
            ("owner_resume", "cli:tester"),
            ("owner_scopes", "cli:tester"),
            ("owner_scopes", "cli:tester")
        ]
    );
}

/// Issue 19: `create --rate --burst`, `update --rate / --no-rate-limit`, `show`, and
/// `rate-limit` for an owner; a refusal reads RATE_LIMITED (exit 1); bad terms exit 2.
#[test]
fn rate_limits_for_keys_and_owners() {
    let env = Env::new();
    let (key, id) = env.create(&["--owner", "acct", "--rate", "2/min", "--burst", "2"]);
    let shown = env.json(&["show", &id]);
    assert_eq!(shown["rate_limit"]["rate"], 2);
    assert_eq!(shown["rate_limit"]["period_ms"], 60_000);
    assert_eq!(shown["rate_limit"]["burst"], 2);
    assert_eq!(shown["rate_status"]["remaining"], 2);
    assert!(env.ok(&["show", &id]).contains("2/1min burst 2"));
    env.ok(&["verify", &key]);
    env.ok(&["verify", &key]);
    let refused = env.run(&["verify", &key]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stdout).contains("RATE_LIMITED (HTTP 429)"));
    assert!(text(&refused.stdout).contains("  Retry-After: "));
    assert!(text(&refused.stdout).contains("  RateLimit-Policy: \"key\";q=2;w=60"));
    assert_eq!(env.json(&["show", &id])["rate_status"]["remaining"], 0);
    // Update: a faster limit; then none.
    let updated = env.json(&["update", &id, "--rate", "100/s"]);
    assert_eq!(updated["rate_limit"]["burst"], 100, "burst defaults to N");
    env.json(&["update", &id, "--no-rate-limit"]);
    assert!(env.json(&["show", &id])["rate_limit"].is_null());
    // Owner limit.
    assert!(
        env.ok(&["rate-limit", "--owner", "acct"])
            .contains("has no rate limit")
    );
    let set = env.json(&[
        "rate-limit",
        "--owner",
        "acct",
        "--rate",
        "1000/s",
        "--burst",
        "100",
    ]);
    assert_eq!(set["rate_limit"]["rate"], 1000);
    assert_eq!(env.json(&["show", &id])["owner_rate_limit"]["burst"], 100);
    assert!(
        env.ok(&["show", &id])
            .contains("1000/1s burst 100 (shared by the owner's keys)")
    );
    env.json(&["rate-limit", "--owner", "acct", "--remove"]);
    assert!(env.json(&["rate-limit", "--owner", "acct"])["rate_limit"].is_null());
    // Bad terms: a clear error, exit 2, nothing created.
    let err = env.fails(&["create", "--owner", "acct", "--rate", "10/fortnight"], 2);
    assert!(err.contains("cannot read --rate"), "{err}");
    let err = env.json_error(&["create", "--owner", "acct", "--rate", "0/s"], 2);
    assert_eq!(err["code"], "BAD_RATE");
    assert_eq!(env.json(&["list", "--owner", "acct"])["count"], 1);
}
