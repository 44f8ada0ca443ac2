//! One ordered stream of normalized events from a Bybit client: public and
//! private topics decoded on the live path into the same model as Binance
//! (docs/events.md), status events translated, and local books kept by
//! [`BybitBooks`] (recovered by resubscribing, which makes the venue send a
//! snapshot).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::bybit::Category;
//! use ferrofeed::bybit_feed::{BybitFeed, BybitFeedConfig};
//! let mut feed = BybitFeed::new(BybitFeedConfig::default());
//! feed.subscribe(Category::Linear, &["publicTrade.BTCUSDT".into()]).await?;
//! feed.track_book(Category::Spot, "ETHUSDT").await?;
//! while let Some(event) = feed.next().await {
//!     println!("{}", serde_json::to_string(&event)?);
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrofeed_engine::{Event as EngineEvent, EventKind as EngineKind, EventReceiver, Missing, State};
use ferrofeed_model::event::{Event, EventKind, Gap, MarketType, Missing as ModelMissing, UnknownExtent, Venue};
use ferrofeed_venues::auth::{Clock, Credentials};
use ferrofeed_venues::bybit::normalize::{self, Tickers};
use futures_util::StreamExt;

use crate::bybit::{BybitClient, BybitConfig, BybitError, Category};
use crate::bybit_books::{BybitBookConfig, BybitBooks};
use crate::feed::{BookStats, ConnStats, SharedStats, Source};

/// How a Bybit feed is built.
#[derive(Debug, Clone)]
pub struct BybitFeedConfig {
    /// The client.
    pub client: BybitConfig,
    /// Local books.
    pub books: BybitBookConfig,
    /// The category private items that name none (`wallet`) and the private
    /// connection's status events are reported under.
    pub private_category: Category,
}

impl Default for BybitFeedConfig {
    fn default() -> BybitFeedConfig {
        BybitFeedConfig {
            client: BybitConfig::default(),
            books: BybitBookConfig::default(),
            private_category: Category::Linear,
        }
    }
}

/// A Bybit client, its local books and the decoder, as one stream of
/// normalized events.
#[derive(Debug)]
pub struct BybitFeed {
    client: BybitClient,
    rx: EventReceiver,
    book_cfg: BybitBookConfig,
    private_category: Category,
    books: BTreeMap<Category, BybitBooks>,
    /// Topics decoded into events, per pool (`None`: private).
    raw: HashSet<(Option<Category>, String)>,
    tickers: Tickers,
    out: VecDeque<Event>,
    scratch: Vec<Event>,
    stats: SharedStats,
    tick: tokio::time::Interval,
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// `orderbook.50.BTCUSDT`, `kline.1.BTCUSDT` → `BTCUSDT`; `publicTrade.BTCUSDT`
/// → `BTCUSDT`; private topics (`order`) → none.
fn symbol_of(topic: &str) -> Option<String> {
    let mut parts = topic.split('.');
    let name = parts.next()?;
    let last = parts.next_back()?;
    (name != "order" && name != "execution" && name != "position" && name != "wallet" && !last.is_empty())
        .then(|| last.to_string())
}

impl BybitFeed {
    /// A public-data feed; nothing connects until something is subscribed.
    /// Must be called inside a tokio runtime.
    pub fn new(cfg: BybitFeedConfig) -> BybitFeed {
        let (client, rx) = BybitClient::new(cfg.client.clone());
        BybitFeed::build(client, rx, cfg)
    }

    /// A feed that can also subscribe private topics (`order`, `execution`,
    /// `position`, `wallet`), authenticating with `credentials`.
    pub fn with_credentials(cfg: BybitFeedConfig, credentials: Arc<Credentials>, clock: Arc<Clock>) -> BybitFeed {
        let (client, rx) = BybitClient::with_credentials(cfg.client.clone(), credentials, clock);
        BybitFeed::build(client, rx, cfg)
    }

    fn build(client: BybitClient, rx: EventReceiver, cfg: BybitFeedConfig) -> BybitFeed {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        BybitFeed {
            client,
            rx,
            book_cfg: cfg.books,
            private_category: cfg.private_category,
            books: BTreeMap::new(),
            raw: HashSet::new(),
            tickers: Tickers::new(),
            out: VecDeque::new(),
            scratch: Vec::new(),
            stats: SharedStats::default(),
            tick,
        }
    }

    /// The client (introspection, unsubscribe).
    pub fn client(&mut self) -> &mut BybitClient {
        &mut self.client
    }

    /// The statistics handle (for a metrics endpoint): the same
    /// [`FeedStats`](crate::feed::FeedStats) as a Binance [`Feed`](crate::feed::Feed)'s, under
    /// `bybit` keys.
    pub fn stats(&self) -> SharedStats {
        self.stats.clone()
    }

    /// Keeps the statistics in `stats` instead, beside another feed's (one
    /// metrics endpoint for both venues).
    pub fn share_stats(&mut self, stats: SharedStats) {
        self.stats = stats;
    }

    /// The local books of `category`, if any book is tracked there.
    pub fn books(&self, category: Category) -> Option<&BybitBooks> {
        self.books.get(&category)
    }

    /// Subscribes public topics (`publicTrade.BTCUSDT`, `tickers.BTCUSDT`,
    /// `kline.1.BTCUSDT`, `orderbook.50.BTCUSDT`, ...); their frames are
    /// decoded into market-data events.
    pub async fn subscribe(&mut self, category: Category, topics: &[String]) -> Result<(), BybitError> {
        self.client.subscribe(category, topics).await?;
        self.raw.extend(topics.iter().map(|t| (Some(category), t.clone())));
        Ok(())
    }

    /// Subscribes private topics on the authenticated connection.
    pub async fn subscribe_private(&mut self, topics: &[String]) -> Result<(), BybitError> {
        self.client.subscribe_private(topics).await?;
        self.raw.extend(topics.iter().map(|t| (None, t.clone())));
        Ok(())
    }

    /// Keeps a local book of `symbol`: `book_snapshot` once in sync,
    /// `book_update` per delta, `book_resync` when sync is lost (then a
    /// resubscribe brings the venue's snapshot).
    pub async fn track_book(&mut self, category: Category, symbol: &str) -> Result<(), BybitError> {
        let cfg = self.book_cfg.clone();
        let topic = self.books.entry(category).or_insert_with(|| BybitBooks::new(category, cfg)).track(symbol);
        self.client.subscribe(category, &[topic]).await
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
            tokio::select! {
                ev = self.rx.next() => {
                    let ev = ev?;
                    self.handle(ev);
                }
                _ = self.tick.tick() => {
                    let now = Instant::now();
                    for b in self.books.values_mut() {
                        b.tick(now);
                    }
                    self.refresh_stats();
                }
            }
            self.resubscribe().await;
        }
    }

    /// Carries out the resubscribes the books asked for. A failure means the
    /// client is shutting down; the book stays out of sync and says so.
    async fn resubscribe(&mut self) {
        for (c, b) in self.books.iter_mut() {
            let topics = b.take_resubscribes();
            if !topics.is_empty()
                && let Err(e) = self.client.resubscribe(*c, &topics).await
            {
                tracing::warn!(category = %c, error = %e, "resubscribing book topics failed");
            }
        }
    }

    fn handle(&mut self, ev: EngineEvent) {
        // `None`: not ours (cannot happen); `Some(None)`: the private pool.
        let pool = self.client.category_of_conn(ev.conn).unwrap_or(Some(self.private_category));
        let category = pool.unwrap_or(self.private_category);
        let market: MarketType = category.market_type();
        let status = |kind: EventKind, symbol: Option<String>| Event {
            kind,
            venue: Venue::Bybit,
            market,
            symbol,
            exchange_ts: None,
            receive_ts: ns(SystemTime::now()),
        };
        let source = pool.map(Source::Bybit);
        let mut st = self.stats.lock();
        let conn = st.conns.entry(("bybit", ev.conn)).or_insert_with(|| ConnStats {
            market: source,
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
        match &ev.kind {
            EngineKind::Data { payload, .. } => {
                conn.messages += 1;
                conn.bytes += payload.len() as u64;
            }
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
        if let EngineKind::Data { stream, received, .. } = &ev.kind
            && let Some(src) = source
        {
            let s = st.streams.entry((src, stream.clone())).or_default();
            s.messages += 1;
            s.last_ns = ns(*received);
        }
        drop(st);
        match ev.kind {
            EngineKind::Data { ref stream, ref payload, received, .. } => {
                if let Some(c) = pool
                    && let Some(b) = self.books.get_mut(&c)
                    && b.topic_symbol(stream).is_some()
                {
                    b.on_event(&ev, &mut self.scratch);
                    self.book_stats(c);
                    self.out.extend(self.scratch.drain(..));
                }
                if self.raw.contains(&(pool, stream.clone())) {
                    let received_ns = ns(received);
                    match normalize::decode(category, payload, received_ns, &mut self.tickers) {
                        Ok(events) => self.out.extend(events),
                        Err(e) => {
                            self.stats.lock().decode_errors += 1;
                            self.out.push_back(Event {
                                kind: EventKind::Error { msg: e.to_string(), raw: payload.clone() },
                                venue: Venue::Bybit,
                                market,
                                symbol: symbol_of(stream),
                                exchange_ts: None,
                                receive_ts: received_ns,
                            });
                        }
                    }
                }
            }
            EngineKind::Gap { ref stream, from, to, missing } => {
                let m = match missing {
                    Missing::Count(_) => ModelMissing::Range { from, to },
                    Missing::Unknown => ModelMissing::Unknown { missing: UnknownExtent::Unknown },
                };
                self.out
                    .push_back(status(EventKind::Gap(Gap { stream: stream.clone(), missing: m }), symbol_of(stream)));
                if let Some(c) = pool
                    && let Some(b) = self.books.get_mut(&c)
                {
                    b.on_event(&ev, &mut self.scratch);
                    self.book_stats(c);
                    self.out.extend(self.scratch.drain(..));
                }
            }
            EngineKind::StateChanged(_) | EngineKind::Rotated => {}
            EngineKind::Connected => self.out.push_back(status(EventKind::Connected, None)),
            EngineKind::Reconnected => self.out.push_back(status(EventKind::Reconnected, None)),
            EngineKind::Disconnected { ref reason } => {
                self.out.push_back(status(EventKind::Disconnected { reason: reason.clone() }, None));
                if let Some(c) = pool
                    && let Some(b) = self.books.get_mut(&c)
                {
                    b.on_event(&ev, &mut self.scratch);
                    self.book_stats(c);
                    self.out.extend(self.scratch.drain(..));
                }
            }
            EngineKind::SubscriptionFailed { stream, code, msg } => {
                let symbol = symbol_of(&stream);
                self.out.push_back(status(EventKind::SubscriptionFailed { stream, code, msg }, symbol));
            }
            EngineKind::AuthFailed { msg } => self.out.push_back(status(EventKind::AuthFailed { msg }, None)),
            EngineKind::GaveUp { reason } => self.out.push_back(status(EventKind::GaveUp { reason }, None)),
            EngineKind::Error { msg, raw } => self.out.push_back(status(EventKind::Error { msg, raw }, None)),
            EngineKind::Unknown { raw } => self.out.push_back(status(EventKind::Unknown { raw }, None)),
        }
    }

    /// Records the state of the books the last engine event touched (the
    /// symbols of the book events in `scratch`).
    fn book_stats(&self, category: Category) {
        let Some(b) = self.books.get(&category) else { return };
        let mut st = self.stats.lock();
        for e in &self.scratch {
            let Some(symbol) = e.symbol.as_deref() else { continue };
            let Some(s) = b.book_stats(symbol) else { continue };
            let last = b.book(symbol).map(|x| x.last_update_id());
            st.books.insert(
                (Source::Bybit(category), symbol.to_string()),
                BookStats {
                    synced: last.is_some(),
                    resyncs: s.resyncs,
                    applied: s.applied,
                    last_update_id: last.unwrap_or(0),
                },
            );
        }
    }

    /// Copies the client's introspection into the statistics (once a second
    /// from [`BybitFeed::next`]).
    pub fn refresh_stats(&self) {
        let snaps = self.client.snapshots();
        let attempts = self.client.attempt_stats();
        let mut st = self.stats.lock();
        for s in snaps {
            let source = self.client.category_of_conn(s.id).flatten().map(Source::Bybit);
            let c = st.conns.entry(("bybit", s.id)).or_insert_with(|| ConnStats {
                market: source,
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
        st.queue.insert("bybit", (self.rx.len(), self.client.queue_capacity()));
        st.queue_dropped.insert("bybit", self.rx.dropped());
        st.attempts.retain(|(venue, ..)| *venue != "bybit");
        st.attempts.extend(attempts.into_iter().map(|(host, used, limit)| ("bybit", host, used, limit)));
    }

    /// Closes every connection (close frames sent).
    pub async fn shutdown(&mut self) {
        self.client.disconnect_all().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_come_from_the_topic() {
        assert_eq!(symbol_of("orderbook.50.BTCUSDT").as_deref(), Some("BTCUSDT"));
        assert_eq!(symbol_of("kline.1.ETHUSDT").as_deref(), Some("ETHUSDT"));
        assert_eq!(symbol_of("publicTrade.BTC-26DEC26-100000-C").as_deref(), Some("BTC-26DEC26-100000-C"));
        assert_eq!(symbol_of("order"), None);
        assert_eq!(symbol_of("order.linear"), None);
        assert_eq!(symbol_of("wallet"), None);
    }
}
