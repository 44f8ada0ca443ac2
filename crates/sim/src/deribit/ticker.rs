//! Deribit's derived public channels (PROTOCOLS.md §6.6): `ticker`, `quote`,
//! `chart.trades`, `perpetual` and `deribit_price_index`, all computed from
//! the true book and the generator's 24 h statistics and candles. Each is
//! pushed only when its content (besides the timestamp) changed.

use std::fmt::Write as _;

use crate::config::DeribitKind;
use crate::market::{Market, SymbolState};

use super::encode::{Inst, float, index_price, js, mark_price, num};

/// `ticker.{inst}.{interval}` data without the leading `timestamp` (keys
/// as the `ticker_perpetual.json` capture; options add `bid_iv`, `ask_iv`,
/// `mark_iv`, `underlying_price`, `underlying_index`, `interest_rate` and
/// `greeks`; only perpetuals carry `current_funding` and `funding_8h`).
pub(crate) fn ticker_body(kind: DeribitKind, s: &SymbolState, now_ms: u64) -> String {
    let inst = Inst::of(kind, &s.spec);
    let (bp, bq, ap, aq) = s.top;
    let change = if s.open == 0 { 0.0 } else { (s.last - s.open) as f64 * 100.0 / s.open as f64 };
    let vol_lots: i64 = s.volume.clamp(0, i64::MAX as i128) as i64;
    let (vol_base, vol_usd) = match kind {
        DeribitKind::Inverse => {
            (num(s.quote_inv * inst.amt_mult as i128 / inst.tick_mult as i128, 8), inst.amount(vol_lots))
        }
        DeribitKind::Linear => {
            (inst.amount(vol_lots), num(s.quote * inst.tick_mult as i128, inst.price_scale + inst.amt_scale))
        }
        DeribitKind::Option => {
            (inst.amount(vol_lots), float(inst.price_f64(s.last) * index_price(kind, s) * vol_lots as f64, 2))
        }
    };
    let index = index_price(kind, s);
    let mark = mark_price(kind, s);
    let band = |up: bool| {
        let m = s.mid();
        let d = (m / 40).max(1);
        inst.price(if up { m + d } else { (m - d).max(1) })
    };
    let mut d = String::with_capacity(640);
    let _ = write!(
        d,
        "\"state\":\"open\",\"stats\":{{\"high\":{},\"low\":{},\"price_change\":{},\"volume\":{vol_base},\"volume_usd\":{vol_usd},\"volume_notional\":{vol_usd}}},\"index_price\":{},\"instrument_name\":{},\"last_price\":{},\"settlement_price\":{},\"min_price\":{},\"max_price\":{},\"open_interest\":{},\"mark_price\":{mark},\"interest_value\":{},\"best_ask_price\":{},\"best_bid_price\":{},\"estimated_delivery_price\":{},\"best_ask_amount\":{},\"best_bid_amount\":{}",
        inst.price(s.high),
        inst.price(s.low),
        float(change, 4),
        float(index, 2),
        js(&s.spec.name),
        inst.price(s.last),
        inst.price(s.open),
        band(false),
        band(true),
        inst.amount((s.volume / 2).clamp(0, i64::MAX as i128) as i64),
        float(0.0028, 6),
        inst.price(ap),
        inst.price(bp),
        float(index, 2),
        inst.amount(aq),
        inst.amount(bq),
    );
    if s.spec.name.ends_with("-PERPETUAL") {
        d.push_str(",\"current_funding\":0.0,\"funding_8h\":0.00001742");
    }
    if kind == DeribitKind::Option {
        let g = greeks(s, now_ms);
        let _ = write!(
            d,
            ",\"bid_iv\":{},\"ask_iv\":{},\"mark_iv\":{},\"underlying_price\":{},\"underlying_index\":\"{}\",\"interest_rate\":0.0,\"greeks\":{{\"delta\":{},\"gamma\":{},\"vega\":{},\"theta\":{},\"rho\":{}}}",
            float(g.sigma * 100.0 - 2.0, 2),
            float(g.sigma * 100.0 + 2.0, 2),
            float(g.sigma * 100.0, 2),
            float(index * 1.01, 2),
            expiry_future(&s.spec.name),
            float(g.delta, 5),
            float(g.gamma, 5),
            float(g.vega, 5),
            float(g.theta, 5),
            float(g.rho, 5),
        );
    }
    d
}

/// The dated future an option's underlying price comes from (`BTC-25JUN27`).
fn expiry_future(name: &str) -> String {
    let mut it = name.split('-');
    match (it.next(), it.next()) {
        (Some(b), Some(e)) => format!("{b}-{e}"),
        _ => "index_price".into(),
    }
}

/// `{"timestamp":..,<body>}`.
pub(crate) fn with_timestamp(now_ms: u64, body: &str) -> String {
    format!("{{\"timestamp\":{now_ms},{body}}}")
}

/// `quote.{inst}` data without the timestamp (keys as the `quote.json` capture).
pub(crate) fn quote_body(kind: DeribitKind, s: &SymbolState) -> String {
    let inst = Inst::of(kind, &s.spec);
    let (bp, bq, ap, aq) = s.top;
    format!(
        "\"instrument_name\":{},\"best_ask_price\":{},\"best_bid_price\":{},\"best_ask_amount\":{},\"best_bid_amount\":{}",
        js(&s.spec.name),
        inst.price(ap),
        inst.price(bp),
        inst.amount(aq),
        inst.amount(bq)
    )
}

/// `perpetual.{inst}.{interval}` data without the timestamp: `index_price`, `interest`.
pub(crate) fn perpetual_body(kind: DeribitKind, s: &SymbolState) -> String {
    format!("\"index_price\":{},\"interest\":{}", float(index_price(kind, s), 2), float(0.00004, 8))
}

/// `deribit_price_index.{index}` data without the timestamp: the base coin's
/// configured price moved by its perpetual's mid when the market has one.
pub(crate) fn price_index_body(kind: DeribitKind, m: &Market, index: &str) -> String {
    let base = index.split('_').next().unwrap_or("btc").to_uppercase();
    let px = m
        .symbols
        .iter()
        .find(|s| s.spec.base == base && kind != DeribitKind::Option)
        .map(|s| index_price(kind, s))
        .or_else(|| crate::config::spot_price(&base))
        .unwrap_or(1.0);
    format!("\"price\":{},\"index_name\":{}", float(px, 2), js(index))
}

/// The start and end (inclusive, ms) of the chart bucket of `res` holding `now_ms`.
pub(crate) fn bucket(res: &str, now_ms: u64) -> (u64, u64) {
    let len = if res == "1D" { 86_400_000 } else { res.parse::<u64>().unwrap_or(1).max(1) * 60_000 };
    let open = now_ms - now_ms % len;
    (open, open + len - 1)
}

/// `chart.trades.{inst}.{res}` data: the open candle `{tick, open, high,
/// low, close, volume, cost}` (`volume` in the base coin, `cost` in the
/// quote as the `chart_trades.json` capture; options: contracts and BTC).
pub(crate) fn chart_body(
    kind: DeribitKind,
    m: &mut Market,
    sym: &str,
    res: &'static str,
    now_ms: u64,
) -> Option<String> {
    let (_, c) = m.candles(sym, res, bucket, now_ms)?;
    let spec = &m.symbol(sym)?.spec;
    let inst = Inst::of(kind, spec);
    let lots = c.v.clamp(0, i64::MAX as i128) as i64;
    let (volume, cost) = match kind {
        DeribitKind::Inverse => (num(c.q_inv * inst.amt_mult as i128 / inst.tick_mult as i128, 8), inst.amount(lots)),
        DeribitKind::Linear | DeribitKind::Option => (
            inst.amount(lots),
            num(c.q * inst.tick_mult as i128 * inst.amt_mult as i128, inst.price_scale + inst.amt_scale),
        ),
    };
    Some(format!(
        "{{\"tick\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},\"volume\":{volume},\"cost\":{cost}}}",
        c.open_time,
        inst.price(c.o),
        inst.price(c.h),
        inst.price(c.l),
        inst.price(c.c)
    ))
}

/// Black–Scholes values of an option from its name and the configured spot.
struct Greeks {
    sigma: f64,
    delta: f64,
    gamma: f64,
    vega: f64,
    theta: f64,
    rho: f64,
}

/// Parses `BASE-DDMMMYY-STRIKE-C|P`; expiry at 08:00 UTC.
fn option_parts(name: &str) -> Option<(u64, f64, bool)> {
    let mut it = name.split('-');
    let _ = it.next()?;
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
    let m = MONTHS.iter().position(|x| *x == mon)? as i64 + 1;
    let d: i64 = d.parse().ok().filter(|d| (1..=31).contains(d))?;
    let y: i64 = 2000 + yy.parse::<i64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe - 719_468).max(0) as u64;
    Some((days * 86_400_000 + 8 * 3_600_000, strike, call))
}

fn greeks(s: &SymbolState, now_ms: u64) -> Greeks {
    let spot = crate::config::spot_price(&s.spec.base).unwrap_or(1.0).max(1e-9);
    let (expiry, strike, call) = option_parts(&s.spec.name).unwrap_or((now_ms + 30 * 86_400_000, spot, true));
    let years = (expiry.saturating_sub(now_ms) as f64 / (365.25 * 86_400_000.0)).max(1.0 / 8760.0);
    let strike = strike.max(1e-9);
    let sigma = 0.5 + 0.3 * (strike / spot).ln().abs();
    let st = sigma * years.sqrt();
    let d1 = ((spot / strike).ln() + 0.5 * sigma * sigma * years) / st;
    let d2 = d1 - st;
    let pdf = (-0.5 * d1 * d1).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = |x: f64| 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
    let delta = if call { cdf(d1) } else { cdf(d1) - 1.0 };
    let rho = if call { strike * years * cdf(d2) / 100.0 } else { -strike * years * cdf(-d2) / 100.0 };
    Greeks {
        sigma,
        delta,
        gamma: pdf / (spot * st),
        vega: spot * pdf * years.sqrt() / 100.0,
        theta: -(spot * pdf * sigma) / (2.0 * years.sqrt()) / 365.0,
        rho,
    }
}

/// The error function (Abramowitz–Stegun 7.1.26).
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let e = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { e } else { -e }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_buckets_and_option_names() {
        assert_eq!(bucket("1", 125_000), (120_000, 179_999));
        assert_eq!(bucket("1D", 86_400_000 + 5), (86_400_000, 2 * 86_400_000 - 1));
        let (exp, strike, call) = option_parts("BTC-25JUN27-100000-C").unwrap();
        assert_eq!((strike, call), (100_000.0, true));
        // 2027-06-25 is day 20 994 since the epoch.
        assert_eq!(exp, 20_994 * 86_400_000 + 8 * 3_600_000);
        assert!(option_parts("BTC-PERPETUAL").is_none());
        assert!((erf(0.0)).abs() < 1e-9 && (erf(1.0) - 0.8427).abs() < 1e-3);
    }
}
