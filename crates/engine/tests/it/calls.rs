//! Callers' requests on a connection (`Connection::call`, the transport of
//! the order API) against the simulator, with the shipped Binance spot
//! rules: the answer matched to each request's id, concurrent requests kept
//! apart, nothing sent without an open socket, and an explicit "outcome
//! unknown" when the socket drops or the answer is late. The request is
//! Binance's `LIST_SUBSCRIPTIONS`, whose answer echoes the request id.

use std::sync::Arc;
use std::time::Duration;

use ferrofeed_engine::{
    BackoffConfig, CallError, ConnectSpec, Connection, ConnectionConfig, EventReceiver, Native, State,
};
use ferrofeed_sim::{KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig};
use ferrofeed_venues::binance::{BinanceRules, Market};

const WAIT: Duration = Duration::from_secs(20);

async fn start() -> (Sim, MarketHandle) {
    let mut m = MarketConfig::new(MarketKind::Spot);
    m.symbols.truncate(2);
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn open(m: &MarketHandle, streams: &[&str]) -> (Connection, EventReceiver) {
    let mut c = ConnectionConfig::new(ConnectSpec::new(m.ws_url()));
    c.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..BackoffConfig::default()
    };
    c.seed = Some(3);
    Connection::spawn(
        Native::new(),
        Arc::new(BinanceRules::new(Market::Spot)),
        c,
        streams.iter().map(|s| s.to_string()).collect(),
    )
    .expect("valid config")
}

fn list(id: u64) -> String {
    format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#)
}

async fn active(conn: &Connection) {
    let up = tokio::time::timeout(WAIT, conn.wait_state(|s| s == State::Active)).await;
    assert_eq!(up, Ok(true), "the connection became active");
}

/// Drains the connection's events so it never waits on its queue.
fn drain(mut rx: EventReceiver) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while rx.recv().await.is_some() {} })
}

#[tokio::test]
async fn each_call_gets_the_answer_with_its_own_id() {
    let (_sim, m) = start().await;
    let (conn, rx) = open(&m, &["btcusdt@trade"]);
    let _d = drain(rx);
    active(&conn).await;
    let conn = Arc::new(conn);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let c = conn.clone();
        tasks.push(tokio::spawn(async move { c.call(list, WAIT).await }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let answer = t.await.expect("task").expect("an answer");
        let v: serde_json::Value = serde_json::from_str(&answer).expect("JSON answer");
        assert_eq!(v["result"], serde_json::json!(["btcusdt@trade"]), "{answer}");
        ids.push(v["id"].as_u64().expect("numeric id"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 12, "every call was answered under its own id: {ids:?}");
    // The answers went to the callers, not to the event stream as unknown frames.
    assert_eq!(conn.snapshot().state, State::Active);
}

#[tokio::test]
async fn a_call_without_an_open_socket_is_not_sent() {
    let (_sim, m) = start().await;
    m.refuse_connections(true);
    let (conn, rx) = open(&m, &[]);
    let _d = drain(rx);
    let before = m.stats().counters.control_messages;
    let err = conn.call(list, WAIT).await.expect_err("no socket");
    assert_eq!(err, CallError::NotReady);
    assert!(!err.outcome_unknown(), "{err}");
    assert_eq!(m.stats().counters.control_messages, before, "nothing reached the venue");
}

#[tokio::test]
async fn calls_in_flight_when_the_socket_drops_end_with_outcome_unknown() {
    let (_sim, m) = start().await;
    let (conn, rx) = open(&m, &["btcusdt@trade"]);
    let _d = drain(rx);
    active(&conn).await;
    // The venue holds its answers back; the request is on the wire when the socket dies.
    m.set_ack_delay(Duration::from_secs(60));
    let before = m.stats().counters.control_messages;
    let conn = Arc::new(conn);
    let c = conn.clone();
    let pending = tokio::spawn(async move { c.call(list, WAIT).await });
    let deadline = tokio::time::Instant::now() + WAIT;
    while m.stats().counters.control_messages == before {
        assert!(tokio::time::Instant::now() < deadline, "the request reached the venue");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(m.kill_all(KillMode::Reset) >= 1);
    let err = pending.await.expect("task").expect_err("the answer was lost");
    assert_eq!(err, CallError::ConnectionLost);
    assert!(err.outcome_unknown(), "{err}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    // The connection comes back and answers new calls.
    m.set_ack_delay(Duration::ZERO);
    active(&conn).await;
    let answer = loop {
        match conn.call(list, WAIT).await {
            Ok(a) => break a,
            // Between the new socket and its authentication/subscription.
            Err(CallError::NotReady) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("a call on the new socket failed: {e}"),
        }
    };
    assert!(answer.contains("btcusdt@trade"), "{answer}");
}

#[tokio::test]
async fn a_late_answer_is_a_timeout_with_outcome_unknown_and_frees_its_slot() {
    let (_sim, m) = start().await;
    let (conn, rx) = open(&m, &["btcusdt@trade"]);
    let _d = drain(rx);
    active(&conn).await;
    m.set_ack_delay(Duration::from_millis(1500));
    let err = conn.call(list, Duration::from_millis(100)).await.expect_err("late");
    assert_eq!(err, CallError::TimedOut(Duration::from_millis(100)));
    assert!(err.outcome_unknown());
    m.set_ack_delay(Duration::ZERO);
    // The late answer, when it comes, goes nowhere; the next call gets its own.
    let answer = conn.call(list, WAIT).await.expect("answer");
    assert!(answer.contains("btcusdt@trade"), "{answer}");
}
