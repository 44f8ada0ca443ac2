//! What a connection tells its consumer. Every event carries the epoch of the
//! socket it came from; the epoch increases with every new socket.

use std::sync::Arc;
use std::time::SystemTime;

use crate::venue::Seq;

/// The lifecycle of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Opening a socket.
    Connecting,
    /// Waiting for the venue to accept credentials.
    Authenticating,
    /// Restoring the subscription set.
    Subscribing,
    /// Delivering data.
    Active,
    /// Waiting out a backoff delay.
    Reconnecting,
    /// Closing on request.
    Closing,
    /// Done; the task has ended.
    Closed,
}

/// How many messages a gap lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Exactly this many (consecutive ids).
    Count(u64),
    /// The venue gives no way to count (chained `pu` ids, dropped unsequenced data).
    Unknown,
}

/// One event from a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The connection it came from (an id the pool assigns; 0 for a lone connection).
    pub conn: u64,
    /// The socket generation it came from.
    pub epoch: u64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The first socket is up (and authenticated and subscribed).
    Connected,
    /// A later socket is up and the subscription set is restored.
    Reconnected,
    /// The connection moved to a fresh socket without a gap (make-before-break
    /// rotation before the venue's lifetime limit or on a shutdown notice).
    Rotated,
    /// The socket went away.
    Disconnected {
        /// Why, in words.
        reason: String,
    },
    /// A data frame, passed through untouched.
    Data {
        /// The stream it belongs to: one shared name per subscribed stream
        /// (no allocation per frame).
        stream: Arc<str>,
        /// The frame text.
        payload: String,
        /// Sequence numbers the venue module read from it.
        seq: Option<Seq>,
        /// Local receive time.
        received: SystemTime,
    },
    /// Messages of `stream` were lost between `from` and `to` (inclusive sequence numbers).
    Gap {
        /// The stream, or `*` when dropped unsequenced data cannot be attributed.
        stream: String,
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
        /// How many messages that is.
        missing: Missing,
    },
    /// A subscription was refused.
    SubscriptionFailed {
        /// The stream.
        stream: String,
        /// The venue's code.
        code: i64,
        /// The venue's message.
        msg: String,
    },
    /// Credentials were refused; the connection stops.
    AuthFailed {
        /// The venue's message.
        msg: String,
    },
    /// Reconnecting stopped after the configured attempts.
    GaveUp {
        /// "max reconnect retries reached".
        reason: String,
    },
    /// A frame could not be used; the connection goes on.
    Error {
        /// What went wrong.
        msg: String,
        /// The offending frame.
        raw: String,
    },
    /// A frame the venue module does not recognise.
    Unknown {
        /// The frame.
        raw: String,
    },
    /// The lifecycle moved.
    StateChanged(State),
}
