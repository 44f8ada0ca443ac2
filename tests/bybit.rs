//! The ferrofeed `BybitClient` against the simulator's Bybit v5 linear
//! endpoint: trades decode with consecutive ids, a killed connection
//! reconnects and resubscribes, and the local book built from the client's
//! order-book frames (Bybit decode + `BookSync` with the Bybit sequencing)
//! equals the simulator's truth at the same `u`. Timings are never asserted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrofeed::book::{BookSync, SyncConfig, SyncEvent, VecSide};
use ferrofeed::bybit::{BybitClient, BybitConfig, Category, Environment};
use ferrofeed::engine::{BackoffConfig, EventKind};
use ferrofeed::model::event::{EventKind as Kind, Level};
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
    let cfg = BybitConfig {
        environment: Environment::Custom { ws: h.ws_url(), rest: h.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(5),
        ..BybitConfig::default()
    };
    let (mut client, mut rx) = BybitClient::new(cfg);
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
                assert_eq!(client.category_of_conn(ev.conn), Some(Some(Category::Linear)));
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
                if stream == BOOK
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
