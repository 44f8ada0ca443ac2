//! Deribit frames → normalized [`Event`]s (PROTOCOLS.md §6.6, `docs/events.md`).
//!
//! [`decode`] takes one text frame exactly as received. Only `subscription`
//! notifications carry data; every other frame (answers, heartbeats) is an
//! `unknown` event keeping the frame. Prices and amounts are exact decimals
//! read from the numbers' text ([`super::wire::Num`]); times are ms in the
//! payload and ns in the events.
//!
//! | channel | event(s) | `exchange_ts` from |
//! |---|---|---|
//! | `trades.{instrument or kind.currency}.{interval}` | one `trade` per item (`trade_seq`, `liquidation`, combo and block ids, `iv`, `mark_price`, `index_price` kept) | `timestamp` of each |
//! | `book.{instrument}.{interval}` `snapshot` | `book_snapshot`, `last_update_id` = `change_id` | `timestamp` |
//! | `book.{instrument}.{interval}` `change` | `book_delta`, `first_update_id` = `last_update_id` = `change_id`, `prev_update_id` = `prev_change_id`; `delete` levels have qty `0` | `timestamp` |
//! | `book.{instrument}.{group}.{depth}.{interval}` | `book_snapshot` (every push is the whole grouped book) | `timestamp` |
//! | `ticker.{instrument}.{interval}` | `ticker` (`window: 24h`, no `open`: Deribit sends the change in percent only) when it has the 24 h statistics and a last price; `mark_price` (funding, open interest, options IVs and greeks); `open_interest` when `open_interest` is a number | `timestamp` |
//! | `quote.{instrument}` | `top_of_book`, `update_id` = the quote's `timestamp` in ms (the payload has no id) | `timestamp` |
//! | `chart.trades.{instrument}.{resolution}` | `kline` (`closed: false`: the venue marks no candle final) | `tick` |
//! | `perpetual.{instrument}.{interval}` | `index_price` with `funding_rate` = `interest` | `timestamp` |
//! | `deribit_price_index.{index}` | `index_price`, symbol = the index upper case (`BTC_USD`) | `timestamp` |
//! | `user.orders.*` | `order_update` per order | `last_update_timestamp` |
//! | `user.trades.*` | `user_trade` per item (no `order_qty`: the rows do not carry it) | `timestamp` |
//! | `user.changes.*` | `order_update` per order, `user_trade` per trade (with its order's amount), `position_update` per position | as above; positions: none |
//! | `user.portfolio.*` | `balance_update` with one balance (`wallet_balance` = `balance`, `free` = `available_funds`, `cross_wallet_balance` = `margin_balance`) | none |
//!
//! Amounts keep the venue's unit: USD for inverse futures and perpetuals,
//! the base coin for linear (USDC) instruments, contracts for options.
//! Unknown channels (`deribit_volatility_index`, `platform_state`,
//! `markprice.options`, `incremental_ticker`, ...) are `unknown` events.
//! Malformed JSON, missing required fields and bad numbers are a
//! [`DecodeError`] that keeps the frame; nothing here panics on external
//! input.

use std::collections::HashMap;

use ferrofeed_model::event::{
    Balance, BalanceUpdate, BookDelta, BookSnapshot, Event, EventKind, IndexPrice, Kline, Level, MarkPrice,
    OpenInterest, OrderUpdate, PositionSide, PositionUpdate, Side, Ticker, TopOfBook, Trade, TradeExtra, UserTrade,
    Venue,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::endpoints::Market;
use super::wire::{
    Action, BookW, ChangesW, ChartW, Envelope, OrderW, PerpetualW, PortfolioW, PositionW, PriceIndexW, QuoteW, TickerW,
    TradeW, UserTradeW, WireLevel,
};

pub use crate::error::DecodeError;

/// The one place the JSON parser is called.
pub(crate) fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// ms → ns, refusing values that do not fit.
pub(crate) fn ms_to_ns(ms: i64) -> Option<i64> {
    ms.checked_mul(1_000_000)
}

/// `buy` / `sell`.
pub(crate) fn side_of(direction: &str) -> Option<Side> {
    match direction {
        "buy" => Some(Side::Buy),
        "sell" => Some(Side::Sell),
        _ => None,
    }
}

/// The model's order state of a Deribit order.
pub(crate) fn order_update(w: &OrderW<'_>) -> Result<OrderUpdate, String> {
    let side = side_of(&w.direction).ok_or_else(|| format!("unknown direction {:?}", w.direction))?;
    let filled = w.filled_amount.0.unwrap_or(Decimal::ZERO);
    let state = w.order_state.to_string();
    Ok(OrderUpdate {
        order_id: w.order_id.0.clone(),
        client_order_id: w.label.as_deref().unwrap_or("").to_string(),
        orig_client_order_id: None,
        side,
        order_type: w.order_type.to_string(),
        time_in_force: w.time_in_force.as_deref().map(str::to_string),
        // Deribit reports the state only; an edited open order says so.
        execution_type: if w.replaced == Some(true) && state == "open" { "replaced".into() } else { state.clone() },
        reject_reason: (state == "rejected").then(|| w.cancel_reason.as_deref().unwrap_or("rejected").to_string()),
        status: state,
        price: w.price.0,
        qty: w.amount.0,
        filled_qty: filled,
        avg_price: w.average_price.0.filter(|_| !filled.is_zero()),
        filled_quote_qty: None,
        stop_price: w.trigger_price.0,
        fill: None,
        order_list_id: None,
        reduce_only: w.reduce_only,
        position_side: None,
        close_position: None,
        realized_pnl: None,
        activation_price: None,
        callback_rate: None,
    })
}

/// The model's fill of a Deribit user trade; `order_qty` when known.
pub(crate) fn user_trade(w: &UserTradeW<'_>, order_qty: Option<Decimal>) -> Result<UserTrade, String> {
    let side = side_of(&w.direction).ok_or_else(|| format!("unknown direction {:?}", w.direction))?;
    Ok(UserTrade {
        order_id: w.order_id.0.clone(),
        client_order_id: w.label.as_deref().unwrap_or("").to_string(),
        side,
        trade_id: w.trade_id.0.clone(),
        price: w.price.0,
        qty: w.amount.0,
        maker: w.liquidity.as_deref() == Some("M"),
        order_price: None,
        order_qty,
        fee: w.fee.0,
        fee_asset: w.fee_currency.as_deref().map(str::to_string),
    })
}

fn levels(ls: &[WireLevel], keep_deletes: bool) -> Vec<Level> {
    ls.iter()
        .filter(|l| keep_deletes || l.action != Some(Action::Delete))
        .map(|l| Level { price: l.price, qty: if l.action == Some(Action::Delete) { Decimal::ZERO } else { l.amount } })
        .collect()
}

/// The `book_snapshot` of a `public/get_order_book` result or a book
/// notification's data (`bids`/`asks` as `[price, amount]` or
/// `[action, price, amount]`).
pub(crate) fn book_snapshot(w: &BookW<'_>) -> BookSnapshot {
    BookSnapshot { last_update_id: w.change_id, bids: levels(&w.bids, false), asks: levels(&w.asks, false) }
}

/// A kline interval from a `chart.trades` resolution: minutes (`1` →
/// `1m`, `60` → `1h`) or `1D` → `1d`; and its length in ms.
fn resolution(res: &str) -> Option<(String, i64)> {
    if res.eq_ignore_ascii_case("1D") {
        return Some(("1d".into(), 86_400_000));
    }
    let m: i64 = res.parse().ok().filter(|m| *m > 0)?;
    let name = if m % 60 == 0 { format!("{}h", m / 60) } else { format!("{m}m") };
    Some((name, m * 60_000))
}

struct Cx<'f> {
    market: Market,
    frame: &'f str,
    received_ns: i64,
}

impl Cx<'_> {
    fn invalid(&self, what: &'static str, reason: impl Into<String>) -> DecodeError {
        DecodeError::Invalid { what, reason: reason.into(), payload: self.frame.to_owned() }
    }

    fn ts(&self, what: &'static str, ms: i64) -> Result<Option<i64>, DecodeError> {
        ms_to_ns(ms).map(Some).ok_or_else(|| self.invalid(what, format!("timestamp {ms} out of range")))
    }

    fn event(&self, market: Market, kind: EventKind, symbol: Option<String>, exchange_ts: Option<i64>) -> Event {
        Event {
            kind,
            venue: Venue::Deribit,
            market: market.market_type(),
            symbol,
            exchange_ts,
            receive_ts: self.received_ns,
        }
    }

    fn unknown(&self, raw: &str, symbol: Option<String>) -> Event {
        self.event(self.market, EventKind::Unknown { raw: raw.to_owned() }, symbol, None)
    }
}

/// Decodes one frame received at `received_ns` (ns since the epoch) on a
/// connection of `market`, appending its events to `out`.
///
/// Public data is reported under `market` (the subscription's); private
/// items under the market of their instrument.
pub fn decode(market: Market, frame: &str, received_ns: i64, out: &mut Vec<Event>) -> Result<(), DecodeError> {
    let env: Envelope<'_> =
        parse(frame).map_err(|reason| DecodeError::Malformed { reason, payload: frame.to_owned() })?;
    let cx = Cx { market, frame, received_ns };
    let (Some("subscription"), Some(params)) = (env.method.as_deref(), env.params.as_ref()) else {
        out.push(cx.unknown(frame, None));
        return Ok(());
    };
    let (Some(channel), Some(data)) = (params.channel.as_deref(), params.data) else {
        return Err(cx.invalid("subscription", "notification without channel or data"));
    };
    let mut parts = channel.split('.');
    let kind = parts.next().unwrap_or("");
    let text = data.get();
    match kind {
        "trades" => trades(&cx, text, out),
        "book" => book(&cx, channel, text, out),
        "ticker" => ticker(&cx, text, out),
        "quote" => quote(&cx, text, out),
        "chart" => chart(&cx, channel, text, out),
        "perpetual" => {
            const W: &str = "perpetual";
            let w: PerpetualW = parse(text).map_err(|r| cx.invalid(W, r))?;
            let symbol = channel.split('.').nth(1).map(str::to_ascii_uppercase);
            let ts = cx.ts(W, w.timestamp)?;
            let kind = EventKind::IndexPrice(IndexPrice { price: w.index_price.0, funding_rate: w.interest.0 });
            out.push(cx.event(market, kind, symbol, ts));
            Ok(())
        }
        "deribit_price_index" => {
            const W: &str = "deribit_price_index";
            let w: PriceIndexW<'_> = parse(text).map_err(|r| cx.invalid(W, r))?;
            let ts = cx.ts(W, w.timestamp)?;
            let kind = EventKind::IndexPrice(IndexPrice { price: w.price.0, funding_rate: None });
            out.push(cx.event(market, kind, Some(w.index_name.to_ascii_uppercase()), ts));
            Ok(())
        }
        "user" => user(&cx, channel, text, out),
        _ => {
            out.push(cx.unknown(frame, None));
            Ok(())
        }
    }
}

fn trades(cx: &Cx<'_>, text: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
    const W: &str = "trades";
    let items: Vec<TradeW<'_>> = parse(text).map_err(|r| cx.invalid(W, r))?;
    for w in items {
        let side =
            side_of(&w.direction).ok_or_else(|| cx.invalid(W, format!("unknown direction {:?}", w.direction)))?;
        let ts = cx.ts(W, w.timestamp)?;
        let extra = TradeExtra {
            liquidation: w.liquidation.as_deref().map(str::to_string),
            block_trade_id: w.block_trade_id.map(|i| i.0),
            combo_id: w.combo_id.map(|i| i.0),
            combo_trade_id: w.combo_trade_id.map(|i| i.0),
            iv: w.iv.0,
            mark_price: w.mark_price.0,
            index_price: w.index_price.0,
        };
        let trade = Trade {
            trade_seq: Some(w.trade_seq),
            extra: (!extra.is_empty()).then(|| Box::new(extra)),
            ..Trade::new(w.trade_id.0, w.price.0, w.amount.0, side)
        };
        out.push(cx.event(cx.market, EventKind::Trade(trade), Some(w.instrument_name.to_ascii_uppercase()), ts));
    }
    Ok(())
}

fn book(cx: &Cx<'_>, channel: &str, text: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
    const W: &str = "book";
    let w: BookW<'_> = parse(text).map_err(|r| cx.invalid(W, r))?;
    let ts = cx.ts(W, w.timestamp)?;
    let symbol = Some(w.instrument_name.to_ascii_uppercase());
    let grouped = channel.split('.').count() == 5;
    let kind = match (grouped, w.kind.as_deref(), w.prev_change_id) {
        (true, _, _) | (false, Some("snapshot"), _) => EventKind::BookSnapshot(book_snapshot(&w)),
        (false, Some("change"), Some(prev)) => EventKind::BookDelta(BookDelta {
            first_update_id: w.change_id,
            last_update_id: w.change_id,
            prev_update_id: Some(prev),
            bids: levels(&w.bids, true),
            asks: levels(&w.asks, true),
        }),
        (false, Some("change"), None) => return Err(cx.invalid(W, "change without prev_change_id")),
        (false, other, _) => return Err(cx.invalid(W, format!("unknown book type {other:?}"))),
    };
    out.push(cx.event(cx.market, kind, symbol, ts));
    Ok(())
}

fn ticker(cx: &Cx<'_>, text: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
    const W: &str = "ticker";
    let w: TickerW<'_> = parse(text).map_err(|r| cx.invalid(W, r))?;
    let ts = cx.ts(W, w.timestamp)?;
    let symbol = Some(w.instrument_name.to_ascii_uppercase());
    let before = out.len();
    let stats = w.stats.unwrap_or_default();
    if let (Some(high), Some(low), Some(last_price), Some(volume), Some(quote_volume)) =
        (stats.high.0, stats.low.0, w.last_price.0, stats.volume.0, stats.volume_usd.0)
    {
        let t = Ticker {
            window: "24h".into(),
            open: None,
            high,
            low,
            last_price,
            volume,
            quote_volume,
            price_change: None,
            bid_price: w.best_bid_price.0,
            ask_price: w.best_ask_price.0,
            price_change_pct: stats.price_change.0,
        };
        out.push(cx.event(cx.market, EventKind::Ticker(Box::new(t)), symbol.clone(), ts));
    }
    if let (Some(mark), Some(index)) = (w.mark_price.0, w.index_price.0) {
        let greeks = w.greeks.unwrap_or_default();
        let m = MarkPrice {
            // Perpetuals only; dated futures and options send none.
            funding_8h: w.funding_8h.0,
            open_interest: w.open_interest.0,
            mark_iv: w.mark_iv.0,
            bid_iv: w.bid_iv.0,
            ask_iv: w.ask_iv.0,
            underlying_price: w.underlying_price.0,
            underlying_index: w.underlying_index.as_deref().map(str::to_string),
            interest_rate: w.interest_rate.0,
            delta: greeks.delta.0,
            gamma: greeks.gamma.0,
            vega: greeks.vega.0,
            theta: greeks.theta.0,
            rho: greeks.rho.0,
            ..MarkPrice::new(mark, index, w.current_funding.0, None)
        };
        out.push(cx.event(cx.market, EventKind::MarkPrice(Box::new(m)), symbol.clone(), ts));
    }
    // Every push is the whole ticker, so every push reports the open
    // interest: USD for inverse futures and perpetuals, the base coin for
    // linear instruments and options (Deribit API v2, `open_interest`: "The
    // total amount of outstanding contracts in the corresponding amount
    // units"). `mark_price.open_interest` keeps the same value for readers of
    // the older lines. Deribit sends no value in money, so none is given.
    if let Some(open_interest) = w.open_interest.0 {
        let kind = EventKind::OpenInterest(OpenInterest::new(open_interest, None));
        out.push(cx.event(cx.market, kind, symbol.clone(), ts));
    }
    if out.len() == before {
        out.push(cx.unknown(cx.frame, symbol));
    }
    Ok(())
}

fn quote(cx: &Cx<'_>, text: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
    const W: &str = "quote";
    let w: QuoteW<'_> = parse(text).map_err(|r| cx.invalid(W, r))?;
    let ts = cx.ts(W, w.timestamp)?;
    let symbol = Some(w.instrument_name.to_ascii_uppercase());
    match (w.best_bid_price.0, w.best_bid_amount.0, w.best_ask_price.0, w.best_ask_amount.0, u64::try_from(w.timestamp))
    {
        (Some(bid_price), Some(bid_qty), Some(ask_price), Some(ask_qty), Ok(update_id)) => {
            let t = TopOfBook { update_id, bid_price, bid_qty, ask_price, ask_qty };
            out.push(cx.event(cx.market, EventKind::TopOfBook(t), symbol, ts));
        }
        // A side is empty: the model's top of book has both.
        _ => out.push(cx.unknown(cx.frame, symbol)),
    }
    Ok(())
}

fn chart(cx: &Cx<'_>, channel: &str, text: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
    const W: &str = "chart.trades";
    // chart.trades.{instrument}.{resolution}
    let parts: Vec<&str> = channel.split('.').collect();
    let [_, "trades", instrument, res] = parts[..] else {
        out.push(cx.unknown(cx.frame, None));
        return Ok(());
    };
    let (interval, len_ms) = resolution(res).ok_or_else(|| cx.invalid(W, format!("unknown resolution {res:?}")))?;
    let w: ChartW = parse(text).map_err(|r| cx.invalid(W, r))?;
    let open_time = cx.ts(W, w.tick)?.unwrap_or_default();
    let close_time =
        w.tick.checked_add(len_ms - 1).and_then(ms_to_ns).ok_or_else(|| cx.invalid(W, "tick out of range"))?;
    let k = Kline {
        interval,
        open_time,
        close_time,
        open: w.open.0,
        high: w.high.0,
        low: w.low.0,
        close: w.close.0,
        volume: w.volume.0,
        quote_volume: w.cost.0,
        trades: None,
        closed: false,
    };
    out.push(cx.event(
        cx.market,
        EventKind::Kline(Box::new(k)),
        Some(instrument.to_ascii_uppercase()),
        Some(open_time),
    ));
    Ok(())
}

fn one_or_many(text: &str) -> Result<Vec<&RawValue>, String> {
    if text.trim_start().starts_with('[') { parse(text) } else { parse::<&RawValue>(text).map(|v| vec![v]) }
}

fn push_order(cx: &Cx<'_>, text: &str, out: &mut Vec<Event>) -> Result<Option<(String, Decimal)>, DecodeError> {
    const W: &str = "user.orders";
    let w: OrderW<'_> = parse(text).map_err(|r| cx.invalid(W, r))?;
    let o = order_update(&w).map_err(|r| cx.invalid(W, r))?;
    let ts = cx.ts(W, w.last_update_timestamp)?;
    let market = Market::of_instrument(&w.instrument_name);
    let key = (o.order_id.clone(), o.qty);
    out.push(cx.event(market, EventKind::OrderUpdate(Box::new(o)), Some(w.instrument_name.to_ascii_uppercase()), ts));
    Ok(Some(key))
}

fn push_trade(
    cx: &Cx<'_>,
    text: &str,
    amounts: &HashMap<String, Decimal>,
    out: &mut Vec<Event>,
) -> Result<(), DecodeError> {
    const W: &str = "user.trades";
    let w: UserTradeW<'_> = parse(text).map_err(|r| cx.invalid(W, r))?;
    let t = user_trade(&w, amounts.get(&w.order_id.0).copied()).map_err(|r| cx.invalid(W, r))?;
    let ts = cx.ts(W, w.timestamp)?;
    let market = Market::of_instrument(&w.instrument_name);
    out.push(cx.event(market, EventKind::UserTrade(Box::new(t)), Some(w.instrument_name.to_ascii_uppercase()), ts));
    Ok(())
}

fn user(cx: &Cx<'_>, channel: &str, text: &str, out: &mut Vec<Event>) -> Result<(), DecodeError> {
    let sub = channel.split('.').nth(1).unwrap_or("");
    match sub {
        "orders" => {
            for item in one_or_many(text).map_err(|r| cx.invalid("user.orders", r))? {
                push_order(cx, item.get(), out)?;
            }
        }
        "trades" => {
            let none = HashMap::new();
            for item in one_or_many(text).map_err(|r| cx.invalid("user.trades", r))? {
                push_trade(cx, item.get(), &none, out)?;
            }
        }
        "changes" => {
            const W: &str = "user.changes";
            let w: ChangesW<'_> = parse(text).map_err(|r| cx.invalid(W, r))?;
            let mut amounts = HashMap::new();
            for o in &w.orders {
                if let Some((id, qty)) = push_order(cx, o.get(), out)? {
                    amounts.insert(id, qty);
                }
            }
            for t in &w.trades {
                push_trade(cx, t.get(), &amounts, out)?;
            }
            for p in &w.positions {
                let p: PositionW<'_> = parse(p.get()).map_err(|r| cx.invalid(W, r))?;
                let u = PositionUpdate {
                    reason: None,
                    position_side: PositionSide::Both,
                    amount: p.size.0,
                    entry_price: p.average_price.0,
                    breakeven_price: None,
                    unrealized_pnl: p.floating_profit_loss.0,
                    realized_pnl: p.realized_profit_loss.0,
                    margin_type: None,
                    isolated_wallet: None,
                };
                let market = Market::of_instrument(&p.instrument_name);
                out.push(cx.event(
                    market,
                    EventKind::PositionUpdate(Box::new(u)),
                    Some(p.instrument_name.to_ascii_uppercase()),
                    None,
                ));
            }
        }
        "portfolio" => {
            const W: &str = "user.portfolio";
            let w: PortfolioW<'_> = parse(text).map_err(|r| cx.invalid(W, r))?;
            let b = Balance {
                asset: w.currency.to_ascii_uppercase(),
                free: w.available_funds.0,
                locked: None,
                delta: None,
                locked_delta: None,
                wallet_balance: Some(w.balance.0),
                cross_wallet_balance: w.margin_balance.0,
            };
            out.push(cx.event(
                cx.market,
                EventKind::BalanceUpdate(BalanceUpdate { reason: None, balances: vec![b] }),
                None,
                None,
            ));
        }
        _ => out.push(cx.unknown(cx.frame, None)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions() {
        assert_eq!(resolution("1"), Some(("1m".into(), 60_000)));
        assert_eq!(resolution("60"), Some(("1h".into(), 3_600_000)));
        assert_eq!(resolution("720"), Some(("12h".into(), 43_200_000)));
        assert_eq!(resolution("1D"), Some(("1d".into(), 86_400_000)));
        assert_eq!(resolution("0"), None);
        assert_eq!(resolution("x"), None);
    }

    #[test]
    fn answers_are_unknown_and_garbage_is_an_error_keeping_the_frame() {
        let mut out = Vec::new();
        decode(Market::Inverse, r#"{"jsonrpc":"2.0","id":1,"result":"ok"}"#, 5, &mut out).unwrap();
        assert!(matches!(&out[0].kind, EventKind::Unknown { raw } if raw.contains("\"ok\"")));
        let e = decode(Market::Inverse, "{oops", 5, &mut out).unwrap_err();
        assert_eq!(e.payload(), "{oops");
        let bad =
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.X.raw","data":[{"trade_seq":1}]}}"#;
        let e = decode(Market::Inverse, bad, 5, &mut out).unwrap_err();
        assert!(matches!(&e, DecodeError::Invalid { what: "trades", .. }), "{e}");
        assert_eq!(e.payload(), bad);
    }
}
