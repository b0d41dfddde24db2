//! The cost of the owner check on the verify path (issue 18, item 3): the same keys verified
//! while the store has no owner record, while another owner is suspended (the owner rules are
//! then looked up by hash on every verify), while the keys' owners allow every scope of their
//! keys, and while they allow fewer (the verdict then carries a narrowed copy of the record).
//! Phases alternate, three rounds; the median ns per verify (wall clock, one thread) of each is
//! printed. `cargo bench --bench owner_check` (`KEYWARD_OWNER_BENCH_KEYS`, default 10 000).

use std::time::{Duration, Instant};

use keyward::{NewKey, Store, StoreOptions};

fn main() {
    let keys: usize = std::env::var("KEYWARD_OWNER_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_unshared(
        dir.path().join("owners.redb"),
        StoreOptions {
            flush_interval: Duration::from_secs(3600),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let owners = 100;
    let created = store
        .create_many(
            (0..keys)
                .map(|i| NewKey {
                    owner: format!("acct_{}", i % owners),
                    scopes: vec!["read".into(), "write".into()],
                    ..NewKey::default()
                })
                .collect(),
        )
        .unwrap();
    let texts: Vec<String> = created.iter().map(|c| c.key().to_owned()).collect();
    let verify_all = |rounds: usize| -> f64 {
        let started = Instant::now();
        let mut valid = 0usize;
        for _ in 0..rounds {
            for key in &texts {
                valid += usize::from(store.verify(key, &["read"]).unwrap().is_valid());
            }
        }
        assert_eq!(valid, rounds * texts.len());
        started.elapsed().as_nanos() as f64 / (rounds * texts.len()) as f64
    };
    type Setup = fn(&Store, usize);
    let phases: [(&str, Setup); 4] = [
        ("no owner record", |s, owners| {
            for o in 0..owners {
                s.set_owner_scopes::<&str>(&format!("acct_{o}"), None)
                    .unwrap();
            }
            s.resume_owner("acct_other").ok();
        }),
        ("another owner suspended", |s, _| {
            s.suspend_owner("acct_other", None).unwrap();
        }),
        ("owners allow all the key's scopes", |s, owners| {
            for o in 0..owners {
                s.set_owner_scopes(&format!("acct_{o}"), Some(&["read", "write", "x"]))
                    .unwrap();
            }
        }),
        ("owners allow fewer (narrowed record)", |s, owners| {
            for o in 0..owners {
                s.set_owner_scopes(&format!("acct_{o}"), Some(&["read"]))
                    .unwrap();
            }
        }),
    ];
    verify_all(1); // warm the record cache
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); phases.len()];
    for _round in 0..3 {
        for (i, (_, setup)) in phases.iter().enumerate() {
            setup(&store, owners);
            verify_all(1); // reload the owner rules once
            results[i].push(verify_all(5));
        }
    }
    println!("owner check, {keys} keys of {owners} owners, median of 3 rounds (wall ns/verify):");
    for (i, (name, _)) in phases.iter().enumerate() {
        let mut r = results[i].clone();
        r.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("  {name:<40} {:>8.0}   (rounds: {:.0?})", r[1], results[i]);
    }
}
