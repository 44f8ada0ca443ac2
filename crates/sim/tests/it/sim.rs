//! Behaviour of the simulator over real sockets on 127.0.0.1: control messages,
//! venue limits, ping duty, every fault, REST alignment with the diff streams,
//! and the load stream. Clients are third-party (tokio-tungstenite) or a raw
//! hand-driven socket, never the ferrofeed client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{WAIT, Ws, connect, http, next_json, next_where, send, start};
use ferrofeed_sim::{KillMode, LoadConfig, MarketConfig, MarketKind};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn busy(kind: MarketKind) -> MarketConfig {
    let mut m = MarketConfig::new(kind);
    m.symbols.truncate(4);
    m.timing.actions_per_sec = 300.0;
    m.limits.max_incoming_msgs = 1000;
    m
}

/// The next JSON frame that has an `id` (a control reply), skipping data.
async fn next_reply(ws: &mut Ws) -> Value {
    next_where(ws, |v| v.get("id").is_some()).await
}

/// A hand-driven WebSocket client: it never answers pings unless told to.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr, path: &str) -> Raw {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 1024];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "handshake EOF");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                assert!(head.starts_with("HTTP/1.1 101"), "{head}");
                assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "accept key: {head}");
                buf.drain(..i + 4);
                return Raw { s, buf };
            }
        }
    }

    /// The next server frame (opcode, payload), or `None` at EOF/reset.
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are unmasked");
                let (len, hdr) = match self.buf[1] & 0x7F {
                    126 if self.buf.len() >= 4 => (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4),
                    127 if self.buf.len() >= 10 => {
                        (u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= hdr + len {
                    let op = self.buf[0] & 0x0F;
                    let payload = self.buf[hdr..hdr + len].to_vec();
                    self.buf.drain(..hdr + len);
                    return Some((op, payload));
                }
            }
            let mut chunk = [0u8; 8192];
            match self.s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [9u8, 8, 7, 6];
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).await.unwrap();
    }

    /// Reads until a close frame; returns its code. Panics on EOF first.
    async fn close_code(&mut self) -> u16 {
        loop {
            let (op, p) = timeout(WAIT, self.frame()).await.expect("close in time").expect("close frame before EOF");
            if op == 0x8 {
                return u16::from_be_bytes([p[0], p[1]]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_messages_get_the_real_acks_and_nested_errors() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws", m.ws_url())).await;

    send(&mut ws, json!({"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": null, "id": 1}));
    send(&mut ws, json!({"method":"LIST_SUBSCRIPTIONS","id":3})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 3}));
    send(&mut ws, json!({"method":"UNSUBSCRIBE","params":["btcusdt@depth"],"id":312})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": null, "id": 312}));
    send(&mut ws, json!({"method":"LIST_SUBSCRIPTIONS","id":"abc"})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": ["btcusdt@aggTrade"], "id": "abc"}));
    send(&mut ws, json!({"method":"GET_PROPERTY","params":["combined"],"id":2})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": false, "id": 2}));
    send(&mut ws, json!({"method":"SET_PROPERTY","params":["combined",true],"id":5})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": null, "id": 5}));
    send(&mut ws, json!({"method":"GET_PROPERTY","params":["combined"],"id":6})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": true, "id": 6}));

    // Errors: nested {"error":{"code","msg"},"id"}.
    send(&mut ws, json!({"method":"SUBSCRIBE","params":["@@@lixo###"],"id":7})).await;
    assert_eq!(
        next_reply(&mut ws).await,
        json!({"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 7})
    );
    send(&mut ws, json!({"method":"SET_PROPERTY","params":["combined","yes"],"id":8})).await;
    assert_eq!(next_reply(&mut ws).await["error"], json!({"code": 1, "msg": "Invalid value type: expected Boolean"}));
    send(&mut ws, json!({"method":"SET_PROPERTY","params":["colour",true],"id":9})).await;
    assert_eq!(next_reply(&mut ws).await["error"], json!({"code": 0, "msg": "Unknown property"}));
    send(&mut ws, json!({"method":"SET_PROPERTY","params":["combined",true,1],"id":10})).await;
    assert_eq!(next_reply(&mut ws).await["error"]["msg"], "Invalid request: too many parameters");
    send(&mut ws, json!({"method":"LIST","id":11})).await;
    let e = next_reply(&mut ws).await;
    assert_eq!(e["error"]["code"], 2);
    assert!(e["error"]["msg"].as_str().unwrap().starts_with("Invalid request: unknown variant `LIST`"), "{e}");
    send(&mut ws, json!({"params":[],"id":12})).await;
    let e = next_reply(&mut ws).await;
    assert!(e["error"]["msg"].as_str().unwrap().starts_with("Invalid request: missing field `method`"), "{e}");
    ws.send(Message::Text("{not json".into())).await.unwrap();
    let e = next_reply(&mut ws).await;
    assert_eq!(e["id"], Value::Null);
    assert_eq!(e["error"]["code"], 3);
    assert!(e["error"]["msg"].as_str().unwrap().starts_with("Invalid JSON:"), "{e}");

    // A well-formed but unknown stream is acknowledged and stays silent, as on the venue.
    send(&mut ws, json!({"method":"SUBSCRIBE","params":["btcusdt@naoExisteStream"],"id":13})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": null, "id": 13}));

    // The connection survived every error: data still flows, now combined.
    let v = next_json(&mut ws).await;
    assert_eq!(v["stream"], "btcusdt@aggTrade", "{v}");
    let c = m.stats().counters;
    assert!(c.errors_sent >= 7 && c.acks_sent >= 8, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_and_combined_paths_wrap_payloads_like_the_venue() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut raw = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    let v = next_json(&mut raw).await;
    assert_eq!(v["e"], "trade");
    assert_eq!(v["s"], "BTCUSDT");
    let mut comb = connect(&format!("{}/stream?streams=btcusdt@trade/ethusdt@bookTicker", m.ws_url())).await;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 {
        let v = next_json(&mut comb).await;
        let s = v["stream"].as_str().unwrap().to_string();
        assert!(v["data"].is_object());
        seen.insert(s);
    }
    assert!(seen.contains("ethusdt@bookTicker"));
    let conns = m.connections();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[1].subscriptions, vec!["btcusdt@trade", "ethusdt@bookTicker"]);
    assert!(conns[1].combined && !conns[0].combined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_routes_public_and_market_streams_separately() {
    let (_sim, m) = start(busy(MarketKind::UsdM)).await;
    // Unrouted connections only receive /public streams: markPrice stays silent there.
    let mut unrouted = connect(&format!("{}/ws/btcusdt@aggTrade", m.ws_url())).await;
    let mut market = connect(&format!("{}/market/ws/btcusdt@aggTrade", m.ws_url())).await;
    let mut public = connect(&format!("{}/public/stream?streams=btcusdt@bookTicker", m.ws_url())).await;
    let v = next_json(&mut market).await;
    assert_eq!(v["e"], "aggTrade");
    let v = next_json(&mut public).await;
    assert_eq!(v["data"]["e"], "bookTicker");
    // By now aggTrades flowed on /market; the unrouted socket got none.
    assert!(timeout(Duration::from_millis(300), unrouted.next()).await.is_err(), "unrouted socket must stay silent");
    let produced = m.stream_stats("btcusdt@aggTrade").unwrap().produced;
    assert!(produced > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_message_rate_over_the_limit_closes_with_1008() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.limits.max_incoming_msgs = 5;
    let (_sim, m) = start(cfg).await;
    // Within the limit: 5 messages in a burst, then one more after the window.
    let mut ok = Raw::connect(m.addr(), "/ws").await;
    for i in 0..5 {
        ok.send(0x1, format!("{{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":{i}}}").as_bytes()).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ok.send(0x1, b"{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":9}").await;
    let mut replies = 0;
    while replies < 6 {
        let (op, _) = timeout(WAIT, ok.frame()).await.unwrap().expect("still open");
        if op == 0x1 {
            replies += 1;
        }
    }
    // Over the limit: the 6th message (pings count too) closes the connection.
    let mut bad = Raw::connect(m.addr(), "/ws").await;
    for _ in 0..3 {
        bad.send(0x9, b"hi").await;
    }
    for i in 0..3 {
        bad.send(0x1, format!("{{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":{i}}}").as_bytes()).await;
    }
    assert_eq!(bad.close_code().await, 1008);
    until(|| m.stats().counters.rate_limit_closes == 1, "the close counted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_cap_is_enforced_on_subscribe_and_on_the_url() {
    let (_sim, m) = start(busy(MarketKind::Options)).await;
    assert_eq!(m.config().limits.max_streams_per_conn, 200);
    let names: Vec<String> = (0..201).map(|i| format!("x{i}@optionTrade")).collect();
    let mut ws = connect(&format!("{}/public/ws", m.ws_url())).await;
    send(&mut ws, json!({"method":"SUBSCRIBE","params":names,"id":1})).await;
    let e = next_reply(&mut ws).await;
    assert_eq!(e["error"]["code"], 2, "{e}");
    send(&mut ws, json!({"method":"SUBSCRIBE","params":&names[..200],"id":2})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": null, "id": 2}));
    send(&mut ws, json!({"method":"SUBSCRIBE","params":["y@optionTrade"],"id":3})).await;
    assert_eq!(next_reply(&mut ws).await["error"]["code"], 2);
    // Re-subscribing streams it already holds does not count twice.
    send(&mut ws, json!({"method":"SUBSCRIBE","params":&names[..10],"id":4})).await;
    assert_eq!(next_reply(&mut ws).await, json!({"result": null, "id": 4}));
    let url = format!("{}/public/stream?streams={}", m.ws_url(), names.join("/"));
    let err = connect_async(url).await.expect_err("201 streams in the URL are refused");
    assert!(err.to_string().contains("400"), "{err}");
    let c = m.stats().counters;
    assert_eq!(c.over_cap_rejections, 3);
    assert_eq!(c.max_streams_on_a_connection, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_attempts_over_the_limit_get_http_429() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.limits.max_conn_attempts = 3;
    cfg.limits.conn_attempt_window = Duration::from_secs(2);
    let (_sim, m) = start(cfg).await;
    let url = format!("{}/ws", m.ws_url());
    let mut keep = Vec::new();
    for _ in 0..3 {
        keep.push(connect(&url).await);
    }
    let err = connect_async(&url).await.expect_err("4th attempt in the window");
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(m.stats().counters.connection_attempts_rejected, 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    connect(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_pings_with_a_payload_and_drops_clients_that_do_not_echo_it() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.limits.ping_interval = Duration::from_millis(100);
    cfg.limits.pong_timeout = Duration::from_millis(1000);
    let (_sim, m) = start(cfg).await;

    // A dutiful client echoes every ping and stays connected.
    let mut good = Raw::connect(m.addr(), "/ws").await;
    let mut pings = 0;
    while pings < 6 {
        let (op, p) = timeout(WAIT, good.frame()).await.unwrap().expect("open");
        if op == 0x9 {
            assert!(!p.is_empty(), "Binance pings carry a payload");
            good.send(0xA, &p).await;
            pings += 1;
        }
    }
    // It keeps echoing in the background while we watch a lazy client.
    let dutiful = tokio::spawn(async move {
        while let Some((op, p)) = good.frame().await {
            if op == 0x9 {
                good.send(0xA, &p).await;
            }
        }
    });
    // A client that only sends unsolicited pongs (wrong payload) is dropped.
    let mut lazy = Raw::connect(m.addr(), "/ws").await;
    lazy.send(0xA, b"").await;
    let code = lazy.close_code().await;
    assert_eq!(code, 1008);
    let c = m.stats().counters;
    assert!(c.pongs_matched >= 6, "{c:?}");
    assert!(c.pongs_unmatched >= 1, "{c:?}");
    assert_eq!(c.pong_timeouts, 1, "only the silent client timed out: {c:?}");
    // The server removes a closed connection just after its close frame.
    let deadline = tokio::time::Instant::now() + WAIT;
    while m.connections().len() > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(m.connections().len(), 1, "the dutiful client is still connected");
    dutiful.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_end_at_the_maximum_lifetime() {
    let mut cfg = busy(MarketKind::UsdM);
    cfg.limits.max_lifetime = Duration::from_millis(300);
    let (_sim, m) = start(cfg).await;
    let mut c = Raw::connect(m.addr(), "/ws").await;
    assert_eq!(c.close_code().await, 1001);
    assert_eq!(m.stats().counters.lifetime_closes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_sends_a_close_frame_or_resets_the_tcp_connection() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut a = Raw::connect(m.addr(), "/ws/btcusdt@trade").await;
    assert!(a.frame().await.is_some());
    assert_eq!(m.kill_all(KillMode::Close), 1);
    assert_eq!(a.close_code().await, 1001);

    let mut b = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    next_json(&mut b).await;
    let id = m.connections()[0].id;
    assert!(m.kill(id, KillMode::Reset));
    // A reset ends the stream without a close frame.
    loop {
        match timeout(WAIT, b.next()).await.expect("ends in time") {
            Some(Ok(Message::Close(_))) => panic!("a reset must not send a close frame"),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
    // Closes from clients are recorded with their code.
    let mut c = connect(&format!("{}/ws", m.ws_url())).await;
    c.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    while let Some(Ok(_)) = c.next().await {}
    until(|| m.stats().counters.client_close_codes.get(&1000) == Some(&1), "the close recorded").await;
    let stats = m.stats();
    assert_eq!(stats.counters.client_close_codes.get(&1000), Some(&1));
    assert_eq!(stats.counters.kills, 2);
    assert!(stats.closed_connections.iter().any(|c| c.client_close_code == Some(1000)));
}

fn trade_id(v: &Value) -> u64 {
    v["t"].as_u64().unwrap_or_else(|| panic!("no trade id in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_fault_removes_exactly_n_messages_that_still_count_as_produced() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    let first = trade_id(&next_json(&mut ws).await);
    m.drop_next("btcusdt@trade", 5);
    let mut prev = first;
    let mut missing = 0;
    while prev < first + 60 {
        let id = trade_id(&next_json(&mut ws).await);
        missing += id - prev - 1;
        prev = id;
    }
    assert_eq!(missing, 5);
    let s = m.stream_stats("btcusdt@trade").unwrap();
    assert!(s.last_id.unwrap() >= prev);
    assert_eq!(m.stats().counters.dropped_by_fault, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_keeps_the_socket_open_but_sends_nothing() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    let before = trade_id(&next_json(&mut ws).await);
    assert_eq!(m.stall(None, Duration::from_millis(600)), 1);
    assert!(m.connections()[0].stalled);
    // Whatever was queued before the stall may still arrive; then silence, then a jump.
    let mut prev = before;
    let jumped = loop {
        let id = trade_id(&next_json(&mut ws).await);
        if id != prev + 1 {
            break id - prev - 1;
        }
        prev = id;
    };
    assert!(jumped > 0, "messages produced during the stall are lost");
    assert!(!m.connections()[0].stalled);
    assert_eq!(m.connections().len(), 1, "the socket stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame_is_sent_and_the_connection_goes_on() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    next_json(&mut ws).await;
    assert_eq!(m.send_malformed(None), 1);
    let mut saw_bad = false;
    for _ in 0..200 {
        let Some(Ok(Message::Text(t))) = timeout(WAIT, ws.next()).await.unwrap() else { continue };
        if serde_json::from_str::<Value>(&t).is_err() {
            saw_bad = true;
            break;
        }
    }
    assert!(saw_bad);
    assert_eq!(next_json(&mut ws).await["e"], "trade");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_can_be_delayed_or_rejected() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws", m.ws_url())).await;
    m.reject_next_acks(1);
    send(&mut ws, json!({"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1})).await;
    let e = next_reply(&mut ws).await;
    assert_eq!(e["id"], 1);
    assert_eq!(e["error"]["code"], -1003);
    send(&mut ws, json!({"method":"LIST_SUBSCRIPTIONS","id":2})).await;
    assert_eq!(next_reply(&mut ws).await["result"], json!([]), "a rejected subscription is not applied");

    m.set_ack_delay(Duration::from_millis(400));
    send(&mut ws, json!({"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":3})).await;
    // The subscription takes effect at once; its ack comes later, after data.
    let first = next_json(&mut ws).await;
    assert_eq!(first["e"], "trade", "data before the delayed ack: {first}");
    assert_eq!(next_reply(&mut ws).await, json!({"result": null, "id": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_every_keeps_killing_until_stopped() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    m.kill_every(Some((Duration::from_millis(150), Duration::from_millis(50))), KillMode::Reset);
    let url = format!("{}/ws/btcusdt@trade", m.ws_url());
    let mut sessions = 0;
    while m.stats().counters.kills < 3 {
        let mut ws = connect(&url).await;
        sessions += 1;
        while let Ok(Some(Ok(_))) = timeout(WAIT, ws.next()).await {}
    }
    m.kill_every(None, KillMode::Reset);
    assert!(sessions >= 3);
    let mut ws = connect(&url).await;
    let kills = m.stats().counters.kills;
    for _ in 0..20 {
        next_json(&mut ws).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(m.stats().counters.kills, kills, "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_notice_then_close() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.timing.shutdown_grace = Duration::from_millis(200);
    let (_sim, m) = start(cfg).await;
    let mut raw = Raw::connect(m.addr(), "/ws").await;
    let mut comb = connect(&format!("{}/stream?streams=btcusdt@trade", m.ws_url())).await;
    next_json(&mut comb).await;
    assert_eq!(m.server_shutdown(), 2);
    let (op, p) = timeout(WAIT, raw.frame()).await.unwrap().unwrap();
    assert_eq!(op, 0x1);
    let v: Value = serde_json::from_slice(&p).unwrap();
    assert_eq!(v["e"], "serverShutdown");
    assert!(v["E"].is_u64());
    assert_eq!(raw.close_code().await, 1001);
    loop {
        let v = next_json(&mut comb).await;
        if v["stream"] == "!serverShutdown" {
            assert_eq!(v["data"]["e"], "serverShutdown");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_fail_until_the_fault_is_lifted() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    m.refuse_connections(true);
    assert!(connect_async(format!("{}/ws", m.ws_url())).await.is_err());
    assert!(m.stats().counters.connections_refused >= 1);
    m.refuse_connections(false);
    connect(&format!("{}/ws", m.ws_url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_snapshot_faults_fail_then_recover_and_stale_ones_are_older_than_the_stream() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.timing.stale_snapshot_age = Duration::from_millis(200);
    let (_sim, m) = start(cfg).await;
    let path = "/api/v3/depth?symbol=BTCUSDT&limit=10";
    m.fail_snapshots(2);
    for _ in 0..2 {
        let (status, body) = http(m.addr(), "GET", path).await;
        assert_eq!(status, 503);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], -1008);
    }
    let (status, body) = http(m.addr(), "GET", path).await;
    assert_eq!(status, 200, "{body}");

    let mut ws = connect(&format!("{}/ws/btcusdt@depth@100ms", m.ws_url())).await;
    next_json(&mut ws).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    m.stale_snapshots(1);
    let (_, stale) = http(m.addr(), "GET", path).await;
    let stale: Value = serde_json::from_str(&stale).unwrap();
    // Drain what was buffered before the request, then take the next diff.
    let (_, fresh) = http(m.addr(), "GET", path).await;
    let fresh: Value = serde_json::from_str(&fresh).unwrap();
    let fresh_id = fresh["lastUpdateId"].as_u64().unwrap();
    let next_u = loop {
        let v = next_json(&mut ws).await;
        if v["u"].as_u64().unwrap() > fresh_id {
            break v["U"].as_u64().unwrap();
        }
    };
    let stale_id = stale["lastUpdateId"].as_u64().unwrap();
    assert!(stale_id < fresh_id, "stale {stale_id} vs fresh {fresh_id}");
    assert!(stale_id + 1 < next_u, "a stale snapshot cannot bridge to the live stream");
    let c = m.stats().counters;
    assert_eq!((c.snapshots_failed_by_fault, c.snapshots_stale_by_fault), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_weight_budget_answers_429_with_retry_after() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.limits.rest_weight_limit = 60;
    let (_sim, m) = start(cfg).await;
    // limit=1000 weighs 50 on spot: the second one exceeds 60.
    let (s1, _) = http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT&limit=1000").await;
    let (s2, body) = http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT&limit=1000").await;
    assert_eq!((s1, s2), (200, 429));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], -1003);
    let (s3, body) = http(m.addr(), "GET", "/api/v3/depth?symbol=NOPE&limit=5").await;
    assert_eq!(s3, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], -1121);
    let (s4, _) = http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT&limit=6000").await;
    assert_eq!(s4, 400);
    assert_eq!(m.stats().counters.rest_rate_limited, 1);
}

type Side = BTreeMap<String, String>;

/// Parses "123.45000000" into a sortable fixed-point integer.
fn fixed(s: &str) -> i128 {
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    format!("{i}{f:0<12}").parse().unwrap()
}

fn apply(book: &mut (Side, Side), v: &Value) {
    for (key, side) in [("b", &mut book.0), ("a", &mut book.1)] {
        for l in v[key].as_array().unwrap() {
            let (p, q) = (l[0].as_str().unwrap().to_string(), l[1].as_str().unwrap().to_string());
            if fixed(&q) == 0 {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
        }
    }
}

fn top(side: &Side, bids: bool, n: usize) -> Vec<[String; 2]> {
    let mut v: Vec<(i128, [String; 2])> = side.iter().map(|(p, q)| (fixed(p), [p.clone(), q.clone()])).collect();
    v.sort_by_key(|(k, _)| *k);
    if bids {
        v.reverse();
    }
    v.into_iter().take(n).map(|(_, l)| l).collect()
}

/// Follows the venue's documented local-book procedure against the REST
/// snapshot and the diff stream, then freezes the market and compares with the
/// simulator's true book: they must be identical.
async fn book_sync_matches_truth(kind: MarketKind, rest: &str, stream: &str) {
    let (_sim, m) = start(busy(kind)).await;
    let mut ws =
        connect(&format!("{}{}/ws/{stream}", m.ws_url(), if kind == MarketKind::UsdM { "/public" } else { "" })).await;
    let first = next_json(&mut ws).await;
    let (_, body) = http(m.addr(), "GET", &format!("{rest}?symbol=BTCUSDT&limit=1000")).await;
    let snap: Value = serde_json::from_str(&body).unwrap();
    let last_id = snap["lastUpdateId"].as_u64().unwrap();
    assert!(first["U"].as_u64().unwrap() <= last_id + 1, "snapshot older than the first buffered diff");
    let mut book: (Side, Side) = Default::default();
    for (key, side) in [("bids", &mut book.0), ("asks", &mut book.1)] {
        for l in snap[key].as_array().unwrap() {
            side.insert(l[0].as_str().unwrap().into(), l[1].as_str().unwrap().into());
        }
    }
    let mut prev_u: Option<u64> = None;
    let mut applied = 0;
    let mut pending = vec![first];
    let mut paused = false;
    loop {
        for v in pending.drain(..) {
            let (u0, u1) = (v["U"].as_u64().unwrap(), v["u"].as_u64().unwrap());
            match prev_u {
                None if u1 < last_id || (kind == MarketKind::Spot && u1 == last_id) => continue,
                None => {
                    if kind == MarketKind::Spot {
                        assert!(u0 <= last_id + 1 && last_id < u1, "bridge [{u0},{u1}] vs {last_id}");
                    } else {
                        assert!(u0 <= last_id && last_id <= u1, "bridge [{u0},{u1}] vs {last_id}");
                    }
                }
                Some(p) => {
                    if kind == MarketKind::Spot {
                        assert_eq!(u0, p + 1, "gap in U/u chain");
                    } else {
                        assert_eq!(v["pu"].as_u64().unwrap(), p, "gap in pu chain");
                    }
                }
            }
            apply(&mut book, &v);
            prev_u = Some(u1);
            applied += 1;
        }
        if applied >= 15 && !paused {
            m.pause_market(true);
            paused = true;
        }
        if paused {
            // After the market froze, the next window flush brings the stream up to date.
            let truth = m.book("BTCUSDT", 5000).unwrap();
            if prev_u == Some(truth.last_update_id) {
                assert_eq!(top(&book.0, true, 5000), truth.bids);
                assert_eq!(top(&book.1, false, 5000), truth.asks);
                let (_, body) = http(m.addr(), "GET", &format!("{rest}?symbol=BTCUSDT&limit=1000")).await;
                let snap: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(snap["lastUpdateId"].as_u64(), prev_u, "REST snapshot id lines up with the stream");
                return;
            }
        }
        pending.push(next_json(&mut ws).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_rest_snapshot_lines_up_with_the_diff_stream() {
    book_sync_matches_truth(MarketKind::Spot, "/api/v3/depth", "btcusdt@depth@100ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_rest_snapshot_lines_up_with_the_pu_chain() {
    book_sync_matches_truth(MarketKind::UsdM, "/fapi/v1/depth", "btcusdt@depth@100ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_stream_delivers_every_sequence_number_with_its_send_time() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.load = Some(LoadConfig::new(50_000, None));
    let (_sim, m) = start(cfg).await;
    let (mut ws, _) = connect_async(format!("{}/ws/loadusdt@trade", m.ws_url())).await.unwrap();
    let first_id = 1_000_000_000_000u64;
    let mut expect = first_id;
    while expect < first_id + 50_000 {
        let Message::Text(t) = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap() else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(trade_id(&v), expect);
        let sent_us = v["E"].as_u64().unwrap();
        assert!(sent_us > 1_600_000_000_000_000, "send time in µs: {sent_us}");
        expect += 1;
    }
    let s = m.stream_stats("loadusdt@trade").unwrap();
    assert_eq!(s.produced, 50_000);
    assert_eq!(s.last_id, Some(first_id + 49_999));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_a_fixed_rate_stream_is_reset_as_a_slow_consumer() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.limits.outbound_queue = 4;
    cfg.load = Some(LoadConfig::new(2_000_000, Some(200_000)));
    let (_sim, m) = start(cfg).await;
    let mut raw = Raw::connect(m.addr(), "/ws/loadusdt@trade").await;
    // Do not read: the kernel buffers fill, then the simulator's queue.
    let deadline = tokio::time::Instant::now() + WAIT;
    while m.stats().counters.slow_consumer_resets == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no slow-consumer reset");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reading now finds the stream cut off without a close frame.
    loop {
        match timeout(WAIT, raw.frame()).await.unwrap() {
            Some((0x8, _)) => panic!("reset, not closed"),
            Some(_) => continue,
            None => break,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_serves_stats_book_connections_and_faults() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    next_json(&mut ws).await;
    let (s, body) = http(m.addr(), "GET", "/admin/stats").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["streams"]["btcusdt@trade"]["produced"].as_u64().unwrap() >= 1);
    assert!(v["streams"]["btcusdt@trade"]["last_id"].as_u64().is_some());
    let (_, body) = http(m.addr(), "GET", "/admin/connections").await;
    let conns: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(conns[0]["subscriptions"], json!(["btcusdt@trade"]));
    let id = conns[0]["id"].as_u64().unwrap();
    let (_, body) = http(m.addr(), "GET", "/admin/book?symbol=btcusdt&depth=3").await;
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(b["bids"].as_array().unwrap().len(), 3);
    assert!(fixed(b["bids"][0][0].as_str().unwrap()) < fixed(b["asks"][0][0].as_str().unwrap()));
    let (s, body) = http(m.addr(), "POST", "/admin/drop?stream=btcusdt@trade&count=3").await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = http(m.addr(), "POST", "/admin/stall?seconds=abc").await;
    assert_eq!(s, 400, "bad numbers are refused, not panicked on");
    let (s, _) = http(m.addr(), "GET", "/admin/kill").await;
    assert_eq!(s, 404, "mutations need POST");
    let (s, body) = http(m.addr(), "POST", &format!("/admin/kill?conn={id}&mode=reset")).await;
    assert_eq!((s, body.as_str()), (200, "{\"killed\":1}"));
    let (s, _) = http(m.addr(), "POST", "/admin/kill_every?seconds=0").await;
    assert_eq!(s, 200);
    let (s, _) = http(m.addr(), "POST", "/admin/snapshots?fail=1").await;
    assert_eq!(s, 200);
    let (s, _) = http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT").await;
    assert_eq!(s, 503);
}

/// The book history holds the true book after every depth window: replaying the
/// snapshot and the diff stream by hand gives the same top 20 at every `u`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn book_history_matches_a_hand_replayed_book_at_every_update_id() {
    let mut cfg = busy(MarketKind::Spot);
    cfg.book_history = 500;
    let (_sim, m) = start(cfg).await;
    let mut ws = connect(&format!("{}/ws/btcusdt@depth@100ms", m.ws_url())).await;
    let first = next_json(&mut ws).await;
    let (_, body) = http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT&limit=1000").await;
    let snap: Value = serde_json::from_str(&body).unwrap();
    let last_id = snap["lastUpdateId"].as_u64().unwrap();
    let mut book: (Side, Side) = Default::default();
    for (key, side) in [("bids", &mut book.0), ("asks", &mut book.1)] {
        for l in snap[key].as_array().unwrap() {
            side.insert(l[0].as_str().unwrap().into(), l[1].as_str().unwrap().into());
        }
    }
    let mut checked = 0;
    let mut next = Some(first);
    while checked < 20 {
        let v = match next.take() {
            Some(v) => v,
            None => next_json(&mut ws).await,
        };
        let u = v["u"].as_u64().unwrap();
        if u <= last_id {
            continue;
        }
        apply(&mut book, &v);
        let truth = m.book_at("BTCUSDT", u, 20).expect("update id in the history");
        assert_eq!(truth.last_update_id, u);
        assert_eq!(top(&book.0, true, 20), truth.bids, "bids at {u}");
        assert_eq!(top(&book.1, false, 20), truth.asks, "asks at {u}");
        checked += 1;
    }
    // Over HTTP too; an id that never ended a window is not in the history.
    let (status, body) =
        http(m.addr(), "GET", &format!("/admin/book?symbol=btcusdt&depth=3&update_id={last_id}")).await;
    assert!(status == 200 || status == 404, "{status} {body}");
    let (status, _) = http(m.addr(), "GET", "/admin/book?symbol=BTCUSDT&update_id=1").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_probability_drops_a_share_of_messages_that_still_count_as_produced() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    let (status, _) = http(m.addr(), "POST", "/admin/drop?stream=btcusdt@trade&probability=1.5").await;
    assert_eq!(status, 400);
    let (status, _) = http(m.addr(), "POST", "/admin/drop?stream=btcusdt@trade&probability=0.5").await;
    assert_eq!(status, 200);
    let mut ids = Vec::new();
    while ids.len() < 200 {
        ids.push(trade_id(&next_json(&mut ws).await));
    }
    let span = ids[ids.len() - 1] - ids[0] + 1;
    let missing = span - ids.len() as u64;
    assert!(missing > 20 && missing < span - 20, "p=0.5 dropped {missing} of {span}");
    assert!(m.stats().counters.dropped_by_fault >= missing);
    m.drop_probability("btcusdt@trade", 0.0);
    // Let frames produced before the switch drain, then none are lost.
    let mut last = trade_id(&next_json(&mut ws).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen = 0;
    let mut holes = 0;
    while seen < 300 {
        let t = trade_id(&next_json(&mut ws).await);
        if seen > 100 && t != last + 1 {
            holes += 1;
        }
        last = t;
        seen += 1;
    }
    assert_eq!(holes, 0);
}

/// Admin numbers that no clock can hold (infinity, 1e300 seconds, a huge
/// delay) are refused with 400; before, `inf` panicked the admin task. The
/// simulator goes on serving, and the new faults answer as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_durations_beyond_any_clock_are_refused_not_panicked_on() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    for path in [
        "/admin/stall?seconds=inf",
        "/admin/stall?seconds=1e300",
        "/admin/stall?seconds=-1",
        "/admin/kill_every?seconds=inf",
        "/admin/kill_every?seconds=1e300&jitter=1",
        "/admin/acks?delay_ms=inf",
        "/admin/acks?delay_ms=1e300",
        "/admin/auth?ignore=x",
    ] {
        let (s, body) = http(m.addr(), "POST", path).await;
        assert_eq!(s, 400, "{path}: {body}");
    }
    let (s, _) = http(m.addr(), "POST", "/admin/stall?seconds=0.01").await;
    assert_eq!(s, 200);
    let (s, _) = http(m.addr(), "POST", "/admin/auth?ignore=1").await;
    assert_eq!(s, 200);
    let (s, _) = http(m.addr(), "POST", "/admin/snapshots?rate_limit=1&retry_after=99999999999999999999999").await;
    assert_eq!(s, 200);
    let (s, _) = http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT").await;
    assert_eq!(s, 429, "the rate-limit fault answers 429");
    let (s, _) = http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT").await;
    assert_eq!(s, 200, "once, then the book again");
}

/// The next text frame, parsed or not.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let m = timeout(WAIT, ws.next()).await.expect("frame in time").expect("open").expect("ok");
        if let Message::Text(t) = m {
            return t.to_string();
        }
    }
}

/// `unsubscribed`: data frames on well-formed stream names nobody asked
/// for, `count` of them over `streams` names, while the subscribed stream
/// goes on; Binance combined and raw, and Bybit topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_flood_sends_data_on_stream_names_nobody_subscribed() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/stream?streams=btcusdt@trade", m.ws_url())).await;
    next_json(&mut ws).await;
    let (s, body) = http(m.addr(), "POST", "/admin/unsubscribed?count=300&streams=30").await;
    assert_eq!((s, body.as_str()), (200, r#"{"connections":1,"frames":300}"#));
    let (mut names, mut flood, mut ours_after) = (BTreeMap::new(), 0u64, 0u64);
    while flood < 300 || ours_after == 0 {
        let v = next_json(&mut ws).await;
        let stream = v["stream"].as_str().expect("combined").to_string();
        if stream == "btcusdt@trade" {
            ours_after += u64::from(flood > 0);
            continue;
        }
        assert!(stream.starts_with("flood") && stream.ends_with("usdt@trade"), "{v}");
        assert_eq!(v["data"]["e"], "trade");
        flood += 1;
        assert_eq!(v["data"]["t"], flood, "trade ids 1..=count in order");
        *names.entry(stream).or_insert(0u64) += 1;
    }
    assert_eq!(names.len(), 30);
    assert!(names.values().all(|n| *n == 10), "{names:?}");
    assert_eq!(m.stats().counters.flood_frames_sent, 300);
    assert!(m.stream_stats("flood0usdt@trade").is_none(), "nothing produced on them counts as truth");

    // A raw connection gets the payload alone; Bybit gets topics.
    let mut raw = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    next_json(&mut raw).await;
    let id = m.connections().iter().find(|c| c.path.starts_with("/ws/")).expect("raw").id;
    assert_eq!(m.flood_unsubscribed(Some(id), 1, 1), 1);
    let v = next_where(&mut raw, |v| v["s"] != "BTCUSDT").await;
    assert_eq!((v["e"].as_str(), v["s"].as_str(), v["t"].as_u64()), (Some("trade"), Some("FLOOD0USDT"), Some(1)));

    let (_bsim, b) = start(crate::common::bybit_market(ferrofeed_sim::BybitCategory::Linear)).await;
    let mut bws = crate::common::connect_bybit(&b).await;
    send(&mut bws, json!({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})).await;
    assert_eq!(b.flood_unsubscribed(None, 20, 2), 1);
    let v = next_where(&mut bws, |v| v["topic"].as_str().is_some_and(|t| t.contains("FLOOD"))).await;
    assert_eq!(v["topic"], "publicTrade.FLOOD0USDT");
    assert_eq!((v["data"][0]["i"].as_str(), v["data"][0]["s"].as_str()), (Some("1"), Some("FLOOD0USDT")));
    let v = next_where(&mut bws, |v| v["topic"] == "publicTrade.FLOOD1USDT").await;
    assert_eq!(v["data"][0]["i"], "2");
}

/// `malformed_flood`: exactly `count` frames that are not JSON (valid text),
/// and the connection goes on with data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_flood_sends_count_unparseable_frames_and_the_connection_goes_on() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/ws/btcusdt@trade", m.ws_url())).await;
    next_json(&mut ws).await;
    let (s, _) = http(m.addr(), "POST", "/admin/malformed_flood?count=500").await;
    assert_eq!(s, 200);
    let mut bad = 0;
    while bad < 500 {
        if serde_json::from_str::<Value>(&next_text(&mut ws).await).is_err() {
            bad += 1;
        }
    }
    assert_eq!(next_json(&mut ws).await["e"], "trade", "data goes on");
    assert_eq!(m.stats().counters.malformed_sent, 500);
    assert_eq!(m.connections().len(), 1);
}

/// `oversized`: one well-formed frame of exactly the asked size, raw,
/// combined and Bybit; sizes no frame can have are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_has_exactly_the_asked_bytes_and_is_well_formed() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    for path in ["/ws/btcusdt@trade", "/stream?streams=btcusdt@trade"] {
        let mut ws = connect(&format!("{}{path}", m.ws_url())).await;
        next_json(&mut ws).await;
        let id = m.connections().iter().map(|c| c.id).max().expect("conn");
        let (s, body) = http(m.addr(), "POST", &format!("/admin/oversized?bytes=300000&conn={id}")).await;
        assert_eq!((s, body.as_str()), (200, r#"{"bytes":300000,"sent":1}"#));
        let big = loop {
            let t = next_text(&mut ws).await;
            if t.len() > 1000 {
                break t;
            }
        };
        assert_eq!(big.len(), 300_000, "{path}");
        let v: Value = serde_json::from_str(&big).expect("well-formed");
        assert!(v.to_string().contains("\"e\":\"pad\""), "{path}");
    }
    let (_bsim, b) = start(crate::common::bybit_market(ferrofeed_sim::BybitCategory::Linear)).await;
    let mut bws = crate::common::connect_bybit(&b).await;
    send(&mut bws, json!({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})).await;
    next_json(&mut bws).await;
    assert_eq!(b.send_oversized(None, 100_000), Ok(1));
    let v = next_where(&mut bws, |v| v["topic"] == "oversized.PAD").await;
    assert_eq!(v.to_string().len(), 100_000);
    assert!(b.send_oversized(None, 10).is_err(), "smaller than the smallest frame");
    assert!(b.send_oversized(None, ferrofeed_sim::MAX_OVERSIZED_BYTES + 1).is_err());
}

/// `id_reset`: trade ids and book update ids restart from a low number, as
/// after a venue restart; the REST snapshot agrees, the stream statistics
/// record where ids stopped and started again; Bybit order books restart
/// with a `u = 1` snapshot and trade ids restart too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_reset_restarts_trade_and_book_ids_from_a_low_number() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    let mut ws = connect(&format!("{}/stream?streams=btcusdt@trade/btcusdt@depth@100ms", m.ws_url())).await;
    let before = trade_id(&next_where(&mut ws, |v| v["stream"] == "btcusdt@trade").await["data"]);
    let (s, body) = http(m.addr(), "POST", "/admin/id_reset?symbol=btcusdt&to=1").await;
    assert_eq!((s, body.as_str()), (200, r#"{"symbols":1,"to":1}"#));
    let (mut trade_seen, mut depth_seen) = (None, None);
    while trade_seen.is_none() || depth_seen.is_none() {
        let v = next_json(&mut ws).await;
        let d = &v["data"];
        if v["stream"] == "btcusdt@trade" && trade_seen.is_none() && trade_id(d) < before {
            trade_seen = Some(trade_id(d));
        }
        if v["stream"] == "btcusdt@depth@100ms" && depth_seen.is_none() && d["U"].as_u64() < Some(1000) {
            depth_seen = Some((d["U"].as_u64().expect("U"), d["u"].as_u64().expect("u")));
        }
    }
    assert_eq!(trade_seen, Some(1), "the first trade after the reset has id `to`");
    assert_eq!(depth_seen.map(|d| d.0), Some(1), "the first diff after the reset starts at `to`");
    let s = m.stream_stats("btcusdt@trade").expect("stats");
    let r = s.resets.last().expect("reset recorded");
    assert_eq!(r.first_after, Some(1));
    assert!(r.last_before.is_some_and(|l| l >= before) && r.produced_before > 0, "{r:?}");
    let (_, snap) = http(m.addr(), "GET", "/api/v3/depth?symbol=BTCUSDT&limit=5").await;
    let snap: Value = serde_json::from_str(&snap).expect("json");
    assert!(snap["lastUpdateId"].as_u64().is_some_and(|u| u < 100_000), "{snap}");

    let (_bsim, b) = start(crate::common::bybit_market(ferrofeed_sim::BybitCategory::Linear)).await;
    let mut bws = crate::common::connect_bybit(&b).await;
    send(&mut bws, json!({"op": "subscribe", "args": ["publicTrade.BTCUSDT", "orderbook.50.BTCUSDT"]})).await;
    let first = next_where(&mut bws, |v| v["topic"] == "orderbook.50.BTCUSDT").await;
    assert_ne!(first["data"]["u"], 1);
    assert_eq!(b.reset_ids(Some("BTCUSDT"), 5), 1);
    // Trades and the book's restart arrive in either order.
    let (mut snap_u, mut trade) = (None, None);
    while snap_u.is_none() || trade.is_none() {
        let v = next_json(&mut bws).await;
        if v["topic"] == "orderbook.50.BTCUSDT" && v["type"] == "snapshot" && snap_u.is_none() {
            snap_u = v["data"]["u"].as_u64();
        }
        let i = v["data"][0]["i"].as_str().and_then(|i| i.parse::<u64>().ok());
        if v["topic"] == "publicTrade.BTCUSDT" && trade.is_none() && i.is_some_and(|i| i < 1000) {
            trade = i;
        }
    }
    assert_eq!(snap_u, Some(1), "the order book restarts with u = 1");
    assert_eq!(trade, Some(5), "the first trade after the reset has id `to`");
    assert_eq!(b.reset_ids(Some("NOPEUSDT"), 1), 0);
}

/// Bad parameters of the chaos faults are refused with 400, never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_fault_parameters_out_of_range_are_refused_with_400() {
    let (_sim, m) = start(busy(MarketKind::Spot)).await;
    for path in [
        "/admin/unsubscribed?count=-1",
        "/admin/unsubscribed?count=1.5",
        "/admin/unsubscribed?count=inf",
        "/admin/unsubscribed?count=1e300",
        "/admin/unsubscribed?count=10&streams=0",
        "/admin/unsubscribed?conn=x",
        "/admin/malformed_flood?count=NaN",
        "/admin/malformed_flood?count=99999999999",
        "/admin/oversized",
        "/admin/oversized?bytes=10",
        "/admin/oversized?bytes=1e300",
        "/admin/oversized?bytes=-5",
        "/admin/id_reset?to=0",
        "/admin/id_reset?to=x",
        "/admin/id_reset?to=inf",
        "/admin/id_reset?symbol=NOPEUSDT",
    ] {
        let (s, body) = http(m.addr(), "POST", path).await;
        assert_eq!(s, 400, "{path}: {body}");
    }
    let (s, _) = http(m.addr(), "POST", "/admin/id_reset").await;
    assert_eq!(s, 200, "every symbol");
}

/// Waits until `ok` holds (the simulator records a socket's end after the
/// client has seen it); panics after `WAIT`.
async fn until(ok: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
