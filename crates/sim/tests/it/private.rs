//! The simulator's private side over real sockets: signed REST (HMAC and
//! Ed25519), the spot WebSocket API (`session.logon`, `userDataStream.*`),
//! listenKeys and their streams, orders filled against the true book with the
//! user events they produce, and the private faults.
//!
//! Requests are signed here with `hmac`/`ed25519-dalek` directly and sent with a
//! hand-written HTTP/1.1 client or tokio-tungstenite; no ferrofeed client code.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{WAIT, Ws, next_json, start};
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use ferrofeed_sim::{KillMode, MarketConfig, MarketKind, TEST_API_KEY, TEST_ED25519_SEED, TEST_HMAC_SECRET};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

fn market(kind: MarketKind) -> MarketConfig {
    let mut m = MarketConfig::new(kind);
    m.symbols.truncate(2);
    m.timing.actions_per_sec = 50.0;
    m.limits.max_incoming_msgs = 100;
    m
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn hmac_hex(payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(TEST_HMAC_SECRET.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn ed_b64(payload: &str) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&TEST_ED25519_SEED);
    base64::engine::general_purpose::STANDARD.encode(key.sign(payload.as_bytes()).to_bytes())
}

fn urlenc(s: &str) -> String {
    s.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

/// A decimal string as an integer of 1e-8 units.
fn d8(s: &str) -> i128 {
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

/// A raw HTTP/1.1 request; returns (status, body as JSON or a string value).
async fn http(addr: SocketAddr, method: &str, path: &str, api_key: Option<&str>, body: &str) -> (u16, Value) {
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
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// A signed REST call: `query` goes in the URL (with `timestamp` and the
/// signature), `body` in the form body; the signature covers query + body.
async fn signed(
    addr: SocketAddr,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
    ed25519: bool,
    ts: i64,
) -> (u16, Value) {
    let q = if query.is_empty() { format!("timestamp={ts}") } else { format!("{query}&timestamp={ts}") };
    let payload = format!("{q}{body}");
    let sig = if ed25519 { urlenc(&ed_b64(&payload)) } else { hmac_hex(&payload) };
    http(addr, method, &format!("{path}?{q}&signature={sig}"), Some(TEST_API_KEY), body).await
}

/// Waits until the simulator has registered the `opened` sockets the test
/// opened (the server side of a WebSocket handshake finishes after the
/// client's).
async fn registered(m: &ferrofeed_sim::MarketHandle, opened: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let open = m.stats().counters.connections_accepted;
        if open >= opened {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{open} of {opened} sockets registered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn connect(url: &str) -> Ws {
    timeout(WAIT, connect_async(url)).await.expect("connect in time").expect("connect").0
}

/// Nothing (but pings) arrives for `d`.
async fn assert_silent(ws: &mut Ws, d: Duration) {
    let r = timeout(d, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Some(t.to_string()),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await;
    if let Ok(Some(t)) = r {
        panic!("expected silence, got {t}");
    }
}

async fn request(ws: &mut Ws, v: Value) -> Value {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
    loop {
        let r = next_json(ws).await;
        if r.get("id").is_some() && r.get("status").is_some() {
            return r;
        }
    }
}

fn logon_params(ts: i64, recv_window: Option<u64>) -> Value {
    let mut p = json!({ "apiKey": TEST_API_KEY, "timestamp": ts });
    if let Some(rw) = recv_window {
        p["recvWindow"] = json!(rw);
    }
    let payload = match recv_window {
        Some(rw) => format!("apiKey={TEST_API_KEY}&recvWindow={rw}&timestamp={ts}"),
        None => format!("apiKey={TEST_API_KEY}&timestamp={ts}"),
    };
    p["signature"] = json!(ed_b64(&payload));
    p
}

async fn logon(ws: &mut Ws, ts: i64, recv_window: Option<u64>) -> Value {
    request(ws, json!({"id": "logon", "method": "session.logon", "params": logon_params(ts, recv_window)})).await
}

/// The server's clock offset as a client measures it: `serverTime` minus the
/// middle of the request.
async fn measure_offset(addr: SocketAddr, prefix: &str) -> i64 {
    let t0 = now_ms();
    let (s, v) = http(addr, "GET", &format!("{prefix}/time"), None, "").await;
    let t1 = now_ms();
    assert_eq!(s, 200);
    v["serverTime"].as_i64().unwrap() - (t0 + t1) / 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logon_verifies_signature_timestamp_and_follows_the_skewed_clock() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let url = format!("{}/ws-api/v3", m.ws_url());
    let mut ws = connect(&url).await;

    // Not logged on yet.
    let st = request(&mut ws, json!({"id": 1, "method": "session.status"})).await;
    assert_eq!(st["status"], 200);
    assert_eq!(st["result"]["apiKey"], Value::Null);
    let sub = request(&mut ws, json!({"id": 2, "method": "userDataStream.subscribe"})).await;
    assert_eq!(sub["status"], 401, "{sub}");
    assert_eq!(sub["error"]["code"], -1002);

    // Bad signature: signed over different parameters.
    let mut p = logon_params(now_ms(), None);
    p["signature"] = json!(ed_b64("apiKey=someone-else&timestamp=1"));
    let r = request(&mut ws, json!({"id": 3, "method": "session.logon", "params": p})).await;
    assert_eq!((r["status"].as_u64(), r["error"]["code"].as_i64()), (Some(400), Some(-1022)), "{r}");
    // An HMAC signature is refused: logon is Ed25519 only.
    let ts = now_ms();
    let p = json!({"apiKey": TEST_API_KEY, "timestamp": ts,
                   "signature": hmac_hex(&format!("apiKey={TEST_API_KEY}&timestamp={ts}"))});
    let r = request(&mut ws, json!({"id": 4, "method": "session.logon", "params": p})).await;
    assert_eq!(r["error"]["code"], -1022, "{r}");
    // Unknown key.
    let r = request(
        &mut ws,
        json!({"id": 5, "method": "session.logon",
        "params": {"apiKey": "nobody", "timestamp": now_ms(), "signature": "AAAA"}}),
    )
    .await;
    assert_eq!((r["status"].as_u64(), r["error"]["code"].as_i64()), (Some(401), Some(-2015)), "{r}");
    // Stale and future timestamps.
    let r = logon(&mut ws, now_ms() - 10_000, None).await;
    assert_eq!(r["error"]["code"], -1021, "{r}");
    let r = logon(&mut ws, now_ms() + 5_000, None).await;
    assert_eq!(r["error"]["code"], -1021, "{r}");
    assert!(r["rateLimits"][0]["count"].as_u64().unwrap() > 0, "{r}");

    // Success.
    let r = logon(&mut ws, now_ms(), Some(5000)).await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["id"], "logon");
    assert_eq!(r["result"]["apiKey"], TEST_API_KEY);
    assert_eq!(r["result"]["userDataStream"], false);
    assert!(r["result"]["authorizedSince"].as_u64().unwrap() >= r["result"]["connectedSince"].as_u64().unwrap());
    assert_eq!(r["rateLimits"][0]["rateLimitType"], "REQUEST_WEIGHT");

    // The venue clock 2 s behind us: a naive timestamp is "ahead"; one corrected
    // by the offset measured with GET /api/v3/time passes.
    m.set_clock_offset_ms(-2000);
    let mut ws2 = connect(&url).await;
    let r = logon(&mut ws2, now_ms(), None).await;
    assert_eq!(r["error"]["code"], -1021, "{r}");
    let off = measure_offset(m.addr(), "/api/v3").await;
    assert!((-2500..=-1500).contains(&off), "measured {off}");
    let r = logon(&mut ws2, now_ms() + off, None).await;
    assert_eq!(r["status"], 200, "{r}");

    // 2 s ahead with a 1 s recvWindow: naive is outside the window, corrected passes.
    m.set_clock_offset_ms(2000);
    let r = logon(&mut ws2, now_ms(), Some(1000)).await;
    assert_eq!(r["error"]["code"], -1021, "{r}");
    let off = measure_offset(m.addr(), "/api/v3").await;
    let r = logon(&mut ws2, now_ms() + off, Some(1000)).await;
    assert_eq!(r["status"], 200, "{r}");

    // Logout; garbage frames get error envelopes and the session lives on.
    let r = request(&mut ws2, json!({"id": 9, "method": "session.logout"})).await;
    assert_eq!(r["result"]["apiKey"], Value::Null);
    ws2.send(Message::Text("{nope".into())).await.unwrap();
    let e = next_json(&mut ws2).await;
    assert_eq!((e["status"].as_u64(), e["id"].clone()), (Some(400), Value::Null), "{e}");
    let e = request(&mut ws2, json!({"id": 10, "method": "order.place"})).await;
    assert_eq!(e["status"], 400);
    let e = request(&mut ws2, json!({"id": 11, "method": "session.logon", "params": [1, 2]})).await;
    assert_eq!(e["status"], 400);
    let e = request(&mut ws2, json!({"id": 12, "method": "session.logon", "params": {"apiKey": 5}})).await;
    assert_eq!(e["status"], 400, "{e}");
    let r = request(&mut ws2, json!({"id": 13, "method": "ping"})).await;
    assert_eq!(r["result"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_order_fills_against_the_book_and_reports_on_the_ws_api_subscription() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    assert_eq!(logon(&mut ws, now_ms(), None).await["status"], 200);
    let r = request(&mut ws, json!({"id": 2, "method": "userDataStream.subscribe"})).await;
    assert_eq!(r["result"], json!({"subscriptionId": 0}), "{r}");
    let again = request(&mut ws, json!({"id": 3, "method": "userDataStream.subscribe"})).await;
    assert_eq!(again["status"], 400, "one subscription per account: {again}");
    let st = request(&mut ws, json!({"id": 4, "method": "session.status"})).await;
    assert_eq!(st["result"]["userDataStream"], true);
    let mut trades = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    registered(&m, 2).await;

    // Freeze the generator so the book we read is the book the order meets.
    m.pause_market(true);
    let book = m.book("BTCUSDT", 5).unwrap();
    let lvl = |i: usize| (d8(&book.asks[i][0]), d8(&book.asks[i][1]));
    let (p0, q0) = lvl(0);
    let (p1, q1) = lvl(1);
    // All of the first level and one lot (0.00001 BTC) of the second.
    let qty = q0 + 1000;
    let qty_s = format!("{}.{:08}", qty / 100_000_000, qty % 100_000_000);
    let before = m.account(None).unwrap();
    let usdt0 = d8(&before.balances["USDT"].free);
    let btc0 = d8(&before.balances["BTC"].free);

    // HMAC, parameters split between the query string and the body.
    let (s, resp) = signed(
        m.addr(),
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY",
        &format!("type=MARKET&quantity={qty_s}&newClientOrderId=myOrder1"),
        false,
        now_ms(),
    )
    .await;
    assert_eq!(s, 200, "{resp}");
    assert_eq!(resp["status"], "FILLED");
    assert_eq!(resp["clientOrderId"], "myOrder1");
    assert_eq!(d8(resp["executedQty"].as_str().unwrap()), qty);
    let fills = resp["fills"].as_array().unwrap();
    assert_eq!(fills.len(), 2, "{resp}");
    assert_eq!((d8(fills[0]["price"].as_str().unwrap()), d8(fills[0]["qty"].as_str().unwrap())), (p0, q0));
    assert_eq!((d8(fills[1]["price"].as_str().unwrap()), d8(fills[1]["qty"].as_str().unwrap())), (p1, 1000));
    let cost = p0 * q0 / 100_000_000 + p1 * 1000 / 100_000_000;
    assert_eq!(d8(resp["cummulativeQuoteQty"].as_str().unwrap()), cost);

    // NEW, TRADE, TRADE (FILLED), then the balances.
    let new = next_json(&mut ws).await;
    assert_eq!(new["subscriptionId"], 0);
    let e = &new["event"];
    assert_eq!(
        (e["e"].as_str(), e["x"].as_str(), e["X"].as_str()),
        (Some("executionReport"), Some("NEW"), Some("NEW"))
    );
    assert_eq!(e["c"], "myOrder1");
    assert_eq!(e["i"], resp["orderId"]);
    let mut trade_ids = Vec::new();
    let mut cum = 0;
    for (i, (p, q)) in [(p0, q0), (p1, 1000)].into_iter().enumerate() {
        let t = next_json(&mut ws).await;
        let e = &t["event"];
        assert_eq!(e["x"], "TRADE", "{t}");
        assert_eq!(e["X"], if i == 1 { "FILLED" } else { "PARTIALLY_FILLED" });
        assert_eq!((d8(e["L"].as_str().unwrap()), d8(e["l"].as_str().unwrap())), (p, q));
        cum += q;
        assert_eq!(d8(e["z"].as_str().unwrap()), cum);
        assert_eq!(e["N"], "BTC");
        assert_eq!(d8(e["n"].as_str().unwrap()), q / 1000, "0.1 % of the base received");
        assert_eq!(e["m"], false);
        trade_ids.push(e["t"].as_u64().unwrap());
    }
    let pos = next_json(&mut ws).await;
    let e = &pos["event"];
    assert_eq!(e["e"], "outboundAccountPosition", "{pos}");
    let bal = |a: &str| {
        e["B"].as_array().unwrap().iter().find(|b| b["a"] == a).map(|b| d8(b["f"].as_str().unwrap())).unwrap()
    };
    let fee = q0 / 1000 + 1000 / 1000;
    assert_eq!(bal("USDT"), usdt0 - cost);
    assert_eq!(bal("BTC"), btc0 + qty - fee);

    // The book lost what was taken, and the public trade stream shows the same trades.
    let after = m.book("BTCUSDT", 5).unwrap();
    assert_eq!(d8(&after.asks[0][0]), p1);
    assert_eq!(d8(&after.asks[0][1]), q1 - 1000);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let t = next_json(&mut trades).await;
        if trade_ids.contains(&t["t"].as_u64().unwrap()) {
            assert_eq!(t["m"], false, "the taker bought");
            seen.push(t["t"].as_u64().unwrap());
        }
    }

    // Ground truth: every event counted, balances as pushed.
    let acc = m.account(Some(TEST_API_KEY)).unwrap();
    assert_eq!(acc.events["executionReport"], 3);
    assert_eq!(acc.events["outboundAccountPosition"], 1);
    assert_eq!(acc.frames_queued, 4);
    assert_eq!(d8(&acc.balances["USDT"].free), usdt0 - cost);
    assert_eq!(acc.orders.last().unwrap().status, "FILLED");

    // Insufficient balance is refused before anything happens.
    let (s, r) = signed(
        m.addr(),
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=500",
        "",
        true,
        now_ms(),
    )
    .await;
    assert_eq!((s, r["code"].as_i64()), (400, Some(-2010)), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_orders_rest_lock_and_cancel() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    let ts = now_ms();
    let p = json!({"apiKey": TEST_API_KEY, "timestamp": ts,
                   "signature": hmac_hex(&format!("apiKey={TEST_API_KEY}&timestamp={ts}"))});
    let r = request(&mut ws, json!({"id": 1, "method": "userDataStream.subscribe.signature", "params": p})).await;
    assert_eq!(r["result"]["subscriptionId"], 0, "{r}");

    let (s, resp) = signed(
        m.addr(),
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.5&price=1000.00",
        "",
        true,
        now_ms(),
    )
    .await;
    assert_eq!(s, 200, "{resp}");
    assert_eq!(resp["status"], "NEW");
    let e = next_json(&mut ws).await;
    assert_eq!((e["event"]["x"].as_str(), e["event"]["w"].as_bool()), (Some("NEW"), Some(true)), "{e}");
    let pos = next_json(&mut ws).await;
    let usdt = pos["event"]["B"].as_array().unwrap().iter().find(|b| b["a"] == "USDT").unwrap().clone();
    assert_eq!(d8(usdt["l"].as_str().unwrap()), d8("500"), "{pos}");
    assert_eq!(m.account(None).unwrap().open_orders.len(), 1);

    // Cancel by client order id.
    let cid = resp["clientOrderId"].as_str().unwrap();
    let (s, c) = signed(
        m.addr(),
        "DELETE",
        "/api/v3/order",
        &format!("symbol=BTCUSDT&origClientOrderId={cid}"),
        "",
        false,
        now_ms(),
    )
    .await;
    assert_eq!((s, c["status"].as_str()), (200, Some("CANCELED")), "{c}");
    let e = next_json(&mut ws).await;
    assert_eq!((e["event"]["x"].as_str(), e["event"]["C"].as_str()), (Some("CANCELED"), Some(cid)), "{e}");
    let pos = next_json(&mut ws).await;
    assert_eq!(pos["event"]["B"][0]["l"], "0.00000000", "{pos}");
    assert!(m.account(None).unwrap().open_orders.is_empty());
    let (s, c) = signed(m.addr(), "DELETE", "/api/v3/order", "symbol=BTCUSDT&orderId=1", "", false, now_ms()).await;
    assert_eq!((s, c["code"].as_i64()), (400, Some(-2011)), "{c}");

    // GET /api/v3/account agrees.
    let (s, a) = signed(m.addr(), "GET", "/api/v3/account", "", "", false, now_ms()).await;
    assert_eq!(s, 200, "{a}");
    assert!(a["balances"].as_array().unwrap().iter().any(|b| b["asset"] == "USDT" && b["locked"] == "0.00000000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_rest_refuses_bad_requests_with_venue_errors() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let a = m.addr();
    let (s, r) = http(a, "POST", "/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=x", None, "").await;
    assert_eq!((s, r["code"].as_i64()), (401, Some(-2014)), "{r}");
    let (s, r) = http(a, "POST", "/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=x", Some("who"), "").await;
    assert_eq!((s, r["code"].as_i64()), (401, Some(-2015)), "{r}");
    let (s, r) = http(a, "POST", &format!("/api/v3/order?timestamp={}", now_ms()), Some(TEST_API_KEY), "").await;
    assert_eq!((s, r["code"].as_i64()), (400, Some(-1102)), "missing signature: {r}");
    let ts = now_ms();
    let (s, r) = http(
        a,
        "POST",
        &format!("/api/v3/order?symbol=BTCUSDT&timestamp={ts}&signature={}", hmac_hex("tampered")),
        Some(TEST_API_KEY),
        "",
    )
    .await;
    assert_eq!((s, r["code"].as_i64()), (400, Some(-1022)), "{r}");
    let (s, r) = signed(a, "POST", "/api/v3/order", "symbol=BTCUSDT", "", false, now_ms() - 60_000).await;
    assert_eq!((s, r["code"].as_i64()), (400, Some(-1021)), "{r}");
    let (s, r) = signed(a, "POST", "/api/v3/order", "symbol=BTCUSDT&recvWindow=70000", "", false, now_ms()).await;
    assert_eq!(r["code"], -1131, "{s} {r}");
    for (q, code) in [
        ("symbol=NOPE&side=BUY&type=MARKET&quantity=1", -1121),
        ("symbol=BTCUSDT&side=UP&type=MARKET&quantity=1", -1117),
        ("symbol=BTCUSDT&side=BUY&type=STOP&quantity=1", -1116),
        ("symbol=BTCUSDT&side=BUY&type=MARKET", -1102),
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=abc", -1100),
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.000000001", -1013),
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1", -1102),
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=XX&quantity=1&price=1", -1115),
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=1.001", -1013),
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&newClientOrderId=bad%20id", -1100),
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&price=5", -1106),
    ] {
        let (s, r) = signed(a, "POST", "/api/v3/order", q, "", false, now_ms()).await;
        assert_eq!((s, r["code"].as_i64()), (400, Some(code)), "{q}: {r}");
    }
    // The spot and margin listenKey endpoints are gone (2026-02-20); their
    // replacement, the listenToken, is signed: API key header, then signature.
    let (s, _) = http(a, "POST", "/api/v3/userDataStream", Some(TEST_API_KEY), "").await;
    assert_eq!(s, 410);
    let (s, r) = http(a, "POST", "/sapi/v1/userListenToken", None, "").await;
    assert_eq!((s, r["code"].as_i64()), (401, Some(-2014)), "{r}");
    let (s, r) =
        http(a, "POST", &format!("/sapi/v1/userListenToken?timestamp={}", now_ms()), Some(TEST_API_KEY), "").await;
    assert_eq!((s, r["code"].as_i64()), (400, Some(-1102)), "{r}");
    let (s, _) = http(a, "PATCH", "/api/v3/order", Some(TEST_API_KEY), "").await;
    assert_eq!(s, 405);
    // Admin parameters.
    for (method, path) in [
        ("POST", "/admin/deposit?asset=BTC"),
        ("POST", "/admin/deposit?asset=BTC&amount=x"),
        ("POST", "/admin/deposit?asset=B%20C&amount=1"),
        ("POST", "/admin/deposit?asset=BTC&amount=1&api_key=nobody"),
        ("POST", "/admin/kill?private=maybe"),
    ] {
        let (s, r) = http(a, method, path, None, "").await;
        assert_eq!(s, 400, "{path}: {r}");
    }
    let (s, _) = http(a, "GET", "/admin/account?api_key=nobody", None, "").await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_listen_key_stream_gets_order_trade_update_and_account_update() {
    let (_sim, m) = start(market(MarketKind::UsdM)).await;
    let a = m.addr();
    let (s, r) = http(a, "POST", "/fapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    assert_eq!(s, 200, "{r}");
    let key = r["listenKey"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    let (_, again) = http(a, "POST", "/fapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    assert_eq!(again["listenKey"], key, "POST on an active key returns it");
    let (s, put) = http(a, "PUT", "/fapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    assert_eq!((s, put["listenKey"].as_str()), (200, Some(key.as_str())));

    let mut ws = connect(&format!("{}/private/ws/{key}", m.ws_url())).await;
    let mut only_orders =
        connect(&format!("{}/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE", m.ws_url())).await;
    let mut combined = connect(&format!("{}/private/stream?listenKey={key}", m.ws_url())).await;
    // Not on the private route: silent.
    let mut public = connect(&format!("{}/ws/{key}", m.ws_url())).await;
    registered(&m, 4).await;

    m.pause_market(true);
    let book = m.book("BTCUSDT", 3).unwrap();
    let (p0, q0) = (d8(&book.asks[0][0]), d8(&book.asks[0][1]));
    let qty_s = format!("{}.{:03}", q0 / 100_000_000, (q0 % 100_000_000) / 100_000);
    let (s, resp) = signed(
        a,
        "POST",
        "/fapi/v1/order",
        "",
        &format!("symbol=BTCUSDT&side=BUY&type=MARKET&quantity={qty_s}&newOrderRespType=RESULT"),
        true,
        now_ms(),
    )
    .await;
    assert_eq!(s, 200, "{resp}");
    assert_eq!(resp["status"], "FILLED");
    assert_eq!(d8(resp["cumQuote"].as_str().unwrap()), p0 * q0 / 100_000_000);

    let new = next_json(&mut ws).await;
    assert_eq!((new["e"].as_str(), new["o"]["x"].as_str()), (Some("ORDER_TRADE_UPDATE"), Some("NEW")), "{new}");
    let trade = next_json(&mut ws).await;
    let o = &trade["o"];
    assert_eq!((o["x"].as_str(), o["X"].as_str()), (Some("TRADE"), Some("FILLED")), "{trade}");
    assert_eq!((d8(o["L"].as_str().unwrap()), d8(o["z"].as_str().unwrap())), (p0, q0));
    let fee = d8(o["n"].as_str().unwrap());
    assert_eq!(fee, p0 * q0 / 100_000_000 * 5 / 10_000);
    let lite = next_json(&mut ws).await;
    assert_eq!((lite["e"].as_str(), &lite["t"], &lite["i"]), (Some("TRADE_LITE"), &o["t"], &o["i"]), "{lite}");
    let acc = next_json(&mut ws).await;
    assert_eq!((acc["e"].as_str(), acc["a"]["m"].as_str()), (Some("ACCOUNT_UPDATE"), Some("ORDER")), "{acc}");
    let b = &acc["a"]["B"][0];
    assert_eq!(b["a"], "USDT");
    assert_eq!(d8(b["wb"].as_str().unwrap()), d8("1000000") - fee);
    let p = &acc["a"]["P"][0];
    assert_eq!((p["s"].as_str(), p["ps"].as_str()), (Some("BTCUSDT"), Some("BOTH")));
    assert_eq!(d8(p["pa"].as_str().unwrap()), q0);
    assert_eq!(d8(p["ep"].as_str().unwrap()), p0);

    // The events filter and the combined envelope.
    assert_eq!(next_json(&mut only_orders).await["o"]["x"], "NEW");
    assert_eq!(next_json(&mut only_orders).await["o"]["x"], "TRADE");
    let c = next_json(&mut combined).await;
    assert_eq!((c["stream"].as_str(), c["data"]["e"].as_str()), (Some(key.as_str()), Some("ORDER_TRADE_UPDATE")));
    assert_silent(&mut only_orders, Duration::from_millis(300)).await;
    assert_silent(&mut public, Duration::from_millis(100)).await;

    // Close the position: realized profit, flat position.
    let (s, r) = signed(
        a,
        "POST",
        "/fapi/v1/order",
        &format!("symbol=BTCUSDT&side=SELL&type=MARKET&quantity={qty_s}"),
        "",
        false,
        now_ms(),
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("NEW")), "ACK by default: {r}");
    // NEW, one TRADE (and its TRADE_LITE) per bid level taken, then the account.
    let (mut updates, mut lites) = (0, 0);
    let last = loop {
        let v = next_json(&mut ws).await;
        if v["e"] == "ACCOUNT_UPDATE" {
            break v;
        }
        if v["e"] == "TRADE_LITE" {
            lites += 1;
            continue;
        }
        assert_eq!(v["e"], "ORDER_TRADE_UPDATE", "{v}");
        updates += 1;
    };
    assert!(updates >= 2);
    assert_eq!(lites, updates - 1, "one TRADE_LITE per fill");
    assert_eq!(last["a"]["P"][0]["pa"], "0");
    let acct = m.account(None).unwrap();
    assert_eq!(acct.events["ORDER_TRADE_UPDATE"], 2 + updates);
    assert_eq!(acct.events["ACCOUNT_UPDATE"], 2);
    assert_eq!(acct.positions["BTCUSDT"].amount, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_key_expiry_fault_then_silence_and_keepalive_gets_1125() {
    let (_sim, m) = start(market(MarketKind::UsdM)).await;
    let a = m.addr();
    let (_, r) = http(a, "POST", "/fapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    let key = r["listenKey"].as_str().unwrap().to_string();
    let mut ws = connect(&format!("{}/private/ws/{key}", m.ws_url())).await;
    registered(&m, 1).await;
    let (s, r) = http(a, "POST", "/admin/expire_listen_key", None, "").await;
    assert_eq!((s, r["expired"].as_u64()), (200, Some(1)));
    let e = next_json(&mut ws).await;
    assert_eq!(e["e"], "listenKeyExpired");
    assert_eq!(e["listenKey"], key);
    assert!(e["E"].is_string(), "USD-M writes E as a string: {e}");

    // Nothing more for that key, even with activity on the account.
    let (s, _) =
        signed(a, "POST", "/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001", "", false, now_ms())
            .await;
    assert_eq!(s, 200);
    assert_silent(&mut ws, Duration::from_millis(500)).await;
    let (s, r) = http(a, "PUT", "/fapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    assert_eq!((s, r["code"].as_i64()), (400, Some(-1125)), "{r}");
    let (s, r) = http(a, "PUT", &format!("/fapi/v1/listenKey?listenKey={key}"), Some(TEST_API_KEY), "").await;
    assert_eq!((s, r["code"].as_i64()), (400, Some(-1125)), "{r}");
    let (_, r) = http(a, "POST", "/fapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    assert_ne!(r["listenKey"], key, "a new key after expiry");
    let acct = m.account(None).unwrap();
    assert_eq!(acct.events["listenKeyExpired"], 1);
    assert_eq!(acct.listen_keys.len(), 1);
}

/// Spot listenKeys are gone from the venue (2026-02-20); COIN-M keeps them,
/// with `E` a number in `listenKeyExpired` as spot wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_keys_expire_on_their_own_and_carry_deposits() {
    let mut cfg = market(MarketKind::CoinM);
    cfg.limits.listen_key_validity = Duration::from_millis(1500);
    let (_sim, m) = start(cfg).await;
    let a = m.addr();
    let (_, r) = http(a, "POST", "/dapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    let key = r["listenKey"].as_str().unwrap().to_string();
    let mut ws = connect(&format!("{}/ws/{key}", m.ws_url())).await;
    registered(&m, 1).await;

    let (s, _) = http(a, "POST", "/admin/deposit?asset=BTC&amount=1.5", None, "").await;
    assert_eq!(s, 200);
    let au = next_json(&mut ws).await;
    assert_eq!((au["e"].as_str(), au["a"]["m"].as_str()), (Some("ACCOUNT_UPDATE"), Some("DEPOSIT")), "{au}");
    assert_eq!(au["a"]["B"][0]["bc"], "1.50000000");
    assert_eq!(au["a"]["B"][0]["wb"], "11.50000000");

    // A keep-alive extends; without more, the key expires by itself.
    let (s, r) = http(a, "PUT", &format!("/dapi/v1/listenKey?listenKey={key}"), Some(TEST_API_KEY), "").await;
    assert_eq!((s, r["listenKey"].as_str()), (200, Some(key.as_str())));
    let e = next_json(&mut ws).await;
    assert_eq!((e["e"].as_str(), e["listenKey"].as_str()), (Some("listenKeyExpired"), Some(key.as_str())), "{e}");
    assert!(e["E"].is_u64(), "COIN-M writes E as a number: {e}");
    let (_, r) = http(a, "PUT", &format!("/dapi/v1/listenKey?listenKey={key}"), Some(TEST_API_KEY), "").await;
    assert_eq!(r["code"], -1125);
    let (s, r) = http(a, "DELETE", &format!("/dapi/v1/listenKey?listenKey={key}"), Some(TEST_API_KEY), "").await;
    assert_eq!((s, r["code"].as_i64()), (400, Some(-1125)), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_private_closes_only_private_connections() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let mut public = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    let mut api = connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    assert_eq!(logon(&mut api, now_ms(), None).await["status"], 200);
    // A margin subscription by listenToken, on a WS-API connection without logon.
    let (s, r) = signed(m.addr(), "POST", "/sapi/v1/userListenToken", "", "", false, now_ms()).await;
    assert_eq!(s, 200, "{r}");
    let mut legacy = connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    let sub = request(
        &mut legacy,
        json!({"id": 1, "method": "userDataStream.subscribe.listenToken", "params": {"listenToken": r["token"]}}),
    )
    .await;
    assert_eq!(sub["status"], 200, "{sub}");
    registered(&m, 3).await;

    let (s, r) = http(m.addr(), "POST", "/admin/kill?private=true", None, "").await;
    assert_eq!((s, r["killed"].as_u64()), (200, Some(2)), "{r}");
    for ws in [&mut api, &mut legacy] {
        let closed = timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .expect("closed in time");
        assert_eq!(closed, Some(1001));
    }
    assert_eq!(next_json(&mut public).await["e"], "trade", "public streams keep flowing");
    // The server unregisters a killed connection just after sending its close
    // frame; wait for that before checking nothing private is left.
    for _ in 0..500 {
        if m.connections().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(m.kill_private(KillMode::Reset), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_the_terminate_fault_end_subscriptions() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    assert_eq!(logon(&mut ws, now_ms(), None).await["status"], 200);
    assert_eq!(request(&mut ws, json!({"id": 1, "method": "userDataStream.subscribe"})).await["status"], 200);
    let r = request(&mut ws, json!({"id": 2, "method": "session.logout"})).await;
    assert_eq!(r["result"]["userDataStream"], false, "{r}");
    let t = next_json(&mut ws).await;
    assert_eq!((t["subscriptionId"].as_u64(), t["event"]["e"].as_str()), (Some(0), Some("eventStreamTerminated")));

    assert_eq!(logon(&mut ws, now_ms(), None).await["status"], 200);
    let r = request(&mut ws, json!({"id": 3, "method": "userDataStream.subscribe"})).await;
    assert_eq!(r["result"]["subscriptionId"], 1, "ids are not reused");
    assert_eq!(m.terminate_user_streams(), 1);
    let t = next_json(&mut ws).await;
    assert_eq!((t["subscriptionId"].as_u64(), t["event"]["e"].as_str()), (Some(1), Some("eventStreamTerminated")));
    m.deposit(None, "USDT", "5").unwrap();
    assert_silent(&mut ws, Duration::from_millis(300)).await;
    let r = request(&mut ws, json!({"id": 4, "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 7}}))
        .await;
    assert_eq!(r["status"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinm_orders_settle_in_the_base_asset() {
    let (_sim, m) = start(market(MarketKind::CoinM)).await;
    let (_, r) = http(m.addr(), "POST", "/dapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    let key = r["listenKey"].as_str().unwrap().to_string();
    let mut ws = connect(&format!("{}/ws/{key}", m.ws_url())).await;
    registered(&m, 1).await;
    let (s, r) = signed(
        m.addr(),
        "POST",
        "/dapi/v1/order",
        "symbol=BTCUSD_PERP&side=SELL&type=MARKET&quantity=2&newOrderRespType=RESULT",
        "",
        true,
        now_ms(),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert!(r["cumBase"].is_string(), "{r}");
    let mut acc = Value::Null;
    for _ in 0..10 {
        acc = next_json(&mut ws).await;
        if acc["e"] == "ACCOUNT_UPDATE" {
            break;
        }
    }
    assert_eq!(acc["a"]["B"][0]["a"], "BTC", "{acc}");
    assert_eq!(acc["a"]["P"][0]["pa"], "-2");
    assert!(d8(acc["a"]["B"][0]["wb"].as_str().unwrap()) < d8("10"), "fee paid in BTC");
}
