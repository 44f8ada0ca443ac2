//! Bybit's order API over `/v5/trade` through its `TradingSpec`: every request
//! shape as the JSON the venue documents (bybit-exchange/docs
//! `docs/v5/websocket/trade/guideline.mdx` and `docs/v5/order/*.mdx`), the
//! shapes the venue refuses refused before sending, the documented answers
//! (inline, from the guideline and the batch pages) decoded into typed
//! answers and refusals, each retCode's refusal kind, the rate-limit header,
//! the connection's rules matching every answer to its request by `reqId`,
//! and no secret in any `Debug` output or frame.

use std::sync::Arc;

use ferrofeed_model::Decimal;
use ferrofeed_model::event::{MarketType, Side, Venue};
use ferrofeed_model::rules::{ClientPing, Inbound};
use ferrofeed_venues::VenueSpec;
use ferrofeed_venues::auth::{Clock, Credentials};
use ferrofeed_venues::bybit::spec::Bybit;
use ferrofeed_venues::bybit::trade::{BybitTrading, refusal_kind};
use ferrofeed_venues::env::Environment;
use ferrofeed_venues::trading::{
    AmendOrder, BatchItem, CancelOrder, OrderAnswer, OrderRef, OrderRequest, OrderType, PlaceOrder, QueryOrder,
    RateLimit, RefusalKind, TimeInForce, TradeError, TradingPlan, TradingSpec,
};
use serde_json::{Value, json};

const KEY: &str = "Xk9apiKEYvalue00";
const SECRET: &str = "s3cr3tBYBITvalueZZ";

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn creds() -> Arc<Credentials> {
    Arc::new(Credentials::hmac(KEY, SECRET).unwrap())
}

fn plan_in(market: MarketType, env: &Environment) -> TradingPlan {
    BybitTrading.plan(market, "unified", env, creds(), Arc::new(Clock::new(8000))).unwrap()
}

fn plan(market: MarketType) -> TradingPlan {
    plan_in(market, &Environment::Production)
}

fn enc(market: MarketType, id: u64, r: &OrderRequest) -> Value {
    let f = BybitTrading.encode(&plan(market), id, r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
    serde_json::from_str(&f).unwrap()
}

/// The one request object of a single op.
fn arg(market: MarketType, r: &OrderRequest) -> Value {
    enc(market, 1, r)["args"][0].clone()
}

fn limit(symbol: &str) -> PlaceOrder {
    PlaceOrder {
        symbol: symbol.into(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        qty: d("0.2"),
        price: Some(d("2800")),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        client_order_id: None,
    }
}

fn place(p: PlaceOrder) -> OrderRequest {
    OrderRequest::Place(p)
}

fn amend(order: OrderRef, qty: Option<&str>, price: Option<&str>) -> OrderRequest {
    OrderRequest::Amend(AmendOrder {
        side: None,
        symbol: "ETHUSDT".into(),
        order,
        qty: qty.map(d),
        price: price.map(d),
    })
}

fn cancel(order: OrderRef) -> OrderRequest {
    OrderRequest::Cancel(CancelOrder { symbol: "ETHUSDT".into(), order })
}

fn oid(s: &str) -> OrderRef {
    OrderRef::OrderId(s.into())
}

fn link(s: &str) -> OrderRef {
    OrderRef::ClientOrderId(s.into())
}

#[test]
fn requests_carry_req_id_header_op_and_one_arg() {
    let v = enc(MarketType::Linear, 42, &place(PlaceOrder { post_only: true, ..limit("ethusdt") }));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{v}");
    assert_eq!((v["reqId"].as_str(), v["op"].as_str()), (Some("42"), Some("order.create")));
    // The plan's clock: the venue time in ms, and its recv window.
    let ts: i64 = v["header"]["X-BAPI-TIMESTAMP"].as_str().unwrap().parse().unwrap();
    assert!(ts > 1_700_000_000_000, "{ts}");
    assert_eq!(v["header"]["X-BAPI-RECV-WINDOW"], "8000");
    assert_eq!(v["header"].as_object().unwrap().len(), 2);
    // The guideline's request example.
    assert_eq!(
        v["args"],
        json!([{"symbol":"ETHUSDT","side":"Buy","orderType":"Limit","qty":"0.2","price":"2800",
            "category":"linear","timeInForce":"PostOnly"}])
    );
}

#[test]
fn place_shapes() {
    use MarketType::*;
    // Exact decimal strings, trailing zeros dropped; GTC, IOC, FOK; client id; reduce only.
    let p = PlaceOrder {
        side: Side::Sell,
        qty: d("0.0100"),
        price: Some(d("64250.50")),
        time_in_force: TimeInForce::Ioc,
        reduce_only: true,
        client_order_id: Some("usdt-test_01".into()),
        ..limit("BTCUSDT")
    };
    assert_eq!(
        arg(Linear, &place(p.clone())),
        json!({"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Limit","qty":"0.01",
            "price":"64250.5","timeInForce":"IOC","orderLinkId":"usdt-test_01","reduceOnly":true})
    );
    let fok = PlaceOrder { time_in_force: TimeInForce::Fok, reduce_only: false, ..p.clone() };
    assert_eq!(arg(Inverse, &place(fok))["timeInForce"], "FOK");
    assert_eq!(arg(Inverse, &place(limit("BTCUSD")))["category"], "inverse");
    assert_eq!(arg(Inverse, &place(limit("BTCUSD")))["timeInForce"], "GTC");
    // Market: no price, IOC (the venue runs every market order as IOC).
    let m = PlaceOrder { order_type: OrderType::Market, price: None, ..limit("BTCUSDT") };
    assert_eq!(
        arg(Linear, &place(m.clone())),
        json!({"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.2",
            "timeInForce":"IOC"})
    );
    // Spot market orders state that qty is in the base coin.
    assert_eq!(
        arg(Spot, &place(m)),
        json!({"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.2",
            "timeInForce":"IOC","marketUnit":"baseCoin"})
    );
    assert!(arg(Spot, &place(limit("BTCUSDT"))).get("marketUnit").is_none());
    // Option: its full name, a client id (required there).
    let o = PlaceOrder { client_order_id: Some("opt-1".into()), ..limit("btc-27dec26-100000-c") };
    let a = arg(Options, &place(o));
    assert_eq!((a["category"].as_str(), a["symbol"].as_str()), (Some("option"), Some("BTC-27DEC26-100000-C")));
    assert_eq!(a["orderLinkId"], "opt-1");
}

#[test]
fn amend_and_cancel_shapes() {
    use MarketType::Linear;
    assert_eq!(
        arg(Linear, &amend(oid("a4c1718e-fe53-4659-a118-1f6ecce04ad9"), Some("0.30"), Some("2801.0"))),
        json!({"category":"linear","symbol":"ETHUSDT","orderId":"a4c1718e-fe53-4659-a118-1f6ecce04ad9",
            "qty":"0.3","price":"2801"})
    );
    assert_eq!(
        arg(Linear, &amend(link("my-1"), None, Some("2790.5"))),
        json!({"category":"linear","symbol":"ETHUSDT","orderLinkId":"my-1","price":"2790.5"})
    );
    assert_eq!(
        arg(Linear, &amend(oid("1"), Some("2"), None)),
        json!({"category":"linear","symbol":"ETHUSDT","orderId":"1","qty":"2"})
    );
    assert_eq!(enc(Linear, 3, &amend(oid("1"), Some("2"), None))["op"], "order.amend");
    assert_eq!(
        arg(Linear, &cancel(oid("1666800494330512128"))),
        json!({"category":"linear","symbol":"ETHUSDT","orderId":"1666800494330512128"})
    );
    assert_eq!(
        arg(Linear, &cancel(link("my-1"))),
        json!({"category":"linear","symbol":"ETHUSDT","orderLinkId":"my-1"})
    );
    assert_eq!(enc(Linear, 3, &cancel(link("my-1")))["op"], "order.cancel");
}

#[test]
fn batches_name_the_category_once() {
    use MarketType::*;
    let items: Vec<OrderRequest> = (0..3)
        .map(|i| place(PlaceOrder { client_order_id: Some(format!("batch-00{i}")), ..limit("SOLUSDT") }))
        .collect();
    let v = enc(Linear, 9, &OrderRequest::Batch { items });
    assert_eq!((v["reqId"].as_str(), v["op"].as_str()), (Some("9"), Some("order.create-batch")));
    assert!(v["header"]["X-BAPI-TIMESTAMP"].is_string());
    assert_eq!(v["args"].as_array().unwrap().len(), 1);
    assert_eq!(v["args"][0]["category"], "linear");
    let req = v["args"][0]["request"].as_array().unwrap();
    assert_eq!(req.len(), 3);
    assert_eq!(
        req[1],
        json!({"symbol":"SOLUSDT","side":"Buy","orderType":"Limit","qty":"0.2","price":"2800",
            "timeInForce":"GTC","orderLinkId":"batch-001"})
    );
    let v = enc(
        Spot,
        2,
        &OrderRequest::Batch { items: vec![amend(oid("1"), None, Some("1")), amend(link("x"), Some("1"), None)] },
    );
    assert_eq!((v["op"].as_str(), v["args"][0]["category"].as_str()), (Some("order.amend-batch"), Some("spot")));
    assert_eq!(
        v["args"][0]["request"],
        json!([{"symbol":"ETHUSDT","orderId":"1","price":"1"},
        {"symbol":"ETHUSDT","orderLinkId":"x","qty":"1"}])
    );
    let v = enc(Options, 2, &OrderRequest::Batch { items: vec![cancel(oid("1")), cancel(link("b"))] });
    assert_eq!((v["op"].as_str(), v["args"][0]["category"].as_str()), (Some("order.cancel-batch"), Some("option")));
    assert_eq!(
        v["args"][0]["request"],
        json!([{"symbol":"ETHUSDT","orderId":"1"},{"symbol":"ETHUSDT","orderLinkId":"b"}])
    );
    // The documented maxima: 20 per request, 10 on spot.
    let n = |k: usize| OrderRequest::Batch { items: (0..k).map(|i| cancel(oid(&i.to_string()))).collect() };
    assert!(BybitTrading.encode(&plan(Linear), 1, &n(20)).is_ok());
    assert!(BybitTrading.encode(&plan(Options), 1, &n(20)).is_ok());
    assert!(BybitTrading.encode(&plan(Spot), 1, &n(10)).is_ok());
    for (m, k) in [(Linear, 21), (Inverse, 21), (Options, 21), (Spot, 11), (Linear, 0)] {
        assert!(matches!(BybitTrading.encode(&plan(m), 1, &n(k)), Err(TradeError::Invalid { .. })), "{m:?} {k}");
    }
}

#[test]
fn shapes_the_venue_refuses_are_refused_before_sending() {
    use MarketType::*;
    let refused = |m: MarketType, r: OrderRequest| -> String {
        match BybitTrading.encode(&plan(m), 1, &r) {
            Err(TradeError::Invalid { request, reason }) => {
                assert_eq!(request, r.name());
                reason
            }
            other => panic!("{r:?} was not refused: {other:?}"),
        }
    };
    refused(Linear, place(PlaceOrder { price: None, ..limit("BTCUSDT") }));
    refused(Linear, place(PlaceOrder { order_type: OrderType::Market, ..limit("BTCUSDT") }));
    refused(Linear, place(PlaceOrder { qty: d("0"), ..limit("BTCUSDT") }));
    refused(Linear, place(PlaceOrder { qty: d("-1"), ..limit("BTCUSDT") }));
    refused(Linear, place(PlaceOrder { price: Some(d("-0.5")), ..limit("BTCUSDT") }));
    refused(Linear, place(PlaceOrder { post_only: true, time_in_force: TimeInForce::Ioc, ..limit("BTCUSDT") }));
    refused(
        Linear,
        place(PlaceOrder { post_only: true, order_type: OrderType::Market, price: None, ..limit("BTCUSDT") }),
    );
    refused(
        Linear,
        place(PlaceOrder {
            order_type: OrderType::Market,
            price: None,
            time_in_force: TimeInForce::Fok,
            ..limit("BTCUSDT")
        }),
    );
    assert!(refused(Spot, place(PlaceOrder { reduce_only: true, ..limit("BTCUSDT") })).contains("spot"));
    assert!(refused(Options, place(limit("BTC-27DEC26-100000-C"))).contains("orderLinkId"));
    refused(Linear, place(PlaceOrder { client_order_id: Some("x".repeat(37)), ..limit("BTCUSDT") }));
    refused(Linear, place(PlaceOrder { client_order_id: Some(String::new()), ..limit("BTCUSDT") }));
    refused(Linear, place(PlaceOrder { client_order_id: Some("a.b".into()), ..limit("BTCUSDT") }));
    refused(Linear, place(limit("BTC USDT")));
    assert!(
        BybitTrading
            .encode(&plan(Linear), 1, &place(PlaceOrder { client_order_id: Some("x".repeat(36)), ..limit("BTCUSDT") }))
            .is_ok()
    );
    // An amend that changes nothing, or names no order.
    assert!(refused(Linear, amend(oid("1"), None, None)).contains("quantity or the price"));
    refused(Linear, amend(oid("1"), Some("0"), None));
    refused(Linear, amend(oid(""), Some("1"), None));
    refused(Linear, cancel(oid(" ")));
    refused(Linear, cancel(link("bad id")));
    // Not on /v5/trade.
    let status = OrderRequest::Status(QueryOrder { symbol: "BTCUSDT".into(), order: oid("1") });
    assert!(refused(Linear, status).contains("/v5/order/realtime"));
    assert!(refused(Linear, OrderRequest::OpenOrders { symbol: "BTCUSDT".into() }).contains("REST"));
    assert!(refused(Linear, OrderRequest::CancelAll { symbol: None }).contains("/v5/order/cancel-all"));
    assert!(refused(Linear, OrderRequest::CancelAll { symbol: Some("BTCUSDT".into()) }).contains("cancel-all"));
    // Batches: one kind, no nesting, each item valid.
    refused(Linear, OrderRequest::Batch { items: vec![place(limit("BTCUSDT")), cancel(oid("1"))] });
    refused(Linear, OrderRequest::Batch { items: vec![OrderRequest::Batch { items: vec![cancel(oid("1"))] }] });
    refused(Linear, OrderRequest::Batch { items: vec![OrderRequest::CancelAll { symbol: None }] });
    let r = refused(
        Linear,
        OrderRequest::Batch { items: vec![place(limit("BTCUSDT")), place(PlaceOrder { price: None, ..limit("X") })] },
    );
    assert!(r.starts_with("item 1:"), "{r}");
}

fn decode(r: &OrderRequest, frame: &str) -> Result<OrderAnswer, TradeError> {
    BybitTrading.decode(&plan(MarketType::Linear), r, frame, 0)
}

fn refusal(r: &OrderRequest, frame: &str) -> ferrofeed_venues::trading::VenueRefusal {
    match decode(r, frame) {
        Err(TradeError::Refused(v)) => v,
        other => panic!("{frame}: {other:?}"),
    }
}

/// guideline.mdx, "Create/Amend/Cancel Order", Response Example.
const CREATE_OK: &str = r#"{"reqId":"test-005","retCode":0,"retMsg":"OK","op":"order.create","data":{"orderId":"a4c1718e-fe53-4659-a118-1f6ecce04ad9","orderLinkId":""},"retExtInfo":{},"header":{"X-Bapi-Limit":"10","X-Bapi-Limit-Status":"9","X-Bapi-Limit-Reset-Timestamp":"1711001595208","Traceid":"38b7977b430f9bd228f4b19724794dfd","Timenow":"1711001595209"},"connId":"cnt5leec0hvan15eukcg-2v"}"#;

/// guideline.mdx, "Batch Create/Amend/Cancel Order", Response Example:
/// every item refused by position mode.
const BATCH_REFUSED: &str = r#"{"retCode":0,"retMsg":"OK","op":"order.create-batch","data":{"list":[{"category":"linear","symbol":"SOLUSDT","orderId":"","orderLinkId":"batch-000","createAt":""},{"category":"linear","symbol":"SOLUSDT","orderId":"","orderLinkId":"batch-001","createAt":""},{"category":"linear","symbol":"SOLUSDT","orderId":"","orderLinkId":"batch-002","createAt":""}]},"retExtInfo":{"list":[{"code":10001,"msg":"position idx not match position mode"},{"code":10001,"msg":"position idx not match position mode"},{"code":10001,"msg":"position idx not match position mode"}]},"header":{"Timenow":"1740453408556","X-Bapi-Limit":"150","X-Bapi-Limit-Status":"147","X-Bapi-Limit-Reset-Timestamp":"1740453408555","Traceid":"0e32b551b3e17aae77651aadf6a5be80"},"connId":"cupviqn88smf24t2kpb0-536o"}"#;

/// batch-cancel.mdx's result and retExtInfo (one found, one not), in the
/// socket's envelope.
const BATCH_MIXED: &str = r#"{"reqId":"11","retCode":0,"retMsg":"OK","op":"order.cancel-batch","data":{"list":[{"category":"spot","symbol":"BTCUSDT","orderId":"1666800494330512128","orderLinkId":"spot-btc-03"},{"category":"spot","symbol":"ATOMUSDT","orderId":"","orderLinkId":"1666800494330512129"}]},"retExtInfo":{"list":[{"code":0,"msg":"OK"},{"code":170213,"msg":"Order does not exist."}]},"header":{"X-Bapi-Limit":"20","X-Bapi-Limit-Status":"18","X-Bapi-Limit-Reset-Timestamp":"1713434299047","Traceid":"x","Timenow":"1713434299047"},"connId":"c"}"#;

#[test]
fn documented_answers_decode() {
    let create = place(limit("ETHUSDT"));
    assert_eq!(
        decode(&create, CREATE_OK).unwrap(),
        OrderAnswer::Accepted { order_id: "a4c1718e-fe53-4659-a118-1f6ecce04ad9".into(), client_order_id: None }
    );
    // nautilus_trader's `ws_order_response.json` shape: the client id echoed.
    let with_link = r#"{"op":"order.create","retCode":0,"retMsg":"OK","connId":"c","reqId":"5","data":{"orderId":"1726025498520715008","orderLinkId":"client-order-1"}}"#;
    assert_eq!(
        decode(&create, with_link).unwrap(),
        OrderAnswer::Accepted {
            order_id: "1726025498520715008".into(),
            client_order_id: Some("client-order-1".into())
        }
    );
    let amended = r#"{"reqId":"6","retCode":0,"retMsg":"OK","op":"order.amend","data":{"orderId":"c6f055d9-7f21-4079-913d-e6523a9cfffa","orderLinkId":"linear-004"},"retExtInfo":{},"header":{},"connId":"c"}"#;
    assert_eq!(
        decode(&amend(link("linear-004"), Some("1"), None), amended).unwrap(),
        OrderAnswer::Accepted {
            order_id: "c6f055d9-7f21-4079-913d-e6523a9cfffa".into(),
            client_order_id: Some("linear-004".into())
        }
    );
    let cancelled = amended.replace("order.amend", "order.cancel");
    assert!(matches!(decode(&cancel(oid("c6f055d9")), &cancelled), Ok(OrderAnswer::Accepted { .. })));

    // A batch answers each item: all refused here, by the venue's code.
    let items: Vec<OrderRequest> = (0..3).map(|_| place(limit("SOLUSDT"))).collect();
    let OrderAnswer::Batch { items: answered } = decode(&OrderRequest::Batch { items }, BATCH_REFUSED).unwrap() else {
        panic!()
    };
    assert_eq!(answered.len(), 3);
    for (i, a) in answered.iter().enumerate() {
        let BatchItem::Refusal(r) = a else { panic!("{a:?}") };
        assert_eq!((r.venue, r.request, r.code), ("bybit", "place", 10001));
        assert_eq!((r.message.as_str(), r.kind), ("position idx not match position mode", RefusalKind::InvalidOrder));
        let detail: Value = serde_json::from_str(r.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["orderLinkId"], format!("batch-00{i}"));
    }
    // A mixed batch: the first carried out, the second refused alone.
    let batch = OrderRequest::Batch { items: vec![cancel(oid("1666800494330512128")), cancel(link("x"))] };
    let OrderAnswer::Batch { items } = decode(&batch, BATCH_MIXED).unwrap() else { panic!() };
    assert_eq!(
        items[0],
        BatchItem::Answer(Box::new(OrderAnswer::Accepted {
            order_id: "1666800494330512128".into(),
            client_order_id: Some("spot-btc-03".into())
        }))
    );
    let BatchItem::Refusal(r) = &items[1] else { panic!("{:?}", items[1]) };
    assert_eq!((r.request, r.code, r.kind), ("cancel", 170213, RefusalKind::OrderNotFound));
    assert_eq!(r.message, "Order does not exist.");
}

#[test]
fn refusals_keep_the_venue_code_and_its_kind() {
    let create = place(limit("ETHUSDT"));
    // The shape of a refused order op (data and retExtInfo empty; ccxt
    // records 110007 "ab not enough for new order").
    let frame = |code: i64, msg: &str| {
        format!(
            r#"{{"reqId":"8","retCode":{code},"retMsg":"{msg}","op":"order.create","data":{{}},"retExtInfo":{{}},"header":{{"X-Bapi-Limit":"10","X-Bapi-Limit-Status":"8","X-Bapi-Limit-Reset-Timestamp":"1","Traceid":"t","Timenow":"1"}},"connId":"c"}}"#
        )
    };
    let r = refusal(&create, &frame(110007, "ab not enough for new order"));
    assert_eq!((r.venue, r.request, r.code), ("bybit", "place", 110007));
    assert_eq!(
        (r.message.as_str(), r.kind, r.detail),
        ("ab not enough for new order", RefusalKind::InsufficientFunds, None)
    );
    let cases = [
        (110004, "Wallet balance is insufficient", RefusalKind::InsufficientFunds),
        (110012, "Insufficient available balance.", RefusalKind::InsufficientFunds),
        (170131, "Balance insufficient", RefusalKind::InsufficientFunds),
        (110001, "order not exists or too late to cancel", RefusalKind::OrderNotFound),
        (110008, "The order has been completed or cancelled.", RefusalKind::OrderNotFound),
        (170213, "Order does not exist.", RefusalKind::OrderNotFound),
        (10006, "Too many visits!", RefusalKind::RateLimited),
        (10018, "Exceeded the IP Rate Limit.", RefusalKind::RateLimited),
        (10403, "exceed IP rate limit", RefusalKind::RateLimited),
        (10429, "System level frequency protection", RefusalKind::RateLimited),
        (10003, "API key is invalid.", RefusalKind::Unauthorized),
        (10004, "Error sign", RefusalKind::Unauthorized),
        (10005, "Permission denied", RefusalKind::Unauthorized),
        (10001, "params error: qty invalid", RefusalKind::InvalidOrder),
        (110003, "Order price exceeds the allowable range.", RefusalKind::InvalidOrder),
        (170136, "Order quantity lower than the minimum.", RefusalKind::InvalidOrder),
        (10001, "params error: Symbol Is Invalid", RefusalKind::UnknownInstrument),
        (170121, "Invalid symbol.", RefusalKind::UnknownInstrument),
        (110074, "This contract is not live", RefusalKind::UnknownInstrument),
        (170218, "The LIMIT-MAKER order is rejected due to invalid price.", RefusalKind::WouldTake),
        (20006, "reqId is duplicated", RefusalKind::Other),
        (10404, "op type is not found", RefusalKind::Other),
        (10016, "Server error.", RefusalKind::Other),
    ];
    for (code, msg, kind) in cases {
        let r = refusal(&create, &frame(code, msg));
        assert_eq!((r.code, r.kind, r.message.as_str()), (code, kind, msg), "{code}");
        assert_eq!(refusal_kind(code, msg), kind);
    }
    // A whole batch refused: one refusal for the request.
    let batch = OrderRequest::Batch { items: vec![cancel(oid("1"))] };
    let r = refusal(
        &batch,
        r#"{"reqId":"3","retCode":10001,"retMsg":"params error: request must hold 1 to 20 orders","op":"order.cancel-batch","data":{},"retExtInfo":{},"connId":"c"}"#,
    );
    assert_eq!((r.request, r.code, r.kind), ("batch", 10001, RefusalKind::InvalidOrder));
}

#[test]
fn unreadable_answers_keep_the_frame() {
    let create = place(limit("ETHUSDT"));
    let batch = OrderRequest::Batch { items: vec![cancel(oid("1")), cancel(oid("2"))] };
    let no_ext = format!("{}}}", BATCH_MIXED.split(r#","retExtInfo"#).next().unwrap_or(""));
    let short_ext = BATCH_MIXED.replace(r#"{"code":0,"msg":"OK"},"#, "");
    let cases: [(&OrderRequest, &str); 8] = [
        (&create, "not json"),
        (&create, r#"{"op":"order.create","data":{"orderId":"1"}}"#),
        (&create, r#"{"reqId":"1","retCode":0,"retMsg":"OK","op":"order.create"}"#),
        (&create, r#"{"reqId":"1","retCode":0,"retMsg":"OK","op":"order.create","data":{"orderId":""}}"#),
        (&create, r#"{"reqId":"1","retCode":0,"retMsg":"OK","op":"order.cancel","data":{"orderId":"1"}}"#),
        (&create, r#"{"reqId":"1","retCode":"0","op":"order.create","data":{"orderId":"1"}}"#),
        (&batch, &no_ext),
        (&batch, &short_ext),
    ];
    for (r, f) in cases {
        match decode(r, f) {
            Err(TradeError::Answer { request, frame, .. }) => {
                assert_eq!(request, r.name());
                assert_eq!(frame, f);
            }
            other => panic!("{f}: {other:?}"),
        }
    }
    // A request the socket has no op for cannot have an answer.
    let open = OrderRequest::OpenOrders { symbol: "ETHUSDT".into() };
    assert!(matches!(decode(&open, CREATE_OK), Err(TradeError::Answer { .. })));
}

#[test]
fn rate_usage_reads_the_answer_header_under_the_op_limit() {
    let t = BybitTrading;
    let u = t.rate_usage(MarketType::Linear, CREATE_OK);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].limit.name, "linear order.create");
    assert_eq!((u[0].limit.limit, u[0].limit.window.as_millis(), u[0].used), (10, 1000, 1));
    assert_eq!(u[0].resets_at_ms, Some(1_711_001_595_208));
    // The same name as the local limit the order client keeps.
    let limits: Vec<RateLimit> = t.order_limits(MarketType::Linear);
    let local = limits.iter().find(|l| l.name == u[0].limit.name).unwrap();
    assert_eq!((local.limit, local.window), (10, u[0].limit.window));
    // A batch counts per order: 150 - 147 used.
    let u = t.rate_usage(MarketType::Linear, BATCH_REFUSED);
    assert_eq!((u[0].limit.name.as_str(), u[0].limit.limit, u[0].used), ("linear order.create-batch", 150, 3));
    assert_eq!(u[0].resets_at_ms, Some(1_740_453_408_555));
    let u = t.rate_usage(MarketType::Spot, BATCH_MIXED);
    assert_eq!((u[0].limit.name.as_str(), u[0].used), ("spot order.cancel-batch", 2));
    // Numbers, any header case, and no reset time.
    let f = r#"{"reqId":"1","retCode":10006,"retMsg":"Too many visits!","op":"order.amend","data":{},"retExtInfo":{},"header":{"x-bapi-limit":10,"X-BAPI-LIMIT-STATUS":0}}"#;
    let u = t.rate_usage(MarketType::Inverse, f);
    assert_eq!((u[0].limit.name.as_str(), u[0].used, u[0].resets_at_ms), ("inverse order.amend", 10, None));
    // Nothing without a header, for other ops, or for unreadable frames.
    for f in [
        r#"{"reqId":"1","retCode":0,"op":"order.create","data":{"orderId":"1"}}"#,
        r#"{"retCode":0,"retMsg":"OK","op":"pong","data":["1"],"header":{"X-Bapi-Limit":"1","X-Bapi-Limit-Status":"1"}}"#,
        "garbage",
    ] {
        assert!(t.rate_usage(MarketType::Linear, f).is_empty(), "{f}");
    }
}

#[test]
fn the_rules_match_every_answer_to_its_request_by_req_id() {
    let p = plan(MarketType::Linear);
    let rules = &p.session.rules;
    // Our frame's reqId comes back in the answer, refusal or success alike.
    let sent = BybitTrading.encode(&p, 4_294_967_301, &place(limit("ETHUSDT"))).unwrap();
    let req_id = serde_json::from_str::<Value>(&sent).unwrap()["reqId"].as_str().unwrap().to_string();
    assert_eq!(req_id, "4294967301");
    let ok = CREATE_OK.replace("test-005", &req_id);
    assert_eq!(rules.classify(&ok), Inbound::Ack { id: 4_294_967_301 });
    let refused = r#"{"reqId":"12","retCode":110007,"retMsg":"ab not enough for new order","op":"order.create","data":{},"retExtInfo":{},"connId":"c"}"#;
    assert_eq!(
        rules.classify(refused),
        Inbound::Rejected { id: Some(12), code: 110007, msg: "ab not enough for new order".into(), streams: vec![] }
    );
    assert_eq!(rules.classify(&BATCH_MIXED.replace("\"11\"", "\"13\"")), Inbound::Ack { id: 13 });
    assert_eq!(
        rules.classify(
            r#"{"reqId":"14","retCode":20006,"retMsg":"reqId is duplicated","op":"order.create","connId":"c"}"#
        ),
        Inbound::Rejected { id: Some(14), code: 20006, msg: "reqId is duplicated".into(), streams: vec![] }
    );
    // A frame the venue could not read at all echoes no id: an error.
    assert!(matches!(
        rules.classify(r#"{"retCode":10404,"retMsg":"op type is not found","op":"x","connId":"c"}"#),
        Inbound::Rejected { id: None, code: 10404, .. }
    ));
    // An answer echoing an id that is not ours is nobody's.
    assert!(matches!(rules.classify(&CREATE_OK.replace("test-005", "someone-else")), Inbound::Unknown));
    // Auth answers (guideline), the /v5/private shape, and refusals.
    assert_eq!(
        rules.classify(r#"{"retCode":0,"retMsg":"OK","op":"auth","connId":"cnt5leec0hvan15eukcg-2t"}"#),
        Inbound::AuthOk
    );
    assert_eq!(rules.classify(r#"{"reqId":"1","retCode":0,"retMsg":"OK","op":"auth","connId":"c"}"#), Inbound::AuthOk);
    assert_eq!(rules.classify(r#"{"success":true,"ret_msg":"","op":"auth","conn_id":"c"}"#), Inbound::AuthOk);
    assert_eq!(
        rules.classify(r#"{"retCode":10004,"retMsg":"Invalid sign","op":"auth","connId":"c"}"#),
        Inbound::AuthFailed { msg: "auth refused: 10004 Invalid sign".into() }
    );
    assert!(matches!(
        rules.classify(r#"{"op":"auth","success":false,"retCode":10003,"retMsg":"Invalid apikey","connId":"c"}"#),
        Inbound::AuthFailed { .. }
    ));
    // Pong (guideline, "Ping"), and what is not JSON.
    assert_eq!(
        rules.classify(r#"{"retCode":0,"retMsg":"OK","op":"pong","data":["1711002002529"],"connId":"c"}"#),
        Inbound::Pong
    );
    assert!(matches!(rules.classify("pong?"), Inbound::Malformed(_)));
    // Heartbeat and the in-band auth frame, signed as on /v5/private.
    let hb = rules.heartbeat();
    assert_eq!((hb.client_ping, hb.interval.as_secs()), (ClientPing::Text(r#"{"op":"ping"}"#.into()), 20));
    let auth: Value = serde_json::from_str(&rules.auth_request(3).unwrap()).unwrap();
    assert_eq!(
        (auth["op"].as_str(), auth["reqId"].as_str(), auth["args"][0].as_str()),
        (Some("auth"), Some("3"), Some(KEY))
    );
    let expires = auth["args"][1].as_i64().unwrap();
    assert_eq!(auth["args"][2].as_str().unwrap(), creds().sign(&format!("GET/realtime{expires}")));
    // Enough messages for every op limit of the category, the ping and the auth.
    assert_eq!(rules.limits().max_msgs, 62);
    assert_eq!(plan(MarketType::Spot).session.rules.limits().max_msgs, 112);
}

#[test]
fn the_plan_is_the_trade_socket_of_the_unified_account() {
    let spec = Bybit.trading().expect("Bybit trades");
    assert_eq!(spec.venue(), Venue::Bybit);
    assert_eq!(spec.markets()[0], MarketType::Linear);
    assert_eq!(spec.markets().len(), 4);
    let p = plan(MarketType::Linear);
    assert_eq!(
        (p.session.url.as_str(), p.market),
        ("wss://stream.bybit.com/v5/trade", ferrofeed_venues::bybit::spec::LINEAR)
    );
    assert!(p.session.streams.is_empty());
    assert_eq!(p.session.time_url.as_deref(), Some("https://api.bybit.com/v5/market/time"));
    assert_eq!(p.signer.as_ref().map(|s| s.clock.recv_window_ms), Some(8000));
    let t = plan_in(MarketType::Spot, &Environment::Testnet);
    assert_eq!(t.session.url, "wss://stream-testnet.bybit.com/v5/trade");
    let sim = plan_in(MarketType::Linear, &Environment::custom("ws://127.0.0.1:9400"));
    assert_eq!(sim.session.url, "ws://127.0.0.1:9400/v5/trade");
    assert_eq!(sim.session.time_url.as_deref(), Some("http://127.0.0.1:9400/v5/market/time"));
    // The category names are accepted as the account too (the order CLI's default).
    for account in ["unified", "linear", "spot"] {
        assert!(
            BybitTrading.plan(MarketType::Linear, account, &Environment::Production, creds(), Arc::default()).is_ok()
        );
    }
    let no = |account: &str, env: &Environment, c: Arc<Credentials>| {
        BybitTrading.plan(MarketType::Linear, account, env, c, Arc::default()).unwrap_err().to_string()
    };
    assert!(no("usdm", &Environment::Production, creds()).contains("usdm"));
    assert!(no("unified", &Environment::Demo, creds()).contains("demo"));
    let ed = Arc::new(Credentials::ed25519_seed("k", [7; 32]).unwrap());
    assert!(no("unified", &Environment::Production, ed).contains("HMAC"));
}

#[test]
fn no_secret_in_debug_frames_or_errors() {
    let p = plan(MarketType::Linear);
    let shown = format!("{p:?} {:?} {:?} {:?}", p.session, p.session.rules, BybitTrading);
    assert!(!shown.contains(SECRET) && !shown.contains(KEY), "{shown}");
    let mut texts = Vec::new();
    for r in [
        place(limit("ETHUSDT")),
        amend(oid("1"), Some("1"), None),
        cancel(link("a")),
        OrderRequest::Batch { items: vec![cancel(oid("1"))] },
    ] {
        texts.push(BybitTrading.encode(&p, 1, &r).unwrap());
    }
    texts.push(BybitTrading.encode(&p, 1, &place(PlaceOrder { price: None, ..limit("X") })).unwrap_err().to_string());
    texts.push(decode(&place(limit("X")), "garbage").unwrap_err().to_string());
    texts.push(format!(
        "{:?}",
        refusal(&place(limit("X")), r#"{"retCode":10003,"retMsg":"API key is invalid.","op":"order.create"}"#)
    ));
    for t in &texts {
        assert!(!t.contains(SECRET) && !t.contains(KEY), "{t}");
    }
    // The signature only in the auth frame, which the engine never logs.
    let auth = p.session.rules.auth_request(1).unwrap();
    assert!(!auth.contains(SECRET));
}
