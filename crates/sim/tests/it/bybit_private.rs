//! The Bybit v5 private simulator over real sockets, driven by a third-party
//! client (tokio-tungstenite) with hand-signed requests: `auth` (good, bad
//! signature, expired, unknown key), private pong and ack shapes, subscribe
//! before auth refused, `POST /v5/order/create` signed per Bybit v5 REST rules
//! and its refusals, the four private topics with values consistent with
//! each other and with the simulator's accounts, and item keys and JSON types
//! compared with the documentation's examples in `shared/fixtures/bybit_v5/docs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{WAIT, Ws, connect_bybit_private, keys, next_json, send};
use ferrofeed_sim::{BybitCategory, KillMode, MarketConfig, MarketHandle, Sim, TEST_API_KEY, TEST_HMAC_SECRET};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

async fn start() -> (Sim, MarketHandle) {
    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.truncate(2);
    m.timing.actions_per_sec = 100.0;
    crate::common::start(m).await
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn sign(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn auth_frame(secret: &str, expires: u64) -> Value {
    json!({"req_id": "a1", "op": "auth", "args": [TEST_API_KEY, expires, sign(secret, &format!("GET/realtime{expires}"))]})
}

async fn ask(ws: &mut Ws, v: Value) -> Value {
    send(ws, v).await;
    next_json(ws).await
}

/// An authenticated connection subscribed to `topics`.
async fn authed(h: &MarketHandle, topics: &[&str]) -> Ws {
    let mut ws = connect_bybit_private(h).await;
    let r = ask(&mut ws, auth_frame(TEST_HMAC_SECRET, now_ms() + 10_000)).await;
    assert_eq!(r["success"], true, "{r}");
    let r = ask(&mut ws, json!({"req_id": "s1", "op": "subscribe", "args": topics})).await;
    assert_eq!(r["success"], true, "{r}");
    ws
}

/// `POST path` with the Bybit v5 headers; returns (status, body JSON).
async fn post_signed(
    addr: SocketAddr,
    path: &str,
    body: &str,
    key: &str,
    secret: &str,
    ts: u64,
    recv_window: &str,
) -> (u16, Value) {
    let sig = sign(secret, &format!("{ts}{key}{recv_window}{body}"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-BAPI-API-KEY: {key}\r\n\
         X-BAPI-TIMESTAMP: {ts}\r\nX-BAPI-RECV-WINDOW: {recv_window}\r\nX-BAPI-SIGN: {sig}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    timeout(WAIT, s.read_to_end(&mut out)).await.expect("answer in time").unwrap();
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("bad body {body}: {e}")))
}

async fn create(h: &MarketHandle, body: Value) -> Value {
    let (status, v) =
        post_signed(h.addr(), "/v5/order/create", &body.to_string(), TEST_API_KEY, TEST_HMAC_SECRET, now_ms(), "5000")
            .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Frames until one of each `topics` arrived (by topic).
async fn collect(ws: &mut Ws, topics: &[&str]) -> BTreeMap<String, Value> {
    let mut got = BTreeMap::new();
    while topics.iter().any(|t| !got.contains_key(*t)) {
        let v = next_json(ws).await;
        let t = v["topic"].as_str().unwrap_or_else(|| panic!("not private data: {v}")).to_string();
        assert!(got.insert(t.clone(), v).is_none(), "one {t} message per order");
    }
    got
}

/// The documentation's example `shared/fixtures/bybit_v5/docs/{name}.docs.json`.
fn fixture(name: &str) -> Value {
    crate::common::fixture(&format!("docs/{name}.docs.json"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Same keys, and the same JSON type under each key.
fn same_shape(what: &str, ours: &Value, doc: &Value) {
    let (o, d) = (ours.as_object().expect("object"), doc.as_object().expect("object"));
    assert_eq!(keys(ours), keys(doc), "{what}: keys differ from the documentation's example");
    for (k, v) in d {
        assert_eq!(type_name(&o[k]), type_name(v), "{what}.{k}: {} vs {}", o[k], v);
    }
}

/// A decimal string as an integer in units of 1e-10.
fn units(s: &Value) -> i128 {
    let s = s.as_str().unwrap_or_else(|| panic!("not a string: {s}"));
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let f = format!("{f:0<10}");
    let v = i.parse::<i128>().unwrap() * 10_000_000_000 + f[..10].parse::<i128>().unwrap();
    if neg { -v } else { v }
}

#[tokio::test]
async fn auth_accepts_a_good_signature_and_refuses_bad_expired_and_unknown() {
    let (_sim, h) = start().await;
    let mut ws = connect_bybit_private(&h).await;
    // Refusals: bad signature, expired, unknown key, malformed args. The socket stays open.
    let bad = ask(&mut ws, auth_frame("not-the-secret", now_ms() + 10_000)).await;
    for (what, frame) in [
        ("bad signature", auth_frame("not-the-secret", now_ms() + 10_000)),
        ("expired", auth_frame(TEST_HMAC_SECRET, now_ms() - 1_000)),
        (
            "unknown key",
            json!({"op": "auth", "args": ["nope", now_ms() + 10_000, sign(TEST_HMAC_SECRET, "GET/realtime1")]}),
        ),
        ("two args", json!({"op": "auth", "args": [TEST_API_KEY, now_ms() + 10_000]})),
        ("no args", json!({"op": "auth"})),
    ] {
        let r = ask(&mut ws, frame).await;
        assert_eq!(
            (r["success"].clone(), r["ret_msg"].clone(), r["op"].clone()),
            (json!(false), json!("Params Error"), json!("auth")),
            "{what}: {r}"
        );
    }
    assert_eq!(bad["req_id"], "a1");
    assert!(bad["conn_id"].is_string());
    // Nothing private flows after a failed auth.
    let r = ask(&mut ws, json!({"op": "subscribe", "args": ["order"]})).await;
    assert_eq!(r["success"], false, "{r}");
    // A good one, as the documentation shows it (plus the echoed req_id).
    let expires = now_ms() + 5_000;
    let ok = ask(&mut ws, json!({"op": "auth", "args": [TEST_API_KEY, expires.to_string(), sign(TEST_HMAC_SECRET, &format!("GET/realtime{expires}"))]})).await;
    assert_eq!((ok["success"].clone(), ok["ret_msg"].clone()), (json!(true), json!("")), "{ok}");
    same_shape("auth", &ok, &fixture("auth_response"));
    // The op log records each op with its answer.
    let conns = h.bybit_private_conns();
    assert_eq!(conns.len(), 1);
    let ops: Vec<(&str, bool)> = conns[0].ops.iter().map(|o| (o.op.as_str(), o.success)).collect();
    assert_eq!(ops.last(), Some(&("auth", true)));
    assert_eq!(ops.iter().filter(|o| !o.1).count(), 7, "{ops:?}");
    assert_eq!(conns[0].api_key.as_deref(), Some(TEST_API_KEY));
    // The clock fault moves what "expired" means.
    h.set_clock_offset_ms(60_000);
    let mut ws2 = connect_bybit_private(&h).await;
    let r = ask(&mut ws2, auth_frame(TEST_HMAC_SECRET, now_ms() + 10_000)).await;
    assert_eq!(r["ret_msg"], "Params Error", "expired by the venue clock: {r}");
}

#[tokio::test]
async fn subscribe_before_auth_is_refused_and_replies_have_the_private_shapes() {
    let (_sim, h) = start().await;
    let mut ws = connect_bybit_private(&h).await;
    let r = ask(&mut ws, json!({"req_id": "s0", "op": "subscribe", "args": ["order", "wallet"]})).await;
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(r["ret_msg"], "Request not authorized");
    assert_eq!(r["req_id"], "s0");
    // Private pong: {"req_id","op":"pong","args":["<ms>"],"conn_id"}.
    let pong = ask(&mut ws, json!({"req_id": "test", "op": "ping"})).await;
    same_shape("pong", &pong, &fixture("pong.private"));
    assert_eq!((pong["req_id"].clone(), pong["op"].clone()), (json!("test"), json!("pong")));
    let t: u64 = pong["args"][0].as_str().unwrap().parse().unwrap();
    assert!(t.abs_diff(now_ms()) < 5_000);
    assert_eq!(ask(&mut ws, json!({"op": "ping"})).await["op"], "pong");
    let r = ask(&mut ws, auth_frame(TEST_HMAC_SECRET, now_ms() + 10_000)).await;
    assert_eq!(r["success"], true);
    // The ack without a req_id is the documentation's example exactly.
    let ack = ask(&mut ws, json!({"op": "subscribe", "args": ["order", "execution", "position", "wallet"]})).await;
    same_shape("subscribe ack", &ack, &fixture("subscribe_response.private"));
    assert_eq!(ack["success"], true);
    let r =
        ask(&mut ws, json!({"req_id": "x", "op": "subscribe", "args": ["order", "greeks", "orderbook.50.BTCUSDT"]}))
            .await;
    assert_eq!(r["success"], false);
    assert_eq!(
        r["ret_msg"],
        "error:already subscribed,topic:order;error:handler not found,topic:greeks;error:handler not found,topic:orderbook.50.BTCUSDT"
    );
    let r = ask(&mut ws, json!({"req_id": "u", "op": "unsubscribe", "args": ["wallet"]})).await;
    assert_eq!(r["success"], true);
    assert_eq!(h.bybit_private_conns()[0].topics, ["order", "execution", "position"]);
    let r = ask(&mut ws, json!({"op": "bogus"})).await;
    assert_eq!(r["ret_msg"], "error:invalid op");
    ws.send(Message::Text("not json".into())).await.unwrap();
    let r = next_json(&mut ws).await;
    assert!(r["ret_msg"].as_str().unwrap().starts_with("Failed to decode incoming data"), "{r}");
    // The public path of the same port still serves public data only.
    let (mut pubws, _) = connect_async(h.bybit_url().unwrap()).await.unwrap();
    let r = ask(&mut pubws, json!({"req_id": "p", "op": "subscribe", "args": ["order"]})).await;
    assert_eq!(r["ret_msg"], "error:handler not found,topic:order");
    // Killing private connections leaves the public one alone.
    assert_eq!(h.kill_private(KillMode::Close), 1);
    let end = timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "private socket closed");
    assert_eq!(ask(&mut pubws, json!({"op": "ping"})).await["ret_msg"], "pong");
}

#[tokio::test]
async fn an_order_pushes_order_execution_position_and_wallet_consistently() {
    let (_sim, h) = start().await;
    let mut ws = authed(&h, &["order", "execution", "position", "wallet"]).await;
    let answer = create(
        &h,
        json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.5", "orderLinkId": "mine-1"}),
    )
    .await;
    assert_eq!((answer["retCode"].clone(), answer["retMsg"].clone()), (json!(0), json!("OK")), "{answer}");
    let order_id = answer["result"]["orderId"].as_str().expect("orderId").to_string();
    assert_eq!(answer["result"]["orderLinkId"], "mine-1");
    let got = collect(&mut ws, &["order", "execution", "position", "wallet"]).await;

    // Shapes: envelope and item keys and types as the documentation's examples.
    for t in ["order", "execution", "position", "wallet"] {
        let doc = fixture(t);
        let ours = &got[t];
        assert_eq!(keys(ours), keys(&doc), "{t} envelope");
        assert!(ours["creationTime"].is_u64() && ours["id"].is_string());
        for item in ours["data"].as_array().unwrap() {
            same_shape(t, item, &doc["data"][0]);
        }
    }
    same_shape("wallet.coin", &got["wallet"]["data"][0]["coin"][0], &fixture("wallet")["data"][0]["coin"][0]);

    // Values agree with each other.
    let order = &got["order"]["data"][0];
    assert_eq!(order["orderId"], order_id.as_str());
    assert_eq!(order["orderLinkId"], "mine-1");
    assert_eq!((order["orderStatus"].clone(), order["side"].clone()), (json!("Filled"), json!("Buy")));
    assert_eq!((order["category"].clone(), order["symbol"].clone()), (json!("linear"), json!("BTCUSDT")));
    assert_eq!(units(&order["cumExecQty"]), units(&json!("0.5")));
    let execs = got["execution"]["data"].as_array().unwrap();
    assert!(!execs.is_empty());
    for e in execs {
        assert_eq!(e["orderId"], order_id.as_str());
        assert_eq!(e["execType"], "Trade");
        assert_eq!(e["isMaker"], false);
        // execValue = execPrice × execQty.
        assert_eq!(units(&e["execValue"]), units(&e["execPrice"]) * units(&e["execQty"]) / 10_000_000_000);
    }
    let sum = |k: &str| execs.iter().map(|e| units(&e[k])).sum::<i128>();
    assert_eq!(sum("execQty"), units(&order["cumExecQty"]));
    assert_eq!(sum("execValue"), units(&order["cumExecValue"]));
    assert_eq!(sum("execFee"), units(&order["cumExecFee"]));
    assert_eq!(units(&execs.last().unwrap()["leavesQty"]), 0);
    let seqs: Vec<u64> = execs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let pos = &got["position"]["data"][0];
    assert_eq!(
        (pos["symbol"].clone(), pos["side"].clone(), pos["positionIdx"].clone()),
        (json!("BTCUSDT"), json!("Buy"), json!(0))
    );
    assert_eq!(units(&pos["size"]), units(&order["cumExecQty"]));
    assert_eq!(units(&pos["positionValue"]), units(&order["cumExecValue"]));
    // The wallet pushed is the simulator's account after the fill: the fee was paid.
    let truth = h.account(None).expect("account");
    let wallet = &got["wallet"]["data"][0]["coin"][0];
    assert_eq!(wallet["coin"], "USDT");
    assert_eq!(units(&wallet["walletBalance"]), units(&json!(truth.balances["USDT"].free)));
    assert_eq!(units(&json!("1000000")) - units(&wallet["walletBalance"]), units(&order["cumExecFee"]));
    assert_eq!(units(&json!(truth.positions["BTCUSDT"].amount)), units(&pos["size"]));
    assert_eq!(truth.events["order"], 1);
    assert_eq!(truth.events["execution"], 1);

    // Closing half of it: closedSize and execPnl on the executions, a smaller position.
    let answer = create(
        &h,
        json!({"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "orderType": "Market", "qty": "0.2"}),
    )
    .await;
    assert_eq!(answer["retCode"], 0, "{answer}");
    let got = collect(&mut ws, &["order", "execution", "position", "wallet"]).await;
    let execs = got["execution"]["data"].as_array().unwrap();
    assert_eq!(execs.iter().map(|e| units(&e["closedSize"])).sum::<i128>(), units(&json!("0.2")));
    assert_eq!(units(&got["position"]["data"][0]["size"]), units(&json!("0.3")));
    assert_eq!(got["order"]["data"][0]["orderLinkId"], "");

    // A resting limit order far from the market: `New`, only an `order` message.
    let answer = create(
        &h,
        json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.1", "price": "1000"}),
    )
    .await;
    assert_eq!(answer["retCode"], 0, "{answer}");
    let v = next_json(&mut ws).await;
    assert_eq!(v["topic"], "order");
    assert_eq!(v["data"][0]["orderStatus"], "New");
    assert_eq!(units(&v["data"][0]["leavesQty"]), units(&json!("0.1")));
    assert_eq!(h.account(None).unwrap().open_orders.len(), 1);
}

#[tokio::test]
async fn order_requests_are_verified_per_bybit_rules() {
    let (_sim, h) = start().await;
    let mut ws = authed(&h, &["order"]).await;
    let body = json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.01"})
        .to_string();
    let path = "/v5/order/create";
    let (_, r) = post_signed(h.addr(), path, &body, TEST_API_KEY, "wrong", now_ms(), "5000").await;
    assert_eq!(r["retCode"], 10004, "{r}");
    let (_, r) = post_signed(h.addr(), path, &body, "nope", TEST_HMAC_SECRET, now_ms(), "5000").await;
    assert_eq!(r["retCode"], 10003, "{r}");
    let (_, r) = post_signed(h.addr(), path, &body, TEST_API_KEY, TEST_HMAC_SECRET, now_ms() - 6_000, "5000").await;
    assert_eq!(r["retCode"], 10002, "{r}");
    let (_, r) = post_signed(h.addr(), path, &body, TEST_API_KEY, TEST_HMAC_SECRET, now_ms() + 5_000, "5000").await;
    assert_eq!(r["retCode"], 10002, "ahead of the server: {r}");
    let (_, r) = post_signed(h.addr(), path, &body, TEST_API_KEY, TEST_HMAC_SECRET, now_ms() - 6_000, "20000").await;
    assert_eq!(r["retCode"], 0, "a larger recv window: {r}");
    assert_eq!(next_json(&mut ws).await["topic"], "order");
    for bad in [
        json!({"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.01"}),
        json!({"category": "linear", "symbol": "NOPE", "side": "Buy", "orderType": "Market", "qty": "0.01"}),
        json!({"category": "linear", "symbol": "BTCUSDT", "side": "BUY", "orderType": "Market", "qty": "0.01"}),
        json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Stop", "qty": "0.01"}),
        json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "-1"}),
        json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": 1}),
        json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01"}),
        json!([1, 2]),
    ] {
        let r = create(&h, bad.clone()).await;
        assert_eq!(r["retCode"], 10001, "{bad}: {r}");
    }
    let (status, r) =
        post_signed(h.addr(), "/v5/order/cancel", &body, TEST_API_KEY, TEST_HMAC_SECRET, now_ms(), "5000").await;
    assert_eq!((status, r["retCode"].clone()), (404, json!(10001)));
    // None of the refusals produced private data.
    assert_eq!(h.account(None).unwrap().events.get("order"), Some(&1));
    let more = timeout(Duration::from_millis(300), ws.next()).await;
    assert!(more.is_err(), "nothing more: {more:?}");
    // Extreme headers are answered, never a panic.
    for (ts, rw) in [(u64::MAX, "5000"), (0, "18446744073709551615"), (now_ms(), "x"), (now_ms(), "-1")] {
        let (_, r) = post_signed(h.addr(), path, &body, TEST_API_KEY, TEST_HMAC_SECRET, ts, rw).await;
        assert!(r["retCode"] == 10002 || r["retCode"] == 10001 || r["retCode"] == 0, "{ts} {rw}: {r}");
    }
}

/// `GET /v5/market/time` answers the venue clock (the `/admin/clock` offset
/// included), so a client can measure the offset before signing `auth`; the
/// offset the admin call takes is bounded, and anything else is a 400.
#[tokio::test]
async fn server_time_follows_the_skewed_clock_and_the_offset_is_bounded() {
    let (_sim, h) = start().await;
    let time = |body: &str| -> u64 {
        let v: Value = serde_json::from_str(body.split("\r\n\r\n").last().unwrap_or(body)).expect("json");
        assert_eq!(v["retCode"], 0, "{v}");
        assert!(v["result"]["timeSecond"].is_string(), "{v}");
        v["time"].as_u64().expect("time")
    };
    let (s, body) = crate::common::http(h.addr(), "GET", "/v5/market/time").await;
    assert_eq!(s, 200, "{body}");
    assert!(time(&body).abs_diff(now_ms()) < 5_000);
    let (s, _) = crate::common::http(h.addr(), "POST", "/admin/clock?offset_ms=60000").await;
    assert_eq!(s, 200);
    let (_, body) = crate::common::http(h.addr(), "GET", "/v5/market/time").await;
    assert!(time(&body).abs_diff(now_ms() + 60_000) < 5_000, "{body}");
    for bad in ["inf", "-inf", "NaN", "1e300", "2e9", "x"] {
        let (s, body) = crate::common::http(h.addr(), "POST", &format!("/admin/clock?offset_ms={bad}")).await;
        assert_eq!(s, 400, "{bad}: {body}");
    }
    let (s, _) = crate::common::http(h.addr(), "POST", "/v5/market/time").await;
    assert_eq!(s, 405);
}
