//! Trades from two venues in one `Feed`: Binance spot and Bybit linear
//! (USDT perpetuals), merged into one ordered stream with status events
//! (connections, gaps) in between.
//!
//! ```console
//! $ cargo run --example trades                       # the bundled simulator (offline)
//! $ cargo run --example trades -- --env production   # the real venues
//! $ cargo run --example trades -- --symbol ETHUSDT --seconds 10
//! ```
//!
//! Each trade prints as one line; `--json` prints the events as JSON lines
//! instead (the contract of docs/events.md).

use std::time::Duration;

use clap::{Parser, ValueEnum};
use ferrofeed::client::{Environment, MarketId};
use ferrofeed::feed::Feed;
use ferrofeed::model::event::{EventKind, Side};
use ferrofeed::venues::{Channel, binance, bybit};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Env {
    /// The bundled simulator, started inside this process.
    Sim,
    /// The venues' testnets.
    Testnet,
    /// The real venues.
    Production,
}

/// Trades from Binance spot and Bybit linear in one feed.
#[derive(Debug, Parser)]
struct Args {
    /// Where to connect.
    #[arg(long, value_enum, default_value = "sim")]
    env: Env,
    /// The instrument, as both venues spell it.
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    /// Print every event as a JSON line.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let markets: [MarketId; 2] = [binance::spec::SPOT, bybit::spec::LINEAR];

    let mut builder = Feed::builder();
    // Kept alive for as long as the feed runs.
    let mut sim = None;
    match args.env {
        Env::Sim => {
            let s = ferrofeed::simulated::start(&markets).await?;
            builder = builder.simulator(&s);
            sim = Some(s);
        }
        Env::Testnet => builder = builder.environment(Environment::Testnet),
        Env::Production => builder = builder.environment(Environment::Production),
    }
    let mut feed = builder
        .subscribe(markets[0], Channel::Trades, &args.symbol)
        .subscribe(markets[1], Channel::Trades, &args.symbol)
        .build()
        .await?;

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
        if args.json {
            println!("{}", serde_json::to_string(&event)?);
            continue;
        }
        match &event.kind {
            EventKind::Trade(t) => println!(
                "{}:{} {} {} {} @ {} id={}",
                event.venue.name(),
                event.market.name(),
                event.symbol.as_deref().unwrap_or(""),
                if t.side == Side::Buy { "buy" } else { "sell" },
                t.qty,
                t.price,
                t.trade_id,
            ),
            // Connections, reconnects, gaps (with their extent): never silent.
            _ => eprintln!("{}", serde_json::to_string(&event)?),
        }
    }
    feed.shutdown().await;
    if let Some(s) = sim {
        s.shutdown().await;
    }
    Ok(())
}
