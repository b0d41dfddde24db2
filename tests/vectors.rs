//! Replays the shared test vectors in tests/vectors/*.json (also replayed by the C tests and
//! every binding).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use keyward::{
    Credential, KeyFormatError, NewCredits, NewKey, Presented, Reason, Timestamp, VerifyRequest,
    extract_credential, parse_key,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn key_vectors() {
    let vectors = load("keys.json");
    let prefix = vectors["prefix"].as_str().unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let text = case["key"].as_str().unwrap();
        let result = parse_key(text, Some(prefix));
        if case["valid"].as_bool().unwrap() {
            let parsed = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.id.as_str(), case["id"].as_str().unwrap(), "{name}");
            assert_eq!(parsed.env.as_deref(), case["env"].as_str(), "{name}");
            assert_eq!(
                parsed.secret.expose().as_slice(),
                case["secret"].as_str().unwrap().as_bytes(),
                "{name}"
            );
        } else {
            let err: KeyFormatError = match result {
                Ok(_) => panic!("{name}: accepted"),
                Err(e) => e,
            };
            assert_eq!(err.name(), case["error"].as_str().unwrap(), "{name}");
        }
    }
}

#[test]
fn header_vectors() {
    let vectors = load("headers.json");
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let headers: Vec<(String, String)> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let result = extract_credential(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let expect = &case["expect"];
        match (result, expect.get("error")) {
            (Ok(Credential::Key(key)), None) => {
                assert_eq!(key.as_str(), expect["key"].as_str().unwrap(), "{name}")
            }
            (Ok(Credential::Pair { id, secret }), None) => {
                assert_eq!(id, expect["pair"]["id"].as_str().unwrap(), "{name}");
                assert_eq!(
                    secret.as_str(),
                    expect["pair"]["secret"].as_str().unwrap(),
                    "{name}"
                );
            }
            (Err(e), Some(code)) => {
                assert_eq!(e.code().name(), code.as_str().unwrap(), "{name}: {e}")
            }
            (got, _) => panic!("{name}: got {got:?}, expected {expect}"),
        }
    }
}

/// Replays verify.json against a fresh store per scenario.
#[test]
fn verify_scenarios() {
    let vectors = load("verify.json");
    for scenario in vectors["scenarios"].as_array().unwrap() {
        let name = scenario["name"].as_str().unwrap();
        let t = common::temp_store();
        let start = t.clock.now_ms();
        let mut keys: HashMap<String, keyward::CreatedKey> = HashMap::new();
        for step in scenario["steps"].as_array().unwrap() {
            let scopes: Vec<&str> = step["scopes"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap()).collect())
                .unwrap_or_default();
            let at = Timestamp::from_millis(start + step["at_offset_ms"].as_i64().unwrap_or(0));
            let cost = step["cost"].as_u64().map(|c| c as u32);
            let dry_run = step["dry_run"].as_bool().unwrap_or(false);
            let expect = step["expect"]
                .as_str()
                .map(|c| Reason::from_code(c).unwrap());
            let expect_scopes: Option<Vec<&str>> = step["expect_scopes"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap()).collect());
            let verdict = |presented: Presented<'_>| {
                let verdict = t
                    .store
                    .verify_request(&VerifyRequest {
                        credential: presented,
                        scopes: &scopes,
                        cost,
                        at: Some(at),
                        dry_run,
                    })
                    .unwrap();
                if let Some(want) = &expect_scopes {
                    assert_eq!(
                        &verdict.key.as_ref().unwrap().scopes,
                        want,
                        "{name}: {step}"
                    );
                }
                verdict.reason
            };
            match step["op"].as_str().unwrap() {
                "create" => {
                    let mut new = NewKey {
                        owner: step["owner"].as_str().unwrap().into(),
                        scopes: scopes.iter().map(|s| s.to_string()).collect(),
                        env: step["env"].as_str().map(str::to_owned),
                        ..NewKey::default()
                    };
                    if let Some(ms) = step["expires_in_ms"].as_i64() {
                        new.expires_at = Some(Timestamp::from_millis(start + ms));
                    }
                    if let Some(c) = step.get("credits") {
                        new.credits = Some(NewCredits {
                            remaining: c["remaining"].as_u64().unwrap(),
                            refill: None,
                            cost: c["cost"].as_u64().unwrap() as u32,
                        });
                    }
                    if let Some(r) = step.get("rate_limit") {
                        new.rate_limit = Some(
                            keyward::RateLimit::new(
                                r["rate"].as_u64().unwrap(),
                                r["period_ms"].as_u64().unwrap(),
                                r["burst"].as_u64().unwrap(),
                            )
                            .unwrap(),
                        );
                    }
                    let created = t.store.create(new).unwrap();
                    keys.insert(step["as"].as_str().unwrap().into(), created);
                }
                "verify" => {
                    let key = keys[step["key"].as_str().unwrap()].key().to_owned();
                    assert_eq!(
                        Some(verdict(Presented::Key(&key))),
                        expect,
                        "{name}: {step}"
                    );
                }
                "verify_text" => {
                    let text = step["text"].as_str().unwrap();
                    assert_eq!(
                        Some(verdict(Presented::Key(text))),
                        expect,
                        "{name}: {step}"
                    );
                }
                "pair" => {
                    let created = &keys[step["key"].as_str().unwrap()];
                    let mut id = created.id().to_owned();
                    let mut secret = created.secret().to_owned();
                    match step["mutate"].as_str() {
                        Some("wrong_secret_first") => secret
                            .replace_range(0..1, if secret.starts_with('a') { "b" } else { "a" }),
                        Some("wrong_secret_last") => {
                            let n = secret.len();
                            let last = if secret.ends_with('a') { "b" } else { "a" };
                            secret.replace_range(n - 1..n, last);
                        }
                        Some("unknown_id") => id = "0000000000000000".into(),
                        Some(other) => panic!("unknown mutation {other}"),
                        None => {}
                    }
                    assert_eq!(
                        Some(verdict(Presented::Pair {
                            id: &id,
                            secret: &secret
                        })),
                        expect,
                        "{name}: {step}"
                    );
                }
                "revoke" => {
                    t.store
                        .revoke(keys[step["key"].as_str().unwrap()].id(), None)
                        .unwrap();
                }
                "rotate" => {
                    let grace = Duration::from_millis(step["grace_ms"].as_u64().unwrap());
                    let new = t
                        .store
                        .rotate(keys[step["key"].as_str().unwrap()].id(), grace)
                        .unwrap();
                    keys.insert(step["as"].as_str().unwrap().into(), new);
                }
                "import_legacy" => {
                    let scheme =
                        keyward::LegacyScheme::from_name(step["from"].as_str().unwrap()).unwrap();
                    let o = &step["options"];
                    let options = keyward::LegacyImportOptions {
                        all_scopes: o["all_scopes"]
                            .as_array()
                            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect()),
                        default_owner: o["default_owner"].as_str().map(str::to_owned),
                        ..keyward::LegacyImportOptions::default()
                    };
                    let report = t
                        .store
                        .import_legacy(scheme, step["data"].as_str().unwrap().as_bytes(), &options)
                        .unwrap();
                    assert_eq!(
                        report.imported as u64,
                        step["imported"].as_u64().unwrap(),
                        "{name}: {step}"
                    );
                }
                "owner_suspend" => {
                    t.store
                        .suspend_owner(step["owner"].as_str().unwrap(), None)
                        .unwrap();
                }
                "owner_resume" => {
                    t.store
                        .resume_owner(step["owner"].as_str().unwrap())
                        .unwrap();
                }
                "owner_scopes" => {
                    let allowed =
                        (!step["clear"].as_bool().unwrap_or(false)).then_some(&scopes[..]);
                    t.store
                        .set_owner_scopes(step["owner"].as_str().unwrap(), allowed)
                        .unwrap();
                }
                other => panic!("unknown op {other}"),
            }
        }
    }
}

/// The JSON files are exactly what the checked-in generator writes.
#[test]
fn vectors_are_generated_by_the_checked_in_generator() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let script = format!("{root}/tests/vectors/generate.py");
    std::fs::copy(&script, dir.path().join("generate.py")).unwrap();
    let status = std::process::Command::new("python3")
        .arg(dir.path().join("generate.py"))
        .status()
        .expect("python3 is needed to check the vectors");
    assert!(status.success());
    for name in ["keys.json", "headers.json", "verify.json", "edge.json"] {
        let fresh = std::fs::read(dir.path().join(name)).unwrap();
        let checked_in = std::fs::read(format!("{root}/tests/vectors/{name}")).unwrap();
        assert!(
            fresh == checked_in,
            "{name} is stale: run python3 tests/vectors/generate.py"
        );
    }
}

#[test]
fn header_errors_have_codes_named_in_vectors() {
    // Every error name used by headers.json exists as an ErrorCode.
    let vectors = load("headers.json");
    for case in vectors["cases"].as_array().unwrap() {
        if let Some(code) = case["expect"].get("error") {
            let code = code.as_str().unwrap();
            assert!(
                keyward::ErrorCode::ALL.iter().any(|c| c.name() == code),
                "{code}"
            );
        }
    }
}

/// A text of edge.json: a JSON string, or `{"hex": ...}` (bytes Rust's `&str` cannot hold:
/// such cases do not name the rust door).
fn edge_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => {
            let hex = other["hex"].as_str().expect("a string or {hex}");
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8(bytes).expect("the rust door only gets UTF-8 (NUL is fine)")
        }
    }
}

/// What a door answered, in edge.json's terms.
#[derive(Debug, PartialEq)]
enum Outcome {
    Verdict(String, u16),
    Error(&'static str, &'static str),
    Created,
}

fn outcome_of(result: Result<Outcome, keyward::Error>) -> Outcome {
    result.unwrap_or_else(|e| Outcome::Error(e.code().family().name(), e.code().name()))
}

/// Replays edge.json: for header cases both the verdict-style call (`verify_http`) and the
/// error-style one (`verify_headers`); counts the cases run and checks every case naming the
/// rust door was run.
#[test]
fn edge_vectors() {
    let vectors = load("edge.json");
    let t = common::temp_store();
    let mut run = 0;
    for case in vectors["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if !case["doors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "rust")
        {
            continue;
        }
        let scopes_owned: Vec<String> = case["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(edge_text)
            .collect();
        let scopes: Vec<&str> = scopes_owned.iter().map(String::as_str).collect();
        let expect = &case["expect"];
        let verdict = |v: keyward::Verdict| {
            Outcome::Verdict(v.reason.code().to_owned(), v.reason.http_status())
        };
        let expected_error = expect["family"].as_str().map(|family| {
            let status = expect["status"]
                .as_str()
                .or(expect["code"].as_str())
                .unwrap();
            (family.to_owned(), status.to_owned())
        });
        let check = |got: Outcome, style: &str| match (&got, expect) {
            (Outcome::Error(family, status), _) => {
                let (want_family, want_status) = expected_error
                    .clone()
                    .unwrap_or_else(|| panic!("{name} ({style}): got {got:?}, expected {expect}"));
                assert_eq!(
                    (*family, *status),
                    (want_family.as_str(), want_status.as_str()),
                    "{name} ({style})"
                );
            }
            (Outcome::Verdict(code, status), _) => {
                let want = expect["reason"].as_str().or(expect["code"].as_str());
                assert!(
                    expect["status"].is_null(),
                    "{name} ({style}): got {got:?}, expected {expect}"
                );
                assert_eq!(Some(code.as_str()), want, "{name} ({style})");
                assert_eq!(
                    u64::from(*status),
                    expect["http_status"].as_u64().unwrap(),
                    "{name} ({style})"
                );
            }
            (Outcome::Created, _) => assert_eq!(expect["created"], true, "{name} ({style})"),
        };
        match case["op"].as_str().unwrap() {
            "verify" => {
                let key = edge_text(&case["key"]);
                check(
                    outcome_of(t.store.verify(&key, &scopes).map(verdict)),
                    "verify",
                );
            }
            "pair" => {
                let (id, secret) = (edge_text(&case["id"]), edge_text(&case["secret"]));
                check(
                    outcome_of(t.store.verify_pair(&id, &secret, &scopes).map(verdict)),
                    "verify_pair",
                );
            }
            "headers" => {
                let one: Vec<(String, String)> = case["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| (edge_text(&h[0]), edge_text(&h[1])))
                    .collect();
                let repeat = case["repeat"].as_u64().unwrap_or(1) as usize;
                let headers: Vec<(&str, &str)> = (0..repeat)
                    .flat_map(|_| one.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                    .collect();
                // verify_http: a header problem is a refused verdict (the code, 401).
                let http = t
                    .store
                    .verify_http(headers.iter().copied(), &scopes)
                    .map(|h| Outcome::Verdict(h.code().to_owned(), h.http_status()));
                check(outcome_of(http), "verify_http");
                // verify_headers: a header problem is an error of the CREDENTIAL family.
                check(
                    outcome_of(
                        t.store
                            .verify_headers(headers.iter().copied(), &scopes)
                            .map(verdict),
                    ),
                    "verify_headers",
                );
            }
            "create" => {
                let result = t.store.create(NewKey {
                    owner: edge_text(&case["owner"]),
                    scopes: scopes_owned.clone(),
                    ..NewKey::default()
                });
                check(outcome_of(result.map(|_| Outcome::Created)), "create");
            }
            op => panic!("{name}: unknown op {op}"),
        }
        run += 1;
    }
    assert_eq!(
        run,
        vectors["applicable"]["rust"].as_u64().unwrap() as usize,
        "edge cases run by the rust door"
    );
    let applicable = vectors["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["doors"].as_array().unwrap().iter().any(|d| d == "rust"))
        .count();
    assert_eq!(run, applicable);
}
