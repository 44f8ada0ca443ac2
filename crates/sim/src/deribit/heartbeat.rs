//! `public/set_heartbeat` (PROTOCOLS.md §6.3; docs.deribit.com
//! `api-reference/session-management/public-set_heartbeat`): after it, the
//! server sends a heartbeat every interval: `type: "test_request"`, or
//! `type: "heartbeat"` when the client sent a request (other than
//! `public/test`) since the last one and so has shown it is alive. A
//! `test_request` must be answered with `public/test` before the next
//! interval ends, else the connection is closed with 4000 `heartbeat close`
//! (as observed). The interval is the requested seconds × `Timing::scale`.
//!
//! Driven by the market's generator step (`Dialect::route_emits`), which
//! checks every connection's deadline; nothing runs per connection.

use crate::hub::Ctrl;
use crate::ws;

use super::DeribitState;

/// A connection's heartbeat state.
#[derive(Debug, Default)]
pub(crate) struct Beat {
    /// The interval (venue ms, scaled) while heartbeats are on.
    pub period_ms: Option<u64>,
    /// When the next beat is due (venue ms).
    pub next_due: u64,
    /// A `test_request` was sent and not yet answered.
    pub outstanding: bool,
    /// The client sent a request (not `public/test`) since the last beat.
    pub active: bool,
}

/// `{"jsonrpc":"2.0","method":"heartbeat","params":{"type":..}}`.
pub(crate) fn payload(kind: &str) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"method\":\"heartbeat\",\"params\":{{\"type\":\"{kind}\"}}}}")
}

impl Beat {
    /// Heartbeats every `period_ms` from `now_ms` on.
    pub(crate) fn start(&mut self, period_ms: u64, now_ms: u64) {
        *self = Beat { period_ms: Some(period_ms.max(1)), next_due: now_ms + period_ms.max(1), ..Beat::default() };
    }

    /// A request arrived: `public/test` answers an outstanding
    /// `test_request` (returns `true` then); anything else shows the client alive.
    pub(crate) fn seen(&mut self, method: &str) -> bool {
        if method == "public/test" {
            std::mem::take(&mut self.outstanding)
        } else {
            self.active = true;
            false
        }
    }
}

/// Sends the due beats and closes the connections that left a
/// `test_request` unanswered; forgets connections that are gone.
pub(crate) fn tick(d: &mut DeribitState, now_ms: u64) {
    let DeribitState { conns, stats, .. } = d;
    conns.retain(|_, c| c.ctrl.as_ref().is_some_and(|t| !t.is_closed()));
    for c in conns.values_mut() {
        let Some(period) = c.beat.period_ms else { continue };
        if now_ms < c.beat.next_due {
            continue;
        }
        c.beat.next_due = now_ms + period;
        let Some(ctrl) = c.ctrl.as_ref() else { continue };
        if c.beat.outstanding {
            stats.heartbeat_closes += 1;
            c.beat.period_ms = None;
            let _ = ctrl.try_send(Ctrl::Close(4000, "heartbeat close".into()));
            continue;
        }
        let kind = if std::mem::take(&mut c.beat.active) { "heartbeat" } else { "test_request" };
        if kind == "test_request" {
            c.beat.outstanding = true;
            stats.test_requests_sent += 1;
        } else {
            stats.heartbeats_sent += 1;
        }
        let _ = ctrl.try_send(Ctrl::Frame(ws::encode(ws::op::TEXT, payload(kind).as_bytes())));
    }
}
