//! The connection manager for every venue: routes each market to its
//! endpoints, keeps a pool per (venue, market, route), shares one
//! connection-attempt budget per venue host and one REST weight budget per
//! market, and merges every connection's events into one bounded stream.
//!
//! Everything venue-specific comes from the venue's [`VenueSpec`] in the
//! registry; this file names no venue. It takes no credentials: private
//! sessions are [`crate::session`].
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrofeed::client::{Client, ClientConfig};
//! use ferrofeed::venues::{binance, bybit};
//! use futures_util::StreamExt;
//! let (mut client, mut events) = Client::new(ClientConfig::default());
//! client.subscribe(binance::spec::SPOT, &["btcusdt@trade".into()]).await?;
//! client.subscribe(bybit::spec::LINEAR, &["publicTrade.BTCUSDT".into()]).await?;
//! while let Some(event) = events.next().await {
//!     println!("{:?} {event:?}", client.market_of_conn(event.conn));
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ferrofeed_engine::{
    AttemptBudget, BackoffConfig, ConnSnapshot, ConnectSpec, ConnectionConfig, EventReceiver, EventSender, Native,
    Overflow, Pool, PoolConfig, PoolError, RestClient, RestError, WeightBudget, queue_bounded,
};
pub use ferrofeed_venues::instruments::{Instrument, Registry, RegistryError, UnknownSymbol};
use ferrofeed_venues::registry;
pub use ferrofeed_venues::seam::{Channel, MarketId, PoolOptions, Route, SeamError};
use ferrofeed_venues::seam::{PoolPlan, VenueSpec};
pub use ferrofeed_venues::{Endpoints, Environment};

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The venue, market or channel is not known, or not served.
    #[error(transparent)]
    Seam(#[from] SeamError),
    /// The pool refused (exhausted) or a connection has ended.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A stream names a symbol the instrument registry does not list; nothing was sent.
    #[error(transparent)]
    UnknownSymbol(#[from] UnknownSymbol),
    /// A REST call failed.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The venue's instrument list could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// How long sockets live before they are rotated (make-before-break).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// Before the venue's stated socket lifetime (Binance: after 23 h 50
    /// min); never where the venue states none.
    #[default]
    VenueDefault,
    /// Never.
    Never,
    /// After this long, on every venue.
    After(Duration),
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The deployment of every market without an override.
    pub environment: Environment,
    /// Per-market deployments (one market on the simulator, another on a
    /// testnet).
    pub overrides: BTreeMap<MarketId, Environment>,
    /// Streams per connection (`None`: the venue's cap).
    pub max_streams_per_conn: Option<usize>,
    /// Connections per pool (`None`: unlimited).
    pub max_connections_per_pool: Option<usize>,
    /// Events buffered for the consumer across all connections…
    pub queue_capacity: usize,
    /// …and their bytes (frame text plus a fixed overhead per event;
    /// default 16 MiB), whichever bound is reached first.
    pub queue_bytes: usize,
    /// What happens when that buffer is full.
    pub overflow: Overflow,
    /// Reconnect schedule of every connection.
    pub backoff: BackoffConfig,
    /// Connection attempts per window per venue host (`None`: each venue's).
    pub attempt_limit: Option<(usize, Duration)>,
    /// Seed for reconnect jitter (`None`: from the OS).
    pub seed: Option<u64>,
    /// Socket rotation.
    pub rotation: Rotation,
    /// Longest connect URL carrying streams, where the venue puts streams
    /// in the URL (`None`: the venue's default; 0: subscribe everything with
    /// messages).
    pub max_url_bytes: Option<usize>,
    /// REST request weight per window for every market (`None`: each
    /// venue's). Lower it when other programs share the IP's budget.
    pub rest_weight: Option<(u32, Duration)>,
    /// Connections decode each data frame into model events in the same
    /// pass that classifies it, and the events travel with the frame
    /// ([`ferrofeed_engine::Decoded`]). [`crate::feed::Feed`] always sets it;
    /// default off (raw frames only).
    pub decode: bool,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            environment: Environment::Production,
            overrides: BTreeMap::new(),
            max_streams_per_conn: None,
            max_connections_per_pool: None,
            queue_capacity: 65_536,
            queue_bytes: ferrofeed_engine::DEFAULT_QUEUE_BYTES,
            overflow: Overflow::Block,
            backoff: BackoffConfig::default(),
            attempt_limit: None,
            seed: None,
            rotation: Rotation::VenueDefault,
            max_url_bytes: None,
            rest_weight: None,
            decode: false,
        }
    }
}

/// Rate-limit usage.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitStats {
    /// Per connection: messages sent in the current window, and the limit.
    pub messages: Vec<(u64, usize, usize)>,
    /// Per connection: streams held, and the cap.
    pub streams: Vec<(u64, usize, usize)>,
    /// Per venue host: its venue, connection attempts in the current window
    /// (when readable), and the limit.
    pub attempts: Vec<(&'static str, String, Option<usize>, usize)>,
    /// Per market: REST weight spent in the current window (when readable), and the limit.
    pub rest_weight: Vec<(MarketId, Option<u32>, u32)>,
}

type PoolKey = (MarketId, Route);

/// A public-data client over every registered venue and market.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    transport: Native,
    events: EventSender,
    /// The key of each pool, in creation order: pool `k` numbers its
    /// connections from `(k + 1) << 32`, so a connection id names its pool.
    pool_keys: Vec<PoolKey>,
    /// Per venue host: its venue, the budget and its limit.
    budgets: BTreeMap<String, (&'static str, AttemptBudget, usize)>,
    rest: BTreeMap<MarketId, (Arc<WeightBudget>, u32)>,
    http: RestClient,
    registries: HashMap<MarketId, Arc<Registry>>,
    pools: BTreeMap<PoolKey, Pool<Native>>,
}

impl Client {
    /// A client and the merged stream of its events.
    pub fn new(cfg: ClientConfig) -> (Client, EventReceiver) {
        let (events, rx) = queue_bounded(cfg.queue_capacity, cfg.queue_bytes, cfg.overflow);
        let client = Client {
            cfg,
            transport: Native::new(),
            events,
            pool_keys: Vec::new(),
            budgets: BTreeMap::new(),
            rest: BTreeMap::new(),
            http: RestClient::default(),
            registries: HashMap::new(),
            pools: BTreeMap::new(),
        };
        (client, rx)
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The environment `market` runs in.
    pub fn environment(&self, market: MarketId) -> &Environment {
        self.cfg.overrides.get(&market).unwrap_or(&self.cfg.environment)
    }

    /// Whether any market runs outside production.
    pub fn is_sandbox(&self) -> bool {
        self.cfg.environment.is_sandbox() || self.cfg.overrides.values().any(Environment::is_sandbox)
    }

    /// The venue of `market`, if registered and serving it.
    pub fn spec(market: MarketId) -> Result<&'static dyn VenueSpec, SeamError> {
        registry::spec(market)
    }

    /// REST base URL of `market` (snapshots, instrument lists).
    pub fn rest_url(&self, market: MarketId) -> Result<String, SeamError> {
        Ok(Self::spec(market)?.endpoints(market.market, self.environment(market)).rest)
    }

    /// The venue's stream name of a typed channel.
    pub fn stream_name(market: MarketId, channel: &Channel, symbol: &str) -> Result<String, SeamError> {
        Self::spec(market)?.stream(market.market, channel, symbol)
    }

    /// The REST request-weight budget of `market`, shared by everything that
    /// calls its REST API (snapshot fetches, instrument lists), so a mass
    /// resync never draws a 429. `None` where the venue weighs no REST call.
    pub fn rest_budget(&mut self, market: MarketId) -> Result<Option<Arc<WeightBudget>>, SeamError> {
        if let Some((b, _)) = self.rest.get(&market) {
            return Ok(Some(b.clone()));
        }
        let Some((limit, window)) = self.cfg.rest_weight.or(Self::spec(market)?.host_limits(market.market).rest_weight)
        else {
            return Ok(None);
        };
        // The venue counts a request when it arrives; we count it when we send
        // it. A window 2% longer keeps a request sent just inside the window
        // from arriving just outside it.
        let window = window + window / 50;
        let budget = Arc::new(WeightBudget::new(limit, window));
        self.rest.insert(market, (budget.clone(), limit));
        Ok(Some(budget))
    }

    fn pool(&mut self, key: PoolKey) -> Result<&mut Pool<Native>, ClientError> {
        if !self.pools.contains_key(&key) {
            let (market, route) = key;
            let spec = Self::spec(market)?;
            let env = self.environment(market).clone();
            let opts = PoolOptions {
                max_streams_per_conn: self.cfg.max_streams_per_conn,
                max_url_bytes: self.cfg.max_url_bytes,
            };
            let PoolPlan { name, url, host, rules, rotate_after } = spec.pool(market.market, route, &env, &opts);
            let (max, window) = self.cfg.attempt_limit.unwrap_or(spec.host_limits(market.market).attempts);
            let venue = market.venue_name();
            let budget =
                self.budgets.entry(host).or_insert_with(|| (venue, AttemptBudget::new(max, window), max)).1.clone();
            let mut cc = ConnectionConfig::new(ConnectSpec::new(url));
            cc.backoff = self.cfg.backoff.clone();
            cc.seed = self.cfg.seed;
            cc.attempts = Some(budget);
            if self.cfg.decode {
                cc.reader = Some(ferrofeed_venues::seam::reader_factory(spec, market.market, rules.clone()));
            }
            cc.rotate_after = match self.cfg.rotation {
                Rotation::VenueDefault => rotate_after,
                Rotation::Never => None,
                Rotation::After(d) => Some(d),
            };
            let pc = PoolConfig {
                name,
                connection: cc,
                max_streams_per_conn: self.cfg.max_streams_per_conn,
                max_connections: self.cfg.max_connections_per_pool,
            };
            self.pool_keys.push(key);
            let ids = Arc::new(AtomicU64::new((self.pool_keys.len() as u64) << 32));
            let pool = Pool::new(self.transport.clone(), rules, pc, self.events.clone(), ids);
            self.pools.insert(key, pool);
        }
        self.pools.get_mut(&key).ok_or(ClientError::Pool(PoolError::Closed))
    }

    fn split(market: MarketId, streams: &[String]) -> Result<BTreeMap<PoolKey, Vec<String>>, SeamError> {
        let spec = Self::spec(market)?;
        let mut by: BTreeMap<PoolKey, Vec<String>> = BTreeMap::new();
        for s in streams {
            by.entry((market, spec.route(market.market, s))).or_default().push(s.clone());
        }
        Ok(by)
    }

    /// Loads (or refreshes) the instrument registry of `market` from the
    /// venue's instrument list, charged against the REST weight budget.
    /// Returns the number of instruments. Once loaded, subscriptions to
    /// symbols it does not list are refused before anything is sent.
    pub async fn load_instruments(&mut self, market: impl Into<MarketId>) -> Result<usize, ClientError> {
        let market = market.into();
        let spec = Self::spec(market)?;
        let Some((path, weight)) = spec.instruments_request(market.market) else {
            return Err(RegistryError::Unsupported { market }.into());
        };
        let url = format!("{}{path}", self.rest_url(market)?.trim_end_matches('/'));
        let budget = self.rest_budget(market)?;
        let body = self.http.get(&url, weight, budget.as_ref()).await?;
        let registry = spec.parse_instruments(market.market, &String::from_utf8_lossy(&body))?;
        let n = registry.len();
        self.registries.insert(market, Arc::new(registry));
        Ok(n)
    }

    /// Installs a registry built elsewhere (a cached instrument list).
    pub fn set_instruments(&mut self, registry: Registry) {
        self.registries.insert(registry.market(), Arc::new(registry));
    }

    /// The loaded registry of `market`.
    pub fn instruments(&self, market: impl Into<MarketId>) -> Option<Arc<Registry>> {
        self.registries.get(&market.into()).cloned()
    }

    /// Subscribes streams of `market` (names as the venue spells them:
    /// `btcusdt@trade`, `publicTrade.BTCUSDT`), sharding them across
    /// connections. Repeats add references.
    pub async fn subscribe(&mut self, market: impl Into<MarketId>, streams: &[String]) -> Result<(), ClientError> {
        let market = market.into();
        let spec = Self::spec(market)?;
        if let Some(registry) = self.registries.get(&market) {
            registry.check_streams(streams, |s| spec.symbol_of(market.market, s))?;
        }
        for (key, list) in Self::split(market, streams)? {
            self.pool(key)?.subscribe(&list).await?;
        }
        Ok(())
    }

    /// Drops one reference to each stream; unreferenced streams are unsubscribed.
    pub async fn unsubscribe(&mut self, market: impl Into<MarketId>, streams: &[String]) -> Result<(), ClientError> {
        for (key, list) in Self::split(market.into(), streams)? {
            if let Some(pool) = self.pools.get_mut(&key) {
                pool.unsubscribe(&list).await?;
            }
        }
        Ok(())
    }

    /// Asks the venue to restart streams already subscribed: each is
    /// unsubscribed and subscribed again on its connection, references
    /// unchanged (a venue that sends book snapshots on the stream answers
    /// with a fresh one).
    pub async fn resubscribe(&mut self, market: impl Into<MarketId>, streams: &[String]) -> Result<(), ClientError> {
        for (key, list) in Self::split(market.into(), streams)? {
            if let Some(pool) = self.pools.get_mut(&key) {
                pool.resubscribe(&list).await?;
            }
        }
        Ok(())
    }

    /// [`Client::resubscribe`] without waiting: `Err(PoolError::Busy)` when
    /// a connection's command channel is full now (ask again later).
    pub fn try_resubscribe(&mut self, market: MarketId, streams: &[String]) -> Result<(), ClientError> {
        for (key, list) in Self::split(market, streams)? {
            if let Some(pool) = self.pools.get_mut(&key) {
                pool.try_resubscribe(&list)?;
            }
        }
        Ok(())
    }

    fn pools_of(&self, market: Option<MarketId>) -> impl Iterator<Item = &Pool<Native>> {
        self.pools.iter().filter(move |((m, _), _)| market.is_none_or(|x| x == *m)).map(|(_, p)| p)
    }

    /// The market and route a connection (an engine event's `conn`) belongs to.
    pub fn pool_of_conn(&self, conn: u64) -> Option<(MarketId, Route)> {
        let k = usize::try_from(conn >> 32).ok()?;
        self.pool_keys.get(k.checked_sub(1)?).copied()
    }

    /// The market a connection (an engine event's `conn`) belongs to.
    pub fn market_of_conn(&self, conn: u64) -> Option<MarketId> {
        self.pool_of_conn(conn).map(|(m, _)| m)
    }

    /// Markets with a pool, in order.
    pub fn markets(&self) -> Vec<MarketId> {
        let mut v: Vec<MarketId> = self.pools.keys().map(|(m, _)| *m).collect();
        v.dedup();
        v
    }

    /// Open connections in total.
    pub fn active_shards(&self) -> usize {
        self.pools_of(None).map(Pool::active_shards).sum()
    }

    /// Open connections of one market.
    pub fn active_shards_for(&self, market: impl Into<MarketId>) -> usize {
        self.pools_of(Some(market.into())).map(Pool::active_shards).sum()
    }

    /// Every subscribed stream, as `(market, stream)`.
    pub fn subscriptions(&self) -> Vec<(MarketId, String)> {
        self.pools.iter().flat_map(|((m, _), p)| p.subscriptions().into_iter().map(move |s| (*m, s))).collect()
    }

    /// Subscribed streams of one market.
    pub fn subscriptions_for(&self, market: impl Into<MarketId>) -> Vec<String> {
        self.pools_of(Some(market.into())).flat_map(Pool::subscriptions).collect()
    }

    /// Whether any connection is delivering.
    pub fn is_connected(&self) -> bool {
        self.pools_of(None).any(Pool::is_connected)
    }

    /// Whether any connection of `market` is delivering.
    pub fn is_connected_for(&self, market: impl Into<MarketId>) -> bool {
        self.pools_of(Some(market.into())).any(Pool::is_connected)
    }

    /// Closes every connection (code 1000) and forgets every subscription.
    pub async fn disconnect_all(&mut self) {
        for pool in self.pools.values_mut() {
            pool.disconnect_all().await;
        }
    }

    /// Closes the connections of one market.
    pub async fn disconnect_market(&mut self, market: impl Into<MarketId>) {
        let market = market.into();
        for ((m, _), pool) in self.pools.iter_mut() {
            if *m == market {
                pool.disconnect_all().await;
            }
        }
    }

    /// The URL of every connection's current socket.
    pub fn urls(&self) -> Vec<(MarketId, String)> {
        self.pools.iter().flat_map(|((m, _), p)| p.urls().into_iter().map(move |u| (*m, u))).collect()
    }

    /// Every connection's snapshot.
    pub fn snapshots(&self) -> Vec<ConnSnapshot> {
        self.pools_of(None).flat_map(Pool::snapshots).collect()
    }

    /// Whether every subscription of every pool is confirmed or refused.
    pub fn is_settled(&self) -> bool {
        self.pools_of(None).all(Pool::is_settled)
    }

    /// The pools' stream assignment: `(pool name, streams per connection)`.
    pub fn assignment(&self) -> Vec<(String, Vec<Vec<String>>)> {
        self.pools_of(None).map(|p| (p.name().to_string(), p.assignment())).collect()
    }

    /// Bytes the merged queue holds for the consumer at most.
    pub fn queue_bytes(&self) -> usize {
        self.cfg.queue_bytes
    }

    /// Events the merged queue holds for the consumer at most.
    pub fn queue_capacity(&self) -> usize {
        self.cfg.queue_capacity
    }

    /// Rate-limit usage.
    pub fn rate_limit_stats(&self) -> RateLimitStats {
        let mut stats =
            RateLimitStats { messages: Vec::new(), streams: Vec::new(), attempts: Vec::new(), rest_weight: Vec::new() };
        for (market, (budget, limit)) in &self.rest {
            stats.rest_weight.push((*market, budget.used(), *limit));
        }
        for pool in self.pools_of(None) {
            for snap in pool.snapshots() {
                stats.messages.push((snap.id, snap.msgs_in_window, snap.msg_limit));
                stats.streams.push((snap.id, snap.streams.len(), pool.cap()));
            }
        }
        for (host, (venue, budget, limit)) in &self.budgets {
            stats.attempts.push((venue, host.clone(), budget.used(), *limit));
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofeed_venues::{binance, bybit};

    #[tokio::test]
    async fn nothing_connects_until_asked_and_unknown_names_are_refused() {
        let (mut c, _rx) = Client::new(ClientConfig::default());
        assert_eq!((c.active_shards(), c.is_connected(), c.is_sandbox()), (0, false, false));
        assert_eq!(c.market_of_conn(1 << 32), None);
        assert!(matches!(
            Client::stream_name(bybit::spec::SPOT, &Channel::AggTrades, "BTCUSDT"),
            Err(SeamError::Unsupported { .. })
        ));
        assert_eq!(
            Client::stream_name(binance::spec::USDM, &Channel::TopOfBook, "BTCUSDT").as_deref(),
            Ok("btcusdt@bookTicker")
        );
        let bad = MarketId::new(ferrofeed_model::event::Venue::Okx, ferrofeed_model::event::MarketType::Spot);
        assert!(matches!(c.subscribe(bad, &["x".into()]).await, Err(ClientError::Seam(SeamError::UnknownVenue(_)))));
        let wrong = MarketId::new(ferrofeed_model::event::Venue::Bybit, ferrofeed_model::event::MarketType::UsdM);
        assert!(matches!(c.subscribe(wrong, &["x".into()]).await, Err(ClientError::Seam(_))));
        assert!(c.rest_budget(bybit::spec::LINEAR).unwrap().is_none());
        assert!(c.rest_budget(binance::spec::SPOT).unwrap().is_some());
    }
}
