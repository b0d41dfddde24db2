//! The audit log: one event per key changed (and per policy refusal), appended in the write
//! transaction of the change itself, so an event exists exactly when its change committed.
//!
//! Events hold the time, the actor the host named (`Store::with_actor`), the key id, the
//! owner, the action and the names of the fields changed — never a secret or a digest.
//! They are stored in the `audit` table under an increasing sequence number (JSON + CRC32,
//! versioned by a `v` field), queried in sequence order with filters, and pruned by the
//! store's retention setting as part of every audited write.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::Store;
use super::engine::Engine;
use crate::clock::Timestamp;
use crate::error::{Error, ErrorFamily, Result};
use crate::schema::{AUDIT, META, META_AUDIT_SEQ, u64_from_meta, with_crc, without_crc};

/// Longest actor, in bytes.
pub const MAX_ACTOR_LEN: usize = 256;
/// The stored version of an audit event.
const AUDIT_EVENT_VERSION: u32 = 1;
/// Most events pruned by one write (the rest go with the next writes).
const PRUNE_BATCH: usize = 1024;
const DAY_MS: i64 = 86_400_000;

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A key was created.
    Create,
    /// A key's fields were changed.
    Update,
    /// A key was rotated (one event for the old key, one for its successor).
    Rotate,
    /// A key was revoked.
    Revoke,
    /// A key was deleted.
    Delete,
    /// A key was created by an import (`Store::import_many`, `keyward import`).
    Import,
    /// A change was refused by a store policy (nothing changed; `detail` names the policy).
    PolicyRefused,
    /// An owner was suspended (`Store::suspend_owner`; no key id).
    OwnerSuspend,
    /// A suspended owner was resumed (`Store::resume_owner`; no key id).
    OwnerResume,
    /// An owner's allowed scopes were set or cleared (`Store::set_owner_scopes`; no key id).
    OwnerScopes,
}

impl AuditAction {
    /// Stable numeric code (C ABI).
    pub fn code(self) -> u32 {
        match self {
            AuditAction::Create => 1,
            AuditAction::Update => 2,
            AuditAction::Rotate => 3,
            AuditAction::Revoke => 4,
            AuditAction::Delete => 5,
            AuditAction::Import => 6,
            AuditAction::PolicyRefused => 7,
            AuditAction::OwnerSuspend => 8,
            AuditAction::OwnerResume => 9,
            AuditAction::OwnerScopes => 10,
        }
    }

    /// The snake_case name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Rotate => "rotate",
            AuditAction::Revoke => "revoke",
            AuditAction::Delete => "delete",
            AuditAction::Import => "import",
            AuditAction::PolicyRefused => "policy_refused",
            AuditAction::OwnerSuspend => "owner_suspend",
            AuditAction::OwnerResume => "owner_resume",
            AuditAction::OwnerScopes => "owner_scopes",
        }
    }

    /// The action named `name` (snake_case).
    pub fn from_name(name: &str) -> Option<AuditAction> {
        [
            AuditAction::Create,
            AuditAction::Update,
            AuditAction::Rotate,
            AuditAction::Revoke,
            AuditAction::Delete,
            AuditAction::Import,
            AuditAction::PolicyRefused,
            AuditAction::OwnerSuspend,
            AuditAction::OwnerResume,
            AuditAction::OwnerScopes,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Sequence number (increasing; the paging cursor).
    pub seq: u64,
    /// When, ms since the epoch (the store's clock).
    pub at: i64,
    /// Who, as the host named it (`Store::with_actor`); `None` when not given.
    pub actor: Option<String>,
    /// What.
    pub action: AuditAction,
    /// The key (`None` for a refused create and for owner changes).
    pub key_id: Option<String>,
    /// The key's owner (`None` when a refusal does not name it).
    pub owner: Option<String>,
    /// Names of the fields changed (e.g. `name`, `scopes`, `revoked_at`).
    pub changed: Vec<String>,
    /// The related key of a rotation (successor or predecessor), or the error code of a
    /// policy refusal.
    pub detail: Option<String>,
}

/// Filters and paging of [`Store::audit`]. Every filter given must match.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events of this key.
    pub key_id: Option<String>,
    /// Only events of this owner.
    pub owner: Option<String>,
    /// Only events of this actor.
    pub actor: Option<String>,
    /// Only events at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Only events before this time (ms since the epoch).
    pub until: Option<i64>,
    /// Events after this sequence number (the previous page's `next`).
    pub after: Option<u64>,
    /// Page size (1..=`MAX_PAGE_SIZE`); 0 = 100.
    pub limit: usize,
}

/// One page of audit events, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Cursor for the next page, if there may be one.
    pub next: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct AuditEventV1 {
    v: u32,
    #[serde(flatten)]
    event: AuditEvent,
}

fn encode(event: &AuditEvent) -> Vec<u8> {
    let json = serde_json::to_vec(&AuditEventV1 {
        v: AUDIT_EVENT_VERSION,
        event: event.clone(),
    })
    .expect("audit events serialize");
    with_crc(&json)
}

fn decode(seq: u64, bytes: &[u8]) -> Result<AuditEvent> {
    let corrupt = |detail: String| Error::Corrupt {
        path: Default::default(),
        detail,
    };
    let json = without_crc(bytes)
        .ok_or_else(|| corrupt(format!("audit event {seq} fails its checksum")))?;
    let stored: AuditEventV1 = serde_json::from_slice(json)
        .map_err(|e| corrupt(format!("audit event {seq} does not decode: {e}")))?;
    if stored.v != AUDIT_EVENT_VERSION {
        return Err(corrupt(format!(
            "audit event {seq} has unknown version {}",
            stored.v
        )));
    }
    Ok(stored.event)
}

/// Who and when, for the events of one change.
pub(super) struct Stamp {
    actor: Option<String>,
    at: i64,
    keep_days: u32,
}

impl Stamp {
    pub(super) fn event(
        &self,
        action: AuditAction,
        key_id: Option<&str>,
        owner: Option<&str>,
        changed: &[&str],
    ) -> AuditEvent {
        AuditEvent {
            seq: 0,
            at: self.at,
            actor: self.actor.clone(),
            action,
            key_id: key_id.map(str::to_owned),
            owner: owner.map(str::to_owned),
            changed: changed.iter().map(|s| (*s).to_owned()).collect(),
            detail: None,
        }
    }
}

/// Appends `events` in `txn` and prunes what the retention setting no longer keeps.
pub(super) fn append(txn: &WriteTransaction, stamp: &Stamp, events: Vec<AuditEvent>) -> Result<()> {
    let mut meta = txn.open_table(META)?;
    let mut seq = match meta.get(META_AUDIT_SEQ)? {
        Some(v) => u64_from_meta(v.value())?,
        None => 0,
    };
    let mut table = txn.open_table(AUDIT)?;
    for mut event in events {
        seq += 1;
        event.seq = seq;
        table.insert(seq, encode(&event).as_slice())?;
    }
    meta.insert(META_AUDIT_SEQ, seq.to_le_bytes().as_slice())?;
    if stamp.keep_days > 0 {
        let cutoff = stamp.at.saturating_sub(i64::from(stamp.keep_days) * DAY_MS);
        // Events are appended in time order (up to clock steps), so the old ones are first.
        for _ in 0..PRUNE_BATCH {
            let oldest = match table.first()? {
                Some((k, v)) => Some((k.value(), decode(k.value(), v.value())?.at)),
                None => None,
            };
            match oldest {
                Some((k, at)) if at < cutoff => {
                    table.remove(k)?;
                }
                _ => break,
            }
        }
    }
    Ok(())
}

impl Store {
    /// A handle onto the same store that stamps every change it makes with `actor` in the
    /// audit log (the user, service or request the host acts for). Cheap; the handle shares
    /// everything else with `self`.
    pub fn with_actor(&self, actor: &str) -> Result<Store> {
        if actor.len() > MAX_ACTOR_LEN {
            return Err(Error::TooLong {
                field: "actor",
                limit: MAX_ACTOR_LEN,
            });
        }
        if actor.chars().any(char::is_control) {
            return Err(Error::invalid(
                "actor",
                "must not contain control characters",
            ));
        }
        let mut store = self.clone();
        store.actor = (!actor.is_empty()).then(|| actor.into());
        Ok(store)
    }

    /// The actor this handle stamps on its changes.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// Sets how many days of audit events are kept (0 = all); older events are pruned as
    /// part of later writes. Applies to every handle onto this store in this process.
    pub fn set_audit_retention_days(&self, days: u32) {
        self.handle
            .audit_keep_days
            .store(days, std::sync::atomic::Ordering::Relaxed);
    }

    /// Days of audit events kept (0 = all).
    pub fn audit_retention_days(&self) -> u32 {
        self.handle
            .audit_keep_days
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn stamp(&self, now: Timestamp) -> Stamp {
        Stamp {
            actor: self.actor.as_deref().map(str::to_owned),
            at: now.as_millis(),
            keep_days: self.audit_retention_days(),
        }
    }

    /// Records a policy refusal of a change in its own transaction (the refused change
    /// rolled back) and returns `result` unchanged. Recording is best effort: a failure to
    /// record never hides the refusal.
    pub(super) fn note_refusal<T>(
        &self,
        engine: &Engine,
        key_id: Option<&str>,
        owner: Option<&str>,
        result: Result<T>,
    ) -> Result<T> {
        if let Err(error) = &result
            && error.code().family() == ErrorFamily::Policy
        {
            let stamp = self.stamp(engine.now());
            let inner = match error {
                Error::InBatch { error, .. } => error,
                error => error,
            };
            let owner = match inner {
                Error::PolicyMaxActiveKeys { owner, .. } | Error::PolicyLastActiveKey { owner } => {
                    Some(owner.as_str())
                }
                _ => owner,
            };
            let mut event = stamp.event(AuditAction::PolicyRefused, key_id, owner, &[]);
            event.detail = Some(error.code().name().to_owned());
            let _ = engine.write_change(|txn| {
                append(txn, &stamp, vec![event])?;
                Ok(((), vec![]))
            });
        }
        result
    }

    /// A page of audit events, oldest first, matching every filter of `query`.
    pub fn audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        let limit = match query.limit {
            0 => 100,
            n if n > super::MAX_PAGE_SIZE => {
                return Err(Error::invalid(
                    "limit",
                    format!("must be 1..={}", super::MAX_PAGE_SIZE),
                ));
            }
            n => n,
        };
        let engine = self.engine()?;
        engine.read(|txn| {
            let table = match txn.open_table(AUDIT) {
                Ok(t) => t,
                // A store written before the audit log existed, not written since.
                Err(redb::TableError::TableDoesNotExist(_)) => {
                    return Ok(AuditPage {
                        events: vec![],
                        next: None,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let start = query.after.map_or(0, |s| s.saturating_add(1));
            let mut events = Vec::new();
            let mut more = false;
            for item in table.range(start..)? {
                let (k, v) = item?;
                let event = decode(k.value(), v.value())?;
                let keep = query
                    .key_id
                    .as_ref()
                    .is_none_or(|k| event.key_id.as_ref() == Some(k))
                    && query
                        .owner
                        .as_ref()
                        .is_none_or(|o| event.owner.as_ref() == Some(o))
                    && query
                        .actor
                        .as_ref()
                        .is_none_or(|a| event.actor.as_ref() == Some(a))
                    && query.since.is_none_or(|s| event.at >= s)
                    && query.until.is_none_or(|u| event.at < u);
                if !keep {
                    continue;
                }
                if events.len() == limit {
                    more = true;
                    break;
                }
                events.push(event);
            }
            let next = if more {
                events.last().map(|e| e.seq)
            } else {
                None
            };
            Ok(AuditPage { events, next })
        })
    }
}
