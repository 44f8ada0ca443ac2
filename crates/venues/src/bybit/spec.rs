//! Bybit v5 through the venue seam ([`VenueSpec`]): the spot, linear,
//! inverse and option categories and the private stream, as data over the
//! functions of this module's siblings.

use std::borrow::Cow;
use std::sync::Arc;

use ferrofeed_model::event::{Event, MarketType, Venue};
use ferrofeed_model::rules::{Inbound, Read, VenueRules};

use super::book::{depths, sequencing};
use super::normalize::{self, Tickers};
use super::{BybitRules, Category, private_url, public_url, venue_limits};
use crate::auth::{Clock, Credentials};
use crate::env::{Endpoints, Environment};
use crate::error::DecodeError;
use crate::seam::{
    AccountName, BookPlan, Channel, Decoder, HostLimits, MarketId, PoolOptions, PoolPlan, Recovery, Route, SeamError,
    SessionAuth, SessionPlan, VenueSpec, classify_then_decode,
};

/// The private topics a session subscribes: every category's orders, fills
/// and positions, and the wallet (PROTOCOLS.md §5.5).
pub const PRIVATE_TOPICS: [&str; 4] = ["order", "execution", "position", "wallet"];

impl From<Category> for MarketId {
    fn from(c: Category) -> MarketId {
        MarketId::new(Venue::Bybit, c.market_type())
    }
}

/// Bybit spot.
pub const SPOT: MarketId = MarketId::new(Venue::Bybit, MarketType::Spot);
/// Bybit linear contracts.
pub const LINEAR: MarketId = MarketId::new(Venue::Bybit, MarketType::Linear);
/// Bybit inverse contracts.
pub const INVERSE: MarketId = MarketId::new(Venue::Bybit, MarketType::Inverse);
/// Bybit options.
pub const OPTION: MarketId = MarketId::new(Venue::Bybit, MarketType::Options);

/// Bybit, as the registry lists it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bybit;

/// The category of a normalized market type.
pub fn category_of(m: MarketType) -> Option<Category> {
    Category::ALL.into_iter().find(|c| c.market_type() == m)
}

fn category(m: MarketType) -> Category {
    // The client only calls the seam with markets the registry listed.
    category_of(m).unwrap_or(Category::Linear)
}

fn valid(symbol: &str) -> Result<String, SeamError> {
    Ok(crate::seam::stream_symbol(symbol)?.to_ascii_uppercase())
}

/// The depth a category serves closest to `depth`: the requested one if the
/// venue has it, else the category's deepest but one (200; option 25).
pub fn book_depth(c: Category, depth: u32) -> u32 {
    let allowed = depths(c);
    if allowed.contains(&depth) { depth } else { allowed[allowed.len().saturating_sub(2)] }
}

/// Bybit's decoder: the ticker merge state (deltas carry only what changed)
/// lives here, one per market.
#[derive(Debug)]
struct BybitDecoder {
    category: Category,
    tickers: Tickers,
}

impl Decoder for BybitDecoder {
    fn decode(&mut self, frame: &str, received_ns: i64, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        out.extend(normalize::decode(self.category, frame, received_ns, &mut self.tickers)?);
        Ok(())
    }

    /// Trade, order-book and ticker frames in one pass (issue 22,
    /// `normalize::read_fast`); everything else in two, with the same
    /// results.
    fn read<'a>(&mut self, rules: &dyn VenueRules, frame: &'a str, received_ns: i64, out: &mut Vec<Event>) -> Read<'a> {
        if let Some((topic, seq, decoded)) =
            normalize::read_fast(self.category, frame, received_ns, &mut self.tickers, out)
        {
            return Read {
                inbound: Inbound::Data { stream: Cow::Borrowed(topic), seq },
                decoded: Some(decoded.map_err(|e| e.to_string())),
            };
        }
        classify_then_decode(self, rules, frame, received_ns, out)
    }
}

impl VenueSpec for Bybit {
    fn venue(&self) -> Venue {
        Venue::Bybit
    }

    fn markets(&self) -> &'static [MarketType] {
        &[MarketType::Spot, MarketType::Linear, MarketType::Inverse, MarketType::Options]
    }

    fn market_name(&self, m: MarketType) -> &'static str {
        category(m).name()
    }

    fn endpoints(&self, m: MarketType, env: &Environment) -> Endpoints {
        let ws = public_url(category(m), env);
        Endpoints { ws: ws.split("/v5/").next().unwrap_or(&ws).to_string(), rest: super::rest_base(env) }
    }

    fn host_limits(&self, m: MarketType) -> HostLimits {
        let l = venue_limits(category(m));
        HostLimits { attempts: (l.max_connections, l.connection_window), rest_weight: None }
    }

    fn route(&self, _m: MarketType, _stream: &str) -> Route {
        ""
    }

    fn pool(&self, m: MarketType, _route: Route, env: &Environment, opts: &PoolOptions) -> PoolPlan {
        let c = category(m);
        let url = public_url(c, env);
        let mut rules = BybitRules::public(c);
        if let Some(n) = opts.max_streams_per_conn {
            rules.max_streams = n.min(rules.max_streams);
        }
        PoolPlan {
            name: format!("bybit:{c}"),
            host: url.split("/v5/").next().unwrap_or(&url).to_string(),
            url,
            rules: Arc::new(rules),
            // Bybit states no connection lifetime.
            rotate_after: None,
        }
    }

    fn stream(&self, m: MarketType, channel: &Channel, symbol: &str) -> Result<String, SeamError> {
        let c = category(m);
        let s = valid(symbol)?;
        let deriv = matches!(c, Category::Linear | Category::Inverse);
        Ok(match channel {
            Channel::Trades => format!("publicTrade.{s}"),
            Channel::Ticker => format!("tickers.{s}"),
            // Bybit sends mark price and funding inside the ticker.
            Channel::MarkPrice if deriv => format!("tickers.{s}"),
            // So is open interest, on every derivative category (options
            // too: bybit-exchange/docs `docs/v5/websocket/public/ticker.mdx`).
            Channel::OpenInterest if c != Category::Spot => format!("tickers.{s}"),
            Channel::Kline(i) if c != Category::Option => format!("kline.{i}.{s}"),
            Channel::Liquidations if deriv => format!("allLiquidation.{s}"),
            Channel::Book(d) => format!("orderbook.{}.{s}", book_depth(c, *d)),
            _ => {
                return Err(SeamError::Unsupported {
                    market: MarketId::new(Venue::Bybit, m),
                    channel: channel.to_string(),
                });
            }
        })
    }

    fn symbol_of(&self, _m: MarketType, topic: &str) -> Option<String> {
        let mut parts = topic.split('.');
        let name = parts.next()?;
        let last = parts.next_back()?;
        (!PRIVATE_TOPICS.contains(&name) && !last.is_empty()).then(|| last.to_string())
    }

    fn decoder(&self, m: MarketType) -> Box<dyn Decoder> {
        Box::new(BybitDecoder { category: category(m), tickers: Tickers::new() })
    }

    fn book_plan(&self, m: MarketType, symbol: &str, depth: u32) -> BookPlan {
        let c = category(m);
        BookPlan {
            stream: format!("orderbook.{}.{symbol}", book_depth(c, depth)),
            sequencing: sequencing(),
            // The venue sends a snapshot after every subscribe.
            recovery: Recovery::Resubscribe,
        }
    }

    fn decode_book_snapshot(
        &self,
        _m: MarketType,
        _symbol: &str,
        body: &str,
        _received_ns: i64,
    ) -> Result<Event, DecodeError> {
        Err(DecodeError::Invalid {
            what: "orderbook",
            reason: "Bybit books recover by resubscribing, not from REST".into(),
            payload: body.to_string(),
        })
    }

    fn session(
        &self,
        account: &AccountName,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<SessionPlan, SeamError> {
        // One private stream carries every category; its events name their
        // own. Items that name none (`wallet`) are reported under `account`.
        let c = Category::from_name(account).ok_or_else(|| {
            SeamError::Credentials(format!(
                "bybit has no account {account:?} (the unified account: spot, linear, inverse, option)"
            ))
        })?;
        let rules = BybitRules::private(credentials, clock).map_err(|e| SeamError::Credentials(e.to_string()))?;
        Ok(SessionPlan {
            market: MarketId::new(Venue::Bybit, c.market_type()),
            url: private_url(env, None),
            rules: Arc::new(rules),
            streams: PRIVATE_TOPICS.iter().map(|t| t.to_string()).collect(),
            auth: SessionAuth::InBand,
            time_url: Some(format!("{}/v5/market/time", super::rest_base(env))),
            time_field: "time",
            // v5 refuses an expired `expires` as `Params Error`, like a bad
            // signature; older answers said `request expired`.
            clock_refusals: &["Params Error", "request expired"],
        })
    }

    fn accounts(&self) -> &'static [&'static str] {
        &["linear", "spot", "inverse", "option"]
    }

    fn trading(&self) -> Option<&'static dyn crate::trading::TradingSpec> {
        Some(&super::trade::BybitTrading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_pools_and_channels() {
        let b = Bybit;
        assert_eq!(b.parse_market("option").map(|m| m.market), Ok(MarketType::Options));
        assert_eq!(b.parse_market("options").map(|m| m.market), Ok(MarketType::Options));
        assert!(b.parse_market("usdm").is_err());
        let p = b.pool(MarketType::Linear, "", &Environment::Production, &PoolOptions::default());
        assert_eq!((p.name.as_str(), p.url.as_str()), ("bybit:linear", "wss://stream.bybit.com/v5/public/linear"));
        assert_eq!(p.host, "wss://stream.bybit.com");
        let s = |m, c: Channel| b.stream(m, &c, "btcusdt");
        assert_eq!(s(MarketType::Linear, Channel::Trades).as_deref(), Ok("publicTrade.BTCUSDT"));
        assert_eq!(s(MarketType::Linear, Channel::Book(50)).as_deref(), Ok("orderbook.50.BTCUSDT"));
        assert_eq!(s(MarketType::Options, Channel::Book(50)).as_deref(), Ok("orderbook.25.BTCUSDT"));
        assert_eq!(s(MarketType::Spot, Channel::Kline("1".into())).as_deref(), Ok("kline.1.BTCUSDT"));
        assert!(s(MarketType::Spot, Channel::Liquidations).is_err());
        assert!(s(MarketType::Spot, Channel::AggTrades).is_err());
        // Open interest rides in the derivatives' ticker; spot has none.
        for m in [MarketType::Linear, MarketType::Inverse, MarketType::Options] {
            assert_eq!(s(m, Channel::OpenInterest).as_deref(), Ok("tickers.BTCUSDT"), "{m:?}");
        }
        assert!(s(MarketType::Spot, Channel::OpenInterest).is_err());
        assert_eq!(b.symbol_of(MarketType::Linear, "orderbook.50.BTCUSDT").as_deref(), Some("BTCUSDT"));
        assert_eq!(b.symbol_of(MarketType::Linear, "order"), None);
        assert_eq!(b.symbol_of(MarketType::Linear, "order.linear"), None);
        assert_eq!(b.book_plan(MarketType::Spot, "BTCUSDT", 7).stream, "orderbook.200.BTCUSDT");
        assert_eq!(b.book_plan(MarketType::Spot, "BTCUSDT", 7).recovery, Recovery::Resubscribe);
    }

    #[test]
    fn the_private_session_needs_an_hmac_key() {
        let ed = Arc::new(Credentials::ed25519_seed("k", [1; 32]).unwrap());
        let e = Bybit.session("linear", &Environment::Production, ed, Arc::new(Clock::default())).unwrap_err();
        assert!(e.to_string().contains("HMAC"), "{e}");
        let h = Arc::new(Credentials::hmac("k", "s").unwrap());
        let p = Bybit.session("linear", &Environment::Testnet, h, Arc::new(Clock::default())).unwrap();
        assert_eq!(p.url, "wss://stream-testnet.bybit.com/v5/private");
        assert_eq!(p.streams.len(), 4);
    }
}
