//! Helpers shared by the simulator's socket tests (`mod common;` in each test
//! file): starting a one-market simulator, a tokio-tungstenite client
//! (connect, send, read JSON frames, replies and topics), a raw HTTP/1.1
//! request, the Bybit v5 fixtures and shape comparison, and a local Bybit
//! order book to check against the simulator's truth.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use ferrofeed_sim::{BybitCategory, MarketConfig, MarketHandle, Sim, SimConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any one frame or answer may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// `/work/main/crates/sim` → `/work/shared/fixtures/bybit_v5`.
const BYBIT_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/bybit_v5");

// ---------------------------------------------------------------------------
// Simulator
// ---------------------------------------------------------------------------

/// A simulator serving the one market `m`, and that market's handle.
pub async fn start(m: MarketConfig) -> (Sim, MarketHandle) {
    let sim = Sim::start(SimConfig::single(m)).await.expect("bind sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

/// A busy Bybit market of category `cat`: three symbols (every option), 300
/// book actions a second, a long book history for `book_at`.
pub fn bybit_market(cat: BybitCategory) -> MarketConfig {
    let mut m = MarketConfig::bybit(cat);
    if cat != BybitCategory::Option {
        m.symbols.truncate(3);
    }
    m.timing.actions_per_sec = 300.0;
    m.book_history = 20_000;
    m
}

// ---------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------

pub async fn connect(url: &str) -> Ws {
    connect_async(url).await.expect("connect").0
}

/// The market's public Bybit v5 stream.
pub async fn connect_bybit(h: &MarketHandle) -> Ws {
    connect_async(h.bybit_url().expect("bybit market")).await.expect("connect").0
}

/// The market's private Bybit v5 stream.
pub async fn connect_bybit_private(h: &MarketHandle) -> Ws {
    connect_async(h.bybit_private_url().expect("linear market")).await.expect("connect").0
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("send");
}

/// The next text frame as JSON (pings are answered by tungstenite itself).
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = timeout(WAIT, ws.next()).await.expect("frame in time").expect("open").expect("ok");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap_or_else(|e| panic!("bad JSON {t}: {e}"));
        }
    }
}

/// The next JSON frame for which `pred` holds, skipping others.
pub async fn next_where(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = next_json(ws).await;
        if pred(&v) {
            return v;
        }
    }
}

/// The next Bybit reply to an `op` (a frame without `topic`), skipping data.
pub async fn next_reply(ws: &mut Ws) -> Value {
    next_where(ws, |v| v.get("topic").is_none()).await
}

/// The next Bybit data frame of `topic`, among the next `max_frames` frames.
pub async fn next_of(ws: &mut Ws, topic: &str, max_frames: usize) -> Value {
    for _ in 0..max_frames {
        let v = next_json(ws).await;
        if v["topic"] == topic {
            return v;
        }
    }
    panic!("no frame of {topic}");
}

/// The close frame that ends `ws` (data before it skipped); `None` if the
/// connection ends without one.
pub async fn close_frame(ws: &mut Ws) -> Option<CloseFrame> {
    loop {
        match timeout(WAIT, ws.next()).await.expect("closed in time") {
            Some(Ok(Message::Close(c))) => return c,
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// A bodiless HTTP/1.1 request (`Connection: close`); returns (status, body).
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

// ---------------------------------------------------------------------------
// Bybit fixtures and shapes
// ---------------------------------------------------------------------------

/// The JSON of `shared/fixtures/bybit_v5/{name}`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{BYBIT_FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The keys of a JSON object.
pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The JSON type of every field, recursively (arrays by their first element).
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(n) if n.is_f64() => json!("float"),
        Value::Number(_) => json!("int"),
        Value::String(_) => json!("string"),
        Value::Array(a) => json!([a.first().map(shape).unwrap_or(json!("empty"))]),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// Same keys and JSON types, recursively; an empty array matches any array.
pub fn assert_same_shape(ours: &Value, real: &Value, what: &str) {
    fn strip(a: &Value, b: &Value) -> (Value, Value) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut xo = serde_json::Map::new();
                let mut yo = serde_json::Map::new();
                for k in x.keys().chain(y.keys()) {
                    match (x.get(k), y.get(k)) {
                        (Some(p), Some(q)) => {
                            let (p, q) = strip(p, q);
                            xo.insert(k.clone(), p);
                            yo.insert(k.clone(), q);
                        }
                        (Some(p), None) => {
                            xo.insert(k.clone(), p.clone());
                        }
                        (None, Some(q)) => {
                            yo.insert(k.clone(), q.clone());
                        }
                        (None, None) => {}
                    }
                }
                (Value::Object(xo), Value::Object(yo))
            }
            (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
                (Some(p), Some(q)) if *p != json!("empty") && *q != json!("empty") => {
                    let (p, q) = strip(p, q);
                    (json!([p]), json!([q]))
                }
                _ => (json!([]), json!([])),
            },
            _ => (a.clone(), b.clone()),
        }
    }
    let (a, b) = strip(&shape(ours), &shape(real));
    assert_eq!(a, b, "{what}: ours {ours}\nreal {real}");
}

// ---------------------------------------------------------------------------
// Bybit order book
// ---------------------------------------------------------------------------

/// The `[price, size]` levels of a Bybit `b` or `a` array.
pub fn levels(v: &Value) -> Vec<[String; 2]> {
    v.as_array()
        .expect("levels")
        .iter()
        .map(|l| [l[0].as_str().unwrap().to_string(), l[1].as_str().unwrap().to_string()])
        .collect()
}

/// A local book keyed by the price strings (ordered numerically on output).
#[derive(Default)]
pub struct Local {
    bids: BTreeMap<String, String>,
    asks: BTreeMap<String, String>,
}

impl Local {
    /// Replaces the book with a snapshot's `data`.
    pub fn load(&mut self, data: &Value) {
        self.bids.clear();
        self.asks.clear();
        self.apply(data);
    }

    /// Applies a delta's `data` (size 0 removes a level).
    pub fn apply(&mut self, data: &Value) {
        for (k, side) in [("b", &mut self.bids), ("a", &mut self.asks)] {
            for [p, q] in levels(&data[k]) {
                if q.parse::<f64>().unwrap() == 0.0 {
                    side.remove(&p);
                } else {
                    side.insert(p, q);
                }
            }
        }
    }

    /// The best `n` bids (highest first) and asks (lowest first).
    pub fn top(&self, n: usize) -> (Vec<[String; 2]>, Vec<[String; 2]>) {
        let key = |p: &String| (p.parse::<f64>().unwrap() * 1e8) as i64;
        let mut b: Vec<_> = self.bids.iter().map(|(p, q)| [p.clone(), q.clone()]).collect();
        b.sort_by_key(|l| -key(&l[0]));
        let mut a: Vec<_> = self.asks.iter().map(|(p, q)| [p.clone(), q.clone()]).collect();
        a.sort_by_key(|l| key(&l[0]));
        b.truncate(n);
        a.truncate(n);
        (b, a)
    }
}
