//! `ferrofeed bench`: every subcommand runs with tiny parameters and prints the
//! JSON object it promises, with nothing lost. Rates and timings are never
//! asserted (benchmarks measure; they do not fail on a number).

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .arg("bench")
        .args(args)
        .args(["--json"])
        .output()
        .expect("run ferrofeed bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench {args:?} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bench {args:?}: not one JSON object ({e}): {stdout}"))
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn e2e_reports_both_readers_and_loses_nothing() {
    let v = bench(&["e2e", "--messages", "20000"]);
    for key in ["messages", "reference_msgs_per_s", "ferrofeed_msgs_per_s", "ratio", "lost", "cpu_s", "max_rss_mib"] {
        assert!(number(&v, key) >= 0.0, "{key} in {v}");
    }
    assert_eq!(v["messages"], 20000);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["reference_lost"], 0);
    assert_eq!(v["decode_errors"], 0);
}

/// The depth stand-in: diffs through 3 local books against the BTreeMap
/// reference, for half a second each; every book synced, nothing lost.
#[test]
fn e2e_depth_through_books_loses_nothing() {
    let v = bench(&["e2e", "--stream", "depth", "--books", "3", "--seconds", "0.5", "--no-pin"]);
    for key in ["messages", "reference_msgs_per_s", "ferrofeed_msgs_per_s", "ratio", "cpu_s", "max_rss_mib"] {
        assert!(number(&v, key) >= 0.0, "{key} in {v}");
    }
    assert_eq!(v["stand_in"], true);
    assert_eq!(v["stream"], "depth");
    assert!(number(&v, "messages") > 0.0 && number(&v, "reference_messages") > 0.0, "{v}");
    assert_eq!(v["book_snapshots"], 3, "{v}");
    assert_eq!(v["lost"], 0);
    assert_eq!(v["reference_lost"], 0);
    assert_eq!(v["decode_errors"], 0);
}

/// The Bybit stand-in: linear publicTrade on 3 symbols, consecutive trade ids.
#[test]
fn e2e_bybit_trades_lose_nothing() {
    let v = bench(&["e2e", "--venue", "bybit", "--books", "3", "--seconds", "0.5", "--no-pin"]);
    assert_eq!(v["venue"], "bybit");
    assert_eq!(v["stream"], "trade");
    assert!(number(&v, "messages") > 0.0 && number(&v, "reference_messages") > 0.0, "{v}");
    assert!(number(&v, "ratio") >= 0.0, "{v}");
    assert_eq!(v["lost"], 0);
    assert_eq!(v["reference_lost"], 0);
    assert_eq!(v["decode_errors"], 0);
}

#[test]
fn latency_reports_percentiles_for_both_readers() {
    let v = bench(&["latency", "--rate", "20000", "--seconds", "0.5"]);
    for reader in ["reference", "ferrofeed"] {
        for key in ["p50_us", "p99_us", "p999_us"] {
            assert!(v[reader][key].is_number(), "{reader}.{key} in {v}");
        }
        assert!(v[reader]["samples"].as_u64().unwrap_or(0) > 0, "{v}");
    }
    for key in ["p50_diff_us", "p99_diff_us", "p999_diff_us"] {
        assert!(v[key].is_number(), "{key} in {v}");
    }
    assert_eq!(v["messages"], 10000);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["reference_lost"], 0);
}

#[test]
fn book_reports_level_updates_per_second() {
    let v = bench(&["book", "--seconds", "0.1", "--levels", "200"]);
    assert!(number(&v, "level_updates_per_s") > 0.0, "{v}");
    assert!(number(&v, "top20_reads_per_s") > 0.0, "{v}");
}

#[test]
fn scale_reports_streams_connections_and_memory() {
    let v = bench(&["scale", "--streams", "1200", "--hold", "200ms"]);
    assert_eq!(v["streams"], 1200);
    // 1024 streams per connection at most.
    assert_eq!(v["connections"], 2);
    for key in ["rss_mib", "subscribe_seconds", "subscribe_floor_seconds"] {
        assert!(number(&v, key) >= 0.0, "{key} in {v}");
    }
}
