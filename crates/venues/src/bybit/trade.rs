//! The order API over Bybit's order-entry WebSocket, `/v5/trade`
//! ([`TradingSpec`]; PROTOCOLS.md §5.2b). Sources: bybit-exchange/docs @
//! 072c197 `docs/v5/websocket/trade/guideline.mdx` (the socket, its ops and
//! answers), `docs/v5/order/{create-order,amend-order,cancel-order,
//! batch-place,batch-amend,batch-cancel}.mdx` (the request objects),
//! `docs/v5/rate-limit/rate-limit.mdx` (the per-UID limits) and
//! `docs/v5/error.mdx` (the codes).
//!
//! | request | op | `args` |
//! |---|---|---|
//! | place | `order.create` | `[{category, symbol, side, orderType, qty, price?, timeInForce, orderLinkId?, reduceOnly?, marketUnit?}]` |
//! | amend | `order.amend` | `[{category, symbol, orderId or orderLinkId, qty?, price?}]` |
//! | cancel | `order.cancel` | `[{category, symbol, orderId or orderLinkId}]` |
//! | batch of places, amends or cancels | `order.create-batch`, `order.amend-batch`, `order.cancel-batch` | `[{category, request: [items without category]}]` |
//!
//! Every request is `{"reqId":"<engine id>","header":{"X-BAPI-TIMESTAMP":
//! "<venue ms>","X-BAPI-RECV-WINDOW":"<ms>"},"op":..,"args":[..]}`. The venue
//! echoes `reqId` (a string of at most 36 characters; the engine's numeric id
//! written in decimal), and [`BybitTradeRules`] matches every answer by it:
//! `retCode == 0` is [`Inbound::Ack`], anything else [`Inbound::Rejected`]
//! with the id, so the order client always gets the frame back.
//!
//! Answers carry the order's ids only (`data: {orderId, orderLinkId}`):
//! "the ack ... indicates that the request is successfully accepted. Please
//! use websocket order stream to confirm the order status" (guideline), so a
//! success is [`OrderAnswer::Accepted`] and the order's state arrives on the
//! private `order`/`execution` topics. A batch answer pairs `data.list[i]`
//! with `retExtInfo.list[i]` (`{code, msg}`); an item whose code is not 0 is a
//! [`BatchItem::Refusal`] while the others go through.
//!
//! Order status, open orders and cancel all have no op on `/v5/trade` (the
//! guideline lists only the six above; Bybit serves them over REST, `GET
//! /v5/order/realtime` and `POST /v5/order/cancel-all`): they are refused
//! before sending.
//!
//! Quantities and prices are written as JSON strings of the exact decimal
//! (trailing zeros dropped), never through `f64`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::event::{MarketType, Side, Venue};
use ferrofeed_model::rules::{ClientPing, ConnLimits, Heartbeat, Inbound, VenueRules};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::spec::{Bybit, category_of};
use super::{Category, PING, private_url, rest_base};
use crate::auth::{Clock, CredentialError, Credentials, KeyKind};
use crate::env::Environment;
use crate::seam::{MarketId, SeamError, SessionAuth, SessionPlan, VenueSpec};
use crate::trading::{
    BatchItem, OrderAnswer, OrderRef, OrderRequest, OrderType, RateLimit, RateUsage, RefusalKind, Signer, TimeInForce,
    TradeError, TradingPlan, TradingSpec, VenueRefusal,
};

/// The order-entry path.
pub const TRADE_PATH: &str = "/v5/trade";

/// The longest `orderLinkId` (create-order.mdx: "A max of 36 characters.
/// Combinations of numbers, letters (upper and lower cases), dashes, and
/// underscores are supported").
pub const MAX_ORDER_LINK_ID: usize = 36;

/// The window of every per-UID order limit: "per second per UID"
/// (rate-limit.mdx, "API Rate Limit").
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

/// The account the order socket trades for: Bybit's unified trading account
/// (one account for every category; the guideline's scope is "USDT
/// Contract, USDC Contract, Spot, Options, Inverse contract").
pub const ACCOUNT: &str = "unified";

/// `order.create`.
pub const OP_CREATE: &str = "order.create";
/// `order.amend`.
pub const OP_AMEND: &str = "order.amend";
/// `order.cancel`.
pub const OP_CANCEL: &str = "order.cancel";
/// `order.create-batch`.
pub const OP_CREATE_BATCH: &str = "order.create-batch";
/// `order.amend-batch`.
pub const OP_AMEND_BATCH: &str = "order.amend-batch";
/// `order.cancel-batch`.
pub const OP_CANCEL_BATCH: &str = "order.cancel-batch";

/// Every order op of the socket, each with its own per-UID limit (batch ops
/// "have their own rate limit and do not share it with single requests",
/// rate-limit.mdx "Instructions for batch endpoints").
pub const ORDER_OPS: [&str; 6] = [OP_CREATE, OP_AMEND, OP_CANCEL, OP_CREATE_BATCH, OP_AMEND_BATCH, OP_CANCEL_BATCH];

/// The most items one batch request takes: "A maximum of 20 orders (option),
/// 20 orders (inverse), 20 orders (linear), 10 orders (spot) can be placed
/// per request" (guideline, batch-place.mdx, batch-amend.mdx,
/// batch-cancel.mdx).
pub fn max_batch(category: Category) -> usize {
    if category == Category::Spot { 10 } else { 20 }
}

/// The default per-UID limit of `op` on `category`, per second
/// (rate-limit.mdx, "API Rate Limit Table", Trade, UTA2.0 Pro): 10/s
/// everywhere, except spot create, cancel and the three batch ops at 20/s.
/// `None` for an op that is not an order op of the socket.
pub fn order_limit(category: Category, op: &str) -> Option<u64> {
    if !ORDER_OPS.contains(&op) {
        return None;
    }
    Some(match (category, op) {
        (Category::Spot, OP_AMEND) => 10,
        (Category::Spot, _) => 20,
        _ => 10,
    })
}

/// The name of the local limit of `op` on `category` (`linear
/// order.create`): the same name in [`TradingSpec::order_limits`],
/// [`TradingSpec::cost`] and [`TradingSpec::rate_usage`].
pub fn limit_name(category: Category, op: &str) -> String {
    format!("{} {op}", category.name())
}

/// The trade socket's URL in `env`: production `wss://stream.bybit.com/v5/trade`,
/// testnet `wss://stream-testnet.bybit.com/v5/trade` (guideline, "URL"),
/// custom `{ws}/v5/trade` (the simulator serves it on a linear market's
/// port). `None` for demo trading, which the socket does not serve
/// (guideline, "Scope": "Not support: demo trading, spread trading").
pub fn trade_url(env: &Environment) -> Option<String> {
    if *env == Environment::Demo {
        return None;
    }
    // The private socket's host in every other environment.
    let private = private_url(env, None);
    let host = private.strip_suffix("/v5/private").unwrap_or(&private);
    Some(format!("{host}{TRADE_PATH}"))
}

/// The kind of refusal a Bybit `retCode` is (docs/v5/error.mdx; the
/// guideline's "WS OE General code"). Code 10001 is a parameter error, except
/// an unknown symbol, which comes as 10001 `params error: Symbol Is Invalid`.
pub fn refusal_kind(code: i64, message: &str) -> RefusalKind {
    match code {
        // 110004 wallet balance, 110006 cannot cover the position margin,
        // 110007 available balance ("ab not enough for new order"), 110012,
        // 110044 available margin, 110045 wallet balance, 110051..110053
        // balance cannot cover the price, 170033 margin balance, 170131 spot
        // balance.
        110004 | 110006 | 110007 | 110012 | 110044 | 110045 | 110051 | 110052 | 110053 | 170033 | 170131 => {
            RefusalKind::InsufficientFunds
        }
        // 110001 does not exist, 110008 completed or cancelled, 110010
        // cancelled; spot 170139 filled, 170142 cancelled, 170143 not on the
        // book, 170213 does not exist.
        110001 | 110008 | 110010 | 170139 | 170142 | 170143 | 170213 => RefusalKind::OrderNotFound,
        // Spot 170218: "The LIMIT-MAKER order is rejected due to invalid
        // price" (a post-only that would cross). Derivatives take a crossing
        // PostOnly (retCode 0) and cancel it (`EC_PostOnlyWillTakeLiquidity`
        // on the order topic), so they have no code for it.
        170218 => RefusalKind::WouldTake,
        // 10006 per-UID limit, 10018 IP limit (withdrawn from the list, still
        // seen), 10403 the socket's IP limit, 10429 system frequency
        // protection, 20003 too frequent on one session, 30035 option cancels
        // too fast, 170005 too many new orders, 170222 too many requests.
        10006 | 10018 | 10403 | 10429 | 20003 | 30035 | 170005 | 170222 => RefusalKind::RateLimited,
        // 10003 invalid key (on the socket also "too many sessions"), 10004
        // sign, 10005 permission, 10007 authentication, 10010 unmatched IP,
        // 33004 / -2015 expired key.
        10003 | 10004 | 10005 | 10007 | 10010 | 33004 | -2015 => RefusalKind::Unauthorized,
        // 10029 symbol not in the whitelist, 110074 contract not live, spot
        // 170121 invalid symbol, 170151 pair not open, 170157 not for API.
        10029 | 110074 | 170121 | 170151 | 170157 => RefusalKind::UnknownInstrument,
        10001 if is_unknown_symbol(message) => RefusalKind::UnknownInstrument,
        // 10001 parameters, 110003 price out of range, 110017 qty truncated
        // to zero, 110072 orderLinkId reused, 110094 notional below the
        // minimum, 110120/110121 price limits, 30208/30209 price limits;
        // spot 170115..170117 tif/type/side, 170124 amount, 170132..170137
        // price and qty bounds and decimals, 170140 value, 170141 duplicate
        // client id, 170192..170194 price, 170341, 170371, 170372, 170381,
        // 170382 bounds.
        10001 | 110003 | 110017 | 110072 | 110094 | 110120 | 110121 | 30208 | 30209 | 170115 | 170116 | 170117
        | 170124 | 170132 | 170133 | 170134 | 170136 | 170137 | 170140 | 170141 | 170192 | 170193 | 170194 | 170341
        | 170371 | 170372 | 170381 | 170382 => RefusalKind::InvalidOrder,
        _ => RefusalKind::Other,
    }
}

fn is_unknown_symbol(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("symbol") && (m.contains("invalid") || m.contains("not exist"))
}

/// Bybit's order API over `/v5/trade`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BybitTrading;

// ---------------------------------------------------------------------------
// The connection's rules.

/// The rules of the order-entry connection: in-band `auth` (signed as on
/// `/v5/private`, `bybit/auth.rs`), `{"op":"ping"}` every 20 s, and every
/// answer matched to its request by `reqId`.
#[derive(Clone)]
pub struct BybitTradeRules {
    category: Category,
    creds: Arc<Credentials>,
    clock: Arc<Clock>,
    /// `expires` of the auth frame is the venue's time now plus this.
    valid_for: Duration,
    /// How often `{"op":"ping"}` is sent (the venue recommends 20 s; PROTOCOLS.md §5.2).
    pub ping_interval: Duration,
    /// No frame at all for this long means the socket is dead (every ping is answered).
    pub idle_timeout: Duration,
    /// Client messages per second. Bybit states no per-connection message
    /// limit for the socket: only 3000 requests per second per IP (retCode
    /// 10403, guideline) and the per-UID limit of each op (rate-limit.mdx).
    /// The connection allows the sum of the op limits of its category plus
    /// the ping and the auth, so the pacer never holds back an order the
    /// venue's own limits allow (the order client's rate guard keeps those).
    pub max_msgs: usize,
}

impl fmt::Debug for BybitTradeRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BybitTradeRules")
            .field("category", &self.category)
            .field("credentials", &self.creds)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_msgs", &self.max_msgs)
            .finish()
    }
}

impl BybitTradeRules {
    /// The rules of a `category` order connection authenticating with
    /// `creds` (an HMAC key: Bybit takes no Ed25519 keys on its WebSockets)
    /// at the time `clock` gives.
    pub fn new(category: Category, creds: Arc<Credentials>, clock: Arc<Clock>) -> Result<Self, CredentialError> {
        if creds.kind() != KeyKind::Hmac {
            return Err(CredentialError::Unsupported("Bybit accepts HMAC-SHA256 API keys only"));
        }
        let ops: u64 = ORDER_OPS.iter().filter_map(|op| order_limit(category, op)).sum();
        Ok(BybitTradeRules {
            category,
            creds,
            clock,
            valid_for: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_msgs: usize::try_from(ops).unwrap_or(60) + 2,
        })
    }

    /// The category whose orders the connection carries.
    pub fn category(&self) -> Category {
        self.category
    }
}

/// The trade socket's auth frame with request id `id`, valid until
/// `expires_ms`: the `/v5/private` signature (`bybit::auth::payload`), with
/// the id under this socket's `reqId` (guideline, "Authentication").
pub fn auth_frame(creds: &Credentials, id: u64, expires_ms: i64) -> String {
    let signature = creds.sign(&super::auth::payload(expires_ms));
    serde_json::json!({
        "reqId": id.to_string(),
        "op": "auth",
        "args": [creds.api_key(), expires_ms, signature],
    })
    .to_string()
}

/// The fields of a trade-socket frame the engine needs.
#[derive(Deserialize)]
struct Control<'a> {
    #[serde(default, borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(default, rename = "retCode")]
    ret_code: Option<i64>,
    #[serde(default, borrow, rename = "retMsg")]
    ret_msg: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "ret_msg")]
    ret_msg_snake: Option<Cow<'a, str>>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default, rename = "reqId", deserialize_with = "super::req_id")]
    req_id: Option<u64>,
    #[serde(default, borrow)]
    topic: Option<Cow<'a, str>>,
}

impl Control<'_> {
    fn msg(&self) -> &str {
        self.ret_msg.as_deref().or(self.ret_msg_snake.as_deref()).unwrap_or("")
    }
}

impl VenueRules for BybitTradeRules {
    fn name(&self) -> &str {
        "bybit"
    }

    fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            client_ping: ClientPing::Text(PING.to_string()),
            interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
        }
    }

    fn limits(&self) -> ConnLimits {
        ConnLimits {
            // No topics on this socket.
            max_streams: 0,
            max_msgs: self.max_msgs,
            msg_window: Duration::from_secs(1),
            max_streams_per_request: 1,
            max_request_bytes: 21_000,
            max_stream_chars: None,
        }
    }

    /// Never used: the order socket has no topics (it would answer `10404`
    /// op type not found, matched by `reqId` like any other answer).
    fn encode_subscribe(&self, id: u64, streams: &[String]) -> String {
        serde_json::json!({"reqId": id.to_string(), "op": "subscribe", "args": streams}).to_string()
    }

    /// Never used, as [`Self::encode_subscribe`].
    fn encode_unsubscribe(&self, id: u64, streams: &[String]) -> String {
        serde_json::json!({"reqId": id.to_string(), "op": "unsubscribe", "args": streams}).to_string()
    }

    fn auth_request(&self, id: u64) -> Option<String> {
        let valid_ms = i64::try_from(self.valid_for.as_millis()).unwrap_or(10_000);
        Some(auth_frame(&self.creds, id, self.clock.now_ms().saturating_add(valid_ms)))
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        let c: Control<'_> = match serde_json::from_str(frame) {
            Ok(c) => c,
            Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
        };
        match c.op.as_deref() {
            // `{"retCode":0,"retMsg":"OK","op":"pong","data":["<ms>"],"connId"}` (guideline, "Ping").
            Some("pong") => return Inbound::Pong,
            Some("ping") if c.msg() == "pong" => return Inbound::Pong,
            // `{"retCode":0,"retMsg":"OK","op":"auth","connId"}`; refusals
            // `10004` invalid sign, `10001` param error, `20001` repeat auth
            // (guideline, "Authentication"). The `/v5/private` shape
            // (`success`) is accepted too.
            Some("auth") => {
                let ok = match (c.ret_code, c.success) {
                    (Some(0), s) => s != Some(false),
                    (None, Some(true)) => true,
                    _ => false,
                };
                return if ok {
                    Inbound::AuthOk
                } else {
                    Inbound::AuthFailed {
                        msg: match c.ret_code {
                            Some(code) => format!("auth refused: {code} {}", c.msg()),
                            None => format!("auth refused: {}", c.msg()),
                        },
                    }
                };
            }
            _ => {}
        }
        if c.topic.is_some() {
            // No topics are subscribed on this socket.
            return Inbound::Unknown;
        }
        match (c.ret_code, c.req_id) {
            (Some(0), Some(id)) => Inbound::Ack { id },
            // Refusals of a request (its `reqId` echoed), and frames the
            // venue could not take at all (`10404` op not found, decode
            // errors), which echo none and are reported as errors.
            (Some(code), id) if code != 0 => {
                Inbound::Rejected { id, code, msg: c.msg().to_string(), streams: Vec::new() }
            }
            (None, Some(id)) if c.success == Some(false) => {
                Inbound::Rejected { id: Some(id), code: 0, msg: c.msg().to_string(), streams: Vec::new() }
            }
            _ => Inbound::Unknown,
        }
    }
}

// ---------------------------------------------------------------------------
// Request frames.

#[derive(Serialize)]
struct Header {
    #[serde(rename = "X-BAPI-TIMESTAMP")]
    timestamp: String,
    #[serde(rename = "X-BAPI-RECV-WINDOW")]
    recv_window: String,
}

#[derive(Serialize)]
struct Frame<'a> {
    #[serde(rename = "reqId")]
    req_id: String,
    header: Header,
    op: &'static str,
    args: [Arg<'a>; 1],
}

#[derive(Serialize)]
#[serde(untagged)]
enum Arg<'a> {
    One(Item<'a>),
    Batch { category: &'static str, request: Vec<Item<'a>> },
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Create(CreateA<'a>),
    Amend(AmendA<'a>),
    Cancel(CancelA<'a>),
}

/// One `order.create` request object (create-order.mdx); batch items carry
/// no `category`.
#[derive(Serialize)]
struct CreateA<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'static str>,
    symbol: String,
    side: &'static str,
    #[serde(rename = "orderType")]
    order_type: &'static str,
    qty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<String>,
    #[serde(rename = "timeInForce")]
    time_in_force: &'static str,
    #[serde(rename = "orderLinkId", skip_serializing_if = "Option::is_none")]
    order_link_id: Option<&'a str>,
    #[serde(rename = "reduceOnly", skip_serializing_if = "std::ops::Not::not")]
    reduce_only: bool,
    #[serde(rename = "marketUnit", skip_serializing_if = "Option::is_none")]
    market_unit: Option<&'static str>,
}

/// One `order.amend` request object (amend-order.mdx).
#[derive(Serialize)]
struct AmendA<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'static str>,
    symbol: String,
    #[serde(rename = "orderId", skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    #[serde(rename = "orderLinkId", skip_serializing_if = "Option::is_none")]
    order_link_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<String>,
}

/// One `order.cancel` request object (cancel-order.mdx).
#[derive(Serialize)]
struct CancelA<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'static str>,
    symbol: String,
    #[serde(rename = "orderId", skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    #[serde(rename = "orderLinkId", skip_serializing_if = "Option::is_none")]
    order_link_id: Option<&'a str>,
}

/// Why one request (or batch item) cannot be sent.
type Bad = String;

/// An exact decimal as the venue's string: plain digits, trailing zeros
/// dropped (`2800.00` → `2800`), never an exponent.
fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

fn positive(what: &str, v: Decimal) -> Result<String, Bad> {
    if v <= Decimal::ZERO {
        return Err(format!("{what} must be positive, got {v}"));
    }
    Ok(dec(v))
}

fn symbol(s: &str) -> Result<String, Bad> {
    crate::seam::stream_symbol(s).map(str::to_ascii_uppercase).map_err(|_| format!("invalid symbol {s:?}"))
}

/// Checks an `orderLinkId` against create-order.mdx's rule: 1 to 36
/// characters of letters, digits, `-` and `_`.
pub fn check_order_link_id(id: &str) -> Result<(), String> {
    let n = id.chars().count();
    if n == 0 || n > MAX_ORDER_LINK_ID {
        return Err(format!("a Bybit orderLinkId has 1 to {MAX_ORDER_LINK_ID} characters, got {n}"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("a Bybit orderLinkId has only letters, digits, '-' and '_': {id:?}"));
    }
    Ok(())
}

/// The `orderId` / `orderLinkId` pair naming an open order.
fn order_ref(r: &OrderRef) -> Result<(Option<&str>, Option<&str>), Bad> {
    match r {
        OrderRef::OrderId(id) if !id.trim().is_empty() => Ok((Some(id.as_str()), None)),
        OrderRef::OrderId(_) => Err("empty order id".into()),
        OrderRef::ClientOrderId(l) => {
            check_order_link_id(l)?;
            Ok((None, Some(l.as_str())))
        }
    }
}

/// One request object of `request` for `category`; `category` is written
/// into it unless it is a batch item.
fn item<'a>(category: Category, request: &'a OrderRequest, in_batch: bool) -> Result<Item<'a>, Bad> {
    let cat = (!in_batch).then_some(category.name());
    match request {
        OrderRequest::Place(p) => {
            let qty = positive("qty", p.qty)?;
            let (order_type, price) = match (p.order_type, p.price) {
                (OrderType::Limit, Some(px)) => ("Limit", Some(positive("price", px)?)),
                (OrderType::Limit, None) => return Err("a limit order needs a price".into()),
                (OrderType::Market, Some(_)) => return Err("a market order takes no price".into()),
                (OrderType::Market, None) => ("Market", None),
            };
            let time_in_force = match (p.order_type, p.time_in_force, p.post_only) {
                // "PostOnly: If the order would be filled immediately when
                // submitted, it will be cancelled" (create-order.mdx).
                (OrderType::Limit, TimeInForce::Gtc, true) => "PostOnly",
                (_, _, true) => return Err("post only is for good-til-cancelled limit orders".into()),
                (OrderType::Limit, TimeInForce::Gtc, false) => "GTC",
                (OrderType::Limit, TimeInForce::Ioc, false) => "IOC",
                (OrderType::Limit, TimeInForce::Fok, false) => "FOK",
                // "Market order will always use IOC" (create-order.mdx).
                (OrderType::Market, TimeInForce::Gtc | TimeInForce::Ioc, false) => "IOC",
                (OrderType::Market, TimeInForce::Fok, false) => {
                    return Err("Bybit runs every market order as IOC; fill-or-kill needs a limit order".into());
                }
            };
            if p.reduce_only && category == Category::Spot {
                // "reduceOnly ... Valid for linear, inverse & option".
                return Err("reduce only is for linear, inverse and option orders, not spot".into());
            }
            match &p.client_order_id {
                Some(l) => check_order_link_id(l)?,
                // "Options orderLinkId rules: required param".
                None if category == Category::Option => {
                    return Err("a Bybit option order needs a client order id (orderLinkId)".into());
                }
                None => {}
            }
            Ok(Item::Create(CreateA {
                category: cat,
                symbol: symbol(&p.symbol)?,
                side: if p.side == Side::Buy { "Buy" } else { "Sell" },
                order_type,
                qty,
                price,
                time_in_force,
                order_link_id: p.client_order_id.as_deref(),
                reduce_only: p.reduce_only,
                // Spot market buys count `qty` in the quote coin unless told
                // otherwise (create-order.mdx `marketUnit`); `qty` is always
                // the base quantity here.
                market_unit: (category == Category::Spot && p.order_type == OrderType::Market).then_some("baseCoin"),
            }))
        }
        OrderRequest::Amend(a) => {
            if a.qty.is_none() && a.price.is_none() {
                return Err("an amend must change the quantity or the price".into());
            }
            let qty = a.qty.map(|q| positive("qty", q)).transpose()?;
            let price = a.price.map(|p| positive("price", p)).transpose()?;
            let (order_id, order_link_id) = order_ref(&a.order)?;
            Ok(Item::Amend(AmendA { category: cat, symbol: symbol(&a.symbol)?, order_id, order_link_id, qty, price }))
        }
        OrderRequest::Cancel(c) => {
            let (order_id, order_link_id) = order_ref(&c.order)?;
            Ok(Item::Cancel(CancelA { category: cat, symbol: symbol(&c.symbol)?, order_id, order_link_id }))
        }
        OrderRequest::Status(_) => {
            Err("Bybit's /v5/trade has no order status op (the venue answers it over REST, GET /v5/order/realtime)"
                .into())
        }
        OrderRequest::OpenOrders { .. } => {
            Err("Bybit's /v5/trade has no open orders op (the venue answers it over REST, GET /v5/order/realtime)"
                .into())
        }
        OrderRequest::CancelAll { .. } => {
            Err("Bybit's /v5/trade has no cancel-all op (the venue serves it over REST, POST /v5/order/cancel-all)"
                .into())
        }
        OrderRequest::Batch { .. } => Err("a batch cannot hold a batch".into()),
    }
}

/// The op of a single request, or of a batch whose items are all of one
/// kind; with the number of orders it carries.
fn op_of(request: &OrderRequest) -> Option<(&'static str, u64)> {
    match request {
        OrderRequest::Place(_) => Some((OP_CREATE, 1)),
        OrderRequest::Amend(_) => Some((OP_AMEND, 1)),
        OrderRequest::Cancel(_) => Some((OP_CANCEL, 1)),
        OrderRequest::Batch { items } => {
            let op = match items.first()? {
                OrderRequest::Place(_) => OP_CREATE_BATCH,
                OrderRequest::Amend(_) => OP_AMEND_BATCH,
                OrderRequest::Cancel(_) => OP_CANCEL_BATCH,
                _ => return None,
            };
            let same = items.iter().all(|i| std::mem::discriminant(i) == std::mem::discriminant(&items[0]));
            same.then_some((op, items.len() as u64))
        }
        _ => None,
    }
}

/// The category of a plan's market (the plan was made by [`BybitTrading`]).
fn plan_category(plan: &TradingPlan) -> Category {
    category_of(plan.market.market).unwrap_or(Category::Linear)
}

// ---------------------------------------------------------------------------
// Answers.

/// An answer frame (guideline, "Response Parameters").
#[derive(Deserialize)]
struct AnswerW<'a> {
    #[serde(rename = "retCode")]
    ret_code: i64,
    #[serde(default, borrow, rename = "retMsg")]
    ret_msg: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "retExtInfo")]
    ext: Option<&'a RawValue>,
}

/// `data` of a single op, and each `data.list` item of a batch.
#[derive(Deserialize)]
struct IdsW<'a> {
    #[serde(default, borrow, rename = "orderId")]
    order_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "orderLinkId")]
    order_link_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ListW<'a> {
    #[serde(borrow)]
    list: Vec<&'a RawValue>,
}

/// One `retExtInfo.list` item of a batch.
#[derive(Deserialize)]
struct ItemCodeW<'a> {
    code: i64,
    #[serde(default, borrow)]
    msg: Cow<'a, str>,
}

/// The answer's `header` (guideline): the account's limit of the op type.
/// Header names are matched without regard to case, as HTTP headers.
#[derive(Deserialize)]
struct HeaderHolderW<'a> {
    #[serde(default, borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    header: Option<std::collections::BTreeMap<Cow<'a, str>, &'a RawValue>>,
}

/// A header value: a numeric string (as documented) or a number.
fn header_num(v: &RawValue) -> Option<i64> {
    let t = v.get().trim();
    let t = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(t);
    t.trim().parse().ok()
}

/// `{"list":[..]}` of a batch answer with one item per request item.
fn batch_list<'a>(v: Option<&'a RawValue>, what: &str, sent: usize) -> Result<Vec<&'a RawValue>, String> {
    let v = v.ok_or_else(|| format!("no {what}"))?;
    let l: ListW<'a> = serde_json::from_str(v.get()).map_err(|e| format!("{what}: {e}"))?;
    if l.list.len() != sent {
        return Err(format!("{what} has {} items for {sent} sent", l.list.len()));
    }
    Ok(l.list)
}

fn accepted(data: Option<&RawValue>) -> Result<OrderAnswer, String> {
    let data = data.ok_or("no data")?;
    let ids: IdsW<'_> = serde_json::from_str(data.get()).map_err(|e| format!("data: {e}"))?;
    let order_id = ids.order_id.filter(|s| !s.is_empty()).ok_or("no orderId in data")?;
    Ok(OrderAnswer::Accepted {
        order_id: order_id.into_owned(),
        client_order_id: ids.order_link_id.filter(|s| !s.is_empty()).map(Cow::into_owned),
    })
}

impl TradingSpec for BybitTrading {
    fn venue(&self) -> Venue {
        Venue::Bybit
    }

    fn markets(&self) -> &'static [MarketType] {
        &[MarketType::Linear, MarketType::Spot, MarketType::Inverse, MarketType::Options]
    }

    /// The plan's [`Signer`] carries the credentials and the venue clock:
    /// the requests are not signed (the socket's `auth` covers them), but
    /// each carries `X-BAPI-TIMESTAMP` from that clock and its
    /// `recv_window_ms` as `X-BAPI-RECV-WINDOW`.
    fn plan(
        &self,
        market: MarketType,
        account: &str,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<TradingPlan, SeamError> {
        let category = category_of(market).ok_or_else(|| {
            SeamError::Credentials(format!("bybit trades spot, linear, inverse and option, not {}", market.name()))
        })?;
        if account != ACCOUNT && !Bybit.accounts().contains(&account) {
            return Err(SeamError::Credentials(format!(
                "bybit has no account {account:?} (the unified trading account: {ACCOUNT}, or a category name)"
            )));
        }
        let url = trade_url(env).ok_or_else(|| {
            SeamError::Credentials("Bybit's order socket (/v5/trade) does not serve demo trading".into())
        })?;
        let rules = BybitTradeRules::new(category, credentials.clone(), clock.clone())
            .map_err(|e| SeamError::Credentials(e.to_string()))?;
        let session = SessionPlan {
            market: MarketId::new(Venue::Bybit, market),
            url,
            rules: Arc::new(rules),
            streams: Vec::new(),
            auth: SessionAuth::InBand,
            time_url: Some(format!("{}/v5/market/time", rest_base(env))),
            time_field: "time",
            // As `/v5/private`: an expired `expires` is refused like a bad
            // signature.
            clock_refusals: &["Params Error", "request expired"],
        };
        Ok(TradingPlan { market: session.market, session, signer: Some(Signer { credentials, clock }) })
    }

    fn encode(&self, plan: &TradingPlan, id: u64, request: &OrderRequest) -> Result<String, TradeError> {
        let name = request.name();
        let invalid = |reason: String| TradeError::Invalid { request: name, reason };
        let category = plan_category(plan);
        let (op, arg) = match request {
            OrderRequest::Batch { items } => {
                let max = max_batch(category);
                if items.is_empty() || items.len() > max {
                    return Err(invalid(format!(
                        "a Bybit {category} batch holds 1 to {max} orders, got {}",
                        items.len()
                    )));
                }
                let Some((op, _)) = op_of(request) else {
                    return Err(invalid("a batch holds places, amends or cancels, all of one kind".into()));
                };
                let request = items
                    .iter()
                    .enumerate()
                    .map(|(i, r)| item(category, r, true).map_err(|e| format!("item {i}: {e}")))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                (op, Arg::Batch { category: category.name(), request })
            }
            r => {
                let one = item(category, r, false).map_err(invalid)?;
                let (op, _) = op_of(r).ok_or_else(|| invalid("not an order op".into()))?;
                (op, Arg::One(one))
            }
        };
        let clock = plan.signer.as_ref().map(|s| &s.clock).ok_or_else(|| {
            invalid("the trading plan carries no venue clock (it was not made by BybitTrading)".into())
        })?;
        let frame = Frame {
            req_id: id.to_string(),
            header: Header { timestamp: clock.now_ms().to_string(), recv_window: clock.recv_window_ms.to_string() },
            op,
            args: [arg],
        };
        serde_json::to_string(&frame).map_err(|e| invalid(e.to_string()))
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
        let a: AnswerW<'_> = serde_json::from_str(frame).map_err(|e| bad(e.to_string()))?;
        let message = a.ret_msg.as_deref().unwrap_or("");
        if a.ret_code != 0 {
            let detail = a.ext.map(|e| e.get().to_string()).filter(|d| !matches!(d.as_str(), "{}" | "null"));
            return Err(TradeError::Refused(VenueRefusal {
                venue: "bybit",
                request: name,
                code: a.ret_code,
                kind: refusal_kind(a.ret_code, message),
                message: message.to_string(),
                detail,
            }));
        }
        let Some((op, _)) = op_of(request) else {
            return Err(bad(format!("Bybit's /v5/trade has no op for a {name} request")));
        };
        if let Some(got) = a.op.as_deref().filter(|o| *o != op) {
            return Err(bad(format!("the answer is to {got}, not {op}")));
        }
        let OrderRequest::Batch { items } = request else {
            return accepted(a.data).map_err(bad);
        };
        let data = batch_list(a.data, "data.list", items.len()).map_err(bad)?;
        let codes = batch_list(a.ext, "retExtInfo.list", items.len()).map_err(bad)?;
        let items = items
            .iter()
            .zip(data.into_iter().zip(codes))
            .enumerate()
            .map(|(i, (req, (d, c)))| {
                let c: ItemCodeW<'_> =
                    serde_json::from_str(c.get()).map_err(|e| bad(format!("retExtInfo.list[{i}]: {e}")))?;
                if c.code == 0 {
                    let answer = accepted(Some(d)).map_err(|e| bad(format!("data.list[{i}]: {e}")))?;
                    Ok(BatchItem::Answer(Box::new(answer)))
                } else {
                    Ok(BatchItem::Refusal(VenueRefusal {
                        venue: "bybit",
                        request: req.name(),
                        code: c.code,
                        kind: refusal_kind(c.code, &c.msg),
                        message: c.msg.into_owned(),
                        detail: Some(d.get().to_string()),
                    }))
                }
            })
            .collect::<Result<Vec<_>, TradeError>>()?;
        Ok(OrderAnswer::Batch { items })
    }

    /// The default per-UID limit of each order op on `market`, per second
    /// ([`order_limit`]).
    fn order_limits(&self, market: MarketType) -> Vec<RateLimit> {
        let Some(category) = category_of(market) else { return Vec::new() };
        ORDER_OPS
            .iter()
            .filter_map(|op| {
                order_limit(category, op).map(|limit| RateLimit {
                    name: limit_name(category, op),
                    window: RATE_WINDOW,
                    limit,
                })
            })
            .collect()
    }

    /// A single op counts 1 against its own op's limit. A batch of n counts n
    /// against its batch op's limit on linear, inverse and spot ("Number of
    /// consumption = number of requests * number of orders included in a
    /// single request"), and 1 on option ("its rate limit is count based on
    /// the actual number of request sent"): rate-limit.mdx "Instructions for
    /// batch endpoints", guideline "Batch Create/Amend/Cancel Order".
    fn cost(&self, limit: &RateLimit, request: &OrderRequest) -> u64 {
        let Some((op, n)) = op_of(request) else { return 0 };
        let Some(category) = Category::ALL.into_iter().find(|c| limit_name(*c, op) == limit.name) else {
            return 0;
        };
        match request {
            OrderRequest::Batch { .. } if category == Category::Option => 1,
            _ => n,
        }
    }

    /// `header` of an answer: `X-Bapi-Limit` the limit, `X-Bapi-Limit-Status`
    /// what remains (used = limit − remaining), `X-Bapi-Limit-Reset-Timestamp`
    /// when the window resets ("if you have exceeded your rate limit.
    /// Otherwise, this is just the current timestamp"), under the op's limit
    /// name and a 1 s window. Nothing for an answer without them.
    fn rate_usage(&self, market: MarketType, frame: &str) -> Vec<RateUsage> {
        let Some(category) = category_of(market) else { return Vec::new() };
        let Ok(h) = serde_json::from_str::<HeaderHolderW<'_>>(frame) else { return Vec::new() };
        let (Some(op), Some(header)) = (h.op.as_deref(), h.header.as_ref()) else { return Vec::new() };
        if !ORDER_OPS.contains(&op) {
            return Vec::new();
        }
        let get = |key: &str| header.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).and_then(|(_, v)| header_num(v));
        let (Some(limit), Some(remaining)) = (get("X-Bapi-Limit"), get("X-Bapi-Limit-Status")) else {
            return Vec::new();
        };
        let Ok(limit) = u64::try_from(limit) else { return Vec::new() };
        let remaining = u64::try_from(remaining).unwrap_or(0);
        vec![RateUsage {
            limit: RateLimit { name: limit_name(category, op), window: RATE_WINDOW, limit },
            used: limit.saturating_sub(remaining),
            resets_at_ms: get("X-Bapi-Limit-Reset-Timestamp"),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trading::PlaceOrder;

    fn plan(market: MarketType) -> TradingPlan {
        let creds = Arc::new(Credentials::hmac("k", "s").unwrap());
        BybitTrading.plan(market, "unified", &Environment::Production, creds, Arc::new(Clock::default())).unwrap()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn place() -> PlaceOrder {
        PlaceOrder {
            symbol: "ethusdt".into(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            qty: d("0.20"),
            price: Some(d("2800.00")),
            time_in_force: TimeInForce::Gtc,
            post_only: true,
            reduce_only: false,
            client_order_id: None,
        }
    }

    fn enc(market: MarketType, r: &OrderRequest) -> serde_json::Value {
        serde_json::from_str(&BybitTrading.encode(&plan(market), 7, r).unwrap()).unwrap()
    }

    #[test]
    fn urls_per_environment() {
        assert_eq!(trade_url(&Environment::Production).as_deref(), Some("wss://stream.bybit.com/v5/trade"));
        assert_eq!(trade_url(&Environment::Testnet).as_deref(), Some("wss://stream-testnet.bybit.com/v5/trade"));
        assert_eq!(trade_url(&Environment::Demo), None);
        let sim = Environment::custom("ws://127.0.0.1:9500/");
        assert_eq!(trade_url(&sim).as_deref(), Some("ws://127.0.0.1:9500/v5/trade"));
    }

    #[test]
    fn place_is_the_guideline_request() {
        let v = enc(MarketType::Linear, &OrderRequest::Place(place()));
        assert_eq!((v["reqId"].as_str(), v["op"].as_str()), (Some("7"), Some("order.create")));
        assert!(v["header"]["X-BAPI-TIMESTAMP"].as_str().unwrap().parse::<i64>().unwrap() > 0);
        assert_eq!(v["header"]["X-BAPI-RECV-WINDOW"], "5000");
        assert_eq!(
            v["args"],
            serde_json::json!([{"category":"linear","symbol":"ETHUSDT","side":"Buy","orderType":"Limit",
                "qty":"0.2","price":"2800","timeInForce":"PostOnly"}])
        );
    }

    #[test]
    fn limits_and_costs() {
        let l = BybitTrading.order_limits(MarketType::Spot);
        let get = |n: &str| l.iter().find(|x| x.name == n).map(|x| x.limit);
        assert_eq!(l.len(), 6);
        assert_eq!((get("spot order.create"), get("spot order.amend")), (Some(20), Some(10)));
        let lin = BybitTrading.order_limits(MarketType::Linear);
        assert!(lin.iter().all(|x| x.limit == 10 && x.window == RATE_WINDOW));
        let batch = OrderRequest::Batch { items: vec![OrderRequest::Place(place()); 3] };
        let find = |m: MarketType, op: &str| {
            BybitTrading.order_limits(m).into_iter().find(|x| x.name.ends_with(&format!(" {op}"))).unwrap()
        };
        assert_eq!(BybitTrading.cost(&find(MarketType::Linear, OP_CREATE_BATCH), &batch), 3);
        assert_eq!(BybitTrading.cost(&find(MarketType::Options, OP_CREATE_BATCH), &batch), 1);
        assert_eq!(BybitTrading.cost(&find(MarketType::Linear, OP_CREATE), &batch), 0);
        assert_eq!(BybitTrading.cost(&find(MarketType::Linear, OP_CREATE), &OrderRequest::Place(place())), 1);
    }
}
