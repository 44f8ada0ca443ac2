//! # ferrofeed-sim
//!
//! A loopback exchange simulator that speaks Binance's real WebSocket and REST
//! wire protocols for spot, USDⓈ-M, COIN-M and options (and, per market,
//! Bybit v5 public WebSocket for spot, linear, inverse and option). It is the offline
//! default behind `ferrofeed demo`, the server every integration test talks
//! to, the fault injector and the load generator.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use ferrofeed_sim::{MarketKind, Sim, SimConfig};
//! let sim = Sim::start(SimConfig::all_markets()).await?;
//! let spot = sim.market(MarketKind::Spot).expect("configured");
//! println!("connect to {}/ws/btcusdt@trade", spot.ws_url());
//! spot.kill_all(ferrofeed_sim::KillMode::Reset); // fault injection
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! A venue-neutral core and one folder per venue. Core modules never name a
//! venue folder (the `layering` tests check it); each folder implements
//! `dialect::Dialect`, and the registry in this file maps a [`Venue`] to it,
//! one line per venue.
//!
//! Core:
//! - `config`: markets, symbols, limits and timings (every venue duration is configurable).
//! - `dialect`: the `Dialect` trait, the seam between the core and a venue.
//! - `market`: the seeded generator with one true book per symbol, its history and candles;
//!   the venue names its streams and writes the payloads (`Encode`).
//! - `hub`: one market's shared state: connections, subscriptions, timer topics, faults,
//!   counters, and the venue's own state.
//! - `server`: HTTP on each market's port: upgrades, REST (both through the dialect), `/admin`.
//! - `conn`: one WebSocket connection's reader and writer.
//! - `ws`: the server side of RFC 6455 (handshake key, frame codec).
//! - `admin`: the admin API; `load`: load mode (pre-encoded sequenced streams and diff books).
//! - `faults`: the chaos faults (floods of unsubscribed streams and malformed frames,
//!   oversized frames, id resets); the dialect writes the frames.
//! - `auth`: signature verification (HMAC-SHA256, Ed25519).
//! - `account`: accounts, balances, positions, orders, listenKeys, event counters.
//! - `orders`: fill accounting (balances, one-way positions, fees).
//!
//! Venues:
//! - `binance`: stream names and payloads (`topic`, `encode`), paths (`paths`), control
//!   messages (`control`), REST (`rest`), listenKey, listenToken and signed endpoints
//!   (`private`, `token`, `orders`, `user`, `auth`), the spot and USD-M WebSocket APIs
//!   (`wsapi`, `trade`), the `ORDERS` limits (`rate`), its per-market state (`state`), the
//!   load forms (`load`).
//! - `bybit`: Bybit v5 public WebSocket (`public`: ops, acks, errors, topic limits; `book`,
//!   `ticker`, `kline`, `option`, `encode`: `publicTrade`, `orderbook`, `tickers`, `kline`,
//!   `allLiquidation`) and the private side on the linear port (`private`: `auth`,
//!   `order`/`execution`/`position`/`wallet`; `order`: `POST /v5/order/create`).
//!
//! # Independence
//!
//! This crate shares no wire types or encoders with the ferrofeed client. Both
//! are checked against the real payloads in `shared/fixtures`.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

mod account;
mod admin;
mod auth;
mod binance;
mod bybit;
mod config;
mod conn;
mod deribit;
mod dialect;
mod faults;
mod hub;
mod load;
mod market;
mod orders;
mod server;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use account::{AccountView, BalanceView, ListenKeyView, OrderView, PositionView, SubscriptionView};
pub use bybit::private::{BybitOp, BybitPrivateConn};
pub use config::{
    AccountSpec, BybitCategory, DeribitKind, DeribitLimits, Limits, LoadConfig, MarketConfig, MarketKind,
    OrderRateLimit, SimConfig, SymbolSpec, TEST_API_KEY, TEST_ED25519_SEED, TEST_HMAC_SECRET, Timing, Venue,
};
pub use deribit::DeribitStats;
pub use faults::{MAX_FLOOD_FRAMES, MAX_OVERSIZED_BYTES};
pub use hub::{ClosedConn, Counters, IdReset, KillMode, MAX_RESETS_KEPT, StreamStats};

use dialect::Dialect;
use hub::Hub;

/// The registry: which dialect speaks each venue. The only place that names
/// both the core and the venue folders; a new venue is one folder and one
/// line here.
fn dialect(venue: Venue) -> &'static dyn Dialect {
    match venue {
        Venue::Binance => &binance::Binance,
        Venue::Bybit(category) => bybit::dialect(category),
        Venue::Deribit(kind) => deribit::dialect(kind),
    }
}

/// A running simulator: one HTTP/WebSocket server per market on loopback.
#[derive(Debug)]
pub struct Sim {
    markets: Vec<MarketHandle>,
    tasks: Vec<JoinHandle<()>>,
}

/// Control and ground truth for one simulated market.
#[derive(Debug, Clone)]
pub struct MarketHandle {
    hub: Arc<Hub>,
}

/// The true book of a symbol.
#[derive(Debug, Clone, Serialize)]
pub struct BookView {
    /// Symbol, upper case.
    pub symbol: String,
    /// The update id of the last change applied.
    pub last_update_id: u64,
    /// Bids, best first, as decimal strings `[price, qty]`.
    pub bids: Vec<[String; 2]>,
    /// Asks, best first.
    pub asks: Vec<[String; 2]>,
}

/// Ground truth of one market, as served by `GET /admin/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// `spot`, `usdm`, `coinm`, `options`, `bybit-spot`, `bybit-linear`,
    /// `bybit-inverse` or `bybit-option`.
    pub market: String,
    /// Connections currently open.
    pub connections_open: usize,
    /// Event counters.
    pub counters: Counters,
    /// Per stream: messages produced and the last id.
    pub streams: std::collections::BTreeMap<String, StreamStats>,
    /// The last connections that ended (at most 1000).
    pub closed_connections: Vec<ClosedConn>,
    /// Deribit markets: heartbeats, auth, credits and chain breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deribit: Option<DeribitStats>,
}

/// One open connection, as served by `GET /admin/connections`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnInfo {
    /// Connection id (use with `?conn=`).
    pub id: u64,
    /// The path and query it connected with.
    pub path: String,
    /// Subscribed streams in subscription order.
    pub subscriptions: Vec<String>,
    /// Whether payloads are wrapped as `{"stream","data"}`.
    pub combined: bool,
    /// Frames and bytes written to it.
    pub frames_sent: u64,
    /// Bytes written to it.
    pub bytes_sent: u64,
    /// Connection start, venue ms.
    pub opened_ms: u64,
    /// Whether a stall fault is active on it.
    pub stalled: bool,
}

impl Sim {
    /// Binds every market and starts serving.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Sim> {
        let mut markets = Vec::new();
        let mut tasks = Vec::new();
        for (i, mc) in cfg.markets.into_iter().enumerate() {
            let listener = TcpListener::bind(SocketAddr::new(cfg.bind, mc.port.unwrap_or(0))).await?;
            let dialect = dialect(mc.venue);
            let hub = Hub::new(mc, cfg.seed.wrapping_add(i as u64 * 7919), listener.local_addr()?, dialect);
            let handle = MarketHandle { hub: hub.clone() };
            tasks.push(tokio::spawn(server::serve(listener, hub.clone())));
            tasks.push(tokio::spawn(generate(hub.clone())));
            if let Some(load) = hub.cfg.load.clone() {
                for form in hub.load.clone() {
                    tasks.push(tokio::spawn(load::run(hub.clone(), load.clone(), form)));
                }
            }
            markets.push(handle);
        }
        Ok(Sim { markets, tasks })
    }

    /// The handle of a Binance market, if it is configured.
    pub fn market(&self, kind: MarketKind) -> Option<&MarketHandle> {
        self.markets.iter().find(|m| m.kind() == kind && m.config().venue == Venue::Binance)
    }

    /// The handle of a Bybit market, if it is configured.
    pub fn bybit(&self, category: BybitCategory) -> Option<&MarketHandle> {
        self.markets.iter().find(|m| m.config().venue == Venue::Bybit(category))
    }

    /// The handle of a Deribit market, if it is configured.
    pub fn deribit(&self, kind: DeribitKind) -> Option<&MarketHandle> {
        self.markets.iter().find(|m| m.config().venue == Venue::Deribit(kind))
    }

    /// Every market, in configuration order.
    pub fn markets(&self) -> &[MarketHandle] {
        &self.markets
    }

    /// Stops serving: listeners close and generator tasks end.
    pub async fn shutdown(self) {
        for m in &self.markets {
            let _ = m.hub.shutdown.send(true);
            m.kill_all(KillMode::Close);
        }
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

async fn generate(hub: Arc<Hub>) {
    let mut stop = hub.shutdown.subscribe();
    let tick = hub.cfg.timing.tick.mul_f64(hub.cfg.timing.scale.clamp(0.01, 100.0)).max(Duration::from_millis(1));
    let mut iv = tokio::time::interval(tick);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = iv.tick() => {}
            _ = stop.changed() => return,
        }
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(last).as_millis() as u64;
        if elapsed == 0 {
            continue;
        }
        last = now;
        hub.step(elapsed);
    }
}

impl MarketHandle {
    /// Which market this is.
    pub fn kind(&self) -> MarketKind {
        self.hub.kind()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.hub.addr
    }

    /// `ws://127.0.0.1:PORT`, the base for `/ws`, `/stream` (and routes on USD-M/options),
    /// or for Bybit's `/v5/public/<category>`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr())
    }

    /// The market's name in stats: `spot`, `usdm`, `coinm`, `options`, or
    /// `bybit-spot`, `bybit-linear`, `bybit-inverse`, `bybit-option`.
    pub fn name(&self) -> String {
        match (self.hub.cfg.bybit_category(), self.hub.cfg.deribit_kind()) {
            (Some(c), _) => format!("bybit-{}", c.name()),
            (_, Some(k)) => format!("deribit-{}", k.name()),
            _ => self.kind().name().to_string(),
        }
    }

    /// Deribit: the WebSocket URL, `ws://127.0.0.1:PORT/ws/api/v2`.
    pub fn deribit_url(&self) -> Option<String> {
        self.hub.cfg.deribit_kind().map(|_| format!("ws://{}{}", self.addr(), deribit::PATH))
    }

    /// Deribit: the next change of every `book.*` channel of `symbol` (every
    /// symbol when `None`) carries a `prev_change_id` the channel never sent,
    /// once. Returns how many channels are affected.
    pub fn deribit_break_chain(&self, symbol: Option<&str>) -> usize {
        deribit::break_chain(&self.hub, symbol)
    }

    /// Deribit: the next request of `conn` (every open connection when
    /// `None`) finds no credits: `10028 too_many_requests`, then the session
    /// closes. Returns how many connections.
    pub fn deribit_exhaust_credits(&self, conn: Option<u64>) -> usize {
        deribit::exhaust(&self.hub, conn)
    }

    /// Deribit: heartbeat, auth, credit and chain-break counters.
    pub fn deribit_stats(&self) -> Option<DeribitStats> {
        deribit::stats(&self.hub)
    }

    /// Bybit: the full public WebSocket URL, `ws://127.0.0.1:PORT/v5/public/<category>`.
    pub fn bybit_url(&self) -> Option<String> {
        self.hub.cfg.bybit_category().map(|c| format!("ws://{}{}", self.addr(), c.path()))
    }

    /// Bybit: makes the next message of every order-book topic of `symbol`
    /// (every symbol when `None`) a restart snapshot with `u = 1`, as after a
    /// service restart. Returns how many topics are affected.
    pub fn bybit_restart(&self, symbol: Option<&str>) -> usize {
        bybit::public::restart(&self.hub, symbol)
    }

    /// Bybit linear markets: the private WebSocket URL, `ws://127.0.0.1:PORT/v5/private`.
    pub fn bybit_private_url(&self) -> Option<String> {
        (self.hub.cfg.bybit_category() == Some(BybitCategory::Linear))
            .then(|| format!("ws://{}{}", self.addr(), bybit::private::PATH))
    }

    /// Every Bybit private connection still remembered (open ones and the
    /// last closed ones), by id: the ops it sent in order (with the answer's
    /// success), its API key once authenticated, and its topics.
    pub fn bybit_private_conns(&self) -> Vec<BybitPrivateConn> {
        bybit::private::conns(&self.hub)
    }

    /// `http://127.0.0.1:PORT`, the base for REST and `/admin`.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &MarketConfig {
        &self.hub.cfg
    }

    /// Ground truth and counters.
    pub fn stats(&self) -> Stats {
        let deribit = deribit::stats(&self.hub);
        let st = self.hub.lock();
        Stats {
            market: self.name(),
            connections_open: st.conns.len(),
            counters: st.counters.clone(),
            streams: st.streams.clone(),
            closed_connections: st.closed.iter().cloned().collect(),
            deribit,
        }
    }

    /// Ground truth for one stream.
    pub fn stream_stats(&self, stream: &str) -> Option<StreamStats> {
        self.hub.lock().streams.get(stream).cloned()
    }

    /// Open connections with their subscriptions.
    pub fn connections(&self) -> Vec<ConnInfo> {
        let st = self.hub.lock();
        let now = self.hub.since_epoch_ms();
        let mut v: Vec<ConnInfo> = st
            .conns
            .iter()
            .map(|(id, c)| ConnInfo {
                id: *id,
                path: c.path.clone(),
                subscriptions: c.subs.clone(),
                combined: c.combined,
                frames_sent: c.shared.frames_sent.load(Ordering::Relaxed),
                bytes_sent: c.shared.bytes_sent.load(Ordering::Relaxed),
                opened_ms: c.opened_ms,
                stalled: c.shared.stalled_until_ms.load(Ordering::Relaxed) > now,
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// The true book of `symbol` (upper case), top `depth` levels per side.
    pub fn book(&self, symbol: &str, depth: usize) -> Option<BookView> {
        let st = self.hub.lock();
        let s = st.market.symbol(symbol)?;
        let copy = s.copy(depth, 0);
        Some(self.view(s, symbol, &copy))
    }

    fn view(&self, s: &market::SymbolState, symbol: &str, copy: &market::BookCopy) -> BookView {
        let levels = |l: &[(i64, i64)]| self.hub.dialect.book_levels(&self.hub.cfg, &s.spec, l);
        BookView {
            symbol: symbol.to_string(),
            last_update_id: copy.last_update_id,
            bids: levels(&copy.bids),
            asks: levels(&copy.asks),
        }
    }

    /// The true book of `symbol` right after the depth window that ended at
    /// `update_id` (top `depth` levels per side, at most 50), when the market
    /// keeps a history (`MarketConfig::book_history`) and it still holds that id.
    ///
    /// On Bybit `update_id` is an order-book topic's `u`: the book a client of
    /// `orderbook.<d>.<symbol>` holds right after the message with that `u`,
    /// from the smallest subscribed depth `d >= depth` that has it.
    pub fn book_at(&self, symbol: &str, update_id: u64, depth: usize) -> Option<BookView> {
        let st = self.hub.lock();
        let s = st.market.symbol(symbol)?;
        let copy = self.hub.dialect.book_at(&self.hub, &st, symbol, update_id, depth)?;
        Some(self.view(s, symbol, &copy))
    }

    /// Drops each message of `stream` with probability `p` (0 stops), for
    /// every subscriber; dropped messages still count as produced.
    pub fn drop_probability(&self, stream: &str, p: f64) {
        let mut st = self.hub.lock();
        if p > 0.0 {
            st.faults.drop_probability.insert(stream.to_string(), p.min(1.0));
        } else {
            st.faults.drop_probability.remove(stream);
        }
    }

    /// Kills every connection; returns how many.
    pub fn kill_all(&self, mode: KillMode) -> usize {
        self.hub.kill(None, mode)
    }

    /// Kills one connection; `false` if it does not exist.
    pub fn kill(&self, conn: u64, mode: KillMode) -> bool {
        self.hub.kill(Some(conn), mode) > 0
    }

    /// Stops sending anything (data, acks, pings) on one or all connections for
    /// `d`, keeping the sockets open; what would have been sent is lost.
    pub fn stall(&self, conn: Option<u64>, d: Duration) -> usize {
        self.hub.stall(conn, d)
    }

    /// Drops the next `count` messages of `stream` for every subscriber
    /// (they still count as produced, so clients must report a gap).
    pub fn drop_next(&self, stream: &str, count: u64) {
        *self.hub.lock().faults.drop.entry(stream.to_string()).or_default() += count;
    }

    /// Sends a truncated JSON text frame to one or all connections.
    pub fn send_malformed(&self, conn: Option<u64>) -> usize {
        self.hub.send_malformed(conn)
    }

    /// Delays every control-message reply by `d`.
    pub fn set_ack_delay(&self, d: Duration) {
        self.hub.lock().faults.ack_delay = d;
    }

    /// Answers the next `n` SUBSCRIBE requests with an error
    /// (`-1003`); those subscriptions are not applied.
    pub fn reject_next_acks(&self, n: u64) {
        self.hub.lock().faults.reject_acks = n;
    }

    /// Fails the next `n` REST depth snapshots with HTTP 503.
    pub fn fail_snapshots(&self, n: u64) {
        self.hub.lock().faults.rest_fail = n;
    }

    /// Answers the next `n` REST depth snapshots with HTTP 429 and
    /// `Retry-After: <retry_after>` (sent as given, whatever it says: a
    /// hostile or broken venue's value), or no such header with `None`.
    pub fn rate_limit_snapshots(&self, n: u64, retry_after: Option<&str>) {
        let mut st = self.hub.lock();
        st.faults.rest_rate_limited = n;
        st.faults.rest_retry_after = retry_after.map(str::to_string);
    }

    /// Leaves the next `n` authentication requests (Binance WS-API
    /// `session.logon`, Bybit private `auth`) unanswered: no success, no
    /// error, the socket kept open.
    pub fn ignore_auth(&self, n: u64) {
        self.hub.lock().faults.ignore_auth = n;
    }

    /// Serves the next `n` REST depth snapshots from a stale copy of the book.
    pub fn stale_snapshots(&self, n: u64) {
        self.hub.lock().faults.rest_stale = n;
    }

    /// Kills every connection each `period ± jitter` (uniform), until called with `None`.
    pub fn kill_every(&self, schedule: Option<(Duration, Duration)>, mode: KillMode) {
        let mut slot = self.hub.killer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = slot.take() {
            h.abort();
        }
        let Some((period, jitter)) = schedule else { return };
        let hub = self.hub.clone();
        let seed = period.as_nanos() as u64 ^ 0x5eed;
        *slot = Some(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            loop {
                let j = jitter.as_secs_f64();
                let d = period.as_secs_f64() + if j > 0.0 { rng.random_range(-j..=j) } else { 0.0 };
                tokio::time::sleep(Duration::from_secs_f64(d.max(0.001))).await;
                hub.kill(None, mode);
            }
        }));
    }

    /// Sends `serverShutdown` to every connection and closes them after the grace period.
    pub fn server_shutdown(&self) -> usize {
        self.hub.server_shutdown()
    }

    /// Refuses (resets) every new TCP connection while `on`.
    pub fn refuse_connections(&self, on: bool) {
        self.hub.lock().faults.refuse = on;
    }

    /// Freezes (or resumes) the books: no new trades or book changes while paused,
    /// but pending depth windows still flush, so the diff streams catch up with the
    /// true book. Periodic topics (tickers, partial depth) keep publishing.
    pub fn pause_market(&self, paused: bool) {
        self.hub.lock().faults.paused = paused;
    }

    /// Skews the venue clock (event times, `serverTime`, and the clock signed
    /// requests' `timestamp` is checked against) by `offset_ms`.
    pub fn set_clock_offset_ms(&self, offset_ms: i64) {
        self.hub.lock().faults.clock_offset_ms = offset_ms;
    }

    // ----- private side -----

    /// Expires listenKeys now: `key` only, or every active key of the market.
    /// Connections reading one get `listenKeyExpired` and then nothing more for
    /// it. Returns how many keys expired.
    pub fn expire_listen_key(&self, key: Option<&str>) -> usize {
        let mut st = self.hub.lock();
        self.hub.dialect.expire_listen_keys(&self.hub, &mut st, &|k, _| key.is_none_or(|x| x == k))
    }

    /// Kills every private connection (WS-API sessions and listenKey streams);
    /// returns how many.
    pub fn kill_private(&self, mode: KillMode) -> usize {
        self.hub.kill_private(mode)
    }

    /// Ends every WS-API user-data subscription with `eventStreamTerminated`
    /// (the sockets stay open); returns how many subscriptions ended.
    pub fn terminate_user_streams(&self) -> usize {
        let mut st = self.hub.lock();
        self.hub.dialect.terminate_user_streams(&self.hub, &mut st)
    }

    /// Credits `amount` (a decimal, negative to debit) of `asset` to the account
    /// with `api_key` (the first account when `None`): spot sends `balanceUpdate`
    /// and `outboundAccountPosition`, futures `ACCOUNT_UPDATE` (reason
    /// `DEPOSIT`/`WITHDRAW`).
    pub fn deposit(&self, api_key: Option<&str>, asset: &str, amount: &str) -> Result<(), String> {
        self.deposit_to(api_key, None, asset, amount)
    }

    /// [`MarketHandle::deposit`] into one of the account's scopes as the venue
    /// names them (`None`: the market's own). Binance spot: `margin` (cross
    /// margin) and `isolated:<SYMBOL>`, each with its own wallet and events
    /// (`balanceUpdate` + `outboundAccountPosition` to that scope's
    /// subscribers).
    pub fn deposit_to(
        &self,
        api_key: Option<&str>,
        scope: Option<&str>,
        asset: &str,
        amount: &str,
    ) -> Result<(), String> {
        let (neg, digits) = match amount.trim().strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, amount.trim()),
        };
        let v = account::parse_dec(digits, account::AMT)
            .map_err(|_| format!("amount must be a decimal with at most 8 fraction digits, got {amount:?}"))?;
        if asset.is_empty() || asset.len() > 20 || !asset.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("asset must be alphanumeric, got {asset:?}"));
        }
        let mut st = self.hub.lock();
        let acct = self.account_index(&st, api_key)?;
        let amount = if neg { -v } else { v };
        match scope {
            None => self.hub.dialect.deposit(&self.hub, &mut st, acct, asset, amount),
            Some(scope) => self.hub.dialect.deposit_scoped(&self.hub, &mut st, acct, scope, asset, amount)?,
        }
        Ok(())
    }

    fn account_index(&self, st: &hub::HubState, api_key: Option<&str>) -> Result<usize, String> {
        match api_key {
            Some(k) => st.accounts.by_api_key(k).ok_or_else(|| "no account with that API key".to_string()),
            None if st.accounts.list.is_empty() => Err("no accounts configured".into()),
            None => Ok(0),
        }
    }

    /// Ground truth of every account: balances, positions, orders, the user
    /// events produced per type, and active listenKeys.
    pub fn accounts(&self) -> Vec<AccountView> {
        let st = self.hub.lock();
        (0..st.accounts.list.len()).map(|i| self.account_view(&st, i)).collect()
    }

    /// Ground truth of the account with `api_key` (the first when `None`).
    pub fn account(&self, api_key: Option<&str>) -> Option<AccountView> {
        let st = self.hub.lock();
        let i = self.account_index(&st, api_key).ok()?;
        Some(self.account_view(&st, i))
    }

    fn account_view(&self, st: &hub::HubState, i: usize) -> AccountView {
        let a = &st.accounts.list[i];
        let spec_of = |sym: &str| st.market.symbol(sym).map(|s| s.spec.clone());
        let order = |o: &account::Order| {
            let (pd, qd, tick) =
                spec_of(&o.symbol).map_or((0, 0, 1), |s| (s.price_decimals, s.qty_decimals, s.tick_multiple as i128));
            OrderView {
                symbol: o.symbol.clone(),
                order_id: o.id,
                client_order_id: o.client_id.clone(),
                side: if o.buy { "BUY" } else { "SELL" }.into(),
                r#type: if o.market { "MARKET" } else { "LIMIT" }.into(),
                status: o.status.into(),
                orig_qty: account::dec(o.qty as i128, qd, qd),
                executed_qty: account::dec(o.executed as i128, qd, qd),
                price: account::dec_or_zero(o.price as i128 * tick, pd, pd),
                cum_notional: account::amt(o.cum_notional),
            }
        };
        let now = tokio::time::Instant::now();
        let mut keys: Vec<ListenKeyView> = st
            .accounts
            .listen_keys
            .iter()
            .filter(|(_, k)| k.account == i)
            .map(|(key, k)| ListenKeyView {
                listen_key: key.clone(),
                scope: k.scope.name(),
                expires_in_ms: k.expires.saturating_duration_since(now).as_millis() as u64,
            })
            .collect();
        keys.sort_by(|a, b| a.scope.cmp(&b.scope));
        let mut subscriptions: Vec<SubscriptionView> = st
            .conns
            .iter()
            .flat_map(|(conn, c)| c.user_subs.iter().map(move |u| (*conn, u)))
            .filter(|(_, u)| u.account == i)
            .map(|(conn, u)| SubscriptionView {
                conn,
                subscription_id: u.id,
                scope: u.scope.name(),
                expires_in_ms: u.expires.map(|e| e.saturating_duration_since(now).as_millis() as u64),
            })
            .collect();
        subscriptions.sort_by_key(|s| (s.conn, s.subscription_id));
        AccountView {
            name: a.spec.name.clone(),
            api_key: a.spec.api_key.clone(),
            balances: a
                .balances
                .iter()
                .map(|(k, b)| (k.clone(), BalanceView { free: account::amt(b.free), locked: account::amt(b.locked) }))
                .collect(),
            positions: a
                .positions
                .iter()
                .map(|(sym, p)| {
                    let qd = spec_of(sym).map_or(0, |s| s.qty_decimals);
                    let entry = spec_of(sym)
                        .map_or_else(|| "0".to_string(), |spec| orders::entry_price(self.kind(), &spec, p.amt, p.cost));
                    (
                        sym.clone(),
                        PositionView {
                            amount: account::dec_or_zero(p.amt as i128, qd, qd),
                            entry_price: entry,
                            realized: account::amt(p.realized),
                        },
                    )
                })
                .collect(),
            open_orders: a.open.values().map(order).collect(),
            orders: a.history.iter().map(order).collect(),
            events_total: a.events.values().sum(),
            events: a.events.clone(),
            frames_queued: a.frames_queued,
            listen_keys: keys,
            subscriptions,
        }
    }
}

#[cfg(test)]
mod layering {
    //! The no-cycle rule of issue 17: the core never names a venue folder;
    //! only this file (the registry) names both.

    /// Every core module, by source.
    const CORE: &[(&str, &str)] = &[
        ("account.rs", include_str!("account.rs")),
        ("admin.rs", include_str!("admin.rs")),
        ("auth.rs", include_str!("auth.rs")),
        ("config.rs", include_str!("config.rs")),
        ("conn.rs", include_str!("conn.rs")),
        ("dialect.rs", include_str!("dialect.rs")),
        ("faults.rs", include_str!("faults.rs")),
        ("hub.rs", include_str!("hub.rs")),
        ("load.rs", include_str!("load.rs")),
        ("market.rs", include_str!("market.rs")),
        ("orders.rs", include_str!("orders.rs")),
        ("server.rs", include_str!("server.rs")),
        ("ws.rs", include_str!("ws.rs")),
    ];

    /// The venue folders.
    const VENUES: [&str; 3] = ["binance", "bybit", "deribit"];

    /// The tokens of `src` without comments: identifiers, `::`, and single
    /// punctuation characters.
    fn tokens(src: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in src.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut chars = code.chars().peekable();
            while let Some(c) = chars.next() {
                if c.is_alphanumeric() || c == '_' {
                    let mut w = c.to_string();
                    while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                        w.push(n);
                        chars.next();
                    }
                    out.push(w);
                } else if c == ':' && chars.peek() == Some(&':') {
                    chars.next();
                    out.push("::".into());
                } else if !c.is_whitespace() {
                    out.push(c.to_string());
                }
            }
        }
        out
    }

    /// Whether `src` names module `venue` of this crate: a `crate::venue` or
    /// `super::venue` path, `venue` inside a `use crate::{..}` group, or a
    /// `mod venue` (comments ignored).
    fn names(src: &str, venue: &str) -> bool {
        let t = tokens(src);
        for (i, w) in t.iter().enumerate() {
            let next = |k: usize| t.get(i + k).map(String::as_str);
            if (w == "crate" || w == "super") && next(1) == Some("::") {
                if next(2) == Some(venue) {
                    return true;
                }
                if w == "crate" && next(2) == Some("{") {
                    let mut depth = 0;
                    for tok in &t[i + 2..] {
                        match tok.as_str() {
                            "{" => depth += 1,
                            "}" => depth -= 1,
                            x if x == venue => return true,
                            _ => {}
                        }
                        if depth == 0 {
                            break;
                        }
                    }
                }
            }
            if w == "mod" && next(1) == Some(venue) {
                return true;
            }
        }
        false
    }

    #[test]
    fn the_checker_sees_every_way_of_naming_a_venue() {
        assert!(names("use crate::binance::topic::Topic;", "binance"));
        assert!(names("let x = crate :: bybit :: dialect(c);", "bybit"));
        assert!(names("use crate::{ws, bybit::public};", "bybit"));
        assert!(names("use crate::{hub::{Hub}, binance};", "binance"));
        assert!(names("use super::binance::paths;", "binance"));
        assert!(names("pub(crate) mod bybit;", "bybit"));
        assert!(names("#[allow(unused_imports)]\nuse crate::binance as _;", "binance"));
        assert!(!names("let l = Limits::binance(kind); // crate::binance", "binance"));
        assert!(!names("cfg.bybit_category(); MarketConfig::bybit(c)", "bybit"));
    }

    #[test]
    fn core_modules_do_not_name_the_venue_folders() {
        for (file, src) in CORE {
            for venue in VENUES {
                assert!(!names(src, venue), "core module {file} names the venue folder `{venue}`");
            }
        }
    }

    #[test]
    fn every_core_module_is_checked() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("src")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".rs") && f != "lib.rs")
            .collect();
        files.sort();
        let listed: Vec<String> = CORE.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(files, listed, "a core module is missing from CORE (or a folder module sits in src/)");
    }

    #[test]
    fn venue_folders_do_not_name_each_other() {
        for venue in VENUES {
            let dir = format!("{}/src/{venue}", env!("CARGO_MANIFEST_DIR"));
            for e in std::fs::read_dir(&dir).expect("venue folder").filter_map(|e| e.ok()) {
                let src = std::fs::read_to_string(e.path()).expect("source");
                for other in VENUES.iter().filter(|o| **o != venue) {
                    assert!(!names(&src, other), "{}/{} names `{other}`", venue, e.file_name().to_string_lossy());
                }
            }
        }
    }
}
