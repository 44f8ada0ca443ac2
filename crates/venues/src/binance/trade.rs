//! The order API over Binance's WebSocket APIs ([`TradingSpec`]): spot on
//! `/ws-api/v3` and USDⓈ-M futures on `/ws-fapi/v1`.
//!
//! Sources: binance-spot-api-docs `web-socket-api.md` ("Trading requests",
//! "Account requests", "Session Authentication", "Rate limits"), `errors.md`
//! and `fix-api.md` (client order ids); developers.binance.com
//! `derivatives/usds-margined-futures/websocket-api-general-info`,
//! `.../trade/websocket-api` (New Order), `.../trade/websocket-api/Modify-Order`,
//! `Cancel-Order`, `Query-Order` and `.../error-code` (PROTOCOLS.md §1.6, §2.1).
//!
//! Frames are `{"id":N,"method":M,"params":{...}}` with the engine's numeric
//! id; answers `{"id":N,"status":S,"result":...|"error":{"code","msg"[,"data"]},
//! "rateLimits":[...]}`. Decimals are JSON strings written from their exact
//! text; ids, `timestamp` and `recvWindow` are JSON integers.
//!
//! | request | spot | USDⓈ-M |
//! |---|---|---|
//! | place | `order.place` (`LIMIT` + `timeInForce`, `LIMIT_MAKER` for post-only, `MARKET`; `newOrderRespType: FULL`, so fills come back) | `order.place` (`LIMIT` + `timeInForce` `GTC`/`IOC`/`FOK`, `GTX` for post-only, `MARKET`; `reduceOnly: "true"`; `newOrderRespType: RESULT`) |
//! | amend, quantity only | `order.amend.keepPriority` (`newQty`; the venue refuses an increase) | `order.modify` |
//! | amend, price | `order.cancelReplace` with `cancelReplaceMode: STOP_ON_FAILURE` (a new order: a new order id) | `order.modify` (`side`, `quantity` and `price` all required) |
//! | cancel | `order.cancel` (`orderId` or `origClientOrderId`) | `order.cancel` |
//! | status | `order.status` | `order.status` |
//! | open orders | `openOrders.status` (`symbol`) | refused: the USDⓈ-M WebSocket API has no such method |
//! | cancel all | `openOrders.cancelAll` (`symbol` required) | refused, likewise |
//! | batch | refused: the WebSocket APIs have no batch order method | refused |
//!
//! **What an amend needs.** A cancel-replace places a whole new order and
//! `order.modify` requires the order's side: an amend that changes the price
//! (spot) or any amend (USDⓈ-M) needs [`AmendOrder::side`] (the replacement
//! is then a good-till-cancelled limit order) and is refused before sending
//! without it ([`TradeError::Invalid`]). [`BinanceTrading::encode_amend`]
//! takes the order's post-only flag and time in force too ([`Resting`]).
//!
//! **Signing.** An Ed25519 key logs the connection on with `session.logon`
//! (the rules sign it afresh on every connect); requests then carry only
//! `timestamp` and `recvWindow` (SIGNED requests still need a timestamp:
//! `web-socket-api.md` "Session Authentication"). An HMAC key cannot log on
//! (`session.logon` takes Ed25519 keys only), so every request carries
//! `apiKey`, `timestamp`, `recvWindow` and `signature`, the HMAC-SHA256 hex
//! of all the other parameters as `k=v` sorted by name and joined by `&`.
//! Either way the plan's [`Signer`] holds the credentials and the venue clock
//! that dates each request.
//!
//! **Answers.** Place: [`OrderAnswer::Placed`] with the order and (spot) its
//! immediate fills as [`UserTrade`]s, always as taker (the order was the
//! incoming one); an `ACK`-shaped answer (no status) is
//! [`OrderAnswer::Accepted`]. Amend: [`OrderAnswer::Amended`] (a
//! cancel-replace: the new order and its fills). Cancel:
//! [`OrderAnswer::Cancelled`]. Cancel all: [`OrderAnswer::CancelledAll`] with
//! the number of orders cancelled. Answers name no event, so each order's
//! `execution_type` is the one the user stream sends for the change that
//! left it in its status (`NEW`, `TRADE`, `CANCELED`, `EXPIRED`, `REJECTED`;
//! `REPLACED` for a spot keep-priority amend, `AMENDMENT` for a USDⓈ-M
//! modify). Errors are [`VenueRefusal`]s ([`refusal_kind`]); a `5xx` status
//! or `-1006`/`-1007` means the venue does not know the outcome, which is
//! [`TradeError::Answer`] (outcome unknown), never a refusal.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::event::{MarketType, OrderUpdate, PositionSide, Side, UserTrade, Venue};
use ferrofeed_model::rules::{ClientPing, ConnLimits, Heartbeat, Inbound, VenueRules};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::auth::{Clock, Credentials, KeyKind, sorted_query};
use super::normalize::parse;
use super::private::ws_api_url;
use super::wire::{AnyId, Dec, Text};
use super::{Environment, Market, endpoints};
use crate::seam::{MarketId, SeamError, SessionAuth, SessionPlan};
use crate::trading::{
    AmendOrder, OrderAnswer, OrderRef, OrderRequest, OrderType, RateLimit, RateUsage, RefusalKind, Signer, TimeInForce,
    TradeError, TradingPlan, TradingSpec, VenueRefusal,
};

/// The longest client order id either market takes (spot `fix-api.md`
/// "Client order ID fields must conform to the regex `^[a-zA-Z0-9-_]{1,36}$`";
/// USDⓈ-M `order.place` `newClientOrderId`: `^[\.A-Z\:/a-z0-9_-]{1,36}$`).
pub const MAX_CLIENT_ORDER_ID: usize = 36;

/// The venue's name for its order-rate limits (`rateLimits[].rateLimitType`).
pub const ORDERS: &str = "ORDERS";

/// `-1021`: the `timestamp` is outside `recvWindow` (the clock drifted).
const CLOCK_REFUSALS: &[&str] = &["-1021"];

/// The id prefix of `session.logon` frames: a string id, so the answer is
/// never mistaken for a caller's numeric one.
const LOGON_PREFIX: &str = "logon-";

/// The USDⓈ-M WebSocket API endpoint (`websocket-api-general-info`: base
/// `wss://ws-fapi.binance.com/ws-fapi/v1`, testnet
/// `wss://testnet.binancefuture.com/ws-fapi/v1`). The futures demo shares the
/// testnet's hosts; a custom environment (the simulator) serves it at
/// `/ws-fapi/v1` on the USDⓈ-M WebSocket host.
pub fn ws_fapi_url(env: &Environment) -> String {
    match env {
        Environment::Production => "wss://ws-fapi.binance.com/ws-fapi/v1".into(),
        Environment::Testnet | Environment::Demo => "wss://testnet.binancefuture.com/ws-fapi/v1".into(),
        Environment::Custom { ws, .. } => format!("{}/ws-fapi/v1", ws.trim_end_matches('/')),
    }
}

/// The venue's order-rate limits on `market`, as it documents them:
/// spot `exchangeInfo` `rateLimits` (`web-socket-api.md` "Exchange
/// information"): `ORDERS` 50 per 10 s and 160,000 per day; USDⓈ-M: `ORDERS`
/// 300 per 10 s and 1,200 per minute (`websocket-api-general-info` response
/// example; `exchangeInfo` lists the minute limit).
pub fn order_rate_limits(market: MarketType) -> Vec<RateLimit> {
    let l = |secs: u64, limit: u64| RateLimit { name: ORDERS.into(), window: Duration::from_secs(secs), limit };
    match market {
        MarketType::Spot => vec![l(10, 50), l(86_400, 160_000)],
        MarketType::UsdM => vec![l(10, 300), l(60, 1_200)],
        _ => Vec::new(),
    }
}

/// The kind of refusal a Binance error is on `market`: by code, then (for
/// the matching engine's `-2010`, `-2011`, `-2038`) by message
/// (`errors.md` "Messages for -1010 ERROR_MSG_RECEIVED, -2010
/// NEW_ORDER_REJECTED, -2011 CANCEL_REJECTED, and -2038
/// ORDER_AMEND_REJECTED"; USDⓈ-M `error-code`).
pub fn refusal_kind(market: MarketType, status: u16, code: i64, msg: &str) -> RefusalKind {
    let futures = market != MarketType::Spot;
    if status == 429 || status == 418 || matches!(code, -1003 | -1015) {
        return RefusalKind::RateLimited;
    }
    if msg == "Unknown order sent." {
        return RefusalKind::OrderNotFound;
    }
    if msg.starts_with("Filter failure:") {
        return RefusalKind::InvalidOrder;
    }
    match code {
        -2010 => {
            if msg.contains("insufficient balance") {
                RefusalKind::InsufficientFunds
            } else if msg == "Order would immediately match and take." {
                RefusalKind::WouldTake
            } else if msg == "Market is closed." {
                RefusalKind::UnknownInstrument
            } else {
                RefusalKind::Other
            }
        }
        -2011 | -2013 => RefusalKind::OrderNotFound,
        -2014 | -2015 | -1022 | -1021 | -1002 => RefusalKind::Unauthorized,
        -1121 | -1122 => RefusalKind::UnknownInstrument,
        -1013 | -1106..=-1100 | -1111 | -1118..=-1114 | -2038 => RefusalKind::InvalidOrder,
        // USDⓈ-M: balance / margin insufficient, GTX (post-only) rejected,
        // the matching engine's recvWindow, order parameter checks.
        -2018 | -2019 if futures => RefusalKind::InsufficientFunds,
        -5022 if futures => RefusalKind::WouldTake,
        -5028 if futures => RefusalKind::Unauthorized,
        -2022 | -4003 | -4014 | -4015 | -4016 | -4164 if futures => RefusalKind::InvalidOrder,
        _ => RefusalKind::Other,
    }
}

/// Binance's order API on spot and USDⓈ-M.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinanceTrading;

/// What a replacing amend needs to know about the order it changes and
/// [`AmendOrder`] does not carry: spot `order.cancelReplace` places a whole
/// new order, USDⓈ-M `order.modify` requires the side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resting {
    /// The order's side.
    pub side: Side,
    /// Whether it is post-only (spot `LIMIT_MAKER`).
    pub post_only: bool,
    /// Its time in force.
    pub time_in_force: TimeInForce,
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Request parameters in the order they are added; values are JSON strings or
/// integers.
#[derive(Default)]
struct Params(Vec<(&'static str, Value)>);

impl Params {
    fn s(mut self, k: &'static str, v: impl Into<String>) -> Params {
        self.0.push((k, Value::String(v.into())));
        self
    }

    fn dec(self, k: &'static str, v: Decimal) -> Params {
        // A Decimal prints its exact digits and scale (no exponent).
        self.s(k, v.to_string())
    }

    fn int(mut self, k: &'static str, v: impl Into<Value>) -> Params {
        self.0.push((k, v.into()));
        self
    }

    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// Adds what authorizes the request: `timestamp` and `recvWindow` always;
    /// with an HMAC key also `apiKey` and `signature` over the sorted
    /// parameters (an Ed25519 key has logged the session on).
    fn sign(self, signer: &Signer, now_ms: i64) -> Params {
        let mut p = self.int("timestamp", now_ms).int("recvWindow", signer.clock.recv_window_ms);
        if signer.credentials.kind() == KeyKind::Hmac {
            p = p.s("apiKey", signer.credentials.api_key());
            let text: Vec<(&str, String)> = p.0.iter().map(|(k, v)| (*k, Params::text(v))).collect();
            let signature = signer.credentials.sign(&sorted_query(&text));
            p = p.s("signature", signature);
        }
        p
    }

    fn frame(self, id: u64, method: &str) -> String {
        let params: Map<String, Value> = self.0.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut f = Map::new();
        f.insert("id".into(), id.into());
        f.insert("method".into(), method.into());
        f.insert("params".into(), Value::Object(params));
        Value::Object(f).to_string()
    }
}

fn invalid(request: &'static str, reason: impl Into<String>) -> TradeError {
    TradeError::Invalid { request, reason: reason.into() }
}

fn market_of(plan: &TradingPlan) -> Result<Market, TradeError> {
    match plan.market.market {
        MarketType::Spot => Ok(Market::Spot),
        MarketType::UsdM => Ok(Market::UsdM),
        other => Err(invalid("plan", format!("binance trades spot and usdm, not {other:?}"))),
    }
}

fn symbol(request: &'static str, s: &str) -> Result<String, TradeError> {
    crate::seam::stream_symbol(s)
        .map(str::to_ascii_uppercase)
        .map_err(|_| invalid(request, format!("invalid symbol {s:?}")))
}

fn positive(request: &'static str, what: &str, v: Decimal) -> Result<Decimal, TradeError> {
    if v <= Decimal::ZERO {
        return Err(invalid(request, format!("{what} must be positive, got {v}")));
    }
    Ok(v)
}

/// Checks a client order id against the market's documented rule.
fn client_id(market: Market, request: &'static str, id: &str) -> Result<(), TradeError> {
    let n = id.chars().count();
    let ok_char = |c: char| match market {
        Market::Spot => c.is_ascii_alphanumeric() || c == '-' || c == '_',
        _ => c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '_' | '-'),
    };
    if n == 0 || n > MAX_CLIENT_ORDER_ID || !id.chars().all(ok_char) {
        let rule = if market == Market::Spot { "^[a-zA-Z0-9-_]{1,36}$" } else { "^[\\.A-Z\\:/a-z0-9_-]{1,36}$" };
        return Err(invalid(request, format!("client order id {id:?} breaks the venue's rule {rule}")));
    }
    Ok(())
}

/// `orderId` (a JSON integer) or `origClientOrderId`, under the given names.
fn order_ref(
    market: Market,
    request: &'static str,
    order: &OrderRef,
    p: Params,
    by_id: &'static str,
    by_client: &'static str,
) -> Result<Params, TradeError> {
    match order {
        OrderRef::OrderId(id) => {
            let n: u64 = id
                .trim()
                .parse()
                .map_err(|_| invalid(request, format!("a Binance order id is a number, got {id:?}")))?;
            Ok(p.int(by_id, n))
        }
        OrderRef::ClientOrderId(c) => {
            client_id(market, request, c)?;
            Ok(p.s(by_client, c.as_str()))
        }
    }
}

fn tif(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

/// The `type` (and `timeInForce`) of a new limit order: post-only is
/// `LIMIT_MAKER` on spot (no time in force) and `timeInForce: GTX` on USDⓈ-M.
fn limit_kind(
    market: Market,
    request: &'static str,
    post_only: bool,
    t: TimeInForce,
    p: Params,
) -> Result<Params, TradeError> {
    match (post_only, market) {
        (true, _) if t != TimeInForce::Gtc => {
            Err(invalid(request, "post-only orders rest on the book: IOC and FOK contradict it"))
        }
        (true, Market::Spot) => Ok(p.s("type", "LIMIT_MAKER")),
        (true, _) => Ok(p.s("type", "LIMIT").s("timeInForce", "GTX")),
        (false, _) => Ok(p.s("type", "LIMIT").s("timeInForce", tif(t))),
    }
}

impl BinanceTrading {
    /// The method and parameters of `request` (unsigned), or why the venue
    /// would refuse it.
    fn params(&self, market: Market, request: &OrderRequest) -> Result<(&'static str, Params), TradeError> {
        let name = request.name();
        let futures = market != Market::Spot;
        match request {
            OrderRequest::Place(o) => {
                let mut p = Params::default().s("symbol", symbol(name, &o.symbol)?).s("side", side_name(o.side));
                positive(name, "qty", o.qty)?;
                p = match (o.order_type, o.price) {
                    (OrderType::Limit, None) => return Err(invalid(name, "a limit order needs a price")),
                    (OrderType::Market, Some(_)) => return Err(invalid(name, "a market order takes no price")),
                    (OrderType::Market, None) if o.post_only => {
                        return Err(invalid(name, "a market order cannot be post-only"));
                    }
                    (OrderType::Market, None) if o.time_in_force != TimeInForce::Gtc => {
                        return Err(invalid(name, "Binance market orders take no time in force"));
                    }
                    (OrderType::Market, None) => p.s("type", "MARKET").dec("quantity", o.qty),
                    (OrderType::Limit, Some(px)) => {
                        let p = limit_kind(market, name, o.post_only, o.time_in_force, p)?;
                        p.dec("quantity", o.qty).dec("price", positive(name, "price", px)?)
                    }
                };
                if o.reduce_only {
                    if !futures {
                        return Err(invalid(name, "spot orders cannot be reduce-only"));
                    }
                    // A STRING "true"/"false" on USDⓈ-M `order.place`.
                    p = p.s("reduceOnly", "true");
                }
                if let Some(c) = &o.client_order_id {
                    client_id(market, name, c)?;
                    p = p.s("newClientOrderId", c.as_str());
                }
                // Spot FULL returns the fills; USDⓈ-M RESULT the final state of
                // market and IOC/FOK orders (its default, ACK, does not).
                Ok(("order.place", p.s("newOrderRespType", if futures { "RESULT" } else { "FULL" })))
            }
            OrderRequest::Amend(a) => self.amend_params(market, a, None),
            OrderRequest::Cancel(c) => {
                let p = Params::default().s("symbol", symbol(name, &c.symbol)?);
                Ok(("order.cancel", order_ref(market, name, &c.order, p, "orderId", "origClientOrderId")?))
            }
            OrderRequest::Status(q) => {
                let p = Params::default().s("symbol", symbol(name, &q.symbol)?);
                Ok(("order.status", order_ref(market, name, &q.order, p, "orderId", "origClientOrderId")?))
            }
            OrderRequest::OpenOrders { .. } | OrderRequest::CancelAll { .. } if futures => Err(invalid(
                name,
                "the USD-M WebSocket API has no open-orders or cancel-all method (order.place, order.modify, \
                 order.cancel and order.status only)",
            )),
            OrderRequest::OpenOrders { symbol: s } => {
                Ok(("openOrders.status", Params::default().s("symbol", symbol(name, s)?)))
            }
            OrderRequest::CancelAll { symbol: None } => {
                Err(invalid(name, "Binance spot's openOrders.cancelAll cancels one symbol's orders: name it"))
            }
            OrderRequest::CancelAll { symbol: Some(s) } => {
                Ok(("openOrders.cancelAll", Params::default().s("symbol", symbol(name, s)?)))
            }
            OrderRequest::Batch { .. } => Err(invalid(name, "Binance's WebSocket APIs have no batch order method")),
        }
    }

    fn amend_params(
        &self,
        market: Market,
        a: &AmendOrder,
        resting: Option<Resting>,
    ) -> Result<(&'static str, Params), TradeError> {
        const NAME: &str = "amend";
        // The amend's own side stands in for what the caller knows of the
        // order: a good-till-cancelled limit order.
        let resting =
            resting.or(a.side.map(|side| Resting { side, post_only: false, time_in_force: TimeInForce::Gtc }));
        let sym = symbol(NAME, &a.symbol)?;
        if let Some(q) = a.qty {
            positive(NAME, "qty", q)?;
        }
        if let Some(px) = a.price {
            positive(NAME, "price", px)?;
        }
        match (market, a.qty, a.price) {
            (_, None, None) => Err(invalid(NAME, "the amend changes nothing")),
            (Market::Spot, Some(q), None) => {
                let p = order_ref(
                    market,
                    NAME,
                    &a.order,
                    Params::default().s("symbol", sym),
                    "orderId",
                    "origClientOrderId",
                )?;
                // Without `newClientOrderId` the venue gives the amended order
                // a random client id; keep the one it is known by.
                let p = match &a.order {
                    OrderRef::ClientOrderId(c) => p.s("newClientOrderId", c.as_str()),
                    OrderRef::OrderId(_) => p,
                };
                Ok(("order.amend.keepPriority", p.dec("newQty", q)))
            }
            (Market::Spot, qty, Some(px)) => {
                let (Some(r), Some(q)) = (resting, qty) else {
                    return Err(invalid(
                        NAME,
                        "Binance spot changes a price only by order.cancelReplace, which places a whole new order \
                         (side, quantity, type and time in force); an amend carries no side: give the quantity and \
                         the order's side (AmendOrder::side), or cancel and place",
                    ));
                };
                let mut p = Params::default().s("symbol", sym).s("cancelReplaceMode", "STOP_ON_FAILURE");
                p = order_ref(market, NAME, &a.order, p, "cancelOrderId", "cancelOrigClientOrderId")?;
                p = p.s("side", side_name(r.side));
                p = limit_kind(market, NAME, r.post_only, r.time_in_force, p)?;
                p = p.dec("quantity", q).dec("price", px);
                // The new order keeps the client id it is known by (the venue
                // lets a replacement reuse the cancelled order's id).
                if let OrderRef::ClientOrderId(c) = &a.order {
                    p = p.s("newClientOrderId", c.as_str());
                }
                Ok(("order.cancelReplace", p.s("newOrderRespType", "FULL")))
            }
            (_, qty, price) => {
                let (Some(r), Some(q), Some(px)) = (resting, qty, price) else {
                    return Err(invalid(
                        NAME,
                        "Binance USD-M's order.modify needs the order's side, quantity and price; an amend carries \
                         no side: give all three (AmendOrder::side), or cancel and place",
                    ));
                };
                let p = order_ref(
                    market,
                    NAME,
                    &a.order,
                    Params::default().s("symbol", sym),
                    "orderId",
                    "origClientOrderId",
                )?;
                Ok(("order.modify", p.s("side", side_name(r.side)).dec("quantity", q).dec("price", px)))
            }
        }
    }

    /// The frame of an amend whose order the caller knows (`resting`): what
    /// [`TradingSpec::encode`] refuses for want of the side — spot price
    /// changes (`order.cancelReplace`) and every USDⓈ-M amend
    /// (`order.modify`).
    pub fn encode_amend(
        &self,
        plan: &TradingPlan,
        id: u64,
        amend: &AmendOrder,
        resting: Option<Resting>,
    ) -> Result<String, TradeError> {
        let (method, p) = self.amend_params(market_of(plan)?, amend, resting)?;
        finish(plan, id, method, p)
    }
}

fn finish(plan: &TradingPlan, id: u64, method: &str, p: Params) -> Result<String, TradeError> {
    let signer = plan
        .signer
        .as_ref()
        .ok_or_else(|| invalid("plan", "a Binance trading plan carries its signer (credentials and venue clock)"))?;
    Ok(p.sign(signer, signer.clock.now_ms()).frame(id, method))
}

// ---------------------------------------------------------------------------
// The connection's rules
// ---------------------------------------------------------------------------

/// The trading connection: no streams; with an Ed25519 key, a
/// `session.logon` signed afresh on every connect.
pub struct TradeRules {
    market: Market,
    logon: Option<(Arc<Credentials>, Arc<Clock>)>,
}

impl std::fmt::Debug for TradeRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials print `<redacted>`.
        f.debug_struct("TradeRules").field("market", &self.market).field("logon", &self.logon).finish()
    }
}

impl TradeRules {
    /// The rules of `market`'s trading connection; `logon` signs
    /// `session.logon` (Ed25519 keys only).
    pub fn new(market: Market, logon: Option<(Arc<Credentials>, Arc<Clock>)>) -> TradeRules {
        TradeRules { market, logon }
    }

    /// The `session.logon` frame with a fresh timestamp and signature.
    fn logon_frame(&self, id: u64, creds: &Credentials, clock: &Clock) -> String {
        let ts = clock.now_ms();
        let rw = clock.recv_window_ms;
        let params =
            [("apiKey", creds.api_key().to_string()), ("recvWindow", rw.to_string()), ("timestamp", ts.to_string())];
        let signature = creds.sign(&sorted_query(&params));
        serde_json::json!({
            "id": format!("{LOGON_PREFIX}{id}"),
            "method": "session.logon",
            "params": { "apiKey": creds.api_key(), "recvWindow": rw, "timestamp": ts, "signature": signature }
        })
        .to_string()
    }
}

#[derive(Deserialize)]
struct ReplyW<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<ErrorW<'a>>,
    #[serde(default, borrow)]
    event: Option<EventHeadW<'a>>,
}

#[derive(Deserialize)]
struct ErrorW<'a> {
    #[serde(default)]
    code: i64,
    #[serde(default, borrow)]
    msg: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EventHeadW<'a> {
    #[serde(default, borrow)]
    e: Option<Cow<'a, str>>,
}

impl VenueRules for TradeRules {
    fn name(&self) -> &str {
        "binance"
    }

    /// The server pings (spot every 20 s, pong within a minute; USDⓈ-M every
    /// 3 min, pong within 10); our pings every 30 s make it answer, so a
    /// silence of 100 s is a dead socket.
    fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            client_ping: ClientPing::WsPing(Vec::new()),
            interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(100),
        }
    }

    /// The WebSocket APIs limit requests by weight per IP and by `ORDERS`
    /// per account, not messages per connection (`web-socket-api.md` "Rate
    /// limits": 300 connection attempts per 5 minutes, `REQUEST_WEIGHT` 6,000
    /// per minute; USD-M `websocket-api-general-info`: REST's limits, 2,400
    /// weight per minute, and at most 5 ping/pong frames a second). The
    /// client's order-rate guard keeps `ORDERS`; the pacer keeps the weight
    /// with the heaviest request we send (spot `openOrders.status`, 6;
    /// USD-M `order.status`/`order.cancel`, 1).
    fn limits(&self) -> ConnLimits {
        let max_msgs = if self.market == Market::Spot { 6_000 / 6 } else { 2_400 };
        ConnLimits {
            max_streams: 1,
            max_msgs,
            msg_window: Duration::from_secs(60),
            max_streams_per_request: 1,
            max_request_bytes: 4096,
            max_stream_chars: None,
        }
    }

    fn encode_subscribe(&self, id: u64, _streams: &[String]) -> String {
        // Never sent: the trading connection subscribes nothing.
        format!(r#"{{"id":{id},"method":"session.status"}}"#)
    }

    fn encode_unsubscribe(&self, id: u64, _streams: &[String]) -> String {
        format!(r#"{{"id":{id},"method":"session.status"}}"#)
    }

    fn auth_request(&self, id: u64) -> Option<String> {
        self.logon.as_ref().map(|(creds, clock)| self.logon_frame(id, creds, clock))
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        let r: ReplyW<'_> = match serde_json::from_str(frame) {
            Ok(r) => r,
            Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
        };
        if let Some(ev) = &r.event {
            return if ev.e.as_deref() == Some("serverShutdown") { Inbound::Shutdown } else { Inbound::Unknown };
        }
        if r.id.as_ref().and_then(Value::as_str).is_some_and(|s| s.starts_with(LOGON_PREFIX)) {
            return match (&r.error, r.status) {
                (None, Some(200) | None) if r.result.is_some() => Inbound::AuthOk,
                (Some(e), status) => Inbound::AuthFailed {
                    msg: format!("session.logon refused (status {}): {} {}", status.unwrap_or(0), e.code, e.msg),
                },
                (None, status) => {
                    Inbound::AuthFailed { msg: format!("session.logon refused (status {})", status.unwrap_or(0)) }
                }
            };
        }
        let num = r.id.as_ref().and_then(Value::as_u64);
        match (&r.error, num) {
            // Every answer to a numeric id goes back to its caller, whatever
            // the status; `decode` reads it.
            (Some(e), _) => Inbound::Rejected { id: num, code: e.code, msg: e.msg.to_string(), streams: Vec::new() },
            (None, Some(n)) => Inbound::Ack { id: n },
            // `{"id":null,"status":401,...}` (a revoked session) has an error.
            (None, None) => Inbound::Unknown,
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// A spot order as the WebSocket API answers it (`order.place` RESULT/FULL,
/// `order.cancel`, `order.status`, `openOrders.*`, the parts of
/// `order.cancelReplace`, `order.amend.keepPriority`'s `amendedOrder`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpotOrderW<'a> {
    order_id: AnyId,
    #[serde(default)]
    order_list_id: Option<i64>,
    #[serde(borrow)]
    client_order_id: Text<'a>,
    #[serde(default, borrow)]
    orig_client_order_id: Option<Text<'a>>,
    #[serde(default)]
    price: Option<Dec>,
    /// `origQty`, or `qty` in an amended order.
    #[serde(default)]
    orig_qty: Option<Dec>,
    #[serde(default)]
    qty: Option<Dec>,
    #[serde(default)]
    executed_qty: Option<Dec>,
    /// Spelled so by the venue; `cumulativeQuoteQty` in an amended order.
    #[serde(default)]
    cummulative_quote_qty: Option<Dec>,
    #[serde(default)]
    cumulative_quote_qty: Option<Dec>,
    /// Absent from an `ACK` answer.
    #[serde(default, borrow)]
    status: Option<Text<'a>>,
    #[serde(default, borrow)]
    time_in_force: Option<Text<'a>>,
    #[serde(default, borrow, rename = "type")]
    kind: Option<Text<'a>>,
    #[serde(default, borrow)]
    side: Option<Text<'a>>,
    #[serde(default)]
    stop_price: Option<Dec>,
    #[serde(default, borrow)]
    fills: Vec<SpotFillW<'a>>,
}

/// One fill of a spot `FULL` answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpotFillW<'a> {
    price: Dec,
    qty: Dec,
    commission: Dec,
    #[serde(default, borrow)]
    commission_asset: Option<Text<'a>>,
    trade_id: AnyId,
}

/// A USDⓈ-M order as `order.place`, `order.modify`, `order.cancel` and
/// `order.status` answer it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FuturesOrderW<'a> {
    order_id: AnyId,
    #[serde(borrow)]
    client_order_id: Text<'a>,
    #[serde(default)]
    price: Option<Dec>,
    #[serde(default)]
    avg_price: Option<Dec>,
    orig_qty: Dec,
    executed_qty: Dec,
    #[serde(borrow)]
    status: Text<'a>,
    #[serde(default, borrow)]
    time_in_force: Option<Text<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow)]
    side: Text<'a>,
    #[serde(default)]
    reduce_only: Option<bool>,
    #[serde(default)]
    close_position: Option<bool>,
    #[serde(default, borrow)]
    position_side: Option<Text<'a>>,
    #[serde(default)]
    stop_price: Option<Dec>,
    #[serde(default)]
    activate_price: Option<Dec>,
    #[serde(default)]
    price_rate: Option<Dec>,
}

/// A spot order list's cancel report (`order.cancel` of a list's order,
/// `openOrders.cancelAll` items).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListReportW<'a> {
    #[serde(borrow)]
    order_reports: Vec<&'a RawValue>,
}

/// `order.amend.keepPriority`'s result.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmendedW<'a> {
    #[serde(borrow)]
    amended_order: &'a RawValue,
}

/// `order.cancelReplace`'s result (and its failure's `error.data`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelReplaceW<'a> {
    #[serde(default, borrow)]
    cancel_result: Option<Text<'a>>,
    #[serde(default, borrow)]
    new_order_result: Option<Text<'a>>,
    #[serde(default, borrow)]
    cancel_response: Option<&'a RawValue>,
    #[serde(default, borrow)]
    new_order_response: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CodeMsgW<'a> {
    code: i64,
    #[serde(borrow)]
    msg: Cow<'a, str>,
}

/// The `{code, msg}` of a failed half of a cancel-replace.
fn code_msg(r: Option<&RawValue>) -> Option<CodeMsgW<'_>> {
    r.and_then(|r| parse::<CodeMsgW<'_>>(r.get()).ok())
}

fn side_of(s: Option<&Text<'_>>) -> Result<Side, String> {
    match s.map(Text::as_str) {
        Some("BUY") => Ok(Side::Buy),
        Some("SELL") => Ok(Side::Sell),
        other => Err(format!("unknown side {other:?}")),
    }
}

fn nonzero(d: Option<Dec>) -> Option<Decimal> {
    d.map(|d| d.0).filter(|d| !d.is_zero())
}

/// The user stream's execution type for the change that left an order in
/// `status`.
fn execution_of(status: &str) -> &'static str {
    match status {
        "PARTIALLY_FILLED" | "FILLED" => "TRADE",
        "CANCELED" | "PENDING_CANCEL" => "CANCELED",
        "EXPIRED" | "EXPIRED_IN_MATCH" => "EXPIRED",
        "REJECTED" => "REJECTED",
        _ => "NEW",
    }
}

/// A spot order's state and its fills (`execution` overrides the derived
/// execution type).
fn spot_order(text: &str, execution: Option<&str>) -> Result<(OrderUpdate, Vec<UserTrade>), String> {
    let w: SpotOrderW<'_> = parse(text)?;
    let status = w.status.as_ref().map(Text::as_str).ok_or("order without status")?.to_owned();
    let side = side_of(w.side.as_ref())?;
    let qty = w.orig_qty.or(w.qty).ok_or("order without quantity")?.0;
    let price = w.price.map(|d| d.0);
    let order = OrderUpdate {
        order_id: w.order_id.0.clone(),
        client_order_id: w.client_order_id.as_str().to_owned(),
        orig_client_order_id: w.orig_client_order_id.as_ref().map(|t| t.as_str().to_owned()).filter(|s| !s.is_empty()),
        side,
        order_type: w.kind.as_ref().map(Text::as_str).ok_or("order without type")?.to_owned(),
        time_in_force: w.time_in_force.as_ref().map(|t| t.as_str().to_owned()),
        execution_type: execution.unwrap_or_else(|| execution_of(&status)).to_owned(),
        price,
        qty,
        filled_qty: w.executed_qty.map_or(Decimal::ZERO, |d| d.0),
        avg_price: None,
        // Negative: not available for some historical orders.
        filled_quote_qty: w
            .cummulative_quote_qty
            .or(w.cumulative_quote_qty)
            .map(|d| d.0)
            .filter(|d| *d >= Decimal::ZERO),
        stop_price: nonzero(w.stop_price),
        fill: None,
        reject_reason: None,
        order_list_id: w.order_list_id.filter(|g| *g >= 0),
        reduce_only: None,
        position_side: None,
        close_position: None,
        realized_pnl: None,
        activation_price: None,
        callback_rate: None,
        status,
    };
    // Fills at placement: the new order took liquidity.
    let fills = w
        .fills
        .iter()
        .map(|f| UserTrade {
            order_id: order.order_id.clone(),
            client_order_id: order.client_order_id.clone(),
            side,
            trade_id: f.trade_id.0.clone(),
            price: f.price.0,
            qty: f.qty.0,
            maker: false,
            order_price: price,
            order_qty: Some(qty),
            fee: Some(f.commission.0),
            fee_asset: f.commission_asset.as_ref().map(|t| t.as_str().to_owned()).filter(|s| !s.is_empty()),
        })
        .collect();
    Ok((order, fills))
}

fn futures_order(text: &str, execution: Option<&str>) -> Result<OrderUpdate, String> {
    let w: FuturesOrderW<'_> = parse(text)?;
    let side = side_of(Some(&w.side))?;
    let position_side = match w.position_side.as_ref().map(Text::as_str) {
        None => None,
        Some("BOTH") => Some(PositionSide::Both),
        Some("LONG") => Some(PositionSide::Long),
        Some("SHORT") => Some(PositionSide::Short),
        Some(other) => return Err(format!("unknown position side {other:?}")),
    };
    let filled = w.executed_qty.0 > Decimal::ZERO;
    let status = w.status.as_str().to_owned();
    Ok(OrderUpdate {
        order_id: w.order_id.0,
        client_order_id: w.client_order_id.as_str().to_owned(),
        orig_client_order_id: None,
        side,
        order_type: w.kind.as_str().to_owned(),
        time_in_force: w.time_in_force.as_ref().map(|t| t.as_str().to_owned()),
        execution_type: execution.unwrap_or_else(|| execution_of(&status)).to_owned(),
        price: w.price.map(|d| d.0),
        qty: w.orig_qty.0,
        filled_qty: w.executed_qty.0,
        avg_price: w.avg_price.map(|d| d.0).filter(|_| filled),
        filled_quote_qty: None,
        stop_price: nonzero(w.stop_price),
        fill: None,
        reject_reason: None,
        order_list_id: None,
        reduce_only: w.reduce_only,
        position_side,
        close_position: w.close_position,
        realized_pnl: None,
        activation_price: nonzero(w.activate_price),
        callback_rate: nonzero(w.price_rate),
        status,
    })
}

/// Whether a result object is an `ACK` answer (ids only, no state).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AckW<'a> {
    order_id: AnyId,
    #[serde(default, borrow)]
    client_order_id: Option<Text<'a>>,
    #[serde(default, borrow)]
    status: Option<Text<'a>>,
}

/// The report of the order `order` names among a list's cancel reports.
fn pick_report<'a>(reports: &[&'a RawValue], order: &OrderRef) -> Result<&'a RawValue, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Ids<'a> {
        order_id: AnyId,
        #[serde(default, borrow)]
        orig_client_order_id: Option<Text<'a>>,
    }
    for r in reports {
        let ids: Ids<'_> = parse(r.get())?;
        let hit = match order {
            OrderRef::OrderId(id) => ids.order_id.0 == id.trim(),
            OrderRef::ClientOrderId(c) => ids.orig_client_order_id.as_ref().is_some_and(|t| t.as_str() == c),
        };
        if hit {
            return Ok(r);
        }
    }
    reports.first().copied().ok_or_else(|| "an order list's cancel without order reports".to_string())
}

impl BinanceTrading {
    fn refusal(
        &self,
        market: MarketType,
        request: &'static str,
        status: u16,
        e: &ErrorW<'_>,
    ) -> Result<VenueRefusal, String> {
        let detail = e.data.map(|d| d.get().to_string()).filter(|d| d != "null");
        let (mut kind, mut message) = (refusal_kind(market, status, e.code, &e.msg), e.msg.to_string());
        // A cancel-replace says in `data` which half failed and why.
        if let (Some(data), -2021 | -2022, MarketType::Spot) = (e.data, e.code, market) {
            let w: CancelReplaceW<'_> = parse(data.get())?;
            let cancel_failed = w.cancel_result.as_ref().is_some_and(|t| t.as_str() == "FAILURE");
            let failed = code_msg(if cancel_failed { w.cancel_response } else { w.new_order_response });
            let res = |t: &Option<Text<'_>>| t.as_ref().map_or("?", Text::as_str).to_owned();
            message = format!(
                "{} (cancel {}, new order {}{})",
                e.msg,
                res(&w.cancel_result),
                res(&w.new_order_result),
                failed.as_ref().map_or(String::new(), |f| format!(": {} {}", f.code, f.msg)),
            );
            if let Some(f) = failed {
                kind = refusal_kind(market, status, f.code, &f.msg);
            }
        }
        Ok(VenueRefusal { venue: "binance", request, code: e.code, message, kind, detail })
    }
}

impl TradingSpec for BinanceTrading {
    fn venue(&self) -> Venue {
        Venue::Binance
    }

    fn markets(&self) -> &'static [MarketType] {
        &[MarketType::Spot, MarketType::UsdM]
    }

    fn plan(
        &self,
        market: MarketType,
        account: &str,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<TradingPlan, SeamError> {
        let (mk, url, expected, time_path) = match market {
            MarketType::Spot => (Market::Spot, ws_api_url(env), "spot", "/api/v3/time"),
            MarketType::UsdM => (Market::UsdM, ws_fapi_url(env), "usdm", "/fapi/v1/time"),
            other => {
                return Err(SeamError::Credentials(format!(
                    "binance trades over its WebSocket API on spot and usdm only, not {other:?}"
                )));
            }
        };
        if account != expected {
            return Err(SeamError::Credentials(format!(
                "binance {} orders go to account {expected:?}, not {account:?}",
                mk.name()
            )));
        }
        let logon = (credentials.kind() == KeyKind::Ed25519).then(|| (credentials.clone(), clock.clone()));
        let time_url = format!("{}{time_path}", endpoints(mk, env).rest.trim_end_matches('/'));
        let id = MarketId::new(Venue::Binance, market);
        let session = SessionPlan {
            market: id,
            url,
            rules: Arc::new(TradeRules::new(mk, logon)),
            streams: Vec::new(),
            auth: SessionAuth::InBand,
            time_url: Some(time_url),
            time_field: "serverTime",
            clock_refusals: CLOCK_REFUSALS,
        };
        // The signer dates every request (and signs it with an HMAC key).
        Ok(TradingPlan { market: id, session, signer: Some(Signer { credentials, clock }) })
    }

    fn encode(&self, plan: &TradingPlan, id: u64, request: &OrderRequest) -> Result<String, TradeError> {
        let (method, p) = self.params(market_of(plan)?, request)?;
        finish(plan, id, method, p)
    }

    fn decode(
        &self,
        plan: &TradingPlan,
        request: &OrderRequest,
        frame: &str,
        _received_ns: i64,
    ) -> Result<OrderAnswer, TradeError> {
        let name = request.name();
        let market = plan.market.market;
        let bad = |reason: String| TradeError::Answer { request: name, reason, frame: frame.to_owned() };
        let r: ReplyW<'_> = parse(frame).map_err(bad)?;
        let status = r.status.unwrap_or(if r.error.is_some() { 400 } else { 200 });
        if let Some(e) = &r.error {
            // The venue does not know whether it was carried out.
            if status >= 500 || matches!(e.code, -1006 | -1007) {
                return Err(bad(format!("status {status}, {} {}: execution status unknown", e.code, e.msg)));
            }
            return Err(TradeError::Refused(self.refusal(market, name, status, e).map_err(bad)?));
        }
        let result = r.result.ok_or_else(|| bad("neither result nor error".into()))?.get();
        let spot = market == MarketType::Spot;
        let one = |text: &str, execution: Option<&str>| -> Result<(OrderUpdate, Vec<UserTrade>), TradeError> {
            if spot { spot_order(text, execution) } else { futures_order(text, execution).map(|o| (o, Vec::new())) }
                .map_err(bad)
        };
        match request {
            OrderRequest::Place(_) => {
                let ack: AckW<'_> = parse(result).map_err(bad)?;
                if ack.status.is_none() {
                    return Ok(OrderAnswer::Accepted {
                        order_id: ack.order_id.0,
                        client_order_id: ack.client_order_id.map(|t| t.as_str().to_owned()),
                    });
                }
                let (order, fills) = one(result, None)?;
                Ok(OrderAnswer::Placed { order, fills })
            }
            OrderRequest::Amend(_) if spot => {
                if let Ok(a) = parse::<AmendedW<'_>>(result) {
                    let (order, _) = one(a.amended_order.get(), Some("REPLACED"))?;
                    return Ok(OrderAnswer::Amended { order, fills: Vec::new() });
                }
                let w: CancelReplaceW<'_> = parse(result).map_err(bad)?;
                let new = w.new_order_response.ok_or_else(|| bad("cancel-replace without newOrderResponse".into()))?;
                let (order, fills) = one(new.get(), None)?;
                Ok(OrderAnswer::Amended { order, fills })
            }
            OrderRequest::Amend(_) => {
                let (order, _) = one(result, Some("AMENDMENT"))?;
                Ok(OrderAnswer::Amended { order, fills: Vec::new() })
            }
            OrderRequest::Cancel(c) => {
                let text = match parse::<ListReportW<'_>>(result) {
                    Ok(list) if spot => pick_report(&list.order_reports, &c.order).map_err(bad)?.get(),
                    _ => result,
                };
                Ok(OrderAnswer::Cancelled { order: one(text, None)?.0 })
            }
            OrderRequest::Status(_) => Ok(OrderAnswer::Status { order: one(result, None)?.0 }),
            OrderRequest::OpenOrders { .. } => {
                let items: Vec<&RawValue> = parse(result).map_err(bad)?;
                let orders = items.iter().map(|o| one(o.get(), None).map(|x| x.0)).collect::<Result<Vec<_>, _>>()?;
                Ok(OrderAnswer::OpenOrders { orders })
            }
            OrderRequest::CancelAll { .. } => {
                // One report per order; an order list's item reports each of
                // its orders.
                let items: Vec<&RawValue> = parse(result).map_err(bad)?;
                let mut count = 0u64;
                for item in items {
                    count += match parse::<ListReportW<'_>>(item.get()) {
                        Ok(list) => list.order_reports.len() as u64,
                        Err(_) => 1,
                    };
                }
                Ok(OrderAnswer::CancelledAll { count: Some(count) })
            }
            OrderRequest::Batch { .. } => Err(bad("Binance's WebSocket APIs have no batch order method".into())),
        }
    }

    fn order_limits(&self, market: MarketType) -> Vec<RateLimit> {
        order_rate_limits(market)
    }

    /// New orders count in `ORDERS`: a place, a spot cancel-replace and a
    /// USDⓈ-M modify count one (`web-socket-api.md` "Unfilled Order Count:
    /// 1"; `Modify-Order`: "1 on 10s order rate limit"); an amend that only
    /// lowers the quantity (spot keep-priority, "Unfilled Order Count: 0") and
    /// cancels count none. A USDⓈ-M modify always has a price, so an amend
    /// counts exactly when it changes the price.
    fn cost(&self, limit: &RateLimit, request: &OrderRequest) -> u64 {
        if limit.name != ORDERS {
            return 0;
        }
        match request {
            OrderRequest::Place(_) => 1,
            OrderRequest::Amend(a) => u64::from(a.price.is_some()),
            OrderRequest::Batch { items } => items.iter().map(|i| self.cost(limit, i)).sum(),
            _ => 0,
        }
    }

    /// The answer's `rateLimits` entries of type `ORDERS` (window =
    /// `intervalNum` × `interval`); nothing when it has none.
    fn rate_usage(&self, _market: MarketType, frame: &str) -> Vec<RateUsage> {
        #[derive(Deserialize)]
        struct LimitsW<'a> {
            #[serde(default, borrow, rename = "rateLimits")]
            rate_limits: Vec<RateW<'a>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct RateW<'a> {
            #[serde(borrow)]
            rate_limit_type: Text<'a>,
            #[serde(borrow)]
            interval: Text<'a>,
            interval_num: u64,
            limit: u64,
            count: u64,
        }
        let Ok(w) = parse::<LimitsW<'_>>(frame) else { return Vec::new() };
        w.rate_limits
            .into_iter()
            .filter(|r| r.rate_limit_type.as_str() == ORDERS)
            .filter_map(|r| {
                let unit = match r.interval.as_str() {
                    "SECOND" => 1,
                    "MINUTE" => 60,
                    "HOUR" => 3_600,
                    "DAY" => 86_400,
                    _ => return None,
                };
                Some(RateUsage {
                    limit: RateLimit {
                        name: ORDERS.into(),
                        window: Duration::from_secs(unit * r.interval_num),
                        limit: r.limit,
                    },
                    used: r.count,
                    resets_at_ms: None,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trading::{CancelOrder, PlaceOrder};

    /// binance-spot-api-docs `web-socket-api.md`, "SIGNED request example (HMAC)".
    const DOC_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
    const DOC_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn plan(market: MarketType, creds: Credentials) -> TradingPlan {
        let account = if market == MarketType::Spot { "spot" } else { "usdm" };
        BinanceTrading
            .plan(market, account, &Environment::Production, Arc::new(creds), Arc::new(Clock::default()))
            .unwrap()
    }

    #[test]
    fn hmac_signing_matches_the_docs_example() {
        // The docs sign these parameters, sorted, with recvWindow 100.
        let creds = Credentials::hmac(DOC_KEY, DOC_SECRET).unwrap();
        let signer = Signer { credentials: Arc::new(creds), clock: Arc::new(Clock::new(100)) };
        let p = Params::default()
            .s("symbol", "BTCUSDT")
            .s("side", "SELL")
            .s("type", "LIMIT")
            .s("timeInForce", "GTC")
            .s("quantity", "0.01000000")
            .s("price", "52000.00")
            .sign(&signer, 1_645_423_376_532);
        let sig = p.0.iter().find(|(k, _)| *k == "signature").map(|(_, v)| v.clone());
        assert_eq!(sig, Some(Value::from("aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24")));
        let f: Value = serde_json::from_str(&p.frame(7, "order.place")).unwrap();
        assert_eq!((f["id"].as_u64(), f["params"]["recvWindow"].as_u64()), (Some(7), Some(100)));
        assert_eq!(f["params"]["timestamp"].as_i64(), Some(1_645_423_376_532));
    }

    #[test]
    fn an_ack_answer_is_accepted_and_unknown_outcomes_are_not_refusals() {
        let p = plan(MarketType::Spot, Credentials::ed25519_seed("k", [1; 32]).unwrap());
        let place = OrderRequest::Place(PlaceOrder {
            symbol: "BTCUSDT".into(),
            side: Side::Sell,
            order_type: OrderType::Limit,
            qty: d("0.00847000"),
            price: Some(d("23416.10000000")),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            reduce_only: false,
            client_order_id: None,
        });
        // The docs' ACK answer of order.place.
        let ack = r#"{"id":"56374a46-3061-486b-a311-99ee972eb648","status":200,"result":{"symbol":"BTCUSDT","orderId":12569099453,"orderListId":-1,"clientOrderId":"4d96324ff9d44481926157ec08158a40","transactTime":1660801715639}}"#;
        assert_eq!(
            BinanceTrading.decode(&p, &place, ack, 0).unwrap(),
            OrderAnswer::Accepted {
                order_id: "12569099453".into(),
                client_order_id: Some("4d96324ff9d44481926157ec08158a40".into())
            }
        );
        for f in [
            r#"{"id":1,"status":503,"error":{"code":-1000,"msg":"An unknown error occurred"}}"#,
            r#"{"id":1,"status":400,"error":{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status unknown; execution status unknown."}}"#,
            r#"{"id":1,"status":200}"#,
            r#"{"id":1,"status":200,"result":{"orderId":"x""#,
        ] {
            let e = BinanceTrading.decode(&p, &place, f, 0).unwrap_err();
            assert!(matches!(&e, TradeError::Answer { frame, .. } if frame == f), "{e}");
        }
    }

    #[test]
    fn cost_counts_new_orders_only() {
        let l = &order_rate_limits(MarketType::Spot)[0];
        let amend = |price: Option<Decimal>| {
            OrderRequest::Amend(AmendOrder {
                side: None,
                symbol: "BTCUSDT".into(),
                order: OrderRef::OrderId("1".into()),
                qty: Some(d("1")),
                price,
            })
        };
        assert_eq!(BinanceTrading.cost(l, &amend(None)), 0);
        assert_eq!(BinanceTrading.cost(l, &amend(Some(d("2")))), 1);
        let cancel =
            OrderRequest::Cancel(CancelOrder { symbol: "BTCUSDT".into(), order: OrderRef::OrderId("1".into()) });
        assert_eq!(BinanceTrading.cost(l, &cancel), 0);
        let weight = RateLimit { name: "REQUEST_WEIGHT".into(), window: Duration::from_secs(60), limit: 6000 };
        assert_eq!(BinanceTrading.cost(&weight, &amend(Some(d("2")))), 0);
    }

    #[test]
    fn statuses_name_the_user_streams_execution_types() {
        assert_eq!(execution_of("NEW"), "NEW");
        assert_eq!(execution_of("PARTIALLY_FILLED"), "TRADE");
        assert_eq!(execution_of("EXPIRED_IN_MATCH"), "EXPIRED");
        assert_eq!(execution_of("CANCELED"), "CANCELED");
    }
}
