//! Bybit v5 order entry on the linear category: the one order engine behind
//! the signed `POST /v5/order/create` (here) and the `/v5/trade` socket's
//! `order.create`, `order.amend`, `order.cancel` and batch ops (`super::trade`).
//!
//! Orders take liquidity from the true book through the same matching as the
//! Binance private side (`Market::user_take`, so `publicTrade` and the order
//! books show them) and the same one-way futures accounting
//! (`orders::apply_futures_fill`: average entry, realized profit, 0.05 % fee
//! in USDT). What a GTC or PostOnly limit order does not fill rests outside
//! the book in the account's open orders (`Account::open`, shared with every
//! venue): it never fills later by itself, and can be amended (a price that
//! now crosses takes what it can) or cancelled. Each change pushes, to every
//! authenticated `/v5/private` connection of the account subscribed to the
//! topic, one `order` message (the order's state after the change), and when
//! something filled one `execution` message with one item per fill, then
//! `position` and `wallet` (`super::items`).
//!
//! Refusals use the venue's retCodes (docs/v5/error.mdx) and, where a capture
//! shows one, its retMsg: `110001 order not exists or too late to cancel` /
//! `... to replace` and `110003 price is invalid` on the `/v5/trade` socket
//! (roq-trading/roq-bybit test/json_{cancel,amend,place}_order_2.cpp, live
//! frames of 2025-11); `10001 The number of contracts exceeds minimum limit
//! allowed`, `10001 params error: side invalid`, `110017 Reduce-only rule not
//! satisfied` (REST answers quoted in a client's comments, 2023; the current
//! 110017 text `orderQty will be truncated to zero` is the error table's);
//! `110007 ab not enough for new order` (ccxt's bybit.ts error map);
//! `10001 Qty invalid` (a REST answer in a client's test, 2024). Which cause
//! each of `110003 price is invalid` and `10001 Qty invalid` answers live is
//! not recorded; the simulator uses them for a price off the tick and a
//! quantity off the step.

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use crate::account::{Obj, Order, parse_dec};
use crate::auth;
use crate::config::{BybitCategory, MarketKind, SymbolSpec};
use crate::hub::{Hub, HubState};
use crate::market::Emit;
use crate::orders::apply_futures_fill;
use crate::server::{Resp, json};

use super::encode::{Encoder, js};
use super::items::{
    Ctx, Exec, Flags, LEVERAGE, exec_item, is_open, margin, notional, order_id, order_item, position_item, uuid_of,
    wallet_item,
};
use super::private::push;
use super::ratelimit::{self, OpKind, Quota, TOO_MANY};
use super::{state, state_mut};

/// The order endpoint.
const CREATE: &str = "/v5/order/create";

/// The default and largest `X-BAPI-RECV-WINDOW` (ms).
pub(crate) const RECV_WINDOW: u64 = 5000;

/// A refused request: the venue's retCode and retMsg.
pub(crate) type Reject = (i64, String);

fn reject(r: (i64, &str)) -> Reject {
    (r.0, r.1.to_string())
}

/// A quantity below the instrument's minimum (one step).
const MIN_QTY: (i64, &str) = (10001, "The number of contracts exceeds minimum limit allowed");
/// A quantity that is not a multiple of the step.
const QTY_STEP: (i64, &str) = (10001, "Qty invalid");
/// A price that is not a multiple of the tick.
const PRICE_TICK: (i64, &str) = (110003, "price is invalid");
/// Not enough available balance for the order's initial margin.
const NO_BALANCE: (i64, &str) = (110007, "ab not enough for new order");
/// A reduce-only order with nothing to reduce.
const REDUCE_ONLY: (i64, &str) = (110017, "orderQty will be truncated to zero");
/// An `orderLinkId` already used by the account.
const LINK_DUP: (i64, &str) = (110072, "OrderLinkedID is duplicate");
/// Neither `orderId` nor `orderLinkId` given to amend or cancel.
const NO_ID: (i64, &str) = (10001, "params error: OrderId or orderLinkId is required");

/// What an accepted request answers.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    /// `orderId`.
    pub order_id: String,
    /// `orderLinkId`.
    pub link: String,
    /// The order's creation time (ms), `createAt` in batch answers.
    pub created_ms: u64,
}

impl Done {
    fn of(o: &Order) -> Done {
        Done { order_id: order_id(o.id), link: o.client_id.clone(), created_ms: o.time_ms }
    }
}

// ----- REST -----

/// Whether `path` is a Bybit REST endpoint served here.
pub(crate) fn is_rest_path(hub: &Hub, path: &str) -> bool {
    path == CREATE && hub.cfg.bybit_category() == Some(BybitCategory::Linear)
}

/// `{"retCode","retMsg","result","retExtInfo":{},"time"}` (HTTP 200, as the
/// venue answers business errors and its per-UID rate limit too).
fn ret(code: i64, msg: &str, result: &str, now: u64) -> Resp {
    let body =
        format!("{{\"retCode\":{code},\"retMsg\":{},\"result\":{result},\"retExtInfo\":{{}},\"time\":{now}}}", js(msg));
    json(StatusCode::OK, body)
}

fn header<'a>(req: &'a Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// `POST /v5/order/create`. Once signed, it counts against the account's
/// `order.create` limit, shared with the `/v5/trade` socket, and the answer
/// carries `X-Bapi-Limit`, `X-Bapi-Limit-Status` and
/// `X-Bapi-Limit-Reset-Timestamp` (docs/v5/rate-limit/rate-limit.mdx).
pub(crate) fn rest(req: &Request<Bytes>, hub: &Hub) -> Resp {
    let now = {
        let st = hub.lock();
        hub.venue_ms(&st)
    };
    if *req.method() != Method::POST {
        return json(StatusCode::METHOD_NOT_ALLOWED, r#"{"retCode":10001,"retMsg":"Method not allowed"}"#);
    }
    if hub.charge_weight(1).is_err() {
        return json(
            StatusCode::FORBIDDEN,
            format!("{{\"retCode\":10006,\"retMsg\":\"Too many visits!\",\"result\":{{}},\"time\":{now}}}"),
        );
    }
    let acct = match verify(req, hub, now) {
        Ok(a) => a,
        Err((code, msg)) => return ret(code, &msg, "{}", now),
    };
    let v: Value = match serde_json::from_slice(req.body()) {
        Ok(v @ Value::Object(_)) => v,
        _ => return ret(10001, "params error: the body must be a JSON object", "{}", now),
    };
    match category(&v) {
        Ok(()) => {}
        Err(Category::Missing) => return ret(10001, "params error: category is required", "{}", now),
        Err(Category::Unsupported) => return ret(10001, "params error: Category is invalid", "{}", now),
    }
    let mut guard = hub.lock();
    let st = &mut *guard;
    let q = ratelimit::charge(hub, st, acct, OpKind::Create, 1);
    let mut resp = if q.granted == 0 {
        ret(TOO_MANY.0, TOO_MANY.1, "{}", now)
    } else {
        match place(hub, st, acct, &v) {
            Ok(d) => ret(0, "OK", &Obj::new().s("orderId", &d.order_id).s("orderLinkId", &d.link).end(), now),
            Err((code, msg)) => ret(code, &msg, "{}", now),
        }
    };
    limit_headers(&mut resp, &q);
    resp
}

fn limit_headers(resp: &mut Resp, q: &Quota) {
    let h = resp.headers_mut();
    for (name, v) in [
        ("x-bapi-limit", q.limit as u64),
        ("x-bapi-limit-status", q.remaining as u64),
        ("x-bapi-limit-reset-timestamp", q.reset_ms),
    ] {
        h.insert(name, HeaderValue::from(v));
    }
}

/// The timestamp rule of signed requests (REST headers and the `/v5/trade`
/// request `header`): `server - recvWindow <= timestamp < server + 1000`.
pub(crate) fn check_timestamp(ts: u64, rw: u64, now: u64) -> Result<(), Reject> {
    if ts >= now.saturating_add(1000) || ts.saturating_add(rw) < now {
        return Err((
            10002,
            format!(
                "invalid request, please check your server timestamp or recv_window param. \
                 req_timestamp[{ts}],server_timestamp[{now}],recv_window[{rw}]"
            ),
        ));
    }
    Ok(())
}

/// Bybit v5 REST signing: `X-BAPI-SIGN` = hex HMAC-SHA256 of
/// `timestamp + apiKey + recvWindow + body`; the timestamp must satisfy
/// [`check_timestamp`].
fn verify(req: &Request<Bytes>, hub: &Hub, now: u64) -> Result<usize, (i64, String)> {
    let invalid_key = || (10003, "API key is invalid.".to_string());
    let key = header(req, "x-bapi-api-key").ok_or_else(invalid_key)?;
    let ts_raw = header(req, "x-bapi-timestamp");
    let rw_raw = header(req, "x-bapi-recv-window");
    let rw: u64 = match rw_raw {
        None => RECV_WINDOW,
        Some(r) => r.parse().map_err(|_| (10001, "params error: X-BAPI-RECV-WINDOW invalid".to_string()))?,
    };
    let ts: u64 = ts_raw
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| (10001, "params error: X-BAPI-TIMESTAMP invalid".to_string()))?;
    check_timestamp(ts, rw, now)?;
    let sig = header(req, "x-bapi-sign")
        .ok_or_else(|| (10004, "Error sign, please check your signature generation algorithm.".to_string()))?;
    let (verifier, acct) = {
        let st = hub.lock();
        let acct = st.accounts.by_api_key(key).ok_or_else(invalid_key)?;
        (st.accounts.list[acct].verifier.clone(), acct)
    };
    let bad_sign = || (10004, "Error sign, please check your signature generation algorithm.".to_string());
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_sign());
    }
    let mut payload = format!("{}{key}{}", ts_raw.unwrap_or(""), rw_raw.unwrap_or(""));
    payload.push_str(&String::from_utf8_lossy(req.body()));
    verifier.verify(payload.as_bytes(), sig, false).map_err(|_: auth::BadSignature| bad_sign())?;
    Ok(acct)
}

// ----- requests -----

/// Why a request's `category` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    /// No `category`.
    Missing,
    /// Anything but `linear` (the only category the simulator trades).
    Unsupported,
}

/// Checks a request's `category`.
pub(crate) fn category(v: &Value) -> Result<(), Category> {
    match text_field(v, "category") {
        Some("linear") => Ok(()),
        None => Err(Category::Missing),
        Some(_) => Err(Category::Unsupported),
    }
}

fn text_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Whether the request has `k` at all (`null` and `""` count as absent, as
/// for "do not pass it if not modified").
fn given(v: &Value, k: &str) -> bool {
    match v.get(k) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

fn param_err(what: &str) -> Reject {
    (10001, format!("params error: {what}"))
}

/// The largest quantity or price accepted, in lots or ticks (keeps every
/// product of the accounting inside `i128`).
const MAX_UNITS: i128 = i64::MAX as i128 / 1_000_000;

/// `qty` in lots: a decimal string of at least one step, on the step.
fn lots(spec: &SymbolSpec, v: &Value) -> Result<i64, Reject> {
    const FINE: u32 = 18;
    let s = text_field(v, "qty").ok_or_else(|| param_err("qty invalid"))?;
    let fine = match parse_dec(s, FINE) {
        Ok(x) => x,
        // More than 18 decimals: certainly off the step.
        Err(true) => return Err(reject(QTY_STEP)),
        Err(false) => return Err(param_err("qty invalid")),
    };
    let unit = 10i128.pow(FINE - spec.qty_decimals.min(FINE));
    if fine < unit {
        return Err(reject(MIN_QTY));
    }
    if fine % unit != 0 {
        return Err(reject(QTY_STEP));
    }
    match fine / unit {
        q if q <= MAX_UNITS => Ok(q as i64),
        _ => Err(param_err("qty invalid")),
    }
}

/// `price` in ticks: a positive decimal string on the tick.
fn ticks(spec: &SymbolSpec, v: &Value) -> Result<i64, Reject> {
    let s = text_field(v, "price").ok_or_else(|| param_err("price invalid"))?;
    match parse_dec(s, spec.price_decimals) {
        Ok(p) if p > 0 && p <= MAX_UNITS => Ok(p as i64),
        Err(true) => Err(reject(PRICE_TICK)),
        _ => Err(param_err("price invalid")),
    }
}

/// A parsed `order.create` / `POST /v5/order/create` item.
#[derive(Debug)]
struct NewOrder {
    spec: SymbolSpec,
    buy: bool,
    market: bool,
    qty: i64,
    /// Ticks (0 for a market order).
    price: i64,
    tif: &'static str,
    link: String,
    reduce_only: bool,
}

fn symbol_spec(st: &HubState, v: &Value) -> Result<SymbolSpec, Reject> {
    let symbol = text_field(v, "symbol").ok_or_else(|| param_err("symbol invalid"))?;
    st.market.symbol(symbol).map(|s| s.spec.clone()).ok_or_else(|| param_err("Symbol Is Invalid"))
}

fn parse_new(st: &HubState, v: &Value) -> Result<NewOrder, Reject> {
    let spec = symbol_spec(st, v)?;
    let buy = match text_field(v, "side") {
        Some("Buy") => true,
        Some("Sell") => false,
        _ => return Err(param_err("side invalid")),
    };
    let market = match text_field(v, "orderType") {
        Some("Market") => true,
        Some("Limit") => false,
        _ => return Err(param_err("orderType invalid")),
    };
    let qty = lots(&spec, v)?;
    // A market order ignores `price` (docs/v5/order/create-order.mdx).
    let price = if market { 0 } else { ticks(&spec, v)? };
    let tif: &'static str = match (text_field(v, "timeInForce"), market) {
        (None, true) => "IOC",
        (None, false) => "GTC",
        (Some("GTC"), _) => "GTC",
        (Some("IOC"), _) => "IOC",
        (Some("FOK"), _) => "FOK",
        (Some("PostOnly"), false) => "PostOnly",
        _ => return Err(param_err("timeInForce invalid")),
    };
    let link = match text_field(v, "orderLinkId") {
        None => String::new(),
        Some(l) if l.len() <= 36 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
            l.to_string()
        }
        Some(_) => return Err(param_err("orderLinkId invalid")),
    };
    let reduce_only = match v.get("reduceOnly") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(param_err("reduceOnly invalid")),
    };
    Ok(NewOrder { spec, buy, market, qty, price, tif, link, reduce_only })
}

/// The account's position in `symbol` a `buy` (or sell) order can close, in lots.
fn closable(st: &HubState, acct: usize, symbol: &str, buy: bool) -> i64 {
    let pos = st.accounts.list[acct].positions.get(symbol).map_or(0, |p| p.amt);
    if (pos > 0 && !buy) || (pos < 0 && buy) { pos.abs() } else { 0 }
}

/// Whether open order `id` is reduce-only.
fn reduce_only_of(st: &HubState) -> impl Fn(u64) -> bool + '_ {
    let flags = state(st.venue.as_ref()).map(|b| &b.orders);
    move |id| flags.and_then(|f| f.get(&id)).is_some_and(|f| f.reduce_only)
}

/// 110007 unless the account can put up the initial margin (10x) of the part
/// of `lots` at `price` that opens or grows a position. `skip`: the open
/// order an amend replaces.
fn check_margin(
    st: &HubState,
    acct: usize,
    spec: &SymbolSpec,
    (buy, lots, price): (bool, i64, i64),
    skip: Option<u64>,
) -> Result<(), Reject> {
    let opening = (lots - closable(st, acct, &spec.name, buy)).max(0);
    let need = notional(spec, price, opening) / LEVERAGE;
    if need > 0 && need > margin(st, acct, &spec.quote, &reduce_only_of(st), skip).available() {
        return Err(reject(NO_BALANCE));
    }
    Ok(())
}

// ----- create, amend, cancel -----

/// Places one order (`category` already checked): parses, checks, matches
/// and accounts it, and pushes its messages.
pub(crate) fn place(hub: &Hub, st: &mut HubState, acct: usize, v: &Value) -> Result<Done, Reject> {
    let n = parse_new(st, v)?;
    let symbol = n.spec.name.clone();
    let a = &st.accounts.list[acct];
    if !n.link.is_empty()
        && (a.open.values().any(|o| o.client_id == n.link) || a.history.iter().any(|o| o.client_id == n.link))
    {
        return Err(reject(LINK_DUP));
    }
    let mut qty = n.qty;
    if n.reduce_only {
        // A reduce-only order is cut to the position it can close.
        match closable(st, acct, &symbol, n.buy) {
            0 => return Err(reject(REDUCE_ONLY)),
            c => qty = qty.min(c),
        }
    }
    let limit = if n.market { None } else { Some(n.price) };
    let Some(sym) = st.market.symbol(&symbol) else { return Err(param_err("Symbol Is Invalid")) };
    let (last_price, mid) = (sym.last, sym.mid());
    let mut plan = sym.preview_take(n.buy, qty, limit);
    let mut reject_reason = "EC_NoError";
    if n.tif == "FOK" && plan.iter().map(|(_, x)| x).sum::<i64>() < qty {
        plan.clear();
        reject_reason = "EC_FOKOrderNotFilledCompletely";
    }
    if n.tif == "PostOnly" && !plan.is_empty() {
        // A post-only order that would take is accepted, then cancelled
        // (docs/v5/enum.mdx: EC_PostOnlyWillTakeLiquidity).
        plan.clear();
        reject_reason = "EC_PostOnlyWillTakeLiquidity";
    }
    let planned: i64 = plan.iter().map(|(_, x)| x).sum();
    let would_take = reject_reason == "EC_PostOnlyWillTakeLiquidity";
    let rests = !n.market && (n.tif == "GTC" || (n.tif == "PostOnly" && !would_take)) && planned < qty;
    if !n.reduce_only {
        let check_px = if n.market { plan.last().map_or(mid, |(p, _)| *p) } else { n.price };
        check_margin(st, acct, &n.spec, (n.buy, qty, check_px), None)?;
    }
    let max_open = hub.cfg.limits.max_open_orders;
    if rests && st.accounts.list[acct].open.len() >= max_open {
        return Err((110020, format!("Not allowed to have more than {max_open} active orders.")));
    }

    let now = hub.venue_ms(st);
    let id = st.accounts.next_order_id;
    st.accounts.next_order_id += 1;
    let mut o = Order {
        symbol,
        id,
        client_id: n.link,
        buy: n.buy,
        market: n.market,
        tif: n.tif,
        qty,
        price: n.price,
        executed: 0,
        cum_notional: 0,
        cum_ticks_lots: 0,
        status: "New",
        time_ms: now,
        update_ms: now,
    };
    let mut flags = Flags {
        reduce_only: n.reduce_only,
        reject: reject_reason,
        cancel_type: "UNKNOWN",
        fees: 0,
        pnl: 0,
        last_on_created: last_price,
    };
    let execs = execute(hub, st, acct, &mut o, &mut flags, planned, limit);
    o.status = match (o.executed, rests) {
        (0, true) => "New",
        (_, true) => "PartiallyFilled",
        (e, false) if e == qty => "Filled",
        // What an IOC, FOK, PostOnly or market order leaves is cancelled; in
        // derivatives `Cancelled` may have an executed qty (docs/v5/enum.mdx).
        _ => "Cancelled",
    };
    if n.market {
        // A market order reports the worst price it may trade at: here, the
        // last level it took (the mid when nothing filled).
        o.price = execs.last().map_or(mid, |e| e.price);
    }
    let done = Done::of(&o);
    settle(hub, st, acct, &n.spec, o, flags, &execs);
    Ok(done)
}

/// Finds an open order of the request's `symbol` by `orderId` (first) or
/// `orderLinkId`; `missing` is the 110001 message.
fn find_open(st: &HubState, acct: usize, v: &Value, missing: &str) -> Result<(u64, SymbolSpec), Reject> {
    let spec = symbol_spec(st, v)?;
    let by_id = text_field(v, "orderId");
    let by_link = text_field(v, "orderLinkId");
    let open = &st.accounts.list[acct].open;
    let found = match (by_id, by_link) {
        (None, None) => return Err(reject(NO_ID)),
        (Some(id), _) => open.values().find(|o| order_id(o.id) == id),
        (None, Some(link)) => open.values().find(|o| o.client_id == link),
    };
    match found {
        Some(o) if o.symbol == spec.name => Ok((o.id, spec)),
        _ => Err((110001, missing.to_string())),
    }
}

fn flags_of(st: &HubState, id: u64, o: &Order) -> Flags {
    state(st.venue.as_ref()).and_then(|b| b.orders.get(&id)).cloned().unwrap_or(Flags {
        reduce_only: false,
        reject: "EC_NoError",
        cancel_type: "UNKNOWN",
        fees: 0,
        pnl: 0,
        last_on_created: o.price,
    })
}

/// Amends an open order's `qty` and/or `price` (`orderId` or `orderLinkId`).
/// A new price that crosses the book takes what it can, as a taker; a
/// post-only order that would is cancelled instead.
pub(crate) fn amend(hub: &Hub, st: &mut HubState, acct: usize, v: &Value) -> Result<Done, Reject> {
    let (id, spec) = find_open(st, acct, v, "order not exists or too late to replace")?;
    let Some(mut o) = st.accounts.list[acct].open.get(&id).cloned() else {
        return Err((110001, "order not exists or too late to replace".into()));
    };
    let (qty_given, price_given) = (given(v, "qty"), given(v, "price"));
    if !qty_given && !price_given {
        return Err(param_err("qty or price is required"));
    }
    let qty = if qty_given { lots(&spec, v)? } else { o.qty };
    let price = if price_given { ticks(&spec, v)? } else { o.price };
    if qty <= o.executed {
        return Err(param_err("qty must be greater than the filled qty"));
    }
    let mut flags = flags_of(st, id, &o);
    if !flags.reduce_only {
        check_margin(st, acct, &spec, (o.buy, qty - o.executed, price), Some(id))?;
    }
    o.qty = qty;
    o.price = price;
    o.update_ms = hub.venue_ms(st);
    let leaves = qty - o.executed;
    let planned: i64 = st
        .market
        .symbol(&o.symbol)
        .map_or(0, |s| s.preview_take(o.buy, leaves, Some(price)).iter().map(|(_, x)| x).sum());
    let execs = if o.tif == "PostOnly" && planned > 0 {
        flags.reject = "EC_PostOnlyWillTakeLiquidity";
        o.status = "Cancelled";
        Vec::new()
    } else {
        let execs = execute(hub, st, acct, &mut o, &mut flags, planned, Some(price));
        o.status = match o.executed {
            e if e >= o.qty => "Filled",
            0 => "New",
            _ => "PartiallyFilled",
        };
        execs
    };
    let done = Done::of(&o);
    settle(hub, st, acct, &spec, o, flags, &execs);
    Ok(done)
}

/// Cancels an open order (`orderId` or `orderLinkId`): `Cancelled`,
/// `cancelType:"CancelByUser"`.
pub(crate) fn cancel(hub: &Hub, st: &mut HubState, acct: usize, v: &Value) -> Result<Done, Reject> {
    let (id, spec) = find_open(st, acct, v, "order not exists or too late to cancel")?;
    let Some(mut o) = st.accounts.list[acct].open.get(&id).cloned() else {
        return Err((110001, "order not exists or too late to cancel".into()));
    };
    let mut flags = flags_of(st, id, &o);
    flags.cancel_type = "CancelByUser";
    o.status = "Cancelled";
    o.update_ms = hub.venue_ms(st);
    let done = Done::of(&o);
    settle(hub, st, acct, &spec, o, flags, &[]);
    Ok(done)
}

/// Takes `lots` for `o` from the true book up to `limit` (market: `None`) at
/// `o.update_ms`, accounts every fill to the account and to `o`, and
/// delivers the public messages.
fn execute(
    hub: &Hub,
    st: &mut HubState,
    acct: usize,
    o: &mut Order,
    flags: &mut Flags,
    lots: i64,
    limit: Option<i64>,
) -> Vec<Exec> {
    let Some(spec) = st.market.symbol(&o.symbol).map(|s| s.spec.clone()) else { return Vec::new() };
    if lots <= 0 {
        return Vec::new();
    }
    let mut emits: Vec<Emit> = Vec::new();
    let fills = {
        let HubState { market, tracked, .. } = &mut *st;
        let enc = Encoder { cat: BybitCategory::Linear };
        market.user_take(&enc, &o.symbol, o.buy, lots, limit, o.update_ms, tracked, &mut emits)
    };
    for e in emits {
        hub.deliver(st, &e.stream, e.payload.as_bytes(), e.id, 1);
    }
    let mut execs = Vec::with_capacity(fills.len());
    for f in &fills {
        let n = notional(&spec, f.price, f.qty);
        let a = &mut st.accounts.list[acct];
        let before = a.positions.get(&o.symbol).map_or(0, |p| p.amt);
        let (fee, _, realized) = apply_futures_fill(MarketKind::UsdM, a, &spec, o.buy, f, n);
        let closed = if before != 0 && (before > 0) != o.buy { before.abs().min(f.qty) } else { 0 };
        o.executed += f.qty;
        o.cum_notional += n;
        o.cum_ticks_lots += f.price as i128 * f.qty as i128;
        flags.fees += fee;
        flags.pnl += realized;
        st.accounts.next_exec_id += 1;
        execs.push(Exec {
            id: uuid_of(st.accounts.next_exec_id, 0xe8ec),
            price: f.price,
            qty: f.qty,
            value: n,
            fee,
            pnl: realized,
            closed,
            leaves: o.qty - o.executed,
        });
    }
    execs
}

/// Keeps `o` open or finishes it, then pushes `order` and, when it filled,
/// `execution`, `position` and `wallet`.
fn settle(hub: &Hub, st: &mut HubState, acct: usize, spec: &SymbolSpec, o: Order, flags: Flags, execs: &[Exec]) {
    let now = o.update_ms;
    let open = is_open(o.status);
    let a = &mut st.accounts.list[acct];
    if !execs.is_empty() {
        a.update_ms = now;
    }
    if open {
        a.open.insert(o.id, o.clone());
    } else {
        a.open.remove(&o.id);
        a.finish(o.clone());
    }
    if let Some(b) = state_mut(st.venue.as_mut()) {
        if open {
            b.orders.insert(o.id, flags.clone());
        } else {
            b.orders.remove(&o.id);
        }
    }
    let mark = st.market.symbol(&o.symbol).map_or(o.price, |s| s.mid());
    let seq = state(st.venue.as_ref()).map_or(0, |b| b.private.seq);
    let seq_base = seq.max(st.market.symbol(&o.symbol).map_or(0, |s| s.update_id));
    let order_id = order_id(o.id);
    let ctx = Ctx { spec, order_id: &order_id, o: &o, flags: &flags, now, mark };
    let mut msgs: Vec<(&'static str, String)> = vec![("order", order_item(&ctx))];
    if !execs.is_empty() {
        let items: Vec<String> =
            execs.iter().enumerate().map(|(i, e)| exec_item(&ctx, e, seq_base + 1 + i as u64)).collect();
        msgs.push(("execution", items.join(",")));
        msgs.push(("position", position_item(&ctx, st, acct, seq_base + 1 + execs.len() as u64)));
        let m = margin(st, acct, &spec.quote, &reduce_only_of(st), None);
        msgs.push(("wallet", wallet_item(&m, &spec.quote)));
    }
    if let Some(b) = state_mut(st.venue.as_mut()) {
        b.private.seq = seq_base + 2 + execs.len() as u64;
    }
    let epoch_ms = hub.since_epoch_ms();
    for (topic, data) in msgs {
        let n = match state_mut(st.venue.as_mut()) {
            Some(b) => {
                b.private.msg += 1;
                b.private.msg
            }
            None => 0,
        };
        let mid = format!("{:x}{}", n, &uuid_of(n, 0x1d)[8..]);
        let payload = if topic == "execution" {
            format!("{{\"topic\":\"{topic}\",\"id\":{},\"creationTime\":{now},\"data\":[{data}]}}", js(&mid))
        } else {
            format!("{{\"id\":{},\"topic\":\"{topic}\",\"creationTime\":{now},\"data\":[{data}]}}", js(&mid))
        };
        push(st, epoch_ms, acct, topic, &payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SymbolSpec {
        SymbolSpec::new("BTCUSDT", "BTC", "USDT", 2, 3, 97_000.0)
    }

    #[test]
    fn quantities_and_prices_follow_the_step_and_the_tick() {
        let q = |s: &str| lots(&spec(), &serde_json::json!({ "qty": s }));
        assert_eq!(q("0.5"), Ok(500));
        assert_eq!(q("0.001"), Ok(1));
        assert_eq!(q("1.000000"), Ok(1000));
        assert_eq!(q("0.0005"), Err(reject(MIN_QTY)));
        assert_eq!(q("0"), Err(reject(MIN_QTY)));
        assert_eq!(q("0.0015"), Err(reject(QTY_STEP)));
        assert_eq!(q("1.0000000000000000001"), Err(reject(QTY_STEP)));
        assert_eq!(q("-1").map_err(|e| e.0), Err(10001));
        assert_eq!(q("1e3").map_err(|e| e.0), Err(10001));
        assert_eq!(q("99999999999999999999").map_err(|e| e.0), Err(10001));
        assert_eq!(lots(&spec(), &serde_json::json!({ "qty": 1 })).map_err(|e| e.0), Err(10001));
        let p = |s: &str| ticks(&spec(), &serde_json::json!({ "price": s }));
        assert_eq!(p("97000.5"), Ok(9_700_050));
        assert_eq!(p("97000.505"), Err(reject(PRICE_TICK)));
        assert_eq!(p("0").map_err(|e| e.0), Err(10001));
        assert_eq!(ticks(&spec(), &serde_json::json!({})).map_err(|e| e.0), Err(10001));
    }

    #[test]
    fn the_timestamp_window() {
        assert!(check_timestamp(10_000, 5000, 10_000).is_ok());
        assert!(check_timestamp(10_999, 5000, 10_000).is_ok());
        assert_eq!(check_timestamp(11_000, 5000, 10_000).map_err(|e| e.0), Err(10002));
        assert!(check_timestamp(5_000, 5000, 10_000).is_ok());
        assert_eq!(check_timestamp(4_999, 5000, 10_000).map_err(|e| e.0), Err(10002));
        assert_eq!(check_timestamp(u64::MAX, u64::MAX, 10_000).map_err(|e| e.0), Err(10002));
    }
}
