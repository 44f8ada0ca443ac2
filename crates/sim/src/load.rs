//! Load mode: sequenced frames patched into a pre-encoded template.
//!
//! The market's dialect writes the template once (Binance: a valid trade
//! payload); only the fixed-width digits of the sequence number and of the
//! send time (µs) are patched in place, so the sender is never the bottleneck
//! (PERF_NOTES.md).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use crate::config::LoadConfig;
use crate::hub::{Hub, KillMode};
use crate::ws;

/// Digits of the send time (µs) in a template.
pub(crate) const TIME_DIGITS: usize = 16;
/// Digits of the sequence number in a template.
pub(crate) const ID_DIGITS: usize = 13;

/// A pre-encoded frame with the offsets of its variable digits.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    bytes: Vec<u8>,
    time_at: [usize; 2],
    id_at: usize,
}

/// A venue's load stream: its name and its templates for raw and combined
/// subscribers.
#[derive(Debug, Clone)]
pub(crate) struct LoadStream {
    /// The stream name clients subscribe to.
    pub stream: String,
    /// The frame for raw subscribers.
    pub raw: Template,
    /// The frame for combined-stream subscribers.
    pub combined: Template,
}

impl Template {
    /// Encodes `payload` as a text frame. The sequence number is the
    /// `ID_DIGITS` digits right after the first `id_key`, the send time the
    /// `TIME_DIGITS` digits right after the first of each of `time_keys`.
    pub(crate) fn new(payload: &str, id_key: &str, time_keys: [&str; 2]) -> Template {
        let bytes = ws::encode(ws::op::TEXT, payload.as_bytes()).to_vec();
        let find = |pat: &str, from: usize| -> usize {
            let p = pat.as_bytes();
            (from..bytes.len() - p.len()).find(|&k| &bytes[k..k + p.len()] == p).unwrap_or(0)
        };
        let e = find(time_keys[0], 0) + time_keys[0].len();
        let id = find(id_key, 0) + id_key.len();
        let tt = find(time_keys[1], 0) + time_keys[1].len();
        Template { time_at: [e, tt], id_at: id, bytes }
    }

    /// Appends the frame with sequence number `id` sent at `time_us`.
    pub(crate) fn append(&self, out: &mut Vec<u8>, id: u64, time_us: u64) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let f = &mut out[start..];
        write_digits(&mut f[self.id_at..self.id_at + ID_DIGITS], id);
        for at in self.time_at {
            write_digits(&mut f[at..at + TIME_DIGITS], time_us);
        }
    }
}

fn write_digits(dst: &mut [u8], mut v: u64) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn wall_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Produces the market's load stream ([`Hub::load`]) until `messages` frames
/// were produced.
pub(crate) async fn run(hub: Arc<Hub>, cfg: LoadConfig) {
    let Some(LoadStream { stream, raw, combined: comb }) = hub.load.clone() else { return };
    let mut stop = hub.shutdown.subscribe();
    // Wait for the first subscriber.
    loop {
        let notified = hub.load_wakeup.notified();
        let any = !hub.subscribers(&hub.lock(), &stream).is_empty();
        if any {
            break;
        }
        tokio::select! {
            _ = notified => {}
            _ = stop.changed() => return,
        }
    }
    let start = Instant::now();
    let end = cfg.first_id + cfg.messages;
    let mut seq = cfg.first_id;
    let max_batch: u64 = 256;
    let (mut raw_buf, mut comb_buf) = (Vec::new(), Vec::new());
    while seq < end {
        if *stop.borrow() {
            return;
        }
        let n = match cfg.rate {
            None => max_batch,
            Some(rate) => {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                let produced = seq - cfg.first_id;
                if due <= produced {
                    let wait = Duration::from_secs_f64(1.0 / rate as f64).max(Duration::from_micros(200));
                    tokio::time::sleep(wait.min(Duration::from_millis(1))).await;
                    continue;
                }
                (due - produced).min(max_batch * 16)
            }
        }
        .min(end - seq);
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
            if cfg.rate.is_none() {
                // As fast as the reader reads: keep at most a couple of batches queued,
                // so frames are stamped close to when they are written.
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
    }
}
