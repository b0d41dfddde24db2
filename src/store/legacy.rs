//! Legacy keys in the store: importing another system's keys (`Store::import_legacy`),
//! finding them on the verify path, and upgrading each one to keyward's own digest on its
//! first successful use. The schemes, their hashes and the export formats are in
//! `crate::legacy`.
//!
//! A legacy record is an ordinary key record whose `digest` is the wrapped legacy digest
//! (`Pepper::legacy_digest`), so the shared verify table, the change log and every process
//! handle it like any key. `legacy_digests` maps its digest to its public id for verifies
//! answered from redb (the presented text carries no keyward id). The upgrade replaces the
//! digest in one change: the record, the `legacy_digests` row, and the table slot (the old
//! one buried, the new one filled) commit together.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::audit::{self, AuditAction};
use super::engine::Engine;
use super::manage::check_scopes;
use super::table_sync::KnownStates;
use super::{MAX_METADATA_LEN, MAX_NAME_LEN, MAX_OWNER_LEN, Store};
use crate::error::{Error, Result};
use crate::key_format::KeyId;
use crate::legacy::source::{LegacyImportOptions, LegacyRow, read_export};
use crate::legacy::{LegacyOrigin, LegacyScheme, legacy_key_id};
use crate::schema::{
    KEY_USAGE, KEYS, KeyInfo, LEGACY_DIGESTS, META, META_LEGACY_SCHEMES, META_SERIAL, OWNER_KEYS,
    StoredKey, u64_from_meta,
};
use crate::table::Slots;

/// Longest id of a key in its source system, in bytes.
pub const MAX_LEGACY_SOURCE_ID_LEN: usize = 128;

/// What [`Store::import_legacy`] did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyImportReport {
    /// The source system.
    pub scheme: LegacyScheme,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Rows read from the export.
    pub rows: usize,
    /// Keys imported (would be, for a dry run).
    pub imported: usize,
    /// Rows whose key the store already holds (an earlier import): left as they are.
    pub already_present: usize,
    /// Rows deleted in the source system (Unkey's `deletedAt`): not imported.
    pub deleted: usize,
    /// Imported keys that are revoked (disabled in the source system).
    pub revoked: usize,
    /// Imported keys already expired at the time of the import.
    pub expired: usize,
    /// The public ids of the imported keys, in file order.
    pub ids: Vec<String>,
}

/// A legacy key that verified `VALID` through its wrapped legacy digest: what its upgrade
/// changes (no secret: both digests are keyed).
pub(crate) struct PendingUpgrade {
    pub id: KeyId,
    pub from: blake3::Hash,
    pub to: blake3::Hash,
}

/// The schemes recorded in the meta table of a store.
pub(crate) fn stored_schemes(txn: &redb::ReadTransaction) -> Result<u64> {
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    match meta.get(META_LEGACY_SCHEMES)? {
        Some(v) => u64_from_meta(v.value()),
        None => Ok(0),
    }
}

/// Removes a deleted legacy key's digest row.
pub(crate) fn forget_digest(txn: &WriteTransaction, stored: &StoredKey) -> Result<()> {
    txn.open_table(LEGACY_DIGESTS)?
        .remove(stored.digest_hash()?.as_bytes().as_slice())?;
    Ok(())
}

fn invalid(scheme: LegacyScheme, row: &LegacyRow, detail: impl std::fmt::Display) -> Error {
    Error::LegacyImportInvalid {
        scheme: scheme.name(),
        line: row.line,
        detail: detail.to_string(),
    }
}

/// Checks a row against keyward's limits (the same as for new keys).
fn check_row(scheme: LegacyScheme, row: &LegacyRow) -> Result<()> {
    let limit = |field: &str, value: &str, limit: usize| -> Result<()> {
        if value.len() > limit {
            return Err(invalid(
                scheme,
                row,
                format!("{field} is longer than {limit} bytes"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid(
                scheme,
                row,
                format!("{field} holds control characters"),
            ));
        }
        Ok(())
    };
    limit("id", &row.source_id, MAX_LEGACY_SOURCE_ID_LEN)?;
    limit("owner", &row.owner, MAX_OWNER_LEN)?;
    limit("name", &row.name, MAX_NAME_LEN)?;
    if row.metadata.len() > MAX_METADATA_LEN {
        return Err(invalid(
            scheme,
            row,
            format!("metadata is longer than {MAX_METADATA_LEN} bytes"),
        ));
    }
    check_scopes(&row.scopes).map_err(|e| invalid(scheme, row, format!("scopes: {e}")))
}

/// Reads an export and checks every row (keyward's limits, no id twice): all or nothing.
pub(crate) fn checked_rows(
    scheme: LegacyScheme,
    data: &[u8],
    options: &LegacyImportOptions,
) -> Result<Vec<LegacyRow>> {
    let rows = read_export(scheme, data, options).map_err(|e| Error::LegacyImportInvalid {
        scheme: scheme.name(),
        line: e.line,
        detail: e.detail,
    })?;
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        check_row(scheme, row)?;
        if !seen.insert(row.source_id.as_str()) {
            return Err(invalid(
                scheme,
                row,
                format!("id {:?} appears twice in the file", row.source_id),
            ));
        }
    }
    Ok(rows)
}

/// A report with nothing counted yet.
pub(crate) fn empty_report(scheme: LegacyScheme, dry_run: bool, rows: usize) -> LegacyImportReport {
    LegacyImportReport {
        scheme,
        dry_run,
        rows,
        imported: 0,
        already_present: 0,
        deleted: 0,
        revoked: 0,
        expired: 0,
        ids: Vec::new(),
    }
}

impl Store {
    /// Imports the keys another system issued, from its export (CSV with a header row, or
    /// JSON lines: the columns each scheme reads are in README.md), so they keep working as
    /// they are: no customer gets a new key. Owner, scopes, expiry, revoked state, creation
    /// and last-use times carry over; the legacy hash is kept only wrapped with the pepper.
    /// Each key is upgraded to keyward's own digest on its first successful verify.
    ///
    /// All or nothing: a row keyward cannot read fails the import with
    /// `LEGACY_IMPORT_INVALID` (naming its line), and nothing is written. Keys an earlier
    /// import brought in are left as they are (counted in `already_present`). With
    /// `options.dry_run` nothing is written and the report says what would be imported.
    /// Each imported key gets an `import` audit event.
    pub fn import_legacy(
        &self,
        scheme: LegacyScheme,
        data: &[u8],
        options: &LegacyImportOptions,
    ) -> Result<LegacyImportReport> {
        if let Some(link) = self.upstream_link() {
            return self.upstream_import_legacy(link, scheme, data, options);
        }
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let now = engine.now();
        let rows = checked_rows(scheme, data, options)?;
        let mut report = empty_report(scheme, options.dry_run, rows.len());
        if options.dry_run {
            let present = engine.read(|txn| {
                let keys = txn.open_table(KEYS)?;
                rows.iter()
                    .map(|row| {
                        let id = legacy_key_id(scheme, &row.source_id);
                        Ok(keys.get(id.as_str())?.is_some())
                    })
                    .collect::<Result<Vec<bool>>>()
            })?;
            for (row, present) in rows.iter().zip(present) {
                tally(&mut report, scheme, row, present, now.as_millis());
            }
            return Ok(report);
        }
        // Verifies look at non-keyward text only for enabled schemes: enable this one before
        // the keys can be found (enabling it early costs only lookups that miss).
        if let Ok(view) = engine.current_table() {
            view.table.enable_legacy_schemes(scheme.bit());
        }
        let stamp = self.stamp(now);
        let report = engine.write_change_known(|txn| {
            let mut ids = Vec::new();
            let mut known: KnownStates = Vec::new();
            let mut events = Vec::new();
            for row in &rows {
                let id = legacy_key_id(scheme, &row.source_id);
                let present = txn.open_table(KEYS)?.get(id.as_str())?.is_some();
                tally(&mut report, scheme, row, present, now.as_millis());
                if present || row.deleted {
                    continue;
                }
                let stored = insert_row(&engine, txn, scheme, row, &id, now.as_millis())?;
                events.push(stamp.event(
                    AuditAction::Import,
                    Some(id.as_str()),
                    Some(&row.owner),
                    &[],
                ));
                ids.push(id);
                known.push(Some((stored, Slots::default())));
            }
            let mut meta = txn.open_table(META)?;
            let enabled = match meta.get(META_LEGACY_SCHEMES)? {
                Some(v) => u64_from_meta(v.value())?,
                None => 0,
            };
            meta.insert(
                META_LEGACY_SCHEMES,
                (enabled | scheme.bit()).to_le_bytes().as_slice(),
            )?;
            drop(meta);
            audit::append(txn, &stamp, events)?;
            Ok((report, ids, known))
        })?;
        if let Ok(view) = engine.current_table() {
            view.table.enable_legacy_schemes(scheme.bit());
        }
        Ok(report)
    }

    /// Upgrades a legacy key that just verified through its wrapped legacy digest: its
    /// record moves to the upgraded digest of the presented text and the legacy digest is
    /// retired everywhere (record, `legacy_digests`, shared table), in one commit. Nothing
    /// happens if another process upgraded (or changed) it first.
    pub(super) fn upgrade_legacy(&self, engine: &Engine, upgrade: &PendingUpgrade) -> Result<()> {
        let now = engine.now();
        let stamp = self.stamp(now);
        engine.write_change_retiring(|txn| {
            let keys = txn.open_table(KEYS)?;
            let Some(bytes) = keys.get(upgrade.id.as_str())? else {
                return Ok(((), Vec::new(), Vec::new()));
            };
            let mut stored = StoredKey::decode(upgrade.id.as_str(), bytes.value())?;
            drop(bytes);
            drop(keys);
            if stored.digest_hash()? != upgrade.from {
                return Ok(((), Vec::new(), Vec::new()));
            }
            let Some(origin) = stored.info.legacy.as_mut() else {
                return Ok(((), Vec::new(), Vec::new()));
            };
            origin.upgraded_at = Some(now.as_millis());
            stored.digest = upgrade.to.to_hex().to_string();
            txn.open_table(KEYS)?
                .insert(upgrade.id.as_str(), stored.encode().as_slice())?;
            let mut digests = txn.open_table(LEGACY_DIGESTS)?;
            digests.remove(upgrade.from.as_bytes().as_slice())?;
            digests.insert(upgrade.to.as_bytes().as_slice(), upgrade.id.as_str())?;
            drop(digests);
            let event = stamp.event(
                AuditAction::Update,
                Some(upgrade.id.as_str()),
                Some(&stored.info.owner),
                &["upgraded_at"],
            );
            audit::append(txn, &stamp, vec![event])?;
            Ok(((), vec![upgrade.id], vec![upgrade.from]))
        })
    }
}

pub(crate) fn tally(
    report: &mut LegacyImportReport,
    scheme: LegacyScheme,
    row: &LegacyRow,
    present: bool,
    now_ms: i64,
) {
    if present {
        report.already_present += 1;
        return;
    }
    if row.deleted {
        report.deleted += 1;
        return;
    }
    report.imported += 1;
    report.revoked += usize::from(row.revoked);
    report.expired += usize::from(row.expires_at.is_some_and(|e| e <= now_ms));
    report
        .ids
        .push(legacy_key_id(scheme, &row.source_id).as_str().to_owned());
}

fn insert_row(
    engine: &Engine,
    txn: &WriteTransaction,
    scheme: LegacyScheme,
    row: &LegacyRow,
    id: &KeyId,
    now_ms: i64,
) -> Result<StoredKey> {
    let serial = {
        let mut meta = txn.open_table(META)?;
        let next = match meta.get(META_SERIAL)? {
            Some(v) => u64_from_meta(v.value())? + 1,
            None => 1,
        };
        meta.insert(META_SERIAL, next.to_le_bytes().as_slice())?;
        next
    };
    let stored = legacy_record(engine, scheme, row, id, serial, now_ms);
    txn.open_table(KEYS)?
        .insert(id.as_str(), stored.encode().as_slice())?;
    txn.open_table(OWNER_KEYS)?
        .insert((row.owner.as_str(), serial), id.as_str())?;
    txn.open_table(LEGACY_DIGESTS)?
        .insert(stored.digest_hash()?.as_bytes().as_slice(), id.as_str())?;
    if let Some(last_used) = row.last_used_at {
        let row = super::usage_rows::UsageRow {
            last_used,
            ..Default::default()
        };
        txn.open_table(KEY_USAGE)?
            .insert(id.as_str(), row.to_tuple())?;
    }
    Ok(stored)
}

/// The record of an imported row: the row's fields and the wrapped legacy digest of its hash
/// (never the hash itself).
pub(crate) fn legacy_record(
    engine: &Engine,
    scheme: LegacyScheme,
    row: &LegacyRow,
    id: &KeyId,
    serial: u64,
    now_ms: i64,
) -> StoredKey {
    let digest = engine.pepper.legacy_digest(scheme, row.hash.as_bytes());
    let mut scopes = row.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let info = KeyInfo {
        id: id.as_str().to_owned(),
        owner: row.owner.clone(),
        name: row.name.clone(),
        scopes,
        env: None,
        created_at: row.created_at.unwrap_or(now_ms),
        expires_at: row.expires_at,
        metadata: row.metadata.clone(),
        revoked_at: row.revoked.then_some(now_ms),
        revoke_reason: row
            .revoked
            .then(|| format!("revoked or disabled in {scheme} before the import")),
        rotated_from: None,
        rotated_to: None,
        credits: None,
        rate_limit: None,
        serial,
        legacy: Some(LegacyOrigin {
            scheme,
            source_id: row.source_id.clone(),
            upgraded_at: None,
        }),
    };
    StoredKey {
        info,
        digest: digest.to_hex().to_string(),
    }
}

#[cfg(feature = "postgres")]
impl Store {
    /// For an import through the upstream: reads and checks the export, and gives each row
    /// its record (serial 0: the upstream sets it) with the wrapped legacy digest under this
    /// store's pepper. Nothing is written.
    pub(crate) fn legacy_import_plan(
        &self,
        scheme: LegacyScheme,
        data: &[u8],
        options: &LegacyImportOptions,
    ) -> Result<Vec<(LegacyRow, StoredKey)>> {
        let engine = self.engine()?;
        let now = engine.now().as_millis();
        let rows = checked_rows(scheme, data, options)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let id = legacy_key_id(scheme, &row.source_id);
                let stored = legacy_record(&engine, scheme, &row, &id, 0, now);
                (row, stored)
            })
            .collect())
    }
}

impl Engine {
    /// A legacy key by digest, from redb (for a verify that met its slot in doubt).
    pub(super) fn read_legacy_key(
        &self,
        digest: &blake3::Hash,
    ) -> Result<Option<(StoredKey, Slots)>> {
        let id = self.contained(|| {
            let txn = self.db.begin_read()?;
            let table = match txn.open_table(LEGACY_DIGESTS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(table
                .get(digest.as_bytes().as_slice())?
                .map(|v| v.value().to_owned()))
        })?;
        let Some(id) = id.and_then(|id| KeyId::parse(&id).ok()) else {
            return Ok(None);
        };
        match self.read_key(&id)? {
            Some((stored, slot)) if stored.digest_hash()? == *digest => Ok(Some((stored, slot))),
            _ => Ok(None),
        }
    }
}
