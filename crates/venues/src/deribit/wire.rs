//! Deribit payloads as serde types, borrowing from the frame (PROTOCOLS.md
//! §6.2, §6.6).
//!
//! Deribit sends prices and amounts as JSON **numbers** (`92294.5`,
//! `0.00001742`). They are never read through `f64`: [`Num`] takes the
//! number's text exactly as it appears in the frame (a borrowed
//! `RawValue`) and parses it as an exact decimal, so `0.001` stays `0.001`
//! and `10.0` keeps its scale. Exponent forms (`1e-05`) are accepted.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::dec::u64_or_skip;

/// The exact decimal of a JSON number's text (or of a numeric string).
pub(crate) fn decimal_of(text: &str) -> Result<Decimal, String> {
    let t = text.trim();
    let t = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(t);
    let parsed = if t.contains(['e', 'E']) { Decimal::from_scientific(t) } else { Decimal::from_str_exact(t) };
    parsed.map_err(|e| format!("invalid decimal {t:?}: {e}"))
}

/// An exact decimal sent as a JSON number (its text, never an `f64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Num(pub Decimal);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        decimal_of(raw.get()).map(Num).map_err(de::Error::custom)
    }
}

/// A decimal that may be `null`, or a non-numeric marker string (a market
/// order's `"price": "market_price"`): `None` then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptNum(pub Option<Decimal>);

impl<'de> Deserialize<'de> for OptNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OptNum, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        let t = raw.get().trim();
        if t == "null" {
            return Ok(OptNum(None));
        }
        if t.starts_with('"') {
            // A marker string such as "market_price"; a numeric string is read.
            return Ok(OptNum(decimal_of(t).ok()));
        }
        decimal_of(t).map(|v| OptNum(Some(v))).map_err(de::Error::custom)
    }
}

/// An id sent as a string or a number, kept as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdText(pub String);

impl<'de> Deserialize<'de> for IdText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IdText, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        let t = raw.get().trim();
        if let Some(s) = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            if s.contains('\\') {
                let owned: String = serde_json::from_str(t).map_err(de::Error::custom)?;
                return Ok(IdText(owned));
            }
            return Ok(IdText(s.to_string()));
        }
        if t.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            return Ok(IdText(t.to_string()));
        }
        Err(de::Error::custom(format_args!("expected an id, got {t}")))
    }
}

/// Any JSON-RPC frame: a response (`id` and `result` or `error`) or a
/// notification (`method` and `params`).
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// The request id a response answers.
    #[serde(default, deserialize_with = "u64_or_skip")]
    pub id: Option<u64>,
    /// `subscription`, `heartbeat`.
    #[serde(default, borrow)]
    pub method: Option<Cow<'a, str>>,
    /// A notification's parameters.
    #[serde(default, borrow)]
    pub params: Option<Params<'a>>,
    /// A successful response's result.
    #[serde(default, borrow)]
    pub result: Option<&'a RawValue>,
    /// A failed response's error.
    #[serde(default, borrow)]
    pub error: Option<RpcError<'a>>,
}

/// A notification's `params`.
#[derive(Debug, Deserialize)]
pub struct Params<'a> {
    /// The channel of a `subscription` notification.
    #[serde(default, borrow)]
    pub channel: Option<Cow<'a, str>>,
    /// Its payload: an object, or an array (trades).
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
    /// A `heartbeat`'s type: `heartbeat` or `test_request`.
    #[serde(default, borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
}

/// `{"code":10028,"message":"too_many_requests","data":...}`.
#[derive(Debug, Deserialize)]
pub struct RpcError<'a> {
    /// The error code (§6.8).
    #[serde(default)]
    pub code: i64,
    /// The error's name or message.
    #[serde(default, borrow)]
    pub message: Cow<'a, str>,
    /// Details (`{"reason":...,"param":...}`, a string, or `null`).
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
}

/// What to do with a book level (`new`, `change`, `delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new price level.
    New,
    /// A changed amount at a level.
    Change,
    /// A removed level (amount `0`).
    Delete,
}

/// One book level: `["new", price, amount]` (book notifications) or
/// `[price, amount]` (grouped books, REST snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLevel {
    /// The action, when the level has one.
    pub action: Option<Action>,
    /// The price.
    pub price: Decimal,
    /// The amount (0 for `delete`).
    pub amount: Decimal,
}

impl<'de> Deserialize<'de> for WireLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WireLevel, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[action, price, amount] or [price, amount]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireLevel, A::Error> {
                let first: &'de RawValue = seq.next_element()?.ok_or_else(|| de::Error::custom("empty book level"))?;
                let first = first.get().trim();
                let (action, price) = if first.starts_with('"') {
                    let action = match first {
                        "\"new\"" => Action::New,
                        "\"change\"" => Action::Change,
                        "\"delete\"" => Action::Delete,
                        other => return Err(de::Error::custom(format_args!("unknown book action {other}"))),
                    };
                    let price: Num =
                        seq.next_element()?.ok_or_else(|| de::Error::custom("book level without price"))?;
                    (Some(action), price.0)
                } else {
                    (None, decimal_of(first).map_err(de::Error::custom)?)
                };
                let amount: Num = seq.next_element()?.ok_or_else(|| de::Error::custom("book level without amount"))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("book level with extra items"));
                }
                Ok(WireLevel { action, price, amount: amount.0 })
            }
        }
        d.deserialize_seq(V)
    }
}

/// `book.{instrument}.{interval}` and `book.{instrument}.{group}.{depth}.{interval}`
/// data, and the `public/get_order_book` result.
#[derive(Debug, Deserialize)]
pub struct BookW<'a> {
    /// `snapshot` or `change`; absent on grouped books and REST snapshots.
    #[serde(default, borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    /// ms.
    pub timestamp: i64,
    /// The instrument.
    #[serde(borrow)]
    pub instrument_name: Cow<'a, str>,
    /// The book's change id after this message.
    pub change_id: u64,
    /// The previous message's change id (changes only).
    #[serde(default)]
    pub prev_change_id: Option<u64>,
    /// Bid levels.
    pub bids: Vec<WireLevel>,
    /// Ask levels.
    pub asks: Vec<WireLevel>,
}

/// One item of `trades.*` data (an array).
#[derive(Debug, Deserialize)]
pub struct TradeW<'a> {
    /// The venue's trade id (a string).
    pub trade_id: IdText,
    /// The trade's sequence number within its instrument.
    pub trade_seq: u64,
    /// ms.
    pub timestamp: i64,
    /// Price.
    pub price: Num,
    /// Amount: USD (inverse), base coin (linear), contracts (options).
    pub amount: Num,
    /// The taker's direction: `buy` or `sell`.
    #[serde(borrow)]
    pub direction: Cow<'a, str>,
    /// The instrument.
    #[serde(borrow)]
    pub instrument_name: Cow<'a, str>,
    /// Mark price at the trade.
    #[serde(default)]
    pub mark_price: OptNum,
    /// Index price at the trade.
    #[serde(default)]
    pub index_price: OptNum,
    /// Options: the trade's implied volatility.
    #[serde(default)]
    pub iv: OptNum,
    /// `M`, `T` or `MT` on liquidation trades.
    #[serde(default, borrow)]
    pub liquidation: Option<Cow<'a, str>>,
    /// The block trade it belongs to.
    #[serde(default)]
    pub block_trade_id: Option<IdText>,
    /// The combo instrument of which it is a leg.
    #[serde(default)]
    pub combo_id: Option<IdText>,
    /// The combo trade it belongs to.
    #[serde(default)]
    pub combo_trade_id: Option<IdText>,
}

/// `ticker.*` statistics.
#[derive(Debug, Default, Deserialize)]
pub struct StatsW {
    /// 24 h high.
    #[serde(default)]
    pub high: OptNum,
    /// 24 h low.
    #[serde(default)]
    pub low: OptNum,
    /// 24 h change, percent.
    #[serde(default)]
    pub price_change: OptNum,
    /// 24 h volume in the base coin.
    #[serde(default)]
    pub volume: OptNum,
    /// 24 h volume in USD.
    #[serde(default)]
    pub volume_usd: OptNum,
}

/// Options greeks.
#[derive(Debug, Default, Deserialize)]
pub struct GreeksW {
    /// Delta.
    #[serde(default)]
    pub delta: OptNum,
    /// Gamma.
    #[serde(default)]
    pub gamma: OptNum,
    /// Vega.
    #[serde(default)]
    pub vega: OptNum,
    /// Theta.
    #[serde(default)]
    pub theta: OptNum,
    /// Rho.
    #[serde(default)]
    pub rho: OptNum,
}

/// `ticker.{instrument}.{interval}` data.
#[derive(Debug, Deserialize)]
pub struct TickerW<'a> {
    /// ms.
    pub timestamp: i64,
    /// The instrument.
    #[serde(borrow)]
    pub instrument_name: Cow<'a, str>,
    /// 24 h statistics.
    #[serde(default)]
    pub stats: Option<StatsW>,
    /// Last trade price (`null` before the first trade).
    #[serde(default)]
    pub last_price: OptNum,
    /// Mark price.
    #[serde(default)]
    pub mark_price: OptNum,
    /// Index price.
    #[serde(default)]
    pub index_price: OptNum,
    /// Open interest.
    #[serde(default)]
    pub open_interest: OptNum,
    /// Best bid price (`null` or `0` when empty).
    #[serde(default)]
    pub best_bid_price: OptNum,
    /// Best ask price.
    #[serde(default)]
    pub best_ask_price: OptNum,
    /// Perpetuals: current funding.
    #[serde(default)]
    pub current_funding: OptNum,
    /// Perpetuals: funding over 8 h.
    #[serde(default)]
    pub funding_8h: OptNum,
    /// Options: mark IV.
    #[serde(default)]
    pub mark_iv: OptNum,
    /// Options: bid IV.
    #[serde(default)]
    pub bid_iv: OptNum,
    /// Options: ask IV.
    #[serde(default)]
    pub ask_iv: OptNum,
    /// Options: the underlying's price.
    #[serde(default)]
    pub underlying_price: OptNum,
    /// Options: the underlying's name.
    #[serde(default, borrow)]
    pub underlying_index: Option<Cow<'a, str>>,
    /// Options: interest rate.
    #[serde(default)]
    pub interest_rate: OptNum,
    /// Options: greeks.
    #[serde(default)]
    pub greeks: Option<GreeksW>,
}

/// `quote.{instrument}` data.
#[derive(Debug, Deserialize)]
pub struct QuoteW<'a> {
    /// ms.
    pub timestamp: i64,
    /// The instrument.
    #[serde(borrow)]
    pub instrument_name: Cow<'a, str>,
    /// Best bid price (`null` when the side is empty).
    #[serde(default)]
    pub best_bid_price: OptNum,
    /// Amount at the best bid.
    #[serde(default)]
    pub best_bid_amount: OptNum,
    /// Best ask price.
    #[serde(default)]
    pub best_ask_price: OptNum,
    /// Amount at the best ask.
    #[serde(default)]
    pub best_ask_amount: OptNum,
}

/// `chart.trades.{instrument}.{resolution}` data.
#[derive(Debug, Deserialize)]
pub struct ChartW {
    /// The candle's start, ms.
    pub tick: i64,
    /// Open.
    pub open: Num,
    /// High.
    pub high: Num,
    /// Low.
    pub low: Num,
    /// Close (latest).
    pub close: Num,
    /// Volume in the base coin.
    pub volume: Num,
    /// Volume in USD.
    pub cost: Num,
}

/// `perpetual.{instrument}.{interval}` data.
#[derive(Debug, Deserialize)]
pub struct PerpetualW {
    /// ms.
    pub timestamp: i64,
    /// Index price.
    pub index_price: Num,
    /// Current interest (funding).
    #[serde(default)]
    pub interest: OptNum,
}

/// `deribit_price_index.{index}` data.
#[derive(Debug, Deserialize)]
pub struct PriceIndexW<'a> {
    /// ms.
    pub timestamp: i64,
    /// The index value.
    pub price: Num,
    /// `btc_usd`.
    #[serde(borrow)]
    pub index_name: Cow<'a, str>,
}

/// An order (`user.orders.*`, `user.changes.*`, order API results).
#[derive(Debug, Deserialize)]
pub struct OrderW<'a> {
    /// The venue's order id.
    pub order_id: IdText,
    /// The client's label.
    #[serde(default, borrow)]
    pub label: Option<Cow<'a, str>>,
    /// The instrument.
    #[serde(borrow)]
    pub instrument_name: Cow<'a, str>,
    /// `buy` or `sell`.
    #[serde(borrow)]
    pub direction: Cow<'a, str>,
    /// `limit`, `market`, `stop_limit`, ...
    #[serde(borrow)]
    pub order_type: Cow<'a, str>,
    /// `good_til_cancelled`, ...
    #[serde(default, borrow)]
    pub time_in_force: Option<Cow<'a, str>>,
    /// `open`, `filled`, `rejected`, `cancelled`, `untriggered`.
    #[serde(borrow)]
    pub order_state: Cow<'a, str>,
    /// Limit price (`"market_price"` for market orders).
    #[serde(default)]
    pub price: OptNum,
    /// Amount.
    pub amount: Num,
    /// Filled so far.
    #[serde(default)]
    pub filled_amount: OptNum,
    /// Average fill price.
    #[serde(default)]
    pub average_price: OptNum,
    /// Trigger price of a conditional order.
    #[serde(default)]
    pub trigger_price: OptNum,
    /// Reduce only.
    #[serde(default)]
    pub reduce_only: Option<bool>,
    /// Why it was cancelled.
    #[serde(default, borrow)]
    pub cancel_reason: Option<Cow<'a, str>>,
    /// Whether it was edited.
    #[serde(default)]
    pub replaced: Option<bool>,
    /// ms.
    pub last_update_timestamp: i64,
}

/// A fill of one of the account's orders (`user.trades.*`, order results).
#[derive(Debug, Deserialize)]
pub struct UserTradeW<'a> {
    /// The trade id.
    pub trade_id: IdText,
    /// The order id.
    pub order_id: IdText,
    /// The instrument.
    #[serde(borrow)]
    pub instrument_name: Cow<'a, str>,
    /// `buy` or `sell`.
    #[serde(borrow)]
    pub direction: Cow<'a, str>,
    /// Fill price.
    pub price: Num,
    /// Fill amount.
    pub amount: Num,
    /// Fee (negative: a rebate).
    #[serde(default)]
    pub fee: OptNum,
    /// The fee's currency.
    #[serde(default, borrow)]
    pub fee_currency: Option<Cow<'a, str>>,
    /// `M` maker, `T` taker.
    #[serde(default, borrow)]
    pub liquidity: Option<Cow<'a, str>>,
    /// The order's label.
    #[serde(default, borrow)]
    pub label: Option<Cow<'a, str>>,
    /// ms.
    pub timestamp: i64,
}

/// A position (`user.changes.*`).
#[derive(Debug, Deserialize)]
pub struct PositionW<'a> {
    /// The instrument.
    #[serde(borrow)]
    pub instrument_name: Cow<'a, str>,
    /// Signed size (USD for inverse futures, coin for linear, contracts for options).
    pub size: Num,
    /// Average entry price.
    #[serde(default)]
    pub average_price: OptNum,
    /// Unrealized PnL.
    #[serde(default)]
    pub floating_profit_loss: OptNum,
    /// Realized PnL.
    #[serde(default)]
    pub realized_profit_loss: OptNum,
}

/// `user.changes.{...}` data: what one event changed.
#[derive(Debug, Deserialize)]
pub struct ChangesW<'a> {
    /// Orders after the change.
    #[serde(default, borrow)]
    pub orders: Vec<&'a RawValue>,
    /// The trades it made.
    #[serde(default, borrow)]
    pub trades: Vec<&'a RawValue>,
    /// The positions after it.
    #[serde(default, borrow)]
    pub positions: Vec<&'a RawValue>,
}

/// `user.portfolio.{currency}` data (the fields the model keeps).
#[derive(Debug, Deserialize)]
pub struct PortfolioW<'a> {
    /// The currency (`BTC`, `USDC`, ...).
    #[serde(borrow)]
    pub currency: Cow<'a, str>,
    /// The balance.
    pub balance: Num,
    /// Funds available for trading.
    #[serde(default)]
    pub available_funds: OptNum,
    /// Margin balance (equity less unrealized options value).
    #[serde(default)]
    pub margin_balance: OptNum,
}

/// The result of `private/buy`, `private/sell`, `private/edit`.
#[derive(Debug, Deserialize)]
pub struct OrderResultW<'a> {
    /// The order after the request.
    #[serde(borrow)]
    pub order: &'a RawValue,
    /// The trades it made at once.
    #[serde(default, borrow)]
    pub trades: Vec<&'a RawValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn numbers_are_read_from_their_text() {
        let v: Vec<Num> = serde_json::from_str("[0.001, 10.0, 92294.5, 1e-05, 2.5E+3, \"7.25\"]").unwrap();
        let got: Vec<String> = v.iter().map(|n| n.0.to_string()).collect();
        assert_eq!(got, ["0.001", "10.0", "92294.5", "0.00001", "2500", "7.25"]);
        // An f64 would have turned this into 0.0028213400122472976.
        let n: Num = serde_json::from_str("0.0028213400122472977").unwrap();
        assert_eq!(n.0, d("0.0028213400122472977"));
        assert!(serde_json::from_str::<Num>("null").is_err());
        assert!(serde_json::from_str::<Num>("\"market_price\"").is_err());
        let o: Vec<OptNum> = serde_json::from_str("[null, \"market_price\", 3.5]").unwrap();
        assert_eq!(o, [OptNum(None), OptNum(None), OptNum(Some(d("3.5")))]);
    }

    #[test]
    fn levels_with_and_without_actions() {
        let v: Vec<WireLevel> =
            serde_json::from_str(r#"[["new",0.001,2.6],["delete",0.001,0.0],[89532.5,254900.0]]"#).unwrap();
        assert_eq!(v[0], WireLevel { action: Some(Action::New), price: d("0.001"), amount: d("2.6") });
        assert_eq!(v[1].action, Some(Action::Delete));
        assert_eq!(v[2], WireLevel { action: None, price: d("89532.5"), amount: d("254900.0") });
        assert!(serde_json::from_str::<WireLevel>(r#"["moved",1,2]"#).is_err());
        assert!(serde_json::from_str::<WireLevel>(r#"[1]"#).is_err());
        assert!(serde_json::from_str::<WireLevel>(r#"[1,2,3]"#).is_err());
    }

    #[test]
    fn ids_are_strings_or_numbers() {
        let v: Vec<IdText> = serde_json::from_str(r#"["403691824", 43, "a\"b"]"#).unwrap();
        assert_eq!(v, [IdText("403691824".into()), IdText("43".into()), IdText("a\"b".into())]);
        assert!(serde_json::from_str::<IdText>("true").is_err());
    }
}
