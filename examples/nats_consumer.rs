//! A NATS JetStream consumer of what `ferrofeed record` publishes: every
//! stored event, decoded back into the typed model, with a running count
//! per venue, market and event type.
//!
//! Start a server and a recorder (the feeds file uses the bundled
//! simulator), then this consumer:
//!
//! ```console
//! $ nats-server -js &
//! $ cargo run --release -- record --config examples/feeds.toml --sink nats://127.0.0.1:4222 &
//! $ cargo run --example nats_consumer -- --url nats://127.0.0.1:4222
//! $ cargo run --example nats_consumer -- --subject 'ferrofeed.binance.spot.trade.>' --deliver new
//! ```
//!
//! Subjects are `<prefix>.<venue>.<market>.<type>.<symbol>` (docs/nats.md).
//! Each event prints as one line with its stream sequence; `--summary`
//! prints only the counts, every second. Credentials for a server that
//! wants them come from `FERROFEED_NATS_USER`/`_PASSWORD`, `_TOKEN` or
//! `_CREDS`, never from the URL.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use ferrofeed::model::event::{Event, EventKind};
use ferrofeed::sink::nats::{Deliver, NatsAuth, NatsReader};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Start {
    /// Everything the stream still holds.
    All,
    /// Only events stored from now on.
    New,
}

/// Reads a ferrofeed JetStream stream as typed events.
#[derive(Debug, Parser)]
struct Args {
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// The JetStream stream the recorder writes (`[nats] stream`).
    #[arg(long, default_value = "FERROFEED")]
    stream: String,
    /// Subjects to read (NATS wildcards); empty: all.
    #[arg(long, default_value = "")]
    subject: String,
    /// Where to start.
    #[arg(long, value_enum, default_value = "all")]
    deliver: Start,
    /// Print only the counts, once a second.
    #[arg(long)]
    summary: bool,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let auth = NatsAuth::from_env()?;
    let deliver = match args.deliver {
        Start::All => Deliver::All,
        Start::New => Deliver::New,
    };
    let mut reader = NatsReader::open_with(&args.url, &auth, &args.stream, &args.subject, deliver)
        .await
        .with_context(|| format!("opening the JetStream stream {:?}", args.stream))?;

    let mut counts: BTreeMap<(String, String, &'static str), u64> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
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
        tokio::select! {
            m = reader.next() => {
                let Some(m) = m else { break };
                let m = m.context("reading the stream")?;
                // Each message is one event's JSON line, exactly as `record` writes it.
                let event: Event = match serde_json::from_slice(&m.payload) {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("seq {}: not an event ({e}): {}", m.stream_sequence, String::from_utf8_lossy(&m.payload));
                        continue;
                    }
                };
                *counts
                    .entry((event.venue.name().to_string(), event.market.name().to_string(), event.kind.type_name()))
                    .or_default() += 1;
                if !args.summary {
                    println!("{} {}", m.stream_sequence, describe(&event));
                }
            }
            _ = tick.tick(), if args.summary => print_counts(&counts),
            () = &mut stop => break,
        }
    }
    print_counts(&counts);
    Ok(())
}

/// One line for an event: trades and book tops in full, anything else by type.
fn describe(e: &Event) -> String {
    let at = format!("{}:{} {}", e.venue.name(), e.market.name(), e.symbol.as_deref().unwrap_or("-"));
    match &e.kind {
        EventKind::Trade(t) => format!("{at} trade {} @ {} id={}", t.qty, t.price, t.trade_id),
        EventKind::AggTrade(t) => format!("{at} agg_trade {} @ {}", t.qty, t.price),
        EventKind::TopOfBook(b) => format!("{at} top_of_book {} / {}", b.bid_price, b.ask_price),
        EventKind::Gap(g) => format!("{at} gap on {}: {:?}", g.stream, g.missing),
        other => format!("{at} {}", other.type_name()),
    }
}

fn print_counts(counts: &BTreeMap<(String, String, &'static str), u64>) {
    let line: Vec<String> = counts.iter().map(|((v, m, t), n)| format!("{v}:{m}:{t}={n}")).collect();
    eprintln!("counts {}", line.join(" "));
}
