//! Binance through the venue seam ([`VenueSpec`]): spot, USDⓈ-M, COIN-M and
//! options, as data over the functions of this module's siblings.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::event::{Event, MarketType, Venue};
use ferrofeed_model::rules::{Inbound, Read, VenueRules};

use super::auth::{Clock, Credentials, KeyKind};
use super::book::{sequencing, snapshot_request};
use super::normalize::{self, market_type};
use super::private::{
    Account, ListenKeyRules, ListenTokenIssuer, ListenTokenRules, MAX_LISTEN_TOKEN_VALIDITY, USER_STREAM,
    WsApiUserRules, listen_key_url, rest_base, ws_api_url,
};
use super::registry::{exchange_info_path, from_exchange_info, stream_symbol};
use super::{BinanceRules, Market, Route as BinanceRoute, endpoints, route_of, venue_limits, ws_base};
use crate::env::{Endpoints, Environment};

/// `-1021`: the `timestamp` is outside `recvWindow` (the clock drifted).
const CLOCK_REFUSALS: &[&str] = &["-1021"];
use crate::error::DecodeError;
use crate::instruments::{Registry, RegistryError};
use crate::seam::{
    AccountName, BookPlan, Channel, Decoder, HostLimits, MarketId, PoolOptions, PoolPlan, Recovery, Route, SeamError,
    SessionAuth, SessionPlan, TokenSlot, VenueSpec, classify_then_decode,
};

/// Binance's socket lifetime is 24 h (PROTOCOLS.md §1.2); sockets are
/// rotated make-before-break ten minutes before.
pub const ROTATE_AFTER: Duration = Duration::from_secs(23 * 3600 + 50 * 60);

/// The diff-stream speed local books subscribe (`@100ms`).
pub const BOOK_SPEED: &str = "@100ms";

impl From<Market> for MarketId {
    fn from(m: Market) -> MarketId {
        MarketId::new(Venue::Binance, market_type(m))
    }
}

/// Binance spot.
pub const SPOT: MarketId = MarketId::new(Venue::Binance, MarketType::Spot);
/// Binance USDⓈ-M futures.
pub const USDM: MarketId = MarketId::new(Venue::Binance, MarketType::UsdM);
/// Binance COIN-M futures.
pub const COINM: MarketId = MarketId::new(Venue::Binance, MarketType::CoinM);
/// Binance options.
pub const OPTIONS: MarketId = MarketId::new(Venue::Binance, MarketType::Options);

/// Binance, as the registry lists it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Binance;

/// The Binance market of a normalized market type.
pub fn market_of(m: MarketType) -> Option<Market> {
    Market::ALL.into_iter().find(|x| market_type(*x) == m)
}

fn market(m: MarketType) -> Market {
    // The client only calls the seam with markets the registry listed.
    market_of(m).unwrap_or(Market::Spot)
}

fn route_name(r: Option<BinanceRoute>) -> Route {
    match r {
        Some(BinanceRoute::Public) => "public",
        Some(BinanceRoute::Market) => "market",
        Some(BinanceRoute::Private) => "private",
        None => "",
    }
}

fn route_of_name(r: Route) -> Option<BinanceRoute> {
    match r {
        "public" => Some(BinanceRoute::Public),
        "market" => Some(BinanceRoute::Market),
        "private" => Some(BinanceRoute::Private),
        _ => None,
    }
}

fn valid(symbol: &str) -> Result<String, SeamError> {
    Ok(crate::seam::stream_symbol(symbol)?.to_ascii_lowercase())
}

/// Parses a Binance account name: `spot`, `margin`, `isolated:<SYMBOL>`,
/// `usdm`, `coinm`.
pub fn parse_account(name: &str) -> Option<Account> {
    Some(match name {
        "spot" => Account::Spot,
        "margin" => Account::Margin,
        "usdm" => Account::UsdM,
        "coinm" => Account::CoinM,
        other => {
            let sym = other.strip_prefix("isolated:")?;
            if sym.is_empty() || !sym.chars().all(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
            Account::IsolatedMargin(sym.to_ascii_uppercase())
        }
    })
}

impl VenueSpec for Binance {
    fn venue(&self) -> Venue {
        Venue::Binance
    }

    fn markets(&self) -> &'static [MarketType] {
        &[MarketType::Spot, MarketType::UsdM, MarketType::CoinM, MarketType::Options]
    }

    fn market_name(&self, m: MarketType) -> &'static str {
        market(m).name()
    }

    fn endpoints(&self, m: MarketType, env: &Environment) -> Endpoints {
        endpoints(market(m), env)
    }

    fn host_limits(&self, m: MarketType) -> HostLimits {
        let l = venue_limits(market(m));
        HostLimits {
            attempts: (l.max_attempts, l.attempt_window),
            rest_weight: Some((l.rest_weight_per_minute, Duration::from_secs(60))),
        }
    }

    fn route(&self, m: MarketType, stream: &str) -> Route {
        route_name(route_of(market(m), stream))
    }

    fn pool(&self, m: MarketType, route: Route, env: &Environment, opts: &PoolOptions) -> PoolPlan {
        let mk = market(m);
        let r = route_of_name(route);
        let mut rules = BinanceRules::new(mk);
        if let Some(n) = opts.max_url_bytes {
            rules.max_url_bytes = n;
        }
        let name = match r {
            Some(r) => format!("binance:{mk}:{}", r.path().trim_start_matches('/')),
            None => format!("binance:{mk}"),
        };
        PoolPlan {
            name,
            url: ws_base(mk, env, r),
            host: endpoints(mk, env).ws,
            rules: Arc::new(rules),
            rotate_after: Some(ROTATE_AFTER),
        }
    }

    fn stream(&self, m: MarketType, channel: &Channel, symbol: &str) -> Result<String, SeamError> {
        let mk = market(m);
        let s = valid(symbol)?;
        let deriv = matches!(mk, Market::UsdM | Market::CoinM);
        let suffix = match (channel, mk) {
            (Channel::Trades, Market::Options) => "@optionTrade".to_string(),
            (Channel::Trades, _) => "@trade".to_string(),
            (Channel::AggTrades, m) if m != Market::Options => "@aggTrade".to_string(),
            (Channel::TopOfBook, _) => "@bookTicker".to_string(),
            (Channel::Ticker, Market::Options) => "@optionTicker".to_string(),
            (Channel::Ticker, _) => "@ticker".to_string(),
            (Channel::Kline(i), m) if m != Market::Options => format!("@kline_{i}"),
            (Channel::MarkPrice, _) if deriv => "@markPrice".to_string(),
            (Channel::Liquidations, _) if deriv => "@forceOrder".to_string(),
            (Channel::Book(_), _) => format!("@depth{BOOK_SPEED}"),
            _ => {
                return Err(SeamError::Unsupported {
                    market: MarketId::new(Venue::Binance, m),
                    channel: channel.to_string(),
                });
            }
        };
        Ok(format!("{s}{suffix}"))
    }

    fn symbol_of(&self, _m: MarketType, stream: &str) -> Option<String> {
        stream_symbol(stream)
    }

    fn decoder(&self, m: MarketType) -> Box<dyn Decoder> {
        Box::new(BinanceDecoder(market(m)))
    }

    fn book_plan(&self, m: MarketType, symbol: &str, depth: u32) -> BookPlan {
        let mk = market(m);
        // 0: the default, 1000 levels (the largest futures snapshot).
        let depth = if depth == 0 { 1000 } else { depth };
        let (path, weight, _) = snapshot_request(mk, symbol, depth);
        BookPlan {
            stream: format!("{}@depth{BOOK_SPEED}", symbol.to_ascii_lowercase()),
            sequencing: sequencing(mk),
            recovery: Recovery::Rest { path, weight },
        }
    }

    fn decode_book_snapshot(
        &self,
        m: MarketType,
        symbol: &str,
        body: &str,
        received_ns: i64,
    ) -> Result<Event, DecodeError> {
        normalize::decode_rest_snapshot(market(m), symbol, body, received_ns)
    }

    fn instruments_request(&self, m: MarketType) -> Option<(String, u32)> {
        let (path, weight) = exchange_info_path(market(m));
        Some((path.to_string(), weight))
    }

    fn parse_instruments(&self, m: MarketType, body: &str) -> Result<Registry, RegistryError> {
        from_exchange_info(market(m), body)
    }

    fn session(
        &self,
        account: &AccountName,
        env: &Environment,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> Result<SessionPlan, SeamError> {
        let acct = parse_account(account).ok_or_else(|| {
            SeamError::Credentials(format!(
                "binance has no account {account:?} (spot, margin, isolated:<SYMBOL>, usdm, coinm)"
            ))
        })?;
        let market_id = MarketId::new(Venue::Binance, market_type(acct.market()));
        let time_url = Some(format!("{}{}", rest_base(&acct, env), acct.time_path()));
        let streams = vec![USER_STREAM.to_string()];
        if acct == Account::Spot {
            if credentials.kind() != KeyKind::Ed25519 {
                return Err(SeamError::Credentials(format!(
                    "spot user data needs an Ed25519 API key (session.logon); this key is {:?}",
                    credentials.kind()
                )));
            }
            return Ok(SessionPlan {
                market: market_id,
                url: ws_api_url(env),
                rules: Arc::new(WsApiUserRules::new(credentials, clock)),
                streams,
                auth: SessionAuth::InBand,
                time_url,
                time_field: "serverTime",
                clock_refusals: CLOCK_REFUSALS,
            });
        }
        if let Some(issuer) = ListenTokenIssuer::new(&acct, rest_base(&acct, env), credentials, clock) {
            let slot = Arc::new(TokenSlot::default());
            return Ok(SessionPlan {
                market: market_id,
                url: ws_api_url(env),
                rules: Arc::new(ListenTokenRules::new(slot.clone())),
                streams,
                auth: SessionAuth::ListenToken {
                    issuer: Arc::new(issuer),
                    slot,
                    validity: MAX_LISTEN_TOKEN_VALIDITY,
                    expired_event: "eventStreamTerminated",
                },
                time_url,
                time_field: "serverTime",
                clock_refusals: CLOCK_REFUSALS,
            });
        }
        let path = acct.listen_key_path().unwrap_or_default();
        Ok(SessionPlan {
            market: market_id,
            url: String::new(),
            rules: Arc::new(ListenKeyRules),
            streams,
            auth: SessionAuth::Token {
                rest: rest_base(&acct, env),
                path,
                // Futures listenKeys are per API key: keep-alives name none.
                token_param: None,
                keepalive: Duration::from_secs(30 * 60),
                url_template: listen_key_url(&acct, env, "{token}"),
                key_header: "X-MBX-APIKEY",
                token_field: "listenKey",
                expired_marker: "-1125",
                expired_event: "listenKeyExpired",
            },
            time_url,
            time_field: "serverTime",
            clock_refusals: CLOCK_REFUSALS,
        })
    }

    fn accounts(&self) -> &'static [&'static str] {
        &["spot", "margin", "isolated:<SYMBOL>", "usdm", "coinm"]
    }

    fn trading(&self) -> Option<&'static dyn crate::trading::TradingSpec> {
        Some(&super::trade::BinanceTrading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn markets_routes_and_pools_match_the_module_functions() {
        let b = Binance;
        for m in Market::ALL {
            let t = market_type(m);
            assert_eq!(b.parse_market(m.name()).map(|x| x.market), Ok(t));
            assert_eq!(b.endpoints(t, &Environment::Production), endpoints(m, &Environment::Production));
        }
        assert_eq!(b.route(MarketType::UsdM, "btcusdt@depth@100ms"), "public");
        assert_eq!(b.route(MarketType::UsdM, "btcusdt@aggTrade"), "market");
        assert_eq!(b.route(MarketType::Spot, "btcusdt@trade"), "");
        let p = b.pool(MarketType::UsdM, "public", &Environment::Production, &PoolOptions::default());
        assert_eq!((p.name.as_str(), p.url.as_str()), ("binance:usdm:public", "wss://fstream.binance.com/public"));
        assert_eq!(p.rotate_after, Some(ROTATE_AFTER));
        assert!(b.parse_market("linear").is_err());
    }

    #[test]
    fn typed_channels_map_to_stream_names_and_back() {
        let b = Binance;
        let s = |m, c: Channel| b.stream(m, &c, "BTCUSDT");
        assert_eq!(s(MarketType::Spot, Channel::Trades).as_deref(), Ok("btcusdt@trade"));
        assert_eq!(s(MarketType::Spot, Channel::TopOfBook).as_deref(), Ok("btcusdt@bookTicker"));
        assert_eq!(s(MarketType::Spot, Channel::Kline("1m".into())).as_deref(), Ok("btcusdt@kline_1m"));
        assert_eq!(s(MarketType::UsdM, Channel::MarkPrice).as_deref(), Ok("btcusdt@markPrice"));
        assert_eq!(s(MarketType::Options, Channel::Trades).as_deref(), Ok("btcusdt@optionTrade"));
        assert!(s(MarketType::Spot, Channel::Liquidations).is_err());
        // No futures stream carries open interest (REST only), and the options
        // one is per underlying and expiry, not per symbol.
        for m in [MarketType::Spot, MarketType::UsdM, MarketType::CoinM, MarketType::Options] {
            assert!(s(m, Channel::OpenInterest).is_err(), "{m:?}");
        }
        assert!(b.stream(MarketType::Spot, &Channel::Trades, "BTC USDT").is_err());
        for c in [Channel::Trades, Channel::AggTrades, Channel::TopOfBook, Channel::Book(100)] {
            let name = s(MarketType::Spot, c).unwrap();
            assert_eq!(b.symbol_of(MarketType::Spot, &name).as_deref(), Some("BTCUSDT"));
        }
        assert_eq!(b.symbol_of(MarketType::Spot, "!miniTicker@arr"), None);
        assert_eq!(b.book_plan(MarketType::Spot, "BTCUSDT", 1000).stream, "btcusdt@depth@100ms");
        // Depth 0 is the venue's default: 1000-level REST snapshots.
        let Recovery::Rest { path, .. } = b.book_plan(MarketType::UsdM, "BTCUSDT", 0).recovery else {
            panic!("binance books recover over REST")
        };
        assert!(path.ends_with("limit=1000"), "{path}");
    }

    #[test]
    fn accounts_parse_and_spot_needs_an_ed25519_key() {
        assert_eq!(parse_account("isolated:btcusdt"), Some(Account::IsolatedMargin("BTCUSDT".into())));
        assert_eq!(parse_account("isolated:"), None);
        let hmac = Arc::new(Credentials::hmac("k", "s").unwrap());
        let clock = Arc::new(Clock::default());
        let e = Binance.session("spot", &Environment::Production, hmac.clone(), clock.clone()).unwrap_err();
        assert!(e.to_string().contains("Ed25519"), "{e}");
        let p = Binance.session("usdm", &Environment::Production, hmac.clone(), clock.clone()).unwrap();
        assert!(matches!(p.auth, SessionAuth::Token { .. }));
        // Margin and isolated margin: a listenToken on the WebSocket API.
        for (account, params) in
            [("margin", "isIsolated=FALSE&validity="), ("isolated:ethbtc", "isIsolated=TRUE&symbol=ETHBTC&validity=")]
        {
            let p = Binance.session(account, &Environment::Production, hmac.clone(), clock.clone()).unwrap();
            assert_eq!(p.url, "wss://ws-api.binance.com:443/ws-api/v3");
            let SessionAuth::ListenToken { issuer, slot, validity, expired_event } = &p.auth else {
                panic!("{account}: {:?}", p.auth)
            };
            assert_eq!((*validity, *expired_event), (Duration::from_secs(86_400), "eventStreamTerminated"));
            let call = issuer.request(Duration::from_secs(60));
            let (path, q) = call.url.split_once('?').unwrap();
            assert_eq!(path, "https://api.binance.com/sapi/v1/userListenToken");
            assert!(q.starts_with(&format!("{params}60000&recvWindow=5000&timestamp=")), "{q}");
            let (signed, sig) = q.rsplit_once("&signature=").unwrap();
            assert_eq!(sig, Credentials::hmac("k", "s").unwrap().sign(signed));
            assert_eq!((call.method, call.headers.clone()), ("POST", vec![("X-MBX-APIKEY", "k".to_string())]));
            assert!(!format!("{call:?}{:?}", p.auth).contains(sig), "a signature in Debug output");
            let answer = br#"{"token":"tok+en/1","expirationTime":1758792204196}"#;
            let (token, exp) = issuer.parse(answer).unwrap();
            assert_eq!((token.expose_secret(), exp), ("tok+en/1", 1_758_792_204_196));
            assert!(issuer.parse(b"{\"code\":-1}").is_none());
            slot.set(token);
            let sub: serde_json::Value = serde_json::from_str(&p.rules.encode_subscribe(7, &[])).unwrap();
            assert_eq!(sub["method"], "userDataStream.subscribe.listenToken");
            assert_eq!((sub["id"].as_u64(), sub["params"]["listenToken"].as_str()), (Some(7), Some("tok+en/1")));
            assert!(!format!("{:?}", p.rules).contains("tok+en"), "the token in Debug output");
        }
        assert!(
            Binance
                .session(
                    "nope",
                    &Environment::Production,
                    Arc::new(Credentials::hmac("k", "s").unwrap()),
                    Arc::new(Clock::default())
                )
                .is_err()
        );
    }
}

/// Binance's decoder: stateless, with a one-pass [`Decoder::read`] for the
/// hot combined-stream frames.
#[derive(Debug)]
struct BinanceDecoder(Market);

impl Decoder for BinanceDecoder {
    fn decode(&mut self, frame: &str, received_ns: i64, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        normalize::decode_into(self.0, frame, received_ns, out)
    }

    fn read<'a>(&mut self, rules: &dyn VenueRules, frame: &'a str, received_ns: i64, out: &mut Vec<Event>) -> Read<'a> {
        if let Some((stream, seq, event)) = normalize::read_fast(self.0, frame, received_ns) {
            out.push(event);
            return Read { inbound: Inbound::Data { stream: Cow::Borrowed(stream), seq }, decoded: Some(Ok(())) };
        }
        classify_then_decode(self, rules, frame, received_ns, out)
    }
}
