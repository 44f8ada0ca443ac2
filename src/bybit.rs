//! The Bybit v5 connection manager: a pool per category (spot, linear,
//! inverse, option: one public endpoint each) and one for the private stream,
//! one connection-attempt budget per WebSocket host (the venue allows 500 new
//! connections per 5 minutes per domain) shared by every pool on it, and every
//! connection's events merged into one bounded stream.
//!
//! All Bybit knowledge is in `ferrofeed_venues::bybit` (`BybitRules`); this is
//! the generic engine `Pool` wired to it, like `BinanceClient`. Decode the
//! data events with `ferrofeed_venues::bybit::normalize::decode`, passing the
//! category from [`BybitClient::category_of_conn`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ferrofeed_engine::{
    AttemptBudget, BackoffConfig, ConnSnapshot, ConnectSpec, ConnectionConfig, EventReceiver, EventSender, Native,
    Overflow, Pool, PoolConfig, PoolError, VenueRules, queue,
};
use ferrofeed_venues::auth::{Clock, Credentials};
use ferrofeed_venues::bybit::{BybitRules, private_url, public_url, venue_limits};
pub use ferrofeed_venues::bybit::{Category, Environment};

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum BybitError {
    /// The pool refused (exhausted) or a connection has ended.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// Private topics need credentials (an HMAC key).
    #[error("private topics need credentials: {0}")]
    Credentials(String),
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct BybitConfig {
    /// The deployment.
    pub environment: Environment,
    /// Per-category deployments that replace `environment` for that
    /// category's public pool (the simulator serves each category on its own
    /// port).
    pub overrides: HashMap<Category, Environment>,
    /// Topics per connection (`None`: what `BybitRules` sizes for the
    /// venue's per-connection limits).
    pub max_streams_per_conn: Option<usize>,
    /// Connections per pool (`None`: unlimited).
    pub max_connections_per_pool: Option<usize>,
    /// Events buffered for the consumer across all connections.
    pub queue_capacity: usize,
    /// What happens when that buffer is full.
    pub overflow: Overflow,
    /// Reconnect schedule of every connection.
    pub backoff: BackoffConfig,
    /// Connection attempts per window per WebSocket host (`None`: the venue's
    /// 500 per 5 min).
    pub attempt_limit: Option<(usize, Duration)>,
    /// Seed for reconnect jitter (`None`: from the OS).
    pub seed: Option<u64>,
    /// Rotate sockets after this long (`None`: never; Bybit states no
    /// connection lifetime).
    pub rotate_after: Option<Duration>,
}

impl Default for BybitConfig {
    fn default() -> BybitConfig {
        BybitConfig {
            environment: Environment::Production,
            overrides: HashMap::new(),
            max_streams_per_conn: None,
            max_connections_per_pool: None,
            queue_capacity: 65_536,
            overflow: Overflow::Block,
            backoff: BackoffConfig::default(),
            attempt_limit: None,
            seed: None,
            rotate_after: None,
        }
    }
}

/// A pool's key: a public category, or `None` for the private stream.
type PoolKey = Option<Category>;

/// A Bybit client over every category and, with credentials, the private
/// stream.
pub struct BybitClient {
    cfg: BybitConfig,
    credentials: Option<(Arc<Credentials>, Arc<Clock>)>,
    transport: Native,
    events: EventSender,
    /// The key of each pool, in creation order: pool `k` numbers its
    /// connections from `(k + 1) << 32`.
    pool_keys: Vec<PoolKey>,
    budgets: HashMap<String, AttemptBudget>,
    pools: BTreeMap<PoolKey, Pool<Native>>,
}

impl std::fmt::Debug for BybitClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BybitClient")
            .field("cfg", &self.cfg)
            .field("credentials", &self.credentials.as_ref().map(|(c, _)| c))
            .field("pools", &self.pool_keys)
            .finish()
    }
}

impl BybitClient {
    /// A public-data client and the merged stream of its events.
    pub fn new(cfg: BybitConfig) -> (BybitClient, EventReceiver) {
        let (events, rx) = queue(cfg.queue_capacity, cfg.overflow);
        let client = BybitClient {
            cfg,
            credentials: None,
            transport: Native::new(),
            events,
            pool_keys: Vec::new(),
            budgets: HashMap::new(),
            pools: BTreeMap::new(),
        };
        (client, rx)
    }

    /// A client that can also subscribe private topics, authenticating with
    /// `credentials` at the time `clock` gives on every connect.
    pub fn with_credentials(
        cfg: BybitConfig,
        credentials: Arc<Credentials>,
        clock: Arc<Clock>,
    ) -> (BybitClient, EventReceiver) {
        let (mut client, rx) = BybitClient::new(cfg);
        client.credentials = Some((credentials, clock));
        (client, rx)
    }

    /// Whether this is not production.
    pub fn is_sandbox(&self) -> bool {
        self.cfg.environment.is_sandbox()
    }

    fn rules(&self, key: PoolKey) -> Result<BybitRules, BybitError> {
        let mut rules = match key {
            Some(category) => BybitRules::public(category),
            None => {
                let (creds, clock) =
                    self.credentials.clone().ok_or_else(|| BybitError::Credentials("none given".into()))?;
                BybitRules::private(creds, clock).map_err(|e| BybitError::Credentials(e.to_string()))?
            }
        };
        if let Some(n) = self.cfg.max_streams_per_conn {
            rules.max_streams = n.min(rules.max_streams);
        }
        Ok(rules)
    }

    fn pool(&mut self, key: PoolKey) -> Result<&mut Pool<Native>, BybitError> {
        if !self.pools.contains_key(&key) {
            let env = key.and_then(|c| self.cfg.overrides.get(&c)).unwrap_or(&self.cfg.environment);
            let url = match key {
                Some(category) => public_url(category, env),
                None => private_url(env, None),
            };
            let host = url.split("/v5/").next().unwrap_or(&url).to_string();
            let limits = venue_limits(key.unwrap_or(Category::Linear));
            let (max, window) = self.cfg.attempt_limit.unwrap_or((limits.max_connections, limits.connection_window));
            let budget = self.budgets.entry(host).or_insert_with(|| AttemptBudget::new(max, window)).clone();
            let mut cc = ConnectionConfig::new(ConnectSpec::new(url));
            cc.backoff = self.cfg.backoff.clone();
            cc.seed = self.cfg.seed;
            cc.attempts = Some(budget);
            cc.rotate_after = self.cfg.rotate_after;
            let name = match key {
                Some(category) => format!("bybit:{category}"),
                None => "bybit:private".to_string(),
            };
            let pc = PoolConfig {
                name,
                connection: cc,
                max_streams_per_conn: self.cfg.max_streams_per_conn,
                max_connections: self.cfg.max_connections_per_pool,
            };
            let rules: Arc<dyn VenueRules> = Arc::new(self.rules(key)?);
            self.pool_keys.push(key);
            let ids = Arc::new(AtomicU64::new((self.pool_keys.len() as u64) << 32));
            let pool = Pool::new(self.transport.clone(), rules, pc, self.events.clone(), ids);
            self.pools.insert(key, pool);
        }
        Ok(self.pools.get_mut(&key).expect("inserted above"))
    }

    /// Subscribes public topics of `category` (`orderbook.50.BTCUSDT`,
    /// `publicTrade.BTCUSDT`, ...), sharding them across connections. Repeats
    /// add references.
    pub async fn subscribe(&mut self, category: Category, topics: &[String]) -> Result<(), BybitError> {
        self.pool(Some(category))?.subscribe(topics).await?;
        Ok(())
    }

    /// Subscribes private topics (`order`, `execution`, `position`,
    /// `wallet`, ...) on the authenticated connection.
    pub async fn subscribe_private(&mut self, topics: &[String]) -> Result<(), BybitError> {
        self.pool(None)?.subscribe(topics).await?;
        Ok(())
    }

    /// Drops one reference to each public topic; unreferenced topics are
    /// unsubscribed.
    pub async fn unsubscribe(&mut self, category: Category, topics: &[String]) -> Result<(), BybitError> {
        if let Some(pool) = self.pools.get_mut(&Some(category)) {
            pool.unsubscribe(topics).await?;
        }
        Ok(())
    }

    /// Asks the venue to restart public topics already subscribed: each is
    /// unsubscribed and subscribed again on its connection, references
    /// unchanged. Bybit answers with a fresh snapshot of an order-book topic,
    /// which is how [`BybitBooks`](crate::bybit_books::BybitBooks) recovers a
    /// book without touching the socket.
    pub async fn resubscribe(&mut self, category: Category, topics: &[String]) -> Result<(), BybitError> {
        if let Some(pool) = self.pools.get_mut(&Some(category)) {
            pool.resubscribe(topics).await?;
        }
        Ok(())
    }

    /// Drops one reference to each private topic.
    pub async fn unsubscribe_private(&mut self, topics: &[String]) -> Result<(), BybitError> {
        if let Some(pool) = self.pools.get_mut(&None) {
            pool.unsubscribe(topics).await?;
        }
        Ok(())
    }

    /// The pool a connection (an engine event's `conn`) belongs to: `Some(Some(category))`
    /// for a public one, `Some(None)` for the private one, `None` if unknown.
    pub fn category_of_conn(&self, conn: u64) -> Option<Option<Category>> {
        let k = usize::try_from(conn >> 32).ok()?;
        self.pool_keys.get(k.checked_sub(1)?).copied()
    }

    /// Open connections in total.
    pub fn active_shards(&self) -> usize {
        self.pools.values().map(Pool::active_shards).sum()
    }

    /// Every subscribed topic, as `(category or None for private, topic)`.
    pub fn subscriptions(&self) -> Vec<(Option<Category>, String)> {
        self.pools.iter().flat_map(|(k, p)| p.subscriptions().into_iter().map(move |s| (*k, s))).collect()
    }

    /// Whether any connection is delivering.
    pub fn is_connected(&self) -> bool {
        self.pools.values().any(Pool::is_connected)
    }

    /// Closes every connection (code 1000) and forgets every subscription.
    pub async fn disconnect_all(&mut self) {
        for pool in self.pools.values_mut() {
            pool.disconnect_all().await;
        }
    }

    /// The URL of every connection's current socket.
    pub fn urls(&self) -> Vec<(Option<Category>, String)> {
        self.pools.iter().flat_map(|(k, p)| p.urls().into_iter().map(move |u| (*k, u))).collect()
    }

    /// Every connection's snapshot.
    pub fn snapshots(&self) -> Vec<ConnSnapshot> {
        self.pools.values().flat_map(Pool::snapshots).collect()
    }

    /// Whether every subscription of every pool is confirmed or refused.
    pub fn is_settled(&self) -> bool {
        self.pools.values().all(Pool::is_settled)
    }

    /// Connection attempts per WebSocket host: used in the current window
    /// (when readable), and the limit.
    pub fn attempt_stats(&self) -> Vec<(String, Option<usize>, usize)> {
        let limit = self.cfg.attempt_limit.map_or(venue_limits(Category::Linear).max_connections, |(n, _)| n);
        let mut v: Vec<_> = self.budgets.iter().map(|(host, b)| (host.clone(), b.used(), limit)).collect();
        v.sort();
        v
    }

    /// Events buffered for the consumer now, and the buffer's capacity.
    pub fn queue_capacity(&self) -> usize {
        self.cfg.queue_capacity
    }

    /// The pools' topic assignment: `(pool name, topics per connection)`.
    pub fn assignment(&self) -> Vec<(String, Vec<Vec<String>>)> {
        self.pools.values().map(|p| (p.name().to_string(), p.assignment())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_topics_need_an_hmac_key_and_nothing_connects_until_asked() {
        let (mut c, _rx) = BybitClient::new(BybitConfig::default());
        assert!(matches!(c.subscribe_private(&["order".into()]).await, Err(BybitError::Credentials(_))));
        assert_eq!((c.active_shards(), c.is_connected(), c.is_sandbox()), (0, false, false));
        let ed = Arc::new(Credentials::ed25519_seed("k", [1; 32]).expect("key"));
        let (mut c, _rx) = BybitClient::with_credentials(BybitConfig::default(), ed, Arc::new(Clock::default()));
        assert!(matches!(c.subscribe_private(&["order".into()]).await, Err(BybitError::Credentials(_))));
        assert!(!format!("{c:?}").contains("\"k\""));
        assert_eq!(c.category_of_conn(1 << 32), None);
    }
}
