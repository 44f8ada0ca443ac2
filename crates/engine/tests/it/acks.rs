//! Answers that carry no request id, end to end over a real socket: the
//! option-style `COMMAND_RESP` that names its topics (confirmed or refused by
//! name, in any order, possibly split), the private-style ack that names
//! nothing (the oldest pending request of its op, FIFO), an ambiguous answer,
//! a stray one, and a request never answered at all (reported, then settled by
//! its late answer).
//!
//! The server here is driven by the test: it answers pings itself and passes
//! every other frame to the test, which decides what to send back. A data frame
//! sent after the answers acts as a marker: once its `Data` event arrives, the
//! actor has handled everything sent before it, so the subscription states can
//! be read without waiting on a clock.

use std::sync::Arc;
use std::time::Duration;

use ferrofeed_engine::{
    BackoffConfig, ConnectSpec, Connection, ConnectionConfig, EventKind, EventReceiver, Native, State, SubState,
};
use ferrofeed_venues::bybit::{BybitRules, Category};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

/// A one-connection server the test drives.
struct Server {
    url: String,
    /// Every client frame other than a ping.
    seen: mpsc::UnboundedReceiver<Value>,
    /// Frames to send to the client.
    send: mpsc::UnboundedSender<String>,
}

async fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/v5/public/option", listener.local_addr().expect("addr"));
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (send, mut out) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(t.as_str()).expect("client frames are JSON");
                        if v["op"] == "ping" {
                            let pong = json!({"args": ["1"], "op": "pong"}).to_string();
                            if ws.send(Message::Text(pong.into())).await.is_err() { return; }
                        } else if seen_tx.send(v).is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
                f = out.recv() => match f {
                    Some(f) => if ws.send(Message::Text(f.into())).await.is_err() { return },
                    None => return,
                },
            }
        }
    });
    Server { url, seen, send }
}

impl Server {
    /// The next client request.
    async fn request(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.seen.recv()).await.expect("a request in time").expect("server alive")
    }

    fn send(&self, frame: Value) {
        self.send.send(frame.to_string()).expect("server alive");
    }
}

fn config(url: &str, ack_timeout: Duration) -> ConnectionConfig {
    let mut cfg = ConnectionConfig::new(ConnectSpec::new(url));
    cfg.seed = Some(3);
    cfg.backoff = BackoffConfig {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        ..BackoffConfig::default()
    };
    cfg.ack_timeout = ack_timeout;
    cfg
}

/// Never within a test: a request is either answered or the test fails.
const NEVER: Duration = Duration::from_secs(3600);

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn args(req: &Value) -> Vec<String> {
    req["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("topic").to_string()).collect()
}

fn command_resp(ok: &[String], failed: &[String]) -> Value {
    json!({"success": true, "conn_id": "c", "data": {"failTopics": failed, "successTopics": ok}, "type": "COMMAND_RESP"})
}

fn private_ack(op: &str) -> Value {
    json!({"success": true, "ret_msg": "", "op": op, "conn_id": "c"})
}

fn marker(topic: &str) -> Value {
    json!({"topic": topic, "type": "snapshot", "ts": 1, "data": {}})
}

/// Reads events up to the marker's data on `topic`; returns the other events.
async fn through_marker(rx: &mut EventReceiver, topic: &str) -> Vec<EventKind> {
    let mut before = Vec::new();
    loop {
        let ev = tokio::time::timeout(WAIT, rx.recv()).await.expect("event in time").expect("connection alive");
        match ev.kind {
            EventKind::Data { stream, .. } if &*stream == topic => return before,
            EventKind::StateChanged(_) => {}
            other => before.push(other),
        }
    }
}

fn state(conn: &Connection, stream: &str) -> Option<SubState> {
    conn.snapshot().streams.get(stream).copied()
}

fn no_errors(events: &[EventKind]) {
    for e in events {
        assert!(!matches!(e, EventKind::Error { .. } | EventKind::Unknown { .. }), "unexpected {e:?}");
    }
}

/// Option-style answers confirm streams by name: in any order, split over
/// several frames, each stream settling the request that holds it. The
/// connection becomes active only once every stream is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_confirmed_by_name_without_an_id_in_any_order() {
    let mut srv = server().await;
    let mut venue = BybitRules::public(Category::Option);
    venue.max_streams_per_request = 2;
    let topics = strings(&[
        "orderbook.25.BTC-6JAN23-18000-C",
        "orderbook.25.BTC-6JAN23-18000-P",
        "tickers.BTC-6JAN23-18000-C",
        "tickers.BTC-6JAN23-18000-P",
        "publicTrade.BTC",
    ]);
    let (conn, mut rx) =
        Connection::spawn(Native::new(), Arc::new(venue), config(&srv.url, NEVER), topics.clone()).expect("spawn");
    let reqs = [srv.request().await, srv.request().await, srv.request().await];
    assert!(reqs.iter().all(|r| r["op"] == "subscribe"));
    assert_eq!(reqs.iter().flat_map(args).collect::<Vec<_>>(), topics, "three requests of at most two");

    // Last request first, then the second, then half of the first.
    srv.send(command_resp(&args(&reqs[2]), &[]));
    srv.send(command_resp(&args(&reqs[1]), &[]));
    srv.send(command_resp(&args(&reqs[0])[1..], &[]));
    srv.send(marker(&topics[4]));
    let before = through_marker(&mut rx, &topics[4]).await;
    no_errors(&before);
    assert!(!before.contains(&EventKind::Connected), "active before every stream was answered: {before:?}");
    assert_eq!(state(&conn, &topics[0]), Some(SubState::Pending));
    for t in &topics[1..] {
        assert_eq!(state(&conn, t), Some(SubState::Confirmed), "{t}");
    }
    assert_eq!(conn.state(), State::Subscribing);

    // The rest of the first request: now everything is answered.
    srv.send(command_resp(&args(&reqs[0])[..1], &[]));
    srv.send(marker(&topics[4]));
    let before = through_marker(&mut rx, &topics[4]).await;
    no_errors(&before);
    assert_eq!(before, vec![EventKind::Connected]);
    assert!(topics.iter().all(|t| state(&conn, t) == Some(SubState::Confirmed)), "{:?}", conn.snapshot());

    // Unsubscribes are confirmed by name too.
    conn.unsubscribe(vec![topics[2].clone()]).await.expect("alive");
    let unsub = srv.request().await;
    assert_eq!((unsub["op"].as_str(), args(&unsub)), (Some("unsubscribe"), vec![topics[2].clone()]));
    assert_eq!(state(&conn, &topics[2]), Some(SubState::PendingUnsubscribe));
    srv.send(command_resp(&[topics[2].clone()], &[]));
    srv.send(marker(&topics[4]));
    no_errors(&through_marker(&mut rx, &topics[4]).await);
    assert_eq!(state(&conn, &topics[2]), None);
    assert_eq!(conn.snapshot().streams.len(), 4);

    // A repeated answer for streams no request waits for is reported, not applied.
    srv.send(command_resp(&[topics[2].clone()], &[]));
    srv.send(marker(&topics[4]));
    let before = through_marker(&mut rx, &topics[4]).await;
    assert!(matches!(before.as_slice(), [EventKind::Unknown { .. }]), "{before:?}");
    assert_eq!(state(&conn, &topics[2]), None);
    assert!(tokio::time::timeout(WAIT, conn.close()).await.expect("close in time"));
}

/// A stream refused by name, without an id, is reported as
/// `SubscriptionFailed`; the other streams of its request count as accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refused_by_name_is_reported_as_subscription_failed() {
    let mut srv = server().await;
    let topics = strings(&["orderbook.25.BTC-6JAN23-18000-C", "orderbook.25.NOPE-1JAN30-1-C", "publicTrade.BTC"]);
    let (conn, mut rx) = Connection::spawn(
        Native::new(),
        Arc::new(BybitRules::public(Category::Option)),
        config(&srv.url, NEVER),
        topics.clone(),
    )
    .expect("spawn");
    let req = srv.request().await;
    assert_eq!(args(&req), topics);
    // Only the refused topic is named; the answer confirms one other by name
    // and leaves the third unmentioned (accepted with its request).
    srv.send(command_resp(&topics[..1], &topics[1..2]));
    srv.send(marker(&topics[0]));
    let before = through_marker(&mut rx, &topics[0]).await;
    assert_eq!(
        before,
        vec![
            EventKind::SubscriptionFailed {
                stream: topics[1].clone(),
                code: 0,
                msg: format!("failTopics: {}", topics[1]),
            },
            EventKind::Connected,
        ]
    );
    assert_eq!(state(&conn, &topics[0]), Some(SubState::Confirmed));
    assert_eq!(state(&conn, &topics[1]), Some(SubState::Failed));
    assert_eq!(state(&conn, &topics[2]), Some(SubState::Confirmed));
    assert!(tokio::time::timeout(WAIT, conn.close()).await.expect("close in time"));
}

/// Private-style acks name neither id nor topic: each settles the oldest
/// pending request of its op on the connection (FIFO). An answer naming
/// neither op nor topic while both kinds are pending is ambiguous and
/// reported; one with nothing pending is reported as unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_without_id_or_topics_settle_the_oldest_request_of_their_op() {
    let mut srv = server().await;
    let mut venue = BybitRules::public(Category::Option);
    venue.max_streams_per_request = 2;
    let topics = strings(&["order", "execution", "position"]);
    let (conn, mut rx) =
        Connection::spawn(Native::new(), Arc::new(venue), config(&srv.url, NEVER), topics.clone()).expect("spawn");
    let (first, second) = (srv.request().await, srv.request().await);
    assert_eq!((args(&first), args(&second)), (topics[..2].to_vec(), topics[2..].to_vec()));

    srv.send(private_ack("subscribe"));
    srv.send(marker("order"));
    let before = through_marker(&mut rx, "order").await;
    no_errors(&before);
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(state(&conn, "order"), Some(SubState::Confirmed));
    assert_eq!(state(&conn, "execution"), Some(SubState::Confirmed));
    assert_eq!(state(&conn, "position"), Some(SubState::Pending), "only the oldest request is settled");

    srv.send(private_ack("subscribe"));
    srv.send(marker("order"));
    assert_eq!(through_marker(&mut rx, "order").await, vec![EventKind::Connected]);
    assert_eq!(state(&conn, "position"), Some(SubState::Confirmed));

    // A subscribe and an unsubscribe in flight: an answer that names neither
    // op nor topic cannot tell them apart.
    conn.subscribe(vec!["wallet".into()]).await.expect("alive");
    conn.unsubscribe(vec!["execution".into()]).await.expect("alive");
    let (a, b) = (srv.request().await, srv.request().await);
    assert_eq!((a["op"].as_str(), b["op"].as_str()), (Some("subscribe"), Some("unsubscribe")));
    srv.send(command_resp(&[], &[]));
    srv.send(marker("order"));
    let before = through_marker(&mut rx, "order").await;
    assert!(matches!(before.as_slice(), [EventKind::Error { msg, .. }] if msg.contains("ambiguous")), "{before:?}");
    assert_eq!(state(&conn, "wallet"), Some(SubState::Pending));
    assert_eq!(state(&conn, "execution"), Some(SubState::PendingUnsubscribe));

    // With the op named, each settles its own kind.
    srv.send(private_ack("unsubscribe"));
    srv.send(private_ack("subscribe"));
    srv.send(marker("order"));
    no_errors(&through_marker(&mut rx, "order").await);
    assert_eq!(state(&conn, "execution"), None);
    assert_eq!(state(&conn, "wallet"), Some(SubState::Confirmed));

    // Nothing pending: a stray ack is reported as unknown and changes nothing.
    srv.send(private_ack("subscribe"));
    srv.send(marker("order"));
    let before = through_marker(&mut rx, "order").await;
    assert!(matches!(before.as_slice(), [EventKind::Unknown { .. }]), "{before:?}");
    assert_eq!(
        conn.snapshot().streams.into_iter().collect::<Vec<_>>(),
        vec![
            ("order".to_string(), SubState::Confirmed),
            ("position".to_string(), SubState::Confirmed),
            ("wallet".to_string(), SubState::Confirmed),
        ]
    );
    assert!(tokio::time::timeout(WAIT, conn.close()).await.expect("close in time"));
}

/// A request never answered is reported once its ack timeout passes: the
/// subscribe's stream is marked unanswered (assumed subscribed) and the
/// connection becomes active; a late answer still confirms it. An unanswered
/// unsubscribe is reported and the stream forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_is_reported_and_a_late_answer_still_settles_it() {
    let mut srv = server().await;
    let topic = "tickers.BTC-6JAN23-18000-C".to_string();
    let (conn, mut rx) = Connection::spawn(
        Native::new(),
        Arc::new(BybitRules::public(Category::Option)),
        config(&srv.url, Duration::from_millis(200)),
        vec![topic.clone()],
    )
    .expect("spawn");
    let req = srv.request().await;
    assert_eq!(args(&req), vec![topic.clone()]);
    let mut events = Vec::new();
    loop {
        let ev = tokio::time::timeout(WAIT, rx.recv()).await.expect("event in time").expect("alive");
        match ev.kind {
            EventKind::StateChanged(_) => {}
            EventKind::Connected => break,
            other => events.push(other),
        }
    }
    let id = req["req_id"].as_str().expect("req_id");
    assert!(
        matches!(events.as_slice(), [EventKind::Error { msg, .. }]
            if msg.starts_with(&format!("no reply to request {id} (subscribe)")) && msg.ends_with(&topic)),
        "{events:?}"
    );
    assert_eq!(state(&conn, &topic), Some(SubState::Unanswered));

    // The late answer (without an id: FIFO still finds the overdue request).
    srv.send(json!({"success": true, "ret_msg": "", "op": "subscribe", "conn_id": "c"}));
    srv.send(marker(&topic));
    no_errors(&through_marker(&mut rx, &topic).await);
    assert_eq!(state(&conn, &topic), Some(SubState::Confirmed));

    // An unsubscribe nobody answers.
    conn.unsubscribe(vec![topic.clone()]).await.expect("alive");
    let unsub = srv.request().await;
    assert_eq!(unsub["op"], "unsubscribe");
    let ev = loop {
        let ev = tokio::time::timeout(WAIT, rx.recv()).await.expect("event in time").expect("alive");
        if !matches!(ev.kind, EventKind::StateChanged(_)) {
            break ev.kind;
        }
    };
    assert!(
        matches!(&ev, EventKind::Error { msg, .. } if msg.contains("(unsubscribe)") && msg.contains("assuming unsubscribed")),
        "{ev:?}"
    );
    assert_eq!(state(&conn, &topic), None);
    assert!(tokio::time::timeout(WAIT, conn.close()).await.expect("close in time"));
}
