//! Local order books for every venue: the one driver around
//! `ferrofeed-book`'s pure state machine.
//!
//! [`Books`] takes the client's engine events (it only looks at the book
//! streams it tracks), decodes them with the venue's decoder, runs one
//! [`BookSync`] per (market, symbol) and turns its verdicts into model
//! events: `book_snapshot` once a book is in sync, `book_update` for every
//! diff applied, `book_resync` when sync is lost. What a venue decides is in
//! its [`BookPlan`]: the stream, the sequencing rule and how a snapshot is
//! obtained:
//!
//! - [`Recovery::Rest`] (Binance): fetched by spawned tasks, at most
//!   `max_in_flight` at a time, each charged to the market's REST weight
//!   budget before it is sent (so a thousand books resyncing together wait
//!   their turn instead of drawing a 429), retried with backoff.
//! - [`Recovery::Resubscribe`] (Bybit): the venue sends a snapshot on the
//!   stream after every subscribe, so the book's stream is restarted
//!   ([`Books::take_resubscribes`], carried out by the caller); asked again
//!   after `snapshot_timeout`.
//!
//! Everything else is the same for every venue. A gap never reconnects the
//! socket: the book alone starts over. A lost connection loses sync at once
//! for every book it carried (`book_resync` with `connection lost: ...`), so
//! no book is published as in sync while its connection is down; the first
//! frame after the reconnect starts its recovery.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::books::{BookConfig, Books};
//! use ferrofeed::client::{Client, ClientConfig};
//! use ferrofeed::venues::binance::spec::SPOT;
//! use futures_util::StreamExt;
//! let (mut client, mut events) = Client::new(ClientConfig::default());
//! let mut books = Books::new(BookConfig::default());
//! let stream = books.track(&mut client, SPOT, "BTCUSDT")?;
//! client.subscribe(SPOT, &[stream]).await?;
//! let mut out = Vec::new();
//! loop {
//!     tokio::select! {
//!         Some(ev) = events.next() => books.on_event(client.market_of_conn(ev.conn), &ev, &mut out),
//!         fetched = books.next_fetch() => books.on_fetch(fetched, &mut out),
//!     }
//!     for e in out.drain(..) {
//!         println!("{}", serde_json::to_string(&e)?);
//!     }
//! }
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrofeed_book::{BookSync, L2Book, Phase, SyncConfig, SyncEvent, SyncStats};
use ferrofeed_engine::{Decoded, Event as EngineEvent, EventKind as EngineKind, RestClient, RestError, WeightBudget};
use ferrofeed_model::event::{BookResync, BookSnapshot, BookUpdate, Event, EventKind, Level};
use ferrofeed_venues::seam::{BookPlan, Decoder, MarketId, Recovery};
use tokio::sync::mpsc;

use crate::client::{Client, ClientError};

/// How books are kept.
#[derive(Debug, Clone)]
pub struct BookConfig {
    /// Book depth (`None`: the venue's default). Binance: levels of each
    /// REST snapshot (default 1000; spot up to 5000). Bybit: the topic's
    /// depth (1, 50, 200, 1000; option 25, 100; default 200; others fall
    /// back to 200, option 25).
    pub depth: Option<u32>,
    /// Levels per side in the published `book_snapshot` (`usize::MAX`: all).
    pub publish_depth: usize,
    /// Buffer and level bounds of each book.
    pub sync: SyncConfig,
    /// REST snapshot requests in flight at once, across all books.
    pub max_in_flight: usize,
    /// First retry delay after a failed snapshot; doubles up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// A resubscribe whose snapshot has not arrived after this long is sent
    /// again.
    pub snapshot_timeout: Duration,
    /// The longest a venue's rate-limit answer (429/418 with `Retry-After`)
    /// pauses a market's snapshot fetches; without a `Retry-After`, the
    /// pause is 60 s or this, whichever is shorter.
    pub max_retry_after: Duration,
}

impl Default for BookConfig {
    fn default() -> BookConfig {
        BookConfig {
            depth: None,
            publish_depth: usize::MAX,
            sync: SyncConfig::default(),
            max_in_flight: 4,
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(10),
            snapshot_timeout: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(600),
        }
    }
}

/// Snapshot counters of the driver, across books.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// REST snapshot requests sent.
    pub requests: u64,
    /// Requests that failed (any reason).
    pub failures: u64,
    /// Requests the venue refused for rate limits (HTTP 429 or 418).
    pub rate_limited: u64,
    /// Snapshot bodies that could not be decoded.
    pub undecodable: u64,
    /// Frames of tracked streams that could not be decoded.
    pub bad_frames: u64,
    /// Resubscribes asked for (each answered by a venue snapshot).
    pub resubscribes: u64,
    /// Of those, repeats after `snapshot_timeout`.
    pub resubscribe_timeouts: u64,
    /// Stream snapshots that restarted a book at update id 1 (a venue restart).
    pub restarts: u64,
}

/// A REST snapshot fetch that finished, for [`Books::on_fetch`].
#[derive(Debug)]
pub struct Fetched {
    market: MarketId,
    symbol: String,
    received_ns: i64,
    result: Result<String, RestError>,
}

#[derive(Debug)]
struct Book {
    sync: BookSync,
    plan: BookPlan,
    /// REST recovery: failures in a row, and whether a fetch is queued.
    failures: u32,
    queued: bool,
    /// Resubscribe recovery: when it was last asked for, while awaited.
    asked: Option<Instant>,
    /// The connection its frames last came on.
    conn: Option<u64>,
}

/// Where a market's REST snapshots come from.
#[derive(Debug, Clone)]
struct RestSource {
    base: String,
    budget: Option<Arc<WeightBudget>>,
}

type Key = (MarketId, String);

/// Keeps local books of any venue and market.
#[derive(Debug)]
pub struct Books {
    cfg: BookConfig,
    books: HashMap<Key, Book>,
    /// market → stream → symbol (looked up by `&str` on the hot path).
    streams: HashMap<MarketId, HashMap<String, String>>,
    rest: HashMap<MarketId, RestSource>,
    decoders: HashMap<MarketId, Box<dyn Decoder>>,
    http: RestClient,
    waiting: VecDeque<Key>,
    in_flight: usize,
    tx: mpsc::Sender<Fetched>,
    rx: mpsc::Receiver<Fetched>,
    paused_until: HashMap<MarketId, tokio::time::Instant>,
    resubscribe: BTreeMap<MarketId, Vec<String>>,
    stats: FetchStats,
    scratch: Vec<SyncEvent>,
    decoded: Vec<Event>,
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// The model event a book machine's verdict publishes, given the book after
/// it (`None` while out of sync): `book_snapshot` (`publish_depth` levels per
/// side), `book_update` with the new best bid and ask, or `book_resync`.
/// `None` for `NeedSnapshot` (the driver's to answer) and for a publication
/// without a book in sync.
fn book_event(book: Option<&L2Book>, e: SyncEvent, publish_depth: usize) -> Option<EventKind> {
    Some(match e {
        SyncEvent::NeedSnapshot => return None,
        SyncEvent::Synced { last_update_id } => {
            let book = book?;
            EventKind::BookSnapshot(BookSnapshot {
                last_update_id,
                bids: book.bids(publish_depth),
                asks: book.asks(publish_depth),
            })
        }
        SyncEvent::Applied(d) => {
            let book = book?;
            EventKind::BookUpdate(BookUpdate {
                first_update_id: d.first_update_id,
                last_update_id: d.last_update_id,
                bids: d.bids,
                asks: d.asks,
                best_bid: book.best_bid(),
                best_ask: book.best_ask(),
            })
        }
        SyncEvent::Resync { reason, last_update_id } => {
            EventKind::BookResync(BookResync { reason, last_update_id: Some(last_update_id) })
        }
    })
}

impl Books {
    /// A driver with no books.
    pub fn new(cfg: BookConfig) -> Books {
        let cap = cfg.max_in_flight.max(1);
        let (tx, rx) = mpsc::channel(cap);
        Books {
            cfg,
            books: HashMap::new(),
            streams: HashMap::new(),
            rest: HashMap::new(),
            decoders: HashMap::new(),
            http: RestClient::default(),
            waiting: VecDeque::new(),
            in_flight: 0,
            tx,
            rx,
            paused_until: HashMap::new(),
            resubscribe: BTreeMap::new(),
            stats: FetchStats::default(),
            scratch: Vec::new(),
            decoded: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BookConfig {
        &self.cfg
    }

    /// Starts keeping the book of `symbol` on `market`; returns the stream to
    /// subscribe (`btcusdt@depth@100ms`, `orderbook.200.BTCUSDT`). Its REST
    /// snapshots, if the venue uses them, come from `client`'s REST base
    /// under its REST weight budget. Nothing is fetched until the first
    /// frame arrives.
    pub fn track(&mut self, client: &mut Client, market: MarketId, symbol: &str) -> Result<String, ClientError> {
        let spec = Client::spec(market)?;
        let symbol = symbol.trim().to_ascii_uppercase();
        let plan = spec.book_plan(market.market, &symbol, self.cfg.depth.unwrap_or(0));
        if matches!(plan.recovery, Recovery::Rest { .. }) && !self.rest.contains_key(&market) {
            let base = client.rest_url(market)?.trim_end_matches('/').to_string();
            let budget = client.rest_budget(market)?;
            self.rest.insert(market, RestSource { base, budget });
        }
        self.decoders.entry(market).or_insert_with(|| spec.decoder(market.market));
        let stream = plan.stream.clone();
        self.streams.entry(market).or_default().insert(stream.clone(), symbol.clone());
        let sync_cfg = self.cfg.sync;
        self.books.entry((market, symbol)).or_insert_with(|| Book {
            sync: BookSync::new(plan.sequencing, sync_cfg),
            plan,
            failures: 0,
            queued: false,
            asked: None,
            conn: None,
        });
        Ok(stream)
    }

    /// The book of `symbol`, only while it is in sync.
    pub fn book(&self, market: MarketId, symbol: &str) -> Option<&L2Book> {
        self.books.get(&(market, symbol.to_string())).and_then(|b| b.sync.book())
    }

    /// Where the book of `symbol` is.
    pub fn phase(&self, market: MarketId, symbol: &str) -> Option<Phase> {
        self.books.get(&(market, symbol.to_string())).map(|b| b.sync.phase())
    }

    /// Counters of the book of `symbol`.
    pub fn book_stats(&self, market: MarketId, symbol: &str) -> Option<SyncStats> {
        self.books.get(&(market, symbol.to_string())).map(|b| b.sync.stats())
    }

    /// Snapshot counters across books.
    pub fn fetch_stats(&self) -> FetchStats {
        self.stats
    }

    /// Tracked books, as (market, symbol).
    pub fn symbols(&self) -> impl Iterator<Item = (MarketId, &str)> {
        self.books.keys().map(|(m, s)| (*m, s.as_str()))
    }

    /// Whether no book is tracked.
    pub fn is_empty(&self) -> bool {
        self.books.is_empty()
    }

    /// The symbol whose book `stream` of `market` feeds, if tracked.
    pub fn stream_symbol(&self, market: MarketId, stream: &str) -> Option<&str> {
        self.streams.get(&market).and_then(|m| m.get(stream)).map(String::as_str)
    }

    /// The stream of `symbol`'s book.
    pub fn stream_of(&self, market: MarketId, symbol: &str) -> Option<&str> {
        self.books.get(&(market, symbol.to_string())).map(|b| b.plan.stream.as_str())
    }

    /// Feeds one engine event of a connection of `market` (the client's
    /// [`Client::market_of_conn`]); book events for the caller are pushed to
    /// `out`. Events of streams not tracked are ignored.
    pub fn on_event(&mut self, market: Option<MarketId>, ev: &EngineEvent, out: &mut Vec<Event>) {
        self.on_event_decoded(market, ev, Decoded::No, out);
    }

    /// [`Books::on_event`] with the events the connection already decoded
    /// from the frame (`ev`'s own, taken out of it): the frame is not read
    /// again. With [`Decoded::No`] the books decode it themselves.
    pub(crate) fn on_event_decoded(
        &mut self,
        market: Option<MarketId>,
        ev: &EngineEvent,
        pre: Decoded,
        out: &mut Vec<Event>,
    ) {
        let Some(market) = market else { return };
        match &ev.kind {
            EngineKind::Data { stream, payload, received, .. } => {
                let Some(symbol) = self.stream_symbol(market, stream).map(str::to_string) else { return };
                let key = (market, symbol);
                if let Some(b) = self.books.get_mut(&key) {
                    b.conn = Some(ev.conn);
                }
                let received_ns = ns(*received);
                let mut decoded = std::mem::take(&mut self.decoded);
                let result = match pre {
                    Decoded::Events(events) => {
                        decoded.extend(events);
                        Ok(())
                    }
                    Decoded::Failed(_) => Err(()),
                    Decoded::No => match self.decoders.get_mut(&market) {
                        Some(d) => d.decode(payload, received_ns, &mut decoded).map_err(drop),
                        None => Ok(()),
                    },
                };
                match result {
                    Ok(()) => {
                        for e in decoded.drain(..) {
                            self.on_decoded(&key, e, out);
                        }
                    }
                    Err(_) => {
                        // The feed reports the bad frame itself; for the book
                        // it is lost data.
                        decoded.clear();
                        self.stats.bad_frames += 1;
                        self.invalidate(&key, "undecodable order-book frame", received_ns, out);
                        self.recover(&key);
                    }
                }
                self.decoded = decoded;
            }
            EngineKind::Disconnected { reason } => {
                // The book stops following the venue now; the first frame after
                // the reconnect starts its recovery.
                let lost: Vec<Key> = self
                    .books
                    .iter()
                    .filter(|((m, _), b)| *m == market && b.conn == Some(ev.conn))
                    .map(|(k, _)| k.clone())
                    .collect();
                let now = now_ns();
                for key in lost {
                    self.invalidate(&key, &format!("connection lost: {reason}"), now, out);
                }
            }
            EngineKind::Gap { stream, .. } => {
                if let Some(symbol) = self.stream_symbol(market, stream).map(str::to_string) {
                    // Lost data the sequence numbers may not show; a gap inside
                    // a live stream is also caught by the book's own chain check.
                    self.invalidate(
                        &(market, symbol),
                        &format!("connection reported a gap on {stream}"),
                        now_ns(),
                        out,
                    );
                }
            }
            _ => {}
        }
    }

    /// Feeds one decoded order-book event (`book_snapshot` sent on the
    /// stream, or `book_delta`) of a tracked book; anything else is ignored.
    fn on_decoded(&mut self, key: &Key, e: Event, out: &mut Vec<Event>) {
        let mut sev = std::mem::take(&mut self.scratch);
        let ts = e.exchange_ts;
        let received_ns = e.receive_ts;
        if let Some(b) = self.books.get_mut(key) {
            match e.kind {
                EventKind::BookSnapshot(s) => {
                    if s.last_update_id == 1 {
                        self.stats.restarts += 1;
                    }
                    b.asked = None;
                    b.sync.on_stream_snapshot(s, &mut sev);
                }
                EventKind::BookDelta(d) => b.sync.on_delta(d, &mut sev),
                _ => {}
            }
        }
        self.publish(key, &mut sev, ts, received_ns, out);
        self.scratch = sev;
    }

    fn invalidate(&mut self, key: &Key, reason: &str, received_ns: i64, out: &mut Vec<Event>) {
        let mut sev = std::mem::take(&mut self.scratch);
        if let Some(b) = self.books.get_mut(key) {
            b.sync.invalidate(reason, &mut sev);
            b.asked = None;
        }
        self.publish(key, &mut sev, None, received_ns, out);
        self.scratch = sev;
    }

    /// Turns the machine's verdicts into events and recovery requests.
    fn publish(
        &mut self,
        key: &Key,
        sev: &mut Vec<SyncEvent>,
        exchange_ts: Option<i64>,
        received_ns: i64,
        out: &mut Vec<Event>,
    ) {
        for e in sev.drain(..) {
            if e == SyncEvent::NeedSnapshot {
                self.recover(key);
                continue;
            }
            let book = self.books.get(key).and_then(|b| b.sync.book());
            let Some(kind) = book_event(book, e, self.cfg.publish_depth) else { continue };
            let exchange_ts = if matches!(kind, EventKind::BookResync(_)) { None } else { exchange_ts };
            out.push(Event {
                kind,
                venue: key.0.venue,
                market: key.0.market,
                symbol: Some(key.1.clone()),
                exchange_ts,
                receive_ts: received_ns,
            });
        }
    }

    /// Starts the venue's recovery of a book.
    fn recover(&mut self, key: &Key) {
        let Some(b) = self.books.get_mut(key) else { return };
        match b.plan.recovery {
            Recovery::Rest { .. } => {
                if !b.queued {
                    b.queued = true;
                    self.waiting.push_back(key.clone());
                }
                self.start_fetches();
            }
            Recovery::Resubscribe => {
                if b.asked.is_some() {
                    return;
                }
                b.asked = Some(Instant::now());
                self.stats.resubscribes += 1;
                let list = self.resubscribe.entry(key.0).or_default();
                if !list.contains(&b.plan.stream) {
                    list.push(b.plan.stream.clone());
                }
            }
        }
    }

    /// Streams to restart now, per market (each once); the caller passes
    /// them to [`Client::resubscribe`] (or `try_resubscribe`, and
    /// [`Books::retry_resubscribes`] what did not go through).
    pub fn take_resubscribes(&mut self) -> BTreeMap<MarketId, Vec<String>> {
        std::mem::take(&mut self.resubscribe)
    }

    /// Puts back restarts that could not be sent now.
    pub fn retry_resubscribes(&mut self, market: MarketId, streams: Vec<String>) {
        let list = self.resubscribe.entry(market).or_default();
        for s in streams {
            if !list.contains(&s) {
                list.push(s);
            }
        }
    }

    /// Whether restarts are waiting to be sent.
    pub fn has_resubscribes(&self) -> bool {
        !self.resubscribe.is_empty()
    }

    /// Asks again for stream snapshots awaited longer than
    /// `snapshot_timeout`. Call it now and then (the feed does, once a
    /// second).
    pub fn tick(&mut self, now: Instant) {
        for ((market, _), b) in self.books.iter_mut() {
            if let Some(t) = b.asked
                && now.duration_since(t) >= self.cfg.snapshot_timeout
            {
                b.asked = Some(now);
                self.stats.resubscribes += 1;
                self.stats.resubscribe_timeouts += 1;
                let list = self.resubscribe.entry(*market).or_default();
                if !list.contains(&b.plan.stream) {
                    list.push(b.plan.stream.clone());
                }
            }
        }
    }

    fn start_fetches(&mut self) {
        while self.in_flight < self.cfg.max_in_flight.max(1) {
            let Some(key) = self.waiting.pop_front() else { break };
            let Some(b) = self.books.get_mut(&key) else { continue };
            b.queued = false;
            let Recovery::Rest { path, weight } = b.plan.recovery.clone() else { continue };
            let Some(source) = self.rest.get(&key.0).cloned() else { continue };
            let delay = if b.failures == 0 {
                Duration::ZERO
            } else {
                let exp = self.cfg.retry_initial.saturating_mul(1 << (b.failures - 1).min(16));
                exp.min(self.cfg.retry_max)
            };
            let url = format!("{}{path}", source.base);
            let http = self.http.clone();
            let tx = self.tx.clone();
            let paused_until = self.paused_until.get(&key.0).copied();
            let (market, symbol) = key;
            self.in_flight += 1;
            self.stats.requests += 1;
            tokio::spawn(async move {
                if let Some(t) = paused_until {
                    tokio::time::sleep_until(t).await;
                }
                tokio::time::sleep(delay).await;
                let result = http.get(&url, weight, source.budget.as_ref()).await;
                let body = result.map(|b| String::from_utf8_lossy(&b).into_owned());
                // The channel holds max_in_flight results and at most that many
                // tasks exist, so this never waits; a dropped driver ends it.
                let _ = tx.send(Fetched { market, symbol, received_ns: now_ns(), result: body }).await;
            });
        }
    }

    /// Waits for the next finished REST snapshot fetch (cancel-safe; pending
    /// forever while nothing is in flight).
    pub async fn next_fetch(&mut self) -> Fetched {
        std::future::poll_fn(|cx| self.poll_fetch(cx)).await
    }

    /// Polls for the next finished REST snapshot fetch.
    pub fn poll_fetch(&mut self, cx: &mut Context<'_>) -> Poll<Fetched> {
        if self.in_flight == 0 {
            return Poll::Pending;
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(f)) => Poll::Ready(f),
            // The driver holds a sender, so the channel never closes.
            _ => Poll::Pending,
        }
    }

    /// Hands a finished fetch to its book.
    pub fn on_fetch(&mut self, f: Fetched, out: &mut Vec<Event>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let key = (f.market, f.symbol);
        let mut sev = std::mem::take(&mut self.scratch);
        let mut ts = None;
        match f.result {
            Ok(body) => {
                let decoded = Client::spec(key.0).map_err(|e| e.to_string()).and_then(|s| {
                    s.decode_book_snapshot(key.0.market, &key.1, &body, f.received_ns).map_err(|e| e.to_string())
                });
                match decoded {
                    Ok(ev) => {
                        ts = ev.exchange_ts;
                        if let (EventKind::BookSnapshot(snap), Some(b)) = (ev.kind, self.books.get_mut(&key)) {
                            b.failures = 0;
                            b.sync.on_snapshot(snap, &mut sev);
                        }
                    }
                    Err(e) => {
                        self.stats.undecodable += 1;
                        self.stats.failures += 1;
                        tracing::warn!(market = %key.0, symbol = %key.1, error = %e, "snapshot body could not be decoded");
                        self.failed(&key, &mut sev);
                    }
                }
            }
            Err(e) => {
                self.stats.failures += 1;
                if let RestError::Status { status: 429 | 418, retry_after, .. } = &e {
                    self.stats.rate_limited += 1;
                    // A venue's Retry-After is capped: a huge or hostile value
                    // must not pause recovery for years (or overflow).
                    let wait = Duration::from_secs(retry_after.unwrap_or(60)).min(self.cfg.max_retry_after);
                    let now = tokio::time::Instant::now();
                    self.paused_until.insert(key.0, now.checked_add(wait).unwrap_or(now));
                }
                tracing::warn!(market = %key.0, symbol = %key.1, error = %e, "snapshot fetch failed");
                self.failed(&key, &mut sev);
            }
        }
        self.publish(&key, &mut sev, ts, f.received_ns, out);
        self.scratch = sev;
        let now = tokio::time::Instant::now();
        self.paused_until.retain(|_, t| *t > now);
        self.start_fetches();
    }

    fn failed(&mut self, key: &Key, sev: &mut Vec<SyncEvent>) {
        if let Some(b) = self.books.get_mut(key) {
            b.failures = b.failures.saturating_add(1);
            b.sync.snapshot_failed(sev);
        }
    }
}

/// What `ferrofeed book replay` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplayResult {
    /// The symbol (from the first book frame).
    pub symbol: String,
    /// The book's update id when the replay ended.
    pub last_update_id: u64,
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Asks, best first.
    pub asks: Vec<Level>,
    /// Diffs applied.
    pub applied: u64,
    /// Diffs dropped as already contained in the snapshot or repeated.
    pub dropped: u64,
    /// Gaps found (the replay stops applying at the first).
    pub gaps: u64,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The market is not a registered venue's.
    #[error(transparent)]
    Market(#[from] ferrofeed_venues::seam::SeamError),
    /// The snapshot body is not a book snapshot.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A frame line could not be decoded.
    #[error("line {line}: {msg}; payload: {payload}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The decoder's error.
        msg: String,
        /// The offending line.
        payload: String,
    },
}

/// Replays a book offline through the sync machine, as the live driver would:
/// book frames of `market` (one per line, exactly as received) and, for
/// venues that recover from REST, the REST snapshot body fetched after them
/// (`snapshot`). Book snapshots sent on the stream start (and restart) the
/// book. Stops applying at the first gap.
pub fn replay(
    market: MarketId,
    snapshot: Option<&str>,
    updates: &str,
    depth: Option<usize>,
) -> Result<ReplayResult, ReplayError> {
    let spec = Client::spec(market)?;
    let n = depth.unwrap_or(usize::MAX);
    let mut decoder = spec.decoder(market.market);
    let mut events = Vec::new();
    for (i, line) in updates.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        decoder.decode(line, 0, &mut events).map_err(|e| ReplayError::Line {
            line: i + 1,
            msg: e.to_string(),
            payload: line.to_string(),
        })?;
    }
    events.retain(|e| matches!(e.kind, EventKind::BookDelta(_) | EventKind::BookSnapshot(_)));
    let symbol = events.iter().find_map(|e| e.symbol.clone()).unwrap_or_default();
    let plan = spec.book_plan(market.market, &symbol, 0);
    let mut sync: BookSync =
        BookSync::new(plan.sequencing, SyncConfig { max_buffer: usize::MAX, ..SyncConfig::default() });
    let mut out = Vec::new();
    let mut last = (0, Vec::new(), Vec::new());
    let rest = snapshot.is_some();
    if let Some(body) = snapshot {
        let snap = match spec.decode_book_snapshot(market.market, &symbol, body, 0) {
            Ok(Event { kind: EventKind::BookSnapshot(s), .. }) => s,
            Ok(_) => return Err(ReplayError::Snapshot("not a depth snapshot".into())),
            Err(e) => return Err(ReplayError::Snapshot(e.to_string())),
        };
        // Until a diff bridges it, the book is the snapshot.
        last = (
            snap.last_update_id,
            snap.bids.iter().take(n).copied().collect(),
            snap.asks.iter().take(n).copied().collect(),
        );
        sync.on_snapshot(snap, &mut out);
    }
    let mut gaps = 0;
    for e in events {
        out.clear();
        match e.kind {
            EventKind::BookSnapshot(snap) => sync.on_stream_snapshot(snap, &mut out),
            EventKind::BookDelta(d) => sync.on_delta(d, &mut out),
            _ => continue,
        }
        let gap = out.iter().any(|e| matches!(e, SyncEvent::Resync { .. }))
            || (rest && out.iter().any(|e| matches!(e, SyncEvent::NeedSnapshot)));
        if gap {
            gaps += 1;
            break;
        }
        if let Some(b) = sync.book() {
            last = (b.last_update_id(), b.bids(n), b.asks(n));
        }
    }
    let st = sync.stats();
    let (last_update_id, bids, asks) = last;
    Ok(ReplayResult { symbol, last_update_id, bids, asks, applied: st.applied, dropped: st.suppressed, gaps })
}
