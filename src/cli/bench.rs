//! `ferrofeed bench`: end-to-end throughput, latency, book and scale
//! measurements against the simulator in a separate process (BENCHMARKS.md).
//!
//! Benchmarks measure; nothing here fails on a number. The only failure is
//! loss (`lost > 0`) or a run that could not complete.
//!
//! Method, shared by `e2e` and `latency`: every measured reader gets a fresh
//! simulator process (this executable re-run as `ferrofeed sim --markets spot
//! --load-messages N`), read over ws://127.0.0.1 on the same combined-stream
//! URL (`/stream?streams=loadusdt@trade`). The **reference reader** is the
//! engine's own WebSocket transport (tokio-tungstenite, `Native`), each frame
//! parsed with serde_json into a typed `{stream, data: Trade}` with exact
//! decimals and its id checked, nothing else. **ferrofeed** is the whole
//! path: `Feed` (pool → connection actor → classify and sequence → merged
//! bounded queue → decode and normalize) to a consumer that reads every trade
//! event's id, price and quantity. Both run on a current-thread tokio runtime
//! in a thread of this process; with two or more CPUs (and `taskset`) the
//! bench process is pinned to CPU 0 and the simulator to CPU 1.
//!
//! `e2e --stream depth` and `e2e --venue bybit` use the same method on the
//! simulator's other load forms (`forms.rs`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ferrofeed::client::{ClientConfig, Environment, MarketId};
use ferrofeed::engine::{ConnectSpec, Native, Overflow, Transport, WsMsg, WsStream};
use ferrofeed::feed::{Feed, FeedConfig};
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{EventKind, Level};
use serde::{Deserialize, Serialize};

mod forms;

/// The simulator's load stream.
const LOAD_STREAM: &str = "loadusdt@trade";
/// The market whose simulator serves the load stream (the simulator's load
/// generator speaks that market's protocol).
const LOAD_MARKET: &str = "binance:spot";

fn load_market() -> anyhow::Result<MarketId> {
    super::parse_market(LOAD_MARKET)
}
/// The load stream's first trade id (docs/sim.md).
const FIRST_ID: u64 = 1_000_000_000_000;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCmd {
    /// Throughput, socket to consumer: the simulator's load stream of N trade
    /// frames (as fast as the reader reads) through a minimal reference reader
    /// and through the full ferrofeed path, in the same run.
    ///
    /// --json prints one object: messages, reference_msgs_per_s,
    /// ferrofeed_msgs_per_s, ratio, lost, cpu_s, max_rss_mib (and more).
    /// Exit code 1 if anything was lost.
    ///
    /// --stream depth --books K: N diffs of the simulator's spot depth load
    /// form over K books, through a reference (serde_json typed + BTreeMap
    /// per side, synced from REST snapshots) and through ferrofeed's local
    /// books; the book of LOAD0USDT must be equal in both, and equal to the
    /// simulator's, at the end (exit code 1 otherwise).
    /// --venue bybit: N Bybit linear publicTrade.LOADUSDT messages.
    ///
    /// Examples:
    ///   ferrofeed bench e2e --messages 2000000
    ///   ferrofeed bench e2e --messages 1000000 --runs 5 --json
    ///   ferrofeed bench e2e --stream depth --books 20 --messages 500000
    ///   ferrofeed bench e2e --venue bybit --messages 1000000 --json
    #[command(verbatim_doc_comment)]
    E2e(E2eArgs),
    /// Latency, send to consumer: frames stamped with their send time (µs) at
    /// a fixed rate; p50/p99/p99.9 of (consumer receive − send) for the
    /// reference reader and for ferrofeed in the same run, and the differences.
    ///
    /// Examples:
    ///   ferrofeed bench latency --rate 100000 --seconds 10
    ///   ferrofeed bench latency --rate 50000 --seconds 5 --json
    #[command(verbatim_doc_comment)]
    Latency(LatencyArgs),
    /// Local order book: level updates applied per second on one core over a
    /// realistic diff mix (mostly near the touch, some deep, a third deletes),
    /// and top-20 reads per second. In-process; no simulator.
    ///
    /// Examples:
    ///   ferrofeed bench book
    ///   ferrofeed bench book --seconds 5 --json
    #[command(verbatim_doc_comment)]
    Book(BookArgs),
    /// Many streams: subscribes N streams (trade, aggTrade, bookTicker, depth,
    /// depth@100ms of synthetic symbols) against the simulator at a low message
    /// rate, and reports connections, resident memory, the time until every
    /// subscription was confirmed, and the floor the simulator's rate limits allow.
    ///
    /// Examples:
    ///   ferrofeed bench scale --streams 10000
    ///   ferrofeed bench scale --streams 2000 --hold 1s --json
    #[command(verbatim_doc_comment)]
    Scale(ScaleArgs),
    /// A stalled consumer: trades at --rate, read for a second, then not
    /// read at all for --stall, then read again. Reports this process's
    /// resident memory before and at its peak during the stall, the event
    /// queue's bytes against its budget, and what the stall cost (gaps,
    /// drops, reconnects: the simulator resets a consumer too slow to keep
    /// up, as Binance does). `within_budget`: the growth stayed within the
    /// queue's byte budget plus the fixed allowance (docs: README, "Memory").
    ///
    /// Examples:
    ///   ferrofeed bench stall --rate 50000 --stall 10s --policy block
    ///   ferrofeed bench stall --policy drop-oldest --queue-mib 4 --json
    #[command(verbatim_doc_comment)]
    Stall(StallArgs),
}

/// Options every simulator-backed bench shares.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Do not pin this process to CPU 0 and the simulator to CPU 1.
    #[arg(long)]
    no_pin: bool,
    /// The readers' tokio runtime (`bench e2e` of Binance trades and
    /// `bench latency`): `current` (one thread: the connection's actor and
    /// the consumer take turns), or `multi` (the actor on a worker thread,
    /// the consumer on the bench thread; pinned, both share CPU 0).
    #[arg(long, value_enum, default_value_t = Flavor::Current)]
    runtime: Flavor,
}

/// A tokio runtime flavour (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Flavor {
    /// `new_current_thread`.
    Current,
    /// `new_multi_thread` with 2 workers.
    Multi,
}

/// `bench e2e`.
#[derive(Debug, Args)]
pub(crate) struct E2eArgs {
    /// Frames per run (depth: diffs over all books).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000_000))]
    messages: u64,
    /// Runs per reader (interleaved); the medians are reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=25))]
    runs: u32,
    /// What to read: trades, or depth diffs through local books (Binance spot).
    #[arg(long, value_enum, default_value = "trade")]
    stream: E2eStream,
    /// The venue: binance (loadusdt@trade), or bybit (linear publicTrade.LOADUSDT).
    #[arg(long, value_enum, default_value = "binance")]
    venue: E2eVenue,
    /// --stream depth: books (LOAD0USDT ... on the simulator).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    books: u64,
    #[command(flatten)]
    common: Common,
}

/// `bench e2e --stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum E2eStream {
    Trade,
    Depth,
}

/// `bench e2e --venue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum E2eVenue {
    Binance,
    Bybit,
}

/// `bench latency`.
#[derive(Debug, Args)]
pub(crate) struct LatencyArgs {
    /// Frames per second.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=5_000_000))]
    rate: u64,
    /// Seconds of traffic per reader.
    #[arg(long, default_value_t = 10.0, value_parser = crate::parse_seconds)]
    seconds: f64,
    #[command(flatten)]
    common: Common,
}

/// `bench book`.
#[derive(Debug, Args)]
pub(crate) struct BookArgs {
    /// Seconds to apply diffs (and as long again for top-20 reads).
    #[arg(long, default_value_t = 2.0, value_parser = crate::parse_seconds)]
    seconds: f64,
    /// Levels per side in the starting book.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(20..=100_000))]
    levels: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// `bench scale`.
#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    /// Streams to subscribe (5 per synthetic symbol).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    streams: u64,
    /// How long to keep receiving after every subscription is confirmed
    /// before memory is read, e.g. `3s`.
    #[arg(long, default_value = "3s", value_parser = crate::parse_duration)]
    hold: Duration,
    /// The simulator's --time-scale (larger: fewer messages per second).
    #[arg(long, default_value_t = 10.0)]
    time_scale: f64,
    #[command(flatten)]
    common: Common,
}

/// `bench stall`.
#[derive(Debug, Args)]
pub(crate) struct StallArgs {
    /// Trade frames per second.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    rate: u64,
    /// How long the consumer reads nothing, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    stall: Duration,
    /// The queue's policy when full.
    #[arg(long, value_enum, default_value = "block")]
    policy: StallPolicy,
    /// The event queue's byte budget, MiB.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    queue_mib: u64,
    #[command(flatten)]
    common: Common,
}

/// `--policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum StallPolicy {
    Block,
    DropOldest,
}

/// Runs one benchmark.
pub(crate) async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    // The measurements run on their own runtimes in their own threads.
    tokio::task::spawn_blocking(move || match cmd {
        BenchCmd::E2e(a) => e2e(&a),
        BenchCmd::Latency(a) => latency(&a),
        BenchCmd::Book(a) => book(&a),
        BenchCmd::Scale(a) => scale(&a),
        BenchCmd::Stall(a) => stall(&a),
    })
    .await
    .context("the benchmark thread panicked")?
}

// ------------------------------------------------------------------ process

/// This process's user + system CPU time, seconds (`/proc/self/stat`, 10 ms ticks).
fn cpu_s() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let Some(rest) = s.rfind(')').and_then(|i| s.get(i + 1..)) else { return 0.0 };
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let f: Vec<f64> = rest.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

/// A `/proc/self/status` field in MiB (`VmHWM`: peak resident set; `VmRSS`).
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Resets the peak resident set (`VmHWM`) to the current one, so a later
/// reading covers what ran since. Best effort (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Whether to pin: two or more CPUs and `taskset` available.
fn can_pin(no_pin: bool) -> bool {
    !no_pin
        && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
        && Command::new("taskset").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Pins every thread of this process to CPU 0 (threads started later inherit it).
fn pin_self() {
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A simulator in a child process, killed (by PID) when dropped.
#[derive(Debug)]
struct SimProcess {
    child: Child,
    ws: String,
    rest: String,
}

impl SimProcess {
    /// `ferrofeed sim --markets spot ARGS`, on CPU 1 when `pin`.
    fn start(args: &[String], pin: bool) -> anyhow::Result<SimProcess> {
        SimProcess::start_markets("spot", args, pin)
    }

    /// `ferrofeed sim --markets MARKET ARGS` (one market), on CPU 1 when `pin`.
    fn start_markets(market: &str, args: &[String], pin: bool) -> anyhow::Result<SimProcess> {
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut cmd = if pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "1"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(["sim", "--markets", market]).args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = cmd.spawn().context("starting the simulator")?;
        let out = child.stdout.take().context("simulator stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).context("reading the simulator's URLs")?;
        #[derive(Deserialize)]
        struct Urls {
            ws: String,
            rest: String,
        }
        let urls: Urls = match serde_json::from_str(&line) {
            Ok(u) => u,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("unexpected simulator output {line:?}: {e}");
            }
        };
        Ok(SimProcess { child, ws: urls.ws.trim_end_matches('/').to_string(), rest: urls.rest })
    }

    fn env(&self) -> Environment {
        Environment::Custom { ws: self.ws.clone(), rest: self.rest.clone() }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_of(Flavor::Current)
}

fn runtime_of(flavor: Flavor) -> anyhow::Result<tokio::runtime::Runtime> {
    match flavor {
        Flavor::Current => tokio::runtime::Builder::new_current_thread(),
        Flavor::Multi => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    }
    .enable_all()
    .build()
    .context("building a runtime")
}

// ------------------------------------------------------------------ readers

/// The reference reader's typed frame.
#[derive(Debug, Deserialize)]
struct RefEnvelope<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    stream: &'a str,
    #[serde(borrow)]
    data: RefTrade<'a>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case, dead_code)]
struct RefTrade<'a> {
    e: &'a str,
    E: i64,
    s: &'a str,
    t: u64,
    p: Decimal,
    q: Decimal,
    T: i64,
    m: bool,
}

/// What one reader saw.
#[derive(Debug, Default, Clone)]
struct Tally {
    /// Trades received.
    received: u64,
    /// Ids not received (holes between consecutive ids, or missing at the end).
    lost: u64,
    /// Ids received twice or out of order.
    disorder: u64,
    /// Frames that failed to decode.
    errors: u64,
    next: u64,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
    /// Process CPU seconds from the first to the last trade.
    cpu_s: f64,
    cpu0: f64,
    /// Latencies (receive − send), ns, when collected.
    lat_ns: Vec<i64>,
}

impl Tally {
    fn new(collect_latency: usize) -> Tally {
        Tally { next: FIRST_ID, lat_ns: Vec::with_capacity(collect_latency), ..Tally::default() }
    }

    /// One trade id; `true` once the last expected id arrived.
    fn on_id(&mut self, id: u64, n: u64) -> bool {
        if self.first_at.is_none() {
            self.first_at = Some(Instant::now());
            self.cpu0 = cpu_s();
        }
        self.received += 1;
        if id == self.next {
            self.next += 1;
        } else if id > self.next {
            self.lost += id - self.next;
            self.next = id + 1;
        } else {
            self.disorder += 1;
        }
        let done = self.next >= FIRST_ID + n;
        if done {
            self.last_at = Some(Instant::now());
        }
        done
    }

    fn finish(&mut self, n: u64) {
        if self.last_at.is_none() {
            self.last_at = Some(Instant::now() - STALL);
        }
        self.lost += (FIRST_ID + n).saturating_sub(self.next);
        self.cpu_s = cpu_s() - self.cpu0;
    }

    /// Messages per second between the first and the last trade.
    fn rate(&self) -> f64 {
        match (self.first_at, self.last_at) {
            (Some(a), Some(b)) if b > a => (self.received.saturating_sub(1)) as f64 / (b - a).as_secs_f64(),
            _ => 0.0,
        }
    }
}

/// No trade for this long ends a reader's run (what is missing counts as lost).
const STALL: Duration = Duration::from_secs(10);

/// The reference reader: the engine's transport, a typed parse per frame.
async fn reference_reader(ws: &str, n: u64, latency: bool) -> anyhow::Result<Tally> {
    let url = format!("{ws}/stream?streams={LOAD_STREAM}");
    let mut sock = Native::new().connect(&ConnectSpec::new(url)).await.context("reference reader connect")?;
    let mut t = Tally::new(if latency { n as usize } else { 0 });
    loop {
        let msg = match tokio::time::timeout(STALL, sock.recv()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => bail!("reference reader: {e}"),
            Ok(None) | Err(_) => break,
        };
        let WsMsg::Text(text) = msg else { continue };
        match serde_json::from_str::<RefEnvelope<'_>>(&text) {
            Ok(env) => {
                if latency {
                    t.lat_ns.push((now_us() - env.data.T) * 1000);
                }
                std::hint::black_box((&env.data.p, &env.data.q));
                if t.on_id(env.data.t, n) {
                    break;
                }
            }
            Err(_) => t.errors += 1,
        }
    }
    let _ = sock.send(WsMsg::Close(Some((1000, String::new())))).await;
    t.finish(n);
    Ok(t)
}

/// The full ferrofeed path to a consumer that touches every event.
async fn ferrofeed_reader(env: Environment, n: u64, latency: bool) -> anyhow::Result<Tally> {
    let cfg = FeedConfig {
        client: ClientConfig { environment: env, seed: Some(1), ..ClientConfig::default() },
        ..FeedConfig::default()
    };
    let mut feed = Feed::new(cfg);
    feed.subscribe(load_market()?, &[LOAD_STREAM.to_string()]).await.context("subscribing")?;
    Ok(consume_trades(feed, n, latency).await)
}

/// The consumer of every ferrofeed reader: takes trades (ids 1..=n) from
/// `feed`, touching each one's price, quantity and symbol, until the n-th
/// or a stall, then shuts the feed down.
async fn consume_trades(mut feed: Feed, n: u64, latency: bool) -> Tally {
    let mut t = Tally::new(if latency { n as usize } else { 0 });
    loop {
        let ev = match tokio::time::timeout(STALL, feed.next()).await {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(_) => break,
        };
        match &ev.kind {
            EventKind::Trade(tr) => {
                if latency && let Some(ts) = ev.exchange_ts {
                    t.lat_ns.push(now_ns() - ts);
                }
                std::hint::black_box((&tr.price, &tr.qty, &ev.symbol));
                let Ok(id) = tr.trade_id.parse::<u64>() else {
                    t.errors += 1;
                    continue;
                };
                if t.on_id(id, n) {
                    break;
                }
            }
            EventKind::Error { .. } => t.errors += 1,
            _ => {}
        }
    }
    feed.shutdown().await;
    t.finish(n);
    t
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reader {
    Reference,
    Ferrofeed,
}

/// One reader against a fresh simulator; returns its tally and the peak RSS
/// (MiB) of this process during the run.
fn measure(reader: Reader, sim_args: &[String], c: &Common, n: u64, latency: bool) -> anyhow::Result<(Tally, f64)> {
    let sim = SimProcess::start(sim_args, can_pin(c.no_pin))?;
    reset_peak_rss();
    let rt = runtime_of(c.runtime)?;
    let t = rt.block_on(async {
        match reader {
            Reader::Reference => reference_reader(&sim.ws, n, latency).await,
            Reader::Ferrofeed => ferrofeed_reader(sim.env(), n, latency).await,
        }
    })?;
    drop(rt);
    let rss = status_mib("VmHWM:");
    drop(sim);
    Ok((t, rss))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

// ------------------------------------------------------------------ e2e

#[derive(Debug, Serialize)]
struct E2eReport {
    messages: u64,
    reference_msgs_per_s: f64,
    ferrofeed_msgs_per_s: f64,
    ratio: f64,
    lost: u64,
    /// ferrofeed's client-process CPU seconds per run (median).
    cpu_s: f64,
    /// ferrofeed's peak resident set during its run, MiB (max over runs).
    max_rss_mib: f64,
    reference_cpu_s: f64,
    reference_lost: u64,
    ferrofeed_ns_per_msg_cpu: f64,
    reference_ns_per_msg_cpu: f64,
    decode_errors: u64,
    runs: u32,
    pinned: bool,
    runtime: Flavor,
}

fn e2e(a: &E2eArgs) -> anyhow::Result<()> {
    let form = match (a.stream, a.venue) {
        (E2eStream::Trade, E2eVenue::Binance) => None,
        (E2eStream::Depth, E2eVenue::Binance) => Some(forms::Form::Depth),
        (E2eStream::Trade, E2eVenue::Bybit) => Some(forms::Form::BybitTrades),
        (E2eStream::Depth, E2eVenue::Bybit) => bail!("--stream depth is Binance's (spot) only for now"),
    };
    if let Some(form) = form {
        if a.common.runtime != Flavor::Current {
            bail!("--runtime multi is measured for Binance trades only (--stream trade --venue binance)");
        }
        return forms::run(&forms::Plan {
            form,
            messages: a.messages,
            books: a.books,
            runs: a.runs,
            json: a.common.json,
            no_pin: a.common.no_pin,
        });
    }
    let pin = can_pin(a.common.no_pin);
    if pin {
        pin_self();
    }
    let sim_args = vec!["--load-messages".to_string(), a.messages.to_string()];
    let (mut rr, mut fr, mut rc, mut fc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut lost, mut ref_lost, mut errors, mut rss) = (0, 0, 0, 0f64);
    for _ in 0..a.runs {
        let (r, _) = measure(Reader::Reference, &sim_args, &a.common, a.messages, false)?;
        let (f, f_rss) = measure(Reader::Ferrofeed, &sim_args, &a.common, a.messages, false)?;
        rr.push(r.rate());
        fr.push(f.rate());
        rc.push(r.cpu_s);
        fc.push(f.cpu_s);
        ref_lost += r.lost;
        lost += f.lost + f.disorder;
        errors += f.errors + r.errors;
        rss = rss.max(f_rss);
    }
    let (reference, ferrofeed) = (median(rr), median(fr));
    let (rcpu, fcpu) = (median(rc), median(fc));
    let per = |cpu: f64| cpu * 1e9 / a.messages as f64;
    let rep = E2eReport {
        messages: a.messages,
        reference_msgs_per_s: reference.round(),
        ferrofeed_msgs_per_s: ferrofeed.round(),
        ratio: if reference > 0.0 { (ferrofeed / reference * 1000.0).round() / 1000.0 } else { 0.0 },
        lost,
        cpu_s: fcpu,
        max_rss_mib: (rss * 10.0).round() / 10.0,
        reference_cpu_s: rcpu,
        reference_lost: ref_lost,
        ferrofeed_ns_per_msg_cpu: per(fcpu).round(),
        reference_ns_per_msg_cpu: per(rcpu).round(),
        decode_errors: errors,
        runs: a.runs,
        pinned: pin,
        runtime: a.common.runtime,
    };
    if a.common.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        println!("| reader | msgs/s | client CPU s | CPU ns/msg | lost |");
        println!("|---|---:|---:|---:|---:|");
        println!(
            "| reference (tokio-tungstenite + serde_json typed) | {:.0} | {:.2} | {:.0} | {} |",
            reference, rcpu, rep.reference_ns_per_msg_cpu, ref_lost
        );
        println!(
            "| ferrofeed (pool → actor → decode → normalize → consumer) | {:.0} | {:.2} | {:.0} | {} |",
            ferrofeed, fcpu, rep.ferrofeed_ns_per_msg_cpu, lost
        );
        println!(
            "ratio {:.3}; {} messages; {} run(s); peak RSS {:.1} MiB; pinned: {pin}; runtime: {:?}",
            rep.ratio, a.messages, a.runs, rep.max_rss_mib, rep.runtime
        );
    }
    if lost > 0 || ref_lost > 0 || errors > 0 {
        bail!("lost {lost} (reference {ref_lost}), {errors} decode errors");
    }
    Ok(())
}

// ------------------------------------------------------------------ latency

#[derive(Debug, Serialize)]
struct Percentiles {
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    samples: usize,
}

fn percentiles(mut v: Vec<i64>) -> Percentiles {
    v.sort_unstable();
    let at = |q: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        (v[i] as f64 / 100.0).round() / 10.0
    };
    Percentiles { p50_us: at(0.5), p99_us: at(0.99), p999_us: at(0.999), max_us: at(1.0), samples: v.len() }
}

#[derive(Debug, Serialize)]
struct LatencyReport {
    rate: u64,
    seconds: f64,
    messages: u64,
    reference: Percentiles,
    ferrofeed: Percentiles,
    p50_diff_us: f64,
    p99_diff_us: f64,
    p999_diff_us: f64,
    p99_ratio: f64,
    lost: u64,
    reference_lost: u64,
    warmup_skipped: usize,
    pinned: bool,
    runtime: Flavor,
}

fn latency(a: &LatencyArgs) -> anyhow::Result<()> {
    if !(a.seconds > 0.0 && a.seconds.is_finite()) {
        bail!("--seconds must be positive");
    }
    let pin = can_pin(a.common.no_pin);
    if pin {
        pin_self();
    }
    let n = ((a.rate as f64 * a.seconds).round() as u64).max(2);
    let sim_args = vec!["--load-messages".into(), n.to_string(), "--load-rate".into(), a.rate.to_string()];
    let (r, _) = measure(Reader::Reference, &sim_args, &a.common, n, true)?;
    let (f, _) = measure(Reader::Ferrofeed, &sim_args, &a.common, n, true)?;
    // The first 1% (at most 0.5 s of traffic) covers connection warm-up.
    let skip = (n as usize / 100).min(a.rate as usize / 2);
    let cut = |v: &[i64]| v.get(skip.min(v.len())..).unwrap_or_default().to_vec();
    let (rp, fp) = (percentiles(cut(&r.lat_ns)), percentiles(cut(&f.lat_ns)));
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let rep = LatencyReport {
        rate: a.rate,
        seconds: a.seconds,
        messages: n,
        p50_diff_us: round(fp.p50_us - rp.p50_us),
        p99_diff_us: round(fp.p99_us - rp.p99_us),
        p999_diff_us: round(fp.p999_us - rp.p999_us),
        p99_ratio: if rp.p99_us > 0.0 { (fp.p99_us / rp.p99_us * 100.0).round() / 100.0 } else { 0.0 },
        reference: rp,
        ferrofeed: fp,
        lost: f.lost + f.disorder,
        reference_lost: r.lost,
        warmup_skipped: skip,
        pinned: pin,
        runtime: a.common.runtime,
    };
    if a.common.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        println!("| reader | p50 µs | p99 µs | p99.9 µs | max µs | samples | lost |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (name, p, lost) in
            [("reference", &rep.reference, rep.reference_lost), ("ferrofeed", &rep.ferrofeed, rep.lost)]
        {
            println!(
                "| {name} | {} | {} | {} | {} | {} | {lost} |",
                p.p50_us, p.p99_us, p.p999_us, p.max_us, p.samples
            );
        }
        println!(
            "difference: p50 {:+} µs, p99 {:+} µs (×{}), p99.9 {:+} µs; {} msgs/s for {} s; pinned: {pin}; runtime: {:?}",
            rep.p50_diff_us, rep.p99_diff_us, rep.p99_ratio, rep.p999_diff_us, a.rate, a.seconds, rep.runtime
        );
    }
    if rep.lost > 0 || rep.reference_lost > 0 {
        bail!("lost {} (reference {})", rep.lost, rep.reference_lost);
    }
    Ok(())
}

// ------------------------------------------------------------------ stall

/// Memory a stalled consumer may cost beyond the queue's byte budget: the
/// socket's read buffer and one frame (the venue's frame cap, 4 MiB on
/// Binance), the runtime's and allocator's slack.
pub(crate) const STALL_ALLOWANCE_MIB: f64 = 12.0;

#[derive(Debug, Serialize)]
struct StallReport {
    rate: u64,
    stall_s: f64,
    policy: StallPolicy,
    queue_max_bytes: usize,
    queue_peak_bytes: usize,
    rss_before_mib: f64,
    rss_peak_mib: f64,
    rss_growth_mib: f64,
    allowance_mib: f64,
    within_budget: bool,
    trades_before: u64,
    trades_after: u64,
    gap_events: u64,
    queue_dropped: u64,
    reconnects: u64,
    pinned: bool,
}

fn stall(a: &StallArgs) -> anyhow::Result<()> {
    let pin = can_pin(a.common.no_pin);
    if pin {
        pin_self();
    }
    let stall_s = a.stall.as_secs_f64();
    // A second of warm-up, the stall, and up to 3 s of reading afterwards.
    let n = ((a.rate as f64) * (stall_s + 4.0)).round() as u64;
    let sim_args = vec!["--load-messages".into(), n.to_string(), "--load-rate".into(), a.rate.to_string()];
    let sim = SimProcess::start(&sim_args, pin)?;
    let queue_bytes = usize::try_from(a.queue_mib << 20).context("--queue-mib")?;
    let rt = runtime()?;
    let rep = rt.block_on(async {
        let overflow = match a.policy {
            StallPolicy::Block => Overflow::Block,
            StallPolicy::DropOldest => Overflow::DropOldest,
        };
        let mut client = ClientConfig { environment: sim.env(), seed: Some(1), ..ClientConfig::default() };
        client.overflow = overflow;
        client.queue_bytes = queue_bytes;
        let mut feed = Feed::new(FeedConfig { client, ..FeedConfig::default() });
        feed.subscribe(load_market()?, &[LOAD_STREAM.to_string()]).await.context("subscribing")?;
        let (mut before, mut after, mut gaps) = (0u64, 0u64, 0u64);
        let warm = Instant::now() + Duration::from_secs(1);
        while Instant::now() < warm {
            match tokio::time::timeout(STALL, feed.next()).await {
                Ok(Some(ev)) if matches!(ev.kind, EventKind::Trade(_)) => before += 1,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => bail!("the load stream did not flow"),
            }
        }
        let rss_before = status_mib("VmRSS:");
        reset_peak_rss();
        let mut queue_peak = 0;
        let end = tokio::time::Instant::now() + a.stall;
        // The consumer reads nothing; the connection's task runs on.
        while tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(100)).await;
            feed.refresh_stats();
            let st = feed.stats();
            let q = st.lock().queue_bytes.get("public").copied().unwrap_or_default();
            queue_peak = queue_peak.max(q.1);
        }
        let rss_peak = status_mib("VmHWM:").max(status_mib("VmRSS:"));
        let resume = Instant::now() + Duration::from_secs(3);
        while Instant::now() < resume {
            match tokio::time::timeout(Duration::from_secs(1), feed.next()).await {
                Ok(Some(ev)) => match ev.kind {
                    EventKind::Trade(_) => after += 1,
                    EventKind::Gap(_) => gaps += 1,
                    _ => {}
                },
                Ok(None) | Err(_) => break,
            }
        }
        feed.refresh_stats();
        let st = feed.stats();
        let (dropped, reconnects) = {
            let s = st.lock();
            (s.queue_dropped.get("public").copied().unwrap_or(0), s.conns.values().map(|c| c.reconnects).sum())
        };
        feed.shutdown().await;
        let growth = (rss_peak - rss_before).max(0.0);
        let round = |x: f64| (x * 10.0).round() / 10.0;
        Ok(StallReport {
            rate: a.rate,
            stall_s,
            policy: a.policy,
            queue_max_bytes: queue_bytes,
            queue_peak_bytes: queue_peak,
            rss_before_mib: round(rss_before),
            rss_peak_mib: round(rss_peak),
            rss_growth_mib: round(growth),
            allowance_mib: STALL_ALLOWANCE_MIB,
            within_budget: growth <= a.queue_mib as f64 + STALL_ALLOWANCE_MIB,
            trades_before: before,
            trades_after: after,
            gap_events: gaps,
            queue_dropped: dropped,
            reconnects,
            pinned: pin,
        })
    })?;
    drop(rt);
    drop(sim);
    if a.common.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        println!(
            "{:?} policy, {} msgs/s, stalled {} s: RSS {} -> {} MiB (+{} MiB; budget {} + {} MiB: {}), \
             queue peak {} of {} bytes; trades {} before, {} after; {} gaps, {} dropped, {} reconnects",
            rep.policy,
            rep.rate,
            rep.stall_s,
            rep.rss_before_mib,
            rep.rss_peak_mib,
            rep.rss_growth_mib,
            a.queue_mib,
            rep.allowance_mib,
            if rep.within_budget { "within" } else { "OVER" },
            rep.queue_peak_bytes,
            rep.queue_max_bytes,
            rep.trades_before,
            rep.trades_after,
            rep.gap_events,
            rep.queue_dropped,
            rep.reconnects
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ book

#[derive(Debug, Serialize)]
struct BookReport {
    level_updates_per_s: f64,
    diffs_per_s: f64,
    levels_per_diff: f64,
    delete_share: f64,
    book_levels_per_side: u64,
    top20_reads_per_s: f64,
    seconds: f64,
}

/// A deterministic diff mix: sizes 1–40 levels (mean about 10), 70% of the
/// changes within 20 ticks of the touch, 25% within 200, 5% anywhere in the
/// book; a third of them deletes (quantity 0), the rest new quantities.
fn diff_mix(levels: i64, count: usize) -> Vec<(Vec<Level>, Vec<Level>)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let lvl = |p: i64, q: i64| Level { price: Decimal::new(p, 2), qty: Decimal::new(q, 3) };
    (0..count)
        .map(|_| {
            let size = match rnd() % 10 {
                0..=5 => 1 + rnd() % 8,
                6..=8 => 8 + rnd() % 16,
                _ => 20 + rnd() % 21,
            };
            let (mut b, mut a) = (Vec::new(), Vec::new());
            for _ in 0..size {
                let r = rnd();
                let off = match r % 100 {
                    0..=69 => (r >> 8) % 20,
                    70..=94 => (r >> 8) % 200,
                    _ => (r >> 8) % levels as u64,
                } as i64;
                let q = if (r >> 40) % 3 == 0 { 0 } else { 1 + ((r >> 20) % 5000) as i64 };
                if r >> 63 == 0 {
                    b.push(lvl(1_000_000 - off, q));
                } else {
                    a.push(lvl(1_000_001 + off, q));
                }
            }
            (b, a)
        })
        .collect()
}

fn book(a: &BookArgs) -> anyhow::Result<()> {
    use ferrofeed::book::l2::L2Book;
    if !(a.seconds > 0.0 && a.seconds.is_finite()) {
        bail!("--seconds must be positive");
    }
    let levels = a.levels as i64;
    let lvl = |p: i64, q: i64| Level { price: Decimal::new(p, 2), qty: Decimal::new(q, 3) };
    let bids: Vec<Level> = (0..levels).map(|i| lvl(1_000_000 - i, 1 + i % 97)).collect();
    let asks: Vec<Level> = (0..levels).map(|i| lvl(1_000_001 + i, 1 + i % 89)).collect();
    let diffs = diff_mix(levels, 20_000);
    let per_pass: usize = diffs.iter().map(|(b, a)| b.len() + a.len()).sum();
    let deletes: usize = diffs.iter().flat_map(|(b, a)| b.iter().chain(a)).filter(|l| l.qty.is_zero()).count();
    let mut book: L2Book = L2Book::new();
    book.load(1, &bids, &asks);
    let budget = Duration::from_secs_f64(a.seconds);
    let (mut applied, mut n_diffs, mut id) = (0usize, 0usize, 1u64);
    let start = Instant::now();
    while start.elapsed() < budget {
        // Each pass starts from the same book, so the mix stays the same.
        book.load(id, &bids, &asks);
        for (b, a) in &diffs {
            id += 1;
            book.apply(id, b, a);
        }
        std::hint::black_box(book.depth());
        applied += per_pass;
        n_diffs += diffs.len();
    }
    // Time spent reloading the book between passes is excluded: measure it.
    let total = start.elapsed().as_secs_f64();
    let passes = n_diffs / diffs.len();
    let t_load = Instant::now();
    for _ in 0..passes {
        book.load(id, &bids, &asks);
        std::hint::black_box(book.depth());
    }
    let load_s = t_load.elapsed().as_secs_f64();
    let apply_s = (total - load_s).max(1e-9);
    let (mut reads, t_read) = (0u64, Instant::now());
    while t_read.elapsed() < budget {
        for _ in 0..1000 {
            std::hint::black_box((book.bids(20), book.asks(20)));
        }
        reads += 1000;
    }
    let read_s = t_read.elapsed().as_secs_f64();
    let rep = BookReport {
        level_updates_per_s: (applied as f64 / apply_s).round(),
        diffs_per_s: (n_diffs as f64 / apply_s).round(),
        levels_per_diff: (per_pass as f64 / diffs.len() as f64 * 100.0).round() / 100.0,
        delete_share: (deletes as f64 / per_pass as f64 * 1000.0).round() / 1000.0,
        book_levels_per_side: a.levels,
        top20_reads_per_s: (reads as f64 / read_s).round(),
        seconds: a.seconds,
    };
    if a.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        println!("| measure | per second |");
        println!("|---|---:|");
        println!("| level updates applied | {:.0} |", rep.level_updates_per_s);
        println!("| diffs applied ({} levels each on average) | {:.0} |", rep.levels_per_diff, rep.diffs_per_s);
        println!("| top-20 reads (both sides) | {:.0} |", rep.top20_reads_per_s);
        println!("book of {} levels a side; {:.0}% of the changes delete a level", a.levels, rep.delete_share * 100.0);
    }
    Ok(())
}

// ------------------------------------------------------------------ scale

#[derive(Debug, Serialize)]
struct ScaleReport {
    streams: u64,
    connections: usize,
    rss_mib: f64,
    subscribe_seconds: f64,
    subscribe_floor_seconds: f64,
    rss_now_mib: f64,
    events_received: u64,
    subscribe_messages: usize,
    pinned: bool,
}

fn scale(a: &ScaleArgs) -> anyhow::Result<()> {
    let pin = can_pin(a.common.no_pin);
    if pin {
        pin_self();
    }
    const KINDS: [&str; 5] = ["trade", "aggTrade", "bookTicker", "depth", "depth@100ms"];
    let symbols = a.streams.div_ceil(KINDS.len() as u64);
    let sim_args = vec![
        "--synthetic-symbols".to_string(),
        symbols.to_string(),
        "--time-scale".to_string(),
        a.time_scale.to_string(),
    ];
    let sim = SimProcess::start(&sim_args, pin)?;
    let streams: Vec<String> = (0..symbols)
        .flat_map(|i| KINDS.iter().map(move |k| format!("s{i:04}usdt@{k}")))
        .take(a.streams as usize)
        .collect();
    let rt = runtime()?;
    let rep = rt.block_on(async {
        let cfg = FeedConfig {
            client: ClientConfig { environment: sim.env(), seed: Some(1), ..ClientConfig::default() },
            ..FeedConfig::default()
        };
        let mut feed = Feed::new(cfg);
        let t0 = Instant::now();
        feed.subscribe(load_market()?, &streams).await.context("subscribing")?;
        let mut events = 0u64;
        let deadline = t0 + Duration::from_secs(120);
        // Drain events while waiting for every subscription to be confirmed.
        let took = loop {
            if feed.client().is_settled() {
                break t0.elapsed().as_secs_f64();
            }
            if Instant::now() > deadline {
                bail!("subscriptions not confirmed within 120 s");
            }
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), feed.next()).await {
                events += 1;
            }
        };
        let hold_until = Instant::now() + a.hold;
        while let Ok(Some(_)) = tokio::time::timeout_at(hold_until.into(), feed.next()).await {
            events += 1;
        }
        let snaps = feed.client().snapshots();
        // The floor (as tests/it/pools.rs computes it): per connection, the
        // SUBSCRIBE messages beyond what the first window allows, at the
        // simulator's 5 messages per second (200 streams per message);
        // connections proceed in parallel; streams in the URL cost nothing.
        let (per_request, per_sec) = (200usize, 5usize);
        let mut floor = 0f64;
        let mut msgs = 0usize;
        for s in &snaps {
            let in_url = s.url.split_once("?streams=").map_or(0, |(_, q)| q.split('/').count());
            let m = s.streams.len().saturating_sub(in_url).div_ceil(per_request);
            msgs += m;
            floor = floor.max(m.saturating_sub(per_sec) as f64 / per_sec as f64);
        }
        let rep = ScaleReport {
            streams: streams.len() as u64,
            connections: feed.client().active_shards(),
            rss_mib: (status_mib("VmHWM:") * 10.0).round() / 10.0,
            subscribe_seconds: (took * 1000.0).round() / 1000.0,
            subscribe_floor_seconds: floor,
            rss_now_mib: (status_mib("VmRSS:") * 10.0).round() / 10.0,
            events_received: events,
            subscribe_messages: msgs,
            pinned: pin,
        };
        feed.shutdown().await;
        Ok::<_, anyhow::Error>(rep)
    })?;
    drop(rt);
    drop(sim);
    if a.common.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        println!("| streams | connections | peak RSS MiB | RSS now MiB | subscribe s | floor s | SUBSCRIBE msgs |");
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            rep.streams,
            rep.connections,
            rep.rss_mib,
            rep.rss_now_mib,
            rep.subscribe_seconds,
            rep.subscribe_floor_seconds,
            rep.subscribe_messages
        );
    }
    Ok(())
}
