//! Deribit authentication (PROTOCOLS.md §6.4; docs.deribit.com
//! `articles/authentication`, `public/auth`).
//!
//! A WebSocket connection authenticates itself with `public/auth`; the
//! answer carries an `access_token` and its `expires_in` (seconds), after
//! which the connection is authorised for private methods and channels.
//! Two grants take the API key:
//!
//! - `client_credentials`: `client_id` and `client_secret` in the frame.
//! - `client_signature` (the default): `client_id`, `timestamp` (ms),
//!   `nonce`, `data` and `signature` = lower-case hex
//!   HMAC-SHA256(client_secret, `timestamp + "\n" + nonce + "\n" + data`)
//!   (the Ruby `deribit-api` gem's `Deribit.signature` and the CCXT
//!   Deribit WebSocket auth build the same string). The secret never
//!   leaves the process.
//!
//! Frames are built afresh on every (re)authentication with a new timestamp
//! and nonce. Nothing here logs or returns a secret; the frames themselves
//! carry the client id (and, for `client_credentials`, the secret) and are
//! only ever written to the socket.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::auth::Credentials;

/// How a connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grant {
    /// `client_signature`: an HMAC signature; the secret is never sent.
    #[default]
    ClientSignature,
    /// `client_credentials`: the client secret itself, in the frame.
    ClientCredentials,
}

impl Grant {
    /// The `grant_type` value.
    pub fn name(self) -> &'static str {
        match self {
            Grant::ClientSignature => "client_signature",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

/// The string `client_signature` signs.
pub fn string_to_sign(timestamp_ms: i64, nonce: &str, data: &str) -> String {
    format!("{timestamp_ms}\n{nonce}\n{data}")
}

/// A fresh nonce: unique per process and call (the venue wants a random
/// string; uniqueness with the timestamp is what matters).
pub fn nonce(timestamp_ms: i64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let local =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{:x}{:08x}{n:x}", timestamp_ms, local)
}

/// The `public/auth` frame with request id `id`: signed at `timestamp_ms`
/// with `nonce` (`client_signature`), or carrying the secret
/// (`client_credentials`). `None` when the key cannot do the grant (an
/// Ed25519 key has no HMAC secret).
pub fn auth_frame(creds: &Credentials, grant: Grant, id: u64, timestamp_ms: i64, nonce: &str) -> Option<String> {
    if creds.kind() != crate::auth::KeyKind::Hmac {
        return None;
    }
    let params = match grant {
        Grant::ClientSignature => {
            let data = "";
            let signature = creds.sign(&string_to_sign(timestamp_ms, nonce, data));
            serde_json::json!({
                "grant_type": grant.name(),
                "client_id": creds.api_key(),
                "timestamp": timestamp_ms,
                "nonce": nonce,
                "data": data,
                "signature": signature,
            })
        }
        Grant::ClientCredentials => serde_json::json!({
            "grant_type": grant.name(),
            "client_id": creds.api_key(),
            "client_secret": creds.hmac_secret()?,
        }),
    };
    Some(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "public/auth", "params": params}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC-SHA256 under "secret" of "1576074319000\nabcd\n", computed
    /// independently with Python:
    /// `hmac.new(b"secret", b"1576074319000\nabcd\n", hashlib.sha256).hexdigest()`.
    const EXPECTED: &str = "2f8be71cf381d25294b12663e428df58e95a5e968ae7d7e566bcc15ab6c4bc1a";

    #[test]
    fn signature_grant_signs_timestamp_nonce_and_data() {
        assert_eq!(string_to_sign(1_576_074_319_000, "abcd", ""), "1576074319000\nabcd\n");
        let c = Credentials::hmac("client-id", "secret").unwrap();
        let frame = auth_frame(&c, Grant::ClientSignature, 7, 1_576_074_319_000, "abcd").unwrap();
        let f: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!((f["id"].as_u64(), f["method"].as_str()), (Some(7), Some("public/auth")));
        let p = &f["params"];
        assert_eq!(p["grant_type"], "client_signature");
        assert_eq!(p["client_id"], "client-id");
        assert_eq!(p["timestamp"], 1_576_074_319_000_i64);
        assert_eq!((p["nonce"].as_str(), p["data"].as_str()), (Some("abcd"), Some("")));
        assert_eq!(p["signature"].as_str(), Some(EXPECTED));
        assert!(!frame.contains("\"secret\""), "the secret is not sent: {frame}");
    }

    #[test]
    fn credentials_grant_sends_the_secret_and_ed25519_keys_cannot_sign() {
        let c = Credentials::hmac("client-id", "s3cr3t").unwrap();
        let f: serde_json::Value =
            serde_json::from_str(&auth_frame(&c, Grant::ClientCredentials, 1, 0, "n").unwrap()).unwrap();
        assert_eq!(f["params"]["grant_type"], "client_credentials");
        assert_eq!(f["params"]["client_secret"], "s3cr3t");
        let ed = Credentials::ed25519_seed("k", [1; 32]).unwrap();
        assert_eq!(auth_frame(&ed, Grant::ClientSignature, 1, 0, "n"), None);
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(5), nonce(5));
    }
}
