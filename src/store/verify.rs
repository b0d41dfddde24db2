//! The hot path. A warm verify: one atomic load of the shared change counter, a keyed BLAKE3
//! of the id and secret, one hash-map lookup under a read lock, a constant-time digest
//! compare, and a usage count in memory. No redb transaction, no system call, no commit.
//!
//! The index is keyed by the digest of id and secret, so an unknown id and a wrong secret are
//! the same miss, doing the same work: they cannot be told apart by timing.

use std::sync::Arc;

use super::Store;
use super::engine::{Engine, MAX_QUEUED_REFUSALS};
use crate::clock::Timestamp;
use crate::credential::{Credential, extract_credential};
use crate::error::Result;
use crate::key_format::{KeyId, KeyParts, Secret, parse_key_parts};
use crate::schema::KeyInfo;
use crate::usage::UsageCell;
use crate::verdict::{HttpVerdict, Reason, Verdict};
use crate::verify_index::IndexEntry;

/// Longest text accepted as a key or secret before it is refused as malformed without
/// further parsing.
pub const MAX_PRESENTED_LEN: usize = 1024;

/// The credential presented to [`Store::verify_request`].
#[derive(Clone, Copy)]
pub enum Presented<'a> {
    /// A full key.
    Key(&'a str),
    /// A public id and a bare secret (or the full key as the secret).
    Pair {
        /// Public id.
        id: &'a str,
        /// Secret.
        secret: &'a str,
    },
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presented::Key(_) => f.write_str("Presented::Key(<redacted>)"),
            Presented::Pair { id, .. } => {
                write!(f, "Presented::Pair {{ id: {id:?}, secret: <redacted> }}")
            }
        }
    }
}

/// A verify with every option.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    /// What the client sent.
    pub credential: Presented<'a>,
    /// Scopes the route requires (all of them).
    pub scopes: &'a [&'a str],
    /// Credits to spend if the key is limited; `None` = the key's own per-verify cost.
    pub cost: Option<u32>,
    /// The time to judge expiry at; `None` = the store's clock.
    pub at: Option<Timestamp>,
}

impl<'a> VerifyRequest<'a> {
    /// A request for a full key with required scopes.
    pub fn key(key: &'a str, scopes: &'a [&'a str]) -> VerifyRequest<'a> {
        VerifyRequest {
            credential: Presented::Key(key),
            scopes,
            cost: None,
            at: None,
        }
    }
}

impl Store {
    /// Verifies a full key against the scopes a route requires.
    ///
    /// An error means the store itself failed (e.g. reading another process's change);
    /// every verdict about the key, including `MALFORMED`, is an `Ok`.
    #[inline]
    pub fn verify(&self, key: &str, scopes: &[&str]) -> Result<Verdict> {
        self.verify_request(&VerifyRequest::key(key, scopes))
    }

    /// Verifies a (public id, secret) pair.
    pub fn verify_pair(&self, id: &str, secret: &str, scopes: &[&str]) -> Result<Verdict> {
        self.verify_request(&VerifyRequest {
            credential: Presented::Pair { id, secret },
            scopes,
            cost: None,
            at: None,
        })
    }

    /// Verifies a credential taken from request headers.
    pub fn verify_credential(&self, credential: &Credential, scopes: &[&str]) -> Result<Verdict> {
        let presented = match credential {
            Credential::Key(key) => Presented::Key(key),
            Credential::Pair { id, secret } => Presented::Pair { id, secret },
        };
        self.verify_request(&VerifyRequest {
            credential: presented,
            scopes,
            cost: None,
            at: None,
        })
    }

    /// Extracts the credential from request headers and verifies it. Header problems
    /// (missing credential, unsupported scheme, bad base64, half a pair, several credentials,
    /// an over-long credential header) are errors of the credential family
    /// ([`crate::ErrorFamily::Credential`]); map them to HTTP 401, or use
    /// [`Store::verify_http`], which answers them as a refused verdict.
    pub fn verify_headers<'h, I>(&self, headers: I, scopes: &[&str]) -> Result<Verdict>
    where
        I: IntoIterator<Item = (&'h str, &'h str)>,
    {
        // The route's scopes are the application's: a bad one is its error before anything
        // the client sent is looked at.
        super::manage::check_scopes(scopes)?;
        let credential = extract_credential(headers)?;
        self.verify_credential(&credential, scopes)
    }

    /// Verifies the credential of an HTTP request the way a server answers it: header problems
    /// (no credential, unsupported scheme, bad base64, half a pair, several credentials, an
    /// over-long header) are a refused [`HttpVerdict`] with HTTP status 401, like a wrong key.
    /// `Err` is left for failures of the store itself (a 500).
    pub fn verify_http<'h, I>(&self, headers: I, scopes: &[&str]) -> Result<HttpVerdict>
    where
        I: IntoIterator<Item = (&'h str, &'h str)>,
    {
        super::manage::check_scopes(scopes)?;
        match extract_credential(headers) {
            Ok(credential) => self
                .verify_credential(&credential, scopes)
                .map(HttpVerdict::Checked),
            Err(error) => Ok(HttpVerdict::NoCredential(error.code())),
        }
    }

    /// Verifies with every option (cost, time).
    pub fn verify_request(&self, request: &VerifyRequest<'_>) -> Result<Verdict> {
        let engine = self.engine()?;
        engine.verify(request)
    }
}

impl Engine {
    /// The id, the secret, and the env tag when a full key was presented (`Some(None)` for a
    /// key without env; `None` for a bare pair, which carries no env).
    fn parse_presented<'a>(
        &self,
        presented: Presented<'a>,
    ) -> Option<(KeyId, Secret, Option<Option<&'a str>>)> {
        match presented {
            Presented::Key(text) => {
                if text.len() > MAX_PRESENTED_LEN {
                    return None;
                }
                let KeyParts {
                    id, secret, env, ..
                } = parse_key_parts(text, Some(&self.prefix)).ok()?;
                Some((id, secret, Some(env)))
            }
            Presented::Pair { id, secret } => {
                if id.len() > MAX_PRESENTED_LEN || secret.len() > MAX_PRESENTED_LEN {
                    return None;
                }
                let id = KeyId::parse(id.trim()).ok()?;
                let secret_text = secret.trim();
                match Secret::parse(secret_text) {
                    Ok(secret) => Some((id, secret, None)),
                    Err(_) => {
                        // The full key sent as the secret: its id must be the one named.
                        let parts = parse_key_parts(secret_text, Some(&self.prefix)).ok()?;
                        (parts.id == id).then_some((id, parts.secret, Some(parts.env)))
                    }
                }
            }
        }
    }

    pub(super) fn verify(&self, request: &VerifyRequest<'_>) -> Result<Verdict> {
        // The route's scopes come from the application: a bad one is its error, whatever the
        // client sent.
        super::manage::check_scopes(request.scopes)?;
        let Some((id, secret, presented_env)) = self.parse_presented(request.credential) else {
            return Ok(Verdict::refused(Reason::Malformed));
        };
        self.ensure_fresh()?;
        let digest = self.pepper.digest(&id, &secret);
        drop(secret);
        let now = request.at.unwrap_or_else(|| self.now());

        let judged = self
            .index
            .with_entry(&digest, |entry, complete| match entry {
                Some(entry) => Lookup::Hit(self.judge(entry, presented_env, request, now)),
                None => Lookup::Miss {
                    definitive: complete,
                },
            });
        let judgement = match judged {
            Lookup::Hit(judgement) => judgement,
            Lookup::Miss { definitive: true } => return Ok(self.unmatched(id)),
            Lookup::Miss { definitive: false } => {
                // Cache mode: the key may exist but not be cached.
                if !self.load_into_index(&id)? {
                    return Ok(self.unmatched(id));
                }
                match self.index.with_entry(&digest, |entry, _| {
                    entry.map(|entry| self.judge(entry, presented_env, request, now))
                }) {
                    Some(judgement) => judgement,
                    None => return Ok(self.unmatched(id)),
                }
            }
        };
        match judgement {
            Judgement::Done(verdict) => Ok(verdict),
            Judgement::SpendCredits {
                info,
                usage,
                slot,
                cost,
            } => {
                let terms = info.credits.expect("limited keys have credit terms");
                let reason = if self.spend_credits(&id, slot, &terms, cost, now)? {
                    if usage.record_use(now) {
                        self.dirty.lock().push((id, usage));
                    }
                    Reason::Valid
                } else {
                    if usage.record_refusal() {
                        self.dirty.lock().push((id, usage));
                    }
                    Reason::UsageExceeded
                };
                Ok(Verdict {
                    reason,
                    key: Some(info),
                })
            }
        }
    }

    /// Judges a key whose id and secret are right (runs under the index's read lock: only
    /// in-memory work).
    #[inline]
    fn judge(
        &self,
        entry: &IndexEntry,
        presented_env: Option<Option<&str>>,
        request: &VerifyRequest<'_>,
        now: Timestamp,
    ) -> Judgement {
        let info = &entry.info;
        let reason = if presented_env.is_some_and(|env| env != info.env.as_deref()) {
            // Right id and secret under another env tag: not this key.
            if entry.usage.record_refusal() {
                self.dirty.lock().push((entry.id, entry.usage.clone()));
            }
            return Judgement::Done(Verdict::refused(Reason::NotFound));
        } else if entry.revoked {
            Reason::Revoked
        } else if entry.expires_at.is_some_and(|e| now.as_millis() >= e) {
            Reason::Expired
        } else if !request.scopes.is_empty() && !info.has_scopes(request.scopes) {
            Reason::InsufficientScope
        } else if let (Some(slot), Some(terms)) = (entry.credit_slot, info.credits) {
            return Judgement::SpendCredits {
                info: Arc::clone(info),
                usage: Arc::clone(&entry.usage),
                slot,
                cost: request.cost.unwrap_or(terms.cost),
            };
        } else {
            Reason::Valid
        };
        let dirtied = if reason == Reason::Valid {
            entry.usage.record_use(now)
        } else {
            entry.usage.record_refusal()
        };
        if dirtied {
            self.dirty.lock().push((entry.id, entry.usage.clone()));
        }
        Judgement::Done(Verdict {
            reason,
            key: Some(Arc::clone(info)),
        })
    }

    /// An id whose presented secret matched no key: `NOT_FOUND`, and the id is queued so
    /// the flush can count a refusal if the key exists. The same work whether the id is
    /// unknown or its secret wrong.
    #[inline]
    fn unmatched(&self, id: KeyId) -> Verdict {
        let mut queue = self.unmatched.lock();
        if queue.len() < MAX_QUEUED_REFUSALS {
            queue.push(id);
        }
        Verdict::refused(Reason::NotFound)
    }

    /// Cache mode only: reads a key after an index miss and caches it. Returns whether the
    /// key exists.
    #[cold]
    fn load_into_index(&self, id: &KeyId) -> Result<bool> {
        let Some((stored, slot)) = self.read_key(id)? else {
            return Ok(false);
        };
        let (digest, entry) = self.entry_for(&stored, slot)?;
        self.index.upsert(digest, entry, true);
        Ok(true)
    }
}

enum Lookup {
    Hit(Judgement),
    Miss { definitive: bool },
}

enum Judgement {
    Done(Verdict),
    SpendCredits {
        info: Arc<KeyInfo>,
        usage: Arc<UsageCell>,
        slot: u32,
        cost: u32,
    },
}
