//! Delivery of Binance user events: to listenKey connections bare (or in the
//! combined envelope, the key as stream name) and to WS-API subscriptions as
//! `{"subscriptionId":N,"event":{..}}`; and listenKey expiry
//! (`listenKeyExpired`).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::account::{ListenKey, Scope};
use crate::hub::{Hub, HubState, KillMode};
use crate::ws;

/// Queues a user event for every connection that reads `account` on `scope`:
/// listenKey connections get it bare (or in the combined envelope with the
/// key as stream name), WS-API subscriptions of that scope (spot logon or
/// signature subscriptions, margin listenToken ones) wrapped as
/// `{"subscriptionId":N,"event":{..}}`. Counted as produced either way.
pub(crate) fn deliver_user(hub: &Hub, st: &mut HubState, account: usize, scope: &Scope, event: &str, payload: &str) {
    if let Some(a) = st.accounts.list.get_mut(account) {
        *a.events.entry(event.to_string()).or_default() += 1;
    }
    let now = hub.since_epoch_ms();
    let mut slow = Vec::new();
    let mut queued = 0u64;
    for (id, c) in &st.conns {
        let mut frames: Vec<Bytes> = Vec::new();
        for ls in &c.listen {
            let Some(k) = st.accounts.listen_keys.get(&ls.key) else { continue };
            if k.account != account || k.scope != *scope {
                continue;
            }
            if ls.events.as_ref().is_some_and(|ev| !ev.iter().any(|e| e == event)) {
                continue;
            }
            frames.push(listen_frame(c.combined, &ls.key, payload));
        }
        for sub in c.user_subs.iter().filter(|s| s.account == account && s.scope == *scope) {
            let text = format!("{{\"subscriptionId\":{},\"event\":{payload}}}", sub.id);
            frames.push(ws::encode(ws::op::TEXT, text.as_bytes()));
        }
        if frames.is_empty() {
            continue;
        }
        if c.shared.stalled_until_ms.load(Ordering::Relaxed) > now {
            c.shared.dropped_while_stalled.fetch_add(frames.len() as u64, Ordering::Relaxed);
            continue;
        }
        for f in frames {
            match c.data_tx.try_send(f) {
                Ok(()) => queued += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slow.push(*id);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
    }
    if let Some(a) = st.accounts.list.get_mut(account) {
        a.frames_queued += queued;
    }
    for id in slow {
        st.counters.slow_consumer_resets += 1;
        if let Some(c) = st.conns.get(&id) {
            let _ = c.kill_tx.send(Some(KillMode::Reset));
        }
    }
}

/// Expires the listenKeys `which` selects: each connection reading one gets
/// `listenKeyExpired` (USD-M writes `E` as a string, as the venue does), then
/// nothing more for that key. Returns how many keys expired.
pub(crate) fn expire_listen_keys(hub: &Hub, st: &mut HubState, which: impl Fn(&str, &ListenKey) -> bool) -> usize {
    let keys: Vec<String> =
        st.accounts.listen_keys.iter().filter(|(k, v)| which(k, v)).map(|(k, _)| k.clone()).collect();
    let now = hub.venue_ms(st);
    for key in &keys {
        let Some(lk) = st.accounts.listen_keys.remove(key) else { continue };
        let e = if lk.scope == Scope::UsdM { format!("\"{now}\"") } else { now.to_string() };
        let payload = format!("{{\"e\":\"listenKeyExpired\",\"E\":{e},\"listenKey\":\"{key}\"}}");
        if let Some(a) = st.accounts.list.get_mut(lk.account) {
            *a.events.entry("listenKeyExpired".into()).or_default() += 1;
        }
        let mut queued = 0;
        for c in st.conns.values() {
            for ls in c.listen.iter().filter(|l| l.key == *key) {
                if c.data_tx.try_send(listen_frame(c.combined, &ls.key, &payload)).is_ok() {
                    queued += 1;
                }
            }
        }
        if let Some(a) = st.accounts.list.get_mut(lk.account) {
            a.frames_queued += queued;
        }
    }
    keys.len()
}

/// A user event frame for a listenKey connection.
fn listen_frame(combined: bool, key: &str, payload: &str) -> Bytes {
    if combined {
        let text = format!("{{\"stream\":\"{key}\",\"data\":{payload}}}");
        ws::encode(ws::op::TEXT, text.as_bytes())
    } else {
        ws::encode(ws::op::TEXT, payload.as_bytes())
    }
}
