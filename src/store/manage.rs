//! Management: create, get, list, update, revoke, delete and rotate keys, with the store's
//! policies enforced inside the same write transaction as the change.

use std::time::Duration;

use redb::{ReadableTable, WriteTransaction};
use serde::Serialize;
use zeroize::Zeroizing;

use super::audit::{self, AuditAction};
use super::engine::Engine;
use super::table_sync::KnownStates;
use super::{Store, not_found};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::key_format::{KeyId, Secret, format_key, is_valid_tag};
use crate::rate_limit::RateLimit;
use crate::schema::{
    CREDITS, CreditTerms, FREE_SLOTS, KEY_USAGE, KEYS, KeyInfo, META, META_NEXT_SLOT, META_SERIAL,
    OWNER_KEYS, Refill, StoredKey, USAGE_DAYS, USAGE_V1, u64_from_meta,
};
use crate::sys::shared_memory::CREDIT_SLOTS;

/// Longest owner id, in bytes.
pub const MAX_OWNER_LEN: usize = 128;
/// Longest key name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 64;
/// Most scopes per key.
pub const MAX_SCOPES: usize = 64;
/// Largest metadata, in bytes.
pub const MAX_METADATA_LEN: usize = 4096;
/// Longest revoke reason, in bytes.
pub const MAX_REASON_LEN: usize = 512;
/// Largest page of a listing.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Default grace period of a rotation.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Usage credits for a new (or updated) key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewCredits {
    /// Credits available now.
    pub remaining: u64,
    /// Optional periodic refill.
    pub refill: Option<Refill>,
    /// Default cost of one verify (≥ 1).
    pub cost: u32,
}

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Owner (account or workspace id), required.
    pub owner: String,
    /// Human name.
    pub name: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Env tag written into the key (`[a-z0-9]{1,16}`, e.g. `live`).
    pub env: Option<String>,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Metadata bytes (often JSON), at most [`MAX_METADATA_LEN`].
    pub metadata: Vec<u8>,
    /// Usage credits, for a limited key.
    pub credits: Option<NewCredits>,
    /// The key's own rate limit (see also [`Store::set_owner_rate_limit`]).
    pub rate_limit: Option<RateLimit>,
}

/// A freshly created key. The full key is available here and nowhere else, ever.
pub struct CreatedKey {
    pub(super) key: Zeroizing<String>,
    /// The stored record.
    pub info: KeyInfo,
}

impl CreatedKey {
    /// The full key, to hand to the customer once.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The public id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The secret part alone (for the `X-Api-Token-Secret-Key` style).
    pub fn secret(&self) -> &str {
        let body_start = self.key.len() - crate::key_format::BODY_LEN;
        let start = body_start + crate::key_format::ID_LEN;
        &self.key[start..start + crate::key_format::SECRET_LEN]
    }
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

/// Changes to a key; `None` fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New scope set.
    pub scopes: Option<Vec<String>>,
    /// New metadata.
    pub metadata: Option<Vec<u8>>,
    /// New expiry (`Some(None)` removes it).
    pub expires_at: Option<Option<Timestamp>>,
    /// New credits (`Some(None)` makes the key unlimited).
    pub credits: Option<Option<NewCredits>>,
    /// New rate limit (`Some(None)` removes it). A changed limit keeps the key's current
    /// state (no further ahead than the new burst window).
    pub rate_limit: Option<Option<RateLimit>>,
}

/// Which keys a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    /// Every key.
    #[default]
    All,
    /// Not revoked and not expired.
    Active,
    /// Revoked.
    Revoked,
    /// Expired and not revoked.
    Expired,
}

/// Paging and filtering of [`Store::list`].
#[derive(Debug, Clone, Copy)]
pub struct ListOptions {
    /// Return keys created after this serial (the previous page's `next`).
    pub after: Option<u64>,
    /// Page size (1..=[`MAX_PAGE_SIZE`]).
    pub limit: usize,
    /// Which keys.
    pub state: StateFilter,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            after: None,
            limit: 100,
            state: StateFilter::All,
        }
    }
}

/// One page of a listing, in creation order.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The keys.
    pub keys: Vec<KeyInfo>,
    /// Cursor for the next page, if there may be one.
    pub next: Option<u64>,
}

/// Checks an owner id given to an owner-level call: non-blank, at most [`MAX_OWNER_LEN`].
pub(super) fn check_owner(owner: &str) -> Result<()> {
    if owner.trim().is_empty() {
        return Err(Error::invalid("owner", "must not be empty"));
    }
    check_len("owner", owner, MAX_OWNER_LEN)
}

pub(super) fn check_len(field: &'static str, value: &str, limit: usize) -> Result<()> {
    if value.len() > limit {
        return Err(Error::TooLong { field, limit });
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Checks scope strings the application passes (granted at create/update, or required at
/// verify): at most [`MAX_SCOPES`], each non-empty, at most [`MAX_SCOPE_LEN`] bytes, without
/// whitespace or control characters. A bad scope is the application's error, never a verdict.
pub(crate) fn check_scopes<S: AsRef<str>>(scopes: &[S]) -> Result<()> {
    if scopes.len() > MAX_SCOPES {
        return Err(Error::TooLong {
            field: "scopes",
            limit: MAX_SCOPES,
        });
    }
    for scope in scopes {
        let scope = scope.as_ref();
        // The usual scope (`read`, `billing:write`): printable ASCII, so without control
        // characters and whitespace; checked byte by byte, then done.
        if !scope.is_empty()
            && scope.len() <= MAX_SCOPE_LEN
            && scope.bytes().all(|b| b.is_ascii_graphic())
        {
            continue;
        }
        if scope.is_empty() {
            return Err(Error::invalid("scope", "must not be empty"));
        }
        check_len("scope", scope, MAX_SCOPE_LEN)?;
        if scope.chars().any(char::is_whitespace) {
            return Err(Error::invalid("scope", "must not contain whitespace"));
        }
    }
    Ok(())
}

pub(crate) fn normalize_scopes(scopes: &[String]) -> Result<Vec<String>> {
    check_scopes(scopes)?;
    let mut out = scopes.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

fn check_credits(credits: &NewCredits) -> Result<()> {
    if credits.cost == 0 {
        return Err(Error::invalid("credits.cost", "must be at least 1"));
    }
    if credits.remaining >= 1 << 40 || credits.refill.is_some_and(|r| r.amount >= 1 << 40) {
        return Err(Error::invalid("credits", "at most 2^40 - 1 credits"));
    }
    Ok(())
}

impl Engine {
    fn check_lifetime(&self, expires_at: Option<Timestamp>, now: Timestamp) -> Result<()> {
        let Some(max) = self.policies.max_lifetime else {
            return Ok(());
        };
        match expires_at {
            Some(e) if e <= now.plus(max) => Ok(()),
            _ => Err(Error::PolicyMaxLifetime {
                max_lifetime_secs: max.as_secs(),
            }),
        }
    }

    /// Active keys of `owner` at `now`, read inside the write transaction.
    fn active_keys_of(
        &self,
        txn: &WriteTransaction,
        owner: &str,
        now: Timestamp,
    ) -> Result<Vec<KeyInfo>> {
        let owner_keys = txn.open_table(OWNER_KEYS)?;
        let keys = txn.open_table(KEYS)?;
        let mut active = Vec::new();
        for item in owner_keys.range((owner, 0)..=(owner, u64::MAX))? {
            let (_, id) = item?;
            if let Some(bytes) = keys.get(id.value())? {
                let stored = StoredKey::decode(id.value(), bytes.value())?;
                if stored.info.is_active_at(now.as_millis()) {
                    active.push(stored.info);
                }
            }
        }
        Ok(active)
    }

    fn next_counter(txn: &WriteTransaction, name: &str) -> Result<u64> {
        let mut meta = txn.open_table(META)?;
        let next = match meta.get(name)? {
            Some(v) => u64_from_meta(v.value())? + 1,
            None => 1,
        };
        meta.insert(name, next.to_le_bytes().as_slice())?;
        Ok(next)
    }

    fn allocate_slot(&self, txn: &WriteTransaction) -> Result<u32> {
        let mut free = txn.open_table(FREE_SLOTS)?;
        if let Some(slot) = free.pop_first()? {
            return Ok(slot.0.value());
        }
        drop(free);
        let next = Self::next_counter(txn, META_NEXT_SLOT)? - 1;
        if next >= CREDIT_SLOTS as u64 {
            return Err(Error::CreditSlotsExhausted {
                slots: CREDIT_SLOTS,
            });
        }
        Ok(next as u32)
    }

    /// Writes the credit row of a key and resets its shared pool (before the commit: until
    /// the commit lands no other process knows the slot belongs to this key).
    pub(super) fn set_credits(
        &self,
        txn: &WriteTransaction,
        id: &KeyId,
        credits: &NewCredits,
        now: Timestamp,
    ) -> Result<()> {
        let mut table = txn.open_table(CREDITS)?;
        let slot = match table.get(id.as_str())? {
            Some(row) => row.value().2,
            None => self.allocate_slot(txn)?,
        };
        let period = super::credits::period_of(credits.refill.map(|r| r.interval), now);
        table.insert(id.as_str(), (credits.remaining, period, slot))?;
        // Credits a top-up has in flight go into the pool before it is emptied, never after.
        self.with_slot_settled(slot, || {
            self.sync.credit_pool(slot).store(
                super::credits::pack(period, 0),
                std::sync::atomic::Ordering::Release,
            )
        });
        Ok(())
    }

    pub(super) fn clear_credits(&self, txn: &WriteTransaction, id: &KeyId) -> Result<()> {
        let mut table = txn.open_table(CREDITS)?;
        if let Some(row) = table.remove(id.as_str())? {
            let slot = row.value().2;
            drop(row);
            txn.open_table(FREE_SLOTS)?.insert(slot, ())?;
            self.with_slot_settled(slot, || {
                self.sync
                    .credit_pool(slot)
                    .store(0, std::sync::atomic::Ordering::Release)
            });
        }
        Ok(())
    }

    fn insert_new_key(
        &self,
        txn: &WriteTransaction,
        new: &NewKey,
        now: Timestamp,
    ) -> Result<(CreatedKey, KeyId)> {
        let keys = txn.open_table(KEYS)?;
        let mut id = KeyId::generate();
        while keys.get(id.as_str())?.is_some() {
            id = KeyId::generate();
        }
        drop(keys);
        let secret = Secret::generate();
        let key = format_key(&self.prefix, new.env.as_deref(), &id, &secret);
        let digest = self.pepper.digest(&id, &secret);
        drop(secret);
        let serial = Self::next_counter(txn, META_SERIAL)?;
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
            serial,
            legacy: None,
        };
        let stored = StoredKey {
            info: info.clone(),
            digest: digest.to_hex().to_string(),
        };
        txn.open_table(KEYS)?
            .insert(id.as_str(), stored.encode().as_slice())?;
        txn.open_table(OWNER_KEYS)?
            .insert((new.owner.as_str(), serial), id.as_str())?;
        if let Some(credits) = &new.credits {
            self.set_credits(txn, &id, credits, now)?;
        }
        if let Some(limit) = &new.rate_limit {
            self.set_key_rate_limit(txn, &id, limit, None)?;
        }
        Ok((CreatedKey { key, info }, id))
    }

    /// Inserts a batch of validated new keys: the policy checked per owner (counting the
    /// keys of the batch), serials taken in one step, and the rows written in key order
    /// (a random id per key would otherwise touch a random B-tree page per insert, which for
    /// a batch larger than the page cache means writing and reading pages back mid-batch).
    fn insert_new_keys(
        &self,
        txn: &WriteTransaction,
        batch: &[NewKey],
        now: Timestamp,
    ) -> Result<(Vec<CreatedKey>, Vec<KeyId>, KnownStates)> {
        if let Some(limit) = self.policies.max_active_keys_per_owner {
            let mut active: std::collections::HashMap<&str, usize> =
                std::collections::HashMap::new();
            for (index, new) in batch.iter().enumerate() {
                let count = match active.entry(new.owner.as_str()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(self.active_keys_of(txn, &new.owner, now)?.len())
                    }
                };
                if *count >= limit as usize {
                    return Err(Error::PolicyMaxActiveKeys {
                        owner: new.owner.clone(),
                        limit,
                    }
                    .in_batch(index));
                }
                *count += 1;
            }
        }
        let first_serial = {
            let mut meta = txn.open_table(META)?;
            let last = match meta.get(META_SERIAL)? {
                Some(v) => u64_from_meta(v.value())?,
                None => 0,
            };
            let end = last + batch.len() as u64;
            meta.insert(META_SERIAL, end.to_le_bytes().as_slice())?;
            last + 1
        };
        let mut created = Vec::with_capacity(batch.len());
        let mut rows = Vec::with_capacity(batch.len());
        for (index, new) in batch.iter().enumerate() {
            let id = KeyId::generate();
            let secret = Secret::generate();
            let key = format_key(&self.prefix, new.env.as_deref(), &id, &secret);
            let digest = self.pepper.digest(&id, &secret);
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
                serial: first_serial + index as u64,
                legacy: None,
            };
            rows.push((index, digest));
            created.push(CreatedKey { key, info });
        }
        // Ids are random (~95 bits): a collision with a stored key, or within the batch, is
        // all but impossible, but is handled: the colliding key gets a new id and secret.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_unstable_by(|&a, &b| created[a].info.id.cmp(&created[b].info.id));
        let mut known: KnownStates = (0..batch.len()).map(|_| None).collect();
        {
            let mut keys = txn.open_table(KEYS)?;
            for &index in &order {
                loop {
                    let stored = StoredKey {
                        info: created[index].info.clone(),
                        digest: rows[index].1.to_hex().to_string(),
                    };
                    let id = created[index].info.id.clone();
                    let old = keys
                        .insert(id.as_str(), stored.encode().as_slice())?
                        .map(|v| v.value().to_vec());
                    let Some(old) = old else {
                        // A limited key's slots are read back with it.
                        if batch[index].credits.is_none() && batch[index].rate_limit.is_none() {
                            known[index] = Some((stored, Default::default()));
                        }
                        break;
                    };
                    // Put the other key back and draw again for this one.
                    keys.insert(id.as_str(), old.as_slice())?;
                    let new_id = KeyId::generate();
                    let secret = Secret::generate();
                    let new = &batch[index];
                    created[index].key =
                        format_key(&self.prefix, new.env.as_deref(), &new_id, &secret);
                    created[index].info.id = new_id.as_str().to_owned();
                    rows[index].1 = self.pepper.digest(&new_id, &secret);
                }
            }
        }
        let mut by_owner: Vec<usize> = (0..batch.len()).collect();
        by_owner.sort_unstable_by(|&a, &b| batch[a].owner.cmp(&batch[b].owner));
        {
            let mut owner_keys = txn.open_table(OWNER_KEYS)?;
            for &index in &by_owner {
                let info = &created[index].info;
                owner_keys.insert((info.owner.as_str(), info.serial), info.id.as_str())?;
            }
        }
        let mut ids = Vec::with_capacity(batch.len());
        for (new, created) in batch.iter().zip(&created) {
            let id = KeyId::parse(&created.info.id)
                .map_err(|_| Error::storage("a generated key id does not parse (this is a bug)"))?;
            if let Some(credits) = &new.credits {
                self.set_credits(txn, &id, credits, now)?;
            }
            if let Some(limit) = &new.rate_limit {
                self.set_key_rate_limit(txn, &id, limit, None)?;
            }
            ids.push(id);
        }
        Ok((created, ids, known))
    }

    pub(super) fn validate_new(&self, new: &NewKey, now: Timestamp) -> Result<()> {
        if new.owner.trim().is_empty() {
            return Err(Error::invalid("owner", "must not be empty"));
        }
        check_len("owner", &new.owner, MAX_OWNER_LEN)?;
        check_len("name", &new.name, MAX_NAME_LEN)?;
        normalize_scopes(&new.scopes)?;
        if let Some(env) = &new.env
            && !is_valid_tag(env)
        {
            return Err(Error::invalid("env", "must be 1-16 characters a-z, 0-9"));
        }
        if new.metadata.len() > MAX_METADATA_LEN {
            return Err(Error::TooLong {
                field: "metadata",
                limit: MAX_METADATA_LEN,
            });
        }
        if let Some(credits) = &new.credits {
            check_credits(credits)?;
        }
        if let Some(limit) = &new.rate_limit {
            limit.check()?;
        }
        self.check_lifetime(new.expires_at, now)
    }

    pub(super) fn load_stored(txn: &WriteTransaction, id: &KeyId) -> Result<StoredKey> {
        let keys = txn.open_table(KEYS)?;
        let bytes = keys
            .get(id.as_str())?
            .ok_or_else(|| not_found(id.as_str()))?;
        StoredKey::decode(id.as_str(), bytes.value())
    }

    pub(super) fn save_stored(txn: &WriteTransaction, stored: &StoredKey) -> Result<()> {
        txn.open_table(KEYS)?
            .insert(stored.info.id.as_str(), stored.encode().as_slice())?;
        Ok(())
    }

    /// Removes every row of a key: record, owner index, usage, credits.
    pub(super) fn remove_key_rows(
        &self,
        txn: &WriteTransaction,
        key_id: &KeyId,
        stored: &StoredKey,
    ) -> Result<()> {
        let info = &stored.info;
        txn.open_table(KEYS)?.remove(key_id.as_str())?;
        txn.open_table(OWNER_KEYS)?
            .remove((info.owner.as_str(), info.serial))?;
        txn.open_table(KEY_USAGE)?.remove(key_id.as_str())?;
        if super::usage_rows::has_v1_table(txn)? {
            txn.open_table(USAGE_V1)?.remove(key_id.as_str())?;
        }
        if info.legacy.is_some() {
            super::legacy::forget_digest(txn, stored)?;
        }
        txn.open_table(USAGE_DAYS)?.retain_in(
            (key_id.as_str(), i32::MIN)..=(key_id.as_str(), i32::MAX),
            |_, _| false,
        )?;
        self.clear_credits(txn, key_id)?;
        self.clear_key_rate_limit(txn, key_id)
    }

    /// Refuses to remove `info` from service if it is its owner's last active key.
    fn check_keep_last(
        &self,
        txn: &WriteTransaction,
        info: &KeyInfo,
        now: Timestamp,
    ) -> Result<()> {
        if !self.policies.keep_last_key || !info.is_active_at(now.as_millis()) {
            return Ok(());
        }
        let others = self
            .active_keys_of(txn, &info.owner, now)?
            .into_iter()
            .filter(|k| k.id != info.id)
            .count();
        if others == 0 {
            return Err(Error::PolicyLastActiveKey {
                owner: info.owner.clone(),
            });
        }
        Ok(())
    }
}

fn parse_id(id: &str) -> Result<KeyId> {
    KeyId::parse(id).map_err(|_| not_found(id))
}

impl Store {
    /// Creates a key. The full key is in the result and nowhere else.
    pub fn create(&self, new: NewKey) -> Result<CreatedKey> {
        if let Some(link) = self.upstream_link() {
            return self.upstream_create(link, new);
        }
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let now = engine.now();
        let stamp = self.stamp(now);
        let result = engine.validate_new(&new, now).and_then(|()| {
            engine.write_change(|txn| {
                if let Some(limit) = engine.policies.max_active_keys_per_owner
                    && engine.active_keys_of(txn, &new.owner, now)?.len() >= limit as usize
                {
                    return Err(Error::PolicyMaxActiveKeys {
                        owner: new.owner.clone(),
                        limit,
                    });
                }
                let (created, id) = engine.insert_new_key(txn, &new, now)?;
                let event = stamp.event(
                    AuditAction::Create,
                    Some(id.as_str()),
                    Some(&new.owner),
                    &[],
                );
                audit::append(txn, &stamp, vec![event])?;
                Ok((created, vec![id]))
            })
        });
        self.note_refusal(&engine, None, Some(&new.owner), result)
    }

    /// Creates many keys in one durable transaction (bulk import, benchmarks).
    pub fn create_many(&self, batch: Vec<NewKey>) -> Result<Vec<CreatedKey>> {
        self.create_many_as(batch, AuditAction::Create)
    }

    /// Creates many keys in one durable transaction, recorded in the audit log as an
    /// import (what `keyward import` uses).
    pub fn import_many(&self, batch: Vec<NewKey>) -> Result<Vec<CreatedKey>> {
        self.create_many_as(batch, AuditAction::Import)
    }

    fn create_many_as(&self, batch: Vec<NewKey>, action: AuditAction) -> Result<Vec<CreatedKey>> {
        if let Some(link) = self.upstream_link() {
            let action = match action {
                AuditAction::Import => "import",
                _ => "create",
            };
            return self.upstream_create_many(link, batch, action);
        }
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let now = engine.now();
        let stamp = self.stamp(now);
        let result = batch
            .iter()
            .enumerate()
            .try_for_each(|(index, new)| {
                engine.validate_new(new, now).map_err(|e| e.in_batch(index))
            })
            .and_then(|()| self.insert_batch(&engine, &batch, now, &stamp, action));
        let owner = batch.first().map(|n| n.owner.as_str());
        self.note_refusal(&engine, None, owner, result)
    }

    fn insert_batch(
        &self,
        engine: &Engine,
        batch: &[NewKey],
        now: Timestamp,
        stamp: &audit::Stamp,
        action: AuditAction,
    ) -> Result<Vec<CreatedKey>> {
        engine.write_change_known(|txn| {
            let (created, ids, known) = engine.insert_new_keys(txn, batch, now)?;
            let events = created
                .iter()
                .map(|c| stamp.event(action, Some(c.id()), Some(&c.info.owner), &[]))
                .collect();
            audit::append(txn, stamp, events)?;
            Ok((created, ids, known))
        })
    }

    /// The public record of a key.
    pub fn get(&self, id: &str) -> Result<KeyInfo> {
        let engine = self.engine()?;
        let key_id = parse_id(id)?;
        engine.info(&key_id)?.ok_or_else(|| not_found(id))
    }

    /// Lists an owner's keys in creation order, a page at a time.
    pub fn list(&self, owner: &str, options: ListOptions) -> Result<Page> {
        if options.limit == 0 || options.limit > MAX_PAGE_SIZE {
            return Err(Error::invalid(
                "limit",
                format!("must be 1..={MAX_PAGE_SIZE}"),
            ));
        }
        check_len("owner", owner, MAX_OWNER_LEN)?;
        let engine = self.engine()?;
        let now = engine.now().as_millis();
        engine.read(|txn| {
            let owner_keys = txn.open_table(OWNER_KEYS)?;
            let keys = txn.open_table(KEYS)?;
            let start = options.after.map_or(0, |s| s.saturating_add(1));
            let mut page = Vec::new();
            let mut last_serial = None;
            let mut more = false;
            for item in owner_keys.range((owner, start)..=(owner, u64::MAX))? {
                let (k, id) = item?;
                if page.len() == options.limit {
                    more = true;
                    break;
                }
                last_serial = Some(k.value().1);
                let Some(bytes) = keys.get(id.value())? else {
                    continue;
                };
                let info = StoredKey::decode(id.value(), bytes.value())?.info;
                let keep = match options.state {
                    StateFilter::All => true,
                    StateFilter::Active => info.is_active_at(now),
                    StateFilter::Revoked => info.revoked_at.is_some(),
                    StateFilter::Expired => info.revoked_at.is_none() && !info.is_active_at(now),
                };
                if keep {
                    page.push(info);
                }
            }
            Ok(Page {
                keys: page,
                next: if more { last_serial } else { None },
            })
        })
    }

    /// Every key of the store, in creation order (for export and operators).
    pub fn all_keys(&self) -> Result<Vec<KeyInfo>> {
        let engine = self.engine()?;
        engine.read(|txn| {
            let keys = txn.open_table(KEYS)?;
            let mut all = Vec::new();
            for item in keys.iter()? {
                let (id, bytes) = item?;
                all.push(StoredKey::decode(id.value(), bytes.value())?.info);
            }
            all.sort_by_key(|k| k.serial);
            Ok(all)
        })
    }

    /// Updates a key's name, scopes, metadata, expiry or credits.
    pub fn update(&self, id: &str, update: KeyUpdate) -> Result<KeyInfo> {
        if let Some(link) = self.upstream_link() {
            return self.upstream_update(link, id, update);
        }
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let key_id = parse_id(id)?;
        let now = engine.now();
        if let Some(name) = &update.name {
            check_len("name", name, MAX_NAME_LEN)?;
        }
        let scopes = update.scopes.as_deref().map(normalize_scopes).transpose()?;
        if update
            .metadata
            .as_ref()
            .is_some_and(|m| m.len() > MAX_METADATA_LEN)
        {
            return Err(Error::TooLong {
                field: "metadata",
                limit: MAX_METADATA_LEN,
            });
        }
        if let Some(expiry) = update.expires_at {
            self.note_refusal(&engine, Some(id), None, engine.check_lifetime(expiry, now))?;
        }
        if let Some(Some(credits)) = &update.credits {
            check_credits(credits)?;
        }
        if let Some(Some(limit)) = &update.rate_limit {
            limit.check()?;
        }
        let stamp = self.stamp(now);
        let changed: Vec<&str> = [
            ("name", update.name.is_some()),
            ("scopes", update.scopes.is_some()),
            ("metadata", update.metadata.is_some()),
            ("expires_at", update.expires_at.is_some()),
            ("credits", update.credits.is_some()),
            ("rate_limit", update.rate_limit.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect();
        engine.write_change(|txn| {
            let mut stored = Engine::load_stored(txn, &key_id)?;
            let event = stamp.event(
                AuditAction::Update,
                Some(key_id.as_str()),
                Some(&stored.info.owner),
                &changed,
            );
            audit::append(txn, &stamp, vec![event])?;
            if let Some(name) = update.name {
                stored.info.name = name;
            }
            if let Some(scopes) = scopes {
                stored.info.scopes = scopes;
            }
            if let Some(metadata) = update.metadata {
                stored.info.metadata = metadata;
            }
            if let Some(expiry) = update.expires_at {
                stored.info.expires_at = expiry.map(Timestamp::as_millis);
            }
            match update.credits {
                Some(Some(credits)) => {
                    engine.set_credits(txn, &key_id, &credits, now)?;
                    stored.info.credits = Some(CreditTerms {
                        refill: credits.refill,
                        cost: credits.cost,
                    });
                }
                Some(None) => {
                    engine.clear_credits(txn, &key_id)?;
                    stored.info.credits = None;
                }
                None => {}
            }
            match update.rate_limit {
                Some(Some(limit)) => {
                    engine.set_key_rate_limit(txn, &key_id, &limit, None)?;
                    stored.info.rate_limit = Some(limit);
                }
                Some(None) => {
                    engine.clear_key_rate_limit(txn, &key_id)?;
                    stored.info.rate_limit = None;
                }
                None => {}
            }
            Engine::save_stored(txn, &stored)?;
            Ok((stored.info, vec![key_id]))
        })
    }

    /// Revokes a key, for good. Revoking a revoked key changes nothing and returns its record.
    pub fn revoke(&self, id: &str, reason: Option<&str>) -> Result<KeyInfo> {
        if let Some(reason) = reason {
            check_len("reason", reason, MAX_REASON_LEN)?;
        }
        if let Some(link) = self.upstream_link() {
            return self.upstream_revoke(link, id, reason);
        }
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let key_id = parse_id(id)?;
        let now = engine.now();
        let stamp = self.stamp(now);
        let result = engine.write_change(|txn| {
            let mut stored = Engine::load_stored(txn, &key_id)?;
            if stored.info.revoked_at.is_some() {
                return Ok((stored.info, vec![]));
            }
            engine.check_keep_last(txn, &stored.info, now)?;
            stored.info.revoked_at = Some(now.as_millis());
            stored.info.revoke_reason = reason.map(str::to_owned);
            Engine::save_stored(txn, &stored)?;
            let event = stamp.event(
                AuditAction::Revoke,
                Some(key_id.as_str()),
                Some(&stored.info.owner),
                &["revoked_at", "revoke_reason"],
            );
            audit::append(txn, &stamp, vec![event])?;
            Ok((stored.info, vec![key_id]))
        });
        self.note_refusal(&engine, Some(id), None, result)
    }

    /// Deletes a key and its usage history.
    pub fn delete(&self, id: &str) -> Result<()> {
        if let Some(link) = self.upstream_link() {
            return self.upstream_delete(link, id);
        }
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let key_id = parse_id(id)?;
        let now = engine.now();
        let stamp = self.stamp(now);
        let result = engine.write_change(|txn| {
            let stored = Engine::load_stored(txn, &key_id)?;
            engine.check_keep_last(txn, &stored.info, now)?;
            let event = stamp.event(
                AuditAction::Delete,
                Some(key_id.as_str()),
                Some(&stored.info.owner),
                &[],
            );
            audit::append(txn, &stamp, vec![event])?;
            engine.remove_key_rows(txn, &key_id, &stored)?;
            Ok(((), vec![key_id]))
        });
        self.note_refusal(&engine, Some(id), None, result)
    }

    /// Replaces a key with a new one that inherits owner, name, scopes, env, metadata, the
    /// same lifetime length, the credits left and the rate limit (with its current state:
    /// no fresh burst). The old key stays valid for `grace`
    /// (zero = refused at once) and records its successor. Returns the new key, once.
    pub fn rotate(&self, id: &str, grace: Duration) -> Result<CreatedKey> {
        if let Some(link) = self.upstream_link() {
            return self.upstream_rotate(link, id, grace);
        }
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let key_id = parse_id(id)?;
        let now = engine.now();
        let stamp = self.stamp(now);
        engine.write_change(|txn| {
            let mut old = Engine::load_stored(txn, &key_id)?;
            if old.info.revoked_at.is_some() {
                return Err(Error::invalid("key", "a revoked key cannot be rotated"));
            }
            if let Some(successor) = &old.info.rotated_to {
                // Its expiry is now the end of the grace period, not its lifetime: a second
                // successor would inherit that. Rotation chains go on from the newest key.
                return Err(Error::invalid(
                    "key",
                    format!("this key was already rotated to {successor}; rotate that key instead"),
                ));
            }
            let lifetime = old.info.expires_at.map(|e| e - old.info.created_at);
            let mut expires_at =
                lifetime.map(|l| Timestamp::from_millis(now.as_millis().saturating_add(l)));
            if let Some(max) = engine.policies.max_lifetime {
                let cap = now.plus(max);
                expires_at = Some(expires_at.map_or(cap, |e| e.min(cap)));
            }
            let credits = match old.info.credits {
                Some(terms) => Some(NewCredits {
                    remaining: engine.take_all_credits(txn, &key_id, &terms, now)?,
                    refill: terms.refill,
                    cost: terms.cost,
                }),
                None => None,
            };
            let new = NewKey {
                owner: old.info.owner.clone(),
                name: old.info.name.clone(),
                scopes: old.info.scopes.clone(),
                env: old.info.env.clone(),
                expires_at,
                metadata: old.info.metadata.clone(),
                credits,
                // Set below, from the old key's state: rotating grants no fresh burst.
                rate_limit: None,
            };
            let (mut created, new_id) = engine.insert_new_key(txn, &new, now)?;
            if let Some(limit) = &old.info.rate_limit {
                let state = engine.key_rate_state(txn, &key_id)?;
                engine.set_key_rate_limit(txn, &new_id, limit, state)?;
                created.info.rate_limit = Some(*limit);
            }
            created.info.rotated_from = Some(old.info.id.clone());
            let stored_new = {
                let keys = txn.open_table(KEYS)?;
                let bytes = keys
                    .get(new_id.as_str())?
                    .ok_or_else(|| not_found(new_id.as_str()))?;
                let mut s = StoredKey::decode(new_id.as_str(), bytes.value())?;
                s.info.rotated_from = Some(old.info.id.clone());
                s.info.rate_limit = old.info.rate_limit;
                s
            };
            Engine::save_stored(txn, &stored_new)?;
            let grace_end = now.plus(grace).as_millis();
            old.info.expires_at = Some(old.info.expires_at.map_or(grace_end, |e| e.min(grace_end)));
            old.info.rotated_to = Some(new_id.as_str().to_owned());
            Engine::save_stored(txn, &old)?;
            let owner = Some(old.info.owner.as_str());
            let mut old_event = stamp.event(
                AuditAction::Rotate,
                Some(key_id.as_str()),
                owner,
                &["expires_at", "rotated_to"],
            );
            old_event.detail = Some(new_id.as_str().to_owned());
            let mut new_event = stamp.event(
                AuditAction::Rotate,
                Some(new_id.as_str()),
                owner,
                &["rotated_from"],
            );
            new_event.detail = Some(key_id.as_str().to_owned());
            audit::append(txn, &stamp, vec![old_event, new_event])?;
            Ok((created, vec![key_id, new_id]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_judged_alike_on_the_ascii_path_and_the_general_one() {
        let long = "s".repeat(MAX_SCOPE_LEN + 1);
        let limit = "s".repeat(MAX_SCOPE_LEN);
        let accepted = [
            "read",
            "billing:write",
            "a/b.c-d_e",
            "é",
            "日本",
            limit.as_str(),
        ];
        let refused = [
            "",
            "a b",
            "a\tb",
            "a\u{7f}",
            "\u{1}",
            "a\u{a0}b",
            "x\u{85}",
            "a\u{2028}",
            long.as_str(),
        ];
        for scope in accepted {
            assert!(check_scopes(&[scope]).is_ok(), "{scope:?} is a valid scope");
        }
        for scope in refused {
            let error = check_scopes(&[scope]).expect_err(scope);
            assert_eq!(
                error.code().family(),
                crate::ErrorFamily::Argument,
                "{scope:?}"
            );
        }
    }
}
