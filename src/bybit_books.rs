//! Local order books kept in sync from Bybit's `orderbook.{depth}.{symbol}`
//! topics: the Bybit driver around `ferrofeed-book`'s pure state machine.
//!
//! Bybit sends the book on the stream: a snapshot after every subscribe (and
//! as `u == 1` after a venue restart), then deltas whose `u` continues by one.
//! So a book that loses sync needs no REST call: [`BybitBooks`] asks for the
//! topic to be resubscribed ([`BybitBooks::take_resubscribes`], carried out by
//! [`BybitClient::resubscribe`](crate::bybit::BybitClient::resubscribe)) and
//! the venue's next snapshot puts it back in sync, without touching the
//! socket. A resubscribe whose snapshot does not come within
//! `snapshot_timeout` is asked for again. A lost connection, or a gap it
//! reports, loses sync at once; the reconnect's own resubscribe brings the
//! snapshot.
//!
//! Events are the same as Binance's books (docs/events.md): `book_snapshot`
//! once in sync, `book_update` per delta applied (with the best bid and ask),
//! `book_resync` when sync is lost.
//!
//! [`BybitFeed`](crate::bybit_feed::BybitFeed) runs this for you; use it
//! directly with a [`BybitClient`](crate::bybit::BybitClient) of your own:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::bybit::{BybitClient, BybitConfig, Category};
//! use ferrofeed::bybit_books::{BybitBookConfig, BybitBooks};
//! use futures_util::StreamExt;
//! let (mut client, mut events) = BybitClient::new(BybitConfig::default());
//! let mut books = BybitBooks::new(Category::Linear, BybitBookConfig::default());
//! let topic = books.track("BTCUSDT");
//! client.subscribe(Category::Linear, &[topic]).await?;
//! let mut out = Vec::new();
//! while let Some(ev) = events.next().await {
//!     books.on_event(&ev, &mut out);
//!     let again = books.take_resubscribes();
//!     if !again.is_empty() {
//!         client.resubscribe(Category::Linear, &again).await?;
//!     }
//!     for e in out.drain(..) {
//!         println!("{}", serde_json::to_string(&e)?);
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrofeed_book::{BookSync, L2Book, Phase, SyncConfig, SyncEvent, SyncStats};
use ferrofeed_engine::{Event as EngineEvent, EventKind as EngineKind};
use ferrofeed_model::event::{Event, EventKind, MarketType, Venue};
use ferrofeed_venues::bybit::Category;
use ferrofeed_venues::bybit::book::{depths, sequencing};
use ferrofeed_venues::bybit::normalize::{self, Tickers};

use crate::books::{book_event, book_model_event};

/// How Bybit books are kept.
#[derive(Debug, Clone)]
pub struct BybitBookConfig {
    /// The topic depth (`orderbook.{depth}.{symbol}`): 1, 50, 200 or 1000
    /// (spot, linear, inverse); 25 or 100 (option). An unsupported depth is
    /// replaced by the category's deepest but one.
    pub depth: u32,
    /// Levels per side in the published `book_snapshot` (`usize::MAX`: all).
    pub publish_depth: usize,
    /// Buffer and level bounds of each book.
    pub sync: SyncConfig,
    /// A resubscribe whose snapshot has not arrived after this long is sent
    /// again.
    pub snapshot_timeout: Duration,
}

impl Default for BybitBookConfig {
    fn default() -> BybitBookConfig {
        BybitBookConfig {
            depth: 200,
            publish_depth: usize::MAX,
            sync: SyncConfig::default(),
            snapshot_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters of a [`BybitBooks`], across its books.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BybitBookStats {
    /// Resubscribes asked for (each answered by a venue snapshot).
    pub resubscribes: u64,
    /// Of those, repeats after `snapshot_timeout`.
    pub resubscribe_timeouts: u64,
    /// Frames of tracked topics that could not be decoded.
    pub bad_frames: u64,
    /// Snapshots that restarted a topic at `u == 1` (a venue restart).
    pub restarts: u64,
}

#[derive(Debug)]
struct Book {
    sync: BookSync,
    topic: String,
    /// When a resubscribe was last asked for, while its snapshot is awaited.
    asked: Option<Instant>,
    /// The connection its frames last came on.
    conn: Option<u64>,
}

/// Keeps the local books of one Bybit category.
#[derive(Debug)]
pub struct BybitBooks {
    category: Category,
    market: MarketType,
    cfg: BybitBookConfig,
    books: HashMap<String, Book>,
    topics: HashMap<String, String>,
    resubscribe: Vec<String>,
    tickers: Tickers,
    stats: BybitBookStats,
    scratch: Vec<SyncEvent>,
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

impl BybitBooks {
    /// Books of `category`.
    pub fn new(category: Category, mut cfg: BybitBookConfig) -> BybitBooks {
        let allowed = depths(category);
        if !allowed.contains(&cfg.depth) {
            cfg.depth = allowed[allowed.len().saturating_sub(2)];
        }
        BybitBooks {
            category,
            market: category.market_type(),
            cfg,
            books: HashMap::new(),
            topics: HashMap::new(),
            resubscribe: Vec::new(),
            tickers: Tickers::new(),
            stats: BybitBookStats::default(),
            scratch: Vec::new(),
        }
    }

    /// The category.
    pub fn category(&self) -> Category {
        self.category
    }

    /// Starts keeping the book of `symbol`; returns the topic to subscribe
    /// (`orderbook.200.BTCUSDT`). The first frame (the venue's snapshot)
    /// syncs it.
    pub fn track(&mut self, symbol: &str) -> String {
        let symbol = symbol.to_string();
        let topic = format!("orderbook.{}.{symbol}", self.cfg.depth);
        self.topics.insert(topic.clone(), symbol.clone());
        self.books.entry(symbol).or_insert_with(|| Book {
            sync: BookSync::new(sequencing(), self.cfg.sync),
            topic: topic.clone(),
            asked: None,
            conn: None,
        });
        topic
    }

    /// The symbol whose book `topic` feeds, if tracked.
    pub fn topic_symbol(&self, topic: &str) -> Option<&str> {
        self.topics.get(topic).map(String::as_str)
    }

    /// The book of `symbol`, only while it is in sync.
    pub fn book(&self, symbol: &str) -> Option<&L2Book> {
        self.books.get(symbol).and_then(|b| b.sync.book())
    }

    /// Where the book of `symbol` is.
    pub fn phase(&self, symbol: &str) -> Option<Phase> {
        self.books.get(symbol).map(|b| b.sync.phase())
    }

    /// Counters of the book of `symbol`.
    pub fn book_stats(&self, symbol: &str) -> Option<SyncStats> {
        self.books.get(symbol).map(|b| b.sync.stats())
    }

    /// Counters across books.
    pub fn stats(&self) -> BybitBookStats {
        self.stats
    }

    /// Tracked symbols.
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.books.keys().map(String::as_str)
    }

    /// Topics to resubscribe now (each once); the caller passes them to
    /// [`BybitClient::resubscribe`](crate::bybit::BybitClient::resubscribe).
    pub fn take_resubscribes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.resubscribe)
    }

    /// Asks again for snapshots awaited longer than `snapshot_timeout`.
    /// Call it now and then (the feed does, once a second).
    pub fn tick(&mut self, now: Instant) {
        for b in self.books.values_mut() {
            if let Some(t) = b.asked
                && now.duration_since(t) >= self.cfg.snapshot_timeout
            {
                b.asked = Some(now);
                self.stats.resubscribes += 1;
                self.stats.resubscribe_timeouts += 1;
                if !self.resubscribe.contains(&b.topic) {
                    self.resubscribe.push(b.topic.clone());
                }
            }
        }
    }

    /// Feeds one engine event of this category's connections; book events
    /// are pushed to `out`. Events of topics not tracked are ignored.
    pub fn on_event(&mut self, ev: &EngineEvent, out: &mut Vec<Event>) {
        match &ev.kind {
            EngineKind::Data { stream, payload, received, .. } => {
                let Some(symbol) = self.topics.get(stream).cloned() else { return };
                if let Some(b) = self.books.get_mut(&symbol) {
                    b.conn = Some(ev.conn);
                }
                let received_ns = ns(*received);
                match normalize::decode(self.category, payload, received_ns, &mut self.tickers) {
                    Ok(events) => {
                        for e in events {
                            self.on_decoded(&symbol, e, out);
                        }
                    }
                    Err(_) => {
                        // The feed reports the bad frame itself; for the book
                        // it is lost data.
                        self.stats.bad_frames += 1;
                        self.invalidate(&symbol, "undecodable order-book frame", received_ns, out);
                        self.ask(&symbol);
                    }
                }
            }
            EngineKind::Disconnected { reason } => {
                // The book stops following the venue now; the reconnect's
                // snapshot resyncs it.
                let lost: Vec<String> =
                    self.books.iter().filter(|(_, b)| b.conn == Some(ev.conn)).map(|(s, _)| s.clone()).collect();
                let now = ns(SystemTime::now());
                for symbol in lost {
                    self.invalidate(&symbol, &format!("connection lost: {reason}"), now, out);
                }
            }
            EngineKind::Gap { stream, .. } => {
                if let Some(symbol) = self.topics.get(stream).cloned() {
                    // An outage: the reconnect resubscribes, and the venue's
                    // snapshot follows. A gap inside a live stream is also
                    // caught by the book's own chain check.
                    self.invalidate(
                        &symbol,
                        &format!("connection reported a gap on {stream}"),
                        ns(SystemTime::now()),
                        out,
                    );
                }
            }
            _ => {}
        }
    }

    /// Feeds one decoded order-book event (`book_snapshot` or `book_delta`)
    /// of `symbol`; anything else is ignored.
    pub fn on_decoded(&mut self, symbol: &str, e: Event, out: &mut Vec<Event>) {
        let mut sev = std::mem::take(&mut self.scratch);
        let ts = e.exchange_ts;
        let received_ns = e.receive_ts;
        if let Some(b) = self.books.get_mut(symbol) {
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
        self.publish(symbol, &mut sev, ts, received_ns, out);
        self.scratch = sev;
    }

    fn invalidate(&mut self, symbol: &str, reason: &str, received_ns: i64, out: &mut Vec<Event>) {
        let mut sev = std::mem::take(&mut self.scratch);
        if let Some(b) = self.books.get_mut(symbol) {
            b.sync.invalidate(reason, &mut sev);
        }
        self.publish(symbol, &mut sev, None, received_ns, out);
        self.scratch = sev;
    }

    fn ask(&mut self, symbol: &str) {
        let Some(b) = self.books.get_mut(symbol) else { return };
        if b.asked.is_some() {
            return;
        }
        b.asked = Some(Instant::now());
        self.stats.resubscribes += 1;
        if !self.resubscribe.contains(&b.topic) {
            self.resubscribe.push(b.topic.clone());
        }
    }

    fn publish(
        &mut self,
        symbol: &str,
        sev: &mut Vec<SyncEvent>,
        exchange_ts: Option<i64>,
        received_ns: i64,
        out: &mut Vec<Event>,
    ) {
        for e in sev.drain(..) {
            if e == SyncEvent::NeedSnapshot {
                self.ask(symbol);
                continue;
            }
            let book = self.books.get(symbol).and_then(|b| b.sync.book());
            let Some(kind) = book_event(book, e, self.cfg.publish_depth) else { continue };
            out.push(book_model_event(kind, Venue::Bybit, self.market, symbol, exchange_ts, received_ns));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: &str, u: u64, bid: &str) -> String {
        format!(
            r#"{{"topic":"orderbook.50.BTCUSDT","type":"{kind}","ts":1700000000000,"data":{{"s":"BTCUSDT","b":[["{bid}","1"]],"a":[["101","2"]],"u":{u},"seq":{u}}},"cts":1700000000000}}"#
        )
    }

    fn feed(b: &mut BybitBooks, text: &str, out: &mut Vec<Event>) {
        let mut t = Tickers::new();
        for e in normalize::decode(Category::Linear, text, 1, &mut t).expect("decodes") {
            b.on_decoded("BTCUSDT", e, out);
        }
    }

    #[test]
    fn a_broken_chain_asks_for_one_resubscribe_and_the_next_snapshot_resyncs() {
        let mut b = BybitBooks::new(Category::Linear, BybitBookConfig { depth: 50, ..Default::default() });
        assert_eq!(b.track("BTCUSDT"), "orderbook.50.BTCUSDT");
        let mut out = Vec::new();
        feed(&mut b, &frame("snapshot", 10, "100"), &mut out);
        feed(&mut b, &frame("delta", 11, "100.5"), &mut out);
        assert!(matches!(out[0].kind, EventKind::BookSnapshot(_)));
        assert!(matches!(out[1].kind, EventKind::BookUpdate(_)));
        assert_eq!(out[1].venue, Venue::Bybit);
        out.clear();
        feed(&mut b, &frame("delta", 13, "99"), &mut out);
        feed(&mut b, &frame("delta", 14, "99"), &mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0].kind, EventKind::BookResync(_)));
        assert_eq!(b.take_resubscribes(), vec!["orderbook.50.BTCUSDT".to_string()]);
        assert!(b.take_resubscribes().is_empty(), "asked once while the snapshot is awaited");
        // Not answered in time: asked again.
        b.tick(Instant::now() + Duration::from_secs(6));
        assert_eq!(b.take_resubscribes().len(), 1);
        out.clear();
        feed(&mut b, &frame("snapshot", 20, "98"), &mut out);
        assert!(matches!(out[0].kind, EventKind::BookSnapshot(_)));
        assert_eq!(b.book("BTCUSDT").map(|x| x.last_update_id()), Some(20));
        b.tick(Instant::now() + Duration::from_secs(60));
        assert!(b.take_resubscribes().is_empty());
        assert_eq!(b.stats().resubscribes, 2);
    }

    #[test]
    fn unsupported_depths_fall_back_to_the_category_s_own() {
        let b = BybitBooks::new(Category::Option, BybitBookConfig::default());
        assert_eq!(b.cfg.depth, 25);
        let b = BybitBooks::new(Category::Spot, BybitBookConfig { depth: 7, ..Default::default() });
        assert_eq!(b.cfg.depth, 200);
    }
}
