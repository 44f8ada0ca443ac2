//! `ferrofeed record` (feeds from a TOML file into crash-safe capture files,
//! `ferrofeed::record`) and `ferrofeed replay` (capture files back out as JSON
//! lines, paced by `receive_ts`). The file format is in docs/record.md.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferrofeed::binance::{BinanceConfig, Environment, Market};
use ferrofeed::feed::{Feed, FeedConfig};
use ferrofeed::model::event::{Event, EventKind};
use ferrofeed::record::{RecordError, RecordReader, Recorder, RecorderConfig, expand_paths};
use ferrofeed_sim::{MarketKind, Sim, SimConfig};
use serde::Deserialize;

// ---------------------------------------------------------------------------
// Arguments

#[derive(Debug, clap::Args)]
pub(crate) struct RecordArgs {
    /// The feeds to record: a TOML file of [[feed]] tables (docs/record.md;
    /// example: examples/feeds.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Output directory (created if missing). Files:
    /// DIR/<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst (UTC hour of receive_ts).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Stop after this long, e.g. `30s`, `10m`, `24h` (default: until SIGINT or SIGTERM).
    #[arg(long, value_parser = crate::parse_duration)]
    duration: Option<Duration>,
    /// Write a frame (and fsync) once a market's batch holds this many records.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    flush_records: u64,
    /// Write every pending batch at least this often (min 10ms).
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
    flush_interval: Duration,
    /// Memory cap per market: write a frame once its batch holds this many bytes (4 KiB to 64 MiB).
    #[arg(long, default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(4096..=64 << 20))]
    flush_bytes: u64,
    /// zstd compression level, 1 (fastest) to 19 (smallest).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    level: i32,
    /// How often to print a plain progress line when standard error is not a
    /// terminal (min 10ms; on a terminal an indicatif line updates in place).
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    progress_interval: Duration,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100; port 0
    /// picks a free one). The address is printed on standard error.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// Capture files (*.jsonl.zst), or directories: every capture file below
    /// them, in name order (time order per venue and market).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Pacing: `1` = original pacing by receive_ts, `10` = ten times faster,
    /// `max` = as fast as possible (any positive factor works, e.g. `0.5`).
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    speed: Speed,
}

/// Replay pacing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Speed {
    Max,
    Factor(f64),
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Speed::Max);
    }
    match s.trim_end_matches('x').parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(Speed::Factor(f)),
        _ => Err(format!("invalid speed {s:?}: expected a positive factor (1, 10, 0.5) or `max`")),
    }
}

// ---------------------------------------------------------------------------
// The feeds file

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    sim: SimSection,
    #[serde(default)]
    feed: Vec<FeedSection>,
}

/// `[sim]`: the in-process simulator that `env = "sim"` feeds connect to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SimSection {
    seed: u64,
    actions_per_sec: f64,
    time_scale: f64,
}

impl Default for SimSection {
    fn default() -> SimSection {
        SimSection { seed: 1, actions_per_sec: 20.0, time_scale: 1.0 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedSection {
    venue: String,
    market: String,
    env: String,
    ws: Option<String>,
    rest: Option<String>,
    #[serde(default)]
    streams: Vec<String>,
    #[serde(default)]
    books: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum EnvSpec {
    Production,
    Testnet,
    Demo,
    Sim,
    Custom { ws: String, rest: String },
}

#[derive(Debug, Clone, PartialEq)]
struct FeedSpec {
    market: Market,
    env: EnvSpec,
    streams: Vec<String>,
    books: Vec<String>,
}

#[derive(Debug, Clone)]
struct RecordConfig {
    sim: SimSection,
    feeds: Vec<FeedSpec>,
}

fn load_config(path: &Path) -> anyhow::Result<RecordConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the feeds file {}", path.display()))?;
    parse_config(&path.display().to_string(), &text)
}

/// Parses and checks a feeds file; every error names the file and the entry.
fn parse_config(file: &str, text: &str) -> anyhow::Result<RecordConfig> {
    let raw: ConfigFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let s = &raw.sim;
    if !(s.actions_per_sec > 0.0 && s.actions_per_sec.is_finite()) {
        bail!("{file}: [sim] actions_per_sec must be a positive number, got {}", s.actions_per_sec);
    }
    if !(s.time_scale > 0.0 && s.time_scale.is_finite()) {
        bail!("{file}: [sim] time_scale must be a positive number, got {}", s.time_scale);
    }
    if raw.feed.is_empty() {
        bail!("{file}: no [[feed]] tables: nothing to record (see docs/record.md)");
    }
    let mut feeds: Vec<FeedSpec> = Vec::new();
    for (i, f) in raw.feed.into_iter().enumerate() {
        let at = format!("{file}: [[feed]] #{} (market {:?})", i + 1, f.market);
        if f.venue != "binance" {
            bail!("{at}: unknown venue {:?}: only \"binance\" is supported", f.venue);
        }
        let Some(market) = Market::from_name(&f.market) else {
            bail!("{at}: unknown market {:?}: expected spot, usdm, coinm or options", f.market);
        };
        let env = match (f.env.as_str(), f.ws, f.rest) {
            ("custom", Some(ws), Some(rest)) => EnvSpec::Custom { ws, rest },
            ("custom", ..) => bail!("{at}: env \"custom\" needs both `ws` and `rest` base URLs"),
            (_, Some(_), _) | (_, _, Some(_)) => {
                bail!("{at}: `ws` and `rest` are only allowed with env = \"custom\"")
            }
            ("production", ..) => EnvSpec::Production,
            ("testnet", ..) => EnvSpec::Testnet,
            ("demo", ..) => EnvSpec::Demo,
            ("sim", ..) => EnvSpec::Sim,
            (other, ..) => {
                bail!("{at}: unknown env {other:?}: expected production, testnet, demo, sim or custom")
            }
        };
        if f.streams.is_empty() && f.books.is_empty() {
            bail!("{at}: neither `streams` nor `books`: nothing to record");
        }
        let mut streams: Vec<String> = Vec::new();
        for st in f.streams {
            if st.is_empty() || st.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("{at}: invalid stream name {st:?}");
            }
            if !streams.contains(&st) {
                streams.push(st);
            }
        }
        let mut books: Vec<String> = Vec::new();
        for b in f.books {
            if b.is_empty() || !b.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("{at}: invalid book symbol {b:?}: expected e.g. \"BTCUSDT\"");
            }
            let b = b.to_ascii_uppercase();
            if !books.contains(&b) {
                books.push(b);
            }
        }
        if let Some(j) = feeds.iter().position(|g| g.market == market) {
            bail!(
                "{at}: market {:?} is already recorded by [[feed]] #{}: put its streams in one table",
                f.market,
                j + 1
            );
        }
        feeds.push(FeedSpec { market, env, streams, books });
    }
    Ok(RecordConfig { sim: raw.sim, feeds })
}

fn sim_kind(m: Market) -> MarketKind {
    match m {
        Market::Spot => MarketKind::Spot,
        Market::UsdM => MarketKind::UsdM,
        Market::CoinM => MarketKind::CoinM,
        Market::Options => MarketKind::Options,
    }
}

// ---------------------------------------------------------------------------
// record

#[derive(Debug, Default, serde::Serialize)]
struct MarketTally {
    records: u64,
    gaps: u64,
}

/// What the summary counts (kept by the writer thread).
#[derive(Debug, Default)]
struct Tally {
    markets: BTreeMap<String, MarketTally>,
    by_type: BTreeMap<&'static str, u64>,
    gaps: u64,
    oversized: u64,
}

/// The writer thread's counters, read by the progress line.
#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    acknowledged: AtomicU64,
    pending: AtomicU64,
    files: AtomicU64,
    gaps: AtomicU64,
}

impl Counters {
    fn update(&self, rec: &Recorder, tally: &Tally) {
        self.received.store(rec.received(), Ordering::Relaxed);
        self.acknowledged.store(rec.acknowledged(), Ordering::Relaxed);
        self.pending.store(rec.pending(), Ordering::Relaxed);
        self.files.store(rec.files().len() as u64, Ordering::Relaxed);
        self.gaps.store(tally.gaps, Ordering::Relaxed);
    }

    fn status(&self, start: Instant) -> String {
        let secs = start.elapsed().as_secs_f64();
        let received = self.received.load(Ordering::Relaxed);
        format!(
            "{secs:.1}s received={received} acknowledged={} pending={} files={} gaps={} rate={:.0}/s",
            self.acknowledged.load(Ordering::Relaxed),
            self.pending.load(Ordering::Relaxed),
            self.files.load(Ordering::Relaxed),
            self.gaps.load(Ordering::Relaxed),
            received as f64 / secs.max(1e-3)
        )
    }
}

/// What the event loop sends the writer thread.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "nearly every message is an event; boxing would add an allocation each")]
enum ToWriter {
    Event(Event),
    /// The flush timer fired: write and sync every pending batch.
    Flush,
}

/// What the writer thread hands back when its channel closes or a write fails.
#[derive(Debug)]
struct WriterDone {
    rec: Recorder,
    tally: Tally,
    error: Option<RecordError>,
}

/// The writer thread: compression, writes and fsyncs happen here, so a slow
/// disk never stalls the sockets (the bounded channel pushes back instead).
fn writer(
    mut rec: Recorder,
    mut rx: tokio::sync::mpsc::Receiver<ToWriter>,
    counters: Arc<Counters>,
    progress: Progress,
) -> WriterDone {
    let mut tally = Tally::default();
    while let Some(msg) = rx.blocking_recv() {
        let r = match msg {
            ToWriter::Flush => rec.flush(),
            ToWriter::Event(ev) => rec.append(&ev).map(|()| {
                let m = tally.markets.entry(format!("{}/{}", ev.venue.name(), ev.market.name())).or_default();
                m.records += 1;
                *tally.by_type.entry(ev.kind.type_name()).or_default() += 1;
                if matches!(ev.kind, EventKind::Gap(_)) {
                    m.gaps += 1;
                    tally.gaps += 1;
                }
            }),
        };
        match r {
            Ok(()) => {}
            Err(e @ RecordError::TooLarge { .. }) => {
                tally.oversized += 1;
                progress.line(&e.to_string());
            }
            Err(e) => {
                counters.update(&rec, &tally);
                return WriterDone { rec, tally, error: Some(e) };
            }
        }
        counters.update(&rec, &tally);
    }
    let error = rec.close().err();
    counters.update(&rec, &tally);
    WriterDone { rec, tally, error }
}

/// Standard error: an indicatif line on a terminal, plain lines otherwise.
#[derive(Debug, Clone)]
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} record {elapsed} {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    fn line(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(format!("ferrofeed record: {msg}")),
            None => eprintln!("ferrofeed record: {msg}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Warns about events that mean data will be missing.
fn warn_status(ev: &Event, progress: &Progress) {
    match &ev.kind {
        EventKind::SubscriptionFailed { stream, code, msg } => {
            progress.line(&format!("{}: subscription to {stream} failed ({code}): {msg}", ev.market.name()))
        }
        EventKind::GaveUp { reason } => progress.line(&format!("{}: gave up: {reason}", ev.market.name())),
        _ => {}
    }
}

/// Events queued between the event loop and the writer thread.
const WRITER_QUEUE: usize = 16_384;

pub(crate) async fn run_record(a: RecordArgs) -> anyhow::Result<()> {
    let cfg = load_config(&a.config)?;
    for (name, d) in [("--flush-interval", a.flush_interval), ("--progress-interval", a.progress_interval)] {
        if d < Duration::from_millis(10) {
            bail!("{name} must be at least 10ms, got {d:?}");
        }
    }
    let rcfg = RecorderConfig {
        flush_records: usize::try_from(a.flush_records).unwrap_or(usize::MAX),
        flush_bytes: usize::try_from(a.flush_bytes).unwrap_or(usize::MAX),
        level: a.level,
    };
    let rec = Recorder::open(&a.out, rcfg).context("opening the output directory")?;
    for r in rec.repairs() {
        eprintln!("ferrofeed record: {r}");
    }

    // The simulator, if any feed asks for it.
    let sim_markets: Vec<MarketKind> =
        cfg.feeds.iter().filter(|f| f.env == EnvSpec::Sim).map(|f| sim_kind(f.market)).collect();
    let sim = if sim_markets.is_empty() {
        None
    } else {
        let mut sc = SimConfig::all_markets();
        sc.seed = cfg.sim.seed;
        sc.markets.retain(|m| sim_markets.contains(&m.kind));
        for m in &mut sc.markets {
            m.timing.actions_per_sec = cfg.sim.actions_per_sec;
            m.timing.scale = cfg.sim.time_scale;
        }
        let sim = Sim::start(sc).await.context("starting the simulator")?;
        for h in sim.markets() {
            eprintln!("ferrofeed record: simulator {} on {}", h.kind().name(), h.ws_url());
        }
        Some(sim)
    };
    let mut client = BinanceConfig::default();
    for f in &cfg.feeds {
        let env = match &f.env {
            EnvSpec::Production => Environment::Production,
            EnvSpec::Testnet => Environment::Testnet,
            EnvSpec::Demo => Environment::Demo,
            EnvSpec::Custom { ws, rest } => Environment::Custom { ws: ws.clone(), rest: rest.clone() },
            EnvSpec::Sim => {
                let h = sim.as_ref().and_then(|s| s.market(sim_kind(f.market))).context("simulator market")?;
                Environment::Custom { ws: h.ws_url(), rest: h.rest_url() }
            }
        };
        client.overrides.insert(f.market, env);
    }
    let mut feed = Feed::new(FeedConfig { client, ..FeedConfig::default() });
    let _metrics = super::start_metrics(a.metrics, feed.stats()).await?;
    let (mut n_streams, mut n_books) = (0, 0);
    for f in &cfg.feeds {
        if !f.streams.is_empty() {
            feed.subscribe(f.market, &f.streams).await.with_context(|| format!("subscribing on {}", f.market))?;
        }
        for b in &f.books {
            feed.track_book(f.market, b).await.with_context(|| format!("tracking the {} book {b}", f.market))?;
        }
        n_streams += f.streams.len();
        n_books += f.books.len();
    }
    eprintln!(
        "ferrofeed record: recording {n_streams} streams and {n_books} books on {} markets to {}",
        cfg.feeds.len(),
        a.out.display()
    );

    let progress = Progress::new();
    let counters = Arc::new(Counters::default());
    let (tx, rx) = tokio::sync::mpsc::channel(WRITER_QUEUE);
    let writer_thread = {
        let (counters, progress) = (counters.clone(), progress.clone());
        std::thread::Builder::new()
            .name("ferrofeed-record-writer".into())
            .spawn(move || writer(rec, rx, counters, progress))
            .context("starting the writer thread")?
    };
    let start = Instant::now();
    let end = a.duration.map(|d| tokio::time::Instant::now() + d);
    let shutdown = crate::cli::signal::shutdown();
    tokio::pin!(shutdown);
    let mut flush_tick = tokio::time::interval(a.flush_interval);
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = if progress.bar.is_some() { Duration::from_millis(250) } else { a.progress_interval };
    let mut progress_tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    progress_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // A failed send means the writer stopped on an error (it is joined below).
    let stopped_by = loop {
        tokio::select! {
            _ = &mut shutdown => break "signal",
            _ = async { match end { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                break "duration";
            }
            _ = flush_tick.tick() => {
                if tx.send(ToWriter::Flush).await.is_err() {
                    break "error";
                }
            }
            _ = progress_tick.tick() => {
                let s = counters.status(start);
                match &progress.bar {
                    Some(b) => b.set_message(s),
                    None => eprintln!("ferrofeed record: {s}"),
                }
            }
            ev = feed.next() => {
                let Some(ev) = ev else { break "feed closed" };
                warn_status(&ev, &progress);
                if tx.send(ToWriter::Event(ev)).await.is_err() {
                    break "error";
                }
            }
        }
    };
    // Close the sockets (close frames), then keep what was already received:
    // until 200 ms pass without an event (1 s at most).
    feed.shutdown().await;
    if stopped_by != "error" {
        let drain_end = tokio::time::Instant::now() + Duration::from_secs(1);
        let idle = |now: tokio::time::Instant| (now + Duration::from_millis(200)).min(drain_end);
        while let Ok(Some(ev)) = tokio::time::timeout_at(idle(tokio::time::Instant::now()), feed.next()).await {
            warn_status(&ev, &progress);
            if tx.send(ToWriter::Event(ev)).await.is_err() {
                break;
            }
        }
    }
    drop(tx);
    let done = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    progress.finish();
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    let Ok(Ok(WriterDone { rec, tally, error })) = done else {
        bail!("the writer thread panicked; records acknowledged before it are on disk");
    };
    let elapsed = start.elapsed().as_secs_f64();
    let (bytes_in, bytes_out) = rec.files().values().fold((0, 0), |(i, o), f| (i + f.bytes_in, o + f.bytes_out));
    let summary = serde_json::json!({
        "out": a.out.display().to_string(),
        "stopped_by": if error.is_some() { "error" } else { stopped_by },
        "duration_s": (elapsed * 1000.0).round() / 1000.0,
        "received": rec.received(),
        "acknowledged": rec.acknowledged(),
        "pending": rec.pending(),
        "gaps": tally.gaps,
        "dropped_oversized": tally.oversized,
        "records_per_s": (rec.acknowledged() as f64 / elapsed.max(1e-3)).round(),
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "compression_ratio": if bytes_out > 0 { ((bytes_in as f64 / bytes_out as f64) * 100.0).round() / 100.0 } else { 0.0 },
        "markets": tally.markets,
        "events": tally.by_type,
        "files": rec.files(),
        "checked": rec.repairs().len(),
        "repaired": rec.repairs().iter().filter(|r| r.truncated_bytes > 0).collect::<Vec<_>>(),
    });
    println!("{summary}");
    match error {
        Some(e) => Err(anyhow::Error::new(e).context(format!(
            "recording stopped; {} records acknowledged, {} not written",
            rec.acknowledged(),
            rec.pending()
        ))),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// replay

/// Writes `line`; `Ok(false)` when the reader went away (broken pipe).
fn emit(out: &mut impl Write, line: &str) -> anyhow::Result<bool> {
    match out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

pub(crate) fn run_replay(a: &ReplayArgs) -> anyhow::Result<()> {
    let paths = expand_paths(&a.files)?;
    if paths.is_empty() {
        bail!("no capture files (*{}) in {}", ferrofeed::record::SUFFIX, a.files[0].display());
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut failed, mut printed) = (0u64, 0u64);
    let mut clock: Option<(Instant, i64)> = None;
    for item in RecordReader::new(paths) {
        let r = match item {
            Ok(r) => r,
            Err(e) => {
                let _ = out.flush();
                eprintln!("ferrofeed replay: {e}");
                failed += 1;
                continue;
            }
        };
        let ev: Event = match serde_json::from_str(&r.line) {
            Ok(ev) => ev,
            Err(e) => {
                let _ = out.flush();
                eprintln!("ferrofeed replay: {}: line {}: not an event: {e}", r.path.display(), r.line_no);
                failed += 1;
                continue;
            }
        };
        if let Speed::Factor(f) = a.speed {
            let (t0, ts0) = *clock.get_or_insert((Instant::now(), ev.receive_ts));
            let ahead = ev.receive_ts.saturating_sub(ts0).max(0) as f64 / 1e9 / f;
            let due = t0 + Duration::from_secs_f64(ahead.min(1e9));
            let now = Instant::now();
            if due > now {
                if out.flush().is_err() {
                    return Ok(());
                }
                std::thread::sleep(due - now);
            }
        }
        if !emit(&mut out, &r.line)? {
            return Ok(());
        }
        printed += 1;
    }
    if let Err(e) = out.flush() {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(());
        }
        return Err(anyhow::Error::new(e).context("writing to standard output"));
    }
    if failed > 0 {
        bail!("{failed} problems in the capture files (reported above); {printed} events printed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_files_parse_and_bad_ones_are_clear_errors() {
        let ok = r#"
            [sim]
            seed = 7
            actions_per_sec = 100.0

            [[feed]]
            venue = "binance"
            market = "spot"
            env = "sim"
            streams = ["btcusdt@trade", "btcusdt@trade", "ethusdt@aggTrade"]
            books = ["btcusdt"]

            [[feed]]
            venue = "binance"
            market = "usdm"
            env = "custom"
            ws = "ws://127.0.0.1:9401"
            rest = "http://127.0.0.1:9401"
            streams = ["btcusdt@markPrice@1s"]
        "#;
        let c = parse_config("feeds.toml", ok).expect("valid");
        assert_eq!((c.sim.seed, c.sim.actions_per_sec, c.sim.time_scale), (7, 100.0, 1.0));
        assert_eq!(c.feeds.len(), 2);
        assert_eq!(c.feeds[0].streams, ["btcusdt@trade", "ethusdt@aggTrade"]);
        assert_eq!(c.feeds[0].books, ["BTCUSDT"]);
        assert_eq!(c.feeds[0].env, EnvSpec::Sim);
        assert!(matches!(&c.feeds[1].env, EnvSpec::Custom { ws, .. } if ws == "ws://127.0.0.1:9401"));

        let feed = |body: &str| format!("[[feed]]\nvenue = \"binance\"\nmarket = \"spot\"\n{body}\n");
        for (text, want) in [
            (String::new(), "no [[feed]] tables"),
            ("[[feed]]\nvenue = \"binance\"\n".to_string(), "missing field `market`"),
            (feed("env = \"sim\"\nstreams = [1]"), "line 5"),
            (feed("env = \"prod\"\nstreams = [\"a@trade\"]"), "unknown env \"prod\""),
            (feed("env = \"sim\""), "nothing to record"),
            (feed("env = \"sim\"\nstreams = [\"a b\"]"), "invalid stream name"),
            (feed("env = \"sim\"\nbooks = [\"BTC/USDT\"]"), "invalid book symbol"),
            (feed("env = \"custom\"\nstreams = [\"a@trade\"]"), "needs both `ws` and `rest`"),
            (feed("env = \"sim\"\nws = \"x\"\nstreams = [\"a@trade\"]"), "only allowed with env = \"custom\""),
            (feed("env = \"sim\"\nstream = [\"a@trade\"]"), "unknown field `stream`"),
            (feed("env = \"sim\"\nstreams = [\"a@trade\"]").replace("spot", "moon"), "unknown market \"moon\""),
            (feed("env = \"sim\"\nstreams = [\"a@trade\"]").replace("\"binance\"", "\"okx\""), "unknown venue"),
            (format!("{0}{0}", feed("env = \"sim\"\nstreams = [\"a@trade\"]")), "already recorded by [[feed]] #1"),
            (format!("[sim]\nactions_per_sec = -1.0\n{}", feed("env = \"sim\"\nbooks = [\"X\"]")), "actions_per_sec"),
        ] {
            let e = format!("{:#}", parse_config("feeds.toml", &text).expect_err(&text));
            assert!(e.starts_with("feeds.toml: ") && e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn speeds_parse() {
        assert_eq!(parse_speed("max"), Ok(Speed::Max));
        assert_eq!(parse_speed("10"), Ok(Speed::Factor(10.0)));
        assert_eq!(parse_speed("0.5x"), Ok(Speed::Factor(0.5)));
        assert!(parse_speed("0").is_err() && parse_speed("fast").is_err() && parse_speed("inf").is_err());
    }
}
