//! Margin and isolated-margin user data by listenToken (the replacement of
//! the margin listenKeys removed on 2026-02-20; developers.binance.com
//! docs/margin_trading/trade-data-stream, "listenToken Subscription Methods"):
//!
//! - `POST /sapi/v1/userListenToken` (signed; `isIsolated`, `symbol` when
//!   isolated, `validity` in ms, default and at most 24 h) →
//!   `{"token":"..","expirationTime":<ms>}`;
//! - WebSocket API `userDataStream.subscribe.listenToken` (`{"listenToken":..}`,
//!   no logon needed) → `{"subscriptionId":N,"expirationTime":<ms>}`; an
//!   unknown or expired token is `-1209`. Subscribing again on the same
//!   connection with a token of the same account and scope renews that
//!   subscription (same id, new expiry); one that is not renewed in time ends
//!   with `eventStreamTerminated`.
//!
//! Tokens are secrets: drawn from the OS-seeded generator, kept only as
//! digests (`state`), never logged or echoed.

use std::time::Duration;

use bytes::Bytes;
use hyper::{Request, StatusCode};
use rand::Rng;
use tokio::time::Instant;

use super::auth::AuthError;
use super::private::verify_rest;
use super::state::{self, Token};
use super::venue_error;
use crate::account::{Obj, Scope};
use crate::hub::{Hub, HubState, UserSub};
use crate::server::{Resp, json};

/// The longest (and default) validity: 24 h.
pub(crate) const MAX_VALIDITY_MS: u64 = 24 * 3600 * 1000;
/// The shortest validity accepted (a simulator choice, so tests can watch a
/// subscription run out; the venue documents none).
pub(crate) const MIN_VALIDITY_MS: u64 = 1000;

/// Most user-data subscriptions one session may hold at once, and over its life.
const MAX_SUBS: usize = 1000;
const MAX_SUB_IDS: u64 = 65_535;

/// A fresh token: 70 characters of the base64 alphabet, like the docs' example.
fn new_token() -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..70).map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char).collect()
}

fn err(status: u16, code: i64, msg: &str) -> Resp {
    venue_error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), code, msg)
}

/// `isIsolated`: `TRUE`/`FALSE` in any case; absent is false.
pub(crate) fn is_isolated(v: Option<&str>) -> Result<bool, (u16, i64, String)> {
    match v.map(str::to_ascii_uppercase).as_deref() {
        None | Some("FALSE") => Ok(false),
        Some("TRUE") => Ok(true),
        Some(_) => Err((
            400,
            -1100,
            "Illegal characters found in parameter 'isIsolated'; legal range is 'TRUE, FALSE'.".into(),
        )),
    }
}

/// `POST /sapi/v1/userListenToken`.
pub(crate) fn create(req: &Request<Bytes>, hub: &Hub) -> Resp {
    let (acct, p) = match verify_rest(req, hub) {
        Ok(x) => x,
        Err(e) => return err(e.http_status(), e.code(), &e.msg()),
    };
    let isolated = match is_isolated(p.get("isIsolated")) {
        Ok(b) => b,
        Err((s, c, m)) => return err(s, c, &m),
    };
    let validity = match p.get("validity") {
        None => MAX_VALIDITY_MS,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(ms) if (MIN_VALIDITY_MS..=MAX_VALIDITY_MS).contains(&ms) => ms,
            Ok(_) => return err(400, -1130, "Data sent for parameter 'validity' is not valid."),
            Err(_) => {
                let e = AuthError::Illegal("validity");
                return err(e.http_status(), e.code(), &e.msg());
            }
        },
    };
    let mut st = hub.lock();
    let scope = if isolated {
        match p.get("symbol") {
            None => return err(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
            Some(s) => match st.market.symbol(s) {
                Some(sym) => Scope::Isolated(sym.spec.name.clone()),
                None => return err(400, -1121, "Invalid symbol."),
            },
        }
    } else {
        Scope::Margin
    };
    let expiration_ms = hub.venue_ms(&st) + validity;
    let token = new_token();
    let t = Token { account: acct, scope, expires: Instant::now() + Duration::from_millis(validity), expiration_ms };
    let Some(bs) = state::get_mut(st.venue.as_mut()) else { return err(404, -1000, "Not found.") };
    bs.add_token(&token, t);
    json(StatusCode::OK, Obj::new().s("token", &token).raw("expirationTime", expiration_ms).end())
}

/// `userDataStream.subscribe.listenToken` on connection `conn`: the result
/// text, or (status, code, message).
pub(crate) fn subscribe(hub: &Hub, conn: u64, listen_token: Option<&str>) -> Result<String, (u16, i64, String)> {
    let Some(text) = listen_token.filter(|t| !t.is_empty()) else {
        return Err((
            400,
            -1102,
            "Mandatory parameter 'listenToken' was not sent, was empty/null, or malformed.".into(),
        ));
    };
    let mut guard = hub.lock();
    let st = &mut *guard;
    // The venue's message for -1209 is not documented; this one is ours.
    let invalid = || (400, -1209, "Invalid listenToken.".to_string());
    let Some(t) = state::get(st.venue.as_ref()).and_then(|bs| bs.token(text)).cloned() else { return Err(invalid()) };
    let Some(c) = st.conns.get_mut(&conn) else { return Err((400, -1000, "Connection closed.".into())) };
    let id = match c.user_subs.iter_mut().find(|s| s.account == t.account && s.scope == t.scope && s.expires.is_some())
    {
        Some(s) => {
            s.expires = Some(t.expires);
            s.id
        }
        None => {
            if c.user_subs.len() >= MAX_SUBS || c.next_user_sub > MAX_SUB_IDS {
                return Err((400, -2042, "Maximum subscription ID reached for this connection.".into()));
            }
            let id = c.next_user_sub;
            c.next_user_sub += 1;
            c.user_subs.push(UserSub {
                id,
                account: t.account,
                logon: false,
                scope: t.scope.clone(),
                expires: Some(t.expires),
            });
            id
        }
    };
    // Where a renewal moved the earliest expiry later, the timer finds nothing
    // due at the old one and looks again.
    if let Some(bs) = state::get_mut(st.venue.as_mut()) {
        bs.next_expiry = Some(bs.next_expiry.map_or(t.expires, |n| n.min(t.expires)));
    }
    Ok(Obj::new().raw("subscriptionId", id).raw("expirationTime", t.expiration_ms).end())
}

/// Ends the token subscriptions that ran out (`eventStreamTerminated`) and
/// forgets expired tokens; cheap while nothing is due.
pub(crate) fn expire(hub: &Hub, st: &mut HubState) {
    let now = Instant::now();
    let due = state::get(st.venue.as_ref()).and_then(|bs| bs.next_expiry).is_some_and(|t| t <= now);
    if !due {
        return;
    }
    let mut ended = Vec::new();
    let mut next: Option<Instant> = None;
    for (id, c) in st.conns.iter_mut() {
        let (gone, kept): (Vec<UserSub>, Vec<UserSub>) =
            c.user_subs.drain(..).partition(|s| s.expires.is_some_and(|e| e <= now));
        c.user_subs = kept;
        for s in &c.user_subs {
            if let Some(e) = s.expires {
                next = Some(next.map_or(e, |n| n.min(e)));
            }
        }
        ended.extend(gone.into_iter().map(|s| (*id, s)));
    }
    if let Some(bs) = state::get_mut(st.venue.as_mut()) {
        bs.next_expiry = next;
        bs.prune_tokens(now);
    }
    let venue_now = hub.venue_ms(st);
    for (conn, s) in ended {
        super::wsapi::terminated(st, conn, &s, venue_now);
    }
}
