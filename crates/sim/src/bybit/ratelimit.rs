//! The per-account order rate limits (docs/v5/rate-limit/rate-limit.mdx,
//! "API Rate Limit" and "Instructions for batch endpoints"): a rolling window
//! per UID and per op type (`order.create`, `order.amend`, `order.cancel` and
//! each batch op, whose limit is its own); a batch consumes one per order, and
//! the orders past the limit fail while the others go through. Over the
//! limit the venue answers `retCode 10006` / `"Too many visits!"`. Every
//! answer reports the count in its header: `X-Bapi-Limit` (the limit),
//! `X-Bapi-Limit-Status` (what is left), `X-Bapi-Limit-Reset-Timestamp`
//! (when the limit resets if it was exceeded, else the current time).
//!
//! `POST /v5/order/create` counts against the same `order.create` window as
//! the WebSocket op (the guideline: "The account rate limit is shared between
//! websocket and http").

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::hub::{Hub, HubState};

use super::state_mut;

/// The retCode and retMsg over the limit.
pub(crate) const TOO_MANY: (i64, &str) = (10006, "Too many visits!");

/// The op types counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OpKind {
    Create,
    Amend,
    Cancel,
    CreateBatch,
    AmendBatch,
    CancelBatch,
}

/// What one request was granted, and the header it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    /// Orders of the request that may go through (the first ones).
    pub granted: u32,
    /// `X-Bapi-Limit`.
    pub limit: u32,
    /// `X-Bapi-Limit-Status`: what is left after this request.
    pub remaining: u32,
    /// `X-Bapi-Limit-Reset-Timestamp` (venue ms).
    pub reset_ms: u64,
}

/// The rolling windows of every (account, op type) that sent something.
/// Each holds at most `limit` instants (only granted orders are recorded), and
/// there is one per account and op type at most.
#[derive(Debug, Default)]
pub(crate) struct OrderLimits {
    windows: HashMap<(usize, OpKind), VecDeque<Instant>>,
}

impl OrderLimits {
    /// Takes up to `n` slots of `key` (account, op type) at `now` (venue clock `now_ms`).
    pub(crate) fn take(
        &mut self,
        key: (usize, OpKind),
        n: u32,
        limit: u32,
        window: Duration,
        now: Instant,
        now_ms: u64,
    ) -> Quota {
        let w = self.windows.entry(key).or_default();
        while w.front().is_some_and(|t| now.duration_since(*t) >= window) {
            w.pop_front();
        }
        let used = w.len().min(limit as usize) as u32;
        let granted = n.min(limit - used);
        for _ in 0..granted {
            w.push_back(now);
        }
        let remaining = limit - used - granted;
        let reset_ms = if granted < n {
            // The oldest counted request leaves the window first.
            let wait = w.front().map_or(Duration::ZERO, |t| window.saturating_sub(now.duration_since(*t)));
            now_ms.saturating_add(wait.as_millis() as u64)
        } else {
            now_ms
        };
        Quota { granted, limit, remaining, reset_ms }
    }
}

/// Charges `n` orders of `op` to account `acct` under the market's
/// `Limits::bybit_order_limit` per `Limits::bybit_order_window`.
pub(crate) fn charge(hub: &Hub, st: &mut HubState, acct: usize, op: OpKind, n: u32) -> Quota {
    let now_ms = hub.venue_ms(st);
    let (limit, window) = (hub.cfg.limits.bybit_order_limit, hub.cfg.limits.bybit_order_window);
    match state_mut(st.venue.as_mut()) {
        Some(b) => b.limits.take((acct, op), n, limit, window, Instant::now(), now_ms),
        None => Quota { granted: 0, limit, remaining: 0, reset_ms: now_ms },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_account_and_op_and_grants_part_of_a_batch() {
        let mut l = OrderLimits::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(1);
        let q = l.take((0, OpKind::Create), 1, 3, w, t0, 1000);
        assert_eq!(q, Quota { granted: 1, limit: 3, remaining: 2, reset_ms: 1000 });
        // Another op type and another account count apart.
        assert_eq!(l.take((0, OpKind::Cancel), 1, 3, w, t0, 1000).remaining, 2);
        assert_eq!(l.take((1, OpKind::Create), 1, 3, w, t0, 1000).remaining, 2);
        // A batch of 4 gets the 2 left; the reset is when the first leaves the window.
        let q = l.take((0, OpKind::Create), 4, 3, w, t0 + Duration::from_millis(300), 1300);
        assert_eq!(q, Quota { granted: 2, limit: 3, remaining: 0, reset_ms: 2000 });
        assert_eq!(l.take((0, OpKind::Create), 1, 3, w, t0 + Duration::from_millis(400), 1400).granted, 0);
        // The window rolls.
        let q = l.take((0, OpKind::Create), 1, 3, w, t0 + Duration::from_millis(1000), 2000);
        assert_eq!((q.granted, q.remaining), (1, 0));
        // A smaller limit configured later never underflows.
        assert_eq!(l.take((0, OpKind::Create), 1, 1, w, t0 + Duration::from_millis(1001), 2001).granted, 0);
    }
}
