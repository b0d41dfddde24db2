//! The README's first command: on a temporary store, issue a key, verify it through each
//! header style, revoke it, and print the reason codes.
//!
//! Run with `cargo run --quiet --example quickstart`.

use base64::Engine as _;
use keyward::{NewKey, Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keys.redb");
    let store = Store::open(&path, StoreOptions::default())?;
    println!(
        "store: {} (multi-process mode, pepper in keys.redb.pepper)",
        path.display()
    );

    let created = store.create(NewKey {
        owner: "acct_42".into(),
        name: "quickstart".into(),
        scopes: vec!["read".into(), "write".into()],
        env: Some("live".into()),
        ..NewKey::default()
    })?;
    println!(
        "created key id {} — the full key is shown once:",
        created.id()
    );
    println!("  {}", created.key());

    let key = created.key();
    let bearer = format!("Bearer {key}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    );
    let styles: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("x-api-key", vec![("x-api-key", key)]),
        (
            "Authorization: Bearer",
            vec![("Authorization", bearer.as_str())],
        ),
        (
            "Authorization: Basic",
            vec![("Authorization", basic.as_str())],
        ),
        (
            "X-Api-Token-Id + X-Api-Token-Secret-Key",
            vec![
                ("X-Api-Token-Id", created.id()),
                ("X-Api-Token-Secret-Key", created.secret()),
            ],
        ),
    ];
    println!("\nverify, route requires scope \"read\":");
    for (style, headers) in &styles {
        let verdict = store.verify_headers(headers.iter().copied(), &["read"])?;
        println!(
            "  {style:<42} {:<20} HTTP {}",
            verdict.reason.code(),
            verdict.reason.http_status()
        );
    }
    let verdict = store.verify(key, &["admin"])?;
    println!(
        "  {:<42} {:<20} HTTP {}",
        "x-api-key, route requires \"admin\"",
        verdict.reason.code(),
        verdict.reason.http_status()
    );
    let verdict = store.verify("kw_live_not-a-real-key", &["read"])?;
    println!(
        "  {:<42} {:<20} HTTP {}",
        "a malformed key",
        verdict.reason.code(),
        verdict.reason.http_status()
    );

    store.revoke(created.id(), Some("quickstart is over"))?;
    println!("\nrevoked {}", created.id());
    for (style, headers) in &styles {
        let verdict = store.verify_headers(headers.iter().copied(), &["read"])?;
        println!(
            "  {style:<42} {:<20} HTTP {}",
            verdict.reason.code(),
            verdict.reason.http_status()
        );
    }
    match store.verify_headers([("Accept", "*/*")], &["read"]) {
        Err(e) => println!(
            "  {:<42} {:<20} HTTP 401 ({e})",
            "no credential",
            e.code().name()
        ),
        Ok(v) => println!("  no credential: {}", v.reason.code()),
    }

    store.flush()?;
    let usage = store.usage(created.id())?;
    println!(
        "\nusage of {}: {} accepted, {} refused",
        created.id(),
        usage.uses,
        usage.refused
    );
    Ok(())
}
