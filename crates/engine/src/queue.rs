//! The bounded event queue between a connection actor and its consumer, with an
//! explicit policy when full: block the actor (lossless: the socket stops being
//! read and TCP pushes back), or drop the oldest events and report what was
//! dropped as `Gap` events ahead of the next delivery.
//!
//! The queue is bounded in events and in bytes (frame text and strings an
//! event carries, plus [`EVENT_OVERHEAD`] each), whichever is reached first;
//! one event larger than the byte budget still passes an empty queue (the
//! venue's frame-size limit bounds it). Under `DropOldest`, error and
//! unknown-frame events are dropped like data (a flood of malformed frames
//! must not grow the queue), and are reported as one coalesced error event
//! counting them. Lifecycle events (connected, gaps, disconnects…) are never
//! dropped; there are a handful per socket change.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::event::{Event, EventKind, Missing};

/// What happens when the consumer is slower than the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait for room (lossless; default).
    #[default]
    Block,
    /// Drop the oldest events; each dropped run becomes a `Gap` event.
    DropOldest,
}

#[derive(Debug, Default)]
struct Dropped {
    conn: u64,
    epoch: u64,
    from: u64,
    to: u64,
    count: u64,
    countable: bool,
}

/// Error and unknown-frame events dropped since the last report.
#[derive(Debug, Default)]
struct DroppedNotes {
    conn: u64,
    epoch: u64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    buf: VecDeque<Event>,
    /// Bytes of the events in `buf`, as [`event_bytes`] counts them.
    bytes: usize,
    peak_bytes: usize,
    dropped: BTreeMap<String, Dropped>,
    notes: Option<DroppedNotes>,
    rx_alive: bool,
    senders: usize,
}

impl Inner {
    fn push(&mut self, ev: Event) {
        self.bytes += event_bytes(&ev);
        self.peak_bytes = self.peak_bytes.max(self.bytes);
        self.buf.push_back(ev);
    }

    fn pop(&mut self) -> Option<Event> {
        let ev = self.buf.pop_front()?;
        self.bytes -= event_bytes(&ev);
        Some(ev)
    }

    /// The next report of drops, if any: gaps first, then dropped notes.
    fn drop_report(&mut self) -> Option<Event> {
        if let Some(stream) = self.dropped.keys().next().cloned() {
            let d = self.dropped.remove(&stream).unwrap_or_default();
            let missing = if d.countable { Missing::Count(d.count) } else { Missing::Unknown };
            return Some(Event {
                conn: d.conn,
                epoch: d.epoch,
                kind: EventKind::Gap { stream, from: d.from, to: d.to, missing },
            });
        }
        let n = self.notes.take()?;
        let msg = format!("{} error or unknown-frame events dropped: the event queue was full", n.count);
        Some(Event { conn: n.conn, epoch: n.epoch, kind: EventKind::Error { msg, raw: String::new() } })
    }
}

/// Bytes an event is charged beyond the strings it carries (its struct and
/// the queue slot).
pub const EVENT_OVERHEAD: usize = 128;

/// Default byte budget of a queue: 16 MiB.
pub const DEFAULT_QUEUE_BYTES: usize = 16 << 20;

/// What an event costs against the byte budget.
pub fn event_bytes(ev: &Event) -> usize {
    EVENT_OVERHEAD
        + match &ev.kind {
            EventKind::Data { stream, payload, .. } => stream.len() + payload.len(),
            EventKind::Error { msg, raw } => msg.len() + raw.len(),
            EventKind::Unknown { raw } => raw.len(),
            EventKind::Disconnected { reason } | EventKind::GaveUp { reason } => reason.len(),
            EventKind::Gap { stream, .. } => stream.len(),
            EventKind::SubscriptionFailed { stream, msg, .. } => stream.len() + msg.len(),
            EventKind::AuthFailed { msg } => msg.len(),
            EventKind::Connected | EventKind::Reconnected | EventKind::Rotated | EventKind::StateChanged(_) => 0,
        }
}

/// Whether a full `DropOldest` queue may drop the event.
fn evictable(ev: &Event) -> bool {
    matches!(ev.kind, EventKind::Data { .. } | EventKind::Error { .. } | EventKind::Unknown { .. })
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    cap: usize,
    max_bytes: usize,
    policy: Overflow,
    readable: Notify,
    writable: Notify,
    dropped_total: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an event of `size` bytes fits now.
    fn fits(&self, g: &Inner, size: usize) -> bool {
        g.buf.len() < self.cap && (g.buf.is_empty() || g.bytes + size <= self.max_bytes)
    }

    /// Drop-oldest: evicts the oldest droppable events until `size` fits
    /// (or only lifecycle events are left), counting what it dropped.
    fn make_room(&self, g: &mut Inner, size: usize) {
        while !self.fits(g, size) {
            let Some(i) = g.buf.iter().position(evictable) else { return };
            let Some(old) = g.buf.remove(i) else { return };
            g.bytes -= event_bytes(&old);
            account(g, old);
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
        }
    }
}

type NextFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Event>> + Send + Sync>>;

/// The consumer's end. Also a `futures::Stream` of events.
pub struct EventReceiver {
    s: Arc<Shared>,
    next: Option<NextFuture>,
}

impl std::fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReceiver").field("len", &self.len()).field("dropped", &self.dropped()).finish()
    }
}

/// A producer's end; clones feed the same queue (one merged, bounded stream for
/// every connection of every pool).
#[derive(Debug)]
pub struct EventSender {
    s: Arc<Shared>,
}

impl Clone for EventSender {
    fn clone(&self) -> EventSender {
        self.s.lock().senders += 1;
        EventSender { s: self.s.clone() }
    }
}

/// The consumer has gone away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverGone;

/// A queue of `cap` events (at least 1) and [`DEFAULT_QUEUE_BYTES`] with `policy`.
pub fn queue(cap: usize, policy: Overflow) -> (EventSender, EventReceiver) {
    queue_bounded(cap, DEFAULT_QUEUE_BYTES, policy)
}

/// A queue of at most `cap` events (at least 1) and `max_bytes` bytes (see
/// [`event_bytes`]) with `policy`.
pub fn queue_bounded(cap: usize, max_bytes: usize, policy: Overflow) -> (EventSender, EventReceiver) {
    let s = Arc::new(Shared {
        inner: Mutex::new(Inner { rx_alive: true, senders: 1, ..Inner::default() }),
        cap: cap.max(1),
        max_bytes,
        policy,
        readable: Notify::new(),
        writable: Notify::new(),
        dropped_total: AtomicU64::new(0),
    });
    (EventSender { s: s.clone() }, EventReceiver { s, next: None })
}

impl EventSender {
    /// Queues an event according to the policy.
    pub async fn send(&self, ev: Event) -> Result<(), ReceiverGone> {
        let size = event_bytes(&ev);
        let mut ev = Some(ev);
        // Fast path (the common case): room in the queue, no waiter registration.
        // Only a sender that may have to wait registers for `writable`, before
        // it checks again, so no wake-up is missed.
        if self.try_push(&mut ev, size)? {
            return Ok(());
        }
        loop {
            let wait = self.s.writable.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            {
                let mut g = self.s.lock();
                if !g.rx_alive {
                    return Err(ReceiverGone);
                }
                if self.s.policy == Overflow::DropOldest {
                    self.s.make_room(&mut g, size);
                }
                if self.s.fits(&g, size) || self.s.policy == Overflow::DropOldest {
                    // Drop-oldest pushes even when only lifecycle events are
                    // left (they are never dropped, and few).
                    g.push(ev.take().expect("event present until pushed"));
                    drop(g);
                    self.s.readable.notify_one();
                    return Ok(());
                }
            }
            wait.await;
        }
    }
}

impl EventSender {
    /// Pushes if the queue has room or the policy drops; `Ok(false)` when the
    /// sender must wait (the event stays in `ev`).
    fn try_push(&self, ev: &mut Option<Event>, size: usize) -> Result<bool, ReceiverGone> {
        let mut g = self.s.lock();
        if !g.rx_alive {
            return Err(ReceiverGone);
        }
        if self.s.fits(&g, size) {
            g.push(ev.take().expect("event present until pushed"));
            drop(g);
            self.s.readable.notify_one();
            return Ok(true);
        }
        Ok(false)
    }
}

/// Records a dropped event for the next drop report.
fn account(g: &mut Inner, old: Event) {
    let (stream, seq) = match &old.kind {
        EventKind::Data { stream, seq, .. } => (stream.to_string(), *seq),
        _ => {
            // An error or unknown frame: counted, reported as one event.
            let n = g.notes.get_or_insert_with(DroppedNotes::default);
            n.conn = old.conn;
            n.epoch = n.epoch.max(old.epoch);
            n.count += 1;
            return;
        }
    };
    let d = g.dropped.entry(stream).or_insert_with(|| Dropped { countable: true, ..Dropped::default() });
    d.epoch = d.epoch.max(old.epoch);
    d.conn = old.conn;
    d.count += 1;
    match seq {
        Some(s) => {
            if d.count == 1 {
                d.from = s.first;
            }
            d.to = s.last;
            d.countable &= s.prev.is_none()
                && matches!(s.kind, crate::venue::SeqKind::Counted | crate::venue::SeqKind::Restartable);
        }
        None => d.countable = false,
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        self.s.lock().senders -= 1;
        self.s.readable.notify_waiters();
        self.s.readable.notify_one();
    }
}

impl EventReceiver {
    /// The next event; `None` once the connection has ended and everything was read.
    /// Drops under [`Overflow::DropOldest`] arrive as `Gap` events before newer data.
    pub async fn recv(&mut self) -> Option<Event> {
        // A pending `poll_next` future may hold a claim; recv and poll_next are
        // not meant to be mixed, but if they are, drop the stale future.
        self.next = None;
        EventReceiver::recv_shared(&self.s).await
    }

    /// What is ready without waiting: a pending gap report, then the oldest
    /// event. `Err(())` when empty and no sender is left (the end).
    fn try_pop(s: &Shared) -> Result<Option<Event>, ()> {
        let mut g = s.lock();
        if let Some(report) = g.drop_report() {
            return Ok(Some(report));
        }
        if let Some(ev) = g.pop() {
            drop(g);
            // Cheap when nobody waits (one atomic store of a permit).
            s.writable.notify_one();
            return Ok(Some(ev));
        }
        if g.senders == 0 { Err(()) } else { Ok(None) }
    }

    async fn recv_shared(s: &Arc<Shared>) -> Option<Event> {
        // Fast path: something is ready; no waiter registration.
        match EventReceiver::try_pop(s) {
            Ok(Some(ev)) => return Some(ev),
            Err(()) => return None,
            Ok(None) => {}
        }
        let this_s = s;
        loop {
            let wait = this_s.readable.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            {
                let mut g = this_s.lock();
                if let Some(report) = g.drop_report() {
                    return Some(report);
                }
                if let Some(ev) = g.pop() {
                    drop(g);
                    this_s.writable.notify_one();
                    return Some(ev);
                }
                if g.senders == 0 {
                    return None;
                }
            }
            wait.await;
        }
    }

    /// Events dropped so far under [`Overflow::DropOldest`].
    pub fn dropped(&self) -> u64 {
        self.s.dropped_total.load(Ordering::Relaxed)
    }

    /// Events waiting to be read.
    pub fn len(&self) -> usize {
        self.s.lock().buf.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the events waiting (see [`event_bytes`]).
    pub fn bytes(&self) -> usize {
        self.s.lock().bytes
    }

    /// The most bytes ever waiting at once.
    pub fn peak_bytes(&self) -> usize {
        self.s.lock().peak_bytes
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> usize {
        self.s.max_bytes
    }
}

impl futures_util::Stream for EventReceiver {
    type Item = Event;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Event>> {
        let this = self.get_mut();
        if this.next.is_none() {
            // Fast path without allocating a future: an event is ready.
            match EventReceiver::try_pop(&this.s) {
                Ok(Some(ev)) => return std::task::Poll::Ready(Some(ev)),
                Err(()) => return std::task::Poll::Ready(None),
                Ok(None) => {}
            }
        }
        let fut = this.next.get_or_insert_with(|| {
            let s = this.s.clone();
            Box::pin(async move { EventReceiver::recv_shared(&s).await })
        });
        match fut.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                this.next = None;
                std::task::Poll::Ready(v)
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        self.s.lock().rx_alive = false;
        self.s.writable.notify_waiters();
        self.s.writable.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::Seq;
    use std::time::SystemTime;

    fn data(id: u64) -> Event {
        Event {
            conn: 0,
            epoch: 1,
            kind: EventKind::Data {
                stream: "btcusdt@trade".into(),
                payload: String::new(),
                seq: Some(Seq::single(id)),
                received: SystemTime::UNIX_EPOCH,
            },
        }
    }

    #[tokio::test]
    async fn drop_oldest_reports_the_dropped_range_before_newer_data() {
        let (tx, mut rx) = queue(3, Overflow::DropOldest);
        for id in 1..=10 {
            tx.send(data(id)).await.unwrap();
        }
        assert_eq!(rx.dropped(), 7);
        let gap = rx.recv().await.unwrap();
        assert_eq!(
            gap.kind,
            EventKind::Gap { stream: "btcusdt@trade".into(), from: 1, to: 7, missing: Missing::Count(7) }
        );
        for id in 8..=10 {
            assert_eq!(rx.recv().await.unwrap(), data(id));
        }
        drop(tx);
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn status_events_survive_drop_oldest() {
        let (tx, mut rx) = queue(2, Overflow::DropOldest);
        tx.send(Event { conn: 0, epoch: 1, kind: EventKind::Connected }).await.unwrap();
        for id in 1..=5 {
            tx.send(data(id)).await.unwrap();
        }
        let mut kinds = Vec::new();
        drop(tx);
        while let Some(e) = rx.recv().await {
            kinds.push(e.kind);
        }
        assert!(kinds.contains(&EventKind::Connected), "{kinds:?}");
        assert!(kinds.iter().any(|k| matches!(k, EventKind::Gap { .. })), "{kinds:?}");
    }

    fn junk(n: usize) -> Event {
        Event { conn: 0, epoch: 1, kind: EventKind::Error { msg: "invalid JSON".into(), raw: "x".repeat(n) } }
    }

    #[tokio::test]
    async fn a_flood_of_errors_is_bounded_and_reported_as_one_count() {
        let (tx, mut rx) = queue_bounded(1000, 64 * 1024, Overflow::DropOldest);
        tx.send(Event { conn: 0, epoch: 1, kind: EventKind::Connected }).await.unwrap();
        for _ in 0..10_000 {
            tx.send(junk(1000)).await.unwrap();
        }
        assert!(rx.bytes() <= 64 * 1024, "{} bytes", rx.bytes());
        assert!(rx.peak_bytes() <= 64 * 1024 + event_bytes(&junk(1000)));
        let kept = rx.len() as u64 - 1;
        assert_eq!(rx.dropped(), 10_000 - kept, "only real drops are counted");
        drop(tx);
        let first = rx.recv().await.unwrap();
        let EventKind::Error { msg, .. } = first.kind else { panic!("{first:?}") };
        assert!(msg.starts_with(&format!("{} error", 10_000 - kept)), "{msg}");
        assert_eq!(rx.recv().await.unwrap().kind, EventKind::Connected, "lifecycle events are kept");
        let mut n = 0;
        while let Some(e) = rx.recv().await {
            assert!(matches!(e.kind, EventKind::Error { .. }));
            n += 1;
        }
        assert_eq!(n, kept);
    }

    #[tokio::test]
    async fn block_waits_for_bytes_too() {
        let (tx, mut rx) = queue_bounded(1000, 4 * event_bytes(&junk(100)), Overflow::Block);
        let producer = tokio::spawn(async move {
            for _ in 0..50 {
                tx.send(junk(100)).await.unwrap();
            }
        });
        for _ in 0..50 {
            rx.recv().await.unwrap();
            assert!(rx.len() <= 4);
        }
        producer.await.unwrap();
        // One event larger than the whole budget still passes an empty queue.
        let (tx, mut rx) = queue_bounded(10, 10, Overflow::Block);
        tx.send(junk(1000)).await.unwrap();
        assert!(rx.recv().await.is_some());
        assert_eq!(rx.peak_bytes(), event_bytes(&junk(1000)));
    }

    #[tokio::test]
    async fn block_waits_for_room_and_loses_nothing() {
        let (tx, mut rx) = queue(2, Overflow::Block);
        let producer = tokio::spawn(async move {
            for id in 1..=100 {
                tx.send(data(id)).await.unwrap();
            }
        });
        for id in 1..=100 {
            assert_eq!(rx.recv().await.unwrap(), data(id));
            assert!(rx.len() <= 2);
        }
        producer.await.unwrap();
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.dropped(), 0);
    }

    /// Many blocked senders on other threads and a receiver that keeps
    /// cancelling its wait still move every event, in order per sender (a
    /// lost wake-up would hang here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_wake_up_is_lost_between_threads() {
        use futures_util::StreamExt;
        for cap in [1, 3, 64] {
            let (tx, mut rx) = queue(cap, Overflow::Block);
            let producers: Vec<_> = (0..4u64)
                .map(|p| {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        for id in 0..5_000 {
                            tx.send(data(p * 1_000_000 + id)).await.unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let mut last = [None::<u64>; 4];
            let mut n = 0;
            let receive = async {
                loop {
                    // Alternate the two ways of receiving; the short timer cancels
                    // pending waits now and then.
                    let ev = if n % 2 == 0 {
                        tokio::select! {
                            e = rx.next() => e,
                            _ = tokio::time::sleep(std::time::Duration::from_micros(50)) => continue,
                        }
                    } else {
                        rx.recv().await
                    };
                    let Some(ev) = ev else { break };
                    let EventKind::Data { seq: Some(seq), .. } = ev.kind else { panic!("{ev:?}") };
                    let (p, id) = ((seq.first / 1_000_000) as usize, seq.first % 1_000_000);
                    assert_eq!(last[p].map_or(0, |l| l + 1), id, "per-sender order");
                    last[p] = Some(id);
                    n += 1;
                }
            };
            // A hang guard, not a timing bound: the run takes well under a second.
            let done = tokio::time::timeout(std::time::Duration::from_secs(30), receive).await;
            assert!(done.is_ok(), "a wake-up was lost (capacity {cap})");
            assert_eq!(n, 20_000);
            for p in producers {
                p.await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_gone_consumer_unblocks_the_sender() {
        let (tx, rx) = queue(1, Overflow::Block);
        tx.send(data(1)).await.unwrap();
        let pending = tokio::spawn(async move { tx.send(data(2)).await });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(pending.await.unwrap(), Err(ReceiverGone));
    }
}
