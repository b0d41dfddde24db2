//! The CLI's ordinary management commands on a replica store (feature `postgres`):
//! `--upstream URL` / `KEYWARD_UPSTREAM` makes `keyward create|update|rotate|revoke|delete`
//! write to PostgreSQL first, so the change reaches the other hosts (here: `keyward
//! replicate --once` on a second store). Against a real server (tests/common/pg.rs;
//! scripts/test-postgres.sh runs this).

#[path = "common/pg.rs"]
mod pg;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use keyward::Pepper;
use pg::PgServer;

struct Hosts {
    _dir: tempfile::TempDir,
    pepper: PathBuf,
    dbs: [PathBuf; 2],
}

impl Hosts {
    fn new() -> Hosts {
        let dir = tempfile::tempdir().unwrap();
        let pepper = dir.path().join("shared.pepper");
        Pepper::create_file(&pepper).unwrap();
        let dbs = [dir.path().join("a.redb"), dir.path().join("b.redb")];
        let hosts = Hosts {
            _dir: dir,
            pepper,
            dbs,
        };
        for db in &hosts.dbs {
            let out = hosts.run(db, None, &["init"]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        hosts
    }

    /// `keyward --db DB --pepper-file P [--upstream URL] ARGS --json`.
    fn run(&self, db: &Path, upstream: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyward"));
        cmd.arg("--db")
            .arg(db)
            .arg("--pepper-file")
            .arg(&self.pepper)
            .env_remove("KEYWARD_UPSTREAM")
            .stdin(Stdio::null());
        if let Some(url) = upstream {
            cmd.arg("--upstream").arg(url);
        }
        cmd.args(args).arg("--json").output().unwrap()
    }

    fn json(&self, db: &Path, upstream: Option<&str>, args: &[&str]) -> serde_json::Value {
        let out = self.run(db, upstream, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The reason `keyward verify` gives for `key` on host `i`.
    fn reason(&self, i: usize, key: &str) -> String {
        let out = self.run(&self.dbs[i], None, &["verify", key]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["reason"].as_str().unwrap().to_owned()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ordinary_commands_with_upstream_reach_the_other_host() {
    let pg = PgServer::start();
    let hosts = Hosts::new();
    let (a, b) = (&hosts.dbs[0], &hosts.dbs[1]);
    let url = Some(pg.url.as_str());

    let created = hosts.json(a, url, &["create", "--owner", "acct_1", "--scope", "read"]);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(pg.psql("SELECT count(*) FROM keyward_keys"), "1");
    assert_eq!(hosts.reason(0, &key), "VALID");
    assert_eq!(hosts.reason(1, &key), "NOT_FOUND");
    hosts.json(b, url, &["replicate", "--once"]);
    assert_eq!(hosts.reason(1, &key), "VALID");

    // The environment variable does the same as the option.
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["--db"])
        .arg(a)
        .arg("--pepper-file")
        .arg(&hosts.pepper)
        .env("KEYWARD_UPSTREAM", &pg.url)
        .args(["update", &id, "--name", "renamed", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rotated = hosts.json(a, url, &["rotate", &id, "--grace", "1h"]);
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    hosts.json(a, url, &["revoke", &new_id, "--reason", "leaked"]);
    hosts.json(b, url, &["delete", &id, "--yes"]);
    assert_eq!(
        pg.psql("SELECT string_agg(action, ',' ORDER BY seq) FROM keyward_audit"),
        "create,update,rotate,rotate,revoke,delete"
    );

    hosts.json(b, url, &["replicate", "--once"]);
    assert_eq!(hosts.reason(1, &new_key), "REVOKED");
    assert_eq!(hosts.reason(1, &key), "NOT_FOUND");
    hosts.json(a, url, &["replicate", "--once"]);
    assert_eq!(hosts.reason(0, &key), "NOT_FOUND");

    // Without --upstream, a replica refuses local changes (exit 7, UPSTREAM_REQUIRED).
    let out = hosts.run(a, None, &["create", "--owner", "acct_2"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("UPSTREAM_REQUIRED"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_server_that_is_down_fails_with_exit_7_and_changes_nothing() {
    let pg = PgServer::start();
    let hosts = Hosts::new();
    let a = &hosts.dbs[0];
    let url = Some(pg.url.as_str());
    let created = hosts.json(a, url, &["create", "--owner", "acct_1"]);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();

    pg.kill();
    let out = hosts.run(a, url, &["revoke", &id]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "UPSTREAM_UNAVAILABLE", "{err}");
    assert_eq!(hosts.reason(0, &key), "VALID", "nothing changed");

    // A URL that is not one: refused before anything is done.
    let out = hosts.run(a, Some("postgresql://host:notaport/db"), &["revoke", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(hosts.reason(0, &key), "VALID");
}
