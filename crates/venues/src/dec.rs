//! Exact decimals as venues send them: JSON strings, never floats. Shared by
//! every venue's wire types.

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
