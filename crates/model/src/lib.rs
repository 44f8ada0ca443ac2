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
//! **Invariant:** this crate has no async runtime and no I/O dependency.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod event;
pub mod rules;
pub mod sequencing;

pub use rust_decimal::Decimal;
