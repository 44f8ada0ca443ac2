//! # ferrofeed-venues
//!
//! One module per venue. Each holds the venue's rules as data: endpoints per
//! environment, limits, subscribe encoding, acknowledgement and error matching,
//! the heartbeat policy, and frame classification with sequence numbers.
//!
//! # Layout
//!
//! - `auth`: credentials (secrecy types, redacted `Debug`), HMAC-SHA256 and
//!   Ed25519 signing, the venue clock; shared by the venue modules.
//! - `binance`: spot, USDⓈ-M, COIN-M and options.
//! - `bybit`: Bybit v5 spot, linear, inverse and option public streams and
//!   the private stream.
//! - `deribit`: Deribit (JSON-RPC over one WebSocket) inverse, linear and
//!   option markets, private sessions and the order API.
//! - `seam`: [`VenueSpec`], everything a venue is above the socket (markets,
//!   endpoints, pools, typed channels, decoder, book and private-session
//!   plans); `registry` lists the venues, one line each. `env`, `error` and
//!   `instruments` are the types every venue shares; `dec` (exact decimals
//!   for serde) and `scan` (the validating scanner of the one-pass readers)
//!   the helpers.
//! - `trading`: the venue-neutral order API (typed requests, answers and
//!   refusals) and [`trading::TradingSpec`], which a venue that trades over
//!   its WebSocket implements ([`VenueSpec::trading`]).
//!
//! # Quick start
//!
//! A venue's decoder turns a frame, exactly as received, into normalized
//! events; the registry finds venues and markets by name:
//!
//! ```
//! use ferrofeed_model::event::EventKind;
//! use ferrofeed_venues::registry;
//!
//! let market = registry::parse_market("binance:spot")?;
//! let mut decoder = registry::by_name("binance")?.decoder(market.market);
//! let frame = r#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.00100000","q":"100.00000000","T":1672515782136,"m":true,"M":true}}"#;
//! let mut events = Vec::new();
//! decoder.decode(frame, 1_672_515_782_137_000_000, &mut events)?;
//! let EventKind::Trade(trade) = &events[0].kind else { panic!("a trade") };
//! assert_eq!((trade.trade_id.as_str(), trade.price.to_string().as_str()), ("12345", "0.00100000"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Invariant:** venue modules never touch sockets or spawn tasks; this crate
//! depends on no async runtime.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod auth;
pub mod binance;
pub mod bybit;
mod dec;
pub mod deribit;
pub mod env;
mod error;
pub mod instruments;
pub mod registry;
mod scan;
pub mod seam;
pub mod trading;

pub use env::{Endpoints, Environment};
pub use error::DecodeError;
pub use seam::{Channel, MarketId, VenueSpec};
