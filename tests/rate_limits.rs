//! Rate limits per key and per owner (issue 19): the GCRA budget shared by every handle of a
//! host, exact on an injected clock; refusals that consume nothing; dry runs; rotation,
//! update, deletion and slot exhaustion. The multi-process and crash versions are in
//! `tests/multiprocess` (`rate_limit_key`, `rate_limit_owner`, `rate_limit_crash`).

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{new_key, options, temp_store};
use keyward::{
    ErrorCode, KeyUpdate, ManualClock, NewCredits, NewKey, RATE_SLOTS, RateLimit, RateScope,
    Reason, Store, Timestamp, VerifyRequest,
};

fn limit(rate: u64, period_ms: u64, burst: u64) -> RateLimit {
    RateLimit::new(rate, period_ms, burst).unwrap()
}

fn limited_key(owner: &str, limit: Option<RateLimit>) -> NewKey {
    NewKey {
        rate_limit: limit,
        ..new_key(owner, &[])
    }
}

/// `handles` separate handles of one store (each its own mapping of the sync file, as
/// separate processes have) hammer keys on a shared manual clock that moves 1 ms per tick
/// from 0 to `ms` ms, 3 attempts per handle per tick: returns (accepted, CAS retries).
fn hammer(
    path: &std::path::Path,
    clock: &Arc<ManualClock>,
    keys: &[String],
    handles: usize,
    ms: u64,
) -> (u64, u64) {
    let barrier = Arc::new(Barrier::new(handles + 1));
    let workers: Vec<_> = (0..handles)
        .map(|h| {
            let store = Store::open_unshared(path, options(clock)).unwrap();
            let barrier = barrier.clone();
            let keys = keys.to_vec();
            std::thread::spawn(move || {
                let mut accepted = 0u64;
                for tick in 0..=ms {
                    barrier.wait();
                    for attempt in 0..3 {
                        let key = &keys[(h * 3 + attempt + tick as usize) % keys.len()];
                        if store.verify(key, &[]).unwrap().is_valid() {
                            accepted += 1;
                        }
                    }
                    barrier.wait();
                }
                (accepted, store.stats().unwrap().rate_cas_retries)
            })
        })
        .collect();
    for _ in 0..=ms {
        barrier.wait();
        barrier.wait();
        clock.advance(Duration::from_millis(1));
    }
    let mut per_handle = Vec::new();
    let (mut accepted, mut retries) = (0, 0);
    for worker in workers {
        let (a, r) = worker.join().unwrap();
        per_handle.push(a);
        accepted += a;
        retries += r;
    }
    assert!(
        per_handle.iter().all(|&a| a > 0),
        "every handle got some of the budget: {per_handle:?}"
    );
    (accepted, retries)
}

#[test]
fn eight_handles_share_one_key_budget_exactly() {
    let t = temp_store();
    let created = t
        .store
        .create(limited_key("acct", Some(limit(1000, 1000, 100))))
        .unwrap();
    let (accepted, retries) = hammer(&t.path, &t.clock, &[created.key().to_owned()], 8, 5000);
    // From rest at 0 ms: the burst, then one per ms through 5,000 ms.
    assert_eq!(accepted, 5000 + 100);
    eprintln!("key limit: {accepted} accepted, {retries} CAS retries");
}

#[test]
fn an_owner_limit_is_shared_by_its_ten_keys_exactly() {
    let t = temp_store();
    t.store
        .set_owner_rate_limit("acct", Some(limit(1000, 1000, 100)))
        .unwrap();
    let keys: Vec<String> = (0..10)
        .map(|_| {
            t.store
                .create(limited_key("acct", None))
                .unwrap()
                .key()
                .to_owned()
        })
        .collect();
    let (accepted, retries) = hammer(&t.path, &t.clock, &keys, 8, 5000);
    assert_eq!(accepted, 5000 + 100);
    eprintln!("owner limit: {accepted} accepted, {retries} CAS retries");
    // Another owner is not limited.
    let other = t.store.create(limited_key("other", None)).unwrap();
    for _ in 0..200 {
        assert!(t.store.verify(other.key(), &[]).unwrap().is_valid());
    }
}

#[test]
fn a_refusal_says_when_to_retry_and_the_headers_say_it_too() {
    let t = temp_store();
    let created = t
        .store
        .create(limited_key("acct", Some(limit(10, 1000, 2))))
        .unwrap();
    let first = t.store.verify(created.key(), &[]).unwrap();
    assert!(first.is_valid());
    let rate = first.rate.unwrap();
    assert_eq!(
        (rate.scope, rate.remaining, rate.retry_after_ms),
        (RateScope::Key, 1, None)
    );
    assert!(t.store.verify(created.key(), &[]).unwrap().is_valid());
    let refused = t.store.verify(created.key(), &[]).unwrap();
    assert_eq!(refused.reason, Reason::RateLimited);
    assert_eq!(refused.reason.http_status(), 429);
    assert_eq!(refused.retry_after_ms(), Some(100));
    assert_eq!(
        refused.rate_headers(),
        vec![
            ("RateLimit-Policy", "\"key\";q=10;w=1".to_owned()),
            ("RateLimit", "\"key\";r=0;t=1".to_owned()),
            ("Retry-After", "1".to_owned()),
        ]
    );
    assert!(
        refused.key.is_some(),
        "the key's fields come with the refusal"
    );
    t.clock.advance(Duration::from_millis(99));
    assert_eq!(
        t.store.verify(created.key(), &[]).unwrap().reason,
        Reason::RateLimited
    );
    t.clock.advance(Duration::from_millis(1));
    assert!(t.store.verify(created.key(), &[]).unwrap().is_valid());
    // Refusals are counted as such.
    t.store.flush().unwrap();
    let usage = t.store.usage(created.id()).unwrap();
    assert_eq!((usage.uses, usage.refused), (3, 2));
}

#[test]
fn an_owner_refusal_takes_nothing_from_the_key_and_vice_versa() {
    let t = temp_store();
    let created = t
        .store
        .create(limited_key("acct", Some(limit(10, 1000, 10))))
        .unwrap();
    t.store
        .set_owner_rate_limit("acct", Some(limit(2, 1000, 2)))
        .unwrap();
    let verdicts: Vec<_> = (0..5)
        .map(|_| t.store.verify(created.key(), &[]).unwrap())
        .collect();
    assert_eq!(
        verdicts.iter().filter(|v| v.is_valid()).count(),
        2,
        "the owner's burst"
    );
    let refused = &verdicts[4];
    assert_eq!(refused.reason, Reason::RateLimited);
    assert_eq!(refused.rate.unwrap().scope, RateScope::Owner);
    // The three owner refusals handed the key's units back: 8 of its 10 are left.
    t.store.set_owner_rate_limit("acct", None).unwrap();
    let passed = (0..20)
        .filter(|_| t.store.verify(created.key(), &[]).unwrap().is_valid())
        .count();
    assert_eq!(passed, 8);
    assert_eq!(t.store.stats().unwrap().rate_refunds_lost, 0);
    // A key refusal never reaches the owner's word: with the key exhausted, the owner (burst
    // 2) still has its whole burst for another key.
    t.store
        .set_owner_rate_limit("acct", Some(limit(2, 1000, 2)))
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            t.store.verify(created.key(), &[]).unwrap().reason,
            Reason::RateLimited
        );
    }
    let sibling = t.store.create(limited_key("acct", None)).unwrap();
    let passed = (0..5)
        .filter(|_| t.store.verify(sibling.key(), &[]).unwrap().is_valid())
        .count();
    assert_eq!(passed, 2);
}

#[test]
fn a_rate_limited_request_spends_no_credit_and_a_dry_run_takes_no_rate() {
    let t = temp_store();
    let created = t
        .store
        .create(NewKey {
            credits: Some(NewCredits {
                remaining: 100,
                refill: None,
                cost: 1,
            }),
            ..limited_key("acct", Some(limit(5, 1000, 5)))
        })
        .unwrap();
    let dry = |store: &Store| {
        store
            .verify_request(&VerifyRequest {
                dry_run: true,
                ..VerifyRequest::key(created.key(), &[])
            })
            .unwrap()
    };
    for _ in 0..20 {
        let v = dry(&t.store);
        assert!(v.is_valid());
        assert_eq!(v.rate.unwrap().remaining, 4, "as after this request");
    }
    let reasons: Vec<Reason> = (0..10)
        .map(|_| t.store.verify(created.key(), &[]).unwrap().reason)
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == Reason::Valid).count(),
        5,
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == Reason::RateLimited)
            .count(),
        5
    );
    assert_eq!(
        t.store.credits(created.id()).unwrap().unwrap().remaining,
        95
    );
    let v = dry(&t.store);
    assert_eq!(v.reason, Reason::RateLimited);
    assert_eq!(v.retry_after_ms(), Some(200));
    // Credits exhausted after the rate passed: the rate unit is handed back.
    let poor = t
        .store
        .create(NewKey {
            credits: Some(NewCredits {
                remaining: 1,
                refill: None,
                cost: 1,
            }),
            ..limited_key("acct", Some(limit(5, 1000, 5)))
        })
        .unwrap();
    assert!(t.store.verify(poor.key(), &[]).unwrap().is_valid());
    for _ in 0..3 {
        assert_eq!(
            t.store.verify(poor.key(), &[]).unwrap().reason,
            Reason::UsageExceeded
        );
    }
    assert_eq!(
        t.store.rate_status(poor.id()).unwrap().unwrap().remaining,
        4
    );
}

#[test]
fn update_rotate_and_owner_changes_reach_every_handle() {
    let t = temp_store();
    let other = Store::open_unshared(&t.path, options(&t.clock)).unwrap();
    let created = t.store.create(limited_key("acct", None)).unwrap();
    assert!(other.verify(created.key(), &[]).unwrap().rate.is_none());
    let info = t
        .store
        .update(
            created.id(),
            KeyUpdate {
                rate_limit: Some(Some(limit(3, 60_000, 3))),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(info.rate_limit, Some(limit(3, 60_000, 3)));
    assert_eq!(
        t.store.get(created.id()).unwrap().rate_limit,
        info.rate_limit
    );
    for _ in 0..3 {
        assert!(other.verify(created.key(), &[]).unwrap().is_valid());
    }
    assert_eq!(
        other.verify(created.key(), &[]).unwrap().reason,
        Reason::RateLimited
    );
    // Rotation: the successor inherits the limit and the state (no fresh burst).
    let rotated = t.store.rotate(created.id(), Duration::ZERO).unwrap();
    assert_eq!(rotated.info.rate_limit, Some(limit(3, 60_000, 3)));
    assert_eq!(
        other.verify(rotated.key(), &[]).unwrap().reason,
        Reason::RateLimited
    );
    t.clock.advance(Duration::from_secs(20));
    assert!(other.verify(rotated.key(), &[]).unwrap().is_valid());
    // Removing the limit.
    t.store
        .update(
            rotated.id(),
            KeyUpdate {
                rate_limit: Some(None),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    for _ in 0..10 {
        assert!(other.verify(rotated.key(), &[]).unwrap().is_valid());
    }
    // An owner limit set through one handle binds the other at once; removed, likewise.
    t.store
        .set_owner_rate_limit("acct", Some(limit(1, 1000, 1)))
        .unwrap();
    assert_eq!(
        t.store.owner_rate_limit("acct").unwrap(),
        Some(limit(1, 1000, 1))
    );
    assert!(other.verify(rotated.key(), &[]).unwrap().is_valid());
    assert_eq!(
        other.verify(rotated.key(), &[]).unwrap().reason,
        Reason::RateLimited
    );
    t.store.set_owner_rate_limit("acct", None).unwrap();
    assert!(other.verify(rotated.key(), &[]).unwrap().is_valid());
    assert_eq!(t.store.owner_rate_limit("acct").unwrap(), None);
    // Bad input: a clear error, nothing changed.
    for bad in [(0, 1000, 1), (1, 0, 1), (1, 1000, 0)] {
        let e = t
            .store
            .set_owner_rate_limit(
                "acct",
                Some(RateLimit {
                    rate: bad.0,
                    period_ms: bad.1,
                    burst: bad.2,
                }),
            )
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }
    assert_eq!(
        t.store.set_owner_rate_limit(" ", None).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(t.store.owner_rate_limit("acct").unwrap(), None);
    assert_eq!(
        t.store
            .create(limited_key(
                "acct",
                Some(RateLimit {
                    rate: 0,
                    period_ms: 1,
                    burst: 1
                })
            ))
            .unwrap_err()
            .code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn deleted_keys_and_removed_owner_limits_free_their_slots() {
    let t = temp_store();
    // Fill every slot: owner limits take slots from the same pool as keys.
    let batch: Vec<NewKey> = (0..RATE_SLOTS - 1)
        .map(|i| limited_key(&format!("o{}", i % 64), Some(limit(10, 1000, 10))))
        .collect();
    let created = t.store.create_many(batch).unwrap();
    t.store
        .set_owner_rate_limit("acct", Some(limit(5, 1000, 5)))
        .unwrap();
    let full = t
        .store
        .create(limited_key("acct", Some(limit(1, 1000, 1))))
        .unwrap_err();
    assert_eq!(full.code(), ErrorCode::RateSlotsExhausted);
    assert_eq!(
        t.store
            .set_owner_rate_limit("other", Some(limit(1, 1000, 1)))
            .unwrap_err()
            .code(),
        ErrorCode::RateSlotsExhausted
    );
    // A key without a rate limit needs no slot.
    t.store.create(limited_key("acct", None)).unwrap();
    // Exhaust a key, delete it: its slot comes back from rest for the next key.
    let victim = &created[7];
    for _ in 0..10 {
        assert!(t.store.verify(victim.key(), &[]).unwrap().is_valid());
    }
    t.store.delete(victim.id()).unwrap();
    let reused = t
        .store
        .create(limited_key("acct2", Some(limit(10, 1000, 10))))
        .unwrap();
    let passed = (0..12)
        .filter(|_| t.store.verify(reused.key(), &[]).unwrap().is_valid())
        .count();
    assert_eq!(passed, 10, "a freed slot starts from rest");
    // Removing an owner limit frees its slot too.
    t.store.set_owner_rate_limit("acct", None).unwrap();
    t.store
        .set_owner_rate_limit("other", Some(limit(1, 1000, 1)))
        .unwrap();
}

#[test]
fn limits_survive_reopening_and_explicit_times_are_judged_alike() {
    let t = temp_store();
    let created = t
        .store
        .create(limited_key("acct", Some(limit(1, 1000, 1))))
        .unwrap();
    t.store
        .set_owner_rate_limit("acct", Some(limit(50, 1000, 50)))
        .unwrap();
    drop(t.store);
    let store = Store::open_unshared(&t.path, options(&t.clock)).unwrap();
    assert_eq!(
        store.owner_rate_limit("acct").unwrap(),
        Some(limit(50, 1000, 50))
    );
    let at = |ms: i64| VerifyRequest {
        at: Some(Timestamp::from_millis(ms)),
        ..VerifyRequest::key(created.key(), &[])
    };
    let base = 1_900_000_000_000;
    assert!(store.verify_request(&at(base)).unwrap().is_valid());
    assert_eq!(
        store.verify_request(&at(base + 999)).unwrap().reason,
        Reason::RateLimited
    );
    assert!(store.verify_request(&at(base + 1000)).unwrap().is_valid());
}
