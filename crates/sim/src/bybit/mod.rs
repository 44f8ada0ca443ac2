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

use std::any::Any;
use std::collections::{BTreeMap, HashMap};

use crate::config::{BybitCategory, MarketKind, SymbolSpec, Timing};
use crate::hub::Render;
use crate::market::{Market, Names, Streams};

/// What a Bybit market keeps besides the generator (the hub's venue state).
#[derive(Debug, Default)]
pub(crate) struct BybitState {
    /// Order-book topics (`orderbook.N.SYMBOL`): what each last sent.
    pub books: HashMap<String, book::BookTopic>,
    /// Ticker topics: the fields each last sent.
    pub tickers: HashMap<String, BTreeMap<&'static str, String>>,
    /// The private side's op log and id counters.
    pub private: private::PrivState,
}

/// The Bybit state in a hub's venue slot.
pub(crate) fn state(venue: &(dyn Any + Send)) -> Option<&BybitState> {
    venue.downcast_ref()
}

/// The Bybit state in a hub's venue slot, to change.
pub(crate) fn state_mut(venue: &mut (dyn Any + Send)) -> Option<&mut BybitState> {
    venue.downcast_mut()
}

/// A Bybit market's generator: trades on `publicTrade.<SYMBOL>` (options:
/// `publicTrade.<baseCoin>`, shared by every option of that coin),
/// liquidations on `allLiquidation.<SYMBOL>` every 500 ms; no diff-depth
/// windows (the order-book topics diff the true book themselves).
pub(crate) fn new_market(
    cat: BybitCategory,
    kind: MarketKind,
    symbols: &[SymbolSpec],
    seed: u64,
    timing: &Timing,
    now_ms: u64,
) -> Market {
    let names = move |spec: &SymbolSpec| {
        let trade = if cat == BybitCategory::Option {
            format!("publicTrade.{}", spec.base)
        } else {
            format!("publicTrade.{}", spec.name)
        };
        Names {
            trade: trade.clone(),
            trade_watch: vec![trade.clone()],
            user_trade: trade,
            agg: None,
            book_ticker: None,
            depth: Vec::new(),
            force: format!("allLiquidation.{}", spec.name),
        }
    };
    let streams = Streams { depth_ms: &[], liquidation_ms: 500, all_liquidations: None, names: &names };
    Market::new(kind, symbols, seed, timing, now_ms, &streams)
}

/// A public topic pushed on a timer: order books, tickers, klines.
#[derive(Debug)]
pub(crate) struct Push {
    /// The market's category.
    pub cat: BybitCategory,
    /// What it pushes.
    pub topic: public::Topic,
}

impl Render for Push {
    fn render(&mut self, m: &mut Market, venue: &mut (dyn Any + Send), now_ms: u64) -> Vec<(String, Option<u64>)> {
        let Some(state) = state_mut(venue) else { return vec![] };
        match &self.topic {
            public::Topic::Book(sym, depth) => book::render_book(m, &mut state.books, self.cat, sym, *depth, now_ms),
            public::Topic::Ticker(sym) => ticker::render_ticker(m, &mut state.tickers, self.cat, sym, now_ms),
            public::Topic::Kline(sym, iv) => kline::render_kline(m, self.cat, sym, iv, now_ms),
            public::Topic::Trade(_) | public::Topic::Liquidation(_) => vec![],
        }
    }
}
