//! What the engine needs to know about a venue, as data and pure functions.
//!
//! A venue module implements [`VenueRules`]; the engine calls it to encode
//! requests and to classify every incoming text frame, and never looks inside
//! the JSON itself. Nothing here touches a socket or spawns a task.

use std::borrow::Cow;
use std::time::Duration;

/// How a connection is kept alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPing {
    /// The server pings; the engine only answers (Binance, Deribit after set_heartbeat).
    None,
    /// Send a WebSocket ping frame with this payload every interval.
    WsPing(Vec<u8>),
    /// Send this text frame every interval (Bybit `{"op":"ping"}`).
    Text(String),
}

/// Heartbeat policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// What the client sends on its own.
    pub client_ping: ClientPing,
    /// How often (ignored for [`ClientPing::None`]).
    pub interval: Duration,
    /// No frame at all for this long means the socket is dead (half-open TCP included).
    pub idle_timeout: Duration,
}

/// Per-connection limits, as the venue states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// Streams one connection may hold.
    pub max_streams: usize,
    /// Client messages (text, ping, pong) allowed per `msg_window`.
    pub max_msgs: usize,
    /// The window of `max_msgs`.
    pub msg_window: Duration,
    /// Streams per subscribe request.
    pub max_streams_per_request: usize,
    /// Bytes per request frame.
    pub max_request_bytes: usize,
    /// Characters of stream names one connection may hold: the sum of
    /// [`stream_chars`] over its streams (Bybit: 21,000 per public
    /// connection). `None`: the venue counts streams only. Pools fill a
    /// connection until either this or `max_streams` would be exceeded.
    pub max_stream_chars: Option<usize>,
}

/// The characters `stream` costs against [`ConnLimits::max_stream_chars`].
pub fn stream_chars(stream: &str) -> usize {
    stream.chars().count()
}

/// What kind of request an answer settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOp {
    /// A subscribe request.
    Subscribe,
    /// An unsubscribe request.
    Unsubscribe,
}

/// How a stream's sequence numbers behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeqKind {
    /// Consecutive ids or `first..=last` ranges (trade ids, spot depth U/u), or a
    /// `prev` chain (futures depth `pu`): breaks are gaps.
    #[default]
    Counted,
    /// Increasing but not consecutive (Bybit `seq`): orders and de-duplicates,
    /// cannot reveal a gap.
    Ordered,
    /// A snapshot that restarts the sequence at `last` (Bybit `u == 1` snapshots).
    Reset,
    /// Consecutive like `Counted`, on a stream whose venue may restart the
    /// sequence (announced by a `Reset` message, which can be lost): a step
    /// back by more than [`RESTART_WINDOW`] cannot be an overlap re-send, so
    /// it is taken as a restart — delivered after a gap of unknown extent,
    /// and the sequence continues from it (Bybit order-book deltas).
    Restartable,
}

/// How far back a sequence number may step on a live socket and still be
/// taken as a re-sent (duplicate) message; further back is a restart (of any
/// kind of sequence: a [`SeqKind::Restartable`] stream's lost reset message,
/// or a venue-side id reset, or one bogus huge id before it).
pub const RESTART_WINDOW: u64 = 1000;

/// Sequence information a venue reads from a data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq {
    /// First sequence number in the message (trade id; depth `U`).
    pub first: u64,
    /// Last sequence number in the message (trade id; depth `u`).
    pub last: u64,
    /// The previous message's `last`, when the venue chains messages (futures `pu`).
    /// With `prev`, numbers need not be consecutive and a break cannot be counted.
    pub prev: Option<u64>,
    /// How the numbers behave.
    pub kind: SeqKind,
}

impl Seq {
    /// A message carrying one consecutive id (trade ids).
    pub fn single(id: u64) -> Seq {
        Seq { first: id, last: id, prev: None, kind: SeqKind::Counted }
    }

    /// A message covering the consecutive ids `first..=last` (spot depth `U`/`u`).
    pub fn range(first: u64, last: u64) -> Seq {
        Seq { first, last, prev: None, kind: SeqKind::Counted }
    }

    /// A message chained to the previous one's `last` (futures depth `pu`).
    pub fn chained(first: u64, last: u64, prev: u64) -> Seq {
        Seq { first, last, prev: Some(prev), kind: SeqKind::Counted }
    }

    /// An increasing, non-consecutive number.
    pub fn ordered(n: u64) -> Seq {
        Seq { first: n, last: n, prev: None, kind: SeqKind::Ordered }
    }

    /// A message covering the consecutive ids `first..=last` on a stream the
    /// venue may restart ([`SeqKind::Restartable`]).
    pub fn restartable(first: u64, last: u64) -> Seq {
        Seq { first, last, prev: None, kind: SeqKind::Restartable }
    }

    /// A snapshot that restarts the sequence at `n`.
    pub fn reset(n: u64) -> Seq {
        Seq { first: n, last: n, prev: None, kind: SeqKind::Reset }
    }
}

/// What an incoming text frame is, as far as the engine cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A request succeeded.
    Ack {
        /// The request id it answers.
        id: u64,
    },
    /// A request succeeded, but the answer echoes no request id of ours. The
    /// venue names the streams it confirms (Bybit option `COMMAND_RESP`
    /// `successTopics`), or nothing at all (Bybit private
    /// `{"success":true,"op":"subscribe"}`). The engine settles, on the socket
    /// the answer arrived on:
    ///
    /// - each named stream in the oldest pending request (lowest id, of `op`
    ///   when given) that still waits for it; a request is answered once all
    ///   of its streams are, until then the rest stay pending;
    /// - with no stream named, the oldest pending request of `op` as a whole
    ///   (FIFO: the venue answers a socket's requests in the order sent). When
    ///   that is ambiguous (`op` is `None` while subscribes and unsubscribes
    ///   are both pending) or nothing of `op` is pending, nothing is settled
    ///   and the frame is reported (error or unknown).
    AckStreams {
        /// Which kind of request it answers, when the venue says.
        op: Option<RequestOp>,
        /// The streams confirmed; empty when the venue names none.
        streams: Vec<String>,
    },
    /// Request `id` succeeded for exactly `streams`: the venue answers with
    /// the list of what it took and drops the rest without an error (Deribit
    /// `public/subscribe`, whose result lists the channels actually
    /// subscribed). On a subscribe, every other stream of the request is
    /// reported as `subscription_failed` instead of waiting in silence; on an
    /// unsubscribe, a stream not listed was not subscribed, which is success.
    AckPartial {
        /// The request id it answers.
        id: u64,
        /// The streams the venue took.
        streams: Vec<String>,
    },
    /// A request failed, wholly or for the streams named.
    Rejected {
        /// The request id, if the venue echoed one. Without it, the request is
        /// found by the streams named (the oldest pending request holding
        /// each); a rejection with neither id nor streams matches no request
        /// and is reported as an error.
        id: Option<u64>,
        /// The venue's error code.
        code: i64,
        /// The venue's message.
        msg: String,
        /// The streams refused, when the venue names them; empty means the whole
        /// request. Streams of the request not named here count as accepted.
        streams: Vec<String>,
    },
    /// Authentication succeeded.
    AuthOk,
    /// Authentication failed; terminal.
    AuthFailed {
        /// The venue's message.
        msg: String,
    },
    /// An application-level pong (answers our client ping).
    Pong,
    /// The venue asks for this exact frame in reply (Deribit `test_request`).
    Reply(String),
    /// Market or user data for a stream.
    Data {
        /// The stream key the venue subscribes by.
        stream: Cow<'a, str>,
        /// Sequence numbers, when the stream has them.
        seq: Option<Seq>,
    },
    /// The venue will close this connection soon (Binance `serverShutdown`).
    Shutdown,
    /// Valid JSON the venue module does not recognise; delivered as unknown.
    Unknown,
    /// Not parseable; delivered as an error that keeps the payload.
    Malformed(String),
}

/// A venue's rules. Implementations are cheap, immutable and shared.
pub trait VenueRules: Send + Sync + std::fmt::Debug + 'static {
    /// Short name for logs and events (`binance`).
    fn name(&self) -> &str;
    /// Keep-alive policy.
    fn heartbeat(&self) -> Heartbeat;
    /// Per-connection limits.
    fn limits(&self) -> ConnLimits;
    /// One subscribe request frame for `streams` (already within the limits).
    fn encode_subscribe(&self, id: u64, streams: &[String]) -> String;
    /// One unsubscribe request frame.
    fn encode_unsubscribe(&self, id: u64, streams: &[String]) -> String;
    /// The URL to connect to for `base` when `streams` are wanted. Streams the
    /// URL already carries (a prefix of `streams`, counted by the second value)
    /// need no subscribe request (Binance `/stream?streams=a/b`).
    /// Default: `base` as is, carrying none.
    fn connect_url(&self, base: &str, _streams: &[String]) -> (String, usize) {
        (base.to_string(), 0)
    }
    /// Frames to send right after connecting, before authenticating
    /// (Deribit `public/set_heartbeat`). Default: none.
    fn on_connect(&self, _next_id: &mut dyn FnMut() -> u64) -> Vec<String> {
        Vec::new()
    }
    /// The authentication request, if this connection is private. The engine
    /// waits for [`Inbound::AuthOk`] before subscribing. Default: public.
    fn auth_request(&self, _id: u64) -> Option<String> {
        None
    }
    /// Classifies one incoming text frame.
    fn classify<'a>(&self, frame: &'a str) -> Inbound<'a>;
    /// How long the authentication that `frame` (classified as
    /// [`Inbound::AuthOk`]) granted lasts, when the venue says (Deribit
    /// `expires_in`). The engine authenticates again on the same socket
    /// before it runs out. Default: for the socket's life.
    fn auth_lifetime(&self, _frame: &str) -> Option<Duration> {
        None
    }
    /// The largest frame (and message) this venue is expected to send; a
    /// larger one ends the socket (reported as a disconnect, then a gap)
    /// before it is buffered. Default: [`DEFAULT_MAX_FRAME_BYTES`].
    fn max_frame_bytes(&self) -> usize {
        DEFAULT_MAX_FRAME_BYTES
    }
}

/// A connection's frame reader: classification for the engine and, for
/// data, the model events, in one pass over the frame where the venue can
/// (issue 22). The engine calls it instead of [`VenueRules::classify`] when
/// the connection was given one, and carries the events next to the frame;
/// it never looks inside them. One reader per connection, so a venue's
/// decoding state (a ticker merge) follows the socket that feeds it.
pub trait FrameReader: Send + 'static {
    /// Reads one text frame received at `received_ns` (ns since the epoch).
    /// For data, the events are appended to `out`.
    fn read<'a>(&mut self, frame: &'a str, received_ns: i64, out: &mut Vec<crate::event::Event>) -> Read<'a>;
}

/// What [`FrameReader::read`] found.
#[derive(Debug)]
pub struct Read<'a> {
    /// What the frame is, exactly as [`VenueRules::classify`] says.
    pub inbound: Inbound<'a>,
    /// For data: `Ok` when the events were appended, or why the frame could
    /// not be decoded (nothing appended). `None`: not decoded.
    pub decoded: Option<Result<(), String>>,
}

/// Makes a [`FrameReader`] for each new connection of a pool.
#[derive(Clone)]
pub struct ReaderFactory(std::sync::Arc<dyn Fn() -> Box<dyn FrameReader> + Send + Sync>);

impl ReaderFactory {
    /// A factory calling `make`.
    pub fn new(make: impl Fn() -> Box<dyn FrameReader> + Send + Sync + 'static) -> ReaderFactory {
        ReaderFactory(std::sync::Arc::new(make))
    }

    /// A fresh reader.
    pub fn make(&self) -> Box<dyn FrameReader> {
        (self.0)()
    }
}

impl std::fmt::Debug for ReaderFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReaderFactory")
    }
}

/// The default of [`VenueRules::max_frame_bytes`]: 1 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;

/// Splits `streams` into request batches within `limits`: at most
/// `max_streams_per_request` each, and at most `max_request_bytes` when encoded.
pub fn batches(rules: &dyn VenueRules, streams: &[String], id_hint: u64) -> Vec<Vec<String>> {
    let limits = rules.limits();
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for s in streams {
        cur.push(s.clone());
        let too_many = cur.len() > limits.max_streams_per_request.max(1);
        let too_big = cur.len() > 1 && rules.encode_subscribe(id_hint, &cur).len() > limits.max_request_bytes;
        if too_many || too_big {
            let last = cur.pop().unwrap_or_default();
            out.push(std::mem::take(&mut cur));
            cur.push(last);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
