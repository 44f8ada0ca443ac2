//! Binance's payloads of the generator's events and snapshot topics: trade,
//! aggTrade, depthUpdate, bookTicker, partial depth, tickers, avgPrice,
//! markPrice, forceOrder and kline, in each market's shape (spot decimals
//! padded to 8; derivatives add `T`, `pu`, `e`; COIN-M `ps`).

use std::fmt::Write as _;

use crate::config::{MarketKind, SymbolSpec};
use crate::market::{Candle, DepthDiff, Encode, Liquidation, SymbolState, fmt_dec};

/// Writes the generator's events for one Binance market.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder {
    /// The market whose shapes are written.
    pub kind: MarketKind,
}

impl Encode for Encoder {
    fn trade(&self, s: &SymbolState, price: i64, qty: i64, buy: bool, now_ms: u64) -> String {
        trade_payload(self.kind, s, price, qty, buy, now_ms)
    }

    fn agg_trade(&self, s: &SymbolState, price: i64, qty: i64, first: u64, buy: bool, now_ms: u64) -> String {
        agg_payload(self.kind, s, price, qty, first, buy, now_ms)
    }

    fn book_ticker(&self, s: &SymbolState, now_ms: u64) -> String {
        book_ticker_payload(self.kind, s, now_ms)
    }

    fn depth_diff(&self, s: &SymbolState, w: &DepthDiff<'_>, now_ms: u64) -> String {
        depth_payload(self.kind, s, w, now_ms)
    }

    fn liquidation(&self, s: &SymbolState, l: &Liquidation, now_ms: u64) -> String {
        force_order_payload(self.kind, s, l, now_ms)
    }
}

pub(crate) fn dec_p(kind: MarketKind, spec: &SymbolSpec) -> u32 {
    if kind == MarketKind::Spot { 8 } else { spec.price_decimals }
}

pub(crate) fn dec_q(kind: MarketKind, spec: &SymbolSpec) -> u32 {
    if kind == MarketKind::Spot { 8 } else { spec.qty_decimals }
}

pub(crate) fn px(out: &mut String, kind: MarketKind, spec: &SymbolSpec, ticks: i64) {
    out.push('"');
    fmt_dec(out, ticks as i128, spec.price_decimals, dec_p(kind, spec));
    out.push('"');
}

pub(crate) fn qty(out: &mut String, kind: MarketKind, spec: &SymbolSpec, lots: i128) {
    out.push('"');
    fmt_dec(out, lots, spec.qty_decimals, dec_q(kind, spec));
    out.push('"');
}

pub(crate) fn quote_amt(out: &mut String, spec: &SymbolSpec, v: i128) {
    out.push('"');
    fmt_dec(out, v, spec.price_decimals + spec.qty_decimals, 8.max(spec.price_decimals + spec.qty_decimals));
    out.push('"');
}

pub(crate) fn levels_json(
    out: &mut String,
    kind: MarketKind,
    spec: &SymbolSpec,
    levels: impl Iterator<Item = (i64, i64)>,
) {
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

/// One depth window's changes as a `depthUpdate` (derivatives add `T`, `pu`;
/// COIN-M `ps`).
fn depth_payload(kind: MarketKind, s: &SymbolState, w: &DepthDiff<'_>, now_ms: u64) -> String {
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
    let _ = write!(p, "\"U\":{},\"u\":{}", w.first, w.last);
    if kind.is_derivative() {
        let _ = write!(p, ",\"pu\":{}", w.prev_u);
    }
    p.push_str(",\"b\":");
    levels_json(&mut p, kind, spec, w.bids.iter().rev().map(|(p, q)| (*p, *q)));
    p.push_str(",\"a\":");
    levels_json(&mut p, kind, spec, w.asks.iter().map(|(p, q)| (*p, *q)));
    p.push('}');
    p
}

fn trade_payload(kind: MarketKind, s: &SymbolState, price: i64, q: i64, buy: bool, now_ms: u64) -> String {
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

pub(crate) fn partial_payload(
    kind: MarketKind,
    s: &SymbolState,
    levels: usize,
    now_ms: u64,
    last_u: &mut u64,
) -> String {
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

pub(crate) fn ticker_payload(kind: MarketKind, s: &SymbolState, now_ms: u64, window: Option<&str>) -> String {
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

pub(crate) fn mini_ticker_payload(kind: MarketKind, s: &SymbolState, now_ms: u64) -> String {
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

pub(crate) fn avg_price_payload(s: &SymbolState, now_ms: u64) -> String {
    let spec = &s.spec;
    let wavg = if s.volume > 0 { (s.quote / s.volume) as i64 } else { s.last };
    let mut p = String::with_capacity(120);
    let _ = write!(p, "{{\"e\":\"avgPrice\",\"E\":{now_ms},\"s\":\"{}\",\"i\":\"5m\",\"w\":", spec.name);
    px(&mut p, MarketKind::Spot, spec, wavg);
    let _ = write!(p, ",\"T\":{}}}", s.last_trade_ms);
    p
}

pub(crate) fn mark_price_payload(kind: MarketKind, s: &SymbolState, now_ms: u64) -> String {
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

/// The kline messages of `iv` due now: the candles that closed since the last
/// push (`x:true`), then the open one.
pub(crate) fn kline_render(
    kind: MarketKind,
    s: &mut SymbolState,
    iv: &'static str,
    now_ms: u64,
) -> Vec<(String, Option<u64>)> {
    let Some((closed, c)) = s.roll_candle(iv, now_ms) else { return vec![] };
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
    use std::collections::{BTreeMap, HashSet};

    use super::*;
    use crate::binance::new_market;
    use crate::config::Timing;
    use crate::market::{Market, flush_window};

    fn all_streams(m: &Market) -> HashSet<String> {
        let mut t = HashSet::new();
        for s in &m.symbols {
            t.insert(s.names.trade.clone());
            t.extend(s.names.agg.clone());
            t.extend(s.names.book_ticker.clone());
            t.extend(s.names.depth.iter().cloned());
        }
        t
    }

    /// The diff stream rebuilds the true book exactly: U/u chain with no gaps, and
    /// applying every diff to the starting book yields the generator's book.
    #[test]
    fn diffs_replay_to_the_true_book_and_chain_without_gaps() {
        for kind in [MarketKind::Spot, MarketKind::UsdM] {
            let specs = SymbolSpec::defaults(kind);
            let mut m = new_market(kind, &specs[..2], 7, &Timing::default(), 1_000);
            let enc = Encoder { kind };
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
                m.tick(&enc, now, 10, &tracked, &mut out);
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
            for i in 0..m.symbols[0].names.depth.len() {
                flush_window(&enc, &mut m.symbols[0], i, now, &tracked, &mut out);
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
            let mut m = new_market(MarketKind::Spot, &specs[..3], 42, &Timing::default(), 0);
            let enc = Encoder { kind: MarketKind::Spot };
            let tracked = all_streams(&m);
            let mut all = Vec::new();
            for i in 1..300 {
                let mut out = Vec::new();
                m.tick(&enc, i * 10, 10, &tracked, &mut out);
                all.extend(out.into_iter().map(|e| e.payload));
            }
            all
        };
        assert_eq!(run(), run());
    }
}
