//! The venue registry: every venue the client knows, one line each.
//!
//! Adding a venue is one folder beside `binance/` and `bybit/` implementing
//! [`VenueSpec`], and one line in [`VENUES`] (see `docs/adding-a-venue.md`).

use ferrofeed_model::event::Venue;

use crate::seam::{MarketId, SeamError, VenueSpec};

/// Every registered venue, in the order the CLI lists them.
pub static VENUES: &[&dyn VenueSpec] =
    &[&crate::binance::spec::Binance, &crate::bybit::spec::Bybit, &crate::deribit::spec::Deribit];

/// The registered venue `venue`.
pub fn get(venue: Venue) -> Option<&'static dyn VenueSpec> {
    VENUES.iter().copied().find(|v| v.venue() == venue)
}

/// The registered venue named `name` (`binance`, `bybit`).
pub fn by_name(name: &str) -> Result<&'static dyn VenueSpec, SeamError> {
    VENUES.iter().copied().find(|v| v.venue().name() == name).ok_or_else(|| SeamError::UnknownVenue(name.into()))
}

/// The registered venues' names.
pub fn names() -> Vec<&'static str> {
    VENUES.iter().map(|v| v.venue().name()).collect()
}

/// Parses `venue:market` (`binance:usdm`, `bybit:linear`).
pub fn parse_market(s: &str) -> Result<MarketId, SeamError> {
    let (venue, market) = s.split_once(':').unwrap_or((s, ""));
    by_name(venue)?.parse_market(market)
}

/// Every market of every registered venue.
pub fn all_markets() -> Vec<MarketId> {
    VENUES.iter().flat_map(|v| v.markets().iter().map(move |m| MarketId::new(v.venue(), *m))).collect()
}

/// The venue spec of `market`, checking that the venue is registered and
/// serves that market.
pub fn spec(market: MarketId) -> Result<&'static dyn VenueSpec, SeamError> {
    let v = get(market.venue).ok_or_else(|| SeamError::UnknownVenue(market.venue.name().into()))?;
    if !v.markets().contains(&market.market) {
        return Err(SeamError::UnknownMarket {
            venue: market.venue.name(),
            market: market.market.name().into(),
            known: v.markets().iter().map(|m| v.market_name(*m)).collect::<Vec<_>>().join(", "),
        });
    }
    Ok(v)
}
