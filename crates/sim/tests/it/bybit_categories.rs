//! The Bybit v5 inverse and option categories, `kline` and `allLiquidation`,
//! and the per-connection topic limits (21 000 characters; option 2000
//! topics), over real sockets with a third-party client (tokio-tungstenite)
//! and hand-written JSON. Payload shapes are compared with the real captures
//! and documentation examples in `shared/fixtures/bybit_v5`; books with the
//! simulator's truth (`book_at`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::{
    Local, WAIT, assert_same_shape, bybit_market, close_frame, connect_bybit, fixture, keys, levels, next_json,
    next_of, next_reply, send, set, shape, start,
};
use ferrofeed_sim::{BybitCategory, KillMode, MarketConfig, MarketHandle, SymbolSpec};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// How many frames `next_of` reads looking for its topic before it fails.
const MAX_FRAMES: usize = 200_000;
const CALL: &str = "BTC-26DEC26-100000-C";

/// A market of `n` options (or synthetic `S0000USDT`... symbols elsewhere)
/// that moves slowly: for the limit tests, which hold thousands of topics.
fn quiet(cat: BybitCategory, symbols: Vec<SymbolSpec>) -> MarketConfig {
    let mut m = MarketConfig::bybit(cat);
    m.symbols = symbols;
    m.timing.actions_per_sec = 0.5;
    m.timing.scale = 5.0;
    m
}

/// `n` BTC calls whose names all have 20 characters (`BTC-26DEC26-1000NN-C`).
fn many_options(n: usize) -> Vec<SymbolSpec> {
    (0..n).map(|k| SymbolSpec::new(&format!("BTC-26DEC26-{}-C", 100_000 + k), "BTC", "USDC", 1, 2, 3000.0)).collect()
}

/// A decimal string as an integer number of `10^-scale` units.
fn units(s: &str, scale: u32) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() as u32 <= scale, "{s} has more than {scale} decimals");
    let digits = format!("{int}{frac:0<width$}", width = scale as usize);
    digits.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn total_chars(h: &MarketHandle) -> usize {
    h.connections()[0].subscriptions.iter().map(String::len).sum()
}

#[tokio::test]
async fn inverse_pong_and_acks_have_the_linear_shapes() {
    let (sim, h) = start(bybit_market(BybitCategory::Inverse)).await;
    assert_eq!(h.stats().market, "bybit-inverse");
    assert!(h.bybit_url().unwrap().ends_with("/v5/public/inverse"));
    let mut ws = connect_bybit(&h).await;
    send(&mut ws, json!({"op": "ping"})).await;
    let pong = next_reply(&mut ws).await;
    assert_same_shape(&pong, &fixture("docs/pong.linear.docs.json"), "inverse pong");
    assert_eq!(
        (pong["success"].clone(), pong["ret_msg"].clone(), pong["req_id"].clone(), pong["op"].clone()),
        (json!(true), json!("pong"), json!(""), json!("ping"))
    );
    send(&mut ws, json!({"op": "ping", "req_id": "p1"})).await;
    assert_eq!(next_reply(&mut ws).await["req_id"], "p1");

    send(&mut ws, json!({"op": "subscribe", "args": ["publicTrade.BTCUSD"]})).await;
    let ack = next_reply(&mut ws).await;
    assert_same_shape(&ack, &fixture("subscribe_response.linear.json"), "inverse ack");
    assert_eq!(keys(&ack), keys(&fixture("subscribe_response.linear.json")));
    assert_eq!(
        (ack["success"].clone(), ack["ret_msg"].clone(), ack["req_id"].clone()),
        (json!(true), json!(""), json!(""))
    );
    send(&mut ws, json!({"op": "subscribe", "req_id": "7", "args": ["orderbook.1000.BTCUSD", "kline.W.ETHUSD"]})).await;
    let ack = next_reply(&mut ws).await;
    assert_eq!((ack["success"].clone(), ack["req_id"].clone()), (json!(true), json!("7")), "{ack}");
    for bad in ["orderbook.25.BTCUSD", "publicTrade.BTCUSDT", "kline.2.BTCUSD", "publicTrade.BTC"] {
        send(&mut ws, json!({"op": "subscribe", "req_id": "e", "args": [bad]})).await;
        let r = next_reply(&mut ws).await;
        assert_eq!(
            (r["success"].clone(), r["ret_msg"].clone()),
            (json!(false), json!(format!("error:handler not found,topic:{bad}")))
        );
    }
    send(&mut ws, json!({"op": "unsubscribe", "args": ["publicTrade.BTCUSD"]})).await;
    let un = next_reply(&mut ws).await;
    assert_eq!(
        (un["op"].clone(), un["success"].clone(), un["req_id"].clone(), un["ret_msg"].clone()),
        (json!("unsubscribe"), json!(true), json!(""), json!(""))
    );
    assert_eq!(h.stats().counters.args_limit_refusals, 0);
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn inverse_payloads_match_the_captures_in_whole_contracts() {
    let (sim, h) = start(bybit_market(BybitCategory::Inverse)).await;
    let mut ws = connect_bybit(&h).await;
    let topics =
        ["publicTrade.BTCUSD", "orderbook.200.BTCUSD", "tickers.BTCUSD", "kline.1.BTCUSD", "allLiquidation.BTCUSD"];
    send(&mut ws, json!({"op": "subscribe", "req_id": "1", "args": topics})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let mut got: BTreeMap<String, Value> = BTreeMap::new();
    let want = ["trade", "book snapshot", "book delta", "ticker snapshot", "ticker delta", "kline", "liquidation"];
    for _ in 0..500_000 {
        if want.iter().all(|w| got.contains_key(*w)) {
            break;
        }
        let v = next_json(&mut ws).await;
        let slot = match (v["topic"].as_str().unwrap_or(""), v["type"].as_str().unwrap_or("")) {
            ("publicTrade.BTCUSD", _) => "trade",
            ("orderbook.200.BTCUSD", "snapshot") => "book snapshot",
            ("orderbook.200.BTCUSD", "delta") => "book delta",
            ("tickers.BTCUSD", "snapshot") => "ticker snapshot",
            ("tickers.BTCUSD", "delta") => "ticker delta",
            ("kline.1.BTCUSD", _) => "kline",
            ("allLiquidation.BTCUSD", _) => "liquidation",
            _ => continue,
        };
        got.entry(slot.to_string()).or_insert(v);
    }
    let g = |k: &str| got.get(k).unwrap_or_else(|| panic!("no {k}")).clone();

    let trade = g("trade");
    assert_same_shape(&trade, &fixture("public_trade.linear.json"), "inverse publicTrade");
    let t = &trade["data"][0];
    assert_eq!(keys(t), keys(&fixture("public_trade.linear.json")["data"][0]));
    assert!(!t["v"].as_str().unwrap().contains('.'), "whole contracts: {t}");
    assert_eq!(t["p"].as_str().unwrap().split_once('.').map(|(_, f)| f.len()), Some(2), "fixed decimals: {t}");

    for (ours, real) in
        [("book snapshot", "orderbook_snapshot.linear.json"), ("book delta", "orderbook_delta.linear.json")]
    {
        let v = g(ours);
        assert_same_shape(&v, &fixture(real), ours);
        assert_eq!(keys(&v), keys(&fixture(real)), "{ours}");
        assert_eq!(keys(&v["data"]), keys(&fixture(real)["data"]), "{ours} data");
        for [_, q] in levels(&v["data"]["b"]).into_iter().chain(levels(&v["data"]["a"])) {
            assert!(!q.contains('.'), "whole contracts: {q}");
        }
    }

    let real = fixture("tickers_snapshot.linear.json");
    let tick = g("ticker snapshot");
    assert_eq!(keys(&tick), keys(&real), "tickers top level");
    for (k, v) in tick["data"].as_object().unwrap() {
        assert_eq!(shape(v), shape(&real["data"][k]), "tickers field {k}");
    }
    for k in ["markPrice", "indexPrice", "fundingRate", "nextFundingTime", "fundingIntervalHour", "openInterestValue"] {
        assert!(tick["data"][k].is_string(), "inverse tickers carry {k}: {tick}");
    }
    let delta = g("ticker delta");
    assert_eq!(keys(&delta), keys(&fixture("tickers_delta.linear.json")), "tickers delta top level");
    assert_eq!(delta["data"]["symbol"], "BTCUSD");
    assert!(keys(&delta["data"]).len() < keys(&tick["data"]).len(), "changed fields only");

    let kline = g("kline");
    assert_same_shape(&kline, &fixture("kline.linear.json"), "inverse kline");
    assert_eq!(keys(&kline), keys(&fixture("kline.linear.json")));
    let k = &kline["data"][0];
    assert_eq!(keys(k), keys(&fixture("kline.linear.json")["data"][0]));
    assert_eq!(
        (k["interval"].clone(), k["end"].as_u64().unwrap() - k["start"].as_u64().unwrap()),
        (json!("1"), 59_999)
    );
    assert!(!k["volume"].as_str().unwrap().contains('.'), "whole contracts: {k}");

    let liq = g("liquidation");
    let doc = fixture("docs/all_liquidation.docs.json");
    assert_same_shape(&liq, &doc, "allLiquidation");
    assert_eq!((keys(&liq), keys(&liq["data"][0])), (keys(&doc), keys(&doc["data"][0])));
    assert_eq!((liq["type"].clone(), liq["data"][0]["s"].clone()), (json!("snapshot"), json!("BTCUSD")));
    assert!(["Buy", "Sell"].contains(&liq["data"][0]["S"].as_str().unwrap()));
    assert!(!liq["data"][0]["v"].as_str().unwrap().contains('.'));

    let c = h.stats().counters;
    assert_eq!((c.args_limit_refusals, c.over_cap_rejections), (0, 0));
    assert!(h.stream_stats("kline.1.BTCUSD").is_some_and(|s| s.produced > 0));
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn inverse_book_deltas_rebuild_the_truth_and_drops_leave_exact_gaps() {
    let (sim, h) = start(bybit_market(BybitCategory::Inverse)).await;
    let mut ws = connect_bybit(&h).await;
    let topic = "orderbook.50.ETHUSD";
    send(&mut ws, json!({"op": "subscribe", "args": [topic]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let snap = next_of(&mut ws, topic, MAX_FRAMES).await;
    assert_eq!(snap["type"], "snapshot");
    let mut local = Local::default();
    local.load(&snap["data"]);
    let mut u = snap["data"]["u"].as_u64().unwrap();
    for _ in 0..40 {
        let d = next_of(&mut ws, topic, MAX_FRAMES).await;
        assert_eq!(d["type"], "delta", "{d}");
        assert_eq!(d["data"]["u"].as_u64().unwrap(), u + 1, "consecutive u");
        u += 1;
        local.apply(&d["data"]);
        let truth = h.book_at("ETHUSD", u, 50).expect("truth at u");
        assert_eq!(local.top(50), (truth.bids, truth.asks), "book at u={u}");
    }
    // Drop every message for a while: the gap the client sees is exactly
    // what the simulator dropped.
    h.drop_probability(topic, 1.0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.stats().counters.dropped_by_fault == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nothing dropped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.drop_probability(topic, 0.0);
    let dropped = h.stats().counters.dropped_by_fault;
    loop {
        let du = next_of(&mut ws, topic, MAX_FRAMES).await["data"]["u"].as_u64().unwrap();
        if du == u + 1 {
            u = du;
            continue;
        }
        assert_eq!(du, u + 1 + dropped, "gap of exactly the dropped messages");
        break;
    }
    let stats = h.stream_stats(topic).expect("stats");
    assert!(stats.produced > 40 && stats.last_id.is_some_and(|id| id > u), "{stats:?}");
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn option_replies_follow_the_documented_shapes() {
    let (sim, h) = start(bybit_market(BybitCategory::Option)).await;
    assert_eq!(h.stats().market, "bybit-option");
    assert!(h.bybit_url().unwrap().ends_with("/v5/public/option"));
    let mut ws = connect_bybit(&h).await;
    for req in [json!({"op": "ping"}), json!({"op": "ping", "req_id": "p1"})] {
        send(&mut ws, req).await;
        let pong = next_reply(&mut ws).await;
        assert_same_shape(&pong, &fixture("docs/pong.option.docs.json"), "option pong");
        assert_eq!(keys(&pong), set(&["args", "op"]), "no req_id, no conn_id: {pong}");
        assert_eq!(pong["op"], "pong");
        assert!(pong["args"][0].as_str().unwrap().parse::<u64>().is_ok());
    }
    let book = format!("orderbook.100.{CALL}");
    send(&mut ws, json!({"op": "subscribe", "req_id": "s1", "args": [book]})).await;
    let ack = next_reply(&mut ws).await;
    let doc = fixture("docs/subscribe_response.option.docs.json");
    assert_same_shape(&ack, &doc, "option ack");
    assert_eq!(keys(&ack), keys(&doc), "documented keys only (no req_id): {ack}");
    assert_eq!(
        (
            ack["success"].clone(),
            ack["type"].clone(),
            ack["data"]["failTopics"].clone(),
            ack["data"]["successTopics"].clone()
        ),
        (json!(true), json!("COMMAND_RESP"), json!([]), json!([book]))
    );
    let good = ["publicTrade.BTC".to_string(), format!("tickers.{CALL}")];
    let bad = [
        format!("orderbook.1.{CALL}"),
        format!("orderbook.50.{CALL}"),
        format!("kline.1.{CALL}"),
        format!("publicTrade.{CALL}"),
        format!("allLiquidation.{CALL}"),
        "tickers.BTC-26DEC26-1-C".to_string(),
        "publicTrade.DOGE".to_string(),
    ];
    let args: Vec<&String> = good.iter().chain(bad.iter()).collect();
    send(&mut ws, json!({"op": "subscribe", "req_id": "s2", "args": args})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!(keys(&r), keys(&doc), "{r}");
    assert_eq!(
        (r["success"].clone(), r["data"]["successTopics"].clone(), r["data"]["failTopics"].clone()),
        (json!(false), json!(good), json!(bad))
    );
    // Subscribing again is not an error on option.
    send(&mut ws, json!({"op": "subscribe", "args": [book]})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!((r["success"].clone(), r["data"]["successTopics"].clone()), (json!(true), json!([book])));
    send(&mut ws, json!({"op": "unsubscribe", "req_id": "u", "args": ["publicTrade.BTC"]})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!(keys(&r), keys(&doc), "{r}");
    assert_eq!((r["success"].clone(), r["data"]["successTopics"].clone()), (json!(true), json!(["publicTrade.BTC"])));
    assert_eq!(h.connections()[0].subscriptions, vec![book.clone(), format!("tickers.{CALL}")]);
    send(&mut ws, json!({"op": "nope", "req_id": "d"})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!(
        (r["success"].clone(), r["ret_msg"].clone(), r["type"].clone(), r.get("req_id")),
        (json!(false), json!("error:invalid op"), json!("COMMAND_RESP"), None)
    );
    ws.send(Message::Text("not json".into())).await.unwrap();
    let r = next_reply(&mut ws).await;
    assert!(r["ret_msg"].as_str().unwrap().starts_with("Failed to decode incoming data"), "{r}");
    // Still open and flowing.
    assert_eq!(next_of(&mut ws, &book, MAX_FRAMES).await["data"]["s"], CALL);
    let c = h.stats().counters;
    assert_eq!((c.args_limit_refusals, c.over_cap_rejections), (0, 0));
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn option_payloads_match_the_docs() {
    let (sim, h) = start(bybit_market(BybitCategory::Option)).await;
    let mut ws = connect_bybit(&h).await;
    let (ticker, book) = (format!("tickers.{CALL}"), format!("orderbook.25.{CALL}"));
    send(&mut ws, json!({"op": "subscribe", "args": ["publicTrade.BTC", ticker, book]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let (mut tickers, mut trades) = (Vec::new(), Vec::new());
    let (mut snap, mut delta) = (None, None);
    let mut trade_symbols = BTreeSet::new();
    for _ in 0..500_000 {
        if tickers.len() >= 3 && trade_symbols.len() >= 2 && snap.is_some() && delta.is_some() {
            break;
        }
        let v = next_json(&mut ws).await;
        match v["topic"].as_str().unwrap_or("") {
            "publicTrade.BTC" => {
                trade_symbols.insert(v["data"][0]["s"].as_str().unwrap().to_string());
                trades.push(v);
            }
            t if t == ticker => tickers.push(v),
            t if t == book && v["type"] == "snapshot" => snap = snap.or(Some(v)),
            t if t == book && v["type"] == "delta" => delta = delta.or(Some(v)),
            _ => {}
        }
    }
    let doc = fixture("docs/tickers.option.docs.json");
    for t in &tickers {
        assert_same_shape(t, &doc, "option tickers");
        assert_eq!((keys(t), keys(&t["data"])), (keys(&doc), keys(&doc["data"])), "{t}");
        assert_eq!(t["type"], "snapshot", "option tickers are snapshot-only");
        assert!(t["id"].as_str().unwrap().starts_with(&format!("{ticker}-")));
        for k in ["markPrice", "markPriceIv", "delta", "gamma", "vega", "theta", "underlyingPrice", "indexPrice"] {
            let x: f64 = t["data"][k].as_str().unwrap().parse().unwrap_or_else(|_| panic!("{k} numeric: {t}"));
            assert!(x.is_finite());
        }
    }

    let real = fixture("public_trade.linear.json");
    let mut item_keys = keys(&real["data"][0]);
    item_keys.remove("L");
    item_keys.remove("RPI");
    item_keys.extend(["mP", "iP", "mIv", "iv"].map(String::from));
    let mut top_keys = keys(&real);
    top_keys.insert("id".into());
    for t in &trades {
        assert_eq!(keys(t), top_keys, "{t}");
        assert_eq!(t["type"], "snapshot");
        let item = &t["data"][0];
        assert_eq!(keys(item), item_keys, "{t}");
        for k in ["T", "seq"] {
            assert!(item[k].is_u64(), "{k}: {t}");
        }
        for k in ["s", "S", "v", "p", "i", "mP", "iP", "mIv", "iv"] {
            assert!(item[k].is_string(), "{k}: {t}");
        }
        assert!(item["BT"].is_boolean());
        assert!(item["s"].as_str().unwrap().starts_with("BTC-"), "only BTC options: {t}");
        for k in ["mP", "iP", "mIv", "iv"] {
            assert!(item[k].as_str().unwrap().parse::<f64>().is_ok_and(|x| x > 0.0), "{k}: {t}");
        }
    }

    for (ours, real) in [
        (snap.expect("snapshot"), "orderbook_snapshot.linear.json"),
        (delta.expect("delta"), "orderbook_delta.linear.json"),
    ] {
        let real = fixture(real);
        let mut want = keys(&real);
        want.insert("id".into());
        assert_eq!(keys(&ours), want, "{ours}");
        assert_eq!(keys(&ours["data"]), keys(&real["data"]));
        let mut without_id = ours.clone();
        without_id.as_object_mut().unwrap().remove("id");
        assert_same_shape(&without_id, &real, "option orderbook");
        assert!(levels(&ours["data"]["b"]).len() <= 25 && levels(&ours["data"]["a"]).len() <= 25);
    }
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn option_book_follows_the_truth_through_a_restart_and_a_kill() {
    let (sim, h) = start(bybit_market(BybitCategory::Option)).await;
    let mut ws = connect_bybit(&h).await;
    let topic = format!("orderbook.25.{CALL}");
    send(&mut ws, json!({"op": "subscribe", "args": [topic]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let snap = next_of(&mut ws, &topic, MAX_FRAMES).await;
    assert_eq!(snap["type"], "snapshot");
    let mut local = Local::default();
    local.load(&snap["data"]);
    let mut u = snap["data"]["u"].as_u64().unwrap();
    let truth = h.book_at(CALL, u, 25).expect("truth at the snapshot");
    assert_eq!(local.top(25), (truth.bids, truth.asks));
    for i in 0..50 {
        if i == 25 {
            assert_eq!(h.bybit_restart(Some(CALL)), 1);
            let r = loop {
                let v = next_of(&mut ws, &topic, MAX_FRAMES).await;
                if v["data"]["u"] == 1 {
                    break v;
                }
                assert_eq!(v["data"]["u"].as_u64().unwrap(), u + 1);
                u += 1;
                local.apply(&v["data"]);
            };
            assert_eq!(r["type"], "snapshot");
            local.load(&r["data"]);
            u = 1;
        } else {
            let d = next_of(&mut ws, &topic, MAX_FRAMES).await;
            assert_eq!((d["type"].clone(), d["data"]["u"].as_u64().unwrap()), (json!("delta"), u + 1), "{d}");
            u += 1;
            local.apply(&d["data"]);
        }
        let truth = h.book_at(CALL, u, 25).expect("truth at u");
        assert_eq!(local.top(25), (truth.bids, truth.asks), "book at u={u}");
    }
    let id = h.connections()[0].id;
    assert!(h.kill(id, KillMode::Close));
    let end = close_frame(&mut ws).await;
    assert!(end.is_some_and(|c| c.reason.contains("killed")));
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn klines_are_built_from_the_trades_and_confirm_when_the_interval_closes() {
    let (sim, h) = start(bybit_market(BybitCategory::Inverse)).await;
    let mut ws = connect_bybit(&h).await;
    let (kl, tr) = ("kline.1.BTCUSD", "publicTrade.BTCUSD");
    send(&mut ws, json!({"op": "subscribe", "args": [kl, tr]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let mut trades: Vec<Value> = Vec::new();
    let mut first: Option<Value> = None;
    let mut jumped = false;
    let confirmed = loop {
        let v = next_json(&mut ws).await;
        if v["topic"] == tr {
            trades.push(v["data"][0].clone());
        } else if v["topic"] == kl {
            let k = v["data"][0].clone();
            if k["confirm"] == true {
                break k;
            }
            first.get_or_insert(k);
            if !jumped && trades.len() >= 5 {
                // Move the venue clock past the end of the minute: the open
                // candle closes without waiting for it.
                h.set_clock_offset_ms(61_000);
                jumped = true;
            }
        }
    };
    let first = first.expect("an open candle first");
    assert_eq!(first["confirm"], false);
    let (start_ms, end_ms) = (confirmed["start"].as_u64().unwrap(), confirmed["end"].as_u64().unwrap());
    assert_eq!((start_ms, end_ms), (first["start"].as_u64().unwrap(), start_ms + 59_999));
    // The closed candle is exactly the trades stamped inside it.
    let inside: Vec<&Value> =
        trades.iter().filter(|t| (start_ms..=end_ms).contains(&t["T"].as_u64().unwrap())).collect();
    assert!(!inside.is_empty(), "trades in the closed minute");
    let px = |v: &Value| units(v.as_str().unwrap(), 2);
    let volume: i128 = inside.iter().map(|t| units(t["v"].as_str().unwrap(), 0)).sum();
    // Inverse turnover: contracts / price in the base coin, per trade to 1e-8.
    let turnover: i128 = inside.iter().map(|t| units(t["v"].as_str().unwrap(), 0) * 10i128.pow(10) / px(&t["p"])).sum();
    assert_eq!(units(confirmed["volume"].as_str().unwrap(), 0), volume, "{confirmed}");
    assert_eq!(units(confirmed["turnover"].as_str().unwrap(), 8), turnover, "{confirmed}");
    assert_eq!(px(&confirmed["open"]), px(&inside[0]["p"]));
    assert_eq!(px(&confirmed["close"]), px(&inside[inside.len() - 1]["p"]));
    assert_eq!(px(&confirmed["high"]), inside.iter().map(|t| px(&t["p"])).max().unwrap());
    assert_eq!(px(&confirmed["low"]), inside.iter().map(|t| px(&t["p"])).min().unwrap());
    // Then later candles only (the closed one is confirmed once), the next
    // one open.
    loop {
        let k = next_of(&mut ws, kl, MAX_FRAMES).await["data"][0].clone();
        assert!(k["start"].as_u64().unwrap() > end_ms, "the closed candle is confirmed once: {k}");
        if k["confirm"] == false {
            break;
        }
    }
    drop(ws);

    // Spot klines have the spot capture's shape.
    let (sim2, spot) = start(bybit_market(BybitCategory::Spot)).await;
    let mut ws = connect_bybit(&spot).await;
    send(&mut ws, json!({"op": "subscribe", "args": ["kline.M.BTCUSDT", "kline.1.BTCUSDT"]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let k = next_of(&mut ws, "kline.1.BTCUSDT", MAX_FRAMES).await;
    assert_same_shape(&k, &fixture("kline.spot.json"), "spot kline");
    assert_eq!(keys(&k["data"][0]), keys(&fixture("kline.spot.json")["data"][0]));
    let m = next_of(&mut ws, "kline.M.BTCUSDT", MAX_FRAMES).await;
    assert_eq!(m["data"][0]["interval"], "M");
    drop(ws);
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn liquidations_come_from_the_generators_trades() {
    let (sim, h) = start(bybit_market(BybitCategory::Inverse)).await;
    let mut ws = connect_bybit(&h).await;
    let (lq, tr) = ("allLiquidation.BTCUSD", "publicTrade.BTCUSD");
    send(&mut ws, json!({"op": "subscribe", "args": [tr, lq]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    let mut trades: Vec<Value> = Vec::new();
    let mut checked = 0;
    while checked < 3 {
        let v = next_json(&mut ws).await;
        if v["topic"] == tr {
            trades.push(v["data"][0].clone());
            continue;
        }
        if v["topic"] != lq {
            continue;
        }
        let l = &v["data"][0];
        let t = l["T"].as_u64().unwrap();
        // A liquidation from before the subscription has no trades here.
        if trades.first().is_none_or(|f| f["T"].as_u64().unwrap() > t) {
            continue;
        }
        // A liquidated long (`Buy`) is a forced sell: the taker sold at the
        // bankruptcy price, at the liquidation's time.
        let taker = if l["S"] == "Buy" { "Sell" } else { "Buy" };
        let m = trades.iter().any(|x| x["T"] == l["T"] && x["p"] == l["p"] && x["S"] == taker);
        assert!(m, "liquidation {l} matches a trade");
        let at_t: i128 = trades.iter().filter(|x| x["T"] == l["T"]).map(|x| units(x["v"].as_str().unwrap(), 0)).sum();
        assert!(units(l["v"].as_str().unwrap(), 0) <= at_t, "{l}");
        checked += 1;
    }
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn option_connections_hold_at_most_2000_topics() {
    let mut m = quiet(BybitCategory::Option, many_options(700));
    // The 21 000-character limit would bite first; this test is about the count.
    m.limits.max_topic_chars = usize::MAX;
    let (sim, h) = start(m).await;
    let mut ws = connect_bybit(&h).await;
    let names: Vec<String> = (0..700).map(|k| format!("BTC-26DEC26-{}-C", 100_000 + k)).collect();
    let topics: Vec<String> = names
        .iter()
        .flat_map(|n| [format!("tickers.{n}"), format!("orderbook.25.{n}"), format!("orderbook.100.{n}")])
        .collect();
    send(&mut ws, json!({"op": "subscribe", "args": topics})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!(r["type"], "COMMAND_RESP");
    assert_eq!(r["success"], false);
    assert_eq!(r["data"]["successTopics"], json!(topics[..2000]));
    assert_eq!(r["data"]["failTopics"], json!(topics[2000..]));
    assert_eq!(h.connections()[0].subscriptions.len(), 2000);
    send(&mut ws, json!({"op": "subscribe", "args": ["publicTrade.BTC"]})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!(
        (r["success"].clone(), r["data"]["failTopics"].clone(), r["data"]["successTopics"].clone()),
        (json!(false), json!(["publicTrade.BTC"]), json!([]))
    );
    send(&mut ws, json!({"op": "unsubscribe", "args": [topics[0]]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    send(&mut ws, json!({"op": "subscribe", "args": ["publicTrade.BTC"]})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!((r["success"].clone(), r["data"]["successTopics"].clone()), (json!(true), json!(["publicTrade.BTC"])));
    let c = h.stats().counters;
    assert_eq!((c.over_cap_rejections, c.args_limit_refusals, c.max_streams_on_a_connection), (2, 0, 2000));
    drop(ws);
    sim.shutdown().await;
}

/// `n` distinct valid topics of a linear/inverse market whose lengths add up
/// to exactly `total`, from the symbols `S0000USDT`...
fn topics_totalling(total: usize, symbols: usize) -> Vec<String> {
    let mut short: Vec<String> = Vec::new();
    let mut long: Vec<String> = Vec::new();
    for i in 0..symbols {
        let s = format!("S{i:04}USDT");
        short.push(format!("tickers.{s}"));
        short.extend(
            ["1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M"]
                .map(|iv| format!("kline.{iv}.{s}")),
        );
        long.extend([format!("publicTrade.{s}"), format!("orderbook.50.{s}"), format!("orderbook.200.{s}")]);
        long.push(format!("allLiquidation.{s}"));
    }
    let mut out = Vec::new();
    let mut left = total;
    let mut short = short.into_iter();
    while left > 72 {
        let t = short.next().expect("enough topics");
        left -= t.len();
        out.push(t);
    }
    // Three more (16 to 24 characters each) fill the rest exactly.
    let mut pool: Vec<String> = short.take(60).chain(long).collect();
    for a in 0..pool.len() {
        for b in a + 1..pool.len() {
            for c in b + 1..pool.len() {
                if pool[a].len() + pool[b].len() + pool[c].len() == left {
                    let picked = [c, b, a].map(|i| pool.remove(i));
                    out.extend(picked);
                    return out;
                }
            }
        }
    }
    panic!("no three topics of {left} characters");
}

#[tokio::test]
async fn linear_and_inverse_refuse_a_subscribe_past_21000_characters() {
    for cat in [BybitCategory::Linear, BybitCategory::Inverse] {
        let (sim, h) = start(quiet(cat, SymbolSpec::synthetic(100))).await;
        let mut ws = connect_bybit(&h).await;
        let topics = topics_totalling(21_000, 100);
        assert_eq!(topics.iter().map(String::len).sum::<usize>(), 21_000);
        send(&mut ws, json!({"op": "subscribe", "req_id": "all", "args": topics})).await;
        let r = next_reply(&mut ws).await;
        assert_eq!((r["success"].clone(), r["req_id"].clone()), (json!(true), json!("all")), "{cat:?}: {r}");
        assert_eq!(total_chars(&h), 21_000);
        // One more character is refused, the whole request, nothing added.
        let extra = "publicTrade.S0099USDT";
        assert!(!topics.iter().any(|t| t == extra));
        send(&mut ws, json!({"op": "subscribe", "req_id": "over", "args": [extra]})).await;
        let r = next_reply(&mut ws).await;
        assert_eq!(
            (r["success"].clone(), r["ret_msg"].clone(), r["req_id"].clone(), r["op"].clone()),
            (json!(false), json!("error:args length exceeds 21000"), json!("over"), json!("subscribe")),
            "{cat:?}"
        );
        assert_eq!(total_chars(&h), 21_000);
        // Make room for one topic; a request for it and one more is still
        // refused as a whole; the topic alone fits.
        let freed = topics[0].clone();
        send(&mut ws, json!({"op": "unsubscribe", "args": [freed]})).await;
        assert_eq!(next_reply(&mut ws).await["success"], true);
        send(&mut ws, json!({"op": "subscribe", "args": [freed, extra]})).await;
        assert_eq!(next_reply(&mut ws).await["success"], false);
        assert_eq!(total_chars(&h), 21_000 - freed.len());
        send(&mut ws, json!({"op": "subscribe", "args": [freed]})).await;
        assert_eq!(next_reply(&mut ws).await["success"], true);
        assert_eq!(total_chars(&h), 21_000);
        assert_eq!(h.stats().counters.args_limit_refusals, 2, "{cat:?}");
        // The subscriptions held keep flowing.
        let t = next_of(&mut ws, &topics[0], MAX_FRAMES).await;
        assert_eq!(t["topic"], topics[0]);
        drop(ws);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn option_topics_past_21000_characters_fail_one_by_one() {
    let (sim, h) = start(quiet(BybitCategory::Option, many_options(800))).await;
    let mut ws = connect_bybit(&h).await;
    // 28 characters each: 750 of them are exactly 21 000.
    let topics: Vec<String> = (0..800).map(|k| format!("tickers.BTC-26DEC26-{}-C", 100_000 + k)).collect();
    assert!(topics.iter().all(|t| t.len() == 28));
    send(&mut ws, json!({"op": "subscribe", "args": topics})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!(r["success"], false);
    assert_eq!(r["data"]["successTopics"], json!(topics[..750]));
    assert_eq!(r["data"]["failTopics"], json!(topics[750..]));
    assert_eq!(total_chars(&h), 21_000);
    let c = h.stats().counters;
    assert_eq!((c.args_limit_refusals, c.over_cap_rejections), (1, 0));
    send(&mut ws, json!({"op": "unsubscribe", "args": [topics[0]]})).await;
    assert_eq!(next_reply(&mut ws).await["success"], true);
    send(&mut ws, json!({"op": "subscribe", "args": [topics[799]]})).await;
    let r = next_reply(&mut ws).await;
    assert_eq!((r["success"].clone(), r["data"]["successTopics"].clone()), (json!(true), json!([topics[799]])));
    assert_eq!(total_chars(&h), 21_000);
    drop(ws);
    sim.shutdown().await;
}
