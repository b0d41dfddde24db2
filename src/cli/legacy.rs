//! `keyward import --from sanctum|drf|unkey|better-auth FILE`: brings in the keys another
//! system issued, as they are (`Store::import_legacy`): the customers keep their keys. The
//! columns each system's export must have are in README.md ("Migrating keys from another
//! system").

use std::io::Read;

use keyward::{LegacyImportOptions, LegacyScheme};
use serde::Serialize;

use crate::error::CliError;
use crate::open::{Common, Location};
use crate::output::{Outcome, Table};
use crate::transfer::ImportArgs;

/// The scheme named by `--from`.
pub fn scheme_of(name: &str) -> Result<LegacyScheme, CliError> {
    LegacyScheme::from_name(name).ok_or_else(|| {
        CliError::bad_input(
            "BAD_SCHEME",
            format!("--from {name:?}: expected sanctum, drf, unkey or better-auth"),
        )
    })
}

#[derive(Serialize)]
struct Report<'a> {
    from: &'a str,
    dry_run: bool,
    rows: usize,
    imported: usize,
    already_present: usize,
    deleted: usize,
    revoked: usize,
    expired: usize,
    ids: &'a [String],
}

/// Runs a legacy import.
pub fn import(args: ImportArgs, scheme: LegacyScheme, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    if args.keys_out.is_some() {
        return Err(CliError::bad_input(
            "BAD_ARGUMENT",
            "--keys-out has no use with --from: imported keys keep their secrets, none is shown",
        ));
    }
    let mut data = Vec::new();
    let read = if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut data)
    } else {
        std::fs::File::open(&args.file).and_then(|mut f| f.read_to_end(&mut data))
    };
    read.map_err(|e| {
        CliError::bad_input(
            "BAD_FILE",
            format!("cannot read {}: {e}", args.file.display()),
        )
    })?;
    let options = LegacyImportOptions {
        dry_run: args.dry_run,
        sanctum_expiration_minutes: args.sanctum_expiration,
        all_scopes: args.all_scopes.as_ref().map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        default_owner: args.owner.clone(),
    };
    let policies = args.policy.policies()?;
    let location = Location::resolve(&args.common, top)?;
    let store = location.open_existing(policies)?;
    let report = store.import_legacy(scheme, &data, &options)?;
    store.close()?;
    if json {
        return Outcome::json(&Report {
            from: scheme.name(),
            dry_run: report.dry_run,
            rows: report.rows,
            imported: report.imported,
            already_present: report.already_present,
            deleted: report.deleted,
            revoked: report.revoked,
            expired: report.expired,
            ids: &report.ids,
        });
    }
    let mut out = if report.dry_run {
        format!(
            "Dry run: would import {} of {} rows from {scheme}. Nothing was changed.\n",
            report.imported, report.rows
        )
    } else {
        format!(
            "Imported {} of {} rows from {scheme}: the keys work as they are, and each is \
             upgraded to keyward's own digest on its first use.\n",
            report.imported, report.rows
        )
    };
    let mut table = Table::new(&["", ">KEYS"]);
    for (what, n) in [
        (
            "already in the store (left as they are)",
            report.already_present,
        ),
        ("deleted in the source (not imported)", report.deleted),
        ("imported revoked", report.revoked),
        ("imported expired", report.expired),
    ] {
        table.row(vec![what.to_owned(), n.to_string()]);
    }
    out.push('\n');
    out.push_str(&table.render());
    Ok(Outcome::ok(out))
}
