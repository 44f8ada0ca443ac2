//! The seam between the venue-neutral core and the venue folders.
//!
//! The core (the generator, books and history, accounts and fill accounting,
//! faults, limits, the admin API and the HTTP/WebSocket server) never names a
//! venue. A venue folder implements [`Dialect`]: how its markets' generated
//! events are named and written, how an upgrade path is routed, how a text
//! frame is answered, which REST paths it serves and how its private side
//! behaves. The registry in `lib.rs` maps each [`crate::Venue`] to its dialect,
//! so a new venue is one folder and one registry line.
//!
//! Dispatch is per connection, per request or per generator step, never per
//! event: `Market::tick` and `Market::user_take` are generic over the venue's
//! [`crate::market::Encode`], called from inside the dialect.

use std::any::Any;
use std::collections::HashSet;

use bytes::Bytes;
use hyper::{Method, Request};

use crate::account::ListenKey;
use crate::config::{LoadConfig, MarketConfig, SymbolSpec};
use crate::hub::{ConnEntry, ConnKind, Hub, HubState, ListenSub};
use crate::load::LoadForm;
use crate::market::{BookCopy, Emit, Market};
use crate::server::Resp;

/// What a WebSocket upgrade path asks for, as the market's dialect routed it.
#[derive(Debug)]
pub(crate) struct WsTarget {
    /// What the connection is (its dialect tag, private or not, keep-alive).
    pub kind: ConnKind,
    /// Whether payloads are wrapped in the dialect's [`Envelope`].
    pub combined: bool,
    /// Streams named in the URL, subscribed from the handshake on.
    pub streams: Vec<String>,
    /// User-data feeds named in the URL.
    pub listen: Vec<ListenSub>,
}

/// Why the server refuses an upgrade before a connection exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The path is not a WebSocket path of the market.
    NotFound,
    /// No `Sec-WebSocket-Key`, or a version other than 13.
    BadHandshake,
    /// Over `Limits::max_conn_attempts` per `Limits::conn_attempt_window`.
    TooManyAttempts,
}

/// How a connection that asked for combined streams gets each payload:
/// `head`, the stream name, `mid`, the payload, `tail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// Before the stream name.
    pub head: &'static str,
    /// Between the stream name and the payload.
    pub mid: &'static str,
    /// After the payload.
    pub tail: &'static str,
}

/// One venue's wire protocol, as the core uses it. Implemented by each venue
/// folder and chosen per market by the registry in `lib.rs`.
pub(crate) trait Dialect: Send + Sync + std::fmt::Debug {
    // ----- the generator -----

    /// A new market's generator, with the venue's stream names, depth
    /// windows and liquidation cadence (`Market::new`).
    fn market(&self, cfg: &MarketConfig, seed: u64, now_ms: u64) -> Market;

    /// What the venue keeps per market besides the generator
    /// ([`HubState::venue`]); nothing by default.
    fn venue_state(&self) -> Box<dyn Any + Send> {
        Box::new(())
    }

    /// One generator step: `Market::tick` with the venue's encoder.
    fn tick(&self, market: &mut Market, now_ms: u64, elapsed_ms: u64, tracked: &HashSet<String>, out: &mut Vec<Emit>);

    /// What one generator step wrote, before it is delivered: the venue may
    /// re-route it or hold it in its state ([`HubState::venue`]) for a topic
    /// pushed on a timer (Deribit fans each trade out to several channels and
    /// batches the `100ms` ones). Nothing by default.
    fn route_emits(
        &self,
        _venue: &mut (dyn Any + Send),
        _tracked: &HashSet<String>,
        _out: &mut Vec<Emit>,
        _now_ms: u64,
    ) {
    }

    /// The load forms the venue serves for `market` when its
    /// `MarketConfig::load` is set (none by default).
    fn load(&self, _market: &MarketConfig, _cfg: &LoadConfig) -> Vec<LoadForm> {
        Vec::new()
    }

    /// The combined-stream envelope, if the venue has one.
    fn envelope(&self) -> Option<Envelope> {
        None
    }

    // ----- WebSocket -----

    /// Routes an upgrade path (and query); `None` is not a WebSocket path.
    fn route(&self, hub: &Hub, path: &str, query: Option<&str>) -> Option<WsTarget>;

    /// The HTTP answer to an upgrade the server refuses.
    fn refuse(&self, hub: &Hub, why: Refusal) -> Resp;

    /// Checks what the URL asks for (stream syntax, stream cap) before the
    /// handshake is answered; `Some` is the refusal.
    fn admit(&self, _hub: &Hub, _target: &WsTarget) -> Option<Resp> {
        None
    }

    /// The connection is registered: the streams named in the URL start.
    fn opened(&self, _hub: &Hub, _conn: u64, _target: &WsTarget) {}

    /// Answers one text frame: the reply to send on the control path (`None`
    /// when the dialect already queued it in order with the data) and whether
    /// it is a success (counted as an ack, else as an error).
    fn answer(&self, hub: &Hub, conn: u64, kind: ConnKind, text: &str) -> (Option<Bytes>, bool);

    /// Whether the per-connection incoming message limit
    /// (`Limits::max_incoming_msgs` per `msg_window`) applies to connections
    /// of `kind` (the venue may limit some sockets by other means only).
    fn limits_incoming(&self, _kind: ConnKind) -> bool {
        true
    }

    /// The `/admin/shutdown` notice as `conn` gets it.
    fn shutdown_notice(&self, conn: &ConnEntry, now_ms: u64) -> String;

    // ----- REST -----

    /// Refuses a request before its body is read (`None`: read it and call
    /// [`Dialect::rest`]).
    fn rest_precheck(&self, hub: &Hub, method: &Method, path: &str) -> Option<Resp>;

    /// The answer to a body over the size limit or unreadable.
    fn body_too_large(&self) -> Resp;

    /// Serves one REST request (not `/admin`).
    fn rest(&self, hub: &Hub, req: &Request<Bytes>) -> Resp;

    // ----- ground truth and the private side -----

    /// Book levels as the venue writes them: `[price, qty]` strings.
    fn book_levels(&self, cfg: &MarketConfig, spec: &SymbolSpec, levels: &[(i64, i64)]) -> Vec<[String; 2]>;

    /// The book of `symbol` right after update `update_id`, top `depth`
    /// levels; by default from the generator's depth-window history.
    fn book_at(&self, _hub: &Hub, st: &HubState, symbol: &str, update_id: u64, depth: usize) -> Option<BookCopy> {
        let mut copy = st.market.symbol(symbol)?.copy_at(update_id)?.clone();
        copy.bids.truncate(depth);
        copy.asks.truncate(depth);
        Some(copy)
    }

    /// Expires the listenKeys `which` selects; returns how many. Venues
    /// without listenKeys have none.
    fn expire_listen_keys(&self, _hub: &Hub, _st: &mut HubState, _which: &dyn Fn(&str, &ListenKey) -> bool) -> usize {
        0
    }

    /// Ends every user-data subscription of WebSocket-API sessions; returns
    /// how many.
    fn terminate_user_streams(&self, _hub: &Hub, _st: &mut HubState) -> usize {
        0
    }

    /// Credits (negative: debits) `amount` (1e-8 units) of `asset` to
    /// `account`, with the venue's user events.
    fn deposit(&self, hub: &Hub, st: &mut HubState, account: usize, asset: &str, amount: i128);

    /// Like [`Dialect::deposit`], into one of the account's other scopes as
    /// the venue names them (Binance spot: `margin`, `isolated:BTCUSDT`).
    /// `Err` (a message for the admin caller) when the venue has no such scope.
    fn deposit_scoped(
        &self,
        _hub: &Hub,
        _st: &mut HubState,
        _account: usize,
        scope: &str,
        _asset: &str,
        _amount: i128,
    ) -> Result<(), String> {
        Err(format!("this market has no account scope {scope:?}"))
    }

    /// Time-driven private-side work, once per generator step (Binance:
    /// WebSocket-API subscriptions whose token ran out end with
    /// `eventStreamTerminated`). Nothing by default; keep it cheap when idle.
    fn timers(&self, _hub: &Hub, _st: &mut HubState) {}

    // ----- chaos faults (`faults.rs`) -----

    /// A data frame on stream number `k` of a set of well-formed stream names
    /// the simulator never serves (so no client subscribed them), carrying
    /// id `id`, as a connection that asked for `combined` streams or not gets it.
    fn unsubscribed_frame(&self, combined: bool, k: u64, id: u64, now_ms: u64) -> String;

    /// A well-formed data frame of exactly `bytes` bytes on a stream nobody
    /// subscribed, or `None` when `bytes` is shorter than its smallest shape.
    fn oversized_frame(&self, combined: bool, bytes: usize, now_ms: u64) -> Option<String>;

    /// Whether the id-reset fault restarts the generator's trade and book
    /// update ids on this venue (Binance and Bybit numbers can restart after
    /// a venue-side reset). A venue whose numbers never restart (Deribit's
    /// `trade_seq` grows per instrument for ever) answers `false`: only its
    /// own [`Dialect::reset_ids`] runs.
    fn restarts_ids(&self) -> bool {
        true
    }

    /// The id-reset fault reached the venue's own state for `symbols`
    /// (upper case): restart what it numbers itself. Returns the names of the
    /// streams it restarted, for their [`crate::hub::StreamStats::resets`].
    fn reset_ids(&self, _st: &mut HubState, _symbols: &[String]) -> Vec<String> {
        Vec::new()
    }
}
