//! `ferrofeed stream`: subscriptions in, normalized JSON lines out.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use ferrofeed::client::{Client, ClientConfig, Environment, MarketId};
use ferrofeed::feed::{Feed, FeedConfig};
use ferrofeed::model::event::{Event, EventKind};
use ferrofeed::venues::Channel;
use ferrofeed_sim::Sim;

/// What to subscribe, parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Sub {
    /// A venue stream as the venue spells it, decoded into market-data events.
    Stream(MarketId, String),
    /// A local book.
    Book(MarketId, String),
}

impl Sub {
    fn market(&self) -> MarketId {
        match self {
            Sub::Stream(m, _) | Sub::Book(m, _) => *m,
        }
    }
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
    let market = super::venue_market(venue, market).with_context(|| format!("subscription {s:?}"))?;
    Ok(Sub::Stream(market, stream.to_string()))
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

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct StreamArgs {
    /// Subscriptions as VENUE:MARKET:STREAM, e.g. binance:spot:btcusdt@trade
    /// binance:usdm:ethusdt@depth@100ms (stream names as the venue spells them).
    /// Bybit topics as bybit:CATEGORY:TOPIC, e.g. bybit:linear:publicTrade.BTCUSDT.
    #[arg(value_name = "SUB", value_parser = parse_sub_arg)]
    subs: Vec<Sub>,
    /// Venue of the --trades, --agg-trades, --tickers and --book symbols
    /// (binance, bybit).
    #[arg(long, default_value = "binance")]
    venue: String,
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
    /// Points one market at any server, as VENUE:MARKET=URL (repeatable), e.g.
    /// binance:spot=ws://127.0.0.1:9400 (the simulator, a testnet, a proxy);
    /// REST on the same host and port.
    #[arg(long = "url", value_name = "VENUE:MARKET=URL", value_parser = super::parse_url_override)]
    urls: Vec<(MarketId, String)>,
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
        let friendly =
            !(self.trades.is_empty() && self.agg_trades.is_empty() && self.tickers.is_empty() && self.book.is_empty());
        if friendly {
            let m = super::venue_market(&self.venue, &self.market)?;
            for (syms, channel) in [
                (&self.trades, Channel::Trades),
                (&self.agg_trades, Channel::AggTrades),
                (&self.tickers, Channel::TopOfBook),
            ] {
                for s in syms {
                    let stream = Client::stream_name(m, &channel, &valid_symbol(s)?)
                        .with_context(|| format!("--{} {s}", channel.name().replace('_', "-")))?;
                    out.insert(Sub::Stream(m, stream));
                }
            }
            for s in &self.book {
                out.insert(Sub::Book(m, valid_symbol(s)?));
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

/// The client configuration for `env` and the `--url` overrides; with
/// `--env sim`, the simulator serving `markets` (keep it alive while the
/// client runs).
pub(crate) async fn client_for(
    env: &Env,
    urls: &[(MarketId, String)],
    markets: &BTreeSet<MarketId>,
) -> anyhow::Result<(ClientConfig, Option<Sim>)> {
    let mut client = ClientConfig::default();
    let mut sim = None;
    match env {
        Env::Production => client.environment = Environment::Production,
        Env::Testnet => client.environment = Environment::Testnet,
        Env::Url(ws) => client.environment = Environment::custom(ws),
        Env::Sim => {
            let need: Vec<MarketId> = markets.iter().copied().filter(|m| !urls.iter().any(|(u, _)| u == m)).collect();
            let s = Sim::start(super::sim_config_for(&need)?).await.context("starting the simulator")?;
            client.overrides = super::sim_overrides(&s)?;
            sim = Some(s);
        }
    }
    for (m, url) in urls {
        client.overrides.insert(*m, Environment::custom(url));
    }
    Ok((client, sim))
}

pub(crate) async fn run_stream(a: StreamArgs) -> anyhow::Result<()> {
    let subs = a.all_subs()?;
    let markets: BTreeSet<MarketId> = subs.iter().map(Sub::market).collect();
    let (client, _sim) = client_for(&a.env, &a.urls, &markets).await?;
    let mut books = ferrofeed::books::BookConfig::default();
    if let Some(d) = a.book_depth {
        books.publish_depth = d;
    }
    let mut feed = Feed::new(FeedConfig { client, books });
    // The instrument registry refuses unknown symbols before anything is sent,
    // on every venue that publishes one.
    for m in &markets {
        if Client::spec(*m)?.instruments_request(m.market).is_some() {
            feed.load_instruments(*m).await.with_context(|| format!("loading {m} instruments"))?;
        }
    }
    let metrics = super::start_metrics(a.metrics, feed.stats()).await?;
    for s in &subs {
        match s {
            Sub::Stream(m, stream) => feed.subscribe(*m, std::slice::from_ref(stream)).await?,
            Sub::Book(m, symbol) => feed.track_book(*m, symbol).await?,
        }
    }

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
            ev = feed.next() => {
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
        use ferrofeed::venues::{binance, bybit};
        assert_eq!(
            parse_sub("binance:usdm:ethusdt@depth@100ms").unwrap(),
            Sub::Stream(binance::spec::USDM, "ethusdt@depth@100ms".into())
        );
        assert_eq!(
            parse_sub("bybit:linear:publicTrade.BTCUSDT").unwrap(),
            Sub::Stream(bybit::spec::LINEAR, "publicTrade.BTCUSDT".into())
        );
        assert!(super::super::parse_url_override("binance:spot=ws://127.0.0.1:1").is_ok());
        assert!(super::super::parse_url_override("binance:spot=http://x").is_err());
        assert!(super::super::parse_url_override("nope:spot=ws://x").is_err());
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
        assert!(valid_symbol("BTC USDT").is_err());
    }
}
