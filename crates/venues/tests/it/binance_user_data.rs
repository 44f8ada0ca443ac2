//! Binance private user data against the real payloads in `../shared/fixtures`
//! (read at test time, never copied): spot in both wrappings (WebSocket-API
//! `{"subscriptionId","event"}` and bare listenKey), futures bare, and the
//! combined envelope. Field values, not just success.

use ferrofeed_model::Decimal;
use ferrofeed_model::event::{
    Balance, BalanceUpdate, Event, EventKind, Fill, ListOrder, MarketType, OrderListUpdate, OrderUpdate, PositionSide,
    PositionUpdate, Side, UserTrade, Venue,
};
use ferrofeed_venues::binance::Market;
use ferrofeed_venues::binance::normalize::{DecodeError, decode};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/");
const RX: i64 = 1_700_000_000_123_456_789;
const MS: i64 = 1_000_000;

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn all(market: Market, frame: &str) -> Vec<Event> {
    let events = decode(market, frame, RX).unwrap_or_else(|e| panic!("{e}: {frame}"));
    for e in &events {
        assert_eq!((e.venue, e.receive_ts), (Venue::Binance, RX), "{frame}");
        // Every event is a line of the contract: it serializes and reads back.
        let line = serde_json::to_string(e).expect("serializes");
        let back: Event = serde_json::from_str(&line).unwrap_or_else(|err| panic!("{line}: {err}"));
        assert_eq!(&back, e, "{line}");
    }
    events
}

fn one(market: Market, frame: &str) -> Event {
    let mut v = all(market, frame);
    assert_eq!(v.len(), 1, "{frame}");
    v.remove(0)
}

/// The spot fixture in both wrappings decodes to the same single event.
fn spot_both(name: &str) -> Event {
    let wrapped = one(Market::Spot, &fixture(&format!("binance_spot/{name}.docs.json")));
    let bare = one(Market::Spot, &fixture(&format!("binance_spot/{name}.listenkey.docs.json")));
    assert_eq!(wrapped, bare, "{name}");
    assert_eq!(wrapped.market, MarketType::Spot);
    wrapped
}

fn order(e: &Event) -> &OrderUpdate {
    match &e.kind {
        EventKind::OrderUpdate(o) => o,
        other => panic!("not an order_update: {other:?}"),
    }
}

fn balances(e: &Event) -> &BalanceUpdate {
    match &e.kind {
        EventKind::BalanceUpdate(b) => b,
        other => panic!("not a balance_update: {other:?}"),
    }
}

fn no_balance(asset: &str) -> Balance {
    Balance {
        asset: asset.into(),
        free: None,
        locked: None,
        delta: None,
        locked_delta: None,
        wallet_balance: None,
        cross_wallet_balance: None,
    }
}

#[test]
fn spot_execution_report_new_order() {
    let e = spot_both("user_execution_report");
    assert_eq!(e.symbol.as_deref(), Some("ETHBTC"));
    // `T` (transaction time), not `E` (1499405658658).
    assert_eq!(e.exchange_ts, Some(1_499_405_658_657 * MS));
    let want = OrderUpdate {
        order_id: "4293153".into(),
        client_order_id: "mUvoqJxFIILMdfAW5iGSOW".into(),
        orig_client_order_id: None,
        side: Side::Buy,
        order_type: "LIMIT".into(),
        time_in_force: Some("GTC".into()),
        execution_type: "NEW".into(),
        status: "NEW".into(),
        price: Some(d("0.10264410")),
        qty: d("1.00000000"),
        filled_qty: d("0.00000000"),
        avg_price: None,
        filled_quote_qty: Some(d("0.00000000")),
        stop_price: None,
        fill: None,
        reject_reason: None,
        order_list_id: None,
        reduce_only: None,
        position_side: None,
        close_position: None,
        realized_pnl: None,
        activation_price: None,
        callback_rate: None,
    };
    assert_eq!(order(&e), &want);
    // Scale is kept on the line.
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!((v["type"].as_str(), v["price"].as_str()), (Some("order_update"), Some("0.10264410")));
    assert_eq!(v["order_id"], "4293153");
    assert!(v.get("fill").is_none() && v.get("stop_price").is_none() && v.get("reduce_only").is_none());
}

#[test]
fn spot_execution_report_with_a_fill_cancel_and_list() {
    // The documented report turned into a partial fill of an OCO leg.
    let base = fixture("binance_spot/user_execution_report.listenkey.docs.json");
    let fill = base
        .replace(r#""x": "NEW""#, r#""x": "TRADE""#)
        .replace(r#""X": "NEW""#, r#""X": "PARTIALLY_FILLED""#)
        .replace(r#""l": "0.00000000""#, r#""l": "0.25000000""#)
        .replace(r#""z": "0.00000000""#, r#""z": "0.25000000""#)
        .replace(r#""L": "0.00000000""#, r#""L": "0.10264400""#)
        .replace(r#""n": "0""#, r#""n": "0.00025000""#)
        .replace(r#""N": null"#, r#""N": "ETH""#)
        .replace(r#""t": -1"#, r#""t": 22713"#)
        .replace(r#""m": false"#, r#""m": true"#)
        .replace(r#""g": -1"#, r#""g": 2"#)
        .replace(r#""P": "0.00000000""#, r#""P": "0.10000000""#);
    let both = all(Market::Spot, &fill);
    assert_eq!(both.len(), 2, "a fill is an order_update and a user_trade");
    let e = both[0].clone();
    let o = order(&e);
    assert_eq!((o.execution_type.as_str(), o.status.as_str()), ("TRADE", "PARTIALLY_FILLED"));
    let EventKind::UserTrade(t) = &both[1].kind else { panic!("not a user_trade: {:?}", both[1]) };
    assert_eq!(
        (t.order_id.as_str(), t.trade_id.as_str(), t.price, t.qty, t.fee, t.fee_asset.as_deref(), t.maker),
        (o.order_id.as_str(), "22713", d("0.10264400"), d("0.25000000"), Some(d("0.00025000")), Some("ETH"), true)
    );
    assert_eq!((t.order_qty, t.side, both[1].symbol.as_deref()), (Some(o.qty), o.side, e.symbol.as_deref()));
    assert_eq!(o.filled_qty, d("0.25000000"));
    assert_eq!(o.stop_price, Some(d("0.10000000")));
    assert_eq!(o.order_list_id, Some(2));
    assert_eq!(
        o.fill,
        Some(Fill {
            trade_id: "22713".into(),
            price: d("0.10264400"),
            qty: d("0.25000000"),
            fee: d("0.00025000"),
            fee_asset: Some("ETH".into()),
            maker: true,
        })
    );
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!(v["fill"]["fee"], "0.00025000");
    assert_eq!(v["fill"]["fee_asset"], "ETH");
    assert_eq!(v["fill"]["trade_id"], "22713");

    // A fill charged nothing: the venue sends `"n": "0"` and `"N": null`.
    let free = fill.replace(r#""n": "0.00025000""#, r#""n": "0""#).replace(r#""N": "ETH""#, r#""N": null"#);
    let f = order(&all(Market::Spot, &free)[0]).fill.clone().expect("fill");
    assert_eq!((f.fee, f.fee_asset), (d("0"), None));
    let v = serde_json::to_value(&all(Market::Spot, &free)[0]).expect("json");
    assert_eq!(v["fill"]["fee"], "0");
    assert!(v["fill"].get("fee_asset").is_none(), "{v}");

    let cancel = base
        .replace(r#""x": "NEW""#, r#""x": "CANCELED""#)
        .replace(r#""X": "NEW""#, r#""X": "CANCELED""#)
        .replace(r#""c": "mUvoqJxFIILMdfAW5iGSOW""#, r#""c": "cancelReq1""#)
        .replace(r#""C": """#, r#""C": "mUvoqJxFIILMdfAW5iGSOW""#)
        .replace(r#""S": "BUY""#, r#""S": "SELL""#);
    let o = order(&one(Market::Spot, &cancel)).clone();
    assert_eq!(o.side, Side::Sell);
    assert_eq!(o.client_order_id, "cancelReq1");
    assert_eq!(o.orig_client_order_id.as_deref(), Some("mUvoqJxFIILMdfAW5iGSOW"));
    assert_eq!(o.fill, None);

    let rejected = base.replace(r#""r": "NONE""#, r#""r": "INSUFFICIENT_BALANCE""#);
    assert_eq!(order(&one(Market::Spot, &rejected)).reject_reason.as_deref(), Some("INSUFFICIENT_BALANCE"));
}

#[test]
fn spot_account_position_and_balance_updates() {
    let e = spot_both("user_outbound_account_position");
    assert_eq!(e.symbol, None);
    assert_eq!(e.exchange_ts, Some(1_564_034_571_105 * MS));
    let want = Balance { free: Some(d("10000.000000")), locked: Some(d("0.000000")), ..no_balance("ETH") };
    assert_eq!(balances(&e), &BalanceUpdate { reason: None, balances: vec![want] });
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!(v["balances"][0]["free"], "10000.000000");
    assert!(v.get("symbol").is_none() && v.get("reason").is_none());

    let e = spot_both("user_balance_update");
    assert_eq!(e.symbol, None);
    // `T` (clear time), not `E` (1573200697110).
    assert_eq!(e.exchange_ts, Some(1_573_200_697_068 * MS));
    let want = Balance { delta: Some(d("100.00000000")), ..no_balance("BTC") };
    assert_eq!(balances(&e), &BalanceUpdate { reason: None, balances: vec![want] });

    let e = one(Market::Spot, &fixture("binance_spot/user_external_lock_update.docs.json"));
    assert_eq!(e.exchange_ts, Some(1_581_557_507_268 * MS));
    let want = Balance { locked_delta: Some(d("10.00000000")), ..no_balance("NEO") };
    assert_eq!(balances(&e), &BalanceUpdate { reason: None, balances: vec![want] });
}

#[test]
fn spot_list_status() {
    let e = spot_both("user_list_status");
    assert_eq!(e.symbol.as_deref(), Some("ETHBTC"));
    assert_eq!(e.exchange_ts, Some(1_564_035_303_625 * MS));
    let want = OrderListUpdate {
        order_list_id: 2,
        list_client_order_id: "F4QN4G8DlFATFlIUQ0cjdD".into(),
        contingency_type: "OCO".into(),
        list_status: "EXEC_STARTED".into(),
        list_order_status: "EXECUTING".into(),
        reject_reason: None,
        orders: vec![
            ListOrder {
                symbol: "ETHBTC".into(),
                order_id: "17".into(),
                client_order_id: "AJYsMjErWJesZvqlJCTUgL".into(),
            },
            ListOrder {
                symbol: "ETHBTC".into(),
                order_id: "18".into(),
                client_order_id: "bfYPSQdLoqAJeNrOr9adzq".into(),
            },
        ],
    };
    assert_eq!(e.kind, EventKind::OrderListUpdate(Box::new(want)));
}

#[test]
fn stream_end_notices() {
    let e = one(Market::Spot, &fixture("binance_spot/user_event_stream_terminated.docs.json"));
    assert_eq!(e.kind, EventKind::UserStreamEnded { reason: "eventStreamTerminated".into() });
    assert_eq!((e.symbol.as_deref(), e.exchange_ts), (None, Some(1_728_973_001_334 * MS)));

    let expired = fixture("binance_spot/user_listen_key_expired.docs.json");
    for market in [Market::Spot, Market::UsdM, Market::CoinM] {
        let e = one(market, &expired);
        assert_eq!(e.kind, EventKind::UserStreamEnded { reason: "listenKeyExpired".into() });
        assert_eq!(e.exchange_ts, Some(1_699_596_037_418 * MS));
        // The listen key is a credential: not copied into the event.
        assert!(!serde_json::to_string(&e).expect("json").contains("OfYGbUzi"));
    }
    // USDⓈ-M sends the event time as a string.
    let futures = r#"{"e":"listenKeyExpired","E":"1736996475556","listenKey":"k"}"#;
    let e = one(Market::UsdM, futures);
    assert_eq!((e.market, e.exchange_ts), (MarketType::UsdM, Some(1_736_996_475_556 * MS)));
}

#[test]
fn futures_order_trade_update() {
    let e = one(Market::UsdM, &fixture("binance_futures/order_trade_update.docs_via_nautilus.json"));
    assert_eq!((e.market, e.symbol.as_deref()), (MarketType::UsdM, Some("BTCUSDT")));
    assert_eq!(e.exchange_ts, Some(1_568_879_465_651 * MS));
    let want = OrderUpdate {
        order_id: "8886774".into(),
        client_order_id: "TEST".into(),
        orig_client_order_id: None,
        side: Side::Buy,
        order_type: "TRAILING_STOP_MARKET".into(),
        time_in_force: Some("GTC".into()),
        execution_type: "NEW".into(),
        status: "NEW".into(),
        price: Some(d("0")),
        qty: d("0.001"),
        filled_qty: d("0"),
        // `ap` is "0" while nothing is filled.
        avg_price: None,
        filled_quote_qty: None,
        stop_price: Some(d("7103.04")),
        fill: None,
        reject_reason: None,
        order_list_id: None,
        reduce_only: Some(false),
        position_side: Some(PositionSide::Long),
        close_position: Some(false),
        realized_pnl: Some(d("0")),
        activation_price: Some(d("7476.89")),
        callback_rate: Some(d("5.0")),
    };
    assert_eq!(order(&e), &want);
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!((v["position_side"].as_str(), v["callback_rate"].as_str()), (Some("long"), Some("5.0")));

    // The same order filled (a TRADE execution), on COIN-M.
    let filled = fixture("binance_futures/order_trade_update.docs_via_nautilus.json")
        .replace(r#""x": "NEW""#, r#""x": "TRADE""#)
        .replace(r#""X": "NEW""#, r#""X": "FILLED""#)
        .replace(r#""l": "0""#, r#""l": "0.001""#)
        .replace(r#""z": "0""#, r#""z": "0.001""#)
        .replace(r#""L": "0""#, r#""L": "7103.10""#)
        .replace(r#""ap": "0""#, r#""ap": "7103.10""#)
        .replace(r#""n": "0""#, r#""n": "0.00284124""#)
        .replace(r#""t": 0"#, r#""t": 88"#)
        .replace(r#""rp": "0""#, r#""rp": "1.25""#);
    let e = one(Market::CoinM, &filled);
    assert_eq!(e.market, MarketType::CoinM);
    let o = order(&e);
    assert_eq!((o.status.as_str(), o.filled_qty, o.avg_price), ("FILLED", d("0.001"), Some(d("7103.10"))));
    assert_eq!(o.realized_pnl, Some(d("1.25")));
    assert_eq!(
        o.fill,
        Some(Fill {
            trade_id: "88".into(),
            price: d("7103.10"),
            qty: d("0.001"),
            fee: d("0.00284124"),
            fee_asset: Some("USDT".into()),
            maker: false,
        })
    );
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!((v["fill"]["fee"].as_str(), v["fill"]["fee_asset"].as_str()), (Some("0.00284124"), Some("USDT")));
    // No commission: USDⓈ-M does not push `n` and `N` at all.
    let free = filled.replace(r#""N": "USDT","#, "").replace(r#""n": "0.00284124","#, "");
    assert!(!free.contains(r#""n":"#) && !free.contains(r#""N":"#), "{free}");
    let f = order(&one(Market::UsdM, &free)).fill.clone().expect("fill");
    assert_eq!((f.fee, f.fee_asset, f.trade_id.as_str()), (d("0"), None, "88"));
    // Futures orders never decode on the spot or options markets.
    for market in [Market::Spot, Market::Options] {
        assert!(matches!(one(market, &filled).kind, EventKind::Unknown { .. }), "{market:?}");
    }
}

#[test]
fn futures_account_update_yields_balances_and_one_event_per_position() {
    let events = all(Market::UsdM, &fixture("binance_futures/account_update.docs_via_nautilus.json"));
    let types: Vec<_> = events.iter().map(|e| e.kind.type_name()).collect();
    assert_eq!(types, ["balance_update", "position_update", "position_update", "position_update"]);
    for e in &events {
        assert_eq!(e.exchange_ts, Some(1_564_745_798_939 * MS));
        assert_eq!(e.market, MarketType::UsdM);
    }
    assert_eq!(events[0].symbol, None);
    let usdt = Balance {
        delta: Some(d("50.12345678")),
        wallet_balance: Some(d("122624.12345678")),
        cross_wallet_balance: Some(d("100.12345678")),
        ..no_balance("USDT")
    };
    assert_eq!(balances(&events[0]), &BalanceUpdate { reason: Some("ORDER".into()), balances: vec![usdt] });

    let pos = |side, amount: &str, entry: &str, be: &str, realized: &str, upnl: &str, iw: &str| PositionUpdate {
        reason: Some("ORDER".into()),
        position_side: side,
        amount: d(amount),
        entry_price: Some(d(entry)),
        breakeven_price: Some(d(be)),
        unrealized_pnl: Some(d(upnl)),
        realized_pnl: Some(d(realized)),
        margin_type: Some("isolated".into()),
        isolated_wallet: Some(d(iw)),
    };
    let want = [
        pos(PositionSide::Both, "0", "0.00000", "0", "200", "0", "0.00000000"),
        pos(PositionSide::Long, "20", "6563.6", "6563.559", "0", "2850.21200", "13200.70726908"),
        pos(PositionSide::Short, "-10", "6563.8", "6563.861", "-45.04000000", "-1423.15600", "6570.42511771"),
    ];
    for (e, want) in events[1..].iter().zip(want) {
        assert_eq!(e.symbol.as_deref(), Some("BTCUSDT"));
        assert_eq!(e.kind, EventKind::PositionUpdate(Box::new(want)));
    }
    let v = serde_json::to_value(&events[3]).expect("json");
    assert_eq!((v["amount"].as_str(), v["unrealized_pnl"].as_str()), (Some("-10"), Some("-1423.15600")));

    // A funding fee touches balances only; an update listing nothing still yields one event.
    let funding = r#"{"e":"ACCOUNT_UPDATE","E":2,"T":1,"a":{"m":"FUNDING_FEE","B":[{"a":"BNB","wb":"1.5","cw":"1.5","bc":"0"}],"P":[]}}"#;
    let events = all(Market::CoinM, funding);
    assert_eq!(events.len(), 1);
    assert_eq!(balances(&events[0]).reason.as_deref(), Some("FUNDING_FEE"));
    let empty = r#"{"e":"ACCOUNT_UPDATE","E":2,"T":1,"a":{"m":"ADJUSTMENT","B":[],"P":[]}}"#;
    assert_eq!(
        all(Market::UsdM, empty)[0].kind,
        EventKind::BalanceUpdate(BalanceUpdate { reason: Some("ADJUSTMENT".into()), balances: vec![] })
    );
}

#[test]
fn futures_trade_lite_from_the_documented_fields() {
    // Hand-written from the field list `e,E,T,s,q,p,m,c,S,L,l,t,i` (PROTOCOLS.md §2.5).
    let frame = r#"{"e":"TRADE_LITE","E":1721895408092,"T":1721895408214,"s":"BTCUSDT","q":"0.001","p":"0","m":false,"c":"z8hcUoOsqEdKMeKPSABslD","S":"BUY","L":"64089.20","l":"0.040","t":109100866,"i":8886774}"#;
    let e = one(Market::UsdM, frame);
    assert_eq!(e.symbol.as_deref(), Some("BTCUSDT"));
    assert_eq!(e.exchange_ts, Some(1_721_895_408_214 * MS));
    let want = UserTrade {
        order_id: "8886774".into(),
        client_order_id: "z8hcUoOsqEdKMeKPSABslD".into(),
        side: Side::Buy,
        trade_id: "109100866".into(),
        price: d("64089.20"),
        qty: d("0.040"),
        maker: false,
        order_price: Some(d("0")),
        order_qty: Some(d("0.001")),
        // TRADE_LITE carries no commission: absent, not zero.
        fee: None,
        fee_asset: None,
    };
    assert_eq!(e.kind, EventKind::UserTrade(Box::new(want)));
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!((v["type"].as_str(), v["order_price"].as_str()), (Some("user_trade"), Some("0")));
    assert!(v.get("fee").is_none() && v.get("fee_asset").is_none(), "{v}");
}

#[test]
fn user_data_in_the_combined_envelope() {
    let payload = fixture("binance_spot/user_balance_update.listenkey.docs.json");
    let frame =
        format!(r#"{{"stream":"pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1","data":{payload}}}"#);
    let e = one(Market::Spot, &frame);
    assert_eq!(e, one(Market::Spot, &payload));
    let futures = fixture("binance_futures/account_update.docs_via_nautilus.json");
    let frame = format!(r#"{{"stream":"key","data":{futures}}}"#);
    assert_eq!(all(Market::UsdM, &frame), all(Market::UsdM, &futures));
}

#[test]
fn wrapped_unknowns_keep_the_whole_frame() {
    for frame in [
        r#"{"event":{"e":"serverShutdown","E":1770123456789}}"#,
        r#"{"subscriptionId":3,"event":{"e":"somethingNew","E":1}}"#,
        r#"{"subscriptionId":3,"event":"not an object"}"#,
        // Spot user-data names on another market are not decoded.
        r#"{"subscriptionId":3,"event":{"e":"executionReport","E":1}}"#,
    ] {
        let market = if frame.contains("executionReport") { Market::Options } else { Market::Spot };
        let e = one(market, frame);
        assert_eq!(e.kind, EventKind::Unknown { raw: frame.to_string() }, "{frame}");
    }
}

#[test]
fn malformed_user_payloads_are_errors_that_keep_the_payload() {
    let report = fixture("binance_spot/user_execution_report.docs.json");
    let cases: Vec<(Market, String, &str)> = vec![
        (Market::Spot, report.replace(r#""p": "0.10264410""#, r#""p": "abc""#), "invalid decimal \"abc\""),
        (Market::Spot, report.replace(r#""p": "0.10264410""#, r#""p": 0.1"#), "invalid type"),
        (Market::Spot, report.replace(r#""S": "BUY""#, r#""S": "HOLD""#), "unknown side"),
        (Market::Spot, report.replace(r#""i": 4293153,"#, ""), "missing field `i`"),
        (Market::Spot, report.replace(r#""l": "0.00000000""#, r#""l": "1""#), "fill without trade id"),
        (Market::Spot, report.replace(r#""T": 1499405658657"#, r#""T": 9223372036854775807"#), "out of range"),
        (Market::Spot, r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1"#.into(), "malformed"),
        (Market::Spot, r#"{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1,"B":[{"a":"ETH","f":"1"}]}}"#.into(), "missing field `l`"),
        (Market::Spot, r#"{"e":"balanceUpdate","E":1,"a":"BTC","d":"1e"}"#.into(), "invalid decimal"),
        (Market::Spot, r#"{"e":"listStatus","E":1,"s":"X","g":1,"c":"OCO","l":"x","L":"y","C":"z","O":[{"s":"X"}]}"#.into(), "missing field"),
        (Market::Spot, r#"{"e":"eventStreamTerminated","E":"later"}"#.into(), "invalid time"),
        (Market::UsdM, r#"{"e":"ORDER_TRADE_UPDATE","E":1,"T":1,"o":{}}"#.into(), "missing field"),
        (Market::UsdM, r#"{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{"m":"ORDER","B":[],"P":[{"s":"X","pa":"1","ep":"1","up":"0","ps":"NET"}]}}"#.into(), "unknown position side"),
        (Market::UsdM, r#"{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":[]}"#.into(), "invalid length"),
        (Market::CoinM, r#"{"e":"TRADE_LITE","E":1,"T":1,"s":"X","q":"1","p":"1","m":"no","c":"c","S":"BUY","L":"1","l":"1","t":1,"i":1}"#.into(), "invalid type"),
        (Market::UsdM, r#"{"e":"listenKeyExpired","E":-1.5}"#.into(), "invalid type"),
    ];
    for (market, frame, needle) in &cases {
        let err = decode(*market, frame, RX).expect_err(frame);
        assert_eq!(err.payload(), frame.as_str());
        let msg = err.to_string();
        assert!(msg.contains(needle), "{frame}: {msg:?} lacks {needle:?}");
        assert!(matches!(err, DecodeError::Invalid { .. } | DecodeError::Malformed { .. }));
    }
}
