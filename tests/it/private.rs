//! The private client against the simulator's private side over real
//! sockets: orders placed through the simulator's REST endpoint come back as
//! order_update / balance_update / position_update; a killed connection logs
//! on again and reports the outage as a gap; an expired listenKey is replaced
//! without user action; a bad key gives one auth_failed and no reconnect loop;
//! a skewed venue clock is measured and compensated.

use std::time::{Duration, Instant};

use ferrofeed::client::Environment;
use ferrofeed::engine::{BackoffConfig, RestClient};
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{Event, EventKind, Side};
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::binance::auth::{Clock, Credentials, query};
use ferrofeed_sim::{
    KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_ED25519_SEED, TEST_HMAC_SECRET,
};

async fn sim(kind: MarketKind) -> (Sim, MarketHandle) {
    let mut m = MarketConfig::new(kind);
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

fn ed25519() -> Credentials {
    Credentials::ed25519_seed(TEST_API_KEY, TEST_ED25519_SEED).expect("creds")
}

/// Places an order through the simulator's signed REST endpoint (HMAC key of
/// the test account), timestamped with `clock`.
async fn place(m: &MarketHandle, path: &str, params: &[(&str, &str)], clock: &Clock) -> serde_json::Value {
    let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let mut p: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.to_string())).collect();
    p.push(("recvWindow", "5000".into()));
    p.push(("timestamp", clock.now_ms().to_string()));
    let q = query(&p);
    let url = format!("{}{path}?{q}&signature={}", m.rest_url(), creds.sign(&q));
    let body = RestClient::default()
        .send("POST", &url, &[("X-MBX-APIKEY", TEST_API_KEY)], 1, None)
        .await
        .unwrap_or_else(|e| panic!("order refused: {e}"));
    serde_json::from_slice(&body).expect("order answer")
}

/// Events until `pred` holds for one of them (returned with everything seen).
async fn until(c: &mut PrivateClient, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
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

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_market_order_yields_order_and_balance_updates() {
    let (_sim, m) = sim(MarketKind::Spot).await;
    let mut c = PrivateClient::new("binance", ed25519(), config(&m)).expect("venue");
    c.open("spot").await.expect("open");
    until(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let before = m.account(None).expect("account");
    let answer = place(
        &m,
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.01")],
        c.clock(),
    )
    .await;
    assert_eq!(answer["status"], "FILLED", "{answer}");
    let events = until(&mut c, "balance_update", |e| matches!(e.kind, EventKind::BalanceUpdate(_))).await;
    let orders: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OrderUpdate(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(orders.first().map(|o| o.execution_type.as_str()), Some("NEW"));
    let fills: Vec<_> = orders.iter().filter_map(|o| o.fill.as_ref()).collect();
    assert!(!fills.is_empty(), "{orders:#?}");
    let filled: Decimal = fills.iter().map(|f| f.qty).sum();
    assert_eq!(filled, d("0.01"));
    // Each fill carries its commission exactly as charged: the simulator takes
    // 0.1 % of the BTC received, the same amount its order answer lists.
    let answered = answer["fills"].as_array().unwrap_or_else(|| panic!("FULL answer: {answer}"));
    assert_eq!(answered.len(), fills.len(), "{answer}");
    for f in &fills {
        assert_eq!((f.fee, f.fee_asset.as_deref()), (f.qty / d("1000"), Some("BTC")), "{f:?}");
        let a = answered
            .iter()
            .find(|a| a["tradeId"].as_u64().is_some_and(|n| n.to_string() == f.trade_id))
            .expect("fill in the answer");
        assert_eq!(Some(f.fee.to_string().as_str()), a["commission"].as_str(), "{a}");
        assert_eq!(f.fee_asset.as_deref(), a["commissionAsset"].as_str(), "{a}");
    }
    assert_eq!(fills.iter().map(|f| f.fee).sum::<Decimal>(), d("0.00001"));
    let last = orders.last().expect("orders");
    assert_eq!((last.status.as_str(), last.side, last.filled_qty), ("FILLED", Side::Buy, d("0.01")));
    assert_eq!(last.order_id, answer["orderId"].to_string());
    assert!(events.iter().all(|e| e.exchange_ts.is_some() || !matches!(e.kind, EventKind::OrderUpdate(_))));
    // The balances pushed are the simulator's balances after the fill.
    let after = m.account(None).expect("account");
    let EventKind::BalanceUpdate(b) = &events.last().expect("event").kind else { unreachable!() };
    let btc = b.balances.iter().find(|x| x.asset == "BTC").expect("BTC balance");
    assert_eq!(btc.free, Some(d(&after.balances["BTC"].free)));
    assert!(d(&after.balances["BTC"].free) > d(&before.balances["BTC"].free));
    let usdt = b.balances.iter().find(|x| x.asset == "USDT").expect("USDT balance");
    assert_eq!(usdt.free, Some(d(&after.balances["USDT"].free)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_order_yields_order_balance_and_position_updates() {
    let (_sim, m) = sim(MarketKind::UsdM).await;
    let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let mut c = PrivateClient::new("binance", creds, config(&m)).expect("venue");
    c.open("usdm").await.expect("open");
    until(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let answer = place(
        &m,
        "/fapi/v1/order",
        &[("symbol", "BTCUSDT"), ("side", "SELL"), ("type", "MARKET"), ("quantity", "0.005")],
        c.clock(),
    )
    .await;
    assert!(answer.get("orderId").is_some(), "{answer}");
    let events = until(&mut c, "position_update", |e| matches!(e.kind, EventKind::PositionUpdate(_))).await;
    let filled = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::OrderUpdate(o) if o.status == "FILLED" => Some(o.clone()),
        _ => None,
    });
    let filled = filled.unwrap_or_else(|| panic!("no FILLED order_update: {events:#?}"));
    assert_eq!((filled.side, filled.filled_qty), (Side::Sell, d("0.005")));
    // Each fill carries its commission: 0.05 % of the notional in USDT, cut to
    // the simulator's 8 decimals.
    let fills: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OrderUpdate(o) => o.fill.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(fills.iter().map(|f| f.qty).sum::<Decimal>(), d("0.005"));
    for f in &fills {
        let want = (f.price * f.qty * d("0.0005")).trunc_with_scale(8);
        assert_eq!((f.fee, f.fee_asset.as_deref()), (want, Some("USDT")), "{f:?}");
        assert!(f.fee > Decimal::ZERO, "{f:?}");
    }
    assert!(events.iter().any(|e| matches!(e.kind, EventKind::BalanceUpdate(_))));
    let EventKind::PositionUpdate(p) = &events.last().expect("event").kind else { unreachable!() };
    assert_eq!(p.amount, d("-0.005"));
    assert_eq!(events.last().and_then(|e| e.symbol.as_deref()), Some("BTCUSDT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_logs_on_again_and_reports_the_outage_as_a_gap() {
    let (_sim, m) = sim(MarketKind::Spot).await;
    let mut c = PrivateClient::new("binance", ed25519(), config(&m)).expect("venue");
    c.open("spot").await.expect("open");
    until(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let produced_before = m.account(None).expect("account").events_total;
    // Keep the socket down (new connections are reset) while the account
    // changes (a deposit): its events are produced and lost.
    m.refuse_connections(true);
    assert_eq!(m.kill_private(KillMode::Reset), 1);
    let mut events = until(&mut c, "disconnected", |e| matches!(e.kind, EventKind::Disconnected { .. })).await;
    m.deposit(None, "USDT", "5").expect("deposit");
    m.refuse_connections(false);
    events.extend(until(&mut c, "gap", |e| matches!(e.kind, EventKind::Gap(_))).await);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.type_name()).collect();
    assert!(!kinds.contains(&"balance_update"), "nothing from the outage arrives silently: {kinds:?}");
    let i = kinds.iter().position(|k| *k == "reconnected").expect("reconnected");
    assert_eq!(kinds[i + 1], "gap", "{kinds:?}");
    assert!(m.account(None).expect("account").events_total > produced_before, "the outage did produce events");
    // The new socket is logged on and subscribed: an order now arrives.
    place(
        &m,
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("side", "SELL"), ("type", "MARKET"), ("quantity", "0.001")],
        c.clock(),
    )
    .await;
    let events = until(&mut c, "order_update", |e| matches!(e.kind, EventKind::OrderUpdate(_))).await;
    let EventKind::OrderUpdate(o) = &events.last().expect("event").kind else { unreachable!() };
    assert_eq!(o.side, Side::Sell);
    assert_eq!(c.stats().reconnects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_listen_key_is_replaced_without_user_action() {
    let (_sim, m) = sim(MarketKind::UsdM).await;
    let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let mut c = PrivateClient::new("binance", creds, config(&m)).expect("venue");
    c.open("usdm").await.expect("open");
    until(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let first = m.account(None).expect("account").listen_keys;
    assert_eq!(first.len(), 1);
    assert_eq!(m.expire_listen_key(None), 1);
    until(
        &mut c,
        "user_stream_ended",
        |e| matches!(&e.kind, EventKind::UserStreamEnded { reason } if reason == "listenKeyExpired"),
    )
    .await;
    until(&mut c, "connected again", |e| matches!(e.kind, EventKind::Connected)).await;
    let now = m.account(None).expect("account").listen_keys;
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].listen_key, first[0].listen_key, "a new key");
    assert_eq!(c.stats().listen_keys_replaced, 1);
    place(
        &m,
        "/fapi/v1/order",
        &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.002")],
        c.clock(),
    )
    .await;
    until(&mut c, "order on the new key", |e| matches!(e.kind, EventKind::OrderUpdate(_))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_secret_gives_one_auth_failed_and_no_reconnect_loop() {
    let (_sim, m) = sim(MarketKind::Spot).await;
    let wrong = Credentials::ed25519_seed(TEST_API_KEY, [8u8; 32]).expect("creds");
    let mut c = PrivateClient::new("binance", wrong, config(&m)).expect("venue");
    c.open("spot").await.expect("open starts the connection");
    let events = until(&mut c, "auth_failed", |e| matches!(e.kind, EventKind::AuthFailed { .. })).await;
    let EventKind::AuthFailed { msg } = &events.last().expect("event").kind else { unreachable!() };
    assert!(msg.contains("-1022"), "{msg}");
    let accepted = m.stats().counters.connections_accepted;
    // Nothing more: no reconnect, no second auth_failed.
    let more = tokio::time::timeout(Duration::from_secs(2), c.next()).await;
    assert!(more.is_err() || more.as_ref().is_ok_and(|e| e.is_none()), "unexpected {more:?}");
    assert_eq!(m.stats().counters.connections_accepted, accepted);
    assert_eq!(c.stats().auth_failures, 1);
    // An HMAC key cannot log on to the WebSocket API: refused before connecting.
    let hmac = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let mut h = PrivateClient::new("binance", hmac, config(&m)).expect("venue");
    assert!(h.open("spot").await.is_err());
    // A wrong API key on a listenKey account fails at open, with a clear error.
    let (_sim2, f) = sim(MarketKind::UsdM).await;
    let bad = Credentials::hmac("not-a-key", "x").expect("creds");
    let mut b = PrivateClient::new("binance", bad, config(&f)).expect("venue");
    let err = b.open("usdm").await.expect_err("refused");
    assert!(err.to_string().contains("-2015"), "{err}");
    assert!(!err.to_string().contains("not-a-key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_venue_clock_is_measured_and_signed_calls_succeed() {
    for skew in [2_000i64, -2_000] {
        let (_sim, m) = sim(MarketKind::Spot).await;
        m.set_clock_offset_ms(skew);
        let mut c = PrivateClient::new("binance", ed25519(), config(&m)).expect("venue");
        c.open("spot").await.expect("open");
        let offset = c.clock().offset_ms();
        assert!((offset - skew).abs() < 500, "measured {offset} for {skew}");
        until(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
        let a = place(
            &m,
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.001")],
            c.clock(),
        )
        .await;
        assert_eq!(a["status"], "FILLED");
        until(&mut c, "order_update", |e| matches!(e.kind, EventKind::OrderUpdate(_))).await;
        // Unmeasured, the same skew is refused.
        let naive = Clock::default();
        let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
        let mut p = vec![
            ("symbol", "BTCUSDT".to_string()),
            ("side", "BUY".into()),
            ("type", "MARKET".into()),
            ("quantity", "0.001".into()),
        ];
        p.push(("recvWindow", "1000".into()));
        p.push(("timestamp", naive.now_ms().to_string()));
        let q = query(&p);
        let url = format!("{}/api/v3/order?{q}&signature={}", m.rest_url(), creds.sign(&q));
        let r = RestClient::default().send("POST", &url, &[("X-MBX-APIKEY", TEST_API_KEY)], 1, None).await;
        assert!(r.is_err_and(|e| e.to_string().contains("-1021")), "skew {skew}");
    }
}
