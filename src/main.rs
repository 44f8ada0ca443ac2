//! The `ferrofeed` command.
//!
//! Subcommands: `demo` (the embedded simulator, the client, faults injected
//! and recovered, a live view), `stream` (normalized JSON lines), `record` and
//! `replay` (crash-safe capture files), `export parquet` (captures to
//! Parquet files), `sim` (the exchange simulator),
//! `decode` (raw frames in, normalized JSON lines out) and `book replay` (a
//! snapshot and diff frames through the book sync rule), `bench` (end-to-end
//! throughput, latency, book and scale measurements against the simulator),
//! `chaos` (a soak under random faults, every message accounted for) and
//! `tail` (read back what `record --sink nats://` published).

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{Context, bail};

mod cli;
use clap::{Parser, Subcommand};
use ferrofeed::client::{Client, MarketId};
use ferrofeed_sim::{LoadConfig, Sim, SimConfig, SymbolSpec};

#[derive(Debug, Parser)]
#[command(name = "ferrofeed", version, about = "Resilient, lossless crypto-exchange WebSocket feeds")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the exchange simulator (Binance; Bybit v5 public with
    /// --markets bybit-linear,bybit-spot,bybit-inverse,bybit-option) on loopback until Ctrl-C.
    ///
    /// Prints one JSON line per market with its WebSocket and REST base URLs
    /// (Bybit: also the full public URL), then serves. Fault injection and
    /// ground truth: the /admin API on each port (docs/sim.md).
    ///
    /// Example: ferrofeed sim --port-base 9400 --seed 7 --markets spot,usdm,bybit-linear
    #[command(verbatim_doc_comment)]
    Sim(SimArgs),
    /// Measure: end-to-end throughput (e2e), latency, local-book speed (book)
    /// and many streams (scale) against the simulator in a separate process.
    /// Benchmarks measure and never fail on a number; they fail only on loss.
    ///
    /// Examples:
    ///   ferrofeed bench e2e --messages 2000000
    ///   ferrofeed bench latency --rate 100000 --seconds 10 --json
    ///   ferrofeed bench book
    ///   ferrofeed bench scale --streams 10000
    #[command(verbatim_doc_comment, subcommand)]
    Bench(cli::bench::BenchCmd),
    /// Show the system working offline: the simulator (Binance spot and USD-M, Bybit
    /// linear) in-process, one feed over a few symbols of each (trades, depth,
    /// tickers) with three local books, and a fault injected every 3 s (kill,
    /// stall, dropped diff, in turn on each market) with the recovery shown.
    ///
    /// On a terminal: a live view of every connection (state, epoch, messages/s,
    /// reconnects), every stream's rate, a 10-level ladder and the recent trades of
    /// one symbol, and the gap, resync and rate-limit counters; `q` or Ctrl-C quits.
    /// When stdout is not a terminal: progress lines, then one JSON summary that
    /// accounts for every BTCUSDT trade id (delivered, or inside a reported gap).
    ///
    /// Examples:
    ///   ferrofeed demo
    ///   ferrofeed demo --symbol ETHUSDT
    ///   ferrofeed demo --duration 10s | cat
    #[command(verbatim_doc_comment)]
    Demo {
        /// Exit after this long, e.g. `10s`, `500ms`, `2m` (default: until `q` in
        /// the live view; 10s when stdout is not a terminal).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// The spot symbol of the ladder and recent trades (and of the summary's `book`).
        #[arg(long, default_value = "BTCUSDT")]
        symbol: String,
        /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100; port 0
        /// picks a free one). The address is printed on standard error.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Soak a feed under random faults and account for every message.
    ///
    /// Runs the simulator in-process with the first two markets of every venue
    /// in the registry (Binance spot and USD-M, Bybit spot and linear), one feed
    /// with trades and tickers of two symbols and a local book of one on each,
    /// and injects, at random from --seed (same seed, same schedule): kills
    /// (close frame and TCP reset), stalls, dropped book messages, floods of
    /// malformed frames and of data on unsubscribed streams, oversized frames,
    /// rate-limited snapshot answers and id resets. At the end the markets are
    /// paused and the feed drained; then it prints, per stream, what the
    /// simulator produced, what was delivered, in gaps and duplicated, every
    /// book compared with the simulator's truth, peak RSS and the recovery-time
    /// distribution (disconnect to first data).
    ///
    /// Exit code 1 on any silent loss, duplicate, wrong book, panic or
    /// unbounded growth (peak RSS over 64 MiB, a queue over its capacity).
    ///
    /// Examples:
    ///   ferrofeed chaos --duration 60s
    ///   ferrofeed chaos --duration 10m --json --seed 7
    #[command(verbatim_doc_comment)]
    Chaos {
        /// How long faults are injected, e.g. `60s`, `10m`.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        duration: Duration,
        /// Print one JSON report object instead of the text report.
        #[arg(long)]
        json: bool,
        /// Seed of the fault schedule and the simulator's data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Decode raw venue frames (one per line) into normalized JSON event lines.
    ///
    /// Reads frames exactly as received from the venue's WebSocket, one per line,
    /// from FILE or standard input (`-`), raw payloads or combined-stream
    /// envelopes alike. Prints one JSON line per event on standard output, in the
    /// format of docs/events.md; an array frame (e.g. `!miniTicker@arr`) prints one
    /// line per element. `receive_ts` is the time the line was read. Blank lines
    /// are skipped.
    ///
    /// A line that cannot be decoded is reported on standard error as
    /// `line N: <error>` and decoding goes on; the exit code is 1 if any line
    /// failed, 0 otherwise.
    ///
    /// Examples:
    ///   ferrofeed decode --venue binance --market spot frames.jsonl
    ///   ferrofeed decode --venue bybit --market linear bybit_frames.jsonl
    ///   cat frames.jsonl | ferrofeed decode --venue binance --market usdm -
    #[command(verbatim_doc_comment)]
    Decode(DecodeArgs),
    /// Record normalized events to crash-safe, zstd-compressed JSON-lines files.
    ///
    /// Runs the feeds of a TOML file (--config; format in docs/record.md, example
    /// in examples/feeds.toml; env = "sim" starts the simulator in-process) and
    /// appends every event, one JSON line in the format of docs/events.md, to
    /// DIR/<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst (UTC hour of receive_ts).
    ///
    /// Each file is a sequence of independent zstd frames: a market's pending
    /// records are compressed into one frame, appended and fsync'd every
    /// --flush-records records, --flush-bytes bytes or --flush-interval, whichever
    /// comes first; only then are they "acknowledged". `zstdcat FILE` reads a
    /// whole file. On start, the newest file of every venue/market under DIR is
    /// checked frame by frame and cut at the first incomplete or corrupt frame
    /// (what a crash or kill -9 leaves); what was kept and cut is reported.
    ///
    /// Standard error: the check results, then a progress line (in place on a
    /// terminal, else a plain line every --progress-interval) with the received
    /// and acknowledged counts. SIGINT or SIGTERM (or --duration) stops cleanly:
    /// close frames sent, every batch written and synced, then one JSON summary
    /// line on standard output (records per market and file, acknowledged, gaps,
    /// compression, files repaired). Exit code 1 on a config or write error.
    ///
    /// With --sink nats://HOST:PORT (or [nats] in the feeds file) every event is
    /// also, or without --out only, published to NATS JetStream with a message id
    /// from the venue's identity, so hot-standby collectors store it once; losses
    /// beyond the bounded buffer are counted and reported as gaps (docs/nats.md).
    /// --shard K/N records one deterministic share of the feeds file.
    /// --parquet DIR converts each hour to Parquet as it closes (docs/parquet.md).
    ///
    /// Examples:
    ///   ferrofeed record --config examples/feeds.toml --out capture
    ///   ferrofeed record --config feeds.toml --out /data/ticks --duration 1h --level 9
    ///   ferrofeed record --config feeds.toml --sink nats://127.0.0.1:4222 --shard 0/2
    ///   ferrofeed record --config feeds.toml --out capture --parquet pq
    #[command(verbatim_doc_comment)]
    Record(cli::record::RecordArgs),
    /// Print recorded events (capture files of `ferrofeed record`) as JSON lines.
    ///
    /// Reads each FILE in the order given; a directory stands for every
    /// *.jsonl.zst below it, in name order. Prints every recorded line as it is
    /// (the format of docs/events.md), paced by receive_ts: --speed 1 keeps the
    /// original pacing, 10 plays ten times faster, max as fast as possible.
    ///
    /// A file that is missing is an error before anything is printed. An
    /// incomplete or corrupt frame (a file still being written, or torn by a
    /// crash) or a line that is not an event is reported on standard error with
    /// the file, byte offset or line number; replay goes on with the next file
    /// or line and the exit code is 1.
    ///
    /// Examples:
    ///   ferrofeed replay --speed max capture/binance/spot/2026-05-01/13.jsonl.zst
    ///   ferrofeed replay --speed 10 capture/binance/usdm | jq -c 'select(.type=="gap")'
    #[command(verbatim_doc_comment)]
    Replay(cli::record::ReplayArgs),
    /// Convert recorded captures into other formats: `export parquet`
    /// (one Parquet file per venue, market, event type and hour; docs/parquet.md).
    #[command(subcommand)]
    Export(cli::export::ExportCmd),
    /// Stream normalized market data as JSON lines on standard output.
    ///
    /// Subscriptions are VENUE:MARKET:STREAM with the venue's stream names, or
    /// the friendlier --trades / --agg-trades / --tickers / --book SYMBOL forms
    /// (on --market, default spot). One JSON event per line on standard output,
    /// in the format of docs/events.md. Status events (connected, disconnected,
    /// reconnected, gap, subscription_failed, gave_up, error) go to standard
    /// error as JSON lines, or inline with --status. --book keeps a local order
    /// book: book_snapshot once in sync, book_update per diff, book_resync when a
    /// gap is found (the socket is not reconnected for it).
    ///
    /// Symbols are checked against the venue's exchangeInfo before anything is
    /// subscribed. Ctrl-C or SIGTERM stops cleanly (output flushed, close frames
    /// sent).
    ///
    /// Examples:
    ///   ferrofeed stream --env sim --trades BTCUSDT --book ETHUSDT
    ///   ferrofeed stream binance:spot:btcusdt@trade binance:usdm:ethusdt@depth@100ms
    ///   ferrofeed stream --env testnet --market usdm --agg-trades BTCUSDT --status
    ///   ferrofeed stream --env sim --book BTCUSDT --metrics 127.0.0.1:9100 --duration 1m
    #[command(verbatim_doc_comment)]
    Stream(cli::stream::StreamArgs),
    /// Stream one account's private events (order_update, user_trade,
    /// balance_update, position_update) as JSON lines, Binance or Bybit.
    ///
    /// Credentials come from the environment only: FERROFEED_API_KEY with
    /// FERROFEED_API_SECRET (HMAC), FERROFEED_ED25519_PEM (a PEM file) or
    /// FERROFEED_ED25519_SEED (64 hex digits). Binance spot needs an Ed25519
    /// key (session.logon). With --env sim and none set, the simulator's test
    /// account is used. A refused credential ends the command (exit 1).
    ///
    /// Examples:
    ///   FERROFEED_API_KEY=.. FERROFEED_ED25519_PEM=key.pem ferrofeed user --venue binance --account spot
    ///   FERROFEED_API_KEY=.. FERROFEED_API_SECRET=.. ferrofeed user --venue bybit --env testnet
    ///   ferrofeed user --venue binance --account usdm --env sim --status
    #[command(verbatim_doc_comment)]
    User(cli::user::UserArgs),
    /// Place, amend or cancel orders, cancel all, or list open orders, over
    /// the venue's authenticated WebSocket; prints the typed answer (or the
    /// venue's typed refusal) as one JSON line. A request whose answer was
    /// lost says its outcome is unknown. Exit status 1 when the request did
    /// not succeed.
    ///
    /// Credentials come from the environment only: FERROFEED_API_KEY with
    /// FERROFEED_API_SECRET. With --env sim and none set, the simulator's test
    /// account is used.
    ///
    /// Examples:
    ///   ferrofeed order place --venue deribit --env sim --symbol BTC-PERPETUAL --side buy --qty 10
    ///   ferrofeed order place --venue deribit --env testnet --symbol BTC-PERPETUAL --side sell --qty 10 --price 120000 --post-only --client-id my-1
    ///   ferrofeed order cancel --venue deribit --env testnet --symbol BTC-PERPETUAL --client-id my-1
    ///   ferrofeed order open --venue deribit --env testnet --symbol BTC-PERPETUAL
    #[command(verbatim_doc_comment, subcommand)]
    Order(cli::order::OrderCmd),
    /// Print the events a NATS JetStream stream holds (what `record --sink`
    /// published), one JSON line each, then follow new ones.
    ///
    /// Reads through an ephemeral ordered consumer: nothing is acknowledged or
    /// changed on the server. Subjects: ferrofeed.<venue>.<market>.<type>.<SYMBOL>
    /// and ferrofeed.<venue>.<market>.status.<collector> (docs/nats.md).
    ///
    /// Examples:
    ///   ferrofeed tail nats://127.0.0.1:4222 --subject 'ferrofeed.binance.spot.trade.>'
    ///   ferrofeed tail nats://127.0.0.1:4222 --deliver new --count 10
    ///   ferrofeed tail nats://127.0.0.1:4222 --no-follow --meta > dump.jsonl
    #[command(verbatim_doc_comment)]
    Tail(cli::tail::TailArgs),
    /// Local order books.
    #[command(subcommand)]
    Book(BookCmd),
}

#[derive(Debug, Subcommand)]
enum BookCmd {
    /// Replay a REST depth snapshot and a file of raw diff frames through the
    /// book sync rule, and print the resulting book as one JSON line.
    ///
    /// The snapshot is the body of GET /api/v3/depth (spot) or /fapi/v1/depth
    /// (usdm). The updates file holds diff frames exactly as received, one per
    /// line, raw or in the combined envelope, in arrival order. Diffs already
    /// contained in the snapshot are dropped; the first remaining one must
    /// bridge it (spot: U <= lastUpdateId+1 <= u; futures: U <= lastUpdateId <= u)
    /// and each later one must continue the chain (spot: U == previous u + 1;
    /// futures: pu == previous u). At the first gap the replay stops applying and
    /// reports it in `gaps`.
    ///
    /// Output: {"symbol","last_update_id","bids":[[price,qty],...],"asks":[...],
    /// "applied":N,"dropped":N,"gaps":N}, bids and asks best first, at most
    /// --depth levels each. Exit code 1 if a line cannot be decoded.
    ///
    /// Bybit (--venue bybit --market linear|spot|inverse|option) takes no
    /// --snapshot: the first orderbook snapshot frame in --updates starts the
    /// book, deltas must continue `u` by one, and a later snapshot restarts it.
    ///
    /// Examples:
    ///   ferrofeed book replay --venue binance --market spot \
    ///     --snapshot BLZETH/rest_depth_snapshot.json --updates BLZETH/depth_updates.jsonl --depth 5
    ///   ferrofeed book replay --venue bybit --market linear --updates linear_BTCUSDT/orderbook.jsonl
    #[command(verbatim_doc_comment)]
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The venue (binance, bybit).
    #[arg(long)]
    venue: String,
    /// The market as the venue spells it (binance: spot, usdm, coinm,
    /// options; bybit: spot, linear, inverse, option).
    #[arg(long)]
    market: String,
    /// REST depth snapshot body (JSON), for venues whose books start from a
    /// REST snapshot (binance). Venues that send the snapshot on the stream
    /// (bybit) take none: the first snapshot frame of --updates starts the book.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<String>,
    /// Diff frames, one per line.
    #[arg(long, value_name = "FILE.jsonl")]
    updates: String,
    /// Levels per side to print (default: all).
    #[arg(long)]
    depth: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct DecodeArgs {
    /// The venue that sent the frames (binance, bybit).
    #[arg(long)]
    venue: String,
    /// The market the frames came from, as the venue spells it (binance:
    /// spot, usdm, coinm, options; bybit: spot, linear, inverse, option).
    #[arg(long)]
    market: String,
    /// File of frames, one per line; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: String,
}

#[derive(Debug, clap::Args)]
struct SimArgs {
    /// First port; markets get consecutive ports in the order of --markets.
    /// Default: free ports chosen by the OS.
    #[arg(long)]
    port_base: Option<u16>,
    /// Seed of the market-data generator (same seed, same data sequence).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Markets to serve, comma separated, as VENUE:MARKET (binance:usdm,
    /// bybit:linear) or VENUE-MARKET (bybit-linear); a bare market name is
    /// the first registered venue's (binance: spot, usdm, coinm, options).
    #[arg(long, value_delimiter = ',', default_value = "spot,usdm,coinm,options")]
    markets: Vec<String>,
    /// Replace the default symbols with N synthetic ones (S0000USDT, ...).
    #[arg(long)]
    synthetic_symbols: Option<usize>,
    /// Multiply every data cadence (0.1 = ten times faster).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Keep the true book after each of the last N depth windows per symbol,
    /// readable at /admin/book?update_id= (to check a client's local books).
    #[arg(long, default_value_t = 0)]
    book_history: usize,
    /// Serve load streams of N sequenced frames each (docs/sim.md, "Load
    /// mode"): Binance `loadusdt@trade` (every Binance market) and
    /// `load<k>usdt@depth@100ms` diffs of --load-books books with their REST
    /// snapshots (spot); Bybit `publicTrade.LOADUSDT` (spot, linear, inverse).
    #[arg(long)]
    load_messages: Option<u64>,
    /// Load stream rate in frames per second (default: as fast as the client reads).
    #[arg(long, requires = "load_messages")]
    load_rate: Option<u64>,
    /// Books of the spot depth load form (LOAD0USDT ...); its N diffs go to them in turn.
    #[arg(long, default_value_t = 1, requires = "load_messages", value_parser = clap::value_parser!(u64).range(1..=1000))]
    load_books: u64,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    // Past a century, adding it to a clock could overflow; nobody means it.
    if !secs.is_finite() || !(0.0..=MAX_DURATION_SECS).contains(&secs) {
        return Err(format!("invalid duration {s:?}: expected 0 to {MAX_DURATION_SECS} seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// The longest duration an argument may give (100 years).
const MAX_DURATION_SECS: f64 = 100.0 * 365.0 * 86_400.0;

/// Seconds as a positive, finite number no larger than a day (`bench`).
pub(crate) fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("expected a number of seconds above 0 and at most 86400, got {s:?}")),
    }
}

/// A `--markets` entry: `venue:market`, `venue-market`, or a bare market of
/// the first registered venue.
fn parse_sim_market(name: &str) -> anyhow::Result<MarketId> {
    let name = name.trim();
    if name.contains(':') {
        return cli::parse_market(name);
    }
    for venue in ferrofeed::venues::registry::names() {
        if let Some(m) = name.strip_prefix(venue).and_then(|r| r.strip_prefix('-')) {
            return cli::venue_market(venue, m);
        }
    }
    let first = ferrofeed::venues::registry::names().first().copied().unwrap_or_default();
    cli::venue_market(first, name).map_err(|_| {
        let all: Vec<String> = ferrofeed::venues::registry::all_markets()
            .into_iter()
            .map(|m| {
                if m.venue_name() == first { m.name().to_string() } else { format!("{}-{}", m.venue_name(), m.name()) }
            })
            .collect();
        anyhow::anyhow!("unknown market {name:?}: expected VENUE:MARKET or one of {}", all.join(", "))
    })
}

fn sim_config(a: &SimArgs) -> anyhow::Result<SimConfig> {
    if !(a.time_scale > 0.0 && a.time_scale.is_finite()) {
        bail!("--time-scale must be a positive number, got {}", a.time_scale);
    }
    let markets = a.markets.iter().map(|m| parse_sim_market(m)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut cfg = cli::sim_config_for(&markets)?;
    for m in &mut cfg.markets {
        if let Some(n) = a.synthetic_symbols {
            m.symbols = SymbolSpec::synthetic(n);
        }
        m.timing.scale = a.time_scale;
        m.book_history = a.book_history;
        if let Some(n) = a.load_messages {
            let mut load = LoadConfig::new(n, a.load_rate);
            load.books = a.load_books as usize;
            m.load = Some(load);
        }
    }
    cfg.seed = a.seed;
    if let Some(p) = a.port_base {
        cfg = cfg.with_port_base(p);
    }
    Ok(cfg)
}

async fn run_sim(a: SimArgs) -> anyhow::Result<()> {
    let sim = Sim::start(sim_config(&a)?).await.context("binding the simulator's ports")?;
    for m in sim.markets() {
        let (venue, market) = m.config().venue_market();
        let mut line = serde_json::json!({"venue": venue, "market": market, "ws": m.ws_url(), "rest": m.rest_url()});
        if let Some(url) = m.bybit_url() {
            line["url"] = url.into();
        }
        println!("{line}");
    }
    cli::signal::shutdown().await;
    sim.shutdown().await;
    Ok(())
}

fn run_book_replay(a: &ReplayArgs) -> anyhow::Result<()> {
    let market = cli::venue_market(&a.venue, &a.market)?;
    let updates = std::fs::read_to_string(&a.updates).with_context(|| format!("reading {}", a.updates))?;
    let spec = Client::spec(market)?;
    let rest = matches!(spec.book_plan(market.market, "X", 0).recovery, ferrofeed::venues::seam::Recovery::Rest { .. });
    let snapshot = match (&a.snapshot, rest) {
        (Some(path), true) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?),
        (None, true) => bail!("--snapshot FILE is required for {}: its books start from a REST snapshot", a.venue),
        (Some(_), false) => {
            bail!("--snapshot is not used for {}: its books start from the first snapshot frame in --updates", a.venue)
        }
        (None, false) => None,
    };
    let r = ferrofeed::books::replay(market, snapshot.as_deref(), &updates, a.depth)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// Decodes every line; returns how many lines failed.
fn run_decode(a: &DecodeArgs) -> anyhow::Result<u64> {
    let vm = cli::venue_market(&a.venue, &a.market)?;
    let input: Box<dyn BufRead> = if a.input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&a.input).with_context(|| format!("opening {}", a.input))?;
        Box::new(std::io::BufReader::new(f))
    };
    decode_lines(vm, input, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn decode_lines(
    vm: MarketId,
    mut input: impl BufRead,
    out: &mut impl Write,
    err: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(out);
    let mut buf = Vec::new();
    let (mut line_no, mut failed) = (0u64, 0u64);
    let mut decoder = Client::spec(vm)?.decoder(vm.market);
    let mut events = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).context("reading frames")? == 0 {
            break;
        }
        line_no += 1;
        let line = match std::str::from_utf8(&buf) {
            Ok(s) => s.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(s),
            Err(e) => {
                failed += 1;
                writeln!(err, "line {line_no}: not UTF-8 text: {e}")?;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        events.clear();
        match decoder.decode(line, now_ns(), &mut events) {
            Ok(()) => {
                for e in &events {
                    serde_json::to_writer(&mut out, e).context("writing an event")?;
                    out.write_all(b"\n")?;
                }
            }
            Err(e) => {
                failed += 1;
                // Keep stdout and stderr in input order when both go to one terminal.
                out.flush()?;
                writeln!(err, "line {line_no}: {e}")?;
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        writeln!(err, "ferrofeed decode: {failed} of {line_no} lines failed")?;
    }
    Ok(failed)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // A venue or market the registry does not know is a usage error (exit 2),
    // like any other bad argument.
    let checked = match &cli.cmd {
        Cmd::Decode(a) => Some((&a.venue, &a.market)),
        Cmd::Book(BookCmd::Replay(a)) => Some((&a.venue, &a.market)),
        _ => None,
    };
    if let Some((venue, market)) = checked
        && let Err(e) = cli::venue_market(venue, market)
    {
        use clap::CommandFactory;
        Cli::command().error(clap::error::ErrorKind::InvalidValue, format!("{e:#}")).exit();
    }
    let r = match cli.cmd {
        Cmd::Sim(a) => run_sim(a).await,
        Cmd::Bench(c) => cli::bench::run(c).await,
        Cmd::Record(a) => cli::record::run_record(a).await,
        Cmd::Replay(a) => cli::record::run_replay(&a),
        Cmd::Export(c) => cli::export::run(&c),
        Cmd::Chaos { duration, json, seed } => cli::chaos::run(duration, json, seed).await,
        Cmd::Demo { duration, symbol, metrics } => cli::demo::run_demo(duration, &symbol, metrics).await,
        Cmd::Stream(a) => cli::stream::run_stream(a).await,
        Cmd::User(a) => cli::user::run_user(a).await,
        Cmd::Order(c) => cli::order::run(c).await,
        Cmd::Tail(a) => cli::tail::run_tail(a).await,
        Cmd::Book(BookCmd::Replay(a)) => run_book_replay(&a),
        Cmd::Decode(a) => match run_decode(&a) {
            Ok(0) => Ok(()),
            Ok(_) => return std::process::ExitCode::FAILURE,
            Err(e) => Err(e),
        },
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrofeed: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject_garbage() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5parsecs").is_err());
        // Finite but beyond any clock: an error, not a panic.
        assert!(parse_duration("1e300").is_err() && parse_duration("1e300h").is_err());
        assert!(parse_duration("inf").is_err() && parse_duration("NaN").is_err());
        assert!(parse_seconds("inf").is_err() && parse_seconds("0").is_err() && parse_seconds("1e9").is_err());
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
    }

    #[test]
    fn decode_lines_reports_bad_lines_and_goes_on() {
        let input: &[u8] = b"{\"e\":\"trade\",\"E\":1,\"s\":\"btcusdt\",\"t\":7,\"p\":\"1.50\",\"q\":\"2\",\"T\":2,\"m\":true}\r\n\nnope\n\xff\n";
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let failed = decode_lines(ferrofeed::venues::binance::spec::SPOT, input, &mut out, &mut err).expect("io");
        assert_eq!(failed, 2);
        let out = String::from_utf8(out).expect("utf8");
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).expect("one JSON line");
        assert_eq!(
            (v["type"].as_str(), v["symbol"].as_str(), v["price"].as_str()),
            (Some("trade"), Some("BTCUSDT"), Some("1.50"))
        );
        let err = String::from_utf8(err).expect("utf8");
        assert!(err.contains("line 3: malformed JSON"), "{err}");
        assert!(err.contains("line 4: not UTF-8"), "{err}");
    }
}
