//! Private REST endpoints: listenKeys (API key only), listenTokens, and the
//! signed order and account endpoints.
//!
//! - listenKeys: `POST|PUT|DELETE /fapi/v1/listenKey` (USD-M) and
//!   `/dapi/v1/listenKey` (COIN-M).
//! - Removed from the venue on 2026-02-20, answered `410 Gone` as the venue
//!   does now: `/api/v3/userDataStream` (spot listenKeys), `/sapi/v1/userDataStream`
//!   and `/sapi/v1/userDataStream/isolated` (margin listenKeys).
//! - listenTokens: `POST /sapi/v1/userListenToken` (signed; `token`).
//! - Signed (`X-MBX-APIKEY` + `timestamp` + `signature`, query and/or form body):
//!   `POST|DELETE /api/v3/order`, `/sapi/v1/margin/order` (`isIsolated`),
//!   `/fapi/v1/order`, `/dapi/v1/order`; `GET /api/v3/account`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use super::auth::{self, AuthError};
use super::orders::{self, Params, Reject};
use super::{rate, token};
use crate::account::{ListenKey, Scope};
use crate::config::MarketKind;
use crate::hub::Hub;
use crate::server::{Resp, json, query};

use super::venue_error;

fn err(status: u16, code: i64, msg: &str) -> Resp {
    venue_error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), code, msg)
}

fn auth_err(e: &AuthError) -> Resp {
    err(e.http_status(), e.code(), &e.msg())
}

fn rejected(r: Reject) -> Resp {
    err(r.0, r.1, &r.2)
}

fn ok(body: impl Into<Bytes>) -> Resp {
    json(StatusCode::OK, body)
}

/// What the venue answers on the listenKey endpoints it removed: HTTP 410
/// with its front end's HTML page (the page clients report for
/// `POST /api/v3/userDataStream`, e.g. siebly.io/blog/binance-user-data-stream-410-gone-listenkey-javascript:
/// `<html><head><title>410 Gone</title></head>...`; the margin paths answer
/// the same way, PROTOCOLS.md §1.6).
fn gone() -> Resp {
    let body = "<html><head><title>410 Gone</title></head><body><center><h1>410 Gone</h1></center></body></html>";
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = StatusCode::GONE;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

/// Handles a private endpoint, or `None` when `path` is not one.
pub(crate) fn handle(req: &Request<Bytes>, hub: &Hub) -> Option<Resp> {
    let kind = hub.kind();
    let path = req.uri().path();
    enum What {
        Gone,
        Key(Scope),
        Token,
        Order,
        MarginOrder,
        Account,
    }
    let what = match (kind, path) {
        (
            MarketKind::Spot,
            "/api/v3/userDataStream" | "/sapi/v1/userDataStream" | "/sapi/v1/userDataStream/isolated",
        ) => What::Gone,
        (MarketKind::UsdM, "/fapi/v1/listenKey") => What::Key(Scope::UsdM),
        (MarketKind::CoinM, "/dapi/v1/listenKey") => What::Key(Scope::CoinM),
        (MarketKind::Spot, "/sapi/v1/userListenToken") => What::Token,
        (MarketKind::Spot, "/api/v3/order")
        | (MarketKind::UsdM, "/fapi/v1/order")
        | (MarketKind::CoinM, "/dapi/v1/order") => What::Order,
        (MarketKind::Spot, "/sapi/v1/margin/order") => What::MarginOrder,
        (MarketKind::Spot, "/api/v3/account") => What::Account,
        _ => return None,
    };
    if matches!(what, What::Gone) {
        return Some(gone());
    }
    let method = req.method();
    let allowed = match what {
        What::Gone => true,
        What::Key(_) => matches!(*method, Method::POST | Method::PUT | Method::DELETE),
        What::Token => *method == Method::POST,
        What::Order | What::MarginOrder => matches!(*method, Method::POST | Method::DELETE),
        What::Account => *method == Method::GET,
    };
    if !allowed {
        return Some(err(405, -1000, "Method not allowed."));
    }
    // IP weights as documented; endpoints weighed per UID (userListenToken,
    // a margin order) cost 1 here, the simulator keeping a single budget.
    let weight = match what {
        What::Account => 20,
        What::MarginOrder if *method == Method::DELETE => 10,
        _ => 1,
    };
    if let Err(retry) = hub.charge_weight(weight) {
        let mut r = err(429, -1003, "Too many requests; current limit of IP(127.0.0.1) is exceeded.");
        if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
            r.headers_mut().insert("retry-after", v);
        }
        return Some(r);
    }
    Some(match what {
        What::Gone => gone(),
        What::Key(scope) => listen_key(req, hub, scope),
        What::Token => token::create(req, hub),
        What::Order | What::MarginOrder | What::Account => signed_call(req, hub),
    })
}

fn api_key(req: &Request<Bytes>) -> Result<String, AuthError> {
    req.headers()
        .get("x-mbx-apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .ok_or(AuthError::MissingKey)
}

fn params(req: &Request<Bytes>) -> Params {
    let mut p = query(req.uri().query());
    p.extend(query(Some(&String::from_utf8_lossy(req.body()))));
    Params(p)
}

/// `POST` creates (or returns and extends the active) key, `PUT` extends,
/// `DELETE` closes; futures answer `{"listenKey":..}` to a keep-alive.
fn listen_key(req: &Request<Bytes>, hub: &Hub, scope: Scope) -> Resp {
    let key = match api_key(req) {
        Ok(k) => k,
        Err(e) => return auth_err(&e),
    };
    let p = params(req);
    let mut st = hub.lock();
    let Some(acct) = st.accounts.by_api_key(&key) else { return auth_err(&AuthError::UnknownKey) };
    let validity = hub.cfg.limits.listen_key_validity;
    let active = st.accounts.active_key(acct, &scope);
    let no_key = || err(400, -1125, "This listenKey does not exist.");
    match *req.method() {
        Method::POST => {
            let k = match active {
                Some(k) => k,
                None => {
                    let k = st.accounts.token(64);
                    st.accounts
                        .listen_keys
                        .insert(k.clone(), ListenKey { account: acct, scope, expires: Instant::now() + validity });
                    k
                }
            };
            if let Some(lk) = st.accounts.listen_keys.get_mut(&k) {
                lk.expires = Instant::now() + validity;
            }
            ok(serde_json::json!({ "listenKey": k }).to_string())
        }
        Method::PUT | Method::DELETE => {
            // Futures act on the account's key (and check it when one is named).
            let target = match p.get("listenKey") {
                Some(n) => match st.accounts.listen_keys.get(n) {
                    Some(lk) if lk.account == acct && lk.scope == scope => n.to_string(),
                    _ => return no_key(),
                },
                None => match active {
                    Some(k) => k,
                    None => return no_key(),
                },
            };
            if *req.method() == Method::PUT {
                if let Some(lk) = st.accounts.listen_keys.get_mut(&target) {
                    lk.expires = Instant::now() + validity;
                }
                ok(serde_json::json!({ "listenKey": target }).to_string())
            } else {
                st.accounts.listen_keys.remove(&target);
                ok("{}")
            }
        }
        _ => err(405, -1000, "Method not allowed."),
    }
}

/// Verifies a signed request; returns the account and its parameters.
pub(crate) fn verify_rest(req: &Request<Bytes>, hub: &Hub) -> Result<(usize, Params), AuthError> {
    let key = api_key(req)?;
    let (verifier, acct, server_ms) = {
        let st = hub.lock();
        let acct = st.accounts.by_api_key(&key).ok_or(AuthError::UnknownKey)?;
        (st.accounts.list[acct].verifier.clone(), acct, hub.venue_ms(&st))
    };
    let raw_q = req.uri().query().unwrap_or("");
    let raw_b = String::from_utf8_lossy(req.body());
    let (q, sig_q) = auth::strip_signature(raw_q);
    let (b, sig_b) = auth::strip_signature(&raw_b);
    let sig = sig_q.or(sig_b).filter(|s| !s.is_empty()).ok_or(AuthError::Mandatory("signature"))?;
    let p = params(req);
    auth::check_time(server_ms, p.get("timestamp"), p.get("recvWindow"), hub.cfg.limits.max_recv_window_ms)?;
    let payload = format!("{q}{b}");
    verifier.verify(payload.as_bytes(), &auth::decode_component(&sig), false)?;
    Ok((acct, p))
}

fn signed_call(req: &Request<Bytes>, hub: &Hub) -> Resp {
    let (acct, p) = match verify_rest(req, hub) {
        Ok(x) => x,
        Err(e) => return auth_err(&e),
    };
    let path = req.uri().path();
    let mut st = hub.lock();
    if path == "/api/v3/account" {
        let now = hub.venue_ms(&st);
        return ok(orders::spot_account(&st, acct, now));
    }
    let scope = if path == "/sapi/v1/margin/order" {
        match token::is_isolated(p.get("isIsolated")) {
            Ok(false) => Scope::Margin,
            Ok(true) => match p.get("symbol").and_then(|s| st.market.symbol(s)) {
                Some(sym) => Scope::Isolated(sym.spec.name.clone()),
                // The order code reports the missing or unknown symbol.
                None => Scope::Isolated(String::new()),
            },
            Err(r) => return rejected(r),
        }
    } else {
        Scope::of_market(hub.kind())
    };
    if *req.method() == Method::DELETE {
        return match orders::cancel(hub, &mut st, acct, &p, &scope) {
            Ok(body) => ok(body),
            Err(r) => rejected(r),
        };
    }
    // Margin orders have limits of their own, not the market's `ORDERS`.
    let counts = if matches!(scope, Scope::Margin | Scope::Isolated(_)) {
        Vec::new()
    } else {
        match rate::count(hub, &mut st, acct) {
            Ok(c) => c,
            Err(r) => return rejected(r),
        }
    };
    match orders::place(hub, &mut st, acct, &p, &scope) {
        Ok(body) => {
            let mut r = ok(body);
            for (k, v) in rate::headers(hub, &counts) {
                if let (Ok(k), Ok(v)) = (header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
                    r.headers_mut().insert(k, v);
                }
            }
            r
        }
        Err(r) => rejected(r),
    }
}
