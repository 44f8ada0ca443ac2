//! The load stream on a Binance market: `<symbol>@trade` frames whose trade
//! id `t` is the sequence number and whose `E` and `T` hold the send time in
//! microseconds.

use crate::config::LoadConfig;
use crate::load::{ID_DIGITS, LoadStream, TIME_DIGITS, Template};

/// The load stream's name and templates (a regular spot trade payload, raw
/// and in the combined envelope).
pub(crate) fn load_stream(cfg: &LoadConfig) -> LoadStream {
    let symbol = &cfg.symbol;
    let stream = format!("{}@trade", symbol.to_lowercase());
    let t = "1".repeat(TIME_DIGITS);
    let i = "2".repeat(ID_DIGITS);
    let payload = format!(
        "{{\"e\":\"trade\",\"E\":{t},\"s\":\"{symbol}\",\"t\":{i},\"p\":\"100.00000000\",\"q\":\"1.00000000\",\"T\":{t},\"m\":true,\"M\":true}}"
    );
    let combined = format!("{{\"stream\":\"{stream}\",\"data\":{payload}}}");
    let (id_key, time_keys) = ("\"t\":", ["\"E\":", "\"T\":"]);
    LoadStream {
        raw: Template::new(&payload, id_key, time_keys),
        combined: Template::new(&combined, id_key, time_keys),
        stream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_patches_id_and_time_into_valid_json() {
        let t = load_stream(&LoadConfig::new(1, None)).combined;
        let mut out = Vec::new();
        t.append(&mut out, 1_000_000_000_042, 1_763_000_000_123_456);
        // Skip the 2-byte frame header (payload < 126 bytes) or 4-byte one.
        let hdr = if out[1] == 126 { 4 } else { 2 };
        let v: serde_json::Value = serde_json::from_slice(&out[hdr..]).unwrap();
        assert_eq!(v["stream"], "loadusdt@trade");
        assert_eq!(v["data"]["t"], 1_000_000_000_042u64);
        assert_eq!(v["data"]["E"], 1_763_000_000_123_456u64);
        assert_eq!(v["data"]["T"], 1_763_000_000_123_456u64);
        assert_eq!(v["data"]["p"], "100.00000000");
    }
}
