//! `ferrofeed record` (feeds from a TOML file into crash-safe capture files,
//! `ferrofeed::record`, and/or a NATS JetStream stream, `ferrofeed::sink::nats`)
//! and `ferrofeed replay` (capture files back out as JSON lines, paced by
//! `receive_ts`). The file format is in docs/record.md, the NATS side in
//! docs/nats.md.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferrofeed::client::{ClientConfig, Environment, MarketId};
use ferrofeed::export::parquet::{CaptureHour, ExportConfig, ExportSummary, Problem, export_file};
use ferrofeed::feed::{Feed, FeedConfig};
use ferrofeed::model::event::{Event, EventKind};
use ferrofeed::record::{RecordError, RecordReader, Recorder, RecorderConfig, expand_paths};
use ferrofeed::sink::Shard;
use ferrofeed::sink::nats::{NatsAuth, NatsConfig, NatsSink, NatsStats, Retention, Storage};
use ferrofeed_sim::Sim;
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
    /// Optional with a NATS sink (--sink or [nats] in the feeds file).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also convert each hour into Parquet files under this directory when
    /// it closes (the venue/market rolls to the next hour, and the last
    /// partial hour at a clean stop), as `ferrofeed export parquet` would:
    /// DIR/<venue>/<market>/<table>/<YYYY-MM-DD>/<HH>.parquet (docs/parquet.md).
    /// The capture files stay the write-ahead log: an hour a crash left
    /// unconverted is converted at the next start, and `export parquet` can
    /// redo any hour.
    #[arg(long, value_name = "DIR", requires = "out")]
    parquet: Option<PathBuf>,
    /// Publish every event to NATS JetStream at this URL (e.g.
    /// nats://127.0.0.1:4222); the stream and its retention come from the
    /// feeds file's [nats] table (docs/nats.md). Overrides [nats] url.
    /// Credentials: --nats-creds, or FERROFEED_NATS_USER and
    /// FERROFEED_NATS_PASSWORD, FERROFEED_NATS_TOKEN or FERROFEED_NATS_CREDS
    /// in the environment (userinfo in the URL works too, but shows in the
    /// process list; the URL is only ever printed redacted).
    #[arg(long, value_name = "URL")]
    sink: Option<String>,
    /// A NATS credentials file (user JWT and NKey seed, as `nsc` writes it)
    /// for the sink. Overrides FERROFEED_NATS_* in the environment.
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// Carry only shard K of N of the feeds file's streams and books
    /// (deterministic FNV-1a of venue:market:stream; N collectors with 0/N ..
    /// N-1/N cover everything once). Overrides the file's `shard`.
    #[arg(long, value_name = "K/N", value_parser = clap::value_parser!(Shard))]
    shard: Option<Shard>,
    /// This collector's name in NATS status subjects and ids (default:
    /// <hostname>-<pid>). Overrides [nats] collector.
    #[arg(long, value_name = "NAME")]
    collector: Option<String>,
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
    /// `K/N`: carry only this shard of the streams and books.
    shard: Option<String>,
    #[serde(default)]
    sim: SimSection,
    nats: Option<NatsSection>,
    #[serde(default)]
    feed: Vec<FeedSection>,
}

/// `[nats]`: the JetStream sink (docs/nats.md). Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NatsSection {
    url: Option<String>,
    stream: Option<String>,
    subject_prefix: Option<String>,
    retention: Option<String>,
    max_age: Option<String>,
    max_bytes: Option<u64>,
    max_msgs: Option<u64>,
    duplicate_window: Option<String>,
    storage: Option<String>,
    replicas: Option<usize>,
    max_in_flight: Option<usize>,
    buffer: Option<usize>,
    ack_timeout: Option<String>,
    close_timeout: Option<String>,
    collector: Option<String>,
}

/// The checked `[nats]` table.
#[derive(Debug, Clone)]
struct NatsSpec {
    /// `url` empty when the file gives none (then `--sink` must).
    cfg: NatsConfig,
    /// How long publishing may go on after the feed stops.
    close_timeout: Duration,
}

/// Checks `[nats]`; `at` names the file for errors.
fn parse_nats(at: &str, n: NatsSection) -> anyhow::Result<NatsSpec> {
    let dur = |key: &str, v: Option<String>, default: Duration| -> anyhow::Result<Duration> {
        match v {
            None => Ok(default),
            Some(v) => crate::parse_duration(&v).map_err(|e| anyhow::anyhow!("{at}: [nats] {key}: {e}")),
        }
    };
    let d = NatsConfig::default();
    let retention = match n.retention.as_deref() {
        None => Retention::Limits,
        Some(r) => Retention::from_name(r).with_context(|| {
            format!("{at}: [nats] retention: unknown {r:?}: expected limits, interest or workqueue")
        })?,
    };
    let storage = match n.storage.as_deref() {
        None | Some("file") => Storage::File,
        Some("memory") => Storage::Memory,
        Some(o) => bail!("{at}: [nats] storage: unknown {o:?}: expected file or memory"),
    };
    let cfg = NatsConfig {
        url: n.url.unwrap_or_default(),
        auth: NatsAuth::None,
        stream: n.stream.unwrap_or(d.stream),
        subject_prefix: n.subject_prefix.unwrap_or(d.subject_prefix),
        retention,
        max_age: dur("max_age", n.max_age, d.max_age)?,
        max_bytes: n.max_bytes.unwrap_or(d.max_bytes),
        max_msgs: n.max_msgs.unwrap_or(d.max_msgs),
        duplicate_window: dur("duplicate_window", n.duplicate_window, d.duplicate_window)?,
        storage,
        replicas: n.replicas.unwrap_or(d.replicas),
        max_in_flight: n.max_in_flight.unwrap_or(d.max_in_flight),
        buffer: n.buffer.unwrap_or(d.buffer),
        ack_timeout: dur("ack_timeout", n.ack_timeout, d.ack_timeout)?,
        collector: n.collector.unwrap_or(d.collector),
    };
    if cfg.max_in_flight == 0 || cfg.buffer == 0 || cfg.replicas == 0 {
        bail!("{at}: [nats] max_in_flight, buffer and replicas must be at least 1");
    }
    if cfg.ack_timeout < Duration::from_millis(10) {
        bail!("{at}: [nats] ack_timeout must be at least 10ms");
    }
    if cfg.duplicate_window.is_zero() {
        bail!("{at}: [nats] duplicate_window must be positive (it is what drops a hot standby's duplicates)");
    }
    if !cfg.max_age.is_zero() && cfg.duplicate_window > cfg.max_age {
        bail!("{at}: [nats] duplicate_window must not exceed max_age");
    }
    let close_timeout = dur("close_timeout", n.close_timeout, Duration::from_secs(10))?;
    Ok(NatsSpec { cfg, close_timeout })
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
    market: MarketId,
    env: EnvSpec,
    streams: Vec<String>,
    books: Vec<String>,
}

#[derive(Debug, Clone)]
struct RecordConfig {
    sim: SimSection,
    feeds: Vec<FeedSpec>,
    nats: Option<NatsSpec>,
    shard: Option<Shard>,
}

impl RecordConfig {
    /// Keeps only the streams and books of `shard` (see [`Shard`]); feeds left
    /// with nothing are removed.
    fn apply_shard(&mut self, shard: Shard) {
        for f in &mut self.feeds {
            let (v, m) = (f.market.venue_name(), f.market.name());
            f.streams.retain(|s| shard.owns(&Shard::stream_key(v, m, s)));
            f.books.retain(|b| shard.owns(&Shard::book_key(v, m, b)));
        }
        self.feeds.retain(|f| !f.streams.is_empty() || !f.books.is_empty());
    }
}

fn load_config(path: &Path) -> anyhow::Result<RecordConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the feeds file {}", path.display()))?;
    parse_config(&path.display().to_string(), &text)
}

/// Parses and checks a feeds file; every error names the file and the entry.
fn parse_config(file: &str, text: &str) -> anyhow::Result<RecordConfig> {
    let raw: ConfigFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let shard = match &raw.shard {
        None => None,
        Some(s) => Some(s.parse::<Shard>().map_err(|e| anyhow::anyhow!("{file}: shard: {e}"))?),
    };
    let nats = match raw.nats {
        None => None,
        Some(n) => Some(parse_nats(file, n)?),
    };
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
        let market = super::venue_market(&f.venue, &f.market).map_err(|e| anyhow::anyhow!("{at}: {e:#}"))?;
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
    Ok(RecordConfig { sim: raw.sim, feeds, nats, shard })
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

impl Tally {
    fn count(&mut self, ev: &Event) {
        let m = self.markets.entry(format!("{}/{}", ev.venue.name(), ev.market.name())).or_default();
        m.records += 1;
        *self.by_type.entry(ev.kind.type_name()).or_default() += 1;
        if matches!(ev.kind, EventKind::Gap(_)) {
            m.gaps += 1;
            self.gaps += 1;
        }
    }
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
/// With `parquet`, every file the recorder finishes is handed to the
/// converter thread, and at a clean end every file still open.
fn writer(
    mut rec: Recorder,
    mut rx: tokio::sync::mpsc::Receiver<ToWriter>,
    counters: Arc<Counters>,
    progress: Progress,
    parquet: Option<std::sync::mpsc::SyncSender<PathBuf>>,
) -> WriterDone {
    let mut tally = Tally::default();
    let convert = |files: Vec<PathBuf>| {
        if let Some(tx) = &parquet {
            for f in files {
                if tx.send(f).is_err() {
                    progress.line("parquet: the converter stopped; hours are no longer converted");
                }
            }
        }
    };
    while let Some(msg) = rx.blocking_recv() {
        let r = match msg {
            ToWriter::Flush => rec.flush(),
            ToWriter::Event(ev) => rec.append(&ev).map(|()| tally.count(&ev)),
        };
        convert(rec.take_closed());
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
    convert(rec.take_closed());
    if error.is_none() {
        convert(rec.open_files());
    }
    WriterDone { rec, tally, error }
}

/// Capture files waiting for the Parquet converter (one per market and hour).
const CONVERT_QUEUE: usize = 256;

/// The Parquet converter thread: converts each capture file it is handed
/// (`ferrofeed::export::parquet::export_file`) until the channel closes.
fn converter(rx: std::sync::mpsc::Receiver<PathBuf>, out: PathBuf, progress: Progress) -> ConvertDone {
    let cfg = ExportConfig::default();
    let mut done = ConvertDone::default();
    while let Ok(path) = rx.recv() {
        let t = Instant::now();
        let mut on_problem = |p: Problem| progress.line(&format!("parquet: {p}"));
        match export_file(&path, &out, &cfg, &mut on_problem) {
            Ok(h) => {
                progress.line(&format!(
                    "parquet: {}: {} events in {:.1}s: {}",
                    h.capture,
                    h.events,
                    t.elapsed().as_secs_f64(),
                    super::export::rows_text(&h)
                ));
                done.summary.add(&h);
            }
            Err(e) => {
                progress.line(&format!("parquet: converting {} failed: {e}", path.display()));
                done.failed.push(path.display().to_string());
            }
        }
    }
    done
}

/// What the converter did.
#[derive(Debug, Default)]
struct ConvertDone {
    summary: ExportSummary,
    failed: Vec<String>,
}

/// The capture files a crashed or stopped run left unconverted: the newest
/// file of each venue/market (what the recorder checked at open) when its
/// hour is over. Converting an hour again is harmless (it is replaced).
fn unconverted(rec: &Recorder) -> Vec<PathBuf> {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let now = ferrofeed::record::relative_path("v", "m", ferrofeed::record::hour_of(now_ns));
    let Some(now) = CaptureHour::from_path(&now) else { return Vec::new() };
    rec.repairs()
        .iter()
        .map(|r| rec.dir().join(&r.file))
        .filter(|p| CaptureHour::from_path(p).is_some_and(|h| h.key() < now.key()))
        .collect()
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

/// The NATS sink's part of the progress line.
fn nats_status(s: &NatsStats) -> String {
    format!(
        "nats: published={} duplicates={} failed={} buffered={} in_flight={} reconnects={}{}",
        s.published,
        s.duplicates,
        s.failed,
        s.buffered,
        s.in_flight,
        s.reconnects,
        if s.connected { "" } else { " DISCONNECTED" }
    )
}

/// The sink's counters as `nats_*` summary fields.
fn nats_summary(summary: &mut serde_json::Map<String, serde_json::Value>, cfg: &NatsConfig, s: &NatsStats) {
    let fields = serde_json::json!({
        "nats_url": cfg.shown_url(),
        "nats_stream": cfg.stream,
        "nats_collector": cfg.collector,
        "nats_received": s.received,
        "nats_published": s.published,
        "nats_duplicates": s.duplicates,
        "nats_failed": s.failed,
        "nats_failed_by_type": s.failed_by_type,
        "nats_unconfirmed": s.unconfirmed,
        "nats_retries": s.retries,
        "nats_buffer_peak": s.buffer_peak,
        "nats_disconnects": s.disconnects,
        "nats_reconnects": s.reconnects,
        "nats_reports": s.reports,
    });
    if let serde_json::Value::Object(m) = fields {
        summary.extend(m);
    }
}

pub(crate) async fn run_record(a: RecordArgs) -> anyhow::Result<()> {
    let mut cfg = load_config(&a.config)?;
    for (name, d) in [("--flush-interval", a.flush_interval), ("--progress-interval", a.progress_interval)] {
        if d < Duration::from_millis(10) {
            bail!("{name} must be at least 10ms, got {d:?}");
        }
    }
    // Where events go: files, NATS, or both.
    let nats = match (a.sink.clone(), cfg.nats.take()) {
        (Some(url), spec) => {
            let mut spec =
                spec.unwrap_or(NatsSpec { cfg: NatsConfig::default(), close_timeout: Duration::from_secs(10) });
            spec.cfg.url = url;
            Some(spec)
        }
        (None, Some(spec)) if spec.cfg.url.is_empty() => {
            bail!("{}: [nats] has no `url`: add one or give --sink nats://HOST:PORT", a.config.display())
        }
        (None, spec) => spec,
    };
    let nats = match nats {
        None => None,
        Some(mut n) => {
            if let Some(c) = &a.collector {
                n.cfg.collector = c.clone();
            }
            n.cfg.auth = match &a.nats_creds {
                Some(file) => NatsAuth::CredsFile(file.clone()),
                None => NatsAuth::from_env()?,
            };
            Some(n)
        }
    };
    if a.out.is_none() && nats.is_none() {
        bail!("nothing to write to: give --out DIR, --sink nats://HOST:PORT (or [nats] in the feeds file), or both");
    }
    let shard = a.shard.or(cfg.shard);
    if let Some(shard) = shard {
        let before: usize = cfg.feeds.iter().map(|f| f.streams.len() + f.books.len()).sum();
        cfg.apply_shard(shard);
        let after: usize = cfg.feeds.iter().map(|f| f.streams.len() + f.books.len()).sum();
        eprintln!("ferrofeed record: shard {shard}: {after} of {before} streams and books");
        if after == 0 {
            bail!("shard {shard} holds none of the {before} streams and books of {}", a.config.display());
        }
    }
    let rec = match &a.out {
        None => None,
        Some(out) => {
            let rcfg = RecorderConfig {
                flush_records: usize::try_from(a.flush_records).unwrap_or(usize::MAX),
                flush_bytes: usize::try_from(a.flush_bytes).unwrap_or(usize::MAX),
                level: a.level,
            };
            let rec = Recorder::open(out, rcfg).context("opening the output directory")?;
            for r in rec.repairs() {
                eprintln!("ferrofeed record: {r}");
            }
            Some(rec)
        }
    };
    // The sink first, so that nothing the feed delivers waits for it.
    let mut sink = match &nats {
        None => None,
        Some(n) => {
            let sink = NatsSink::connect(n.cfg.clone()).await.context("starting the NATS sink")?;
            eprintln!(
                "ferrofeed record: publishing to NATS {} stream {} as collector {}",
                n.cfg.shown_url(),
                n.cfg.stream,
                n.cfg.collector
            );
            Some(sink)
        }
    };

    // The simulator, if any feed asks for it.
    let sim_feeds: Vec<MarketId> = cfg.feeds.iter().filter(|f| f.env == EnvSpec::Sim).map(|f| f.market).collect();
    let sim = if sim_feeds.is_empty() {
        None
    } else {
        let mut sc = super::sim_config_for(&sim_feeds)?;
        sc.seed = cfg.sim.seed;
        for m in &mut sc.markets {
            m.timing.actions_per_sec = cfg.sim.actions_per_sec;
            m.timing.scale = cfg.sim.time_scale;
        }
        let sim = Sim::start(sc).await.context("starting the simulator")?;
        for h in sim.markets() {
            let (venue, market) = h.config().venue_market();
            eprintln!("ferrofeed record: simulator {venue} {market} on {}", h.ws_url());
        }
        Some(sim)
    };
    let sim_envs = match &sim {
        Some(s) => super::sim_overrides(s)?,
        None => Default::default(),
    };
    let mut client = ClientConfig::default();
    for f in &cfg.feeds {
        let env = match &f.env {
            EnvSpec::Production => Environment::Production,
            EnvSpec::Testnet => Environment::Testnet,
            EnvSpec::Demo => Environment::Demo,
            EnvSpec::Custom { ws, rest } => Environment::Custom { ws: ws.clone(), rest: rest.clone() },
            EnvSpec::Sim => sim_envs.get(&f.market).cloned().context("simulator market")?,
        };
        client.overrides.insert(f.market, env);
    }
    let mut feed = Feed::new(FeedConfig { client, ..FeedConfig::default() });
    let _metrics = super::start_metrics(a.metrics, feed.stats()).await?;
    let (mut n_streams, mut n_books) = (0, 0);
    for f in &cfg.feeds {
        let on = f.market;
        if !f.streams.is_empty() {
            feed.subscribe(on, &f.streams).await.with_context(|| format!("subscribing on {on}"))?;
        }
        for b in &f.books {
            feed.track_book(on, b).await.with_context(|| format!("tracking the {on} book {b}"))?;
        }
        n_streams += f.streams.len();
        n_books += f.books.len();
    }
    let dest = match (&a.out, &nats) {
        (Some(out), Some(n)) => format!("{} and NATS {}", out.display(), n.cfg.shown_url()),
        (Some(out), None) => out.display().to_string(),
        (None, Some(n)) => format!("NATS {}", n.cfg.shown_url()),
        (None, None) => String::new(),
    };
    eprintln!(
        "ferrofeed record: recording {n_streams} streams and {n_books} books on {} markets to {dest}",
        cfg.feeds.len()
    );

    let progress = Progress::new();
    let counters = Arc::new(Counters::default());
    let (conv_tx, converter_thread) = match (&a.parquet, &rec) {
        (Some(dir), Some(rec)) => {
            let (tx, rx) = std::sync::mpsc::sync_channel(CONVERT_QUEUE);
            let (dir, conv_progress) = (dir.clone(), progress.clone());
            let t = std::thread::Builder::new()
                .name("ferrofeed-record-parquet".into())
                .spawn(move || converter(rx, dir, conv_progress))
                .context("starting the Parquet converter thread")?;
            for f in unconverted(rec) {
                progress.line(&format!("parquet: converting {} (left unconverted by an earlier run)", f.display()));
                let _ = tx.send(f);
            }
            (Some(tx), Some(t))
        }
        _ => (None, None),
    };
    let (tx, writer_thread) = match rec {
        None => (None, None),
        Some(rec) => {
            let (tx, rx) = tokio::sync::mpsc::channel(WRITER_QUEUE);
            let (counters, progress) = (counters.clone(), progress.clone());
            let t = std::thread::Builder::new()
                .name("ferrofeed-record-writer".into())
                .spawn(move || writer(rec, rx, counters, progress, conv_tx))
                .context("starting the writer thread")?;
            (Some(tx), Some(t))
        }
    };
    // Without files, the summary's counts are kept here.
    let mut local = Tally::default();
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
            _ = flush_tick.tick(), if tx.is_some() => {
                if let Some(tx) = &tx && tx.send(ToWriter::Flush).await.is_err() {
                    break "error";
                }
            }
            _ = progress_tick.tick() => {
                let mut s = if tx.is_some() { counters.status(start) } else {
                    format!("{:.1}s received={} gaps={}", start.elapsed().as_secs_f64(), local.markets.values().map(|m| m.records).sum::<u64>(), local.gaps)
                };
                if let Some(sink) = &sink {
                    s = format!("{s} {}", nats_status(&sink.stats()));
                }
                match &progress.bar {
                    Some(b) => b.set_message(s),
                    None => eprintln!("ferrofeed record: {s}"),
                }
            }
            report = async { match sink.as_mut() { Some(s) => s.report().await, None => std::future::pending().await } } => {
                // A loss report of the sink: recorded locally and counted like any gap.
                if let Some(ev) = report {
                    if let EventKind::Gap(g) = &ev.kind {
                        progress.line(&format!("{}: not stored in NATS: {}", g.stream, serde_json::to_string(&g.missing).unwrap_or_default()));
                    }
                    local.count(&ev);
                    if let Some(tx) = &tx && tx.send(ToWriter::Event(ev)).await.is_err() {
                        break "error";
                    }
                }
            }
            ev = feed.next() => {
                let Some(ev) = ev else { break "feed closed" };
                warn_status(&ev, &progress);
                local.count(&ev);
                if let Some(sink) = sink.as_mut() {
                    sink.publish(&ev);
                }
                if let Some(tx) = &tx && tx.send(ToWriter::Event(ev)).await.is_err() {
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
            local.count(&ev);
            if let Some(sink) = sink.as_mut() {
                sink.publish(&ev);
            }
            if let Some(tx) = &tx
                && tx.send(ToWriter::Event(ev)).await.is_err()
            {
                break;
            }
        }
    }
    // Publish what the sink holds (bounded by close_timeout); its last loss
    // reports are recorded too.
    let nats_done = match (sink.take(), &nats) {
        (Some(sink), Some(n)) => {
            let (stats, reports) = sink.close(n.close_timeout).await;
            for ev in reports {
                if let EventKind::Gap(g) = &ev.kind {
                    progress.line(&format!(
                        "{}: not stored in NATS: {}",
                        g.stream,
                        serde_json::to_string(&g.missing).unwrap_or_default()
                    ));
                }
                local.count(&ev);
                if let Some(tx) = &tx {
                    let _ = tx.send(ToWriter::Event(ev)).await;
                }
            }
            if stats.failed > 0 || stats.unconfirmed > 0 {
                progress.line(&format!(
                    "NATS: {} events not stored (reported as gaps), {} unconfirmed",
                    stats.failed, stats.unconfirmed
                ));
            }
            Some((n.cfg.clone(), stats))
        }
        _ => None,
    };
    drop(tx);
    let done = match writer_thread {
        Some(t) => Some(tokio::task::spawn_blocking(move || t.join()).await),
        None => None,
    };
    // The writer handed over its last hours and closed the channel: the
    // converter finishes them and ends.
    let converted = match converter_thread {
        Some(t) => Some(tokio::task::spawn_blocking(move || t.join()).await),
        None => None,
    };
    progress.finish();
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut summary = serde_json::Map::new();
    let mut result = Ok(());
    match done {
        None => {
            let received: u64 = local.markets.values().map(|m| m.records).sum();
            let fields = serde_json::json!({
                "out": null,
                "stopped_by": stopped_by,
                "duration_s": (elapsed * 1000.0).round() / 1000.0,
                "received": received,
                "gaps": local.gaps,
                "markets": local.markets,
                "events": local.by_type,
                "records_per_s": (received as f64 / elapsed.max(1e-3)).round(),
            });
            if let serde_json::Value::Object(m) = fields {
                summary.extend(m);
            }
        }
        Some(Ok(Ok(WriterDone { rec, tally, error }))) => {
            let (bytes_in, bytes_out) =
                rec.files().values().fold((0, 0), |(i, o), f| (i + f.bytes_in, o + f.bytes_out));
            let fields = serde_json::json!({
                "out": a.out.as_ref().map(|o| o.display().to_string()),
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
            if let serde_json::Value::Object(m) = fields {
                summary.extend(m);
            }
            if let Some(e) = error {
                result = Err(anyhow::Error::new(e).context(format!(
                    "recording stopped; {} records acknowledged, {} not written",
                    rec.acknowledged(),
                    rec.pending()
                )));
            }
        }
        Some(_) => bail!("the writer thread panicked; records acknowledged before it are on disk"),
    }
    if let Some((ncfg, stats)) = &nats_done {
        nats_summary(&mut summary, ncfg, stats);
    }
    if let (Some(converted), Some(dir)) = (converted, &a.parquet) {
        let ConvertDone { summary: s, failed } = match converted {
            Ok(Ok(c)) => c,
            _ => ConvertDone { failed: vec!["the converter thread panicked".into()], ..ConvertDone::default() },
        };
        summary.insert(
            "parquet".into(),
            serde_json::json!({
                "out": dir.display().to_string(),
                "hours": s.hours,
                "events": s.events,
                "rows": s.rows,
                "files": s.files,
                "bytes_out": s.bytes_out,
                "problems": s.problems,
                "failed": failed,
            }),
        );
        if (s.problems > 0 || !failed.is_empty()) && result.is_ok() {
            result = Err(anyhow::anyhow!(
                "parquet: {} events not converted and {} hours failed (reported above); the capture files hold them: `ferrofeed export parquet` redoes an hour",
                s.problems,
                failed.len()
            ));
        }
    }
    if let Some(shard) = shard {
        let streams: Vec<String> =
            cfg.feeds.iter().flat_map(|f| f.streams.iter().map(move |s| format!("{}:{s}", f.market.name()))).collect();
        let books: Vec<String> =
            cfg.feeds.iter().flat_map(|f| f.books.iter().map(move |b| format!("{}:{b}", f.market.name()))).collect();
        summary.insert(
            "shard".into(),
            serde_json::json!({ "shard": shard.to_string(), "streams": streams, "books": books }),
        );
    }
    println!("{}", serde_json::Value::Object(summary));
    result
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
        assert_eq!(c.feeds[0].market, ferrofeed::venues::binance::spec::SPOT);
        let bybit = "[[feed]]\nvenue = \"bybit\"\nmarket = \"inverse\"\nenv = \"demo\"\nstreams = [\"publicTrade.BTCUSD\"]\nbooks = [\"BTCUSD\"]\n";
        let b = parse_config("feeds.toml", bybit).expect("valid");
        assert_eq!((b.feeds[0].market, &b.feeds[0].env), (ferrofeed::venues::bybit::spec::INVERSE, &EnvSpec::Demo));
        let e = format!("{:#}", parse_config("feeds.toml", &bybit.replace("inverse", "usdm")).expect_err("usdm"));
        assert!(e.contains("unknown bybit market \"usdm\""), "{e}");
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
            (feed("env = \"sim\"\nstreams = [\"a@trade\"]").replace("spot", "moon"), "unknown binance market \"moon\""),
            (feed("env = \"sim\"\nstreams = [\"a@trade\"]").replace("\"binance\"", "\"okx\""), "unknown venue"),
            (format!("{0}{0}", feed("env = \"sim\"\nstreams = [\"a@trade\"]")), "already recorded by [[feed]] #1"),
            (format!("[sim]\nactions_per_sec = -1.0\n{}", feed("env = \"sim\"\nbooks = [\"X\"]")), "actions_per_sec"),
        ] {
            let e = format!("{:#}", parse_config("feeds.toml", &text).expect_err(&text));
            assert!(e.starts_with("feeds.toml: ") && e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn nats_and_shard_keys_parse_and_bad_ones_are_clear_errors() {
        let feed = "[[feed]]\nvenue = \"binance\"\nmarket = \"spot\"\nenv = \"sim\"\nstreams = [\"a@trade\", \"b@trade\", \"c@trade\"]\nbooks = [\"X\", \"Y\"]\n";
        let ok = format!(
            "shard = \"1/3\"\n[nats]\nurl = \"nats://127.0.0.1:4222\"\nstream = \"S\"\nretention = \"interest\"\nmax_age = \"1h\"\nduplicate_window = \"5m\"\nbuffer = 10\nmax_in_flight = 4\nstorage = \"memory\"\ncollector = \"east-1\"\n{feed}"
        );
        let c = parse_config("f.toml", &ok).expect("valid");
        let n = c.nats.as_ref().expect("[nats]");
        assert_eq!(
            (n.cfg.url.as_str(), n.cfg.stream.as_str(), n.cfg.collector.as_str()),
            ("nats://127.0.0.1:4222", "S", "east-1")
        );
        assert_eq!((n.cfg.retention, n.cfg.storage), (Retention::Interest, Storage::Memory));
        assert_eq!((n.cfg.max_age, n.cfg.duplicate_window), (Duration::from_secs(3600), Duration::from_secs(300)));
        assert_eq!((n.cfg.buffer, n.cfg.max_in_flight, n.close_timeout), (10, 4, Duration::from_secs(10)));
        assert_eq!(c.shard, Shard::new(1, 3));

        // Shards split the file's streams and books with no overlap.
        let mut seen = Vec::new();
        for k in 0..3 {
            let mut c = parse_config("f.toml", feed).expect("valid");
            c.apply_shard(Shard::new(k, 3).expect("shard"));
            for f in &c.feeds {
                seen.extend(f.streams.iter().cloned());
                seen.extend(f.books.iter().cloned());
            }
        }
        seen.sort();
        assert_eq!(seen, ["X", "Y", "a@trade", "b@trade", "c@trade"]);

        for (text, want) in [
            (format!("shard = \"2/2\"\n{feed}"), "invalid shard"),
            (format!("[nats]\nretention = \"forever\"\n{feed}"), "unknown \"forever\""),
            (format!("[nats]\nstorage = \"disk\"\n{feed}"), "expected file or memory"),
            (format!("[nats]\nduplicate_window = \"2h\"\nmax_age = \"1h\"\n{feed}"), "must not exceed max_age"),
            (format!("[nats]\nbuffer = 0\n{feed}"), "at least 1"),
            (format!("[nats]\nack_timeout = \"soon\"\n{feed}"), "ack_timeout"),
            (format!("[nats]\nsubject = \"x\"\n{feed}"), "unknown field `subject`"),
        ] {
            let e = format!("{:#}", parse_config("f.toml", &text).expect_err(&text));
            assert!(e.starts_with("f.toml") && e.contains(want), "{text:?}: {e}");
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
