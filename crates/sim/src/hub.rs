//! The shared state of one market: the generator, every connection with its
//! subscriptions, fault switches, counters and ground truth.
//!
//! One `std::sync::Mutex` guards it; critical sections are short and never await.
//! Delivery to connections uses `try_send` on bounded queues: a full queue marks
//! the connection a slow consumer and it is reset, as the venue drops clients that
//! cannot keep up.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::account::{Accounts, Scope};
use crate::config::{MarketConfig, MarketKind};
use crate::dialect::{Dialect, Envelope};
use crate::load::LoadForm;
use crate::market::{Emit, Market};
use crate::ws;

/// How a connection is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillMode {
    /// A close frame (1001, "killed by simulator"), then the socket closes.
    Close,
    /// A TCP reset (SO_LINGER 0), no close frame.
    Reset,
}

/// Messages to a connection's writer, in order with its data.
#[derive(Debug)]
pub(crate) enum Ctrl {
    /// A pre-encoded frame (ack, error, pong, ping, notice).
    Frame(Bytes),
    /// Send a close frame, then end the connection.
    Close(u16, String),
    /// Flush and end without a close frame (the peer already left).
    Finish,
}

/// Per-connection state readable without the hub lock.
#[derive(Debug, Default)]
pub(crate) struct ConnShared {
    /// Stalled until this many ms after the hub epoch (0 = not stalled).
    pub stalled_until_ms: AtomicU64,
    /// Frames written to it.
    pub frames_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub dropped_while_stalled: AtomicU64,
    /// Signalled whenever the writer has drained a batch to the socket.
    pub drained: Notify,
}

/// What a connection is, as its market's dialect classified it at the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnKind {
    /// The dialect's own tag: which handler answers its text frames, its route.
    pub tag: u8,
    /// Private (user data): killed by `kill_private`.
    pub private: bool,
    /// `true`: the server pings and closes the connection when no pong echoes
    /// a ping in time; `false`: the client pings and the server closes
    /// connections idle for `Limits::idle_timeout`.
    pub server_pings: bool,
}

/// A listenKey a connection reads, with its optional `events=` filter.
#[derive(Debug, Clone)]
pub(crate) struct ListenSub {
    pub key: String,
    pub events: Option<Vec<String>>,
}

/// A WS-API session's logon.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    pub account: usize,
    pub since_ms: u64,
}

/// A WS-API user-data subscription: one account's events on one scope.
#[derive(Debug, Clone)]
pub(crate) struct UserSub {
    pub id: u64,
    pub account: usize,
    /// Made with `userDataStream.subscribe` on a logged-on session (ends at logout).
    pub logon: bool,
    /// Whose events it carries (the market's own scope, or a sub-account
    /// scope such as cross or isolated margin).
    pub scope: Scope,
    /// When it runs out unless renewed (a subscription made with a
    /// time-limited token); `None` lasts as long as the connection.
    pub expires: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct ConnEntry {
    /// Path and query it connected with.
    pub path: String,
    pub combined: bool,
    pub subs: Vec<String>,
    pub kind: ConnKind,
    /// listenKeys named in the URL.
    pub listen: Vec<ListenSub>,
    /// WS-API: the logged-on account.
    pub session: Option<Session>,
    /// WS-API: user-data subscriptions.
    pub user_subs: Vec<UserSub>,
    /// WS-API: the next subscription id (0, 1, ...).
    pub next_user_sub: u64,
    pub opened_ms: u64,
    pub data_tx: mpsc::Sender<Bytes>,
    pub ctrl_tx: mpsc::Sender<Ctrl>,
    pub kill_tx: watch::Sender<Option<KillMode>>,
    pub shared: Arc<ConnShared>,
}

/// Ground truth for one stream.
#[derive(Debug, Default, Clone, Serialize)]
pub struct StreamStats {
    /// Messages produced since the stream was first subscribed (delivered or not).
    pub produced: u64,
    /// Trade id (trade streams), aggregate id, or final update id of the last message.
    pub last_id: Option<u64>,
    /// The id carried by the first message produced.
    pub first_id: Option<u64>,
    /// The id resets of the stream (the `id_reset` fault), oldest first; at
    /// most [`MAX_RESETS_KEPT`] (the oldest are forgotten).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resets: Vec<IdReset>,
}

/// Id resets kept per stream in [`StreamStats::resets`].
pub const MAX_RESETS_KEPT: usize = 1024;

/// One id reset of a stream: where its ids stopped and started again.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct IdReset {
    /// The last id produced before the reset (`None`: nothing yet).
    pub last_before: Option<u64>,
    /// The first id produced after it (`None`: nothing yet).
    pub first_after: Option<u64>,
    /// Messages produced before the reset.
    pub produced_before: u64,
}

/// Event counters of one market.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// WebSocket upgrades accepted.
    pub connections_accepted: u64,
    /// Upgrades refused with HTTP 429 (connection-attempt limit).
    pub connection_attempts_rejected: u64,
    /// TCP connections reset while the refuse fault was on.
    pub connections_refused: u64,
    /// Connections closed with 1008 for exceeding the incoming message rate.
    pub rate_limit_closes: u64,
    /// Subscriptions or URLs refused for exceeding the stream cap.
    pub over_cap_rejections: u64,
    /// Most streams any connection has held.
    pub max_streams_on_a_connection: u64,
    /// Connections closed because no pong echoed a ping in time.
    pub pong_timeouts: u64,
    /// Connections closed at the maximum lifetime.
    pub lifetime_closes: u64,
    /// Bybit connections closed because the client sent nothing for the idle timeout.
    pub idle_closes: u64,
    /// Connections reset because their outbound queue was full.
    pub slow_consumer_resets: u64,
    /// Bybit: subscribe requests refused, in whole (spot, linear, inverse) or
    /// in part (option: the excess topics in `failTopics`), because the
    /// connection's topics would exceed `Limits::max_topic_chars` (21 000).
    pub args_limit_refusals: u64,
    /// Connections killed by the kill fault.
    pub kills: u64,
    /// Server pings sent.
    pub pings_sent: u64,
    /// Pong frames received.
    pub pongs_received: u64,
    /// Pongs that echoed an outstanding ping payload.
    pub pongs_matched: u64,
    /// Pongs that echoed nothing outstanding (do not keep the connection alive).
    pub pongs_unmatched: u64,
    /// Ping frames received from clients (answered with pongs).
    pub client_pings: u64,
    /// JSON control messages received.
    pub control_messages: u64,
    /// Successful control replies sent.
    pub acks_sent: u64,
    /// Error replies sent.
    pub errors_sent: u64,
    /// Connections closed for RFC 6455 violations.
    pub protocol_errors: u64,
    /// REST requests served or refused.
    pub rest_requests: u64,
    /// REST requests refused with 429 (weight budget).
    pub rest_rate_limited: u64,
    /// Depth snapshots failed by the snapshot fault.
    pub snapshots_failed_by_fault: u64,
    /// Depth snapshots served stale by the snapshot fault.
    pub snapshots_stale_by_fault: u64,
    /// Messages dropped by the drop fault (still counted as produced).
    pub dropped_by_fault: u64,
    /// Malformed frames sent by the malformed fault.
    pub malformed_sent: u64,
    /// `serverShutdown` notices broadcast.
    pub shutdown_notices: u64,
    /// Frames sent by the flood faults (unsubscribed streams, malformed).
    pub flood_frames_sent: u64,
    /// Oversized frames sent by the oversized fault.
    pub oversized_sent: u64,
    /// Symbols whose ids the id-reset fault restarted.
    pub id_resets: u64,
    /// Close codes received from clients, by code.
    pub client_close_codes: BTreeMap<u16, u64>,
}

/// A connection that has ended.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedConn {
    /// Connection id.
    pub id: u64,
    /// Path and query it connected with.
    pub path: String,
    /// Close code the client sent, if it sent a close frame.
    pub client_close_code: Option<u16>,
    /// Why the connection ended, in words.
    pub reason: String,
    /// Frames written to it.
    pub frames_sent: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub drop: HashMap<String, u64>,
    /// Per stream: the probability that each message is dropped.
    pub drop_probability: HashMap<String, f64>,
    pub ack_delay: Duration,
    pub reject_acks: u64,
    pub rest_fail: u64,
    pub rest_stale: u64,
    /// The next this many REST snapshots are answered 429 with
    /// `rest_retry_after` as the `Retry-After` header (any text).
    pub rest_rate_limited: u64,
    pub rest_retry_after: Option<String>,
    /// The next this many authentication requests (Binance `session.logon`,
    /// Bybit `auth`) get no answer at all.
    pub ignore_auth: u64,
    pub refuse: bool,
    pub clock_offset_ms: i64,
    pub paused: bool,
}

/// A topic rendered on a timer (tickers, partial depth, order books, klines):
/// the venue's own state of it and how it writes the next message(s).
pub(crate) trait Render: Send + std::fmt::Debug {
    /// The messages due now as (payload, id for ground truth); `venue` is the
    /// market's venue state ([`HubState::venue`]).
    fn render(&mut self, market: &mut Market, venue: &mut (dyn Any + Send), now_ms: u64) -> Vec<(String, Option<u64>)>;
}

/// A tracked topic rendered on a timer.
#[derive(Debug)]
pub(crate) struct Periodic {
    pub topic: Box<dyn Render>,
    pub period_ms: u64,
    pub next_due: u64,
}

pub(crate) struct HubState {
    pub market: Market,
    pub conns: HashMap<u64, ConnEntry>,
    pub subs: HashMap<String, Vec<u64>>,
    pub tracked: HashSet<String>,
    pub periodic: HashMap<String, Periodic>,
    pub streams: BTreeMap<String, StreamStats>,
    pub faults: Faults,
    pub counters: Counters,
    attempts: VecDeque<Instant>,
    rest_weight: VecDeque<(Instant, u32)>,
    pub closed: VecDeque<ClosedConn>,
    next_conn: u64,
    /// Every stream name of the market's load forms (fixed at start-up).
    pub load_streams: HashSet<String>,
    /// Draws for probabilistic faults (seeded from the simulator seed).
    pub fault_rng: ChaCha8Rng,
    /// Accounts, orders and listenKeys (the private side).
    pub accounts: Accounts,
    /// What the market's venue keeps besides the generator (its own type).
    pub venue: Box<dyn Any + Send>,
}

impl std::fmt::Debug for HubState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubState").field("conns", &self.conns.len()).finish_non_exhaustive()
    }
}

/// One market's shared state and configuration.
#[derive(Debug)]
pub(crate) struct Hub {
    pub cfg: MarketConfig,
    /// The wire protocol the market speaks.
    pub dialect: &'static dyn Dialect,
    /// The dialect's combined-stream envelope.
    pub envelope: Option<Envelope>,
    /// The load forms (`MarketConfig::load`) the venue serves.
    pub load: Vec<LoadForm>,
    pub state: Mutex<HubState>,
    pub epoch: Instant,
    pub load_wakeup: Notify,
    pub shutdown: watch::Sender<bool>,
    pub addr: std::net::SocketAddr,
    pub killer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A connection receiving a stream, as the load producer sees it.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub id: u64,
    pub combined: bool,
    pub tx: mpsc::Sender<Bytes>,
    pub shared: Arc<ConnShared>,
}

/// What a registered connection gets back.
#[derive(Debug)]
pub(crate) struct Registered {
    /// Connection id.
    pub id: u64,
    pub data_rx: mpsc::Receiver<Bytes>,
    pub ctrl_rx: mpsc::Receiver<Ctrl>,
    pub ctrl_tx: mpsc::Sender<Ctrl>,
    pub kill_rx: watch::Receiver<Option<KillMode>>,
    pub shared: Arc<ConnShared>,
    pub kind: ConnKind,
}

pub(crate) fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Hub {
    /// Whether this authentication request goes unanswered (the
    /// `ignore_auth` fault), counting it down.
    pub(crate) fn swallow_auth(&self) -> bool {
        let mut st = self.lock();
        if st.faults.ignore_auth > 0 {
            st.faults.ignore_auth -= 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn new(
        cfg: MarketConfig,
        seed: u64,
        addr: std::net::SocketAddr,
        dialect: &'static dyn Dialect,
    ) -> Arc<Hub> {
        let now = wall_ms();
        let mut market = dialect.market(&cfg, seed, now);
        market.set_history(cfg.book_history);
        let load = cfg.load.as_ref().map(|l| dialect.load(&cfg, l)).unwrap_or_default();
        let load_streams = load.iter().flat_map(LoadForm::streams).collect();
        Arc::new(Hub {
            state: Mutex::new(HubState {
                market,
                conns: HashMap::new(),
                subs: HashMap::new(),
                tracked: HashSet::new(),
                periodic: HashMap::new(),
                streams: BTreeMap::new(),
                faults: Faults::default(),
                counters: Counters::default(),
                attempts: VecDeque::new(),
                rest_weight: VecDeque::new(),
                closed: VecDeque::new(),
                next_conn: 1,
                load_streams,
                fault_rng: ChaCha8Rng::seed_from_u64(seed ^ 0xfa17),
                accounts: Accounts::new(&cfg.accounts, seed),
                venue: dialect.venue_state(),
            }),
            dialect,
            envelope: dialect.envelope(),
            load,
            cfg,
            epoch: Instant::now(),
            load_wakeup: Notify::new(),
            shutdown: watch::channel(false).0,
            addr,
            killer: Mutex::new(None),
        })
    }

    pub(crate) fn kind(&self) -> MarketKind {
        self.cfg.kind
    }

    /// Locks the state; a poisoned lock (a panic elsewhere) is taken over as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wall-clock ms as the venue sees it (with the skew fault applied).
    pub(crate) fn venue_ms(&self, st: &HubState) -> u64 {
        (wall_ms() as i64 + st.faults.clock_offset_ms).max(0) as u64
    }

    pub(crate) fn since_epoch_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Records a connection attempt; `false` when over the venue's attempt limit.
    pub(crate) fn admit_attempt(&self) -> bool {
        let mut st = self.lock();
        let now = Instant::now();
        let window = self.cfg.limits.conn_attempt_window;
        while st.attempts.front().is_some_and(|t| now.duration_since(*t) >= window) {
            st.attempts.pop_front();
        }
        if st.attempts.len() >= self.cfg.limits.max_conn_attempts {
            st.counters.connection_attempts_rejected += 1;
            return false;
        }
        st.attempts.push_back(now);
        true
    }

    /// Charges REST weight; `Err(retry_after_secs)` when over the limit. Returns used weight.
    pub(crate) fn charge_weight(&self, w: u32) -> Result<u32, u64> {
        let mut st = self.lock();
        st.counters.rest_requests += 1;
        let now = Instant::now();
        let window = self.cfg.limits.rest_weight_window;
        while st.rest_weight.front().is_some_and(|(t, _)| now.duration_since(*t) >= window) {
            st.rest_weight.pop_front();
        }
        let used: u32 = st.rest_weight.iter().map(|(_, w)| *w).sum();
        if used + w > self.cfg.limits.rest_weight_limit {
            st.counters.rest_rate_limited += 1;
            let retry = st
                .rest_weight
                .front()
                .map(|(t, _)| window.saturating_sub(now.duration_since(*t)).as_secs() + 1)
                .unwrap_or(1);
            return Err(retry);
        }
        st.rest_weight.push_back((now, w));
        Ok(used + w)
    }

    pub(crate) fn register(&self, path: String, combined: bool, kind: ConnKind, listen: Vec<ListenSub>) -> Registered {
        let (data_tx, data_rx) = mpsc::channel(self.cfg.limits.outbound_queue.max(1));
        let (ctrl_tx, ctrl_rx) = mpsc::channel(256);
        let (kill_tx, kill_rx) = watch::channel(None);
        let shared = Arc::new(ConnShared::default());
        let mut st = self.lock();
        let id = st.next_conn;
        st.next_conn += 1;
        st.counters.connections_accepted += 1;
        let opened_ms = self.venue_ms(&st);
        st.conns.insert(
            id,
            ConnEntry {
                path,
                combined,
                subs: Vec::new(),
                kind,
                listen,
                session: None,
                user_subs: Vec::new(),
                next_user_sub: 0,
                opened_ms,
                data_tx,
                ctrl_tx: ctrl_tx.clone(),
                kill_tx,
                shared: shared.clone(),
            },
        );
        Registered { id, data_rx, ctrl_rx, ctrl_tx, kill_rx, shared, kind }
    }

    pub(crate) fn unregister(&self, id: u64, client_close_code: Option<u16>, reason: String) {
        let mut st = self.lock();
        let Some(entry) = st.conns.remove(&id) else { return };
        for s in &entry.subs {
            if let Some(v) = st.subs.get_mut(s) {
                v.retain(|c| *c != id);
            }
        }
        if let Some(code) = client_close_code {
            *st.counters.client_close_codes.entry(code).or_default() += 1;
        }
        st.closed.push_back(ClosedConn {
            id,
            path: entry.path,
            client_close_code,
            reason,
            frames_sent: entry.shared.frames_sent.load(Ordering::Relaxed),
        });
        if st.closed.len() > 1000 {
            st.closed.pop_front();
        }
    }

    /// Removes streams from a connection's subscriptions.
    pub(crate) fn unsubscribe(&self, id: u64, streams: &[String]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some(c) = st.conns.get_mut(&id) {
            c.subs.retain(|s| !streams.contains(s));
        }
        for s in streams {
            if let Some(v) = st.subs.get_mut(s) {
                v.retain(|c| *c != id);
            }
        }
    }

    /// Consumes one "reject the next SUBSCRIBE" fault, if armed.
    pub(crate) fn take_reject(&self) -> bool {
        let mut st = self.lock();
        if st.faults.reject_acks > 0 {
            st.faults.reject_acks -= 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn list(&self, id: u64) -> Vec<String> {
        self.lock().conns.get(&id).map(|c| c.subs.clone()).unwrap_or_default()
    }

    pub(crate) fn set_combined(&self, id: u64, on: bool) {
        if let Some(c) = self.lock().conns.get_mut(&id) {
            c.combined = on;
        }
    }

    pub(crate) fn combined(&self, id: u64) -> bool {
        self.lock().conns.get(&id).is_some_and(|c| c.combined)
    }

    /// One generator step: advance books, render due periodic topics, deliver.
    pub(crate) fn step(&self, elapsed_ms: u64) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let now = self.venue_ms(st);
        let mut out: Vec<Emit> = Vec::new();
        // Paused: no new book actions, but due windows still flush.
        let elapsed_ms = if st.faults.paused { 0 } else { elapsed_ms };
        self.dialect.tick(&mut st.market, now, elapsed_ms, &st.tracked, &mut out);
        self.dialect.route_emits(st.venue.as_mut(), &st.tracked, &mut out, now);
        for (name, p) in st.periodic.iter_mut() {
            if now >= p.next_due {
                p.next_due = now + p.period_ms;
                for (payload, id) in p.topic.render(&mut st.market, st.venue.as_mut(), now) {
                    out.push(Emit { stream: name.clone(), payload, id });
                }
            }
        }
        for e in out {
            self.deliver(st, &e.stream, e.payload.as_bytes(), e.id, 1);
        }
        if !st.accounts.listen_keys.is_empty() {
            let now = Instant::now();
            self.dialect.expire_listen_keys(self, st, &|_, k| k.expires <= now);
        }
        self.dialect.timers(self, st);
    }

    /// Counts and fans out one payload (or a pre-encoded batch, see `deliver_frames`).
    pub(crate) fn deliver(&self, st: &mut HubState, stream: &str, payload: &[u8], id: Option<u64>, count: u64) {
        if let Some(s) = st.streams.get_mut(stream) {
            s.produced += count;
            s.last_id = id.or(s.last_id);
            if s.first_id.is_none() {
                s.first_id = id;
            }
            if let Some(r) = s.resets.last_mut().filter(|r| r.first_after.is_none()) {
                r.first_after = id;
            }
        }
        if let Some(n) = st.faults.drop.get_mut(stream)
            && *n > 0
        {
            *n -= 1;
            st.counters.dropped_by_fault += 1;
            return;
        }
        if let Some(&p) = st.faults.drop_probability.get(stream)
            && st.fault_rng.random_bool(p)
        {
            st.counters.dropped_by_fault += 1;
            return;
        }
        let Some(ids) = st.subs.get(stream) else { return };
        if ids.is_empty() {
            return;
        }
        let mut raw: Option<Bytes> = None;
        let mut combined: Option<Bytes> = None;
        let now = self.since_epoch_ms();
        let mut slow = Vec::new();
        for id in ids {
            let Some(c) = st.conns.get(id) else { continue };
            if c.shared.stalled_until_ms.load(Ordering::Relaxed) > now {
                c.shared.dropped_while_stalled.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let frame = if let Some(env) = self.envelope.as_ref().filter(|_| c.combined) {
                combined
                    .get_or_insert_with(|| {
                        let mut p = Vec::with_capacity(payload.len() + stream.len() + 24);
                        p.extend_from_slice(env.head.as_bytes());
                        p.extend_from_slice(stream.as_bytes());
                        p.extend_from_slice(env.mid.as_bytes());
                        p.extend_from_slice(payload);
                        p.extend_from_slice(env.tail.as_bytes());
                        ws::encode(ws::op::TEXT, &p)
                    })
                    .clone()
            } else {
                raw.get_or_insert_with(|| ws::encode(ws::op::TEXT, payload)).clone()
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = c.data_tx.try_send(frame) {
                slow.push(*id);
            }
        }
        for id in slow {
            st.counters.slow_consumer_resets += 1;
            if let Some(c) = st.conns.get(&id) {
                let _ = c.kill_tx.send(Some(KillMode::Reset));
            }
        }
    }

    /// Subscribers of `stream` with their (combined) flag, skipping stalled ones.
    pub(crate) fn subscribers(&self, st: &HubState, stream: &str) -> Vec<Subscriber> {
        let now = self.since_epoch_ms();
        st.subs
            .get(stream)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| st.conns.get(id).map(|c| (*id, c)))
                    .filter(|(_, c)| c.shared.stalled_until_ms.load(Ordering::Relaxed) <= now)
                    .map(|(id, c)| Subscriber {
                        id,
                        combined: c.combined,
                        tx: c.data_tx.clone(),
                        shared: c.shared.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    // ----- faults -----

    /// Kills every private connection (WS-API, Bybit `/v5/private`, or reading
    /// a listenKey, or on the `/private` route); returns how many.
    pub(crate) fn kill_private(&self, mode: KillMode) -> usize {
        let mut st = self.lock();
        let mut n = 0;
        for c in st.conns.values() {
            if c.kind.private {
                let _ = c.kill_tx.send(Some(mode));
                n += 1;
            }
        }
        st.counters.kills += n as u64;
        n
    }

    /// Kills one connection (or all when `id` is `None`); returns how many.
    pub(crate) fn kill(&self, id: Option<u64>, mode: KillMode) -> usize {
        let mut st = self.lock();
        let mut n = 0;
        for (cid, c) in &st.conns {
            if id.is_none_or(|x| x == *cid) {
                let _ = c.kill_tx.send(Some(mode));
                n += 1;
            }
        }
        st.counters.kills += n as u64;
        n
    }

    pub(crate) fn stall(&self, id: Option<u64>, d: Duration) -> usize {
        let st = self.lock();
        let until = self.since_epoch_ms() + d.as_millis() as u64;
        let mut n = 0;
        for (cid, c) in &st.conns {
            if id.is_none_or(|x| x == *cid) {
                c.shared.stalled_until_ms.store(until, Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }

    pub(crate) fn send_malformed(&self, id: Option<u64>) -> usize {
        let mut st = self.lock();
        let frame = ws::encode(ws::op::TEXT, b"{\"e\":\"trade\",\"E\":17000000,\"s\":\"BTCUSDT\",\"t\":");
        let mut n = 0;
        for (cid, c) in &st.conns {
            if id.is_none_or(|x| x == *cid) && c.ctrl_tx.try_send(Ctrl::Frame(frame.clone())).is_ok() {
                n += 1;
            }
        }
        st.counters.malformed_sent += n as u64;
        n
    }

    /// Sends `serverShutdown` to every connection, then closes them after the grace period.
    pub(crate) fn server_shutdown(self: &Arc<Self>) -> usize {
        let mut st = self.lock();
        let now = self.venue_ms(&st);
        let mut n = 0;
        for c in st.conns.values() {
            let p = self.dialect.shutdown_notice(c, now);
            if c.ctrl_tx.try_send(Ctrl::Frame(ws::encode(ws::op::TEXT, p.as_bytes()))).is_ok() {
                n += 1;
            }
        }
        st.counters.shutdown_notices += 1;
        let ids: Vec<u64> = st.conns.keys().copied().collect();
        drop(st);
        let hub = self.clone();
        let grace = self.cfg.timing.shutdown_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let st = hub.lock();
            for id in ids {
                if let Some(c) = st.conns.get(&id) {
                    let _ = c.ctrl_tx.try_send(Ctrl::Close(1001, "server shutdown".into()));
                }
            }
        });
        n
    }
}
