//! Deribit through the venue seam, against the simulator's Deribit dialect
//! over real sockets with the shipped rules: a `Feed` through kills and a
//! broken `change_id` chain (exact trade accounting by `trade_seq`, every
//! published book equal to the truth), heartbeat duty over ten simulated
//! minutes, a channel the venue drops silently, and the order API: every
//! method's success and refusal, fills on the private stream, requests in
//! flight across a kill, credit exhaustion (`10028`), token renewal and
//! re-authentication after a kill.

use std::time::{Duration, Instant};

use ferrofeed::audit::IdLedger;
use ferrofeed::books::BookConfig;
use ferrofeed::client::{Client, ClientConfig, Environment};
use ferrofeed::engine::BackoffConfig;
use ferrofeed::feed::Feed;
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{EventKind, Level, Side};
use ferrofeed::session::{Credentials, PrivateClient, PrivateConfig};
use ferrofeed::trading::{OrderClient, OrderConfig, OrderError};
use ferrofeed::venues::Channel;
use ferrofeed::venues::deribit::spec::INVERSE;
use ferrofeed::venues::trading::{
    AmendOrder, CancelOrder, OrderAnswer, OrderRef, OrderType, PlaceOrder, RefusalKind, TimeInForce,
};
use ferrofeed_sim::{DeribitKind, KillMode, MarketConfig, MarketHandle, Sim, SimConfig};

const PERP: &str = "BTC-PERPETUAL";
const WAIT: Duration = Duration::from_secs(30);

fn env(h: &MarketHandle) -> Environment {
    Environment::Custom { ws: h.ws_url(), rest: h.rest_url() }
}

fn levels(v: &[[String; 2]]) -> Vec<Level> {
    v.iter()
        .map(|[p, q]| Level {
            price: p.parse::<Decimal>().expect("sim price"),
            qty: q.parse::<Decimal>().expect("sim qty"),
        })
        .collect()
}

async fn inverse(tune: impl FnOnce(&mut MarketConfig)) -> (Sim, MarketHandle) {
    let mut m = MarketConfig::deribit(DeribitKind::Inverse);
    tune(&mut m);
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.deribit(DeribitKind::Inverse).expect("deribit inverse").clone();
    (sim, h)
}

fn fast_backoff() -> BackoffConfig {
    BackoffConfig { initial: Duration::from_millis(50), max: Duration::from_millis(500), ..BackoffConfig::default() }
}

fn creds() -> Credentials {
    Credentials::hmac(ferrofeed_sim::TEST_API_KEY, ferrofeed_sim::TEST_HMAC_SECRET).expect("test credentials")
}

#[derive(Debug, Default)]
struct BookLog {
    checked: u64,
    resyncs: u64,
    /// Set at a kill or a chain break: no book may be published until a
    /// resync follows it.
    must_resync: bool,
    snapshots_after_fault: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_through_kills_and_a_broken_chain_accounts_every_trade_and_publishes_only_true_books() {
    let (_sim, h) = inverse(|m| {
        m.symbols.retain(|s| s.name == PERP);
        m.timing.actions_per_sec = 200.0;
        m.book_history = 20_000;
    })
    .await;
    let mut feed = Feed::builder()
        .client_config(ClientConfig { backoff: fast_backoff(), seed: Some(5), ..ClientConfig::default() })
        .url(INVERSE, env(&h))
        .book_config(BookConfig { snapshot_timeout: Duration::from_secs(2), ..Default::default() })
        .subscribe(INVERSE, Channel::Trades, PERP)
        .book(INVERSE, PERP)
        .build()
        .await
        .expect("feed");
    let trades = Client::stream_name(INVERSE, &Channel::Trades, PERP).expect("trades channel");
    let mut ledger = IdLedger::default();
    let mut book = BookLog::default();
    let mut reconnects = 0u64;
    // 0: warm up (or recovered from the last kill), then kill, KILLS times;
    // 1: recovered, then break the chain; 2: resynced, then pause; 3: drain
    // to the last trade produced.
    const KILLS: u64 = 3;
    let mut kills = 0;
    let mut phase = 0;
    let mut mark = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "stuck in phase {phase}: {ledger:?} {book:?} reconnects {reconnects}");
        match phase {
            0 if reconnects >= kills
                && (kills == 0 || book.snapshots_after_fault >= 1)
                && book.checked >= mark + 30
                && ledger.delivered >= 10 =>
            {
                assert!(h.kill_all(KillMode::Reset) >= 1);
                kills += 1;
                book.must_resync = true;
                book.snapshots_after_fault = 0;
                mark = book.checked;
                if kills == KILLS {
                    phase = 1;
                }
            }
            1 if reconnects >= KILLS && book.snapshots_after_fault >= 1 && book.checked >= mark + 30 => {
                assert!(h.deribit_break_chain(Some(PERP)) >= 1, "the book channel is tracked");
                book.must_resync = true;
                book.snapshots_after_fault = 0;
                mark = book.checked;
                phase = 2;
            }
            2 if book.snapshots_after_fault >= 1 && book.checked >= mark + 30 && ledger.delivered >= 40 => {
                h.pause_market(true);
                phase = 3;
            }
            3 => {
                // Batched channels flush on their timer: the last id produced is read afresh.
                let end = h.stream_stats(&trades).and_then(|s| s.last_id);
                if end.is_some() && ledger.range().1 == end {
                    break;
                }
            }
            _ => {}
        }
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), feed.next()).await else { continue };
        match &ev.kind {
            EventKind::Trade(t) => {
                let n = t.trade_seq.expect("Deribit trades carry trade_seq");
                assert!(ledger.range().1.is_none_or(|last| n > last), "trade {n} after {:?}", ledger.range().1);
                assert!(t.price > Decimal::ZERO && t.qty > Decimal::ZERO, "{t:?}");
                ledger.on_id(n, &[]);
            }
            EventKind::Gap(g) if g.stream == trades => ledger.gap(&g.missing),
            EventKind::Reconnected => reconnects += 1,
            EventKind::BookResync(_) => {
                book.resyncs += 1;
                book.must_resync = false;
            }
            EventKind::BookSnapshot(_) | EventKind::BookUpdate(_) => {
                let u = match &ev.kind {
                    EventKind::BookSnapshot(s) => s.last_update_id,
                    EventKind::BookUpdate(d) => d.last_update_id,
                    _ => unreachable!(),
                };
                assert!(!book.must_resync, "a book at change {u} was published after a fault without a resync");
                if matches!(ev.kind, EventKind::BookSnapshot(_)) {
                    book.snapshots_after_fault += 1;
                }
                let local = feed.books().book(INVERSE, PERP).unwrap_or_else(|| panic!("published while not in sync"));
                assert_eq!(local.last_update_id(), u, "the event is the book's state");
                let truth = h.book_at(PERP, u, 20).unwrap_or_else(|| panic!("the simulator knows change {u}"));
                assert_eq!(local.bids(20), levels(&truth.bids), "bids at change {u}");
                assert_eq!(local.asks(20), levels(&truth.asks), "asks at change {u}");
                book.checked += 1;
            }
            EventKind::Error { msg, raw } => panic!("{msg}: {raw}"),
            _ => {}
        }
    }
    // `trade_seq` is consecutive per instrument: every number from the first
    // trade delivered to the last one produced is delivered or inside a
    // reported gap. (The channel batches trades per 100 ms, so the
    // simulator's message counts are not trade counts.)
    let (first, last) = (ledger.range().0.expect("trades delivered"), h.stream_stats(&trades).and_then(|s| s.last_id));
    let last = last.expect("the last trade produced");
    ledger.finish(Some(first), Some(last), &[]);
    assert!(ledger.silent_spans.is_empty(), "trades lost without a gap: {:?}", ledger.silent_spans);
    assert_eq!(ledger.silent, 0, "{ledger:?}");
    assert_eq!(ledger.duplicates, 0, "{ledger:?}");
    assert_eq!(ledger.delivered + ledger.in_gaps + ledger.across_unknown, last - first + 1, "{ledger:?}");
    assert!(book.resyncs > KILLS, "a resync after each kill and one after the broken chain: {book:?}");
    assert!(reconnects >= KILLS, "{reconnects}");
    let stats = h.deribit_stats().expect("deribit stats");
    assert!(stats.chain_breaks >= 1, "{stats:?}");
    println!(
        "deribit feed: {} trades delivered, {} in gaps, {} across unknown gaps, {} books checked, {} resyncs, {} reconnects",
        ledger.delivered, ledger.in_gaps, ledger.across_unknown, book.checked, book.resyncs, reconnects
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_duty_over_ten_simulated_minutes_misses_no_test_request() {
    // Thirty-three times faster: the client's 30 s heartbeat interval is
    // 0.9 s, ten simulated minutes are 18 s. (Faster, the answers would queue
    // behind the client's own message budget, which is not scaled.)
    let (_sim, h) = inverse(|m| {
        m.symbols.retain(|s| s.name == PERP);
        m.timing.scale = 0.03;
    })
    .await;
    let mut feed =
        Feed::builder().url(INVERSE, env(&h)).subscribe(INVERSE, Channel::Ticker, PERP).build().await.expect("feed");
    let mut disconnects = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = h.deribit_stats().expect("stats");
        if s.test_requests_sent >= 20 && s.test_requests_answered >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "ten simulated minutes of heartbeats: {s:?}");
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), feed.next()).await
            && matches!(ev.kind, EventKind::Disconnected { .. } | EventKind::Reconnected)
        {
            disconnects += 1;
        }
    }
    let s = h.deribit_stats().expect("stats");
    // Every test_request sent before the last was answered (the last may be in flight).
    assert!(s.test_requests_answered + 1 >= s.test_requests_sent, "{s:?}");
    assert_eq!(s.heartbeat_closes, 0, "{s:?}");
    assert_eq!(disconnects, 0, "the socket stayed up");
    assert_eq!(h.stats().connections_open, 1);
}

#[tokio::test]
async fn a_channel_the_venue_drops_silently_is_reported_as_subscription_failed() {
    let (_sim, h) = inverse(|_| {}).await;
    let bad = "trades.NOPE-PERPETUAL.100ms".to_string();
    let good = Client::stream_name(INVERSE, &Channel::Trades, PERP).expect("trades");
    let mut feed =
        Feed::builder().url(INVERSE, env(&h)).raw(INVERSE, &good).raw(INVERSE, &bad).build().await.expect("feed");
    let (mut failed, mut traded) = (None, false);
    let deadline = Instant::now() + WAIT;
    while failed.is_none() || !traded {
        assert!(Instant::now() < deadline, "failed {failed:?} traded {traded}");
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), feed.next()).await else { continue };
        match ev.kind {
            EventKind::SubscriptionFailed { stream, msg, .. } => {
                assert_eq!(stream, bad, "only the dropped channel failed");
                failed = Some(msg);
            }
            EventKind::Trade(_) => traded = true,
            _ => {}
        }
    }
}

async fn orders(h: &MarketHandle) -> OrderClient {
    let cfg = OrderConfig { environment: env(h), backoff: fast_backoff(), ..OrderConfig::default() };
    let market = ferrofeed::venues::registry::parse_market("deribit:inverse").unwrap();
    OrderClient::connect(market, "any", creds(), cfg).await.expect("the trading connection comes up")
}

fn limit(side: Side, qty: &str, price: Decimal, label: &str) -> PlaceOrder {
    PlaceOrder {
        symbol: PERP.into(),
        side,
        order_type: OrderType::Limit,
        qty: qty.parse().expect("qty"),
        price: Some(price),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        client_order_id: Some(label.into()),
    }
}

fn market(side: Side, qty: &str) -> PlaceOrder {
    PlaceOrder {
        order_type: OrderType::Market,
        price: None,
        client_order_id: None,
        ..limit(side, qty, Decimal::ONE, "")
    }
}

fn best(h: &MarketHandle) -> (Decimal, Decimal) {
    let b = h.book(PERP, 1).expect("book");
    (b.bids[0][0].parse().expect("bid"), b.asks[0][0].parse().expect("ask"))
}

fn refusal(e: OrderError) -> RefusalKind {
    e.refusal().unwrap_or_else(|| panic!("a venue refusal, got {e}")).kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_method_succeeds_or_is_refused_with_a_typed_error_and_fills_reach_the_private_stream() {
    let (_sim, h) = inverse(|m| m.symbols.retain(|s| s.name == PERP)).await;
    let mut private = PrivateClient::new(
        "deribit",
        creds(),
        PrivateConfig { environment: env(&h), backoff: fast_backoff(), ..PrivateConfig::default() },
    )
    .expect("private client");
    private.open("any").await.expect("open the private session");
    let deadline = Instant::now() + WAIT;
    while !private.is_active("any") {
        assert!(Instant::now() < deadline, "the private session became active");
        let _ = tokio::time::timeout(Duration::from_millis(50), private.next()).await;
    }
    let o = orders(&h).await;
    let (bid, ask) = best(&h);
    let tick: Decimal = "0.5".parse().expect("tick");
    let far = (bid * Decimal::new(9, 1) / tick).floor() * tick;

    // Place a resting limit order, amend it, list it, cancel it.
    let placed = o.place(limit(Side::Buy, "20", far, "rest-1")).await.expect("placed");
    let OrderAnswer::Placed { order, fills } = placed else { panic!("placed: {placed:?}") };
    assert!(fills.is_empty(), "far from the book: no fill");
    assert_eq!((order.side, order.qty, order.price), (Side::Buy, "20".parse().unwrap(), Some(far)));
    assert_eq!(order.client_order_id, "rest-1");
    let id = order.order_id.clone();
    let lower = far - tick;
    let amended = o
        .amend(AmendOrder {
            side: None,
            symbol: PERP.into(),
            order: OrderRef::OrderId(id.clone()),
            qty: Some("20".parse().unwrap()),
            price: Some(lower),
        })
        .await
        .expect("amended");
    let OrderAnswer::Amended { order, .. } = amended else { panic!("amended: {amended:?}") };
    assert_eq!((order.order_id.as_str(), order.price), (id.as_str(), Some(lower)));
    let open = o.open_orders(PERP).await.expect("open orders");
    let OrderAnswer::OpenOrders { orders } = open else { panic!("open: {open:?}") };
    assert_eq!(orders.iter().map(|x| x.order_id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    let cancelled =
        o.cancel(CancelOrder { symbol: PERP.into(), order: OrderRef::OrderId(id.clone()) }).await.expect("cancelled");
    let OrderAnswer::Cancelled { order } = cancelled else { panic!("cancelled: {cancelled:?}") };
    assert_eq!(order.order_id, id);
    // Refusals, typed.
    let again = o.cancel(CancelOrder { symbol: PERP.into(), order: OrderRef::OrderId(id.clone()) }).await;
    assert!(
        matches!(refusal(again.expect_err("already cancelled")), RefusalKind::OrderNotFound),
        "a cancelled order cannot be cancelled again"
    );
    let gone = o
        .amend(AmendOrder {
            side: None,
            symbol: PERP.into(),
            order: OrderRef::OrderId(id.clone()),
            qty: Some("20".parse().unwrap()),
            price: Some(far),
        })
        .await
        .expect_err("a cancelled order cannot be amended");
    assert_eq!(refusal(gone), RefusalKind::OrderNotFound);
    let unknown = o.open_orders("NOPE-PERPETUAL").await.expect_err("no such instrument");
    assert!(
        matches!(refusal(unknown), RefusalKind::UnknownInstrument | RefusalKind::InvalidOrder),
        "an unknown instrument is refused"
    );
    let no_price = o
        .place(PlaceOrder { price: None, ..limit(Side::Buy, "10", far, "np") })
        .await
        .expect_err("a limit order needs a price");
    assert!(
        matches!(no_price, OrderError::Trade(ferrofeed::venues::trading::TradeError::Invalid { .. })),
        "{no_price}"
    );
    let tiny = o.place(limit(Side::Buy, "1", far, "tiny")).await.expect_err("below the minimum");
    assert_eq!(refusal(tiny), RefusalKind::InvalidOrder);
    let off_tick = o.place(limit(Side::Buy, "10", far + Decimal::new(1, 1), "off")).await.expect_err("off tick");
    assert_eq!(refusal(off_tick), RefusalKind::InvalidOrder);
    let huge = o.place(market(Side::Buy, "1000000000")).await.expect_err("too large for the balance");
    assert_eq!(refusal(huge), RefusalKind::InsufficientFunds);
    // A market order fills against the book, and the fill arrives on the private stream.
    let taken = o.place(market(Side::Buy, "10")).await.expect("filled");
    let OrderAnswer::Placed { order, fills } = taken else { panic!("placed: {taken:?}") };
    assert!(!fills.is_empty(), "a market order fills");
    let (bid_now, _) = best(&h);
    // Bought from the asks: above the bids (the book has moved since `ask` was read).
    assert!(fills.iter().all(|f| f.price > bid_now.min(bid) && f.side == Side::Buy), "{fills:?} {ask}");
    assert_eq!(fills.iter().map(|f| f.qty).sum::<Decimal>(), order.filled_qty, "{fills:?} {order:?}");
    let filled_id = order.order_id.clone();
    let trade_ids: Vec<String> = fills.iter().map(|f| f.trade_id.clone()).collect();
    let (mut seen_trade, mut seen_order) = (false, false);
    let deadline = Instant::now() + WAIT;
    while !(seen_trade && seen_order) {
        assert!(
            Instant::now() < deadline,
            "the fill reached the private stream: trade {seen_trade} order {seen_order}"
        );
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), private.next()).await else { continue };
        match &ev.kind {
            EventKind::UserTrade(t) if t.order_id == filled_id => {
                assert!(trade_ids.contains(&t.trade_id), "{t:?} not in {trade_ids:?}");
                seen_trade = true;
            }
            EventKind::OrderUpdate(u) if u.order_id == filled_id => seen_order = true,
            _ => {}
        }
    }
    // Cancel all: two resting orders go.
    for label in ["all-1", "all-2"] {
        o.place(limit(Side::Buy, "10", far, label)).await.expect("resting");
    }
    let all = o.cancel_all(Some(PERP.into())).await.expect("cancel all");
    assert!(
        matches!(all, OrderAnswer::CancelledAll { count: Some(2) } | OrderAnswer::CancelledAll { count: None }),
        "{all:?}"
    );
    let open = o.open_orders(PERP).await.expect("open orders");
    assert!(matches!(open, OrderAnswer::OpenOrders { ref orders } if orders.is_empty()), "{open:?}");
    o.close().await;
    private.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_across_a_kill_ends_with_outcome_unknown_and_the_order_exists() {
    let (_sim, h) = inverse(|m| m.symbols.retain(|s| s.name == PERP)).await;
    let o = orders(&h).await;
    let (bid, _) = best(&h);
    let tick: Decimal = "0.5".parse().expect("tick");
    let far = (bid * Decimal::new(9, 1) / tick).floor() * tick;
    // The venue stops writing to the socket: the order is placed, its answer never comes.
    assert!(h.stall(None, Duration::from_secs(60)) >= 1);
    let matching = h.deribit_stats().expect("stats").matching_requests;
    let o = std::sync::Arc::new(o);
    let c = o.clone();
    let pending = tokio::spawn(async move { c.place(limit(Side::Buy, "10", far, "in-flight")).await });
    let deadline = Instant::now() + WAIT;
    while h.deribit_stats().expect("stats").matching_requests == matching {
        assert!(Instant::now() < deadline, "the order reached the venue");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(h.kill_all(KillMode::Reset) >= 1);
    let err = pending.await.expect("task").expect_err("the answer was lost");
    assert!(err.outcome_unknown(), "{err}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    // After the reconnect (and a new authentication) the order is there: the outcome was "placed".
    assert!(o.ready(WAIT).await, "the trading connection came back");
    let open = loop {
        match o.open_orders(PERP).await {
            Ok(a) => break a,
            Err(e) if !e.outcome_unknown() && e.refusal().is_none() => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("open orders after the reconnect: {e}"),
        }
    };
    let OrderAnswer::OpenOrders { orders } = open else { panic!("{open:?}") };
    assert!(orders.iter().any(|x| x.client_order_id == "in-flight"), "{orders:?}");
    assert!(o.stats().reconnects >= 1);
    assert!(h.deribit_stats().expect("stats").auths >= 2, "authenticated again after the kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_exhaustion_is_a_typed_rate_limit_refusal_and_ends_the_session() {
    let (_sim, h) = inverse(|m| m.symbols.retain(|s| s.name == PERP)).await;
    let o = orders(&h).await;
    assert!(h.deribit_exhaust_credits(None) >= 1);
    let err = o.open_orders(PERP).await.expect_err("no credits left");
    assert_eq!(refusal(err), RefusalKind::RateLimited);
    assert!(h.deribit_stats().expect("stats").too_many_requests >= 1);
    // The venue ended the session; the connection comes back and works.
    let deadline = Instant::now() + WAIT;
    while o.stats().reconnects == 0 {
        assert!(Instant::now() < deadline, "the session was ended and reopened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(o.ready(WAIT).await);
    let open = loop {
        match o.open_orders(PERP).await {
            Ok(a) => break a,
            Err(e) if !e.outcome_unknown() && e.refusal().is_none() => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("after the new session: {e}"),
        }
    };
    assert!(matches!(open, OrderAnswer::OpenOrders { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_token_is_renewed_before_it_expires() {
    let (_sim, h) = inverse(|m| {
        m.symbols.retain(|s| s.name == PERP);
        m.limits.deribit.token_lifetime = Duration::from_secs(2);
    })
    .await;
    let o = orders(&h).await;
    let first = h.deribit_stats().expect("stats");
    // Three lifetimes: without renewal the connection would have lost its authorization twice.
    let deadline = Instant::now() + WAIT;
    while h.deribit_stats().expect("stats").auths + h.deribit_stats().expect("stats").refreshes
        < first.auths + first.refreshes + 3
    {
        assert!(Instant::now() < deadline, "renewals: {:?}", h.deribit_stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = o.open_orders(PERP).await.expect("still authorized");
    assert!(matches!(answer, OrderAnswer::OpenOrders { .. }));
    let s = h.deribit_stats().expect("stats");
    assert_eq!(s.token_expiries, 0, "no token ran out: {s:?}");
    assert_eq!(o.stats().reconnects, 0, "renewed on the same socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_reset_fault_on_deribit_breaks_the_book_chain_and_never_steps_trade_seq_back() {
    // Deribit's trade_seq grows per instrument for ever; its restart is a
    // broken change_id chain, which the book resyncs from.
    let (_sim, h) = inverse(|m| {
        m.symbols.retain(|s| s.name == PERP);
        m.timing.actions_per_sec = 200.0;
    })
    .await;
    let mut feed = Feed::builder()
        .url(INVERSE, env(&h))
        .subscribe(INVERSE, Channel::Trades, PERP)
        .book(INVERSE, PERP)
        .build()
        .await
        .expect("feed");
    let (mut last, mut after_reset, mut reset, mut resynced) = (None::<u64>, 0u64, false, false);
    let deadline = Instant::now() + WAIT;
    while !(resynced && after_reset >= 20) {
        assert!(Instant::now() < deadline, "reset {reset} resynced {resynced} trades after {after_reset}");
        if !reset && last.is_some_and(|l| l > 0) {
            assert_eq!(h.reset_ids(Some(PERP), 1), 1);
            reset = true;
        }
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), feed.next()).await else { continue };
        match &ev.kind {
            EventKind::Trade(t) => {
                let n = t.trade_seq.expect("trade_seq");
                assert!(last.is_none_or(|l| n > l), "trade_seq {n} after {last:?}: it never steps back on Deribit");
                last = Some(n);
                if reset {
                    after_reset += 1;
                }
            }
            EventKind::BookResync(_) if reset => resynced = true,
            _ => {}
        }
    }
    assert!(h.deribit_stats().expect("stats").chain_breaks >= 1);
}
