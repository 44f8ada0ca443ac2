//! # ferrofeed-model
//!
//! I/O-free types shared by the engine and the venue modules.
//!
//! # Layout
//!
//! - `rules`: [`rules::VenueRules`], what the engine needs to know about a venue
//!   (heartbeat policy, limits, request encoding, frame classification with
//!   sequence numbers), as data and pure functions.
//!
//! **Invariant:** this crate has no async runtime and no I/O dependency.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod rules;
