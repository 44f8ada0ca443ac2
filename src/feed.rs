//! One ordered stream of normalized events from any number of venues and
//! markets: market data decoded on the live path, status events translated to
//! the model, local books kept by [`Books`], private sessions, and the
//! statistics that the metrics endpoint and the live view read.
//!
//! [`Feed`] is a [`futures_util::Stream`] of [`Event`]s, in order per
//! stream. Build it with [`Feed::builder`]:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::feed::Feed;
//! use ferrofeed::venues::{Channel, binance, bybit};
//! use futures_util::StreamExt;
//! let mut feed = Feed::builder()
//!     .subscribe(binance::spec::SPOT, Channel::Trades, "BTCUSDT")
//!     .subscribe(bybit::spec::LINEAR, Channel::Trades, "BTCUSDT")
//!     .book(binance::spec::USDM, "ETHUSDT")
//!     .build()
//!     .await?;
//! while let Some(event) = feed.next().await {
//!     println!("{}", serde_json::to_string(&event)?); // docs/events.md
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrofeed_engine::{
    Decoded, Event as EngineEvent, EventKind as EngineKind, EventReceiver, Missing, NameMap, Overflow, RecoveryStats,
    State, redact,
};
use ferrofeed_model::event::{Event, EventKind, Gap, Missing as ModelMissing, UnknownExtent};
use ferrofeed_venues::seam::{Channel, Decoder, MarketId};
use futures_util::Stream;

use crate::Error;
use crate::books::{BookConfig, Books};
use crate::client::{Client, ClientConfig, ClientError, Registry};
use crate::session::PrivateClient;

/// A venue and market, as the statistics key them.
pub type Source = MarketId;

/// A connection as the statistics key it: its venue and its id.
pub type ConnKey = (&'static str, u64);

/// How a feed is built.
#[derive(Debug, Clone, Default)]
pub struct FeedConfig {
    /// The client (environments, limits, queue).
    pub client: ClientConfig,
    /// Local books.
    pub books: BookConfig,
}

/// One connection, as the statistics see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnStats {
    /// Its venue and market (`None`: not yet known).
    pub market: Option<Source>,
    /// Lifecycle state.
    pub state: State,
    /// Socket generation.
    pub epoch: u64,
    /// Data frames received.
    pub messages: u64,
    /// Bytes of data frames received.
    pub bytes: u64,
    /// Sockets opened after the first.
    pub reconnects: u64,
    /// Gaps reported on its streams.
    pub gaps: u64,
    /// Repeated messages it dropped (rotation overlaps, venue re-sends).
    pub duplicates: u64,
    /// Data frames for streams it did not subscribe, dropped.
    pub unsolicited: u64,
    /// Streams it holds.
    pub streams: usize,
    /// Client messages sent in the venue's current window, and the limit.
    pub msgs_in_window: (usize, usize),
}

impl ConnStats {
    fn new(market: Option<Source>, state: State, epoch: u64) -> ConnStats {
        ConnStats {
            market,
            state,
            epoch,
            messages: 0,
            bytes: 0,
            reconnects: 0,
            gaps: 0,
            duplicates: 0,
            unsolicited: 0,
            streams: 0,
            msgs_in_window: (0, 0),
        }
    }
}

/// One stream, as the statistics see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    /// Data frames received.
    pub messages: u64,
    /// When the last one arrived, ns since the epoch (0: never).
    pub last_ns: i64,
}

/// One local book, as the statistics see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookStats {
    /// In sync now.
    pub synced: bool,
    /// Times it lost sync.
    pub resyncs: u64,
    /// Diffs applied.
    pub applied: u64,
    /// Its update id (while in sync).
    pub last_update_id: u64,
}

/// Everything the metrics endpoint and the live view show. Per-event counts
/// (events, frames and bytes per connection and stream) are added every
/// 1,024 events, before any status event and once a second; the client's
/// introspection once a second. [`Feed::refresh_stats`] brings it all up
/// to date.
#[derive(Debug, Clone, Default)]
pub struct FeedStats {
    /// Per connection.
    pub conns: BTreeMap<ConnKey, ConnStats>,
    /// Per (market, stream), for subscribed streams only.
    pub streams: BTreeMap<(Source, String), StreamStats>,
    /// Per (market, symbol).
    pub books: BTreeMap<(Source, String), BookStats>,
    /// Events handed to the consumer.
    pub events: u64,
    /// Events handed out, per type.
    pub events_by_type: BTreeMap<&'static str, u64>,
    /// Gap events.
    pub gaps: u64,
    /// Frames that could not be decoded.
    pub decode_errors: u64,
    /// Per queue (`public`, or a private session's name): engine events
    /// waiting for the consumer, and its capacity.
    pub queue: BTreeMap<String, (usize, usize)>,
    /// Per queue: events it dropped (drop-oldest policy).
    pub queue_dropped: BTreeMap<String, u64>,
    /// Per queue: bytes waiting now, the most ever waiting, and the budget.
    pub queue_bytes: BTreeMap<String, (usize, usize, usize)>,
    /// Per market: time from a lost socket to the first data on the next.
    pub recovery: BTreeMap<Source, RecoveryStats>,
    /// REST weight per market: used in the current window (when readable), limit.
    pub rest_weight: Vec<(Source, Option<u32>, u32)>,
    /// Connection attempts per venue and host: used (when readable), limit.
    pub attempts: Vec<(&'static str, String, Option<usize>, usize)>,
    /// Snapshot requests sent and failed, and 429s, across markets.
    pub snapshot_requests: (u64, u64, u64),
    /// Book resubscribes asked for, and of those repeats after a timeout.
    pub book_resubscribes: (u64, u64),
}

/// A shared handle on a feed's statistics.
#[derive(Debug, Clone, Default)]
pub struct SharedStats(Arc<Mutex<FeedStats>>);

impl SharedStats {
    /// Locks the statistics (never poisoned for long: a panic while holding
    /// the lock only loses that update).
    pub fn lock(&self) -> MutexGuard<'_, FeedStats> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

pub(crate) fn now_ns() -> i64 {
    ns(SystemTime::now())
}

/// The model status event of an engine event (`None` for data and
/// internal state changes): the one engine → model translation, used by the
/// feed and by private sessions.
pub(crate) fn status_kind(kind: EngineKind) -> Option<EventKind> {
    Some(match kind {
        EngineKind::Connected => EventKind::Connected,
        EngineKind::Reconnected => EventKind::Reconnected,
        // Reasons can quote a venue's or a library's text: no URL credential passes.
        EngineKind::Disconnected { reason } => EventKind::Disconnected { reason: redact::text(&reason, &[]) },
        EngineKind::SubscriptionFailed { stream, code, msg } => EventKind::SubscriptionFailed { stream, code, msg },
        EngineKind::AuthFailed { msg } => EventKind::AuthFailed { msg },
        EngineKind::GaveUp { reason } => EventKind::GaveUp { reason: redact::text(&reason, &[]) },
        EngineKind::Error { msg, raw } => EventKind::Error { msg, raw },
        EngineKind::Unknown { raw } => EventKind::Unknown { raw },
        EngineKind::Gap { stream, from, to, missing } => {
            let missing = match missing {
                Missing::Count(_) => ModelMissing::Range { from, to },
                Missing::Unknown => ModelMissing::Unknown { missing: UnknownExtent::Unknown },
            };
            EventKind::Gap(Gap { stream, missing })
        }
        EngineKind::Data { .. } | EngineKind::StateChanged(_) | EngineKind::Rotated => return None,
    })
}

/// What a feed subscribes when it is built.
#[derive(Debug, Clone)]
enum Want {
    Channel(MarketId, Channel, String),
    Raw(MarketId, String),
    Book(MarketId, String),
}

/// Builds a [`Feed`]: typed subscriptions, raw venue stream names, books,
/// and how the feed connects and queues.
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until built"]
pub struct FeedBuilder {
    cfg: FeedConfig,
    wants: Vec<Want>,
    sessions: Vec<PrivateClient>,
    /// An error found while configuring, reported by [`FeedBuilder::build`].
    #[cfg(feature = "sim")]
    deferred: Option<crate::simulated::SimulatorError>,
}

impl FeedBuilder {
    /// Trades, tickers, klines, ... of `symbol` on `market`.
    pub fn subscribe(mut self, market: impl Into<MarketId>, channel: Channel, symbol: &str) -> FeedBuilder {
        self.wants.push(Want::Channel(market.into(), channel, symbol.to_string()));
        self
    }

    /// A stream as the venue spells it (`btcusdt@trade`,
    /// `tickers.BTCUSDT`): the escape hatch for what the typed channels do
    /// not name.
    pub fn raw(mut self, market: impl Into<MarketId>, stream: &str) -> FeedBuilder {
        self.wants.push(Want::Raw(market.into(), stream.to_string()));
        self
    }

    /// A local book of `symbol`: `book_snapshot` once in sync, `book_update`
    /// per diff, `book_resync` when sync is lost.
    pub fn book(mut self, market: impl Into<MarketId>, symbol: &str) -> FeedBuilder {
        self.wants.push(Want::Book(market.into(), symbol.to_string()));
        self
    }

    /// A private session (its accounts already opened): its user-data events
    /// join the feed's stream.
    pub fn private(mut self, session: PrivateClient) -> FeedBuilder {
        self.sessions.push(session);
        self
    }

    /// Where every market connects (production, testnet, or custom URLs).
    pub fn environment(mut self, env: crate::client::Environment) -> FeedBuilder {
        self.cfg.client.environment = env;
        self
    }

    /// Points one market at any server (the simulator, a testnet, a proxy).
    pub fn url(mut self, market: impl Into<MarketId>, env: crate::client::Environment) -> FeedBuilder {
        self.cfg.client.overrides.insert(market.into(), env);
        self
    }

    /// Points every market the simulator serves at it (see
    /// [`crate::simulated`]).
    #[cfg(feature = "sim")]
    pub fn simulator(mut self, sim: &ferrofeed_sim::Sim) -> FeedBuilder {
        match crate::simulated::environments(sim) {
            Ok(envs) => self.cfg.client.overrides.extend(envs),
            Err(e) => self.deferred = Some(e),
        }
        self
    }

    /// The event queue: how many engine events it holds, and what happens
    /// when it is full.
    pub fn queue(mut self, capacity: usize, overflow: Overflow) -> FeedBuilder {
        self.cfg.client.queue_capacity = capacity;
        self.cfg.client.overflow = overflow;
        self
    }

    /// The event queue's byte budget (default 16 MiB): it holds at most this
    /// many bytes of frames as well as at most its capacity in events.
    pub fn queue_bytes(mut self, bytes: usize) -> FeedBuilder {
        self.cfg.client.queue_bytes = bytes;
        self
    }

    /// The whole client configuration.
    pub fn client_config(mut self, cfg: ClientConfig) -> FeedBuilder {
        self.cfg.client = cfg;
        self
    }

    /// How books are kept.
    pub fn book_config(mut self, cfg: BookConfig) -> FeedBuilder {
        self.cfg.books = cfg;
        self
    }

    /// Builds the feed and subscribes everything asked for. Must be called
    /// inside a tokio runtime. An unknown market or a channel a market does
    /// not serve is an error, and nothing is subscribed.
    pub async fn build(self) -> Result<Feed, Error> {
        #[cfg(feature = "sim")]
        if let Some(e) = self.deferred {
            return Err(e.into());
        }
        let mut plan: Vec<(MarketId, Option<String>, String)> = Vec::new();
        for w in &self.wants {
            match w {
                Want::Channel(m, c, s) => plan.push((*m, None, Client::stream_name(*m, c, s)?)),
                Want::Raw(m, s) => {
                    Client::spec(*m)?;
                    plan.push((*m, None, s.clone()));
                }
                Want::Book(m, s) => {
                    Client::spec(*m)?;
                    plan.push((*m, Some(s.clone()), String::new()));
                }
            }
        }
        let mut feed = Feed::new(self.cfg);
        for s in self.sessions {
            feed.add_private(s);
        }
        let mut by_market: BTreeMap<MarketId, Vec<String>> = BTreeMap::new();
        for (m, book, stream) in plan {
            match book {
                Some(symbol) => feed.track_book(m, &symbol).await?,
                None => by_market.entry(m).or_default().push(stream),
            }
        }
        for (m, streams) in by_market {
            feed.subscribe(m, &streams).await?;
        }
        Ok(feed)
    }
}

/// Any number of venues and markets, their local books and decoders, as one
/// [`Stream`] of normalized events.
#[derive(Debug)]
pub struct Feed {
    client: Client,
    rx: EventReceiver,
    books: Books,
    decoders: NameMap<MarketId, Box<dyn Decoder>>,
    /// Streams decoded into market-data events: references per market and
    /// stream, from [`Feed::subscribe`] (looked up by `&str` on the hot path).
    raw: NameMap<MarketId, NameMap<String, u32>>,
    out: VecDeque<Event>,
    scratch: Vec<Event>,
    stats: SharedStats,
    /// Per-event counts not yet in `stats`. Reached through `get_mut` on
    /// the per-event path (no lock taken); locked only to publish from
    /// [`Feed::refresh_stats`].
    tally: Mutex<Tally>,
    refresh: tokio::time::Interval,
    sessions: Vec<SessionTask>,
    ended: bool,
    /// Engine and private-session events handled since the timers and snapshot fetches were
    /// last polled (see [`CHORES_EVERY`]).
    since_chores: u32,
}

/// While engine or private-session events keep coming, the refresh timer,
/// book resubscribes and snapshot fetches are polled once per this many of
/// them (and always before the feed waits): polling them per event cost ~150 instructions
/// of the ~10,000 an event costs end to end (issue 22).
const CHORES_EVERY: u32 = 64;

/// Per-event counts the feed keeps in its own task and adds to the shared
/// statistics every [`PUBLISH_EVERY`] events, before any other engine
/// event, on the once-a-second refresh and in [`Feed::refresh_stats`]
/// (issue 22: no lock, no lookup by a copied name and no allocation per
/// event).
#[derive(Debug, Default)]
struct Tally {
    /// Events handed to the consumer, in all and per type.
    events: u64,
    by_type: Vec<(&'static str, u64)>,
    /// Data frames and their bytes per connection.
    conns: NameMap<ConnKey, (Source, u64, u64)>,
    /// Per subscribed stream: frames and the last one's receive time.
    streams: NameMap<MarketId, NameMap<Arc<str>, StreamStats>>,
    /// Events counted since the last publication.
    pending: u32,
    /// The route of the last data frame and its counts not yet in `conns`
    /// and `streams`: frames of one stream usually come in runs, and a run
    /// then costs no map lookup per frame.
    hot: Option<Hot>,
}

/// Where the frames of one stream of one connection go, with their counts
/// since they were last added to the [`Tally`]'s maps.
#[derive(Debug)]
struct Hot {
    conn: u64,
    /// Compared by pointer: the engine shares one name per subscribed stream.
    stream: Arc<str>,
    market: MarketId,
    tracked: bool,
    raw: bool,
    messages: u64,
    bytes: u64,
    last_ns: i64,
}

impl Hot {
    fn is(&self, conn: u64, stream: &Arc<str>) -> bool {
        self.conn == conn && Arc::ptr_eq(&self.stream, stream)
    }
}

/// Events between two publications of the [`Tally`] at most.
const PUBLISH_EVERY: u32 = 1024;

impl Tally {
    /// Adds the hot route's counts to the maps (the route stays).
    fn settle(&mut self) {
        let Some(h) = self.hot.as_mut() else { return };
        if h.messages == 0 {
            return;
        }
        let (messages, bytes) = (std::mem::take(&mut h.messages), std::mem::take(&mut h.bytes));
        let c = self.conns.entry((h.market.venue_name(), h.conn)).or_insert((h.market, 0, 0));
        c.1 += messages;
        c.2 += bytes;
        if h.tracked || h.raw {
            // Only streams someone subscribed get an entry.
            let streams = self.streams.entry(h.market).or_default();
            let s = match streams.get_mut(&*h.stream) {
                Some(s) => s,
                None => streams.entry(h.stream.clone()).or_default(),
            };
            s.messages += messages;
            s.last_ns = s.last_ns.max(h.last_ns);
        }
    }

    /// Settles and forgets the hot route (what it knew may have changed).
    fn forget_route(&mut self) {
        self.settle();
        self.hot = None;
    }

    /// Adds the counts to `st` and starts again from zero.
    fn publish(&mut self, st: &mut FeedStats) {
        if self.pending == 0 {
            return;
        }
        self.settle();
        self.pending = 0;
        st.events += std::mem::take(&mut self.events);
        for (name, n) in &mut self.by_type {
            *st.events_by_type.entry(name).or_default() += std::mem::take(n);
        }
        for (key, (market, messages, bytes)) in self.conns.drain() {
            let c = st.conns.entry(key).or_insert_with(|| ConnStats::new(Some(market), State::Connecting, 0));
            c.messages += messages;
            c.bytes += bytes;
        }
        for (market, streams) in &mut self.streams {
            for (name, s) in streams.drain() {
                let e = st.streams.entry((*market, name.to_string())).or_default();
                e.messages += s.messages;
                e.last_ns = e.last_ns.max(s.last_ns);
            }
        }
    }
}

/// A private session running in its own task; its events come through a
/// bounded channel (the session's own queue bounds them first).
#[derive(Debug)]
struct SessionTask {
    rx: tokio::sync::mpsc::Receiver<Event>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Events a private session hands the feed ahead of the consumer.
const SESSION_CHANNEL: usize = 1024;

impl Feed {
    /// A builder.
    pub fn builder() -> FeedBuilder {
        FeedBuilder::default()
    }

    /// A feed; nothing connects until something is subscribed. Must be called
    /// inside a tokio runtime.
    pub fn new(cfg: FeedConfig) -> Feed {
        // Connections decode data in the pass that classifies it (issue 22).
        let (client, rx) = Client::new(ClientConfig { decode: true, ..cfg.client });
        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Feed {
            client,
            rx,
            books: Books::new(cfg.books),
            decoders: NameMap::default(),
            raw: NameMap::default(),
            out: VecDeque::new(),
            scratch: Vec::new(),
            stats: SharedStats::default(),
            tally: Mutex::default(),
            refresh,
            sessions: Vec::new(),
            ended: false,
            since_chores: CHORES_EVERY,
        }
    }

    /// Adds a private session (its accounts already opened): its user-data
    /// and status events join this stream. It runs in its own task until
    /// [`Feed::shutdown`], which closes it (and deletes its tokens).
    pub fn add_private(&mut self, mut session: PrivateClient) {
        let (tx, rx) = tokio::sync::mpsc::channel(SESSION_CHANNEL);
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    ev = session.next() => {
                        let Some(ev) = ev else { break };
                        // Backpressure: the session's own bounded queue fills
                        // and its connection stops reading, as in the feed.
                        if tx.send(ev).await.is_err() {
                            break;
                        }
                    }
                }
            }
            session.shutdown().await;
        });
        self.sessions.push(SessionTask { rx, stop: Some(stop_tx), task });
    }

    /// The client, for introspection (shards, subscriptions, rate limits).
    /// Subscriptions go through the feed, so nothing subscribed is left
    /// undecoded.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The statistics handle (for a metrics endpoint or a live view).
    pub fn stats(&self) -> SharedStats {
        self.stats.clone()
    }

    /// The local books.
    pub fn books(&self) -> &Books {
        &self.books
    }

    /// Loads the instrument registry of `market` (subscriptions to symbols
    /// it does not list are then refused before anything is sent).
    pub async fn load_instruments(&mut self, market: impl Into<MarketId>) -> Result<usize, Error> {
        Ok(self.client.load_instruments(market).await?)
    }

    /// Installs a registry built elsewhere.
    pub fn set_instruments(&mut self, registry: Registry) {
        self.client.set_instruments(registry);
    }

    /// Subscribes streams as the venue spells them (`btcusdt@trade`,
    /// `publicTrade.BTCUSDT`); their frames are decoded into market-data
    /// events.
    pub async fn subscribe(&mut self, market: impl Into<MarketId>, streams: &[String]) -> Result<(), Error> {
        let market = market.into();
        let spec = Client::spec(market)?;
        self.client.subscribe(market, streams).await?;
        self.forget_route();
        self.decoders.entry(market).or_insert_with(|| spec.decoder(market.market));
        for s in streams {
            *self.raw.entry(market).or_default().entry(s.clone()).or_default() += 1;
        }
        Ok(())
    }

    /// Subscribes a typed channel of `symbol`.
    pub async fn subscribe_channel(
        &mut self,
        market: impl Into<MarketId>,
        channel: &Channel,
        symbol: &str,
    ) -> Result<String, Error> {
        let market = market.into();
        let stream = Client::stream_name(market, channel, symbol)?;
        self.subscribe(market, std::slice::from_ref(&stream)).await?;
        Ok(stream)
    }

    /// Drops one reference to each stream subscribed with
    /// [`Feed::subscribe`]; unreferenced streams stop being decoded and are
    /// unsubscribed.
    pub async fn unsubscribe(&mut self, market: impl Into<MarketId>, streams: &[String]) -> Result<(), Error> {
        let market = market.into();
        let mine: Vec<String> = streams.iter().filter(|s| self.is_raw(market, s)).cloned().collect();
        self.client.unsubscribe(market, &mine).await?;
        self.forget_route();
        let Some(refs) = self.raw.get_mut(&market) else { return Ok(()) };
        for s in mine {
            if let Some(n) = refs.get_mut(&s) {
                *n -= 1;
                if *n == 0 {
                    refs.remove(&s);
                    let tally = self.tally.get_mut().unwrap_or_else(PoisonError::into_inner);
                    if let Some(m) = tally.streams.get_mut(&market) {
                        m.remove(s.as_str());
                    }
                    self.stats.lock().streams.remove(&(market, s));
                }
            }
        }
        Ok(())
    }

    /// Forgets the hot route: whether its stream is tracked or subscribed
    /// may have changed.
    fn forget_route(&mut self) {
        self.tally.get_mut().unwrap_or_else(PoisonError::into_inner).forget_route();
    }

    /// Whether `stream` of `market` was subscribed through the feed.
    fn is_raw(&self, market: MarketId, stream: &str) -> bool {
        self.raw.get(&market).is_some_and(|m| m.contains_key(stream))
    }

    /// Keeps a local book of `symbol`: `book_snapshot` once in sync,
    /// `book_update` per diff, `book_resync` when sync is lost.
    pub async fn track_book(&mut self, market: impl Into<MarketId>, symbol: &str) -> Result<(), Error> {
        let market = market.into();
        let stream = self.books.track(&mut self.client, market, symbol)?;
        self.forget_route();
        Ok(self.client.subscribe(market, &[stream]).await?)
    }

    /// The next event; `None` once the client has shut down.
    pub async fn next(&mut self) -> Option<Event> {
        futures_util::StreamExt::next(self).await
    }

    fn deliver(&mut self, e: Event) -> Event {
        let t = self.tally.get_mut().unwrap_or_else(PoisonError::into_inner);
        t.events += 1;
        let name = e.kind.type_name();
        match t.by_type.iter_mut().find(|(n, _)| *n == name) {
            Some((_, n)) => *n += 1,
            None => t.by_type.push((name, 1)),
        }
        t.pending += 1;
        if t.pending >= PUBLISH_EVERY {
            t.publish(&mut self.stats.lock());
        }
        e
    }

    /// Sends the book restarts the books asked for, without waiting: what a
    /// busy connection cannot take now is asked again on the next poll.
    fn resubscribe(&mut self) {
        for (market, streams) in self.books.take_resubscribes() {
            match self.client.try_resubscribe(market, &streams) {
                Ok(()) => {}
                Err(ClientError::Pool(ferrofeed_engine::PoolError::Busy)) => {
                    self.books.retry_resubscribes(market, streams);
                }
                Err(e) => tracing::warn!(%market, error = %e, "resubscribing book streams failed"),
            }
        }
    }

    /// The route of an engine event that is not a frame of the hot route
    /// (see [`Tally::hot`]), counted; `None` for a connection the client does
    /// not know.
    fn route(&mut self, ev: &EngineEvent, received_ns: i64) -> Option<(MarketId, bool, bool)> {
        let Some(market) = self.client.market_of_conn(ev.conn) else {
            // Every connection belongs to one of the client's pools.
            tracing::warn!(conn = ev.conn, "event of an unknown connection");
            return None;
        };
        let venue = market.venue_name();
        let tracked = match &ev.kind {
            EngineKind::Data { stream, .. } => self.books.stream_symbol(market, stream).is_some(),
            EngineKind::Gap { stream, .. } => self.books.stream_symbol(market, stream).is_some(),
            EngineKind::Disconnected { .. } => !self.books.is_empty(),
            _ => false,
        };
        let raw = matches!(&ev.kind, EngineKind::Data { stream, .. } if self.is_raw(market, stream));
        let tally = self.tally.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let EngineKind::Data { payload, stream, .. } = &ev.kind {
            // Counted in this task and published now and then.
            tally.settle();
            tally.hot = Some(Hot {
                conn: ev.conn,
                stream: stream.clone(),
                market,
                tracked,
                raw,
                messages: 1,
                bytes: payload.len() as u64,
                last_ns: received_ns,
            });
            tally.pending += 1;
        } else {
            let mut st = self.stats.lock();
            // What came before this event is in the statistics first.
            tally.publish(&mut st);
            let conn = st
                .conns
                .entry((venue, ev.conn))
                .or_insert_with(|| ConnStats::new(Some(market), State::Connecting, ev.epoch));
            conn.epoch = conn.epoch.max(ev.epoch);
            match &ev.kind {
                EngineKind::Data { .. } => {}
                EngineKind::Gap { .. } => {
                    conn.gaps += 1;
                    st.gaps += 1;
                }
                EngineKind::StateChanged(s) => conn.state = *s,
                EngineKind::Connected => conn.state = State::Active,
                EngineKind::Reconnected => {
                    conn.state = State::Active;
                    conn.reconnects += 1;
                }
                EngineKind::Error { .. } => st.decode_errors += 1,
                _ => {}
            }
        }
        Some((market, tracked, raw))
    }

    fn handle(&mut self, mut ev: EngineEvent) {
        let received_ns = match &ev.kind {
            EngineKind::Data { received, .. } => ns(*received),
            _ => now_ns(),
        };
        // A frame of the same stream and connection as the last one: its
        // route is known and it is counted without a lookup.
        let tally = self.tally.get_mut().unwrap_or_else(PoisonError::into_inner);
        let hit = match (&ev.kind, tally.hot.as_mut()) {
            (EngineKind::Data { stream, payload, .. }, Some(h)) if h.is(ev.conn, stream) => {
                h.messages += 1;
                h.bytes += payload.len() as u64;
                h.last_ns = received_ns;
                tally.pending += 1;
                Some((h.market, h.tracked, h.raw))
            }
            _ => None,
        };
        let (market, tracked, raw) = match hit {
            Some(route) => route,
            None => match self.route(&ev, received_ns) {
                Some(route) => route,
                None => return,
            },
        };
        // Status first: a gap or a disconnect precedes the book's resync.
        let symbol = match &ev.kind {
            EngineKind::Gap { stream, .. } | EngineKind::SubscriptionFailed { stream, .. } => {
                Client::spec(market).ok().and_then(|s| s.symbol_of(market.market, stream))
            }
            _ => None,
        };
        let status = match &ev.kind {
            EngineKind::Data { .. } | EngineKind::StateChanged(_) | EngineKind::Rotated => None,
            other => status_kind(other.clone()),
        };
        if let Some(kind) = status {
            self.out.push_back(Event {
                kind,
                venue: market.venue,
                market: market.market,
                symbol,
                exchange_ts: None,
                receive_ts: received_ns,
            });
        }
        // What the connection decoded in the pass that classified the frame.
        let mut decoded = match &mut ev.kind {
            EngineKind::Data { decoded, .. } => std::mem::take(decoded),
            _ => Decoded::No,
        };
        if tracked {
            // A stream both tracked and subscribed raw feeds both.
            let pre = if raw { decoded.clone() } else { std::mem::take(&mut decoded) };
            self.books.on_event_decoded(Some(market), &ev, pre, &mut self.scratch);
            self.book_stats();
            self.out.extend(self.scratch.drain(..));
        }
        if raw && let EngineKind::Data { stream, payload, .. } = &ev.kind {
            let before = self.scratch.len();
            let result = match decoded {
                Decoded::Events(events) => {
                    self.out.extend(events);
                    Ok(())
                }
                Decoded::Failed(why) => Err(why),
                // A feed's connections decode (`ClientConfig::decode`); a
                // connection without a reader is decoded here.
                Decoded::No => match self.decoders.get_mut(&market) {
                    Some(d) => d.decode(payload, received_ns, &mut self.scratch).map_err(|e| e.to_string()),
                    None => Ok(()),
                },
            };
            if let Err(e) = result {
                self.scratch.truncate(before);
                self.stats.lock().decode_errors += 1;
                let symbol = Client::spec(market).ok().and_then(|s| s.symbol_of(market.market, stream));
                self.scratch.push(Event {
                    kind: EventKind::Error { msg: e, raw: payload.clone() },
                    venue: market.venue,
                    market: market.market,
                    symbol,
                    exchange_ts: None,
                    receive_ts: received_ns,
                });
            }
            self.out.extend(self.scratch.drain(..));
        }
    }

    /// Records the state of the books the last engine event touched (the
    /// symbols of the book events in `scratch`).
    fn book_stats(&self) {
        let mut st = self.stats.lock();
        for e in &self.scratch {
            if let Some(symbol) = e.symbol.as_deref() {
                self.book_stat(&mut st, MarketId::new(e.venue, e.market), symbol);
            }
        }
    }

    fn book_stat(&self, st: &mut FeedStats, market: MarketId, symbol: &str) {
        let Some(s) = self.books.book_stats(market, symbol) else { return };
        let last = self.books.book(market, symbol).map(|x| x.last_update_id());
        let stats = BookStats {
            synced: last.is_some(),
            resyncs: s.resyncs,
            applied: s.applied,
            last_update_id: last.unwrap_or(0),
        };
        st.books.insert((market, symbol.to_string()), stats);
    }

    /// Copies the client's introspection into the statistics (once a second
    /// from the stream; call it directly for a fresh view).
    pub fn refresh_stats(&self) {
        let snaps = self.client.snapshots();
        let rl = self.client.rate_limit_stats();
        let f = self.books.fetch_stats();
        let mut st = self.stats.lock();
        // The per-event counts first, then the client's view.
        self.tally.lock().unwrap_or_else(PoisonError::into_inner).publish(&mut st);
        st.recovery.clear();
        for s in snaps {
            let market = self.client.market_of_conn(s.id);
            let venue = market.map_or("", MarketId::venue_name);
            if let Some(m) = market {
                st.recovery.entry(m).or_default().merge(&s.recovery);
            }
            let c = st.conns.entry((venue, s.id)).or_insert_with(|| ConnStats::new(market, s.state, s.epoch));
            c.state = s.state;
            c.epoch = s.epoch;
            c.reconnects = s.reconnects;
            c.duplicates = s.duplicates;
            c.unsolicited = s.unsolicited;
            c.streams = s.streams.len();
            c.msgs_in_window = (s.msgs_in_window, s.msg_limit);
        }
        st.queue.insert("public".into(), (self.rx.len(), self.client.queue_capacity()));
        st.queue_dropped.insert("public".into(), self.rx.dropped());
        st.queue_bytes.insert("public".into(), (self.rx.bytes(), self.rx.peak_bytes(), self.rx.max_bytes()));
        st.rest_weight = rl.rest_weight;
        st.attempts = rl.attempts;
        st.snapshot_requests = (f.requests, f.failures, f.rate_limited);
        st.book_resubscribes = (f.resubscribes, f.resubscribe_timeouts);
        for (market, symbol) in self.books.symbols() {
            self.book_stat(&mut st, market, symbol);
        }
    }

    /// Closes every connection (close frames sent), private sessions
    /// included (their tokens deleted).
    pub async fn shutdown(&mut self) {
        self.client.disconnect_all().await;
        for s in &mut self.sessions {
            if let Some(stop) = s.stop.take() {
                let _ = stop.send(());
            }
        }
        for s in &mut self.sessions {
            if tokio::time::timeout(Duration::from_secs(5), &mut s.task).await.is_err() {
                s.task.abort();
            }
        }
    }
}

impl Stream for Feed {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        loop {
            if let Some(e) = this.out.pop_front() {
                return Poll::Ready(Some(this.deliver(e)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            if this.since_chores >= CHORES_EVERY {
                this.since_chores = 0;
                if this.chores(cx) {
                    continue;
                }
            }
            let mut private = None;
            for s in &mut this.sessions {
                if let Poll::Ready(Some(ev)) = s.rx.poll_recv(cx) {
                    private = Some(ev);
                    break;
                }
            }
            if let Some(ev) = private {
                // Counted too: a busy private session must not hold the
                // timers off.
                this.since_chores += 1;
                this.out.push_back(ev);
                continue;
            }
            match Pin::new(&mut this.rx).poll_next(cx) {
                Poll::Ready(Some(ev)) => {
                    this.since_chores += 1;
                    this.handle(ev);
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => {
                    // Nothing waiting: the timers and fetches are polled
                    // (and their wakers registered) before the feed waits.
                    this.since_chores = 0;
                    if !this.chores(cx) {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

impl Feed {
    /// Book resubscribes, the refresh tick (book timeouts, statistics) and
    /// finished snapshot fetches; `true` when one of them made progress.
    fn chores(&mut self, cx: &mut Context<'_>) -> bool {
        if self.books.has_resubscribes() {
            self.resubscribe();
        }
        if self.refresh.poll_tick(cx).is_ready() {
            self.books.tick(Instant::now());
            self.refresh_stats();
            return true;
        }
        if let Poll::Ready(f) = self.books.poll_fetch(cx) {
            self.books.on_fetch(f, &mut self.scratch);
            self.book_stats();
            self.out.extend(self.scratch.drain(..));
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofeed_venues::{binance, bybit};

    #[tokio::test]
    async fn a_builder_refuses_what_a_market_does_not_serve_and_subscribes_nothing() {
        let err = Feed::builder()
            .subscribe(binance::spec::SPOT, Channel::Trades, "BTCUSDT")
            .subscribe(bybit::spec::SPOT, Channel::AggTrades, "BTCUSDT")
            .build()
            .await
            .expect_err("bybit has no aggregated trades");
        assert!(err.to_string().contains("bybit:spot has no agg_trades channel"), "{err}");
        assert!(matches!(err.client(), Some(ClientError::Seam(_))), "{err:?}");
        let err = Feed::builder().subscribe(binance::spec::SPOT, Channel::Trades, "BTC USDT").build().await;
        assert!(err.is_err_and(|e| e.to_string().contains("invalid symbol")));
        // Nothing connects until something is subscribed.
        let feed = Feed::builder().build().await.expect("empty feed");
        assert_eq!((feed.client().active_shards(), feed.client().subscriptions().len()), (0, 0));
    }

    #[test]
    fn the_hot_route_counts_what_the_maps_would() {
        let (spot, usdm) = (binance::spec::SPOT, binance::spec::USDM);
        let (a, b): (Arc<str>, Arc<str>) = ("btcusdt@trade".into(), "ethusdt@trade".into());
        let hot = |conn, stream: &Arc<str>, market, raw| Hot {
            conn,
            stream: stream.clone(),
            market,
            tracked: false,
            raw,
            messages: 0,
            bytes: 0,
            last_ns: 0,
        };
        let mut t = Tally::default();
        let mut st = FeedStats::default();
        // A run of three frames of `a` on connection 1, then one of `b`,
        // then `a` again on connection 2 (another market), as handle()
        // counts them.
        let frames = [(1, &a, spot, 10, 100), (1, &a, spot, 20, 200), (1, &a, spot, 30, 300), (1, &b, spot, 5, 400)];
        let frames = frames.into_iter().chain([(2, &a, usdm, 7, 500)]);
        for (conn, stream, market, len, at) in frames {
            if !t.hot.as_ref().is_some_and(|h| h.is(conn, stream)) {
                t.settle();
                // `b` is not subscribed raw: counted for its connection only.
                t.hot = Some(hot(conn, stream, market, !Arc::ptr_eq(stream, &b)));
            }
            let h = t.hot.as_mut().expect("route");
            h.messages += 1;
            h.bytes += len;
            h.last_ns = at;
            t.pending += 1;
        }
        t.publish(&mut st);
        let spot_a = &st.streams[&(spot, "btcusdt@trade".to_string())];
        assert_eq!((spot_a.messages, spot_a.last_ns), (3, 300));
        assert_eq!(st.streams[&(usdm, "btcusdt@trade".to_string())].messages, 1);
        assert!(!st.streams.contains_key(&(spot, "ethusdt@trade".to_string())), "unsubscribed: no entry");
        assert_eq!((st.conns[&("binance", 1)].messages, st.conns[&("binance", 1)].bytes), (4, 65));
        assert_eq!((st.conns[&("binance", 2)].messages, st.conns[&("binance", 2)].bytes), (1, 7));
        // Published counts are not counted twice; the route stays for the
        // next frame and is forgotten (settled first) on request.
        t.publish(&mut st);
        assert_eq!(st.conns[&("binance", 2)].messages, 1);
        let h = t.hot.as_mut().expect("route kept");
        h.messages += 1;
        h.bytes += 3;
        t.forget_route();
        assert!(t.hot.is_none());
        t.pending = 1;
        t.publish(&mut st);
        assert_eq!((st.conns[&("binance", 2)].messages, st.conns[&("binance", 2)].bytes), (2, 10));
    }

    #[test]
    fn engine_status_translates_once_for_every_venue() {
        let gap = status_kind(EngineKind::Gap { stream: "s".into(), from: 3, to: 5, missing: Missing::Count(3) });
        assert_eq!(
            gap,
            Some(EventKind::Gap(Gap { stream: "s".into(), missing: ModelMissing::Range { from: 3, to: 5 } }))
        );
        let unknown = status_kind(EngineKind::Gap { stream: "s".into(), from: 0, to: 0, missing: Missing::Unknown });
        assert!(matches!(unknown, Some(EventKind::Gap(Gap { missing: ModelMissing::Unknown { .. }, .. }))));
        assert_eq!(status_kind(EngineKind::Rotated), None);
        assert_eq!(status_kind(EngineKind::StateChanged(State::Active)), None);
    }
}
