//! The engine crate's own dependency tree holds only what the engine needs: the CLI's and the
//! benchmark baselines' crates live in the `keyward-cli` workspace member (issue 16).

#[test]
fn the_engine_crate_pulls_in_no_cli_or_baseline_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "-e", "normal", "-p", "keyward", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"redb"), "the tree was read: {tree}");
    // sha2 is the engine's own since legacy keys (src/legacy/): it recomputes the SHA-256 and
    // SHA-512 hashes of keys imported from Sanctum, DRF, Unkey and Better Auth.
    assert!(crates.contains(&"sha2"), "legacy keys need sha2: {tree}");
    for forbidden in ["rusqlite", "clap", "indicatif"] {
        assert!(
            !crates.contains(&forbidden),
            "{forbidden} is in the engine's dependency tree:\n{tree}"
        );
    }
}
