//! Finds the API credential in a request's headers, in the four styles real APIs use:
//!
//! 1. `x-api-key: <key>`
//! 2. `Authorization: Bearer <key>`
//! 3. `Authorization: Basic <base64(key)>` — the key alone, or as the user part of `key:`
//!    (when the user part is empty, the password part is taken, as some clients send `:key`)
//! 4. `X-Api-Token-Id: <public id>` + `X-Api-Token-Secret-Key: <secret>`
//!
//! Header names are case-insensitive; surrounding whitespace is ignored. Everything here is
//! what the client sent, so every problem is an error of the credential family (HTTP 401),
//! never an argument error: a credential header value longer than [`MAX_HEADER_VALUE_LEN`]
//! cannot hold a key (`MALFORMED_KEY`); more than [`MAX_CREDENTIAL_HEADERS`] credential
//! headers are `AMBIGUOUS_CREDENTIAL`; a header name longer than [`MAX_HEADER_NAME_LEN`] is
//! no credential header and is ignored. When several credentials are present they must agree,
//! otherwise the request is ambiguous. An `Authorization` header with another scheme (e.g. a
//! JWT for another layer) is an error only when no other credential is present.
//! This module does not check the key's format: verification does.

use base64::Engine as _;
use zeroize::Zeroizing;

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::key_format::KeyFormatError;

/// Longest accepted credential header value (without surrounding whitespace), in bytes.
pub const MAX_HEADER_VALUE_LEN: usize = 8192;
/// Longest header name looked at, in bytes (a longer one is not a credential header).
pub const MAX_HEADER_NAME_LEN: usize = 256;
/// Most credential headers read from one request; more is `AMBIGUOUS_CREDENTIAL`.
pub const MAX_CREDENTIAL_HEADERS: usize = 1024;

/// Header holding a full key.
pub const HEADER_API_KEY: &str = "x-api-key";
/// Standard authorization header.
pub const HEADER_AUTHORIZATION: &str = "authorization";
/// Header holding the public id of an id/secret pair.
pub const HEADER_TOKEN_ID: &str = "x-api-token-id";
/// Header holding the secret of an id/secret pair.
pub const HEADER_TOKEN_SECRET: &str = "x-api-token-secret-key";

/// A credential taken from a request.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A full key (`x-api-key`, Bearer or Basic).
    Key(Zeroizing<String>),
    /// A public id and a secret sent in two headers.
    Pair {
        /// The public key id.
        id: String,
        /// The secret.
        secret: Zeroizing<String>,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Key(_) => f.write_str("Credential::Key(<redacted>)"),
            Credential::Pair { id, .. } => {
                write!(f, "Credential::Pair {{ id: {id:?}, secret: <redacted> }}")
            }
        }
    }
}

/// Extracts the credential from `(name, value)` header pairs.
pub fn extract_credential<'a, I>(headers: I) -> Result<Credential>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut found: Option<Credential> = None;
    let mut token_id: Option<&str> = None;
    let mut token_secret: Option<&str> = None;
    let mut authorization_error: Option<Error> = None;

    let mut seen = 0usize;
    for (name, value) in headers {
        let name = name.trim();
        if name.len() > MAX_HEADER_NAME_LEN || !is_credential_header(name) {
            continue;
        }
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        seen += 1;
        if seen > MAX_CREDENTIAL_HEADERS {
            return Err(Error::AmbiguousCredential);
        }
        let value = value.trim();
        if value.len() > MAX_HEADER_VALUE_LEN {
            return Err(Error::MalformedKey(KeyFormatError::TooLong));
        }
        if value.is_empty() {
            continue;
        }
        if is(HEADER_API_KEY) {
            merge(
                &mut found,
                Credential::Key(Zeroizing::new(value.to_owned())),
            )?;
        } else if is(HEADER_AUTHORIZATION) {
            match parse_authorization(value) {
                Ok(credential) => merge(&mut found, credential)?,
                Err(e) => authorization_error = Some(e),
            }
        } else if is(HEADER_TOKEN_ID) {
            if token_id.is_some_and(|seen| seen != value) {
                return Err(Error::AmbiguousCredential);
            }
            token_id = Some(value);
        } else if token_secret.is_some_and(|seen| seen != value) {
            return Err(Error::AmbiguousCredential);
        } else {
            token_secret = Some(value);
        }
    }

    match (token_id, token_secret) {
        (Some(id), Some(secret)) => merge(
            &mut found,
            Credential::Pair {
                id: id.to_owned(),
                secret: Zeroizing::new(secret.to_owned()),
            },
        )?,
        (Some(_), None) => {
            return Err(Error::HalfPair {
                missing: "X-Api-Token-Secret-Key",
            });
        }
        (None, Some(_)) => {
            return Err(Error::HalfPair {
                missing: "X-Api-Token-Id",
            });
        }
        (None, None) => {}
    }

    match (found, authorization_error) {
        (Some(credential), _) => Ok(credential),
        (None, Some(error)) => Err(error),
        (None, None) => Err(Error::CredentialMissing),
    }
}

/// Whether `name` (trimmed) is one of the four credential headers, in any case.
pub(crate) fn is_credential_header(name: &str) -> bool {
    [
        HEADER_API_KEY,
        HEADER_AUTHORIZATION,
        HEADER_TOKEN_ID,
        HEADER_TOKEN_SECRET,
    ]
    .iter()
    .any(|wanted| name.eq_ignore_ascii_case(wanted))
}

/// [`extract_credential`] over raw header bytes (the C ABI's headers). A name that is not
/// UTF-8 is no credential header; a credential value that is not UTF-8 is client input like
/// any other: it is read with U+FFFD for each invalid sequence, which no key, id, secret or
/// scheme contains, so it ends as the refusal its place calls for (`MALFORMED` for a key,
/// `UNSUPPORTED_SCHEME`, `BAD_BASE64`), never as an argument error. Allocates only for such
/// values and past eight credential headers.
pub(crate) fn extract_credential_bytes<'a, I>(headers: I) -> Result<Credential>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    const INLINE: usize = 8;
    let mut inline: [(&str, Cow<'a, str>); INLINE] =
        std::array::from_fn(|_| ("", Cow::Borrowed("")));
    let mut spill: Vec<(&str, Cow<'a, str>)> = Vec::new();
    let mut count = 0;
    for (name, value) in headers {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let trimmed = name.trim();
        if trimmed.len() > MAX_HEADER_NAME_LEN || !is_credential_header(trimmed) {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        if count < INLINE {
            inline[count] = (name, value);
        } else {
            if spill.is_empty() {
                spill.extend(inline.iter_mut().map(|(n, v)| (*n, std::mem::take(v))));
            }
            spill.push((name, value));
        }
        count += 1;
    }
    let list: &[(&str, Cow<'a, str>)] = if spill.is_empty() {
        &inline[..count]
    } else {
        &spill
    };
    extract_credential(list.iter().map(|(n, v)| (*n, v.as_ref())))
}

/// Extracts the credential from one raw header line such as `Authorization: Bearer kw_...`.
pub fn extract_from_header_line(line: &str) -> Result<Credential> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| Error::invalid("header line", "expected `Name: value`"))?;
    extract_credential([(name, value)])
}

fn merge(found: &mut Option<Credential>, credential: Credential) -> Result<()> {
    match found {
        Some(existing) if *existing != credential => Err(Error::AmbiguousCredential),
        Some(_) => Ok(()),
        None => {
            *found = Some(credential);
            Ok(())
        }
    }
}

fn parse_authorization(value: &str) -> Result<Credential> {
    let (scheme, rest) = match value.find(|c: char| c.is_ascii_whitespace()) {
        Some(at) => (&value[..at], value[at..].trim()),
        None => (value, ""),
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(Error::CredentialMissing);
        }
        return Ok(Credential::Key(Zeroizing::new(rest.to_owned())));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(rest)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(rest))
                .map_err(|_| Error::BadBase64)?,
        );
        let text = std::str::from_utf8(&decoded).map_err(|_| Error::BadBase64)?;
        let key = match text.split_once(':') {
            Some((user, password)) if user.trim().is_empty() => password.trim(),
            Some((user, _)) => user.trim(),
            None => text.trim(),
        };
        if key.is_empty() {
            return Err(Error::CredentialMissing);
        }
        return Ok(Credential::Key(Zeroizing::new(key.to_owned())));
    }
    let shown: String = scheme.chars().take(32).collect();
    Err(Error::UnsupportedScheme { scheme: shown })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrelated_authorization_does_not_hide_x_api_key() {
        let got =
            extract_credential([("Authorization", "Digest abc"), ("X-API-KEY", " k ")]).unwrap();
        assert_eq!(got, Credential::Key(Zeroizing::new("k".into())));
    }

    #[test]
    fn conflicting_credentials_are_ambiguous() {
        let err =
            extract_credential([("x-api-key", "a"), ("authorization", "Bearer b")]).unwrap_err();
        assert!(matches!(err, Error::AmbiguousCredential));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = Credential::Pair {
            id: "id".into(),
            secret: Zeroizing::new("topsecret".into()),
        };
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
