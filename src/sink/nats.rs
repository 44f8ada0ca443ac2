//! The NATS JetStream sink and reader.
//!
//! [`NatsSink`] publishes normalized events (the JSON of `docs/events.md`) to
//! a JetStream stream; [`NatsReader`] reads them back. The subject and
//! message-id scheme, the delivery guarantees and the outage policy are
//! documented in `docs/nats.md`; in short:
//!
//! - Market data goes to `<prefix>.<venue>.<market>.<type>.<SYMBOL>` with a
//!   `Nats-Msg-Id` derived only from the venue's identity of the event
//!   ([`message_id`]): two collectors publishing the same event produce the
//!   same id and JetStream stores it once (within the stream's duplicate
//!   window).
//! - Collector-local events (connection status, gaps, `book_resync`,
//!   decoding errors, and the sink's own loss reports) go to
//!   `<prefix>.<venue>.<market>.status.<collector>` with an id unique to the
//!   collector.
//! - At most `max_in_flight` publishes wait for their acknowledgement. Events
//!   that cannot be sent yet (disconnected, in-flight full) wait in a local
//!   buffer of `buffer` events; when it is full a new event is **not stored**:
//!   it is counted (`failed`) and reported as a `gap` event on the status
//!   subject (and to the caller) once the sink is healthy again.
//! - A publish whose acknowledgement does not come (timeout, connection lost,
//!   no responders while the server restarts) is retried with the same id
//!   until it is acknowledged: the stream's de-duplication makes the retry
//!   harmless, so an acknowledged event is stored exactly once, whatever
//!   happened to the first attempt.
//! - Credentials ([`NatsAuth`]: user and password, a token, or a NATS
//!   credentials file) come from the environment or a file
//!   ([`NatsAuth::from_env`]), or from the URL's userinfo; they are held in
//!   `secrecy` types, handed to the client as options (never inside the
//!   server URL it logs), and every URL shown (errors, `Debug`, the CLI) is
//!   redacted: `nats://***@127.0.0.1:4222`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, message::PublishMessage, publish::PublishAck, stream};
use bytes::Bytes;
use ferrofeed_engine::redact;
use ferrofeed_model::event::{Event, EventKind, Gap, MarketType, Missing, UnknownExtent, Venue};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot};

use super::fnv1a64;

/// What the stream keeps, JetStream's retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Until a limit (`max_age`, `max_bytes`, `max_msgs`) is reached: the
    /// usual choice for a venue's record (consumers replay at will).
    #[default]
    Limits,
    /// While some consumer has not acknowledged it.
    Interest,
    /// Until one consumer acknowledges it.
    WorkQueue,
}

impl Retention {
    /// `limits`, `interest` or `workqueue`.
    pub fn from_name(s: &str) -> Option<Retention> {
        match s {
            "limits" => Some(Retention::Limits),
            "interest" => Some(Retention::Interest),
            "workqueue" => Some(Retention::WorkQueue),
            _ => None,
        }
    }
}

/// Where the stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// Files (survive a server restart).
    #[default]
    File,
    /// Memory only.
    Memory,
}

/// The environment variable naming a NATS credentials file (JWT and NKey seed).
pub const ENV_CREDS: &str = "FERROFEED_NATS_CREDS";
/// The environment variable holding a NATS token.
pub const ENV_TOKEN: &str = "FERROFEED_NATS_TOKEN";
/// The environment variable holding a NATS user name (with [`ENV_PASSWORD`]).
pub const ENV_USER: &str = "FERROFEED_NATS_USER";
/// The environment variable holding a NATS password (with [`ENV_USER`]).
pub const ENV_PASSWORD: &str = "FERROFEED_NATS_PASSWORD";

/// How to authenticate to the NATS server. `Debug` names the kind only.
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// No credentials (or the ones in the URL's userinfo).
    #[default]
    None,
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: SecretString,
    },
    /// A token.
    Token(SecretString),
    /// A NATS credentials file (`.creds`: a user JWT and its NKey seed),
    /// read when connecting.
    CredsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => {
                f.debug_struct("UserPassword").field("user", user).field("password", &"<redacted>").finish()
            }
            NatsAuth::Token(_) => f.write_str("Token(<redacted>)"),
            NatsAuth::CredsFile(p) => f.debug_tuple("CredsFile").field(p).finish(),
        }
    }
}

impl NatsAuth {
    /// Credentials from the environment: [`ENV_CREDS`] (a credentials
    /// file), [`ENV_TOKEN`], or [`ENV_USER`] with [`ENV_PASSWORD`];
    /// [`NatsAuth::None`] when none is set. More than one kind, or a user
    /// without a password, is an error (that names variables, never values).
    pub fn from_env() -> Result<NatsAuth, NatsError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (creds, token, user, password) = (var(ENV_CREDS), var(ENV_TOKEN), var(ENV_USER), var(ENV_PASSWORD));
        let kinds = usize::from(creds.is_some())
            + usize::from(token.is_some())
            + usize::from(user.is_some() || password.is_some());
        if kinds > 1 {
            return Err(NatsError::Config(format!(
                "give one kind of NATS credentials: {ENV_CREDS}, {ENV_TOKEN}, or {ENV_USER} with {ENV_PASSWORD}"
            )));
        }
        Ok(match (creds, token, user, password) {
            (Some(path), ..) => NatsAuth::CredsFile(path.into()),
            (_, Some(t), ..) => NatsAuth::Token(t.into()),
            (_, _, Some(user), Some(p)) => NatsAuth::UserPassword { user, password: p.into() },
            (_, _, None, Some(_)) | (_, _, Some(_), None) => {
                return Err(NatsError::Config(format!("{ENV_USER} and {ENV_PASSWORD} go together")));
            }
            _ => NatsAuth::None,
        })
    }

    /// Whether credentials are set.
    pub fn is_some(&self) -> bool {
        !matches!(self, NatsAuth::None)
    }

    /// The secret values, for scrubbing messages.
    fn secrets(&self) -> Vec<&str> {
        match self {
            NatsAuth::UserPassword { password, .. } => vec![password.expose_secret()],
            NatsAuth::Token(t) => vec![t.expose_secret()],
            NatsAuth::None | NatsAuth::CredsFile(_) => Vec::new(),
        }
    }
}

/// `url` (one server or a comma-separated list) without userinfo, and the
/// credentials the userinfo carried (`user:password` or a token; the first
/// one found). The client gets the bare URL, whose addresses it logs.
fn split_userinfo(url: &str) -> (String, NatsAuth) {
    let mut auth = NatsAuth::None;
    let servers: Vec<String> = url
        .split(',')
        .map(|one| {
            let one = one.trim();
            let (scheme, rest) = one.split_once("://").map_or(("", one), |(s, r)| (s, r));
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let Some(at) = rest[..end].rfind('@') else { return one.to_string() };
            let info = &rest[..at];
            if !auth.is_some() && !info.is_empty() {
                auth = match info.split_once(':') {
                    Some((user, password)) => {
                        NatsAuth::UserPassword { user: user.to_string(), password: password.to_string().into() }
                    }
                    None => NatsAuth::Token(info.to_string().into()),
                };
            }
            let bare = &rest[at + 1..];
            if scheme.is_empty() { bare.to_string() } else { format!("{scheme}://{bare}") }
        })
        .collect();
    (servers.join(","), auth)
}

/// Connect options carrying `auth` (or the URL's userinfo), and the URL to
/// connect to without userinfo.
async fn auth_options(
    url: &str,
    auth: &NatsAuth,
    opts: async_nats::ConnectOptions,
) -> Result<(async_nats::ConnectOptions, String), NatsError> {
    let (bare, from_url) = split_userinfo(url);
    let auth = match (auth, &from_url) {
        (NatsAuth::None, _) => &from_url,
        (given, NatsAuth::None) => given,
        _ => {
            return Err(NatsError::Config(format!(
                "NATS credentials given twice: in the URL ({}) and separately; keep one",
                redact::url(url)
            )));
        }
    };
    let opts = match auth {
        NatsAuth::None => opts,
        NatsAuth::UserPassword { user, password } => {
            opts.user_and_password(user.clone(), password.expose_secret().to_string())
        }
        NatsAuth::Token(t) => opts.token(t.expose_secret().to_string()),
        NatsAuth::CredsFile(path) => opts.credentials_file(path).await.map_err(|e| {
            // The file's content is never shown, only that it could not be used.
            NatsError::Config(format!("NATS credentials file {}: {}", path.display(), e.kind()))
        })?,
    };
    Ok((opts, bare))
}

/// How a [`NatsSink`] connects and what stream it publishes to. `Debug`
/// shows the URL redacted and no credential.
#[derive(Clone)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222` (several: comma separated).
    /// Userinfo (`nats://user:pass@host`) still works, but prefer
    /// [`NatsConfig::auth`]: a URL is easily shown; this one is only ever
    /// shown redacted.
    pub url: String,
    /// Credentials (from the environment or a file: [`NatsAuth::from_env`]).
    pub auth: NatsAuth,
    /// The JetStream stream, created (or updated to this configuration) on
    /// connect. Default `FERROFEED`.
    pub stream: String,
    /// The first subject token; the stream captures `<prefix>.>`. Default `ferrofeed`.
    pub subject_prefix: String,
    /// Retention policy.
    pub retention: Retention,
    /// Oldest message kept (zero: no age limit). Default 24 h.
    pub max_age: Duration,
    /// Size limit of the stream in bytes (zero: none).
    pub max_bytes: u64,
    /// Message-count limit of the stream (zero: none).
    pub max_msgs: u64,
    /// How long JetStream remembers a message id to drop duplicates: must
    /// cover the longest time between two collectors publishing the same
    /// event, and the retries of one. Default 2 min.
    pub duplicate_window: Duration,
    /// File or memory storage.
    pub storage: Storage,
    /// Replicas (clustered servers); 1 on a single server.
    pub replicas: usize,
    /// Publishes awaiting their acknowledgement, at most. Default 1024.
    pub max_in_flight: usize,
    /// Events waiting to be published (disconnected or in-flight full), at
    /// most; beyond it new events are counted as failed and reported. Default 100 000.
    pub buffer: usize,
    /// How long to wait for an acknowledgement before the publish is retried. Default 5 s.
    pub ack_timeout: Duration,
    /// This collector's name, a subject token: its status subject and the
    /// prefix of its status message ids. Default `<hostname>-<pid>`.
    pub collector: String,
}

impl Default for NatsConfig {
    fn default() -> NatsConfig {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            auth: NatsAuth::None,
            stream: "FERROFEED".into(),
            subject_prefix: "ferrofeed".into(),
            retention: Retention::Limits,
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 0,
            max_msgs: 0,
            duplicate_window: Duration::from_secs(120),
            storage: Storage::File,
            replicas: 1,
            max_in_flight: 1024,
            buffer: 100_000,
            ack_timeout: Duration::from_secs(5),
            collector: default_collector(),
        }
    }
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &redact::url(&self.url))
            .field("auth", &self.auth)
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("retention", &self.retention)
            .field("max_age", &self.max_age)
            .field("max_bytes", &self.max_bytes)
            .field("max_msgs", &self.max_msgs)
            .field("duplicate_window", &self.duplicate_window)
            .field("storage", &self.storage)
            .field("replicas", &self.replicas)
            .field("max_in_flight", &self.max_in_flight)
            .field("buffer", &self.buffer)
            .field("ack_timeout", &self.ack_timeout)
            .field("collector", &self.collector)
            .finish()
    }
}

impl NatsConfig {
    /// The server URL for display: credentials masked (`nats://***@host:4222`).
    pub fn shown_url(&self) -> String {
        redact::url(&self.url)
    }
}

/// `<hostname>-<pid>`, as a subject token.
pub fn default_collector() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    token(&format!("{}-{}", host.trim(), std::process::id()))
}

/// What went wrong connecting or setting up.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The configuration cannot work.
    #[error("invalid NATS configuration: {0}")]
    Config(String),
    /// The server could not be reached (or refused the credentials).
    #[error("connecting to NATS at {url}: {msg}")]
    Connect {
        /// The URL, credentials masked.
        url: String,
        /// Why.
        msg: String,
    },
    /// A JetStream request failed (stream or consumer creation, reading).
    #[error("JetStream: {0}")]
    JetStream(String),
}

// ---------------------------------------------------------------------------
// Subjects and message ids

/// A subject token: `.`, `*`, `>`, whitespace and control characters become
/// `_`; empty becomes `_`.
pub fn token(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    s.chars()
        .map(|c| if c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control() { '_' } else { c })
        .collect()
}

/// Whether an event is collector-local: status reports that two collectors
/// do not share (connection state, gaps, `book_resync`, decoding errors).
/// They go to the status subject with a collector-specific id.
pub fn is_collector_local(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Connected
            | EventKind::Disconnected { .. }
            | EventKind::Reconnected
            | EventKind::Gap(_)
            | EventKind::SubscriptionFailed { .. }
            | EventKind::GaveUp { .. }
            | EventKind::AuthFailed { .. }
            | EventKind::Error { .. }
            | EventKind::BookResync(_)
    )
}

/// The subject of a market-data event: `<prefix>.<venue>.<market>.<type>.<SYMBOL>`
/// (`_` when it has no symbol).
pub fn data_subject(prefix: &str, ev: &Event) -> String {
    format!(
        "{prefix}.{}.{}.{}.{}",
        ev.venue.name(),
        ev.market.name(),
        ev.kind.type_name(),
        token(ev.symbol.as_deref().unwrap_or(""))
    )
}

/// The status subject of a collector: `<prefix>.<venue>.<market>.status.<collector>`.
pub fn status_subject(prefix: &str, venue: Venue, market: MarketType, collector: &str) -> String {
    format!("{prefix}.{}.{}.status.{}", venue.name(), market.name(), token(collector))
}

/// A hash of the event's content without `receive_ts` (the only field a
/// collector adds): the same on every collector that received the same payload.
fn content_hash(ev: &Event) -> String {
    let mut e = ev.clone();
    e.receive_ts = 0;
    let json = serde_json::to_vec(&e).unwrap_or_default();
    format!("h{:016x}", fnv1a64(&json))
}

/// The `Nats-Msg-Id` of a market-data event, from the venue's identity of it
/// only (never the receive time): `<venue>.<market>.<type>.<SYMBOL>.<identity>`
/// with the identity
///
/// | type | identity |
/// |---|---|
/// | `trade`, `agg_trade` | the trade id (aggregate id) |
/// | `book_delta`, `book_update` | `<first_update_id>-<last_update_id>` |
/// | `book_snapshot` | `<last_update_id>.<bids>x<asks>` (level counts: a 5-level partial depth and a whole local book at the same id differ) |
/// | `top_of_book` | the update id |
/// | `kline` | `<interval>.<open_time>.<closed>.<exchange_ts>` (an open candle is pushed many times) |
/// | `ticker`, `avg_price` | `<window or interval>.<exchange_ts>` |
/// | `mark_price`, `open_interest` | `<exchange_ts>` |
/// | `liquidation` | `<exchange_ts>.<side>.<price>.<qty>` |
/// | anything else (`unknown`, private data) | `h` + FNV-1a of the JSON without `receive_ts` |
///
/// Kinds whose time is missing fall back to the content hash. `None` for
/// collector-local events ([`is_collector_local`]).
pub fn message_id(ev: &Event) -> Option<String> {
    if is_collector_local(&ev.kind) {
        return None;
    }
    let mut id = format!(
        "{}.{}.{}.{}.",
        ev.venue.name(),
        ev.market.name(),
        ev.kind.type_name(),
        token(ev.symbol.as_deref().unwrap_or(""))
    );
    let ts = ev.exchange_ts;
    let r = match (&ev.kind, ts) {
        (EventKind::Trade(t), _) => write!(id, "{}", t.trade_id),
        (EventKind::AggTrade(t), _) => write!(id, "{}", t.trade_id),
        (EventKind::BookDelta(d), _) => write!(id, "{}-{}", d.first_update_id, d.last_update_id),
        (EventKind::BookUpdate(u), _) => write!(id, "{}-{}", u.first_update_id, u.last_update_id),
        (EventKind::BookSnapshot(s), _) => write!(id, "{}.{}x{}", s.last_update_id, s.bids.len(), s.asks.len()),
        (EventKind::TopOfBook(t), _) => write!(id, "{}", t.update_id),
        (EventKind::Kline(k), Some(ts)) => write!(id, "{}.{}.{}.{ts}", k.interval, k.open_time, k.closed),
        (EventKind::Ticker(t), Some(ts)) => write!(id, "{}.{ts}", t.window),
        (EventKind::AvgPrice(a), Some(ts)) => write!(id, "{}.{ts}", a.interval),
        (EventKind::MarkPrice(_) | EventKind::OpenInterest(_), Some(ts)) => write!(id, "{ts}"),
        (EventKind::Liquidation(l), Some(ts)) => {
            let side = match l.side {
                ferrofeed_model::event::Side::Buy => "buy",
                ferrofeed_model::event::Side::Sell => "sell",
            };
            write!(id, "{ts}.{side}.{}.{}", l.price, l.qty)
        }
        _ => write!(id, "{}", content_hash(ev)),
    };
    debug_assert!(r.is_ok());
    Some(id)
}

/// The venue sequence numbers an event covers, for loss reports: trade and
/// aggregate ids, update-id ranges.
fn sequence_of(ev: &Event) -> Option<(u64, u64)> {
    match &ev.kind {
        EventKind::Trade(t) => t.trade_id.parse().ok().map(|i| (i, i)),
        EventKind::AggTrade(t) => t.trade_id.parse().ok().map(|i| (i, i)),
        EventKind::BookDelta(d) => Some((d.first_update_id, d.last_update_id)),
        EventKind::BookUpdate(u) => Some((u.first_update_id, u.last_update_id)),
        EventKind::TopOfBook(t) => Some((t.update_id, t.update_id)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Statistics

/// What a sink has done; `received = published + duplicates + failed +
/// unconfirmed + buffered + in_flight` at any moment (the sink's own gap
/// reports are counted in `reports`, their outcomes in the same counters).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NatsStats {
    /// Events handed to the sink.
    pub received: u64,
    /// Acknowledged and stored by this publish.
    pub published: u64,
    /// Acknowledged as a duplicate: already stored (by another collector, or
    /// by an earlier attempt of this one whose acknowledgement was lost).
    pub duplicates: u64,
    /// Certainly not stored: the local buffer was full, the server refused
    /// it, or it was never sent before the sink closed. Each is reported in a
    /// `gap` event.
    pub failed: u64,
    /// `failed` per event type.
    pub failed_by_type: BTreeMap<String, u64>,
    /// Sent but not acknowledged when the sink closed: may or may not be stored.
    pub unconfirmed: u64,
    /// Publishes sent again after a missing or failed acknowledgement.
    pub retries: u64,
    /// Waiting in the local buffer now (including retries).
    pub buffered: u64,
    /// The most the buffer held.
    pub buffer_peak: u64,
    /// Awaiting an acknowledgement now.
    pub in_flight: u64,
    /// Times the connection was lost.
    pub disconnects: u64,
    /// Times it came back.
    pub reconnects: u64,
    /// Loss reports (`gap` events) the sink made.
    pub reports: u64,
    /// Connected now.
    pub connected: bool,
}

// ---------------------------------------------------------------------------
// The sink

/// One message on its way to the stream.
#[derive(Debug)]
struct Msg {
    subject: String,
    id: String,
    payload: Bytes,
    kind: &'static str,
    origin: Origin,
}

/// Where a message came from, for its loss report.
#[derive(Debug, Clone)]
struct Origin {
    venue: Venue,
    market: MarketType,
    symbol: Option<String>,
    seq: Option<(u64, u64)>,
}

/// The losses of one subject since its last report.
#[derive(Debug)]
struct DropLog {
    venue: Venue,
    market: MarketType,
    symbol: Option<String>,
    /// Contiguous ranges of sequence numbers lost, in order (at most [`MAX_RUNS`]).
    runs: Vec<(u64, u64)>,
    /// Losses without a sequence number (or beyond `MAX_RUNS` ranges).
    unsequenced: u64,
}

const MAX_RUNS: usize = 1024;
/// Loss reports waiting to be published, at most.
const MAX_STATUS_QUEUE: usize = 4096;

#[derive(Debug, Default)]
struct Shared {
    buffer: VecDeque<Msg>,
    drops: BTreeMap<String, DropLog>,
    stats: NatsStats,
}

impl Shared {
    /// Counts a message as certainly not stored and logs it for its report.
    fn fail(&mut self, m: &Msg) {
        self.stats.failed += 1;
        *self.stats.failed_by_type.entry(m.kind.to_string()).or_default() += 1;
        if m.kind == "gap" && m.subject.contains(".status.") {
            return; // a lost loss report is counted, not reported again
        }
        let o = &m.origin;
        let log = self.drops.entry(m.subject.clone()).or_insert_with(|| DropLog {
            venue: o.venue,
            market: o.market,
            symbol: o.symbol.clone(),
            runs: Vec::new(),
            unsequenced: 0,
        });
        match o.seq {
            Some((a, b)) => {
                let n = log.runs.len();
                match log.runs.last_mut() {
                    Some(last) if a == last.1.wrapping_add(1) => last.1 = b,
                    _ if n < MAX_RUNS => log.runs.push((a, b)),
                    _ => log.unsequenced += 1,
                }
            }
            None => log.unsequenced += 1,
        }
    }
}

fn lock(s: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

type AckFuture = Pin<Box<dyn Future<Output = (Msg, Result<PublishAck, String>)> + Send>>;

/// Publishes events to a JetStream stream. See the module documentation and
/// `docs/nats.md`.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use ferrofeed::feed::{Feed, FeedConfig};
/// use ferrofeed::sink::nats::{NatsConfig, NatsSink};
/// let mut feed = Feed::new(FeedConfig::default());
/// feed.subscribe(ferrofeed::venues::binance::spec::SPOT, &["btcusdt@trade".into()]).await?;
/// let mut sink = NatsSink::connect(NatsConfig { url: "nats://127.0.0.1:4222".into(), ..NatsConfig::default() }).await?;
/// while let Some(event) = feed.next().await {
///     sink.publish(&event);
/// }
/// let (stats, _reports) = sink.close(std::time::Duration::from_secs(5)).await;
/// println!("stored {} (+{} duplicates), failed {}", stats.published, stats.duplicates, stats.failed);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NatsSink {
    cfg: NatsConfig,
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
    reports: mpsc::Receiver<Event>,
    close_tx: Option<oneshot::Sender<tokio::time::Instant>>,
    task: tokio::task::JoinHandle<()>,
    client: async_nats::Client,
    status_seq: u64,
    start_ns: i64,
}

impl NatsSink {
    /// Connects, creates (or updates) the stream, and starts publishing. The
    /// server must be reachable now; later outages are ridden out.
    pub async fn connect(cfg: NatsConfig) -> Result<NatsSink, NatsError> {
        if cfg.max_in_flight == 0 || cfg.buffer == 0 {
            return Err(NatsError::Config("max_in_flight and buffer must be at least 1".into()));
        }
        if cfg.ack_timeout.is_zero() {
            return Err(NatsError::Config("ack_timeout must be positive".into()));
        }
        if !cfg.max_age.is_zero() && cfg.duplicate_window > cfg.max_age {
            return Err(NatsError::Config(format!(
                "duplicate_window ({:?}) must not exceed max_age ({:?})",
                cfg.duplicate_window, cfg.max_age
            )));
        }
        if cfg.stream.is_empty() || cfg.stream.chars().any(|c| matches!(c, '.' | '*' | '>' | ' ' | '\t')) {
            return Err(NatsError::Config(format!("invalid stream name {:?}", cfg.stream)));
        }
        if cfg.subject_prefix.is_empty() || token(&cfg.subject_prefix) != cfg.subject_prefix {
            return Err(NatsError::Config(format!("invalid subject prefix {:?}: one token", cfg.subject_prefix)));
        }
        let shared = Arc::new(Mutex::new(Shared::default()));
        let wake = Arc::new(Notify::new());
        let client = connect_client(&cfg, Some((shared.clone(), wake.clone()))).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(cfg.ack_timeout)
            .max_ack_inflight(cfg.max_in_flight.saturating_mul(2))
            .backpressure_on_inflight(true)
            .build(client.clone());
        ensure_stream(&js, &cfg).await?;
        lock(&shared).stats.connected = true;
        let (report_tx, reports) = mpsc::channel(1024);
        let (close_tx, close_rx) = oneshot::channel();
        let task = tokio::spawn(
            Publisher {
                js,
                client: client.clone(),
                shared: shared.clone(),
                wake: wake.clone(),
                reports: report_tx,
                max_in_flight: cfg.max_in_flight,
                buffer_cap: cfg.buffer,
                prefix: cfg.subject_prefix.clone(),
                collector: cfg.collector.clone(),
                start_ns: now_ns(),
                report_seq: 0,
                retry: VecDeque::new(),
                status: VecDeque::new(),
                inflight: FuturesUnordered::new(),
                retry_after: None,
            }
            .run(close_rx),
        );
        Ok(NatsSink {
            cfg,
            shared,
            wake,
            reports,
            close_tx: Some(close_tx),
            task,
            client,
            status_seq: 0,
            start_ns: now_ns(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NatsConfig {
        &self.cfg
    }

    /// Queues an event for publication; never blocks. When the local buffer
    /// is full the event is counted as failed and reported (never dropped
    /// silently).
    pub fn publish(&mut self, ev: &Event) {
        let (subject, id) = match message_id(ev) {
            Some(id) => (data_subject(&self.cfg.subject_prefix, ev), id),
            None => {
                self.status_seq += 1;
                let c = token(&self.cfg.collector);
                (
                    status_subject(&self.cfg.subject_prefix, ev.venue, ev.market, &c),
                    format!("{c}.{}.{}", self.start_ns, self.status_seq),
                )
            }
        };
        let payload = Bytes::from(serde_json::to_vec(ev).unwrap_or_default());
        let msg = Msg {
            subject,
            id,
            payload,
            kind: ev.kind.type_name(),
            origin: Origin { venue: ev.venue, market: ev.market, symbol: ev.symbol.clone(), seq: sequence_of(ev) },
        };
        let mut sh = lock(&self.shared);
        sh.stats.received += 1;
        if sh.buffer.len() >= self.cfg.buffer {
            sh.fail(&msg);
            return;
        }
        sh.buffer.push_back(msg);
        let n = sh.buffer.len() as u64;
        sh.stats.buffer_peak = sh.stats.buffer_peak.max(n);
        drop(sh);
        self.wake.notify_one();
    }

    /// A copy of the counters.
    pub fn stats(&self) -> NatsStats {
        let sh = lock(&self.shared);
        let mut s = sh.stats.clone();
        s.buffered += sh.buffer.len() as u64;
        s
    }

    /// The next loss report (a `gap` event on `nats:<subject>`), as the sink
    /// makes them; they are published on the status subject too.
    pub async fn report(&mut self) -> Option<Event> {
        self.reports.recv().await
    }

    /// Stops taking events, publishes what is buffered for at most `within`,
    /// then counts what is left: never sent → `failed` (and reported),
    /// sent without acknowledgement → `unconfirmed`. Returns the final
    /// counters and the loss reports not yet taken with [`NatsSink::report`].
    pub async fn close(mut self, within: Duration) -> (NatsStats, Vec<Event>) {
        if let Some(tx) = self.close_tx.take() {
            let _ = tx.send(tokio::time::Instant::now() + within);
        }
        self.wake.notify_one();
        let mut reports = Vec::new();
        let (shared, client) = (self.shared.clone(), self.client.clone());
        let mut task = self.task;
        loop {
            tokio::select! {
                r = self.reports.recv() => match r {
                    Some(ev) => reports.push(ev),
                    None => break,
                },
                _ = &mut task => {
                    while let Ok(ev) = self.reports.try_recv() {
                        reports.push(ev);
                    }
                    break;
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
        let stats = lock(&shared).stats.clone();
        (stats, reports)
    }
}

async fn connect_client(
    cfg: &NatsConfig,
    shared: Option<(Arc<Mutex<Shared>>, Arc<Notify>)>,
) -> Result<async_nats::Client, NatsError> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(format!("ferrofeed {}", cfg.collector))
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .client_capacity(cfg.max_in_flight.saturating_mul(2).max(2048))
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64).saturating_mul(100).min(1000)));
    if let Some((shared, wake)) = shared {
        opts = opts.event_callback(move |e| {
            let (shared, wake) = (shared.clone(), wake.clone());
            async move {
                match e {
                    async_nats::Event::Disconnected => {
                        let mut sh = lock(&shared);
                        sh.stats.disconnects += 1;
                        sh.stats.connected = false;
                        tracing::warn!("nats: disconnected");
                    }
                    async_nats::Event::Connected => {
                        let mut sh = lock(&shared);
                        if sh.stats.disconnects > sh.stats.reconnects {
                            sh.stats.reconnects += 1;
                            tracing::info!("nats: reconnected");
                        }
                        sh.stats.connected = true;
                    }
                    other => tracing::warn!("nats: {other}"),
                }
                wake.notify_one();
            }
        });
    }
    let (opts, bare) = auth_options(&cfg.url, &cfg.auth, opts).await?;
    opts.connect(bare.as_str()).await.map_err(|e| connect_error(&cfg.url, &cfg.auth, &e))
}

/// A connect error with the URL redacted and no credential in its message.
fn connect_error(url: &str, auth: &NatsAuth, e: &async_nats::ConnectError) -> NatsError {
    let (_, from_url) = split_userinfo(url);
    let mut secrets = auth.secrets();
    secrets.extend(from_url.secrets());
    NatsError::Connect { url: redact::url(url), msg: redact::text(&e.to_string(), &secrets) }
}

fn stream_config(cfg: &NatsConfig) -> stream::Config {
    let limit = |v: u64| if v == 0 { -1 } else { i64::try_from(v).unwrap_or(i64::MAX) };
    stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![format!("{}.>", cfg.subject_prefix)],
        retention: match cfg.retention {
            Retention::Limits => stream::RetentionPolicy::Limits,
            Retention::Interest => stream::RetentionPolicy::Interest,
            Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
        },
        storage: match cfg.storage {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        },
        max_age: cfg.max_age,
        max_bytes: limit(cfg.max_bytes),
        max_messages: limit(cfg.max_msgs),
        duplicate_window: cfg.duplicate_window,
        num_replicas: cfg.replicas.max(1),
        discard: stream::DiscardPolicy::Old,
        description: Some("ferrofeed normalized events (docs/nats.md)".into()),
        ..Default::default()
    }
}

/// Creates the stream, or brings an existing one to the configuration
/// (retention, limits, duplicate window; the storage type cannot change).
async fn ensure_stream(js: &jetstream::Context, cfg: &NatsConfig) -> Result<(), NatsError> {
    let want = stream_config(cfg);
    match js.create_stream(want.clone()).await {
        Ok(_) => Ok(()),
        Err(create) => match js.update_stream(want).await {
            Ok(_) => Ok(()),
            Err(update) => Err(NatsError::JetStream(format!(
                "stream {:?}: create failed ({create}), update failed ({update})",
                cfg.stream
            ))),
        },
    }
}

/// Whether a failed publish is certainly not stored and will not be (the
/// server answered with a JetStream error: limits, size). Everything else
/// (timeout, connection lost, no responders) is retried.
fn refused(e: &jetstream::context::PublishError) -> bool {
    use jetstream::context::PublishErrorKind as K;
    match e.kind() {
        K::MaxPayloadExceeded | K::WrongLastMessageId | K::WrongLastSequence => true,
        K::Other => std::error::Error::source(e).is_some_and(|s| s.downcast_ref::<jetstream::Error>().is_some()),
        _ => false,
    }
}

/// The publishing task.
struct Publisher {
    js: jetstream::Context,
    client: async_nats::Client,
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
    reports: mpsc::Sender<Event>,
    max_in_flight: usize,
    buffer_cap: usize,
    prefix: String,
    collector: String,
    start_ns: i64,
    report_seq: u64,
    /// Sent before without an acknowledgement: sent again first, never
    /// dropped (at most `max_in_flight`, since only in-flight messages get here).
    retry: VecDeque<(Msg, Option<jetstream::context::PublishError>)>,
    /// Loss reports waiting (at most [`MAX_STATUS_QUEUE`]).
    status: VecDeque<Msg>,
    inflight: FuturesUnordered<AckFuture>,
    /// After a retryable error: no new publish before this.
    retry_after: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("in_flight", &self.inflight.len()).finish_non_exhaustive()
    }
}

impl Publisher {
    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn start(&mut self, m: Msg) {
        let js = self.js.clone();
        self.inflight.push(Box::pin(async move {
            let publish = PublishMessage::build().payload(m.payload.clone()).message_id(&m.id);
            let r = async { js.send_publish(m.subject.clone(), publish).await?.await }.await;
            (m, r.map_err(|e| if refused(&e) { format!("refused: {e}") } else { e.to_string() }))
        }));
    }

    /// Starts publishes while connected and under the in-flight bound:
    /// retries first, then loss reports, then the buffer.
    fn fill(&mut self) {
        if !self.connected() || self.retry_after.is_some_and(|t| tokio::time::Instant::now() < t) {
            return;
        }
        self.retry_after = None;
        while self.inflight.len() < self.max_in_flight {
            if let Some((m, _)) = self.retry.pop_front() {
                lock(&self.shared).stats.retries += 1;
                self.start(m);
            } else if let Some(m) = self.status.pop_front() {
                self.start(m);
            } else {
                let next = lock(&self.shared).buffer.pop_front();
                match next {
                    Some(m) => self.start(m),
                    None => break,
                }
            }
        }
    }

    fn on_ack(&mut self, m: Msg, r: Result<PublishAck, String>) {
        match r {
            Ok(ack) => {
                let mut sh = lock(&self.shared);
                if ack.duplicate {
                    sh.stats.duplicates += 1;
                } else {
                    sh.stats.published += 1;
                }
            }
            Err(e) if e.starts_with("refused: ") => {
                tracing::warn!("nats: {} refused: {e}", m.subject);
                lock(&self.shared).fail(&m);
            }
            Err(e) => {
                tracing::debug!("nats: {} will be retried: {e}", m.subject);
                self.retry.push_back((m, None));
                self.retry_after = Some(tokio::time::Instant::now() + Duration::from_millis(200));
            }
        }
    }

    /// Turns the losses logged so far into `gap` events: published on the
    /// status subject and handed to the caller.
    fn flush_reports(&mut self) {
        let drops = std::mem::take(&mut lock(&self.shared).drops);
        for (subject, log) in drops {
            let mut missing: Vec<Missing> = log.runs.iter().map(|&(from, to)| Missing::Range { from, to }).collect();
            if log.unsequenced > 0 {
                missing.push(Missing::Unknown { missing: UnknownExtent::Unknown });
            }
            for miss in missing {
                let ev = Event {
                    kind: EventKind::Gap(Gap { stream: format!("nats:{subject}"), missing: miss }),
                    venue: log.venue,
                    market: log.market,
                    symbol: log.symbol.clone(),
                    exchange_ts: None,
                    receive_ts: now_ns(),
                };
                self.report_seq += 1;
                let c = token(&self.collector);
                let msg = Msg {
                    subject: status_subject(&self.prefix, ev.venue, ev.market, &c),
                    id: format!("{c}.{}.r{}", self.start_ns, self.report_seq),
                    payload: Bytes::from(serde_json::to_vec(&ev).unwrap_or_default()),
                    kind: "gap",
                    origin: Origin { venue: ev.venue, market: ev.market, symbol: ev.symbol.clone(), seq: None },
                };
                {
                    let mut sh = lock(&self.shared);
                    sh.stats.reports += 1;
                    sh.stats.received += 1;
                    if self.status.len() >= MAX_STATUS_QUEUE {
                        sh.fail(&msg);
                    } else {
                        self.status.push_back(msg);
                    }
                }
                tracing::warn!("nats: events on {subject} not stored: {}", ev_missing(&ev));
                if self.reports.try_send(ev).is_err() {
                    tracing::warn!("nats: loss report not handed to the caller (queue full); it is published");
                }
            }
        }
    }

    fn publish_state(&self) {
        let mut sh = lock(&self.shared);
        sh.stats.in_flight = self.inflight.len() as u64;
        sh.stats.buffered = self.retry.len() as u64 + self.status.len() as u64;
    }

    /// Healthy: connected and the buffer under half full; loss reports are
    /// made then (so they can be stored).
    fn healthy(&self) -> bool {
        self.connected() && lock(&self.shared).buffer.len() < self.buffer_cap / 2 + 1
    }

    async fn run(mut self, mut close_rx: oneshot::Receiver<tokio::time::Instant>) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            self.fill();
            self.publish_state();
            if deadline.is_some() {
                let idle = self.inflight.is_empty()
                    && self.retry.is_empty()
                    && self.status.is_empty()
                    && lock(&self.shared).buffer.is_empty();
                if idle {
                    // Reports made at close are published too.
                    if lock(&self.shared).drops.is_empty() {
                        break;
                    }
                    self.flush_reports();
                    continue;
                }
            }
            let until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = self.wake.notified() => {}
                Some((m, r)) = self.inflight.next(), if !self.inflight.is_empty() => self.on_ack(m, r),
                _ = tick.tick() => {
                    if self.healthy() && !lock(&self.shared).drops.is_empty() {
                        self.flush_reports();
                    }
                }
                at = &mut close_rx, if deadline.is_none() => {
                    deadline = Some(at.unwrap_or_else(|_| tokio::time::Instant::now()));
                    // Report the losses so far while they can still be published.
                    self.flush_reports();
                }
                _ = tokio::time::sleep_until(until), if deadline.is_some() => break,
            }
        }
        // What is left when the deadline passed.
        let unconfirmed = (self.inflight.len() + self.retry.len()) as u64;
        let mut never_sent: Vec<Msg> = self.status.drain(..).collect();
        {
            let mut sh = lock(&self.shared);
            never_sent.extend(sh.buffer.drain(..));
            sh.stats.unconfirmed += unconfirmed;
            for m in &never_sent {
                sh.fail(m);
            }
            sh.stats.in_flight = 0;
            sh.stats.buffered = 0;
        }
        // Reports of what was never sent go to the caller only now.
        let drops = std::mem::take(&mut lock(&self.shared).drops);
        for (subject, log) in drops {
            let mut missing: Vec<Missing> = log.runs.iter().map(|&(from, to)| Missing::Range { from, to }).collect();
            if log.unsequenced > 0 {
                missing.push(Missing::Unknown { missing: UnknownExtent::Unknown });
            }
            for miss in missing {
                lock(&self.shared).stats.reports += 1;
                let ev = Event {
                    kind: EventKind::Gap(Gap { stream: format!("nats:{subject}"), missing: miss }),
                    venue: log.venue,
                    market: log.market,
                    symbol: log.symbol.clone(),
                    exchange_ts: None,
                    receive_ts: now_ns(),
                };
                let _ = self.reports.send(ev).await;
            }
        }
    }
}

fn ev_missing(ev: &Event) -> String {
    match &ev.kind {
        EventKind::Gap(Gap { missing: Missing::Range { from, to }, .. }) => format!("ids {from}..={to}"),
        _ => "extent unknown".into(),
    }
}

// ---------------------------------------------------------------------------
// Reading

/// Where a [`NatsReader`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deliver {
    /// Everything the stream still holds.
    #[default]
    All,
    /// Only messages stored after the reader starts.
    New,
    /// The last message of each subject, then new ones.
    LastPerSubject,
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Its subject.
    pub subject: String,
    /// Its `Nats-Msg-Id` header, if any.
    pub msg_id: Option<String>,
    /// Its sequence number in the stream.
    pub stream_sequence: u64,
    /// Messages matching the filter still to come after it, when it was delivered.
    pub pending: u64,
    /// The payload (an event's JSON line, without the newline).
    pub payload: Bytes,
}

/// Reads a JetStream stream in order through an ephemeral ordered consumer
/// (nothing is acknowledged or changed on the server).
pub struct NatsReader {
    _client: async_nats::Client,
    messages: jetstream::consumer::pull::Ordered,
}

impl std::fmt::Debug for NatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsReader").finish_non_exhaustive()
    }
}

impl NatsReader {
    /// Opens `stream` at `url`, reading subjects matching `filter` (e.g.
    /// `ferrofeed.binance.spot.trade.>`; empty: all).
    pub async fn open(url: &str, stream: &str, filter: &str, deliver: Deliver) -> Result<NatsReader, NatsError> {
        NatsReader::open_with(url, &NatsAuth::None, stream, filter, deliver).await
    }

    /// [`NatsReader::open`] with credentials.
    pub async fn open_with(
        url: &str,
        auth: &NatsAuth,
        stream: &str,
        filter: &str,
        deliver: Deliver,
    ) -> Result<NatsReader, NatsError> {
        let opts = async_nats::ConnectOptions::new().name("ferrofeed tail").connection_timeout(Duration::from_secs(5));
        let (opts, bare) = auth_options(url, auth, opts).await?;
        let client = opts.connect(bare.as_str()).await.map_err(|e| connect_error(url, auth, &e))?;
        let js = jetstream::new(client.clone());
        let s = js.get_stream(stream).await.map_err(|e| NatsError::JetStream(format!("stream {stream:?}: {e}")))?;
        let consumer = s
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: filter.to_string(),
                deliver_policy: match deliver {
                    Deliver::All => jetstream::consumer::DeliverPolicy::All,
                    Deliver::New => jetstream::consumer::DeliverPolicy::New,
                    Deliver::LastPerSubject => jetstream::consumer::DeliverPolicy::LastPerSubject,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::JetStream(format!("creating a consumer on {stream:?}: {e}")))?;
        let messages =
            consumer.messages().await.map_err(|e| NatsError::JetStream(format!("reading {stream:?}: {e}")))?;
        Ok(NatsReader { _client: client, messages })
    }

    /// The next message; `None` when the stream ends (the connection closed).
    pub async fn next(&mut self) -> Option<Result<StoredMessage, NatsError>> {
        let m = match self.messages.next().await? {
            Ok(m) => m,
            Err(e) => return Some(Err(NatsError::JetStream(e.to_string()))),
        };
        let (stream_sequence, pending) = m.info().map(|i| (i.stream_sequence, i.pending)).unwrap_or((0, 0));
        let msg_id =
            m.headers.as_ref().and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID)).map(|v| v.as_str().to_string());
        Some(Ok(StoredMessage {
            subject: m.subject.to_string(),
            msg_id,
            stream_sequence,
            pending,
            payload: m.payload.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_become_options_and_never_show() {
        let (bare, auth) = split_userinfo("nats://alice:s3cret@127.0.0.1:4222,nats://h2:4222");
        assert_eq!(bare, "nats://127.0.0.1:4222,nats://h2:4222");
        assert!(
            matches!(&auth, NatsAuth::UserPassword { user, password } if user == "alice" && password.expose_secret() == "s3cret")
        );
        let (bare, auth) = split_userinfo("tok3n@h:4222");
        assert_eq!(bare, "h:4222");
        assert!(matches!(&auth, NatsAuth::Token(t) if t.expose_secret() == "tok3n"));
        assert!(matches!(split_userinfo("nats://h:4222"), (b, NatsAuth::None) if b == "nats://h:4222"));
        let cfg = NatsConfig {
            url: "nats://alice:s3cret@127.0.0.1:4222".into(),
            auth: NatsAuth::Token("tok3n".to_string().into()),
            ..NatsConfig::default()
        };
        let shown = format!("{cfg:?} {cfg:#?} {}", cfg.shown_url());
        assert!(!shown.contains("s3cret") && !shown.contains("tok3n"), "{shown}");
        assert!(shown.contains("nats://***@127.0.0.1:4222"), "{shown}");
    }

    fn ev(json: &str) -> Event {
        serde_json::from_str(json).expect("event")
    }

    #[test]
    fn subjects_and_ids_come_from_the_venue_identity() {
        let t = ev(
            r#"{"type":"trade","trade_id":"12345","price":"0.001","qty":"100","side":"sell","venue":"binance","market":"spot","symbol":"BNBBTC","exchange_ts":1,"receive_ts":2}"#,
        );
        assert_eq!(data_subject("ferrofeed", &t), "ferrofeed.binance.spot.trade.BNBBTC");
        assert_eq!(message_id(&t).as_deref(), Some("binance.spot.trade.BNBBTC.12345"));
        let mut t2 = t.clone();
        t2.receive_ts = 99;
        assert_eq!(message_id(&t2), message_id(&t), "the receive time is not identity");

        let d = ev(
            r#"{"type":"book_delta","first_update_id":10,"last_update_id":12,"bids":[],"asks":[],"venue":"binance","market":"usdm","symbol":"BTCUSDT","exchange_ts":1,"receive_ts":2}"#,
        );
        assert_eq!(message_id(&d).as_deref(), Some("binance.usdm.book_delta.BTCUSDT.10-12"));
        let k = ev(
            r#"{"type":"kline","interval":"1m","open_time":60,"close_time":119,"open":"1","high":"1","low":"1","close":"1","volume":"1","quote_volume":"1","trades":1,"closed":false,"venue":"binance","market":"usdm","symbol":"X.Y","exchange_ts":77,"receive_ts":2}"#,
        );
        assert_eq!(data_subject("ff", &k), "ff.binance.usdm.kline.X_Y");
        assert_eq!(message_id(&k).as_deref(), Some("binance.usdm.kline.X_Y.1m.60.false.77"));
        let s = ev(
            r#"{"type":"book_snapshot","last_update_id":160,"bids":[["1","1"]],"asks":[],"venue":"binance","market":"spot","symbol":"BNBBTC","exchange_ts":null,"receive_ts":2}"#,
        );
        assert_eq!(message_id(&s).as_deref(), Some("binance.spot.book_snapshot.BNBBTC.160.1x0"));
        let oi = ev(
            r#"{"type":"open_interest","open_interest":"59891.732","open_interest_value":"3899996265.01","venue":"bybit","market":"linear","symbol":"BTCUSDT","exchange_ts":1786310817583000000,"receive_ts":2}"#,
        );
        assert_eq!(data_subject("ferrofeed", &oi), "ferrofeed.bybit.linear.open_interest.BTCUSDT");
        assert_eq!(message_id(&oi).as_deref(), Some("bybit.linear.open_interest.BTCUSDT.1786310817583000000"));
        let u =
            ev(r#"{"type":"unknown","raw":"x","venue":"binance","market":"spot","exchange_ts":null,"receive_ts":5}"#);
        let mut u2 = u.clone();
        u2.receive_ts = 6;
        assert_eq!(message_id(&u), message_id(&u2));
        assert!(message_id(&u).is_some_and(|id| id.starts_with("binance.spot.unknown._.h")));

        let c = ev(r#"{"type":"connected","venue":"binance","market":"spot","exchange_ts":null,"receive_ts":1}"#);
        assert!(message_id(&c).is_none());
        assert_eq!(status_subject("ferrofeed", c.venue, c.market, "a.b"), "ferrofeed.binance.spot.status.a_b");
    }

    #[test]
    fn losses_are_logged_as_ranges() {
        let mut sh = Shared::default();
        let origin = |seq| Origin { venue: Venue::Binance, market: MarketType::Spot, symbol: None, seq };
        let msg = |seq| Msg {
            subject: "s".into(),
            id: String::new(),
            payload: Bytes::new(),
            kind: "trade",
            origin: origin(seq),
        };
        for i in [5, 6, 7, 9, 10] {
            sh.fail(&msg(Some((i, i))));
        }
        sh.fail(&msg(None));
        let log = &sh.drops["s"];
        assert_eq!(log.runs, [(5, 7), (9, 10)]);
        assert_eq!(log.unsequenced, 1);
        assert_eq!((sh.stats.failed, sh.stats.failed_by_type["trade"]), (6, 6));
    }
}
