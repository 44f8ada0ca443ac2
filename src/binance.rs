//! The Binance connection manager: routes each market to its endpoint, keeps a
//! pool per (market, route), shares one connection-attempt budget per venue host
//! among all of them, and merges every connection's events into one bounded
//! stream.
//!
//! This is the public-data client: it takes no credentials at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ferrofeed_engine::{
    AttemptBudget, BackoffConfig, ConnSnapshot, ConnectSpec, ConnectionConfig, EventReceiver, EventSender, Native,
    Overflow, Pool, PoolConfig, PoolError, RestClient, RestError, VenueRules, WeightBudget, queue,
};
pub use ferrofeed_venues::binance::registry::{Instrument, Registry, RegistryError, UnknownSymbol};
use ferrofeed_venues::binance::registry::{exchange_info_path, from_exchange_info, stream_symbol};
use ferrofeed_venues::binance::spec::market_of;
use ferrofeed_venues::binance::{BinanceRules, endpoints, route_of, venue_limits, ws_base};
pub use ferrofeed_venues::binance::{Environment, Market, Route};

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The pool refused (exhausted) or a connection has ended.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A stream names a symbol the instrument registry does not list; nothing was sent.
    #[error(transparent)]
    UnknownSymbol(#[from] UnknownSymbol),
    /// A REST call failed.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The venue's exchangeInfo could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct BinanceConfig {
    /// The deployment for every market without an override.
    pub environment: Environment,
    /// Per-market overrides (e.g. one market on the simulator).
    pub overrides: BTreeMap<Market, Environment>,
    /// Streams per connection (`None`: the venue's cap: 1024, options 200).
    pub max_streams_per_conn: Option<usize>,
    /// Connections per pool (`None`: unlimited).
    pub max_connections_per_pool: Option<usize>,
    /// Events buffered for the consumer across all connections.
    pub queue_capacity: usize,
    /// What happens when that buffer is full.
    pub overflow: Overflow,
    /// Reconnect schedule of every connection.
    pub backoff: BackoffConfig,
    /// Connection attempts per window per venue host (`None`: the venue's 300 per 5 min).
    pub attempt_limit: Option<(usize, Duration)>,
    /// Seed for reconnect jitter (`None`: from the OS).
    pub seed: Option<u64>,
    /// Rotate sockets after this long (before the venue's 24 h limit).
    pub rotate_after: Option<Duration>,
    /// Longest connect URL carrying streams (`/stream?streams=`); 0 subscribes
    /// everything with SUBSCRIBE messages.
    pub max_url_bytes: usize,
    /// REST request weight per window for every market (`None`: the venue's
    /// 6000 per minute on spot, 2400 on derivatives). Lower it when other
    /// programs share the IP's budget.
    pub rest_weight: Option<(u32, Duration)>,
}

impl Default for BinanceConfig {
    fn default() -> BinanceConfig {
        BinanceConfig {
            environment: Environment::Production,
            overrides: BTreeMap::new(),
            max_streams_per_conn: None,
            max_connections_per_pool: None,
            queue_capacity: 65_536,
            overflow: Overflow::Block,
            backoff: BackoffConfig::default(),
            attempt_limit: None,
            seed: None,
            rotate_after: Some(Duration::from_secs(23 * 3600 + 50 * 60)),
            max_url_bytes: 8000,
            rest_weight: None,
        }
    }
}

/// Rate-limit usage: seed 003's `RateLimitStats`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitStats {
    /// Per connection: messages sent in the current window, and the limit.
    pub messages: Vec<(u64, usize, usize)>,
    /// Per connection: streams held, and the cap.
    pub streams: Vec<(u64, usize, usize)>,
    /// Per venue host: connection attempts in the current window (when
    /// readable), and the limit.
    pub attempts: Vec<(String, Option<usize>, usize)>,
    /// Per market: REST weight spent in the current minute (when readable), and the limit.
    pub rest_weight: Vec<(Market, Option<u32>, u32)>,
}

type PoolKey = (Market, Option<Route>);

/// A public-data Binance client over every market.
#[derive(Debug)]
pub struct BinanceClient {
    cfg: BinanceConfig,
    transport: Native,
    events: EventSender,
    /// The market of each pool, in creation order: pool `k` numbers its
    /// connections from `(k + 1) << 32`, so a connection id names its market.
    pool_markets: Vec<Market>,
    budgets: HashMap<String, AttemptBudget>,
    rest: BTreeMap<Market, Arc<WeightBudget>>,
    http: RestClient,
    registries: BTreeMap<Market, Arc<Registry>>,
    pools: BTreeMap<PoolKey, Pool<Native>>,
}

impl BinanceClient {
    /// A client and the merged stream of its events.
    pub fn new(cfg: BinanceConfig) -> (BinanceClient, EventReceiver) {
        let (events, rx) = queue(cfg.queue_capacity, cfg.overflow);
        let client = BinanceClient {
            cfg,
            transport: Native::new(),
            events,
            pool_markets: Vec::new(),
            budgets: HashMap::new(),
            rest: BTreeMap::new(),
            http: RestClient::default(),
            registries: BTreeMap::new(),
            pools: BTreeMap::new(),
        };
        (client, rx)
    }

    /// The environment `market` runs in.
    pub fn environment(&self, market: Market) -> &Environment {
        self.cfg.overrides.get(&market).unwrap_or(&self.cfg.environment)
    }

    /// Whether any market runs outside production.
    pub fn is_sandbox(&self) -> bool {
        self.cfg.environment.is_sandbox() || self.cfg.overrides.values().any(Environment::is_sandbox)
    }

    /// REST base URL of `market` (snapshots, exchangeInfo).
    pub fn rest_url(&self, market: Market) -> String {
        endpoints(market, self.environment(market)).rest
    }

    /// The REST request-weight budget of `market` (6000 per minute on spot,
    /// 2400 on derivatives), shared by everything that calls its REST API
    /// (snapshot fetches), so a mass resync never draws a 429.
    pub fn rest_budget(&mut self, market: Market) -> Arc<WeightBudget> {
        let (limit, window) =
            self.cfg.rest_weight.unwrap_or((venue_limits(market).rest_weight_per_minute, Duration::from_secs(60)));
        // The venue counts a request when it arrives; we count it when we send
        // it. A window 2% longer keeps a request sent just inside the window
        // from arriving just outside it.
        let window = window + window / 50;
        self.rest.entry(market).or_insert_with(|| Arc::new(WeightBudget::new(limit, window))).clone()
    }

    fn pool(&mut self, key: PoolKey) -> &mut Pool<Native> {
        let (market, route) = key;
        if !self.pools.contains_key(&key) {
            let env = self.environment(market).clone();
            let base = ws_base(market, &env, route);
            let host = endpoints(market, &env).ws;
            let limits = venue_limits(market);
            let (max, window) = self.cfg.attempt_limit.unwrap_or((limits.max_attempts, limits.attempt_window));
            let budget = self.budgets.entry(host).or_insert_with(|| AttemptBudget::new(max, window)).clone();
            let mut cc = ConnectionConfig::new(ConnectSpec::new(base));
            cc.backoff = self.cfg.backoff.clone();
            cc.seed = self.cfg.seed;
            cc.attempts = Some(budget);
            cc.rotate_after = self.cfg.rotate_after;
            let name = match route {
                Some(r) => format!("binance:{market}:{}", r.path().trim_start_matches('/')),
                None => format!("binance:{market}"),
            };
            let pc = PoolConfig {
                name,
                connection: cc,
                max_streams_per_conn: self.cfg.max_streams_per_conn,
                max_connections: self.cfg.max_connections_per_pool,
            };
            let mut rules = BinanceRules::new(market);
            rules.max_url_bytes = self.cfg.max_url_bytes;
            let rules: Arc<dyn VenueRules> = Arc::new(rules);
            self.pool_markets.push(market);
            let ids = Arc::new(AtomicU64::new((self.pool_markets.len() as u64) << 32));
            let pool = Pool::new(self.transport.clone(), rules, pc, self.events.clone(), ids);
            self.pools.insert(key, pool);
        }
        self.pools.get_mut(&key).expect("inserted above")
    }

    fn split(market: Market, streams: &[String]) -> BTreeMap<PoolKey, Vec<String>> {
        let mut by: BTreeMap<PoolKey, Vec<String>> = BTreeMap::new();
        for s in streams {
            by.entry((market, route_of(market, s))).or_default().push(s.clone());
        }
        by
    }

    /// Loads (or refreshes) the instrument registry of `market` from its
    /// `exchangeInfo`, charged against the REST weight budget. Returns the
    /// number of instruments. Once loaded, subscriptions to symbols it does not
    /// list are refused before anything is sent.
    pub async fn load_instruments(&mut self, market: Market) -> Result<usize, ClientError> {
        let (path, weight) = exchange_info_path(market);
        let url = format!("{}{path}", self.rest_url(market).trim_end_matches('/'));
        let budget = self.rest_budget(market);
        let body = self.http.get(&url, weight, Some(&budget)).await?;
        let registry = from_exchange_info(market, &String::from_utf8_lossy(&body))?;
        let n = registry.len();
        self.registries.insert(market, Arc::new(registry));
        Ok(n)
    }

    /// Installs a registry built elsewhere (a cached exchangeInfo).
    pub fn set_instruments(&mut self, registry: Registry) {
        if let Some(market) = market_of(registry.market().market) {
            self.registries.insert(market, Arc::new(registry));
        }
    }

    /// The loaded registry of `market`.
    pub fn instruments(&self, market: Market) -> Option<Arc<Registry>> {
        self.registries.get(&market).cloned()
    }

    /// Subscribes streams of `market` (names as the venue spells them:
    /// `btcusdt@trade`), sharding them across connections. Repeats add references.
    pub async fn subscribe(&mut self, market: Market, streams: &[String]) -> Result<(), ClientError> {
        if let Some(registry) = self.registries.get(&market) {
            registry.check_streams(streams, stream_symbol)?;
        }
        for (key, list) in Self::split(market, streams) {
            self.pool(key).subscribe(&list).await?;
        }
        Ok(())
    }

    /// Drops one reference to each stream; unreferenced streams are unsubscribed.
    pub async fn unsubscribe(&mut self, market: Market, streams: &[String]) -> Result<(), ClientError> {
        for (key, list) in Self::split(market, streams) {
            if let Some(pool) = self.pools.get_mut(&key) {
                pool.unsubscribe(&list).await?;
            }
        }
        Ok(())
    }

    fn pools_of(&self, market: Option<Market>) -> impl Iterator<Item = &Pool<Native>> {
        self.pools.iter().filter(move |((m, _), _)| market.is_none_or(|x| x == *m)).map(|(_, p)| p)
    }

    /// The market a connection (an engine event's `conn`) belongs to.
    pub fn market_of_conn(&self, conn: u64) -> Option<Market> {
        let k = usize::try_from(conn >> 32).ok()?;
        self.pool_markets.get(k.checked_sub(1)?).copied()
    }

    /// Open connections in total.
    pub fn active_shards(&self) -> usize {
        self.pools_of(None).map(Pool::active_shards).sum()
    }

    /// Open connections of one market.
    pub fn active_shards_for(&self, market: Market) -> usize {
        self.pools_of(Some(market)).map(Pool::active_shards).sum()
    }

    /// Every subscribed stream, as `(market, stream)`.
    pub fn subscriptions(&self) -> Vec<(Market, String)> {
        self.pools.iter().flat_map(|((m, _), p)| p.subscriptions().into_iter().map(move |s| (*m, s))).collect()
    }

    /// Subscribed streams of one market.
    pub fn subscriptions_for(&self, market: Market) -> Vec<String> {
        self.pools_of(Some(market)).flat_map(Pool::subscriptions).collect()
    }

    /// Whether any connection is delivering.
    pub fn is_connected(&self) -> bool {
        self.pools_of(None).any(Pool::is_connected)
    }

    /// Whether any connection of `market` is delivering.
    pub fn is_connected_for(&self, market: Market) -> bool {
        self.pools_of(Some(market)).any(Pool::is_connected)
    }

    /// Closes every connection (code 1000) and forgets every subscription.
    pub async fn disconnect_all(&mut self) {
        for pool in self.pools.values_mut() {
            pool.disconnect_all().await;
        }
    }

    /// Closes the connections of one market.
    pub async fn disconnect_market(&mut self, market: Market) {
        for ((m, _), pool) in self.pools.iter_mut() {
            if *m == market {
                pool.disconnect_all().await;
            }
        }
    }

    /// The URL of every connection's current socket.
    pub fn urls(&self) -> Vec<(Market, String)> {
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

    /// Rate-limit usage.
    pub fn rate_limit_stats(&self) -> RateLimitStats {
        let mut stats =
            RateLimitStats { messages: Vec::new(), streams: Vec::new(), attempts: Vec::new(), rest_weight: Vec::new() };
        for (market, budget) in &self.rest {
            let limit = self.cfg.rest_weight.map_or(venue_limits(*market).rest_weight_per_minute, |(l, _)| l);
            stats.rest_weight.push((*market, budget.used(), limit));
        }
        for pool in self.pools_of(None) {
            for snap in pool.snapshots() {
                stats.messages.push((snap.id, snap.msgs_in_window, snap.msg_limit));
                stats.streams.push((snap.id, snap.streams.len(), pool.cap()));
            }
        }
        for (host, budget) in &self.budgets {
            let limit = self.cfg.attempt_limit.map_or(venue_limits(Market::Spot).max_attempts, |(n, _)| n);
            stats.attempts.push((host.clone(), budget.used(), limit));
        }
        stats
    }
}
