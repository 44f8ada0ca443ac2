//! Binance margin and isolated-margin user data by listenToken (issue 21),
//! against the simulator over real sockets: a token from the signed `POST
//! /sapi/v1/userListenToken`, subscribed on the WebSocket API with
//! `userDataStream.subscribe.listenToken`; renewed on the same connection
//! with no gap; a killed socket resubscribed with a fresh token and reported
//! as an unknown-extent gap; an expired subscription replaced; the removed
//! listenKey endpoints answering 410.

use std::time::{Duration, Instant};

use ferrofeed::client::Environment;
use ferrofeed::engine::{BackoffConfig, RestClient, RestError};
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{Event, EventKind, Missing, Side};
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::binance::auth::{Clock, Credentials, query};
use ferrofeed_sim::{KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_HMAC_SECRET};

async fn sim() -> (Sim, MarketHandle) {
    let mut m = MarketConfig::new(MarketKind::Spot);
    m.symbols.truncate(2);
    m.timing.actions_per_sec = 50.0;
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn config(m: &MarketHandle) -> PrivateConfig {
    PrivateConfig {
        environment: Environment::Custom { ws: m.ws_url(), rest: m.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(1),
        ..PrivateConfig::default()
    }
}

fn hmac() -> Credentials {
    Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds")
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// A signed margin order through the simulator's REST endpoint.
async fn margin_order(m: &MarketHandle, params: &[(&str, &str)], clock: &Clock) -> serde_json::Value {
    let creds = hmac();
    let mut p: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.to_string())).collect();
    p.push(("timestamp", clock.now_ms().to_string()));
    let q = query(&p);
    let url = format!("{}/sapi/v1/margin/order?{q}&signature={}", m.rest_url(), creds.sign(&q));
    let body = RestClient::default()
        .send("POST", &url, &[("X-MBX-APIKEY", TEST_API_KEY)], 1, None)
        .await
        .unwrap_or_else(|e| panic!("margin order refused: {e}"));
    serde_json::from_slice(&body).expect("order answer")
}

/// Events until `pred` holds for one of them (returned with everything seen).
async fn until(c: &mut PrivateClient, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, c.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} in time; saw {seen:#?}"))
            .expect("client open");
        let done = pred(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

/// The live user-data subscriptions of the test account: (scope, conn, id).
fn subscriptions(m: &MarketHandle) -> Vec<(String, u64, u64)> {
    let mut v: Vec<_> = m
        .account(None)
        .expect("account")
        .subscriptions
        .into_iter()
        .map(|s| (s.scope, s.conn, s.subscription_id))
        .collect();
    v.sort();
    v
}

async fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn balance_delta(e: &Event, asset: &str) -> Option<Decimal> {
    match &e.kind {
        EventKind::BalanceUpdate(b) => b.balances.iter().find(|x| x.asset == asset).and_then(|x| x.delta),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn margin_and_isolated_margin_orders_and_balances_arrive_by_listen_token() {
    let (_sim, m) = sim().await;
    let mut cross = PrivateClient::new("binance", hmac(), config(&m)).expect("venue");
    let mut iso = PrivateClient::new("binance", hmac(), config(&m)).expect("venue");
    cross.open("margin").await.expect("margin");
    iso.open("isolated:btcusdt").await.expect("isolated");
    until(&mut cross, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    until(&mut iso, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    assert!(cross.open("margin").await.is_err(), "one connection per account");
    let subs = subscriptions(&m);
    assert_eq!(subs.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["isolated:BTCUSDT", "margin"]);
    let view = m.account(None).expect("account");
    assert!(view.subscriptions.iter().all(|s| s.expires_in_ms.is_some()), "listenToken subscriptions run out");
    assert!(view.listen_keys.is_empty(), "no listenKey was created: {:?}", view.listen_keys);
    assert_eq!((cross.stats().listen_keys_created, iso.stats().listen_keys_created), (1, 1));

    // A cross-margin market order: order_update, user_trade and balance_update
    // on the margin session only.
    let answer = margin_order(
        &m,
        &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.01")],
        cross.clock(),
    )
    .await;
    assert_eq!(answer["status"], "FILLED", "{answer}");
    let events = until(&mut cross, "balance_update", |e| matches!(e.kind, EventKind::BalanceUpdate(_))).await;
    let orders: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OrderUpdate(o) => Some(o),
            _ => None,
        })
        .collect();
    let trades: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UserTrade(t) => Some(t),
            _ => None,
        })
        .collect();
    let last = orders.last().unwrap_or_else(|| panic!("no order_update: {events:#?}"));
    assert_eq!((last.status.as_str(), last.side, last.filled_qty), ("FILLED", Side::Buy, d("0.01")));
    assert_eq!(last.order_id, answer["orderId"].to_string());
    assert!(!trades.is_empty(), "a fill is a user_trade: {events:#?}");
    assert_eq!(trades.iter().map(|t| t.qty).sum::<Decimal>(), d("0.01"));
    assert!(trades.iter().all(|t| t.order_id == last.order_id && t.fee.is_some()));
    assert!(events.iter().all(|e| e.market == ferrofeed::model::event::MarketType::Spot));

    // The isolated session saw none of it: its first user event is its own
    // deposit.
    m.deposit_to(None, Some("isolated:BTCUSDT"), "USDT", "5").expect("deposit");
    let seen = until(&mut iso, "the isolated deposit", |e| balance_delta(e, "USDT").is_some()).await;
    assert_eq!(balance_delta(seen.last().expect("event"), "USDT"), Some(d("5")));
    assert!(
        !seen.iter().any(|e| matches!(e.kind, EventKind::OrderUpdate(_) | EventKind::UserTrade(_))),
        "a cross-margin order reached the isolated session: {seen:#?}"
    );

    cross.shutdown().await;
    iso.shutdown().await;
    poll("subscriptions ended with their connections", || subscriptions(&m).is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_token_is_renewed_on_the_same_connection_without_a_gap() {
    let (_sim, m) = sim().await;
    let cfg = PrivateConfig {
        token_validity: Some(Duration::from_millis(1500)),
        keepalive: Some(Duration::from_millis(100)),
        ..config(&m)
    };
    let mut c = PrivateClient::new("binance", hmac(), cfg).expect("venue");
    c.open("margin").await.expect("margin");
    until(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let first = subscriptions(&m);
    assert_eq!(first.len(), 1);
    // Deposits while the token is renewed three times, over twice its
    // validity: every one arrives once, on the same subscription.
    let mut deposits = 0;
    let mut seen = Vec::new();
    while c.stats().listen_tokens_renewed < 3 {
        deposits += 1;
        m.deposit_to(None, Some("margin"), "USDT", "1").expect("deposit");
        seen.extend(until(&mut c, "a deposit", |e| balance_delta(e, "USDT").is_some()).await);
    }
    let stats = c.stats();
    assert_eq!((stats.reconnects, stats.listen_token_renewals_failed, stats.listen_keys_replaced), (0, 0, 0));
    assert_eq!(stats.listen_keys_created, 1, "renewals are not new connections");
    assert_eq!(subscriptions(&m), first, "the same subscription on the same connection");
    assert_eq!(seen.iter().filter(|e| balance_delta(e, "USDT").is_some()).count(), deposits);
    assert!(
        !seen.iter().any(|e| matches!(
            e.kind,
            EventKind::Gap(_) | EventKind::Disconnected { .. } | EventKind::UserStreamEnded { .. }
        )),
        "{seen:#?}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_margin_socket_resubscribes_with_a_fresh_token_after_an_unknown_gap() {
    let (_sim, m) = sim().await;
    let mut c = PrivateClient::new("binance", hmac(), config(&m)).expect("venue");
    c.open("isolated:btcusdt").await.expect("isolated");
    until(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let before = subscriptions(&m);
    assert_eq!(m.kill_private(KillMode::Reset), 1);
    let seen = until(&mut c, "the gap", |e| matches!(e.kind, EventKind::Gap(_))).await;
    let EventKind::Gap(g) = &seen.last().expect("gap").kind else { unreachable!() };
    assert!(matches!(g.missing, Missing::Unknown { .. }), "{g:?}");
    assert!(seen.iter().any(|e| matches!(e.kind, EventKind::Disconnected { .. })), "{seen:#?}");
    // A fresh token is subscribed on the new connection, and data flows.
    m.deposit_to(None, Some("isolated:BTCUSDT"), "BTC", "0.5").expect("deposit");
    until(&mut c, "the deposit after the reconnect", |e| balance_delta(e, "BTC").is_some()).await;
    poll("the fresh token subscribed", || c.stats().listen_tokens_renewed >= 1).await;
    let after = subscriptions(&m);
    assert_eq!(after.len(), 1, "one subscription, not one per token: {after:?}");
    assert_ne!(after[0].1, before[0].1, "on the new connection");
    assert_eq!(c.stats().reconnects, 1);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_subscription_is_replaced_by_a_new_connection() {
    let (_sim, m) = sim().await;
    // Renewal checks every minute: the 400 ms token runs out first.
    let cfg = PrivateConfig { token_validity: Some(Duration::from_millis(400)), ..config(&m) };
    let mut c = PrivateClient::new("binance", hmac(), cfg).expect("venue");
    c.open("margin").await.expect("margin");
    until(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let seen = until(&mut c, "the stream's end", |e| matches!(e.kind, EventKind::UserStreamEnded { .. })).await;
    let EventKind::UserStreamEnded { reason } = &seen.last().expect("event").kind else { unreachable!() };
    assert_eq!(reason, "eventStreamTerminated");
    until(&mut c, "the gap of the replacement", |e| matches!(e.kind, EventKind::Gap(_))).await;
    until(&mut c, "the new connection", |e| matches!(e.kind, EventKind::Connected)).await;
    assert_eq!((c.stats().listen_keys_created, c.stats().listen_keys_replaced), (2, 1));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_removed_margin_listen_key_endpoints_answer_410() {
    let (_sim, m) = sim().await;
    for (method, path) in [
        ("POST", "/sapi/v1/userDataStream"),
        ("PUT", "/sapi/v1/userDataStream?listenKey=x"),
        ("POST", "/sapi/v1/userDataStream/isolated?symbol=BTCUSDT"),
    ] {
        let url = format!("{}{path}", m.rest_url());
        let r = RestClient::default().send(method, &url, &[("X-MBX-APIKEY", TEST_API_KEY)], 1, None).await;
        assert!(matches!(r, Err(RestError::Status { status: 410, .. })), "{method} {path}: {r:?}");
    }
}
