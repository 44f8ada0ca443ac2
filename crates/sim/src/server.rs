//! The HTTP side of one market's port: WebSocket upgrades on the venue's paths,
//! the REST endpoints, and the `/admin` API.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::account::looks_like_listen_key;
use crate::binance::rest;
use crate::binance::topic::{self, Route};
use crate::hub::{ConnKind, Hub, ListenSub};
use crate::{admin, conn, ws};

/// Largest REST request body read (form-encoded order parameters are small).
const MAX_BODY: usize = 64 * 1024;

pub(crate) type Resp = Response<Full<Bytes>>;

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `{"code":..,"msg":..}`, the venue's REST error body.
pub(crate) fn venue_error(status: StatusCode, code: i64, msg: &str) -> Resp {
    json(status, serde_json::json!({ "code": code, "msg": msg }).to_string())
}

/// Parses a query string into pairs (percent-decoding `%2F`-style escapes).
pub(crate) fn query(req_query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(v) => {
                            out.push(v);
                            i += 3;
                        }
                        None => {
                            out.push(b'%');
                            i += 1;
                        }
                    }
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    req_query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Accepts connections until the hub shuts down.
pub(crate) async fn serve(listener: TcpListener, hub: Arc<Hub>) {
    let mut stop = hub.shutdown.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((tcp, _)) = r else { continue };
                tokio::spawn(handle_tcp(tcp, hub.clone()));
            }
            _ = stop.changed() => return,
        }
    }
}

async fn handle_tcp(tcp: TcpStream, hub: Arc<Hub>) {
    if hub.lock().faults.refuse {
        hub.lock().counters.connections_refused += 1;
        // A zero linger never blocks: it turns the close into an immediate RST.
        #[allow(deprecated)]
        let _ = tcp.set_linger(Some(std::time::Duration::ZERO));
        return;
    }
    let _ = tcp.set_nodelay(true);
    let svc = hyper::service::service_fn(move |req| {
        let hub = hub.clone();
        async move { Ok::<_, Infallible>(route(req, hub).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).with_upgrades().await;
}

async fn route(req: Request<Incoming>, hub: Arc<Hub>) -> Resp {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if is_upgrade {
        return upgrade(req, hub);
    }
    let path = req.uri().path().to_string();
    if path.starts_with("/admin") {
        return admin::handle(req, hub).await;
    }
    if hub.cfg.bybit_category().is_some() {
        // The Bybit markets serve only the order endpoint (`crate::bybit::order`).
        if !crate::bybit::order::is_rest_path(&hub, &path) {
            return json(StatusCode::NOT_FOUND, r#"{"retCode":10001,"retMsg":"Not found","result":{}}"#);
        }
        let (parts, body) = req.into_parts();
        let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_BODY)).await {
            Ok(c) => c.to_bytes(),
            Err(_) => return json(StatusCode::PAYLOAD_TOO_LARGE, r#"{"retCode":10001,"retMsg":"body too large"}"#),
        };
        return crate::bybit::order::rest(&Request::from_parts(parts, body), &hub);
    }
    if ![Method::GET, Method::POST, Method::PUT, Method::DELETE].contains(req.method()) {
        return venue_error(StatusCode::METHOD_NOT_ALLOWED, -1000, "Method not allowed.");
    }
    let (parts, body) = req.into_parts();
    let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_BODY)).await {
        Ok(c) => c.to_bytes(),
        Err(_) => return venue_error(StatusCode::PAYLOAD_TOO_LARGE, -1000, "Request body too large or unreadable."),
    };
    rest::handle(&Request::from_parts(parts, body), &hub)
}

/// What a WebSocket path asks for.
struct WsTarget {
    route: Option<Route>,
    combined: bool,
    streams: Vec<String>,
    kind: ConnKind,
    listen: Vec<ListenSub>,
}

impl WsTarget {
    fn streams(route: Option<Route>, combined: bool, streams: Vec<String>) -> WsTarget {
        WsTarget { route, combined, streams, kind: ConnKind::Stream, listen: Vec::new() }
    }
}

/// Where listenKeys are read: spot/margin and COIN-M `/ws/<key>` and
/// `/stream?streams=<key>`; USD-M only on the `/private` route, which also
/// takes `?listenKey=<k>[&events=A/B]` (repeatable).
fn parse_ws_path(hub: &Hub, path: &str, q: Option<&str>) -> Option<WsTarget> {
    if let Some(cat) = hub.cfg.bybit_category() {
        let p = path.trim_end_matches('/');
        let kind = if p == cat.path() {
            ConnKind::Bybit
        } else if p == crate::bybit::private::PATH && cat == crate::config::BybitCategory::Linear {
            ConnKind::BybitPrivate
        } else {
            return None;
        };
        return Some(WsTarget { kind, ..WsTarget::streams(None, false, vec![]) });
    }
    let mut t = parse_ws_streams(hub, path, q)?;
    let keys_here = match hub.kind() {
        crate::config::MarketKind::Spot | crate::config::MarketKind::CoinM => true,
        crate::config::MarketKind::UsdM => t.route == Some(Route::Private),
        crate::config::MarketKind::Options => false,
    };
    if t.kind != ConnKind::Stream {
        return Some(t);
    }
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
                            last.events = Some(v.split('/').filter(|e| !e.is_empty()).map(str::to_string).collect());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Some(t)
}

fn parse_ws_streams(hub: &Hub, path: &str, q: Option<&str>) -> Option<WsTarget> {
    if hub.kind() == crate::config::MarketKind::Spot && path.trim_end_matches('/') == "/ws-api/v3" {
        return Some(WsTarget { kind: ConnKind::WsApi, ..WsTarget::streams(None, false, vec![]) });
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
        return Some(WsTarget::streams(route, false, vec![]));
    }
    if rest == "/ws" {
        return Some(WsTarget::streams(route, false, vec![]));
    }
    if let Some(s) = rest.strip_prefix("/ws/") {
        return Some(WsTarget::streams(
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
        return Some(WsTarget::streams(route, true, streams));
    }
    None
}

fn upgrade(mut req: Request<Incoming>, hub: Arc<Hub>) -> Resp {
    let Some(target) = parse_ws_path(&hub, req.uri().path(), req.uri().query()) else {
        return venue_error(StatusCode::NOT_FOUND, -1000, "Not found.");
    };
    let key = req.headers().get("sec-websocket-key").map(|k| k.as_bytes().to_vec());
    let version_ok = req.headers().get("sec-websocket-version").is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = key.filter(|_| version_ok) else {
        return venue_error(StatusCode::BAD_REQUEST, -1000, "Bad WebSocket handshake.");
    };
    if !hub.admit_attempt() {
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
        return r;
    }
    if target.streams.iter().any(|s| !topic::is_well_formed(s)) {
        return venue_error(StatusCode::BAD_REQUEST, 2, "Invalid request: invalid stream");
    }
    if target.streams.len() > hub.cfg.limits.max_streams_per_conn {
        hub.lock().counters.over_cap_rejections += 1;
        return venue_error(
            StatusCode::BAD_REQUEST,
            2,
            &format!(
                "Invalid request: too many streams ({} > {})",
                target.streams.len(),
                hub.cfg.limits.max_streams_per_conn
            ),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let path = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.uri().path()),
        None => req.uri().path().to_string(),
    };
    // Register before answering 101: streams named in the URL are live from the
    // handshake on, as on the venue.
    let reg = hub.register(path, target.route, target.combined, target.kind, target.listen);
    if !target.streams.is_empty() {
        let _ = crate::binance::control::subscribe(&hub, reg.id, &target.streams);
    }
    tokio::spawn(async move {
        let id = reg.id;
        let parts = match on_upgrade.await.map(|u| u.downcast::<TokioIo<TcpStream>>()) {
            Ok(Ok(parts)) => parts,
            _ => {
                hub.unregister(id, None, "upgrade failed".into());
                return;
            }
        };
        let tcp = parts.io.into_inner();
        conn::run(hub, tcp, parts.read_buf, reg).await;
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&ws::accept_key(&key)) {
        h.insert("sec-websocket-accept", v);
    }
    r
}
