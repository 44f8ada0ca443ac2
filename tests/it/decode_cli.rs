//! `ferrofeed decode` end to end: the built binary on real captures and on a
//! file with a malformed line.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/");

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn decode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .arg("decode")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runs ferrofeed")
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
        .collect()
}

fn temp_file(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrofeed-decode-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write temp file");
    path
}

#[test]
fn decodes_a_capture_into_documented_lines() {
    let rel = "binance_futures/book_sync/CTKUSDT/depth_updates.jsonl";
    let path = format!("{FIXTURES}{rel}");
    let out = decode(&["--venue", "binance", "--market", "usdm", &path]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = lines(&out);
    assert_eq!(events.len(), fixture(rel).lines().count());
    let first = &events[0];
    assert_eq!(first["type"], "book_delta");
    assert_eq!(first["venue"], "binance");
    assert_eq!(first["market"], "usdm");
    assert_eq!(first["symbol"], "CTKUSDT");
    assert_eq!(first["exchange_ts"], 1_626_992_741_156_000_000_i64);
    assert!(first["receive_ts"].as_i64().is_some_and(|t| t > 1_600_000_000_000_000_000));
    assert_eq!(first["first_update_id"], 600_859_602_414_u64);
    assert_eq!(first["last_update_id"], 600_859_603_788_u64);
    assert_eq!(first["prev_update_id"], 600_859_587_990_u64);
    assert_eq!(first["bids"], serde_json::json!([["1.00600", "14217"]]));
    assert_eq!(first["asks"], serde_json::json!([["1.01300", "17718"], ["1.01500", "20835"]]));
    for e in &events {
        assert_eq!(e["type"], "book_delta");
        assert!(e["first_update_id"].is_u64() && e["last_update_id"].is_u64() && e["prev_update_id"].is_u64());
    }
}

#[test]
fn reports_a_malformed_line_and_goes_on() {
    let trade = fixture("binance_spot/agg_trade.json");
    let depth = fixture("binance_spot/depth_update.json");
    let body = format!("{}\n{{\"e\":\"trade\",\"E\":\n{}\n", trade.trim_end(), depth.trim_end());
    let path = temp_file("malformed.jsonl", &body);
    let out = decode(&["--venue", "binance", "--market", "spot", path.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("line 2:"), "{stderr}");
    assert!(!stderr.contains("line 1:") && !stderr.contains("line 3:"), "{stderr}");
    let events = lines(&out);
    assert_eq!(events.len(), 2, "the lines around the bad one still decode");
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["price"].as_str(), events[0]["side"].as_str()),
        (Some("agg_trade"), Some("0.35280000"), Some("buy"))
    );
    assert_eq!(events[0]["trade_id"], "15683430");
    assert_eq!(events[0]["exchange_ts"], 1_633_998_523_963_000_000_i64);
    assert_eq!((events[1]["type"].as_str(), events[1]["symbol"].as_str()), (Some("book_delta"), Some("NKNUSDT")));
    assert_eq!(events[1]["first_update_id"], 499_869_753_u64);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn reads_standard_input_and_rejects_unknown_markets() {
    let frame = fixture("binance_spot/book_ticker.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["decode", "--venue", "binance", "--market", "spot", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(frame.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    let events = lines(&out);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "top_of_book");
    assert_eq!(events[0]["bid_price"], "0.35210000");
    assert_eq!(events[0]["exchange_ts"], serde_json::Value::Null);

    let bad = decode(&["--venue", "binance", "--market", "moon", "-"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("moon"));

    let help = decode(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("ferrofeed decode --venue binance --market spot"), "{text}");
    assert!(text.contains("exit code is 1"), "{text}");
}

#[test]
fn decodes_bybit_frames_with_the_bybit_market_names() {
    let path = format!("{FIXTURES}bybit_v5/public_trade.linear.json");
    let out = decode(&["--venue", "bybit", "--market", "linear", &path]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = lines(&out);
    assert!(!lines.is_empty());
    for v in &lines {
        assert_eq!(
            (v["venue"].as_str(), v["market"].as_str(), v["type"].as_str()),
            (Some("bybit"), Some("linear"), Some("trade"))
        );
    }
    let snap = format!("{FIXTURES}bybit_v5/orderbook_snapshot.spot.json");
    let out = decode(&["--venue", "bybit", "--market", "spot", &snap]);
    let v = &lines_of(&out)[0];
    assert_eq!((v["type"].as_str(), v["market"].as_str()), (Some("book_snapshot"), Some("spot")));
    let bad = decode(&["--venue", "binance", "--market", "linear", &path]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("binance has no market linear"));
}

fn lines_of(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    lines(out)
}
