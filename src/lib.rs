//! # ferrofeed
//!
//! Keeps a trading system connected to crypto exchanges' WebSocket APIs and
//! turns what arrives into one ordered, typed stream of events with no silent
//! loss.
//!
//! # Layout
//!
//! - [`binance`]: the Binance connection manager (pools per market and route,
//!   sharding under the per-connection caps, shared attempt budgets, one merged
//!   event stream, introspection and rate-limit statistics).
//! - [`books`]: local order books kept in sync from diff streams and REST
//!   snapshots (`BookManager`), and the offline `replay`.
//! - [`bybit`]: the Bybit v5 connection manager (a pool per category and one
//!   for the private stream, a connection-attempt budget per host).
//! - [`bybit_books`]: Bybit local order books, recovered by resubscribing (the
//!   venue then sends a snapshot).
//! - [`bybit_feed`]: `BybitFeed`, Bybit's public and private topics as one
//!   stream of normalized events, with local books.
//! - [`feed`]: `Feed`, one stream of normalized events (market data decoded on
//!   the live path, status events, local books) with the statistics behind the
//!   metrics endpoint and the live view.
//! - [`metrics`]: the Prometheus text endpoint over a feed's statistics.
//! - [`private`]: `BinancePrivateClient`, user-data streams (spot WebSocket API
//!   logon, listenKeys for margin and futures) with credentials kept secret.
//! - [`sink`]: the NATS JetStream sink and reader (`Nats-Msg-Id` from the
//!   venue's identity of each event, bounded in-flight and buffer, losses
//!   counted and reported) and `Shard`, the `--shard K/N` partition.
//! - The engine (`ferrofeed-engine`), the venue rules (`ferrofeed-venues`) and
//!   the simulator (`ferrofeed-sim`) are separate crates re-exported here.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::binance::{BinanceClient, BinanceConfig, Market};
//! use futures_util::StreamExt;
//! let (mut client, mut events) = BinanceClient::new(BinanceConfig::default());
//! client.subscribe(Market::Spot, &["btcusdt@trade".into()]).await?;
//! while let Some(event) = events.next().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod binance;
pub mod books;
pub mod bybit;
pub mod bybit_books;
pub mod bybit_feed;
pub mod feed;
pub mod metrics;
pub mod private;
pub mod record;
pub mod sink;

pub use ferrofeed_book as book;
pub use ferrofeed_engine as engine;
pub use ferrofeed_model as model;
pub use ferrofeed_sim as sim;
pub use ferrofeed_venues as venues;
