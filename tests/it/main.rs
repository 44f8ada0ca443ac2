//! Every integration test of this crate in one binary (one link instead of
//! one per file; issue 19). Each module is one former test file.

mod bench_cli;
mod binance_orders;
mod book_replay;
mod books;
mod bybit;
mod bybit_feed;
mod bybit_orders;
mod bybit_private;
mod chaos;
mod cli;
mod decode_cli;
mod demo_tui;
mod deribit;
mod deribit_cli;
mod examples;
mod feed;
mod grafana;
mod hardening;
mod margin;
mod nats;
mod one_feed;
mod order_cli;
mod parquet;
mod pools;
mod private;
mod private_secrets;
mod record;
mod secrets;
mod stream_cli;
mod user_cli;
