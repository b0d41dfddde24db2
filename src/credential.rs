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
    find_credential(headers).map(Credential::from)
}

/// Text of a credential found in a request: borrowed from the request's headers, or owned
/// (and wiped when dropped) where it had to be made: a decoded `Basic` credential, a value
/// read with U+FFFD.
pub(crate) enum Text<'a> {
    /// A slice of a header value.
    Borrowed(&'a str),
    /// Made from a header value.
    Owned(Zeroizing<String>),
}

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(text) => text,
            Text::Owned(text) => text,
        }
    }

    fn into_owned(self) -> Zeroizing<String> {
        match self {
            Text::Borrowed(text) => Zeroizing::new(text.to_owned()),
            Text::Owned(text) => text,
        }
    }

    fn into_static(self) -> Text<'static> {
        Text::Owned(self.into_owned())
    }
}

/// A credential found in a request's headers, without copying what the headers hold (the
/// verify hot path: no allocation, no copy of the secret to wipe). [`Credential`] is its
/// owned form.
pub(crate) enum FoundCredential<'a> {
    /// A full key.
    Key(Text<'a>),
    /// A public id and a secret.
    Pair {
        /// The public key id.
        id: Text<'a>,
        /// The secret.
        secret: Text<'a>,
    },
}

impl FoundCredential<'_> {
    /// The credential as the verify functions take it.
    pub(crate) fn presented(&self) -> crate::store::Presented<'_> {
        match self {
            FoundCredential::Key(key) => crate::store::Presented::Key(key.as_str()),
            FoundCredential::Pair { id, secret } => crate::store::Presented::Pair {
                id: id.as_str(),
                secret: secret.as_str(),
            },
        }
    }

    fn same_as(&self, other: &FoundCredential<'_>) -> bool {
        match (self, other) {
            (FoundCredential::Key(a), FoundCredential::Key(b)) => a.as_str() == b.as_str(),
            (
                FoundCredential::Pair { id, secret },
                FoundCredential::Pair {
                    id: other_id,
                    secret: other_secret,
                },
            ) => id.as_str() == other_id.as_str() && secret.as_str() == other_secret.as_str(),
            _ => false,
        }
    }

    fn into_static(self) -> FoundCredential<'static> {
        match self {
            FoundCredential::Key(key) => FoundCredential::Key(key.into_static()),
            FoundCredential::Pair { id, secret } => FoundCredential::Pair {
                id: id.into_static(),
                secret: secret.into_static(),
            },
        }
    }
}

impl From<FoundCredential<'_>> for Credential {
    fn from(found: FoundCredential<'_>) -> Credential {
        match found {
            FoundCredential::Key(key) => Credential::Key(key.into_owned()),
            FoundCredential::Pair { id, secret } => Credential::Pair {
                id: id.as_str().to_owned(),
                secret: secret.into_owned(),
            },
        }
    }
}

/// [`extract_credential`] without copying: the credential's text borrowed from `headers`.
pub(crate) fn find_credential<'a, I>(headers: I) -> Result<FoundCredential<'a>>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    search(headers, Some).map_err(|stop| match stop {
        Stop::Refused(error) => error,
        Stop::NotText => unreachable!("every value given as text"),
    })
}

/// Why [`search`] stopped without a credential.
enum Stop {
    /// What the client sent is no usable credential.
    Refused(Error),
    /// A credential header's value is not text (the caller reads the values again, with
    /// U+FFFD for each invalid sequence).
    NotText,
}

impl From<Error> for Stop {
    fn from(error: Error) -> Stop {
        Stop::Refused(error)
    }
}

/// The credential of `headers`, each value read as text by `text` only if its header is a
/// credential header (so other headers' values are never looked at).
fn search<'a, V>(
    headers: impl IntoIterator<Item = (&'a str, V)>,
    text: impl Fn(V) -> Option<&'a str>,
) -> std::result::Result<FoundCredential<'a>, Stop> {
    let mut found: Option<FoundCredential<'a>> = None;
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
            return Err(Error::AmbiguousCredential.into());
        }
        let value = text(value).ok_or(Stop::NotText)?.trim();
        if value.len() > MAX_HEADER_VALUE_LEN {
            return Err(Error::MalformedKey(KeyFormatError::TooLong).into());
        }
        if value.is_empty() {
            continue;
        }
        if is(HEADER_API_KEY) {
            merge(&mut found, FoundCredential::Key(Text::Borrowed(value)))?;
        } else if is(HEADER_AUTHORIZATION) {
            match parse_authorization(value) {
                Ok(credential) => merge(&mut found, credential)?,
                Err(e) => authorization_error = Some(e),
            }
        } else if is(HEADER_TOKEN_ID) {
            if token_id.is_some_and(|seen| seen != value) {
                return Err(Error::AmbiguousCredential.into());
            }
            token_id = Some(value);
        } else if token_secret.is_some_and(|seen| seen != value) {
            return Err(Error::AmbiguousCredential.into());
        } else {
            token_secret = Some(value);
        }
    }

    match (token_id, token_secret) {
        (Some(id), Some(secret)) => merge(
            &mut found,
            FoundCredential::Pair {
                id: Text::Borrowed(id),
                secret: Text::Borrowed(secret),
            },
        )?,
        (Some(_), None) => {
            return Err(Error::HalfPair {
                missing: "X-Api-Token-Secret-Key",
            }
            .into());
        }
        (None, Some(_)) => {
            return Err(Error::HalfPair {
                missing: "X-Api-Token-Id",
            }
            .into());
        }
        (None, None) => {}
    }

    match (found, authorization_error) {
        (Some(credential), _) => Ok(credential),
        (None, Some(error)) => Err(error.into()),
        (None, None) => Err(Error::CredentialMissing.into()),
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

/// [`find_credential`] over raw header bytes (the C ABI's headers). A name that is not
/// UTF-8 is no credential header; a credential value that is not UTF-8 is client input like
/// any other: it is read with U+FFFD for each invalid sequence, which no key, id, secret or
/// scheme contains, so it ends as the refusal its place calls for (`MALFORMED` for a key,
/// `UNSUPPORTED_SCHEME`, `BAD_BASE64`), never as an argument error. Borrows the credential
/// from `headers` unless such a value is present (then it is copied, and wiped when dropped).
pub(crate) fn extract_credential_bytes<'a, I>(headers: I) -> Result<FoundCredential<'a>>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    I::IntoIter: Clone,
{
    let headers = headers.into_iter();
    // A name that is not UTF-8 reads as "", which is no credential header.
    let name_text = |name: &'a [u8]| std::str::from_utf8(name).unwrap_or("");
    let borrowed = search(
        headers
            .clone()
            .map(|(name, value)| (name_text(name), value)),
        |value| std::str::from_utf8(value).ok(),
    );
    match borrowed {
        Ok(found) => return Ok(found),
        Err(Stop::Refused(error)) => return Err(error),
        Err(Stop::NotText) => {}
    }
    let lossy: Vec<(&str, Cow<'a, str>)> = headers
        .map(|(name, value)| (name_text(name), String::from_utf8_lossy(value)))
        .collect();
    let found = find_credential(lossy.iter().map(|(name, value)| (*name, value.as_ref())))?;
    Ok(found.into_static())
}

/// Extracts the credential from one raw header line such as `Authorization: Bearer kw_...`.
pub fn extract_from_header_line(line: &str) -> Result<Credential> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| Error::invalid("header line", "expected `Name: value`"))?;
    extract_credential([(name, value)])
}

fn merge<'a>(
    found: &mut Option<FoundCredential<'a>>,
    credential: FoundCredential<'a>,
) -> Result<()> {
    match found {
        Some(existing) if !existing.same_as(&credential) => Err(Error::AmbiguousCredential),
        Some(_) => Ok(()),
        None => {
            *found = Some(credential);
            Ok(())
        }
    }
}

fn parse_authorization(value: &str) -> Result<FoundCredential<'_>> {
    let (scheme, rest) = match value.find(|c: char| c.is_ascii_whitespace()) {
        Some(at) => (&value[..at], value[at..].trim()),
        None => (value, ""),
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(Error::CredentialMissing);
        }
        return Ok(FoundCredential::Key(Text::Borrowed(rest)));
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
        return Ok(FoundCredential::Key(Text::Owned(Zeroizing::new(
            key.to_owned(),
        ))));
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
    fn a_credential_is_borrowed_from_the_header_bytes() {
        let value = b"Bearer kw_abc ".to_vec();
        let headers: [(&[u8], &[u8]); 2] = [(b"x-other", b"\xff\xfe"), (b"Authorization", &value)];
        let found = extract_credential_bytes(headers).unwrap();
        let FoundCredential::Key(Text::Borrowed(key)) = found else {
            panic!("the key was copied, not borrowed");
        };
        assert_eq!(key, "kw_abc");
        let inside = value.as_ptr_range();
        assert!(
            inside.contains(&key.as_ptr()),
            "the key points into the header value"
        );
    }

    #[test]
    fn a_credential_value_not_utf8_is_read_with_replacement_characters() {
        let headers: [(&[u8], &[u8]); 2] = [
            (b"X-Api-Token-Id", b"abc"),
            (b"x-api-token-secret-key", b"s\xffe"),
        ];
        let found = extract_credential_bytes(headers).unwrap();
        let FoundCredential::Pair {
            id: Text::Owned(id),
            secret: Text::Owned(secret),
        } = found
        else {
            panic!("expected an owned pair");
        };
        assert_eq!((id.as_str(), secret.as_str()), ("abc", "s\u{fffd}e"));
        let ambiguous: [(&[u8], &[u8]); 2] = [(b"x-api-key", b"k\xff"), (b"x-api-key", b"k")];
        assert!(matches!(
            extract_credential_bytes(ambiguous),
            Err(Error::AmbiguousCredential)
        ));
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
