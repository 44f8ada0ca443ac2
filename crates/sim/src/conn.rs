//! One WebSocket connection: a reader (client frames, control messages, the
//! venue's ping duty and limits) and a writer (data, replies, kills), run
//! together in one task.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::hub::{ConnKind, ConnShared, Ctrl, Hub, KillMode, Registered};
use crate::ws::{self, ClientMsg, FrameReader, ReadError};

/// How the connection ended, from the writer's side.
#[derive(Debug)]
enum WriterEnd {
    Closed(u16),
    Reset,
    Finished,
    Io,
}

/// Runs a connection to completion.
pub(crate) async fn run(hub: Arc<Hub>, tcp: TcpStream, leftover: Bytes, reg: Registered) {
    let Registered { id, data_rx, ctrl_rx, ctrl_tx, kill_rx, shared, kind } = reg;
    let (rd, wr) = tcp.into_split();
    let reader = FrameReader::new(rd, leftover, hub.cfg.limits.max_client_frame);
    let mut client_code: Option<u16> = None;
    let reason;
    {
        let reader_fut = read_loop(&hub, id, kind, reader, ctrl_tx, &shared, &mut client_code);
        let writer_fut = write_loop(wr, data_rx, ctrl_rx, kill_rx, &shared, &hub);
        tokio::pin!(reader_fut);
        tokio::pin!(writer_fut);
        tokio::select! {
            r = &mut reader_fut => {
                reason = r;
                // The reader queued a close (or finish); let the writer send it.
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer_fut).await;
            }
            w = &mut writer_fut => {
                reason = match w {
                    WriterEnd::Closed(code) => format!("server closed ({code})"),
                    WriterEnd::Reset => "server reset".into(),
                    WriterEnd::Finished => "finished".into(),
                    WriterEnd::Io => "write failed".into(),
                };
            }
        }
    }
    hub.unregister(id, client_code, reason);
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut data_rx: mpsc::Receiver<Bytes>,
    mut ctrl_rx: mpsc::Receiver<Ctrl>,
    mut kill_rx: watch::Receiver<Option<KillMode>>,
    shared: &ConnShared,
    hub: &Hub,
) -> WriterEnd {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut pending_close: Option<(u16, String)> = None;
    let mut finish = false;
    let stalled = |s: &ConnShared| s.stalled_until_ms.load(Ordering::Relaxed) > hub.since_epoch_ms();
    let push = |buf: &mut Vec<u8>, b: &[u8], s: &ConnShared| {
        if stalled(s) {
            s.dropped_while_stalled.fetch_add(1, Ordering::Relaxed);
        } else {
            buf.extend_from_slice(b);
            s.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
    };
    loop {
        if buf.is_empty() {
            if let Some((code, reason)) = pending_close.take() {
                let _ = wr.write_all(&ws::close_frame(code, &reason)).await;
                let _ = wr.flush().await;
                let _ = wr.shutdown().await;
                return WriterEnd::Closed(code);
            }
            if finish {
                let _ = wr.shutdown().await;
                return WriterEnd::Finished;
            }
            tokio::select! {
                biased;
                k = kill_rx.changed() => match (k, *kill_rx.borrow()) {
                    (Ok(()), Some(KillMode::Reset)) => return reset(wr),
                    (Ok(()), Some(KillMode::Close)) => pending_close = Some((1001, "killed by simulator".into())),
                    _ => {}
                },
                c = ctrl_rx.recv() => match c {
                    Some(Ctrl::Frame(f)) => push(&mut buf, &f, shared),
                    Some(Ctrl::Close(code, r)) => pending_close = Some((code, r)),
                    Some(Ctrl::Finish) | None => finish = true,
                },
                d = data_rx.recv() => match d {
                    Some(f) => push(&mut buf, &f, shared),
                    None => finish = true,
                },
            }
            // Batch whatever else is already queued.
            while buf.len() < 256 * 1024 {
                match data_rx.try_recv() {
                    Ok(f) => push(&mut buf, &f, shared),
                    Err(_) => break,
                }
            }
        }
        // Write the batch; stay responsive to kills and queue replies meanwhile.
        let mut pos = 0;
        let mut later: Vec<u8> = Vec::new();
        while pos < buf.len() {
            tokio::select! {
                biased;
                k = kill_rx.changed() => match (k, *kill_rx.borrow()) {
                    (Ok(()), Some(KillMode::Reset)) => return reset(wr),
                    (Ok(()), Some(KillMode::Close)) => pending_close = Some((1001, "killed by simulator".into())),
                    _ => {}
                },
                c = ctrl_rx.recv(), if pending_close.is_none() && !finish => match c {
                    Some(Ctrl::Frame(f)) => push(&mut later, &f, shared),
                    Some(Ctrl::Close(code, r)) => pending_close = Some((code, r)),
                    Some(Ctrl::Finish) | None => finish = true,
                },
                n = wr.write(&buf[pos..]) => match n {
                    Ok(0) | Err(_) => return WriterEnd::Io,
                    Ok(n) => pos += n,
                },
            }
        }
        shared.bytes_sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
        shared.drained.notify_waiters();
        buf.clear();
        buf.extend_from_slice(&later);
    }
}

fn reset(wr: OwnedWriteHalf) -> WriterEnd {
    // A zero linger never blocks: dropping the socket sends an immediate RST.
    #[allow(deprecated)]
    let _ = wr.as_ref().set_linger(Some(Duration::ZERO));
    drop(wr);
    WriterEnd::Reset
}

/// Reads client frames until the connection must end; returns the reason.
async fn read_loop(
    hub: &Hub,
    id: u64,
    kind: ConnKind,
    mut reader: FrameReader<OwnedReadHalf>,
    ctrl: mpsc::Sender<Ctrl>,
    shared: &ConnShared,
    client_code: &mut Option<u16>,
) -> String {
    let limits = &hub.cfg.limits;
    let opened = Instant::now();
    let lifetime_end = opened + limits.max_lifetime;
    let client_pings = !kind.server_pings;
    let far = opened + Duration::from_secs(100 * 365 * 86400);
    // When the client pings, the server only cuts idle connections.
    let mut next_ping = if client_pings { far } else { opened + limits.ping_interval };
    let mut idle_deadline = if client_pings { opened + limits.idle_timeout } else { far };
    let mut outstanding: VecDeque<(Bytes, Instant)> = VecDeque::new();
    let mut recent: VecDeque<Instant> = VecDeque::with_capacity(limits.max_incoming_msgs + 1);
    let rate_limited = hub.dialect.limits_incoming(kind);
    loop {
        let pong_deadline = outstanding.front().map(|(_, t)| *t + limits.pong_timeout).unwrap_or(far);
        tokio::select! {
            msg = reader.next() => {
                let msg = match msg {
                    Ok(m) => m,
                    Err(ReadError::Protocol { code, msg }) => {
                        hub.lock().counters.protocol_errors += 1;
                        let _ = ctrl.send(Ctrl::Close(code, msg.into())).await;
                        return format!("protocol error: {msg}");
                    }
                    Err(ReadError::Io(e)) => {
                        let _ = ctrl.send(Ctrl::Finish).await;
                        return format!("client went away: {e}");
                    }
                };
                if !matches!(msg, ClientMsg::Close(..)) {
                    let now = Instant::now();
                    if client_pings {
                        idle_deadline = now + limits.idle_timeout;
                    }
                    while recent.front().is_some_and(|t| now.duration_since(*t) >= limits.msg_window) {
                        recent.pop_front();
                    }
                    if rate_limited {
                        recent.push_back(now);
                    }
                    if recent.len() > limits.max_incoming_msgs {
                        hub.lock().counters.rate_limit_closes += 1;
                        let _ = ctrl.send(Ctrl::Close(1008, "Too many requests".into())).await;
                        return "incoming message rate exceeded".into();
                    }
                }
                match msg {
                    ClientMsg::Text(t) => handle_text(hub, id, kind, &t, &ctrl).await,
                    ClientMsg::Binary(_) => {}
                    ClientMsg::Ping(p) => {
                        hub.lock().counters.client_pings += 1;
                        let _ = ctrl.send(Ctrl::Frame(ws::encode(ws::op::PONG, &p))).await;
                    }
                    ClientMsg::Pong(p) => {
                        let mut st = hub.lock();
                        st.counters.pongs_received += 1;
                        if let Some(i) = outstanding.iter().position(|(q, _)| *q == p) {
                            outstanding.drain(..=i);
                            st.counters.pongs_matched += 1;
                        } else {
                            st.counters.pongs_unmatched += 1;
                        }
                    }
                    ClientMsg::Close(code, _) => {
                        *client_code = code;
                        let _ = ctrl.send(Ctrl::Close(code.unwrap_or(1000), String::new())).await;
                        return format!("client closed ({})", code.map_or("no code".into(), |c| c.to_string()));
                    }
                }
            }
            _ = sleep_until(next_ping) => {
                next_ping += limits.ping_interval;
                if shared.stalled_until_ms.load(Ordering::Relaxed) <= hub.since_epoch_ms() {
                    let payload = Bytes::from(crate::hub::wall_ms().to_string());
                    outstanding.push_back((payload.clone(), Instant::now()));
                    if outstanding.len() > 64 {
                        outstanding.pop_back();
                    }
                    hub.lock().counters.pings_sent += 1;
                    let _ = ctrl.send(Ctrl::Frame(ws::encode(ws::op::PING, &payload))).await;
                }
            }
            _ = sleep_until(pong_deadline) => {
                hub.lock().counters.pong_timeouts += 1;
                let _ = ctrl.send(Ctrl::Close(1008, "Pong timeout".into())).await;
                return "no pong within the timeout".into();
            }
            _ = sleep_until(idle_deadline) => {
                hub.lock().counters.idle_closes += 1;
                let _ = ctrl.send(Ctrl::Close(1000, "idle timeout".into())).await;
                return "no request within the idle timeout".into();
            }
            _ = sleep_until(lifetime_end) => {
                hub.lock().counters.lifetime_closes += 1;
                let _ = ctrl.send(Ctrl::Close(1001, "Connection lifetime exceeded".into())).await;
                return "maximum lifetime reached".into();
            }
        }
    }
}

/// Answers a text frame through the market's dialect (control messages,
/// WebSocket-API requests, ops), counts it, and sends the reply (after the
/// ack-delay fault, if set).
async fn handle_text(hub: &Hub, id: u64, kind: ConnKind, text: &str, ctrl: &mpsc::Sender<Ctrl>) {
    let (frame, is_ack) = hub.dialect.answer(hub, id, kind, text);
    let delay = {
        let mut st = hub.lock();
        st.counters.control_messages += 1;
        if is_ack {
            st.counters.acks_sent += 1;
        } else {
            st.counters.errors_sent += 1;
        }
        st.faults.ack_delay
    };
    let Some(frame) = frame else { return };
    if delay.is_zero() {
        let _ = ctrl.send(Ctrl::Frame(frame)).await;
    } else {
        let ctrl = ctrl.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = ctrl.send(Ctrl::Frame(frame)).await;
        });
    }
}
