//! `keyward export` and `keyward import`.
//!
//! Export writes one JSON object per line per key: the public record (`KeyInfo`, exactly as
//! the library serialises it) plus `credits_remaining` for limited keys. No secret and no
//! digest is in it: keyward never has a key's secret, and the digest is useless without the
//! pepper.
//!
//! Import therefore cannot bring a key back as it was. It **re-creates** each record as a new
//! key in the target store: same owner, name, scopes, env, expiry, metadata and credit terms
//! (with the credits that were left), but a new public id and a new secret. The new full keys
//! are printed once (or written to `--keys-out`, a 0600 file) and must be handed to their
//! owners; the old keys keep working only in the old store. Records that could not be used
//! any more are skipped: revoked keys, expired keys, and keys already replaced by a rotation
//! (their successor is in the file). Importing the same file twice creates the keys twice.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use keyward::{CreatedKey, KeyInfo, NewCredits, NewKey, Policies, Store, Timestamp};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{CliError, Exit};
use crate::keys::owner_keys;
use crate::open::{Common, Location, PolicyArgs};
use crate::output::{self, Outcome, Table};

/// Keys created per write transaction during an import.
const IMPORT_BATCH: usize = 50_000;

/// One line of an export file.
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    info: KeyInfo,
    /// Credits left when exported (limited keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credits_remaining: Option<u64>,
}

/// Options of `keyward export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Write to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace --out if it exists
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Only this owner's keys
    #[arg(long)]
    pub owner: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Options of `keyward import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// A JSON-lines file written by `keyward export`, or with --from another system's export
    /// (`-` = stdin)
    pub file: PathBuf,
    /// Import the keys another system issued, as they are (no new keys): sanctum, drf, unkey
    /// or better-auth. FILE is its export (CSV with a header row, or JSON lines)
    #[arg(long, value_name = "SYSTEM")]
    pub from: Option<String>,
    /// With --from: owner of rows that name none (djangorestframework-api-key keys have none)
    #[arg(long, requires = "from")]
    pub owner: Option<String>,
    /// With --from sanctum: the scopes an ability "*" stands for (comma-separated)
    #[arg(long, value_name = "SCOPES", requires = "from")]
    pub all_scopes: Option<String>,
    /// With --from sanctum: the app's `sanctum.expiration` in minutes (a token then expires at
    /// the earlier of its expires_at and created_at + this)
    #[arg(long, value_name = "MINUTES", requires = "from")]
    pub sanctum_expiration: Option<u64>,
    /// Write the new full keys to this file (JSON lines, mode 0600, must not exist) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub keys_out: Option<PathBuf>,
    /// Check the file and say what would be imported, without creating anything
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// An I/O failure, as a storage error.
fn io_error(what: &str, e: std::io::Error) -> CliError {
    CliError::storage(format!("{what}: {e}"))
}

/// Runs `keyward export`.
pub fn export(args: ExportArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let store = Location::resolve(&args.common, top)?.open_existing(Policies::default())?;
    let keys = match &args.owner {
        Some(owner) => owner_keys(&store, owner, keyward::StateFilter::All)?,
        None => store.all_keys()?,
    };
    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => {
            let mut options = OpenOptions::new();
            options.write(true);
            if args.force {
                options.create(true).truncate(true);
            } else {
                options.create_new(true);
            }
            let file = options.mode(0o600).open(path).map_err(|e| {
                let error = io_error(&format!("cannot create {}", path.display()), e);
                if path.exists() && !args.force {
                    CliError::bad_input("FILE_EXISTS", error.message)
                        .hint("add --force to replace it")
                } else {
                    error
                }
            })?;
            Box::new(BufWriter::new(file))
        }
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let bar = output::progress(keys.len() as u64, "exporting", json);
    let count = keys.len();
    for info in keys {
        let credits_remaining = match info.credits {
            Some(_) => store.credits(&info.id)?.map(|c| c.remaining),
            None => None,
        };
        let record = Record {
            info,
            credits_remaining,
        };
        let line = serde_json::to_string(&record)
            .map_err(|e| CliError::storage(format!("cannot encode: {e}")))?;
        let written = sink
            .write_all(line.as_bytes())
            .and_then(|()| sink.write_all(b"\n"));
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(Outcome::ok(String::new()));
            }
            return Err(io_error("cannot write the export", e));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    sink.flush()
        .map_err(|e| io_error("cannot write the export", e))?;
    drop(sink);
    store.close()?;
    match &args.out {
        Some(path) if json => {
            #[derive(Serialize)]
            struct Exported {
                exported: usize,
                file: String,
            }
            Outcome::json(&Exported {
                exported: count,
                file: path.display().to_string(),
            })
        }
        Some(path) => Ok(Outcome::ok(format!(
            "Exported {} to {}\n",
            plural(count, "key"),
            path.display()
        ))),
        None => {
            if !json {
                eprintln!("exported {}", plural(count, "key"));
            }
            Ok(Outcome::ok(String::new()))
        }
    }
}

/// A record to import, with the line it came from.
struct Pending {
    line: usize,
    old_id: String,
    new: NewKey,
}

/// One imported key (with its full key, unless written to `--keys-out`).
#[derive(Serialize)]
struct Imported {
    line: usize,
    old_id: String,
    id: String,
    owner: String,
    name: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_secret"
    )]
    key: Option<Zeroizing<String>>,
}

/// Serialises a zeroizing key as a plain string.
fn serialize_secret<S: serde::Serializer>(
    key: &Option<Zeroizing<String>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match key {
        Some(key) => s.serialize_str(key),
        None => s.serialize_none(),
    }
}

/// A record left out, and why.
#[derive(Serialize)]
struct Skipped {
    line: usize,
    old_id: String,
    reason: String,
}

/// A record the store refused.
#[derive(Serialize)]
struct Failed {
    line: usize,
    old_id: String,
    code: &'static str,
    message: String,
    #[serde(skip)]
    exit: Exit,
}

/// Reads and checks the whole export file before anything is created: the records to
/// import and the ones skipped (revoked, expired, rotated away).
fn read_records(
    args: &ImportArgs,
    now: Timestamp,
) -> Result<(Vec<Pending>, Vec<Skipped>), CliError> {
    let reader: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&args.file).map_err(|e| {
            CliError::bad_input(
                "BAD_FILE",
                format!("cannot read {}: {e}", args.file.display()),
            )
        })?)
    };
    let mut pending = Vec::new();
    let mut skipped = Vec::new();
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let number = index + 1;
        let line =
            line.map_err(|e| CliError::bad_input("BAD_FILE", format!("line {number}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).map_err(|e| {
            CliError::bad_input(
                "BAD_RECORD",
                format!("line {number} is not a key record: {e}"),
            )
            .hint("import reads the JSON lines written by `keyward export`; nothing was imported")
        })?;
        let info = record.info;
        let skip = |reason: String| Skipped {
            line: number,
            old_id: info.id.clone(),
            reason,
        };
        if info.revoked_at.is_some() {
            skipped.push(skip("revoked".into()));
            continue;
        }
        if !info.is_active_at(now.as_millis()) {
            skipped.push(skip("expired".into()));
            continue;
        }
        if let Some(successor) = &info.rotated_to {
            skipped.push(skip(format!("replaced by {successor} (rotated)")));
            continue;
        }
        let credits = info.credits.map(|terms| NewCredits {
            remaining: record
                .credits_remaining
                .or(terms.refill.map(|r| r.amount))
                .unwrap_or(0),
            refill: terms.refill,
            cost: terms.cost,
        });
        pending.push(Pending {
            line: number,
            old_id: info.id.clone(),
            new: NewKey {
                owner: info.owner,
                name: info.name,
                scopes: info.scopes,
                env: info.env,
                expires_at: info.expires_at.map(Timestamp::from_millis),
                metadata: info.metadata,
                credits,
                rate_limit: info.rate_limit,
            },
        });
    }
    Ok((pending, skipped))
}

/// Where the new full keys go.
struct KeySink {
    file: Option<(PathBuf, BufWriter<File>)>,
}

impl KeySink {
    fn open(path: Option<&PathBuf>) -> Result<KeySink, CliError> {
        let Some(path) = path else {
            return Ok(KeySink { file: None });
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                CliError::bad_input("BAD_FILE", format!("cannot create {}: {e}", path.display()))
                    .hint("--keys-out must name a new file (it is never overwritten)")
            })?;
        Ok(KeySink {
            file: Some((path.clone(), BufWriter::new(file))),
        })
    }

    /// Records a new key: in the file (and then not in `imported`), or in `imported`, for
    /// stdout, when there is no file.
    fn take(&mut self, imported: &mut Imported, created: &CreatedKey) -> Result<(), CliError> {
        match &mut self.file {
            None => imported.key = Some(Zeroizing::new(created.key().to_owned())),
            Some((path, file)) => {
                imported.key = Some(Zeroizing::new(created.key().to_owned()));
                let line = Zeroizing::new(
                    serde_json::to_string(&*imported)
                        .map_err(|e| CliError::storage(e.to_string()))?,
                );
                imported.key = None;
                file.write_all(line.as_bytes())
                    .and_then(|()| file.write_all(b"\n"))
                    .map_err(|e| io_error(&format!("cannot write {}", path.display()), e))?;
            }
        }
        Ok(())
    }

    /// Writes out what `take` buffered (once per batch, not once per key).
    fn flush(&mut self) -> Result<(), CliError> {
        if let Some((path, file)) = &mut self.file {
            file.flush()
                .map_err(|e| io_error(&format!("cannot write {}", path.display()), e))?;
        }
        Ok(())
    }
}

/// One record of a batch and what the store made of it.
type BatchResult = (Pending, Result<CreatedKey, keyward::Error>);

/// Creates one batch. A refused record (the store names its index) is reported with its
/// line and the rest of the batch is tried again without it; after many refusals the batch
/// falls back to one key at a time. A storage error stops the import.
fn create_batch(store: &Store, batch: Vec<Pending>) -> Result<Vec<BatchResult>, CliError> {
    /// Retries of a batch without its refused record before going one key at a time.
    const MAX_RETRIES: usize = 16;
    let mut batch = batch;
    let mut out = Vec::with_capacity(batch.len());
    for _ in 0..MAX_RETRIES {
        if batch.is_empty() {
            return Ok(out);
        }
        let news: Vec<NewKey> = batch.iter().map(|p| p.new.clone()).collect();
        match store.import_many(news) {
            Ok(created) => {
                out.extend(batch.into_iter().zip(created.into_iter().map(Ok)));
                return Ok(out);
            }
            Err(e) if crate::error::exit_for(e.code()) == Exit::Storage => return Err(e.into()),
            Err(keyward::Error::InBatch { index, error }) if index < batch.len() => {
                let refused = batch.remove(index);
                out.push((refused, Err(*error)));
            }
            Err(_) => break,
        }
    }
    for pending in batch {
        match store
            .import_many(vec![pending.new.clone()])
            .map(|mut one| one.remove(0))
        {
            Err(e) if crate::error::exit_for(e.code()) == Exit::Storage => {
                return Err(e.into());
            }
            Err(keyward::Error::InBatch { error, .. }) => out.push((pending, Err(*error))),
            result => out.push((pending, result)),
        }
    }
    Ok(out)
}

/// Runs `keyward import`.
pub fn import(args: ImportArgs, top: &Common) -> Result<Outcome, CliError> {
    if let Some(from) = &args.from {
        let scheme = crate::legacy::scheme_of(from)?;
        return crate::legacy::import(args, scheme, top);
    }
    let json = args.common.json || top.json;
    let now = Timestamp::now();
    let policies = args.policy.policies()?;
    let location = Location::resolve(&args.common, top)?;
    let (pending, skipped) = read_records(&args, now)?;
    let store = location.open_existing(policies)?;

    if args.dry_run {
        store.close()?;
        #[derive(Serialize)]
        struct DryRun<'a> {
            dry_run: bool,
            would_import: usize,
            skipped: &'a [Skipped],
        }
        if json {
            return Outcome::json(&DryRun {
                dry_run: true,
                would_import: pending.len(),
                skipped: &skipped,
            });
        }
        let mut out = format!(
            "Dry run: would create {} and skip {}. Nothing was changed.\n",
            plural(pending.len(), "new key"),
            plural(skipped.len(), "record")
        );
        out.push_str(&skipped_table(&skipped));
        return Ok(Outcome::ok(out));
    }

    let mut sink = KeySink::open(args.keys_out.as_ref())?;
    let bar = output::progress(pending.len() as u64, "importing", json);
    let mut imported: Vec<Imported> = Vec::new();
    let mut failed: Vec<Failed> = Vec::new();
    let mut abort: Option<CliError> = None;
    let mut queue = pending.into_iter().peekable();
    while queue.peek().is_some() {
        let batch: Vec<Pending> = queue.by_ref().take(IMPORT_BATCH).collect();
        let size = batch.len() as u64;
        let batch_start = imported.len();
        let results = match create_batch(&store, batch) {
            Ok(results) => results,
            Err(e) => {
                abort = Some(e);
                break;
            }
        };
        let mut batch_keys: Vec<Zeroizing<String>> = Vec::new();
        for (pending, result) in results {
            match result {
                Ok(created) => {
                    let mut entry = Imported {
                        line: pending.line,
                        old_id: pending.old_id,
                        id: created.id().to_owned(),
                        owner: created.info.owner.clone(),
                        name: created.info.name.clone(),
                        key: None,
                    };
                    batch_keys.push(Zeroizing::new(created.key().to_owned()));
                    if let Err(e) = sink.take(&mut entry, &created) {
                        abort.get_or_insert(e);
                        // Keep the key for stdout: it exists in the store now.
                        entry.key = Some(Zeroizing::new(created.key().to_owned()));
                    }
                    imported.push(entry);
                }
                Err(e) => failed.push(Failed {
                    line: pending.line,
                    old_id: pending.old_id,
                    code: e.code().name(),
                    message: e.to_string(),
                    exit: crate::error::exit_for(e.code()),
                }),
            }
        }
        if let Err(e) = sink.flush() {
            abort.get_or_insert(e);
            // The file may lack any of this batch's keys: keep them all for stdout.
            for (entry, key) in imported[batch_start..].iter_mut().zip(&batch_keys) {
                entry.key.get_or_insert_with(|| key.clone());
            }
        }
        bar.inc(size);
        if abort.is_some() {
            break;
        }
    }
    bar.finish_and_clear();
    let _ = store.close();

    let keys_file = sink.file.as_ref().map(|(p, _)| p.display().to_string());
    let mut outcome = if json {
        #[derive(Serialize)]
        struct Report<'a> {
            imported: &'a [Imported],
            skipped: &'a [Skipped],
            failed: &'a [Failed],
            keys_file: Option<&'a str>,
            complete: bool,
        }
        Outcome::json(&Report {
            imported: &imported,
            skipped: &skipped,
            failed: &failed,
            keys_file: keys_file.as_deref(),
            complete: abort.is_none(),
        })?
    } else {
        Outcome::ok(import_text(
            &imported,
            &skipped,
            &failed,
            keys_file.as_deref(),
        ))
    };
    if imported.iter().any(|i| i.key.is_some()) {
        outcome.lost_output_note = Some(format!(
            "{} keys were imported but their full keys could not be printed; revoke them (see `keyward list`) and import again with --keys-out FILE",
            imported.len()
        ));
    }
    if let Some(mut error) = abort {
        error.message = format!(
            "{} (import stopped; the keys listed were created)",
            error.message
        );
        outcome.trailing_error = Some(error);
    } else if let Some(first) = failed.first() {
        outcome.trailing_error = Some(CliError {
            exit: first.exit,
            code: first.code,
            message: format!(
                "{} of {} records were refused (first: line {}: {})",
                failed.len(),
                failed.len() + imported.len(),
                first.line,
                first.message
            ),
            hint: Some("fix those lines and import just them; the others were imported".to_owned()),
        });
    }
    Ok(outcome)
}

/// The table of skipped records (empty when none).
fn skipped_table(skipped: &[Skipped]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&[">LINE", "OLD ID", "SKIPPED BECAUSE"]);
    for s in skipped {
        table.row(vec![s.line.to_string(), s.old_id.clone(), s.reason.clone()]);
    }
    format!("\n{}", table.render())
}

/// The text report of an import.
fn import_text(
    imported: &[Imported],
    skipped: &[Skipped],
    failed: &[Failed],
    keys_file: Option<&str>,
) -> String {
    let mut out = format!(
        "Imported {}, each as a new key ({} skipped, {} refused).\n",
        plural(imported.len(), "key"),
        skipped.len(),
        failed.len()
    );
    if !imported.is_empty() {
        match keys_file {
            Some(path) => out.push_str(&format!(
                "The new full keys are in {path} (mode 0600): hand each to its owner, then delete the file.\n\n"
            )),
            None => {
                out.push_str(output::SECRET_RULE);
                out.push_str(
                    "\nNEW FULL KEYS below (shown once, never again): hand each to its owner; the old keys do not work in this store.\n",
                );
                out.push_str(output::SECRET_RULE);
                out.push_str("\n\n");
            }
        }
        let with_keys = imported.iter().any(|i| i.key.is_some());
        let mut headers = vec![">LINE", "OLD ID", "NEW ID", "OWNER", "NAME"];
        if with_keys {
            headers.push("FULL KEY");
        }
        let mut table = Table::new(&headers);
        for i in imported {
            let mut row = vec![
                i.line.to_string(),
                i.old_id.clone(),
                i.id.clone(),
                output::truncate(&i.owner, 24),
                output::truncate(&i.name, 24),
            ];
            if with_keys {
                row.push(i.key.as_deref().cloned().unwrap_or_default());
            }
            table.row(row);
        }
        out.push_str(&table.render());
    }
    out.push_str(&skipped_table(skipped));
    if !failed.is_empty() {
        let mut table = Table::new(&[">LINE", "OLD ID", "REFUSED", "WHY"]);
        for f in failed {
            table.row(vec![
                f.line.to_string(),
                f.old_id.clone(),
                f.code.to_owned(),
                f.message.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    out
}

/// `1 key`, `2 keys`.
fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
