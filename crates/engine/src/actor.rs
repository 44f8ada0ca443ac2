//! The connection actor: one task owns one socket (two during a rotation) and
//! keeps it alive. Callers talk to it through a [`Connection`] handle over a
//! bounded command channel; it emits [`Event`]s on a bounded queue.
//!
//! Lifecycle: connect (timeout, shared attempt budget) → on-connect frames →
//! authenticate (private) → restore the subscription set, paced by the venue's
//! message limit → active. A lost socket (error, close, idle timeout) leads to
//! a backoff delay and a new socket with a new epoch; the subscription set and
//! the per-stream sequence state survive. Before the venue's lifetime limit or
//! on a shutdown notice, a replacement socket is opened and subscribed first
//! and takes over once it delivers (make-before-break).
//!
//! Subscribe and unsubscribe requests are kept per socket by id, oldest
//! first, until answered. The venue's answer is matched by its request id;
//! without one, by the streams it names (each settles in the oldest request
//! still waiting for it); naming neither, by its op, to the oldest request of
//! that op (FIFO, as venues answer a socket's requests in order) unless that
//! is ambiguous, which is reported. A request unanswered after the ack
//! timeout is reported and stops holding the socket back, but stays recorded
//! so a late answer still settles it and the FIFO order holds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::backoff::{Backoff, BackoffConfig, BackoffConfigError};
use crate::entropy::Seeded;
use crate::event::{Event, EventKind, State};
use crate::pacer::Pacer;
use crate::queue::{EventReceiver, EventSender, Overflow, queue_bounded};
use crate::seq::{SeqTracker, Verdict};
use crate::transport::{ConnectSpec, Transport, TransportError, WsMsg, WsStream};
use crate::venue::{ClientPing, Inbound, RequestOp, VenueRules, batches};

/// A data message's stream: the tracker's shared name, or (`Err`) a copy of
/// a name the connection does not hold.
type StreamName = Result<Arc<str>, String>;

/// Connection attempts shared by every connection to one venue host, so that
/// many sockets reconnecting at once stay under the venue's connection-rate limit.
#[derive(Debug, Clone)]
pub struct AttemptBudget {
    pacer: Arc<Mutex<Pacer>>,
}

impl AttemptBudget {
    /// At most `max` attempts per `window` (Binance: 300 per 5 minutes).
    pub fn new(max: usize, window: Duration) -> AttemptBudget {
        AttemptBudget { pacer: Arc::new(Mutex::new(Pacer::new(max, window))) }
    }

    /// Waits for an attempt slot (first come, first served).
    pub async fn acquire(&self) {
        self.pacer.lock().await.acquire().await;
    }

    /// Attempts made in the current window (`None` while an attempt is waiting).
    pub fn used(&self) -> Option<usize> {
        self.pacer.try_lock().ok().map(|mut p| p.used())
    }
}

/// How one connection behaves.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Where and how to connect.
    pub spec: ConnectSpec,
    /// Reconnect schedule.
    pub backoff: BackoffConfig,
    /// Events buffered for the consumer.
    pub queue_capacity: usize,
    /// Bytes buffered for the consumer (see [`crate::queue::event_bytes`]).
    pub queue_bytes: usize,
    /// What happens when that buffer is full.
    pub overflow: Overflow,
    /// Rotate to a fresh socket after this long (before the venue's lifetime limit).
    pub rotate_after: Option<Duration>,
    /// How long a close waits for the venue's close reply.
    pub close_timeout: Duration,
    /// Seed for backoff jitter (`None`: from the OS).
    pub seed: Option<u64>,
    /// Shared connection-attempt budget for the venue host.
    pub attempts: Option<AttemptBudget>,
    /// A request unanswered this long is reported as an error: the streams of
    /// a subscribe are assumed subscribed ([`SubState::Unanswered`]; the
    /// socket becomes active anyway), those of an unsubscribe assumed gone. A
    /// late answer still settles the request.
    pub ack_timeout: Duration,
    /// Identifies this connection's events in a merged stream.
    pub id: u64,
}

impl ConnectionConfig {
    /// Defaults: Binance-sane backoff, 65,536 events or 16 MiB, block when
    /// full, rotation at 23 h 50 min.
    pub fn new(spec: ConnectSpec) -> ConnectionConfig {
        ConnectionConfig {
            spec,
            backoff: BackoffConfig::default(),
            queue_capacity: 65_536,
            queue_bytes: crate::queue::DEFAULT_QUEUE_BYTES,
            overflow: Overflow::Block,
            rotate_after: Some(Duration::from_secs(23 * 3600 + 50 * 60)),
            close_timeout: Duration::from_secs(1),
            seed: None,
            attempts: None,
            ack_timeout: Duration::from_secs(30),
            id: 0,
        }
    }
}

/// Where one stream's subscription stands on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// Requested; no acknowledgement yet (or waiting for a socket).
    Pending,
    /// Acknowledged (or carried by the connection URL).
    Confirmed,
    /// Refused by the venue; not retried.
    Failed,
    /// Unsubscribe sent; no acknowledgement yet.
    PendingUnsubscribe,
    /// Requested, but unanswered within the ack timeout (reported as an
    /// error): assumed subscribed and kept; a late answer still confirms or
    /// refuses it. Not retried: the venue may be delivering it already.
    Unanswered,
}

/// A connection's state for introspection and rate-limit statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnSnapshot {
    /// The connection id.
    pub id: u64,
    /// Lifecycle state.
    pub state: State,
    /// Socket generation.
    pub epoch: u64,
    /// The URL of the current socket, for display: credentials masked
    /// ([`ConnectSpec::shown_url`]).
    pub url: String,
    /// Every stream and where it stands.
    pub streams: std::collections::BTreeMap<String, SubState>,
    /// Sockets opened after the first.
    pub reconnects: u64,
    /// Client messages sent within the venue's current window.
    pub msgs_in_window: usize,
    /// The venue's limit for that window.
    pub msg_limit: usize,
    /// Repeated messages dropped (rotation overlaps, venue re-sends).
    pub duplicates: u64,
    /// Data frames for streams this connection did not subscribe, dropped
    /// (the first on each socket is also reported as an error event).
    pub unsolicited: u64,
    /// Time from each lost socket to the first data on the next.
    pub recovery: crate::recovery::RecoveryStats,
    /// Streams whose messages carry sequence numbers the engine checks (so
    /// any loss on them is a counted or chained gap); on the others, only
    /// socket changes can reveal loss (an unknown gap at each).
    pub sequenced: std::collections::BTreeSet<String>,
}

#[derive(Debug)]
enum Command {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    Call(Call),
    Close,
}

/// A request whose answer goes back to its caller ([`Connection::call`]).
struct Call {
    /// Writes the request frame with the id the connection gives it.
    build: Box<dyn FnOnce(u64) -> String + Send>,
    reply: oneshot::Sender<Result<String, CallError>>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Call")
    }
}

/// Requests a connection holds in flight for callers; more are refused with
/// [`CallError::Busy`].
pub const MAX_CALLS_IN_FLIGHT: usize = 1024;

/// Why a [`Connection::call`] has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No authenticated socket is open now: nothing was sent.
    #[error("not sent: the connection is not open and authenticated now")]
    NotReady,
    /// Too many requests are waiting for answers: nothing was sent.
    #[error("not sent: {MAX_CALLS_IN_FLIGHT} requests are already waiting for answers")]
    Busy,
    /// The connection has closed for good: nothing was sent.
    #[error("not sent: the connection has closed")]
    Closed,
    /// The request was handed to the socket, and the socket was lost (or
    /// replaced) before the answer came: the venue may or may not have
    /// carried it out.
    #[error(
        "outcome unknown: the connection dropped before the venue answered (it may or may not have been carried out)"
    )]
    ConnectionLost,
    /// No answer in time: the venue may or may not have carried it out.
    #[error("outcome unknown: no answer within {0:?} (it may or may not have been carried out)")]
    TimedOut(Duration),
}

impl CallError {
    /// Whether the request may have reached the venue (its outcome is
    /// unknown), as opposed to certainly not sent.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, CallError::ConnectionLost | CallError::TimedOut(_))
    }
}

/// Why a command was not delivered without waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryCommandError {
    /// The command channel is full now; try again later.
    #[error("the connection's command channel is full")]
    Full,
    /// The actor has ended.
    #[error("the connection has closed")]
    Closed,
}

/// The actor has ended; the command could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection has closed")]
pub struct ConnectionClosed;

/// A handle to a connection actor. Dropping it closes the connection.
#[derive(Debug)]
pub struct Connection {
    cmds: mpsc::Sender<Command>,
    state: watch::Receiver<ConnSnapshot>,
    task: Option<JoinHandle<()>>,
}

impl Connection {
    /// Starts a connection that subscribes `streams` and keeps them.
    pub fn spawn<T: Transport>(
        transport: T,
        venue: Arc<dyn VenueRules>,
        cfg: ConnectionConfig,
        streams: Vec<String>,
    ) -> Result<(Connection, EventReceiver), BackoffConfigError> {
        let (tx, rx) = queue_bounded(cfg.queue_capacity, cfg.queue_bytes, cfg.overflow);
        let conn = Connection::spawn_with(transport, venue, cfg, streams, tx)?;
        Ok((conn, rx))
    }

    /// Starts a connection whose events go to an existing (shared) queue.
    pub fn spawn_with<T: Transport>(
        transport: T,
        venue: Arc<dyn VenueRules>,
        cfg: ConnectionConfig,
        streams: Vec<String>,
        events: EventSender,
    ) -> Result<Connection, BackoffConfigError> {
        let backoff = Backoff::new(cfg.backoff.clone())?;
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let mut desired = Vec::new();
        for s in streams {
            if !desired.contains(&s) {
                desired.push(s);
            }
        }
        let snapshot = ConnSnapshot {
            id: cfg.id,
            state: State::Connecting,
            epoch: 0,
            url: cfg.spec.shown_url(),
            streams: desired.iter().map(|s| (s.clone(), SubState::Pending)).collect(),
            reconnects: 0,
            msgs_in_window: 0,
            msg_limit: venue.limits().max_msgs,
            duplicates: 0,
            unsolicited: 0,
            recovery: Default::default(),
            sequenced: Default::default(),
        };
        let mut seq = SeqTracker::default();
        for s in &desired {
            seq.track(s);
        }
        let (state_tx, state_rx) = watch::channel(snapshot);
        let actor = Actor {
            // Each connection draws its own jitter: a shared seed must not make a
            // pool's connections reconnect in lockstep.
            entropy: cfg
                .seed
                .map(|seed| Seeded::new(seed ^ cfg.id.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
                .unwrap_or_else(Seeded::from_os),
            transport,
            venue,
            cfg,
            events,
            cmds: cmd_rx,
            desired,
            next_id: 0,
            epoch: 0,
            seq,
            backoff,
            state: state_tx,
            ever_active: false,
            lost_at: None,
            session_active: false,
            session_data: false,
            unsolicited_epoch: 0,
        };
        let task = tokio::spawn(actor.run());
        Ok(Connection { cmds: cmd_tx, state: state_rx, task: Some(task) })
    }

    /// Adds streams to the desired set (kept across reconnects).
    pub async fn subscribe(&self, streams: Vec<String>) -> Result<(), ConnectionClosed> {
        self.cmds.send(Command::Subscribe(streams)).await.map_err(|_| ConnectionClosed)
    }

    /// Removes streams from the desired set.
    pub async fn unsubscribe(&self, streams: Vec<String>) -> Result<(), ConnectionClosed> {
        self.cmds.send(Command::Unsubscribe(streams)).await.map_err(|_| ConnectionClosed)
    }

    /// Sends one request frame, written by `build` with the id the connection
    /// gives it, on the authenticated socket, and returns the answer frame the
    /// venue's rules matched to that id ([`Inbound::Ack`],
    /// [`Inbound::Rejected`] or [`Inbound::AckPartial`] with it): success and
    /// refusal alike, for the caller to read. Frames are paced with the rest
    /// under the venue's message limit.
    ///
    /// Nothing is retried: once handed to the socket, a lost connection or
    /// a missing answer is [`CallError::ConnectionLost`] or
    /// [`CallError::TimedOut`], whose outcome is unknown.
    pub async fn call(
        &self,
        build: impl FnOnce(u64) -> String + Send + 'static,
        timeout: Duration,
    ) -> Result<String, CallError> {
        let (reply, answer) = oneshot::channel();
        self.cmds.send(Command::Call(Call { build: Box::new(build), reply })).await.map_err(|_| CallError::Closed)?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(r)) => r,
            // The actor dropped the call with its socket.
            Ok(Err(_)) => Err(CallError::ConnectionLost),
            Err(_) => Err(CallError::TimedOut(timeout)),
        }
    }

    /// Restarts streams (unsubscribe, then subscribe, as one pair of
    /// commands) without waiting: `Err(TryCommandError::Full)` when the
    /// command channel has no room for both now, so a consumer that is also
    /// the only reader of the event queue never blocks on an actor that is
    /// blocked on that queue. Nothing is sent unless both fit.
    pub fn try_restart(&self, streams: Vec<String>) -> Result<(), TryCommandError> {
        match self.cmds.try_reserve_many(2) {
            Ok(mut permits) => {
                if let (Some(a), Some(b)) = (permits.next(), permits.next()) {
                    a.send(Command::Unsubscribe(streams.clone()));
                    b.send(Command::Subscribe(streams));
                }
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(TryCommandError::Full),
            Err(mpsc::error::TrySendError::Closed(())) => Err(TryCommandError::Closed),
        }
    }

    /// The current lifecycle state.
    pub fn state(&self) -> State {
        self.state.borrow().state
    }

    /// Waits until the lifecycle state satisfies `ready`; `false` when the
    /// actor ended first.
    pub async fn wait_state(&self, mut ready: impl FnMut(State) -> bool) -> bool {
        let mut rx = self.state.clone();
        rx.wait_for(|s| ready(s.state)).await.is_ok()
    }

    /// The latest snapshot: state, epoch, URL, each stream's subscription state,
    /// and message-rate usage.
    pub fn snapshot(&self) -> ConnSnapshot {
        self.state.borrow().clone()
    }

    /// Closes with a close frame (1000) and waits up to 2 s for the task to end.
    /// Returns `false` if it had to be aborted.
    pub async fn close(mut self) -> bool {
        let _ = self.cmds.try_send(Command::Close);
        let Some(task) = self.task.take() else { return true };
        let abort = task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(2), task).await {
            Ok(_) => true,
            Err(_) => {
                abort.abort();
                false
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The actor also stops when this handle's command sender is dropped;
        // the explicit close just makes it prompt.
        let _ = self.cmds.try_send(Command::Close);
    }
}

/// A message from the rotation candidate waiting for the switch.
#[derive(Debug)]
struct Buffered {
    stream: String,
    seq: crate::venue::Seq,
    payload: String,
}

/// Candidate messages held before a forced switch: at most this many…
const CANDIDATE_BUFFER: usize = 16_384;
/// …and at most this many bytes of frames (whichever comes first). A forced
/// switch delivers what is held; the sequence tracker reports any gap.
pub const CANDIDATE_BUFFER_BYTES: usize = 8 << 20;

/// How a session ended.
#[derive(Debug)]
enum End {
    /// The user closed the connection.
    Closed,
    /// The socket was lost; reconnect.
    Lost(String),
    /// Credentials refused; stop.
    AuthFailed,
    /// Nobody listens any more; stop.
    ConsumerGone,
}

/// A subscribe or unsubscribe request in flight on one socket.
#[derive(Debug)]
struct Request {
    op: RequestOp,
    /// Its streams the venue has not answered for yet.
    streams: Vec<String>,
    /// When it was queued.
    at: Instant,
    /// Unanswered past the ack timeout, and reported. Kept so that a late
    /// answer still settles it and answers without an id keep their order.
    overdue: bool,
}

/// One socket and what is in flight on it.
struct Link<S> {
    ws: S,
    epoch: u64,
    outbox: VecDeque<String>,
    pacer: Pacer,
    /// Requests in flight by id; ids grow in the order requests are queued
    /// and sent, so iteration is oldest first.
    requests: BTreeMap<u64, Request>,
    /// Callers' requests in flight by id ([`Connection::call`]); dropped
    /// with the socket, which tells each caller its outcome is unknown.
    calls: BTreeMap<u64, oneshot::Sender<Result<String, CallError>>>,
    /// When to authenticate again, before the session's token expires
    /// ([`VenueRules::auth_lifetime`]).
    reauth_at: Option<Instant>,
    authed: bool,
    active: bool,
    /// A rotation candidate (not yet the primary).
    candidate: bool,
    opened: Instant,
    last_rx: Instant,
    next_ping: Option<Instant>,
}

impl<S> Link<S> {
    /// Queues a request frame and records it as in flight.
    fn request(&mut self, id: u64, op: RequestOp, frame: String, streams: Vec<String>) {
        self.outbox.push_back(frame);
        self.requests.insert(id, Request { op, streams, at: Instant::now(), overdue: false });
    }

    /// Whether a subscribe request still holds activation back (unanswered
    /// and not yet overdue).
    fn awaiting(&self) -> bool {
        self.requests.values().any(|r| r.op == RequestOp::Subscribe && !r.overdue)
    }

    /// The oldest request (of `op`, when given) still waiting for `stream`.
    fn oldest_with(&self, stream: &str, op: Option<RequestOp>) -> Option<u64> {
        self.requests
            .iter()
            .find(|(_, r)| op.is_none_or(|o| o == r.op) && r.streams.iter().any(|s| s == stream))
            .map(|(id, _)| *id)
    }

    /// Puts the venue's client ping at the front of the outbox and schedules the next.
    fn queue_ping(&mut self, hb: &crate::venue::Heartbeat) {
        self.next_ping = Some(Instant::now() + hb.interval);
        match &hb.client_ping {
            ClientPing::Text(t) => self.outbox.push_front(t.clone()),
            ClientPing::WsPing(p) => self.outbox.push_front(format!("{PING_MARK}{}", String::from_utf8_lossy(p))),
            ClientPing::None => {}
        }
    }
}

impl<S> std::fmt::Debug for Link<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("epoch", &self.epoch).field("active", &self.active).finish_non_exhaustive()
    }
}

struct Actor<T: Transport> {
    transport: T,
    venue: Arc<dyn VenueRules>,
    cfg: ConnectionConfig,
    events: EventSender,
    cmds: mpsc::Receiver<Command>,
    desired: Vec<String>,
    next_id: u64,
    epoch: u64,
    seq: SeqTracker,
    backoff: Backoff,
    entropy: Seeded,
    state: watch::Sender<ConnSnapshot>,
    ever_active: bool,
    /// When the last socket was lost, until data flows on a new one.
    lost_at: Option<Instant>,
    /// The current session reached Active.
    session_active: bool,
    /// The current session delivered data.
    session_data: bool,
    /// The socket whose unsolicited data was last reported.
    unsolicited_epoch: u64,
}

/// What handling one message asks the session to do.
enum Flow {
    Continue,
    End(End),
    /// Sequenced data from the rotation candidate, held until it overlaps the primary.
    Candidate(Buffered),
    /// Start a rotation now (shutdown notice).
    Rotate,
    /// The rotation candidate delivers unsequenced data (taken from the primary).
    Unsequenced,
}

impl<T: Transport> Actor<T> {
    async fn emit(&mut self, epoch: u64, kind: EventKind) -> bool {
        self.events.send(Event { conn: self.cfg.id, epoch, kind }).await.is_ok()
    }

    fn set_state(&mut self, s: State) {
        self.state.send_modify(|snap| snap.state = s);
    }

    /// Records a stream's subscription state (`None` removes it).
    fn set_sub(&mut self, stream: &str, to: Option<SubState>) {
        self.state.send_modify(|snap| match to {
            Some(st) => {
                snap.streams.insert(stream.to_string(), st);
            }
            None => {
                snap.streams.remove(stream);
                snap.sequenced.remove(stream);
            }
        });
    }

    fn sub_state(&self, stream: &str) -> Option<SubState> {
        self.state.borrow().streams.get(stream).copied()
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Applies a command while no socket is open. `false` means stop.
    fn apply_offline(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            Some(Command::Subscribe(s)) => {
                for x in s {
                    if !self.desired.contains(&x) {
                        self.set_sub(&x, Some(SubState::Pending));
                        self.seq.track(&x);
                        self.desired.push(x);
                    }
                }
                true
            }
            Some(Command::Unsubscribe(s)) => {
                self.desired.retain(|x| !s.contains(x));
                for x in &s {
                    self.seq.forget(x);
                    self.set_sub(x, None);
                }
                true
            }
            Some(Command::Call(c)) => {
                let _ = c.reply.send(Err(CallError::NotReady));
                true
            }
            Some(Command::Close) | None => false,
        }
    }

    async fn run(mut self) {
        'outer: loop {
            self.set_state(State::Connecting);
            if let Some(budget) = self.cfg.attempts.clone() {
                let acquire = budget.acquire();
                tokio::pin!(acquire);
                loop {
                    tokio::select! {
                        _ = &mut acquire => break,
                        c = self.cmds.recv() => if !self.apply_offline(c) { break 'outer },
                    }
                }
            }
            let (spec, carried) = self.connect_spec();
            let transport = self.transport.clone();
            let connect = transport.connect(&spec);
            tokio::pin!(connect);
            let result = loop {
                tokio::select! {
                    r = &mut connect => break r,
                    c = self.cmds.recv() => if !self.apply_offline(c) { break 'outer },
                }
            };
            let reason = match result {
                Ok(ws) => {
                    self.epoch += 1;
                    if self.ever_active {
                        self.state.send_modify(|s| s.reconnects += 1);
                        self.seq.new_socket();
                    }
                    self.session_active = false;
                    self.session_data = false;
                    let url = spec.shown_url();
                    self.state.send_modify(|s| {
                        s.epoch = self.epoch;
                        s.url = url;
                    });
                    let link = self.new_link(ws, false, carried);
                    match self.session(link).await {
                        End::Closed | End::ConsumerGone | End::AuthFailed => break 'outer,
                        End::Lost(reason) => {
                            // A session that reached Active and delivered data
                            // was no failed attempt: retry at once (the shared
                            // attempt budget still bounds the venue's load).
                            if self.session_active && self.session_data {
                                self.backoff.reset();
                            }
                            reason
                        }
                    }
                }
                Err(e) if !e.is_retryable() => {
                    let epoch = self.epoch;
                    self.emit(epoch, EventKind::GaveUp { reason: e.to_string() }).await;
                    break 'outer;
                }
                Err(e) => e.to_string(),
            };
            let epoch = self.epoch;
            self.lost_at.get_or_insert_with(Instant::now);
            if !self.emit(epoch, EventKind::Disconnected { reason }).await {
                break;
            }
            self.set_state(State::Reconnecting);
            let Some(delay) = self.backoff.next_delay(&mut self.entropy) else {
                self.emit(epoch, EventKind::GaveUp { reason: "max reconnect retries reached".into() }).await;
                break;
            };
            let wake = Instant::now() + delay;
            loop {
                tokio::select! {
                    _ = sleep_until(wake) => break,
                    c = self.cmds.recv() => if !self.apply_offline(c) { break 'outer },
                }
            }
        }
        self.set_state(State::Closed);
    }

    /// The connect spec for the current desired set, and how many of its
    /// streams the URL carries.
    fn connect_spec(&self) -> (ConnectSpec, Vec<String>) {
        let mut spec = self.cfg.spec.clone();
        // The venue's frame limit, unless the configuration is stricter.
        let max = self.venue.max_frame_bytes();
        spec.max_frame_bytes = spec.max_frame_bytes.min(max);
        spec.max_message_bytes = spec.max_message_bytes.min(max);
        let (url, preset) = self.venue.connect_url(&spec.url, &self.desired);
        spec.url = url;
        (spec, self.desired[..preset.min(self.desired.len())].to_vec())
    }

    /// Sends a caller's request on `link` if it is authenticated, else
    /// refuses it at once (nothing sent).
    fn start_call(&mut self, link: &mut Link<T::Stream>, call: Call) {
        if !link.authed || link.candidate {
            let _ = call.reply.send(Err(CallError::NotReady));
            return;
        }
        // Callers that gave up (timed out) free their slots.
        link.calls.retain(|_, r| !r.is_closed());
        if link.calls.len() >= MAX_CALLS_IN_FLIGHT {
            let _ = call.reply.send(Err(CallError::Busy));
            return;
        }
        let id = self.id();
        link.outbox.push_back((call.build)(id));
        link.calls.insert(id, call.reply);
    }

    fn new_link(&mut self, ws: T::Stream, candidate: bool, carried: Vec<String>) -> Link<T::Stream> {
        let limits = self.venue.limits();
        let hb = self.venue.heartbeat();
        let now = Instant::now();
        // Leave one message of every window for the pongs the transport sends itself.
        let budget = limits.max_msgs.saturating_sub(1).max(1);
        let mut link = Link {
            ws,
            epoch: self.epoch,
            outbox: VecDeque::new(),
            pacer: Pacer::spaced(budget, limits.msg_window),
            requests: BTreeMap::new(),
            calls: BTreeMap::new(),
            reauth_at: None,
            authed: false,
            active: false,
            opened: now,
            last_rx: now,
            next_ping: (hb.client_ping != ClientPing::None).then(|| now + hb.interval),
            candidate,
        };
        let mut next = self.next_id;
        let frames = self.venue.on_connect(&mut || {
            next += 1;
            next
        });
        self.next_id = next;
        link.outbox.extend(frames);
        let auth_id = self.id();
        match self.venue.auth_request(auth_id) {
            Some(req) => {
                link.outbox.push_back(req);
                if !candidate {
                    self.set_state(State::Authenticating);
                }
            }
            None => {
                link.authed = true;
                self.queue_subscriptions(&mut link, &carried);
            }
        }
        link
    }

    /// Subscribes the desired set on a new socket whose URL carried `carried`.
    /// Commands may have changed the set while connecting: streams the URL
    /// carried but no longer wanted are unsubscribed, the rest subscribed.
    fn queue_subscriptions(&mut self, link: &mut Link<T::Stream>, carried: &[String]) {
        let desired = self.desired.clone();
        let rest: Vec<String> = desired.iter().filter(|s| !carried.contains(s)).cloned().collect();
        let unwanted: Vec<String> = carried.iter().filter(|s| !desired.contains(s)).cloned().collect();
        if !link.candidate {
            // A new socket starts from nothing: what was being unsubscribed is gone,
            // what the URL carries is confirmed, the rest is pending again.
            self.state.send_modify(|snap| {
                snap.streams.retain(|_, st| *st != SubState::PendingUnsubscribe);
                for s in carried.iter().filter(|s| desired.contains(s)) {
                    snap.streams.insert(s.clone(), SubState::Confirmed);
                }
                for s in &rest {
                    snap.streams.insert(s.clone(), SubState::Pending);
                }
            });
        }
        for batch in batches(self.venue.as_ref(), &unwanted, self.next_id + 1) {
            let id = self.id();
            link.request(id, RequestOp::Unsubscribe, self.venue.encode_unsubscribe(id, &batch), batch);
        }
        for batch in batches(self.venue.as_ref(), &rest, self.next_id + 1) {
            let id = self.id();
            link.request(id, RequestOp::Subscribe, self.venue.encode_subscribe(id, &batch), batch);
        }
        if !link.candidate {
            self.set_state(State::Subscribing);
        }
    }

    /// Sends whatever the pacer allows now; returns when the next frame may go.
    async fn flush(&mut self, link: &mut Link<T::Stream>) -> Result<Option<Instant>, TransportError> {
        while let Some(frame) = link.outbox.front() {
            match link.pacer.try_acquire() {
                Ok(()) => {
                    let msg = if let Some(p) = frame.strip_prefix(PING_MARK) {
                        WsMsg::Ping(p.as_bytes().to_vec())
                    } else {
                        WsMsg::Text(frame.clone())
                    };
                    link.outbox.pop_front();
                    link.ws.send(msg).await?;
                    if !link.candidate {
                        let used = link.pacer.used();
                        self.state.send_modify(|s| s.msgs_in_window = used);
                    }
                }
                Err(at) => return Ok(Some(at)),
            }
        }
        Ok(None)
    }

    async fn activate(&mut self, link: &mut Link<T::Stream>) -> bool {
        if link.active || link.awaiting() || !link.authed {
            return true;
        }
        link.active = true;
        if link.candidate {
            return true; // it reports when it takes over
        }
        self.set_state(State::Active);
        self.session_active = true;
        let used = link.pacer.used();
        self.state.send_modify(|s| s.msgs_in_window = used);
        let reconnected = self.ever_active;
        let kind = if reconnected { EventKind::Reconnected } else { EventKind::Connected };
        self.ever_active = true;
        if !self.emit(link.epoch, kind).await {
            return false;
        }
        if reconnected {
            // Sequenced streams report exact gaps with their next message.
            return self.unsequenced_gaps(link.epoch).await;
        }
        true
    }

    /// Streams whose sequence the tracker cannot follow (no numbers, or none
    /// seen yet) may have lost data across a socket change without any way
    /// to tell: say so once per stream (a gap of unknown extent) rather than
    /// stay silent. `false` when the consumer has gone.
    async fn unsequenced_gaps(&mut self, epoch: u64) -> bool {
        let unsequenced: Vec<String> = self.desired.iter().filter(|s| self.seq.last(s).is_none()).cloned().collect();
        for stream in unsequenced {
            let gap = EventKind::Gap { stream, from: 0, to: 0, missing: crate::event::Missing::Unknown };
            if !self.emit(epoch, gap).await {
                return false;
            }
        }
        true
    }

    /// Applies the venue's answer to (part of) a request of `op` on the socket
    /// of `epoch`: `accepted` streams are confirmed (subscribe) or gone
    /// (unsubscribe); `failed` ones were refused with `refusal`. Only the
    /// primary socket's answers move the subscription state. `false` when the
    /// consumer has gone.
    #[allow(clippy::too_many_arguments)]
    async fn settle_request(
        &mut self,
        epoch: u64,
        primary: bool,
        op: RequestOp,
        accepted: Vec<String>,
        failed: Vec<String>,
        refusal: Option<(i64, String)>,
        raw: &str,
    ) -> bool {
        if !primary {
            return true;
        }
        let (code, msg) = refusal.unwrap_or_default();
        match op {
            RequestOp::Subscribe => {
                for s in &accepted {
                    // A late ack never revives a stream being unsubscribed.
                    if matches!(self.sub_state(s), Some(SubState::Pending | SubState::Unanswered)) {
                        self.set_sub(s, Some(SubState::Confirmed));
                    }
                }
                self.desired.retain(|s| !failed.contains(s));
                for s in &failed {
                    self.seq.forget(s);
                    self.set_sub(s, Some(SubState::Failed));
                }
                let mut ok = true;
                for stream in failed {
                    ok &= self.emit(epoch, EventKind::SubscriptionFailed { stream, code, msg: msg.clone() }).await;
                }
                ok
            }
            RequestOp::Unsubscribe => {
                for s in accepted.iter().chain(&failed) {
                    if self.sub_state(s) == Some(SubState::PendingUnsubscribe) {
                        self.set_sub(s, None);
                    }
                }
                if failed.is_empty() {
                    return true;
                }
                // No longer wanted either way: reported, and forgotten.
                let msg = format!("unsubscribe refused (venue error {code}: {msg}): {}", failed.join(","));
                self.emit(epoch, EventKind::Error { msg, raw: raw.to_string() }).await
            }
        }
    }

    /// An answer without request id or streams: settles the oldest request of
    /// `op` on `link` (FIFO). With `op` unknown it must be unambiguous: only
    /// one kind of request pending. `false` when the consumer has gone.
    async fn ack_oldest(
        &mut self,
        link: &mut Link<T::Stream>,
        primary: bool,
        op: Option<RequestOp>,
        raw: &str,
    ) -> bool {
        let epoch = link.epoch;
        let pending = |o: RequestOp| link.requests.values().any(|r| r.op == o);
        let op = match (op, pending(RequestOp::Subscribe), pending(RequestOp::Unsubscribe)) {
            (Some(op), _, _) => op,
            (None, true, true) => {
                let msg = "an answer with neither request id nor streams is ambiguous: \
                           subscribe and unsubscribe requests are both pending"
                    .to_string();
                return self.emit(epoch, EventKind::Error { msg, raw: raw.to_string() }).await;
            }
            (None, true, false) => RequestOp::Subscribe,
            (None, false, true) => RequestOp::Unsubscribe,
            (None, false, false) => return self.emit(epoch, EventKind::Unknown { raw: raw.to_string() }).await,
        };
        let Some(id) = link.requests.iter().find(|(_, r)| r.op == op).map(|(id, _)| *id) else {
            // Nothing of that kind in flight: a stray or repeated answer.
            return self.emit(epoch, EventKind::Unknown { raw: raw.to_string() }).await;
        };
        let req = link.requests.remove(&id).expect("found above");
        self.settle_request(epoch, primary, op, req.streams, Vec::new(), None, raw).await
    }

    /// An answer confirming `streams` by name: each settles in the oldest
    /// request (of `op`, when given) still waiting for it; a request is done
    /// once all of its streams are. `false` when the consumer has gone.
    async fn ack_by_name(
        &mut self,
        link: &mut Link<T::Stream>,
        primary: bool,
        op: Option<RequestOp>,
        streams: Vec<String>,
        raw: &str,
    ) -> bool {
        let epoch = link.epoch;
        let (mut subscribed, mut unsubscribed) = (Vec::new(), Vec::new());
        for s in streams {
            let Some(id) = link.oldest_with(&s, op) else { continue };
            let Some(req) = link.requests.get_mut(&id) else { continue };
            req.streams.retain(|x| *x != s);
            let kind = req.op;
            if req.streams.is_empty() {
                link.requests.remove(&id);
            }
            match kind {
                RequestOp::Subscribe => subscribed.push(s),
                RequestOp::Unsubscribe => unsubscribed.push(s),
            }
        }
        if subscribed.is_empty() && unsubscribed.is_empty() {
            // None of them in flight here: a stray or repeated answer.
            return self.emit(epoch, EventKind::Unknown { raw: raw.to_string() }).await;
        }
        self.settle_request(epoch, primary, RequestOp::Subscribe, subscribed, Vec::new(), None, raw).await
            && self.settle_request(epoch, primary, RequestOp::Unsubscribe, unsubscribed, Vec::new(), None, raw).await
    }

    /// A refusal naming `streams` without a request id: each request holding
    /// one of them (the oldest, per stream) is answered; the streams named
    /// failed, its others count as accepted. `false` when the consumer has gone.
    async fn reject_by_name(
        &mut self,
        link: &mut Link<T::Stream>,
        primary: bool,
        code: i64,
        msg: String,
        streams: Vec<String>,
        raw: &str,
    ) -> bool {
        let epoch = link.epoch;
        let mut ids: Vec<u64> = streams.iter().filter_map(|s| link.oldest_with(s, None)).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            let msg = format!("venue error {code}: {msg}");
            return self.emit(epoch, EventKind::Error { msg, raw: raw.to_string() }).await;
        }
        let mut ok = true;
        for id in ids {
            let Some(req) = link.requests.remove(&id) else { continue };
            let (failed, accepted): (Vec<String>, Vec<String>) =
                req.streams.into_iter().partition(|s| streams.contains(s));
            let refusal = Some((code, msg.clone()));
            ok &= self.settle_request(epoch, primary, req.op, accepted, failed, refusal, raw).await;
        }
        ok
    }

    /// Reports every request unanswered past the ack timeout, once, and stops
    /// waiting for it: a subscribe's streams become [`SubState::Unanswered`]
    /// (assumed subscribed), an unsubscribe's are forgotten. The request stays
    /// recorded as overdue, so a late answer still settles it and answers
    /// without an id keep their order. `false` when the consumer has gone.
    async fn expire_requests(&mut self, link: &mut Link<T::Stream>, candidate: Option<&mut Link<T::Stream>>) -> bool {
        let timeout = self.cfg.ack_timeout;
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut mark = |l: &mut Link<T::Stream>| {
            for (id, r) in l.requests.iter_mut() {
                if !r.overdue && r.at + timeout <= now {
                    r.overdue = true;
                    expired.push((l.epoch, l.candidate, *id, r.op, r.streams.clone()));
                }
            }
        };
        mark(link);
        let mut candidate = candidate;
        if let Some(c) = candidate.as_mut() {
            mark(c);
        }
        for (epoch, on_candidate, id, op, streams) in expired {
            if !on_candidate {
                for s in &streams {
                    match (op, self.sub_state(s)) {
                        (RequestOp::Subscribe, Some(SubState::Pending)) => self.set_sub(s, Some(SubState::Unanswered)),
                        (RequestOp::Unsubscribe, Some(SubState::PendingUnsubscribe)) => self.set_sub(s, None),
                        _ => {}
                    }
                }
            }
            let (what, assumed) = match op {
                RequestOp::Subscribe => ("subscribe", "subscribed"),
                RequestOp::Unsubscribe => ("unsubscribe", "unsubscribed"),
            };
            let on = if on_candidate { " on the replacement socket" } else { "" };
            let msg = format!(
                "no reply to request {id} ({what}){on} within {timeout:?}; assuming {assumed}: {}",
                streams.join(",")
            );
            if !self.emit(epoch, EventKind::Error { msg, raw: String::new() }).await {
                return false;
            }
        }
        if !self.activate(link).await {
            return false;
        }
        if let Some(c) = candidate {
            self.activate(c).await;
        }
        true
    }

    /// Handles one message from `link`. `primary` is false for a rotation candidate.
    async fn on_msg(
        &mut self,
        link: &mut Link<T::Stream>,
        msg: Option<Result<WsMsg, TransportError>>,
        primary: bool,
    ) -> Flow {
        // The caller has set `link.last_rx` (once per batch of ready frames).
        let text = match msg {
            None => return Flow::End(End::Lost("socket closed".into())),
            Some(Err(e)) => return Flow::End(End::Lost(e.to_string())),
            Some(Ok(WsMsg::Ping(_))) => {
                // The transport answered it; count the pong against the venue's limit.
                link.pacer.record();
                return Flow::Continue;
            }
            Some(Ok(WsMsg::Close(c))) => {
                let why =
                    c.map(|(code, r)| format!("server closed ({code} {r})")).unwrap_or_else(|| "server closed".into());
                return Flow::End(End::Lost(why));
            }
            Some(Ok(WsMsg::Pong(_) | WsMsg::Binary(_))) => return Flow::Continue,
            Some(Ok(WsMsg::Text(t))) => t,
        };
        let epoch = link.epoch;
        // The answer borrows the frame only, so the venue need not be cloned.
        let inbound = self.venue.classify(&text);
        if let Inbound::Ack { id } | Inbound::Rejected { id: Some(id), .. } | Inbound::AckPartial { id, .. } = &inbound
            && let Some(reply) = link.calls.remove(id)
        {
            // A caller's request: the answer, success or refusal, is theirs to read.
            let _ = reply.send(Ok(text));
            return Flow::Continue;
        }
        let ok = match inbound {
            Inbound::Ack { id } => {
                let ok = match link.requests.remove(&id) {
                    Some(req) => {
                        self.settle_request(epoch, primary, req.op, req.streams, Vec::new(), None, &text).await
                    }
                    None => true, // answered already, or not a request of ours
                };
                ok && self.activate(link).await
            }
            Inbound::AckPartial { id, streams } => {
                let ok = match link.requests.remove(&id) {
                    Some(req) if req.op == RequestOp::Subscribe => {
                        let (accepted, failed): (Vec<String>, Vec<String>) =
                            req.streams.into_iter().partition(|s| streams.contains(s));
                        let refusal = (!failed.is_empty())
                            .then(|| (0, "the venue did not take the channel (its answer lists the rest)".to_string()));
                        self.settle_request(epoch, primary, req.op, accepted, failed, refusal, &text).await
                    }
                    // A stream the venue did not remove was not subscribed there.
                    Some(req) => {
                        self.settle_request(epoch, primary, req.op, req.streams, Vec::new(), None, &text).await
                    }
                    None => true,
                };
                ok && self.activate(link).await
            }
            Inbound::AckStreams { op, streams } => {
                let ok = if streams.is_empty() {
                    self.ack_oldest(link, primary, op, &text).await
                } else {
                    self.ack_by_name(link, primary, op, streams, &text).await
                };
                ok && self.activate(link).await
            }
            Inbound::Rejected { id: Some(id), code, msg, streams } if link.requests.contains_key(&id) => {
                let req = link.requests.remove(&id).expect("checked above");
                // Only the streams the venue names failed, if it names any.
                let (failed, accepted): (Vec<String>, Vec<String>) =
                    req.streams.into_iter().partition(|s| streams.is_empty() || streams.contains(s));
                let ok = self.settle_request(epoch, primary, req.op, accepted, failed, Some((code, msg)), &text).await;
                ok && self.activate(link).await
            }
            Inbound::Rejected { id: None, code, msg, streams } if !streams.is_empty() => {
                let ok = self.reject_by_name(link, primary, code, msg, streams, &text).await;
                ok && self.activate(link).await
            }
            Inbound::Rejected { code, msg, .. } => {
                self.emit(epoch, EventKind::Error { msg: format!("venue error {code}: {msg}"), raw: text.clone() })
                    .await
            }
            Inbound::AuthOk => {
                if let Some(life) = self.venue.auth_lifetime(&text) {
                    // Renew at four fifths of the lifetime, with at least 1 s to spare.
                    let early = (life / 5).max(Duration::from_secs(1)).min(life);
                    link.reauth_at = Some(Instant::now() + (life - early));
                }
                if link.authed {
                    // A renewal on a live socket: nothing else changes.
                    return Flow::Continue;
                }
                link.authed = true;
                // URL-carried streams arrive only after authentication on private sockets;
                // subscribe everything explicitly there.
                self.queue_subscriptions(link, &[]);
                self.activate(link).await
            }
            Inbound::AuthFailed { msg } => {
                self.emit(epoch, EventKind::AuthFailed { msg }).await;
                return Flow::End(End::AuthFailed);
            }
            Inbound::Pong => true,
            Inbound::Reply(frame) => {
                link.outbox.push_front(frame);
                true
            }
            Inbound::Data { stream, seq } => {
                if !primary {
                    // Until the switch, the primary delivers: unsequenced candidate data is
                    // dropped (the primary carries the same), sequenced data is held back.
                    return match seq {
                        Some(seq) => Flow::Candidate(Buffered { stream: stream.into_owned(), seq, payload: text }),
                        None if link.active => Flow::Unsequenced,
                        None => Flow::Continue,
                    };
                }
                // One lookup, no allocation: the tracker hands back the name it holds.
                let (verdict, name) = self.judge(&stream, seq, false);
                if !self.deliver(epoch, verdict, name, seq, text).await {
                    return Flow::End(End::ConsumerGone);
                }
                return Flow::Continue;
            }
            Inbound::Shutdown => return Flow::Rotate,
            Inbound::Unknown => self.emit(epoch, EventKind::Unknown { raw: text.clone() }).await,
            Inbound::Malformed(e) => self.emit(epoch, EventKind::Error { msg: e, raw: text.clone() }).await,
        };
        if ok { Flow::Continue } else { Flow::End(End::ConsumerGone) }
    }

    /// Runs a data message through the sequence tracker. `overlap`: held
    /// rotation data, expected to repeat delivered numbers. The name is the
    /// tracker's shared one, or (unsolicited) a copy of the frame's.
    fn judge(&mut self, stream: &str, seq: Option<crate::venue::Seq>, overlap: bool) -> (Verdict, StreamName) {
        let j = self.seq.judge_named(stream, seq, overlap);
        (j.verdict, j.name.ok_or_else(|| stream.to_string()))
    }

    /// Queues a judged data message. `false` when the consumer has gone.
    async fn deliver(
        &mut self,
        epoch: u64,
        verdict: Verdict,
        stream: StreamName,
        seq: Option<crate::venue::Seq>,
        payload: String,
    ) -> bool {
        let stream = match stream {
            Ok(shared) => shared,
            Err(name) => {
                debug_assert_eq!(verdict, Verdict::Unsolicited);
                return self.unsolicited(epoch, &name, payload).await;
            }
        };
        if self.seq.take_first_number() {
            self.state.send_modify(|s| {
                s.sequenced.insert(stream.to_string());
            });
        }
        match verdict {
            Verdict::Deliver => {}
            Verdict::Duplicate => {
                let n = self.seq.duplicates();
                self.state.send_modify(|s| s.duplicates = n);
                return true;
            }
            Verdict::Gap { from, to, missing } => {
                if !self.emit(epoch, EventKind::Gap { stream: stream.to_string(), from, to, missing }).await {
                    return false;
                }
            }
            Verdict::Unsolicited => return self.unsolicited(epoch, &stream, payload).await,
        }
        self.session_data = true;
        if let Some(at) = self.lost_at.take() {
            let took = at.elapsed();
            self.state.send_modify(|s| s.recovery.record(took));
        }
        self.emit(epoch, EventKind::Data { stream, payload, seq, received: SystemTime::now() }).await
    }

    /// Data of a stream this connection does not hold (never subscribed, or
    /// unsubscribed and still in flight): no state is made for it. Counted;
    /// the first of each socket is reported with its frame.
    async fn unsolicited(&mut self, epoch: u64, stream: &str, payload: String) -> bool {
        self.state.send_modify(|s| s.unsolicited += 1);
        if self.unsolicited_epoch == epoch {
            return true;
        }
        self.unsolicited_epoch = epoch;
        let msg = format!(
            "data for stream {stream:?}, which this connection did not subscribe, dropped \
             (further ones on this socket are only counted)"
        );
        self.emit(epoch, EventKind::Error { msg, raw: payload }).await
    }

    /// Whether the candidate's held data continues where the primary has got to
    /// on every stream, so switching loses and repeats nothing.
    fn overlapped(&self, buf: &VecDeque<Buffered>) -> bool {
        let mut seen: Vec<&str> = Vec::new();
        for b in buf {
            if seen.contains(&b.stream.as_str()) {
                continue;
            }
            seen.push(&b.stream);
            if let Some(last) = self.seq.last(&b.stream) {
                let joined = last + 1 >= b.seq.first || b.seq.prev.is_some_and(|p| last >= p);
                if !joined {
                    return false;
                }
            }
        }
        true
    }

    async fn close_link(&mut self, link: &mut Link<T::Stream>) {
        let _ = link.ws.send(WsMsg::Close(Some((1000, String::new())))).await;
        let deadline = Instant::now() + self.cfg.close_timeout;
        loop {
            tokio::select! {
                m = link.ws.recv() => match m {
                    Some(Ok(WsMsg::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
                _ = sleep_until(deadline) => return,
            }
        }
    }

    async fn session(&mut self, mut link: Link<T::Stream>) -> End {
        let hb = self.venue.heartbeat();
        let mut candidate: Option<Link<T::Stream>> = None;
        let mut connecting: Option<JoinHandle<Result<T::Stream, TransportError>>> = None;
        let mut rotate_at = self.cfg.rotate_after.map(|d| link.opened + d);
        let mut stable_at = Some(link.opened + self.backoff.config().reset_after);
        let mut held: VecDeque<Buffered> = VecDeque::new();
        let mut held_bytes = 0usize;
        let mut switch_deadline: Option<Instant> = None;
        let mut cand_unsequenced = false;
        let mut cand_carried: Vec<String> = Vec::new();
        let mut cand_url = String::new();
        if !link.awaiting() && link.authed && !self.activate(&mut link).await {
            return End::ConsumerGone;
        }
        let end = 'session: loop {
            let next_send = match self.flush(&mut link).await {
                Ok(t) => t,
                Err(e) => break End::Lost(e.to_string()),
            };
            let mut cand_send = None;
            if let Some(c) = candidate.as_mut() {
                match self.flush(c).await {
                    Ok(t) => cand_send = t,
                    Err(_) => candidate = None,
                }
            }
            // Switch to the candidate once it is subscribed and its held data joins
            // the primary's on every stream (or it waited too long / holds too much).
            let ready = candidate.as_ref().is_some_and(|c| c.active);
            if ready && switch_deadline.is_none() {
                switch_deadline = Some(Instant::now() + SWITCH_TIMEOUT);
            }
            let forced = switch_deadline.is_some_and(|d| Instant::now() >= d)
                || held.len() >= CANDIDATE_BUFFER
                || held_bytes >= CANDIDATE_BUFFER_BYTES;
            let joined = if held.is_empty() { cand_unsequenced } else { self.overlapped(&held) };
            if ready && (forced || self.desired.is_empty() || joined) {
                let Some(mut new) = candidate.take() else { continue };
                switch_deadline = None;
                cand_unsequenced = false;
                let epoch = new.epoch;
                let mut gone = false;
                held_bytes = 0;
                while let Some(b) = held.pop_front() {
                    let (verdict, name) = self.judge(&b.stream, Some(b.seq), true);
                    if !self.deliver(epoch, verdict, name, Some(b.seq), b.payload).await {
                        gone = true;
                        break;
                    }
                }
                if gone {
                    break End::ConsumerGone;
                }
                std::mem::swap(&mut link, &mut new);
                link.candidate = false;
                self.seq.switched();
                // `new` is now the old socket: close it without blocking the new one.
                let close_timeout = self.cfg.close_timeout;
                tokio::spawn(async move {
                    let _ = new.ws.send(WsMsg::Close(Some((1000, String::new())))).await;
                    let _ =
                        tokio::time::timeout(close_timeout, async { while let Some(Ok(_)) = new.ws.recv().await {} })
                            .await;
                });
                self.set_state(State::Active);
                let (epoch, url) = (link.epoch, cand_url.clone());
                self.state.send_modify(|s| {
                    s.epoch = epoch;
                    s.url = url;
                });
                rotate_at = self.cfg.rotate_after.map(|d| link.opened + d);
                stable_at = None;
                if !self.emit(link.epoch, EventKind::Rotated).await {
                    break End::ConsumerGone;
                }
                // Without sequence numbers nothing tells where the old
                // socket's unread frames and the new socket's first ones
                // meet: what may be lost or repeated is said, not hidden.
                if !self.unsequenced_gaps(link.epoch).await {
                    break End::ConsumerGone;
                }
                continue;
            }
            let wake = match (next_send, cand_send) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wake = match (wake, switch_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let idle_at = link.last_rx + hb.idle_timeout;
            let ack_timeout = self.cfg.ack_timeout;
            let ack_due = std::iter::once(&link)
                .chain(candidate.as_ref())
                .flat_map(|l| l.requests.values().filter(|r| !r.overdue).map(|r| r.at + ack_timeout))
                .min();
            // An auth request is answered or the socket is given up: a venue
            // that never answers would otherwise hold the connection in
            // Authenticating for ever (pings keep the idle timer quiet).
            let auth_due = (!link.authed).then(|| link.opened + ack_timeout);
            let cand_auth_due = candidate.as_ref().filter(|c| !c.authed).map(|c| c.opened + ack_timeout);
            let cand_idle = candidate.as_ref().map(|c| c.last_rx + hb.idle_timeout);
            let cand_idle = match (cand_idle, cand_auth_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let cand_ping = candidate.as_ref().and_then(|c| c.next_ping);
            let far = Instant::now() + Duration::from_secs(365 * 86400);
            tokio::select! {
                biased;
                c = self.cmds.recv() => match c {
                    Some(Command::Subscribe(s)) => {
                        let new: Vec<String> = s.into_iter().filter(|x| !self.desired.contains(x)).collect();
                        let mut uniq = Vec::new();
                        for x in new { if !uniq.contains(&x) { uniq.push(x); } }
                        self.desired.extend(uniq.iter().cloned());
                        for x in &uniq { self.set_sub(x, Some(SubState::Pending)); self.seq.track(x); }
                        for l in std::iter::once(&mut link).chain(candidate.as_mut()) {
                            if !l.authed { continue; }
                            for batch in batches(self.venue.as_ref(), &uniq, self.next_id + 1) {
                                let id = self.id();
                                l.request(id, RequestOp::Subscribe, self.venue.encode_subscribe(id, &batch), batch);
                            }
                        }
                    }
                    Some(Command::Unsubscribe(s)) => {
                        // Failed streams were never subscribed: forget them without a request.
                        for x in &s {
                            if self.sub_state(x) == Some(SubState::Failed) { self.set_sub(x, None); }
                        }
                        let gone: Vec<String> = s.into_iter().filter(|x| self.desired.contains(x)).collect();
                        self.desired.retain(|x| !gone.contains(x));
                        for x in &gone {
                            self.seq.forget(x);
                            self.set_sub(x, Some(SubState::PendingUnsubscribe));
                        }
                        for l in std::iter::once(&mut link).chain(candidate.as_mut()) {
                            if !l.authed || gone.is_empty() { continue; }
                            for batch in batches(self.venue.as_ref(), &gone, self.next_id + 1) {
                                let id = self.id();
                                l.request(id, RequestOp::Unsubscribe, self.venue.encode_unsubscribe(id, &batch), batch);
                            }
                        }
                        if !link.authed {
                            // Not subscribed on this socket yet: nothing to undo there.
                            for x in &gone { self.set_sub(x, None); }
                        }
                    }
                    Some(Command::Call(c)) => self.start_call(&mut link, c),
                    Some(Command::Close) | None => {
                        self.set_state(State::Closing);
                        if let Some(mut c) = candidate.take() { self.close_link(&mut c).await; }
                        self.close_link(&mut link).await;
                        break End::Closed;
                    }
                },
                m = link.ws.recv() => {
                    // Hot path: handle what the socket already holds (up to
                    // DRAIN frames) before going round the select again, whose
                    // timers and futures cost more than a data frame does.
                    let mut m = m;
                    let mut left = DRAIN;
                    // One clock read per batch: the idle deadline is tens of seconds.
                    link.last_rx = Instant::now();
                    loop {
                        match self.on_msg(&mut link, m, true).await {
                            Flow::Continue | Flow::Candidate(_) | Flow::Unsequenced => {}
                            Flow::End(e) => break 'session e,
                            Flow::Rotate => {
                                if connecting.is_none() && candidate.is_none() { rotate_at = Some(Instant::now()); }
                                break;
                            }
                        }
                        left -= 1;
                        // Stop for anything to send (a reply, a pong), or a command waiting.
                        if left == 0 || !link.outbox.is_empty() || !self.cmds.is_empty() {
                            break;
                        }
                        // `recv` is cancel-safe: a frame not ready now is read by the select.
                        match link.ws.recv().now_or_never() {
                            Some(next) => m = next,
                            None => break,
                        }
                    }
                    if left == 0 {
                        // More is waiting: let the consumer take what was
                        // queued before reading on (on a current-thread
                        // runtime it would otherwise wait for the whole
                        // backlog, which is latency, and the queue would
                        // grow to its capacity, which is memory).
                        tokio::task::yield_now().await;
                    }
                },
                m = recv_opt(&mut candidate) => {
                    let Some(c) = candidate.as_mut() else { continue };
                    c.last_rx = Instant::now();
                    match self.on_msg(c, m, false).await {
                        Flow::Continue | Flow::Rotate => {}
                        Flow::Candidate(b) => {
                            held_bytes += b.payload.len();
                            held.push_back(b);
                        }
                        Flow::Unsequenced => cand_unsequenced = true,
                        Flow::End(End::Lost(_)) => {
                            candidate = None;
                            held.clear();
                            held_bytes = 0;
                            switch_deadline = None;
                            cand_unsequenced = false;
                            rotate_at = Some(Instant::now() + Duration::from_secs(1));
                        }
                        Flow::End(e) => break e,
                    }
                },
                r = join_opt(&mut connecting) => {
                    connecting = None;
                    match r {
                        Some(Ok(ws)) => {
                            self.epoch += 1;
                            let mut c = self.new_link(ws, true, std::mem::take(&mut cand_carried));
                            if !c.awaiting() && c.authed { c.active = true; }
                            candidate = Some(c);
                        }
                        _ => rotate_at = Some(Instant::now() + Duration::from_secs(1)),
                    }
                },
                _ = sleep_until(wake.unwrap_or(far)), if wake.is_some() => {},
                _ = sleep_until(idle_at) => break End::Lost(format!("no frame for {:?}: connection stale", hb.idle_timeout)),
                _ = sleep_until(auth_due.unwrap_or(far)), if auth_due.is_some() => {
                    break End::Lost(format!("authentication unanswered after {ack_timeout:?}"));
                },
                _ = sleep_until(link.next_ping.unwrap_or(far)), if link.next_ping.is_some() => {
                    link.queue_ping(&hb);
                },
                _ = sleep_until(link.reauth_at.unwrap_or(far)), if link.reauth_at.is_some() => {
                    // The next answer sets the next time; a refusal ends the session.
                    link.reauth_at = None;
                    let id = self.id();
                    if let Some(req) = self.venue.auth_request(id) {
                        link.outbox.push_back(req);
                    }
                },
                _ = sleep_until(cand_idle.unwrap_or(far)), if cand_idle.is_some() => {
                    // The replacement went silent (or its authentication went
                    // unanswered): drop it and try again later.
                    candidate = None;
                    held.clear();
                    held_bytes = 0;
                    switch_deadline = None;
                    cand_unsequenced = false;
                    rotate_at = Some(Instant::now() + Duration::from_secs(1));
                },
                _ = sleep_until(cand_ping.unwrap_or(far)), if cand_ping.is_some() => {
                    if let Some(c) = candidate.as_mut() {
                        c.queue_ping(&hb);
                    }
                },
                _ = sleep_until(ack_due.unwrap_or(far)), if ack_due.is_some() => {
                    if !self.expire_requests(&mut link, candidate.as_mut()).await { break End::ConsumerGone; }
                },
                _ = sleep_until(stable_at.unwrap_or(far)), if stable_at.is_some() => {
                    stable_at = None;
                    self.backoff.reset();
                },
                _ = sleep_until(rotate_at.unwrap_or(far)), if rotate_at.is_some() && connecting.is_none() && candidate.is_none() => {
                    rotate_at = None;
                    let t = self.transport.clone();
                    let (spec, carried) = self.connect_spec();
                    cand_carried = carried;
                    cand_url = spec.shown_url();
                    connecting = Some(tokio::spawn(async move { t.connect(&spec).await }));
                },
            }
        };
        if let Some(h) = connecting {
            h.abort();
        }
        if let (End::Lost(_), Some(c)) = (&end, candidate) {
            // The primary died mid-rotation: the candidate simply goes away too.
            drop(c);
        }
        end
    }
}

/// Frames read in one go from a socket that has them ready, before the
/// session loop looks at commands, timers and the other socket again (and
/// yields to other tasks when more are waiting). 32 rather than 64: the
/// consumer sees a burst's first frames sooner (`bench latency` p50), at
/// no measurable throughput cost; 16 cost ~5 % of `bench e2e` throughput.
const DRAIN: usize = 32;

/// How long a subscribed rotation candidate may wait for its data to join the primary's.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Outbox frames starting with this mark are sent as WebSocket pings.
const PING_MARK: &str = "\u{0}ping:";

async fn recv_opt<S: WsStream>(link: &mut Option<Link<S>>) -> Option<Result<WsMsg, TransportError>> {
    match link.as_mut() {
        Some(l) => l.ws.recv().await,
        None => std::future::pending().await,
    }
}

async fn join_opt<R>(h: &mut Option<JoinHandle<R>>) -> Option<R> {
    match h.as_mut() {
        Some(j) => j.await.ok(),
        None => std::future::pending().await,
    }
}
