//! Several hosts on one PostgreSQL (feature `postgres`): `keyward replicate` (the host's
//! replicator daemon), `keyward status` (how stale this host's store is) and
//! `keyward upstream init|revoke|prune|head` (management against the upstream).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use keyward::upstream::{ReplicaStatus, Replicator, ReplicatorOptions, Upstream};
use keyward::{Clock, Policies, SystemClock};
use serde::Serialize;

use crate::error::CliError;
use crate::open::{Common, Location};
use crate::output::{self, Outcome};
use crate::parse;

/// The upstream URL (`--upstream` / `KEYWARD_UPSTREAM`, a store option of every command),
/// which these commands need.
fn required_upstream(location: &Location, command: &str) -> Result<String, CliError> {
    location.upstream.clone().ok_or_else(|| {
        CliError::bad_input(
            "NO_UPSTREAM",
            format!("`keyward {command}` needs the upstream PostgreSQL"),
        )
        .hint("pass --upstream URL or set KEYWARD_UPSTREAM")
    })
}

/// Options of `keyward replicate`.
#[derive(clap::Args, Debug)]
pub struct ReplicateArgs {
    /// This host's name upstream (usage and credit leases are per host); default: host name
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Longest wait between two catch-ups without a notification
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub poll: String,
    /// Sync once (catch up, push usage, lease credits) and exit
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Runs `keyward replicate`: for ever (until killed; every step is safe to interrupt), or
/// once with `--once`.
pub fn replicate(args: ReplicateArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let location = Location::resolve(&args.common, top)?;
    let url = required_upstream(&location, "replicate")?;
    let store = location.open_existing(Policies::default())?;
    let mut options = ReplicatorOptions {
        poll_interval: parse::duration(&args.poll)?,
        ..ReplicatorOptions::default()
    };
    if let Some(host) = args.host {
        options.host = host;
    }
    let replicator = Replicator::new(&store, &url, options);
    if args.once {
        let report = replicator.sync_once()?;
        store.close()?;
        if json {
            return Outcome::json(&SyncView::from(&report));
        }
        return Ok(Outcome::ok(format!(
            "cursor {}: {} change{} applied{}, {} usage row{} pushed, {} credit{} leased\n",
            report.cursor,
            report.applied,
            plural(report.applied as u64),
            if report.resynced {
                " (resynchronised from a snapshot)"
            } else {
                ""
            },
            report.usage_rows,
            plural(report.usage_rows as u64),
            report.credits_leased,
            plural(report.credits_leased),
        )));
    }
    let stop = AtomicBool::new(false);
    replicator.run(&stop);
    Ok(Outcome::ok(String::new()))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[derive(Serialize)]
struct SyncView {
    cursor: u64,
    applied: usize,
    resynced: bool,
    usage_rows: usize,
    credits_leased: u64,
}

impl From<&keyward::upstream::SyncReport> for SyncView {
    fn from(r: &keyward::upstream::SyncReport) -> Self {
        SyncView {
            cursor: r.cursor,
            applied: r.applied,
            resynced: r.resynced,
            usage_rows: r.usage_rows,
            credits_leased: r.credits_leased,
        }
    }
}

/// Options of `keyward status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Serialize)]
struct StatusView {
    replicated: bool,
    #[serde(flatten)]
    status: Option<ReplicaStatus>,
    staleness_ms: Option<u64>,
    keys: usize,
}

/// Runs `keyward status`: the store's key count and, for a replica, its replicator's state
/// and how long ago the store was last known up to date.
pub fn status(args: StatusArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let location = Location::resolve(&args.common, top)?;
    let store = location.open_existing(Policies::default())?;
    let keys = store.stats()?.indexed_keys;
    store.close()?;
    let status = ReplicaStatus::read(&location.db)?;
    let staleness_ms = status
        .as_ref()
        .and_then(|s| s.staleness_ms(SystemClock.now()));
    let view = StatusView {
        replicated: status.is_some(),
        status,
        staleness_ms,
        keys,
    };
    if json {
        return Outcome::json(&view);
    }
    let mut out = format!("keys: {keys}\n");
    match &view.status {
        None => out.push_str("replica: no (no `keyward replicate` ever ran for this store)\n"),
        Some(s) => {
            out.push_str(&format!(
                "replica of an upstream PostgreSQL: host {}, replicator pid {}, {}\n",
                s.host,
                s.pid,
                if s.connected {
                    "connected"
                } else {
                    "NOT connected"
                }
            ));
            out.push_str(&format!("cursor: {}\n", s.cursor));
            match staleness_ms {
                Some(ms) => out.push_str(&format!(
                    "last known up to date: {} ({} ago)\n",
                    output::iso_time(s.synced_at),
                    human_ms(ms)
                )),
                None => out.push_str("last known up to date: never\n"),
            }
            if let Some(e) = &s.last_error {
                out.push_str(&format!("last error: {e}\n"));
            }
        }
    }
    Ok(Outcome::ok(out))
}

fn human_ms(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    if d < Duration::from_secs(1) {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// What `keyward upstream` does.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum UpstreamAction {
    /// Create or migrate keyward's schema and record this store's pepper check and prefix
    Init,
    /// Revoke the key KEY on every host
    Revoke,
    /// Delete change-log entries, keeping the last --keep (replicas behind resynchronise)
    Prune,
    /// Print the last change sequence committed upstream
    Head,
    /// Draw a new epoch: every replica resynchronises (after restoring the upstream from a backup)
    NewEpoch,
}

/// Options of `keyward upstream`.
#[derive(clap::Args, Debug)]
pub struct UpstreamArgs {
    /// What to do
    pub action: UpstreamAction,
    /// The key (public id or full key), for `revoke`
    pub key: Option<String>,
    /// Why, for `revoke`
    #[arg(long)]
    pub reason: Option<String>,
    /// Change-log entries kept by `prune`
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub keep: u64,
    #[command(flatten)]
    pub common: Common,
}

/// Runs `keyward upstream ACTION`.
pub fn upstream(args: UpstreamArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let location = Location::resolve(&args.common, top)?;
    let url = required_upstream(&location, "upstream")?;
    let store = location.open_existing(Policies::default())?;
    let upstream = Upstream::connect(&store, &url)?;
    let out = match args.action {
        UpstreamAction::Init => {
            let head = upstream.head()?;
            if json {
                Outcome::json(
                    &serde_json::json!({ "schema_version": keyward::upstream::SCHEMA_VERSION, "head": head }),
                )?
            } else {
                Outcome::ok(format!(
                    "upstream schema version {} ready; last change {head}\n",
                    keyward::upstream::SCHEMA_VERSION
                ))
            }
        }
        UpstreamAction::Revoke => {
            let key = args.key.as_deref().ok_or_else(|| {
                CliError::bad_input("NO_KEY", "`keyward upstream revoke` needs the key id")
            })?;
            let id = parse::key_id(key)?;
            let info = upstream.revoke(&id, args.reason.as_deref())?;
            if json {
                Outcome::json(&info)?
            } else {
                Outcome::ok(format!("revoked {} on every host\n", info.id))
            }
        }
        UpstreamAction::Prune => {
            let through = upstream.prune_changes(args.keep)?;
            if json {
                Outcome::json(&serde_json::json!({ "pruned_through": through }))?
            } else {
                Outcome::ok(format!("change log pruned through {through}\n"))
            }
        }
        UpstreamAction::NewEpoch => {
            upstream.new_epoch()?;
            if json {
                Outcome::json(&serde_json::json!({ "new_epoch": true }))?
            } else {
                Outcome::ok("new epoch drawn: every replica resynchronises\n".to_owned())
            }
        }
        UpstreamAction::Head => {
            let head = upstream.head()?;
            if json {
                Outcome::json(&serde_json::json!({ "head": head }))?
            } else {
                Outcome::ok(format!("{head}\n"))
            }
        }
    };
    store.close()?;
    Ok(out)
}
