//! `Feed` against the simulator's Bybit linear market: the library's own
//! book driver (`Books`: resubscribe on a lost delta, the venue's
//! snapshot resyncs) under chaos, every published book compared with the
//! simulator's true book at the same `u`; and `ferrofeed stream --venue bybit`
//! end to end.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrofeed::books::BookConfig;
use ferrofeed::client::{ClientConfig, Environment, MarketId};
use ferrofeed::engine::BackoffConfig;
use ferrofeed::feed::Source;
use ferrofeed::feed::{Feed, FeedConfig};
use ferrofeed::model::event::{Event, EventKind, Level, Venue};
use ferrofeed::venues::bybit::Category;
const LINEAR: MarketId = ferrofeed::venues::bybit::spec::LINEAR;

use ferrofeed_sim::{BybitCategory, KillMode, MarketConfig, MarketHandle, Sim, SimConfig};

fn strings(levels: &[Level]) -> Vec<[String; 2]> {
    levels.iter().map(|l| [l.price.to_string(), l.qty.to_string()]).collect()
}

async fn start(symbols: usize) -> (Sim, MarketHandle) {
    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.truncate(symbols);
    m.timing.actions_per_sec = 300.0;
    m.book_history = 20_000;
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn feed(h: &MarketHandle) -> Feed {
    Feed::new(FeedConfig {
        client: ClientConfig {
            environment: Environment::Custom { ws: h.ws_url(), rest: h.rest_url() },
            backoff: BackoffConfig {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                ..BackoffConfig::default()
            },
            seed: Some(9),
            ..ClientConfig::default()
        },
        books: BookConfig { depth: Some(50), snapshot_timeout: Duration::from_secs(2), ..Default::default() },
    })
}

#[derive(Debug, Default)]
struct Seen {
    /// Books published and found equal to the truth.
    checked: u64,
    /// Resyncs reported.
    resyncs: u64,
    /// The last `u` published.
    last_u: u64,
    /// The last `u` before the venue restart.
    restart_u: Option<u64>,
    /// A book below `restart_u` was published: the restart was followed.
    followed_restart: bool,
    /// Snapshots published after the kill.
    snapshots_after_kill: u64,
}

/// Books under chaos, kept by the library: random order-book drops, a venue
/// restart whose `u = 1` snapshots are all lost, and a killed connection.
/// Every `book_snapshot` and `book_update` the feed hands out is checked: the
/// feed's book is at the event's `u`, and its top 20 levels equal the
/// simulator's at that `u`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_books_under_chaos_always_equal_the_true_book() {
    let (_sim, h) = start(2).await;
    let syms: Vec<String> = h.config().symbols.iter().map(|s| s.name.clone()).collect();
    let mut feed = feed(&h);
    let mut topics = Vec::new();
    for s in &syms {
        feed.track_book(Category::Linear, s).await.expect("track");
        topics.push(format!("orderbook.50.{s}"));
    }
    feed.subscribe(Category::Linear, &[format!("publicTrade.{}", syms[0])]).await.expect("trades");
    const P: f64 = 0.02;
    for t in &topics {
        h.drop_probability(t, P);
    }
    let mut seen: BTreeMap<String, Seen> = syms.iter().map(|s| (s.clone(), Seen::default())).collect();
    let (mut trades, mut reconnects, mut gaps) = (0u64, 0u64, 0u64);
    // 0: random drops; 1: drops stopped, catching up; 2: paused, waiting to
    // hold every topic's last message; 3: restarted with every message
    // dropped; 4: drops off, waiting for the books to follow the restart;
    // 5: killed, waiting for the reconnect and more books.
    let mut phase = 0;
    let mut mark = 0u64;
    let mut stop_at: Vec<Option<u64>> = Vec::new();
    let mut produced_at_restart: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let checked: u64 = seen.values().map(|s| s.checked).sum();
        let books = feed.books();
        let all_synced = syms.iter().all(|s| books.book(LINEAR, s).is_some());
        match phase {
            0 if seen.values().all(|s| s.resyncs >= 2) && checked >= 300 => {
                for t in &topics {
                    h.drop_probability(t, 0.0);
                }
                stop_at = topics.iter().map(|t| h.stream_stats(t).and_then(|s| s.last_id)).collect();
                phase = 1;
            }
            1 if all_synced && syms.iter().zip(&stop_at).all(|(s, u)| Some(seen[s].last_u) > *u) => {
                h.pause_market(true);
                phase = 2;
            }
            2 if all_synced
                && syms
                    .iter()
                    .zip(&topics)
                    .all(|(s, t)| h.stream_stats(t).and_then(|x| x.last_id) == Some(seen[s].last_u)) =>
            {
                for s in seen.values_mut() {
                    s.restart_u = Some(s.last_u);
                }
                produced_at_restart = topics.iter().map(|t| h.stream_stats(t).map_or(0, |x| x.produced)).collect();
                for t in &topics {
                    h.drop_probability(t, 1.0);
                }
                assert_eq!(h.bybit_restart(None), topics.len());
                h.pause_market(false);
                phase = 3;
            }
            // The restart snapshots (u = 1) and a few deltas were produced
            // and lost.
            3 if topics
                .iter()
                .zip(&produced_at_restart)
                .all(|(t, p)| h.stream_stats(t).is_some_and(|x| x.produced >= p + 3)) =>
            {
                for t in &topics {
                    h.drop_probability(t, 0.0);
                }
                mark = checked;
                phase = 4;
            }
            4 if all_synced && seen.values().all(|s| s.followed_restart) && checked >= mark + 100 => {
                assert_eq!(h.kill_all(KillMode::Reset), 1);
                mark = checked;
                phase = 5;
            }
            5 if reconnects >= 1 && checked >= mark + 200 => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "stuck in phase {phase}: checked {checked}, {seen:?}");
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), feed.next()).await else { continue };
        assert_eq!(ev.venue, Venue::Bybit);
        let symbol = ev.symbol.clone();
        match &ev.kind {
            EventKind::Trade(_) => trades += 1,
            EventKind::Reconnected => reconnects += 1,
            EventKind::Gap(_) => gaps += 1,
            EventKind::BookResync(_) => seen.get_mut(&symbol.expect("symbol")).expect("tracked").resyncs += 1,
            EventKind::BookSnapshot(_) | EventKind::BookUpdate(_) => {
                let symbol = symbol.expect("symbol");
                let u = match &ev.kind {
                    EventKind::BookSnapshot(s) => s.last_update_id,
                    EventKind::BookUpdate(d) => d.last_update_id,
                    _ => unreachable!(),
                };
                let book = feed.books().book(LINEAR, &symbol).expect("published while synced");
                assert_eq!(book.last_update_id(), u, "{symbol}: the event is the book's state");
                let truth = h.book_at(&symbol, u, 20).unwrap_or_else(|| panic!("{symbol}: no truth at u={u}"));
                assert_eq!(strings(&book.bids(20)), truth.bids, "{symbol} bids at u={u}");
                assert_eq!(strings(&book.asks(20)), truth.asks, "{symbol} asks at u={u}");
                let s = seen.get_mut(&symbol).expect("tracked");
                s.checked += 1;
                s.last_u = u;
                if phase >= 4 && s.restart_u.is_some_and(|r| u < r) {
                    s.followed_restart = true;
                }
                if phase == 5 && matches!(ev.kind, EventKind::BookSnapshot(_)) {
                    s.snapshots_after_kill += 1;
                }
            }
            EventKind::SubscriptionFailed { stream, msg, .. } => panic!("{stream} refused: {msg}"),
            EventKind::Error { msg, raw } => panic!("{msg}: {raw}"),
            _ => {}
        }
    }
    let stats = feed.books().fetch_stats();
    let per: Vec<String> =
        syms.iter().map(|s| format!("{s}: {:?} {:?}", seen[s], feed.books().book_stats(LINEAR, s))).collect();
    println!(
        "bybit library books: {} published books equal to the truth; trades {trades}, gaps {gaps}, reconnects \
         {reconnects}, dropped {}; {stats:?}; {per:?}",
        seen.values().map(|s| s.checked).sum::<u64>(),
        h.stats().counters.dropped_by_fault
    );
    // Every book lost sync to drops (twice at least) and to the lost
    // restart, followed the restart and was resynced after the kill.
    assert!(seen.values().all(|s| s.resyncs >= 3 && s.followed_restart && s.snapshots_after_kill >= 1), "{seen:?}");
    assert!(stats.resubscribes >= 6, "{stats:?}");
    assert!(trades > 0);
    assert_eq!(reconnects, 1);
    // The shared statistics (what /metrics serves) saw the same run.
    feed.refresh_stats();
    let st = feed.stats().lock().clone();
    assert_eq!(st.decode_errors, 0);
    assert!(
        st.conns.iter().all(|((venue, _), c)| *venue == "bybit" && c.market == Some(Source::from(Category::Linear)))
    );
    assert_eq!(st.conns.values().map(|c| c.reconnects).sum::<u64>(), 1, "{:?}", st.conns);
    for s in &syms {
        let b = &st.books[&(Source::from(Category::Linear), s.clone())];
        assert!(b.synced && b.resyncs >= 3 && b.applied > 0, "{s}: {b:?}");
        assert!(st.streams[&(Source::from(Category::Linear), format!("orderbook.50.{s}"))].messages > 0);
    }
    let text = ferrofeed::metrics::render(&st);
    assert!(
        text.contains(&format!("ferrofeed_book_synced{{venue=\"bybit\",market=\"linear\",symbol=\"{}\"}} 1", syms[0])),
        "{text}"
    );
    assert!(text.contains("ferrofeed_queue_capacity{queue=\"public\"} 65536"), "{text}");
    feed.shutdown().await;
}

/// Inverse and option through the feed: every topic kind the category serves
/// is subscribed, settles (option answers are `COMMAND_RESP` naming topics,
/// with no `req_id`), decodes into typed events, and the books equal the
/// simulator's through a kill and the reconnect's resubscribe.
async fn category_end_to_end(
    category: BybitCategory,
    client_category: Category,
    topics: &[&str],
    books: &[&str],
    want: &[&str],
) {
    let mut m = MarketConfig::bybit(category);
    m.timing.actions_per_sec = 200.0;
    m.book_history = 20_000;
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    let mut feed = feed(&h);
    // The feed asks for depth 50; option serves 25 and 100, so its books
    // fall back to 25.
    for b in books {
        feed.track_book(client_category, b).await.expect("track");
    }
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    feed.subscribe(client_category, &topics).await.expect("subscribe");
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut checked_after_kill = 0u64;
    let mut killed = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let settled = feed.client().is_settled();
        let seen_all = want.iter().all(|t| by_type.contains_key(t));
        if !killed && settled && seen_all {
            assert_eq!(h.kill_all(KillMode::Reset), 1);
            killed = true;
        }
        if killed && by_type.contains_key("reconnected") && checked_after_kill >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "{category:?}: settled {settled}, {by_type:?}");
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), feed.next()).await else { continue };
        assert_eq!((ev.venue, ev.market), (Venue::Bybit, client_category.market_type()));
        *by_type.entry(ev.kind.type_name()).or_default() += 1;
        match &ev.kind {
            EventKind::BookSnapshot(_) | EventKind::BookUpdate(_) => {
                let symbol = ev.symbol.clone().expect("symbol");
                let book = feed.books().book(client_category.into(), &symbol).expect("synced");
                let u = book.last_update_id();
                let truth = h.book_at(&symbol, u, 20).unwrap_or_else(|| panic!("{symbol}: no truth at u={u}"));
                assert_eq!(strings(&book.bids(20)), truth.bids, "{symbol} bids at u={u}");
                assert_eq!(strings(&book.asks(20)), truth.asks, "{symbol} asks at u={u}");
                if killed && by_type.contains_key("reconnected") {
                    checked_after_kill += 1;
                }
            }
            EventKind::BookResync(r) if killed => assert!(r.reason.starts_with("connection lost"), "{r:?}"),
            EventKind::Trade(t) => {
                assert!(t.price > ferrofeed::model::Decimal::ZERO && t.qty > ferrofeed::model::Decimal::ZERO)
            }
            EventKind::SubscriptionFailed { stream, msg, .. } => panic!("{stream} refused: {msg}"),
            EventKind::Error { msg, raw } => panic!("{msg}: {raw}"),
            EventKind::Unknown { raw } => panic!("undecoded frame: {raw}"),
            _ => {}
        }
    }
    println!("bybit {category:?} feed: {by_type:?}");
    // Each book lost sync when the connection died, and came back.
    assert_eq!(by_type.get("book_resync").copied(), Some(books.len() as u64), "{by_type:?}");
    assert_eq!(by_type.get("book_snapshot").copied(), Some(2 * books.len() as u64), "{by_type:?}");
    feed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inverse_topics_decode_and_books_survive_a_kill() {
    category_end_to_end(
        BybitCategory::Inverse,
        Category::Inverse,
        &["publicTrade.BTCUSD", "tickers.BTCUSD", "kline.1.BTCUSD", "allLiquidation.BTCUSD", "publicTrade.ETHUSD"],
        &["BTCUSD", "ETHUSD"],
        &["trade", "book_snapshot", "book_update", "mark_price", "open_interest", "ticker", "kline", "liquidation"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_topics_settle_without_req_id_decode_and_books_survive_a_kill() {
    category_end_to_end(
        BybitCategory::Option,
        Category::Option,
        &["publicTrade.BTC", "tickers.BTC-26DEC26-95000-C", "tickers.BTC-26DEC26-100000-P"],
        &["BTC-26DEC26-95000-C", "BTC-26DEC26-100000-C"],
        &["trade", "book_snapshot", "book_update", "mark_price", "open_interest"],
    )
    .await;
}

/// `ferrofeed stream --venue bybit --env sim`: trades and a local book of a
/// simulated linear market, every line a documented Bybit event.
#[test]
fn stream_cli_prints_bybit_trades_and_books() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args([
            "stream",
            "--venue",
            "bybit",
            "--market",
            "linear",
            "--env",
            "sim",
            "--trades",
            "BTCUSDT",
            "--book",
            "BTCUSDT",
            "--book-depth",
            "5",
            "--status",
            "--duration",
            "3s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run ferrofeed stream");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let mut by_type: BTreeMap<&'static str, usize> = BTreeMap::new();
    for line in stdout.lines() {
        let ev: Event = serde_json::from_str(line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"));
        let back: serde_json::Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(back, serde_json::from_str::<serde_json::Value>(line).unwrap(), "{line}");
        assert_eq!(ev.venue, Venue::Bybit, "{line}");
        if let EventKind::BookSnapshot(s) = &ev.kind {
            assert!(s.bids.len() <= 5 && s.asks.len() <= 5, "--book-depth 5: {line}");
            assert!(s.bids[0].price < s.asks[0].price, "{line}");
        }
        *by_type.entry(ev.kind.type_name()).or_default() += 1;
    }
    for t in ["connected", "trade", "book_snapshot", "book_update"] {
        assert!(by_type.get(t).copied().unwrap_or(0) > 0, "no {t}: {by_type:?}\n{stderr}");
    }
    assert_eq!(by_type.get("error"), None, "{stdout}");

    // Bad input is a clear error, not a panic.
    let bad = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["stream", "--venue", "bybit", "--market", "usdm", "--trades", "BTCUSDT", "--env", "sim"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(msg.contains("unknown bybit market \"usdm\""), "{msg}");
    assert!(!msg.contains("panicked"), "{msg}");
}
