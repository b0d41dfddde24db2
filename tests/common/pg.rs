//! A throwaway PostgreSQL server per test (scripts/pg-test-server.sh: installs Debian's
//! postgresql when missing, initdb + pg_ctl as the `postgres` user, a Unix socket in a
//! temporary directory, fsync off), stopped and deleted when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running test server.
pub struct PgServer {
    dir: PathBuf,
    /// Its connection URL.
    pub url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("scripts/pg-test-server.sh").exists())
        .expect("scripts/pg-test-server.sh above the crate")
        .join("scripts/pg-test-server.sh")
}

fn run(action: &str, dir: &Path) -> String {
    run_with(action, dir, &[])
}

fn run_with(action: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .arg(script())
        .arg(action)
        .arg(dir)
        .envs(env.iter().copied())
        .output()
        .expect("run scripts/pg-test-server.sh");
    assert!(
        out.status.success(),
        "pg-test-server.sh {action} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl PgServer {
    /// Starts a new server in a fresh directory under /tmp (the `postgres` user must reach
    /// it, so not under a private temporary directory).
    pub fn start() -> PgServer {
        Self::start_with(&[])
    }

    /// Starts a server that also listens on 127.0.0.1 with TLS (`KW_PG_TLS=1`): its URL names
    /// `localhost`; [`PgServer::file`] `ca.crt` signed its certificate, `other-ca.crt` did not.
    pub fn start_tls() -> PgServer {
        Self::start_with(&[("KW_PG_TLS", "1")])
    }

    fn start_with(env: &[(&str, &str)]) -> PgServer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(format!(
            "/tmp/kw-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let url = run_with("start", &dir, env);
        PgServer { dir, url }
    }

    /// A file of the server's directory (e.g. `ca.crt`).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Stops the server at once (immediate shutdown, like a crash).
    pub fn kill(&self) {
        run("kill", &self.dir);
    }

    /// Starts it again after [`PgServer::kill`].
    pub fn restart(&self) {
        run("start", &self.dir);
    }

    /// Runs SQL with psql (installed with the server); returns the unaligned, tuples-only
    /// output (for assertions on the upstream tables and for tampering with them).
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg(&self.url)
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}
