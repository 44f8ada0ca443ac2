//! Deribit: JSON-RPC 2.0 over one WebSocket for every instrument
//! (PROTOCOLS.md §6).
//!
//! Requests are `{"jsonrpc":"2.0","id":N,"method":...,"params":...}`;
//! answers echo the id with a `result` or an `error {code, message, data}`.
//! Data arrives as `subscription` notifications naming their `channel`,
//! which is the stream key.
//!
//! - **Liveness.** Right after connecting the client sends
//!   `public/set_heartbeat` ([`DeribitRules::heartbeat_secs`], 30 s by
//!   default, at least 10: docs.deribit.com `public/set_heartbeat`). The
//!   server then sends `heartbeat` notifications, some of type
//!   `test_request`, which must be answered with a `public/test` request or
//!   the server closes the socket. The answer is [`Inbound::Reply`] with an
//!   id from a reserved range ([`TEST_ID_BASE`]) that the engine never
//!   allocates, so its result is recognised as a pong.
//! - **Subscriptions.** `public/subscribe` (`private/subscribe` on a private
//!   connection) `{channels}`; the result lists the channels actually
//!   subscribed and the venue drops unknown ones silently
//!   ([`Inbound::AckPartial`]: the engine reports the missing ones as
//!   `subscription_failed`). Errors are [`Inbound::Rejected`] with the id.
//!   `10028 too_many_requests` means the credits ran out and the venue ends
//!   the session: it is rejected like any error (reported), and the close
//!   follows from the venue.
//! - **Limits** ([`DeribitRules::limits`]): subscribe calls cost 3,000
//!   credits from a pool of 30,000 (docs.deribit.com `articles/rate-limits`):
//!   ≈3.3 calls a second sustained, a burst of 10, which the engine's pacer
//!   takes as 10 client messages per 3 s; ≈500 channels per call.
//! - **Sequences.** Book changes chain `change_id` to the previous
//!   message's `prev_change_id` ([`Seq::chained`]; ids are not
//!   contiguous), snapshots and grouped books restart the chain
//!   ([`Seq::reset`]). Trades of one instrument (`trades.{instrument}.{interval}`)
//!   carry `trade_seq`, "the sequence number of the trade within
//!   instrument" (Deribit OpenAPI `trade_seq`), consecutive: a message is
//!   [`Seq::range`] of its first and last, so lost trades are counted.
//!   `trades.{kind}.{currency}.{interval}` mixes instruments and stays
//!   unsequenced, as do tickers, quotes, candles and private channels.
//! - **Private** connections authenticate with `public/auth` ([`auth`]);
//!   the answer's `expires_in` is the token's lifetime
//!   ([`VenueRules::auth_lifetime`]) and the engine authenticates again on
//!   the same socket before it runs out.

pub mod auth;
pub mod book;
mod endpoints;
pub mod normalize;
pub mod spec;
pub mod trade;
pub mod wire;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferrofeed_model::rules::{ClientPing, ConnLimits, Heartbeat, Inbound, Seq, VenueRules};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::auth::{Clock, CredentialError, Credentials};
pub use auth::Grant;
pub use endpoints::{Environment, Market, REST_PATH, WS_PATH, rest_base, snapshot_request, ws_host, ws_url};
use wire::Envelope;

/// The first id of `public/test` replies. The engine numbers a connection's
/// requests from `(pool + 1) << 32` upwards, far below; the range stays
/// below 2^53, so the ids are exact in every JSON reader.
pub const TEST_ID_BASE: u64 = 9_000_000_000_000;
/// How many ids the reply range holds.
pub const TEST_ID_SPAN: u64 = 1 << 20;

/// Error codes of a refused authentication (§6.8): `invalid_credentials`
/// and `unauthorized`-class answers to `public/auth`.
pub const AUTH_ERROR_CODES: [i64; 3] = [13004, 13009, 10000];

/// `10028 too_many_requests`: the credits ran out; the venue ends the session.
pub const TOO_MANY_REQUESTS: i64 = 10028;

/// A private connection's credentials, clock and grant.
#[derive(Clone)]
struct Auth {
    creds: Arc<Credentials>,
    clock: Arc<Clock>,
    grant: Grant,
}

/// The rules of one Deribit connection, public or private.
pub struct DeribitRules {
    auth: Option<Auth>,
    /// The id of the latest `public/auth` request, to tell its refusal from
    /// other errors.
    auth_id: AtomicU64,
    /// The next `public/test` reply id (offset in the reserved range).
    test_seq: AtomicU64,
    /// The `public/set_heartbeat` interval in seconds (at least 10).
    pub heartbeat_secs: u64,
    /// No frame at all for this long means the socket is dead (the server
    /// sends a heartbeat every interval: a bit over two intervals).
    pub idle_timeout: Duration,
    /// Client messages per [`msg_window`](Self::msg_window).
    pub max_msgs: usize,
    /// The pacing window.
    pub msg_window: Duration,
    /// Channels per connection (the venue states no cap; this keeps one
    /// socket's traffic near what one reading task handles, like Binance's
    /// 1024).
    pub max_streams: usize,
    /// Channels per subscribe call (≈500 suggested, §6.5).
    pub max_streams_per_request: usize,
    /// The largest frame expected: a raw book snapshot of a deep
    /// instrument, or an open-orders answer.
    pub max_frame_bytes: usize,
}

impl fmt::Debug for DeribitRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeribitRules")
            .field("private", &self.auth.is_some())
            .field("grant", &self.auth.as_ref().map(|a| a.grant))
            .field("heartbeat_secs", &self.heartbeat_secs)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_msgs", &self.max_msgs)
            .field("msg_window", &self.msg_window)
            .field("max_streams", &self.max_streams)
            .field("max_streams_per_request", &self.max_streams_per_request)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .finish()
    }
}

impl Clone for DeribitRules {
    fn clone(&self) -> DeribitRules {
        DeribitRules {
            auth: self.auth.clone(),
            auth_id: AtomicU64::new(self.auth_id.load(Ordering::Relaxed)),
            test_seq: AtomicU64::new(self.test_seq.load(Ordering::Relaxed)),
            heartbeat_secs: self.heartbeat_secs,
            idle_timeout: self.idle_timeout,
            max_msgs: self.max_msgs,
            msg_window: self.msg_window,
            max_streams: self.max_streams,
            max_streams_per_request: self.max_streams_per_request,
            max_frame_bytes: self.max_frame_bytes,
        }
    }
}

impl Default for DeribitRules {
    fn default() -> DeribitRules {
        DeribitRules::public()
    }
}

impl DeribitRules {
    /// The rules of a public connection.
    pub fn public() -> DeribitRules {
        DeribitRules {
            auth: None,
            auth_id: AtomicU64::new(u64::MAX),
            test_seq: AtomicU64::new(0),
            heartbeat_secs: 30,
            idle_timeout: Duration::from_secs(65),
            max_msgs: 10,
            msg_window: Duration::from_secs(3),
            max_streams: 1000,
            max_streams_per_request: 500,
            max_frame_bytes: 4 << 20,
        }
    }

    /// The rules of a private connection authenticating with `creds` (an
    /// HMAC key) by `grant` at the venue time `clock` gives.
    pub fn private(creds: Arc<Credentials>, clock: Arc<Clock>, grant: Grant) -> Result<DeribitRules, CredentialError> {
        if creds.kind() != crate::auth::KeyKind::Hmac {
            return Err(CredentialError::Unsupported("Deribit takes HMAC (client id and secret) API keys"));
        }
        // A private socket carries orders: paced at the matching engine's
        // default tier, 5 requests a second (burst 20), instead of the
        // subscribe credits' 10 per 3 s of public sockets (PROTOCOLS.md §6.5).
        // Its subscribes are a handful at connect, well within their pool.
        Ok(DeribitRules {
            auth: Some(Auth { creds, clock, grant }),
            max_msgs: 20,
            msg_window: Duration::from_secs(4),
            ..DeribitRules::public()
        })
    }

    /// Sets the heartbeat interval (raised to the venue's minimum of 10 s)
    /// and the idle timeout that goes with it (two intervals and 5 s).
    pub fn with_heartbeat(mut self, secs: u64) -> DeribitRules {
        self.heartbeat_secs = secs.max(10);
        self.idle_timeout = Duration::from_secs(self.heartbeat_secs * 2 + 5);
        self
    }

    /// Whether this is a private connection.
    pub fn is_private(&self) -> bool {
        self.auth.is_some()
    }

    /// The grant of a private connection.
    pub fn grant(&self) -> Option<Grant> {
        self.auth.as_ref().map(|a| a.grant)
    }

    fn scope(&self) -> &'static str {
        if self.auth.is_some() { "private" } else { "public" }
    }

    /// A request frame.
    pub fn request(id: u64, method: &str, params: serde_json::Value) -> String {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
    }

    /// The `public/test` frame answering a `test_request`, with the next id
    /// of the reserved range.
    pub fn test_reply(&self) -> String {
        let id = TEST_ID_BASE + self.test_seq.fetch_add(1, Ordering::Relaxed) % TEST_ID_SPAN;
        DeribitRules::request(id, "public/test", serde_json::json!({}))
    }
}

/// Whether `id` is one of the `public/test` reply ids.
pub fn is_test_id(id: u64) -> bool {
    (TEST_ID_BASE..TEST_ID_BASE + TEST_ID_SPAN).contains(&id)
}

/// The head of a `book.*` payload.
#[derive(Deserialize)]
struct BookHead {
    #[serde(default, deserialize_with = "crate::dec::u64_or_skip")]
    change_id: Option<u64>,
    #[serde(default, deserialize_with = "crate::dec::u64_or_skip")]
    prev_change_id: Option<u64>,
}

/// The head of one trade.
#[derive(Deserialize)]
struct TradeHead {
    #[serde(default, deserialize_with = "crate::dec::u64_or_skip")]
    trade_seq: Option<u64>,
}

/// The sequence numbers of a `subscription` payload on `channel`.
fn data_seq(channel: &str, data: &RawValue) -> Option<Seq> {
    let (kind, rest) = channel.split_once('.')?;
    match kind {
        "book" => {
            let h: BookHead = serde_json::from_str(data.get()).ok()?;
            let change_id = h.change_id?;
            Some(match h.prev_change_id {
                // §6.7: only prev == last matters; ids are not contiguous.
                Some(prev) => Seq::chained(change_id, change_id, prev),
                // A snapshot, or a grouped book (every push a full book).
                None => Seq::reset(change_id),
            })
        }
        // `trades.{instrument}.{interval}`: instrument names hold no dots;
        // `trades.{kind}.{currency}.{interval}` has one more part.
        "trades" if rest.split('.').count() == 2 => {
            let items: Vec<TradeHead> = serde_json::from_str(data.get()).ok()?;
            let first = items.first()?.trade_seq?;
            let last = items.last()?.trade_seq?;
            (first <= last).then(|| Seq::range(first, last))
        }
        _ => None,
    }
}

/// Whether a `result` is an array of strings (a subscribe or unsubscribe
/// answer: the channels taken), returning them.
fn channel_list(result: &RawValue) -> Option<Vec<String>> {
    let t = result.get().trim_start();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Whether a `result` object holds an `access_token` (a `public/auth` answer).
fn is_auth_result(result: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(default, borrow)]
        access_token: Option<&'a RawValue>,
    }
    let t = result.get().trim_start();
    t.starts_with('{') && serde_json::from_str::<Head<'_>>(t).is_ok_and(|h| h.access_token.is_some())
}

impl VenueRules for DeribitRules {
    fn name(&self) -> &str {
        "deribit"
    }

    fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            client_ping: ClientPing::None,
            interval: Duration::from_secs(self.heartbeat_secs),
            idle_timeout: self.idle_timeout,
        }
    }

    fn limits(&self) -> ConnLimits {
        ConnLimits {
            max_streams: self.max_streams,
            max_msgs: self.max_msgs,
            msg_window: self.msg_window,
            max_streams_per_request: self.max_streams_per_request,
            max_request_bytes: 64 * 1024,
            max_stream_chars: None,
        }
    }

    fn encode_subscribe(&self, id: u64, streams: &[String]) -> String {
        let method = format!("{}/subscribe", self.scope());
        DeribitRules::request(id, &method, serde_json::json!({ "channels": streams }))
    }

    fn encode_unsubscribe(&self, id: u64, streams: &[String]) -> String {
        let method = format!("{}/unsubscribe", self.scope());
        DeribitRules::request(id, &method, serde_json::json!({ "channels": streams }))
    }

    fn on_connect(&self, next_id: &mut dyn FnMut() -> u64) -> Vec<String> {
        let params = serde_json::json!({ "interval": self.heartbeat_secs.max(10) });
        vec![DeribitRules::request(next_id(), "public/set_heartbeat", params)]
    }

    fn auth_request(&self, id: u64) -> Option<String> {
        let a = self.auth.as_ref()?;
        self.auth_id.store(id, Ordering::Relaxed);
        let ts = a.clock.now_ms();
        auth::auth_frame(&a.creds, a.grant, id, ts, &auth::nonce(ts))
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        let env: Envelope<'a> = match serde_json::from_str(frame) {
            Ok(e) => e,
            Err(e) => return Inbound::Malformed(format!("invalid JSON-RPC frame: {e}")),
        };
        if let Some(err) = &env.error {
            let msg = match err.data.map(RawValue::get).filter(|d| *d != "null") {
                Some(data) => format!("{} {data}", err.message),
                None => err.message.to_string(),
            };
            let is_auth = env.id.is_some_and(|id| id == self.auth_id.load(Ordering::Relaxed))
                || (self.auth.is_some() && err.code == 13004);
            if is_auth && self.auth.is_some() {
                return Inbound::AuthFailed { msg: format!("{} {msg}", err.code) };
            }
            return Inbound::Rejected { id: env.id, code: err.code, msg, streams: Vec::new() };
        }
        if let Some(result) = env.result {
            let Some(id) = env.id else { return Inbound::Unknown };
            if is_test_id(id) {
                return Inbound::Pong;
            }
            if self.auth.is_some() && is_auth_result(result) {
                return Inbound::AuthOk;
            }
            if let Some(streams) = channel_list(result) {
                return Inbound::AckPartial { id, streams };
            }
            return Inbound::Ack { id };
        }
        let params = env.params.as_ref();
        match env.method.as_deref() {
            Some("heartbeat") => match params.and_then(|p| p.kind.as_deref()) {
                Some("test_request") => Inbound::Reply(self.test_reply()),
                Some("heartbeat") => Inbound::Pong,
                _ => Inbound::Unknown,
            },
            Some("subscription") => {
                let (Some(channel), Some(data)) = (params.and_then(|p| p.channel.clone()), params.and_then(|p| p.data))
                else {
                    return Inbound::Malformed("subscription notification without channel or data".into());
                };
                let seq = data_seq(&channel, data);
                let stream = channel;
                Inbound::Data { stream, seq }
            }
            _ => Inbound::Unknown,
        }
    }

    fn auth_lifetime(&self, frame: &str) -> Option<Duration> {
        #[derive(Deserialize)]
        struct Answer {
            result: Life,
        }
        #[derive(Deserialize)]
        struct Life {
            #[serde(default, deserialize_with = "crate::dec::u64_or_skip")]
            expires_in: Option<u64>,
        }
        let a: Answer = serde_json::from_str(frame).ok()?;
        a.result.expires_in.filter(|s| *s > 0).map(Duration::from_secs)
    }

    fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn connect_sends_set_heartbeat_and_pings_are_the_servers() {
        let r = DeribitRules::public();
        let mut n = 41;
        let frames = r.on_connect(&mut || {
            n += 1;
            n
        });
        let f: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
        assert_eq!(f["method"], "public/set_heartbeat");
        assert_eq!((f["id"].as_u64(), f["params"]["interval"].as_u64()), (Some(42), Some(30)));
        let h = r.heartbeat();
        assert_eq!(h.client_ping, ClientPing::None);
        assert!(h.idle_timeout > h.interval * 2, "{h:?}");
        let r = DeribitRules::public().with_heartbeat(3);
        assert_eq!(r.heartbeat_secs, 10, "the venue's minimum");
        assert_eq!(r.heartbeat().idle_timeout, Duration::from_secs(25));
    }

    #[test]
    fn limits_pace_subscribe_credits() {
        let l = DeribitRules::public().limits();
        // 10 calls per 3 s: ≈3.3/s sustained, a burst of 10.
        assert_eq!((l.max_msgs, l.msg_window), (10, Duration::from_secs(3)));
        assert_eq!(l.max_streams_per_request, 500);
        assert!(DeribitRules::public().max_frame_bytes() >= 1 << 20);
    }

    #[test]
    fn subscribe_method_follows_the_connection() {
        let s = vec!["trades.BTC-PERPETUAL.100ms".to_string()];
        let f: serde_json::Value = serde_json::from_str(&DeribitRules::public().encode_subscribe(5, &s)).unwrap();
        assert_eq!((f["method"].as_str(), f["id"].as_u64()), (Some("public/subscribe"), Some(5)));
        assert_eq!(f["params"]["channels"][0], "trades.BTC-PERPETUAL.100ms");
        let creds = Arc::new(Credentials::hmac("id", "secret").unwrap());
        let p = DeribitRules::private(creds, Arc::new(Clock::default()), Grant::default()).unwrap();
        let f: serde_json::Value = serde_json::from_str(&p.encode_unsubscribe(6, &s)).unwrap();
        assert_eq!(f["method"], "private/unsubscribe");
        assert!(!format!("{p:?}").contains("secret"));
    }

    #[test]
    fn test_requests_are_answered_from_the_reserved_range() {
        let r = DeribitRules::public();
        let hb = r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#;
        let Inbound::Reply(a) = r.classify(hb) else { panic!() };
        let Inbound::Reply(b) = r.classify(hb) else { panic!() };
        let (a, b): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str(&a).unwrap(), serde_json::from_str(&b).unwrap());
        assert_eq!(a["method"], "public/test");
        let (ia, ib) = (a["id"].as_u64().unwrap(), b["id"].as_u64().unwrap());
        assert!(is_test_id(ia) && is_test_id(ib) && ia != ib);
        let answer = format!(r#"{{"jsonrpc":"2.0","id":{ia},"result":{{"version":"1.2.26"}}}}"#);
        assert_eq!(r.classify(&answer), Inbound::Pong);
        assert_eq!(
            r.classify(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#),
            Inbound::Pong
        );
        assert!(!is_test_id((1u64 << 32) + 5));
    }

    #[test]
    fn answers_and_errors() {
        let r = DeribitRules::public();
        assert_eq!(r.classify(r#"{"jsonrpc":"2.0","id":3,"result":"ok"}"#), Inbound::Ack { id: 3 });
        assert_eq!(
            r.classify(r#"{"jsonrpc":"2.0","id":4,"result":[]}"#),
            Inbound::AckPartial { id: 4, streams: vec![] }
        );
        assert_eq!(r.classify(r#"{"jsonrpc":"2.0","id":4,"result":[{"order_id":"1"}]}"#), Inbound::Ack { id: 4 });
        let e = r.classify(
            r#"{"jsonrpc":"2.0","id":9,"error":{"code":13778,"message":"raw_subscriptions_not_available_for_unauthorized","data":null}}"#,
        );
        assert_eq!(
            e,
            Inbound::Rejected {
                id: Some(9),
                code: 13778,
                msg: "raw_subscriptions_not_available_for_unauthorized".into(),
                streams: vec![]
            }
        );
        let e = r.classify(r#"{"jsonrpc":"2.0","error":{"code":11050,"message":"bad_request","data":"invalid json"}}"#);
        assert!(matches!(e, Inbound::Rejected { id: None, code: 11050, ref msg, .. } if msg.contains("invalid json")));
        assert!(matches!(r.classify("{not json"), Inbound::Malformed(_)));
        assert_eq!(r.classify(r#"{"jsonrpc":"2.0","method":"platform_state"}"#), Inbound::Unknown);
    }

    #[test]
    fn private_auth_answers_and_lifetime() {
        let creds = Arc::new(Credentials::hmac("id", "secret").unwrap());
        let r = DeribitRules::private(creds, Arc::new(Clock::default()), Grant::ClientSignature).unwrap();
        let frame = r.auth_request(77).unwrap();
        let f: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            (f["method"].as_str(), f["params"]["grant_type"].as_str()),
            (Some("public/auth"), Some("client_signature"))
        );
        let ok = r#"{"jsonrpc":"2.0","id":77,"result":{"access_token":"tok","expires_in":900,"refresh_token":"ref","scope":"connection","token_type":"bearer"}}"#;
        assert_eq!(r.classify(ok), Inbound::AuthOk);
        assert_eq!(r.auth_lifetime(ok), Some(Duration::from_secs(900)));
        let bad = r#"{"jsonrpc":"2.0","id":77,"error":{"code":13004,"message":"invalid_credentials"}}"#;
        assert!(matches!(r.classify(bad), Inbound::AuthFailed { ref msg } if msg.contains("13004")));
        // An order refusal on the same socket is the caller's, not an auth failure.
        let refused = r#"{"jsonrpc":"2.0","id":80,"error":{"code":10009,"message":"not_enough_funds"}}"#;
        assert!(matches!(r.classify(refused), Inbound::Rejected { id: Some(80), code: 10009, .. }));
        // A public connection never reads an auth answer as such.
        assert_eq!(DeribitRules::public().classify(ok), Inbound::Ack { id: 77 });
        let ed = Arc::new(Credentials::ed25519_seed("k", [2; 32]).unwrap());
        assert!(DeribitRules::private(ed, Arc::new(Clock::default()), Grant::default()).is_err());
    }

    #[test]
    fn sequences_of_books_and_trades() {
        let r = DeribitRules::public();
        let change = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.100ms","data":{"type":"change","timestamp":1,"prev_change_id":10,"instrument_name":"X","change_id":15,"bids":[],"asks":[]}}}"#;
        assert_eq!(
            r.classify(change),
            Inbound::Data { stream: Cow::Borrowed("book.X.100ms"), seq: Some(Seq::chained(15, 15, 10)) }
        );
        let kind = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms","data":[{"trade_seq":5},{"trade_seq":9}]}}"#;
        assert_eq!(r.classify(kind), Inbound::Data { stream: Cow::Borrowed("trades.future.BTC.100ms"), seq: None });
        let one = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.X.raw","data":[{"trade_seq":5},{"trade_seq":7}]}}"#;
        assert_eq!(
            r.classify(one),
            Inbound::Data { stream: Cow::Borrowed("trades.X.raw"), seq: Some(Seq::range(5, 7)) }
        );
    }
}
