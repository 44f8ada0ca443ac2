//! Fuzzes the Binance decoders: `decode` (all four markets),
//! `decode_rest_snapshot`, and `BinanceRules::classify` (spot, usdm).
#![no_main]

#[path = "../exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exercise::exercise(data);
});
