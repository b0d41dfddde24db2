//! Beyond one host: PostgreSQL as the source of truth, each host's store a local replica that
//! keeps verifying in-process (feature `postgres`; README "Several hosts", docs/scale-out.md).
//!
//! - [`Upstream`]: management calls (create, update, revoke, delete, rotate, rate limits,
//!   owner suspension and allowed scopes, owner rate limits, legacy imports) written to
//!   PostgreSQL first. Each change takes its sequence number from the one counter row inside
//!   its transaction (`UPDATE keyward_counter SET seq = seq + 1 RETURNING seq`), so sequence
//!   order is commit order and the log has no gaps; the commit sends a `NOTIFY` whose payload
//!   is the sequence only. The call returns once PostgreSQL committed, and the change is then
//!   applied to the calling host's store at once.
//! - [`Replicator`] (one per host, `keyward replicate`): `LISTEN`s, then catches up with
//!   `seq > cursor` after every (re)connect, on every notification and on a periodic poll,
//!   applies the changes to the local store (and so to the shared verify table every worker
//!   reads), resynchronises from a `REPEATABLE READ` snapshot when the log was pruned past
//!   its cursor, pushes usage as absolute per-host per-day counts and leases credits (the
//!   upstream refills a key once per period for all hosts; a host never refills on its own).
//! - Rate-limit settings replicate, their state does not: each host enforces a limit on its
//!   own (N per period per host, N × hosts overall).
//! - When PostgreSQL is down, verifies go on from the local store; management calls fail with
//!   [`Error::UpstreamUnavailable`]; [`ReplicaStatus`]
//!   tells how stale the host is.
//!
//! Every host opens its own local store with the **same pepper**, management goes through
//! [`Upstream`], verifies stay on the local [`Store`](crate::Store), and one
//! `keyward replicate --db ... --upstream URL` runs per host (or a [`Replicator`] thread):
//!
//! ```no_run
//! use keyward::upstream::{ReplicaStatus, Upstream};
//! use keyward::{NewKey, PepperSource, Store, StoreOptions};
//!
//! let store = Store::open(
//!     "/var/lib/myapp/keys.redb",
//!     StoreOptions {
//!         // One pepper for every host (32 bytes from a secret manager), a local file each.
//!         pepper: PepperSource::File("/etc/myapp/keyward.pepper".into()),
//!         ..StoreOptions::default()
//!     },
//! )?;
//! let upstream = Upstream::connect(&store, "postgresql://keyward@db.internal/keyward")?;
//! let created = upstream.create(NewKey {
//!     owner: "acct_42".into(),
//!     ..NewKey::default()
//! })?;
//! // Committed in PostgreSQL, applied here at once, on the other hosts within their
//! // replicator's next wake-up (a NOTIFY, or the 1 s poll).
//! assert!(store.verify(created.key(), &[])?.is_valid());
//! upstream.revoke(created.id(), Some("leaked"))?;
//! // How stale this host is (what `keyward status` prints).
//! if let Some(status) = ReplicaStatus::read(store.path())? {
//!     println!("cursor {}, connected: {}", status.cursor, status.connected);
//! }
//! # Ok::<(), keyward::Error>(())
//! ```

mod link;
mod manage;
mod replicator;
mod schema;
mod status;
mod tls;

pub(crate) use link::Link;
pub use manage::Upstream;
pub use replicator::{Replicator, ReplicatorOptions, SyncReport};
pub use schema::SCHEMA_VERSION;
pub use status::{ReplicaStatus, status_file_path};

use crate::error::{Error, Result};
use crate::key_record::KeyRecordV1;
use crate::schema::StoredKey;
use crate::store::OwnerState;

/// The channel of the change notifications.
pub(crate) const CHANNEL: &str = "keyward_changes";

/// A PostgreSQL failure as a keyward error (the driver's message names no password).
pub(crate) fn pg_error(e: postgres::Error) -> Error {
    if let Some(db) = e.as_db_error()
        && db.code() == &postgres::error::SqlState::UNDEFINED_TABLE
    {
        return Error::UpstreamSchema {
            detail: format!("{db}: run `keyward upstream init` (or Upstream::connect) first"),
        };
    }
    // The driver's message, with its cause (e.g. the TLS handshake's: "invalid peer
    // certificate: UnknownIssuer"; the OS's for a refused connection).
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = cause.source();
    }
    Error::UpstreamUnavailable { detail }
}

/// Parses `url` (a `postgresql://` URL or `key=value` string, with libpq's `sslmode` and
/// `sslrootcert`: see `tls`) into the driver's configuration and the TLS connector. Reads the
/// root file, connects to nothing.
pub(crate) fn config(
    url: &str,
) -> Result<(postgres::Config, tokio_postgres_rustls::MakeRustlsConnect)> {
    let (url, tls) = tls::split(url)?;
    let config = url.parse().map_err(|e: postgres::Error| {
        Error::invalid("upstream", format!("not a PostgreSQL connection URL: {e}"))
    })?;
    Ok((config, tls))
}

/// Connects to `url` (see [`config`]).
pub(crate) fn connect(url: &str) -> Result<postgres::Client> {
    let (mut config, tls) = config(url)?;
    if config.get_application_name().is_none() {
        config.application_name("keyward");
    }
    config
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect(tls)
        .map_err(pg_error)
}

/// The text stored upstream for a key (the record JSON of the local store, with the digest
/// of the secret, never the secret).
pub(crate) fn encode_record(stored: &StoredKey) -> String {
    String::from_utf8(KeyRecordV1::from_info(&stored.info, &stored.digest).to_json())
        .expect("key record JSON is UTF-8")
}

/// The text of an owner's state in the change log.
pub(crate) fn encode_owner(state: &OwnerState) -> String {
    serde_json::to_string(state).expect("owner states serialize")
}

/// Parses an owner's state from the change log.
pub(crate) fn decode_owner(owner: &str, text: &str) -> Result<OwnerState> {
    serde_json::from_str(text).map_err(|e| Error::UpstreamSchema {
        detail: format!("the upstream state of owner {owner:?} does not parse: {e}"),
    })
}

/// An owner's state from the two columns of `keyward_owners` (controls, rate limit).
pub(crate) fn owner_from_columns(
    owner: &str,
    record: Option<&str>,
    rate_limit: Option<&str>,
) -> Result<OwnerState> {
    let bad = |e: serde_json::Error| Error::UpstreamSchema {
        detail: format!("the upstream row of owner {owner:?} does not parse: {e}"),
    };
    Ok(OwnerState {
        controls: record.map(serde_json::from_str).transpose().map_err(bad)?,
        rate_limit: rate_limit
            .map(serde_json::from_str)
            .transpose()
            .map_err(bad)?,
    })
}

/// Change-log kinds (`keyward_changes.kind`).
pub(crate) const KIND_KEY: i16 = 0;
/// An owner's state (controls and shared rate limit).
pub(crate) const KIND_OWNER: i16 = 1;

/// Parses a record stored upstream under `id`.
pub(crate) fn decode_record(id: &str, text: &str) -> Result<StoredKey> {
    let (info, digest) = KeyRecordV1::from_json(id, text.as_bytes())?.into_parts()?;
    if info.id != id {
        return Err(Error::UpstreamSchema {
            detail: format!("the upstream record under {id} names {}", info.id),
        });
    }
    Ok(StoredKey { info, digest })
}
