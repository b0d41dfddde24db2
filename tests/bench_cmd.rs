//! `keyward bench --quick --json`: the command runs end to end (temporary store, baselines,
//! worker processes) and writes every field the JSON promises. Figures are only checked to be
//! positive: timings are never asserted.

use assert_cmd::Command;

#[test]
fn bench_quick_writes_the_promised_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let assert = Command::cargo_bin("keyward")
        .unwrap()
        .args(["bench", "--quick", "--json"])
        .arg(&out)
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        stdout.contains("keyward_multi"),
        "table on stdout: {stdout}"
    );
    // stderr is not a terminal here: no progress output at all.
    assert!(
        assert.get_output().stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&assert.get_output().stderr)
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let results = json["results"].as_array().expect("results");
    for name in [
        "keyward_multi",
        "keyward_exclusive",
        "floor",
        "sqlite_sha256",
        "redb_txn_multiwriter",
        "redb_txn_exclusive",
    ] {
        let entry = results
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(entry["keys"].as_u64().unwrap() > 0, "{name} keys");
        assert!(
            entry["ns_per_op"].as_f64().unwrap() > 0.0,
            "{name} ns_per_op"
        );
    }
    let processes = json["processes"].as_array().expect("processes");
    for count in [1, 2, 4] {
        let entry = processes
            .iter()
            .find(|p| p["processes"] == count)
            .unwrap_or_else(|| panic!("{count} missing"));
        assert!(
            entry["verifies_per_sec"].as_f64().unwrap() > 0.0,
            "{count} processes"
        );
    }
}
