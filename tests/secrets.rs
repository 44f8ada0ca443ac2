//! Regression tests of issue 18 about credentials and user streams, each
//! named after what it pins, against the simulator (and a `nats-server`
//! started here) over real sockets: no URL, token, listenKey, password or
//! API secret reaches a status message, an error, `Debug` output or a log;
//! a clock error re-syncs instead of ending the user stream; replacing an
//! expired listenKey loses nothing silently.

use std::time::{Duration, Instant};

use ferrofeed::client::Environment;
use ferrofeed::engine::BackoffConfig;
use ferrofeed::model::event::{Event, EventKind};
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::auth::Credentials;
use ferrofeed_sim::{MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_HMAC_SECRET};

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
