//! Deribit through the venue seam ([`VenueSpec`]): the inverse, linear and
//! option markets on one host and one WebSocket path, and one private
//! session per account, as data over this module's siblings.

use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::event::{Event, MarketType, Venue};

use super::book::{decode_rest_snapshot, sequencing};
use super::{DeribitRules, Grant, Market, normalize, rest_base, ws_host, ws_url};
use crate::auth::{Clock, Credentials};
use crate::env::{Endpoints, Environment};
use crate::error::DecodeError;
use crate::seam::{
    AccountName, BookPlan, Channel, Decoder, FnDecoder, HostLimits, MarketId, PoolOptions, PoolPlan, Recovery, Route,
    SeamError, SessionAuth, SessionPlan, VenueSpec,
};

/// Deribit inverse (coin-settled) futures and perpetuals.
pub const INVERSE: MarketId = MarketId::new(Venue::Deribit, MarketType::Inverse);
/// Deribit linear (USDC-settled) futures and perpetuals.
pub const LINEAR: MarketId = MarketId::new(Venue::Deribit, MarketType::Linear);
/// Deribit options.
pub const OPTION: MarketId = MarketId::new(Venue::Deribit, MarketType::Options);

/// The private accounts: a sub-account currency, or `any` (every currency
/// on one socket).
pub const ACCOUNTS: [&str; 6] = ["any", "btc", "eth", "usdc", "usdt", "eurr"];

/// The `chart.trades` resolutions (§6.6): minutes, or `1D`.
pub const RESOLUTIONS: [&str; 12] = ["1", "3", "5", "10", "15", "30", "60", "120", "180", "360", "720", "1D"];

/// The depths of grouped book channels (`book.{instrument}.none.{depth}.100ms`).
pub const GROUPED_DEPTHS: [u32; 3] = [1, 10, 20];

impl From<Market> for MarketId {
    fn from(m: Market) -> MarketId {
        MarketId::new(Venue::Deribit, m.market_type())
    }
}

/// Deribit, as the registry lists it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deribit;

fn market(m: MarketType) -> Market {
    // The client only calls the seam with markets the registry listed.
    Market::of(m).unwrap_or(Market::Inverse)
}

fn valid(symbol: &str) -> Result<String, SeamError> {
    Ok(crate::seam::stream_symbol(symbol)?.to_ascii_uppercase())
}

/// A `chart.trades` resolution from a kline interval: the venue's own
/// (`1`, `60`, `1D`) or the common names (`1m`, `1h`, `1d`).
pub fn resolution_of(interval: &str) -> Option<&'static str> {
    let minutes = if let Some(m) = interval.strip_suffix('m') {
        m.parse::<u32>().ok()
    } else if let Some(h) = interval.strip_suffix('h') {
        h.parse::<u32>().ok().map(|h| h * 60)
    } else if interval.eq_ignore_ascii_case("1d") {
        return Some("1D");
    } else {
        interval.parse::<u32>().ok()
    };
    let m = minutes?.to_string();
    RESOLUTIONS.into_iter().find(|r| *r == m)
}

/// The currency of an account, as `user.changes` spells it (`any`, `BTC`).
fn account_currency(account: &str) -> Option<String> {
    let a = account.trim().to_ascii_lowercase();
    ACCOUNTS.contains(&a.as_str()).then(|| if a == "any" { a } else { a.to_ascii_uppercase() })
}

impl Deribit {
    /// The private streams of `account`: `user.changes` (orders, trades and
    /// positions in one notification) and `user.portfolio`.
    pub fn private_streams(account: &str) -> Option<Vec<String>> {
        let cur = account_currency(account)?;
        Some(vec![format!("user.changes.any.{cur}.raw"), format!("user.portfolio.{}", cur.to_ascii_lowercase())])
    }

    /// The private session of `account`, authenticating with `grant`
    /// ([`VenueSpec::session`] uses [`Grant::ClientSignature`]).
    pub fn session_with(
        &self,
        account: &AccountName,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
        grant: Grant,
    ) -> Result<SessionPlan, SeamError> {
        let streams = Deribit::private_streams(account).ok_or_else(|| {
            SeamError::Credentials(format!("deribit has no account {account:?} (accounts: {})", ACCOUNTS.join(", ")))
        })?;
        let rules =
            DeribitRules::private(credentials, clock, grant).map_err(|e| SeamError::Credentials(e.to_string()))?;
        let lower = account.trim().to_ascii_lowercase();
        let m = if lower == "usdc" || lower == "usdt" { Market::Linear } else { Market::Inverse };
        Ok(SessionPlan {
            market: m.into(),
            url: ws_url(env),
            rules: Arc::new(rules),
            streams,
            auth: SessionAuth::InBand,
            // `public/get_time`: `{"result": <ms>}`.
            time_url: Some(format!("{}/public/get_time", rest_base(env))),
            time_field: "result",
            clock_refusals: &[],
        })
    }
}

impl VenueSpec for Deribit {
    fn venue(&self) -> Venue {
        Venue::Deribit
    }

    fn markets(&self) -> &'static [MarketType] {
        &[MarketType::Inverse, MarketType::Linear, MarketType::Options]
    }

    fn market_name(&self, m: MarketType) -> &'static str {
        market(m).name()
    }

    fn endpoints(&self, _m: MarketType, env: &Environment) -> Endpoints {
        Endpoints { ws: ws_host(env), rest: rest_base(env) }
    }

    fn host_limits(&self, _m: MarketType) -> HostLimits {
        // §6.5: at most 32 simultaneous connections per IP; no attempt rate
        // is stated, so the budget allows that many per minute.
        HostLimits { attempts: (32, Duration::from_secs(60)), rest_weight: None }
    }

    fn route(&self, _m: MarketType, _stream: &str) -> Route {
        ""
    }

    fn pool(&self, m: MarketType, _route: Route, env: &Environment, opts: &PoolOptions) -> PoolPlan {
        let mut rules = DeribitRules::public();
        if let Some(n) = opts.max_streams_per_conn {
            rules.max_streams = n.min(rules.max_streams);
        }
        PoolPlan {
            name: format!("deribit:{}", market(m)),
            url: ws_url(env),
            // One host for every market: one attempt budget.
            host: ws_host(env),
            rules: Arc::new(rules),
            rotate_after: None,
        }
    }

    fn stream(&self, m: MarketType, channel: &Channel, symbol: &str) -> Result<String, SeamError> {
        let s = valid(symbol)?;
        let unsupported =
            || SeamError::Unsupported { market: MarketId::new(Venue::Deribit, m), channel: channel.to_string() };
        Ok(match channel {
            // `raw` needs an authorised connection (§6.6); 100 ms batches
            // still carry every trade.
            Channel::Trades => format!("trades.{s}.100ms"),
            Channel::TopOfBook => format!("quote.{s}"),
            // Mark price, funding, greeks and open interest come inside the
            // ticker.
            Channel::Ticker | Channel::MarkPrice | Channel::OpenInterest => format!("ticker.{s}.100ms"),
            Channel::Kline(i) => format!("chart.trades.{s}.{}", resolution_of(i).ok_or_else(unsupported)?),
            Channel::Book(d) => {
                let depth = GROUPED_DEPTHS.into_iter().find(|g| g >= d).unwrap_or(20);
                format!("book.{s}.none.{depth}.100ms")
            }
            // Liquidations are flagged on trades; there is no channel.
            Channel::Liquidations | Channel::AggTrades => return Err(unsupported()),
        })
    }

    fn symbol_of(&self, _m: MarketType, stream: &str) -> Option<String> {
        let parts: Vec<&str> = stream.split('.').collect();
        let sym = match parts.as_slice() {
            ["user", ..] => return None,
            ["trades", inst, _] => *inst,
            ["trades", ..] => return None,
            ["chart", "trades", inst, _] => *inst,
            ["book" | "ticker" | "perpetual" | "incremental_ticker", inst, ..] => *inst,
            ["quote" | "deribit_price_index" | "estimated_expiration_price", inst] => *inst,
            _ => return None,
        };
        (!sym.is_empty()).then(|| sym.to_ascii_uppercase())
    }

    fn decoder(&self, m: MarketType) -> Box<dyn Decoder> {
        let m = market(m);
        Box::new(FnDecoder(move |frame: &str, rx: i64, out: &mut Vec<Event>| normalize::decode(m, frame, rx, out)))
    }

    fn book_plan(&self, _m: MarketType, symbol: &str, _depth: u32) -> BookPlan {
        BookPlan {
            // The full book's changes; `raw` would need authentication.
            stream: format!("book.{}.100ms", symbol.to_ascii_uppercase()),
            sequencing: sequencing(),
            // A new subscription is the only way to get a new snapshot.
            recovery: Recovery::Resubscribe,
        }
    }

    fn decode_book_snapshot(
        &self,
        m: MarketType,
        _symbol: &str,
        body: &str,
        received_ns: i64,
    ) -> Result<Event, DecodeError> {
        decode_rest_snapshot(market(m), body, received_ns)
    }

    fn session(
        &self,
        account: &AccountName,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<SessionPlan, SeamError> {
        self.session_with(account, env, credentials, clock, Grant::ClientSignature)
    }

    fn accounts(&self) -> &'static [&'static str] {
        &ACCOUNTS
    }

    fn trading(&self) -> Option<&'static dyn crate::trading::TradingSpec> {
        Some(&super::trade::DeribitTrading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markets_pools_and_channels() {
        let d = Deribit;
        assert_eq!(d.parse_market("option").map(|m| m.market), Ok(MarketType::Options));
        assert_eq!(d.parse_market("inverse").map(|m| m.market), Ok(MarketType::Inverse));
        assert!(d.parse_market("spot").is_err());
        let p = d.pool(MarketType::Linear, "", &Environment::Production, &PoolOptions::default());
        assert_eq!((p.name.as_str(), p.url.as_str()), ("deribit:linear", "wss://www.deribit.com/ws/api/v2"));
        let q = d.pool(MarketType::Options, "", &Environment::Production, &PoolOptions::default());
        assert_eq!(p.host, q.host, "one host, one attempt budget");
        let s = |m, c: Channel, sym| d.stream(m, &c, sym);
        assert_eq!(
            s(MarketType::Inverse, Channel::Trades, "btc-perpetual").as_deref(),
            Ok("trades.BTC-PERPETUAL.100ms")
        );
        assert_eq!(s(MarketType::Inverse, Channel::TopOfBook, "BTC-PERPETUAL").as_deref(), Ok("quote.BTC-PERPETUAL"));
        assert_eq!(
            s(MarketType::Inverse, Channel::MarkPrice, "BTC-PERPETUAL").as_deref(),
            Ok("ticker.BTC-PERPETUAL.100ms")
        );
        assert_eq!(
            s(MarketType::Inverse, Channel::Kline("1h".into()), "BTC-PERPETUAL").as_deref(),
            Ok("chart.trades.BTC-PERPETUAL.60")
        );
        assert_eq!(
            s(MarketType::Inverse, Channel::Kline("1D".into()), "BTC-PERPETUAL").as_deref(),
            Ok("chart.trades.BTC-PERPETUAL.1D")
        );
        assert!(s(MarketType::Inverse, Channel::Kline("7m".into()), "BTC-PERPETUAL").is_err());
        assert_eq!(
            s(MarketType::Linear, Channel::Book(5), "BTC_USDC-PERPETUAL").as_deref(),
            Ok("book.BTC_USDC-PERPETUAL.none.10.100ms")
        );
        assert_eq!(
            s(MarketType::Options, Channel::OpenInterest, "BTC-26DEC25-95000-C").as_deref(),
            Ok("ticker.BTC-26DEC25-95000-C.100ms")
        );
        assert!(s(MarketType::Inverse, Channel::Liquidations, "BTC-PERPETUAL").is_err());
        assert!(s(MarketType::Inverse, Channel::Trades, "BTC PERP").is_err());
        let sym = |st| d.symbol_of(MarketType::Inverse, st);
        assert_eq!(sym("trades.BTC-PERPETUAL.100ms").as_deref(), Some("BTC-PERPETUAL"));
        assert_eq!(sym("trades.future.BTC.100ms"), None);
        assert_eq!(sym("book.BTC-PERPETUAL.none.10.100ms").as_deref(), Some("BTC-PERPETUAL"));
        assert_eq!(sym("chart.trades.BTC-PERPETUAL.1").as_deref(), Some("BTC-PERPETUAL"));
        assert_eq!(sym("quote.ETH-30JUL21-2800-C").as_deref(), Some("ETH-30JUL21-2800-C"));
        assert_eq!(sym("deribit_price_index.btc_usd").as_deref(), Some("BTC_USD"));
        assert_eq!(sym("user.changes.any.any.raw"), None);
        assert_eq!(sym("user.portfolio.any"), None);
        let plan = d.book_plan(MarketType::Options, "BTC-24SEP21-8000-P", 100);
        assert_eq!(plan.stream, "book.BTC-24SEP21-8000-P.100ms");
        assert_eq!(plan.recovery, Recovery::Resubscribe);
        assert!(d.trading().is_some());
    }

    #[test]
    fn private_sessions_per_account() {
        let h = Arc::new(Credentials::hmac("id", "secret").unwrap());
        let p = Deribit.session("btc", &Environment::Testnet, h.clone(), Arc::new(Clock::default())).unwrap();
        assert_eq!(p.url, "wss://test.deribit.com/ws/api/v2");
        assert_eq!(p.streams, ["user.changes.any.BTC.raw", "user.portfolio.btc"]);
        assert_eq!(p.market, INVERSE);
        assert_eq!(p.time_url.as_deref(), Some("https://test.deribit.com/api/v2/public/get_time"));
        let p = Deribit.session("usdc", &Environment::Production, h.clone(), Arc::new(Clock::default())).unwrap();
        assert_eq!(p.market, LINEAR);
        let p = Deribit
            .session_with(
                "any",
                &Environment::Production,
                h.clone(),
                Arc::new(Clock::default()),
                Grant::ClientCredentials,
            )
            .unwrap();
        assert_eq!(p.streams, ["user.changes.any.any.raw", "user.portfolio.any"]);
        assert!(Deribit.session("spot", &Environment::Production, h, Arc::new(Clock::default())).is_err());
        let ed = Arc::new(Credentials::ed25519_seed("k", [1; 32]).unwrap());
        assert!(Deribit.session("any", &Environment::Production, ed, Arc::new(Clock::default())).is_err());
    }
}
