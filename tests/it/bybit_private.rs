//! The ferrofeed private session (`PrivateClient`) against the simulator's Bybit v5
//! private stream: orders placed through the simulator's signed
//! `POST /v5/order/create` come back as order_update / user_trade; a killed
//! private connection authenticates again before anything else (checked in the
//! simulator's op log of the new socket) and keeps receiving orders; a bad
//! secret gives one auth_failed and no reconnect loop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrofeed::client::Environment;
use ferrofeed::engine::BackoffConfig;
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{Event, EventKind, EventKind as Kind, Side};
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::auth::Credentials;
use ferrofeed_sim::{
    BybitCategory, KillMode, MarketConfig, MarketHandle, Sim, SimConfig, TEST_API_KEY, TEST_HMAC_SECRET,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(15);

async fn start() -> (Sim, MarketHandle) {
    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.truncate(2);
    m.timing.actions_per_sec = 50.0;
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn client(h: &MarketHandle, secret: &str) -> PrivateClient {
    let cfg = PrivateConfig {
        environment: Environment::Custom { ws: h.ws_url(), rest: h.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(3),
        ..PrivateConfig::default()
    };
    let creds = Credentials::hmac(TEST_API_KEY, secret).expect("creds");
    PrivateClient::new("bybit", creds, cfg).expect("venue")
}

fn topics(t: &[&str]) -> Option<Vec<String>> {
    Some(t.iter().map(|s| s.to_string()).collect())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Places an order through the simulator's `POST /v5/order/create`, signed
/// per Bybit v5 REST rules with the test account's HMAC secret; returns the
/// `orderId`.
async fn place(h: &MarketHandle, side: &str, qty: &str) -> String {
    let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let body = serde_json::json!({
        "category": "linear", "symbol": "BTCUSDT", "side": side, "orderType": "Market", "qty": qty,
    })
    .to_string();
    let ts = now_ms();
    let sig = creds.sign(&format!("{ts}{TEST_API_KEY}5000{body}"));
    let req = format!(
        "POST /v5/order/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-BAPI-API-KEY: {TEST_API_KEY}\r\nX-BAPI-TIMESTAMP: {ts}\r\nX-BAPI-RECV-WINDOW: 5000\r\n\
         X-BAPI-SIGN: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(h.addr()).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await.expect("answer in time").expect("read");
    let text = String::from_utf8_lossy(&out);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("answer {text}: {e}"));
    assert_eq!(v["retCode"], 0, "order refused: {v}");
    v["result"]["orderId"].as_str().expect("orderId").to_string()
}

/// Events until `pred` holds for one (returned with everything seen).
async fn until(rx: &mut PrivateClient, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.next())
            .await
            .unwrap_or_else(|_| {
                panic!("no {what} in time; saw {:#?}", seen.iter().map(|e: &Event| &e.kind).collect::<Vec<_>>())
            })
            .expect("client open");
        let done = pred(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

/// The decoded private events of an order until both an order_update and a
/// user_trade of `order_id` arrived: (order updates, user trades).
async fn order_events(
    rx: &mut PrivateClient,
    order_id: &str,
) -> (Vec<ferrofeed::model::event::OrderUpdate>, Vec<ferrofeed::model::event::UserTrade>) {
    let (mut orders, mut trades) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + WAIT;
    while orders.is_empty() || trades.is_empty() {
        let ev = tokio::time::timeout_at(deadline, rx.next())
            .await
            .unwrap_or_else(|_| panic!("no order_update + user_trade of {order_id}: {orders:?} {trades:?}"))
            .expect("client open");
        match ev.kind {
            Kind::OrderUpdate(o) if o.order_id == order_id => orders.push(*o),
            Kind::UserTrade(t) if t.order_id == order_id => trades.push(*t),
            Kind::Error { msg, raw } => panic!("decode: {msg}: {raw}"),
            // Status events (connected, the reconnect's gap) are not data.
            Kind::Connected | Kind::Reconnected | Kind::Disconnected { .. } | Kind::Gap(_) => {}
            other => panic!("unexpected {}", other.type_name()),
        }
    }
    (orders, trades)
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// Every fill carries the simulator's taker fee exactly (`execFee`: 0.05 % of
/// the notional, cut to 8 decimals) in the quote asset (`feeCurrency`).
fn assert_fees(trades: &[ferrofeed::model::event::UserTrade]) {
    assert!(!trades.is_empty());
    for t in trades {
        let want = (t.price * t.qty * d("0.0005")).trunc_with_scale(8);
        assert_eq!((t.fee, t.fee_asset.as_deref()), (Some(want), Some("USDT")), "{t:?}");
        assert!(want > Decimal::ZERO, "{t:?}");
    }
}

/// Waits until the open private connection holds `topics`; returns its id.
async fn subscribed(h: &MarketHandle, topics: &[&str]) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let conns = h.bybit_private_conns();
        if let Some(c) = conns.iter().find(|c| c.open && c.topics.len() == topics.len()) {
            let mut got = c.topics.clone();
            got.sort();
            let mut want: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
            want.sort();
            assert_eq!(got, want);
            return c.conn;
        }
        assert!(tokio::time::Instant::now() < deadline, "not subscribed: {conns:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_arrive_and_a_killed_connection_authenticates_before_anything_else() {
    let (_sim, h) = start().await;
    let mut rx = client(&h, TEST_HMAC_SECRET);
    rx.open_with("linear", topics(&["order", "execution"])).await.expect("subscribe");
    until(&mut rx, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let first = subscribed(&h, &["order", "execution"]).await;

    let id = place(&h, "Buy", "0.01").await;
    let (orders, trades) = order_events(&mut rx, &id).await;
    let o = orders.last().expect("order");
    assert_eq!((o.status.as_str(), o.side, o.filled_qty, o.qty), ("Filled", Side::Buy, d("0.01"), d("0.01")));
    assert_eq!(trades.iter().map(|t| t.qty).sum::<Decimal>(), d("0.01"));
    assert!(trades.iter().all(|t| t.side == Side::Buy && !t.maker));
    assert_fees(&trades);

    // Kill the private socket: the new one authenticates first, then resubscribes.
    assert_eq!(h.kill_private(KillMode::Reset), 1);
    until(&mut rx, "reconnected", |e| matches!(e.kind, EventKind::Reconnected)).await;
    let second = subscribed(&h, &["order", "execution"]).await;
    assert_ne!(first, second, "a new socket");
    let conns = h.bybit_private_conns();
    let new = conns.iter().find(|c| c.conn == second).expect("new connection");
    let first_op = new.ops.first().expect("ops");
    assert_eq!((first_op.op.as_str(), first_op.success), ("auth", true), "{:?}", new.ops);
    let first_accepted = new.ops.iter().find(|o| o.success).expect("accepted op");
    assert_eq!(first_accepted.op, "auth");
    assert!(new.ops.iter().any(|o| o.op == "subscribe" && o.success), "{:?}", new.ops);
    assert_eq!(new.api_key.as_deref(), Some(TEST_API_KEY));

    let id = place(&h, "Sell", "0.004").await;
    let (orders, trades) = order_events(&mut rx, &id).await;
    assert_eq!(orders.last().map(|o| (o.side, o.filled_qty)), Some((Side::Sell, d("0.004"))));
    assert_eq!(trades.iter().map(|t| t.qty).sum::<Decimal>(), d("0.004"));
    assert_fees(&trades);
    rx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_secret_gives_one_auth_failed_and_no_reconnect_loop() {
    let (_sim, h) = start().await;
    let mut rx = client(&h, "not-the-secret");
    rx.open_with("linear", topics(&["order"])).await.expect("subscribe starts the connection");
    let events = until(&mut rx, "auth_failed", |e| matches!(e.kind, EventKind::AuthFailed { .. })).await;
    let EventKind::AuthFailed { msg } = &events.last().expect("event").kind else { unreachable!() };
    assert!(msg.contains("Params Error"), "{msg}");
    assert!(!msg.contains("not-the-secret"), "{msg}");
    let accepted = h.stats().counters.connections_accepted;
    // Nothing more: no reconnect, no second auth_failed.
    let mut more = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(ev)) = tokio::time::timeout_at(end, rx.next()).await {
        more.push(ev.kind);
    }
    assert!(
        !more.iter().any(|k| matches!(k, EventKind::AuthFailed { .. } | EventKind::Connected | EventKind::Reconnected)),
        "{more:?}"
    );
    assert_eq!(h.stats().counters.connections_accepted, accepted);
    // The simulator saw exactly one refused auth and nothing subscribed.
    let conns = h.bybit_private_conns();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert!(conns[0].ops.iter().all(|o| !o.success), "{:?}", conns[0].ops);
    assert_eq!(conns[0].ops.first().map(|o| o.op.as_str()), Some("auth"));
    assert!(conns[0].api_key.is_none());
}

/// A private session inside a `Feed`: public trades and the account's orders
/// come out of one stream, and shutting the feed down closes the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_session_joins_the_feed_stream() {
    use ferrofeed::feed::Feed;
    use ferrofeed::venues::{Channel, bybit};
    let (_sim, h) = start().await;
    let mut session = client(&h, TEST_HMAC_SECRET);
    session.open("linear").await.expect("open");
    let mut feed = Feed::builder()
        .url(bybit::spec::LINEAR, Environment::Custom { ws: h.ws_url(), rest: h.rest_url() })
        .subscribe(bybit::spec::LINEAR, Channel::Trades, "BTCUSDT")
        .private(session)
        .build()
        .await
        .expect("feed");
    subscribed(&h, &["order", "execution", "position", "wallet"]).await;
    let id = place(&h, "Buy", "0.01").await;
    let (mut trades, mut order) = (0, false);
    let deadline = tokio::time::Instant::now() + WAIT;
    while trades == 0 || !order {
        let ev = tokio::time::timeout_at(deadline, feed.next())
            .await
            .unwrap_or_else(|_| panic!("trades {trades}, order {order}"))
            .expect("feed open");
        match ev.kind {
            Kind::Trade(_) => trades += 1,
            Kind::OrderUpdate(o) if o.order_id == id => order = true,
            _ => {}
        }
    }
    feed.shutdown().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.bybit_private_conns().iter().any(|c| c.open) {
        assert!(tokio::time::Instant::now() < deadline, "the private connection was not closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
