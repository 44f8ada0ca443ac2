//! Private (user-data) sessions for every venue, one contract: a dedicated
//! connection per account, authenticated before anything else on every
//! connect, with credentials that never reach a log, an error or `Debug`
//! output.
//!
//! How a venue authenticates is its [`SessionPlan`]:
//!
//! - In band ([`SessionAuth::InBand`]): the connection's rules sign an auth
//!   frame on every new socket (Binance spot: WebSocket API `session.logon`
//!   with an Ed25519 key; Bybit: the `auth` op with an HMAC key) and then
//!   subscribe the account's streams.
//! - A REST-issued token in the URL ([`SessionAuth::Token`], Binance USDⓈ-M
//!   and COIN-M listenKeys): created before connecting, kept alive, and
//!   replaced (with a new connection, reported as a `gap` of unknown extent)
//!   when the venue says it expired.
//! - A short-lived token subscribed over the socket
//!   ([`SessionAuth::ListenToken`], Binance margin and isolated margin):
//!   issued before connecting, renewed on the same connection (a new token,
//!   subscribed again, no gap) at half its validity and right after every
//!   reconnect; when the venue says the subscription expired anyway, the
//!   connection is replaced as for an expired listenKey.
//!
//! A refused credential is one terminal `auth_failed` event: the connection
//! is not retried. A refusal a wrong clock causes (the plan's
//! `clock_refusals`: Binance `-1021`, Bybit `Params Error`) is not final
//! until the clock has been measured again: if it had moved, the session
//! logs on again on a new connection. User streams carry no sequence
//! numbers, so after every reconnect, and every replaced connection (new
//! token, new logon; the old connection's queued events are delivered
//! first), a `gap` with `missing: "unknown"` tells the consumer that events
//! of the outage may be missing (reconcile over REST).
//!
//! ```no_run
//! # async fn f(pem: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::session::{PrivateClient, PrivateConfig};
//! use ferrofeed::venues::auth::Credentials;
//! let creds = Credentials::ed25519_pem("api-key", pem)?;
//! let mut user = PrivateClient::new("binance", creds, PrivateConfig::default())?;
//! user.open("spot").await?; // session.logon + userDataStream.subscribe
//! while let Some(event) = user.next().await {
//!     println!("{event:?}"); // order_update, balance_update, gap, auth_failed, ...
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferrofeed_engine::{
    BackoffConfig, ConnectSpec, Connection, ConnectionConfig, Event as EngineEvent, EventKind as EngineKind,
    EventReceiver, EventSender, Native, Overflow, RestClient, RestError, queue, redact,
};
use ferrofeed_model::event::{Event, EventKind, Gap, Missing, UnknownExtent};
pub use ferrofeed_venues::auth::{Clock, CredentialError, Credentials, KeyKind};
use ferrofeed_venues::registry;
use ferrofeed_venues::seam::{Decoder, MarketId, SeamError, SessionAuth, SessionPlan, VenueSpec};
use futures_util::{FutureExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};

use crate::client::Environment;
use crate::feed::{now_ns, status_kind};

/// How private sessions behave. Holds no secrets.
#[derive(Debug, Clone)]
pub struct PrivateConfig {
    /// The deployment.
    pub environment: Environment,
    /// `recvWindow` of signed requests, ms (at most 60000).
    pub recv_window_ms: u64,
    /// Reconnect schedule.
    pub backoff: BackoffConfig,
    /// How often tokens (listenKeys) are kept alive (`None`: the venue's
    /// interval); also how often listenTokens are checked for renewal
    /// (`None`: every minute).
    pub keepalive: Option<Duration>,
    /// How long listenTokens are asked to be valid (`None`: the venue's
    /// longest, 24 h on Binance); each is renewed at half of it.
    pub token_validity: Option<Duration>,
    /// Events buffered for the consumer.
    pub queue_capacity: usize,
    /// Seed for reconnect jitter.
    pub seed: Option<u64>,
    /// How long a request, or the authentication of a new socket, may go
    /// unanswered before it is reported (a request) or the socket is given
    /// up and reconnected (authentication).
    pub ack_timeout: Duration,
}

impl Default for PrivateConfig {
    fn default() -> PrivateConfig {
        PrivateConfig {
            environment: Environment::Production,
            recv_window_ms: 5000,
            backoff: BackoffConfig::default(),
            keepalive: None,
            token_validity: None,
            queue_capacity: 4096,
            seed: None,
            ack_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a private request failed. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// The venue or account is unknown, or the credentials do not suit it.
    #[error(transparent)]
    Seam(#[from] SeamError),
    /// A REST call failed.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The venue's answer could not be read.
    #[error("unexpected answer from {what}: {body}")]
    Answer {
        /// Which call.
        what: &'static str,
        /// The body.
        body: String,
    },
    /// The account is already open.
    #[error("account {0} is already open")]
    AlreadyOpen(String),
    /// The connection could not be started.
    #[error("starting the connection: {0}")]
    Start(String),
}

struct Open {
    account: String,
    plan: SessionPlan,
    /// `None` once it is being replaced (closed, its queued events drained).
    conn: Option<Connection>,
    decoder: Box<dyn Decoder>,
    token: Option<SecretString>,
    /// When the token was last created or kept alive.
    kept: tokio::time::Instant,
    /// Whether this account's stream has delivered (been active) on this or
    /// an earlier connection: a replacement then reports a gap.
    was_active: bool,
    /// Logons retried after a clock re-sync since the last active one.
    clock_retries: u32,
}

/// Why a session's connection is replaced by a new one.
#[derive(Debug)]
enum Reopen {
    /// The venue said the token expired: a new token, a new connection.
    TokenExpired,
    /// The logon was refused the way a wrong clock makes it refused: the
    /// clock is measured again; if it had moved, a new logon, else this
    /// refusal (`msg`) stands.
    Clock { msg: String },
}

/// Logons retried after a clock re-sync in a row (without becoming active)
/// before a clock refusal is final.
const MAX_CLOCK_RETRIES: u32 = 3;

/// How far the measured offset must have moved for a clock refusal to be
/// blamed on the clock (and the logon retried), ms.
const CLOCK_MOVED_MS: i64 = 500;

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("account", &self.account)
            .field("market", &self.plan.market)
            .field("conn", &self.conn.as_ref().map(|c| c.snapshot().id))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Counters of a private client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrivateStats {
    /// Tokens (listenKeys) created (first ones and replacements).
    pub listen_keys_created: u64,
    /// Keep-alives sent.
    pub keepalives: u64,
    /// Tokens replaced after expiry.
    pub listen_keys_replaced: u64,
    /// listenTokens renewed on their connection (a new token subscribed).
    pub listen_tokens_renewed: u64,
    /// listenToken renewals that failed (the venue then ends the
    /// subscription at its expiry, and the session opens a new connection).
    pub listen_token_renewals_failed: u64,
    /// Reconnects (each reported with a gap).
    pub reconnects: u64,
    /// Credentials refused.
    pub auth_failures: u64,
    /// Logons refused for the clock, re-measured and retried.
    pub clock_resyncs: u64,
}

/// The private sessions of one venue's account holder.
pub struct PrivateClient {
    venue: &'static dyn VenueSpec,
    creds: Arc<Credentials>,
    clock: Arc<Clock>,
    cfg: PrivateConfig,
    http: RestClient,
    transport: Native,
    tx: EventSender,
    rx: EventReceiver,
    ids: AtomicU64,
    open: BTreeMap<u64, Open>,
    out: VecDeque<Event>,
    reopen: VecDeque<(u64, Reopen)>,
    /// Connections whose listenToken is to be renewed now (after a
    /// reconnect).
    renew: VecDeque<u64>,
    /// The last tokens replaced: still scrubbed from what is shown.
    retired: VecDeque<SecretString>,
    keepalive: tokio::time::Interval,
    stats: PrivateStats,
    scratch: Vec<Event>,
}

impl std::fmt::Debug for PrivateClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateClient")
            .field("venue", &self.venue.venue())
            .field("creds", &self.creds)
            .field("cfg", &self.cfg)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl PrivateClient {
    /// A client for the accounts behind `creds` on `venue` (`binance`,
    /// `bybit`). Must be called inside a tokio runtime.
    pub fn new(venue: &str, creds: Credentials, cfg: PrivateConfig) -> Result<PrivateClient, crate::Error> {
        let venue = registry::by_name(venue)?;
        let (tx, rx) = queue(cfg.queue_capacity, Overflow::Block);
        // Tokens are checked every minute; each is kept alive on its venue's
        // schedule (or the configured one).
        let every = cfg.keepalive.unwrap_or(Duration::from_secs(60));
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(PrivateClient {
            venue,
            clock: Arc::new(Clock::new(cfg.recv_window_ms)),
            creds: Arc::new(creds),
            cfg,
            http: RestClient::default(),
            transport: Native::new(),
            tx,
            rx,
            ids: AtomicU64::new(1),
            open: BTreeMap::new(),
            out: VecDeque::new(),
            reopen: VecDeque::new(),
            renew: VecDeque::new(),
            retired: VecDeque::new(),
            keepalive,
            stats: PrivateStats::default(),
            scratch: Vec::new(),
        })
    }

    /// The venue clock (measured offset, recvWindow).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Counters.
    pub fn stats(&self) -> PrivateStats {
        self.stats
    }

    /// The venue's account names.
    pub fn account_names(&self) -> &'static [&'static str] {
        self.venue.accounts()
    }

    /// The market `account`'s session runs on and reports its events under
    /// (Binance `margin` is spot's, Bybit `linear` is linear's): the market a
    /// simulator must serve for it.
    pub fn market_of(&self, account: &str) -> Result<MarketId, crate::Error> {
        Ok(self.plan(account)?.market)
    }

    /// Where accounts opened from now on connect (a testnet, the simulator);
    /// accounts already open keep their connection.
    pub fn set_environment(&mut self, env: Environment) {
        self.cfg.environment = env;
    }

    fn plan(&self, account: &str) -> Result<SessionPlan, PrivateError> {
        Ok(self.venue.session(account, &self.cfg.environment, self.creds.clone(), self.clock.clone())?)
    }

    /// Measures the venue's clock offset against `account`'s server time
    /// (where the venue signs with it).
    pub async fn sync_time(&self, account: &str) -> Result<i64, crate::Error> {
        let plan = self.plan(account)?;
        Ok(self.measure(&plan).await?)
    }

    async fn measure(&self, plan: &SessionPlan) -> Result<i64, PrivateError> {
        measure_clock(&self.http, &self.clock, plan, self.creds.api_key()).await
    }

    /// Creates (`POST`), keeps alive (`PUT`) or deletes (`DELETE`) a token.
    async fn token_call(
        &self,
        auth: &SessionAuth,
        method: &str,
        key: Option<&SecretString>,
    ) -> Result<Option<SecretString>, PrivateError> {
        let SessionAuth::Token { rest, path, token_param, key_header, token_field, .. } = auth else {
            return Ok(None);
        };
        let mut url = format!("{rest}{path}");
        if let (Some(k), Some(param)) = (key, token_param) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(param);
            url.push('=');
            url.push_str(k.expose_secret());
        }
        let headers = [(*key_header, self.creds.api_key())];
        let body = self.http.send(method, &url, &headers, 1, None).await.map_err(|e| self.scrub_rest(e))?;
        if method != "POST" {
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| PrivateError::Answer { what: "token", body: "<body not shown: it may hold a key>".into() })?;
        match v.get(*token_field).and_then(|t| t.as_str()) {
            Some(t) => Ok(Some(t.to_string().into())),
            None => Err(PrivateError::Answer { what: "token", body: "<body not shown: it may hold a key>".into() }),
        }
    }

    /// A new listenToken from `issuer`, valid for the configured validity.
    async fn issue_token(
        &self,
        issuer: &dyn ferrofeed_venues::seam::TokenIssuer,
        validity: Duration,
    ) -> Result<SecretString, PrivateError> {
        let call = issuer.request(self.cfg.token_validity.unwrap_or(validity));
        let headers: Vec<(&str, &str)> = call.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = self.http.send(call.method, &call.url, &headers, 1, None).await.map_err(|e| self.scrub_rest(e))?;
        issuer
            .parse(&body)
            .map(|(token, _expires)| token)
            .ok_or(PrivateError::Answer { what: "listenToken", body: "<body not shown: it may hold a token>".into() })
    }

    /// Renews the listenToken of connection `id` on the same connection: a
    /// new token, subscribed again (the venue moves the subscription to the
    /// new expiry; nothing is missed, so no gap).
    async fn renew_token(&mut self, id: u64) {
        let Some(o) = self.open.get(&id) else { return };
        let SessionAuth::ListenToken { issuer, slot, validity, .. } = &o.plan.auth else { return };
        let (issuer, slot, validity) = (issuer.clone(), slot.clone(), *validity);
        let (account, rules, streams) = (o.account.clone(), o.plan.rules.clone(), o.plan.streams.clone());
        let token = match self.issue_token(issuer.as_ref(), validity).await {
            Ok(t) => t,
            Err(e) => {
                self.stats.listen_token_renewals_failed += 1;
                tracing::warn!(%account, error = %self.scrub(&e.to_string()), "creating a listenToken failed");
                return;
            }
        };
        let Some(o) = self.open.get_mut(&id) else { return };
        slot.set(token.clone());
        if let Some(old) = o.token.replace(token) {
            if self.retired.len() == 16 {
                self.retired.pop_front();
            }
            self.retired.push_back(old);
        }
        o.kept = tokio::time::Instant::now();
        let Some(conn) = self.open.get(&id).and_then(|o| o.conn.as_ref()) else { return };
        let wait = self.cfg.ack_timeout;
        let up = tokio::time::timeout(wait, conn.wait_state(|s| s == ferrofeed_engine::State::Active))
            .await
            .unwrap_or(false);
        let answer = if up {
            let r = rules.clone();
            conn.call(move |id| r.encode_subscribe(id, &streams), wait).await.map_err(|e| e.to_string())
        } else {
            Err("the connection is not up".into())
        };
        let refused = match &answer {
            Ok(frame) => match rules.classify(frame) {
                ferrofeed_model::rules::Inbound::Ack { .. } => None,
                _ => Some(self.scrub(frame)),
            },
            Err(e) => Some(e.clone()),
        };
        match refused {
            None => self.stats.listen_tokens_renewed += 1,
            Some(why) => {
                self.stats.listen_token_renewals_failed += 1;
                tracing::warn!(%account, why = %why, "subscribing a renewed listenToken failed");
            }
        }
    }

    /// Opens the user-data connection of `account` (the venue's name for it:
    /// `spot`, `usdm`, `isolated:BTCUSDT`, `linear`, ...): measures the
    /// clock where the venue signs with it, creates a token where the venue
    /// uses one, and connects. Events arrive from [`PrivateClient::next`].
    pub async fn open(&mut self, account: &str) -> Result<(), crate::Error> {
        self.open_with(account, None).await
    }

    /// [`PrivateClient::open`] with other streams or topics than the
    /// venue's default set (Bybit: `order.linear`, ...).
    pub async fn open_with(&mut self, account: &str, streams: Option<Vec<String>>) -> Result<(), crate::Error> {
        Ok(self.open_inner(account, streams).await?)
    }

    async fn open_inner(&mut self, account: &str, streams: Option<Vec<String>>) -> Result<(), PrivateError> {
        if self.open.values().any(|o| o.account == account) {
            return Err(PrivateError::AlreadyOpen(account.to_string()));
        }
        let mut plan = self.plan(account)?;
        if let Some(s) = streams {
            plan.streams = s;
        }
        self.measure(&plan).await?;
        // A token's URL is built here and handed to the connection only: the
        // plan kept for the session holds no secret.
        let (token, url) = match &plan.auth {
            SessionAuth::InBand => (None, plan.url.clone()),
            SessionAuth::ListenToken { issuer, slot, validity, .. } => {
                let token = self.issue_token(issuer.as_ref(), *validity).await?;
                self.stats.listen_keys_created += 1;
                slot.set(token.clone());
                (Some(token), plan.url.clone())
            }
            SessionAuth::Token { url_template, .. } => {
                let url_template = url_template.clone();
                let key = self.token_call(&plan.auth, "POST", None).await?;
                self.stats.listen_keys_created += 1;
                let url = url_template.replace("{token}", key.as_ref().map_or("", |k| k.expose_secret()));
                (key, url)
            }
        };
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut spec = ConnectSpec::new(url);
        // A listenKey is in the URL's path: the engine masks it wherever the URL is shown.
        spec.secret = token.clone().filter(|_| matches!(plan.auth, SessionAuth::Token { .. }));
        let mut cc = ConnectionConfig::new(spec);
        cc.backoff = self.cfg.backoff.clone();
        cc.seed = self.cfg.seed;
        cc.id = id;
        cc.queue_capacity = self.cfg.queue_capacity;
        cc.ack_timeout = self.cfg.ack_timeout;
        let conn = Connection::spawn_with(
            self.transport.clone(),
            plan.rules.clone(),
            cc,
            plan.streams.clone(),
            self.tx.clone(),
        )
        .map_err(|e| PrivateError::Start(e.to_string()))?;
        let decoder = self.venue.decoder(plan.market.market);
        let kept = tokio::time::Instant::now();
        let (was_active, clock_retries) = (false, 0);
        self.open.insert(
            id,
            Open {
                account: account.to_string(),
                plan,
                conn: Some(conn),
                decoder,
                token,
                kept,
                was_active,
                clock_retries,
            },
        );
        Ok(())
    }

    /// Accounts open now.
    pub fn accounts(&self) -> Vec<String> {
        self.open.values().map(|o| o.account.clone()).collect()
    }

    /// Whether `account`'s connection is delivering.
    pub fn is_active(&self, account: &str) -> bool {
        self.open.values().any(|o| {
            o.account == account
                && o.conn.as_ref().is_some_and(|c| c.snapshot().state == ferrofeed_engine::State::Active)
        })
    }

    /// The next event: normalized user data (`order_update`, `user_trade`,
    /// `balance_update`, `position_update`, ...) and status events. `None`
    /// once every connection has ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.out.pop_front() {
                return Some(e);
            }
            if let Some((conn, why)) = self.reopen.pop_front() {
                self.replace(conn, why).await;
                continue;
            }
            if let Some(conn) = self.renew.pop_front() {
                self.renew_token(conn).await;
                continue;
            }
            tokio::select! {
                ev = self.rx.next() => {
                    let ev = ev?;
                    self.handle(ev);
                }
                _ = self.keepalive.tick() => self.keep_alive().await,
            }
        }
    }

    async fn keep_alive(&mut self) {
        let now = tokio::time::Instant::now();
        let every = self.cfg.keepalive;
        let mut due: Vec<(u64, String, SessionAuth, Option<SecretString>)> = Vec::new();
        let mut renew = Vec::new();
        for (id, o) in self.open.iter_mut() {
            if let SessionAuth::ListenToken { validity, .. } = &o.plan.auth {
                let half = self.cfg.token_validity.unwrap_or(*validity) / 2;
                if o.token.is_some() && o.conn.is_some() && now.duration_since(o.kept) >= half {
                    renew.push(*id);
                }
                continue;
            }
            let SessionAuth::Token { keepalive, .. } = &o.plan.auth else { continue };
            if o.token.is_some() && o.conn.is_some() && now.duration_since(o.kept) >= every.unwrap_or(*keepalive) {
                o.kept = now;
                due.push((*id, o.account.clone(), o.plan.auth.clone(), o.token.clone()));
            }
        }
        for id in renew {
            self.renew_token(id).await;
        }
        for (id, account, auth, key) in due {
            self.stats.keepalives += 1;
            let marker = match &auth {
                SessionAuth::Token { expired_marker, .. } => *expired_marker,
                SessionAuth::InBand | SessionAuth::ListenToken { .. } => continue,
            };
            match self.token_call(&auth, "PUT", key.as_ref()).await {
                Ok(_) => {}
                Err(PrivateError::Rest(RestError::Status { body, .. })) if body.contains(marker) => {
                    self.reopen.push_back((id, Reopen::TokenExpired));
                }
                Err(e) => {
                    tracing::warn!(%account, error = %self.scrub(&e.to_string()), "token keep-alive failed")
                }
            }
        }
    }

    /// Replaces connection `id` by a new one for the same account (a new
    /// token, or a logon after a clock re-sync). Nothing the old connection
    /// delivered is dropped: it is closed first and every event it had
    /// queued is handled (delivered) before a `gap` of unknown extent marks
    /// what may be missing between the two connections.
    async fn replace(&mut self, id: u64, why: Reopen) {
        let Some(conn) = self.open.get_mut(&id).and_then(|o| o.conn.take()) else { return };
        conn.close().await;
        // The old actor has ended: whatever it produced is in the queue now.
        while let Some(Some(ev)) = self.rx.next().now_or_never() {
            self.handle(ev);
        }
        let Some(mut o) = self.open.remove(&id) else { return };
        if let Some(t) = o.token.take() {
            if self.retired.len() == 16 {
                self.retired.pop_front();
            }
            self.retired.push_back(t);
        }
        let (account, market) = (o.account.clone(), o.plan.market);
        let mut clock_retries = 0;
        match why {
            Reopen::TokenExpired => self.stats.listen_keys_replaced += 1,
            Reopen::Clock { msg } => {
                let before = self.clock.offset_ms();
                let moved = match self.measure(&o.plan).await {
                    Ok(after) => after.abs_diff(before) >= CLOCK_MOVED_MS.unsigned_abs(),
                    Err(e) => {
                        tracing::warn!(%account, error = %self.scrub(&e.to_string()), "measuring the venue clock failed");
                        false
                    }
                };
                if !moved {
                    // The clock was right: the refusal stands, and it is final.
                    self.stats.auth_failures += 1;
                    let msg = self.scrub(&msg);
                    self.out.push_back(status_event(market, EventKind::AuthFailed { msg }));
                    return;
                }
                self.stats.clock_resyncs += 1;
                clock_retries = o.clock_retries + 1;
            }
        }
        if o.was_active {
            for stream in &o.plan.streams {
                let gap = Gap { stream: stream.clone(), missing: Missing::Unknown { missing: UnknownExtent::Unknown } };
                self.out.push_back(status_event(market, EventKind::Gap(gap)));
            }
        }
        let streams = Some(o.plan.streams.clone());
        match self.open_inner(&account, streams).await {
            Ok(()) => {
                if let Some(n) = self.open.values_mut().find(|n| n.account == account) {
                    n.was_active = o.was_active;
                    n.clock_retries = clock_retries;
                }
            }
            Err(e) => {
                let reason = self.scrub(&format!("opening a new connection for {account}: {e}"));
                self.out.push_back(status_event(market, EventKind::GaveUp { reason }));
            }
        }
    }

    /// A REST error with any token or API key removed from its URL and body.
    fn scrub_rest(&self, e: RestError) -> RestError {
        match e {
            RestError::Url { url, msg } => RestError::Url { url: self.scrub(&url), msg: self.scrub(&msg) },
            RestError::Transport { url, msg } => RestError::Transport { url: self.scrub(&url), msg: self.scrub(&msg) },
            RestError::Timeout { url, after } => RestError::Timeout { url: self.scrub(&url), after },
            RestError::TooLarge { url, limit } => RestError::TooLarge { url: self.scrub(&url), limit },
            RestError::Status { url, status, body, retry_after } => {
                RestError::Status { url: self.scrub(&url), status, body: self.scrub(&body), retry_after }
            }
        }
    }

    /// Removes every token of this client and the API key from `s`, and
    /// masks the credentials of any URL in it ([`redact::text`]).
    fn scrub(&self, s: &str) -> String {
        let mut secrets: Vec<&str> = self
            .open
            .values()
            .filter_map(|o| o.token.as_ref())
            .chain(&self.retired)
            .map(|k| k.expose_secret())
            .collect();
        secrets.push(self.creds.api_key());
        redact::text(s, &secrets)
    }

    fn handle(&mut self, ev: EngineEvent) {
        let conn = ev.conn;
        let Some(open) = self.open.get_mut(&conn) else { return };
        let market = open.plan.market;
        let expired_event = match &open.plan.auth {
            SessionAuth::Token { expired_event, .. } | SessionAuth::ListenToken { expired_event, .. } => {
                Some(*expired_event)
            }
            SessionAuth::InBand => None,
        };
        let renews = matches!(open.plan.auth, SessionAuth::ListenToken { .. });
        let status = |kind: EventKind| status_event(market, kind);
        match ev.kind {
            EngineKind::Data { payload, received, .. } => {
                let received_ns = received.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
                let mut decoded = std::mem::take(&mut self.scratch);
                match open.decoder.decode(&payload, received_ns, &mut decoded) {
                    Ok(()) => {
                        for e in decoded.drain(..) {
                            if let EventKind::UserStreamEnded { reason } = &e.kind
                                && expired_event == Some(reason.as_str())
                            {
                                self.reopen.push_back((conn, Reopen::TokenExpired));
                            }
                            self.out.push_back(e);
                        }
                    }
                    Err(e) => {
                        decoded.clear();
                        let (msg, raw) = (self.scrub(&e.to_string()), self.scrub(&payload));
                        self.out.push_back(status(EventKind::Error { msg, raw }));
                    }
                }
                self.scratch = decoded;
            }
            kind => {
                match &kind {
                    // The engine follows with a `gap` of unknown extent: user
                    // streams have no sequence numbers, so what happened during
                    // the outage cannot be counted, only reported.
                    EngineKind::Reconnected => {
                        self.stats.reconnects += 1;
                        (open.was_active, open.clock_retries) = (true, 0);
                        // The new socket subscribed with the token it had;
                        // a fresh one follows at once.
                        if renews {
                            self.renew.push_back(conn);
                        }
                    }
                    EngineKind::Connected => (open.was_active, open.clock_retries) = (true, 0),
                    // A refusal a wrong clock causes: measure the clock again
                    // before deciding (`replace`); the socket has ended.
                    EngineKind::AuthFailed { msg }
                        if open.clock_retries < MAX_CLOCK_RETRIES
                            && open.plan.clock_refusals.iter().any(|m| msg.contains(m)) =>
                    {
                        let msg = msg.clone();
                        self.reopen.push_back((conn, Reopen::Clock { msg }));
                        return;
                    }
                    EngineKind::AuthFailed { .. } => self.stats.auth_failures += 1,
                    _ => {}
                }
                let Some(kind) = status_kind(kind) else { return };
                let kind = match kind {
                    EventKind::Disconnected { reason } => EventKind::Disconnected { reason: self.scrub(&reason) },
                    EventKind::AuthFailed { msg } => EventKind::AuthFailed { msg: self.scrub(&msg) },
                    EventKind::SubscriptionFailed { stream, code, msg } => {
                        EventKind::SubscriptionFailed { stream, code, msg: self.scrub(&msg) }
                    }
                    EventKind::Error { msg, raw } => EventKind::Error { msg: self.scrub(&msg), raw: self.scrub(&raw) },
                    EventKind::Unknown { raw } => EventKind::Unknown { raw: self.scrub(&raw) },
                    EventKind::GaveUp { reason } => EventKind::GaveUp { reason: self.scrub(&reason) },
                    other => other,
                };
                self.out.push_back(status(kind));
            }
        }
    }

    /// Closes every connection (close frames sent) and deletes tokens.
    pub async fn shutdown(&mut self) {
        let open = std::mem::take(&mut self.open);
        for (_, o) in open {
            if o.token.is_some() && matches!(o.plan.auth, SessionAuth::Token { .. }) {
                let _ = self.token_call(&o.plan.auth, "DELETE", o.token.as_ref()).await;
            }
            if let Some(c) = o.conn {
                c.close().await;
            }
        }
    }
}

/// A status event of `market` (no symbol, no exchange time).
fn status_event(market: MarketId, kind: EventKind) -> Event {
    Event { kind, venue: market.venue, market: market.market, symbol: None, exchange_ts: None, receive_ts: now_ns() }
}

/// Measures the venue clock's offset against `plan`'s server-time URL (when
/// the venue signs with it) into `clock`; `api_key` is scrubbed from any
/// error shown.
pub(crate) async fn measure_clock(
    http: &RestClient,
    clock: &Clock,
    plan: &SessionPlan,
    api_key: &str,
) -> Result<i64, PrivateError> {
    let Some(url) = &plan.time_url else { return Ok(clock.offset_ms()) };
    let sent = clock.local_now_ms();
    let body = http.get(url, 1, None).await?;
    let received = clock.local_now_ms();
    // A top-level field (Binance `serverTime`, Bybit `time`, Deribit's
    // JSON-RPC `result`), a number or a numeric string.
    let server_ms =
        serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| match v.get(plan.time_field) {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        });
    let Some(server_ms) = server_ms else {
        return Err(PrivateError::Answer {
            what: "server time",
            body: redact::text(&String::from_utf8_lossy(&body), &[api_key]),
        });
    };
    clock.observe(sent, server_ms, received);
    Ok(clock.offset_ms())
}
