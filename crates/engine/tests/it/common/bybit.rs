//! Bybit v5 as the engine sees it (PROTOCOLS §5): a client text ping
//! `{"op":"ping"}` every 20 s, `op` requests whose `req_id` is a string,
//! `success`/`ret_msg` acks and failures (matched by `req_id`, or without
//! one by the topics named or FIFO by op), two pong shapes, an optional
//! pre-computed `op:"auth"` frame, and data keyed by `topic`.

use std::borrow::Cow;
use std::time::Duration;

use ferrofeed_engine::{ClientPing, ConnLimits, Heartbeat, Inbound, RequestOp, Seq, VenueRules};
use serde_json::Value;

/// The client ping frame (§5.2; `req_id` is optional and omitted).
pub const PING: &str = r#"{"op":"ping"}"#;

#[derive(Debug, Clone)]
pub struct Bybit {
    /// How often `{"op":"ping"}` is sent (Bybit recommends 20 s).
    pub ping_interval: Duration,
    /// No frame for this long means the socket is dead. Bybit itself cuts an
    /// idle socket after 10 min; with a pong per ping, a few intervals suffice.
    pub idle_timeout: Duration,
    /// Client messages per second. Bybit states no inbound message limit (§0);
    /// this only keeps the pacer from bursting.
    pub max_msgs: usize,
    /// Args per subscribe request: 10 on spot (`args size >10` otherwise).
    pub max_streams_per_request: usize,
    /// Args per connection (option: 2000).
    pub max_streams: usize,
    /// Characters of args per public connection (21,000).
    pub max_stream_chars: Option<usize>,
    /// A pre-computed `{"op":"auth","args":[apiKey, expires, signature]}`
    /// frame for private connections; `None` for public ones.
    pub auth: Option<String>,
}

impl Default for Bybit {
    fn default() -> Bybit {
        Bybit {
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_msgs: 20,
            max_streams_per_request: 10,
            max_streams: 2000,
            max_stream_chars: Some(21_000),
            auth: None,
        }
    }
}

/// Sequence information that orders messages and suppresses repeats but
/// never reports a gap (Bybit `seq` grows by thousands per message).
pub fn ordered(n: u64) -> Seq {
    Seq::ordered(n)
}

/// The topic named in `error:handler not found,topic:X`, if any: only that
/// topic of the request failed.
fn refused_topic(v: &Value) -> Vec<String> {
    let msg = ret_msg(v);
    msg.split_once("topic:").map(|(_, t)| vec![t.trim().to_string()]).unwrap_or_default()
}

/// A request id read back from `req_id`: we send it as a decimal string; a
/// number is accepted too. An empty or foreign string is no id of ours.
fn req_id(v: &Value) -> Option<u64> {
    match v.get("req_id")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn ret_msg(v: &Value) -> String {
    v.get("ret_msg").or_else(|| v.get("retMsg")).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Bybit v5 public WS failures carry no numeric code; the nautilus-observed
/// variant has `retCode`. 0 when absent.
fn ret_code(v: &Value) -> i64 {
    v.get("retCode").or_else(|| v.get("ret_code")).and_then(Value::as_i64).unwrap_or(0)
}

impl Bybit {
    fn request(op: &str, id: u64, streams: &[String]) -> String {
        serde_json::json!({"op": op, "args": streams, "req_id": id.to_string()}).to_string()
    }

    fn data_seq(topic: &str, v: &Value) -> Option<Seq> {
        if topic.starts_with("orderbook.") {
            // §5.7: `u` is the per-topic update id and is consecutive between
            // deltas, but it is not a safe engine sequence: `u == 1` marks a
            // service restart (a snapshot that restarts the count), and the
            // engine's tracker would drop every message up to the old `u` as a
            // duplicate; a snapshot also resets the book, which the tracker
            // cannot be told. `seq` is the cross sequence, monotonic across
            // depths and snapshots but not consecutive (the recorded linear
            // book advances it by ~2,500 per delta), so taken as consecutive it
            // would report a gap on every delta. It is used here for ordering
            // and de-duplication only (overlap after a reconnect or rotation);
            // a broken `u` chain is for the book builder to detect.
            return v.get("data")?.get("seq")?.as_u64().map(ordered);
        }
        // publicTrade: ids are UUIDs and several messages may share a `seq`
        // (§5.5), so nothing consecutive or unique to track. Tickers' `cs` can
        // repeat across deltas that change mark/index only; kline, liquidation
        // and private topics carry nothing usable.
        None
    }
}

impl VenueRules for Bybit {
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

    fn encode_subscribe(&self, id: u64, streams: &[String]) -> String {
        Bybit::request("subscribe", id, streams)
    }

    fn encode_unsubscribe(&self, id: u64, streams: &[String]) -> String {
        Bybit::request("unsubscribe", id, streams)
    }

    fn auth_request(&self, _id: u64) -> Option<String> {
        // Answered by `op:"auth"` without the req_id, so no id is needed.
        self.auth.clone()
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        let v: Value = match serde_json::from_str(frame) {
            Ok(v) => v,
            Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
        };
        if let Some(topic) = v.get("topic").and_then(Value::as_str) {
            let seq = Bybit::data_seq(topic, &v);
            return Inbound::Data { stream: Cow::Owned(topic.to_string()), seq };
        }
        let success = v.get("success").and_then(Value::as_bool);
        match v.get("op").and_then(Value::as_str) {
            // option/spread `{"args":[..],"op":"pong"}`, private `{"req_id":..,"op":"pong",..}`
            Some("pong") => Inbound::Pong,
            // spot/linear/inverse `{"success":true,"ret_msg":"pong",..,"op":"ping"}`
            Some("ping") if ret_msg(&v) == "pong" => Inbound::Pong,
            Some("auth") => match success {
                Some(true) => Inbound::AuthOk,
                _ => Inbound::AuthFailed { msg: ret_msg(&v) },
            },
            Some(op @ ("subscribe" | "unsubscribe")) => {
                let id = req_id(&v);
                let op = if op == "subscribe" { RequestOp::Subscribe } else { RequestOp::Unsubscribe };
                match (success, id) {
                    (Some(true), Some(id)) => Inbound::Ack { id },
                    // Private (and linear `req_id:""`): no id echoed, the oldest request of this op.
                    (Some(true), None) => Inbound::AckStreams { op: Some(op), streams: Vec::new() },
                    // The first subscription keeps flowing (§5.3): not a failure.
                    (Some(false), Some(id)) if ret_msg(&v).contains("already subscribed") => Inbound::Ack { id },
                    (Some(false), None) if ret_msg(&v).contains("already subscribed") => {
                        Inbound::AckStreams { op: Some(op), streams: refused_topic(&v) }
                    }
                    (Some(false), id) => {
                        Inbound::Rejected { id, code: ret_code(&v), msg: ret_msg(&v), streams: refused_topic(&v) }
                    }
                    _ => Inbound::Unknown,
                }
            }
            _ => match (v.get("type").and_then(Value::as_str), success) {
                // option/spread subscribe response: no op, no req_id echoed in the docs;
                // failTopics refuse by name, the rest of that request counts as accepted.
                (Some("COMMAND_RESP"), _) => {
                    let failed = v.pointer("/data/failTopics").and_then(Value::as_array).filter(|a| !a.is_empty());
                    match (failed, req_id(&v)) {
                        (Some(f), id) => Inbound::Rejected {
                            id,
                            code: ret_code(&v),
                            msg: format!("failTopics: {}", Value::Array(f.clone())),
                            streams: f.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                        },
                        (None, Some(id)) => Inbound::Ack { id },
                        // No req_id: confirmed by the topics it names.
                        (None, None) => Inbound::AckStreams {
                            op: None,
                            streams: v
                                .pointer("/data/successTopics")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect(),
                        },
                    }
                }
                // `error:invalid op`, `Failed to decode incoming data:..`
                (_, Some(false)) => {
                    Inbound::Rejected { id: req_id(&v), code: ret_code(&v), msg: ret_msg(&v), streams: Vec::new() }
                }
                _ => Inbound::Unknown,
            },
        }
    }
}
