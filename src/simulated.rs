//! Running against the bundled simulator: start one for the markets a
//! program uses, and point a [`Feed`](crate::feed::Feed) or a
//! [`PrivateClient`](crate::session::PrivateClient) at it.
//!
//! The simulator speaks each venue's real wire protocol on loopback, so the
//! same program runs unchanged against the simulator, a testnet or
//! production; only the [`Environment`] differs.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::feed::Feed;
//! use ferrofeed::model::event::EventKind;
//! use ferrofeed::venues::{Channel, binance, bybit};
//!
//! let markets = [binance::spec::SPOT, bybit::spec::LINEAR];
//! let sim = ferrofeed::simulated::start(&markets).await?;
//! let mut feed = Feed::builder()
//!     .simulator(&sim)
//!     .subscribe(binance::spec::SPOT, Channel::Trades, "BTCUSDT")
//!     .subscribe(bybit::spec::LINEAR, Channel::Trades, "BTCUSDT")
//!     .build()
//!     .await?;
//! let mut venues = std::collections::BTreeSet::new();
//! while venues.len() < 2 {
//!     let event = feed.next().await.expect("the feed runs until shut down");
//!     if let EventKind::Trade(_) = &event.kind {
//!         venues.insert(event.venue);
//!     }
//! }
//! feed.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use ferrofeed_sim::{MarketConfig, Sim, SimConfig};
use ferrofeed_venues::registry;

use crate::client::{Environment, MarketId};

/// Why the simulator could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The simulator has no such venue or market.
    #[error("the simulator does not serve {0}")]
    NotServed(MarketId),
    /// A market the simulator serves is not in the client's registry.
    #[error("the simulator serves {venue}:{market}, which the venue registry does not know")]
    Unregistered {
        /// The venue's name.
        venue: &'static str,
        /// The market's name.
        market: &'static str,
    },
    /// Binding the simulator's listeners failed.
    #[error("starting the simulator: {0}")]
    Start(#[from] std::io::Error),
}

/// The simulator's configuration for exactly these markets, each with the
/// venue's real limits and default symbols.
pub fn config_for(markets: &[MarketId]) -> Result<SimConfig, SimulatorError> {
    let mut cfg = SimConfig::all_markets();
    cfg.markets.clear();
    for m in markets {
        let mc = MarketConfig::named(m.venue_name(), m.name()).ok_or(SimulatorError::NotServed(*m))?;
        if !cfg.markets.iter().any(|c| c.venue_market() == mc.venue_market()) {
            cfg.markets.push(mc);
        }
    }
    Ok(cfg)
}

/// Starts a simulator for these markets on free loopback ports. It runs
/// until [`Sim::shutdown`] or until it is dropped with the runtime.
pub async fn start(markets: &[MarketId]) -> Result<Sim, SimulatorError> {
    Ok(Sim::start(config_for(markets)?).await?)
}

/// The client [`Environment`] of every market the simulator serves.
pub fn environments(sim: &Sim) -> Result<BTreeMap<MarketId, Environment>, SimulatorError> {
    let mut out = BTreeMap::new();
    for h in sim.markets() {
        let (venue, market) = h.config().venue_market();
        let id = registry::by_name(venue)
            .ok()
            .and_then(|spec| spec.parse_market(market).ok())
            .ok_or(SimulatorError::Unregistered { venue, market })?;
        out.insert(id, Environment::Custom { ws: h.ws_url(), rest: h.rest_url() });
    }
    Ok(out)
}

/// The client [`Environment`] of one simulated market.
pub fn environment(sim: &Sim, market: MarketId) -> Result<Environment, SimulatorError> {
    environments(sim)?.remove(&market).ok_or(SimulatorError::NotServed(market))
}
