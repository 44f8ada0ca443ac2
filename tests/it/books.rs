//! Local books against the simulator over real sockets, under chaos: diffs
//! dropped at random, a stale snapshot, snapshot requests failing, a reconnect
//! in the middle of a recovery. Every book published is compared with the
//! simulator's true book at the same update id; a gap never reconnects the
//! socket; a thousand books resyncing at once never draw a 429.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferrofeed::books::{BookConfig, Books};
use ferrofeed::client::{Client, ClientConfig, Environment, MarketId};
use ferrofeed::venues::binance::Market;

const SPOT: MarketId = ferrofeed::venues::binance::spec::SPOT;
use ferrofeed::engine::{BackoffConfig, EventKind as EngineKind};
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{Event, EventKind, Level};
use ferrofeed_sim::{KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, SymbolSpec};
use futures_util::StreamExt;

fn client_config(sim: &MarketHandle) -> ClientConfig {
    ClientConfig {
        environment: Environment::Custom { ws: sim.ws_url(), rest: sim.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(5),
        ..ClientConfig::default()
    }
}

fn levels(v: &[[String; 2]]) -> Vec<Level> {
    v.iter()
        .map(|[p, q]| Level {
            price: p.parse::<Decimal>().expect("sim price"),
            qty: q.parse::<Decimal>().expect("sim qty"),
        })
        .collect()
}

/// What the test saw of one symbol's published books.
#[derive(Debug, Default)]
struct Seen {
    published: bool,
    snapshots: u64,
    updates: u64,
    resyncs: u64,
}

/// Checks one published event against the simulator's truth.
fn check(ev: &Event, books: &Books, sim: &MarketHandle, seen: &mut HashMap<String, Seen>) -> bool {
    let Some(symbol) = ev.symbol.clone() else { return false };
    let s = seen.entry(symbol.clone()).or_default();
    let id = match &ev.kind {
        EventKind::BookSnapshot(b) => {
            s.published = true;
            s.snapshots += 1;
            b.last_update_id
        }
        EventKind::BookUpdate(u) => {
            assert!(s.published, "{symbol}: book_update before its book_snapshot");
            s.updates += 1;
            u.last_update_id
        }
        EventKind::BookResync(r) => {
            assert!(s.published, "{symbol}: resync of a book never published: {r:?}");
            s.published = false;
            s.resyncs += 1;
            return false;
        }
        other => panic!("unexpected {other:?}"),
    };
    let book = books.book(SPOT, &symbol).unwrap_or_else(|| panic!("{symbol}: published while not in sync"));
    assert_eq!(book.last_update_id(), id);
    let truth =
        sim.book_at(&symbol, id, 20).unwrap_or_else(|| panic!("{symbol}: update id {id} not in the sim history"));
    assert_eq!(book.bids(20), levels(&truth.bids), "{symbol} bids at {id}");
    assert_eq!(book.asks(20), levels(&truth.asks), "{symbol} asks at {id}");
    if let (EventKind::BookUpdate(u), Some(bb)) = (&ev.kind, book.best_bid()) {
        assert_eq!(u.best_bid, Some(bb));
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_under_chaos_always_equal_the_true_book_and_gaps_never_reconnect() {
    let mut mc = MarketConfig::new(MarketKind::Spot);
    mc.symbols.truncate(3);
    mc.timing.actions_per_sec = 300.0;
    mc.timing.scale = 0.2; // 20 ms depth windows
    mc.book_history = 20_000;
    let sim = Sim::start(SimConfig::single(mc)).await.expect("sim");
    let m = sim.markets()[0].clone();
    let symbols: Vec<String> = m.config().symbols.iter().map(|s| s.name.clone()).collect();

    let (mut client, mut events) = Client::new(client_config(&m));
    let cfg = BookConfig {
        retry_initial: Duration::from_millis(100),
        retry_max: Duration::from_secs(1),
        ..BookConfig::default()
    };
    let mut books = Books::new(cfg);
    let streams: Vec<String> = symbols.iter().map(|s| books.track(&mut client, SPOT, s).expect("track")).collect();
    for s in &streams {
        m.drop_probability(s, 1e-3);
    }
    client.subscribe(Market::Spot, &streams).await.expect("subscribe");

    let target = &symbols[0];
    let start = Instant::now();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut checked = 0u64;
    let (mut reconnects, mut disconnects, mut kills) = (0, 0, 0);
    let mut phase = 0;
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            Some(ev) = events.next() => {
                match &ev.kind {
                    EngineKind::Reconnected => reconnects += 1,
                    EngineKind::Disconnected { .. } => disconnects += 1,
                    _ => {}
                }
                books.on_event(client.market_of_conn(ev.conn), &ev, &mut out);
            }
            f = books.next_fetch() => books.on_fetch(f, &mut out),
            _ = tick.tick() => {}
        }
        for ev in out.drain(..) {
            let resync_of_target = matches!(ev.kind, EventKind::BookResync(_)) && ev.symbol.as_ref() == Some(target);
            if check(&ev, &books, &m, &mut seen) {
                checked += 1;
            }
            // Phase 2: the recovery of the target is under way (its snapshot
            // requests fail 3 times); kill the socket in the middle of it.
            if phase == 1 && resync_of_target {
                assert_eq!(m.kill_all(KillMode::Reset), 1);
                kills += 1;
                phase = 2;
            }
        }
        let all_synced = symbols.iter().all(|s| books.book(SPOT, s).is_some());
        // Phase 0: once the simulator's stale copy is old enough (5-10 s),
        // drop a diff of another symbol and serve its recovery a stale
        // snapshot: it must be detected and fetched again.
        if phase == 0 && all_synced && start.elapsed() > Duration::from_secs(6) {
            m.stale_snapshots(1);
            m.drop_next(&streams[1], 1);
            phase = 3;
        }
        // Phase 1: once that is over, make snapshots fail 3 times and drop one
        // diff of the target.
        if phase == 3 && all_synced && seen.get(&symbols[1]).is_some_and(|s| s.resyncs >= 1) {
            m.fail_snapshots(3);
            m.drop_next(&streams[0], 1);
            phase = 1;
        }
        if phase == 2 && all_synced && start.elapsed() > Duration::from_secs(14) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "stuck in phase {phase}: {seen:?} {:?}",
            books.fetch_stats()
        );
    }

    let st = books.fetch_stats();
    let target_stats = books.book_stats(SPOT, target).expect("tracked");
    let all: Vec<_> = symbols.iter().map(|s| books.book_stats(SPOT, s).expect("tracked")).collect();
    eprintln!("checked {checked} published books; fetch {st:?}; per symbol {all:?}; seen {seen:?}");
    assert!(checked > 300, "only {checked} books checked");
    assert!(all.iter().map(|s| s.stale_snapshots).sum::<u64>() >= 1, "the stale snapshot was not detected");
    assert!(st.failures >= 3, "{st:?}");
    assert_eq!(st.rate_limited, 0);
    assert!(target_stats.resyncs >= 1 && seen[target].snapshots >= 2, "{target_stats:?}");
    // Gap recovery never touched the socket: the one reconnect is the kill.
    assert_eq!((kills, disconnects, reconnects), (1, 1, 1));
    assert_eq!(m.stats().counters.rest_rate_limited, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_books_resyncing_at_once_stay_under_the_rest_weight_limit() {
    let mut mc = MarketConfig::new(MarketKind::Spot);
    mc.symbols = SymbolSpec::synthetic(1000);
    mc.timing.actions_per_sec = 1.0;
    // 1000 weight per second (the venue: 6000 per minute): 1000 snapshots of
    // weight 5 need at least 5 s.
    mc.limits.rest_weight_limit = 1000;
    mc.limits.rest_weight_window = Duration::from_secs(1);
    let sim = Sim::start(SimConfig::single(mc)).await.expect("sim");
    let m = sim.markets()[0].clone();
    let symbols: Vec<String> = m.config().symbols.iter().map(|s| s.name.clone()).collect();

    let cfg = ClientConfig { rest_weight: Some((1000, Duration::from_secs(1))), ..client_config(&m) };
    let (mut client, mut events) = Client::new(cfg);
    let bc = BookConfig { depth: Some(100), max_in_flight: 16, ..BookConfig::default() };
    let mut books = Books::new(bc);
    let streams: Vec<String> = symbols.iter().map(|s| books.track(&mut client, SPOT, s).expect("track")).collect();
    client.subscribe(Market::Spot, &streams).await.expect("subscribe");

    let mut out = Vec::new();
    let mut reconnects = 0;
    // Pumps events until every book is in sync and at least `min_resyncs`
    // resyncs happened in all.
    let mut sync_all = async |round: &str, books: &mut Books, reconnects: &mut u32, min_resyncs: u64| {
        let t = Instant::now();
        loop {
            tokio::select! {
                Some(ev) = events.next() => {
                    if ev.kind == EngineKind::Reconnected {
                        *reconnects += 1;
                    }
                    books.on_event(client.market_of_conn(ev.conn), &ev, &mut out);
                }
                f = books.next_fetch() => books.on_fetch(f, &mut out),
            }
            out.clear();
            let resyncs = || symbols.iter().filter_map(|s| books.book_stats(SPOT, s)).map(|b| b.resyncs).sum::<u64>();
            if symbols.iter().all(|s| books.book(SPOT, s).is_some()) && resyncs() >= min_resyncs {
                eprintln!("{round}: 1000 books in sync after {:?}; {:?}", t.elapsed(), books.fetch_stats());
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(120), "{round}: stuck; {:?}", books.fetch_stats());
        }
    };
    sync_all("initial sync", &mut books, &mut reconnects, 0).await;
    let first = books.fetch_stats();
    // Every stream loses data at once: the socket stays open but sends nothing
    // for a second.
    m.stall(None, Duration::from_millis(1500));
    sync_all("mass resync", &mut books, &mut reconnects, 900).await;
    let st = books.fetch_stats();
    let resyncs: u64 = symbols.iter().map(|s| books.book_stats(SPOT, s).expect("tracked").resyncs).sum();
    assert!(resyncs >= 900, "only {resyncs} books lost sync");
    assert!(st.requests >= first.requests + 900, "{st:?}");
    assert_eq!((st.rate_limited, st.failures), (0, 0), "{st:?}");
    assert_eq!(m.stats().counters.rest_rate_limited, 0);
    assert_eq!(reconnects, 0, "resyncs never reconnect");
}
