//! The Bybit v5 order-entry socket `/v5/trade` over real sockets, driven by a
//! third-party client (tokio-tungstenite) with hand-signed requests: `auth`
//! and its refusals, requests before auth, the pong, `order.create` (a limit
//! order that rests, a market order that fills) with its `order` and
//! `execution` pushes on `/v5/private`, `order.amend`, `order.cancel`, each
//! batch op with a good and a bad item, every refusal's retCode, the
//! per-account rate limit and its header counts (shared with
//! `POST /v5/order/create`), and malformed frames answered on an open socket.
//! Shapes are the guideline's (docs/v5/websocket/trade/guideline.mdx).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{WAIT, Ws, connect, connect_bybit_private, keys, next_json, send, set};
use ferrofeed_sim::{BybitCategory, MarketConfig, MarketHandle, Sim, TEST_API_KEY, TEST_HMAC_SECRET};
use futures_util::SinkExt;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

async fn start_with(f: impl FnOnce(&mut MarketConfig)) -> (Sim, MarketHandle) {
    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.truncate(2);
    m.timing.actions_per_sec = 100.0;
    f(&mut m);
    crate::common::start(m).await
}

async fn start() -> (Sim, MarketHandle) {
    start_with(|_| {}).await
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn sign(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn auth_frame(key: &str, secret: &str, expires: u64) -> Value {
    json!({"reqId": "auth-1", "op": "auth", "args": [key, expires, sign(secret, &format!("GET/realtime{expires}"))]})
}

/// `ws://127.0.0.1:PORT/v5/trade` (the private URL's host).
fn trade_url(h: &MarketHandle) -> String {
    h.bybit_private_url().expect("linear market").replace("/v5/private", "/v5/trade")
}

async fn ask(ws: &mut Ws, v: Value) -> Value {
    send(ws, v).await;
    next_json(ws).await
}

/// A fresh `reqId` (the socket refuses repeats).
fn rid() -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    format!("req-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// An order request as the guideline shows it, with a fresh `reqId`.
fn req(op: &str, args: Value) -> Value {
    json!({
        "reqId": rid(),
        "header": {"X-BAPI-TIMESTAMP": now_ms().to_string(), "X-BAPI-RECV-WINDOW": "5000"},
        "op": op,
        "args": args,
    })
}

/// A linear create request object.
fn order(side: &str, kind: &str, qty: &str, price: Option<&str>) -> Value {
    let mut o = json!({"category": "linear", "symbol": "BTCUSDT", "side": side, "orderType": kind, "qty": qty});
    if let Some(p) = price {
        o["price"] = json!(p);
    }
    o
}

/// An authenticated `/v5/trade` socket.
async fn trade_authed(h: &MarketHandle) -> Ws {
    let mut ws = connect(&trade_url(h)).await;
    let r = ask(&mut ws, auth_frame(TEST_API_KEY, TEST_HMAC_SECRET, now_ms() + 10_000)).await;
    assert_eq!(r["retCode"], 0, "{r}");
    ws
}

/// An authenticated `/v5/private` socket subscribed to `topics`.
async fn private_authed(h: &MarketHandle, topics: &[&str]) -> Ws {
    let mut ws = connect_bybit_private(h).await;
    let expires = now_ms() + 10_000;
    let sig = sign(TEST_HMAC_SECRET, &format!("GET/realtime{expires}"));
    let r = ask(&mut ws, json!({"op": "auth", "args": [TEST_API_KEY, expires, sig]})).await;
    assert_eq!(r["success"], true, "{r}");
    let r = ask(&mut ws, json!({"op": "subscribe", "args": topics})).await;
    assert_eq!(r["success"], true, "{r}");
    ws
}

/// Sends `v` and checks the answer is a success of `v`'s op, echoing its reqId.
async fn ok(ws: &mut Ws, v: Value) -> Value {
    let r = ask(ws, v.clone()).await;
    assert_eq!((r["retCode"].clone(), r["retMsg"].clone()), (json!(0), json!("OK")), "{v}\n→ {r}");
    assert_eq!((r["reqId"].clone(), r["op"].clone()), (v["reqId"].clone(), v["op"].clone()));
    r
}

/// The retCode and retMsg of an answer.
fn code(r: &Value) -> (i64, String) {
    (r["retCode"].as_i64().expect("retCode"), r["retMsg"].as_str().expect("retMsg").to_string())
}

fn header_num(r: &Value, k: &str) -> u64 {
    r["header"][k].as_str().unwrap_or_else(|| panic!("{k} in {r}")).parse().expect("a number")
}

fn order_events(h: &MarketHandle) -> u64 {
    h.account(None).expect("account").events.get("order").copied().unwrap_or(0)
}

fn open_orders(h: &MarketHandle) -> usize {
    h.account(None).expect("account").open_orders.len()
}

/// The next private message of `topic` (the private socket carries only pushes).
async fn push_of(ws: &mut Ws, topic: &str) -> Value {
    let v = next_json(ws).await;
    assert_eq!(v["topic"], topic, "{v}");
    v
}

/// A decimal string as an integer in units of 1e-8.
fn units(s: &Value) -> i128 {
    let s = s.as_str().unwrap_or_else(|| panic!("not a string: {s}"));
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    i.parse::<i128>().unwrap() * 100_000_000 + format!("{f:0<8}")[..8].parse::<i128>().unwrap()
}

/// `POST /v5/order/create`, signed; returns (headers lower-cased, body).
async fn rest_create(h: &MarketHandle, body: &Value) -> (Vec<(String, String)>, Value) {
    let body = body.to_string();
    let ts = now_ms();
    let sig = sign(TEST_HMAC_SECRET, &format!("{ts}{TEST_API_KEY}5000{body}"));
    let head = format!(
        "POST /v5/order/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-BAPI-API-KEY: {TEST_API_KEY}\r\nX-BAPI-TIMESTAMP: {ts}\r\nX-BAPI-RECV-WINDOW: 5000\r\n\
         X-BAPI-SIGN: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(h.addr()).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    timeout(WAIT, s.read_to_end(&mut out)).await.expect("answer in time").unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (headers, serde_json::from_str(body).unwrap_or_else(|e| panic!("bad body {body}: {e}")))
}

#[tokio::test]
async fn auth_ping_and_requests_before_auth() {
    let (_sim, h) = start().await;
    let mut ws = connect(&trade_url(&h)).await;
    // The trade socket's pong: {"retCode":0,"retMsg":"OK","op":"pong","data":["<ms>"],"connId"}.
    let pong = ask(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(keys(&pong), set(&["retCode", "retMsg", "op", "data", "connId"]), "{pong}");
    assert_eq!((pong["retCode"].clone(), pong["op"].clone()), (json!(0), json!("pong")));
    let t: u64 = pong["data"][0].as_str().expect("a string").parse().expect("ms");
    assert!(t.abs_diff(now_ms()) < 60_000);
    // Orders before auth are refused; nothing is placed.
    let before = req("order.create", json!([order("Buy", "Market", "0.01", None)]));
    let r = ask(&mut ws, before.clone()).await;
    assert_eq!(code(&r), (10003, "Request not authorized".to_string()), "{r}");
    assert_eq!((r["reqId"].clone(), r["op"].clone()), (before["reqId"].clone(), json!("order.create")));
    assert_eq!((r["data"].clone(), r["retExtInfo"].clone()), (json!({}), json!({})));
    assert!(r.get("header").is_none(), "no account, no rate-limit header: {r}");
    // Auth refusals (the guideline's auth codes); the socket stays unauthenticated.
    for (what, frame, want) in [
        ("bad signature", auth_frame(TEST_API_KEY, "not-the-secret", now_ms() + 10_000), (10004, "Invalid sign")),
        ("unknown key", auth_frame("nope", TEST_HMAC_SECRET, now_ms() + 10_000), (10003, "API key is invalid.")),
        ("expired", auth_frame(TEST_API_KEY, TEST_HMAC_SECRET, now_ms() - 1_000), (10001, "Params Error")),
        ("two args", json!({"op": "auth", "args": [TEST_API_KEY, now_ms() + 10_000]}), (10001, "Params Error")),
        ("no args", json!({"op": "auth"}), (10001, "Params Error")),
    ] {
        let r = ask(&mut ws, frame).await;
        assert_eq!(code(&r), (want.0, want.1.to_string()), "{what}: {r}");
        assert_eq!(r["op"], "auth");
    }
    let r =
        ask(&mut ws, req("order.cancel", json!([{"category": "linear", "symbol": "BTCUSDT", "orderId": "x"}]))).await;
    assert_eq!(r["retCode"], 10003, "{r}");
    // A good auth, in the guideline's shape; its reqId echoed.
    let r = ask(&mut ws, auth_frame(TEST_API_KEY, TEST_HMAC_SECRET, now_ms() + 10_000)).await;
    assert_eq!(keys(&r), set(&["reqId", "retCode", "retMsg", "op", "connId"]), "{r}");
    assert_eq!((code(&r), r["reqId"].clone()), ((0, "OK".to_string()), json!("auth-1")));
    let again = ask(&mut ws, auth_frame(TEST_API_KEY, TEST_HMAC_SECRET, now_ms() + 10_000)).await;
    assert_eq!(code(&again), (20001, "Repeat auth".to_string()));
    assert_eq!(order_events(&h), 0);
    // The op log shows the socket as an order-entry one with every op in order.
    let conns = h.bybit_private_conns();
    assert_eq!(conns.len(), 1);
    assert!(conns[0].trade && conns[0].open);
    assert_eq!(conns[0].api_key.as_deref(), Some(TEST_API_KEY));
    let ops: Vec<(&str, bool)> = conns[0].ops.iter().map(|o| (o.op.as_str(), o.success)).collect();
    assert_eq!(ops.first(), Some(&("ping", true)));
    assert_eq!(ops.iter().filter(|(op, ok)| *op == "auth" && *ok).count(), 1, "{ops:?}");
    assert_eq!(ops.len(), 10, "{ops:?}");
}

#[tokio::test]
async fn malformed_frames_are_answered_and_the_socket_stays_open() {
    let (_sim, h) = start().await;
    let mut ws = trade_authed(&h).await;
    ws.send(Message::Text("not json".into())).await.unwrap();
    let r = next_json(&mut ws).await;
    assert_eq!(r["retCode"], 10001, "{r}");
    assert!(r["retMsg"].as_str().unwrap().starts_with("Failed to decode incoming data"), "{r}");
    let r = ask(&mut ws, json!([1, 2])).await;
    assert_eq!(r["retCode"], 10001, "{r}");
    let r = ask(&mut ws, json!({"reqId": "no-op"})).await;
    assert_eq!((code(&r), r["reqId"].clone()), ((10404, "op type is not found".to_string()), json!("no-op")));
    let r = ask(&mut ws, json!({"op": "order.query", "args": []})).await;
    assert_eq!((r["retCode"].clone(), r["op"].clone()), (json!(10404), json!("order.query")), "{r}");
    let r = ask(&mut ws, json!({"op": 7})).await;
    assert_eq!(r["retCode"], 10404, "{r}");
    let good = order("Buy", "Limit", "0.01", Some("1000"));
    let stale = json!({"reqId": rid(), "header": {"X-BAPI-TIMESTAMP": (now_ms() - 60_000).to_string()}, "op": "order.create", "args": [good]});
    let ahead = json!({"reqId": rid(), "header": {"X-BAPI-TIMESTAMP": now_ms() + 30_000}, "op": "order.create", "args": [good]});
    let mut long_id = req("order.create", json!([good]));
    long_id["reqId"] = json!("x".repeat(37));
    for (what, frame, want) in [
        ("args an object", req("order.create", json!({"category": "linear"})), 10001),
        ("args a string", req("order.create", json!("BTCUSDT")), 10001),
        ("args empty", req("order.create", json!([])), 10001),
        ("args two objects", req("order.create", json!([good, good])), 10001),
        ("args a number inside", req("order.cancel", json!([5])), 10001),
        (
            "no args",
            json!({"reqId": rid(), "header": {"X-BAPI-TIMESTAMP": now_ms().to_string()}, "op": "order.amend"}),
            10001,
        ),
        ("no header", json!({"reqId": rid(), "op": "order.create", "args": [good]}), 10001),
        (
            "bad timestamp",
            json!({"reqId": rid(), "header": {"X-BAPI-TIMESTAMP": "soon"}, "op": "order.create", "args": [good]}),
            10001,
        ),
        ("stale timestamp", stale, 10002),
        ("timestamp ahead", ahead, 10002),
        ("reqId too long", long_id, 10001),
        (
            "no category",
            req("order.create", json!([{"symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.01"}])),
            10001,
        ),
        (
            "spot category",
            req(
                "order.create",
                json!([{"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.01"}]),
            ),
            10404,
        ),
        ("unknown category", req("order.cancel-batch", json!([{"category": "futures", "request": []}])), 10404),
        ("batch without request", req("order.create-batch", json!([{"category": "linear"}])), 10001),
        ("batch with empty request", req("order.create-batch", json!([{"category": "linear", "request": []}])), 10001),
        (
            "batch request an object",
            req("order.amend-batch", json!([{"category": "linear", "request": {"a": 1}}])),
            10001,
        ),
    ] {
        let r = ask(&mut ws, frame.clone()).await;
        assert_eq!(r["retCode"], want, "{what}: {r}");
        assert_eq!((r["op"].clone(), r["data"].clone()), (frame["op"].clone(), json!({})), "{what}: {r}");
    }
    // A repeated reqId is refused (20006) even when the first was answered.
    let first = req("order.cancel", json!([{"category": "linear", "symbol": "BTCUSDT", "orderId": "nope"}]));
    assert_eq!(ask(&mut ws, first.clone()).await["retCode"], 110001);
    let r = ask(&mut ws, first).await;
    assert_eq!(code(&r), (20006, "reqId is duplicated".to_string()), "{r}");
    // Still open and serving; nothing was placed.
    assert_eq!(ask(&mut ws, json!({"op": "ping"})).await["op"], "pong");
    ok(&mut ws, req("order.create", json!([good]))).await;
    assert_eq!(open_orders(&h), 1);
    assert_eq!(order_events(&h), 1);
}

#[tokio::test]
async fn create_rests_or_fills_and_pushes_on_the_private_socket() {
    let (_sim, h) = start().await;
    let mut private = private_authed(&h, &["order", "execution", "position", "wallet"]).await;
    let mut ws = trade_authed(&h).await;

    // A limit buy far below the market rests: `New`, only an `order` push.
    let mut rest = order("Buy", "Limit", "0.01", Some("1000"));
    rest["orderLinkId"] = json!("rest-1");
    let r = ok(&mut ws, req("order.create", json!([rest]))).await;
    // The guideline's answer: data {orderId, orderLinkId}, retExtInfo {}, the header, connId.
    assert_eq!(keys(&r), set(&["reqId", "retCode", "retMsg", "op", "data", "retExtInfo", "header", "connId"]), "{r}");
    assert_eq!(keys(&r["data"]), set(&["orderId", "orderLinkId"]));
    assert_eq!((r["data"]["orderLinkId"].clone(), r["retExtInfo"].clone()), (json!("rest-1"), json!({})));
    assert_eq!(
        keys(&r["header"]),
        set(&["X-Bapi-Limit", "X-Bapi-Limit-Status", "X-Bapi-Limit-Reset-Timestamp", "Traceid", "Timenow"])
    );
    assert_eq!((header_num(&r, "X-Bapi-Limit"), header_num(&r, "X-Bapi-Limit-Status")), (10, 9));
    assert!(r["header"]["Traceid"].as_str().unwrap().len() == 32 && r["connId"].is_string());
    let resting_id = r["data"]["orderId"].as_str().expect("orderId").to_string();
    assert_eq!(resting_id.len(), 36, "a UUID");
    let v = push_of(&mut private, "order").await;
    let o = &v["data"][0];
    assert_eq!((o["orderId"].as_str(), o["orderLinkId"].clone()), (Some(resting_id.as_str()), json!("rest-1")));
    assert_eq!((o["orderStatus"].clone(), o["timeInForce"].clone()), (json!("New"), json!("GTC")));
    assert_eq!(
        (units(&o["leavesQty"]), units(&o["cumExecQty"]), units(&o["price"])),
        (1_000_000, 0, 1000 * 100_000_000)
    );
    assert_eq!(open_orders(&h), 1);

    // A market buy fills: `Filled` with its executions, then position and wallet.
    let r = ok(&mut ws, req("order.create", json!([order("Buy", "Market", "0.02", None)]))).await;
    assert_eq!(header_num(&r, "X-Bapi-Limit-Status"), 8, "the create count goes on: {r}");
    let filled_id = r["data"]["orderId"].as_str().unwrap().to_string();
    assert_eq!(r["data"]["orderLinkId"], "");
    let v = push_of(&mut private, "order").await;
    let o = &v["data"][0];
    assert_eq!((o["orderId"].as_str(), o["orderStatus"].clone()), (Some(filled_id.as_str()), json!("Filled")));
    assert_eq!(units(&o["cumExecQty"]), 2_000_000);
    let v = push_of(&mut private, "execution").await;
    let execs = v["data"].as_array().unwrap();
    assert!(!execs.is_empty());
    assert!(execs.iter().all(|e| e["orderId"] == filled_id.as_str() && e["execType"] == "Trade"));
    assert_eq!(execs.iter().map(|e| units(&e["execQty"])).sum::<i128>(), 2_000_000);
    let p = push_of(&mut private, "position").await;
    assert_eq!((p["data"][0]["side"].clone(), units(&p["data"][0]["size"])), (json!("Buy"), 2_000_000));
    let w = push_of(&mut private, "wallet").await;
    // The resting order's margin shows in the wallet: 0.01 × 1000 / 10x.
    assert_eq!(units(&w["data"][0]["coin"][0]["totalOrderIM"]), 100_000_000);
    assert_eq!(open_orders(&h), 1);
    let truth = h.account(None).unwrap();
    assert_eq!(units(&json!(truth.positions["BTCUSDT"].amount)), 2_000_000);
    assert_eq!(truth.events["order"], 2);
}

#[tokio::test]
async fn amend_and_cancel_change_the_resting_order() {
    let (_sim, h) = start().await;
    let mut private = private_authed(&h, &["order", "execution"]).await;
    let mut ws = trade_authed(&h).await;
    let mut rest = order("Buy", "Limit", "0.01", Some("1000"));
    rest["orderLinkId"] = json!("am-1");
    let id = ok(&mut ws, req("order.create", json!([rest]))).await["data"]["orderId"].as_str().unwrap().to_string();
    push_of(&mut private, "order").await;

    // Amend by orderId: new qty and price, still resting.
    let amend = json!({"category": "linear", "symbol": "BTCUSDT", "orderId": id, "qty": "0.03", "price": "1001.5"});
    let r = ok(&mut ws, req("order.amend", json!([amend]))).await;
    assert_eq!(r["data"], json!({"orderId": id, "orderLinkId": "am-1"}));
    assert_eq!(header_num(&r, "X-Bapi-Limit-Status"), 9, "amend has its own count: {r}");
    let o = push_of(&mut private, "order").await["data"][0].clone();
    assert_eq!(
        (o["orderStatus"].clone(), units(&o["qty"]), units(&o["price"])),
        (json!("New"), 3_000_000, 100_150_000_000)
    );
    assert_eq!(units(&o["leavesQty"]), 3_000_000);

    // Amend by orderLinkId to a price that crosses: it takes, as a taker.
    let cross = json!({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "am-1", "price": "200000"});
    ok(&mut ws, req("order.amend", json!([cross]))).await;
    let o = push_of(&mut private, "order").await["data"][0].clone();
    assert_eq!(o["orderId"], id.as_str());
    assert_eq!(units(&o["cumExecQty"]), 3_000_000, "{o}");
    assert_eq!(o["orderStatus"], "Filled");
    let e = push_of(&mut private, "execution").await;
    assert!(e["data"].as_array().unwrap().iter().all(|x| x["orderId"] == id.as_str()));
    assert_eq!(open_orders(&h), 0);
    // A filled order can be neither amended nor cancelled.
    let r = ask(
        &mut ws,
        req("order.amend", json!([{"category": "linear", "symbol": "BTCUSDT", "orderId": id, "qty": "0.05"}])),
    )
    .await;
    assert_eq!(code(&r), (110001, "order not exists or too late to replace".to_string()), "{r}");
    assert_eq!(r["data"], json!({}));
    assert!(r["header"].is_object(), "a counted request reports the count: {r}");

    // Cancel by orderLinkId: `Cancelled`, `CancelByUser`.
    let mut second = order("Sell", "Limit", "0.01", Some("500000"));
    second["orderLinkId"] = json!("cx-1");
    let id2 = ok(&mut ws, req("order.create", json!([second]))).await["data"]["orderId"].as_str().unwrap().to_string();
    push_of(&mut private, "order").await;
    assert_eq!(open_orders(&h), 1);
    let r =
        ok(&mut ws, req("order.cancel", json!([{"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "cx-1"}])))
            .await;
    assert_eq!(r["data"], json!({"orderId": id2, "orderLinkId": "cx-1"}));
    let o = push_of(&mut private, "order").await["data"][0].clone();
    assert_eq!((o["orderStatus"].clone(), o["cancelType"].clone()), (json!("Cancelled"), json!("CancelByUser")));
    assert_eq!((o["orderId"].as_str(), units(&o["leavesQty"])), (Some(id2.as_str()), 0));
    assert_eq!(open_orders(&h), 0);
    let again = json!([{"category": "linear", "symbol": "BTCUSDT", "orderId": id2}]);
    let r = ask(&mut ws, req("order.cancel", again)).await;
    assert_eq!(code(&r), (110001, "order not exists or too late to cancel".to_string()), "{r}");

    // Bad amend and cancel requests.
    let third = ok(&mut ws, req("order.create", json!([order("Buy", "Limit", "0.01", Some("1000"))]))).await;
    let id3 = third["data"]["orderId"].as_str().unwrap().to_string();
    push_of(&mut private, "order").await;
    for (what, op, arg, want) in [
        ("nothing to amend", "order.amend", json!({"category": "linear", "symbol": "BTCUSDT", "orderId": id3}), 10001),
        ("no id", "order.cancel", json!({"category": "linear", "symbol": "BTCUSDT"}), 10001),
        ("another symbol", "order.cancel", json!({"category": "linear", "symbol": "ETHUSDT", "orderId": id3}), 110001),
        ("unknown symbol", "order.cancel", json!({"category": "linear", "symbol": "NOPE", "orderId": id3}), 10001),
        (
            "qty off the step",
            "order.amend",
            json!({"category": "linear", "symbol": "BTCUSDT", "orderId": id3, "qty": "0.0125"}),
            10001,
        ),
        (
            "price off the tick",
            "order.amend",
            json!({"category": "linear", "symbol": "BTCUSDT", "orderId": id3, "price": "1000.001"}),
            110003,
        ),
    ] {
        let r = ask(&mut ws, req(op, json!([arg]))).await;
        assert_eq!(r["retCode"], want, "{what}: {r}");
    }
    assert_eq!(open_orders(&h), 1);
    assert_eq!(h.account(None).unwrap().open_orders[0].orig_qty, "0.010");
}

#[tokio::test]
async fn batch_ops_answer_per_item() {
    let (_sim, h) = start().await;
    let mut private = private_authed(&h, &["order"]).await;
    let mut ws = trade_authed(&h).await;
    let mut good = order("Buy", "Limit", "0.01", Some("1000"));
    good["orderLinkId"] = json!("b-1");
    good.as_object_mut().unwrap().remove("category");
    let bad = json!({"symbol": "NOPEUSDT", "side": "Buy", "orderType": "Limit", "qty": "1", "price": "1", "orderLinkId": "b-2"});
    let r = ok(&mut ws, req("order.create-batch", json!([{"category": "linear", "request": [good, bad]}]))).await;
    let list = r["data"]["list"].as_array().expect("data.list");
    assert_eq!(list.len(), 2);
    assert_eq!(keys(&list[0]), set(&["category", "symbol", "orderId", "orderLinkId", "createAt"]));
    assert_eq!((list[0]["category"].clone(), list[0]["symbol"].clone()), (json!("linear"), json!("BTCUSDT")));
    assert_eq!(list[0]["orderLinkId"], "b-1");
    let id = list[0]["orderId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert!(list[0]["createAt"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(
        list[1],
        json!({"category": "linear", "symbol": "NOPEUSDT", "orderId": "", "orderLinkId": "b-2", "createAt": ""})
    );
    assert_eq!(
        r["retExtInfo"]["list"],
        json!([{"code": 0, "msg": "OK"}, {"code": 10001, "msg": "params error: Symbol Is Invalid"}])
    );
    // A batch counts one per order, in its own count.
    assert_eq!(header_num(&r, "X-Bapi-Limit-Status"), 8, "{r}");
    assert_eq!(push_of(&mut private, "order").await["data"][0]["orderId"], id.as_str());
    assert_eq!(open_orders(&h), 1);

    let r = ok(
        &mut ws,
        req(
            "order.amend-batch",
            json!([{"category": "linear", "request": [
                {"symbol": "BTCUSDT", "orderId": id, "price": "1002"},
                {"symbol": "BTCUSDT", "orderLinkId": "nope", "price": "1002"},
            ]}]),
        ),
    )
    .await;
    assert_eq!(
        r["data"]["list"],
        json!([
            {"category": "linear", "symbol": "BTCUSDT", "orderId": id, "orderLinkId": "b-1"},
            {"category": "linear", "symbol": "BTCUSDT", "orderId": "", "orderLinkId": "nope"},
        ])
    );
    assert_eq!(
        r["retExtInfo"]["list"],
        json!([{"code": 0, "msg": "OK"}, {"code": 110001, "msg": "order not exists or too late to replace"}])
    );
    assert_eq!(units(&push_of(&mut private, "order").await["data"][0]["price"]), 100_200_000_000);

    let r = ok(
        &mut ws,
        req(
            "order.cancel-batch",
            json!([{"category": "linear", "request": [
                {"symbol": "BTCUSDT", "orderLinkId": "b-1"},
                {"symbol": "BTCUSDT", "orderId": "00000000-0000-4000-8000-000000000000"},
            ]}]),
        ),
    )
    .await;
    assert_eq!(
        r["data"]["list"][0],
        json!({"category": "linear", "symbol": "BTCUSDT", "orderId": id, "orderLinkId": "b-1"})
    );
    assert_eq!(r["data"]["list"][1]["orderId"], "00000000-0000-4000-8000-000000000000");
    assert_eq!(
        r["retExtInfo"]["list"],
        json!([{"code": 0, "msg": "OK"}, {"code": 110001, "msg": "order not exists or too late to cancel"}])
    );
    assert_eq!(push_of(&mut private, "order").await["data"][0]["orderStatus"], "Cancelled");
    assert_eq!(open_orders(&h), 0);

    // More orders than a batch may carry (20 on linear): refused whole.
    let many: Vec<Value> = (0..21).map(|_| json!({"symbol": "BTCUSDT", "orderLinkId": "x"})).collect();
    let r = ask(&mut ws, req("order.cancel-batch", json!([{"category": "linear", "request": many}]))).await;
    assert_eq!((r["retCode"].clone(), r["data"].clone()), (json!(10001), json!({})), "{r}");
    // A non-object item fails alone.
    let r = ok(&mut ws, req("order.cancel-batch", json!([{"category": "linear", "request": [7]}]))).await;
    assert_eq!(r["retExtInfo"]["list"][0]["code"], 10001, "{r}");
    assert_eq!(order_events(&h), 3);
}

#[tokio::test]
async fn refusals_carry_the_venue_codes_and_place_nothing() {
    // Refusals count against the rate limit too: room for all of them.
    let (_sim, h) = start_with(|m| m.limits.bybit_order_limit = 1000).await;
    let mut private = private_authed(&h, &["order", "execution"]).await;
    let mut ws = trade_authed(&h).await;
    let mut linked = order("Buy", "Limit", "0.01", Some("1000"));
    linked["orderLinkId"] = json!("taken");
    ok(&mut ws, req("order.create", json!([linked.clone()]))).await;
    push_of(&mut private, "order").await;
    let (events, open) = (order_events(&h), open_orders(&h));

    let with = |mut o: Value, k: &str, v: Value| {
        o[k] = v;
        o
    };
    let limit = order("Buy", "Limit", "0.01", Some("1000"));
    let mut no_price = limit.clone();
    no_price.as_object_mut().unwrap().remove("price");
    let cases: Vec<(&str, Value, (i64, &str))> = vec![
        (
            "unknown symbol",
            with(limit.clone(), "symbol", json!("NOPEUSDT")),
            (10001, "params error: Symbol Is Invalid"),
        ),
        (
            "qty below the minimum",
            with(limit.clone(), "qty", json!("0.0001")),
            (10001, "The number of contracts exceeds minimum limit allowed"),
        ),
        (
            "qty zero",
            with(limit.clone(), "qty", json!("0")),
            (10001, "The number of contracts exceeds minimum limit allowed"),
        ),
        ("qty off the step", with(limit.clone(), "qty", json!("0.0105")), (10001, "Qty invalid")),
        ("qty a number", with(limit.clone(), "qty", json!(1)), (10001, "params error: qty invalid")),
        ("price off the tick", with(limit.clone(), "price", json!("1000.005")), (110003, "price is invalid")),
        ("insufficient balance", with(limit.clone(), "qty", json!("20000")), (110007, "ab not enough for new order")),
        ("limit without price", no_price, (10001, "params error: price invalid")),
        (
            "unknown orderType",
            with(limit.clone(), "orderType", json!("Stop")),
            (10001, "params error: orderType invalid"),
        ),
        ("side in capitals", with(limit.clone(), "side", json!("BUY")), (10001, "params error: side invalid")),
        (
            "unknown timeInForce",
            with(limit.clone(), "timeInForce", json!("GTD")),
            (10001, "params error: timeInForce invalid"),
        ),
        (
            "reduce-only without a position",
            with(limit.clone(), "reduceOnly", json!(true)),
            (110017, "orderQty will be truncated to zero"),
        ),
        (
            "reduceOnly not a boolean",
            with(limit.clone(), "reduceOnly", json!("yes")),
            (10001, "params error: reduceOnly invalid"),
        ),
        ("orderLinkId taken", linked, (110072, "OrderLinkedID is duplicate")),
    ];
    for (what, arg, want) in cases {
        let r = ask(&mut ws, req("order.create", json!([arg]))).await;
        assert_eq!(code(&r), (want.0, want.1.to_string()), "{what}: {r}");
        assert_eq!(r["data"], json!({}), "{what}");
        assert!(r["header"].is_object(), "{what}: counted, so the header reports it: {r}");
    }
    assert_eq!((order_events(&h), open_orders(&h)), (events, open), "no refusal placed anything");

    // Post-only that would take: accepted, then cancelled without trading.
    let po = with(order("Buy", "Limit", "0.01", Some("200000")), "timeInForce", json!("PostOnly"));
    let r = ok(&mut ws, req("order.create", json!([po]))).await;
    let o = push_of(&mut private, "order").await["data"][0].clone();
    assert_eq!(o["orderId"], r["data"]["orderId"]);
    assert_eq!(
        (o["orderStatus"].clone(), o["rejectReason"].clone(), o["timeInForce"].clone()),
        (json!("Cancelled"), json!("EC_PostOnlyWillTakeLiquidity"), json!("PostOnly"))
    );
    assert_eq!(units(&o["cumExecQty"]), 0);
    // Post-only that would not take rests; the next push is its order (no execution came before).
    let po = with(order("Sell", "Limit", "0.01", Some("500000")), "timeInForce", json!("PostOnly"));
    let id = ok(&mut ws, req("order.create", json!([po]))).await["data"]["orderId"].clone();
    let o = push_of(&mut private, "order").await["data"][0].clone();
    assert_eq!((o["orderId"].clone(), o["orderStatus"].clone()), (id, json!("New")));

    // Reduce-only is cut to the position: buy 0.01, sell 0.05 reduce-only → 0.01.
    ok(&mut ws, req("order.create", json!([order("Buy", "Market", "0.01", None)]))).await;
    assert_eq!(push_of(&mut private, "order").await["data"][0]["orderStatus"], "Filled");
    push_of(&mut private, "execution").await;
    let ro = with(order("Sell", "Market", "0.05", None), "reduceOnly", json!(true));
    ok(&mut ws, req("order.create", json!([ro]))).await;
    let o = push_of(&mut private, "order").await["data"][0].clone();
    assert_eq!(
        (o["reduceOnly"].clone(), units(&o["qty"]), units(&o["cumExecQty"])),
        (json!(true), 1_000_000, 1_000_000)
    );
    push_of(&mut private, "execution").await;
    let truth = h.account(None).unwrap();
    assert_eq!(units(&json!(truth.positions["BTCUSDT"].amount)), 0);
}

#[tokio::test]
async fn the_rate_limit_counts_per_op_type_and_is_shared_with_rest() {
    let (_sim, h) = start_with(|m| {
        m.limits.bybit_order_limit = 3;
        // Long enough that nothing leaves the window during the test.
        m.limits.bybit_order_window = Duration::from_secs(600);
    })
    .await;
    let mut ws = trade_authed(&h).await;
    for left in [2, 1, 0] {
        let r = ok(&mut ws, req("order.create", json!([order("Buy", "Limit", "0.01", Some("1000"))]))).await;
        assert_eq!((header_num(&r, "X-Bapi-Limit"), header_num(&r, "X-Bapi-Limit-Status")), (3, left), "{r}");
    }
    let events = order_events(&h);
    let r = ask(&mut ws, req("order.create", json!([order("Buy", "Market", "0.01", None)]))).await;
    assert_eq!(code(&r), (10006, "Too many visits!".to_string()), "{r}");
    assert_eq!((r["data"].clone(), header_num(&r, "X-Bapi-Limit-Status")), (json!({}), 0));
    assert!(
        header_num(&r, "X-Bapi-Limit-Reset-Timestamp") > header_num(&r, "Timenow"),
        "over the limit, the reset is when the window frees a slot: {r}"
    );
    assert_eq!((order_events(&h), open_orders(&h)), (events, 3), "nothing placed over the limit");
    // REST shares the create count: refused too, with the headers.
    let (headers, body) = rest_create(&h, &order("Buy", "Market", "0.01", None)).await;
    assert_eq!((body["retCode"].clone(), body["retMsg"].clone()), (json!(10006), json!("Too many visits!")), "{body}");
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(header("x-bapi-limit").as_deref(), Some("3"));
    assert_eq!(header("x-bapi-limit-status").as_deref(), Some("0"));
    assert!(header("x-bapi-limit-reset-timestamp").is_some());
    // Cancel and the batch ops have their own counts.
    let r =
        ask(&mut ws, req("order.cancel", json!([{"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "none"}])))
            .await;
    assert_eq!((r["retCode"].clone(), header_num(&r, "X-Bapi-Limit-Status")), (json!(110001), 2), "{r}");
    // A batch of 4 with 3 left: the first 3 go through, the 4th is refused alone.
    let four: Vec<Value> = (0..4)
        .map(|i| json!({"symbol": "BTCUSDT", "side": "Sell", "orderType": "Limit", "qty": "0.01", "price": "500000", "orderLinkId": format!("q-{i}")}))
        .collect();
    let r = ok(&mut ws, req("order.create-batch", json!([{"category": "linear", "request": four}]))).await;
    let codes: Vec<i64> =
        r["retExtInfo"]["list"].as_array().unwrap().iter().map(|x| x["code"].as_i64().unwrap()).collect();
    assert_eq!(codes, [0, 0, 0, 10006], "{r}");
    assert_eq!(r["retExtInfo"]["list"][3]["msg"], "Too many visits!");
    assert_eq!(r["data"]["list"][3]["orderId"], "");
    assert_eq!(header_num(&r, "X-Bapi-Limit-Status"), 0);
    assert_eq!(open_orders(&h), 6);
}
