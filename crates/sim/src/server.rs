//! The HTTP side of one market's port: WebSocket upgrades (routed, refused,
//! admitted and answered by the market's dialect, the handshake and the
//! connection-attempt limit checked here), the venue's REST endpoints (the
//! dialect's) and the `/admin` API.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::dialect::Refusal;
use crate::hub::Hub;
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
    if let Some(r) = hub.dialect.rest_precheck(&hub, req.method(), &path) {
        return r;
    }
    let (parts, body) = req.into_parts();
    let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_BODY)).await {
        Ok(c) => c.to_bytes(),
        Err(_) => return hub.dialect.body_too_large(),
    };
    hub.dialect.rest(&hub, &Request::from_parts(parts, body))
}

fn upgrade(mut req: Request<Incoming>, hub: Arc<Hub>) -> Resp {
    let Some(mut target) = hub.dialect.route(&hub, req.uri().path(), req.uri().query()) else {
        return hub.dialect.refuse(&hub, Refusal::NotFound);
    };
    let key = req.headers().get("sec-websocket-key").map(|k| k.as_bytes().to_vec());
    let version_ok = req.headers().get("sec-websocket-version").is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = key.filter(|_| version_ok) else {
        return hub.dialect.refuse(&hub, Refusal::BadHandshake);
    };
    if !hub.admit_attempt() {
        return hub.dialect.refuse(&hub, Refusal::TooManyAttempts);
    }
    if let Some(r) = hub.dialect.admit(&hub, &target) {
        return r;
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let path = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.uri().path()),
        None => req.uri().path().to_string(),
    };
    // Register before answering 101: streams named in the URL are live from the
    // handshake on, as on the venue.
    let listen = std::mem::take(&mut target.listen);
    let reg = hub.register(path, target.combined, target.kind, listen);
    hub.dialect.opened(&hub, reg.id, &target);
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
