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

use ferrofeed_model::event::{MarketType, OrderUpdate, Side, UserTrade, Venue};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::auth::{Clock, Credentials};
use crate::env::Environment;
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
}

/// A cancel of one open order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelOrder {
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
        }
    }

    /// Whether the venue's matching engine changes state when it runs it
    /// (everything but [`OrderRequest::OpenOrders`]): an answer lost to a
    /// dropped connection leaves its outcome unknown.
    pub fn mutates(&self) -> bool {
        !matches!(self, OrderRequest::OpenOrders { .. })
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

/// The connection an order client opens: a private session's socket, with no
/// streams.
#[derive(Debug, Clone)]
pub struct TradingPlan {
    /// The market the venue's answers are reported under.
    pub market: MarketId,
    /// The connection: URL, rules (with in-band authentication) and clock.
    pub session: SessionPlan,
}

/// What a venue needs to carry the order API over its WebSocket. Object safe;
/// the registry hands it out with [`crate::registry`]'s venue.
pub trait TradingSpec: Send + Sync + fmt::Debug {
    /// The venue.
    fn venue(&self) -> Venue;

    /// The markets it trades.
    fn markets(&self) -> &'static [MarketType];

    /// The trading connection of `account` in `env`.
    fn plan(
        &self,
        account: &str,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<TradingPlan, SeamError>;

    /// The request frame of `request` with request id `id`; refuses what the
    /// venue would refuse for its shape before anything is sent.
    fn encode(&self, id: u64, request: &OrderRequest) -> Result<String, TradeError>;

    /// Reads the answer frame the engine matched to `request`'s id: the
    /// typed answer, or the venue's refusal.
    fn decode(&self, request: &OrderRequest, frame: &str, received_ns: i64) -> Result<OrderAnswer, TradeError>;
}
