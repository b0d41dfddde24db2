//! The `keyward` command line: manage API keys and inspect their usage from a shell, while
//! the application's worker processes keep the same store open.
//!
//! Every subcommand takes `--db PATH` (or `KEYWARD_DB`), `--pepper-file PATH` (or
//! `KEYWARD_PEPPER_FILE`; default `<db>.pepper`) and `--json`, before or after its name.
//! Exit codes are listed in [`error`] and in `keyward --help`.

mod audit;
mod bench;
mod check;
mod error;
mod keys;
mod legacy;
mod open;
mod output;
mod owners;
mod parse;
#[cfg(feature = "postgres")]
mod replicate;
mod transfer;
mod usage;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{CliError, Exit};
use crate::open::Common;
use crate::output::Outcome;

/// The end of `keyward --help`: exit statuses and value formats.
const AFTER_HELP: &str = "\
Exit status:
  0   success; for `verify`, the key is valid
  1   `verify`: the key was refused (the reason is printed)
  2   bad input (arguments, durations, dates, key ids, files)
  3   not found: no key with that id
  4   refused by a store policy
  5   storage error: store missing, locked, damaged or unwritable
  6   pepper problem: missing, wrong, invalid or readable by others
  7   upstream PostgreSQL unreachable or unusable (builds with the `postgres` feature)
  10  internal error (please report it)

Durations: a number and a unit, s m h d w, combinable: 90d, 24h, 30m, 1h30m.
Times: a duration from now (--expires 90d) or ago (--idle-since 30d), or a UTC date 2027-01-31[T12:00Z].";

/// keyward: manage API keys and measure verification from a shell.
#[derive(Parser)]
#[command(name = "keyward", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    top: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a key store (and its pepper file), or check an existing one
    Init(keys::InitArgs),
    /// Create a key; its full key is printed once, never again
    Create(keys::CreateArgs),
    /// List keys, all or an owner's, by state or idleness
    List(keys::ListArgs),
    /// Show one key: record, state, credits and usage totals
    Show(keys::ShowArgs),
    /// Change a key's name, scopes, metadata, expiry, credits or rate limit
    Update(keys::UpdateArgs),
    /// Revoke a key; every process refuses it from its next verify
    Revoke(keys::RevokeArgs),
    /// Delete a key and its usage history (needs --yes)
    Delete(keys::DeleteArgs),
    /// Replace a key with a new one; the old one works for a grace period
    Rotate(keys::RotateArgs),
    /// Check a key or request header lines; exit 0 if valid, 1 if refused
    Verify(check::VerifyArgs),
    /// Uses per day of a key or of an owner's keys
    Usage(usage::UsageArgs),
    /// Show, set (--rate N/PERIOD --burst N) or remove the rate limit an owner's keys share
    RateLimit(keys::RateLimitArgs),
    /// Write every key record (no secrets) as JSON lines
    Export(transfer::ExportArgs),
    /// Re-create keys from an export file as new keys, or (--from) bring in another system's keys as they are
    Import(transfer::ImportArgs),
    /// Show the audit log: who changed which key, when (filter by key, owner, actor, time)
    Audit(audit::AuditArgs),
    /// Owner controls: list, show, suspend, resume, set-scopes
    Owners(owners::OwnersArgs),
    /// Run the headline benchmark (or, with --table, the shared verify table's) on a temporary store.
    Bench(bench::BenchArgs),
    /// Follow an upstream PostgreSQL into this host's store (the host's replicator daemon)
    #[cfg(feature = "postgres")]
    Replicate(replicate::ReplicateArgs),
    /// This host's store: keys and, for a replica, how stale it is
    #[cfg(feature = "postgres")]
    Status(replicate::StatusArgs),
    /// Manage the upstream PostgreSQL: init, revoke, prune, head
    #[cfg(feature = "postgres")]
    Upstream(replicate::UpstreamArgs),
}

impl Command {
    /// The options shared by every store subcommand (`None` for `bench`).
    fn common(&self) -> Option<&Common> {
        Some(match self {
            Command::Init(a) => &a.common,
            Command::Create(a) => &a.common,
            Command::List(a) => &a.common,
            Command::Show(a) => &a.common,
            Command::Update(a) => &a.common,
            Command::Revoke(a) => &a.common,
            Command::Delete(a) => &a.common,
            Command::Rotate(a) => &a.common,
            Command::Verify(a) => &a.common,
            Command::Usage(a) => &a.common,
            Command::RateLimit(a) => &a.common,
            Command::Export(a) => &a.common,
            Command::Import(a) => &a.common,
            Command::Audit(a) => &a.common,
            Command::Owners(a) => a.common(),
            Command::Bench(_) => return None,
            #[cfg(feature = "postgres")]
            Command::Replicate(a) => &a.common,
            #[cfg(feature = "postgres")]
            Command::Status(a) => &a.common,
            #[cfg(feature = "postgres")]
            Command::Upstream(a) => &a.common,
        })
    }
}

/// Runs a store subcommand.
fn run(command: Command, top: &Common) -> Result<Outcome, CliError> {
    match command {
        Command::Init(a) => keys::init(a, top),
        Command::Create(a) => keys::create(a, top),
        Command::List(a) => keys::list(a, top),
        Command::Show(a) => keys::show(a, top),
        Command::Update(a) => keys::update(a, top),
        Command::Revoke(a) => keys::revoke(a, top),
        Command::Delete(a) => keys::delete(a, top),
        Command::Rotate(a) => keys::rotate(a, top),
        Command::Verify(a) => check::verify(a, top),
        Command::Usage(a) => usage::usage(a, top),
        Command::RateLimit(a) => keys::rate_limit(a, top),
        Command::Export(a) => transfer::export(a, top),
        Command::Import(a) => transfer::import(a, top),
        Command::Audit(a) => audit::audit(a, top),
        Command::Owners(a) => owners::owners(a, top),
        #[cfg(feature = "postgres")]
        Command::Replicate(a) => replicate::replicate(a, top),
        #[cfg(feature = "postgres")]
        Command::Status(a) => replicate::status(a, top),
        #[cfg(feature = "postgres")]
        Command::Upstream(a) => replicate::upstream(a, top),
        Command::Bench(_) => Err(CliError {
            exit: Exit::Internal,
            code: "INTERNAL",
            message: "bench is dispatched before the store commands".to_owned(),
            hint: None,
        }),
    }
}

/// Writes the outcome to stdout; returns the exit status.
fn finish(outcome: Outcome, json: bool) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(outcome.stdout.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        match outcome.lost_output_note {
            Some(note) => {
                CliError::storage(format!("cannot write to stdout: {e}"))
                    .hint(note)
                    .report(json);
                return Exit::Storage.code();
            }
            // A reader that went away (`keyward list | head`) is not an error.
            None if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            None => {
                CliError::storage(format!("cannot write to stdout: {e}")).report(json);
                return Exit::Storage.code();
            }
        }
    }
    if let Some(error) = outcome.trailing_error {
        error.report(json);
        return error.exit.code();
    }
    outcome.exit.code()
}

/// Parses the command line, runs it, prints the outcome and exits with its status.
fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Bench(args) = cli.command {
        return bench::run(args);
    }
    let json = cli.top.json || cli.command.common().is_some_and(|c| c.json);
    match run(cli.command, &cli.top) {
        Ok(outcome) => finish(outcome, json),
        Err(error) => {
            error.report(json);
            error.exit.code()
        }
    }
}
