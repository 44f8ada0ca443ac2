//! Deribit (PROTOCOLS.md §6): JSON-RPC 2.0 over one WebSocket per
//! connection at `/ws/api/v2`, one simulated market per instrument kind
//! (inverse, linear, option).
//!
//! - `rpc`: framing (requests, results, errors with `usIn`/`usOut`/`usDiff`/
//!   `testnet`, notifications) and method dispatch; `public/subscribe`,
//!   `public/unsubscribe` and the channel rules (silent drops, `raw` gated by
//!   auth, no second snapshot); `public/test`, `public/get_time`, REST.
//! - `channel`: channel names; `encode`: numbers, instruments, trades;
//!   `book`: `book.*` change-id chains and grouped books; `ticker`: `ticker`,
//!   `quote`, `chart.trades`, `perpetual`, `deribit_price_index`.
//! - `heartbeat`: `public/set_heartbeat` and the `test_request` duty.
//! - `credits`: the credit buckets and `10028 too_many_requests`.
//! - `private`: `public/auth` (three grant types), tokens and their expiry,
//!   `user.*` channels; `order`: `private/buy`, `sell`, `edit`, `cancel`, ...
//!
//! Written from the venue's documentation and captures only; it shares
//! nothing with the client's wire code.

pub(crate) mod book;
pub(crate) mod channel;
pub(crate) mod credits;
pub(crate) mod encode;
pub(crate) mod heartbeat;
pub(crate) mod order;
pub(crate) mod private;
pub(crate) mod rpc;
pub(crate) mod ticker;

use std::any::Any;
use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use hyper::{Method, Request, StatusCode};
use serde::Serialize;

use crate::config::{DeribitKind, MarketConfig, SymbolSpec};
use crate::dialect::{Dialect, Refusal, WsTarget};
use crate::hub::{ConnEntry, ConnKind, Hub, HubState, Render};
use crate::market::{BookCopy, Emit, Market, Names, Streams};
use crate::server::{Resp, json};

use channel::{Channel, Interval};
use encode::{Encoder, Inst, currency, kind_name, notification};

/// The WebSocket path.
pub(crate) const PATH: &str = "/ws/api/v2";

/// The tag (`ConnKind::tag`) of a Deribit connection.
const TAG: u8 = 0;

/// Trades kept per batched channel between two pushes (older ones are
/// dropped; at the generator's rates a 100 ms batch holds a handful).
const MAX_BATCH: usize = 10_000;

/// Ground truth of a Deribit market, in `/admin/stats` (`deribit`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct DeribitStats {
    /// `test_request` heartbeats sent.
    pub test_requests_sent: u64,
    /// `public/test` requests that answered an outstanding `test_request`.
    pub test_requests_answered: u64,
    /// `type: heartbeat` notifications sent.
    pub heartbeats_sent: u64,
    /// Connections closed (4000 `heartbeat close`) for an unanswered `test_request`.
    pub heartbeat_closes: u64,
    /// Successful `public/auth` with `client_credentials` or `client_signature`.
    pub auths: u64,
    /// Successful `public/auth` with `refresh_token`.
    pub refreshes: u64,
    /// Refused `public/auth` requests.
    pub auth_failures: u64,
    /// Access tokens found expired by a private request (each counted once).
    pub token_expiries: u64,
    /// Credits spent, per pool: subscribe, other non-matching-engine requests,
    /// matching-engine requests (counted in requests).
    pub credits_subscribe: u64,
    /// See `credits_subscribe`.
    pub credits_requests: u64,
    /// See `credits_subscribe`.
    pub matching_requests: u64,
    /// Requests refused with `10028 too_many_requests` (the session then closes).
    pub too_many_requests: u64,
    /// Order-book change-id chains broken by the fault (`/admin/deribit_break`, `id_reset`).
    pub chain_breaks: u64,
}

/// What a Deribit market keeps besides the generator (the hub's venue state).
#[derive(Debug, Default)]
pub(crate) struct DeribitState {
    /// `book.{inst}.{interval}` channels.
    pub books: HashMap<String, book::BookChan>,
    /// Grouped book channels.
    pub grouped: HashMap<String, book::GroupedChan>,
    /// Batched trade channels: the trade objects waiting for the next push.
    pub trade_batches: HashMap<String, Vec<(String, u64)>>,
    /// Channels pushed on change: the body they last sent.
    pub last_body: HashMap<String, String>,
    /// Per connection: auth, heartbeat and credits.
    pub conns: HashMap<u64, private::ConnState>,
    /// Issued tokens (hashed; the tokens themselves are never kept).
    pub tokens: private::Tokens,
    /// Order flags the core `Order` does not carry.
    pub order_flags: order::FlagMap,
    /// Counters.
    pub stats: DeribitStats,
}

/// The Deribit state in a hub's venue slot.
pub(crate) fn state(venue: &(dyn Any + Send)) -> Option<&DeribitState> {
    venue.downcast_ref()
}

/// The Deribit state in a hub's venue slot, to change.
pub(crate) fn state_mut(venue: &mut (dyn Any + Send)) -> Option<&mut DeribitState> {
    venue.downcast_mut()
}

/// Every trade channel name a trade of `inst` (settling in `cur`) goes
/// to, per interval.
fn trade_channels(kind: DeribitKind, inst: &str, cur: &str, iv: Interval) -> [String; 5] {
    let (k, i) = (kind_name(kind), iv.name());
    [
        format!("trades.{inst}.{i}"),
        format!("trades.{k}.{cur}.{i}"),
        format!("trades.{k}.any.{i}"),
        format!("trades.any.{cur}.{i}"),
        format!("trades.any.any.{i}"),
    ]
}

/// The internal stream the generator writes a symbol's trade objects on:
/// `#trades.{currency}.{inst}` (no client can subscribe a name with `#`).
fn canonical_trades(kind: DeribitKind, spec: &SymbolSpec) -> String {
    format!("#trades.{}.{}", currency(kind, spec), spec.name)
}

/// A Deribit market's generator: trade objects on the internal
/// [`canonical_trades`] stream, turned on by any trade channel of the
/// symbol; no depth windows or liquidation streams.
fn new_market(kind: DeribitKind, cfg: &MarketConfig, seed: u64, now_ms: u64) -> Market {
    let names = move |spec: &SymbolSpec| {
        let trade = canonical_trades(kind, spec);
        let cur = currency(kind, spec);
        let watch = Interval::ALL.into_iter().flat_map(|iv| trade_channels(kind, &spec.name, cur, iv)).collect();
        Names {
            trade: trade.clone(),
            trade_watch: watch,
            user_trade: trade,
            agg: None,
            book_ticker: None,
            depth: Vec::new(),
            force: format!("#liquidations.{}", spec.name),
        }
    };
    let streams = Streams { depth_ms: &[], liquidation_ms: 1000, all_liquidations: None, names: &names };
    Market::new(cfg.kind, &cfg.symbols, seed, &cfg.timing, now_ms, &streams)
}

/// Fans the generator's trade objects out: one notification per tracked
/// `raw` channel now, and into the buffers of the tracked batched channels.
/// Other emits pass through.
pub(crate) fn route_trades(
    kind: DeribitKind,
    state: &mut DeribitState,
    tracked: &HashSet<String>,
    out: &mut Vec<Emit>,
) {
    if !out.iter().any(|e| e.stream.starts_with('#')) {
        return;
    }
    let mut routed = Vec::with_capacity(out.len());
    for e in out.drain(..) {
        let Some((cur, inst)) = e.stream.strip_prefix("#trades.").and_then(|r| r.split_once('.')) else {
            if !e.stream.starts_with('#') {
                routed.push(e);
            }
            continue;
        };
        let id = e.id.unwrap_or(0);
        for iv in Interval::ALL {
            for ch in trade_channels(kind, inst, cur, iv) {
                if !tracked.contains(&ch) {
                    continue;
                }
                if iv == Interval::Raw {
                    let p = notification(&ch, &format!("[{}]", e.payload));
                    routed.push(Emit { stream: ch, payload: p, id: e.id });
                } else {
                    let b = state.trade_batches.entry(ch).or_default();
                    if b.len() >= MAX_BATCH {
                        b.remove(0);
                    }
                    b.push((e.payload.clone(), id));
                }
            }
        }
    }
    *out = routed;
}

/// A channel pushed on a timer: books, batched trades, tickers and the rest.
#[derive(Debug)]
pub(crate) struct Push {
    pub kind: DeribitKind,
    pub name: String,
    pub chan: Channel,
}

impl Render for Push {
    fn render(&mut self, m: &mut Market, venue: &mut (dyn Any + Send), now_ms: u64) -> Vec<(String, Option<u64>)> {
        let Some(st) = state_mut(venue) else { return vec![] };
        render(self.kind, &self.name, &self.chan, m, st, now_ms).into_iter().collect()
    }
}

/// The next message of a timer channel, if any.
fn render(
    kind: DeribitKind,
    name: &str,
    chan: &Channel,
    m: &mut Market,
    st: &mut DeribitState,
    now_ms: u64,
) -> Option<(String, Option<u64>)> {
    let changed = |st: &mut DeribitState, body: String| -> Option<String> {
        let last = st.last_body.entry(name.to_string()).or_default();
        if *last == body {
            return None;
        }
        last.clone_from(&body);
        Some(body)
    };
    match chan {
        Channel::Book(sym, _) => {
            let s = m.symbol(sym)?;
            let c = st.books.get_mut(name)?;
            c.render(kind, s, name, now_ms).map(|(p, id)| (p, Some(id)))
        }
        Channel::Grouped(sym, depth, _) => {
            let s = m.symbol(sym)?;
            let c = st.grouped.get_mut(name)?;
            c.render(kind, s, *depth, name, now_ms, false).map(|(p, id)| (p, Some(id)))
        }
        Channel::Trades(..) => {
            let b = st.trade_batches.get_mut(name).filter(|b| !b.is_empty())?;
            let last = b.last().map(|(_, id)| *id);
            let objs: Vec<String> = b.drain(..).map(|(o, _)| o).collect();
            Some((notification(name, &format!("[{}]", objs.join(","))), last))
        }
        Channel::Ticker(sym, _) => {
            let body = ticker::ticker_body(kind, m.symbol(sym)?, now_ms);
            let body = changed(st, body)?;
            Some((notification(name, &ticker::with_timestamp(now_ms, &body)), None))
        }
        Channel::Quote(sym) => {
            let body = changed(st, ticker::quote_body(kind, m.symbol(sym)?))?;
            Some((notification(name, &ticker::with_timestamp(now_ms, &body)), None))
        }
        Channel::Perpetual(sym, _) => {
            let body = changed(st, ticker::perpetual_body(kind, m.symbol(sym)?))?;
            Some((notification(name, &ticker::with_timestamp(now_ms, &body)), None))
        }
        Channel::PriceIndex(idx) => {
            let body = changed(st, ticker::price_index_body(kind, m, idx))?;
            Some((notification(name, &ticker::with_timestamp(now_ms, &body)), None))
        }
        Channel::Chart(sym, res) => {
            let body = changed(st, ticker::chart_body(kind, m, sym, res, now_ms)?)?;
            Some((notification(name, &body), None))
        }
        Channel::UserOrders(..) | Channel::UserTrades(..) | Channel::UserChanges(..) | Channel::Portfolio(_) => None,
    }
}

/// Deribit, one dialect per instrument kind.
#[derive(Debug)]
pub(crate) struct Deribit {
    /// The kind its markets serve.
    pub kind: DeribitKind,
}

static DIALECTS: [Deribit; 3] = [
    Deribit { kind: DeribitKind::Inverse },
    Deribit { kind: DeribitKind::Linear },
    Deribit { kind: DeribitKind::Option },
];

/// The dialect of a kind.
pub(crate) fn dialect(kind: DeribitKind) -> &'static Deribit {
    &DIALECTS[DeribitKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)]
}

impl Dialect for Deribit {
    fn market(&self, cfg: &MarketConfig, seed: u64, now_ms: u64) -> Market {
        new_market(self.kind, cfg, seed, now_ms)
    }

    fn venue_state(&self) -> Box<dyn Any + Send> {
        Box::new(DeribitState::default())
    }

    fn tick(&self, market: &mut Market, now_ms: u64, elapsed_ms: u64, tracked: &HashSet<String>, out: &mut Vec<Emit>) {
        market.tick(&Encoder { kind: self.kind }, now_ms, elapsed_ms, tracked, out);
    }

    /// Routes the generator's trades and drives the connections' heartbeats.
    fn route_emits(&self, venue: &mut (dyn Any + Send), tracked: &HashSet<String>, out: &mut Vec<Emit>, now: u64) {
        if let Some(st) = state_mut(venue) {
            route_trades(self.kind, st, tracked, out);
            heartbeat::tick(st, now);
        }
    }

    fn route(&self, _hub: &Hub, path: &str, _query: Option<&str>) -> Option<WsTarget> {
        (path.trim_end_matches('/') == PATH).then(|| WsTarget {
            kind: ConnKind { tag: TAG, private: false, server_pings: false },
            combined: false,
            streams: Vec::new(),
            listen: Vec::new(),
        })
    }

    /// Refused upgrades get a JSON-RPC error body (the venue documents none).
    fn refuse(&self, hub: &Hub, why: Refusal) -> Resp {
        let (status, code, msg) = match why {
            Refusal::NotFound => (StatusCode::NOT_FOUND, -32601, "not_found"),
            Refusal::BadHandshake => (StatusCode::BAD_REQUEST, 11050, "bad_request"),
            Refusal::TooManyAttempts => (StatusCode::TOO_MANY_REQUESTS, 10028, "too_many_requests"),
        };
        let _ = hub;
        json(
            status,
            format!("{{\"jsonrpc\":\"2.0\",\"error\":{{\"code\":{code},\"message\":\"{msg}\"}},\"testnet\":false}}"),
        )
    }

    fn answer(&self, hub: &Hub, conn: u64, _kind: ConnKind, text: &str) -> (Option<Bytes>, bool) {
        rpc::answer(self.kind, hub, conn, text)
    }

    /// Deribit sends no shutdown notice; the fault sends a `platform_state`
    /// notification saying maintenance.
    fn shutdown_notice(&self, _conn: &ConnEntry, now_ms: u64) -> String {
        notification("platform_state", &format!("{{\"maintenance\":true,\"timestamp\":{now_ms}}}"))
    }

    fn rest_precheck(&self, _hub: &Hub, _method: &Method, path: &str) -> Option<Resp> {
        (!path.starts_with("/api/v2/")).then(|| rpc::rest_error(StatusCode::NOT_FOUND, -32601, "Method not found"))
    }

    fn body_too_large(&self) -> Resp {
        rpc::rest_error(StatusCode::PAYLOAD_TOO_LARGE, 11050, "bad_request")
    }

    fn rest(&self, hub: &Hub, req: &Request<Bytes>) -> Resp {
        rpc::rest(self.kind, hub, req)
    }

    fn book_levels(&self, _cfg: &MarketConfig, spec: &SymbolSpec, levels: &[(i64, i64)]) -> Vec<[String; 2]> {
        let inst = Inst::of(self.kind, spec);
        levels.iter().map(|(p, q)| [inst.price(*p), inst.amount(*q)]).collect()
    }

    /// Keyed by a `book.{inst}.*` channel's `change_id`.
    fn book_at(&self, _hub: &Hub, st: &HubState, symbol: &str, change_id: u64, depth: usize) -> Option<BookCopy> {
        book::book_at(&state(st.venue.as_ref())?.books, symbol, change_id, depth)
    }

    /// Credits the balance and pushes `user.portfolio` to the account's subscribers.
    fn deposit(&self, hub: &Hub, st: &mut HubState, account: usize, asset: &str, amount: i128) {
        let now = hub.venue_ms(st);
        let Some(a) = st.accounts.list.get_mut(account) else { return };
        a.balance(asset).free += amount;
        a.update_ms = now;
        private::push_portfolio(self.kind, hub, st, account, asset);
    }

    /// `trades.FLOOD{k}-PERPETUAL.raw`: a well-formed channel of an
    /// instrument no market lists.
    fn unsubscribed_frame(&self, _combined: bool, k: u64, id: u64, now_ms: u64) -> String {
        let inst = format!("FLOOD{k}-PERPETUAL");
        notification(
            &format!("trades.{inst}.raw"),
            &format!(
                "[{{\"timestamp\":{now_ms},\"price\":1.0,\"amount\":10.0,\"direction\":\"buy\",\"index_price\":1.0,\"instrument_name\":\"{inst}\",\"trade_seq\":{id},\"mark_price\":1.0,\"tick_direction\":0,\"contracts\":1.0,\"trade_id\":\"{id}\"}}]"
            ),
        )
    }

    /// A notification on the channel `oversized.PAD`, padded.
    fn oversized_frame(&self, _combined: bool, bytes: usize, now_ms: u64) -> Option<String> {
        let head = format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{{\"channel\":\"oversized.PAD\",\"data\":{{\"timestamp\":{now_ms},\"p\":\""
        );
        let tail = "\"}}}";
        let pad = bytes.checked_sub(head.len() + tail.len())?;
        let mut out = String::with_capacity(bytes);
        out.push_str(&head);
        out.extend(std::iter::repeat_n('x', pad));
        out.push_str(tail);
        Some(out)
    }

    /// Every `book.*` channel of the symbols breaks its change-id chain once.
    /// Deribit's `trade_seq` grows per instrument for ever ("the sequence
    /// number of the trade within instrument", PROTOCOLS.md §6.6) and
    /// `change_id`s are not consecutive: the venue's restart is a broken
    /// `change_id` chain, which [`Dialect::reset_ids`] injects.
    fn restarts_ids(&self) -> bool {
        false
    }

    fn reset_ids(&self, st: &mut HubState, symbols: &[String]) -> Vec<String> {
        let Some(d) = state_mut(st.venue.as_mut()) else { return Vec::new() };
        let mut names = Vec::new();
        for (name, c) in d.books.iter_mut() {
            if symbols.contains(&c.inst) {
                c.break_next = true;
                names.push(name.clone());
            }
        }
        d.stats.chain_breaks += names.len() as u64;
        names
    }
}

/// Breaks the change-id chain of every `book.*` channel of `symbol` (every
/// symbol when `None`) once; returns how many channels.
pub(crate) fn break_chain(hub: &Hub, symbol: Option<&str>) -> usize {
    let mut st = hub.lock();
    let Some(d) = state_mut(st.venue.as_mut()) else { return 0 };
    let mut n = 0;
    for c in d.books.values_mut() {
        if symbol.is_none_or(|s| s == c.inst) {
            c.break_next = true;
            n += 1;
        }
    }
    d.stats.chain_breaks += n as u64;
    n
}

/// The market's Deribit counters, if it is a Deribit market.
pub(crate) fn stats(hub: &Hub) -> Option<DeribitStats> {
    let st = hub.lock();
    state(st.venue.as_ref()).map(|d| d.stats.clone())
}

/// Makes the next request of `conn` (every connection when `None`) run out
/// of credits. Returns how many connections.
pub(crate) fn exhaust(hub: &Hub, conn: Option<u64>) -> usize {
    let mut guard = hub.lock();
    let st = &mut *guard;
    let ids: Vec<u64> = st.conns.keys().copied().filter(|c| conn.is_none_or(|x| x == *c)).collect();
    let mut n = 0;
    for id in ids {
        if let Some(c) = private::conn_state(st, id) {
            c.credits.exhausted = true;
            n += 1;
        }
    }
    n
}
