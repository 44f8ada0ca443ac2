//! The Binance private (user-data) client: a dedicated connection per
//! account, authenticated before anything else on every connect, with
//! credentials that never reach a log, an error or `Debug` output.
//!
//! - Spot: the WebSocket API. Every new socket logs on with `session.logon`
//!   (Ed25519, signed with the venue clock's measured offset) and then
//!   subscribes with `userDataStream.subscribe`.
//! - Margin, isolated margin, USDⓈ-M and COIN-M: a listenKey created over REST
//!   (`X-MBX-APIKEY`), kept alive every 30 minutes, replaced (with a new
//!   connection) when the venue says `listenKeyExpired` or a keep-alive
//!   answers `-1125`.
//! - A refused credential is one terminal `auth_failed` event: the
//!   connection is not retried.
//! - User streams carry no sequence numbers, so after every reconnect a `gap`
//!   with `missing: "unknown"` tells the consumer that events of the outage
//!   may be missing (reconcile over REST).
//!
//! The public [`crate::binance::BinanceClient`] takes no credentials at all;
//! this client requires them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrofeed_engine::{
    BackoffConfig, ConnectSpec, Connection, ConnectionConfig, Event as EngineEvent, EventKind as EngineKind,
    EventReceiver, EventSender, Native, Overflow, RestClient, RestError, VenueRules, queue,
};
use ferrofeed_model::event::{Event, EventKind, Gap, Missing, UnknownExtent, Venue};
use ferrofeed_venues::binance::auth::{Clock, Credentials};
use ferrofeed_venues::binance::normalize::{self, market_type};
use ferrofeed_venues::binance::private::{
    Account, ListenKeyRules, USER_STREAM, WsApiUserRules, listen_key_url, rest_base, ws_api_url,
};
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};

pub use ferrofeed_venues::binance::auth::{CredentialError, KeyKind};
pub use ferrofeed_venues::binance::private::Account as PrivateAccount;

use crate::binance::Environment;

/// How the private client behaves. Holds no secrets.
#[derive(Debug, Clone)]
pub struct PrivateConfig {
    /// The deployment.
    pub environment: Environment,
    /// `recvWindow` of signed requests, ms (at most 60000).
    pub recv_window_ms: u64,
    /// Reconnect schedule.
    pub backoff: BackoffConfig,
    /// How often listenKeys are kept alive (the venue's keys last 60 min).
    pub keepalive: Duration,
    /// Events buffered for the consumer.
    pub queue_capacity: usize,
    /// Seed for reconnect jitter.
    pub seed: Option<u64>,
}

impl Default for PrivateConfig {
    fn default() -> PrivateConfig {
        PrivateConfig {
            environment: Environment::Production,
            recv_window_ms: 5000,
            backoff: BackoffConfig::default(),
            keepalive: Duration::from_secs(30 * 60),
            queue_capacity: 4096,
            seed: None,
        }
    }
}

/// Why a private request failed. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
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
    /// Spot user data needs an Ed25519 key (`session.logon`).
    #[error("spot user data needs an Ed25519 API key (session.logon); this key is {0:?}")]
    NeedsEd25519(KeyKind),
    /// The connection could not be started.
    #[error("starting the connection: {0}")]
    Start(String),
}

struct Open {
    account: Account,
    conn: Connection,
    listen_key: Option<SecretString>,
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("account", &self.account)
            .field("conn", &self.conn.snapshot().id)
            .field("listen_key", &self.listen_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A Binance user-data client.
pub struct BinancePrivateClient {
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
    renew: VecDeque<Account>,
    keepalive: tokio::time::Interval,
    stats: PrivateStats,
}

impl std::fmt::Debug for BinancePrivateClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinancePrivateClient")
            .field("creds", &self.creds)
            .field("cfg", &self.cfg)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

/// Counters of a private client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrivateStats {
    /// listenKeys created (first ones and replacements).
    pub listen_keys_created: u64,
    /// Keep-alives sent.
    pub keepalives: u64,
    /// listenKeys replaced after expiry.
    pub listen_keys_replaced: u64,
    /// Reconnects (each reported with a gap).
    pub reconnects: u64,
    /// Credentials refused.
    pub auth_failures: u64,
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

#[derive(serde::Deserialize)]
struct ListenKeyAnswer {
    #[serde(rename = "listenKey")]
    listen_key: String,
}

#[derive(serde::Deserialize)]
struct TimeAnswer {
    #[serde(rename = "serverTime")]
    server_time: i64,
}

impl BinancePrivateClient {
    /// A client for the account behind `creds`.
    pub fn new(creds: Credentials, cfg: PrivateConfig) -> BinancePrivateClient {
        let (tx, rx) = queue(cfg.queue_capacity, Overflow::Block);
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + cfg.keepalive, cfg.keepalive);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        BinancePrivateClient {
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
        }
    }

    /// The venue clock (measured offset, recvWindow).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Counters.
    pub fn stats(&self) -> PrivateStats {
        self.stats
    }

    /// Measures the venue's clock offset against `account`'s server time.
    pub async fn sync_time(&self, account: &Account) -> Result<i64, PrivateError> {
        let url = format!("{}{}", rest_base(account, &self.cfg.environment), account.time_path());
        let sent = self.clock.local_now_ms();
        let body = self.http.get(&url, 1, None).await?;
        let received = self.clock.local_now_ms();
        let t: TimeAnswer = serde_json::from_slice(&body).map_err(|_| PrivateError::Answer {
            what: "server time",
            body: String::from_utf8_lossy(&body).into_owned(),
        })?;
        self.clock.observe(sent, t.server_time, received);
        Ok(self.clock.offset_ms())
    }

    async fn listen_key(
        &self,
        account: &Account,
        method: &str,
        key: Option<&SecretString>,
    ) -> Result<Option<SecretString>, PrivateError> {
        let Some(path) = account.listen_key_path() else { return Ok(None) };
        let mut url = format!("{}{path}", rest_base(account, &self.cfg.environment));
        // Spot and margin keep-alives and closes name the key; futures keys
        // are per API key.
        if let (Some(k), Account::Margin | Account::IsolatedMargin(_)) = (key, account) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("listenKey=");
            url.push_str(k.expose_secret());
        }
        let headers = [("X-MBX-APIKEY", self.creds.api_key())];
        let body = self.http.send(method, &url, &headers, 1, None).await.map_err(|e| self.scrub_rest(e))?;
        if method != "POST" {
            return Ok(None);
        }
        let a: ListenKeyAnswer = serde_json::from_slice(&body).map_err(|_| PrivateError::Answer {
            what: "listenKey",
            body: "<body not shown: it may hold a key>".into(),
        })?;
        Ok(Some(a.listen_key.into()))
    }

    /// Opens the user-data connection of `account`: measures the clock, then
    /// (listenKey accounts) creates a key, and connects. Events arrive from
    /// [`BinancePrivateClient::next`].
    pub async fn open(&mut self, account: Account) -> Result<(), PrivateError> {
        if self.open.values().any(|o| o.account == account) {
            return Err(PrivateError::AlreadyOpen(account.name()));
        }
        if account == Account::Spot && self.creds.kind() != KeyKind::Ed25519 {
            return Err(PrivateError::NeedsEd25519(self.creds.kind()));
        }
        self.sync_time(&account).await?;
        let (url, rules, key): (String, Arc<dyn VenueRules>, Option<SecretString>) = match account {
            Account::Spot => (
                ws_api_url(&self.cfg.environment),
                Arc::new(WsApiUserRules::new(self.creds.clone(), self.clock.clone())),
                None,
            ),
            _ => {
                let key = self.listen_key(&account, "POST", None).await?;
                self.stats.listen_keys_created += 1;
                let k = key.as_ref().map(|k| k.expose_secret().to_string()).unwrap_or_default();
                (listen_key_url(&account, &self.cfg.environment, &k), Arc::new(ListenKeyRules), key)
            }
        };
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut cc = ConnectionConfig::new(ConnectSpec::new(url));
        cc.backoff = self.cfg.backoff.clone();
        cc.seed = self.cfg.seed;
        cc.id = id;
        cc.queue_capacity = self.cfg.queue_capacity;
        let conn =
            Connection::spawn_with(self.transport.clone(), rules, cc, vec![USER_STREAM.to_string()], self.tx.clone())
                .map_err(|e| PrivateError::Start(e.to_string()))?;
        self.open.insert(id, Open { account, conn, listen_key: key });
        Ok(())
    }

    /// Accounts open now.
    pub fn accounts(&self) -> Vec<Account> {
        self.open.values().map(|o| o.account.clone()).collect()
    }

    /// Whether `account`'s connection is delivering.
    pub fn is_active(&self, account: &Account) -> bool {
        self.open.values().any(|o| &o.account == account && o.conn.snapshot().state == ferrofeed_engine::State::Active)
    }

    /// The next event: normalized user data (`order_update`,
    /// `balance_update`, `position_update`, ...) and status events. `None`
    /// once every connection has ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.out.pop_front() {
                return Some(e);
            }
            if let Some(account) = self.renew.pop_front() {
                self.replace_listen_key(account).await;
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
        let accounts: Vec<(Account, Option<SecretString>)> = self
            .open
            .values()
            .filter(|o| o.listen_key.is_some())
            .map(|o| (o.account.clone(), o.listen_key.clone()))
            .collect();
        for (account, key) in accounts {
            self.stats.keepalives += 1;
            match self.listen_key(&account, "PUT", key.as_ref()).await {
                Ok(_) => {}
                Err(PrivateError::Rest(RestError::Status { body, .. })) if body.contains("-1125") => {
                    self.renew.push_back(account);
                }
                Err(e) => {
                    tracing::warn!(account = %account.name(), error = %self.scrub(&e.to_string()), "listenKey keep-alive failed")
                }
            }
        }
    }

    /// A new listenKey and a new connection for `account` (the old key expired).
    async fn replace_listen_key(&mut self, account: Account) {
        let Some(old) = self.open.iter().find(|(_, o)| o.account == account).map(|(id, _)| *id) else { return };
        if let Some(o) = self.open.remove(&old) {
            o.conn.close().await;
        }
        self.stats.listen_keys_replaced += 1;
        let market = market_type(account.market());
        match self.open(account.clone()).await {
            Ok(()) => {}
            Err(e) => {
                let msg = self.scrub(&format!("replacing the expired listenKey of {}: {e}", account.name()));
                self.out.push_back(Event {
                    kind: EventKind::GaveUp { reason: msg },
                    venue: Venue::Binance,
                    market,
                    symbol: None,
                    exchange_ts: None,
                    receive_ts: now_ns(),
                });
            }
        }
    }

    /// A REST error with any listenKey or API key removed from its URL and body.
    fn scrub_rest(&self, e: RestError) -> RestError {
        match e {
            RestError::Url { url, msg } => RestError::Url { url: self.scrub(&url), msg: self.scrub(&msg) },
            RestError::Transport { url, msg } => RestError::Transport { url: self.scrub(&url), msg: self.scrub(&msg) },
            RestError::Timeout { url, after } => RestError::Timeout { url: self.scrub(&url), after },
            RestError::Status { url, status, body, retry_after } => {
                RestError::Status { url: self.scrub(&url), status, body: self.scrub(&body), retry_after }
            }
        }
    }

    /// Removes every listenKey of this client from `s`.
    fn scrub(&self, s: &str) -> String {
        let mut out = s.to_string();
        for o in self.open.values() {
            if let Some(k) = &o.listen_key {
                let k = k.expose_secret();
                if !k.is_empty() {
                    out = out.replace(k, "<redacted>");
                }
            }
        }
        let key = self.creds.api_key();
        if !key.is_empty() {
            out = out.replace(key, "<redacted>");
        }
        out
    }

    fn handle(&mut self, ev: EngineEvent) {
        let Some(open) = self.open.get(&ev.conn) else { return };
        let account = open.account.clone();
        let market = market_type(account.market());
        let status = |kind: EventKind| Event {
            kind,
            venue: Venue::Binance,
            market,
            symbol: None,
            exchange_ts: None,
            receive_ts: now_ns(),
        };
        match ev.kind {
            EngineKind::Data { payload, received, .. } => {
                match normalize::decode(account.market(), &payload, ns(received)) {
                    Ok(events) => {
                        for e in events {
                            if let EventKind::UserStreamEnded { reason } = &e.kind
                                && reason == "listenKeyExpired"
                                && open.listen_key.is_some()
                            {
                                self.renew.push_back(account.clone());
                            }
                            self.out.push_back(e);
                        }
                    }
                    Err(e) => {
                        let (msg, raw) = (self.scrub(&e.to_string()), self.scrub(&payload));
                        self.out.push_back(status(EventKind::Error { msg, raw }));
                    }
                }
            }
            EngineKind::Connected => self.out.push_back(status(EventKind::Connected)),
            EngineKind::Reconnected => {
                // The engine follows with a `gap` of unknown extent: user
                // streams have no sequence numbers, so what happened during
                // the outage cannot be counted, only reported.
                self.stats.reconnects += 1;
                self.out.push_back(status(EventKind::Reconnected));
            }
            EngineKind::Disconnected { reason } => {
                let reason = self.scrub(&reason);
                self.out.push_back(status(EventKind::Disconnected { reason }));
            }
            EngineKind::AuthFailed { msg } => {
                self.stats.auth_failures += 1;
                let msg = self.scrub(&msg);
                self.out.push_back(status(EventKind::AuthFailed { msg }));
            }
            EngineKind::GaveUp { reason } => self.out.push_back(status(EventKind::GaveUp { reason })),
            EngineKind::SubscriptionFailed { stream, code, msg } => {
                let msg = self.scrub(&msg);
                self.out.push_back(status(EventKind::SubscriptionFailed { stream, code, msg }));
            }
            EngineKind::Error { msg, raw } => {
                let (msg, raw) = (self.scrub(&msg), self.scrub(&raw));
                self.out.push_back(status(EventKind::Error { msg, raw }));
            }
            EngineKind::Unknown { raw } => {
                let raw = self.scrub(&raw);
                self.out.push_back(status(EventKind::Unknown { raw }));
            }
            EngineKind::Gap { stream, from, to, missing } => {
                let missing = match missing {
                    ferrofeed_engine::Missing::Count(_) => Missing::Range { from, to },
                    ferrofeed_engine::Missing::Unknown => Missing::Unknown { missing: UnknownExtent::Unknown },
                };
                self.out.push_back(status(EventKind::Gap(Gap { stream, missing })));
            }
            EngineKind::Rotated | EngineKind::StateChanged(_) => {}
        }
    }

    /// Closes every connection (close frames sent) and deletes listenKeys.
    pub async fn shutdown(&mut self) {
        let open = std::mem::take(&mut self.open);
        for (_, o) in open {
            if o.listen_key.is_some() {
                let _ = self.listen_key(&o.account, "DELETE", o.listen_key.as_ref()).await;
            }
            o.conn.close().await;
        }
    }
}
