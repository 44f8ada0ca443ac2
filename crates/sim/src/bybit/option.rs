//! What the option payloads derive from an option's name and book.

use crate::market::SymbolState;

use super::kline::{DAY_MS, days_from_civil};

/// What the option payloads derive from an option's name and book: strike,
/// call or put, years to expiry, the underlying's price and a volatility.
pub(crate) struct OptionModel {
    pub(crate) strike: f64,
    pub(crate) call: bool,
    pub(crate) years: f64,
    pub(crate) spot: f64,
    pub(crate) sigma: f64,
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

pub(crate) fn option_model(s: &SymbolState, now_ms: u64) -> OptionModel {
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
    pub(crate) fn greeks(&self) -> (f64, f64, f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
