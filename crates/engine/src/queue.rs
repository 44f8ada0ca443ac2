//! The bounded event queue between a connection actor and its consumer, with an
//! explicit policy when full: block the actor (lossless: the socket stops being
//! read and TCP pushes back), or drop the oldest events and report what was
//! dropped as `Gap` events ahead of the next delivery.

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

#[derive(Debug, Default)]
struct Inner {
    buf: VecDeque<Event>,
    dropped: BTreeMap<String, Dropped>,
    rx_alive: bool,
    senders: usize,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    cap: usize,
    policy: Overflow,
    readable: Notify,
    writable: Notify,
    dropped_total: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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

/// A queue of `cap` events (at least 1) with `policy`.
pub fn queue(cap: usize, policy: Overflow) -> (EventSender, EventReceiver) {
    let s = Arc::new(Shared {
        inner: Mutex::new(Inner { rx_alive: true, senders: 1, ..Inner::default() }),
        cap: cap.max(1),
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
        let mut ev = Some(ev);
        // Fast path (the common case): room in the queue, no waiter registration.
        // Only a sender that may have to wait registers for `writable`, before
        // it checks again, so no wake-up is missed.
        if self.try_push(&mut ev)? {
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
                if g.buf.len() < self.s.cap {
                    g.buf.push_back(ev.take().expect("event present until pushed"));
                    drop(g);
                    self.s.readable.notify_one();
                    return Ok(());
                }
                if self.s.policy == Overflow::DropOldest {
                    if let Some(old) = g.buf.pop_front() {
                        account(&mut g, old);
                        self.s.dropped_total.fetch_add(1, Ordering::Relaxed);
                    }
                    g.buf.push_back(ev.take().expect("event present until pushed"));
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
    fn try_push(&self, ev: &mut Option<Event>) -> Result<bool, ReceiverGone> {
        let mut g = self.s.lock();
        if !g.rx_alive {
            return Err(ReceiverGone);
        }
        if g.buf.len() < self.s.cap {
            g.buf.push_back(ev.take().expect("event present until pushed"));
            drop(g);
            self.s.readable.notify_one();
            return Ok(true);
        }
        Ok(false)
    }
}

fn account(g: &mut Inner, old: Event) {
    let (stream, seq) = match &old.kind {
        EventKind::Data { stream, seq, .. } => (stream.clone(), *seq),
        // Status events are never silently lost: keep them by putting them back in front.
        _ => {
            g.buf.push_front(old);
            // Make room by dropping the oldest data event instead.
            if let Some(i) = g.buf.iter().position(|e| matches!(e.kind, EventKind::Data { .. }))
                && let Some(d) = g.buf.remove(i)
            {
                account(g, d);
            }
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
        if let Some(stream) = g.dropped.keys().next().cloned() {
            let d = g.dropped.remove(&stream).unwrap_or_default();
            let missing = if d.countable { Missing::Count(d.count) } else { Missing::Unknown };
            return Ok(Some(Event {
                conn: d.conn,
                epoch: d.epoch,
                kind: EventKind::Gap { stream, from: d.from, to: d.to, missing },
            }));
        }
        if let Some(ev) = g.buf.pop_front() {
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
                if let Some(stream) = g.dropped.keys().next().cloned() {
                    let d = g.dropped.remove(&stream).unwrap_or_default();
                    let missing = if d.countable { Missing::Count(d.count) } else { Missing::Unknown };
                    return Some(Event {
                        conn: d.conn,
                        epoch: d.epoch,
                        kind: EventKind::Gap { stream, from: d.from, to: d.to, missing },
                    });
                }
                if let Some(ev) = g.buf.pop_front() {
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
