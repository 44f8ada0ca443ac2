//! Bybit v5 public WebSocket requests: the `op` requests (`ping`,
//! `subscribe`, `unsubscribe`) with the per-category reply shapes and the
//! per-connection topic limits (21 000 characters; option 2000 topics).

use std::collections::HashSet;
use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::{BybitCategory, MarketKind};
use crate::hub::{Hub, HubState, KillMode, Periodic};
use crate::ws;

use super::book::{BookTopic, book_payload, book_period_ms, depths};
use super::encode::{js, js_list};
use super::kline::{self, KLINE_INTERVALS, KLINE_PERIOD_MS};
use super::ticker::ticker_payload;
use super::{Push, state_mut};

/// Arguments per spot subscribe request.
const SPOT_MAX_ARGS: usize = 10;

/// A public topic the simulator feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topic {
    /// `publicTrade.<SYMBOL>` (upper-case symbol; option: the base coin).
    Trade(String),
    /// `orderbook.<depth>.<SYMBOL>`.
    Book(String, usize),
    /// `tickers.<SYMBOL>`.
    Ticker(String),
    /// `kline.<interval>.<SYMBOL>` (interval as the venue writes it: `1`, `60`, `D`, ...).
    Kline(String, &'static str),
    /// `allLiquidation.<SYMBOL>` (event-driven, from the generator).
    Liquidation(String),
}

impl Topic {
    /// Cadence (ms, before scaling) of the topics pushed on a timer; `None`
    /// for the event-driven ones.
    pub(crate) fn period_ms(&self, kind: MarketKind) -> Option<u64> {
        match self {
            Topic::Book(_, depth) => Some(book_period_ms(*depth)),
            Topic::Kline(..) => Some(KLINE_PERIOD_MS),
            Topic::Ticker(_) => Some(if kind == MarketKind::Spot { 50 } else { 100 }),
            Topic::Trade(_) | Topic::Liquidation(_) => None,
        }
    }
}

/// Parses a public topic of `cat`; `None` is "handler not found". `known`
/// checks a symbol, `known_base` an option base coin (`publicTrade.BTC`).
fn parse_topic(
    cat: BybitCategory,
    name: &str,
    known: impl Fn(&str) -> bool,
    known_base: impl Fn(&str) -> bool,
) -> Option<Topic> {
    let (kind, rest) = name.split_once('.')?;
    let sym = |s: &str| (known(s)).then(|| s.to_string());
    match kind {
        "publicTrade" if cat == BybitCategory::Option => known_base(rest).then(|| Topic::Trade(rest.to_string())),
        "publicTrade" => Some(Topic::Trade(sym(rest)?)),
        "tickers" => Some(Topic::Ticker(sym(rest)?)),
        "orderbook" => {
            let (d, s) = rest.split_once('.')?;
            let depth: usize = d.parse().ok().filter(|d| depths(cat).contains(d))?;
            if d != depth.to_string() {
                return None;
            }
            Some(Topic::Book(sym(s)?, depth))
        }
        "kline" if cat != BybitCategory::Option => {
            let (iv, s) = rest.split_once('.')?;
            let iv = KLINE_INTERVALS.iter().find(|k| **k == iv)?;
            Some(Topic::Kline(sym(s)?, iv))
        }
        "allLiquidation" if cat.is_futures() => Some(Topic::Liquidation(sym(rest)?)),
        _ => None,
    }
}

/// The venue's `conn_id` for a connection.
fn conn_id(hub: &Hub, id: u64) -> String {
    format!("sim{:05}-{id:x}", hub.addr.port())
}

/// A reply in the public shape: `{"success","ret_msg","conn_id",["req_id",]"op"}`.
/// Linear and inverse always carry `req_id` (`""` when the request had none);
/// spot only when the request had one. (Option replies: [`option_reply`].)
fn reply(cat: BybitCategory, success: bool, ret_msg: &str, conn: &str, req_id: Option<&str>, op: &str) -> String {
    let mut p = format!("{{\"success\":{success},\"ret_msg\":{},\"conn_id\":{}", js(ret_msg), js(conn));
    match (cat.is_futures(), req_id) {
        (_, Some(r)) => {
            let _ = write!(p, ",\"req_id\":{}", js(r));
        }
        (true, None) => p.push_str(",\"req_id\":\"\""),
        (false, None) => {}
    }
    let _ = write!(p, ",\"op\":{}}}", js(op));
    p
}

/// An option reply, the documented `COMMAND_RESP`:
/// `{"success","conn_id","data":{"failTopics","successTopics"},"type"}`; it
/// never carries `req_id`. Refusals of the whole request add `ret_msg`
/// (a simulator choice: the venue's option error shape is not documented).
fn option_reply(success: bool, ret_msg: Option<&str>, conn: &str, fail: &[String], ok: &[String]) -> String {
    let mut p = format!("{{\"success\":{success},");
    if let Some(m) = ret_msg {
        let _ = write!(p, "\"ret_msg\":{},", js(m));
    }
    let _ = write!(
        p,
        "\"conn_id\":{},\"data\":{{\"failTopics\":{},\"successTopics\":{}}},\"type\":\"COMMAND_RESP\"}}",
        js(conn),
        js_list(fail),
        js_list(ok)
    );
    p
}

/// Error texts joined into one `ret_msg`: at most this many.
const MAX_JOINED_ERRORS: usize = 100;

/// Answers one text frame of a Bybit connection. Returns the reply frame to
/// send on the control path (`None` when it was already queued in order with
/// the data: a subscribe ack followed by its snapshots) and whether it is a
/// success.
pub(crate) fn answer(hub: &Hub, conn: u64, text: &str) -> (Option<Bytes>, bool) {
    let Some(cat) = hub.cfg.bybit_category() else { return (None, false) };
    let cid = conn_id(hub, conn);
    let frame = |s: String| Some(ws::encode(ws::op::TEXT, s.as_bytes()));
    let fail = |msg: &str, rid: Option<&str>, op: &str, args: &[String]| {
        if cat == BybitCategory::Option {
            frame(option_reply(false, Some(msg), &cid, args, &[]))
        } else {
            frame(reply(cat, false, msg, &cid, rid, op))
        }
    };
    let v: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return (fail("Failed to decode incoming data: not an object", None, "", &[]), false),
        Err(e) => return (fail(&format!("Failed to decode incoming data: {e}"), None, "", &[]), false),
    };
    let req_id: Option<String> = match v.get("req_id") {
        Some(Value::String(s)) => Some(s.chars().take(64).collect()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let rid = req_id.as_deref();
    let op = v.get("op").and_then(Value::as_str).unwrap_or("");
    match op {
        "ping" if cat == BybitCategory::Option => {
            let ms = hub.venue_ms(&hub.lock());
            (frame(format!("{{\"args\":[\"{ms}\"],\"op\":\"pong\"}}")), true)
        }
        "ping" => (frame(reply(cat, true, "pong", &cid, rid, "ping")), true),
        "subscribe" | "unsubscribe" => {
            let args: Option<Vec<String>> = v
                .get("args")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect());
            let Some(args) = args else {
                return (fail("error:args must be an array of strings", rid, op, &[]), false);
            };
            if op == "subscribe" && cat == BybitCategory::Spot && args.len() > SPOT_MAX_ARGS {
                return (frame(reply(cat, false, "args size >10", &cid, rid, op)), false);
            }
            if op == "unsubscribe" {
                hub.unsubscribe(conn, &args);
                let r = match cat {
                    BybitCategory::Option => option_reply(true, None, &cid, &[], &args),
                    BybitCategory::Spot => reply(cat, true, "unsubscribe", &cid, rid, op),
                    BybitCategory::Linear | BybitCategory::Inverse => reply(cat, true, "", &cid, rid, op),
                };
                return (frame(r), true);
            }
            subscribe(hub, cat, conn, &args, &cid, rid)
        }
        _ => (fail("error:invalid op", rid, op, &[]), false),
    }
}

/// Queues frames on a connection's data path in order; a full queue resets
/// the connection as a slow consumer.
fn queue_data(st: &mut HubState, conn: u64, frames: Vec<Bytes>) {
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

fn subscribe(
    hub: &Hub,
    cat: BybitCategory,
    conn: u64,
    args: &[String],
    cid: &str,
    rid: Option<&str>,
) -> (Option<Bytes>, bool) {
    let mut guard = hub.lock();
    let st = &mut *guard;
    let now = hub.venue_ms(st);
    let limits = &hub.cfg.limits;
    let held: HashSet<String> = st.conns.get(&conn).map(|c| c.subs.iter().cloned().collect()).unwrap_or_default();
    let mut chars: usize = held.iter().map(String::len).sum();
    let mut count = held.len();
    let option = cat == BybitCategory::Option;
    let mut added: Vec<String> = Vec::new();
    let mut added_set: HashSet<String> = HashSet::new();
    let mut errors: Vec<String> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut succeeded: Vec<String> = Vec::new();
    let mut snapshots: Vec<Bytes> = Vec::new();
    if !option {
        // The whole request is refused when its new topics would take the
        // connection over the character limit.
        let mut fresh: HashSet<&str> = HashSet::new();
        let extra: usize =
            args.iter().filter(|a| !held.contains(*a) && fresh.insert(a.as_str())).map(String::len).sum();
        if chars.saturating_add(extra) > limits.max_topic_chars {
            st.counters.args_limit_refusals += 1;
            let msg = format!("error:args length exceeds {}", limits.max_topic_chars);
            let r = reply(cat, false, &msg, cid, rid, "subscribe");
            return (Some(ws::encode(ws::op::TEXT, r.as_bytes())), false);
        }
    }
    let (mut over_count, mut over_chars) = (false, false);
    for name in args {
        if held.contains(name) || added_set.contains(name) {
            if option {
                succeeded.push(name.clone());
            } else {
                errors.push(format!("error:already subscribed,topic:{name}"));
            }
            continue;
        }
        let market = &st.market;
        let Some(topic) = super::load::topic(st, name).or_else(|| {
            parse_topic(cat, name, |s| market.symbol(s).is_some(), |b| market.symbols.iter().any(|s| s.spec.base == b))
        }) else {
            errors.push(format!("error:handler not found,topic:{name}"));
            failed.push(name.clone());
            continue;
        };
        if option {
            if count >= limits.max_streams_per_conn {
                over_count = true;
                failed.push(name.clone());
                continue;
            }
            if chars.saturating_add(name.len()) > limits.max_topic_chars {
                over_chars = true;
                failed.push(name.clone());
                continue;
            }
        }
        track(hub, st, cat, name, &topic, now, &mut snapshots);
        st.subs.entry(name.clone()).or_default().push(conn);
        count += 1;
        chars += name.len();
        added.push(name.clone());
        added_set.insert(name.clone());
        succeeded.push(name.clone());
    }
    if added.iter().any(|n| st.load_streams.contains(n)) {
        hub.load_wakeup.notify_waiters();
    }
    if over_count {
        st.counters.over_cap_rejections += 1;
    }
    if over_chars {
        st.counters.args_limit_refusals += 1;
    }
    if let Some(c) = st.conns.get_mut(&conn) {
        c.subs.extend(added.iter().cloned());
        let n = c.subs.len() as u64;
        st.counters.max_streams_on_a_connection = st.counters.max_streams_on_a_connection.max(n);
    }
    let (text, ok) = if option {
        (option_reply(failed.is_empty(), None, cid, &failed, &succeeded), failed.is_empty())
    } else {
        let ok = errors.is_empty();
        let msg = if !ok {
            let mut m = errors.iter().take(MAX_JOINED_ERRORS).cloned().collect::<Vec<_>>().join(";");
            if errors.len() > MAX_JOINED_ERRORS {
                m.push_str(";...");
            }
            m
        } else if cat == BybitCategory::Spot {
            "subscribe".to_string()
        } else {
            String::new()
        };
        (reply(cat, ok, &msg, cid, rid, "subscribe"), ok)
    };
    let ack = ws::encode(ws::op::TEXT, text.as_bytes());
    if st.faults.ack_delay.is_zero() {
        snapshots.insert(0, ack);
        queue_data(st, conn, snapshots);
        (None, ok)
    } else {
        queue_data(st, conn, snapshots);
        (Some(ack), ok)
    }
}

/// Starts feeding a topic if nobody did yet, and adds what a new
/// subscriber gets first (the topic's current view) to `snapshots`.
fn track(
    hub: &Hub,
    st: &mut HubState,
    cat: BybitCategory,
    name: &str,
    topic: &Topic,
    now: u64,
    snapshots: &mut Vec<Bytes>,
) {
    if st.tracked.insert(name.to_string()) {
        st.streams.entry(name.to_string()).or_default();
        match topic {
            Topic::Book(sym, depth) => {
                if let (Some(s), Some(state)) = (st.market.symbol(sym), state_mut(st.venue.as_mut())) {
                    let t = BookTopic::new(s, *depth, name, now);
                    state.books.insert(name.to_string(), t);
                }
            }
            Topic::Kline(sym, iv) => st.market.ensure_candle(&sym.to_lowercase(), iv, kline::bucket, now),
            _ => {}
        }
        if let Some(period) = topic.period_ms(hub.kind()) {
            let period_ms = hub.cfg.timing.cadence(period).as_millis() as u64;
            let push = Box::new(Push { cat, topic: topic.clone() });
            st.periodic.insert(name.to_string(), Periodic { topic: push, period_ms, next_due: now });
        }
    }
    match topic {
        Topic::Book(sym, _) => {
            let books = state_mut(st.venue.as_mut()).map(|b| &b.books);
            if let (Some(s), Some(t)) = (st.market.symbol(sym), books.and_then(|b| b.get(name))) {
                let p = book_payload(cat, &s.spec, name, "snapshot", t, now);
                snapshots.push(ws::encode(ws::op::TEXT, p.as_bytes()));
            }
        }
        Topic::Ticker(sym) => {
            let tickers = state_mut(st.venue.as_mut()).map(|b| &b.tickers);
            if let (Some(s), Some(f)) = (st.market.symbol(sym), tickers.and_then(|t| t.get(name)))
                && !f.is_empty()
            {
                let p = ticker_payload(cat, sym, "snapshot", f, s.update_id, now);
                snapshots.push(ws::encode(ws::op::TEXT, p.as_bytes()));
            }
        }
        _ => {}
    }
}

/// Makes the next message of every order-book topic of `symbol` (all
/// symbols when `None`) a restart snapshot with `u = 1`. Returns how many
/// topics are affected.
pub(crate) fn restart(hub: &Hub, symbol: Option<&str>) -> usize {
    let mut st = hub.lock();
    let mut n = 0;
    let Some(state) = state_mut(st.venue.as_mut()) else { return 0 };
    for (name, t) in state.books.iter_mut() {
        if symbol.is_none_or(|s| name.rsplit('.').next() == Some(s)) {
            t.restart = true;
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_like_the_venue() {
        let known = |s: &str| s == "BTCUSDT";
        let base = |b: &str| b == "BTC";
        let lin = BybitCategory::Linear;
        let p = |cat, name| parse_topic(cat, name, known, base);
        assert_eq!(p(lin, "orderbook.50.BTCUSDT"), Some(Topic::Book("BTCUSDT".into(), 50)));
        assert_eq!(p(lin, "orderbook.1000.BTCUSDT"), Some(Topic::Book("BTCUSDT".into(), 1000)));
        assert_eq!(p(lin, "publicTrade.BTCUSDT"), Some(Topic::Trade("BTCUSDT".into())));
        assert_eq!(p(lin, "tickers.BTCUSDT"), Some(Topic::Ticker("BTCUSDT".into())));
        assert_eq!(p(lin, "kline.D.BTCUSDT"), Some(Topic::Kline("BTCUSDT".into(), "D")));
        assert_eq!(p(BybitCategory::Spot, "kline.1.BTCUSDT"), Some(Topic::Kline("BTCUSDT".into(), "1")));
        assert_eq!(p(lin, "allLiquidation.BTCUSDT"), Some(Topic::Liquidation("BTCUSDT".into())));
        for bad in [
            "orderbook.500.BTCUSDT",
            "orderbook.050.BTCUSDT",
            "orderbook.25.BTCUSDT",
            "orderbook.50.btcusdt",
            "orderbook.50.NOPEUSDT",
            "publicTrade",
            "publicTrade.BTC",
            "kline.2.BTCUSDT",
            "kline.1m.BTCUSDT",
            "kline.1",
            "liquidation.BTCUSDT",
            "",
        ] {
            assert_eq!(p(lin, bad), None, "{bad}");
        }
        assert_eq!(p(BybitCategory::Spot, "allLiquidation.BTCUSDT"), None);
        let opt = BybitCategory::Option;
        assert_eq!(p(opt, "publicTrade.BTC"), Some(Topic::Trade("BTC".into())));
        assert_eq!(p(opt, "orderbook.25.BTCUSDT"), Some(Topic::Book("BTCUSDT".into(), 25)));
        assert_eq!(p(opt, "orderbook.100.BTCUSDT"), Some(Topic::Book("BTCUSDT".into(), 100)));
        for bad in ["orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "publicTrade.ETH"] {
            assert_eq!(p(opt, bad), None, "{bad}");
        }
        assert_eq!(p(opt, "kline.1.BTCUSDT"), None);
        assert_eq!(p(opt, "allLiquidation.BTCUSDT"), None);
    }
}
