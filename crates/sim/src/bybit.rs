//! Bybit v5 public WebSocket (PROTOCOLS.md §5) for the spot, linear, inverse
//! and option categories: the `op` requests (`ping`, `subscribe`,
//! `unsubscribe`) with the per-category reply shapes, the per-connection topic
//! limits (21 000 characters; option 2000 topics), and the `publicTrade`,
//! `orderbook`, `tickers`, `kline` and `allLiquidation` payloads derived from
//! the true books and the generator's trades.
//!
//! Order-book topics keep what they last sent (the top `depth` levels): each
//! flush diffs the true book's top levels against it, so a delta carries the
//! changed levels, levels that left the window as size `"0"` and levels that
//! entered it. `u` grows by one per message of the topic, `seq` is the book's
//! update id (comparable across depths). A new subscriber gets that view as a
//! `snapshot` (same `u`), in order before the topic's next delta. The restart
//! fault makes the next message of a topic a `snapshot` with `u = 1`.
//!
//! Written from the venue's documentation and captures only; it shares nothing
//! with the client's wire code.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::{BybitCategory, SymbolSpec};
use crate::hub::{Hub, HubState, KillMode, Periodic};
use crate::market::{BookCopy, Candle, HISTORY_DEPTH, Liquidation, Market, SymbolState, fmt_dec};
use crate::topic::Topic;
use crate::ws;

/// The order-book depths served on spot, linear and inverse.
const DEPTHS: [usize; 4] = [1, 50, 200, 1000];

/// The order-book depths served on option.
const OPTION_DEPTHS: [usize; 2] = [25, 100];

/// The order-book depths of a category.
pub(crate) fn depths(cat: BybitCategory) -> &'static [usize] {
    if cat == BybitCategory::Option { &OPTION_DEPTHS } else { &DEPTHS }
}

/// Arguments per spot subscribe request.
const SPOT_MAX_ARGS: usize = 10;

/// Push cadence (ms, before scaling) of `orderbook.<depth>`.
pub(crate) fn book_period_ms(depth: usize) -> u64 {
    match depth {
        1 => 10,
        25 | 50 => 20,
        100 | 200 => 100,
        _ => 200,
    }
}

/// The kline intervals, as the venue writes them.
pub(crate) const KLINE_INTERVALS: [&str; 13] =
    ["1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M"];

/// Push cadence (ms, before scaling) of `kline.<interval>` (the venue: 1–60 s).
pub(crate) const KLINE_PERIOD_MS: u64 = 1000;

const DAY_MS: u64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month) of a day since 1970-01-01.
fn year_month(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m)
}

/// The bucket `[start, end]` (ms) of a Bybit kline interval holding `now_ms`:
/// minutes and days aligned on the epoch, weeks starting on Monday, calendar
/// months. `None` for anything that is not a Bybit interval.
pub(crate) fn kline_bounds(iv: &str, now_ms: u64) -> Option<(u64, u64)> {
    let day = (now_ms / DAY_MS) as i64;
    let (start, end) = match iv {
        "D" => (now_ms - now_ms % DAY_MS, now_ms - now_ms % DAY_MS + DAY_MS),
        "W" => {
            // 1970-01-01 was a Thursday: three days after a Monday.
            let monday = (day - (day + 3).rem_euclid(7)).max(0) as u64 * DAY_MS;
            (monday, monday + 7 * DAY_MS)
        }
        "M" => {
            let (y, m) = year_month(day);
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let start = days_from_civil(y, m, 1).max(0) as u64 * DAY_MS;
            (start, days_from_civil(ny, nm, 1).max(0) as u64 * DAY_MS)
        }
        _ if KLINE_INTERVALS.contains(&iv) => {
            let len = iv.parse::<u64>().ok()? * 60_000;
            (now_ms - now_ms % len, now_ms - now_ms % len + len)
        }
        _ => return None,
    };
    Some((start, end - 1))
}

/// One `orderbook.<depth>.<SYMBOL>` topic: what it last sent.
#[derive(Debug)]
pub(crate) struct BookTopic {
    /// The last message's `u`.
    pub u: u64,
    /// The last message's `seq`.
    pub seq: u64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// When the last message was rendered (venue ms).
    last_ms: u64,
    /// The next message is a restart snapshot with `u = 1`.
    pub restart: bool,
    /// The view after each message, keyed by `u` (ascending).
    history: VecDeque<BookCopy>,
}

impl BookTopic {
    fn new(s: &SymbolState, depth: usize, name: &str, now_ms: u64) -> BookTopic {
        // A fixed, name-derived start keeps runs reproducible.
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let (bids, asks) = top(s, depth);
        let mut t = BookTopic {
            u: 1_000_000 + h % 50_000_000,
            seq: s.update_id,
            bids,
            asks,
            last_ms: now_ms,
            restart: false,
            history: VecDeque::new(),
        };
        t.record(s.history_cap, now_ms);
        t
    }

    fn record(&mut self, cap: usize, now_ms: u64) {
        if cap == 0 {
            return;
        }
        if self.history.back().is_some_and(|c| c.last_update_id >= self.u) {
            self.history.clear();
        }
        while self.history.len() >= cap {
            self.history.pop_front();
        }
        self.history.push_back(BookCopy {
            last_update_id: self.u,
            bids: self.bids.iter().rev().take(HISTORY_DEPTH).map(|(p, q)| (*p, *q)).collect(),
            asks: self.asks.iter().take(HISTORY_DEPTH).map(|(p, q)| (*p, *q)).collect(),
            taken_ms: now_ms,
        });
    }

    /// The view right after the message with `u`, if still in the history.
    pub(crate) fn at(&self, u: u64) -> Option<&BookCopy> {
        let i = self.history.binary_search_by_key(&u, |c| c.last_update_id).ok()?;
        self.history.get(i)
    }
}

fn top(s: &SymbolState, depth: usize) -> (BTreeMap<i64, i64>, BTreeMap<i64, i64>) {
    (
        s.bids.iter().rev().take(depth).map(|(p, q)| (*p, *q)).collect(),
        s.asks.iter().take(depth).map(|(p, q)| (*p, *q)).collect(),
    )
}

pub(crate) fn book_topic(symbol: &str, depth: usize) -> String {
    format!("orderbook.{depth}.{symbol}")
}

/// A decimal as the venue writes it: linear and inverse keep the
/// instrument's decimals (`"65114.20"`), spot and option trim trailing zeros
/// (`"65140"`, `"0.885797"`).
fn dec(cat: BybitCategory, v: i128, scale: u32) -> String {
    let mut s = String::new();
    fmt_dec(&mut s, v, scale, scale);
    if !cat.is_futures() {
        trim(&mut s);
    }
    s
}

/// Drops trailing fraction zeros (and a bare point).
fn trim(s: &mut String) {
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
}

/// A decimal with trailing zeros trimmed, in every category (klines).
fn trimmed(v: i128, scale: u32) -> String {
    let mut s = String::new();
    fmt_dec(&mut s, v, scale, scale);
    trim(&mut s);
    s
}

/// An `f64` with `d` decimals, `"0"` when it is not finite.
fn float(x: f64, d: usize) -> String {
    if x.is_finite() { format!("{x:.d$}") } else { "0".to_string() }
}

fn price(cat: BybitCategory, spec: &SymbolSpec, ticks: i64) -> String {
    dec(cat, ticks as i128, spec.price_decimals)
}

fn size(cat: BybitCategory, spec: &SymbolSpec, lots: i128) -> String {
    dec(cat, lots, spec.qty_decimals)
}

/// Levels as `[price, size]` strings.
pub(crate) fn level_strings(cat: BybitCategory, spec: &SymbolSpec, levels: &[(i64, i64)]) -> Vec<[String; 2]> {
    levels.iter().map(|(p, q)| [price(cat, spec, *p), size(cat, spec, *q as i128)]).collect()
}

fn levels_json<'a>(
    out: &mut String,
    cat: BybitCategory,
    spec: &SymbolSpec,
    levels: impl Iterator<Item = (&'a i64, &'a i64)>,
) {
    out.push('[');
    for (i, (p, q)) in levels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[\"{}\",\"{}\"]", price(cat, spec, *p), size(cat, spec, *q as i128));
    }
    out.push(']');
}

/// `{"topic",["ts",]"type",["ts",]["id",]"data":...` up to the data value:
/// spot puts `ts` before `type`, linear and inverse after (clients must not
/// depend on key order); option writes `ts` first and adds the message `id`
/// (`<topic>-<seq>-<ts>`, as the option captures do).
fn head(out: &mut String, cat: BybitCategory, topic: &str, kind: &str, ts: u64, seq: u64) {
    match cat {
        BybitCategory::Spot => {
            let _ = write!(out, "{{\"topic\":\"{topic}\",\"ts\":{ts},\"type\":\"{kind}\",\"data\":");
        }
        BybitCategory::Linear | BybitCategory::Inverse => {
            let _ = write!(out, "{{\"topic\":\"{topic}\",\"type\":\"{kind}\",\"ts\":{ts},\"data\":");
        }
        BybitCategory::Option => {
            let _ = write!(
                out,
                "{{\"topic\":\"{topic}\",\"ts\":{ts},\"type\":\"{kind}\",\"id\":\"{topic}-{seq}-{ts}\",\"data\":"
            );
        }
    }
}

/// What the option payloads derive from an option's name and book: strike,
/// call or put, years to expiry, the underlying's price and a volatility.
struct OptionModel {
    strike: f64,
    call: bool,
    years: f64,
    spot: f64,
    sigma: f64,
}

/// Parses `BASE-DDMMMYY-STRIKE-C|P[-...]`. Expiry at 08:00 UTC.
fn option_parts(name: &str) -> Option<(u64, f64, bool)> {
    let mut it = name.split('-');
    let _base = it.next()?;
    let exp = it.next()?;
    let strike: f64 = it.next()?.parse().ok()?;
    let call = match it.next()? {
        "C" => true,
        "P" => false,
        _ => return None,
    };
    if exp.len() < 6 || !exp.is_ascii() {
        return None;
    }
    let (d, rest) = exp.split_at(exp.len() - 5);
    let (mon, yy) = rest.split_at(3);
    const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    let m = MONTHS.iter().position(|x| *x == mon)? as u32 + 1;
    let d: u32 = d.parse().ok().filter(|d| (1..=31).contains(d))?;
    let y: i64 = yy.parse().ok()?;
    let days = days_from_civil(2000 + y, m, d).max(0) as u64;
    Some((days * DAY_MS + 8 * 3_600_000, strike, call))
}

fn option_model(s: &SymbolState, now_ms: u64) -> OptionModel {
    let mid = s.mid() as f64 / 10f64.powi(s.spec.price_decimals as i32);
    let (expiry, strike, call) = option_parts(&s.spec.name).unwrap_or((now_ms + 30 * DAY_MS, mid.max(1.0), true));
    let years = (expiry.saturating_sub(now_ms) as f64 / (365.25 * DAY_MS as f64)).max(1.0 / 8760.0);
    let spot = crate::config::spot_price(&s.spec.base).unwrap_or(strike).max(1e-9);
    let strike = strike.max(1e-9);
    let sigma = 0.5 + 0.3 * (strike / spot).ln().abs();
    OptionModel { strike, call, years, spot, sigma }
}

/// The standard normal distribution function (Abramowitz–Stegun 7.1.26).
fn norm_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

impl OptionModel {
    /// Black–Scholes delta, gamma, vega (per volatility point) and theta (per day).
    fn greeks(&self) -> (f64, f64, f64, f64) {
        let st = self.sigma * self.years.sqrt();
        let d1 = ((self.spot / self.strike).ln() + 0.5 * self.sigma * self.sigma * self.years) / st;
        let pdf = (-0.5 * d1 * d1).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let delta = if self.call { norm_cdf(d1) } else { norm_cdf(d1) - 1.0 };
        let gamma = pdf / (self.spot * st);
        let vega = self.spot * pdf * self.years.sqrt() / 100.0;
        let theta = -(self.spot * pdf * self.sigma) / (2.0 * self.years.sqrt()) / 365.0;
        (delta, gamma, vega, theta)
    }
}

/// One `publicTrade.<SYMBOL>` message holding one trade (option:
/// `publicTrade.<baseCoin>` with the mark price `mP`, index price `iP`, mark
/// volatility `mIv` and the trade's volatility `iv`).
pub(crate) fn trade_payload(cat: BybitCategory, s: &SymbolState, px: i64, q: i64, buy: bool, now_ms: u64) -> String {
    let spec = &s.spec;
    let mut p = String::with_capacity(256);
    let topic = if cat == BybitCategory::Option {
        format!("publicTrade.{}", spec.base)
    } else {
        format!("publicTrade.{}", spec.name)
    };
    head(&mut p, cat, &topic, "snapshot", now_ms, s.update_id);
    let _ = write!(
        p,
        "[{{\"T\":{now_ms},\"s\":\"{}\",\"S\":\"{}\",\"v\":\"{}\",\"p\":\"{}\",",
        spec.name,
        if buy { "Buy" } else { "Sell" },
        size(cat, spec, q as i128),
        price(cat, spec, px)
    );
    if cat.is_futures() {
        let dir = ["PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick"][(s.tick_dir & 3) as usize];
        let _ = write!(p, "\"L\":\"{dir}\",");
    }
    if cat == BybitCategory::Option {
        let m = option_model(s, now_ms);
        let mid = s.mid().max(1);
        let iv = (m.sigma * px as f64 / mid as f64).clamp(0.01, 5.0);
        let _ = write!(
            p,
            "\"i\":\"{}\",\"BT\":false,\"seq\":{},\"mP\":\"{}\",\"iP\":\"{}\",\"mIv\":\"{}\",\"iv\":\"{}\"}}]}}",
            s.trade_id,
            s.update_id,
            price(cat, spec, mid),
            float(m.spot, 2),
            float(m.sigma, 4),
            float(iv, 4)
        );
        return p;
    }
    let _ = write!(p, "\"i\":\"{}\",\"BT\":false,\"RPI\":false,\"seq\":{}}}]}}", s.trade_id, s.update_id);
    p
}

fn book_payload(cat: BybitCategory, spec: &SymbolSpec, name: &str, kind: &str, t: &BookTopic, now_ms: u64) -> String {
    book_payload_levels(cat, spec, name, kind, t.bids.iter().rev(), t.asks.iter(), t.u, t.seq, now_ms)
}

#[allow(clippy::too_many_arguments)] // private helper, plain values
fn book_payload_levels<'a>(
    cat: BybitCategory,
    spec: &SymbolSpec,
    name: &str,
    kind: &str,
    bids: impl Iterator<Item = (&'a i64, &'a i64)>,
    asks: impl Iterator<Item = (&'a i64, &'a i64)>,
    u: u64,
    seq: u64,
    now_ms: u64,
) -> String {
    let mut p = String::with_capacity(256);
    head(&mut p, cat, name, kind, now_ms, seq);
    let _ = write!(p, "{{\"s\":\"{}\",\"b\":", spec.name);
    levels_json(&mut p, cat, spec, bids);
    p.push_str(",\"a\":");
    levels_json(&mut p, cat, spec, asks);
    let _ = write!(p, ",\"u\":{u},\"seq\":{seq}}},\"cts\":{}}}", now_ms.saturating_sub(1));
    p
}

/// The next message of `orderbook.<depth>.<sym>`, if there is one: a delta
/// of what changed in the window (a snapshot on depth 1, which re-sends its
/// unchanged book every 3 s with the same `u`), or the restart snapshot.
pub(crate) fn render_book(m: &mut Market, sym: &str, depth: usize, now_ms: u64) -> Vec<(String, Option<u64>)> {
    let Some(i) = m.symbol_index(sym) else { return vec![] };
    let s = &m.symbols[i];
    let Some(cat) = s.bybit else { return vec![] };
    let name = book_topic(sym, depth);
    let resend_ms = m.timing.cadence(3000).as_millis() as u64;
    let Some(t) = m.bybit_books.get_mut(&name) else { return vec![] };
    let (bids, asks) = top(s, depth);
    if t.restart {
        t.restart = false;
        t.u = 1;
        t.seq = s.update_id;
        t.bids = bids;
        t.asks = asks;
        t.last_ms = now_ms;
        t.record(s.history_cap, now_ms);
        return vec![(book_payload(cat, &s.spec, &name, "snapshot", t, now_ms), Some(t.u))];
    }
    let diff = |old: &BTreeMap<i64, i64>, new: &BTreeMap<i64, i64>| -> BTreeMap<i64, i64> {
        let mut d: BTreeMap<i64, i64> = old.keys().filter(|p| !new.contains_key(p)).map(|p| (*p, 0)).collect();
        d.extend(new.iter().filter(|(p, q)| old.get(p) != Some(q)).map(|(p, q)| (*p, *q)));
        d
    };
    let db = diff(&t.bids, &bids);
    let da = diff(&t.asks, &asks);
    if db.is_empty() && da.is_empty() {
        if depth == 1 && now_ms.saturating_sub(t.last_ms) >= resend_ms {
            t.last_ms = now_ms;
            return vec![(book_payload(cat, &s.spec, &name, "snapshot", t, now_ms), Some(t.u))];
        }
        return vec![];
    }
    t.u += 1;
    t.seq = s.update_id.max(t.seq + 1);
    t.bids = bids;
    t.asks = asks;
    t.last_ms = now_ms;
    t.record(s.history_cap, now_ms);
    let p = if depth == 1 {
        book_payload(cat, &s.spec, &name, "snapshot", t, now_ms)
    } else {
        book_payload_levels(cat, &s.spec, &name, "delta", db.iter().rev(), da.iter(), t.u, t.seq, now_ms)
    };
    vec![(p, Some(t.u))]
}

/// The ticker fields of a symbol now (PROTOCOLS.md §5.5; a subset on linear
/// and inverse).
fn ticker_fields(cat: BybitCategory, s: &SymbolState, now_ms: u64) -> BTreeMap<&'static str, String> {
    let spec = &s.spec;
    let mut f = BTreeMap::new();
    f.insert("symbol", spec.name.clone());
    f.insert("lastPrice", price(cat, spec, s.last));
    f.insert("highPrice24h", price(cat, spec, s.high));
    f.insert("lowPrice24h", price(cat, spec, s.low));
    f.insert("volume24h", size(cat, spec, s.volume));
    let turnover = if cat == BybitCategory::Inverse {
        dec(cat, s.quote_inv, 8)
    } else {
        dec(cat, s.quote, spec.price_decimals + spec.qty_decimals)
    };
    f.insert("turnover24h", turnover);
    let (bp, bq, ap, aq) = s.top;
    let mid2 = bp as i128 + ap as i128;
    if cat == BybitCategory::Option {
        let m = option_model(s, now_ms);
        let (delta, gamma, vega, theta) = m.greeks();
        f.insert("bidPrice", price(cat, spec, bp));
        f.insert("bidSize", size(cat, spec, bq as i128));
        f.insert("bidIv", float((m.sigma - 0.02).max(0.01), 4));
        f.insert("askPrice", price(cat, spec, ap));
        f.insert("askSize", size(cat, spec, aq as i128));
        f.insert("askIv", float(m.sigma + 0.02, 4));
        f.insert("markPrice", dec(cat, mid2 * 5, spec.price_decimals + 1));
        f.insert("indexPrice", float(m.spot, 2));
        f.insert("markPriceIv", float(m.sigma, 4));
        f.insert("underlyingPrice", float(m.spot * (1.0 + 0.01 * m.years), 2));
        f.insert("openInterest", size(cat, spec, s.volume / 2));
        f.insert("totalVolume", (s.volume / 10i128.pow(spec.qty_decimals)).to_string());
        f.insert("totalTurnover", (s.quote / 10i128.pow(spec.price_decimals + spec.qty_decimals)).to_string());
        f.insert("delta", float(delta, 8));
        f.insert("gamma", float(gamma, 8));
        f.insert("vega", float(vega, 8));
        f.insert("theta", float(theta, 8));
        f.insert("predictedDeliveryPrice", "0".to_string());
        let change = if s.open == 0 { 0 } else { (s.last - s.open) as i128 * 100_000_000 / s.open as i128 };
        f.insert("change24h", dec(cat, change, 8));
        return f;
    }
    f.insert("prevPrice24h", price(cat, spec, s.open));
    let pct = if s.open == 0 { 0 } else { (s.last - s.open) as i128 * 1_000_000 / s.open as i128 };
    f.insert("price24hPcnt", dec(BybitCategory::Linear, pct, 6));
    if cat == BybitCategory::Spot {
        f.insert("usdIndexPrice", dec(cat, mid2 * 5, spec.price_decimals + 1));
        return f;
    }
    let dir = ["PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick"][(s.tick_dir & 3) as usize];
    f.insert("tickDirection", dir.to_string());
    f.insert("prevPrice1h", price(cat, spec, s.open));
    f.insert("markPrice", dec(cat, mid2 * 5, spec.price_decimals + 1));
    f.insert("indexPrice", dec(cat, mid2 * 5 - mid2 / 2000, spec.price_decimals + 1));
    f.insert("openInterest", size(cat, spec, s.volume / 2));
    let oi_value = if cat == BybitCategory::Inverse {
        dec(cat, s.quote_inv / 2, 8)
    } else {
        dec(cat, s.quote / 2, spec.price_decimals + spec.qty_decimals)
    };
    f.insert("openInterestValue", oi_value);
    f.insert("fundingRate", "0.0001".to_string());
    let eight_h = 8 * 3_600_000;
    f.insert("nextFundingTime", (now_ms - now_ms % eight_h + eight_h).to_string());
    f.insert("fundingIntervalHour", "8".to_string());
    f.insert("bid1Price", price(cat, spec, bp));
    f.insert("bid1Size", size(cat, spec, bq as i128));
    f.insert("ask1Price", price(cat, spec, ap));
    f.insert("ask1Size", size(cat, spec, aq as i128));
    f
}

fn ticker_payload(
    cat: BybitCategory,
    sym: &str,
    kind: &str,
    fields: &BTreeMap<&'static str, String>,
    cs: u64,
    now_ms: u64,
) -> String {
    let mut data = String::from("{");
    // `symbol` first, as the venue writes it.
    let order = fields.iter().filter(|(k, _)| **k == "symbol").chain(fields.iter().filter(|(k, _)| **k != "symbol"));
    for (i, (k, v)) in order.enumerate() {
        if i > 0 {
            data.push(',');
        }
        let _ = write!(data, "\"{k}\":\"{v}\"");
    }
    data.push('}');
    let topic = format!("tickers.{sym}");
    match cat {
        BybitCategory::Spot => {
            format!("{{\"topic\":\"{topic}\",\"ts\":{now_ms},\"type\":\"{kind}\",\"cs\":{cs},\"data\":{data}}}")
        }
        BybitCategory::Option => format!(
            "{{\"id\":\"{topic}-{cs}-{now_ms}\",\"topic\":\"{topic}\",\"ts\":{now_ms},\"data\":{data},\"type\":\"{kind}\"}}"
        ),
        BybitCategory::Linear | BybitCategory::Inverse => {
            format!("{{\"topic\":\"{topic}\",\"type\":\"{kind}\",\"data\":{data},\"cs\":{cs},\"ts\":{now_ms}}}")
        }
    }
}

/// The next `tickers.<sym>` message: linear and inverse send a snapshot
/// first, then deltas holding only the changed fields; spot and option send
/// snapshots. Nothing when nothing changed.
pub(crate) fn render_ticker(m: &mut Market, sym: &str, now_ms: u64) -> Vec<(String, Option<u64>)> {
    let Some(i) = m.symbol_index(sym) else { return vec![] };
    let s = &m.symbols[i];
    let Some(cat) = s.bybit else { return vec![] };
    let now = ticker_fields(cat, s, now_ms);
    let last = m.bybit_tickers.entry(format!("tickers.{sym}")).or_default();
    if *last == now {
        return vec![];
    }
    let p = if last.is_empty() || !cat.is_futures() {
        ticker_payload(cat, sym, "snapshot", &now, s.update_id, now_ms)
    } else {
        let mut changed: BTreeMap<&'static str, String> =
            now.iter().filter(|(k, v)| last.get(*k) != Some(*v)).map(|(k, v)| (*k, v.clone())).collect();
        changed.insert("symbol", sym.to_string());
        ticker_payload(cat, sym, "delta", &changed, s.update_id, now_ms)
    };
    *last = now;
    vec![(p, None)]
}

/// The next `kline.<iv>.<sym>` messages: the candles that closed since the
/// last push (`confirm:true`, oldest first), if any, then the open one
/// (`confirm:false`).
pub(crate) fn render_kline(m: &mut Market, sym: &str, iv: &'static str, now_ms: u64) -> Vec<(String, Option<u64>)> {
    let Some(i) = m.symbol_index(sym) else { return vec![] };
    let Some(cat) = m.symbols[i].bybit else { return vec![] };
    let Some((closed, open)) = m.candles(sym, iv, now_ms) else { return vec![] };
    let spec = &m.symbols[i].spec;
    let mut out = Vec::with_capacity(closed.len() + 1);
    for c in &closed {
        out.push((kline_payload(cat, spec, iv, c, true, now_ms), None));
    }
    out.push((kline_payload(cat, spec, iv, &open, false, now_ms), None));
    out
}

/// One kline message. Decimals are trimmed in every category (as the
/// captures show); inverse turnover is in the base coin.
fn kline_payload(cat: BybitCategory, spec: &SymbolSpec, iv: &str, c: &Candle, confirm: bool, now_ms: u64) -> String {
    let pd = spec.price_decimals;
    let turnover =
        if cat == BybitCategory::Inverse { trimmed(c.q_inv, 8) } else { trimmed(c.q, pd + spec.qty_decimals) };
    let data = format!(
        "[{{\"start\":{},\"end\":{},\"interval\":\"{iv}\",\"open\":\"{}\",\"close\":\"{}\",\"high\":\"{}\",\"low\":\"{}\",\"volume\":\"{}\",\"turnover\":\"{turnover}\",\"confirm\":{confirm},\"timestamp\":{now_ms}}}]",
        c.open_time,
        c.close_time,
        trimmed(c.o as i128, pd),
        trimmed(c.c as i128, pd),
        trimmed(c.h as i128, pd),
        trimmed(c.l as i128, pd),
        trimmed(c.v, spec.qty_decimals),
    );
    let topic = format!("kline.{iv}.{}", spec.name);
    if cat == BybitCategory::Spot {
        format!("{{\"type\":\"snapshot\",\"topic\":\"{topic}\",\"data\":{data},\"ts\":{now_ms}}}")
    } else {
        format!("{{\"topic\":\"{topic}\",\"data\":{data},\"ts\":{now_ms},\"type\":\"snapshot\"}}")
    }
}

/// One `allLiquidation.<SYMBOL>` message: `S:"Buy"` is a liquidated long
/// (a forced sell), `p` the bankruptcy price.
pub(crate) fn liquidation_payload(cat: BybitCategory, s: &SymbolState, l: &Liquidation, now_ms: u64) -> String {
    let spec = &s.spec;
    format!(
        "{{\"topic\":\"allLiquidation.{}\",\"type\":\"snapshot\",\"ts\":{now_ms},\"data\":[{{\"T\":{},\"s\":\"{}\",\"S\":\"{}\",\"v\":\"{}\",\"p\":\"{}\"}}]}}",
        spec.name,
        l.time,
        spec.name,
        if l.sell { "Buy" } else { "Sell" },
        size(cat, spec, l.qty as i128),
        price(cat, spec, l.price)
    )
}

/// Parses a public topic of `cat`; `None` is "handler not found". `known`
/// checks a symbol, `known_base` an option base coin (`publicTrade.BTC`).
fn parse_topic(
    cat: BybitCategory,
    name: &str,
    known: impl Fn(&str) -> bool,
    known_base: impl Fn(&str) -> bool,
) -> Option<Topic> {
    let (kind, rest) = name.split_once('.')?;
    let sym = |s: &str| (known(s)).then(|| s.to_string());
    match kind {
        "publicTrade" if cat == BybitCategory::Option => known_base(rest).then(|| Topic::BybitTrade(rest.to_string())),
        "publicTrade" => Some(Topic::BybitTrade(sym(rest)?)),
        "tickers" => Some(Topic::BybitTicker(sym(rest)?)),
        "orderbook" => {
            let (d, s) = rest.split_once('.')?;
            let depth: usize = d.parse().ok().filter(|d| depths(cat).contains(d))?;
            if d != depth.to_string() {
                return None;
            }
            Some(Topic::BybitBook(sym(s)?, depth))
        }
        "kline" if cat != BybitCategory::Option => {
            let (iv, s) = rest.split_once('.')?;
            let iv = KLINE_INTERVALS.iter().find(|k| **k == iv)?;
            Some(Topic::BybitKline(sym(s)?, iv))
        }
        "allLiquidation" if cat.is_futures() => Some(Topic::BybitLiquidation(sym(rest)?)),
        _ => None,
    }
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A JSON array of strings.
fn js_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The venue's `conn_id` for a connection.
fn conn_id(hub: &Hub, id: u64) -> String {
    format!("sim{:05}-{id:x}", hub.addr.port())
}

/// A reply in the public shape: `{"success","ret_msg","conn_id",["req_id",]"op"}`.
/// Linear and inverse always carry `req_id` (`""` when the request had none);
/// spot only when the request had one. (Option replies: [`option_reply`].)
fn reply(cat: BybitCategory, success: bool, ret_msg: &str, conn: &str, req_id: Option<&str>, op: &str) -> String {
    let mut p = format!("{{\"success\":{success},\"ret_msg\":{},\"conn_id\":{}", js(ret_msg), js(conn));
    match (cat.is_futures(), req_id) {
        (_, Some(r)) => {
            let _ = write!(p, ",\"req_id\":{}", js(r));
        }
        (true, None) => p.push_str(",\"req_id\":\"\""),
        (false, None) => {}
    }
    let _ = write!(p, ",\"op\":{}}}", js(op));
    p
}

/// An option reply, the documented `COMMAND_RESP`:
/// `{"success","conn_id","data":{"failTopics","successTopics"},"type"}`; it
/// never carries `req_id`. Refusals of the whole request add `ret_msg`
/// (a simulator choice: the venue's option error shape is not documented).
fn option_reply(success: bool, ret_msg: Option<&str>, conn: &str, fail: &[String], ok: &[String]) -> String {
    let mut p = format!("{{\"success\":{success},");
    if let Some(m) = ret_msg {
        let _ = write!(p, "\"ret_msg\":{},", js(m));
    }
    let _ = write!(
        p,
        "\"conn_id\":{},\"data\":{{\"failTopics\":{},\"successTopics\":{}}},\"type\":\"COMMAND_RESP\"}}",
        js(conn),
        js_list(fail),
        js_list(ok)
    );
    p
}

/// Error texts joined into one `ret_msg`: at most this many.
const MAX_JOINED_ERRORS: usize = 100;

/// Answers one text frame of a Bybit connection. Returns the reply frame to
/// send on the control path (`None` when it was already queued in order with
/// the data: a subscribe ack followed by its snapshots) and whether it is a
/// success.
pub(crate) fn answer(hub: &Hub, conn: u64, text: &str) -> (Option<Bytes>, bool) {
    let Some(cat) = hub.cfg.bybit_category() else { return (None, false) };
    let cid = conn_id(hub, conn);
    let frame = |s: String| Some(ws::encode(ws::op::TEXT, s.as_bytes()));
    let fail = |msg: &str, rid: Option<&str>, op: &str, args: &[String]| {
        if cat == BybitCategory::Option {
            frame(option_reply(false, Some(msg), &cid, args, &[]))
        } else {
            frame(reply(cat, false, msg, &cid, rid, op))
        }
    };
    let v: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return (fail("Failed to decode incoming data: not an object", None, "", &[]), false),
        Err(e) => return (fail(&format!("Failed to decode incoming data: {e}"), None, "", &[]), false),
    };
    let req_id: Option<String> = match v.get("req_id") {
        Some(Value::String(s)) => Some(s.chars().take(64).collect()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let rid = req_id.as_deref();
    let op = v.get("op").and_then(Value::as_str).unwrap_or("");
    match op {
        "ping" if cat == BybitCategory::Option => {
            let ms = hub.venue_ms(&hub.lock());
            (frame(format!("{{\"args\":[\"{ms}\"],\"op\":\"pong\"}}")), true)
        }
        "ping" => (frame(reply(cat, true, "pong", &cid, rid, "ping")), true),
        "subscribe" | "unsubscribe" => {
            let args: Option<Vec<String>> = v
                .get("args")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect());
            let Some(args) = args else {
                return (fail("error:args must be an array of strings", rid, op, &[]), false);
            };
            if op == "subscribe" && cat == BybitCategory::Spot && args.len() > SPOT_MAX_ARGS {
                return (frame(reply(cat, false, "args size >10", &cid, rid, op)), false);
            }
            if op == "unsubscribe" {
                hub.bybit_unsubscribe(conn, &args);
                let r = match cat {
                    BybitCategory::Option => option_reply(true, None, &cid, &[], &args),
                    BybitCategory::Spot => reply(cat, true, "unsubscribe", &cid, rid, op),
                    BybitCategory::Linear | BybitCategory::Inverse => reply(cat, true, "", &cid, rid, op),
                };
                return (frame(r), true);
            }
            hub.bybit_subscribe(cat, conn, &args, &cid, rid)
        }
        _ => (fail("error:invalid op", rid, op, &[]), false),
    }
}

/// Queues frames on a connection's data path in order; a full queue resets
/// the connection as a slow consumer.
fn queue_data(st: &mut HubState, conn: u64, frames: Vec<Bytes>) {
    let Some(c) = st.conns.get(&conn) else { return };
    for f in frames {
        match c.data_tx.try_send(f) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let _ = c.kill_tx.send(Some(KillMode::Reset));
                st.counters.slow_consumer_resets += 1;
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

impl Hub {
    fn bybit_subscribe(
        &self,
        cat: BybitCategory,
        conn: u64,
        args: &[String],
        cid: &str,
        rid: Option<&str>,
    ) -> (Option<Bytes>, bool) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let now = self.venue_ms(st);
        let limits = &self.cfg.limits;
        let held: HashSet<String> = st.conns.get(&conn).map(|c| c.subs.iter().cloned().collect()).unwrap_or_default();
        let mut chars: usize = held.iter().map(String::len).sum();
        let mut count = held.len();
        let option = cat == BybitCategory::Option;
        let mut added: Vec<String> = Vec::new();
        let mut added_set: HashSet<String> = HashSet::new();
        let mut errors: Vec<String> = Vec::new();
        let mut failed: Vec<String> = Vec::new();
        let mut succeeded: Vec<String> = Vec::new();
        let mut snapshots: Vec<Bytes> = Vec::new();
        if !option {
            // The whole request is refused when its new topics would take the
            // connection over the character limit.
            let mut fresh: HashSet<&str> = HashSet::new();
            let extra: usize =
                args.iter().filter(|a| !held.contains(*a) && fresh.insert(a.as_str())).map(String::len).sum();
            if chars.saturating_add(extra) > limits.max_topic_chars {
                st.counters.args_limit_refusals += 1;
                let msg = format!("error:args length exceeds {}", limits.max_topic_chars);
                let r = reply(cat, false, &msg, cid, rid, "subscribe");
                return (Some(ws::encode(ws::op::TEXT, r.as_bytes())), false);
            }
        }
        let (mut over_count, mut over_chars) = (false, false);
        for name in args {
            if held.contains(name) || added_set.contains(name) {
                if option {
                    succeeded.push(name.clone());
                } else {
                    errors.push(format!("error:already subscribed,topic:{name}"));
                }
                continue;
            }
            let market = &st.market;
            let Some(topic) = parse_topic(
                cat,
                name,
                |s| market.symbol(s).is_some(),
                |b| market.symbols.iter().any(|s| s.spec.base == b),
            ) else {
                errors.push(format!("error:handler not found,topic:{name}"));
                failed.push(name.clone());
                continue;
            };
            if option {
                if count >= limits.max_streams_per_conn {
                    over_count = true;
                    failed.push(name.clone());
                    continue;
                }
                if chars.saturating_add(name.len()) > limits.max_topic_chars {
                    over_chars = true;
                    failed.push(name.clone());
                    continue;
                }
            }
            self.bybit_track(st, cat, name, &topic, now, &mut snapshots);
            st.subs.entry(name.clone()).or_default().push(conn);
            count += 1;
            chars += name.len();
            added.push(name.clone());
            added_set.insert(name.clone());
            succeeded.push(name.clone());
        }
        if over_count {
            st.counters.over_cap_rejections += 1;
        }
        if over_chars {
            st.counters.args_limit_refusals += 1;
        }
        if let Some(c) = st.conns.get_mut(&conn) {
            c.subs.extend(added.iter().cloned());
            let n = c.subs.len() as u64;
            st.counters.max_streams_on_a_connection = st.counters.max_streams_on_a_connection.max(n);
        }
        let (text, ok) = if option {
            (option_reply(failed.is_empty(), None, cid, &failed, &succeeded), failed.is_empty())
        } else {
            let ok = errors.is_empty();
            let msg = if !ok {
                let mut m = errors.iter().take(MAX_JOINED_ERRORS).cloned().collect::<Vec<_>>().join(";");
                if errors.len() > MAX_JOINED_ERRORS {
                    m.push_str(";...");
                }
                m
            } else if cat == BybitCategory::Spot {
                "subscribe".to_string()
            } else {
                String::new()
            };
            (reply(cat, ok, &msg, cid, rid, "subscribe"), ok)
        };
        let ack = ws::encode(ws::op::TEXT, text.as_bytes());
        if st.faults.ack_delay.is_zero() {
            snapshots.insert(0, ack);
            queue_data(st, conn, snapshots);
            (None, ok)
        } else {
            queue_data(st, conn, snapshots);
            (Some(ack), ok)
        }
    }

    /// Starts feeding a topic if nobody did yet, and adds what a new
    /// subscriber gets first (the topic's current view) to `snapshots`.
    fn bybit_track(
        &self,
        st: &mut HubState,
        cat: BybitCategory,
        name: &str,
        topic: &Topic,
        now: u64,
        snapshots: &mut Vec<Bytes>,
    ) {
        if st.tracked.insert(name.to_string()) {
            st.streams.entry(name.to_string()).or_default();
            match topic {
                Topic::BybitBook(sym, depth) => {
                    if let Some(s) = st.market.symbol(sym) {
                        let t = BookTopic::new(s, *depth, name, now);
                        st.market.bybit_books.insert(name.to_string(), t);
                    }
                }
                Topic::BybitKline(sym, iv) => st.market.ensure_candle(&sym.to_lowercase(), iv, now),
                _ => {}
            }
            if let Some(period) = topic.period_ms(self.kind()) {
                let period_ms = self.cfg.timing.cadence(period).as_millis() as u64;
                st.periodic
                    .insert(name.to_string(), Periodic { topic: topic.clone(), period_ms, next_due: now, last_u: 0 });
            }
        }
        match topic {
            Topic::BybitBook(sym, _) => {
                if let (Some(s), Some(t)) = (st.market.symbol(sym), st.market.bybit_books.get(name)) {
                    let p = book_payload(cat, &s.spec, name, "snapshot", t, now);
                    snapshots.push(ws::encode(ws::op::TEXT, p.as_bytes()));
                }
            }
            Topic::BybitTicker(sym) => {
                if let (Some(s), Some(f)) = (st.market.symbol(sym), st.market.bybit_tickers.get(name))
                    && !f.is_empty()
                {
                    let p = ticker_payload(cat, sym, "snapshot", f, s.update_id, now);
                    snapshots.push(ws::encode(ws::op::TEXT, p.as_bytes()));
                }
            }
            _ => {}
        }
    }

    fn bybit_unsubscribe(&self, conn: u64, args: &[String]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let gone: HashSet<&String> = args.iter().collect();
        if let Some(c) = st.conns.get_mut(&conn) {
            c.subs.retain(|s| !gone.contains(s));
        }
        for a in gone {
            if let Some(v) = st.subs.get_mut(a) {
                v.retain(|c| *c != conn);
            }
        }
    }

    /// Makes the next message of every order-book topic of `symbol` (all
    /// symbols when `None`) a restart snapshot with `u = 1`. Returns how many
    /// topics are affected.
    pub(crate) fn bybit_restart(&self, symbol: Option<&str>) -> usize {
        let mut st = self.lock();
        let mut n = 0;
        for (name, t) in st.market.bybit_books.iter_mut() {
            if symbol.is_none_or(|s| name.rsplit('.').next() == Some(s)) {
                t.restart = true;
                n += 1;
            }
        }
        n
    }
}

/// The book a client of `orderbook.<d>.<symbol>` holds right after the
/// message with `u`: the smallest tracked depth `d >= depth` whose history
/// holds `u`, truncated to `depth`.
pub(crate) fn book_at(m: &Market, symbol: &str, u: u64, depth: usize) -> Option<BookCopy> {
    let ds = depths(m.bybit?);
    let max = *ds.last()?;
    ds.iter().filter(|d| **d >= depth.min(max)).find_map(|d| {
        let mut c = m.bybit_books.get(&book_topic(symbol, *d))?.at(u)?.clone();
        c.bids.truncate(depth);
        c.asks.truncate(depth);
        Some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_like_the_venue() {
        let known = |s: &str| s == "BTCUSDT";
        let base = |b: &str| b == "BTC";
        let lin = BybitCategory::Linear;
        let p = |cat, name| parse_topic(cat, name, known, base);
        assert_eq!(p(lin, "orderbook.50.BTCUSDT"), Some(Topic::BybitBook("BTCUSDT".into(), 50)));
        assert_eq!(p(lin, "orderbook.1000.BTCUSDT"), Some(Topic::BybitBook("BTCUSDT".into(), 1000)));
        assert_eq!(p(lin, "publicTrade.BTCUSDT"), Some(Topic::BybitTrade("BTCUSDT".into())));
        assert_eq!(p(lin, "tickers.BTCUSDT"), Some(Topic::BybitTicker("BTCUSDT".into())));
        assert_eq!(p(lin, "kline.D.BTCUSDT"), Some(Topic::BybitKline("BTCUSDT".into(), "D")));
        assert_eq!(p(BybitCategory::Spot, "kline.1.BTCUSDT"), Some(Topic::BybitKline("BTCUSDT".into(), "1")));
        assert_eq!(p(lin, "allLiquidation.BTCUSDT"), Some(Topic::BybitLiquidation("BTCUSDT".into())));
        for bad in [
            "orderbook.500.BTCUSDT",
            "orderbook.050.BTCUSDT",
            "orderbook.25.BTCUSDT",
            "orderbook.50.btcusdt",
            "orderbook.50.NOPEUSDT",
            "publicTrade",
            "publicTrade.BTC",
            "kline.2.BTCUSDT",
            "kline.1m.BTCUSDT",
            "kline.1",
            "liquidation.BTCUSDT",
            "",
        ] {
            assert_eq!(p(lin, bad), None, "{bad}");
        }
        assert_eq!(p(BybitCategory::Spot, "allLiquidation.BTCUSDT"), None);
        let opt = BybitCategory::Option;
        assert_eq!(p(opt, "publicTrade.BTC"), Some(Topic::BybitTrade("BTC".into())));
        assert_eq!(p(opt, "orderbook.25.BTCUSDT"), Some(Topic::BybitBook("BTCUSDT".into(), 25)));
        assert_eq!(p(opt, "orderbook.100.BTCUSDT"), Some(Topic::BybitBook("BTCUSDT".into(), 100)));
        for bad in ["orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "publicTrade.ETH"] {
            assert_eq!(p(opt, bad), None, "{bad}");
        }
        assert_eq!(p(opt, "kline.1.BTCUSDT"), None);
        assert_eq!(p(opt, "allLiquidation.BTCUSDT"), None);
    }

    #[test]
    fn decimals_are_fixed_on_futures_and_trimmed_on_spot_and_option() {
        assert_eq!(dec(BybitCategory::Linear, 6511420, 2), "65114.20");
        assert_eq!(dec(BybitCategory::Inverse, 6511420, 2), "65114.20");
        assert_eq!(dec(BybitCategory::Spot, 6514000, 2), "65140");
        assert_eq!(dec(BybitCategory::Option, 29100, 1), "2910");
        assert_eq!(dec(BybitCategory::Spot, 885797, 6), "0.885797");
        assert_eq!(dec(BybitCategory::Spot, 0, 3), "0");
        assert_eq!(trimmed(651199, 1), "65119.9");
    }

    #[test]
    fn kline_buckets_follow_the_calendar() {
        // 2026-01-15 (a Thursday) 12:34:56.789 UTC.
        let t = days_from_civil(2026, 1, 15) as u64 * DAY_MS + 45_296_789;
        assert_eq!(kline_bounds("1", t), Some((t - 56_789, t - 56_789 + 59_999)));
        let (s, e) = kline_bounds("60", t).unwrap();
        assert_eq!((t - s, e - s), (34 * 60_000 + 56_789, 3_600_000 - 1));
        let d = days_from_civil(2026, 1, 15) as u64 * DAY_MS;
        assert_eq!(kline_bounds("D", t), Some((d, d + DAY_MS - 1)));
        let monday = days_from_civil(2026, 1, 12) as u64 * DAY_MS;
        assert_eq!(kline_bounds("W", t), Some((monday, monday + 7 * DAY_MS - 1)));
        let jan = days_from_civil(2026, 1, 1) as u64 * DAY_MS;
        let feb = days_from_civil(2026, 2, 1) as u64 * DAY_MS;
        assert_eq!(kline_bounds("M", t), Some((jan, feb - 1)));
        let dec = days_from_civil(2025, 12, 1) as u64 * DAY_MS;
        assert_eq!(kline_bounds("M", jan - 1), Some((dec, jan - 1)));
        assert_eq!(kline_bounds("1m", t), None);
        assert_eq!(kline_bounds("7", t), None);
        assert_eq!(year_month(days_from_civil(2024, 2, 29)), (2024, 2));
    }

    #[test]
    fn option_names_and_greeks() {
        let (exp, strike, call) = option_parts("BTC-26DEC26-100000-C").unwrap();
        assert_eq!((strike, call), (100000.0, true));
        assert_eq!(exp, days_from_civil(2026, 12, 26) as u64 * DAY_MS + 8 * 3_600_000);
        assert!(option_parts("BTC-26XYZ26-100000-C").is_none());
        assert!(option_parts("BTCUSDT").is_none());
        assert!(option_parts("B-é6DEC26-1-C").is_none());
        let m = OptionModel { strike: 100_000.0, call: true, years: 0.5, spot: 97_000.0, sigma: 0.5 };
        let (delta, gamma, vega, theta) = m.greeks();
        assert!((0.0..1.0).contains(&delta) && gamma > 0.0 && vega > 0.0 && theta < 0.0);
        let put = OptionModel { call: false, ..m };
        assert!((put.greeks().0 - (delta - 1.0)).abs() < 1e-12);
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-9 && (norm_cdf(1.96) - 0.975).abs() < 1e-4);
    }
}
