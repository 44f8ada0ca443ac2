//! The chaos faults: floods of frames on streams nobody subscribed, floods
//! of malformed frames, oversized frames and id resets. What each frame says
//! is the market's dialect's ([`crate::dialect::Dialect::unsubscribed_frame`],
//! `oversized_frame`, `reset_ids`); delivering them is the same for every
//! venue. Documented in `docs/sim.md` (admin API) and reachable from Rust as
//! [`MarketHandle`] methods of the same names.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::MarketHandle;
use crate::hub::{ConnShared, Hub, IdReset, MAX_RESETS_KEPT};
use crate::ws;

/// Frames a flood puts in one queue item (the writer copies items whole).
const FLOOD_BATCH: u64 = 64;

/// The most frames one flood call may ask for.
pub const MAX_FLOOD_FRAMES: u64 = 10_000_000;

/// The largest oversized frame the simulator builds (64 MiB).
pub const MAX_OVERSIZED_BYTES: usize = 64 << 20;

/// The malformed frames a flood cycles through: truncated or broken JSON,
/// always valid UTF-8 text (a WebSocket text frame must be).
const MALFORMED: [&str; 5] =
    ["{\"e\":\"trade\",\"E\":17000000,\"s\":\"BTCUSDT\",\"t\":", "not json at all", "{\"stream\":", "[1,2,", "}{"];

/// One flood's target: the connection's data queue, and its writer's state.
struct Target {
    combined: bool,
    tx: mpsc::Sender<Bytes>,
    shared: Arc<ConnShared>,
}

impl Hub {
    fn targets(&self, id: Option<u64>) -> Vec<Target> {
        let st = self.lock();
        st.conns
            .iter()
            .filter(|(cid, c)| id.is_none_or(|x| x == **cid) && !c.kind.private)
            .map(|(_, c)| Target { combined: c.combined, tx: c.data_tx.clone(), shared: c.shared.clone() })
            .collect()
    }

    /// Sends `count` frames made by `frame(combined, i)` to each target, in
    /// batches on the data queue, from a task: the queue is kept at most
    /// half full by the flood, so the market's own data still fits and the
    /// connection is not reset as a slow consumer by the flood itself.
    fn flood(
        self: &Arc<Self>,
        id: Option<u64>,
        count: u64,
        frame: impl Fn(bool, u64) -> String + Send + 'static,
    ) -> usize {
        let targets = self.targets(id);
        let n = targets.len();
        self.lock().counters.flood_frames_sent += count * n as u64;
        if n == 0 || count == 0 {
            return n;
        }
        tokio::spawn(async move {
            for t in targets {
                let mut i = 0;
                while i < count {
                    let end = (i + FLOOD_BATCH).min(count);
                    let mut buf = Vec::new();
                    for k in i..end {
                        ws::encode_into(&mut buf, ws::op::TEXT, frame(t.combined, k).as_bytes());
                    }
                    i = end;
                    while t.tx.capacity() < t.tx.max_capacity() / 2 {
                        if t.tx.is_closed() {
                            break;
                        }
                        let _ = tokio::time::timeout(Duration::from_millis(10), t.shared.drained.notified()).await;
                    }
                    if t.tx.send(Bytes::from(buf)).await.is_err() {
                        break;
                    }
                }
            }
        });
        n
    }
}

impl MarketHandle {
    /// Floods one connection (or every public connection) with `count` data
    /// frames on `streams` stream names nobody subscribed (well-formed names
    /// the simulator never serves: Binance `flood<k>usdt@trade`, Bybit
    /// `publicTrade.FLOOD<k>USDT`), each a trade with id `1..=count`. Returns
    /// how many connections it floods.
    pub fn flood_unsubscribed(&self, conn: Option<u64>, count: u64, streams: u64) -> usize {
        let hub = self.hub.clone();
        let streams = streams.max(1);
        let dialect = hub.dialect;
        let now = hub.venue_ms(&hub.lock());
        hub.flood(conn, count.min(MAX_FLOOD_FRAMES), move |combined, i| {
            dialect.unsubscribed_frame(combined, i % streams, i + 1, now)
        })
    }

    /// Floods one connection (or every public connection) with `count`
    /// malformed text frames (truncated or broken JSON, in turn). Returns
    /// how many connections it floods.
    pub fn flood_malformed(&self, conn: Option<u64>, count: u64) -> usize {
        let n = self.hub.flood(conn, count.min(MAX_FLOOD_FRAMES), |_, i| MALFORMED[(i % 5) as usize].to_string());
        self.hub.lock().counters.malformed_sent += count.min(MAX_FLOOD_FRAMES) * n as u64;
        n
    }

    /// Sends one well-formed data frame of exactly `bytes` bytes (its
    /// payload; at most [`MAX_OVERSIZED_BYTES`]) on a stream nobody
    /// subscribed, to one connection or every public connection. `Err` when
    /// `bytes` is outside what the venue's shape can be; else how many
    /// connections it was sent to.
    pub fn send_oversized(&self, conn: Option<u64>, bytes: usize) -> Result<usize, String> {
        if bytes > MAX_OVERSIZED_BYTES {
            return Err(format!("bytes must be at most {MAX_OVERSIZED_BYTES}"));
        }
        let now = self.hub.venue_ms(&self.hub.lock());
        let dialect = self.hub.dialect;
        let raw = dialect.oversized_frame(false, bytes, now);
        let combined = dialect.oversized_frame(true, bytes, now);
        let (Some(raw), Some(combined)) = (raw, combined) else {
            return Err("bytes is smaller than the smallest data frame of this venue".into());
        };
        let (raw, combined) = (ws::encode(ws::op::TEXT, raw.as_bytes()), ws::encode(ws::op::TEXT, combined.as_bytes()));
        let mut n = 0;
        for t in self.hub.targets(conn) {
            // An oversized frame is one queue item; a full queue skips it.
            let f = if t.combined { combined.clone() } else { raw.clone() };
            if t.tx.try_send(f).is_ok() {
                n += 1;
            }
        }
        self.hub.lock().counters.oversized_sent += n as u64;
        Ok(n)
    }

    /// Restarts the ids of `symbol` (upper case; every symbol when `None`)
    /// as after a venue restart: the next trade id, aggregate-trade id and
    /// book update id are `to` (at least 1), and the venue's own counters
    /// restart too (Bybit: every order-book topic's next message is a
    /// snapshot with `u = 1`). Every stream of the symbol records the reset in
    /// [`crate::StreamStats::resets`]. Returns how many symbols were reset
    /// (0: unknown symbol).
    pub fn reset_ids(&self, symbol: Option<&str>, to: u64) -> usize {
        let mut guard = self.hub.lock();
        let st = &mut *guard;
        let now = self.hub.venue_ms(st);
        let symbols = if self.hub.dialect.restarts_ids() {
            st.market.reset_ids(symbol, to, now)
        } else {
            st.market.symbol_names(symbol)
        };
        let mut names: Vec<String> = Vec::new();
        for sym in symbols.iter().filter(|_| self.hub.dialect.restarts_ids()) {
            if let Some(s) = st.market.symbol(sym) {
                let n = &s.names;
                names.extend(n.trade_watch.iter().cloned());
                names.extend([n.trade.clone(), n.user_trade.clone(), n.force.clone()]);
                names.extend(n.agg.iter().chain(&n.book_ticker).chain(&n.depth).cloned());
            }
        }
        names.extend(self.hub.dialect.reset_ids(st, &symbols));
        names.sort();
        names.dedup();
        for name in names {
            if let Some(s) = st.streams.get_mut(&name) {
                if s.resets.len() >= MAX_RESETS_KEPT {
                    s.resets.remove(0);
                }
                s.resets.push(IdReset { last_before: s.last_id, first_after: None, produced_before: s.produced });
            }
        }
        st.counters.id_resets += symbols.len() as u64;
        symbols.len()
    }
}
