//! Deribit markets and endpoints (PROTOCOLS.md §6.1).
//!
//! Deribit serves every instrument on one JSON-RPC WebSocket
//! (`/ws/api/v2`) and one REST base (`/api/v2`): the markets below are how
//! ferrofeed groups its instruments by settlement, not separate hosts. A
//! custom environment (the simulator) gives each market its own base, with
//! the same paths appended.

use std::fmt;

use ferrofeed_model::event::MarketType;

pub use crate::env::Environment;

/// A Deribit market: its instruments grouped by settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Market {
    /// Coin-settled (inverse) perpetuals, dated futures and future combos
    /// (`BTC-PERPETUAL`, `BTC-27DEC24`, `BTC-FS-27DEC24_PERP`); amounts in
    /// USD.
    Inverse,
    /// USDC-settled (linear) perpetuals and futures (`BTC_USDC-PERPETUAL`);
    /// amounts in the base coin.
    Linear,
    /// Options and option combos (`BTC-27DEC24-100000-C`); amounts in
    /// contracts (one coin each).
    Option,
}

impl Market {
    /// Every market, in the order the venue spec lists them.
    pub const ALL: [Market; 3] = [Market::Inverse, Market::Linear, Market::Option];

    /// Its name: `inverse`, `linear`, `option`.
    pub fn name(self) -> &'static str {
        match self {
            Market::Inverse => "inverse",
            Market::Linear => "linear",
            Market::Option => "option",
        }
    }

    /// The normalized market type.
    pub fn market_type(self) -> MarketType {
        match self {
            Market::Inverse => MarketType::Inverse,
            Market::Linear => MarketType::Linear,
            Market::Option => MarketType::Options,
        }
    }

    /// The market of a normalized market type.
    pub fn of(m: MarketType) -> Option<Market> {
        Market::ALL.into_iter().find(|x| x.market_type() == m)
    }

    /// The market an instrument name belongs to: options end in `-C` or
    /// `-P` (option combos contain `-CS-`, `-PS-`, ... and are options too),
    /// `_USDC`/`_USDT` instruments are linear, everything else inverse.
    pub fn of_instrument(name: &str) -> Market {
        let upper = name.to_ascii_uppercase();
        let option_combo = ["-CS-", "-PS-", "-CD-", "-PD-", "-STRD-", "-STRG-", "-RR-", "-BF-", "-CBUT-", "-PBUT-"]
            .iter()
            .any(|t| upper.contains(t));
        if upper.ends_with("-C") || upper.ends_with("-P") || option_combo {
            Market::Option
        } else if upper.contains("_USDC") || upper.contains("_USDT") {
            Market::Linear
        } else {
            Market::Inverse
        }
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The WebSocket path on every host.
pub const WS_PATH: &str = "/ws/api/v2";
/// The REST path on every host.
pub const REST_PATH: &str = "/api/v2";

/// The host (scheme and authority) of the WebSocket in `env`. Deribit has
/// no separate demo: `Demo` is the testnet.
pub fn ws_host(env: &Environment) -> String {
    match env {
        Environment::Production => "wss://www.deribit.com".into(),
        Environment::Testnet | Environment::Demo => "wss://test.deribit.com".into(),
        Environment::Custom { ws, .. } => ws.trim_end_matches('/').to_string(),
    }
}

/// The WebSocket URL in `env` (every market; in a custom environment, the
/// market's own base).
pub fn ws_url(env: &Environment) -> String {
    format!("{}{WS_PATH}", ws_host(env))
}

/// The REST base in `env` (paths such as `/public/get_order_book` are
/// appended).
pub fn rest_base(env: &Environment) -> String {
    let host = match env {
        Environment::Production => "https://www.deribit.com".to_string(),
        Environment::Testnet | Environment::Demo => "https://test.deribit.com".to_string(),
        Environment::Custom { rest, .. } => rest.trim_end_matches('/').to_string(),
    };
    format!("{host}{REST_PATH}")
}

/// The REST path (below [`rest_base`]) of an order-book snapshot of
/// `instrument` with `depth` levels per side (§6.6: `public/get_order_book`,
/// depth 1, 5, 10, 20, 50, 100, 1000 or 10000; the next allowed depth at or
/// above the one asked for).
pub fn snapshot_request(instrument: &str, depth: u32) -> String {
    const DEPTHS: [u32; 8] = [1, 5, 10, 20, 50, 100, 1000, 10_000];
    let depth = DEPTHS.into_iter().find(|d| *d >= depth).unwrap_or(10_000);
    format!("/public/get_order_book?instrument_name={instrument}&depth={depth}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the real URLs of PROTOCOLS.md §6.1: WS `wss://www.deribit.com/ws/api/v2`,
    /// testnet `wss://test.deribit.com/ws/api/v2`; REST
    /// `https://www.deribit.com/api/v2`, `https://test.deribit.com/api/v2`.
    #[test]
    fn urls_are_the_documented_ones() {
        use Environment::*;
        assert_eq!(ws_url(&Production), "wss://www.deribit.com/ws/api/v2");
        assert_eq!(ws_url(&Testnet), "wss://test.deribit.com/ws/api/v2");
        assert_eq!(ws_url(&Demo), "wss://test.deribit.com/ws/api/v2");
        assert_eq!(rest_base(&Production), "https://www.deribit.com/api/v2");
        assert_eq!(rest_base(&Testnet), "https://test.deribit.com/api/v2");
        let sim = Custom { ws: "ws://127.0.0.1:9600/".into(), rest: "http://127.0.0.1:9600/".into() };
        assert_eq!(ws_url(&sim), "ws://127.0.0.1:9600/ws/api/v2");
        assert_eq!(rest_base(&sim), "http://127.0.0.1:9600/api/v2");
    }

    #[test]
    fn instruments_fall_in_their_markets() {
        assert_eq!(Market::of_instrument("BTC-PERPETUAL"), Market::Inverse);
        assert_eq!(Market::of_instrument("BTC-27DEC24"), Market::Inverse);
        assert_eq!(Market::of_instrument("BTC-FS-27DEC24_PERP"), Market::Inverse);
        assert_eq!(Market::of_instrument("BTC_USDC-PERPETUAL"), Market::Linear);
        assert_eq!(Market::of_instrument("ETH_USDC-PERPETUAL"), Market::Linear);
        assert_eq!(Market::of_instrument("BTC-24SEP21-8000-P"), Market::Option);
        assert_eq!(Market::of_instrument("ETH-30JUL21-2800-C"), Market::Option);
        assert_eq!(Market::of_instrument("BTC_USDC-27DEC24-100000-C"), Market::Option);
        assert_eq!(Market::of_instrument("BTC-CS-27DEC24-100000_110000"), Market::Option);
        for m in Market::ALL {
            assert_eq!(Market::of(m.market_type()), Some(m));
        }
    }

    #[test]
    fn snapshot_depths_round_up_to_an_allowed_one() {
        assert_eq!(
            snapshot_request("BTC-PERPETUAL", 7),
            "/public/get_order_book?instrument_name=BTC-PERPETUAL&depth=10"
        );
        assert_eq!(
            snapshot_request("BTC-PERPETUAL", 1000),
            "/public/get_order_book?instrument_name=BTC-PERPETUAL&depth=1000"
        );
        assert_eq!(snapshot_request("X", 99_999), "/public/get_order_book?instrument_name=X&depth=10000");
    }
}
