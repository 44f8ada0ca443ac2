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
//! - A REST-issued token ([`SessionAuth::Token`], Binance margin, isolated
//!   margin, USDⓈ-M and COIN-M listenKeys): created before connecting, kept
//!   alive, and replaced (with a new connection, reported as a `gap` of
//!   unknown extent) when the venue says it expired.
//!
//! A refused credential is one terminal `auth_failed` event: the connection
//! is not retried. User streams carry no sequence numbers, so after every
//! reconnect a `gap` with `missing: "unknown"` tells the consumer that
//! events of the outage may be missing (reconcile over REST).
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
use ferrofeed_model::event::{Event, EventKind};
pub use ferrofeed_venues::auth::{Clock, CredentialError, Credentials, KeyKind};
use ferrofeed_venues::registry;
use ferrofeed_venues::seam::{Decoder, SeamError, SessionAuth, SessionPlan, VenueSpec};
use futures_util::StreamExt;
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
    /// interval).
    pub keepalive: Option<Duration>,
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
    conn: Connection,
    decoder: Box<dyn Decoder>,
    token: Option<SecretString>,
    /// When the token was last created or kept alive.
    kept: tokio::time::Instant,
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("account", &self.account)
            .field("market", &self.plan.market)
            .field("conn", &self.conn.snapshot().id)
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
    /// Reconnects (each reported with a gap).
    pub reconnects: u64,
    /// Credentials refused.
    pub auth_failures: u64,
}

#[derive(serde::Deserialize)]
struct TimeAnswer {
    #[serde(rename = "serverTime")]
    server_time: i64,
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
    renew: VecDeque<String>,
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
            renew: VecDeque::new(),
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
        let Some(url) = &plan.time_url else { return Ok(self.clock.offset_ms()) };
        let sent = self.clock.local_now_ms();
        let body = self.http.get(url, 1, None).await?;
        let received = self.clock.local_now_ms();
        let t: TimeAnswer = serde_json::from_slice(&body).map_err(|_| PrivateError::Answer {
            what: "server time",
            body: String::from_utf8_lossy(&body).into_owned(),
        })?;
        self.clock.observe(sent, t.server_time, received);
        Ok(self.clock.offset_ms())
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
        // The token is in the URL's path: the engine masks it wherever the URL is shown.
        spec.secret = token.clone();
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
        self.open.insert(id, Open { account: account.to_string(), plan, conn, decoder, token, kept });
        Ok(())
    }

    /// Accounts open now.
    pub fn accounts(&self) -> Vec<String> {
        self.open.values().map(|o| o.account.clone()).collect()
    }

    /// Whether `account`'s connection is delivering.
    pub fn is_active(&self, account: &str) -> bool {
        self.open.values().any(|o| o.account == account && o.conn.snapshot().state == ferrofeed_engine::State::Active)
    }

    /// The next event: normalized user data (`order_update`, `user_trade`,
    /// `balance_update`, `position_update`, ...) and status events. `None`
    /// once every connection has ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.out.pop_front() {
                return Some(e);
            }
            if let Some(account) = self.renew.pop_front() {
                self.replace_token(account).await;
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
        let mut due: Vec<(String, SessionAuth, Option<SecretString>)> = Vec::new();
        for o in self.open.values_mut() {
            let SessionAuth::Token { keepalive, .. } = &o.plan.auth else { continue };
            if o.token.is_some() && now.duration_since(o.kept) >= every.unwrap_or(*keepalive) {
                o.kept = now;
                due.push((o.account.clone(), o.plan.auth.clone(), o.token.clone()));
            }
        }
        for (account, auth, key) in due {
            self.stats.keepalives += 1;
            let marker = match &auth {
                SessionAuth::Token { expired_marker, .. } => *expired_marker,
                SessionAuth::InBand => continue,
            };
            match self.token_call(&auth, "PUT", key.as_ref()).await {
                Ok(_) => {}
                Err(PrivateError::Rest(RestError::Status { body, .. })) if body.contains(marker) => {
                    self.renew.push_back(account);
                }
                Err(e) => {
                    tracing::warn!(%account, error = %self.scrub(&e.to_string()), "token keep-alive failed")
                }
            }
        }
    }

    /// A new token and a new connection for `account` (the old token expired).
    async fn replace_token(&mut self, account: String) {
        let Some(old) = self.open.iter().find(|(_, o)| o.account == account).map(|(id, _)| *id) else { return };
        let Some(o) = self.open.remove(&old) else { return };
        let market = o.plan.market;
        o.conn.close().await;
        self.stats.listen_keys_replaced += 1;
        let streams = Some(o.plan.streams.clone());
        if let Err(e) = self.open_inner(&account, streams).await {
            let msg = self.scrub(&format!("replacing the expired token of {account}: {e}"));
            self.out.push_back(Event {
                kind: EventKind::GaveUp { reason: msg },
                venue: market.venue,
                market: market.market,
                symbol: None,
                exchange_ts: None,
                receive_ts: now_ns(),
            });
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
        let mut secrets: Vec<&str> =
            self.open.values().filter_map(|o| o.token.as_ref()).map(|k| k.expose_secret()).collect();
        secrets.push(self.creds.api_key());
        redact::text(s, &secrets)
    }

    fn handle(&mut self, ev: EngineEvent) {
        let Some(open) = self.open.get_mut(&ev.conn) else { return };
        let market = open.plan.market;
        let account = open.account.clone();
        let expired_event = match &open.plan.auth {
            SessionAuth::Token { expired_event, .. } => Some(*expired_event),
            SessionAuth::InBand => None,
        };
        let status = |kind: EventKind| Event {
            kind,
            venue: market.venue,
            market: market.market,
            symbol: None,
            exchange_ts: None,
            receive_ts: now_ns(),
        };
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
                                self.renew.push_back(account.clone());
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
                    EngineKind::Reconnected => self.stats.reconnects += 1,
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
            if o.token.is_some() {
                let _ = self.token_call(&o.plan.auth, "DELETE", o.token.as_ref()).await;
            }
            o.conn.close().await;
        }
    }
}
