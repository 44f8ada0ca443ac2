//! Bybit v5: spot, linear, inverse and option public streams, and the private
//! stream (PROTOCOLS.md §5).
//!
//! The client keeps the connection alive: `{"op":"ping"}` every 20 s, answered
//! by a pong whose shape depends on the endpoint (spot, linear and inverse
//! `{"success":true,"ret_msg":"pong",..,"op":"ping"}`; option and private
//! `{"op":"pong","args":[..]}`); the server cuts a connection silent for 10
//! minutes. Requests are `{"req_id":"<n>","op":"subscribe","args":[topics]}`;
//! the venue echoes `req_id` in its answer, which is how acks are matched.
//! Answers without it are matched generically
//! ([`Inbound::AckStreams`]):
//! option's `{"type":"COMMAND_RESP","data":{"successTopics","failTopics"}}`
//! by the topics it names, the private `{"success":true,"op":"subscribe"}`
//! (and linear's `"req_id":""`) as the oldest pending request of that op.
//! Failures carry no numeric code on public endpoints, only `ret_msg`
//! (`error:handler not found,topic:<t>`, `args size >10`, `error:invalid op`,
//! ...).
//!
//! Public connections are sized by characters: the args on one connection
//! may total 21,000 characters, which the engine's pools enforce through
//! [`ConnLimits::max_stream_chars`], with a topic count cap on top
//! ([`BybitRules::max_streams`]).
//!
//! Private connections authenticate first with
//! `{"op":"auth","args":[apiKey, expires, hex HMAC-SHA256("GET/realtime"+expires)]}`,
//! signed afresh on every connect.
//!
//! Data frames name their `topic`, which is the stream key. Sequence
//! numbers: order-book deltas carry the topic's update id `u`, consecutive
//! from one delta to the next; a snapshot (sent after every subscribe, at any
//! time, and as `u == 1` after a service restart) restarts it
//! ([`SeqKind::Reset`](ferrofeed_model::rules::SeqKind::Reset)). The cross
//! sequence `seq` orders data across depths but is not consecutive; it is not
//! used for gap detection. Trades, tickers, klines, liquidations and private
//! topics carry nothing the engine can track.
//!
//! Data frames are classified by a validating scan that skips the payload
//! (except a book's `u`); control frames and anything unusual go through
//! serde. The decoder reads trade, book and ticker frames in one pass
//! (`normalize::read_fast`, issue 22).

pub mod auth;
pub mod book;
mod endpoints;
pub mod normalize;
pub mod spec;
pub mod trade;
mod wire;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::rules::{ClientPing, ConnLimits, Heartbeat, Inbound, RequestOp, Seq, VenueRules, stream_chars};
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::auth::{Clock, CredentialError, Credentials};
pub use endpoints::{Category, Environment, private_url, public_url, rest_base, snapshot_request};

/// The client ping frame (`req_id` is optional and omitted).
pub const PING: &str = r#"{"op":"ping"}"#;

/// The venue's limits (PROTOCOLS.md §5.2), as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueLimits {
    /// New connections allowed per `connection_window` per WebSocket domain.
    pub max_connections: usize,
    /// The window of `max_connections`.
    pub connection_window: Duration,
    /// Topics per subscribe request (`None`: no stated limit). Spot: 10,
    /// answered `args size >10` beyond.
    pub args_per_request: Option<usize>,
    /// Topics per connection (`None`: no stated limit). Option: 2000.
    pub args_per_connection: Option<usize>,
    /// Total characters of the topics subscribed on one public connection.
    pub args_chars_per_connection: usize,
    /// The server closes a connection that sent no ping and received no data
    /// for this long.
    pub server_idle_cut: Duration,
    /// The client ping interval the venue recommends.
    pub ping_interval: Duration,
}

/// The limits of a public `category` connection.
pub fn venue_limits(category: Category) -> VenueLimits {
    VenueLimits {
        max_connections: 500,
        connection_window: Duration::from_secs(300),
        args_per_request: (category == Category::Spot).then_some(10),
        args_per_connection: (category == Category::Option).then_some(2000),
        args_chars_per_connection: 21_000,
        server_idle_cut: Duration::from_secs(600),
        ping_interval: Duration::from_secs(20),
    }
}

/// The limits of the private connection: the same connection budget; a
/// handful of topics (`order`, `execution`, `position`, `wallet`, ...).
pub fn private_limits() -> VenueLimits {
    VenueLimits { args_per_request: Some(10), args_per_connection: Some(32), ..venue_limits(Category::Linear) }
}

/// Characters of `topics` as the venue counts them against
/// [`VenueLimits::args_chars_per_connection`] (the engine's
/// [`stream_chars`], summed).
pub fn args_chars(topics: &[String]) -> usize {
    topics.iter().map(|t| stream_chars(t)).sum()
}

/// The topic count cap of a public connection, on top of the character
/// budget (and below option's stated 2000). See [`BybitRules::max_streams`].
pub const MAX_TOPICS_PER_CONNECTION: usize = 1000;

/// Whether `topics` fit one connection of `limits` (count and characters).
pub fn fits_connection(limits: &VenueLimits, topics: &[String]) -> bool {
    limits.args_per_connection.is_none_or(|n| topics.len() <= n)
        && args_chars(topics) <= limits.args_chars_per_connection
}

/// A private connection's credentials and clock.
#[derive(Clone)]
struct Auth {
    creds: Arc<Credentials>,
    clock: Arc<Clock>,
    /// `expires` is the venue's time now plus this.
    valid_for: Duration,
}

/// The rules of one Bybit connection: a public category, or private.
#[derive(Clone)]
pub struct BybitRules {
    category: Option<Category>,
    auth: Option<Auth>,
    /// How often `{"op":"ping"}` is sent.
    pub ping_interval: Duration,
    /// No frame at all for this long means the socket is dead (each ping is
    /// answered, so a few intervals suffice).
    pub idle_timeout: Duration,
    /// Client messages per second. Bybit states no inbound message limit;
    /// this keeps the pacer from bursting.
    pub max_msgs: usize,
    /// Topics per connection: a count cap on top of
    /// [`max_stream_chars`](Self::max_stream_chars), which is what the venue
    /// actually limits (it states a count only for option: 2000). The
    /// default is [`MAX_TOPICS_PER_CONNECTION`] (1000, below option's 2000).
    /// Typical topics (`orderbook.50.BTCUSDT`, `publicTrade.BTCUSDT`) have
    /// about 20 characters, so 21,000 characters end at about 1000 of them
    /// anyway and the cap costs no connection there. It binds only for
    /// shorter topics (`tickers.BTCUSDT`: 15 characters, 1400 to the
    /// budget), keeping the traffic one socket (read by one task) carries
    /// near what Binance allows one connection (1024 streams). Longer topics
    /// (option symbols, 1000-level books) are bounded by characters alone,
    /// as many as fit, instead of by a count sized for an assumed length.
    pub max_streams: usize,
    /// Characters of topics per connection (21,000 on public connections;
    /// `None` on the private one, which holds a handful of short topics).
    pub max_stream_chars: Option<usize>,
    /// Topics per subscribe request.
    pub max_streams_per_request: usize,
}

impl fmt::Debug for BybitRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BybitRules")
            .field("category", &self.category)
            .field("private", &self.auth.is_some())
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_msgs", &self.max_msgs)
            .field("max_streams", &self.max_streams)
            .field("max_stream_chars", &self.max_stream_chars)
            .field("max_streams_per_request", &self.max_streams_per_request)
            .finish()
    }
}

impl BybitRules {
    /// The rules of a public `category` connection.
    pub fn public(category: Category) -> BybitRules {
        let limits = venue_limits(category);
        BybitRules {
            category: Some(category),
            auth: None,
            ping_interval: limits.ping_interval,
            idle_timeout: Duration::from_secs(60),
            max_msgs: 20,
            max_streams: limits
                .args_per_connection
                .map_or(MAX_TOPICS_PER_CONNECTION, |n| n.min(MAX_TOPICS_PER_CONNECTION)),
            max_stream_chars: Some(limits.args_chars_per_connection),
            // Linear, inverse and option state no per-request limit; requests
            // stay small so one bad topic refuses little.
            max_streams_per_request: limits.args_per_request.unwrap_or(50),
        }
    }

    /// The rules of the private connection, authenticating with `creds` (an
    /// HMAC key: Bybit takes no Ed25519 keys) at the time `clock` gives.
    pub fn private(creds: Arc<Credentials>, clock: Arc<Clock>) -> Result<BybitRules, CredentialError> {
        if creds.kind() != crate::auth::KeyKind::Hmac {
            return Err(CredentialError::Unsupported("Bybit accepts HMAC-SHA256 API keys only"));
        }
        let limits = private_limits();
        Ok(BybitRules {
            category: None,
            auth: Some(Auth { creds, clock, valid_for: Duration::from_secs(10) }),
            ping_interval: limits.ping_interval,
            idle_timeout: Duration::from_secs(60),
            max_msgs: 20,
            max_streams: limits.args_per_connection.unwrap_or(32),
            max_stream_chars: None,
            max_streams_per_request: limits.args_per_request.unwrap_or(10),
        })
    }

    /// The public category; `None` for the private connection.
    pub fn category(&self) -> Option<Category> {
        self.category
    }

    /// Whether this is the private connection.
    pub fn is_private(&self) -> bool {
        self.auth.is_some()
    }

    /// The auth frame for an `expires` (venue ms) of the caller's choosing.
    /// `None` on public connections.
    pub fn auth_frame(&self, id: u64, expires_ms: i64) -> Option<String> {
        let a = self.auth.as_ref()?;
        Some(auth::auth_frame(&a.creds, id, expires_ms))
    }

    fn request(op: &str, id: u64, topics: &[String]) -> String {
        serde_json::json!({"req_id": id.to_string(), "op": op, "args": topics}).to_string()
    }
}

/// The fields of a frame the engine needs. Strings borrow from the frame.
#[derive(Deserialize)]
struct Control<'a> {
    #[serde(default, borrow)]
    topic: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default, borrow)]
    ret_msg: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "retMsg")]
    ret_msg_camel: Option<Cow<'a, str>>,
    #[serde(default, rename = "retCode")]
    ret_code: Option<i64>,
    #[serde(default, deserialize_with = "req_id")]
    req_id: Option<u64>,
    #[serde(default, deserialize_with = "head_or_skip")]
    data: Option<DataHead>,
}

impl Control<'_> {
    fn msg(&self) -> &str {
        self.ret_msg.as_deref().or(self.ret_msg_camel.as_deref()).unwrap_or("")
    }

    fn code(&self) -> i64 {
        self.ret_code.unwrap_or(0)
    }
}

/// The head of an object `data`: the book update id, and the option
/// subscribe answer's confirmed and failed topics.
#[derive(Deserialize, Default)]
struct DataHead {
    #[serde(default, deserialize_with = "u64_or_skip")]
    u: Option<u64>,
    #[serde(default, rename = "successTopics")]
    success_topics: Option<Vec<String>>,
    #[serde(default, rename = "failTopics")]
    fail_topics: Option<Vec<String>>,
}

/// A request id as we send it (a decimal string); a number is accepted too.
/// An empty or foreign string is no id of ours.
fn req_id<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a request id")
        }
        fn visit_str<E>(self, v: &str) -> Result<Option<u64>, E> {
            Ok(v.parse().ok())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Option<u64>, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<u64>, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<u64>, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

use crate::dec::u64_or_skip;

/// An object `data`'s head, or `None` for an array or scalar (trades,
/// klines, private topics), skipped without allocating.
fn head_or_skip<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<DataHead>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<DataHead>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a payload")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            DataHead::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
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
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// The topics named in a failure message (`error:handler not
/// found,topic:orderbook.50.NOPEUSDT`): only those failed. Empty when the
/// message names none (the whole request failed).
pub fn refused_topics(msg: &str) -> Vec<String> {
    msg.split("topic:")
        .skip(1)
        .filter_map(|rest| {
            let t = rest.split([',', ' ', ';', ']']).next().unwrap_or("").trim();
            (!t.is_empty()).then(|| t.to_string())
        })
        .collect()
}

/// The sequence of an order-book frame: deltas continue the topic's `u`,
/// snapshots (and `u == 1`, a restart) reset it.
fn book_seq(kind: Option<&str>, u: u64) -> Option<Seq> {
    match kind {
        _ if u == 1 => Some(Seq::reset(u)),
        Some("snapshot") => Some(Seq::reset(u)),
        // A restart's `u == 1` snapshot can be lost: a far step back is a
        // restart, not a re-send.
        Some("delta") => Some(Seq::restartable(u, u)),
        _ => None,
    }
}

impl VenueRules for BybitRules {
    fn name(&self) -> &str {
        "bybit"
    }

    fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            client_ping: ClientPing::Text(PING.to_string()),
            interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
        }
    }

    fn limits(&self) -> ConnLimits {
        ConnLimits {
            max_streams: self.max_streams,
            max_msgs: self.max_msgs,
            msg_window: Duration::from_secs(1),
            max_streams_per_request: self.max_streams_per_request,
            max_request_bytes: 21_000,
            max_stream_chars: self.max_stream_chars,
        }
    }

    /// The largest public frames are `orderbook.1000` snapshots (about
    /// 60 kB) and batched option tickers: 1 MiB is ample.
    fn max_frame_bytes(&self) -> usize {
        1 << 20
    }

    fn encode_subscribe(&self, id: u64, streams: &[String]) -> String {
        BybitRules::request("subscribe", id, streams)
    }

    fn encode_unsubscribe(&self, id: u64, streams: &[String]) -> String {
        BybitRules::request("unsubscribe", id, streams)
    }

    fn auth_request(&self, id: u64) -> Option<String> {
        let a = self.auth.as_ref()?;
        let valid_ms = i64::try_from(a.valid_for.as_millis()).unwrap_or(10_000);
        Some(auth::auth_frame(&a.creds, id, a.clock.now_ms().saturating_add(valid_ms)))
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        match classify_fast(frame) {
            Some(inbound) => inbound,
            None => classify_slow(frame),
        }
    }
}

/// The hot path of [`BybitRules::classify`]: a data frame (one with a
/// `topic`) read in one validating scan, without building a value, and
/// classified exactly as [`classify_slow`] would (issue 22). The payload is
/// skipped, except an object's `u` (the book update id) and the fields
/// `DataHead` would refuse. `None` hands the frame to the general path:
/// control frames (`op`, `success`, `ret_msg`, `retMsg`, `retCode`,
/// `req_id`), a repeated field, any string with an escape, a `u` that is
/// not a plain integer, `successTopics` or `failTopics` in the payload,
/// deep nesting, and anything that is not valid JSON.
fn classify_fast(frame: &str) -> Option<Inbound<'_>> {
    let mut sc = crate::scan::Scan::new(frame);
    let (mut topic, mut kind, mut u) = (None, None, None);
    let mut data = false;
    sc.object(|sc, key| match key {
        "topic" if topic.is_none() => {
            topic = Some(sc.str()?);
            Some(())
        }
        "type" if kind.is_none() => {
            kind = Some(sc.str()?);
            Some(())
        }
        "data" if !data => {
            data = true;
            u = scan_head(sc)?;
            Some(())
        }
        // Control fields, and repeats, which serde refuses.
        "topic" | "type" | "data" | "op" | "success" | "ret_msg" | "retMsg" | "retCode" | "req_id" => None,
        _ => sc.skip_value(1),
    })?;
    sc.end()?;
    let topic = topic?;
    let seq = if topic.starts_with("orderbook.") { u.and_then(|u| book_seq(kind, u)) } else { None };
    Some(Inbound::Data { stream: Cow::Borrowed(topic), seq })
}

/// A payload as [`head_or_skip`] reads it: an object's `u` (as
/// `u64_or_skip`: a plain integer, `None` for a string, literal, array or
/// object), or nothing for any other value. `None` (to serde) for a repeated
/// `u`, a `u` that is a negative or non-integer number, and an object with
/// `successTopics` or `failTopics`.
fn scan_head(sc: &mut crate::scan::Scan<'_>) -> Option<Option<u64>> {
    if sc.peek()? != b'{' {
        sc.skip_value(1)?;
        return Some(None);
    }
    let mut u = None;
    let mut seen = false;
    sc.object(|sc, key| match key {
        "u" if !seen => {
            seen = true;
            u = match sc.peek()? {
                b'0'..=b'9' => Some(sc.uint()?),
                b'-' => return None,
                _ => {
                    sc.skip_value(2)?;
                    None
                }
            };
            Some(())
        }
        "u" | "successTopics" | "failTopics" => None,
        _ => sc.skip_value(2),
    })?;
    Some(u)
}

/// The general classification: the whole frame through serde_json.
fn classify_slow(frame: &str) -> Inbound<'_> {
    let mut c: Control<'_> = match serde_json::from_str(frame) {
        Ok(c) => c,
        Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
    };
    if let Some(topic) = c.topic {
        let seq = if topic.starts_with("orderbook.") {
            c.data.as_ref().and_then(|d| d.u).and_then(|u| book_seq(c.kind.as_deref(), u))
        } else {
            None
        };
        return Inbound::Data { stream: topic, seq };
    }
    let op = match c.op.as_deref() {
        Some("subscribe") => Some(RequestOp::Subscribe),
        Some("unsubscribe") => Some(RequestOp::Unsubscribe),
        _ => None,
    };
    if c.kind.as_deref() == Some("COMMAND_RESP") {
        // Option (and spread): the answer names its topics; `req_id` is
        // not echoed in the documented shape.
        let (ok, failed) = match c.data.take() {
            Some(d) => (d.success_topics.unwrap_or_default(), d.fail_topics.unwrap_or_default()),
            None => (Vec::new(), Vec::new()),
        };
        if !failed.is_empty() || c.success == Some(false) {
            // Refused by name; the other topics of that request count as
            // accepted. Nothing named and no id: reported as an error.
            let msg = match c.msg() {
                "" if failed.is_empty() => "COMMAND_RESP: success false".to_string(),
                "" => format!("failTopics: {}", failed.join(",")),
                m => m.to_string(),
            };
            return Inbound::Rejected { id: c.req_id, code: c.code(), msg, streams: failed };
        }
        return match c.req_id {
            Some(id) => Inbound::Ack { id },
            None => Inbound::AckStreams { op, streams: ok },
        };
    }
    match c.op.as_deref() {
        // option and private `{"op":"pong","args":[..]}`
        Some("pong") => return Inbound::Pong,
        // spot, linear, inverse `{"success":true,"ret_msg":"pong",..,"op":"ping"}`
        Some("ping") if c.msg() == "pong" => return Inbound::Pong,
        Some("auth") => {
            return match c.success {
                Some(true) => Inbound::AuthOk,
                _ => Inbound::AuthFailed {
                    msg: match c.ret_code {
                        Some(code) => format!("auth refused: {code} {}", c.msg()),
                        None => format!("auth refused: {}", c.msg()),
                    },
                },
            };
        }
        Some("subscribe" | "unsubscribe") => {
            // The first subscription keeps flowing: the topic is subscribed.
            let already = op == Some(RequestOp::Subscribe) && c.msg().contains("already subscribed");
            return match (c.success, c.req_id) {
                (Some(true), Some(id)) => Inbound::Ack { id },
                (Some(false), Some(id)) if already => Inbound::Ack { id },
                // No `req_id` echoed (the private ack; linear's `"req_id":""`):
                // the oldest pending request of this op on the connection.
                (Some(true), None) => Inbound::AckStreams { op, streams: Vec::new() },
                // Names the topic that stays subscribed.
                (Some(false), None) if already => Inbound::AckStreams { op, streams: refused_topics(c.msg()) },
                (Some(false), id) => {
                    Inbound::Rejected { id, code: c.code(), msg: c.msg().to_string(), streams: refused_topics(c.msg()) }
                }
                _ => Inbound::Unknown,
            };
        }
        _ => {}
    }
    if c.success == Some(false) {
        // `error:invalid op`, `Failed to decode incoming data: ..`
        return Inbound::Rejected { id: c.req_id, code: c.code(), msg: c.msg().to_string(), streams: Vec::new() };
    }
    Inbound::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofeed_model::event::MarketType;

    #[test]
    fn refused_topics_are_read_from_the_message() {
        assert_eq!(
            refused_topics("error:handler not found,topic:orderbook.50.NOPEUSDT"),
            vec!["orderbook.50.NOPEUSDT".to_string()]
        );
        assert_eq!(refused_topics("error:already subscribed,topic:publicTrade.BTCUSDT"), vec!["publicTrade.BTCUSDT"]);
        assert!(refused_topics("args size >10").is_empty());
        assert!(refused_topics("error:invalid op").is_empty());
    }

    #[test]
    fn limits_are_data() {
        let spot = venue_limits(Category::Spot);
        assert_eq!((spot.max_connections, spot.connection_window), (500, Duration::from_secs(300)));
        assert_eq!(spot.args_per_request, Some(10));
        assert_eq!(venue_limits(Category::Option).args_per_connection, Some(2000));
        assert_eq!(venue_limits(Category::Linear).args_per_request, None);
        assert_eq!(BybitRules::public(Category::Spot).limits().max_streams_per_request, 10);
        // Public connections are budgeted by characters, with a count cap on
        // top that is never above the venue's own (option: 2000).
        for category in [Category::Spot, Category::Linear, Category::Inverse, Category::Option] {
            let l = BybitRules::public(category).limits();
            assert_eq!(l.max_stream_chars, Some(21_000), "{category:?}");
            assert_eq!(l.max_streams, MAX_TOPICS_PER_CONNECTION, "{category:?}");
            assert!(venue_limits(category).args_per_connection.is_none_or(|n| l.max_streams <= n));
        }
        // A full connection of typical ~20-character topics stays within both.
        let typical: Vec<String> =
            (0..MAX_TOPICS_PER_CONNECTION).map(|i| format!("orderbook.50.{i:0>4}USDT")).collect();
        assert!(typical.iter().all(|t| t.len() == "orderbook.50.BTCUSDT".len() + 1));
        assert!(args_chars(&typical) <= 21_000);
        assert!(fits_connection(&venue_limits(Category::Linear), &typical));
        let too_many: Vec<String> = (0..2001).map(|i| format!("t.{i}")).collect();
        assert!(!fits_connection(&venue_limits(Category::Option), &too_many));
        assert!(fits_connection(&venue_limits(Category::Linear), &too_many));
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/bybit_v5/");

    fn fixture(rel: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Acks that echo no `req_id` of ours: option's `COMMAND_RESP` names its
    /// topics, the private and linear docs shapes and the live captures name
    /// nothing and go to the oldest pending request of their op.
    #[test]
    fn acks_without_a_request_id_name_their_topics_or_their_op() {
        let option = BybitRules::public(Category::Option);
        assert_eq!(
            option.classify(&fixture("docs/subscribe_response.option.docs.json")),
            Inbound::AckStreams { op: None, streams: vec!["orderbook.100.BTC-6JAN23-18000-C".into()] }
        );
        let fifo = Inbound::AckStreams { op: Some(RequestOp::Subscribe), streams: Vec::new() };
        let linear = BybitRules::public(Category::Linear);
        for f in [
            "docs/subscribe_response.private.docs.json",
            "docs/subscribe_response.linear.docs.json",
            "subscribe_response.linear.json",
            "subscribe_response.spot.json",
        ] {
            assert_eq!(linear.classify(&fixture(f)), fifo, "{f}");
        }
        // With the id echoed, it is matched by id as before.
        assert_eq!(
            BybitRules::public(Category::Spot).classify(&fixture("docs/subscribe_response.spot.docs.json")),
            Inbound::Ack { id: 10_001 }
        );
        let unsub = r#"{"success":true,"ret_msg":"","op":"unsubscribe","conn_id":"c"}"#;
        assert_eq!(linear.classify(unsub), Inbound::AckStreams { op: Some(RequestOp::Unsubscribe), streams: vec![] });
        // `already subscribed` without an id confirms the topic it names.
        assert_eq!(
            linear.classify(
                r#"{"success":false,"ret_msg":"error:already subscribed,topic:publicTrade.BTCUSDT","op":"subscribe"}"#
            ),
            Inbound::AckStreams { op: Some(RequestOp::Subscribe), streams: vec!["publicTrade.BTCUSDT".into()] }
        );
    }

    /// Option refusals name the topics; without an id the engine finds the
    /// request by them, and the other topics of that request count as accepted.
    #[test]
    fn command_resp_fail_topics_are_refused_by_name() {
        let option = BybitRules::public(Category::Option);
        let mixed = r#"{"success":true,"conn_id":"c","data":{"failTopics":["orderbook.100.NOPE-1JAN30-1-C"],"successTopics":["orderbook.100.BTC-6JAN23-18000-C"]},"type":"COMMAND_RESP"}"#;
        assert_eq!(
            option.classify(mixed),
            Inbound::Rejected {
                id: None,
                code: 0,
                msg: "failTopics: orderbook.100.NOPE-1JAN30-1-C".into(),
                streams: vec!["orderbook.100.NOPE-1JAN30-1-C".into()],
            }
        );
        // An unsubscribe answer of the same shape, naming its topics.
        let gone = r#"{"success":true,"conn_id":"c","op":"unsubscribe","data":{"failTopics":[],"successTopics":["tickers.BTC-6JAN23-18000-C"]},"type":"COMMAND_RESP"}"#;
        assert_eq!(
            option.classify(gone),
            Inbound::AckStreams {
                op: Some(RequestOp::Unsubscribe),
                streams: vec!["tickers.BTC-6JAN23-18000-C".into()]
            }
        );
        // A failure naming nothing and echoing no id matches no request.
        let bare =
            r#"{"success":false,"conn_id":"c","data":{"failTopics":[],"successTopics":[]},"type":"COMMAND_RESP"}"#;
        assert!(matches!(option.classify(bare), Inbound::Rejected { id: None, streams, .. } if streams.is_empty()));
        // With an id, the id matches.
        let with_id = r#"{"success":true,"conn_id":"c","req_id":"12","data":{"failTopics":[],"successTopics":["a"]},"type":"COMMAND_RESP"}"#;
        assert_eq!(option.classify(with_id), Inbound::Ack { id: 12 });
    }

    #[test]
    fn requests_carry_the_id_as_req_id() {
        let r = BybitRules::public(Category::Linear);
        let s: serde_json::Value = serde_json::from_str(
            &r.encode_subscribe(7, &["orderbook.50.BTCUSDT".into(), "publicTrade.BTCUSDT".into()]),
        )
        .unwrap();
        assert_eq!(
            s,
            serde_json::json!({"req_id":"7","op":"subscribe","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT"]})
        );
        let u: serde_json::Value = serde_json::from_str(&r.encode_unsubscribe(8, &["x".into()])).unwrap();
        assert_eq!(u["op"], "unsubscribe");
        assert_eq!(r.heartbeat().client_ping, ClientPing::Text(PING.into()));
        assert_eq!(r.heartbeat().interval, Duration::from_secs(20));
        assert_eq!(r.auth_request(1), None);
        assert!(!r.is_private());
    }

    /// Every Bybit fixture frame (`name`, text): each line of a `.jsonl`
    /// capture, each other file whole and, if it is JSON, compacted (with
    /// its keys reordered: `data` before `topic`).
    fn all_fixtures() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir).map(|d| d.flatten().collect()).unwrap_or_default();
            entries.sort_by_key(|e| e.path());
            for e in entries {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                    continue;
                }
                let name = path.display().to_string();
                let Ok(text) = std::fs::read_to_string(&path) else { continue };
                if name.ends_with(".jsonl") {
                    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                        out.push((format!("{name}:{}", i + 1), line.to_string()));
                    }
                    continue;
                }
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    out.push((format!("{name} (compact)"), v.to_string()));
                }
                out.push((name, text));
            }
        }
        let mut out = Vec::new();
        walk(std::path::Path::new(FIXTURES), &mut out);
        assert!(out.len() > 400, "fixtures missing: {}", out.len());
        out
    }

    /// Frames in the shapes each category sends that the captures lack:
    /// spot's `ts` before `type`, several trades in one message, option
    /// trades, numeric trade ids, a restart's `u == 1` delta, `seq: null`,
    /// the simulator's load trade.
    const SHAPES: [&str; 9] = [
        r#"{"topic":"publicTrade.BTCUSDT","ts":1700000000123,"type":"snapshot","data":[{"i":"2280000000012345678","T":1700000000121,"p":"67321.4","v":"0.0002","S":"Buy","s":"BTCUSDT","BT":false,"RPI":false,"seq":1}]}"#,
        r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1","p":"2","i":"a"},{"T":2,"s":"BTCUSDT","S":"Sell","v":"0.10","p":"2.50","i":"b"},{"T":3,"s":"BTCUSDT","S":"Buy","v":"3","p":"4","i":7}]}"#,
        r#"{"id":"publicTrade.BTC-42-1700000000200","topic":"publicTrade.BTC","ts":1700000000200,"data":[{"p":"1210","v":"0.02","i":"0b6e2c1a-7d3f-5e90-a1b2-c3d4e5f60718","T":1700000000190,"BT":false,"s":"BTC-29DEC23-40000-C","S":"Sell","mP":"1201.5","iP":"37000.1","mIv":"0.5","iv":"0.51"}],"type":"snapshot"}"#,
        r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[["2","0"]],"u":1,"seq":null},"cts":2}"#,
        r#"{"topic":"orderbook.1.BTCUSDT","ts":5,"type":"snapshot","data":{"s":"BTCUSDT","b":[["1.0","2"]],"a":[["1.5","3"]],"u":9,"seq":10}}"#,
        r#"{"data":{"s":"X","b":[],"a":[],"u":3},"topic":"orderbook.200.X","type":"delta","ts":1}"#,
        r#"{"topic":"publicTrade.LOADUSDT","type":"snapshot","ts":1111111111111,"data":[{"T":1111111111111,"s":"LOADUSDT","S":"Buy","v":"0.001","p":"100.00","L":"PlusTick","i":"2222222222222","BT":false,"RPI":false,"seq":2222222222222}]}"#,
        r#"{"topic":"publicTrade.X","type":"snapshot","ts":1,"data":[]}"#,
        r#"{"topic":"orderbook.25.BTC-29DEC23-40000-C","ts":1,"type":"delta","data":{"s":"BTC-29DEC23-40000-C","b":[["5","1"]],"a":[],"u":4,"seq":5},"cts":1}"#,
    ];

    /// The fields and fragments the Bybit readers care about, for
    /// `scan::mutants`.
    const TOKENS: [&str; 19] = [
        "\"markPrice\":\"\",",
        "\"op\":\"ping\",",
        "\"success\":true,",
        "\"success\":1,",
        "\"retCode\":\"x\",",
        "\"i\":1,",
        "\"req_id\":\"1\",",
        "\"ret_msg\":\"\",",
        "\"topic\":\"x\",",
        "\"type\":\"delta\",",
        "\"type\":null,",
        "\"ts\":\"1\",",
        "\"cts\":1.5,",
        "\"u\":1,",
        "\"u\":\"1\",",
        "\"seq\":null,",
        "\"failTopics\":[],",
        "\"data\":{},",
        ",null",
    ];

    /// The fast classification, where it answers, answers exactly like the
    /// general one.
    #[track_caller]
    fn classify_agrees(frame: &str) -> bool {
        match classify_fast(frame) {
            Some(fast) => {
                assert_eq!(fast, classify_slow(frame), "fast and general classification differ on {frame:?}");
                true
            }
            None => false,
        }
    }

    /// `Decoder::read` gives exactly what classifying and then decoding
    /// give on `category` (the same `Read` and the same events), and the
    /// one-pass reader, where it answers, gives the general classification
    /// and appends nothing when it does not. Whether the one pass answered.
    #[track_caller]
    fn read_agrees(category: Category, frame: &str) -> bool {
        use crate::seam::{VenueSpec, classify_then_decode};
        let rules = BybitRules::public(category);
        let market = category.market_type();
        let (mut one, mut two) = (Vec::new(), Vec::new());
        let read = spec::Bybit.decoder(market).read(&rules, frame, 7, &mut one);
        let reference = classify_then_decode(spec::Bybit.decoder(market).as_mut(), &rules, frame, 7, &mut two);
        assert_eq!(read.inbound, reference.inbound, "read and classify differ on {frame:?}");
        assert_eq!(read.decoded, reference.decoded, "read and decode differ on {frame:?}");
        assert_eq!(one, two, "read and decode give other events on {frame:?}");
        let mut fast = Vec::new();
        match normalize::read_fast(category, frame, 7, &mut normalize::Tickers::new(), &mut fast) {
            Some((topic, seq, decoded)) => {
                assert_eq!(Inbound::Data { stream: Cow::Borrowed(topic), seq }, classify_slow(frame), "{frame:?}");
                assert_eq!(Some(decoded.map_err(|e| e.to_string())), reference.decoded, "{frame:?}");
                assert_eq!(fast, two, "one pass and decode differ on {frame:?}");
                true
            }
            None => {
                assert!(fast.is_empty(), "{frame:?}");
                false
            }
        }
    }

    #[test]
    fn the_one_pass_reader_agrees_with_classify_then_decode() {
        let mut corpus: Vec<String> = SHAPES.iter().map(|s| s.to_string()).collect();
        for shape in SHAPES {
            for category in Category::ALL {
                assert!(read_agrees(category, shape), "{shape} missed the one pass");
            }
            assert!(classify_agrees(shape), "{shape} missed the fast classification");
        }
        let mut hot = 0;
        for (name, text) in all_fixtures() {
            let mut fast = false;
            for category in Category::ALL {
                fast |= read_agrees(category, &text);
            }
            let classified = classify_agrees(&text);
            // Every trade, book and ticker frame (the `.jsonc` docs sample
            // is not JSON) takes the one pass, in every category.
            let topic = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("topic").and_then(|t| t.as_str().map(str::to_string)));
            if topic.as_deref().is_some_and(|t| {
                t.starts_with("publicTrade.") || t.starts_with("orderbook.") || t.starts_with("tickers.")
            }) {
                assert!(fast, "{name} missed the one pass");
                hot += 1;
            }
            assert_eq!(classified, topic.is_some(), "{name}: fast classification of data frames");
            // Every file, and the start of the recorded book.
            if !name.contains(".jsonl:") || name.ends_with(".jsonl:1") || name.ends_with(".jsonl:2") {
                corpus.push(text);
            }
        }
        // The recorded book (414 frames) and the trade, book and ticker files.
        assert!(hot >= 430, "{hot} frames took the one pass");
        // Mutate the small frames at every position; each mutant is read in
        // one category (they differ only in the events' market).
        let (mut answered, mut classified, mut k) = (0usize, 0usize, 0usize);
        for frame in corpus.iter().filter(|f| f.len() <= 1200) {
            crate::scan::mutants(frame, &TOKENS, |m| {
                k += 1;
                answered += usize::from(read_agrees(Category::ALL[k % 4], m));
                classified += usize::from(classify_agrees(m));
            });
        }
        // The mutations reach both sides of the one pass.
        assert!(answered > 5_000 && answered < k, "{answered} of {k}");
        assert!(classified > 5_000 && classified < k, "{classified} of {k}");
    }

    /// Ticker frames carry state (deltas merge into the last snapshot): a
    /// decoder that reads in one pass and one that classifies and decodes,
    /// each fed the same sequence, give the same results at every step,
    /// through mutated frames, an unknown symbol's delta and a next funding
    /// time out of range (which fails after the merge).
    #[test]
    fn ticker_state_follows_the_same_sequence_in_one_pass() {
        use crate::seam::{VenueSpec, classify_then_decode};
        let snapshot = r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","tickDirection":"PlusTick","lastPrice":"67321.40","prevPrice24h":"66000.00","highPrice24h":"68000.00","lowPrice24h":"65000.00","volume24h":"1234.567","turnover24h":"83000000.1","bid1Price":"67321.30","ask1Price":"67321.40","markPrice":"67321.00","indexPrice":"67320.10","fundingRate":"0.0001","nextFundingTime":"1700006400000","openInterest":"52000.1","openInterestValue":"3500000000.5"},"cs":1,"ts":1700000000000}"#;
        let delta = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"67322.00","openInterest":"52000.2","fundingRate":""},"cs":2,"ts":1700000000100}"#;
        let quiet = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","tickDirection":"MinusTick"},"cs":3,"ts":1700000000200}"#;
        let far = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","nextFundingTime":"99999999999999"},"cs":4,"ts":1700000000300}"#;
        let other =
            r#"{"topic":"tickers.ETHUSDT","type":"delta","data":{"symbol":"ETHUSDT","lastPrice":"1"},"cs":5,"ts":1}"#;
        let mut frames: Vec<String> =
            [snapshot, delta, delta, quiet, far, delta, other, snapshot, delta].iter().map(|f| f.to_string()).collect();
        for f in ["tickers_snapshot.linear.json", "tickers_delta.linear.json", "docs/tickers.LinearPerpetual.docs.json"]
        {
            frames.push(fixture(f));
        }
        crate::scan::mutants(delta, &TOKENS, |m| frames.push(m.to_string()));
        frames.push(snapshot.to_string());
        crate::scan::mutants(quiet, &TOKENS, |m| frames.push(m.to_string()));
        for category in [Category::Linear, Category::Option] {
            let rules = BybitRules::public(category);
            let mut one = spec::Bybit.decoder(category.market_type());
            let mut two = spec::Bybit.decoder(category.market_type());
            let (mut fast, mut failed) = (0, 0);
            for f in &frames {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let read = one.read(&rules, f, 7, &mut a);
                let reference = classify_then_decode(two.as_mut(), &rules, f, 7, &mut b);
                assert_eq!(read.inbound, reference.inbound, "{f}");
                assert_eq!(read.decoded, reference.decoded, "{f}");
                assert_eq!(a, b, "{f}");
                fast += usize::from(
                    normalize::read_fast(category, f, 7, &mut normalize::Tickers::new(), &mut Vec::new()).is_some(),
                );
                failed += usize::from(matches!(reference.decoded, Some(Err(_))));
            }
            assert!(fast > 1000 && failed > 100, "{fast} {failed}");
        }
    }

    #[test]
    fn control_frames_take_the_general_path() {
        for f in [
            r#"{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}"#,
            r#"{"op":"pong","args":["1"]}"#,
            r#"{"success":true,"conn_id":"c","data":{"failTopics":[],"successTopics":["a"]},"type":"COMMAND_RESP"}"#,
            r#"{"topic":"orderbook.1.X","type":"snapshot","data":{"s":"X","b":[],"a":[],"u":1,"failTopics":[]}}"#,
            r#"{"topic":"publicTrade.X","type":"snapshot","ts":1,"op":"x","data":[]}"#,
            r#"{"topic":"public\u0054rade.X","type":"snapshot","ts":1,"data":[]}"#,
            r#"{"topic":"publicTrade.X","topic":"publicTrade.X","type":"snapshot","ts":1,"data":[]}"#,
        ] {
            assert!(classify_fast(f).is_none(), "{f}");
            for category in Category::ALL {
                assert!(!read_agrees(category, f), "{f}");
            }
        }
        // Malformed trades and books are the decoder's errors, from the general path.
        for f in [
            r#"{"topic":"publicTrade.X","type":"snapshot","ts":1,"data":[{"T":1,"s":"X","S":"buy","v":"1","p":"1","i":"a"}]}"#,
            r#"{"topic":"publicTrade.X","type":"snapshot","ts":1,"data":[{"T":1,"s":"X","S":"Buy","v":"1.x","p":"1","i":"a"}]}"#,
            r#"{"topic":"publicTrade.X","type":"snapshot","ts":1,"data":[{"T":9223372036854775807,"s":"X","S":"Buy","v":"1","p":"1","i":"a"}]}"#,
            r#"{"topic":"orderbook.1.X","type":"partial","ts":1,"data":{"s":"X","b":[],"a":[],"u":2}}"#,
            r#"{"topic":"orderbook.1.X","type":"delta","ts":1,"data":{"s":"X","b":[["1","2","3"]],"a":[],"u":2}}"#,
        ] {
            use crate::seam::VenueSpec;
            let mut out = Vec::new();
            let rules = BybitRules::public(Category::Linear);
            let read = spec::Bybit.decoder(MarketType::Linear).read(&rules, f, 7, &mut out);
            assert!(matches!(read.inbound, Inbound::Data { .. }), "{f}");
            let Some(Err(e)) = read.decoded else { panic!("{f}: {:?}", read.decoded) };
            assert!(out.is_empty() && !e.is_empty(), "{f}");
            assert!(!read_agrees(Category::Linear, f), "{f}");
        }
    }
}
