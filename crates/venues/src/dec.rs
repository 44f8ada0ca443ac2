//! Serde helpers shared by every venue's wire types: exact decimals as venues
//! send them (JSON strings, never floats), and ids that may be absent or of
//! another type.

use std::fmt;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

fn parse_decimal<E: de::Error>(v: &str) -> Result<Decimal, E> {
    Decimal::from_str_exact(v).map_err(|e| E::custom(format_args!("invalid decimal {v:?}: {e}")))
}

/// An exact decimal sent as a JSON string (`"0.35280000"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dec(pub(crate) Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dec, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dec, E> {
                parse_decimal(v).map(Dec)
            }
        }
        d.deserialize_str(V)
    }
}

/// A decimal string where `""` or `null` means "none" (Binance COIN-M
/// delivery contracts send `"r": ""` for the funding rate; Bybit sends `""` for
/// absent prices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DecOrEmpty(pub(crate) Option<Decimal>);

impl<'de> Deserialize<'de> for DecOrEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DecOrEmpty, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DecOrEmpty;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string or \"\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DecOrEmpty, E> {
                if v.is_empty() { Ok(DecOrEmpty(None)) } else { parse_decimal(v).map(|d| DecOrEmpty(Some(d))) }
            }
            fn visit_unit<E>(self) -> Result<DecOrEmpty, E> {
                Ok(DecOrEmpty(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An unsigned id, or `None` for any other value (skipped without allocating).
pub(crate) fn u64_or_skip<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an id or any value")
        }
        fn visit_u64<E>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Option<u64>, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Option<u64>, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Option<u64>, A::Error> {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}
