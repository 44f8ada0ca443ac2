//! Every integration test of this crate in one binary (one link instead of
//! one per file; issue 19). Each module is one former test file.

mod binance_decode;
mod binance_trade;
mod binance_user_data;
mod bybit_decode;
mod bybit_trade;
mod deribit_decode;
mod fuzz_corpus;
