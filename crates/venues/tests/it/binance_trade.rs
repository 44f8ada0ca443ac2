//! Binance trading over the WebSocket APIs through the order API
//! (`BinanceTrading`): the plans (endpoints, accounts, logon or per-request
//! signatures, no secret in `Debug`), every request frame (the JSON the venue
//! is sent, HMAC signatures verified over the sorted parameters), every shape
//! the venue would refuse refused before sending, every answer decoded from
//! the venue's documented examples (binance-spot-api-docs `web-socket-api.md`;
//! developers.binance.com USDⓈ-M `trade/websocket-api/*`, written inline: they
//! are facts), error codes mapped to refusal kinds, and the `rateLimits` of an
//! answer read into the order-rate guard's terms.

use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::Decimal;
use ferrofeed_model::event::{MarketType, PositionSide, Side, UserTrade, Venue};
use ferrofeed_model::rules::Inbound;
use ferrofeed_venues::auth::{Clock, Credentials, sorted_query};
use ferrofeed_venues::binance::trade::{BinanceTrading, Resting, refusal_kind, ws_fapi_url};
use ferrofeed_venues::env::Environment;
use ferrofeed_venues::seam::MarketId;
use ferrofeed_venues::trading::{
    AmendOrder, CancelOrder, OrderAnswer, OrderRef, OrderRequest, OrderType, PlaceOrder, QueryOrder, RateLimit,
    RefusalKind, TimeInForce, TradeError, TradingPlan, TradingSpec,
};
use serde_json::Value;

const API_KEY: &str = "trade-test-api-key-0123456789";
const SECRET: &str = "trade-test-hmac-secret-9876543210";
const SEED: [u8; 32] = [5; 32];

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn account(m: MarketType) -> &'static str {
    if m == MarketType::Spot { "spot" } else { "usdm" }
}

fn plan_with(m: MarketType, creds: Credentials, env: &Environment) -> TradingPlan {
    BinanceTrading.plan(m, account(m), env, Arc::new(creds), Arc::new(Clock::new(5000))).unwrap()
}

fn ed(m: MarketType) -> TradingPlan {
    plan_with(m, Credentials::ed25519_seed(API_KEY, SEED).unwrap(), &Environment::Production)
}

fn hmac(m: MarketType) -> TradingPlan {
    plan_with(m, Credentials::hmac(API_KEY, SECRET).unwrap(), &Environment::Production)
}

fn frame(plan: &TradingPlan, id: u64, r: &OrderRequest) -> Value {
    let text = BinanceTrading.encode(plan, id, r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The request's parameters without the ones every request carries
/// (`timestamp`, `recvWindow`, and with HMAC `apiKey`, `signature`), after
/// checking those.
fn params(f: &Value, method: &str, id: u64) -> serde_json::Map<String, Value> {
    assert_eq!((f["id"].as_u64(), f["method"].as_str()), (Some(id), Some(method)), "{f}");
    let mut p = f["params"].as_object().unwrap().clone();
    let ts = p.remove("timestamp").and_then(|t| t.as_i64()).unwrap_or_default();
    assert!(ts > 1_700_000_000_000, "{f}");
    assert_eq!(p.remove("recvWindow").and_then(|v| v.as_u64()), Some(5000), "{f}");
    p
}

fn place(symbol: &str) -> PlaceOrder {
    PlaceOrder {
        symbol: symbol.into(),
        side: Side::Sell,
        order_type: OrderType::Limit,
        qty: d("0.00847000"),
        price: Some(d("23416.10000000")),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        client_order_id: Some("my-order_1".into()),
    }
}

fn obj(pairs: &[(&str, Value)]) -> serde_json::Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn plans_name_the_ws_api_endpoints_and_accounts() {
    let creds = || Arc::new(Credentials::ed25519_seed(API_KEY, SEED).unwrap());
    let clock = || Arc::new(Clock::default());
    let url = |m, env: &Environment| BinanceTrading.plan(m, account(m), env, creds(), clock()).unwrap().session.url;
    assert_eq!(url(MarketType::Spot, &Environment::Production), "wss://ws-api.binance.com:443/ws-api/v3");
    assert_eq!(url(MarketType::Spot, &Environment::Testnet), "wss://ws-api.testnet.binance.vision/ws-api/v3");
    assert_eq!(url(MarketType::UsdM, &Environment::Production), "wss://ws-fapi.binance.com/ws-fapi/v1");
    assert_eq!(url(MarketType::UsdM, &Environment::Testnet), "wss://testnet.binancefuture.com/ws-fapi/v1");
    let sim = Environment::Custom { ws: "ws://127.0.0.1:9402/".into(), rest: "http://127.0.0.1:9402".into() };
    assert_eq!(url(MarketType::UsdM, &sim), "ws://127.0.0.1:9402/ws-fapi/v1");
    assert_eq!(ws_fapi_url(&sim), "ws://127.0.0.1:9402/ws-fapi/v1");
    assert_eq!(url(MarketType::Spot, &sim), "ws://127.0.0.1:9402/ws-api/v3");

    let p = ed(MarketType::UsdM);
    assert_eq!(p.market, MarketId::new(Venue::Binance, MarketType::UsdM));
    assert_eq!(p.session.time_url.as_deref(), Some("https://fapi.binance.com/fapi/v1/time"));
    assert_eq!(ed(MarketType::Spot).session.time_url.as_deref(), Some("https://api.binance.com/api/v3/time"));
    assert_eq!(p.session.time_field, "serverTime");
    assert!(p.session.streams.is_empty());
    assert_eq!(p.session.rules.limits().msg_window, Duration::from_secs(60));

    // Accounts: spot orders on `spot`, USD-M orders on `usdm`; nothing else.
    for (m, acct) in [
        (MarketType::Spot, "margin"),
        (MarketType::Spot, "usdm"),
        (MarketType::UsdM, "spot"),
        (MarketType::CoinM, "coinm"),
        (MarketType::Options, "options"),
    ] {
        let e = BinanceTrading.plan(m, acct, &Environment::Production, creds(), clock()).unwrap_err();
        assert!(e.to_string().contains("spot") || e.to_string().contains("usdm"), "{e}");
    }
    assert_eq!(BinanceTrading.markets(), &[MarketType::Spot, MarketType::UsdM]);
    let spec = ferrofeed_venues::registry::spec(MarketId::new(Venue::Binance, MarketType::Spot)).unwrap();
    assert_eq!(spec.trading().map(|t| t.venue()), Some(Venue::Binance));
}

#[test]
fn an_ed25519_plan_logs_on_and_sends_no_signature() {
    for m in [MarketType::Spot, MarketType::UsdM] {
        let p = ed(m);
        let logon: Value = serde_json::from_str(&p.session.rules.auth_request(4).unwrap()).unwrap();
        assert_eq!((logon["id"].as_str(), logon["method"].as_str()), (Some("logon-4"), Some("session.logon")));
        let lp = &logon["params"];
        let payload = sorted_query(&[
            ("apiKey", lp["apiKey"].as_str().unwrap().to_string()),
            ("recvWindow", lp["recvWindow"].to_string()),
            ("timestamp", lp["timestamp"].to_string()),
        ]);
        let creds = Credentials::ed25519_seed(API_KEY, SEED).unwrap();
        assert_eq!(lp["signature"].as_str(), Some(creds.sign(&payload).as_str()));

        let f = frame(&p, 11, &OrderRequest::Place(place("btcusdt")));
        let rest = params(&f, "order.place", 11);
        assert!(!rest.contains_key("apiKey") && !rest.contains_key("signature"), "{f}");
        assert!(!f.to_string().contains(API_KEY));
    }
    // An HMAC key cannot log on: no auth step, every request signed.
    assert!(hmac(MarketType::Spot).session.rules.auth_request(1).is_none());
}

#[test]
fn an_hmac_plan_signs_every_request_over_its_sorted_parameters() {
    let requests = [
        OrderRequest::Place(place("BTCUSDT")),
        OrderRequest::Cancel(CancelOrder { symbol: "BTCUSDT".into(), order: OrderRef::OrderId("12569099453".into()) }),
        OrderRequest::Status(QueryOrder { symbol: "BTCUSDT".into(), order: OrderRef::ClientOrderId("abc".into()) }),
    ];
    let creds = Credentials::hmac(API_KEY, SECRET).unwrap();
    for m in [MarketType::Spot, MarketType::UsdM] {
        for r in &requests {
            let f = frame(&hmac(m), 3, r);
            let p = f["params"].as_object().unwrap();
            assert_eq!(p["apiKey"], API_KEY);
            let signed: Vec<(&str, String)> = p
                .iter()
                .filter(|(k, _)| *k != "signature")
                .map(|(k, v)| (k.as_str(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            let sig = p["signature"].as_str().unwrap();
            assert_eq!(sig, creds.sign(&sorted_query(&signed)), "{f}");
            assert_eq!(sig.len(), 64);
        }
    }
}

#[test]
fn plans_keep_their_secrets_out_of_debug() {
    for p in [ed(MarketType::Spot), hmac(MarketType::UsdM)] {
        let dbg = format!("{p:?} {p:#?} {:?}", p.session.rules);
        assert!(!dbg.contains(API_KEY) && !dbg.contains(SECRET), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }
}

#[test]
fn spot_requests_have_the_documented_shapes() {
    let p = ed(MarketType::Spot);
    let enc = |r: OrderRequest, method: &str| params(&frame(&p, 8, &r), method, 8);
    assert_eq!(
        enc(OrderRequest::Place(place("btcusdt")), "order.place"),
        obj(&[
            ("symbol", "BTCUSDT".into()),
            ("side", "SELL".into()),
            ("type", "LIMIT".into()),
            ("timeInForce", "GTC".into()),
            ("quantity", "0.00847000".into()),
            ("price", "23416.10000000".into()),
            ("newClientOrderId", "my-order_1".into()),
            ("newOrderRespType", "FULL".into()),
        ])
    );
    // Post-only is LIMIT_MAKER, which takes no time in force.
    let maker = enc(OrderRequest::Place(PlaceOrder { post_only: true, ..place("BTCUSDT") }), "order.place");
    assert_eq!((maker["type"].as_str(), maker.get("timeInForce")), (Some("LIMIT_MAKER"), None));
    let ioc =
        enc(OrderRequest::Place(PlaceOrder { time_in_force: TimeInForce::Ioc, ..place("BTCUSDT") }), "order.place");
    assert_eq!(ioc["timeInForce"], "IOC");
    let fok =
        enc(OrderRequest::Place(PlaceOrder { time_in_force: TimeInForce::Fok, ..place("BTCUSDT") }), "order.place");
    assert_eq!(fok["timeInForce"], "FOK");
    let market = PlaceOrder {
        side: Side::Buy,
        order_type: OrderType::Market,
        price: None,
        qty: d("0.1000"),
        client_order_id: None,
        ..place("BTCUSDT")
    };
    assert_eq!(
        enc(OrderRequest::Place(market), "order.place"),
        obj(&[
            ("symbol", "BTCUSDT".into()),
            ("side", "BUY".into()),
            ("type", "MARKET".into()),
            ("quantity", "0.1000".into()),
            ("newOrderRespType", "FULL".into()),
        ])
    );
    assert_eq!(
        enc(
            OrderRequest::Cancel(CancelOrder {
                symbol: "BTCUSDT".into(),
                order: OrderRef::OrderId("12569099453".into())
            }),
            "order.cancel"
        ),
        obj(&[("symbol", "BTCUSDT".into()), ("orderId", 12_569_099_453u64.into())])
    );
    assert_eq!(
        enc(
            OrderRequest::Cancel(CancelOrder {
                symbol: "BTCUSDT".into(),
                order: OrderRef::ClientOrderId("4d96324ff9d44481926157".into())
            }),
            "order.cancel"
        ),
        obj(&[("symbol", "BTCUSDT".into()), ("origClientOrderId", "4d96324ff9d44481926157".into())])
    );
    assert_eq!(
        enc(
            OrderRequest::Status(QueryOrder { symbol: "BTCUSDT".into(), order: OrderRef::OrderId("7".into()) }),
            "order.status"
        ),
        obj(&[("symbol", "BTCUSDT".into()), ("orderId", 7.into())])
    );
    assert_eq!(
        enc(OrderRequest::OpenOrders { symbol: "BTCUSDT".into() }, "openOrders.status"),
        obj(&[("symbol", "BTCUSDT".into())])
    );
    assert_eq!(
        enc(OrderRequest::CancelAll { symbol: Some("BTCUSDT".into()) }, "openOrders.cancelAll"),
        obj(&[("symbol", "BTCUSDT".into())])
    );
    // A lower quantity keeps the order's priority.
    let amend = AmendOrder {
        side: None,
        symbol: "BTCUSDT".into(),
        order: OrderRef::ClientOrderId("my_test_order1".into()),
        qty: Some(d("5")),
        price: None,
    };
    assert_eq!(
        enc(OrderRequest::Amend(amend.clone()), "order.amend.keepPriority"),
        obj(&[
            ("symbol", "BTCUSDT".into()),
            ("origClientOrderId", "my_test_order1".into()),
            ("newClientOrderId", "my_test_order1".into()),
            ("newQty", "5".into())
        ])
    );
    // A new price is a cancel-replace: a whole new order, which needs the
    // side the amend does not carry.
    let reprice = AmendOrder { price: Some(d("23450.00")), ..amend };
    let e = BinanceTrading.encode(&p, 1, &OrderRequest::Amend(reprice.clone())).unwrap_err();
    assert!(matches!(&e, TradeError::Invalid { request: "amend", reason } if reason.contains("side")), "{e}");
    let resting = Resting { side: Side::Sell, post_only: false, time_in_force: TimeInForce::Gtc };
    let f: Value = serde_json::from_str(&BinanceTrading.encode_amend(&p, 9, &reprice, Some(resting)).unwrap()).unwrap();
    assert_eq!(
        params(&f, "order.cancelReplace", 9),
        obj(&[
            ("symbol", "BTCUSDT".into()),
            ("cancelReplaceMode", "STOP_ON_FAILURE".into()),
            ("cancelOrigClientOrderId", "my_test_order1".into()),
            ("side", "SELL".into()),
            ("type", "LIMIT".into()),
            ("timeInForce", "GTC".into()),
            ("quantity", "5".into()),
            ("price", "23450.00".into()),
            ("newClientOrderId", "my_test_order1".into()),
            ("newOrderRespType", "FULL".into()),
        ])
    );
    let by_id = AmendOrder { order: OrderRef::OrderId("125690984230".into()), ..reprice };
    let maker = Resting { post_only: true, ..resting };
    let f: Value = serde_json::from_str(&BinanceTrading.encode_amend(&p, 9, &by_id, Some(maker)).unwrap()).unwrap();
    let cr = params(&f, "order.cancelReplace", 9);
    assert_eq!((cr["cancelOrderId"].as_u64(), cr["type"].as_str()), (Some(125_690_984_230), Some("LIMIT_MAKER")));
    assert!(!cr.contains_key("timeInForce") && !cr.contains_key("newClientOrderId"));
}

#[test]
fn usdm_requests_have_the_documented_shapes() {
    let p = hmac(MarketType::UsdM);
    let enc = |r: OrderRequest, method: &str| {
        let mut m = params(&frame(&p, 5, &r), method, 5);
        assert!(m.remove("apiKey").is_some() && m.remove("signature").is_some());
        m
    };
    let order = PlaceOrder {
        symbol: "BTCUSDT".into(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        qty: d("0.1"),
        price: Some(d("43187")),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        client_order_id: None,
    };
    assert_eq!(
        enc(OrderRequest::Place(order.clone()), "order.place"),
        obj(&[
            ("symbol", "BTCUSDT".into()),
            ("side", "BUY".into()),
            ("type", "LIMIT".into()),
            ("timeInForce", "GTC".into()),
            ("quantity", "0.1".into()),
            ("price", "43187".into()),
            ("newOrderRespType", "RESULT".into()),
        ])
    );
    // Post-only is GTX; reduce-only a string; the USD-M id charset takes `.:/`.
    let gtx = enc(
        OrderRequest::Place(PlaceOrder {
            post_only: true,
            reduce_only: true,
            client_order_id: Some("a.b:c/d_e-f".into()),
            ..order.clone()
        }),
        "order.place",
    );
    assert_eq!((gtx["type"].as_str(), gtx["timeInForce"].as_str()), (Some("LIMIT"), Some("GTX")));
    assert_eq!((gtx["reduceOnly"].as_str(), gtx["newClientOrderId"].as_str()), (Some("true"), Some("a.b:c/d_e-f")));
    let mkt =
        enc(OrderRequest::Place(PlaceOrder { order_type: OrderType::Market, price: None, ..order }), "order.place");
    assert_eq!((mkt["type"].as_str(), mkt.get("price"), mkt.get("timeInForce")), (Some("MARKET"), None, None));
    assert_eq!(
        enc(
            OrderRequest::Cancel(CancelOrder {
                symbol: "BTCUSDT".into(),
                order: OrderRef::OrderId("283194212".into())
            }),
            "order.cancel"
        ),
        obj(&[("symbol", "BTCUSDT".into()), ("orderId", 283_194_212u64.into())])
    );
    assert_eq!(
        enc(
            OrderRequest::Status(QueryOrder { symbol: "BTCUSDT".into(), order: OrderRef::OrderId("328999071".into()) }),
            "order.status"
        ),
        obj(&[("symbol", "BTCUSDT".into()), ("orderId", 328_999_071u64.into())])
    );
    // order.modify needs side, quantity and price: refused without the side.
    let amend = AmendOrder {
        side: None,
        symbol: "BTCUSDT".into(),
        order: OrderRef::OrderId("328971409".into()),
        qty: Some(d("0.11")),
        price: Some(d("43769.1")),
    };
    let e = BinanceTrading.encode(&p, 1, &OrderRequest::Amend(amend.clone())).unwrap_err();
    assert!(matches!(&e, TradeError::Invalid { reason, .. } if reason.contains("order.modify")), "{e}");
    let resting = Resting { side: Side::Sell, post_only: false, time_in_force: TimeInForce::Gtc };
    let f: Value = serde_json::from_str(&BinanceTrading.encode_amend(&p, 6, &amend, Some(resting)).unwrap()).unwrap();
    let mut m = params(&f, "order.modify", 6);
    assert!(m.remove("apiKey").is_some() && m.remove("signature").is_some());
    assert_eq!(
        m,
        obj(&[
            ("symbol", "BTCUSDT".into()),
            ("orderId", 328_971_409u64.into()),
            ("side", "SELL".into()),
            ("quantity", "0.11".into()),
            ("price", "43769.1".into()),
        ])
    );
    let qty_only = AmendOrder { price: None, ..amend };
    assert!(matches!(BinanceTrading.encode_amend(&p, 6, &qty_only, Some(resting)), Err(TradeError::Invalid { .. })));
}

#[test]
fn shapes_the_venue_refuses_are_refused_before_sending() {
    let spot = ed(MarketType::Spot);
    let usdm = ed(MarketType::UsdM);
    let refused = |p: &TradingPlan, r: OrderRequest| match BinanceTrading.encode(p, 1, &r) {
        Err(TradeError::Invalid { request, reason }) => {
            assert_eq!(request, r.name());
            assert!(!reason.is_empty());
        }
        other => panic!("{r:?}: {other:?}"),
    };
    let pl = |o: PlaceOrder| OrderRequest::Place(o);
    for p in [&spot, &usdm] {
        refused(p, pl(PlaceOrder { price: None, ..place("BTCUSDT") }));
        refused(p, pl(PlaceOrder { order_type: OrderType::Market, ..place("BTCUSDT") }));
        refused(p, pl(PlaceOrder { order_type: OrderType::Market, price: None, post_only: true, ..place("BTCUSDT") }));
        refused(
            p,
            pl(PlaceOrder {
                order_type: OrderType::Market,
                price: None,
                time_in_force: TimeInForce::Ioc,
                ..place("BTCUSDT")
            }),
        );
        refused(p, pl(PlaceOrder { post_only: true, time_in_force: TimeInForce::Ioc, ..place("BTCUSDT") }));
        refused(p, pl(PlaceOrder { qty: d("0"), ..place("BTCUSDT") }));
        refused(p, pl(PlaceOrder { qty: d("-1"), ..place("BTCUSDT") }));
        refused(p, pl(PlaceOrder { price: Some(d("0")), ..place("BTCUSDT") }));
        refused(p, pl(PlaceOrder { client_order_id: Some("x".repeat(37)), ..place("BTCUSDT") }));
        refused(p, pl(PlaceOrder { client_order_id: Some(String::new()), ..place("BTCUSDT") }));
        refused(p, pl(PlaceOrder { client_order_id: Some("a b".into()), ..place("BTCUSDT") }));
        refused(p, pl(place("BTC/USDT")));
        refused(p, OrderRequest::Batch { items: vec![pl(place("BTCUSDT"))] });
        refused(
            p,
            OrderRequest::Cancel(CancelOrder { symbol: "BTCUSDT".into(), order: OrderRef::OrderId("12ab".into()) }),
        );
        refused(
            p,
            OrderRequest::Amend(AmendOrder {
                side: None,
                symbol: "BTCUSDT".into(),
                order: OrderRef::OrderId("1".into()),
                qty: None,
                price: None,
            }),
        );
    }
    // 36 characters is the longest id; spot's charset has no `.:/`.
    assert!(
        BinanceTrading
            .encode(&spot, 1, &pl(PlaceOrder { client_order_id: Some("x".repeat(36)), ..place("BTCUSDT") }))
            .is_ok()
    );
    refused(&spot, pl(PlaceOrder { client_order_id: Some("a.b".into()), ..place("BTCUSDT") }));
    refused(&spot, pl(PlaceOrder { reduce_only: true, ..place("BTCUSDT") }));
    refused(&spot, OrderRequest::CancelAll { symbol: None });
    refused(&usdm, OrderRequest::CancelAll { symbol: Some("BTCUSDT".into()) });
    refused(&usdm, OrderRequest::OpenOrders { symbol: "BTCUSDT".into() });
}

// ---------------------------------------------------------------------------
// Answers: the docs' examples
// ---------------------------------------------------------------------------

const SPOT_RATE_LIMITS: &str = r#"[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":1},{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":160000,"count":1},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":1}]"#;

fn spot_answer(result: &str) -> String {
    format!(r#"{{"id":8,"status":200,"result":{result},"rateLimits":{SPOT_RATE_LIMITS}}}"#)
}

/// web-socket-api.md, `order.place` `FULL` response.
const SPOT_PLACE_FULL: &str = r#"{"symbol":"BTCUSDT","orderId":12569099453,"orderListId":-1,"clientOrderId":"4d96324ff9d44481926157ec08158a40","transactTime":1660801715793,"price":"23416.10000000","origQty":"0.00847000","executedQty":"0.00847000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"198.33521500","status":"FILLED","timeInForce":"GTC","type":"LIMIT","side":"SELL","workingTime":1660801715793,"fills":[{"price":"23416.10000000","qty":"0.00635000","commission":"0.000000","commissionAsset":"BNB","tradeId":1650422481},{"price":"23416.50000000","qty":"0.00212000","commission":"0.000000","commissionAsset":"BNB","tradeId":1650422482}]}"#;

/// web-socket-api.md, `order.cancel` response (an individual order).
const SPOT_CANCEL: &str = r#"{"symbol":"BTCUSDT","origClientOrderId":"4d96324ff9d44481926157","orderId":12569099453,"orderListId":-1,"clientOrderId":"91fe37ce9e69c90d6358c0","transactTime":1684804350068,"price":"23416.10000000","origQty":"0.00847000","executedQty":"0.00001000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.23416100","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"SELL","stopPrice":"0.00000000","trailingDelta":0,"icebergQty":"0.00000000","strategyId":37463720,"strategyType":1000000,"selfTradePreventionMode":"NONE"}"#;

/// web-socket-api.md, `order.cancel` response (an order list).
const SPOT_CANCEL_LIST: &str = r#"{"orderListId":19431,"contingencyType":"OCO","listStatusType":"ALL_DONE","listOrderStatus":"ALL_DONE","listClientOrderId":"iuVNVJYYrByz6C4yGOPPK0","transactionTime":1660803702431,"symbol":"BTCUSDT","orders":[{"symbol":"BTCUSDT","orderId":12569099453,"clientOrderId":"bX5wROblo6YeDwa9iTLeyY"},{"symbol":"BTCUSDT","orderId":12569099454,"clientOrderId":"Tnu2IP0J5Y4mxw3IATBfmW"}],"orderReports":[{"symbol":"BTCUSDT","origClientOrderId":"bX5wROblo6YeDwa9iTLeyY","orderId":12569099453,"orderListId":19431,"clientOrderId":"OFFXQtxVFZ6Nbcg4PgE2DA","transactTime":1684804350068,"price":"23450.50000000","origQty":"0.00850000","executedQty":"0.00000000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.00000000","status":"CANCELED","timeInForce":"GTC","type":"STOP_LOSS_LIMIT","side":"BUY","stopPrice":"23430.00000000","selfTradePreventionMode":"NONE"},{"symbol":"BTCUSDT","origClientOrderId":"Tnu2IP0J5Y4mxw3IATBfmW","orderId":12569099454,"orderListId":19431,"clientOrderId":"OFFXQtxVFZ6Nbcg4PgE2DA","transactTime":1684804350068,"price":"23400.00000000","origQty":"0.00850000","executedQty":"0.00000000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.00000000","status":"CANCELED","timeInForce":"GTC","type":"LIMIT_MAKER","side":"BUY","selfTradePreventionMode":"NONE"}]}"#;

/// web-socket-api.md, `order.status` response.
const SPOT_STATUS: &str = r#"{"symbol":"BTCUSDT","orderId":12569099453,"orderListId":-1,"clientOrderId":"4d96324ff9d44481926157","price":"23416.10000000","origQty":"0.00847000","executedQty":"0.00847000","cummulativeQuoteQty":"198.33521500","status":"FILLED","timeInForce":"GTC","type":"LIMIT","side":"SELL","stopPrice":"0.00000000","trailingDelta":10,"trailingTime":-1,"icebergQty":"0.00000000","time":1660801715639,"updateTime":1660801717945,"isWorking":true,"workingTime":1660801715639,"origQuoteOrderQty":"0.00000000","strategyId":37463720,"strategyType":1000000,"selfTradePreventionMode":"NONE","preventedMatchId":0,"preventedQuantity":"1.200000"}"#;

/// web-socket-api.md, `openOrders.status` response.
const SPOT_OPEN: &str = r#"[{"symbol":"BTCUSDT","orderId":12569099453,"orderListId":-1,"clientOrderId":"4d96324ff9d44481926157","price":"23416.10000000","origQty":"0.00847000","executedQty":"0.00720000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"172.43931000","status":"PARTIALLY_FILLED","timeInForce":"GTC","type":"LIMIT","side":"SELL","stopPrice":"0.00000000","icebergQty":"0.00000000","time":1660801715639,"updateTime":1660801717945,"isWorking":true,"workingTime":1660801715639,"origQuoteOrderQty":"0.00000000","selfTradePreventionMode":"NONE"}]"#;

/// web-socket-api.md, `order.amend.keepPriority` response (single order).
const SPOT_AMEND: &str = r#"{"transactTime":1741923284382,"executionId":16,"amendedOrder":{"symbol":"BTCUSDT","orderId":12,"orderListId":-1,"origClientOrderId":"my_test_order1","clientOrderId":"4zR9HFcEq8gM1tWUqPEUHc","price":"5.00000000","qty":"5.00000000","executedQty":"0.00000000","preventedQty":"0.00000000","quoteOrderQty":"0.00000000","cumulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY","workingTime":1741923284364,"selfTradePreventionMode":"NONE"}}"#;

/// web-socket-api.md, `order.cancelReplace` response (both succeeded).
const SPOT_CANCEL_REPLACE: &str = r#"{"cancelResult":"SUCCESS","newOrderResult":"SUCCESS","cancelResponse":{"symbol":"BTCUSDT","origClientOrderId":"4d96324ff9d44481926157","orderId":125690984230,"orderListId":-1,"clientOrderId":"91fe37ce9e69c90d6358c0","transactTime":1684804350068,"price":"23450.00000000","origQty":"0.00847000","executedQty":"0.00001000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.23450000","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"SELL","selfTradePreventionMode":"NONE"},"newOrderResponse":{"symbol":"BTCUSDT","orderId":12569099453,"orderListId":-1,"clientOrderId":"bX5wROblo6YeDwa9iTLeyY","transactTime":1660813156959,"price":"23416.10000000","origQty":"0.00847000","executedQty":"0.00000000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"SELL","selfTradePreventionMode":"NONE"}}"#;

fn spot_place_request() -> OrderRequest {
    OrderRequest::Place(PlaceOrder { client_order_id: None, ..place("BTCUSDT") })
}

#[test]
fn spot_answers_decode_into_typed_answers() {
    let p = ed(MarketType::Spot);
    let t = BinanceTrading;
    let OrderAnswer::Placed { order, fills } =
        t.decode(&p, &spot_place_request(), &spot_answer(SPOT_PLACE_FULL), 0).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (order.order_id.as_str(), order.client_order_id.as_str()),
        ("12569099453", "4d96324ff9d44481926157ec08158a40")
    );
    assert_eq!(
        (order.side, order.order_type.as_str(), order.time_in_force.as_deref()),
        (Side::Sell, "LIMIT", Some("GTC"))
    );
    assert_eq!((order.status.as_str(), order.execution_type.as_str()), ("FILLED", "TRADE"));
    assert_eq!(
        (order.price, order.qty, order.filled_qty),
        (Some(d("23416.10000000")), d("0.00847000"), d("0.00847000"))
    );
    assert_eq!((order.filled_quote_qty, order.order_list_id, order.stop_price), (Some(d("198.33521500")), None, None));
    assert_eq!(
        fills,
        vec![
            UserTrade {
                order_id: "12569099453".into(),
                client_order_id: "4d96324ff9d44481926157ec08158a40".into(),
                side: Side::Sell,
                trade_id: "1650422481".into(),
                price: d("23416.10000000"),
                qty: d("0.00635000"),
                maker: false,
                order_price: Some(d("23416.10000000")),
                order_qty: Some(d("0.00847000")),
                fee: Some(d("0.000000")),
                fee_asset: Some("BNB".into()),
            },
            UserTrade {
                trade_id: "1650422482".into(),
                price: d("23416.50000000"),
                qty: d("0.00212000"),
                ..fills[0].clone()
            },
        ]
    );
    // The RESULT answer (no fills) reads as an open order.
    let result = r#"{"symbol":"BTCUSDT","orderId":12569099453,"orderListId":-1,"clientOrderId":"4d96324ff9d44481926157ec08158a40","transactTime":1660801715639,"price":"23416.10000000","origQty":"0.00847000","executedQty":"0.00000000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"SELL","workingTime":1660801715639,"selfTradePreventionMode":"NONE"}"#;
    let OrderAnswer::Placed { order, fills } = t.decode(&p, &spot_place_request(), &spot_answer(result), 0).unwrap()
    else {
        panic!()
    };
    assert_eq!((order.status.as_str(), order.execution_type.as_str(), fills.len()), ("NEW", "NEW", 0));

    let cancel = |order: OrderRef| OrderRequest::Cancel(CancelOrder { symbol: "BTCUSDT".into(), order });
    let OrderAnswer::Cancelled { order } = t
        .decode(&p, &cancel(OrderRef::ClientOrderId("4d96324ff9d44481926157".into())), &spot_answer(SPOT_CANCEL), 0)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (order.client_order_id.as_str(), order.orig_client_order_id.as_deref()),
        ("91fe37ce9e69c90d6358c0", Some("4d96324ff9d44481926157"))
    );
    assert_eq!((order.status.as_str(), order.execution_type.as_str()), ("CANCELED", "CANCELED"));
    assert_eq!(
        (order.filled_qty, order.filled_quote_qty, order.stop_price),
        (d("0.00001000"), Some(d("0.23416100")), None)
    );
    // Cancelling one order of a list cancels the list: the report of the one named.
    let OrderAnswer::Cancelled { order } =
        t.decode(&p, &cancel(OrderRef::OrderId("12569099454".into())), &spot_answer(SPOT_CANCEL_LIST), 0).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (order.order_id.as_str(), order.order_type.as_str(), order.order_list_id),
        ("12569099454", "LIMIT_MAKER", Some(19431))
    );
    let OrderAnswer::Cancelled { order } = t
        .decode(
            &p,
            &cancel(OrderRef::ClientOrderId("bX5wROblo6YeDwa9iTLeyY".into())),
            &spot_answer(SPOT_CANCEL_LIST),
            0,
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((order.order_id.as_str(), order.stop_price), ("12569099453", Some(d("23430.00000000"))));

    let status =
        OrderRequest::Status(QueryOrder { symbol: "BTCUSDT".into(), order: OrderRef::OrderId("12569099453".into()) });
    let OrderAnswer::Status { order } = t.decode(&p, &status, &spot_answer(SPOT_STATUS), 0).unwrap() else { panic!() };
    assert_eq!((order.status.as_str(), order.filled_qty, order.stop_price), ("FILLED", d("0.00847000"), None));

    let open = OrderRequest::OpenOrders { symbol: "BTCUSDT".into() };
    let OrderAnswer::OpenOrders { orders } = t.decode(&p, &open, &spot_answer(SPOT_OPEN), 0).unwrap() else { panic!() };
    assert_eq!(orders.len(), 1);
    assert_eq!(
        (orders[0].status.as_str(), orders[0].execution_type.as_str(), orders[0].filled_qty),
        ("PARTIALLY_FILLED", "TRADE", d("0.00720000"))
    );
    assert_eq!(t.decode(&p, &open, &spot_answer("[]"), 0).unwrap(), OrderAnswer::OpenOrders { orders: vec![] });

    // openOrders.cancelAll: one order and an order list of two.
    let all = format!("[{SPOT_CANCEL},{SPOT_CANCEL_LIST}]");
    let cancel_all = OrderRequest::CancelAll { symbol: Some("BTCUSDT".into()) };
    assert_eq!(t.decode(&p, &cancel_all, &spot_answer(&all), 0).unwrap(), OrderAnswer::CancelledAll { count: Some(3) });

    let amend = |price: Option<&str>| {
        OrderRequest::Amend(AmendOrder {
            side: None,
            symbol: "BTCUSDT".into(),
            order: OrderRef::ClientOrderId("my_test_order1".into()),
            qty: Some(d("5")),
            price: price.map(d),
        })
    };
    let OrderAnswer::Amended { order, fills } = t.decode(&p, &amend(None), &spot_answer(SPOT_AMEND), 0).unwrap() else {
        panic!()
    };
    assert!(fills.is_empty());
    assert_eq!((order.order_id.as_str(), order.qty, order.price), ("12", d("5.00000000"), Some(d("5.00000000"))));
    assert_eq!((order.execution_type.as_str(), order.side), ("REPLACED", Side::Buy));
    assert_eq!(order.orig_client_order_id.as_deref(), Some("my_test_order1"));
    let OrderAnswer::Amended { order, .. } =
        t.decode(&p, &amend(Some("23416.1")), &spot_answer(SPOT_CANCEL_REPLACE), 0).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (order.order_id.as_str(), order.client_order_id.as_str(), order.status.as_str()),
        ("12569099453", "bX5wROblo6YeDwa9iTLeyY", "NEW")
    );
}

/// A docs error answer with its `rateLimits`.
fn spot_error(status: u16, error: &str) -> String {
    format!(r#"{{"id":8,"status":{status},"error":{error},"rateLimits":{SPOT_RATE_LIMITS}}}"#)
}

#[test]
fn spot_refusals_keep_the_venue_code_and_kind() {
    let p = ed(MarketType::Spot);
    let t = BinanceTrading;
    let refusal = |r: &OrderRequest, frame: &str| match t.decode(&p, r, frame, 0) {
        Err(TradeError::Refused(v)) => v,
        other => panic!("{frame}: {other:?}"),
    };
    let v = refusal(
        &spot_place_request(),
        &spot_error(400, r#"{"code":-2010,"msg":"Account has insufficient balance for requested action."}"#),
    );
    assert_eq!((v.venue, v.request, v.code, v.kind), ("binance", "place", -2010, RefusalKind::InsufficientFunds));
    assert_eq!((v.message.as_str(), v.detail), ("Account has insufficient balance for requested action.", None));
    let v = refusal(
        &spot_place_request(),
        &spot_error(429, r#"{"code":-1015,"msg":"Too many new orders; current limit is 50 orders per 10 SECOND."}"#),
    );
    assert_eq!(v.kind, RefusalKind::RateLimited);
    let banned = r#"{"code":-1003,"msg":"Way too much request weight used; IP banned until 1659146400000. Please use WebSocket Streams for live updates to avoid bans.","data":{"serverTime":1659142907531,"retryAfter":1659146400000}}"#;
    let v = refusal(&spot_place_request(), &spot_error(418, banned));
    assert_eq!(
        (v.kind, v.detail.as_deref()),
        (RefusalKind::RateLimited, Some(r#"{"serverTime":1659142907531,"retryAfter":1659146400000}"#))
    );

    // Cancel-replace: which half failed, and why, decides the kind.
    let reprice = OrderRequest::Amend(AmendOrder {
        side: None,
        symbol: "BTCUSDT".into(),
        order: OrderRef::ClientOrderId("4d96324ff9d44481926157".into()),
        qty: Some(d("0.00847000")),
        price: Some(d("23416.10000000")),
    });
    let failed = r#"{"code":-2022,"msg":"Order cancel-replace failed.","data":{"cancelResult":"FAILURE","newOrderResult":"NOT_ATTEMPTED","cancelResponse":{"code":-2011,"msg":"Unknown order sent."},"newOrderResponse":null}}"#;
    let v = refusal(&reprice, &spot_error(400, failed));
    assert_eq!((v.code, v.kind), (-2022, RefusalKind::OrderNotFound));
    assert!(v.message.contains("cancel FAILURE") && v.message.contains("-2011 Unknown order sent."), "{}", v.message);
    assert!(v.detail.as_deref().is_some_and(|d| d.contains("NOT_ATTEMPTED")));
    let partial = r#"{"code":-2021,"msg":"Order cancel-replace partially failed.","data":{"cancelResult":"SUCCESS","newOrderResult":"FAILURE","cancelResponse":{"symbol":"BTCUSDT","origClientOrderId":"4d96324ff9d44481926157","orderId":125690984230,"orderListId":-1,"clientOrderId":"91fe37ce9e69c90d6358c0","transactTime":1684804350068,"price":"23450.00000000","origQty":"0.00847000","executedQty":"0.00001000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.23450000","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"SELL","selfTradePreventionMode":"NONE"},"newOrderResponse":{"code":-2010,"msg":"Order would immediately match and take."}}}"#;
    let v = refusal(&reprice, &spot_error(409, partial));
    assert_eq!((v.code, v.kind), (-2021, RefusalKind::WouldTake));
    assert!(v.message.contains("cancel SUCCESS, new order FAILURE"), "{}", v.message);
    // The cancelled order is in the detail: the caller learns it is gone.
    assert!(v.detail.as_deref().is_some_and(|d| d.contains(r#""status":"CANCELED""#)));

    // A revoked session answers with no id; the engine never hands that to a
    // caller, but decode still reads it.
    let revoked =
        r#"{"id":null,"status":401,"error":{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}}"#;
    assert_eq!(refusal(&spot_place_request(), revoked).kind, RefusalKind::Unauthorized);
}

#[test]
fn error_codes_map_to_refusal_kinds() {
    use RefusalKind::*;
    let spot = |status, code, msg| refusal_kind(MarketType::Spot, status, code, msg);
    let usdm = |code, msg| refusal_kind(MarketType::UsdM, 400, code, msg);
    assert_eq!(spot(400, -2010, "Account has insufficient balance for requested action."), InsufficientFunds);
    assert_eq!(spot(400, -2010, "Order would immediately match and take."), WouldTake);
    assert_eq!(spot(400, -2010, "Duplicate order sent."), Other);
    assert_eq!(spot(400, -2010, "Market is closed."), UnknownInstrument);
    assert_eq!(spot(400, -1013, "Filter failure: PRICE_FILTER"), InvalidOrder);
    assert_eq!(spot(400, -2010, "Filter failure: MAX_NUM_ORDERS"), InvalidOrder);
    assert_eq!(spot(400, -1111, "Parameter 'quantity' has too much precision."), InvalidOrder);
    for code in [-1100, -1101, -1102, -1103, -1104, -1105, -1106] {
        assert_eq!(spot(400, code, "x"), InvalidOrder, "{code}");
    }
    assert_eq!(spot(400, -2011, "Unknown order sent."), OrderNotFound);
    assert_eq!(spot(400, -2013, "Order does not exist."), OrderNotFound);
    assert_eq!(spot(400, -2038, "Order amend (quantity increase) is not supported."), InvalidOrder);
    assert_eq!(spot(400, -2038, "Unknown order sent."), OrderNotFound);
    assert_eq!(spot(429, -1015, "Too many new orders."), RateLimited);
    assert_eq!(spot(418, -1003, "Way too much request weight used"), RateLimited);
    assert_eq!(spot(429, -9999, "x"), RateLimited);
    for code in [-2014, -2015, -1022, -1021] {
        assert_eq!(spot(400, code, "x"), Unauthorized, "{code}");
    }
    assert_eq!(spot(400, -1121, "Invalid symbol."), UnknownInstrument);
    assert_eq!(spot(400, -1000, "An unknown error occurred while processing the request."), Other);
    // USD-M codes (error-code page); -2022 is REDUCE_ONLY_REJECT there.
    assert_eq!(usdm(-2019, "Margin is insufficient."), InsufficientFunds);
    assert_eq!(usdm(-2018, "Balance is insufficient."), InsufficientFunds);
    assert_eq!(
        usdm(-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected."),
        WouldTake
    );
    assert_eq!(usdm(-2022, "ReduceOnly Order is rejected."), InvalidOrder);
    assert_eq!(
        usdm(-4164, "Order's notional must be no smaller than 5.0 (unless you choose reduce only)"),
        InvalidOrder
    );
    assert_eq!(usdm(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."), InvalidOrder);
    assert_eq!(usdm(-2013, "Order does not exist."), OrderNotFound);
    assert_eq!(refusal_kind(MarketType::Spot, 400, -2018, "x"), Other);
}

const USDM_RATE_LIMITS: &str = r#"[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":300,"count":1},{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200,"count":1},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":1}]"#;

fn usdm_answer(result: &str) -> String {
    format!(r#"{{"id":5,"status":200,"result":{result},"rateLimits":{USDM_RATE_LIMITS}}}"#)
}

/// USD-M `trade/websocket-api` (New Order) response.
const USDM_PLACE: &str = r#"{"orderId":325078477,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"iCXL1BywlBaf2sesNUrVl3","price":"43187.00","avgPrice":"0.00","origQty":"0.100","executedQty":"0.000","cumQty":"0.000","cumQuote":"0.00000","timeInForce":"GTC","type":"LIMIT","reduceOnly":false,"closePosition":false,"side":"BUY","positionSide":"BOTH","stopPrice":"0.00","workingType":"CONTRACT_PRICE","priceProtect":false,"origType":"LIMIT","priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0,"updateTime":1702555534435}"#;

/// USD-M `Modify-Order` response.
const USDM_MODIFY: &str = r#"{"orderId":328971409,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"xGHfltUMExx0TbQstQQfRX","price":"43769.10","avgPrice":"0.00","origQty":"0.110","executedQty":"0.000","cumQty":"0.000","cumQuote":"0.00000","timeInForce":"GTC","type":"LIMIT","reduceOnly":false,"closePosition":false,"side":"SELL","positionSide":"SHORT","stopPrice":"0.00","workingType":"CONTRACT_PRICE","priceProtect":false,"origType":"LIMIT","priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0,"updateTime":1703426756190}"#;

/// USD-M `Cancel-Order` response.
const USDM_CANCEL: &str = r#"{"clientOrderId":"myOrder1","cumQty":"0","cumQuote":"0","executedQty":"0","orderId":283194212,"origQty":"11","origType":"TRAILING_STOP_MARKET","price":"0","reduceOnly":false,"side":"BUY","positionSide":"SHORT","status":"CANCELED","stopPrice":"9300","closePosition":false,"symbol":"BTCUSDT","timeInForce":"GTC","type":"TRAILING_STOP_MARKET","activatePrice":"9020","priceRate":"0.3","updateTime":1571110484038,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0}"#;

/// USD-M `Query-Order` response (it carries no `rateLimits`).
const USDM_STATUS: &str = r#"{"id":"605a6d20-6588-4cb9-afa0-b0ab087507ba","status":200,"result":{"avgPrice":"0.00000","clientOrderId":"abc","cumQuote":"0","executedQty":"0","orderId":1917641,"origQty":"0.40","origType":"TRAILING_STOP_MARKET","price":"0","reduceOnly":false,"side":"BUY","positionSide":"SHORT","status":"NEW","stopPrice":"9300","closePosition":false,"symbol":"BTCUSDT","time":1579276756075,"timeInForce":"GTC","type":"TRAILING_STOP_MARKET","activatePrice":"9020","priceRate":"0.3","updateTime":1579276756075,"workingType":"CONTRACT_PRICE","priceProtect":false}}"#;

#[test]
fn usdm_answers_decode_into_typed_answers() {
    let p = hmac(MarketType::UsdM);
    let t = BinanceTrading;
    let req = OrderRequest::Place(PlaceOrder {
        symbol: "BTCUSDT".into(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        qty: d("0.1"),
        price: Some(d("43187")),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        client_order_id: None,
    });
    let OrderAnswer::Placed { order, fills } = t.decode(&p, &req, &usdm_answer(USDM_PLACE), 0).unwrap() else {
        panic!()
    };
    assert!(fills.is_empty(), "USD-M answers carry no fills");
    assert_eq!((order.order_id.as_str(), order.client_order_id.as_str()), ("325078477", "iCXL1BywlBaf2sesNUrVl3"));
    assert_eq!((order.status.as_str(), order.execution_type.as_str()), ("NEW", "NEW"));
    assert_eq!(
        (order.price, order.qty, order.filled_qty, order.avg_price),
        (Some(d("43187.00")), d("0.100"), d("0.000"), None)
    );
    assert_eq!(
        (order.reduce_only, order.close_position, order.position_side),
        (Some(false), Some(false), Some(PositionSide::Both))
    );
    assert_eq!((order.stop_price, order.activation_price, order.callback_rate), (None, None, None));

    let amend = OrderRequest::Amend(AmendOrder {
        side: None,
        symbol: "BTCUSDT".into(),
        order: OrderRef::OrderId("328971409".into()),
        qty: Some(d("0.11")),
        price: Some(d("43769.1")),
    });
    let OrderAnswer::Amended { order, fills } = t.decode(&p, &amend, &usdm_answer(USDM_MODIFY), 0).unwrap() else {
        panic!()
    };
    assert!(fills.is_empty());
    assert_eq!((order.execution_type.as_str(), order.price, order.qty), ("AMENDMENT", Some(d("43769.10")), d("0.110")));
    assert_eq!((order.side, order.position_side), (Side::Sell, Some(PositionSide::Short)));

    let cancel =
        OrderRequest::Cancel(CancelOrder { symbol: "BTCUSDT".into(), order: OrderRef::OrderId("283194212".into()) });
    let OrderAnswer::Cancelled { order } = t.decode(&p, &cancel, &usdm_answer(USDM_CANCEL), 0).unwrap() else {
        panic!()
    };
    assert_eq!((order.status.as_str(), order.order_type.as_str()), ("CANCELED", "TRAILING_STOP_MARKET"));
    assert_eq!(
        (order.stop_price, order.activation_price, order.callback_rate),
        (Some(d("9300")), Some(d("9020")), Some(d("0.3")))
    );

    let status =
        OrderRequest::Status(QueryOrder { symbol: "BTCUSDT".into(), order: OrderRef::OrderId("1917641".into()) });
    let OrderAnswer::Status { order } = t.decode(&p, &status, USDM_STATUS, 0).unwrap() else { panic!() };
    assert_eq!((order.order_id.as_str(), order.qty, order.avg_price), ("1917641", d("0.40"), None));

    // A filled market order (RESULT): the average price is kept.
    let filled = USDM_PLACE
        .replace(r#""status":"NEW""#, r#""status":"FILLED""#)
        .replace(r#""executedQty":"0.000""#, r#""executedQty":"0.100""#)
        .replace(r#""avgPrice":"0.00""#, r#""avgPrice":"43180.50""#);
    let OrderAnswer::Placed { order, .. } = t.decode(&p, &req, &usdm_answer(&filled), 0).unwrap() else { panic!() };
    assert_eq!((order.execution_type.as_str(), order.avg_price), ("TRADE", Some(d("43180.50"))));

    // The docs' failed response.
    let e = t
        .decode(&p, &req, r#"{"id":"5761b939-27b1-4948-ab87-4a372a3f6b72","status":400,"error":{"code":-1102,"msg":"Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."}}"#, 0)
        .unwrap_err();
    let TradeError::Refused(v) = e else { panic!("{e}") };
    assert_eq!((v.code, v.kind, v.request), (-1102, RefusalKind::InvalidOrder, "place"));
    // A malformed order is an unreadable answer that keeps the frame.
    let bad = usdm_answer(&USDM_PLACE.replace(r#""price":"43187.00""#, r#""price":43187.0"#));
    assert!(matches!(t.decode(&p, &req, &bad, 0), Err(TradeError::Answer { frame, .. }) if frame == bad));
}

#[test]
fn rate_limits_of_an_answer_are_read_for_the_guard() {
    let t = BinanceTrading;
    let spot = t.rate_usage(MarketType::Spot, &spot_answer(SPOT_PLACE_FULL));
    assert_eq!(spot.len(), 2, "REQUEST_WEIGHT is not an order limit: {spot:?}");
    let limits = t.order_limits(MarketType::Spot);
    assert_eq!(
        spot.iter().map(|u| u.limit.clone()).collect::<Vec<_>>(),
        limits,
        "same names and windows as order_limits"
    );
    assert_eq!(
        limits,
        vec![
            RateLimit { name: "ORDERS".into(), window: Duration::from_secs(10), limit: 50 },
            RateLimit { name: "ORDERS".into(), window: Duration::from_secs(86_400), limit: 160_000 },
        ]
    );
    assert!(spot.iter().all(|u| u.used == 1 && u.resets_at_ms.is_none()));
    // The docs' "12 orders in 10 seconds, 4043 in the past 24 hours".
    let busy =
        SPOT_RATE_LIMITS.replacen(r#""count":1"#, r#""count":12"#, 1).replacen(r#""count":1}"#, r#""count":4043}"#, 1);
    let used: Vec<u64> = t
        .rate_usage(MarketType::Spot, &spot_error(400, r#"{"code":-2010,"msg":"x"}"#).replace(SPOT_RATE_LIMITS, &busy))
        .iter()
        .map(|u| u.used)
        .collect();
    assert_eq!(used, vec![12, 4043]);

    let usdm = t.rate_usage(MarketType::UsdM, &usdm_answer(USDM_PLACE));
    assert_eq!(usdm.iter().map(|u| u.limit.clone()).collect::<Vec<_>>(), t.order_limits(MarketType::UsdM));
    assert_eq!(usdm[1].limit.window, Duration::from_secs(60));
    assert!(t.rate_usage(MarketType::UsdM, USDM_STATUS).is_empty());
    assert!(t.rate_usage(MarketType::Spot, "not json").is_empty());
    assert!(t.order_limits(MarketType::CoinM).is_empty());
}

#[test]
fn the_trading_connection_classifies_every_answer_by_its_id() {
    let rules = ed(MarketType::Spot).session.rules;
    assert_eq!(rules.classify(&spot_answer(SPOT_PLACE_FULL)), Inbound::Ack { id: 8 });
    assert!(matches!(
        rules.classify(&spot_error(400, r#"{"code":-2010,"msg":"Order would immediately match and take."}"#)),
        Inbound::Rejected { id: Some(8), code: -2010, .. }
    ));
    assert!(matches!(
        rules.classify(r#"{"id":3,"status":503,"error":{"code":-1007,"msg":"Timeout"}}"#),
        Inbound::Rejected { id: Some(3), .. }
    ));
    assert_eq!(
        rules.classify(r#"{"id":"logon-2","status":200,"result":{"apiKey":"k","authorizedSince":1,"connectedSince":1,"returnRateLimits":false,"serverTime":1}}"#),
        Inbound::AuthOk
    );
    assert!(matches!(
        rules.classify(r#"{"id":"logon-2","status":401,"error":{"code":-1022,"msg":"Signature for this request is not valid."}}"#),
        Inbound::AuthFailed { msg } if msg.contains("-1022")
    ));
    assert!(matches!(
        rules.classify(
            r#"{"id":null,"status":401,"error":{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}}"#
        ),
        Inbound::Rejected { id: None, code: -2015, .. }
    ));
    assert_eq!(rules.classify(r#"{"event":{"e":"serverShutdown","E":1770123456789}}"#), Inbound::Shutdown);
    // A string id we never send is no answer of ours.
    assert_eq!(rules.classify(r#"{"id":"other","status":200,"result":{}}"#), Inbound::Unknown);
    assert!(matches!(rules.classify("{"), Inbound::Malformed(_)));
}
