//! The `ORDERS` rate limits (`Limits::order_rate_limits`): counting an
//! account's new orders in fixed intervals, the `-1015` refusal, the
//! `rateLimits` array of WebSocket API answers and the `X-MBX-ORDER-COUNT-*`
//! headers of REST order answers.

use crate::config::{MarketKind, OrderRateLimit};
use crate::hub::{Hub, HubState};

use super::orders::Reject;
use super::state;

/// An interval as the venue names it: (`SECOND`|`MINUTE`|`HOUR`|`DAY`, how many).
pub(crate) fn interval(l: &OrderRateLimit) -> (&'static str, u64) {
    let s = l.window.as_secs().max(1);
    if s.is_multiple_of(86_400) {
        ("DAY", s / 86_400)
    } else if s.is_multiple_of(3600) {
        ("HOUR", s / 3600)
    } else if s.is_multiple_of(60) {
        ("MINUTE", s / 60)
    } else {
        ("SECOND", s)
    }
}

/// The `-1015` message for limit `l`. Spot writes the interval as "10
/// SECOND" (web-socket-api.md, `order.cancelReplace` examples: "Too many new
/// orders; current limit is 50 orders per 10 SECOND."); USD-M as
/// "TEN_SECONDS" (the message clients quote for `-1015` there, e.g.
/// "current limit is 300 orders per TEN_SECONDS.").
fn too_many(kind: MarketKind, l: &OrderRateLimit) -> String {
    let (name, n) = interval(l);
    let per = match (kind, name, n) {
        (MarketKind::Spot, _, _) => format!("{n} {name}"),
        (_, "SECOND", 10) => "TEN_SECONDS".to_string(),
        (_, _, 1) => name.to_string(),
        _ => format!("{n} {name}"),
    };
    format!("Too many new orders; current limit is {} orders per {per}.", l.limit)
}

/// Counts one new order of `acct`; over a limit it is refused with HTTP 429
/// and `-1015` (and not counted). Returns the counts after.
pub(crate) fn count(hub: &Hub, st: &mut HubState, acct: usize) -> Result<Vec<u32>, Reject> {
    let limits = &hub.cfg.limits.order_rate_limits;
    if limits.is_empty() {
        return Ok(Vec::new());
    }
    let now = hub.venue_ms(st);
    let Some(bs) = state::get_mut(st.venue.as_mut()) else { return Ok(Vec::new()) };
    match bs.count_order(acct, limits, now) {
        Ok(()) => Ok(bs.order_counts(acct, limits, now)),
        Err(i) => Err((429, -1015, too_many(hub.kind(), &limits[i]))),
    }
}

/// The current counts of `acct` (for the `rateLimits` of a refusal).
pub(crate) fn counts(hub: &Hub, st: &mut HubState, acct: usize) -> Vec<u32> {
    let limits = &hub.cfg.limits.order_rate_limits;
    let now = hub.venue_ms(st);
    state::get_mut(st.venue.as_mut()).map(|bs| bs.order_counts(acct, limits, now)).unwrap_or_default()
}

/// One `rateLimits` entry.
fn entry(kind: &str, interval: &str, num: u64, limit: u64, count: u64) -> String {
    format!(
        "{{\"rateLimitType\":\"{kind}\",\"interval\":\"{interval}\",\"intervalNum\":{num},\"limit\":{limit},\"count\":{count}}}"
    )
}

/// The `rateLimits` array: the `ORDERS` intervals first (when `orders` has
/// the counts of an order method), then `REQUEST_WEIGHT`, as the venue's
/// examples list them.
pub(crate) fn rate_limits(hub: &Hub, weight: (u32, u32), orders: Option<&[u32]>) -> String {
    let mut out: Vec<String> = Vec::new();
    if let Some(counts) = orders {
        for (l, c) in hub.cfg.limits.order_rate_limits.iter().zip(counts) {
            let (name, n) = interval(l);
            out.push(entry("ORDERS", name, n, l.limit as u64, *c as u64));
        }
    }
    let window = hub.cfg.limits.rest_weight_window;
    let (name, n) = interval(&OrderRateLimit { window, limit: 0 });
    out.push(entry("REQUEST_WEIGHT", name, n, weight.1 as u64, weight.0 as u64));
    format!("[{}]", out.join(","))
}

/// `X-MBX-ORDER-COUNT-10S`-style headers for a REST order answer.
pub(crate) fn headers(hub: &Hub, counts: &[u32]) -> Vec<(String, String)> {
    hub.cfg
        .limits
        .order_rate_limits
        .iter()
        .zip(counts)
        .map(|(l, c)| {
            let (name, n) = interval(l);
            (format!("x-mbx-order-count-{n}{}", &name[..1].to_ascii_lowercase()), c.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_messages_read_as_the_venue_writes_them() {
        let ten = OrderRateLimit::new(10, 50);
        assert_eq!(interval(&ten), ("SECOND", 10));
        assert_eq!(interval(&OrderRateLimit::new(86_400, 1)), ("DAY", 1));
        assert_eq!(interval(&OrderRateLimit::new(60, 1)), ("MINUTE", 1));
        assert_eq!(too_many(MarketKind::Spot, &ten), "Too many new orders; current limit is 50 orders per 10 SECOND.");
        let usdm = OrderRateLimit::new(10, 300);
        assert_eq!(
            too_many(MarketKind::UsdM, &usdm),
            "Too many new orders; current limit is 300 orders per TEN_SECONDS."
        );
        assert_eq!(
            too_many(MarketKind::UsdM, &OrderRateLimit::new(60, 1200)),
            "Too many new orders; current limit is 1200 orders per MINUTE."
        );
    }
}
