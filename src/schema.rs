//! The storage schema: redb table definitions, the stored key record, and the format version.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | bytes: `format_version`, `pepper_check`, `prefix`, `change_seq`, `serial`, `next_slot` |
//! | `keys` | public id | JSON `KeyRecordV1` + CRC32 (never the secret; the keyed digest only) |
//! | `owner_keys` | (owner, serial) | public id — listing by owner in creation order |
//! | `changes` | change sequence | public id — the cross-process change log |
//! | `key_usage` | public id | (uses, refused, last used ms, latest UTC day, uses that day) — format 2 |
//! | `usage_days` | (public id, UTC day) | uses that day (for the latest day: plus the `key_usage` row's count) |
//! | `usage` | public id | (uses, refused, last used ms) — format 1 only: read and added to `key_usage`, never created in format 2 (see `store::usage_rows`) |
//! | `credits` | public id | (credits left in the database, refill period, shared slot) |
//! | `free_slots` | slot | () — credit slots freed by deleted keys |
//! | `audit` | event sequence | JSON `AuditEventV1` + CRC32 — the audit log (added after format 1 shipped: a store without it reads as an empty log; it is created by the first write) |
//! | `legacy_digests` | keyed digest (32 bytes) | public id — imported legacy keys (added after format 1 shipped, like `audit`) |
//! | `owners` | owner | JSON `OwnerRecordV1` + CRC32 — owner controls: suspension, allowed scopes (added after format 1 shipped: a store without it has no owner records; it is created by the first owner change) |
//! | `key_rate_slots` | public id | shared rate-limit slot of a rate-limited key (its terms are in the key record) |
//! | `owner_rate_limits` | owner | (rate, period ms, burst, shared rate-limit slot) — a limit shared by all the owner's keys |
//! | `free_rate_slots` | slot | () — rate-limit slots freed by deleted keys and owners |
//!
//! The three rate-limit tables were added after format 1 shipped (a store without them has no
//! rate limits; they are created by the first write that needs them); meta `next_rate_slot`
//! and `owner_rate_seq` (the version of the owner limits, see `store::rate_limits`) with them.
//! | `replica_seq` | public id | upstream change sequence that last wrote the key (replicas of a PostgreSQL upstream only: an older change never overwrites a newer one; added after format 1 shipped, read as empty when missing) |

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key_record::KeyRecordV1;
use crate::legacy::LegacyOrigin;

/// The format version this build writes; a store with a higher one is refused.
///
/// 1: the first release. 2: a key's usage totals and latest day in one `key_usage` row (a
/// store of format 1 is upgraded when it is opened; its rows are read as they are).
pub const FORMAT_VERSION: u32 = 2;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
pub(crate) const OWNER_KEYS: TableDefinition<(&str, u64), &str> =
    TableDefinition::new("owner_keys");
pub(crate) const CHANGES: TableDefinition<u64, &str> = TableDefinition::new("changes");
pub(crate) const KEY_USAGE: TableDefinition<&str, (u64, u64, i64, i32, u64)> =
    TableDefinition::new("key_usage");
/// Format 1's usage rows (see `store::usage_rows`).
pub(crate) const USAGE_V1: TableDefinition<&str, (u64, u64, i64)> = TableDefinition::new("usage");
pub(crate) const USAGE_DAYS: TableDefinition<(&str, i32), u64> = TableDefinition::new("usage_days");
pub(crate) const CREDITS: TableDefinition<&str, (u64, i32, u32)> = TableDefinition::new("credits");
pub(crate) const FREE_SLOTS: TableDefinition<u32, ()> = TableDefinition::new("free_slots");
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Digest → public id of legacy keys (whose presented text carries no keyward id), for the
/// verifies answered from redb while a slot of the shared table is in doubt. Holds keyed
/// digests only, never a raw legacy hash.
pub(crate) const LEGACY_DIGESTS: TableDefinition<&[u8], &str> =
    TableDefinition::new("legacy_digests");
pub(crate) const OWNERS: TableDefinition<&str, &[u8]> = TableDefinition::new("owners");
pub(crate) const KEY_RATE_SLOTS: TableDefinition<&str, u32> =
    TableDefinition::new("key_rate_slots");
pub(crate) const OWNER_RATE_LIMITS: TableDefinition<&str, (u64, u64, u64, u32)> =
    TableDefinition::new("owner_rate_limits");
pub(crate) const FREE_RATE_SLOTS: TableDefinition<u32, ()> =
    TableDefinition::new("free_rate_slots");
#[cfg(feature = "postgres")]
pub(crate) const REPLICA_SEQ: TableDefinition<&str, u64> = TableDefinition::new("replica_seq");
/// Owner → the upstream sequence that last wrote its replicated state (as `replica_seq` for
/// keys: an older change never overwrites a newer one).
#[cfg(feature = "postgres")]
pub(crate) const REPLICA_OWNER_SEQ: TableDefinition<&str, u64> =
    TableDefinition::new("replica_owner_seq");

pub(crate) const META_FORMAT_VERSION: &str = "format_version";
pub(crate) const META_PEPPER_CHECK: &str = "pepper_check";
pub(crate) const META_PREFIX: &str = "prefix";
pub(crate) const META_CHANGE_SEQ: &str = "change_seq";
pub(crate) const META_SERIAL: &str = "serial";
pub(crate) const META_NEXT_SLOT: &str = "next_slot";
/// The last audit event sequence number written.
pub(crate) const META_AUDIT_SEQ: &str = "audit_seq";
/// The next never-used rate-limit slot.
pub(crate) const META_NEXT_RATE_SLOT: &str = "next_rate_slot";
/// Version of the owner rate limits: bumped by every change to `owner_rate_limits`.
pub(crate) const META_OWNER_RATE_SEQ: &str = "owner_rate_seq";
/// Replicas of a PostgreSQL upstream: the last upstream change sequence applied (u64 LE).
/// Its presence marks the store as a replica: local management calls are refused.
pub(crate) const META_UPSTREAM_CURSOR: &str = "upstream_cursor";
/// Replicas: the upstream epoch the cursor belongs to (text).
#[cfg(feature = "postgres")]
pub(crate) const META_UPSTREAM_EPOCH: &str = "upstream_epoch";
/// The sync file bound to this database: epoch, device and inode (little-endian u64s + CRC).
pub(crate) const META_SYNC_FILE: &str = "sync_file";
/// The legacy schemes whose keys the store holds (a u64 of `LegacyScheme::bit`s): verify
/// looks at non-keyward text only for these.
pub(crate) const META_LEGACY_SCHEMES: &str = "legacy_schemes";

/// How many change-log entries are kept; a process that falls further behind reloads fully.
pub(crate) const CHANGE_LOG_KEEP: u64 = 10_000;

/// How often usage credits are refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefillInterval {
    /// At the start of every UTC day.
    Daily,
    /// At the start of every UTC month.
    Monthly,
}

impl RefillInterval {
    /// Stable numeric code (C ABI).
    pub fn code(self) -> u32 {
        match self {
            RefillInterval::Daily => 1,
            RefillInterval::Monthly => 2,
        }
    }
}

/// A refill: every interval the key's credits are reset to `amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refill {
    /// Credits after each refill.
    pub amount: u64,
    /// How often.
    pub interval: RefillInterval,
}

/// The usage-credit terms of a limited key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditTerms {
    /// Optional periodic refill.
    pub refill: Option<Refill>,
    /// Credits a verify costs when the caller does not say (default 1).
    pub cost: u32,
}

/// The public description of a key: everything but its secret and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Public key id (safe to log).
    pub id: String,
    /// Owner (account or workspace id).
    pub owner: String,
    /// Human name.
    pub name: String,
    /// Scopes, sorted and without duplicates.
    pub scopes: Vec<String>,
    /// Environment tag (e.g. `live`, `test`).
    pub env: Option<String>,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Expiry, ms since the epoch.
    pub expires_at: Option<i64>,
    /// Host-defined metadata (bytes, often JSON).
    #[serde(with = "base64_bytes")]
    pub metadata: Vec<u8>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<String>,
    /// The key that replaced this one by rotation.
    pub rotated_to: Option<String>,
    /// Usage-credit terms, for limited keys.
    pub credits: Option<CreditTerms>,
    /// The key's own rate limit (its owner may have one too: `Store::owner_rate_limit`).
    pub rate_limit: Option<crate::rate_limit::RateLimit>,
    /// Creation order within the store.
    pub serial: u64,
    /// For a key imported from another system: which, its id there, and when it was
    /// upgraded to keyward's own digest. Absent (and not in JSON) for keyward's own keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyOrigin>,
}

impl KeyInfo {
    /// Whether the key is revoked or expired at `now_ms`.
    pub fn is_active_at(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now_ms < e)
    }

    /// Whether the key holds every scope in `required`.
    pub fn has_scopes<S: AsRef<str>>(&self, required: &[S]) -> bool {
        required.iter().all(|r| {
            self.scopes
                .binary_search_by(|s| s.as_str().cmp(r.as_ref()))
                .is_ok()
        })
    }
}

/// What is stored per key: the public record and the keyed digest of its secret. On disk it
/// is a [`KeyRecordV1`] (its own type, so `KeyInfo` can change without changing the format).
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub info: KeyInfo,
    /// Hex of `blake3::keyed_hash(pepper, id ‖ secret)`.
    pub digest: String,
}

impl StoredKey {
    /// JSON followed by the CRC32 of the JSON (4 bytes, little-endian): redb does not
    /// checksum pages on ordinary reads, so a damaged record is caught here instead of
    /// turning into a wrong verdict.
    pub(crate) fn encode(&self) -> Vec<u8> {
        with_crc(&KeyRecordV1::from_info(&self.info, &self.digest).to_json())
    }

    /// Decodes a record stored under `key_id`, checking its CRC and that it names that id.
    pub(crate) fn decode(key_id: &str, bytes: &[u8]) -> Result<StoredKey> {
        let corrupt = |detail: String| Error::Corrupt {
            path: Default::default(),
            detail,
        };
        let json = without_crc(bytes)
            .ok_or_else(|| corrupt(format!("key record {key_id} fails its checksum")))?;
        let (info, digest) = KeyRecordV1::from_json(key_id, json)?.into_parts()?;
        let stored = StoredKey { info, digest };
        if stored.info.id != key_id {
            return Err(corrupt(format!(
                "key record under {key_id} names {}",
                stored.info.id
            )));
        }
        Ok(stored)
    }

    pub(crate) fn digest_hash(&self) -> Result<blake3::Hash> {
        blake3::Hash::from_hex(&self.digest).map_err(|e| Error::Corrupt {
            path: Default::default(),
            detail: format!("bad digest in key record {}: {e}", self.info.id),
        })
    }
}

/// Creates every table (in the transaction that initialises a store), so readers never meet
/// a missing table.
pub(crate) fn create_tables(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(KEYS)?;
    txn.open_table(OWNER_KEYS)?;
    txn.open_table(CHANGES)?;
    txn.open_table(KEY_USAGE)?;
    txn.open_table(USAGE_DAYS)?;
    txn.open_table(CREDITS)?;
    txn.open_table(FREE_SLOTS)?;
    txn.open_table(AUDIT)?;
    txn.open_table(OWNERS)?;
    txn.open_table(KEY_RATE_SLOTS)?;
    txn.open_table(OWNER_RATE_LIMITS)?;
    txn.open_table(FREE_RATE_SLOTS)?;
    Ok(())
}

/// `bytes` followed by their CRC32 (4 bytes, little-endian): how key records and the meta
/// records that decide how every key is read (format version, pepper check, prefix) are
/// stored, since redb does not checksum pages on ordinary reads.
pub(crate) fn with_crc(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    out.extend_from_slice(bytes);
    out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    out
}

/// The bytes before a CRC32 suffix, if the suffix matches.
pub(crate) fn without_crc(stored: &[u8]) -> Option<&[u8]> {
    let (bytes, crc) = stored.split_at_checked(stored.len().checked_sub(4)?)?;
    (crc32fast::hash(bytes).to_le_bytes() == crc).then_some(bytes)
}

/// The committed change sequence recorded in the meta table (0 before the first change).
pub(crate) fn stored_change_seq(
    meta: &impl redb::ReadableTable<&'static str, &'static [u8]>,
) -> Result<u64> {
    match meta.get(META_CHANGE_SEQ)? {
        Some(v) => u64_from_meta(v.value()),
        None => Ok(0),
    }
}

pub(crate) fn u64_from_meta(bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| Error::Corrupt {
        path: Default::default(),
        detail: "bad integer in meta table".into(),
    })?;
    Ok(u64::from_le_bytes(arr))
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
