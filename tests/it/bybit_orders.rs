//! Bybit trading over `/v5/trade` through the venue-neutral order client
//! (issue 21), against the simulator over real sockets: the venue answers
//! with the order's ids, and the order's states and fills arrive on the
//! private stream (`order_update`, `user_trade`); amend; cancel; the batch
//! forms with one refused item; each refusal with its typed error; a request
//! in flight across a kill ending as "outcome unknown"; the local order-rate
//! guard following the venue's `X-Bapi-Limit*` header.

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
    AmendOrder, BatchItem, CancelOrder, OrderAnswer, OrderRef, OrderRequest, OrderType, PlaceOrder, RefusalKind,
    TimeInForce, TradeError,
};
use ferrofeed_sim::{
    BybitCategory, KillMode, MarketConfig, MarketHandle, Sim, SimConfig, TEST_API_KEY, TEST_HMAC_SECRET,
};

const SYM: &str = "BTCUSDT";
const WAIT: Duration = Duration::from_secs(20);

async fn sim(tune: impl FnOnce(&mut MarketConfig)) -> (Sim, MarketHandle) {
    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.retain(|s| s.name == SYM);
    m.timing.actions_per_sec = 50.0;
    tune(&mut m);
    let spec = &m.symbols[0];
    assert_eq!(Decimal::new(spec.tick_multiple, spec.price_decimals), tick(), "the simulated tick size");
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

fn creds() -> Credentials {
    Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds")
}

async fn orders(h: &MarketHandle) -> OrderClient {
    let cfg = OrderConfig { environment: env(h), backoff: fast(), check_instruments: false, ..OrderConfig::default() };
    let market = registry::parse_market("bybit:linear").expect("market");
    OrderClient::connect(market, "linear", creds(), cfg).await.expect("the trading connection comes up")
}

async fn private(h: &MarketHandle) -> PrivateClient {
    let cfg = PrivateConfig { environment: env(h), backoff: fast(), ..PrivateConfig::default() };
    let mut p = PrivateClient::new("bybit", creds(), cfg).expect("venue");
    p.open("linear").await.expect("open");
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

fn tick() -> Decimal {
    d("0.01")
}

fn far_below(h: &MarketHandle) -> Decimal {
    ((best(h).0 * d("0.8")) / tick()).floor() * tick()
}

fn place(side: Side, order_type: OrderType, qty: &str, price: Option<Decimal>, id: &str) -> PlaceOrder {
    PlaceOrder {
        symbol: SYM.into(),
        side,
        order_type,
        qty: d(qty),
        price,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        client_order_id: Some(id.into()),
    }
}

fn accepted(a: &OrderAnswer) -> (String, Option<String>) {
    match a {
        OrderAnswer::Accepted { order_id, client_order_id } => (order_id.clone(), client_order_id.clone()),
        other => panic!("not accepted: {other:?}"),
    }
}

fn refusal(e: OrderError) -> (RefusalKind, i64) {
    let r = e.refusal().unwrap_or_else(|| panic!("a venue refusal, got {e}"));
    (r.kind, r.code)
}

fn update_of<'a>(e: &'a Event, order_id: &str) -> Option<&'a ferrofeed::model::event::OrderUpdate> {
    match &e.kind {
        EventKind::OrderUpdate(u) if u.order_id == order_id => Some(u),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_on_the_trade_socket_and_their_states_and_fills_on_the_private_stream() {
    let (_sim, h) = sim(|_| {}).await;
    let mut user = private(&h).await;
    let o = orders(&h).await;

    // A market order: accepted with its ids; the fills on the private stream.
    let (id, link) =
        accepted(&o.place(place(Side::Buy, OrderType::Market, "0.01", None, "mkt-1")).await.expect("placed"));
    assert_eq!(link.as_deref(), Some("mkt-1"));
    let got = std::cell::Cell::new(Decimal::ZERO);
    let seen = until(&mut user, "the fills", |e| {
        if let EventKind::UserTrade(t) = &e.kind {
            assert_eq!(t.order_id, id);
            got.set(got.get() + t.qty);
        }
        got.get() == d("0.01")
    })
    .await;
    if !seen.iter().any(|e| update_of(e, &id).is_some_and(|u| u.status == "Filled")) {
        until(&mut user, "the filled order", |e| update_of(e, &id).is_some_and(|u| u.status == "Filled")).await;
    }

    // A resting limit order: amend its price and quantity, then cancel it.
    let px = far_below(&h);
    let (rest, _) =
        accepted(&o.place(place(Side::Buy, OrderType::Limit, "0.02", Some(px), "rest-1")).await.expect("placed"));
    until(&mut user, "the new order", |e| update_of(e, &rest).is_some_and(|u| u.status == "New")).await;
    let a = o
        .amend(AmendOrder {
            symbol: SYM.into(),
            order: OrderRef::ClientOrderId("rest-1".into()),
            qty: Some(d("0.03")),
            price: Some(px - tick()),
            side: None,
        })
        .await
        .expect("amended");
    assert_eq!(accepted(&a).0, rest);
    until(&mut user, "the amended order", |e| {
        update_of(e, &rest).is_some_and(|u| u.qty == d("0.03") && u.price == Some(px - tick()))
    })
    .await;
    let c = o.cancel(CancelOrder { symbol: SYM.into(), order: OrderRef::OrderId(rest.clone()) }).await.expect("cancel");
    assert_eq!(accepted(&c).0, rest);
    until(&mut user, "the cancelled order", |e| update_of(e, &rest).is_some_and(|u| u.status == "Cancelled")).await;

    // A batch of two places, one refused (below the minimum quantity): each
    // item answered on its own.
    let items = vec![
        OrderRequest::Place(place(Side::Buy, OrderType::Limit, "0.01", Some(px), "b-1")),
        OrderRequest::Place(place(Side::Buy, OrderType::Limit, "0.0001", Some(px), "b-2")),
    ];
    let b = o.batch(items).await.expect("batch");
    let OrderAnswer::Batch { items } = b else { panic!("{b:?}") };
    assert_eq!(items.len(), 2);
    let BatchItem::Answer(first) = &items[0] else { panic!("{items:?}") };
    let (b1, _) = accepted(first);
    assert!(matches!(&items[1], BatchItem::Refusal(r) if r.kind == RefusalKind::InvalidOrder), "{items:?}");
    // Cancel the placed one by batch, with an unknown one beside it.
    let cancels = vec![
        OrderRequest::Cancel(CancelOrder { symbol: SYM.into(), order: OrderRef::OrderId(b1.clone()) }),
        OrderRequest::Cancel(CancelOrder { symbol: SYM.into(), order: OrderRef::ClientOrderId("nope".into()) }),
    ];
    let OrderAnswer::Batch { items } = o.batch(cancels).await.expect("batch cancel") else { panic!() };
    assert!(matches!(&items[0], BatchItem::Answer(a) if accepted(a).0 == b1), "{items:?}");
    assert!(matches!(&items[1], BatchItem::Refusal(r) if r.kind == RefusalKind::OrderNotFound), "{items:?}");
    until(&mut user, "the batch cancel", |e| update_of(e, &b1).is_some_and(|u| u.status == "Cancelled")).await;
    o.close().await;
    user.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed_and_malformed_requests_are_not_sent() {
    let (_sim, h) = sim(|_| {}).await;
    let o = orders(&h).await;
    let px = far_below(&h);
    let (_, ask) = best(&h);
    let e = o.place(place(Side::Buy, OrderType::Market, "100000", None, "big")).await.expect_err("balance");
    assert_eq!(refusal(e), (RefusalKind::InsufficientFunds, 110007));
    let e = o
        .place(place(Side::Buy, OrderType::Limit, "0.01", Some(px + tick() / d("2")), "tick"))
        .await
        .expect_err("tick");
    assert_eq!(refusal(e).0, RefusalKind::InvalidOrder);
    let e = o.place(place(Side::Buy, OrderType::Limit, "0.0001", Some(px), "min")).await.expect_err("min qty");
    assert_eq!(refusal(e).0, RefusalKind::InvalidOrder);
    let e = o
        .place(PlaceOrder { symbol: "NOPEUSDT".into(), ..place(Side::Buy, OrderType::Limit, "0.01", Some(px), "sym") });
    let (kind, code) = refusal(e.await.expect_err("unknown symbol"));
    assert_eq!((kind, code), (RefusalKind::UnknownInstrument, 10001));
    let gone = CancelOrder { symbol: SYM.into(), order: OrderRef::ClientOrderId("never".into()) };
    assert_eq!(refusal(o.cancel(gone).await.expect_err("unknown order")), (RefusalKind::OrderNotFound, 110001));
    // Post-only that would take: the venue accepts it and cancels it at once
    // (no code of its own on derivatives).
    let maker = PlaceOrder { post_only: true, ..place(Side::Buy, OrderType::Limit, "0.01", Some(ask), "maker") };
    assert!(matches!(o.place(maker).await, Ok(OrderAnswer::Accepted { .. })));
    // Refused before sending: a limit without a price; what /v5/trade has no op for.
    let e = o.place(place(Side::Buy, OrderType::Limit, "0.01", None, "np")).await.expect_err("no price");
    assert!(matches!(e, OrderError::Trade(TradeError::Invalid { .. })), "{e}");
    let e = o.open_orders(SYM).await.expect_err("REST only");
    assert!(matches!(e, OrderError::Trade(TradeError::Invalid { .. })), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_order_rate_guard_follows_the_bybit_limit_header() {
    // Three creates a second per account, and a long window so the test
    // cannot straddle two.
    let (_sim, h) = sim(|m| {
        m.limits.bybit_order_limit = 3;
        m.limits.bybit_order_window = Duration::from_secs(60);
    })
    .await;
    let o = orders(&h).await;
    let px = far_below(&h);
    for i in 0..3 {
        o.place(place(Side::Buy, OrderType::Limit, "0.01", Some(px), &format!("g-{i}"))).await.expect("within");
    }
    let usage = o.rate_limits();
    let create = usage.iter().find(|u| u.limit.name.ends_with("order.create")).expect("the create limit");
    assert_eq!((create.limit.limit, create.used), (3, 3), "{usage:?}");
    let e = o.place(place(Side::Buy, OrderType::Limit, "0.01", Some(px), "g-4")).await.expect_err("guard");
    let OrderError::RateGuard(r) = &e else { panic!("the local guard, got {e}") };
    assert_eq!((r.limit.limit, r.used, r.cost), (3, 3, 1));
    let open = h.account(None).expect("account").open_orders.len();
    assert_eq!(open, 3, "the refused order was not sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_in_flight_across_a_kill_ends_as_outcome_unknown() {
    let (_sim, h) = sim(|_| {}).await;
    let o = Arc::new(orders(&h).await);
    let px = far_below(&h);
    let before = h.account(None).expect("account").open_orders.len();
    assert!(h.stall(None, Duration::from_secs(60)) >= 1);
    let c = o.clone();
    let pending =
        tokio::spawn(async move { c.place(place(Side::Buy, OrderType::Limit, "0.01", Some(px), "in-flight")).await });
    let deadline = Instant::now() + WAIT;
    while h.account(None).expect("account").open_orders.len() == before {
        assert!(Instant::now() < deadline, "the order reached the venue");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(h.kill_all(KillMode::Reset) >= 1);
    let err = pending.await.expect("task").expect_err("the answer was lost");
    assert!(err.outcome_unknown(), "{err}");
    assert!(o.ready(WAIT).await, "the trading connection came back and authenticated");
    // The order is there: cancelling it by its client id works.
    let c = o.cancel(CancelOrder { symbol: SYM.into(), order: OrderRef::ClientOrderId("in-flight".into()) }).await;
    assert!(matches!(c, Ok(OrderAnswer::Accepted { .. })), "{c:?}");
    assert!(o.stats().reconnects >= 1);
}
