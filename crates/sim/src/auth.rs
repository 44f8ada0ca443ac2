//! Signature verification of the simulated accounts: HMAC-SHA256 as hex, or
//! Ed25519 as base64. Each venue's signed requests (what is signed, which
//! headers, the timestamp rule, the error codes) are in its folder.
//!
//! Secrets and signatures never leave this module: a failure carries nothing
//! but the fact, and nothing here logs.

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::AccountSpec;

/// How one account's requests are verified.
#[derive(Clone)]
pub(crate) struct Verifier {
    hmac: Option<Vec<u8>>,
    ed25519: Option<VerifyingKey>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hmac", &self.hmac.is_some())
            .field("ed25519", &self.ed25519.is_some())
            .finish()
    }
}

/// A signature that does not verify (or a key that cannot check it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadSignature;

impl Verifier {
    pub(crate) fn new(spec: &AccountSpec) -> Verifier {
        Verifier {
            hmac: spec.hmac_secret.as_ref().map(|s| s.as_bytes().to_vec()),
            ed25519: spec.ed25519_public_key.and_then(|k| VerifyingKey::from_bytes(&k).ok()),
        }
    }

    pub(crate) fn has_ed25519(&self) -> bool {
        self.ed25519.is_some()
    }

    /// Verifies `signature` over `payload`: 64 hex digits are tried as
    /// HMAC-SHA256 (case-insensitive), anything else as base64 Ed25519.
    /// `ed25519_only` refuses HMAC (as `session.logon` does).
    pub(crate) fn verify(&self, payload: &[u8], signature: &str, ed25519_only: bool) -> Result<(), BadSignature> {
        let sig = signature.trim();
        if !ed25519_only
            && sig.len() == 64
            && sig.bytes().all(|b| b.is_ascii_hexdigit())
            && let Some(secret) = &self.hmac
        {
            let Ok(bytes) = hex::decode(sig) else { return Err(BadSignature) };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return Err(BadSignature) };
            mac.update(payload);
            return mac.verify_slice(&bytes).map_err(|_| BadSignature);
        }
        let Some(key) = &self.ed25519 else { return Err(BadSignature) };
        // A `+` that arrived unescaped in a query string was decoded as a space.
        let b64 = sig.replace(' ', "+");
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) else {
            return Err(BadSignature);
        };
        let Ok(arr) = <[u8; 64]>::try_from(bytes.as_slice()) else { return Err(BadSignature) };
        key.verify_strict(payload, &Signature::from_bytes(&arr)).map_err(|_| BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    fn spec() -> AccountSpec {
        let mut a = AccountSpec::ed25519_seed("t", "k", &[9u8; 32]);
        a.hmac_secret = Some("s3cr3t".into());
        a
    }

    #[test]
    fn hmac_and_ed25519_signatures_verify_and_tampering_fails() {
        let v = Verifier::new(&spec());
        let payload = b"symbol=BTCUSDT&timestamp=1";
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t").unwrap();
        mac.update(payload);
        let hex_sig = hex::encode(mac.finalize().into_bytes());
        assert_eq!(v.verify(payload, &hex_sig, false), Ok(()));
        assert_eq!(v.verify(payload, &hex_sig.to_uppercase(), false), Ok(()));
        assert_eq!(v.verify(b"symbol=BTCUSDT&timestamp=2", &hex_sig, false), Err(BadSignature));
        assert_eq!(v.verify(payload, &hex_sig, true), Err(BadSignature), "logon is Ed25519 only");
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(sk.sign(payload).to_bytes());
        assert_eq!(v.verify(payload, &b64, true), Ok(()));
        assert_eq!(v.verify(payload, &b64.replace('+', " "), true), Ok(()));
        assert_eq!(v.verify(b"x", &b64, true), Err(BadSignature));
        assert_eq!(v.verify(payload, "not base64!", true), Err(BadSignature));
    }
}
