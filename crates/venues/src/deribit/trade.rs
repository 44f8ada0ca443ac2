//! The order API over Deribit's WebSocket ([`TradingSpec`]; docs.deribit.com
//! `api-reference/trading`).
//!
//! | request | method | params |
//! |---|---|---|
//! | place | `private/buy`, `private/sell` | `instrument_name`, `amount`, `type` (`limit`, `market`), `price`, `label` (the client order id, ≤ 64 characters), `time_in_force` (`good_til_cancelled`, `immediate_or_cancel`, `fill_or_kill`), `post_only`, `reduce_only` |
//! | amend | `private/edit` (`order_id`) or `private/edit_by_label` (`label`, `instrument_name`) | `amount` (the venue requires it), `price` |
//! | cancel | `private/cancel` (`order_id`) or `private/cancel_by_label` (`label`: every open order with it) | |
//! | cancel all | `private/cancel_all`, `private/cancel_all_by_instrument` (`instrument_name`) | |
//! | open orders | `private/get_open_orders_by_instrument` (`instrument_name`) | |
//!
//! Amounts and prices are written as JSON numbers from the decimal's exact
//! text, never through `f64`. Answers: `{order, trades}` for place and
//! amend (the trades become fills with the order's amount as
//! `order_qty`), the order for a cancel by id, the number of cancelled
//! orders for cancel all and cancel by label (`CancelledAll`), a list of
//! orders for open orders. Errors become a [`VenueRefusal`] whose
//! [`RefusalKind`] comes from the code (PROTOCOLS.md §6.8).

use std::sync::Arc;

use ferrofeed_model::event::{MarketType, Side, Venue};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::value::RawValue;

use super::normalize::{order_update, parse, user_trade};
use super::spec::Deribit;
use super::wire::{Envelope, OrderResultW, OrderW, UserTradeW};
use super::{Grant, Market};
use crate::auth::{Clock, Credentials};
use crate::env::Environment;
use crate::seam::SeamError;
use crate::trading::{
    OrderAnswer, OrderRef, OrderRequest, OrderType, RefusalKind, TimeInForce, TradeError, TradingPlan, TradingSpec,
    VenueRefusal,
};

/// The longest label Deribit takes.
pub const MAX_LABEL: usize = 64;

/// Deribit's order API.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeribitTrading;

/// The kind of refusal a Deribit error code (or name) is (§6.8).
pub fn refusal_kind(code: i64, message: &str) -> RefusalKind {
    match (code, message) {
        (10009, _) | (_, "not_enough_funds") => RefusalKind::InsufficientFunds,
        // 11044 `not_open_order`: the order exists but is closed (filled or cancelled).
        (10004 | 11044, _) | (_, "order_not_found" | "not_open_order") => RefusalKind::OrderNotFound,
        (_, "post_only_reject") => RefusalKind::WouldTake,
        (10028 | 10047, _) | (_, "too_many_requests" | "matching_engine_queue_full") => RefusalKind::RateLimited,
        (10000 | 13004 | 13009, _) | (_, "unauthorized" | "invalid_credentials" | "forbidden") => {
            RefusalKind::Unauthorized
        }
        (13019, _) | (_, "orderbook_closed" | "instrument_not_found" | "not_open") => RefusalKind::UnknownInstrument,
        (10002 | -32602, _) | (_, "qty_too_low" | "price_too_low" | "price_too_high" | "Invalid params") => {
            RefusalKind::InvalidOrder
        }
        _ => RefusalKind::Other,
    }
}

fn num(d: Decimal) -> Box<RawValue> {
    // A Decimal prints as plain digits (no exponent): a valid JSON number.
    RawValue::from_string(d.to_string()).unwrap_or_else(|_| unreachable!("a decimal prints as a JSON number"))
}

#[derive(Serialize)]
struct Frame<'a, P> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: P,
}

fn frame<P: Serialize>(id: u64, method: &str, params: P, request: &'static str) -> Result<String, TradeError> {
    serde_json::to_string(&Frame { jsonrpc: "2.0", id, method, params })
        .map_err(|e| TradeError::Invalid { request, reason: e.to_string() })
}

#[derive(Serialize)]
struct PlaceP<'a> {
    instrument_name: &'a str,
    amount: Box<RawValue>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    time_in_force: &'static str,
    post_only: bool,
    reduce_only: bool,
}

#[derive(Serialize)]
struct EditP<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instrument_name: Option<&'a str>,
    amount: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<Box<RawValue>>,
}

#[derive(Serialize)]
struct ByIdP<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instrument_name: Option<&'a str>,
}

#[derive(Serialize)]
struct Empty {}

fn instrument(request: &'static str, symbol: &str) -> Result<String, TradeError> {
    crate::seam::stream_symbol(symbol)
        .map(str::to_ascii_uppercase)
        .map_err(|_| TradeError::Invalid { request, reason: format!("invalid instrument {symbol:?}") })
}

fn label(request: &'static str, l: &str) -> Result<(), TradeError> {
    let n = l.chars().count();
    if n == 0 || n > MAX_LABEL {
        return Err(TradeError::Invalid {
            request,
            reason: format!("a Deribit label has 1 to {MAX_LABEL} characters, got {n}"),
        });
    }
    Ok(())
}

fn positive(request: &'static str, what: &str, v: Decimal) -> Result<(), TradeError> {
    if v <= Decimal::ZERO {
        return Err(TradeError::Invalid { request, reason: format!("{what} must be positive, got {v}") });
    }
    Ok(())
}

impl TradingSpec for DeribitTrading {
    fn venue(&self) -> Venue {
        Venue::Deribit
    }

    fn markets(&self) -> &'static [MarketType] {
        &[MarketType::Inverse, MarketType::Linear, MarketType::Options]
    }

    fn plan(
        &self,
        _market: MarketType,
        account: &str,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<TradingPlan, SeamError> {
        let mut session = Deribit.session_with(account, env, credentials, clock, Grant::ClientSignature)?;
        // The order connection carries requests only.
        session.streams.clear();
        Ok(TradingPlan { market: session.market, session, signer: None })
    }

    fn encode(&self, _plan: &TradingPlan, id: u64, request: &OrderRequest) -> Result<String, TradeError> {
        let name = request.name();
        match request {
            OrderRequest::Place(p) => {
                let inst = instrument(name, &p.symbol)?;
                positive(name, "qty", p.qty)?;
                let kind = match (p.order_type, p.price) {
                    (OrderType::Limit, Some(px)) => {
                        positive(name, "price", px)?;
                        "limit"
                    }
                    (OrderType::Limit, None) => {
                        return Err(TradeError::Invalid {
                            request: name,
                            reason: "a limit order needs a price".into(),
                        });
                    }
                    (OrderType::Market, Some(_)) => {
                        return Err(TradeError::Invalid {
                            request: name,
                            reason: "a market order takes no price".into(),
                        });
                    }
                    (OrderType::Market, None) => "market",
                };
                if p.post_only && (p.order_type == OrderType::Market || p.time_in_force != TimeInForce::Gtc) {
                    return Err(TradeError::Invalid {
                        request: name,
                        reason: "post only is for good-til-cancelled limit orders".into(),
                    });
                }
                if let Some(l) = &p.client_order_id {
                    label(name, l)?;
                }
                let params = PlaceP {
                    instrument_name: &inst,
                    amount: num(p.qty),
                    kind,
                    price: p.price.map(num),
                    label: p.client_order_id.as_deref(),
                    time_in_force: match p.time_in_force {
                        TimeInForce::Gtc => "good_til_cancelled",
                        TimeInForce::Ioc => "immediate_or_cancel",
                        TimeInForce::Fok => "fill_or_kill",
                    },
                    post_only: p.post_only,
                    reduce_only: p.reduce_only,
                };
                let method = if p.side == Side::Buy { "private/buy" } else { "private/sell" };
                frame(id, method, params, name)
            }
            OrderRequest::Amend(a) => {
                let inst = instrument(name, &a.symbol)?;
                let Some(qty) = a.qty else {
                    return Err(TradeError::Invalid {
                        request: name,
                        reason: "Deribit's edit needs the order's amount (qty), even when only the price changes"
                            .into(),
                    });
                };
                positive(name, "qty", qty)?;
                if let Some(px) = a.price {
                    positive(name, "price", px)?;
                }
                let (method, params) = match &a.order {
                    OrderRef::OrderId(oid) if !oid.is_empty() => (
                        "private/edit",
                        EditP {
                            order_id: Some(oid),
                            label: None,
                            instrument_name: None,
                            amount: num(qty),
                            price: a.price.map(num),
                        },
                    ),
                    OrderRef::ClientOrderId(l) => {
                        label(name, l)?;
                        (
                            "private/edit_by_label",
                            EditP {
                                order_id: None,
                                label: Some(l),
                                instrument_name: Some(&inst),
                                amount: num(qty),
                                price: a.price.map(num),
                            },
                        )
                    }
                    OrderRef::OrderId(_) => {
                        return Err(TradeError::Invalid { request: name, reason: "empty order id".into() });
                    }
                };
                frame(id, method, params, name)
            }
            OrderRequest::Cancel(c) => {
                instrument(name, &c.symbol)?;
                match &c.order {
                    OrderRef::OrderId(oid) if !oid.is_empty() => frame(
                        id,
                        "private/cancel",
                        ByIdP { order_id: Some(oid), label: None, instrument_name: None },
                        name,
                    ),
                    OrderRef::ClientOrderId(l) => {
                        label(name, l)?;
                        frame(
                            id,
                            "private/cancel_by_label",
                            ByIdP { order_id: None, label: Some(l), instrument_name: None },
                            name,
                        )
                    }
                    OrderRef::OrderId(_) => Err(TradeError::Invalid { request: name, reason: "empty order id".into() }),
                }
            }
            OrderRequest::CancelAll { symbol: None } => frame(id, "private/cancel_all", Empty {}, name),
            OrderRequest::CancelAll { symbol: Some(s) } => {
                let inst = instrument(name, s)?;
                let p = ByIdP { order_id: None, label: None, instrument_name: Some(&inst) };
                frame(id, "private/cancel_all_by_instrument", p, name)
            }
            OrderRequest::OpenOrders { symbol } => {
                let inst = instrument(name, symbol)?;
                let p = ByIdP { order_id: None, label: None, instrument_name: Some(&inst) };
                frame(id, "private/get_open_orders_by_instrument", p, name)
            }
            OrderRequest::Status(q) => {
                instrument(name, &q.symbol)?;
                match &q.order {
                    OrderRef::OrderId(oid) if !oid.is_empty() => frame(
                        id,
                        "private/get_order_state",
                        ByIdP { order_id: Some(oid), label: None, instrument_name: None },
                        name,
                    ),
                    _ => Err(TradeError::Invalid {
                        request: name,
                        reason: "Deribit answers an order's state by its order id only".into(),
                    }),
                }
            }
            OrderRequest::Batch { .. } => {
                Err(TradeError::Invalid { request: name, reason: "Deribit has no batch order methods".into() })
            }
        }
    }

    fn decode(
        &self,
        _plan: &TradingPlan,
        request: &OrderRequest,
        frame: &str,
        _received_ns: i64,
    ) -> Result<OrderAnswer, TradeError> {
        let name = request.name();
        let bad = |reason: String| TradeError::Answer { request: name, reason, frame: frame.to_owned() };
        let env: Envelope<'_> = parse(frame).map_err(bad)?;
        if let Some(e) = env.error {
            let detail = e.data.map(|d| d.get().to_string()).filter(|d| d != "null");
            return Err(TradeError::Refused(VenueRefusal {
                venue: "deribit",
                request: name,
                code: e.code,
                kind: refusal_kind(e.code, &e.message),
                message: e.message.into_owned(),
                detail,
            }));
        }
        let result = env.result.ok_or_else(|| bad("neither result nor error".into()))?;
        let order_of = |text: &str| -> Result<_, TradeError> {
            let w: OrderW<'_> = parse(text).map_err(bad)?;
            order_update(&w).map_err(bad)
        };
        match request {
            OrderRequest::Place(_) | OrderRequest::Amend(_) => {
                let r: OrderResultW<'_> = parse(result.get()).map_err(bad)?;
                let order = order_of(r.order.get())?;
                let fills = r
                    .trades
                    .iter()
                    .map(|t| {
                        let w: UserTradeW<'_> = parse(t.get()).map_err(bad)?;
                        user_trade(&w, Some(order.qty)).map_err(bad)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if matches!(request, OrderRequest::Place(_)) {
                    OrderAnswer::Placed { order, fills }
                } else {
                    OrderAnswer::Amended { order, fills }
                })
            }
            OrderRequest::Cancel(c) => match &c.order {
                OrderRef::OrderId(_) => Ok(OrderAnswer::Cancelled { order: order_of(result.get())? }),
                // cancel_by_label answers with how many orders it cancelled.
                OrderRef::ClientOrderId(_) => {
                    let n: u64 = parse(result.get()).map_err(bad)?;
                    Ok(OrderAnswer::CancelledAll { count: Some(n) })
                }
            },
            OrderRequest::CancelAll { .. } => {
                let n: u64 = parse(result.get()).map_err(bad)?;
                Ok(OrderAnswer::CancelledAll { count: Some(n) })
            }
            OrderRequest::OpenOrders { .. } => {
                let items: Vec<&RawValue> = parse(result.get()).map_err(bad)?;
                let orders = items.iter().map(|o| order_of(o.get())).collect::<Result<Vec<_>, _>>()?;
                Ok(OrderAnswer::OpenOrders { orders })
            }
            OrderRequest::Status(_) => Ok(OrderAnswer::Status { order: order_of(result.get())? }),
            OrderRequest::Batch { .. } => Err(bad("Deribit has no batch order methods".into())),
        }
    }
}

/// The market an instrument's orders are reported under.
pub fn market_of(symbol: &str) -> Market {
    Market::of_instrument(symbol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trading::{AmendOrder, CancelOrder, PlaceOrder};

    pub(crate) fn plan() -> TradingPlan {
        let creds = Arc::new(Credentials::hmac("k", "s").unwrap());
        DeribitTrading
            .plan(MarketType::Inverse, "any", &Environment::Production, creds, Arc::new(Clock::default()))
            .unwrap()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn place() -> PlaceOrder {
        PlaceOrder {
            symbol: "ETH_USDC-PERPETUAL".into(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            qty: d("0.001"),
            price: Some(d("2973.55")),
            time_in_force: TimeInForce::Gtc,
            post_only: true,
            reduce_only: false,
            client_order_id: Some("O-1".into()),
        }
    }

    #[test]
    fn place_writes_exact_numbers() {
        let f = DeribitTrading.encode(&plan(), 3, &OrderRequest::Place(place())).unwrap();
        assert!(f.contains(r#""amount":0.001"#) && f.contains(r#""price":2973.55"#), "{f}");
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!((v["id"].as_u64(), v["method"].as_str()), (Some(3), Some("private/buy")));
        let p = &v["params"];
        assert_eq!(p["instrument_name"], "ETH_USDC-PERPETUAL");
        assert_eq!((p["type"].as_str(), p["label"].as_str()), (Some("limit"), Some("O-1")));
        assert_eq!(p["time_in_force"], "good_til_cancelled");
        assert_eq!((p["post_only"].as_bool(), p["reduce_only"].as_bool()), (Some(true), Some(false)));
        let sell = PlaceOrder {
            side: Side::Sell,
            order_type: OrderType::Market,
            price: None,
            post_only: false,
            time_in_force: TimeInForce::Ioc,
            client_order_id: None,
            ..place()
        };
        let v: serde_json::Value =
            serde_json::from_str(&DeribitTrading.encode(&plan(), 4, &OrderRequest::Place(sell)).unwrap()).unwrap();
        assert_eq!((v["method"].as_str(), v["params"]["type"].as_str()), (Some("private/sell"), Some("market")));
        assert_eq!(v["params"]["time_in_force"], "immediate_or_cancel");
        assert!(v["params"].get("price").is_none() && v["params"].get("label").is_none());
    }

    #[test]
    fn bad_shapes_are_refused_before_sending() {
        let invalid =
            |r: OrderRequest| matches!(DeribitTrading.encode(&plan(), 1, &r), Err(TradeError::Invalid { .. }));
        assert!(invalid(OrderRequest::Place(PlaceOrder { price: None, ..place() })));
        assert!(invalid(OrderRequest::Place(PlaceOrder {
            order_type: OrderType::Market,
            post_only: false,
            ..place()
        })));
        assert!(invalid(OrderRequest::Place(PlaceOrder { qty: d("0"), ..place() })));
        assert!(invalid(OrderRequest::Place(PlaceOrder { time_in_force: TimeInForce::Fok, ..place() })));
        assert!(invalid(OrderRequest::Place(PlaceOrder { client_order_id: Some("x".repeat(65)), ..place() })));
        assert!(invalid(OrderRequest::Place(PlaceOrder { symbol: "BTC PERP".into(), ..place() })));
        let amend = AmendOrder {
            side: None,
            symbol: "BTC-PERPETUAL".into(),
            order: OrderRef::OrderId("1".into()),
            qty: None,
            price: Some(d("1")),
        };
        assert!(invalid(OrderRequest::Amend(amend)));
    }

    #[test]
    fn amend_cancel_and_queries_pick_their_methods() {
        let enc = |r: OrderRequest| -> serde_json::Value {
            serde_json::from_str(&DeribitTrading.encode(&plan(), 9, &r).unwrap()).unwrap()
        };
        let a = enc(OrderRequest::Amend(AmendOrder {
            side: None,
            symbol: "ETH_USDC-PERPETUAL".into(),
            order: OrderRef::OrderId("USDC-104819327443".into()),
            qty: Some(d("0.001")),
            price: Some(d("3067.2")),
        }));
        assert_eq!(
            (a["method"].as_str(), a["params"]["order_id"].as_str()),
            (Some("private/edit"), Some("USDC-104819327443"))
        );
        let a = enc(OrderRequest::Amend(AmendOrder {
            side: None,
            symbol: "ETH_USDC-PERPETUAL".into(),
            order: OrderRef::ClientOrderId("O-1".into()),
            qty: Some(d("0.002")),
            price: None,
        }));
        assert_eq!(a["method"], "private/edit_by_label");
        assert_eq!(
            (a["params"]["label"].as_str(), a["params"]["instrument_name"].as_str()),
            (Some("O-1"), Some("ETH_USDC-PERPETUAL"))
        );
        let c = enc(OrderRequest::Cancel(CancelOrder { symbol: "X".into(), order: OrderRef::OrderId("7".into()) }));
        assert_eq!((c["method"].as_str(), c["params"]["order_id"].as_str()), (Some("private/cancel"), Some("7")));
        let c =
            enc(OrderRequest::Cancel(CancelOrder { symbol: "X".into(), order: OrderRef::ClientOrderId("L".into()) }));
        assert_eq!(c["method"], "private/cancel_by_label");
        assert_eq!(enc(OrderRequest::CancelAll { symbol: None })["method"], "private/cancel_all");
        let c = enc(OrderRequest::CancelAll { symbol: Some("btc-perpetual".into()) });
        assert_eq!(
            (c["method"].as_str(), c["params"]["instrument_name"].as_str()),
            (Some("private/cancel_all_by_instrument"), Some("BTC-PERPETUAL"))
        );
        let o = enc(OrderRequest::OpenOrders { symbol: "BTC-PERPETUAL".into() });
        assert_eq!(o["method"], "private/get_open_orders_by_instrument");
    }

    #[test]
    fn counts_and_lists_decode() {
        let all = OrderRequest::CancelAll { symbol: None };
        let a = DeribitTrading.decode(&plan(), &all, r#"{"jsonrpc":"2.0","id":9,"result":4}"#, 0).unwrap();
        assert_eq!(a, OrderAnswer::CancelledAll { count: Some(4) });
        let open = OrderRequest::OpenOrders { symbol: "BTC-PERPETUAL".into() };
        assert_eq!(
            DeribitTrading.decode(&plan(), &open, r#"{"jsonrpc":"2.0","id":9,"result":[]}"#, 0).unwrap(),
            OrderAnswer::OpenOrders { orders: vec![] }
        );
        let e = DeribitTrading.decode(&plan(), &open, r#"{"jsonrpc":"2.0","id":9}"#, 0).unwrap_err();
        assert!(matches!(e, TradeError::Answer { .. }), "{e}");
        let e = DeribitTrading
            .decode(
                &plan(),
                &open,
                r#"{"jsonrpc":"2.0","id":9,"error":{"code":10009,"message":"not_enough_funds","data":{"reason":"x"}}}"#,
                0,
            )
            .unwrap_err();
        let TradeError::Refused(r) = e else { panic!("{e}") };
        assert_eq!((r.kind, r.detail.as_deref()), (RefusalKind::InsufficientFunds, Some(r#"{"reason":"x"}"#)));
        assert_eq!(refusal_kind(13019, "orderbook_closed"), RefusalKind::UnknownInstrument);
        assert_eq!(refusal_kind(10004, "order_not_found"), RefusalKind::OrderNotFound);
        assert_eq!(refusal_kind(11044, "not_open_order"), RefusalKind::OrderNotFound);
        assert_eq!(refusal_kind(11050, "bad_request"), RefusalKind::Other);
    }
}
