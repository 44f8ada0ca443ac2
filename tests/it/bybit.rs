//! The ferrofeed `Client` against the simulator's Bybit v5 endpoints:
//! trades decode with consecutive ids, a killed connection reconnects and
//! resubscribes, and the local book built from the client's order-book frames
//! (Bybit decode + `BookSync` with the Bybit sequencing) equals the
//! simulator's truth at the same `u`. Then the Binance engine and pool tests'
//! counterparts: a kill storm with exact loss accounting, the subscription set
//! restored after repeated reconnects, 60 spot topics under the 10-args limit
//! with none refused, and books under drops, a venue restart and a kill.
//! Timings are never asserted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrofeed::book::{BookSync, SyncConfig, SyncEvent, VecSide};
use ferrofeed::client::{Client, ClientConfig, Environment};
use ferrofeed::engine::{BackoffConfig, Event, EventKind, EventReceiver, Missing};
use ferrofeed::model::event::{EventKind as Kind, Level};
use ferrofeed::venues::bybit::Category;
use ferrofeed::venues::bybit::{book, normalize};
use ferrofeed_sim::{BybitCategory, KillMode, MarketConfig, MarketHandle, Sim, SimConfig};

const SYMBOL: &str = "BTCUSDT";
const BOOK: &str = "orderbook.50.BTCUSDT";
const TRADES: &str = "publicTrade.BTCUSDT";

async fn start() -> (Sim, MarketHandle) {
    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.truncate(2);
    m.timing.actions_per_sec = 200.0;
    m.book_history = 50_000;
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn strings(levels: &[Level]) -> Vec<[String; 2]> {
    levels.iter().map(|l| [l.price.to_string(), l.qty.to_string()]).collect()
}

/// What the run saw in one phase (before or after the kill).
#[derive(Debug, Default)]
struct Seen {
    trades: usize,
    compared: usize,
}

#[tokio::test]
async fn client_trades_reconnect_and_book_match_the_simulator() {
    let (sim, h) = start().await;
    let cfg = ClientConfig {
        environment: Environment::Custom { ws: h.ws_url(), rest: h.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(5),
        ..ClientConfig::default()
    };
    let (mut client, mut rx) = Client::new(cfg);
    client.subscribe(Category::Linear, &[TRADES.to_string(), BOOK.to_string()]).await.expect("subscribe");

    let mut sync: BookSync<VecSide> = BookSync::new(book::sequencing(), SyncConfig::default());
    let mut tickers = normalize::Tickers::new();
    let mut out = Vec::new();
    let (mut connected, mut reconnected, mut need_snapshot) = (0, 0, 0);
    let mut phases = [Seen::default(), Seen::default()];
    let mut phase = 0;
    // The last trade id per socket generation: ids continue within one.
    let mut last_trade: Option<(u64, u64, u64)> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if phases[1].trades >= 10 && phases[1].compared >= 10 {
            break;
        }
        if phase == 0 && phases[0].trades >= 20 && phases[0].compared >= 20 {
            assert!(h.kill_all(KillMode::Reset) >= 1, "a connection to kill");
            phase = 1;
        }
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("run incomplete: {phases:?}, connected {connected}, reconnected {reconnected}"))
            .expect("event stream open");
        match ev.kind {
            EventKind::Connected => connected += 1,
            EventKind::Reconnected => reconnected += 1,
            EventKind::Data { stream, payload, .. } => {
                assert_eq!(client.market_of_conn(ev.conn), Some(Category::Linear.into()));
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
                let events = normalize::decode(Category::Linear, &payload, now, &mut tickers)
                    .unwrap_or_else(|e| panic!("decode {stream}: {e}"));
                for e in events {
                    match e.kind {
                        Kind::Trade(t) => {
                            assert_eq!(e.symbol.as_deref(), Some(SYMBOL));
                            let id: u64 = t.trade_id.parse().expect("numeric trade id");
                            if let Some((conn, epoch, prev)) = last_trade
                                && (conn, epoch) == (ev.conn, ev.epoch)
                            {
                                assert_eq!(id, prev + 1, "consecutive trade ids on one socket");
                            }
                            last_trade = Some((ev.conn, ev.epoch, id));
                            // Only count trades after the reconnect in phase 1.
                            if phase == 0 || reconnected > 0 {
                                phases[phase].trades += 1;
                            }
                        }
                        Kind::BookSnapshot(s) => sync.on_stream_snapshot(s, &mut out),
                        Kind::BookDelta(d) => sync.on_delta(d, &mut out),
                        other => panic!("unexpected event on {stream}: {other:?}"),
                    }
                }
                for s in out.drain(..) {
                    if s == SyncEvent::NeedSnapshot {
                        need_snapshot += 1;
                    }
                }
                if &*stream == BOOK
                    && let Some(b) = sync.book()
                {
                    let u = b.last_update_id();
                    let truth = h.book_at(SYMBOL, u, 20).unwrap_or_else(|| panic!("no truth at u={u}"));
                    assert_eq!(strings(&b.bids(20)), truth.bids, "bids at u={u}");
                    assert_eq!(strings(&b.asks(20)), truth.asks, "asks at u={u}");
                    if phase == 0 || reconnected > 0 {
                        phases[phase].compared += 1;
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(connected, 1, "one connection");
    assert!(reconnected >= 1, "the killed connection came back");
    assert_eq!(need_snapshot, 0, "the stream never lost sync");
    let subs: Vec<String> = h.connections().into_iter().flat_map(|c| c.subscriptions).collect();
    assert!(subs.contains(&TRADES.to_string()) && subs.contains(&BOOK.to_string()), "resubscribed: {subs:?}");
    client.disconnect_all().await;
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------
// The Binance engine and pool tests, for Bybit: kill storm with loss
// accounting, resubscribe after reconnects, spot's 10-args-per-request limit,
// books under chaos.

fn config(h: &MarketHandle) -> ClientConfig {
    ClientConfig {
        environment: Environment::Custom { ws: h.ws_url(), rest: h.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(5),
        ..ClientConfig::default()
    }
}

async fn start_market(
    category: BybitCategory,
    symbols: usize,
    tune: impl FnOnce(&mut MarketConfig),
) -> (Sim, MarketHandle) {
    let mut m = MarketConfig::bybit(category);
    m.symbols.truncate(symbols);
    tune(&mut m);
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn symbols(h: &MarketHandle) -> Vec<String> {
    h.config().symbols.iter().map(|s| s.name.clone()).collect()
}

/// What the simulator holds: topic → number of connections holding it.
fn server_side(h: &MarketHandle) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in h.connections() {
        for s in c.subscriptions {
            *m.entry(s).or_default() += 1;
        }
    }
    m
}

/// The next event, or `None` after a short wait (so callers can poll state).
async fn poll(rx: &mut EventReceiver) -> Option<Event> {
    match tokio::time::timeout(Duration::from_millis(20), rx.recv()).await {
        Ok(ev) => Some(ev.expect("event stream open")),
        Err(_) => None,
    }
}

fn trade_id(payload: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(payload).expect("JSON");
    v["data"][0]["i"].as_str().expect("trade id").parse().expect("numeric trade id")
}

/// One trade topic's accounting.
#[derive(Debug, Default)]
struct TradeLog {
    first: Option<u64>,
    /// The last delivered id, the connection it came on and that
    /// connection's disconnect count at the time.
    last: Option<(u64, u64, u64)>,
    /// Delivered ids up to the end of the accounting range.
    delivered: u64,
    /// Lost ids inside a reported `Gap` of the topic.
    in_gaps: u64,
    /// Lost ids covered by a `Gap` of unknown extent on the topic (the
    /// engine reports one for every unsequenced stream after a reconnect).
    across_reconnects: u64,
    /// Unknown-extent gaps seen on the topic so far.
    unknown_gaps: u64,
    unreported: Vec<(u64, u64)>,
    gaps: Vec<(u64, u64)>,
}

impl TradeLog {
    /// Accounts delivered id `id` on `conn` (disconnect count `disc`); ids up
    /// to `end` count.
    fn on_trade(&mut self, id: u64, _conn: u64, _disc: &HashMap<u64, u64>, end: u64) {
        let now = self.unknown_gaps;
        if let Some((prev, _, pgaps)) = self.last {
            assert!(id > prev, "duplicate or reordered trade id {id} after {prev}");
            let (from, to) = (prev + 1, (id - 1).min(end));
            if from <= to {
                let n = to - from + 1;
                if self.gaps.iter().any(|(a, b)| *a <= from && to <= *b) {
                    self.in_gaps += n;
                } else if self.unknown_gaps > pgaps {
                    self.across_reconnects += n;
                } else {
                    self.unreported.push((from, to));
                }
            }
        } else {
            self.first = Some(id);
        }
        if id <= end {
            self.delivered += 1;
        }
        self.last = Some((id, 0, now));
    }
}

/// Loss accounting through a kill storm. Bybit trades carry no sequence the
/// engine can track (linear trade ids are UUIDs on the venue), so after every
/// reconnect the engine reports a `Gap` of unknown extent on each such topic;
/// the simulator's consecutive ids check that every trade is delivered once or
/// lost where such a gap was reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_storm_every_trade_is_delivered_or_lost_in_a_reported_outage() {
    let (_sim, h) = start_market(BybitCategory::Linear, 6, |m| m.timing.actions_per_sec = 150.0).await;
    let topics: Vec<String> = symbols(&h).iter().map(|s| format!("publicTrade.{s}")).collect();
    let (mut client, mut rx) = Client::new(ClientConfig { max_streams_per_conn: Some(2), ..config(&h) });
    client.subscribe(Category::Linear, &topics).await.expect("subscribe");

    let mut logs: BTreeMap<String, TradeLog> = topics.iter().map(|t| (t.clone(), TradeLog::default())).collect();
    let mut disc: HashMap<u64, u64> = HashMap::new();
    let mut ends: Option<BTreeMap<String, u64>> = None;
    let (mut reconnects, mut storm) = (0u64, None::<Instant>);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(Instant::now() < deadline, "run incomplete: reconnects {reconnects}, {logs:?}");
        if storm.is_none() && logs.values().all(|l| l.first.is_some()) {
            h.kill_every(Some((Duration::from_millis(800), Duration::from_millis(400))), KillMode::Reset);
            storm = Some(Instant::now());
        }
        // Storm for a while, then stop and fix the end of the accounting range.
        if ends.is_none() && storm.is_some_and(|t| t.elapsed() > Duration::from_secs(6)) && reconnects >= 6 {
            h.kill_every(None, KillMode::Reset);
            let st = h.stats();
            ends = Some(topics.iter().map(|t| (t.clone(), st.streams[t].last_id.expect("trades produced"))).collect());
        }
        if let Some(ends) = &ends
            && logs.iter().all(|(t, l)| l.last.is_some_and(|(id, ..)| id >= ends[t]))
        {
            break;
        }
        let Some(ev) = poll(&mut rx).await else { continue };
        match ev.kind {
            EventKind::Data { stream, payload, .. } => {
                let end = ends.as_ref().map_or(u64::MAX, |e| e[&*stream]);
                logs.get_mut(&*stream).expect("subscribed topic").on_trade(trade_id(&payload), ev.conn, &disc, end);
            }
            EventKind::Gap { stream, from, to, missing } => {
                let log = logs.get_mut(&stream).expect("topic");
                match missing {
                    Missing::Unknown => log.unknown_gaps += 1,
                    Missing::Count(_) => log.gaps.push((from, to)),
                }
            }
            EventKind::Disconnected { .. } => *disc.entry(ev.conn).or_default() += 1,
            EventKind::Reconnected => reconnects += 1,
            EventKind::SubscriptionFailed { stream, msg, .. } => panic!("{stream} refused: {msg}"),
            _ => {}
        }
    }
    let ends = ends.expect("range fixed");
    let st = h.stats();
    let (mut delivered, mut in_gaps, mut across, mut unreported) = (0, 0, 0, 0);
    for (t, l) in &logs {
        let truth = &st.streams[t];
        let first = truth.first_id.expect("first id");
        assert_eq!(l.first, Some(first), "{t}: the first trade is the first produced");
        let total = ends[t] - first + 1;
        assert!(truth.produced >= total, "{t}: trade ids are consecutive in the simulator");
        assert_eq!(l.delivered + l.in_gaps + l.across_reconnects, total, "{t}: exact accounting: {l:?}");
        delivered += l.delivered;
        in_gaps += l.in_gaps;
        across += l.across_reconnects;
        unreported += l.unreported.iter().map(|(a, b)| b - a + 1).sum::<u64>();
        assert!(l.unreported.is_empty(), "{t}: unreported losses {:?}", l.unreported);
    }
    println!(
        "bybit kill storm: {} topics, delivered {delivered}, in gaps {in_gaps}, lost across reported reconnects {across}, \
         unreported {unreported}; reconnects {reconnects}, kills {}",
        topics.len(),
        st.counters.kills
    );
    assert!(across > 0 || in_gaps > 0, "the storm lost something to account for");
    client.disconnect_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_restores_the_requested_set_after_every_reconnect() {
    let (_sim, h) = start_market(BybitCategory::Linear, 4, |m| m.timing.actions_per_sec = 100.0).await;
    let syms = symbols(&h);
    let mut want: BTreeSet<String> = BTreeSet::new();
    for s in &syms {
        for k in ["publicTrade", "orderbook.1", "orderbook.50", "tickers"] {
            want.insert(format!("{k}.{s}"));
        }
    }
    let (mut client, mut rx) = Client::new(ClientConfig { max_streams_per_conn: Some(5), ..config(&h) });
    let all: Vec<String> = want.iter().cloned().collect();
    client.subscribe(Category::Linear, &all).await.expect("subscribe");
    // An extra topic, and a second reference to one of the set: both dropped
    // again, the set is what remains.
    let extra = vec![format!("orderbook.200.{}", syms[0])];
    let twice = vec![format!("publicTrade.{}", syms[1])];
    client.subscribe(Category::Linear, &extra).await.expect("subscribe");
    client.subscribe(Category::Linear, &twice).await.expect("subscribe");
    client.unsubscribe(Category::Linear, &extra).await.expect("unsubscribe");
    client.unsubscribe(Category::Linear, &twice).await.expect("unsubscribe");
    let conns = client.active_shards();
    assert_eq!(conns, 4, "16 topics at 5 per connection: {:?}", client.assignment());

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reconnected = 0;
    let mut flowing: BTreeSet<String> = BTreeSet::new();
    let pump = async |rx: &mut EventReceiver, reconnected: &mut usize, flowing: &mut BTreeSet<String>| {
        if let Some(ev) = poll(rx).await {
            match ev.kind {
                EventKind::Reconnected => *reconnected += 1,
                EventKind::Data { stream, .. } => {
                    flowing.insert(stream.to_string());
                }
                EventKind::SubscriptionFailed { stream, msg, .. } => panic!("{stream} refused: {msg}"),
                _ => {}
            }
        }
    };
    // Settle first: the set is held before any kill.
    while !(client.is_settled() && server_side(&h).keys().cloned().collect::<BTreeSet<_>>() == want) {
        assert!(Instant::now() < deadline, "initial subscriptions did not settle: {:?}", server_side(&h));
        pump(&mut rx, &mut reconnected, &mut flowing).await;
    }
    const ROUNDS: usize = 3;
    for round in 1..=ROUNDS {
        let before: BTreeSet<u64> = h.connections().iter().map(|c| c.id).collect();
        assert_eq!(h.kill_all(KillMode::Reset), conns);
        loop {
            let now: Vec<_> = h.connections();
            let fresh = now.len() == conns && now.iter().all(|c| !before.contains(&c.id));
            if fresh && reconnected >= round * conns && client.is_settled() {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: not recovered ({reconnected} reconnects)");
            pump(&mut rx, &mut reconnected, &mut flowing).await;
        }
    }
    let subs: BTreeSet<String> = client
        .subscriptions()
        .into_iter()
        .map(|(c, t)| {
            assert_eq!(c, Category::Linear.into());
            t
        })
        .collect();
    assert_eq!(subs, want, "client's set after {ROUNDS} reconnects");
    let held = server_side(&h);
    assert_eq!(held.keys().cloned().collect::<BTreeSet<_>>(), want, "simulator's set after {ROUNDS} reconnects");
    assert!(held.values().all(|n| *n == 1), "each topic on one connection: {held:?}");
    // Data flows on every topic on the new sockets.
    flowing.clear();
    while flowing != want {
        assert!(Instant::now() < deadline, "no data after the reconnects on {:?}", want.difference(&flowing));
        pump(&mut rx, &mut reconnected, &mut flowing).await;
        assert!(flowing.is_subset(&want), "data on an unsubscribed topic: {flowing:?}");
    }
    assert_eq!(reconnected, ROUNDS * conns, "one reconnect per connection per kill");
    println!("bybit resubscribe: {} topics on {conns} connections restored after {ROUNDS} kills", want.len());
    client.disconnect_all().await;
}

/// Spot takes at most 10 args per subscribe request (`args size >10`
/// otherwise): 60 topics at once go out in requests of 10, none refused.
async fn sixty_spot_topics(max_streams_per_conn: Option<usize>, expect_conns: usize) {
    let (_sim, h) = start_market(BybitCategory::Spot, 12, |m| m.timing.actions_per_sec = 50.0).await;
    let topics: Vec<String> = symbols(&h)
        .iter()
        .flat_map(|s| {
            ["publicTrade", "orderbook.1", "orderbook.50", "orderbook.200", "tickers"].map(|k| format!("{k}.{s}"))
        })
        .collect();
    assert_eq!(topics.len(), 60);
    let (mut client, mut rx) = Client::new(ClientConfig { max_streams_per_conn, ..config(&h) });
    client.subscribe(Category::Spot, &topics).await.expect("subscribe");
    let want: BTreeSet<String> = topics.iter().cloned().collect();
    let mut flowing: BTreeSet<String> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while flowing != want || !client.is_settled() {
        assert!(Instant::now() < deadline, "no data on {:?}", want.difference(&flowing));
        let Some(ev) = poll(&mut rx).await else { continue };
        match ev.kind {
            EventKind::Data { stream, .. } => {
                assert!(want.contains(&*stream), "data on {stream}");
                flowing.insert(stream.to_string());
            }
            EventKind::SubscriptionFailed { stream, code, msg } => panic!("{stream} refused: {code} {msg}"),
            EventKind::Error { msg, raw } => panic!("{msg}: {raw}"),
            _ => {}
        }
    }
    assert_eq!(client.active_shards(), expect_conns, "{:?}", client.assignment());
    let held = server_side(&h);
    assert_eq!(held.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(held.values().all(|n| *n == 1), "each topic on one connection: {held:?}");
    let c = h.stats().counters;
    assert_eq!(c.errors_sent, 0, "the simulator refused a request (args size >10?)");
    let requests: usize =
        client.assignment().iter().flat_map(|(_, shards)| shards.iter().map(|s| s.len().div_ceil(10))).sum();
    assert!(c.control_messages as usize >= requests, "{} control messages, {requests} requests", c.control_messages);
    println!(
        "bybit spot: 60 topics over {expect_conns} connections in {} requests of at most 10, {} acks, 0 errors",
        requests, c.acks_sent
    );
    client.disconnect_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_spot_topics_at_once_go_out_ten_per_request_and_none_is_refused() {
    sixty_spot_topics(None, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_spot_topics_sharded_over_connections_none_refused() {
    sixty_spot_topics(Some(25), 3).await;
}

/// The 21,000-character budget per public connection: 990 topics of 23-24
/// characters (23,430 in all) fit one connection by count (the client's cap
/// is 1000) but not by characters, so the pool opens a second connection;
/// the simulator enforces the budget and refuses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_sharded_by_characters_and_none_is_refused() {
    let (_sim, h) = start_market(BybitCategory::Linear, 0, |m| {
        m.symbols = ferrofeed_sim::SymbolSpec::synthetic(330);
        m.timing.actions_per_sec = 20.0;
    })
    .await;
    let topics: Vec<String> = symbols(&h)
        .iter()
        .flat_map(|s| ["orderbook.1000", "orderbook.200", "allLiquidation"].map(|k| format!("{k}.{s}")))
        .collect();
    let chars: usize = topics.iter().map(|t| t.chars().count()).sum();
    assert_eq!((topics.len(), chars), (990, 23_430));
    let (mut client, mut rx) = Client::new(config(&h));
    client.subscribe(Category::Linear, &topics).await.expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.is_settled() {
        assert!(Instant::now() < deadline, "not settled: {:?}", client.snapshots());
        let Some(ev) = poll(&mut rx).await else { continue };
        match ev.kind {
            EventKind::SubscriptionFailed { stream, code, msg } => panic!("{stream} refused: {code} {msg}"),
            EventKind::Error { msg, raw } => panic!("{msg}: {raw}"),
            _ => {}
        }
    }
    let assignment = client.assignment();
    let shards = &assignment[0].1;
    let per_conn: Vec<usize> = shards.iter().map(|s| s.iter().map(|t| t.chars().count()).sum()).collect();
    assert_eq!(shards.len(), 2, "{per_conn:?}");
    assert!(per_conn.iter().all(|c| *c <= 21_000), "{per_conn:?}");
    let held = server_side(&h);
    assert_eq!(held.len(), topics.len());
    assert!(held.values().all(|n| *n == 1), "each topic on one connection");
    let server_chars: Vec<usize> =
        h.connections().iter().map(|c| c.subscriptions.iter().map(|t| t.chars().count()).sum()).collect();
    assert!(server_chars.iter().all(|c| *c <= 21_000), "{server_chars:?}");
    let c = h.stats().counters;
    assert_eq!((c.args_limit_refusals, c.errors_sent), (0, 0));
    println!("bybit characters: 990 topics, {chars} characters over 2 connections {per_conn:?}, 0 refused");
    client.disconnect_all().await;
}

/// One order-book topic's local book and what happened to it.
struct Local {
    topic: String,
    sync: BookSync<VecSide>,
    /// The `u` of the last message of the topic processed.
    last_u: u64,
    checked: u64,
    resubscribes: u64,
    restarts: u64,
    engine_gaps: u64,
}

/// Books under chaos: order-book messages dropped at random, a venue restart
/// (`u` back to 1) and a kill. A lost delta is answered by resubscribing the
/// topic (the venue then sends a snapshot); every book published is compared
/// with the simulator's book at the same `u`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_under_chaos_always_equal_the_true_book() {
    let (_sim, h) = start_market(BybitCategory::Linear, 2, |m| {
        m.timing.actions_per_sec = 300.0;
        m.book_history = 20_000;
    })
    .await;
    let syms = symbols(&h);
    let mut books: BTreeMap<String, Local> = syms
        .iter()
        .map(|s| {
            let topic = format!("orderbook.50.{s}");
            let sync = BookSync::new(book::sequencing(), SyncConfig::default());
            let l = Local { topic, sync, last_u: 0, checked: 0, resubscribes: 0, restarts: 0, engine_gaps: 0 };
            (s.clone(), l)
        })
        .collect();
    let topics: Vec<String> = books.values().map(|l| l.topic.clone()).collect();
    const P: f64 = 0.02;
    for t in &topics {
        h.drop_probability(t, P);
    }
    let (mut client, mut rx) = Client::new(config(&h));
    client.subscribe(Category::Linear, &topics).await.expect("subscribe");

    let mut tickers = normalize::Tickers::new();
    let mut out = Vec::new();
    let (mut published_unsynced, mut reconnects, mut kills) = (0u64, 0u64, 0u64);
    // 0: drops; 1: catching up before the restart; 2: restarted, waiting for
    // the u = 1 snapshots; 3: drops again, then the kill; 4: after the kill;
    // 5: drops stopped, waiting for a message sent after.
    let mut phase = 0;
    let mut stop_drops: Vec<Option<u64>> = Vec::new();
    let mut mark = 0u64;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let checked: u64 = books.values().map(|l| l.checked).sum();
        let all_synced = books.values().all(|l| l.sync.book().is_some());
        match phase {
            0 if books.values().all(|l| l.resubscribes >= 2) && checked >= 300 => {
                for t in &topics {
                    h.drop_probability(t, 0.0);
                }
                stop_drops = books.values().map(|l| h.stream_stats(&l.topic).and_then(|s| s.last_id)).collect();
                phase = 5;
            }
            // A message sent after the drops stopped has arrived on every
            // topic, so a drop just before is seen and repaired: freeze.
            5 if all_synced && books.values().zip(&stop_drops).all(|(l, u)| Some(l.last_u) > *u) => {
                h.pause_market(true);
                phase = 1;
            }
            // Paused: once the client holds the last message of every topic,
            // restart the venue's books (so no `u` from before is looked up
            // in the truth after the restart clears it).
            1 if all_synced
                && books.values().all(|l| h.stream_stats(&l.topic).and_then(|s| s.last_id) == Some(l.last_u)) =>
            {
                assert_eq!(h.bybit_restart(None), topics.len());
                h.pause_market(false);
                phase = 2;
            }
            2 if books.values().all(|l| l.restarts >= 1) && all_synced => {
                for t in &topics {
                    h.drop_probability(t, P);
                }
                mark = checked;
                phase = 3;
            }
            3 if checked >= mark + 200 && all_synced => {
                assert_eq!(h.kill_all(KillMode::Reset), 1);
                kills += 1;
                mark = checked;
                phase = 4;
            }
            4 if reconnects >= 1 && checked >= mark + 200 => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "stuck in phase {phase}: checked {checked}");
        let Some(ev) = poll(&mut rx).await else { continue };
        let payload = match ev.kind {
            EventKind::Data { payload, .. } => payload,
            EventKind::Gap { stream, .. } => {
                books.values_mut().find(|l| l.topic == stream).expect("book topic").engine_gaps += 1;
                continue;
            }
            EventKind::Reconnected => {
                reconnects += 1;
                continue;
            }
            EventKind::SubscriptionFailed { stream, msg, .. } => panic!("{stream} refused: {msg}"),
            _ => continue,
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
        for e in normalize::decode(Category::Linear, &payload, now, &mut tickers).expect("decode") {
            let symbol = e.symbol.clone().expect("symbol");
            let l = books.get_mut(&symbol).expect("tracked symbol");
            match e.kind {
                Kind::BookSnapshot(s) => {
                    if s.last_update_id == 1 {
                        l.restarts += 1;
                    }
                    l.last_u = s.last_update_id;
                    l.sync.on_stream_snapshot(s, &mut out);
                }
                Kind::BookDelta(d) => {
                    l.last_u = d.last_update_id;
                    l.sync.on_delta(d, &mut out);
                }
                other => panic!("unexpected {other:?}"),
            }
            for s in out.drain(..) {
                match s {
                    SyncEvent::NeedSnapshot => {
                        // The Bybit way: resubscribing makes the venue send a snapshot.
                        let t = vec![l.topic.clone()];
                        client.unsubscribe(Category::Linear, &t).await.expect("unsubscribe");
                        client.subscribe(Category::Linear, &t).await.expect("subscribe");
                        l.resubscribes += 1;
                    }
                    SyncEvent::Synced { .. } | SyncEvent::Applied(_) => {
                        let Some(b) = l.sync.book() else {
                            published_unsynced += 1;
                            continue;
                        };
                        let u = b.last_update_id();
                        let truth = h.book_at(&symbol, u, 20).unwrap_or_else(|| panic!("{symbol}: no truth at u={u}"));
                        assert_eq!(strings(&b.bids(20)), truth.bids, "{symbol} bids at u={u}");
                        assert_eq!(strings(&b.asks(20)), truth.asks, "{symbol} asks at u={u}");
                        l.checked += 1;
                    }
                    SyncEvent::Resync { .. } => {}
                }
            }
        }
    }
    let checked: u64 = books.values().map(|l| l.checked).sum();
    let per: Vec<String> = books
        .iter()
        .map(|(s, l)| {
            format!(
                "{s}: checked {}, resubscribes {}, engine gaps {}, restarts {}, {:?}",
                l.checked,
                l.resubscribes,
                l.engine_gaps,
                l.restarts,
                l.sync.stats()
            )
        })
        .collect();
    println!(
        "bybit books: {checked} published books equal to the truth, 0 differences, {published_unsynced} published \
         unsynced; dropped {}; kills {kills}, reconnects {reconnects}; {per:?}",
        h.stats().counters.dropped_by_fault
    );
    assert_eq!(published_unsynced, 0);
    assert!(books.values().all(|l| l.resubscribes >= 2 && l.restarts >= 1 && l.engine_gaps >= 1));
    assert_eq!((kills, reconnects), (1, 1));
    client.disconnect_all().await;
}
