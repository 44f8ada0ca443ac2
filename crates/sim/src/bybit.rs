//! Bybit v5 public WebSocket (PROTOCOLS.md §5): the `op` requests (`ping`,
//! `subscribe`, `unsubscribe`) with the per-category reply shapes, and the
//! `publicTrade`, `orderbook` and `tickers` payloads derived from the true
//! books.
//!
//! Order-book topics keep what they last sent (the top `depth` levels): each
//! flush diffs the true book's top levels against it, so a delta carries the
//! changed levels, levels that left the window as size `"0"` and levels that
//! entered it. `u` grows by one per message of the topic, `seq` is the book's
//! update id (comparable across depths). A new subscriber gets that view as a
//! `snapshot` (same `u`), in order before the topic's next delta. The restart
//! fault makes the next message of a topic a `snapshot` with `u = 1`.
//!
//! Written from the venue's documentation and captures only; it shares nothing
//! with the client's wire code.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::{BybitCategory, SymbolSpec};
use crate::hub::{Hub, HubState, KillMode, Periodic};
use crate::market::{BookCopy, HISTORY_DEPTH, Market, SymbolState, fmt_dec};
use crate::topic::Topic;
use crate::ws;

/// The order-book depths served on spot and linear.
pub(crate) const DEPTHS: [usize; 3] = [1, 50, 200];

/// Arguments per spot subscribe request.
const SPOT_MAX_ARGS: usize = 10;

/// Push cadence (ms, before scaling) of `orderbook.<depth>`.
pub(crate) fn book_period_ms(depth: usize) -> u64 {
    match depth {
        1 => 10,
        50 => 20,
        _ => 100,
    }
}

/// One `orderbook.<depth>.<SYMBOL>` topic: what it last sent.
#[derive(Debug)]
pub(crate) struct BookTopic {
    /// The last message's `u`.
    pub u: u64,
    /// The last message's `seq`.
    pub seq: u64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// When the last message was rendered (venue ms).
    last_ms: u64,
    /// The next message is a restart snapshot with `u = 1`.
    pub restart: bool,
    /// The view after each message, keyed by `u` (ascending).
    history: VecDeque<BookCopy>,
}

impl BookTopic {
    fn new(s: &SymbolState, depth: usize, name: &str, now_ms: u64) -> BookTopic {
        // A fixed, name-derived start keeps runs reproducible.
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let (bids, asks) = top(s, depth);
        let mut t = BookTopic {
            u: 1_000_000 + h % 50_000_000,
            seq: s.update_id,
            bids,
            asks,
            last_ms: now_ms,
            restart: false,
            history: VecDeque::new(),
        };
        t.record(s.history_cap, now_ms);
        t
    }

    fn record(&mut self, cap: usize, now_ms: u64) {
        if cap == 0 {
            return;
        }
        if self.history.back().is_some_and(|c| c.last_update_id >= self.u) {
            self.history.clear();
        }
        while self.history.len() >= cap {
            self.history.pop_front();
        }
        self.history.push_back(BookCopy {
            last_update_id: self.u,
            bids: self.bids.iter().rev().take(HISTORY_DEPTH).map(|(p, q)| (*p, *q)).collect(),
            asks: self.asks.iter().take(HISTORY_DEPTH).map(|(p, q)| (*p, *q)).collect(),
            taken_ms: now_ms,
        });
    }

    /// The view right after the message with `u`, if still in the history.
    pub(crate) fn at(&self, u: u64) -> Option<&BookCopy> {
        let i = self.history.binary_search_by_key(&u, |c| c.last_update_id).ok()?;
        self.history.get(i)
    }
}

fn top(s: &SymbolState, depth: usize) -> (BTreeMap<i64, i64>, BTreeMap<i64, i64>) {
    (
        s.bids.iter().rev().take(depth).map(|(p, q)| (*p, *q)).collect(),
        s.asks.iter().take(depth).map(|(p, q)| (*p, *q)).collect(),
    )
}

pub(crate) fn book_topic(symbol: &str, depth: usize) -> String {
    format!("orderbook.{depth}.{symbol}")
}

/// A decimal as the venue writes it: linear keeps the instrument's decimals
/// (`"65114.20"`), spot trims trailing zeros (`"65140"`, `"0.885797"`).
fn dec(cat: BybitCategory, v: i128, scale: u32) -> String {
    let mut s = String::new();
    fmt_dec(&mut s, v, scale, scale);
    if cat == BybitCategory::Spot && s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    s
}

fn price(cat: BybitCategory, spec: &SymbolSpec, ticks: i64) -> String {
    dec(cat, ticks as i128, spec.price_decimals)
}

fn size(cat: BybitCategory, spec: &SymbolSpec, lots: i128) -> String {
    dec(cat, lots, spec.qty_decimals)
}

/// Levels as `[price, size]` strings.
pub(crate) fn level_strings(cat: BybitCategory, spec: &SymbolSpec, levels: &[(i64, i64)]) -> Vec<[String; 2]> {
    levels.iter().map(|(p, q)| [price(cat, spec, *p), size(cat, spec, *q as i128)]).collect()
}

fn levels_json<'a>(
    out: &mut String,
    cat: BybitCategory,
    spec: &SymbolSpec,
    levels: impl Iterator<Item = (&'a i64, &'a i64)>,
) {
    out.push('[');
    for (i, (p, q)) in levels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[\"{}\",\"{}\"]", price(cat, spec, *p), size(cat, spec, *q as i128));
    }
    out.push(']');
}

/// `{"topic",["ts",]"type",["ts",]"data":...` up to the data value: spot puts
/// `ts` before `type`, linear after (clients must not depend on key order).
fn head(out: &mut String, cat: BybitCategory, topic: &str, kind: &str, ts: u64) {
    if cat == BybitCategory::Spot {
        let _ = write!(out, "{{\"topic\":\"{topic}\",\"ts\":{ts},\"type\":\"{kind}\",\"data\":");
    } else {
        let _ = write!(out, "{{\"topic\":\"{topic}\",\"type\":\"{kind}\",\"ts\":{ts},\"data\":");
    }
}

/// One `publicTrade.<SYMBOL>` message holding one trade.
pub(crate) fn trade_payload(cat: BybitCategory, s: &SymbolState, px: i64, q: i64, buy: bool, now_ms: u64) -> String {
    let spec = &s.spec;
    let mut p = String::with_capacity(256);
    head(&mut p, cat, &format!("publicTrade.{}", spec.name), "snapshot", now_ms);
    let _ = write!(
        p,
        "[{{\"T\":{now_ms},\"s\":\"{}\",\"S\":\"{}\",\"v\":\"{}\",\"p\":\"{}\",",
        spec.name,
        if buy { "Buy" } else { "Sell" },
        size(cat, spec, q as i128),
        price(cat, spec, px)
    );
    if cat == BybitCategory::Linear {
        let dir = ["PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick"][(s.tick_dir & 3) as usize];
        let _ = write!(p, "\"L\":\"{dir}\",");
    }
    let _ = write!(p, "\"i\":\"{}\",\"BT\":false,\"RPI\":false,\"seq\":{}}}]}}", s.trade_id, s.update_id);
    p
}

fn book_payload(cat: BybitCategory, spec: &SymbolSpec, name: &str, kind: &str, t: &BookTopic, now_ms: u64) -> String {
    book_payload_levels(cat, spec, name, kind, t.bids.iter().rev(), t.asks.iter(), t.u, t.seq, now_ms)
}

#[allow(clippy::too_many_arguments)] // private helper, plain values
fn book_payload_levels<'a>(
    cat: BybitCategory,
    spec: &SymbolSpec,
    name: &str,
    kind: &str,
    bids: impl Iterator<Item = (&'a i64, &'a i64)>,
    asks: impl Iterator<Item = (&'a i64, &'a i64)>,
    u: u64,
    seq: u64,
    now_ms: u64,
) -> String {
    let mut p = String::with_capacity(256);
    head(&mut p, cat, name, kind, now_ms);
    let _ = write!(p, "{{\"s\":\"{}\",\"b\":", spec.name);
    levels_json(&mut p, cat, spec, bids);
    p.push_str(",\"a\":");
    levels_json(&mut p, cat, spec, asks);
    let _ = write!(p, ",\"u\":{u},\"seq\":{seq}}},\"cts\":{}}}", now_ms.saturating_sub(1));
    p
}

/// The next message of `orderbook.<depth>.<sym>`, if there is one: a delta
/// of what changed in the window (a snapshot on depth 1, which re-sends its
/// unchanged book every 3 s with the same `u`), or the restart snapshot.
pub(crate) fn render_book(m: &mut Market, sym: &str, depth: usize, now_ms: u64) -> Vec<(String, Option<u64>)> {
    let Some(i) = m.symbol_index(sym) else { return vec![] };
    let s = &m.symbols[i];
    let Some(cat) = s.bybit else { return vec![] };
    let name = book_topic(sym, depth);
    let resend_ms = m.timing.cadence(3000).as_millis() as u64;
    let Some(t) = m.bybit_books.get_mut(&name) else { return vec![] };
    let (bids, asks) = top(s, depth);
    if t.restart {
        t.restart = false;
        t.u = 1;
        t.seq = s.update_id;
        t.bids = bids;
        t.asks = asks;
        t.last_ms = now_ms;
        t.record(s.history_cap, now_ms);
        return vec![(book_payload(cat, &s.spec, &name, "snapshot", t, now_ms), Some(t.u))];
    }
    let diff = |old: &BTreeMap<i64, i64>, new: &BTreeMap<i64, i64>| -> BTreeMap<i64, i64> {
        let mut d: BTreeMap<i64, i64> = old.keys().filter(|p| !new.contains_key(p)).map(|p| (*p, 0)).collect();
        d.extend(new.iter().filter(|(p, q)| old.get(p) != Some(q)).map(|(p, q)| (*p, *q)));
        d
    };
    let db = diff(&t.bids, &bids);
    let da = diff(&t.asks, &asks);
    if db.is_empty() && da.is_empty() {
        if depth == 1 && now_ms.saturating_sub(t.last_ms) >= resend_ms {
            t.last_ms = now_ms;
            return vec![(book_payload(cat, &s.spec, &name, "snapshot", t, now_ms), Some(t.u))];
        }
        return vec![];
    }
    t.u += 1;
    t.seq = s.update_id.max(t.seq + 1);
    t.bids = bids;
    t.asks = asks;
    t.last_ms = now_ms;
    t.record(s.history_cap, now_ms);
    let p = if depth == 1 {
        book_payload(cat, &s.spec, &name, "snapshot", t, now_ms)
    } else {
        book_payload_levels(cat, &s.spec, &name, "delta", db.iter().rev(), da.iter(), t.u, t.seq, now_ms)
    };
    vec![(p, Some(t.u))]
}

/// The ticker fields of a symbol now (PROTOCOLS.md §5.5; a subset on linear).
fn ticker_fields(cat: BybitCategory, s: &SymbolState, now_ms: u64) -> BTreeMap<&'static str, String> {
    let spec = &s.spec;
    let mut f = BTreeMap::new();
    f.insert("symbol", spec.name.clone());
    f.insert("lastPrice", price(cat, spec, s.last));
    f.insert("prevPrice24h", price(cat, spec, s.open));
    f.insert("highPrice24h", price(cat, spec, s.high));
    f.insert("lowPrice24h", price(cat, spec, s.low));
    f.insert("volume24h", size(cat, spec, s.volume));
    f.insert("turnover24h", dec(cat, s.quote, spec.price_decimals + spec.qty_decimals));
    let pct = if s.open == 0 { 0 } else { (s.last - s.open) as i128 * 1_000_000 / s.open as i128 };
    f.insert("price24hPcnt", dec(BybitCategory::Linear, pct, 6));
    let (bp, bq, ap, aq) = s.top;
    let mid2 = bp as i128 + ap as i128;
    if cat == BybitCategory::Spot {
        f.insert("usdIndexPrice", dec(cat, mid2 * 5, spec.price_decimals + 1));
        return f;
    }
    let dir = ["PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick"][(s.tick_dir & 3) as usize];
    f.insert("tickDirection", dir.to_string());
    f.insert("prevPrice1h", price(cat, spec, s.open));
    f.insert("markPrice", dec(cat, mid2 * 5, spec.price_decimals + 1));
    f.insert("indexPrice", dec(cat, mid2 * 5 - mid2 / 2000, spec.price_decimals + 1));
    f.insert("openInterest", size(cat, spec, s.volume / 2));
    f.insert("openInterestValue", dec(cat, s.quote / 2, spec.price_decimals + spec.qty_decimals));
    f.insert("fundingRate", "0.0001".to_string());
    let eight_h = 8 * 3_600_000;
    f.insert("nextFundingTime", (now_ms - now_ms % eight_h + eight_h).to_string());
    f.insert("fundingIntervalHour", "8".to_string());
    f.insert("bid1Price", price(cat, spec, bp));
    f.insert("bid1Size", size(cat, spec, bq as i128));
    f.insert("ask1Price", price(cat, spec, ap));
    f.insert("ask1Size", size(cat, spec, aq as i128));
    f
}

fn ticker_payload(
    cat: BybitCategory,
    sym: &str,
    kind: &str,
    fields: &BTreeMap<&'static str, String>,
    cs: u64,
    now_ms: u64,
) -> String {
    let mut data = String::from("{");
    // `symbol` first, as the venue writes it.
    let order = fields.iter().filter(|(k, _)| **k == "symbol").chain(fields.iter().filter(|(k, _)| **k != "symbol"));
    for (i, (k, v)) in order.enumerate() {
        if i > 0 {
            data.push(',');
        }
        let _ = write!(data, "\"{k}\":\"{v}\"");
    }
    data.push('}');
    let topic = format!("tickers.{sym}");
    if cat == BybitCategory::Spot {
        format!("{{\"topic\":\"{topic}\",\"ts\":{now_ms},\"type\":\"{kind}\",\"cs\":{cs},\"data\":{data}}}")
    } else {
        format!("{{\"topic\":\"{topic}\",\"type\":\"{kind}\",\"data\":{data},\"cs\":{cs},\"ts\":{now_ms}}}")
    }
}

/// The next `tickers.<sym>` message: linear sends a snapshot first, then
/// deltas holding only the changed fields; spot sends snapshots. Nothing when
/// nothing changed.
pub(crate) fn render_ticker(m: &mut Market, sym: &str, now_ms: u64) -> Vec<(String, Option<u64>)> {
    let Some(i) = m.symbol_index(sym) else { return vec![] };
    let s = &m.symbols[i];
    let Some(cat) = s.bybit else { return vec![] };
    let now = ticker_fields(cat, s, now_ms);
    let last = m.bybit_tickers.entry(format!("tickers.{sym}")).or_default();
    if *last == now {
        return vec![];
    }
    let p = if last.is_empty() || cat == BybitCategory::Spot {
        ticker_payload(cat, sym, "snapshot", &now, s.update_id, now_ms)
    } else {
        let mut changed: BTreeMap<&'static str, String> =
            now.iter().filter(|(k, v)| last.get(*k) != Some(*v)).map(|(k, v)| (*k, v.clone())).collect();
        changed.insert("symbol", sym.to_string());
        ticker_payload(cat, sym, "delta", &changed, s.update_id, now_ms)
    };
    *last = now;
    vec![(p, None)]
}

/// Parses a public topic; `None` is "handler not found".
fn parse_topic(name: &str, known: impl Fn(&str) -> bool) -> Option<Topic> {
    let (kind, rest) = name.split_once('.')?;
    let sym = |s: &str| (known(s)).then(|| s.to_string());
    match kind {
        "publicTrade" => Some(Topic::BybitTrade(sym(rest)?)),
        "tickers" => Some(Topic::BybitTicker(sym(rest)?)),
        "orderbook" => {
            let (d, s) = rest.split_once('.')?;
            let depth: usize = d.parse().ok().filter(|d| DEPTHS.contains(d))?;
            if d != depth.to_string() {
                return None;
            }
            Some(Topic::BybitBook(sym(s)?, depth))
        }
        _ => None,
    }
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The venue's `conn_id` for a connection.
fn conn_id(hub: &Hub, id: u64) -> String {
    format!("sim{:05}-{id:x}", hub.addr.port())
}

/// A reply in the public shape: `{"success","ret_msg","conn_id",["req_id",]"op"}`.
/// Linear always carries `req_id` (`""` when the request had none); spot
/// only when the request had one.
fn reply(cat: BybitCategory, success: bool, ret_msg: &str, conn: &str, req_id: Option<&str>, op: &str) -> String {
    let mut p = format!("{{\"success\":{success},\"ret_msg\":{},\"conn_id\":{}", js(ret_msg), js(conn));
    match (cat, req_id) {
        (_, Some(r)) => {
            let _ = write!(p, ",\"req_id\":{}", js(r));
        }
        (BybitCategory::Linear, None) => p.push_str(",\"req_id\":\"\""),
        (BybitCategory::Spot, None) => {}
    }
    let _ = write!(p, ",\"op\":{}}}", js(op));
    p
}

/// Answers one text frame of a Bybit connection. Returns the reply frame to
/// send on the control path (`None` when it was already queued in order with
/// the data: a subscribe ack followed by its snapshots) and whether it is a
/// success.
pub(crate) fn answer(hub: &Hub, conn: u64, text: &str) -> (Option<Bytes>, bool) {
    let Some(cat) = hub.cfg.bybit_category() else { return (None, false) };
    let cid = conn_id(hub, conn);
    let frame = |s: String| Some(ws::encode(ws::op::TEXT, s.as_bytes()));
    let v: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return (frame(reply(cat, false, "Failed to decode incoming data: not an object", &cid, None, "")), false);
        }
        Err(e) => {
            return (frame(reply(cat, false, &format!("Failed to decode incoming data: {e}"), &cid, None, "")), false);
        }
    };
    let req_id: Option<String> = match v.get("req_id") {
        Some(Value::String(s)) => Some(s.chars().take(64).collect()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let rid = req_id.as_deref();
    let op = v.get("op").and_then(Value::as_str).unwrap_or("");
    match op {
        "ping" => (frame(reply(cat, true, "pong", &cid, rid, "ping")), true),
        "subscribe" | "unsubscribe" => {
            let args: Option<Vec<String>> = v
                .get("args")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect());
            let Some(args) = args else {
                return (frame(reply(cat, false, "error:args must be an array of strings", &cid, rid, op)), false);
            };
            if op == "subscribe" && cat == BybitCategory::Spot && args.len() > SPOT_MAX_ARGS {
                return (frame(reply(cat, false, "args size >10", &cid, rid, op)), false);
            }
            if op == "unsubscribe" {
                hub.bybit_unsubscribe(conn, &args);
                let msg = if cat == BybitCategory::Spot { "unsubscribe" } else { "" };
                return (frame(reply(cat, true, msg, &cid, rid, op)), true);
            }
            hub.bybit_subscribe(cat, conn, &args, &cid, rid)
        }
        _ => (frame(reply(cat, false, "error:invalid op", &cid, rid, op)), false),
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

impl Hub {
    fn bybit_subscribe(
        &self,
        cat: BybitCategory,
        conn: u64,
        args: &[String],
        cid: &str,
        rid: Option<&str>,
    ) -> (Option<Bytes>, bool) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let now = self.venue_ms(st);
        let mut errors: Vec<String> = Vec::new();
        let mut snapshots: Vec<Bytes> = Vec::new();
        let mut added: Vec<String> = Vec::new();
        for name in args {
            let already = st.conns.get(&conn).is_some_and(|c| c.subs.contains(name)) || added.contains(name);
            if already {
                errors.push(format!("error:already subscribed,topic:{name}"));
                continue;
            }
            let Some(topic) = parse_topic(name, |s| st.market.symbol(s).is_some()) else {
                errors.push(format!("error:handler not found,topic:{name}"));
                continue;
            };
            if st.tracked.insert(name.clone()) {
                st.streams.entry(name.clone()).or_default();
                if let Topic::BybitBook(sym, depth) = &topic
                    && let Some(s) = st.market.symbol(sym)
                {
                    let t = BookTopic::new(s, *depth, name, now);
                    st.market.bybit_books.insert(name.clone(), t);
                }
                if let Some(period) = topic.period_ms(self.kind()) {
                    let period_ms = self.cfg.timing.cadence(period).as_millis() as u64;
                    st.periodic
                        .insert(name.clone(), Periodic { topic: topic.clone(), period_ms, next_due: now, last_u: 0 });
                }
            }
            // What a new subscriber gets first: the topic's current view.
            match &topic {
                Topic::BybitBook(sym, _) => {
                    if let (Some(s), Some(t)) = (st.market.symbol(sym), st.market.bybit_books.get(name)) {
                        let p = book_payload(cat, &s.spec, name, "snapshot", t, now);
                        snapshots.push(ws::encode(ws::op::TEXT, p.as_bytes()));
                    }
                }
                Topic::BybitTicker(sym) => {
                    if let (Some(s), Some(f)) = (st.market.symbol(sym), st.market.bybit_tickers.get(name))
                        && !f.is_empty()
                    {
                        let p = ticker_payload(cat, sym, "snapshot", f, s.update_id, now);
                        snapshots.push(ws::encode(ws::op::TEXT, p.as_bytes()));
                    }
                }
                _ => {}
            }
            st.subs.entry(name.clone()).or_default().push(conn);
            added.push(name.clone());
        }
        if let Some(c) = st.conns.get_mut(&conn) {
            c.subs.extend(added.iter().cloned());
            let n = c.subs.len() as u64;
            st.counters.max_streams_on_a_connection = st.counters.max_streams_on_a_connection.max(n);
        }
        let ok = errors.is_empty();
        let msg = if !ok {
            errors.join(";")
        } else if cat == BybitCategory::Spot {
            "subscribe".to_string()
        } else {
            String::new()
        };
        let ack = ws::encode(ws::op::TEXT, reply(cat, ok, &msg, cid, rid, "subscribe").as_bytes());
        if st.faults.ack_delay.is_zero() {
            snapshots.insert(0, ack);
            queue_data(st, conn, snapshots);
            (None, ok)
        } else {
            queue_data(st, conn, snapshots);
            (Some(ack), ok)
        }
    }

    fn bybit_unsubscribe(&self, conn: u64, args: &[String]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some(c) = st.conns.get_mut(&conn) {
            c.subs.retain(|s| !args.contains(s));
        }
        for a in args {
            if let Some(v) = st.subs.get_mut(a) {
                v.retain(|c| *c != conn);
            }
        }
    }

    /// Makes the next message of every order-book topic of `symbol` (all
    /// symbols when `None`) a restart snapshot with `u = 1`. Returns how many
    /// topics are affected.
    pub(crate) fn bybit_restart(&self, symbol: Option<&str>) -> usize {
        let mut st = self.lock();
        let mut n = 0;
        for (name, t) in st.market.bybit_books.iter_mut() {
            if symbol.is_none_or(|s| name.rsplit('.').next() == Some(s)) {
                t.restart = true;
                n += 1;
            }
        }
        n
    }
}

/// The book a client of `orderbook.<d>.<symbol>` holds right after the
/// message with `u`: the smallest tracked depth `d >= depth` whose history
/// holds `u`, truncated to `depth`.
pub(crate) fn book_at(m: &Market, symbol: &str, u: u64, depth: usize) -> Option<BookCopy> {
    DEPTHS.iter().filter(|d| **d >= depth.min(200)).find_map(|d| {
        let mut c = m.bybit_books.get(&book_topic(symbol, *d))?.at(u)?.clone();
        c.bids.truncate(depth);
        c.asks.truncate(depth);
        Some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_like_the_venue() {
        let known = |s: &str| s == "BTCUSDT";
        assert_eq!(parse_topic("orderbook.50.BTCUSDT", known), Some(Topic::BybitBook("BTCUSDT".into(), 50)));
        assert_eq!(parse_topic("publicTrade.BTCUSDT", known), Some(Topic::BybitTrade("BTCUSDT".into())));
        assert_eq!(parse_topic("tickers.BTCUSDT", known), Some(Topic::BybitTicker("BTCUSDT".into())));
        for bad in [
            "orderbook.500.BTCUSDT",
            "orderbook.050.BTCUSDT",
            "orderbook.50.btcusdt",
            "orderbook.50.NOPEUSDT",
            "publicTrade",
            "kline.1.BTCUSDT",
            "",
        ] {
            assert_eq!(parse_topic(bad, known), None, "{bad}");
        }
    }

    #[test]
    fn decimals_are_fixed_on_linear_and_trimmed_on_spot() {
        assert_eq!(dec(BybitCategory::Linear, 6511420, 2), "65114.20");
        assert_eq!(dec(BybitCategory::Spot, 6514000, 2), "65140");
        assert_eq!(dec(BybitCategory::Spot, 885797, 6), "0.885797");
        assert_eq!(dec(BybitCategory::Spot, 0, 3), "0");
    }
}
