//! The key record as stored in the `keys` table: a type of its own with an explicit version,
//! so the stored format changes only when this file does — renaming or adding a field of the
//! public [`KeyInfo`] changes nothing on disk (`tests/format_fixture.rs` opens a store file of
//! format 1 checked in under `tests/fixtures/`, and the unit test below pins the bytes).
//!
//! Stored as JSON followed by a CRC32 (see `schema::with_crc`). Records written before the
//! version field existed carry none and are version 1.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::legacy::{LegacyOrigin, LegacyScheme};
use crate::rate_limit::RateLimit;
use crate::schema::{CreditTerms, KeyInfo, Refill, RefillInterval};

/// The record version this build writes; a record with a higher one is refused.
pub(crate) const RECORD_VERSION: u32 = 1;

fn version_one() -> u32 {
    1
}

/// Version 1 of the stored key record. Field names are the stored format: never rename them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyRecordV1 {
    #[serde(rename = "v", default = "version_one")]
    version: u32,
    id: String,
    owner: String,
    name: String,
    scopes: Vec<String>,
    env: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
    /// Standard base64.
    metadata: String,
    revoked_at: Option<i64>,
    revoke_reason: Option<String>,
    rotated_from: Option<String>,
    rotated_to: Option<String>,
    credits: Option<StoredCreditTerms>,
    /// Added after version 1 shipped: absent (and not written) for keys without a rate limit,
    /// so their bytes are unchanged; an older keyward reading it ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<StoredRateLimit>,
    serial: u64,
    /// Hex of `blake3::keyed_hash(pepper, id ‖ secret)` (for a legacy key: of the wrapped
    /// legacy hash, then of its upgraded digest; see `crate::legacy`).
    digest: String,
    /// Imported keys only (absent from the JSON of keyward's own keys, so their bytes are
    /// unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    legacy: Option<StoredLegacy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredLegacy {
    scheme: String,
    source_id: String,
    upgraded_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StoredCreditTerms {
    refill: Option<StoredRefill>,
    cost: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StoredRateLimit {
    rate: u64,
    period_ms: u64,
    burst: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StoredRefill {
    amount: u64,
    interval: StoredInterval,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredInterval {
    Daily,
    Monthly,
}

impl KeyRecordV1 {
    /// The record of a key.
    pub(crate) fn from_info(info: &KeyInfo, digest: &str) -> KeyRecordV1 {
        use base64::Engine as _;
        KeyRecordV1 {
            version: RECORD_VERSION,
            id: info.id.clone(),
            owner: info.owner.clone(),
            name: info.name.clone(),
            scopes: info.scopes.clone(),
            env: info.env.clone(),
            created_at: info.created_at,
            expires_at: info.expires_at,
            metadata: base64::engine::general_purpose::STANDARD.encode(&info.metadata),
            revoked_at: info.revoked_at,
            revoke_reason: info.revoke_reason.clone(),
            rotated_from: info.rotated_from.clone(),
            rotated_to: info.rotated_to.clone(),
            credits: info.credits.map(|terms| StoredCreditTerms {
                refill: terms.refill.map(|refill| StoredRefill {
                    amount: refill.amount,
                    interval: match refill.interval {
                        RefillInterval::Daily => StoredInterval::Daily,
                        RefillInterval::Monthly => StoredInterval::Monthly,
                    },
                }),
                cost: terms.cost,
            }),
            rate_limit: info.rate_limit.map(|l| StoredRateLimit {
                rate: l.rate,
                period_ms: l.period_ms,
                burst: l.burst,
            }),
            serial: info.serial,
            digest: digest.to_owned(),
            legacy: info.legacy.as_ref().map(|origin| StoredLegacy {
                scheme: origin.scheme.name().to_owned(),
                source_id: origin.source_id.clone(),
                upgraded_at: origin.upgraded_at,
            }),
        }
    }

    /// The JSON bytes stored (before the CRC).
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("key records always serialize")
    }

    /// Parses stored JSON; `key_id` names the record in errors.
    pub(crate) fn from_json(key_id: &str, json: &[u8]) -> Result<KeyRecordV1> {
        let record: KeyRecordV1 = serde_json::from_slice(json).map_err(|e| Error::Corrupt {
            path: Default::default(),
            detail: format!("unreadable key record {key_id}: {e}"),
        })?;
        if record.version > RECORD_VERSION {
            return Err(Error::NewerFormat {
                found: record.version,
                supported: RECORD_VERSION,
            });
        }
        Ok(record)
    }

    /// The public description and the digest (hex).
    pub(crate) fn into_parts(self) -> Result<(KeyInfo, String)> {
        use base64::Engine as _;
        let metadata = base64::engine::general_purpose::STANDARD
            .decode(&self.metadata)
            .map_err(|e| Error::Corrupt {
                path: Default::default(),
                detail: format!("bad metadata in key record {}: {e}", self.id),
            })?;
        let legacy = match self.legacy {
            None => None,
            Some(stored) => Some(LegacyOrigin {
                scheme: LegacyScheme::from_name(&stored.scheme).ok_or_else(|| Error::Corrupt {
                    path: Default::default(),
                    detail: format!(
                        "unknown legacy scheme {:?} in key record {}",
                        stored.scheme, self.id
                    ),
                })?,
                source_id: stored.source_id,
                upgraded_at: stored.upgraded_at,
            }),
        };
        let info = KeyInfo {
            id: self.id,
            owner: self.owner,
            name: self.name,
            scopes: self.scopes,
            env: self.env,
            created_at: self.created_at,
            expires_at: self.expires_at,
            metadata,
            revoked_at: self.revoked_at,
            revoke_reason: self.revoke_reason,
            rotated_from: self.rotated_from,
            rotated_to: self.rotated_to,
            credits: self.credits.map(|terms| CreditTerms {
                refill: terms.refill.map(|refill| Refill {
                    amount: refill.amount,
                    interval: match refill.interval {
                        StoredInterval::Daily => RefillInterval::Daily,
                        StoredInterval::Monthly => RefillInterval::Monthly,
                    },
                }),
                cost: terms.cost,
            }),
            rate_limit: self.rate_limit.map(|l| RateLimit {
                rate: l.rate,
                period_ms: l.period_ms,
                burst: l.burst,
            }),
            serial: self.serial,
            legacy,
        };
        Ok((info, self.digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyInfo {
        KeyInfo {
            id: "AbCdEfGhIjKlMnOp".into(),
            owner: "acct_1".into(),
            name: "CI".into(),
            scopes: vec!["read".into(), "write".into()],
            env: Some("live".into()),
            created_at: 1_750_000_000_000,
            expires_at: Some(1_760_000_000_000),
            metadata: br#"{"plan":"pro"}"#.to_vec(),
            revoked_at: None,
            revoke_reason: None,
            rotated_from: Some("QrStUvWxYz012345".into()),
            rotated_to: None,
            credits: Some(CreditTerms {
                refill: Some(Refill {
                    amount: 100,
                    interval: RefillInterval::Monthly,
                }),
                cost: 2,
            }),
            rate_limit: None,
            serial: 7,
            legacy: None,
        }
    }

    /// The stored bytes of format 1, pinned: a change to `KeyInfo` must not change them.
    #[test]
    fn the_stored_bytes_are_pinned() {
        let json = KeyRecordV1::from_info(&sample(), "00ff").to_json();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"v":1,"id":"AbCdEfGhIjKlMnOp","owner":"acct_1","name":"CI","scopes":["read","write"],"env":"live","created_at":1750000000000,"expires_at":1760000000000,"metadata":"eyJwbGFuIjoicHJvIn0=","revoked_at":null,"revoke_reason":null,"rotated_from":"QrStUvWxYz012345","rotated_to":null,"credits":{"refill":{"amount":100,"interval":"monthly"},"cost":2},"serial":7,"digest":"00ff"}"#
        );
    }

    #[test]
    fn a_rate_limit_round_trips_and_is_absent_from_records_without_one() {
        let mut info = sample();
        info.rate_limit = Some(RateLimit {
            rate: 1000,
            period_ms: 1000,
            burst: 100,
        });
        let json = KeyRecordV1::from_info(&info, "00ff").to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains(r#""rate_limit":{"rate":1000,"period_ms":1000,"burst":100}"#));
        let back = KeyRecordV1::from_json("x", &json)
            .unwrap()
            .into_parts()
            .unwrap();
        assert_eq!(back, (info, "00ff".to_owned()));
        let plain = String::from_utf8(KeyRecordV1::from_info(&sample(), "00ff").to_json()).unwrap();
        assert!(!plain.contains("rate_limit"));
    }

    #[test]
    fn records_round_trip_and_older_ones_without_a_version_read_as_1() {
        let record = KeyRecordV1::from_info(&sample(), "00ff");
        let back = KeyRecordV1::from_json("x", &record.to_json()).unwrap();
        assert_eq!(
            back.clone().into_parts().unwrap(),
            (sample(), "00ff".to_owned())
        );
        // What keyward wrote before records carried "v" (the KeyInfo JSON plus the digest).
        let legacy = br#"{"id":"AbCdEfGhIjKlMnOp","owner":"acct_1","name":"CI","scopes":["read","write"],"env":"live","created_at":1750000000000,"expires_at":1760000000000,"metadata":"eyJwbGFuIjoicHJvIn0=","revoked_at":null,"revoke_reason":null,"rotated_from":"QrStUvWxYz012345","rotated_to":null,"credits":{"refill":{"amount":100,"interval":"monthly"},"cost":2},"serial":7,"digest":"00ff"}"#;
        assert_eq!(KeyRecordV1::from_json("x", legacy).unwrap(), back);
        // A legacy key's record carries its origin; a native key's bytes are unchanged.
        let mut imported = sample();
        imported.legacy = Some(LegacyOrigin {
            scheme: LegacyScheme::Sanctum,
            source_id: "42".into(),
            upgraded_at: Some(5),
        });
        let json = KeyRecordV1::from_info(&imported, "00ff").to_json();
        assert!(String::from_utf8(json.clone()).unwrap().ends_with(
            r#""digest":"00ff","legacy":{"scheme":"sanctum","source_id":"42","upgraded_at":5}}"#
        ));
        assert_eq!(
            KeyRecordV1::from_json("x", &json)
                .unwrap()
                .into_parts()
                .unwrap()
                .0,
            imported
        );
        let newer = br#"{"v":2,"id":"a","owner":"","name":"","scopes":[],"env":null,"created_at":0,"expires_at":null,"metadata":"","revoked_at":null,"revoke_reason":null,"rotated_from":null,"rotated_to":null,"credits":null,"serial":0,"digest":""}"#;
        assert!(matches!(
            KeyRecordV1::from_json("x", newer),
            Err(Error::NewerFormat { found: 2, .. })
        ));
    }
}
