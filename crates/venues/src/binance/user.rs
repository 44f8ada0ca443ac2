//! Binance private user data: typed wire structs (PROTOCOLS.md §1.6, §2.5,
//! §3) and their normalization into `order_update`, `user_trade`,
//! `order_list_update`, `balance_update`, `position_update` and
//! `user_stream_ended` events.
//!
//! The payloads arrive bare (listenKey streams), in the combined envelope, or
//! wrapped by the spot WebSocket API as `{"subscriptionId":N,"event":{...}}`;
//! `normalize.rs` unwraps all three and calls [`Cx::user`] with the payload
//! object. Spot payloads (`executionReport`, `outboundAccountPosition`,
//! `balanceUpdate`, `externalLockUpdate`, `listStatus`) are decoded on the spot
//! market, futures payloads (`ORDER_TRADE_UPDATE`, `ACCOUNT_UPDATE`,
//! `TRADE_LITE`) on USDⓈ-M and COIN-M, and the end-of-stream notices
//! (`listenKeyExpired`, `eventStreamTerminated`) everywhere. On other markets
//! those names stay `unknown` (options user data has other shapes).
//!
//! `exchange_ts` is the transaction time `T` where the payload has one,
//! otherwise the event time `E`. Times are accepted as JSON numbers or as
//! strings of digits: USDⓈ-M sends `listenKeyExpired` with `"E":"1699596037418"`.
//! The listen key in `listenKeyExpired` is a credential and is not copied into
//! the event.

use std::fmt;

use ferrofeed_model::event::{
    Balance, BalanceUpdate, Event, EventKind, Fill, ListOrder, OrderListUpdate, OrderUpdate, PositionSide,
    PositionUpdate, Side, UserTrade,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::Market;
use super::normalize::{Cx, DecodeError, parse};
use super::wire::{AnyId, Dec, MaybeText, Text};

/// A time in milliseconds, sent as a JSON integer or as a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Millis(pub(crate) i64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time in milliseconds (integer or string of digits)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                Ok(Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                i64::try_from(v).map(Millis).map_err(|_| E::custom(format_args!("time {v} ms out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
                v.parse::<i64>().map(Millis).map_err(|_| E::custom(format_args!("invalid time {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Spot `executionReport` (only the fields normalization uses).
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct ExecutionReportW<'a> {
    #[serde(default)]
    pub E: Option<Millis>,
    /// Transaction time.
    #[serde(default)]
    pub T: Option<Millis>,
    #[serde(borrow)]
    pub s: Text<'a>,
    /// Client order id.
    #[serde(borrow)]
    pub c: Text<'a>,
    #[serde(borrow)]
    pub S: Text<'a>,
    /// Order type.
    #[serde(borrow)]
    pub o: Text<'a>,
    /// Time in force.
    #[serde(default, borrow)]
    pub f: Option<Text<'a>>,
    pub q: Dec,
    pub p: Dec,
    /// Stop price.
    #[serde(default)]
    pub P: Option<Dec>,
    /// Order list id, `-1` when none.
    #[serde(default)]
    pub g: Option<i64>,
    /// Original client order id (cancels), `""` otherwise.
    #[serde(default, borrow)]
    pub C: MaybeText<'a>,
    /// Execution type.
    #[serde(borrow)]
    pub x: Text<'a>,
    /// Order status.
    #[serde(borrow)]
    pub X: Text<'a>,
    /// Reject reason, `NONE` when none.
    #[serde(default, borrow)]
    pub r: Option<Text<'a>>,
    /// Order id.
    pub i: AnyId,
    /// Last executed quantity.
    pub l: Dec,
    /// Cumulative filled quantity.
    pub z: Dec,
    /// Last executed price.
    pub L: Dec,
    /// Commission of the last fill.
    #[serde(default)]
    pub n: Option<Dec>,
    /// Commission asset (`null` without a fill).
    #[serde(default, borrow)]
    pub N: Option<Text<'a>>,
    /// Trade id, `-1` without a fill.
    #[serde(default)]
    pub t: Option<i64>,
    /// The fill was as maker.
    #[serde(default)]
    pub m: Option<bool>,
    /// Cumulative quote quantity.
    #[serde(default)]
    pub Z: Option<Dec>,
}

/// Futures `ORDER_TRADE_UPDATE`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct OrderTradeUpdateW<'a> {
    #[serde(default)]
    pub E: Option<Millis>,
    #[serde(default)]
    pub T: Option<Millis>,
    #[serde(borrow)]
    pub o: FuturesOrderW<'a>,
}

/// The `o` object of an `ORDER_TRADE_UPDATE`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct FuturesOrderW<'a> {
    #[serde(borrow)]
    pub s: Text<'a>,
    #[serde(borrow)]
    pub c: Text<'a>,
    #[serde(borrow)]
    pub S: Text<'a>,
    #[serde(borrow)]
    pub o: Text<'a>,
    #[serde(default, borrow)]
    pub f: Option<Text<'a>>,
    pub q: Dec,
    pub p: Dec,
    /// Average price.
    #[serde(default)]
    pub ap: Option<Dec>,
    /// Stop price.
    #[serde(default)]
    pub sp: Option<Dec>,
    #[serde(borrow)]
    pub x: Text<'a>,
    #[serde(borrow)]
    pub X: Text<'a>,
    pub i: AnyId,
    pub l: Dec,
    pub z: Dec,
    pub L: Dec,
    /// Commission asset; not sent without a commission.
    #[serde(default, borrow)]
    pub N: Option<Text<'a>>,
    /// Commission; not sent without a commission.
    #[serde(default)]
    pub n: Option<Dec>,
    #[serde(default)]
    pub t: Option<i64>,
    #[serde(default)]
    pub m: Option<bool>,
    /// Reduce only.
    #[serde(default)]
    pub R: Option<bool>,
    /// Position side.
    #[serde(default, borrow)]
    pub ps: Option<Text<'a>>,
    /// Close-all conditional order.
    #[serde(default)]
    pub cp: Option<bool>,
    /// Trailing-stop activation price.
    #[serde(default)]
    pub AP: Option<Dec>,
    /// Trailing-stop callback rate.
    #[serde(default)]
    pub cr: Option<Dec>,
    /// Realized profit of the trade.
    #[serde(default)]
    pub rp: Option<Dec>,
}

/// Futures `TRADE_LITE`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct TradeLiteW<'a> {
    #[serde(default)]
    pub E: Option<Millis>,
    #[serde(default)]
    pub T: Option<Millis>,
    #[serde(borrow)]
    pub s: Text<'a>,
    /// Order quantity.
    pub q: Dec,
    /// Order price.
    pub p: Dec,
    pub m: bool,
    #[serde(borrow)]
    pub c: Text<'a>,
    #[serde(borrow)]
    pub S: Text<'a>,
    /// Fill price.
    pub L: Dec,
    /// Fill quantity.
    pub l: Dec,
    pub t: AnyId,
    pub i: AnyId,
}

/// Futures `ACCOUNT_UPDATE`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct AccountUpdateW<'a> {
    #[serde(default)]
    pub E: Option<Millis>,
    #[serde(default)]
    pub T: Option<Millis>,
    #[serde(borrow)]
    pub a: AccountW<'a>,
}

/// The `a` object of an `ACCOUNT_UPDATE`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct AccountW<'a> {
    /// Reason (always sent; required, so that a malformed `a` fails).
    #[serde(borrow)]
    pub m: Text<'a>,
    #[serde(default, borrow)]
    pub B: Vec<FuturesBalanceW<'a>>,
    #[serde(default, borrow)]
    pub P: Vec<FuturesPositionW<'a>>,
}

/// One balance of an `ACCOUNT_UPDATE`.
#[derive(Debug, Deserialize)]
pub(crate) struct FuturesBalanceW<'a> {
    #[serde(borrow)]
    pub a: Text<'a>,
    pub wb: Dec,
    #[serde(default)]
    pub cw: Option<Dec>,
    #[serde(default)]
    pub bc: Option<Dec>,
}

/// One position of an `ACCOUNT_UPDATE`.
#[derive(Debug, Deserialize)]
pub(crate) struct FuturesPositionW<'a> {
    #[serde(borrow)]
    pub s: Text<'a>,
    pub pa: Dec,
    pub ep: Dec,
    #[serde(default)]
    pub bep: Option<Dec>,
    #[serde(default)]
    pub cr: Option<Dec>,
    pub up: Dec,
    #[serde(default, borrow)]
    pub mt: Option<Text<'a>>,
    #[serde(default)]
    pub iw: Option<Dec>,
    #[serde(borrow)]
    pub ps: Text<'a>,
}

/// Spot `outboundAccountPosition`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct AccountPositionW<'a> {
    #[serde(default)]
    pub E: Option<Millis>,
    #[serde(borrow)]
    pub B: Vec<SpotBalanceW<'a>>,
}

/// One balance of an `outboundAccountPosition`.
#[derive(Debug, Deserialize)]
pub(crate) struct SpotBalanceW<'a> {
    #[serde(borrow)]
    pub a: Text<'a>,
    pub f: Dec,
    pub l: Dec,
}

/// Spot `balanceUpdate` and `externalLockUpdate` (same shape).
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct BalanceDeltaW<'a> {
    #[serde(default)]
    pub E: Option<Millis>,
    /// Clear time.
    #[serde(default)]
    pub T: Option<Millis>,
    #[serde(borrow)]
    pub a: Text<'a>,
    pub d: Dec,
}

/// Spot `listStatus`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct ListStatusW<'a> {
    #[serde(default)]
    pub E: Option<Millis>,
    #[serde(default)]
    pub T: Option<Millis>,
    #[serde(borrow)]
    pub s: Text<'a>,
    /// Order list id.
    pub g: i64,
    /// Contingency type.
    #[serde(borrow)]
    pub c: Text<'a>,
    /// List status type.
    #[serde(borrow)]
    pub l: Text<'a>,
    /// List order status.
    #[serde(borrow)]
    pub L: Text<'a>,
    #[serde(default, borrow)]
    pub r: Option<Text<'a>>,
    /// List client order id.
    #[serde(borrow)]
    pub C: Text<'a>,
    #[serde(borrow)]
    pub O: Vec<ListOrderW<'a>>,
}

/// One order of a `listStatus`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListOrderW<'a> {
    #[serde(borrow)]
    pub s: Text<'a>,
    pub i: AnyId,
    #[serde(borrow)]
    pub c: Text<'a>,
}

/// `listenKeyExpired` and `eventStreamTerminated` (the listen key is not read).
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct StreamEndW {
    #[serde(default)]
    pub E: Option<Millis>,
}

fn order_side(s: &str) -> Result<Side, String> {
    match s {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        other => Err(format!("unknown side S={other:?}")),
    }
}

fn position_side(s: &str) -> Result<PositionSide, String> {
    match s {
        "BOTH" => Ok(PositionSide::Both),
        "LONG" => Ok(PositionSide::Long),
        "SHORT" => Ok(PositionSide::Short),
        other => Err(format!("unknown position side ps={other:?}")),
    }
}

/// A venue string that means "none" when it is `NONE` or empty.
fn named(t: Option<&Text<'_>>) -> Option<String> {
    t.map(Text::as_str).filter(|s| !s.is_empty() && *s != "NONE").map(str::to_owned)
}

/// An asset name; `null` (spot, no commission) or `""` is none.
fn asset(t: Option<&Text<'_>>) -> Option<String> {
    t.map(Text::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn nonzero(d: Option<Dec>) -> Option<Decimal> {
    d.map(|d| d.0).filter(|d| !d.is_zero())
}

fn upper(t: &Text<'_>) -> String {
    t.as_str().to_ascii_uppercase()
}

fn ms_of(t: Option<Millis>, e: Option<Millis>) -> Option<i64> {
    t.or(e).map(|m| m.0)
}

impl Cx<'_> {
    /// Decodes the user-data payload `text` of event type `e` into `out`.
    /// `Ok(false)`: not a user-data event type of this market (the caller
    /// makes it `unknown`).
    pub(super) fn user(&self, e: &str, text: &str, out: &mut Vec<Event>) -> Result<bool, DecodeError> {
        let spot = self.market == Market::Spot;
        let futures = matches!(self.market, Market::UsdM | Market::CoinM);
        match e {
            "executionReport" if spot => {
                let ev = self.execution_report(text)?;
                // A fill is also a `user_trade`, as on the other venues (spot
                // and margin have no TRADE_LITE).
                let trade = fill_trade(&ev);
                out.push(ev);
                out.extend(trade);
            }
            "outboundAccountPosition" if spot => out.push(self.account_position(text)?),
            "balanceUpdate" if spot => out.push(self.balance_delta(text, "balanceUpdate", false)?),
            "externalLockUpdate" if spot => out.push(self.balance_delta(text, "externalLockUpdate", true)?),
            "listStatus" if spot => out.push(self.list_status(text)?),
            "ORDER_TRADE_UPDATE" if futures => out.push(self.order_trade_update(text)?),
            "TRADE_LITE" if futures => out.push(self.trade_lite(text)?),
            "ACCOUNT_UPDATE" if futures => self.account_update(text, out)?,
            "listenKeyExpired" => out.push(self.stream_end(text, "listenKeyExpired")?),
            "eventStreamTerminated" => out.push(self.stream_end(text, "eventStreamTerminated")?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn execution_report(&self, text: &str) -> Result<Event, DecodeError> {
        // (The `user_trade` of a fill is built from it by `fill_trade`.)
        const W: &str = "executionReport";
        let w: ExecutionReportW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let side = order_side(w.S.as_str()).map_err(|r| self.invalid(W, r))?;
        let fill = if w.l.0 > Decimal::ZERO {
            let trade_id =
                w.t.filter(|t| *t >= 0).ok_or_else(|| self.invalid(W, "fill without trade id `t`".into()))?;
            let maker = w.m.ok_or_else(|| self.invalid(W, "fill without field `m`".into()))?;
            Some(Fill {
                trade_id: trade_id.to_string(),
                price: w.L.0,
                qty: w.l.0,
                fee: w.n.map_or(Decimal::ZERO, |d| d.0),
                fee_asset: asset(w.N.as_ref()),
                maker,
            })
        } else {
            None
        };
        let ts = self.ms(ms_of(w.T, w.E), W)?;
        Ok(self.event(
            EventKind::OrderUpdate(Box::new(OrderUpdate {
                order_id: w.i.0,
                client_order_id: w.c.as_str().to_owned(),
                orig_client_order_id: named(w.C.0.as_ref()),
                side,
                order_type: w.o.as_str().to_owned(),
                time_in_force: w.f.as_ref().map(|t| t.as_str().to_owned()),
                execution_type: w.x.as_str().to_owned(),
                status: w.X.as_str().to_owned(),
                price: Some(w.p.0),
                qty: w.q.0,
                filled_qty: w.z.0,
                avg_price: None,
                filled_quote_qty: w.Z.map(|d| d.0),
                stop_price: nonzero(w.P),
                fill,
                reject_reason: named(w.r.as_ref()),
                order_list_id: w.g.filter(|g| *g >= 0),
                reduce_only: None,
                position_side: None,
                close_position: None,
                realized_pnl: None,
                activation_price: None,
                callback_rate: None,
            })),
            Some(upper(&w.s)),
            ts,
        ))
    }

    fn order_trade_update(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "ORDER_TRADE_UPDATE";
        let w: OrderTradeUpdateW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let o = w.o;
        let side = order_side(o.S.as_str()).map_err(|r| self.invalid(W, r))?;
        let position_side =
            o.ps.as_ref().map(|p| position_side(p.as_str())).transpose().map_err(|r| self.invalid(W, r))?;
        let fill = if o.l.0 > Decimal::ZERO {
            let trade_id = o.t.ok_or_else(|| self.invalid(W, "fill without trade id `t`".into()))?;
            let maker = o.m.ok_or_else(|| self.invalid(W, "fill without field `m`".into()))?;
            Some(Fill {
                trade_id: trade_id.to_string(),
                price: o.L.0,
                qty: o.l.0,
                fee: o.n.map_or(Decimal::ZERO, |d| d.0),
                fee_asset: asset(o.N.as_ref()),
                maker,
            })
        } else {
            None
        };
        let filled = o.z.0 > Decimal::ZERO;
        let ts = self.ms(ms_of(w.T, w.E), W)?;
        Ok(self.event(
            EventKind::OrderUpdate(Box::new(OrderUpdate {
                order_id: o.i.0,
                client_order_id: o.c.as_str().to_owned(),
                orig_client_order_id: None,
                side,
                order_type: o.o.as_str().to_owned(),
                time_in_force: o.f.as_ref().map(|t| t.as_str().to_owned()),
                execution_type: o.x.as_str().to_owned(),
                status: o.X.as_str().to_owned(),
                price: Some(o.p.0),
                qty: o.q.0,
                filled_qty: o.z.0,
                avg_price: o.ap.map(|d| d.0).filter(|_| filled),
                filled_quote_qty: None,
                stop_price: nonzero(o.sp),
                fill,
                reject_reason: None,
                order_list_id: None,
                reduce_only: o.R,
                position_side,
                close_position: o.cp,
                realized_pnl: o.rp.map(|d| d.0),
                activation_price: nonzero(o.AP),
                callback_rate: nonzero(o.cr),
            })),
            Some(upper(&o.s)),
            ts,
        ))
    }

    fn trade_lite(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "TRADE_LITE";
        let w: TradeLiteW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let side = order_side(w.S.as_str()).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(ms_of(w.T, w.E), W)?;
        Ok(self.event(
            EventKind::UserTrade(Box::new(UserTrade {
                order_id: w.i.0,
                client_order_id: w.c.as_str().to_owned(),
                side,
                trade_id: w.t.0,
                price: w.L.0,
                qty: w.l.0,
                maker: w.m,
                order_price: Some(w.p.0),
                order_qty: Some(w.q.0),
                // TRADE_LITE carries no commission; the ORDER_TRADE_UPDATE of
                // the same fill does (`fill.fee`).
                fee: None,
                fee_asset: None,
            })),
            Some(upper(&w.s)),
            ts,
        ))
    }

    /// One `balance_update` (when the payload lists balances, or lists
    /// nothing at all) and one `position_update` per position.
    fn account_update(&self, text: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        const W: &str = "ACCOUNT_UPDATE";
        let w: AccountUpdateW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(ms_of(w.T, w.E), W)?;
        let reason = Some(w.a.m.as_str().to_owned());
        let mut positions = Vec::with_capacity(w.a.P.len());
        for p in &w.a.P {
            let position_side = position_side(p.ps.as_str()).map_err(|r| self.invalid(W, r))?;
            positions.push(self.event(
                EventKind::PositionUpdate(Box::new(PositionUpdate {
                    reason: reason.clone(),
                    position_side,
                    amount: p.pa.0,
                    entry_price: Some(p.ep.0),
                    breakeven_price: p.bep.map(|d| d.0),
                    unrealized_pnl: Some(p.up.0),
                    realized_pnl: p.cr.map(|d| d.0),
                    margin_type: p.mt.as_ref().map(|t| t.as_str().to_owned()),
                    isolated_wallet: p.iw.map(|d| d.0),
                })),
                Some(upper(&p.s)),
                ts,
            ));
        }
        if !w.a.B.is_empty() || positions.is_empty() {
            let balances =
                w.a.B
                    .iter()
                    .map(|b| Balance {
                        asset: b.a.as_str().to_owned(),
                        free: None,
                        locked: None,
                        delta: b.bc.map(|d| d.0),
                        locked_delta: None,
                        wallet_balance: Some(b.wb.0),
                        cross_wallet_balance: b.cw.map(|d| d.0),
                    })
                    .collect();
            out.push(self.event(EventKind::BalanceUpdate(BalanceUpdate { reason, balances }), None, ts));
        }
        out.append(&mut positions);
        Ok(())
    }

    fn account_position(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "outboundAccountPosition";
        let w: AccountPositionW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.E.map(|m| m.0), W)?;
        let balances =
            w.B.iter()
                .map(|b| Balance {
                    asset: b.a.as_str().to_owned(),
                    free: Some(b.f.0),
                    locked: Some(b.l.0),
                    delta: None,
                    locked_delta: None,
                    wallet_balance: None,
                    cross_wallet_balance: None,
                })
                .collect();
        Ok(self.event(EventKind::BalanceUpdate(BalanceUpdate { reason: None, balances }), None, ts))
    }

    /// `balanceUpdate` (`d` is a change of the balance) and
    /// `externalLockUpdate` (`d` is a change of the externally locked part).
    fn balance_delta(&self, text: &str, what: &'static str, lock: bool) -> Result<Event, DecodeError> {
        let w: BalanceDeltaW<'_> = parse(text).map_err(|r| self.invalid(what, r))?;
        let ts = self.ms(ms_of(w.T, w.E), what)?;
        let balance = Balance {
            asset: w.a.as_str().to_owned(),
            free: None,
            locked: None,
            delta: (!lock).then_some(w.d.0),
            locked_delta: lock.then_some(w.d.0),
            wallet_balance: None,
            cross_wallet_balance: None,
        };
        Ok(self.event(EventKind::BalanceUpdate(BalanceUpdate { reason: None, balances: vec![balance] }), None, ts))
    }

    fn list_status(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "listStatus";
        let w: ListStatusW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(ms_of(w.T, w.E), W)?;
        let orders =
            w.O.into_iter()
                .map(|o| ListOrder { symbol: upper(&o.s), order_id: o.i.0, client_order_id: o.c.as_str().to_owned() })
                .collect();
        Ok(self.event(
            EventKind::OrderListUpdate(Box::new(OrderListUpdate {
                order_list_id: w.g,
                list_client_order_id: w.C.as_str().to_owned(),
                contingency_type: w.c.as_str().to_owned(),
                list_status: w.l.as_str().to_owned(),
                list_order_status: w.L.as_str().to_owned(),
                reject_reason: named(w.r.as_ref()),
                orders,
            })),
            Some(upper(&w.s)),
            ts,
        ))
    }

    fn stream_end(&self, text: &str, what: &'static str) -> Result<Event, DecodeError> {
        let w: StreamEndW = parse(text).map_err(|r| self.invalid(what, r))?;
        let ts = self.ms(w.E.map(|m| m.0), what)?;
        Ok(self.event(EventKind::UserStreamEnded { reason: what.to_owned() }, None, ts))
    }
}

/// The `user_trade` of an `order_update` that carries a fill.
fn fill_trade(ev: &Event) -> Option<Event> {
    let EventKind::OrderUpdate(o) = &ev.kind else { return None };
    let f = o.fill.as_ref()?;
    Some(Event {
        kind: EventKind::UserTrade(Box::new(UserTrade {
            order_id: o.order_id.clone(),
            client_order_id: o.client_order_id.clone(),
            side: o.side,
            trade_id: f.trade_id.clone(),
            price: f.price,
            qty: f.qty,
            maker: f.maker,
            order_price: o.price.filter(|p| !p.is_zero()),
            order_qty: Some(o.qty),
            fee: Some(f.fee),
            fee_asset: f.fee_asset.clone(),
        })),
        ..ev.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_accepts_numbers_and_digit_strings() {
        let m: Millis = serde_json::from_str("1699596037418").expect("number");
        assert_eq!(m, Millis(1_699_596_037_418));
        let m: Millis = serde_json::from_str("\"1699596037418\"").expect("string");
        assert_eq!(m, Millis(1_699_596_037_418));
        assert!(serde_json::from_str::<Millis>("\"soon\"").is_err());
        assert!(serde_json::from_str::<Millis>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<Millis>("1.5").is_err());
        assert!(serde_json::from_str::<Millis>("null").is_err());
    }

    #[test]
    fn none_and_zero_are_absent() {
        assert_eq!(named(Some(&Text("NONE".into()))), None);
        assert_eq!(named(Some(&Text("".into()))), None);
        assert_eq!(named(Some(&Text("INSUFFICIENT_BALANCE".into()))).as_deref(), Some("INSUFFICIENT_BALANCE"));
        assert_eq!(nonzero(Some(Dec(Decimal::ZERO))), None);
        assert_eq!(nonzero(Some(Dec(Decimal::ONE))), Some(Decimal::ONE));
        assert_eq!(position_side("LONG"), Ok(PositionSide::Long));
        assert!(position_side("long").is_err());
        assert!(order_side("HOLD").is_err());
    }
}
