//! A local order book kept in sync, printing its top 5 levels.
//!
//! The feed fetches the venue's snapshot, buffers the diffs that arrive
//! meanwhile, and applies them in order (Binance) or starts from the
//! stream's own snapshot (Bybit). It publishes `book_snapshot` once in sync,
//! `book_update` per diff, and `book_resync` when sync is lost (a gap, a
//! reconnect); it never publishes a book while out of sync.
//!
//! ```console
//! $ cargo run --example book                                    # Binance spot BTCUSDT on the simulator
//! $ cargo run --example book -- --market bybit:linear --symbol ETHUSDT
//! $ cargo run --example book -- --env production --every-ms 1000
//! ```
//!
//! Each print is one JSON line: the market, the symbol, the book's last
//! update id, and the top 5 bids (best first) and asks (best first) as
//! exact decimal strings.

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ferrofeed::client::{Environment, MarketId};
use ferrofeed::feed::Feed;
use ferrofeed::model::event::EventKind;
use ferrofeed::venues::registry;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Env {
    /// The bundled simulator, started inside this process.
    Sim,
    /// The venue's testnet.
    Testnet,
    /// The real venue.
    Production,
}

/// A local book's top 5 levels.
#[derive(Debug, Parser)]
struct Args {
    /// Where to connect.
    #[arg(long, value_enum, default_value = "sim")]
    env: Env,
    /// VENUE:MARKET, e.g. binance:spot, binance:usdm, bybit:linear.
    #[arg(long, default_value = "binance:spot")]
    market: String,
    /// The instrument, as the venue spells it.
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    /// Print at most once per this many milliseconds.
    #[arg(long, default_value_t = 250)]
    every_ms: u64,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let market: MarketId = registry::parse_market(&args.market)?;

    let mut builder = Feed::builder();
    let mut sim = None;
    match args.env {
        Env::Sim => {
            let s = ferrofeed::simulated::start(&[market]).await?;
            builder = builder.simulator(&s);
            sim = Some(s);
        }
        Env::Testnet => builder = builder.environment(Environment::Testnet),
        Env::Production => builder = builder.environment(Environment::Production),
    }
    let mut feed = builder.book(market, &args.symbol).build().await?;

    let every = Duration::from_millis(args.every_ms);
    let mut last_print: Option<Instant> = None;
    // Ctrl-C, or --seconds if given.
    let seconds = args.seconds;
    let stop = async move {
        let deadline = async {
            match seconds {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = deadline => {}
        }
    };
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            e = feed.next() => match e {
                Some(e) => e,
                None => break,
            },
            () = &mut stop => break,
        };
        match &event.kind {
            EventKind::BookSnapshot(_) | EventKind::BookUpdate(_) => {
                if last_print.is_some_and(|t| t.elapsed() < every) {
                    continue;
                }
                // The local book itself, in sync whenever an update is published.
                let Some(book) = feed.books().book(market, &args.symbol) else { continue };
                let side = |levels: Vec<ferrofeed::model::event::Level>| {
                    levels.iter().map(|l| [l.price.to_string(), l.qty.to_string()]).collect::<Vec<_>>()
                };
                let line = serde_json::json!({
                    "market": market.to_string(),
                    "symbol": args.symbol,
                    "update_id": book.last_update_id(),
                    "bids": side(book.bids(5)),
                    "asks": side(book.asks(5)),
                });
                println!("{line}");
                last_print = Some(Instant::now());
            }
            // Resyncs, gaps, reconnects: said out loud on stderr.
            _ => eprintln!("{}", serde_json::to_string(&event)?),
        }
    }
    feed.shutdown().await;
    if let Some(s) = sim {
        s.shutdown().await;
    }
    Ok(())
}
