//! barter-data reading the simulator's load stream (`ferrofeed sim
//! --load-messages N`): prints one JSON line like `bench/peers/peer.py`
//! (`client`, `version`, `messages`, `received`, `msgs_per_s`, `lost`) plus
//! this process's CPU seconds, CPU per message and peak resident memory.
//!
//! Usage: peer-barter WS_BASE N      (WS_BASE: the simulator's ws://127.0.0.1:PORT)
//!
//! **How the URL is pointed at the simulator.** barter-data 0.13 has no
//! run-time URL option: `Connector::url()` is an associated function with no
//! arguments, and `Binance<Server>` takes its URL from
//! `ExchangeServer::websocket_url() -> &'static str` (BinanceSpot's is the
//! constant `wss://stream.binance.com:9443/ws`). The smallest honest
//! workaround is what a user would write for a testnet or a proxy: their own
//! `ExchangeServer` (`SimServer` below, ID `BinanceSpot`) whose URL is read
//! once at start-up, used as `Binance<SimServer>`. Everything else — the
//! connector, the `SUBSCRIBE` request, the subscription validation, the trade
//! parser and the reconnecting stream — is barter-data's own, unchanged.
//!
//! The clock runs from the first trade to the N-th; the run stops at the N-th
//! trade or after 10 s without one (what did not arrive counts as lost).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use barter_data::exchange::ExchangeServer;
use barter_data::exchange::binance::Binance;
use barter_data::streams::Streams;
use barter_data::streams::reconnect::Event;
use barter_data::subscription::trade::PublicTrades;
use barter_instrument::exchange::ExchangeId;
use barter_instrument::instrument::market_data::kind::MarketDataInstrumentKind;
use futures_util::StreamExt;

/// The load stream's first trade id (docs/sim.md, "Load mode").
const FIRST_ID: u64 = 1_000_000_000_000;
const STALL: Duration = Duration::from_secs(10);

/// The simulator's raw-stream endpoint, `<WS_BASE>/ws`, set once before any stream starts.
static SIM_WS: OnceLock<&'static str> = OnceLock::new();

/// Binance spot's protocol at the simulator's address.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct SimServer;

impl ExchangeServer for SimServer {
    const ID: ExchangeId = ExchangeId::BinanceSpot;

    fn websocket_url() -> &'static str {
        SIM_WS.get().copied().unwrap_or("ws://127.0.0.1:9/ws")
    }
}

/// This process's user + system CPU seconds (`/proc/self/stat`, 10 ms ticks).
fn cpu_s() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let Some(rest) = s.rfind(')').and_then(|i| s.get(i + 1..)) else { return 0.0 };
    let f: Vec<f64> = rest.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

/// Peak resident set, MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(ws), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: peer-barter WS_BASE N");
        std::process::exit(2);
    };
    let url: &'static str = Box::leak(format!("{}/ws", ws.trim_end_matches('/')).into_boxed_str());
    let _ = SIM_WS.set(url);

    let streams = Streams::<PublicTrades>::builder()
        .subscribe([(Binance::<SimServer>::default(), "load", "usdt", MarketDataInstrumentKind::Spot, PublicTrades)])
        .init()
        .await;
    let mut streams = match streams {
        Ok(s) => s,
        Err(e) => {
            eprintln!("barter-data could not subscribe: {e}");
            std::process::exit(1);
        }
    };
    let Some(mut trades) = streams.select(ExchangeId::BinanceSpot) else {
        eprintln!("barter-data returned no stream");
        std::process::exit(1);
    };

    let (mut received, mut next, mut lost, mut errors, mut reconnects) = (0u64, FIRST_ID, 0u64, 0u64, 0u64);
    let (mut first, mut last, mut cpu0) = (None::<Instant>, None::<Instant>, 0.0);
    loop {
        let ev = match tokio::time::timeout(STALL, trades.next()).await {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(_) => break,
        };
        let trade = match ev {
            Event::Item(Ok(t)) => t,
            Event::Item(Err(_)) => {
                errors += 1;
                continue;
            }
            Event::Reconnecting(_) => {
                reconnects += 1;
                continue;
            }
        };
        let now = Instant::now();
        if first.is_none() {
            first = Some(now);
            cpu0 = cpu_s();
        }
        last = Some(now);
        received += 1;
        std::hint::black_box((trade.kind.price, trade.kind.amount));
        match trade.kind.id.parse::<u64>() {
            Ok(id) if id >= next => {
                lost += id - next;
                next = id + 1;
            }
            Ok(_) => {}
            Err(_) => errors += 1,
        }
        if next >= FIRST_ID + n {
            break;
        }
    }
    let cpu = cpu_s() - cpu0;
    lost += (FIRST_ID + n).saturating_sub(next);
    let span = match (first, last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let rate = if span > 0.0 { received.saturating_sub(1) as f64 / span } else { 0.0 };
    let out = serde_json::json!({
        "client": "barter-data",
        "version": "0.13.0",
        "messages": n,
        "received": received,
        "msgs_per_s": rate.round(),
        "lost": lost,
        "errors": errors,
        "reconnects": reconnects,
        "cpu_s": (cpu * 100.0).round() / 100.0,
        "ns_per_msg_cpu": if received > 0 { (cpu * 1e9 / received as f64).round() } else { 0.0 },
        "max_rss_mib": (peak_rss_mib() * 10.0).round() / 10.0,
    });
    println!("{out}");
    // barter's stream tasks keep running: leave without waiting for them.
    std::process::exit(if lost > 0 { 1 } else { 0 });
}
