//! Bybit v5 endpoints per category and environment (PROTOCOLS.md §5.1).
//!
//! Every category has its own public WebSocket path
//! (`/v5/public/{spot,linear,inverse,option}`); user data has one private
//! path for all categories (`/v5/private`). Demo trading has only a private
//! host of its own: its public data is mainnet's.

use std::fmt;

use ferrofeed_model::event::MarketType;

/// A Bybit product category: one public WebSocket path each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Spot.
    Spot,
    /// Linear contracts (USDT/USDC perpetuals, USDT futures).
    Linear,
    /// Inverse (coin-margined) contracts.
    Inverse,
    /// Options (USDT/USDC).
    Option,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 4] = [Category::Spot, Category::Linear, Category::Inverse, Category::Option];

    /// The venue's name: `spot`, `linear`, `inverse`, `option` (paths, REST
    /// `category=` and the private payloads' `category` field).
    pub fn name(self) -> &'static str {
        match self {
            Category::Spot => "spot",
            Category::Linear => "linear",
            Category::Inverse => "inverse",
            Category::Option => "option",
        }
    }

    /// Parses [`Category::name`].
    pub fn from_name(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The normalized market type: `spot`, `linear`, `inverse`, `options`.
    pub fn market_type(self) -> MarketType {
        match self {
            Category::Spot => MarketType::Spot,
            Category::Linear => MarketType::Linear,
            Category::Inverse => MarketType::Inverse,
            Category::Option => MarketType::Options,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub use crate::env::Environment;

fn ws_host(env: &Environment, private: bool) -> String {
    match env {
        Environment::Production => "wss://stream.bybit.com".into(),
        Environment::Testnet => "wss://stream-testnet.bybit.com".into(),
        Environment::Demo if private => "wss://stream-demo.bybit.com".into(),
        Environment::Demo => "wss://stream.bybit.com".into(),
        Environment::Custom { ws, .. } => ws.trim_end_matches('/').to_string(),
    }
}

/// The public WebSocket URL of `category` in `env`.
pub fn public_url(category: Category, env: &Environment) -> String {
    format!("{}/v5/public/{}", ws_host(env, false), category.name())
}

/// The private WebSocket URL in `env`. `max_active_time` (the venue accepts
/// `30s` to `600s`, or `1m`, `2m`, ...) sets the server's idle cut for this
/// connection; `None` keeps the venue's default (10 minutes).
pub fn private_url(env: &Environment, max_active_time: Option<&str>) -> String {
    let base = format!("{}/v5/private", ws_host(env, true));
    match max_active_time {
        Some(t) => format!("{base}?max_active_time={t}"),
        None => base,
    }
}

/// The REST base in `env` (order book snapshots, instruments, server time).
pub fn rest_base(env: &Environment) -> String {
    match env {
        Environment::Production => "https://api.bybit.com".into(),
        Environment::Testnet => "https://api-testnet.bybit.com".into(),
        Environment::Demo => "https://api-demo.bybit.com".into(),
        Environment::Custom { rest, .. } => rest.trim_end_matches('/').to_string(),
    }
}

/// The REST order-book snapshot request for `symbol` (`GET
/// /v5/market/orderbook`, §5.7): path and query, with `limit` clamped to
/// what the category allows (spot/linear/inverse 1–1000, option 1–25). Its
/// `u` continues the 1000-level stream's `u` only (`orderbook.1000.<symbol>`;
/// option: none); other depths resynchronize by resubscribing, which makes
/// the venue send a fresh snapshot on the stream.
pub fn snapshot_request(category: Category, symbol: &str, limit: u32) -> String {
    let max = if category == Category::Option { 25 } else { 1000 };
    format!(
        "/v5/market/orderbook?category={}&symbol={}&limit={}",
        category.name(),
        symbol.to_ascii_uppercase(),
        limit.clamp(1, max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the real URLs of PROTOCOLS.md §5.1.
    #[test]
    fn urls_are_the_documented_ones() {
        use Environment::*;
        assert_eq!(public_url(Category::Spot, &Production), "wss://stream.bybit.com/v5/public/spot");
        assert_eq!(public_url(Category::Linear, &Production), "wss://stream.bybit.com/v5/public/linear");
        assert_eq!(public_url(Category::Inverse, &Production), "wss://stream.bybit.com/v5/public/inverse");
        assert_eq!(public_url(Category::Option, &Production), "wss://stream.bybit.com/v5/public/option");
        assert_eq!(public_url(Category::Linear, &Testnet), "wss://stream-testnet.bybit.com/v5/public/linear");
        assert_eq!(public_url(Category::Spot, &Demo), "wss://stream.bybit.com/v5/public/spot");
        assert_eq!(private_url(&Production, None), "wss://stream.bybit.com/v5/private");
        assert_eq!(private_url(&Testnet, None), "wss://stream-testnet.bybit.com/v5/private");
        assert_eq!(private_url(&Demo, None), "wss://stream-demo.bybit.com/v5/private");
        assert_eq!(private_url(&Production, Some("2m")), "wss://stream.bybit.com/v5/private?max_active_time=2m");
        assert_eq!(rest_base(&Production), "https://api.bybit.com");
        assert_eq!(rest_base(&Testnet), "https://api-testnet.bybit.com");
        assert_eq!(rest_base(&Demo), "https://api-demo.bybit.com");
        let sim = Custom { ws: "ws://127.0.0.1:9500/".into(), rest: "http://127.0.0.1:9500/".into() };
        assert_eq!(public_url(Category::Option, &sim), "ws://127.0.0.1:9500/v5/public/option");
        assert_eq!(private_url(&sim, None), "ws://127.0.0.1:9500/v5/private");
        assert_eq!(rest_base(&sim), "http://127.0.0.1:9500");
        assert!(!Production.is_sandbox() && Testnet.is_sandbox() && Demo.is_sandbox() && sim.is_sandbox());
    }

    #[test]
    fn categories_and_snapshot_requests() {
        for c in Category::ALL {
            assert_eq!(Category::from_name(c.name()), Some(c));
        }
        assert_eq!(Category::from_name("usdm"), None);
        assert_eq!(Category::Option.market_type(), MarketType::Options);
        assert_eq!(
            snapshot_request(Category::Linear, "btcusdt", 5000),
            "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=1000"
        );
        assert_eq!(
            snapshot_request(Category::Option, "BTC-6JAN23-18000-C", 100),
            "/v5/market/orderbook?category=option&symbol=BTC-6JAN23-18000-C&limit=25"
        );
    }
}
