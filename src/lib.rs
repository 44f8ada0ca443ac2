//! # ferrofeed
//!
//! Keeps a trading system connected to crypto exchanges' WebSocket APIs and
//! turns what arrives into one ordered, typed stream of events with no silent
//! loss.
//!
//! # Layout
//!
//! - [`feed`]: [`Feed`](feed::Feed), any number of venues and markets as one
//!   `futures::Stream` of normalized events (market data decoded on the live
//!   path, status events, local books), built with `Feed::builder()`, with
//!   the statistics behind the metrics endpoint and the live view.
//! - [`client`]: the connection manager for every venue (pools per venue,
//!   market and route, sharding under the venue's caps, shared attempt and
//!   REST weight budgets, one merged event stream, introspection and
//!   rate-limit statistics).
//! - [`books`]: local order books for every venue, recovered the way the
//!   venue's book plan says (REST snapshot or resubscribe), and the offline
//!   `replay`.
//! - [`session`]: private user-data sessions for every venue (in-band
//!   authentication or a REST-issued token) with credentials kept secret.
//! - [`trading`]: [`OrderClient`](trading::OrderClient), one order API
//!   (place, amend, cancel, cancel all, open orders) over each venue's
//!   authenticated WebSocket, with typed answers and refusals and an explicit
//!   "outcome unknown" when an answer is lost.
//! - [`metrics`]: the Prometheus text endpoint over a feed's statistics.
//! - [`record`]: the crash-safe capture format.
//! - `simulated` (with the `sim` feature): start the bundled simulator for
//!   some markets and point a feed or a private session at it.
//! - [`export`]: captures to Parquet (one file per venue, market, event type
//!   and hour; exact decimals, typed timestamps).
//! - [`sink`]: the NATS JetStream sink and reader (`Nats-Msg-Id` from the
//!   venue's identity of each event, bounded in-flight and buffer, losses
//!   counted and reported) and `Shard`, the `--shard K/N` partition.
//! - The engine (`ferrofeed-engine`), the venue rules and the venue seam
//!   (`ferrofeed-venues`: `VenueSpec` and the registry) and, with the `sim`
//!   feature, the simulator (`ferrofeed-sim`) are separate crates
//!   re-exported here. This crate names no venue: everything venue-specific
//!   comes through the registry.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::feed::Feed;
//! use ferrofeed::venues::{Channel, binance, bybit};
//! use futures_util::StreamExt;
//! let mut feed = Feed::builder()
//!     .subscribe(binance::spec::SPOT, Channel::Trades, "BTCUSDT")
//!     .subscribe(bybit::spec::LINEAR, Channel::Trades, "BTCUSDT")
//!     .build()
//!     .await?;
//! while let Some(event) = feed.next().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod audit;
pub mod books;
pub mod client;
pub mod export;
pub mod feed;
pub mod metrics;
pub mod record;
pub mod session;
#[cfg(feature = "sim")]
pub mod simulated;
pub mod sink;
pub mod trading;

pub use ferrofeed_book as book;
pub use ferrofeed_engine as engine;
pub use ferrofeed_model as model;
#[cfg(feature = "sim")]
pub use ferrofeed_sim as sim;
pub use ferrofeed_venues as venues;

/// The one error of the top-level API ([`feed::Feed`], [`session::PrivateClient`]):
/// opaque, with the layer's own `thiserror` error as its source and
/// accessors for callers that need to tell them apart.
#[derive(Debug)]
pub struct Error(ErrorInner);

#[derive(Debug, thiserror::Error)]
enum ErrorInner {
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error(transparent)]
    Private(#[from] session::PrivateError),
    #[cfg(feature = "sim")]
    #[error(transparent)]
    Simulator(#[from] simulated::SimulatorError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            ErrorInner::Client(e) => Some(e),
            ErrorInner::Private(e) => Some(e),
            #[cfg(feature = "sim")]
            ErrorInner::Simulator(e) => Some(e),
        }
    }
}

impl Error {
    /// The connection manager's error (unknown venue or market, a refused
    /// subscription, a REST failure), if that is what this is.
    pub fn client(&self) -> Option<&client::ClientError> {
        match &self.0 {
            ErrorInner::Client(e) => Some(e),
            _ => None,
        }
    }

    /// A private session's error, if that is what this is.
    pub fn private(&self) -> Option<&session::PrivateError> {
        match &self.0 {
            ErrorInner::Private(e) => Some(e),
            _ => None,
        }
    }
}

impl From<client::ClientError> for Error {
    fn from(e: client::ClientError) -> Error {
        Error(ErrorInner::Client(e))
    }
}

impl From<session::PrivateError> for Error {
    fn from(e: session::PrivateError) -> Error {
        Error(ErrorInner::Private(e))
    }
}

#[cfg(feature = "sim")]
impl From<simulated::SimulatorError> for Error {
    fn from(e: simulated::SimulatorError) -> Error {
        Error(ErrorInner::Simulator(e))
    }
}

impl From<ferrofeed_venues::seam::SeamError> for Error {
    fn from(e: ferrofeed_venues::seam::SeamError) -> Error {
        Error(ErrorInner::Client(client::ClientError::Seam(e)))
    }
}
