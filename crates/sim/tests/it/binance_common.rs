//! Helpers for the Binance private-side tests (`binance_margin`,
//! `binance_trade`): signing with `hmac`/`ed25519-dalek` directly, a raw
//! HTTP/1.1 client, and a WebSocket API client that keeps the events it reads
//! while waiting for an answer. No ferrofeed client code.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use ferrofeed_sim::{MarketConfig, MarketHandle, MarketKind, TEST_API_KEY, TEST_ED25519_SEED, TEST_HMAC_SECRET};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{WAIT, Ws};

/// A quiet market with two symbols (BTCUSDT, ETHUSDT on spot and USD-M) and
/// room for the tests' request rate.
pub fn market(kind: MarketKind) -> MarketConfig {
    let mut m = MarketConfig::new(kind);
    m.symbols.truncate(2);
    m.timing.actions_per_sec = 50.0;
    m.limits.max_incoming_msgs = 200;
    m
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn hmac_hex(payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(TEST_HMAC_SECRET.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn ed_b64(payload: &str) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&TEST_ED25519_SEED);
    base64::engine::general_purpose::STANDARD.encode(key.sign(payload.as_bytes()).to_bytes())
}

fn urlenc(s: &str) -> String {
    s.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

/// A decimal string as an integer of 1e-8 units.
pub fn d8(s: &str) -> i128 {
    let neg = s.starts_with('-');
    let s = s.trim_start_matches('-');
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let mut f = f.to_string();
    f.truncate(8);
    while f.len() < 8 {
        f.push('0');
    }
    let v = i.parse::<i128>().unwrap() * 100_000_000 + f.parse::<i128>().unwrap();
    if neg { -v } else { v }
}

/// An HTTP answer: status, header block (lower-cased names), body text.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The body as JSON (a string value when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::String(self.body.clone()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// A raw HTTP/1.1 request with an optional API key header and a form body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, api_key: Option<&str>, body: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let key = api_key.map(|k| format!("X-MBX-APIKEY: {k}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{key}Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    timeout(WAIT, s.read_to_end(&mut out)).await.expect("response in time").unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_string(), b.to_string())).unwrap_or_default();
    Answer { status, head, body }
}

/// A signed REST call: `query` (plus `timestamp`) in the URL, signed with
/// HMAC (or Ed25519).
pub async fn signed(addr: SocketAddr, method: &str, path: &str, query: &str, ed25519: bool) -> Answer {
    let ts = now_ms();
    let q = if query.is_empty() { format!("timestamp={ts}") } else { format!("{query}&timestamp={ts}") };
    let sig = if ed25519 { urlenc(&ed_b64(&q)) } else { hmac_hex(&q) };
    http(addr, method, &format!("{path}?{q}&signature={sig}"), Some(TEST_API_KEY), "").await
}

/// The WebSocket API signature payload: every parameter but `signature`,
/// sorted, `k=v` joined with `&` (strings raw, other values as JSON text).
fn sorted_payload(p: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = p.keys().filter(|k| *k != "signature").collect();
    keys.sort();
    keys.iter()
        .map(|k| match &p[*k] {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `params` with `apiKey`, `timestamp` and a signature (HMAC or Ed25519).
pub fn sign_params(params: Value, ed25519: bool) -> Value {
    let mut p = params.as_object().cloned().unwrap_or_default();
    p.insert("apiKey".into(), json!(TEST_API_KEY));
    p.insert("timestamp".into(), json!(now_ms()));
    let payload = sorted_payload(&p);
    let sig = if ed25519 { ed_b64(&payload) } else { hmac_hex(&payload) };
    p.insert("signature".into(), json!(sig));
    Value::Object(p)
}

/// `params` with just a `timestamp` (for a logged-on session).
pub fn stamped(params: Value) -> Value {
    let mut p = params.as_object().cloned().unwrap_or_default();
    p.insert("timestamp".into(), json!(now_ms()));
    Value::Object(p)
}

/// A WebSocket API connection: answers are matched by id, events read
/// meanwhile are kept in order for [`Api::event`].
pub struct Api {
    pub ws: Ws,
    events: VecDeque<Value>,
    next_id: u64,
}

impl Api {
    pub async fn connect(url: &str) -> Api {
        let ws = timeout(WAIT, connect_async(url)).await.expect("connect in time").expect("connect").0;
        Api { ws, events: VecDeque::new(), next_id: 1 }
    }

    async fn frame(&mut self) -> Value {
        loop {
            let m = timeout(WAIT, self.ws.next()).await.expect("frame in time").expect("open").expect("ok");
            if let Message::Text(t) = m {
                return serde_json::from_str(&t).unwrap_or_else(|e| panic!("bad JSON {t}: {e}"));
            }
        }
    }

    /// Sends `method` with `params` and returns its answer.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({"id": id, "method": method});
        if !params.is_null() {
            req["params"] = params;
        }
        self.ws.send(Message::Text(req.to_string().into())).await.unwrap();
        loop {
            let v = self.frame().await;
            if v.get("id") == Some(&json!(id)) && v.get("status").is_some() {
                return v;
            }
            self.events.push_back(v);
        }
    }

    /// The next event (`{"subscriptionId","event"}` or bare), kept or read.
    pub async fn event(&mut self) -> Value {
        match self.events.pop_front() {
            Some(v) => v,
            None => self.frame().await,
        }
    }

    /// Logs on with the test account's Ed25519 key.
    pub async fn logon(&mut self) -> Value {
        let r = self.call("session.logon", sign_params(json!({}), true)).await;
        assert_eq!(r["status"], 200, "{r}");
        r
    }
}

/// Waits until the simulator registered `n` connections in all.
pub async fn registered(m: &MarketHandle, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while m.stats().counters.connections_accepted < n {
        assert!(tokio::time::Instant::now() < deadline, "{n} connections registered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The rateLimits entry of `kind` and `interval`.
pub fn limit<'a>(r: &'a Value, kind: &str, interval: &str) -> &'a Value {
    r["rateLimits"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["rateLimitType"] == kind && l["interval"] == interval))
        .unwrap_or_else(|| panic!("no {kind}/{interval} in {r}"))
}
