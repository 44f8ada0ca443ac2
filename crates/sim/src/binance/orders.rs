//! Orders of the simulated accounts, for every way the venue takes them: REST
//! (`/api/v3/order`, `/sapi/v1/margin/order`, `/fapi/v1/order`,
//! `/dapi/v1/order`) and the WebSocket APIs (`wsapi`): placement (LIMIT,
//! MARKET, spot LIMIT_MAKER), cancel, cancel-all, spot amend (keep priority),
//! USD-M modify, status and open orders; deposits; and the user events all of
//! them produce. One engine: every caller goes through [`place`], [`cancel`]
//! and the fill path below it.
//!
//! A MARKET order, and the marketable part of a LIMIT order, takes liquidity
//! from the true book level by level like the generator's own takers (so depth,
//! trade, aggTrade and bookTicker streams show it, with the same trade ids as
//! the user events). What a GTC LIMIT order does not fill rests *outside* the
//! book: it is reported open (NEW / PARTIALLY_FILLED, balance locked on spot)
//! and never fills later; it can be canceled, amended (spot: quantity down) or
//! modified (USD-M: a new price that crosses takes the book then). IOC and
//! MARKET remainders expire; FOK fills completely or expires; GTX (futures)
//! expires if it would take; LIMIT_MAKER (spot) is refused (`-2010`) if it
//! would take.
//!
//! Scopes: an order trades in the market's own scope or, on spot, in cross
//! margin or one symbol's isolated margin (`Scope`); each margin scope has its
//! own wallet (`state::with_wallet`) and its own user-event subscribers.
//!
//! Fees: spot and margin 0.1 % of what is received; futures 0.05 % of the
//! notional in the margin asset. Futures positions are one-way (`BOTH`), cross
//! margin, with no margin or leverage checks (accounting in `crate::orders`).
//! Spot and margin check free balances (`-2010`); margin never borrows.

use crate::account::{AMT, Account, Obj, Order, Scope, amt, dec, dec_or_zero, parse_dec, rescale};
use crate::config::{MarketKind, SymbolSpec};
use crate::hub::{Hub, HubState};
use crate::market::{Emit, Fill};
use crate::orders::{
    apply_futures_fill, apply_spot_fill, entry_price, margin_asset, notional, push_unique, unrealized,
};

use super::encode::Encoder;
use super::state::{self, Meta, with_wallet};
use super::user::deliver_user;

/// A refused request: HTTP status, venue code, message.
pub(crate) type Reject = (u16, i64, String);

pub(crate) fn reject(code: i64, msg: impl Into<String>) -> Reject {
    (400, code, msg.into())
}

pub(crate) fn mandatory(p: &str) -> Reject {
    reject(-1102, format!("Mandatory parameter '{p}' was not sent, was empty/null, or malformed."))
}

fn illegal(p: &str) -> Reject {
    reject(
        -1100,
        format!("Illegal characters found in parameter '{p}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."),
    )
}

fn unknown_order() -> Reject {
    reject(-2011, "Unknown order sent.")
}

/// Decoded request parameters (query string and form body together, or a
/// WebSocket API request's `params` as text).
#[derive(Default)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl std::fmt::Debug for Params {
    /// Names only: values include signatures and API keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

impl Params {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// A WebSocket API request's `params`: strings as they are, numbers and
    /// booleans as written (`0.1`, `true`); nulls, arrays and objects left out.
    pub(crate) fn from_json(m: &serde_json::Map<String, serde_json::Value>) -> Params {
        use serde_json::Value;
        Params(
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.clone(), s.clone())),
                    Value::Number(_) | Value::Bool(_) => Some((k.clone(), v.to_string())),
                    _ => None,
                })
                .collect(),
        )
    }
}

fn valid_client_id(s: &str) -> bool {
    (1..=36).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".:/_-".contains(&b))
}

fn client_id_param(p: &Params, name: &'static str) -> Result<Option<String>, Reject> {
    match p.get(name) {
        Some(c) if !valid_client_id(c) => Err(reject(
            -1100,
            format!("Illegal characters found in parameter '{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'."),
        )),
        c => Ok(c.map(str::to_string)),
    }
}

/// A validated new order.
struct Req {
    symbol: String,
    spec: SymbolSpec,
    buy: bool,
    market: bool,
    /// `LIMIT_MAKER` (spot and margin): refused if it would take.
    maker: bool,
    tif: &'static str,
    qty: i64,
    price: i64,
    client_id: Option<String>,
    resp: &'static str,
}

/// A decimal parameter in lots or ticks: missing, not a number, or off the
/// step/tick (or zero) is refused with the venue's code.
fn units(p: &Params, name: &'static str, decimals: u32, filter: &'static str) -> Result<i64, Reject> {
    match p.get(name).map(|q| parse_dec(q, decimals)) {
        None => Err(mandatory(name)),
        Some(Err(false)) => Err(illegal(name)),
        Some(Err(true)) => Err(reject(-1013, format!("Filter failure: {filter}"))),
        Some(Ok(v)) if v <= 0 || v > i64::MAX as i128 / 1_000_000 => {
            Err(reject(-1013, format!("Filter failure: {filter}")))
        }
        Some(Ok(v)) => Ok(v as i64),
    }
}

fn spec_of(st: &HubState, p: &Params) -> Result<(String, SymbolSpec), Reject> {
    let symbol = p.get("symbol").ok_or_else(|| mandatory("symbol"))?.to_string();
    let spec = st.market.symbol(&symbol).ok_or_else(|| reject(-1121, "Invalid symbol."))?.spec.clone();
    Ok((symbol, spec))
}

fn parse_req(kind: MarketKind, st: &HubState, p: &Params) -> Result<Req, Reject> {
    let (symbol, spec) = spec_of(st, p)?;
    let buy = match p.get("side").ok_or_else(|| mandatory("side"))? {
        "BUY" => true,
        "SELL" => false,
        _ => return Err(reject(-1117, "Invalid side.")),
    };
    let (market, maker) = match p.get("type").ok_or_else(|| mandatory("type"))? {
        "LIMIT" => (false, false),
        "MARKET" => (true, false),
        "LIMIT_MAKER" if kind == MarketKind::Spot => (false, true),
        _ => return Err(reject(-1116, "Invalid orderType.")),
    };
    let tif = if market {
        if kind == MarketKind::Spot && p.get("price").is_some() {
            return Err(reject(-1106, "Parameter 'price' sent when not required."));
        }
        "GTC"
    } else if maker {
        if p.get("timeInForce").is_some() {
            return Err(reject(-1106, "Parameter 'timeInForce' sent when not required."));
        }
        "GTC"
    } else {
        match p.get("timeInForce").ok_or_else(|| mandatory("timeInForce"))? {
            "GTC" => "GTC",
            "IOC" => "IOC",
            "FOK" => "FOK",
            "GTX" if kind != MarketKind::Spot => "GTX",
            _ => return Err(reject(-1115, "Invalid timeInForce.")),
        }
    };
    let qty = units(p, "quantity", spec.qty_decimals, "LOT_SIZE")?;
    let price = if market { 0 } else { units(p, "price", spec.price_decimals, "PRICE_FILTER")? };
    let client_id = client_id_param(p, "newClientOrderId")?;
    // Spot: MARKET and LIMIT answer FULL by default, other types ACK
    // (web-socket-api.md, order.place); futures ACK.
    let resp = match p.get("newOrderRespType") {
        None if kind == MarketKind::Spot && !maker => "FULL",
        None => "ACK",
        Some("ACK") => "ACK",
        Some("RESULT") => "RESULT",
        Some("FULL") if kind == MarketKind::Spot => "FULL",
        Some(_) => return Err(reject(-1100, "Illegal characters found in parameter 'newOrderRespType'.")),
    };
    Ok(Req { symbol, spec, buy, market, maker, tif, qty, price, client_id, resp })
}

/// Checks a new order's parameters and filters without placing it.
pub(crate) fn check_new(kind: MarketKind, st: &HubState, p: &Params) -> Result<(), Reject> {
    parse_req(kind, st, p).map(|_| ())
}

fn side(buy: bool) -> &'static str {
    if buy { "BUY" } else { "SELL" }
}

fn order_type(o: &Order, maker: bool) -> &'static str {
    match (o.market, maker) {
        (true, _) => "MARKET",
        (false, true) => "LIMIT_MAKER",
        (false, false) => "LIMIT",
    }
}

/// The scope of order `id` and whether it is LIMIT_MAKER.
pub(crate) fn meta_of(st: &HubState, kind: MarketKind, id: u64) -> Meta {
    state::get(st.venue.as_ref())
        .and_then(|s| s.meta(id))
        .cloned()
        .unwrap_or(Meta { scope: Scope::of_market(kind), maker: false })
}

fn next_exec(st: &mut HubState) -> u64 {
    st.accounts.next_exec_id += 1;
    st.accounts.next_exec_id
}

/// Whether the account's balances on `scope` cover what the order spends
/// (spot kinds: quote for a buy, base for a sell).
fn covers(st: &mut HubState, acct: usize, scope: &Scope, spec: &SymbolSpec, buy: bool, need: i128) -> bool {
    let asset = if buy { spec.quote.clone() } else { spec.base.clone() };
    with_wallet(st, acct, scope, |a| a.balances.get(&asset).map_or(0, |b| b.free) >= need)
}

/// What one order's execution writes: its user events in order, the public
/// payloads already delivered, the `fills` array of a FULL response.
struct Outcome {
    events: Vec<(&'static str, String)>,
    fills: Vec<String>,
    touched: Vec<String>,
}

/// Takes up to `qty` lots from the true book for `o` (at `limit` or better)
/// and books the fills: balances or position, `o`'s executed quantity and
/// status, one TRADE event each.
#[allow(clippy::too_many_arguments)] // one fill path for every caller
fn take(
    hub: &Hub,
    st: &mut HubState,
    acct: usize,
    scope: &Scope,
    o: &mut Order,
    spec: &SymbolSpec,
    qty: i64,
    limit: Option<i64>,
    on_book: bool,
    now: u64,
    out: &mut Outcome,
) {
    let kind = hub.kind();
    if qty <= 0 {
        return;
    }
    let mut emits: Vec<Emit> = Vec::new();
    let fills = {
        let HubState { market, tracked, .. } = &mut *st;
        market.user_take(&Encoder { kind }, &o.symbol, o.buy, qty, limit, now, tracked, &mut emits)
    };
    for e in emits {
        hub.deliver(st, &e.stream, e.payload.as_bytes(), e.id, 1);
    }
    let maker = meta_of(st, kind, o.id).maker;
    for f in &fills {
        let n = notional(kind, spec, f.price, f.qty);
        o.executed += f.qty;
        o.cum_notional += n;
        o.cum_ticks_lots += f.price as i128 * f.qty as i128;
        o.status = if o.executed == o.qty { "FILLED" } else { "PARTIALLY_FILLED" };
        o.update_ms = now;
        let touched = &mut out.touched;
        let (fee, fee_asset, rp) = with_wallet(st, acct, scope, |a: &mut Account| {
            if kind == MarketKind::Spot {
                apply_spot_fill(a, spec, o.buy, f, n, touched)
            } else {
                apply_futures_fill(kind, a, spec, o.buy, f, n)
            }
        });
        out.fills.push(
            Obj::new()
                .s("price", &dec(f.price as i128, spec.price_decimals, 8))
                .s("qty", &dec(f.qty as i128, spec.qty_decimals, 8))
                .s("commission", &amt(fee))
                .s("commissionAsset", &fee_asset)
                .raw("tradeId", f.trade_id)
                .end(),
        );
        let last = Last { fill: *f, fee, fee_asset, realized: rp };
        let exec_id = next_exec(st);
        let r = Report { maker, on_book, ..Report::new(kind, spec, o, "TRADE", now, exec_id) };
        out.events.push(event(&Report { last: Some(&last), ..r }));
        if kind == MarketKind::UsdM {
            // USD-M pushes the fast subset of each fill alongside
            // ORDER_TRADE_UPDATE (developers.binance.com usds-margined-futures
            // user-data-streams "Event: Trade Lite Update").
            let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
            let lite = Obj::new()
                .s("e", "TRADE_LITE")
                .raw("E", now)
                .raw("T", now)
                .s("s", &o.symbol)
                .s("q", &dec(o.qty as i128, qd, qd))
                .s("p", &dec(o.price as i128, pd, pd))
                .raw("m", maker)
                .s("c", &o.client_id)
                .s("S", side(o.buy))
                .s("L", &dec(f.price as i128, pd, pd))
                .s("l", &dec(f.qty as i128, qd, qd))
                .raw("t", f.trade_id)
                .raw("i", o.id)
                .end();
            out.events.push(("TRADE_LITE", lite));
        }
    }
}

/// The account events that close an order's execution: spot
/// `outboundAccountPosition` with what changed, futures `ACCOUNT_UPDATE` after fills.
#[allow(clippy::too_many_arguments)] // one closing step for every caller
fn account_events(
    hub: &Hub,
    st: &mut HubState,
    acct: usize,
    scope: &Scope,
    spec: &SymbolSpec,
    filled: bool,
    now: u64,
    out: &mut Outcome,
) {
    let kind = hub.kind();
    if kind == MarketKind::Spot {
        if !out.touched.is_empty() {
            let touched = out.touched.clone();
            let p = with_wallet(st, acct, scope, |a| {
                a.update_ms = now;
                account_position(a, &touched, now)
            });
            out.events.push(("outboundAccountPosition", p));
        }
    } else if filled {
        let mark = st.market.symbol(&spec.name).map_or(0, |s| s.mid());
        let a = &mut st.accounts.list[acct];
        a.update_ms = now;
        out.events
            .push(("ACCOUNT_UPDATE", account_update(kind, a, spec, "ORDER", None, Some((&spec.name, mark)), now)));
    }
}

/// Moves `amount` between free and locked on `scope` (positive: lock).
fn lock(st: &mut HubState, acct: usize, scope: &Scope, asset: &str, amount: i128, touched: &mut Vec<String>) {
    if amount == 0 {
        return;
    }
    with_wallet(st, acct, scope, |a| {
        let b = a.balance(asset);
        b.free -= amount;
        b.locked += amount;
    });
    push_unique(touched, asset);
}

/// What a resting spot order of `rest_qty` lots at `price` keeps locked.
fn locked_for(kind: MarketKind, spec: &SymbolSpec, buy: bool, price: i64, rest_qty: i64) -> (String, i128) {
    if buy {
        (spec.quote.clone(), notional(kind, spec, price, rest_qty))
    } else {
        (spec.base.clone(), rescale(rest_qty as i128, spec.qty_decimals, AMT))
    }
}

fn deliver_all(hub: &Hub, st: &mut HubState, acct: usize, scope: &Scope, events: Vec<(&'static str, String)>) {
    for (e, payload) in events {
        deliver_user(hub, st, acct, scope, e, &payload);
    }
}

/// Places an order for `acct` on `scope`; returns the response body. User
/// events and the public trade/depth payloads are queued before it returns.
pub(crate) fn place(hub: &Hub, st: &mut HubState, acct: usize, p: &Params, scope: &Scope) -> Result<String, Reject> {
    let kind = hub.kind();
    if !matches!(kind, MarketKind::Spot | MarketKind::UsdM | MarketKind::CoinM) {
        return Err((404, -1000, "Not found.".into()));
    }
    let r = parse_req(kind, st, p)?;
    if let Scope::Isolated(pair) = scope
        && *pair != r.symbol
    {
        return Err(reject(-1121, "Invalid symbol."));
    }
    let client_id = match r.client_id.clone() {
        Some(c) => c,
        None => st.accounts.token(22),
    };
    if st.accounts.list[acct].open.values().any(|o| o.client_id == client_id) {
        return Err(reject(-2010, "Duplicate order sent."));
    }
    let limit = if r.market { None } else { Some(r.price) };
    let Some(sym) = st.market.symbol(&r.symbol) else { return Err(reject(-1121, "Invalid symbol.")) };
    let mut plan = sym.preview_take(r.buy, r.qty, limit);
    if r.maker && !plan.is_empty() {
        return Err(reject(-2010, "Order would immediately match and take."));
    }
    let planned: i64 = plan.iter().map(|(_, q)| q).sum();
    if (r.tif == "FOK" && planned < r.qty) || (r.tif == "GTX" && !plan.is_empty()) {
        plan.clear();
    }
    let planned: i64 = plan.iter().map(|(_, q)| q).sum();
    let rests = !r.market && r.tif == "GTC" && planned < r.qty;
    if rests && st.accounts.list[acct].open.len() >= hub.cfg.limits.max_open_orders {
        return Err(reject(-2010, "Filter failure: MAX_NUM_ORDERS"));
    }
    let spec = &r.spec;
    if kind == MarketKind::Spot {
        let rest_qty = if rests { r.qty - planned } else { 0 };
        let need = if r.buy {
            plan.iter().map(|(px, q)| notional(kind, spec, *px, *q)).sum::<i128>()
                + notional(kind, spec, r.price, rest_qty)
        } else {
            rescale((planned + rest_qty) as i128, spec.qty_decimals, AMT)
        };
        if !covers(st, acct, scope, spec, r.buy, need) {
            return Err(reject(-2010, "Account has insufficient balance for requested action."));
        }
    }

    let now = hub.venue_ms(st);
    let order_id = st.accounts.next_order_id;
    st.accounts.next_order_id += 1;
    if *scope != Scope::of_market(kind) || r.maker {
        let m = Meta { scope: scope.clone(), maker: r.maker };
        let HubState { accounts, venue, .. } = &mut *st;
        if let Some(bs) = state::get_mut(venue.as_mut()) {
            bs.set_meta(order_id, m, &accounts.list);
        }
    }
    let mut o = Order {
        symbol: r.symbol.clone(),
        id: order_id,
        client_id,
        buy: r.buy,
        market: r.market,
        tif: r.tif,
        qty: r.qty,
        price: r.price,
        executed: 0,
        cum_notional: 0,
        cum_ticks_lots: 0,
        status: "NEW",
        time_ms: now,
        update_ms: now,
    };
    let mut out = Outcome { events: Vec::new(), fills: Vec::new(), touched: Vec::new() };
    let exec_id = next_exec(st);
    out.events.push(event(&Report {
        maker: r.maker,
        on_book: rests,
        ..Report::new(kind, spec, &o, "NEW", now, exec_id)
    }));
    take(hub, st, acct, scope, &mut o, spec, planned, limit, rests, now, &mut out);
    let filled = o.executed > 0;
    if !rests && o.executed < o.qty {
        o.status = "EXPIRED";
        let exec_id = next_exec(st);
        out.events.push(event(&Report { maker: r.maker, ..Report::new(kind, spec, &o, "EXPIRED", now, exec_id) }));
    }
    if rests && kind == MarketKind::Spot {
        let (asset, amount) = locked_for(kind, spec, r.buy, r.price, o.qty - o.executed);
        lock(st, acct, scope, &asset, amount, &mut out.touched);
    }
    account_events(hub, st, acct, scope, spec, filled, now, &mut out);
    let a = &mut st.accounts.list[acct];
    if rests {
        a.open.insert(o.id, o.clone());
    } else {
        a.finish(o.clone());
    }
    deliver_all(hub, st, acct, scope, out.events);
    Ok(response(kind, spec, &o, r.maker, scope, r.resp, &out.fills, now))
}

/// The last fill of a TRADE event.
struct Last {
    fill: Fill,
    fee: i128,
    fee_asset: String,
    realized: i128,
}

/// One order event to write.
struct Report<'a> {
    kind: MarketKind,
    spec: &'a SymbolSpec,
    o: &'a Order,
    maker: bool,
    /// Execution type (`x`).
    x: &'a str,
    last: Option<&'a Last>,
    now: u64,
    exec_id: u64,
    /// Spot `c` and `C` when they are not (the order's id, ""): a cancel
    /// reports its own id in `c` and the order's in `C`; an amend the order's
    /// new id and its previous one.
    ids: Option<(&'a str, &'a str)>,
    on_book: bool,
}

impl<'a> Report<'a> {
    fn new(kind: MarketKind, spec: &'a SymbolSpec, o: &'a Order, x: &'a str, now: u64, exec_id: u64) -> Report<'a> {
        Report { kind, spec, o, maker: false, x, last: None, now, exec_id, ids: None, on_book: false }
    }
}

/// One order event: `executionReport` (spot, margin) or `ORDER_TRADE_UPDATE` (futures).
fn event(r: &Report<'_>) -> (&'static str, String) {
    let (kind, spec, o, now) = (r.kind, r.spec, r.o, r.now);
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    let status = match r.x {
        "NEW" => "NEW",
        _ => o.status,
    };
    if kind == MarketKind::Spot {
        let s8 = |v: i128, scale: u32| dec(v, scale, 8);
        let (l, lp, n, nn, t, y) = match r.last {
            Some(l) => (
                s8(l.fill.qty as i128, qd),
                s8(l.fill.price as i128, pd),
                amt(l.fee),
                format!("\"{}\"", l.fee_asset),
                l.fill.trade_id as i64,
                amt(notional(kind, spec, l.fill.price, l.fill.qty)),
            ),
            None => (s8(0, 0), s8(0, 0), "0".to_string(), "null".to_string(), -1, s8(0, 0)),
        };
        let (c, cc) = r.ids.unwrap_or((o.client_id.as_str(), ""));
        let p = Obj::new()
            .s("e", "executionReport")
            .raw("E", now)
            .s("s", &o.symbol)
            .s("c", c)
            .s("S", side(o.buy))
            .s("o", order_type(o, r.maker))
            .s("f", o.tif)
            .s("q", &s8(o.qty as i128, qd))
            .s("p", &s8(o.price as i128, pd))
            .s("P", &s8(0, 0))
            .s("F", &s8(0, 0))
            .raw("g", -1)
            .s("C", cc)
            .s("x", r.x)
            .s("X", status)
            .s("r", "NONE")
            .raw("i", o.id)
            .s("l", &l)
            .s("z", &s8(o.executed as i128, qd))
            .s("L", &lp)
            .s("n", &n)
            .raw("N", nn)
            .raw("T", now)
            .raw("t", t)
            .raw("I", r.exec_id)
            .raw("w", r.on_book && matches!(status, "NEW" | "PARTIALLY_FILLED"))
            .raw("m", false)
            .raw("M", false)
            .raw("O", o.time_ms)
            .s("Z", &amt(o.cum_notional))
            .s("Y", &y)
            .s("Q", &s8(0, 0))
            .raw("W", o.time_ms)
            .s("V", "EXPIRE_MAKER")
            .end();
        return ("executionReport", p);
    }
    let avg = if o.executed == 0 { "0".to_string() } else { avg_price(o, pd) };
    let asset = margin_asset(kind, spec);
    let (l, lp, n, t, rp) = match r.last {
        Some(l) => (
            dec_or_zero(l.fill.qty as i128, qd, qd),
            dec_or_zero(l.fill.price as i128, pd, pd),
            amt(l.fee),
            l.fill.trade_id,
            if l.realized == 0 { "0".to_string() } else { amt(l.realized) },
        ),
        None => ("0".into(), "0".into(), "0".into(), 0, "0".into()),
    };
    let inner = Obj::new()
        .s("s", &o.symbol)
        .s("c", &o.client_id)
        .s("S", side(o.buy))
        .s("o", order_type(o, false))
        .s("f", o.tif)
        .s("q", &dec_or_zero(o.qty as i128, qd, qd))
        .s("p", &dec_or_zero(o.price as i128, pd, pd))
        .s("ap", &avg)
        .s("sp", "0")
        .s("x", r.x)
        .s("X", status)
        .raw("i", o.id)
        .s("l", &l)
        .s("z", &dec_or_zero(o.executed as i128, qd, qd))
        .s("L", &lp)
        .s("N", &asset)
        .s("n", &n)
        .raw("T", now)
        .raw("t", t)
        .s("b", "0")
        .s("a", "0")
        .raw("m", false)
        .raw("R", false)
        .s("wt", "CONTRACT_PRICE")
        .s("ot", order_type(o, false))
        .s("ps", "BOTH")
        .raw("cp", false)
        .raw("pP", false)
        .raw("si", 0)
        .raw("ss", 0)
        .s("rp", &rp)
        .s("V", "EXPIRE_MAKER")
        .end();
    let mut outer = Obj::new().s("e", "ORDER_TRADE_UPDATE").raw("E", now).raw("T", now);
    if kind == MarketKind::CoinM {
        outer = outer.s("i", "sim");
    }
    ("ORDER_TRADE_UPDATE", outer.raw("o", inner).end())
}

/// The average fill price with three extra digits.
fn avg_price(o: &Order, pd: u32) -> String {
    let v = o.cum_ticks_lots * 1000 / (o.executed as i128).max(1);
    dec(v, pd + 3, pd + 3)
}

/// `outboundAccountPosition` for the assets that changed.
fn account_position(a: &Account, assets: &[String], now: u64) -> String {
    let bal: Vec<String> = assets
        .iter()
        .map(|asset| {
            let b = a.balances.get(asset).copied().unwrap_or_default();
            Obj::new().s("a", asset).s("f", &amt(b.free)).s("l", &amt(b.locked)).end()
        })
        .collect();
    Obj::new()
        .s("e", "outboundAccountPosition")
        .raw("E", now)
        .raw("u", a.update_ms)
        .raw("B", format!("[{}]", bal.join(",")))
        .end()
}

/// `ACCOUNT_UPDATE` with the margin asset's wallet and, for an order, the position.
fn account_update(
    kind: MarketKind,
    a: &Account,
    spec: &SymbolSpec,
    reason: &str,
    change: Option<i128>,
    position: Option<(&str, i64)>,
    now: u64,
) -> String {
    let asset = margin_asset(kind, spec);
    let wallet = a.balances.get(&asset).map_or(0, |b| b.free);
    let b = Obj::new()
        .s("a", &asset)
        .s("wb", &amt(wallet))
        .s("cw", &amt(wallet))
        .s("bc", &change.map_or("0".to_string(), amt))
        .end();
    let mut ps = Vec::new();
    if let Some((sym, mark)) = position {
        let p = a.positions.get(sym).copied().unwrap_or_default();
        let ep = entry_price(kind, spec, p.amt, p.cost);
        ps.push(
            Obj::new()
                .s("s", sym)
                .s("pa", &dec_or_zero(p.amt as i128, spec.qty_decimals, spec.qty_decimals))
                .s("ep", &ep)
                .s("bep", &ep)
                .s("cr", &amt(p.realized))
                .s("up", &amt(unrealized(kind, spec, p.amt, p.cost, mark)))
                .s("mt", "cross")
                .s("iw", "0")
                .s("ps", "BOTH")
                .end(),
        );
    }
    let inner = Obj::new().s("m", reason).raw("B", format!("[{b}]")).raw("P", format!("[{}]", ps.join(","))).end();
    let mut outer = Obj::new().s("e", "ACCOUNT_UPDATE").raw("T", now).raw("E", now);
    if kind == MarketKind::CoinM {
        outer = outer.s("i", "sim");
    }
    outer.raw("a", inner).end()
}

/// `"isIsolated"` of a margin answer (`None` on the market's own scopes).
fn isolated_flag(scope: &Scope) -> Option<bool> {
    match scope {
        Scope::Margin => Some(false),
        Scope::Isolated(_) => Some(true),
        _ => None,
    }
}

/// The order response: spot ACK / RESULT / FULL (margin adds `isIsolated`);
/// futures ACK (the order as accepted, status NEW) or RESULT (the order after
/// matching).
#[allow(clippy::too_many_arguments)] // a payload with many independent inputs
fn response(
    kind: MarketKind,
    spec: &SymbolSpec,
    o: &Order,
    maker: bool,
    scope: &Scope,
    resp: &str,
    fills: &[String],
    now: u64,
) -> String {
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    if kind == MarketKind::Spot {
        let iso = isolated_flag(scope);
        let mut b = Obj::new().s("symbol", &o.symbol).raw("orderId", o.id);
        if iso.is_none() {
            b = b.raw("orderListId", -1);
        }
        b = b.s("clientOrderId", &o.client_id);
        if resp == "ACK" {
            if let Some(i) = iso {
                b = b.raw("isIsolated", i);
            }
            return b.raw("transactTime", now).end();
        }
        b = b
            .raw("transactTime", now)
            .s("price", &dec(o.price as i128, pd, 8))
            .s("origQty", &dec(o.qty as i128, qd, 8))
            .s("executedQty", &dec(o.executed as i128, qd, 8));
        if iso.is_none() {
            b = b.s("origQuoteOrderQty", "0.00000000");
        }
        b = b
            .s("cummulativeQuoteQty", &amt(o.cum_notional))
            .s("status", o.status)
            .s("timeInForce", o.tif)
            .s("type", order_type(o, maker));
        if let Some(i) = iso {
            b = b.raw("isIsolated", i);
        }
        b = b.s("side", side(o.buy));
        if iso.is_none() {
            b = b.raw("workingTime", o.time_ms);
        }
        b = b.s("selfTradePreventionMode", "EXPIRE_MAKER");
        if resp == "FULL" {
            b = b.raw("fills", format!("[{}]", fills.join(",")));
        }
        return b.end();
    }
    let acked = resp == "ACK";
    let (status, executed, cum, avg) = if acked {
        ("NEW", 0i64, 0i128, "0".to_string())
    } else {
        (o.status, o.executed, o.cum_notional, if o.executed == 0 { "0".into() } else { avg_price(o, pd) })
    };
    let mut b = Obj::new()
        .raw("orderId", o.id)
        .s("symbol", &o.symbol)
        .s("status", status)
        .s("clientOrderId", &o.client_id)
        .s("price", &dec(o.price as i128, pd, pd))
        .s("avgPrice", &avg)
        .s("origQty", &dec(o.qty as i128, qd, qd))
        .s("executedQty", &dec(executed as i128, qd, qd))
        .s("cumQty", &dec(executed as i128, qd, qd));
    b = if kind == MarketKind::CoinM {
        b.s("cumBase", &amt(cum)).s("pair", &format!("{}{}", spec.base, spec.quote))
    } else {
        b.s("cumQuote", &amt(cum))
    };
    b.s("timeInForce", o.tif)
        .s("type", order_type(o, false))
        .raw("reduceOnly", false)
        .raw("closePosition", false)
        .s("side", side(o.buy))
        .s("positionSide", "BOTH")
        .s("stopPrice", "0")
        .s("workingType", "CONTRACT_PRICE")
        .raw("priceProtect", false)
        .s("origType", order_type(o, false))
        .s("priceMatch", "NONE")
        .s("selfTradePreventionMode", "EXPIRE_MAKER")
        .raw("goodTillDate", 0)
        .raw("updateTime", if acked { now } else { o.update_ms.max(now) })
        .end()
}

/// How a request names an order: `orderId` and/or `origClientOrderId` (the
/// WS-API's cancel-replace uses `cancelOrderId`/`cancelOrigClientOrderId`).
fn order_ref(p: &Params, id_name: &str, client_name: &str) -> Result<(Option<u64>, Option<String>), Reject> {
    let by_id = match p.get(id_name) {
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            reject(
                -1100,
                format!("Illegal characters found in parameter '{id_name}'; legal range is '^[0-9]{{1,20}}$'."),
            )
        })?),
        None => None,
    };
    let by_client = p.get(client_name).map(str::to_string);
    if by_id.is_none() && by_client.is_none() {
        return Err(reject(
            -1102,
            format!("Param '{client_name}' or '{id_name}' must be sent, but both were empty/null!"),
        ));
    }
    Ok((by_id, by_client))
}

/// The open order of `acct` on `scope` that the reference names.
fn find_open(
    st: &HubState,
    kind: MarketKind,
    acct: usize,
    scope: &Scope,
    symbol: &str,
    by_id: Option<u64>,
    by_client: Option<&str>,
) -> Option<u64> {
    st.accounts.list[acct]
        .open
        .values()
        .find(|o| {
            o.symbol == symbol
                && by_id.is_none_or(|i| o.id == i)
                && by_client.is_none_or(|c| o.client_id == c)
                && meta_of(st, kind, o.id).scope == *scope
        })
        .map(|o| o.id)
}

/// Cancels an open order (`orderId` or `origClientOrderId`); returns the response.
pub(crate) fn cancel(hub: &Hub, st: &mut HubState, acct: usize, p: &Params, scope: &Scope) -> Result<String, Reject> {
    let (symbol, spec) = spec_of(st, p)?;
    let (by_id, by_client) = order_ref(p, "orderId", "origClientOrderId")?;
    let new_client = client_id_param(p, "newClientOrderId")?;
    let restriction = match p.get("cancelRestrictions") {
        None => None,
        Some(r @ ("ONLY_NEW" | "ONLY_PARTIALLY_FILLED")) => Some(r.to_string()),
        Some(_) => return Err(reject(-1145, "Invalid cancelRestrictions")),
    };
    let kind = hub.kind();
    let id = find_open(st, kind, acct, scope, &symbol, by_id, by_client.as_deref()).ok_or_else(unknown_order)?;
    if let Some(r) = restriction {
        let status = st.accounts.list[acct].open.get(&id).map_or("", |o| o.status);
        if (r == "ONLY_NEW") != (status == "NEW") {
            return Err(reject(-2011, "Order was not canceled due to cancel restrictions."));
        }
    }
    Ok(cancel_id(hub, st, acct, scope, &spec, id, new_client))
}

/// Cancels open order `id` (found on `scope`): events, unlocked balance, response.
fn cancel_id(
    hub: &Hub,
    st: &mut HubState,
    acct: usize,
    scope: &Scope,
    spec: &SymbolSpec,
    id: u64,
    new_client: Option<String>,
) -> String {
    let kind = hub.kind();
    let new_client = new_client.unwrap_or_else(|| st.accounts.token(22));
    let now = hub.venue_ms(st);
    let exec_id = next_exec(st);
    let maker = meta_of(st, kind, id).maker;
    let Some(mut o) = st.accounts.list[acct].open.remove(&id) else { return String::new() };
    o.status = "CANCELED";
    o.update_ms = now;
    let orig = o.client_id.clone();
    let mut out = Outcome { events: Vec::new(), fills: Vec::new(), touched: Vec::new() };
    if kind == MarketKind::Spot {
        let ids = Some((new_client.as_str(), orig.as_str()));
        out.events.push(event(&Report { maker, ids, ..Report::new(kind, spec, &o, "CANCELED", now, exec_id) }));
        let (asset, amount) = locked_for(kind, spec, o.buy, o.price, o.qty - o.executed);
        lock(st, acct, scope, &asset, -amount, &mut out.touched);
        account_events(hub, st, acct, scope, spec, false, now, &mut out);
    } else {
        out.events.push(event(&Report::new(kind, spec, &o, "CANCELED", now, exec_id)));
    }
    st.accounts.list[acct].finish(o.clone());
    deliver_all(hub, st, acct, scope, out.events);
    if kind == MarketKind::Spot {
        return cancel_response(spec, &o, maker, scope, &orig, &new_client, now);
    }
    response(kind, spec, &o, false, scope, "RESULT", &[], now)
}

/// A spot (or margin) cancel's answer.
fn cancel_response(
    spec: &SymbolSpec,
    o: &Order,
    maker: bool,
    scope: &Scope,
    orig: &str,
    new: &str,
    now: u64,
) -> String {
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    let iso = isolated_flag(scope);
    let mut b = Obj::new().s("symbol", &o.symbol);
    if let Some(i) = iso {
        // The margin docs write this cancel's orderId as a string.
        b = b.raw("isIsolated", i).s("orderId", &o.id.to_string()).s("origClientOrderId", orig);
    } else {
        b = b.s("origClientOrderId", orig).raw("orderId", o.id).raw("orderListId", -1);
    }
    b = b.s("clientOrderId", new);
    if iso.is_none() {
        b = b.raw("transactTime", now);
    }
    b = b
        .s("price", &dec(o.price as i128, pd, 8))
        .s("origQty", &dec(o.qty as i128, qd, 8))
        .s("executedQty", &dec(o.executed as i128, qd, 8));
    if iso.is_none() {
        b = b.s("origQuoteOrderQty", "0.00000000");
    }
    b.s("cummulativeQuoteQty", &amt(o.cum_notional))
        .s("status", "CANCELED")
        .s("timeInForce", o.tif)
        .s("type", order_type(o, maker))
        .s("side", side(o.buy))
        .s("selfTradePreventionMode", "EXPIRE_MAKER")
        .end()
}

/// `openOrders.cancelAll`: cancels every open order of `acct` on `symbol`
/// and `scope`; the answer is the list of cancel reports (`-2011` when there
/// is none, as `DELETE /api/v3/openOrders` answers).
pub(crate) fn cancel_all(
    hub: &Hub,
    st: &mut HubState,
    acct: usize,
    p: &Params,
    scope: &Scope,
) -> Result<String, Reject> {
    let (symbol, spec) = spec_of(st, p)?;
    let kind = hub.kind();
    let ids: Vec<u64> = st.accounts.list[acct]
        .open
        .values()
        .filter(|o| o.symbol == symbol && meta_of(st, kind, o.id).scope == *scope)
        .map(|o| o.id)
        .collect();
    if ids.is_empty() {
        return Err(unknown_order());
    }
    let reports: Vec<String> = ids.into_iter().map(|id| cancel_id(hub, st, acct, scope, &spec, id, None)).collect();
    Ok(format!("[{}]", reports.join(",")))
}

/// `order.amend.keepPriority` (spot): lowers an open order's quantity in
/// place (`newQty` above what it executed and below its quantity), with an
/// `executionReport` `REPLACED` and the unlocked balance.
pub(crate) fn amend_keep_priority(hub: &Hub, st: &mut HubState, acct: usize, p: &Params) -> Result<String, Reject> {
    let kind = hub.kind();
    let scope = Scope::of_market(kind);
    let (symbol, spec) = spec_of(st, p)?;
    let (by_id, by_client) = order_ref(p, "orderId", "origClientOrderId")?;
    let new_client = client_id_param(p, "newClientOrderId")?;
    let new_qty = units(p, "newQty", spec.qty_decimals, "LOT_SIZE")?;
    // Refusals of an amend are -2038 ORDER_AMEND_REJECTED with the matching
    // engine's messages (errors.md).
    let unknown = || reject(-2038, "Unknown order sent.");
    let id = find_open(st, kind, acct, &scope, &symbol, by_id, by_client.as_deref()).ok_or_else(unknown)?;
    let Some(o) = st.accounts.list[acct].open.get(&id).cloned() else { return Err(unknown()) };
    if new_qty == o.qty {
        return Err(reject(-2038, "The requested action would change no state; rejecting"));
    }
    if new_qty > o.qty {
        return Err(reject(-2038, "Order amend (quantity increase) is not supported."));
    }
    if new_qty <= o.executed {
        // A simulator choice: the docs do not say what an amend to at most
        // the executed quantity does.
        return Err(reject(-2038, "Order amend (quantity below executed quantity) is not supported."));
    }
    let new_client = new_client.unwrap_or_else(|| st.accounts.token(22));
    let now = hub.venue_ms(st);
    let exec_id = next_exec(st);
    let maker = meta_of(st, kind, id).maker;
    let mut amended = o.clone();
    amended.qty = new_qty;
    amended.client_id = new_client.clone();
    amended.update_ms = now;
    let mut out = Outcome { events: Vec::new(), fills: Vec::new(), touched: Vec::new() };
    let ids = Some((new_client.as_str(), o.client_id.as_str()));
    out.events.push(event(&Report {
        maker,
        ids,
        on_book: true,
        ..Report::new(kind, &spec, &amended, "REPLACED", now, exec_id)
    }));
    let (asset, before) = locked_for(kind, &spec, o.buy, o.price, o.qty - o.executed);
    let (_, after) = locked_for(kind, &spec, o.buy, o.price, new_qty - o.executed);
    lock(st, acct, &scope, &asset, after - before, &mut out.touched);
    account_events(hub, st, acct, &scope, &spec, false, now, &mut out);
    st.accounts.list[acct].open.insert(id, amended.clone());
    deliver_all(hub, st, acct, &scope, out.events);
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    let order = Obj::new()
        .s("symbol", &symbol)
        .raw("orderId", id)
        .raw("orderListId", -1)
        .s("origClientOrderId", &o.client_id)
        .s("clientOrderId", &new_client)
        .s("price", &dec(o.price as i128, pd, 8))
        .s("qty", &dec(new_qty as i128, qd, 8))
        .s("executedQty", &dec(o.executed as i128, qd, 8))
        .s("preventedQty", "0.00000000")
        .s("quoteOrderQty", "0.00000000")
        .s("cumulativeQuoteQty", &amt(o.cum_notional))
        .s("status", amended.status)
        .s("timeInForce", o.tif)
        .s("type", order_type(&o, maker))
        .s("side", side(o.buy))
        .raw("workingTime", o.time_ms)
        .s("selfTradePreventionMode", "EXPIRE_MAKER")
        .end();
    Ok(Obj::new().raw("transactTime", now).raw("executionId", exec_id).raw("amendedOrder", order).end())
}

/// `order.modify` (USD-M): a new price and quantity for an open LIMIT order
/// (`ORDER_TRADE_UPDATE` `AMENDMENT`). At or below the executed quantity the
/// order is canceled; a GTX order whose new price would take is canceled; any
/// other new price that crosses takes the true book like a new order.
pub(crate) fn modify(hub: &Hub, st: &mut HubState, acct: usize, p: &Params) -> Result<String, Reject> {
    let kind = hub.kind();
    let scope = Scope::of_market(kind);
    let (symbol, spec) = spec_of(st, p)?;
    let (by_id, by_client) = order_ref(p, "orderId", "origClientOrderId")?;
    let buy = match p.get("side").ok_or_else(|| mandatory("side"))? {
        "BUY" => true,
        "SELL" => false,
        _ => return Err(reject(-1117, "Invalid side.")),
    };
    let qty = units(p, "quantity", spec.qty_decimals, "LOT_SIZE")?;
    let price = units(p, "price", spec.price_decimals, "PRICE_FILTER")?;
    // orderId prevails when both are sent (Modify-Order, USD-M docs).
    let by_client = if by_id.is_some() { None } else { by_client };
    let id = find_open(st, kind, acct, &scope, &symbol, by_id, by_client.as_deref())
        .ok_or_else(|| reject(-2013, "Order does not exist."))?;
    let Some(mut o) = st.accounts.list[acct].open.remove(&id) else {
        return Err(reject(-2013, "Order does not exist."));
    };
    if o.buy != buy {
        st.accounts.list[acct].open.insert(id, o);
        return Err(reject(-1117, "Invalid side."));
    }
    if o.qty == qty && o.price == price {
        st.accounts.list[acct].open.insert(id, o);
        return Err(reject(-5027, "No need to modify the order."));
    }
    let now = hub.venue_ms(st);
    let mut out = Outcome { events: Vec::new(), fills: Vec::new(), touched: Vec::new() };
    let crosses = st
        .market
        .symbol(&symbol)
        .is_some_and(|s| !s.preview_take(o.buy, (qty - o.executed).max(1), Some(price)).is_empty());
    o.update_ms = now;
    if qty <= o.executed || (o.tif == "GTX" && crosses) {
        o.status = "CANCELED";
        let exec_id = next_exec(st);
        out.events.push(event(&Report::new(kind, &spec, &o, "CANCELED", now, exec_id)));
    } else {
        o.qty = qty;
        o.price = price;
        let exec_id = next_exec(st);
        out.events.push(event(&Report::new(kind, &spec, &o, "AMENDMENT", now, exec_id)));
        let left = o.qty - o.executed;
        take(hub, st, acct, &scope, &mut o, &spec, left, Some(price), true, now, &mut out);
        account_events(hub, st, acct, &scope, &spec, !out.fills.is_empty(), now, &mut out);
    }
    let a = &mut st.accounts.list[acct];
    if matches!(o.status, "NEW" | "PARTIALLY_FILLED") {
        a.open.insert(id, o.clone());
    } else {
        a.finish(o.clone());
    }
    deliver_all(hub, st, acct, &scope, out.events);
    Ok(response(kind, &spec, &o, false, &scope, "RESULT", &[], now))
}

/// `order.status`: an open or finished order of `acct` on `scope`
/// (`-2013` when unknown).
pub(crate) fn status(hub: &Hub, st: &HubState, acct: usize, p: &Params, scope: &Scope) -> Result<String, Reject> {
    let kind = hub.kind();
    let (symbol, spec) = spec_of(st, p)?;
    let (by_id, by_client) = order_ref(p, "orderId", "origClientOrderId")?;
    let a = &st.accounts.list[acct];
    let hit = |o: &&Order| {
        o.symbol == symbol
            && by_id.is_none_or(|i| o.id == i)
            && by_client.as_deref().is_none_or(|c| o.client_id == c)
            && meta_of(st, kind, o.id).scope == *scope
    };
    let o =
        a.open.values().find(hit).map(|o| (o, true)).or_else(|| a.history.iter().rev().find(hit).map(|o| (o, false)));
    let Some((o, open)) = o else { return Err(reject(-2013, "Order does not exist.")) };
    Ok(order_report(kind, &spec, o, meta_of(st, kind, o.id).maker, open))
}

/// `openOrders.status`: the open orders of `acct` on `scope` (one symbol or all).
pub(crate) fn open_orders(hub: &Hub, st: &HubState, acct: usize, p: &Params, scope: &Scope) -> Result<String, Reject> {
    let kind = hub.kind();
    let symbol = match p.get("symbol") {
        Some(s) => Some(st.market.symbol(s).ok_or_else(|| reject(-1121, "Invalid symbol."))?.spec.name.clone()),
        None => None,
    };
    let list: Vec<String> = st.accounts.list[acct]
        .open
        .values()
        .filter(|o| symbol.as_ref().is_none_or(|s| o.symbol == *s) && meta_of(st, kind, o.id).scope == *scope)
        .filter_map(|o| {
            let spec = st.market.symbol(&o.symbol)?.spec.clone();
            Some(order_report(kind, &spec, o, meta_of(st, kind, o.id).maker, true))
        })
        .collect();
    Ok(format!("[{}]", list.join(",")))
}

/// An order as `order.status` reports it (spot or USD-M shape).
fn order_report(kind: MarketKind, spec: &SymbolSpec, o: &Order, maker: bool, open: bool) -> String {
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    if kind == MarketKind::Spot {
        return Obj::new()
            .s("symbol", &o.symbol)
            .raw("orderId", o.id)
            .raw("orderListId", -1)
            .s("clientOrderId", &o.client_id)
            .s("price", &dec(o.price as i128, pd, 8))
            .s("origQty", &dec(o.qty as i128, qd, 8))
            .s("executedQty", &dec(o.executed as i128, qd, 8))
            .s("cummulativeQuoteQty", &amt(o.cum_notional))
            .s("status", o.status)
            .s("timeInForce", o.tif)
            .s("type", order_type(o, maker))
            .s("side", side(o.buy))
            .s("stopPrice", "0.00000000")
            .s("icebergQty", "0.00000000")
            .raw("time", o.time_ms)
            .raw("updateTime", o.update_ms)
            .raw("isWorking", open)
            .raw("workingTime", o.time_ms)
            .s("origQuoteOrderQty", "0.00000000")
            .s("selfTradePreventionMode", "EXPIRE_MAKER")
            .end();
    }
    let avg = if o.executed == 0 { "0".to_string() } else { avg_price(o, pd) };
    Obj::new()
        .s("avgPrice", &avg)
        .s("clientOrderId", &o.client_id)
        .s("cumQuote", &amt(o.cum_notional))
        .s("executedQty", &dec(o.executed as i128, qd, qd))
        .raw("orderId", o.id)
        .s("origQty", &dec(o.qty as i128, qd, qd))
        .s("origType", order_type(o, false))
        .s("price", &dec(o.price as i128, pd, pd))
        .raw("reduceOnly", false)
        .s("side", side(o.buy))
        .s("positionSide", "BOTH")
        .s("status", o.status)
        .s("stopPrice", "0")
        .raw("closePosition", false)
        .s("symbol", &o.symbol)
        .raw("time", o.time_ms)
        .s("timeInForce", o.tif)
        .s("type", order_type(o, false))
        .raw("updateTime", o.update_ms)
        .s("workingType", "CONTRACT_PRICE")
        .raw("priceProtect", false)
        .s("priceMatch", "NONE")
        .s("selfTradePreventionMode", "EXPIRE_MAKER")
        .raw("goodTillDate", 0)
        .end()
}

/// Credits (or debits, when negative) `amount` (`AMT`) of `asset` on
/// `scope`: spot and margin send `balanceUpdate` + `outboundAccountPosition`;
/// futures `ACCOUNT_UPDATE` with reason `DEPOSIT` (or `WITHDRAW`).
pub(crate) fn deposit(hub: &Hub, st: &mut HubState, acct: usize, scope: &Scope, asset: &str, amount: i128) {
    let kind = hub.kind();
    let now = hub.venue_ms(st);
    let events = with_wallet(st, acct, scope, |a| {
        a.balance(asset).free += amount;
        a.update_ms = now;
        if kind == MarketKind::Spot {
            vec![
                (
                    "balanceUpdate",
                    Obj::new()
                        .s("e", "balanceUpdate")
                        .raw("E", now)
                        .s("a", asset)
                        .s("d", &amt(amount))
                        .raw("T", now)
                        .end(),
                ),
                ("outboundAccountPosition", account_position(a, &[asset.to_string()], now)),
            ]
        } else {
            // The wallet line names the asset directly (no symbol involved).
            let spec = SymbolSpec::new("", asset, asset, 0, 0, 0.0);
            let reason = if amount >= 0 { "DEPOSIT" } else { "WITHDRAW" };
            vec![("ACCOUNT_UPDATE", account_update(kind, a, &spec, reason, Some(amount), None, now))]
        }
    });
    deliver_all(hub, st, acct, scope, events);
}

/// `GET /api/v3/account`: the spot balances (non-zero ones, as `omitZeroBalances=true`).
pub(crate) fn spot_account(st: &HubState, acct: usize, now: u64) -> String {
    let a = &st.accounts.list[acct];
    let bal: Vec<String> = a
        .balances
        .iter()
        .filter(|(_, b)| b.free != 0 || b.locked != 0)
        .map(|(asset, b)| Obj::new().s("asset", asset).s("free", &amt(b.free)).s("locked", &amt(b.locked)).end())
        .collect();
    let rates = Obj::new()
        .s("maker", "0.00100000")
        .s("taker", "0.00100000")
        .s("buyer", "0.00000000")
        .s("seller", "0.00000000")
        .end();
    Obj::new()
        .raw("makerCommission", 10)
        .raw("takerCommission", 10)
        .raw("buyerCommission", 0)
        .raw("sellerCommission", 0)
        .raw("commissionRates", rates)
        .raw("canTrade", true)
        .raw("canWithdraw", true)
        .raw("canDeposit", true)
        .raw("brokered", false)
        .raw("requireSelfTradePrevention", false)
        .raw("preventSor", false)
        .raw("updateTime", if a.update_ms == 0 { now } else { a.update_ms })
        .s("accountType", "SPOT")
        .raw("balances", format!("[{}]", bal.join(",")))
        .raw("permissions", "[\"SPOT\"]")
        .raw("uid", 354_937_868 + acct as u64)
        .end()
}
