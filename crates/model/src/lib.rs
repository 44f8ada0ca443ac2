//! # ferrofeed-model
//!
//! I/O-free types shared by the engine and the venue modules.
//!
//! # Layout
//!
//! - `rules`: [`rules::VenueRules`], what the engine needs to know about a venue
//!   (heartbeat policy, limits, request encoding, frame classification with
//!   sequence numbers), as data and pure functions.
//! - `event`: [`event::Event`], the normalized event model (market data and
//!   status events, exact decimals, ns timestamps) and its JSON line contract
//!   (`docs/events.md`).
//! - `sequencing`: [`sequencing::BookSequencing`], a venue's pure rule for
//!   continuing a local order book (`Accept | Suppress | Recover`).
//!
//! # Quick start
//!
//! An event is one JSON line (`docs/events.md`); prices and quantities are
//! exact decimals, never floats, and the line round-trips:
//!
//! ```
//! use ferrofeed_model::Decimal;
//! use ferrofeed_model::event::{Event, EventKind, Venue};
//!
//! let line = r#"{"type":"trade","trade_id":"12345","price":"0.001","qty":"100","side":"sell","venue":"binance","market":"spot","symbol":"BNBBTC","exchange_ts":1672515782136000000,"receive_ts":1672515782136512000}"#;
//! let event: Event = serde_json::from_str(line)?;
//! assert_eq!(event.venue, Venue::Binance);
//! let EventKind::Trade(trade) = &event.kind else { panic!("a trade") };
//! assert_eq!(trade.price, "0.001".parse::<Decimal>()?);
//! assert_eq!(serde_json::to_string(&event)?, line);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Invariant:** this crate has no async runtime and no I/O dependency.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod event;
pub mod rules;
pub mod sequencing;

pub use rust_decimal::Decimal;
