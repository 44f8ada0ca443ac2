//! Deribit authentication and the private channels (PROTOCOLS.md §6.4,
//! §6.6; docs.deribit.com `api-reference/authentication/public-auth`).
//!
//! `public/auth` with `client_credentials` (`client_id` = the account's API
//! key, `client_secret` = its HMAC secret), `client_signature` (`client_id`,
//! `timestamp` ms within `DeribitLimits::signature_window` of the venue
//! clock, `signature` = hex HMAC-SHA256 of `timestamp + "\n" + nonce + "\n" +
//! data` under the secret, `nonce`, `data`) or `refresh_token` (single use).
//! The result is `{access_token, expires_in, refresh_token, scope,
//! enabled_features, token_type: "bearer"}` and the connection is then
//! authorized until the token expires (`DeribitLimits::token_lifetime`);
//! after that, private methods and `user.*` subscriptions answer `13009
//! unauthorized` with `data.reason: "token_expired"` until the client
//! authenticates again (a refresh). Bad credentials: `13004
//! invalid_credentials`.
//!
//! Tokens are kept only as SHA-256 digests; the tokens themselves appear in
//! nothing but the `public/auth` answer, and never in logs or `Debug`.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::DeribitKind;
use crate::hub::{Ctrl, Hub, HubState};
use crate::ws;

use super::channel::{Channel, Known};
use super::credits::Credits;
use super::encode::{notification, num};
use super::heartbeat::Beat;
use super::rpc::{Answer, Req, RpcError};
use super::state_mut;

/// Tokens kept per market (the oldest are forgotten).
const MAX_TOKENS: usize = 10_000;

/// One connection's Deribit state.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// The connection's control path (heartbeats, closes).
    pub ctrl: Option<mpsc::Sender<Ctrl>>,
    pub beat: Beat,
    pub credits: Credits,
    pub auth: Option<ConnAuth>,
}

/// The authorization of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnAuth {
    pub account: usize,
    pub expires: Instant,
    /// The expiry was counted in the stats.
    pub expiry_counted: bool,
}

/// Issued tokens, as digests.
#[derive(Default)]
pub(crate) struct Tokens {
    access: HashMap<[u8; 32], (usize, Instant)>,
    refresh: HashMap<[u8; 32], usize>,
    order: VecDeque<([u8; 32], bool)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("access", &self.access.len()).field("refresh", &self.refresh.len()).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    fn remember(&mut self, key: [u8; 32], access: bool) {
        self.order.push_back((key, access));
        while self.order.len() > MAX_TOKENS {
            if let Some((k, a)) = self.order.pop_front() {
                if a {
                    self.access.remove(&k);
                } else {
                    self.refresh.remove(&k);
                }
            }
        }
    }
}

/// The Deribit state of `conn`, created on first use (with its control path).
pub(crate) fn conn_state(st: &mut HubState, conn: u64) -> Option<&mut ConnState> {
    let ctrl = st.conns.get(&conn)?.ctrl_tx.clone();
    let d = state_mut(st.venue.as_mut())?;
    let c = d.conns.entry(conn).or_default();
    if c.ctrl.is_none() {
        c.ctrl = Some(ctrl);
    }
    Some(c)
}

/// Whether a connection may use private methods and channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authz {
    Ok(usize),
    Missing,
    Expired,
}

/// The connection's authorization now (or that of `token`, a request's
/// `access_token`, when given).
pub(crate) fn authz(st: &mut HubState, conn: u64, token: Option<&str>) -> Authz {
    let now = Instant::now();
    let Some(d) = state_mut(st.venue.as_mut()) else { return Authz::Missing };
    if let Some(t) = token {
        return match d.tokens.access.get(&digest(t)) {
            Some((a, exp)) if *exp > now => Authz::Ok(*a),
            Some(_) => Authz::Expired,
            None => Authz::Missing,
        };
    }
    match d.conns.get(&conn).and_then(|c| c.auth) {
        Some(a) if a.expires > now => Authz::Ok(a.account),
        Some(_) => Authz::Expired,
        None => Authz::Missing,
    }
}

/// Counts a connection's token expiry once.
pub(crate) fn count_expiry(st: &mut HubState, conn: u64) {
    let Some(d) = state_mut(st.venue.as_mut()) else { return };
    if let Some(a) = d.conns.get_mut(&conn).and_then(|c| c.auth.as_mut())
        && !a.expiry_counted
    {
        a.expiry_counted = true;
        d.stats.token_expiries += 1;
    }
}

/// The account a private method runs for, or `13009 unauthorized`.
pub(crate) fn authorize(hub: &Hub, conn: u64, p: &serde_json::Map<String, Value>) -> Result<usize, RpcError> {
    let mut st = hub.lock();
    let token = p.get("access_token").and_then(Value::as_str);
    match authz(&mut st, conn, token) {
        Authz::Ok(a) => Ok(a),
        Authz::Expired => {
            count_expiry(&mut st, conn);
            Err(RpcError::with(13009, "unauthorized", "{\"reason\":\"token_expired\"}".into()))
        }
        Authz::Missing => Err(RpcError::with(13009, "unauthorized", "{\"reason\":\"invalid_token\"}".into())),
    }
}

/// `public/auth`.
pub(crate) fn auth(hub: &Hub, conn: u64, req: &Req<'_>) -> Answer {
    let p = req.params;
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    let refused = |hub: &Hub, reason: &str| {
        if let Some(d) = state_mut(hub.lock().venue.as_mut()) {
            d.stats.auth_failures += 1;
        }
        RpcError::with(13004, "invalid_credentials", format!("{{\"reason\":\"{reason}\"}}"))
    };
    let grant = s("grant_type").ok_or_else(|| RpcError::param("grant_type", "required"))?;
    if hub.swallow_auth() {
        return Err(RpcError::new(10040, "retry"));
    }
    let mut guard = hub.lock();
    let st = &mut *guard;
    let now_ms = hub.venue_ms(st);
    let account = match grant {
        "client_credentials" | "client_signature" => {
            let id = s("client_id").ok_or_else(|| RpcError::param("client_id", "required"))?;
            let Some(acct) = st.accounts.by_api_key(id) else {
                drop(guard);
                return Err(refused(hub, "unknown client_id"));
            };
            let a = &st.accounts.list[acct];
            let ok = if grant == "client_credentials" {
                let secret = s("client_secret").ok_or_else(|| RpcError::param("client_secret", "required"))?;
                a.spec.hmac_secret.as_deref().is_some_and(|x| x.as_bytes() == secret.as_bytes())
            } else {
                let ts = p
                    .get("timestamp")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| RpcError::param("timestamp", "required"))?;
                let sig = s("signature").ok_or_else(|| RpcError::param("signature", "required"))?;
                let window = hub.cfg.limits.deribit.signature_window.as_millis() as u64;
                if ts.abs_diff(now_ms) > window {
                    drop(guard);
                    return Err(refused(hub, "timestamp out of window"));
                }
                let payload = format!("{ts}\n{}\n{}", s("nonce").unwrap_or(""), s("data").unwrap_or(""));
                sig.len() == 64 && a.verifier.verify(payload.as_bytes(), sig, false).is_ok()
            };
            if !ok {
                drop(guard);
                return Err(refused(hub, "invalid credentials"));
            }
            acct
        }
        "refresh_token" => {
            let t = s("refresh_token").ok_or_else(|| RpcError::param("refresh_token", "required"))?;
            let Some(acct) = state_mut(st.venue.as_mut()).and_then(|d| d.tokens.refresh.remove(&digest(t))) else {
                drop(guard);
                return Err(refused(hub, "invalid refresh_token"));
            };
            acct
        }
        _ => {
            return Err(RpcError::param("grant_type", "must be client_credentials, client_signature or refresh_token"));
        }
    };
    let access = format!("{now_ms}.{}.{}", st.accounts.token(8), st.accounts.token(120));
    let refresh = format!("{now_ms}.{}.{}", st.accounts.token(8), st.accounts.token(120));
    let lifetime = hub.cfg.limits.deribit.token_lifetime;
    let expires = Instant::now() + lifetime;
    let ctrl = st.conns.get(&conn).map(|c| c.ctrl_tx.clone());
    let Some(d) = state_mut(st.venue.as_mut()) else { return Err(RpcError::new(11094, "internal_server_error")) };
    let (ka, kr) = (digest(&access), digest(&refresh));
    d.tokens.access.insert(ka, (account, expires));
    d.tokens.remember(ka, true);
    d.tokens.refresh.insert(kr, account);
    d.tokens.remember(kr, false);
    if grant == "refresh_token" {
        d.stats.refreshes += 1;
    } else {
        d.stats.auths += 1;
    }
    let c = d.conns.entry(conn).or_default();
    if c.ctrl.is_none() {
        c.ctrl = ctrl;
    }
    c.auth = Some(ConnAuth { account, expires, expiry_counted: false });
    let expires_in = lifetime.as_secs_f64().ceil() as u64;
    let mut r = format!(
        "{{\"access_token\":\"{access}\",\"expires_in\":{expires_in},\"refresh_token\":\"{refresh}\",\"scope\":\"connection mainaccount\",\"enabled_features\":[],\"token_type\":\"bearer\""
    );
    if let Some(state) = s("state") {
        r.push_str(&format!(",\"state\":{}", super::encode::js(state)));
    }
    r.push('}');
    Ok(r)
}

/// Sends `data_of(channel)` on every `user.*` channel of `acct`'s
/// authorized connections that `wants` selects (each channel gets its own
/// notification, as the venue sends them).
pub(crate) fn push_user(
    st: &mut HubState,
    acct: usize,
    event: &str,
    wants: impl Fn(&Channel) -> bool,
    data_of: impl Fn(&Channel) -> Option<String>,
) {
    if let Some(a) = st.accounts.list.get_mut(acct) {
        *a.events.entry(event.to_string()).or_default() += 1;
    }
    let now = Instant::now();
    let Some(d) = super::state(st.venue.as_ref()) else { return };
    let authorized: Vec<u64> = d
        .conns
        .iter()
        .filter(|(_, c)| c.auth.is_some_and(|a| a.account == acct && a.expires > now))
        .map(|(id, _)| *id)
        .collect();
    let specs: Vec<_> = st.market.symbols.iter().map(|s| s.spec.clone()).collect();
    let spec_refs: Vec<&_> = specs.iter().collect();
    let known = Known { specs: &spec_refs };
    let mut queued = 0;
    for id in authorized {
        let Some(c) = st.conns.get(&id) else { continue };
        for name in &c.subs {
            let Some(ch) = known.parse(name).filter(|ch| ch.is_private() && wants(ch)) else { continue };
            let Some(data) = data_of(&ch) else { continue };
            let f = ws::encode(ws::op::TEXT, notification(name, &data).as_bytes());
            if c.data_tx.try_send(f).is_ok() {
                queued += 1;
            }
        }
    }
    if let Some(a) = st.accounts.list.get_mut(acct) {
        a.frames_queued += queued;
    }
}

/// The `user.portfolio.{currency}` data of `acct` (keys as the
/// `user_portfolio.json` capture). Futures positions are valued at the mid.
pub(crate) fn portfolio(kind: DeribitKind, st: &HubState, acct: usize, currency: &str) -> String {
    let a = &st.accounts.list[acct];
    let balance = a.balances.get(currency).map_or(0, |b| b.free);
    let (upl, im, mm) = super::order::margins(kind, st, acct, currency);
    let equity = balance + upl;
    let avail = equity - im;
    let n = |v: i128| num(v, 8);
    let usd = crate::config::spot_price(currency).unwrap_or(1.0);
    let usd_of = |v: i128| super::encode::float(v as f64 / 1e8 * usd, 6);
    format!(
        "{{\"total_maintenance_margin_usd\":{},\"projected_initial_margin\":{},\"total_delta_total_usd\":0.0,\"options_gamma_map\":{{}},\"options_session_rpl\":0.0,\"options_session_upl\":0.0,\"futures_session_rpl\":0.0,\"fee_balance\":0.0,\"projected_maintenance_margin\":{},\"session_upl\":{},\"projected_delta_total\":0.0,\"initial_margin\":{},\"options_pl\":0.0,\"options_vega_map\":{{}},\"margin_balance\":{},\"balance\":{},\"maintenance_margin\":{},\"total_initial_margin_usd\":{},\"additional_reserve\":0.0,\"locked_balance\":0.0,\"options_value\":0.0,\"options_delta\":0.0,\"margin_model\":\"cross_sm\",\"portfolio_margining_enabled\":false,\"options_gamma\":0.0,\"available_funds\":{},\"cross_collateral_enabled\":true,\"delta_total\":0.0,\"options_theta_map\":{{}},\"spot_reserve\":0.0,\"total_equity_usd\":{},\"options_theta\":0.0,\"futures_session_upl\":{},\"delta_total_map\":{{}},\"session_rpl\":0.0,\"futures_pl\":{},\"available_withdrawal_funds\":{},\"options_vega\":0.0,\"equity\":{},\"total_pl\":{},\"currency\":\"{currency}\",\"total_margin_balance_usd\":{}}}",
        usd_of(mm),
        n(im),
        n(mm),
        n(upl),
        n(im),
        n(equity),
        n(balance),
        n(mm),
        usd_of(im),
        n(avail),
        usd_of(equity),
        n(upl),
        n(upl),
        n(avail),
        n(equity),
        n(upl),
        usd_of(equity),
    )
}

/// Pushes `user.portfolio.{currency}` and `user.portfolio.any` to `acct`.
pub(crate) fn push_portfolio(kind: DeribitKind, hub: &Hub, st: &mut HubState, acct: usize, currency: &str) {
    let _ = hub;
    let data = portfolio(kind, st, acct, currency);
    let cur = currency.to_uppercase();
    push_user(
        st,
        acct,
        "user.portfolio",
        |ch| matches!(ch, Channel::Portfolio(c) if *c == cur || c == "any"),
        |_| Some(data.clone()),
    );
}
