//! The answer to a verify: a reason code and, when the key is known, its public fields.

use std::sync::Arc;

use crate::rate_limit::RateStatus;
use crate::schema::KeyInfo;

/// Why a key was accepted or refused. Numeric values are stable (C ABI `kw_reason`) and new
/// reasons are only appended (hence `#[non_exhaustive]`: a `match` outside this crate needs a
/// wildcard arm).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The key is valid for this request.
    Valid = 0,
    /// The text is not a well-formed key (refused before any lookup).
    Malformed = 1,
    /// No key matches (unknown id or wrong secret: the two are not told apart).
    NotFound = 2,
    /// The key was revoked.
    Revoked = 3,
    /// The key has expired (including a rotated key past its grace period).
    Expired = 4,
    /// The key lacks a scope the route requires.
    InsufficientScope = 5,
    /// The key's usage credits are exhausted.
    UsageExceeded = 6,
    /// The key's owner is suspended (`Store::suspend_owner`): every key of it is refused.
    OwnerSuspended = 7,
    /// The key's or its owner's rate limit refuses the request for now
    /// ([`Verdict::rate`] says when to retry).
    RateLimited = 8,
}

impl Reason {
    /// Stable upper-case code, e.g. `"INSUFFICIENT_SCOPE"`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Valid => "VALID",
            Reason::Malformed => "MALFORMED",
            Reason::NotFound => "NOT_FOUND",
            Reason::Revoked => "REVOKED",
            Reason::Expired => "EXPIRED",
            Reason::InsufficientScope => "INSUFFICIENT_SCOPE",
            Reason::UsageExceeded => "USAGE_EXCEEDED",
            Reason::OwnerSuspended => "OWNER_SUSPENDED",
            Reason::RateLimited => "RATE_LIMITED",
        }
    }

    /// Parses a code produced by [`Reason::code`].
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.code() == code)
    }

    /// The HTTP status a server should answer: 200, 401, 403 (a valid key the route does
    /// not admit: a missing scope, exhausted credits, a suspended owner) or 429 (`RATE_LIMITED`).
    pub fn http_status(self) -> u16 {
        match self {
            Reason::Valid => 200,
            Reason::Malformed | Reason::NotFound | Reason::Revoked | Reason::Expired => 401,
            Reason::InsufficientScope | Reason::UsageExceeded | Reason::OwnerSuspended => 403,
            Reason::RateLimited => 429,
        }
    }

    /// A short human message.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Valid => "the API key is valid",
            Reason::Malformed => "the API key is malformed",
            Reason::NotFound => "the API key is not recognised",
            Reason::Revoked => "the API key has been revoked",
            Reason::Expired => "the API key has expired",
            Reason::InsufficientScope => "the API key lacks a scope this route requires",
            Reason::UsageExceeded => "the API key has used up its credits",
            Reason::OwnerSuspended => "the account that owns the API key is suspended",
            Reason::RateLimited => "too many requests with this API key; retry later",
        }
    }

    /// Every reason, in numeric order (7 is reserved for another branch's reason).
    pub const ALL: &'static [Reason] = &[
        Reason::Valid,
        Reason::Malformed,
        Reason::NotFound,
        Reason::Revoked,
        Reason::Expired,
        Reason::InsufficientScope,
        Reason::UsageExceeded,
        Reason::OwnerSuspended,
        Reason::RateLimited,
    ];
}

/// The result of a verify.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Accepted, or why not.
    pub reason: Reason,
    /// The key's public fields, when its secret was right (never for `NOT_FOUND`/`MALFORMED`).
    pub key: Option<Arc<KeyInfo>>,
    /// For a key that (or whose owner) is rate-limited and passed every other check (revoked,
    /// expired, scopes; not reported with `USAGE_EXCEEDED`): where it stands against the tighter
    /// limit — for `RATE_LIMITED`, the limit that refused and when to retry. What the `RateLimit`, `RateLimit-Policy` and `Retry-After` fields say.
    pub rate: Option<RateStatus>,
}

impl Verdict {
    /// Whether the key was accepted.
    pub fn is_valid(&self) -> bool {
        self.reason == Reason::Valid
    }

    /// A refusal that carries no key details (malformed text, no match).
    pub fn refused(reason: Reason) -> Verdict {
        Verdict {
            reason,
            key: None,
            rate: None,
        }
    }

    /// For `RATE_LIMITED`: milliseconds until the next request would be accepted.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.rate.and_then(|r| r.retry_after_ms)
    }

    /// The response header fields a server should send with this verdict: `RateLimit-Policy`
    /// and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) for a rate-limited key, plus
    /// `Retry-After` (seconds) for `RATE_LIMITED`. Empty for keys without a rate limit.
    pub fn rate_headers(&self) -> Vec<(&'static str, String)> {
        let Some(rate) = &self.rate else {
            return Vec::new();
        };
        let mut headers = vec![
            ("RateLimit-Policy", rate.policy_header()),
            ("RateLimit", rate.header()),
        ];
        if let Some(secs) = rate.retry_after_secs() {
            headers.push(("Retry-After", secs.to_string()));
        }
        headers
    }
}

/// The answer to one HTTP request ([`crate::Store::verify_http`]): the verdict of the key its
/// headers carry, or why no key could be read from them (no credential, an unsupported
/// `Authorization` scheme, bad base64, half an id/secret pair, several credentials, an
/// over-long header). Either way a 401/403 answer, never an error that a framework would turn
/// into a 500.
#[derive(Debug, Clone)]
pub enum HttpVerdict {
    /// A credential was found and checked.
    Checked(Verdict),
    /// No usable credential in the headers; the code says why (e.g. `CREDENTIAL_MISSING`).
    NoCredential(crate::ErrorCode),
}

impl HttpVerdict {
    /// Whether the request may go on.
    pub fn is_valid(&self) -> bool {
        matches!(self, HttpVerdict::Checked(v) if v.is_valid())
    }

    /// The HTTP status to answer: 200, 401, 403 or 429.
    pub fn http_status(&self) -> u16 {
        match self {
            HttpVerdict::Checked(v) => v.reason.http_status(),
            HttpVerdict::NoCredential(_) => 401,
        }
    }

    /// The stable code for the response body, e.g. `"VALID"`, `"REVOKED"`,
    /// `"CREDENTIAL_MISSING"`.
    pub fn code(&self) -> &'static str {
        match self {
            HttpVerdict::Checked(v) => v.reason.code(),
            HttpVerdict::NoCredential(code) => code.name(),
        }
    }

    /// The key's public fields, when its secret was right.
    pub fn key(&self) -> Option<&KeyInfo> {
        match self {
            HttpVerdict::Checked(v) => v.key.as_deref(),
            HttpVerdict::NoCredential(_) => None,
        }
    }
}
