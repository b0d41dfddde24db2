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

/// `keyward bench --table` with a small store and 4 processes: every JSON field is there and
/// sane (sizes consistent, figures positive, no key refused). Timings are never asserted.
#[test]
fn bench_table_writes_the_promised_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("table.json");
    let assert = Command::cargo_bin("keyward")
        .unwrap()
        .args([
            "bench",
            "--table",
            "--quick",
            "--keys",
            "2000",
            "--processes",
            "4",
            "--opens",
            "3",
            "--builds",
            "2",
            "--commit-millis",
            "1500",
            "--json",
        ])
        .arg(&out)
        .timeout(std::time::Duration::from_secs(180))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for text in [
        "shared table",
        "cold build",
        "Store::open",
        "x floor",
        "goals (issue 14)",
    ] {
        assert!(stdout.contains(text), "{text:?} in the table: {stdout}");
    }
    assert!(
        assert.get_output().stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&assert.get_output().stderr)
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let num = |v: &serde_json::Value, what: &str| {
        v.as_f64()
            .unwrap_or_else(|| panic!("{what} missing or not a number: {json}"))
    };
    assert_eq!(json["mode"], "table");
    assert_eq!(json["keys"], 2000);

    let table = &json["table"];
    assert_eq!(table["keys"], 2000, "{table}");
    assert_ne!(table["generation"], 0, "{table}");
    let slots = num(&table["slots"], "slots");
    assert!(slots >= 2000.0, "{table}");
    let lookup = num(&table["lookup_bytes"], "lookup_bytes");
    let file = num(&table["file_bytes"], "file_bytes");
    assert!(lookup > 0.0 && file >= lookup, "{table}");
    assert_eq!(
        num(&table["lookup_bytes_per_key"], "per key"),
        lookup / 2000.0
    );
    assert_eq!(num(&table["file_bytes_per_key"], "per key"), file / 2000.0);
    assert!(num(&table["db_bytes"], "db_bytes") > 0.0);

    let build = &json["cold_build"];
    assert_eq!(build["runs_ms"].as_array().unwrap().len(), 2);
    assert!(num(&build["median_ms"], "cold build") > 0.0);

    let open = &json["fresh_open"];
    assert_eq!(open["spawns"], 3);
    assert_eq!(
        open["rebuilt"], 0,
        "fresh processes mapped the existing table"
    );
    assert_eq!(open["open_us"].as_array().unwrap().len(), 3);
    assert_eq!(open["open_cpu_us"].as_array().unwrap().len(), 3);
    assert!(num(&open["median_open_us"], "open") > 0.0);
    assert!(num(&open["median_first_verify_us"], "first verify") > 0.0);
    assert!(num(&open["median_second_verify_us"], "second verify") > 0.0);

    let verify = &json["verify"];
    for (pattern, keys) in [("uniform", 2000), ("hot", 200)] {
        let p = &verify[pattern];
        assert_eq!(p["keys"], keys, "{pattern}");
        for field in [
            "keyward_ns",
            "floor_ns",
            "ratio",
            "keyward_wall_ns",
            "floor_wall_ns",
        ] {
            assert!(num(&p[field], field) > 0.0, "{pattern} {field}");
        }
    }
    assert_eq!(verify["cached_records"], 2000);

    let processes = &json["processes"];
    assert_eq!(processes["count"], 4);
    assert_eq!(processes["spread_keys"], 200);
    if processes["pss_available"] == true {
        let added = processes["pss_added_bytes"].as_array().unwrap();
        assert_eq!(added.len(), 4);
        let sum: u64 = added.iter().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(processes["pss_added_sum_bytes"], sum);
        assert!(sum > 0);
        assert_eq!(
            processes["pss_anon_added_bytes"].as_array().unwrap().len(),
            4
        );
        assert_eq!(
            processes["pss_shared_added_bytes"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }
    let cached = processes["cached_records"].as_array().unwrap();
    assert_eq!(cached.len(), 4);
    assert!(
        cached.iter().all(|c| c.as_u64().unwrap() >= 200),
        "{processes}"
    );
    assert!(processes["commits"].as_u64().is_some(), "{processes}");
    assert!(num(&processes["window_seconds"], "window") >= 1.5);
    assert_eq!(num(&processes["flush_interval_seconds"], "interval"), 1.0);
    assert!(num(&processes["verifies_per_sec"], "verifies/s") > 0.0);

    let goals = json["goals"].as_array().unwrap();
    assert!(goals.len() >= 7, "{goals:?}");
    for goal in goals {
        assert!(
            goal["met"].is_boolean() && goal["value"].is_number(),
            "{goal}"
        );
    }
}
