//! A pool of connections to one venue endpoint: streams are sharded across as
//! many connections as the per-connection caps require, connections open lazily,
//! two consumers of one stream cost one subscription, and capacity freed by an
//! unsubscribe is reused. Venue-agnostic: the caps come from `VenueRules` or the
//! pool configuration. A connection holds at most [`Pool::cap`] streams and,
//! when the venue counts characters ([`ConnLimits::max_stream_chars`]), at most
//! [`Pool::char_budget`] characters of stream names; new streams go to the
//! first connection where both still fit (existing ones first), in order.
//!
//! [`ConnLimits::max_stream_chars`]: crate::venue::ConnLimits::max_stream_chars

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::actor::{ConnSnapshot, Connection, ConnectionConfig, SubState};
use crate::backoff::BackoffConfigError;
use crate::event::State;
use crate::queue::EventSender;
use crate::transport::Transport;
use crate::venue::{VenueRules, stream_chars};

/// How a pool behaves.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// A label for logs (`binance:usdm:public`).
    pub name: String,
    /// Template for every connection; `spec.url` is the endpoint's WebSocket base.
    pub connection: ConnectionConfig,
    /// Streams per connection (`None`: the venue's cap).
    pub max_streams_per_conn: Option<usize>,
    /// At most this many connections (`None`: unlimited).
    pub max_connections: Option<usize>,
}

/// Why a pool request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    /// More streams than the pool may hold: placing them would need more
    /// than `connections` connections (by count or, when the venue counts
    /// them, by characters).
    #[error(
        "pool exhausted: {connections} connections × {per_connection} streams; {requested} new streams requested, {free} free"
    )]
    Exhausted {
        /// The connection limit.
        connections: usize,
        /// Streams per connection.
        per_connection: usize,
        /// New streams in the request.
        requested: usize,
        /// How many of the new streams would still fit.
        free: usize,
    },
    /// A stream name longer than the venue's per-connection character budget:
    /// no connection can hold it.
    #[error("stream {stream} has {chars} characters; a connection holds at most {budget}")]
    StreamTooLong {
        /// The stream.
        stream: String,
        /// Its characters.
        chars: usize,
        /// The per-connection budget.
        budget: usize,
    },
    /// The connection configuration is invalid.
    #[error("invalid connection configuration: {0}")]
    Config(#[from] BackoffConfigError),
    /// A connection task has ended.
    #[error("a connection of the pool has closed")]
    Closed,
    /// A connection's command channel is full now (a non-blocking request
    /// only); try again later.
    #[error("a connection of the pool is busy; try again")]
    Busy,
}

#[derive(Debug)]
struct Shard {
    conn: Connection,
    streams: BTreeSet<String>,
    /// Characters of `streams`.
    chars: usize,
}

/// A pool of connections for one endpoint.
#[derive(Debug)]
pub struct Pool<T: Transport> {
    transport: T,
    venue: Arc<dyn VenueRules>,
    cfg: PoolConfig,
    events: EventSender,
    ids: Arc<AtomicU64>,
    shards: Vec<Shard>,
    refs: HashMap<String, usize>,
    owner: HashMap<String, usize>,
}

impl<T: Transport> Pool<T> {
    /// An empty pool; connections open on the first subscription. Events of every
    /// connection go to `events`; `ids` numbers connections across pools.
    pub fn new(
        transport: T,
        venue: Arc<dyn VenueRules>,
        cfg: PoolConfig,
        events: EventSender,
        ids: Arc<AtomicU64>,
    ) -> Pool<T> {
        Pool { transport, venue, cfg, events, ids, shards: Vec::new(), refs: HashMap::new(), owner: HashMap::new() }
    }

    /// Streams per connection.
    pub fn cap(&self) -> usize {
        let venue_cap = self.venue.limits().max_streams;
        self.cfg.max_streams_per_conn.unwrap_or(venue_cap).clamp(1, venue_cap.max(1))
    }

    /// Characters of stream names per connection (`None`: the venue counts
    /// streams only).
    pub fn char_budget(&self) -> Option<usize> {
        self.venue.limits().max_stream_chars
    }

    /// Drops streams the venue refused, so they no longer hold capacity.
    fn prune_failed(&mut self) {
        for (i, shard) in self.shards.iter_mut().enumerate() {
            let snap = shard.conn.snapshot();
            let failed: Vec<String> =
                shard.streams.iter().filter(|s| snap.streams.get(*s) == Some(&SubState::Failed)).cloned().collect();
            for s in failed {
                shard.streams.remove(&s);
                shard.chars -= stream_chars(&s);
                self.refs.remove(&s);
                if self.owner.get(&s) == Some(&i) {
                    self.owner.remove(&s);
                }
            }
        }
    }

    /// Adds one reference to each stream; streams not yet held are assigned to
    /// connections with room, opening new ones as needed.
    pub async fn subscribe(&mut self, streams: &[String]) -> Result<(), PoolError> {
        self.prune_failed();
        let mut new: Vec<String> = Vec::new();
        for s in streams {
            if !self.refs.contains_key(s) && !new.contains(s) {
                new.push(s.clone());
            }
        }
        let cap = self.cap();
        let budget = self.char_budget();
        if let Some(budget) = budget
            && let Some(s) = new.iter().find(|s| stream_chars(s) > budget)
        {
            return Err(PoolError::StreamTooLong { stream: s.clone(), chars: stream_chars(s), budget });
        }
        // Plan first (nothing changes on error): first fit over the existing
        // connections, then over as many new ones as needed.
        let mut load: Vec<(usize, usize)> = self.shards.iter().map(|s| (s.streams.len(), s.chars)).collect();
        let existing = load.len();
        let mut placed: Vec<Vec<String>> = vec![Vec::new(); existing];
        for s in &new {
            let c = stream_chars(s);
            let fits = |&(n, chars): &(usize, usize)| n < cap && budget.is_none_or(|b| chars + c <= b);
            let i = match load.iter().position(fits) {
                Some(i) => i,
                None => {
                    load.push((0, 0));
                    placed.push(Vec::new());
                    load.len() - 1
                }
            };
            load[i].0 += 1;
            load[i].1 += c;
            placed[i].push(s.clone());
        }
        if let Some(max) = self.cfg.max_connections
            && placed.len() > max
        {
            // First fit places a stream on the first `max` connections exactly
            // as it would with only those: the rest is what does not fit.
            return Err(PoolError::Exhausted {
                connections: max,
                per_connection: cap,
                requested: new.len(),
                free: placed.iter().take(max).map(Vec::len).sum(),
            });
        }
        for s in streams {
            *self.refs.entry(s.clone()).or_default() += 1;
        }
        let mut placed = placed.into_iter();
        // Fill connections that have room first (capacity freed by unsubscribes).
        for (i, take) in placed.by_ref().take(existing).enumerate() {
            if take.is_empty() {
                continue;
            }
            let shard = &mut self.shards[i];
            for s in &take {
                shard.chars += stream_chars(s);
                shard.streams.insert(s.clone());
                self.owner.insert(s.clone(), i);
            }
            shard.conn.subscribe(take).await.map_err(|_| PoolError::Closed)?;
        }
        // Then open new connections, each carrying what was planned for it.
        for chunk in placed {
            let mut cc = self.cfg.connection.clone();
            cc.id = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
            let conn = Connection::spawn_with(
                self.transport.clone(),
                self.venue.clone(),
                cc,
                chunk.clone(),
                self.events.clone(),
            )?;
            let i = self.shards.len();
            for s in &chunk {
                self.owner.insert(s.clone(), i);
            }
            let chars = chunk.iter().map(|s| stream_chars(s)).sum();
            self.shards.push(Shard { conn, streams: chunk.into_iter().collect(), chars });
        }
        Ok(())
    }

    /// Removes one reference to each stream; a stream with none left is
    /// unsubscribed and its slot becomes free.
    pub async fn unsubscribe(&mut self, streams: &[String]) -> Result<(), PoolError> {
        let mut by_shard: HashMap<usize, Vec<String>> = HashMap::new();
        for s in streams {
            let Some(n) = self.refs.get_mut(s) else { continue };
            *n -= 1;
            if *n > 0 {
                continue;
            }
            self.refs.remove(s);
            if let Some(i) = self.owner.remove(s) {
                if self.shards[i].streams.remove(s) {
                    self.shards[i].chars -= stream_chars(s);
                }
                by_shard.entry(i).or_default().push(s.clone());
            }
        }
        for (i, gone) in by_shard {
            self.shards[i].conn.unsubscribe(gone).await.map_err(|_| PoolError::Closed)?;
        }
        Ok(())
    }

    /// Asks the venue to restart streams already held: each is unsubscribed
    /// and subscribed again on its connection, references unchanged (venues
    /// that send a fresh snapshot on subscribe, such as Bybit's order books,
    /// recover a book this way without touching the socket). Streams the pool
    /// does not hold are ignored.
    pub async fn resubscribe(&mut self, streams: &[String]) -> Result<(), PoolError> {
        let mut by_shard: HashMap<usize, Vec<String>> = HashMap::new();
        for s in streams {
            if let Some(&i) = self.owner.get(s)
                && !by_shard.get(&i).is_some_and(|v| v.contains(s))
            {
                by_shard.entry(i).or_default().push(s.clone());
            }
        }
        for (i, list) in by_shard {
            let conn = &self.shards[i].conn;
            conn.unsubscribe(list.clone()).await.map_err(|_| PoolError::Closed)?;
            conn.subscribe(list).await.map_err(|_| PoolError::Closed)?;
        }
        Ok(())
    }

    /// [`Pool::resubscribe`] without waiting: each connection's pair of
    /// commands is queued only if both fit now. `Err(PoolError::Busy)` when
    /// a connection had no room (the others were still asked); ask again
    /// later. For consumers that also drain the event queue, which must
    /// never block on an actor that is itself blocked on that queue.
    pub fn try_resubscribe(&mut self, streams: &[String]) -> Result<(), PoolError> {
        let mut by_shard: HashMap<usize, Vec<String>> = HashMap::new();
        for s in streams {
            if let Some(&i) = self.owner.get(s)
                && !by_shard.get(&i).is_some_and(|v| v.contains(s))
            {
                by_shard.entry(i).or_default().push(s.clone());
            }
        }
        let mut result = Ok(());
        for (i, list) in by_shard {
            match self.shards[i].conn.try_restart(list) {
                Ok(()) => {}
                Err(crate::actor::TryCommandError::Full) => result = Err(PoolError::Busy),
                Err(crate::actor::TryCommandError::Closed) => return Err(PoolError::Closed),
            }
        }
        result
    }

    /// Open connections.
    pub fn active_shards(&self) -> usize {
        self.shards.iter().filter(|s| s.conn.state() != State::Closed).count()
    }

    /// Every subscribed stream (with at least one reference), sorted.
    pub fn subscriptions(&self) -> Vec<String> {
        let mut v: Vec<String> = self.refs.keys().cloned().collect();
        v.sort();
        v
    }

    /// References held on `stream`.
    pub fn references(&self, stream: &str) -> usize {
        self.refs.get(stream).copied().unwrap_or(0)
    }

    /// Whether any connection is delivering.
    pub fn is_connected(&self) -> bool {
        self.shards.iter().any(|s| s.conn.state() == State::Active)
    }

    /// Closes every connection (close code 1000) and forgets all subscriptions.
    pub async fn disconnect_all(&mut self) {
        for shard in self.shards.drain(..) {
            shard.conn.close().await;
        }
        self.refs.clear();
        self.owner.clear();
    }

    /// The URL of each connection's current socket.
    pub fn urls(&self) -> Vec<String> {
        self.shards.iter().map(|s| s.conn.snapshot().url).collect()
    }

    /// Per-connection snapshots: state, streams with their subscription state,
    /// messages in the current window vs the venue's limit.
    pub fn snapshots(&self) -> Vec<ConnSnapshot> {
        self.shards.iter().map(|s| s.conn.snapshot()).collect()
    }

    /// The streams assigned to each connection, in connection order.
    pub fn assignment(&self) -> Vec<Vec<String>> {
        self.shards.iter().map(|s| s.streams.iter().cloned().collect()).collect()
    }

    /// Whether every stream is answered on every connection: confirmed,
    /// refused, or given up on after the ack timeout (reported as an error).
    pub fn is_settled(&self) -> bool {
        self.shards.iter().all(|s| {
            let snap = s.conn.snapshot();
            snap.state == State::Active
                && s.streams.iter().all(|x| {
                    matches!(snap.streams.get(x), Some(SubState::Confirmed | SubState::Failed | SubState::Unanswered))
                })
                && !snap.streams.values().any(|st| *st == SubState::PendingUnsubscribe)
        })
    }

    /// The pool's label.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }
}
