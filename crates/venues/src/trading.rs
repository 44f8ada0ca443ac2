//! The venue-neutral order API: typed requests (place, amend, cancel, cancel
//! all, open orders), typed answers and typed venue errors, and the
//! [`TradingSpec`] a venue implements to carry them over its WebSocket.
//!
//! A venue encodes one request as one frame with the id the engine gives it,
//! and decodes the one answer frame the engine matched to that id. Order
//! states and fills reuse the user-data model ([`OrderUpdate`],
//! [`UserTrade`]), so an order placed here and the `user.orders` event the
//! private stream sends for it read the same. Like the rest of this crate,
//! nothing here touches a socket.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::event::{MarketType, OrderUpdate, Side, UserTrade, Venue};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::auth::{Clock, Credentials};
use crate::env::Environment;
use crate::instruments::Registry;
use crate::seam::{MarketId, SeamError, SessionPlan};

/// The order type of a new order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// A limit order: `price` is required.
    Limit,
    /// A market order: no price.
    Market,
}

/// How long a new order stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Good till cancelled.
    #[default]
    Gtc,
    /// Immediate or cancel: what does not fill at once is cancelled.
    Ioc,
    /// Fill or kill: fills completely at once, or not at all.
    Fok,
}

/// A new order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaceOrder {
    /// The instrument, as the venue names it (`BTC-PERPETUAL`, `BTCUSDT`).
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub order_type: OrderType,
    /// The quantity, in the venue's unit for the instrument (Deribit inverse
    /// contracts: USD; options: contracts).
    pub qty: Decimal,
    /// The limit price; required for [`OrderType::Limit`], refused for
    /// [`OrderType::Market`].
    pub price: Option<Decimal>,
    /// How long it stays open.
    pub time_in_force: TimeInForce,
    /// Only ever rests on the book (rejected or cancelled if it would take).
    pub post_only: bool,
    /// Only reduces a position.
    pub reduce_only: bool,
    /// The client's own id for the order (Deribit `label`, Binance
    /// `newClientOrderId`, Bybit `orderLinkId`).
    pub client_order_id: Option<String>,
}

/// Which order a request is about: the venue's id or the client's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderRef {
    /// The venue's order id.
    OrderId(String),
    /// The client order id given at placement.
    ClientOrderId(String),
}

impl fmt::Display for OrderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderRef::OrderId(id) => write!(f, "order {id}"),
            OrderRef::ClientOrderId(id) => write!(f, "client order {id}"),
        }
    }
}

/// A change to an open order's price or quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmendOrder {
    /// The instrument.
    pub symbol: String,
    /// The order.
    pub order: OrderRef,
    /// The new total quantity, if it changes.
    pub qty: Option<Decimal>,
    /// The new limit price, if it changes.
    pub price: Option<Decimal>,
    /// The order's side, for venues that amend by re-placing the order or
    /// require it (Binance spot `order.cancelReplace`, USDⓈ-M
    /// `order.modify`); others ignore it.
    pub side: Option<Side>,
}

/// A cancel of one open order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelOrder {
    /// The instrument.
    pub symbol: String,
    /// The order.
    pub order: OrderRef,
}

/// A question about one order's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryOrder {
    /// The instrument.
    pub symbol: String,
    /// The order.
    pub order: OrderRef,
}

/// One request of the order API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum OrderRequest {
    /// Place a new order.
    Place(PlaceOrder),
    /// Amend an open order.
    Amend(AmendOrder),
    /// Cancel an open order.
    Cancel(CancelOrder),
    /// One order's state.
    Status(QueryOrder),
    /// Several requests of one kind (place, amend or cancel) in one frame,
    /// where the venue has a batch form (Bybit `order.create-batch`, ...).
    /// Each item is answered on its own: one refused item does not refuse
    /// the others.
    Batch {
        /// The requests, all of one kind.
        items: Vec<OrderRequest>,
    },
    /// Cancel every open order, of one instrument when `symbol` is given.
    CancelAll {
        /// The instrument; `None`: every instrument.
        symbol: Option<String>,
    },
    /// The open orders of one instrument.
    OpenOrders {
        /// The instrument.
        symbol: String,
    },
}

impl OrderRequest {
    /// The request's name: `place`, `amend`, `cancel`, `cancel_all`,
    /// `open_orders`.
    pub fn name(&self) -> &'static str {
        match self {
            OrderRequest::Place(_) => "place",
            OrderRequest::Amend(_) => "amend",
            OrderRequest::Cancel(_) => "cancel",
            OrderRequest::CancelAll { .. } => "cancel_all",
            OrderRequest::OpenOrders { .. } => "open_orders",
            OrderRequest::Status(_) => "status",
            OrderRequest::Batch { .. } => "batch",
        }
    }

    /// Whether the venue's matching engine changes state when it runs it
    /// (everything but [`OrderRequest::OpenOrders`] and
    /// [`OrderRequest::Status`]): an answer lost to a dropped connection
    /// leaves its outcome unknown.
    pub fn mutates(&self) -> bool {
        match self {
            OrderRequest::OpenOrders { .. } | OrderRequest::Status(_) => false,
            OrderRequest::Batch { items } => items.iter().any(OrderRequest::mutates),
            _ => true,
        }
    }

    /// How many new orders it asks for (a place is one, a batch the sum of
    /// its items): what venues' order-rate limits count.
    pub fn new_orders(&self) -> u64 {
        match self {
            OrderRequest::Place(_) => 1,
            OrderRequest::Batch { items } => items.iter().map(OrderRequest::new_orders).sum(),
            _ => 0,
        }
    }

    /// The instruments it names (each item's, for a batch).
    pub fn symbols(&self) -> Vec<&str> {
        match self {
            OrderRequest::Place(p) => vec![p.symbol.as_str()],
            OrderRequest::Amend(a) => vec![a.symbol.as_str()],
            OrderRequest::Cancel(c) => vec![c.symbol.as_str()],
            OrderRequest::Status(q) => vec![q.symbol.as_str()],
            OrderRequest::CancelAll { symbol } => symbol.iter().map(String::as_str).collect(),
            OrderRequest::OpenOrders { symbol } => vec![symbol.as_str()],
            OrderRequest::Batch { items } => items.iter().flat_map(OrderRequest::symbols).collect(),
        }
    }
}

/// The venue's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum OrderAnswer {
    /// The order was accepted; `fills` are the trades it made at once.
    Placed {
        /// The order's state after placement.
        order: OrderUpdate,
        /// Immediate fills.
        fills: Vec<UserTrade>,
    },
    /// The order was amended; `fills` are the trades the change made.
    Amended {
        /// The order's state after the change.
        order: OrderUpdate,
        /// Fills the amended order made at once.
        fills: Vec<UserTrade>,
    },
    /// The order was cancelled.
    Cancelled {
        /// The order's final state.
        order: OrderUpdate,
    },
    /// Every matching open order was cancelled.
    CancelledAll {
        /// How many, when the venue says.
        count: Option<u64>,
    },
    /// The open orders.
    OpenOrders {
        /// Their states.
        orders: Vec<OrderUpdate>,
    },
    /// The venue took the request and answered with the order's ids only
    /// (Bybit `/v5/trade`); the order's state and fills arrive on the
    /// private stream.
    Accepted {
        /// The venue's order id.
        order_id: String,
        /// The client order id, when there is one.
        client_order_id: Option<String>,
    },
    /// One order's state.
    Status {
        /// Its state.
        order: OrderUpdate,
    },
    /// The answers to a batch's items, in the batch's order.
    Batch {
        /// One per item.
        items: Vec<BatchItem>,
    },
}

/// The answer to one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchItem {
    /// Carried out.
    Answer(Box<OrderAnswer>),
    /// Refused.
    Refusal(VenueRefusal),
}

/// One of a venue's limits on orders, counted in fixed windows (`ORDERS`
/// per 10 s and per day on Binance; the per-UID limit per second on Bybit).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RateLimit {
    /// The venue's name for it (`ORDERS`, `X-Bapi-Limit order.create`).
    pub name: String,
    /// The window.
    #[serde(serialize_with = "ser_ms")]
    pub window: Duration,
    /// How many the window allows.
    pub limit: u64,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A venue's count against one of its limits, as an answer reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateUsage {
    /// The limit.
    pub limit: RateLimit,
    /// How many the current window has used.
    pub used: u64,
    /// When the window resets (ms since the epoch), if the venue says.
    pub resets_at_ms: Option<i64>,
}

/// What kind of refusal a venue error is, for callers that act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Not enough balance or margin.
    InsufficientFunds,
    /// No such (open) order.
    OrderNotFound,
    /// The quantity or price breaks the instrument's rules.
    InvalidOrder,
    /// A post-only order would have taken liquidity.
    WouldTake,
    /// Too many requests; the venue may also end the session.
    RateLimited,
    /// Not authenticated, or not allowed.
    Unauthorized,
    /// No such instrument, or it is not trading.
    UnknownInstrument,
    /// Anything else.
    Other,
}

/// A venue's refusal of a request: it reached the venue and was not carried
/// out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{venue} refused the {request} request: {code} {message}")]
pub struct VenueRefusal {
    /// The venue.
    pub venue: &'static str,
    /// The request's name.
    pub request: &'static str,
    /// The venue's error code.
    pub code: i64,
    /// The venue's message.
    pub message: String,
    /// What kind of refusal it is.
    pub kind: RefusalKind,
    /// The venue's detail (Deribit `error.data`), as JSON text, when it sends
    /// one.
    pub detail: Option<String>,
}

/// Why a request could not be encoded or an answer not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradeError {
    /// The request cannot be sent as it is (a limit order without a price,
    /// a market order with one, an amend that changes nothing, ...). Nothing
    /// was sent.
    #[error("invalid {request} request: {reason}")]
    Invalid {
        /// The request's name.
        request: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The venue refused the request.
    #[error(transparent)]
    Refused(#[from] VenueRefusal),
    /// The answer could not be read; the frame is kept. The request reached
    /// the venue, so its outcome is unknown.
    #[error("unreadable answer to the {request} request ({reason}): {frame}")]
    Answer {
        /// The request's name.
        request: &'static str,
        /// What is wrong with it.
        reason: String,
        /// The answer frame.
        frame: String,
    },
}

/// Checks `request` against the instrument list of its market before it is
/// sent: every instrument it names is listed, and every price is a multiple
/// of the instrument's tick size and every quantity of its step size (where
/// the list gives them). A refusal is [`TradeError::Invalid`]: nothing was
/// sent.
pub fn check_instruments(registry: &Registry, request: &OrderRequest) -> Result<(), TradeError> {
    let name = request.name();
    let invalid = |reason: String| TradeError::Invalid { request: name, reason };
    let multiple = |what: &str, v: Decimal, step: Option<Decimal>, symbol: &str| match step {
        Some(step) if step > Decimal::ZERO && !(v % step).is_zero() => Err(invalid(format!(
            "{what} {v} of {symbol} is not a multiple of its {} {step}",
            if what == "price" { "tick size" } else { "step size" }
        ))),
        _ => Ok(()),
    };
    for symbol in request.symbols() {
        if registry.get(symbol).is_none() {
            return Err(invalid(format!("{symbol} is not listed on {}", registry.market())));
        }
    }
    let mut check = |r: &OrderRequest| -> Result<(), TradeError> {
        let (symbol, price, qty) = match r {
            OrderRequest::Place(p) => (&p.symbol, p.price, Some(p.qty)),
            OrderRequest::Amend(a) => (&a.symbol, a.price, a.qty),
            _ => return Ok(()),
        };
        let Some(inst) = registry.get(symbol) else { return Ok(()) };
        if let Some(px) = price {
            multiple("price", px, inst.tick_size, symbol)?;
        }
        if let Some(q) = qty {
            multiple("quantity", q, inst.step_size, symbol)?;
        }
        Ok(())
    };
    match request {
        OrderRequest::Batch { items } => items.iter().try_for_each(&mut check),
        r => check(r),
    }
}

/// The connection an order client opens: a private session's socket, with no
/// streams.
#[derive(Debug, Clone)]
pub struct TradingPlan {
    /// The market the venue's answers are reported under, and whose orders
    /// the connection carries.
    pub market: MarketId,
    /// The connection: URL, rules (with in-band authentication) and clock.
    pub session: SessionPlan,
    /// The credentials and clock for venues that sign each request (Binance
    /// with an HMAC key, which `session.logon` does not take); `None` when
    /// the session's authentication covers every request.
    pub signer: Option<Signer>,
}

/// What signs one request: the account's credentials and the venue clock.
#[derive(Clone)]
pub struct Signer {
    /// The credentials.
    pub credentials: Arc<Credentials>,
    /// The venue's clock.
    pub clock: Arc<Clock>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("credentials", &self.credentials).field("clock", &self.clock).finish()
    }
}

/// What a venue needs to carry the order API over its WebSocket. Object safe;
/// the registry hands it out with [`crate::registry`]'s venue.
pub trait TradingSpec: Send + Sync + fmt::Debug {
    /// The venue.
    fn venue(&self) -> Venue;

    /// The markets it trades.
    fn markets(&self) -> &'static [MarketType];

    /// The trading connection of `account` for `market` in `env`.
    fn plan(
        &self,
        market: MarketType,
        account: &str,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<TradingPlan, SeamError>;

    /// The request frame of `request` on `plan`'s connection with request
    /// id `id` (signed with `plan.signer` where the venue signs each
    /// request); refuses what the venue would refuse for its shape before
    /// anything is sent.
    fn encode(&self, plan: &TradingPlan, id: u64, request: &OrderRequest) -> Result<String, TradeError>;

    /// Reads the answer frame the engine matched to `request`'s id: the
    /// typed answer, or the venue's refusal.
    fn decode(
        &self,
        plan: &TradingPlan,
        request: &OrderRequest,
        frame: &str,
        received_ns: i64,
    ) -> Result<OrderAnswer, TradeError>;

    /// The venue's order-rate limits on `market` that the client keeps
    /// locally (refusing, before sending, an order that would exceed one).
    fn order_limits(&self, market: MarketType) -> Vec<RateLimit> {
        let _ = market;
        Vec::new()
    }

    /// How much `request` counts against `limit` (by default: its new
    /// orders).
    fn cost(&self, limit: &RateLimit, request: &OrderRequest) -> u64 {
        let _ = limit;
        request.new_orders()
    }

    /// What an answer frame (success or refusal) says about the venue's
    /// counters (Binance `rateLimits`, Bybit's `X-Bapi-Limit*` header).
    fn rate_usage(&self, market: MarketType, frame: &str) -> Vec<RateUsage> {
        let _ = (market, frame);
        Vec::new()
    }
}
