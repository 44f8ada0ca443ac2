//! Conformance of every kind of frame the simulator emits with the REAL Binance
//! payloads kept in `shared/fixtures` (live captures and the official docs'
//! examples): the simulator's frame must have the same field names, the same JSON
//! value types and the same nesting as the fixture.
//!
//! Fixtures are read in place from the shared folder, never copied into the repo.
//! `.docs.jsonc` files (docs originals with comments) are not strict JSON and are
//! never parsed; their `.docs.json` twins are used instead.
//!
//! The simulator runs in-process on 127.0.0.1 and is driven by a third-party
//! client (tokio-tungstenite) and a raw HTTP/1.1 socket for REST.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use ferrofeed_sim::{MarketConfig, MarketHandle, MarketKind, Sim, SimConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// `/work/main/crates/sim` → `/work/shared/fixtures`.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

/// Generous: rare frames (forceOrder) need a few scaled seconds at most.
const WAIT: Duration = Duration::from_secs(20);

/// Frames compared per stream (more than one, so e.g. an empty side in one diff
/// does not hide the level shape).
const FRAMES_PER_STREAM: usize = 3;

/// Keys that nautilus_trader added when it transcribed the USD-M docs examples
/// (`*.docs_via_nautilus.json`, see PROVENANCE.md): `st` and `ps` are not in the
/// live USD-M captures (`binance_futures/depth_update.json` has no `ps`/`st`).
/// Only these exact paths may be missing from the simulator's frame; every other
/// difference fails.
const NAUTILUS_DEPTH_EXTRAS: &[&str] = &["$.ps", "$.st"];
const NAUTILUS_ST_EXTRA: &[&str] = &["$.st"];

// ---------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------

/// The structure of a JSON value: key names, value types and nesting.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Null,
    Bool,
    /// Binance ids and times are integers.
    Int,
    Float,
    Str,
    /// Element shape; `None` for an empty array (compatible with anything).
    Array(Option<Box<Shape>>),
    Object(BTreeMap<String, Shape>),
    /// An array whose elements disagree (the reason).
    Mixed(String),
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Null => f.write_str("null"),
            Shape::Bool => f.write_str("bool"),
            Shape::Int => f.write_str("integer"),
            Shape::Float => f.write_str("float"),
            Shape::Str => f.write_str("string"),
            Shape::Array(None) => f.write_str("[]"),
            Shape::Array(Some(e)) => write!(f, "[{e}]"),
            Shape::Object(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("}")
            }
            Shape::Mixed(why) => write!(f, "mixed({why})"),
        }
    }
}

fn shape(v: &Value) -> Shape {
    match v {
        Value::Null => Shape::Null,
        Value::Bool(_) => Shape::Bool,
        Value::Number(n) if n.is_i64() || n.is_u64() => Shape::Int,
        Value::Number(_) => Shape::Float,
        Value::String(_) => Shape::Str,
        Value::Object(m) => Shape::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => {
            let mut acc: Option<Shape> = None;
            for (i, e) in a.iter().enumerate() {
                let s = shape(e);
                acc = Some(match acc {
                    None => s,
                    Some(prev) => match unify(&prev, &s) {
                        Some(u) => u,
                        None => return Shape::Mixed(format!("element {i} is {s}, earlier ones are {prev}")),
                    },
                });
            }
            Shape::Array(acc.map(Box::new))
        }
    }
}

/// The common shape of two array elements, if they agree (empty arrays agree
/// with any array).
fn unify(a: &Shape, b: &Shape) -> Option<Shape> {
    match (a, b) {
        (Shape::Array(None), Shape::Array(x)) | (Shape::Array(x), Shape::Array(None)) => Some(Shape::Array(x.clone())),
        (Shape::Array(Some(x)), Shape::Array(Some(y))) => Some(Shape::Array(Some(Box::new(unify(x, y)?)))),
        (Shape::Object(x), Shape::Object(y)) => {
            if x.len() != y.len() || x.keys().any(|k| !y.contains_key(k)) {
                return None;
            }
            x.iter()
                .map(|(k, v)| Some((k.clone(), unify(v, &y[k])?)))
                .collect::<Option<BTreeMap<_, _>>>()
                .map(Shape::Object)
        }
        _ if a == b => Some(a.clone()),
        _ => None,
    }
}

/// Differences between the fixture's shape (`want`) and the simulator's (`got`),
/// one readable line each with its JSON path. `allowed_missing` lists exact paths
/// that the fixture may have and the simulator may lack.
fn diff(path: &str, want: &Shape, got: &Shape, allowed_missing: &[&str], out: &mut Vec<String>) {
    match (want, got) {
        (Shape::Mixed(why), _) => out.push(format!("{path}: fixture array elements disagree: {why}")),
        (_, Shape::Mixed(why)) => out.push(format!("{path}: simulator array elements disagree: {why}")),
        (Shape::Object(w), Shape::Object(g)) => {
            for (k, ws) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gs) => diff(&p, ws, gs, allowed_missing, out),
                    None if allowed_missing.contains(&p.as_str()) => {}
                    None => out.push(format!("{p}: missing in simulator frame (fixture has {ws})")),
                }
            }
            for (k, gs) in g {
                if !w.contains_key(k) {
                    out.push(format!("{path}.{k}: extra key in simulator frame ({gs}), not in fixture"));
                }
            }
        }
        (Shape::Array(None), Shape::Array(_)) | (Shape::Array(_), Shape::Array(None)) => {}
        (Shape::Array(Some(w)), Shape::Array(Some(g))) => diff(&format!("{path}[]"), w, g, allowed_missing, out),
        _ if want == got => {}
        _ => out.push(format!("{path}: type mismatch: fixture {want}, simulator {got}")),
    }
}

/// Whether `path` (`$.a.b`) exists in `v`.
fn has_path(v: &Value, path: &str) -> bool {
    let mut cur = v;
    for part in path.trim_start_matches("$.").split('.') {
        match cur.get(part) {
            Some(x) => cur = x,
            None => return false,
        }
    }
    true
}

/// Asserts that `got` (a simulator frame) has the fixture's structure and event
/// type. Panics with every difference listed.
fn assert_conforms(label: &str, fixture: &Value, got: &Value, allowed_missing: &[&str]) {
    for p in allowed_missing {
        assert!(has_path(fixture, p), "{label}: stale allowed exception {p}: the fixture does not have it");
    }
    let mut out = Vec::new();
    diff("$", &shape(fixture), &shape(got), allowed_missing, &mut out);
    // The event type is part of the wire contract too (a shape cannot tell
    // "1hTicker" from "24hrTicker").
    for (path, f, g) in [("$.e", &fixture["e"], &got["e"]), ("$.data.e", &fixture["data"]["e"], &got["data"]["e"])] {
        if f.is_string() && f != g {
            out.push(format!("{path}: event type differs: fixture {f}, simulator {g}"));
        }
    }
    if !out.is_empty() {
        let mut frame = got.to_string();
        if frame.len() > 600 {
            frame.truncate(600);
            frame.push_str("...");
        }
        panic!(
            "{label}: simulator frame deviates from the fixture:\n  - {}\nsimulator frame: {frame}",
            out.join("\n  - ")
        );
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn fixture_text(rel: &str) -> String {
    assert!(!rel.ends_with(".jsonc"), "{rel}: .jsonc files are comment-carrying originals, use the .json twin");
    let path = format!("{FIXTURES}/{rel}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

fn fixture(rel: &str) -> Value {
    serde_json::from_str(&fixture_text(rel)).unwrap_or_else(|e| panic!("fixture {rel} is not JSON: {e}"))
}

fn fixture_lines(rel: &str) -> Vec<Value> {
    fixture_text(rel)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("fixture {rel} line {l}: {e}")))
        .collect()
}

// ---------------------------------------------------------------------------
// Simulator plumbing
// ---------------------------------------------------------------------------

/// A fast market: few symbols, frames at 20x speed, many book actions per second.
fn fast(kind: MarketKind) -> MarketConfig {
    let mut m = MarketConfig::new(kind);
    m.symbols.truncate(2);
    m.timing.scale = 0.05;
    m.timing.actions_per_sec = 100.0;
    m.timing.shutdown_grace = Duration::from_millis(500);
    // Control replies are what is compared here, not the venue's message-rate limit.
    m.limits.max_incoming_msgs = 100;
    m
}

async fn start(kind: MarketKind) -> (Sim, MarketHandle) {
    let sim = Sim::start(SimConfig::single(fast(kind))).await.expect("bind simulator");
    let h = sim.markets()[0].clone();
    (sim, h)
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

async fn connect(url: &str) -> Ws {
    within(url, connect_async(url)).await.unwrap_or_else(|e| panic!("connect {url}: {e}")).0
}

/// The next text frame as JSON (tungstenite answers pings itself).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = ws.next().await.expect("connection open").expect("frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap_or_else(|e| panic!("simulator sent invalid JSON {t}: {e}"));
        }
    }
}

/// The next frame satisfying `pred`, skipping others.
async fn next_where(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    within(what, async {
        loop {
            let v = next_json(ws).await;
            if pred(&v) {
                return v;
            }
        }
    })
    .await
}

async fn send(ws: &mut Ws, text: String) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// Sends a control message and returns the reply carrying its `id`.
async fn request(ws: &mut Ws, msg: Value) -> Value {
    send(ws, msg.to_string()).await;
    next_where(ws, &format!("reply to {msg}"), |v| v.get("id").is_some() && v.get("stream").is_none()).await
}

/// Collects `FRAMES_PER_STREAM` combined frames (`{"stream","data"}`) of every stream.
async fn collect_combined(ws: &mut Ws, streams: &[&str]) -> BTreeMap<String, Vec<Value>> {
    let mut got: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let done = |g: &BTreeMap<String, Vec<Value>>| {
        streams.iter().all(|s| g.get(*s).is_some_and(|v| v.len() >= FRAMES_PER_STREAM))
    };
    let r = timeout(WAIT, async {
        while !done(&got) {
            let v = next_json(ws).await;
            let stream = v.get("stream").and_then(Value::as_str).unwrap_or_else(|| panic!("not a combined frame: {v}"));
            assert!(v.get("data").is_some(), "combined frame without data: {v}");
            if streams.contains(&stream) {
                let e = got.entry(stream.to_string()).or_default();
                if e.len() < FRAMES_PER_STREAM {
                    e.push(v);
                }
            }
        }
    })
    .await;
    if r.is_err() {
        let missing: Vec<_> = streams.iter().filter(|s| !got.contains_key(**s)).collect();
        panic!("timed out after {WAIT:?}; streams that sent nothing: {missing:?}");
    }
    got
}

/// Collects `FRAMES_PER_STREAM` raw frames from `{ws_base}/ws/{stream}`.
async fn collect_raw(ws_base: &str, stream: &str) -> Vec<Value> {
    let mut ws = connect(&format!("{ws_base}/ws/{stream}")).await;
    let mut v = Vec::new();
    within(&format!("raw frames of {stream}"), async {
        while v.len() < FRAMES_PER_STREAM {
            v.push(next_json(&mut ws).await);
        }
    })
    .await;
    v
}

/// A plain HTTP/1.1 GET (`Connection: close`); returns (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect REST");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    within(path, s.read_to_end(&mut raw)).await.expect("read response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {text}"));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad status line: {head}"));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body) } else { body.to_string() };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").expect("chunk size line");
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).expect("chunk size");
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

/// Waits until the market has registered `n` connections (the upgrade completes
/// on the server a moment after the client sees 101).
async fn wait_connections(m: &MarketHandle, n: usize) {
    within("connections to register", async {
        while m.stats().connections_open < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

fn check_all(label: &str, fixture_rel: &str, frames: &[Value], allowed_missing: &[&str]) {
    let f = fixture(fixture_rel);
    assert!(!frames.is_empty(), "{label}: no frames");
    for (i, v) in frames.iter().enumerate() {
        assert_conforms(&format!("{label} (frame {i}) vs {fixture_rel}"), &f, v, allowed_missing);
    }
}

fn data_of(frames: &[Value]) -> Vec<Value> {
    frames.iter().map(|v| v["data"].clone()).collect()
}

// ---------------------------------------------------------------------------
// The shape checker itself
// ---------------------------------------------------------------------------

#[test]
fn shape_checker_reports_missing_extra_and_mismatched_fields() {
    let fixture = json!({"e":"x","E":1,"b":[["1","2"]],"k":{"t":1,"x":false},"st":1});
    let same = json!({"e":"x","E":9,"b":[],"k":{"t":2,"x":true}});
    assert_conforms("same", &fixture, &same, &["$.st"]);

    let bad = json!({"e":"y","E":"1","b":[[1,2]],"k":{"t":1.5},"extra":null});
    let mut out = Vec::new();
    diff("$", &shape(&fixture), &shape(&bad), &[], &mut out);
    let text = out.join("\n");
    for needle in [
        "$.E: type mismatch: fixture integer, simulator string",
        "$.b[][]: type mismatch: fixture string, simulator integer",
        "$.k.t: type mismatch: fixture integer, simulator float",
        "$.k.x: missing in simulator frame",
        "$.st: missing in simulator frame",
        "$.extra: extra key in simulator frame",
    ] {
        assert!(text.contains(needle), "{needle} not reported in:\n{text}");
    }
    let mut out = Vec::new();
    diff(
        "$",
        &shape(&fixture),
        &shape(&json!({"e":"x","E":1,"b":[["1"],[2]],"k":{"t":1,"x":true}})),
        &["$.st"],
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].starts_with("$.b: simulator array elements disagree"), "{out:?}");
    let panic = std::panic::catch_unwind(|| {
        assert_conforms("event", &fixture, &json!({"e":"z","E":1,"b":[],"k":{"t":1,"x":true},"st":2}), &[])
    });
    assert!(panic.is_err(), "a different event type must fail");
    assert_eq!(shape(&json!([[], ["a"]])), Shape::Array(Some(Box::new(Shape::Array(Some(Box::new(Shape::Str)))))));
    assert!(std::path::Path::new(FIXTURES).join("binance_spot").is_dir(), "fixtures not found at {FIXTURES}");
}

// ---------------------------------------------------------------------------
// Spot
// ---------------------------------------------------------------------------

/// Raw stream payloads (`/ws/<stream>`) against the spot docs examples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_raw_streams_match_the_docs_payloads() {
    let (sim, m) = start(MarketKind::Spot).await;
    let base = m.ws_url();
    for (stream, fx) in [
        ("btcusdt@trade", "binance_spot/trade.docs.json"),
        ("btcusdt@aggTrade", "binance_spot/agg_trade.docs.json"),
        ("btcusdt@depth", "binance_spot/depth_update.docs.json"),
        ("btcusdt@depth@100ms", "binance_spot/depth_update.docs.json"),
        ("btcusdt@depth5", "binance_spot/partial_depth.docs.json"),
        ("btcusdt@depth10@100ms", "binance_spot/partial_depth.docs.json"),
        ("btcusdt@depth20", "binance_spot/partial_depth.docs.json"),
        ("btcusdt@bookTicker", "binance_spot/book_ticker.docs.json"),
        ("btcusdt@ticker", "binance_spot/ticker_24hr.docs.json"),
        ("btcusdt@ticker_1h", "binance_spot/ticker_1h.docs.json"),
        ("btcusdt@miniTicker", "binance_spot/mini_ticker.docs.json"),
        ("btcusdt@kline_1m", "binance_spot/kline.docs.json"),
        ("btcusdt@kline_1s", "binance_spot/kline.docs.json"),
        ("btcusdt@avgPrice", "binance_spot/avg_price.docs.json"),
    ] {
        let frames = collect_raw(&base, stream).await;
        check_all(&format!("spot raw {stream}"), fx, &frames, &[]);
    }
    // The other rolling windows share the documented 1h payload; only the event type differs.
    for (stream, e) in [("btcusdt@ticker_4h", "4hTicker"), ("btcusdt@ticker_1d", "1dTicker")] {
        let mut fx = fixture("binance_spot/ticker_1h.docs.json");
        fx["e"] = e.into();
        for v in collect_raw(&base, stream).await {
            assert_conforms(&format!("spot raw {stream} vs ticker_1h.docs.json (e={e})"), &fx, &v, &[]);
        }
    }
    // Partial depth levels are really 5/10/20 per side.
    for (stream, n) in [("btcusdt@depth5", 5), ("btcusdt@depth10@100ms", 10), ("btcusdt@depth20", 20)] {
        let v = &collect_raw(&base, stream).await[0];
        assert_eq!(v["bids"].as_array().map(Vec::len), Some(n), "{stream}: {v}");
        assert_eq!(v["asks"].as_array().map(Vec::len), Some(n), "{stream}: {v}");
    }
    sim.shutdown().await;
}

/// Combined stream frames (`/stream?streams=`): envelopes against the live
/// captures, payloads against the docs examples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_combined_streams_match_live_captures_and_docs() {
    let (sim, m) = start(MarketKind::Spot).await;
    let streams = [
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "btcusdt@depth@100ms",
        "btcusdt@depth",
        "btcusdt@depth5",
        "btcusdt@depth10",
        "btcusdt@depth20@100ms",
        "btcusdt@bookTicker",
        "btcusdt@ticker",
        "btcusdt@ticker_1h",
        "btcusdt@miniTicker",
        "!miniTicker@arr",
        "btcusdt@kline_1m",
        "btcusdt@avgPrice",
    ];
    let mut ws = connect(&format!("{}/stream?streams={}", m.ws_url(), streams.join("/"))).await;
    let got = collect_combined(&mut ws, &streams).await;
    let g = |s: &str| got[s].as_slice();

    // Live captures are whole combined envelopes.
    check_all("spot combined btcusdt@aggTrade", "binance_spot/agg_trade.json", g("btcusdt@aggTrade"), &[]);
    for s in ["btcusdt@depth@100ms", "btcusdt@depth"] {
        check_all(&format!("spot combined {s}"), "binance_spot/depth_update.json", g(s), &[]);
        check_all(&format!("spot combined {s}"), "binance_spot/depth_update_empty_side.json", g(s), &[]);
    }
    check_all("spot combined btcusdt@bookTicker", "binance_spot/book_ticker.json", g("btcusdt@bookTicker"), &[]);

    // Docs examples are raw payloads: compare the `data` part.
    for (s, fx) in [
        ("btcusdt@trade", "binance_spot/trade.docs.json"),
        ("btcusdt@aggTrade", "binance_spot/agg_trade.docs.json"),
        ("btcusdt@depth@100ms", "binance_spot/depth_update.docs.json"),
        ("btcusdt@depth5", "binance_spot/partial_depth.docs.json"),
        ("btcusdt@depth10", "binance_spot/partial_depth.docs.json"),
        ("btcusdt@depth20@100ms", "binance_spot/partial_depth.docs.json"),
        ("btcusdt@bookTicker", "binance_spot/book_ticker.docs.json"),
        ("btcusdt@ticker", "binance_spot/ticker_24hr.docs.json"),
        ("btcusdt@ticker_1h", "binance_spot/ticker_1h.docs.json"),
        ("btcusdt@miniTicker", "binance_spot/mini_ticker.docs.json"),
        ("btcusdt@kline_1m", "binance_spot/kline.docs.json"),
        ("btcusdt@avgPrice", "binance_spot/avg_price.docs.json"),
    ] {
        check_all(&format!("spot combined {s} data"), fx, &data_of(g(s)), &[]);
    }

    // `!miniTicker@arr` is an array of miniTicker objects.
    let mini = fixture("binance_spot/mini_ticker.docs.json");
    let arr_fixture = Value::Array(vec![mini]);
    for v in g("!miniTicker@arr") {
        assert!(v["data"].as_array().is_some_and(|a| !a.is_empty()), "!miniTicker@arr: {v}");
        assert_conforms("spot combined !miniTicker@arr data", &arr_fixture, &v["data"], &[]);
    }
    sim.shutdown().await;
}

/// `GET /api/v3/depth` against the live REST capture and the docs example.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_rest_depth_snapshot_matches() {
    let (sim, m) = start(MarketKind::Spot).await;
    let (status, body) = http_get(m.addr(), "/api/v3/depth?symbol=BTCUSDT&limit=5").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("REST body not JSON ({e}): {body}"));
    for fx in ["binance_spot/rest_depth_snapshot.json", "binance_spot/rest_depth_snapshot.docs.json"] {
        assert_conforms(&format!("spot REST depth vs {fx}"), &fixture(fx), &v, &[]);
    }
    assert_eq!(v["bids"].as_array().map(Vec::len), Some(5), "{v}");
    assert_eq!(v["asks"].as_array().map(Vec::len), Some(5), "{v}");
    sim.shutdown().await;
}

/// `serverShutdown` raw and in the combined envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_server_shutdown_matches_raw_and_combined_docs() {
    let (sim, m) = start(MarketKind::Spot).await;
    let mut raw = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    let mut comb = connect(&format!("{}/stream?streams=btcusdt@trade", m.ws_url())).await;
    wait_connections(&m, 2).await;
    assert_eq!(m.server_shutdown(), 2);

    let v = next_where(&mut raw, "raw serverShutdown", |v| v["e"] == "serverShutdown").await;
    assert_conforms("spot raw serverShutdown", &fixture("binance_spot/server_shutdown.docs.json"), &v, &[]);
    let v = next_where(&mut comb, "combined serverShutdown", |v| v["data"]["e"] == "serverShutdown").await;
    let fx = fixture("binance_spot/server_shutdown_combined.docs.json");
    assert_conforms("spot combined serverShutdown", &fx, &v, &[]);
    assert_eq!(v["stream"], fx["stream"], "combined serverShutdown stream name");
    sim.shutdown().await;
}

/// SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / GET_PROPERTY replies, sent with
/// the docs' own ids and streams, so the replies must equal the examples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_control_replies_match_the_docs() {
    let (sim, m) = start(MarketKind::Spot).await;
    // `/stream` without streams: combined is on, as in the docs' GET_PROPERTY example.
    let mut ws = connect(&format!("{}/stream", m.ws_url())).await;
    let steps = [
        (
            json!({"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}),
            "binance_spot/subscribe_response.docs.json",
        ),
        (json!({"method":"LIST_SUBSCRIPTIONS","id":3}), "binance_spot/list_subscriptions_response.docs.json"),
        (json!({"method":"GET_PROPERTY","params":["combined"],"id":2}), "binance_spot/get_property_response.docs.json"),
        (
            json!({"method":"UNSUBSCRIBE","params":["btcusdt@aggTrade"],"id":312}),
            "binance_spot/unsubscribe_response.docs.json",
        ),
    ];
    for (req, fx) in steps {
        let reply = request(&mut ws, req.clone()).await;
        let f = fixture(fx);
        assert_conforms(&format!("reply to {req} vs {fx}"), &f, &reply, &[]);
        assert_eq!(reply, f, "reply to {req} differs from {fx}");
    }
    sim.shutdown().await;
}

/// The request that makes the venue answer a documented error line.
fn request_for_doc_error(msg: &str, seen: usize) -> String {
    const MISSING_METHOD: &str = "Invalid request: missing field `method` at line 1 column ";
    if let Some(col) = msg.strip_prefix(MISSING_METHOD) {
        // serde reports the column where the object ended: a one-line request of that length.
        let col: usize = col.parse().expect("column number");
        let head = r#"{"params":["btcusdt@trade"],"id":16,"pad":""#;
        let pad = col.checked_sub(head.len() + 2).expect("column long enough for a request");
        let text = format!("{head}{}\"}}", "x".repeat(pad));
        assert_eq!(text.len(), col);
        return text;
    }
    let v = match msg {
        "Invalid value type: expected Boolean" => json!({"method":"SET_PROPERTY","params":["combined","yes"],"id":11}),
        "Invalid request: property name must be a string" if seen == 0 => {
            json!({"method":"GET_PROPERTY","params":[7],"id":12})
        }
        "Invalid request: property name must be a string" => json!({"method":"SET_PROPERTY","params":[7,true],"id":13}),
        "Invalid request: request ID must be an unsigned integer" => json!({"method":"LIST_SUBSCRIPTIONS","id":1.5}),
        "Invalid request: too many parameters" => json!({"method":"GET_PROPERTY","params":["combined","x"],"id":14}),
        other => panic!("no request known that triggers the documented error {other:?}; extend this test"),
    };
    v.to_string()
}

/// Errors are nested `{"error":{"code","msg"},"id"}`; the docs table (one JSON
/// object per line) shows the inner object, which is compared (shape, code, msg).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_error_replies_match_the_docs_error_table() {
    let (sim, m) = start(MarketKind::Spot).await;
    let mut ws = connect(&format!("{}/ws", m.ws_url())).await;
    let lines = fixture_lines("binance_spot/error_responses.docs.jsonl");
    assert!(!lines.is_empty());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        let msg = line["msg"].as_str().expect("docs error line has msg");
        let n = seen.entry(msg.to_string()).or_default();
        let text = request_for_doc_error(msg, *n);
        *n += 1;
        send(&mut ws, text.clone()).await;
        let reply = next_where(&mut ws, &format!("error reply to {text}"), |v| v.get("error").is_some()).await;
        let keys: Vec<&String> = reply.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["error", "id"], "error envelope keys for {text}: {reply}");
        assert_conforms(&format!("error reply to {text} (inner object)"), line, &reply["error"], &[]);
        assert_eq!(&reply["error"], line, "error reply to {text}");
        let sent: Value = serde_json::from_str(&text).expect("request JSON");
        if sent["id"].is_u64() {
            assert_eq!(reply["id"], sent["id"], "error reply id for {text}");
        }
    }
    // The live-observed invalid-stream error has the same inner shape.
    send(&mut ws, json!({"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":21}).to_string()).await;
    let reply = next_where(&mut ws, "invalid stream error", |v| v.get("error").is_some()).await;
    assert_conforms("invalid stream error (inner object)", &lines[0], &reply["error"], &[]);
    assert_eq!(reply["error"]["code"], 2, "{reply}");
    assert_eq!(reply["id"], 21, "{reply}");
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------
// USD-M futures
// ---------------------------------------------------------------------------

/// USD-M streams on their routes (`/public` book data, `/market` the rest),
/// against the live fstream captures and the docs examples (via nautilus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_streams_match_live_captures_and_docs() {
    let (sim, m) = start(MarketKind::UsdM).await;
    let public =
        ["btcusdt@depth@100ms", "btcusdt@depth", "btcusdt@bookTicker", "btcusdt@depth5@100ms", "btcusdt@depth10"];
    let market = [
        "btcusdt@aggTrade",
        "btcusdt@kline_1m",
        "btcusdt@markPrice@1s",
        "btcusdt@markPrice",
        "btcusdt@forceOrder",
        "!forceOrder@arr",
        "btcusdt@ticker",
    ];
    let mut ws_pub = connect(&format!("{}/public/stream?streams={}", m.ws_url(), public.join("/"))).await;
    let mut ws_mkt = connect(&format!("{}/market/stream?streams={}", m.ws_url(), market.join("/"))).await;
    let (p, k) = tokio::join!(collect_combined(&mut ws_pub, &public), collect_combined(&mut ws_mkt, &market));
    let g = |s: &str| p.get(s).or_else(|| k.get(s)).map(Vec::as_slice).unwrap_or_default();

    // Live captures (combined envelopes).
    check_all("usdm combined btcusdt@aggTrade", "binance_futures/agg_trade.json", g("btcusdt@aggTrade"), &[]);
    for s in ["btcusdt@depth@100ms", "btcusdt@depth"] {
        check_all(&format!("usdm combined {s}"), "binance_futures/depth_update.json", g(s), &[]);
    }
    check_all("usdm combined btcusdt@bookTicker", "binance_futures/book_ticker.json", g("btcusdt@bookTicker"), &[]);
    check_all("usdm combined btcusdt@kline_1m", "binance_futures/kline_open.json", g("btcusdt@kline_1m"), &[]);

    // Docs examples as transcribed by nautilus (raw payloads).
    check_all(
        "usdm btcusdt@depth@100ms data",
        "binance_futures/depth_update.docs_via_nautilus.json",
        &data_of(g("btcusdt@depth@100ms")),
        NAUTILUS_DEPTH_EXTRAS,
    );
    for s in ["btcusdt@depth5@100ms", "btcusdt@depth10"] {
        check_all(
            &format!("usdm {s} data"),
            "binance_futures/partial_depth.docs_via_nautilus.json",
            &data_of(g(s)),
            NAUTILUS_DEPTH_EXTRAS,
        );
    }
    for s in ["btcusdt@markPrice@1s", "btcusdt@markPrice"] {
        check_all(
            &format!("usdm {s} data"),
            "binance_futures/mark_price_update.docs_via_nautilus.json",
            &data_of(g(s)),
            NAUTILUS_ST_EXTRA,
        );
    }
    for s in ["btcusdt@forceOrder", "!forceOrder@arr"] {
        check_all(&format!("usdm {s} data"), "binance_futures/force_order.docs_via_nautilus.json", &data_of(g(s)), &[]);
    }
    check_all(
        "usdm btcusdt@ticker data",
        "binance_futures/ticker_24hr.docs_via_nautilus.json",
        &data_of(g("btcusdt@ticker")),
        NAUTILUS_ST_EXTRA,
    );
    sim.shutdown().await;
}

/// Raw USD-M frames on both routes (`/public/ws/...`, `/market/ws/...`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_raw_routed_streams_match() {
    let (sim, m) = start(MarketKind::UsdM).await;
    let public = format!("{}/public", m.ws_url());
    let market = format!("{}/market", m.ws_url());
    let frames = collect_raw(&public, "btcusdt@depth@100ms").await;
    check_all("usdm raw depth", "binance_futures/depth_update.docs_via_nautilus.json", &frames, NAUTILUS_DEPTH_EXTRAS);
    let frames = collect_raw(&public, "btcusdt@depth20@100ms").await;
    check_all(
        "usdm raw depth20",
        "binance_futures/partial_depth.docs_via_nautilus.json",
        &frames,
        NAUTILUS_DEPTH_EXTRAS,
    );
    let live_book = fixture("binance_futures/book_ticker.json")["data"].clone();
    for v in collect_raw(&public, "btcusdt@bookTicker").await {
        assert_conforms("usdm raw bookTicker vs binance_futures/book_ticker.json data", &live_book, &v, &[]);
    }
    let live_agg = fixture("binance_futures/agg_trade.json")["data"].clone();
    for v in collect_raw(&market, "btcusdt@aggTrade").await {
        assert_conforms("usdm raw aggTrade vs binance_futures/agg_trade.json data", &live_agg, &v, &[]);
    }
    let frames = collect_raw(&market, "btcusdt@forceOrder").await;
    check_all("usdm raw forceOrder", "binance_futures/force_order.docs_via_nautilus.json", &frames, &[]);
    sim.shutdown().await;
}

/// `GET /fapi/v1/depth` against the live fapi capture (which has `E` and `T`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_rest_depth_snapshot_matches() {
    let (sim, m) = start(MarketKind::UsdM).await;
    let (status, body) = http_get(m.addr(), "/fapi/v1/depth?symbol=BTCUSDT&limit=5").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("REST body not JSON ({e}): {body}"));
    assert_conforms(
        "usdm REST depth vs binance_futures/rest_depth_snapshot.json",
        &fixture("binance_futures/rest_depth_snapshot.json"),
        &v,
        &[],
    );
    assert_eq!(v["bids"].as_array().map(Vec::len), Some(5), "{v}");
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------
// COIN-M and options (no fixtures): frames are JSON objects with `e`, `E`, `s`
// where PROTOCOLS.md §3–4 document them.
// ---------------------------------------------------------------------------

fn assert_event(label: &str, v: &Value, e: &str) {
    let o = v.as_object().unwrap_or_else(|| panic!("{label}: not a JSON object: {v}"));
    assert_eq!(o.get("e").and_then(Value::as_str), Some(e), "{label}: e: {v}");
    assert!(o.get("E").is_some_and(Value::is_u64), "{label}: E must be an integer: {v}");
    // forceOrder carries the symbol inside `o`.
    let s = if e == "forceOrder" { &v["o"]["s"] } else { &v["s"] };
    assert!(s.as_str().is_some_and(|s| !s.is_empty()), "{label}: s must be a non-empty string: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinm_frames_carry_event_type_time_and_symbol() {
    let (sim, m) = start(MarketKind::CoinM).await;
    let sym = m.config().symbols[0].name.to_lowercase();
    let streams: Vec<(String, &str)> = [
        ("aggTrade", "aggTrade"),
        ("markPrice@1s", "markPriceUpdate"),
        ("kline_1m", "kline"),
        ("miniTicker", "24hrMiniTicker"),
        ("ticker", "24hrTicker"),
        ("bookTicker", "bookTicker"),
        ("forceOrder", "forceOrder"),
        ("depth@100ms", "depthUpdate"),
        ("depth5@100ms", "depthUpdate"),
    ]
    .into_iter()
    .map(|(s, e)| (format!("{sym}@{s}"), e))
    .collect();
    let names: Vec<&str> = streams.iter().map(|(s, _)| s.as_str()).collect();
    let mut ws = connect(&format!("{}/stream?streams={}", m.ws_url(), names.join("/"))).await;
    let got = collect_combined(&mut ws, &names).await;
    for (s, e) in &streams {
        for v in &got[s.as_str()] {
            assert_event(&format!("coinm {s}"), &v["data"], e);
            // PROTOCOLS.md §3: COIN-M payloads name the pair (`ps`), inside `o` for forceOrder.
            let d = &v["data"];
            let ps = if *e == "forceOrder" { &d["o"]["ps"] } else { &d["ps"] };
            let wants_ps = matches!(*e, "forceOrder" | "depthUpdate" | "bookTicker" | "24hrTicker" | "24hrMiniTicker");
            if wants_ps {
                assert!(ps.as_str().is_some_and(|p| !p.is_empty()), "coinm {s} lacks ps: {d}");
            }
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_frames_carry_event_type_time_and_symbol() {
    let (sim, m) = start(MarketKind::Options).await;
    let sym = m.config().symbols[0].name.to_lowercase();
    let public: Vec<(String, &str)> = [
        ("optionTrade", "trade"),
        ("optionTicker", "24hrTicker"),
        ("bookTicker", "bookTicker"),
        ("depth@100ms", "depthUpdate"),
        ("depth5@100ms", "depthUpdate"),
    ]
    .into_iter()
    .map(|(s, e)| (format!("{sym}@{s}"), e))
    .collect();
    let market = [(format!("{sym}@kline_1m"), "kline")];
    for (route, streams) in [("public", &public[..]), ("market", &market[..])] {
        let names: Vec<&str> = streams.iter().map(|(s, _)| s.as_str()).collect();
        let mut ws = connect(&format!("{}/{route}/stream?streams={}", m.ws_url(), names.join("/"))).await;
        let got = collect_combined(&mut ws, &names).await;
        for (s, e) in streams {
            for v in &got[s.as_str()] {
                assert_event(&format!("options /{route} {s}"), &v["data"], e);
            }
        }
    }
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------
// User data (the private side)
// ---------------------------------------------------------------------------

/// `v` ("Prevented Match Id") is only sent when an order expired by self-trade
/// prevention (user-data-stream.md), which the simulator never does.
const EXEC_REPORT_WRAPPED_OPTIONAL: &[&str] = &["$.event.v"];
const EXEC_REPORT_BARE_OPTIONAL: &[&str] = &["$.v"];
/// `AP` (activation price) and `cr` (callback rate) are only pushed for
/// TRAILING_STOP_MARKET orders (the fixture is one); the simulator takes
/// LIMIT and MARKET only.
const OTU_TRAILING_ONLY: &[&str] = &["$.o.AP", "$.o.cr"];

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn hmac_sig(payload: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(ferrofeed_sim::TEST_HMAC_SECRET.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A REST call with the test account's API key; `signed` appends `timestamp`
/// and an HMAC signature to `query`.
async fn http_key(addr: SocketAddr, method: &str, path: &str, query: &str, signed: bool) -> (u16, Value) {
    let q = if signed {
        let q = if query.is_empty() {
            format!("timestamp={}", unix_ms())
        } else {
            format!("{query}&timestamp={}", unix_ms())
        };
        let sig = hmac_sig(&q);
        format!("{q}&signature={sig}")
    } else {
        query.to_string()
    };
    let target = if q.is_empty() { path.to_string() } else { format!("{path}?{q}") };
    let mut s = TcpStream::connect(addr).await.expect("connect REST");
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nX-MBX-APIKEY: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ferrofeed_sim::TEST_API_KEY
    );
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    within(path, s.read_to_end(&mut raw)).await.expect("read response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head[9..12].parse().expect("status");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {body}: {e}")))
}

/// A resting LIMIT buy far below the book (NEW, nothing filled) and a MARKET
/// buy of one lot (NEW, TRADE).
async fn place_two_orders(addr: SocketAddr, prefix: &str, symbol: &str, qty: &str) {
    let (s, r) = http_key(
        addr,
        "POST",
        &format!("{prefix}/order"),
        &format!("symbol={symbol}&side=BUY&type=LIMIT&timeInForce=GTC&quantity={qty}&price=100"),
        true,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = http_key(
        addr,
        "POST",
        &format!("{prefix}/order"),
        &format!("symbol={symbol}&side=BUY&type=MARKET&quantity={qty}"),
        true,
    )
    .await;
    assert_eq!(s, 200, "{r}");
}

/// The same keys as `reference` (values may differ in type, e.g. `N` null vs asset).
fn assert_same_keys(label: &str, reference: &Value, got: &Value) {
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(reference), keys(got), "{label}: keys differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_user_events_on_the_ws_api_match_the_docs() {
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let (sim, m) = start(MarketKind::Spot).await;
    let mut ws = connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    let ts = unix_ms();
    let key = ferrofeed_sim::TEST_API_KEY;
    let sk = ed25519_dalek::SigningKey::from_bytes(&ferrofeed_sim::TEST_ED25519_SEED);
    let sig = base64::engine::general_purpose::STANDARD
        .encode(sk.sign(format!("apiKey={key}&timestamp={ts}").as_bytes()).to_bytes());
    let r = request(
        &mut ws,
        json!({"id": 1, "method": "session.logon",
        "params": {"apiKey": key, "timestamp": ts, "signature": sig}}),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    let r = request(&mut ws, json!({"id": 2, "method": "userDataStream.subscribe"})).await;
    assert_eq!(r["result"]["subscriptionId"], 0, "{r}");

    place_two_orders(m.addr(), "/api/v3", "BTCUSDT", "0.001").await;
    let mut frames = Vec::new();
    while frames.len() < 5 {
        frames.push(next_where(&mut ws, "user events", |v| v.get("event").is_some()).await);
    }
    let of = |e: &str| frames.iter().filter(|v| v["event"]["e"] == e).cloned().collect::<Vec<_>>();
    let reports = of("executionReport");
    assert_eq!(reports.len(), 3, "{frames:?}");
    let new = &reports[0];
    assert_conforms(
        "executionReport NEW",
        &fixture("binance_spot/user_execution_report.docs.json"),
        new,
        EXEC_REPORT_WRAPPED_OPTIONAL,
    );
    assert_same_keys("executionReport TRADE", &new["event"], &reports[2]["event"]);
    assert_eq!(reports[2]["event"]["x"], "TRADE");
    check_all(
        "outboundAccountPosition",
        "binance_spot/user_outbound_account_position.docs.json",
        &of("outboundAccountPosition"),
        &[],
    );

    m.deposit(None, "BTC", "0.5").expect("deposit");
    let bu = next_where(&mut ws, "balanceUpdate", |v| v["event"]["e"] == "balanceUpdate").await;
    assert_conforms("balanceUpdate", &fixture("binance_spot/user_balance_update.docs.json"), &bu, &[]);

    let r = request(&mut ws, json!({"id": 3, "method": "session.logout"})).await;
    assert_eq!(r["status"], 200);
    let t = next_where(&mut ws, "eventStreamTerminated", |v| v["event"]["e"] == "eventStreamTerminated").await;
    assert_conforms("eventStreamTerminated", &fixture("binance_spot/user_event_stream_terminated.docs.json"), &t, &[]);
    sim.shutdown().await;
}

/// Spot listenKeys were removed on 2026-02-20; the same payloads now reach
/// margin accounts through a listenToken subscription on the WebSocket API
/// (wrapped, like spot's), and the legacy `listenKeyExpired` lives on in
/// COIN-M, whose `E` is a number as in the spot docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn margin_listen_token_events_and_listen_key_expiry_match_the_docs() {
    let (sim, m) = start(MarketKind::Spot).await;
    let (s, r) = http_key(m.addr(), "POST", "/sapi/v1/userListenToken", "", true).await;
    assert_eq!(s, 200, "{r}");
    let mut keys: Vec<&String> = r.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["expirationTime", "token"], "{r}");
    let token = r["token"].as_str().expect("token").to_string();
    let mut ws = connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    let r = request(
        &mut ws,
        json!({"id": 1, "method": "userDataStream.subscribe.listenToken", "params": {"listenToken": token}}),
    )
    .await;
    assert_eq!(r["result"]["subscriptionId"], 0, "{r}");

    place_two_orders(m.addr(), "/sapi/v1/margin", "BTCUSDT", "0.001").await;
    let mut frames = Vec::new();
    while frames.len() < 5 {
        frames.push(next_where(&mut ws, "user events", |v| v.get("event").is_some()).await);
    }
    let of = |e: &str| frames.iter().filter(|v| v["event"]["e"] == e).cloned().collect::<Vec<_>>();
    let reports = of("executionReport");
    assert_eq!(reports.len(), 3, "{frames:?}");
    assert_conforms(
        "executionReport NEW (margin)",
        &fixture("binance_spot/user_execution_report.docs.json"),
        &reports[0],
        EXEC_REPORT_WRAPPED_OPTIONAL,
    );
    assert_conforms(
        "executionReport NEW (margin, the legacy bare payload)",
        &fixture("binance_spot/user_execution_report.listenkey.docs.json"),
        &reports[0]["event"],
        EXEC_REPORT_BARE_OPTIONAL,
    );
    check_all(
        "outboundAccountPosition (margin)",
        "binance_spot/user_outbound_account_position.docs.json",
        &of("outboundAccountPosition"),
        &[],
    );
    m.deposit_to(None, Some("margin"), "BTC", "0.5").expect("deposit");
    let bu = next_where(&mut ws, "balanceUpdate", |v| v["event"]["e"] == "balanceUpdate").await;
    assert_conforms("balanceUpdate (margin)", &fixture("binance_spot/user_balance_update.docs.json"), &bu, &[]);
    sim.shutdown().await;

    let (sim, m) = start(MarketKind::CoinM).await;
    let (s, r) = http_key(m.addr(), "POST", "/dapi/v1/listenKey", "", false).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r.as_object().map(|o| o.len()), Some(1), "only listenKey: {r}");
    let key = r["listenKey"].as_str().expect("listenKey").to_string();
    let mut ws = connect(&format!("{}/ws/{key}", m.ws_url())).await;
    wait_connections(&m, 1).await;
    assert_eq!(m.expire_listen_key(Some(&key)), 1);
    let ex = next_where(&mut ws, "listenKeyExpired", |v| v["e"] == "listenKeyExpired").await;
    assert_conforms("listenKeyExpired", &fixture("binance_spot/user_listen_key_expired.docs.json"), &ex, &[]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_user_events_match_the_docs() {
    let (sim, m) = start(MarketKind::UsdM).await;
    let (s, r) = http_key(m.addr(), "POST", "/fapi/v1/listenKey", "", false).await;
    assert_eq!(s, 200, "{r}");
    let key = r["listenKey"].as_str().expect("listenKey").to_string();
    let mut ws = connect(&format!("{}/private/ws/{key}", m.ws_url())).await;
    wait_connections(&m, 1).await;

    place_two_orders(m.addr(), "/fapi/v1", "BTCUSDT", "0.001").await;
    let mut otu = Vec::new();
    let mut lite: Vec<Value> = Vec::new();
    let account = loop {
        let v = next_where(&mut ws, "user events", |v| v.get("e").is_some()).await;
        match v["e"].as_str() {
            Some("ORDER_TRADE_UPDATE") => otu.push(v),
            Some("TRADE_LITE") => lite.push(v),
            Some("ACCOUNT_UPDATE") => break v,
            other => panic!("unexpected event {other:?}: {v}"),
        }
    };
    assert_eq!(otu.len(), 3, "LIMIT NEW, MARKET NEW, MARKET TRADE: {otu:?}");
    // The fill's fast subset, with the documented keys (developers.binance.com
    // usds-margined-futures "Event: Trade Lite Update").
    assert_eq!(lite.len(), 1, "{lite:?}");
    let mut keys: Vec<&str> = lite[0].as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["E", "L", "S", "T", "c", "e", "i", "l", "m", "p", "q", "s", "t"], "{}", lite[0]);
    assert_eq!((&lite[0]["t"], &lite[0]["l"]), (&otu[2]["o"]["t"], &otu[2]["o"]["l"]));
    check_all(
        "ORDER_TRADE_UPDATE",
        "binance_futures/order_trade_update.docs_via_nautilus.json",
        &otu,
        OTU_TRAILING_ONLY,
    );
    assert_conforms("ACCOUNT_UPDATE", &fixture("binance_futures/account_update.docs_via_nautilus.json"), &account, &[]);
    sim.shutdown().await;
}
