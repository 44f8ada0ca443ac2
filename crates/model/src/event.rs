//! The normalized event model: one type for every venue's market data, for
//! the account's private user data (orders, balances, positions) and for the
//! engine's status reports.
//!
//! Prices and quantities are exact decimals ([`Decimal`]), never `f64`; they
//! keep the scale the venue sent (`"0.35280000"` stays `"0.35280000"`).
//! Times are integer nanoseconds since the Unix epoch.
//!
//! The JSON form of [`Event`] (one object per line) is a public contract,
//! documented with one example per type in `docs/events.md`: a `type` tag, the
//! common fields (`venue`, `market`, `symbol`, `exchange_ts`, `receive_ts`) and
//! the fields of the kind. Decimals serialize as JSON strings holding the exact
//! value.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A trading venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Venue {
    /// Binance (spot, USDⓈ-M, COIN-M, options).
    Binance,
    /// Bybit v5.
    Bybit,
    /// OKX.
    Okx,
    /// Deribit.
    Deribit,
    /// Coinbase.
    Coinbase,
}

impl Venue {
    /// The JSON name: `binance`, `bybit`, `okx`, `deribit`, `coinbase`.
    pub fn name(self) -> &'static str {
        match self {
            Venue::Binance => "binance",
            Venue::Bybit => "bybit",
            Venue::Okx => "okx",
            Venue::Deribit => "deribit",
            Venue::Coinbase => "coinbase",
        }
    }
}

/// The kind of market an instrument trades on, as the venue groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MarketType {
    /// Spot.
    Spot,
    /// Binance USDⓈ-M futures (`usdm`).
    UsdM,
    /// Binance COIN-M futures (`coinm`).
    CoinM,
    /// Options.
    Options,
    /// Linear (stablecoin-margined) derivatives, e.g. Bybit `linear`.
    Linear,
    /// Inverse (coin-margined) derivatives, e.g. Bybit `inverse`.
    Inverse,
}

impl MarketType {
    /// The JSON name: `spot`, `usdm`, `coinm`, `options`, `linear`, `inverse`.
    pub fn name(self) -> &'static str {
        match self {
            MarketType::Spot => "spot",
            MarketType::UsdM => "usdm",
            MarketType::CoinM => "coinm",
            MarketType::Options => "options",
            MarketType::Linear => "linear",
            MarketType::Inverse => "inverse",
        }
    }
}

/// A side: of the taker for trades, of the order for liquidations, order
/// updates and the account's own fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// `buy`.
    Buy,
    /// `sell`.
    Sell,
}

/// One price level: serialized as `[price, qty]`; a qty of zero removes the
/// level in a [`BookDelta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "(Decimal, Decimal)", into = "(Decimal, Decimal)")]
pub struct Level {
    /// Price.
    pub price: Decimal,
    /// Quantity at that price (zero: remove the level).
    pub qty: Decimal,
}

impl From<(Decimal, Decimal)> for Level {
    fn from((price, qty): (Decimal, Decimal)) -> Level {
        Level { price, qty }
    }
}

impl From<Level> for (Decimal, Decimal) {
    fn from(l: Level) -> (Decimal, Decimal) {
        (l.price, l.qty)
    }
}

/// One normalized event: the common fields and the kind.
///
/// JSON: `{"type": ..., <kind fields>, "venue", "market", "symbol",
/// "exchange_ts", "receive_ts"}` (see `docs/events.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What happened (serialized flat, with its `type` tag).
    #[serde(flatten)]
    pub kind: EventKind,
    /// The venue.
    pub venue: Venue,
    /// The market type.
    pub market: MarketType,
    /// The instrument as the venue spells it, upper case (`BTCUSDT`,
    /// `BTC-250328-80000-C`). Absent on status events that concern no
    /// instrument, and on balance and user-stream events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The venue's time for the event, ns since the epoch; `null` when the
    /// payload carries no time (Binance spot `bookTicker` and partial depth,
    /// status events).
    pub exchange_ts: Option<i64>,
    /// When the frame was received locally, ns since the epoch.
    pub receive_ts: i64,
}

/// What an [`Event`] reports. The JSON `type` is the snake_case variant name.
///
/// Kinds much larger than a trade or a book change are boxed (and so are a
/// trade's rarer fields, [`TradeExtra`]), so that an [`Event`] stays under
/// 200 bytes: events move by value through the queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// One trade.
    Trade(Trade),
    /// An aggregate of trades at one price from one taker order.
    AggTrade(AggTrade),
    /// An incremental order-book change.
    BookDelta(BookDelta),
    /// A complete (possibly depth-limited) order book.
    BookSnapshot(BookSnapshot),
    /// Best bid and ask.
    TopOfBook(TopOfBook),
    /// A change applied to a synchronized local book (published only while
    /// the book is in sync with the venue).
    BookUpdate(BookUpdate),
    /// A local book lost sync; nothing is published for it until the next
    /// `book_snapshot`.
    BookResync(BookResync),
    /// A candlestick.
    Kline(Box<Kline>),
    /// Rolling-window statistics.
    Ticker(Box<Ticker>),
    /// Average price over an interval (Binance spot `avgPrice`).
    AvgPrice(AvgPrice),
    /// Mark price, index price and funding.
    MarkPrice(Box<MarkPrice>),
    /// The value of a price index (Deribit `deribit_price_index`), or the
    /// index and funding of a perpetual (Deribit `perpetual`).
    IndexPrice(IndexPrice),
    /// Open interest of a derivative (Bybit and Deribit tickers, Binance
    /// options `openInterest`).
    OpenInterest(OpenInterest),
    /// A liquidation order.
    Liquidation(Liquidation),
    /// The state of one of the account's orders after a change (private;
    /// boxed: it is much larger than the market-data kinds).
    OrderUpdate(Box<OrderUpdate>),
    /// One fill of one of the account's orders, without the order's state
    /// (Binance futures `TRADE_LITE`, Bybit `execution`; private).
    UserTrade(Box<UserTrade>),
    /// The state of one of the account's order lists (OCO, OTO, ...) after a
    /// change (private).
    OrderListUpdate(Box<OrderListUpdate>),
    /// Balances of the account changed (private).
    BalanceUpdate(BalanceUpdate),
    /// A position of the account changed (private).
    PositionUpdate(Box<PositionUpdate>),
    /// The venue ended the private user-data stream: nothing more arrives on
    /// it until it is subscribed again (a new listen key, a new
    /// subscription).
    UserStreamEnded {
        /// The venue's reason, as it names it: Binance `listenKeyExpired` or
        /// `eventStreamTerminated`.
        reason: String,
    },
    /// A payload this version does not model, kept verbatim.
    Unknown {
        /// The payload text exactly as received.
        raw: String,
    },
    /// A connection is up and subscribed.
    Connected,
    /// A connection went down.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A connection came back after a disconnect.
    Reconnected,
    /// Data was lost on a stream.
    Gap(Gap),
    /// The venue refused a subscription.
    SubscriptionFailed {
        /// The stream (topic) refused.
        stream: String,
        /// The venue's error code.
        code: i64,
        /// The venue's error message.
        msg: String,
    },
    /// The venue refused the credentials of a private connection; the
    /// connection stops (terminal: no reconnect loop).
    AuthFailed {
        /// The venue's answer (never the credentials).
        msg: String,
    },
    /// The engine stopped reconnecting.
    GaveUp {
        /// Why, e.g. `max reconnect retries reached`.
        reason: String,
    },
    /// A frame could not be decoded; the connection goes on.
    Error {
        /// What was wrong.
        msg: String,
        /// The offending payload exactly as received.
        raw: String,
    },
}

impl EventKind {
    /// The JSON `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::Trade(_) => "trade",
            EventKind::AggTrade(_) => "agg_trade",
            EventKind::BookDelta(_) => "book_delta",
            EventKind::BookSnapshot(_) => "book_snapshot",
            EventKind::TopOfBook(_) => "top_of_book",
            EventKind::BookUpdate(_) => "book_update",
            EventKind::BookResync(_) => "book_resync",
            EventKind::Kline(_) => "kline",
            EventKind::Ticker(_) => "ticker",
            EventKind::AvgPrice(_) => "avg_price",
            EventKind::MarkPrice(_) => "mark_price",
            EventKind::IndexPrice(_) => "index_price",
            EventKind::OpenInterest(_) => "open_interest",
            EventKind::Liquidation(_) => "liquidation",
            EventKind::OrderUpdate(_) => "order_update",
            EventKind::UserTrade(_) => "user_trade",
            EventKind::OrderListUpdate(_) => "order_list_update",
            EventKind::BalanceUpdate(_) => "balance_update",
            EventKind::PositionUpdate(_) => "position_update",
            EventKind::UserStreamEnded { .. } => "user_stream_ended",
            EventKind::Unknown { .. } => "unknown",
            EventKind::Connected => "connected",
            EventKind::Disconnected { .. } => "disconnected",
            EventKind::Reconnected => "reconnected",
            EventKind::Gap(_) => "gap",
            EventKind::SubscriptionFailed { .. } => "subscription_failed",
            EventKind::AuthFailed { .. } => "auth_failed",
            EventKind::GaveUp { .. } => "gave_up",
            EventKind::Error { .. } => "error",
        }
    }
}

/// One trade.
///
/// The optional fields are what some venues send with each trade (Deribit);
/// they are absent from the JSON when the venue sends none. The rarer ones
/// are boxed in [`TradeExtra`] so that every event stays small (events are
/// moved through queues by value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TradeFields")]
pub struct Trade {
    /// The venue's trade id, as a string.
    pub trade_id: String,
    /// Price.
    pub price: Decimal,
    /// Quantity.
    pub qty: Decimal,
    /// The taker's side.
    pub side: Side,
    /// The trade's sequence number within its instrument (Deribit
    /// `trade_seq`: consecutive per instrument).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_seq: Option<u64>,
    /// The rarer venue extras; `None` when the venue sent none of them (in
    /// JSON their fields sit next to the others).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<TradeExtra>>,
}

/// The rarer optional fields of a [`Trade`] (Deribit's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeExtra {
    /// Set when the trade was a liquidation, naming who was liquidated as the
    /// venue says it (Deribit `liquidation`: `M` maker, `T` taker, `MT` both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquidation: Option<String>,
    /// The block trade the trade belongs to (Deribit `block_trade_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_trade_id: Option<String>,
    /// The combo (spread) instrument of which the trade is a leg (Deribit
    /// `combo_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combo_id: Option<String>,
    /// The combo trade the leg belongs to (Deribit `combo_trade_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combo_trade_id: Option<String>,
    /// The implied volatility of an option trade, in percent (Deribit `iv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iv: Option<Decimal>,
    /// The instrument's mark price at the trade (Deribit `mark_price`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_price: Option<Decimal>,
    /// The index price at the trade (Deribit `index_price`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_price: Option<Decimal>,
}

impl TradeExtra {
    /// Whether every field is absent.
    pub fn is_empty(&self) -> bool {
        self == &TradeExtra::default()
    }
}

/// A [`Trade`] as its JSON has it, every field flat (what it deserializes
/// from: an all-absent extra becomes `None`, so a trade reads back equal).
#[derive(Deserialize)]
struct TradeFields {
    trade_id: String,
    price: Decimal,
    qty: Decimal,
    side: Side,
    #[serde(default)]
    trade_seq: Option<u64>,
    #[serde(flatten)]
    extra: TradeExtra,
}

impl From<TradeFields> for Trade {
    fn from(f: TradeFields) -> Trade {
        Trade {
            trade_id: f.trade_id,
            price: f.price,
            qty: f.qty,
            side: f.side,
            trade_seq: f.trade_seq,
            extra: (!f.extra.is_empty()).then(|| Box::new(f.extra)),
        }
    }
}

impl Trade {
    /// A trade with no venue extras (every optional field absent).
    pub fn new(trade_id: String, price: Decimal, qty: Decimal, side: Side) -> Trade {
        Trade { trade_id, price, qty, side, trade_seq: None, extra: None }
    }

    /// The rarer extras, or all-absent ones.
    pub fn extra(&self) -> &TradeExtra {
        static NONE: TradeExtra = TradeExtra {
            liquidation: None,
            block_trade_id: None,
            combo_id: None,
            combo_trade_id: None,
            iv: None,
            mark_price: None,
            index_price: None,
        };
        self.extra.as_deref().unwrap_or(&NONE)
    }
}

/// An aggregate trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggTrade {
    /// The aggregate trade id, as a string.
    pub trade_id: String,
    /// Price.
    pub price: Decimal,
    /// Total quantity.
    pub qty: Decimal,
    /// The taker's side.
    pub side: Side,
    /// The first trade id in the aggregate, as a string.
    pub first_trade_id: String,
    /// The last trade id in the aggregate, as a string.
    pub last_trade_id: String,
}

/// An incremental order-book change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookDelta {
    /// First update id covered (Binance `U`).
    pub first_update_id: u64,
    /// Last update id covered (Binance `u`).
    pub last_update_id: u64,
    /// The previous delta's last update id, where the venue chains them
    /// (Binance futures `pu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_update_id: Option<u64>,
    /// Changed bid levels (qty zero: remove).
    pub bids: Vec<Level>,
    /// Changed ask levels (qty zero: remove).
    pub asks: Vec<Level>,
}

/// A full or depth-limited order book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSnapshot {
    /// The update id the book is at.
    pub last_update_id: u64,
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Asks, best first.
    pub asks: Vec<Level>,
}

/// A change applied to a synchronized local book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookUpdate {
    /// The venue's first update id in the applied change.
    pub first_update_id: u64,
    /// The book's update id after the change.
    pub last_update_id: u64,
    /// Bid levels changed (qty `0`: removed), best first.
    pub bids: Vec<Level>,
    /// Ask levels changed (qty `0`: removed), best first.
    pub asks: Vec<Level>,
    /// The best bid after the change (`null` when the side is empty).
    pub best_bid: Option<Level>,
    /// The best ask after the change (`null` when the side is empty).
    pub best_ask: Option<Level>,
}

/// Why a local book stopped being published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookResync {
    /// Why, e.g. `gap: expected first_update_id 101, got 104`.
    pub reason: String,
    /// The last update id the book was in sync at (`null` if it never was).
    pub last_update_id: Option<u64>,
}

/// Best bid and ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopOfBook {
    /// The book update id.
    pub update_id: u64,
    /// Best bid price.
    pub bid_price: Decimal,
    /// Quantity at the best bid.
    pub bid_qty: Decimal,
    /// Best ask price.
    pub ask_price: Decimal,
    /// Quantity at the best ask.
    pub ask_qty: Decimal,
}

/// A candlestick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kline {
    /// The venue's interval name (`1m`, `1h`, `1d`, ...).
    pub interval: String,
    /// Start of the candle, ns since the epoch.
    pub open_time: i64,
    /// End of the candle (inclusive, as the venue states it), ns since the epoch.
    pub close_time: i64,
    /// Open price.
    pub open: Decimal,
    /// High price.
    pub high: Decimal,
    /// Low price.
    pub low: Decimal,
    /// Close (latest) price.
    pub close: Decimal,
    /// Base-asset volume.
    pub volume: Decimal,
    /// Quote-asset volume.
    pub quote_volume: Decimal,
    /// Number of trades, when the venue sends it (Binance `n`); absent when it
    /// does not (Bybit sends no trade count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trades: Option<u64>,
    /// Whether the candle is final.
    pub closed: bool,
}

/// Rolling-window statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticker {
    /// The window: `24h`, `1h`, `4h`, `1d`, ...
    pub window: String,
    /// Open price of the window; absent when the venue sends none (Deribit
    /// tickers carry the change in percent only, [`Ticker::price_change_pct`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<Decimal>,
    /// High price.
    pub high: Decimal,
    /// Low price.
    pub low: Decimal,
    /// Last price.
    pub last_price: Decimal,
    /// Base-asset volume.
    pub volume: Decimal,
    /// Quote-asset volume.
    pub quote_volume: Decimal,
    /// Price change over the window, when the venue sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_change: Option<Decimal>,
    /// Best bid price, when the venue sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_price: Option<Decimal>,
    /// Best ask price, when the venue sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_price: Option<Decimal>,
    /// Price change over the window in percent, when the venue sends it
    /// (Deribit `stats.price_change`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_change_pct: Option<Decimal>,
}

/// Average price over an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvgPrice {
    /// The averaging interval (`5m`).
    pub interval: String,
    /// The average price.
    pub price: Decimal,
}

/// Mark price and funding of a derivative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkPrice {
    /// Mark price.
    pub mark_price: Decimal,
    /// Index price.
    pub index_price: Decimal,
    /// Current funding rate; `null` for instruments without funding (delivery
    /// contracts).
    pub funding_rate: Option<Decimal>,
    /// Next funding time, ns since the epoch; `null` when there is none.
    pub next_funding_ts: Option<i64>,
    /// Funding over the last 8 hours, when the venue sends it (Deribit
    /// perpetuals `funding_8h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding_8h: Option<Decimal>,
    /// Open interest in the venue's unit for the instrument, when the venue
    /// sends it with the mark price (Deribit ticker `open_interest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_interest: Option<Decimal>,
    /// Options: the implied volatility of the mark price, in percent
    /// (Deribit `mark_iv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_iv: Option<Decimal>,
    /// Options: the implied volatility of the best bid, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_iv: Option<Decimal>,
    /// Options: the implied volatility of the best ask, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_iv: Option<Decimal>,
    /// Options: the underlying's price used for the valuation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlying_price: Option<Decimal>,
    /// Options: the underlying's name (Deribit `underlying_index`: an index
    /// such as `index_price`, or a future such as `BTC-27DEC24`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlying_index: Option<String>,
    /// Options: the interest rate used for the valuation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interest_rate: Option<Decimal>,
    /// Options: delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Decimal>,
    /// Options: gamma.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<Decimal>,
    /// Options: vega.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vega: Option<Decimal>,
    /// Options: theta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theta: Option<Decimal>,
    /// Options: rho.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<Decimal>,
}

impl MarkPrice {
    /// A mark price with no venue extras (every optional field absent).
    pub fn new(
        mark_price: Decimal,
        index_price: Decimal,
        funding_rate: Option<Decimal>,
        next_funding_ts: Option<i64>,
    ) -> MarkPrice {
        MarkPrice {
            mark_price,
            index_price,
            funding_rate,
            next_funding_ts,
            funding_8h: None,
            open_interest: None,
            mark_iv: None,
            bid_iv: None,
            ask_iv: None,
            underlying_price: None,
            underlying_index: None,
            interest_rate: None,
            delta: None,
            gamma: None,
            vega: None,
            theta: None,
            rho: None,
        }
    }
}

/// The value of a price index, or a perpetual's index price and funding.
/// The index is the event's `symbol` (Deribit `btc_usd` → `BTC_USD`; for a
/// perpetual, the instrument).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPrice {
    /// The index value.
    pub price: Decimal,
    /// The perpetual's current funding rate, when the payload carries one
    /// (Deribit `perpetual` `interest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding_rate: Option<Decimal>,
}

/// The open interest of a derivative: the size of all open positions (one
/// side), in the venue's unit for the instrument, which `docs/events.md` states
/// per venue and market (Bybit linear: the base coin; Bybit and Deribit
/// inverse: USD; Binance options: contracts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInterest {
    /// The open interest, exactly as the venue sent it (Bybit
    /// `openInterest`, Deribit `open_interest`, Binance options `o`).
    pub open_interest: Decimal,
    /// Its value, when the venue sends one (Bybit `openInterestValue`,
    /// Binance options `h`): in the quote or settlement currency the venue
    /// uses, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_interest_value: Option<Decimal>,
}

impl OpenInterest {
    /// An open interest and its value, if the venue sent one.
    pub fn new(open_interest: Decimal, open_interest_value: Option<Decimal>) -> OpenInterest {
        OpenInterest { open_interest, open_interest_value }
    }
}

/// A liquidation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liquidation {
    /// The side of the liquidation order (`sell`: a long was liquidated).
    pub side: Side,
    /// The order price.
    pub price: Decimal,
    /// The order quantity.
    pub qty: Decimal,
}

/// The side of a futures position: `both` in one-way mode (one net position
/// per symbol, its amount signed), `long` or `short` in hedge mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionSide {
    /// One-way mode: the net position (Binance `BOTH`).
    Both,
    /// Hedge mode: the long position (Binance `LONG`).
    Long,
    /// Hedge mode: the short position (Binance `SHORT`).
    Short,
}

/// The state of one of the account's orders after a change: a new order, a
/// fill, a cancel, an expiry, an amendment, a rejection.
///
/// Order types, times in force, execution types and statuses are the venue's
/// names, unchanged (Binance `LIMIT`, `GTC`, `TRADE`, `PARTIALLY_FILLED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    /// The venue's order id, as a string.
    pub order_id: String,
    /// The client order id (the one given when the order was placed; on a
    /// cancel, Binance sends the cancel request's id here and the original in
    /// `orig_client_order_id`).
    pub client_order_id: String,
    /// The original client order id, when the venue sends one (Binance spot
    /// cancels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_client_order_id: Option<String>,
    /// The order's side.
    pub side: Side,
    /// The order type, as the venue names it (`LIMIT`, `MARKET`,
    /// `STOP_LOSS_LIMIT`, `TRAILING_STOP_MARKET`, ...).
    pub order_type: String,
    /// The time in force, as the venue names it (`GTC`, `IOC`, `FOK`,
    /// `GTX`, ...), when it sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<String>,
    /// What happened to the order in this event, as the venue names it
    /// (Binance `NEW`, `TRADE`, `CANCELED`, `EXPIRED`, `REJECTED`,
    /// `AMENDMENT`, `CALCULATED`, ...).
    pub execution_type: String,
    /// The order's status after the event, as the venue names it (Binance
    /// `NEW`, `PARTIALLY_FILLED`, `FILLED`, `CANCELED`, `EXPIRED`, ...).
    pub status: String,
    /// The order's limit price, as the venue sends it (`0` for Binance market
    /// orders); absent when the venue sends none (Bybit `price: ""`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Decimal>,
    /// The order's quantity.
    pub qty: Decimal,
    /// The quantity filled so far (cumulative).
    pub filled_qty: Decimal,
    /// The average fill price so far, when the venue sends it (Binance
    /// futures `ap`); absent while nothing is filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_price: Option<Decimal>,
    /// The quote quantity filled so far (cumulative), when the venue sends it
    /// (Binance spot `Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled_quote_qty: Option<Decimal>,
    /// The stop (trigger) price of a conditional order; absent for orders
    /// without one (the venue sends `0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<Decimal>,
    /// The fill this event reports, if it reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<Fill>,
    /// Why the order was rejected, as the venue says it; absent when it was
    /// not (Binance `r: "NONE"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// The order list (OCO, OTO, ...) the order belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_list_id: Option<i64>,
    /// Whether the order only reduces a position (futures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce_only: Option<bool>,
    /// The position the order belongs to (futures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_side: Option<PositionSide>,
    /// Whether the order closes the whole position when triggered (futures
    /// close-all conditional orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_position: Option<bool>,
    /// The realized profit of this event's fill, in the margin asset
    /// (futures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realized_pnl: Option<Decimal>,
    /// The activation price of a trailing stop (futures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_price: Option<Decimal>,
    /// The callback rate of a trailing stop, in percent (futures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_rate: Option<Decimal>,
}

/// One fill of one of the account's orders, as part of an [`OrderUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// The venue's trade id, as a string.
    pub trade_id: String,
    /// The fill price.
    pub price: Decimal,
    /// The fill quantity.
    pub qty: Decimal,
    /// The fee charged for this fill (`0` when the venue charged none).
    pub fee: Decimal,
    /// The asset the fee was charged in; absent when the venue names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_asset: Option<String>,
    /// Whether the order was the maker of this trade.
    pub maker: bool,
}

/// One fill of one of the account's orders without the order's state
/// (Binance futures `TRADE_LITE`: sent earlier than the `order_update` that
/// reports the same fill, deduplicate by `order_id` and `trade_id`; Bybit
/// `execution`: every fill, with its fee).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTrade {
    /// The venue's order id, as a string.
    pub order_id: String,
    /// The client order id.
    pub client_order_id: String,
    /// The order's side.
    pub side: Side,
    /// The venue's trade id, as a string.
    pub trade_id: String,
    /// The fill price.
    pub price: Decimal,
    /// The fill quantity.
    pub qty: Decimal,
    /// Whether the order was the maker of this trade.
    pub maker: bool,
    /// The order's limit price, as the venue sends it (`0` for Binance market
    /// orders); absent when the venue sends none (Bybit `orderPrice: ""`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_price: Option<Decimal>,
    /// The order's quantity; absent when the payload does not carry it
    /// (Deribit `user.trades` rows name the order, not its amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_qty: Option<Decimal>,
    /// The commission charged for this fill, exactly as the venue states it
    /// (Bybit `execFee`; negative: a rebate); absent when the payload carries
    /// none (Binance `TRADE_LITE`: the fee arrives with the `order_update` of
    /// the same fill, in its `fill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Decimal>,
    /// The asset the commission was charged in, when the venue names it (Bybit
    /// `feeCurrency`, absent when `""` or not sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_asset: Option<String>,
}

/// The state of one of the account's order lists (Binance spot `listStatus`:
/// OCO, OTO, OTOCO) after a change. The orders' own changes arrive as
/// [`OrderUpdate`]s.
///
/// Contingency types and statuses are the venue's names, unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderListUpdate {
    /// The venue's order list id.
    pub order_list_id: i64,
    /// The list's client id.
    pub list_client_order_id: String,
    /// The kind of list (`OCO`, `OTO`, ...).
    pub contingency_type: String,
    /// What happened to the list (Binance list status type: `RESPONSE`,
    /// `EXEC_STARTED`, `UPDATED`, `ALL_DONE`).
    pub list_status: String,
    /// The state of the list's orders (Binance list order status:
    /// `EXECUTING`, `ALL_DONE`, `REJECT`).
    pub list_order_status: String,
    /// Why the list was rejected, as the venue says it; absent when it was
    /// not (Binance `r: "NONE"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// The orders of the list.
    pub orders: Vec<ListOrder>,
}

/// One order of an [`OrderListUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOrder {
    /// The order's instrument, upper case.
    pub symbol: String,
    /// The venue's order id, as a string.
    pub order_id: String,
    /// The client order id.
    pub client_order_id: String,
}

/// Balances of the account changed. Which fields of a [`Balance`] are present
/// says what kind of change it is: `free`/`locked` are complete balances,
/// `delta`/`locked_delta` are changes, `wallet_balance` and
/// `cross_wallet_balance` are futures wallet balances after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceUpdate {
    /// Why the balances changed, as the venue says it (Binance futures
    /// `DEPOSIT`, `ORDER`, `FUNDING_FEE`, ...); absent when the venue gives
    /// no reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// One entry per asset that changed (may be empty).
    pub balances: Vec<Balance>,
}

/// One asset's balance in a [`BalanceUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The asset (`BTC`, `USDT`, ...).
    pub asset: String,
    /// The free (available) balance after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<Decimal>,
    /// The locked (in orders) balance after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<Decimal>,
    /// A change of the balance not caused by trading (deposits, withdrawals,
    /// transfers: Binance spot `balanceUpdate` `d`; futures `bc`, the balance
    /// change except PnL and commission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Decimal>,
    /// A change of the balance locked by an external system, e.g. as margin
    /// collateral (Binance spot `externalLockUpdate` `d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_delta: Option<Decimal>,
    /// The futures wallet balance after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_balance: Option<Decimal>,
    /// The futures cross-margin wallet balance after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_wallet_balance: Option<Decimal>,
}

/// A futures position of the account after a change (the instrument is the
/// event's `symbol`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionUpdate {
    /// Why the position changed, as the venue says it (Binance `ORDER`,
    /// `FUNDING_FEE`, `MARGIN_TYPE_CHANGE`, ...); absent when the venue gives
    /// no reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Which position of the symbol this is.
    pub position_side: PositionSide,
    /// The position amount in contracts or base units: negative for a short
    /// in one-way mode, `0` when closed.
    pub amount: Decimal,
    /// The average entry price; absent when the venue sends none (Bybit
    /// `entryPrice`/`avgPrice` `""` or missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_price: Option<Decimal>,
    /// The breakeven price, when the venue sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakeven_price: Option<Decimal>,
    /// The unrealized profit and loss; absent when the venue sends none
    /// (Bybit `unrealisedPnl` `""` or missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrealized_pnl: Option<Decimal>,
    /// The accumulated realized profit and loss, when the venue sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realized_pnl: Option<Decimal>,
    /// The margin type, as the venue names it (Binance `isolated`, `cross`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_type: Option<String>,
    /// The isolated wallet (margin) of an isolated position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated_wallet: Option<Decimal>,
}

/// Data lost on a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The stream (topic) that lost data.
    pub stream: String,
    /// Which sequence numbers are missing.
    #[serde(flatten)]
    pub missing: Missing,
}

/// The extent of a [`Gap`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Missing {
    /// Sequence numbers `from..=to` are missing.
    Range {
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
    },
    /// Data was lost but the venue's sequencing cannot say how much
    /// (`"missing": "unknown"`).
    Unknown {
        /// Always [`UnknownExtent::Unknown`].
        missing: UnknownExtent,
    },
}

/// The `"unknown"` marker of [`Missing::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownExtent {
    /// `unknown`.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ev(kind: EventKind, symbol: Option<&str>) -> Event {
        Event {
            kind,
            venue: Venue::Binance,
            market: MarketType::UsdM,
            symbol: symbol.map(str::to_string),
            exchange_ts: Some(1_626_992_741_421_000_000),
            receive_ts: 1_626_992_741_500_000_000,
        }
    }

    fn roundtrip(e: &Event) -> serde_json::Value {
        let s = serde_json::to_string(e).expect("serialize");
        let back: Event = serde_json::from_str(&s).unwrap_or_else(|err| panic!("{s}: {err}"));
        assert_eq!(&back, e, "{s}");
        serde_json::from_str(&s).expect("value")
    }

    #[test]
    fn trade_line_matches_the_contract() {
        let e = ev(
            EventKind::Trade(Trade::new("12345".into(), d("0.35280000"), d("58.00000000"), Side::Sell)),
            Some("NKNUSDT"),
        );
        let v = roundtrip(&e);
        assert_eq!(
            v,
            serde_json::json!({
                "type": "trade", "venue": "binance", "market": "usdm", "symbol": "NKNUSDT",
                "exchange_ts": 1_626_992_741_421_000_000_i64, "receive_ts": 1_626_992_741_500_000_000_i64,
                "trade_id": "12345", "price": "0.35280000", "qty": "58.00000000", "side": "sell"
            })
        );
        // Type first, for people reading the lines.
        assert!(serde_json::to_string(&e).expect("json").starts_with(r#"{"type":"trade","#));
    }

    #[test]
    fn a_trades_boxed_extras_are_flat_in_json_and_read_back_equal() {
        let mut t = Trade::new("ETH-1".into(), d("3000.5"), d("0.1"), Side::Buy);
        t.trade_seq = Some(7);
        t.extra =
            Some(Box::new(TradeExtra { liquidation: Some("T".into()), iv: Some(d("55.25")), ..TradeExtra::default() }));
        let v = roundtrip(&ev(EventKind::Trade(t.clone()), Some("ETH-PERPETUAL")));
        assert_eq!(v["trade_seq"], 7);
        assert_eq!(v["liquidation"], "T");
        assert_eq!(v["iv"], "55.25");
        assert!(v.get("extra").is_none() && v.get("combo_id").is_none(), "{v}");
        assert_eq!(t.extra().iv, Some(d("55.25")));
        // No extras: `extra` reads back `None`, not an empty box.
        let plain = Trade::new("1".into(), d("1"), d("1"), Side::Sell);
        roundtrip(&ev(EventKind::Trade(plain.clone()), Some("X")));
        assert!(plain.extra().is_empty());
        // Events stay small: they move by value through the queues.
        assert!(std::mem::size_of::<Event>() <= 200, "{}", std::mem::size_of::<Event>());
    }

    #[test]
    fn levels_are_pairs_of_strings_and_optional_fields_are_omitted() {
        let e = ev(
            EventKind::BookDelta(BookDelta {
                first_update_id: 157,
                last_update_id: 160,
                prev_update_id: None,
                bids: vec![Level { price: d("0.0024"), qty: d("10") }],
                asks: vec![Level { price: d("0.0026"), qty: d("0") }],
            }),
            Some("BNBBTC"),
        );
        let v = roundtrip(&e);
        assert_eq!(v["bids"], serde_json::json!([["0.0024", "10"]]));
        assert_eq!(v["asks"], serde_json::json!([["0.0026", "0"]]));
        assert!(v.get("prev_update_id").is_none());
    }

    #[test]
    fn decimals_keep_scale_and_never_use_exponents() {
        for s in ["0.00000001", "122624.12345678", "-131.40000000", "2036102085.69746400", "0"] {
            let t = serde_json::to_value(d(s)).expect("json");
            assert_eq!(t, serde_json::Value::String(s.to_string()));
        }
        // Even a value that arrived in exponent form prints plainly.
        let tiny = Decimal::from_str("1e-8").expect("exponent form parses");
        assert_eq!(serde_json::to_value(tiny).expect("json"), "0.00000001");
    }

    #[test]
    fn status_events_serialize_without_symbol() {
        let mut e = ev(EventKind::Connected, None);
        e.exchange_ts = None;
        let v = roundtrip(&e);
        assert_eq!(v["type"], "connected");
        assert!(v.get("symbol").is_none());
        assert_eq!(v["exchange_ts"], serde_json::Value::Null);

        let gap = ev(
            EventKind::Gap(Gap { stream: "btcusdt@trade".into(), missing: Missing::Range { from: 5, to: 9 } }),
            Some("BTCUSDT"),
        );
        let v = roundtrip(&gap);
        assert_eq!((v["type"].as_str(), v["from"].as_u64(), v["to"].as_u64()), (Some("gap"), Some(5), Some(9)));
        let unknown = ev(
            EventKind::Gap(Gap {
                stream: "btcusdt@depth@100ms".into(),
                missing: Missing::Unknown { missing: UnknownExtent::Unknown },
            }),
            None,
        );
        let v = roundtrip(&unknown);
        assert_eq!(v["missing"], "unknown");
        assert!(v.get("from").is_none());

        let failed =
            ev(EventKind::SubscriptionFailed { stream: "x@y".into(), code: 2, msg: "Invalid request".into() }, None);
        assert_eq!(roundtrip(&failed)["code"], 2);
        for k in [
            EventKind::Reconnected,
            EventKind::Disconnected { reason: "eof".into() },
            EventKind::GaveUp { reason: "max reconnect retries reached".into() },
            EventKind::AuthFailed { msg: "-1022 Signature for this request is not valid.".into() },
            EventKind::Error { msg: "bad".into(), raw: "{".into() },
            EventKind::Unknown { raw: r#"{"e":"new"}"#.into() },
        ] {
            let name = k.type_name();
            assert_eq!(roundtrip(&ev(k, None))["type"], name);
        }
    }

    /// Every example line in docs/events.md is an `Event` and serializes back to
    /// the same JSON: the documented contract and the types agree.
    #[test]
    fn documented_examples_parse_and_roundtrip() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md"));
        let mut seen = std::collections::BTreeSet::new();
        let mut in_block = false;
        for line in doc.lines() {
            match line {
                "```json" => in_block = true,
                "```" => in_block = false,
                l if in_block => {
                    let e: Event = serde_json::from_str(l).unwrap_or_else(|err| panic!("{l}: {err}"));
                    let want: serde_json::Value = serde_json::from_str(l).expect("json");
                    assert_eq!(serde_json::to_value(&e).expect("json"), want, "{l}");
                    seen.insert(e.kind.type_name());
                }
                _ => {}
            }
        }
        let all = [
            "trade",
            "agg_trade",
            "book_delta",
            "book_snapshot",
            "top_of_book",
            "book_update",
            "book_resync",
            "kline",
            "ticker",
            "avg_price",
            "mark_price",
            "index_price",
            "open_interest",
            "liquidation",
            "order_update",
            "user_trade",
            "order_list_update",
            "balance_update",
            "position_update",
            "user_stream_ended",
            "unknown",
            "connected",
            "disconnected",
            "reconnected",
            "gap",
            "subscription_failed",
            "gave_up",
            "auth_failed",
            "error",
        ];
        assert_eq!(seen, all.into_iter().collect(), "one example per type");
    }

    #[test]
    fn user_data_kinds_roundtrip_and_omit_absent_fields() {
        let order = OrderUpdate {
            order_id: "8886774".into(),
            client_order_id: "TEST".into(),
            orig_client_order_id: None,
            side: Side::Sell,
            order_type: "LIMIT".into(),
            time_in_force: None,
            execution_type: "TRADE".into(),
            status: "FILLED".into(),
            price: Some(d("7103.10")),
            qty: d("0.001"),
            filled_qty: d("0.001"),
            avg_price: Some(d("7103.10")),
            filled_quote_qty: None,
            stop_price: None,
            fill: Some(Fill {
                trade_id: "88".into(),
                price: d("7103.10"),
                qty: d("0.001"),
                fee: d("0"),
                fee_asset: None,
                maker: true,
            }),
            reject_reason: None,
            order_list_id: None,
            reduce_only: Some(true),
            position_side: Some(PositionSide::Both),
            close_position: None,
            realized_pnl: None,
            activation_price: None,
            callback_rate: None,
        };
        let v = roundtrip(&ev(EventKind::OrderUpdate(Box::new(order)), Some("BTCUSDT")));
        assert_eq!(v["type"], "order_update");
        assert_eq!(
            v["fill"],
            serde_json::json!({"trade_id":"88","price":"7103.10","qty":"0.001","fee":"0","maker":true})
        );
        assert_eq!((v["side"].as_str(), v["position_side"].as_str()), (Some("sell"), Some("both")));
        for absent in ["time_in_force", "orig_client_order_id", "stop_price", "reject_reason", "close_position"] {
            assert!(v.get(absent).is_none(), "{absent}");
        }

        let balance = Balance {
            asset: "BTC".into(),
            free: None,
            locked: None,
            delta: Some(d("-0.5")),
            locked_delta: None,
            wallet_balance: None,
            cross_wallet_balance: None,
        };
        let v = roundtrip(&ev(EventKind::BalanceUpdate(BalanceUpdate { reason: None, balances: vec![balance] }), None));
        assert_eq!(v["balances"], serde_json::json!([{"asset":"BTC","delta":"-0.5"}]));
        assert!(v.get("reason").is_none() && v.get("symbol").is_none());

        let kinds = [
            EventKind::PositionUpdate(Box::new(PositionUpdate {
                reason: Some("ORDER".into()),
                position_side: PositionSide::Short,
                amount: d("-10"),
                entry_price: Some(d("6563.8")),
                breakeven_price: None,
                unrealized_pnl: Some(d("-1423.15600")),
                realized_pnl: None,
                margin_type: None,
                isolated_wallet: None,
            })),
            EventKind::UserTrade(Box::new(UserTrade {
                order_id: "1".into(),
                client_order_id: "c".into(),
                side: Side::Buy,
                trade_id: "2".into(),
                price: d("1.5"),
                qty: d("2"),
                maker: false,
                order_price: Some(d("0")),
                order_qty: Some(d("2")),
                fee: Some(d("-0.0001")),
                fee_asset: Some("USDT".into()),
            })),
            EventKind::OrderListUpdate(Box::new(OrderListUpdate {
                order_list_id: 2,
                list_client_order_id: "l".into(),
                contingency_type: "OCO".into(),
                list_status: "ALL_DONE".into(),
                list_order_status: "ALL_DONE".into(),
                reject_reason: Some("NONE_LEFT".into()),
                orders: vec![ListOrder { symbol: "ETHBTC".into(), order_id: "17".into(), client_order_id: "a".into() }],
            })),
            EventKind::UserStreamEnded { reason: "eventStreamTerminated".into() },
        ];
        for k in kinds {
            let name = k.type_name();
            assert_eq!(roundtrip(&ev(k, Some("BTCUSDT")))["type"], name);
        }
    }

    /// The fee of a user trade and the trade count of a kline are there when
    /// the venue sends them and absent (never `0`) when it does not.
    #[test]
    fn absent_venue_values_are_omitted_not_zero() {
        let mut trade = UserTrade {
            order_id: "1".into(),
            client_order_id: "".into(),
            side: Side::Sell,
            trade_id: "t".into(),
            price: d("95900.1"),
            qty: d("0.5"),
            maker: false,
            order_price: None,
            order_qty: Some(d("0.5")),
            fee: Some(d("26.3725275")),
            fee_asset: Some("USDT".into()),
        };
        let v = roundtrip(&ev(EventKind::UserTrade(Box::new(trade.clone())), Some("BTCUSDT")));
        assert_eq!((v["fee"].as_str(), v["fee_asset"].as_str()), (Some("26.3725275"), Some("USDT")));
        assert!(v.get("order_price").is_none());
        (trade.fee, trade.fee_asset) = (None, None);
        let v = roundtrip(&ev(EventKind::UserTrade(Box::new(trade)), Some("BTCUSDT")));
        assert!(v.get("fee").is_none() && v.get("fee_asset").is_none(), "{v}");
        // Lines written before the fields existed still read.
        let old = r#"{"type":"user_trade","order_id":"1","client_order_id":"c","side":"buy","trade_id":"2","price":"1.5","qty":"2","maker":false,"order_price":"0","order_qty":"2","venue":"binance","market":"usdm","symbol":"BTCUSDT","exchange_ts":1,"receive_ts":2}"#;
        let e: Event = serde_json::from_str(old).expect("old line");
        let EventKind::UserTrade(t) = e.kind else { panic!("{e:?}") };
        assert_eq!((t.fee, t.fee_asset, t.order_price), (None, None, Some(d("0"))));

        let mut kline = Kline {
            interval: "1m".into(),
            open_time: 1,
            close_time: 2,
            open: d("1"),
            high: d("1"),
            low: d("1"),
            close: d("1"),
            volume: d("0"),
            quote_volume: d("0"),
            trades: None,
            closed: false,
        };
        let v = roundtrip(&ev(EventKind::Kline(Box::new(kline.clone())), Some("BTCUSDT")));
        assert!(v.get("trades").is_none(), "{v}");
        kline.trades = Some(0);
        assert_eq!(roundtrip(&ev(EventKind::Kline(Box::new(kline)), Some("BTCUSDT")))["trades"], 0);
    }

    /// `open_interest`: the value is there when the venue sends one and
    /// absent (never `0` or `null`) when it does not.
    #[test]
    fn open_interest_line_matches_the_contract() {
        let mut e =
            ev(EventKind::OpenInterest(OpenInterest::new(d("59891.732"), Some(d("3899996265.01")))), Some("BTCUSDT"));
        (e.venue, e.market) = (Venue::Bybit, MarketType::Linear);
        assert_eq!(
            roundtrip(&e),
            serde_json::json!({
                "type": "open_interest", "open_interest": "59891.732", "open_interest_value": "3899996265.01",
                "venue": "bybit", "market": "linear", "symbol": "BTCUSDT",
                "exchange_ts": 1_626_992_741_421_000_000_i64, "receive_ts": 1_626_992_741_500_000_000_i64
            })
        );
        e.kind = EventKind::OpenInterest(OpenInterest::new(d("1132329370.0"), None));
        let v = roundtrip(&e);
        assert_eq!(v["open_interest"], "1132329370.0", "scale kept");
        assert!(v.get("open_interest_value").is_none(), "{v}");
    }

    #[test]
    fn market_data_kinds_roundtrip() {
        let kinds = [
            EventKind::AggTrade(AggTrade {
                trade_id: "1".into(),
                price: d("1.5"),
                qty: d("2"),
                side: Side::Buy,
                first_trade_id: "10".into(),
                last_trade_id: "12".into(),
            }),
            EventKind::BookSnapshot(BookSnapshot { last_update_id: 9, bids: vec![], asks: vec![] }),
            EventKind::TopOfBook(TopOfBook {
                update_id: 1,
                bid_price: d("1"),
                bid_qty: d("2"),
                ask_price: d("3"),
                ask_qty: d("4"),
            }),
            EventKind::Kline(Box::new(Kline {
                interval: "1m".into(),
                open_time: 1,
                close_time: 2,
                open: d("1"),
                high: d("2"),
                low: d("0.5"),
                close: d("1.5"),
                volume: d("10"),
                quote_volume: d("15"),
                trades: Some(3),
                closed: true,
            })),
            EventKind::Ticker(Box::new(Ticker {
                window: "1h".into(),
                open: Some(d("1")),
                high: d("2"),
                low: d("0.5"),
                last_price: d("1.5"),
                volume: d("10"),
                quote_volume: d("15"),
                price_change: Some(d("0.5")),
                bid_price: None,
                ask_price: None,
                price_change_pct: None,
            })),
            EventKind::AvgPrice(AvgPrice { interval: "5m".into(), price: d("25776.86000000") }),
            EventKind::MarkPrice(Box::new(MarkPrice::new(d("11794.15000000"), d("11784.62659091"), None, None))),
            EventKind::IndexPrice(IndexPrice { price: d("92263.55"), funding_rate: None }),
            EventKind::OpenInterest(OpenInterest::new(d("59891.732"), Some(d("3899996265.01")))),
            EventKind::Liquidation(Liquidation { side: Side::Sell, price: d("9910"), qty: d("0.014") }),
        ];
        for k in kinds {
            let name = k.type_name();
            assert_eq!(roundtrip(&ev(k, Some("BTCUSDT")))["type"], name);
        }
    }
}
