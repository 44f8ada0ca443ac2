//! Orders of the simulated accounts: `POST /api/v3/order`, `/fapi/v1/order`,
//! `/dapi/v1/order` (LIMIT and MARKET) and their `DELETE` (cancel), deposits,
//! and the user events they produce.
//!
//! A MARKET order, and the marketable part of a LIMIT order, takes liquidity
//! from the true book level by level like the generator's own takers (so depth,
//! trade, aggTrade and bookTicker streams show it, with the same trade ids as
//! the user events). What a GTC LIMIT order does not fill rests *outside* the
//! book: it is reported open (NEW / PARTIALLY_FILLED, balance locked on spot)
//! and never fills later; it can be canceled. IOC and MARKET remainders expire;
//! FOK fills completely or expires; GTX (futures) expires if it would take.
//!
//! Fees: spot 0.1 % of what is received; futures 0.05 % of the notional in the
//! margin asset. Futures positions are one-way (`BOTH`), cross margin, with no
//! margin or leverage checks (accounting in `crate::orders`). Spot checks free
//! balances (`-2010`).

use crate::account::{AMT, Account, Obj, Order, Scope, amt, dec, dec_or_zero, parse_dec, rescale};
use crate::config::{MarketKind, SymbolSpec};
use crate::hub::{Hub, HubState};
use crate::market::{Emit, Fill};
use crate::orders::{
    apply_futures_fill, apply_spot_fill, entry_price, margin_asset, notional, push_unique, unrealized,
};

use super::encode::Encoder;
use super::user::deliver_user;

/// A refused request: HTTP status, venue code, message.
pub(crate) type Reject = (u16, i64, String);

fn reject(code: i64, msg: impl Into<String>) -> Reject {
    (400, code, msg.into())
}

fn mandatory(p: &str) -> Reject {
    reject(-1102, format!("Mandatory parameter '{p}' was not sent, was empty/null, or malformed."))
}

fn illegal(p: &str) -> Reject {
    reject(
        -1100,
        format!("Illegal characters found in parameter '{p}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."),
    )
}

/// Decoded request parameters (query string and form body together).
#[derive(Debug, Default)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl Params {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

fn valid_client_id(s: &str) -> bool {
    (1..=36).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".:/_-".contains(&b))
}

struct Req {
    symbol: String,
    spec: SymbolSpec,
    buy: bool,
    market: bool,
    tif: &'static str,
    qty: i64,
    price: i64,
    client_id: Option<String>,
    resp: &'static str,
}

fn parse_req(kind: MarketKind, st: &HubState, p: &Params) -> Result<Req, Reject> {
    let symbol = p.get("symbol").ok_or_else(|| mandatory("symbol"))?.to_string();
    let spec = st.market.symbol(&symbol).ok_or_else(|| reject(-1121, "Invalid symbol."))?.spec.clone();
    let buy = match p.get("side").ok_or_else(|| mandatory("side"))? {
        "BUY" => true,
        "SELL" => false,
        _ => return Err(reject(-1117, "Invalid side.")),
    };
    let market = match p.get("type").ok_or_else(|| mandatory("type"))? {
        "LIMIT" => false,
        "MARKET" => true,
        _ => return Err(reject(-1116, "Invalid orderType.")),
    };
    let tif = if market {
        if kind == MarketKind::Spot && p.get("price").is_some() {
            return Err(reject(-1106, "Parameter 'price' sent when not required."));
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
    let qty = match p.get("quantity").map(|q| parse_dec(q, spec.qty_decimals)) {
        None => return Err(mandatory("quantity")),
        Some(Err(false)) => return Err(illegal("quantity")),
        Some(Err(true)) => return Err(reject(-1013, "Filter failure: LOT_SIZE")),
        Some(Ok(q)) if q <= 0 || q > i64::MAX as i128 / 1_000_000 => {
            return Err(reject(-1013, "Filter failure: LOT_SIZE"));
        }
        Some(Ok(q)) => q as i64,
    };
    let price = if market {
        0
    } else {
        match p.get("price").map(|q| parse_dec(q, spec.price_decimals)) {
            None => return Err(mandatory("price")),
            Some(Err(false)) => return Err(illegal("price")),
            Some(Err(true)) => return Err(reject(-1013, "Filter failure: PRICE_FILTER")),
            Some(Ok(v)) if v <= 0 || v > i64::MAX as i128 / 1_000_000 => {
                return Err(reject(-1013, "Filter failure: PRICE_FILTER"));
            }
            Some(Ok(v)) => v as i64,
        }
    };
    let client_id = match p.get("newClientOrderId") {
        Some(c) if !valid_client_id(c) => {
            return Err(reject(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            ));
        }
        c => c.map(str::to_string),
    };
    let resp = match p.get("newOrderRespType") {
        None if kind == MarketKind::Spot => "FULL",
        None => "ACK",
        Some("ACK") => "ACK",
        Some("RESULT") => "RESULT",
        Some("FULL") if kind == MarketKind::Spot => "FULL",
        Some(_) => return Err(reject(-1100, "Illegal characters found in parameter 'newOrderRespType'.")),
    };
    Ok(Req { symbol, spec, buy, market, tif, qty, price, client_id, resp })
}

fn side(buy: bool) -> &'static str {
    if buy { "BUY" } else { "SELL" }
}

fn order_type(o: &Order) -> &'static str {
    if o.market { "MARKET" } else { "LIMIT" }
}

/// Places an order for `acct`; returns the response body. User events and the
/// public trade/depth payloads are queued before it returns.
pub(crate) fn place(hub: &Hub, st: &mut HubState, acct: usize, p: &Params) -> Result<String, Reject> {
    let kind = hub.kind();
    if !matches!(kind, MarketKind::Spot | MarketKind::UsdM | MarketKind::CoinM) {
        return Err((404, -1000, "Not found.".into()));
    }
    let r = parse_req(kind, st, p)?;
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
        let a = &st.accounts.list[acct];
        let free = |asset: &str| a.balances.get(asset).map_or(0, |b| b.free);
        let rest_qty = if rests { r.qty - planned } else { 0 };
        let ok = if r.buy {
            let cost: i128 = plan.iter().map(|(px, q)| notional(kind, spec, *px, *q)).sum::<i128>()
                + notional(kind, spec, r.price, rest_qty);
            free(&spec.quote) >= cost
        } else {
            free(&spec.base) >= rescale((planned + rest_qty) as i128, spec.qty_decimals, AMT)
        };
        if !ok {
            return Err(reject(-2010, "Account has insufficient balance for requested action."));
        }
    }

    // Execute on the true book.
    let now = hub.venue_ms(st);
    let mut emits: Vec<Emit> = Vec::new();
    let fills = if plan.is_empty() {
        Vec::new()
    } else {
        let HubState { market, tracked, .. } = &mut *st;
        let enc = Encoder { kind };
        market.user_take(&enc, &r.symbol, r.buy, planned, limit, now, tracked, &mut emits)
    };
    for e in emits {
        hub.deliver(st, &e.stream, e.payload.as_bytes(), e.id, 1);
    }

    let order_id = st.accounts.next_order_id;
    st.accounts.next_order_id += 1;
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
    let scope = Scope::of_market(kind);
    let mark = st.market.symbol(&r.symbol).map_or(r.price, |s| s.mid());
    let mut events: Vec<(&'static str, String)> = Vec::new();
    let mut fill_json: Vec<String> = Vec::new();
    let ev_new = event(kind, spec, &o, "NEW", None, now, next_exec(st), "", rests);
    events.push(ev_new);
    let mut touched: Vec<String> = Vec::new();
    for f in &fills {
        let n = notional(kind, spec, f.price, f.qty);
        o.executed += f.qty;
        o.cum_notional += n;
        o.cum_ticks_lots += f.price as i128 * f.qty as i128;
        o.status = if o.executed == o.qty { "FILLED" } else { "PARTIALLY_FILLED" };
        let a = &mut st.accounts.list[acct];
        let (fee, fee_asset, rp) = if kind == MarketKind::Spot {
            apply_spot_fill(a, spec, r.buy, f, n, &mut touched)
        } else {
            apply_futures_fill(kind, a, spec, r.buy, f, n)
        };
        fill_json.push(
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
        events.push(event(kind, spec, &o, "TRADE", Some(&last), now, exec_id, "", rests));
    }
    let expired = !rests && o.executed < o.qty;
    if expired {
        o.status = "EXPIRED";
        let exec_id = next_exec(st);
        events.push(event(kind, spec, &o, "EXPIRED", None, now, exec_id, "", false));
    }
    let a = &mut st.accounts.list[acct];
    if rests && kind == MarketKind::Spot {
        let rest_qty = o.qty - o.executed;
        if r.buy {
            let lock = notional(kind, spec, r.price, rest_qty);
            let b = a.balance(&spec.quote);
            b.free -= lock;
            b.locked += lock;
            push_unique(&mut touched, &spec.quote);
        } else {
            let lock = rescale(rest_qty as i128, spec.qty_decimals, AMT);
            let b = a.balance(&spec.base);
            b.free -= lock;
            b.locked += lock;
            push_unique(&mut touched, &spec.base);
        }
    }
    if kind == MarketKind::Spot {
        if !touched.is_empty() {
            a.update_ms = now;
            events.push(("outboundAccountPosition", account_position(a, &touched, now)));
        }
    } else if !fills.is_empty() {
        a.update_ms = now;
        events.push(("ACCOUNT_UPDATE", account_update(kind, a, spec, "ORDER", None, Some((&r.symbol, mark)), now)));
    }
    if rests {
        a.open.insert(o.id, o.clone());
    } else {
        a.finish(o.clone());
    }
    for (e, payload) in events {
        deliver_user(hub, st, acct, &scope, e, &payload);
    }
    Ok(response(kind, spec, &o, r.resp, &fill_json, now))
}

fn next_exec(st: &mut HubState) -> u64 {
    st.accounts.next_exec_id += 1;
    st.accounts.next_exec_id
}

/// The last fill of a TRADE event.
struct Last {
    fill: Fill,
    fee: i128,
    fee_asset: String,
    realized: i128,
}

/// One order event: `executionReport` (spot) or `ORDER_TRADE_UPDATE` (futures).
#[allow(clippy::too_many_arguments)] // a payload with many independent inputs
fn event(
    kind: MarketKind,
    spec: &SymbolSpec,
    o: &Order,
    x: &str,
    last: Option<&Last>,
    now: u64,
    exec_id: u64,
    cancel_client_id: &str,
    on_book: bool,
) -> (&'static str, String) {
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    let status = match x {
        "NEW" => "NEW",
        _ => o.status,
    };
    if kind == MarketKind::Spot {
        let s8 = |v: i128, scale: u32| dec(v, scale, 8);
        let (l, lp, n, nn, t, y) = match last {
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
        // A cancel reports the cancel request's id in `c` and the order's in `C`.
        let (c, cc) = if cancel_client_id.is_empty() {
            (o.client_id.as_str(), "")
        } else {
            (cancel_client_id, o.client_id.as_str())
        };
        let p = Obj::new()
            .s("e", "executionReport")
            .raw("E", now)
            .s("s", &o.symbol)
            .s("c", c)
            .s("S", side(o.buy))
            .s("o", order_type(o))
            .s("f", o.tif)
            .s("q", &s8(o.qty as i128, qd))
            .s("p", &s8(o.price as i128, pd))
            .s("P", &s8(0, 0))
            .s("F", &s8(0, 0))
            .raw("g", -1)
            .s("C", cc)
            .s("x", x)
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
            .raw("I", exec_id)
            .raw("w", on_book && matches!(status, "NEW" | "PARTIALLY_FILLED"))
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
    let (l, lp, n, t, rp) = match last {
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
        .s("o", order_type(o))
        .s("f", o.tif)
        .s("q", &dec_or_zero(o.qty as i128, qd, qd))
        .s("p", &dec_or_zero(o.price as i128, pd, pd))
        .s("ap", &avg)
        .s("sp", "0")
        .s("x", x)
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
        .s("ot", order_type(o))
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

/// The order response: spot ACK / RESULT / FULL; futures ACK (the order as
/// accepted, status NEW) or RESULT (the order after matching).
fn response(kind: MarketKind, spec: &SymbolSpec, o: &Order, resp: &str, fills: &[String], now: u64) -> String {
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    if kind == MarketKind::Spot {
        let mut b = Obj::new()
            .s("symbol", &o.symbol)
            .raw("orderId", o.id)
            .raw("orderListId", -1)
            .s("clientOrderId", &o.client_id)
            .raw("transactTime", now);
        if resp == "ACK" {
            return b.end();
        }
        b = b
            .s("price", &dec(o.price as i128, pd, 8))
            .s("origQty", &dec(o.qty as i128, qd, 8))
            .s("executedQty", &dec(o.executed as i128, qd, 8))
            .s("origQuoteOrderQty", "0.00000000")
            .s("cummulativeQuoteQty", &amt(o.cum_notional))
            .s("status", o.status)
            .s("timeInForce", o.tif)
            .s("type", order_type(o))
            .s("side", side(o.buy))
            .raw("workingTime", o.time_ms)
            .s("selfTradePreventionMode", "EXPIRE_MAKER");
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
        .s("type", order_type(o))
        .raw("reduceOnly", false)
        .raw("closePosition", false)
        .s("side", side(o.buy))
        .s("positionSide", "BOTH")
        .s("stopPrice", "0")
        .s("workingType", "CONTRACT_PRICE")
        .raw("priceProtect", false)
        .s("origType", order_type(o))
        .s("priceMatch", "NONE")
        .s("selfTradePreventionMode", "EXPIRE_MAKER")
        .raw("goodTillDate", 0)
        .raw("updateTime", now)
        .end()
}

/// Cancels an open order (`orderId` or `origClientOrderId`); returns the response.
pub(crate) fn cancel(hub: &Hub, st: &mut HubState, acct: usize, p: &Params) -> Result<String, Reject> {
    let kind = hub.kind();
    let symbol = p.get("symbol").ok_or_else(|| mandatory("symbol"))?.to_string();
    let spec = st.market.symbol(&symbol).ok_or_else(|| reject(-1121, "Invalid symbol."))?.spec.clone();
    let by_id = match p.get("orderId") {
        Some(v) => Some(v.parse::<u64>().map_err(|_| illegal("orderId"))?),
        None => None,
    };
    let by_client = p.get("origClientOrderId");
    if by_id.is_none() && by_client.is_none() {
        return Err(reject(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"));
    }
    let a = &st.accounts.list[acct];
    let found = a
        .open
        .values()
        .find(|o| o.symbol == symbol && by_id.is_none_or(|i| o.id == i) && by_client.is_none_or(|c| o.client_id == c));
    let Some(id) = found.map(|o| o.id) else { return Err(reject(-2011, "Unknown order sent.")) };
    let new_client = match p.get("newClientOrderId") {
        Some(c) if valid_client_id(c) => c.to_string(),
        _ => st.accounts.token(22),
    };
    let now = hub.venue_ms(st);
    let exec_id = next_exec(st);
    let a = &mut st.accounts.list[acct];
    let Some(mut o) = a.open.remove(&id) else { return Err(reject(-2011, "Unknown order sent.")) };
    o.status = "CANCELED";
    o.update_ms = now;
    let mut events = Vec::new();
    let orig = o.client_id.clone();
    if kind == MarketKind::Spot {
        let rest_qty = o.qty - o.executed;
        let (asset, unlock) = if o.buy {
            (spec.quote.clone(), notional(kind, &spec, o.price, rest_qty))
        } else {
            (spec.base.clone(), rescale(rest_qty as i128, spec.qty_decimals, AMT))
        };
        let b = a.balance(&asset);
        b.locked -= unlock;
        b.free += unlock;
        a.update_ms = now;
        events.push(event(kind, &spec, &o, "CANCELED", None, now, exec_id, &new_client, false));
        events.push(("outboundAccountPosition", account_position(a, &[asset], now)));
    } else {
        events.push(event(kind, &spec, &o, "CANCELED", None, now, exec_id, "", false));
    }
    a.finish(o.clone());
    let scope = Scope::of_market(kind);
    for (e, payload) in events {
        deliver_user(hub, st, acct, &scope, e, &payload);
    }
    if kind == MarketKind::Spot {
        let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
        return Ok(Obj::new()
            .s("symbol", &o.symbol)
            .s("origClientOrderId", &orig)
            .raw("orderId", o.id)
            .raw("orderListId", -1)
            .s("clientOrderId", &new_client)
            .raw("transactTime", now)
            .s("price", &dec(o.price as i128, pd, 8))
            .s("origQty", &dec(o.qty as i128, qd, 8))
            .s("executedQty", &dec(o.executed as i128, qd, 8))
            .s("origQuoteOrderQty", "0.00000000")
            .s("cummulativeQuoteQty", &amt(o.cum_notional))
            .s("status", "CANCELED")
            .s("timeInForce", o.tif)
            .s("type", order_type(&o))
            .s("side", side(o.buy))
            .s("selfTradePreventionMode", "EXPIRE_MAKER")
            .end());
    }
    Ok(response(kind, &spec, &o, "RESULT", &[], now))
}

/// Credits (or debits, when negative) `amount` (`AMT`) of `asset`: spot sends
/// `balanceUpdate` + `outboundAccountPosition`; futures `ACCOUNT_UPDATE` with
/// reason `DEPOSIT` (or `WITHDRAW`).
pub(crate) fn deposit(hub: &Hub, st: &mut HubState, acct: usize, asset: &str, amount: i128) {
    let kind = hub.kind();
    let now = hub.venue_ms(st);
    let scope = Scope::of_market(kind);
    let a = &mut st.accounts.list[acct];
    a.balance(asset).free += amount;
    a.update_ms = now;
    let mut events = Vec::new();
    if kind == MarketKind::Spot {
        events.push((
            "balanceUpdate",
            Obj::new().s("e", "balanceUpdate").raw("E", now).s("a", asset).s("d", &amt(amount)).raw("T", now).end(),
        ));
        events.push(("outboundAccountPosition", account_position(a, &[asset.to_string()], now)));
    } else {
        // The wallet line names the asset directly (no symbol involved).
        let spec = SymbolSpec::new("", asset, asset, 0, 0, 0.0);
        let reason = if amount >= 0 { "DEPOSIT" } else { "WITHDRAW" };
        events.push(("ACCOUNT_UPDATE", account_update(kind, a, &spec, reason, Some(amount), None, now)));
    }
    for (e, payload) in events {
        deliver_user(hub, st, acct, &scope, e, &payload);
    }
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
