//! Deribit order entry (PROTOCOLS.md §6.8; docs.deribit.com
//! `api-reference/trading/private-buy`): `private/buy`, `private/sell`,
//! `private/edit`, `private/cancel`, `private/cancel_all`,
//! `private/cancel_all_by_instrument`, `private/get_open_orders_by_instrument`,
//! `private/get_order_state` (open orders and the account's kept history).
//!
//! Marketable amounts take liquidity from the true book (`Market::user_take`,
//! so the public `trades.*` and `book.*` channels show them); resting
//! remainders are kept outside the book, as on the other venues. Fills go
//! through the core's one-way futures accounting (`orders::apply_futures_fill`:
//! inverse contracts settle in the base coin, linear ones and options in the
//! quote; options are accounted like linear futures on the premium). Each
//! change pushes `user.orders`, `user.trades` (fills), `user.changes` and
//! `user.portfolio` to the account's subscribed connections. Errors: `10004
//! order_not_found`, `11044 not_open_order`, `10009 not_enough_funds`, `10002
//! qty_too_low`, `11054 post_only_reject` (a post-only order that would take,
//! with `reject_post_only`; without it the price moves to one tick inside
//! the spread, as the docs describe `post_only`), `-32602` for an amount
//! that is not a multiple of the contract size or a price off the tick.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::account::{AMT, Order, parse_dec};
use crate::config::{DeribitKind, SymbolSpec};
use crate::hub::{Hub, HubState};
use crate::market::{Emit, Fill};
use crate::orders::apply_futures_fill;

use super::channel::{Channel, Interval, Scope};
use super::encode::{Encoder, Inst, currency, float, index_price, js, num, trade_id};
use super::private::{push_portfolio, push_user};
use super::rpc::{Answer, Req, RpcError, raw_number};
use super::{route_trades, state_mut};

/// Order flags the core `Order` does not carry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    pub post_only: bool,
    pub reject_post_only: bool,
    pub reduce_only: bool,
    pub replaced: bool,
    pub cancel_reason: Option<&'static str>,
}

/// Orders whose flags are kept (the oldest are forgotten).
const MAX_FLAGS: usize = 5000;

/// The value of `lots` at `ticks` in the settlement coin, 1e-8 units:
/// inverse `amount_usd / price`, linear and option `amount × price`.
pub(crate) fn value(kind: DeribitKind, spec: &SymbolSpec, ticks: i64, lots: i64) -> i128 {
    let i = Inst::of(kind, spec);
    let (t, l) = (ticks.max(1) as i128 * i.tick_mult as i128, lots as i128 * i.amt_mult as i128);
    match kind {
        DeribitKind::Inverse => l * 10i128.pow(AMT + i.price_scale) / (t * 10i128.pow(i.amt_scale)),
        DeribitKind::Linear | DeribitKind::Option => crate::account::rescale(l * t, i.price_scale + i.amt_scale, AMT),
    }
}

/// Unrealized profit, initial and maintenance margin (1e-8) of `acct`'s
/// positions settling in `cur`, at the mid (10 % and 5 % of the value).
pub(crate) fn margins(kind: DeribitKind, st: &HubState, acct: usize, cur: &str) -> (i128, i128, i128) {
    let a = &st.accounts.list[acct];
    let (mut upl, mut im, mut mm) = (0i128, 0i128, 0i128);
    for (sym, p) in &a.positions {
        let Some(s) = st.market.symbol(sym) else { continue };
        if currency(kind, &s.spec) != cur || p.amt == 0 {
            continue;
        }
        let now_value = value(kind, &s.spec, s.mid(), p.amt.abs());
        let pnl = if kind == DeribitKind::Inverse { p.cost - now_value } else { now_value - p.cost };
        upl += if p.amt > 0 { pnl } else { -pnl };
        im += now_value / 10;
        mm += now_value / 20;
    }
    (upl, im, mm)
}

fn order_id(kind: DeribitKind, spec: &SymbolSpec, id: u64) -> String {
    match currency(kind, spec) {
        "BTC" => id.to_string(),
        c => format!("{c}-{id}"),
    }
}

fn parse_order_id(s: &str) -> Option<u64> {
    s.rsplit('-').next()?.parse().ok()
}

/// One order object (keys as `private_buy_response.json`).
fn order_json(kind: DeribitKind, spec: &SymbolSpec, o: &Order, f: &Flags) -> String {
    let i = Inst::of(kind, spec);
    let avg = if o.executed == 0 {
        "0.0".to_string()
    } else {
        num(o.cum_ticks_lots * i.tick_mult as i128 * 100 / o.executed as i128, i.price_scale + 2)
    };
    let mut p = String::with_capacity(640);
    let _ = write!(
        p,
        "{{\"label\":{},\"price\":{},\"user_id\":{},\"amount\":{},\"direction\":\"{}\",\"time_in_force\":\"{}\",\"instrument_name\":{},\"web\":false,\"api\":true,\"order_id\":\"{}\",\"creation_timestamp\":{},\"replaced\":{},\"filled_amount\":{},\"last_update_timestamp\":{},\"post_only\":{},\"reduce_only\":{}",
        js(&o.client_id),
        i.price(o.price),
        90_000 + o.id % 10_000 / 10_000,
        i.amount(o.qty),
        if o.buy { "buy" } else { "sell" },
        o.tif,
        js(&o.symbol),
        order_id(kind, spec, o.id),
        o.time_ms,
        f.replaced,
        i.amount(o.executed),
        o.update_ms,
        f.post_only,
        f.reduce_only,
    );
    if let Some(r) = f.cancel_reason {
        let _ = write!(p, ",\"cancel_reason\":\"{r}\"");
    }
    let _ = write!(
        p,
        ",\"average_price\":{avg},\"mmp\":false,\"contracts\":{},\"reject_post_only\":{},\"order_state\":\"{}\",\"order_type\":\"{}\",\"is_liquidation\":false,\"risk_reducing\":false}}",
        i.contracts(o.qty),
        f.reject_post_only,
        o.status,
        if o.market { "market" } else { "limit" },
    );
    p
}

/// One user trade object.
#[allow(clippy::too_many_arguments)] // one call site, plain values
fn user_trade_json(
    kind: DeribitKind,
    st: &HubState,
    spec: &SymbolSpec,
    o: &Order,
    f: &Flags,
    fill: &Fill,
    fee: i128,
    now: u64,
) -> String {
    let i = Inst::of(kind, spec);
    let (index, mark) = st
        .market
        .symbol(&spec.name)
        .map(|s| (float(index_price(kind, s), 2), super::encode::mark_price(kind, s)))
        .unwrap_or_else(|| ("0.0".into(), "0.0".into()));
    format!(
        "{{\"trade_seq\":{},\"trade_id\":\"{}\",\"timestamp\":{now},\"tick_direction\":0,\"state\":\"{}\",\"reduce_only\":{},\"price\":{},\"post_only\":{},\"order_type\":\"{}\",\"order_id\":\"{}\",\"matching_id\":null,\"mark_price\":{mark},\"liquidity\":\"T\",\"label\":{},\"instrument_name\":{},\"index_price\":{index},\"fee_currency\":\"{}\",\"fee\":{},\"direction\":\"{}\",\"amount\":{},\"contracts\":{}}}",
        fill.trade_id,
        trade_id(&spec.name, fill.trade_id),
        o.status,
        f.reduce_only,
        i.price(fill.price),
        f.post_only,
        if o.market { "market" } else { "limit" },
        order_id(kind, spec, o.id),
        js(&o.client_id),
        js(&spec.name),
        currency(kind, spec),
        num(fee, AMT),
        if o.buy { "buy" } else { "sell" },
        i.amount(fill.qty),
        i.contracts(fill.qty),
    )
}

/// The account's position object of `spec`.
fn position_json(kind: DeribitKind, st: &HubState, acct: usize, spec: &SymbolSpec) -> String {
    let i = Inst::of(kind, spec);
    let p = st.accounts.list[acct].positions.get(&spec.name).copied().unwrap_or_default();
    let mid = st.market.symbol(&spec.name).map_or(0, |s| s.mid());
    let avg = if p.amt == 0 || p.cost == 0 {
        "0.0".to_string()
    } else {
        float(
            match kind {
                DeribitKind::Inverse => p.amt.unsigned_abs() as f64 * i.amt_mult as f64 * 1e8 / p.cost as f64,
                _ => {
                    p.cost as f64
                        / 1e8
                        / (p.amt.unsigned_abs() as f64 * i.amt_mult as f64 / 10f64.powi(i.amt_scale as i32))
                }
            },
            4,
        )
    };
    let dir = match p.amt.signum() {
        1 => "buy",
        -1 => "sell",
        _ => "zero",
    };
    format!(
        "{{\"instrument_name\":{},\"kind\":\"{}\",\"direction\":\"{dir}\",\"size\":{},\"average_price\":{avg},\"mark_price\":{},\"realized_profit_loss\":{}}}",
        js(&spec.name),
        super::encode::kind_name(kind),
        i.amount(p.amt),
        i.price(mid),
        num(p.realized, AMT)
    )
}

/// Pushes an order's change (and its fills) on the private channels.
#[allow(clippy::too_many_arguments)] // two call sites, plain values
fn push_change(
    kind: DeribitKind,
    hub: &Hub,
    st: &mut HubState,
    acct: usize,
    spec: &SymbolSpec,
    order: &str,
    trades: &[String],
) {
    let covers = |s: &Scope| s.covers(kind, spec);
    let order_s = order.to_string();
    push_user(
        st,
        acct,
        "user.orders",
        |c| matches!(c, Channel::UserOrders(s, _) if covers(s)),
        |c| Some(if c.interval() == Some(Interval::Raw) { order_s.clone() } else { format!("[{order_s}]") }),
    );
    if !trades.is_empty() {
        let list = format!("[{}]", trades.join(","));
        push_user(
            st,
            acct,
            "user.trades",
            |c| matches!(c, Channel::UserTrades(s, _) if covers(s)),
            |_| Some(list.clone()),
        );
    }
    let pos = position_json(kind, st, acct, spec);
    let changes = format!(
        "{{\"instrument_name\":{},\"trades\":[{}],\"positions\":[{pos}],\"orders\":[{order_s}]}}",
        js(&spec.name),
        trades.join(",")
    );
    push_user(
        st,
        acct,
        "user.changes",
        |c| matches!(c, Channel::UserChanges(s, _) if covers(s)),
        |_| Some(changes.clone()),
    );
    push_portfolio(kind, hub, st, acct, currency(kind, spec));
}

fn flags_of(st: &HubState, id: u64) -> Flags {
    super::state(st.venue.as_ref()).and_then(|d| d.order_flags.get(&id).cloned()).unwrap_or_default()
}

fn set_flags(st: &mut HubState, id: u64, f: Flags) {
    if let Some(d) = state_mut(st.venue.as_mut()) {
        d.order_flags.insert(id, f);
        while d.order_flags.len() > MAX_FLAGS {
            d.order_flags.pop_first();
        }
    }
}

/// Takes what `o` (at `o.price`, or any price when market) can take now,
/// books the fills, and returns them with their fees.
fn execute(
    kind: DeribitKind,
    hub: &Hub,
    st: &mut HubState,
    acct: usize,
    o: &mut Order,
    want: i64,
) -> Vec<(Fill, i128)> {
    let limit = if o.market { None } else { Some(o.price) };
    let now = hub.venue_ms(st);
    let mut emits: Vec<Emit> = Vec::new();
    let fills = {
        let HubState { market, tracked, .. } = &mut *st;
        market.user_take(&Encoder { kind }, &o.symbol, o.buy, want, limit, now, tracked, &mut emits)
    };
    {
        let HubState { venue, tracked, .. } = &mut *st;
        if let Some(d) = state_mut(venue.as_mut()) {
            route_trades(kind, d, tracked, &mut emits);
        }
    }
    for e in emits {
        hub.deliver(st, &e.stream, e.payload.as_bytes(), e.id, 1);
    }
    let Some(spec) = st.market.symbol(&o.symbol).map(|s| s.spec.clone()) else { return vec![] };
    let mut out = Vec::with_capacity(fills.len());
    for f in fills {
        let n = value(kind, &spec, f.price, f.qty);
        let a = &mut st.accounts.list[acct];
        let (fee, _, _) = apply_futures_fill(hub.kind(), a, &spec, o.buy, &f, n);
        a.update_ms = now;
        o.executed += f.qty;
        o.cum_notional += n;
        o.cum_ticks_lots += f.price as i128 * f.qty as i128;
        out.push((f, fee));
    }
    o.update_ms = now;
    out
}

/// An amount parameter in lots.
fn lots_of(req: &Req<'_>, inst: &Inst) -> Result<i64, RpcError> {
    let raw = raw_number(req.text, "amount").ok_or_else(|| RpcError::param("amount", "required number"))?;
    let too_low = || RpcError::with(10002, "qty_too_low", "null".into());
    let v = match parse_dec(&raw, inst.amt_scale) {
        Ok(v) => v,
        Err(true) => {
            // Finer than the amount step: below one lot is too low, else off the step.
            let below = raw.parse::<f64>().is_ok_and(|x| x * 10f64.powi(inst.amt_scale as i32) < inst.amt_mult as f64);
            return Err(if below {
                too_low()
            } else {
                RpcError::param("amount", "must be a multiple of the contract size")
            });
        }
        Err(false) => return Err(RpcError::param("amount", "must be a positive number")),
    };
    if v == 0 || v < inst.amt_mult as i128 {
        return Err(too_low());
    }
    if v % inst.amt_mult as i128 != 0 || v / inst.amt_mult as i128 > i64::MAX as i128 / 4 {
        return Err(RpcError::param("amount", "must be a multiple of the contract size"));
    }
    Ok((v / inst.amt_mult as i128) as i64)
}

/// A price parameter in ticks.
fn ticks_of(req: &Req<'_>, inst: &Inst) -> Result<i64, RpcError> {
    let raw = raw_number(req.text, "price").ok_or_else(|| RpcError::param("price", "required number"))?;
    let v = parse_dec(&raw, inst.price_scale)
        .map_err(|_| RpcError::param("price", "must be a multiple of the tick size"))?;
    if v <= 0 || v % inst.tick_mult as i128 != 0 || v / inst.tick_mult as i128 > i64::MAX as i128 / 4 {
        return Err(RpcError::param("price", "must be a positive multiple of the tick size"));
    }
    Ok((v / inst.tick_mult as i128) as i64)
}

/// Every private method (after authorization).
pub(crate) fn private_method(kind: DeribitKind, hub: &Hub, _conn: u64, acct: usize, req: &Req<'_>) -> Answer {
    let p = req.params;
    match req.method {
        "private/buy" => place(kind, hub, acct, true, req),
        "private/sell" => place(kind, hub, acct, false, req),
        "private/edit" => edit(kind, hub, acct, req),
        "private/cancel" => {
            let id =
                p.get("order_id").and_then(Value::as_str).ok_or_else(|| RpcError::param("order_id", "required"))?;
            let mut guard = hub.lock();
            let st = &mut *guard;
            cancel_one(kind, hub, st, acct, id)
        }
        "private/cancel_all" | "private/cancel_all_by_instrument" => {
            let only = if req.method == "private/cancel_all" {
                None
            } else {
                Some(
                    p.get("instrument_name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| RpcError::param("instrument_name", "required"))?,
                )
            };
            let mut guard = hub.lock();
            let st = &mut *guard;
            let ids: Vec<u64> = st.accounts.list[acct]
                .open
                .values()
                .filter(|o| only.is_none_or(|s| s == o.symbol))
                .map(|o| o.id)
                .collect();
            let n = ids.len();
            for id in ids {
                let _ = cancel_one(kind, hub, st, acct, &id.to_string());
            }
            Ok(n.to_string())
        }
        "private/get_open_orders_by_instrument" => {
            let sym = p
                .get("instrument_name")
                .and_then(Value::as_str)
                .ok_or_else(|| RpcError::param("instrument_name", "required"))?;
            let st = hub.lock();
            let Some(spec) = st.market.symbol(sym).map(|s| s.spec.clone()) else {
                return Err(RpcError::param("instrument_name", "unknown instrument"));
            };
            let list: Vec<String> = st.accounts.list[acct]
                .open
                .values()
                .filter(|o| o.symbol == sym)
                .map(|o| order_json(kind, &spec, o, &flags_of(&st, o.id)))
                .collect();
            Ok(format!("[{}]", list.join(",")))
        }
        "private/get_order_state" => {
            let id =
                p.get("order_id").and_then(Value::as_str).ok_or_else(|| RpcError::param("order_id", "required"))?;
            let Some(n) = parse_order_id(id) else {
                return Err(RpcError::with(10004, "order_not_found", "null".into()));
            };
            let st = hub.lock();
            let a = &st.accounts.list[acct];
            let o = a
                .open
                .get(&n)
                .or_else(|| a.history.iter().find(|o| o.id == n))
                .ok_or_else(|| RpcError::with(10004, "order_not_found", "null".into()))?;
            let spec =
                st.market.symbol(&o.symbol).map(|s| s.spec.clone()).ok_or_else(|| RpcError::new(10001, "error"))?;
            Ok(order_json(kind, &spec, o, &flags_of(&st, o.id)))
        }
        _ => Err(RpcError::new(-32601, "Method not found")),
    }
}

fn cancel_one(kind: DeribitKind, hub: &Hub, st: &mut HubState, acct: usize, id: &str) -> Answer {
    let Some(n) = parse_order_id(id) else { return Err(RpcError::with(10004, "order_not_found", "null".into())) };
    let a = &mut st.accounts.list[acct];
    let Some(mut o) = a.open.remove(&n) else {
        return Err(if a.history.iter().any(|o| o.id == n) {
            RpcError::with(11044, "not_open_order", "null".into())
        } else {
            RpcError::with(10004, "order_not_found", "null".into())
        });
    };
    o.status = "cancelled";
    o.update_ms = hub.venue_ms(st);
    st.accounts.list[acct].finish(o.clone());
    let mut f = flags_of(st, o.id);
    f.cancel_reason = Some("user_request");
    set_flags(st, o.id, f.clone());
    let spec = st.market.symbol(&o.symbol).map(|s| s.spec.clone()).ok_or_else(|| RpcError::new(10001, "error"))?;
    let json = order_json(kind, &spec, &o, &f);
    push_change(kind, hub, st, acct, &spec, &json, &[]);
    Ok(json)
}

/// `private/buy` / `private/sell`.
fn place(kind: DeribitKind, hub: &Hub, acct: usize, buy: bool, req: &Req<'_>) -> Answer {
    let p = req.params;
    let sym = p
        .get("instrument_name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::param("instrument_name", "required"))?;
    let b = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
    let label: String = p.get("label").and_then(Value::as_str).unwrap_or("").chars().take(64).collect();
    let market = match p.get("type").and_then(Value::as_str).unwrap_or("limit") {
        "limit" => false,
        "market" => true,
        _ => return Err(RpcError::param("type", "must be limit or market")),
    };
    let tif: &'static str = match p.get("time_in_force").and_then(Value::as_str).unwrap_or("good_til_cancelled") {
        "good_til_cancelled" => "good_til_cancelled",
        "fill_or_kill" => "fill_or_kill",
        "immediate_or_cancel" => "immediate_or_cancel",
        _ => {
            return Err(RpcError::param(
                "time_in_force",
                "must be good_til_cancelled, fill_or_kill or immediate_or_cancel",
            ));
        }
    };
    let mut flags = Flags {
        post_only: b("post_only"),
        reject_post_only: b("reject_post_only"),
        reduce_only: b("reduce_only"),
        ..Flags::default()
    };
    let mut guard = hub.lock();
    let st = &mut *guard;
    let Some(s) = st.market.symbol(sym) else { return Err(RpcError::param("instrument_name", "unknown instrument")) };
    let spec = s.spec.clone();
    let inst = Inst::of(kind, &spec);
    let (best_bid, _, best_ask, _) = s.top_of_book();
    let mid = s.mid();
    let lots = lots_of(req, &inst)?;
    let mut price = if market { 0 } else { ticks_of(req, &inst)? };
    if flags.post_only && !market {
        let crosses = if buy { best_ask > 0 && price >= best_ask } else { best_bid > 0 && price <= best_bid };
        if crosses {
            if flags.reject_post_only {
                return Err(RpcError::with(11054, "post_only_reject", "null".into()));
            }
            price = if buy { best_ask - 1 } else { best_bid + 1 }.max(1);
        }
    }
    let cur = currency(kind, &spec).to_string();
    let need = value(kind, &spec, if market { mid } else { price }, lots) / 10;
    let have = st.accounts.list[acct].balances.get(&cur).map_or(0, |b| b.free);
    let (upl, im, _) = margins(kind, st, acct, &cur);
    if !flags.reduce_only && need > have + upl - im {
        return Err(RpcError::with(10009, "not_enough_funds", "null".into()));
    }
    let mut want = lots;
    if flags.reduce_only {
        let pos = st.accounts.list[acct].positions.get(&spec.name).map_or(0, |p| p.amt);
        let reducible = if (pos > 0) != buy && pos != 0 { pos.abs() } else { 0 };
        if reducible == 0 {
            return Err(RpcError::with(
                10001,
                "error",
                "{\"reason\":\"reduce_only order would not reduce the position\"}".into(),
            ));
        }
        want = want.min(reducible);
    }
    let limit = if market { None } else { Some(price) };
    let plan: i64 = st.market.symbol(sym).map_or(0, |s| s.preview_take(buy, want, limit).iter().map(|(_, q)| q).sum());
    let take = if tif == "fill_or_kill" && plan < want { 0 } else { plan };
    let rests = !market && tif == "good_til_cancelled" && take < want;
    if rests && st.accounts.list[acct].open.len() >= hub.cfg.limits.max_open_orders {
        return Err(RpcError::with(10001, "error", "{\"reason\":\"too many open orders\"}".into()));
    }
    let now = hub.venue_ms(st);
    let id = st.accounts.next_order_id;
    st.accounts.next_order_id += 1;
    let mut o = Order {
        symbol: spec.name.clone(),
        id,
        client_id: label,
        buy,
        market,
        tif,
        qty: want,
        price,
        executed: 0,
        cum_notional: 0,
        cum_ticks_lots: 0,
        status: "open",
        time_ms: now,
        update_ms: now,
    };
    let fills = if take > 0 { execute(kind, hub, st, acct, &mut o, take) } else { Vec::new() };
    if market {
        o.price = fills.last().map_or(mid, |(f, _)| f.price);
    }
    o.status = if rests {
        "open"
    } else if o.executed == o.qty {
        "filled"
    } else {
        "cancelled"
    };
    if o.status == "cancelled" {
        flags.cancel_reason =
            Some(if tif == "fill_or_kill" || tif == "immediate_or_cancel" { "user_request" } else { "market_order" });
    }
    if rests {
        st.accounts.list[acct].open.insert(o.id, o.clone());
    } else {
        st.accounts.list[acct].finish(o.clone());
    }
    set_flags(st, o.id, flags.clone());
    let order = order_json(kind, &spec, &o, &flags);
    let trades: Vec<String> =
        fills.iter().map(|(f, fee)| user_trade_json(kind, st, &spec, &o, &flags, f, *fee, now)).collect();
    push_change(kind, hub, st, acct, &spec, &order, &trades);
    Ok(format!("{{\"order\":{order},\"trades\":[{}]}}", trades.join(",")))
}

/// `private/edit` (order_id, amount, price): an open order's amount and
/// price change; a price that now crosses takes what it can.
fn edit(kind: DeribitKind, hub: &Hub, acct: usize, req: &Req<'_>) -> Answer {
    let p = req.params;
    let id = p.get("order_id").and_then(Value::as_str).ok_or_else(|| RpcError::param("order_id", "required"))?;
    let Some(n) = parse_order_id(id) else { return Err(RpcError::with(10004, "order_not_found", "null".into())) };
    let mut guard = hub.lock();
    let st = &mut *guard;
    let a = &st.accounts.list[acct];
    let Some(mut o) = a.open.get(&n).cloned() else {
        return Err(if a.history.iter().any(|o| o.id == n) {
            RpcError::with(11044, "not_open_order", "null".into())
        } else {
            RpcError::with(10004, "order_not_found", "null".into())
        });
    };
    let spec = st.market.symbol(&o.symbol).map(|s| s.spec.clone()).ok_or_else(|| RpcError::new(10001, "error"))?;
    let inst = Inst::of(kind, &spec);
    let lots = lots_of(req, &inst)?;
    let price = if raw_number(req.text, "price").is_some() { ticks_of(req, &inst)? } else { o.price };
    if lots < o.executed {
        return Err(RpcError::param("amount", "must not be below the filled amount"));
    }
    let mut flags = flags_of(st, o.id);
    flags.replaced = true;
    o.qty = lots;
    o.price = price;
    o.update_ms = hub.venue_ms(st);
    let left = o.qty - o.executed;
    let fills = if left > 0 { execute(kind, hub, st, acct, &mut o, left) } else { Vec::new() };
    let now = o.update_ms;
    let a = &mut st.accounts.list[acct];
    if o.executed >= o.qty {
        o.status = "filled";
        a.open.remove(&o.id);
        a.finish(o.clone());
    } else {
        a.open.insert(o.id, o.clone());
    }
    set_flags(st, o.id, flags.clone());
    let order = order_json(kind, &spec, &o, &flags);
    let trades: Vec<String> =
        fills.iter().map(|(f, fee)| user_trade_json(kind, st, &spec, &o, &flags, f, *fee, now)).collect();
    push_change(kind, hub, st, acct, &spec, &order, &trades);
    Ok(format!("{{\"order\":{order},\"trades\":[{}]}}", trades.join(",")))
}

/// Flags of orders, by id (ascending, so the oldest are dropped first).
pub(crate) type FlagMap = BTreeMap<u64, Flags>;
