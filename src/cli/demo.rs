//! `ferrofeed demo`: the embedded simulator (Binance spot and USD-M, Bybit
//! linear, Deribit inverse), one [`Feed`] over a handful of symbols of the
//! three venues (trades, aggregate trades, book tickers, a ticker and four
//! local books), a fault
//! injected every few seconds on each market in turn (kill, stall, dropped
//! diff) and the recovery shown.
//!
//! When stdout is a terminal it draws a live view (ratatui): connections,
//! streams, a 10-level ladder and recent trades of one symbol, counters and the
//! faults. Otherwise it prints progress lines and, at the end, one JSON summary
//! that accounts for every BTCUSDT trade id (delivered, or inside a reported
//! gap: `unreported` must be 0).

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ferrofeed::client::{Channel, Client, ClientConfig, Environment, MarketId};
use ferrofeed::engine::State;
use ferrofeed::feed::{ConnKey, Feed, FeedConfig, FeedStats};
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{Event, EventKind, Level, Missing, Side, Venue};
use ferrofeed::venues::{binance, bybit, deribit};
use ferrofeed_sim::{BybitCategory, DeribitKind, KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Binance spot: the ladder's market.
const SPOT: MarketId = binance::spec::SPOT;
/// Binance USD-M.
const USDM: MarketId = binance::spec::USDM;
/// Bybit linear.
const LINEAR: MarketId = bybit::spec::LINEAR;
/// Deribit inverse (coin-settled perpetuals and futures).
const DERIBIT: MarketId = deribit::spec::INVERSE;
/// The Deribit instrument whose trades are accounted for (by `trade_seq`)
/// and whose local book is kept.
const DERIBIT_SYMBOL: &str = "BTC-PERPETUAL";
/// Spot symbols whose trades and book tickers are subscribed (plus the ladder's).
const SPOT_SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
/// USD-M symbols whose aggregate trades and book tickers are subscribed.
const USDM_SYMBOLS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];
/// The USD-M symbol whose local book is kept beside the ladder's.
const USDM_BOOK: &str = "BTCUSDT";
/// Bybit linear symbols whose trades are subscribed.
const LINEAR_SYMBOLS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];
/// The Bybit linear symbol whose local book is kept.
const LINEAR_BOOK: &str = "BTCUSDT";
/// The symbol whose trade ids are accounted for, on spot (trades) and USD-M
/// (aggregate trades).
const ACCOUNTED: &str = "BTCUSDT";
const FIRST_FAULT: Duration = Duration::from_secs(2);
const FAULT_EVERY: Duration = Duration::from_secs(3);
const STALL: Duration = Duration::from_millis(1500);
/// How long the plain run waits after `--duration` for a pending recovery.
const SETTLE_MAX: Duration = Duration::from_secs(5);
/// `--duration` when stdout is not a terminal and none was given.
const PLAIN_DEFAULT: Duration = Duration::from_secs(10);
const REDRAW: Duration = Duration::from_millis(250);
const RECENT_TRADES: usize = 64;
const LADDER_LEVELS: usize = 10;

/// Runs the demo: the live view on a terminal, progress lines and a JSON
/// summary otherwise. `symbol` is the spot symbol of the ladder.
pub(crate) async fn run_demo(
    duration: Option<Duration>,
    symbol: &str,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut cfg = SimConfig::all_markets();
    cfg.markets.truncate(2);
    cfg.markets.push(MarketConfig::bybit(BybitCategory::Linear));
    let mut d = MarketConfig::deribit(DeribitKind::Inverse);
    d.symbols.retain(|s| s.name == DERIBIT_SYMBOL);
    cfg.markets.push(d);
    for m in &mut cfg.markets {
        m.timing.actions_per_sec = 60.0;
    }
    let ladder = symbol.trim().to_ascii_uppercase();
    if !cfg.markets[0].symbols.iter().any(|s| s.name == ladder) {
        let known: Vec<&str> = cfg.markets[0].symbols.iter().map(|s| s.name.as_str()).collect();
        bail!("unknown symbol {symbol:?} for the demo's ladder: choose one of {}", known.join(", "));
    }
    let tty = std::io::stdout().is_terminal();
    let sim = Sim::start(cfg).await.context("starting the simulator")?;
    let r = run_with(&sim, duration, ladder, tty, metrics).await;
    sim.shutdown().await;
    r
}

async fn run_with(
    sim: &Sim,
    duration: Option<Duration>,
    ladder: String,
    tty: bool,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let spot = sim.market(MarketKind::Spot).context("spot market")?.clone();
    let usdm = sim.market(MarketKind::UsdM).context("usdm market")?.clone();
    let linear = sim.bybit(BybitCategory::Linear).context("bybit linear market")?.clone();
    let inverse = sim.deribit(DeribitKind::Inverse).context("deribit inverse market")?.clone();
    let custom = |h: &MarketHandle| Environment::Custom { ws: h.ws_url(), rest: h.rest_url() };
    let mut client = ClientConfig { environment: custom(&spot), seed: Some(7), ..ClientConfig::default() };
    client.backoff.initial = Duration::from_millis(200);
    client.backoff.max = Duration::from_secs(2);
    client.overrides.insert(USDM, custom(&usdm));
    client.overrides.insert(LINEAR, custom(&linear));
    client.overrides.insert(DERIBIT, custom(&inverse));
    let mut feed = Feed::new(FeedConfig { client, ..FeedConfig::default() });
    let _metrics = super::start_metrics(metrics, feed.stats()).await?;

    let mut spot_symbols: Vec<String> = SPOT_SYMBOLS.iter().map(|s| s.to_string()).collect();
    if !spot_symbols.contains(&ladder) {
        spot_symbols.push(ladder.clone());
    }
    let mut spot_streams = stream_names(SPOT, &spot_symbols, &[Channel::Trades, Channel::TopOfBook])?;
    spot_streams.push(Client::stream_name(SPOT, &Channel::Ticker, ACCOUNTED)?);
    let usdm_streams = stream_names(USDM, &USDM_SYMBOLS, &[Channel::AggTrades, Channel::TopOfBook])?;
    let linear_streams = stream_names(LINEAR, &LINEAR_SYMBOLS, &[Channel::Trades])?;
    let deribit_streams = stream_names(DERIBIT, &[DERIBIT_SYMBOL], &[Channel::Trades])?;
    feed.subscribe(SPOT, &spot_streams).await.context("subscribing spot streams")?;
    feed.subscribe(USDM, &usdm_streams).await.context("subscribing usdm streams")?;
    feed.subscribe(LINEAR, &linear_streams).await.context("subscribing bybit linear streams")?;
    feed.subscribe(DERIBIT, &deribit_streams).await.context("subscribing deribit inverse streams")?;
    feed.track_book(SPOT, &ladder).await.context("tracking the ladder's book")?;
    feed.track_book(USDM, USDM_BOOK).await.context("tracking the usdm book")?;
    feed.track_book(LINEAR, LINEAR_BOOK).await.context("tracking the bybit linear book")?;
    feed.track_book(DERIBIT, DERIBIT_SYMBOL).await.context("tracking the deribit inverse book")?;

    let markets = vec![(SPOT, spot), (USDM, usdm), (LINEAR, linear), (DERIBIT, inverse)];
    let sim_desc = format!(
        "simulator {}",
        markets.iter().map(|(m, h)| format!("{} {}", label(*m), h.ws_url())).collect::<Vec<_>>().join(" · ")
    );
    let sim_short = format!(
        "simulator {}",
        markets.iter().map(|(m, h)| format!("{} :{}", label(*m), h.addr().port())).collect::<Vec<_>>().join(" · ")
    );
    let books = vec![
        (SPOT, ladder.clone()),
        (USDM, USDM_BOOK.to_string()),
        (LINEAR, LINEAR_BOOK.to_string()),
        (DERIBIT, DERIBIT_SYMBOL.to_string()),
    ];
    // The streams whose trade ids are accounted for: every id delivered or
    // inside a reported gap. Bybit trades carry no sequence, so a loss there
    // could never be reported: they are counted, not accounted for. Deribit
    // trades are accounted by their per-instrument `trade_seq`.
    let accounted = vec![
        (SPOT, Client::stream_name(SPOT, &Channel::Trades, ACCOUNTED)?),
        (USDM, Client::stream_name(USDM, &Channel::AggTrades, ACCOUNTED)?),
        (DERIBIT, Client::stream_name(DERIBIT, &Channel::Trades, DERIBIT_SYMBOL)?),
    ];
    let n_streams =
        spot_streams.len() + usdm_streams.len() + linear_streams.len() + deribit_streams.len() + books.len();
    let mut st = Demo::new(ladder, books, accounted, (sim_desc, sim_short), !tty);
    let mut ctx = Ctx { feed, markets };
    let result = if tty {
        run_tui(&mut ctx, &mut st, duration).await
    } else {
        let duration = duration.unwrap_or(PLAIN_DEFAULT);
        eprintln!(
            "ferrofeed demo: {}; no network needed. {} streams, books {}; a fault every {} s; running {:.1} s",
            st.sim_desc,
            n_streams,
            and_list(st.books.iter().map(|(m, s)| format!("{} {s}", label(*m))).collect()),
            FAULT_EVERY.as_secs(),
            duration.as_secs_f64()
        );
        run_plain(&mut ctx, &mut st, duration).await
    };
    ctx.feed.shutdown().await;
    result
}

/// The venue's names of `channels` of every symbol, symbol by symbol.
fn stream_names<S: AsRef<str>>(market: MarketId, symbols: &[S], channels: &[Channel]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(symbols.len() * channels.len());
    for s in symbols {
        for c in channels {
            out.push(
                Client::stream_name(market, c, s.as_ref())
                    .with_context(|| format!("the {c} stream of {} on {market}", s.as_ref()))?,
            );
        }
    }
    Ok(out)
}

/// How the demo names a market in its lines and fault names: Binance markets
/// by their name alone (`spot`, `usdm`), as the demo always has, the others
/// with their venue (`bybit linear`).
fn label(m: MarketId) -> Cow<'static, str> {
    if m.venue == Venue::Binance { m.name().into() } else { format!("{} {}", m.venue_name(), m.name()).into() }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(mut items: Vec<String>) -> String {
    match items.pop() {
        None => String::new(),
        Some(last) if items.is_empty() => last,
        Some(last) => format!("{} and {last}", items.join(", ")),
    }
}

/// What the loop drives.
#[derive(Debug)]
struct Ctx {
    feed: Feed,
    /// The simulated markets, in the order faults visit them.
    markets: Vec<(MarketId, MarketHandle)>,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Deadline,
    Quit,
    Signal,
    FeedEnded,
}

async fn run_plain(ctx: &mut Ctx, st: &mut Demo, duration: Duration) -> anyhow::Result<()> {
    let stop = drive(ctx, st, None, Some(duration)).await?;
    if stop == Stop::FeedEnded {
        eprintln!("ferrofeed demo: the feed ended early");
    }
    ctx.feed.refresh_stats();
    let mut summary = st.summary(&ctx.feed, duration);
    summary["stopped_by"] = match stop {
        Stop::Deadline => "duration",
        Stop::Quit => "quit",
        Stop::Signal => "signal",
        Stop::FeedEnded => "feed_ended",
    }
    .into();
    println!("{summary}");
    let unreported = st.unreported();
    if unreported > 0 {
        bail!("{unreported} trade ids went missing without a gap event");
    }
    Ok(())
}

async fn run_tui(ctx: &mut Ctx, st: &mut Demo, duration: Option<Duration>) -> anyhow::Result<()> {
    let mut tui = Tui::enter().context("starting the live view")?;
    let r = drive(ctx, st, Some(&mut tui), duration).await;
    drop(tui);
    let stop = r?;
    let recovered = st.faults.iter().filter(|f| f.recovered.is_some()).count();
    println!(
        "ferrofeed demo: {:.1} s, {} trades, faults {} injected / {recovered} recovered, {} gaps, {} resyncs, \
         {} unreported trade ids{}",
        st.start.elapsed().as_secs_f64(),
        st.trades,
        st.faults.len(),
        st.gaps,
        st.resyncs,
        st.unreported(),
        match stop {
            Stop::FeedEnded => " (the feed ended)",
            _ => "",
        }
    );
    Ok(())
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// The event loop shared by both views: events, faults, redraws or progress
/// lines, keys, signals, and the deadline.
async fn drive(
    ctx: &mut Ctx,
    st: &mut Demo,
    mut tui: Option<&mut Tui>,
    duration: Option<Duration>,
) -> anyhow::Result<Stop> {
    let signal = crate::cli::signal::shutdown();
    tokio::pin!(signal);
    let end = duration.map(|d| st.start + d);
    let mut tick = tokio::time::interval(if tui.is_some() { REDRAW } else { Duration::from_secs(1) });
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_fault = st.start + FIRST_FAULT;
    let mut settle_until: Option<Instant> = None;
    let mut keys_open = tui.is_some();
    loop {
        tokio::select! {
            _ = &mut signal => return Ok(Stop::Signal),
            _ = tokio::time::sleep_until(end.unwrap_or_else(far_future)), if end.is_some() && settle_until.is_none() => {
                if tui.is_some() || st.settled(&ctx.feed) {
                    return Ok(Stop::Deadline);
                }
                st.note("  waiting up to 5 s for the last recovery".into());
                settle_until = Some(Instant::now() + SETTLE_MAX);
            }
            _ = tokio::time::sleep_until(settle_until.unwrap_or_else(far_future)), if settle_until.is_some() => {
                return Ok(Stop::Deadline);
            }
            _ = tokio::time::sleep_until(next_fault), if settle_until.is_none() => {
                next_fault += FAULT_EVERY;
                // No new fault in the last second: its recovery would not show.
                if end.is_none_or(|e| e.saturating_duration_since(Instant::now()) > Duration::from_secs(1)) {
                    st.inject(ctx);
                }
            }
            _ = tick.tick() => {
                ctx.feed.refresh_stats();
                match tui.as_deref_mut() {
                    Some(t) => {
                        let next = (settle_until.is_none()).then(|| next_fault.saturating_duration_since(Instant::now()));
                        t.draw(st, &ctx.feed, next)?;
                    }
                    None => st.progress(&ctx.feed),
                }
            }
            key = next_key(&mut tui), if keys_open => match key {
                None => keys_open = false,
                Some(k) if is_quit(&k) => return Ok(Stop::Quit),
                Some(_) => {}
            },
            ev = ctx.feed.next() => {
                let Some(ev) = ev else { return Ok(Stop::FeedEnded) };
                st.on_event(ev, &ctx.feed);
                if settle_until.is_some() && st.settled(&ctx.feed) {
                    return Ok(Stop::Deadline);
                }
            }
        }
    }
}

async fn next_key(tui: &mut Option<&mut Tui>) -> Option<KeyEvent> {
    match tui {
        Some(t) => t.keys.recv().await,
        None => std::future::pending().await,
    }
}

fn is_quit(k: &KeyEvent) -> bool {
    k.kind != KeyEventKind::Release
        && match k.code {
            KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => true,
            KeyCode::Char('c') | KeyCode::Char('C') => k.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

// ---------------------------------------------------------------------------
// What the demo counts

/// Trade ids of one stream: every id between the first and the last seen is
/// either delivered or inside a reported gap.
#[derive(Debug, Default, Clone)]
struct IdAccount {
    first: Option<u64>,
    last: u64,
    delivered: u64,
    in_gaps: u64,
    uncountable_gaps: u64,
}

impl IdAccount {
    fn seen(&mut self, id: u64) {
        self.first.get_or_insert(id);
        self.last = self.last.max(id);
        self.delivered += 1;
    }

    fn span(&self) -> u64 {
        self.first.map_or(0, |f| self.last.saturating_sub(f) + 1)
    }

    fn unreported(&self) -> u64 {
        self.span().saturating_sub(self.delivered + self.in_gaps)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "span": self.span(),
            "delivered": self.delivered,
            "in_gaps": self.in_gaps,
            "uncountable_gaps": self.uncountable_gaps,
            "unreported": self.unreported(),
        })
    }
}

/// The event numbers of a book's last resync, snapshot and applied diff.
#[derive(Debug, Default, Clone, Copy)]
struct BookMarks {
    resync: u64,
    snapshot: u64,
    update: u64,
}

#[derive(Debug, Clone)]
enum FaultKind {
    /// Every connection of the market reset; recovered once as many
    /// reconnections arrived and the market's books are back in sync.
    Kill { killed: usize, reconnected: usize },
    /// Every connection of the market silent for [`STALL`]; recovered once a
    /// gap was reported and the market's books are back in sync.
    Stall,
    /// One depth diff of `symbol` dropped; recovered once its book resynced.
    DropDiff { symbol: String },
}

#[derive(Debug, Clone)]
struct Fault {
    at: Duration,
    market: MarketId,
    name: String,
    kind: FaultKind,
    /// The event number at which the fault showed (reconnections complete,
    /// gap reported, book resync); recovery is judged after it.
    shown: Option<u64>,
    recovered: Option<Duration>,
}

#[derive(Debug, Clone)]
struct TradeRow {
    ts_ns: i64,
    side: Side,
    price: String,
    qty: String,
}

/// Everything the demo counts from the events.
#[derive(Debug)]
struct Demo {
    start: Instant,
    plain: bool,
    /// The simulated markets and their addresses.
    sim_desc: String,
    /// The same, ports only (for a narrow title line).
    sim_short: String,
    ladder: String,
    /// Tracked books, the ladder's first.
    books: Vec<(MarketId, String)>,
    /// The stream of the summary's `btcusdt_trade_ids` (spot trades).
    btc_trades: (MarketId, String),
    seq: u64,
    events: BTreeMap<&'static str, u64>,
    trades: u64,
    recent: VecDeque<TradeRow>,
    accounts: BTreeMap<(MarketId, String), IdAccount>,
    marks: BTreeMap<(MarketId, String), BookMarks>,
    gaps: u64,
    missing: u64,
    uncountable_gaps: u64,
    resyncs: u64,
    reconnects: u64,
    errors: u64,
    faults: Vec<Fault>,
    rates: Rates,
}

/// Which fault the `i`-th injection is: the fault kind (0 kill, 1 stall, 2
/// dropped diff) and the index of the market among `markets`. Kinds cycle
/// every fault and markets every fault too, shifted by one every three, so
/// three markets see every kind within nine faults (kill spot, stall usdm,
/// drop on bybit linear, kill usdm, stall bybit linear, drop on spot, ...).
fn fault_plan(i: usize, markets: usize) -> (usize, usize) {
    (i % 3, (i + i / 3) % markets.max(1))
}

impl Demo {
    fn new(
        ladder: String,
        books: Vec<(MarketId, String)>,
        accounted: Vec<(MarketId, String)>,
        (sim_desc, sim_short): (String, String),
        plain: bool,
    ) -> Demo {
        let btc_trades = accounted.first().cloned().unwrap_or((SPOT, String::new()));
        let accounts = accounted.into_iter().map(|k| (k, IdAccount::default())).collect();
        Demo {
            start: Instant::now(),
            plain,
            sim_desc,
            sim_short,
            ladder,
            books,
            btc_trades,
            seq: 0,
            events: BTreeMap::new(),
            trades: 0,
            recent: VecDeque::with_capacity(RECENT_TRADES),
            accounts,
            marks: BTreeMap::new(),
            gaps: 0,
            missing: 0,
            uncountable_gaps: 0,
            resyncs: 0,
            reconnects: 0,
            errors: 0,
            faults: Vec::new(),
            rates: Rates::default(),
        }
    }

    /// A progress note: printed in the plain view, not shown in the live view
    /// (its fault panel says the same).
    fn note(&self, line: String) {
        if self.plain {
            println!("{line}");
        }
    }

    fn t(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn unreported(&self) -> u64 {
        self.accounts.values().map(IdAccount::unreported).sum()
    }

    fn on_event(&mut self, ev: Event, feed: &Feed) {
        self.seq += 1;
        *self.events.entry(ev.kind.type_name()).or_default() += 1;
        let market = MarketId::new(ev.venue, ev.market);
        let name = label(market);
        let symbol = ev.symbol.clone().unwrap_or_default();
        match &ev.kind {
            EventKind::Trade(t) => {
                self.trades += 1;
                let id = t.trade_seq.or_else(|| t.trade_id.parse().ok());
                self.account(market, &Channel::Trades, &symbol, id);
                if market == SPOT && symbol == self.ladder {
                    if self.recent.len() == RECENT_TRADES {
                        self.recent.pop_back();
                    }
                    self.recent.push_front(TradeRow {
                        ts_ns: ev.exchange_ts.unwrap_or(ev.receive_ts),
                        side: t.side,
                        price: t.price.normalize().to_string(),
                        qty: t.qty.normalize().to_string(),
                    });
                }
            }
            EventKind::AggTrade(t) => {
                self.trades += 1;
                self.account(market, &Channel::AggTrades, &symbol, t.trade_id.parse().ok());
            }
            EventKind::Gap(g) => {
                self.gaps += 1;
                let account = self.accounts.get_mut(&(market, g.stream.clone()));
                let what = match g.missing {
                    Missing::Range { from, to } => {
                        let n = to.saturating_sub(from) + 1;
                        self.missing += n;
                        if let Some(a) = account {
                            a.in_gaps += n;
                        }
                        format!("ids {from}..={to} ({n})")
                    }
                    Missing::Unknown { .. } => {
                        self.uncountable_gaps += 1;
                        if let Some(a) = account {
                            a.uncountable_gaps += 1;
                        }
                        "extent unknown".to_string()
                    }
                };
                self.note(format!("  gap reported: {name} {} {what}", g.stream));
                for f in &mut self.faults {
                    if f.shown.is_none() && f.market == market && matches!(f.kind, FaultKind::Stall) {
                        f.shown = Some(self.seq);
                    }
                }
            }
            EventKind::BookResync(r) => {
                self.resyncs += 1;
                self.marks.entry((market, symbol.clone())).or_default().resync = self.seq;
                self.note(format!("  book resync: {name} {symbol} ({})", r.reason));
                for f in &mut self.faults {
                    if f.shown.is_none()
                        && f.market == market
                        && matches!(&f.kind, FaultKind::DropDiff { symbol: s } if *s == symbol)
                    {
                        f.shown = Some(self.seq);
                    }
                }
            }
            EventKind::BookSnapshot(b) => {
                let marks = self.marks.entry((market, symbol.clone())).or_default();
                let again = marks.snapshot > 0;
                marks.snapshot = self.seq;
                let verb = if again { "back in sync" } else { "in sync" };
                self.note(format!("  book {verb}: {name} {symbol} at update id {}", b.last_update_id));
            }
            EventKind::BookUpdate(_) => {
                self.marks.entry((market, symbol)).or_default().update = self.seq;
            }
            EventKind::Reconnected => {
                self.reconnects += 1;
                self.note(format!("  reconnected: {name}"));
                for f in &mut self.faults {
                    if let FaultKind::Kill { killed, reconnected } = &mut f.kind
                        && f.shown.is_none()
                        && f.market == market
                    {
                        *reconnected += 1;
                        if *reconnected >= *killed {
                            f.shown = Some(self.seq);
                        }
                    }
                }
            }
            EventKind::Disconnected { reason } => self.note(format!("  disconnected: {name} ({reason})")),
            EventKind::Error { msg, .. } => {
                self.errors += 1;
                self.note(format!("  error reported, connection kept: {msg}"));
            }
            EventKind::SubscriptionFailed { stream, msg, .. } => {
                self.note(format!("  subscription failed: {stream}: {msg}"));
            }
            EventKind::GaveUp { reason } => self.note(format!("  gave up: {reason}")),
            _ => {}
        }
        self.check_faults(feed);
    }

    /// Counts trade id `id` of `symbol`'s `channel` on `market` if that
    /// stream's ids are accounted for (ids that are not numbers are not).
    /// Counts trade number `id` (the venue's sequence number, or its numeric
    /// trade id) of an accounted stream.
    fn account(&mut self, market: MarketId, channel: &Channel, symbol: &str, id: Option<u64>) {
        let Ok(stream) = Client::stream_name(market, channel, symbol) else { return };
        if let (Some(a), Some(id)) = (self.accounts.get_mut(&(market, stream)), id) {
            a.seen(id);
        }
    }

    /// A book is back since event `since`: in sync now, with a snapshot or an
    /// applied diff after it.
    fn book_back(&self, feed: &Feed, market: MarketId, symbol: &str, since: u64) -> bool {
        let synced = feed.books().book(market, symbol).is_some();
        let m = self.marks.get(&(market, symbol.to_string())).copied().unwrap_or_default();
        synced && m.snapshot.max(m.update) > since
    }

    fn check_faults(&mut self, feed: &Feed) {
        let mut done = Vec::new();
        for (i, f) in self.faults.iter().enumerate() {
            let (None, Some(since)) = (f.recovered, f.shown) else { continue };
            let back = match &f.kind {
                FaultKind::DropDiff { symbol } => self.book_back(feed, f.market, symbol, since),
                _ => self.books.iter().filter(|(m, _)| *m == f.market).all(|(m, s)| self.book_back(feed, *m, s, since)),
            };
            if back {
                done.push(i);
            }
        }
        let now = self.start.elapsed();
        for i in done {
            let f = &mut self.faults[i];
            let took = now.saturating_sub(f.at);
            f.recovered = Some(took);
            let line = format!("  recovered: {} after {} ms", f.name, took.as_millis());
            self.note(line);
        }
    }

    /// All faults recovered and the ladder's book in sync.
    fn settled(&self, feed: &Feed) -> bool {
        self.faults.iter().all(|f| f.recovered.is_some()) && feed.books().book(SPOT, &self.ladder).is_some()
    }

    /// Injects the next fault of the cycle ([`fault_plan`]): a kill, a stall
    /// or a dropped depth diff, on each market in turn.
    fn inject(&mut self, ctx: &Ctx) {
        let i = self.faults.len();
        let (kind, m) = fault_plan(i, ctx.markets.len());
        let Some((market, handle)) = ctx.markets.get(m) else { return };
        let market = *market;
        let on = label(market);
        let (name, kind, n) = match kind {
            0 => {
                let n = handle.kill_all(KillMode::Reset);
                (format!("kill (TCP reset) on {on}"), FaultKind::Kill { killed: n, reconnected: 0 }, n)
            }
            1 => {
                let n = handle.stall(None, STALL);
                (format!("stall {:.1} s on {on}", STALL.as_secs_f64()), FaultKind::Stall, n)
            }
            _ => {
                let symbol =
                    self.books.iter().find(|(bm, _)| *bm == market).map(|(_, s)| s.clone()).unwrap_or_default();
                let stream = ctx.feed.books().stream_of(market, &symbol).map(str::to_string);
                match stream {
                    Some(s) => {
                        handle.drop_next(&s, 1);
                        (format!("dropped depth diff on {on} {symbol}"), FaultKind::DropDiff { symbol }, 1)
                    }
                    None => (format!("dropped depth diff on {on} {symbol}"), FaultKind::DropDiff { symbol }, 0),
                }
            }
        };
        let at = self.start.elapsed();
        self.note(format!("  fault injected: {name}"));
        // Nothing to hit (no connection yet): nothing to recover from.
        let recovered = (n == 0).then_some(Duration::ZERO);
        self.faults.push(Fault { at, market, name, kind, shown: None, recovered });
    }

    fn ladder_book(&self, feed: &Feed) -> Option<(u64, Vec<Level>, Vec<Level>)> {
        let b = feed.books().book(SPOT, &self.ladder)?;
        Some((b.last_update_id(), b.bids(LADDER_LEVELS), b.asks(LADDER_LEVELS)))
    }

    fn progress(&mut self, feed: &Feed) {
        let stats = feed.stats().lock().clone();
        self.rates.update(&stats);
        let active = stats.conns.values().filter(|c| c.state == State::Active).count();
        let book = match self.ladder_book(feed) {
            Some((id, bids, asks)) => format!(
                "{} synced @{id} bid {} ask {}",
                self.ladder,
                bids.first().map_or("-".into(), |l| l.price.to_string()),
                asks.first().map_or("-".into(), |l| l.price.to_string())
            ),
            None => format!("{} resyncing", self.ladder),
        };
        let recovered = self.faults.iter().filter(|f| f.recovered.is_some()).count();
        println!(
            "t={:>5.1}s conns {active}/{} active, {:.0} msg/s, trades={} gaps={} resyncs={} reconnects={} \
             faults {recovered}/{} recovered, book {book}",
            self.t(),
            stats.conns.len(),
            self.rates.conn_rate.values().sum::<f64>().max(0.0),
            self.trades,
            self.gaps,
            self.resyncs,
            self.reconnects,
            self.faults.len(),
        );
    }

    fn book_json(&self, feed: &Feed, stats: &FeedStats, market: MarketId, symbol: &str) -> serde_json::Value {
        let b = feed.books().book(market, symbol);
        let s = stats.books.get(&(market, symbol.to_string())).cloned().unwrap_or_default();
        let side =
            |l: Option<Level>| l.map(|l| serde_json::json!({"price": l.price.to_string(), "qty": l.qty.to_string()}));
        serde_json::json!({
            "venue": market.venue_name(),
            "market": market.name(),
            "symbol": symbol,
            "synced": b.is_some(),
            "last_update_id": b.map(|b| b.last_update_id()),
            "best_bid": side(b.and_then(|b| b.best_bid())),
            "best_ask": side(b.and_then(|b| b.best_ask())),
            "levels": b.map(|b| b.depth()),
            "resyncs": s.resyncs,
            "diffs_applied": s.applied,
        })
    }

    fn summary(&self, feed: &Feed, duration: Duration) -> serde_json::Value {
        let stats = feed.stats().lock().clone();
        let recovered = self.faults.iter().filter(|f| f.recovered.is_some()).count();
        let faults: Vec<_> = self
            .faults
            .iter()
            .map(|f| {
                serde_json::json!({
                    "at_s": (f.at.as_secs_f64() * 10.0).round() / 10.0,
                    "fault": f.name,
                    "recovered": f.recovered.is_some(),
                    "recovery_ms": f.recovered.map(|d| d.as_millis() as u64),
                })
            })
            .collect();
        let conns: Vec<_> = stats
            .conns
            .iter()
            .map(|(id, c)| {
                serde_json::json!({
                    "id": conn_name(id.1),
                    "venue": c.market.map(MarketId::venue_name),
                    "market": c.market.map(MarketId::name),
                    "state": format!("{:?}", c.state),
                    "epoch": c.epoch,
                    "messages": c.messages,
                    "reconnects": c.reconnects,
                    "gaps": c.gaps,
                    "streams": c.streams,
                })
            })
            .collect();
        let trade_ids: Vec<_> = self
            .accounts
            .iter()
            .map(|((m, s), a)| {
                let mut v = a.json();
                v["venue"] = m.venue_name().into();
                v["market"] = m.name().into();
                v["stream"] = s.as_str().into();
                v
            })
            .collect();
        let btc = self.accounts.get(&self.btc_trades).cloned().unwrap_or_default();
        let (ladder_market, ladder_symbol) = &self.books[0];
        serde_json::json!({
            "duration_s": duration.as_secs_f64(),
            "elapsed_s": (self.t() * 10.0).round() / 10.0,
            "trades": self.trades,
            "book": self.book_json(feed, &stats, *ladder_market, ladder_symbol),
            "books": self.books.iter().map(|(m, s)| self.book_json(feed, &stats, *m, s)).collect::<Vec<_>>(),
            "faults_injected": self.faults.len(),
            "faults_recovered": recovered,
            "recovered": !self.faults.is_empty() && recovered == self.faults.len(),
            "faults": faults,
            "gaps": self.gaps,
            "missing_messages_reported": self.missing,
            "uncountable_gaps": self.uncountable_gaps,
            "resyncs": self.resyncs,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "btcusdt_trade_ids": btc.json(),
            "trade_ids": trade_ids,
            "unreported": self.unreported(),
            "connections": conns,
            "rate_limits": {
                "rest_weight": stats.rest_weight.iter().map(|(m, used, limit)| {
                    serde_json::json!({"venue": m.venue_name(), "market": m.name(), "used": used, "limit": limit})
                }).collect::<Vec<_>>(),
                "connection_attempts": stats.attempts.iter().map(|(venue, host, used, limit)| {
                    serde_json::json!({"venue": venue, "host": host, "used": used, "limit": limit})
                }).collect::<Vec<_>>(),
                "snapshot_requests": {
                    "sent": stats.snapshot_requests.0,
                    "failed": stats.snapshot_requests.1,
                    "rate_limited": stats.snapshot_requests.2,
                },
            },
            "events": self.events,
        })
    }
}

/// `pool.n` for a connection id (the pool index is in the high 32 bits).
fn conn_name(id: u64) -> String {
    format!("{}.{}", id >> 32, id & 0xffff_ffff)
}

/// Messages per second, from the counters' deltas over about a second.
#[derive(Debug, Default)]
struct Rates {
    at: Option<Instant>,
    conns: BTreeMap<ConnKey, u64>,
    streams: BTreeMap<(MarketId, String), u64>,
    conn_rate: BTreeMap<ConnKey, f64>,
    stream_rate: BTreeMap<(MarketId, String), f64>,
}

impl Rates {
    fn update(&mut self, stats: &FeedStats) {
        let now = Instant::now();
        if let Some(at) = self.at {
            let dt = now.duration_since(at).as_secs_f64();
            if dt < 0.9 {
                return;
            }
            self.conn_rate = stats
                .conns
                .iter()
                .map(|(id, c)| (*id, c.messages.saturating_sub(self.conns.get(id).copied().unwrap_or(0)) as f64 / dt))
                .collect();
            self.stream_rate = stats
                .streams
                .iter()
                .map(|(k, s)| {
                    (k.clone(), s.messages.saturating_sub(self.streams.get(k).copied().unwrap_or(0)) as f64 / dt)
                })
                .collect();
        }
        self.at = Some(now);
        self.conns = stats.conns.iter().map(|(id, c)| (*id, c.messages)).collect();
        self.streams = stats.streams.iter().map(|(k, s)| (k.clone(), s.messages)).collect();
    }
}

// ---------------------------------------------------------------------------
// The live view

/// Set while the terminal is in raw mode on the alternate screen, so the
/// panic hook knows to restore it.
static TUI_ACTIVE: AtomicBool = AtomicBool::new(false);

fn restore_terminal() {
    if TUI_ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = crossterm::terminal::disable_raw_mode();
        let _ =
            crossterm::execute!(std::io::stdout(), crossterm::terminal::LeaveAlternateScreen, crossterm::cursor::Show);
    }
}

/// Restores the terminal when dropped: on `q`, Ctrl-C, `--duration`, errors
/// and panics alike.
#[derive(Debug)]
struct TermGuard;

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

struct Tui {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    keys: mpsc::Receiver<KeyEvent>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    // Dropped last: the reader thread has stopped before the terminal is restored.
    _guard: TermGuard,
}

impl std::fmt::Debug for Tui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tui").finish_non_exhaustive()
    }
}

impl Tui {
    fn enter() -> std::io::Result<Tui> {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_terminal();
                prev(info);
            }));
        });
        crossterm::terminal::enable_raw_mode()?;
        TUI_ACTIVE.store(true, Ordering::SeqCst);
        let guard = TermGuard;
        crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen, crossterm::cursor::Hide)?;
        let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
        terminal.clear()?;
        // Keys are read on a thread (crossterm's reader blocks); it polls so it
        // notices `stop` within 100 ms.
        let (tx, keys) = mpsc::channel(16);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let reader = std::thread::Builder::new().name("demo-keys".into()).spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match crossterm::event::poll(Duration::from_millis(100)) {
                    Ok(true) => match crossterm::event::read() {
                        Ok(crossterm::event::Event::Key(k)) => {
                            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(k) {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
        })?;
        Ok(Tui { terminal, keys, stop, reader: Some(reader), _guard: guard })
    }

    fn draw(&mut self, st: &mut Demo, feed: &Feed, next_fault: Option<Duration>) -> std::io::Result<()> {
        let stats = feed.stats().lock().clone();
        st.rates.update(&stats);
        let routes: BTreeMap<u64, String> =
            feed.client().snapshots().into_iter().map(|s| (s.id, route(&s.url))).collect();
        let phase =
            feed.books().phase(SPOT, &st.ladder).map_or_else(|| "not tracked".to_string(), |p| format!("{p:?}"));
        let view = View { st, stats, routes, ladder: st.ladder_book(feed), phase, next_fault };
        self.terminal.draw(|f| render(f, &view))?;
        Ok(())
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// The route of a connection URL: its first path segment after any API
/// version (`stream`, `ws`, `public`, `market`; Bybit's `/v5/public/linear`
/// is `public`).
fn route(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, p)| p);
    let path = path.split('?').next().unwrap_or("");
    let is_version =
        |s: &str| s.strip_prefix('v').is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let segment = path.split('/').find(|s| !is_version(s)).unwrap_or("");
    if segment.is_empty() { "-".into() } else { segment.to_string() }
}

/// One frame's data.
struct View<'a> {
    st: &'a Demo,
    stats: FeedStats,
    routes: BTreeMap<u64, String>,
    ladder: Option<(u64, Vec<Level>, Vec<Level>)>,
    phase: String,
    next_fault: Option<Duration>,
}

fn hms(ts_ns: i64) -> String {
    let ms = ts_ns.div_euclid(1_000_000);
    let day_ms = ms.rem_euclid(86_400_000);
    format!("{:02}:{:02}:{:02}.{:03}", day_ms / 3_600_000, day_ms / 60_000 % 60, day_ms / 1000 % 60, day_ms % 1000)
}

fn render(f: &mut ratatui::Frame<'_>, v: &View<'_>) {
    use ratatui::layout::{Alignment, Constraint, Layout};
    use ratatui::style::{Color, Modifier, Style};
    use ratatui::text::{Line, Span};
    use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

    let st = v.st;
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let dim = Style::new().fg(Color::DarkGray);
    let green = Style::new().fg(Color::Green);
    let red = Style::new().fg(Color::Red);
    let yellow = Style::new().fg(Color::Yellow);
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));

    // The bottom panel: counters, rate limits (a line more when they wrap:
    // three venue hosts), the last three faults.
    let [title, body, bottom] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(10), Constraint::Length(8)]).areas(f.area());
    // 62%: the connection table's columns fit a 120-column terminal.
    let [left, rightc] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(body);
    let n_conns = v.stats.conns.len().max(1) as u16;
    let [conns_area, streams_area] =
        Layout::vertical([Constraint::Length(n_conns + 3), Constraint::Min(3)]).areas(left);
    let [ladder_area, trades_area] =
        Layout::vertical([Constraint::Length(LADDER_LEVELS as u16 * 2 + 3), Constraint::Min(3)]).areas(rightc);

    // The simulator's ports alone when its full addresses would push the
    // quit hint off the line.
    const NAME: &str = " ferrofeed demo ";
    const QUIT: &str = "q quits";
    let tail = format!(" · {:.1} s · ", st.t());
    let fits = |d: &str| NAME.len() + 2 + d.chars().count() + tail.chars().count() + QUIT.len() <= title.width as usize;
    let desc = if fits(&st.sim_desc) { &st.sim_desc } else { &st.sim_short };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(NAME, bold.fg(Color::Cyan)),
            Span::raw(format!("· {desc}{tail}")),
            Span::styled(QUIT, yellow),
        ])),
        title,
    );

    // Connections.
    let header = Row::new(
        ["Conn", "Venue", "Market", "Route", "State", "Epoch", "Msg/s", "Messages", "Reconn", "Gaps"].map(Cell::from),
    )
    .style(bold);
    let rows = v.stats.conns.iter().map(|(id, c)| {
        let state_style = match c.state {
            State::Active => green,
            State::Closed | State::Closing => red,
            _ => yellow,
        };
        Row::new(vec![
            Cell::from(conn_name(id.1)),
            Cell::from(c.market.map_or("-", MarketId::venue_name)),
            Cell::from(c.market.map_or("-", MarketId::name)),
            Cell::from(v.routes.get(&id.1).cloned().unwrap_or_else(|| "-".into())),
            Cell::from(format!("{:?}", c.state)).style(state_style),
            right(c.epoch.to_string()),
            right(format!("{:.0}", st.rates.conn_rate.get(id).copied().unwrap_or(0.0))),
            right(c.messages.to_string()),
            right(c.reconnects.to_string()),
            right(c.gaps.to_string()),
        ])
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(4),
    ];
    f.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title(" Connections ")),
        conns_area,
    );

    // Streams.
    let now_ns = crate::now_ns();
    let header = Row::new(["Venue", "Market", "Stream", "Msg/s", "Messages", "Last"].map(Cell::from)).style(bold);
    let rows = v.stats.streams.iter().map(|((m, s), x)| {
        let age = if x.last_ns == 0 {
            "-".to_string()
        } else {
            let ms = (now_ns - x.last_ns).max(0) / 1_000_000;
            if ms < 1000 { format!("{ms} ms") } else { format!("{:.1} s", ms as f64 / 1000.0) }
        };
        let rate = st.rates.stream_rate.get(&(*m, s.clone())).copied().unwrap_or(0.0);
        Row::new(vec![
            Cell::from(m.venue_name()),
            Cell::from(m.name()),
            Cell::from(s.clone()),
            right(format!("{rate:.1}")),
            right(x.messages.to_string()),
            right(age),
        ])
    });
    let widths = [
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Min(20),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(8),
    ];
    f.render_widget(Table::new(rows, widths).header(header).block(Block::bordered().title(" Streams ")), streams_area);

    // Ladder.
    let (title_text, spread, rows): (String, String, Vec<Row<'_>>) = match &v.ladder {
        Some((id, bids, asks)) => {
            // As many decimals as the levels need (spot quotes carry 8), aligned.
            let dp = |f: fn(&Level) -> Decimal| bids.iter().chain(asks).map(|l| f(l).normalize().scale()).max();
            let (pdp, qdp) = (dp(|l| l.price).unwrap_or(2) as usize, dp(|l| l.qty).unwrap_or(2) as usize);
            let price = |d: Decimal| format!("{d:.pdp$}");
            let qty = |d: Decimal| format!("{d:.qdp$}");
            let spread = match (bids.first(), asks.first()) {
                (Some(b), Some(a)) => format!(" spread {} ", price(a.price - b.price)),
                _ => String::new(),
            };
            let mut rows: Vec<Row<'_>> = (0..LADDER_LEVELS)
                .rev()
                .map(|i| match asks.get(i) {
                    Some(l) => {
                        Row::new(vec![Cell::from(""), right(price(l.price)).style(red), right(qty(l.qty)).style(red)])
                    }
                    None => Row::new(vec![Cell::from(""), Cell::from(""), Cell::from("")]),
                })
                .collect();
            rows.extend(bids.iter().map(|l| {
                Row::new(vec![right(qty(l.qty)).style(green), right(price(l.price)).style(green), Cell::from("")])
            }));
            (format!(" {} spot · synced @ {id} ", st.ladder), spread, rows)
        }
        None => (format!(" {} spot · resyncing ({}) ", st.ladder, v.phase), String::new(), Vec::new()),
    };
    let header =
        Row::new(["Bid qty", "Price", "Ask qty"].map(|h| Cell::from(Line::from(h).alignment(Alignment::Right))))
            .style(bold);
    let widths = [Constraint::Ratio(1, 3), Constraint::Ratio(1, 3), Constraint::Ratio(1, 3)];
    f.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title(title_text).title_bottom(spread)),
        ladder_area,
    );

    // Recent trades of the ladder's symbol.
    let header = Row::new(["Time (UTC)", "Side", "Price", "Qty"].map(Cell::from)).style(bold);
    let rows = st.recent.iter().map(|t| {
        let (side, style) = match t.side {
            Side::Buy => ("buy", green),
            Side::Sell => ("sell", red),
        };
        Row::new(vec![
            Cell::from(hms(t.ts_ns)).style(dim),
            Cell::from(side).style(style),
            right(t.price.clone()),
            right(t.qty.clone()),
        ])
    });
    let widths = [Constraint::Length(12), Constraint::Length(4), Constraint::Min(10), Constraint::Min(8)];
    f.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title(format!(" {} trades ", st.ladder))),
        trades_area,
    );

    // Counters, rate limits, faults.
    let s = &v.stats;
    let queue = s.queue.get("public").copied().unwrap_or_default();
    let unreported = st.unreported();
    let mut lines = vec![Line::from(vec![
        Span::styled("Gaps ", bold),
        Span::raw(format!("{} ({} msgs, {} uncountable)  ", st.gaps, st.missing, st.uncountable_gaps)),
        Span::styled("Resyncs ", bold),
        Span::raw(format!("{}  ", st.resyncs)),
        Span::styled("Reconnects ", bold),
        Span::raw(format!("{}  ", st.reconnects)),
        Span::styled("Errors ", bold),
        Span::raw(format!("{}  ", st.errors)),
        Span::styled("Unreported ids ", bold),
        Span::styled(unreported.to_string(), if unreported == 0 { green } else { red }),
        Span::raw(format!("  Trades {}  Queue {}/{}", st.trades, queue.0, queue.1)),
    ])];
    let weight = s
        .rest_weight
        .iter()
        .map(|(m, used, limit)| format!("{} {}/{limit}", label(*m), used.map_or("?".into(), |u| u.to_string())))
        .collect::<Vec<_>>()
        .join(", ");
    let attempts = s
        .attempts
        .iter()
        .map(|(_, _, used, limit)| format!("{}/{limit}", used.map_or("?".into(), |u| u.to_string())))
        .collect::<Vec<_>>()
        .join(", ");
    let (msgs, msg_limit) = s.conns.values().map(|c| c.msgs_in_window).max().unwrap_or((0, 0));
    lines.push(Line::from(vec![
        Span::styled("Rate limits ", bold),
        Span::raw(format!(
            "REST weight {weight} · connects {attempts} · WS msgs {msgs}/{msg_limit} · snapshots {} ({} failed)",
            s.snapshot_requests.0, s.snapshot_requests.1
        )),
    ]));
    let shown = st.faults.iter().enumerate().rev().take(3).collect::<Vec<_>>();
    for (i, fault) in shown.into_iter().rev() {
        let (state, style) = match fault.recovered {
            Some(d) => (format!("recovered in {} ms", d.as_millis()), green),
            None => ("recovering…".to_string(), yellow),
        };
        lines.push(Line::from(vec![
            Span::raw(format!("#{} t={:.1}s {}: ", i + 1, fault.at.as_secs_f64(), fault.name)),
            Span::styled(state, style),
        ]));
    }
    if st.faults.is_empty() {
        lines.push(Line::styled("no fault injected yet", dim));
    }
    let recovered = st.faults.iter().filter(|f| f.recovered.is_some()).count();
    let title = match v.next_fault {
        Some(d) => format!(" Faults {recovered}/{} recovered · next in {:.1} s ", st.faults.len(), d.as_secs_f64()),
        None => format!(" Faults {recovered}/{} recovered ", st.faults.len()),
    };
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }).block(Block::bordered().title(title)), bottom);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_span_delivered_and_gaps() {
        let mut a = IdAccount::default();
        assert_eq!((a.span(), a.unreported()), (0, 0));
        a.seen(10);
        a.seen(11);
        a.in_gaps += 3;
        a.seen(15);
        assert_eq!((a.span(), a.unreported()), (6, 0));
        a.seen(20);
        assert_eq!(a.unreported(), 4);
    }

    #[test]
    fn routes_and_times() {
        assert_eq!(route("ws://127.0.0.1:9/stream?streams=a/b"), "stream");
        assert_eq!(route("ws://127.0.0.1:9/market/stream?streams=a"), "market");
        assert_eq!(route("ws://127.0.0.1:9"), "-");
        assert_eq!(route("ws://127.0.0.1:9/v5/public/linear"), "public");
        assert_eq!(route("ws://127.0.0.1:9/v5"), "-");
        assert_eq!(hms(3_723_004_000_000), "01:02:03.004");
        assert_eq!(conn_name((2 << 32) | 5), "2.5");
    }

    #[test]
    fn market_labels_and_lists() {
        assert_eq!(
            [label(SPOT), label(USDM), label(LINEAR), label(DERIBIT)],
            ["spot", "usdm", "bybit linear", "deribit inverse"]
        );
        assert_eq!(and_list(vec![]), "");
        assert_eq!(and_list(vec!["a".into()]), "a");
        assert_eq!(and_list(vec!["a".into(), "b".into()]), "a and b");
        assert_eq!(and_list(vec!["a".into(), "b".into(), "c".into()]), "a, b and c");
    }

    #[test]
    fn faults_visit_every_market_with_every_kind() {
        // The first two as before Bybit joined: kill spot, stall usdm.
        assert_eq!((fault_plan(0, 3), fault_plan(1, 3)), ((0, 0), (1, 1)));
        let seen: std::collections::BTreeSet<_> = (0..9).map(|i| fault_plan(i, 3)).collect();
        assert_eq!(seen.len(), 9);
        // No market twice in a row.
        assert!((1..18).all(|i| fault_plan(i, 3).1 != fault_plan(i - 1, 3).1));
        assert_eq!(fault_plan(5, 0), (2, 0));
    }

    #[test]
    fn demo_streams_are_the_venues_names() {
        let names = stream_names(SPOT, &["BTCUSDT"], &[Channel::Trades, Channel::TopOfBook]).unwrap();
        assert_eq!(names, ["btcusdt@trade", "btcusdt@bookTicker"]);
        assert_eq!(stream_names(USDM, &["BTCUSDT"], &[Channel::AggTrades]).unwrap(), ["btcusdt@aggTrade"]);
        assert_eq!(stream_names(LINEAR, &["BTCUSDT"], &[Channel::Trades]).unwrap(), ["publicTrade.BTCUSDT"]);
        assert!(stream_names(LINEAR, &["BTCUSDT"], &[Channel::AggTrades]).is_err());
    }

    #[test]
    fn quit_keys() {
        let k = |c, m| KeyEvent::new(c, m);
        assert!(is_quit(&k(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(is_quit(&k(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!is_quit(&k(KeyCode::Char('c'), KeyModifiers::NONE)));
    }
}
