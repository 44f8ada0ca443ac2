//! `ferrofeed stream`: subscriptions in, normalized JSON lines out.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use ferrofeed::binance::{BinanceConfig, Environment, Market};
use ferrofeed::bybit::{BybitConfig, Category, Environment as BybitEnvironment};
use ferrofeed::bybit_books::BybitBookConfig;
use ferrofeed::bybit_feed::{BybitFeed, BybitFeedConfig};
use ferrofeed::feed::{Feed, FeedConfig};
use ferrofeed::model::event::{Event, EventKind};
use ferrofeed_sim::{BybitCategory, MarketConfig, MarketKind, Sim, SimConfig};

/// What to subscribe, parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Sub {
    /// A venue stream, decoded into market-data events.
    Stream(Market, String),
    /// A local book.
    Book(Market, String),
    /// A Bybit public topic, decoded into market-data events.
    BybitTopic(Category, String),
    /// A Bybit local book.
    BybitBook(Category, String),
}

/// The venue of the friendly flags (--trades, --tickers, --book).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum VenueArg {
    /// Binance (markets spot, usdm, coinm, options).
    Binance,
    /// Bybit v5 (markets spot, linear, inverse, option).
    Bybit,
}

fn parse_category(s: &str) -> anyhow::Result<Category> {
    Category::from_name(s)
        .with_context(|| format!("unknown bybit market {s:?} (expected spot, linear, inverse or option)"))
}

fn parse_market(s: &str) -> anyhow::Result<Market> {
    Ok(match s {
        "spot" => Market::Spot,
        "usdm" => Market::UsdM,
        "coinm" => Market::CoinM,
        "options" => Market::Options,
        other => bail!("unknown market {other:?} (expected spot, usdm, coinm or options)"),
    })
}

/// `binance:spot:btcusdt@trade` → the spot stream `btcusdt@trade`;
/// `bybit:linear:publicTrade.BTCUSDT` → the linear topic `publicTrade.BTCUSDT`.
pub(crate) fn parse_sub(s: &str) -> anyhow::Result<Sub> {
    let mut parts = s.splitn(3, ':');
    let (Some(venue), Some(market), Some(stream)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("subscription {s:?} is not VENUE:MARKET:STREAM (e.g. binance:spot:btcusdt@trade)");
    };
    if stream.is_empty() || stream.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("subscription {s:?}: empty or malformed stream name");
    }
    match venue {
        "binance" => {
            let market = parse_market(market).with_context(|| format!("subscription {s:?}"))?;
            Ok(Sub::Stream(market, stream.to_string()))
        }
        "bybit" => {
            let category = parse_category(market).with_context(|| format!("subscription {s:?}"))?;
            Ok(Sub::BybitTopic(category, stream.to_string()))
        }
        _ => bail!("subscription {s:?}: unknown venue {venue:?} (supported: binance, bybit)"),
    }
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Env {
    /// The venue's production endpoints.
    Production,
    /// The venue's testnet.
    Testnet,
    /// The embedded simulator.
    Sim,
    /// One base URL for every market (`ws://127.0.0.1:9400`; REST on the same
    /// host and port over http, or https for wss).
    Url(String),
}

pub(crate) fn parse_env(s: &str) -> Result<Env, String> {
    match s {
        "production" => Ok(Env::Production),
        "testnet" => Ok(Env::Testnet),
        "sim" => Ok(Env::Sim),
        u if u.starts_with("ws://") || u.starts_with("wss://") => Ok(Env::Url(u.trim_end_matches('/').to_string())),
        other => Err(format!("expected production, testnet, sim or a ws:// or wss:// base URL, got {other:?}")),
    }
}

pub(crate) fn rest_of(ws: &str) -> String {
    if let Some(rest) = ws.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        format!("http://{}", ws.trim_start_matches("ws://"))
    }
}

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct StreamArgs {
    /// Subscriptions as VENUE:MARKET:STREAM, e.g. binance:spot:btcusdt@trade
    /// binance:usdm:ethusdt@depth@100ms (stream names as the venue spells them).
    /// Bybit topics as bybit:CATEGORY:TOPIC, e.g. bybit:linear:publicTrade.BTCUSDT.
    #[arg(value_name = "SUB", value_parser = parse_sub_arg)]
    subs: Vec<Sub>,
    /// Venue of the --trades, --agg-trades, --tickers and --book symbols.
    #[arg(long, value_enum, default_value = "binance")]
    venue: VenueArg,
    /// Market of the --trades, --agg-trades, --tickers and --book symbols:
    /// spot, usdm, coinm or options on binance; spot, linear, inverse or
    /// option on bybit.
    #[arg(long, default_value = "spot")]
    market: String,
    /// Trades of these symbols (repeatable or comma separated).
    #[arg(long, value_delimiter = ',', value_name = "SYMBOL")]
    trades: Vec<String>,
    /// Aggregate trades of these symbols.
    #[arg(long, value_delimiter = ',', value_name = "SYMBOL")]
    agg_trades: Vec<String>,
    /// Best bid/ask (bookTicker) of these symbols.
    #[arg(long, value_delimiter = ',', value_name = "SYMBOL")]
    tickers: Vec<String>,
    /// Local order books of these symbols: book_snapshot once in sync, then
    /// book_update per diff, book_resync on a gap.
    #[arg(long, value_delimiter = ',', value_name = "SYMBOL")]
    book: Vec<String>,
    /// Levels per side of the published book_snapshot (default: all).
    #[arg(long)]
    book_depth: Option<usize>,
    /// Where to connect: production, testnet, sim (the embedded simulator) or a
    /// base URL such as ws://127.0.0.1:9400.
    #[arg(long, default_value = "production", value_parser = parse_env)]
    env: Env,
    /// Status events (connected, disconnected, reconnected, gap,
    /// subscription_failed, gave_up, error) inline on stdout instead of stderr.
    #[arg(long)]
    status: bool,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100; port 0
    /// picks a free one). The address is printed on stderr.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Stop after this long (e.g. 30s, 5m); default: until Ctrl-C or SIGTERM.
    #[arg(long, value_parser = crate::parse_duration)]
    duration: Option<Duration>,
}

fn parse_sub_arg(s: &str) -> Result<Sub, String> {
    parse_sub(s).map_err(|e| format!("{e:#}"))
}

fn valid_symbol(s: &str) -> anyhow::Result<String> {
    let t = s.trim();
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        bail!("invalid symbol {s:?}");
    }
    Ok(t.to_ascii_uppercase())
}

impl StreamArgs {
    /// Every subscription, positional and friendly forms together.
    pub(crate) fn all_subs(&self) -> anyhow::Result<BTreeSet<Sub>> {
        let mut out: BTreeSet<Sub> = self.subs.iter().cloned().collect();
        match self.venue {
            VenueArg::Binance => {
                let m = parse_market(&self.market)?;
                for (syms, suffix) in
                    [(&self.trades, "@trade"), (&self.agg_trades, "@aggTrade"), (&self.tickers, "@bookTicker")]
                {
                    for s in syms {
                        out.insert(Sub::Stream(m, format!("{}{suffix}", valid_symbol(s)?.to_ascii_lowercase())));
                    }
                }
                for s in &self.book {
                    out.insert(Sub::Book(m, valid_symbol(s)?));
                }
            }
            VenueArg::Bybit => {
                let c = parse_category(&self.market)?;
                if !self.agg_trades.is_empty() {
                    bail!("--agg-trades is binance only (bybit has publicTrade: use --trades)");
                }
                for (syms, prefix) in [(&self.trades, "publicTrade."), (&self.tickers, "tickers.")] {
                    for s in syms {
                        out.insert(Sub::BybitTopic(c, format!("{prefix}{}", valid_symbol(s)?)));
                    }
                }
                for s in &self.book {
                    out.insert(Sub::BybitBook(c, valid_symbol(s)?));
                }
            }
        }
        if out.is_empty() {
            bail!("nothing to stream: give subscriptions (binance:spot:btcusdt@trade) or --trades/--book SYMBOL");
        }
        Ok(out)
    }
}

fn is_status(k: &EventKind) -> bool {
    matches!(
        k,
        EventKind::Connected
            | EventKind::Disconnected { .. }
            | EventKind::Reconnected
            | EventKind::Gap(_)
            | EventKind::SubscriptionFailed { .. }
            | EventKind::GaveUp { .. }
            | EventKind::AuthFailed { .. }
            | EventKind::Error { .. }
    )
}

fn kind_of(m: Market) -> MarketKind {
    match m {
        Market::Spot => MarketKind::Spot,
        Market::UsdM => MarketKind::UsdM,
        Market::CoinM => MarketKind::CoinM,
        Market::Options => MarketKind::Options,
    }
}

fn sim_category(c: Category) -> Option<BybitCategory> {
    BybitCategory::ALL.into_iter().find(|b| b.name() == c.name())
}

pub(crate) async fn run_stream(a: StreamArgs) -> anyhow::Result<()> {
    let subs = a.all_subs()?;
    let mut markets: BTreeSet<Market> = BTreeSet::new();
    let mut categories: BTreeSet<Category> = BTreeSet::new();
    for s in &subs {
        match s {
            Sub::Stream(m, _) | Sub::Book(m, _) => {
                markets.insert(*m);
            }
            Sub::BybitTopic(c, _) | Sub::BybitBook(c, _) => {
                categories.insert(*c);
            }
        }
    }
    let mut client = BinanceConfig::default();
    let mut bybit_client = BybitConfig::default();
    let mut _sim = None;
    match &a.env {
        Env::Production => {
            client.environment = Environment::Production;
            bybit_client.environment = BybitEnvironment::Production;
        }
        Env::Testnet => {
            client.environment = Environment::Testnet;
            bybit_client.environment = BybitEnvironment::Testnet;
        }
        Env::Url(ws) => {
            client.environment = Environment::Custom { ws: ws.clone(), rest: rest_of(ws) };
            bybit_client.environment = BybitEnvironment::Custom { ws: ws.clone(), rest: rest_of(ws) };
        }
        Env::Sim => {
            let mut cfg = SimConfig::all_markets();
            cfg.markets.retain(|m| markets.iter().any(|x| kind_of(*x) == m.kind));
            for c in &categories {
                let Some(b) = sim_category(*c) else {
                    bail!("the simulator has no bybit {c} market");
                };
                cfg.markets.push(MarketConfig::bybit(b));
            }
            let sim = Sim::start(cfg).await.context("starting the simulator")?;
            for m in &markets {
                let h = sim.market(kind_of(*m)).context("simulated market")?;
                client.overrides.insert(*m, Environment::Custom { ws: h.ws_url(), rest: h.rest_url() });
            }
            for c in &categories {
                let h = sim_category(*c).and_then(|b| sim.bybit(b)).context("simulated bybit market")?;
                bybit_client.overrides.insert(*c, BybitEnvironment::Custom { ws: h.ws_url(), rest: h.rest_url() });
            }
            _sim = Some(sim);
        }
    }
    let mut books = ferrofeed::books::BookConfig::default();
    let mut bybit_books = BybitBookConfig::default();
    if let Some(d) = a.book_depth {
        books.publish_depth = d;
        bybit_books.publish_depth = d;
    }
    let mut feed = Feed::new(FeedConfig { client, books });
    let mut bybit = BybitFeed::new(BybitFeedConfig { client: bybit_client, books: bybit_books, ..Default::default() });
    // The instrument registry refuses unknown symbols before anything is sent.
    for m in &markets {
        feed.client().load_instruments(*m).await.with_context(|| format!("loading {m} instruments (exchangeInfo)"))?;
    }
    // One statistics handle for both venues: one metrics endpoint.
    bybit.share_stats(feed.stats());
    let metrics = super::start_metrics(a.metrics, feed.stats()).await?;
    for s in &subs {
        match s {
            Sub::Stream(m, stream) => feed.subscribe(*m, std::slice::from_ref(stream)).await?,
            Sub::Book(m, symbol) => feed.track_book(*m, symbol).await?,
            Sub::BybitTopic(c, topic) => bybit.subscribe(*c, std::slice::from_ref(topic)).await?,
            Sub::BybitBook(c, symbol) => bybit.track_book(*c, symbol).await?,
        }
    }
    let (binance_on, bybit_on) = (!markets.is_empty(), !categories.is_empty());

    let tty = std::io::stdout().is_terminal();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut flush = tokio::time::interval(Duration::from_millis(100));
    let deadline = async {
        match a.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let signal = crate::cli::signal::shutdown();
    tokio::pin!(signal);
    let result: anyhow::Result<()> = loop {
        tokio::select! {
            ev = feed.next(), if binance_on => {
                let Some(ev) = ev else { break Ok(()) };
                if let Err(e) = write_event(&ev, a.status, tty, &mut out) {
                    // A closed stdout (`| head`) ends the stream quietly.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break Ok(());
                    }
                    break Err(e.into());
                }
            }
            ev = bybit.next(), if bybit_on => {
                let Some(ev) = ev else { break Ok(()) };
                if let Err(e) = write_event(&ev, a.status, tty, &mut out) {
                    // A closed stdout (`| head`) ends the stream quietly.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break Ok(());
                    }
                    break Err(e.into());
                }
            }
            _ = flush.tick() => {
                if let Err(e) = out.flush() {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break Ok(());
                    }
                    break Err(e.into());
                }
            }
            _ = &mut deadline => break Ok(()),
            _ = &mut signal => break Ok(()),
        }
    };
    let _ = out.flush();
    drop(out);
    feed.shutdown().await;
    bybit.shutdown().await;
    if let Some(t) = metrics {
        t.abort();
    }
    result
}

pub(crate) fn write_event(ev: &Event, inline_status: bool, tty: bool, out: &mut impl Write) -> std::io::Result<()> {
    let line = serde_json::to_string(ev).map_err(std::io::Error::other)?;
    if is_status(&ev.kind) && !inline_status {
        eprintln!("{line}");
        return Ok(());
    }
    writeln!(out, "{line}")?;
    if tty {
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_sub("binance:usdm:ethusdt@depth@100ms").unwrap(),
            Sub::Stream(Market::UsdM, "ethusdt@depth@100ms".into())
        );
        assert_eq!(
            parse_sub("bybit:linear:publicTrade.BTCUSDT").unwrap(),
            Sub::BybitTopic(Category::Linear, "publicTrade.BTCUSDT".into())
        );
        for bad in [
            "binance:spot",
            "kraken:spot:x@trade",
            "binance:moon:x@trade",
            "binance:spot:",
            "binance:spot:a b",
            "bybit:usdm:publicTrade.BTCUSDT",
            "bybit:linear:",
        ] {
            assert!(parse_sub(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_env("sim"), Ok(Env::Sim));
        assert_eq!(parse_env("ws://127.0.0.1:9400/"), Ok(Env::Url("ws://127.0.0.1:9400".into())));
        assert!(parse_env("http://x").is_err());
        assert_eq!(rest_of("wss://a.b:443"), "https://a.b:443");
        assert_eq!(rest_of("ws://127.0.0.1:9400"), "http://127.0.0.1:9400");
        assert!(valid_symbol("BTC USDT").is_err());
    }
}
