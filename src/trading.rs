//! The order client: one venue-neutral order API (place, amend, cancel,
//! cancel all, open orders) over each venue's authenticated WebSocket.
//!
//! [`OrderClient`] opens the trading connection a venue's
//! [`TradingSpec`] plans (the engine actor keeps it up: heartbeats, reconnects,
//! re-authentication before the token expires), and sends each request with
//! [`Connection::call`]: a sequential id, a timeout per request, and the
//! answer the venue's rules matched to that id, read into a typed
//! [`OrderAnswer`] or a typed [`VenueRefusal`]. Nothing is retried. A request
//! whose answer was lost to a dropped connection or a timeout fails with an
//! error that says its outcome is unknown ([`OrderError::outcome_unknown`]);
//! reconcile with [`OrderClient::open_orders`] or the private stream.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::trading::{OrderClient, OrderConfig};
//! use ferrofeed::venues::trading::{OrderType, PlaceOrder, TimeInForce};
//! use ferrofeed::session::Credentials;
//! use ferrofeed::model::event::Side;
//!
//! let creds = Credentials::hmac(std::env::var("DERIBIT_CLIENT_ID")?, std::env::var("DERIBIT_CLIENT_SECRET")?)?;
//! let mut orders = OrderClient::connect("deribit", "any", creds, OrderConfig::default()).await?;
//! let answer = orders
//!     .place(PlaceOrder {
//!         symbol: "BTC-PERPETUAL".into(),
//!         side: Side::Buy,
//!         order_type: OrderType::Limit,
//!         qty: "10".parse()?,
//!         price: Some("50000".parse()?),
//!         time_in_force: TimeInForce::Gtc,
//!         post_only: true,
//!         reduce_only: false,
//!         client_order_id: Some("my-1".into()),
//!     })
//!     .await?;
//! println!("{}", serde_json::to_string(&answer)?);
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrofeed_engine::{
    BackoffConfig, CallError, ConnectSpec, Connection, ConnectionConfig, EventKind as ConnEventKind, Native, Overflow,
    RestClient, State, queue,
};
use ferrofeed_venues::auth::{Clock, Credentials};
use ferrofeed_venues::registry;
use ferrofeed_venues::seam::{MarketId, SeamError};
use ferrofeed_venues::trading::{
    AmendOrder, CancelOrder, OrderAnswer, OrderRequest, PlaceOrder, TradeError, TradingPlan, TradingSpec, VenueRefusal,
};

use crate::client::Environment;
use crate::feed::now_ns;
use crate::session::{PrivateError, measure_clock};

/// Options of an [`OrderClient`].
#[derive(Debug, Clone)]
pub struct OrderConfig {
    /// The deployment.
    pub environment: Environment,
    /// How long one request may wait for its answer; past it the outcome is
    /// unknown.
    pub timeout: Duration,
    /// How long [`OrderClient::connect`] waits for the authenticated socket.
    pub connect_timeout: Duration,
    /// `recvWindow` of signed requests, ms, where the venue has one.
    pub recv_window_ms: u64,
    /// Reconnect schedule.
    pub backoff: BackoffConfig,
}

impl Default for OrderConfig {
    fn default() -> OrderConfig {
        OrderConfig {
            environment: Environment::Production,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
            recv_window_ms: 5000,
            backoff: BackoffConfig::default(),
        }
    }
}

/// Why an order request has no typed answer.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The venue has no order API here, or the account or credentials do
    /// not suit it.
    #[error(transparent)]
    Seam(#[from] SeamError),
    /// Measuring the venue clock or starting the connection failed.
    #[error(transparent)]
    Private(#[from] PrivateError),
    /// The request is malformed (nothing sent), the venue refused it, or its
    /// answer was unreadable (outcome unknown).
    #[error(transparent)]
    Trade(#[from] TradeError),
    /// The request was not sent, or its answer was lost (outcome unknown).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The authenticated socket did not come up.
    #[error("the trading connection did not come up: {0}")]
    Connect(String),
}

impl OrderError {
    /// The venue's refusal, if that is what this is.
    pub fn refusal(&self) -> Option<&VenueRefusal> {
        match self {
            OrderError::Trade(TradeError::Refused(r)) => Some(r),
            _ => None,
        }
    }

    /// Whether the request may have been carried out although no answer
    /// says so: the connection dropped or the answer timed out after it was
    /// sent, or the answer was unreadable.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            OrderError::Call(e) => e.outcome_unknown(),
            OrderError::Trade(TradeError::Answer { .. }) => true,
            _ => false,
        }
    }
}

/// What the trading connection reported besides answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderStats {
    /// Sockets opened after the first (each may have cost in-flight
    /// requests their answers).
    pub reconnects: u64,
    /// The venue's last refusal of the credentials, if any.
    pub auth_failure: Option<String>,
    /// The last error the connection reported (venue error frames not
    /// matched to a request, transport errors).
    pub last_error: Option<String>,
}

/// An authenticated order connection to one venue account.
pub struct OrderClient {
    spec: &'static dyn TradingSpec,
    plan: TradingPlan,
    conn: Connection,
    cfg: OrderConfig,
    stats: Arc<Mutex<OrderStats>>,
    watcher: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for OrderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderClient")
            .field("venue", &self.spec.venue())
            .field("market", &self.plan.market)
            .field("state", &self.conn.state())
            .finish_non_exhaustive()
    }
}

impl OrderClient {
    /// Connects to `venue`'s trading socket for `account` (the venue's
    /// name for it) and waits until it is authenticated. Must be called
    /// inside a tokio runtime.
    pub async fn connect(
        venue: &str,
        account: &str,
        creds: Credentials,
        cfg: OrderConfig,
    ) -> Result<OrderClient, OrderError> {
        let v = registry::by_name(venue)?;
        let spec = v.trading().ok_or_else(|| SeamError::Credentials(format!("{venue} has no order API yet")))?;
        let creds = Arc::new(creds);
        let clock = Arc::new(Clock::new(cfg.recv_window_ms));
        let plan = spec.plan(account, &cfg.environment, creds.clone(), clock.clone())?;
        measure_clock(&RestClient::default(), &clock, &plan.session, creds.api_key()).await?;
        let mut cc = ConnectionConfig::new(ConnectSpec::new(plan.session.url.clone()));
        cc.backoff = cfg.backoff.clone();
        cc.ack_timeout = cfg.timeout;
        // Only connection events flow here (no streams): a small queue that
        // never holds the actor back.
        let (tx, mut rx) = queue(256, Overflow::DropOldest);
        let conn = Connection::spawn_with(Native::new(), plan.session.rules.clone(), cc, Vec::new(), tx)
            .map_err(|e| PrivateError::Start(e.to_string()))?;
        let stats = Arc::new(Mutex::new(OrderStats::default()));
        let seen = stats.clone();
        let watcher = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                match ev.kind {
                    ConnEventKind::Reconnected => s.reconnects += 1,
                    ConnEventKind::GaveUp { reason, .. } => s.last_error = Some(reason),
                    ConnEventKind::AuthFailed { msg } => s.auth_failure = Some(msg),
                    ConnEventKind::Error { msg, .. } => s.last_error = Some(msg),
                    _ => {}
                }
            }
        });
        let client = OrderClient { spec, plan, conn, cfg, stats, watcher };
        let up = tokio::time::timeout(
            client.cfg.connect_timeout,
            client.conn.wait_state(|s| matches!(s, State::Active | State::Closed)),
        )
        .await;
        match up {
            Ok(true) if client.conn.state() == State::Active => Ok(client),
            Ok(_) => {
                let why = client.stats().auth_failure.unwrap_or_else(|| "the connection closed".into());
                Err(OrderError::Connect(why))
            }
            Err(_) => Err(OrderError::Connect(format!(
                "not authenticated within {:?} (state {:?})",
                client.cfg.connect_timeout,
                client.conn.state()
            ))),
        }
    }

    /// The market answers are reported under.
    pub fn market(&self) -> MarketId {
        self.plan.market
    }

    /// Whether the authenticated socket is up now.
    pub fn is_ready(&self) -> bool {
        self.conn.state() == State::Active
    }

    /// Waits until the authenticated socket is up again (after a drop), at
    /// most `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.conn.wait_state(|s| s == State::Active)).await.unwrap_or(false)
    }

    /// What the connection reported.
    pub fn stats(&self) -> OrderStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends one request and reads its answer.
    pub async fn request(&self, request: OrderRequest) -> Result<OrderAnswer, OrderError> {
        // Refuse a malformed request before anything is sent.
        self.spec.encode(0, &request)?;
        let spec = self.spec;
        let req = request.clone();
        let frame = self.conn.call(move |id| spec.encode(id, &req).unwrap_or_default(), self.cfg.timeout).await?;
        Ok(self.spec.decode(&request, &frame, now_ns())?)
    }

    /// Places an order.
    pub async fn place(&self, order: PlaceOrder) -> Result<OrderAnswer, OrderError> {
        self.request(OrderRequest::Place(order)).await
    }

    /// Amends an open order.
    pub async fn amend(&self, amend: AmendOrder) -> Result<OrderAnswer, OrderError> {
        self.request(OrderRequest::Amend(amend)).await
    }

    /// Cancels an open order.
    pub async fn cancel(&self, cancel: CancelOrder) -> Result<OrderAnswer, OrderError> {
        self.request(OrderRequest::Cancel(cancel)).await
    }

    /// Cancels every open order (of `symbol`, when given).
    pub async fn cancel_all(&self, symbol: Option<String>) -> Result<OrderAnswer, OrderError> {
        self.request(OrderRequest::CancelAll { symbol }).await
    }

    /// The open orders of `symbol`.
    pub async fn open_orders(&self, symbol: &str) -> Result<OrderAnswer, OrderError> {
        self.request(OrderRequest::OpenOrders { symbol: symbol.to_string() }).await
    }

    /// Closes the connection.
    pub async fn close(self) {
        let OrderClient { conn, watcher, .. } = self;
        conn.close().await;
        watcher.abort();
    }
}
