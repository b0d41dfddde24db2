//! Owner controls: an owner (account, workspace) can be suspended — every key of it is then
//! refused with `OWNER_SUSPENDED` — and limited to a set of allowed scopes — a key's effective
//! scopes are then its own ∩ its owner's. No key record is rewritten for either.
//!
//! **Storage.** One record per owner in the `owners` table (JSON `OwnerRecordV1` + CRC32),
//! written in the transaction of the change together with its audit event. A store written
//! before owner controls existed has no such table and reads as having no owner records.
//!
//! **Visibility to every process.** A word of the sync file, the *owner epoch*, says which
//! owner state is current. An owner change runs under the table-writer lease (which serialises
//! writers across processes) and:
//! 1. makes the epoch odd (*in doubt*) before the commit;
//! 2. commits the record and its audit event;
//! 3. makes the epoch even again (a new value) after the commit returned.
//!
//! Each process keeps its owner rules (only the owners that restrict anything: suspended, or
//! with allowed scopes) decoded in memory, tagged with the epoch read just before them. A
//! verify loads the epoch word and compares it with the tag. Equal and no rule at all (a
//! store without owner records): nothing more — one atomic load and one compare on the hot
//! path. Equal with rules: one hash lookup of the key's owner. Another value: the rules are
//! read again from redb (one read transaction, once per process per change; it takes no lock
//! and waits for no writer) and tagged with that value. The epoch is read before the rules, so
//! rules read while a change is in progress (odd epoch) are read again once it is even: a
//! verify that starts after the change returned always sees it. A writer killed between
//! steps 1 and 3 leaves the epoch odd; the next writer, or any process's flusher when no
//! writer is active, makes it even (so processes that read the rules before the dead
//! writer's commit see it within one flush interval).
//!
//! A sync file found damaged or replaced (see `sys::shared_memory`) restarts the epoch; the
//! process that remaps it drops its rules (`Engine::refresh`) and reads them again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::Store;
use super::audit::{self, AuditAction};
use super::engine::Engine;
use super::manage::{MAX_REASON_LEN, check_len, check_owner, normalize_scopes};
use crate::error::{Error, Result};
use crate::locks::Mutex;
use crate::schema::{KeyInfo, OWNER_KEYS, OWNERS, with_crc, without_crc};

/// The stored version of an owner record.
const OWNER_RECORD_VERSION: u32 = 1;
/// The epoch tag of rules never loaded (odd, so it never equals a loaded state).
const UNKNOWN: u64 = u64::MAX;

/// An owner's controls and its number of keys ([`Store::owner`], [`Store::owners`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerInfo {
    /// The owner (account or workspace id), as keys name it.
    pub owner: String,
    /// When the owner was suspended, if it is (ms since the epoch).
    pub suspended_at: Option<i64>,
    /// Why, as given to [`Store::suspend_owner`].
    pub suspend_reason: Option<String>,
    /// The scopes the owner's keys may use (sorted); `None` = unrestricted.
    pub allowed_scopes: Option<Vec<String>>,
    /// When the owner record was created (ms); `None` = the owner has keys but no record.
    pub created_at: Option<i64>,
    /// When the owner record last changed (ms); `None` = no record.
    pub updated_at: Option<i64>,
    /// Keys of the owner (any state).
    pub keys: u64,
}

impl OwnerInfo {
    /// Whether the owner is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspended_at.is_some()
    }
}

/// What is stored per owner (locally in `owners`, with a CRC; upstream as plain JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnerRecordV1 {
    v: u32,
    suspended_at: Option<i64>,
    suspend_reason: Option<String>,
    allowed_scopes: Option<Vec<String>>,
    created_at: i64,
    updated_at: i64,
}

#[cfg(feature = "postgres")]
/// An owner's replicated state (feature `postgres`): its controls and the rate limit it
/// shares among its keys — what the upstream holds per owner and what an owner entry of its
/// change log carries. The rate-limit *state* (the GCRA word) is not part of it: it stays
/// with each host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnerState {
    /// Suspension and allowed scopes; `None`: no owner record.
    pub controls: Option<OwnerRecordV1>,
    /// The rate limit the owner shares among its keys.
    pub rate_limit: Option<crate::rate_limit::RateLimit>,
}

/// The edits of an owner record, shared by the local calls and the upstream's: each returns
/// the names of the fields it changed (none: nothing to write, no event).
impl OwnerRecordV1 {
    pub(crate) fn suspend(&mut self, now: i64, reason: Option<&str>) -> Vec<&'static str> {
        if self.suspended_at.is_some() {
            return vec![];
        }
        self.suspended_at = Some(now);
        self.suspend_reason = reason.map(str::to_owned);
        vec!["suspended_at", "suspend_reason"]
    }

    pub(crate) fn resume(&mut self) -> Vec<&'static str> {
        if self.suspended_at.is_none() {
            return vec![];
        }
        self.suspended_at = None;
        self.suspend_reason = None;
        vec!["suspended_at", "suspend_reason"]
    }

    pub(crate) fn set_scopes(&mut self, scopes: &Option<Vec<String>>) -> Vec<&'static str> {
        if &self.allowed_scopes == scopes {
            return vec![];
        }
        self.allowed_scopes = scopes.clone();
        vec!["allowed_scopes"]
    }

    /// Marks the record changed at `now`.
    #[cfg(feature = "postgres")]
    pub(crate) fn touch(&mut self, now: i64) {
        self.updated_at = now;
    }
}

/// Checks an owner-level call's arguments (shared with the upstream's calls): the owner, the
/// reason, and the allowed scopes normalised.
pub(crate) fn check_owner_args<S: AsRef<str>>(
    owner: &str,
    reason: Option<&str>,
    scopes: Option<&[S]>,
) -> Result<Option<Vec<String>>> {
    check_owner(owner)?;
    if let Some(reason) = reason {
        check_len("reason", reason, MAX_REASON_LEN)?;
    }
    scopes
        .map(|s| normalize_scopes(&s.iter().map(|s| s.as_ref().to_owned()).collect::<Vec<_>>()))
        .transpose()
}

impl OwnerRecordV1 {
    pub(crate) fn new(now: i64) -> OwnerRecordV1 {
        OwnerRecordV1 {
            v: OWNER_RECORD_VERSION,
            suspended_at: None,
            suspend_reason: None,
            allowed_scopes: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn encode(&self) -> Vec<u8> {
        with_crc(&serde_json::to_vec(self).expect("owner records serialize"))
    }

    fn decode(owner: &str, bytes: &[u8]) -> Result<OwnerRecordV1> {
        let corrupt = |detail: String| Error::Corrupt {
            path: Default::default(),
            detail,
        };
        let json = without_crc(bytes)
            .ok_or_else(|| corrupt(format!("owner record {owner:?} fails its checksum")))?;
        let record: OwnerRecordV1 = serde_json::from_slice(json)
            .map_err(|e| corrupt(format!("owner record {owner:?} does not decode: {e}")))?;
        if record.v != OWNER_RECORD_VERSION {
            return Err(corrupt(format!(
                "owner record {owner:?} has unknown version {}",
                record.v
            )));
        }
        Ok(record)
    }

    /// The rule verifies apply, if the record restricts anything.
    fn rule(&self) -> Option<OwnerRule> {
        (self.suspended_at.is_some() || self.allowed_scopes.is_some()).then(|| OwnerRule {
            suspended: self.suspended_at.is_some(),
            allowed: self.allowed_scopes.clone(),
        })
    }

    pub(crate) fn info(owner: &str, record: Option<&OwnerRecordV1>, keys: u64) -> OwnerInfo {
        OwnerInfo {
            owner: owner.to_owned(),
            suspended_at: record.and_then(|r| r.suspended_at),
            suspend_reason: record.and_then(|r| r.suspend_reason.clone()),
            allowed_scopes: record.and_then(|r| r.allowed_scopes.clone()),
            created_at: record.map(|r| r.created_at),
            updated_at: record.map(|r| r.updated_at),
            keys,
        }
    }
}

/// What a verify applies to the keys of a restricted owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerRule {
    /// Every key of the owner is refused with `OWNER_SUSPENDED`.
    pub suspended: bool,
    /// The scopes the owner's keys may use (sorted); `None` = unrestricted.
    pub allowed: Option<Vec<String>>,
}

impl OwnerRule {
    /// Whether the owner allows `scope`.
    #[inline]
    pub(crate) fn allows(&self, scope: &str) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|allowed| allowed.binary_search_by(|s| s.as_str().cmp(scope)).is_ok())
    }

    /// The key's record with its effective scopes (its own ∩ the owner's), or `None` when
    /// they are its own.
    pub(crate) fn effective(&self, info: &KeyInfo) -> Option<KeyInfo> {
        if info.scopes.iter().all(|s| self.allows(s)) {
            return None;
        }
        let mut narrowed = info.clone();
        narrowed.scopes.retain(|s| self.allows(s));
        Some(narrowed)
    }
}

/// The owner rules of one epoch.
struct OwnerRules {
    epoch: u64,
    rules: HashMap<String, Arc<OwnerRule>>,
}

/// This process's owner rules (see the module documentation).
pub(crate) struct OwnerCache {
    /// `epoch << 1` when the rules of that epoch are loaded and restrict nothing,
    /// `epoch << 1 | 1` when they restrict some owner, [`UNKNOWN`] before the first load.
    state: AtomicU64,
    rules: ArcSwap<OwnerRules>,
    reload: Mutex<()>,
}

impl OwnerCache {
    pub(crate) fn new() -> OwnerCache {
        OwnerCache {
            state: AtomicU64::new(UNKNOWN),
            rules: ArcSwap::from_pointee(OwnerRules {
                epoch: UNKNOWN,
                rules: HashMap::new(),
            }),
            reload: Mutex::new(()),
        }
    }

    /// Forgets the loaded rules (the sync file, and its epoch, were replaced).
    pub(crate) fn invalidate(&self) {
        let _reload = self.reload.lock();
        self.rules.store(Arc::new(OwnerRules {
            epoch: UNKNOWN,
            rules: HashMap::new(),
        }));
        self.state.store(UNKNOWN, Ordering::Release);
    }
}

fn read_record(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    owner: &str,
) -> Result<Option<OwnerRecordV1>> {
    match table.get(owner)? {
        Some(bytes) => OwnerRecordV1::decode(owner, bytes.value()).map(Some),
        None => Ok(None),
    }
}

/// Number of keys of `owner`.
fn key_count(
    owner_keys: &impl ReadableTable<(&'static str, u64), &'static str>,
    owner: &str,
) -> Result<u64> {
    let mut count = 0;
    for item in owner_keys.range((owner, 0)..=(owner, u64::MAX))? {
        item?;
        count += 1;
    }
    Ok(count)
}

impl Engine {
    /// The rule of `owner` for a verify, `None` when it restricts nothing. The hot path for a
    /// store without owner rules: one atomic load of the shared epoch, one of this process's
    /// state, one compare.
    #[inline]
    pub(super) fn owner_rule(&self, owner: &str) -> Result<Option<Arc<OwnerRule>>> {
        let epoch = self.sync.owner_epoch().load(Ordering::Acquire);
        if self.owners.state.load(Ordering::Acquire) == epoch << 1 {
            return Ok(None);
        }
        self.owner_rule_slow(owner, epoch)
    }

    #[cold]
    fn owner_rule_slow(&self, owner: &str, epoch: u64) -> Result<Option<Arc<OwnerRule>>> {
        let loaded = self.owners.rules.load();
        if loaded.epoch == epoch {
            return Ok(loaded.rules.get(owner).cloned());
        }
        drop(loaded);
        let rules = self.reload_owner_rules(epoch)?;
        Ok(rules.rules.get(owner).cloned())
    }

    /// Reads every restricting owner record, tagged with `epoch` (read before it). An odd epoch
    /// is cached too: a change in progress commits, then makes the epoch even, and readers
    /// read again; a writer killed in between leaves the odd epoch until the next writer or
    /// flusher settles it (at most one flush interval).
    #[cold]
    fn reload_owner_rules(&self, epoch: u64) -> Result<Arc<OwnerRules>> {
        let _reload = self.owners.reload.lock();
        let loaded = self.owners.rules.load_full();
        if loaded.epoch == epoch {
            return Ok(loaded);
        }
        let rules = self.read(|txn| {
            let mut rules = HashMap::new();
            let table = match txn.open_table(OWNERS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(rules),
                Err(e) => return Err(e.into()),
            };
            for item in table.iter()? {
                let (owner, bytes) = item?;
                let record = OwnerRecordV1::decode(owner.value(), bytes.value())?;
                if let Some(rule) = record.rule() {
                    rules.insert(owner.value().to_owned(), Arc::new(rule));
                }
            }
            Ok(rules)
        })?;
        let restricted = u64::from(!rules.is_empty());
        let loaded = Arc::new(OwnerRules { epoch, rules });
        self.owners.rules.store(Arc::clone(&loaded));
        self.owners
            .state
            .store(epoch << 1 | restricted, Ordering::Release);
        Ok(loaded)
    }

    /// Makes an odd owner epoch left by a writer that died mid-change even again. Called
    /// under the table-writer lease (no owner change is then in progress).
    pub(super) fn settle_owner_epoch(&self) {
        let word = self.sync.owner_epoch();
        let epoch = word.load(Ordering::Acquire);
        if epoch & 1 == 1 {
            let _ = word.compare_exchange(epoch, epoch + 1, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Step 1 of an owner change made outside [`Engine::write_owner_change`] (under the
    /// table-writer lease, before the commit): makes the owner epoch odd. Returns the value
    /// before, for [`Engine::settle_owner_epoch_word`] after the commit.
    pub(super) fn mark_owner_epoch_word(&self) -> u64 {
        self.settle_owner_epoch();
        let word = self.sync.owner_epoch();
        let before = word.load(Ordering::Acquire);
        word.store(before + 1, Ordering::Release);
        before
    }

    /// Step 3: makes the epoch even again after the commit (whether or not it went through),
    /// unless a flusher already did (and perhaps another writer marked it since).
    pub(super) fn settle_owner_epoch_word(&self, before: u64) {
        let _ = self.sync.owner_epoch().compare_exchange(
            before + 1,
            before + 2,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Whether a writer left the owner epoch odd (checked by the flusher).
    pub(super) fn owner_epoch_in_doubt(&self) -> bool {
        self.sync.owner_epoch().load(Ordering::Acquire) & 1 == 1
    }

    /// Runs an owner change: `body` returns its value and whether it wrote anything (only
    /// then is the epoch moved). Steps 1–3 of the module documentation.
    fn write_owner_change<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<(T, bool)>,
    ) -> Result<T> {
        let result = self.contained(|| {
            let _lease = self.lock_table_writer()?;
            self.settle_owner_epoch();
            let txn = self.db.begin_write()?;
            let (value, changed) = body(&txn)?;
            if !changed {
                drop(txn);
                return Ok(value);
            }
            let word = self.sync.owner_epoch();
            let before = word.load(Ordering::Acquire);
            word.store(before + 1, Ordering::Release);
            crate::failpoint::hit("owner-after-mark");
            let committed = txn.commit();
            if committed.is_ok() {
                self.commits.fetch_add(1, Ordering::Relaxed);
                crate::failpoint::hit("owner-after-commit");
            }
            // Even again whether or not the commit went through: readers reload either way.
            word.store(before + 2, Ordering::Release);
            committed?;
            Ok(value)
        });
        self.note_write_failure(result)
    }
}

impl Store {
    /// Suspends an owner: every key of it is refused with `OWNER_SUSPENDED` (HTTP 403) from
    /// the next verify in every process, until [`Store::resume_owner`]. The keys themselves
    /// are not changed. Suspending an owner that has no key yet is allowed (its future keys
    /// are refused too); suspending a suspended owner changes nothing (its first reason is
    /// kept). Audited as `owner_suspend`.
    pub fn suspend_owner(&self, owner: &str, reason: Option<&str>) -> Result<OwnerInfo> {
        check_owner_args::<&str>(owner, reason, None)?;
        if let Some(link) = self.upstream_link() {
            return self.upstream_suspend_owner(link, owner, reason);
        }
        self.change_owner(owner, AuditAction::OwnerSuspend, |record, now| {
            Ok(record.suspend(now, reason))
        })
    }

    /// Resumes a suspended owner: its keys are judged on their own again from the next verify
    /// in every process. Resuming an owner that is not suspended changes nothing. Audited as
    /// `owner_resume`. `OWNER_NOT_FOUND` if the owner has neither a record nor keys.
    pub fn resume_owner(&self, owner: &str) -> Result<OwnerInfo> {
        check_owner(owner)?;
        if let Some(link) = self.upstream_link() {
            return self.upstream_resume_owner(link, owner);
        }
        self.change_owner(owner, AuditAction::OwnerResume, |record, _| {
            Ok(record.resume())
        })
    }

    /// Sets the scopes an owner's keys may use (`None`: unrestricted). A key's effective
    /// scopes — those a verify checks and reports — are then its own ∩ these, from the next
    /// verify in every process; key records keep their own scopes. Audited as
    /// `owner_scopes`.
    pub fn set_owner_scopes<S: AsRef<str>>(
        &self,
        owner: &str,
        scopes: Option<&[S]>,
    ) -> Result<OwnerInfo> {
        let scopes = check_owner_args(owner, None, scopes)?;
        if let Some(link) = self.upstream_link() {
            return self.upstream_set_owner_scopes(link, owner, scopes.as_deref());
        }
        self.change_owner(owner, AuditAction::OwnerScopes, |record, _| {
            Ok(record.set_scopes(&scopes))
        })
    }

    /// An owner's controls and key count. `OWNER_NOT_FOUND` if it has neither a record nor
    /// keys.
    pub fn owner(&self, owner: &str) -> Result<OwnerInfo> {
        check_owner(owner)?;
        let engine = self.engine()?;
        engine.ensure_fresh()?;
        engine.read(|txn| {
            let record = match txn.open_table(OWNERS) {
                Ok(table) => read_record(&table, owner)?,
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            };
            let keys = key_count(&txn.open_table(OWNER_KEYS)?, owner)?;
            if record.is_none() && keys == 0 {
                return Err(Error::OwnerNotFound {
                    owner: owner.to_owned(),
                });
            }
            Ok(OwnerRecordV1::info(owner, record.as_ref(), keys))
        })
    }

    /// Every owner record (owners that were ever suspended or given allowed scopes), in
    /// owner order, with key counts. Owners that only have keys are not listed.
    pub fn owners(&self) -> Result<Vec<OwnerInfo>> {
        let engine = self.engine()?;
        engine.ensure_fresh()?;
        engine.read(|txn| {
            let table = match txn.open_table(OWNERS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
                Err(e) => return Err(e.into()),
            };
            let owner_keys = txn.open_table(OWNER_KEYS)?;
            let mut out = Vec::new();
            for item in table.iter()? {
                let (owner, bytes) = item?;
                let record = OwnerRecordV1::decode(owner.value(), bytes.value())?;
                let keys = key_count(&owner_keys, owner.value())?;
                out.push(OwnerRecordV1::info(owner.value(), Some(&record), keys));
            }
            Ok(out)
        })
    }

    /// Reads (or starts) the owner's record, lets `edit` change it (returning the names of
    /// the fields changed; none = no change, no event), and writes it with its audit event.
    fn change_owner(
        &self,
        owner: &str,
        action: AuditAction,
        edit: impl FnOnce(&mut OwnerRecordV1, i64) -> Result<Vec<&'static str>>,
    ) -> Result<OwnerInfo> {
        let engine = self.engine()?;
        engine.refuse_on_replica()?;
        let now = engine.now();
        let stamp = self.stamp(now);
        engine.write_owner_change(|txn| {
            let mut table = txn.open_table(OWNERS)?;
            let existing = read_record(&table, owner)?;
            let keys = key_count(&txn.open_table(OWNER_KEYS)?, owner)?;
            if existing.is_none() && keys == 0 && action == AuditAction::OwnerResume {
                return Err(Error::OwnerNotFound {
                    owner: owner.to_owned(),
                });
            }
            let mut record = existing
                .clone()
                .unwrap_or_else(|| OwnerRecordV1::new(now.as_millis()));
            let changed = edit(&mut record, now.as_millis())?;
            if changed.is_empty() {
                return Ok((OwnerRecordV1::info(owner, existing.as_ref(), keys), false));
            }
            record.updated_at = now.as_millis();
            table.insert(owner, record.encode().as_slice())?;
            drop(table);
            let event = stamp.event(action, None, Some(owner), &changed);
            audit::append(txn, &stamp, vec![event])?;
            Ok((OwnerRecordV1::info(owner, Some(&record), keys), true))
        })
    }
}

#[cfg(feature = "postgres")]
impl Engine {
    /// Writes an owner's replicated controls in `txn` (a replica applying the upstream's
    /// change log or snapshot). Returns whether they changed: the caller then moves the owner
    /// epoch around its commit ([`Engine::mark_owner_epoch_word`]).
    pub(super) fn put_owner_controls(
        &self,
        txn: &WriteTransaction,
        owner: &str,
        controls: Option<&OwnerRecordV1>,
    ) -> Result<bool> {
        let mut table = txn.open_table(OWNERS)?;
        if read_record(&table, owner)?.as_ref() == controls {
            return Ok(false);
        }
        match controls {
            Some(record) => {
                table.insert(owner, record.encode().as_slice())?;
            }
            None => {
                table.remove(owner)?;
            }
        }
        Ok(true)
    }

    /// Every owner with a record (for a resynchronisation to drop those the upstream lacks).
    pub(super) fn owner_record_names(txn: &WriteTransaction) -> Result<Vec<String>> {
        let table = txn.open_table(OWNERS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            out.push(item?.0.value().to_owned());
        }
        Ok(out)
    }
}
