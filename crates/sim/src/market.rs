//! The seeded market generator: one true order book per symbol and the
//! mutually consistent trades, aggregate trades, depth diffs, book tickers,
//! tickers, klines, mark prices and liquidations derived from it.
//!
//! Prices are integer ticks and quantities integer lots; they are formatted as
//! decimal strings only when a payload is written. The generator knows no
//! venue: the market's dialect names each symbol's streams ([`Names`]) and
//! writes the payloads ([`Encode`]), only for streams someone tracks.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{MarketKind, SymbolSpec, Timing};

/// A payload produced for one stream.
#[derive(Debug)]
pub(crate) struct Emit {
    /// Stream name as clients subscribe to it.
    pub stream: String,
    /// The raw JSON payload.
    pub payload: String,
    /// Trade id or last update id carried by the payload, for ground truth.
    pub id: Option<u64>,
}

/// One side of a window's accumulated changes.
#[derive(Debug, Default, Clone)]
struct Window {
    first: Option<u64>,
    last: u64,
    prev_u: u64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

/// One kline bucket built from the generator's trades.
#[derive(Debug, Clone)]
pub(crate) struct Candle {
    pub(crate) open_time: u64,
    pub(crate) close_time: u64,
    pub(crate) first_trade: i64,
    pub(crate) last_trade: i64,
    pub(crate) o: i64,
    pub(crate) h: i64,
    pub(crate) l: i64,
    pub(crate) c: i64,
    /// Volume in lots.
    pub(crate) v: i128,
    /// Quote turnover in ticks × lots.
    pub(crate) q: i128,
    /// Inverse turnover: contracts / price, in 1e-8 of the base coin.
    pub(crate) q_inv: i128,
    pub(crate) taker_v: i128,
    pub(crate) taker_q: i128,
    pub(crate) n: u64,
}

/// A synthetic liquidation (the largest of a flush period).
#[derive(Debug, Clone)]
pub(crate) struct Liquidation {
    /// A forced sell order, i.e. a long position was liquidated.
    pub(crate) sell: bool,
    pub(crate) price: i64,
    /// Average fill price in ticks.
    pub(crate) avg: i64,
    pub(crate) qty: i64,
    pub(crate) time: u64,
}

/// A stale copy of a book for the "stale snapshot" fault.
#[derive(Debug, Clone)]
pub(crate) struct BookCopy {
    pub last_update_id: u64,
    pub bids: Vec<(i64, i64)>,
    pub asks: Vec<(i64, i64)>,
    pub(crate) taken_ms: u64,
}

#[derive(Debug)]
pub(crate) struct SymbolState {
    pub spec: SymbolSpec,
    pub lower: String,
    rng: ChaCha8Rng,
    action_credit: f64,
    pub bids: BTreeMap<i64, i64>,
    pub asks: BTreeMap<i64, i64>,
    pub update_id: u64,
    pub(crate) trade_id: u64,
    pub(crate) agg_id: u64,
    windows: Vec<Window>,
    pub(crate) top: (i64, i64, i64, i64),
    // 24 h statistics (since the simulator started).
    pub(crate) open: i64,
    pub(crate) high: i64,
    pub(crate) low: i64,
    pub(crate) last: i64,
    pub(crate) last_qty: i64,
    pub(crate) volume: i128,
    pub(crate) quote: i128,
    /// Inverse turnover since start: contracts / price, in 1e-8 of the base coin.
    pub(crate) quote_inv: i128,
    pub(crate) count: u64,
    pub(crate) first_trade_id: u64,
    pub(crate) stats_open_ms: u64,
    pub(crate) last_trade_ms: u64,
    /// Per interval: the open candle and the closed ones not yet pushed.
    candles: HashMap<&'static str, Series>,
    liquidation: Option<Liquidation>,
    /// The copy served by the stale-snapshot fault (between one and two ages old).
    stale: Option<BookCopy>,
    stale_next: Option<BookCopy>,
    /// The book's top levels after each depth window, keyed by update id
    /// (ground truth for clients' local books); at most `history_cap`.
    history: VecDeque<BookCopy>,
    pub(crate) history_cap: usize,
    /// The streams its events are published on.
    pub(crate) names: Names,
    /// The last trade's tick direction: 0 `PlusTick`, 1 `ZeroPlusTick`, 2 `MinusTick`, 3 `ZeroMinusTick`.
    pub(crate) tick_dir: u8,
}

/// Closed candles kept per interval until the kline topic's next push.
const PENDING_CANDLES: usize = 4;

/// Levels per side kept in the book history.
pub(crate) const HISTORY_DEPTH: usize = 50;

/// The stream names of one symbol's generated events, as its market's
/// dialect names them. A payload is encoded only when its stream is tracked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Names {
    /// Where the generator's taker trades are published.
    pub trade: String,
    /// Streams any of which, tracked, turns the generator's trade payloads on.
    pub trade_watch: Vec<String>,
    /// Where a user's taker trades are published (`Market::user_take`).
    pub user_trade: String,
    /// Aggregate trades, on venues that have them.
    pub agg: Option<String>,
    /// Best bid and ask, on venues that have them.
    pub book_ticker: Option<String>,
    /// Diff depth: one name per depth window ([`Streams::depth_ms`]).
    pub depth: Vec<String>,
    /// Liquidations.
    pub force: String,
}

/// What a market's dialect decides about its generator.
pub(crate) struct Streams<'a> {
    /// Cadences (ms, before scaling) of the depth windows; [`Names::depth`]
    /// has one name per entry.
    pub depth_ms: &'a [u64],
    /// How often (ms, before scaling) the largest pending liquidation of each
    /// symbol is published. The first flush is one second after the start.
    pub liquidation_ms: u64,
    /// A stream that also receives every symbol's liquidations.
    pub all_liquidations: Option<&'a str>,
    /// The stream names of a symbol.
    pub names: &'a dyn Fn(&SymbolSpec) -> Names,
}

impl std::fmt::Debug for Streams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").field("depth_ms", &self.depth_ms).finish_non_exhaustive()
    }
}

/// The changes one depth window accumulated, for [`Encode::depth_diff`].
#[derive(Debug)]
pub(crate) struct DepthDiff<'a> {
    /// The first update id of the window.
    pub first: u64,
    /// The last update id of the window.
    pub last: u64,
    /// The last update id of the previous window of the same cadence.
    pub prev_u: u64,
    /// Changed bid levels (price ticks → lots, 0 = removed), ascending.
    pub bids: &'a BTreeMap<i64, i64>,
    /// Changed ask levels, ascending.
    pub asks: &'a BTreeMap<i64, i64>,
}

/// How a venue writes the generator's events. The venue folders implement
/// it; [`Market::tick`] and [`Market::user_take`] are generic over it, so the
/// per-event calls are static. Each method is only called when the symbol's
/// [`Names`] has the stream and someone tracks it.
pub(crate) trait Encode {
    /// One trade at `price` ticks of `qty` lots; its id is `s.trade_id`.
    fn trade(&self, s: &SymbolState, price: i64, qty: i64, buy: bool, now_ms: u64) -> String;
    /// One aggregate trade (id `s.agg_id`) of the trades `first..=s.trade_id`.
    fn agg_trade(&self, s: &SymbolState, price: i64, qty: i64, first: u64, buy: bool, now_ms: u64) -> String;
    /// The best bid and ask (`s.top`) after update id `s.update_id`.
    fn book_ticker(&self, s: &SymbolState, now_ms: u64) -> String;
    /// The changes of one depth window.
    fn depth_diff(&self, s: &SymbolState, w: &DepthDiff<'_>, now_ms: u64) -> String;
    /// A liquidation.
    fn liquidation(&self, s: &SymbolState, l: &Liquidation, now_ms: u64) -> String;
}

/// The bucket `(open, close)` (ms, inclusive) of a kline interval holding a
/// time, as a venue cuts its candles.
pub(crate) type Bounds = fn(&str, u64) -> (u64, u64);

/// One kline interval's candles: the open one and the closed ones not yet
/// pushed (at most `PENDING_CANDLES`, oldest first).
#[derive(Debug, Clone)]
struct Series {
    open: Candle,
    closed: VecDeque<Candle>,
    bounds: Bounds,
}

/// All symbols of one market.
#[derive(Debug)]
pub(crate) struct Market {
    pub kind: MarketKind,
    pub symbols: Vec<SymbolState>,
    by_lower: HashMap<String, usize>,
    by_upper: HashMap<String, usize>,
    speeds: Vec<u64>,
    next_flush: Vec<u64>,
    next_liq_flush: u64,
    liq_period_ms: u64,
    all_liquidations: Option<String>,
    pub(crate) timing: Timing,
    stale_age_ms: u64,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Formats `v / 10^scale` with `decimals` fraction digits (`decimals >= scale`).
pub(crate) fn fmt_dec(out: &mut String, v: i128, scale: u32, decimals: u32) {
    let neg = v < 0;
    let a = v.unsigned_abs();
    let p = 10u128.pow(scale);
    let (int, frac) = (a / p, a % p);
    if neg && a != 0 {
        out.push('-');
    }
    let _ = write!(out, "{int}");
    if decimals > 0 {
        out.push('.');
        let mut digits = format!("{frac:0width$}", width = scale as usize);
        while (digits.len() as u32) < decimals {
            digits.push('0');
        }
        out.push_str(&digits[..decimals as usize]);
    }
}

impl SymbolState {
    fn new(kind: MarketKind, spec: SymbolSpec, seed: u64, speeds: usize, now_ms: u64, names: Names) -> SymbolState {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv(&spec.name));
        let lower = spec.name.to_lowercase();
        let mid = spec.start_price_ticks.max(100);
        let unit = Self::unit_of(&spec);
        let mut bids = BTreeMap::new();
        let mut asks = BTreeMap::new();
        let half = 1;
        let (mut b, mut a) = (mid - half, mid + half);
        for _ in 0..200 {
            bids.insert(b, unit * rng.random_range(1..=400));
            asks.insert(a, unit * rng.random_range(1..=400));
            b -= rng.random_range(1..=3);
            a += rng.random_range(1..=3);
            if b <= 0 {
                break;
            }
        }
        let update_id = rng.random_range(1_000_000u64..9_000_000) * if kind.is_derivative() { 1000 } else { 10 };
        let trade_id = rng.random_range(1_000_000u64..9_000_000);
        let mut s = SymbolState {
            lower,
            rng,
            action_credit: 0.0,
            bids,
            asks,
            update_id,
            trade_id,
            agg_id: trade_id / 3,
            windows: vec![Window { prev_u: update_id, ..Window::default() }; speeds],
            top: (0, 0, 0, 0),
            open: mid,
            high: mid,
            low: mid,
            last: mid,
            last_qty: 0,
            volume: 0,
            quote: 0,
            quote_inv: 0,
            count: 0,
            first_trade_id: trade_id + 1,
            stats_open_ms: now_ms,
            last_trade_ms: now_ms,
            candles: HashMap::new(),
            liquidation: None,
            stale: None,
            stale_next: None,
            history: VecDeque::new(),
            history_cap: 0,
            names,
            spec,
            tick_dir: 1,
        };
        s.top = s.top_of_book();
        s.stale = Some(s.copy(usize::MAX, now_ms));
        s.stale_next = s.stale.clone();
        s
    }

    fn unit_of(spec: &SymbolSpec) -> i64 {
        (10i64.pow(spec.qty_decimals) / 100).max(1)
    }

    pub(crate) fn top_of_book(&self) -> (i64, i64, i64, i64) {
        let (bp, bq) = self.bids.iter().next_back().map(|(p, q)| (*p, *q)).unwrap_or((0, 0));
        let (ap, aq) = self.asks.iter().next().map(|(p, q)| (*p, *q)).unwrap_or((0, 0));
        (bp, bq, ap, aq)
    }

    /// A copy of the top `depth` levels per side.
    pub(crate) fn copy(&self, depth: usize, now_ms: u64) -> BookCopy {
        BookCopy {
            last_update_id: self.update_id,
            bids: self.bids.iter().rev().take(depth).map(|(p, q)| (*p, *q)).collect(),
            asks: self.asks.iter().take(depth).map(|(p, q)| (*p, *q)).collect(),
            taken_ms: now_ms,
        }
    }

    /// The book as it was right after update id `update_id` ended a depth
    /// window, if still in the history.
    pub(crate) fn copy_at(&self, update_id: u64) -> Option<&BookCopy> {
        let i = self.history.binary_search_by_key(&update_id, |c| c.last_update_id).ok()?;
        self.history.get(i)
    }

    fn record_history(&mut self, now_ms: u64) {
        if self.history_cap == 0 || self.history.back().is_some_and(|c| c.last_update_id == self.update_id) {
            return;
        }
        if self.history.len() >= self.history_cap {
            self.history.pop_front();
        }
        let c = self.copy(HISTORY_DEPTH, now_ms);
        self.history.push_back(c);
    }

    pub(crate) fn stale_copy(&self) -> Option<&BookCopy> {
        self.stale.as_ref()
    }

    fn set_level(&mut self, bid: bool, price: i64, qty: i64) {
        let side = if bid { &mut self.bids } else { &mut self.asks };
        if qty <= 0 {
            side.remove(&price);
        } else {
            side.insert(price, qty);
        }
        for w in &mut self.windows {
            let m = if bid { &mut w.bids } else { &mut w.asks };
            m.insert(price, qty.max(0));
        }
    }

    /// Consumes update ids for one book event and records them in every window.
    fn bump(&mut self, deriv: bool) {
        let step = if deriv { self.rng.random_range(1..=3) } else { 1 };
        let first = self.update_id + 1;
        self.update_id += step;
        for w in &mut self.windows {
            w.first.get_or_insert(first);
            w.last = self.update_id;
        }
    }
}

impl Market {
    pub(crate) fn new(
        kind: MarketKind,
        symbols: &[SymbolSpec],
        seed: u64,
        timing: &Timing,
        now_ms: u64,
        streams: &Streams<'_>,
    ) -> Market {
        let speeds: Vec<u64> = streams.depth_ms.to_vec();
        let symbols: Vec<SymbolState> = symbols
            .iter()
            .map(|s| SymbolState::new(kind, s.clone(), seed, speeds.len(), now_ms, (streams.names)(s)))
            .collect();
        let by_lower = symbols.iter().enumerate().map(|(i, s)| (s.lower.clone(), i)).collect();
        let by_upper = symbols.iter().enumerate().map(|(i, s)| (s.spec.name.clone(), i)).collect();
        let cad = |ms| timing.cadence(ms).as_millis() as u64;
        Market {
            kind,
            next_flush: speeds.iter().map(|ms| now_ms + cad(*ms)).collect(),
            speeds,
            symbols,
            by_lower,
            by_upper,
            next_liq_flush: now_ms + cad(1000),
            liq_period_ms: streams.liquidation_ms,
            all_liquidations: streams.all_liquidations.map(str::to_string),
            stale_age_ms: timing.stale_snapshot_age.as_millis() as u64,
            timing: timing.clone(),
        }
    }

    pub(crate) fn symbol_index(&self, upper: &str) -> Option<usize> {
        self.by_upper.get(upper).copied()
    }

    /// Keeps the last `cap` depth-window books of every symbol (0: none).
    pub(crate) fn set_history(&mut self, cap: usize) {
        for s in &mut self.symbols {
            s.history_cap = cap;
            s.history.clear();
        }
    }

    pub(crate) fn knows_lower(&self, s: &str) -> bool {
        self.by_lower.contains_key(s)
    }

    pub(crate) fn symbol(&self, upper: &str) -> Option<&SymbolState> {
        self.by_upper.get(upper).map(|i| &self.symbols[*i])
    }

    pub(crate) fn by_lower(&self, s: &str) -> Option<&SymbolState> {
        self.by_lower.get(s).map(|i| &self.symbols[*i])
    }

    pub(crate) fn by_lower_mut(&mut self, s: &str) -> Option<&mut SymbolState> {
        let i = *self.by_lower.get(s)?;
        Some(&mut self.symbols[i])
    }

    /// Advances every book by `elapsed_ms` worth of actions, then flushes the depth
    /// windows and liquidations that are due. Only streams in `tracked` get
    /// payloads, written by `enc`.
    pub(crate) fn tick<E: Encode>(
        &mut self,
        enc: &E,
        now_ms: u64,
        elapsed_ms: u64,
        tracked: &HashSet<String>,
        out: &mut Vec<Emit>,
    ) {
        let kind = self.kind;
        let per_ms = self.timing.actions_per_sec / 1000.0 / self.timing.scale.max(1e-6);
        for s in &mut self.symbols {
            s.action_credit += per_ms * elapsed_ms as f64;
            while s.action_credit >= 1.0 {
                s.action_credit -= 1.0;
                act(enc, kind, s, now_ms, tracked, out);
            }
            if now_ms.saturating_sub(s.stale_next.as_ref().map_or(0, |c| c.taken_ms)) >= self.stale_age_ms {
                s.stale = s.stale_next.take();
                s.stale_next = Some(s.copy(usize::MAX, now_ms));
            }
        }
        for i in 0..self.speeds.len() {
            if now_ms >= self.next_flush[i] {
                self.next_flush[i] = now_ms + self.timing.cadence(self.speeds[i]).as_millis() as u64;
                for s in &mut self.symbols {
                    flush_window(enc, s, i, now_ms, tracked, out);
                }
            }
        }
        if now_ms >= self.next_liq_flush {
            self.next_liq_flush = now_ms + self.timing.cadence(self.liq_period_ms).as_millis() as u64;
            let all_name = self.all_liquidations.as_deref();
            for s in &mut self.symbols {
                if let Some(l) = s.liquidation.take() {
                    let all = all_name.filter(|a| tracked.contains(*a));
                    if all.is_some() || tracked.contains(&s.names.force) {
                        let p = enc.liquidation(s, &l, now_ms);
                        if tracked.contains(&s.names.force) {
                            out.push(Emit { stream: s.names.force.clone(), payload: p.clone(), id: None });
                        }
                        if let Some(a) = all {
                            out.push(Emit { stream: a.to_string(), payload: p, id: None });
                        }
                    }
                }
            }
        }
    }

    /// Called when a kline topic of `sym` (lower case) starts being tracked:
    /// starts its candles, bucketed by `bounds`.
    pub(crate) fn ensure_candle(&mut self, sym: &str, iv: &'static str, bounds: Bounds, now_ms: u64) {
        if let Some(s) = self.by_lower_mut(sym) {
            s.start_candles(iv, bounds, now_ms);
        }
    }

    /// The kline of `iv` for `upper` now: the candles that closed since the
    /// last call (oldest first) and the open one. Starts the candle on first use.
    pub(crate) fn candles(
        &mut self,
        upper: &str,
        iv: &'static str,
        bounds: Bounds,
        now_ms: u64,
    ) -> Option<(Vec<Candle>, Candle)> {
        let i = self.symbol_index(upper)?;
        let s = &mut self.symbols[i];
        s.start_candles(iv, bounds, now_ms);
        s.roll_candle(iv, now_ms)
    }
}

/// One random book action: add liquidity, cancel, or a taker order.
fn act<E: Encode>(
    enc: &E,
    kind: MarketKind,
    s: &mut SymbolState,
    now_ms: u64,
    tracked: &HashSet<String>,
    out: &mut Vec<Emit>,
) {
    let deriv = kind.is_derivative();
    let unit = SymbolState::unit_of(&s.spec);
    let r: f64 = s.rng.random();
    let (bb, _, ba, _) = s.top_of_book();
    if r < 0.45 || bb == 0 || ba == 0 {
        // Add liquidity near the touch, never crossing.
        let bid = if bb == 0 {
            true
        } else if ba == 0 {
            false
        } else {
            s.rng.random_bool(0.5)
        };
        let off = s.rng.random_range(0..20);
        let price = if bid {
            if ba == 0 { s.last - 1 - off } else { ba - 1 - off }
        } else if bb == 0 {
            s.last + 1 + off
        } else {
            bb + 1 + off
        };
        if price > 0 {
            let side = if bid { &s.bids } else { &s.asks };
            let q = side.get(&price).copied().unwrap_or(0) + unit * s.rng.random_range(1..=200);
            s.set_level(bid, price, q);
            s.bump(deriv);
        }
    } else if r < 0.75 {
        // Cancel part or all of a level among the top 30.
        let bid = s.rng.random_bool(0.5);
        let side = if bid { &s.bids } else { &s.asks };
        let n = side.len().min(30);
        if n > 0 {
            let k = s.rng.random_range(0..n);
            let level = if bid { side.iter().rev().nth(k) } else { side.iter().nth(k) };
            if let Some((&p, &q)) = level {
                let new_q = if s.rng.random_bool(0.4) { 0 } else { q - (q * s.rng.random_range(1..=9) / 10) };
                s.set_level(bid, p, new_q);
                s.bump(deriv);
            }
        }
    } else {
        take(enc, kind, s, now_ms, unit, tracked, out);
    }
    maintain(s, deriv, unit);
    let top = s.top_of_book();
    if top != s.top {
        s.top = top;
        if let Some(name) = s.names.book_ticker.as_ref().filter(|n| tracked.contains(*n)) {
            out.push(Emit { stream: name.clone(), payload: enc.book_ticker(s, now_ms), id: Some(s.update_id) });
        }
    }
}

/// Keeps each side between 50 and 400 levels.
fn maintain(s: &mut SymbolState, deriv: bool, unit: i64) {
    for bid in [true, false] {
        let len = if bid { s.bids.len() } else { s.asks.len() };
        if len < 50 {
            let worst = if bid {
                s.bids.keys().next().copied().unwrap_or(s.last - 1)
            } else {
                s.asks.keys().next_back().copied().unwrap_or(s.last + 1)
            };
            let p = if bid { worst - s.rng.random_range(1..=3) } else { worst + s.rng.random_range(1..=3) };
            if p > 0 {
                let q = unit * s.rng.random_range(1..=400);
                s.set_level(bid, p, q);
                s.bump(deriv);
            }
        } else if len > 400 {
            let worst = if bid { s.bids.keys().next().copied() } else { s.asks.keys().next_back().copied() };
            if let Some(p) = worst {
                s.set_level(bid, p, 0);
                s.bump(deriv);
            }
        }
    }
}

/// A taker order sweeping up to five levels; 1–3 trades per level, one aggTrade per level.
fn take<E: Encode>(
    enc: &E,
    kind: MarketKind,
    s: &mut SymbolState,
    now_ms: u64,
    unit: i64,
    tracked: &HashSet<String>,
    out: &mut Vec<Emit>,
) {
    let buy = s.rng.random_bool(0.5);
    let side: Vec<(i64, i64)> = if buy {
        s.asks.iter().take(5).map(|(p, q)| (*p, *q)).collect()
    } else {
        s.bids.iter().rev().take(5).map(|(p, q)| (*p, *q)).collect()
    };
    let avail: i64 = side.iter().map(|(_, q)| q).sum();
    let mut remaining = (unit * s.rng.random_range(1..=300)).min(avail);
    if remaining <= 0 {
        return;
    }
    let want_trade = s.names.trade_watch.iter().any(|n| tracked.contains(n));
    let want_agg = s.names.agg.as_ref().is_some_and(|n| tracked.contains(n));
    let (mut filled, mut notional, mut worst) = (0i64, 0i128, 0i64);
    for (price, level_qty) in side {
        if remaining == 0 {
            break;
        }
        let fill = remaining.min(level_qty);
        remaining -= fill;
        s.set_level(!buy, price, level_qty - fill);
        let pieces = s.rng.random_range(1..=3).min(fill);
        let first = s.trade_id + 1;
        let mut left = fill;
        for k in 0..pieces {
            let q = if k == pieces - 1 { left } else { (fill / pieces).max(1).min(left) };
            left -= q;
            if q == 0 {
                continue;
            }
            s.trade_id += 1;
            record_trade(s, price, q, buy, now_ms);
            if want_trade {
                out.push(Emit {
                    stream: s.names.trade.clone(),
                    payload: enc.trade(s, price, q, buy, now_ms),
                    id: Some(s.trade_id),
                });
            }
        }
        s.agg_id += 1;
        if let Some(name) = s.names.agg.as_ref().filter(|_| want_agg) {
            out.push(Emit {
                stream: name.clone(),
                payload: enc.agg_trade(s, price, fill, first, buy, now_ms),
                id: Some(s.agg_id),
            });
        }
        filled += fill;
        notional += price as i128 * fill as i128;
        worst = price;
    }
    s.bump(kind.is_derivative());
    if kind.is_derivative() && kind != MarketKind::Options && s.rng.random_bool(0.05) && filled > 0 {
        let avg = (notional / filled as i128) as i64;
        let l = Liquidation { sell: !buy, price: worst, avg, qty: filled, time: now_ms };
        if s.liquidation.as_ref().is_none_or(|old| old.qty < l.qty) {
            s.liquidation = Some(l);
        }
    }
}

/// One fill of a user's taker order against the true book.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fill {
    /// Price in ticks.
    pub price: i64,
    /// Quantity in lots.
    pub qty: i64,
    /// The public trade id (the same `t` as on `<symbol>@trade`).
    pub trade_id: u64,
}

impl SymbolState {
    /// The fills a taker order of `qty` lots would get, without changing the
    /// book: the opposite side level by level, up to `limit` ticks if given.
    pub(crate) fn preview_take(&self, buy: bool, qty: i64, limit: Option<i64>) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut left = qty;
        let levels: Box<dyn Iterator<Item = (&i64, &i64)>> =
            if buy { Box::new(self.asks.iter()) } else { Box::new(self.bids.iter().rev()) };
        for (&p, &q) in levels {
            if left <= 0 || limit.is_some_and(|l| if buy { p > l } else { p < l }) {
                break;
            }
            let f = left.min(q);
            out.push((p, f));
            left -= f;
        }
        out
    }

    /// The mid price in ticks (the last trade if a side is empty).
    pub(crate) fn mid(&self) -> i64 {
        match (self.bids.keys().next_back(), self.asks.keys().next()) {
            (Some(b), Some(a)) => (b + a) / 2,
            _ => self.last,
        }
    }
}

impl Market {
    /// Executes a user's taker order on the true book like the generator's own
    /// takers: one trade (and one aggregate trade) per level taken, book changes
    /// recorded for the depth streams, a new update id, a book ticker if the top
    /// moved. Returns the fills; payloads for tracked streams go to `out`.
    #[allow(clippy::too_many_arguments)] // two call sites, all plain values
    pub(crate) fn user_take<E: Encode>(
        &mut self,
        enc: &E,
        upper: &str,
        buy: bool,
        qty: i64,
        limit: Option<i64>,
        now_ms: u64,
        tracked: &HashSet<String>,
        out: &mut Vec<Emit>,
    ) -> Vec<Fill> {
        let deriv = self.kind.is_derivative();
        let Some(&i) = self.by_upper.get(upper) else { return vec![] };
        let s = &mut self.symbols[i];
        let plan = s.preview_take(buy, qty, limit);
        if plan.is_empty() {
            return vec![];
        }
        let want_trade = tracked.contains(&s.names.user_trade);
        let want_agg = s.names.agg.as_ref().is_some_and(|n| tracked.contains(n));
        let mut fills = Vec::with_capacity(plan.len());
        for (price, q) in plan {
            let level = if buy { s.asks.get(&price) } else { s.bids.get(&price) }.copied().unwrap_or(0);
            s.set_level(!buy, price, level - q);
            s.trade_id += 1;
            let first = s.trade_id;
            record_trade(s, price, q, buy, now_ms);
            if want_trade {
                out.push(Emit {
                    stream: s.names.user_trade.clone(),
                    payload: enc.trade(s, price, q, buy, now_ms),
                    id: Some(s.trade_id),
                });
            }
            s.agg_id += 1;
            if let Some(name) = s.names.agg.as_ref().filter(|_| want_agg) {
                out.push(Emit {
                    stream: name.clone(),
                    payload: enc.agg_trade(s, price, q, first, buy, now_ms),
                    id: Some(s.agg_id),
                });
            }
            fills.push(Fill { price, qty: q, trade_id: s.trade_id });
        }
        s.bump(deriv);
        let top = s.top_of_book();
        if top != s.top {
            s.top = top;
            if let Some(name) = s.names.book_ticker.as_ref().filter(|n| tracked.contains(*n)) {
                out.push(Emit { stream: name.clone(), payload: enc.book_ticker(s, now_ms), id: Some(s.update_id) });
            }
        }
        fills
    }
}

fn record_trade(s: &mut SymbolState, price: i64, q: i64, buy: bool, now_ms: u64) {
    s.tick_dir = match price.cmp(&s.last) {
        std::cmp::Ordering::Greater => 0,
        std::cmp::Ordering::Less => 2,
        std::cmp::Ordering::Equal if s.tick_dir == 0 || s.tick_dir == 1 => 1,
        std::cmp::Ordering::Equal => 3,
    };
    if s.count == 0 {
        s.open = price;
        s.high = price;
        s.low = price;
    }
    s.high = s.high.max(price);
    s.low = s.low.min(price);
    s.last = price;
    s.last_qty = q;
    s.volume += q as i128;
    s.quote += price as i128 * q as i128;
    let inv = inverse_turnover(&s.spec, price, q);
    s.quote_inv += inv;
    s.count += 1;
    s.last_trade_ms = now_ms;
    let tid = s.trade_id as i64;
    for (iv, series) in s.candles.iter_mut() {
        let Series { open: c, closed: pending, bounds } = series;
        if now_ms > c.close_time {
            if pending.len() >= PENDING_CANDLES {
                pending.pop_front();
            }
            pending.push_back(c.clone());
            *c = new_candle(*bounds, iv, now_ms, c.c, tid - 1);
        }
        if c.n == 0 {
            c.o = price;
            c.h = price;
            c.l = price;
            c.first_trade = tid;
        }
        c.h = c.h.max(price);
        c.l = c.l.min(price);
        c.c = price;
        c.v += q as i128;
        c.q += price as i128 * q as i128;
        c.q_inv += inv;
        if buy {
            c.taker_v += q as i128;
            c.taker_q += price as i128 * q as i128;
        }
        c.n += 1;
        c.last_trade = tid;
    }
}

/// Contracts of 1 quote unit each divided by the price, in 1e-8 of the base
/// coin (an inverse contract's turnover).
fn inverse_turnover(spec: &SymbolSpec, price: i64, q: i64) -> i128 {
    if price <= 0 {
        return 0;
    }
    let num = (q as i128).saturating_mul(10i128.saturating_pow(spec.price_decimals + 8));
    num / (price as i128).saturating_mul(10i128.saturating_pow(spec.qty_decimals))
}

fn new_candle(bounds: Bounds, iv: &str, now_ms: u64, last: i64, last_tid: i64) -> Candle {
    let (open_time, close_time) = bounds(iv, now_ms);
    Candle {
        open_time,
        close_time,
        first_trade: -1,
        last_trade: last_tid.max(-1),
        o: last,
        h: last,
        l: last,
        c: last,
        v: 0,
        q: 0,
        q_inv: 0,
        taker_v: 0,
        taker_q: 0,
        n: 0,
    }
}

/// Flushes depth window `i` of `s`: its changes become one payload when the
/// window's stream is tracked (and the book is recorded in the history).
pub(crate) fn flush_window<E: Encode>(
    enc: &E,
    s: &mut SymbolState,
    i: usize,
    now_ms: u64,
    tracked: &HashSet<String>,
    out: &mut Vec<Emit>,
) {
    let Some(first) = s.windows[i].first else { return };
    let w = std::mem::take(&mut s.windows[i]);
    s.windows[i].prev_u = w.last;
    if !tracked.contains(&s.names.depth[i]) {
        return;
    }
    s.record_history(now_ms);
    let diff = DepthDiff { first, last: w.last, prev_u: w.prev_u, bids: &w.bids, asks: &w.asks };
    let payload = enc.depth_diff(s, &diff, now_ms);
    out.push(Emit { stream: s.names.depth[i].clone(), payload, id: Some(w.last) });
}

impl SymbolState {
    /// Starts the candles of `iv` (bucketed by `bounds`) if they are not yet.
    fn start_candles(&mut self, iv: &'static str, bounds: Bounds, now_ms: u64) {
        let (last, tid) = (self.last, self.trade_id as i64);
        self.candles.entry(iv).or_insert_with(|| Series {
            open: new_candle(bounds, iv, now_ms, last, tid),
            closed: VecDeque::new(),
            bounds,
        });
    }

    /// The candles of `iv` that closed since the last call (oldest first) and
    /// the open one, rolling over when the open one's interval has ended.
    /// `None` when the interval's candles were never started.
    pub(crate) fn roll_candle(&mut self, iv: &'static str, now_ms: u64) -> Option<(Vec<Candle>, Candle)> {
        let last = self.last;
        let tid = self.trade_id as i64;
        let Series { open: c, closed: pending, bounds } = self.candles.get_mut(iv)?;
        let mut closed: Vec<Candle> = pending.drain(..).collect();
        if now_ms > c.close_time {
            closed.push(c.clone());
            *c = new_candle(*bounds, iv, now_ms, last, tid);
        }
        Some((closed, c.clone()))
    }
}

impl Market {
    /// The names of `upper` (every symbol when `None`), upper case.
    pub(crate) fn symbol_names(&self, upper: Option<&str>) -> Vec<String> {
        self.symbols.iter().filter(|s| upper.is_none_or(|u| u == s.spec.name)).map(|s| s.spec.name.clone()).collect()
    }

    /// The id-reset fault: the trade, aggregate-trade and book update ids of
    /// `upper` (every symbol when `None`) restart so that the next of each is
    /// `to`, as after a venue restart. Changes a depth window holds are
    /// renumbered onto the new ids (the diff streams still carry every change
    /// of the true book), each window's previous id becomes `to - 1` (a `pu`
    /// chain breaks), and the book history and stale copies are started
    /// again (the history is ordered by update id). Returns the symbols
    /// reset, upper case.
    pub(crate) fn reset_ids(&mut self, upper: Option<&str>, to: u64, now_ms: u64) -> Vec<String> {
        let to = to.max(1);
        let mut out = Vec::new();
        for s in self.symbols.iter_mut().filter(|s| upper.is_none_or(|u| u == s.spec.name)) {
            s.trade_id = to - 1;
            s.agg_id = to - 1;
            s.update_id = to - 1;
            let pending = s.windows.iter().any(|w| w.first.is_some());
            if pending {
                s.update_id = to;
            }
            for w in &mut s.windows {
                w.prev_u = to - 1;
                if w.first.is_some() {
                    w.first = Some(to);
                    w.last = to;
                }
            }
            s.history.clear();
            s.stale = Some(s.copy(usize::MAX, now_ms));
            s.stale_next = s.stale.clone();
            out.push(s.spec.name.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_dec_pads_and_signs() {
        let mut s = String::new();
        fmt_dec(&mut s, 12345, 2, 8);
        assert_eq!(s, "123.45000000");
        s.clear();
        fmt_dec(&mut s, -5, 3, 3);
        assert_eq!(s, "-0.005");
        s.clear();
        fmt_dec(&mut s, 7, 0, 0);
        assert_eq!(s, "7");
    }
}
