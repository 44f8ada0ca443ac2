//! Bybit tickers (`tickers.<SYMBOL>`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::config::BybitCategory;
use crate::market::{Market, SymbolState};

use super::encode::{dec, float, price, size};
use super::option::option_model;

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

pub(crate) fn ticker_payload(
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
pub(crate) fn render_ticker(
    m: &Market,
    tickers: &mut HashMap<String, BTreeMap<&'static str, String>>,
    cat: BybitCategory,
    sym: &str,
    now_ms: u64,
) -> Vec<(String, Option<u64>)> {
    let Some(s) = m.symbol(sym) else { return vec![] };
    let now = ticker_fields(cat, s, now_ms);
    let last = tickers.entry(format!("tickers.{sym}")).or_default();
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
