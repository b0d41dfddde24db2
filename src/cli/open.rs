//! Which store a command works on, and opening it: `--db` / `KEYWARD_DB`, `--pepper-file` /
//! `KEYWARD_PEPPER_FILE` (default `<db>.pepper`), `--upstream` / `KEYWARD_UPSTREAM` (a
//! replica's PostgreSQL: `create`, `update`, `revoke`, `rotate` and `delete` then go there
//! first, as the library's `StoreOptions::upstream`), the store policies, and `--json`.
//!
//! The CLI always opens in multi-process mode (the library default), so it works while
//! application workers hold the same store open, and a change made here (a revoke, say) is
//! refused by every worker on its next verify. It never runs a background flush: usage a
//! `verify` records is written when the store is closed at the end of the command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward::{Concurrency, PepperSource, Policies, Store, StoreOptions, default_pepper_path};

use crate::error::{CliError, Exit};
use crate::parse;

/// Environment variable naming the store.
pub const ENV_DB: &str = "KEYWARD_DB";
/// Environment variable naming the pepper file.
pub const ENV_PEPPER_FILE: &str = "KEYWARD_PEPPER_FILE";
/// Environment variable naming the actor stamped on changes in the audit log.
pub const ENV_ACTOR: &str = "KEYWARD_ACTOR";
/// Environment variable naming the upstream PostgreSQL.
pub const ENV_UPSTREAM: &str = "KEYWARD_UPSTREAM";

/// Options every store subcommand takes (they may also be given before the subcommand).
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Store options")]
pub struct Common {
    /// The key store (redb file) [env: KEYWARD_DB]
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// The pepper file; default `<db>.pepper` [env: KEYWARD_PEPPER_FILE]
    #[arg(long, value_name = "PATH")]
    pub pepper_file: Option<PathBuf>,
    /// Print JSON for scripts instead of text (errors too, as JSON on stderr)
    #[arg(long)]
    pub json: bool,
    /// Who is making the change, for the audit log; default `cli:$USER` [env: KEYWARD_ACTOR]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
    /// The upstream PostgreSQL of a replica store (several hosts), e.g.
    /// postgresql://keyward@db.internal/keyward (a Unix socket directory as the host:
    /// postgresql://user@%2Fvar%2Frun%2Fpostgresql/db): create, update, revoke, rotate and
    /// delete are then made there first, and reach every host [env: KEYWARD_UPSTREAM]
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
}

/// The store policies to enforce, matching the ones the application opens the store with
/// (policies are options of each open, not stored in the file).
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Policy options (use the same as your application)")]
pub struct PolicyArgs {
    /// Refuse to give an owner more than N active keys
    #[arg(long, value_name = "N", env = "KEYWARD_MAX_ACTIVE_KEYS")]
    pub max_active_keys: Option<u32>,
    /// Refuse to revoke or delete an owner's last active key
    #[arg(long, env = "KEYWARD_KEEP_LAST_KEY", value_parser = clap::builder::FalseyValueParser::new())]
    pub keep_last_key: bool,
    /// Require every key to expire within this duration (e.g. 365d)
    #[arg(long, value_name = "DURATION", env = "KEYWARD_MAX_LIFETIME")]
    pub max_lifetime: Option<String>,
}

impl PolicyArgs {
    /// The library's policy set.
    pub fn policies(&self) -> Result<Policies, CliError> {
        let max_lifetime = match &self.max_lifetime {
            Some(text) => Some(parse::duration(text)?),
            None => None,
        };
        if max_lifetime == Some(Duration::ZERO) {
            return Err(CliError::bad_input(
                "BAD_DURATION",
                "--max-lifetime must be longer than 0",
            ));
        }
        Ok(Policies {
            max_active_keys_per_owner: self.max_active_keys,
            keep_last_key: self.keep_last_key,
            max_lifetime,
        })
    }
}

/// Where the store and its pepper are, after merging the subcommand's options, the ones
/// given before the subcommand, and the environment.
#[derive(Debug, Clone)]
pub struct Location {
    /// The database file.
    pub db: PathBuf,
    /// An explicit pepper file, if any.
    pub pepper_file: Option<PathBuf>,
    /// The actor stamped on this command's changes in the audit log.
    pub actor: String,
    /// The upstream PostgreSQL, if any (never printed: it may carry a password).
    pub upstream: Option<String>,
}

impl Location {
    /// Resolves the location; `sub` wins over `top`, which wins over the environment.
    pub fn resolve(sub: &Common, top: &Common) -> Result<Location, CliError> {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let db = sub
            .db
            .clone()
            .or_else(|| top.db.clone())
            .or_else(|| from_env(ENV_DB))
            .ok_or_else(|| {
                CliError::bad_input("NO_STORE", "no key store given")
                    .hint("pass --db PATH or set KEYWARD_DB (create a store with `keyward init --db PATH`)")
            })?;
        let pepper_file = sub
            .pepper_file
            .clone()
            .or_else(|| top.pepper_file.clone())
            .or_else(|| from_env(ENV_PEPPER_FILE));
        let actor = sub
            .actor
            .clone()
            .or_else(|| top.actor.clone())
            .or_else(|| std::env::var(ENV_ACTOR).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| match std::env::var("USER") {
                Ok(user) if !user.is_empty() => format!("cli:{user}"),
                _ => "cli".to_owned(),
            });
        let upstream = sub
            .upstream
            .clone()
            .or_else(|| top.upstream.clone())
            .or_else(|| std::env::var(ENV_UPSTREAM).ok().filter(|v| !v.is_empty()));
        Ok(Location {
            db,
            pepper_file,
            actor,
            upstream,
        })
    }

    /// The pepper file used: the explicit one, or `<db>.pepper`.
    pub fn pepper_path(&self) -> PathBuf {
        self.pepper_file
            .clone()
            .unwrap_or_else(|| default_pepper_path(&self.db))
    }

    /// Whether a store exists at the path (a non-empty file).
    pub fn exists(&self) -> bool {
        std::fs::metadata(&self.db).is_ok_and(|m| m.is_file() && m.len() > 0)
    }

    /// The options the CLI opens with.
    pub fn options(&self, policies: Policies) -> StoreOptions {
        StoreOptions {
            concurrency: Concurrency::MultiProcess,
            pepper: match &self.pepper_file {
                Some(path) => PepperSource::File(path.clone()),
                None => PepperSource::DefaultFile,
            },
            policies,
            flush_interval: Duration::ZERO,
            upstream: self.upstream.clone(),
            ..StoreOptions::default()
        }
    }

    /// Opens an existing store (every subcommand but `init`): a missing file is an error
    /// rather than a new, empty store under a mistyped path.
    pub fn open_existing(&self, policies: Policies) -> Result<Store, CliError> {
        if !self.exists() {
            return Err(missing_store(&self.db));
        }
        let store = Store::open(&self.db, self.options(policies))?;
        Ok(store.with_actor(&self.actor)?)
    }
}

/// The error for a `--db` path with no store.
fn missing_store(db: &Path) -> CliError {
    let message = if db.is_dir() {
        format!("{} is a directory, not a key store", db.display())
    } else {
        format!("no key store at {}", db.display())
    };
    CliError {
        exit: Exit::Storage,
        code: "NO_STORE",
        message,
        hint: Some(
            "check --db / KEYWARD_DB, or create the store with `keyward init --db PATH`".to_owned(),
        ),
    }
}
