//! Credentials and request signing shared by the venue modules.
//!
//! Secrets live in [`secrecy`] types and every type here prints `<redacted>`
//! in `Debug`. [`Credentials::sign`] is HMAC-SHA256 (lower-case hex) or
//! Ed25519 (base64) over a payload the venue module builds:
//!
//! - Binance (PROTOCOLS.md §1.6): the request's parameters as `k=v` joined
//!   with `&` ([`query`] in request order for REST, [`sorted_query`] by name
//!   for the WebSocket API); HMAC or Ed25519 keys.
//! - Bybit v5 (§5.4): `GET/realtime{expires}`, HMAC keys only
//!   (`crate::bybit::auth`).
//!
//! [`Clock`] is the venue's clock as measured locally (offset from a server
//! time), used for Binance `timestamp` and Bybit `expires`.
//!
//! `crate::binance::auth` re-exports everything here under its old paths.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

/// The private half of an API key.
enum KeySecret {
    Hmac(SecretString),
    Ed25519(SecretBox<[u8; 32]>),
}

/// The kind of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// HMAC-SHA256 (REST and per-request WebSocket signatures; no session logon).
    Hmac,
    /// Ed25519 (everything, including WebSocket API `session.logon`).
    Ed25519,
}

/// Why credentials could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The Ed25519 private key is not a 32-byte seed, PKCS#8 DER or PEM.
    #[error("Ed25519 private key: {0}")]
    Ed25519(String),
    /// The API key or secret is empty.
    #[error("empty {0}")]
    Empty(&'static str),
    /// The venue does not accept this kind of key (Bybit: HMAC only).
    #[error("{0}")]
    Unsupported(&'static str),
}

/// An API key and its secret. `Debug` never shows either.
pub struct Credentials {
    api_key: SecretString,
    secret: KeySecret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &"<redacted>")
            .field("secret", &"<redacted>")
            .field("kind", &self.kind())
            .finish()
    }
}

impl Credentials {
    /// An HMAC-SHA256 key.
    pub fn hmac(api_key: impl Into<String>, secret: impl Into<String>) -> Result<Credentials, CredentialError> {
        let (api_key, secret) = (api_key.into(), secret.into());
        if api_key.is_empty() {
            return Err(CredentialError::Empty("API key"));
        }
        if secret.is_empty() {
            return Err(CredentialError::Empty("secret"));
        }
        Ok(Credentials { api_key: api_key.into(), secret: KeySecret::Hmac(secret.into()) })
    }

    /// An Ed25519 key from its 32-byte seed.
    pub fn ed25519_seed(api_key: impl Into<String>, seed: [u8; 32]) -> Result<Credentials, CredentialError> {
        let api_key = api_key.into();
        if api_key.is_empty() {
            return Err(CredentialError::Empty("API key"));
        }
        Ok(Credentials { api_key: api_key.into(), secret: KeySecret::Ed25519(SecretBox::new(Box::new(seed))) })
    }

    /// An Ed25519 key from a PKCS#8 private key, PEM (`-----BEGIN PRIVATE
    /// KEY-----`) or base64 of the DER, or a base64 32-byte seed, as Binance's
    /// key generator writes it.
    pub fn ed25519_pem(api_key: impl Into<String>, pem: &str) -> Result<Credentials, CredentialError> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| CredentialError::Ed25519(format!("not base64: {e}")))?;
        // PKCS#8 v1 for Ed25519 is 48 bytes and ends with the 32-byte seed.
        let seed: [u8; 32] = match der.len() {
            32 => der.as_slice().try_into().map_err(|_| CredentialError::Ed25519("bad seed".into()))?,
            48 if der.starts_with(&[0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]) => {
                der[16..].try_into().map_err(|_| CredentialError::Ed25519("bad PKCS#8".into()))?
            }
            n => {
                return Err(CredentialError::Ed25519(format!(
                    "expected a 32-byte seed or 48-byte PKCS#8 key, got {n} bytes"
                )));
            }
        };
        Credentials::ed25519_seed(api_key, seed)
    }

    /// The key kind.
    pub fn kind(&self) -> KeyKind {
        match self.secret {
            KeySecret::Hmac(_) => KeyKind::Hmac,
            KeySecret::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The API key, for request headers (`X-MBX-APIKEY`) and signed parameters
    /// (Binance `apiKey`, Bybit's `auth` args).
    /// Callers must not log it.
    pub fn api_key(&self) -> &str {
        self.api_key.expose_secret()
    }

    /// The HMAC secret itself, for a venue grant that sends it (Deribit
    /// `client_credentials`); `None` for Ed25519 keys. Callers must only
    /// write it into the request frame, never log it.
    pub(crate) fn hmac_secret(&self) -> Option<&str> {
        match &self.secret {
            KeySecret::Hmac(secret) => Some(secret.expose_secret()),
            KeySecret::Ed25519(_) => None,
        }
    }

    /// Signs `payload`: HMAC-SHA256 lower-case hex, or Ed25519 base64.
    pub fn sign(&self, payload: &str) -> String {
        match &self.secret {
            KeySecret::Hmac(secret) => hmac_sha256_hex(secret.expose_secret().as_bytes(), payload.as_bytes()),
            KeySecret::Ed25519(seed) => {
                let key = ed25519_dalek::SigningKey::from_bytes(seed.expose_secret());
                base64::engine::general_purpose::STANDARD.encode(key.sign(payload.as_bytes()).to_bytes())
            }
        }
    }

    /// The Ed25519 public key (for registering the key with a venue or a
    /// simulator); `None` for HMAC keys.
    pub fn ed25519_public(&self) -> Option<[u8; 32]> {
        match &self.secret {
            KeySecret::Ed25519(seed) => {
                Some(ed25519_dalek::SigningKey::from_bytes(seed.expose_secret()).verifying_key().to_bytes())
            }
            KeySecret::Hmac(_) => None,
        }
    }
}

fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// `k=v&k=v` in the given order (REST signing payload and query string).
pub fn query(params: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// `k=v&k=v` sorted by name (WebSocket API signing payload).
pub fn sorted_query(params: &[(&str, String)]) -> String {
    let mut p: Vec<&(&str, String)> = params.iter().collect();
    p.sort_by(|a, b| a.0.cmp(b.0));
    let owned: Vec<(&str, String)> = p.into_iter().map(|(k, v)| (*k, v.clone())).collect();
    query(&owned)
}

/// The venue's clock as measured locally: local time plus an offset learned
/// from the venue's server time, and the `recvWindow` sent with signed
/// requests.
#[derive(Debug)]
pub struct Clock {
    offset_ms: AtomicI64,
    /// `recvWindow` in milliseconds (the venue's default is 5000; at most 60000).
    pub recv_window_ms: u64,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock { offset_ms: AtomicI64::new(0), recv_window_ms: 5000 }
    }
}

impl Clock {
    /// A clock with `recv_window_ms` (clamped to the venue's 60000).
    pub fn new(recv_window_ms: u64) -> Clock {
        Clock { offset_ms: AtomicI64::new(0), recv_window_ms: recv_window_ms.clamp(1, 60_000) }
    }

    fn local_ms() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }

    /// Records a server-time measurement: `server_ms` answered a request sent
    /// at local `sent_ms` and received at local `received_ms`; the server time
    /// is taken to be the midpoint's.
    pub fn observe(&self, sent_ms: i64, server_ms: i64, received_ms: i64) {
        let mid = sent_ms + (received_ms - sent_ms) / 2;
        self.offset_ms.store(server_ms - mid, Ordering::Relaxed);
    }

    /// The measured offset (server minus local), ms.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Local time, ms (for `observe`).
    pub fn local_now_ms(&self) -> i64 {
        Self::local_ms()
    }

    /// The venue's time now, ms: the `timestamp` of a signed request.
    pub fn now_ms(&self) -> i64 {
        Self::local_ms() + self.offset_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
    const DOC_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

    /// Binance spot REST docs, "SIGNED endpoint examples for POST /api/v3/order".
    #[test]
    fn hmac_matches_binance_rest_example() {
        let c = Credentials::hmac(DOC_KEY, DOC_SECRET).expect("creds");
        let params = [
            ("symbol", "LTCBTC".to_string()),
            ("side", "BUY".into()),
            ("type", "LIMIT".into()),
            ("timeInForce", "GTC".into()),
            ("quantity", "1".into()),
            ("price", "0.1".into()),
            ("recvWindow", "5000".into()),
            ("timestamp", "1499827319559".into()),
        ];
        assert_eq!(c.sign(&query(&params)), "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
    }

    /// Binance WebSocket API docs, "SIGNED request example (HMAC)": parameters
    /// sorted by name.
    #[test]
    fn hmac_matches_binance_websocket_api_example() {
        let c = Credentials::hmac(DOC_KEY, DOC_SECRET).expect("creds");
        let params = [
            ("symbol", "BTCUSDT".to_string()),
            ("side", "SELL".into()),
            ("type", "LIMIT".into()),
            ("timeInForce", "GTC".into()),
            ("quantity", "0.01000000".into()),
            ("price", "52000.00".into()),
            ("newOrderRespType", "ACK".into()),
            ("recvWindow", "100".into()),
            ("timestamp", "1645423376532".into()),
            ("apiKey", DOC_KEY.into()),
        ];
        assert_eq!(c.sign(&sorted_query(&params)), "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a");
    }

    /// RFC 8032 §7.1, TEST 1 and TEST 2 (Binance gives no reproducible Ed25519
    /// vector: its example key file is not published).
    #[test]
    fn ed25519_matches_rfc8032() {
        let seed: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let c = Credentials::ed25519_seed("k", seed).unwrap();
        assert_eq!(
            hex::encode(c.ed25519_public().unwrap()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = base64::engine::general_purpose::STANDARD.decode(c.sign("")).unwrap();
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        let seed2: [u8; 32] = hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
            .unwrap()
            .try_into()
            .unwrap();
        let c2 = Credentials::ed25519_seed("k", seed2).unwrap();
        // TEST 2 signs the single byte 0x72 ("r").
        let sig = base64::engine::general_purpose::STANDARD.decode(c2.sign("r")).unwrap();
        assert_eq!(
            hex::encode(sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
    }

    #[test]
    fn pem_and_der_keys_load_to_the_same_seed() {
        let seed = [7u8; 32];
        let mut der =
            vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
        der.extend_from_slice(&seed);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        let a = Credentials::ed25519_pem("k", &pem).unwrap();
        let b = Credentials::ed25519_seed("k", seed).unwrap();
        assert_eq!(a.sign("x=1"), b.sign("x=1"));
        assert!(Credentials::ed25519_pem("k", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
        assert!(Credentials::hmac("", "s").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::hmac("my-api-key-123", "my-secret-456").unwrap();
        let d = format!("{c:?} {c:#?}");
        assert!(!d.contains("my-api-key-123") && !d.contains("my-secret-456"), "{d}");
        assert!(d.contains("<redacted>"));
        let e = Credentials::ed25519_seed("edkey", [9; 32]).unwrap();
        assert!(!format!("{e:?}").contains("edkey"));
    }

    #[test]
    fn clock_applies_the_measured_offset() {
        let clock = Clock::new(99_999);
        assert_eq!(clock.recv_window_ms, 60_000);
        clock.observe(1_000, 3_050, 1_100);
        assert_eq!(clock.offset_ms(), 2_000);
        let skew = clock.now_ms() - clock.local_now_ms();
        assert!((1_999..=2_001).contains(&skew));
    }
}
