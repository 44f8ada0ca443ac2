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
//! let market = ferrofeed::venues::registry::parse_market("deribit:inverse")?;
//! let mut orders = OrderClient::connect(market, "any", creds, OrderConfig::default()).await?;
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

use serde::Serialize;

use ferrofeed_engine::{
    BackoffConfig, CallError, ConnectSpec, Connection, ConnectionConfig, EventKind as ConnEventKind, Native, Overflow,
    RestClient, State, queue,
};
use ferrofeed_venues::auth::{Clock, Credentials};
use ferrofeed_venues::instruments::Registry;
use ferrofeed_venues::registry;
use ferrofeed_venues::seam::{MarketId, SeamError};
use ferrofeed_venues::trading::{
    AmendOrder, CancelOrder, OrderAnswer, OrderRef, OrderRequest, PlaceOrder, QueryOrder, RateLimit, RateUsage,
    TradeError, TradingPlan, TradingSpec, VenueRefusal, check_instruments,
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
    /// Load the market's instrument list at connect (where the venue has
    /// one in ferrofeed) and refuse, before sending, orders on unlisted
    /// instruments or off the tick and step sizes.
    pub check_instruments: bool,
}

impl Default for OrderConfig {
    fn default() -> OrderConfig {
        OrderConfig {
            environment: Environment::Production,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
            recv_window_ms: 5000,
            backoff: BackoffConfig::default(),
            check_instruments: true,
        }
    }
}

/// An order refused by the local order-rate guard: sending it would exceed
/// one of the venue's order-rate limits. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error(
    "refused locally, not sent: {cost} more would exceed the venue's {} limit of {} per {:?} ({used} used); the window resets in {retry_after_ms} ms",
    limit.name, limit.limit, limit.window
)]
pub struct RateGuardRefusal {
    /// The limit it would exceed.
    pub limit: RateLimit,
    /// How many the current window has used.
    pub used: u64,
    /// How many the request would add.
    pub cost: u64,
    /// When the window resets, ms from now.
    pub retry_after_ms: u64,
}

/// The venue's order-rate limits, each counted in fixed windows aligned to
/// the epoch (as Binance counts them) or to the reset time the venue reports
/// (Bybit): what this client sent, raised to what the venue's answers say.
#[derive(Debug, Default)]
struct RateGuard {
    windows: Vec<Window>,
}

#[derive(Debug)]
struct Window {
    limit: RateLimit,
    start_ms: i64,
    used: u64,
}

impl Window {
    fn len_ms(&self) -> i64 {
        i64::try_from(self.limit.window.as_millis()).unwrap_or(i64::MAX).max(1)
    }

    /// Moves to the window holding `now_ms`, emptied if it is a new one.
    fn roll(&mut self, now_ms: i64) {
        let len = self.len_ms();
        if now_ms >= self.start_ms.saturating_add(len) {
            self.start_ms = now_ms - (now_ms - self.start_ms).rem_euclid(len);
            self.used = 0;
        }
    }
}

impl RateGuard {
    fn new(limits: Vec<RateLimit>, now_ms: i64) -> RateGuard {
        let windows = limits
            .into_iter()
            .map(|limit| {
                let len = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX).max(1);
                Window { limit, start_ms: now_ms - now_ms.rem_euclid(len), used: 0 }
            })
            .collect();
        RateGuard { windows }
    }

    /// Counts `request` in every window, or refuses it (counting nothing)
    /// if one would overflow. Returns what was counted, to give back if the
    /// request is not sent.
    fn reserve(&mut self, now_ms: i64, cost: impl Fn(&RateLimit) -> u64) -> Result<Vec<u64>, RateGuardRefusal> {
        let mut costs = Vec::with_capacity(self.windows.len());
        for w in &mut self.windows {
            w.roll(now_ms);
            let c = cost(&w.limit);
            if c > 0 && w.used.saturating_add(c) > w.limit.limit {
                return Err(RateGuardRefusal {
                    limit: w.limit.clone(),
                    used: w.used,
                    cost: c,
                    retry_after_ms: u64::try_from(w.start_ms + w.len_ms() - now_ms).unwrap_or(0),
                });
            }
            costs.push(c);
        }
        for (w, c) in self.windows.iter_mut().zip(&costs) {
            w.used += c;
        }
        Ok(costs)
    }

    /// Gives back what [`RateGuard::reserve`] counted for a request that was
    /// never sent.
    fn release(&mut self, costs: &[u64]) {
        for (w, c) in self.windows.iter_mut().zip(costs) {
            w.used = w.used.saturating_sub(*c);
        }
    }

    /// Takes the venue's word: a count it reports for a limit of the same
    /// name and window raises ours (the venue also counts what other clients
    /// of the account sent); a limit it reports that we did not know is
    /// kept from now on.
    fn observe(&mut self, now_ms: i64, usage: Vec<RateUsage>) {
        for u in usage {
            let w = match self
                .windows
                .iter_mut()
                .find(|w| w.limit.name == u.limit.name && w.limit.window == u.limit.window)
            {
                Some(w) => w,
                None => {
                    // Already over: the first report below sets its start.
                    let len = i64::try_from(u.limit.window.as_millis()).unwrap_or(i64::MAX).max(1);
                    self.windows.push(Window { limit: u.limit.clone(), start_ms: now_ms.saturating_sub(len), used: 0 });
                    let len = self.windows.len();
                    &mut self.windows[len - 1]
                }
            };
            w.limit.limit = u.limit.limit;
            if let Some(reset) = u.resets_at_ms {
                let start = reset - w.len_ms();
                if start > w.start_ms || now_ms >= w.start_ms + w.len_ms() {
                    w.start_ms = start;
                    w.used = 0;
                }
            } else {
                w.roll(now_ms);
            }
            w.used = w.used.max(u.used);
        }
    }

    fn usage(&self, now_ms: i64) -> Vec<RateUsage> {
        self.windows
            .iter()
            .map(|w| {
                let current = now_ms < w.start_ms + w.len_ms();
                RateUsage {
                    limit: w.limit.clone(),
                    used: if current { w.used } else { 0 },
                    resets_at_ms: current.then(|| w.start_ms + w.len_ms()),
                }
            })
            .collect()
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
    /// The local order-rate guard refused the request; nothing was sent.
    #[error(transparent)]
    RateGuard(#[from] RateGuardRefusal),
    /// The market's instrument list (for the checks before sending) could
    /// not be loaded.
    #[error("loading the instrument list of {market}: {reason}")]
    Instruments {
        /// The market.
        market: MarketId,
        /// Why.
        reason: String,
    },
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
    plan: Arc<TradingPlan>,
    guard: Mutex<RateGuard>,
    instruments: Option<Arc<Registry>>,
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
    /// Connects to the trading socket of `market` (`binance:spot`,
    /// `bybit:linear`, `deribit:inverse`) for `account` (the venue's name for
    /// it), loads the market's instrument list (unless
    /// [`OrderConfig::check_instruments`] is off) and waits until the socket
    /// is authenticated. Must be called inside a tokio runtime.
    pub async fn connect(
        market: MarketId,
        account: &str,
        creds: Credentials,
        cfg: OrderConfig,
    ) -> Result<OrderClient, OrderError> {
        let v = registry::spec(market)?;
        let venue = market.venue.name();
        let spec = v.trading().ok_or_else(|| SeamError::Credentials(format!("{venue} has no order API yet")))?;
        if !spec.markets().contains(&market.market) {
            return Err(SeamError::Credentials(format!(
                "{venue} has no order API for {market} (it trades {})",
                spec.markets().iter().map(|m| v.market_name(*m)).collect::<Vec<_>>().join(", ")
            ))
            .into());
        }
        let creds = Arc::new(creds);
        let clock = Arc::new(Clock::new(cfg.recv_window_ms));
        let plan = Arc::new(spec.plan(market.market, account, &cfg.environment, creds.clone(), clock.clone())?);
        let http = RestClient::default();
        let instruments =
            if cfg.check_instruments { load_instruments(&http, v, market, &cfg.environment).await? } else { None };
        measure_clock(&http, &clock, &plan.session, creds.api_key()).await?;
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
        let guard = Mutex::new(RateGuard::new(spec.order_limits(market.market), now_ms()));
        let client = OrderClient { spec, plan, guard, instruments, conn, cfg, stats, watcher };
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

    /// The venue's order-rate limits as this client counts them now (what
    /// it sent, raised to what the venue's answers reported).
    pub fn rate_limits(&self) -> Vec<RateUsage> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner()).usage(now_ms())
    }

    /// The instrument list the checks before sending use, if loaded.
    pub fn instruments(&self) -> Option<&Registry> {
        self.instruments.as_deref()
    }

    /// Sends one request and reads its answer.
    ///
    /// Before anything is sent, the request is refused if its shape is one
    /// the venue would refuse ([`TradeError::Invalid`]), if it names an
    /// unlisted instrument or a price or quantity off the tick or step size,
    /// or if it would exceed one of the venue's order-rate limits
    /// ([`OrderError::RateGuard`]).
    pub async fn request(&self, request: OrderRequest) -> Result<OrderAnswer, OrderError> {
        let market = self.plan.market.market;
        // Encode once with a stand-in id: a malformed request is refused here.
        self.spec.encode(&self.plan, 0, &request)?;
        if let Some(registry) = &self.instruments {
            check_instruments(registry, &request)?;
        }
        let spec = self.spec;
        let costs = {
            let mut g = self.guard.lock().unwrap_or_else(|p| p.into_inner());
            g.reserve(now_ms(), |l| spec.cost(l, &request))?
        };
        let req = request.clone();
        let plan = self.plan.clone();
        let answer = self.conn.call(move |id| spec.encode(&plan, id, &req).unwrap_or_default(), self.cfg.timeout).await;
        let frame = match answer {
            Ok(frame) => frame,
            Err(e) => {
                if !e.outcome_unknown() {
                    self.guard.lock().unwrap_or_else(|p| p.into_inner()).release(&costs);
                }
                return Err(e.into());
            }
        };
        let usage = spec.rate_usage(market, &frame);
        if !usage.is_empty() {
            self.guard.lock().unwrap_or_else(|p| p.into_inner()).observe(now_ms(), usage);
        }
        Ok(spec.decode(&self.plan, &request, &frame, now_ns())?)
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

    /// The state of one order.
    pub async fn status(&self, symbol: &str, order: OrderRef) -> Result<OrderAnswer, OrderError> {
        self.request(OrderRequest::Status(QueryOrder { symbol: symbol.to_string(), order })).await
    }

    /// Several requests of one kind in one frame, where the venue has a
    /// batch form.
    pub async fn batch(&self, items: Vec<OrderRequest>) -> Result<OrderAnswer, OrderError> {
        self.request(OrderRequest::Batch { items }).await
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

fn now_ms() -> i64 {
    now_ns() / 1_000_000
}

/// The market's instrument list, where the venue has one in ferrofeed.
async fn load_instruments(
    http: &RestClient,
    spec: &'static dyn ferrofeed_venues::seam::VenueSpec,
    market: MarketId,
    env: &Environment,
) -> Result<Option<Arc<Registry>>, OrderError> {
    let Some((path, _weight)) = spec.instruments_request(market.market) else { return Ok(None) };
    let base = spec.endpoints(market.market, env).rest;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let fail = |reason: String| OrderError::Instruments { market, reason };
    let body = http.get(&url, 0, None).await.map_err(|e| fail(e.to_string()))?;
    let registry =
        spec.parse_instruments(market.market, &String::from_utf8_lossy(&body)).map_err(|e| fail(e.to_string()))?;
    Ok(Some(Arc::new(registry)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, secs: u64, n: u64) -> RateLimit {
        RateLimit { name: name.into(), window: Duration::from_secs(secs), limit: n }
    }

    #[test]
    fn the_guard_refuses_what_would_overflow_a_window_and_counts_nothing_then() {
        let mut g = RateGuard::new(vec![limit("ORDERS", 10, 3), limit("ORDERS", 86_400, 5)], 1_000_000);
        for _ in 0..3 {
            g.reserve(1_000_100, |_| 1).unwrap();
        }
        let r = g.reserve(1_000_200, |_| 1).unwrap_err();
        assert_eq!((r.limit.limit, r.used, r.cost), (3, 3, 1));
        assert_eq!(r.retry_after_ms, 9_800, "the 10 s window started at 1_000_000");
        // The next 10 s window takes two more; the day window then refuses.
        g.reserve(1_010_000, |_| 1).unwrap();
        g.reserve(1_010_001, |_| 1).unwrap();
        let r = g.reserve(1_010_002, |_| 1).unwrap_err();
        assert_eq!((r.limit.limit, r.used), (5, 5));
        // A request that was never sent gives its count back.
        let mut g = RateGuard::new(vec![limit("ORDERS", 10, 1)], 0);
        let c = g.reserve(1, |_| 1).unwrap();
        g.release(&c);
        g.reserve(2, |_| 1).unwrap();
        // Requests that count nothing always pass.
        g.reserve(3, |_| 0).unwrap();
    }

    #[test]
    fn the_venue_count_raises_ours_and_a_reported_reset_moves_the_window() {
        let mut g = RateGuard::new(vec![limit("ORDERS", 10, 10)], 0);
        g.reserve(1, |_| 1).unwrap();
        g.observe(2, vec![RateUsage { limit: limit("ORDERS", 10, 10), used: 9, resets_at_ms: None }]);
        assert_eq!(g.usage(3)[0].used, 9);
        assert!(g.reserve(4, |_| 2).is_err());
        // A limit only the venue reports is kept from then on.
        g.observe(5, vec![RateUsage { limit: limit("order.create", 1, 10), used: 10, resets_at_ms: Some(900) }]);
        let r = g.reserve(6, |l| u64::from(l.name == "order.create")).unwrap_err();
        assert_eq!((r.limit.name.as_str(), r.retry_after_ms), ("order.create", 894));
        g.reserve(901, |l| u64::from(l.name == "order.create")).unwrap();
    }
}
