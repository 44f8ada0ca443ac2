//! The instrument registry of one Binance market, built from its
//! `exchangeInfo` body: symbol, status, base and quote assets, tick and step
//! sizes as exact decimals, and contract details on derivatives. Queryable by
//! symbol; used to refuse subscriptions to symbols the venue does not list
//! before anything is sent.

use std::collections::HashMap;
use std::str::FromStr;

use ferrofeed_model::Decimal;
use serde::Deserialize;

use super::Market;

/// Derivative contract details.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contract {
    /// `PERPETUAL`, `CURRENT_QUARTER`, ... (futures).
    pub contract_type: Option<String>,
    /// Contract size (COIN-M), or the option unit.
    pub contract_size: Option<Decimal>,
    /// The margin asset (futures).
    pub margin_asset: Option<String>,
    /// The underlying (options).
    pub underlying: Option<String>,
    /// The strike (options).
    pub strike: Option<Decimal>,
    /// `CALL` or `PUT` (options).
    pub option_side: Option<String>,
}

/// One instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// The venue's symbol, upper case.
    pub symbol: String,
    /// `TRADING`, `BREAK`, ...
    pub status: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Price increment.
    pub tick_size: Option<Decimal>,
    /// Quantity increment.
    pub step_size: Option<Decimal>,
    /// Derivative details (`None` on spot).
    pub contract: Option<Contract>,
}

/// Why an `exchangeInfo` body could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not the expected JSON; keeps the start of the body.
    #[error("invalid exchangeInfo for {market}: {msg} (body starts {body:?})")]
    Invalid {
        /// The market.
        market: Market,
        /// The parse error.
        msg: String,
        /// The first 200 characters of the body.
        body: String,
    },
}

/// A subscription names a symbol the registry does not list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown symbol {symbol:?} in stream {stream:?} on {market}: not listed in exchangeInfo")]
pub struct UnknownSymbol {
    /// The market.
    pub market: Market,
    /// The stream as requested.
    pub stream: String,
    /// The symbol it names, upper case.
    pub symbol: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    #[serde(default)]
    symbols: Vec<RawSymbol>,
    #[serde(default)]
    option_symbols: Vec<RawSymbol>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSymbol {
    symbol: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    contract_status: Option<String>,
    #[serde(default)]
    base_asset: Option<String>,
    #[serde(default)]
    quote_asset: Option<String>,
    #[serde(default)]
    filters: Vec<serde_json::Value>,
    #[serde(default)]
    contract_type: Option<String>,
    #[serde(default)]
    contract_size: Option<serde_json::Value>,
    #[serde(default)]
    margin_asset: Option<String>,
    #[serde(default)]
    underlying: Option<String>,
    #[serde(default)]
    strike_price: Option<serde_json::Value>,
    #[serde(default)]
    side: Option<String>,
    #[serde(default)]
    unit: Option<serde_json::Value>,
}

fn decimal(v: &serde_json::Value) -> Option<Decimal> {
    match v {
        serde_json::Value::String(s) => Decimal::from_str(s).ok(),
        serde_json::Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        _ => None,
    }
}

fn filter(filters: &[serde_json::Value], kind: &str, field: &str) -> Option<Decimal> {
    filters
        .iter()
        .find(|f| f.get("filterType").and_then(|t| t.as_str()) == Some(kind))
        .and_then(|f| decimal(f.get(field)?))
}

/// The instruments of one market.
#[derive(Debug, Clone)]
pub struct Registry {
    market: Market,
    by_symbol: HashMap<String, Instrument>,
}

impl Registry {
    /// Parses an `exchangeInfo` body.
    pub fn from_exchange_info(market: Market, body: &str) -> Result<Registry, RegistryError> {
        let info: Info = serde_json::from_str(body).map_err(|e| RegistryError::Invalid {
            market,
            msg: e.to_string(),
            body: body.chars().take(200).collect(),
        })?;
        let mut by_symbol = HashMap::new();
        for s in info.symbols.into_iter().chain(info.option_symbols) {
            let derivative = market != Market::Spot;
            let contract = derivative.then(|| Contract {
                contract_type: s.contract_type.clone(),
                contract_size: s.contract_size.as_ref().and_then(decimal).or_else(|| s.unit.as_ref().and_then(decimal)),
                margin_asset: s.margin_asset.clone(),
                underlying: s.underlying.clone(),
                strike: s.strike_price.as_ref().and_then(decimal),
                option_side: s.side.clone(),
            });
            let inst = Instrument {
                status: s.status.or(s.contract_status).unwrap_or_default(),
                base: s.base_asset.unwrap_or_default(),
                quote: s.quote_asset.unwrap_or_default(),
                tick_size: filter(&s.filters, "PRICE_FILTER", "tickSize"),
                step_size: filter(&s.filters, "LOT_SIZE", "stepSize"),
                contract,
                symbol: s.symbol.to_uppercase(),
            };
            by_symbol.insert(inst.symbol.clone(), inst);
        }
        Ok(Registry { market, by_symbol })
    }

    /// The market.
    pub fn market(&self) -> Market {
        self.market
    }

    /// The instrument named `symbol` (any case).
    pub fn get(&self, symbol: &str) -> Option<&Instrument> {
        self.by_symbol.get(&symbol.to_uppercase())
    }

    /// How many instruments are listed.
    pub fn len(&self) -> usize {
        self.by_symbol.len()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.by_symbol.is_empty()
    }

    /// Every instrument (unordered).
    pub fn instruments(&self) -> impl Iterator<Item = &Instrument> {
        self.by_symbol.values()
    }

    /// Checks that every per-symbol stream (`btcusdt@trade`) names a listed
    /// symbol; all-market streams (`!miniTicker@arr`) pass.
    pub fn check_streams(&self, streams: &[String]) -> Result<(), UnknownSymbol> {
        for stream in streams {
            if stream.starts_with('!') {
                continue;
            }
            let symbol = stream.split('@').next().unwrap_or_default().to_uppercase();
            if !self.by_symbol.contains_key(&symbol) {
                return Err(UnknownSymbol { market: self.market, stream: stream.clone(), symbol });
            }
        }
        Ok(())
    }
}

/// The REST path of `exchangeInfo` and its request weight.
pub fn exchange_info_path(market: Market) -> (&'static str, u32) {
    match market {
        Market::Spot => ("/api/v3/exchangeInfo", 20),
        Market::UsdM => ("/fapi/v1/exchangeInfo", 1),
        Market::CoinM => ("/dapi/v1/exchangeInfo", 1),
        Market::Options => ("/eapi/v1/exchangeInfo", 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPOT: &str = r#"{"timezone":"UTC","serverTime":1,"symbols":[
        {"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT",
         "filters":[{"filterType":"PRICE_FILTER","minPrice":"0.01","maxPrice":"1000000.00","tickSize":"0.01"},
                    {"filterType":"LOT_SIZE","minQty":"0.00001","maxQty":"9000","stepSize":"0.00001"}]}]}"#;

    #[test]
    fn parses_spot_and_checks_streams() {
        let r = Registry::from_exchange_info(Market::Spot, SPOT).unwrap();
        let btc = r.get("btcusdt").unwrap();
        assert_eq!(btc.tick_size, Some(Decimal::from_str("0.01").unwrap()));
        assert_eq!(btc.step_size.unwrap().to_string(), "0.00001");
        assert_eq!((btc.base.as_str(), btc.quote.as_str(), btc.status.as_str()), ("BTC", "USDT", "TRADING"));
        assert!(r.check_streams(&["btcusdt@trade".into(), "!miniTicker@arr".into()]).is_ok());
        let e = r.check_streams(&["btcusdt@trade".into(), "nopeusdt@depth".into()]).unwrap_err();
        assert_eq!(e.symbol, "NOPEUSDT");
        assert!(e.to_string().contains("not listed in exchangeInfo"), "{e}");
    }

    #[test]
    fn bad_bodies_are_errors_that_keep_the_payload() {
        let e = Registry::from_exchange_info(Market::UsdM, "<html>busy</html>").unwrap_err();
        assert!(e.to_string().contains("<html>busy"), "{e}");
    }
}
