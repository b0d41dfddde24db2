//! The store as a replica of a PostgreSQL upstream (feature `postgres`, `crate::upstream`):
//! preparing a new key for an upstream write, applying the upstream change log and snapshots
//! to the local redb store, and the local state the replicator exchanges with the upstream
//! (cursor, usage per day, leased credits).
//!
//! Every change goes through the store's ordinary write path (`Engine::write_change_*`), like
//! a local management call, so the shared verify table and every worker process of the host
//! see it on their next verify: key records (with their rate-limit slots and, for imported
//! legacy keys, their `legacy_digests` rows), owner records (moving the owner epoch around
//! the commit) and owner rate limits (bumping the owner-limit version after it).
//!
//! **Legacy keys.** The upstream holds an imported key's wrapped legacy digest, never a raw
//! hash. Its upgrade on first use stays local to the host that saw it (idempotent: every host
//! upgrades on its own first `VALID` verify); a later upstream change to the key puts the
//! upstream record back — the wrapped legacy digest, which verifies the same key text — and
//! retires the host's upgraded digest from the shared table; the next `VALID` verify upgrades
//! it again. No host ever loses the ability to verify the key, and nothing but keyed digests
//! leaves a host.
//!
//! **Credits.** Credits come to a host by lease only (`add_leased_credits`), tagged with the
//! refill period they belong to. When a rotation reaches the host, the old key's credits left
//! here (leased, unspent) move to the new key in the same local transaction, as the upstream
//! moved its unleased credits and the lease itself: old and new together never spend more than
//! was left, and nothing is stranded.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

use redb::{ReadableTable, WriteTransaction};

use super::credits::{pack, period_of};
use super::engine::CommitSignals;
use super::manage::{CreatedKey, NewCredits, NewKey, normalize_scopes};
use super::owners::OwnerState;
use super::{Store, engine::Engine};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::key_format::{KeyId, Secret, format_key};
use crate::schema::{
    CREDITS, CreditTerms, KEY_RATE_SLOTS, KEYS, KeyInfo, LEGACY_DIGESTS, META, META_LEGACY_SCHEMES,
    META_UPSTREAM_CURSOR, META_UPSTREAM_EPOCH, OWNER_KEYS, REPLICA_OWNER_SEQ, REPLICA_SEQ,
    StoredKey, USAGE_DAYS, u64_from_meta,
};

/// One entry of the upstream change log: the state of a key or an owner after change `seq`.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamChange {
    /// The upstream sequence number.
    pub seq: u64,
    /// The key's public id, or the owner.
    pub id: String,
    /// What changed.
    pub subject: Subject,
}

/// What an upstream change is about.
#[derive(Debug, Clone)]
// Nearly every entry is a key: boxing it would cost an allocation per key for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Subject {
    /// A key after the change, or `None` once deleted.
    Key(Option<StoredKey>),
    /// An owner's controls and shared rate limit after the change.
    Owner(OwnerState),
}

/// What the upstream held when a snapshot was taken.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Every key: the sequence of the change that last wrote it, and its record.
    pub keys: Vec<(u64, StoredKey)>,
    /// Every owner with a state: the sequence that last wrote it, the owner, its state.
    pub owners: Vec<(u64, String, OwnerState)>,
}

/// The legacy-scheme bits of the keys among `records`.
fn legacy_bits<'a>(records: impl Iterator<Item = &'a StoredKey>) -> u64 {
    records
        .filter_map(|r| r.info.legacy.as_ref().map(|l| l.scheme.bit()))
        .fold(0, |bits, bit| bits | bit)
}

fn parse_replicated_id(id: &str) -> Result<KeyId> {
    KeyId::parse(id).map_err(|_| Error::UpstreamSchema {
        detail: format!("the upstream holds a key id that does not parse: {id:?}"),
    })
}

impl Engine {
    /// Writes `record` as the key's state (record, owner index, legacy digest, credit row,
    /// rate slot) in `txn`. A digest the key gives up (a local legacy upgrade the upstream
    /// record replaces) goes to `retired`. A rotation's credits are moved by the caller
    /// ([`Engine::move_rotated_credits`]) once the whole batch is written.
    fn upsert_replicated(
        &self,
        txn: &WriteTransaction,
        key_id: &KeyId,
        record: &StoredKey,
        now: Timestamp,
        retired: &mut Vec<blake3::Hash>,
    ) -> Result<()> {
        let existing = match Engine::load_stored(txn, key_id) {
            Ok(stored) => Some(stored),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        {
            let mut owner_keys = txn.open_table(OWNER_KEYS)?;
            if let Some(old) = &existing
                && (old.info.owner != record.info.owner || old.info.serial != record.info.serial)
            {
                owner_keys.remove((old.info.owner.as_str(), old.info.serial))?;
            }
            owner_keys.insert(
                (record.info.owner.as_str(), record.info.serial),
                key_id.as_str(),
            )?;
        }
        if let Some(old) = &existing
            && old.digest != record.digest
        {
            // A local legacy upgrade the upstream record replaces (see the module
            // documentation): the upgraded digest leaves the shared table with this commit.
            if old.info.legacy.is_some() {
                super::legacy::forget_digest(txn, old)?;
            }
            retired.push(old.digest_hash()?);
        }
        if record.info.legacy.is_some() {
            txn.open_table(LEGACY_DIGESTS)?
                .insert(record.digest_hash()?.as_bytes().as_slice(), key_id.as_str())?;
        }
        Engine::save_stored(txn, record)?;
        let has_row = txn.open_table(CREDITS)?.get(key_id.as_str())?.is_some();
        match (&record.info.credits, has_row) {
            // Credits come to this host by lease only (`Store::add_leased_credits`): a new
            // limited key starts with none here.
            (Some(terms), false) => self.set_credits(
                txn,
                key_id,
                &NewCredits {
                    remaining: 0,
                    refill: terms.refill,
                    cost: terms.cost,
                },
                now,
            )?,
            (None, true) => self.clear_credits(txn, key_id)?,
            _ => {}
        }
        match &record.info.rate_limit {
            Some(limit) => {
                let has_slot = txn
                    .open_table(KEY_RATE_SLOTS)?
                    .get(key_id.as_str())?
                    .is_some();
                // A rotated key's successor starts from its predecessor's state on this host
                // (rotating grants no fresh burst), as a local rotation does.
                let inherit = match (&record.info.rotated_from, has_slot) {
                    (Some(from), false) => match KeyId::parse(from) {
                        Ok(from) => self.key_rate_state(txn, &from)?,
                        Err(_) => None,
                    },
                    _ => None,
                };
                self.set_key_rate_limit(txn, key_id, limit, inherit)?;
            }
            None => self.clear_key_rate_limit(txn, key_id)?,
        }
        Ok(())
    }

    /// Moves the credits an old key holds on this host (leased, unspent, of the current
    /// period) to its successor, once: the old key's row is emptied for good (as a local
    /// rotation empties it). Nothing moves when either key has no credit row here.
    fn move_rotated_credits(
        &self,
        txn: &WriteTransaction,
        old: &StoredKey,
        now: Timestamp,
    ) -> Result<()> {
        let (Some(terms), Some(successor)) = (&old.info.credits, &old.info.rotated_to) else {
            return Ok(());
        };
        let Ok(old_id) = KeyId::parse(&old.info.id) else {
            return Ok(());
        };
        let mut table = txn.open_table(CREDITS)?;
        let Some((remaining, stored_period, slot)) =
            table.get(old_id.as_str())?.map(|row| row.value())
        else {
            return Ok(());
        };
        if stored_period == i32::MAX {
            return Ok(()); // moved already
        }
        let period = period_of(terms.refill.map(|r| r.interval), now);
        // Of a past period: lapsed (refills are the upstream's), nothing to move.
        let left = self.with_slot_settled(slot, || {
            let left = if period > stored_period {
                0
            } else {
                self.credits_left(remaining, stored_period, slot, terms, now, true)
            };
            self.sync
                .credit_pool(slot)
                .store(pack(i32::MAX, 0), Ordering::Release);
            left
        });
        table.insert(old_id.as_str(), (0, i32::MAX, slot))?;
        drop(table);
        if left > 0 {
            add_to_row(txn, successor, left, period)?;
        }
        Ok(())
    }

    /// Writes an owner's replicated state in `txn`; `signals` collects what other processes
    /// must be told after the commit.
    fn put_owner_state(
        &self,
        txn: &WriteTransaction,
        owner: &str,
        state: &OwnerState,
        signals: &mut CommitSignals,
    ) -> Result<()> {
        if self.put_owner_controls(txn, owner, state.controls.as_ref())? {
            signals.owner_records = true;
        }
        if let Some(seq) = self.put_owner_rate_limit(txn, owner, state.rate_limit, true)? {
            signals.owner_rate_seq = Some(seq);
        }
        Ok(())
    }
}

/// Adds `credits` of refill period `period` to a key's credit row: a row of an older period
/// starts over from them (what it held lapsed), a row of a newer one takes none (they belong
/// to a past period). Returns whether they were added.
fn add_to_row(txn: &WriteTransaction, id: &str, credits: u64, period: i32) -> Result<bool> {
    let mut table = txn.open_table(CREDITS)?;
    let Some((remaining, stored_period, slot)) = table.get(id)?.map(|row| row.value()) else {
        return Ok(false);
    };
    let row = match stored_period.cmp(&period) {
        std::cmp::Ordering::Less => (credits, period, slot),
        std::cmp::Ordering::Equal => (remaining + credits, period, slot),
        std::cmp::Ordering::Greater => return Ok(false),
    };
    table.insert(id, row)?;
    Ok(true)
}

impl Store {
    /// A new key for an upstream write: validated like [`Store::create`], with a fresh id and
    /// secret and the digest under this store's pepper. Its `serial` is 0: the caller sets
    /// the upstream one. Nothing is written.
    pub(crate) fn prepare_replicated_key(&self, new: &NewKey) -> Result<(CreatedKey, StoredKey)> {
        let engine = self.engine()?;
        let now = engine.now();
        engine.validate_new(new, now)?;
        let id = KeyId::generate();
        let secret = Secret::generate();
        let key = format_key(&engine.prefix, new.env.as_deref(), &id, &secret);
        let digest = engine.pepper.digest(&id, &secret);
        drop(secret);
        let info = KeyInfo {
            id: id.as_str().to_owned(),
            owner: new.owner.clone(),
            name: new.name.clone(),
            scopes: normalize_scopes(&new.scopes)?,
            env: new.env.clone(),
            created_at: now.as_millis(),
            expires_at: new.expires_at.map(Timestamp::as_millis),
            metadata: new.metadata.clone(),
            revoked_at: None,
            revoke_reason: None,
            rotated_from: None,
            rotated_to: None,
            credits: new.credits.map(|c| CreditTerms {
                refill: c.refill,
                cost: c.cost,
            }),
            rate_limit: new.rate_limit,
            serial: 0,
            legacy: None,
        };
        let stored = StoredKey {
            info: info.clone(),
            digest: digest.to_hex().to_string(),
        };
        Ok((CreatedKey { key, info }, stored))
    }

    /// The hex check value of this store's pepper (what an upstream records so every host
    /// proves it digests with the same pepper; it reveals nothing about the pepper).
    pub(crate) fn pepper_check_hex(&self) -> Result<String> {
        Ok(self.engine()?.pepper.check_value().to_hex().to_string())
    }

    /// The key prefix of this store.
    pub(crate) fn key_prefix(&self) -> Result<String> {
        Ok(self.engine()?.prefix.clone())
    }

    /// The policies this store was opened with.
    pub(crate) fn policies(&self) -> Result<crate::policy::Policies> {
        Ok(self.engine()?.policies.clone())
    }

    /// The time of this store's clock.
    pub(crate) fn now(&self) -> Result<Timestamp> {
        Ok(self.engine()?.now())
    }

    /// Applies upstream changes in one local transaction; a change older than the one that
    /// last wrote its key or owner is skipped (a host applies its own writes at once, before
    /// the replicator brings them again). With `cursor`, records it as the last upstream
    /// sequence applied, in the same transaction. Returns how many keys and owners changed.
    pub(crate) fn apply_upstream(
        &self,
        changes: &[UpstreamChange],
        cursor: Option<u64>,
    ) -> Result<usize> {
        let engine = self.engine()?;
        let now = engine.now();
        let schemes = legacy_bits(changes.iter().filter_map(|c| match &c.subject {
            Subject::Key(record) => record.as_ref(),
            Subject::Owner(_) => None,
        }));
        enable_schemes_early(&engine, schemes);
        engine.write_change_signalling(|txn| {
            let mut changed = Vec::new();
            let mut seen = HashSet::new();
            let mut owners = 0;
            let mut retired = Vec::new();
            let mut signals = CommitSignals::default();
            let mut rotated = Vec::new();
            for change in changes {
                match &change.subject {
                    Subject::Key(record) => {
                        let key_id = parse_replicated_id(&change.id)?;
                        let newer_known = txn
                            .open_table(REPLICA_SEQ)?
                            .get(key_id.as_str())?
                            .is_some_and(|seq| seq.value() >= change.seq);
                        if newer_known {
                            continue;
                        }
                        match record {
                            Some(record) => {
                                engine.upsert_replicated(
                                    txn,
                                    &key_id,
                                    record,
                                    now,
                                    &mut retired,
                                )?;
                                if record.info.rotated_to.is_some() {
                                    rotated.push(record);
                                }
                            }
                            None => match Engine::load_stored(txn, &key_id) {
                                Ok(old) => engine.remove_key_rows(txn, &key_id, &old)?,
                                Err(Error::NotFound { .. }) => {}
                                Err(e) => return Err(e),
                            },
                        }
                        // Deleted keys keep their entry (a tombstone): an older change must not
                        // bring them back. A resynchronisation drops the tombstones.
                        txn.open_table(REPLICA_SEQ)?
                            .insert(key_id.as_str(), change.seq)?;
                        if seen.insert(change.id.as_str()) {
                            changed.push(key_id);
                        }
                    }
                    Subject::Owner(state) => {
                        let newer_known = txn
                            .open_table(REPLICA_OWNER_SEQ)?
                            .get(change.id.as_str())?
                            .is_some_and(|seq| seq.value() >= change.seq);
                        if newer_known {
                            continue;
                        }
                        engine.put_owner_state(txn, &change.id, state, &mut signals)?;
                        txn.open_table(REPLICA_OWNER_SEQ)?
                            .insert(change.id.as_str(), change.seq)?;
                        owners += 1;
                    }
                }
            }
            // After every record of the batch: a rotation writes its new key first, but the
            // new key may come in this batch or an earlier one.
            for old in rotated {
                engine.move_rotated_credits(txn, old, now)?;
            }
            if schemes != 0 {
                enable_schemes(txn, schemes)?;
            }
            if let Some(cursor) = cursor {
                set_cursor(txn, cursor)?;
            }
            Ok((changed.len() + owners, changed, retired, signals))
        })
    }

    /// Replaces every key and owner state with an upstream snapshot taken at `cursor` of
    /// upstream `epoch`, in one local transaction: keys and owner states the snapshot lacks
    /// are deleted. Returns how many keys changed.
    pub(crate) fn resync_upstream(
        &self,
        snapshot: &Snapshot,
        cursor: u64,
        epoch: &str,
    ) -> Result<usize> {
        let engine = self.engine()?;
        let now = engine.now();
        let schemes = legacy_bits(snapshot.keys.iter().map(|(_, r)| r));
        enable_schemes_early(&engine, schemes);
        engine.write_change_signalling(|txn| {
            let wanted: HashSet<&str> = snapshot
                .keys
                .iter()
                .map(|(_, r)| r.info.id.as_str())
                .collect();
            let mut stale = Vec::new();
            for item in txn.open_table(KEYS)?.iter()? {
                let (id, bytes) = item?;
                if !wanted.contains(id.value()) {
                    stale.push(StoredKey::decode(id.value(), bytes.value())?);
                }
            }
            let mut changed = Vec::with_capacity(stale.len() + snapshot.keys.len());
            for old in stale {
                let key_id = parse_replicated_id(&old.info.id)?;
                engine.remove_key_rows(txn, &key_id, &old)?;
                changed.push(key_id);
            }
            txn.open_table(REPLICA_SEQ)?.retain(|_, _| false)?;
            let mut retired = Vec::new();
            for (seq, record) in &snapshot.keys {
                let key_id = parse_replicated_id(&record.info.id)?;
                engine.upsert_replicated(txn, &key_id, record, now, &mut retired)?;
                txn.open_table(REPLICA_SEQ)?.insert(key_id.as_str(), *seq)?;
                changed.push(key_id);
            }
            for (_, record) in &snapshot.keys {
                engine.move_rotated_credits(txn, record, now)?;
            }
            let mut signals = CommitSignals::default();
            let listed: HashSet<&str> =
                snapshot.owners.iter().map(|(_, o, _)| o.as_str()).collect();
            let mut present = Engine::owner_record_names(txn)?;
            present.extend(Engine::owner_rate_limit_names(txn)?);
            let gone = OwnerState::default();
            for owner in present.iter().filter(|o| !listed.contains(o.as_str())) {
                engine.put_owner_state(txn, owner, &gone, &mut signals)?;
            }
            txn.open_table(REPLICA_OWNER_SEQ)?.retain(|_, _| false)?;
            for (seq, owner, state) in &snapshot.owners {
                engine.put_owner_state(txn, owner, state, &mut signals)?;
                txn.open_table(REPLICA_OWNER_SEQ)?
                    .insert(owner.as_str(), *seq)?;
            }
            if schemes != 0 {
                enable_schemes(txn, schemes)?;
            }
            set_cursor(txn, cursor)?;
            txn.open_table(META)?
                .insert(META_UPSTREAM_EPOCH, epoch.as_bytes())?;
            Ok((changed.len(), changed, retired, signals))
        })
    }

    /// The upstream epoch this store's cursor belongs to (`None` before its first snapshot).
    pub(crate) fn upstream_epoch(&self) -> Result<Option<String>> {
        self.engine()?.read(|txn| {
            let meta = txn.open_table(META)?;
            Ok(meta
                .get(META_UPSTREAM_EPOCH)?
                .map(|v| String::from_utf8_lossy(v.value()).into_owned()))
        })
    }

    /// Marks the store as a replica of an upstream (an upstream cursor of 0 when it has
    /// none): from then on its local management calls are refused (`UPSTREAM_REQUIRED`).
    pub(crate) fn mark_replica(&self) -> Result<()> {
        let engine = self.engine()?;
        engine.write_change(|txn| {
            let present = txn.open_table(META)?.get(META_UPSTREAM_CURSOR)?.is_some();
            if !present {
                set_cursor(txn, 0)?;
            }
            Ok(((), Vec::new()))
        })
    }

    /// The last upstream change sequence this store applied (0: none yet).
    pub(crate) fn upstream_cursor(&self) -> Result<u64> {
        self.engine()?.read(|txn| {
            let meta = txn.open_table(META)?;
            match meta.get(META_UPSTREAM_CURSOR)? {
                Some(v) => u64_from_meta(v.value()),
                None => Ok(0),
            }
        })
    }

    /// Uses per key and UTC day, for days `from` and later, as flushed to the database
    /// (absolute counts of this host: the upstream keeps the largest it was sent).
    pub(crate) fn usage_days_since(&self, from: i32) -> Result<Vec<(String, i32, u64)>> {
        self.engine()?.read(|txn| {
            let mut counts: BTreeMap<(String, i32), u64> = BTreeMap::new();
            match txn.open_table(USAGE_DAYS) {
                Ok(table) => {
                    for item in table.iter()? {
                        let (k, uses) = item?;
                        let (id, day) = k.value();
                        if day >= from {
                            counts.insert((id.to_owned(), day), uses.value());
                        }
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
            // A key's latest day is counted in its usage row (format 2).
            if let Some(rows) = super::usage_rows::open_current(txn)? {
                for item in rows.iter()? {
                    let (id, row) = item?;
                    let row = super::usage_rows::UsageRow::from_tuple(row.value());
                    if row.day.0 >= from && row.day_uses > 0 {
                        let sum = counts
                            .entry((id.value().to_owned(), row.day.0))
                            .or_default();
                        *sum = sum.saturating_add(row.day_uses);
                    }
                }
            }
            Ok(counts
                .into_iter()
                .map(|((id, day), uses)| (id, day, uses))
                .collect())
        })
    }

    /// Limited keys of this store that are not rotated away, with the credits their
    /// database row holds for the refill period `now` falls in (a row of a past period holds
    /// none: they lapsed) and that period.
    pub(crate) fn credit_rows(&self) -> Result<Vec<CreditRow>> {
        let engine = self.engine()?;
        let now = engine.now();
        engine.read(|txn| {
            let keys = txn.open_table(KEYS)?;
            let mut out = Vec::new();
            for item in txn.open_table(CREDITS)?.iter()? {
                let (id, row) = item?;
                let (remaining, stored_period, _) = row.value();
                if stored_period == i32::MAX {
                    continue; // rotated away: its credits moved to the successor
                }
                let Some(bytes) = keys.get(id.value())? else {
                    continue;
                };
                let info = StoredKey::decode(id.value(), bytes.value())?.info;
                let Some(terms) = info.credits else {
                    continue;
                };
                let period = period_of(terms.refill.map(|r| r.interval), now);
                out.push(CreditRow {
                    id: id.value().to_owned(),
                    held: if period > stored_period { 0 } else { remaining },
                    period,
                    refills: terms.refill.is_some(),
                });
            }
            Ok(out)
        })
    }

    /// Adds credits leased from the upstream for refill period `period` to a limited key of
    /// this host. Returns false (and adds nothing) when the key is not, or no longer, limited
    /// here, or the credits belong to a period this host has left.
    pub(crate) fn add_leased_credits(&self, id: &str, credits: u64, period: i32) -> Result<bool> {
        let engine = self.engine()?;
        let key_id = parse_replicated_id(id)?;
        engine.write_change(|txn| {
            Ok((
                add_to_row(txn, key_id.as_str(), credits, period)?,
                Vec::new(),
            ))
        })
    }
}

/// A limited key as its host's replicator sees it when leasing ([`Store::credit_rows`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreditRow {
    /// The key's public id.
    pub id: String,
    /// Credits its database row holds for the current period.
    pub held: u64,
    /// The refill period `now` falls in (0 without refill).
    pub period: i32,
    /// Whether the key refills.
    pub refills: bool,
}

/// Tells this process's shared table, before the keys can be found, that keys of these
/// legacy schemes may be presented (enabling early costs only lookups that miss).
fn enable_schemes_early(engine: &Engine, schemes: u64) {
    if schemes != 0
        && let Ok(view) = engine.current_table()
    {
        view.table.enable_legacy_schemes(schemes);
    }
}

/// Records legacy schemes as enabled in the store (read by every process's table).
fn enable_schemes(txn: &WriteTransaction, schemes: u64) -> Result<()> {
    let mut meta = txn.open_table(META)?;
    let enabled = match meta.get(META_LEGACY_SCHEMES)? {
        Some(v) => u64_from_meta(v.value())?,
        None => 0,
    };
    if enabled | schemes != enabled {
        meta.insert(
            META_LEGACY_SCHEMES,
            (enabled | schemes).to_le_bytes().as_slice(),
        )?;
    }
    Ok(())
}

fn set_cursor(txn: &WriteTransaction, cursor: u64) -> Result<()> {
    txn.open_table(META)?
        .insert(META_UPSTREAM_CURSOR, cursor.to_le_bytes().as_slice())?;
    Ok(())
}
