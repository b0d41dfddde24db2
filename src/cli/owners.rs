//! `keyward owners`: owner records — list, show, suspend, resume, allowed scopes.

use std::fmt::Write as _;

use keyward::{OwnerInfo, Policies};

use crate::error::CliError;
use crate::open::{Common, Location};
use crate::output::{self, Outcome, Table};

/// Options of `keyward owners`.
#[derive(clap::Args, Debug)]
pub struct OwnersArgs {
    #[command(subcommand)]
    pub action: OwnersAction,
}

impl OwnersArgs {
    /// The store options of the subcommand.
    pub fn common(&self) -> &Common {
        match &self.action {
            OwnersAction::List { common }
            | OwnersAction::Show { common, .. }
            | OwnersAction::Suspend { common, .. }
            | OwnersAction::Resume { common, .. }
            | OwnersAction::SetScopes { common, .. } => common,
        }
    }
}

/// What `keyward owners` does.
#[derive(clap::Subcommand, Debug)]
pub enum OwnersAction {
    /// List owner records (owners ever suspended or given allowed scopes)
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Show an owner: state, allowed scopes, key count
    Show {
        #[command(flatten)]
        common: Common,
        /// The owner (account or workspace id)
        owner: String,
    },
    /// Suspend an owner: every key of it is refused (OWNER_SUSPENDED, HTTP 403)
    Suspend {
        #[command(flatten)]
        common: Common,
        /// The owner
        owner: String,
        /// Why (kept in the owner record)
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a suspended owner
    Resume {
        #[command(flatten)]
        common: Common,
        /// The owner
        owner: String,
    },
    /// Set the scopes an owner's keys may use (effective scopes = key's own ∩ these)
    SetScopes {
        #[command(flatten)]
        common: Common,
        /// The owner
        owner: String,
        /// Allowed scopes
        #[arg(required_unless_present = "clear")]
        scopes: Vec<String>,
        /// Remove the restriction instead
        #[arg(long, conflicts_with = "scopes")]
        clear: bool,
    },
}

/// Runs `keyward owners`.
pub fn owners(args: OwnersArgs, top: &Common) -> Result<Outcome, CliError> {
    let common = args.common().clone();
    let json = common.json || top.json;
    let store = Location::resolve(&common, top)?.open_existing(Policies::default())?;
    let (info, done) = match args.action {
        OwnersAction::List { .. } => {
            let all = store.owners()?;
            store.close()?;
            if json {
                return Outcome::json(&all);
            }
            if all.is_empty() {
                return Ok(Outcome::ok("no owner records\n".to_owned()));
            }
            let mut table = Table::new(&["OWNER", "STATE", "SCOPES", ">KEYS", "UPDATED"]);
            for o in &all {
                table.row(vec![
                    output::truncate(&o.owner, 32),
                    state(o).to_owned(),
                    output::truncate(&scopes(o), 40),
                    o.keys.to_string(),
                    o.updated_at
                        .map_or_else(|| "-".to_owned(), output::iso_time),
                ]);
            }
            let mut out = table.render();
            let n = all.len();
            let _ = writeln!(out, "{n} owner{}", if n == 1 { "" } else { "s" });
            return Ok(Outcome::ok(out));
        }
        OwnersAction::Show { owner, .. } => (store.owner(&owner)?, None),
        OwnersAction::Suspend { owner, reason, .. } => {
            let before = store.owner(&owner).ok();
            let info = store.suspend_owner(&owner, reason.as_deref())?;
            let already = before.is_some_and(|b| b.is_suspended());
            (
                info,
                Some(if already {
                    "was already suspended; nothing changed"
                } else {
                    "suspended: every key of it is refused from the next verify"
                }),
            )
        }
        OwnersAction::Resume { owner, .. } => (store.resume_owner(&owner)?, Some("resumed")),
        OwnersAction::SetScopes {
            owner,
            scopes,
            clear,
            ..
        } => {
            let scopes = (!clear).then_some(scopes.as_slice());
            (
                store.set_owner_scopes(&owner, scopes)?,
                Some("allowed scopes set"),
            )
        }
    };
    store.close()?;
    if json {
        return Outcome::json(&info);
    }
    let mut out = String::new();
    if let Some(done) = done {
        let _ = writeln!(out, "Owner {}: {done}.", info.owner);
    }
    let _ = writeln!(out, "owner      {}", info.owner);
    let _ = writeln!(out, "state      {}", state(&info));
    if let Some(at) = info.suspended_at {
        let _ = writeln!(out, "suspended  {}", output::iso_time(at));
    }
    if let Some(reason) = &info.suspend_reason {
        let _ = writeln!(out, "reason     {reason}");
    }
    let _ = writeln!(out, "scopes     {}", scopes(&info));
    let _ = writeln!(out, "keys       {}", info.keys);
    match info.updated_at {
        Some(at) => {
            let _ = writeln!(out, "updated    {}", output::iso_time(at));
        }
        None => {
            let _ = writeln!(out, "record     none (no owner controls set)");
        }
    }
    Ok(Outcome::ok(out))
}

fn state(info: &OwnerInfo) -> &'static str {
    if info.is_suspended() {
        "suspended"
    } else {
        "active"
    }
}

fn scopes(info: &OwnerInfo) -> String {
    match &info.allowed_scopes {
        Some(s) if s.is_empty() => "(none allowed)".to_owned(),
        Some(s) => s.join(","),
        None => "(unrestricted)".to_owned(),
    }
}
