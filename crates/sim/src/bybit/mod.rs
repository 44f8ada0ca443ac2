//! Bybit v5 (PROTOCOLS.md §5) for the spot, linear, inverse and option
//! categories: the public WebSocket (`public`: ops, replies, topic limits),
//! the `publicTrade`, `orderbook`, `tickers`, `kline` and `allLiquidation`
//! payloads derived from the true books and the generator's trades
//! (`encode`, `book`, `ticker`, `kline`, `option`), and the private side on
//! the linear port (`private`: `/v5/private`; `order`: `POST /v5/order/create`).
//!
//! Written from the venue's documentation and captures only; it shares nothing
//! with the client's wire code.

pub(crate) mod book;
pub(crate) mod encode;
pub(crate) mod kline;
pub(crate) mod option;
pub(crate) mod order;
pub(crate) mod private;
pub(crate) mod public;
pub(crate) mod ticker;
