//! JSON-RPC 2.0 framing and dispatch (PROTOCOLS.md §6.2), the subscribe
//! rules (§6.2, §6.6) and the REST endpoints under `/api/v2/`.
//!
//! Every answer echoes the request's `id` and carries `usIn`, `usOut`,
//! `usDiff` (µs) and `testnet: false`. Text that is not a JSON object gets
//! `11050 bad_request` (`data: "invalid json"`, no id) and the socket stays
//! open; an unknown method `-32601 Method not found`; bad parameters
//! `-32602 Invalid params` with `data: {reason, param}`.

use std::collections::HashSet;

use bytes::Bytes;
use hyper::{Request, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::DeribitKind;
use crate::hub::{Ctrl, Hub, HubState, KillMode, Periodic, wall_ms};
use crate::server::{Resp, json, query};
use crate::ws;

use super::book::{BookChan, GroupedChan, pairs};
use super::channel::{Channel, Interval, Known};
use super::encode::{Inst, js, notification};
use super::private::{self, Authz};
use super::{DeribitState, Push, credits, order, state_mut, ticker};

/// The API version `public/test` reports.
const VERSION: &str = "1.2.26";

/// An error answer.
#[derive(Debug, Clone)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    /// Pre-encoded JSON, if any.
    pub data: Option<String>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: &str) -> RpcError {
        RpcError { code, message: message.to_string(), data: None }
    }

    pub(crate) fn with(code: i64, message: &str, data: String) -> RpcError {
        RpcError { code, message: message.to_string(), data: Some(data) }
    }

    /// `-32602 Invalid params` naming the parameter and why.
    pub(crate) fn param(param: &str, reason: &str) -> RpcError {
        RpcError::with(-32602, "Invalid params", format!("{{\"reason\":{},\"param\":{}}}", js(reason), js(param)))
    }
}

/// What a method answers.
pub(crate) type Answer = Result<String, RpcError>;

/// The µs wall clock.
fn us_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// A response: `{"jsonrpc","id"?,"result"|"error",...,"usIn","usOut","usDiff","testnet"}`.
pub(crate) fn envelope(id: Option<&str>, answer: &Answer, us_in: u64) -> String {
    let mut p = String::from("{\"jsonrpc\":\"2.0\",");
    if let Some(id) = id {
        p.push_str("\"id\":");
        p.push_str(id);
        p.push(',');
    }
    match answer {
        Ok(r) => {
            p.push_str("\"result\":");
            p.push_str(r);
        }
        Err(e) => {
            p.push_str(&format!("\"error\":{{\"code\":{},\"message\":{}", e.code, js(&e.message)));
            if let Some(d) = &e.data {
                p.push_str(",\"data\":");
                p.push_str(d);
            }
            p.push('}');
        }
    }
    let out = us_now().max(us_in);
    p.push_str(&format!(",\"usIn\":{us_in},\"usOut\":{out},\"usDiff\":{},\"testnet\":false}}", out - us_in));
    p
}

fn frame(s: &str) -> Bytes {
    ws::encode(ws::op::TEXT, s.as_bytes())
}

/// A request's parsed parts.
pub(crate) struct Req<'a> {
    pub method: &'a str,
    pub params: &'a serde_json::Map<String, Value>,
    /// The request text (for exact numbers: [`raw_number`]).
    pub text: &'a str,
}

/// Answers one text frame of a Deribit connection.
pub(crate) fn answer(kind: DeribitKind, hub: &Hub, conn: u64, text: &str) -> (Option<Bytes>, bool) {
    let us_in = us_now();
    let v: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let e = RpcError::with(11050, "bad_request", "\"invalid json\"".into());
            return (Some(frame(&envelope(None, &Err(e), us_in))), false);
        }
    };
    let id: Option<String> = match v.get("id") {
        Some(x @ (Value::Number(_) | Value::String(_))) => Some(x.to_string()),
        _ => None,
    };
    let id = id.as_deref();
    let reply = |a: Answer| {
        let ok = a.is_ok();
        (Some(frame(&envelope(id, &a, us_in))), ok)
    };
    let Some(method) = v.get("method").and_then(Value::as_str) else {
        return reply(Err(RpcError::with(11050, "bad_request", "\"missing method\"".into())));
    };
    let empty = serde_json::Map::new();
    let params = match v.get("params") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return reply(Err(RpcError::param("params", "must be an object"))),
    };
    // Credits, and the heartbeat's view of the client.
    {
        let mut guard = hub.lock();
        let st = &mut *guard;
        let limits = &hub.cfg.limits.deribit;
        let now = tokio::time::Instant::now();
        let class = credits::class(method);
        let Some(c) = private::conn_state(st, conn) else { return (None, false) };
        if c.beat.seen(method)
            && let Some(d) = state_mut(st.venue.as_mut())
        {
            d.stats.test_requests_answered += 1;
        }
        let Some(c) = private::conn_state(st, conn) else { return (None, false) };
        let granted = c.credits.charge(class, limits, now);
        let Some(d) = state_mut(st.venue.as_mut()) else { return (None, false) };
        if !granted {
            d.stats.too_many_requests += 1;
            let e = RpcError::with(10028, "too_many_requests", "null".into());
            let f = frame(&envelope(id, &Err(e), us_in));
            if let Some(c) = st.conns.get(&conn) {
                let _ = c.ctrl_tx.try_send(Ctrl::Frame(f));
                let _ = c.ctrl_tx.try_send(Ctrl::Close(1000, "too_many_requests".into()));
            }
            return (None, false);
        }
        match class {
            credits::Class::Subscribe => d.stats.credits_subscribe += limits.subscribe_cost,
            credits::Class::Other => d.stats.credits_requests += limits.request_cost,
            credits::Class::Matching => d.stats.matching_requests += 1,
        }
    }
    let req = Req { method, params, text };
    if method == "public/subscribe" || method == "private/subscribe" {
        return subscribe(kind, hub, conn, &req, id, us_in);
    }
    reply(dispatch(kind, hub, conn, &req))
}

fn dispatch(kind: DeribitKind, hub: &Hub, conn: u64, req: &Req<'_>) -> Answer {
    let p = req.params;
    match req.method {
        "public/test" => {
            if p.get("expected_result").and_then(Value::as_str) == Some("exception") {
                return Err(RpcError::new(11094, "internal_server_error"));
            }
            Ok(format!("{{\"version\":\"{VERSION}\"}}"))
        }
        "public/get_time" => Ok(hub.venue_ms(&hub.lock()).to_string()),
        "public/set_heartbeat" => {
            let min = hub.cfg.limits.deribit.min_heartbeat_secs;
            let secs = match p.get("interval").and_then(Value::as_f64) {
                Some(s) if s.is_finite() && s >= min as f64 && s <= 1e6 => s,
                Some(_) => return Err(RpcError::param("interval", &format!("must be at least {min}"))),
                None => return Err(RpcError::param("interval", "required")),
            };
            let mut st = hub.lock();
            let now = hub.venue_ms(&st);
            let period_ms = (secs * 1000.0 * hub.cfg.timing.scale).round().max(1.0) as u64;
            if let Some(c) = private::conn_state(&mut st, conn) {
                c.beat.start(period_ms, now);
            }
            Ok("\"ok\"".into())
        }
        "public/disable_heartbeat" => {
            let mut st = hub.lock();
            if let Some(c) = private::conn_state(&mut st, conn) {
                c.beat = Default::default();
            }
            Ok("\"ok\"".into())
        }
        "public/unsubscribe" | "private/unsubscribe" => {
            let names = channels_param(p)?;
            let held: HashSet<String> = hub.list(conn).into_iter().collect();
            let removed: Vec<String> = names.into_iter().filter(|n| held.contains(n)).collect();
            hub.unsubscribe(conn, &removed);
            Ok(serde_json::to_string(&removed).unwrap_or_else(|_| "[]".into()))
        }
        "public/unsubscribe_all" | "private/unsubscribe_all" => {
            let all = hub.list(conn);
            hub.unsubscribe(conn, &all);
            Ok("\"ok\"".into())
        }
        "public/get_order_book" => get_order_book(kind, hub, p),
        "public/get_instruments" => Ok(instruments(kind, hub)),
        "public/auth" => private::auth(hub, conn, req),
        m if m.starts_with("private/") => {
            let acct = private::authorize(hub, conn, p)?;
            order::private_method(kind, hub, conn, acct, req)
        }
        _ => Err(RpcError::new(-32601, "Method not found")),
    }
}

/// The `channels` parameter: an array of strings.
fn channels_param(p: &serde_json::Map<String, Value>) -> Result<Vec<String>, RpcError> {
    p.get("channels")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect())
        .ok_or_else(|| RpcError::param("channels", "must be an array of strings"))
}

/// Queues frames on a connection's data path in order; a full queue resets
/// the connection as a slow consumer.
pub(crate) fn queue_data(st: &mut HubState, conn: u64, frames: Vec<Bytes>) {
    let Some(c) = st.conns.get(&conn) else { return };
    for f in frames {
        match c.data_tx.try_send(f) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let _ = c.kill_tx.send(Some(KillMode::Reset));
                st.counters.slow_consumer_resets += 1;
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// `public/subscribe` / `private/subscribe`: the result is the channels
/// actually subscribed; names that do not parse, unknown instruments, bad
/// intervals and (on `public/subscribe`) private channels are dropped
/// silently. A `raw` channel on an unauthorized connection refuses the
/// request with `13778`; `private/subscribe` of a `user.*` channel without
/// auth with `13009`. A channel already held is in the result again but
/// gets no new snapshot. The result goes out on the data path, followed by
/// the new channels' first messages.
fn subscribe(
    kind: DeribitKind,
    hub: &Hub,
    conn: u64,
    req: &Req<'_>,
    id: Option<&str>,
    us_in: u64,
) -> (Option<Bytes>, bool) {
    let reply = |a: Answer| {
        let ok = a.is_ok();
        (Some(frame(&envelope(id, &a, us_in))), ok)
    };
    let names = match channels_param(req.params) {
        Ok(n) => n,
        Err(e) => return reply(Err(e)),
    };
    let limits = &hub.cfg.limits;
    if names.len() > limits.deribit.max_channels_per_call {
        return reply(Err(RpcError::param(
            "channels",
            &format!("at most {} channels per call", limits.deribit.max_channels_per_call),
        )));
    }
    let private_call = req.method == "private/subscribe";
    let mut guard = hub.lock();
    let st = &mut *guard;
    let now = hub.venue_ms(st);
    let specs: Vec<_> = st.market.symbols.iter().map(|s| s.spec.clone()).collect();
    let spec_refs: Vec<&_> = specs.iter().collect();
    let known = Known { specs: &spec_refs };
    let parsed: Vec<(String, Channel)> = names
        .iter()
        .filter_map(|n| known.parse(n).map(|c| (n.clone(), c)))
        .filter(|(_, c)| private_call || !c.is_private())
        .collect();
    let authz = private::authz(st, conn, None);
    let authorized = matches!(authz, Authz::Ok(_));
    if parsed.iter().any(|(_, c)| c.is_private()) && !authorized {
        let reason = if authz == Authz::Expired { "token_expired" } else { "invalid_token" };
        if authz == Authz::Expired {
            private::count_expiry(st, conn);
        }
        return reply(Err(RpcError::with(13009, "unauthorized", format!("{{\"reason\":\"{reason}\"}}"))));
    }
    if parsed.iter().any(|(_, c)| c.interval() == Some(Interval::Raw)) && !authorized {
        return reply(Err(RpcError::new(13778, "raw_subscriptions_not_available_for_unauthorized")));
    }
    let held: HashSet<String> = st.conns.get(&conn).map(|c| c.subs.iter().cloned().collect()).unwrap_or_default();
    let mut count = held.len();
    let mut result: Vec<String> = Vec::new();
    let mut added: Vec<String> = Vec::new();
    let mut first: Vec<Bytes> = Vec::new();
    let mut over = false;
    for (name, chan) in parsed {
        if result.contains(&name) {
            continue;
        }
        if held.contains(&name) {
            result.push(name);
            continue;
        }
        if count >= limits.max_streams_per_conn {
            over = true;
            continue;
        }
        count += 1;
        if let Some(p) = track(kind, hub, st, &name, &chan, now) {
            first.push(frame(&p));
        }
        if !chan.is_private() {
            st.subs.entry(name.clone()).or_default().push(conn);
        }
        added.push(name.clone());
        result.push(name);
    }
    if over {
        st.counters.over_cap_rejections += 1;
    }
    if let Some(c) = st.conns.get_mut(&conn) {
        c.subs.extend(added);
        let n = c.subs.len() as u64;
        st.counters.max_streams_on_a_connection = st.counters.max_streams_on_a_connection.max(n);
    }
    let ack = frame(&envelope(id, &Ok(serde_json::to_string(&result).unwrap_or_else(|_| "[]".into())), us_in));
    if st.faults.ack_delay.is_zero() {
        first.insert(0, ack);
        queue_data(st, conn, first);
        (None, true)
    } else {
        queue_data(st, conn, first);
        (Some(ack), true)
    }
}

/// Starts feeding a channel if nobody did yet; returns what a new
/// subscriber gets first (books: the snapshot; grouped books, tickers and
/// the like: the current message).
fn track(kind: DeribitKind, hub: &Hub, st: &mut HubState, name: &str, chan: &Channel, now: u64) -> Option<String> {
    if chan.is_private() {
        return None;
    }
    if st.tracked.insert(name.to_string()) {
        st.streams.entry(name.to_string()).or_default();
        let period = match chan {
            Channel::Book(sym, iv) => {
                let s = st.market.symbol(sym)?;
                let c = BookChan::new(s, now);
                state_mut(st.venue.as_mut())?.books.insert(name.to_string(), c);
                Some(iv.period_ms())
            }
            Channel::Grouped(_, _, iv) => {
                state_mut(st.venue.as_mut())?.grouped.insert(name.to_string(), GroupedChan::default());
                Some(iv.period_ms())
            }
            Channel::Trades(_, iv) => (*iv != Interval::Raw).then_some(iv.period_ms()),
            Channel::Ticker(_, iv) | Channel::Perpetual(_, iv) => Some(iv.period_ms()),
            Channel::Quote(_) => Some(0),
            Channel::Chart(sym, res) => {
                st.market.ensure_candle(&sym.to_lowercase(), res, ticker::bucket, now);
                Some(1000)
            }
            Channel::PriceIndex(_) => Some(1000),
            _ => None,
        };
        if let Some(ms) = period {
            let period_ms = hub.cfg.timing.cadence(ms).as_millis() as u64;
            let push = Box::new(Push { kind, name: name.to_string(), chan: chan.clone() });
            st.periodic.insert(name.to_string(), Periodic { topic: push, period_ms, next_due: now });
        }
    }
    let HubState { market, venue, .. } = st;
    let d: &mut DeribitState = state_mut(venue.as_mut())?;
    let with_ts = |body: String| notification(name, &ticker::with_timestamp(now, &body));
    match chan {
        Channel::Book(sym, _) => Some(d.books.get(name)?.snapshot(kind, market.symbol(sym)?, name, now)),
        Channel::Grouped(sym, depth, _) => {
            Some(d.grouped.get_mut(name)?.render(kind, market.symbol(sym)?, *depth, name, now, true)?.0)
        }
        Channel::Ticker(sym, _) => Some(with_ts(ticker::ticker_body(kind, market.symbol(sym)?, now))),
        Channel::Quote(sym) => Some(with_ts(ticker::quote_body(kind, market.symbol(sym)?))),
        Channel::Perpetual(sym, _) => Some(with_ts(ticker::perpetual_body(kind, market.symbol(sym)?))),
        Channel::PriceIndex(idx) => Some(with_ts(ticker::price_index_body(kind, market, idx))),
        _ => None,
    }
}

/// `public/get_order_book` (instrument_name, depth 1–10 000, default 20):
/// the true book now with `change_id` = its update id, best bid and ask,
/// and the ticker's prices and stats.
fn get_order_book(kind: DeribitKind, hub: &Hub, p: &serde_json::Map<String, Value>) -> Answer {
    let Some(name) = p.get("instrument_name").and_then(Value::as_str) else {
        return Err(RpcError::param("instrument_name", "required"));
    };
    let depth = match p.get("depth") {
        None => 20,
        Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(d) if (1..=10_000).contains(&d) => d as usize,
            _ => return Err(RpcError::param("depth", "must be between 1 and 10000")),
        },
    };
    let st = hub.lock();
    let now = hub.venue_ms(&st);
    let Some(s) = st.market.symbol(name) else {
        return Err(RpcError::with(
            10007,
            "not_found",
            format!("{{\"reason\":\"instrument not found\",\"param\":{}}}", js(name)),
        ));
    };
    let inst = Inst::of(kind, &s.spec);
    let copy = s.copy(depth, now);
    let mut d = format!("{{\"timestamp\":{now},");
    d.push_str(&ticker::ticker_body(kind, s, now));
    d.push_str(&format!(",\"change_id\":{},\"bids\":", copy.last_update_id));
    pairs(&mut d, &inst, &copy.bids);
    d.push_str(",\"asks\":");
    pairs(&mut d, &inst, &copy.asks);
    d.push('}');
    Ok(d)
}

/// `public/get_instruments`: the market's instruments with tick size,
/// contract size and minimum amount.
fn instruments(kind: DeribitKind, hub: &Hub) -> String {
    let st = hub.lock();
    let items: Vec<String> = st
        .market
        .symbols
        .iter()
        .map(|s| {
            let i = Inst::of(kind, &s.spec);
            let k = super::encode::kind_name(kind);
            format!(
                "{{\"instrument_name\":{},\"kind\":\"{k}\",\"base_currency\":{},\"quote_currency\":{},\"settlement_currency\":{},\"tick_size\":{},\"contract_size\":{},\"min_trade_amount\":{},\"is_active\":true,\"settlement_period\":\"{}\"}}",
                js(&s.spec.name),
                js(&s.spec.base),
                js(&s.spec.quote),
                js(super::encode::currency(kind, &s.spec)),
                i.price(1),
                i.contract_size(),
                i.amount(1),
                if s.spec.name.ends_with("-PERPETUAL") { "perpetual" } else { "month" }
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// A REST error body (JSON-RPC shaped).
pub(crate) fn rest_error(status: StatusCode, code: i64, message: &str) -> Resp {
    json(status, envelope(None, &Err(RpcError::new(code, message)), us_now()))
}

/// `GET /api/v2/public/{get_time,get_order_book,get_instruments,test}`.
pub(crate) fn rest(kind: DeribitKind, hub: &Hub, req: &Request<Bytes>) -> Resp {
    let us_in = us_now();
    if hub.charge_weight(1).is_err() {
        return rest_error(StatusCode::TOO_MANY_REQUESTS, 10028, "too_many_requests");
    }
    let method = req.uri().path().trim_start_matches("/api/v2/");
    let mut params = serde_json::Map::new();
    for (k, v) in query(req.uri().query()) {
        params.insert(k, Value::String(v));
    }
    let answer = match method {
        "public/get_time" => Ok(hub.venue_ms(&hub.lock()).to_string()),
        "public/test" => Ok(format!("{{\"version\":\"{VERSION}\"}}")),
        "public/get_order_book" => get_order_book(kind, hub, &params),
        "public/get_instruments" => Ok(instruments(kind, hub)),
        _ => return rest_error(StatusCode::NOT_FOUND, -32601, "Method not found"),
    };
    let status = if answer.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    json(status, envelope(None, &answer, us_in))
}

/// The raw text of the number `key` of the request's `params` object, as
/// the client wrote it (so amounts and prices are read exactly, never
/// through `f64`). `None` when absent or not a number.
pub(crate) fn raw_number(text: &str, key: &str) -> Option<String> {
    let b = text.as_bytes();
    let (mut i, mut depth, mut in_params) = (0usize, 0i32, false);
    let mut last_key: Option<(usize, usize)> = None;
    let mut params_depth = -1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let end = i.min(b.len());
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < b.len() && b[j] == b':' {
                    last_key = Some((start, end));
                    if depth == 1 && &text[start..end] == "params" {
                        params_depth = 2;
                    }
                    if in_params && depth == params_depth && &text[start..end] == key {
                        let mut k = j + 1;
                        while k < b.len() && b[k].is_ascii_whitespace() {
                            k += 1;
                        }
                        let s = k;
                        while k < b.len() && matches!(b[k], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                            k += 1;
                        }
                        return (k > s).then(|| text[s..k].to_string());
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if b[i] == b'{' && depth == params_depth && last_key.is_some_and(|(s, e)| &text[s..e] == "params") {
                    in_params = true;
                }
            }
            b'}' | b']' => {
                if depth == params_depth {
                    in_params = false;
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    let _ = wall_ms;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_numbers_come_from_the_params_object_as_written() {
        let t = r#"{"jsonrpc":"2.0","id":1,"amount":5,"method":"private/buy","params":{"label":"\"amount\":7","nested":{"amount":8},"amount": 0.10000000000000000001 ,"price":97000.5}}"#;
        assert_eq!(raw_number(t, "amount").as_deref(), Some("0.10000000000000000001"));
        assert_eq!(raw_number(t, "price").as_deref(), Some("97000.5"));
        assert_eq!(raw_number(t, "missing"), None);
        assert_eq!(raw_number(r#"{"params":{"amount":"10"}}"#, "amount"), None);
    }

    #[test]
    fn envelopes_carry_the_id_and_the_timing_fields() {
        let ok: Value = serde_json::from_str(&envelope(Some("7"), &Ok("\"ok\"".into()), 5)).unwrap();
        assert_eq!(
            (ok["id"].clone(), ok["result"].clone(), ok["testnet"].clone()),
            (7.into(), "ok".into(), false.into())
        );
        assert!(ok["usOut"].as_u64().unwrap() >= 5 && ok["usDiff"].is_u64());
        let e: Value = serde_json::from_str(&envelope(None, &Err(RpcError::param("interval", "x")), 5)).unwrap();
        assert_eq!(e["error"]["code"], -32602);
        assert_eq!(e["error"]["data"]["param"], "interval");
        assert!(e.get("id").is_none());
    }
}
