//! Load mode: sequenced trade frames built from a pre-encoded template.
//!
//! Each frame is a valid Binance trade payload; only the fixed-width digits of
//! the trade id (the sequence number) and of `E`/`T` (send time in µs) are
//! patched in place, so the sender is never the bottleneck (PERF_NOTES.md).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use crate::config::LoadConfig;
use crate::hub::{Hub, KillMode};
use crate::ws;

const TIME_DIGITS: usize = 16;
const ID_DIGITS: usize = 13;

/// A pre-encoded frame with the offsets of its variable digits.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    time_at: [usize; 2],
    id_at: usize,
}

impl Template {
    fn new(symbol: &str, stream: &str, combined: bool) -> Template {
        let t = "1".repeat(TIME_DIGITS);
        let i = "2".repeat(ID_DIGITS);
        let payload = format!(
            "{{\"e\":\"trade\",\"E\":{t},\"s\":\"{symbol}\",\"t\":{i},\"p\":\"100.00000000\",\"q\":\"1.00000000\",\"T\":{t},\"m\":true,\"M\":true}}"
        );
        let payload = if combined { format!("{{\"stream\":\"{stream}\",\"data\":{payload}}}") } else { payload };
        let bytes = ws::encode(ws::op::TEXT, payload.as_bytes()).to_vec();
        let find = |pat: &str, from: usize| -> usize {
            let p = pat.as_bytes();
            (from..bytes.len() - p.len()).find(|&k| &bytes[k..k + p.len()] == p).unwrap_or(0)
        };
        let e = find("\"E\":", 0) + 4;
        let id = find("\"t\":", 0) + 4;
        let tt = find("\"T\":", 0) + 4;
        Template { time_at: [e, tt], id_at: id, bytes }
    }

    fn append(&self, out: &mut Vec<u8>, id: u64, time_us: u64) {
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

/// Produces the load stream until `messages` frames were produced.
pub(crate) async fn run(hub: Arc<Hub>, cfg: LoadConfig) {
    let stream = format!("{}@trade", cfg.symbol.to_lowercase());
    let raw = Template::new(&cfg.symbol, &stream, false);
    let comb = Template::new(&cfg.symbol, &stream, true);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_patches_id_and_time_into_valid_json() {
        let t = Template::new("LOADUSDT", "loadusdt@trade", true);
        let mut out = Vec::new();
        t.append(&mut out, 1_000_000_000_042, 1_763_000_000_123_456);
        // Skip the 2-byte frame header (payload < 126 bytes) or 4-byte one.
        let hdr = if out[1] == 126 { 4 } else { 2 };
        let v: serde_json::Value = serde_json::from_slice(&out[hdr..]).unwrap();
        assert_eq!(v["stream"], "loadusdt@trade");
        assert_eq!(v["data"]["t"], 1_000_000_000_042u64);
        assert_eq!(v["data"]["E"], 1_763_000_000_123_456u64);
        assert_eq!(v["data"]["T"], 1_763_000_000_123_456u64);
        assert_eq!(v["data"]["p"], "100.00000000");
    }
}
