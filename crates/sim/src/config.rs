//! Simulator configuration: markets, symbols, venue limits and timings.
//!
//! Every limit and duration the real venue enforces is a field here, so tests can
//! shrink a 24 h lifetime or a 60 s pong timeout to milliseconds.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// A Binance market, each served on its own base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarketKind {
    /// Spot (`stream.binance.com`, `/api/v3`).
    Spot,
    /// USDⓈ-M futures (`fstream.binance.com`, `/fapi/v1`), with `/public` `/market` `/private` routes.
    UsdM,
    /// COIN-M futures (`dstream.binance.com`, `/dapi/v1`).
    CoinM,
    /// European options (`/eapi/v1`), routed like USD-M.
    Options,
}

impl MarketKind {
    /// Every market, in a stable order.
    pub const ALL: [MarketKind; 4] = [MarketKind::Spot, MarketKind::UsdM, MarketKind::CoinM, MarketKind::Options];

    /// The short name used in CLI output and URLs: `spot`, `usdm`, `coinm`, `options`.
    pub fn name(self) -> &'static str {
        match self {
            MarketKind::Spot => "spot",
            MarketKind::UsdM => "usdm",
            MarketKind::CoinM => "coinm",
            MarketKind::Options => "options",
        }
    }

    /// Parses the short name.
    pub fn from_name(s: &str) -> Option<MarketKind> {
        MarketKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// REST path prefix (`/api/v3`, `/fapi/v1`, ...).
    pub fn rest_prefix(self) -> &'static str {
        match self {
            MarketKind::Spot => "/api/v3",
            MarketKind::UsdM => "/fapi/v1",
            MarketKind::CoinM => "/dapi/v1",
            MarketKind::Options => "/eapi/v1",
        }
    }

    /// Futures-style payloads (`pu`, `T`, `e` on bookTicker).
    pub fn is_derivative(self) -> bool {
        self != MarketKind::Spot
    }

    /// Whether WebSocket paths are split into `/public`, `/market`, `/private` routes.
    pub fn is_routed(self) -> bool {
        matches!(self, MarketKind::UsdM | MarketKind::Options)
    }
}

/// Which venue's wire protocol a market speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Venue {
    /// Binance (the market's [`MarketKind`] picks spot, USD-M, COIN-M or options).
    #[default]
    Binance,
    /// Bybit v5 public WebSocket of one category (`/v5/public/<category>`).
    Bybit(BybitCategory),
    /// Deribit JSON-RPC 2.0 over WebSocket (`/ws/api/v2`) for one kind of instrument.
    Deribit(DeribitKind),
}

/// A kind of Deribit instrument, each simulated as a market of its own (PROTOCOLS.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeribitKind {
    /// Inverse futures and perpetuals (`BTC-PERPETUAL`, `BTC-25JUN27`): amounts in USD.
    Inverse,
    /// Linear USDC perpetuals (`BTC_USDC-PERPETUAL`): amounts in the base coin.
    Linear,
    /// Options (`BTC-25JUN27-100000-C`): prices in BTC, amounts in contracts.
    Option,
}

impl DeribitKind {
    /// Every kind.
    pub const ALL: [DeribitKind; 3] = [DeribitKind::Inverse, DeribitKind::Linear, DeribitKind::Option];

    /// The market's name: `inverse`, `linear`, `option`.
    pub fn name(self) -> &'static str {
        match self {
            DeribitKind::Inverse => "inverse",
            DeribitKind::Linear => "linear",
            DeribitKind::Option => "option",
        }
    }

    /// Parses the name.
    pub fn from_name(s: &str) -> Option<DeribitKind> {
        DeribitKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The Binance-shaped market whose generator behaviour it reuses
    /// (derivative update ids that jump, so change ids are not contiguous).
    pub fn generator_kind(self) -> MarketKind {
        match self {
            DeribitKind::Inverse => MarketKind::CoinM,
            DeribitKind::Linear => MarketKind::UsdM,
            DeribitKind::Option => MarketKind::Options,
        }
    }
}

/// A Bybit v5 product category served by the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BybitCategory {
    /// Spot (`/v5/public/spot`).
    Spot,
    /// Linear contracts (`/v5/public/linear`).
    Linear,
    /// Inverse contracts (`/v5/public/inverse`): `BTCUSD`, quantities in whole contracts of 1 USD.
    Inverse,
    /// USDC options (`/v5/public/option`): `BTC-26DEC26-100000-C`.
    Option,
}

impl BybitCategory {
    /// Every category.
    pub const ALL: [BybitCategory; 4] =
        [BybitCategory::Spot, BybitCategory::Linear, BybitCategory::Inverse, BybitCategory::Option];

    /// The venue's name: `spot`, `linear`, `inverse`, `option`.
    pub fn name(self) -> &'static str {
        match self {
            BybitCategory::Spot => "spot",
            BybitCategory::Linear => "linear",
            BybitCategory::Inverse => "inverse",
            BybitCategory::Option => "option",
        }
    }

    /// The public WebSocket path, `/v5/public/<name>`.
    pub fn path(self) -> &'static str {
        match self {
            BybitCategory::Spot => "/v5/public/spot",
            BybitCategory::Linear => "/v5/public/linear",
            BybitCategory::Inverse => "/v5/public/inverse",
            BybitCategory::Option => "/v5/public/option",
        }
    }

    /// The Binance-shaped market whose generator behaviour it reuses (spot,
    /// USD-M for linear, COIN-M for inverse, options for option).
    pub fn generator_kind(self) -> MarketKind {
        match self {
            BybitCategory::Spot => MarketKind::Spot,
            BybitCategory::Linear => MarketKind::UsdM,
            BybitCategory::Inverse => MarketKind::CoinM,
            BybitCategory::Option => MarketKind::Options,
        }
    }

    /// Linear or inverse: futures-style payloads (`L`, tickers deltas with
    /// funding and mark, `req_id` always in replies, `allLiquidation`).
    pub fn is_futures(self) -> bool {
        matches!(self, BybitCategory::Linear | BybitCategory::Inverse)
    }
}

/// The venue rules the simulator enforces on every connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Streams one connection may hold (Binance: 1024; options 200).
    pub max_streams_per_conn: usize,
    /// Incoming messages (text, ping, pong) allowed per `msg_window` (spot 5, derivatives 10).
    pub max_incoming_msgs: usize,
    /// The sliding window for `max_incoming_msgs`.
    pub msg_window: Duration,
    /// WebSocket upgrade attempts allowed per `conn_attempt_window` per IP (300 per 5 min).
    pub max_conn_attempts: usize,
    /// The sliding window for `max_conn_attempts`.
    pub conn_attempt_window: Duration,
    /// Server ping cadence (spot 20 s, futures 3 min, options 5 min).
    pub ping_interval: Duration,
    /// Disconnect when no pong echoing a ping arrived for this long (60 s / 10 min / 15 min).
    pub pong_timeout: Duration,
    /// Maximum connection lifetime (24 h).
    pub max_lifetime: Duration,
    /// REST request weight allowed per `rest_weight_window` (spot 6000/min, futures 2400/min).
    pub rest_weight_limit: u32,
    /// The sliding window for `rest_weight_limit`.
    pub rest_weight_window: Duration,
    /// Largest client frame accepted; larger frames close the connection with 1009.
    pub max_client_frame: usize,
    /// Outgoing batches queued per connection before it is dropped as a slow consumer.
    pub outbound_queue: usize,
    /// How long a listenKey lives without a keep-alive (60 min; POST on an active
    /// key and PUT extend it by this much).
    pub listen_key_validity: Duration,
    /// Largest `recvWindow` a signed request may ask for (60 000 ms).
    pub max_recv_window_ms: u64,
    /// Open (resting) orders one account may hold per market.
    pub max_open_orders: usize,
    /// Bybit: close a connection when the client sent nothing (no ping, no
    /// request) for this long (the venue's 10 minutes). Binance markets ignore it.
    pub idle_timeout: Duration,
    /// Bybit: the total characters of the topics one public connection may
    /// hold (the venue's 21 000). Binance markets ignore it.
    pub max_topic_chars: usize,
    /// Bybit: order requests one account may send per `bybit_order_window`
    /// for each op type (`order.create`, `order.amend`, `order.cancel` and
    /// each batch op; a batch counts one per order; `POST /v5/order/create`
    /// shares the `order.create` count). The venue's default tier is 10 a
    /// second on linear (docs/v5/rate-limit/rate-limit.mdx). Over it: retCode
    /// 10006 and nothing placed. Other venues ignore it.
    pub bybit_order_limit: u32,
    /// The rolling window of `bybit_order_limit` (the venue's 1 s).
    pub bybit_order_window: Duration,
    /// Bybit: orders one batch request may carry (linear 20,
    /// docs/v5/websocket/trade/guideline.mdx). Other venues ignore it.
    pub bybit_max_batch: usize,
    /// Deribit's own rules (heartbeats, credits, tokens); other venues ignore them.
    pub deribit: DeribitLimits,
    /// New orders one account may place in each fixed interval (the venue's
    /// `ORDERS` rate limits, counted per account across REST and the
    /// WebSocket API); empty: unlimited. Binance markets only.
    pub order_rate_limits: Vec<OrderRateLimit>,
}

/// An order-count limit: at most `limit` new orders per account in each
/// interval of length `window`, intervals starting at multiples of `window`
/// since the epoch (a 10 s interval resets at :00, :10, :20 ..., a day at
/// 00:00 UTC), as the venue counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRateLimit {
    /// The interval (a whole number of seconds).
    pub window: Duration,
    /// Orders allowed per interval.
    pub limit: u32,
}

impl OrderRateLimit {
    /// `limit` orders per `secs` seconds.
    pub fn new(secs: u64, limit: u32) -> OrderRateLimit {
        OrderRateLimit { window: Duration::from_secs(secs.max(1)), limit }
    }
}

/// Deribit's limits (PROTOCOLS.md §6.3–§6.5), every one configurable so tests
/// can shrink them.
#[derive(Debug, Clone)]
pub struct DeribitLimits {
    /// The smallest `public/set_heartbeat` interval accepted, in seconds (10, §6.3).
    pub min_heartbeat_secs: u64,
    /// Channels one `public/subscribe` call may name (the documented ~500, §6.5);
    /// more is refused with `-32602`.
    pub max_channels_per_call: usize,
    /// Credits a `public/subscribe` / `private/subscribe` costs (3000, §6.5).
    pub subscribe_cost: u64,
    /// The subscribe credit pool (30 000, §6.5).
    pub subscribe_pool: u64,
    /// Subscribe credits refilled per second (10 000: ≈3.3 calls a second, §6.5).
    pub subscribe_refill_per_sec: u64,
    /// Credits any other non-matching-engine request costs (500, §6.5).
    pub request_cost: u64,
    /// The non-matching-engine credit pool (50 000, §6.5).
    pub request_pool: u64,
    /// Non-matching-engine credits refilled per second (10 000, §6.5).
    pub request_refill_per_sec: u64,
    /// Matching-engine requests (buy, sell, edit, cancel...) per second (default tier 5, §6.5).
    pub matching_per_sec: u64,
    /// Matching-engine burst (default tier 20, §6.5).
    pub matching_burst: u64,
    /// Access-token lifetime (`expires_in`): 31 536 000 s, the `public/auth`
    /// example of docs.deribit.com/api-reference/authentication/public-auth.
    pub token_lifetime: Duration,
    /// How far a `client_signature` timestamp may be from the venue clock
    /// (a simulator choice: the docs state no window).
    pub signature_window: Duration,
}

impl Default for DeribitLimits {
    fn default() -> DeribitLimits {
        DeribitLimits {
            min_heartbeat_secs: 10,
            max_channels_per_call: 500,
            subscribe_cost: 3000,
            subscribe_pool: 30_000,
            subscribe_refill_per_sec: 10_000,
            request_cost: 500,
            request_pool: 50_000,
            request_refill_per_sec: 10_000,
            matching_per_sec: 5,
            matching_burst: 20,
            token_lifetime: Duration::from_secs(31_536_000),
            signature_window: Duration::from_secs(60),
        }
    }
}

/// Binance's `ORDERS` limits: spot 50 per 10 s and 160 000 per day (the
/// `exchangeInfo` and rate-limit examples of binance-spot-api-docs
/// `web-socket-api.md`, and binance.com/en/support/faq/360004492232 as of
/// 2024-11); USD-M 300 per 10 s and 1200 per minute (developers.binance.com
/// derivatives/usds-margined-futures/websocket-api-general-info). COIN-M and
/// options: not enforced.
fn binance_order_limits(kind: MarketKind) -> Vec<OrderRateLimit> {
    match kind {
        MarketKind::Spot => vec![OrderRateLimit::new(10, 50), OrderRateLimit::new(86_400, 160_000)],
        MarketKind::UsdM => vec![OrderRateLimit::new(10, 300), OrderRateLimit::new(60, 1200)],
        MarketKind::CoinM | MarketKind::Options => Vec::new(),
    }
}

impl Limits {
    /// The documented Binance limits for `kind` (PROTOCOLS.md §1.2, §2.2, §3, §4).
    pub fn binance(kind: MarketKind) -> Limits {
        let (msgs, ping, pong, streams, weight) = match kind {
            MarketKind::Spot => (5, 20, 60, 1024, 6000),
            MarketKind::UsdM | MarketKind::CoinM => (10, 180, 600, 1024, 2400),
            MarketKind::Options => (10, 300, 900, 200, 2400),
        };
        Limits {
            max_streams_per_conn: streams,
            max_incoming_msgs: msgs,
            msg_window: Duration::from_secs(1),
            max_conn_attempts: 300,
            conn_attempt_window: Duration::from_secs(300),
            ping_interval: Duration::from_secs(ping),
            pong_timeout: Duration::from_secs(pong),
            max_lifetime: Duration::from_secs(24 * 3600),
            rest_weight_limit: weight,
            rest_weight_window: Duration::from_secs(60),
            max_client_frame: 1 << 20,
            outbound_queue: 8192,
            listen_key_validity: Duration::from_secs(3600),
            max_recv_window_ms: 60_000,
            max_open_orders: 200,
            idle_timeout: Duration::from_secs(600),
            max_topic_chars: usize::MAX,
            bybit_order_limit: 10,
            bybit_order_window: Duration::from_secs(1),
            bybit_max_batch: 20,
            deribit: DeribitLimits::default(),
            order_rate_limits: binance_order_limits(kind),
        }
    }

    /// The documented Deribit limits (PROTOCOLS.md §6): no server WebSocket
    /// pings (liveness is the JSON heartbeat of `public/set_heartbeat`), the
    /// credit system instead of a message rate (the simulator still caps raw
    /// frames at 300 a second, the WebSocket burst the rate-limits page gives),
    /// 32 connections per IP are not enforced, at most 500 channels per call
    /// and 10 000 per connection, no stated connection lifetime (24 h here),
    /// and no idle cut (the probe's ~60 s close of a silent, unsubscribed
    /// socket is not emulated).
    pub fn deribit() -> Limits {
        let far = Duration::from_secs(100 * 365 * 86_400);
        Limits {
            max_streams_per_conn: 10_000,
            max_incoming_msgs: 300,
            ping_interval: far,
            pong_timeout: far,
            idle_timeout: far,
            max_topic_chars: usize::MAX,
            ..Limits::binance(MarketKind::UsdM)
        }
    }

    /// The documented Bybit v5 public limits (PROTOCOLS.md §5.2): 500 new
    /// connections per 5 minutes, a 10-minute idle cut, no server pings (the
    /// client pings). The venue states no incoming message rate or connection
    /// lifetime for public streams; the simulator allows 100 messages a second
    /// and 24 h. The topics of one connection may total 21 000 characters;
    /// `max_streams_per_conn` is enforced on option connections only (2000,
    /// see [`Limits::bybit_for`]).
    pub fn bybit() -> Limits {
        Limits {
            max_streams_per_conn: 21_000 / 16,
            max_topic_chars: 21_000,
            max_incoming_msgs: 100,
            max_conn_attempts: 500,
            ping_interval: Duration::from_secs(100 * 365 * 86_400),
            pong_timeout: Duration::from_secs(100 * 365 * 86_400),
            ..Limits::binance(MarketKind::Spot)
        }
    }
}

impl Limits {
    /// [`Limits::bybit`] with the category's own caps: option connections
    /// hold at most 2000 topics.
    pub fn bybit_for(category: BybitCategory) -> Limits {
        let mut l = Limits::bybit();
        if category == BybitCategory::Option {
            l.max_streams_per_conn = 2000;
        }
        l
    }
}

/// Cadences of the generated market data.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How often the generator advances the books.
    pub tick: Duration,
    /// Book actions (add, cancel, take) per symbol per second.
    pub actions_per_sec: f64,
    /// Multiplies every stream cadence below (and the tick); 0.1 runs ten times faster.
    pub scale: f64,
    /// Grace between a `serverShutdown` notice and the server closing the sockets.
    pub shutdown_grace: Duration,
    /// How old a "stale" REST snapshot is.
    pub stale_snapshot_age: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            tick: Duration::from_millis(10),
            actions_per_sec: 20.0,
            scale: 1.0,
            shutdown_grace: Duration::from_secs(5),
            stale_snapshot_age: Duration::from_secs(5),
        }
    }
}

impl Timing {
    /// A stream cadence after scaling, never below 1 ms.
    pub(crate) fn cadence(&self, ms: u64) -> Duration {
        Duration::from_secs_f64((ms as f64 * self.scale / 1000.0).max(0.001))
    }
}

/// The default spot instruments: (base, quote, price decimals, quantity decimals, price).
const SPOT: &[(&str, &str, u32, u32, f64)] = &[
    ("BTC", "USDT", 2, 5, 97000.0),
    ("ETH", "USDT", 2, 4, 3400.0),
    ("BNB", "USDT", 2, 3, 640.0),
    ("SOL", "USDT", 2, 3, 190.0),
    ("XRP", "USDT", 4, 1, 2.3),
    ("ADA", "USDT", 4, 1, 0.95),
    ("DOGE", "USDT", 5, 0, 0.38),
    ("TRX", "USDT", 4, 1, 0.25),
    ("AVAX", "USDT", 2, 2, 38.0),
    ("LINK", "USDT", 2, 2, 23.0),
    ("DOT", "USDT", 3, 2, 7.1),
    ("LTC", "USDT", 2, 3, 105.0),
    ("BCH", "USDT", 1, 3, 450.0),
    ("ATOM", "USDT", 3, 2, 6.9),
    ("NEAR", "USDT", 3, 1, 5.2),
    ("UNI", "USDT", 3, 2, 13.0),
    ("APT", "USDT", 2, 2, 9.8),
    ("ARB", "USDT", 4, 1, 0.77),
    ("OP", "USDT", 3, 2, 1.9),
    ("FIL", "USDT", 3, 2, 5.0),
    ("ETH", "BTC", 5, 4, 0.035),
    ("BNB", "BTC", 6, 3, 0.0066),
    ("SOL", "BTC", 7, 2, 0.00196),
    ("LTC", "BTC", 6, 2, 0.00108),
];

/// The default spot price of `base` against USDT (the underlying of the
/// simulated options and inverse contracts).
pub(crate) fn spot_price(base: &str) -> Option<f64> {
    SPOT.iter().find(|(b, q, ..)| *b == base && *q == "USDT").map(|(.., px)| *px)
}

/// One tradable instrument.
#[derive(Debug, Clone)]
pub struct SymbolSpec {
    /// Upper-case venue symbol (`BTCUSDT`, `BTCUSD_PERP`, `BTC-261225-100000-C`).
    pub name: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Decimals of the tick size (2 → tick 0.01).
    pub price_decimals: u32,
    /// Decimals of the step size (3 → step 0.001).
    pub qty_decimals: u32,
    /// Initial mid price in ticks.
    pub start_price_ticks: i64,
    /// The tick in units of `10^-price_decimals` (1 on every Binance and Bybit
    /// symbol; Deribit's BTC-PERPETUAL ticks by 0.5 = 5 × 0.1). Generated
    /// prices are whole ticks: `price = ticks × tick_multiple / 10^price_decimals`.
    pub tick_multiple: i64,
}

impl SymbolSpec {
    /// A symbol with an explicit precision and start price (in whole quote units).
    pub fn new(name: &str, base: &str, quote: &str, price_decimals: u32, qty_decimals: u32, price: f64) -> SymbolSpec {
        SymbolSpec {
            name: name.to_string(),
            base: base.to_string(),
            quote: quote.to_string(),
            price_decimals,
            qty_decimals,
            start_price_ticks: (price * 10f64.powi(price_decimals as i32)).round() as i64,
            tick_multiple: 1,
        }
    }

    /// A symbol whose tick is `tick_multiple × 10^-price_decimals`, starting at
    /// `price` (rounded to the tick).
    pub fn with_tick(
        name: &str,
        base: &str,
        quote: &str,
        price_decimals: u32,
        tick_multiple: i64,
        qty_decimals: u32,
        price: f64,
    ) -> SymbolSpec {
        let mut s = SymbolSpec::new(name, base, quote, price_decimals, qty_decimals, price);
        s.tick_multiple = tick_multiple.max(1);
        s.start_price_ticks = (price * 10f64.powi(price_decimals as i32) / s.tick_multiple as f64).round() as i64;
        s
    }

    /// The default instruments of a Deribit market (ticks per docs.deribit.com
    /// instrument data; BTC futures tick 0.50 USD with a 10 USD contract per
    /// legacy.deribit.com/pages/docs/futures): inverse `BTC-PERPETUAL` (tick
    /// 0.5), `ETH-PERPETUAL` (tick 0.05) and the dated `BTC-25JUN27` (tick 0.5),
    /// amounts in USD of 10 USD (BTC) or 1 USD (ETH) contracts; linear
    /// `BTC_USDC-PERPETUAL` (tick 1 USDC, amounts in BTC of 0.0001 BTC
    /// contracts); options `BTC-25JUN27-100000-C` and `-P` (prices in BTC, tick
    /// 0.0005, amounts in contracts of 1 BTC, steps of 0.1).
    pub fn deribit_defaults(kind: DeribitKind) -> Vec<SymbolSpec> {
        let btc = spot_price("BTC").unwrap_or(97_000.0);
        let eth = spot_price("ETH").unwrap_or(3_400.0);
        match kind {
            DeribitKind::Inverse => vec![
                SymbolSpec::with_tick("BTC-PERPETUAL", "BTC", "USD", 1, 5, 0, btc),
                SymbolSpec::with_tick("ETH-PERPETUAL", "ETH", "USD", 2, 5, 0, eth),
                SymbolSpec::with_tick("BTC-25JUN27", "BTC", "USD", 1, 5, 0, btc * 1.02),
            ],
            DeribitKind::Linear => vec![SymbolSpec::with_tick("BTC_USDC-PERPETUAL", "BTC", "USDC", 0, 1, 4, btc)],
            DeribitKind::Option => ["C", "P"]
                .iter()
                .map(|cp| {
                    let intrinsic = if *cp == "C" { btc - 100_000.0 } else { 100_000.0 - btc };
                    let px = (intrinsic.max(0.0) + btc * 0.05) / btc;
                    SymbolSpec::with_tick(&format!("BTC-25JUN27-100000-{cp}"), "BTC", "BTC", 4, 5, 1, px)
                })
                .collect(),
        }
    }

    /// `n` synthetic symbols (`S0000USDT`, `S0001USDT`, ...) for sharding and scale tests.
    pub fn synthetic(n: usize) -> Vec<SymbolSpec> {
        (0..n)
            .map(|i| {
                let base = format!("S{i:04}");
                SymbolSpec::new(&format!("{base}USDT"), &base, "USDT", 4, 2, 10.0 + (i % 97) as f64)
            })
            .collect()
    }

    /// The default symbols of a Bybit category: the Binance spot (or USD-M)
    /// defaults on spot and linear; inverse perpetuals `BTCUSD`, `ETHUSD`, ...
    /// (whole contracts); options `BTC-26DEC26-<strike>-<C|P>` and ETH, five
    /// strikes around the spot price, quoted in USDC.
    pub fn bybit_defaults(category: BybitCategory) -> Vec<SymbolSpec> {
        match category {
            BybitCategory::Spot | BybitCategory::Linear => SymbolSpec::defaults(category.generator_kind()),
            BybitCategory::Inverse => [("BTC", 2), ("ETH", 2), ("XRP", 4), ("SOL", 3), ("ADA", 4), ("DOT", 3)]
                .iter()
                .map(|(b, pd)| SymbolSpec::new(&format!("{b}USD"), b, "USD", *pd, 0, spot_price(b).unwrap_or(1.0)))
                .collect(),
            BybitCategory::Option => ["BTC", "ETH"]
                .iter()
                .flat_map(|b| {
                    let spot = spot_price(b).unwrap_or(100.0);
                    let step = if *b == "BTC" { 5000.0 } else { 200.0 };
                    (-2..=2).flat_map(move |k| {
                        let strike = (spot / step).round() * step + k as f64 * step;
                        ["C", "P"].map(|cp| {
                            let intrinsic = if cp == "C" { spot - strike } else { strike - spot };
                            let px = intrinsic.max(0.0) + spot * 0.03;
                            SymbolSpec::new(&format!("{b}-26DEC26-{strike:.0}-{cp}"), b, "USDC", 1, 2, px)
                        })
                    })
                })
                .collect(),
        }
    }

    /// The default symbol list of a market: a few dozen liquid instruments.
    pub fn defaults(kind: MarketKind) -> Vec<SymbolSpec> {
        match kind {
            MarketKind::Spot => {
                SPOT.iter().map(|(b, q, pd, qd, px)| SymbolSpec::new(&format!("{b}{q}"), b, q, *pd, *qd, *px)).collect()
            }
            MarketKind::UsdM => SPOT
                .iter()
                .filter(|(_, q, ..)| *q == "USDT")
                .map(|(b, q, pd, qd, px)| SymbolSpec::new(&format!("{b}{q}"), b, q, *pd, (*qd).min(3), *px))
                .collect(),
            MarketKind::CoinM => ["BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "DOGE", "LINK"]
                .iter()
                .zip([97000.0, 3400.0, 640.0, 190.0, 2.3, 0.95, 0.38, 23.0])
                .flat_map(|(b, px)| {
                    let pd = if px > 100.0 { 1 } else { 4 };
                    [
                        SymbolSpec::new(&format!("{b}USD_PERP"), b, "USD", pd, 0, px),
                        SymbolSpec::new(&format!("{b}USD_261225"), b, "USD", pd, 0, px * 1.01),
                    ]
                })
                .collect(),
            MarketKind::Options => ["BTC", "ETH"]
                .iter()
                .zip([97000.0f64, 3400.0])
                .flat_map(|(b, spot)| {
                    let step = if *b == "BTC" { 5000.0 } else { 200.0 };
                    (-2..=2).flat_map(move |k| {
                        let strike = (spot / step).round() * step + k as f64 * step;
                        ["C", "P"].map(|cp| {
                            let intrinsic = if cp == "C" { spot - strike } else { strike - spot };
                            let px = intrinsic.max(0.0) + spot * 0.03;
                            SymbolSpec::new(&format!("{b}-261225-{strike:.0}-{cp}"), b, "USDT", 1, 2, px)
                        })
                    })
                })
                .collect(),
        }
    }
}

/// Load mode: pre-encoded, sequenced frames for throughput, latency and loss
/// accounting (docs/sim.md, "Load mode").
///
/// Every market whose venue has load forms serves them all, each produced
/// independently: Binance `<symbol>@trade` (lower case; the trade id `t` is
/// the sequence number, `E` and `T` the send time in **microseconds**) on
/// every Binance market, and on spot also `load<k>usdt@depth@100ms` diffs of
/// `books` synthetic books with a REST snapshot; Bybit (spot, linear,
/// inverse) `publicTrade.<SYMBOL>` with the sequence number as its trade id.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Upper-case symbol of the trade forms, e.g. `LOADUSDT`. Not part of the market's books.
    pub symbol: String,
    /// Frames to produce per form (the depth form: in total, over its books).
    pub messages: u64,
    /// Frames per second per form; `None` sends as fast as the slowest subscriber reads.
    pub rate: Option<u64>,
    /// The first sequence number (trade id; a depth book's first `U`).
    /// Fixed-width ids keep frames pre-encodable.
    pub first_id: u64,
    /// Books of the depth form (Binance spot): `LOAD0USDT` ... `LOAD<books-1>USDT`.
    pub books: usize,
}

impl LoadConfig {
    /// `messages` frames per form at `rate` (or as fast as possible), with one
    /// depth book.
    pub fn new(messages: u64, rate: Option<u64>) -> LoadConfig {
        LoadConfig { symbol: "LOADUSDT".to_string(), messages, rate, first_id: 1_000_000_000_000, books: 1 }
    }
}

/// One market served by the simulator.
#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// Which market (for Bybit: the Binance-shaped generator it reuses, see
    /// [`BybitCategory::generator_kind`]).
    pub kind: MarketKind,
    /// The wire protocol spoken on its port.
    pub venue: Venue,
    /// Symbols with books and generated data.
    pub symbols: Vec<SymbolSpec>,
    /// Venue limits.
    pub limits: Limits,
    /// Data cadences.
    pub timing: Timing,
    /// Fixed port, or `None` for a free one.
    pub port: Option<u16>,
    /// Optional load stream.
    pub load: Option<LoadConfig>,
    /// Depth-window books kept per symbol as ground truth for local books
    /// (`MarketHandle::book_at`, `/admin/book?update_id=`); 0 keeps none.
    /// Each entry holds the top 50 levels per side.
    pub book_history: usize,
    /// Trading accounts known to this market (API keys, credentials, starting
    /// balances). Defaults to [`AccountSpec::test_account`].
    pub accounts: Vec<AccountSpec>,
}

impl MarketConfig {
    /// A market with the venue's real limits and the default symbols.
    pub fn new(kind: MarketKind) -> MarketConfig {
        MarketConfig {
            kind,
            venue: Venue::Binance,
            symbols: SymbolSpec::defaults(kind),
            limits: Limits::binance(kind),
            timing: Timing::default(),
            port: None,
            load: None,
            book_history: 0,
            accounts: vec![AccountSpec::test_account()],
        }
    }

    /// A Bybit v5 public market of `category` with the venue's limits and
    /// [`SymbolSpec::bybit_defaults`].
    pub fn bybit(category: BybitCategory) -> MarketConfig {
        let kind = category.generator_kind();
        MarketConfig {
            venue: Venue::Bybit(category),
            limits: Limits::bybit_for(category),
            symbols: SymbolSpec::bybit_defaults(category),
            ..MarketConfig::new(kind)
        }
    }

    /// A Deribit market of `kind` with the venue's limits
    /// ([`Limits::deribit`]), [`SymbolSpec::deribit_defaults`] and the test
    /// account (`client_id` [`TEST_API_KEY`], `client_secret`
    /// [`TEST_HMAC_SECRET`]) holding 10 BTC, 100 ETH and 1 000 000 USDC (the
    /// settlement coins of its instruments).
    pub fn deribit(kind: DeribitKind) -> MarketConfig {
        let mut account = AccountSpec::test_account();
        account.balances = [("BTC", "10"), ("ETH", "100"), ("USDC", "1000000")]
            .into_iter()
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect();
        MarketConfig {
            venue: Venue::Deribit(kind),
            limits: Limits::deribit(),
            symbols: SymbolSpec::deribit_defaults(kind),
            accounts: vec![account],
            ..MarketConfig::new(kind.generator_kind())
        }
    }

    /// The market the venue `venue` names `market` (`binance`/`usdm`,
    /// `bybit`/`linear`, `deribit`/`inverse`), with the venue's real limits and
    /// default symbols; `None` if the simulator does not serve it.
    pub fn named(venue: &str, market: &str) -> Option<MarketConfig> {
        match venue {
            "binance" => MarketKind::from_name(market).map(MarketConfig::new),
            "bybit" => BybitCategory::ALL.into_iter().find(|c| c.name() == market).map(MarketConfig::bybit),
            "deribit" => DeribitKind::from_name(market).map(MarketConfig::deribit),
            _ => None,
        }
    }

    /// The venue's name and the market's name as the venue spells it
    /// (`("binance", "usdm")`, `("bybit", "linear")`).
    pub fn venue_market(&self) -> (&'static str, &'static str) {
        match self.venue {
            Venue::Binance => ("binance", self.kind.name()),
            Venue::Bybit(c) => ("bybit", c.name()),
            Venue::Deribit(k) => ("deribit", k.name()),
        }
    }

    /// The Bybit category, when it speaks Bybit.
    pub fn bybit_category(&self) -> Option<BybitCategory> {
        match self.venue {
            Venue::Bybit(c) => Some(c),
            Venue::Binance | Venue::Deribit(_) => None,
        }
    }

    /// The Deribit kind, when it speaks Deribit.
    pub fn deribit_kind(&self) -> Option<DeribitKind> {
        match self.venue {
            Venue::Deribit(k) => Some(k),
            Venue::Binance | Venue::Bybit(_) => None,
        }
    }
}

/// The whole simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed for every generator: the same seed gives the same market data sequence.
    pub seed: u64,
    /// Address to bind (always loopback in tests).
    pub bind: IpAddr,
    /// Markets to serve.
    pub markets: Vec<MarketConfig>,
}

impl SimConfig {
    /// All four markets with real limits, free ports, seed 1.
    pub fn all_markets() -> SimConfig {
        SimConfig {
            seed: 1,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            markets: MarketKind::ALL.into_iter().map(MarketConfig::new).collect(),
        }
    }

    /// One market only.
    pub fn single(market: MarketConfig) -> SimConfig {
        SimConfig { seed: 1, bind: IpAddr::V4(Ipv4Addr::LOCALHOST), markets: vec![market] }
    }

    /// Assigns `base + index` ports to the markets in order.
    pub fn with_port_base(mut self, base: u16) -> SimConfig {
        for (i, m) in self.markets.iter_mut().enumerate() {
            m.port = Some(base + i as u16);
        }
        self
    }
}

/// The API key of the default test account (see `docs/sim.md`).
pub const TEST_API_KEY: &str = "ferrofeedSimTestApiKey000000000000000000000000000000000000000001";
/// The HMAC-SHA256 secret of the default test account.
pub const TEST_HMAC_SECRET: &str = "ferrofeedSimTestSecret000000000000000000000000000000000000000001";
/// The Ed25519 private-key seed of the default test account: 32 bytes of `0x07`
/// (`ed25519_dalek::SigningKey::from_bytes(&TEST_ED25519_SEED)`).
pub const TEST_ED25519_SEED: [u8; 32] = [7u8; 32];

/// A trading account: its API key, how its requests are signed, and its
/// starting balances.
///
/// An account may carry an HMAC secret, an Ed25519 public key, or both (the
/// venue binds one key type to each API key; the simulator accepts either
/// signature for convenience). `session.logon` only accepts Ed25519.
#[derive(Clone)]
pub struct AccountSpec {
    /// A name for admin output (`/admin/account`).
    pub name: String,
    /// The API key sent in `X-MBX-APIKEY` / `apiKey`.
    pub api_key: String,
    /// The HMAC-SHA256 secret, for hex signatures.
    pub hmac_secret: Option<String>,
    /// The Ed25519 public key, for base64 signatures.
    pub ed25519_public_key: Option<[u8; 32]>,
    /// Starting balances as (asset, decimal amount): spot free balances; on
    /// USD-M and COIN-M the wallet balance of each margin asset.
    pub balances: Vec<(String, String)>,
}

impl std::fmt::Debug for AccountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("AccountSpec")
            .field("name", &self.name)
            .field("api_key", &self.api_key)
            .field("hmac_secret", &self.hmac_secret.as_ref().map(|_| "<redacted>"))
            .field("ed25519", &self.ed25519_public_key.is_some())
            .field("balances", &self.balances)
            .finish()
    }
}

impl AccountSpec {
    /// An account with an HMAC secret only.
    pub fn hmac(name: &str, api_key: &str, secret: &str) -> AccountSpec {
        AccountSpec {
            name: name.to_string(),
            api_key: api_key.to_string(),
            hmac_secret: Some(secret.to_string()),
            ed25519_public_key: None,
            balances: Self::default_balances(),
        }
    }

    /// An account with an Ed25519 key derived from a 32-byte private seed.
    pub fn ed25519_seed(name: &str, api_key: &str, seed: &[u8; 32]) -> AccountSpec {
        let public = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes();
        AccountSpec {
            name: name.to_string(),
            api_key: api_key.to_string(),
            hmac_secret: None,
            ed25519_public_key: Some(public),
            balances: Self::default_balances(),
        }
    }

    /// The default test account: [`TEST_API_KEY`], accepting HMAC signatures with
    /// [`TEST_HMAC_SECRET`] and Ed25519 signatures with the key of
    /// [`TEST_ED25519_SEED`]; 1 000 000 USDT, 10 BTC, 100 ETH, 1000 BNB.
    pub fn test_account() -> AccountSpec {
        let mut a = AccountSpec::ed25519_seed("test", TEST_API_KEY, &TEST_ED25519_SEED);
        a.hmac_secret = Some(TEST_HMAC_SECRET.to_string());
        a
    }

    fn default_balances() -> Vec<(String, String)> {
        [("USDT", "1000000"), ("BTC", "10"), ("ETH", "100"), ("BNB", "1000")]
            .into_iter()
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect()
    }
}
