//! Binance trading over the WebSocket APIs through the venue-neutral order
//! client (issue 21), against the simulator over real sockets: spot on
//! `/ws-api/v3` after `session.logon` (Ed25519), USDⓈ-M on `/ws-fapi/v1`
//! signing every request (HMAC). Place → fill → `order_update` and
//! `user_trade` on the account's private stream; amend; cancel; cancel all;
//! each refusal with its typed error; a request in flight across a kill
//! ending as "outcome unknown"; the local order-rate guard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrofeed::client::Environment;
use ferrofeed::engine::BackoffConfig;
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{Event, EventKind, Side};
use ferrofeed::session::{Credentials, PrivateClient, PrivateConfig};
use ferrofeed::trading::{OrderClient, OrderConfig, OrderError};
use ferrofeed::venues::registry;
use ferrofeed::venues::trading::{
    AmendOrder, CancelOrder, OrderAnswer, OrderRef, OrderType, PlaceOrder, RefusalKind, TimeInForce, TradeError,
};
use ferrofeed_sim::{
    KillMode, MarketConfig, MarketHandle, MarketKind, OrderRateLimit, Sim, SimConfig, TEST_API_KEY, TEST_ED25519_SEED,
    TEST_HMAC_SECRET,
};

const SYM: &str = "BTCUSDT";
const WAIT: Duration = Duration::from_secs(20);

async fn sim(kind: MarketKind, tune: impl FnOnce(&mut MarketConfig)) -> (Sim, MarketHandle) {
    let mut m = MarketConfig::new(kind);
    m.symbols.retain(|s| s.name == SYM);
    m.timing.actions_per_sec = 50.0;
    tune(&mut m);
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn env(h: &MarketHandle) -> Environment {
    Environment::Custom { ws: h.ws_url(), rest: h.rest_url() }
}

fn fast() -> BackoffConfig {
    BackoffConfig { initial: Duration::from_millis(50), max: Duration::from_millis(500), ..BackoffConfig::default() }
}

fn ed25519() -> Credentials {
    Credentials::ed25519_seed(TEST_API_KEY, TEST_ED25519_SEED).expect("creds")
}

fn hmac() -> Credentials {
    Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds")
}

async fn orders(h: &MarketHandle, market: &str, creds: Credentials, check: bool) -> OrderClient {
    let cfg = OrderConfig { environment: env(h), backoff: fast(), check_instruments: check, ..OrderConfig::default() };
    let market = registry::parse_market(market).expect("market");
    let account = if market.market == ferrofeed::model::event::MarketType::Spot { "spot" } else { "usdm" };
    OrderClient::connect(market, account, creds, cfg).await.expect("the trading connection comes up")
}

async fn private(h: &MarketHandle, account: &str, creds: Credentials) -> PrivateClient {
    let cfg = PrivateConfig { environment: env(h), backoff: fast(), ..PrivateConfig::default() };
    let mut p = PrivateClient::new("binance", creds, cfg).expect("venue");
    p.open(account).await.expect("open");
    until(&mut p, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    p
}

async fn until(c: &mut PrivateClient, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), c.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} in time; saw {seen:#?}"))
            .expect("open");
        let done = pred(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn best(h: &MarketHandle) -> (Decimal, Decimal) {
    let b = h.book(SYM, 1).expect("book");
    (b.bids[0][0].parse().expect("bid"), b.asks[0][0].parse().expect("ask"))
}

/// A price far below the market, on the tick.
fn far_below(o: &OrderClient, h: &MarketHandle) -> Decimal {
    let tick = o.instruments().and_then(|r| r.get(SYM)).and_then(|i| i.tick_size).expect("tick size");
    ((best(h).0 * d("0.8")) / tick).floor() * tick
}

fn place(side: Side, order_type: OrderType, qty: &str, price: Option<Decimal>, id: Option<&str>) -> PlaceOrder {
    PlaceOrder {
        symbol: SYM.into(),
        side,
        order_type,
        qty: d(qty),
        price,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        client_order_id: id.map(str::to_string),
    }
}

/// Orders the simulator's account holds: open ones and finished ones.
fn placed(h: &MarketHandle) -> usize {
    let a = h.account(None).expect("account");
    a.open_orders.len() + a.orders.len()
}

fn refusal(e: OrderError) -> (RefusalKind, i64) {
    let r = e.refusal().unwrap_or_else(|| panic!("a venue refusal, got {e}"));
    (r.kind, r.code)
}

fn invalid(e: &OrderError) -> bool {
    matches!(e, OrderError::Trade(TradeError::Invalid { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_orders_over_the_websocket_api_and_their_fills_on_the_user_stream() {
    let (_sim, h) = sim(MarketKind::Spot, |_| {}).await;
    let mut user = private(&h, "spot", ed25519()).await;
    let o = orders(&h, "binance:spot", ed25519(), true).await;

    // A market order fills at once; its fills come back in the answer and on
    // the user stream as order_update and user_trade.
    let a = o.place(place(Side::Buy, OrderType::Market, "0.01", None, Some("mkt-1"))).await.expect("placed");
    let OrderAnswer::Placed { order, fills } = a else { panic!("{a:?}") };
    assert_eq!((order.status.as_str(), order.filled_qty), ("FILLED", d("0.01")));
    assert_eq!(fills.iter().map(|f| f.qty).sum::<Decimal>(), d("0.01"));
    let got = std::cell::Cell::new(Decimal::ZERO);
    let seen = until(&mut user, "the fills as user_trade events", |e| {
        if let EventKind::UserTrade(t) = &e.kind {
            assert_eq!(t.order_id, order.order_id);
            assert!(fills.iter().any(|f| f.trade_id == t.trade_id && f.price == t.price), "{t:?} in {fills:?}");
            got.set(got.get() + t.qty);
        }
        got.get() == d("0.01")
    })
    .await;
    assert!(
        seen.iter().any(
            |e| matches!(&e.kind, EventKind::OrderUpdate(u) if u.order_id == order.order_id && u.status == "FILLED")
        ),
        "{seen:#?}"
    );
    let got = got.get();
    assert_eq!(got, d("0.01"), "every fill arrived as a user_trade: {seen:#?}");

    // A resting limit order: status, amend (quantity, then price), cancel.
    let px = far_below(&o, &h);
    let a = o.place(place(Side::Buy, OrderType::Limit, "0.02", Some(px), Some("rest-1"))).await.expect("placed");
    let OrderAnswer::Placed { order, fills } = a else { panic!("{a:?}") };
    assert_eq!((order.status.as_str(), fills.len()), ("NEW", 0));
    let s = o.status(SYM, OrderRef::ClientOrderId("rest-1".into())).await.expect("status");
    assert!(matches!(&s, OrderAnswer::Status { order: st } if st.order_id == order.order_id && st.status == "NEW"));
    let amend = |qty: Option<&str>, price: Option<Decimal>, side: Option<Side>| AmendOrder {
        symbol: SYM.into(),
        order: OrderRef::ClientOrderId("rest-1".into()),
        qty: qty.map(d),
        price,
        side,
    };
    let a = o.amend(amend(Some("0.01"), None, None)).await.expect("keep-priority amend");
    assert!(matches!(&a, OrderAnswer::Amended { order: x, .. } if x.qty == d("0.01")), "{a:?}");
    // A price change without the side is refused before sending.
    let e = o.amend(amend(Some("0.01"), Some(px - d("1")), None)).await.expect_err("needs the side");
    assert!(invalid(&e), "{e}");
    let a = o.amend(amend(Some("0.01"), Some(px - d("1")), Some(Side::Buy))).await.expect("cancel-replace");
    let OrderAnswer::Amended { order: replaced, .. } = a else { panic!("{a:?}") };
    assert_eq!((replaced.price, replaced.qty, replaced.status.as_str()), (Some(px - d("1")), d("0.01"), "NEW"));
    let open = o.open_orders(SYM).await.expect("open orders");
    let OrderAnswer::OpenOrders { orders: list } = open else { panic!("{open:?}") };
    assert_eq!(list.iter().map(|x| x.order_id.as_str()).collect::<Vec<_>>(), [replaced.order_id.as_str()]);
    let c = o
        .cancel(CancelOrder { symbol: SYM.into(), order: OrderRef::OrderId(replaced.order_id.clone()) })
        .await
        .expect("cancel");
    assert!(matches!(&c, OrderAnswer::Cancelled { order: x } if x.status == "CANCELED"), "{c:?}");
    until(
        &mut user,
        "the cancel",
        |e| matches!(&e.kind, EventKind::OrderUpdate(u) if u.order_id == replaced.order_id && u.status == "CANCELED"),
    )
    .await;

    // Cancel all.
    for id in ["all-1", "all-2"] {
        o.place(place(Side::Buy, OrderType::Limit, "0.01", Some(px), Some(id))).await.expect("placed");
    }
    let a = o.cancel_all(Some(SYM.into())).await.expect("cancel all");
    assert_eq!(a, OrderAnswer::CancelledAll { count: Some(2) });
    let open = o.open_orders(SYM).await.expect("open orders");
    assert_eq!(open, OrderAnswer::OpenOrders { orders: vec![] });
    o.close().await;
    user.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_refusals_are_typed_and_the_instrument_checks_refuse_before_sending() {
    let (_sim, h) = sim(MarketKind::Spot, |_| {}).await;
    let checked = orders(&h, "binance:spot", ed25519(), true).await;
    let raw = orders(&h, "binance:spot", ed25519(), false).await;
    let (_, ask) = best(&h);
    let sent = || placed(&h);

    // Off the tick, off the step, an unlisted symbol: refused locally, nothing sent.
    let before = sent();
    let off_tick = place(Side::Buy, OrderType::Limit, "0.01", Some(far_below(&checked, &h) + d("0.001")), None);
    let e = checked.place(off_tick.clone()).await.expect_err("off the tick");
    assert!(invalid(&e) && e.to_string().contains("tick size"), "{e}");
    let e = checked.place(place(Side::Buy, OrderType::Market, "0.0000001", None, None)).await.expect_err("step");
    assert!(invalid(&e) && e.to_string().contains("step size"), "{e}");
    let e = checked.place(PlaceOrder { symbol: "NOPEUSDT".into(), ..off_tick.clone() }).await.expect_err("symbol");
    assert!(invalid(&e) && e.to_string().contains("not listed"), "{e}");
    assert_eq!(sent(), before, "nothing reached the venue");
    // The venue refuses the same with its own codes.
    assert_eq!(refusal(raw.place(off_tick.clone()).await.expect_err("filter")), (RefusalKind::InvalidOrder, -1013));
    let e = raw.place(PlaceOrder { symbol: "NOPEUSDT".into(), ..off_tick }).await.expect_err("symbol");
    assert_eq!(refusal(e), (RefusalKind::UnknownInstrument, -1121));

    // Not enough balance; a post-only order that would take; unknown orders.
    let e = raw.place(place(Side::Buy, OrderType::Market, "1000", None, None)).await.expect_err("balance");
    assert_eq!(refusal(e), (RefusalKind::InsufficientFunds, -2010));
    let maker = PlaceOrder { post_only: true, ..place(Side::Buy, OrderType::Limit, "0.01", Some(ask), None) };
    assert_eq!(refusal(raw.place(maker).await.expect_err("would take")), (RefusalKind::WouldTake, -2010));
    let gone = CancelOrder { symbol: SYM.into(), order: OrderRef::OrderId("987654321".into()) };
    let (kind, _) = refusal(raw.cancel(gone).await.expect_err("unknown order"));
    assert_eq!(kind, RefusalKind::OrderNotFound);
    let (kind, code) = refusal(raw.status(SYM, OrderRef::ClientOrderId("nope".into())).await.expect_err("status"));
    assert_eq!((kind, code), (RefusalKind::OrderNotFound, -2013));
    // Shapes the venue refuses are refused before sending.
    let e = raw.place(place(Side::Buy, OrderType::Limit, "0.01", None, None)).await.expect_err("no price");
    assert!(invalid(&e), "{e}");
    let e = raw.cancel_all(None).await.expect_err("spot cancel-all names a symbol");
    assert!(invalid(&e), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_order_rate_guard_follows_the_venue_limit_and_refuses_before_sending() {
    // The venue allows 4 new orders a day to this account.
    let (_sim, h) = sim(MarketKind::Spot, |m| {
        m.limits.order_rate_limits = vec![OrderRateLimit::new(10, 50), OrderRateLimit::new(86_400, 4)];
    })
    .await;
    let o = orders(&h, "binance:spot", ed25519(), true).await;
    let px = far_below(&o, &h);
    for i in 0..4 {
        let id = format!("g-{i}");
        o.place(place(Side::Buy, OrderType::Limit, "0.01", Some(px), Some(&id))).await.expect("within the limit");
    }
    // The answers reported the venue's count: the guard knows the day is used up.
    let day = o
        .rate_limits()
        .into_iter()
        .find(|u| u.limit.name == "ORDERS" && u.limit.window == Duration::from_secs(86_400))
        .expect("the daily ORDERS limit");
    assert_eq!((day.limit.limit, day.used), (4, 4), "{day:?}");
    let before = placed(&h);
    let e = o.place(place(Side::Buy, OrderType::Limit, "0.01", Some(px), Some("g-5"))).await.expect_err("guard");
    let OrderError::RateGuard(r) = &e else { panic!("the local guard, got {e}") };
    assert_eq!((r.limit.limit, r.used, r.cost), (4, 4, 1));
    assert!(r.retry_after_ms <= 86_400_000, "{r:?}");
    assert!(!e.outcome_unknown());
    assert_eq!(placed(&h), before, "the refused order was not sent");
    // Requests that place nothing still go through.
    assert!(matches!(o.open_orders(SYM).await, Ok(OrderAnswer::OpenOrders { orders }) if orders.len() == 4));
    let a = o.cancel(CancelOrder { symbol: SYM.into(), order: OrderRef::ClientOrderId("g-0".into()) }).await;
    assert!(matches!(a, Ok(OrderAnswer::Cancelled { .. })), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_in_flight_across_a_kill_ends_as_outcome_unknown_and_exists_after_the_reconnect() {
    let (_sim, h) = sim(MarketKind::Spot, |_| {}).await;
    let o = Arc::new(orders(&h, "binance:spot", ed25519(), true).await);
    let px = far_below(&o, &h);
    let before = placed(&h);
    // The venue stops writing: the order is placed, its answer never comes.
    assert!(h.stall(None, Duration::from_secs(60)) >= 1);
    let c = o.clone();
    let pending =
        tokio::spawn(
            async move { c.place(place(Side::Buy, OrderType::Limit, "0.01", Some(px), Some("in-flight"))).await },
        );
    let deadline = Instant::now() + WAIT;
    while placed(&h) == before {
        assert!(Instant::now() < deadline, "the order reached the venue");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(h.kill_all(KillMode::Reset) >= 1);
    let err = pending.await.expect("task").expect_err("the answer was lost");
    assert!(err.outcome_unknown(), "{err}");
    assert!(o.ready(WAIT).await, "the trading connection came back");
    let status = loop {
        match o.status(SYM, OrderRef::ClientOrderId("in-flight".into())).await {
            Ok(a) => break a,
            Err(e) if !e.outcome_unknown() && e.refusal().is_none() => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("status after the reconnect: {e}"),
        }
    };
    assert!(matches!(&status, OrderAnswer::Status { order } if order.status == "NEW"), "{status:?}");
    assert!(o.stats().reconnects >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_orders_on_ws_fapi_signed_per_request_reach_the_listen_key_stream() {
    let (_sim, h) = sim(MarketKind::UsdM, |_| {}).await;
    let mut user = private(&h, "usdm", hmac()).await;
    let o = orders(&h, "binance:usdm", hmac(), true).await;
    let a = o.place(place(Side::Buy, OrderType::Market, "0.01", None, Some("fut-1"))).await.expect("placed");
    let OrderAnswer::Placed { order, .. } = a else { panic!("{a:?}") };
    let seen = until(
        &mut user,
        "the fill",
        |e| matches!(&e.kind, EventKind::OrderUpdate(u) if u.order_id == order.order_id && u.status == "FILLED"),
    )
    .await;
    until(&mut user, "the user_trade", |e| matches!(&e.kind, EventKind::UserTrade(t) if t.order_id == order.order_id))
        .await;
    assert!(seen.iter().all(|e| e.market == ferrofeed::model::event::MarketType::UsdM));
    // A resting order: modify (with the side), status, cancel.
    let px = far_below(&o, &h);
    let a = o.place(place(Side::Buy, OrderType::Limit, "0.02", Some(px), Some("fut-2"))).await.expect("placed");
    let OrderAnswer::Placed { order, .. } = a else { panic!("{a:?}") };
    let a = o
        .amend(AmendOrder {
            symbol: SYM.into(),
            order: OrderRef::OrderId(order.order_id.clone()),
            qty: Some(d("0.03")),
            price: Some(px - d("1")),
            side: Some(Side::Buy),
        })
        .await
        .expect("modify");
    assert!(matches!(&a, OrderAnswer::Amended { order: x, .. } if x.qty == d("0.03") && x.price == Some(px - d("1"))));
    until(&mut user, "the amendment", |e| {
        matches!(&e.kind, EventKind::OrderUpdate(u) if u.order_id == order.order_id && u.execution_type == "AMENDMENT")
    })
    .await;
    let s = o.status(SYM, OrderRef::ClientOrderId("fut-2".into())).await.expect("status");
    assert!(matches!(&s, OrderAnswer::Status { order: x } if x.qty == d("0.03")), "{s:?}");
    let c = o.cancel(CancelOrder { symbol: SYM.into(), order: OrderRef::ClientOrderId("fut-2".into()) }).await;
    assert!(matches!(&c, Ok(OrderAnswer::Cancelled { .. })), "{c:?}");
    // USD-M's WebSocket API has no open-orders method: refused before sending.
    assert!(invalid(&o.open_orders(SYM).await.expect_err("not on ws-fapi")));
    let (kind, _) = refusal(
        o.cancel(CancelOrder { symbol: SYM.into(), order: OrderRef::ClientOrderId("fut-2".into()) })
            .await
            .expect_err("already cancelled"),
    );
    assert_eq!(kind, RefusalKind::OrderNotFound);
    o.close().await;
    user.shutdown().await;
}
