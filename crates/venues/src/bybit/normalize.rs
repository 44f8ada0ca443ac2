//! Bybit v5 frames → normalized [`Event`]s.
//!
//! [`decode`] takes one text frame exactly as received and returns its
//! events: a `publicTrade`, `kline`, `allLiquidation` or private frame holds
//! an array and gives one event per item. Decimals are exact, parsed from the
//! venue's strings; times become integer nanoseconds.
//!
//! | topic | event(s) | `exchange_ts` from |
//! |---|---|---|
//! | `orderbook.{depth}.{symbol}` | `book_snapshot` (`type: snapshot`, or `u == 1`: a restart), else `book_delta` with `first_update_id == last_update_id == u` | `cts`, else `ts` |
//! | `publicTrade.{symbol}` | `trade` per item | `T` |
//! | `tickers.{symbol}` | `ticker` (`window: 24h`), `mark_price` and/or `open_interest`, from the merged state; none for a delta that changes nothing they carry | `ts` |
//! | `kline.{interval}.{symbol}` | `kline` per item | `ts` |
//! | `allLiquidation.{symbol}` | `liquidation` per item | `T` |
//! | `order`, `order.{category}` | `order_update` per item | `updatedTime` |
//! | `execution`, `execution.{category}` | `user_trade` per item | `execTime` |
//! | `position`, `position.{category}` | `position_update` per item | `updatedTime` |
//! | `wallet` | `balance_update` per account | `creationTime` |
//!
//! **Tickers are stateful.** Linear and inverse tickers send a `snapshot` and
//! then `delta`s that carry only the fields that changed. Every other topic
//! decodes statelessly; for tickers the caller owns a [`Tickers`] (one per
//! feed, or per connection) holding the last full state per (category,
//! symbol), and every call merges into it. A ticker delta for a symbol the
//! cache holds no snapshot of (the decoder started mid-stream) decodes as
//! `unknown`, keeping the frame. `ticker` is emitted when the message
//! (snapshot or delta) sets a 24-hour statistic, the last price or the best
//! bid/ask and the merged state has all of open (`prevPrice24h`), high, low,
//! last, volume and turnover; `mark_price` when it sets the mark or index
//! price, the funding rate or the next funding time and the state has mark
//! and index prices; `open_interest` when it changes `openInterest` or
//! `openInterestValue` (a snapshot: when it carries them) and the state has
//! an open interest. Option tickers have no 24-hour open, so they give
//! `mark_price` and `open_interest` only.
//!
//! Bybit sends in a delta only what changed ("If a response param is not
//! found in the message, then its value has not changed", bybit-exchange/docs
//! `docs/v5/websocket/public/ticker.mdx`). A delta that changes nothing the
//! events carry (`tickDirection`, `price24hPcnt`, `prevPrice1h`, sizes, ...)
//! is merged and gives no event; a message that sets fields the events
//! carry but completes none of them is `unknown`, keeping the frame.
//!
//! **One pass (issue 22).** `read_fast`, behind the decoder's
//! `Decoder::read`, reads `publicTrade`, `orderbook` and `tickers` frames
//! once with the validating scanner (`crate::scan`): the topic, the book
//! sequence the rules' `classify` gives, and the events `decode` gives,
//! through the same event code. Anything it does not read exactly as serde
//! would goes to `classify` and `decode`; tests compare both on every
//! fixture and on mutations of them.
//!
//! Frames without a topic (acks, pongs, auth answers), topics this module
//! does not model (`execution.fast`, `greeks`, `dcp`, the legacy
//! `liquidation`, ...) and executions that are not trades (`execType`
//! `Funding`, `Settle`, ...) are `unknown` events carrying the frame text
//! (for a private item: the item). Malformed JSON, missing required fields
//! and bad decimals are a [`DecodeError`] that keeps the frame; nothing here
//! panics on external input.

use std::collections::HashMap;

use ferrofeed_model::event::{
    Balance, BalanceUpdate, BookDelta, BookSnapshot, Event, EventKind, Kline, Level, Liquidation, MarkPrice,
    OpenInterest, OrderUpdate, PositionSide, PositionUpdate, Side, Ticker, Trade, UserTrade, Venue,
};
use ferrofeed_model::rules::Seq;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::Category;
use super::wire::{
    BookW, Envelope, ExecutionW, KlineW, LiquidationW, OrderW, PositionW, TickerW, TradeW, WalletW, WireLevel,
};

pub use crate::error::DecodeError;
use crate::scan::Scan;

/// The one place the JSON parser is called.
fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// The merged ticker state per (category, symbol), owned by the caller of
/// [`decode`]: Bybit ticker deltas carry only what changed.
#[derive(Debug, Default, Clone)]
pub struct Tickers {
    state: HashMap<(Category, String), TickerState>,
}

impl Tickers {
    /// An empty cache.
    pub fn new() -> Tickers {
        Tickers::default()
    }

    /// Symbols held.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Forgets a symbol (after unsubscribing its ticker).
    pub fn forget(&mut self, category: Category, symbol: &str) {
        self.state.remove(&(category, symbol.to_string()));
    }

    /// Forgets everything (e.g. when the connection is lost: the venue sends
    /// a new snapshot after resubscribing).
    pub fn clear(&mut self) {
        self.state.clear();
    }
}

/// The full ticker of one symbol, as far as the venue has sent it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct TickerState {
    last: Option<Decimal>,
    open: Option<Decimal>,
    high: Option<Decimal>,
    low: Option<Decimal>,
    volume: Option<Decimal>,
    turnover: Option<Decimal>,
    bid: Option<Decimal>,
    ask: Option<Decimal>,
    mark: Option<Decimal>,
    index: Option<Decimal>,
    funding_rate: Option<Decimal>,
    next_funding_ms: Option<i64>,
    open_interest: Option<Decimal>,
    open_interest_value: Option<Decimal>,
}

/// Which events a merged message concerns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Touched {
    /// A 24-hour statistic, the last price or the best bid/ask was set.
    ticker: bool,
    /// The mark or index price, the funding rate or time was set.
    mark: bool,
    /// The open interest or its value changed.
    open_interest: bool,
}

impl Touched {
    fn any(self) -> bool {
        self.ticker || self.mark || self.open_interest
    }
}

impl TickerState {
    /// Sets what `w` carries; says which events it concerns.
    fn merge(&mut self, w: &TickerW<'_>) -> Touched {
        fn set(slot: &mut Option<Decimal>, v: Option<super::wire::DecOrEmpty>, touched: &mut bool) {
            if let Some(v) = v {
                *slot = v.0;
                *touched = true;
            }
        }
        /// As `set`, but touched only by a new value (`1.0` and `1.00` are
        /// the same value; the new scale is kept).
        fn change(slot: &mut Option<Decimal>, v: Option<super::wire::DecOrEmpty>, touched: &mut bool) {
            if let Some(v) = v {
                *touched |= *slot != v.0;
                *slot = v.0;
            }
        }
        let (mut t, mut m, mut oi) = (false, false, false);
        set(&mut self.last, w.last_price, &mut t);
        set(&mut self.open, w.prev_price24h, &mut t);
        set(&mut self.high, w.high_price24h, &mut t);
        set(&mut self.low, w.low_price24h, &mut t);
        set(&mut self.volume, w.volume24h, &mut t);
        set(&mut self.turnover, w.turnover24h, &mut t);
        set(&mut self.bid, w.bid1_price.or(w.bid_price), &mut t);
        set(&mut self.ask, w.ask1_price.or(w.ask_price), &mut t);
        set(&mut self.mark, w.mark_price, &mut m);
        set(&mut self.index, w.index_price, &mut m);
        set(&mut self.funding_rate, w.funding_rate, &mut m);
        if let Some(n) = w.next_funding_time {
            self.next_funding_ms = n.0.filter(|v| *v > 0);
            m = true;
        }
        change(&mut self.open_interest, w.open_interest, &mut oi);
        change(&mut self.open_interest_value, w.open_interest_value, &mut oi);
        Touched { ticker: t, mark: m, open_interest: oi }
    }

    fn ticker(&self) -> Option<Ticker> {
        Some(Ticker {
            window: "24h".to_string(),
            open: Some(self.open?),
            high: self.high?,
            low: self.low?,
            last_price: self.last?,
            volume: self.volume?,
            quote_volume: self.turnover?,
            price_change: None,
            bid_price: self.bid,
            ask_price: self.ask,
            price_change_pct: None,
        })
    }
}

/// Decodes one frame received at `received_ns` (ns since the epoch) on a
/// connection of `category`, merging ticker deltas into `tickers`.
///
/// Private payloads name their own category per item (`order`, `execution`,
/// `position`); `category` is used where an item names none (`wallet`, which
/// is account-wide: pass the account's main category).
pub fn decode(
    category: Category,
    frame: &str,
    received_ns: i64,
    tickers: &mut Tickers,
) -> Result<Vec<Event>, DecodeError> {
    let env: Envelope<'_> =
        parse(frame).map_err(|reason| DecodeError::Malformed { reason, payload: frame.to_owned() })?;
    let cx = Cx { category, received_ns, frame };
    let Some(topic) = env.topic.as_deref() else {
        return Ok(vec![cx.unknown(frame, None)]);
    };
    let (name, rest) = topic.split_once('.').unwrap_or((topic, ""));
    let mut out = Vec::new();
    match name {
        "orderbook" => out.push(cx.book(&env)?),
        "publicTrade" => cx.items("publicTrade", &env, &mut out, |cx, t| cx.trade(t))?,
        "tickers" => cx.ticker(&env, tickers, &mut out)?,
        "kline" => {
            let symbol = rest.split_once('.').map(|(_, s)| s).filter(|s| !s.is_empty());
            let Some(symbol) = symbol else {
                return Err(cx.invalid("kline", format!("no symbol in topic {topic:?}")));
            };
            let ts = cx.ms(env.ts.0, "kline")?;
            cx.items("kline", &env, &mut out, |cx, t| cx.kline(t, symbol, ts))?;
        }
        "allLiquidation" => cx.items("allLiquidation", &env, &mut out, |cx, t| cx.liquidation(t))?,
        "order" => cx.items("order", &env, &mut out, |cx, t| cx.order(t))?,
        "execution" if !rest.starts_with("fast") => cx.items("execution", &env, &mut out, |cx, t| cx.execution(t))?,
        "position" => cx.items("position", &env, &mut out, |cx, t| cx.position(t))?,
        "wallet" => {
            let ts = cx.ms(env.creation_time.0, "wallet")?;
            cx.items("wallet", &env, &mut out, |cx, t| cx.wallet(t, ts))?
        }
        _ => out.push(cx.unknown(frame, None)),
    }
    Ok(out)
}

/// The hot topics [`read_fast`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hot {
    /// `publicTrade.*`: an array of trades.
    Trades,
    /// `orderbook.*`: a snapshot or delta.
    Book,
    /// `tickers.*`: a snapshot or delta, merged into the ticker state.
    Ticker,
}

/// The hot topic a topic name is, as [`decode`] and
/// [`super::BybitRules::classify`] both read it: `decode` keys on the name
/// before the first dot, `classify` takes book sequence numbers from topics
/// starting `orderbook.`.
fn hot(topic: &str) -> Option<Hot> {
    if topic.starts_with("orderbook.") {
        return Some(Hot::Book);
    }
    match topic.split_once('.').map_or(topic, |(name, _)| name) {
        "publicTrade" => Some(Hot::Trades),
        "tickers" => Some(Hot::Ticker),
        _ => None,
    }
}

/// One pass over a frame of a hot topic (`publicTrade.*`, `orderbook.*`,
/// `tickers.*`; issue 22): its topic, the sequence
/// [`super::BybitRules::classify`] reads from it, and what [`decode`] makes
/// of it: the events, appended to `out`, or its error (nothing appended).
/// `None` (with `out` and `tickers` as they were) wherever either of them
/// would take another path or fail before the ticker merge: the caller then
/// runs both, so the results are the same either way (tests compare them on
/// every fixture, on single-character mutations of them, and on ticker
/// sequences).
pub(crate) fn read_fast<'a>(
    category: Category,
    frame: &'a str,
    received_ns: i64,
    tickers: &mut Tickers,
    out: &mut Vec<Event>,
) -> Option<(&'a str, Option<Seq>, Result<(), DecodeError>)> {
    let before = out.len();
    let read = read_hot(&Cx { category, received_ns, frame }, tickers, out);
    if !matches!(read, Some((_, _, Ok(())))) {
        out.truncate(before);
    }
    read
}

fn read_hot<'a>(
    cx: &Cx<'a>,
    tickers: &mut Tickers,
    out: &mut Vec<Event>,
) -> Option<(&'a str, Option<Seq>, Result<(), DecodeError>)> {
    let frame = cx.frame;
    let mut sc = Scan::new(frame);
    let mut seen = 0u32;
    let (mut topic, mut kind, mut ts, mut cts) = (None, None, None, None);
    // The payload, read as soon as the topic says what it is (the venue
    // sends `topic` first; another topic ends the pass there), else found
    // and read after the envelope.
    let mut data: Option<Payload<'a>> = None;
    let mut later: Option<&'a str> = None;
    sc.object(|sc, key| {
        match key {
            "topic" => {
                crate::scan::once(&mut seen, 1)?;
                topic = Some(sc.str()?);
            }
            "type" => {
                crate::scan::once(&mut seen, 2)?;
                kind = Some(sc.str()?);
            }
            "ts" => {
                crate::scan::once(&mut seen, 4)?;
                ts = Some(sc.int()?);
            }
            "cts" => {
                crate::scan::once(&mut seen, 8)?;
                cts = Some(sc.int()?);
            }
            "creationTime" => {
                crate::scan::once(&mut seen, 16)?;
                sc.int()?;
            }
            "data" => {
                crate::scan::once(&mut seen, 32)?;
                match topic.map(hot) {
                    Some(h) => data = Some(scan::payload(cx, h?, sc, out)?),
                    None => {
                        let start = sc.offset();
                        sc.skip_value(1)?;
                        later = frame.get(start..sc.offset());
                    }
                }
            }
            // What classification reads of control frames: left to it.
            "op" | "success" | "ret_msg" | "retMsg" | "retCode" | "req_id" => return None,
            _ => sc.skip_value(1)?,
        }
        Some(())
    })?;
    sc.end()?;
    let topic = topic?;
    let h = hot(topic)?;
    if let Some(text) = later {
        let mut sc = Scan::new(text);
        data = Some(scan::payload(cx, h, &mut sc, out)?);
        sc.end()?;
    }
    match data? {
        Payload::Trades => Some((topic, None, Ok(()))),
        Payload::Book(w) => {
            let seq = super::book_seq(kind, w.u);
            out.push(cx.book_event(w, kind, cts.or(ts)).ok()?);
            Some((topic, seq, Ok(())))
        }
        Payload::Ticker(w) => {
            // What fails before the merge is left to the general path.
            if !matches!(kind, Some("snapshot" | "delta")) || cx.ms(ts, "tickers").is_err() {
                return None;
            }
            Some((topic, None, cx.ticker_events(w, kind, ts, tickers, out)))
        }
    }
}

/// What [`read_hot`] read from `data`: trades are appended to the events at
/// once; a book or ticker waits for the envelope's `type` and times.
// One short-lived value per frame, on the stack: boxing the ticker would
// cost an allocation per ticker frame.
#[allow(clippy::large_enum_variant)]
enum Payload<'a> {
    Trades,
    Book(BookW<'a>),
    Ticker(TickerW<'a>),
}

fn levels(v: Vec<WireLevel>) -> Vec<Level> {
    v.into_iter().map(|l| l.0).collect()
}

/// Bybit's kline intervals (`1`, `60`, `D`, ...) as `1m`, `1h`, `1d`, `1w`,
/// `1M`; anything else unchanged.
pub fn kline_interval(bybit: &str) -> String {
    match bybit {
        "D" => "1d".into(),
        "W" => "1w".into(),
        "M" => "1M".into(),
        m => match m.parse::<u32>() {
            Ok(n) if n >= 60 && n % 60 == 0 => format!("{}h", n / 60),
            Ok(n) if n > 0 => format!("{n}m"),
            _ => m.to_string(),
        },
    }
}

fn side(s: &str) -> Result<Side, String> {
    match s {
        "Buy" => Ok(Side::Buy),
        "Sell" => Ok(Side::Sell),
        other => Err(format!("unknown side {other:?}")),
    }
}

/// `positionIdx`: 0 one-way, 1 hedge-mode long, 2 hedge-mode short.
fn position_side(idx: Option<i64>) -> Option<PositionSide> {
    match idx {
        Some(0) => Some(PositionSide::Both),
        Some(1) => Some(PositionSide::Long),
        Some(2) => Some(PositionSide::Short),
        _ => None,
    }
}

/// Decoding context of one frame.
struct Cx<'f> {
    category: Category,
    received_ns: i64,
    /// The whole frame, kept by errors.
    frame: &'f str,
}

impl<'f> Cx<'f> {
    fn invalid(&self, what: &'static str, reason: String) -> DecodeError {
        DecodeError::Invalid { what, reason, payload: self.frame.to_owned() }
    }

    fn event(&self, category: Category, kind: EventKind, symbol: Option<String>, ts: Option<i64>) -> Event {
        Event {
            kind,
            venue: Venue::Bybit,
            market: category.market_type(),
            symbol,
            exchange_ts: ts,
            receive_ts: self.received_ns,
        }
    }

    fn unknown(&self, raw: &str, symbol: Option<String>) -> Event {
        self.event(self.category, EventKind::Unknown { raw: raw.to_owned() }, symbol, None)
    }

    /// Milliseconds → nanoseconds.
    fn ms(&self, ms: Option<i64>, what: &'static str) -> Result<Option<i64>, DecodeError> {
        ms.map(|v| v.checked_mul(1_000_000).ok_or_else(|| self.invalid(what, format!("time {v} ms out of range"))))
            .transpose()
    }

    /// The category a private item names, else the connection's.
    fn category_of(&self, named: Option<&str>) -> Category {
        named.and_then(Category::from_name).unwrap_or(self.category)
    }

    /// Every item of an array `data`, each through `f`; `None` from `f` is
    /// an `unknown` event carrying the item.
    fn items(
        &self,
        what: &'static str,
        env: &Envelope<'_>,
        out: &mut Vec<Event>,
        f: impl Fn(&Cx<'f>, &str) -> Result<Option<Event>, DecodeError>,
    ) -> Result<(), DecodeError> {
        let Some(data) = env.data else {
            return Err(self.invalid(what, "missing field `data`".into()));
        };
        let items: Vec<&RawValue> = parse(data.get()).map_err(|r| self.invalid(what, r))?;
        out.reserve(items.len());
        for item in items {
            match f(self, item.get())? {
                Some(e) => out.push(e),
                None => out.push(self.unknown(item.get(), None)),
            }
        }
        Ok(())
    }

    fn book(&self, env: &Envelope<'_>) -> Result<Event, DecodeError> {
        const W: &str = "orderbook";
        let Some(data) = env.data else {
            return Err(self.invalid(W, "missing field `data`".into()));
        };
        let w: BookW<'_> = parse(data.get()).map_err(|r| self.invalid(W, r))?;
        self.book_event(w, env.kind.as_deref(), env.cts.0.or(env.ts.0))
    }

    /// The `orderbook` event of data `w` in an envelope of `type` `kind`,
    /// stamped `ts_ms` (`cts`, else `ts`).
    fn book_event(&self, w: BookW<'_>, kind: Option<&str>, ts_ms: Option<i64>) -> Result<Event, DecodeError> {
        const W: &str = "orderbook";
        let ts = self.ms(ts_ms, W)?;
        let kind = match kind {
            // `u == 1`: the service restarted; the payload is a snapshot.
            Some("snapshot") | Some("delta") if w.u == 1 || kind == Some("snapshot") => {
                EventKind::BookSnapshot(BookSnapshot { last_update_id: w.u, bids: levels(w.b), asks: levels(w.a) })
            }
            Some("delta") => EventKind::BookDelta(BookDelta {
                first_update_id: w.u,
                last_update_id: w.u,
                prev_update_id: None,
                bids: levels(w.b),
                asks: levels(w.a),
            }),
            other => return Err(self.invalid(W, format!("unknown type {other:?}"))),
        };
        Ok(self.event(self.category, kind, Some(w.s.into_owned()), ts))
    }

    fn trade(&self, text: &str) -> Result<Option<Event>, DecodeError> {
        let w: TradeW<'_> = parse(text).map_err(|r| self.invalid("publicTrade", r))?;
        self.trade_event(w).map(Some)
    }

    /// The `trade` event of one `publicTrade` item.
    fn trade_event(&self, w: TradeW<'_>) -> Result<Event, DecodeError> {
        const W: &str = "publicTrade";
        let side = side(&w.S).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(Some(w.T), W)?;
        Ok(self.event(
            self.category,
            EventKind::Trade(Trade::new(w.i.0, w.p.0, w.v.0, side)),
            Some(w.s.into_owned()),
            ts,
        ))
    }

    fn ticker(&self, env: &Envelope<'_>, tickers: &mut Tickers, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        const W: &str = "tickers";
        let Some(data) = env.data else {
            return Err(self.invalid(W, "missing field `data`".into()));
        };
        let w: TickerW<'_> = parse(data.get()).map_err(|r| self.invalid(W, r))?;
        self.ticker_events(w, env.kind.as_deref(), env.ts.0, tickers, out)
    }

    /// The events of `tickers` data `w` in an envelope of `type` `kind`,
    /// stamped `ts_ms`, merged into `tickers`. Only the next funding time
    /// can fail after the merge (out of range).
    fn ticker_events(
        &self,
        w: TickerW<'_>,
        kind: Option<&str>,
        ts_ms: Option<i64>,
        tickers: &mut Tickers,
        out: &mut Vec<Event>,
    ) -> Result<(), DecodeError> {
        const W: &str = "tickers";
        let ts = self.ms(ts_ms, W)?;
        let key = (self.category, w.symbol.to_string());
        let delta = kind == Some("delta");
        let (state, touched) = match kind {
            Some("snapshot") => {
                let mut s = TickerState::default();
                let touched = s.merge(&w);
                (tickers.state.entry(key).insert_entry(s).into_mut(), touched)
            }
            Some("delta") => match tickers.state.get_mut(&key) {
                Some(s) => {
                    let touched = s.merge(&w);
                    (s, touched)
                }
                None => {
                    out.push(self.unknown(self.frame, Some(key.1)));
                    return Ok(());
                }
            },
            other => return Err(self.invalid(W, format!("unknown type {other:?}"))),
        };
        if delta && !touched.any() {
            // Understood and merged, but nothing the events carry changed
            // (e.g. only `tickDirection`): no event.
            return Ok(());
        }
        let before = out.len();
        let symbol = Some(w.symbol.into_owned());
        if touched.ticker
            && self.category != Category::Option
            && let Some(ticker) = state.ticker()
        {
            out.push(self.event(self.category, EventKind::Ticker(Box::new(ticker)), symbol.clone(), ts));
        }
        if touched.mark
            && let (Some(mark_price), Some(index_price)) = (state.mark, state.index)
        {
            let next_funding_ts = self.ms(state.next_funding_ms, W)?;
            out.push(self.event(
                self.category,
                EventKind::MarkPrice(Box::new(MarkPrice::new(
                    mark_price,
                    index_price,
                    state.funding_rate,
                    next_funding_ts,
                ))),
                symbol.clone(),
                ts,
            ));
        }
        if touched.open_interest
            && let Some(open_interest) = state.open_interest
        {
            out.push(self.event(
                self.category,
                EventKind::OpenInterest(OpenInterest::new(open_interest, state.open_interest_value)),
                symbol.clone(),
                ts,
            ));
        }
        if out.len() == before {
            // Nothing complete to report (e.g. a snapshot lacking fields).
            out.push(self.unknown(self.frame, symbol));
        }
        Ok(())
    }

    fn kline(&self, text: &str, symbol: &str, ts: Option<i64>) -> Result<Option<Event>, DecodeError> {
        const W: &str = "kline";
        let w: KlineW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let open_time = self.ms(Some(w.start), W)?.unwrap_or_default();
        let close_time = self.ms(Some(w.end), W)?.unwrap_or_default();
        Ok(Some(self.event(
            self.category,
            EventKind::Kline(Box::new(Kline {
                interval: kline_interval(&w.interval),
                open_time,
                close_time,
                open: w.open.0,
                high: w.high.0,
                low: w.low.0,
                close: w.close.0,
                volume: w.volume.0,
                quote_volume: w.turnover.0,
                // Bybit sends no trade count.
                trades: None,
                closed: w.confirm,
            })),
            Some(symbol.to_string()),
            ts,
        )))
    }

    fn liquidation(&self, text: &str) -> Result<Option<Event>, DecodeError> {
        const W: &str = "allLiquidation";
        let w: LiquidationW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        // `S` is the liquidated position's side; the liquidation order takes
        // the other side (a long, `Buy`, is liquidated by a sell).
        let order_side = match side(&w.S).map_err(|r| self.invalid(W, r))? {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        };
        let ts = self.ms(Some(w.T), W)?;
        Ok(Some(self.event(
            self.category,
            EventKind::Liquidation(Liquidation { side: order_side, price: w.p.0, qty: w.v.0 }),
            Some(w.s.into_owned()),
            ts,
        )))
    }

    fn order(&self, text: &str) -> Result<Option<Event>, DecodeError> {
        const W: &str = "order";
        let w: OrderW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let side = side(&w.side).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.updated_time.0, W)?;
        let nonzero = |d: Option<Decimal>| d.filter(|v| !v.is_zero());
        let status = w.order_status.into_owned();
        let order = OrderUpdate {
            order_id: w.order_id.into_owned(),
            client_order_id: w.order_link_id.into_owned(),
            orig_client_order_id: None,
            side,
            order_type: w.order_type.into_owned(),
            time_in_force: w.time_in_force.map(|t| t.into_owned()).filter(|t| !t.is_empty()),
            // Bybit's order topic names no event type: the status it reached.
            execution_type: status.clone(),
            status,
            price: w.price.0,
            qty: w.qty.0,
            filled_qty: w.cum_exec_qty.0,
            avg_price: nonzero(w.avg_price.0),
            filled_quote_qty: w.cum_exec_value.0,
            stop_price: nonzero(w.trigger_price.0),
            fill: None,
            reject_reason: w.reject_reason.map(|r| r.into_owned()).filter(|r| !r.is_empty() && r != "EC_NoError"),
            order_list_id: None,
            reduce_only: w.reduce_only,
            position_side: position_side(w.position_idx),
            close_position: w.close_on_trigger,
            realized_pnl: None,
            activation_price: None,
            callback_rate: None,
        };
        let category = self.category_of(w.category.as_deref());
        Ok(Some(self.event(category, EventKind::OrderUpdate(Box::new(order)), Some(w.symbol.into_owned()), ts)))
    }

    fn execution(&self, text: &str) -> Result<Option<Event>, DecodeError> {
        const W: &str = "execution";
        let w: ExecutionW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        // Funding and settlement rows are not fills of an order.
        if w.exec_type.as_deref().is_some_and(|t| matches!(t, "Funding" | "Settle" | "Delivery")) {
            return Ok(None);
        }
        let side = side(&w.side).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.exec_time.0, W)?;
        let trade = UserTrade {
            order_id: w.order_id.into_owned(),
            client_order_id: w.order_link_id.into_owned(),
            side,
            trade_id: w.exec_id.into_owned(),
            price: w.exec_price.0,
            qty: w.exec_qty.0,
            maker: w.is_maker,
            order_price: w.order_price.0,
            order_qty: Some(w.order_qty.0),
            fee: w.exec_fee.0,
            fee_asset: w.fee_currency.map(|c| c.into_owned()).filter(|c| !c.is_empty()),
        };
        let category = self.category_of(w.category.as_deref());
        Ok(Some(self.event(category, EventKind::UserTrade(Box::new(trade)), Some(w.symbol.into_owned()), ts)))
    }

    fn position(&self, text: &str) -> Result<Option<Event>, DecodeError> {
        const W: &str = "position";
        let w: PositionW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.updated_time.0, W)?;
        let position_side = position_side(w.position_idx).unwrap_or(PositionSide::Both);
        // One-way mode reports a short as `side: Sell` with a positive size.
        let amount = if position_side == PositionSide::Both && w.side == "Sell" { -w.size.0 } else { w.size.0 };
        let isolated = w.trade_mode == Some(1);
        let pos = PositionUpdate {
            reason: None,
            position_side,
            amount,
            entry_price: w.entry_price.0,
            breakeven_price: w.break_even_price.0,
            unrealized_pnl: w.unrealised_pnl.0,
            realized_pnl: w.cum_realised_pnl.0,
            margin_type: w.trade_mode.and_then(|m| match m {
                0 => Some("cross".to_string()),
                1 => Some("isolated".to_string()),
                _ => None,
            }),
            isolated_wallet: if isolated { w.position_balance.0 } else { None },
        };
        let category = self.category_of(w.category.as_deref());
        Ok(Some(self.event(category, EventKind::PositionUpdate(Box::new(pos)), Some(w.symbol.into_owned()), ts)))
    }

    fn wallet(&self, text: &str, ts: Option<i64>) -> Result<Option<Event>, DecodeError> {
        const W: &str = "wallet";
        let w: WalletW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let balances = w
            .coin
            .into_iter()
            .map(|c| Balance {
                asset: c.coin.into_owned(),
                free: None,
                locked: c.locked.0,
                delta: None,
                locked_delta: None,
                wallet_balance: c.wallet_balance.0,
                cross_wallet_balance: None,
            })
            .collect();
        Ok(Some(self.event(
            self.category,
            EventKind::BalanceUpdate(BalanceUpdate { reason: None, balances }),
            None,
            ts,
        )))
    }
}

/// Hot payloads read with the validating scanner ([`Scan`]): each reader
/// fills the wire struct serde would and answers `None` for anything it does
/// not read exactly as serde (and the classification's `DataHead`) would (an
/// escape, a repeated or missing field, a number that is not a plain
/// integer, a bad decimal, ...); the caller then takes the serde paths,
/// which decide.
mod scan {
    use std::borrow::Cow;

    use ferrofeed_model::event::Event;
    use rust_decimal::Decimal;

    use super::super::wire::{AnyId, BookW, DecOrEmpty, Ms, TickerW, TradeW, WireLevel};
    use super::{Cx, Hot, Payload};
    use crate::scan::{Lit, Scan, once};

    /// The `data` of a hot topic: trades are decoded into `out` here.
    pub(super) fn payload<'a>(cx: &Cx<'a>, hot: Hot, sc: &mut Scan<'a>, out: &mut Vec<Event>) -> Option<Payload<'a>> {
        match hot {
            Hot::Trades => {
                sc.array(|sc| {
                    out.push(cx.trade_event(trade(sc)?).ok()?);
                    Some(())
                })?;
                Some(Payload::Trades)
            }
            Hot::Book => book(sc).map(Payload::Book),
            Hot::Ticker => ticker(sc).map(Payload::Ticker),
        }
    }

    /// A present decimal field, as `Option<DecOrEmpty>` reads it: a decimal
    /// string, or `""` for none (`null`, absence to serde, is left to it).
    fn dec_or_empty(sc: &mut Scan<'_>) -> Option<Option<DecOrEmpty>> {
        let text = sc.str()?;
        if text.is_empty() {
            return Some(Some(DecOrEmpty(None)));
        }
        Decimal::from_str_exact(text).ok().map(|d| Some(DecOrEmpty(Some(d))))
    }

    /// A present time field, as `Option<Ms>` reads it: a plain integer, a
    /// string `str::parse` reads as an `i64`, or `""` for none.
    fn ms(sc: &mut Scan<'_>) -> Option<Option<Ms>> {
        if sc.peek()? != b'"' {
            return Some(Some(Ms(Some(sc.int()?))));
        }
        let text = sc.str()?;
        if text.is_empty() {
            return Some(Some(Ms(None)));
        }
        text.parse::<i64>().ok().map(|v| Some(Ms(Some(v))))
    }

    /// `tickers` data, as `TickerW` reads it (a `u`, which classification's
    /// `DataHead` reads, and `successTopics` or `failTopics` are left to serde).
    fn ticker<'a>(sc: &mut Scan<'a>) -> Option<TickerW<'a>> {
        let mut seen = 0u32;
        let mut w = TickerW::default();
        let mut symbol = None;
        sc.object(|sc, key| {
            let (bit, slot) = match key {
                "symbol" => {
                    once(&mut seen, 1)?;
                    symbol = Some(sc.str()?);
                    return Some(());
                }
                "nextFundingTime" => {
                    once(&mut seen, 2)?;
                    w.next_funding_time = ms(sc)?;
                    return Some(());
                }
                "lastPrice" => (4, &mut w.last_price),
                "prevPrice24h" => (8, &mut w.prev_price24h),
                "highPrice24h" => (16, &mut w.high_price24h),
                "lowPrice24h" => (32, &mut w.low_price24h),
                "volume24h" => (64, &mut w.volume24h),
                "turnover24h" => (128, &mut w.turnover24h),
                "bid1Price" => (256, &mut w.bid1_price),
                "ask1Price" => (512, &mut w.ask1_price),
                "bidPrice" => (1024, &mut w.bid_price),
                "askPrice" => (2048, &mut w.ask_price),
                "markPrice" => (4096, &mut w.mark_price),
                "indexPrice" => (8192, &mut w.index_price),
                "fundingRate" => (16384, &mut w.funding_rate),
                "openInterest" => (32768, &mut w.open_interest),
                "openInterestValue" => (65536, &mut w.open_interest_value),
                "u" | "successTopics" | "failTopics" => return None,
                _ => return sc.skip_value(2),
            };
            once(&mut seen, bit)?;
            *slot = dec_or_empty(sc)?;
            Some(())
        })?;
        w.symbol = Cow::Borrowed(symbol?);
        Some(w)
    }

    /// One `publicTrade` item, as `TradeW` reads it.
    #[allow(non_snake_case)]
    fn trade<'a>(sc: &mut Scan<'a>) -> Option<TradeW<'a>> {
        let mut seen = 0u32;
        let (mut T, mut s, mut S, mut v, mut p, mut i) = (None, None, None, None, None, None);
        sc.object(|sc, key| {
            match key {
                "T" => {
                    once(&mut seen, 1)?;
                    T = Some(sc.int()?);
                }
                "s" => {
                    once(&mut seen, 2)?;
                    s = Some(sc.str()?);
                }
                "S" => {
                    once(&mut seen, 4)?;
                    S = Some(sc.str()?);
                }
                "v" => {
                    once(&mut seen, 8)?;
                    v = Some(sc.dec()?);
                }
                "p" => {
                    once(&mut seen, 16)?;
                    p = Some(sc.dec()?);
                }
                "i" => {
                    once(&mut seen, 32)?;
                    // A string (UUIDs on derivatives, digits on spot) or an
                    // unsigned number, kept as its text like `AnyId`.
                    i = Some(match sc.peek()? {
                        b'"' => AnyId(sc.str()?.to_owned()),
                        _ => AnyId(sc.uint()?.to_string()),
                    });
                }
                _ => sc.skip_value(3)?,
            }
            Some(())
        })?;
        Some(TradeW { T: T?, s: Cow::Borrowed(s?), S: Cow::Borrowed(S?), v: v?, p: p?, i: i? })
    }

    /// `orderbook` data, as `BookW` reads it (and classification's
    /// `DataHead`, which also reads `u` and refuses a malformed
    /// `successTopics` or `failTopics`: left to serde).
    fn book<'a>(sc: &mut Scan<'a>) -> Option<BookW<'a>> {
        let mut seen = 0u32;
        let (mut s, mut b, mut a, mut u, mut seq) = (None, None, None, None, None);
        sc.object(|sc, key| {
            match key {
                "s" => {
                    once(&mut seen, 1)?;
                    s = Some(sc.str()?);
                }
                "b" => {
                    once(&mut seen, 2)?;
                    b = Some(sc.levels(WireLevel)?);
                }
                "a" => {
                    once(&mut seen, 4)?;
                    a = Some(sc.levels(WireLevel)?);
                }
                "u" => {
                    once(&mut seen, 8)?;
                    u = Some(sc.uint()?);
                }
                "seq" => {
                    once(&mut seen, 16)?;
                    seq = match sc.peek()? {
                        b'n' => (sc.literal()? == Lit::Null).then_some(None)?,
                        _ => Some(sc.uint()?),
                    };
                }
                "successTopics" | "failTopics" => return None,
                _ => sc.skip_value(2)?,
            }
            Some(())
        })?;
        Some(BookW { s: Cow::Borrowed(s?), b: b?, a: a?, u: u?, seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(kline_interval("1"), "1m");
        assert_eq!(kline_interval("15"), "15m");
        assert_eq!(kline_interval("60"), "1h");
        assert_eq!(kline_interval("720"), "12h");
        assert_eq!(kline_interval("D"), "1d");
        assert_eq!(kline_interval("W"), "1w");
        assert_eq!(kline_interval("M"), "1M");
        assert_eq!(kline_interval("0"), "0");
        assert_eq!(kline_interval("x"), "x");
    }

    #[test]
    fn sides_and_positions() {
        assert_eq!(side("Buy"), Ok(Side::Buy));
        assert!(side("buy").is_err());
        assert_eq!(position_side(Some(2)), Some(PositionSide::Short));
        assert_eq!(position_side(Some(9)), None);
    }
}
