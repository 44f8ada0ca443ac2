//! `Feed` against the simulator: live frames come out as normalized events,
//! status events are translated, books are published, and the statistics
//! follow.

use std::time::{Duration, Instant};

use ferrofeed::client::{ClientConfig, Environment};
use ferrofeed::engine::BackoffConfig;
use ferrofeed::feed::{Feed, FeedConfig, Source};
use ferrofeed::model::event::EventKind;
use ferrofeed::venues::binance::Market;
use ferrofeed_sim::{KillMode, MarketConfig, MarketKind, Sim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_frames_become_normalized_events_with_status_and_books() {
    let mut cfg = SimConfig::all_markets();
    cfg.markets.truncate(2);
    for m in &mut cfg.markets {
        m.symbols.truncate(2);
        m.timing.actions_per_sec = 200.0;
    }
    let sim = Sim::start(cfg).await.expect("sim");
    let spot = sim.market(MarketKind::Spot).expect("spot").clone();
    let usdm = sim.market(MarketKind::UsdM).expect("usdm").clone();
    let _: &MarketConfig = spot.config();
    let mut client = ClientConfig {
        environment: Environment::Custom { ws: spot.ws_url(), rest: spot.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(3),
        ..ClientConfig::default()
    };
    client.overrides.insert(Market::UsdM.into(), Environment::Custom { ws: usdm.ws_url(), rest: usdm.rest_url() });
    let mut feed = Feed::new(FeedConfig { client, ..FeedConfig::default() });
    feed.subscribe(Market::Spot, &["btcusdt@trade".into()]).await.expect("subscribe");
    feed.track_book(Market::UsdM, "BTCUSDT").await.expect("book");

    let start = Instant::now();
    let (mut trades, mut last_trade_id, mut snapshots, mut updates, mut connected) = (0u64, 0u64, 0, 0, 0);
    let (mut disconnected, mut reconnected, mut killed) = (0, 0, false);
    while start.elapsed() < Duration::from_secs(30) {
        let ev =
            tokio::time::timeout(Duration::from_secs(10), feed.next()).await.expect("event in time").expect("open");
        match &ev.kind {
            EventKind::Trade(t) => {
                assert_eq!((ev.market.name(), ev.symbol.as_deref()), ("spot", Some("BTCUSDT")));
                assert!(ev.exchange_ts.is_some_and(|t| t > 1_600_000_000_000_000_000));
                let id: u64 = t.trade_id.parse().expect("numeric id");
                assert!(id > last_trade_id);
                last_trade_id = id;
                trades += 1;
            }
            EventKind::BookSnapshot(b) => {
                assert_eq!((ev.market.name(), ev.symbol.as_deref()), ("usdm", Some("BTCUSDT")));
                assert!(!b.bids.is_empty() && !b.asks.is_empty());
                snapshots += 1;
            }
            EventKind::BookUpdate(_) => updates += 1,
            EventKind::Connected => connected += 1,
            EventKind::Disconnected { .. } => disconnected += 1,
            EventKind::Reconnected => reconnected += 1,
            _ => {}
        }
        if !killed && trades > 20 && updates > 20 {
            spot.kill_all(KillMode::Reset);
            killed = true;
        }
        if killed && reconnected >= 1 && trades > 60 {
            break;
        }
    }
    assert_eq!(connected, 2, "one connection per market");
    assert_eq!((disconnected, reconnected), (1, 1));
    assert!(snapshots >= 1 && updates > 20, "{snapshots} {updates}");
    feed.refresh_stats();
    let st = feed.stats().lock().clone();
    assert_eq!(st.conns.len(), 2);
    assert!(
        st.conns.values().any(|c| c.market == Some(Source::from(Market::Spot)) && c.reconnects == 1 && c.epoch == 2)
    );
    let trade_stream = &st.streams[&(Source::from(Market::Spot), "btcusdt@trade".to_string())];
    assert!(trade_stream.messages >= trades);
    assert!(st.books[&(Source::from(Market::UsdM), "BTCUSDT".to_string())].synced);
    assert_eq!(st.events_by_type.get("trade").copied(), Some(trades));
    assert!(st.rest_weight.iter().any(|(m, used, _)| *m == Source::from(Market::UsdM) && used.unwrap_or(0) > 0));
}
