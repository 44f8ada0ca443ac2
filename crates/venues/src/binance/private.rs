//! Binance private (user-data) connections: endpoints and the connection
//! rules for the spot WebSocket API session and for listenKey streams.
//!
//! Spot user data arrives over the WebSocket API since 2026 (PROTOCOLS.md
//! §1.6): the connection logs on with `session.logon` (Ed25519), signed afresh
//! on every connect with the venue's clock, then `userDataStream.subscribe`;
//! events arrive as `{"subscriptionId":N,"event":{...}}`.
//!
//! Margin and isolated margin lost their listenKeys on 2026-02-20 (the
//! `/sapi/v1/userDataStream[/isolated]` endpoints answer HTTP 410): a signed
//! `POST /sapi/v1/userListenToken` (`isIsolated`, `symbol`, `validity` up to
//! 24 h) issues a token, subscribed on the same WebSocket API with
//! `userDataStream.subscribe.listenToken` (no logon needed; an invalid token
//! is `-1209`), renewed by subscribing a new token on the same connection
//! before it expires; an expired subscription sends `eventStreamTerminated`
//! (developers.binance.com margin_trading/trade-data-stream, "Listen Token
//! Websocket API"). The futures markets keep listenKeys created over REST and
//! carried in the stream URL; events arrive bare.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use ferrofeed_model::rules::{ClientPing, ConnLimits, Heartbeat, Inbound, VenueRules};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::auth::{Clock, Credentials, query, sorted_query};
use super::{Environment, Market, Route, endpoints, ws_base};
use crate::seam::{SignedCall, TokenIssuer, TokenSlot};

/// The stream name private connections subscribe by.
pub const USER_STREAM: &str = "userData";

/// Which account's user data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// Spot, over the WebSocket API (`session.logon` + `userDataStream.subscribe`).
    Spot,
    /// Cross margin (listenToken from `/sapi/v1/userListenToken`, over the
    /// WebSocket API).
    Margin,
    /// Isolated margin of one symbol (listenToken with `isIsolated=TRUE`).
    IsolatedMargin(String),
    /// USDⓈ-M futures (listenKey from `/fapi/v1/listenKey`, stream on `/private`).
    UsdM,
    /// COIN-M futures (listenKey from `/dapi/v1/listenKey`).
    CoinM,
}

impl Account {
    /// The market whose hosts serve this account.
    pub fn market(&self) -> Market {
        match self {
            Account::Spot | Account::Margin | Account::IsolatedMargin(_) => Market::Spot,
            Account::UsdM => Market::UsdM,
            Account::CoinM => Market::CoinM,
        }
    }

    /// `spot`, `margin`, `isolated:<SYMBOL>`, `usdm`, `coinm`.
    pub fn name(&self) -> String {
        match self {
            Account::Spot => "spot".into(),
            Account::Margin => "margin".into(),
            Account::IsolatedMargin(s) => format!("isolated:{s}"),
            Account::UsdM => "usdm".into(),
            Account::CoinM => "coinm".into(),
        }
    }

    /// The listenKey REST path (`None` for spot, margin and isolated
    /// margin, which subscribe over the WebSocket API instead).
    pub fn listen_key_path(&self) -> Option<String> {
        match self {
            Account::Spot | Account::Margin | Account::IsolatedMargin(_) => None,
            Account::UsdM => Some("/fapi/v1/listenKey".into()),
            Account::CoinM => Some("/dapi/v1/listenKey".into()),
        }
    }

    /// The `userListenToken` parameters of a margin account (`None` for the
    /// others).
    pub fn listen_token_params(&self) -> Option<Vec<(&'static str, String)>> {
        match self {
            Account::Margin => Some(vec![("isIsolated", "FALSE".into())]),
            Account::IsolatedMargin(s) => Some(vec![("isIsolated", "TRUE".into()), ("symbol", s.to_ascii_uppercase())]),
            _ => None,
        }
    }

    /// The REST path of the venue's server time.
    pub fn time_path(&self) -> &'static str {
        match self.market() {
            Market::UsdM => "/fapi/v1/time",
            Market::CoinM => "/dapi/v1/time",
            _ => "/api/v3/time",
        }
    }
}

/// The spot WebSocket API endpoint.
pub fn ws_api_url(env: &Environment) -> String {
    match env {
        Environment::Production => "wss://ws-api.binance.com:443/ws-api/v3".into(),
        Environment::Testnet => "wss://ws-api.testnet.binance.vision/ws-api/v3".into(),
        Environment::Demo => "wss://demo-ws-api.binance.com/ws-api/v3".into(),
        Environment::Custom { ws, .. } => format!("{}/ws-api/v3", ws.trim_end_matches('/')),
    }
}

/// The stream URL of a listenKey (which is a credential: never print it).
pub fn listen_key_url(account: &Account, env: &Environment, key: &str) -> String {
    let market = account.market();
    let base =
        if market == Market::UsdM { ws_base(market, env, Some(Route::Private)) } else { ws_base(market, env, None) };
    format!("{base}/ws/{key}")
}

/// The REST base of an account.
pub fn rest_base(account: &Account, env: &Environment) -> String {
    endpoints(account.market(), env).rest.trim_end_matches('/').to_string()
}

fn private_heartbeat() -> Heartbeat {
    // User streams can be quiet for hours; our pings make the venue answer, so
    // silence longer than three pings means the socket is dead.
    Heartbeat {
        client_ping: ClientPing::WsPing(Vec::new()),
        interval: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(100),
    }
}

fn private_limits() -> ConnLimits {
    ConnLimits {
        max_streams: 1,
        max_msgs: 5,
        msg_window: Duration::from_secs(1),
        max_streams_per_request: 1,
        max_request_bytes: 4096,
        max_stream_chars: None,
    }
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
    #[serde(default)]
    result: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    #[serde(rename = "subscriptionId")]
    subscription_id: Option<u64>,
    #[serde(default, borrow)]
    event: Option<EventHead<'a>>,
    #[serde(default, borrow)]
    e: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(default)]
    code: i64,
    #[serde(default, borrow)]
    msg: Cow<'a, str>,
}

#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(default, borrow)]
    e: Option<Cow<'a, str>>,
}

const LOGON_PREFIX: &str = "logon-";

/// The spot user-data session over the WebSocket API.
pub struct WsApiUserRules {
    creds: Arc<Credentials>,
    clock: Arc<Clock>,
}

impl std::fmt::Debug for WsApiUserRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsApiUserRules").field("creds", &self.creds).field("clock", &self.clock).finish()
    }
}

impl WsApiUserRules {
    /// Rules that log on with `creds` (Ed25519) at the time `clock` gives.
    pub fn new(creds: Arc<Credentials>, clock: Arc<Clock>) -> WsApiUserRules {
        WsApiUserRules { creds, clock }
    }

    /// The `session.logon` frame with a fresh timestamp and signature.
    pub fn logon_frame(&self, id: u64) -> String {
        let ts = self.clock.now_ms();
        let rw = self.clock.recv_window_ms;
        let params = [
            ("apiKey", self.creds.api_key().to_string()),
            ("recvWindow", rw.to_string()),
            ("timestamp", ts.to_string()),
        ];
        let signature = self.creds.sign(&sorted_query(&params));
        serde_json::json!({
            "id": format!("{LOGON_PREFIX}{id}"),
            "method": "session.logon",
            "params": { "apiKey": self.creds.api_key(), "recvWindow": rw, "signature": signature, "timestamp": ts }
        })
        .to_string()
    }
}

fn classify_reply<'a>(r: &Reply<'a>) -> Option<Inbound<'a>> {
    let id = r.id.as_ref()?;
    if id.as_str().is_some_and(|s| s.starts_with(LOGON_PREFIX)) {
        return Some(match (&r.error, r.status) {
            (None, Some(200) | None) if r.result.is_some() => Inbound::AuthOk,
            (Some(e), status) => Inbound::AuthFailed {
                msg: format!("session.logon refused (status {}): {} {}", status.unwrap_or(0), e.code, e.msg),
            },
            (None, status) => {
                Inbound::AuthFailed { msg: format!("session.logon refused (status {})", status.unwrap_or(0)) }
            }
        });
    }
    let num = id.as_u64();
    Some(match (&r.error, num) {
        (Some(e), _) => Inbound::Rejected { id: num, code: e.code, msg: e.msg.to_string(), streams: Vec::new() },
        (None, Some(n)) => Inbound::Ack { id: n },
        (None, None) => Inbound::Unknown,
    })
}

impl VenueRules for WsApiUserRules {
    fn name(&self) -> &str {
        "binance"
    }

    fn heartbeat(&self) -> Heartbeat {
        private_heartbeat()
    }

    fn limits(&self) -> ConnLimits {
        private_limits()
    }

    fn encode_subscribe(&self, id: u64, _streams: &[String]) -> String {
        format!(r#"{{"id":{id},"method":"userDataStream.subscribe"}}"#)
    }

    fn encode_unsubscribe(&self, id: u64, _streams: &[String]) -> String {
        format!(r#"{{"id":{id},"method":"userDataStream.unsubscribe"}}"#)
    }

    fn auth_request(&self, id: u64) -> Option<String> {
        Some(self.logon_frame(id))
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        classify_ws_api(frame)
    }
}

/// A WebSocket API frame: an event of a subscription, a shutdown notice, or
/// the reply to a request.
fn classify_ws_api(frame: &str) -> Inbound<'_> {
    let r: Reply<'_> = match serde_json::from_str(frame) {
        Ok(r) => r,
        Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
    };
    if let Some(ev) = &r.event {
        if ev.e.as_deref() == Some("serverShutdown") {
            return Inbound::Shutdown;
        }
        if r.subscription_id.is_some() {
            return Inbound::Data { stream: Cow::Borrowed(USER_STREAM), seq: None };
        }
    }
    classify_reply(&r).unwrap_or(Inbound::Unknown)
}

/// The REST path that issues margin listenTokens.
pub const LISTEN_TOKEN_PATH: &str = "/sapi/v1/userListenToken";

/// The longest validity the venue gives a listenToken.
pub const MAX_LISTEN_TOKEN_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Issues margin listenTokens: `POST /sapi/v1/userListenToken`, signed with
/// the account's key at the venue clock.
pub struct ListenTokenIssuer {
    rest: String,
    params: Vec<(&'static str, String)>,
    creds: Arc<Credentials>,
    clock: Arc<Clock>,
}

impl std::fmt::Debug for ListenTokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenTokenIssuer").field("rest", &self.rest).field("params", &self.params).finish()
    }
}

impl ListenTokenIssuer {
    /// An issuer for `account` (margin or isolated margin; `None` for the
    /// others) at `rest`.
    pub fn new(account: &Account, rest: String, creds: Arc<Credentials>, clock: Arc<Clock>) -> Option<Self> {
        Some(ListenTokenIssuer { rest, params: account.listen_token_params()?, creds, clock })
    }
}

/// A base64 signature in a query string: `+`, `/` and `=` escaped.
fn query_value(v: &str) -> String {
    v.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

impl TokenIssuer for ListenTokenIssuer {
    fn request(&self, validity: Duration) -> SignedCall {
        let validity = validity.min(MAX_LISTEN_TOKEN_VALIDITY).as_millis().max(1);
        let mut params = self.params.clone();
        params.push(("validity", validity.to_string()));
        params.push(("recvWindow", self.clock.recv_window_ms.to_string()));
        params.push(("timestamp", self.clock.now_ms().to_string()));
        let q = query(&params);
        let signature = query_value(&self.creds.sign(&q));
        SignedCall {
            method: "POST",
            url: format!("{}{LISTEN_TOKEN_PATH}?{q}&signature={signature}", self.rest),
            headers: vec![("X-MBX-APIKEY", self.creds.api_key().to_string())],
        }
    }

    fn parse(&self, body: &[u8]) -> Option<(SecretString, i64)> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            token: String,
            expiration_time: i64,
        }
        let a: Answer = serde_json::from_slice(body).ok()?;
        (!a.token.is_empty()).then(|| (SecretString::from(a.token), a.expiration_time))
    }
}

/// A margin user-data connection on the WebSocket API: no logon, the
/// subscription carries the listenToken the session put in the slot.
pub struct ListenTokenRules {
    slot: Arc<TokenSlot>,
}

impl std::fmt::Debug for ListenTokenRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenTokenRules").field("slot", &self.slot).finish()
    }
}

impl ListenTokenRules {
    /// Rules that subscribe with the token in `slot`.
    pub fn new(slot: Arc<TokenSlot>) -> ListenTokenRules {
        ListenTokenRules { slot }
    }
}

impl VenueRules for ListenTokenRules {
    fn name(&self) -> &str {
        "binance"
    }

    fn heartbeat(&self) -> Heartbeat {
        private_heartbeat()
    }

    fn limits(&self) -> ConnLimits {
        private_limits()
    }

    fn encode_subscribe(&self, id: u64, _streams: &[String]) -> String {
        let token = self.slot.get();
        serde_json::json!({
            "id": id,
            "method": "userDataStream.subscribe.listenToken",
            "params": { "listenToken": token.as_ref().map_or("", |t| t.expose_secret()) }
        })
        .to_string()
    }

    fn encode_unsubscribe(&self, id: u64, _streams: &[String]) -> String {
        format!(r#"{{"id":{id},"method":"userDataStream.unsubscribe"}}"#)
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        classify_ws_api(frame)
    }
}

/// A listenKey stream: the key is in the URL, events arrive bare.
#[derive(Debug, Clone, Default)]
pub struct ListenKeyRules;

impl VenueRules for ListenKeyRules {
    fn name(&self) -> &str {
        "binance"
    }

    fn heartbeat(&self) -> Heartbeat {
        private_heartbeat()
    }

    fn limits(&self) -> ConnLimits {
        private_limits()
    }

    fn encode_subscribe(&self, id: u64, _streams: &[String]) -> String {
        // Never sent: the URL carries the stream.
        format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#)
    }

    fn encode_unsubscribe(&self, id: u64, _streams: &[String]) -> String {
        format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#)
    }

    fn connect_url(&self, base: &str, streams: &[String]) -> (String, usize) {
        (base.to_string(), streams.len())
    }

    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a> {
        let r: Reply<'_> = match serde_json::from_str(frame) {
            Ok(r) => r,
            Err(e) => return Inbound::Malformed(format!("invalid JSON: {e}")),
        };
        match r.e.as_deref() {
            Some("serverShutdown") => Inbound::Shutdown,
            Some(_) => Inbound::Data { stream: Cow::Borrowed(USER_STREAM), seq: None },
            None => classify_reply(&r).unwrap_or(Inbound::Unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/");

    fn fixture(rel: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn rules() -> WsApiUserRules {
        WsApiUserRules::new(
            Arc::new(Credentials::ed25519_seed("test-key", [3; 32]).unwrap()),
            Arc::new(Clock::default()),
        )
    }

    #[test]
    fn logon_is_signed_over_the_sorted_parameters_it_sends() {
        let r = rules();
        let frame: serde_json::Value = serde_json::from_str(&r.auth_request(7).unwrap()).unwrap();
        assert_eq!(frame["method"], "session.logon");
        assert_eq!(frame["id"], "logon-7");
        let p = &frame["params"];
        let payload = format!(
            "apiKey={}&recvWindow={}&timestamp={}",
            p["apiKey"].as_str().unwrap(),
            p["recvWindow"],
            p["timestamp"]
        );
        let creds = Credentials::ed25519_seed("test-key", [3; 32]).unwrap();
        assert_eq!(p["signature"].as_str().unwrap(), creds.sign(&payload));
        assert!(p["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn ws_api_replies_and_events_are_classified() {
        let r = rules();
        assert_eq!(
            r.classify(r#"{"id":"logon-3","status":200,"result":{"apiKey":"x","authorizedSince":1}}"#),
            Inbound::AuthOk
        );
        assert!(matches!(
            r.classify(r#"{"id":"logon-3","status":401,"error":{"code":-1022,"msg":"Signature for this request is not valid."}}"#),
            Inbound::AuthFailed { msg } if msg.contains("-1022")
        ));
        assert_eq!(r.classify(r#"{"id":9,"status":200,"result":{"subscriptionId":0}}"#), Inbound::Ack { id: 9 });
        assert!(matches!(
            r.classify(r#"{"id":9,"status":400,"error":{"code":-2015,"msg":"no"}}"#),
            Inbound::Rejected { id: Some(9), code: -2015, .. }
        ));
        for f in ["binance_spot/user_execution_report.docs.json", "binance_spot/user_balance_update.docs.json"] {
            assert_eq!(r.classify(&fixture(f)), Inbound::Data { stream: USER_STREAM.into(), seq: None }, "{f}");
        }
        assert_eq!(r.classify(r#"{"event":{"e":"serverShutdown","E":1}}"#), Inbound::Shutdown);
        assert!(matches!(r.classify("{"), Inbound::Malformed(_)));
    }

    #[test]
    fn listen_key_streams_are_bare_events() {
        let r = ListenKeyRules;
        for f in [
            "binance_futures/order_trade_update.docs_via_nautilus.json",
            "binance_spot/user_execution_report.listenkey.docs.json",
        ] {
            assert_eq!(r.classify(&fixture(f)), Inbound::Data { stream: USER_STREAM.into(), seq: None }, "{f}");
        }
        assert_eq!(r.connect_url("wss://x/ws/KEY", &[USER_STREAM.into()]), ("wss://x/ws/KEY".into(), 1));
    }

    #[test]
    fn private_endpoints_are_the_documented_ones() {
        assert_eq!(ws_api_url(&Environment::Production), "wss://ws-api.binance.com:443/ws-api/v3");
        assert_eq!(
            ws_api_url(&Environment::Custom { ws: "ws://127.0.0.1:9/".into(), rest: String::new() }),
            "ws://127.0.0.1:9/ws-api/v3"
        );
        assert_eq!(
            listen_key_url(&Account::UsdM, &Environment::Production, "K"),
            "wss://fstream.binance.com/private/ws/K"
        );
        assert_eq!(listen_key_url(&Account::CoinM, &Environment::Production, "K"), "wss://dstream.binance.com/ws/K");
        assert_eq!(
            listen_key_url(&Account::Margin, &Environment::Production, "K"),
            "wss://stream.binance.com:9443/ws/K"
        );
        assert_eq!(Account::IsolatedMargin("btcusdt".into()).listen_key_path(), None);
        assert_eq!(Account::Margin.listen_key_path(), None);
        assert_eq!(Account::Spot.listen_key_path(), None);
    }
}
