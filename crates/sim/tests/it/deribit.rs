//! The Deribit simulator over real sockets, driven by a small hand-written
//! JSON-RPC client (tokio-tungstenite): framing and errors, heartbeats,
//! subscription rules, the book's change-id chain against the truth,
//! authentication and token expiry, order entry with its private
//! notifications, credits, kills, and every payload's shape compared with
//! the real captures in `shared/fixtures/deribit`.

use std::time::Duration;

use crate::common::{WAIT, Ws, close_frame, connect, http, next_json, send, shape, start};
use ferrofeed_sim::{DeribitKind, KillMode, MarketConfig, MarketHandle, TEST_API_KEY, TEST_HMAC_SECRET};
use futures_util::SinkExt;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;

/// `/work/main/crates/sim` → `/work/shared/fixtures/deribit`.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/deribit");

fn fixture(name: &str) -> Value {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Asserts that `ours` has every key of the `real` capture with the same
/// JSON type, recursively (arrays by their first elements, when both have
/// one), and no key the capture lacks; keys named in `optional` may be
/// missing on either side (fields the venue sends only sometimes).
fn assert_same_shape(ours: &Value, real: &Value, what: &str) {
    conforms(ours, real, &[], what)
}

fn conforms(ours: &Value, real: &Value, optional: &[&str], what: &str) {
    fn walk(path: &str, a: &Value, b: &Value, optional: &[&str], out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, q) in y {
                    match x.get(k) {
                        Some(p) => walk(&format!("{path}.{k}"), p, q, optional, out),
                        None if optional.contains(&k.as_str()) => {}
                        None => out.push(format!("{path}.{k} missing")),
                    }
                }
                for k in x.keys().filter(|k| !y.contains_key(*k) && !optional.contains(&k.as_str())) {
                    out.push(format!("{path}.{k} extra"));
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                if let (Some(p), Some(q)) = (x.first(), y.first()) {
                    walk(&format!("{path}[]"), p, q, optional, out);
                }
            }
            _ if shape(a) != shape(b) => out.push(format!("{path}: {} vs {}", shape(a), shape(b))),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("$", ours, real, optional, &mut out);
    assert!(out.is_empty(), "{what}: {out:?}\nours {ours}\nreal {real}");
}

/// A busy Deribit market of `kind` with a long book history.
fn market(kind: DeribitKind) -> MarketConfig {
    let mut m = MarketConfig::deribit(kind);
    m.timing.actions_per_sec = 300.0;
    m.book_history = 20_000;
    m
}

/// A tiny JSON-RPC client: numbered requests, answers matched by id,
/// notifications kept in order.
struct Rpc {
    ws: Ws,
    next: u64,
    pending: std::collections::VecDeque<Value>,
}

impl Rpc {
    async fn open(h: &MarketHandle) -> Rpc {
        Rpc { ws: connect(&h.deribit_url().expect("deribit market")).await, next: 1, pending: Default::default() }
    }

    /// Sends a request and returns its answer (notifications before it are kept).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        send(&mut self.ws, json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        loop {
            let v = next_json(&mut self.ws).await;
            if v["id"] == id {
                return v;
            }
            if v.get("id").is_none() && self.pending.len() < 100_000 {
                self.pending.push_back(v);
            }
        }
    }

    /// The next notification (kept or new).
    async fn notification(&mut self) -> Value {
        if let Some(v) = self.pending.pop_front() {
            return v;
        }
        next_json(&mut self.ws).await
    }

    /// The next `subscription` notification on `channel`, within `max` frames.
    async fn on(&mut self, channel: &str, max: usize) -> Value {
        for _ in 0..max {
            let v = self.notification().await;
            if v["params"]["channel"] == channel {
                return v;
            }
        }
        panic!("nothing on {channel}");
    }

    async fn auth(&mut self) -> Value {
        self.call(
            "public/auth",
            json!({"grant_type": "client_credentials", "client_id": TEST_API_KEY, "client_secret": TEST_HMAC_SECRET}),
        )
        .await
    }
}

const MANY: usize = 200_000;

#[tokio::test]
async fn framing_errors_and_fixture_shapes_of_the_public_channels() {
    let (sim, h) = start(market(DeribitKind::Inverse)).await;
    let mut c = Rpc::open(&h).await;
    c.ws.send(Message::Text("not json".into())).await.unwrap();
    let e = next_json(&mut c.ws).await;
    assert_eq!((e["error"]["code"].clone(), e["error"]["message"].clone()), (json!(11050), json!("bad_request")));
    assert!(e.get("id").is_none(), "{e}");
    let t = c.call("public/test", json!({})).await;
    assert!(t["result"]["version"].is_string() && t["usIn"].is_u64() && t["usDiff"].is_u64() && t["testnet"] == false);
    assert_eq!(c.call("public/nope", json!({})).await["error"]["code"], -32601);
    let hb = c.call("public/set_heartbeat", json!({"interval": 5})).await;
    assert_eq!(hb["error"]["code"], -32602, "{hb}");
    assert!(c.call("public/get_time", json!({})).await["result"].is_u64());

    let chans = [
        "book.BTC-PERPETUAL.100ms",
        "book.BTC-PERPETUAL.none.10.100ms",
        "trades.BTC-PERPETUAL.100ms",
        "ticker.BTC-PERPETUAL.100ms",
        "quote.BTC-PERPETUAL",
        "chart.trades.BTC-PERPETUAL.1",
        "book.NOPE-PERPETUAL.100ms",
        "book.BTC-PERPETUAL.5ms",
        "nonsense",
    ];
    let r = c.call("public/subscribe", json!({"channels": chans})).await;
    assert_eq!(r["result"], json!(&chans[..6]), "unknown channels are dropped silently");
    assert_same_shape(&r, &fixture("subscribe_response.json"), "subscribe result");
    let snap = c.on("book.BTC-PERPETUAL.100ms", MANY).await;
    assert_eq!(snap["params"]["data"]["type"], "snapshot");
    assert!(snap["params"]["data"].get("prev_change_id").is_none());
    assert_same_shape(&snap, &fixture("book_snapshot.json"), "book snapshot");
    let change = c.on("book.BTC-PERPETUAL.100ms", MANY).await;
    assert_same_shape(&change, &fixture("book_change.json"), "book change");
    for (chan, fx) in [
        ("book.BTC-PERPETUAL.none.10.100ms", "book_grouped.json"),
        ("ticker.BTC-PERPETUAL.100ms", "ticker_perpetual.json"),
        ("quote.BTC-PERPETUAL", "quote.json"),
        ("chart.trades.BTC-PERPETUAL.1", "chart_trades.json"),
    ] {
        let v = c.on(chan, MANY).await;
        assert_same_shape(&v, &fixture(fx), chan);
    }
    // Trades: combo legs, liquidation flags and option volatility come and go.
    let t = c.on("trades.BTC-PERPETUAL.100ms", MANY).await;
    conforms(&t, &fixture("trades.json"), &["combo_trade_id", "combo_id", "liquidation", "iv"], "trades");
    // Prices on the 0.5 tick, amounts in whole 10 USD contracts.
    for tr in t["params"]["data"].as_array().unwrap() {
        let (p, a) = (tr["price"].as_f64().unwrap(), tr["amount"].as_f64().unwrap());
        assert_eq!((p * 2.0).fract(), 0.0, "{tr}");
        assert_eq!(a % 10.0, 0.0, "{tr}");
        assert_eq!(tr["contracts"].as_f64().unwrap() * 10.0, a);
    }
    // Unsubscribe returns only what it removed.
    let u = c.call("public/unsubscribe", json!({"channels": ["quote.BTC-PERPETUAL", "quote.ETH-PERPETUAL"]})).await;
    assert_eq!(u["result"], json!(["quote.BTC-PERPETUAL"]));
    // Subscribing again answers the channel but sends no second snapshot.
    let again = c.call("public/subscribe", json!({"channels": ["book.BTC-PERPETUAL.100ms"]})).await;
    assert_eq!(again["result"], json!(["book.BTC-PERPETUAL.100ms"]));
    for _ in 0..20 {
        let v = c.on("book.BTC-PERPETUAL.100ms", MANY).await;
        assert_eq!(v["params"]["data"]["type"], "change", "{v}");
    }
    // REST and a wrong path.
    let (status, body) =
        http(h.addr(), "GET", "/api/v2/public/get_order_book?instrument_name=BTC-PERPETUAL&depth=5").await;
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, b["result"]["bids"].as_array().map(Vec::len)), (200, Some(5)), "{body}");
    assert!(b["result"]["change_id"].is_u64());
    assert_eq!(http(h.addr(), "GET", "/api/v2/public/get_time").await.0, 200);
    let bad = tokio_tungstenite::connect_async(format!("ws://{}/ws/api/v1", h.addr())).await;
    assert!(bad.is_err(), "other paths are 404");
    drop(c);
    sim.shutdown().await;
}

#[tokio::test]
async fn heartbeats_keep_answering_clients_and_close_silent_ones_with_4000() {
    let mut m = market(DeribitKind::Inverse);
    m.timing.scale = 0.01; // a 10 s interval is 100 ms
    let (sim, h) = start(m).await;
    let mut good = Rpc::open(&h).await;
    let mut bad = Rpc::open(&h).await;
    for c in [&mut good, &mut bad] {
        assert_eq!(c.call("public/set_heartbeat", json!({"interval": 10})).await["result"], "ok");
    }
    // The good client answers five test_requests; it stays open.
    let mut answered = 0;
    while answered < 5 {
        let v = good.notification().await;
        if v["method"] == "heartbeat" && v["params"]["type"] == "test_request" {
            assert_same_shape(&v, &fixture("heartbeat_test_request.json"), "test_request");
            assert!(good.call("public/test", json!({})).await["result"]["version"].is_string());
            answered += 1;
        }
    }
    // The silent one is closed with 4000 `heartbeat close`.
    let cf = close_frame(&mut bad.ws).await.expect("a close frame");
    assert_eq!((u16::from(cf.code), cf.reason.as_str()), (4000, "heartbeat close"));
    let s = h.deribit_stats().unwrap();
    assert!(s.test_requests_sent >= 6 && s.test_requests_answered >= 5 && s.heartbeat_closes == 1, "{s:?}");
    // Still open: it answers.
    assert!(good.call("public/test", json!({})).await["result"].is_object());
    drop((good, bad));
    sim.shutdown().await;
}

#[tokio::test]
async fn raw_needs_auth_and_the_rebuilt_book_equals_the_truth_at_every_change_id() {
    let (sim, h) = start(market(DeribitKind::Inverse)).await;
    let mut c = Rpc::open(&h).await;
    let chan = "book.BTC-PERPETUAL.raw";
    let r = c.call("public/subscribe", json!({"channels": [chan]})).await;
    assert_eq!(r["error"]["code"], 13778, "{r}");
    assert_eq!(r["error"]["message"], "raw_subscriptions_not_available_for_unauthorized");
    assert!(c.auth().await["result"]["access_token"].is_string());
    assert_eq!(c.call("public/subscribe", json!({"channels": [chan]})).await["result"], json!([chan]));
    let snap = c.on(chan, MANY).await;
    let mut book = Local::default();
    book.load(&snap["params"]["data"]);
    let mut last = snap["params"]["data"]["change_id"].as_u64().unwrap();
    let mut checked = 0;
    while checked < 200 {
        let v = c.on(chan, MANY).await;
        let d = &v["params"]["data"];
        assert_eq!(d["prev_change_id"].as_u64(), Some(last), "chain intact");
        let id = d["change_id"].as_u64().unwrap();
        assert!(id > last);
        book.apply(d);
        last = id;
        let truth = h.book_at("BTC-PERPETUAL", id, 10).expect("history keeps it");
        assert_eq!(book.top(10), (norm(truth.bids), norm(truth.asks)), "at change_id {id}");
        checked += 1;
    }
    // The break fault: the next change names a prev_change_id never sent.
    let (status, _) = http(h.addr(), "POST", "/admin/deribit_break?symbol=NOPE-PERPETUAL").await;
    assert_eq!(status, 400, "unknown symbol");
    let (status, body) = http(h.addr(), "POST", "/admin/deribit_break?symbol=BTC-PERPETUAL").await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["channels"].clone()), (200, json!(1)));
    let v = c.on(chan, MANY).await;
    assert_ne!(v["params"]["data"]["prev_change_id"].as_u64(), Some(last));
    drop(c);
    sim.shutdown().await;
}

/// A local book keyed by price text, from `[action, price, amount]` levels.
#[derive(Default)]
struct Local {
    bids: std::collections::BTreeMap<i64, String>,
    asks: std::collections::BTreeMap<i64, String>,
}

impl Local {
    fn key(p: &Value) -> i64 {
        (p.as_f64().unwrap() * 1e4).round() as i64
    }

    fn load(&mut self, d: &Value) {
        self.bids.clear();
        self.asks.clear();
        self.apply(d);
    }

    fn apply(&mut self, d: &Value) {
        for (k, side) in [("bids", &mut self.bids), ("asks", &mut self.asks)] {
            for l in d[k].as_array().unwrap() {
                let p = Self::key(&l[1]);
                match l[0].as_str().unwrap() {
                    "delete" => {
                        side.remove(&p);
                    }
                    _ => {
                        side.insert(p, format!("{}", l[2].as_f64().unwrap()));
                    }
                }
            }
        }
    }

    fn top(&self, n: usize) -> (Vec<[String; 2]>, Vec<[String; 2]>) {
        let fmt = |p: i64| format!("{}", p as f64 / 1e4);
        let norm = |s: &str| format!("{}", s.parse::<f64>().unwrap());
        let b = self.bids.iter().rev().take(n).map(|(p, q)| [fmt(*p), norm(q)]).collect();
        let a = self.asks.iter().take(n).map(|(p, q)| [fmt(*p), norm(q)]).collect();
        (b, a)
    }
}

/// Truth levels as the local book writes them (shortest float text).
fn norm(levels: Vec<[String; 2]>) -> Vec<[String; 2]> {
    levels
        .into_iter()
        .map(|[p, q]| [format!("{}", p.parse::<f64>().unwrap()), format!("{}", q.parse::<f64>().unwrap())])
        .collect()
}

#[tokio::test]
async fn auth_by_both_grants_refused_signatures_and_token_expiry_then_refresh() {
    let mut m = market(DeribitKind::Inverse);
    m.limits.deribit.token_lifetime = Duration::from_millis(300);
    let (sim, h) = start(m).await;
    let mut c = Rpc::open(&h).await;
    let bad = c
        .call(
            "public/auth",
            json!({"grant_type": "client_credentials", "client_id": TEST_API_KEY, "client_secret": "wrong"}),
        )
        .await;
    assert_eq!(bad["error"]["code"], 13004);
    let no = c.call("private/get_open_orders_by_instrument", json!({"instrument_name": "BTC-PERPETUAL"})).await;
    assert_eq!(no["error"]["code"], 13009);
    let now = c.call("public/get_time", json!({})).await["result"].as_u64().unwrap();
    let sign = |ts: u64, nonce: &str, data: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(TEST_HMAC_SECRET.as_bytes()).unwrap();
        mac.update(format!("{ts}\n{nonce}\n{data}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let sig = |ts, s: String| json!({"grant_type": "client_signature", "client_id": TEST_API_KEY, "timestamp": ts, "signature": s, "nonce": "abc", "data": ""});
    let r = c.call("public/auth", sig(now, sign(now, "abc", ""))).await;
    assert_eq!(r["result"]["token_type"], "bearer", "{r}");
    for k in ["access_token", "expires_in", "refresh_token", "scope"] {
        assert!(r["result"].get(k).is_some(), "{k}");
    }
    assert_eq!(c.call("public/auth", sig(now, sign(now, "abd", ""))).await["error"]["code"], 13004);
    let old = now - 3_600_000;
    assert_eq!(c.call("public/auth", sig(old, sign(old, "abc", ""))).await["error"]["code"], 13004, "stale timestamp");
    // The token expires: private calls answer token_expired until a refresh.
    let refresh = r["result"]["refresh_token"].as_str().unwrap().to_string();
    let expired = loop {
        let v = c.call("private/get_open_orders_by_instrument", json!({"instrument_name": "BTC-PERPETUAL"})).await;
        if v.get("error").is_some() {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (expired["error"]["code"].clone(), expired["error"]["data"]["reason"].clone()),
        (json!(13009), json!("token_expired"))
    );
    let again = c.call("public/auth", json!({"grant_type": "refresh_token", "refresh_token": refresh})).await;
    assert!(again["result"]["access_token"].is_string(), "{again}");
    let ok = c.call("private/get_open_orders_by_instrument", json!({"instrument_name": "BTC-PERPETUAL"})).await;
    assert_eq!(ok["result"], json!([]), "{ok}");
    let reused = c.call("public/auth", json!({"grant_type": "refresh_token", "refresh_token": refresh})).await;
    assert_eq!(reused["error"]["code"], 13004, "a refresh token is single use");
    let s = h.deribit_stats().unwrap();
    assert!(s.auths == 1 && s.refreshes == 1 && s.token_expiries >= 1 && s.auth_failures >= 3, "{s:?}");
    drop(c);
    sim.shutdown().await;
}

#[tokio::test]
async fn orders_fill_against_the_book_and_push_the_private_channels() {
    let (sim, h) = start(market(DeribitKind::Inverse)).await;
    let mut c = Rpc::open(&h).await;
    c.auth().await;
    let chans = [
        "user.orders.BTC-PERPETUAL.raw",
        "user.trades.future.BTC.raw",
        "user.portfolio.btc",
        "user.changes.any.any.raw",
    ];
    let r = c.call("private/subscribe", json!({"channels": chans})).await;
    assert_eq!(r["result"], json!(chans), "{r}");
    // A market buy fills against the book.
    let buy = c
        .call(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": 100, "type": "market", "label": "m1"}),
        )
        .await;
    let o = &buy["result"]["order"];
    assert_eq!((o["order_state"].clone(), o["filled_amount"].clone()), (json!("filled"), json!(100.0)), "{buy}");
    assert!(!buy["result"]["trades"].as_array().unwrap().is_empty());
    assert_same_shape(
        &json!({"order": o}),
        &json!({"order": fixture("private_buy_response.json")["result"]["order"]}),
        "order",
    );
    let n = c.on("user.orders.BTC-PERPETUAL.raw", MANY).await;
    assert_eq!(n["params"]["data"]["order_id"], o["order_id"]);
    let t = c.on("user.trades.future.BTC.raw", MANY).await;
    assert_eq!(t["params"]["data"][0]["order_id"], o["order_id"]);
    let p = c.on("user.portfolio.btc", MANY).await;
    assert_same_shape(&p, &fixture("user_portfolio.json"), "portfolio");
    // A resting limit far from the market; edit; cancel; errors.
    let (bid, _) = {
        let b = h.book("BTC-PERPETUAL", 1).unwrap();
        (b.bids[0][0].parse::<f64>().unwrap(), ())
    };
    let px = ((bid * 0.9) / 0.5).floor() * 0.5;
    let lim = c
        .call("private/buy", json!({"instrument_name": "BTC-PERPETUAL", "amount": 20, "price": px, "post_only": true}))
        .await;
    let lo = &lim["result"]["order"];
    assert_eq!(lo["order_state"], "open", "{lim}");
    assert_same_shape(&lim, &fixture("private_buy_response.json"), "buy response");
    let id = lo["order_id"].as_str().unwrap().to_string();
    let ed = c.call("private/edit", json!({"order_id": id, "amount": 30, "price": px - 0.5})).await;
    assert_eq!(
        (ed["result"]["order"]["replaced"].clone(), ed["result"]["order"]["amount"].clone()),
        (json!(true), json!(30.0))
    );
    assert_same_shape(&ed, &fixture("private_edit_response.json"), "edit response");
    let open = c.call("private/get_open_orders_by_instrument", json!({"instrument_name": "BTC-PERPETUAL"})).await;
    assert_eq!(open["result"].as_array().map(Vec::len), Some(1));
    let cx = c.call("private/cancel", json!({"order_id": id})).await;
    assert_eq!(
        (cx["result"]["order_state"].clone(), cx["result"]["cancel_reason"].clone()),
        (json!("cancelled"), json!("user_request"))
    );
    assert_same_shape(&cx, &fixture("private_cancel_response.json"), "cancel response");
    assert_eq!(c.call("private/cancel", json!({"order_id": id})).await["error"]["code"], 11044);
    assert_eq!(c.call("private/cancel", json!({"order_id": "999"})).await["error"]["code"], 10004);
    let low = c.call("private/buy", json!({"instrument_name": "BTC-PERPETUAL", "amount": 5, "price": px})).await;
    assert_eq!(low["error"]["code"], 10002);
    let step = c.call("private/buy", json!({"instrument_name": "BTC-PERPETUAL", "amount": 15, "price": px})).await;
    assert_eq!(step["error"]["code"], -32602);
    let tick =
        c.call("private/buy", json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": px + 0.25})).await;
    assert_eq!(tick["error"]["code"], -32602);
    let rich =
        c.call("private/buy", json!({"instrument_name": "BTC-PERPETUAL", "amount": 1_000_000_000, "price": px})).await;
    assert_eq!(rich["error"]["code"], 10009);
    let sell =
        c.call("private/sell", json!({"instrument_name": "BTC-PERPETUAL", "amount": 100, "type": "market"})).await;
    assert_eq!(sell["result"]["order"]["direction"], "sell");
    assert_same_shape(
        &json!(sell["result"]["order"]),
        &fixture("private_sell_response.json")["result"]["order"],
        "sell",
    );
    // Deposits reach user.portfolio.
    h.deposit(None, "BTC", "1").unwrap();
    loop {
        let d = c.on("user.portfolio.btc", MANY).await;
        if d["params"]["data"]["balance"].as_f64().unwrap() > 10.9 {
            break;
        }
    }
    drop(c);
    sim.shutdown().await;
}

#[tokio::test]
async fn credit_exhaustion_answers_10028_then_closes_and_a_killed_client_reconnects() {
    let mut m = market(DeribitKind::Inverse);
    m.limits.deribit.subscribe_pool = 6000;
    m.limits.deribit.subscribe_refill_per_sec = 1;
    let (sim, h) = start(m).await;
    let mut c = Rpc::open(&h).await;
    for _ in 0..2 {
        assert!(c.call("public/subscribe", json!({"channels": ["quote.BTC-PERPETUAL"]})).await.get("result").is_some());
    }
    let e = c.call("public/subscribe", json!({"channels": ["quote.BTC-PERPETUAL"]})).await;
    assert_eq!((e["error"]["code"].clone(), e["error"]["message"].clone()), (json!(10028), json!("too_many_requests")));
    assert_same_shape(
        &json!({"error": e["error"]}),
        &json!({"error": fixture("error_too_many_requests.json")["error"]}),
        "10028",
    );
    assert!(close_frame(&mut c.ws).await.is_some(), "the session ends");
    assert_eq!(h.deribit_stats().unwrap().too_many_requests, 1);
    // Kill and reconnect.
    let mut d = Rpc::open(&h).await;
    assert!(d.call("public/subscribe", json!({"channels": ["trades.future.BTC.100ms"]})).await["result"].is_array());
    let _ = d.on("trades.future.BTC.100ms", MANY).await;
    assert!(h.kill_all(KillMode::Reset) >= 1);
    let mut e2 = Rpc::open(&h).await;
    assert!(e2.call("public/subscribe", json!({"channels": ["trades.future.BTC.100ms"]})).await["result"].is_array());
    let v = e2.on("trades.future.BTC.100ms", MANY).await;
    assert!(v["params"]["data"][0]["trade_seq"].is_u64());
    // The admin fault forces 10028 on the next request.
    assert!(h.deribit_exhaust_credits(None) >= 1);
    assert_eq!(e2.call("public/test", json!({})).await["error"]["code"], 10028);
    let _ = tokio::time::timeout(WAIT, close_frame(&mut e2.ws)).await;
    drop((d, e2));
    sim.shutdown().await;
}

#[tokio::test]
async fn option_and_linear_markets_serve_their_instruments() {
    let (sim, h) = start(market(DeribitKind::Option)).await;
    let mut c = Rpc::open(&h).await;
    let chan = "ticker.BTC-25JUN27-100000-C.100ms";
    assert_eq!(
        c.call("public/subscribe", json!({"channels": [chan, "trades.option.BTC.100ms"]})).await["result"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let t = c.on(chan, MANY).await;
    for k in ["bid_iv", "ask_iv", "mark_iv", "underlying_price", "underlying_index", "interest_rate", "greeks"] {
        assert!(t["params"]["data"].get(k).is_some(), "{k} in {t}");
    }
    let tr = c.on("trades.option.BTC.100ms", MANY).await;
    assert!(tr["params"]["data"][0]["iv"].is_f64(), "{tr}");
    drop(c);
    sim.shutdown().await;
    let (sim, h) = start(market(DeribitKind::Linear)).await;
    let mut c = Rpc::open(&h).await;
    let r = c.call("public/get_instruments", json!({"currency": "USDC"})).await;
    assert_eq!(r["result"][0]["instrument_name"], "BTC_USDC-PERPETUAL");
    assert_eq!(r["result"][0]["contract_size"], 0.0001);
    drop(c);
    sim.shutdown().await;
}

#[test]
fn names_map_to_markets() {
    assert!(MarketConfig::named("deribit", "inverse").is_some());
    assert!(MarketConfig::named("deribit", "spot").is_none());
    assert_eq!(MarketConfig::deribit(DeribitKind::Option).venue_market(), ("deribit", "option"));
    assert_eq!(norm(vec![["1.50".into(), "10.0".into()]]), vec![["1.5".to_string(), "10".to_string()]]);
}
