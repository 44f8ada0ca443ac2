//! Binance: spot, USDⓈ-M, COIN-M and options market streams.
//!
//! The server pings (every 20 s on spot, 3 min on futures, 5 min on options) and
//! the transport echoes them; on derivatives we also ping so a quiet socket is
//! never mistaken for a dead one. Control messages are JSON with numeric ids,
//! acks `{"result":null,"id":N}`, errors `{"error":{"code","msg"},"id":N}`.
//! Connections use the combined `/stream` path, so every payload names its
//! stream; new connections carry their first streams in the URL.
//! Sequence numbers: trade `t` and aggTrade `a` are consecutive per symbol;
//! spot depth diffs chain `U == prev u + 1`; futures depth diffs chain `pu`.

pub mod auth;
pub mod book;
mod endpoints;
pub mod normalize;
pub mod private;
pub mod registry;
pub mod spec;
pub mod trade;
mod user;
mod wire;

use std::borrow::Cow;
use std::time::Duration;

use ferrofeed_model::rules::{ClientPing, ConnLimits, Heartbeat, Inbound, Seq, VenueRules};
use serde::Deserialize;

pub use endpoints::{Endpoints, Environment, Market, Route, endpoints, route_of, ws_base};

/// Venue limits that are not per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueLimits {
    /// Connection attempts allowed per `attempt_window` per IP.
    pub max_attempts: usize,
    /// The window of `max_attempts`.
    pub attempt_window: Duration,
    /// REST request weight per minute.
    pub rest_weight_per_minute: u32,
}

/// Attempt and REST limits of a market (PROTOCOLS.md §1.2, §2.2).
pub fn venue_limits(market: Market) -> VenueLimits {
    VenueLimits {
        max_attempts: 300,
        attempt_window: Duration::from_secs(300),
        rest_weight_per_minute: if market == Market::Spot { 6000 } else { 2400 },
    }
}

/// The rules of one Binance market connection.
#[derive(Debug, Clone)]
pub struct BinanceRules {
    market: Market,
    /// Streams per SUBSCRIBE request.
    pub max_streams_per_request: usize,
    /// Longest connect URL built with streams in it.
    pub max_url_bytes: usize,
    /// Declare a socket dead after this long without any frame.
    pub idle_timeout: Duration,
}

impl BinanceRules {
    /// The rules of `market` with conservative request sizes.
    pub fn new(market: Market) -> BinanceRules {
        BinanceRules {
            market,
            max_streams_per_request: 200,
            max_url_bytes: 8000,
            idle_timeout: Duration::from_secs(65),
        }
    }

    /// The market.
    pub fn market(&self) -> Market {
        self.market
    }
}

#[derive(Deserialize)]
struct Control<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default, borrow)]
    stream: Option<Cow<'a, str>>,
    /// The payload's head; array payloads (`!miniTicker@arr`) carry no sequence and give `None`.
    #[serde(default, borrow, deserialize_with = "head_or_skip")]
    data: Option<DataHead<'a>>,
    #[serde(default, borrow)]
    e: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(default)]
    code: i64,
    #[serde(default, borrow)]
    msg: Cow<'a, str>,
}

/// The fields of a payload the engine needs (sequence numbers, event type).
#[derive(Deserialize)]
#[allow(non_snake_case)]
struct DataHead<'a> {
    #[serde(default, borrow)]
    e: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "id_or_skip")]
    t: Option<u64>,
    /// The aggTrade id, or (on depth) the asks array, which is skipped.
    #[serde(default, deserialize_with = "id_or_skip")]
    a: Option<u64>,
    #[serde(default, deserialize_with = "id_or_skip")]
    U: Option<u64>,
    #[serde(default, deserialize_with = "id_or_skip")]
    u: Option<u64>,
    #[serde(default)]
    pu: Option<i64>,
}

/// A payload object's head, or `None` for an array or scalar payload.
fn head_or_skip<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DataHead<'a>>, D::Error> {
    struct V<'a>(std::marker::PhantomData<&'a ()>);
    impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
        type Value = Option<DataHead<'a>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a payload")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            DataHead::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

use crate::dec::u64_or_skip as id_or_skip;

impl VenueRules for BinanceRules {
    fn name(&self) -> &str {
        "binance"
    }

    fn heartbeat(&self) -> Heartbeat {
        let client_ping =
            if self.market == Market::Spot { ClientPing::None } else { ClientPing::WsPing(b"ferrofeed".to_vec()) };
        Heartbeat { client_ping, interval: Duration::from_secs(30), idle_timeout: self.idle_timeout }
    }

    fn limits(&self) -> ConnLimits {
        let (max_streams, max_msgs) = match self.market {
            Market::Spot => (1024, 5),
            Market::UsdM | Market::CoinM => (1024, 10),
            Market::Options => (200, 10),
        };
        ConnLimits {
            max_streams,
            max_msgs,
            msg_window: Duration::from_secs(1),
            max_streams_per_request: self.max_streams_per_request,
            max_request_bytes: 16 * 1024,
            // Binance counts streams, not characters.
            max_stream_chars: None,
        }
    }

    fn encode_subscribe(&self, id: u64, streams: &[String]) -> String {
        serde_json::json!({"method": "SUBSCRIBE", "params": streams, "id": id}).to_string()
    }

    fn encode_unsubscribe(&self, id: u64, streams: &[String]) -> String {
        serde_json::json!({"method": "UNSUBSCRIBE", "params": streams, "id": id}).to_string()
    }

    fn connect_url(&self, base: &str, streams: &[String]) -> (String, usize) {
        let mut url = format!("{}/stream", base.trim_end_matches('/'));
        let mut n = 0;
        for s in streams {
            let extra = s.len() + 1 + if n == 0 { "?streams=".len() } else { 0 };
            if url.len() + extra > self.max_url_bytes || n >= self.limits().max_streams {
                break;
            }
            url.push_str(if n == 0 { "?streams=" } else { "/" });
            url.push_str(s);
            n += 1;
        }
        (url, n)
    }

    /// All-market arrays (`!ticker@arr`, about 3,000 symbols on spot) are
    /// the largest frames, near 1 MiB: 4 MiB leaves room to grow.
    fn max_frame_bytes(&self) -> usize {
        4 << 20
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        match classify_fast(frame) {
            Some(inbound) => inbound,
            None => classify_slow(frame),
        }
    }
}

/// The general classification: the whole frame through serde_json.
fn classify_slow(frame: &str) -> Inbound<'_> {
    let c: Control<'_> = match serde_json::from_str(frame) {
        Ok(c) => c,
        Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
    };
    let id = c.id.as_ref().and_then(serde_json::Value::as_u64);
    if let Some(err) = c.error {
        return Inbound::Rejected { id, code: err.code, msg: err.msg.into_owned(), streams: Vec::new() };
    }
    if c.result.is_some() || (c.id.is_some() && c.stream.is_none()) {
        return match id {
            Some(id) => Inbound::Ack { id },
            None => Inbound::Unknown,
        };
    }
    let Some(stream) = c.stream else {
        return if c.e.as_deref() == Some("serverShutdown") { Inbound::Shutdown } else { Inbound::Unknown };
    };
    let Some(data) = c.data else {
        // An array payload (`!miniTicker@arr`): data without sequence numbers.
        return Inbound::Data { stream, seq: None };
    };
    let ids = Ids { e: data.e.as_deref(), t: data.t, a: data.a, first: data.U, last: data.u, pu: data.pu };
    match ids.seq(&stream) {
        Some(seq) => Inbound::Data { stream, seq },
        None => Inbound::Shutdown,
    }
}

/// What classification reads from a combined-stream payload.
#[derive(Default)]
struct Ids<'a> {
    e: Option<&'a str>,
    t: Option<u64>,
    a: Option<u64>,
    first: Option<u64>,
    last: Option<u64>,
    pu: Option<i64>,
}

impl Ids<'_> {
    /// The payload's sequence numbers on `stream`; `None` for a shutdown notice.
    fn seq(&self, stream: &str) -> Option<Option<Seq>> {
        Some(match self.e {
            Some("serverShutdown") => return None,
            Some("trade") => self.t.map(Seq::single),
            Some("aggTrade") => self.a.map(Seq::single),
            Some("depthUpdate") => match (self.first, self.last, self.pu) {
                // Partial-depth frames on derivatives have the same shape; their
                // ids are snapshots of the book, not a diff chain.
                _ if stream.contains("@depth5") || stream.contains("@depth10") || stream.contains("@depth20") => None,
                (Some(first), Some(last), Some(pu)) if pu >= 0 => Some(Seq::chained(first, last, pu as u64)),
                (Some(first), Some(last), _) => Some(Seq::range(first, last)),
                _ => None,
            },
            _ => None,
        })
    }
}

/// The hot path of [`BinanceRules::classify`]: a combined-stream data frame
/// (`{"stream":"…","data":{…}}`) read in one validating scan, without
/// building a value, and classified exactly as [`classify_slow`] would.
/// `None` hands the frame to the general path: control frames (`id`,
/// `result`, `error`, a top-level `e`), payloads that are not objects, a
/// repeated field, any string with an escape, an id or `pu` that is not a
/// plain integer in range, deep nesting, and of course anything that is not
/// valid JSON (which the general path reports as malformed).
fn classify_fast(frame: &str) -> Option<Inbound<'_>> {
    let mut sc = wire::Scan::new(frame);
    let mut stream: Option<&str> = None;
    let mut ids: Option<Ids<'_>> = None;
    sc.object(|sc, key| match key {
        "stream" if stream.is_none() => {
            stream = Some(sc.str()?);
            Some(())
        }
        "data" if ids.is_none() => {
            ids = Some(scan_ids(sc)?);
            Some(())
        }
        // Control fields, and repeats, which serde refuses.
        "stream" | "data" | "id" | "result" | "error" | "e" => None,
        _ => sc.skip_value(1),
    })?;
    sc.end()?;
    let (stream, ids) = (stream?, ids?);
    Some(match ids.seq(stream) {
        Some(seq) => Inbound::Data { stream: Cow::Borrowed(stream), seq },
        None => Inbound::Shutdown,
    })
}

/// The payload object's event type and id fields, as [`DataHead`] reads them.
fn scan_ids<'a>(sc: &mut wire::Scan<'a>) -> Option<Ids<'a>> {
    let mut ids = Ids::default();
    let mut seen = 0u8;
    // An id field as `u64_or_skip` reads it: a plain integer, or `None` for a
    // string, literal, array or object.
    let id = |sc: &mut wire::Scan<'a>| -> Option<Option<u64>> {
        match sc.peek()? {
            b'0'..=b'9' => sc.uint().map(Some),
            b'-' => None,
            _ => sc.skip_value(2).map(|()| None),
        }
    };
    sc.object(|sc, key| {
        let bit = match key {
            "e" => 1,
            "t" => 2,
            "a" => 4,
            "U" => 8,
            "u" => 16,
            "pu" => 32,
            _ => return sc.skip_value(2),
        };
        if seen & bit != 0 {
            return None; // a repeated field
        }
        seen |= bit;
        match key {
            "e" => ids.e = Some(sc.str()?),
            "t" => ids.t = id(sc)?,
            "a" => ids.a = id(sc)?,
            "U" => ids.first = id(sc)?,
            "u" => ids.last = id(sc)?,
            _ => {
                ids.pu = match sc.peek()? {
                    b'n' => {
                        (sc.literal()? == wire::Lit::Null).then_some(())?;
                        None
                    }
                    _ => Some(sc.int()?),
                }
            }
        }
        Some(())
    })?;
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/");

    fn fixture(rel: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    #[test]
    fn classifies_real_frames() {
        let spot = BinanceRules::new(Market::Spot);
        let usdm = BinanceRules::new(Market::UsdM);
        let agg = fixture("binance_spot/agg_trade.json");
        assert_eq!(
            spot.classify(&agg),
            Inbound::Data { stream: "nknusdt@aggTrade".into(), seq: Some(Seq::single(15683430)) }
        );
        let depth = fixture("binance_spot/depth_update.json");
        assert_eq!(
            spot.classify(&depth),
            Inbound::Data { stream: "nknusdt@depth@100ms".into(), seq: Some(Seq::range(499869753, 499869754)) }
        );
        let fdepth = fixture("binance_futures/depth_update.json");
        assert_eq!(
            usdm.classify(&fdepth),
            Inbound::Data {
                stream: "sushiusdt@depth@100ms".into(),
                seq: Some(Seq::chained(600859599090, 600859600917, 600859598061))
            }
        );
        let bt = fixture("binance_spot/book_ticker.json");
        assert_eq!(spot.classify(&bt), Inbound::Data { stream: "nknusdt@bookTicker".into(), seq: None });
        assert_eq!(spot.classify(&fixture("binance_spot/subscribe_response.docs.json")), Inbound::Ack { id: 1 });
        assert_eq!(
            spot.classify(&fixture("binance_spot/list_subscriptions_response.docs.json")),
            Inbound::Ack { id: 3 }
        );
        assert_eq!(spot.classify(&fixture("binance_spot/server_shutdown.docs.json")), Inbound::Shutdown);
        assert_eq!(spot.classify(&fixture("binance_spot/server_shutdown_combined.docs.json")), Inbound::Shutdown);
        assert_eq!(
            spot.classify(r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":7}"#),
            Inbound::Rejected { id: Some(7), code: 2, msg: "Invalid request: invalid stream".into(), streams: vec![] }
        );
        assert!(matches!(spot.classify("{\"e\":\"trade\",\"E\":"), Inbound::Malformed(_)));
        assert!(matches!(spot.classify("[1,2]"), Inbound::Malformed(_)));
        assert_eq!(spot.classify(r#"{"hello":1}"#), Inbound::Unknown);
        // Array payloads are data without sequence numbers, not errors.
        let arr = r#"{"stream":"!miniTicker@arr","data":[{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"1"}]}"#;
        assert_eq!(spot.classify(arr), Inbound::Data { stream: "!miniTicker@arr".into(), seq: None });
    }

    /// Every Binance fixture, whole and (for `.jsonl`) line by line.
    fn all_fixtures() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    walk(&p, out);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                let name = p.display().to_string();
                if name.ends_with(".jsonl") {
                    for (i, line) in text.lines().enumerate() {
                        out.push((format!("{name}:{}", i + 1), line.to_string()));
                    }
                }
                out.push((name, text));
            }
        }
        let mut out = Vec::new();
        for dir in ["binance_spot", "binance_futures"] {
            walk(std::path::Path::new(&format!("{FIXTURES}{dir}")), &mut out);
        }
        assert!(out.len() > 100, "fixtures missing: {}", out.len());
        out
    }

    /// The fast path, where it answers, answers exactly like the general one.
    #[track_caller]
    fn agree(frame: &str) -> bool {
        match classify_fast(frame) {
            Some(fast) => {
                assert_eq!(fast, classify_slow(frame), "fast and general paths differ on {frame:?}");
                true
            }
            None => false,
        }
    }

    /// Single-character edits of `frame` at every position (`scan::mutants`),
    /// with the fields and fragments Binance's readers care about.
    fn mutants(frame: &str, f: impl FnMut(&str)) {
        const TOKENS: [&str; 13] = [
            "\"t\":1,",
            "\"id\":1,",
            "\"result\":null,",
            "\"error\":{},",
            "\"e\":\"x\",",
            "\"e\":null,",
            "\"pu\":1,",
            "\"U\":1,",
            "\"u\":\"1\",",
            "\"a\":[],",
            "\"stream\":\"x\",",
            "\"data\":{},",
            ",null",
        ];
        crate::scan::mutants(frame, &TOKENS, f)
    }

    /// The one-pass reader, where it answers, gives exactly what classifying
    /// and then decoding give (issue 22): the same `Data` (stream and
    /// sequence numbers) and the same single event.
    #[track_caller]
    fn read_agrees(frame: &str) -> bool {
        let mut answered = false;
        for market in [Market::Spot, Market::UsdM, Market::CoinM] {
            let Some((stream, seq, event)) = normalize::read_fast(market, frame, 7) else {
                continue;
            };
            answered = true;
            assert_eq!(
                Inbound::Data { stream: Cow::Borrowed(stream), seq },
                BinanceRules::new(market).classify(frame),
                "one-pass and classify differ on {frame:?}"
            );
            assert_eq!(classify_slow(frame), Inbound::Data { stream: Cow::Borrowed(stream), seq }, "{frame:?}");
            let decoded = normalize::decode(market, frame, 7).unwrap_or_else(|e| panic!("{frame:?}: {e}"));
            assert_eq!(decoded, vec![event], "one-pass and decode differ on {frame:?}");
        }
        answered
    }

    #[test]
    fn the_one_pass_reader_agrees_with_classify_then_decode() {
        let mut corpus: Vec<String> = Vec::new();
        let mut hot = 0;
        for (name, text) in all_fixtures() {
            let fast = read_agrees(&text);
            // Every capture line of a hot kind on a combined stream takes the one pass.
            let kind = text.split('"').nth(3).unwrap_or_default().to_string();
            if name.contains(".jsonl:")
                && text.starts_with("{\"stream\"")
                && (kind.ends_with("@trade") || kind.ends_with("@aggTrade") || kind.contains("@depth@"))
            {
                assert!(fast, "{name} missed the one pass");
                hot += 1;
            }
            if !text.trim_start().starts_with("{\"stream\"") && text.len() < 8000 {
                for stream in ["x@trade", "x@aggTrade", "x@depth@100ms", "x@depth", "x@bookTicker", "x@depth5"] {
                    let wrapped = format!("{{\"stream\":\"{stream}\",\"data\":{text}}}");
                    read_agrees(&wrapped);
                    corpus.push(wrapped);
                }
            }
            corpus.push(text);
        }
        assert!(hot >= 100, "{hot}");
        let mut answered = 0;
        let mut taken = 0;
        for frame in corpus.iter().filter(|f| f.len() <= 1200) {
            mutants(frame, |m| {
                answered += usize::from(read_agrees(m));
            });
            taken += 1;
            if taken > 400 {
                break;
            }
        }
        // The mutations reach both sides of the one pass.
        assert!(answered > 1000, "{answered}");
    }

    #[test]
    fn fast_classification_agrees_with_the_general_path_on_every_fixture() {
        let mut corpus: Vec<String> = Vec::new();
        let mut hot = 0;
        for (name, text) in all_fixtures() {
            let fast = agree(&text);
            // Every combined-stream data line of the captures takes the fast path.
            if name.contains(".jsonl:") && text.starts_with("{\"stream\"") {
                assert!(fast, "{name} missed the fast path");
                hot += 1;
            }
            // Each payload also inside a combined envelope, as it arrives on `/stream`,
            // whitespace and all, under stream names of every kind.
            if !text.trim_start().starts_with("{\"stream\"") && text.len() < 8000 {
                for stream in ["x@trade", "x@aggTrade", "x@depth@100ms", "x@depth5", "x@bookTicker", "!x@arr"] {
                    let wrapped = format!("{{\"stream\":\"{stream}\",\"data\":{text}}}");
                    agree(&wrapped);
                    corpus.push(wrapped);
                }
            }
            corpus.push(text);
        }
        assert!(hot >= 399, "{hot}");
        // Mutate the small frames (every fixture payload, wrapped, and the first
        // capture lines) at every position.
        let mut taken = 0;
        for frame in corpus.iter().filter(|f| f.len() <= 1200) {
            mutants(frame, |m| {
                agree(m);
            });
            taken += 1;
            if taken > 400 {
                break;
            }
        }
    }

    #[test]
    fn fast_classification_agrees_on_edge_values() {
        let hot = [
            r#"{"stream":"loadusdt@trade","data":{"e":"trade","E":1111111111111111,"s":"LOADUSDT","t":2222222222,"p":"100.00000000","q":"1.00000000","T":1111111111111111,"m":true,"M":true}}"#,
            r#"{"stream":"x@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"X","U":5,"u":6,"pu":4,"b":[["1","2"]],"a":[]}}"#,
            r#"{"stream":"x@bookTicker","data":{"u":45218734020,"s":"X","b":"1","B":"2","a":"3","A":"4"}}"#,
            r#"{"stream":"x@aggTrade","data":{"e":"aggTrade","E":1,"s":"X","a":3,"p":"1","q":"2","f":1,"l":2,"T":2,"m":true}}"#,
            r#"{"stream":"x@trade","data":{"e":"serverShutdown","E":1}}"#,
        ];
        for f in hot {
            assert!(agree(f), "{f} missed the fast path");
            mutants(f, |m| {
                agree(m);
            });
        }
        let values = [
            "0",
            "00",
            "01",
            "-0",
            "-1",
            "1.0",
            "1e3",
            "1E3",
            "1e",
            "1.",
            "-",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "\"5\"",
            "\"\\u0035\"",
            "null",
            "true",
            "false",
            "nul",
            "[1]",
            "[]",
            "{}",
            "{\"a\":1}",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "1.5e400",
            "\"\u{1}\"",
            "[1,]",
            "{\"a\":1,}",
            " 7 ",
        ];
        for field in ["t", "a", "U", "u", "pu", "e", "E", "zz"] {
            for v in values {
                for (stream, e) in [("x@trade", "trade"), ("x@aggTrade", "aggTrade"), ("x@depth", "depthUpdate")] {
                    let f = format!(
                        r#"{{"stream":"{stream}","data":{{"e":"{e}","t":1,"a":2,"U":3,"u":4,"{field}":{v}}}}}"#
                    );
                    agree(&f);
                    let f = format!(r#"{{"stream":"{stream}","data":{{"{field}":{v},"e":"{e}","U":3,"u":4,"pu":2}}}}"#);
                    agree(&f);
                    let f = format!(r#"{{"{field}":{v},"stream":"{stream}","data":{{"e":"{e}","t":9}}}}"#);
                    agree(&f);
                }
            }
        }
        for f in [
            r#"{"stream":"x@trade","stream":"x@trade","data":{"e":"trade","t":1}}"#,
            r#"{"stream":"x@trade","data":{"e":"trade","t":1},"data":{"e":"trade","t":1}}"#,
            r#"{"stream":"x@trade","data":{"e":"trade","t":1,"t":2}}"#,
            r#"{"stream":"x@trade","data":{"e":"trade","M":1,"M":2,"t":2}}"#,
            r#"{"stream":"x@trade","x":1,"x":2,"data":{"e":"trade","t":2}}"#,
            r#"{"stream":"x@trade","data":{"e":"trade","t":2}}  "#,
            r#"  {"stream" : "x@trade" , "data" : { "e" : "trade" , "t" : 2 } }"#,
            r#"{"stream":"x@trade","data":{"e":"trade","t":2}} x"#,
            r#"{"stream":"x@trade","data":{"e":"trade","t":2}}{}"#,
            r#"{"stream":"x@trade","data":[{"e":"trade","t":2}]}"#,
            r#"{"stream":"x@trade","data":null}"#,
            r#"{"stream":"x@trade"}"#,
            r#"{"data":{"e":"trade","t":2}}"#,
            r#"{"stream":null,"data":{"e":"trade","t":2}}"#,
            r#"{"stream":"x@trade","data":{"e":"trade","t":2},"id":1}"#,
            r#"{"stream":"x@trade","data":{"e":"trade","t":2},"result":null}"#,
            r#"{"stream":"x@tr\u0061de","data":{"e":"trade","t":2}}"#,
            r#"{"str\u0065am":"x@trade","data":{"e":"trade","t":2}}"#,
            r#"{"stream":"x@trade","data":{"\u0074":5,"e":"trade","t":2}}"#,
            r#"{"stream":"x@depth10","data":{"e":"depthUpdate","U":1,"u":2,"pu":0}}"#,
            r#"{"stream":"x@depth","data":{"e":"depthUpdate","U":1,"u":2,"pu":-1}}"#,
            r#"{"stream":"x@depth","data":{"e":"depthUpdate","U":1,"pu":0}}"#,
            "{\"stream\":\"x@trade\",\"data\":{\"e\":\"trade\",\"t\":2,\"s\":\"a\u{7f}b\"}}",
            "{}",
            "",
            " ",
            "[]",
            "null",
        ] {
            agree(f);
        }
    }

    #[test]
    fn connect_url_carries_streams_up_to_its_byte_limit() {
        let mut r = BinanceRules::new(Market::Spot);
        r.max_url_bytes = 60;
        let streams: Vec<String> = (0..10).map(|i| format!("s{i}usdt@trade")).collect();
        let (url, n) = r.connect_url("ws://h:1", &streams);
        assert!(url.len() <= 60, "{url}");
        assert_eq!(url, "ws://h:1/stream?streams=s0usdt@trade/s1usdt@trade");
        assert_eq!(n, 2);
        assert_eq!(r.connect_url("ws://h:1/", &[]), ("ws://h:1/stream".to_string(), 0));
    }
}
