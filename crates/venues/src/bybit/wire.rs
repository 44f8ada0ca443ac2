//! Bybit v5 wire types: typed serde structs for the payloads
//! (PROTOCOLS.md §5.5, §5.6), as the venue sends them. Only the fields
//! normalization uses are declared; serde skips the rest. Decimals are
//! parsed exactly from their strings while deserializing ([`Dec`]), so a bad
//! price fails the frame instead of turning into a wrong number.
//!
//! Bybit sends `""` for "no value" in many decimal and time fields
//! (`fundingRate` of a delivery contract, `avgPrice` of an unfilled order,
//! `nextFundingTime`), and times both as numbers (`ts`, `T`) and as strings
//! of digits (`execTime`, `updatedTime`): [`DecOrEmpty`] and [`Ms`] read
//! both.

use std::borrow::Cow;
use std::fmt;

use ferrofeed_model::event::Level;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::value::RawValue;

pub(crate) use crate::dec::{Dec, DecOrEmpty};

/// A time in milliseconds, sent as a number or a string of digits; `""`
/// means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ms(pub(crate) Option<i64>);

impl<'de> Deserialize<'de> for Ms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ms, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Ms;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("milliseconds (number or string of digits)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ms, E> {
                i64::try_from(v).map(|v| Ms(Some(v))).map_err(|_| E::custom(format_args!("time {v} out of range")))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ms, E> {
                Ok(Ms(Some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ms, E> {
                if v.is_empty() {
                    return Ok(Ms(None));
                }
                v.parse::<i64>().map(|v| Ms(Some(v))).map_err(|_| E::custom(format_args!("invalid time {v:?}")))
            }
            fn visit_unit<E>(self) -> Result<Ms, E> {
                Ok(Ms(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An id sent as a string (trade ids are UUIDs on derivatives, digits on
/// spot) or a number; kept as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnyId(pub(crate) String);

impl<'de> Deserialize<'de> for AnyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyId, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AnyId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id (string or number)")
            }
            fn visit_u64<E>(self, v: u64) -> Result<AnyId, E> {
                Ok(AnyId(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<AnyId, E> {
                Ok(AnyId(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<AnyId, E> {
                Ok(AnyId(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A `[price, size]` pair of decimal strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireLevel(pub(crate) Level);

impl<'de> Deserialize<'de> for WireLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WireLevel, D::Error> {
        let (p, q) = <(Dec, Dec)>::deserialize(d)?;
        Ok(WireLevel(Level { price: p.0, qty: q.0 }))
    }
}

/// The envelope of every push: `{"topic","type","ts","cts","data"}` (public)
/// and `{"id","topic","creationTime","data"}` (private).
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(default, borrow)]
    pub topic: Option<Cow<'a, str>>,
    #[serde(default, rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default)]
    pub ts: Ms,
    /// Order book: the matching engine's time (comparable to trade `T`).
    #[serde(default)]
    pub cts: Ms,
    /// Private pushes: when the message was created.
    #[serde(default, rename = "creationTime")]
    pub creation_time: Ms,
    /// The payload (object or array), unparsed.
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
}

/// `orderbook.{depth}.{symbol}` data.
#[derive(Debug, Deserialize)]
pub(crate) struct BookW<'a> {
    #[serde(borrow)]
    pub s: Cow<'a, str>,
    pub b: Vec<WireLevel>,
    pub a: Vec<WireLevel>,
    pub u: u64,
    /// The cross sequence (orders data across depths; not consecutive).
    #[serde(default)]
    #[allow(dead_code)]
    pub seq: Option<u64>,
}

/// One `publicTrade` item.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct TradeW<'a> {
    pub T: i64,
    #[serde(borrow)]
    pub s: Cow<'a, str>,
    /// The taker's side: `Buy`, `Sell`.
    #[serde(borrow)]
    pub S: Cow<'a, str>,
    pub v: Dec,
    pub p: Dec,
    pub i: AnyId,
}

/// `tickers.{symbol}` data: every field optional (a delta sends only what
/// changed; the outer `Option` is presence, `DecOrEmpty` a sent `""`).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TickerW<'a> {
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    pub last_price: Option<DecOrEmpty>,
    pub prev_price24h: Option<DecOrEmpty>,
    pub high_price24h: Option<DecOrEmpty>,
    pub low_price24h: Option<DecOrEmpty>,
    pub volume24h: Option<DecOrEmpty>,
    pub turnover24h: Option<DecOrEmpty>,
    pub bid1_price: Option<DecOrEmpty>,
    pub ask1_price: Option<DecOrEmpty>,
    /// Option tickers name the best bid and ask without the `1`.
    pub bid_price: Option<DecOrEmpty>,
    pub ask_price: Option<DecOrEmpty>,
    pub mark_price: Option<DecOrEmpty>,
    pub index_price: Option<DecOrEmpty>,
    pub funding_rate: Option<DecOrEmpty>,
    pub next_funding_time: Option<Ms>,
    /// Open interest ("Open interest size"; linear: the base coin, inverse:
    /// USD, per bybit-exchange/docs `docs/v5/market/open-interest.mdx`).
    pub open_interest: Option<DecOrEmpty>,
    /// Its value (linear: the quote coin, inverse: the base coin, as the
    /// `docs/v5/market/tickers.mdx` examples show); options send none.
    pub open_interest_value: Option<DecOrEmpty>,
}

/// One `kline` item.
#[derive(Debug, Deserialize)]
pub(crate) struct KlineW<'a> {
    pub start: i64,
    pub end: i64,
    #[serde(borrow)]
    pub interval: Cow<'a, str>,
    pub open: Dec,
    pub close: Dec,
    pub high: Dec,
    pub low: Dec,
    pub volume: Dec,
    pub turnover: Dec,
    pub confirm: bool,
}

/// One `allLiquidation` item (`S` is the liquidated position's side).
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct LiquidationW<'a> {
    pub T: i64,
    #[serde(borrow)]
    pub s: Cow<'a, str>,
    #[serde(borrow)]
    pub S: Cow<'a, str>,
    pub v: Dec,
    pub p: Dec,
}

/// One private `order` item.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderW<'a> {
    #[serde(default, borrow)]
    pub category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    #[serde(borrow)]
    pub order_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub order_link_id: Cow<'a, str>,
    #[serde(borrow)]
    pub side: Cow<'a, str>,
    #[serde(borrow)]
    pub order_type: Cow<'a, str>,
    pub price: DecOrEmpty,
    pub qty: Dec,
    #[serde(default, borrow)]
    pub time_in_force: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub order_status: Cow<'a, str>,
    #[serde(default, borrow)]
    pub reject_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub avg_price: DecOrEmpty,
    pub cum_exec_qty: Dec,
    #[serde(default)]
    pub cum_exec_value: DecOrEmpty,
    #[serde(default)]
    pub trigger_price: DecOrEmpty,
    #[serde(default)]
    pub position_idx: Option<i64>,
    #[serde(default)]
    pub reduce_only: Option<bool>,
    #[serde(default)]
    pub close_on_trigger: Option<bool>,
    #[serde(default)]
    pub updated_time: Ms,
}

/// One private `execution` item.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecutionW<'a> {
    #[serde(default, borrow)]
    pub category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    #[serde(borrow)]
    pub exec_id: Cow<'a, str>,
    pub exec_price: Dec,
    pub exec_qty: Dec,
    #[serde(default, borrow)]
    pub exec_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub order_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub order_link_id: Cow<'a, str>,
    pub order_price: DecOrEmpty,
    pub order_qty: Dec,
    #[serde(borrow)]
    pub side: Cow<'a, str>,
    pub is_maker: bool,
    #[serde(default)]
    pub exec_time: Ms,
    /// The trading fee of this execution (negative: a rebate); taxes listed
    /// in `extraFees` are not part of it.
    #[serde(default)]
    pub exec_fee: DecOrEmpty,
    /// The asset of `execFee` (`""` or absent in older payloads).
    #[serde(default, borrow)]
    pub fee_currency: Option<Cow<'a, str>>,
}

/// One private `position` item.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PositionW<'a> {
    #[serde(default, borrow)]
    pub category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    #[serde(default)]
    pub position_idx: Option<i64>,
    #[serde(default)]
    pub trade_mode: Option<i64>,
    /// `Buy` (long), `Sell` (short), `""` (flat).
    #[serde(borrow)]
    pub side: Cow<'a, str>,
    pub size: Dec,
    /// The average entry price (`avgPrice` in newer payloads).
    #[serde(default, alias = "avgPrice")]
    pub entry_price: DecOrEmpty,
    #[serde(default)]
    pub break_even_price: DecOrEmpty,
    #[serde(default)]
    pub unrealised_pnl: DecOrEmpty,
    #[serde(default)]
    pub cum_realised_pnl: DecOrEmpty,
    #[serde(default)]
    pub position_balance: DecOrEmpty,
    #[serde(default)]
    pub updated_time: Ms,
}

/// One private `wallet` item (one account).
#[derive(Debug, Deserialize)]
pub(crate) struct WalletW<'a> {
    #[serde(borrow)]
    pub coin: Vec<CoinW<'a>>,
}

/// One coin of a `wallet` item.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CoinW<'a> {
    #[serde(borrow)]
    pub coin: Cow<'a, str>,
    #[serde(default)]
    pub wallet_balance: DecOrEmpty,
    #[serde(default)]
    pub locked: DecOrEmpty,
}
