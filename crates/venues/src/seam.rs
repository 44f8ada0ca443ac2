//! The venue seam above the socket: everything the generic client, book
//! driver, feed and private sessions need to know about a venue, behind one
//! object-safe trait, [`VenueSpec`].
//!
//! Below the socket the engine already takes a venue as data (`VenueRules`).
//! This trait says the rest: the venue's markets and their names, its
//! endpoints per environment and host limits, which pool (and so which
//! `VenueRules`) carries each stream, typed channels to stream names and
//! back, the decoder (with whatever state it keeps), the order-book plan and
//! the private-session plan. Implementations are pure data and functions:
//! like the rest of this crate they never touch a socket or spawn a task.
//!
//! The registry ([`crate::registry`]) lists every venue once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::event::{Event, MarketType, Venue};
use ferrofeed_model::rules::{FrameReader, Inbound, Read, ReaderFactory, VenueRules};
use ferrofeed_model::sequencing::BookSequencing;

use crate::auth::{Clock, Credentials};
use crate::env::{Endpoints, Environment};
use crate::error::DecodeError;
use crate::instruments::{Registry, RegistryError};
use secrecy::SecretString;

/// A venue and one of its markets: the key every venue-neutral map uses.
///
/// The market is the normalized [`MarketType`] that every event of that
/// market carries, so a subscription and the events it yields name the
/// market the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MarketId {
    /// The venue.
    pub venue: Venue,
    /// The market, as events name it.
    pub market: MarketType,
}

impl MarketId {
    /// `venue`'s `market`.
    pub const fn new(venue: Venue, market: MarketType) -> MarketId {
        MarketId { venue, market }
    }

    /// The venue's name (`binance`, `bybit`).
    pub fn venue_name(self) -> &'static str {
        self.venue.name()
    }

    /// The market's name as the venue spells it (`spot`, `usdm`, `linear`,
    /// `option`), from the registry; the normalized name if the venue is not
    /// registered.
    pub fn name(self) -> &'static str {
        crate::registry::get(self.venue).map_or(self.market.name(), |v| v.market_name(self.market))
    }
}

/// `venue:market`, e.g. `binance:usdm`, `bybit:option`.
impl fmt::Display for MarketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.venue_name(), self.name())
    }
}

/// A typed channel: what a subscription asks for, whatever the venue calls
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Every trade.
    Trades,
    /// Aggregated trades (Binance `aggTrade`).
    AggTrades,
    /// Best bid and ask.
    TopOfBook,
    /// The 24-hour ticker.
    Ticker,
    /// Candles of an interval, spelled as the venue spells it (`1m`, `60`).
    Kline(String),
    /// Mark price and funding.
    MarkPrice,
    /// Open interest (Bybit and Deribit: inside the ticker stream, which
    /// also gives `ticker` and `mark_price` events).
    OpenInterest,
    /// Liquidations.
    Liquidations,
    /// Order-book data at a depth (the venue's book diff stream; a local
    /// book is kept with a [`BookPlan`] instead).
    Book(u32),
}

impl Channel {
    /// The channel's name: `trades`, `agg_trades`, `top_of_book`, `ticker`,
    /// `kline`, `mark_price`, `open_interest`, `liquidations`, `book`.
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Trades => "trades",
            Channel::AggTrades => "agg_trades",
            Channel::TopOfBook => "top_of_book",
            Channel::Ticker => "ticker",
            Channel::Kline(_) => "kline",
            Channel::MarkPrice => "mark_price",
            Channel::OpenInterest => "open_interest",
            Channel::Liquidations => "liquidations",
            Channel::Book(_) => "book",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Kline(i) => write!(f, "kline({i})"),
            Channel::Book(d) => write!(f, "book({d})"),
            c => f.write_str(c.name()),
        }
    }
}

/// Why the seam refused a request. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeamError {
    /// The venue has no market of that name.
    #[error("unknown {venue} market {market:?}: {venue} has no market {market} (its markets: {known})")]
    UnknownMarket {
        /// The venue.
        venue: &'static str,
        /// The name asked for.
        market: String,
        /// The venue's market names, comma separated.
        known: String,
    },
    /// No venue of that name is registered.
    #[error("unknown venue {0:?} (registered: {known})", known = crate::registry::names().join(", "))]
    UnknownVenue(String),
    /// The market does not serve the channel.
    #[error("{market} has no {channel} channel")]
    Unsupported {
        /// The market.
        market: MarketId,
        /// The channel asked for.
        channel: String,
    },
    /// A symbol the venue's stream names cannot carry.
    #[error("invalid symbol {0:?}")]
    Symbol(String),
    /// The private session cannot be planned with these credentials.
    #[error("{0}")]
    Credentials(String),
}

/// Limits of a venue host, shared by every connection and request to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    /// Connection attempts allowed per window per WebSocket host.
    pub attempts: (usize, Duration),
    /// REST request weight per window (`None`: the client makes no weighted
    /// REST calls to this venue).
    pub rest_weight: Option<(u32, Duration)>,
}

/// Client options a venue takes into account when it plans a pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolOptions {
    /// Streams per connection, below the venue's own cap.
    pub max_streams_per_conn: Option<usize>,
    /// Longest connect URL that carries streams (Binance `/stream?streams=`;
    /// 0 subscribes everything with messages). `None`: the venue's default.
    pub max_url_bytes: Option<usize>,
}

/// One pool of connections: where it connects and by which rules.
#[derive(Debug, Clone)]
pub struct PoolPlan {
    /// Its name in logs and metrics (`binance:usdm:public`, `bybit:linear`).
    pub name: String,
    /// The WebSocket URL every connection of the pool opens.
    pub url: String,
    /// The host whose attempt budget the pool shares.
    pub host: String,
    /// The engine rules of its connections.
    pub rules: Arc<dyn VenueRules>,
    /// The venue's socket lifetime, rotated make-before-break before it
    /// runs out (`None`: the venue states none).
    pub rotate_after: Option<Duration>,
}

/// A route within a market: which pool carries a stream. Most markets have
/// one (`""`); Binance USDⓈ-M and options split `public` and `market`.
pub type Route = &'static str;

/// How a local book that lost sync gets a new snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// A REST snapshot: the path (appended to the market's REST base) and
    /// its request weight. The venue decodes the body with
    /// [`VenueSpec::decode_book_snapshot`].
    Rest {
        /// The path and query.
        path: String,
        /// Request weight, charged before it is sent.
        weight: u32,
    },
    /// Resubscribe the book's stream: the venue sends a snapshot on it.
    Resubscribe,
}

/// How a venue keeps one local book.
#[derive(Debug, Clone)]
pub struct BookPlan {
    /// The stream that carries the book's diffs (and, for venues that send
    /// them, its snapshots).
    pub stream: String,
    /// The sequencing rule the sync machine follows.
    pub sequencing: &'static dyn BookSequencing,
    /// How a snapshot is obtained.
    pub recovery: Recovery,
}

/// A venue's frame decoder for one market, with whatever state the venue
/// needs between frames (the Bybit ticker merge, later a checksum). One
/// per market and feed; frames of one market come through it in order.
pub trait Decoder: Send + Sync + fmt::Debug {
    /// Decodes one data frame received at `received_ns` (ns since the
    /// epoch) into `out`. Frames the venue sends that the model has no type
    /// for become `unknown` events; malformed input is an error that keeps
    /// the frame.
    fn decode(&mut self, frame: &str, received_ns: i64, out: &mut Vec<Event>) -> Result<(), DecodeError>;

    /// Classifies a connection's frame for the engine and, when it is data,
    /// decodes it into `out`: what [`VenueRules::classify`] and
    /// [`Decoder::decode`] give, in that order. The default does exactly
    /// that (two passes); a venue overrides it to read its hot frames once,
    /// with the same results.
    fn read<'a>(&mut self, rules: &dyn VenueRules, frame: &'a str, received_ns: i64, out: &mut Vec<Event>) -> Read<'a> {
        classify_then_decode(self, rules, frame, received_ns, out)
    }
}

/// [`Decoder::read`] in two passes: `rules` classify the frame, and data is
/// decoded by `decoder` (what a decoder error leaves in `out` is removed).
pub fn classify_then_decode<'a, D: Decoder + ?Sized>(
    decoder: &mut D,
    rules: &dyn VenueRules,
    frame: &'a str,
    received_ns: i64,
    out: &mut Vec<Event>,
) -> Read<'a> {
    let inbound = rules.classify(frame);
    let decoded = matches!(inbound, Inbound::Data { .. }).then(|| {
        let before = out.len();
        decoder.decode(frame, received_ns, out).map_err(|e| {
            out.truncate(before);
            e.to_string()
        })
    });
    Read { inbound, decoded }
}

/// A connection's [`FrameReader`]: the pool's rules and a fresh decoder of
/// its market, so the engine reads each frame once and carries the events.
#[derive(Debug)]
struct SeamReader {
    rules: Arc<dyn VenueRules>,
    decoder: Box<dyn Decoder>,
}

impl FrameReader for SeamReader {
    fn read<'a>(&mut self, frame: &'a str, received_ns: i64, out: &mut Vec<Event>) -> Read<'a> {
        self.decoder.read(self.rules.as_ref(), frame, received_ns, out)
    }
}

/// The reader factory of a pool of `market` with `rules`: each connection
/// gets its own decoder (its state follows the socket that feeds it).
pub fn reader_factory(spec: &'static dyn VenueSpec, market: MarketType, rules: Arc<dyn VenueRules>) -> ReaderFactory {
    ReaderFactory::new(move || Box::new(SeamReader { rules: rules.clone(), decoder: spec.decoder(market) }))
}

/// A private (user-data) account as a venue names it: `spot`, `margin`,
/// `isolated:BTCUSDT`, `usdm`, `coinm` on Binance; `unified` on Bybit.
pub type AccountName = str;

/// How a REST call of a private session is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestCall {
    /// `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
}

/// How a private session authenticates.
#[derive(Debug, Clone)]
pub enum SessionAuth {
    /// In band: the rules sign an auth frame on every new socket (Binance
    /// WS-API `session.logon`, Bybit `auth`).
    InBand,
    /// A REST-issued token (a Binance listenKey): created before connecting,
    /// carried in the URL, kept alive, replaced when it expires.
    Token {
        /// The REST base the token calls go to.
        rest: String,
        /// The path that creates (POST), keeps alive (PUT) and deletes
        /// (DELETE) the token.
        path: String,
        /// The query parameter that names the token on keep-alives and
        /// deletes (Binance margin: `listenKey`); `None`: the token is not
        /// named (it is per API key).
        token_param: Option<&'static str>,
        /// How often it is kept alive.
        keepalive: Duration,
        /// The WebSocket URL with `{token}` where the token goes.
        url_template: String,
        /// The header that carries the API key on token calls.
        key_header: &'static str,
        /// The field of the create answer that holds the token.
        token_field: &'static str,
        /// What an error body of an expired or unknown token contains
        /// (Binance `-1125`): the session replaces the token.
        expired_marker: &'static str,
        /// The user-data event reason that says the token expired
        /// (`listenKeyExpired`).
        expired_event: &'static str,
    },
    /// A short-lived token subscribed over the socket (Binance margin and
    /// isolated margin: `userDataStream.subscribe.listenToken` on the
    /// WebSocket API). The session creates one before connecting and puts it
    /// in `slot`, where the rules' subscribe frame reads it; it renews it on
    /// the same connection (a new token, subscribed again) at half its
    /// validity and right after every reconnect.
    ListenToken {
        /// Creates tokens.
        issuer: Arc<dyn TokenIssuer>,
        /// The token the rules subscribe with.
        slot: Arc<TokenSlot>,
        /// How long a token is asked to be valid.
        validity: Duration,
        /// The user-data event reason that says the subscription expired
        /// (`eventStreamTerminated`): the session opens a new connection.
        expired_event: &'static str,
    },
}

/// A signed REST call a session makes (the secret-bearing parts of it, the
/// signature and the API key, are masked wherever it is shown).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedCall {
    /// `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The full URL, signature included.
    pub url: String,
    /// Headers (the API key's).
    pub headers: Vec<(&'static str, String)>,
}

impl fmt::Debug for SignedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedCall").field("method", &self.method).finish_non_exhaustive()
    }
}

/// Issues the short-lived tokens a [`SessionAuth::ListenToken`] session
/// subscribes with (Binance margin `POST /sapi/v1/userListenToken`): the
/// venue's signing lives here, the schedule in the session.
pub trait TokenIssuer: Send + Sync + fmt::Debug {
    /// The signed call that creates a token valid for `validity`, signed now.
    fn request(&self, validity: Duration) -> SignedCall;

    /// The token and its expiry (ms since the epoch) from the call's answer.
    fn parse(&self, body: &[u8]) -> Option<(SecretString, i64)>;
}

/// The token a connection's rules put in their next subscribe frame, shared
/// between the session (which renews it) and the rules (which send it).
#[derive(Default)]
pub struct TokenSlot(std::sync::Mutex<Option<SecretString>>);

impl TokenSlot {
    /// Puts `token` in the slot.
    pub fn set(&self, token: SecretString) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
    }

    /// The token now, if any.
    pub fn get(&self) -> Option<SecretString> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl fmt::Debug for TokenSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.0.lock().map(|t| t.is_some()).unwrap_or(false);
        f.write_str(if set { "TokenSlot(<redacted>)" } else { "TokenSlot(empty)" })
    }
}

/// One private session: its connection, its rules and how it authenticates.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    /// The market its events are reported under (for items that name none).
    pub market: MarketId,
    /// The WebSocket URL (empty for [`SessionAuth::Token`]: the session
    /// builds it from `url_template` once the token is known, and keeps it
    /// nowhere in plain text).
    pub url: String,
    /// The engine rules of the connection.
    pub rules: Arc<dyn VenueRules>,
    /// The streams or topics to subscribe once authenticated.
    pub streams: Vec<String>,
    /// How it authenticates.
    pub auth: SessionAuth,
    /// The REST URL that answers the server time, measured before signing
    /// (and again after a refusal that a wrong clock causes), if the venue
    /// signs with it.
    pub time_url: Option<String>,
    /// The top-level field of that answer holding the server time in ms, a
    /// number or a numeric string (Binance `serverTime`, Bybit `time`).
    pub time_field: &'static str,
    /// What an auth refusal caused by a wrong clock contains (Binance
    /// `-1021`; Bybit v5 answers an expired `expires` with the same `Params
    /// Error` as a bad signature). On such a refusal the session measures the
    /// clock again and, if it had moved, logs on again instead of giving up.
    pub clock_refusals: &'static [&'static str],
}

/// Everything a venue is, above the socket. Object safe: venues are chosen
/// at run time (CLI, TOML) through the registry.
pub trait VenueSpec: Send + Sync + fmt::Debug {
    /// The venue.
    fn venue(&self) -> Venue;

    /// Its markets, in the order the venue lists them.
    fn markets(&self) -> &'static [MarketType];

    /// The market's name as the venue spells it (paths, CLI, file layout).
    fn market_name(&self, market: MarketType) -> &'static str;

    /// Parses a market name: the venue's spelling, or the normalized one.
    fn parse_market(&self, name: &str) -> Result<MarketId, SeamError> {
        let venue = self.venue();
        self.markets()
            .iter()
            .find(|m| self.market_name(**m) == name || m.name() == name)
            .map(|m| MarketId::new(venue, *m))
            .ok_or_else(|| SeamError::UnknownMarket {
                venue: venue.name(),
                market: name.to_string(),
                known: self.markets().iter().map(|m| self.market_name(*m)).collect::<Vec<_>>().join(", "),
            })
    }

    /// The market's base URLs in `env`.
    fn endpoints(&self, market: MarketType, env: &Environment) -> Endpoints;

    /// The limits of the market's hosts.
    fn host_limits(&self, market: MarketType) -> HostLimits;

    /// The route (pool) that carries `stream`.
    fn route(&self, market: MarketType, stream: &str) -> Route;

    /// The pool of `route` on `market` in `env`.
    fn pool(&self, market: MarketType, route: Route, env: &Environment, opts: &PoolOptions) -> PoolPlan;

    /// The venue's stream name of a typed channel for `symbol`.
    fn stream(&self, market: MarketType, channel: &Channel, symbol: &str) -> Result<String, SeamError>;

    /// The instrument a stream name carries, upper case (`None`: an
    /// all-market stream or a private one).
    fn symbol_of(&self, market: MarketType, stream: &str) -> Option<String>;

    /// A fresh decoder for `market`.
    fn decoder(&self, market: MarketType) -> Box<dyn Decoder>;

    /// How the book of `symbol` at `depth` levels is kept.
    fn book_plan(&self, market: MarketType, symbol: &str, depth: u32) -> BookPlan;

    /// Decodes a REST book snapshot body (for [`Recovery::Rest`]) into a
    /// `book_snapshot` event.
    fn decode_book_snapshot(
        &self,
        market: MarketType,
        symbol: &str,
        body: &str,
        received_ns: i64,
    ) -> Result<Event, DecodeError>;

    /// The REST path and weight of the instrument list (`None`: not
    /// supported yet).
    fn instruments_request(&self, market: MarketType) -> Option<(String, u32)> {
        let _ = market;
        None
    }

    /// Parses the instrument list's body.
    fn parse_instruments(&self, market: MarketType, body: &str) -> Result<Registry, RegistryError> {
        let _ = body;
        Err(RegistryError::Unsupported { market: MarketId::new(self.venue(), market) })
    }

    /// The private session of `account` with `credentials`, signing at the
    /// venue time `clock` gives.
    fn session(
        &self,
        account: &AccountName,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<SessionPlan, SeamError>;

    /// The private accounts the venue has (`spot`, `usdm`, ...).
    fn accounts(&self) -> &'static [&'static str];

    /// The venue's order API over its WebSocket (`None`: it has none yet).
    fn trading(&self) -> Option<&'static dyn crate::trading::TradingSpec> {
        None
    }
}

/// `symbol` trimmed, if it is one a stream name can carry (ASCII letters,
/// digits, `-` and `_`); the venue then spells its case.
pub fn stream_symbol(symbol: &str) -> Result<&str, SeamError> {
    let s = symbol.trim();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(SeamError::Symbol(symbol.to_string()));
    }
    Ok(s)
}

/// A boxed decoder that applies one function per frame, for venues whose
/// decoder keeps no state.
pub struct FnDecoder<F>(pub F);

impl<F> fmt::Debug for FnDecoder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnDecoder")
    }
}

impl<F> Decoder for FnDecoder<F>
where
    F: FnMut(&str, i64, &mut Vec<Event>) -> Result<(), DecodeError> + Send + Sync,
{
    fn decode(&mut self, frame: &str, received_ns: i64, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        (self.0)(frame, received_ns, out)
    }
}
