//! Bybit's load form: `publicTrade.<SYMBOL>` (`LOADUSDT`) on the spot,
//! linear and inverse public sockets, one trade per message, in the
//! category's message shape (`encode::head`; the trade object as in
//! `shared/fixtures/bybit_v5/public_trade.linear.json` and the venue's
//! `docs/v5/websocket/public/trade.mdx`: `T`, `s`, `S`, `v`, `p`, `L` on
//! futures, `i`, `BT`, `RPI`, `seq`).
//!
//! Bybit's trade id `i` is an opaque string (a UUID on linear, digits on
//! spot). Here it is the sequence number written as 13 decimal digits, and
//! `seq` holds the same number, so a reader detects loss by parsing `i` and
//! checking that each message's id is the previous one + 1. `ts` and `T` hold
//! the send time in milliseconds, as the venue writes them.

use crate::config::{BybitCategory, LoadConfig};
use crate::hub::HubState;
use crate::load::{ID_DIGITS, LoadForm, LoadStream, Patch, TIME_MS_DIGITS, Template};

use super::encode::head;
use super::public::Topic;

/// The load forms of a Bybit market of `cat` (none on option, whose trade
/// topic is per base coin).
pub(crate) fn forms(cat: BybitCategory, cfg: &LoadConfig) -> Vec<LoadForm> {
    trade_stream(cat, cfg).map(LoadForm::Stream).into_iter().collect()
}

fn trade_stream(cat: BybitCategory, cfg: &LoadConfig) -> Option<LoadStream> {
    if cat == BybitCategory::Option {
        return None;
    }
    let symbol = &cfg.symbol;
    let topic = format!("publicTrade.{symbol}");
    let t: u64 = "1".repeat(TIME_MS_DIGITS).parse().ok()?;
    let i = "2".repeat(ID_DIGITS);
    let mut p = String::with_capacity(256);
    head(&mut p, cat, &topic, "snapshot", t, 0);
    // Futures keep the instrument's decimals and add the tick direction;
    // spot trims trailing zeros.
    let (price, tick) = if cat.is_futures() { ("100.00", "\"L\":\"PlusTick\",") } else { ("100", "") };
    p.push_str(&format!(
        "[{{\"T\":{t},\"s\":\"{symbol}\",\"S\":\"Buy\",\"v\":\"0.001\",\"p\":\"{price}\",{tick}\"i\":\"{i}\",\"BT\":false,\"RPI\":false,\"seq\":{i}}}]}}"
    ));
    let patches =
        [("\"ts\":", Patch::TimeMs), ("\"T\":", Patch::TimeMs), ("\"i\":\"", Patch::Id), ("\"seq\":", Patch::Id)];
    let frame = Template::build(&p, &patches)?;
    Some(LoadStream { stream: topic, raw: frame.clone(), combined: frame })
}

/// The topic of a load stream, so that subscribing to it succeeds like any
/// trade topic; the load task produces its messages.
pub(crate) fn topic(st: &HubState, name: &str) -> Option<Topic> {
    let symbol = name.strip_prefix("publicTrade.")?;
    st.load_streams.contains(name).then(|| Topic::Trade(symbol.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        k.sort();
        k
    }

    #[test]
    fn linear_trade_has_the_captured_shape_with_the_sequence_as_trade_id() {
        let Some(s) = trade_stream(BybitCategory::Linear, &LoadConfig::new(1, None)) else { panic!("no template") };
        assert_eq!(s.stream, "publicTrade.LOADUSDT");
        let mut out = Vec::new();
        s.raw.append(&mut out, 1_000_000_000_042, 1_763_000_000_123_456);
        let hdr = if out[1] == 126 { 4 } else { 2 };
        let v: serde_json::Value = serde_json::from_slice(&out[hdr..]).unwrap();
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/bybit_v5/public_trade.linear.json"
        ))
        .unwrap();
        let real: serde_json::Value = serde_json::from_str(&fixture).unwrap();
        assert_eq!(keys(&v), keys(&real));
        assert_eq!(keys(&v["data"][0]), keys(&real["data"][0]));
        assert_eq!(v["topic"], "publicTrade.LOADUSDT");
        assert_eq!(v["type"], "snapshot");
        assert_eq!(v["ts"], 1_763_000_000_123u64);
        assert_eq!(v["data"][0]["T"], 1_763_000_000_123u64);
        assert_eq!(v["data"][0]["i"], "1000000000042");
        assert_eq!(v["data"][0]["seq"], 1_000_000_000_042u64);
        assert_eq!(v["data"][0]["p"], "100.00");
    }

    #[test]
    fn spot_has_no_tick_direction_and_option_has_no_load_form() {
        let Some(s) = trade_stream(BybitCategory::Spot, &LoadConfig::new(1, None)) else { panic!("no template") };
        let mut out = Vec::new();
        s.raw.append(&mut out, 1_000_000_000_000, 1_763_000_000_000_000);
        let hdr = if out[1] == 126 { 4 } else { 2 };
        let v: serde_json::Value = serde_json::from_slice(&out[hdr..]).unwrap();
        assert!(v["data"][0].get("L").is_none());
        assert_eq!(v["data"][0]["p"], "100");
        assert!(forms(BybitCategory::Option, &LoadConfig::new(1, None)).is_empty());
    }
}
