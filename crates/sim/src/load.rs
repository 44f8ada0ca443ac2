//! Load mode: sequenced frames, as fast as the reader reads or at a fixed
//! rate, so a client's throughput, latency and loss can be measured
//! (docs/sim.md, "Load mode"; PERF_NOTES.md).
//!
//! A market serves every load form its dialect writes ([`LoadForm`]):
//! - a **sequenced stream** ([`LoadStream`]): one pre-encoded template per
//!   frame shape; only the fixed-width digits of the sequence number and of
//!   the send time are patched in place (trades);
//! - **diff books** ([`BookLoad`]): K synthetic books fed round-robin from one
//!   cycle of pre-generated diffs with consecutive update ids; each book's
//!   state is known at every update id, so REST snapshots line up with the
//!   diffs. The diffs are venue-neutral (integer ticks and lots); the
//!   dialect writes them once ([`DiffWriter`]) and frames are assembled from
//!   those bytes.
//!
//! Either way the sender is never the bottleneck: no JSON is formatted per
//! frame beyond a few integers.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use crate::config::LoadConfig;
use crate::hub::{Hub, KillMode, Subscriber};
use crate::ws;

/// Digits of a send time in microseconds.
pub(crate) const TIME_DIGITS: usize = 16;
/// Digits of a send time in milliseconds.
pub(crate) const TIME_MS_DIGITS: usize = 13;
/// Digits of the sequence number in a template.
pub(crate) const ID_DIGITS: usize = 13;

/// What is patched into a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patch {
    /// The sequence number, [`ID_DIGITS`] digits.
    Id,
    /// The send time in microseconds, [`TIME_DIGITS`] digits.
    TimeUs,
    /// The send time in milliseconds, [`TIME_MS_DIGITS`] digits.
    TimeMs,
}

impl Patch {
    fn width(self) -> usize {
        match self {
            Patch::Id => ID_DIGITS,
            Patch::TimeUs => TIME_DIGITS,
            Patch::TimeMs => TIME_MS_DIGITS,
        }
    }
}

/// A pre-encoded frame with the offsets of its variable digits.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    bytes: Vec<u8>,
    patches: Vec<(usize, Patch)>,
}

/// A venue's sequenced load stream: its name and its templates for raw and
/// combined subscribers (the same frame where the venue has no envelope).
#[derive(Debug, Clone)]
pub(crate) struct LoadStream {
    /// The stream name clients subscribe to.
    pub stream: String,
    /// The frame for raw subscribers.
    pub raw: Template,
    /// The frame for combined-stream subscribers.
    pub combined: Template,
}

/// One load form a market serves.
#[derive(Debug, Clone)]
pub(crate) enum LoadForm {
    /// One stream of frames from one template.
    Stream(LoadStream),
    /// Diff streams of synthetic books.
    Books(Arc<BookLoad>),
}

impl LoadForm {
    /// The stream names of the form.
    pub(crate) fn streams(&self) -> Vec<String> {
        match self {
            LoadForm::Stream(s) => vec![s.stream.clone()],
            LoadForm::Books(b) => b.books.iter().map(|k| k.stream.clone()).collect(),
        }
    }
}

impl Template {
    /// Encodes `payload` as a text frame. Each `(key, patch)` names the
    /// digits right after the first occurrence of `key`: they must already be
    /// there, as many as the patch writes (placeholders). `None` when one is
    /// missing (a dialect's mistake, caught by its tests).
    pub(crate) fn build(payload: &str, patches: &[(&str, Patch)]) -> Option<Template> {
        let bytes = ws::encode(ws::op::TEXT, payload.as_bytes()).to_vec();
        let mut at = Vec::with_capacity(patches.len());
        for (key, patch) in patches {
            let k = key.as_bytes();
            let start = bytes.windows(k.len()).position(|w| w == k)? + k.len();
            let digits = bytes.get(start..start + patch.width())?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            at.push((start, *patch));
        }
        Some(Template { bytes, patches: at })
    }

    /// Appends the frame with sequence number `id` sent at `time_us`.
    pub(crate) fn append(&self, out: &mut Vec<u8>, id: u64, time_us: u64) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let f = &mut out[start..];
        for &(at, patch) in &self.patches {
            let v = match patch {
                Patch::Id => id,
                Patch::TimeUs => time_us,
                Patch::TimeMs => time_us / 1000,
            };
            write_digits(&mut f[at..at + patch.width()], v);
        }
    }
}

fn write_digits(dst: &mut [u8], mut v: u64) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Appends `v` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn wall_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

// ------------------------------------------------------------------ diff books

/// One side of a synthetic book: price (ticks) → quantity (lots).
pub(crate) type Side = BTreeMap<i64, i64>;

/// One diff: absolute quantities per price (0 deletes), bids best first,
/// asks best first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub bids: Vec<(i64, i64)>,
    pub asks: Vec<(i64, i64)>,
}

impl Diff {
    /// The update ids the diff covers: one per level changed.
    fn span(&self) -> u64 {
        (self.bids.len() + self.asks.len()) as u64
    }
}

/// How a dialect writes the depth form's frames.
pub(crate) trait DiffWriter: Debug + Send + Sync {
    /// The bytes of `diff`'s levels, written once per diff of the cycle and
    /// handed back to [`DiffWriter::payload`].
    fn levels(&self, diff: &Diff) -> Vec<u8>;
    /// Appends the payload (no frame header) of one diff of `book` covering
    /// update ids `first..=last`, sent at `time_us`.
    fn payload(&self, out: &mut Vec<u8>, book: &LoadBook, combined: bool, ids: (u64, u64), time_us: u64, levels: &[u8]);
}

/// One book of the depth form.
#[derive(Debug, Clone)]
pub(crate) struct LoadBook {
    /// Its diff stream, e.g. `load0usdt@depth@100ms`.
    pub stream: String,
    /// Its symbol, upper case, e.g. `LOAD0USDT`.
    pub symbol: String,
    /// Where in the cycle it starts (so no two books look alike).
    offset: usize,
}

#[cfg(test)]
impl LoadBook {
    /// A book at offset 0.
    pub(crate) fn for_test(stream: &str, symbol: &str) -> LoadBook {
        LoadBook { stream: stream.to_string(), symbol: symbol.to_string(), offset: 0 }
    }
}

/// Where the book of a depth form is (under [`BookLoad::positions`]).
#[derive(Debug, Clone, Copy)]
struct Position {
    /// Diffs produced so far.
    produced: u64,
    /// The last update id produced (`first_id - 1` before the first diff).
    last_u: u64,
}

/// The tick mid of every synthetic book: bids below it, asks above, never crossed.
pub(crate) const MID_TICKS: i64 = 1_000_000;
/// Price levels a side may hold: ticks `MID ± 1 ..= MID ± WINDOW`.
pub(crate) const WINDOW: i64 = 100;
/// Forward diffs in a cycle; the cycle then undoes them in reverse order, so
/// it ends where it started.
const HALF_CYCLE: usize = 1024;
/// A book state is kept every this many cycle positions.
const CHECKPOINT: usize = 64;

/// One level change of a generated diff: price, new quantity, old quantity.
type Change = (i64, i64, i64);

/// The diffs every book of a depth form is fed, and their states.
#[derive(Debug)]
struct Cycle {
    diffs: Vec<Diff>,
    /// `spans[i]`: update ids covered by diffs `0..i`.
    spans: Vec<u64>,
    /// The state at positions `0, CHECKPOINT, 2·CHECKPOINT, ...`.
    checkpoints: Vec<(Side, Side)>,
}

impl Cycle {
    /// A seeded cycle: a book of up to [`WINDOW`] levels a side (70% of the
    /// ticks filled), then [`HALF_CYCLE`] diffs of 1–40 levels (six in ten of
    /// 1–8, three of 8–23, one of 20–40), 70% of the changes within 20 ticks
    /// of the mid, 25% within 60, the rest within the window; an existing level
    /// is deleted (quantity 0) one time in three and changed otherwise, an
    /// empty one is filled. Then the same diffs undone, last first.
    fn generate(seed: u64) -> Cycle {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut bids, mut asks) = (Side::new(), Side::new());
        for d in 1..=WINDOW {
            if rng.random_range(0..10) < 7 {
                bids.insert(MID_TICKS - d, rng.random_range(1..=5000));
            }
            if rng.random_range(0..10) < 7 {
                asks.insert(MID_TICKS + d, rng.random_range(1..=5000));
            }
        }
        let start = (bids.clone(), asks.clone());
        // (price, new, old) per change; bids then asks.
        let mut forward: Vec<(Vec<Change>, Vec<Change>)> = Vec::with_capacity(HALF_CYCLE);
        for _ in 0..HALF_CYCLE {
            let size = match rng.random_range(0..10) {
                0..=5 => rng.random_range(1..=8),
                6..=8 => rng.random_range(8..=23),
                _ => rng.random_range(20..=40),
            };
            let (mut b, mut a): (Vec<Change>, Vec<Change>) = (Vec::new(), Vec::new());
            while b.len() + a.len() < size {
                let d = match rng.random_range(0..100) {
                    0..=69 => rng.random_range(1..=20),
                    70..=94 => rng.random_range(1..=60),
                    _ => rng.random_range(1..=WINDOW),
                };
                let bid = rng.random_bool(0.5);
                let (side, changes, price) =
                    if bid { (&mut bids, &mut b, MID_TICKS - d) } else { (&mut asks, &mut a, MID_TICKS + d) };
                if changes.iter().any(|c| c.0 == price) {
                    continue;
                }
                let old = side.get(&price).copied().unwrap_or(0);
                let new = if old > 0 && rng.random_range(0..3) == 0 {
                    0
                } else {
                    let mut q = rng.random_range(1..=5000);
                    if q == old {
                        q = old % 5000 + 1;
                    }
                    q
                };
                if new == 0 {
                    side.remove(&price);
                } else {
                    side.insert(price, new);
                }
                changes.push((price, new, old));
            }
            forward.push((b, a));
        }
        let best_first = |mut v: Vec<(i64, i64)>, bids: bool| {
            v.sort_by_key(|l| if bids { -l.0 } else { l.0 });
            v
        };
        let mut diffs = Vec::with_capacity(2 * HALF_CYCLE);
        for (b, a) in &forward {
            diffs.push(Diff {
                bids: best_first(b.iter().map(|c| (c.0, c.1)).collect(), true),
                asks: best_first(a.iter().map(|c| (c.0, c.1)).collect(), false),
            });
        }
        for (b, a) in forward.iter().rev() {
            diffs.push(Diff {
                bids: best_first(b.iter().map(|c| (c.0, c.2)).collect(), true),
                asks: best_first(a.iter().map(|c| (c.0, c.2)).collect(), false),
            });
        }
        let mut spans = Vec::with_capacity(diffs.len() + 1);
        spans.push(0);
        for d in &diffs {
            spans.push(spans.last().copied().unwrap_or(0) + d.span());
        }
        let mut checkpoints = Vec::new();
        let mut state = start;
        for (i, d) in diffs.iter().enumerate() {
            if i % CHECKPOINT == 0 {
                checkpoints.push(state.clone());
            }
            apply(&mut state, d);
        }
        Cycle { diffs, spans, checkpoints }
    }

    fn len(&self) -> usize {
        self.diffs.len()
    }

    /// Update ids covered by `count` diffs from position `from`.
    fn span(&self, from: usize, count: u64) -> u64 {
        let n = self.len() as u64;
        let total = self.spans[self.len()];
        let (full, rest) = (count / n, (count % n) as usize);
        let end = from + rest;
        let part = if end <= self.len() {
            self.spans[end] - self.spans[from]
        } else {
            (total - self.spans[from]) + self.spans[end - self.len()]
        };
        full * total + part
    }

    /// The book at cycle position `pos` (after diffs `0..pos` from the start).
    fn state(&self, pos: usize) -> (Side, Side) {
        let pos = pos % self.len();
        let base = pos / CHECKPOINT;
        let mut s = self.checkpoints[base].clone();
        for d in &self.diffs[base * CHECKPOINT..pos] {
            apply(&mut s, d);
        }
        s
    }
}

fn apply(state: &mut (Side, Side), d: &Diff) {
    for (side, levels) in [(&mut state.0, &d.bids), (&mut state.1, &d.asks)] {
        for &(p, q) in levels {
            if q == 0 {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
        }
    }
}

/// A depth form: K books, one shared cycle of diffs, where each book is.
#[derive(Debug)]
pub(crate) struct BookLoad {
    /// The books, in round-robin order.
    pub books: Vec<LoadBook>,
    cycle: Cycle,
    /// The dialect's bytes of each diff's levels.
    levels: Vec<Vec<u8>>,
    writer: Box<dyn DiffWriter>,
    first_id: u64,
    messages: u64,
    positions: Mutex<Vec<Position>>,
}

/// A book of the depth form at its last produced update id, best levels first.
#[derive(Debug, Clone)]
pub(crate) struct BookView {
    /// The last update id the book contains.
    pub last_update_id: u64,
    /// (price ticks, quantity lots), best first.
    pub bids: Vec<(i64, i64)>,
    /// (price ticks, quantity lots), best first.
    pub asks: Vec<(i64, i64)>,
}

impl BookLoad {
    /// `cfg.books` books named by `name(k)` (stream, symbol), written by `writer`.
    pub(crate) fn new(cfg: &LoadConfig, name: impl Fn(usize) -> (String, String), writer: Box<dyn DiffWriter>) -> Self {
        let cycle = Cycle::generate(0x10ad_b00c);
        let levels = cycle.diffs.iter().map(|d| writer.levels(d)).collect();
        let k = cfg.books.max(1);
        // Spread the books' starting points over the cycle (a prime stride).
        let books = (0..k)
            .map(|i| {
                let (stream, symbol) = name(i);
                LoadBook { stream, symbol, offset: (i * 613) % cycle.len() }
            })
            .collect();
        let start = Position { produced: 0, last_u: cfg.first_id.saturating_sub(1) };
        BookLoad {
            books,
            levels,
            writer,
            first_id: cfg.first_id,
            messages: cfg.messages,
            positions: Mutex::new(vec![start; k]),
            cycle,
        }
    }

    fn positions(&self) -> MutexGuard<'_, Vec<Position>> {
        self.positions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The book of `symbol`, if it is one of this form's, at its last
    /// produced update id (what a REST snapshot returns).
    pub(crate) fn view(&self, symbol: &str) -> Option<BookView> {
        let k = self.books.iter().position(|b| b.symbol == symbol)?;
        let at = self.positions()[k];
        let pos = (self.books[k].offset as u64 + at.produced % self.cycle.len() as u64) as usize;
        let (bids, asks) = self.cycle.state(pos);
        Some(BookView {
            last_update_id: at.last_u,
            bids: bids.iter().rev().map(|(p, q)| (*p, *q)).collect(),
            asks: asks.iter().map(|(p, q)| (*p, *q)).collect(),
        })
    }

    /// Diffs book `k` gets out of the form's `messages` (round-robin).
    fn frames_of(&self, k: usize) -> u64 {
        let n = self.books.len() as u64;
        self.messages / n + u64::from((k as u64) < self.messages % n)
    }

    /// The plan: per book, its stream, symbol, diffs and first and last update ids.
    pub(crate) fn plan(&self) -> Vec<serde_json::Value> {
        self.books
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let frames = self.frames_of(k);
                serde_json::json!({
                    "stream": b.stream,
                    "symbol": b.symbol,
                    "frames": frames,
                    "first_update_id": self.first_id,
                    "last_update_id": self.first_id.saturating_sub(1) + self.cycle.span(b.offset, frames),
                })
            })
            .collect()
    }
}

/// One frame of a batch: its book, cycle position and update ids.
#[derive(Debug, Clone, Copy)]
struct Slot {
    book: usize,
    pos: usize,
    first: u64,
    last: u64,
}

// ------------------------------------------------------------------ production

/// The load forms of a market, as the plan `GET /admin/load` shows: per
/// form its streams and the ids its frames will carry.
pub(crate) fn plan(hub: &Hub) -> serde_json::Value {
    let Some(cfg) = hub.cfg.load.as_ref() else {
        return serde_json::json!({ "messages": 0, "rate": null, "streams": [] });
    };
    let mut streams = Vec::new();
    for form in &hub.load {
        match form {
            LoadForm::Stream(s) => streams.push(serde_json::json!({
                "stream": s.stream,
                "frames": cfg.messages,
                "first_id": cfg.first_id,
                "last_id": (cfg.first_id + cfg.messages).saturating_sub(1),
            })),
            LoadForm::Books(b) => streams.extend(b.plan()),
        }
    }
    serde_json::json!({ "messages": cfg.messages, "rate": cfg.rate, "streams": streams })
}

/// Produces one load form of the market until its frames are produced.
pub(crate) async fn run(hub: Arc<Hub>, cfg: LoadConfig, form: LoadForm) {
    match form {
        LoadForm::Stream(s) => run_stream(hub, cfg, s).await,
        LoadForm::Books(b) => run_books(hub, cfg, b).await,
    }
}

/// Frames per batch (per connection write) at full speed.
const MAX_BATCH: u64 = 256;

/// How many frames are due now: a batch at full speed, or what the rate
/// allows since `start` beyond `produced` (`None`: nothing yet, after a
/// short sleep).
async fn due(cfg: &LoadConfig, start: Instant, produced: u64) -> Option<u64> {
    match cfg.rate {
        None => Some(MAX_BATCH),
        Some(rate) => {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if due <= produced {
                let wait = Duration::from_secs_f64(1.0 / rate as f64).max(Duration::from_micros(200));
                tokio::time::sleep(wait.min(Duration::from_millis(1))).await;
                return None;
            }
            Some((due - produced).min(MAX_BATCH * 16))
        }
    }
}

/// Hands one batch to a subscriber: at full speed after waiting until at
/// most one batch is queued on it (frames are stamped close to when they are
/// written); at a fixed rate at once, resetting it as a slow consumer when
/// its queue is full.
async fn deliver(hub: &Hub, sub: &Subscriber, b: Bytes, rated: bool) {
    if !rated {
        while sub.tx.max_capacity() - sub.tx.capacity() >= 2 && !sub.tx.is_closed() {
            let drained = sub.shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if sub.tx.max_capacity() - sub.tx.capacity() < 2 {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), drained).await;
        }
        let _ = sub.tx.send(b).await;
    } else if let Err(TrySendError::Full(_)) = sub.tx.try_send(b) {
        let mut st = hub.lock();
        if let Some(c) = st.conns.get(&sub.id) {
            let _ = c.kill_tx.send(Some(KillMode::Reset));
        }
        st.counters.slow_consumer_resets += 1;
    }
}

/// Waits until `ready` holds (checked on every subscription and every 50 ms);
/// `false` on shutdown.
async fn wait_until(hub: &Hub, stop: &mut tokio::sync::watch::Receiver<bool>, ready: impl Fn() -> bool) -> bool {
    loop {
        let notified = hub.load_wakeup.notified();
        if ready() {
            return true;
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.changed() => return false,
        }
        if *stop.borrow() {
            return false;
        }
    }
}

/// A sequenced stream: starts when the first connection subscribes.
async fn run_stream(hub: Arc<Hub>, cfg: LoadConfig, load: LoadStream) {
    let LoadStream { stream, raw, combined: comb } = load;
    let mut stop = hub.shutdown.subscribe();
    if !wait_until(&hub, &mut stop, || !hub.subscribers(&hub.lock(), &stream).is_empty()).await {
        return;
    }
    let start = Instant::now();
    let end = cfg.first_id + cfg.messages;
    let mut seq = cfg.first_id;
    let (mut raw_buf, mut comb_buf) = (Vec::new(), Vec::new());
    while seq < end {
        if *stop.borrow() {
            return;
        }
        let Some(n) = due(&cfg, start, seq - cfg.first_id).await else { continue };
        let n = n.min(end - seq);
        let (subs, dropped, set_first) = {
            let mut st = hub.lock();
            let dropped = match st.faults.drop.get_mut(&stream) {
                Some(d) if *d > 0 => {
                    let k = (*d).min(n);
                    *d -= k;
                    k
                }
                _ => 0,
            };
            st.counters.dropped_by_fault += dropped;
            let mut set_first = false;
            if let Some(s) = st.streams.get_mut(&stream) {
                s.produced += n;
                if s.first_id.is_none() {
                    s.first_id = Some(seq);
                    set_first = true;
                }
                s.last_id = Some(seq + n - 1);
            }
            let subs = hub.subscribers(&st, &stream);
            (subs, dropped, set_first)
        };
        if subs.is_empty() && cfg.rate.is_none() {
            // Nobody to send to at full speed: wait instead of burning the sequence.
            {
                let mut st = hub.lock();
                if let Some(s) = st.streams.get_mut(&stream) {
                    s.produced -= n;
                    s.last_id = if seq > cfg.first_id { Some(seq - 1) } else { None };
                    if set_first {
                        s.first_id = None;
                    }
                }
                st.counters.dropped_by_fault -= dropped;
                if let Some(d) = st.faults.drop.get_mut(&stream) {
                    *d += dropped;
                }
            }
            let notified = hub.load_wakeup.notified();
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let now = wall_us();
        raw_buf.clear();
        comb_buf.clear();
        let need_raw = subs.iter().any(|s| !s.combined);
        let need_comb = subs.iter().any(|s| s.combined);
        for id in seq + dropped..seq + n {
            if need_raw {
                raw.append(&mut raw_buf, id, now);
            }
            if need_comb {
                comb.append(&mut comb_buf, id, now);
            }
        }
        seq += n;
        if raw_buf.is_empty() && comb_buf.is_empty() {
            continue;
        }
        let (rb, cb) = (Bytes::copy_from_slice(&raw_buf), Bytes::copy_from_slice(&comb_buf));
        for sub in subs {
            let b = if sub.combined { cb.clone() } else { rb.clone() };
            deliver(&hub, &sub, b, cfg.rate.is_some()).await;
        }
    }
}

/// Diff books: start when every book's stream has a subscriber; frame `j`
/// of the form goes to book `j mod K`.
async fn run_books(hub: Arc<Hub>, cfg: LoadConfig, load: Arc<BookLoad>) {
    let mut stop = hub.shutdown.subscribe();
    let all_subscribed = || {
        let st = hub.lock();
        load.books.iter().all(|b| !hub.subscribers(&st, &b.stream).is_empty())
    };
    if !wait_until(&hub, &mut stop, all_subscribed).await {
        return;
    }
    let k = load.books.len();
    let cycle_len = load.cycle.len();
    let start = Instant::now();
    let mut produced: u64 = 0;
    let mut slots: Vec<Slot> = Vec::new();
    let mut payload: Vec<u8> = Vec::new();
    while produced < load.messages {
        if *stop.borrow() {
            return;
        }
        let Some(n) = due(&cfg, start, produced).await else { continue };
        let n = n.min(load.messages - produced);
        // Which connections get which book, and the drop fault.
        let mut conns: Vec<(Subscriber, Vec<u8>)> = Vec::new();
        let mut conn_of: HashMap<u64, usize> = HashMap::new();
        let mut readers: HashMap<usize, Vec<usize>> = HashMap::new();
        let any = {
            let st = hub.lock();
            let mut any = false;
            for i in 0..n.min(k as u64) {
                let b = ((produced + i) % k as u64) as usize;
                let list = readers.entry(b).or_default();
                for sub in hub.subscribers(&st, &load.books[b].stream) {
                    any = true;
                    let idx = *conn_of.entry(sub.id).or_insert_with(|| {
                        conns.push((sub, Vec::new()));
                        conns.len() - 1
                    });
                    list.push(idx);
                }
            }
            any
        };
        if !any && cfg.rate.is_none() {
            // Nobody to send to at full speed: wait instead of moving the books.
            let notified = hub.load_wakeup.notified();
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        // Move the books (what REST snapshots show from now on).
        slots.clear();
        {
            let mut at = load.positions();
            for i in 0..n {
                let b = ((produced + i) % k as u64) as usize;
                let p = &mut at[b];
                let pos = (load.books[b].offset + (p.produced % cycle_len as u64) as usize) % cycle_len;
                let first = p.last_u + 1;
                let last = p.last_u + load.cycle.diffs[pos].span();
                p.produced += 1;
                p.last_u = last;
                slots.push(Slot { book: b, pos, first, last });
            }
        }
        produced += n;
        // Ground truth and the drop fault, per book.
        let mut dropped: Vec<bool> = vec![false; slots.len()];
        {
            let mut st = hub.lock();
            for (i, s) in slots.iter().enumerate() {
                let name = &load.books[s.book].stream;
                if let Some(d) = st.faults.drop.get_mut(name)
                    && *d > 0
                {
                    *d -= 1;
                    dropped[i] = true;
                    st.counters.dropped_by_fault += 1;
                }
                if let Some(e) = st.streams.get_mut(name) {
                    e.produced += 1;
                    e.first_id.get_or_insert(s.first);
                    e.last_id = Some(s.last);
                }
            }
        }
        let now = wall_us();
        for (i, s) in slots.iter().enumerate() {
            let Some(list) = readers.get(&s.book).filter(|_| !dropped[i]) else { continue };
            let book = &load.books[s.book];
            let levels = &load.levels[s.pos];
            for combined in [false, true] {
                if !list.iter().any(|&c| conns[c].0.combined == combined) {
                    continue;
                }
                payload.clear();
                load.writer.payload(&mut payload, book, combined, (s.first, s.last), now, levels);
                for &c in list {
                    if conns[c].0.combined == combined {
                        ws::encode_into(&mut conns[c].1, ws::op::TEXT, &payload);
                    }
                }
            }
        }
        for (sub, buf) in conns {
            if !buf.is_empty() {
                deliver(&hub, &sub, Bytes::from(buf), cfg.rate.is_some()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_ends_where_it_started_and_never_crosses() {
        let c = Cycle::generate(7);
        assert_eq!(c.len(), 2 * HALF_CYCLE);
        let start = c.state(0);
        let mut s = start.clone();
        let mut sizes = Vec::new();
        let mut deletes = 0;
        for (i, d) in c.diffs.iter().enumerate() {
            assert_eq!(s, c.state(i), "checkpoint replay at {i}");
            apply(&mut s, d);
            sizes.push(d.bids.len() + d.asks.len());
            deletes += d.bids.iter().chain(&d.asks).filter(|l| l.1 == 0).count();
            let (bb, ba) = (s.0.keys().next_back(), s.1.keys().next());
            if let (Some(b), Some(a)) = (bb, ba) {
                assert!(b < a, "crossed at {i}");
            }
            assert!(s.0.len() <= WINDOW as usize && s.1.len() <= WINDOW as usize);
            // Best first, each price once.
            assert!(d.bids.windows(2).all(|w| w[0].0 > w[1].0), "{d:?}");
            assert!(d.asks.windows(2).all(|w| w[0].0 < w[1].0), "{d:?}");
        }
        assert_eq!(s, start, "the cycle undoes itself");
        assert_eq!(*sizes.iter().min().unwrap_or(&0), 1);
        assert_eq!(*sizes.iter().max().unwrap_or(&0), 40);
        let levels: usize = sizes.iter().sum();
        assert!(deletes * 5 > levels, "about a third of the changes delete: {deletes} of {levels}");
    }

    #[test]
    fn spans_add_up_across_the_wrap() {
        let c = Cycle::generate(7);
        let n = c.len();
        let naive = |from: usize, count: u64| (0..count).map(|i| c.diffs[(from + i as usize) % n].span()).sum::<u64>();
        for (from, count) in [(0, 0), (0, 5), (n - 3, 10), (17, n as u64), (n - 1, 3 * n as u64 + 7)] {
            assert_eq!(c.span(from, count), naive(from, count), "{from} {count}");
        }
    }

    #[test]
    fn templates_refuse_missing_placeholders() {
        assert!(Template::build("{\"t\":1111}", &[("\"t\":", Patch::Id)]).is_none(), "too few digits");
        assert!(Template::build("{\"x\":1}", &[("\"t\":", Patch::Id)]).is_none(), "no key");
        let t = Template::build(
            "{\"t\":2222222222222,\"E\":1111111111111}",
            &[("\"t\":", Patch::Id), ("\"E\":", Patch::TimeMs)],
        );
        let Some(t) = t else { panic!("valid template refused") };
        let mut out = Vec::new();
        t.append(&mut out, 1_000_000_000_042, 1_763_000_000_123_456);
        assert_eq!(&out[2..], b"{\"t\":1000000000042,\"E\":1763000000123}");
    }
}
