//! `ferrofeed chaos`: a soak under random faults with exact accounting.
//!
//! An embedded simulator serves the first two markets of every venue in the
//! registry (that the simulator speaks); one [`Feed`] subscribes trades and
//! tickers of two symbols and a local book of one on each. Faults are drawn
//! from a seeded RNG (same `--seed`, same schedule): kills (close frame or
//! TCP reset), stalls, dropped book messages, floods of malformed frames and
//! of unsubscribed-stream data, oversized frames, rate-limited snapshots and
//! id resets. At the end the markets are paused and the feed drained, then
//! every stream is accounted for against the simulator's truth
//! ([`ferrofeed::audit::IdLedger`]) and every book compared with it.
//!
//! The exit code is 1 on any silent loss, duplicate, wrong or unsettled
//! book, panic, or growth beyond the bounds (peak RSS, queue length).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrofeed::audit::{IdLedger, Restart};
use ferrofeed::books::BookConfig;
use ferrofeed::client::{Channel, Client, ClientConfig, MarketId};
use ferrofeed::engine::BackoffConfig;
use ferrofeed::feed::{Feed, FeedStats};
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{EventKind, Level};
use ferrofeed::venues::registry;
use ferrofeed::venues::seam::Recovery as BookRecovery;
use ferrofeed_sim::{KillMode, MarketHandle, Sim};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Peak RSS allowed for the whole process (feed and embedded simulator).
pub(crate) const RSS_BOUND: u64 = 64 << 20;
/// Markets per venue the soak runs.
const MARKETS_PER_VENUE: usize = 2;
/// Symbols per market: trades and tickers of each, a book of the first.
const SYMBOLS: usize = 2;
/// Levels of a published book compared with the truth.
const DEPTH: usize = 20;
/// How long the end may take to drain the feed and settle the books.
const SETTLE: Duration = Duration::from_secs(20);
/// Events of the fault log kept for the report.
const LOG_KEPT: usize = 200;

/// Panics anywhere in the process (the hook is installed by [`run`]).
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Every fault the soak injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Kill,
    Reset,
    Stall,
    Drop,
    Malformed,
    Unsubscribed,
    Oversized,
    RateLimit,
    IdReset,
}

impl Fault {
    const ALL: [Fault; 9] = [
        Fault::Kill,
        Fault::Reset,
        Fault::Stall,
        Fault::Drop,
        Fault::Malformed,
        Fault::Unsubscribed,
        Fault::Oversized,
        Fault::RateLimit,
        Fault::IdReset,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Reset => "reset",
            Fault::Stall => "stall",
            Fault::Drop => "drop",
            Fault::Malformed => "malformed_flood",
            Fault::Unsubscribed => "unsubscribed_flood",
            Fault::Oversized => "oversized",
            Fault::RateLimit => "rate_limit",
            Fault::IdReset => "id_reset",
        }
    }
}

/// One market of the soak.
#[derive(Debug)]
struct Market {
    id: MarketId,
    handle: MarketHandle,
    symbols: Vec<String>,
    /// The book's symbol and its stream.
    book: (String, String),
    /// Books recover by REST snapshot (the rate-limit fault applies).
    rest_books: bool,
    /// Id resets so far (each restarts from a fresh low number).
    resets: u64,
}

/// One trade stream's accounting.
#[derive(Debug, Default)]
struct TradeStream {
    ledger: IdLedger,
    /// Trades whose id is not a number (not accounted).
    unnumbered: u64,
    /// Trades carry the venue's consecutive per-instrument sequence number
    /// (Deribit `trade_seq`), which is what is accounted. Such venues may
    /// batch trades into one message (Deribit `100ms` channels), so the
    /// simulator's message count is not a trade count: what was produced is
    /// the numbers from the first trade seen to the last one produced.
    by_seq: bool,
    /// The engine does not check sequence numbers on it (not in any of its
    /// connections' `ConnSnapshot::sequenced`): a loss on it shows only at
    /// socket changes, as an unknown gap (docs/events.md).
    unsequenced: bool,
    /// Ids the simulator produced while the stream's connection was
    /// stalled (inclusive ranges).
    stalled: Vec<(u64, u64)>,
}

/// A stall in progress: when it ends, and each trade stream's last id
/// when it began.
#[derive(Debug)]
struct Stall {
    until: Instant,
    starts: Vec<((MarketId, String), Option<u64>)>,
}

/// One book's checks.
#[derive(Debug, Default)]
struct BookCheck {
    published: u64,
    equal: u64,
    wrong: u64,
    /// Published while the book was not in sync.
    unsynced: u64,
    /// No truth at the published update id (outside the history, or across
    /// an id reset).
    unverified: u64,
    resyncs: u64,
    first_wrong: Option<String>,
}

/// Time from a disconnect to the first data after the reconnect, per
/// market, measured by the consumer.
#[derive(Debug, Default)]
struct Recovery {
    pending: BTreeMap<MarketId, (Instant, bool)>,
    samples_ms: Vec<f64>,
}

impl Recovery {
    fn disconnected(&mut self, m: MarketId) {
        self.pending.entry(m).or_insert((Instant::now(), false));
    }

    fn reconnected(&mut self, m: MarketId) {
        if let Some(p) = self.pending.get_mut(&m) {
            p.1 = true;
        }
    }

    fn data(&mut self, m: MarketId) {
        if let Some((t, true)) = self.pending.get(&m).copied() {
            self.samples_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            self.pending.remove(&m);
        }
    }
}

/// The recovery-time distribution from the consumer's side: the time from a
/// `disconnected` of a market to its first data after a `reconnected`.
fn recovery_times_consumer_side(r: &Recovery) -> serde_json::Value {
    let mut v = r.samples_ms.clone();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v.get(((v.len() as f64 - 1.0) * p).round() as usize).map(|x| (x * 10.0).round() / 10.0);
    serde_json::json!({
        "source": "consumer (feed status events and data)",
        "samples": v.len(),
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "max_ms": v.last().map(|x| (x * 10.0).round() / 10.0),
    })
}

/// The engine's own recovery statistic: per connection, the time from a
/// lost socket to the first data on the next, merged over every market
/// (`FeedStats::recovery`; quantiles are bucket bounds, capped by the
/// maximum).
fn recovery_times_engine_side(stats: &FeedStats) -> Option<serde_json::Value> {
    let mut all = ferrofeed::engine::RecoveryStats::default();
    for r in stats.recovery.values() {
        all.merge(r);
    }
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0);
    let per_market: BTreeMap<String, u64> = stats.recovery.iter().map(|(m, r)| (m.to_string(), r.count)).collect();
    Some(serde_json::json!({
        "source": "engine (lost socket to first data on the next, per connection)",
        "samples": all.count,
        "p50_ms": ms(all.quantile(0.5)),
        "p99_ms": ms(all.quantile(0.99)),
        "max_ms": ms((all.count > 0).then_some(all.max)),
        "per_market": per_market,
    }))
}

/// The largest frame any venue's rules accept (Binance public sockets).
const MAX_FRAME_BYTES: usize = 4 << 20;

/// VmHWM (peak resident set) of this process, in bytes.
fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn levels(v: &[[String; 2]]) -> Option<Vec<Level>> {
    v.iter().map(|[p, q]| Some(Level { price: p.parse::<Decimal>().ok()?, qty: q.parse::<Decimal>().ok()? })).collect()
}

fn restarts(h: &MarketHandle, stream: &str) -> Vec<Restart> {
    h.stream_stats(stream)
        .map(|s| s.resets.iter().map(|r| Restart { last_before: r.last_before, first_after: r.first_after }).collect())
        .unwrap_or_default()
}

/// The soak's state.
#[derive(Debug)]
struct Soak {
    markets: Vec<Market>,
    trades: BTreeMap<(MarketId, String), TradeStream>,
    tickers: BTreeMap<(MarketId, String), u64>,
    books: BTreeMap<MarketId, BookCheck>,
    recovery: Recovery,
    injected: BTreeMap<&'static str, u64>,
    stalls: Vec<Stall>,
    log: Vec<serde_json::Value>,
    errors: u64,
    events: u64,
    queue_max: (usize, usize),
    start: Instant,
}

impl Soak {
    fn market(&self, id: MarketId) -> Option<&Market> {
        self.markets.iter().find(|m| m.id == id)
    }

    fn on_event(&mut self, feed: &Feed, ev: ferrofeed::model::event::Event) {
        self.events += 1;
        let id = MarketId::new(ev.venue, ev.market);
        let symbol = ev.symbol.clone().unwrap_or_default();
        match &ev.kind {
            EventKind::Trade(t) => {
                self.recovery.data(id);
                let Ok(stream) = Client::stream_name(id, &Channel::Trades, &symbol) else { return };
                let truth = self.market(id).map(|m| restarts(&m.handle, &stream)).unwrap_or_default();
                let Some(ts) = self.trades.get_mut(&(id, stream)) else { return };
                ts.by_seq |= t.trade_seq.is_some();
                match t.trade_seq.or_else(|| t.trade_id.parse::<u64>().ok()) {
                    Some(n) => ts.ledger.on_id(n, &truth),
                    None => ts.unnumbered += 1,
                }
            }
            EventKind::Ticker(_) => {
                self.recovery.data(id);
                if let Ok(stream) = Client::stream_name(id, &Channel::Ticker, &symbol) {
                    *self.tickers.entry((id, stream)).or_default() += 1;
                }
            }
            EventKind::Gap(g) => {
                if let Some(ts) = self.trades.get_mut(&(id, g.stream.clone())) {
                    ts.ledger.gap(&g.missing);
                }
            }
            EventKind::Disconnected { .. } => self.recovery.disconnected(id),
            EventKind::Reconnected => self.recovery.reconnected(id),
            EventKind::Error { .. } => self.errors += 1,
            EventKind::BookResync(_) => self.books.entry(id).or_default().resyncs += 1,
            EventKind::BookSnapshot(_) | EventKind::BookUpdate(_) => {
                self.recovery.data(id);
                let u = match &ev.kind {
                    EventKind::BookSnapshot(s) => s.last_update_id,
                    EventKind::BookUpdate(d) => d.last_update_id,
                    _ => return,
                };
                let Some(m) = self.market(id) else { return };
                let what = format!("{id} {symbol} at {u}");
                let verdict = match feed.books().book(id, &symbol) {
                    None => Err(None),
                    Some(book) => match m.handle.book_at(&symbol, u, DEPTH) {
                        None => Ok(false),
                        Some(truth) => {
                            let (bids, asks) = (levels(&truth.bids), levels(&truth.asks));
                            if book.last_update_id() == u
                                && Some(book.bids(DEPTH)) == bids
                                && Some(book.asks(DEPTH)) == asks
                            {
                                Ok(true)
                            } else {
                                Err(Some(format!(
                                    "{what}: book at {} best {:?}/{:?}, truth best {:?}/{:?}",
                                    book.last_update_id(),
                                    book.best_bid().map(|l| l.price),
                                    book.best_ask().map(|l| l.price),
                                    truth.bids.first(),
                                    truth.asks.first()
                                )))
                            }
                        }
                    },
                };
                let b = self.books.entry(id).or_default();
                b.published += 1;
                match verdict {
                    Ok(true) => b.equal += 1,
                    Ok(false) => b.unverified += 1,
                    Err(None) => b.unsynced += 1,
                    Err(Some(msg)) => {
                        b.wrong += 1;
                        b.first_wrong.get_or_insert(msg);
                    }
                }
            }
            _ => {}
        }
    }

    /// Injects one fault of kind `f` on a market it applies to; returns
    /// whether it was injected.
    fn inject(&mut self, f: Fault, feed: &Feed, rng: &mut ChaCha8Rng) -> bool {
        let eligible: Vec<usize> =
            (0..self.markets.len()).filter(|i| f != Fault::RateLimit || self.markets[*i].rest_books).collect();
        let Some(&i) = eligible.get(rng.random_range(0..eligible.len().max(1))) else { return false };
        let m = &mut self.markets[i];
        let h = &m.handle;
        let detail = match f {
            Fault::Kill => format!("{} connections closed (1001)", h.kill_all(KillMode::Close)),
            Fault::Reset => format!("{} connections reset (TCP)", h.kill_all(KillMode::Reset)),
            Fault::Stall => {
                let ms = rng.random_range(200..1500);
                let starts = self
                    .trades
                    .keys()
                    .filter(|(mid, _)| *mid == m.id)
                    .map(|k| (k.clone(), h.stream_stats(&k.1).and_then(|s| s.last_id)))
                    .collect();
                let n = h.stall(None, Duration::from_millis(ms));
                self.stalls.push(Stall { until: Instant::now() + Duration::from_millis(ms + 50), starts });
                format!("{n} connections stalled {ms} ms")
            }
            Fault::Drop => {
                let n = rng.random_range(1..=3);
                h.drop_next(&m.book.1, n);
                format!("next {n} messages of {} dropped", m.book.1)
            }
            Fault::Malformed => {
                let n = rng.random_range(100..1000);
                format!("{} connections flooded with {n} malformed frames", h.flood_malformed(None, n))
            }
            Fault::Unsubscribed => {
                let n = rng.random_range(1000..5000);
                let k = rng.random_range(100..2000);
                format!(
                    "{} connections flooded with {n} frames on {k} unsubscribed streams",
                    h.flood_unsubscribed(None, n, k)
                )
            }
            Fault::Oversized => {
                let bytes = rng.random_range(256 << 10..2 << 20);
                match h.send_oversized(None, bytes) {
                    Ok(n) => format!("{n} connections sent a {bytes}-byte frame"),
                    Err(e) => format!("refused: {e}"),
                }
            }
            Fault::RateLimit => {
                let n = rng.random_range(1..=3);
                h.rate_limit_snapshots(n, Some("1"));
                // A dropped diff makes the book fetch a snapshot.
                h.drop_next(&m.book.1, 1);
                format!("next {n} snapshots answered 429 (Retry-After: 1), one diff of {} dropped", m.book.1)
            }
            Fault::IdReset => {
                let symbol = m.symbols[rng.random_range(0..m.symbols.len())].clone();
                m.resets += 1;
                let to = 1 + (m.resets - 1) * 100_000;
                h.reset_ids(Some(&symbol), to);
                format!("ids of {symbol} restart at {to}")
            }
        };
        let _ = feed;
        *self.injected.entry(f.name()).or_default() += 1;
        if self.log.len() < LOG_KEPT {
            self.log.push(serde_json::json!({
                "at_s": (self.start.elapsed().as_secs_f64() * 100.0).round() / 100.0,
                "fault": f.name(),
                "market": m.id.to_string(),
                "detail": detail,
            }));
        }
        true
    }

    /// Records the ids produced during the stalls that are over.
    fn end_stalls(&mut self, all: bool) {
        let now = Instant::now();
        let (over, going): (Vec<Stall>, Vec<Stall>) =
            std::mem::take(&mut self.stalls).into_iter().partition(|s| all || s.until <= now);
        self.stalls = going;
        for s in over {
            for ((id, stream), start) in s.starts {
                let end = self.market(id).and_then(|m| m.handle.stream_stats(&stream)).and_then(|t| t.last_id);
                if let (Some(ts), Some(end)) = (self.trades.get_mut(&(id, stream)), end) {
                    // A reset during the stall: the new era's ids from 1.
                    let from = start.map_or(0, |s| s + 1);
                    ts.stalled.push(if end >= from { (from, end) } else { (0, end) });
                }
            }
        }
    }

    fn sample(&mut self, feed: &Feed) {
        self.end_stalls(false);
        feed.refresh_stats();
        let st = feed.stats();
        let st = st.lock();
        for (len, cap) in st.queue.values() {
            if *len > self.queue_max.0 {
                self.queue_max = (*len, *cap);
            }
            self.queue_max.1 = self.queue_max.1.max(*cap);
        }
    }

    /// Every trade stream delivered up to the truth's last id, and every
    /// book in sync and equal to the (paused) truth.
    fn settled(&self, feed: &Feed) -> bool {
        let trades = self.trades.iter().all(|((id, stream), ts)| {
            let Some(m) = self.market(*id) else { return true };
            let last = m.handle.stream_stats(stream).and_then(|s| s.last_id);
            last.is_none() || ts.ledger.range().1 == last
        });
        trades && self.markets.iter().all(|m| final_book(feed, m).0)
    }
}

/// Whether the book of `m` is in sync and equal to the truth now, and
/// what differs if not.
fn final_book(feed: &Feed, m: &Market) -> (bool, String) {
    let Some(book) = feed.books().book(m.id, &m.book.0) else { return (false, "not in sync".into()) };
    let Some(truth) = m.handle.book(&m.book.0, DEPTH) else { return (false, "no truth".into()) };
    let equal = Some(book.bids(DEPTH)) == levels(&truth.bids) && Some(book.asks(DEPTH)) == levels(&truth.asks);
    (equal, if equal { String::new() } else { format!("differs from the truth (book at {})", book.last_update_id()) })
}

/// The soak's markets: the first [`MARKETS_PER_VENUE`] markets of every
/// venue in the registry that the simulator serves.
fn soak_markets() -> (Vec<MarketId>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for v in registry::VENUES {
        let mut n = 0;
        for m in v.markets() {
            let id = MarketId::new(v.venue(), *m);
            if ferrofeed_sim::MarketConfig::named(id.venue_name(), id.name()).is_none() {
                skipped.push(format!("{id}: not simulated"));
            } else if n < MARKETS_PER_VENUE {
                out.push(id);
                n += 1;
            }
        }
        if n == 0 {
            skipped.push(format!("{}: no simulated market, not soaked", v.venue().name()));
        }
    }
    (out, skipped)
}

/// Runs the soak for `duration` with faults drawn from `seed`; prints the
/// report (one JSON object with `json`) and fails on any violation.
pub(crate) async fn run(duration: Duration, json: bool, seed: u64) -> anyhow::Result<()> {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        prev(info);
    }));
    let (ids, skipped) = soak_markets();
    let mut cfg = super::sim_config_for(&ids)?;
    cfg.seed = seed;
    for m in &mut cfg.markets {
        m.symbols.truncate(SYMBOLS);
        m.timing.actions_per_sec = 100.0;
        m.book_history = 600;
    }
    let sim = Sim::start(cfg).await.context("starting the simulator")?;
    let r = soak(&sim, &ids, skipped, duration, json, seed).await;
    sim.shutdown().await;
    let report = r?;
    let failures = report["failures"].as_array().map_or(0, Vec::len);
    if failures > 0 {
        anyhow::bail!("chaos: {failures} failures (see the report)");
    }
    Ok(())
}

async fn soak(
    sim: &Sim,
    ids: &[MarketId],
    skipped: Vec<String>,
    duration: Duration,
    json: bool,
    seed: u64,
) -> anyhow::Result<serde_json::Value> {
    let overrides = super::sim_overrides(sim)?;
    let client = ClientConfig {
        overrides,
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..BackoffConfig::default()
        },
        seed: Some(seed),
        ..ClientConfig::default()
    };
    let mut b = Feed::builder()
        .client_config(client)
        .book_config(BookConfig { snapshot_timeout: Duration::from_secs(2), ..BookConfig::default() });
    let mut markets = Vec::new();
    for id in ids {
        let handle = sim
            .markets()
            .iter()
            .find(|h| {
                let (v, m) = h.config().venue_market();
                super::venue_market(v, m).ok() == Some(*id)
            })
            .context("simulated market")?
            .clone();
        let symbols: Vec<String> = handle.config().symbols.iter().map(|s| s.name.clone()).collect();
        for s in &symbols {
            b = b.subscribe(*id, Channel::Trades, s).subscribe(*id, Channel::Ticker, s);
        }
        b = b.book(*id, &symbols[0]);
        let spec = registry::spec(*id)?;
        let rest_books = matches!(spec.book_plan(id.market, &symbols[0], 1000).recovery, BookRecovery::Rest { .. });
        markets.push((id, handle, symbols, rest_books));
    }
    let mut feed = b.build().await.context("building the feed")?;
    let mut st = Soak {
        markets: Vec::new(),
        trades: BTreeMap::new(),
        tickers: BTreeMap::new(),
        books: BTreeMap::new(),
        recovery: Recovery::default(),
        injected: BTreeMap::new(),
        stalls: Vec::new(),
        log: Vec::new(),
        errors: 0,
        events: 0,
        queue_max: (0, 0),
        start: Instant::now(),
    };
    for (id, handle, symbols, rest_books) in markets {
        let book_stream = feed.books().stream_of(*id, &symbols[0]).context("book stream")?.to_string();
        for s in &symbols {
            st.trades.insert((*id, Client::stream_name(*id, &Channel::Trades, s)?), TradeStream::default());
            st.tickers.insert((*id, Client::stream_name(*id, &Channel::Ticker, s)?), 0);
        }
        st.books.insert(*id, BookCheck::default());
        st.markets.push(Market {
            id: *id,
            handle,
            book: (symbols[0].clone(), book_stream),
            symbols,
            rest_books,
            resets: 0,
        });
    }
    let subscribed = st.trades.len() + st.tickers.len() + st.markets.len();
    if !json {
        eprintln!(
            "ferrofeed chaos: {} for {:.1} s, seed {seed}",
            st.markets.iter().map(|m| m.id.to_string()).collect::<Vec<_>>().join(", "),
            duration.as_secs_f64()
        );
    }

    // Faults: the kinds in a fresh random order each round, one every
    // `every`, from one second in until the end.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let every = (duration / 24).clamp(Duration::from_millis(250), Duration::from_secs(2));
    let mut next_fault = Instant::now() + Duration::from_secs(1).min(duration / 4);
    let mut round: Vec<Fault> = Vec::new();
    let end = Instant::now() + duration;
    let mut next_sample = Instant::now();
    let mut last_stall_end = Instant::now();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= next_fault {
            if round.is_empty() {
                round = Fault::ALL.to_vec();
                round.shuffle(&mut rng);
            }
            let f = round.pop().unwrap_or(Fault::Kill);
            st.inject(f, &feed, &mut rng);
            if f == Fault::Stall {
                last_stall_end = now + Duration::from_millis(1500);
            }
            next_fault = now + every;
        }
        if now >= next_sample {
            st.sample(&feed);
            next_sample = now + Duration::from_millis(250);
        }
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(20), feed.next()).await {
            st.on_event(&feed, ev);
        }
    }

    // The end: stalls over, markets paused (trades stop, diffs catch up),
    // the feed drained until every stream reached the truth's last id and
    // every book equals the paused truth.
    while Instant::now() < last_stall_end {
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(20), feed.next()).await {
            st.on_event(&feed, ev);
        }
    }
    st.end_stalls(true);
    // Books in sync first: a book resyncing needs live diffs to bridge its
    // snapshot, which a paused market no longer sends.
    let settle_start = Instant::now();
    while settle_start.elapsed() < SETTLE / 2
        && !st.markets.iter().all(|m| feed.books().book(m.id, &m.book.0).is_some())
    {
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(20), feed.next()).await {
            st.on_event(&feed, ev);
        }
    }
    for m in &st.markets {
        m.handle.pause_market(true);
    }
    let mut settled = false;
    while settle_start.elapsed() < SETTLE {
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(20), feed.next()).await {
            st.on_event(&feed, ev);
        }
        if st.settled(&feed) {
            settled = true;
            break;
        }
    }
    let settle_ms = settle_start.elapsed().as_millis() as u64;
    st.sample(&feed);
    let stats = feed.stats().lock().clone();
    // Which streams the engine sequence-checks, from its own introspection.
    let client = feed.client();
    let sequenced: std::collections::BTreeSet<(MarketId, String)> = client
        .snapshots()
        .into_iter()
        .filter_map(|c| client.market_of_conn(c.id).map(|m| (m, c.sequenced)))
        .flat_map(|(m, set)| set.into_iter().map(move |s| (m, s)))
        .collect();
    for (key, ts) in st.trades.iter_mut() {
        ts.unsequenced = !sequenced.contains(key);
    }
    let report = report(&mut st, &feed, &stats, subscribed, skipped, (duration, seed, settled, settle_ms));
    feed.shutdown().await;
    if json {
        println!("{report}");
    } else {
        print_text(&report);
    }
    Ok(report)
}

fn report(
    st: &mut Soak,
    feed: &Feed,
    stats: &FeedStats,
    subscribed: usize,
    skipped: Vec<String>,
    (duration, seed, settled, settle_ms): (Duration, u64, bool, u64),
) -> serde_json::Value {
    let mut failures: Vec<String> = Vec::new();
    let mut streams = Vec::new();
    let keys: Vec<(MarketId, String)> = st.trades.keys().cloned().collect();
    for (id, stream) in keys {
        let Some(h) = st.market(id).map(|m| m.handle.clone()) else { continue };
        let truth = h.stream_stats(&stream).unwrap_or_default();
        let resets = restarts(&h, &stream);
        let Some(ts) = st.trades.get_mut(&(id, stream.clone())) else { continue };
        let (first, produced) = match (ts.by_seq, ts.ledger.range().0, truth.last_id) {
            (true, Some(first), Some(last)) if resets.is_empty() => {
                (Some(first), last.saturating_sub(first).saturating_add(1))
            }
            _ => (truth.first_id, truth.produced),
        };
        ts.ledger.finish(first, truth.last_id, &resets);
        let l = &ts.ledger;
        let unexplained = produced as i64 - (l.accounted() + ts.unnumbered) as i64;
        // On a stream the engine cannot sequence, what a stall swallowed
        // cannot be detected by anyone: reported apart, not a failure.
        let in_stall = |(a, b): &(u64, u64)| ts.stalled.iter().any(|(x, y)| a <= y && x <= b);
        let undetectable: u64 = if ts.unsequenced {
            l.silent_spans.iter().filter(|sp| in_stall(sp)).map(|(a, b)| b - a + 1).sum()
        } else {
            0
        };
        let silent = l.silent - undetectable;
        let spans: Vec<&(u64, u64)> =
            l.silent_spans.iter().filter(|sp| !(ts.unsequenced && in_stall(sp))).take(16).collect();
        if silent > 0 {
            failures.push(format!("{id} {stream}: {silent} trades lost silently, first spans {spans:?}"));
        }
        if l.duplicates > 0 {
            failures.push(format!("{id} {stream}: {} duplicates delivered", l.duplicates));
        }
        if unexplained != 0 {
            failures.push(format!("{id} {stream}: {unexplained} produced trades not accounted for"));
        }
        streams.push(serde_json::json!({
            "venue": id.venue_name(), "market": id.name(), "stream": stream, "channel": "trades",
            "produced": produced, "delivered": l.delivered, "in_gaps": l.in_gaps,
            "across_unknown_gaps": l.across_unknown, "silent_loss": silent,
            "silent_spans": spans, "lost_in_stalls_undetectable": undetectable,
            "engine_follows_ids": !ts.unsequenced,
            "duplicates": l.duplicates, "unexplained": unexplained,
            "id_resets": resets.len(), "unnumbered": ts.unnumbered,
        }));
    }
    for ((id, stream), delivered) in &st.tickers {
        let produced = st.market(*id).and_then(|m| m.handle.stream_stats(stream)).map_or(0, |s| s.produced);
        streams.push(serde_json::json!({
            "venue": id.venue_name(), "market": id.name(), "stream": stream, "channel": "ticker",
            "produced": produced, "delivered": delivered,
            "note": "tickers carry no ids: counted, not accounted",
        }));
    }
    let mut books = Vec::new();
    for m in &st.markets {
        let b = st
            .books
            .get(&m.id)
            .map(|b| (b.published, b.equal, b.wrong, b.unsynced, b.unverified, b.resyncs, b.first_wrong.clone()));
        let (published, equal, wrong, unsynced, unverified, resyncs, first_wrong) = b.unwrap_or_default();
        let (final_equal, why) = final_book(feed, m);
        if wrong > 0 || unsynced > 0 {
            failures.push(format!(
                "{} {}: {wrong} books differ from the truth, {unsynced} published out of sync; first: {first_wrong:?}",
                m.id, m.book.0
            ));
        }
        if !final_equal {
            failures.push(format!("{} {}: at the end the book {why}", m.id, m.book.0));
        }
        if published == 0 {
            failures.push(format!("{} {}: no book was ever published", m.id, m.book.0));
        }
        books.push(serde_json::json!({
            "venue": m.id.venue_name(), "market": m.id.name(), "symbol": m.book.0, "stream": m.book.1,
            "published": published, "equal_to_truth": equal, "wrong": wrong, "published_out_of_sync": unsynced,
            "unverified": unverified, "resyncs": resyncs, "final_equal_to_truth": final_equal, "first_wrong": first_wrong,
        }));
    }
    let rss = peak_rss();
    if rss.is_some_and(|r| r > RSS_BOUND) {
        failures.push(format!("peak RSS {} bytes above the bound of {RSS_BOUND}", rss.unwrap_or(0)));
    }
    let (qmax, qcap) = st.queue_max;
    if qmax > qcap {
        failures.push(format!("queue length {qmax} above its capacity {qcap}"));
    }
    // The byte budget holds, except that one event larger than the whole
    // budget passes an empty queue (a frame is at most the venue's cap).
    let (_, qpeak_bytes, qmax_bytes) = stats.queue_bytes.get("public").copied().unwrap_or_default();
    if qpeak_bytes > qmax_bytes.max(MAX_FRAME_BYTES) {
        failures.push(format!("queue bytes peaked at {qpeak_bytes}, above its budget of {qmax_bytes}"));
    }
    let stream_entries = stats.streams.len();
    if stream_entries > subscribed {
        failures.push(format!("{stream_entries} stream statistics for {subscribed} subscribed streams"));
    }
    let panics = PANICS.load(Ordering::SeqCst);
    if panics > 0 {
        failures.push(format!("{panics} panics"));
    }
    if !settled {
        failures.push(format!("not settled within {} s after the end", SETTLE.as_secs()));
    }
    let recovery = recovery_times_consumer_side(&st.recovery);
    let injected: BTreeMap<&str, u64> =
        Fault::ALL.iter().map(|f| (f.name(), st.injected.get(f.name()).copied().unwrap_or(0))).collect();
    serde_json::json!({
        "ok": failures.is_empty(),
        "failures": failures,
        "duration_s": duration.as_secs_f64(),
        "seed": seed,
        "elapsed_s": (st.start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "settle_ms": settle_ms,
        "markets": st.markets.iter().map(|m| m.id.to_string()).collect::<Vec<_>>(),
        "not_soaked": skipped,
        "streams": streams,
        "books": books,
        "faults": { "injected": injected, "log": st.log },
        "recovery": recovery,
        "recovery_engine": recovery_times_engine_side(stats),
        "memory": {
            "peak_rss_bytes": rss,
            "rss_bound_bytes": RSS_BOUND,
            "rss_includes": "the whole process: feed and embedded simulator",
            "queue_max_len": qmax,
            "queue_capacity": qcap,
            "queue_peak_bytes": qpeak_bytes,
            "queue_max_bytes": qmax_bytes,
            "stream_stat_entries": stream_entries,
            "subscribed_streams": subscribed,
        },
        "events": st.events,
        "error_events": st.errors,
        "decode_errors": stats.decode_errors,
        "panics": panics,
        "undetectable": [
            "stall: the socket stays open and what the venue would have sent is lost; on a stream whose ids the engine follows the next message reports the gap, on one it cannot follow (engine_follows_ids false: it reports unknown-extent gaps at reconnects; Bybit publicTrade, whose ids are UUIDs on the live venue though the simulator numbers them) nothing can: those ids are lost_in_stalls_undetectable, not silent_loss",
            "drop: injected only on book streams, whose sequence every venue numbers; a dropped trade on an unsequenced stream would be undetectable by design",
            "tickers: no ids, so only counted (produced vs delivered), never accounted",
            "rate_limit: only markets whose books recover by REST snapshot; Bybit books recover by resubscribing",
            "malformed_flood, unsubscribed_flood, oversized: no data is lost by them, so the accounting shows them only as reconnects (if the engine drops the socket), error events, stream statistics and peak RSS",
        ],
    })
}

fn print_text(r: &serde_json::Value) {
    println!("ferrofeed chaos: seed {} for {} s, markets {}", r["seed"], r["duration_s"], r["markets"]);
    println!("faults injected: {}", r["faults"]["injected"]);
    for s in r["streams"].as_array().into_iter().flatten() {
        let at = format!("{}:{}", s["venue"].as_str().unwrap_or(""), s["market"].as_str().unwrap_or(""));
        if s["channel"] == "trades" {
            println!(
                "  {} {:<28} produced {:>7} delivered {:>7} in gaps {:>6} across unknown {:>6} silent {:>4} duplicates {:>3}",
                at,
                s["stream"].as_str().unwrap_or(""),
                s["produced"],
                s["delivered"],
                s["in_gaps"],
                s["across_unknown_gaps"],
                s["silent_loss"],
                s["duplicates"]
            );
        } else {
            println!(
                "  {} {:<28} produced {:>7} delivered {:>7} (ticker: counted only)",
                at,
                s["stream"].as_str().unwrap_or(""),
                s["produced"],
                s["delivered"]
            );
        }
    }
    for b in r["books"].as_array().into_iter().flatten() {
        println!(
            "  book {}:{} {}: published {} equal {} wrong {} unverified {} resyncs {} final equal {}",
            b["venue"].as_str().unwrap_or(""),
            b["market"].as_str().unwrap_or(""),
            b["symbol"].as_str().unwrap_or(""),
            b["published"],
            b["equal_to_truth"],
            b["wrong"],
            b["unverified"],
            b["resyncs"],
            b["final_equal_to_truth"]
        );
    }
    println!("recovery: {}", r["recovery"]);
    println!("memory: {}", r["memory"]);
    println!("panics {}, error events {}", r["panics"], r["error_events"]);
    for f in r["failures"].as_array().into_iter().flatten() {
        println!("FAIL {}", f.as_str().unwrap_or(""));
    }
    println!("{}", if r["ok"] == true { "ok" } else { "FAILED" });
}
