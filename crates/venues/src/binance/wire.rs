//! Binance wire types: typed serde structs for the market-data payloads, as
//! the venue sends them (PROTOCOLS.md §1–§4), raw and in the combined
//! `{"stream","data"}` envelope. The user-data payloads are in `user.rs`; the
//! WebSocket-API wrapping of user data (`{"subscriptionId","event"}`) is
//! recognised here, in [`Head`].
//!
//! Strings borrow from the frame where JSON allows it ([`Text`]); decimals are
//! parsed exactly from their strings while deserializing ([`Dec`]), so a bad
//! price fails the frame instead of turning into a wrong number. Only the
//! fields normalization uses are declared; serde skips the rest.
//!
//! Nothing here names a JSON library: every struct is plain serde, so the
//! parser (serde_json today, see `normalize::parse`) can be swapped.

use std::borrow::Cow;
use std::fmt;

use ferrofeed_model::event::Level;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON string borrowed from the frame when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

/// A string if the value is one, `None` for any other value (skipped). For
/// header fields of payloads we may not know (`e`, `s`).
#[derive(Debug, Default)]
pub(crate) struct MaybeText<'a>(pub(crate) Option<Text<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MaybeText<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<MaybeText<'de>, E> {
                Ok(MaybeText(Some(Text(Cow::Borrowed(v)))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeText<'de>, E> {
                Ok(MaybeText(Some(Text(Cow::Owned(v.to_owned())))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeText<'de>, E> {
                Ok(MaybeText(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeText<'de>, E> {
                Ok(MaybeText(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeText<'de>, E> {
                Ok(MaybeText(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeText<'de>, E> {
                Ok(MaybeText(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeText<'de>, E> {
                Ok(MaybeText(None))
            }
            fn visit_none<E>(self) -> Result<MaybeText<'de>, E> {
                Ok(MaybeText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeText<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeText<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeText(None))
            }
        }
        d.deserialize_any(V)
    }
}

pub(crate) use crate::dec::{Dec, DecOrEmpty};
pub(crate) use crate::scan::{Lit, Scan};

/// A `[price, qty]` pair of decimal strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireLevel(pub(crate) Level);

impl<'de> Deserialize<'de> for WireLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WireLevel, D::Error> {
        let (p, q) = <(Dec, Dec)>::deserialize(d)?;
        Ok(WireLevel(Level { price: p.0, qty: q.0 }))
    }
}

/// A trade id sent as a number (spot, futures, current options) or a string
/// (older options payloads); kept as its decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnyId(pub(crate) String);

impl<'de> Deserialize<'de> for AnyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyId, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AnyId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id (number or string)")
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

/// The top level of a frame: the combined envelope's `stream`/`data`, and the
/// fields that tell payload types apart when the frame is a raw payload.
#[derive(Debug, Deserialize)]
pub(crate) struct Head<'a> {
    /// Combined envelope: the stream name.
    #[serde(default, borrow)]
    pub stream: MaybeText<'a>,
    /// Combined envelope: the payload (object or array), unparsed.
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
    /// WebSocket-API user data (`{"subscriptionId":N,"event":{...}}`, and
    /// `{"event":{"e":"serverShutdown"}}`): the payload, unparsed.
    #[serde(default, borrow)]
    pub event: Option<&'a RawValue>,
    /// Event type; absent on spot `bookTicker` and spot partial depth.
    #[serde(default, borrow)]
    pub e: MaybeText<'a>,
    /// Symbol, when it is a string.
    #[serde(default, borrow)]
    pub s: MaybeText<'a>,
    /// Spot partial depth / REST snapshot marker.
    #[serde(default, rename = "lastUpdateId")]
    pub last_update_id: Option<IgnoredAny>,
    /// Spot `bookTicker` marker (with `s` and no `e`).
    #[serde(default)]
    pub u: Option<IgnoredAny>,
}

/// The combined envelope with its payload already typed: the single-pass hot
/// path of `normalize::decode` (the stream name picks `T`).
#[derive(Debug, Deserialize)]
pub(crate) struct Env<'a, T> {
    #[serde(borrow)]
    #[allow(dead_code)]
    pub stream: Text<'a>,
    pub data: T,
}

/// `trade` (spot, futures) and the options `trade` / `optionTrade` payload.
#[derive(Debug, Deserialize)]
pub(crate) struct TradeW<'a> {
    /// Event type (checked by the single-pass hot path in `normalize`).
    #[serde(default, borrow)]
    pub e: MaybeText<'a>,
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(rename = "T")]
    pub trade_time: Option<i64>,
    #[serde(borrow)]
    pub s: Text<'a>,
    pub t: AnyId,
    pub p: Dec,
    pub q: Dec,
    /// The buyer is the maker (the taker sold).
    #[serde(default)]
    pub m: Option<bool>,
    /// Options: the taker's direction (`BUY`/`SELL`, older payloads `1`/`-1`).
    #[serde(default, rename = "S", borrow)]
    pub side: Option<Text<'a>>,
}

/// `aggTrade`.
#[derive(Debug, Deserialize)]
pub(crate) struct AggTradeW<'a> {
    /// Event type (checked by the single-pass hot path in `normalize`).
    #[serde(default, borrow)]
    pub e: MaybeText<'a>,
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(rename = "T")]
    pub trade_time: Option<i64>,
    #[serde(borrow)]
    pub s: Text<'a>,
    pub a: u64,
    pub p: Dec,
    pub q: Dec,
    pub f: i64,
    pub l: i64,
    pub m: bool,
}

/// `depthUpdate`: spot diff (`U`,`u`), futures diff (`T`, `pu`), and the
/// futures partial-depth payload, which has the same shape.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct DepthW<'a> {
    /// Event type (checked by the single-pass hot path in `normalize`).
    #[serde(default, borrow)]
    pub e: MaybeText<'a>,
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(rename = "T", default)]
    pub tx_time: Option<i64>,
    #[serde(borrow)]
    pub s: Text<'a>,
    pub U: u64,
    pub u: u64,
    #[serde(default)]
    pub pu: Option<i64>,
    pub b: Vec<WireLevel>,
    pub a: Vec<WireLevel>,
}

/// Spot partial depth `{lastUpdateId,bids,asks}` and the REST `depth` body
/// (futures REST adds `E`, `T`).
#[derive(Debug, Deserialize)]
pub(crate) struct PartialDepthW {
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: u64,
    #[serde(rename = "E", default)]
    pub event_time: Option<i64>,
    #[serde(rename = "T", default)]
    pub tx_time: Option<i64>,
    pub bids: Vec<WireLevel>,
    pub asks: Vec<WireLevel>,
}

/// `bookTicker`: spot has no `e`, `E`, `T`; futures have all three.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct BookTickerW<'a> {
    /// Event type (checked by the single-pass hot path in `normalize`).
    #[serde(default, borrow)]
    pub e: MaybeText<'a>,
    #[serde(rename = "E", default)]
    pub event_time: Option<i64>,
    #[serde(rename = "T", default)]
    pub tx_time: Option<i64>,
    pub u: u64,
    #[serde(borrow)]
    pub s: Text<'a>,
    pub b: Dec,
    pub B: Dec,
    pub a: Dec,
    pub A: Dec,
}

/// `24hrTicker`, `24hrMiniTicker` and the rolling `1hTicker`/`4hTicker`/`1dTicker`.
/// Spot `24hrTicker` adds best bid/ask (`b`, `a`); the options ticker names
/// volume `V`, quote amount `A` and best bid/ask `bo`/`ao` (its `v`, `a`, `b`
/// are greeks and implied volatilities).
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct TickerW<'a> {
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(borrow)]
    pub s: Text<'a>,
    #[serde(default)]
    pub p: Option<Dec>,
    pub o: Dec,
    pub h: Dec,
    pub l: Dec,
    pub c: Dec,
    #[serde(default)]
    pub v: Option<Dec>,
    #[serde(default)]
    pub q: Option<Dec>,
    #[serde(default)]
    pub b: Option<Dec>,
    #[serde(default)]
    pub a: Option<Dec>,
    #[serde(default)]
    pub V: Option<Dec>,
    #[serde(default)]
    pub A: Option<Dec>,
    #[serde(default)]
    pub bo: Option<Dec>,
    #[serde(default)]
    pub ao: Option<Dec>,
}

/// `kline`.
#[derive(Debug, Deserialize)]
pub(crate) struct KlineW<'a> {
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(borrow)]
    pub s: Text<'a>,
    #[serde(borrow)]
    pub k: KlineBody<'a>,
}

/// The `k` object of a kline.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct KlineBody<'a> {
    pub t: i64,
    pub T: i64,
    #[serde(borrow)]
    pub i: Text<'a>,
    pub o: Dec,
    pub c: Dec,
    pub h: Dec,
    pub l: Dec,
    pub v: Dec,
    pub n: u64,
    pub x: bool,
    pub q: Dec,
}

/// Spot `avgPrice`.
#[derive(Debug, Deserialize)]
pub(crate) struct AvgPriceW<'a> {
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(borrow)]
    pub s: Text<'a>,
    #[serde(borrow)]
    pub i: Text<'a>,
    pub w: Dec,
}

/// Futures `markPriceUpdate` (`T` is the next funding time, `0` or absent
/// when there is none).
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct MarkPriceW<'a> {
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(borrow)]
    pub s: Text<'a>,
    pub p: Dec,
    pub i: Dec,
    #[serde(default)]
    pub r: DecOrEmpty,
    #[serde(default)]
    pub T: Option<i64>,
}

/// Options `openInterest`, one element of the array the
/// `<underlying>@optionOpenInterest@<expiry>` stream pushes every 60 s: `o`
/// the open interest in contracts, `h` in USDT (Binance options docs,
/// "Open Interest" stream). USDⓈ-M and COIN-M futures have no such stream.
#[derive(Debug, Deserialize)]
pub(crate) struct OpenInterestW<'a> {
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(borrow)]
    pub s: Text<'a>,
    pub o: Dec,
    #[serde(default)]
    pub h: DecOrEmpty,
}

/// Futures `forceOrder`.
#[derive(Debug, Deserialize)]
pub(crate) struct ForceOrderW<'a> {
    #[serde(rename = "E")]
    pub event_time: Option<i64>,
    #[serde(borrow)]
    pub o: ForceOrderBody<'a>,
}

/// The `o` object of a `forceOrder`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct ForceOrderBody<'a> {
    #[serde(borrow)]
    pub s: Text<'a>,
    #[serde(borrow)]
    pub S: Text<'a>,
    pub p: Dec,
    pub q: Dec,
}
