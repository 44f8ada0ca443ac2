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

use crate::redact;
use secrecy::{ExposeSecret, SecretString};

/// The userinfo of a URL (`user:pass` of `scheme://user:pass@host`), if any.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rfind('@').map(|at| &authority[..at]).filter(|u| !u.is_empty())
}

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

/// What to connect to and how. Its `Debug` output and every error about it
/// show the URL redacted ([`ConnectSpec::shown_url`]); header values never.
#[derive(Clone)]
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
    /// A credential the URL carries where no rule can spot it (a listenKey
    /// in the path): masked wherever the URL is shown.
    pub secret: Option<SecretString>,
}

impl std::fmt::Debug for ConnectSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSpec")
            .field("url", &self.shown_url())
            .field("headers", &self.headers.iter().map(|(k, _)| (k.as_str(), redact::MASK)).collect::<Vec<_>>())
            .field("connect_timeout", &self.connect_timeout)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("proxy", &self.proxy.as_deref().map(redact::url))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ConnectSpec {
    /// The URL for display: userinfo, credential parameters and
    /// [`ConnectSpec::secret`] masked ([`redact`]).
    pub fn shown_url(&self) -> String {
        self.scrub(&self.url)
    }

    /// `msg` (an error of this connection) with the URL, the proxy's
    /// credentials and the secret masked.
    pub fn scrub(&self, msg: &str) -> String {
        let secret = self.secret.as_ref().map(|s| s.expose_secret());
        let proxy_user = self.proxy.as_deref().and_then(userinfo);
        let url_user = userinfo(&self.url);
        let secrets: Vec<&str> = [secret, proxy_user, url_user].into_iter().flatten().collect();
        redact::text(msg, &secrets)
    }

    /// Defaults: 10 s connect timeout, 16 MiB frames and messages, no proxy.
    pub fn new(url: impl Into<String>) -> ConnectSpec {
        ConnectSpec {
            url: url.into(),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            max_frame_bytes: 16 << 20,
            max_message_bytes: 16 << 20,
            proxy: None,
            secret: None,
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

/// Host and port of a ws:// or wss:// URL. Errors show the URL redacted.
fn host_port(spec: &ConnectSpec) -> Result<(String, u16, bool), TransportError> {
    let url = spec.url.as_str();
    let shown = spec.shown_url();
    let req = url.into_client_request().map_err(|e| TransportError::Request(spec.scrub(&format!("{shown:?}: {e}"))))?;
    let uri = req.uri();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => return Err(TransportError::Request(format!("unsupported scheme {other:?} in {shown:?}"))),
    };
    let host = uri.host().ok_or_else(|| TransportError::Request(format!("no host in {shown:?}")))?;
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
        let (host, port, tls) = host_port(spec)?;
        // No error of this connection shows its URL's credentials.
        let scrub = |e: TransportError| match e {
            TransportError::Request(m) => TransportError::Request(spec.scrub(&m)),
            TransportError::Connect(m) => TransportError::Connect(spec.scrub(&m)),
            TransportError::Socket(m) => TransportError::Socket(spec.scrub(&m)),
            t @ TransportError::Timeout(_) => t,
        };
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
            .map_err(scrub)
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
        let hp = |u: &str| host_port(&ConnectSpec::new(u));
        assert_eq!(hp("wss://stream.binance.com:9443/ws").unwrap(), ("stream.binance.com".into(), 9443, true));
        assert_eq!(hp("ws://127.0.0.1/ws").unwrap(), ("127.0.0.1".into(), 80, false));
        assert!(matches!(hp("http://x/ws"), Err(TransportError::Request(_))));
        assert!(matches!(hp("not a url"), Err(TransportError::Request(_))));
    }

    #[test]
    fn errors_and_debug_never_show_the_url_credentials() {
        let mut spec = ConnectSpec::new("http://user:hunter2@x/ws/LISTENKEY42");
        spec.secret = Some("LISTENKEY42".to_string().into());
        spec.headers.push(("X-MBX-APIKEY".into(), "apikey99".into()));
        spec.proxy = Some("http://puser:ppass@proxy:1".into());
        let err = host_port(&spec).unwrap_err().to_string();
        let dbg = format!("{spec:?} {spec:#?}");
        for shown in [&err, &dbg] {
            for secret in ["hunter2", "LISTENKEY42", "apikey99", "ppass"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
        assert_eq!(spec.shown_url(), "http://***@x/ws/***");
        assert_eq!(spec.scrub("bad user:hunter2 and LISTENKEY42"), "bad *** and ***");
    }

    #[test]
    fn native_builds_a_tls_config_with_the_ring_provider() {
        let n = Native::new();
        assert!(!n.tls.alpn_protocols.iter().any(|p| p.is_empty()));
    }
}
