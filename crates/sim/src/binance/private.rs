//! Private REST endpoints: listenKeys (API key only) and signed order and
//! account endpoints.
//!
//! - listenKeys: `POST|PUT|DELETE /api/v3/userDataStream` (spot, legacy),
//!   `/sapi/v1/userDataStream` (margin), `/sapi/v1/userDataStream/isolated?symbol=`
//!   (isolated margin), `/fapi/v1/listenKey` (USD-M), `/dapi/v1/listenKey` (COIN-M).
//! - Signed (`X-MBX-APIKEY` + `timestamp` + `signature`, query and/or form body):
//!   `POST|DELETE /api/v3/order`, `/fapi/v1/order`, `/dapi/v1/order`;
//!   `GET /api/v3/account`.

use bytes::Bytes;
use hyper::{Method, Request, StatusCode};
use tokio::time::Instant;

use super::auth::{self, AuthError};
use super::orders::{self, Params, Reject};
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

/// Handles a private endpoint, or `None` when `path` is not one.
pub(crate) fn handle(req: &Request<Bytes>, hub: &Hub) -> Option<Resp> {
    let kind = hub.kind();
    let path = req.uri().path();
    enum What {
        Key(Option<Scope>),
        Order,
        Account,
    }
    let what = match (kind, path) {
        (MarketKind::Spot, "/api/v3/userDataStream") => What::Key(Some(Scope::Spot)),
        (MarketKind::Spot, "/sapi/v1/userDataStream") => What::Key(Some(Scope::Margin)),
        (MarketKind::Spot, "/sapi/v1/userDataStream/isolated") => What::Key(None),
        (MarketKind::UsdM, "/fapi/v1/listenKey") => What::Key(Some(Scope::UsdM)),
        (MarketKind::CoinM, "/dapi/v1/listenKey") => What::Key(Some(Scope::CoinM)),
        (MarketKind::Spot, "/api/v3/order")
        | (MarketKind::UsdM, "/fapi/v1/order")
        | (MarketKind::CoinM, "/dapi/v1/order") => What::Order,
        (MarketKind::Spot, "/api/v3/account") => What::Account,
        _ => return None,
    };
    let method = req.method();
    let allowed = match what {
        What::Key(_) => matches!(*method, Method::POST | Method::PUT | Method::DELETE),
        What::Order => matches!(*method, Method::POST | Method::DELETE),
        What::Account => *method == Method::GET,
    };
    if !allowed {
        return Some(err(405, -1000, "Method not allowed."));
    }
    let weight = match what {
        What::Account => 20,
        _ => 1,
    };
    if let Err(retry) = hub.charge_weight(weight) {
        let mut r = err(429, -1003, "Too many requests; current limit of IP(127.0.0.1) is exceeded.");
        if let Ok(v) = hyper::header::HeaderValue::from_str(&retry.to_string()) {
            r.headers_mut().insert("retry-after", v);
        }
        return Some(r);
    }
    Some(match what {
        What::Key(scope) => listen_key(req, hub, scope),
        What::Order | What::Account => signed_call(req, hub, matches!(what, What::Account)),
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
/// `DELETE` closes. Futures keep-alive answers `{"listenKey":..}`, spot `{}`.
fn listen_key(req: &Request<Bytes>, hub: &Hub, scope: Option<Scope>) -> Resp {
    let key = match api_key(req) {
        Ok(k) => k,
        Err(e) => return auth_err(&e),
    };
    let p = params(req);
    let mut st = hub.lock();
    let Some(acct) = st.accounts.by_api_key(&key) else { return auth_err(&AuthError::UnknownKey) };
    let scope = match scope {
        Some(s) => s,
        None => match p.get("symbol") {
            None => return err(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
            Some(s) if st.market.symbol(s).is_some() => Scope::Isolated(s.to_string()),
            Some(_) => return err(400, -1121, "Invalid symbol."),
        },
    };
    let futures = matches!(scope, Scope::UsdM | Scope::CoinM);
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
            // Spot and margin name the key; futures act on the account's key
            // (and check it when one is named).
            let named = p.get("listenKey");
            let target = match (named, futures) {
                (None, false) => {
                    return err(
                        400,
                        -1102,
                        "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed.",
                    );
                }
                (Some(n), _) => match st.accounts.listen_keys.get(n) {
                    Some(lk) if lk.account == acct && lk.scope == scope => n.to_string(),
                    _ => return no_key(),
                },
                (None, true) => match active {
                    Some(k) => k,
                    None => return no_key(),
                },
            };
            if *req.method() == Method::PUT {
                if let Some(lk) = st.accounts.listen_keys.get_mut(&target) {
                    lk.expires = Instant::now() + validity;
                }
                if futures { ok(serde_json::json!({ "listenKey": target }).to_string()) } else { ok("{}") }
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

fn signed_call(req: &Request<Bytes>, hub: &Hub, account: bool) -> Resp {
    let (acct, p) = match verify_rest(req, hub) {
        Ok(x) => x,
        Err(e) => return auth_err(&e),
    };
    let mut st = hub.lock();
    if account {
        let now = hub.venue_ms(&st);
        return ok(orders::spot_account(&st, acct, now));
    }
    let r = if *req.method() == Method::DELETE {
        orders::cancel(hub, &mut st, acct, &p)
    } else {
        orders::place(hub, &mut st, acct, &p)
    };
    match r {
        Ok(body) => ok(body),
        Err(r) => rejected(r),
    }
}
