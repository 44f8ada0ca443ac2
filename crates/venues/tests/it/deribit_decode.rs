//! Deribit against the real payloads in `../shared/fixtures/deribit`: every
//! file decodes (values asserted as exact decimals, sides, ids and ns
//! timestamps, read from the files) and is classified for the engine, the
//! recorded book replays through the change-id rule and `BookSync` without a
//! gap (and a broken chain recovers), the order answers decode through the
//! `TradingSpec` into typed answers and refusals, and malformed frames are
//! decode errors that keep the payload.

use std::borrow::Cow;

use ferrofeed_book::{BookSync, Phase, SyncConfig, SyncEvent};
use ferrofeed_model::Decimal;
use ferrofeed_model::event::{Event, EventKind, Level, MarketType, Side, Venue};
use ferrofeed_model::rules::{Inbound, Seq, VenueRules};
use ferrofeed_venues::deribit::normalize::{DecodeError, decode};
use ferrofeed_venues::deribit::trade::DeribitTrading;
use ferrofeed_venues::deribit::{DeribitRules, Market, book};
use ferrofeed_venues::trading::{
    AmendOrder, CancelOrder, OrderAnswer, OrderRef, OrderRequest, OrderType, PlaceOrder, RefusalKind, TimeInForce,
    TradeError, TradingSpec,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/deribit/");
const RX: i64 = 1_795_326_911_000_000_000;

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn lvl(p: &str, q: &str) -> Level {
    Level { price: d(p), qty: d(q) }
}

fn dec(market: Market, rel: &str) -> Vec<Event> {
    let mut out = Vec::new();
    decode(market, &fixture(rel), RX, &mut out).unwrap_or_else(|e| panic!("{rel}: {e}"));
    out
}

fn one(market: Market, rel: &str) -> Event {
    let mut v = dec(market, rel);
    assert_eq!(v.len(), 1, "{rel}: {v:?}");
    v.remove(0)
}

fn common(e: &Event, market: MarketType, symbol: Option<&str>, ts_ms: Option<i64>) {
    assert_eq!(e.venue, Venue::Deribit);
    assert_eq!(e.market, market);
    assert_eq!(e.symbol.as_deref(), symbol);
    assert_eq!(e.exchange_ts, ts_ms.map(|ms| ms * 1_000_000));
    assert_eq!(e.receive_ts, RX);
}

fn classify(rel: &str) -> Inbound<'static> {
    let text: &'static str = Box::leak(fixture(rel).into_boxed_str());
    DeribitRules::public().classify(text)
}

fn data(stream: &'static str, seq: Option<Seq>) -> Inbound<'static> {
    Inbound::Data { stream: Cow::Borrowed(stream), seq }
}

#[test]
fn trades_keep_their_sequence_and_extras() {
    let v = dec(Market::Inverse, "trades.json");
    assert_eq!(v.len(), 2);
    common(&v[0], MarketType::Inverse, Some("BTC-PERPETUAL"), Some(1_765_531_356_452));
    let EventKind::Trade(t) = &v[0].kind else { panic!("{v:?}") };
    assert_eq!(t.trade_id, "403691824");
    assert_eq!((t.price, t.qty, t.side), (d("92294.5"), d("10.0"), Side::Sell));
    assert_eq!(t.qty.to_string(), "10.0", "scale of the number's text kept");
    let x = t.extra();
    assert_eq!((t.trade_seq, x.combo_trade_id.as_deref()), (Some(271_252_854), Some("43")));
    assert_eq!((x.mark_price, x.index_price), (Some(d("92287.11")), Some(d("92276.75"))));
    assert_eq!((x.liquidation.as_deref(), x.combo_id.as_deref(), x.iv), (None, None, None));
    let EventKind::Trade(t) = &v[1].kind else { panic!("{v:?}") };
    assert_eq!((t.trade_id.as_str(), t.price, t.qty), ("403691825", d("92288.5"), d("750.0")));
    assert_eq!((t.trade_seq, t.extra().combo_trade_id.as_deref()), (Some(271_252_855), None));
    assert_eq!(classify("trades.json"), data("trades.BTC-PERPETUAL.100ms", Some(Seq::range(271_252_854, 271_252_855))));
    let line = serde_json::to_value(&v[0]).unwrap();
    assert_eq!((line["trade_seq"].as_u64(), line["price"].as_str()), (Some(271_252_854), Some("92294.5")));
    assert!(line.get("liquidation").is_none() && line.get("iv").is_none(), "{line}");
}

#[test]
fn books_snapshot_change_and_grouped() {
    let e = one(Market::Option, "book_snapshot.json");
    common(&e, MarketType::Options, Some("ETH-30JUL21-2800-C"), Some(1_626_993_723_632));
    let EventKind::BookSnapshot(b) = &e.kind else { panic!("{e:?}") };
    assert_eq!(b.last_update_id, 13_169_025_645);
    assert_eq!(b.bids, [lvl("0.0015", "4714.0"), lvl("0.001", "861.0"), lvl("0.0005", "1.0")]);
    assert_eq!((b.asks.len(), b.asks[0], b.asks[12]), (13, lvl("0.0025", "873.0"), lvl("0.35", "1.0")));
    assert_eq!(classify("book_snapshot.json"), data("book.ETH-30JUL21-2800-C.raw", Some(Seq::reset(13_169_025_645))));

    let e = one(Market::Option, "book_change.json");
    common(&e, MarketType::Options, Some("BTC-24SEP21-8000-P"), Some(1_626_993_724_318));
    let EventKind::BookDelta(b) = &e.kind else { panic!("{e:?}") };
    assert_eq!(
        (b.first_update_id, b.last_update_id, b.prev_update_id),
        (33_195_894_355, 33_195_894_355, Some(33_195_894_164))
    );
    assert_eq!((b.bids.as_slice(), b.asks.as_slice()), (&[][..], &[lvl("0.001", "2.6")][..]));
    assert_eq!(
        classify("book_change.json"),
        data("book.BTC-24SEP21-8000-P.raw", Some(Seq::chained(33_195_894_355, 33_195_894_355, 33_195_894_164)))
    );

    let e = one(Market::Inverse, "book_grouped.json");
    common(&e, MarketType::Inverse, Some("BTC-PERPETUAL"), Some(1_769_246_173_071));
    let EventKind::BookSnapshot(b) = &e.kind else { panic!("{e:?}") };
    assert_eq!(b.last_update_id, 136_725_664_747);
    assert_eq!((b.bids.len(), b.bids[0], b.bids[9]), (10, lvl("89532.5", "254900.0"), lvl("89523.5", "11000.0")));
    assert_eq!((b.asks.len(), b.asks[0], b.asks[9]), (10, lvl("89533.0", "91570.0"), lvl("89545.5", "29500.0")));
    assert_eq!(
        classify("book_grouped.json"),
        data("book.BTC-PERPETUAL.none.10.100ms", Some(Seq::reset(136_725_664_747)))
    );
}

#[test]
fn ticker_gives_a_ticker_a_mark_price_and_the_open_interest() {
    let v = dec(Market::Inverse, "ticker_perpetual.json");
    assert_eq!(v.len(), 3, "{v:?}");
    common(&v[0], MarketType::Inverse, Some("BTC-PERPETUAL"), Some(1_765_541_474_086));
    let EventKind::Ticker(t) = &v[0].kind else { panic!("{v:?}") };
    assert_eq!((t.window.as_str(), t.open), ("24h", None));
    assert_eq!((t.high, t.low, t.last_price), (d("93612.0"), d("89277.5"), d("92283.5")));
    assert_eq!((t.volume, t.quote_volume), (d("11897.27640428"), d("1092371540.0")));
    assert_eq!((t.bid_price, t.ask_price), (Some(d("92283.5")), Some(d("92284.0"))));
    assert_eq!((t.price_change, t.price_change_pct), (None, Some(d("2.3275"))));
    common(&v[1], MarketType::Inverse, Some("BTC-PERPETUAL"), Some(1_765_541_474_086));
    let EventKind::MarkPrice(m) = &v[1].kind else { panic!("{v:?}") };
    assert_eq!((m.mark_price, m.index_price), (d("92281.78"), d("92263.55")));
    assert_eq!((m.funding_rate, m.funding_8h, m.next_funding_ts), (Some(d("0.0")), Some(d("0.00001742")), None));
    // Kept on the mark price for compatibility, and its own event too.
    assert_eq!(m.open_interest, Some(d("1132329370.0")));
    assert_eq!((m.mark_iv, m.delta, m.underlying_index.as_deref()), (None, None, None));
    common(&v[2], MarketType::Inverse, Some("BTC-PERPETUAL"), Some(1_765_541_474_086));
    let EventKind::OpenInterest(oi) = &v[2].kind else { panic!("{v:?}") };
    // The JSON number's text, exactly (USD on an inverse perpetual); no value.
    assert_eq!((oi.open_interest, oi.open_interest_value), (d("1132329370.0"), None));
    assert_eq!(oi.open_interest.to_string(), "1132329370.0", "scale kept");
    let line = serde_json::to_value(&v[2]).expect("json");
    assert_eq!((line["type"].as_str(), line["open_interest"].as_str()), (Some("open_interest"), Some("1132329370.0")));
    assert!(line.get("open_interest_value").is_none(), "{line}");
    assert_eq!(classify("ticker_perpetual.json"), data("ticker.BTC-PERPETUAL.100ms", None));
}

/// An option ticker (the base coin; no statistics before the first trade)
/// gives a mark price and the open interest read from the number's text,
/// exponent form included; a ticker whose `open_interest` is `null` gives
/// none, and a ticker that carries nothing at all stays `unknown`.
#[test]
fn option_ticker_open_interest_exact_and_absent_when_null() {
    let frame = |oi: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"ticker.BTC-26DEC25-95000-C.100ms","data":{{"timestamp":1765541474086,"instrument_name":"BTC-26DEC25-95000-C","last_price":null,"mark_price":0.0525,"index_price":92263.55,"open_interest":{oi},"mark_iv":48.21,"greeks":{{"delta":0.41234}}}}}}}}"#
        )
    };
    let mut v = Vec::new();
    decode(Market::Option, &frame("512.30"), RX, &mut v).expect("ticker");
    let kinds: Vec<&str> = v.iter().map(|e| e.kind.type_name()).collect();
    assert_eq!(kinds, ["mark_price", "open_interest"], "{v:?}");
    common(&v[1], MarketType::Options, Some("BTC-26DEC25-95000-C"), Some(1_765_541_474_086));
    let EventKind::OpenInterest(oi) = &v[1].kind else { panic!("{v:?}") };
    assert_eq!((oi.open_interest.to_string().as_str(), oi.open_interest_value), ("512.30", None));

    let mut v = Vec::new();
    decode(Market::Option, &frame("1.5e-3"), RX, &mut v).expect("exponent");
    let EventKind::OpenInterest(oi) = &v[1].kind else { panic!("{v:?}") };
    assert_eq!(oi.open_interest, d("0.0015"));

    let mut v = Vec::new();
    decode(Market::Option, &frame("null"), RX, &mut v).expect("null");
    assert_eq!(v.iter().map(|e| e.kind.type_name()).collect::<Vec<_>>(), ["mark_price"], "{v:?}");

    let bare = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{"timestamp":1,"instrument_name":"BTC-PERPETUAL"}}}"#;
    let mut v = Vec::new();
    decode(Market::Inverse, bare, RX, &mut v).expect("bare");
    assert!(matches!(&v[..], [Event { kind: EventKind::Unknown { raw }, .. }] if raw == bare), "{v:?}");

    let bad = frame("\"many\"");
    let mut v = Vec::new();
    decode(Market::Option, &bad, RX, &mut v).expect("a marker string is no number: no open interest");
    assert_eq!(v.len(), 1, "{v:?}");
}

#[test]
fn quote_chart_and_unmodelled_channels() {
    let e = one(Market::Inverse, "quote.json");
    common(&e, MarketType::Inverse, Some("BTC-PERPETUAL"), Some(1_765_541_767_174));
    let EventKind::TopOfBook(t) = &e.kind else { panic!("{e:?}") };
    assert_eq!(t.update_id, 1_765_541_767_174);
    assert_eq!(
        (t.bid_price, t.bid_qty, t.ask_price, t.ask_qty),
        (d("92288.0"), d("133440.0"), d("92288.5"), d("99470.0"))
    );
    assert_eq!(classify("quote.json"), data("quote.BTC-PERPETUAL", None));

    let e = one(Market::Inverse, "chart_trades.json");
    common(&e, MarketType::Inverse, Some("BTC-PERPETUAL"), Some(1_767_200_040_000));
    let EventKind::Kline(k) = &e.kind else { panic!("{e:?}") };
    assert_eq!(k.interval, "1m");
    assert_eq!((k.open_time, k.close_time), (1_767_200_040_000_000_000, 1_767_200_099_999_000_000));
    assert_eq!((k.open, k.high, k.low, k.close), (d("87490.0"), d("87500.0"), d("87465.0"), d("87474.0")));
    assert_eq!((k.volume, k.quote_volume, k.trades, k.closed), (d("0.95978896"), d("83970.0"), None, false));
    assert_eq!(classify("chart_trades.json"), data("chart.trades.BTC-PERPETUAL.1", None));

    // The volatility index is not modelled: unknown, the frame kept.
    let text = fixture("volatility_index.json");
    let e = one(Market::Inverse, "volatility_index.json");
    assert_eq!(e.kind, EventKind::Unknown { raw: text });
    assert_eq!(e.exchange_ts, None);
    assert_eq!(classify("volatility_index.json"), data("deribit_volatility_index.btc_usd", None));
}

#[test]
fn portfolio_is_a_balance_update() {
    let e = one(Market::Linear, "user_portfolio.json");
    common(&e, MarketType::Linear, None, None);
    let EventKind::BalanceUpdate(b) = &e.kind else { panic!("{e:?}") };
    assert_eq!((b.reason.as_deref(), b.balances.len()), (None, 1));
    let b = &b.balances[0];
    assert_eq!(b.asset, "USDT");
    assert_eq!(
        (b.wallet_balance, b.free, b.cross_wallet_balance),
        (Some(d("55.00055")), Some(d("53.868247")), Some(d("54.968258")))
    );
    assert_eq!((b.locked, b.delta), (None, None));
    let creds = std::sync::Arc::new(ferrofeed_venues::auth::Credentials::hmac("id", "secret").unwrap());
    let private = DeribitRules::private(creds, Default::default(), Default::default()).unwrap();
    let text: &'static str = Box::leak(fixture("user_portfolio.json").into_boxed_str());
    assert_eq!(private.classify(text), data("user.portfolio.any", None));
}

#[test]
fn control_frames_classify_for_the_engine() {
    let Inbound::Reply(reply) = classify("heartbeat_test_request.json") else { panic!() };
    let r: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!((r["method"].as_str(), r["params"].as_object().map(|o| o.len())), (Some("public/test"), Some(0)));
    assert!(ferrofeed_venues::deribit::is_test_id(r["id"].as_u64().unwrap()));

    let Inbound::AckPartial { id, streams } = classify("subscribe_response.json") else { panic!() };
    assert_eq!((id, streams.len()), (0, 30));
    assert_eq!(streams[0], "trades.ETH-30JUL21-2800-C.raw");
    assert_eq!(streams[10], "ticker.ETH-30JUL21-2800-C.raw");
    assert_eq!(streams[29], "book.BTC-24JUN22-15000-C.raw");

    assert_eq!(
        classify("error_too_many_requests.json"),
        Inbound::Rejected { id: Some(1), code: 10028, msg: "too_many_requests".into(), streams: vec![] }
    );
    for (rel, id) in [
        ("private_buy_response.json", 3),
        ("private_sell_response.json", 4),
        ("private_edit_response.json", 7),
        ("private_cancel_response.json", 11),
    ] {
        assert_eq!(classify(rel), Inbound::Ack { id }, "{rel}");
    }
    // Answers and heartbeats are not data: unknown, keeping the frame.
    for rel in ["heartbeat_test_request.json", "subscribe_response.json", "error_too_many_requests.json"] {
        let text = fixture(rel);
        assert_eq!(one(Market::Inverse, rel).kind, EventKind::Unknown { raw: text }, "{rel}");
    }
}

fn plan() -> ferrofeed_venues::trading::TradingPlan {
    let creds = std::sync::Arc::new(ferrofeed_venues::auth::Credentials::hmac("k", "s").unwrap());
    let clock = std::sync::Arc::new(ferrofeed_venues::auth::Clock::default());
    DeribitTrading
        .plan(MarketType::Inverse, "any", &ferrofeed_venues::env::Environment::Production, creds, clock)
        .unwrap()
}

fn place(side: Side) -> OrderRequest {
    OrderRequest::Place(PlaceOrder {
        symbol: "ETH_USDC-PERPETUAL".into(),
        side,
        order_type: OrderType::Limit,
        qty: d("0.001"),
        price: Some(d("2973.55")),
        time_in_force: TimeInForce::Gtc,
        post_only: true,
        reduce_only: false,
        client_order_id: Some("O-19700101-000000-001-001-1".into()),
    })
}

#[test]
fn order_answers_decode_into_typed_answers() {
    let t = DeribitTrading;
    let OrderAnswer::Placed { order, fills } =
        t.decode(&plan(), &place(Side::Buy), &fixture("private_buy_response.json"), RX).unwrap()
    else {
        panic!()
    };
    assert!(fills.is_empty());
    assert_eq!(
        (order.order_id.as_str(), order.client_order_id.as_str()),
        ("USDC-104819327443", "O-19700101-000000-001-001-1")
    );
    assert_eq!(
        (order.side, order.order_type.as_str(), order.time_in_force.as_deref()),
        (Side::Buy, "limit", Some("good_til_cancelled"))
    );
    assert_eq!((order.status.as_str(), order.execution_type.as_str()), ("open", "open"));
    assert_eq!(
        (order.price, order.qty, order.filled_qty, order.avg_price),
        (Some(d("2973.55")), d("0.001"), d("0.0"), None)
    );
    assert_eq!((order.reduce_only, order.stop_price, order.reject_reason.as_deref()), (Some(false), None, None));

    let OrderAnswer::Placed { order, .. } =
        t.decode(&plan(), &place(Side::Sell), &fixture("private_sell_response.json"), RX).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (order.order_id.as_str(), order.client_order_id.as_str()),
        ("USDC-104819327458", "O-19700101-000000-001-001-2")
    );
    assert_eq!((order.side, order.price, order.qty), (Side::Sell, Some(d("3286.7")), d("0.001")));

    let amend = OrderRequest::Amend(AmendOrder {
        side: None,
        symbol: "ETH_USDC-PERPETUAL".into(),
        order: OrderRef::OrderId("USDC-104819327443".into()),
        qty: Some(d("0.001")),
        price: Some(d("3067.2")),
    });
    let OrderAnswer::Amended { order, fills } =
        t.decode(&plan(), &amend, &fixture("private_edit_response.json"), RX).unwrap()
    else {
        panic!()
    };
    assert!(fills.is_empty());
    assert_eq!(
        (order.order_id.as_str(), order.price, order.status.as_str()),
        ("USDC-104819327443", Some(d("3067.2")), "open")
    );
    assert_eq!(order.execution_type, "replaced");

    let cancel = OrderRequest::Cancel(CancelOrder {
        symbol: "ETH_USDC-PERPETUAL".into(),
        order: OrderRef::OrderId("USDC-104819327443".into()),
    });
    let OrderAnswer::Cancelled { order } =
        t.decode(&plan(), &cancel, &fixture("private_cancel_response.json"), RX).unwrap()
    else {
        panic!()
    };
    assert_eq!((order.order_id.as_str(), order.status.as_str()), ("USDC-104819327443", "cancelled"));
    assert_eq!((order.price, order.filled_qty, order.reject_reason), (Some(d("3067.2")), d("0.0"), None));

    let e = t.decode(&plan(), &cancel, &fixture("error_too_many_requests.json"), RX).unwrap_err();
    let TradeError::Refused(r) = e else { panic!("{e}") };
    assert_eq!((r.venue, r.request, r.code, r.message.as_str()), ("deribit", "cancel", 10028, "too_many_requests"));
    assert_eq!((r.kind, r.detail), (RefusalKind::RateLimited, None));

    // The request frames the engine sends for these answers.
    let f: serde_json::Value = serde_json::from_str(&t.encode(&plan(), 3, &place(Side::Buy)).unwrap()).unwrap();
    assert_eq!((f["id"].as_u64(), f["method"].as_str()), (Some(3), Some("private/buy")));
}

/// The recorded `book.BTC-24SEP21-8000-P.raw` stream (1 snapshot + 30
/// changes) through the classifier, the decoder, the change-id rule and
/// `BookSync`: in sync from the snapshot on, every change applied, no gap,
/// and the final book the one an independent replay gives (best bid 0.0005
/// × 153.1, best ask 0.0015 × 94.7, 1 × 14 levels, change id 33195898166).
#[test]
fn recorded_book_replays_without_a_gap() {
    let text = fixture("book_sync/BTC-24SEP21-8000-P/book.jsonl");
    let rules = DeribitRules::public();
    let mut sync: BookSync = BookSync::new(book::sequencing(), SyncConfig::default());
    let mut out = Vec::new();
    let (mut frames, mut synced, mut applied) = (0, 0, 0);
    let mut last: Option<Seq> = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        frames += 1;
        let Inbound::Data { stream, seq: Some(seq) } = rules.classify(line) else { panic!("{line}") };
        assert_eq!(stream, "book.BTC-24SEP21-8000-P.raw");
        match last {
            Some(prev) => assert_eq!(seq.prev, Some(prev.last), "the chain holds"),
            None => assert_eq!(seq, Seq::reset(33_195_894_164)),
        }
        last = Some(seq);
        let mut events = Vec::new();
        decode(Market::Option, line, RX, &mut events).expect("decodes");
        for e in events {
            match e.kind {
                EventKind::BookSnapshot(s) => sync.on_stream_snapshot(s, &mut out),
                EventKind::BookDelta(d) => sync.on_delta(d, &mut out),
                other => panic!("{other:?}"),
            }
        }
        for ev in out.drain(..) {
            match ev {
                SyncEvent::Synced { .. } => synced += 1,
                SyncEvent::Applied(_) => applied += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!((frames, synced, applied), (31, 1, 30));
    let st = sync.stats();
    assert_eq!((st.gaps, st.resyncs, st.suppressed, st.snapshots), (0, 0, 0, 1));
    assert_eq!(sync.phase(), Phase::Synced);
    let b = sync.book().expect("in sync");
    assert_eq!(b.last_update_id(), 33_195_898_166);
    assert_eq!((b.best_bid(), b.best_ask()), (Some(lvl("0.0005", "153.1")), Some(lvl("0.0015", "94.7"))));
    assert_eq!(b.depth(), (1, 14));
}

/// The same capture with one change dropped: the next change does not
/// continue the chain, the book leaves sync, and a new snapshot (what a
/// resubscription brings) puts it back.
#[test]
fn a_broken_chain_recovers_with_a_new_snapshot() {
    let text = fixture("book_sync/BTC-24SEP21-8000-P/book.jsonl");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut sync: BookSync = BookSync::new(book::sequencing(), SyncConfig::default());
    let mut out = Vec::new();
    let feed = |line: &str, sync: &mut BookSync, out: &mut Vec<SyncEvent>| {
        let mut events = Vec::new();
        decode(Market::Option, line, RX, &mut events).expect("decodes");
        for e in events {
            match e.kind {
                EventKind::BookSnapshot(s) => sync.on_stream_snapshot(s, out),
                EventKind::BookDelta(d) => sync.on_delta(d, out),
                other => panic!("{other:?}"),
            }
        }
    };
    for (i, line) in lines.iter().enumerate().take(12) {
        if i == 5 {
            continue; // lost
        }
        feed(line, &mut sync, &mut out);
    }
    assert!(out.iter().any(|e| matches!(e, SyncEvent::Resync { .. })), "{out:?}");
    assert_ne!(sync.phase(), Phase::Synced);
    assert!(sync.book().is_none());
    assert!(sync.stats().gaps >= 1);
    out.clear();
    // The resubscription's snapshot: the recorded one, then the changes after it.
    feed(lines[0], &mut sync, &mut out);
    for line in &lines[1..] {
        feed(line, &mut sync, &mut out);
    }
    assert_eq!(sync.phase(), Phase::Synced);
    assert_eq!(sync.book().map(|b| b.last_update_id()), Some(33_195_898_166));
}

#[test]
fn malformed_frames_are_errors_that_keep_the_payload() {
    let mut out = Vec::new();
    for bad in [
        "{not json",
        r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.raw","data":{"type":"change","timestamp":1,"instrument_name":"X","change_id":5,"bids":[],"asks":[]}}}"#,
        r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.raw","data":{"type":"snapshot","timestamp":1,"instrument_name":"X","change_id":5,"bids":[["new","x",1]],"asks":[]}}}"#,
        r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.X.raw","data":[{"trade_id":"1","trade_seq":1,"timestamp":1,"price":1.5,"amount":2,"direction":"up","instrument_name":"X"}]}}"#,
        r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"quote.X","data":{"timestamp":99999999999999999,"instrument_name":"X"}}}"#,
        r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"chart.trades.X.7W","data":{"tick":1,"open":1,"high":1,"low":1,"close":1,"volume":1,"cost":1}}}"#,
    ] {
        let e = decode(Market::Inverse, bad, RX, &mut out).expect_err(bad);
        assert_eq!(e.payload(), bad);
        assert!(matches!(e, DecodeError::Malformed { .. } | DecodeError::Invalid { .. }), "{e}");
    }
    assert!(out.is_empty(), "{out:?}");
    assert!(matches!(DeribitRules::public().classify("{not json"), Inbound::Malformed(_)));
}
