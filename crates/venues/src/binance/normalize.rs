//! Binance frames → normalized [`Event`]s.
//!
//! [`decode`] takes one text frame exactly as received, raw or in the combined
//! `{"stream","data"}` envelope, and returns its events (array payloads such as
//! `!miniTicker@arr` give several). [`decode_rest_snapshot`] turns a REST
//! `depth` body into a `book_snapshot`. Decimals are exact, parsed from the
//! venue's strings; times become integer nanoseconds.
//!
//! `exchange_ts` is the matching engine's transaction time `T` where the payload
//! has one (trades, aggregate trades, futures depth and book ticker, futures
//! REST snapshots), otherwise the event time `E`; `null` when the payload has
//! neither (spot `bookTicker`, spot partial depth, spot REST snapshots).
//!
//! Private user-data payloads (spot `executionReport`, `outboundAccountPosition`,
//! `balanceUpdate`, `listStatus`, ...; futures `ORDER_TRADE_UPDATE`,
//! `ACCOUNT_UPDATE`, `TRADE_LITE`; `listenKeyExpired`) are decoded in
//! `user.rs`, bare (listenKey streams), in the combined envelope, or wrapped
//! by the WebSocket API as `{"subscriptionId":N,"event":{...}}`; a futures
//! `ACCOUNT_UPDATE` yields several events.
//!
//! Options `openInterest` (the `<underlying>@optionOpenInterest@<expiry>`
//! stream, an array) gives one `open_interest` per option: `o` in contracts,
//! `h` its value in USDT. USDⓈ-M and COIN-M futures have no stream that
//! carries open interest (only REST `GET /fapi/v1/openInterest`,
//! `/dapi/v1/openInterest`), so no futures event is an `open_interest`.
//!
//! Payloads with an event type this module does not model (`serverShutdown`,
//! options `markPrice`, options user data, ...) and frames without one that are
//! neither partial depth nor a spot book ticker (acks, errors) become
//! `unknown` events carrying the frame text. Malformed JSON, missing required
//! fields and bad decimals are a [`DecodeError`] that keeps the frame; nothing
//! here panics on external input.
//!
//! The JSON parser is used in `parse` only (and the envelope's unparsed
//! `data`, a `RawValue`), so swapping serde_json for another serde-compatible
//! parser is local to this file and `wire.rs`.

use ferrofeed_model::event::{
    AggTrade, AvgPrice, BookDelta, BookSnapshot, Event, EventKind, Kline, Level, Liquidation, MarkPrice, MarketType,
    OpenInterest, Side, Ticker, TopOfBook, Trade, Venue,
};
use ferrofeed_model::rules::Seq;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::Market;
use super::wire::{
    AggTradeW, AvgPriceW, BookTickerW, DepthW, Env, ForceOrderW, Head, KlineW, MarkPriceW, OpenInterestW,
    PartialDepthW, TickerW, TradeW, WireLevel,
};

pub use crate::error::DecodeError;

/// The normalized market type of a Binance market.
pub fn market_type(market: Market) -> MarketType {
    match market {
        Market::Spot => MarketType::Spot,
        Market::UsdM => MarketType::UsdM,
        Market::CoinM => MarketType::CoinM,
        Market::Options => MarketType::Options,
    }
}

/// The one place the JSON parser is called.
pub(super) fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Decodes one frame (raw payload, combined envelope, or an array of payloads)
/// received at `received_ns` (ns since the epoch) on `market`.
pub fn decode(market: Market, frame: &str, received_ns: i64) -> Result<Vec<Event>, DecodeError> {
    let cx = Cx { market, received_ns, frame, stream: None };
    if let Some(event) = cx.fast(frame) {
        return Ok(vec![event]);
    }
    decode_general(cx, frame)
}

/// [`decode`] into `out`: the hot path (one trade, depth diff or book
/// ticker per frame) appends without allocating a `Vec` per frame.
pub fn decode_into(market: Market, frame: &str, received_ns: i64, out: &mut Vec<Event>) -> Result<(), DecodeError> {
    let cx = Cx { market, received_ns, frame, stream: None };
    if let Some(event) = cx.fast(frame) {
        out.push(event);
        return Ok(());
    }
    out.extend(decode_general(cx, frame)?);
    Ok(())
}

/// [`decode`] without its hot path: every frame through the general decoder.
fn decode_general(cx: Cx<'_>, frame: &str) -> Result<Vec<Event>, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed { reason, payload: frame.to_owned() };
    if frame.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = parse(frame).map_err(malformed)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            cx.payload(item.get(), item.get(), &mut out)?;
        }
        return Ok(out);
    }
    let head: Head<'_> = parse(frame).map_err(malformed)?;
    let mut out = Vec::with_capacity(1);
    match (head.stream.0, head.data) {
        (Some(stream), Some(data)) => {
            let cx = Cx { stream: Some(stream.as_str()), ..cx };
            let data = data.get();
            if data.trim_start().starts_with('[') {
                let items: Vec<&RawValue> = parse(data).map_err(malformed)?;
                out.reserve(items.len());
                for item in items {
                    cx.payload(item.get(), item.get(), &mut out)?;
                }
            } else {
                cx.payload(data, frame, &mut out)?;
            }
        }
        _ => {
            let head = Head { stream: Default::default(), data: None, ..head };
            cx.object(frame, &head, frame, &mut out)?;
        }
    }
    Ok(out)
}

/// The payload kinds the hot paths read.
#[derive(Clone, Copy, PartialEq)]
enum K {
    Trade,
    Agg,
    Depth,
    Ticker,
}

/// The hot kind a combined stream's name carries.
fn kind_of_stream(stream: &str) -> Option<K> {
    let (_, rest) = stream.split_once('@')?;
    match rest {
        "trade" => Some(K::Trade),
        "aggTrade" => Some(K::Agg),
        "bookTicker" => Some(K::Ticker),
        "depth" | "depth@100ms" | "depth@250ms" | "depth@500ms" | "depth@0ms" => Some(K::Depth),
        _ => None,
    }
}

/// One pass over a combined-stream frame of a hot kind (`trade`,
/// `aggTrade`, diff `depthUpdate`, `bookTicker`, issue 22): its stream name,
/// the sequence numbers [`super::BinanceRules::classify`] reads from it and
/// the event [`decode`] makes of it. `None` wherever either of them would
/// take another path or fail; the caller then runs both, so the results
/// are the same either way (tests compare them on every fixture and on
/// single-character mutations of them).
pub(crate) fn read_fast(market: Market, frame: &str, received_ns: i64) -> Option<(&str, Option<Seq>, Event)> {
    let rest = frame.strip_prefix("{\"stream\":\"")?;
    let stream = &rest[..rest.find('"')?];
    if stream.contains('\\') {
        return None;
    }
    let cx = Cx { market, received_ns, frame, stream: Some(stream) };
    let (seq, event) = match kind_of_stream(stream)? {
        K::Trade => {
            let (w, id) = scan::combined_data(frame, scan::trade_and_id)?;
            let seq = Seq::single(id);
            (Some(seq), cx.trade_event(w).ok()?)
        }
        K::Agg => {
            let w = scan::combined_data(frame, scan::agg_trade)?;
            (Some(Seq::single(w.a)), cx.agg_trade_event(w).ok()?)
        }
        K::Depth => {
            let w = scan::combined_data(frame, scan::depth)?;
            let seq = match w.pu {
                Some(pu) if pu >= 0 => Seq::chained(w.U, w.u, pu as u64),
                _ => Seq::range(w.U, w.u),
            };
            (Some(seq), cx.depth_event(w).ok()?)
        }
        K::Ticker => (None, cx.book_ticker_event(scan::combined_data(frame, scan::book_ticker)?).ok()?),
    };
    Some((stream, seq, event))
}

/// Decodes a REST `GET /api/v3/depth` (spot) or `/fapi|dapi/v1/depth` body for
/// `symbol` into a `book_snapshot` event.
pub fn decode_rest_snapshot(market: Market, symbol: &str, body: &str, received_ns: i64) -> Result<Event, DecodeError> {
    let cx = Cx { market, received_ns, frame: body, stream: None };
    let w: PartialDepthW = parse(body).map_err(|reason| cx.invalid("depth snapshot", reason))?;
    let ts = cx.ms(w.tx_time.or(w.event_time), "depth snapshot")?;
    Ok(cx.event(
        EventKind::BookSnapshot(BookSnapshot {
            last_update_id: w.last_update_id,
            bids: levels(w.bids),
            asks: levels(w.asks),
        }),
        Some(symbol.to_ascii_uppercase()),
        ts,
    ))
}

fn levels(v: Vec<WireLevel>) -> Vec<Level> {
    v.into_iter().map(|l| l.0).collect()
}

/// Whether a stream name is a partial-depth stream (`<s>@depth5`,
/// `<s>@depth20@100ms`, options `@depth10`, ...), as opposed to a diff stream
/// (`<s>@depth`, `<s>@depth@100ms`).
fn is_partial_stream(stream: &str) -> bool {
    stream.find("@depth").is_some_and(|i| {
        stream.get(i + "@depth".len()..).and_then(|rest| rest.chars().next()).is_some_and(|c| c.is_ascii_digit())
    })
}

/// `24hrTicker`/`24hrMiniTicker` → `24h`; `1hTicker` → `1h`, `4hTicker` →
/// `4h`, `1dTicker` → `1d`.
fn ticker_window(e: &str) -> Option<&str> {
    match e {
        "24hrTicker" | "24hrMiniTicker" => Some("24h"),
        _ => e.strip_suffix("Ticker").filter(|w| {
            let mut cs = w.chars();
            let unit = cs.next_back();
            let digits = cs.as_str();
            !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && matches!(unit, Some('m' | 'h' | 'd' | 'w'))
        }),
    }
}

/// The taker's side: options send `S`; spot and futures send `m` (the buyer
/// is the maker, so `m: true` means the taker sold).
fn taker_side(s: Option<&str>, m: Option<bool>) -> Result<Side, String> {
    match (s, m) {
        (Some("BUY" | "1"), _) => Ok(Side::Buy),
        (Some("SELL" | "-1"), _) => Ok(Side::Sell),
        (Some(other), _) => Err(format!("unknown side S={other:?}")),
        (None, Some(true)) => Ok(Side::Sell),
        (None, Some(false)) => Ok(Side::Buy),
        (None, None) => Err("missing field `m`".into()),
    }
}

/// A Binance time field → nanoseconds. Times are milliseconds unless the
/// connection asked for `timeUnit=MICROSECOND`, which the frame does not say;
/// a value of 10^14 or more would be a millisecond time after the year 5138,
/// so it is read as microseconds (today's µs times have 16 digits, ms 13).
/// `None` when the result does not fit an `i64`.
fn time_ns(v: i64) -> Option<i64> {
    if v.unsigned_abs() >= 100_000_000_000_000 { v.checked_mul(1_000) } else { v.checked_mul(1_000_000) }
}

/// Decoding context of one frame.
#[derive(Clone, Copy)]
pub(super) struct Cx<'f> {
    pub(super) market: Market,
    received_ns: i64,
    /// The whole frame, kept by errors.
    frame: &'f str,
    /// The combined stream name, when the frame had one.
    stream: Option<&'f str>,
}

impl Cx<'_> {
    pub(super) fn invalid(&self, what: &'static str, reason: String) -> DecodeError {
        DecodeError::Invalid { what, reason, payload: self.frame.to_owned() }
    }

    pub(super) fn event(&self, kind: EventKind, symbol: Option<String>, exchange_ts: Option<i64>) -> Event {
        Event {
            kind,
            venue: Venue::Binance,
            market: market_type(self.market),
            symbol,
            exchange_ts,
            receive_ts: self.received_ns,
        }
    }

    /// A venue time → nanoseconds: milliseconds, or microseconds on
    /// connections that asked for `timeUnit=MICROSECOND` (and the simulator's
    /// load stream). See [`time_ns`].
    pub(super) fn ms(&self, ms: Option<i64>, what: &'static str) -> Result<Option<i64>, DecodeError> {
        ms.map(|v| time_ns(v).ok_or_else(|| self.invalid(what, format!("time {v} out of range")))).transpose()
    }

    fn ms_required(&self, ms: i64, what: &'static str) -> Result<i64, DecodeError> {
        time_ns(ms).ok_or_else(|| self.invalid(what, format!("time {ms} out of range")))
    }

    /// One payload object, its events appended to `out`; `raw` is what an
    /// `unknown` event carries (the whole frame, or the array element).
    fn payload(&self, text: &str, raw: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        let head: Head<'_> =
            parse(text).map_err(|reason| DecodeError::Malformed { reason, payload: self.frame.to_owned() })?;
        self.object(text, &head, raw, out)
    }

    fn object(&self, text: &str, head: &Head<'_>, raw: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        let e = head.e.0.as_ref().map(|t| t.as_str());
        let event = match e {
            Some("trade") => self.trade(text),
            Some("aggTrade") => self.agg_trade(text),
            Some("depthUpdate") => self.depth_update(text),
            Some("bookTicker") => self.book_ticker(text),
            Some("kline") => self.kline(text),
            Some("avgPrice") => self.avg_price(text),
            Some("markPriceUpdate") => self.mark_price(text),
            Some("forceOrder") => self.force_order(text),
            Some("openInterest") if self.market == Market::Options => self.open_interest(text),
            Some(name) => match ticker_window(name) {
                Some(window) => self.ticker(text, window),
                None if self.user(name, text, out)? => return Ok(()),
                None => Ok(self.unknown(head, raw)),
            },
            // WebSocket-API user data: `{"subscriptionId":N,"event":{...}}`.
            None if head.event.is_some_and(|ev| ev.get().trim_start().starts_with('{')) => {
                let inner = head.event.map_or("", RawValue::get);
                return self.payload(inner, raw, out);
            }
            None if head.last_update_id.is_some() => self.partial_depth(text),
            None if head.u.is_some() && head.s.0.is_some() => self.book_ticker(text),
            None => Ok(self.unknown(head, raw)),
        };
        out.push(event?);
        Ok(())
    }

    fn unknown(&self, head: &Head<'_>, raw: &str) -> Event {
        let symbol = head.s.0.as_ref().map(|s| s.as_str().to_ascii_uppercase());
        self.event(EventKind::Unknown { raw: raw.to_owned() }, symbol, None)
    }

    /// The hot path: the payload types that carry almost all the volume
    /// (`trade`, `aggTrade`, diff `depthUpdate`, `bookTicker` with its `e`),
    /// raw or in the combined envelope, parsed in **one** typed pass. The
    /// type is picked from the stream name (or the raw payload's leading
    /// `"e"`) and confirmed by the payload's `e`. `None` means "not this
    /// shape, or not valid": the general path then decodes the frame and
    /// produces exactly the event or error it always did, so this changes
    /// speed only.
    fn fast(&self, frame: &str) -> Option<Event> {
        fn kind_of_e(e: &str) -> Option<K> {
            match e {
                "trade" => Some(K::Trade),
                "aggTrade" => Some(K::Agg),
                "depthUpdate" => Some(K::Depth),
                "bookTicker" => Some(K::Ticker),
                _ => None,
            }
        }
        fn e_is(e: &super::wire::MaybeText<'_>, want: &str) -> bool {
            e.0.as_ref().is_some_and(|t| t.as_str() == want)
        }
        let quoted = |rest: &str| -> Option<usize> {
            let end = rest.find('"')?;
            (!rest[..end].contains('\\')).then_some(end)
        };
        if let Some(rest) = frame.strip_prefix("{\"stream\":\"") {
            let stream = &rest[..quoted(rest)?];
            let cx = Cx { stream: Some(stream), ..*self };
            let ev = match kind_of_stream(stream)? {
                K::Trade => {
                    if let Some(w) = scan::combined(frame, scan::trade) {
                        return cx.trade_event(w).ok();
                    }
                    let env: Env<'_, TradeW<'_>> = parse(frame).ok()?;
                    if !e_is(&env.data.e, "trade") {
                        return None;
                    }
                    cx.trade_event(env.data)
                }
                K::Agg => {
                    if let Some(w) = scan::combined(frame, scan::agg_trade) {
                        return cx.agg_trade_event(w).ok();
                    }
                    let env: Env<'_, AggTradeW<'_>> = parse(frame).ok()?;
                    if !e_is(&env.data.e, "aggTrade") {
                        return None;
                    }
                    cx.agg_trade_event(env.data)
                }
                K::Depth => {
                    if let Some(w) = scan::combined(frame, scan::depth) {
                        return cx.depth_event(w).ok();
                    }
                    let env: Env<'_, DepthW<'_>> = parse(frame).ok()?;
                    if !e_is(&env.data.e, "depthUpdate") {
                        return None;
                    }
                    cx.depth_event(env.data)
                }
                K::Ticker => {
                    if let Some(w) = scan::combined(frame, scan::book_ticker) {
                        return cx.book_ticker_event(w).ok();
                    }
                    let env: Env<'_, BookTickerW<'_>> = parse(frame).ok()?;
                    if !e_is(&env.data.e, "bookTicker") {
                        return None;
                    }
                    cx.book_ticker_event(env.data)
                }
            };
            return ev.ok();
        }
        let rest = frame.strip_prefix("{\"e\":\"")?;
        let ev = match kind_of_e(&rest[..quoted(rest)?])? {
            K::Trade => match scan::raw(frame, scan::trade) {
                Some(w) => self.trade_event(w),
                None => self.trade_event(parse(frame).ok()?),
            },
            K::Agg => self.agg_trade_event(parse(frame).ok()?),
            K::Depth => self.depth_event(parse(frame).ok()?),
            K::Ticker => self.book_ticker_event(parse(frame).ok()?),
        };
        ev.ok()
    }

    fn trade(&self, text: &str) -> Result<Event, DecodeError> {
        let w: TradeW<'_> = parse(text).map_err(|r| self.invalid("trade", r))?;
        self.trade_event(w)
    }

    fn trade_event(&self, w: TradeW<'_>) -> Result<Event, DecodeError> {
        const W: &str = "trade";
        let side = taker_side(w.side.as_ref().map(|s| s.as_str()), w.m).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.trade_time.or(w.event_time), W)?;
        Ok(self.event(
            EventKind::Trade(Trade::new(w.t.0, w.p.0, w.q.0, side)),
            Some(w.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }

    fn agg_trade(&self, text: &str) -> Result<Event, DecodeError> {
        let w: AggTradeW<'_> = parse(text).map_err(|r| self.invalid("aggTrade", r))?;
        self.agg_trade_event(w)
    }

    fn agg_trade_event(&self, w: AggTradeW<'_>) -> Result<Event, DecodeError> {
        const W: &str = "aggTrade";
        let side = taker_side(None, Some(w.m)).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.trade_time.or(w.event_time), W)?;
        Ok(self.event(
            EventKind::AggTrade(AggTrade {
                trade_id: w.a.to_string(),
                price: w.p.0,
                qty: w.q.0,
                side,
                first_trade_id: w.f.to_string(),
                last_trade_id: w.l.to_string(),
            }),
            Some(w.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }

    fn depth_update(&self, text: &str) -> Result<Event, DecodeError> {
        let w: DepthW<'_> = parse(text).map_err(|r| self.invalid("depthUpdate", r))?;
        self.depth_event(w)
    }

    fn depth_event(&self, w: DepthW<'_>) -> Result<Event, DecodeError> {
        const W: &str = "depthUpdate";
        let ts = self.ms(w.tx_time.or(w.event_time), W)?;
        let symbol = Some(w.s.as_str().to_ascii_uppercase());
        // Futures partial depth has the diff's shape; only the stream name tells.
        let kind = if self.stream.is_some_and(is_partial_stream) {
            EventKind::BookSnapshot(BookSnapshot { last_update_id: w.u, bids: levels(w.b), asks: levels(w.a) })
        } else {
            EventKind::BookDelta(BookDelta {
                first_update_id: w.U,
                last_update_id: w.u,
                prev_update_id: w.pu.and_then(|pu| u64::try_from(pu).ok()),
                bids: levels(w.b),
                asks: levels(w.a),
            })
        };
        Ok(self.event(kind, symbol, ts))
    }

    fn partial_depth(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "partial depth";
        let Some(stream) = self.stream else {
            return Err(DecodeError::PartialDepthWithoutStream { payload: self.frame.to_owned() });
        };
        let symbol = stream.split('@').next().filter(|s| !s.is_empty()).map(str::to_ascii_uppercase);
        if symbol.is_none() {
            return Err(self.invalid(W, format!("no symbol in stream name {stream:?}")));
        }
        let w: PartialDepthW = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.tx_time.or(w.event_time), W)?;
        Ok(self.event(
            EventKind::BookSnapshot(BookSnapshot {
                last_update_id: w.last_update_id,
                bids: levels(w.bids),
                asks: levels(w.asks),
            }),
            symbol,
            ts,
        ))
    }

    fn book_ticker(&self, text: &str) -> Result<Event, DecodeError> {
        let w: BookTickerW<'_> = parse(text).map_err(|r| self.invalid("bookTicker", r))?;
        self.book_ticker_event(w)
    }

    fn book_ticker_event(&self, w: BookTickerW<'_>) -> Result<Event, DecodeError> {
        const W: &str = "bookTicker";
        let ts = self.ms(w.tx_time.or(w.event_time), W)?;
        Ok(self.event(
            EventKind::TopOfBook(TopOfBook {
                update_id: w.u,
                bid_price: w.b.0,
                bid_qty: w.B.0,
                ask_price: w.a.0,
                ask_qty: w.A.0,
            }),
            Some(w.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }

    fn ticker(&self, text: &str, window: &str) -> Result<Event, DecodeError> {
        const W: &str = "ticker";
        let w: TickerW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let options = self.market == Market::Options;
        let (volume, quote_volume, bid, ask) =
            if options { (w.V.or(w.v), w.A.or(w.q), w.bo, w.ao) } else { (w.v, w.q, w.b, w.a) };
        let volume = volume.ok_or_else(|| self.invalid(W, "missing field `v` (volume)".into()))?;
        let quote_volume = quote_volume.ok_or_else(|| self.invalid(W, "missing field `q` (quote volume)".into()))?;
        let ts = self.ms(w.event_time, W)?;
        Ok(self.event(
            EventKind::Ticker(Box::new(Ticker {
                window: window.to_owned(),
                open: Some(w.o.0),
                high: w.h.0,
                low: w.l.0,
                last_price: w.c.0,
                volume: volume.0,
                quote_volume: quote_volume.0,
                price_change: w.p.map(|d| d.0),
                bid_price: bid.map(|d| d.0),
                ask_price: ask.map(|d| d.0),
                price_change_pct: None,
            })),
            Some(w.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }

    fn kline(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "kline";
        let w: KlineW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.event_time, W)?;
        let k = w.k;
        Ok(self.event(
            EventKind::Kline(Box::new(Kline {
                interval: k.i.as_str().to_owned(),
                open_time: self.ms_required(k.t, W)?,
                close_time: self.ms_required(k.T, W)?,
                open: k.o.0,
                high: k.h.0,
                low: k.l.0,
                close: k.c.0,
                volume: k.v.0,
                quote_volume: k.q.0,
                trades: Some(k.n),
                closed: k.x,
            })),
            Some(w.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }

    fn avg_price(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "avgPrice";
        let w: AvgPriceW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.event_time, W)?;
        Ok(self.event(
            EventKind::AvgPrice(AvgPrice { interval: w.i.as_str().to_owned(), price: w.w.0 }),
            Some(w.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }

    fn mark_price(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "markPriceUpdate";
        let w: MarkPriceW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.event_time, W)?;
        let next_funding_ts = self.ms(w.T.filter(|t| *t > 0), W)?;
        Ok(self.event(
            EventKind::MarkPrice(Box::new(MarkPrice::new(w.p.0, w.i.0, w.r.0, next_funding_ts))),
            Some(w.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }

    fn open_interest(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "openInterest";
        let w: OpenInterestW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let ts = self.ms(w.event_time, W)?;
        Ok(self.event(
            EventKind::OpenInterest(OpenInterest::new(w.o.0, w.h.0)),
            Some(w.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }

    fn force_order(&self, text: &str) -> Result<Event, DecodeError> {
        const W: &str = "forceOrder";
        let w: ForceOrderW<'_> = parse(text).map_err(|r| self.invalid(W, r))?;
        let side = match w.o.S.as_str() {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            other => return Err(self.invalid(W, format!("unknown side S={other:?}"))),
        };
        let ts = self.ms(w.event_time, W)?;
        Ok(self.event(
            EventKind::Liquidation(Liquidation { side, price: w.o.p.0, qty: w.o.q.0 }),
            Some(w.o.s.as_str().to_ascii_uppercase()),
            ts,
        ))
    }
}

/// Typed payloads read with the validating scanner ([`Scan`]) instead of
/// serde_json: the cheapest pass for the hottest payloads. Each reader
/// fills the same wire struct serde would and answers `None` for anything
/// it does not read exactly as serde would (an escape, a repeated or
/// missing field, a number that is not a plain integer, a bad decimal...);
/// the caller then takes the serde path, which decides.
mod scan {
    use std::borrow::Cow;

    use super::super::wire::{
        AggTradeW, AnyId, BookTickerW, Dec, DepthW, Lit, MaybeText, Scan, Text, TradeW, WireLevel,
    };
    use crate::scan::once;

    /// `v` in decimal, as `v.to_string()` writes it, without the formatter.
    pub(super) fn decimal_text(mut v: u64) -> String {
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        loop {
            at -= 1;
            buf[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        // ASCII digits: always UTF-8 (a copy and a short check, where
        // pushing char by char cost ~500 instructions per id).
        String::from_utf8(buf[at..].to_vec()).unwrap_or_default()
    }

    /// A combined frame `{"stream":"…","data":{…}}` whose payload `data`
    /// reads (serde's `Env<T>`: both fields required, once each; other
    /// fields skipped).
    pub(super) fn combined<'a, T>(frame: &'a str, data: fn(&mut Scan<'a>) -> Option<T>) -> Option<T> {
        combined_checked(frame, data, false)
    }

    /// [`combined`] for a frame the engine has not classified: it also
    /// leaves to the general paths any frame with the control fields
    /// classification reads at the top (`id`, `result`, `error`).
    pub(super) fn combined_data<'a, T>(frame: &'a str, data: fn(&mut Scan<'a>) -> Option<T>) -> Option<T> {
        combined_checked(frame, data, true)
    }

    fn combined_checked<'a, T>(frame: &'a str, data: fn(&mut Scan<'a>) -> Option<T>, control: bool) -> Option<T> {
        let mut sc = Scan::new(frame);
        let (mut stream, mut payload) = (false, None);
        sc.object(|sc, key| match key {
            "stream" if !stream => {
                stream = true;
                sc.str().map(drop)
            }
            "data" if payload.is_none() => {
                payload = Some(data(sc)?);
                Some(())
            }
            // Repeats, and the fields the general path's `Head` also reads
            // at the top (where a repeat is an error there).
            "stream" | "data" | "event" | "e" | "s" | "lastUpdateId" | "u" => None,
            "id" | "result" | "error" if control => None,
            _ => sc.skip_value(1),
        })?;
        sc.end()?;
        payload.filter(|_| stream)
    }

    /// Payload fields the general path's `Head` reads but no hot payload has:
    /// the readers leave such payloads to the general path.
    fn head_only(key: &str) -> bool {
        matches!(key, "stream" | "data" | "event" | "lastUpdateId")
    }

    /// A required `bool`.
    fn boolean(sc: &mut Scan<'_>) -> Option<bool> {
        match sc.literal()? {
            Lit::True => Some(true),
            Lit::False => Some(false),
            Lit::Null => None,
        }
    }

    /// An `aggTrade` payload (`e` must be `"aggTrade"`).
    pub(super) fn agg_trade<'a>(sc: &mut Scan<'a>) -> Option<AggTradeW<'a>> {
        let mut seen = 0u32;
        let (mut e, mut event_time, mut trade_time, mut s, mut a, mut p, mut q, mut f, mut l, mut m) =
            (None, None, None, None, None, None, None, None, None, None);
        sc.object(|sc, key| {
            match key {
                "e" => {
                    once(&mut seen, 1)?;
                    e = Some(sc.str()?);
                }
                "E" => {
                    once(&mut seen, 2)?;
                    event_time = opt_int(sc)?;
                }
                "T" => {
                    once(&mut seen, 4)?;
                    trade_time = opt_int(sc)?;
                }
                "s" => {
                    once(&mut seen, 8)?;
                    s = Some(sc.str()?);
                }
                "a" => {
                    once(&mut seen, 16)?;
                    a = Some(sc.uint()?);
                }
                "p" => {
                    once(&mut seen, 32)?;
                    p = Some(sc.dec()?);
                }
                "q" => {
                    once(&mut seen, 64)?;
                    q = Some(sc.dec()?);
                }
                "f" => {
                    once(&mut seen, 128)?;
                    f = Some(sc.int()?);
                }
                "l" => {
                    once(&mut seen, 256)?;
                    l = Some(sc.int()?);
                }
                "m" => {
                    once(&mut seen, 512)?;
                    m = Some(boolean(sc)?);
                }
                "u" => return None,
                k if head_only(k) => return None,
                _ => sc.skip_value(2)?,
            }
            Some(())
        })?;
        if e? != "aggTrade" {
            return None;
        }
        Some(AggTradeW {
            e: MaybeText(Some(Text(Cow::Borrowed("aggTrade")))),
            event_time,
            trade_time,
            s: Text(Cow::Borrowed(s?)),
            a: a?,
            p: p?,
            q: q?,
            f: f?,
            l: l?,
            m: m?,
        })
    }

    /// A `depthUpdate` payload (`e` must be `"depthUpdate"`).
    #[allow(non_snake_case)]
    pub(super) fn depth<'a>(sc: &mut Scan<'a>) -> Option<DepthW<'a>> {
        let mut seen = 0u32;
        let (mut e, mut event_time, mut tx_time, mut s, mut U, mut u, mut pu, mut b, mut a) =
            (None, None, None, None, None, None, None, None, None);
        sc.object(|sc, key| {
            match key {
                "e" => {
                    once(&mut seen, 1)?;
                    e = Some(sc.str()?);
                }
                "E" => {
                    once(&mut seen, 2)?;
                    event_time = opt_int(sc)?;
                }
                "T" => {
                    once(&mut seen, 4)?;
                    tx_time = opt_int(sc)?;
                }
                "s" => {
                    once(&mut seen, 8)?;
                    s = Some(sc.str()?);
                }
                "U" => {
                    once(&mut seen, 16)?;
                    U = Some(sc.uint()?);
                }
                "u" => {
                    once(&mut seen, 32)?;
                    u = Some(sc.uint()?);
                }
                "pu" => {
                    once(&mut seen, 64)?;
                    pu = opt_int(sc)?;
                }
                "b" => {
                    once(&mut seen, 128)?;
                    b = Some(sc.levels(WireLevel)?);
                }
                "a" => {
                    once(&mut seen, 256)?;
                    a = Some(sc.levels(WireLevel)?);
                }
                k if head_only(k) => return None,
                _ => sc.skip_value(2)?,
            }
            Some(())
        })?;
        if e? != "depthUpdate" {
            return None;
        }
        Some(DepthW {
            e: MaybeText(Some(Text(Cow::Borrowed("depthUpdate")))),
            event_time,
            tx_time,
            s: Text(Cow::Borrowed(s?)),
            U: U?,
            u: u?,
            pu,
            b: b?,
            a: a?,
        })
    }

    /// A `bookTicker` payload: futures with `e` (which must be
    /// `"bookTicker"`), or spot without one (which the general path also
    /// decodes as a book ticker: it has `u` and a string `s`, and neither
    /// `e`, `event` nor `lastUpdateId`).
    #[allow(non_snake_case)]
    pub(super) fn book_ticker<'a>(sc: &mut Scan<'a>) -> Option<BookTickerW<'a>> {
        let mut seen = 0u32;
        let (mut e, mut event_time, mut tx_time, mut u, mut s, mut b, mut B, mut a, mut A) =
            (None, None, None, None, None, None, None, None, None);
        sc.object(|sc, key| {
            match key {
                "e" => {
                    once(&mut seen, 1)?;
                    e = Some(sc.str()?);
                }
                "E" => {
                    once(&mut seen, 2)?;
                    event_time = opt_int(sc)?;
                }
                "T" => {
                    once(&mut seen, 4)?;
                    tx_time = opt_int(sc)?;
                }
                "u" => {
                    once(&mut seen, 8)?;
                    u = Some(sc.uint()?);
                }
                "s" => {
                    once(&mut seen, 16)?;
                    s = Some(sc.str()?);
                }
                "b" => {
                    once(&mut seen, 32)?;
                    b = Some(sc.dec()?);
                }
                "B" => {
                    once(&mut seen, 64)?;
                    B = Some(sc.dec()?);
                }
                "a" => {
                    once(&mut seen, 128)?;
                    a = Some(sc.dec()?);
                }
                "A" => {
                    once(&mut seen, 256)?;
                    A = Some(sc.dec()?);
                }
                k if head_only(k) => return None,
                _ => sc.skip_value(2)?,
            }
            Some(())
        })?;
        let e = match e {
            Some("bookTicker") => MaybeText(Some(Text(Cow::Borrowed("bookTicker")))),
            Some(_) => return None,
            None => MaybeText(None),
        };
        Some(BookTickerW { e, event_time, tx_time, u: u?, s: Text(Cow::Borrowed(s?)), b: b?, B: B?, a: a?, A: A? })
    }

    /// A raw payload, the whole frame.
    pub(super) fn raw<'a, T>(frame: &'a str, data: fn(&mut Scan<'a>) -> Option<T>) -> Option<T> {
        let mut sc = Scan::new(frame);
        let v = data(&mut sc)?;
        sc.end()?;
        Some(v)
    }

    /// An `Option<i64>` field: a plain integer or `null`.
    fn opt_int(sc: &mut Scan<'_>) -> Option<Option<i64>> {
        if sc.peek()? == b'n' {
            return (sc.literal()? == Lit::Null).then_some(None);
        }
        sc.int().map(Some)
    }

    /// A `trade` payload (`e` must be `"trade"`, as the hot path checks).
    pub(super) fn trade<'a>(sc: &mut Scan<'a>) -> Option<TradeW<'a>> {
        trade_and_id(sc).map(|(w, _)| w)
    }

    /// [`trade`], and its id as a number (the trade's sequence number).
    pub(super) fn trade_and_id<'a>(sc: &mut Scan<'a>) -> Option<(TradeW<'a>, u64)> {
        let start = sc.position();
        if let Some(found) = spot_trade(sc) {
            return Some(found);
        }
        sc.rewind(start);
        let mut seen = 0u32;
        let (mut e, mut event_time, mut trade_time, mut s, mut t, mut p, mut q, mut m, mut side) =
            (None, None, None, None, None, None, None, None, None);
        sc.object(|sc, key| {
            match key {
                "e" => {
                    once(&mut seen, 1)?;
                    e = Some(sc.str()?);
                }
                "E" => {
                    once(&mut seen, 2)?;
                    event_time = opt_int(sc)?;
                }
                "T" => {
                    once(&mut seen, 4)?;
                    trade_time = opt_int(sc)?;
                }
                "s" => {
                    once(&mut seen, 8)?;
                    s = Some(sc.str()?);
                }
                "t" => {
                    once(&mut seen, 16)?;
                    t = Some(sc.uint()?);
                }
                "p" => {
                    once(&mut seen, 32)?;
                    p = Some(sc.dec()?);
                }
                "q" => {
                    once(&mut seen, 64)?;
                    q = Some(sc.dec()?);
                }
                "m" => {
                    once(&mut seen, 128)?;
                    m = match sc.literal()? {
                        Lit::True => Some(true),
                        Lit::False => Some(false),
                        Lit::Null => None,
                    };
                }
                "S" => {
                    once(&mut seen, 256)?;
                    side = match sc.peek()? {
                        b'n' => (sc.literal()? == Lit::Null).then_some(None)?,
                        _ => Some(sc.str()?),
                    };
                }
                "u" => return None,
                k if head_only(k) => return None,
                _ => sc.skip_value(2)?,
            }
            Some(())
        })?;
        if e? != "trade" {
            return None;
        }
        let t = t?;
        Some((trade_w(event_time, trade_time, s?, t, p?, q?, m, side), t))
    }

    /// A spot trade payload laid out exactly as Binance writes it: compact,
    /// in the documented key order `e E s t p q T m M` (the spot `trade`
    /// fixture, Binance's WebSocket Streams docs), read without matching
    /// keys. Anything else (another order, whitespace, more or fewer
    /// fields, USDⓈ-M's layout) is `None`, and the general loop reads it;
    /// for this layout both give the same.
    pub(super) fn spot_trade<'a>(sc: &mut Scan<'a>) -> Option<(TradeW<'a>, u64)> {
        sc.peek()?;
        sc.expect(r#"{"e":"trade","E":"#)?;
        let event_time = opt_int(sc)?;
        sc.expect(r#","s":"#)?;
        let s = sc.str()?;
        sc.expect(r#","t":"#)?;
        let t = sc.uint()?;
        sc.expect(r#","p":"#)?;
        let p = sc.dec()?;
        sc.expect(r#","q":"#)?;
        let q = sc.dec()?;
        sc.expect(r#","T":"#)?;
        let trade_time = opt_int(sc)?;
        sc.expect(r#","m":"#)?;
        let m = match sc.literal()? {
            Lit::True => Some(true),
            Lit::False => Some(false),
            Lit::Null => None,
        };
        sc.expect(r#","M":"#)?;
        sc.skip_value(2)?;
        sc.expect("}")?;
        Some((trade_w(event_time, trade_time, s, t, p, q, m, None), t))
    }

    #[allow(clippy::too_many_arguments)]
    fn trade_w<'a>(
        event_time: Option<i64>,
        trade_time: Option<i64>,
        s: &'a str,
        t: u64,
        p: Dec,
        q: Dec,
        m: Option<bool>,
        side: Option<&'a str>,
    ) -> TradeW<'a> {
        TradeW {
            e: MaybeText(Some(Text(Cow::Borrowed("trade")))),
            event_time,
            trade_time,
            s: Text(Cow::Borrowed(s)),
            t: AnyId(decimal_text(t)),
            p,
            q,
            m,
            side: side.map(|x| Text(Cow::Borrowed(x))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_and_windows() {
        assert!(is_partial_stream("btcusdt@depth5"));
        assert!(is_partial_stream("btcusdt@depth20@100ms"));
        assert!(is_partial_stream("BTC-250328-80000-C@depth10@100ms"));
        assert!(!is_partial_stream("btcusdt@depth"));
        assert!(!is_partial_stream("btcusdt@depth@100ms"));
        assert!(!is_partial_stream("btcusdt@trade"));
        assert_eq!(ticker_window("24hrTicker"), Some("24h"));
        assert_eq!(ticker_window("24hrMiniTicker"), Some("24h"));
        assert_eq!(ticker_window("1hTicker"), Some("1h"));
        assert_eq!(ticker_window("4hTicker"), Some("4h"));
        assert_eq!(ticker_window("1dTicker"), Some("1d"));
        assert_eq!(ticker_window("bookTicker"), None);
        assert_eq!(ticker_window("hTicker"), None);
        assert_eq!(ticker_window("Ticker"), None);
    }

    #[test]
    fn times_in_ms_or_us() {
        assert_eq!(time_ns(1_700_000_000_123), Some(1_700_000_000_123_000_000));
        assert_eq!(time_ns(1_700_000_000_123_456), Some(1_700_000_000_123_456_000));
        assert_eq!(time_ns(0), Some(0));
        assert_eq!(time_ns(i64::MAX), None);
    }

    #[test]
    fn the_single_pass_agrees_with_the_general_path() {
        let frames = [
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"btcusdt","t":7,"p":"1.5","q":"2","T":2,"m":true}}"#,
            r#"{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"1.5","q":"2","T":2,"m":false}"#,
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":3,"p":"1","q":"2","f":1,"l":2,"T":2,"m":true}}"#,
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[["1","2"]],"a":[]}}"#,
            r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":5,"u":6,"pu":4,"b":[],"a":[["3","0"]]}}"#,
            r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"2","a":"3","A":"4"}}"#,
        ];
        for f in frames {
            let cx = Cx { market: Market::UsdM, received_ns: 9, frame: f, stream: None };
            let fast = cx.fast(f).unwrap_or_else(|| panic!("no fast path for {f}"));
            let mut slow = Vec::new();
            let head: Head<'_> = parse(f).unwrap();
            match (head.stream.0, head.data) {
                (Some(s), Some(d)) => Cx { stream: Some(s.as_str()), ..cx }.payload(d.get(), f, &mut slow).unwrap(),
                _ => cx.object(f, &Head { stream: Default::default(), data: None, ..head }, f, &mut slow).unwrap(),
            }
            assert_eq!(vec![fast], slow, "{f}");
        }
        // Mismatches and invalid payloads fall back to the general path.
        for f in [
            r#"{"stream":"btcusdt@trade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":3,"p":"1","q":"2","f":1,"l":2,"T":2,"m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"x","q":"2","T":2,"m":true}}"#,
            r#"{"stream":"btcusdt@depth5","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[],"a":[]}}"#,
            r#"{"stream":"btc\u0075sdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"1","q":"2","T":2,"m":true}}"#,
        ] {
            let cx = Cx { market: Market::Spot, received_ns: 9, frame: f, stream: None };
            assert!(cx.fast(f).is_none(), "{f}");
        }
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/");

    /// Every Binance fixture, whole and (for `.jsonl`) line by line, and each
    /// payload also inside a combined envelope under stream names of every kind.
    fn corpus() -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    walk(&p, out);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                if p.extension().is_some_and(|x| x == "jsonl") {
                    out.extend(text.lines().map(str::to_string));
                }
                out.push(text);
            }
        }
        let mut files = Vec::new();
        for dir in ["binance_spot", "binance_futures"] {
            walk(std::path::Path::new(&format!("{FIXTURES}{dir}")), &mut files);
        }
        assert!(files.len() > 100, "fixtures missing: {}", files.len());
        let mut out = Vec::new();
        for text in files {
            if !text.trim_start().starts_with("{\"stream\"") && text.len() < 8000 {
                for stream in ["x@trade", "x@aggTrade", "x@depth@100ms", "x@depth5", "x@bookTicker"] {
                    out.push(format!("{{\"stream\":\"{stream}\",\"data\":{text}}}"));
                }
            }
            out.push(text);
        }
        out.extend(
            [
                r#"{"stream":"loadusdt@trade","data":{"e":"trade","E":1111111111111111,"s":"LOADUSDT","t":2222222222,"p":"100.00000000","q":"1.00000000","T":1111111111111111,"m":true,"M":true}}"#,
                r#"{"e":"trade","E":1111111111111111,"s":"LOADUSDT","t":2222222222,"p":"100.00000000","q":"1.00000000","T":1111111111111111,"m":true,"M":true}"#,
                r#"{"stream":"btc-1@trade","data":{"e":"trade","E":1,"s":"BTC-1","t":7,"p":"1.5","q":"2","T":2,"S":"SELL"}}"#,
                r#"{"stream":"btc-1@trade","data":{"e":"trade","E":null,"s":"BTC-1","t":7,"p":"1.5","q":"2","T":null,"S":null,"m":null}}"#,
                r#"{"stream":"btc-1@trade","data":{"e":"trade","E":-5,"s":"BTC-1","t":0,"p":"-1.5","q":"2e3","T":9223372036854775807,"m":false}}"#,
                r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":3,"p":"1","q":"2","f":-1,"l":2,"T":2,"m":true}}"#,
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[["1","2"],["1.5","0"]],"a":[]}}"#,
                r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":5,"u":6,"pu":-1,"b":[],"a":[["3","0"]]}}"#,
                r#"{"stream":"btcusdt@depth20@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":5,"u":6,"pu":4,"b":[["2","1"]],"a":[["3","0"]]}}"#,
                r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"2","a":"3","A":"4"}}"#,
                r#"{"stream":"btcusdt@bookTicker","data":{"u":45218734020,"s":"BTCUSDT","b":"67321.44000000","B":"1.20450000","a":"67321.45000000","A":"0.41230000"}}"#,
            ]
            .map(str::to_string),
        );
        out
    }

    /// Single-character edits of `frame` at every position: cut, delete,
    /// insert and replace with bytes that matter to JSON and to decimals.
    fn mutants(frame: &str, f: impl FnMut(&str)) {
        const TOKENS: [&str; 18] =
            ["\"", "\\", ",", "}", "{", "]", "[", " ", "0", "9", "-", ".", "e", "\u{1}", "n", ":", "é", "\"t\":1,"];
        crate::scan::edits(frame, &TOKENS, f);
    }

    /// Insertions and replacements of whole members and elements, which keep
    /// the frame valid JSON at many positions: repeated and extra fields, the
    /// fields that steer the general path, a third element in a level.
    fn member_mutants(frame: &str, f: impl FnMut(&str)) {
        const TOKENS: [&str; 22] = [
            ",\"1\"",
            ",1",
            ",null",
            "\"lastUpdateId\":1,",
            "\"event\":{},",
            "\"event\":1,",
            "\"stream\":\"x\",",
            "\"data\":1,",
            "\"u\":1,",
            "\"u\":null,",
            "\"e\":\"x\",",
            "\"e\":null,",
            "\"s\":\"x\",",
            "\"s\":1,",
            "\"E\":1,",
            "\"T\":null,",
            "\"m\":true,",
            "\"pu\":1,",
            "\"b\":[],",
            "\"a\":[],",
            "\"t\":\"7\",",
            "\"S\":\"BUY\",",
        ];
        crate::scan::edits(frame, &TOKENS, f);
    }

    /// `decode` (hot paths included) gives exactly what the general decoder gives.
    #[track_caller]
    fn agree(market: Market, frame: &str) -> bool {
        let cx = Cx { market, received_ns: 9, frame, stream: None };
        let fast = cx.fast(frame);
        let hit = fast.is_some();
        let general = decode_general(cx, frame);
        assert_eq!(decode(market, frame, 9), general, "decode differs from the general path on {frame:?}");
        if let Some(ev) = fast {
            assert_eq!(Ok(vec![ev]), general, "hot path differs on {frame:?}");
        }
        // The scanner's trade reader, on its own, against serde's.
        if let Some(w) = scan::combined(frame, scan::trade) {
            let env: Env<'_, TradeW<'_>> = parse(frame).unwrap_or_else(|e| panic!("scanner accepted {frame:?}: {e}"));
            let cx = Cx { stream: Some(env.stream.as_str()), ..cx };
            assert_eq!(cx.trade_event(w), cx.trade_event(env.data), "{frame:?}");
        }
        if let Some(w) = scan::raw(frame, scan::trade) {
            let t: TradeW<'_> = parse(frame).unwrap_or_else(|e| panic!("scanner accepted {frame:?}: {e}"));
            assert_eq!(cx.trade_event(w), cx.trade_event(t), "{frame:?}");
        }
        if let Some(w) = scan::combined(frame, scan::agg_trade) {
            let env: Env<'_, AggTradeW<'_>> =
                parse(frame).unwrap_or_else(|e| panic!("scanner accepted {frame:?}: {e}"));
            assert_eq!(cx.agg_trade_event(w), cx.agg_trade_event(env.data), "{frame:?}");
        }
        if let Some(w) = scan::combined(frame, scan::depth) {
            let env: Env<'_, DepthW<'_>> = parse(frame).unwrap_or_else(|e| panic!("scanner accepted {frame:?}: {e}"));
            let cx = Cx { stream: Some(env.stream.as_str()), ..cx };
            assert_eq!(cx.depth_event(w), cx.depth_event(env.data), "{frame:?}");
        }
        if let Some(w) = scan::combined(frame, scan::book_ticker) {
            let env: Env<'_, BookTickerW<'_>> =
                parse(frame).unwrap_or_else(|e| panic!("scanner accepted {frame:?}: {e}"));
            assert_eq!(cx.book_ticker_event(w), cx.book_ticker_event(env.data), "{frame:?}");
        }
        hit
    }

    #[test]
    fn the_spot_trade_layout_is_read_without_matching_keys_and_agrees_with_serde() {
        // The spot trade fixture as the venue sends it (compact), and the
        // simulator's load frame; each alone and in a combined envelope.
        let docs = std::fs::read_to_string(format!("{FIXTURES}binance_spot/trade.docs.json")).unwrap();
        let docs: String = docs.split_whitespace().collect();
        let load = r#"{"e":"trade","E":1111111111111111,"s":"LOADUSDT","t":2222222222,"p":"100.00000000","q":"1.00000000","T":1111111111111111,"m":true,"M":true}"#;
        for data in [docs.as_str(), load] {
            let (w, id) =
                scan::spot_trade(&mut crate::scan::Scan::new(data)).unwrap_or_else(|| panic!("layout missed: {data}"));
            assert_eq!(w.t.0, id.to_string());
            let combined = format!(r#"{{"stream":"x@trade","data":{data}}}"#);
            for frame in [data, combined.as_str()] {
                assert!(agree(Market::Spot, frame), "{frame}");
                // Every mutant: the layout reader, the general loop or serde
                // answers, and whichever does agrees with serde.
                mutants(frame, |m| {
                    agree(Market::Spot, m);
                });
            }
        }
        // Another order is the general loop's (and still read).
        let reordered = r#"{"e":"trade","E":1,"T":2,"s":"BTCUSDT","t":7,"p":"1.5","q":"2","m":true,"M":true}"#;
        assert!(scan::spot_trade(&mut crate::scan::Scan::new(reordered)).is_none());
        assert!(scan::raw(reordered, scan::trade).is_some());
    }

    #[test]
    fn hot_paths_agree_with_the_general_decoder_on_every_fixture_and_its_mutants() {
        let corpus = corpus();
        let mut hits = 0;
        for f in &corpus {
            for m in [Market::Spot, Market::UsdM, Market::Options] {
                hits += usize::from(agree(m, f));
            }
        }
        assert!(hits > 1000, "{hits}");
        let mut taken = 0;
        for f in corpus.iter().filter(|f| f.len() <= 1200) {
            mutants(f, |m| {
                agree(Market::Spot, m);
            });
            taken += 1;
            if taken > 300 {
                break;
            }
        }
        // The hot shapes at every position, always, and each capture's first lines.
        let hot = corpus
            .iter()
            .filter(|f| f.contains("LOADUSDT") || f.contains("btcusdt@"))
            .chain(corpus.iter().filter(|f| f.starts_with("{\"stream\":\"x@") && f.len() < 320))
            .chain(corpus.iter().filter(|f| f.starts_with("{\"stream\"") && f.len() < 400).take(20));
        for f in hot {
            mutants(f, |m| {
                agree(Market::Spot, m);
            });
            member_mutants(f, |m| {
                agree(Market::UsdM, m);
            });
        }
    }

    #[test]
    fn decimal_text_writes_what_to_string_writes() {
        for v in [0, 1, 9, 10, 99, 100, 2_222_222_222, 1 << 53, u64::MAX - 1, u64::MAX] {
            assert_eq!(scan::decimal_text(v), v.to_string());
        }
        let mut v = 1u64;
        while let Some(n) = v.checked_mul(7) {
            assert_eq!(scan::decimal_text(n - 1), (n - 1).to_string());
            v = n;
        }
    }

    #[test]
    fn sides() {
        assert_eq!(taker_side(None, Some(true)), Ok(Side::Sell));
        assert_eq!(taker_side(None, Some(false)), Ok(Side::Buy));
        assert_eq!(taker_side(Some("BUY"), Some(false)), Ok(Side::Buy));
        assert_eq!(taker_side(Some("-1"), None), Ok(Side::Sell));
        assert!(taker_side(Some("UP"), None).is_err());
        assert!(taker_side(None, None).is_err());
    }
}
