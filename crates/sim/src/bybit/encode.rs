//! How Bybit writes numbers and the generator's events: decimals per
//! category, the message head, `publicTrade` and `allLiquidation`.

use std::fmt::Write as _;

use crate::config::{BybitCategory, SymbolSpec};
use crate::market::{DepthDiff, Encode, Liquidation, SymbolState, fmt_dec};

use super::option::option_model;

/// Writes the generator's events for one Bybit market: `publicTrade` and
/// `allLiquidation`. Bybit markets name no aggregate-trade, book-ticker or
/// diff-depth stream (their order books are topics of their own), so those
/// three are never called and write nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder {
    /// The market's category.
    pub cat: BybitCategory,
}

impl Encode for Encoder {
    fn trade(&self, s: &SymbolState, price: i64, qty: i64, buy: bool, now_ms: u64) -> String {
        trade_payload(self.cat, s, price, qty, buy, now_ms)
    }

    fn agg_trade(&self, _: &SymbolState, _: i64, _: i64, _: u64, _: bool, _: u64) -> String {
        String::new()
    }

    fn book_ticker(&self, _: &SymbolState, _: u64) -> String {
        String::new()
    }

    fn depth_diff(&self, _: &SymbolState, _: &DepthDiff<'_>, _: u64) -> String {
        String::new()
    }

    fn liquidation(&self, s: &SymbolState, l: &Liquidation, now_ms: u64) -> String {
        liquidation_payload(self.cat, s, l, now_ms)
    }
}

/// A decimal as the venue writes it: linear and inverse keep the
/// instrument's decimals (`"65114.20"`), spot and option trim trailing zeros
/// (`"65140"`, `"0.885797"`).
pub(crate) fn dec(cat: BybitCategory, v: i128, scale: u32) -> String {
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
pub(crate) fn trimmed(v: i128, scale: u32) -> String {
    let mut s = String::new();
    fmt_dec(&mut s, v, scale, scale);
    trim(&mut s);
    s
}

/// An `f64` with `d` decimals, `"0"` when it is not finite.
pub(crate) fn float(x: f64, d: usize) -> String {
    if x.is_finite() { format!("{x:.d$}") } else { "0".to_string() }
}

pub(crate) fn price(cat: BybitCategory, spec: &SymbolSpec, ticks: i64) -> String {
    dec(cat, ticks as i128, spec.price_decimals)
}

pub(crate) fn size(cat: BybitCategory, spec: &SymbolSpec, lots: i128) -> String {
    dec(cat, lots, spec.qty_decimals)
}

/// Levels as `[price, size]` strings.
pub(crate) fn level_strings(cat: BybitCategory, spec: &SymbolSpec, levels: &[(i64, i64)]) -> Vec<[String; 2]> {
    levels.iter().map(|(p, q)| [price(cat, spec, *p), size(cat, spec, *q as i128)]).collect()
}

pub(crate) fn levels_json<'a>(
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
pub(crate) fn head(out: &mut String, cat: BybitCategory, topic: &str, kind: &str, ts: u64, seq: u64) {
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

/// A JSON string literal.
pub(crate) fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A JSON array of strings.
pub(crate) fn js_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
