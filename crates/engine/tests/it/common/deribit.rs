//! Deribit as the engine sees it (PROTOCOLS §6): JSON-RPC 2.0 with numeric
//! ids, `public/set_heartbeat` right after connecting, server `heartbeat`
//! notifications whose `test_request` must be answered with `public/test`,
//! `public/subscribe` results and `{"error":{code,message}}` failures, and
//! `subscription` notifications whose book channels chain `change_id` to
//! `prev_change_id`.

use std::borrow::Cow;
use std::time::Duration;

use ferrofeed_engine::{ClientPing, ConnLimits, Heartbeat, Inbound, Seq, VenueRules};
use serde_json::Value;

/// The id of every `public/test` reply. `classify` cannot draw ids from the
/// engine, so the reply uses one reserved id, far above what a connection
/// allocates and below 2^53 (JSON numbers stay exact everywhere).
pub const TEST_ID: u64 = 9_000_000_000_000;

#[derive(Debug, Clone)]
pub struct Deribit {
    /// `public/set_heartbeat` interval in seconds (Deribit's minimum is 10).
    pub heartbeat_secs: u64,
    /// No frame for this long means the socket is dead. The server sends a
    /// heartbeat every interval once set_heartbeat is on.
    pub idle_timeout: Duration,
    /// Client requests per second (subscribe credits: ≈3.3/s sustained, burst 10).
    pub max_msgs: usize,
    /// Channels per subscribe call (≈500 suggested).
    pub max_streams_per_request: usize,
}

impl Default for Deribit {
    fn default() -> Deribit {
        Deribit {
            heartbeat_secs: 30,
            idle_timeout: Duration::from_secs(75),
            max_msgs: 10,
            max_streams_per_request: 500,
        }
    }
}

/// A full snapshot restarts the change-id sequence.
fn snapshot(n: u64) -> Seq {
    Seq::reset(n)
}

/// The `public/test` request answering a `test_request`.
pub fn test_reply() -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": TEST_ID, "method": "public/test", "params": {}}).to_string()
}

impl Deribit {
    fn request(id: u64, method: &str, params: Value) -> String {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
    }

    /// `private/…` when any channel is private (`user.*`); private/subscribe
    /// accepts public channels as well.
    fn scope(streams: &[String]) -> &'static str {
        if streams.iter().any(|s| s.starts_with("user.")) { "private" } else { "public" }
    }

    fn data_seq(channel: &str, data: &Value) -> Option<Seq> {
        if !channel.starts_with("book.") {
            // trades carry `trade_seq` per instrument, but kind/currency
            // channels mix instruments; left unsequenced like the rest.
            return None;
        }
        let change_id = data.get("change_id")?.as_u64()?;
        match data.get("prev_change_id").and_then(Value::as_u64) {
            // §6.7: ids are not contiguous; only prev == last matters, so a
            // break is a gap of unknown size.
            Some(prev) => Some(Seq::chained(change_id, change_id, prev)),
            // A `snapshot` (no prev_change_id) or a grouped book (every push a
            // full snapshot): a resync point. Taken as `Seq{prev: None}` the
            // first snapshot after a reconnect would count change_id − last as
            // missing messages, which is meaningless for non-contiguous ids.
            None => Some(snapshot(change_id)),
        }
    }
}

impl VenueRules for Deribit {
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
            max_streams: 10_000,
            max_msgs: self.max_msgs,
            msg_window: Duration::from_secs(1),
            max_streams_per_request: self.max_streams_per_request,
            max_request_bytes: 64 * 1024,
            max_stream_chars: None,
        }
    }

    fn encode_subscribe(&self, id: u64, streams: &[String]) -> String {
        let method = format!("{}/subscribe", Deribit::scope(streams));
        Deribit::request(id, &method, serde_json::json!({ "channels": streams }))
    }

    fn encode_unsubscribe(&self, id: u64, streams: &[String]) -> String {
        let method = format!("{}/unsubscribe", Deribit::scope(streams));
        Deribit::request(id, &method, serde_json::json!({ "channels": streams }))
    }

    fn on_connect(&self, next_id: &mut dyn FnMut() -> u64) -> Vec<String> {
        let params = serde_json::json!({ "interval": self.heartbeat_secs });
        vec![Deribit::request(next_id(), "public/set_heartbeat", params)]
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        let v: Value = match serde_json::from_str(frame) {
            Ok(v) => v,
            Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
        };
        let id = v.get("id").and_then(Value::as_u64);
        if let Some(err) = v.get("error") {
            return Inbound::Rejected {
                id,
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                msg: err.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
                streams: vec![],
            };
        }
        if let Some(result) = v.get("result") {
            return match id {
                // The answer to our `public/test`: proof of life.
                Some(TEST_ID) => Inbound::Pong,
                // §6.2: unknown channels are dropped silently, so a subscribe
                // that subscribed nothing comes back as `"result":[]`.
                Some(id) if result.as_array().is_some_and(Vec::is_empty) => Inbound::Rejected {
                    id: Some(id),
                    code: 0,
                    msg: "no channel subscribed (result: [])".into(),
                    streams: vec![],
                },
                Some(id) => Inbound::Ack { id },
                None => Inbound::Unknown,
            };
        }
        let params = v.get("params");
        match v.get("method").and_then(Value::as_str) {
            Some("heartbeat") => match params.and_then(|p| p.get("type")).and_then(Value::as_str) {
                Some("test_request") => Inbound::Reply(test_reply()),
                Some("heartbeat") => Inbound::Pong,
                _ => Inbound::Unknown,
            },
            Some("subscription") => {
                let (Some(channel), Some(data)) =
                    (params.and_then(|p| p.get("channel")).and_then(Value::as_str), params.and_then(|p| p.get("data")))
                else {
                    return Inbound::Unknown;
                };
                let seq = Deribit::data_seq(channel, data);
                Inbound::Data { stream: Cow::Owned(channel.to_string()), seq }
            }
            _ => Inbound::Unknown,
        }
    }
}
