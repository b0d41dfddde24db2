//! Timing-leak check of verify with the dudect method (`dudect-bencher`): Welch's t-test on
//! the run times of two classes of inputs, at several cropping percentiles; |t| > 5 is strong
//! evidence that the classes can be told apart by timing.
//!
//! Run it (not part of the tests; a few minutes):
//!
//! ```text
//! cargo bench --bench timing_leak
//! ```
//!
//! The store holds 100 000 keys. Classes (refusals that must not be told apart, target |t| < 5):
//! - `first`: a right id with a secret wrong in its first character (checksum recomputed);
//! - `last`: the same, wrong in its last character;
//! - `unknown`: a well-formed key whose id is not in the store.
//!
//! Pairs: `first_vs_last`, `first_vs_unknown`, `last_vs_unknown`; `valid_vs_first`, for
//! reference only (a valid key legitimately does more work); and `control_first_vs_first`,
//! two separately allocated copies of one class, whose |t| is the harness's noise floor. Each pair takes 10^6 samples per
//! class; the line `max t = …` of each bench is its |t|.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use dudect_bencher::ctbench::{BenchFn, BenchMetadata, BenchName, BenchOpts, run_benches_console};
use dudect_bencher::rand::RngExt;
use dudect_bencher::{BenchRng, Class, CtRunner};
use keyward::{Concurrency, KeyId, Reason, Store, parse_key};
use keyward::{Secret, format_key};

use common::{Fixture, SCOPES};

/// Samples per class in each pair.
const SAMPLES_PER_CLASS: usize = 1_000_000;
/// Keys in the store.
const KEYS: usize = 100_000;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The store and one input per key for each class.
struct Setup {
    _fixture: Fixture,
    store: Store,
    valid: Vec<String>,
    first: Vec<String>,
    first_copy: Vec<String>,
    last: Vec<String>,
    unknown: Vec<String>,
}

fn other_char(c: u8) -> u8 {
    if c == b'a' { b'b' } else { b'a' }
}

fn with_secret_char_changed(key: &str, position: usize) -> String {
    let parsed = parse_key(key, Some("kw")).expect("well formed");
    let mut secret = *parsed.secret.expose();
    secret[position] = other_char(secret[position]);
    let secret = Secret::parse(std::str::from_utf8(&secret).expect("ASCII")).expect("base62");
    format_key("kw", parsed.env.as_deref(), &parsed.id, &secret).to_string()
}

fn with_unknown_id(key: &str, state: &mut u64) -> String {
    let parsed = parse_key(key, Some("kw")).expect("well formed");
    let mut id = [0u8; 16];
    for byte in id.iter_mut() {
        *state = common::xorshift(*state);
        *byte = BASE62[(*state % 62) as usize];
    }
    let id = KeyId::parse(std::str::from_utf8(&id).expect("ASCII")).expect("base62");
    format_key("kw", parsed.env.as_deref(), &id, &parsed.secret).to_string()
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let fixture = Fixture::new(KEYS);
        let store = fixture.open(Concurrency::MultiProcess, Duration::ZERO);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        // The inputs of every class are allocated interleaved, key by key, so no class gets
        // a systematically different heap layout (which dudect would pick up as a difference).
        let n = fixture.keys.len();
        let (mut valid, mut first, mut first_copy, mut last, mut unknown) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for key in &fixture.keys {
            valid.push(key.clone());
            first.push(with_secret_char_changed(key, 0));
            first_copy.push(with_secret_char_changed(key, 0));
            last.push(with_secret_char_changed(key, 31));
            unknown.push(with_unknown_id(key, &mut state));
        }
        let setup = Setup {
            _fixture: fixture,
            store,
            valid,
            first,
            first_copy,
            last,
            unknown,
        };
        // Each class must get the verdict it stands for.
        for (set, expected) in [
            (&setup.valid, Reason::Valid),
            (&setup.first, Reason::NotFound),
            (&setup.last, Reason::NotFound),
            (&setup.unknown, Reason::NotFound),
        ] {
            for key in set.iter().take(1000) {
                assert_eq!(
                    setup.store.verify(key, SCOPES).expect("verify").reason,
                    expected
                );
            }
        }
        setup
    })
}

/// Runs 10^6 verifies of each class, randomly interleaved, keys drawn at random.
fn compare(runner: &mut CtRunner, rng: &mut BenchRng, left: &[String], right: &[String]) {
    let store = &setup().store;
    let mut inputs: Vec<(Class, &str)> = Vec::with_capacity(2 * SAMPLES_PER_CLASS);
    let (mut n_left, mut n_right) = (0, 0);
    while n_left < SAMPLES_PER_CLASS || n_right < SAMPLES_PER_CLASS {
        let pick_left = if n_left == SAMPLES_PER_CLASS {
            false
        } else if n_right == SAMPLES_PER_CLASS {
            true
        } else {
            rng.random::<bool>()
        };
        let index = rng.random_range(0..left.len().min(right.len()));
        if pick_left {
            inputs.push((Class::Left, &left[index]));
            n_left += 1;
        } else {
            inputs.push((Class::Right, &right[index]));
            n_right += 1;
        }
    }
    for (class, key) in inputs {
        runner.run_one(class, || store.verify(key, SCOPES).map(|v| v.reason));
    }
}

fn first_vs_last(runner: &mut CtRunner, rng: &mut BenchRng) {
    let s = setup();
    compare(runner, rng, &s.first, &s.last);
}

fn first_vs_unknown(runner: &mut CtRunner, rng: &mut BenchRng) {
    let s = setup();
    compare(runner, rng, &s.first, &s.unknown);
}

fn last_vs_unknown(runner: &mut CtRunner, rng: &mut BenchRng) {
    let s = setup();
    compare(runner, rng, &s.last, &s.unknown);
}

/// Control: two copies of the same class. Whatever |t| it shows is the harness's own noise
/// floor on this machine (heap layout, load), not a property of verify.
fn control_first_vs_first(runner: &mut CtRunner, rng: &mut BenchRng) {
    let s = setup();
    compare(runner, rng, &s.first, &s.first_copy);
}

fn valid_vs_first(runner: &mut CtRunner, rng: &mut BenchRng) {
    let s = setup();
    compare(runner, rng, &s.valid, &s.first);
}

/// `ctbench_main!` would refuse the `--bench` flag cargo passes, so the options are read here:
/// `--filter NAME` and `--continuous NAME` as in dudect-bencher. Without `--bench` (as under
/// `cargo test --benches`) nothing runs.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("timing_leak: run with `cargo bench --bench timing_leak`");
        return;
    }
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let opts = BenchOpts {
        continuous: value_of("--continuous").is_some(),
        filter: value_of("--continuous").or_else(|| value_of("--filter")),
        ..BenchOpts::default()
    };
    let benches: [(&'static str, BenchFn); 5] = [
        ("control_first_vs_first", control_first_vs_first),
        ("first_vs_last", first_vs_last),
        ("first_vs_unknown", first_vs_unknown),
        ("last_vs_unknown", last_vs_unknown),
        ("valid_vs_first", valid_vs_first),
    ];
    let benches = benches
        .into_iter()
        .map(|(name, benchfn)| BenchMetadata {
            name: BenchName(name),
            seed: None,
            benchfn,
        })
        .collect();
    run_benches_console(opts, benches).expect("write the results");
}
