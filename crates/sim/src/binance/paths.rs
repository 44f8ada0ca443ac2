//! Binance's WebSocket paths: `/ws`, `/ws/<streams>`, `/stream?streams=`,
//! the USD-M/options routes `/public`, `/market`, `/private` in front, the
//! WebSocket APIs (spot `/ws-api/v3`, USD-M `/ws-fapi/v1`), and where
//! listenKeys are read; the checks on what a URL asks for, and the refusals
//! of an upgrade.
//!
//! Like the venue, a stream path takes any name: only well-formed names are
//! subscribed (a name the venue would refuse in `SUBSCRIBE`, such as
//! `/ws/not_a_stream`, is ignored and delivers nothing) and a client then
//! `SUBSCRIBE`s what it wants. The refusals kept are the ones the venue
//! makes: an unknown path (404), a bad handshake (400), the connection-attempt
//! limit (429, `Retry-After`), and more streams in the URL than a connection
//! may hold (its documented cap; the venue's answer is undocumented, HTTP 400
//! here).

use hyper::StatusCode;
use hyper::header::{self, HeaderValue};

use crate::config::MarketKind;
use crate::dialect::{Refusal, WsTarget};
use crate::hub::{ConnKind, Hub, ListenSub};
use crate::server::{Resp, query};

use super::topic::{self, Route};
use super::venue_error;

/// The tag (`ConnKind::tag`) of a market-stream connection without a route.
pub(crate) const STREAM: u8 = 0;
/// The tag of a connection on the `/public` route.
const PUBLIC: u8 = 1;
/// The tag of a connection on the `/market` route.
const MARKET: u8 = 2;
/// The tag of a connection on the `/private` route.
const PRIVATE: u8 = 3;
/// The tag of a WebSocket API connection (spot `/ws-api/v3`, USD-M `/ws-fapi/v1`).
pub(crate) const WS_API: u8 = 4;

/// The route of a market-stream connection's tag.
pub(crate) fn route_of(tag: u8) -> Option<Route> {
    match tag {
        PUBLIC => Some(Route::Public),
        MARKET => Some(Route::Market),
        PRIVATE => Some(Route::Private),
        _ => None,
    }
}

fn tag_of(route: Option<Route>) -> u8 {
    match route {
        None => STREAM,
        Some(Route::Public) => PUBLIC,
        Some(Route::Market) => MARKET,
        Some(Route::Private) => PRIVATE,
    }
}

/// What a path asks for, before it becomes a [`WsTarget`].
struct Target {
    route: Option<Route>,
    combined: bool,
    streams: Vec<String>,
    ws_api: bool,
    listen: Vec<ListenSub>,
}

impl Target {
    fn streams(route: Option<Route>, combined: bool, streams: Vec<String>) -> Target {
        Target { route, combined, streams, ws_api: false, listen: Vec::new() }
    }
}

/// Whether a path segment has the shape of a listenKey rather than a stream name.
pub(crate) fn looks_like_listen_key(s: &str) -> bool {
    s.len() >= 32 && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Routes an upgrade path. Where listenKeys are read: spot/margin and COIN-M
/// `/ws/<key>` and `/stream?streams=<key>`; USD-M only on the `/private`
/// route, which also takes `?listenKey=<k>[&events=A/B]` (repeatable).
/// Private connections (killed by `kill_private`): the WebSocket API, any
/// connection reading a listenKey, and the `/private` route.
pub(crate) fn route(hub: &Hub, path: &str, q: Option<&str>) -> Option<WsTarget> {
    let mut t = parse_ws_streams(hub, path, q)?;
    let keys_here = match hub.kind() {
        MarketKind::Spot | MarketKind::CoinM => true,
        MarketKind::UsdM => t.route == Some(Route::Private),
        MarketKind::Options => false,
    };
    if !t.ws_api {
        let (keys, streams): (Vec<String>, Vec<String>) =
            std::mem::take(&mut t.streams).into_iter().partition(|s| looks_like_listen_key(s));
        t.streams = streams;
        if keys_here {
            t.listen = keys.into_iter().map(|key| ListenSub { key, events: None }).collect();
            if t.route == Some(Route::Private) {
                for (k, v) in query(q) {
                    match k.as_str() {
                        "listenKey" if !v.is_empty() => t.listen.push(ListenSub { key: v, events: None }),
                        "events" => {
                            if let Some(last) = t.listen.last_mut() {
                                last.events =
                                    Some(v.split('/').filter(|e| !e.is_empty()).map(str::to_string).collect());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let private = t.ws_api || !t.listen.is_empty() || t.route == Some(Route::Private);
    let tag = if t.ws_api { WS_API } else { tag_of(t.route) };
    Some(WsTarget {
        kind: ConnKind { tag, private, server_pings: true },
        combined: t.combined,
        streams: t.streams,
        listen: t.listen,
    })
}

fn parse_ws_streams(hub: &Hub, path: &str, q: Option<&str>) -> Option<Target> {
    let api = match hub.kind() {
        MarketKind::Spot => "/ws-api/v3",
        MarketKind::UsdM => "/ws-fapi/v1",
        MarketKind::CoinM | MarketKind::Options => "",
    };
    if !api.is_empty() && path.trim_end_matches('/') == api {
        return Some(Target { ws_api: true, ..Target::streams(None, false, vec![]) });
    }
    let mut rest = path;
    let mut route = None;
    if hub.kind().is_routed() {
        for (prefix, r) in [("/public", Route::Public), ("/market", Route::Market), ("/private", Route::Private)] {
            if let Some(x) = rest.strip_prefix(prefix) {
                rest = x;
                route = Some(r);
            }
        }
    }
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() && route.is_some() {
        return Some(Target::streams(route, false, vec![]));
    }
    if rest == "/ws" {
        return Some(Target::streams(route, false, vec![]));
    }
    if let Some(s) = rest.strip_prefix("/ws/") {
        return Some(Target::streams(
            route,
            false,
            s.split('/').filter(|x| !x.is_empty()).map(str::to_string).collect(),
        ));
    }
    if rest == "/stream" {
        let streams = query(q)
            .into_iter()
            .filter(|(k, _)| k == "streams")
            .flat_map(|(_, v)| v.split('/').filter(|x| !x.is_empty()).map(str::to_string).collect::<Vec<_>>())
            .collect();
        return Some(Target::streams(route, true, streams));
    }
    None
}

/// The streams a URL names: the well-formed ones are subscribed when the
/// connection opens (`Binance::opened`), the others ignored.
pub(crate) fn url_streams(streams: &[String]) -> Vec<String> {
    streams.iter().filter(|s| topic::is_well_formed(s)).cloned().collect()
}

/// More streams in the URL than a connection may hold are refused (HTTP
/// 400); any name is otherwise accepted. `Some` is the refusal.
pub(crate) fn admit(hub: &Hub, target: &WsTarget) -> Option<Resp> {
    let n = target.streams.iter().filter(|s| topic::is_well_formed(s)).count();
    if n > hub.cfg.limits.max_streams_per_conn {
        hub.lock().counters.over_cap_rejections += 1;
        return Some(venue_error(
            StatusCode::BAD_REQUEST,
            2,
            &format!("Invalid request: too many streams ({n} > {})", hub.cfg.limits.max_streams_per_conn),
        ));
    }
    None
}

/// An upgrade refused before a connection exists, in the venue's REST error
/// shape (429 with `Retry-After` over the connection-attempt limit).
pub(crate) fn refuse(hub: &Hub, why: Refusal) -> Resp {
    match why {
        Refusal::NotFound => venue_error(StatusCode::NOT_FOUND, -1000, "Not found."),
        Refusal::BadHandshake => venue_error(StatusCode::BAD_REQUEST, -1000, "Bad WebSocket handshake."),
        Refusal::TooManyAttempts => {
            let mut r = venue_error(
                StatusCode::TOO_MANY_REQUESTS,
                -1003,
                &format!(
                    "Too many connection attempts; current limit is {} per {} seconds.",
                    hub.cfg.limits.max_conn_attempts,
                    hub.cfg.limits.conn_attempt_window.as_secs()
                ),
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}
