//! One `Feed` over three venues' markets at once (Binance spot, Binance
//! USDⓈ-M, Bybit linear) against the simulator, with a killed connection on
//! each: per-stream order is kept, every trade the simulator produced is
//! either delivered or inside a reported gap (exact accounting), every
//! published book equals the simulator's truth at its update id, and no book
//! is published past a kill without a resync first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrofeed::audit::IdLedger;
use ferrofeed::books::BookConfig;
use ferrofeed::client::{ClientConfig, Environment, MarketId};
use ferrofeed::engine::BackoffConfig;
use ferrofeed::feed::Feed;
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{EventKind, Level};
use ferrofeed::venues::{Channel, binance, bybit};
use ferrofeed_sim::{BybitCategory, KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig};

const SYMBOL: &str = "BTCUSDT";

fn levels(v: &[[String; 2]]) -> Vec<Level> {
    v.iter()
        .map(|[p, q]| Level {
            price: p.parse::<Decimal>().expect("sim price"),
            qty: q.parse::<Decimal>().expect("sim qty"),
        })
        .collect()
}

/// One book's checks.
#[derive(Debug, Default)]
struct BookLog {
    checked: u64,
    resyncs: u64,
    /// The book stream's last update id when its connection was killed: a
    /// book above it must follow a resync (it came from a new socket).
    killed_at: Option<u64>,
    resynced_since_kill: bool,
    snapshots_after_kill: u64,
}

struct Market {
    id: MarketId,
    handle: MarketHandle,
    trades: String,
    book: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_feed_three_markets_kills_exact_accounting_and_true_books() {
    let mut cfg = SimConfig::all_markets();
    cfg.markets.retain(|m| matches!(m.kind, MarketKind::Spot | MarketKind::UsdM));
    cfg.markets.push(MarketConfig::bybit(BybitCategory::Linear));
    for m in &mut cfg.markets {
        m.symbols.truncate(2);
        m.timing.actions_per_sec = 200.0;
        m.book_history = 20_000;
    }
    let sim = Sim::start(cfg).await.expect("sim");
    let spot = sim.market(MarketKind::Spot).expect("spot").clone();
    let usdm = sim.market(MarketKind::UsdM).expect("usdm").clone();
    let linear = sim.bybit(BybitCategory::Linear).expect("bybit linear").clone();
    let env = |h: &MarketHandle| Environment::Custom { ws: h.ws_url(), rest: h.rest_url() };
    let client = ClientConfig {
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(17),
        ..ClientConfig::default()
    };
    let mut feed = Feed::builder()
        .client_config(client)
        .url(binance::spec::SPOT, env(&spot))
        .url(binance::spec::USDM, env(&usdm))
        .url(bybit::spec::LINEAR, env(&linear))
        .book_config(BookConfig { snapshot_timeout: Duration::from_secs(2), ..Default::default() })
        .subscribe(binance::spec::SPOT, Channel::Trades, SYMBOL)
        .subscribe(binance::spec::USDM, Channel::Trades, SYMBOL)
        .subscribe(bybit::spec::LINEAR, Channel::Trades, SYMBOL)
        .book(binance::spec::SPOT, SYMBOL)
        .book(binance::spec::USDM, SYMBOL)
        .book(bybit::spec::LINEAR, SYMBOL)
        .build()
        .await
        .expect("feed");
    let market = |id: MarketId, handle: &MarketHandle| Market {
        id,
        handle: handle.clone(),
        trades: ferrofeed::client::Client::stream_name(id, &Channel::Trades, SYMBOL).expect("trades"),
        book: feed.books().stream_of(id, SYMBOL).expect("tracked").to_string(),
    };
    let markets =
        [market(binance::spec::SPOT, &spot), market(binance::spec::USDM, &usdm), market(bybit::spec::LINEAR, &linear)];

    let mut trades: BTreeMap<MarketId, IdLedger> = markets.iter().map(|m| (m.id, IdLedger::default())).collect();
    let mut books: BTreeMap<MarketId, BookLog> = markets.iter().map(|m| (m.id, BookLog::default())).collect();
    let mut reconnects: BTreeMap<MarketId, u64> = BTreeMap::new();
    // 0..=2: kill market `phase` once its book has been checked enough;
    // 3: every market recovered; 4: paused, draining to the last id.
    let mut phase = 0usize;
    let mut mark = 0u64;
    let mut end: BTreeMap<MarketId, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "stuck in phase {phase}: trades {trades:?} books {books:?} reconnects {reconnects:?}"
        );
        let checked: u64 = books.values().map(|b| b.checked).sum();
        match phase {
            0..=2 => {
                let m = &markets[phase];
                let b = &books[&m.id];
                let recovered = phase == 0 || {
                    let prev = &markets[phase - 1];
                    reconnects.get(&prev.id).copied().unwrap_or(0) >= 1 && books[&prev.id].snapshots_after_kill >= 1
                };
                if recovered && b.checked >= 30 && trades[&m.id].delivered >= 10 && checked >= mark + 60 {
                    assert!(m.handle.kill_all(KillMode::Reset) >= 1);
                    let killed_at = m.handle.stream_stats(&m.book).and_then(|s| s.last_id).unwrap_or(0);
                    let b = books.get_mut(&m.id).expect("book");
                    b.killed_at = Some(killed_at);
                    b.resynced_since_kill = false;
                    mark = checked;
                    phase += 1;
                }
            }
            3 => {
                let last = &markets[2];
                if reconnects.get(&last.id).copied().unwrap_or(0) >= 1
                    && books[&last.id].snapshots_after_kill >= 1
                    && markets.iter().all(|m| trades[&m.id].delivered >= 20)
                    && checked >= mark + 60
                {
                    for m in &markets {
                        m.handle.pause_market(true);
                    }
                    // Paused: the last trade produced is the end of the accounting.
                    for m in &markets {
                        let last_id = m.handle.stream_stats(&m.trades).and_then(|s| s.last_id).expect("produced");
                        end.insert(m.id, last_id);
                    }
                    phase = 4;
                }
            }
            _ => {
                if markets.iter().all(|m| trades[&m.id].range().1 == end.get(&m.id).copied()) {
                    break;
                }
            }
        }
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), feed.next()).await else { continue };
        let id = MarketId::new(ev.venue, ev.market);
        let what = format!("{id} {:?}", ev.symbol);
        match &ev.kind {
            EventKind::Trade(t) => {
                let n: u64 = t.trade_id.parse().expect("numeric trade id");
                let ledger = trades.get_mut(&id).expect("subscribed market");
                assert!(
                    ledger.range().1.is_none_or(|last| n > last),
                    "{what}: trade {n} after {:?}: order not kept",
                    ledger.range().1
                );
                ledger.on_id(n, &[]);
            }
            EventKind::Gap(g) => {
                let m = markets.iter().find(|m| m.id == id).expect("market");
                if g.stream == m.trades {
                    trades.get_mut(&id).expect("market").gap(&g.missing);
                }
            }
            EventKind::Reconnected => *reconnects.entry(id).or_default() += 1,
            EventKind::BookResync(_) => {
                let b = books.get_mut(&id).expect("tracked");
                b.resyncs += 1;
                b.resynced_since_kill = true;
            }
            EventKind::BookSnapshot(_) | EventKind::BookUpdate(_) => {
                let u = match &ev.kind {
                    EventKind::BookSnapshot(s) => s.last_update_id,
                    EventKind::BookUpdate(d) => d.last_update_id,
                    _ => unreachable!(),
                };
                let b = books.get_mut(&id).expect("tracked");
                if let Some(k) = b.killed_at {
                    if u > k {
                        assert!(
                            b.resynced_since_kill,
                            "{what}: book at {u} published past the kill at {k} without a resync"
                        );
                    }
                    if b.resynced_since_kill && matches!(ev.kind, EventKind::BookSnapshot(_)) {
                        b.snapshots_after_kill += 1;
                    }
                }
                let h = &markets.iter().find(|m| m.id == id).expect("market").handle;
                let book =
                    feed.books().book(id, SYMBOL).unwrap_or_else(|| panic!("{what}: published while not in sync"));
                assert_eq!(book.last_update_id(), u, "{what}: the event is the book's state");
                let truth = h.book_at(SYMBOL, u, 20).unwrap_or_else(|| panic!("{what}: no truth at {u}"));
                assert_eq!(book.bids(20), levels(&truth.bids), "{what}: bids at {u}");
                assert_eq!(book.asks(20), levels(&truth.asks), "{what}: asks at {u}");
                b.checked += 1;
            }
            EventKind::Error { msg, raw } => panic!("{what}: {msg}: {raw}"),
            _ => {}
        }
    }
    for m in &markets {
        let stats = m.handle.stream_stats(&m.trades).expect("produced");
        let t = trades.get_mut(&m.id).expect("market");
        t.finish(stats.first_id, stats.last_id, &[]);
        println!(
            "{}: produced {} (ids {:?}..={:?}); delivered {}, in counted gaps {}, across unknown-extent gaps {}; \
             book checked {} times, {} resyncs; {} reconnects",
            m.id,
            stats.produced,
            stats.first_id,
            stats.last_id,
            t.delivered,
            t.in_gaps,
            t.across_unknown,
            books[&m.id].checked,
            books[&m.id].resyncs,
            reconnects.get(&m.id).copied().unwrap_or(0)
        );
        assert!(t.silent_spans.is_empty(), "{}: ids lost without a gap: {:?}", m.id, t.silent_spans);
        assert_eq!(t.range().0, stats.first_id, "{}: the first trade produced was delivered", m.id);
        assert_eq!(t.duplicates, 0, "{}: {t:?}", m.id);
        assert_eq!(t.delivered + t.in_gaps + t.across_unknown, stats.produced, "{}: {t:?}", m.id);
        assert!(books[&m.id].resyncs >= 1 && books[&m.id].snapshots_after_kill >= 1, "{}: {:?}", m.id, books[&m.id]);
    }
    // Each market was killed once: one reconnect per connection it had.
    assert!(markets.iter().all(|m| reconnects.get(&m.id).copied().unwrap_or(0) >= 1), "{reconnects:?}");
    feed.shutdown().await;
}
