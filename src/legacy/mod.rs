//! Legacy keys: keys issued and hashed by another system (Laravel Sanctum,
//! djangorestframework-api-key, Unkey, Better Auth) that keyward accepts as they are.
//!
//! What each system stores, checked against its source:
//!
//! | scheme | key the client holds | stored hash |
//! |---|---|---|
//! | `sanctum` | `<id>\|<token>`, token = `config('sanctum.token_prefix')` + 40 random characters + `hash('crc32b', <those 40>)` (since v3.2.6; 40 characters before) | `token` column: hex SHA-256 of `<token>` (the part after `\|`, prefix and CRC included) |
//! | `drf` | `<prefix>.<secret>` (8 + 32 characters by default) | `hashed_key`: `"sha512$$"` + hex SHA-512 of the whole key; the prefix in its own column |
//! | `unkey` | the whole key (e.g. `prefix_…`) | `hash`: standard base64 (padded) of SHA-256 of the whole key |
//! | `better-auth` | the whole key | `key`: unpadded base64url of SHA-256 of the whole key (`defaultKeyHasher`) |
//!
//! keyward never stores such a hash as it is: a legacy record holds only
//! [`crate::digest::Pepper::legacy_digest`], a keyed BLAKE3 of the scheme and the raw hash
//! bytes, so a stolen database confirms nothing without the pepper, as for native keys. A
//! presented text that is not a keyward key is routed by its shape ([`candidates`]) to the
//! schemes enabled for the store, hashed the legacy way, wrapped the same way and looked up
//! like a native digest. The first successful use replaces the wrapped legacy digest with
//! [`crate::digest::Pepper::upgraded_digest`] of the presented text.
//!
//! This module knows nothing of storage: schemes, shapes, hashes and public ids.

pub(crate) mod source;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::key_format::KeyId;

/// A system whose keys keyward can import and accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LegacyScheme {
    /// Laravel Sanctum personal access tokens (`personal_access_tokens`).
    #[serde(rename = "sanctum")]
    Sanctum,
    /// djangorestframework-api-key 2.x/3.x (`rest_framework_api_key_apikey`, SHA-512 hasher).
    #[serde(rename = "drf")]
    Drf,
    /// Unkey (SHA-256, standard base64).
    #[serde(rename = "unkey")]
    Unkey,
    /// Better Auth's api-key plugin (SHA-256, unpadded base64url).
    #[serde(rename = "better-auth")]
    BetterAuth,
}

impl LegacyScheme {
    /// Every scheme, in code order.
    pub const ALL: [LegacyScheme; 4] = [
        LegacyScheme::Sanctum,
        LegacyScheme::Drf,
        LegacyScheme::Unkey,
        LegacyScheme::BetterAuth,
    ];

    /// Stable numeric code (C ABI, stored in digests): 1 sanctum, 2 drf, 3 unkey,
    /// 4 better-auth.
    pub fn code(self) -> u32 {
        match self {
            LegacyScheme::Sanctum => 1,
            LegacyScheme::Drf => 2,
            LegacyScheme::Unkey => 3,
            LegacyScheme::BetterAuth => 4,
        }
    }

    /// The scheme with this code.
    pub fn from_code(code: u32) -> Option<LegacyScheme> {
        LegacyScheme::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The name used by the CLI (`--from`) and in JSON: `sanctum`, `drf`, `unkey`,
    /// `better-auth`.
    pub fn name(self) -> &'static str {
        match self {
            LegacyScheme::Sanctum => "sanctum",
            LegacyScheme::Drf => "drf",
            LegacyScheme::Unkey => "unkey",
            LegacyScheme::BetterAuth => "better-auth",
        }
    }

    /// The scheme with this name.
    pub fn from_name(name: &str) -> Option<LegacyScheme> {
        LegacyScheme::ALL.into_iter().find(|s| s.name() == name)
    }

    /// This scheme's bit in a store's set of enabled schemes.
    pub(crate) fn bit(self) -> u64 {
        1 << self.code()
    }
}

impl std::fmt::Display for LegacyScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an imported key came from, and whether it was upgraded ([`crate::KeyInfo::legacy`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyOrigin {
    /// The system that issued it.
    pub scheme: LegacyScheme,
    /// Its id there (Sanctum's numeric id, DRF's prefix, Unkey's and Better Auth's key id).
    pub source_id: String,
    /// When its first successful verify replaced the wrapped legacy hash by keyward's own
    /// digest of the presented key (ms since the epoch); `None` while it still verifies
    /// through the legacy hash.
    pub upgraded_at: Option<i64>,
}

/// Length of the longest raw legacy hash (SHA-512).
const MAX_RAW: usize = 64;

/// The raw bytes of a legacy hash (32 or 64), zeroized on drop.
pub(crate) struct RawHash {
    bytes: Zeroizing<[u8; MAX_RAW]>,
    len: usize,
}

impl RawHash {
    fn from_slice(bytes: &[u8]) -> RawHash {
        let mut raw = RawHash {
            bytes: Zeroizing::new([0; MAX_RAW]),
            len: bytes.len(),
        };
        raw.bytes[..bytes.len()].copy_from_slice(bytes);
        raw
    }

    /// The hash bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The legacy hash of `canonical` (see [`Candidate::canonical`]) as `scheme` computes it.
pub(crate) fn hash_presented(scheme: LegacyScheme, canonical: &str) -> RawHash {
    match scheme {
        LegacyScheme::Drf => {
            let mut hasher = sha2::Sha512::new();
            hasher.update(canonical.as_bytes());
            let mut out = hasher.finalize();
            let raw = RawHash::from_slice(&out);
            zeroize::Zeroize::zeroize(out.as_mut_slice());
            raw
        }
        LegacyScheme::Sanctum | LegacyScheme::Unkey | LegacyScheme::BetterAuth => {
            let mut hasher = sha2::Sha256::new();
            hasher.update(canonical.as_bytes());
            let mut out = hasher.finalize();
            let raw = RawHash::from_slice(&out);
            zeroize::Zeroize::zeroize(out.as_mut_slice());
            raw
        }
    }
}

/// Decodes a hash as the source system stores it into its raw bytes; `Err` says what is
/// wrong with it (never echoing it).
pub(crate) fn decode_stored(scheme: LegacyScheme, stored: &str) -> Result<RawHash, String> {
    let stored = stored.trim();
    match scheme {
        LegacyScheme::Sanctum => decode_hex(stored, 32).ok_or_else(|| {
            format!(
                "expected 64 hexadecimal characters (SHA-256), got {} characters",
                stored.len()
            )
        }),
        LegacyScheme::Drf => {
            let Some(hex) = stored.strip_prefix("sha512$$") else {
                let algorithm = stored.split('$').next().unwrap_or("");
                return Err(format!(
                    "expected \"sha512$$\" + 128 hexadecimal characters (the SHA-512 hasher of \
                     djangorestframework-api-key 2.x and later); this key is hashed with \
                     {algorithm:?}, which keyward does not accept: let DRF verify it once (it \
                     re-hashes it with SHA-512), or reissue it"
                ));
            };
            decode_hex(hex, 64).ok_or_else(|| {
                "expected \"sha512$$\" + 128 hexadecimal characters (SHA-512)".to_owned()
            })
        }
        LegacyScheme::Unkey => {
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(stored)
                    .map_err(|_| {
                        "expected standard base64 (with padding) of a SHA-256 hash".to_owned()
                    })?,
            );
            (bytes.len() == 32)
                .then(|| RawHash::from_slice(&bytes))
                .ok_or_else(|| format!("expected 32 bytes (SHA-256), got {}", bytes.len()))
        }
        LegacyScheme::BetterAuth => {
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(stored)
                    .map_err(|_| {
                        "expected unpadded base64url of a SHA-256 hash (was key hashing \
                         disabled in Better Auth? plain keys are not imported)"
                            .to_owned()
                    })?,
            );
            (bytes.len() == 32)
                .then(|| RawHash::from_slice(&bytes))
                .ok_or_else(|| format!("expected 32 bytes (SHA-256), got {}", bytes.len()))
        }
    }
}

fn decode_hex(text: &str, len: usize) -> Option<RawHash> {
    if text.len() != len * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = Zeroizing::new([0u8; MAX_RAW]);
    for (i, slot) in bytes[..len].iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(RawHash::from_slice(&bytes[..len]))
}

/// The public id keyward gives an imported key: derived from the scheme and its id in the
/// source system, so importing the same file twice finds the keys already there, and an
/// operator can find a key from its old id (`keyward legacy-id`). Not secret.
pub fn legacy_key_id(scheme: LegacyScheme, source_id: &str) -> KeyId {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"keyward legacy id v1\0");
    hasher.update(&scheme.code().to_le_bytes());
    hasher.update(source_id.as_bytes());
    let hash = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    KeyId::from_random_bytes(&bytes)
}

/// One way a presented text may be a key of an enabled scheme.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// The scheme.
    pub scheme: LegacyScheme,
    /// The part of the text the scheme hashes (Sanctum: the token after `|`; the others:
    /// the whole text), which is also what the upgraded digest covers.
    pub canonical: &'a str,
    /// For Sanctum's `<id>|<token>`: the id, which must be the key's (Sanctum checks it).
    pub source_id: Option<&'a str>,
}

/// Most candidates a text can have (one per scheme).
pub(crate) const MAX_CANDIDATES: usize = 4;

/// Whether `text` can be a legacy key at all: 1 to 1024 printable ASCII characters, no
/// space.
fn plausible(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= crate::store::MAX_PRESENTED_LEN
        && text.bytes().all(|b| b.is_ascii_graphic())
}

/// The schemes of `enabled` (a set of [`LegacyScheme::bit`]s) that `text` may be a key of,
/// by its shape. Empty when the text fits none (it is then `MALFORMED`).
pub(crate) fn candidates(
    text: &str,
    enabled: u64,
) -> ([Option<Candidate<'_>>; MAX_CANDIDATES], usize) {
    let mut found: [Option<Candidate<'_>>; MAX_CANDIDATES] = [None; MAX_CANDIDATES];
    let mut count = 0;
    if enabled == 0 || !plausible(text) {
        return (found, 0);
    }
    for scheme in LegacyScheme::ALL {
        if enabled & scheme.bit() == 0 {
            continue;
        }
        let candidate = match scheme {
            LegacyScheme::Sanctum => match text.split_once('|') {
                Some((id, token))
                    if !id.is_empty()
                        && id.len() <= 20
                        && id.bytes().all(|b| b.is_ascii_digit())
                        && !token.is_empty() =>
                {
                    Some(Candidate {
                        scheme,
                        canonical: token,
                        source_id: Some(id),
                    })
                }
                // Sanctum also accepts a bare token (looked up by its hash alone).
                None => Some(Candidate {
                    scheme,
                    canonical: text,
                    source_id: None,
                }),
                Some(_) => None,
            },
            LegacyScheme::Drf => match text.split_once('.') {
                Some((prefix, secret))
                    if !prefix.is_empty()
                        && !secret.is_empty()
                        && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
                        && secret.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                {
                    Some(Candidate {
                        scheme,
                        canonical: text,
                        source_id: None,
                    })
                }
                _ => None,
            },
            LegacyScheme::Unkey | LegacyScheme::BetterAuth => Some(Candidate {
                scheme,
                canonical: text,
                source_id: None,
            }),
        };
        if let Some(candidate) = candidate {
            found[count] = Some(candidate);
            count += 1;
        }
    }
    (found, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Known answers from the source systems' own tests and documentation.
    #[test]
    fn hashes_match_the_source_systems() {
        // unkeyed/unkey internal/hash/src/sha256.test.ts ("compatibility with resend's keys").
        let raw = hash_presented(LegacyScheme::Unkey, "MVgWNsyPmv6VthC9moCNAPwS");
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()),
            "CptSN3vQ0shZLIsdT5c/tlpeFK/qqxY0R/aQNCfKhWs="
        );
        let stored = decode_stored(
            LegacyScheme::Unkey,
            "CptSN3vQ0shZLIsdT5c/tlpeFK/qqxY0R/aQNCfKhWs=",
        )
        .unwrap();
        assert_eq!(stored.as_bytes(), raw.as_bytes());
        // SHA-256("abc") and SHA-512("abc") (FIPS 180-2 examples).
        let sha256_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            hex(hash_presented(LegacyScheme::Sanctum, "abc").as_bytes()),
            sha256_abc
        );
        assert_eq!(
            hex(decode_stored(LegacyScheme::Sanctum, sha256_abc)
                .unwrap()
                .as_bytes()),
            sha256_abc
        );
        let sha512_abc = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
        assert_eq!(
            hex(hash_presented(LegacyScheme::Drf, "abc").as_bytes()),
            sha512_abc
        );
        assert_eq!(
            hex(
                decode_stored(LegacyScheme::Drf, &format!("sha512$${sha512_abc}"))
                    .unwrap()
                    .as_bytes()
            ),
            sha512_abc
        );
        // Better Auth: the same SHA-256, unpadded base64url.
        let ba = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(hash_presented(LegacyScheme::BetterAuth, "abc").as_bytes());
        assert_eq!(ba, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert!(decode_stored(LegacyScheme::BetterAuth, &ba).is_ok());
    }

    #[test]
    fn stored_hashes_of_the_wrong_form_are_refused() {
        assert!(decode_stored(LegacyScheme::Sanctum, "abcd").is_err());
        let err = decode_stored(LegacyScheme::Drf, "pbkdf2_sha256$260000$salt$hash")
            .err()
            .unwrap();
        assert!(err.contains("pbkdf2_sha256"), "{err}");
        // Unkey's hash is padded standard base64; Better Auth's is unpadded base64url.
        let sha = hash_presented(LegacyScheme::Unkey, "k");
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha.as_bytes());
        let std = base64::engine::general_purpose::STANDARD.encode(sha.as_bytes());
        assert!(decode_stored(LegacyScheme::Unkey, &url).is_err());
        assert!(decode_stored(LegacyScheme::BetterAuth, &std).is_err());
    }

    #[test]
    fn shapes_route_to_the_enabled_schemes() {
        let all = LegacyScheme::ALL.iter().fold(0, |m, s| m | s.bit());
        let (c, n) = candidates("12|abcDEF", all);
        assert_eq!(n, 3); // sanctum, unkey, better-auth
        let sanctum = c[0].unwrap();
        assert_eq!(sanctum.scheme, LegacyScheme::Sanctum);
        assert_eq!(sanctum.canonical, "abcDEF");
        assert_eq!(sanctum.source_id, Some("12"));
        let (c, n) = candidates("AbCd1234.secretSECRET", LegacyScheme::Drf.bit());
        assert_eq!(n, 1);
        assert_eq!(c[0].unwrap().canonical, "AbCd1234.secretSECRET");
        assert_eq!(candidates("x|y", LegacyScheme::Sanctum.bit()).1, 0);
        assert_eq!(candidates("no.dots.here!", LegacyScheme::Drf.bit()).1, 0);
        assert_eq!(candidates("anything", 0).1, 0);
        assert_eq!(candidates("has space", all).1, 0);
        assert_eq!(candidates("", all).1, 0);
    }

    #[test]
    fn legacy_ids_are_stable_and_distinct_per_scheme() {
        let a = legacy_key_id(LegacyScheme::Sanctum, "42");
        assert_eq!(a, legacy_key_id(LegacyScheme::Sanctum, "42"));
        assert_ne!(a, legacy_key_id(LegacyScheme::Unkey, "42"));
        assert_ne!(a, legacy_key_id(LegacyScheme::Sanctum, "43"));
        assert!(KeyId::parse(a.as_str()).is_ok());
    }
}
