//! The transport seam: something that opens a WebSocket and moves messages.
//! [`Native`] is the tokio implementation (ws:// and wss:// through rustls with
//! the ring provider, optional HTTP CONNECT proxy); a browser transport can
//! implement the same traits later without touching venue code.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::HeaderName;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// A WebSocket message, transport-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMsg {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A ping (answered by the transport itself).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame with its code and reason.
    Close(Option<(u16, String)>),
}

/// Transport failures.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL or a header could not be used.
    #[error("invalid request: {0}")]
    Request(String),
    /// TCP, TLS, proxy or handshake failure.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The connection attempt took too long.
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    /// The socket failed after it was up.
    #[error("socket error: {0}")]
    Socket(String),
}

impl TransportError {
    /// Whether trying again may help (everything but a malformed request).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, TransportError::Request(_))
    }
}

/// What to connect to and how.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Extra handshake headers.
    pub headers: Vec<(String, String)>,
    /// Limit for TCP + TLS + handshake.
    pub connect_timeout: Duration,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
    /// Largest message accepted.
    pub max_message_bytes: usize,
    /// A proxy for the TCP connection: `http://host:port` (HTTP CONNECT) or
    /// `socks5://host:port` (hostname resolved by the proxy).
    pub proxy: Option<String>,
}

impl ConnectSpec {
    /// Defaults: 10 s connect timeout, 16 MiB frames and messages, no proxy.
    pub fn new(url: impl Into<String>) -> ConnectSpec {
        ConnectSpec {
            url: url.into(),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            max_frame_bytes: 16 << 20,
            max_message_bytes: 16 << 20,
            proxy: None,
        }
    }
}

/// One open WebSocket.
pub trait WsStream: Send + 'static {
    /// The next message; `None` when the socket has ended. Cancel-safe.
    fn recv(&mut self) -> impl Future<Output = Option<Result<WsMsg, TransportError>>> + Send;
    /// Sends a message.
    fn send(&mut self, msg: WsMsg) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// Opens WebSockets.
pub trait Transport: Clone + Send + Sync + 'static {
    /// The stream type.
    type Stream: WsStream;
    /// Opens one connection (the caller applies no extra timeout).
    fn connect(&self, spec: &ConnectSpec) -> impl Future<Output = Result<Self::Stream, TransportError>> + Send;
}

/// The tokio transport: tokio-tungstenite over TCP or rustls (ring).
#[derive(Debug, Clone)]
pub struct Native {
    tls: Arc<rustls::ClientConfig>,
}

impl Default for Native {
    fn default() -> Native {
        Native::new()
    }
}

impl Native {
    /// A transport trusting the webpki root certificates.
    pub fn new() -> Native {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| unreachable_config());
        Native { tls: Arc::new(tls) }
    }

    /// A transport with a caller-supplied TLS configuration (private roots, client certs).
    pub fn with_tls(tls: Arc<rustls::ClientConfig>) -> Native {
        Native { tls }
    }
}

/// The ring provider always supports the safe default versions; this is never reached.
fn unreachable_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

/// Host and port of a ws:// or wss:// URL.
fn host_port(url: &str) -> Result<(String, u16, bool), TransportError> {
    let req = url.into_client_request().map_err(|e| TransportError::Request(format!("{url:?}: {e}")))?;
    let uri = req.uri();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => return Err(TransportError::Request(format!("unsupported scheme {other:?} in {url:?}"))),
    };
    let host = uri.host().ok_or_else(|| TransportError::Request(format!("no host in {url:?}")))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((host.trim_matches(['[', ']']).to_string(), port, tls))
}

async fn tcp_via(target: (&str, u16), proxy: Option<&str>) -> Result<TcpStream, TransportError> {
    let conn = |e: std::io::Error| TransportError::Connect(e.to_string());
    let Some(proxy) = proxy else {
        return TcpStream::connect(target).await.map_err(conn);
    };
    if let Some(p) = proxy.strip_prefix("socks5://") {
        let s = tokio_socks::tcp::Socks5Stream::connect(p.trim_end_matches('/'), target)
            .await
            .map_err(|e| TransportError::Connect(format!("socks5 proxy: {e}")))?;
        return Ok(s.into_inner());
    }
    let p = proxy
        .strip_prefix("http://")
        .ok_or_else(|| {
            // Never echo a URL that may carry credentials.
            let shown = if proxy.contains('@') { "<redacted>" } else { proxy };
            TransportError::Request(format!("proxy must be http://host:port or socks5://host:port, got {shown:?}"))
        })?
        .trim_end_matches('/');
    let mut s = TcpStream::connect(p).await.map_err(conn)?;
    let (host, port) = target;
    let req = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(conn)?;
    // Read the proxy's answer byte by byte up to the blank line, so no tunnel bytes are consumed.
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err(TransportError::Connect("proxy response header too long".into()));
        }
        let b = s.read_u8().await.map_err(conn)?;
        head.push(b);
    }
    let status = String::from_utf8_lossy(&head);
    let line = status.lines().next().unwrap_or_default().to_string();
    if line.split_whitespace().nth(1) != Some("200") {
        return Err(TransportError::Connect(format!("proxy refused CONNECT: {line}")));
    }
    Ok(s)
}

impl Transport for Native {
    type Stream = NativeStream;

    async fn connect(&self, spec: &ConnectSpec) -> Result<NativeStream, TransportError> {
        let (host, port, tls) = host_port(&spec.url)?;
        let fut = async {
            let tcp = tcp_via((&host, port), spec.proxy.as_deref()).await?;
            let _ = tcp.set_nodelay(true);
            let mut req =
                spec.url.as_str().into_client_request().map_err(|e| TransportError::Request(e.to_string()))?;
            for (k, v) in &spec.headers {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| TransportError::Request(format!("invalid header name {k:?}")))?;
                let value =
                    HeaderValue::from_str(v).map_err(|_| TransportError::Request(format!("invalid value for {k}")))?;
                req.headers_mut().insert(name, value);
            }
            let cfg = WebSocketConfig::default()
                .max_frame_size(Some(spec.max_frame_bytes))
                .max_message_size(Some(spec.max_message_bytes));
            let connector = if tls { Connector::Rustls(self.tls.clone()) } else { Connector::Plain };
            let (ws, _) = tokio_tungstenite::client_async_tls_with_config(req, tcp, Some(cfg), Some(connector))
                .await
                .map_err(|e| TransportError::Connect(e.to_string()))?;
            Ok(NativeStream { ws })
        };
        tokio::time::timeout(spec.connect_timeout, fut)
            .await
            .map_err(|_| TransportError::Timeout(spec.connect_timeout))?
    }
}

/// An open native WebSocket.
#[derive(Debug)]
pub struct NativeStream {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsStream for NativeStream {
    async fn recv(&mut self) -> Option<Result<WsMsg, TransportError>> {
        loop {
            let m = match self.ws.next().await? {
                Ok(m) => m,
                Err(tungstenite::Error::ConnectionClosed) => return None,
                Err(e) => return Some(Err(TransportError::Socket(e.to_string()))),
            };
            return Some(Ok(match m {
                Message::Text(t) => WsMsg::Text(t.as_str().to_owned()),
                Message::Binary(b) => WsMsg::Binary(b.to_vec()),
                Message::Ping(p) => WsMsg::Ping(p.to_vec()),
                Message::Pong(p) => WsMsg::Pong(p.to_vec()),
                Message::Close(c) => WsMsg::Close(c.map(|c| (u16::from(c.code), c.reason.as_str().to_owned()))),
                Message::Frame(_) => continue,
            }));
        }
    }

    async fn send(&mut self, msg: WsMsg) -> Result<(), TransportError> {
        let m = match msg {
            WsMsg::Text(t) => Message::Text(t.into()),
            WsMsg::Binary(b) => Message::Binary(b.into()),
            WsMsg::Ping(p) => Message::Ping(p.into()),
            WsMsg::Pong(p) => Message::Pong(p.into()),
            WsMsg::Close(c) => Message::Close(c.map(|(code, reason)| tungstenite::protocol::CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            })),
        };
        self.ws.send(m).await.map_err(|e| TransportError::Socket(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_connecting() {
        assert_eq!(host_port("wss://stream.binance.com:9443/ws").unwrap(), ("stream.binance.com".into(), 9443, true));
        assert_eq!(host_port("ws://127.0.0.1/ws").unwrap(), ("127.0.0.1".into(), 80, false));
        assert!(matches!(host_port("http://x/ws"), Err(TransportError::Request(_))));
        assert!(matches!(host_port("not a url"), Err(TransportError::Request(_))));
    }

    #[test]
    fn native_builds_a_tls_config_with_the_ring_provider() {
        let n = Native::new();
        assert!(!n.tls.alpn_protocols.iter().any(|p| p.is_empty()));
    }
}
