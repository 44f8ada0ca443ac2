//! The Bybit v5 public simulator over real sockets, driven by a third-party
//! client (tokio-tungstenite) with hand-written JSON: pong and ack shapes per
//! category, the venue's error strings, order-book snapshot/delta sequencing
//! against the simulator's truth, the `u = 1` restart fault, and payload
//! shapes compared with the real captures in `shared/fixtures/bybit_v5`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ferrofeed_sim::{BybitCategory, MarketConfig, MarketHandle, Sim, SimConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);
/// `/work/main/crates/sim` → `/work/shared/fixtures/bybit_v5`.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/bybit_v5");

fn market(cat: BybitCategory) -> MarketConfig {
    let mut m = MarketConfig::bybit(cat);
    m.symbols.truncate(3);
    m.timing.actions_per_sec = 300.0;
    m.book_history = 20_000;
    m
}

async fn start(m: MarketConfig) -> (Sim, MarketHandle) {
    let sim = Sim::start(SimConfig::single(m)).await.expect("bind sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

async fn connect(h: &MarketHandle) -> Ws {
    connect_async(h.bybit_url().expect("bybit market")).await.expect("connect").0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("send");
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = timeout(WAIT, ws.next()).await.expect("frame in time").expect("open").expect("ok");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap_or_else(|e| panic!("bad JSON {t}: {e}"));
        }
    }
}

/// The next reply to an `op` (a frame with `success` or `op`), skipping data.
async fn next_reply(ws: &mut Ws) -> Value {
    loop {
        let v = next_json(ws).await;
        if v.get("topic").is_none() {
            return v;
        }
    }
}

/// The next data frame of `topic`.
async fn next_of(ws: &mut Ws, topic: &str) -> Value {
    for _ in 0..100_000 {
        let v = next_json(ws).await;
        if v["topic"] == topic {
            return v;
        }
    }
    panic!("no frame of {topic}");
}

async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
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

fn fixture(name: &str) -> Value {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The JSON type of every field, recursively (arrays by their first element).
fn shape(v: &Value) -> Value {
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

/// Same keys and types; an empty array matches any array.
fn assert_same_shape(ours: &Value, real: &Value, what: &str) {
    fn strip_empty(a: &Value, b: &Value) -> (Value, Value) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut xo = serde_json::Map::new();
                let mut yo = serde_json::Map::new();
                for k in x.keys().chain(y.keys()) {
                    match (x.get(k), y.get(k)) {
                        (Some(p), Some(q)) => {
                            let (p, q) = strip_empty(p, q);
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
            (Value::Array(x), Value::Array(y))
                if x.first() == Some(&json!("empty")) || y.first() == Some(&json!("empty")) =>
            {
                (json!([]), json!([]))
            }
            (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
                (Some(p), Some(q)) => {
                    let (p, q) = strip_empty(p, q);
                    (json!([p]), json!([q]))
                }
                _ => (a.clone(), b.clone()),
            },
            _ => (a.clone(), b.clone()),
        }
    }
    let (a, b) = strip_empty(&shape(ours), &shape(real));
    assert_eq!(a, b, "{what}: ours {ours}\nreal {real}");
}

fn levels(v: &Value) -> Vec<[String; 2]> {
    v.as_array()
        .expect("levels")
        .iter()
        .map(|l| [l[0].as_str().unwrap().to_string(), l[1].as_str().unwrap().to_string()])
        .collect()
}

/// A local book keyed by decimal strings parsed as f64 for ordering.
#[derive(Default)]
struct Local {
    bids: BTreeMap<String, String>,
    asks: BTreeMap<String, String>,
}

impl Local {
    fn load(&mut self, data: &Value) {
        self.bids.clear();
        self.asks.clear();
        self.apply(data);
    }

    fn apply(&mut self, data: &Value) {
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

    fn top(&self, n: usize) -> (Vec<[String; 2]>, Vec<[String; 2]>) {
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

#[tokio::test]
async fn pong_and_ack_shapes_per_category_echo_req_id() {
    // Inverse and option: tests/bybit_categories.rs.
    for cat in [BybitCategory::Spot, BybitCategory::Linear] {
        let (sim, h) = start(market(cat)).await;
        let mut ws = connect(&h).await;
        send(&mut ws, json!({"op": "ping"})).await;
        let pong = next_reply(&mut ws).await;
        assert_eq!(
            (pong["success"].clone(), pong["ret_msg"].clone(), pong["op"].clone()),
            (json!(true), json!("pong"), json!("ping"))
        );
        let doc = fixture(&format!("docs/pong.{}.docs.json", cat.name()));
        assert_same_shape(&pong, &doc, "pong");
        send(&mut ws, json!({"op": "ping", "req_id": "p1"})).await;
        assert_eq!(next_reply(&mut ws).await["req_id"], "p1");

        // Ack without req_id: the live captures.
        send(&mut ws, json!({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})).await;
        let ack = next_reply(&mut ws).await;
        assert_same_shape(&ack, &fixture(&format!("subscribe_response.{}.json", cat.name())), "ack");
        let want_msg = if cat == BybitCategory::Spot { "subscribe" } else { "" };
        assert_eq!((ack["success"].clone(), ack["ret_msg"].clone()), (json!(true), json!(want_msg)));
        // With req_id: echoed (the docs' spot example has it).
        send(&mut ws, json!({"op": "subscribe", "req_id": "10001", "args": ["orderbook.50.BTCUSDT"]})).await;
        let ack = next_reply(&mut ws).await;
        assert_eq!(
            (ack["req_id"].clone(), ack["success"].clone(), ack["op"].clone()),
            (json!("10001"), json!(true), json!("subscribe"))
        );
        if cat == BybitCategory::Spot {
            assert_same_shape(&ack, &fixture("docs/subscribe_response.spot.docs.json"), "spot ack with req_id");
        }
        send(&mut ws, json!({"op": "unsubscribe", "req_id": "u1", "args": ["orderbook.50.BTCUSDT"]})).await;
        let un = next_reply(&mut ws).await;
        assert_eq!(
            (un["op"].clone(), un["success"].clone(), un["req_id"].clone()),
            (json!("unsubscribe"), json!(true), json!("u1"))
        );
        drop(ws);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn errors_carry_the_venue_strings_and_keep_the_socket() {
    let (sim, h) = start(market(BybitCategory::Spot)).await;
    let mut ws = connect(&h).await;
    for bad in ["orderbook.50.NOPEUSDT", "orderbook.500.BTCUSDT", "orderbook.50.btcusdt", "order"] {
        send(&mut ws, json!({"op": "subscribe", "req_id": "e1", "args": [bad]})).await;
        let r = next_reply(&mut ws).await;
        assert_eq!(r["success"], false, "{r}");
        assert_eq!(r["ret_msg"], format!("error:handler not found,topic:{bad}"));
        assert_eq!((r["req_id"].clone(), r["op"].clone()), (json!("e1"), json!("subscribe")));
    }
    send(&mut ws, json!({"op": "subscribe", "req_id": "a", "args": ["publicTrade.BTCUSDT"]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    send(&mut ws, json!({"op": "subscribe", "req_id": "b", "args": ["publicTrade.BTCUSDT"]})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!(
        (r["success"].clone(), r["ret_msg"].clone()),
        (json!(false), json!("error:already subscribed,topic:publicTrade.BTCUSDT"))
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("publicTrade.X{i}USDT")).collect();
    send(&mut ws, json!({"op": "subscribe", "req_id": "c", "args": eleven})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!(
        (r["success"].clone(), r["ret_msg"].clone(), r["op"].clone()),
        (json!(false), json!("args size >10"), json!("subscribe"))
    );
    ws.send(Message::Text("not json".into())).await.unwrap();
    let r = next_reply(&mut ws).await;
    assert!(r["ret_msg"].as_str().unwrap().starts_with("Failed to decode incoming data"), "{r}");
    send(&mut ws, json!({"op": "nope", "req_id": "d"})).await;
    assert_eq!(next_reply(&mut ws).await["ret_msg"], "error:invalid op");
    // Still open: the first subscription keeps flowing.
    let t = next_of(&mut ws, "publicTrade.BTCUSDT").await;
    assert_eq!(t["data"][0]["s"], "BTCUSDT");
    // Linear has no args limit.
    let (sim2, lin) = start(market(BybitCategory::Linear)).await;
    let mut ws2 = connect(&lin).await;
    let many: Vec<String> =
        (0..12).map(|i| if i == 0 { "publicTrade.BTCUSDT".into() } else { format!("tickers.ETHUSDT{i}") }).collect();
    send(&mut ws2, json!({"op": "subscribe", "req_id": "m", "args": many})).await;
    let r = next_reply(&mut ws2).await;
    assert!(r["ret_msg"].as_str().unwrap().starts_with("error:handler not found,topic:tickers.ETHUSDT1"), "{r}");
    drop((ws, ws2));
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn orderbook_snapshot_then_consecutive_deltas_match_the_truth() {
    let (sim, h) = start(market(BybitCategory::Linear)).await;
    let mut ws = connect(&h).await;
    let topic = "orderbook.50.BTCUSDT";
    send(&mut ws, json!({"op": "subscribe", "req_id": "1", "args": [topic]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let snap = next_of(&mut ws, topic).await;
    assert_eq!(snap["type"], "snapshot");
    let mut local = Local::default();
    local.load(&snap["data"]);
    let (mut u, mut seq) = (snap["data"]["u"].as_u64().unwrap(), snap["data"]["seq"].as_u64().unwrap());
    assert!(snap["cts"].is_u64());
    for i in 0..60 {
        if i == 30 {
            // A dropped message is a gap of one `u`.
            h.drop_next(topic, 1);
            // Deltas already on the way arrive first; then one `u` is missing.
            loop {
                let d = next_of(&mut ws, topic).await;
                let du = d["data"]["u"].as_u64().unwrap();
                if du == u + 1 {
                    u = du;
                    continue;
                }
                assert_eq!(du, u + 2, "drop fault leaves a gap of one");
                break;
            }
            // Resync by resubscribing: a fresh snapshot continues the numbering.
            send(&mut ws, json!({"op": "unsubscribe", "req_id": "2", "args": [topic]})).await;
            send(&mut ws, json!({"op": "subscribe", "req_id": "3", "args": [topic]})).await;
            let s = loop {
                let v = next_json(&mut ws).await;
                if v["topic"] == topic && v["type"] == "snapshot" {
                    break v;
                }
            };
            local.load(&s["data"]);
            u = s["data"]["u"].as_u64().unwrap();
            seq = s["data"]["seq"].as_u64().unwrap();
            continue;
        }
        let d = next_of(&mut ws, topic).await;
        assert_eq!(d["type"], "delta", "{d}");
        let du = d["data"]["u"].as_u64().unwrap();
        assert_eq!(du, u + 1, "consecutive u");
        let ds = d["data"]["seq"].as_u64().unwrap();
        assert!(ds > seq, "seq increases");
        (u, seq) = (du, ds);
        local.apply(&d["data"]);
        let truth = h.book_at("BTCUSDT", u, 50).expect("truth at u");
        let (b, a) = local.top(50);
        assert_eq!((b, a), (truth.bids, truth.asks), "book at u={u}");
    }
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn restart_fault_sends_a_u1_snapshot_then_continues_from_it() {
    let (sim, h) = start(market(BybitCategory::Spot)).await;
    let mut ws = connect(&h).await;
    let topic = "orderbook.200.ETHUSDT";
    send(&mut ws, json!({"op": "subscribe", "args": [topic, "orderbook.1.ETHUSDT"]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let snap = next_of(&mut ws, topic).await;
    assert!(snap["data"]["u"].as_u64().unwrap() > 1);
    let (status, body) = http(h.addr(), "POST", "/admin/bybit_reset?symbol=ethusdt").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["topics"], 2);
    let mut local = Local::default();
    let r = loop {
        let v = next_of(&mut ws, topic).await;
        if v["data"]["u"] == 1 {
            break v;
        }
    };
    assert_eq!(r["type"], "snapshot");
    local.load(&r["data"]);
    let mut u = 1;
    for _ in 0..10 {
        let d = next_of(&mut ws, topic).await;
        assert_eq!((d["type"].clone(), d["data"]["u"].as_u64().unwrap()), (json!("delta"), u + 1));
        u += 1;
        local.apply(&d["data"]);
    }
    let truth = h.book_at("ETHUSDT", u, 50).expect("truth after restart");
    assert_eq!(local.top(50), (truth.bids, truth.asks));
    // Depth 1 is snapshot-only.
    let l1 = next_of(&mut ws, "orderbook.1.ETHUSDT").await;
    assert_eq!(l1["type"], "snapshot");
    let (status, _) = http(h.addr(), "POST", "/admin/bybit_reset").await;
    assert_eq!(status, 200);
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn payloads_have_the_fields_and_types_of_the_real_captures() {
    let (sim, h) = start(market(BybitCategory::Linear)).await;
    let mut ws = connect(&h).await;
    let topics = ["publicTrade.BTCUSDT", "orderbook.200.BTCUSDT", "tickers.BTCUSDT"];
    send(&mut ws, json!({"op": "subscribe", "req_id": "1", "args": topics})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    // Collect the first frames of each kind in one pass (reading one topic
    // must not discard another's snapshot).
    let mut trades: Vec<Value> = Vec::new();
    let (mut snap, mut delta, mut tick, mut tick2) = (None, None, None, None);
    for _ in 0..100_000 {
        if trades.len() >= 2 && snap.is_some() && delta.is_some() && tick.is_some() && tick2.is_some() {
            break;
        }
        let v = next_json(&mut ws).await;
        let slot = match (v["topic"].as_str().unwrap_or(""), v["type"].as_str().unwrap_or("")) {
            ("publicTrade.BTCUSDT", _) => {
                trades.push(v);
                continue;
            }
            ("orderbook.200.BTCUSDT", "snapshot") => &mut snap,
            ("orderbook.200.BTCUSDT", "delta") => &mut delta,
            ("tickers.BTCUSDT", "snapshot") => &mut tick,
            ("tickers.BTCUSDT", "delta") => &mut tick2,
            _ => continue,
        };
        slot.get_or_insert(v);
    }
    let (snap, delta, tick, tick2) =
        (snap.expect("snapshot"), delta.expect("delta"), tick.expect("ticker"), tick2.expect("ticker delta"));
    let trade = &trades[0];
    assert_same_shape(trade, &fixture("public_trade.linear.json"), "publicTrade");
    assert!(["Buy", "Sell"].contains(&trade["data"][0]["S"].as_str().unwrap()));
    let first_id: u64 = trade["data"][0]["i"].as_str().unwrap().parse().expect("numeric trade id");
    assert_eq!(trades[1]["data"][0]["i"].as_str().unwrap().parse::<u64>().unwrap(), first_id + 1, "consecutive ids");
    assert_same_shape(&snap, &fixture("orderbook_snapshot.linear.json"), "orderbook snapshot");
    assert_same_shape(&delta, &fixture("orderbook_delta.linear.json"), "orderbook delta");
    let real_delta = fixture("orderbook_delta.linear.json");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&delta), keys(&real_delta));
    let real = fixture("tickers_snapshot.linear.json");
    // Every field we send exists in the capture with the same type.
    for (k, v) in tick["data"].as_object().unwrap() {
        assert_eq!(shape(v), shape(&real["data"][k]), "tickers field {k}");
    }
    for k in ["topic", "type", "cs", "ts"] {
        assert_eq!(shape(&tick[k]), shape(&real[k]), "tickers {k}");
    }
    let real2 = fixture("tickers_delta.linear.json");
    assert_eq!(keys(&tick2), keys(&real2), "tickers delta top level");
    for (k, v) in tick2["data"].as_object().unwrap() {
        assert_eq!(shape(v), shape(&real["data"][k]), "tickers delta field {k}");
    }
    assert_eq!(tick2["data"]["symbol"], "BTCUSDT");
    assert!(tick2["data"].as_object().unwrap().len() < tick["data"].as_object().unwrap().len(), "changed fields only");
    drop(ws);
    // Spot: trimmed decimals, same shape as the spot capture.
    let (sim2, spot) = start(market(BybitCategory::Spot)).await;
    let mut ws = connect(&spot).await;
    send(&mut ws, json!({"op": "subscribe", "args": ["orderbook.200.BTCUSDT"]})).await;
    let snap = next_of(&mut ws, "orderbook.200.BTCUSDT").await;
    assert_same_shape(&snap, &fixture("orderbook_snapshot.spot.json"), "spot orderbook snapshot");
    for l in snap["data"]["b"].as_array().unwrap() {
        let p = l[0].as_str().unwrap();
        assert!(!p.contains('.') || !p.ends_with('0'), "spot trims zeros: {p}");
    }
    drop(ws);
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_cut_and_other_paths_are_refused() {
    let mut m = market(BybitCategory::Linear);
    m.limits.idle_timeout = Duration::from_millis(300);
    let (sim, h) = start(m).await;
    let mut ws = connect(&h).await;
    let end = loop {
        match timeout(WAIT, ws.next()).await.expect("closed in time") {
            Some(Ok(Message::Close(c))) => break c,
            Some(Ok(_)) => continue,
            _ => break None,
        }
    };
    assert!(end.is_some_and(|c| c.reason.contains("idle")));
    let url = format!("ws://{}/v5/public/spot", h.addr());
    assert!(connect_async(url).await.is_err(), "spot path on the linear port");
    let (status, _) = http(h.addr(), "GET", "/admin/stats").await;
    assert_eq!(status, 200);
    assert_eq!(h.stats().market, "bybit-linear");
    assert!(h.stats().counters.idle_closes >= 1);
    sim.shutdown().await;
}
