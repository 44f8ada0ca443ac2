//! Trading over the WebSocket APIs: spot `/ws-api/v3` (`order.place`,
//! `order.cancel`, `order.cancelReplace`, `order.amend.keepPriority`,
//! `order.status`, `openOrders.status`, `openOrders.cancelAll`) with the user
//! events on the session's subscription, the refusals with the venue's codes,
//! the `ORDERS` limits; and USD-M `/ws-fapi/v1` (`order.place`,
//! `order.modify`, `order.cancel`, `order.status`) with `ORDER_TRADE_UPDATE`
//! on the listenKey stream.

use crate::binance_common::{Api, d8, limit, market, registered, sign_params, signed, stamped};
use crate::common::start;
use ferrofeed_sim::{MarketHandle, MarketKind, OrderRateLimit, TEST_API_KEY};
use serde_json::{Value, json};

/// `v` (1e-8 units) as a decimal with 8 places.
fn s8(v: i128) -> String {
    format!("{}.{:08}", v / 100_000_000, v % 100_000_000)
}

/// The best ask levels of `symbol`: (price, quantity) as the book writes them.
fn asks(m: &MarketHandle, symbol: &str) -> Vec<(String, String)> {
    m.book(symbol, 3).expect("book").asks.into_iter().map(|[p, q]| (p, q)).collect()
}

/// The next `n` events of subscription 0: their `(e, x)` and the events.
async fn events(api: &mut Api, n: usize) -> (Vec<(String, String)>, Vec<Value>) {
    let mut kinds = Vec::new();
    let mut all = Vec::new();
    for _ in 0..n {
        let v = api.event().await;
        assert_eq!(v["subscriptionId"], 0, "{v}");
        let e = v["event"].clone();
        kinds.push((e["e"].as_str().unwrap_or("").to_string(), e["x"].as_str().unwrap_or("").to_string()));
        all.push(e);
    }
    (kinds, all)
}

fn kinds(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

const ER: &str = "executionReport";
const OAP: &str = "outboundAccountPosition";

fn code(r: &Value) -> (u64, i64) {
    (r["status"].as_u64().unwrap_or(0), r["error"]["code"].as_i64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_ws_api_places_cancels_replaces_amends_and_queries_orders() {
    let mut cfg = market(MarketKind::Spot);
    // One interval far longer than the test, so the counts below are exact.
    cfg.limits.order_rate_limits = vec![OrderRateLimit::new(100 * 86_400, 1000)];
    let (_sim, m) = start(cfg).await;
    let mut api = Api::connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    api.logon().await;
    assert_eq!(api.call("userDataStream.subscribe", Value::Null).await["result"]["subscriptionId"], 0);
    m.pause_market(true);

    // A LIMIT that rests (FULL answer by default), signed by the session.
    let p = json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                   "quantity": "0.002", "price": "100", "newClientOrderId": "a1"});
    let r = api.call("order.place", stamped(p)).await;
    assert_eq!(r["status"], 200, "{r}");
    let o = &r["result"];
    assert_eq!(
        (o["status"].as_str(), o["type"].as_str(), o["clientOrderId"].as_str()),
        (Some("NEW"), Some("LIMIT"), Some("a1"))
    );
    assert_eq!((o["price"].as_str(), o["origQty"].as_str()), (Some("100.00000000"), Some("0.00200000")));
    assert_eq!(o["fills"], json!([]));
    // The ORDERS limits, then the request weight.
    let l = r["rateLimits"].as_array().unwrap();
    assert_eq!(l.len(), 2, "{r}");
    assert_eq!(
        l[0],
        json!({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 100, "limit": 1000, "count": 1})
    );
    assert_eq!((l[1]["rateLimitType"].as_str(), l[1]["limit"].as_u64()), (Some("REQUEST_WEIGHT"), Some(6000)));
    let a1 = o["orderId"].as_u64().unwrap();
    let (k, ev) = events(&mut api, 2).await;
    assert_eq!(k, kinds(&[(ER, "NEW"), (OAP, "")]));
    assert_eq!((ev[0]["w"].clone(), ev[0]["i"].as_u64()), (json!(true), Some(a1)));
    assert_eq!(ev[1]["B"][0], json!({"a": "USDT", "f": "999999.80000000", "l": "0.20000000"}));

    // MARKET: all of the best ask level.
    let book = asks(&m, "BTCUSDT");
    let (p0, q0) = book[0].clone();
    let r = api
        .call("order.place", stamped(json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": q0})))
        .await;
    let o = &r["result"];
    assert_eq!((o["status"].as_str(), o["fills"][0]["price"].as_str()), (Some("FILLED"), Some(p0.as_str())), "{r}");
    assert_eq!(limit(&r, "ORDERS", "DAY")["count"], 2);
    let (k, ev) = events(&mut api, 3).await;
    assert_eq!(k, kinds(&[(ER, "NEW"), (ER, "TRADE"), (OAP, "")]));
    assert_eq!(ev[1]["t"], o["fills"][0]["tradeId"], "the same trade id as the fill");

    // LIMIT_MAKER: refused if it would take, else it rests (ACK by default).
    let book = asks(&m, "BTCUSDT");
    let (p0, q0) = book[0].clone();
    let mk = |price: &str| json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.001", "price": price});
    let r = api.call("order.place", stamped(mk(&p0))).await;
    assert_eq!(code(&r), (400, -2010), "{r}");
    assert_eq!(r["error"]["msg"], "Order would immediately match and take.");
    let r = api.call("order.place", stamped(mk("200"))).await;
    let mut keys: Vec<&String> = r["result"].as_object().expect("ACK").keys().collect();
    keys.sort();
    assert_eq!(keys, ["clientOrderId", "orderId", "orderListId", "symbol", "transactTime"], "{r}");
    let maker = r["result"]["orderId"].as_u64().unwrap();
    let (k, ev) = events(&mut api, 2).await;
    assert_eq!(k, kinds(&[(ER, "NEW"), (OAP, "")]));
    assert_eq!((ev[0]["o"].as_str(), ev[0]["f"].as_str()), (Some("LIMIT_MAKER"), Some("GTC")));

    // IOC takes the level at its price and expires the rest; FOK takes nothing.
    let more = s8(d8(&q0) + 1000);
    let lim = |tif: &str| json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": tif, "quantity": more, "price": p0});
    let r = api.call("order.place", stamped(lim("IOC"))).await;
    let o = &r["result"];
    assert_eq!((o["status"].as_str(), o["executedQty"].as_str().map(d8)), (Some("EXPIRED"), Some(d8(&q0))), "{r}");
    let ioc = o["orderId"].as_u64().unwrap();
    let (k, _) = events(&mut api, 4).await;
    assert_eq!(k, kinds(&[(ER, "NEW"), (ER, "TRADE"), (ER, "EXPIRED"), (OAP, "")]));
    let (p0, q0) = asks(&m, "BTCUSDT")[0].clone();
    let big = s8(d8(&q0) + 1000);
    let fok = json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "FOK", "quantity": big, "price": p0});
    let r = api.call("order.place", stamped(fok)).await;
    assert_eq!(
        (r["result"]["status"].as_str(), r["result"]["executedQty"].as_str()),
        (Some("EXPIRED"), Some("0.00000000"))
    );
    let (k, _) = events(&mut api, 2).await;
    assert_eq!(k, kinds(&[(ER, "NEW"), (ER, "EXPIRED")]));

    // Status and open orders.
    let r = api.call("order.status", stamped(json!({"symbol": "BTCUSDT", "origClientOrderId": "a1"}))).await;
    let o = &r["result"];
    assert_eq!(
        (o["orderId"].as_u64(), o["status"].as_str(), o["isWorking"].clone()),
        (Some(a1), Some("NEW"), json!(true)),
        "{r}"
    );
    let r = api.call("order.status", stamped(json!({"symbol": "BTCUSDT", "orderId": ioc}))).await;
    assert_eq!((r["result"]["status"].as_str(), r["result"]["isWorking"].clone()), (Some("EXPIRED"), json!(false)));
    let r = api.call("openOrders.status", stamped(json!({"symbol": "BTCUSDT"}))).await;
    let ids: Vec<u64> = r["result"].as_array().unwrap().iter().map(|o| o["orderId"].as_u64().unwrap()).collect();
    assert_eq!(ids, [a1, maker], "{r}");
    assert_eq!(r["result"][1]["type"], "LIMIT_MAKER");

    // Amend (keep priority): quantity down only, client id kept on request.
    let amend = |q: &str| json!({"symbol": "BTCUSDT", "orderId": a1, "newQty": q, "newClientOrderId": "a1"});
    let r = api.call("order.amend.keepPriority", stamped(amend("0.001"))).await;
    let o = &r["result"]["amendedOrder"];
    assert_eq!(
        (o["qty"].as_str(), o["origClientOrderId"].as_str(), o["clientOrderId"].as_str()),
        (Some("0.00100000"), Some("a1"), Some("a1")),
        "{r}"
    );
    assert!(r["result"]["executionId"].is_u64());
    assert!(
        r["rateLimits"].as_array().unwrap().iter().all(|l| l["rateLimitType"] == "REQUEST_WEIGHT"),
        "amends are not counted: {r}"
    );
    let (k, ev) = events(&mut api, 2).await;
    assert_eq!(k, kinds(&[(ER, "REPLACED"), (OAP, "")]));
    assert_eq!((ev[0]["q"].as_str(), ev[0]["X"].as_str()), (Some("0.00100000"), Some("NEW")));
    assert_eq!(ev[1]["B"][0]["l"], "0.30000000", "0.1 for a1, 0.2 for the maker");
    let r = api.call("order.amend.keepPriority", stamped(amend("0.005"))).await;
    assert_eq!(code(&r), (400, -2038), "{r}");

    // Cancel-replace a1 by b1.
    let cr = json!({"symbol": "BTCUSDT", "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrigClientOrderId": "a1",
                    "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "150",
                    "newClientOrderId": "b1"});
    let r = api.call("order.cancelReplace", stamped(cr)).await;
    assert_eq!(r["status"], 200, "{r}");
    let res = &r["result"];
    assert_eq!((res["cancelResult"].as_str(), res["newOrderResult"].as_str()), (Some("SUCCESS"), Some("SUCCESS")));
    assert_eq!(
        (res["cancelResponse"]["status"].as_str(), res["cancelResponse"]["origClientOrderId"].as_str()),
        (Some("CANCELED"), Some("a1"))
    );
    assert_eq!(
        (res["newOrderResponse"]["status"].as_str(), res["newOrderResponse"]["clientOrderId"].as_str()),
        (Some("NEW"), Some("b1"))
    );
    assert_eq!(
        limit(&r, "ORDERS", "DAY")["count"],
        7,
        "five placements before, one cancel-replace, one refused LIMIT_MAKER"
    );
    let (k, ev) = events(&mut api, 4).await;
    assert_eq!(k, kinds(&[(ER, "CANCELED"), (OAP, ""), (ER, "NEW"), (OAP, "")]));
    assert_eq!(ev[0]["C"], "a1", "the canceled order's id in C");
    assert_eq!(ev[2]["c"], "b1");
    // Unknown order: STOP_ON_FAILURE places nothing (400), ALLOW_FAILURE places (409).
    let cr = |mode: &str| {
        json!({"symbol": "BTCUSDT", "cancelReplaceMode": mode, "cancelOrderId": 1,
                                 "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "160",
                                 "newClientOrderId": "c1"})
    };
    let r = api.call("order.cancelReplace", stamped(cr("STOP_ON_FAILURE"))).await;
    assert_eq!(code(&r), (400, -2022), "{r}");
    assert_eq!(
        r["error"]["data"],
        json!({"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
               "cancelResponse": {"code": -2011, "msg": "Unknown order sent."}, "newOrderResponse": null})
    );
    let r = api.call("order.cancelReplace", stamped(cr("ALLOW_FAILURE"))).await;
    assert_eq!(code(&r), (409, -2021), "{r}");
    assert_eq!(
        (
            r["error"]["data"]["newOrderResult"].as_str(),
            r["error"]["data"]["newOrderResponse"]["clientOrderId"].as_str()
        ),
        (Some("SUCCESS"), Some("c1"))
    );
    let (k, _) = events(&mut api, 2).await;
    assert_eq!(k, kinds(&[(ER, "NEW"), (OAP, "")]));

    // Cancel one, then all.
    let r = api
        .call(
            "order.cancel",
            stamped(json!({"symbol": "BTCUSDT", "origClientOrderId": "b1", "newClientOrderId": "x1"})),
        )
        .await;
    let o = &r["result"];
    assert_eq!(
        (o["status"].as_str(), o["origClientOrderId"].as_str(), o["clientOrderId"].as_str()),
        (Some("CANCELED"), Some("b1"), Some("x1")),
        "{r}"
    );
    let (k, _) = events(&mut api, 2).await;
    assert_eq!(k, kinds(&[(ER, "CANCELED"), (OAP, "")]));
    let r = api.call("openOrders.cancelAll", stamped(json!({"symbol": "BTCUSDT"}))).await;
    let all = r["result"].as_array().expect("a list");
    assert_eq!(all.len(), 2, "the maker and c1: {r}");
    assert!(all.iter().all(|o| o["status"] == "CANCELED"));
    let (k, _) = events(&mut api, 4).await;
    assert_eq!(k, kinds(&[(ER, "CANCELED"), (OAP, ""), (ER, "CANCELED"), (OAP, "")]));
    assert_eq!(api.call("openOrders.status", stamped(json!({}))).await["result"], json!([]));
    let r = api.call("openOrders.cancelAll", stamped(json!({"symbol": "BTCUSDT"}))).await;
    assert_eq!(code(&r), (400, -2011), "{r}");
    let acct = m.account(None).unwrap();
    assert_eq!(acct.balances["USDT"].locked, "0.00000000");
    assert!(acct.open_orders.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_ws_api_refusals_signatures_and_weights() {
    let (_sim, m) = start(market(MarketKind::Spot)).await;
    let mut api = Api::connect(&format!("{}/ws-api/v3?returnRateLimits=false", m.ws_url())).await;
    let place = json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "100"});

    // Not logged on: a signature per request, HMAC or Ed25519.
    let r = api.call("order.place", stamped(place.clone())).await;
    assert_eq!(code(&r), (400, -1102), "{r}");
    assert!(r["error"]["msg"].as_str().unwrap().contains("'apiKey'"), "{r}");
    assert!(r.get("rateLimits").is_none(), "hidden by the connection URL: {r}");
    let mut shown = place.clone();
    shown["returnRateLimits"] = json!(true);
    let r = api.call("order.place", sign_params(shown, false)).await;
    assert_eq!((r["status"].as_u64(), r["result"]["status"].as_str()), (Some(200), Some("NEW")), "HMAC: {r}");
    // The venue's default ORDERS limits (the refusal above was not counted).
    let l = r["rateLimits"].as_array().unwrap();
    assert_eq!(
        l[0],
        json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50, "count": 1})
    );
    assert_eq!(
        l[1],
        json!({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000, "count": 1})
    );
    assert_eq!((l[2]["rateLimitType"].as_str(), l[2]["limit"].as_u64()), (Some("REQUEST_WEIGHT"), Some(6000)));
    let r = api.call("v3/order.place", sign_params(place.clone(), true)).await;
    assert_eq!(r["status"], 200, "Ed25519, with a version prefix: {r}");
    let mut bad = sign_params(place.clone(), false);
    bad["price"] = json!("101");
    assert_eq!(code(&api.call("order.place", bad).await), (400, -1022));
    let mut stranger = sign_params(place.clone(), false);
    stranger["apiKey"] = json!("nobody");
    assert_eq!(code(&api.call("order.place", stranger).await), (401, -2015));
    let mut old = sign_params(place.clone(), false);
    old["timestamp"] = json!(1);
    assert_eq!(code(&api.call("order.place", old).await).1, -1021, "signed over timestamp 1 but stale first");

    // Logged on: still the timestamp rule.
    api.logon().await;
    let mut stale = stamped(place.clone());
    stale["timestamp"] = json!(crate::binance_common::now_ms() - 60_000);
    assert_eq!(code(&api.call("order.place", stale).await), (400, -1021));
    let r = api.call("order.place", json!({"symbol": "BTCUSDT"})).await;
    assert_eq!(code(&r), (400, -1102), "timestamp is still mandatory: {r}");

    let with = |k: &str, v: Value| {
        let mut p = place.clone();
        p[k] = v;
        stamped(p)
    };
    let without = |k: &str| {
        let mut p = place.clone();
        p.as_object_mut().unwrap().remove(k);
        stamped(p)
    };
    let mut sell_all = with("side", json!("SELL"));
    sell_all["quantity"] = json!("1000");
    sell_all["price"] = json!("1000000");
    for (p, c, what) in [
        (sell_all, -2010, "insufficient balance"),
        (with("price", json!("100.001")), -1013, "PRICE_FILTER"),
        (with("quantity", json!("0.000001")), -1013, "LOT_SIZE"),
        (with("symbol", json!("NOPEUSDT")), -1121, "symbol"),
        (without("quantity"), -1102, "mandatory"),
        (with("quantity", json!("abc")), -1100, "illegal"),
        (with("type", json!("STOP")), -1116, "type"),
        (with("timeInForce", json!("GTD")), -1115, "timeInForce"),
        (with("type", json!("LIMIT_MAKER")), -1106, "LIMIT_MAKER takes no timeInForce"),
    ] {
        let r = api.call("order.place", p).await;
        assert_eq!(code(&r), (400, c), "{what}: {r}");
    }
    let r = api.call("order.place", with("price", json!("100.001"))).await;
    assert_eq!(r["error"]["msg"], "Filter failure: PRICE_FILTER");
    let r = api.call("order.place", with("quantity", json!("0.000001"))).await;
    assert_eq!(r["error"]["msg"], "Filter failure: LOT_SIZE");
    let mut poor = with("side", json!("SELL"));
    poor["quantity"] = json!("1000");
    poor["price"] = json!("1000000");
    assert_eq!(
        api.call("order.place", poor).await["error"]["msg"],
        "Account has insufficient balance for requested action."
    );
    for (method, c) in [("order.status", -2013), ("order.cancel", -2011), ("order.amend.keepPriority", -2038)] {
        let r = api.call(method, stamped(json!({"symbol": "BTCUSDT", "orderId": 42, "newQty": "0.001"}))).await;
        assert_eq!(code(&r), (400, c), "{method}: {r}");
    }
    let r = api.call("order.cancel", stamped(json!({"symbol": "BTCUSDT"}))).await;
    assert_eq!(code(&r), (400, -1102), "{r}");

    // Weights, shown on request: order.status 4, openOrders.status 6 / 80, ping 1.
    let shown = |p: Value| {
        let mut p = p;
        p["returnRateLimits"] = json!(true);
        p
    };
    let w0 = limit(&api.call("ping", shown(json!({}))).await, "REQUEST_WEIGHT", "MINUTE")["count"].as_u64().unwrap();
    let st = api.call("order.status", shown(stamped(json!({"symbol": "BTCUSDT", "orderId": 42})))).await;
    let w1 = limit(&st, "REQUEST_WEIGHT", "MINUTE")["count"].as_u64().unwrap();
    let oo = api.call("openOrders.status", shown(stamped(json!({"symbol": "BTCUSDT"})))).await;
    let w2 = limit(&oo, "REQUEST_WEIGHT", "MINUTE")["count"].as_u64().unwrap();
    let all = api.call("openOrders.status", shown(stamped(json!({})))).await;
    let w3 = limit(&all, "REQUEST_WEIGHT", "MINUTE")["count"].as_u64().unwrap();
    assert_eq!((w1 - w0, w2 - w1, w3 - w2), (4, 6, 80));
    assert_eq!(oo["result"].as_array().map(Vec::len), Some(2), "the two signed placements rest: {oo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_limit_refuses_with_1015_across_rest_and_the_ws_api() {
    let mut cfg = market(MarketKind::Spot);
    // Intervals far longer than the test, so no boundary falls inside it.
    cfg.limits.order_rate_limits = vec![OrderRateLimit::new(100 * 86_400, 3), OrderRateLimit::new(200 * 86_400, 1000)];
    let (_sim, m) = start(cfg).await;
    let q = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=100";
    let a = signed(m.addr(), "POST", "/api/v3/order", q, false).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("x-mbx-order-count-100d").as_deref(), Some("1"), "{}", a.head);
    let mut api = Api::connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    api.logon().await;
    let place = json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "100"});
    for n in 2..=3 {
        let r = api.call("order.place", stamped(place.clone())).await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(limit(&r, "ORDERS", "DAY")["count"], n);
    }
    let r = api.call("order.place", stamped(place.clone())).await;
    assert_eq!(code(&r), (429, -1015), "{r}");
    assert_eq!(r["error"]["msg"], "Too many new orders; current limit is 3 orders per 100 DAY.");
    let l = r["rateLimits"].as_array().unwrap();
    assert_eq!(l[0], json!({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 100, "limit": 3, "count": 3}));
    assert_eq!(
        l[1],
        json!({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 200, "limit": 1000, "count": 3})
    );
    let a = signed(m.addr(), "POST", "/api/v3/order", q, true).await;
    assert_eq!((a.status, a.json()["code"].as_i64()), (429, Some(-1015)), "{}", a.body);
    // A cancel-replace counts (and is refused) too; a cancel does not count.
    let cr = json!({"symbol": "BTCUSDT", "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": 1,
                    "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "100"});
    assert_eq!(code(&api.call("order.cancelReplace", stamped(cr)).await), (429, -1015));
    let r = api.call("openOrders.cancelAll", stamped(json!({"symbol": "BTCUSDT"}))).await;
    assert_eq!(r["result"].as_array().map(Vec::len), Some(3), "{r}");
    assert_eq!(m.account(None).unwrap().orders.len(), 3);
    // Margin orders are not the spot account's ORDERS.
    let a = signed(m.addr(), "POST", "/sapi/v1/margin/order", q, false).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_ws_fapi_places_modifies_cancels_with_order_trade_updates_on_the_listen_key() {
    let (_sim, m) = start(market(MarketKind::UsdM)).await;
    let a = crate::binance_common::http(m.addr(), "POST", "/fapi/v1/listenKey", Some(TEST_API_KEY), "").await;
    let key = a.json()["listenKey"].as_str().unwrap().to_string();
    let mut user = Api::connect(&format!("{}/private/ws/{key}", m.ws_url())).await;
    let mut api = Api::connect(&format!("{}/ws-fapi/v1", m.ws_url())).await;
    registered(&m, 2).await;
    let st = api.call("session.status", Value::Null).await;
    assert!(st["result"].get("userDataStream").is_none(), "ws-fapi sessions have no such field: {st}");
    api.logon().await;
    m.pause_market(true);
    let otu = |v: Value| {
        assert_eq!(v["e"], "ORDER_TRADE_UPDATE", "{v}");
        v["o"].clone()
    };

    // INT parameters as numbers, DECIMAL as strings.
    let p = json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                   "quantity": "0.010", "price": "1000", "newClientOrderId": "f1"});
    let r = api.call("order.place", stamped(p)).await;
    assert_eq!((r["status"].as_u64(), r["result"]["status"].as_str()), (Some(200), Some("NEW")), "{r}");
    let l = r["rateLimits"].as_array().unwrap();
    assert_eq!(
        l[0],
        json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300, "count": 1})
    );
    assert_eq!(
        l[1],
        json!({"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200, "count": 1})
    );
    assert_eq!((l[2]["rateLimitType"].as_str(), l[2]["limit"].as_u64()), (Some("REQUEST_WEIGHT"), Some(2400)));
    let id = r["result"]["orderId"].as_u64().unwrap();
    let new = otu(user.event().await);
    assert_eq!((new["x"].as_str(), new["c"].as_str(), new["i"].as_u64()), (Some("NEW"), Some("f1"), Some(id)));

    let r = api.call("order.status", stamped(json!({"symbol": "BTCUSDT", "orderId": id}))).await;
    let o = &r["result"];
    assert_eq!(
        (o["status"].as_str(), o["origType"].as_str(), o["price"].as_str()),
        (Some("NEW"), Some("LIMIT"), Some("1000.00")),
        "{r}"
    );

    // Modify: price and quantity; the same again is -5027.
    let modify = |price: &str, qty: &str| json!({"symbol": "BTCUSDT", "orderId": id, "side": "BUY", "price": price, "quantity": qty});
    let r = api.call("order.modify", stamped(modify("1100", "0.020"))).await;
    let o = &r["result"];
    assert_eq!(
        (o["price"].as_str(), o["origQty"].as_str(), o["status"].as_str()),
        (Some("1100.00"), Some("0.020"), Some("NEW")),
        "{r}"
    );
    let c = limit(&r, "ORDERS", "MINUTE")["count"].as_u64();
    assert!(matches!(c, Some(1 | 2)), "a modify counts (in a minute that may have just begun): {r}");
    let am = otu(user.event().await);
    assert_eq!(
        (am["x"].as_str(), am["X"].as_str(), am["p"].as_str(), am["q"].as_str()),
        (Some("AMENDMENT"), Some("NEW"), Some("1100.00"), Some("0.020"))
    );
    assert_eq!(code(&api.call("order.modify", stamped(modify("1100", "0.020"))).await), (400, -5027));

    // A new price that crosses takes the book at that price.
    let (p0, q0) = asks(&m, "BTCUSDT")[0].clone();
    let more = d8(&q0) + 100_000;
    let qty = format!("{}.{:03}", more / 100_000_000, (more % 100_000_000) / 100_000);
    let r = api.call("order.modify", stamped(modify(&p0, &qty))).await;
    let o = &r["result"];
    assert_eq!((o["status"].as_str(), o["executedQty"].as_str()), (Some("PARTIALLY_FILLED"), Some(q0.as_str())), "{r}");
    assert_eq!(otu(user.event().await)["x"], "AMENDMENT");
    let t = otu(user.event().await);
    assert_eq!(
        (t["x"].as_str(), t["L"].as_str(), t["l"].as_str()),
        (Some("TRADE"), Some(p0.as_str()), Some(q0.as_str()))
    );
    let lite = user.event().await;
    assert_eq!((lite["e"].as_str(), lite["l"].as_str()), (Some("TRADE_LITE"), Some(q0.as_str())), "{lite}");
    let acc = user.event().await;
    assert_eq!(
        (acc["e"].as_str(), acc["a"]["P"][0]["pa"].as_str()),
        (Some("ACCOUNT_UPDATE"), Some(q0.as_str())),
        "{acc}"
    );

    // Cancel, then its status from history.
    let r = api.call("order.cancel", stamped(json!({"symbol": "BTCUSDT", "origClientOrderId": "f1"}))).await;
    assert_eq!(r["result"]["status"], "CANCELED", "{r}");
    assert!(r["rateLimits"].as_array().unwrap().iter().all(|l| l["rateLimitType"] == "REQUEST_WEIGHT"), "{r}");
    assert_eq!(otu(user.event().await)["x"], "CANCELED");
    let r = api.call("order.status", stamped(json!({"symbol": "BTCUSDT", "orderId": id}))).await;
    assert_eq!(
        (r["result"]["status"].as_str(), r["result"]["executedQty"].as_str()),
        (Some("CANCELED"), Some(q0.as_str()))
    );

    // A MARKET order signed per request (HMAC) overrides the session.
    let p = json!({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.001", "newOrderRespType": "RESULT"});
    let r = api.call("order.place", sign_params(p, false)).await;
    assert_eq!(r["result"]["status"], "FILLED", "{r}");
    let k: Vec<String> = [user.event().await, user.event().await, user.event().await, user.event().await]
        .iter()
        .map(|v| format!("{}:{}", v["e"].as_str().unwrap_or(""), v["o"]["x"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(k, ["ORDER_TRADE_UPDATE:NEW", "ORDER_TRADE_UPDATE:TRADE", "TRADE_LITE:", "ACCOUNT_UPDATE:"]);

    // What ws-fapi does not serve, and unknown orders.
    for method in ["openOrders.status", "openOrders.cancelAll", "order.amend.keepPriority", "userDataStream.subscribe"]
    {
        let r = api.call(method, stamped(json!({"symbol": "BTCUSDT"}))).await;
        assert_eq!(code(&r), (400, -1000), "{method}: {r}");
    }
    assert_eq!(
        code(&api.call("order.cancel", stamped(json!({"symbol": "BTCUSDT", "orderId": 7}))).await),
        (400, -2011)
    );
    assert_eq!(
        code(&api.call("order.status", stamped(json!({"symbol": "BTCUSDT", "orderId": 7}))).await),
        (400, -2013)
    );
    assert_eq!(code(&api.call("order.modify", stamped(modify("1000", "0.010"))).await), (400, -2013));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_weight_budget_is_shared_and_refuses_with_1003() {
    let mut cfg = market(MarketKind::Spot);
    cfg.limits.rest_weight_limit = 11;
    let (_sim, m) = start(cfg).await;
    let mut api = Api::connect(&format!("{}/ws-api/v3", m.ws_url())).await;
    api.logon().await; // 2
    let r = api.call("order.status", stamped(json!({"symbol": "BTCUSDT", "orderId": 1}))).await; // 4
    assert_eq!(limit(&r, "REQUEST_WEIGHT", "MINUTE")["count"], 6, "{r}");
    let a = crate::binance_common::http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT&limit=100", None, "").await;
    assert_eq!(a.status, 200, "REST weighs 5 in the same budget");
    let r = api.call("ping", Value::Null).await;
    assert_eq!(code(&r), (429, -1003), "{r}");
    assert_eq!(
        limit(&r, "REQUEST_WEIGHT", "MINUTE"),
        &json!({"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 11, "count": 11})
    );
}
