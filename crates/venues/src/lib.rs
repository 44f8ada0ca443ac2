//! # ferrofeed-venues
//!
//! One module per venue. Each holds the venue's rules as data: endpoints per
//! environment, limits, subscribe encoding, acknowledgement and error matching,
//! the heartbeat policy, and frame classification with sequence numbers.
//!
//! # Layout
//!
//! - `binance`: spot, USDⓈ-M, COIN-M and options.
//!
//! **Invariant:** venue modules never touch sockets or spawn tasks; this crate
//! depends on no async runtime.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod binance;
