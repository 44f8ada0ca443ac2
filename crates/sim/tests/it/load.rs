//! The load forms other than Binance trades (docs/sim.md, "Load mode"): the
//! spot depth form (diffs of several books with REST snapshots that line up)
//! and Bybit's `publicTrade.LOADUSDT`, read with tokio-tungstenite and plain
//! HTTP, never the ferrofeed client.

use std::collections::BTreeMap;

use crate::common::{WAIT, assert_same_shape, connect, connect_bybit, fixture, http, next_reply, send};
use ferrofeed_sim::{BybitCategory, LoadConfig, MarketConfig, MarketKind};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// One side of a hand-kept book: price string → quantity string.
type Side = BTreeMap<String, String>;

fn apply(side: &mut Side, levels: &Value) {
    for l in levels.as_array().unwrap() {
        let (p, q) = (l[0].as_str().unwrap(), l[1].as_str().unwrap());
        if q.parse::<f64>().unwrap() == 0.0 {
            side.remove(p);
        } else {
            side.insert(p.to_string(), q.to_string());
        }
    }
}

fn side_of(levels: &Value) -> Side {
    let mut s = Side::new();
    apply(&mut s, levels);
    s
}

async fn plan(m: &ferrofeed_sim::MarketHandle) -> Value {
    let (s, body) = http(m.addr(), "GET", "/admin/load").await;
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Three books, 3000 diffs: each book's diffs chain (`U` = previous `u` + 1
/// from the planned first id), the REST snapshot bridges them by the venue's
/// rule, and the book kept by hand ends equal to the final REST snapshot at
/// the planned last update id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_form_diffs_chain_and_books_end_equal_to_the_rest_snapshot() {
    let mut cfg = MarketConfig::new(MarketKind::Spot);
    cfg.symbols.truncate(2);
    let mut load = LoadConfig::new(3000, None);
    load.books = 3;
    cfg.load = Some(load);
    let (_sim, m) = crate::common::start(cfg).await;
    let p = plan(&m).await;
    let books: Vec<&Value> =
        p["streams"].as_array().unwrap().iter().filter(|s| s["stream"].as_str().unwrap().contains("@depth")).collect();
    assert_eq!(books.len(), 3, "{p}");
    assert_eq!(p["streams"][0]["stream"], "loadusdt@trade", "{p}");
    let names: Vec<String> = books.iter().map(|b| b["stream"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["load0usdt@depth@100ms", "load1usdt@depth@100ms", "load2usdt@depth@100ms"]);
    for b in &books {
        assert_eq!(b["frames"], 1000);
        assert_eq!(b["first_update_id"], 1_000_000_000_000u64);
    }
    let mut ws = connect(&format!("{}/stream?streams={}", m.ws_url(), names.join("/"))).await;
    // Snapshots right after subscribing, while the diffs flow (the venue's procedure).
    let mut local: Vec<(u64, Side, Side)> = Vec::new();
    for k in 0..3 {
        let (s, body) = http(m.addr(), "GET", &format!("/api/v3/depth?symbol=LOAD{k}USDT&limit=1000")).await;
        assert_eq!(s, 200, "{body}");
        let snap: Value = serde_json::from_str(&body).unwrap();
        local.push((snap["lastUpdateId"].as_u64().unwrap(), side_of(&snap["bids"]), side_of(&snap["asks"])));
    }
    let mut prev_u: Vec<u64> = vec![999_999_999_999; 3];
    let mut done = 0;
    let (mut sizes, mut deletes, mut frames) = (Vec::new(), 0usize, 0usize);
    while done < 3 {
        let Message::Text(t) = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap() else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        let k = names.iter().position(|n| v["stream"] == n.as_str()).unwrap();
        let d = &v["data"];
        assert_eq!(d["e"], "depthUpdate");
        assert_eq!(d["s"], format!("LOAD{k}USDT"));
        let (first, last) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap());
        assert_eq!(first, prev_u[k] + 1, "book {k}: U follows the previous u");
        let n = d["b"].as_array().unwrap().len() + d["a"].as_array().unwrap().len();
        assert_eq!(last - first + 1, n as u64, "one update id per level");
        assert!((1..=40).contains(&n), "{n} levels");
        sizes.push(n);
        deletes += t.matches("\"0.00000000\"]").count();
        frames += 1;
        prev_u[k] = last;
        let (id, bids, asks) = &mut local[k];
        if last > *id {
            assert!(first <= *id + 1, "book {k}: the snapshot bridges the diffs");
            apply(bids, &d["b"]);
            apply(asks, &d["a"]);
            *id = last;
        }
        if last == books[k]["last_update_id"].as_u64().unwrap() {
            done += 1;
        }
    }
    assert_eq!(frames, 3000);
    assert!(sizes.iter().any(|&n| n >= 20) && sizes.iter().filter(|&&n| n <= 8).count() > 1000, "size mix");
    assert!(deletes > 0, "deletes are quantity 0");
    for (k, (id, bids, asks)) in local.iter().enumerate() {
        let (_, body) = http(m.addr(), "GET", &format!("/api/v3/depth?symbol=LOAD{k}USDT&limit=1000")).await;
        let snap: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(snap["lastUpdateId"].as_u64(), Some(*id));
        assert_eq!(&side_of(&snap["bids"]), bids, "book {k} bids");
        assert_eq!(&side_of(&snap["asks"]), asks, "book {k} asks");
        let best_bid = bids.keys().map(|p| p.parse::<f64>().unwrap()).fold(f64::MIN, f64::max);
        let best_ask = asks.keys().map(|p| p.parse::<f64>().unwrap()).fold(f64::MAX, f64::min);
        assert!(best_bid < best_ask, "book {k} is not crossed");
        let s = m.stream_stats(&names[k]).unwrap();
        assert_eq!(s.produced, 1000);
        assert_eq!(s.last_id, Some(*id));
    }
    // A symbol that is neither a load book nor listed is refused as before.
    let (s, _) = http(m.addr(), "GET", "/api/v3/depth?symbol=LOAD3USDT").await;
    assert_eq!(s, 400);
}

/// `publicTrade.LOADUSDT` on linear: the captured message shape, one trade
/// per message, trade ids `i` consecutive decimal strings (and `seq` equal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_linear_load_trades_are_consecutive_in_the_captured_shape() {
    let mut cfg = MarketConfig::bybit(BybitCategory::Linear);
    cfg.symbols.truncate(2);
    cfg.load = Some(LoadConfig::new(5000, None));
    let (_sim, m) = crate::common::start(cfg).await;
    let p = plan(&m).await;
    assert_eq!(
        p["streams"],
        json!([{"stream": "publicTrade.LOADUSDT", "frames": 5000, "first_id": 1_000_000_000_000u64, "last_id": 1_000_000_004_999u64}])
    );
    let mut ws = connect_bybit(&m).await;
    send(&mut ws, json!({"op": "subscribe", "args": ["publicTrade.LOADUSDT"]})).await;
    let ack = next_reply(&mut ws).await;
    assert_eq!(ack["success"], true, "{ack}");
    let real = fixture("public_trade.linear.json");
    let mut expect = 1_000_000_000_000u64;
    while expect < 1_000_000_005_000 {
        let Message::Text(t) = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap() else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["topic"], "publicTrade.LOADUSDT", "{v}");
        if expect == 1_000_000_000_000 {
            assert_same_shape(&v, &real, "load publicTrade");
        }
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data[0]["i"], expect.to_string());
        assert_eq!(data[0]["seq"], expect);
        assert_eq!(data[0]["s"], "LOADUSDT");
        expect += 1;
    }
    assert_eq!(m.stream_stats("publicTrade.LOADUSDT").unwrap().produced, 5000);
}
