//! The Bybit v5 public simulator over real sockets, driven by a third-party
//! client (tokio-tungstenite) with hand-written JSON: pong and ack shapes per
//! category, the venue's error strings, order-book snapshot/delta sequencing
//! against the simulator's truth, the `u = 1` restart fault, and payload
//! shapes compared with the real captures in `shared/fixtures/bybit_v5`.

use std::time::Duration;

use crate::common::{
    Local, assert_same_shape, bybit_market, close_frame, connect_bybit, fixture, http, keys, next_json, next_of,
    next_reply, send, shape, start,
};
use ferrofeed_sim::BybitCategory;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

/// How many frames `next_of` reads looking for its topic before it fails.
const MAX_FRAMES: usize = 100_000;

#[tokio::test]
async fn pong_and_ack_shapes_per_category_echo_req_id() {
    // Inverse and option: tests/it/bybit_categories.rs.
    for cat in [BybitCategory::Spot, BybitCategory::Linear] {
        let (sim, h) = start(bybit_market(cat)).await;
        let mut ws = connect_bybit(&h).await;
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
    let (sim, h) = start(bybit_market(BybitCategory::Spot)).await;
    let mut ws = connect_bybit(&h).await;
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
    let t = next_of(&mut ws, "publicTrade.BTCUSDT", MAX_FRAMES).await;
    assert_eq!(t["data"][0]["s"], "BTCUSDT");
    // Linear has no args limit.
    let (sim2, lin) = start(bybit_market(BybitCategory::Linear)).await;
    let mut ws2 = connect_bybit(&lin).await;
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
    let (sim, h) = start(bybit_market(BybitCategory::Linear)).await;
    let mut ws = connect_bybit(&h).await;
    let topic = "orderbook.50.BTCUSDT";
    send(&mut ws, json!({"op": "subscribe", "req_id": "1", "args": [topic]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let snap = next_of(&mut ws, topic, MAX_FRAMES).await;
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
                let d = next_of(&mut ws, topic, MAX_FRAMES).await;
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
        let d = next_of(&mut ws, topic, MAX_FRAMES).await;
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
    let (sim, h) = start(bybit_market(BybitCategory::Spot)).await;
    let mut ws = connect_bybit(&h).await;
    let topic = "orderbook.200.ETHUSDT";
    send(&mut ws, json!({"op": "subscribe", "args": [topic, "orderbook.1.ETHUSDT"]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let snap = next_of(&mut ws, topic, MAX_FRAMES).await;
    assert!(snap["data"]["u"].as_u64().unwrap() > 1);
    let (status, body) = http(h.addr(), "POST", "/admin/bybit_reset?symbol=ethusdt").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["topics"], 2);
    let mut local = Local::default();
    let r = loop {
        let v = next_of(&mut ws, topic, MAX_FRAMES).await;
        if v["data"]["u"] == 1 {
            break v;
        }
    };
    assert_eq!(r["type"], "snapshot");
    local.load(&r["data"]);
    let mut u = 1;
    for _ in 0..10 {
        let d = next_of(&mut ws, topic, MAX_FRAMES).await;
        assert_eq!((d["type"].clone(), d["data"]["u"].as_u64().unwrap()), (json!("delta"), u + 1));
        u += 1;
        local.apply(&d["data"]);
    }
    let truth = h.book_at("ETHUSDT", u, 50).expect("truth after restart");
    assert_eq!(local.top(50), (truth.bids, truth.asks));
    // Depth 1 is snapshot-only.
    let l1 = next_of(&mut ws, "orderbook.1.ETHUSDT", MAX_FRAMES).await;
    assert_eq!(l1["type"], "snapshot");
    let (status, _) = http(h.addr(), "POST", "/admin/bybit_reset").await;
    assert_eq!(status, 200);
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn payloads_have_the_fields_and_types_of_the_real_captures() {
    let (sim, h) = start(bybit_market(BybitCategory::Linear)).await;
    let mut ws = connect_bybit(&h).await;
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
    let (sim2, spot) = start(bybit_market(BybitCategory::Spot)).await;
    let mut ws = connect_bybit(&spot).await;
    send(&mut ws, json!({"op": "subscribe", "args": ["orderbook.200.BTCUSDT"]})).await;
    let snap = next_of(&mut ws, "orderbook.200.BTCUSDT", MAX_FRAMES).await;
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
    let mut m = bybit_market(BybitCategory::Linear);
    m.limits.idle_timeout = Duration::from_millis(300);
    let (sim, h) = start(m).await;
    let mut ws = connect_bybit(&h).await;
    let end = close_frame(&mut ws).await;
    assert!(end.is_some_and(|c| c.reason.contains("idle")));
    let url = format!("ws://{}/v5/public/spot", h.addr());
    assert!(connect_async(url).await.is_err(), "spot path on the linear port");
    let (status, _) = http(h.addr(), "GET", "/admin/stats").await;
    assert_eq!(status, 200);
    assert_eq!(h.stats().market, "bybit-linear");
    assert!(h.stats().counters.idle_closes >= 1);
    sim.shutdown().await;
}
