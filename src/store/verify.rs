//! The hot path. A warm verify: two atomic loads checking the sync file and the table
//! generation, a keyed BLAKE3 of the id and secret, a probe of the shared verify table, the
//! key's record (read in place from the table for the C ABI, [`Store::verify_request_with`];
//! decoded, through this process's cache, for the Rust [`Verdict`]), a constant-time digest
//! compare, the owner
//! check (one more atomic load while no owner is restricted; see `owners`), and a usage count
//! in the table's shared usage cell. No lock another process could hold, no redb
//! transaction, no system call, no commit.
//!
//! The table is keyed by the digest of id and secret, so an unknown id and a wrong secret are
//! the same miss, doing the same work: they cannot be told apart by timing.

use std::sync::Arc;

use super::Store;
use super::engine::{Engine, MAX_QUEUED_REFUSALS};
use super::key_view::{KeyFacts, KeyRef, VerdictRef};
use super::legacy::PendingUpgrade;
use super::owners::OwnerRule;
use super::rate_limits::RateCheck;
use super::table_sync::{TableRef, TableView};
use crate::clock::Timestamp;
use crate::credential::{Credential, find_credential};
use crate::error::Result;
use crate::key_format::{KeyId, KeyParts, Secret, parse_key_parts};
use crate::legacy;
use crate::rate_limit::RateStatus;
use crate::schema::{KeyInfo, StoredKey};
use crate::table::{Lookup, RecordBuffer, Slots};
use crate::verdict::{HttpVerdict, Reason, Verdict};

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
    /// A dry run: the full verdict, but no use, refusal or last-used time is counted, no
    /// credit is spent and no rate taken (a limited key is `VALID` if the credits available
    /// now cover the cost, `USAGE_EXCEEDED` otherwise; a rate-limited one `RATE_LIMITED` if
    /// a request now would be refused).
    pub dry_run: bool,
}

impl<'a> VerifyRequest<'a> {
    /// A request for a full key with required scopes.
    pub fn key(key: &'a str, scopes: &'a [&'a str]) -> VerifyRequest<'a> {
        VerifyRequest {
            credential: Presented::Key(key),
            scopes,
            cost: None,
            at: None,
            dry_run: false,
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
            dry_run: false,
        })
    }

    /// Verifies a credential taken from request headers.
    pub fn verify_credential(&self, credential: &Credential, scopes: &[&str]) -> Result<Verdict> {
        let presented = match credential {
            Credential::Key(key) => Presented::Key(key),
            Credential::Pair { id, secret } => Presented::Pair { id, secret },
        };
        self.verify_presented(presented, scopes)
    }

    fn verify_presented(&self, presented: Presented<'_>, scopes: &[&str]) -> Result<Verdict> {
        self.verify_request(&VerifyRequest {
            credential: presented,
            scopes,
            cost: None,
            at: None,
            dry_run: false,
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
        let credential = find_credential(headers)?;
        self.verify_presented(credential.presented(), scopes)
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
        match find_credential(headers) {
            Ok(credential) => self
                .verify_presented(credential.presented(), scopes)
                .map(HttpVerdict::Checked),
            Err(error) => Ok(HttpVerdict::NoCredential(error.code())),
        }
    }

    /// [`Store::verify_request`] answering through `answer` with a verdict whose key fields
    /// are read in place from the shared table: no record is decoded or cached for a key
    /// the table holds (what the C ABI's verifies use; the same checks, counts and answers).
    /// Keys the table cannot answer for (in doubt, legacy, malformed) take the decoding path.
    pub(crate) fn verify_request_with<R, F>(
        &self,
        request: &VerifyRequest<'_>,
        answer: F,
    ) -> Result<R>
    where
        F: FnOnce(&VerdictRef<'_>) -> R,
    {
        let engine = self.engine()?;
        match engine.verify_in_place(request, answer)? {
            Ok(answered) => Ok(answered),
            Err(answer) => {
                let verdict = self.verify_request(request)?;
                Ok(answer(&verdict.as_ref()))
            }
        }
    }

    /// Verifies with every option (cost, time, dry run).
    pub fn verify_request(&self, request: &VerifyRequest<'_>) -> Result<Verdict> {
        let engine = self.engine()?;
        let (verdict, upgrade) = engine.verify(request)?;
        if let Some(upgrade) = upgrade {
            // The verdict stands whatever happens to the upgrade: a store that cannot be
            // written now (read-only, busy) upgrades the key on a later use.
            let _ = self.upgrade_legacy(&engine, &upgrade);
        }
        Ok(verdict)
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

    pub(super) fn verify(
        &self,
        request: &VerifyRequest<'_>,
    ) -> Result<(Verdict, Option<PendingUpgrade>)> {
        // The route's scopes come from the application: a bad one is its error, whatever the
        // client sent.
        super::manage::check_scopes(request.scopes)?;
        let Some((id, secret, presented_env)) = self.parse_presented(request.credential) else {
            if let Presented::Key(text) = request.credential {
                return self.verify_legacy(text, request);
            }
            return Ok((Verdict::refused(Reason::Malformed), None));
        };
        self.ensure_fresh()?;
        let digest = self.pepper.digest(&id, &secret);
        drop(secret);
        let (now, now_ns) = self.request_time(request);

        let mut view = self.current_table()?;
        let found = self.find_digest(&mut view, &digest)?;
        let (info, slots, counter) = match found {
            Found::Table { info, slots, cell } => (info, slots, Counter::Shared(&view, cell)),
            Found::Nothing => return Ok((self.unmatched(id, request.dry_run), None)),
            Found::InDoubt => match self.read_key(&id)? {
                Some((stored, slot)) if stored.digest_hash()? == digest => {
                    // Counted in the key's shared cell all the same, so a verifier killed
                    // before its next flush loses nothing (process memory only for a key the
                    // table does not hold yet).
                    let counter = match view.table.cell_for_digest(digest.as_bytes()) {
                        Some(cell) => Counter::Shared(&view, cell),
                        None => Counter::Local,
                    };
                    (Arc::new(stored.info), slot, counter)
                }
                _ => return Ok((self.unmatched(id, request.dry_run), None)),
            },
            // Only the legacy path answers with a record from redb.
            Found::Redb(..) => return Ok((self.unmatched(id, request.dry_run), None)),
        };
        let verdict = self.conclude(
            info,
            slots,
            counter,
            id,
            presented_env,
            request,
            now,
            now_ns,
        )?;
        Ok((verdict, None))
    }

    /// [`Engine::verify`] for a key the shared table holds, judged from its record read in
    /// place and answered through `answer`; `Ok(Err(answer))` (nothing done, nothing
    /// counted) for every other case, which the decoding path answers.
    fn verify_in_place<R, F>(&self, request: &VerifyRequest<'_>, answer: F) -> Result<Result<R, F>>
    where
        F: FnOnce(&VerdictRef<'_>) -> R,
    {
        super::manage::check_scopes(request.scopes)?;
        let Some((id, secret, presented_env)) = self.parse_presented(request.credential) else {
            return Ok(Err(answer));
        };
        self.ensure_fresh()?;
        let digest = self.pepper.digest(&id, &secret);
        drop(secret);
        let (now, now_ns) = self.request_time(request);
        let mut view = self.current_table()?;
        loop {
            match view.table.lookup(digest.as_bytes()) {
                Lookup::Found { record_ref } => {
                    let mut buffer = RecordBuffer::new();
                    let Some(record) = view.table.view_record(record_ref, &mut buffer) else {
                        // A damaged record: the decoding path reports it and asks redb.
                        return Ok(Err(answer));
                    };
                    // The constant-time digest compare: the slot holds only 16 bytes of it.
                    if blake3::Hash::from_bytes(*record.digest) != digest {
                        let refused = self.unmatched(id, request.dry_run);
                        return Ok(Ok(answer(&refused.as_ref())));
                    }
                    let counter = Counter::Shared(&view, record.usage_cell);
                    let (reason, rate, _) = self.decide(
                        &record,
                        record.slots,
                        counter,
                        id,
                        presented_env,
                        request,
                        now,
                        now_ns,
                    )?;
                    return Ok(Ok(answer(&VerdictRef {
                        reason,
                        key: (reason != Reason::NotFound).then_some(KeyRef::View(&record)),
                        rate,
                    })));
                }
                Lookup::InDoubt => return Ok(Err(answer)),
                Lookup::Missing => {
                    // As in `find_digest`: a miss counts only if the generation stayed.
                    let current = self.current_table()?;
                    if current.same_as(&view) {
                        let refused = self.unmatched(id, request.dry_run);
                        return Ok(Ok(answer(&refused.as_ref())));
                    }
                    view = current;
                }
            }
        }
    }

    /// Looks a digest up in the shared table (remapping if the generation changed while a
    /// miss was read).
    #[inline]
    fn find_digest(&self, view: &mut TableRef, digest: &blake3::Hash) -> Result<Found> {
        loop {
            match view.table.lookup(digest.as_bytes()) {
                // The constant-time digest compare: the slot holds only 16 bytes of it.
                Lookup::Found { record_ref } => {
                    return Ok(view.with_record(record_ref, |record| match record {
                        Some(record) if record.digest == *digest => Found::Table {
                            info: Arc::clone(&record.info),
                            slots: record.slots,
                            cell: record.usage_cell,
                        },
                        Some(_) => Found::Nothing,
                        // A damaged record: redb knows.
                        None => Found::InDoubt,
                    }));
                }
                Lookup::InDoubt => return Ok(Found::InDoubt),
                Lookup::Missing => {
                    // A miss is trusted only if the mapping stayed the current generation
                    // while it was read (a table replaced or truncated meanwhile reads as
                    // empty).
                    let current = self.current_table()?;
                    if current.same_as(view) {
                        return Ok(Found::Nothing);
                    }
                    *view = current;
                }
            }
        }
    }

    /// A text that is not a keyward key: `MALFORMED` unless the store holds keys of a legacy
    /// scheme the text's shape fits (one atomic load for a store without any). Then the
    /// upgraded digest of each candidate, then its wrapped legacy digest, looked up like a
    /// native digest: a wrong or unknown key does the same work whichever key it resembles.
    fn verify_legacy(
        &self,
        text: &str,
        request: &VerifyRequest<'_>,
    ) -> Result<(Verdict, Option<PendingUpgrade>)> {
        let malformed = || Ok((Verdict::refused(Reason::Malformed), None));
        if text.len() > MAX_PRESENTED_LEN {
            return malformed();
        }
        self.ensure_fresh()?;
        let mut view = self.current_table()?;
        let enabled = view.table.legacy_schemes();
        if enabled == 0 {
            return malformed();
        }
        let (candidates, count) = legacy::candidates(text, enabled);
        if count == 0 {
            return malformed();
        }
        let candidates = &candidates[..count];
        let (now, now_ns) = self.request_time(request);
        let mut matched = None;
        'passes: for upgraded in [true, false] {
            for (index, candidate) in candidates.iter().flatten().enumerate() {
                let digest = if upgraded {
                    // Schemes hashing the same text share one upgraded digest.
                    if candidates[..index]
                        .iter()
                        .flatten()
                        .any(|c| c.canonical == candidate.canonical)
                    {
                        continue;
                    }
                    self.pepper.upgraded_digest(candidate.canonical)
                } else {
                    let raw = legacy::hash_presented(candidate.scheme, candidate.canonical);
                    self.pepper.legacy_digest(candidate.scheme, raw.as_bytes())
                };
                let found = match self.find_digest(&mut view, &digest)? {
                    Found::InDoubt => match self.read_legacy_key(&digest)? {
                        Some((stored, slot)) => Found::Redb(Box::new(stored), slot),
                        None => Found::Nothing,
                    },
                    found => found,
                };
                if !matches!(found, Found::Nothing) {
                    matched = Some((found, *candidate, digest, upgraded));
                    break 'passes;
                }
            }
        }
        let not_found = || Ok((Verdict::refused(Reason::NotFound), None));
        let Some((found, candidate, digest, upgraded)) = matched else {
            return not_found();
        };
        let (info, slots, counter) = match found {
            Found::Table { info, slots, cell } => (info, slots, Counter::Shared(&view, cell)),
            Found::Redb(stored, slot) => {
                let counter = match view.table.cell_for_digest(digest.as_bytes()) {
                    Some(cell) => Counter::Shared(&view, cell),
                    None => Counter::Local,
                };
                (Arc::new(stored.info), slot, counter)
            }
            Found::Nothing | Found::InDoubt => return not_found(),
        };
        // Sanctum's `<id>|<token>`: the id must be this key's (as Sanctum checks it).
        if let Some(source_id) = candidate.source_id {
            let same = info.legacy.as_ref().is_some_and(|origin| {
                origin.scheme == candidate.scheme
                    && legacy::legacy_key_id(origin.scheme, source_id).as_str() == info.id
            });
            if !same {
                return not_found();
            }
        }
        let Ok(id) = KeyId::parse(&info.id) else {
            return not_found();
        };
        let verdict = self.conclude(info, slots, counter, id, None, request, now, now_ns)?;
        let upgrade =
            (!upgraded && verdict.reason == Reason::Valid && !request.dry_run).then(|| {
                PendingUpgrade {
                    id,
                    from: digest,
                    to: self.pepper.upgraded_digest(candidate.canonical),
                }
            });
        Ok((verdict, upgrade))
    }

    /// Judges a key whose digest matched, spends its credits and counts the verify.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn conclude(
        &self,
        info: Arc<KeyInfo>,
        slots: Slots,
        counter: Counter<'_>,
        id: KeyId,
        presented_env: Option<Option<&str>>,
        request: &VerifyRequest<'_>,
        now: Timestamp,
        now_ns: i64,
    ) -> Result<Verdict> {
        let (reason, rate, rule) = self.decide(
            &*info,
            slots,
            counter,
            id,
            presented_env,
            request,
            now,
            now_ns,
        )?;
        if reason == Reason::NotFound {
            return Ok(Verdict::refused(Reason::NotFound));
        }
        // The verdict reports the effective scopes (the key's own ∩ its owner's).
        let info = match rule.as_deref().and_then(|rule| rule.effective(&info)) {
            Some(narrowed) => Arc::new(narrowed),
            None => info,
        };
        Ok(Verdict {
            reason,
            key: Some(info),
            rate,
        })
    }

    /// The checks of a key whose digest matched, decoded or read in place: the owner rule,
    /// [`judge`](Engine::judge), then [`admit`](Engine::admit) (rate, credits), and the
    /// count. `NOT_FOUND` (another env tag) carries no key.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn decide<K: KeyFacts + ?Sized>(
        &self,
        info: &K,
        slots: Slots,
        counter: Counter<'_>,
        id: KeyId,
        presented_env: Option<Option<&str>>,
        request: &VerifyRequest<'_>,
        now: Timestamp,
        now_ns: i64,
    ) -> Result<(Reason, Option<RateStatus>, Option<Arc<OwnerRule>>)> {
        // Owner controls: nothing more than two atomic loads unless some owner is restricted.
        let rule = self.owner_rule(info.owner())?;
        let judged = self.judge(info, rule.as_deref(), presented_env, request, now);
        let (reason, rate) = match judged {
            Judged::Done(Reason::Valid) => {
                self.admit(&id, info, slots, None, now, now_ns, request.dry_run)?
            }
            Judged::SpendCredits(cost) => {
                self.admit(&id, info, slots, Some(cost), now, now_ns, request.dry_run)?
            }
            Judged::Done(reason) => (reason, None),
        };
        if !request.dry_run {
            // Right id and secret under another env tag: not this key, but counted against it.
            self.count(&counter, id, reason == Reason::Valid, now);
        }
        Ok((reason, rate, rule))
    }

    /// The request's time, read once: milliseconds for expiry and usage, nanoseconds for
    /// rate limits.
    #[inline]
    fn request_time(&self, request: &VerifyRequest<'_>) -> (Timestamp, i64) {
        let now_ns = match request.at {
            Some(at) => at.as_millis().saturating_mul(1_000_000),
            None => self.clock.now_nanos(),
        };
        (Timestamp::from_millis(now_ns.div_euclid(1_000_000)), now_ns)
    }

    /// Counts a verify of a known key: in the shared table's usage cell, or in this
    /// process's memory when the key was answered from redb.
    #[inline]
    fn count(&self, counter: &Counter<'_>, id: KeyId, accepted: bool, now: Timestamp) {
        if let Counter::Shared(view, cell) = counter {
            let counted = if accepted {
                view.table.count_use(*cell, now)
            } else {
                view.table.count_refusal(*cell)
            };
            if counted {
                return;
            }
        }
        let mut local = self.dirty.lock();
        let pending = local.entry(id).or_default();
        if accepted {
            pending.record_use(now);
        } else {
            pending.refused += 1;
        }
    }

    /// Judges a key whose id and secret are right.
    #[inline]
    fn judge<K: KeyFacts + ?Sized>(
        &self,
        info: &K,
        owner: Option<&OwnerRule>,
        presented_env: Option<Option<&str>>,
        request: &VerifyRequest<'_>,
        now: Timestamp,
    ) -> Judged {
        if presented_env.is_some_and(|env| env != info.env()) {
            Judged::Done(Reason::NotFound)
        } else if info.revoked() {
            Judged::Done(Reason::Revoked)
        } else if info.expires_at().is_some_and(|e| now.as_millis() >= e) {
            Judged::Done(Reason::Expired)
        } else if owner.is_some_and(|o| o.suspended) {
            Judged::Done(Reason::OwnerSuspended)
        } else if !request.scopes.is_empty()
            && (!info.has_scopes(request.scopes)
                || owner.is_some_and(|o| !request.scopes.iter().all(|s| o.allows(s))))
        {
            // The effective scopes: the key's own ∩ its owner's allowed scopes.
            Judged::Done(Reason::InsufficientScope)
        } else if let Some(terms) = info.credits() {
            Judged::SpendCredits(request.cost.unwrap_or(terms.cost))
        } else {
            Judged::Done(Reason::Valid)
        }
    }

    /// The last checks of a key that passed every other one: its own and its owner's rate
    /// limits, then (`cost` given) its credits. Rate first, so a rate-limited request spends no
    /// credit; a request refused for its credits hands the rate units back.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn admit<K: KeyFacts + ?Sized>(
        &self,
        id: &KeyId,
        info: &K,
        slots: Slots,
        cost: Option<u32>,
        now: Timestamp,
        now_ns: i64,
        dry_run: bool,
    ) -> Result<(Reason, Option<RateStatus>)> {
        let (status, undo) =
            match self.check_rate(info, slots.rate, now_ns.max(0) as u64, dry_run)? {
                RateCheck::Unlimited => (None, None),
                RateCheck::Limited(status) => return Ok((Reason::RateLimited, Some(status))),
                RateCheck::Passed(status, undo) => (Some(status), Some(undo)),
            };
        let Some(cost) = cost else {
            return Ok((Reason::Valid, status));
        };
        let terms = info.credits().expect("limited keys have credit terms");
        let spent = match slots.credit {
            Some(slot) if dry_run => self.credits_cover(id, slot, &terms, cost, now)?,
            Some(slot) => self.spend_credits(id, slot, &terms, cost, now)?,
            None => false,
        };
        if spent {
            return Ok((Reason::Valid, status));
        }
        if let Some(undo) = undo {
            self.undo_rate(undo);
        }
        // The status read before the hand-back would be off by one: none is reported.
        Ok((Reason::UsageExceeded, None))
    }

    /// An id whose presented secret matched no key: `NOT_FOUND`, and the id is queued so
    /// the flush can count a refusal if the key exists. The same work whether the id is
    /// unknown or its secret wrong. A dry run queues nothing (it counts no refusal).
    #[inline]
    fn unmatched(&self, id: KeyId, dry_run: bool) -> Verdict {
        if dry_run {
            return Verdict::refused(Reason::NotFound);
        }
        let mut queue = self.unmatched.lock();
        if queue.len() < MAX_QUEUED_REFUSALS {
            queue.push(id);
        }
        Verdict::refused(Reason::NotFound)
    }
}

enum Found {
    Table {
        info: Arc<KeyInfo>,
        slots: Slots,
        cell: u32,
    },
    /// A legacy key answered from redb (its slot was in doubt).
    Redb(Box<StoredKey>, Slots),
    Nothing,
    InDoubt,
}

enum Counter<'v> {
    Shared(&'v TableView, u32),
    Local,
}

enum Judged {
    Done(Reason),
    SpendCredits(u32),
}
