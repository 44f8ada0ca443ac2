//! The spot WebSocket API (`/ws-api/v3`), user-data part: `session.logon`
//! (Ed25519), `session.status`, `session.logout`, `session.subscriptions`,
//! `userDataStream.subscribe`, `userDataStream.subscribe.signature`,
//! `userDataStream.unsubscribe`, plus `ping` and `time`.
//!
//! Requests are `{"id","method","params"}`; responses
//! `{"id","status","result"|"error":{"code","msg"},"rateLimits":[..]}`. Events
//! of a subscription arrive as `{"subscriptionId":N,"event":{..}}`.

use serde_json::{Map, Value};

use super::auth::{self, AuthError};
use crate::account::Obj;
use crate::hub::{Hub, HubState, Session, UserSub};

/// Most user-data subscriptions one session may hold at once.
const MAX_SUBS: usize = 1000;

/// What one request is answered with.
struct Reply {
    status: u16,
    body: Result<String, (i64, String)>,
}

fn fail(status: u16, code: i64, msg: impl Into<String>) -> Reply {
    Reply { status, body: Err((code, msg.into())) }
}

fn auth_fail(e: &AuthError) -> Reply {
    fail(e.http_status(), e.code(), e.msg())
}

fn done(result: String) -> Reply {
    Reply { status: 200, body: Ok(result) }
}

/// Answers one WS-API text frame; returns (JSON text, success).
pub(crate) fn answer(hub: &Hub, conn: u64, text: &str) -> (String, bool) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return (encode(&Value::Null, &fail(400, -1000, "Malformed request."), None), false),
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let id = match &id {
        Value::Null | Value::Number(_) => id,
        Value::String(s) if s.len() <= 64 => id,
        _ => return (encode(&Value::Null, &fail(400, -1000, "Invalid request id."), None), false),
    };
    let Some(method) = v.get("method").and_then(Value::as_str) else {
        return (encode(&id, &fail(400, -1102, "Mandatory parameter 'method' was not sent."), None), false);
    };
    let empty = Map::new();
    let params = match v.get("params") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return (encode(&id, &fail(400, -1000, "Malformed parameter 'params'."), None), false),
    };
    let weight = match method {
        "ping" | "time" => 1,
        _ => 2,
    };
    let used = match hub.charge_weight(weight) {
        Ok(u) => u,
        Err(_) => {
            let r = fail(429, -1003, "Too many requests; current request weight limit exceeded.");
            return (encode(&id, &r, None), false);
        }
    };
    let reply = match method {
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
        "session.subscriptions" => {
            let st = hub.lock();
            let subs: Vec<String> = st
                .conns
                .get(&conn)
                .map(|c| c.user_subs.iter().map(|s| format!("{{\"subscriptionId\":{}}}", s.id)).collect())
                .unwrap_or_default();
            done(format!("[{}]", subs.join(",")))
        }
        "userDataStream.subscribe" => subscribe(hub, conn, None),
        "userDataStream.subscribe.signature" => match verify(hub, params, false) {
            Ok(acct) => subscribe(hub, conn, Some(acct)),
            Err(e) => auth_fail(&e),
        },
        "userDataStream.unsubscribe" => unsubscribe(hub, conn, params),
        other => fail(400, -1000, format!("Unknown method '{other}'.")),
    };
    let ok = reply.status == 200;
    (encode(&id, &reply, Some((used, hub.cfg.limits.rest_weight_limit))), ok)
}

fn encode(id: &Value, r: &Reply, weight: Option<(u32, u32)>) -> String {
    let mut o = Obj::new().raw("id", id).raw("status", r.status);
    o = match &r.body {
        Ok(result) => o.raw("result", result),
        Err((code, msg)) => o.raw("error", Obj::new().raw("code", code).s("msg", msg).end()),
    };
    if let Some((count, limit)) = weight {
        let rl = Obj::new()
            .s("rateLimitType", "REQUEST_WEIGHT")
            .s("interval", "MINUTE")
            .raw("intervalNum", 1)
            .raw("limit", limit)
            .raw("count", count)
            .end();
        o = o.raw("rateLimits", format!("[{rl}]"));
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

/// The `session.*` result: who is logged on, since when, and whether a
/// user-data subscription is active.
fn status(hub: &Hub, st: &HubState, conn: u64) -> String {
    let c = st.conns.get(&conn);
    let session = c.and_then(|c| c.session);
    let key = session.and_then(|s| st.accounts.list.get(s.account)).map(|a| a.spec.api_key.clone());
    Obj::new()
        .raw("apiKey", key.map_or("null".into(), |k| Value::from(k).to_string()))
        .raw("authorizedSince", session.map_or("null".into(), |s| s.since_ms.to_string()))
        .raw("connectedSince", c.map_or(0, |c| c.opened_ms))
        .raw("returnRateLimits", true)
        .raw("serverTime", hub.venue_ms(st))
        .raw("userDataStream", c.is_some_and(|c| !c.user_subs.is_empty()))
        .end()
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
            let ended = c.user_subs.iter().filter(|s| s.logon).copied().collect();
            c.user_subs.retain(|s| !s.logon);
            ended
        }
        None => Vec::new(),
    };
    for s in ended {
        terminated(hub, &mut st, conn, s, now);
    }
    done(status(hub, &st, conn))
}

/// Sends `eventStreamTerminated` on one (already removed) subscription.
fn terminated(_hub: &Hub, st: &mut HubState, conn: u64, s: UserSub, now: u64) {
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
        terminated(hub, st, conn, s, now);
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
    if c.user_subs.iter().any(|s| s.account == acct) {
        return fail(400, -2035, "User Data Stream subscription already active.");
    }
    if c.user_subs.len() >= MAX_SUBS || c.next_user_sub > u16::MAX as u64 {
        return fail(400, -1000, "Too many user data stream subscriptions on this session.");
    }
    let id = c.next_user_sub;
    c.next_user_sub += 1;
    c.user_subs.push(UserSub { id, account: acct, logon });
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
