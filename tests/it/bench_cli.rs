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

/// Depth: 20,000 diffs of the simulator's depth load form over 3 books,
/// through ferrofeed's local books and through the BTreeMap reference; every
/// book synced once, nothing lost, and the book of LOAD0USDT equal in both
/// readers and to the simulator's at the end.
#[test]
fn e2e_depth_through_books_loses_nothing_and_ends_with_equal_books() {
    let v = bench(&["e2e", "--stream", "depth", "--books", "3", "--messages", "20000", "--no-pin"]);
    for key in ["reference_msgs_per_s", "ferrofeed_msgs_per_s", "ratio", "cpu_s", "max_rss_mib", "subscribe_s"] {
        assert!(number(&v, key) >= 0.0, "{key} in {v}");
    }
    assert!(v.get("stand_in").is_none(), "{v}");
    assert_eq!((&v["venue"], &v["stream"]), (&Value::from("binance"), &Value::from("depth")));
    assert_eq!(v["messages"], 20000);
    assert_eq!(v["books"], 3);
    assert_eq!(v["book_snapshots"], 3, "{v}");
    assert_eq!(v["book_equal"], true, "{v}");
    assert_eq!(v["book_matches_truth"], true, "{v}");
    assert!(number(&v, "book_levels") > 0.0, "{v}");
    assert_eq!(v["lost"], 0);
    assert_eq!(v["reference_lost"], 0);
    assert_eq!(v["decode_errors"], 0);
}

/// Bybit: 20,000 linear publicTrade.LOADUSDT messages, consecutive trade ids
/// in both readers.
#[test]
fn e2e_bybit_trades_lose_nothing() {
    let v = bench(&["e2e", "--venue", "bybit", "--messages", "20000", "--no-pin"]);
    assert!(v.get("stand_in").is_none(), "{v}");
    assert_eq!((&v["venue"], &v["stream"]), (&Value::from("bybit"), &Value::from("trade")));
    assert_eq!(v["messages"], 20000);
    for key in ["reference_msgs_per_s", "ferrofeed_msgs_per_s", "ratio"] {
        assert!(number(&v, key) > 0.0, "{key} in {v}");
    }
    for key in ["cpu_s", "max_rss_mib"] {
        assert!(number(&v, key) >= 0.0, "{key} in {v}");
    }
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
