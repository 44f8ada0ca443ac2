//! Binance's wire protocols for spot, USDⓈ-M, COIN-M and options: stream
//! names, REST endpoints, the private REST endpoints and the spot WebSocket API.

pub(crate) mod auth;
pub(crate) mod control;
pub(crate) mod encode;
pub(crate) mod orders;
pub(crate) mod private;
pub(crate) mod rest;
pub(crate) mod topic;
pub(crate) mod user;
pub(crate) mod wsapi;

use crate::config::{MarketKind, SymbolSpec, Timing};
use crate::market::{Market, Streams};

/// A Binance market's generator: the venue's depth cadences and stream
/// names; `forceOrder` flushed every second, also to `!forceOrder@arr`.
pub(crate) fn new_market(kind: MarketKind, symbols: &[SymbolSpec], seed: u64, timing: &Timing, now_ms: u64) -> Market {
    let depth_ms: Vec<u64> = topic::depth_speeds(kind).iter().map(|(_, ms)| *ms).collect();
    let names = |spec: &SymbolSpec| topic::names(kind, spec);
    let streams =
        Streams { depth_ms: &depth_ms, liquidation_ms: 1000, all_liquidations: Some("!forceOrder@arr"), names: &names };
    Market::new(kind, symbols, seed, timing, now_ms, &streams)
}
