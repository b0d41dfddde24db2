//! Management calls against the upstream: each one a PostgreSQL transaction that takes its
//! change sequence from the counter row, writes the key, its change-log entry and its audit
//! event, and notifies the replicas; the local store gets the change once PostgreSQL
//! committed.

use std::time::Duration;

use postgres::{Client, Transaction};
use zeroize::Zeroizing;

use super::{CHANNEL, connect, decode_record, encode_record, pg_error, schema};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::locks::Mutex;
use crate::schema::{CreditTerms, StoredKey};
use crate::store::UpstreamChange;
use crate::{CreatedKey, KeyInfo, KeyUpdate, NewCredits, NewKey, Store};

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
            &stored.info.id,
            Some(&record),
            action,
            &stored.info.owner,
            detail,
        )?;
        self.applied.push(UpstreamChange {
            seq,
            id: stored.info.id.clone(),
            record: Some(stored.clone()),
        });
        Ok(seq)
    }

    fn delete_key(&mut self, info: &KeyInfo) -> Result<u64> {
        let seq = self.next_seq()?;
        self.tx
            .execute("DELETE FROM keyward_keys WHERE id = $1", &[&info.id])
            .map_err(pg_error)?;
        self.tx
            .execute("DELETE FROM keyward_credits WHERE key_id = $1", &[&info.id])
            .map_err(pg_error)?;
        self.log(seq, &info.id, None, "delete", &info.owner, None)?;
        self.applied.push(UpstreamChange {
            seq,
            id: info.id.clone(),
            record: None,
        });
        Ok(seq)
    }

    fn log(
        &mut self,
        seq: u64,
        id: &str,
        record: Option<&str>,
        action: &str,
        owner: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let seq_i = seq as i64;
        self.tx
            .execute(
                "INSERT INTO keyward_changes (seq, key_id, record) VALUES ($1, $2, $3)",
                &[&seq_i, &id, &record],
            )
            .map_err(pg_error)?;
        self.tx
            .execute(
                "INSERT INTO keyward_audit (seq, actor, action, key_id, owner, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&seq_i, &self.actor, &action, &id, &owner, &detail],
            )
            .map_err(pg_error)?;
        // Delivered at commit, only if it commits; the payload is the sequence alone
        // (NOTIFY payloads must stay under 8000 bytes).
        self.tx
            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &seq.to_string()])
            .map_err(pg_error)?;
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

    fn set_credits(&mut self, id: &str, credits: Option<&NewCredits>) -> Result<()> {
        match credits {
            Some(c) => {
                let remaining = c.remaining as i64;
                self.tx
                    .execute(
                        "INSERT INTO keyward_credits (key_id, remaining) VALUES ($1, $2)
                         ON CONFLICT (key_id) DO UPDATE SET remaining = EXCLUDED.remaining",
                        &[&id, &remaining],
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

    /// Updates a key's name, scopes, metadata, expiry or credits (credits: the upstream
    /// balance not yet leased to hosts is set to the new amount).
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
    /// same lifetime length and the upstream credits not yet leased; the old key stays valid
    /// for `grace`. Returns the new key, once.
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
            let credits = match old.info.credits {
                Some(terms) => {
                    let left =
                        c.tx.query_opt(
                            "DELETE FROM keyward_credits WHERE key_id = $1 RETURNING remaining",
                            &[&id],
                        )
                        .map_err(pg_error)?
                        .map_or(0, |row| row.get::<_, i64>(0) as u64);
                    Some(NewCredits {
                        remaining: left,
                        refill: terms.refill,
                        cost: terms.cost,
                    })
                }
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
                // Keys made through the upstream carry no rate limit (not replicated yet).
                rate_limit: None,
            };
            let (mut created, mut stored) = self.store.prepare_replicated_key(&new)?;
            stored.info.rotated_from = Some(old.info.id.clone());
            c.write_key(&mut stored, "rotate", Some(id))?;
            c.set_credits(&stored.info.id, new.credits.as_ref())?;
            let grace_end = now.plus(grace).as_millis();
            old.info.expires_at = Some(old.info.expires_at.map_or(grace_end, |e| e.min(grace_end)));
            old.info.rotated_to = Some(stored.info.id.clone());
            c.write_key(&mut old, "rotate", Some(&stored.info.id))?;
            created.info = stored.info;
            Ok(created)
        })
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
