//! Binance endpoints per market and environment, and the USDⓈ-M / options
//! stream routes (PROTOCOLS.md §1.1, §2.1, §3, §4).

use std::fmt;

/// A Binance market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Market {
    /// Spot (and margin user data).
    Spot,
    /// USDⓈ-M futures.
    UsdM,
    /// COIN-M futures.
    CoinM,
    /// European options.
    Options,
}

impl Market {
    /// Every market.
    pub const ALL: [Market; 4] = [Market::Spot, Market::UsdM, Market::CoinM, Market::Options];

    /// `spot`, `usdm`, `coinm`, `options`.
    pub fn name(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::UsdM => "usdm",
            Market::CoinM => "coinm",
            Market::Options => "options",
        }
    }

    /// Parses [`Market::name`].
    pub fn from_name(s: &str) -> Option<Market> {
        Market::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether WebSocket paths are split into `/public`, `/market`, `/private`.
    pub fn is_routed(self) -> bool {
        matches!(self, Market::UsdM | Market::Options)
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub use crate::env::Environment;

/// A USDⓈ-M / options WebSocket route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// High-frequency book data.
    Public,
    /// Everything else public.
    Market,
    /// User data.
    Private,
}

impl Route {
    /// The path segment: `/public`, `/market`, `/private`.
    pub fn path(self) -> &'static str {
        match self {
            Route::Public => "/public",
            Route::Market => "/market",
            Route::Private => "/private",
        }
    }
}

pub use crate::env::Endpoints;

/// The base URLs of `market` in `env`.
pub fn endpoints(market: Market, env: &Environment) -> Endpoints {
    let (ws, rest) = match (env, market) {
        (Environment::Custom { ws, rest }, _) => return Endpoints { ws: ws.clone(), rest: rest.clone() },
        (Environment::Production, Market::Spot) => ("wss://stream.binance.com:9443", "https://api.binance.com"),
        (Environment::Production, Market::UsdM) => ("wss://fstream.binance.com", "https://fapi.binance.com"),
        (Environment::Production, Market::CoinM) => ("wss://dstream.binance.com", "https://dapi.binance.com"),
        (Environment::Production, Market::Options) => ("wss://fstream.binance.com", "https://eapi.binance.com"),
        (Environment::Testnet, Market::Spot) => {
            ("wss://stream.testnet.binance.vision", "https://testnet.binance.vision")
        }
        (Environment::Demo, Market::Spot) => ("wss://demo-stream.binance.com", "https://demo-api.binance.com"),
        (Environment::Testnet | Environment::Demo, Market::UsdM) => {
            ("wss://fstream.binancefuture.com", "https://demo-fapi.binance.com")
        }
        (Environment::Testnet | Environment::Demo, Market::CoinM) => {
            ("wss://dstream.binancefuture.com", "https://testnet.binancefuture.com")
        }
        (Environment::Testnet | Environment::Demo, Market::Options) => {
            ("wss://fstream.binancefuture.com", "https://testnet.binancefuture.com")
        }
    };
    Endpoints { ws: ws.to_string(), rest: rest.to_string() }
}

/// The WebSocket base for a route (`None` on unrouted markets).
pub fn ws_base(market: Market, env: &Environment, route: Option<Route>) -> String {
    let base = endpoints(market, env).ws;
    match (market.is_routed(), route) {
        (true, Some(r)) => format!("{}{}", base.trim_end_matches('/'), r.path()),
        _ => base.trim_end_matches('/').to_string(),
    }
}

/// The route that serves a public stream on a routed market (`None` elsewhere).
pub fn route_of(market: Market, stream: &str) -> Option<Route> {
    if !market.is_routed() {
        return None;
    }
    let kind = stream.split_once('@').map_or(stream, |(_, k)| k);
    // USD-M `@trade` (undocumented there) is a `/public` stream: live reports
    // after the 2026-04-23 split have it on unrouted connections, which only
    // get `/public` streams (binance/binance-public-data#472).
    let public = kind.starts_with("bookTicker")
        || kind == "trade"
        || kind.starts_with("depth")
        || kind.starts_with("rpiDepth")
        || stream == "!bookTicker"
        || (market == Market::Options && (kind.starts_with("optionTrade") || kind.starts_with("optionTicker")));
    Some(if public { Route::Public } else { Route::Market })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the real URLs of PROTOCOLS.md §1.1, §2.1, §3 and §4.
    #[test]
    fn production_testnet_and_demo_urls_are_the_documented_ones() {
        let e = |m, env: &Environment| endpoints(m, env);
        use Environment::*;
        assert_eq!(e(Market::Spot, &Production).ws, "wss://stream.binance.com:9443");
        assert_eq!(e(Market::Spot, &Production).rest, "https://api.binance.com");
        assert_eq!(e(Market::UsdM, &Production).ws, "wss://fstream.binance.com");
        assert_eq!(e(Market::UsdM, &Production).rest, "https://fapi.binance.com");
        assert_eq!(e(Market::CoinM, &Production).ws, "wss://dstream.binance.com");
        assert_eq!(e(Market::CoinM, &Production).rest, "https://dapi.binance.com");
        assert_eq!(e(Market::Options, &Production).rest, "https://eapi.binance.com");
        assert_eq!(e(Market::Spot, &Testnet).ws, "wss://stream.testnet.binance.vision");
        assert_eq!(e(Market::Spot, &Testnet).rest, "https://testnet.binance.vision");
        assert_eq!(e(Market::UsdM, &Testnet).ws, "wss://fstream.binancefuture.com");
        assert_eq!(e(Market::UsdM, &Testnet).rest, "https://demo-fapi.binance.com");
        assert_eq!(e(Market::CoinM, &Testnet).ws, "wss://dstream.binancefuture.com");
        assert_eq!(e(Market::CoinM, &Testnet).rest, "https://testnet.binancefuture.com");
        assert_eq!(e(Market::Spot, &Demo).ws, "wss://demo-stream.binance.com");
        assert_eq!(e(Market::Spot, &Demo).rest, "https://demo-api.binance.com");
        assert_eq!(ws_base(Market::UsdM, &Production, Some(Route::Public)), "wss://fstream.binance.com/public");
        assert_eq!(ws_base(Market::Options, &Production, Some(Route::Market)), "wss://fstream.binance.com/market");
        assert_eq!(ws_base(Market::Spot, &Production, Some(Route::Public)), "wss://stream.binance.com:9443");
        assert!(!Production.is_sandbox() && Testnet.is_sandbox() && Demo.is_sandbox());
        let sim = Custom { ws: "ws://127.0.0.1:9401/".into(), rest: "http://127.0.0.1:9401".into() };
        assert_eq!(ws_base(Market::UsdM, &sim, Some(Route::Market)), "ws://127.0.0.1:9401/market");
    }

    #[test]
    fn routes_follow_the_2026_split() {
        assert_eq!(route_of(Market::UsdM, "btcusdt@depth@100ms"), Some(Route::Public));
        assert_eq!(route_of(Market::UsdM, "btcusdt@bookTicker"), Some(Route::Public));
        assert_eq!(route_of(Market::UsdM, "btcusdt@trade"), Some(Route::Public));
        assert_eq!(route_of(Market::UsdM, "btcusdt@aggTrade"), Some(Route::Market));
        assert_eq!(route_of(Market::UsdM, "btcusdt@markPrice@1s"), Some(Route::Market));
        assert_eq!(route_of(Market::UsdM, "btcusdt@aggTrade"), Some(Route::Market));
        assert_eq!(route_of(Market::Options, "btc-261225-100000-c@optionTrade"), Some(Route::Public));
        assert_eq!(route_of(Market::Options, "btc-261225-100000-c@kline_1m"), Some(Route::Market));
        assert_eq!(route_of(Market::Spot, "btcusdt@depth"), None);
        assert_eq!(route_of(Market::CoinM, "btcusd_perp@depth"), None);
    }
}
