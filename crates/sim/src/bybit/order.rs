//! Bybit v5 signed order endpoint `POST /v5/order/create` (PROTOCOLS.md §5.6).
//!
//! Orders take liquidity from the true book through the same matching as the
//! Binance private side (`Market::user_take`, so `publicTrade` and the order
//! books show them) and the same one-way futures accounting
//! (`orders::apply_futures_fill`: average entry, realized profit, 0.05 % fee
//! in USDT). Each placement pushes, to every authenticated connection of the
//! account subscribed to the topic, one `order` message (the order's state
//! after matching), one `execution` message with one item per fill, then
//! `position` and `wallet` (when something filled). Item keys are those of
//! the documentation's examples (`shared/fixtures/bybit_v5/docs`).

use bytes::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use crate::account::{AMT, Obj, Order, dec, parse_dec, rescale};
use crate::auth;
use crate::config::{BybitCategory, MarketKind, SymbolSpec};
use crate::hub::{Hub, HubState};
use crate::market::Emit;
use crate::orders::{apply_futures_fill, entry_price, unrealized};
use crate::server::{Resp, json};

use super::encode::{Encoder, js};
use super::private::push;
use super::{state, state_mut};

/// The order endpoint.
const CREATE: &str = "/v5/order/create";

/// The default and largest `X-BAPI-RECV-WINDOW` (ms).
const RECV_WINDOW: u64 = 5000;

// ----- REST -----

/// Whether `path` is a Bybit REST endpoint served here.
pub(crate) fn is_rest_path(hub: &Hub, path: &str) -> bool {
    path == CREATE && hub.cfg.bybit_category() == Some(BybitCategory::Linear)
}

/// `{"retCode","retMsg","result","retExtInfo":{},"time"}` (HTTP 200, as the
/// venue answers business errors too).
fn ret(code: i64, msg: &str, result: &str, now: u64) -> Resp {
    let body =
        format!("{{\"retCode\":{code},\"retMsg\":{},\"result\":{result},\"retExtInfo\":{{}},\"time\":{now}}}", js(msg));
    json(StatusCode::OK, body)
}

fn header<'a>(req: &'a Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// `POST /v5/order/create`.
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
    let mut st = hub.lock();
    match place(hub, &mut st, acct, &v) {
        Ok((id, link)) => {
            let result = Obj::new().s("orderId", &id).s("orderLinkId", &link).end();
            ret(0, "OK", &result, now)
        }
        Err((code, msg)) => ret(code, &msg, "{}", now),
    }
}

/// Bybit v5 REST signing: `X-BAPI-SIGN` = hex HMAC-SHA256 of
/// `timestamp + apiKey + recvWindow + body`; the timestamp must satisfy
/// `server - recvWindow <= timestamp < server + 1000`.
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
    if ts >= now.saturating_add(1000) || ts.saturating_add(rw) < now {
        return Err((
            10002,
            format!(
                "invalid request, please check your server timestamp or recv_window param. \
                 req_timestamp[{ts}],server_timestamp[{now}],recv_window[{rw}]"
            ),
        ));
    }
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

fn text_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn param_err(what: &str) -> (i64, String) {
    (10001, format!("params error: {what}"))
}

/// A UUID-shaped id from a number (the venue's order and execution ids are UUIDs).
fn uuid_of(n: u64, salt: u64) -> String {
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let a = mix(n ^ salt);
    let b = mix(a ^ n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// A decimal with trailing zeros trimmed (`"26.3725275"`, `"0"`).
fn trim(v: i128, scale: u32) -> String {
    let mut s = dec(v, scale, scale);
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" { "0".into() } else { s }
}

fn px(spec: &SymbolSpec, ticks: i64) -> String {
    dec(ticks as i128, spec.price_decimals, spec.price_decimals)
}

fn qty(spec: &SymbolSpec, lots: i64) -> String {
    dec(lots as i128, spec.qty_decimals, spec.qty_decimals)
}

/// The quote notional of `q` lots at `p` ticks (`AMT`).
fn notional(spec: &SymbolSpec, p: i64, q: i64) -> i128 {
    rescale(p as i128 * q as i128, spec.price_decimals + spec.qty_decimals, AMT)
}

fn side(buy: bool) -> &'static str {
    if buy { "Buy" } else { "Sell" }
}

/// One fill as the `execution` item reports it.
struct Exec {
    id: String,
    price: i64,
    qty: i64,
    value: i128,
    fee: i128,
    pnl: i128,
    closed: i64,
    leaves: i64,
}

/// Parses, matches and accounts an order; queues the public and private
/// messages. Returns (orderId, orderLinkId).
fn place(hub: &Hub, st: &mut HubState, acct: usize, v: &Value) -> Result<(String, String), (i64, String)> {
    let kind = MarketKind::UsdM;
    match text_field(v, "category") {
        Some("linear") => {}
        None => return Err(param_err("category is required")),
        Some(_) => return Err((10001, "params error: Category is invalid".into())),
    }
    let symbol = text_field(v, "symbol").ok_or_else(|| param_err("symbol is required"))?.to_string();
    let spec = st.market.symbol(&symbol).ok_or_else(|| param_err("Symbol Is Invalid"))?.spec.clone();
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
    let q = match text_field(v, "qty").map(|s| parse_dec(s, spec.qty_decimals)) {
        Some(Ok(q)) if q > 0 && q <= i64::MAX as i128 / 1_000_000 => q as i64,
        _ => return Err(param_err("qty invalid")),
    };
    let price = if market {
        0
    } else {
        match text_field(v, "price").map(|s| parse_dec(s, spec.price_decimals)) {
            Some(Ok(p)) if p > 0 && p <= i64::MAX as i128 / 1_000_000 => p as i64,
            _ => return Err(param_err("price invalid")),
        }
    };
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
    let a = &st.accounts.list[acct];
    if !link.is_empty()
        && (a.open.values().any(|o| o.client_id == link) || a.history.iter().any(|o| o.client_id == link))
    {
        return Err((110072, "OrderLinkedID is duplicate".into()));
    }
    let limit = if market { None } else { Some(price) };
    let Some(sym) = st.market.symbol(&symbol) else { return Err(param_err("Symbol Is Invalid")) };
    let last_price = sym.last;
    let mut plan = sym.preview_take(buy, q, limit);
    let mut reject = "EC_NoError";
    if tif == "FOK" && plan.iter().map(|(_, x)| x).sum::<i64>() < q {
        plan.clear();
        reject = "EC_FOKOrderNotFilledCompletely";
    }
    if tif == "PostOnly" && !plan.is_empty() {
        plan.clear();
        reject = "EC_PostOnlyWillTakeLiquidity";
    }
    let planned: i64 = plan.iter().map(|(_, x)| x).sum();
    let rests = !market && tif == "GTC" && planned < q;
    if rests && st.accounts.list[acct].open.len() >= hub.cfg.limits.max_open_orders {
        return Err((10005, "Number of orders exceeds the limit".into()));
    }

    let now = hub.venue_ms(st);
    let mut emits: Vec<Emit> = Vec::new();
    let fills = if plan.is_empty() {
        Vec::new()
    } else {
        let HubState { market, tracked, .. } = &mut *st;
        let enc = Encoder { cat: hub.cfg.bybit_category().unwrap_or(BybitCategory::Linear) };
        market.user_take(&enc, &symbol, buy, planned, limit, now, tracked, &mut emits)
    };
    for e in emits {
        hub.deliver(st, &e.stream, e.payload.as_bytes(), e.id, 1);
    }

    let id = st.accounts.next_order_id;
    st.accounts.next_order_id += 1;
    let mut o = Order {
        symbol: symbol.clone(),
        id,
        client_id: link.clone(),
        buy,
        market,
        tif,
        qty: q,
        price,
        executed: 0,
        cum_notional: 0,
        cum_ticks_lots: 0,
        status: "New",
        time_ms: now,
        update_ms: now,
    };
    let mut execs = Vec::new();
    let (mut fees, mut pnl) = (0i128, 0i128);
    for f in &fills {
        let n = notional(&spec, f.price, f.qty);
        let a = &mut st.accounts.list[acct];
        let before = a.positions.get(&symbol).map_or(0, |p| p.amt);
        let (fee, _, realized) = apply_futures_fill(kind, a, &spec, buy, f, n);
        let closed = if before != 0 && (before > 0) != buy { before.abs().min(f.qty) } else { 0 };
        o.executed += f.qty;
        o.cum_notional += n;
        o.cum_ticks_lots += f.price as i128 * f.qty as i128;
        fees += fee;
        pnl += realized;
        st.accounts.next_exec_id += 1;
        execs.push(Exec {
            id: uuid_of(st.accounts.next_exec_id, 0xe8ec),
            price: f.price,
            qty: f.qty,
            value: n,
            fee,
            pnl: realized,
            closed,
            leaves: q - o.executed,
        });
    }
    o.status = match (o.executed, rests) {
        (0, true) => "New",
        (_, true) => "PartiallyFilled",
        (e, false) if e == q => "Filled",
        (0, false) => "Cancelled",
        (_, false) => "PartiallyFilledCanceled",
    };
    if market {
        // A market order reports the worst price it may trade at: here, the
        // last level it took (the mid when nothing filled).
        o.price = fills.last().map(|f| f.price).unwrap_or_else(|| st.market.symbol(&symbol).map_or(0, |s| s.mid()));
    }
    let mark = st.market.symbol(&symbol).map_or(price, |s| s.mid());
    let seq = state(st.venue.as_ref()).map_or(0, |b| b.private.seq);
    let seq_base = seq.max(st.market.symbol(&symbol).map_or(0, |s| s.update_id));
    let a = &mut st.accounts.list[acct];
    if !fills.is_empty() {
        a.update_ms = now;
    }
    if rests {
        a.open.insert(o.id, o.clone());
    } else {
        a.finish(o.clone());
    }
    let order_id = uuid_of(o.id, 0x0bd3);
    let ctx = Ctx { spec: &spec, order_id: &order_id, o: &o, now, mark, last_price, rests };
    let order_item = order_item(&ctx, fees, pnl, reject);
    let mut msgs: Vec<(&'static str, String)> = vec![("order", order_item)];
    if !execs.is_empty() {
        let items: Vec<String> =
            execs.iter().enumerate().map(|(i, e)| exec_item(&ctx, e, seq_base + 1 + i as u64)).collect();
        msgs.push(("execution", items.join(",")));
        let pos = position_item(&ctx, st, acct, seq_base + 1 + execs.len() as u64);
        msgs.push(("position", pos));
        msgs.push(("wallet", wallet_item(st, acct, &spec)));
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
    Ok((order_id, link))
}

/// What every item of one placement shares.
struct Ctx<'a> {
    spec: &'a SymbolSpec,
    order_id: &'a str,
    o: &'a Order,
    now: u64,
    mark: i64,
    last_price: i64,
    rests: bool,
}

fn order_type(o: &Order) -> &'static str {
    if o.market { "Market" } else { "Limit" }
}

/// One `order` item (keys as the documentation's example).
fn order_item(c: &Ctx<'_>, fees: i128, pnl: i128, reject: &str) -> String {
    let (o, spec) = (c.o, c.spec);
    let leaves = if c.rests { o.qty - o.executed } else { 0 };
    let avg = if o.executed == 0 {
        "0".to_string()
    } else {
        trim(o.cum_ticks_lots * 1000 / o.executed as i128, spec.price_decimals + 3)
    };
    let fee_detail = Obj::new().s(&spec.quote, &trim(fees, AMT)).end();
    Obj::new()
        .s("symbol", &o.symbol)
        .s("orderId", c.order_id)
        .s("side", side(o.buy))
        .s("orderType", order_type(o))
        .s("cancelType", "UNKNOWN")
        .s("price", &px(spec, o.price))
        .s("qty", &qty(spec, o.qty))
        .s("orderIv", "")
        .s("timeInForce", o.tif)
        .s("orderStatus", o.status)
        .s("orderLinkId", &o.client_id)
        .s("lastPriceOnCreated", &px(spec, c.last_price))
        .raw("reduceOnly", false)
        .s("leavesQty", &qty(spec, leaves))
        .s("leavesValue", &trim(notional(spec, o.price, leaves), AMT))
        .s("cumExecQty", &qty(spec, o.executed))
        .s("cumExecValue", &trim(o.cum_notional, AMT))
        .s("avgPrice", &avg)
        .s("blockTradeId", "")
        .raw("positionIdx", 0)
        .s("cumExecFee", &trim(fees, AMT))
        .s("closedPnl", &trim(pnl, AMT))
        .s("createdTime", &o.time_ms.to_string())
        .s("updatedTime", &c.now.to_string())
        .s("rejectReason", reject)
        .s("stopOrderType", "")
        .s("tpslMode", "")
        .s("triggerPrice", "")
        .s("takeProfit", "")
        .s("stopLoss", "")
        .s("tpTriggerBy", "")
        .s("slTriggerBy", "")
        .s("tpLimitPrice", "")
        .s("slLimitPrice", "")
        .raw("triggerDirection", 0)
        .s("triggerBy", "")
        .raw("closeOnTrigger", false)
        .s("category", "linear")
        .s("placeType", "")
        .s("smpType", "None")
        .raw("smpGroup", 0)
        .s("smpOrderId", "")
        .s("feeCurrency", "")
        .raw("cumFeeDetail", fee_detail)
        .raw("rpiTakerAccess", false)
        .s("rpiMatchedQty", "0")
        .end()
}

/// One `execution` item.
fn exec_item(c: &Ctx<'_>, e: &Exec, seq: u64) -> String {
    let (o, spec) = (c.o, c.spec);
    Obj::new()
        .s("category", "linear")
        .s("symbol", &o.symbol)
        .s("closedSize", &qty(spec, e.closed))
        .s("execFee", &trim(e.fee, AMT))
        .s("execId", &e.id)
        .s("execPrice", &px(spec, e.price))
        .s("execQty", &qty(spec, e.qty))
        .s("execType", "Trade")
        .s("execValue", &trim(e.value, AMT))
        .s("feeRate", "0.0005")
        .s("tradeIv", "")
        .s("markIv", "")
        .s("blockTradeId", "")
        .s("markPrice", &px(spec, c.mark))
        .s("indexPrice", "")
        .s("underlyingPrice", "")
        .s("leavesQty", &qty(spec, e.leaves))
        .s("orderId", c.order_id)
        .s("orderLinkId", &o.client_id)
        .s("orderPrice", &px(spec, o.price))
        .s("orderQty", &qty(spec, o.qty))
        .s("orderType", order_type(o))
        .s("stopOrderType", "UNKNOWN")
        .s("side", side(o.buy))
        .s("execTime", &c.now.to_string())
        .s("isLeverage", "0")
        .raw("isMaker", false)
        .raw("seq", seq)
        .s("marketUnit", "")
        .s("execPnl", &trim(e.pnl, AMT))
        .s("createType", "CreateByUser")
        .raw("extraFees", "[]")
        .s("feeCurrency", &spec.quote)
        .end()
}

/// One `position` item: one-way (`positionIdx` 0), cross, 10x, from the account's position.
fn position_item(c: &Ctx<'_>, st: &HubState, acct: usize, seq: u64) -> String {
    let spec = c.spec;
    let p = st.accounts.list[acct].positions.get(&spec.name).copied().unwrap_or_default();
    let side = match p.amt.signum() {
        1 => "Buy",
        -1 => "Sell",
        _ => "",
    };
    let entry = entry_price(MarketKind::UsdM, spec, p.amt, p.cost);
    let entry = parse_dec(&entry, 8).map_or("0".to_string(), |v| trim(v, 8));
    let value = notional(spec, c.mark, p.amt.abs());
    let im = value / 10;
    let mm = value / 200;
    let upl = unrealized(MarketKind::UsdM, spec, p.amt, p.cost, c.mark);
    Obj::new()
        .raw("positionIdx", 0)
        .raw("tradeMode", 0)
        .raw("riskId", 1)
        .s("riskLimitValue", "2000000")
        .s("symbol", &spec.name)
        .s("side", side)
        .s("size", &qty(spec, p.amt.abs()))
        .s("entryPrice", &entry)
        .s("leverage", "10")
        .s("breakEvenPrice", &entry)
        .s("positionValue", &trim(p.cost, AMT))
        .s("positionBalance", &trim(im, AMT))
        .s("markPrice", &px(spec, c.mark))
        .s("positionIM", &trim(im, AMT))
        .s("positionIMByMp", &trim(im, AMT))
        .s("positionMM", &trim(mm, AMT))
        .s("positionMMByMp", &trim(mm, AMT))
        .s("takeProfit", "0")
        .s("stopLoss", "0")
        .s("trailingStop", "0")
        .s("unrealisedPnl", &trim(upl, AMT))
        .s("curRealisedPnl", &trim(p.realized, AMT))
        .s("cumRealisedPnl", &trim(p.realized, AMT))
        .s("sessionAvgPrice", "0")
        .s("createdTime", &c.o.time_ms.to_string())
        .s("updatedTime", &c.now.to_string())
        .s("tpslMode", "Full")
        .s("liqPrice", "0")
        .s("bustPrice", "")
        .s("category", "linear")
        .s("positionStatus", "Normal")
        .raw("adlRankIndicator", if p.amt == 0 { 0 } else { 2 })
        .raw("autoAddMargin", 0)
        .s("leverageSysUpdatedTime", "")
        .s("mmrSysUpdatedTime", "")
        .raw("seq", seq)
        .raw("isReduceOnly", false)
        .end()
}

/// The `wallet` item (a unified account): the settlement coin, with the
/// unrealized profit and margins of every position of the account.
fn wallet_item(st: &HubState, acct: usize, spec: &SymbolSpec) -> String {
    let a = &st.accounts.list[acct];
    let coin = &spec.quote;
    let wallet = a.balances.get(coin).map_or(0, |b| b.free);
    let (mut upl, mut im, mut mm, mut realized) = (0i128, 0i128, 0i128, 0i128);
    for (sym, p) in &a.positions {
        let Some(s) = st.market.symbol(sym) else { continue };
        let mark = s.mid();
        upl += unrealized(MarketKind::UsdM, &s.spec, p.amt, p.cost, mark);
        let value = notional(&s.spec, mark, p.amt.abs());
        im += value / 10;
        mm += value / 200;
        realized += p.realized;
    }
    let equity = wallet + upl;
    let t = |v: i128| trim(v, AMT);
    let c = Obj::new()
        .s("coin", coin)
        .s("equity", &t(equity))
        .s("usdValue", &t(equity))
        .s("walletBalance", &t(wallet))
        .s("availableToWithdraw", &t((wallet - im).max(0)))
        .s("availableToBorrow", "")
        .s("borrowAmount", "0")
        .s("accruedInterest", "0")
        .s("totalOrderIM", "0")
        .s("totalPositionIM", &t(im))
        .s("totalPositionMM", &t(mm))
        .s("unrealisedPnl", &t(upl))
        .s("cumRealisedPnl", &t(realized))
        .s("bonus", "0")
        .raw("collateralSwitch", true)
        .raw("marginCollateral", true)
        .s("locked", "0")
        .s("spotHedgingQty", "0")
        .s("spotBorrow", "0")
        .end();
    let rate = |v: i128| if equity <= 0 { "0".to_string() } else { trim(v * 10_000 / equity, 4) };
    Obj::new()
        .s("accountIMRate", &rate(im))
        .s("accountIMRateByMp", &rate(im))
        .s("accountMMRate", &rate(mm))
        .s("accountMMRateByMp", &rate(mm))
        .s("totalEquity", &t(equity))
        .s("totalWalletBalance", &t(wallet))
        .s("totalMarginBalance", &t(equity))
        .s("totalAvailableBalance", &t((equity - im).max(0)))
        .s("totalPerpUPL", &t(upl))
        .s("totalInitialMargin", &t(im))
        .s("totalInitialMarginByMp", &t(im))
        .s("totalMaintenanceMargin", &t(mm))
        .s("totalMaintenanceMarginByMp", &t(mm))
        .raw("coin", format!("[{c}]"))
        .s("accountLTV", "0")
        .s("accountType", "UNIFIED")
        .end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_decimals() {
        let u = uuid_of(5, 1);
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        assert_ne!(uuid_of(5, 1), uuid_of(6, 1));
        assert_eq!(trim(2637252750, 8), "26.3725275");
        assert_eq!(trim(0, 8), "0");
        assert_eq!(trim(-100_000_000, 8), "-1");
        assert_eq!(trim(-1, 10), "-0.0000000001");
    }
}
