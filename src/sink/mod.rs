//! Sinks: where a collector sends its events besides the capture files
//! ([`crate::record`]).
//!
//! - [`nats`]: NATS JetStream. Subjects `ferrofeed.<venue>.<market>.<type>.<symbol>`,
//!   the normalized JSON as payload, a `Nats-Msg-Id` from the venue's own
//!   identity of the event, so that two collectors carrying the same streams
//!   store each event once (hot standby); acknowledgements tracked with bounded
//!   in-flight, a bounded local buffer for outages, and every event it could
//!   not store counted and reported (`docs/nats.md`).
//! - [`Shard`]: a deterministic partition of a subscription universe across
//!   `N` collectors (`ferrofeed record --shard K/N`).

pub mod nats;
mod shard;

pub use shard::{Shard, fnv1a64};
