//! Binance's load forms.
//!
//! - `<symbol>@trade` (every market): trade frames whose trade id `t` is the
//!   sequence number and whose `E` and `T` hold the send time in
//!   microseconds.
//! - `load<k>usdt@depth@100ms` (spot): the diff-depth payload of the venue's
//!   "Diff. Depth Stream" (`e:"depthUpdate"`, `E`, `s`, `U` first and `u` last
//!   update id, `b`/`a` as `[price, quantity]` strings, quantity `0` removes the
//!   level; binance-spot-api-docs `web-socket-streams.md`, as in
//!   `shared/fixtures/binance_spot/depth_update.json`), with `U` = previous
//!   `u` + 1, and the REST `GET /api/v3/depth` snapshot of the same books
//!   (`{"lastUpdateId","bids","asks"}`, `rest-api.md` "Order book"). Prices
//!   and quantities are written with 8 decimals, as spot writes them.

use std::sync::Arc;

use crate::config::{LoadConfig, MarketKind};
use crate::hub::Hub;
use crate::load::{BookLoad, BookView, Diff, DiffWriter, LoadBook, LoadForm, LoadStream, Patch, Template, push_u64};

/// The load forms of a Binance market of `kind`.
pub(crate) fn forms(kind: MarketKind, cfg: &LoadConfig) -> Vec<LoadForm> {
    let mut forms: Vec<LoadForm> = trade_stream(cfg).map(LoadForm::Stream).into_iter().collect();
    if kind == MarketKind::Spot && cfg.books > 0 {
        let name = |k: usize| (format!("load{k}usdt@depth@100ms"), format!("LOAD{k}USDT"));
        forms.push(LoadForm::Books(Arc::new(BookLoad::new(cfg, name, Box::new(DepthWriter)))));
    }
    forms
}

/// The trade stream's name and templates (a regular spot trade payload, raw
/// and in the combined envelope).
pub(crate) fn trade_stream(cfg: &LoadConfig) -> Option<LoadStream> {
    let symbol = &cfg.symbol;
    let stream = format!("{}@trade", symbol.to_lowercase());
    let t = "1".repeat(crate::load::TIME_DIGITS);
    let i = "2".repeat(crate::load::ID_DIGITS);
    let payload = format!(
        "{{\"e\":\"trade\",\"E\":{t},\"s\":\"{symbol}\",\"t\":{i},\"p\":\"100.00000000\",\"q\":\"1.00000000\",\"T\":{t},\"m\":true,\"M\":true}}"
    );
    let combined = format!("{{\"stream\":\"{stream}\",\"data\":{payload}}}");
    let patches = [("\"t\":", Patch::Id), ("\"E\":", Patch::TimeUs), ("\"T\":", Patch::TimeUs)];
    Some(LoadStream {
        raw: Template::build(&payload, &patches)?,
        combined: Template::build(&combined, &patches)?,
        stream,
    })
}

/// Writes the depth form's diffs as spot `depthUpdate` payloads.
#[derive(Debug)]
struct DepthWriter;

/// Appends `v` (in units of `10^-scale`) with 8 decimals.
fn push_dec8(out: &mut Vec<u8>, v: i64, scale: u32) {
    let unit = 10i64.pow(scale);
    push_u64(out, (v / unit).unsigned_abs());
    out.push(b'.');
    let frac = (v % unit).unsigned_abs();
    let digits = format!("{frac:0width$}", width = scale as usize);
    out.extend_from_slice(digits.as_bytes());
    out.extend(std::iter::repeat_n(b'0', 8 - scale as usize));
}

/// Ticks of 0.01 and lots of 0.001.
const PRICE_SCALE: u32 = 2;
const QTY_SCALE: u32 = 3;

fn push_levels(out: &mut Vec<u8>, levels: &[(i64, i64)]) {
    out.push(b'[');
    for (i, &(p, q)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"[\"");
        push_dec8(out, p, PRICE_SCALE);
        out.extend_from_slice(b"\",\"");
        push_dec8(out, q, QTY_SCALE);
        out.extend_from_slice(b"\"]");
    }
    out.push(b']');
}

impl DiffWriter for DepthWriter {
    fn levels(&self, diff: &Diff) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 40 * (diff.bids.len() + diff.asks.len()));
        out.extend_from_slice(b"\"b\":");
        push_levels(&mut out, &diff.bids);
        out.extend_from_slice(b",\"a\":");
        push_levels(&mut out, &diff.asks);
        out
    }

    fn payload(
        &self,
        out: &mut Vec<u8>,
        book: &LoadBook,
        combined: bool,
        ids: (u64, u64),
        time_us: u64,
        levels: &[u8],
    ) {
        if combined {
            out.extend_from_slice(b"{\"stream\":\"");
            out.extend_from_slice(book.stream.as_bytes());
            out.extend_from_slice(b"\",\"data\":");
        }
        out.extend_from_slice(b"{\"e\":\"depthUpdate\",\"E\":");
        push_u64(out, time_us / 1000);
        out.extend_from_slice(b",\"s\":\"");
        out.extend_from_slice(book.symbol.as_bytes());
        out.extend_from_slice(b"\",\"U\":");
        push_u64(out, ids.0);
        out.extend_from_slice(b",\"u\":");
        push_u64(out, ids.1);
        out.push(b',');
        out.extend_from_slice(levels);
        out.push(b'}');
        if combined {
            out.push(b'}');
        }
    }
}

/// The REST `depth` body of a depth-form book, `limit` levels a side, if
/// `symbol` is one.
pub(crate) fn snapshot(hub: &Hub, symbol: &str, limit: u32) -> Option<String> {
    let view = hub.load.iter().find_map(|f| match f {
        LoadForm::Books(b) => b.view(symbol),
        LoadForm::Stream(_) => None,
    })?;
    Some(snapshot_body(&view, limit as usize))
}

fn snapshot_body(v: &BookView, limit: usize) -> String {
    let mut out = Vec::with_capacity(64 + 40 * (v.bids.len() + v.asks.len()));
    out.extend_from_slice(b"{\"lastUpdateId\":");
    push_u64(&mut out, v.last_update_id);
    out.extend_from_slice(b",\"bids\":");
    push_levels(&mut out, &v.bids[..v.bids.len().min(limit)]);
    out.extend_from_slice(b",\"asks\":");
    push_levels(&mut out, &v.asks[..v.asks.len().min(limit)]);
    out.push(b'}');
    String::from_utf8_lossy(&out).into_owned()
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
    fn trade_template_patches_id_and_time_into_valid_json() {
        let Some(t) = trade_stream(&LoadConfig::new(1, None)) else { panic!("no trade template") };
        let mut out = Vec::new();
        t.combined.append(&mut out, 1_000_000_000_042, 1_763_000_000_123_456);
        // Skip the 2-byte frame header (payload < 126 bytes) or 4-byte one.
        let hdr = if out[1] == 126 { 4 } else { 2 };
        let v: serde_json::Value = serde_json::from_slice(&out[hdr..]).unwrap();
        assert_eq!(v["stream"], "loadusdt@trade");
        assert_eq!(v["data"]["t"], 1_000_000_000_042u64);
        assert_eq!(v["data"]["E"], 1_763_000_000_123_456u64);
        assert_eq!(v["data"]["T"], 1_763_000_000_123_456u64);
        assert_eq!(v["data"]["p"], "100.00000000");
    }

    #[test]
    fn depth_payload_has_the_captured_shape() {
        let book = LoadBook::for_test("load3usdt@depth@100ms", "LOAD3USDT");
        let diff = Diff { bids: vec![(999_999, 1234), (999_990, 0)], asks: vec![(1_000_001, 5)] };
        let levels = DepthWriter.levels(&diff);
        let mut out = Vec::new();
        DepthWriter.payload(
            &mut out,
            &book,
            true,
            (1_000_000_000_000, 1_000_000_000_002),
            1_763_000_000_123_456,
            &levels,
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/binance_spot/depth_update.json"
        ))
        .unwrap();
        let real: serde_json::Value = serde_json::from_str(&fixture).unwrap();
        assert_eq!(keys(&v), keys(&real));
        assert_eq!(keys(&v["data"]), keys(&real["data"]));
        assert_eq!(v["stream"], "load3usdt@depth@100ms");
        assert_eq!(v["data"]["s"], "LOAD3USDT");
        assert_eq!(v["data"]["E"], 1_763_000_000_123u64);
        assert_eq!(
            (v["data"]["U"].as_u64(), v["data"]["u"].as_u64()),
            (Some(1_000_000_000_000), Some(1_000_000_000_002))
        );
        assert_eq!(
            v["data"]["b"],
            serde_json::json!([["9999.99000000", "1.23400000"], ["9999.90000000", "0.00000000"]])
        );
        assert_eq!(v["data"]["a"], serde_json::json!([["10000.01000000", "0.00500000"]]));
        out.clear();
        DepthWriter.payload(&mut out, &book, false, (7, 9), 0, &levels);
        let raw: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let mut expect = v["data"].clone();
        expect["E"] = 0.into();
        expect["U"] = 7.into();
        expect["u"] = 9.into();
        assert_eq!(raw, expect);
    }

    #[test]
    fn snapshot_body_is_the_rest_shape_truncated_to_the_limit() {
        let v = BookView { last_update_id: 41, bids: vec![(999_999, 1), (999_998, 2)], asks: vec![(1_000_001, 3)] };
        let body: serde_json::Value = serde_json::from_str(&snapshot_body(&v, 1)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"lastUpdateId": 41, "bids": [["9999.99000000", "0.00100000"]], "asks": [["10000.01000000", "0.00300000"]]})
        );
    }
}
