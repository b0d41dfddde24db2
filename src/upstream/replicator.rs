//! The replicator of one host: follows the upstream change log into the local store, pushes
//! the host's usage and leases credits for it.
//!
//! Order on every (re)connect: `LISTEN` first (committed at once: the client is in autocommit
//! mode), then catch up with `seq > cursor`, so a change committed between the two is found by
//! the query or announced by a notification, never missed. Then wait for a notification or the
//! poll interval, whichever comes first, and catch up again. A notification is only a wake-up
//! (PostgreSQL never replays one to a listener that was disconnected); the log is the truth.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel};
use zeroize::Zeroizing;

use super::manage::check_identity;
use super::status::ReplicaStatus;
use super::{
    CHANNEL, KIND_KEY, KIND_OWNER, connect, decode_owner, decode_record, owner_from_columns,
    pg_error, schema,
};
use crate::error::{Error, Result};
use crate::locks::Mutex;
use crate::store::{Snapshot, Subject, UpstreamChange};
use crate::{Store, SystemClock, clock::Clock};

/// Most change-log entries applied per local transaction.
const BATCH: i64 = 5_000;

/// How a [`Replicator`] behaves.
#[derive(Debug, Clone)]
pub struct ReplicatorOptions {
    /// This host's name upstream (usage rows and credit leases are per host). Default: the
    /// machine's host name.
    pub host: String,
    /// Longest wait between two catch-ups when no notification arrives (default 1 s).
    pub poll_interval: Duration,
    /// Wait before reconnecting after a failure (default 500 ms).
    pub reconnect_delay: Duration,
    /// How often usage is pushed upstream (default 5 s).
    pub usage_interval: Duration,
    /// Credits leased per key per request (default 100): a host tops up when it holds fewer
    /// than half of that.
    pub lease_batch: u64,
    /// A lease not renewed for this long expires (default 60 s): its holder is taken for dead
    /// and the credits it held are written off as forfeited, never handed out again (it may
    /// have spent them: credits are never over-spent).
    pub lease_ttl: Duration,
}

impl Default for ReplicatorOptions {
    fn default() -> Self {
        ReplicatorOptions {
            host: host_name(),
            poll_interval: Duration::from_secs(1),
            reconnect_delay: Duration::from_millis(500),
            usage_interval: Duration::from_secs(5),
            lease_batch: 100,
            lease_ttl: Duration::from_secs(60),
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Change-log entries applied.
    pub applied: usize,
    /// Whether the replica resynchronised from a snapshot.
    pub resynced: bool,
    /// The cursor after it.
    pub cursor: u64,
    /// Usage rows pushed (per key and day).
    pub usage_rows: usize,
    /// Credits leased to this host.
    pub credits_leased: u64,
}

/// The replicator of one host: one per host (e.g. the `keyward replicate` daemon).
pub struct Replicator {
    store: Store,
    url: Zeroizing<String>,
    options: ReplicatorOptions,
    state: Mutex<State>,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("store", &self.store)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

struct State {
    status: ReplicaStatus,
    last_usage_push: Option<Instant>,
    last_lease_check: Option<Instant>,
    /// Whether every day's usage was pushed once by this process (later pushes send the
    /// last two days only).
    pushed_all_days: bool,
}

impl Replicator {
    /// A replicator of `store` following the upstream at `url` (nothing is done until
    /// [`Replicator::run`] or [`Replicator::sync_once`]).
    pub fn new(store: &Store, url: &str, options: ReplicatorOptions) -> Replicator {
        let status = ReplicaStatus {
            host: options.host.clone(),
            pid: std::process::id(),
            cursor: 0,
            synced_at: 0,
            updated_at: 0,
            connected: false,
            last_error: None,
            resyncs: 0,
        };
        Replicator {
            store: store.clone(),
            url: Zeroizing::new(url.to_owned()),
            options,
            state: Mutex::new(State {
                status,
                last_usage_push: None,
                last_lease_check: None,
                pushed_all_days: false,
            }),
        }
    }

    /// The last status (also in the status file beside the store).
    pub fn status(&self) -> ReplicaStatus {
        self.state.lock().status.clone()
    }

    /// Connects, catches up once, pushes usage and tops up credit leases, then disconnects.
    pub fn sync_once(&self) -> Result<SyncReport> {
        let result = self.connect().and_then(|mut client| {
            let mut report = self.catch_up(&mut client)?;
            self.housekeeping(&mut client, true, &mut report)?;
            Ok(report)
        });
        self.note(&result);
        result
    }

    /// Replicates until `stop` is set: reconnects after every failure (after
    /// `reconnect_delay`), catches up on every notification and poll. Returns when stopped.
    pub fn run(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let result = self
                .connect()
                .and_then(|mut client| self.session(&mut client, stop));
            self.note(&result);
            if result.is_err() {
                self.set_connected(false);
                sleep_unless(stop, self.options.reconnect_delay);
            }
        }
    }

    fn connect(&self) -> Result<Client> {
        let mut client = connect(&self.url)?;
        schema::check(&mut client)?;
        check_identity(&mut client, &self.store)?;
        // Autocommit: the LISTEN is in effect when this returns, before the catch-up query.
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .map_err(pg_error)?;
        self.set_connected(true);
        Ok(client)
    }

    fn session(&self, client: &mut Client, stop: &AtomicBool) -> Result<()> {
        let mut report = self.catch_up(client)?;
        self.housekeeping(client, false, &mut report)?;
        self.note(&Ok(()));
        while !stop.load(Ordering::Relaxed) {
            {
                let mut notes = client.notifications();
                let woken = notes
                    .timeout_iter(self.options.poll_interval)
                    .next()
                    .map_err(pg_error)?;
                if woken.is_some() {
                    // Drain what else arrived: one catch-up serves them all.
                    while notes.iter().next().map_err(pg_error)?.is_some() {}
                }
            }
            if client.is_closed() {
                return Err(Error::UpstreamUnavailable {
                    detail: "the connection to PostgreSQL closed".into(),
                });
            }
            let mut report = self.catch_up(client)?;
            self.housekeeping(client, false, &mut report)?;
            self.note(&Ok(()));
        }
        Ok(())
    }

    /// Applies every change after the local cursor; resynchronises when the log no longer
    /// holds them, or when the cursor belongs to another epoch of the upstream (a first
    /// sync, a restored backup, another database).
    fn catch_up(&self, client: &mut Client) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut epoch: String = client
            .query_one("SELECT value FROM keyward_meta WHERE name = 'epoch'", &[])
            .map_err(pg_error)?
            .get(0);
        loop {
            let started = SystemClock.now().as_millis();
            if self.store.upstream_epoch()?.as_deref() != Some(epoch.as_str()) {
                epoch = self.resync(client)?;
                report.resynced = true;
                continue;
            }
            let cursor = self.store.upstream_cursor()?;
            let row = client
                .query_one("SELECT seq, pruned_through FROM keyward_counter", &[])
                .map_err(pg_error)?;
            let (head, pruned): (i64, i64) = (row.get(0), row.get(1));
            if cursor < pruned as u64 || cursor > head as u64 {
                epoch = self.resync(client)?;
                report.resynced = true;
                continue;
            }
            let rows = client
                .query(
                    "SELECT seq, kind, key_id, record FROM keyward_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&(cursor as i64), &BATCH],
                )
                .map_err(pg_error)?;
            let mut changes = Vec::with_capacity(rows.len());
            for (expected, row) in (cursor + 1..).zip(&rows) {
                let seq = row.get::<_, i64>(0) as u64;
                if seq != expected {
                    // Pruned between the two queries: the log no longer holds `expected`.
                    break;
                }
                let id: String = row.get(2);
                let text = row.get::<_, Option<&str>>(3);
                let subject = match (row.get::<_, i16>(1), text) {
                    (KIND_KEY, Some(text)) => Subject::Key(Some(decode_record(&id, text)?)),
                    (KIND_KEY, None) => Subject::Key(None),
                    (KIND_OWNER, Some(text)) => Subject::Owner(decode_owner(&id, text)?),
                    (kind, _) => {
                        return Err(Error::UpstreamSchema {
                            detail: format!("change {seq} has an unknown kind {kind}"),
                        });
                    }
                };
                changes.push(UpstreamChange { seq, id, subject });
            }
            if changes.len() < rows.len() && changes.is_empty() {
                epoch = self.resync(client)?;
                report.resynced = true;
                continue;
            }
            if let Some(last) = changes.last().map(|c| c.seq) {
                report.applied += self.store.apply_upstream(&changes, Some(last))?;
                report.cursor = last;
            } else {
                report.cursor = cursor;
            }
            if (rows.len() as i64) < BATCH && changes.len() == rows.len() {
                let mut state = self.state.lock();
                state.status.synced_at = started;
                state.status.cursor = report.cursor;
                return Ok(report);
            }
        }
    }

    /// Replaces the local keys with a `REPEATABLE READ` snapshot of the upstream; returns
    /// the upstream epoch of the snapshot.
    fn resync(&self, client: &mut Client) -> Result<String> {
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg_error)?;
        let head: i64 = tx
            .query_one("SELECT seq FROM keyward_counter", &[])
            .map_err(pg_error)?
            .get(0);
        let epoch: String = tx
            .query_one("SELECT value FROM keyward_meta WHERE name = 'epoch'", &[])
            .map_err(pg_error)?
            .get(0);
        let rows = tx
            .query("SELECT id, record, updated_seq FROM keyward_keys", &[])
            .map_err(pg_error)?;
        let owner_rows = tx
            .query(
                "SELECT owner, record, rate_limit, updated_seq FROM keyward_owners
                 WHERE record IS NOT NULL OR rate_limit IS NOT NULL",
                &[],
            )
            .map_err(pg_error)?;
        tx.commit().map_err(pg_error)?;
        let mut snapshot = Snapshot::default();
        for row in rows {
            let id: &str = row.get(0);
            snapshot
                .keys
                .push((row.get::<_, i64>(2) as u64, decode_record(id, row.get(1))?));
        }
        for row in owner_rows {
            let owner: String = row.get(0);
            let state = owner_from_columns(&owner, row.get(1), row.get(2))?;
            snapshot
                .owners
                .push((row.get::<_, i64>(3) as u64, owner, state));
        }
        self.store.resync_upstream(&snapshot, head as u64, &epoch)?;
        self.state.lock().status.resyncs += 1;
        Ok(epoch)
    }

    /// Usage push (when due, or `force`), credit leases, heartbeat.
    fn housekeeping(
        &self,
        client: &mut Client,
        force: bool,
        report: &mut SyncReport,
    ) -> Result<()> {
        // Kept off the path of a burst of changes: leases at most once per poll interval,
        // usage and the heartbeat once per usage interval (`force`: both now).
        let due = |last: Option<Instant>, every: Duration| {
            force || last.is_none_or(|at| at.elapsed() >= every)
        };
        let (usage_due, lease_due) = {
            let state = self.state.lock();
            (
                due(state.last_usage_push, self.options.usage_interval),
                due(state.last_lease_check, self.options.poll_interval),
            )
        };
        if lease_due {
            report.credits_leased = self.lease_credits(client)?;
            self.state.lock().last_lease_check = Some(Instant::now());
        }
        if usage_due {
            report.usage_rows = self.push_usage(client)?;
            let cursor = self.store.upstream_cursor()? as i64;
            client
                .execute(
                    "INSERT INTO keyward_hosts (host, cursor, seen_at) VALUES ($1, $2, now())
                     ON CONFLICT (host) DO UPDATE SET cursor = EXCLUDED.cursor, seen_at = now()",
                    &[&self.options.host, &cursor],
                )
                .map_err(pg_error)?;
            self.state.lock().last_usage_push = Some(Instant::now());
        }
        Ok(())
    }

    /// Pushes this host's usage per key and day as absolute counts: the upstream keeps the
    /// larger of what it has and what it is sent, so a retried push changes nothing.
    pub(crate) fn push_usage(&self, client: &mut Client) -> Result<usize> {
        let all = !self.state.lock().pushed_all_days;
        let from = if all {
            i32::MIN
        } else {
            SystemClock.now().day().0 - 1
        };
        let rows = self.store.usage_days_since(from)?;
        for chunk in rows.chunks(1000) {
            let ids: Vec<&str> = chunk.iter().map(|r| r.0.as_str()).collect();
            let days: Vec<i32> = chunk.iter().map(|r| r.1).collect();
            let uses: Vec<i64> = chunk.iter().map(|r| r.2 as i64).collect();
            client
                .execute(
                    "INSERT INTO keyward_usage (key_id, host, day, uses)
                     SELECT k, $1, d, u FROM unnest($2::text[], $3::int4[], $4::int8[]) AS t(k, d, u)
                     ON CONFLICT (key_id, host, day)
                     DO UPDATE SET uses = GREATEST(keyward_usage.uses, EXCLUDED.uses)",
                    &[&self.options.host, &ids, &days, &uses],
                )
                .map_err(pg_error)?;
        }
        self.state.lock().pushed_all_days = true;
        Ok(rows.len())
    }

    /// Tops up the credits of this host's limited keys that run low, renews this host's
    /// leases and writes off the leases of hosts gone silent.
    fn lease_credits(&self, client: &mut Client) -> Result<u64> {
        let batch = self.options.lease_batch.max(1);
        let ttl_ms = self.options.lease_ttl.as_millis().min(i64::MAX as u128) as i64;
        let mut leased = 0;
        for row in self.store.credit_rows()? {
            if row.held >= batch / 2 {
                continue;
            }
            let want = batch - row.held;
            let mut tx = client.transaction().map_err(pg_error)?;
            let Some(current) = tx
                .query_opt(
                    "SELECT remaining, refill_amount, period FROM keyward_credits
                     WHERE key_id = $1 FOR UPDATE",
                    &[&row.id],
                )
                .map_err(pg_error)?
            else {
                continue;
            };
            let (remaining, refill, period): (i64, Option<i64>, Option<i32>) =
                (current.get(0), current.get(1), current.get(2));
            let Some(grant) = lease_grant(
                remaining as u64,
                refill.map(|a| a as u64),
                period,
                row.period,
                want,
            ) else {
                // This host's clock is behind the upstream's period: it leases once it
                // reaches that period (credits of a period are never taken into another).
                continue;
            };
            tx.execute(
                "UPDATE keyward_credits SET remaining = $2, period = $3 WHERE key_id = $1",
                &[&row.id, &(grant.remaining as i64), &grant.period],
            )
            .map_err(pg_error)?;
            if grant.taken > 0 {
                tx.execute(
                    "INSERT INTO keyward_credit_leases (key_id, host, leased, expires_at)
                     VALUES ($1, $2, $3, now() + $4::int8 * interval '1 millisecond')
                     ON CONFLICT (key_id, host) DO UPDATE
                     SET leased = keyward_credit_leases.leased + EXCLUDED.leased,
                         expires_at = EXCLUDED.expires_at",
                    &[&row.id, &self.options.host, &(grant.taken as i64), &ttl_ms],
                )
                .map_err(pg_error)?;
            }
            tx.commit().map_err(pg_error)?;
            // Committed upstream: the credits are this host's. Should the local write fail
            // they are forfeited, never spent twice.
            if grant.taken > 0
                && self
                    .store
                    .add_leased_credits(&row.id, grant.taken, row.period)?
            {
                leased += grant.taken;
            }
        }
        client.batch_execute("BEGIN").map_err(pg_error)?;
        let renewed = client
            .execute(
                "UPDATE keyward_credit_leases
                 SET expires_at = now() + $2::int8 * interval '1 millisecond' WHERE host = $1",
                &[&self.options.host, &ttl_ms],
            )
            .and_then(|_| {
                client.execute(
                    "WITH dead AS (
                         DELETE FROM keyward_credit_leases WHERE expires_at < now()
                         RETURNING key_id, leased)
                     UPDATE keyward_credits c SET forfeited = c.forfeited + d.leased
                     FROM (SELECT key_id, sum(leased)::int8 AS leased FROM dead GROUP BY key_id) d
                     WHERE c.key_id = d.key_id",
                    &[],
                )
            });
        match renewed {
            Ok(_) => client.batch_execute("COMMIT").map_err(pg_error)?,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                return Err(pg_error(e));
            }
        }
        Ok(leased)
    }

    fn set_connected(&self, connected: bool) {
        self.state.lock().status.connected = connected;
    }

    /// Records the outcome of an attempt in the status (and its file).
    fn note<T>(&self, result: &Result<T>) {
        let status = {
            let mut state = self.state.lock();
            state.status.updated_at = SystemClock.now().as_millis();
            state.status.last_error = result.as_ref().err().map(ToString::to_string);
            if let Ok(cursor) = self.store.upstream_cursor() {
                state.status.cursor = cursor;
            }
            state.status.clone()
        };
        let _ = status.write(self.store.path());
    }
}

/// What one lease takes from a key's upstream row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grant {
    /// Credits leased to the host.
    taken: u64,
    /// The upstream balance after it.
    remaining: u64,
    /// The upstream's refill period after it (`None`: still unknown, a key without refill).
    period: Option<i32>,
}

/// The lease of up to `want` credits for a host in refill period `host_period`, from an
/// upstream row holding `remaining` for `period` with refill `refill`. The upstream refills
/// (the row is reset to the refill amount: what the past period left lapses) when the host
/// is the first to reach a later period; a row whose period is unknown (new, or migrated)
/// adopts the host's without a refill. `None` when the host is behind the upstream's period.
fn lease_grant(
    remaining: u64,
    refill: Option<u64>,
    period: Option<i32>,
    host_period: i32,
    want: u64,
) -> Option<Grant> {
    let (remaining, period) = match (refill, period) {
        (None, period) => (remaining, period),
        (Some(_), None) => (remaining, Some(host_period)),
        (Some(amount), Some(p)) if p < host_period => (amount, Some(host_period)),
        (Some(_), Some(p)) if p == host_period => (remaining, Some(p)),
        (Some(_), Some(_)) => return None,
    };
    let taken = remaining.min(want);
    Some(Grant {
        taken,
        remaining: remaining - taken,
        period,
    })
}

/// Sleeps up to `total`, waking early when `stop` is set.
fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let deadline = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::{Grant, lease_grant};

    #[test]
    fn leases_refill_once_per_period_and_never_across_periods() {
        let grant = |taken, remaining, period| {
            Some(Grant {
                taken,
                remaining,
                period,
            })
        };
        // No refill: the period plays no part.
        assert_eq!(lease_grant(30, None, None, 0, 40), grant(30, 0, None));
        // Unknown period: adopted without a refill.
        assert_eq!(
            lease_grant(70, Some(100), None, 5, 40),
            grant(40, 30, Some(5))
        );
        // Same period: from what is left.
        assert_eq!(
            lease_grant(30, Some(100), Some(5), 5, 40),
            grant(30, 0, Some(5))
        );
        // A later period: refilled to the amount, the rest of the past one lapses.
        assert_eq!(
            lease_grant(30, Some(100), Some(5), 6, 40),
            grant(40, 60, Some(6))
        );
        // A host behind the upstream's period takes nothing.
        assert_eq!(lease_grant(30, Some(100), Some(6), 5, 40), None);
    }
}
