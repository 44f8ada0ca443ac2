//! Bybit v5 private WebSocket (PROTOCOLS.md §5.4) on the linear market's
//! port: `/v5/private` (`auth`, `ping`, `subscribe` / `unsubscribe` of
//! `order`, `execution`, `position`, `wallet`). The signed order endpoint that
//! produces the pushes is `super::order`.
//!
//! Every op a private connection (and a `/v5/trade` connection, `super::trade`)
//! sends is recorded (`MarketHandle::bybit_private_conns`,
//! `GET /admin/bybit_private`). Secrets and signatures are never logged or echoed.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::hub::{Hub, HubState, KillMode, Session};
use crate::ws;

use super::encode::js;
use super::{PRIVATE, TRADE, state, state_mut};

/// The private WebSocket path.
pub(crate) const PATH: &str = "/v5/private";

/// The private topics served.
const TOPICS: [&str; 4] = ["order", "execution", "position", "wallet"];

/// Private connections whose op log is kept (the oldest are forgotten).
const LOG_CONNS: usize = 1000;

/// Ops recorded per connection.
const LOG_OPS: usize = 1000;

/// One op a private connection sent, as the simulator answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BybitOp {
    /// `auth`, `ping`, `subscribe`, `unsubscribe`, or what the client sent
    /// (empty when the frame was not a JSON object).
    pub op: String,
    /// Whether the reply was a success.
    pub success: bool,
    /// The reply's `ret_msg` (`"pong"` for a ping).
    pub ret_msg: String,
}

/// A Bybit private connection: its ops in order, and what it holds now.
#[derive(Debug, Clone, Serialize)]
pub struct BybitPrivateConn {
    /// Connection id (as in `/admin/connections`).
    pub conn: u64,
    /// Whether the socket is still open.
    pub open: bool,
    /// Whether it is an order-entry socket (`/v5/trade`) rather than `/v5/private`.
    pub trade: bool,
    /// The API key it authenticated with, if it did.
    pub api_key: Option<String>,
    /// Its private subscriptions.
    pub topics: Vec<String>,
    /// Every op it sent, in order.
    pub ops: Vec<BybitOp>,
}

/// The private side's own state in the hub.
#[derive(Debug, Default)]
pub(crate) struct PrivState {
    pub(crate) ops: BTreeMap<u64, ConnLog>,
    /// The next `seq` of `execution` / `position` items.
    pub(crate) seq: u64,
    /// The next message id.
    pub(crate) msg: u64,
}

/// The ops one connection sent.
#[derive(Debug, Default)]
pub(crate) struct ConnLog {
    /// A `/v5/trade` socket.
    trade: bool,
    ops: Vec<BybitOp>,
}

/// Why an `auth` op is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// `args` is not `[apiKey, expires, signature]` of the right types.
    Params,
    /// `expires` is not after the venue clock.
    Expired,
    /// No account has the API key.
    UnknownKey,
    /// The signature is not the key's.
    BadSign,
}

/// Records one op of `conn` (the oldest connections are forgotten).
pub(crate) fn log_op(hub: &Hub, conn: u64, trade: bool, op: BybitOp) {
    let mut st = hub.lock();
    if let Some(state) = state_mut(st.venue.as_mut()) {
        let ops = &mut state.private.ops;
        let log = ops.entry(conn).or_default();
        log.trade = trade;
        if log.ops.len() < LOG_OPS {
            log.ops.push(op);
        }
        while ops.len() > LOG_CONNS {
            ops.pop_first();
        }
    }
}

fn conn_id(hub: &Hub, conn: u64) -> String {
    format!("sim{:05}-{conn:x}-p", hub.addr.port())
}

/// A reply in the private shape: `{"success","ret_msg","op","conn_id"[,"req_id"]}`.
fn reply(success: bool, ret_msg: &str, op: &str, cid: &str, req_id: Option<&str>) -> String {
    let mut p =
        format!("{{\"success\":{success},\"ret_msg\":{},\"op\":{},\"conn_id\":{}", js(ret_msg), js(op), js(cid));
    if let Some(r) = req_id {
        p.push_str(",\"req_id\":");
        p.push_str(&js(r));
    }
    p.push('}');
    p
}

/// Answers one text frame of a private connection: (reply frame, success).
pub(crate) fn answer(hub: &Hub, conn: u64, text: &str) -> (Option<Bytes>, bool) {
    let cid = conn_id(hub, conn);
    let (op, ok, msg, frame) = respond(hub, conn, &cid, text);
    log_op(hub, conn, false, BybitOp { op, success: ok, ret_msg: msg });
    (Some(ws::encode(ws::op::TEXT, frame.as_bytes())), ok)
}

/// (op, success, ret_msg, reply text).
fn respond(hub: &Hub, conn: u64, cid: &str, text: &str) -> (String, bool, String, String) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            let m = "Failed to decode incoming data: not an object".to_string();
            return (String::new(), false, m.clone(), reply(false, &m, "", cid, None));
        }
        Err(e) => {
            let m = format!("Failed to decode incoming data: {e}");
            return (String::new(), false, m.clone(), reply(false, &m, "", cid, None));
        }
    };
    let req_id: Option<String> = match v.get("req_id") {
        Some(Value::String(s)) => Some(s.chars().take(64).collect()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let rid = req_id.as_deref();
    let op: String = v.get("op").and_then(Value::as_str).unwrap_or("").chars().take(64).collect();
    let (ok, msg) = match op.as_str() {
        "ping" => {
            let now = {
                let st = hub.lock();
                hub.venue_ms(&st)
            };
            let mut p = String::from("{");
            if let Some(r) = rid {
                p.push_str(&format!("\"req_id\":{},", js(r)));
            }
            p.push_str(&format!("\"op\":\"pong\",\"args\":[\"{now}\"],\"conn_id\":{}}}", js(cid)));
            return (op, true, "pong".into(), p);
        }
        "auth" => match authenticate(hub, conn, &v) {
            Ok(()) => (true, String::new()),
            Err(_) => (false, "Params Error".to_string()),
        },
        "subscribe" | "unsubscribe" => topics_op(hub, conn, &op, &v),
        _ => (false, "error:invalid op".to_string()),
    };
    let text = reply(ok, &msg, &op, cid, rid);
    (op, ok, msg, text)
}

/// Checks `{"op":"auth","args":[apiKey, expires, signature]}` (the same on
/// `/v5/private` and `/v5/trade`): the signature is the hex HMAC-SHA256 of
/// `GET/realtime{expires}` under the account's secret, and `expires` (ms,
/// number or numeric string) must be after the venue clock. Returns the
/// account and the venue time.
pub(crate) fn check_auth(hub: &Hub, v: &Value) -> Result<(usize, u64), AuthError> {
    use AuthError::*;
    let args = v.get("args").and_then(Value::as_array).ok_or(Params)?;
    let [key, expires, sig] = args.as_slice() else { return Err(Params) };
    let key = key.as_str().ok_or(Params)?;
    let expires: u64 = match expires {
        Value::Number(n) => n.as_u64().ok_or(Params)?,
        Value::String(s) => s.trim().parse().map_err(|_| Params)?,
        _ => return Err(Params),
    };
    let sig = sig.as_str().ok_or(Params)?;
    let (verifier, acct, now) = {
        let st = hub.lock();
        let acct = st.accounts.by_api_key(key).ok_or(UnknownKey)?;
        (st.accounts.list[acct].verifier.clone(), acct, hub.venue_ms(&st))
    };
    if expires <= now {
        return Err(Expired);
    }
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BadSign);
    }
    verifier.verify(format!("GET/realtime{expires}").as_bytes(), sig, false).map_err(|_| BadSign)?;
    Ok((acct, now))
}

/// `auth` on `/v5/private`: any refusal is `Params Error` (as observed).
fn authenticate(hub: &Hub, conn: u64, v: &Value) -> Result<(), AuthError> {
    let (acct, now) = check_auth(hub, v)?;
    let mut st = hub.lock();
    if let Some(c) = st.conns.get_mut(&conn) {
        // A second auth with another key moves the connection to that account.
        if c.session.is_some_and(|s| s.account != acct) {
            c.subs.clear();
        }
        c.session = Some(Session { account: acct, since_ms: now });
    }
    Ok(())
}

/// `subscribe` / `unsubscribe` of the private topics; only after `auth`.
fn topics_op(hub: &Hub, conn: u64, op: &str, v: &Value) -> (bool, String) {
    let args: Option<Vec<String>> = v
        .get("args")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect());
    let Some(args) = args else { return (false, "error:args must be an array of strings".into()) };
    let mut st = hub.lock();
    let Some(c) = st.conns.get_mut(&conn) else { return (false, "Request not authorized".into()) };
    if c.session.is_none() {
        return (false, "Request not authorized".into());
    }
    if op == "unsubscribe" {
        c.subs.retain(|s| !args.contains(s));
        return (true, String::new());
    }
    let mut errors = Vec::new();
    for a in args {
        if !TOPICS.contains(&a.as_str()) {
            errors.push(format!("error:handler not found,topic:{a}"));
        } else if c.subs.contains(&a) {
            errors.push(format!("error:already subscribed,topic:{a}"));
        } else {
            c.subs.push(a);
        }
    }
    (errors.is_empty(), errors.join(";"))
}

/// Queues one private message of `topic` for every authenticated connection
/// of `acct` subscribed to it; counted as produced either way.
pub(crate) fn push(st: &mut HubState, now_epoch_ms: u64, acct: usize, topic: &str, payload: &str) {
    if let Some(a) = st.accounts.list.get_mut(acct) {
        *a.events.entry(topic.to_string()).or_default() += 1;
    }
    let frame = ws::encode(ws::op::TEXT, payload.as_bytes());
    let mut queued = 0;
    let mut slow = Vec::new();
    for (id, c) in &st.conns {
        if c.kind.tag != PRIVATE || c.session.is_none_or(|s| s.account != acct) || !c.subs.iter().any(|s| s == topic) {
            continue;
        }
        if c.shared.stalled_until_ms.load(std::sync::atomic::Ordering::Relaxed) > now_epoch_ms {
            c.shared.dropped_while_stalled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        match c.data_tx.try_send(frame.clone()) {
            Ok(()) => queued += 1,
            Err(mpsc::error::TrySendError::Full(_)) => slow.push(*id),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
    if let Some(a) = st.accounts.list.get_mut(acct) {
        a.frames_queued += queued;
    }
    for id in slow {
        st.counters.slow_consumer_resets += 1;
        if let Some(c) = st.conns.get(&id) {
            let _ = c.kill_tx.send(Some(KillMode::Reset));
        }
    }
}

/// Every private connection still remembered (open ones and the last closed
/// ones), by id: the ops it sent in order (with the answer's success), its API
/// key once authenticated, and its topics. Nothing on other venues' markets.
pub(crate) fn conns(hub: &Hub) -> Vec<BybitPrivateConn> {
    let st = hub.lock();
    let Some(log) = state(st.venue.as_ref()).map(|s| &s.private.ops) else { return Vec::new() };
    let mut ids: Vec<u64> = log.keys().copied().collect();
    for (id, c) in &st.conns {
        if (c.kind.tag == PRIVATE || c.kind.tag == TRADE) && !ids.contains(id) {
            ids.push(*id);
        }
    }
    ids.sort_unstable();
    ids.into_iter()
        .map(|id| {
            let c = st.conns.get(&id);
            let entry = log.get(&id);
            BybitPrivateConn {
                conn: id,
                open: c.is_some(),
                trade: c.map_or_else(|| entry.is_some_and(|l| l.trade), |c| c.kind.tag == TRADE),
                api_key: c
                    .and_then(|c| c.session)
                    .and_then(|s| st.accounts.list.get(s.account))
                    .map(|a| a.spec.api_key.clone()),
                topics: c.map(|c| c.subs.clone()).unwrap_or_default(),
                ops: entry.map(|l| l.ops.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_replies_have_the_documented_shape() {
        let r: Value = serde_json::from_str(&reply(true, "", "auth", "c1", None)).unwrap();
        assert_eq!(r, serde_json::json!({"success":true,"ret_msg":"","op":"auth","conn_id":"c1"}));
        let r: Value = serde_json::from_str(&reply(false, "Params Error", "auth", "c1", Some("7"))).unwrap();
        assert_eq!(r["req_id"], "7");
    }
}
