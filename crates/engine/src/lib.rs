//! # ferrofeed-engine
//!
//! The venue-agnostic connection engine: one task owns one socket and keeps it
//! alive (heartbeats, reconnects with backoff and jitter, resubscription,
//! rotation), tracks sequence numbers and reports every gap. Venue rules arrive
//! as data through a trait; the engine never parses venue JSON itself.
//!
//! # Layout
//!
//! - `actor`: the connection actor and its [`Connection`] handle.
//! - `pool`: [`Pool`], connections sharded under the venue's per-connection cap.
//! - `venue`: [`VenueRules`], the venue's rules as data and pure functions.
//! - `transport`: the [`Transport`] seam and the [`Native`] tokio implementation.
//! - `event`: what a connection reports; `queue`: the bounded event queue and its overflow policy.
//! - `seq`: per-stream sequence tracking (gaps and duplicates).
//! - `pacer`: outgoing message pacing within a venue's sliding window; REST weight budgets.
//! - `rest`: [`RestClient`], GETs charged against a weight budget before they are sent.
//! - `backoff`: the reconnect schedule (exponential, capped, jittered).
//! - `entropy`: the one seam for randomness.
//! - `redact`: URLs and messages for display, with every credential masked.
//!
//! # Quick start
//!
//! One connection with a venue's shipped rules (here Binance spot, against
//! the bundled simulator; in production the URL is the venue's):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ferrofeed_engine::{ConnectSpec, Connection, ConnectionConfig, EventKind, Native};
//! use ferrofeed_venues::binance::{BinanceRules, Market};
//! # use ferrofeed_sim::{MarketConfig, MarketKind, Sim, SimConfig};
//! # let sim = Sim::start(SimConfig::single(MarketConfig::new(MarketKind::Spot))).await?;
//! # let url = sim.markets()[0].ws_url();
//!
//! let cfg = ConnectionConfig::new(ConnectSpec::new(url)); // wss://stream.binance.com:9443 live
//! let rules = Arc::new(BinanceRules::new(Market::Spot));
//! let (conn, mut events) = Connection::spawn(Native::new(), rules, cfg, vec!["btcusdt@trade".into()])?;
//! while let Some(event) = events.recv().await {
//!     match event.kind {
//!         // The frame, its stream and the sequence numbers the rules read from it.
//!         EventKind::Data { stream, .. } => {
//!             assert_eq!(&*stream, "btcusdt@trade");
//!             break;
//!         }
//!         _ => {} // state changes, connected, gaps with their extent, ...
//!     }
//! }
//! conn.close().await;
//! # sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Time goes through `tokio::time` only, so tests run under tokio's paused clock.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod actor;
pub mod backoff;
pub mod entropy;
pub mod event;
pub mod pacer;
pub mod pool;
pub mod queue;
pub mod recovery;
pub mod redact;
pub mod rest;
pub mod seq;
pub mod transport;
pub mod venue;

pub use actor::{
    AttemptBudget, CallError, ConnSnapshot, Connection, ConnectionClosed, ConnectionConfig, MAX_CALLS_IN_FLIGHT,
    SubState, TryCommandError,
};
pub use backoff::{Backoff, BackoffConfig, BackoffConfigError};
pub use entropy::{Entropy, Seeded};
pub use event::{Event, EventKind, Missing, State};
pub use pacer::WeightBudget;
pub use pool::{Pool, PoolConfig, PoolError};
pub use queue::{DEFAULT_QUEUE_BYTES, EventReceiver, EventSender, Overflow, ReceiverGone, queue, queue_bounded};
pub use recovery::RecoveryStats;
pub use rest::{MAX_BODY, RestClient, RestError, retry_after_secs};
pub use seq::{NameHasher, NameMap};
pub use transport::{ConnectSpec, Native, Transport, TransportError, WsMsg, WsStream};
pub use venue::{ClientPing, ConnLimits, Heartbeat, Inbound, RequestOp, Seq, SeqKind, VenueRules};
