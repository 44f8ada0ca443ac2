//! The WebSocket APIs: spot `/ws-api/v3` and USD-M `/ws-fapi/v1`.
//!
//! Both: `session.logon` (Ed25519), `session.status`, `session.logout`, `ping`,
//! `time` and the order methods of `trade` (signed by the logged-on session,
//! or per request with `apiKey`, `timestamp`, `signature` over the sorted
//! parameters, HMAC or Ed25519). Spot also: `userDataStream.subscribe`,
//! `userDataStream.subscribe.signature`, `userDataStream.subscribe.listenToken`
//! (margin, `token`), `userDataStream.unsubscribe`, `session.subscriptions`.
//!
//! Requests are `{"id","method","params"}` (the method may carry a version
//! prefix, `v3/order.place`); responses
//! `{"id","status","result"|"error":{"code","msg"[,"data"]},"rateLimits":[..]}`,
//! `rateLimits` left out when the request's `returnRateLimits` is false or
//! the connection URL said `?returnRateLimits=false` (and the request did not
//! ask for them). Events of a subscription arrive as
//! `{"subscriptionId":N,"event":{..}}`.
//!
//! Weights (charged to the market's per-minute budget, shared with REST):
//! spot as binance-spot-api-docs `web-socket-api.md` lists them; USD-M as the
//! derivatives docs (`order.place`/`order.modify` 0, counted in `ORDERS`
//! only).

use serde_json::{Map, Value};

use super::auth::{self, AuthError};
use super::orders::Params;
use super::{rate, token, trade};
use crate::account::{Obj, Scope};
use crate::config::MarketKind;
use crate::hub::{Hub, HubState, Session, UserSub};
use crate::server::query;

/// Most user-data subscriptions one session may hold at once, and over its life.
const MAX_SUBS: usize = 1000;
const MAX_SUB_IDS: u64 = 65_535;

/// What one request is answered with.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Result<String, Failure>,
    /// The account's `ORDERS` counts, for the order methods that count.
    pub orders: Option<Vec<u32>>,
}

/// A refusal: code, message and, for cancel-replace, the `data` object.
pub(crate) struct Failure {
    pub code: i64,
    pub msg: String,
    pub data: Option<String>,
}

pub(crate) fn fail(status: u16, code: i64, msg: impl Into<String>) -> Reply {
    Reply { status, body: Err(Failure { code, msg: msg.into(), data: None }), orders: None }
}

fn auth_fail(e: &AuthError) -> Reply {
    fail(e.http_status(), e.code(), e.msg())
}

pub(crate) fn done(result: String) -> Reply {
    Reply { status: 200, body: Ok(result), orders: None }
}

/// The weight of `method` with `params` on `kind`.
fn weight(kind: MarketKind, method: &str, params: &Map<String, Value>) -> u32 {
    match (kind, method) {
        (_, "ping" | "time") => 1,
        (MarketKind::UsdM, "order.place" | "order.modify") => 0,
        (MarketKind::UsdM, "order.cancel" | "order.status") => 1,
        (_, "order.place" | "order.cancel" | "order.cancelReplace" | "openOrders.cancelAll") => 1,
        (_, "order.amend.keepPriority" | "order.status") => 4,
        (_, "openOrders.status") if params.get("symbol").is_some_and(|s| !s.is_null()) => 6,
        (_, "openOrders.status") => 80,
        _ => 2,
    }
}

/// Whether the connection asked for no `rateLimits` in its URL.
fn quiet_connection(hub: &Hub, conn: u64) -> bool {
    let st = hub.lock();
    st.conns.get(&conn).is_some_and(|c| {
        let q = c.path.split_once('?').map(|(_, q)| q);
        query(q).iter().any(|(k, v)| k == "returnRateLimits" && v.eq_ignore_ascii_case("false"))
    })
}

/// Answers one WS-API text frame; returns (JSON text, success).
pub(crate) fn answer(hub: &Hub, conn: u64, text: &str) -> (String, bool) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return (encode(hub, &Value::Null, &fail(400, -1000, "Malformed request."), None), false),
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let id = match &id {
        Value::Null | Value::Number(_) => id,
        Value::String(s) if s.len() <= 64 => id,
        _ => return (encode(hub, &Value::Null, &fail(400, -1000, "Invalid request id."), None), false),
    };
    let Some(method) = v.get("method").and_then(Value::as_str) else {
        return (encode(hub, &id, &fail(400, -1102, "Mandatory parameter 'method' was not sent."), None), false);
    };
    // An explicit version prefix names the same method ("v3/order.place").
    let method = match method.split_once('/') {
        Some((v, m)) if v.starts_with('v') && v[1..].bytes().all(|b| b.is_ascii_digit()) => m,
        _ => method,
    };
    let empty = Map::new();
    let params = match v.get("params") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return (encode(hub, &id, &fail(400, -1000, "Malformed parameter 'params'."), None), false),
    };
    let show_limits = match params.get("returnRateLimits") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
        _ => !quiet_connection(hub, conn),
    };
    let used = match hub.charge_weight(weight(hub.kind(), method, params)) {
        Ok(u) => u,
        Err(_) => {
            let r = fail(429, -1003, "Too many requests; current request weight limit exceeded.");
            // The budget is spent: shown at its limit.
            let max = hub.cfg.limits.rest_weight_limit;
            let limits = show_limits.then(|| rate::rate_limits(hub, (max, max), None));
            return (encode(hub, &id, &r, limits), false);
        }
    };
    let reply = dispatch(hub, conn, method, params);
    let ok = reply.status == 200;
    let limits =
        show_limits.then(|| rate::rate_limits(hub, (used, hub.cfg.limits.rest_weight_limit), reply.orders.as_deref()));
    (encode(hub, &id, &reply, limits), ok)
}

fn dispatch(hub: &Hub, conn: u64, method: &str, params: &Map<String, Value>) -> Reply {
    let spot = hub.kind() == MarketKind::Spot;
    match method {
        "ping" => done("{}".into()),
        "time" => {
            let st = hub.lock();
            done(format!("{{\"serverTime\":{}}}", hub.venue_ms(&st)))
        }
        "session.logon" => logon(hub, conn, params),
        "session.status" => {
            let st = hub.lock();
            done(status(hub, &st, conn))
        }
        "session.logout" => logout(hub, conn),
        "session.subscriptions" if spot => {
            let st = hub.lock();
            let subs: Vec<String> = st
                .conns
                .get(&conn)
                .map(|c| c.user_subs.iter().map(|s| format!("{{\"subscriptionId\":{}}}", s.id)).collect())
                .unwrap_or_default();
            done(format!("[{}]", subs.join(",")))
        }
        "userDataStream.subscribe" if spot => subscribe(hub, conn, None),
        "userDataStream.subscribe.signature" if spot => match verify(hub, params, false) {
            Ok(acct) => subscribe(hub, conn, Some(acct)),
            Err(e) => auth_fail(&e),
        },
        "userDataStream.subscribe.listenToken" if spot => {
            let t = auth::param_text(params, "listenToken");
            match token::subscribe(hub, conn, t.as_deref()) {
                Ok(r) => done(r),
                Err((s, c, m)) => fail(s, c, m),
            }
        }
        "userDataStream.unsubscribe" if spot => unsubscribe(hub, conn, params),
        m if trade::serves(hub.kind(), m) => match signer(hub, conn, params) {
            Ok(acct) => trade::call(hub, acct, m, &Params::from_json(params)),
            Err(e) => auth_fail(&e),
        },
        other => fail(400, -1000, format!("Unknown method '{other}'.")),
    }
}

fn encode(_hub: &Hub, id: &Value, r: &Reply, limits: Option<String>) -> String {
    let mut o = Obj::new().raw("id", id).raw("status", r.status);
    o = match &r.body {
        Ok(result) => o.raw("result", result),
        Err(f) => {
            let mut e = Obj::new().raw("code", f.code).s("msg", &f.msg);
            if let Some(d) = &f.data {
                e = e.raw("data", d);
            }
            o.raw("error", e.end())
        }
    };
    if let Some(l) = limits {
        o = o.raw("rateLimits", l);
    }
    o.end()
}

/// Verifies a signed WS-API request (`apiKey`, `timestamp`, `recvWindow`,
/// `signature` in `params`); returns the account.
fn verify(hub: &Hub, params: &Map<String, Value>, ed25519_only: bool) -> Result<usize, AuthError> {
    let key = auth::param_text(params, "apiKey").filter(|k| !k.is_empty()).ok_or(AuthError::Mandatory("apiKey"))?;
    let sig =
        auth::param_text(params, "signature").filter(|s| !s.is_empty()).ok_or(AuthError::Mandatory("signature"))?;
    let (verifier, acct, server_ms) = {
        let st = hub.lock();
        let acct = st.accounts.by_api_key(&key).ok_or(AuthError::UnknownKey)?;
        (st.accounts.list[acct].verifier.clone(), acct, hub.venue_ms(&st))
    };
    let ts = auth::param_text(params, "timestamp");
    let rw = auth::param_text(params, "recvWindow");
    auth::check_time(server_ms, ts.as_deref(), rw.as_deref(), hub.cfg.limits.max_recv_window_ms)?;
    if ed25519_only && !verifier.has_ed25519() {
        return Err(AuthError::BadSignature);
    }
    verifier.verify(auth::sorted_payload(params).as_bytes(), &sig, ed25519_only)?;
    Ok(acct)
}

/// Who signs a SIGNED request: its own `signature` (with `apiKey`) when it
/// carries one, else the logged-on session (the `timestamp` rule still
/// applies, as the docs say); neither is `-1102` for `apiKey`.
fn signer(hub: &Hub, conn: u64, params: &Map<String, Value>) -> Result<usize, AuthError> {
    if params.get("signature").is_some_and(|s| !s.is_null()) {
        return verify(hub, params, false);
    }
    let (session, server_ms) = {
        let st = hub.lock();
        (st.conns.get(&conn).and_then(|c| c.session), hub.venue_ms(&st))
    };
    let Some(s) = session else {
        return Err(if params.get("apiKey").is_some_and(|k| !k.is_null()) {
            AuthError::Mandatory("signature")
        } else {
            AuthError::Mandatory("apiKey")
        });
    };
    let ts = auth::param_text(params, "timestamp");
    let rw = auth::param_text(params, "recvWindow");
    auth::check_time(server_ms, ts.as_deref(), rw.as_deref(), hub.cfg.limits.max_recv_window_ms)?;
    Ok(s.account)
}

/// The `session.*` result: who is logged on, since when, and (spot) whether a
/// user-data subscription is active.
fn status(hub: &Hub, st: &HubState, conn: u64) -> String {
    let c = st.conns.get(&conn);
    let session = c.and_then(|c| c.session);
    let key = session.and_then(|s| st.accounts.list.get(s.account)).map(|a| a.spec.api_key.clone());
    let o = Obj::new()
        .raw("apiKey", key.map_or("null".into(), |k| Value::from(k).to_string()))
        .raw("authorizedSince", session.map_or("null".into(), |s| s.since_ms.to_string()))
        .raw("connectedSince", c.map_or(0, |c| c.opened_ms))
        .raw("returnRateLimits", true)
        .raw("serverTime", hub.venue_ms(st));
    if hub.kind() != MarketKind::Spot {
        return o.end();
    }
    o.raw("userDataStream", c.is_some_and(|c| !c.user_subs.is_empty())).end()
}

fn logon(hub: &Hub, conn: u64, params: &Map<String, Value>) -> Reply {
    let acct = match verify(hub, params, true) {
        Ok(a) => a,
        Err(e) => return auth_fail(&e),
    };
    let mut st = hub.lock();
    let now = hub.venue_ms(&st);
    if let Some(c) = st.conns.get_mut(&conn) {
        // A new logon replaces the old one (and its logon subscription ends).
        if c.session.is_some_and(|s| s.account != acct) {
            c.user_subs.retain(|s| !s.logon);
        }
        c.session = Some(Session { account: acct, since_ms: now });
    }
    done(status(hub, &st, conn))
}

fn logout(hub: &Hub, conn: u64) -> Reply {
    let mut st = hub.lock();
    let now = hub.venue_ms(&st);
    let ended: Vec<UserSub> = match st.conns.get_mut(&conn) {
        Some(c) => {
            c.session = None;
            let ended = c.user_subs.iter().filter(|s| s.logon).cloned().collect();
            c.user_subs.retain(|s| !s.logon);
            ended
        }
        None => Vec::new(),
    };
    for s in ended {
        terminated(&mut st, conn, &s, now);
    }
    done(status(hub, &st, conn))
}

/// Sends `eventStreamTerminated` on one (already removed) subscription.
pub(crate) fn terminated(st: &mut HubState, conn: u64, s: &UserSub, now: u64) {
    let payload = format!("{{\"subscriptionId\":{},\"event\":{{\"e\":\"eventStreamTerminated\",\"E\":{now}}}}}", s.id);
    if let Some(a) = st.accounts.list.get_mut(s.account) {
        *a.events.entry("eventStreamTerminated".into()).or_default() += 1;
    }
    if let Some(c) = st.conns.get(&conn)
        && c.data_tx.try_send(crate::ws::encode(crate::ws::op::TEXT, payload.as_bytes())).is_ok()
        && let Some(a) = st.accounts.list.get_mut(s.account)
    {
        a.frames_queued += 1;
    }
}

/// Ends every WS-API subscription of the market with `eventStreamTerminated`
/// (the admin fault); returns how many.
pub(crate) fn terminate_all(hub: &Hub, st: &mut HubState) -> usize {
    let now = hub.venue_ms(st);
    let mut all = Vec::new();
    for (id, c) in st.conns.iter_mut() {
        all.extend(c.user_subs.drain(..).map(|s| (*id, s)));
    }
    let n = all.len();
    for (conn, s) in all {
        terminated(st, conn, &s, now);
    }
    n
}

fn subscribe(hub: &Hub, conn: u64, signed: Option<usize>) -> Reply {
    let mut st = hub.lock();
    let Some(c) = st.conns.get_mut(&conn) else { return fail(400, -1000, "Connection closed.") };
    let (acct, logon) = match (signed, c.session) {
        (Some(a), _) => (a, false),
        (None, Some(s)) => (s.account, true),
        (None, None) => return fail(401, -1002, "You are not authorized to execute this request."),
    };
    if c.user_subs.iter().any(|s| s.account == acct && s.scope == Scope::Spot) {
        return fail(400, -2035, "User Data Stream subscription already active.");
    }
    if c.user_subs.len() >= MAX_SUBS || c.next_user_sub > MAX_SUB_IDS {
        return fail(400, -2042, "Maximum subscription ID reached for this connection.");
    }
    let id = c.next_user_sub;
    c.next_user_sub += 1;
    c.user_subs.push(UserSub { id, account: acct, logon, scope: Scope::Spot, expires: None });
    done(format!("{{\"subscriptionId\":{id}}}"))
}

fn unsubscribe(hub: &Hub, conn: u64, params: &Map<String, Value>) -> Reply {
    let which = match params.get("subscriptionId") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(n) => Some(n),
            None => return fail(400, -1100, "Illegal characters found in parameter 'subscriptionId'."),
        },
    };
    let mut st = hub.lock();
    let Some(c) = st.conns.get_mut(&conn) else { return fail(400, -1000, "Connection closed.") };
    match which {
        None => c.user_subs.clear(),
        Some(n) => {
            if !c.user_subs.iter().any(|s| s.id == n) {
                return fail(400, -2036, "Subscription not found.");
            }
            c.user_subs.retain(|s| s.id != n);
        }
    }
    done("{}".into())
}
