//! The items of the private `order`, `execution`, `position` and `wallet`
//! pushes (PROTOCOLS.md §5.6) for the linear category, and the numbers they
//! are written from. Keys and JSON types are those of the documentation's
//! examples (`shared/fixtures/bybit_v5/docs/{order,execution,position,wallet}.docs.json`,
//! from docs/v5/websocket/private/*.mdx); fields the simulator does not model
//! are `""`, `"0"`, `0` or `false`.

use crate::account::{AMT, Obj, Order, dec, parse_dec, rescale};
use crate::config::{MarketKind, SymbolSpec};
use crate::hub::HubState;
use crate::orders::{entry_price, unrealized};

/// Initial margin of a position or an order: 10x leverage, as `position`
/// reports it (`leverage:"10"`).
pub(crate) const LEVERAGE: i128 = 10;

/// A UUID-shaped id from a number (the venue's order and execution ids are UUIDs).
pub(crate) fn uuid_of(n: u64, salt: u64) -> String {
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

/// A 64-bit mixer (splitmix64's finaliser), for ids that look random.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The venue's `orderId` of order number `id`.
pub(crate) fn order_id(id: u64) -> String {
    uuid_of(id, 0x0bd3)
}

/// A decimal with trailing zeros trimmed (`"26.3725275"`, `"0"`).
pub(crate) fn trim(v: i128, scale: u32) -> String {
    let mut s = dec(v, scale, scale);
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" { "0".into() } else { s }
}

pub(crate) fn px(spec: &SymbolSpec, ticks: i64) -> String {
    dec(ticks as i128, spec.price_decimals, spec.price_decimals)
}

pub(crate) fn qty(spec: &SymbolSpec, lots: i64) -> String {
    dec(lots as i128, spec.qty_decimals, spec.qty_decimals)
}

/// The quote notional of `q` lots at `p` ticks (`AMT`).
pub(crate) fn notional(spec: &SymbolSpec, p: i64, q: i64) -> i128 {
    rescale(p as i128 * q as i128, spec.price_decimals + spec.qty_decimals, AMT)
}

pub(crate) fn side(buy: bool) -> &'static str {
    if buy { "Buy" } else { "Sell" }
}

fn order_type(o: &Order) -> &'static str {
    if o.market { "Market" } else { "Limit" }
}

/// Whether an order status is an open one (`New`, `PartiallyFilled`).
pub(crate) fn is_open(status: &str) -> bool {
    matches!(status, "New" | "PartiallyFilled")
}

/// What the venue reports about an order that the shared [`Order`] does not
/// hold; kept while the order is open (`BybitState::orders`).
#[derive(Debug, Clone)]
pub(crate) struct Flags {
    /// `reduceOnly`.
    pub reduce_only: bool,
    /// `rejectReason` (`EC_NoError`, `EC_PostOnlyWillTakeLiquidity`, ...).
    pub reject: &'static str,
    /// `cancelType` (`UNKNOWN`, `CancelByUser`).
    pub cancel_type: &'static str,
    /// Fees paid so far (`cumExecFee`, `AMT`).
    pub fees: i128,
    /// Profit realized so far (`closedPnl`, `AMT`).
    pub pnl: i128,
    /// `lastPriceOnCreated`, in ticks.
    pub last_on_created: i64,
}

/// One fill as the `execution` item reports it.
#[derive(Debug)]
pub(crate) struct Exec {
    pub id: String,
    pub price: i64,
    pub qty: i64,
    pub value: i128,
    pub fee: i128,
    pub pnl: i128,
    pub closed: i64,
    pub leaves: i64,
}

/// What every item of one push shares.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub spec: &'a SymbolSpec,
    pub order_id: &'a str,
    pub o: &'a Order,
    pub flags: &'a Flags,
    pub now: u64,
    pub mark: i64,
}

/// One `order` item (keys as the documentation's example).
pub(crate) fn order_item(c: &Ctx<'_>) -> String {
    let (o, spec, f) = (c.o, c.spec, c.flags);
    let leaves = if is_open(o.status) { o.qty - o.executed } else { 0 };
    let avg = if o.executed == 0 {
        "0".to_string()
    } else {
        trim(o.cum_ticks_lots * 1000 / o.executed as i128, spec.price_decimals + 3)
    };
    let fee_detail = Obj::new().s(&spec.quote, &trim(f.fees, AMT)).end();
    Obj::new()
        .s("symbol", &o.symbol)
        .s("orderId", c.order_id)
        .s("side", side(o.buy))
        .s("orderType", order_type(o))
        .s("cancelType", f.cancel_type)
        .s("price", &px(spec, o.price))
        .s("qty", &qty(spec, o.qty))
        .s("orderIv", "")
        .s("timeInForce", o.tif)
        .s("orderStatus", o.status)
        .s("orderLinkId", &o.client_id)
        .s("lastPriceOnCreated", &px(spec, f.last_on_created))
        .raw("reduceOnly", f.reduce_only)
        .s("leavesQty", &qty(spec, leaves))
        .s("leavesValue", &trim(notional(spec, o.price, leaves), AMT))
        .s("cumExecQty", &qty(spec, o.executed))
        .s("cumExecValue", &trim(o.cum_notional, AMT))
        .s("avgPrice", &avg)
        .s("blockTradeId", "")
        .raw("positionIdx", 0)
        .s("cumExecFee", &trim(f.fees, AMT))
        .s("closedPnl", &trim(f.pnl, AMT))
        .s("createdTime", &o.time_ms.to_string())
        .s("updatedTime", &c.now.to_string())
        .s("rejectReason", f.reject)
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
pub(crate) fn exec_item(c: &Ctx<'_>, e: &Exec, seq: u64) -> String {
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
pub(crate) fn position_item(c: &Ctx<'_>, st: &HubState, acct: usize, seq: u64) -> String {
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
    let im = value / LEVERAGE;
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

/// An account's margin in `coin` (`AMT`): wallet balance, unrealized profit at
/// the mid prices, and the initial (10x) and maintenance (0.5 %) margins of
/// its positions, and the initial margin of its open orders that are not
/// reduce-only (`order_im`). `skip` leaves one open order out (an amend
/// replaces it).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Margin {
    pub wallet: i128,
    pub upl: i128,
    pub im: i128,
    pub mm: i128,
    pub realized: i128,
    pub order_im: i128,
}

impl Margin {
    /// What new orders may still use: equity less every initial margin.
    pub(crate) fn available(&self) -> i128 {
        self.wallet + self.upl - self.im - self.order_im
    }
}

pub(crate) fn margin(
    st: &HubState,
    acct: usize,
    coin: &str,
    reduce_only: &dyn Fn(u64) -> bool,
    skip: Option<u64>,
) -> Margin {
    let a = &st.accounts.list[acct];
    let mut m = Margin { wallet: a.balances.get(coin).map_or(0, |b| b.free), ..Margin::default() };
    for (sym, p) in &a.positions {
        let Some(s) = st.market.symbol(sym) else { continue };
        if s.spec.quote != coin {
            continue;
        }
        let mark = s.mid();
        m.upl += unrealized(MarketKind::UsdM, &s.spec, p.amt, p.cost, mark);
        let value = notional(&s.spec, mark, p.amt.abs());
        m.im += value / LEVERAGE;
        m.mm += value / 200;
        m.realized += p.realized;
    }
    for o in a.open.values() {
        if Some(o.id) == skip || reduce_only(o.id) {
            continue;
        }
        let Some(s) = st.market.symbol(&o.symbol) else { continue };
        if s.spec.quote == coin {
            m.order_im += notional(&s.spec, o.price, o.qty - o.executed) / LEVERAGE;
        }
    }
    m
}

/// The `wallet` item (a unified account): the settlement coin, with the
/// unrealized profit and margins of every position and open order of the account.
pub(crate) fn wallet_item(m: &Margin, coin: &str) -> String {
    let equity = m.wallet + m.upl;
    let t = |v: i128| trim(v, AMT);
    let c = Obj::new()
        .s("coin", coin)
        .s("equity", &t(equity))
        .s("usdValue", &t(equity))
        .s("walletBalance", &t(m.wallet))
        .s("availableToWithdraw", &t((m.wallet - m.im - m.order_im).max(0)))
        .s("availableToBorrow", "")
        .s("borrowAmount", "0")
        .s("accruedInterest", "0")
        .s("totalOrderIM", &t(m.order_im))
        .s("totalPositionIM", &t(m.im))
        .s("totalPositionMM", &t(m.mm))
        .s("unrealisedPnl", &t(m.upl))
        .s("cumRealisedPnl", &t(m.realized))
        .s("bonus", "0")
        .raw("collateralSwitch", true)
        .raw("marginCollateral", true)
        .s("locked", "0")
        .s("spotHedgingQty", "0")
        .s("spotBorrow", "0")
        .end();
    let rate = |v: i128| if equity <= 0 { "0".to_string() } else { trim(v * 10_000 / equity, 4) };
    Obj::new()
        .s("accountIMRate", &rate(m.im))
        .s("accountIMRateByMp", &rate(m.im))
        .s("accountMMRate", &rate(m.mm))
        .s("accountMMRateByMp", &rate(m.mm))
        .s("totalEquity", &t(equity))
        .s("totalWalletBalance", &t(m.wallet))
        .s("totalMarginBalance", &t(equity))
        .s("totalAvailableBalance", &t(m.available().max(0)))
        .s("totalPerpUPL", &t(m.upl))
        .s("totalInitialMargin", &t(m.im + m.order_im))
        .s("totalInitialMarginByMp", &t(m.im + m.order_im))
        .s("totalMaintenanceMargin", &t(m.mm))
        .s("totalMaintenanceMarginByMp", &t(m.mm))
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
        assert!(is_open("New") && is_open("PartiallyFilled") && !is_open("Cancelled"));
    }
}
