//! The PostgreSQL schema keyward owns, and its migrations.
//!
//! | table | what |
//! |---|---|
//! | `keyward_schema` | one row: the schema version (migrations run under an advisory lock) |
//! | `keyward_meta` | name → value: `epoch` (random, drawn with the schema; a replica that followed another epoch resynchronises: a restored backup or another database), `pepper_check` (every host must digest with the same pepper), `prefix` |
//! | `keyward_counter` | one row: `seq`, the last change sequence taken, and `pruned_through`, the last sequence pruned from the log |
//! | `keyward_keys` | public id → owner, serial, the key record (JSON, never a secret), the sequence of the change that last wrote it |
//! | `keyward_changes` | sequence → `kind` (0 a key, 1 an owner), the key id or owner, and the record after the change (a key's, NULL once deleted; an owner's state): the change log replicas follow |
//! | `keyward_owners` | owner → its controls (`record`: suspension, allowed scopes; JSON) and the rate limit it shares among its keys (`rate_limit`, JSON), the sequence of the change that last wrote it |
//! | `keyward_usage` | (key id, host, UTC day) → uses: absolute counts per host, pushed by each replicator |
//! | `keyward_credits` | key id → credits not yet leased to a host, credits forfeited by expired leases, the refill terms (`refill_amount`, `refill_interval`: 1 daily, 2 monthly) and the refill `period` the balance belongs to (NULL: not known yet, adopted from the first lease without a refill) |
//! | `keyward_credit_leases` | (key id, host) → credits leased, lease expiry |
//! | `keyward_hosts` | host → cursor and last contact of its replicator (for operators) |
//! | `keyward_audit` | change sequence → who did what to which key |

use postgres::Client;

use crate::error::{Error, Result};

use super::pg_error;

/// The schema version this build writes and reads; a newer one is refused.
pub const SCHEMA_VERSION: i32 = 2;

/// The advisory lock key that serialises migrations across hosts ("keyward" in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6579_7761_7264;

/// Migration `n` brings the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE keyward_meta (name text PRIMARY KEY, value text NOT NULL);
INSERT INTO keyward_meta (name, value) VALUES ('epoch', md5(random()::text || clock_timestamp()::text));
CREATE TABLE keyward_counter (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint NOT NULL,
    pruned_through bigint NOT NULL
);
INSERT INTO keyward_counter (id, seq, pruned_through) VALUES (true, 0, 0);
CREATE TABLE keyward_keys (
    id text PRIMARY KEY,
    owner text NOT NULL,
    serial bigint NOT NULL,
    record text NOT NULL,
    updated_seq bigint NOT NULL
);
CREATE INDEX keyward_keys_owner ON keyward_keys (owner, serial);
CREATE TABLE keyward_changes (
    seq bigint PRIMARY KEY,
    key_id text NOT NULL,
    record text,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE keyward_owners (
    owner text PRIMARY KEY,
    state text NOT NULL DEFAULT 'active',
    updated_seq bigint NOT NULL
);
CREATE TABLE keyward_usage (
    key_id text NOT NULL,
    host text NOT NULL,
    day integer NOT NULL,
    uses bigint NOT NULL,
    PRIMARY KEY (key_id, host, day)
);
CREATE TABLE keyward_credits (
    key_id text PRIMARY KEY,
    remaining bigint NOT NULL CHECK (remaining >= 0),
    forfeited bigint NOT NULL DEFAULT 0
);
CREATE TABLE keyward_credit_leases (
    key_id text NOT NULL,
    host text NOT NULL,
    leased bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key_id, host)
);
CREATE TABLE keyward_hosts (
    host text PRIMARY KEY,
    cursor bigint NOT NULL,
    seen_at timestamptz NOT NULL
);
CREATE TABLE keyward_audit (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text,
    action text NOT NULL,
    key_id text,
    owner text,
    detail text
);
"#,
    // 1 → 2: owners, their rate limits and legacy imports replicated (change kinds); refills
    // of credit-limited keys made upstream once per period (terms and period per key). The
    // terms of existing keys are read from their records; their period is adopted from the
    // first lease after the migration, without a refill (never more credits than before).
    r#"
ALTER TABLE keyward_changes ADD COLUMN kind smallint NOT NULL DEFAULT 0;
ALTER TABLE keyward_owners ADD COLUMN record text;
ALTER TABLE keyward_owners ADD COLUMN rate_limit text;
ALTER TABLE keyward_credits ADD COLUMN refill_amount bigint;
ALTER TABLE keyward_credits ADD COLUMN refill_interval smallint;
ALTER TABLE keyward_credits ADD COLUMN period integer;
UPDATE keyward_credits c
SET refill_amount = ((k.record::jsonb) -> 'credits' -> 'refill' ->> 'amount')::bigint,
    refill_interval = CASE (k.record::jsonb) -> 'credits' -> 'refill' ->> 'interval'
                          WHEN 'daily' THEN 1 WHEN 'monthly' THEN 2 END
FROM keyward_keys k
WHERE k.id = c.key_id AND jsonb_typeof((k.record::jsonb) -> 'credits' -> 'refill') = 'object';
"#,
];

/// Creates the schema, or migrates it to [`SCHEMA_VERSION`], in one transaction under an
/// advisory lock (several hosts may start at once). Refuses a newer schema.
pub(crate) fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction().map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS keyward_schema (version integer NOT NULL)")
        .map_err(pg_error)?;
    let found: Option<i32> = tx
        .query_opt("SELECT version FROM keyward_schema", &[])
        .map_err(pg_error)?
        .map(|row| row.get(0));
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(Error::UpstreamSchema {
            detail: format!("schema version {found}, this keyward knows up to {SCHEMA_VERSION}"),
        });
    }
    for migration in &MIGRATIONS[found as usize..] {
        tx.batch_execute(migration).map_err(pg_error)?;
    }
    if found == 0 {
        tx.execute(
            "INSERT INTO keyward_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .map_err(pg_error)?;
    } else if found < SCHEMA_VERSION {
        tx.execute("UPDATE keyward_schema SET version = $1", &[&SCHEMA_VERSION])
            .map_err(pg_error)?;
    }
    tx.commit().map_err(pg_error)
}

/// Checks that the schema exists and is not newer than this build (replicators never
/// migrate: the management side does).
pub(crate) fn check(client: &mut Client) -> Result<()> {
    let found: Option<i32> = client
        .query_opt(
            "SELECT version FROM keyward_schema",
            &[],
        )
        .map_err(|e| match e.code() {
            Some(code) if *code == postgres::error::SqlState::UNDEFINED_TABLE => {
                Error::UpstreamSchema {
                    detail: "no keyward schema: run `keyward upstream init` (or Upstream::connect) first".into(),
                }
            }
            _ => pg_error(e),
        })?
        .map(|row| row.get(0));
    match found {
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        Some(v) => Err(Error::UpstreamSchema {
            detail: format!("schema version {v}, this keyward knows {SCHEMA_VERSION}"),
        }),
        None => Err(Error::UpstreamSchema {
            detail: "the keyward schema has no version row".into(),
        }),
    }
}
