//! One ordered stream of normalized events from a Binance client: market data
//! decoded on the live path, status events translated to the model, local
//! books kept by [`BookManager`]s, and the statistics that the metrics
//! endpoint and the live view read.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::binance::Market;
//! use ferrofeed::feed::{Feed, FeedConfig};
//! let mut feed = Feed::new(FeedConfig::default());
//! feed.subscribe(Market::Spot, &["btcusdt@trade".into()]).await?;
//! feed.track_book(Market::UsdM, "ETHUSDT").await?;
//! while let Some(event) = feed.next().await {
//!     println!("{}", serde_json::to_string(&event)?);
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrofeed_engine::{Event as EngineEvent, EventKind as EngineKind, EventReceiver, Missing, State};
use ferrofeed_model::event::{Event, EventKind, Gap, Missing as ModelMissing, UnknownExtent, Venue};
use ferrofeed_venues::binance::normalize::{self, market_type};
use futures_util::StreamExt;

use crate::binance::{BinanceClient, BinanceConfig, ClientError, Market};
use crate::books::{BookConfig, BookManager};
use crate::bybit::Category;

/// A venue and market, as the statistics key them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A Binance market.
    Binance(Market),
    /// A Bybit category.
    Bybit(Category),
}

impl Source {
    /// The venue's name (`binance`, `bybit`).
    pub fn venue(self) -> &'static str {
        match self {
            Source::Binance(_) => "binance",
            Source::Bybit(_) => "bybit",
        }
    }

    /// The market's name as the venue spells it (`spot`, `usdm`, `linear`).
    pub fn name(self) -> &'static str {
        match self {
            Source::Binance(m) => m.name(),
            Source::Bybit(c) => c.name(),
        }
    }
}

/// The market's name (the venue is [`Source::venue`]).
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A connection as the statistics key it: its venue and the client's id
/// (ids are unique per client, not across venues).
pub type ConnKey = (&'static str, u64);

/// How a feed is built.
#[derive(Debug, Clone, Default)]
pub struct FeedConfig {
    /// The client.
    pub client: BinanceConfig,
    /// Local books.
    pub books: BookConfig,
}

/// One connection, as the statistics see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnStats {
    /// Its venue and market (`None`: a private connection or not yet known).
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
    /// Streams it holds.
    pub streams: usize,
    /// Client messages sent in the venue's current window, and the limit.
    pub msgs_in_window: (usize, usize),
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

/// Everything the metrics endpoint and the live view show; refreshed as
/// events flow and once a second from the client's introspection. Several
/// feeds (a [`Feed`] and a [`BybitFeed`](crate::bybit_feed::BybitFeed)) may
/// share one, each keeping its own entries.
#[derive(Debug, Clone, Default)]
pub struct FeedStats {
    /// Per connection.
    pub conns: BTreeMap<ConnKey, ConnStats>,
    /// Per (market, stream).
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
    /// Per venue: engine events waiting in the client's queue, and its capacity.
    pub queue: BTreeMap<&'static str, (usize, usize)>,
    /// Per venue: events the client's queue dropped (drop-oldest policy).
    pub queue_dropped: BTreeMap<&'static str, u64>,
    /// REST weight per market: used in the current window (when readable), limit.
    pub rest_weight: Vec<(Source, Option<u32>, u32)>,
    /// Connection attempts per venue and host: used (when readable), limit.
    pub attempts: Vec<(&'static str, String, Option<usize>, usize)>,
    /// Snapshot requests sent and failed, and 429s, across markets.
    pub snapshot_requests: (u64, u64, u64),
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

/// A Binance client, its local books and the decoder, as one stream of
/// normalized events.
#[derive(Debug)]
pub struct Feed {
    client: BinanceClient,
    rx: EventReceiver,
    queue_capacity: usize,
    book_cfg: BookConfig,
    books: BTreeMap<Market, BookManager>,
    raw: HashSet<(Market, String)>,
    out: VecDeque<Event>,
    scratch: Vec<Event>,
    stats: SharedStats,
    refresh: tokio::time::Interval,
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// `btcusdt@depth@100ms` → `BTCUSDT`; `!miniTicker@arr` → none.
fn symbol_of(stream: &str) -> Option<String> {
    let s = stream.split('@').next()?;
    (!s.is_empty() && !s.starts_with('!')).then(|| s.to_ascii_uppercase())
}

impl Feed {
    /// A feed; nothing connects until something is subscribed. Must be called
    /// inside a tokio runtime.
    pub fn new(cfg: FeedConfig) -> Feed {
        let queue_capacity = cfg.client.queue_capacity;
        let (client, rx) = BinanceClient::new(cfg.client);
        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Feed {
            client,
            rx,
            queue_capacity,
            book_cfg: cfg.books,
            books: BTreeMap::new(),
            raw: HashSet::new(),
            out: VecDeque::new(),
            scratch: Vec::new(),
            stats: SharedStats::default(),
            refresh,
        }
    }

    /// The client (introspection, instruments, unsubscribe).
    pub fn client(&mut self) -> &mut BinanceClient {
        &mut self.client
    }

    /// The statistics handle (for a metrics endpoint or a live view).
    pub fn stats(&self) -> SharedStats {
        self.stats.clone()
    }

    /// The local book manager of `market`, if any book is tracked there.
    pub fn books(&self, market: Market) -> Option<&BookManager> {
        self.books.get(&market)
    }

    /// Subscribes streams (`btcusdt@trade`); their frames are decoded into
    /// market-data events.
    pub async fn subscribe(&mut self, market: Market, streams: &[String]) -> Result<(), ClientError> {
        self.client.subscribe(market, streams).await?;
        self.raw.extend(streams.iter().map(|s| (market, s.clone())));
        Ok(())
    }

    /// Keeps a local book of `symbol`: `book_snapshot` once in sync,
    /// `book_update` per diff, `book_resync` on a gap.
    pub async fn track_book(&mut self, market: Market, symbol: &str) -> Result<(), ClientError> {
        let mgr = match self.books.get_mut(&market) {
            Some(m) => m,
            None => {
                let m = BookManager::new(&mut self.client, market, self.book_cfg.clone());
                self.books.entry(market).or_insert(m)
            }
        };
        let stream = mgr.track(symbol);
        self.client.subscribe(market, &[stream]).await
    }

    /// The next event; `None` once the client has shut down.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.out.pop_front() {
                let mut st = self.stats.lock();
                st.events += 1;
                *st.events_by_type.entry(e.kind.type_name()).or_default() += 1;
                return Some(e);
            }
            let fetch = async {
                if self.books.is_empty() {
                    return std::future::pending().await;
                }
                let futs = self.books.iter_mut().map(|(m, b)| {
                    let m = *m;
                    Box::pin(async move { (m, b.next_fetch().await) })
                });
                futures_util::future::select_all(futs).await.0
            };
            tokio::select! {
                ev = self.rx.next() => {
                    let ev = ev?;
                    self.handle(ev);
                }
                (market, f) = fetch => {
                    if let Some(b) = self.books.get_mut(&market) {
                        b.on_fetch(f, &mut self.scratch);
                    }
                    self.out.extend(self.scratch.drain(..));
                    self.book_stats(market);
                }
                _ = self.refresh.tick() => self.refresh_stats(),
            }
        }
    }

    fn handle(&mut self, ev: EngineEvent) {
        let market = self.client.market_of_conn(ev.conn);
        let model_market = market.map(market_type).unwrap_or(ferrofeed_model::event::MarketType::Spot);
        let status = |kind: EventKind, symbol: Option<String>| Event {
            kind,
            venue: Venue::Binance,
            market: model_market,
            symbol,
            exchange_ts: None,
            receive_ts: now_ns(),
        };
        let mut st = self.stats.lock();
        let conn = st.conns.entry(("binance", ev.conn)).or_insert_with(|| ConnStats {
            market: market.map(Source::Binance),
            state: State::Connecting,
            epoch: ev.epoch,
            messages: 0,
            bytes: 0,
            reconnects: 0,
            gaps: 0,
            streams: 0,
            msgs_in_window: (0, 0),
        });
        conn.epoch = conn.epoch.max(ev.epoch);
        match ev.kind {
            EngineKind::Data { ref stream, ref payload, received, .. } => {
                conn.messages += 1;
                conn.bytes += payload.len() as u64;
                let received_ns = ns(received);
                if let Some(m) = market {
                    let s = st.streams.entry((Source::Binance(m), stream.clone())).or_default();
                    s.messages += 1;
                    s.last_ns = received_ns;
                }
                drop(st);
                let Some(m) = market else { return };
                if let Some(b) = self.books.get_mut(&m)
                    && b.stream_symbol(stream).is_some()
                {
                    b.on_event(&ev, &mut self.scratch);
                    self.out.extend(self.scratch.drain(..));
                    if let Some(sym) = symbol_of(stream) {
                        self.book_stat(m, &sym);
                    }
                }
                if self.raw.contains(&(m, stream.clone())) {
                    match normalize::decode(m, payload, received_ns) {
                        Ok(events) => self.out.extend(events),
                        Err(e) => {
                            self.stats.lock().decode_errors += 1;
                            self.out.push_back(Event {
                                kind: EventKind::Error { msg: e.to_string(), raw: payload.clone() },
                                venue: Venue::Binance,
                                market: model_market,
                                symbol: symbol_of(stream),
                                exchange_ts: None,
                                receive_ts: received_ns,
                            });
                        }
                    }
                }
            }
            EngineKind::Gap { ref stream, from, to, missing } => {
                conn.gaps += 1;
                st.gaps += 1;
                drop(st);
                let missing = match missing {
                    Missing::Count(_) => ModelMissing::Range { from, to },
                    Missing::Unknown => ModelMissing::Unknown { missing: UnknownExtent::Unknown },
                };
                self.out.push_back(status(EventKind::Gap(Gap { stream: stream.clone(), missing }), symbol_of(stream)));
                if let Some(m) = market
                    && let Some(b) = self.books.get_mut(&m)
                {
                    b.on_event(&ev, &mut self.scratch);
                    self.out.extend(self.scratch.drain(..));
                    if let Some(sym) = symbol_of(stream) {
                        self.book_stat(m, &sym);
                    }
                }
            }
            EngineKind::StateChanged(s) => conn.state = s,
            EngineKind::Connected => {
                conn.state = State::Active;
                drop(st);
                self.out.push_back(status(EventKind::Connected, None));
            }
            EngineKind::Reconnected => {
                conn.state = State::Active;
                conn.reconnects += 1;
                drop(st);
                self.out.push_back(status(EventKind::Reconnected, None));
            }
            EngineKind::Rotated => {}
            EngineKind::Disconnected { reason } => {
                drop(st);
                self.out.push_back(status(EventKind::Disconnected { reason }, None));
            }
            EngineKind::SubscriptionFailed { stream, code, msg } => {
                drop(st);
                let symbol = symbol_of(&stream);
                self.out.push_back(status(EventKind::SubscriptionFailed { stream, code, msg }, symbol));
            }
            EngineKind::AuthFailed { msg } => {
                drop(st);
                self.out.push_back(status(EventKind::AuthFailed { msg }, None));
            }
            EngineKind::GaveUp { reason } => {
                drop(st);
                self.out.push_back(status(EventKind::GaveUp { reason }, None));
            }
            EngineKind::Error { msg, raw } => {
                st.decode_errors += 1;
                drop(st);
                self.out.push_back(status(EventKind::Error { msg, raw }, None));
            }
            EngineKind::Unknown { raw } => {
                drop(st);
                self.out.push_back(status(EventKind::Unknown { raw }, None));
            }
        }
    }

    fn book_stat(&self, market: Market, symbol: &str) {
        let Some(b) = self.books.get(&market) else { return };
        let Some(s) = b.book_stats(symbol) else { return };
        let last = b.book(symbol).map(|x| x.last_update_id());
        self.stats.lock().books.insert(
            (Source::Binance(market), symbol.to_string()),
            BookStats {
                synced: last.is_some(),
                resyncs: s.resyncs,
                applied: s.applied,
                last_update_id: last.unwrap_or(0),
            },
        );
    }

    fn book_stats(&self, market: Market) {
        if let Some(b) = self.books.get(&market) {
            for s in b.symbols() {
                self.book_stat(market, s);
            }
        }
    }

    /// Copies the client's introspection into the statistics (once a second
    /// from [`Feed::next`]; call it directly for a fresh view).
    pub fn refresh_stats(&self) {
        let snaps = self.client.snapshots();
        let rl = self.client.rate_limit_stats();
        let mut fetch = (0, 0, 0);
        for b in self.books.values() {
            let f = b.fetch_stats();
            fetch.0 += f.requests;
            fetch.1 += f.failures;
            fetch.2 += f.rate_limited;
        }
        let mut st = self.stats.lock();
        for s in snaps {
            let market = self.client.market_of_conn(s.id);
            let c = st.conns.entry(("binance", s.id)).or_insert_with(|| ConnStats {
                market: market.map(Source::Binance),
                state: s.state,
                epoch: s.epoch,
                messages: 0,
                bytes: 0,
                reconnects: 0,
                gaps: 0,
                streams: 0,
                msgs_in_window: (0, 0),
            });
            c.state = s.state;
            c.epoch = s.epoch;
            c.reconnects = s.reconnects;
            c.streams = s.streams.len();
            c.msgs_in_window = (s.msgs_in_window, s.msg_limit);
        }
        st.queue.insert("binance", (self.rx.len(), self.queue_capacity));
        st.queue_dropped.insert("binance", self.rx.dropped());
        st.rest_weight.retain(|(s, ..)| !matches!(s, Source::Binance(_)));
        st.rest_weight.extend(rl.rest_weight.into_iter().map(|(m, used, limit)| (Source::Binance(m), used, limit)));
        st.attempts.retain(|(venue, ..)| *venue != "binance");
        st.attempts.extend(rl.attempts.into_iter().map(|(host, used, limit)| ("binance", host, used, limit)));
        st.snapshot_requests = fetch;
    }

    /// Closes every connection (close frames sent) and waits briefly for the
    /// client to wind down.
    pub async fn shutdown(&mut self) {
        self.client.disconnect_all().await;
    }
}
