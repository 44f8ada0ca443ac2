//! Margin and isolated-margin user data by listenToken (since the margin
//! listenKeys were removed on 2026-02-20): `POST /sapi/v1/userListenToken`,
//! `userDataStream.subscribe.listenToken` without logon, margin orders and
//! deposits reaching the subscription of their scope only, renewal on the
//! same connection, expiry, and the removed endpoints' `410`.
//!
//! "Nothing else arrived" is checked with a sentinel: a later event that must
//! be the very next one the connection reads.

use crate::binance_common::{Api, d8, http, market, now_ms, registered, signed};
use crate::common::start;
use ferrofeed_sim::{MarketHandle, MarketKind, TEST_API_KEY};
use serde_json::{Value, json};

async fn token(m: &MarketHandle, query: &str) -> Value {
    let a = signed(m.addr(), "POST", "/sapi/v1/userListenToken", query, false).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()
}

async fn subscribe(api: &mut Api, token: &Value) -> Value {
    api.call("userDataStream.subscribe.listenToken", json!({"listenToken": token["token"]})).await
}

/// The next event of `api`, asserting its subscription and type.
async fn expect(api: &mut Api, sub: u64, e: &str) -> Value {
    let v = api.event().await;
    assert_eq!((v["subscriptionId"].as_u64(), v["event"]["e"].as_str()), (Some(sub), Some(e)), "{v}");
    v["event"].clone()
}

/// Today's best ask of BTCUSDT (price, quantity) with the generator paused.
fn best_ask(m: &MarketHandle) -> (String, String) {
    let b = m.book("BTCUSDT", 1).expect("book");
    (b.asks[0][0].clone(), b.asks[0][1].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn margin_orders_reach_the_listen_token_subscription_without_logon() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let t = token(&m, "").await;
    let text = t["token"].as_str().unwrap();
    assert_eq!(text.len(), 70, "{t}");
    let exp = t["expirationTime"].as_i64().unwrap();
    assert!(exp > now_ms() + 23 * 3_600_000 && exp <= now_ms() + 24 * 3_600_000 + 5000, "24 h by default: {t}");

    let mut api = Api::connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    let r = subscribe(&mut api, &t).await;
    assert_eq!(r["status"], 200, "no logon needed: {r}");
    assert_eq!(r["result"], json!({"subscriptionId": 0, "expirationTime": exp}));
    let st = api.call("session.status", Value::Null).await;
    assert_eq!((st["result"]["apiKey"].clone(), st["result"]["userDataStream"].clone()), (Value::Null, json!(true)));
    // A spot subscription elsewhere hears nothing of margin.
    let mut spot = Api::connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    spot.logon().await;
    assert_eq!(spot.call("userDataStream.subscribe", Value::Null).await["status"], 200);
    registered(&m, 2).await;

    m.pause_market(true);
    let (price, qty) = best_ask(&m);
    let a = signed(
        m.addr(),
        "POST",
        "/sapi/v1/margin/order",
        &format!("symbol=BTCUSDT&side=BUY&type=MARKET&quantity={qty}&newClientOrderId=m1"),
        true,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let resp = a.json();
    assert_eq!((resp["isIsolated"].clone(), resp["status"].clone()), (json!(false), json!("FILLED")), "{resp}");
    assert!(resp.get("orderListId").is_none(), "margin answers carry no orderListId: {resp}");
    assert_eq!(resp["fills"][0]["price"], price);

    let new = expect(&mut api, 0, "executionReport").await;
    assert_eq!((new["x"].as_str(), new["c"].as_str(), new["S"].as_str()), (Some("NEW"), Some("m1"), Some("BUY")));
    let trade = expect(&mut api, 0, "executionReport").await;
    assert_eq!((trade["x"].as_str(), trade["X"].as_str()), (Some("TRADE"), Some("FILLED")), "{trade}");
    assert_eq!(d8(trade["z"].as_str().unwrap()), d8(&qty));
    let pos = expect(&mut api, 0, "outboundAccountPosition").await;
    let usdt = pos["B"].as_array().unwrap().iter().find(|b| b["a"] == "USDT").expect("USDT").clone();
    let cost = d8(&price) * d8(&qty) / 100_000_000;
    assert_eq!(d8(usdt["f"].as_str().unwrap()), d8("1000000") - cost, "the margin wallet paid: {pos}");
    // The spot wallet did not.
    assert_eq!(m.account(None).unwrap().balances["USDT"].free, "1000000.00000000");

    // Sentinels: the next event on each subscription is the deposit of its scope.
    m.deposit(None, "USDT", "1").unwrap();
    let bu = expect(&mut spot, 0, "balanceUpdate").await;
    assert_eq!(bu["d"], "1.00000000", "spot heard nothing of the margin order first");
    m.deposit_to(None, Some("margin"), "USDT", "2").unwrap();
    let bu = expect(&mut api, 0, "balanceUpdate").await;
    assert_eq!(bu["d"], "2.00000000");
    let pos = expect(&mut api, 0, "outboundAccountPosition").await;
    assert_eq!(d8(pos["B"][0]["f"].as_str().unwrap()), d8("1000002") - cost);

    // Cancel a resting margin order by client id.
    let a = signed(
        m.addr(),
        "POST",
        "/sapi/v1/margin/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=100&newClientOrderId=rest1",
        false,
    )
    .await;
    assert_eq!((a.status, a.json()["status"].as_str()), (200, Some("NEW")), "{}", a.body);
    assert_eq!(expect(&mut api, 0, "executionReport").await["x"], "NEW");
    let locked = expect(&mut api, 0, "outboundAccountPosition").await;
    assert_eq!(locked["B"][0]["l"], "0.10000000", "{locked}");
    let a = signed(m.addr(), "DELETE", "/sapi/v1/margin/order", "symbol=BTCUSDT&origClientOrderId=rest1", false).await;
    let c = a.json();
    assert_eq!((a.status, c["status"].as_str(), c["isIsolated"].clone()), (200, Some("CANCELED"), json!(false)), "{c}");
    assert!(c["orderId"].is_string(), "the margin cancel writes orderId as a string: {c}");
    assert_eq!(expect(&mut api, 0, "executionReport").await["x"], "CANCELED");
    assert_eq!(expect(&mut api, 0, "outboundAccountPosition").await["B"][0]["l"], "0.00000000");
    // A spot cancel does not see margin orders.
    let a = signed(
        m.addr(),
        "POST",
        "/sapi/v1/margin/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=100&newOrderRespType=RESULT",
        false,
    )
    .await;
    let rest2 = a.json();
    assert_eq!((a.status, rest2["type"].as_str()), (200, Some("LIMIT")), "{rest2}");
    let a = signed(m.addr(), "DELETE", "/api/v3/order", &format!("symbol=BTCUSDT&orderId={}", rest2["orderId"]), false)
        .await;
    assert_eq!((a.status, a.json()["code"].as_i64()), (400, Some(-2011)), "{}", a.body);
    let a = signed(m.addr(), "DELETE", "/sapi/v1/margin/order", "symbol=BTCUSDT&origClientOrderId=rest1", false).await;
    assert_eq!(a.json()["code"], -2011, "canceled already: {}", a.body);
    let acct = m.account(None).unwrap();
    assert_eq!(acct.events["executionReport"], 5);
    assert_eq!(acct.events["balanceUpdate"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_margin_is_a_scope_of_its_own() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let cross = token(&m, "").await;
    let iso = token(&m, "isIsolated=true&symbol=BTCUSDT").await;
    let mut api = Api::connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    assert_eq!(subscribe(&mut api, &cross).await["result"]["subscriptionId"], 0);
    assert_eq!(subscribe(&mut api, &iso).await["result"]["subscriptionId"], 1, "another scope, another subscription");
    let subs = api.call("session.subscriptions", Value::Null).await;
    assert_eq!(subs["result"], json!([{"subscriptionId": 0}, {"subscriptionId": 1}]));

    // An isolated order trades the pair's own wallet and reaches subscription 1 only.
    let a = signed(
        m.addr(),
        "POST",
        "/sapi/v1/margin/order",
        "symbol=BTCUSDT&isIsolated=TRUE&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.002&price=100&newOrderRespType=ACK",
        false,
    )
    .await;
    let ack = a.json();
    assert_eq!(a.status, 200, "{ack}");
    let mut keys: Vec<&String> = ack.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["clientOrderId", "isIsolated", "orderId", "symbol", "transactTime"], "{ack}");
    assert_eq!(ack["isIsolated"], true);
    assert_eq!(expect(&mut api, 1, "executionReport").await["x"], "NEW");
    let pos = expect(&mut api, 1, "outboundAccountPosition").await;
    assert_eq!((pos["B"][0]["a"].as_str(), pos["B"][0]["l"].as_str()), (Some("USDT"), Some("0.20000000")));
    // Sentinel on the cross subscription.
    m.deposit_to(None, Some("margin"), "BTC", "1").unwrap();
    assert_eq!(expect(&mut api, 0, "balanceUpdate").await["a"], "BTC");
    assert_eq!(expect(&mut api, 0, "outboundAccountPosition").await["B"][0]["f"], "11.00000000");
    // Isolated deposits reach subscription 1.
    m.deposit_to(None, Some("isolated:btcusdt"), "USDT", "5").unwrap();
    assert_eq!(expect(&mut api, 1, "balanceUpdate").await["d"], "5.00000000");
    let pos = expect(&mut api, 1, "outboundAccountPosition").await;
    assert_eq!((pos["B"][0]["f"].as_str(), pos["B"][0]["l"].as_str()), (Some("1000004.80000000"), Some("0.20000000")));

    // Each isolated pair is its own scope; an isolated order is not the cross
    // account's to cancel.
    let a = signed(
        m.addr(),
        "POST",
        "/sapi/v1/margin/order",
        "symbol=ETHUSDT&isIsolated=TRUE&side=BUY&type=MARKET&quantity=0.01",
        false,
    )
    .await;
    assert_eq!(a.status, 200, "ETHUSDT isolated is its own pair: {}", a.body);
    let a = signed(
        m.addr(),
        "DELETE",
        "/sapi/v1/margin/order",
        &format!("symbol=BTCUSDT&orderId={}", ack["orderId"]),
        false,
    )
    .await;
    assert_eq!(a.json()["code"], -2011, "{}", a.body);
    let a = signed(
        m.addr(),
        "DELETE",
        "/sapi/v1/margin/order",
        &format!("symbol=BTCUSDT&isIsolated=true&orderId={}", ack["orderId"]),
        false,
    )
    .await;
    assert_eq!((a.status, a.json()["isIsolated"].clone()), (200, json!(true)), "{}", a.body);
    assert_eq!(expect(&mut api, 1, "executionReport").await["x"], "CANCELED");

    // The deposit scope must exist.
    for q in ["scope=futures", "scope=isolated:NOPE"] {
        let a = http(m.addr(), "POST", &format!("/admin/deposit?asset=USDT&amount=1&{q}"), None, "").await;
        assert_eq!(a.status, 400, "{q}: {}", a.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_renews_the_subscription_and_an_unrenewed_one_ends_it() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let first = token(&m, "").await;
    let mut api = Api::connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    assert_eq!(subscribe(&mut api, &first).await["result"]["subscriptionId"], 0);

    // Renewal: same subscription, the new token's expiry.
    let second = token(&m, "validity=3600000").await;
    assert!(second["expirationTime"].as_i64() < first["expirationTime"].as_i64());
    let r = subscribe(&mut api, &second).await;
    assert_eq!(r["result"], json!({"subscriptionId": 0, "expirationTime": second["expirationTime"]}), "{r}");
    let subs = api.call("session.subscriptions", Value::Null).await;
    assert_eq!(subs["result"], json!([{"subscriptionId": 0}]), "no second subscription");
    // One deposit, one balanceUpdate: nothing doubled.
    m.deposit_to(None, Some("margin"), "BNB", "1").unwrap();
    m.deposit_to(None, Some("margin"), "BNB", "2").unwrap();
    assert_eq!(expect(&mut api, 0, "balanceUpdate").await["d"], "1.00000000");
    expect(&mut api, 0, "outboundAccountPosition").await;
    assert_eq!(expect(&mut api, 0, "balanceUpdate").await["d"], "2.00000000", "the first deposit came once");

    // A short token on a second connection, next to a long isolated one.
    let short = token(&m, "validity=1000").await;
    let iso = token(&m, "isIsolated=TRUE&symbol=ETHUSDT").await;
    let mut other = Api::connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    assert_eq!(subscribe(&mut other, &short).await["result"]["subscriptionId"], 0);
    assert_eq!(subscribe(&mut other, &iso).await["result"]["subscriptionId"], 1);
    let end = expect(&mut other, 0, "eventStreamTerminated").await;
    assert!(end["E"].is_u64(), "{end}");
    // Subscription 0 hears nothing more; 1 lives on (sentinel).
    m.deposit_to(None, Some("margin"), "BNB", "3").unwrap();
    m.deposit_to(None, Some("isolated:ETHUSDT"), "ETH", "4").unwrap();
    assert_eq!(expect(&mut other, 1, "balanceUpdate").await["d"], "4.00000000");
    // The first connection's renewed subscription still has its 3.
    expect(&mut api, 0, "outboundAccountPosition").await;
    assert_eq!(expect(&mut api, 0, "balanceUpdate").await["d"], "3.00000000");

    // An expired token, an unknown one, a missing one.
    let r = subscribe(&mut api, &short).await;
    assert_eq!((r["status"].as_u64(), r["error"]["code"].as_i64()), (Some(400), Some(-1209)), "{r}");
    let r = subscribe(&mut api, &json!({"token": "not-a-token"})).await;
    assert_eq!(r["error"]["code"], -1209, "{r}");
    let r = api.call("userDataStream.subscribe.listenToken", json!({})).await;
    assert_eq!(r["error"]["code"], -1102, "{r}");
    assert!(!r.to_string().contains(first["token"].as_str().unwrap()), "tokens are never echoed");
    assert_eq!(m.account(None).unwrap().events["eventStreamTerminated"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_token_parameters_are_checked() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    for (q, code) in [
        ("isIsolated=TRUE", -1102),
        ("isIsolated=TRUE&symbol=NOPEUSDT", -1121),
        ("isIsolated=maybe", -1100),
        ("validity=999", -1130),
        ("validity=86400001", -1130),
        ("validity=soon", -1100),
    ] {
        let a = signed(m.addr(), "POST", "/sapi/v1/userListenToken", q, false).await;
        assert_eq!((a.status, a.json()["code"].as_i64()), (400, Some(code)), "{q}: {}", a.body);
    }
    let ok = signed(m.addr(), "POST", "/sapi/v1/userListenToken", "isIsolated=false&validity=1000", true).await;
    assert_eq!(ok.status, 200, "Ed25519 signatures too, and the shortest validity: {}", ok.body);
    let a = http(m.addr(), "GET", "/sapi/v1/userListenToken", Some(TEST_API_KEY), "").await;
    assert_eq!(a.status, 405);
    // Not on the other markets.
    let (_sim2, usdm) = start(market(MarketKind::UsdM)).await;
    let a = signed(usdm.addr(), "POST", "/sapi/v1/userListenToken", "", false).await;
    assert_eq!(a.status, 404, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_listen_key_endpoints_answer_410_and_futures_keys_stay() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    for path in ["/api/v3/userDataStream", "/sapi/v1/userDataStream", "/sapi/v1/userDataStream/isolated?symbol=BTCUSDT"]
    {
        for method in ["POST", "PUT", "DELETE"] {
            let a = http(m.addr(), method, path, Some(TEST_API_KEY), "").await;
            assert_eq!(a.status, 410, "{method} {path}");
            assert!(a.body.contains("<title>410 Gone</title>"), "{method} {path}: {}", a.body);
            assert_eq!(a.header("content-type").as_deref(), Some("text/html"));
        }
    }
    assert!(m.account(None).unwrap().listen_keys.is_empty());
    let (_sim2, usdm) = start(market(MarketKind::UsdM)).await;
    let a = http(usdm.addr(), "POST", "/fapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    // A listenKey-looking segment on the spot stream path is still accepted,
    // and silent: the reply to a later request is the first frame.
    let mut ws = Api::connect(&format!("{}/ws/{}", m.ws_url(), "a".repeat(64))).await;
    registered(&m, 1).await;
    m.deposit(None, "USDT", "1").unwrap();
    use futures_util::SinkExt as _;
    let list = json!({"method": "LIST_SUBSCRIPTIONS", "id": 1}).to_string();
    ws.ws.send(tokio_tungstenite::tungstenite::Message::Text(list.into())).await.unwrap();
    assert_eq!(ws.event().await, json!({"result": [], "id": 1}), "nothing came first");
}
