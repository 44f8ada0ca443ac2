//! The instrument list of one Binance market, from its `exchangeInfo` body:
//! symbol, status, base and quote assets, tick and step sizes as exact
//! decimals, and contract details on derivatives, parsed into the
//! venue-neutral [`Registry`].

use std::str::FromStr;

use ferrofeed_model::Decimal;
use serde::Deserialize;

use super::Market;
use super::normalize::market_type;
pub use crate::instruments::{Contract, Instrument, Registry, RegistryError, UnknownSymbol};
use crate::seam::MarketId;
use ferrofeed_model::event::Venue;

/// The list's name at the venue, in error messages.
pub const LIST: &str = "exchangeInfo";

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

/// The symbol a stream names, upper case (`btcusdt@trade` → `BTCUSDT`);
/// `None` for all-market streams (`!miniTicker@arr`).
pub fn stream_symbol(stream: &str) -> Option<String> {
    if stream.starts_with('!') {
        return None;
    }
    let s = stream.split('@').next().unwrap_or_default();
    (!s.is_empty()).then(|| s.to_uppercase())
}

/// Parses an `exchangeInfo` body of `market`.
pub fn from_exchange_info(market: Market, body: &str) -> Result<Registry, RegistryError> {
    let id = MarketId::new(Venue::Binance, market_type(market));
    let info: Info = serde_json::from_str(body).map_err(|e| RegistryError::Invalid {
        market: id,
        list: LIST,
        msg: e.to_string(),
        body: body.chars().take(200).collect(),
    })?;
    let derivative = market != Market::Spot;
    let list = info.symbols.into_iter().chain(info.option_symbols).map(|s| {
        let contract = derivative.then(|| Contract {
            contract_type: s.contract_type.clone(),
            contract_size: s.contract_size.as_ref().and_then(decimal).or_else(|| s.unit.as_ref().and_then(decimal)),
            margin_asset: s.margin_asset.clone(),
            underlying: s.underlying.clone(),
            strike: s.strike_price.as_ref().and_then(decimal),
            option_side: s.side.clone(),
        });
        Instrument {
            status: s.status.or(s.contract_status).unwrap_or_default(),
            base: s.base_asset.unwrap_or_default(),
            quote: s.quote_asset.unwrap_or_default(),
            tick_size: filter(&s.filters, "PRICE_FILTER", "tickSize"),
            step_size: filter(&s.filters, "LOT_SIZE", "stepSize"),
            contract,
            symbol: s.symbol.to_uppercase(),
        }
    });
    Ok(Registry::new(id, LIST, list))
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
        let r = from_exchange_info(Market::Spot, SPOT).unwrap();
        let btc = r.get("btcusdt").unwrap();
        assert_eq!(btc.tick_size, Some(Decimal::from_str("0.01").unwrap()));
        assert_eq!(btc.step_size.unwrap().to_string(), "0.00001");
        assert_eq!((btc.base.as_str(), btc.quote.as_str(), btc.status.as_str()), ("BTC", "USDT", "TRADING"));
        assert!(r.check_streams(&["btcusdt@trade".into(), "!miniTicker@arr".into()], stream_symbol).is_ok());
        let e = r.check_streams(&["btcusdt@trade".into(), "nopeusdt@depth".into()], stream_symbol).unwrap_err();
        assert_eq!(e.symbol, "NOPEUSDT");
        assert!(e.to_string().contains("not listed in exchangeInfo"), "{e}");
    }

    #[test]
    fn bad_bodies_are_errors_that_keep_the_payload() {
        let e = from_exchange_info(Market::UsdM, "<html>busy</html>").unwrap_err();
        assert!(e.to_string().contains("<html>busy"), "{e}");
    }
}
