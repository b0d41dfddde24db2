//! `keyward usage`: uses per UTC day of one key, or of every key of an owner.
//!
//! Counts come from the database: application processes write theirs in batches (about once
//! a second by default, and when they close the store), so the last second of a busy worker
//! may not show yet.

use std::fmt::Write as _;

use keyward::MAX_USAGE_DAYS;
use keyward::{DailyUsage, Day, KeyInfo, Policies, StateFilter, Store, Timestamp, UsageStats};
use serde::Serialize;

use crate::error::CliError;
use crate::keys::{describe, owner_keys};
use crate::open::{Common, Location};
use crate::output::{self, Outcome, Table};
use crate::parse;

/// Default number of days shown.
const DEFAULT_DAYS: u32 = 30;

/// Options of `keyward usage`.
#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    /// The key's public id (or the full key); or use --owner
    #[arg(required_unless_present = "owner", conflicts_with = "owner")]
    pub key: Option<String>,
    /// Every key of this owner
    #[arg(long)]
    pub owner: Option<String>,
    /// First day, UTC `YYYY-MM-DD` [default: --days days before --to]
    #[arg(long, value_name = "DATE", conflicts_with = "days")]
    pub from: Option<String>,
    /// Last day, UTC `YYYY-MM-DD` [default: today]
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Number of days up to --to [default: 30]
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    #[command(flatten)]
    pub common: Common,
}

/// One key's usage in the JSON output.
#[derive(Serialize)]
struct KeyUsage<'a> {
    id: &'a str,
    owner: &'a str,
    name: &'a str,
    state: &'static str,
    /// All-time totals.
    total: &'a UsageStats,
    /// Uses in the range.
    uses_in_range: u64,
    /// Days of the range with uses.
    days: &'a [DailyUsage],
}

/// The UTC day range asked for: `--from`/`--to`, or `--days` up to `--to` (default today).
fn range(args: &UsageArgs, now: Timestamp) -> Result<(Day, Day), CliError> {
    let to = match &args.to {
        Some(text) => parse::day(text)?,
        None => now.day(),
    };
    let from = match (&args.from, args.days) {
        (Some(text), _) => parse::day(text)?,
        (None, Some(days)) if days == 0 || days > MAX_USAGE_DAYS as u32 => {
            return Err(CliError::bad_input(
                "BAD_RANGE",
                format!("--days must be 1..={MAX_USAGE_DAYS}"),
            ));
        }
        (None, days) => Day(to.0 - (days.unwrap_or(DEFAULT_DAYS) as i32 - 1)),
    };
    if from > to {
        return Err(CliError::bad_input(
            "BAD_RANGE",
            format!("the range starts ({from}) after it ends ({to})"),
        ));
    }
    if i64::from(to.0) - i64::from(from.0) + 1 > i64::from(MAX_USAGE_DAYS) {
        return Err(CliError::bad_input(
            "BAD_RANGE",
            format!("the range spans more than {MAX_USAGE_DAYS} days"),
        )
        .hint("narrow it with --from and --to"));
    }
    Ok((from, to))
}

/// A key's all-time totals and its uses per day in the range.
fn gather(
    store: &Store,
    info: &KeyInfo,
    from: Day,
    to: Day,
) -> Result<(UsageStats, Vec<DailyUsage>), CliError> {
    Ok((
        store.usage(&info.id)?,
        store.usage_by_day(&info.id, from, to)?,
    ))
}

/// Runs `keyward usage`.
pub fn usage(args: UsageArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let now = Timestamp::now();
    let (from, to) = range(&args, now)?;
    let key_id = args.key.as_deref().map(parse::key_id).transpose()?;
    let store = Location::resolve(&args.common, top)?.open_existing(Policies::default())?;
    let keys = match (&key_id, &args.owner) {
        (Some(id), _) => vec![store.get(id)?],
        (None, Some(owner)) => owner_keys(&store, owner, StateFilter::All)?,
        (None, None) => {
            return Err(CliError::bad_input(
                "BAD_INPUT",
                "give a key id or --owner OWNER",
            ));
        }
    };
    let bar = output::progress(keys.len() as u64, "reading usage", json);
    let mut rows = Vec::with_capacity(keys.len());
    for info in keys {
        let (total, days) = gather(&store, &info, from, to)?;
        bar.inc(1);
        rows.push((info, total, days));
    }
    bar.finish_and_clear();
    store.close()?;

    let views: Vec<KeyUsage> = rows
        .iter()
        .map(|(info, total, days)| KeyUsage {
            id: &info.id,
            owner: &info.owner,
            name: &info.name,
            state: output::state(info, now),
            total,
            uses_in_range: days.iter().map(|d| d.uses).sum(),
            days,
        })
        .collect();

    if json {
        #[derive(Serialize)]
        struct Report<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            owner: Option<&'a str>,
            from: String,
            to: String,
            uses_in_range: u64,
            keys: &'a [KeyUsage<'a>],
        }
        return Outcome::json(&Report {
            owner: args.owner.as_deref(),
            from: from.to_string(),
            to: to.to_string(),
            uses_in_range: views.iter().map(|v| v.uses_in_range).sum(),
            keys: &views,
        });
    }

    let mut out = String::new();
    match (&args.owner, rows.first()) {
        (Some(owner), _) => {
            let _ = writeln!(
                out,
                "Usage of owner {owner}'s {} keys, {from} to {to} (UTC)",
                rows.len()
            );
        }
        (None, Some((info, total, _))) => {
            let _ = writeln!(out, "Usage of key {}, {from} to {to} (UTC)", describe(info));
            let _ = writeln!(
                out,
                "All time: {} accepted, {} refused, last used {}",
                total.uses,
                total.refused,
                total
                    .last_used
                    .map(output::iso_time)
                    .unwrap_or_else(|| "never".into())
            );
        }
        (None, None) => {}
    }
    let _ = writeln!(out);
    let per_owner = args.owner.is_some();
    let mut days: Vec<(Day, &KeyUsage, u64)> = views
        .iter()
        .flat_map(|v| v.days.iter().map(move |d| (d.day, v, d.uses)))
        .collect();
    days.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(b.1.id)));
    let in_range: u64 = days.iter().map(|d| d.2).sum();
    if days.is_empty() {
        let _ = writeln!(out, "No uses in this period.");
    } else if per_owner {
        let mut table = Table::new(&["DAY", "KEY", "NAME", ">USES"]);
        for (day, view, uses) in &days {
            table.row(vec![
                day.to_string(),
                view.id.to_owned(),
                output::truncate(view.name, 24),
                uses.to_string(),
            ]);
        }
        table.row(vec![
            "total".into(),
            String::new(),
            String::new(),
            in_range.to_string(),
        ]);
        out.push_str(&table.render());
    } else {
        let mut table = Table::new(&["DAY", ">USES"]);
        for (day, _, uses) in &days {
            table.row(vec![day.to_string(), uses.to_string()]);
        }
        table.row(vec!["total".into(), in_range.to_string()]);
        out.push_str(&table.render());
    }
    if per_owner && !views.is_empty() {
        let _ = writeln!(out);
        let mut table = Table::new(&[
            "KEY",
            "NAME",
            "STATE",
            ">USES IN RANGE",
            ">ALL TIME",
            ">REFUSED",
            "LAST USED",
        ]);
        for v in &views {
            table.row(vec![
                v.id.to_owned(),
                output::truncate(v.name, 24),
                v.state.to_owned(),
                v.uses_in_range.to_string(),
                v.total.uses.to_string(),
                v.total.refused.to_string(),
                output::opt_time(v.total.last_used, "never"),
            ]);
        }
        out.push_str(&table.render());
    }
    Ok(Outcome::ok(out))
}
