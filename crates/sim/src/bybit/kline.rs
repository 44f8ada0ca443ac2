//! Bybit klines (`kline.<interval>.<SYMBOL>`): calendar buckets and payloads.

use crate::config::{BybitCategory, SymbolSpec};
use crate::market::{Candle, Market};

use super::encode::trimmed;

/// The kline intervals, as the venue writes them.
pub(crate) const KLINE_INTERVALS: [&str; 13] =
    ["1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M"];

/// Push cadence (ms, before scaling) of `kline.<interval>` (the venue: 1–60 s).
pub(crate) const KLINE_PERIOD_MS: u64 = 1000;

pub(crate) const DAY_MS: u64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
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

/// [`kline_bounds`] as the generator's candle buckets (only Bybit intervals
/// are ever tracked; anything else is a bucket of one millisecond).
pub(crate) fn bucket(iv: &str, now_ms: u64) -> (u64, u64) {
    kline_bounds(iv, now_ms).unwrap_or((now_ms, now_ms))
}

/// The next `kline.<iv>.<sym>` messages: the candles that closed since the
/// last push (`confirm:true`, oldest first), if any, then the open one
/// (`confirm:false`).
pub(crate) fn render_kline(
    m: &mut Market,
    cat: BybitCategory,
    sym: &str,
    iv: &'static str,
    now_ms: u64,
) -> Vec<(String, Option<u64>)> {
    let Some(i) = m.symbol_index(sym) else { return vec![] };
    let Some((closed, open)) = m.candles(sym, iv, bucket, now_ms) else { return vec![] };
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
