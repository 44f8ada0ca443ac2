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

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
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
        let seq = match data.e.as_deref() {
            Some("serverShutdown") => return Inbound::Shutdown,
            Some("trade") => data.t.map(Seq::single),
            Some("aggTrade") => data.a.map(Seq::single),
            Some("depthUpdate") => match (data.U, data.u, data.pu) {
                // Partial-depth frames on derivatives have the same shape; their
                // ids are snapshots of the book, not a diff chain.
                _ if stream.contains("@depth5") || stream.contains("@depth10") || stream.contains("@depth20") => None,
                (Some(first), Some(last), Some(pu)) if pu >= 0 => Some(Seq::chained(first, last, pu as u64)),
                (Some(first), Some(last), _) => Some(Seq::range(first, last)),
                _ => None,
            },
            _ => None,
        };
        Inbound::Data { stream, seq }
    }
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
