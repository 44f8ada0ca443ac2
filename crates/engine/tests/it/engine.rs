//! The connection engine against the simulator over real sockets on 127.0.0.1,
//! with the shipped Binance spot rules (`ferrofeed_venues::binance`): exact
//! loss accounting through a kill storm, half-open detection, ping duty,
//! retries and giving up, make-before-break rotation, slow consumers, shutdown.
//! Timings are measured and printed, never asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrofeed_engine::{
    BackoffConfig, ConnectSpec, Connection, ConnectionConfig, Event, EventKind, EventReceiver, Missing, Native,
    Overflow, State,
};
use ferrofeed_sim::{KillMode, LoadConfig, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig};
use ferrofeed_venues::binance::{BinanceRules as Binance, Market};

const WAIT: Duration = Duration::from_secs(20);
const LOAD: &str = "loadusdt@trade";
const FIRST_ID: u64 = 1_000_000_000_000;

fn market() -> MarketConfig {
    let mut m = MarketConfig::new(MarketKind::Spot);
    m.symbols.truncate(3);
    m.timing.actions_per_sec = 300.0;
    m
}

async fn start(m: MarketConfig) -> (Sim, MarketHandle) {
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn config(m: &MarketHandle) -> ConnectionConfig {
    // The shipped rules build `/stream?streams=…` from the base.
    let mut c = ConnectionConfig::new(ConnectSpec::new(m.ws_url()));
    c.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..BackoffConfig::default()
    };
    c.seed = Some(7);
    c
}

/// The shipped Binance spot rules.
fn binance() -> Binance {
    Binance::new(Market::Spot)
}

fn connect(_m: &MarketHandle, venue: Binance, cfg: ConnectionConfig, streams: &[&str]) -> (Connection, EventReceiver) {
    Connection::spawn(Native::new(), Arc::new(venue), cfg, streams.iter().map(|s| s.to_string()).collect())
        .expect("valid config")
}

async fn next(rx: &mut EventReceiver) -> Event {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("event in time").expect("connection alive")
}

async fn wait_for(rx: &mut EventReceiver, what: &str, pred: impl Fn(&EventKind) -> bool) -> Event {
    loop {
        let e = next(rx).await;
        if pred(&e.kind) {
            return e;
        }
        assert!(!matches!(e.kind, EventKind::GaveUp { .. }), "gave up while waiting for {what}: {e:?}");
    }
}

fn trade_id(payload: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(payload).expect("JSON");
    v["data"]["t"].as_u64().expect("trade id")
}

/// Loss accounting through a kill storm: every message the simulator produced is
/// either delivered once or counted in a reported gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_storm_loses_nothing_silently_and_delivers_no_duplicates() {
    const N: u64 = 200_000;
    let mut m = market();
    m.load = Some(LoadConfig::new(N, Some(25_000)));
    let (_sim, sim) = start(m).await;
    let (conn, mut rx) = connect(&sim, binance(), config(&sim), &[LOAD]);
    sim.kill_every(Some((Duration::from_secs(2), Duration::from_secs(1))), KillMode::Reset);

    let (mut delivered, mut gap_total, mut reconnects) = (0u64, 0u64, 0u64);
    let mut last: Option<u64> = None;
    let mut killing = true;
    while last != Some(FIRST_ID + N - 1) {
        let e = next(&mut rx).await;
        match e.kind {
            EventKind::Data { stream, payload, .. } if &*stream == LOAD => {
                let id = trade_id(&payload);
                if let Some(l) = last {
                    assert!(id > l, "duplicate or reordered id {id} after {l}");
                }
                delivered += 1;
                last = Some(id);
            }
            EventKind::Gap { stream, from, to, missing } => {
                assert_eq!(stream, LOAD);
                assert_eq!(missing, Missing::Count(to - from + 1));
                assert_eq!(Some(from - 1), last, "gap starts right after the last delivered id");
                gap_total += to - from + 1;
            }
            EventKind::Reconnected => reconnects += 1,
            _ => {}
        }
        // Stop killing near the end so the final id arrives and trailing loss is visible.
        if killing && sim.stream_stats(LOAD).is_some_and(|s| s.produced >= N * 9 / 10) {
            sim.kill_every(None, KillMode::Reset);
            killing = false;
        }
    }
    let produced = sim.stream_stats(LOAD).unwrap().produced;
    println!(
        "kill storm: produced {produced}, delivered {delivered}, in gaps {gap_total}, reconnects {reconnects}, kills {}",
        sim.stats().counters.kills
    );
    assert_eq!(produced, N);
    assert_eq!(delivered + gap_total, produced, "delivered + gaps = produced, exactly");
    assert!(reconnects >= 2, "the storm really killed the connection ({reconnects} reconnects)");
    assert!(conn.close().await);
}

/// A stalled socket (open, silent) is detected by the idle timeout and replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_socket_is_detected_and_replaced() {
    let (_sim, sim) = start(market()).await;
    let idle = Duration::from_millis(800);
    let mut venue = binance();
    venue.idle_timeout = idle;
    let (conn, mut rx) = connect(&sim, venue, config(&sim), &["btcusdt@trade"]);
    wait_for(&mut rx, "connected", |k| *k == EventKind::Connected).await;
    wait_for(&mut rx, "data", |k| matches!(k, EventKind::Data { .. })).await;
    let stalled_at = Instant::now();
    assert_eq!(sim.stall(None, Duration::from_secs(30)), 1);
    let d = wait_for(&mut rx, "disconnect", |k| matches!(k, EventKind::Disconnected { .. })).await;
    let detected = stalled_at.elapsed();
    let EventKind::Disconnected { reason } = d.kind else { unreachable!() };
    assert!(reason.contains("stale"), "{reason}");
    wait_for(&mut rx, "reconnected", |k| *k == EventKind::Reconnected).await;
    // The gap over the stall is reported on the new socket.
    let g = wait_for(&mut rx, "gap", |k| matches!(k, EventKind::Gap { .. })).await;
    assert!(g.epoch > d.epoch);
    println!("half-open: idle timeout {idle:?}, detected after {detected:?}");
    assert!(conn.close().await);
}

/// Ten simulated minutes of server pings (scaled 400×): every ping answered with
/// its own payload, and the server never drops the connection for a missing pong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_ping_is_answered_with_its_payload() {
    let mut m = market();
    m.limits.ping_interval = Duration::from_millis(50); // 20 s / 400
    m.limits.pong_timeout = Duration::from_millis(150); // 60 s / 400
    m.limits.msg_window = Duration::from_micros(2500); // 1 s / 400: pongs count against it
    let (_sim, sim) = start(m).await;
    let (conn, mut rx) = connect(&sim, binance(), config(&sim), &["btcusdt@trade"]);
    wait_for(&mut rx, "connected", |k| *k == EventKind::Connected).await;
    let until = Instant::now() + Duration::from_millis(1500); // 10 min / 400
    while Instant::now() < until {
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            assert!(!matches!(e.kind, EventKind::Disconnected { .. }), "dropped: {e:?}");
        }
    }
    let c = sim.stats().counters;
    println!(
        "ping duty: {} pings, {} matched pongs, {} unmatched, {} timeouts",
        c.pings_sent, c.pongs_matched, c.pongs_unmatched, c.pong_timeouts
    );
    assert!(c.pings_sent >= 10, "{c:?}");
    assert_eq!(c.pong_timeouts, 0);
    assert_eq!(c.pongs_unmatched, 0, "every pong echoes a ping payload");
    assert!(c.pongs_matched + 1 >= c.pings_sent, "at most the last ping is still in flight: {c:?}");
    assert_eq!(sim.connections().len(), 1);
    assert!(conn.close().await);
}

/// With the venue refusing connections, `GaveUp` comes after exactly the
/// configured retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_exactly_the_configured_retries() {
    let (_sim, sim) = start(market()).await;
    sim.refuse_connections(true);
    let mut cfg = config(&sim);
    cfg.backoff.max_attempts = Some(4);
    let (_conn, mut rx) = connect(&sim, binance(), cfg, &["btcusdt@trade"]);
    let mut disconnects = 0;
    let reason = loop {
        match next(&mut rx).await.kind {
            EventKind::Disconnected { .. } => disconnects += 1,
            EventKind::GaveUp { reason } => break reason,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(reason, "max reconnect retries reached");
    assert_eq!(disconnects, 5, "the first attempt and 4 retries each failed");
    assert_eq!(sim.stats().counters.connections_refused, 5);
    assert_eq!(tokio::time::timeout(WAIT, rx.recv()).await.unwrap(), None, "the actor ended");
}

/// Rotation before the venue's lifetime limit: make-before-break, no gap, at
/// most one extra connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_before_the_lifetime_limit_loses_nothing() {
    let mut m = market();
    m.limits.max_lifetime = Duration::from_millis(1500);
    m.load = Some(LoadConfig::new(150_000, Some(30_000)));
    let (_sim, sim) = start(m).await;
    let mut cfg = config(&sim);
    cfg.rotate_after = Some(Duration::from_millis(900));
    let (conn, mut rx) = connect(&sim, binance(), cfg, &[LOAD, "btcusdt@trade"]);
    let watcher = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut most = 0;
            for _ in 0..300 {
                most = most.max(sim.connections().len());
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            most
        })
    };
    let (mut rotations, mut last, mut delivered) = (0, None::<u64>, 0u64);
    let mut epochs = Vec::new();
    while last != Some(FIRST_ID + 149_999) {
        let e = next(&mut rx).await;
        match &e.kind {
            EventKind::Data { stream, payload, .. } if &**stream == LOAD => {
                let id = trade_id(payload);
                assert_eq!(id, last.map_or(FIRST_ID, |l| l + 1), "consecutive across rotations");
                last = Some(id);
                delivered += 1;
            }
            EventKind::Data { .. } => {}
            EventKind::Rotated => {
                rotations += 1;
                epochs.push(e.epoch);
            }
            EventKind::Connected => {}
            other => panic!("rotation must not disconnect or lose data: {other:?}"),
        }
    }
    let most = watcher.await.unwrap();
    println!("rotation: {rotations} rotations, {delivered} delivered, at most {most} sockets open");
    assert!(rotations >= 3, "{rotations}");
    assert!(epochs.windows(2).all(|w| w[1] > w[0]));
    assert!(most <= 2, "at most one extra connection during a rotation");
    assert_eq!(sim.stats().counters.lifetime_closes, 0, "rotated before the venue's limit");
    assert_eq!(conn.state(), State::Active);
    assert!(conn.close().await);
}

/// `serverShutdown` starts a rotation at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_notice_rotates_without_loss() {
    let mut m = market();
    m.timing.shutdown_grace = Duration::from_secs(3);
    let (_sim, sim) = start(m).await;
    let (conn, mut rx) = connect(&sim, binance(), config(&sim), &["btcusdt@trade"]);
    wait_for(&mut rx, "data", |k| matches!(k, EventKind::Data { .. })).await;
    assert_eq!(sim.server_shutdown(), 1);
    loop {
        match next(&mut rx).await.kind {
            EventKind::Rotated => break,
            EventKind::Gap { .. } | EventKind::Disconnected { .. } => panic!("shutdown rotation must be seamless"),
            _ => {}
        }
    }
    assert!(conn.close().await);
}

/// A consumer that stops for 10 s while 50k msgs/s arrive: with drop-oldest the
/// queue stays at its bound and every drop is reported as a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_with_drop_oldest_stays_bounded_and_reports_drops() {
    const N: u64 = 600_000;
    let mut m = market();
    m.load = Some(LoadConfig::new(N, Some(50_000)));
    let (_sim, sim) = start(m).await;
    let mut cfg = config(&sim);
    cfg.queue_capacity = 10_000;
    cfg.overflow = Overflow::DropOldest;
    let (conn, mut rx) = connect(&sim, binance(), cfg, &[LOAD]);
    wait_for(&mut rx, "data", |k| matches!(k, EventKind::Data { .. })).await;
    let mut delivered = 1u64;
    // The consumer stalls until the queue has overflowed well past its bound.
    let deadline = Instant::now() + WAIT;
    while rx.dropped() < 20_000 {
        assert!(Instant::now() < deadline, "the queue never overflowed");
        assert!(rx.len() <= 10_000, "queue bound held: {}", rx.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rx.len() <= 10_000, "queue bound held: {}", rx.len());
    let dropped = rx.dropped();
    assert!(dropped > 0);
    let mut gap_total = 0;
    let mut last = FIRST_ID;
    while last != FIRST_ID + N - 1 {
        match next(&mut rx).await.kind {
            EventKind::Data { payload, .. } => {
                last = trade_id(&payload);
                delivered += 1;
            }
            EventKind::Gap { from, to, missing, .. } => {
                assert_eq!(missing, Missing::Count(to - from + 1));
                gap_total += to - from + 1;
            }
            _ => {}
        }
    }
    println!("slow consumer: dropped {dropped} (reported in gaps: {gap_total}), delivered {delivered}");
    assert_eq!(delivered + gap_total, N);
    assert!(gap_total >= dropped);
    assert!(conn.close().await);
}

/// With the lossless policy the actor stops reading; the venue eventually drops
/// the connection and the loss shows up as a gap, never silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_with_block_policy_reports_the_venues_drop_as_a_gap() {
    const N: u64 = 300_000;
    let mut m = market();
    m.limits.outbound_queue = 64;
    m.load = Some(LoadConfig::new(N, Some(50_000)));
    let (_sim, sim) = start(m).await;
    let mut cfg = config(&sim);
    cfg.queue_capacity = 1_000;
    let (conn, mut rx) = connect(&sim, binance(), cfg, &[LOAD]);
    wait_for(&mut rx, "data", |k| matches!(k, EventKind::Data { .. })).await;
    // The consumer stalls until the venue gives up on the socket it cannot write to.
    let deadline = Instant::now() + WAIT;
    while sim.stats().counters.slow_consumer_resets == 0 {
        assert!(Instant::now() < deadline, "the venue never reset the slow socket");
        assert!(rx.len() <= 1_000);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rx.len() <= 1_000);
    assert_eq!(rx.dropped(), 0, "block never drops locally");
    let (mut delivered, mut gap_total, mut last) = (1u64, 0u64, FIRST_ID);
    while last != FIRST_ID + N - 1 {
        match next(&mut rx).await.kind {
            EventKind::Data { payload, .. } => {
                last = trade_id(&payload);
                delivered += 1;
            }
            EventKind::Gap { from, to, .. } => gap_total += to - from + 1,
            _ => {}
        }
    }
    let resets = sim.stats().counters.slow_consumer_resets;
    println!("block policy: venue resets {resets}, delivered {delivered}, in gaps {gap_total}");
    assert!(resets >= 1);
    assert_eq!(delivered + gap_total, N);
    assert!(conn.close().await);
}

/// Drops, malformed frames and refused subscriptions are reported, and the
/// connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_become_events_and_the_connection_goes_on() {
    let (_sim, sim) = start(market()).await;
    let (conn, mut rx) = connect(&sim, binance(), config(&sim), &["btcusdt@trade"]);
    wait_for(&mut rx, "data", |k| matches!(k, EventKind::Data { .. })).await;
    sim.drop_next("btcusdt@trade", 3);
    let g = wait_for(&mut rx, "gap", |k| matches!(k, EventKind::Gap { .. })).await;
    assert!(matches!(g.kind, EventKind::Gap { missing: Missing::Count(3), .. }), "{g:?}");
    sim.send_malformed(None);
    let e = wait_for(&mut rx, "error", |k| matches!(k, EventKind::Error { .. })).await;
    let EventKind::Error { raw, .. } = e.kind else { unreachable!() };
    assert!(raw.starts_with("{\"e\":\"trade\""), "the payload is kept: {raw}");
    conn.subscribe(vec!["BTCUSDT@trade".into()]).await.unwrap();
    let f = wait_for(&mut rx, "subscription failed", |k| matches!(k, EventKind::SubscriptionFailed { .. })).await;
    assert_eq!(
        f.kind,
        EventKind::SubscriptionFailed {
            stream: "BTCUSDT@trade".into(),
            code: 2,
            msg: "Invalid request: invalid stream".into()
        }
    );
    wait_for(&mut rx, "more data", |k| matches!(k, EventKind::Data { .. })).await;
    assert_eq!(sim.connections().len(), 1, "same socket throughout");
    assert!(conn.close().await);
}

/// Closing sends close code 1000 and ends the task promptly; dropping the handle
/// closes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_drop_end_the_connection_with_code_1000() {
    let (_sim, sim) = start(market()).await;
    let (conn, mut rx) = connect(&sim, binance(), config(&sim), &["btcusdt@trade"]);
    wait_for(&mut rx, "connected", |k| *k == EventKind::Connected).await;
    let t = Instant::now();
    assert!(conn.close().await, "joined without abort");
    println!("close took {:?}", t.elapsed());
    while let Ok(Some(_)) = tokio::time::timeout(WAIT, rx.recv()).await {}
    let (conn2, mut rx2) = connect(&sim, binance(), config(&sim), &["btcusdt@trade"]);
    wait_for(&mut rx2, "connected", |k| *k == EventKind::Connected).await;
    drop(conn2);
    while let Ok(Some(_)) = tokio::time::timeout(WAIT, rx2.recv()).await {}
    // The simulator records a close once its side of the socket has ended.
    let deadline = Instant::now() + WAIT;
    while sim.stats().counters.client_close_codes.get(&1000) != Some(&2) || !sim.connections().is_empty() {
        assert!(Instant::now() < deadline, "{:?}", sim.stats().counters);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = sim.stats().counters;
    assert_eq!(c.client_close_codes.get(&1000), Some(&2), "{c:?}");
    assert_eq!(sim.connections().len(), 0);
}

/// Subscriptions survive reconnects: after a kill, the same set is restored,
/// paced under the venue's message limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_restored_after_a_reconnect_within_the_message_limit() {
    let (_sim, sim) = start(market()).await;
    let mut venue = binance();
    venue.max_streams_per_request = 2;
    // Every stream by SUBSCRIBE message (none in the URL), so the pacing shows.
    venue.max_url_bytes = 0;
    let streams = [
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "ethusdt@trade",
        "ethusdt@depth@100ms",
        "bnbusdt@bookTicker",
        "btcusdt@depth",
    ];
    let (conn, mut rx) = connect(&sim, venue, config(&sim), &streams);
    wait_for(&mut rx, "connected", |k| *k == EventKind::Connected).await;
    conn.unsubscribe(vec!["btcusdt@depth".into()]).await.unwrap();
    for _ in 0..3 {
        sim.kill_all(KillMode::Close);
        wait_for(&mut rx, "reconnected", |k| *k == EventKind::Reconnected).await;
    }
    let subs = &sim.connections()[0].subscriptions;
    let mut want: Vec<&str> = streams[..5].to_vec();
    want.sort();
    let mut got: Vec<&str> = subs.iter().map(String::as_str).collect();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(sim.stats().counters.rate_limit_closes, 0);
    assert!(conn.close().await);
}

/// A minimal HTTP CONNECT proxy on loopback; counts tunnels.
async fn http_proxy() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    head.push(c.read_u8().await.unwrap());
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap().to_string();
                let target = line.split_whitespace().nth(1).unwrap().to_string();
                assert!(line.starts_with("CONNECT "), "{line}");
                let mut up = tokio::net::TcpStream::connect(target).await.unwrap();
                c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
            });
        }
    });
    (url, n)
}

/// A minimal SOCKS5 proxy (no authentication, CONNECT only); counts tunnels.
async fn socks5_proxy() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("socks5://{}", l.local_addr().unwrap());
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut hello = [0u8; 2];
                c.read_exact(&mut hello).await.unwrap();
                let mut methods = vec![0u8; hello[1] as usize];
                c.read_exact(&mut methods).await.unwrap();
                c.write_all(&[5, 0]).await.unwrap();
                let mut req = [0u8; 4];
                c.read_exact(&mut req).await.unwrap();
                let host = match req[3] {
                    1 => {
                        let mut a = [0u8; 4];
                        c.read_exact(&mut a).await.unwrap();
                        std::net::Ipv4Addr::from(a).to_string()
                    }
                    3 => {
                        let len = c.read_u8().await.unwrap();
                        let mut name = vec![0u8; len as usize];
                        c.read_exact(&mut name).await.unwrap();
                        String::from_utf8(name).unwrap()
                    }
                    other => panic!("address type {other}"),
                };
                let port = c.read_u16().await.unwrap();
                let mut up = tokio::net::TcpStream::connect((host.as_str(), port)).await.unwrap();
                c.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
            });
        }
    });
    (url, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_through_http_connect_and_socks5_proxies() {
    let (_sim, sim) = start(market()).await;
    for (proxy, tunnels) in [http_proxy().await, socks5_proxy().await] {
        let mut cfg = config(&sim);
        cfg.spec.proxy = Some(proxy.clone());
        cfg.spec.headers.push(("User-Agent".into(), "ferrofeed-test".into()));
        let (conn, mut rx) = connect(&sim, binance(), cfg, &["btcusdt@trade"]);
        wait_for(&mut rx, "data through the proxy", |k| matches!(k, EventKind::Data { .. })).await;
        assert_eq!(tunnels.load(std::sync::atomic::Ordering::SeqCst), 1, "{proxy}");
        assert!(conn.close().await);
    }
}

/// Many connections reconnecting at once share the venue's attempt budget and
/// never hit the venue's connection-rate limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_attempt_budget_keeps_a_reconnect_storm_under_the_venue_limit() {
    let mut m = market();
    m.limits.max_conn_attempts = 12;
    m.limits.conn_attempt_window = Duration::from_secs(2);
    let (_sim, sim) = start(m).await;
    let budget = ferrofeed_engine::AttemptBudget::new(12, Duration::from_millis(2100));
    let mut conns = Vec::new();
    for _ in 0..8 {
        let mut cfg = config(&sim);
        cfg.attempts = Some(budget.clone());
        conns.push(connect(&sim, binance(), cfg, &["btcusdt@trade"]));
    }
    for (_, rx) in conns.iter_mut() {
        wait_for(rx, "connected", |k| *k == EventKind::Connected).await;
    }
    for _ in 0..2 {
        sim.kill_all(KillMode::Reset);
        for (_, rx) in conns.iter_mut() {
            wait_for(rx, "reconnected", |k| *k == EventKind::Reconnected).await;
        }
    }
    let c = sim.stats().counters;
    assert_eq!(c.connection_attempts_rejected, 0, "{c:?}");
    assert_eq!(c.connections_accepted, 24);
    for (conn, _) in conns {
        assert!(conn.close().await);
    }
}

/// On tokio's paused clock: the reconnect delays to an unreachable venue follow
/// the backoff policy, measured in virtual time.
#[tokio::test(start_paused = true)]
async fn backoff_delays_on_the_paused_clock_obey_the_policy() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/stream", l.local_addr().unwrap());
    drop(l);
    let mut cfg = ConnectionConfig::new(ConnectSpec::new(url));
    cfg.seed = Some(3);
    cfg.backoff.max_attempts = Some(9);
    let policy = cfg.backoff.clone();
    let (_conn, mut rx) =
        Connection::spawn(Native::new(), Arc::new(binance()), cfg, vec!["btcusdt@trade".into()]).unwrap();
    let mut at = Vec::new();
    loop {
        match rx.recv().await.expect("alive").kind {
            EventKind::Disconnected { .. } => at.push(tokio::time::Instant::now()),
            EventKind::GaveUp { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(at.len(), 10);
    for (k, w) in at.windows(2).enumerate() {
        let d = w[1] - w[0];
        if k == 0 {
            assert!(d <= policy.initial.mul_f64(policy.jitter) + Duration::from_millis(50), "first retry: {d:?}");
            continue;
        }
        let cap = policy.capped(k as u32 - 1);
        let low = cap.mul_f64(1.0 - policy.jitter);
        assert!(
            d + Duration::from_millis(50) >= low && d <= cap + Duration::from_millis(50),
            "retry {k}: {d:?} not in [{low:?}, {cap:?}]"
        );
    }
}

/// Streams without sequence numbers rotate too (taken from the old socket until
/// the new one delivers), and each switch says that frames may be lost or
/// repeated there: one gap of unknown extent per unsequenced stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsequenced_streams_rotate_with_an_unknown_gap() {
    let (_sim, sim) = start(market()).await;
    let mut cfg = config(&sim);
    cfg.rotate_after = Some(Duration::from_millis(400));
    let (conn, mut rx) = connect(&sim, binance(), cfg, &["btcusdt@bookTicker"]);
    let mut rotations = 0;
    let mut gaps = 0;
    let mut most = 0;
    while rotations < 3 || gaps < rotations {
        match next(&mut rx).await.kind {
            EventKind::Rotated => {
                assert_eq!(gaps, rotations, "one gap per rotation");
                rotations += 1;
            }
            EventKind::Gap { stream, missing: Missing::Unknown, .. } if stream == "btcusdt@bookTicker" => gaps += 1,
            EventKind::Data { .. } | EventKind::Connected => {}
            other => panic!("{other:?}"),
        }
        most = most.max(sim.connections().len());
    }
    assert_eq!(gaps, rotations);
    assert!(most <= 2);
    assert!(conn.close().await);
}

/// A subscribe request the venue never answers does not leave the connection
/// stuck: it is reported and the socket becomes active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_subscribe_is_reported_and_does_not_block_activation() {
    let (_sim, sim) = start(market()).await;
    sim.set_ack_delay(Duration::from_secs(60));
    let mut cfg = config(&sim);
    cfg.ack_timeout = Duration::from_millis(300);
    // Subscribed by message (a stream in the URL needs no answer).
    let mut venue = binance();
    venue.max_url_bytes = 0;
    let (conn, mut rx) = connect(&sim, venue, cfg, &["btcusdt@trade"]);
    let mut saw_error = false;
    loop {
        match next(&mut rx).await.kind {
            EventKind::Error { msg, .. } => {
                assert!(msg.contains("no reply to request"), "{msg}");
                saw_error = true;
            }
            EventKind::Connected => break,
            _ => {}
        }
    }
    assert!(saw_error, "the missing ack is reported before the connection counts as up");
    assert!(conn.close().await);
}
