//! The RSA keys fakes signs access tokens with, and the JWKS it publishes for them.
//!
//! Generating a 2048-bit key takes a noticeable fraction of a second, so the first key a process
//! generates is reused by every fakes instance the process starts later (tests start many). A
//! rotation always generates a new key and keeps the old ones in the JWKS, so tokens issued
//! before the rotation still validate, as they do on AGS.

use std::sync::OnceLock;

use accelbyte::models::iam::{Jwk, Jwks};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::{Serialize, de::DeserializeOwned};

/// One signing key with everything derived from it.
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_private(key: &RsaPrivateKey) -> anyhow::Result<Self> {
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)?;
        let kid = hex::encode(&sha2_digest(n.as_bytes())[..16]);
        Ok(Self {
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes())?,
            decoding: DecodingKey::from_rsa_components(&n, &e)?,
            jwk: Jwk {
                kty: "RSA".into(),
                alg: "RS256".into(),
                use_: "sig".into(),
                kid: kid.clone(),
                n,
                e,
            },
            kid,
        })
    }

    /// Reads a PKCS#1 or PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let key = RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|e| anyhow::anyhow!("not an RSA private key in PEM: {e}"))?;
        Self::from_private(&key)
    }

    /// A freshly generated 2048-bit key.
    pub fn generate() -> anyhow::Result<Self> {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        Self::from_private(&key)
    }

    /// The process's first generated key (generated on first use).
    pub fn process_default() -> anyhow::Result<Self> {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        let key = match KEY.get() {
            Some(k) => k,
            None => {
                let fresh = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
                KEY.get_or_init(|| fresh)
            }
        };
        Self::from_private(key)
    }
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token was signed by an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
}

/// The current signing key plus the retired ones still published.
#[derive(Debug)]
pub struct KeyRing {
    keys: RwLock<Vec<SigningKey>>,
}

impl KeyRing {
    pub fn new(first: SigningKey) -> Self {
        Self {
            keys: RwLock::new(vec![first]),
        }
    }

    /// Makes `key` the signing key; older keys stay in the JWKS.
    pub fn rotate(&self, key: SigningKey) {
        self.keys.write().push(key);
    }

    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .keys
                .read()
                .iter()
                .rev()
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// Signs `claims` as RS256 with the current key's `kid`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> anyhow::Result<String> {
        let keys = self.keys.read();
        let key = keys
            .last()
            .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// Verifies signature and expiry; `leeway_s` tolerates clock skew.
    pub fn verify<C: DeserializeOwned>(&self, token: &str, leeway_s: u64) -> Result<C, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let keys = self.keys.read();
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = leeway_s;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.required_spec_claims.insert("exp".into());
        jsonwebtoken::decode::<C>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed,
            })
    }
}
