//! Binance as the engine sees it: server pings (the transport echoes them),
//! id-matched JSON acks, nested errors, combined-stream envelopes, trade /
//! aggTrade ids and depth U/u/pu as sequence numbers, `serverShutdown`.

use std::borrow::Cow;
use std::time::Duration;

use ferrofeed_engine::{ClientPing, ConnLimits, Heartbeat, Inbound, Seq, VenueRules};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Binance {
    pub idle_timeout: Duration,
    pub max_msgs: usize,
    pub max_streams_per_request: usize,
}

impl Default for Binance {
    fn default() -> Binance {
        Binance { idle_timeout: Duration::from_secs(60), max_msgs: 5, max_streams_per_request: 200 }
    }
}

impl VenueRules for Binance {
    fn name(&self) -> &str {
        "binance"
    }

    fn heartbeat(&self) -> Heartbeat {
        Heartbeat { client_ping: ClientPing::None, interval: Duration::from_secs(20), idle_timeout: self.idle_timeout }
    }

    fn limits(&self) -> ConnLimits {
        ConnLimits {
            max_streams: 1024,
            max_msgs: self.max_msgs,
            msg_window: Duration::from_secs(1),
            max_streams_per_request: self.max_streams_per_request,
            max_request_bytes: 64 * 1024,
            max_stream_chars: None,
        }
    }

    fn encode_subscribe(&self, id: u64, streams: &[String]) -> String {
        serde_json::json!({"method": "SUBSCRIBE", "params": streams, "id": id}).to_string()
    }

    fn encode_unsubscribe(&self, id: u64, streams: &[String]) -> String {
        serde_json::json!({"method": "UNSUBSCRIBE", "params": streams, "id": id}).to_string()
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        let v: Value = match serde_json::from_str(frame) {
            Ok(v) => v,
            Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
        };
        if let Some(err) = v.get("error") {
            return Inbound::Rejected {
                id: v.get("id").and_then(Value::as_u64),
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                msg: err.get("msg").and_then(Value::as_str).unwrap_or_default().to_string(),
                streams: Vec::new(),
            };
        }
        if v.get("result").is_some() {
            return match v.get("id").and_then(Value::as_u64) {
                Some(id) => Inbound::Ack { id },
                None => Inbound::Unknown,
            };
        }
        let (stream, data) = match (v.get("stream").and_then(Value::as_str), v.get("data")) {
            (Some(s), Some(d)) => (s.to_string(), d),
            _ => {
                return if v.get("e").and_then(Value::as_str) == Some("serverShutdown") {
                    Inbound::Shutdown
                } else {
                    Inbound::Unknown
                };
            }
        };
        let num = |k: &str| data.get(k).and_then(Value::as_u64);
        let seq = match data.get("e").and_then(Value::as_str) {
            Some("serverShutdown") => return Inbound::Shutdown,
            Some("trade") => num("t").map(Seq::single),
            Some("aggTrade") => num("a").map(Seq::single),
            Some("depthUpdate") => match (num("U"), num("u")) {
                (Some(first), Some(last)) => Some(match num("pu") {
                    Some(pu) => Seq::chained(first, last, pu),
                    None => Seq::range(first, last),
                }),
                _ => None,
            },
            _ => None,
        };
        Inbound::Data { stream: Cow::Owned(stream), seq }
    }
}
