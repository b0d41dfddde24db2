//! `init`, `create`, `list`, `show`, `update`, `revoke`, `delete`, `rotate` and `rate-limit`.

use std::collections::HashSet;
use std::fmt::Write as _;

use keyward::{
    CreatedKey, KeyInfo, KeyUpdate, ListOptions, NewCredits, NewKey, Pepper, Policies, RateLimit,
    RateScope, RateStatus, Refill, RefillInterval, StateFilter, Store, Timestamp, UsageStats,
};
use keyward::{DEFAULT_ROTATION_GRACE, MAX_PAGE_SIZE};
use serde::Serialize;

use crate::error::CliError;
use crate::open::{Common, Location, PolicyArgs};
use crate::output::{self, KeyView, Outcome, Table, opt_time, short_time};
use crate::parse;

/// Options of `keyward init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Key prefix of a new store, `[a-z0-9]{1,16}` (default `kw`); keys look like `<prefix>_<env>_...`
    #[arg(long)]
    pub prefix: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Usage-credit options of `create` and `update`.
#[derive(clap::Args, Debug, Default)]
pub struct CreditArgs {
    /// Limit the key to N uses (usage credits, exact across processes)
    #[arg(long, value_name = "N")]
    pub credits: Option<u64>,
    /// Refill the credits to N at the start of every period (see --refill-every)
    #[arg(long, value_name = "N")]
    pub refill: Option<u64>,
    /// Refill period [default: monthly]
    #[arg(long, value_enum, value_name = "PERIOD")]
    pub refill_every: Option<Period>,
    /// Credits one verify costs [default: 1]
    #[arg(long, value_name = "N")]
    pub cost: Option<u32>,
}

/// Rate-limit options of `create`, `update` and `rate-limit`.
#[derive(clap::Args, Debug, Default)]
pub struct RateArgs {
    /// Rate limit N per period, exact across processes: 1000/s, 60/min, 5/10s, 100/h, 1000/d
    #[arg(long, value_name = "N/PERIOD")]
    pub rate: Option<String>,
    /// Requests that may pass at once from rest [default: N of --rate]
    #[arg(long, value_name = "N", requires = "rate")]
    pub burst: Option<u64>,
}

impl RateArgs {
    /// The limit asked for, if any.
    pub fn limit(&self) -> Result<Option<RateLimit>, CliError> {
        let Some(text) = &self.rate else {
            return Ok(None);
        };
        let bad = |detail: String| {
            CliError::bad_input("BAD_RATE", detail)
                .hint("write N/PERIOD, e.g. --rate 1000/s --burst 100 (units ms, s, min, h, d)")
        };
        let (rate, period_ms) = RateLimit::parse_rate(text)
            .ok_or_else(|| bad(format!("cannot read --rate {text:?}")))?;
        RateLimit::new(rate, period_ms, self.burst.unwrap_or(rate))
            .map(Some)
            .map_err(|e| bad(e.to_string()))
    }
}

/// A refill period.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum Period {
    /// At the start of every UTC day.
    Daily,
    /// At the start of every UTC month.
    Monthly,
}

impl CreditArgs {
    /// The credits asked for, if any: `--credits`, or `--refill` alone (starting full).
    fn new_credits(&self) -> Result<Option<NewCredits>, CliError> {
        let Some(remaining) = self.credits.or(self.refill) else {
            if self.refill_every.is_some() || self.cost.is_some() {
                return Err(CliError::bad_input(
                    "BAD_CREDITS",
                    "--refill-every and --cost apply to limited keys only",
                )
                .hint("add --credits N (and --refill N for a periodic refill)"));
            }
            return Ok(None);
        };
        if self.refill_every.is_some() && self.refill.is_none() {
            return Err(CliError::bad_input(
                "BAD_CREDITS",
                "--refill-every needs --refill N",
            ));
        }
        let interval = match self.refill_every.unwrap_or(Period::Monthly) {
            Period::Daily => RefillInterval::Daily,
            Period::Monthly => RefillInterval::Monthly,
        };
        Ok(Some(NewCredits {
            remaining,
            refill: self.refill.map(|amount| Refill { amount, interval }),
            cost: self.cost.unwrap_or(1),
        }))
    }

    fn given(&self) -> bool {
        self.credits.is_some()
            || self.refill.is_some()
            || self.refill_every.is_some()
            || self.cost.is_some()
    }
}

/// Options of `keyward create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Owner of the key (your customer's account or workspace id)
    #[arg(long)]
    pub owner: String,
    /// A name to recognise the key by (e.g. "CI deploy")
    #[arg(long, default_value = "")]
    pub name: String,
    /// Scope granted (repeat, or separate with commas)
    #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Environment tag written into the key, `[a-z0-9]{1,16}` (e.g. live, test)
    #[arg(long)]
    pub env: Option<String>,
    /// Expiry: a duration from now (90d, 24h, 30m) or a UTC date (2027-01-31 or 2027-01-31T12:00Z)
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// Metadata stored with the key (text, often JSON)
    #[arg(long, value_name = "TEXT")]
    pub metadata: Option<String>,
    #[command(flatten)]
    pub credits: CreditArgs,
    #[command(flatten)]
    pub rate: RateArgs,
    /// Print only the full key, for scripts: KEY=$(keyward create ... --key-only)
    #[arg(long, conflicts_with = "json")]
    pub key_only: bool,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Which keys `list` shows.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default)]
pub enum StateArg {
    /// Every key.
    #[default]
    All,
    /// Neither revoked nor expired.
    Active,
    /// Revoked.
    Revoked,
    /// Expired (and not revoked).
    Expired,
}

impl StateArg {
    fn filter(self) -> StateFilter {
        match self {
            StateArg::All => StateFilter::All,
            StateArg::Active => StateFilter::Active,
            StateArg::Revoked => StateFilter::Revoked,
            StateArg::Expired => StateFilter::Expired,
        }
    }

    fn keeps(self, info: &KeyInfo, now: Timestamp) -> bool {
        let state = output::state(info, now);
        match self {
            StateArg::All => true,
            StateArg::Active => state == "active",
            StateArg::Revoked => state == "revoked",
            StateArg::Expired => state == "expired",
        }
    }
}

/// Options of `keyward list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only this owner's keys
    #[arg(long)]
    pub owner: Option<String>,
    /// Only keys in this state
    #[arg(long, value_enum, default_value_t = StateArg::All)]
    pub state: StateArg,
    /// Only keys not used since then (never used included): a duration ago (30d) or a UTC date
    #[arg(long, value_name = "WHEN")]
    pub idle_since: Option<String>,
    /// Only active keys that expire within this duration from now (e.g. 7d): keys to warn about
    #[arg(long, value_name = "DURATION")]
    pub expiring: Option<String>,
    /// Only active limited keys with fewer than N credits left now
    #[arg(long, value_name = "N")]
    pub credits_below: Option<u64>,
    /// Show at most N keys
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub common: Common,
}

/// Options of `keyward show`.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The key's public id (or the full key)
    pub key: String,
    #[command(flatten)]
    pub common: Common,
}

/// Options of `keyward update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The key's public id (or the full key)
    pub key: String,
    /// New name
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the scopes with these (repeat, or separate with commas)
    #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Remove every scope
    #[arg(long, conflicts_with = "scopes")]
    pub no_scopes: bool,
    /// Add a scope (repeatable)
    #[arg(long, value_name = "SCOPE", value_delimiter = ',')]
    pub add_scope: Vec<String>,
    /// Remove a scope (repeatable)
    #[arg(long, value_name = "SCOPE", value_delimiter = ',')]
    pub remove_scope: Vec<String>,
    /// New metadata (text)
    #[arg(long, value_name = "TEXT")]
    pub metadata: Option<String>,
    /// New expiry: a duration from now, a UTC date, or `never`
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    #[command(flatten)]
    pub credits: CreditArgs,
    /// Remove the usage limit
    #[arg(long, conflicts_with_all = ["credits", "refill", "refill_every", "cost"])]
    pub unlimited: bool,
    #[command(flatten)]
    pub rate: RateArgs,
    /// Remove the key's rate limit
    #[arg(long, conflicts_with_all = ["rate", "burst"])]
    pub no_rate_limit: bool,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Options of `keyward revoke`.
#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    /// The key's public id (or the full key, e.g. one found leaked)
    pub key: String,
    /// Why (kept with the key, shown by `show`)
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Options of `keyward delete`.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// The key's public id (or the full key)
    pub key: String,
    /// Confirm: the key and its usage history are erased for good (revoke keeps them)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Options of `keyward rotate`.
#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    /// The key's public id (or the full key)
    pub key: String,
    /// How long the old key keeps working (e.g. 24h, 7d; 0 = refused at once) [default: 24h]
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<String>,
    /// Print only the new full key
    #[arg(long, conflicts_with = "json")]
    pub key_only: bool,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// `id (owner X, "name")`.
pub fn describe(info: &KeyInfo) -> String {
    if info.name.is_empty() {
        format!("{} (owner {})", info.id, info.owner)
    } else {
        format!("{} (owner {}, {:?})", info.id, info.owner, info.name)
    }
}

/// Runs `keyward init`.
pub fn init(args: InitArgs, top: &Common) -> Result<Outcome, CliError> {
    if let Some(prefix) = &args.prefix
        && !keyward::is_valid_tag(prefix)
    {
        return Err(CliError::bad_input(
            "BAD_PREFIX",
            format!("invalid prefix {prefix:?}: use 1-16 characters a-z, 0-9"),
        ));
    }
    let location = Location::resolve(&args.common, top)?;
    let existed = location.exists();
    let pepper_path = location.pepper_path();
    let pepper_existed = pepper_path.exists();
    if !existed && !pepper_existed && location.pepper_file.is_some() {
        // A new store with an explicit pepper file that does not exist yet: create it
        // (0600, never replacing a file).
        Pepper::create_file(&pepper_path)?;
    }
    let mut options = location.options(Policies::default());
    options.prefix = args.prefix.clone();
    let store = Store::open(&location.db, options)?;
    let keys = store.all_keys()?.len();
    store.close()?;

    #[derive(Serialize)]
    struct Init {
        db: String,
        pepper_file: String,
        created: bool,
        pepper_created: bool,
        keys: usize,
    }
    let report = Init {
        db: location.db.display().to_string(),
        pepper_file: pepper_path.display().to_string(),
        created: !existed,
        pepper_created: !pepper_existed,
        keys,
    };
    if args.common.json || top.json {
        return Outcome::json(&report);
    }
    let mut out = String::new();
    if existed {
        let _ = writeln!(
            out,
            "Key store {} already exists ({keys} keys); nothing changed.",
            report.db
        );
        let _ = writeln!(out, "Pepper: {}", report.pepper_file);
    } else {
        let _ = writeln!(out, "Created key store {}", report.db);
        let _ = writeln!(
            out,
            "Pepper: {}{}",
            report.pepper_file,
            if report.pepper_created {
                " (new, mode 0600)"
            } else {
                ""
            }
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Back up the pepper file separately from the database: without it no key can be verified."
        );
        let _ = writeln!(out, "Next: keyward create --db {} --owner OWNER", report.db);
    }
    Ok(Outcome::ok(out))
}

/// The metadata bytes of `--metadata TEXT` (empty without it).
fn metadata_bytes(text: &Option<String>) -> Vec<u8> {
    text.as_ref()
        .map(|t| t.as_bytes().to_vec())
        .unwrap_or_default()
}

/// JSON of a freshly created key: the only output that ever holds a full key.
#[derive(Serialize)]
struct CreatedView<'a> {
    /// The full key, shown once.
    key: &'a str,
    /// The public id.
    id: &'a str,
    /// The secret part alone (for the X-Api-Token-Id / X-Api-Token-Secret-Key style).
    secret: &'a str,
    info: KeyView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<KeyView<'a>>,
}

/// The output of a new key (`create`, `rotate`): text with the marked key block, JSON, or the
/// key alone.
fn created_outcome(
    created: &CreatedKey,
    now: Timestamp,
    json: bool,
    key_only: bool,
) -> Result<Outcome, CliError> {
    let mut outcome = if key_only {
        Outcome::ok(format!("{}\n", created.key()))
    } else if json {
        Outcome::json(&CreatedView {
            key: created.key(),
            id: created.id(),
            secret: created.secret(),
            info: KeyView::new(&created.info, now),
            old: None,
        })?
    } else {
        let info = &created.info;
        let mut out = String::new();
        let _ = writeln!(out, "Created key {}", describe(info));
        key_details(&mut out, info);
        output::secret_block(&mut out, created.key());
        Outcome::ok(out)
    };
    outcome.lost_output_note = Some(lost_key_note(created.id()));
    Ok(outcome)
}

/// What to do when a new key was created but could not be printed.
fn lost_key_note(id: &str) -> String {
    format!(
        "key {id} was created but its full key could not be printed; revoke it with `keyward revoke {id}` and create another"
    )
}

/// The indented scopes / env / expiry / credits lines under a key's heading.
fn key_details(out: &mut String, info: &KeyInfo) {
    if !info.scopes.is_empty() {
        let _ = writeln!(out, "  scopes:  {}", info.scopes.join(", "));
    }
    if let Some(env) = &info.env {
        let _ = writeln!(out, "  env:     {env}");
    }
    let _ = writeln!(
        out,
        "  expires: {}",
        info.expires_at
            .map(output::iso_time)
            .unwrap_or("never".into())
    );
    if let Some(terms) = info.credits {
        let _ = writeln!(out, "  credits: {}", credit_terms(&terms));
    }
    if let Some(limit) = info.rate_limit {
        let _ = writeln!(out, "  rate:    {}", limit.describe());
    }
}

/// Options of `keyward rate-limit`.
#[derive(clap::Args, Debug)]
pub struct RateLimitArgs {
    /// The owner whose keys share the limit
    #[arg(long)]
    pub owner: String,
    #[command(flatten)]
    pub rate: RateArgs,
    /// Remove the owner's limit
    #[arg(long, conflicts_with_all = ["rate", "burst"])]
    pub remove: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Runs `keyward rate-limit`: shows, sets or removes the limit an owner's keys share.
pub fn rate_limit(args: RateLimitArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let limit = args.rate.limit()?;
    let store = Location::resolve(&args.common, top)?.open_existing(Policies::default())?;
    if args.remove {
        store.set_owner_rate_limit(&args.owner, None)?;
    } else if let Some(limit) = limit {
        store.set_owner_rate_limit(&args.owner, Some(limit))?;
    }
    let now = store.owner_rate_limit(&args.owner)?;
    store.close()?;
    if json {
        #[derive(Serialize)]
        struct View<'a> {
            owner: &'a str,
            rate_limit: Option<RateLimit>,
        }
        return Outcome::json(&View {
            owner: &args.owner,
            rate_limit: now,
        });
    }
    Ok(Outcome::ok(match now {
        Some(limit) => format!(
            "Owner {} is limited to {} (shared by all of its keys)\n",
            args.owner,
            limit.describe()
        ),
        None => format!("Owner {} has no rate limit\n", args.owner),
    }))
}

/// `refilled to 100 daily, 1 per verify`.
fn credit_terms(terms: &keyward::CreditTerms) -> String {
    let refill = match terms.refill {
        Some(Refill { amount, interval }) => format!(
            "refilled to {amount} {}",
            match interval {
                RefillInterval::Daily => "daily",
                RefillInterval::Monthly => "monthly",
            }
        ),
        None => "no refill".to_owned(),
    };
    format!("{refill}, {} per verify", terms.cost)
}

/// Runs `keyward create`.
pub fn create(args: CreateArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let now = Timestamp::now();
    let expires_at = args
        .expires
        .as_deref()
        .map(|e| parse::expiry(e, now))
        .transpose()?;
    let credits = args.credits.new_credits()?;
    let rate_limit = args.rate.limit()?;
    let store = Location::resolve(&args.common, top)?.open_existing(args.policy.policies()?)?;
    let created = store.create(NewKey {
        owner: args.owner,
        name: args.name,
        scopes: args.scopes,
        env: args.env,
        expires_at,
        metadata: metadata_bytes(&args.metadata),
        credits,
        rate_limit,
    })?;
    // Nothing is pending after a create; never let a close error hide the new key.
    let _ = store.close();
    created_outcome(&created, now, json, args.key_only)
}

/// Every key of `owner` in `state`, in creation order.
pub fn owner_keys(
    store: &Store,
    owner: &str,
    state: StateFilter,
) -> Result<Vec<KeyInfo>, CliError> {
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(
            owner,
            ListOptions {
                after,
                limit: MAX_PAGE_SIZE,
                state,
            },
        )?;
        keys.extend(page.keys);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(keys),
        }
    }
}

/// Runs `keyward list`.
pub fn list(args: ListArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let now = Timestamp::now();
    let idle_since = args
        .idle_since
        .as_deref()
        .map(|t| parse::time(t, now, -1))
        .transpose()?;
    if args.limit == Some(0) {
        return Err(CliError::bad_input(
            "BAD_LIMIT",
            "--limit must be at least 1",
        ));
    }
    let expiring = args.expiring.as_deref().map(parse::duration).transpose()?;
    let store = Location::resolve(&args.common, top)?.open_existing(Policies::default())?;
    let mut keys = match &args.owner {
        Some(owner) => owner_keys(&store, owner, args.state.filter())?,
        None => {
            let mut all = store.all_keys()?;
            all.retain(|k| args.state.keeps(k, now));
            all
        }
    };
    if let Some(within) = expiring {
        let soon: HashSet<String> = store
            .expiring_within(within)?
            .into_iter()
            .map(|k| k.id)
            .collect();
        keys.retain(|k| soon.contains(&k.id));
    }
    if let Some(threshold) = args.credits_below {
        let low: HashSet<String> = store
            .credits_below(threshold)?
            .into_iter()
            .map(|(k, _)| k.id)
            .collect();
        keys.retain(|k| low.contains(&k.id));
    }
    if let (Some(since), Some(owner)) = (idle_since, &args.owner) {
        let idle: HashSet<String> = store
            .unused_since(owner, since)?
            .into_iter()
            .map(|k| k.id)
            .collect();
        keys.retain(|k| idle.contains(&k.id));
    }
    let bar = output::progress(keys.len() as u64, "reading usage", json);
    let mut rows = Vec::with_capacity(keys.len());
    for info in keys {
        if args.limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
        let usage = store.usage(&info.id)?;
        bar.inc(1);
        if let Some(since) = idle_since
            && args.owner.is_none()
            && usage.last_used.is_some_and(|t| t >= since.as_millis())
        {
            continue;
        }
        rows.push((info, usage));
    }
    bar.finish_and_clear();
    store.close()?;

    if json {
        #[derive(Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            key: KeyView<'a>,
            usage: &'a UsageStats,
        }
        #[derive(Serialize)]
        struct Listing<'a> {
            count: usize,
            keys: Vec<Row<'a>>,
        }
        let listing = Listing {
            count: rows.len(),
            keys: rows
                .iter()
                .map(|(info, usage)| Row {
                    key: KeyView::new(info, now),
                    usage,
                })
                .collect(),
        };
        return Outcome::json(&listing);
    }
    if rows.is_empty() {
        return Ok(Outcome::ok("no keys match\n".to_owned()));
    }
    let mut table = Table::new(&[
        "ID",
        "OWNER",
        "NAME",
        "STATE",
        "SCOPES",
        "EXPIRES",
        "LAST USED",
        ">USES",
    ]);
    for (info, usage) in &rows {
        table.row(vec![
            info.id.clone(),
            output::truncate(&info.owner, 24),
            output::truncate(&info.name, 24),
            output::state(info, now).to_owned(),
            output::truncate(&info.scopes.join(","), 30),
            opt_time(info.expires_at, "never"),
            opt_time(usage.last_used, "never"),
            usage.uses.to_string(),
        ]);
    }
    let mut out = table.render();
    let _ = writeln!(
        out,
        "{} key{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    Ok(Outcome::ok(out))
}

/// Runs `keyward show`.
pub fn show(args: ShowArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let id = parse::key_id(&args.key)?;
    let now = Timestamp::now();
    let store = Location::resolve(&args.common, top)?.open_existing(Policies::default())?;
    let info = store.get(&id)?;
    let usage = store.usage(&id)?;
    let credits = store.credits(&id)?;
    let owner_limit = store.owner_rate_limit(&info.owner)?;
    let rate = store.rate_status(&id)?;
    store.close()?;
    if json {
        #[derive(Serialize)]
        struct Show<'a> {
            #[serde(flatten)]
            key: KeyView<'a>,
            usage: &'a UsageStats,
            credits_remaining: Option<u64>,
            owner_rate_limit: Option<RateLimit>,
            rate_status: Option<RateStatus>,
        }
        return Outcome::json(&Show {
            key: KeyView::new(&info, now),
            usage: &usage,
            credits_remaining: credits.map(|c| c.remaining),
            owner_rate_limit: owner_limit,
            rate_status: rate,
        });
    }
    let mut table = Table::new(&["FIELD", "VALUE"]);
    let mut field = |name: &'static str, value: String| table.row(vec![format!("{name}:"), value]);
    field("id", info.id.clone());
    field("owner", info.owner.clone());
    field("name", info.name.clone());
    field("state", output::state(&info, now).to_owned());
    field("env", info.env.clone().unwrap_or_else(|| "-".into()));
    field(
        "scopes",
        if info.scopes.is_empty() {
            "-".into()
        } else {
            info.scopes.join(", ")
        },
    );
    field("created", output::iso_time(info.created_at));
    field(
        "expires",
        info.expires_at
            .map(output::iso_time)
            .unwrap_or_else(|| "never".into()),
    );
    if let Some(revoked) = info.revoked_at {
        let reason = info.revoke_reason.as_deref().unwrap_or("no reason given");
        field(
            "revoked",
            format!("{} ({reason})", output::iso_time(revoked)),
        );
    }
    if let Some(to) = &info.rotated_to {
        field("rotated to", to.clone());
    }
    if let Some(from) = &info.rotated_from {
        field("rotated from", from.clone());
    }
    if !info.metadata.is_empty() {
        field("metadata", output::metadata_text(&info));
    }
    if let Some(balance) = credits {
        field(
            "credits",
            format!(
                "{} left, {}",
                balance.remaining,
                credit_terms(&balance.terms)
            ),
        );
    }
    if let Some(limit) = info.rate_limit {
        field("rate limit", limit.describe());
    }
    if let Some(limit) = owner_limit {
        field(
            "owner limit",
            format!("{} (shared by the owner's keys)", limit.describe()),
        );
    }
    if let Some(status) = rate {
        field(
            "rate now",
            format!(
                "{} of the {} limit left now{}",
                status.remaining,
                match status.scope {
                    RateScope::Key => "key's",
                    RateScope::Owner => "owner's",
                },
                status
                    .retry_after_ms
                    .map(|ms| format!(", next request in {ms} ms"))
                    .unwrap_or_default()
            ),
        );
    }
    field(
        "uses",
        format!(
            "{} accepted, {} refused, last used {}",
            usage.uses,
            usage.refused,
            usage
                .last_used
                .map(output::iso_time)
                .unwrap_or_else(|| "never".into())
        ),
    );
    // Drop the header row: a key/value listing reads better without it.
    let rendered = table.render();
    let out = rendered
        .split_once('\n')
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default();
    Ok(Outcome::ok(out))
}

/// Runs `keyward update`.
pub fn update(args: UpdateArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let id = parse::key_id(&args.key)?;
    let now = Timestamp::now();
    let expires_at = match args.expires.as_deref() {
        None => None,
        Some("never") => Some(None),
        Some(text) => Some(Some(parse::expiry(text, now)?)),
    };
    let credits = if args.unlimited {
        Some(None)
    } else if args.credits.given() {
        args.credits.new_credits()?.map(Some)
    } else {
        None
    };
    let rate_limit = if args.no_rate_limit {
        Some(None)
    } else {
        args.rate.limit()?.map(Some)
    };
    let touches_scopes = !args.scopes.is_empty()
        || args.no_scopes
        || !args.add_scope.is_empty()
        || !args.remove_scope.is_empty();
    if args.name.is_none()
        && !touches_scopes
        && args.metadata.is_none()
        && expires_at.is_none()
        && credits.is_none()
        && rate_limit.is_none()
    {
        return Err(CliError::bad_input("NOTHING_TO_UPDATE", "nothing to update")
            .hint("give at least one of --name, --scope, --add-scope, --remove-scope, --no-scopes, --metadata, --expires, --credits, --unlimited, --rate, --no-rate-limit"));
    }
    let store = Location::resolve(&args.common, top)?.open_existing(args.policy.policies()?)?;
    let scopes = if touches_scopes {
        let mut scopes = if !args.scopes.is_empty() || args.no_scopes {
            args.scopes.clone()
        } else {
            store.get(&id)?.scopes
        };
        scopes.extend(args.add_scope.iter().cloned());
        scopes.retain(|s| !args.remove_scope.contains(s));
        Some(scopes)
    } else {
        None
    };
    let info = store.update(
        &id,
        KeyUpdate {
            name: args.name,
            scopes,
            metadata: args.metadata.map(|m| m.into_bytes()),
            expires_at,
            credits,
            rate_limit,
        },
    )?;
    store.close()?;
    if json {
        return Outcome::json(&KeyView::new(&info, now));
    }
    let mut out = String::new();
    let _ = writeln!(out, "Updated key {}", describe(&info));
    key_details(&mut out, &info);
    Ok(Outcome::ok(out))
}

/// Runs `keyward revoke`.
pub fn revoke(args: RevokeArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let id = parse::key_id(&args.key)?;
    let now = Timestamp::now();
    let store = Location::resolve(&args.common, top)?.open_existing(args.policy.policies()?)?;
    let before = store.get(&id)?;
    let info = store.revoke(&id, args.reason.as_deref())?;
    store.close()?;
    let already = before.revoked_at.is_some();
    if json {
        #[derive(Serialize)]
        struct Revoked<'a> {
            #[serde(flatten)]
            key: KeyView<'a>,
            already_revoked: bool,
        }
        return Outcome::json(&Revoked {
            key: KeyView::new(&info, now),
            already_revoked: already,
        });
    }
    let mut out = String::new();
    if already {
        let _ = writeln!(
            out,
            "Key {} was already revoked on {}; nothing changed.",
            describe(&info),
            opt_time(info.revoked_at, "?")
        );
    } else {
        let _ = writeln!(out, "Revoked key {}.", describe(&info));
        let _ = writeln!(
            out,
            "Every process using the store refuses it from its next verify (reason REVOKED, HTTP 401)."
        );
    }
    Ok(Outcome::ok(out))
}

/// Runs `keyward delete`.
pub fn delete(args: DeleteArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let id = parse::key_id(&args.key)?;
    if !args.yes {
        return Err(CliError::bad_input(
            "CONFIRMATION_REQUIRED",
            format!("deleting key {id} erases it and its usage history for good"),
        )
        .hint("add --yes to confirm, or use `keyward revoke`, which keeps the record"));
    }
    let store = Location::resolve(&args.common, top)?.open_existing(args.policy.policies()?)?;
    let info = store.get(&id)?;
    store.delete(&id)?;
    store.close()?;
    if json {
        #[derive(Serialize)]
        struct Deleted<'a> {
            deleted: &'a str,
            owner: &'a str,
        }
        return Outcome::json(&Deleted {
            deleted: &info.id,
            owner: &info.owner,
        });
    }
    Ok(Outcome::ok(format!(
        "Deleted key {} and its usage history.\n",
        describe(&info)
    )))
}

/// Runs `keyward rotate`.
pub fn rotate(args: RotateArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let id = parse::key_id(&args.key)?;
    let grace = match args.grace.as_deref() {
        Some(text) => parse::duration(text)?,
        None => DEFAULT_ROTATION_GRACE,
    };
    let now = Timestamp::now();
    let store = Location::resolve(&args.common, top)?.open_existing(args.policy.policies()?)?;
    let created = store.rotate(&id, grace)?;
    // The new key must be shown even if reading the old record back fails.
    let old = store.get(&id).ok();
    let _ = store.close();
    if json && !args.key_only {
        let mut outcome = Outcome::json(&CreatedView {
            key: created.key(),
            id: created.id(),
            secret: created.secret(),
            info: KeyView::new(&created.info, now),
            old: old.as_ref().map(|o| KeyView::new(o, now)),
        })?;
        outcome.lost_output_note = Some(lost_key_note(created.id()));
        return Ok(outcome);
    }
    let mut outcome = created_outcome(&created, now, false, args.key_only)?;
    if !args.key_only {
        let mut head = match &old {
            Some(old) => format!("Rotated key {}.\n", describe(old)),
            None => format!("Rotated key {id}.\n"),
        };
        if grace.is_zero() {
            head.push_str("The old key is refused from now on.\n");
        } else {
            let until = old
                .as_ref()
                .and_then(|o| o.expires_at)
                .map(|t| format!("{} UTC", short_time(t)))
                .unwrap_or_else(|| "the end of its grace period".into());
            let _ = writeln!(
                head,
                "The old key keeps working until {until}, then is refused."
            );
        }
        outcome.stdout.insert_str(0, &head);
    }
    Ok(outcome)
}
