//! The hot path. A warm verify: one atomic load of the shared change counter, a keyed BLAKE3
//! of the id and secret, one hash-map lookup under a read lock, a constant-time digest
//! compare, and a usage count in memory. No redb transaction, no system call, no commit.
//!
//! An unknown id costs the same hash and compare as a wrong secret: the digest is computed
//! before the lookup and compared against a dummy when nothing is found.

use std::sync::Arc;

use super::Store;
use super::engine::Engine;
use crate::clock::Timestamp;
use crate::credential::{Credential, extract_credential};
use crate::error::Result;
use crate::key_format::{KeyId, KeyParts, Secret, parse_key_parts};
use crate::verdict::{Reason, Verdict};

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

static DUMMY_DIGEST: [u8; 32] = [0u8; 32];

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
    /// (missing credential, unsupported scheme, bad base64, half a pair) are errors; map them
    /// to HTTP 401.
    pub fn verify_headers<'h, I>(&self, headers: I, scopes: &[&str]) -> Result<Verdict>
    where
        I: IntoIterator<Item = (&'h str, &'h str)>,
    {
        let credential = extract_credential(headers)?;
        self.verify_credential(&credential, scopes)
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
        let Some((id, secret, presented_env)) = self.parse_presented(request.credential) else {
            return Ok(Verdict::refused(Reason::Malformed));
        };
        self.ensure_fresh()?;
        let digest = self.pepper.digest(&id, &secret);
        drop(secret);

        let entry = match self.index.get(&id) {
            (Some(entry), _) => Some(entry),
            (None, true) => None,
            (None, false) => self.load_into_index(&id)?,
        };
        let Some(entry) = entry else {
            // Same constant-time compare as a wrong secret costs.
            let _ = std::hint::black_box(digest == blake3::Hash::from_bytes(DUMMY_DIGEST));
            return Ok(Verdict::refused(Reason::NotFound));
        };
        let env_matches = presented_env.is_none_or(|env| env == entry.info.env.as_deref());
        if digest != entry.digest || !env_matches {
            self.note_refusal(&id, &entry.usage);
            return Ok(Verdict::refused(Reason::NotFound));
        }

        let info = &entry.info;
        let now = request.at.unwrap_or_else(|| self.now());
        let reason = if info.revoked_at.is_some() {
            Reason::Revoked
        } else if info.expires_at.is_some_and(|e| now.as_millis() >= e) {
            Reason::Expired
        } else if !info.has_scopes(request.scopes) {
            Reason::InsufficientScope
        } else if let (Some(slot), Some(terms)) = (entry.credit_slot, info.credits) {
            let cost = request.cost.unwrap_or(terms.cost);
            if self.spend_credits(&id, slot, &terms, cost, now)? {
                Reason::Valid
            } else {
                Reason::UsageExceeded
            }
        } else {
            Reason::Valid
        };

        if reason == Reason::Valid {
            if entry.usage.record_use(now) {
                self.dirty.lock().push((id, entry.usage.clone()));
            }
        } else {
            self.note_refusal(&id, &entry.usage);
        }
        Ok(Verdict {
            reason,
            key: Some(Arc::clone(&entry.info)),
        })
    }

    fn note_refusal(&self, id: &KeyId, usage: &Arc<crate::usage::UsageCell>) {
        if usage.record_refusal() {
            self.dirty.lock().push((*id, usage.clone()));
        }
    }

    /// Cache mode only: looks a key up in the database after an index miss.
    #[cold]
    fn load_into_index(&self, id: &KeyId) -> Result<Option<Arc<crate::verify_index::IndexEntry>>> {
        let Some((stored, slot)) = self.read_key(id)? else {
            return Ok(None);
        };
        let entry = self.entry_for(&stored, slot)?;
        self.index.upsert(*id, entry, true);
        Ok(self.index.get(id).0)
    }
}
