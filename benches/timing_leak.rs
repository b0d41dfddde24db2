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
//!
//! Legacy keys (issue 18, item 1): the store also holds [`LEGACY_KEYS`] Sanctum tokens made by
//! Sanctum's algorithm and imported with `Store::import_legacy`. Classes: `legacy_first` /
//! `legacy_last` (a token of the store, `<id>|<token>`, wrong in its first / last character)
//! and `legacy_unknown` (an id and token the store never saw). Pairs `legacy_first_vs_last`,
//! `legacy_first_vs_unknown`, `legacy_last_vs_unknown` (target |t| < 5 each): a wrong legacy
//! key must not reveal whether the token it resembles exists.

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
/// Legacy (Sanctum) tokens imported into the same store.
const LEGACY_KEYS: usize = 10_000;

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
    legacy_first: Vec<String>,
    legacy_last: Vec<String>,
    legacy_unknown: Vec<String>,
}

/// `n` Sanctum tokens as Sanctum makes them (`Str::random(40)` + `hash('crc32b', …)`): the
/// `personal_access_tokens` export (CSV) and the `<id>|<token>` texts the clients hold.
fn sanctum_tokens(n: usize, state: &mut u64) -> (String, Vec<(String, String)>) {
    use sha2::Digest as _;
    let mut csv = String::from("id,tokenable_id,name,token,abilities,created_at\n");
    let mut tokens = Vec::with_capacity(n);
    for i in 1..=n {
        let entropy: String = (0..40)
            .map(|_| {
                *state = common::xorshift(*state);
                BASE62[(*state % 62) as usize] as char
            })
            .collect();
        let token = format!("{entropy}{:08x}", crc32fast::hash(entropy.as_bytes()));
        let hash: String = sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        csv.push_str(&format!(
            "{i},{},t{i},{hash},\"[\"\"read\"\"]\",2025-01-01 00:00:00\n",
            i % 1000
        ));
        tokens.push((i.to_string(), token));
    }
    (csv, tokens)
}

fn with_char_changed(text: &str, position: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[position] = other_char(bytes[position]);
    String::from_utf8(bytes).expect("ASCII")
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
        let (csv, tokens) = sanctum_tokens(LEGACY_KEYS, &mut state);
        let report = store
            .import_legacy(
                keyward::LegacyScheme::Sanctum,
                csv.as_bytes(),
                &keyward::LegacyImportOptions::default(),
            )
            .expect("import the Sanctum tokens");
        assert_eq!(report.imported, LEGACY_KEYS);
        // Tokens never imported, made the same way.
        let (_, strangers) = sanctum_tokens(LEGACY_KEYS, &mut state);
        let (mut legacy_valid, mut legacy_first, mut legacy_last, mut legacy_unknown) = (
            Vec::with_capacity(LEGACY_KEYS),
            Vec::with_capacity(LEGACY_KEYS),
            Vec::with_capacity(LEGACY_KEYS),
            Vec::with_capacity(LEGACY_KEYS),
        );
        for ((id, token), (_, stranger)) in tokens.iter().zip(&strangers) {
            legacy_valid.push(format!("{id}|{token}"));
            legacy_first.push(format!("{id}|{}", with_char_changed(token, 0)));
            legacy_last.push(format!(
                "{id}|{}",
                with_char_changed(token, token.len() - 1)
            ));
            legacy_unknown.push(format!(
                "{}|{stranger}",
                id.parse::<usize>().unwrap() + LEGACY_KEYS
            ));
        }
        let setup = Setup {
            _fixture: fixture,
            store,
            valid,
            first,
            first_copy,
            last,
            unknown,
            legacy_first,
            legacy_last,
            legacy_unknown,
        };
        // A legacy token is valid as imported (a dry run: no upgrade, the classes measure the
        // legacy path itself).
        for key in legacy_valid.iter().take(1000) {
            let verdict = setup
                .store
                .verify_request(&keyward::VerifyRequest {
                    dry_run: true,
                    ..keyward::VerifyRequest::key(key, SCOPES)
                })
                .expect("verify");
            assert_eq!(verdict.reason, Reason::Valid);
        }
        // Each class must get the verdict it stands for.
        for (set, expected) in [
            (&setup.valid, Reason::Valid),
            (&setup.first, Reason::NotFound),
            (&setup.last, Reason::NotFound),
            (&setup.unknown, Reason::NotFound),
            (&setup.legacy_first, Reason::NotFound),
            (&setup.legacy_last, Reason::NotFound),
            (&setup.legacy_unknown, Reason::NotFound),
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

fn legacy_first_vs_last(runner: &mut CtRunner, rng: &mut BenchRng) {
    let s = setup();
    compare(runner, rng, &s.legacy_first, &s.legacy_last);
}

fn legacy_first_vs_unknown(runner: &mut CtRunner, rng: &mut BenchRng) {
    let s = setup();
    compare(runner, rng, &s.legacy_first, &s.legacy_unknown);
}

fn legacy_last_vs_unknown(runner: &mut CtRunner, rng: &mut BenchRng) {
    let s = setup();
    compare(runner, rng, &s.legacy_last, &s.legacy_unknown);
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
    let benches: [(&'static str, BenchFn); 8] = [
        ("control_first_vs_first", control_first_vs_first),
        ("first_vs_last", first_vs_last),
        ("first_vs_unknown", first_vs_unknown),
        ("last_vs_unknown", last_vs_unknown),
        ("valid_vs_first", valid_vs_first),
        ("legacy_first_vs_last", legacy_first_vs_last),
        ("legacy_first_vs_unknown", legacy_first_vs_unknown),
        ("legacy_last_vs_unknown", legacy_last_vs_unknown),
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
