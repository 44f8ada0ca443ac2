//! The clients under test. Each connects to `{ws_url}/ws/loadusdt@trade`,
//! reports when the handshake is done, then reads text frames into a [`Tally`]
//! until it holds the target count.

use std::future::Future;

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::Empty;
use hyper::Request;
use hyper::header::{CONNECTION, HOST, UPGRADE};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::serve::LOAD_STREAM;
use crate::tally::{Parse, Tally};

/// Which WebSocket client reads the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    /// A hand-rolled frame reader on a bare `TcpStream` (count only): the floor,
    /// and a check that the simulator is not the bottleneck.
    Raw,
    /// tokio-tungstenite 0.28, `connect_async` + `StreamExt::next`.
    Tungstenite,
    /// fastwebsockets 0.10: hyper 1 client upgrade + `FragmentCollector::read_frame`.
    Fastwebsockets,
}

impl Client {
    /// Label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Client::Raw => "raw TCP reader (floor)",
            Client::Tungstenite => "tokio-tungstenite 0.28",
            Client::Fastwebsockets => "fastwebsockets 0.10",
        }
    }
}

/// Called once the handshake is done; the measured interval starts there.
pub type OnConnected<'a> = &'a mut dyn FnMut();

/// Runs one client to completion (or error). `tally` holds the progress either way.
pub async fn run(
    client: Client,
    parse: Parse,
    ws_url: &str,
    tally: &mut Tally,
    on_connected: OnConnected<'_>,
) -> anyhow::Result<()> {
    match client {
        Client::Raw => raw(ws_url, tally, on_connected).await,
        Client::Tungstenite => tungstenite(ws_url, parse, tally, on_connected).await,
        Client::Fastwebsockets => fastws(ws_url, parse, tally, on_connected).await,
    }
}

fn host_port(ws_url: &str) -> anyhow::Result<&str> {
    ws_url.strip_prefix("ws://").map(|h| h.trim_end_matches('/')).context("expected a ws:// URL")
}

/// `base64(sha1(key ++ GUID))`, RFC 6455 §4.2.2.
fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

// ---------------------------------------------------------------- tokio-tungstenite

async fn tungstenite(
    ws_url: &str,
    parse: Parse,
    tally: &mut Tally,
    on_connected: OnConnected<'_>,
) -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{ws_url}/ws/{LOAD_STREAM}");
    let (mut ws, _resp) = tokio_tungstenite::connect_async(url.as_str()).await.context("tungstenite connect")?;
    on_connected();
    while let Some(msg) = ws.next().await {
        match msg.context("tungstenite read")? {
            Message::Text(t) => {
                if tally.on_text(parse, t.as_str())? {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
            }
            Message::Close(c) => bail!("server closed the connection early: {c:?}"),
            // Pings are answered by tungstenite itself on the next read/write.
            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    bail!("stream ended early")
}

// ---------------------------------------------------------------- fastwebsockets

/// Runs hyper's connection task (which drives the upgrade) on the tokio runtime.
#[derive(Debug, Clone, Copy)]
struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

/// The glue fastwebsockets needs for a client: TCP connect, an HTTP/1.1 upgrade
/// request through hyper, and the `Sec-WebSocket-Accept` check that
/// `fastwebsockets::handshake::client` does not do.
pub async fn fastws_connect(
    ws_url: &str,
    path: &str,
) -> anyhow::Result<fastwebsockets::FragmentCollector<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>> {
    let host = host_port(ws_url)?;
    let tcp = TcpStream::connect(host).await.with_context(|| format!("connect {host}"))?;
    tcp.set_nodelay(true)?;
    let key = fastwebsockets::handshake::generate_key();
    let req = Request::builder()
        .method("GET")
        .uri(path)
        .header(HOST, host)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header("Sec-WebSocket-Key", &key)
        .header("Sec-WebSocket-Version", "13")
        .body(Empty::<Bytes>::new())?;
    let (ws, resp) =
        fastwebsockets::handshake::client(&SpawnExecutor, req, tcp).await.context("fastwebsockets handshake")?;
    let accept = resp.headers().get("sec-websocket-accept").and_then(|v| v.to_str().ok());
    if accept != Some(accept_key(&key).as_str()) {
        bail!("bad Sec-WebSocket-Accept: {accept:?}");
    }
    Ok(fastwebsockets::FragmentCollector::new(ws))
}

async fn fastws(ws_url: &str, parse: Parse, tally: &mut Tally, on_connected: OnConnected<'_>) -> anyhow::Result<()> {
    use fastwebsockets::{Frame, OpCode};
    let mut ws = fastws_connect(ws_url, &format!("/ws/{LOAD_STREAM}")).await?;
    on_connected();
    loop {
        let frame = ws.read_frame().await.context("fastwebsockets read")?;
        match frame.opcode {
            OpCode::Text => {
                // FragmentCollector has already checked UTF-8 (simdutf8), but hands
                // out bytes: a parser that wants `&str` must check again (safe code).
                let done = match parse {
                    Parse::Count => tally.on_bytes_count(&frame.payload)?,
                    _ => tally.on_text(parse, std::str::from_utf8(&frame.payload)?)?,
                };
                if done {
                    let _ = ws.write_frame(Frame::close(1000, b"")).await;
                    return Ok(());
                }
            }
            OpCode::Close => bail!("server closed the connection early"),
            // Pings are answered by fastwebsockets (auto_pong).
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- raw floor

async fn raw(ws_url: &str, tally: &mut Tally, on_connected: OnConnected<'_>) -> anyhow::Result<()> {
    let host = host_port(ws_url)?;
    let mut tcp = TcpStream::connect(host).await?;
    tcp.set_nodelay(true)?;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /ws/{LOAD_STREAM} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await?;
    let mut buf: Vec<u8> = vec![0; 256 * 1024];
    let mut end = 0usize;
    // Response head; whatever follows it is already frame data.
    let mut start = loop {
        let n = tcp.read(&mut buf[end..]).await?;
        if n == 0 {
            bail!("EOF during handshake");
        }
        end += n;
        if let Some(p) = buf[..end].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]);
            if !head.starts_with("HTTP/1.1 101") {
                bail!("handshake refused: {head}");
            }
            break p + 4;
        }
    };
    on_connected();
    loop {
        // Parse every complete frame in buf[start..end].
        loop {
            let avail = &buf[start..end];
            if avail.len() < 2 {
                break;
            }
            let (b0, b1) = (avail[0], avail[1]);
            if b1 & 0x80 != 0 {
                bail!("masked frame from server");
            }
            let (hdr, len) = match b1 & 0x7f {
                126 if avail.len() >= 4 => (4, u16::from_be_bytes([avail[2], avail[3]]) as usize),
                127 if avail.len() >= 10 => {
                    let mut l = [0u8; 8];
                    l.copy_from_slice(&avail[2..10]);
                    (10, usize::try_from(u64::from_be_bytes(l))?)
                }
                126 | 127 => break,
                l => (2, l as usize),
            };
            if avail.len() < hdr + len {
                if hdr + len > buf.len() {
                    bail!("frame of {len} bytes exceeds the buffer");
                }
                break;
            }
            let payload = &avail[hdr..hdr + len];
            start += hdr + len;
            match b0 {
                0x81 if tally.on_bytes_count(payload)? => return Ok(()),
                0x88 => bail!("server closed the connection early"),
                _ => {} // pings unanswered: the floor measures reading only
            }
        }
        if start == end {
            start = 0;
            end = 0;
        } else if buf.len() - end < 16 * 1024 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = tcp.read(&mut buf[end..]).await?;
        if n == 0 {
            bail!("EOF after {} frames", tally.frames);
        }
        end += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofeed_sim::{LoadConfig, MarketConfig, MarketKind, Sim, SimConfig};

    /// Every client against an in-process simulator (its own runtime and thread).
    #[test]
    fn every_client_reads_a_small_load_stream_without_loss() {
        for client in [Client::Raw, Client::Tungstenite, Client::Fastwebsockets] {
            for parse in [Parse::Count, Parse::Sonic, Parse::SerdeJson] {
                if client == Client::Raw && parse != Parse::Count {
                    continue;
                }
                let n = 3_000;
                let (url_tx, url_rx) = std::sync::mpsc::channel();
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                let server = std::thread::spawn(move || {
                    let rt =
                        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
                    rt.block_on(async {
                        let mut m = MarketConfig::new(MarketKind::Spot);
                        m.load = Some(LoadConfig::new(n, None));
                        let sim = Sim::start(SimConfig::single(m)).await.unwrap();
                        let spot = sim.market(MarketKind::Spot).unwrap().clone();
                        url_tx.send(spot.ws_url()).unwrap();
                        let _ = stop_rx.await;
                        let produced = spot.stream_stats(LOAD_STREAM).map(|s| s.produced);
                        sim.shutdown().await;
                        produced
                    })
                });
                let url = url_rx.recv().unwrap();
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let mut tally = Tally::new(n, parse);
                let mut connected = false;
                let mut on_connected = || connected = true;
                rt.block_on(async {
                    let fut = run(client, parse, &url, &mut tally, &mut on_connected);
                    tokio::time::timeout(std::time::Duration::from_secs(30), fut).await
                })
                .expect("timed out")
                .unwrap_or_else(|e| panic!("{client:?}/{parse:?}: {e:#}"));
                stop_tx.send(()).unwrap();
                assert_eq!(server.join().unwrap(), Some(n));
                assert!(connected);
                assert!(tally.clean(), "{client:?}/{parse:?}: {tally:?}");
                assert_eq!(tally.every_id, parse != Parse::Count);
            }
        }
    }

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn host_port_strips_scheme() {
        assert_eq!(host_port("ws://127.0.0.1:9400").unwrap(), "127.0.0.1:9400");
        assert!(host_port("http://x").is_err());
    }
}
