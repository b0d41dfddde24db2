//! Management calls against the upstream: each one a PostgreSQL transaction that takes its
//! change sequence from the counter row, writes the key (or owner), its change-log entry and
//! its audit event, and notifies the replicas once; the local store gets the change once
//! PostgreSQL committed.
//!
//! What is replicated: keys (with their credit terms and rate limits), owners' controls
//! (suspension, allowed scopes) and the rate limits owners share among their keys, and keys
//! imported from another system (with their wrapped legacy digests). Rate-limit *state* is
//! not: each host enforces a limit of N per period on its own, so across H hosts serving one
//! key up to N × H pass (see docs/scale-out.md). Credits are leased to hosts; refills happen
//! here, once per period for all hosts.

use std::time::Duration;

use postgres::{Client, Transaction};
use zeroize::Zeroizing;

use super::{
    CHANNEL, KIND_KEY, KIND_OWNER, connect, decode_record, encode_owner, encode_record,
    owner_from_columns, pg_error, schema,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::legacy::LegacyScheme;
use crate::legacy::source::LegacyImportOptions;
use crate::locks::Mutex;
use crate::rate_limit::RateLimit;
use crate::schema::{CreditTerms, StoredKey};
use crate::store::{OwnerRecordV1, OwnerState, Subject, UpstreamChange, check_owner_args};
use crate::{
    CreatedKey, KeyInfo, KeyUpdate, LegacyImportReport, NewCredits, NewKey, OwnerInfo, Store,
};

/// Management of a store whose source of truth is a PostgreSQL database shared by several
/// hosts. Every call writes to PostgreSQL first and returns once it committed; the change is
/// then applied to this host's store at once, and to the other hosts' stores by their
/// replicators (`keyward replicate`). Reads (`get`, `list`, `verify`) stay on the local
/// [`Store`].
///
/// When PostgreSQL cannot be reached every call fails with
/// [`Error::UpstreamUnavailable`]: nothing was changed — except when the connection broke
/// during the commit itself, which PostgreSQL cannot report; the replicator then brings the
/// change if it was made. Safe to share between threads (calls are serialised on one
/// connection).
pub struct Upstream {
    store: Store,
    url: Zeroizing<String>,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// One management transaction: the changes it made, for the local store after the commit.
struct Change<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    actor: Option<&'a str>,
    applied: Vec<UpstreamChange>,
}

impl Change<'_, '_> {
    /// Takes the next change sequence (the counter row stays locked until the commit, so
    /// changes commit in sequence order).
    fn next_seq(&mut self) -> Result<u64> {
        let row = self
            .tx
            .query_one(
                "UPDATE keyward_counter SET seq = seq + 1 RETURNING seq",
                &[],
            )
            .map_err(pg_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// Writes a key's new state with its change-log entry and audit event. A key with serial
    /// 0 is new: it gets the change sequence as its serial.
    fn write_key(
        &mut self,
        stored: &mut StoredKey,
        action: &str,
        detail: Option<&str>,
    ) -> Result<u64> {
        let seq = self.next_seq()?;
        if stored.info.serial == 0 {
            stored.info.serial = seq;
        }
        let record = encode_record(stored);
        let (seq_i, serial) = (seq as i64, stored.info.serial as i64);
        self.tx
            .execute(
                "INSERT INTO keyward_keys (id, owner, serial, record, updated_seq)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, serial = EXCLUDED.serial,
                     record = EXCLUDED.record, updated_seq = EXCLUDED.updated_seq",
                &[
                    &stored.info.id,
                    &stored.info.owner,
                    &serial,
                    &record,
                    &seq_i,
                ],
            )
            .map_err(pg_error)?;
        self.log(
            seq,
            KIND_KEY,
            &stored.info.id,
            Some(&record),
            action,
            &stored.info.owner,
            detail,
        )?;
        self.applied.push(UpstreamChange {
            seq,
            id: stored.info.id.clone(),
            subject: Subject::Key(Some(stored.clone())),
        });
        Ok(seq)
    }

    /// Locks and reads an owner's state (under the owner's advisory lock until the commit).
    fn load_owner(&mut self, owner: &str) -> Result<OwnerState> {
        self.lock_owner(owner)?;
        match self
            .tx
            .query_opt(
                "SELECT record, rate_limit FROM keyward_owners WHERE owner = $1",
                &[&owner],
            )
            .map_err(pg_error)?
        {
            Some(row) => owner_from_columns(owner, row.get(0), row.get(1)),
            None => Ok(OwnerState::default()),
        }
    }

    /// Writes an owner's new state with its change-log entry and audit event.
    fn write_owner(
        &mut self,
        owner: &str,
        state: &OwnerState,
        action: &str,
        detail: Option<&str>,
    ) -> Result<u64> {
        let seq = self.next_seq()?;
        let seq_i = seq as i64;
        let record = state
            .controls
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("owner records serialize"));
        let rate_limit = state
            .rate_limit
            .as_ref()
            .map(|l| serde_json::to_string(l).expect("rate limits serialize"));
        self.tx
            .execute(
                "INSERT INTO keyward_owners (owner, record, rate_limit, updated_seq)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (owner) DO UPDATE SET record = EXCLUDED.record,
                     rate_limit = EXCLUDED.rate_limit, updated_seq = EXCLUDED.updated_seq",
                &[&owner, &record, &rate_limit, &seq_i],
            )
            .map_err(pg_error)?;
        let text = encode_owner(state);
        self.log(seq, KIND_OWNER, owner, Some(&text), action, owner, detail)?;
        self.applied.push(UpstreamChange {
            seq,
            id: owner.to_owned(),
            subject: Subject::Owner(state.clone()),
        });
        Ok(seq)
    }

    /// Keys of `owner` upstream (any state).
    fn owner_key_count(&mut self, owner: &str) -> Result<u64> {
        let count: i64 = self
            .tx
            .query_one(
                "SELECT count(*) FROM keyward_keys WHERE owner = $1",
                &[&owner],
            )
            .map_err(pg_error)?
            .get(0);
        Ok(count as u64)
    }

    fn delete_key(&mut self, info: &KeyInfo) -> Result<u64> {
        let seq = self.next_seq()?;
        self.tx
            .execute("DELETE FROM keyward_keys WHERE id = $1", &[&info.id])
            .map_err(pg_error)?;
        self.tx
            .execute("DELETE FROM keyward_credits WHERE key_id = $1", &[&info.id])
            .map_err(pg_error)?;
        self.log(seq, KIND_KEY, &info.id, None, "delete", &info.owner, None)?;
        self.applied.push(UpstreamChange {
            seq,
            id: info.id.clone(),
            subject: Subject::Key(None),
        });
        Ok(seq)
    }

    #[allow(clippy::too_many_arguments)]
    fn log(
        &mut self,
        seq: u64,
        kind: i16,
        id: &str,
        record: Option<&str>,
        action: &str,
        owner: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let seq_i = seq as i64;
        self.tx
            .execute(
                "INSERT INTO keyward_changes (seq, kind, key_id, record) VALUES ($1, $2, $3, $4)",
                &[&seq_i, &kind, &id, &record],
            )
            .map_err(pg_error)?;
        self.tx
            .execute(
                "INSERT INTO keyward_audit (seq, actor, action, key_id, owner, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &seq_i,
                    &self.actor,
                    &action,
                    &(kind == KIND_KEY).then_some(id),
                    &owner,
                    &detail,
                ],
            )
            .map_err(pg_error)?;
        Ok(())
    }

    /// One notification for the whole transaction (delivered at commit, only if it commits;
    /// the payload is the last sequence alone: NOTIFY payloads must stay under 8000 bytes,
    /// and each notifying commit takes the notification queue's lock, so a bulk import
    /// notifies once, not per key).
    fn notify(&mut self) -> Result<()> {
        if let Some(last) = self.applied.last() {
            self.tx
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&CHANNEL, &last.seq.to_string()],
                )
                .map_err(pg_error)?;
        }
        Ok(())
    }

    /// Locks and reads a key.
    fn load(&mut self, id: &str) -> Result<StoredKey> {
        let row = self
            .tx
            .query_opt(
                "SELECT record FROM keyward_keys WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .map_err(pg_error)?
            .ok_or_else(|| crate::store::not_found(id))?;
        decode_record(id, row.get(0))
    }

    /// Serialises the policy checks of one owner across hosts (until the commit).
    fn lock_owner(&mut self, owner: &str) -> Result<()> {
        self.tx
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
                &[&owner],
            )
            .map_err(pg_error)?;
        Ok(())
    }

    /// The owner's active keys at `now`, other than `except`.
    fn active_keys(&mut self, owner: &str, now: Timestamp, except: Option<&str>) -> Result<usize> {
        let rows = self
            .tx
            .query(
                "SELECT id, record FROM keyward_keys WHERE owner = $1",
                &[&owner],
            )
            .map_err(pg_error)?;
        let mut active = 0;
        for row in rows {
            let id: &str = row.get(0);
            if Some(id) == except {
                continue;
            }
            if decode_record(id, row.get(1))?
                .info
                .is_active_at(now.as_millis())
            {
                active += 1;
            }
        }
        Ok(active)
    }

    /// Sets a key's upstream balance and refill terms. Its refill period is left unknown
    /// (NULL): the first lease adopts the leasing host's period without a refill, so the
    /// balance given is the current period's.
    fn set_credits(&mut self, id: &str, credits: Option<&NewCredits>) -> Result<()> {
        match credits {
            Some(c) => {
                let remaining = c.remaining as i64;
                let amount = c.refill.map(|r| r.amount as i64);
                let interval = c.refill.map(|r| r.interval.code() as i16);
                self.tx
                    .execute(
                        "INSERT INTO keyward_credits (key_id, remaining, refill_amount, refill_interval, period)
                         VALUES ($1, $2, $3, $4, NULL)
                         ON CONFLICT (key_id) DO UPDATE SET remaining = EXCLUDED.remaining,
                             refill_amount = EXCLUDED.refill_amount,
                             refill_interval = EXCLUDED.refill_interval, period = NULL",
                        &[&id, &remaining, &amount, &interval],
                    )
                    .map_err(pg_error)?;
            }
            None => {
                self.tx
                    .execute("DELETE FROM keyward_credits WHERE key_id = $1", &[&id])
                    .map_err(pg_error)?;
            }
        }
        Ok(())
    }
}

impl Upstream {
    /// Connects to the PostgreSQL at `url` as the source of truth of `store`: creates or
    /// migrates keyward's schema, records this store's pepper check and key prefix on first
    /// use, and refuses a store whose pepper or prefix differ from the ones recorded (every
    /// host must digest secrets with the same pepper). Marks `store` as a replica: its own
    /// management calls (`Store::create`, `Store::revoke`…) are refused from then on with
    /// `UPSTREAM_REQUIRED`, in every process and language, since a change made to one host
    /// alone would never reach the others.
    pub fn connect(store: &Store, url: &str) -> Result<Upstream> {
        let mut client = connect(url)?;
        schema::migrate(&mut client)?;
        check_identity(&mut client, store)?;
        store.mark_replica()?;
        Ok(Upstream {
            store: store.clone(),
            url: Zeroizing::new(url.to_owned()),
            client: Mutex::new(Some(client)),
        })
    }

    /// The local store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs one management transaction, then applies its changes to the local store.
    fn change<T>(&self, work: impl FnOnce(&mut Change<'_, '_>) -> Result<T>) -> Result<T> {
        let mut guard = self.client.lock();
        // A connection broken since the last call (a server restart) is replaced first.
        let healthy = guard
            .as_mut()
            .is_some_and(|c| c.is_valid(Duration::from_secs(2)).is_ok());
        if !healthy {
            *guard = None;
            *guard = Some(connect(&self.url)?);
        }
        let client = guard.as_mut().expect("connected above");
        let result = (|| -> Result<(T, Vec<UpstreamChange>)> {
            let mut tx = client.transaction().map_err(pg_error)?;
            let mut change = Change {
                tx: &mut tx,
                actor: self.store.actor(),
                applied: Vec::new(),
            };
            let value = work(&mut change)?;
            change.notify()?;
            let applied = std::mem::take(&mut change.applied);
            tx.commit().map_err(pg_error)?;
            Ok((value, applied))
        })();
        if result.is_err() && client.is_closed() {
            *guard = None;
        }
        drop(guard);
        let (value, applied) = result?;
        // PostgreSQL committed: the change is made. Show it on this host at once; should that
        // fail, the replicator brings it (the call still succeeded).
        let _ = self.store.apply_upstream(&applied, None);
        Ok(value)
    }

    /// Creates a key. The full key is in the result and nowhere else.
    pub fn create(&self, new: NewKey) -> Result<CreatedKey> {
        let (mut created, mut stored) = self.store.prepare_replicated_key(&new)?;
        let policies = self.store.policies()?;
        let now = self.store.now()?;
        self.change(|c| {
            if let Some(limit) = policies.max_active_keys_per_owner {
                c.lock_owner(&new.owner)?;
                if c.active_keys(&new.owner, now, None)? >= limit as usize {
                    return Err(Error::PolicyMaxActiveKeys {
                        owner: new.owner.clone(),
                        limit,
                    });
                }
            }
            c.write_key(&mut stored, "create", None)?;
            c.set_credits(&stored.info.id, new.credits.as_ref())?;
            Ok(())
        })?;
        created.info = stored.info;
        Ok(created)
    }

    /// Updates a key's name, scopes, metadata, expiry, credits (the upstream balance not yet
    /// leased to hosts is set to the new amount) or rate limit (each host keeps its own
    /// state of it, clamped to the new burst window).
    pub fn update(&self, id: &str, update: KeyUpdate) -> Result<KeyInfo> {
        let name = update.name.clone();
        if let Some(name) = &name
            && name.len() > crate::MAX_NAME_LEN
        {
            return Err(Error::TooLong {
                field: "name",
                limit: crate::MAX_NAME_LEN,
            });
        }
        let scopes = match &update.scopes {
            Some(s) => Some(crate::store::normalize_scopes_for_upstream(s)?),
            None => None,
        };
        if update
            .metadata
            .as_ref()
            .is_some_and(|m| m.len() > crate::MAX_METADATA_LEN)
        {
            return Err(Error::TooLong {
                field: "metadata",
                limit: crate::MAX_METADATA_LEN,
            });
        }
        if let Some(Some(limit)) = &update.rate_limit {
            limit.check()?;
        }
        let policies = self.store.policies()?;
        let now = self.store.now()?;
        if let (Some(max), Some(expiry)) = (policies.max_lifetime, update.expires_at) {
            match expiry {
                Some(e) if e <= now.plus(max) => {}
                _ => {
                    return Err(Error::PolicyMaxLifetime {
                        max_lifetime_secs: max.as_secs(),
                    });
                }
            }
        }
        self.change(|c| {
            let mut stored = c.load(id)?;
            let mut changed = Vec::new();
            if let Some(name) = update.name {
                stored.info.name = name;
                changed.push("name");
            }
            if let Some(scopes) = scopes {
                stored.info.scopes = scopes;
                changed.push("scopes");
            }
            if let Some(metadata) = update.metadata {
                stored.info.metadata = metadata;
                changed.push("metadata");
            }
            if let Some(expiry) = update.expires_at {
                stored.info.expires_at = expiry.map(Timestamp::as_millis);
                changed.push("expires_at");
            }
            if let Some(credits) = update.credits {
                stored.info.credits = credits.map(|c| CreditTerms {
                    refill: c.refill,
                    cost: c.cost,
                });
                c.set_credits(id, credits.as_ref())?;
                changed.push("credits");
            }
            if let Some(limit) = update.rate_limit {
                stored.info.rate_limit = limit;
                changed.push("rate_limit");
            }
            c.write_key(&mut stored, "update", Some(&changed.join(",")))?;
            Ok(stored.info)
        })
    }

    /// Revokes a key on every host. Revoking a revoked key changes nothing.
    pub fn revoke(&self, id: &str, reason: Option<&str>) -> Result<KeyInfo> {
        if let Some(reason) = reason
            && reason.len() > crate::MAX_REASON_LEN
        {
            return Err(Error::TooLong {
                field: "reason",
                limit: crate::MAX_REASON_LEN,
            });
        }
        let policies = self.store.policies()?;
        let now = self.store.now()?;
        self.change(|c| {
            let mut stored = c.load(id)?;
            if stored.info.revoked_at.is_some() {
                return Ok(stored.info);
            }
            if policies.keep_last_key && stored.info.is_active_at(now.as_millis()) {
                c.lock_owner(&stored.info.owner)?;
                if c.active_keys(&stored.info.owner, now, Some(id))? == 0 {
                    return Err(Error::PolicyLastActiveKey {
                        owner: stored.info.owner.clone(),
                    });
                }
            }
            stored.info.revoked_at = Some(now.as_millis());
            stored.info.revoke_reason = reason.map(str::to_owned);
            c.write_key(&mut stored, "revoke", reason)?;
            Ok(stored.info)
        })
    }

    /// Deletes a key on every host (its upstream usage rows stay, for billing).
    pub fn delete(&self, id: &str) -> Result<()> {
        let policies = self.store.policies()?;
        let now = self.store.now()?;
        self.change(|c| {
            let stored = c.load(id)?;
            if policies.keep_last_key && stored.info.is_active_at(now.as_millis()) {
                c.lock_owner(&stored.info.owner)?;
                if c.active_keys(&stored.info.owner, now, Some(id))? == 0 {
                    return Err(Error::PolicyLastActiveKey {
                        owner: stored.info.owner.clone(),
                    });
                }
            }
            c.delete_key(&stored.info)?;
            Ok(())
        })
    }

    /// Replaces a key with a new one that inherits owner, name, scopes, env, metadata, the
    /// same lifetime length, the rate limit, and the credits: those not yet leased move
    /// upstream at once, those leased to hosts move on each host when its replicator (or
    /// this call, for this host) applies the rotation. The old key stays valid for `grace`
    /// (without credits once moved). Returns the new key, once.
    pub fn rotate(&self, id: &str, grace: Duration) -> Result<CreatedKey> {
        let policies = self.store.policies()?;
        let now = self.store.now()?;
        self.change(|c| {
            let mut old = c.load(id)?;
            if old.info.revoked_at.is_some() {
                return Err(Error::invalid("key", "a revoked key cannot be rotated"));
            }
            if let Some(successor) = &old.info.rotated_to {
                return Err(Error::invalid(
                    "key",
                    format!("this key was already rotated to {successor}; rotate that key instead"),
                ));
            }
            let lifetime = old.info.expires_at.map(|e| e - old.info.created_at);
            let mut expires_at =
                lifetime.map(|l| Timestamp::from_millis(now.as_millis().saturating_add(l)));
            if let Some(max) = policies.max_lifetime {
                let cap = now.plus(max);
                expires_at = Some(expires_at.map_or(cap, |e| e.min(cap)));
            }
            let credits = old.info.credits.map(|terms| NewCredits {
                // Set below: the old key's row moves to the new key as it is.
                remaining: 0,
                refill: terms.refill,
                cost: terms.cost,
            });
            let new = NewKey {
                owner: old.info.owner.clone(),
                name: old.info.name.clone(),
                scopes: old.info.scopes.clone(),
                env: old.info.env.clone(),
                expires_at,
                metadata: old.info.metadata.clone(),
                credits,
                rate_limit: old.info.rate_limit,
            };
            let (mut created, mut stored) = self.store.prepare_replicated_key(&new)?;
            stored.info.rotated_from = Some(old.info.id.clone());
            c.write_key(&mut stored, "rotate", Some(id))?;
            if old.info.credits.is_some() {
                // The credits not yet leased move with their refill terms and period; the
                // leases move too: each host moves what it holds of the old key to the new
                // one when it applies this change, and renews the lease under the new id.
                let moved =
                    c.tx.execute(
                        "UPDATE keyward_credits SET key_id = $2 WHERE key_id = $1",
                        &[&id, &stored.info.id],
                    )
                    .map_err(pg_error)?;
                if moved == 0 {
                    c.set_credits(&stored.info.id, new.credits.as_ref())?;
                }
                c.tx.execute(
                    "UPDATE keyward_credit_leases SET key_id = $2 WHERE key_id = $1",
                    &[&id, &stored.info.id],
                )
                .map_err(pg_error)?;
            }
            let grace_end = now.plus(grace).as_millis();
            old.info.expires_at = Some(old.info.expires_at.map_or(grace_end, |e| e.min(grace_end)));
            old.info.rotated_to = Some(stored.info.id.clone());
            c.write_key(&mut old, "rotate", Some(&stored.info.id))?;
            created.info = stored.info;
            Ok(created)
        })
    }

    /// Sets (`Some`) or removes (`None`) a key's own rate limit on every host (as
    /// [`Upstream::update`] with only `rate_limit`). Each host enforces it on its own: a
    /// limit of N per period lets up to N × hosts through across the hosts serving the key.
    pub fn set_rate_limit(&self, id: &str, limit: Option<RateLimit>) -> Result<KeyInfo> {
        self.update(
            id,
            KeyUpdate {
                rate_limit: Some(limit),
                ..KeyUpdate::default()
            },
        )
    }

    /// Suspends an owner on every host (as [`Store::suspend_owner`]): its keys are refused
    /// with `OWNER_SUSPENDED` from each host's next verify after the change reaches it.
    pub fn suspend_owner(&self, owner: &str, reason: Option<&str>) -> Result<OwnerInfo> {
        check_owner_args::<&str>(owner, reason, None)?;
        let now = self.store.now()?.as_millis();
        self.change_owner(owner, "owner_suspend", false, |state| {
            let record = state
                .controls
                .get_or_insert_with(|| OwnerRecordV1::new(now));
            let changed = record.suspend(now, reason);
            Ok(touched(record, changed, now))
        })
    }

    /// Resumes a suspended owner on every host (as [`Store::resume_owner`]).
    /// `OWNER_NOT_FOUND` if the owner has neither a record nor keys.
    pub fn resume_owner(&self, owner: &str) -> Result<OwnerInfo> {
        check_owner_args::<&str>(owner, None, None)?;
        let now = self.store.now()?.as_millis();
        self.change_owner(owner, "owner_resume", true, |state| {
            let record = state
                .controls
                .get_or_insert_with(|| OwnerRecordV1::new(now));
            let changed = record.resume();
            Ok(touched(record, changed, now))
        })
    }

    /// Sets the scopes an owner's keys may use on every host (`None`: unrestricted; as
    /// [`Store::set_owner_scopes`]).
    pub fn set_owner_scopes<S: AsRef<str>>(
        &self,
        owner: &str,
        scopes: Option<&[S]>,
    ) -> Result<OwnerInfo> {
        let scopes = check_owner_args(owner, None, scopes)?;
        let now = self.store.now()?.as_millis();
        self.change_owner(owner, "owner_scopes", false, |state| {
            let record = state
                .controls
                .get_or_insert_with(|| OwnerRecordV1::new(now));
            let changed = record.set_scopes(&scopes);
            Ok(touched(record, changed, now))
        })
    }

    /// Sets (`Some`) or removes (`None`) the rate limit `owner` shares among its keys, on
    /// every host (as [`Store::set_owner_rate_limit`]). The limit's state stays per host: a
    /// limit of N per period lets up to N × hosts through across the hosts.
    pub fn set_owner_rate_limit(&self, owner: &str, limit: Option<RateLimit>) -> Result<()> {
        check_owner_args::<&str>(owner, None, None)?;
        if let Some(limit) = &limit {
            limit.check()?;
        }
        self.change_owner(owner, "owner_rate_limit", false, |state| {
            let changed = state.rate_limit != limit;
            state.rate_limit = limit;
            Ok(changed)
        })?;
        Ok(())
    }

    /// Imports another system's keys into the upstream (as [`Store::import_legacy`]): every
    /// host gets them as records holding the wrapped legacy digest (keyed with the pepper
    /// every host shares; never the raw hash), and accepts them as they are. All or nothing;
    /// keys already upstream are left as they are. Each imported key takes one change
    /// sequence; the transaction notifies the replicas once. The source's last-use times are
    /// not carried (usage is counted per host).
    pub fn import_legacy(
        &self,
        scheme: LegacyScheme,
        data: &[u8],
        options: &LegacyImportOptions,
    ) -> Result<LegacyImportReport> {
        let plan = self.store.legacy_import_plan(scheme, data, options)?;
        let now = self.store.now()?.as_millis();
        let work = |c: &mut Change<'_, '_>| -> Result<LegacyImportReport> {
            let mut report = crate::store::empty_report(scheme, options.dry_run, plan.len());
            for (row, stored) in &plan {
                let present =
                    c.tx.query_opt(
                        "SELECT 1 FROM keyward_keys WHERE id = $1",
                        &[&stored.info.id],
                    )
                    .map_err(pg_error)?
                    .is_some();
                crate::store::tally(&mut report, scheme, row, present, now);
                if present || row.deleted || options.dry_run {
                    continue;
                }
                let mut stored = stored.clone();
                c.write_key(&mut stored, "import", Some(scheme.name()))?;
            }
            Ok(report)
        };
        if options.dry_run {
            // Reads only: rolled back, nothing to apply.
            return self.read_only(work);
        }
        self.change(work)
    }

    /// Runs one owner change: reads the owner's state under its lock, lets `edit` change it
    /// (returning whether it did), and writes it with its log entry; returns the owner's
    /// controls with its key count upstream. With `must_exist`, `OWNER_NOT_FOUND` for an
    /// owner with neither a state nor keys.
    fn change_owner(
        &self,
        owner: &str,
        action: &str,
        must_exist: bool,
        edit: impl FnOnce(&mut OwnerState) -> Result<bool>,
    ) -> Result<OwnerInfo> {
        self.change(|c| {
            let mut state = c.load_owner(owner)?;
            let keys = c.owner_key_count(owner)?;
            if must_exist && state.controls.is_none() && keys == 0 {
                return Err(Error::OwnerNotFound {
                    owner: owner.to_owned(),
                });
            }
            let before = state.clone();
            if edit(&mut state)? {
                c.write_owner(owner, &state, action, None)?;
                Ok(OwnerRecordV1::info(owner, state.controls.as_ref(), keys))
            } else {
                Ok(OwnerRecordV1::info(owner, before.controls.as_ref(), keys))
            }
        })
    }

    /// Runs `work` in a transaction that is rolled back (a dry run: nothing is applied).
    fn read_only<T>(&self, work: impl FnOnce(&mut Change<'_, '_>) -> Result<T>) -> Result<T> {
        let mut guard = self.client.lock();
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(connect(&self.url)?);
        }
        let client = guard.as_mut().expect("connected above");
        let mut tx = client.transaction().map_err(pg_error)?;
        let mut change = Change {
            tx: &mut tx,
            actor: None,
            applied: Vec::new(),
        };
        let value = work(&mut change)?;
        tx.rollback().map_err(pg_error)?;
        Ok(value)
    }

    /// Deletes the change-log entries up to and including `seq` (default: all but the last
    /// `keep`). A replica whose cursor is older resynchronises from a snapshot. Returns the
    /// sequence pruned through.
    pub fn prune_changes(&self, keep: u64) -> Result<u64> {
        let mut guard = self.client.lock();
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(connect(&self.url)?);
        }
        let client = guard.as_mut().expect("connected above");
        let mut tx = client.transaction().map_err(pg_error)?;
        let seq: i64 = tx
            .query_one("SELECT seq FROM keyward_counter FOR UPDATE", &[])
            .map_err(pg_error)?
            .get(0);
        let through = (seq - keep.min(i64::MAX as u64) as i64).max(0);
        tx.execute("DELETE FROM keyward_changes WHERE seq <= $1", &[&through])
            .map_err(pg_error)?;
        tx.execute(
            "UPDATE keyward_counter SET pruned_through = GREATEST(pruned_through, $1)",
            &[&through],
        )
        .map_err(pg_error)?;
        tx.commit().map_err(pg_error)?;
        Ok(through as u64)
    }

    /// Draws a new epoch: every replica resynchronises from a snapshot on its next catch-up.
    /// Run it after restoring the upstream from a backup (the restored database may hand out
    /// sequence numbers replicas already passed).
    pub fn new_epoch(&self) -> Result<()> {
        let mut guard = self.client.lock();
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(connect(&self.url)?);
        }
        let client = guard.as_mut().expect("connected above");
        client
            .execute(
                "UPDATE keyward_meta SET value = md5(random()::text || clock_timestamp()::text)
                 WHERE name = 'epoch'",
                &[],
            )
            .map_err(pg_error)?;
        Ok(())
    }

    /// The last change sequence committed upstream.
    pub fn head(&self) -> Result<u64> {
        let mut guard = self.client.lock();
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(connect(&self.url)?);
        }
        let client = guard.as_mut().expect("connected above");
        let seq: i64 = client
            .query_one("SELECT seq FROM keyward_counter", &[])
            .map_err(pg_error)?
            .get(0);
        Ok(seq as u64)
    }
}

// Used by the upstream link of a store opened with an upstream URL (`super::link`): the
// link keeps the connection between calls and lends it to a short-lived `Upstream` per call
// (an `Upstream` holds its store, and a store that held its `Upstream` would never close).
impl Upstream {
    /// An upstream over a connection `connect` made earlier (schema and identity checked).
    pub(crate) fn from_client(store: &Store, url: &str, client: Client) -> Upstream {
        Upstream {
            store: store.clone(),
            url: Zeroizing::new(url.to_owned()),
            client: Mutex::new(Some(client)),
        }
    }

    /// The connection, for the next call (`None` when it broke and was not replaced).
    pub(crate) fn into_client(self) -> Option<Client> {
        self.client.into_inner()
    }

    /// Creates many keys in one upstream transaction (all or none), recorded with `action`
    /// (`"create"` or `"import"`). The full keys are in the result and nowhere else.
    pub fn create_many(&self, batch: Vec<NewKey>) -> Result<Vec<CreatedKey>> {
        self.create_many_as(batch, "create")
    }

    pub(crate) fn create_many_as(
        &self,
        batch: Vec<NewKey>,
        action: &str,
    ) -> Result<Vec<CreatedKey>> {
        let mut prepared = Vec::with_capacity(batch.len());
        for (index, new) in batch.iter().enumerate() {
            prepared.push(
                self.store
                    .prepare_replicated_key(new)
                    .map_err(|e| e.in_batch(index))?,
            );
        }
        let policies = self.store.policies()?;
        let now = self.store.now()?;
        self.change(|c| {
            for ((_, stored), new) in prepared.iter_mut().zip(&batch) {
                if let Some(limit) = policies.max_active_keys_per_owner {
                    c.lock_owner(&new.owner)?;
                    if c.active_keys(&new.owner, now, None)? >= limit as usize {
                        return Err(Error::PolicyMaxActiveKeys {
                            owner: new.owner.clone(),
                            limit,
                        });
                    }
                }
                c.write_key(stored, action, None)?;
                c.set_credits(&stored.info.id, new.credits.as_ref())?;
            }
            Ok(())
        })?;
        Ok(prepared
            .into_iter()
            .map(|(mut created, stored)| {
                created.info = stored.info;
                created
            })
            .collect())
    }
}

/// Records the pepper check and prefix on first use; refuses a store that differs.
pub(super) fn check_identity(client: &mut Client, store: &Store) -> Result<()> {
    let check = store.pepper_check_hex()?;
    let prefix = store.key_prefix()?;
    for (name, value) in [("pepper_check", &check), ("prefix", &prefix)] {
        client
            .execute(
                "INSERT INTO keyward_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, value],
            )
            .map_err(pg_error)?;
        let recorded: String = client
            .query_one("SELECT value FROM keyward_meta WHERE name = $1", &[&name])
            .map_err(pg_error)?
            .get(0);
        if &recorded != value {
            return Err(match name {
                "pepper_check" => Error::WrongPepper,
                _ => Error::ConfigMismatch {
                    detail: format!(
                        "the upstream's keys have prefix {recorded:?}, this store {prefix:?}"
                    ),
                },
            });
        }
    }
    Ok(())
}

/// Whether an owner edit changed anything, stamping the record when it did.
fn touched(record: &mut OwnerRecordV1, changed: Vec<&'static str>, now: i64) -> bool {
    if changed.is_empty() {
        return false;
    }
    record.touch(now);
    true
}
