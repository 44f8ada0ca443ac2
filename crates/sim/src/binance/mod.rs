//! Binance's wire protocols for spot, USDⓈ-M, COIN-M and options: stream
//! names, REST endpoints, the private REST endpoints and the spot WebSocket API.

pub(crate) mod private;
pub(crate) mod rest;
pub(crate) mod topic;
pub(crate) mod wsapi;
