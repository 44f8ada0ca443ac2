//! `ferrofeed book replay` on the real captured snapshot-plus-diff sequences:
//! the counts and best bid/ask listed in ../shared/fixtures/PROVENANCE.md, a gap
//! cut into a capture, and a bad line.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/");

fn dir(venue_dir: &str, symbol: &str) -> String {
    format!("{FIXTURES}{venue_dir}/book_sync/{symbol}")
}

fn replay(market: &str, snapshot: &str, updates: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["book", "replay", "--venue", "binance", "--market", market, "--snapshot", snapshot, "--updates"])
        .arg(updates)
        .args(extra)
        .output()
        .expect("runs ferrofeed")
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn temp_file(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrofeed-book-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write temp file");
    path
}

/// (market, fixture dir, symbol, dropped, applied, best bid, best ask) as
/// PROVENANCE.md lists them.
const CASES: [(&str, &str, &str, u64, u64, &str, &str); 4] = [
    ("spot", "binance_spot", "BLZETH", 1, 9, "0.00006547", "0.00006560"),
    ("spot", "binance_spot", "LRCBTC", 2, 13, "0.00000637", "0.00000638"),
    ("usdm", "binance_futures", "AKROUSDT", 1, 188, "0.01734", "0.01735"),
    ("usdm", "binance_futures", "CTKUSDT", 5, 180, "1.01100", "1.01200"),
];

#[test]
fn captured_sequences_replay_without_gaps_to_the_documented_best_prices() {
    for (market, vdir, symbol, dropped, applied, bid, ask) in CASES {
        let d = dir(vdir, symbol);
        let snap = format!("{d}/rest_depth_snapshot.json");
        let updates = format!("{d}/depth_updates.jsonl");
        let v = json(&replay(market, &snap, &updates, &["--depth", "3"]));
        assert_eq!(v["symbol"], symbol);
        assert_eq!(
            (v["gaps"].as_u64(), v["dropped"].as_u64(), v["applied"].as_u64()),
            (Some(0), Some(dropped), Some(applied)),
            "{symbol}"
        );
        assert_eq!(v["bids"][0][0], bid, "{symbol} best bid");
        assert_eq!(v["asks"][0][0], ask, "{symbol} best ask");
        assert_eq!(v["bids"].as_array().map(Vec::len), Some(3));
        // The last update id is the last diff's u.
        let last_line = std::fs::read_to_string(&updates).unwrap().lines().last().unwrap().to_string();
        let last: Value = serde_json::from_str(&last_line).unwrap();
        assert_eq!(v["last_update_id"], last["data"]["u"], "{symbol}");
        // Bids best first (descending), asks ascending, never crossed.
        let full = json(&replay(market, &snap, &updates, &[]));
        let px = |side: &str| -> Vec<f64> {
            full[side].as_array().unwrap().iter().map(|l| l[0].as_str().unwrap().parse().unwrap()).collect()
        };
        let (bids, asks) = (px("bids"), px("asks"));
        assert!(bids.windows(2).all(|w| w[0] > w[1]) && asks.windows(2).all(|w| w[0] < w[1]));
        assert!(bids[0] < asks[0], "{symbol} crossed");
    }
}

#[test]
fn a_missing_diff_is_a_gap_and_applying_stops_there() {
    for (market, vdir, symbol, dropped, _, _, _) in CASES {
        let d = dir(vdir, symbol);
        let lines: Vec<String> =
            std::fs::read_to_string(format!("{d}/depth_updates.jsonl")).unwrap().lines().map(str::to_string).collect();
        // Remove a diff well after the bridge.
        let cut = dropped as usize + 4;
        let mut kept = lines.clone();
        kept.remove(cut);
        let path = temp_file(&format!("{symbol}-gap.jsonl"), &kept.join("\n"));
        let v = json(&replay(market, &format!("{d}/rest_depth_snapshot.json"), path.to_str().unwrap(), &[]));
        assert_eq!(v["gaps"], 1, "{symbol}");
        // Applied: the bridge and the diffs before the cut.
        assert_eq!(v["applied"].as_u64(), Some(cut as u64 - dropped), "{symbol}");
        let before: Value = serde_json::from_str(&lines[cut - 1]).unwrap();
        assert_eq!(v["last_update_id"], before["data"]["u"], "{symbol}: the book stops at the last in-sync diff");
    }
}

#[test]
fn a_snapshot_older_than_every_diff_is_a_gap() {
    let d = dir("binance_spot", "BLZETH");
    let lines: Vec<String> =
        std::fs::read_to_string(format!("{d}/depth_updates.jsonl")).unwrap().lines().map(str::to_string).collect();
    let path = temp_file("BLZETH-late.jsonl", &lines[4..].join("\n"));
    let v = json(&replay("spot", &format!("{d}/rest_depth_snapshot.json"), path.to_str().unwrap(), &[]));
    assert_eq!((v["gaps"].as_u64(), v["applied"].as_u64()), (Some(1), Some(0)));
    assert_eq!(v["last_update_id"], 281916627u64, "still the snapshot");
}

#[test]
fn a_bad_line_fails_with_its_number_and_payload() {
    let d = dir("binance_spot", "BLZETH");
    let mut lines: Vec<String> =
        std::fs::read_to_string(format!("{d}/depth_updates.jsonl")).unwrap().lines().map(str::to_string).collect();
    lines.insert(2, r#"{"stream":"blzeth@depth@100ms","data":{"e":"depthUpdate","U":"#.into());
    let path = temp_file("BLZETH-bad.jsonl", &lines.join("\n"));
    let out = replay("spot", &format!("{d}/rest_depth_snapshot.json"), path.to_str().unwrap(), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("depthUpdate"), "the payload is quoted: {err}");
    let missing = replay("spot", "/nonexistent/snap.json", path.to_str().unwrap(), &[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/snap.json"));
}

/// Bybit: the capture's first frame is the snapshot; 413 deltas follow with
/// consecutive `u` (PROVENANCE.md: 414 frames of orderbook.200.BTCUSDT).
#[test]
fn bybit_capture_replays_from_its_stream_snapshot_without_gaps() {
    let updates = format!("{FIXTURES}bybit_v5/book_sync/linear_BTCUSDT/orderbook.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["book", "replay", "--venue", "bybit", "--market", "linear", "--depth", "5", "--updates", &updates])
        .output()
        .expect("runs");
    let v = json(&out);
    assert_eq!(
        (v["symbol"].as_str(), v["gaps"].as_u64(), v["applied"].as_u64()),
        (Some("BTCUSDT"), Some(0), Some(413))
    );
    let last_line = std::fs::read_to_string(&updates).unwrap().lines().last().unwrap().to_string();
    let last: Value = serde_json::from_str(&last_line).unwrap();
    assert_eq!(v["last_update_id"], last["data"]["u"]);
    let (bid, ask): (f64, f64) =
        (v["bids"][0][0].as_str().unwrap().parse().unwrap(), v["asks"][0][0].as_str().unwrap().parse().unwrap());
    assert!(bid < ask, "uncrossed");
    // A cut delta is a gap.
    let lines: Vec<&str> = std::fs::read_to_string(&updates).unwrap().leak().lines().collect();
    let mut kept: Vec<&str> = lines.clone();
    kept.remove(10);
    let path = temp_file("bybit-gap.jsonl", &kept.join("\n"));
    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["book", "replay", "--venue", "bybit", "--market", "linear", "--updates", path.to_str().unwrap()])
        .output()
        .expect("runs");
    let v = json(&out);
    assert_eq!((v["gaps"].as_u64(), v["applied"].as_u64()), (Some(1), Some(9)));
    // Venue and market must match.
    let bad = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["book", "replay", "--venue", "bybit", "--market", "usdm", "--updates", &updates])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bybit has no market usdm"));
}
