//! The store as a replica of a PostgreSQL upstream (feature `postgres`, `crate::upstream`):
//! preparing a new key for an upstream write, applying the upstream change log and snapshots
//! to the local redb store, and the local state the replicator exchanges with the upstream
//! (cursor, usage per day, leased credits).
//!
//! Every change goes through [`Engine::write_change`], like a local management call, so the
//! shared verify table and every worker process of the host see it on their next verify.

use std::collections::HashSet;

use redb::{ReadableTable, WriteTransaction};

use super::manage::{CreatedKey, NewCredits, NewKey, normalize_scopes};
use super::{Store, engine::Engine};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::key_format::{KeyId, Secret, format_key};
use crate::schema::{
    CREDITS, CreditTerms, KEYS, KeyInfo, META, META_UPSTREAM_CURSOR, META_UPSTREAM_EPOCH,
    OWNER_KEYS, REPLICA_SEQ, StoredKey, USAGE_DAYS, u64_from_meta,
};

/// One entry of the upstream change log: the state of a key after change `seq` (`None`: the
/// key was deleted).
#[derive(Debug, Clone)]
pub(crate) struct UpstreamChange {
    /// The upstream sequence number.
    pub seq: u64,
    /// The key's public id.
    pub id: String,
    /// The key after the change, or `None` once deleted.
    pub record: Option<StoredKey>,
}

fn parse_replicated_id(id: &str) -> Result<KeyId> {
    KeyId::parse(id).map_err(|_| Error::UpstreamSchema {
        detail: format!("the upstream holds a key id that does not parse: {id:?}"),
    })
}

impl Engine {
    /// Writes `record` as the key's state (record, owner index, credit row) in `txn`.
    fn upsert_replicated(
        &self,
        txn: &WriteTransaction,
        key_id: &KeyId,
        record: &StoredKey,
        now: Timestamp,
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
        Ok(())
    }
}

impl Store {
    /// A new key for an upstream write: validated like [`Store::create`], with a fresh id and
    /// secret and the digest under this store's pepper. Its `serial` is 0: the caller sets
    /// the upstream one. Nothing is written.
    pub(crate) fn prepare_replicated_key(&self, new: &NewKey) -> Result<(CreatedKey, StoredKey)> {
        let engine = self.engine()?;
        let now = engine.now();
        engine.validate_new(new, now)?;
        if new.rate_limit.is_some() {
            // The upstream schema carries no rate limits yet: refuse rather than drop it.
            return Err(Error::invalid(
                "rate_limit",
                "rate limits are not replicated through an upstream PostgreSQL yet",
            ));
        }
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
            rate_limit: None,
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
    /// last wrote its key is skipped (a host applies its own writes at once, before the
    /// replicator brings them again). With `cursor`, records it as the last upstream sequence
    /// applied, in the same transaction. Returns how many changes were applied.
    pub(crate) fn apply_upstream(
        &self,
        changes: &[UpstreamChange],
        cursor: Option<u64>,
    ) -> Result<usize> {
        let engine = self.engine()?;
        let now = engine.now();
        engine.write_change(|txn| {
            let mut changed = Vec::new();
            let mut seen = HashSet::new();
            for change in changes {
                let key_id = parse_replicated_id(&change.id)?;
                let newer_known = txn
                    .open_table(REPLICA_SEQ)?
                    .get(key_id.as_str())?
                    .is_some_and(|seq| seq.value() >= change.seq);
                if newer_known {
                    continue;
                }
                match &change.record {
                    Some(record) => engine.upsert_replicated(txn, &key_id, record, now)?,
                    None => match Engine::load_stored(txn, &key_id) {
                        Ok(old) => engine.remove_key_rows(txn, &key_id, &old)?,
                        Err(Error::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    },
                }
                // Deleted keys keep their entry (a tombstone): an older change must not bring
                // them back. A resynchronisation drops the tombstones.
                txn.open_table(REPLICA_SEQ)?
                    .insert(key_id.as_str(), change.seq)?;
                if seen.insert(change.id.as_str()) {
                    changed.push(key_id);
                }
            }
            if let Some(cursor) = cursor {
                set_cursor(txn, cursor)?;
            }
            Ok((changed.len(), changed))
        })
    }

    /// Replaces every key with an upstream snapshot taken at `cursor` of upstream `epoch`
    /// (`(seq, record)`: the sequence of the change that last wrote each key), in one local
    /// transaction: keys the snapshot lacks are deleted. Returns how many keys changed.
    pub(crate) fn resync_upstream(
        &self,
        snapshot: &[(u64, StoredKey)],
        cursor: u64,
        epoch: &str,
    ) -> Result<usize> {
        let engine = self.engine()?;
        let now = engine.now();
        engine.write_change(|txn| {
            let wanted: HashSet<&str> = snapshot.iter().map(|(_, r)| r.info.id.as_str()).collect();
            let mut stale = Vec::new();
            for item in txn.open_table(KEYS)?.iter()? {
                let (id, bytes) = item?;
                if !wanted.contains(id.value()) {
                    stale.push(StoredKey::decode(id.value(), bytes.value())?);
                }
            }
            let mut changed = Vec::with_capacity(stale.len() + snapshot.len());
            for old in stale {
                let key_id = parse_replicated_id(&old.info.id)?;
                engine.remove_key_rows(txn, &key_id, &old)?;
                changed.push(key_id);
            }
            txn.open_table(REPLICA_SEQ)?.retain(|_, _| false)?;
            for (seq, record) in snapshot {
                let key_id = parse_replicated_id(&record.info.id)?;
                engine.upsert_replicated(txn, &key_id, record, now)?;
                txn.open_table(REPLICA_SEQ)?.insert(key_id.as_str(), *seq)?;
                changed.push(key_id);
            }
            set_cursor(txn, cursor)?;
            txn.open_table(META)?
                .insert(META_UPSTREAM_EPOCH, epoch.as_bytes())?;
            Ok((changed.len(), changed))
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
            let table = match txn.open_table(USAGE_DAYS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for item in table.iter()? {
                let (k, uses) = item?;
                let (id, day) = k.value();
                if day >= from {
                    out.push((id.to_owned(), day, uses.value()));
                }
            }
            Ok(out)
        })
    }

    /// Limited keys of this store with the credits left in the database row (those not yet
    /// moved into the shared pool of the host).
    pub(crate) fn credit_rows(&self) -> Result<Vec<(String, u64)>> {
        self.engine()?.read(|txn| {
            let mut out = Vec::new();
            for item in txn.open_table(CREDITS)?.iter()? {
                let (id, row) = item?;
                out.push((id.value().to_owned(), row.value().0));
            }
            Ok(out)
        })
    }

    /// Adds credits leased from the upstream to a limited key of this host. Returns false
    /// (and adds nothing) when the key is not, or no longer, limited here: the caller gives
    /// them back.
    pub(crate) fn add_leased_credits(&self, id: &str, credits: u64) -> Result<bool> {
        let engine = self.engine()?;
        let key_id = parse_replicated_id(id)?;
        engine.write_change(|txn| {
            let mut table = txn.open_table(CREDITS)?;
            let row = table.get(key_id.as_str())?.map(|r| r.value());
            let Some((remaining, period, slot)) = row else {
                return Ok((false, Vec::new()));
            };
            table.insert(key_id.as_str(), (remaining + credits, period, slot))?;
            Ok((true, Vec::new()))
        })
    }
}

fn set_cursor(txn: &WriteTransaction, cursor: u64) -> Result<()> {
    txn.open_table(META)?
        .insert(META_UPSTREAM_CURSOR, cursor.to_le_bytes().as_slice())?;
    Ok(())
}
