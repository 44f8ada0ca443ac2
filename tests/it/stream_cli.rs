//! `ferrofeed stream` end to end against the embedded simulator: every stdout
//! line is a documented event, `/metrics` parses as Prometheus text and its
//! counters move, SIGTERM stops cleanly, bad input is a clear error.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrofeed::model::event::{Event, EventKind};
use serde_json::Value;

/// Kills the child on drop so a failing test leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stream(args: &[&str]) -> Child {
    Child(
        Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
            .arg("stream")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferrofeed stream"),
    )
}

fn get(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect metrics");
    write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let ct = text.lines().find(|l| l.to_ascii_lowercase().starts_with("content-type:")).unwrap_or("");
    assert!(ct.contains("text/plain"), "{ct}");
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

fn metric(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// A line is an `Event` and serializes back to the same JSON: the documented
/// contract (docs/events.md) and the output agree.
fn check_line(line: &str) -> Event {
    let ev: Event = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a documented event ({e}): {line}"));
    let back = serde_json::to_value(&ev).unwrap();
    let orig: Value = serde_json::from_str(line).unwrap();
    assert_eq!(back, orig, "{line}");
    for key in ["type", "venue", "market", "exchange_ts", "receive_ts"] {
        assert!(orig.get(key).is_some(), "{key} missing: {line}");
    }
    ev
}

#[test]
fn stream_prints_documented_events_and_serves_moving_metrics() {
    let mut child = stream(&[
        "--env",
        "sim",
        "--trades",
        "BTCUSDT",
        "--book",
        "ETHUSDT",
        "binance:usdm:btcusdt@aggTrade",
        "--status",
        "--metrics",
        "127.0.0.1:0",
        "--duration",
        "5s",
    ]);
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).expect("metrics line");
    let v: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    let url = v["metrics"].as_str().expect("metrics URL").to_string();
    let stdout = child.0.stdout.take().unwrap();
    let reader =
        std::thread::spawn(move || BufReader::new(stdout).lines().map(|l| l.expect("utf-8")).collect::<Vec<_>>());

    let scrape =
        || prometheus_parse::Scrape::parse(get(&url).lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    let trades = |s: &prometheus_parse::Scrape| metric(s, "ferrofeed_events_total", Some(("type", "trade")));
    let msgs =
        |s: &prometheus_parse::Scrape| metric(s, "ferrofeed_stream_messages_total", Some(("stream", "btcusdt@trade")));
    let synced = |s: &prometheus_parse::Scrape| metric(s, "ferrofeed_book_synced", Some(("symbol", "ETHUSDT")));
    // Scrape until the counters have moved and the book is in sync (a hang
    // guard of 20 s, not a timing bound).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let until = |ok: &dyn Fn(&prometheus_parse::Scrape) -> bool| loop {
        let s = scrape();
        if ok(&s) {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "metrics never got there");
        std::thread::sleep(Duration::from_millis(50));
    };
    let a = until(&|s| trades(s) > 0.0 && msgs(s) > 0.0);
    let b = until(&|s| trades(s) > trades(&a) && msgs(s) > msgs(&a) && synced(s) == 1.0);
    assert!(trades(&b) > trades(&a) && trades(&a) > 0.0, "trade counter moves: {} -> {}", trades(&a), trades(&b));
    assert!(msgs(&b) > msgs(&a));
    assert_eq!(metric(&b, "ferrofeed_connection_up", None), 2.0, "one connection per market, both up");
    assert_eq!(metric(&b, "ferrofeed_book_synced", Some(("symbol", "ETHUSDT"))), 1.0);
    assert!(metric(&b, "ferrofeed_rest_weight_used", Some(("market", "spot"))) > 0.0);
    assert!(metric(&b, "ferrofeed_queue_capacity", None) > 0.0);

    let status = child.0.wait().expect("exits");
    assert!(status.success(), "{status:?}");
    let lines = reader.join().unwrap();
    let mut types = std::collections::BTreeMap::new();
    let mut synced = false;
    for l in &lines {
        let ev = check_line(l);
        if let EventKind::BookUpdate(_) = ev.kind {
            assert!(synced, "book_update before book_snapshot");
        }
        if let EventKind::BookSnapshot(_) = ev.kind {
            synced = true;
        }
        *types.entry(ev.kind.type_name()).or_insert(0) += 1;
    }
    for t in ["trade", "agg_trade", "book_snapshot", "book_update", "connected"] {
        assert!(types.get(t).is_some_and(|n| *n > 0), "no {t}: {types:?}");
    }
}

#[test]
fn sigterm_stops_cleanly_with_whole_lines() {
    let mut child = stream(&["--env", "sim", "--trades", "BTCUSDT,ETHUSDT"]);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let start = Instant::now();
    let mut n = 0;
    while n < 20 {
        let l = lines.next().expect("a line").expect("utf-8");
        check_line(&l);
        n += 1;
        assert!(start.elapsed() < Duration::from_secs(30));
    }
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    for l in lines {
        check_line(&l.expect("utf-8"));
    }
    let status = child.0.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[test]
fn unknown_symbols_and_bad_subscriptions_are_clear_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["stream", "--env", "sim", "--trades", "NOPEUSDT", "--duration", "2s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NOPEUSDT") || err.contains("nopeusdt"), "{err}");
    assert!(out.stdout.is_empty());

    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed")).args(["stream", "kraken:spot:x@trade"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown venue"));

    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed")).args(["stream", "--env", "sim"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to stream"));
}
