//! Regression tests of issue 18 ("nothing lost, nothing stuck"), each named
//! after what it pins, against the simulator over real sockets with the
//! shipped venue rules.

use std::time::{Duration, Instant};

use ferrofeed::books::BookConfig;
use ferrofeed::client::{ClientConfig, Environment};
use ferrofeed::engine::BackoffConfig;
use ferrofeed::feed::Feed;
use ferrofeed::model::event::EventKind;
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::auth::Credentials;
use ferrofeed::venues::binance::spec::SPOT;
use ferrofeed_sim::{
    BybitCategory, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_ED25519_SEED,
    TEST_HMAC_SECRET,
};

async fn spot() -> (Sim, MarketHandle) {
    let mut m = MarketConfig::new(MarketKind::Spot);
    m.symbols.truncate(1);
    m.timing.actions_per_sec = 200.0;
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn client() -> ClientConfig {
    ClientConfig {
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(5),
        ..ClientConfig::default()
    }
}

/// Waits for the next `book_snapshot` (the book back in sync); panics after 30 s.
async fn until_synced(feed: &mut Feed, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "{what}: the book did not come back");
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), feed.next()).await else { continue };
        if matches!(ev.kind, EventKind::BookSnapshot(_)) {
            return;
        }
    }
}

/// A venue's `Retry-After` is input, not an instruction: a value too large
/// for any clock (u64::MAX seconds, or more digits than a u64 holds), an HTTP
/// date or garbage neither panics the feed nor pauses recovery beyond
/// `BookConfig::max_retry_after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_retry_after_never_panics_and_pauses_no_longer_than_the_cap() {
    let (_sim, h) = spot().await;
    let symbol = h.config().symbols[0].name.clone();
    h.rate_limit_snapshots(1, Some("18446744073709551615"));
    let books = BookConfig {
        max_retry_after: Duration::from_millis(500),
        retry_initial: Duration::from_millis(50),
        ..BookConfig::default()
    };
    let mut feed = Feed::builder()
        .client_config(client())
        .url(SPOT, Environment::Custom { ws: h.ws_url(), rest: h.rest_url() })
        .book_config(books)
        .book(SPOT, &symbol)
        .build()
        .await
        .expect("feed");
    until_synced(&mut feed, "u64::MAX").await;
    let stream = feed.books().stream_of(SPOT, &symbol).expect("tracked").to_string();
    for (i, value) in ["99999999999999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"].into_iter().enumerate()
    {
        // Lose a diff: the book resyncs, and its snapshot is refused with
        // this Retry-After.
        h.rate_limit_snapshots(1, Some(value));
        h.drop_next(&stream, 1);
        until_synced(&mut feed, value).await;
        assert_eq!(feed.books().fetch_stats().rate_limited, i as u64 + 2, "{value}");
    }
    let st = feed.books().fetch_stats();
    assert_eq!(st.rate_limited, 4, "{st:?}");
    assert_eq!(h.stats().counters.snapshots_failed_by_fault, 4);
    feed.shutdown().await;
}

/// Opens `account` on `venue` with the simulator's test key while the
/// simulator ignores the first authentication: the connection must give the
/// unanswered socket up after `ack_timeout` (a `disconnected` saying so) and
/// authenticate on the next one, never hang in Authenticating.
async fn unanswered_auth_is_given_up(h: &MarketHandle, venue: &str, account: &str, creds: Credentials) {
    let cfg = PrivateConfig {
        environment: Environment::Custom { ws: h.ws_url(), rest: h.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        ack_timeout: Duration::from_millis(500),
        seed: Some(3),
        ..PrivateConfig::default()
    };
    h.ignore_auth(1);
    let mut c = PrivateClient::new(venue, creds, cfg).expect("venue");
    c.open(account).await.expect("open");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut given_up = false;
    loop {
        assert!(Instant::now() < deadline, "{venue}: {seen:?}");
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), c.next()).await else { continue };
        match &ev.kind {
            EventKind::Disconnected { reason } if reason.contains("authentication unanswered") => given_up = true,
            EventKind::Connected | EventKind::Reconnected if given_up => break,
            EventKind::Connected | EventKind::Reconnected => panic!("{venue}: active before the unanswered auth"),
            EventKind::AuthFailed { msg } => panic!("{venue}: an unanswered auth is not a refusal: {msg}"),
            _ => {}
        }
        seen.push(ev.kind.type_name());
    }
    assert!(c.is_active(account));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_session_logon_is_given_up_and_retried() {
    let (_sim, h) = spot().await;
    let creds = Credentials::ed25519_seed(TEST_API_KEY, TEST_ED25519_SEED).expect("creds");
    unanswered_auth_is_given_up(&h, "binance", "spot", creds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_bybit_auth_is_given_up_and_retried() {
    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.truncate(1);
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    unanswered_auth_is_given_up(&h, "bybit", "linear", creds).await;
}

/// A duration no clock can hold is a usage error (exit 2), not a panic.
#[test]
fn a_duration_beyond_any_clock_is_a_usage_error() {
    for d in ["99999999999999999999999h", "inf", "1e400"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
            .args(["stream", "--env", "sim", "--trades", "BTCUSDT", "--duration", d])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{d}: {err}");
        assert!(err.contains("invalid duration") && !err.contains("panicked"), "{d}: {err}");
    }
}

/// A REST answer larger than the client's cap is an error, not a buffer that
/// grows with whatever the server sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_over_the_byte_cap_are_refused_not_buffered() {
    use ferrofeed::engine::{RestClient, RestError};
    let (_sim, h) = spot().await;
    let symbol = h.config().symbols[0].name.clone();
    let url = format!("{}/api/v3/depth?symbol={symbol}&limit=1000", h.rest_url());
    let body = RestClient::default().get(&url, 1, None).await.expect("under the default cap");
    assert!(body.len() > 1024, "the snapshot is {} bytes", body.len());
    let err = RestClient::default().with_max_body(1024).get(&url, 1, None).await.expect_err("over the cap");
    assert!(matches!(err, RestError::TooLarge { limit: 1024, .. }), "{err}");
    assert!(!err.is_retryable());
}

/// The next event satisfying `want`, skipping others; panics after 30 s (a
/// hang guard, not a timing bound) or if `forbid` matches first.
async fn until_event(
    feed: &mut Feed,
    what: &str,
    mut want: impl FnMut(&EventKind) -> bool,
    forbid: impl Fn(&EventKind) -> bool,
) -> EventKind {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        let Ok(next) = tokio::time::timeout(Duration::from_millis(200), feed.next()).await else { continue };
        let ev = next.expect("the feed ended");
        assert!(!forbid(&ev.kind), "{what}: {:?}", ev.kind);
        if want(&ev.kind) {
            return ev.kind;
        }
    }
}

/// A session that reached Active and delivered data is no failed attempt:
/// with a budget of one failed attempt, a feed whose socket the venue kills
/// again and again (each time after data flowed) keeps reconnecting instead
/// of giving up, and the time from each loss to the first data on the new
/// socket is measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_delivered_data_does_not_count_as_a_failed_attempt() {
    use ferrofeed::venues::Channel;
    use ferrofeed_sim::KillMode;
    let (_sim, h) = spot().await;
    let symbol = h.config().symbols[0].name.clone();
    let mut cfg = client();
    // Old behaviour: the second loss exhausted this budget (the first used
    // the immediate retry), and the feed gave up.
    cfg.backoff.max_attempts = Some(1);
    cfg.backoff.initial = Duration::from_secs(1);
    let mut feed = Feed::builder()
        .client_config(cfg)
        .url(SPOT, Environment::Custom { ws: h.ws_url(), rest: h.rest_url() })
        .subscribe(SPOT, Channel::Trades, &symbol)
        .build()
        .await
        .expect("feed");
    let gave_up = |k: &EventKind| matches!(k, EventKind::GaveUp { .. });
    let trade = |k: &EventKind| matches!(k, EventKind::Trade(_));
    until_event(&mut feed, "first trade", trade, gave_up).await;
    const KILLS: u64 = 4;
    for i in 0..KILLS {
        assert!(h.kill_all(KillMode::Reset) >= 1);
        let what = format!("kill {i}");
        until_event(&mut feed, &what, |k| matches!(k, EventKind::Reconnected), gave_up).await;
        until_event(&mut feed, &what, trade, gave_up).await;
    }
    feed.refresh_stats();
    let stats = feed.stats();
    let st = stats.lock();
    let r = st.recovery.get(&SPOT).expect("recoveries measured for the market");
    assert_eq!(r.count, KILLS, "one recovery per loss: {r:?}");
    assert!(r.quantile(0.5).is_some() && r.max >= r.quantile(0.5).unwrap_or_default());
    let text = ferrofeed::metrics::render(&st);
    assert!(
        text.contains(&format!("ferrofeed_recovery_seconds_count{{venue=\"binance\",market=\"spot\"}} {KILLS}")),
        "{text}"
    );
}

/// A consumer that reads nothing for 10 s while trades arrive at 50k msgs/s
/// costs at most the queue's byte budget plus the documented allowance in
/// resident memory, under both policies, and what the stall lost is
/// reported (a gap) rather than hidden. Measured in a process of its own
/// (`ferrofeed bench stall`), so other tests do not disturb its RSS.
#[test]
fn a_stalled_consumer_stays_within_the_byte_budget_under_both_policies() {
    for policy in ["block", "drop-oldest"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
            .args(["bench", "stall", "--rate", "50000", "--stall", "10s", "--queue-mib", "4", "--no-pin", "--json"])
            .args(["--policy", policy])
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{policy}: {text} {}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON report");
        let num = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{policy}: no {k} in {r}"));
        assert_eq!(num("queue_max_bytes"), (4u64 << 20) as f64);
        assert!(num("queue_peak_bytes") >= num("queue_max_bytes") / 2.0, "{policy}: the stall filled the queue: {r}");
        assert!(num("queue_peak_bytes") <= num("queue_max_bytes"), "{policy}: {r}");
        assert_eq!(r["within_budget"], true, "{policy}: {r}");
        assert!(num("trades_before") > 0.0 && num("trades_after") > 0.0, "{policy}: data flows again: {r}");
        assert!(num("gap_events") >= 1.0, "{policy}: the loss is reported: {r}");
        if policy == "block" {
            assert_eq!(num("queue_dropped"), 0.0, "{r}");
        } else {
            assert!(num("queue_dropped") > 0.0, "{r}");
        }
    }
}

/// A feed of `symbol`'s trades on the spot simulator `h`.
async fn trades_feed(h: &MarketHandle, symbol: &str, cfg: ClientConfig) -> Feed {
    Feed::builder()
        .client_config(cfg)
        .url(SPOT, Environment::Custom { ws: h.ws_url(), rest: h.rest_url() })
        .subscribe(SPOT, ferrofeed::venues::Channel::Trades, symbol)
        .build()
        .await
        .expect("feed")
}

fn trade_id(k: &EventKind) -> Option<u64> {
    match k {
        EventKind::Trade(t) => t.trade_id.parse().ok(),
        _ => None,
    }
}

/// A venue that restarts its trade ids (as after its own restart) does not
/// silence the stream: the step back is a gap of unknown extent, and the
/// trades with the new ids are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_reset_is_a_gap_and_the_stream_goes_on() {
    use ferrofeed::model::event::Missing;
    let (_sim, h) = spot().await;
    let symbol = h.config().symbols[0].name.clone();
    let mut feed = trades_feed(&h, &symbol, client()).await;
    let first = until_event(&mut feed, "a trade", |k| trade_id(k).is_some(), |_| false).await;
    assert!(trade_id(&first).unwrap() > 100, "the simulator starts its ids high");
    assert_eq!(h.reset_ids(Some(&symbol), 1), 1);
    let mut saw_gap = false;
    let low = until_event(
        &mut feed,
        "a trade with a restarted id",
        |k| {
            if matches!(k, EventKind::Gap(g) if g.missing == Missing::Unknown { missing: ferrofeed::model::event::UnknownExtent::Unknown }) {
                saw_gap = true;
            }
            trade_id(k).is_some_and(|id| id < 100)
        },
        |_| false,
    )
    .await;
    assert!(saw_gap, "the restart was reported before {low:?}");
    // And it goes on from there.
    let next = until_event(&mut feed, "the next trade", |k| trade_id(k).is_some(), |_| false).await;
    assert_eq!(trade_id(&next), trade_id(&low).map(|id| id + 1));
}

/// Sums a per-connection counter over the feed's connections.
fn conn_sum(feed: &Feed, f: impl Fn(&ferrofeed::feed::ConnStats) -> u64) -> u64 {
    feed.refresh_stats();
    feed.stats().lock().conns.values().map(f).sum()
}

/// Data for stream names nobody subscribed makes no per-stream state
/// anywhere (sequence tracker, statistics, metric labels): it is dropped,
/// counted, and reported once per socket with its frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_for_streams_nobody_subscribed_is_counted_not_kept() {
    let (_sim, h) = spot().await;
    let symbol = h.config().symbols[0].name.clone();
    let mut feed = trades_feed(&h, &symbol, client()).await;
    until_event(&mut feed, "a trade", |k| trade_id(k).is_some(), |_| false).await;
    const N: u64 = 5_000;
    assert_eq!(h.flood_unsubscribed(None, N, 50), 1);
    let report = until_event(&mut feed, "the report", |k| matches!(k, EventKind::Error { .. }), |_| false).await;
    let EventKind::Error { msg, raw } = report else { unreachable!() };
    assert!(msg.contains("did not subscribe"), "{msg}");
    assert!(raw.contains("flood"), "the offending frame is kept: {raw}");
    // Trades still flow after the flood, and every flooded frame was counted.
    let deadline = Instant::now() + Duration::from_secs(30);
    while conn_sum(&feed, |c| c.unsolicited) < N {
        assert!(Instant::now() < deadline, "counted {}", conn_sum(&feed, |c| c.unsolicited));
        until_event(&mut feed, "a trade", |k| trade_id(k).is_some(), |k| matches!(k, EventKind::Error { .. })).await;
    }
    assert_eq!(conn_sum(&feed, |c| c.unsolicited), N);
    let stats = feed.stats();
    let st = stats.lock();
    assert_eq!(st.streams.len(), 1, "only the subscribed stream has statistics: {:?}", st.streams.keys());
    let text = ferrofeed::metrics::render(&st);
    assert!(!text.contains("flood"), "no metric label for a flooded name");
}

/// Under drop-oldest, a flood of malformed frames while the consumer is not
/// reading cannot grow the queue past its bound: error events are dropped
/// like data and reported as one count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_malformed_frames_cannot_grow_a_drop_oldest_queue() {
    use ferrofeed::engine::Overflow;
    let (_sim, h) = spot().await;
    let symbol = h.config().symbols[0].name.clone();
    let mut feed = Feed::builder()
        .client_config(client())
        .url(SPOT, Environment::Custom { ws: h.ws_url(), rest: h.rest_url() })
        .subscribe(SPOT, ferrofeed::venues::Channel::Trades, &symbol)
        .queue(100, Overflow::DropOldest)
        .build()
        .await
        .expect("feed");
    until_event(&mut feed, "a trade", |k| trade_id(k).is_some(), |_| false).await;
    const N: u64 = 20_000;
    assert_eq!(h.flood_malformed(None, N), 1);
    // The consumer reads nothing until the queue has dropped most of the flood.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        feed.refresh_stats();
        let (len, dropped) = {
            let stats = feed.stats();
            let st = stats.lock();
            (st.queue["public"].0, st.queue_dropped["public"])
        };
        assert!(len <= 100, "the queue grew to {len}");
        if dropped >= N - 100 {
            break;
        }
        assert!(Instant::now() < deadline, "dropped only {dropped}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut errors = 0;
    let mut counted = 0u64;
    while counted + errors < N {
        let k = until_event(&mut feed, "the flood's errors", |k| matches!(k, EventKind::Error { .. }), |_| false).await;
        let EventKind::Error { msg, .. } = k else { unreachable!() };
        match msg.split_once(" error or unknown-frame events dropped") {
            Some((n, _)) => counted += n.parse::<u64>().expect("a count"),
            None => errors += 1,
        }
    }
    assert!(errors <= 100, "{errors} error events were kept");
    assert_eq!(counted + errors, N, "every malformed frame is an event or counted in one");
}

/// A frame larger than the venue's cap ends the socket before it is
/// buffered; the feed reconnects, says so, and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_venues_cap_ends_the_socket_before_it_is_buffered() {
    let (_sim, h) = spot().await;
    let symbol = h.config().symbols[0].name.clone();
    let mut feed = trades_feed(&h, &symbol, client()).await;
    until_event(&mut feed, "a trade", |k| trade_id(k).is_some(), |_| false).await;
    // Binance public sockets accept frames up to 4 MiB.
    assert_eq!(h.send_oversized(None, 6 << 20), Ok(1));
    let k = until_event(&mut feed, "the disconnect", |k| matches!(k, EventKind::Disconnected { .. }), |_| false).await;
    let EventKind::Disconnected { reason } = k else { unreachable!() };
    assert!(reason.to_lowercase().contains("too long") || reason.contains("limit"), "{reason}");
    until_event(&mut feed, "the reconnect", |k| matches!(k, EventKind::Reconnected), |_| false).await;
    until_event(&mut feed, "a trade", |k| trade_id(k).is_some(), |_| false).await;
}
