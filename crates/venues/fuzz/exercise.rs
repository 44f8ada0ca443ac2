//! The calls the `decode` fuzz target makes on every input. Shared, via
//! `#[path]`, by `fuzz_targets/decode.rs` and by the stable-toolchain replay
//! test `crates/venues/tests/it/fuzz_corpus.rs`, so both exercise exactly the
//! same code. Errors are fine; a panic is a bug.

use ferrofeed_model::rules::VenueRules;
use ferrofeed_venues::binance::normalize::{decode, decode_rest_snapshot};
use ferrofeed_venues::binance::{BinanceRules, Market};

/// Arbitrary but realistic receive time (ns since the epoch).
const RECEIVED_NS: i64 = 1_700_000_000_000_000_000;

const MARKETS: [Market; 4] = [Market::Spot, Market::UsdM, Market::CoinM, Market::Options];

/// Runs every Binance decoder over `data` if it is valid UTF-8.
pub fn exercise(data: &[u8]) {
    let Ok(frame) = std::str::from_utf8(data) else {
        return;
    };
    for market in MARKETS {
        match decode(market, frame, RECEIVED_NS) {
            Ok(events) => drop(std::hint::black_box(events)),
            Err(e) => drop(std::hint::black_box((e.to_string(), e.payload().len()))),
        }
        match decode_rest_snapshot(market, "btcusdt", frame, RECEIVED_NS) {
            Ok(event) => drop(std::hint::black_box(event)),
            Err(e) => drop(std::hint::black_box((e.to_string(), e.payload().len()))),
        }
    }
    for market in [Market::Spot, Market::UsdM] {
        let rules = BinanceRules::new(market);
        std::hint::black_box(rules.classify(frame));
    }
}
