//! The instrument registry of one market: tick and step sizes as exact
//! decimals, contract details, and the check that refuses subscriptions to
//! symbols the venue does not list. Venue-neutral: each venue parses its own
//! instrument list into it (`VenueSpec::parse_instruments`).

use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::seam::MarketId;

/// Contract details of a derivative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    /// `PERPETUAL`, `CURRENT_QUARTER`, ... (futures).
    pub contract_type: Option<String>,
    /// Contract size (COIN-M) or unit (options).
    pub contract_size: Option<Decimal>,
    /// Margin asset.
    pub margin_asset: Option<String>,
    /// Underlying (options).
    pub underlying: Option<String>,
    /// Strike price (options).
    pub strike: Option<Decimal>,
    /// `CALL` or `PUT` (options).
    pub option_side: Option<String>,
}

/// One instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Symbol, upper case.
    pub symbol: String,
    /// Trading status as the venue states it.
    pub status: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Price increment.
    pub tick_size: Option<Decimal>,
    /// Quantity increment.
    pub step_size: Option<Decimal>,
    /// Derivative details.
    pub contract: Option<Contract>,
}

/// Why an instrument list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not the expected JSON; keeps the start of the body.
    #[error("invalid {list} for {market}: {msg} (body starts {body:?})")]
    Invalid {
        /// The market.
        market: MarketId,
        /// The list's name at the venue (`exchangeInfo`).
        list: &'static str,
        /// The parse error.
        msg: String,
        /// The first 200 characters of the body.
        body: String,
    },
    /// The venue has no instrument list in ferrofeed yet.
    #[error("{market}: loading instruments is not supported for this venue yet")]
    Unsupported {
        /// The market.
        market: MarketId,
    },
}

/// A subscription names a symbol the registry does not list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown symbol {symbol:?} in stream {stream:?} on {market}: not listed in {list}")]
pub struct UnknownSymbol {
    /// The market.
    pub market: MarketId,
    /// The list's name at the venue (`exchangeInfo`).
    pub list: &'static str,
    /// The stream as requested.
    pub stream: String,
    /// The symbol it names, upper case.
    pub symbol: String,
}

/// The instruments of one market.
#[derive(Debug, Clone)]
pub struct Registry {
    market: MarketId,
    list: &'static str,
    by_symbol: HashMap<String, Instrument>,
}

impl Registry {
    /// A registry of `market` from its venue's list named `list`.
    pub fn new(market: MarketId, list: &'static str, instruments: impl IntoIterator<Item = Instrument>) -> Registry {
        let by_symbol = instruments.into_iter().map(|i| (i.symbol.to_uppercase(), i)).collect();
        Registry { market, list, by_symbol }
    }

    /// The market.
    pub fn market(&self) -> MarketId {
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

    /// Checks that every per-symbol stream names a listed symbol;
    /// `symbol_of` reads a stream's symbol (`None`: an all-market stream,
    /// which passes).
    pub fn check_streams(
        &self,
        streams: &[String],
        symbol_of: impl Fn(&str) -> Option<String>,
    ) -> Result<(), UnknownSymbol> {
        for stream in streams {
            let Some(symbol) = symbol_of(stream) else { continue };
            let symbol = symbol.to_uppercase();
            if !self.by_symbol.contains_key(&symbol) {
                return Err(UnknownSymbol { market: self.market, list: self.list, stream: stream.clone(), symbol });
            }
        }
        Ok(())
    }
}
