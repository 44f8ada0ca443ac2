//! The Grafana dashboard (`deploy/grafana/ferrofeed.json`) queries only what
//! `/metrics` serves: every metric name in its queries appears as a sample in
//! a real scrape, and every label it groups or names a legend by is on one of
//! that query's metrics. The scrape comes from a feed on two venues of the
//! simulator, with a book and a killed connection (so the recovery histogram
//! has samples).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ferrofeed::feed::Feed;
use ferrofeed::model::event::EventKind;
use ferrofeed::venues::{Channel, binance, bybit};
use ferrofeed_sim::KillMode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/ferrofeed.json");

/// Every query of the dashboard: (panel title, PromQL, legend format).
fn queries(dash: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dash["panels"].as_array().expect("panels").iter().collect();
    while let Some(p) = panels.pop() {
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("").to_string(),
                t["expr"].as_str().expect("every target has an expr").to_string(),
                t["legendFormat"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

/// The words of `s` that start with `prefix` (metric names).
fn names(s: &str, prefix: &str) -> BTreeSet<String> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// Labels a query groups by (`by (a, b)`) or a legend names (`{{a}}`).
fn labels_used(expr: &str, legend: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("by (") {
        let after = &rest[i + 4..];
        let end = after.find(')').expect("closed by clause");
        out.extend(after[..end].split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty() && l != "le"));
        rest = &after[end..];
    }
    let mut rest = legend;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let end = after.find("}}").expect("closed legend label");
        out.insert(after[..end].trim().to_string());
        rest = &after[end..];
    }
    out
}

/// Sample names of a Prometheus text scrape, each with the label names seen on it.
fn samples(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..name_end].to_string()).or_default();
        if let Some(body) = line[name_end..].strip_prefix('{').and_then(|b| b.split_once('}')).map(|(b, _)| b) {
            labels.extend(body.split("\",").filter_map(|kv| kv.split_once('=')).map(|(k, _)| k.trim().to_string()));
        }
    }
    out
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect metrics");
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).await.expect("answer");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// What the dashboard needs that a scrape lacks: missing metrics, and labels
/// a query uses that none of its metrics carry.
fn missing(qs: &[(String, String, String)], have: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (title, expr, legend) in qs {
        let metrics = names(expr, "ferrofeed_");
        for m in &metrics {
            if !have.contains_key(m) {
                out.push(format!("{title}: metric {m} is not served"));
            }
        }
        let carried: BTreeSet<&String> = metrics.iter().filter_map(|m| have.get(m)).flatten().collect();
        for l in labels_used(expr, legend) {
            if !carried.contains(&l) {
                out.push(format!("{title}: label {l} is on none of {metrics:?}"));
            }
        }
    }
    out
}

#[test]
fn the_dashboard_is_importable_json_with_unique_panel_ids() {
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).expect("dashboard")).expect("JSON");
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS", "a datasource input, so import asks for one");
    let ids: Vec<u64> =
        dash["panels"].as_array().unwrap().iter().map(|p| p["id"].as_u64().expect("panel id")).collect();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "panel ids are unique");
    let qs = queries(&dash);
    assert!(qs.len() >= 20, "{} queries", qs.len());
    for (title, expr, _) in &qs {
        assert!(!names(expr, "ferrofeed_").is_empty(), "{title}: {expr} queries no ferrofeed metric");
    }
    // The families the issue asks for are all on the board.
    let all: BTreeSet<String> = qs.iter().flat_map(|(_, e, _)| names(e, "ferrofeed_")).collect();
    for family in [
        "ferrofeed_connection_up",
        "ferrofeed_stream_last_message_age_seconds",
        "ferrofeed_gaps_total",
        "ferrofeed_book_resyncs_total",
        "ferrofeed_ratelimit_messages_used",
        "ferrofeed_queue_depth",
        "ferrofeed_recovery_seconds_bucket",
    ] {
        assert!(all.contains(family), "{family} is not on the dashboard");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_served() {
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).expect("dashboard")).expect("JSON");
    let qs = queries(&dash);

    let markets = [binance::spec::SPOT, bybit::spec::LINEAR];
    let sim = ferrofeed::simulated::start(&markets).await.expect("sim");
    let spot = sim.markets().iter().find(|h| h.config().venue_market() == ("binance", "spot")).expect("spot").clone();
    let mut feed = Feed::builder()
        .simulator(&sim)
        .subscribe(markets[0], Channel::Trades, "BTCUSDT")
        .subscribe(markets[1], Channel::Trades, "BTCUSDT")
        .book(markets[0], "BTCUSDT")
        .build()
        .await
        .expect("feed");
    let (addr, server) = ferrofeed::metrics::serve("127.0.0.1:0".parse().unwrap(), feed.stats()).await.expect("serve");

    // Run until the book is in sync and both venues traded, kill the spot
    // socket once, then scrape until the dashboard's needs are met (a hang
    // guard, not a timing bound).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut venues = BTreeSet::new();
    let (mut synced, mut killed) = (false, false);
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    let mut last = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "the scrape never served everything the dashboard queries: {last:#?}");
        tokio::select! {
            e = feed.next() => {
                let e = e.expect("the feed runs");
                match &e.kind {
                    EventKind::Trade(_) => { venues.insert(e.venue); }
                    EventKind::BookSnapshot(_) => synced = true,
                    _ => {}
                }
            }
            _ = poll.tick() => {
                if !killed && synced && venues.len() == 2 {
                    assert!(spot.kill_all(KillMode::Reset) > 0, "a spot socket to kill");
                    killed = true;
                }
                if killed {
                    last = missing(&qs, &samples(&scrape(addr).await));
                    if last.is_empty() {
                        break;
                    }
                }
            }
        }
    }
    server.abort();
    feed.shutdown().await;
    sim.shutdown().await;
}
