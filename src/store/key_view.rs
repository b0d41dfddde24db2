//! A verify's view of a key, without decoding it: what the checks read ([`KeyFacts`]) and what
//! a verdict reports ([`VerdictRef`], [`KeyRef`]), from either a decoded [`KeyInfo`] or a
//! record read in place from the shared table ([`RecordView`]).
//!
//! The C ABI's verifies answer through [`VerdictRef`]: the record is copied out of the shared
//! table into a stack buffer and read where it lies, so a worker neither allocates nor keeps a
//! decoded copy of every key it sees (the Rust [`Verdict`], which owns a `KeyInfo`, still
//! decodes, through the process's record cache).

use crate::rate_limit::{RateLimit, RateStatus};
use crate::schema::{CreditTerms, KeyInfo};
use crate::table::RecordView;
use crate::verdict::{Reason, Verdict};

/// What the checks of a verify read of a key.
pub(crate) trait KeyFacts {
    /// The env tag.
    fn env(&self) -> Option<&str>;
    /// Whether it is revoked.
    fn revoked(&self) -> bool;
    /// Expiry, ms since the epoch.
    fn expires_at(&self) -> Option<i64>;
    /// The owner.
    fn owner(&self) -> &str;
    /// Whether it holds every scope in `required`.
    fn has_scopes(&self, required: &[&str]) -> bool;
    /// Its credit terms (limited keys).
    fn credits(&self) -> Option<CreditTerms>;
    /// Its own rate limit.
    fn rate_limit(&self) -> Option<RateLimit>;
}

impl KeyFacts for KeyInfo {
    #[inline]
    fn env(&self) -> Option<&str> {
        self.env.as_deref()
    }
    #[inline]
    fn revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
    #[inline]
    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
    #[inline]
    fn owner(&self) -> &str {
        &self.owner
    }
    #[inline]
    fn has_scopes(&self, required: &[&str]) -> bool {
        KeyInfo::has_scopes(self, required)
    }
    #[inline]
    fn credits(&self) -> Option<CreditTerms> {
        self.credits
    }
    #[inline]
    fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }
}

impl KeyFacts for RecordView<'_> {
    #[inline]
    fn env(&self) -> Option<&str> {
        self.env
    }
    #[inline]
    fn revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
    #[inline]
    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
    #[inline]
    fn owner(&self) -> &str {
        self.owner
    }
    #[inline]
    fn has_scopes(&self, required: &[&str]) -> bool {
        RecordView::has_scopes(self, required)
    }
    #[inline]
    fn credits(&self) -> Option<CreditTerms> {
        self.credits
    }
    #[inline]
    fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }
}

/// A verdict whose key fields are borrowed from where the verify read them.
pub(crate) struct VerdictRef<'a> {
    /// Accepted, or why not.
    pub reason: Reason,
    /// The key's public fields, when its secret was right (as [`Verdict::key`]).
    pub key: Option<KeyRef<'a>>,
    /// Rate-limit state (as [`Verdict::rate`]).
    pub rate: Option<RateStatus>,
}

impl Verdict {
    /// This verdict as a [`VerdictRef`].
    pub(crate) fn as_ref(&self) -> VerdictRef<'_> {
        VerdictRef {
            reason: self.reason,
            key: self.key.as_deref().map(KeyRef::Info),
            rate: self.rate,
        }
    }
}

/// A key's public fields, decoded or read in place.
#[derive(Clone, Copy)]
pub(crate) enum KeyRef<'a> {
    /// A decoded record.
    Info(&'a KeyInfo),
    /// A record read in place from the shared table.
    View(&'a RecordView<'a>),
}

impl<'a> KeyRef<'a> {
    /// The public id.
    pub(crate) fn id(self) -> &'a str {
        match self {
            KeyRef::Info(info) => &info.id,
            KeyRef::View(view) => view.id,
        }
    }

    /// The env tag.
    pub(crate) fn env(self) -> Option<&'a str> {
        match self {
            KeyRef::Info(info) => info.env.as_deref(),
            KeyRef::View(view) => view.env,
        }
    }

    /// The owner.
    pub(crate) fn owner(self) -> &'a str {
        match self {
            KeyRef::Info(info) => &info.owner,
            KeyRef::View(view) => view.owner,
        }
    }

    /// Creation time, ms since the epoch.
    pub(crate) fn created_at(self) -> i64 {
        match self {
            KeyRef::Info(info) => info.created_at,
            KeyRef::View(view) => view.created_at,
        }
    }

    /// Expiry, ms since the epoch.
    pub(crate) fn expires_at(self) -> Option<i64> {
        match self {
            KeyRef::Info(info) => info.expires_at,
            KeyRef::View(view) => view.expires_at,
        }
    }

    /// Whether it has credit terms.
    pub(crate) fn limited(self) -> bool {
        match self {
            KeyRef::Info(info) => info.credits.is_some(),
            KeyRef::View(view) => view.credits.is_some(),
        }
    }

    /// Whether it is revoked.
    pub(crate) fn revoked(self) -> bool {
        match self {
            KeyRef::Info(info) => info.revoked_at.is_some(),
            KeyRef::View(view) => view.revoked_at.is_some(),
        }
    }

    /// Whether a rotation replaced it.
    pub(crate) fn rotated(self) -> bool {
        match self {
            KeyRef::Info(info) => info.rotated_to.is_some(),
            KeyRef::View(view) => view.rotated_to.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::VerdictRef;
    use crate::clock::Timestamp;
    use crate::key_format::{KeyId, Secret, format_key, parse_key};
    use crate::rate_limit::{RateLimit, RateStatus};
    use crate::store::{NewCredits, NewKey, Presented, Store, StoreOptions, VerifyRequest};
    use crate::verdict::Reason;

    /// What a verdict says, owned, to compare the two paths.
    type Said = (
        Reason,
        Option<(String, Option<String>, String, i64, Option<i64>, [bool; 3])>,
        Option<RateStatus>,
    );

    fn said(verdict: &VerdictRef<'_>) -> Said {
        let key = verdict.key.map(|k| {
            (
                k.id().to_owned(),
                k.env().map(str::to_owned),
                k.owner().to_owned(),
                k.created_at(),
                k.expires_at(),
                [k.limited(), k.revoked(), k.rotated()],
            )
        });
        (verdict.reason, key, verdict.rate)
    }

    /// The C ABI's path (records read in place) says what the decoding path says, for every
    /// kind of key and refusal, counts the same way, and decodes no record.
    #[test]
    fn read_in_place_answers_as_the_decoding_path() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            flush_interval: Duration::ZERO,
            ..StoreOptions::default()
        };
        let store = Store::open_unshared(dir.path().join("k.redb"), options).unwrap();
        let now = Timestamp::now().0;
        let new = |owner: &str| NewKey {
            owner: owner.into(),
            name: "in place".into(),
            scopes: vec!["read".into(), "write".into()],
            env: Some("live".into()),
            expires_at: Some(Timestamp(now + 3_600_000)),
            metadata: b"{\"plan\":\"pro\"}".to_vec(),
            ..NewKey::default()
        };
        let plain = store.create(new("acct_plain")).unwrap();
        let revoked = store.create(new("acct_revoked")).unwrap();
        store.revoke(revoked.id(), Some("leaked")).unwrap();
        let limited = store
            .create(NewKey {
                credits: Some(NewCredits {
                    remaining: 2,
                    refill: None,
                    cost: 1,
                }),
                ..new("acct_limited")
            })
            .unwrap();
        let throttled = store
            .create(NewKey {
                rate_limit: Some(RateLimit {
                    rate: 1,
                    period_ms: 60_000,
                    burst: 1,
                }),
                ..new("acct_throttled")
            })
            .unwrap();
        let suspended = store.create(new("acct_suspended")).unwrap();
        store.suspend_owner("acct_suspended", None).unwrap();
        let rotated = store.create(new("acct_rotated")).unwrap();
        let successor = store
            .rotate(rotated.id(), Duration::from_secs(3600))
            .unwrap();
        let parsed = parse_key(plain.key(), None).unwrap();
        let wrong_secret = format_key("kw", Some("live"), &parsed.id, &Secret::generate());
        let unknown = format_key("kw", Some("live"), &KeyId::generate(), &Secret::generate());
        let other_env = format_key("kw", Some("test"), &parsed.id, &parsed.secret);

        let later = Timestamp(now + 7_200_000); // after every key's expiry
        let cases: Vec<(&str, &[&str], Option<Timestamp>, Reason)> = vec![
            (plain.key(), &["read"], None, Reason::Valid),
            (plain.key(), &["admin"], None, Reason::InsufficientScope),
            (plain.key(), &["read"], Some(later), Reason::Expired),
            (revoked.key(), &[], None, Reason::Revoked),
            (limited.key(), &[], None, Reason::Valid),
            (throttled.key(), &[], None, Reason::Valid),
            (suspended.key(), &[], None, Reason::OwnerSuspended),
            (rotated.key(), &[], None, Reason::Valid),
            (successor.key(), &["write"], None, Reason::Valid),
            (&wrong_secret, &[], None, Reason::NotFound),
            (&unknown, &[], None, Reason::NotFound),
            (&other_env, &[], None, Reason::NotFound),
            ("kw_live_not_a_key", &[], None, Reason::Malformed),
        ];
        fn request<'a>(
            key: &'a str,
            scopes: &'a [&'a str],
            at: Option<Timestamp>,
            dry_run: bool,
        ) -> VerifyRequest<'a> {
            VerifyRequest {
                credential: Presented::Key(key),
                scopes,
                cost: None,
                at,
                dry_run,
            }
        }
        // Dry runs change nothing: both paths must say the same of the same state.
        let in_place: Vec<Said> = cases
            .iter()
            .map(|&(key, scopes, at, _)| {
                store
                    .verify_request_with(&request(key, scopes, at, true), said)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            store.stats().unwrap().table.cached_records,
            0,
            "the in-place path decoded a record"
        );
        for (case, in_place) in cases.iter().zip(&in_place) {
            let (key, scopes, at, expected) = *case;
            let decoded = store
                .verify_request(&request(key, scopes, at, true))
                .unwrap();
            assert_eq!(in_place, &said(&decoded.as_ref()), "{expected:?}");
            assert_eq!(in_place.0, expected);
            let refused_unknown = matches!(expected, Reason::Malformed | Reason::NotFound);
            assert_eq!(in_place.1.is_some(), !refused_unknown);
        }
        assert!(store.stats().unwrap().table.cached_records > 0);
        // Both paths reached a key with a rate status and a rotated one.
        assert!(in_place.iter().any(|s| s.2.is_some()));
        assert!(
            in_place
                .iter()
                .any(|s| s.1.as_ref().is_some_and(|k| k.5[2]))
        );

        // Real verifies: credits spent, rate taken, uses counted, by the in-place path.
        let verify = |key: &str| {
            store
                .verify_request_with(&request(key, &[], None, false), |v| v.reason)
                .unwrap()
        };
        assert_eq!(
            [
                verify(limited.key()),
                verify(limited.key()),
                verify(limited.key())
            ],
            [Reason::Valid, Reason::Valid, Reason::UsageExceeded]
        );
        assert_eq!(
            [verify(throttled.key()), verify(throttled.key())],
            [Reason::Valid, Reason::RateLimited]
        );
        for _ in 0..5 {
            assert_eq!(verify(plain.key()), Reason::Valid);
        }
        // The right id and secret under another env tag: a refusal counted against the key.
        assert_eq!(verify(&other_env), Reason::NotFound);
        store.flush().unwrap();
        let usage = store.usage(plain.id()).unwrap();
        assert_eq!((usage.uses, usage.refused), (5, 1));
        let usage = store.usage(limited.id()).unwrap();
        assert_eq!((usage.uses, usage.refused), (2, 1));
    }
}
