//! Binance's control messages on market-stream connections (`SUBSCRIBE`,
//! `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`) with
//! the venue's acks (`{"result":null,"id":1}`) and nested errors, and the
//! subscription rules behind them: stream syntax, the per-connection cap, and
//! the USD-M/options routes (`/public` book data, `/market` the rest).

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::Value;

use crate::hub::{Hub, HubState, Periodic};
use crate::ws;

use super::topic::{self, Route, Snapshot, Topic};

/// Why a subscribe request failed: (code, msg) as sent on the wire.
pub(crate) type WireError = (i64, String);

fn reply(result: Value, id: &Value) -> Bytes {
    let v = serde_json::json!({ "result": result, "id": id });
    ws::encode(ws::op::TEXT, v.to_string().as_bytes())
}

fn error(code: i64, msg: &str, id: &Value) -> Bytes {
    let v = serde_json::json!({ "error": { "code": code, "msg": msg }, "id": id });
    ws::encode(ws::op::TEXT, v.to_string().as_bytes())
}

/// Returns (frame, success).
pub(crate) fn answer(hub: &Hub, conn: u64, text: &str) -> (Bytes, bool) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return (error(3, &format!("Invalid JSON: {e}"), &Value::Null), false),
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let id_ok = match &id {
        Value::Null => true,
        Value::Number(n) => n.is_u64() || n.is_i64(),
        Value::String(s) => s.len() <= 36 && s.bytes().all(|b| b.is_ascii_alphanumeric()),
        _ => false,
    };
    let col = text.len();
    let Some(method) = v.get("method") else {
        return (error(2, &format!("Invalid request: missing field `method` at line 1 column {col}"), &id), false);
    };
    if !id_ok {
        return (error(2, "Invalid request: request ID must be an unsigned integer", &Value::Null), false);
    }
    let method = method.as_str().unwrap_or_default();
    let params = v.get("params");
    let strings =
        || -> Option<Vec<String>> { params?.as_array()?.iter().map(|p| p.as_str().map(str::to_string)).collect() };
    match method {
        "SUBSCRIBE" | "UNSUBSCRIBE" => {
            let Some(streams) = strings() else {
                return (error(2, "Invalid request: invalid stream", &id), false);
            };
            if method == "SUBSCRIBE" && hub.take_reject() {
                return (error(-1003, "Too many requests; subscription rejected by the simulator", &id), false);
            }
            let r =
                if method == "SUBSCRIBE" { subscribe(hub, conn, &streams) } else { unsubscribe(hub, conn, &streams) };
            match r {
                Ok(()) => (reply(Value::Null, &id), true),
                Err((code, msg)) => (error(code, &msg, &id), false),
            }
        }
        "LIST_SUBSCRIPTIONS" => (reply(Value::from(hub.list(conn)), &id), true),
        "SET_PROPERTY" => {
            let p = params.and_then(Value::as_array).cloned().unwrap_or_default();
            if p.len() > 2 {
                return (error(2, "Invalid request: too many parameters", &id), false);
            }
            match (p.first().and_then(Value::as_str), p.get(1)) {
                (None, _) => (error(2, "Invalid request: property name must be a string", &id), false),
                (Some("combined"), Some(Value::Bool(b))) => {
                    hub.set_combined(conn, *b);
                    (reply(Value::Null, &id), true)
                }
                (Some("combined"), _) => (error(1, "Invalid value type: expected Boolean", &id), false),
                (Some(_), _) => (error(0, "Unknown property", &id), false),
            }
        }
        "GET_PROPERTY" => {
            let p = params.and_then(Value::as_array).cloned().unwrap_or_default();
            if p.len() > 1 {
                return (error(2, "Invalid request: too many parameters", &id), false);
            }
            match p.first().and_then(Value::as_str) {
                None => (error(2, "Invalid request: property name must be a string", &id), false),
                Some("combined") => (reply(Value::Bool(hub.combined(conn)), &id), true),
                Some(_) => (error(0, "Unknown property", &id), false),
            }
        }
        other => (
            error(
                2,
                &format!(
                    "Invalid request: unknown variant `{other}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column {col}"
                ),
                &id,
            ),
            false,
        ),
    }
}

/// Whether a connection on `route` gets `stream`.
fn deliverable(hub: &Hub, st: &HubState, route: Option<Route>, stream: &str) -> bool {
    if st.load_streams.contains(stream) {
        return true;
    }
    if !hub.kind().is_routed() {
        return true;
    }
    let Some(t) = topic::parse(hub.kind(), stream, |s| st.market.knows_lower(s)) else {
        return true;
    };
    match route {
        None | Some(Route::Public) => t.route() == Route::Public,
        Some(Route::Market) => t.route() == Route::Market,
        Some(Route::Private) => false,
    }
}

/// Adds streams to a connection, enforcing syntax and the stream cap.
pub(crate) fn subscribe(hub: &Hub, id: u64, streams: &[String]) -> Result<(), WireError> {
    if streams.iter().any(|s| !topic::is_well_formed(s)) {
        return Err((2, "Invalid request: invalid stream".into()));
    }
    let mut guard = hub.lock();
    let st = &mut *guard;
    let Some(conn) = st.conns.get(&id) else { return Ok(()) };
    let route = super::paths::route_of(conn.kind.tag);
    let existing: HashSet<&String> = conn.subs.iter().collect();
    let mut new: Vec<String> = Vec::new();
    for s in streams {
        if !existing.contains(s) && !new.contains(s) {
            new.push(s.clone());
        }
    }
    let total = conn.subs.len() + new.len();
    if total > hub.cfg.limits.max_streams_per_conn {
        st.counters.over_cap_rejections += 1;
        return Err((
            2,
            format!(
                "Invalid request: too many streams ({total} > {} per connection)",
                hub.cfg.limits.max_streams_per_conn
            ),
        ));
    }
    let now = hub.venue_ms(st);
    for s in new {
        if deliverable(hub, st, route, &s) {
            st.subs.entry(s.clone()).or_default().push(id);
        }
        track(hub, st, &s, now);
        if let Some(c) = st.conns.get_mut(&id) {
            c.subs.push(s);
        }
    }
    st.counters.max_streams_on_a_connection = st.counters.max_streams_on_a_connection.max(total as u64);
    if streams.iter().any(|s| st.load_streams.contains(s)) {
        hub.load_wakeup.notify_waiters();
    }
    Ok(())
}

/// Starts tracking a stream: its ground-truth entry, its candles, and its
/// timer when it is a snapshot-style topic.
fn track(hub: &Hub, st: &mut HubState, s: &str, now: u64) {
    if !st.tracked.insert(s.to_string()) {
        return;
    }
    st.streams.entry(s.to_string()).or_default();
    if let Some(t) = topic::parse(hub.kind(), s, |x| st.market.knows_lower(x)) {
        if let Topic::Kline(sym, iv) = &t {
            st.market.ensure_candle(sym, iv, topic::bounds, now);
        }
        if let Some(period) = t.period_ms(hub.kind()) {
            let period_ms = hub.cfg.timing.cadence(period).as_millis() as u64;
            let snapshot = Box::new(Snapshot { topic: t, last_u: 0 });
            st.periodic.insert(s.to_string(), Periodic { topic: snapshot, period_ms, next_due: now + period_ms });
        }
    }
}

/// Removes streams from a connection (syntax checked first).
pub(crate) fn unsubscribe(hub: &Hub, id: u64, streams: &[String]) -> Result<(), WireError> {
    if streams.iter().any(|s| !topic::is_well_formed(s)) {
        return Err((2, "Invalid request: invalid stream".into()));
    }
    hub.unsubscribe(id, streams);
    Ok(())
}
