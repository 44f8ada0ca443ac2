//! Regression tests of issue 18 about credentials and user streams, each
//! named after what it pins, against the simulator (and a `nats-server`
//! started here) over real sockets: no URL, token, listenKey, password or
//! API secret reaches a status message, an error, `Debug` output or a log;
//! a clock error re-syncs instead of ending the user stream; replacing an
//! expired listenKey loses nothing silently.

use std::time::{Duration, Instant};

use ferrofeed::client::Environment;
use ferrofeed::engine::BackoffConfig;
use ferrofeed::model::event::{Event, EventKind, Missing};
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::auth::Credentials;
use ferrofeed_sim::{
    BybitCategory, KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_ED25519_SEED,
    TEST_HMAC_SECRET,
};

async fn sim(m: MarketConfig) -> (Sim, MarketHandle) {
    let mut m = m;
    m.symbols.truncate(1);
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn config(ws: String, rest: String) -> PrivateConfig {
    PrivateConfig {
        environment: Environment::Custom { ws, rest },
        backoff: BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..BackoffConfig::default()
        },
        seed: Some(7),
        ..PrivateConfig::default()
    }
}

fn hmac() -> Credentials {
    Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds")
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
            .unwrap_or_else(|| panic!("the client ended before {what}; saw {seen:#?}"));
        let done = pred(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

fn listen_keys(h: &MarketHandle) -> Vec<String> {
    h.account(None).expect("account").listen_keys.into_iter().map(|k| k.listen_key).collect()
}

/// A listenKey connection that cannot be made (here: the WebSocket base is
/// not a ws:// URL) gives up with a reason that names the URL, and that URL
/// carries the key in its path: the `gave_up` event, its `Debug` and the
/// client's `Debug` show the URL with the key masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gave_up_listen_key_connection_never_shows_the_key() {
    let (_sim, h) = sim(MarketConfig::new(MarketKind::UsdM)).await;
    // REST works; the WebSocket base is the REST one (http://): refused as a request.
    let mut c = PrivateClient::new("binance", hmac(), config(h.rest_url(), h.rest_url())).expect("venue");
    c.open("usdm").await.expect("open");
    let seen = until(&mut c, "gave_up", |e| matches!(e.kind, EventKind::GaveUp { .. })).await;
    let keys = listen_keys(&h);
    assert_eq!(keys.len(), 1, "one listenKey was created");
    let EventKind::GaveUp { reason } = &seen.last().expect("seen").kind else { unreachable!() };
    assert!(reason.contains("/ws/***"), "the URL is shown with the key masked: {reason}");
    let shown = format!("{seen:?} {} {c:?}", serde_json::to_string(&seen).expect("json"));
    assert!(!shown.contains(&keys[0]), "the listenKey leaks: {shown}");
    assert!(!shown.contains(TEST_API_KEY), "the API key leaks");
}

fn is_unknown_gap(e: &Event) -> bool {
    matches!(&e.kind, EventKind::Gap(g) if matches!(g.missing, Missing::Unknown { .. }))
}

/// Events until `pred`; an `auth_failed` on the way fails the test at once
/// (the user stream would have ended).
async fn until_no_refusal(c: &mut PrivateClient, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    until(c, what, |e| {
        if let EventKind::AuthFailed { msg } = &e.kind {
            panic!("the user stream ended ({what}): auth_failed {msg}");
        }
        pred(e)
    })
    .await
}

/// Binance `-1021` (timestamp outside recvWindow) on a logon is the clock,
/// not the key: the venue clock jumps 60 s after the session opened, the
/// socket is lost, the next `session.logon` is refused with -1021; the client
/// measures the clock again, logs on again on a new connection, reports the
/// outage as a gap of unknown extent, and the stream delivers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_refused_logon_resyncs_the_clock_and_logs_on_again() {
    let (_sim, h) = sim(MarketConfig::new(MarketKind::Spot)).await;
    let creds = Credentials::ed25519_seed(TEST_API_KEY, TEST_ED25519_SEED).expect("creds");
    let mut c = PrivateClient::new("binance", creds, config(h.ws_url(), h.rest_url())).expect("venue");
    c.open("spot").await.expect("open");
    until_no_refusal(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    h.set_clock_offset_ms(60_000);
    assert_eq!(h.kill_private(KillMode::Reset), 1);
    let seen = until_no_refusal(&mut c, "a new logon", |e| matches!(e.kind, EventKind::Connected)).await;
    assert!(seen.iter().any(is_unknown_gap), "the outage is a gap: {seen:#?}");
    assert!((c.clock().offset_ms() - 60_000).abs() < 5_000, "measured again: {}", c.clock().offset_ms());
    assert_eq!((c.stats().clock_resyncs, c.stats().auth_failures), (1, 0), "{:?}", c.stats());
    h.deposit(None, "USDT", "1").expect("deposit");
    until_no_refusal(&mut c, "balance_update", |e| matches!(e.kind, EventKind::BalanceUpdate(_))).await;
    c.shutdown().await;
}

/// The Bybit private client measures the venue clock (`GET
/// /v5/market/time`) before signing `auth`, and measures it again when an
/// `auth` is refused: a venue clock 60 s ahead, before opening and again
/// after a lost socket, never ends the stream; a refusal with the clock
/// right (a bad secret) stays final (`a_bad_secret_gives_one_auth_failed_*`
/// in tests/bybit_private.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_private_auth_follows_the_venue_clock() {
    let (_sim, h) = sim(MarketConfig::bybit(BybitCategory::Linear)).await;
    h.set_clock_offset_ms(60_000);
    let mut c = PrivateClient::new("bybit", hmac(), config(h.ws_url(), h.rest_url())).expect("venue");
    c.open("linear").await.expect("open");
    until_no_refusal(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    assert!((c.clock().offset_ms() - 60_000).abs() < 5_000, "measured before auth: {}", c.clock().offset_ms());
    h.set_clock_offset_ms(120_000);
    assert_eq!(h.kill_private(KillMode::Reset), 1);
    let seen = until_no_refusal(&mut c, "a new auth", |e| matches!(e.kind, EventKind::Connected)).await;
    assert!(seen.iter().any(is_unknown_gap), "the outage is a gap: {seen:#?}");
    assert_eq!((c.stats().clock_resyncs, c.stats().auth_failures), (1, 0), "{:?}", c.stats());
    let conns = h.bybit_private_conns();
    assert_eq!(conns.last().and_then(|c| c.api_key.as_deref()), Some(TEST_API_KEY), "authenticated: {conns:?}");
    c.shutdown().await;
}

/// An expired listenKey is replaced by a new key on a new connection: the
/// events the old connection delivered before the expiry all arrive, then a
/// gap of unknown extent (the user stream has no sequence numbers, so what
/// the venue sent between the two sockets cannot be counted), then the new
/// connection's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_listen_key_reports_a_gap_and_keeps_what_the_old_connection_delivered() {
    let (_sim, h) = sim(MarketConfig::new(MarketKind::UsdM)).await;
    let mut c = PrivateClient::new("binance", hmac(), config(h.ws_url(), h.rest_url())).expect("venue");
    c.open("usdm").await.expect("open");
    until_no_refusal(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let old = listen_keys(&h);
    // Deposits queued on the old connection, then the expiry, nothing read yet.
    const N: usize = 20;
    for _ in 0..N {
        h.deposit(None, "USDT", "1").expect("deposit");
    }
    assert_eq!(h.expire_listen_key(None), 1);
    let seen = until_no_refusal(&mut c, "the new connection", |e| matches!(e.kind, EventKind::Connected)).await;
    let gap = seen.iter().position(is_unknown_gap).unwrap_or_else(|| panic!("no gap reported: {seen:#?}"));
    let ended = seen.iter().position(|e| matches!(e.kind, EventKind::UserStreamEnded { .. })).expect("expiry seen");
    let deposits: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.kind, EventKind::BalanceUpdate(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(deposits.len(), N, "every deposit of the old connection is delivered: {seen:#?}");
    assert!(deposits.iter().all(|i| *i < ended) && ended < gap, "old events, the expiry, then the gap");
    assert_eq!(c.stats().listen_keys_replaced, 1);
    let new = listen_keys(&h);
    assert!(new.len() == 1 && new != old, "a new key");
    h.deposit(None, "USDT", "1").expect("deposit");
    until_no_refusal(&mut c, "balance_update on the new key", |e| matches!(e.kind, EventKind::BalanceUpdate(_))).await;
    c.shutdown().await;
}
