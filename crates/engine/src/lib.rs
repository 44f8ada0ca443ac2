//! # ferrofeed-engine
//!
//! The venue-agnostic connection engine: one task owns one socket and keeps it
//! alive (heartbeats, reconnects with backoff and jitter, resubscription,
//! rotation), tracks sequence numbers and reports every gap. Venue rules arrive
//! as data through a trait; the engine never parses venue JSON itself.
//!
//! # Layout
//!
//! - `backoff`: the reconnect schedule (exponential, capped, jittered).
//! - `entropy`: the one seam for randomness.
//!
//! Time goes through `tokio::time` only, so tests run under tokio's paused clock.
//!
//! Work in progress: the connection actor, transport and venue trait land with
//! the rest of the engine issue.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod backoff;
pub mod entropy;

pub use backoff::{Backoff, BackoffConfig, BackoffConfigError};
pub use entropy::{Entropy, Seeded};
