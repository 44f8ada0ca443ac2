//! The seeded market generator: one true order book per symbol and the
//! mutually consistent trades, aggregate trades, depth diffs, book tickers,
//! tickers, klines, mark prices and liquidations derived from it.
//!
//! Prices are integer ticks and quantities integer lots; they are formatted as
//! decimal strings only when a payload is written. Payloads are built here with
//! the simulator's own formatting code (never the client's wire types).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::binance::topic::{self, Topic};
use crate::config::{BybitCategory, MarketKind, SymbolSpec, Timing};

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
    first_trade: i64,
    last_trade: i64,
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
    taker_v: i128,
    taker_q: i128,
    pub(crate) n: u64,
}

/// A synthetic liquidation (the largest of a flush period).
#[derive(Debug, Clone)]
pub(crate) struct Liquidation {
    /// A forced sell order, i.e. a long position was liquidated.
    pub(crate) sell: bool,
    pub(crate) price: i64,
    avg: i64,
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
    agg_id: u64,
    windows: Vec<Window>,
    pub(crate) top: (i64, i64, i64, i64),
    // 24 h statistics (since the simulator started).
    pub(crate) open: i64,
    pub(crate) high: i64,
    pub(crate) low: i64,
    pub(crate) last: i64,
    last_qty: i64,
    pub(crate) volume: i128,
    pub(crate) quote: i128,
    /// Inverse turnover since start: contracts / price, in 1e-8 of the base coin.
    pub(crate) quote_inv: i128,
    pub(crate) count: u64,
    first_trade_id: u64,
    stats_open_ms: u64,
    last_trade_ms: u64,
    /// Per interval: the open candle and the closed ones not yet pushed
    /// (at most `PENDING_CANDLES`, oldest first).
    candles: HashMap<&'static str, (Candle, VecDeque<Candle>)>,
    liquidation: Option<Liquidation>,
    /// The copy served by the stale-snapshot fault (between one and two ages old).
    stale: Option<BookCopy>,
    stale_next: Option<BookCopy>,
    /// The book's top levels after each depth window, keyed by update id
    /// (ground truth for clients' local books); at most `history_cap`.
    history: VecDeque<BookCopy>,
    pub(crate) history_cap: usize,
    names: Names,
    /// Set on Bybit markets: trades go to `publicTrade.<SYMBOL>` in Bybit's shape.
    pub(crate) bybit: Option<BybitCategory>,
    /// The last trade's tick direction: 0 `PlusTick`, 1 `ZeroPlusTick`, 2 `MinusTick`, 3 `ZeroMinusTick`.
    pub(crate) tick_dir: u8,
}

/// Closed candles kept per interval until the kline topic's next push.
const PENDING_CANDLES: usize = 4;

/// Levels per side kept in the book history.
pub(crate) const HISTORY_DEPTH: usize = 50;

#[derive(Debug)]
struct Names {
    trade: String,
    agg: String,
    book_ticker: String,
    option_trade: String,
    depth: Vec<String>,
    force: String,
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
    pub(crate) timing: Timing,
    stale_age_ms: u64,
    /// Bybit order-book topics (`orderbook.N.SYMBOL`): what each last sent.
    pub(crate) bybit_books: HashMap<String, crate::bybit::book::BookTopic>,
    /// Bybit ticker topics: the fields each last sent.
    pub(crate) bybit_tickers: HashMap<String, BTreeMap<&'static str, String>>,
    /// Set on Bybit markets.
    pub(crate) bybit: Option<BybitCategory>,
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
    fn new(kind: MarketKind, spec: SymbolSpec, seed: u64, speeds: usize, now_ms: u64) -> SymbolState {
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
        let names = Names {
            trade: format!("{lower}@trade"),
            agg: format!("{lower}@aggTrade"),
            book_ticker: format!("{lower}@bookTicker"),
            option_trade: format!("{lower}@optionTrade"),
            depth: topic::depth_speeds(kind).iter().map(|(sfx, _)| format!("{lower}@depth{sfx}")).collect(),
            force: format!("{lower}@forceOrder"),
        };
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
            bybit: None,
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

    fn top_of_book(&self) -> (i64, i64, i64, i64) {
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
    pub(crate) fn new(kind: MarketKind, symbols: &[SymbolSpec], seed: u64, timing: &Timing, now_ms: u64) -> Market {
        let speeds: Vec<u64> = topic::depth_speeds(kind).iter().map(|(_, ms)| *ms).collect();
        let symbols: Vec<SymbolState> =
            symbols.iter().map(|s| SymbolState::new(kind, s.clone(), seed, speeds.len(), now_ms)).collect();
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
            stale_age_ms: timing.stale_snapshot_age.as_millis() as u64,
            timing: timing.clone(),
            bybit_books: HashMap::new(),
            bybit_tickers: HashMap::new(),
            bybit: None,
        }
    }

    /// Makes the market speak Bybit: trades are produced as
    /// `publicTrade.<SYMBOL>` (options: `publicTrade.<baseCoin>`, shared by
    /// every option of that coin) and liquidations as
    /// `allLiquidation.<SYMBOL>`, in Bybit's shapes.
    pub(crate) fn set_bybit(&mut self, category: BybitCategory) {
        self.bybit = Some(category);
        for s in &mut self.symbols {
            s.bybit = Some(category);
            s.names.trade = if category == BybitCategory::Option {
                format!("publicTrade.{}", s.spec.base)
            } else {
                format!("publicTrade.{}", s.spec.name)
            };
            s.names.option_trade = s.names.trade.clone();
            s.names.force = format!("allLiquidation.{}", s.spec.name);
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

    fn by_lower(&self, s: &str) -> Option<&SymbolState> {
        self.by_lower.get(s).map(|i| &self.symbols[*i])
    }

    fn by_lower_mut(&mut self, s: &str) -> Option<&mut SymbolState> {
        let i = *self.by_lower.get(s)?;
        Some(&mut self.symbols[i])
    }

    /// Advances every book by `elapsed_ms` worth of actions, then flushes the depth
    /// windows and liquidations that are due. Only streams in `tracked` get payloads.
    pub(crate) fn tick(&mut self, now_ms: u64, elapsed_ms: u64, tracked: &HashSet<String>, out: &mut Vec<Emit>) {
        let kind = self.kind;
        let per_ms = self.timing.actions_per_sec / 1000.0 / self.timing.scale.max(1e-6);
        for s in &mut self.symbols {
            s.action_credit += per_ms * elapsed_ms as f64;
            while s.action_credit >= 1.0 {
                s.action_credit -= 1.0;
                act(kind, s, now_ms, tracked, out);
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
                    flush_window(kind, s, i, now_ms, tracked, out);
                }
            }
        }
        if now_ms >= self.next_liq_flush {
            // Bybit pushes `allLiquidation` every 500 ms, Binance `forceOrder` every second.
            let period = if self.bybit.is_some() { 500 } else { 1000 };
            self.next_liq_flush = now_ms + self.timing.cadence(period).as_millis() as u64;
            for s in &mut self.symbols {
                if let Some(l) = s.liquidation.take() {
                    let all = tracked.contains("!forceOrder@arr");
                    if all || tracked.contains(&s.names.force) {
                        let p = match s.bybit {
                            Some(cat) => crate::bybit::encode::liquidation_payload(cat, s, &l, now_ms),
                            None => force_order_payload(kind, s, &l, now_ms),
                        };
                        if tracked.contains(&s.names.force) {
                            out.push(Emit { stream: s.names.force.clone(), payload: p.clone(), id: None });
                        }
                        if all {
                            out.push(Emit { stream: "!forceOrder@arr".into(), payload: p, id: None });
                        }
                    }
                }
            }
        }
    }

    /// Renders a snapshot-style topic (tickers, klines, partial depth, ...).
    /// `last_u` is the topic's own previous final update id (partial depth `pu`).
    pub(crate) fn render(&mut self, topic: &Topic, now_ms: u64, last_u: &mut u64) -> Vec<(String, Option<u64>)> {
        let kind = self.kind;
        match topic {
            Topic::Partial(sym, levels, _) => {
                let Some(s) = self.by_lower(sym) else { return vec![] };
                let p = partial_payload(kind, s, *levels, now_ms, last_u);
                vec![(p, Some(s.update_id))]
            }
            Topic::Ticker(sym) | Topic::OptionTicker(sym) => {
                self.by_lower(sym).map(|s| vec![(ticker_payload(kind, s, now_ms, None), None)]).unwrap_or_default()
            }
            Topic::Rolling(sym, w) => {
                self.by_lower(sym).map(|s| vec![(ticker_payload(kind, s, now_ms, Some(w)), None)]).unwrap_or_default()
            }
            Topic::MiniTicker(sym) => {
                self.by_lower(sym).map(|s| vec![(mini_ticker_payload(kind, s, now_ms), None)]).unwrap_or_default()
            }
            Topic::AllMiniTicker => {
                let mut p = String::from("[");
                for (i, s) in self.symbols.iter().enumerate() {
                    if i > 0 {
                        p.push(',');
                    }
                    p.push_str(&mini_ticker_payload(kind, s, now_ms));
                }
                p.push(']');
                vec![(p, None)]
            }
            Topic::AvgPrice(sym) => {
                self.by_lower(sym).map(|s| vec![(avg_price_payload(s, now_ms), None)]).unwrap_or_default()
            }
            Topic::MarkPrice(sym, _) => {
                self.by_lower(sym).map(|s| vec![(mark_price_payload(kind, s, now_ms), None)]).unwrap_or_default()
            }
            Topic::AllMarkPrice(_) => {
                let mut p = String::from("[");
                for (i, s) in self.symbols.iter().enumerate() {
                    if i > 0 {
                        p.push(',');
                    }
                    p.push_str(&mark_price_payload(kind, s, now_ms));
                }
                p.push(']');
                vec![(p, None)]
            }
            Topic::Kline(sym, iv) => {
                let Some(s) = self.by_lower_mut(sym) else { return vec![] };
                kline_render(kind, s, iv, now_ms)
            }
            Topic::BybitBook(sym, depth) => crate::bybit::book::render_book(self, sym, *depth, now_ms),
            Topic::BybitTicker(sym) => crate::bybit::ticker::render_ticker(self, sym, now_ms),
            Topic::BybitKline(sym, iv) => crate::bybit::kline::render_kline(self, sym, iv, now_ms),
            _ => vec![],
        }
    }

    /// Called when a kline topic starts being tracked.
    pub(crate) fn ensure_candle(&mut self, sym: &str, iv: &'static str, now_ms: u64) {
        if let Some(s) = self.by_lower_mut(sym) {
            let last = s.last;
            let tid = s.trade_id as i64;
            s.candles.entry(iv).or_insert_with(|| (new_candle(iv, now_ms, last, tid), VecDeque::new()));
        }
    }

    /// The kline of `iv` for `upper` now: the candles that closed since the
    /// last call (oldest first) and the open one. Starts the candle on first use.
    pub(crate) fn candles(&mut self, upper: &str, iv: &'static str, now_ms: u64) -> Option<(Vec<Candle>, Candle)> {
        let i = self.symbol_index(upper)?;
        let s = &mut self.symbols[i];
        let (last, tid) = (s.last, s.trade_id as i64);
        s.candles.entry(iv).or_insert_with(|| (new_candle(iv, now_ms, last, tid), VecDeque::new()));
        roll_candle(s, iv, now_ms)
    }

    /// The REST `depth` body for `symbol` (upper case) with `limit` levels.
    pub(crate) fn depth_body(&self, copy: &BookCopy, s: &SymbolState, now_ms: u64) -> String {
        let mut p = String::with_capacity(64 + 40 * (copy.bids.len() + copy.asks.len()));
        let _ = write!(p, "{{\"lastUpdateId\":{}", copy.last_update_id);
        if self.kind.is_derivative() {
            let _ = write!(p, ",\"E\":{now_ms},\"T\":{}", now_ms.saturating_sub(3));
        }
        p.push_str(",\"bids\":");
        levels_json(&mut p, self.kind, &s.spec, copy.bids.iter().copied());
        p.push_str(",\"asks\":");
        levels_json(&mut p, self.kind, &s.spec, copy.asks.iter().copied());
        p.push('}');
        p
    }

    /// `exchangeInfo` body.
    pub(crate) fn exchange_info(&self, now_ms: u64, weight_limit: u32) -> String {
        let kind = self.kind;
        let mut syms = Vec::new();
        for s in &self.symbols {
            let spec = &s.spec;
            let mut tick = String::new();
            fmt_dec(&mut tick, 1, spec.price_decimals, dec_p(kind, spec));
            let mut step = String::new();
            fmt_dec(&mut step, 1, spec.qty_decimals, dec_q(kind, spec));
            let filters = serde_json::json!([
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
            ]);
            let mut v = serde_json::json!({
                "symbol": spec.name,
                "status": "TRADING",
                "baseAsset": spec.base,
                "quoteAsset": spec.quote,
                "baseAssetPrecision": 8,
                "quoteAssetPrecision": 8,
                "filters": filters,
            });
            if let Some(o) = v.as_object_mut() {
                match kind {
                    MarketKind::Spot => {
                        o.insert("orderTypes".into(), serde_json::json!(["LIMIT", "MARKET"]));
                        o.insert("isSpotTradingAllowed".into(), true.into());
                    }
                    MarketKind::UsdM | MarketKind::CoinM => {
                        let perp = spec.name.ends_with("_PERP") || kind == MarketKind::UsdM;
                        o.insert("pair".into(), format!("{}{}", spec.base, spec.quote).into());
                        o.insert("contractType".into(), if perp { "PERPETUAL" } else { "CURRENT_QUARTER" }.into());
                        o.insert("pricePrecision".into(), spec.price_decimals.into());
                        o.insert("quantityPrecision".into(), spec.qty_decimals.into());
                        o.insert(
                            "marginAsset".into(),
                            if kind == MarketKind::UsdM { "USDT" } else { &spec.base }.into(),
                        );
                        if kind == MarketKind::CoinM {
                            o.insert("contractSize".into(), if spec.base == "BTC" { 100 } else { 10 }.into());
                            o.insert("contractStatus".into(), "TRADING".into());
                        }
                    }
                    MarketKind::Options => {
                        o.insert("underlying".into(), format!("{}USDT", spec.base).into());
                        let side = if spec.name.ends_with('C') { "CALL" } else { "PUT" };
                        o.insert("side".into(), side.into());
                        let strike = spec.name.split('-').nth(2).unwrap_or("0");
                        o.insert("strikePrice".into(), strike.into());
                        o.insert("unit".into(), 1.into());
                    }
                }
            }
            syms.push(v);
        }
        let info = serde_json::json!({
            "timezone": "UTC",
            "serverTime": now_ms,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            ],
            "exchangeFilters": [],
            if kind == MarketKind::Options { "optionSymbols" } else { "symbols" }: syms,
        });
        info.to_string()
    }
}

fn dec_p(kind: MarketKind, spec: &SymbolSpec) -> u32 {
    if kind == MarketKind::Spot { 8 } else { spec.price_decimals }
}

fn dec_q(kind: MarketKind, spec: &SymbolSpec) -> u32 {
    if kind == MarketKind::Spot { 8 } else { spec.qty_decimals }
}

fn px(out: &mut String, kind: MarketKind, spec: &SymbolSpec, ticks: i64) {
    out.push('"');
    fmt_dec(out, ticks as i128, spec.price_decimals, dec_p(kind, spec));
    out.push('"');
}

fn qty(out: &mut String, kind: MarketKind, spec: &SymbolSpec, lots: i128) {
    out.push('"');
    fmt_dec(out, lots, spec.qty_decimals, dec_q(kind, spec));
    out.push('"');
}

fn quote_amt(out: &mut String, spec: &SymbolSpec, v: i128) {
    out.push('"');
    fmt_dec(out, v, spec.price_decimals + spec.qty_decimals, 8.max(spec.price_decimals + spec.qty_decimals));
    out.push('"');
}

fn levels_json(out: &mut String, kind: MarketKind, spec: &SymbolSpec, levels: impl Iterator<Item = (i64, i64)>) {
    out.push('[');
    for (i, (p, q)) in levels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        px(out, kind, spec, p);
        out.push(',');
        qty(out, kind, spec, q as i128);
        out.push(']');
    }
    out.push(']');
}

/// One random book action: add liquidity, cancel, or a taker order.
fn act(kind: MarketKind, s: &mut SymbolState, now_ms: u64, tracked: &HashSet<String>, out: &mut Vec<Emit>) {
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
        take(kind, s, now_ms, unit, tracked, out);
    }
    maintain(s, deriv, unit);
    let top = s.top_of_book();
    if top != s.top {
        s.top = top;
        if tracked.contains(&s.names.book_ticker) {
            out.push(Emit {
                stream: s.names.book_ticker.clone(),
                payload: book_ticker_payload(kind, s, now_ms),
                id: Some(s.update_id),
            });
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
fn take(kind: MarketKind, s: &mut SymbolState, now_ms: u64, unit: i64, tracked: &HashSet<String>, out: &mut Vec<Emit>) {
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
    let want_trade = tracked.contains(&s.names.trade) || tracked.contains(&s.names.option_trade);
    let want_agg = tracked.contains(&s.names.agg);
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
                    stream: if kind == MarketKind::Options {
                        s.names.option_trade.clone()
                    } else {
                        s.names.trade.clone()
                    },
                    payload: trade_payload(kind, s, price, q, buy, now_ms),
                    id: Some(s.trade_id),
                });
            }
        }
        s.agg_id += 1;
        if want_agg {
            out.push(Emit {
                stream: s.names.agg.clone(),
                payload: agg_payload(kind, s, price, fill, first, buy, now_ms),
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
    #[allow(clippy::too_many_arguments)] // one call site, all plain values
    pub(crate) fn user_take(
        &mut self,
        upper: &str,
        buy: bool,
        qty: i64,
        limit: Option<i64>,
        now_ms: u64,
        tracked: &HashSet<String>,
        out: &mut Vec<Emit>,
    ) -> Vec<Fill> {
        let kind = self.kind;
        let Some(&i) = self.by_upper.get(upper) else { return vec![] };
        let s = &mut self.symbols[i];
        let plan = s.preview_take(buy, qty, limit);
        if plan.is_empty() {
            return vec![];
        }
        let want_trade = tracked.contains(&s.names.trade);
        let want_agg = tracked.contains(&s.names.agg);
        let mut fills = Vec::with_capacity(plan.len());
        for (price, q) in plan {
            let level = if buy { s.asks.get(&price) } else { s.bids.get(&price) }.copied().unwrap_or(0);
            s.set_level(!buy, price, level - q);
            s.trade_id += 1;
            let first = s.trade_id;
            record_trade(s, price, q, buy, now_ms);
            if want_trade {
                out.push(Emit {
                    stream: s.names.trade.clone(),
                    payload: trade_payload(kind, s, price, q, buy, now_ms),
                    id: Some(s.trade_id),
                });
            }
            s.agg_id += 1;
            if want_agg {
                out.push(Emit {
                    stream: s.names.agg.clone(),
                    payload: agg_payload(kind, s, price, q, first, buy, now_ms),
                    id: Some(s.agg_id),
                });
            }
            fills.push(Fill { price, qty: q, trade_id: s.trade_id });
        }
        s.bump(kind.is_derivative());
        let top = s.top_of_book();
        if top != s.top {
            s.top = top;
            if tracked.contains(&s.names.book_ticker) {
                out.push(Emit {
                    stream: s.names.book_ticker.clone(),
                    payload: book_ticker_payload(kind, s, now_ms),
                    id: Some(s.update_id),
                });
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
    for (iv, (c, pending)) in s.candles.iter_mut() {
        if now_ms > c.close_time {
            if pending.len() >= PENDING_CANDLES {
                pending.pop_front();
            }
            pending.push_back(c.clone());
            *c = new_candle(iv, now_ms, c.c, tid - 1);
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

fn new_candle(iv: &str, now_ms: u64, last: i64, last_tid: i64) -> Candle {
    let (open_time, close_time) = crate::bybit::kline::kline_bounds(iv, now_ms).unwrap_or_else(|| {
        let len = topic::interval_ms(iv);
        let open_time = now_ms - now_ms % len;
        (open_time, open_time + len - 1)
    });
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

fn flush_window(
    kind: MarketKind,
    s: &mut SymbolState,
    i: usize,
    now_ms: u64,
    tracked: &HashSet<String>,
    out: &mut Vec<Emit>,
) {
    let Some(first) = s.windows[i].first else { return };
    let w = std::mem::take(&mut s.windows[i]);
    s.windows[i].prev_u = w.last;
    let name = &s.names.depth[i];
    if !tracked.contains(name) {
        return;
    }
    s.record_history(now_ms);
    let name = &s.names.depth[i];
    let spec = &s.spec;
    let mut p = String::with_capacity(128 + 40 * (w.bids.len() + w.asks.len()));
    let _ = write!(p, "{{\"e\":\"depthUpdate\",\"E\":{now_ms},");
    if kind.is_derivative() {
        let _ = write!(p, "\"T\":{},", now_ms.saturating_sub(2));
    }
    let _ = write!(p, "\"s\":\"{}\",", spec.name);
    if kind == MarketKind::CoinM {
        let _ = write!(p, "\"ps\":\"{}{}\",", spec.base, spec.quote);
    }
    let _ = write!(p, "\"U\":{first},\"u\":{}", w.last);
    if kind.is_derivative() {
        let _ = write!(p, ",\"pu\":{}", w.prev_u);
    }
    p.push_str(",\"b\":");
    levels_json(&mut p, kind, spec, w.bids.iter().rev().map(|(p, q)| (*p, *q)));
    p.push_str(",\"a\":");
    levels_json(&mut p, kind, spec, w.asks.iter().map(|(p, q)| (*p, *q)));
    p.push('}');
    out.push(Emit { stream: name.clone(), payload: p, id: Some(w.last) });
}

fn trade_payload(kind: MarketKind, s: &SymbolState, price: i64, q: i64, buy: bool, now_ms: u64) -> String {
    if let Some(category) = s.bybit {
        return crate::bybit::encode::trade_payload(category, s, price, q, buy, now_ms);
    }
    let spec = &s.spec;
    let mut p = String::with_capacity(160);
    if kind == MarketKind::Options {
        let _ = write!(
            p,
            "{{\"e\":\"trade\",\"E\":{now_ms},\"T\":{now_ms},\"s\":\"{}\",\"t\":{},\"p\":",
            spec.name, s.trade_id
        );
        px(&mut p, kind, spec, price);
        p.push_str(",\"q\":");
        qty(&mut p, kind, spec, q as i128);
        let _ = write!(p, ",\"X\":\"MARKET\",\"S\":\"{}\",\"m\":{}}}", if buy { "BUY" } else { "SELL" }, !buy);
        return p;
    }
    let _ = write!(p, "{{\"e\":\"trade\",\"E\":{now_ms},\"s\":\"{}\",\"t\":{},\"p\":", spec.name, s.trade_id);
    px(&mut p, kind, spec, price);
    p.push_str(",\"q\":");
    qty(&mut p, kind, spec, q as i128);
    // `m`: the buyer is the maker, i.e. the taker sold.
    let _ = write!(p, ",\"T\":{now_ms},\"m\":{}", !buy);
    if kind == MarketKind::Spot {
        p.push_str(",\"M\":true");
    }
    p.push('}');
    p
}

fn agg_payload(kind: MarketKind, s: &SymbolState, price: i64, q: i64, first: u64, buy: bool, now_ms: u64) -> String {
    let spec = &s.spec;
    let mut p = String::with_capacity(180);
    let _ = write!(p, "{{\"e\":\"aggTrade\",\"E\":{now_ms},");
    if kind.is_derivative() {
        let _ = write!(p, "\"a\":{},\"s\":\"{}\",", s.agg_id, spec.name);
    } else {
        let _ = write!(p, "\"s\":\"{}\",\"a\":{},", spec.name, s.agg_id);
    }
    p.push_str("\"p\":");
    px(&mut p, kind, spec, price);
    p.push_str(",\"q\":");
    qty(&mut p, kind, spec, q as i128);
    let _ = write!(p, ",\"f\":{first},\"l\":{},\"T\":{now_ms},\"m\":{}", s.trade_id, !buy);
    if kind == MarketKind::Spot {
        p.push_str(",\"M\":true");
    }
    p.push('}');
    p
}

fn book_ticker_payload(kind: MarketKind, s: &SymbolState, now_ms: u64) -> String {
    let spec = &s.spec;
    let (bp, bq, ap, aq) = s.top;
    let mut p = String::with_capacity(160);
    if kind.is_derivative() {
        let _ = write!(p, "{{\"e\":\"bookTicker\",\"u\":{},\"s\":\"{}\",", s.update_id, spec.name);
    } else {
        let _ = write!(p, "{{\"u\":{},\"s\":\"{}\",", s.update_id, spec.name);
    }
    if kind == MarketKind::CoinM {
        let _ = write!(p, "\"ps\":\"{}{}\",", spec.base, spec.quote);
    }
    p.push_str("\"b\":");
    px(&mut p, kind, spec, bp);
    p.push_str(",\"B\":");
    qty(&mut p, kind, spec, bq as i128);
    p.push_str(",\"a\":");
    px(&mut p, kind, spec, ap);
    p.push_str(",\"A\":");
    qty(&mut p, kind, spec, aq as i128);
    if kind.is_derivative() {
        let _ = write!(p, ",\"T\":{},\"E\":{now_ms}", now_ms.saturating_sub(2));
    }
    p.push('}');
    p
}

fn partial_payload(kind: MarketKind, s: &SymbolState, levels: usize, now_ms: u64, last_u: &mut u64) -> String {
    let spec = &s.spec;
    let mut p = String::with_capacity(64 + 40 * levels * 2);
    let bids = s.bids.iter().rev().take(levels).map(|(p, q)| (*p, *q));
    let asks = s.asks.iter().take(levels).map(|(p, q)| (*p, *q));
    if kind.is_derivative() {
        let prev = if *last_u == 0 { s.update_id } else { *last_u };
        let first = (prev + 1).min(s.update_id);
        let _ = write!(
            p,
            "{{\"e\":\"depthUpdate\",\"E\":{now_ms},\"T\":{},\"s\":\"{}\",",
            now_ms.saturating_sub(2),
            spec.name
        );
        if kind == MarketKind::CoinM {
            let _ = write!(p, "\"ps\":\"{}{}\",", spec.base, spec.quote);
        }
        let _ = write!(p, "\"U\":{first},\"u\":{},\"pu\":{prev},\"b\":", s.update_id);
        levels_json(&mut p, kind, spec, bids);
        p.push_str(",\"a\":");
        levels_json(&mut p, kind, spec, asks);
    } else {
        let _ = write!(p, "{{\"lastUpdateId\":{},\"bids\":", s.update_id);
        levels_json(&mut p, kind, spec, bids);
        p.push_str(",\"asks\":");
        levels_json(&mut p, kind, spec, asks);
    }
    p.push('}');
    *last_u = s.update_id;
    p
}

fn pct(out: &mut String, change: i128, base: i64) {
    // Percent with 3 decimals, computed in integers.
    let v = if base == 0 { 0 } else { change * 100_000 / base as i128 };
    out.push('"');
    fmt_dec(out, v, 3, 3);
    out.push('"');
}

fn ticker_payload(kind: MarketKind, s: &SymbolState, now_ms: u64, window: Option<&str>) -> String {
    let spec = &s.spec;
    let mut p = String::with_capacity(400);
    let e = match window {
        Some(w) => format!("{w}Ticker"),
        None => "24hrTicker".to_string(),
    };
    let _ = write!(p, "{{\"e\":\"{e}\",\"E\":{now_ms},\"s\":\"{}\",", spec.name);
    if kind == MarketKind::CoinM {
        let _ = write!(p, "\"ps\":\"{}{}\",", spec.base, spec.quote);
    }
    let change = (s.last - s.open) as i128;
    p.push_str("\"p\":\"");
    fmt_dec(&mut p, change, spec.price_decimals, dec_p(kind, spec));
    p.push_str("\",\"P\":");
    pct(&mut p, change, s.open);
    let wavg = if s.volume > 0 { (s.quote / s.volume) as i64 } else { s.last };
    if window.is_some() {
        p.push_str(",\"o\":");
        px(&mut p, kind, spec, s.open);
        p.push_str(",\"h\":");
        px(&mut p, kind, spec, s.high);
        p.push_str(",\"l\":");
        px(&mut p, kind, spec, s.low);
        p.push_str(",\"c\":");
        px(&mut p, kind, spec, s.last);
        p.push_str(",\"w\":");
        px(&mut p, kind, spec, wavg);
    } else {
        p.push_str(",\"w\":");
        px(&mut p, kind, spec, wavg);
        if kind == MarketKind::Spot {
            p.push_str(",\"x\":");
            px(&mut p, kind, spec, s.open);
        }
        p.push_str(",\"c\":");
        px(&mut p, kind, spec, s.last);
        p.push_str(",\"Q\":");
        qty(&mut p, kind, spec, s.last_qty as i128);
        if kind == MarketKind::Spot {
            let (bp, bq, ap, aq) = s.top;
            p.push_str(",\"b\":");
            px(&mut p, kind, spec, bp);
            p.push_str(",\"B\":");
            qty(&mut p, kind, spec, bq as i128);
            p.push_str(",\"a\":");
            px(&mut p, kind, spec, ap);
            p.push_str(",\"A\":");
            qty(&mut p, kind, spec, aq as i128);
        }
        p.push_str(",\"o\":");
        px(&mut p, kind, spec, s.open);
        p.push_str(",\"h\":");
        px(&mut p, kind, spec, s.high);
        p.push_str(",\"l\":");
        px(&mut p, kind, spec, s.low);
    }
    p.push_str(",\"v\":");
    qty(&mut p, kind, spec, s.volume);
    p.push_str(",\"q\":");
    quote_amt(&mut p, spec, s.quote);
    let last_id = if s.count == 0 { 0 } else { s.trade_id };
    let first_id = if s.count == 0 { 0 } else { s.first_trade_id };
    let _ = write!(p, ",\"O\":{},\"C\":{now_ms},\"F\":{first_id},\"L\":{last_id},\"n\":{}}}", s.stats_open_ms, s.count);
    p
}

fn mini_ticker_payload(kind: MarketKind, s: &SymbolState, now_ms: u64) -> String {
    let spec = &s.spec;
    let mut p = String::with_capacity(200);
    let _ = write!(p, "{{\"e\":\"24hrMiniTicker\",\"E\":{now_ms},\"s\":\"{}\",", spec.name);
    if kind == MarketKind::CoinM {
        let _ = write!(p, "\"ps\":\"{}{}\",", spec.base, spec.quote);
    }
    p.push_str("\"c\":");
    px(&mut p, kind, spec, s.last);
    p.push_str(",\"o\":");
    px(&mut p, kind, spec, s.open);
    p.push_str(",\"h\":");
    px(&mut p, kind, spec, s.high);
    p.push_str(",\"l\":");
    px(&mut p, kind, spec, s.low);
    p.push_str(",\"v\":");
    qty(&mut p, kind, spec, s.volume);
    p.push_str(",\"q\":");
    quote_amt(&mut p, spec, s.quote);
    p.push('}');
    p
}

fn avg_price_payload(s: &SymbolState, now_ms: u64) -> String {
    let spec = &s.spec;
    let wavg = if s.volume > 0 { (s.quote / s.volume) as i64 } else { s.last };
    let mut p = String::with_capacity(120);
    let _ = write!(p, "{{\"e\":\"avgPrice\",\"E\":{now_ms},\"s\":\"{}\",\"i\":\"5m\",\"w\":", spec.name);
    px(&mut p, MarketKind::Spot, spec, wavg);
    let _ = write!(p, ",\"T\":{}}}", s.last_trade_ms);
    p
}

fn mark_price_payload(kind: MarketKind, s: &SymbolState, now_ms: u64) -> String {
    let spec = &s.spec;
    let (bp, _, ap, _) = s.top;
    let mid2 = bp as i128 + ap as i128; // mid in half-ticks
    let scale = spec.price_decimals + 1;
    let mut p = String::with_capacity(200);
    let _ = write!(p, "{{\"e\":\"markPriceUpdate\",\"E\":{now_ms},\"s\":\"{}\",\"p\":\"", spec.name);
    fmt_dec(&mut p, mid2 * 5, scale, 8.max(scale));
    p.push_str("\",\"i\":\"");
    fmt_dec(&mut p, mid2 * 5 - mid2 / 2000, scale, 8.max(scale));
    p.push_str("\",\"P\":\"");
    fmt_dec(&mut p, mid2 * 5 - mid2 / 3000, scale, 8.max(scale));
    let delivery = kind == MarketKind::CoinM && !spec.name.ends_with("_PERP");
    if delivery {
        p.push_str("\",\"r\":\"\",\"T\":0}");
    } else {
        let eight_h = 8 * 3_600_000;
        let next = now_ms - now_ms % eight_h + eight_h;
        let _ = write!(p, "\",\"r\":\"0.00010000\",\"T\":{next}}}");
    }
    p
}

fn force_order_payload(kind: MarketKind, s: &SymbolState, l: &Liquidation, now_ms: u64) -> String {
    let spec = &s.spec;
    let mut p = String::with_capacity(240);
    let _ = write!(
        p,
        "{{\"e\":\"forceOrder\",\"E\":{now_ms},\"o\":{{\"s\":\"{}\",\"S\":\"{}\",\"o\":\"LIMIT\",\"f\":\"IOC\",\"q\":",
        spec.name,
        if l.sell { "SELL" } else { "BUY" }
    );
    qty(&mut p, kind, spec, l.qty as i128);
    p.push_str(",\"p\":");
    px(&mut p, kind, spec, l.price);
    p.push_str(",\"ap\":");
    px(&mut p, kind, spec, l.avg);
    p.push_str(",\"X\":\"FILLED\",\"l\":");
    qty(&mut p, kind, spec, l.qty as i128);
    p.push_str(",\"z\":");
    qty(&mut p, kind, spec, l.qty as i128);
    if kind == MarketKind::CoinM {
        let _ = write!(p, ",\"ps\":\"{}{}\"", spec.base, spec.quote);
    }
    let _ = write!(p, ",\"T\":{}}}}}", l.time);
    p
}

/// The candles of `iv` that closed since the last call (oldest first) and the
/// open one, rolling over when the open one's interval has ended.
fn roll_candle(s: &mut SymbolState, iv: &'static str, now_ms: u64) -> Option<(Vec<Candle>, Candle)> {
    let last = s.last;
    let tid = s.trade_id as i64;
    let (c, pending) = s.candles.get_mut(iv)?;
    let mut closed: Vec<Candle> = pending.drain(..).collect();
    if now_ms > c.close_time {
        closed.push(c.clone());
        *c = new_candle(iv, now_ms, last, tid);
    }
    Some((closed, c.clone()))
}

fn kline_render(kind: MarketKind, s: &mut SymbolState, iv: &'static str, now_ms: u64) -> Vec<(String, Option<u64>)> {
    let Some((closed, c)) = roll_candle(s, iv, now_ms) else { return vec![] };
    let mut out = Vec::new();
    let spec = &s.spec;
    for done in &closed {
        out.push((kline_payload(kind, spec, iv, done, true, now_ms), None));
    }
    out.push((kline_payload(kind, spec, iv, &c, false, now_ms), None));
    out
}

fn kline_payload(kind: MarketKind, spec: &SymbolSpec, iv: &str, c: &Candle, closed: bool, now_ms: u64) -> String {
    let mut p = String::with_capacity(400);
    let (f, l) = if c.n == 0 { (-1, -1) } else { (c.first_trade, c.last_trade) };
    let _ = write!(
        p,
        "{{\"e\":\"kline\",\"E\":{now_ms},\"s\":\"{}\",\"k\":{{\"t\":{},\"T\":{},\"s\":\"{}\",\"i\":\"{iv}\",\"f\":{f},\"L\":{l},\"o\":",
        spec.name, c.open_time, c.close_time, spec.name
    );
    px(&mut p, kind, spec, c.o);
    p.push_str(",\"c\":");
    px(&mut p, kind, spec, c.c);
    p.push_str(",\"h\":");
    px(&mut p, kind, spec, c.h);
    p.push_str(",\"l\":");
    px(&mut p, kind, spec, c.l);
    p.push_str(",\"v\":");
    qty(&mut p, kind, spec, c.v);
    let _ = write!(p, ",\"n\":{},\"x\":{closed},\"q\":", c.n);
    quote_amt(&mut p, spec, c.q);
    p.push_str(",\"V\":");
    qty(&mut p, kind, spec, c.taker_v);
    p.push_str(",\"Q\":");
    quote_amt(&mut p, spec, c.taker_q);
    p.push_str(",\"B\":\"0\"}}");
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Timing;

    fn all_streams(m: &Market) -> HashSet<String> {
        let mut t = HashSet::new();
        for s in &m.symbols {
            t.insert(s.names.trade.clone());
            t.insert(s.names.agg.clone());
            t.insert(s.names.book_ticker.clone());
            t.extend(s.names.depth.iter().cloned());
        }
        t
    }

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

    /// The diff stream rebuilds the true book exactly: U/u chain with no gaps, and
    /// applying every diff to the starting book yields the generator's book.
    #[test]
    fn diffs_replay_to_the_true_book_and_chain_without_gaps() {
        for kind in [MarketKind::Spot, MarketKind::UsdM] {
            let specs = SymbolSpec::defaults(kind);
            let mut m = Market::new(kind, &specs[..2], 7, &Timing::default(), 1_000);
            let tracked = all_streams(&m);
            let start = m.symbols[0].copy(usize::MAX, 0);
            let mut replica: (BTreeMap<i64, i64>, BTreeMap<i64, i64>) =
                (start.bids.iter().copied().collect(), start.asks.iter().copied().collect());
            let mut prev_u = start.last_update_id;
            let name = m.symbols[0].names.depth[1].clone();
            let spec = m.symbols[0].spec.clone();
            let parse = |s: &str| -> i64 {
                let v: f64 = s.parse().unwrap();
                (v * 10f64.powi(spec.price_decimals as i32)).round() as i64
            };
            let parse_q = |s: &str| -> i64 {
                let v: f64 = s.parse().unwrap();
                (v * 10f64.powi(spec.qty_decimals as i32)).round() as i64
            };
            let mut now = 1_000;
            let mut diffs = 0;
            for _ in 0..3000 {
                now += 10;
                let mut out = Vec::new();
                m.tick(now, 10, &tracked, &mut out);
                for e in out.into_iter().filter(|e| e.stream == name) {
                    let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
                    let (u_first, u_last) = (v["U"].as_u64().unwrap(), v["u"].as_u64().unwrap());
                    if kind.is_derivative() {
                        assert_eq!(v["pu"].as_u64().unwrap(), prev_u, "pu chain");
                    } else {
                        assert_eq!(u_first, prev_u + 1, "U chain");
                    }
                    prev_u = u_last;
                    diffs += 1;
                    for (key, side) in [("b", &mut replica.0), ("a", &mut replica.1)] {
                        for lvl in v[key].as_array().unwrap() {
                            let (p, q) = (parse(lvl[0].as_str().unwrap()), parse_q(lvl[1].as_str().unwrap()));
                            if q == 0 {
                                side.remove(&p);
                            } else {
                                side.insert(p, q);
                            }
                        }
                    }
                }
            }
            assert!(diffs >= 50, "{kind:?}: only {diffs} diffs");
            // Levels flushed so far must equal the truth once the last window flushed.
            let mut out = Vec::new();
            for i in 0..m.speeds.len() {
                flush_window(kind, &mut m.symbols[0], i, now, &tracked, &mut out);
            }
            for e in out.into_iter().filter(|e| e.stream == name) {
                let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
                for (key, side) in [("b", &mut replica.0), ("a", &mut replica.1)] {
                    for lvl in v[key].as_array().unwrap() {
                        let (p, q) = (parse(lvl[0].as_str().unwrap()), parse_q(lvl[1].as_str().unwrap()));
                        if q == 0 {
                            side.remove(&p);
                        } else {
                            side.insert(p, q);
                        }
                    }
                }
            }
            assert_eq!(replica.0, m.symbols[0].bids, "{kind:?} bids");
            assert_eq!(replica.1, m.symbols[0].asks, "{kind:?} asks");
            let (bb, _, ba, _) = m.symbols[0].top_of_book();
            assert!(bb < ba, "book crossed");
        }
    }

    #[test]
    fn same_seed_same_data() {
        let run = || {
            let specs = SymbolSpec::defaults(MarketKind::Spot);
            let mut m = Market::new(MarketKind::Spot, &specs[..3], 42, &Timing::default(), 0);
            let tracked = all_streams(&m);
            let mut all = Vec::new();
            for i in 1..300 {
                let mut out = Vec::new();
                m.tick(i * 10, 10, &tracked, &mut out);
                all.extend(out.into_iter().map(|e| e.payload));
            }
            all
        };
        assert_eq!(run(), run());
    }
}
