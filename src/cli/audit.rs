//! `keyward audit`: the store's audit log, filtered and paged, as a table or JSON.

use std::fmt::Write as _;

use keyward::{AuditQuery, MAX_PAGE_SIZE, Policies, Timestamp};

use crate::error::CliError;
use crate::open::{Common, Location};
use crate::output::{self, Outcome, Table};
use crate::parse;

/// Options of `keyward audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Only events of this key (its public id or the full key)
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Only events of this owner's keys
    #[arg(long)]
    pub owner: Option<String>,
    /// Only changes made by this actor
    #[arg(long, value_name = "ACTOR")]
    pub by: Option<String>,
    /// Only events at or after then: a duration ago (7d) or a UTC date
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events before then: a duration ago or a UTC date
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Events after this sequence number (the `next` of the previous page)
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// Page size, 1..=1000
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub common: Common,
}

/// Runs `keyward audit`.
pub fn audit(args: AuditArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let now = Timestamp::now();
    if args.limit == 0 || args.limit > MAX_PAGE_SIZE {
        return Err(CliError::bad_input(
            "BAD_LIMIT",
            format!("--limit must be 1..={MAX_PAGE_SIZE}"),
        ));
    }
    let when = |t: &Option<String>| {
        t.as_deref()
            .map(|t| parse::time(t, now, -1).map(Timestamp::as_millis))
            .transpose()
    };
    let query = AuditQuery {
        key_id: args.key.as_deref().map(parse::key_id).transpose()?,
        owner: args.owner.clone(),
        actor: args.by.clone(),
        since: when(&args.since)?,
        until: when(&args.until)?,
        after: args.after,
        limit: args.limit,
    };
    let store = Location::resolve(&args.common, top)?.open_existing(Policies::default())?;
    let page = store.audit(&query)?;
    store.close()?;
    if json {
        return Outcome::json(&page);
    }
    if page.events.is_empty() {
        return Ok(Outcome::ok("no events match\n".to_owned()));
    }
    let mut table = Table::new(&[
        ">SEQ", "TIME", "ACTOR", "ACTION", "KEY", "OWNER", "CHANGED", "DETAIL",
    ]);
    for e in &page.events {
        table.row(vec![
            e.seq.to_string(),
            output::iso_time(e.at),
            output::truncate(e.actor.as_deref().unwrap_or("-"), 24),
            e.action.as_str().to_owned(),
            e.key_id.clone().unwrap_or_else(|| "-".to_owned()),
            output::truncate(e.owner.as_deref().unwrap_or("-"), 24),
            output::truncate(&e.changed.join(","), 30),
            e.detail.clone().unwrap_or_default(),
        ]);
    }
    let mut out = table.render();
    let n = page.events.len();
    let _ = write!(out, "{n} event{}", if n == 1 { "" } else { "s" });
    match page.next {
        Some(next) => {
            let _ = writeln!(out, "; more with --after {next}");
        }
        None => out.push('\n'),
    }
    Ok(Outcome::ok(out))
}
