//! The API-key format: `<prefix>_<env>_<id><secret><checksum>` (env optional).
//!
//! - `prefix`: `[a-z0-9]{1,16}`, per store (default `kw`);
//! - `env`: optional tag `[a-z0-9]{1,16}` such as `live` or `test`;
//! - `id`: [`ID_LEN`] base62 characters (~95 bits from the OS RNG), public, safe to log;
//! - `secret`: [`SECRET_LEN`] base62 characters (~190 bits from the OS RNG);
//! - `checksum`: CRC32 (crc32fast) of every character before it, as [`CHECKSUM_LEN`]
//!   zero-padded base62 characters, so typos and garbage are refused before any lookup and
//!   secret scanners can recognise real keys offline.
//!
//! Example: `kw_live_3hZ0bq9XcV1mT7pK` + 32 secret characters + 6 checksum characters.
//! This module knows nothing of storage.

use std::fmt;

use getrandom::SysRng;
use rand_core::TryRng;
use zeroize::Zeroizing;

/// Length of the public key id, in base62 characters.
pub const ID_LEN: usize = 16;
/// Length of the secret, in base62 characters (32 × log2(62) ≈ 190 bits).
pub const SECRET_LEN: usize = 32;
/// Length of the CRC32 checksum, in base62 characters.
pub const CHECKSUM_LEN: usize = 6;
/// Length of the body after the last underscore.
pub const BODY_LEN: usize = ID_LEN + SECRET_LEN + CHECKSUM_LEN;
/// Maximum length of a prefix or an env tag.
pub const MAX_TAG_LEN: usize = 16;
/// Longest well-formed key: prefix, env, two underscores and the body.
pub const MAX_KEY_LEN: usize = MAX_TAG_LEN * 2 + 2 + BODY_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a text is not a well-formed key. Stable names via [`KeyFormatError::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormatError {
    /// The text is empty.
    Empty,
    /// The text is longer than the longest key (88 characters, `KW_MAX_KEY_LEN` in C).
    TooLong,
    /// The text does not have 2 or 3 underscore-separated parts.
    BadStructure,
    /// The prefix is not `[a-z0-9]{1,16}` or differs from the store's.
    BadPrefix,
    /// The env tag is not `[a-z0-9]{1,16}`.
    BadEnv,
    /// The body does not have exactly [`BODY_LEN`] characters.
    BadLength,
    /// The body holds a character outside base62.
    NotBase62,
    /// The checksum does not match.
    BadChecksum,
}

impl KeyFormatError {
    /// Stable lower-case name used in test vectors, e.g. `"bad_checksum"`.
    pub fn name(self) -> &'static str {
        match self {
            KeyFormatError::Empty => "empty",
            KeyFormatError::TooLong => "too_long",
            KeyFormatError::BadStructure => "bad_structure",
            KeyFormatError::BadPrefix => "bad_prefix",
            KeyFormatError::BadEnv => "bad_env",
            KeyFormatError::BadLength => "bad_length",
            KeyFormatError::NotBase62 => "not_base62",
            KeyFormatError::BadChecksum => "bad_checksum",
        }
    }
}

impl fmt::Display for KeyFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            KeyFormatError::Empty => "the key is empty",
            KeyFormatError::TooLong => "the key is longer than any valid key",
            KeyFormatError::BadStructure => "expected <prefix>_<env>_<body> or <prefix>_<body>",
            KeyFormatError::BadPrefix => "the prefix is not this store's",
            KeyFormatError::BadEnv => "the env tag must be 1-16 characters a-z, 0-9",
            KeyFormatError::BadLength => "the key body has the wrong length (truncated or padded?)",
            KeyFormatError::NotBase62 => "the key body holds a character outside A-Z, a-z, 0-9",
            KeyFormatError::BadChecksum => "the checksum does not match (typo or corrupted key)",
        };
        f.write_str(text)
    }
}

impl std::error::Error for KeyFormatError {}

/// A public key id: [`ID_LEN`] base62 characters. Safe to log and display.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; ID_LEN]);

impl KeyId {
    /// Parses a public id (exactly [`ID_LEN`] base62 characters).
    pub fn parse(text: &str) -> Result<KeyId, KeyFormatError> {
        let mut id = [0u8; ID_LEN];
        copy_base62(text, &mut id)?;
        Ok(KeyId(id))
    }

    /// A fresh random id from the OS RNG.
    pub(crate) fn generate() -> KeyId {
        let mut id = [0u8; ID_LEN];
        fill_base62(&mut id);
        KeyId(id)
    }

    /// An id made from 16 hash bytes (each mapped onto base62): the derived public ids of
    /// imported legacy keys.
    pub(crate) fn from_random_bytes(bytes: &[u8; ID_LEN]) -> KeyId {
        KeyId(bytes.map(|b| BASE62[(b % 62) as usize]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only base62 ASCII is ever stored in a KeyId.
        std::str::from_utf8(&self.0).expect("key ids are ASCII")
    }

    /// The id as bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The secret part of a key. Zeroized on drop; never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<[u8; SECRET_LEN]>);

impl Secret {
    /// Parses a bare secret (exactly [`SECRET_LEN`] base62 characters).
    pub fn parse(text: &str) -> Result<Secret, KeyFormatError> {
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        copy_base62(text, &mut secret[..])?;
        Ok(Secret(secret))
    }

    pub(crate) fn generate() -> Secret {
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        fill_base62(&mut secret[..]);
        Secret(secret)
    }

    /// The secret's characters (ASCII base62).
    pub fn expose(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A key split into its parts (after the checksum was verified).
#[derive(Clone)]
pub struct ParsedKey {
    /// The prefix (e.g. `kw`).
    pub prefix: String,
    /// The env tag, if the key has one.
    pub env: Option<String>,
    /// The public id.
    pub id: KeyId,
    /// The secret.
    pub secret: Secret,
}

impl fmt::Debug for ParsedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("prefix", &self.prefix)
            .field("env", &self.env)
            .field("id", &self.id)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Checks that a prefix or env tag is `[a-z0-9]{1,16}`.
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Builds a full key text. The returned string is zeroized on drop.
pub fn format_key(
    prefix: &str,
    env: Option<&str>,
    id: &KeyId,
    secret: &Secret,
) -> Zeroizing<String> {
    let mut key = Zeroizing::new(String::with_capacity(MAX_KEY_LEN));
    key.push_str(prefix);
    key.push('_');
    if let Some(env) = env {
        key.push_str(env);
        key.push('_');
    }
    key.push_str(id.as_str());
    // The secret is ASCII base62 by construction.
    key.push_str(std::str::from_utf8(secret.expose()).expect("secrets are ASCII"));
    let checksum = crc32fast::hash(key.as_bytes());
    key.push_str(&encode_checksum(checksum));
    key
}

/// Parses and checks a full key. `expected_prefix`, when given, must match.
pub fn parse_key(text: &str, expected_prefix: Option<&str>) -> Result<ParsedKey, KeyFormatError> {
    let parts = parse_key_parts(text, expected_prefix)?;
    Ok(ParsedKey {
        prefix: parts.prefix.to_owned(),
        env: parts.env.map(str::to_owned),
        id: parts.id,
        secret: parts.secret,
    })
}

/// A parsed key borrowing its text: what the verify path uses (no heap allocation).
pub(crate) struct KeyParts<'a> {
    pub prefix: &'a str,
    pub env: Option<&'a str>,
    pub id: KeyId,
    pub secret: Secret,
}

/// [`parse_key`] without allocating.
///
/// A well-formed key takes the straight path ([`parse_well_formed`], one pass over its bytes
/// with no iterator machinery: this runs on every verify); any text it does not accept is
/// parsed again by the general rules below, so every refusal keeps its exact reason.
#[inline]
pub(crate) fn parse_key_parts<'a>(
    text: &'a str,
    expected_prefix: Option<&str>,
) -> Result<KeyParts<'a>, KeyFormatError> {
    match parse_well_formed(text, expected_prefix) {
        Some(parts) => Ok(parts),
        None => parse_key_parts_general(text, expected_prefix),
    }
}

/// The verify path's parser for a key that is well formed: its parts, or `None` for anything
/// else (which [`parse_key_parts_general`] then names). It accepts exactly the texts the
/// general parser accepts: the body is the last [`BODY_LEN`] bytes, all base62 (so it holds no
/// `_`), after a `_`; before that, one tag or two joined by one `_`.
#[inline]
fn parse_well_formed<'a>(text: &'a str, expected_prefix: Option<&str>) -> Option<KeyParts<'a>> {
    let bytes = text.as_bytes();
    if bytes.len() > MAX_KEY_LEN || bytes.len() < BODY_LEN + 2 {
        return None;
    }
    let head_len = bytes.len() - BODY_LEN - 1;
    let (head, rest) = bytes.split_at(head_len);
    let (separator, body) = rest.split_first()?;
    if *separator != b'_' || !all_base62(body) {
        return None;
    }
    // The head is `prefix` or `prefix_env`: tag characters and at most one underscore.
    let mut underscore = None;
    for (at, &b) in head.iter().enumerate() {
        if b == b'_' {
            if underscore.is_some() {
                return None;
            }
            underscore = Some(at);
        } else if !(b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return None;
        }
    }
    let (prefix, env) = match underscore {
        Some(at) => (&text[..at], Some(&text[at + 1..head_len])),
        None => (&text[..head_len], None),
    };
    let tag_ok = |tag: &str| !tag.is_empty() && tag.len() <= MAX_TAG_LEN;
    if !tag_ok(prefix) || !env.is_none_or(tag_ok) || expected_prefix.is_some_and(|e| e != prefix) {
        return None;
    }
    let (signed, checksum_text) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if decode_checksum(checksum_text) != Some(crc32fast::hash(signed)) {
        return None;
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&body[..ID_LEN]);
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    secret.copy_from_slice(&body[ID_LEN..ID_LEN + SECRET_LEN]);
    Some(KeyParts {
        prefix,
        env,
        id: KeyId(id),
        secret: Secret(secret),
    })
}

/// The general parser: every rule in order, so a refusal names the first one broken.
fn parse_key_parts_general<'a>(
    text: &'a str,
    expected_prefix: Option<&str>,
) -> Result<KeyParts<'a>, KeyFormatError> {
    if text.is_empty() {
        return Err(KeyFormatError::Empty);
    }
    if text.len() > MAX_KEY_LEN {
        return Err(KeyFormatError::TooLong);
    }
    let mut parts = text.split('_');
    let prefix = parts.next().ok_or(KeyFormatError::BadStructure)?;
    let second = parts.next().ok_or(KeyFormatError::BadStructure)?;
    let third = parts.next();
    if parts.next().is_some() {
        return Err(KeyFormatError::BadStructure);
    }
    let (env, body) = match third {
        Some(body) => (Some(second), body),
        None => (None, second),
    };
    if !is_valid_tag(prefix) {
        return Err(KeyFormatError::BadPrefix);
    }
    if let Some(expected) = expected_prefix
        && prefix != expected
    {
        return Err(KeyFormatError::BadPrefix);
    }
    if let Some(env) = env
        && !is_valid_tag(env)
    {
        return Err(KeyFormatError::BadEnv);
    }
    if body.len() != BODY_LEN {
        return Err(KeyFormatError::BadLength);
    }
    if !all_base62(body.as_bytes()) {
        return Err(KeyFormatError::NotBase62);
    }
    let (signed, checksum_text) = text.split_at(text.len() - CHECKSUM_LEN);
    let expected_checksum = crc32fast::hash(signed.as_bytes());
    if decode_checksum(checksum_text.as_bytes()) != Some(expected_checksum) {
        return Err(KeyFormatError::BadChecksum);
    }
    let id = KeyId::parse(&body[..ID_LEN])?;
    let secret = Secret::parse(&body[ID_LEN..ID_LEN + SECRET_LEN])?;
    Ok(KeyParts {
        prefix,
        env,
        id,
        secret,
    })
}

/// Encodes a CRC32 as [`CHECKSUM_LEN`] zero-padded base62 characters.
pub fn encode_checksum(mut value: u32) -> String {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// Decodes a [`CHECKSUM_LEN`]-character base62 checksum; `None` if it cannot be one.
fn decode_checksum(text: &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for &b in text {
        value = value * 62 + base62_value(b)? as u64;
    }
    u32::try_from(value).ok()
}

/// Copies `text` into `out` if it is exactly `out.len()` base62 characters.
fn copy_base62(text: &str, out: &mut [u8]) -> Result<(), KeyFormatError> {
    let bytes = text.as_bytes();
    if bytes.len() != out.len() {
        return Err(KeyFormatError::BadLength);
    }
    if !all_base62(bytes) {
        return Err(KeyFormatError::NotBase62);
    }
    out.copy_from_slice(bytes);
    Ok(())
}

/// Whether every byte is a base62 character (`[0-9A-Za-z]`). Written without an early exit
/// so the compiler checks 16 bytes per instruction (a key's body is 54 bytes; every verify
/// checks it), where `iter().all(u8::is_ascii_alphanumeric)` branches on each byte.
#[inline]
fn all_base62(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        let digit = b.wrapping_sub(b'0') < 10;
        // Setting bit 5 maps `A-Z` onto `a-z`; no other byte lands in `a-z`.
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        ok & (digit | letter)
    })
}

fn base62_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'Z' => Some(b - b'A' + 10),
        b'a'..=b'z' => Some(b - b'a' + 36),
        _ => None,
    }
}

/// Fills `out` with uniformly random base62 characters from the OS RNG (rejection sampling,
/// so every character carries log2(62) bits).
fn fill_base62(out: &mut [u8]) {
    let mut random = Zeroizing::new([0u8; 64]);
    let mut filled = 0;
    while filled < out.len() {
        SysRng
            .try_fill_bytes(&mut random[..])
            .expect("the OS random number generator failed");
        for &byte in random.iter() {
            // 248 = 4 × 62: keep only bytes that map uniformly.
            if byte < 248 {
                out[filled] = BASE62[(byte % 62) as usize];
                filled += 1;
                if filled == out.len() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `all_base62` accepts exactly the ASCII letters and digits: every byte value alone, and
    /// one bad byte at every position of a body-long run of good ones.
    #[test]
    fn all_base62_is_exactly_ascii_alphanumeric() {
        let mut accepted = 0;
        for b in 0..=u8::MAX {
            assert_eq!(all_base62(&[b]), b.is_ascii_alphanumeric(), "byte {b:#04x}");
            accepted += usize::from(all_base62(&[b]));
        }
        assert_eq!(accepted, 62);
        let body = [b'a'; BODY_LEN];
        assert!(all_base62(&body) && all_base62(&[]));
        for at in 0..BODY_LEN {
            for bad in [b'_', b'/', b':', b'@', b'[', b'`', b'{', 0x80, 0xff, 0] {
                let mut text = body;
                text[at] = bad;
                assert!(!all_base62(&text), "{bad:#04x} at {at}");
            }
        }
    }

    #[test]
    fn generated_keys_round_trip() {
        for env in [None, Some("live"), Some("test")] {
            let id = KeyId::generate();
            let secret = Secret::generate();
            let key = format_key("kw", env, &id, &secret);
            let parsed = parse_key(&key, Some("kw")).unwrap();
            assert_eq!(parsed.id, id);
            assert_eq!(parsed.secret.expose(), secret.expose());
            assert_eq!(parsed.env.as_deref(), env);
        }
    }

    #[test]
    fn checksum_catches_every_single_character_change() {
        let key = format_key("kw", Some("live"), &KeyId::generate(), &Secret::generate());
        let body_start = key.len() - BODY_LEN;
        for pos in body_start..key.len() {
            let mut bytes = key.as_bytes().to_vec();
            bytes[pos] = if bytes[pos] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(
                parse_key(&changed, Some("kw")).unwrap_err(),
                KeyFormatError::BadChecksum,
                "position {pos}"
            );
        }
    }

    /// The verify path's parser and the general one agree on every text: the same parts when
    /// both accept, and the straight path never accepts what the general one refuses.
    #[test]
    fn straight_path_agrees_with_the_general_parser() {
        let mut texts: Vec<String> = Vec::new();
        for (prefix, env) in [
            ("kw", Some("live")),
            ("kw", None),
            ("a", Some("b")),
            ("p0123456789abcde", Some("e0123456789abcde")),
        ] {
            let key = format_key(prefix, env, &KeyId::generate(), &Secret::generate());
            texts.push(key.to_string());
            let bytes = key.as_bytes();
            for pos in 0..bytes.len() {
                for replacement in [b'_', b'A', b'a', b'0', b'-', b' '] {
                    let mut changed = bytes.to_vec();
                    changed[pos] = replacement;
                    texts.push(String::from_utf8(changed).unwrap());
                }
                let mut shorter = bytes.to_vec();
                shorter.remove(pos);
                texts.push(String::from_utf8(shorter).unwrap());
                let mut longer = bytes.to_vec();
                longer.insert(pos, b'_');
                texts.push(String::from_utf8(longer).unwrap());
            }
            // A well-formed key under another prefix, and one whose tags are too long.
            texts.push(format!("x{}", key.as_str()));
            texts.push(format!(
                "abcdefghijklmnopq{}",
                &key[key.find('_').unwrap()..]
            ));
        }
        let (mut accepted, mut refused) = (0, 0);
        for text in &texts {
            for expected in [None, Some("kw"), Some("a")] {
                let general = parse_key_parts_general(text, expected);
                match parse_well_formed(text, expected) {
                    Some(fast) => {
                        let general = general.unwrap_or_else(|e| {
                            panic!("{text:?}: straight path accepted, general {e:?}")
                        });
                        assert_eq!(
                            (fast.prefix, fast.env, fast.id),
                            (general.prefix, general.env, general.id)
                        );
                        assert_eq!(fast.secret.expose(), general.secret.expose());
                        accepted += 1;
                    }
                    None => {
                        assert!(
                            general.is_err(),
                            "{text:?}: general accepted, straight path refused"
                        );
                        refused += 1;
                    }
                }
            }
        }
        // Both outcomes were reached, many times.
        assert!(
            accepted >= 8 && refused > 1000,
            "{accepted} accepted, {refused} refused"
        );
    }

    #[test]
    fn random_characters_are_spread_over_the_alphabet() {
        let mut seen = [0u32; 62];
        let mut buf = [0u8; 6200];
        fill_base62(&mut buf);
        for b in buf {
            seen[base62_value(b).unwrap() as usize] += 1;
        }
        // Each of the 62 characters is expected 100 times; all must appear.
        assert!(seen.iter().all(|&n| n > 30), "{seen:?}");
    }

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::generate();
        let text = format!("{secret:?}");
        assert!(!text.contains(std::str::from_utf8(secret.expose()).unwrap()));
    }
}
