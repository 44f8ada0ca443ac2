//! Bybit v5 (PROTOCOLS.md §5) for the spot, linear, inverse and option
//! categories: the public WebSocket (`public`: ops, replies, topic limits),
//! the `publicTrade`, `orderbook`, `tickers`, `kline` and `allLiquidation`
//! payloads derived from the true books and the generator's trades
//! (`encode`, `book`, `ticker`, `kline`, `option`), and the private side on
//! the linear port (`private`: `/v5/private`; `trade`: the `/v5/trade` order
//! socket; `order`: the order engine both it and `POST /v5/order/create` use,
//! with the per-account rate limits of `ratelimit` and the push items of
//! `items`).
//!
//! Written from the venue's documentation and captures only; it shares nothing
//! with the client's wire code.

pub(crate) mod book;
pub(crate) mod encode;
pub(crate) mod items;
pub(crate) mod kline;
pub(crate) mod load;
pub(crate) mod option;
pub(crate) mod order;
pub(crate) mod private;
pub(crate) mod public;
pub(crate) mod ratelimit;
pub(crate) mod ticker;
pub(crate) mod time;
pub(crate) mod trade;

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

use crate::config::{BybitCategory, LoadConfig, MarketConfig, MarketKind, SymbolSpec, Timing};
use crate::dialect::{Dialect, Refusal, WsTarget};
use crate::hub::{ConnEntry, ConnKind, Hub, HubState, Render};
use crate::load::LoadForm;
use crate::market::{BookCopy, Emit, Market, Names, Streams};
use crate::server::{Resp, json};

/// The tag (`ConnKind::tag`) of a public connection (`/v5/public/<category>`).
pub(crate) const PUBLIC: u8 = 0;
/// The tag of a private connection (`/v5/private`).
pub(crate) const PRIVATE: u8 = 1;
/// The tag of an order-entry connection (`/v5/trade`).
pub(crate) const TRADE: u8 = 2;

/// What a Bybit market keeps besides the generator (the hub's venue state).
#[derive(Debug, Default)]
pub(crate) struct BybitState {
    /// Order-book topics (`orderbook.N.SYMBOL`): what each last sent.
    pub books: HashMap<String, book::BookTopic>,
    /// Ticker topics: the fields each last sent.
    pub tickers: HashMap<String, BTreeMap<&'static str, String>>,
    /// The private side's op log and id counters.
    pub private: private::PrivState,
    /// What the venue reports about each open order besides the shared
    /// `Order` (at most `Limits::max_open_orders` per account).
    pub orders: BTreeMap<u64, items::Flags>,
    /// The per-account order rate limits.
    pub limits: ratelimit::OrderLimits,
    /// The `/v5/trade` sockets' recent `reqId`s and trace ids.
    pub trade: trade::TradeState,
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

/// Bybit v5, one dialect per category.
#[derive(Debug)]
pub(crate) struct Bybit {
    /// The category its markets serve.
    pub cat: BybitCategory,
}

static DIALECTS: [Bybit; 4] = [
    Bybit { cat: BybitCategory::Spot },
    Bybit { cat: BybitCategory::Linear },
    Bybit { cat: BybitCategory::Inverse },
    Bybit { cat: BybitCategory::Option },
];

/// The dialect of a category.
pub(crate) fn dialect(cat: BybitCategory) -> &'static Bybit {
    &DIALECTS[BybitCategory::ALL.iter().position(|c| *c == cat).unwrap_or(1)]
}

impl Dialect for Bybit {
    fn market(&self, cfg: &MarketConfig, seed: u64, now_ms: u64) -> Market {
        new_market(self.cat, cfg.kind, &cfg.symbols, seed, &cfg.timing, now_ms)
    }

    fn venue_state(&self) -> Box<dyn Any + Send> {
        Box::new(BybitState::default())
    }

    fn load(&self, _market: &MarketConfig, cfg: &LoadConfig) -> Vec<LoadForm> {
        load::forms(self.cat, cfg)
    }

    fn tick(&self, market: &mut Market, now_ms: u64, elapsed_ms: u64, tracked: &HashSet<String>, out: &mut Vec<Emit>) {
        market.tick(&encode::Encoder { cat: self.cat }, now_ms, elapsed_ms, tracked, out);
    }

    fn route(&self, _hub: &Hub, path: &str, _query: Option<&str>) -> Option<WsTarget> {
        let p = path.trim_end_matches('/');
        let (tag, private) = if p == self.cat.path() {
            (PUBLIC, false)
        } else if p == private::PATH && self.cat == BybitCategory::Linear {
            (PRIVATE, true)
        } else if p == trade::PATH && self.cat == BybitCategory::Linear {
            (TRADE, true)
        } else {
            return None;
        };
        let kind = ConnKind { tag, private, server_pings: false };
        Some(WsTarget { kind, combined: false, streams: Vec::new(), listen: Vec::new() })
    }

    /// The venue documents no bodies for refused upgrades; the simulator
    /// answers them as it does on every market: `{"code","msg"}`.
    fn refuse(&self, hub: &Hub, why: Refusal) -> Resp {
        let body =
            |status, code: i64, msg: &str| json(status, serde_json::json!({ "code": code, "msg": msg }).to_string());
        match why {
            Refusal::NotFound => body(StatusCode::NOT_FOUND, -1000, "Not found."),
            Refusal::BadHandshake => body(StatusCode::BAD_REQUEST, -1000, "Bad WebSocket handshake."),
            Refusal::TooManyAttempts => {
                let mut r = body(
                    StatusCode::TOO_MANY_REQUESTS,
                    -1003,
                    &format!(
                        "Too many connection attempts; current limit is {} per {} seconds.",
                        hub.cfg.limits.max_conn_attempts,
                        hub.cfg.limits.conn_attempt_window.as_secs()
                    ),
                );
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
        }
    }

    fn answer(&self, hub: &Hub, conn: u64, kind: ConnKind, text: &str) -> (Option<Bytes>, bool) {
        if (kind.tag == PRIVATE || kind.tag == TRADE) && text.contains("\"auth\"") && hub.swallow_auth() {
            return (None, true);
        }
        match kind.tag {
            PRIVATE => private::answer(hub, conn, text),
            TRADE => trade::answer(hub, conn, text),
            _ => public::answer(hub, conn, text),
        }
    }

    /// Bybit has no shutdown notice; the simulator's fault sends the same
    /// `serverShutdown` event on every market.
    fn shutdown_notice(&self, _conn: &ConnEntry, now_ms: u64) -> String {
        format!("{{\"e\":\"serverShutdown\",\"E\":{now_ms}}}")
    }

    fn rest_precheck(&self, hub: &Hub, _method: &Method, path: &str) -> Option<Resp> {
        // Only the order endpoint (`order`) and the server time (`time`) are served.
        (!order::is_rest_path(hub, path) && path != time::PATH)
            .then(|| json(StatusCode::NOT_FOUND, r#"{"retCode":10001,"retMsg":"Not found","result":{}}"#))
    }

    fn body_too_large(&self) -> Resp {
        json(StatusCode::PAYLOAD_TOO_LARGE, r#"{"retCode":10001,"retMsg":"body too large"}"#)
    }

    fn rest(&self, hub: &Hub, req: &Request<Bytes>) -> Resp {
        if req.uri().path() == time::PATH {
            return time::answer(hub, req.method());
        }
        order::rest(req, hub)
    }

    fn book_levels(&self, _cfg: &MarketConfig, spec: &SymbolSpec, levels: &[(i64, i64)]) -> Vec<[String; 2]> {
        encode::level_strings(self.cat, spec, levels)
    }

    /// Keyed by an order-book topic's `u` (`book::book_at`).
    fn book_at(&self, _hub: &Hub, st: &HubState, symbol: &str, update_id: u64, depth: usize) -> Option<BookCopy> {
        book::book_at(&state(st.venue.as_ref())?.books, self.cat, symbol, update_id, depth)
    }

    /// Credits the balance. Bybit pushes nothing for it (a `wallet` message
    /// on deposits is not emulated); the account's event counts grow by the
    /// names the simulator has always counted a deposit under.
    fn deposit(&self, hub: &Hub, st: &mut HubState, account: usize, asset: &str, amount: i128) {
        let now = hub.venue_ms(st);
        let Some(a) = st.accounts.list.get_mut(account) else { return };
        a.balance(asset).free += amount;
        a.update_ms = now;
        let counted: &[&str] = if hub.kind() == MarketKind::Spot {
            &["balanceUpdate", "outboundAccountPosition"]
        } else {
            &["ACCOUNT_UPDATE"]
        };
        for e in counted {
            *a.events.entry((*e).to_string()).or_default() += 1;
        }
    }

    /// `publicTrade.FLOOD<k>USDT`: a well-formed topic of a symbol no
    /// category lists.
    fn unsubscribed_frame(&self, _combined: bool, k: u64, id: u64, now_ms: u64) -> String {
        format!(
            "{{\"topic\":\"publicTrade.FLOOD{k}USDT\",\"type\":\"snapshot\",\"ts\":{now_ms},\"data\":[{{\"T\":{now_ms},\"s\":\"FLOOD{k}USDT\",\"S\":\"Buy\",\"v\":\"1\",\"p\":\"1\",\"L\":\"PlusTick\",\"i\":\"{id}\",\"BT\":false,\"seq\":{id}}}]}}"
        )
    }

    /// A snapshot on the topic `oversized.PAD`, padded.
    fn oversized_frame(&self, _combined: bool, bytes: usize, now_ms: u64) -> Option<String> {
        let head = format!("{{\"topic\":\"oversized.PAD\",\"type\":\"snapshot\",\"ts\":{now_ms},\"data\":{{\"p\":\"");
        let tail = "\"}}";
        let pad = bytes.checked_sub(head.len() + tail.len())?;
        let mut out = String::with_capacity(bytes);
        out.push_str(&head);
        out.extend(std::iter::repeat_n('x', pad));
        out.push_str(tail);
        Some(out)
    }

    /// Every order-book topic of the symbols restarts with a `u = 1`
    /// snapshot (as `bybit_restart`).
    fn reset_ids(&self, st: &mut HubState, symbols: &[String]) -> Vec<String> {
        let Some(state) = state_mut(st.venue.as_mut()) else { return Vec::new() };
        let mut names = Vec::new();
        for (name, t) in state.books.iter_mut() {
            if symbols.iter().any(|s| name.rsplit('.').next() == Some(s.as_str())) {
                t.restart = true;
                names.push(name.clone());
            }
        }
        names
    }
}
