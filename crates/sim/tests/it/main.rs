//! Every integration test of this crate in one binary (one link instead of
//! one per file; issue 19). Each module is one former test file.

mod binance_common;
mod binance_margin;
mod binance_paths;
mod binance_trade;
mod bybit;
mod bybit_categories;
mod bybit_private;
mod bybit_trade;
mod common;
mod conformance;
mod deribit;
mod load;
mod private;
mod sim;
