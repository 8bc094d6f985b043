//! The RSA keys fakes signs access tokens with, and the JWKS it publishes for them.
//!
//! Generating a 2048-bit key takes a noticeable fraction of a second, so the first key a process
//! generates is reused by every fakes instance the process starts later (tests start many). A
//! rotation always generates a new key and keeps the old ones in the JWKS, so tokens issued
//! before the rotation still validate, as they do on AGS.
//!
//! Tokens are RS256 JWTs built here: the base64url header (`typ`, `alg`, `kid`: fixed per key,
//! encoded once), the claims, and a PKCS#1 v1.5 SHA-256 signature by AWS-LC (aws-lc-rs) with
//! the key pair parsed once. AWS-LC's RSA is about twice as fast as ring's on x86-64 (it has
//! the AVX-512 IFMA and AVX2 Montgomery code), but parsing and checking a key costs it more than
//! a signature, and jsonwebtoken (9 with ring, 10 with either backend) parses the DER key again
//! for every token; see `benches/rsa_sign.rs` and `docs/benchmarks.md`. Verification stays with
//! jsonwebtoken.

use std::sync::{Arc, OnceLock};

use accelbyte::models::iam::{Jwk, Jwks};
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::{Serialize, de::DeserializeOwned};

/// One signing key with everything derived from it.
pub struct SigningKey {
    pub kid: String,
    /// The private key, parsed and checked once.
    pair: RsaKeyPair,
    /// `base64url({"typ":"JWT","alg":"RS256","kid":…})`: the first part of every token.
    header_b64: String,
    decoding: DecodingKey,
    jwk: Jwk,
    /// The private key as PKCS#1 PEM, for saved state (`--state-dir`).
    pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The JOSE header of every token, in jsonwebtoken's field order.
#[derive(Serialize)]
struct JoseHeader<'a> {
    typ: &'a str,
    alg: &'a str,
    kid: &'a str,
}

impl SigningKey {
    fn from_private(key: &RsaPrivateKey) -> anyhow::Result<Self> {
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        let der = key.to_pkcs1_der()?;
        let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)?.to_string();
        let pair = RsaKeyPair::from_der(der.as_bytes())
            .map_err(|e| anyhow::anyhow!("RSA key not usable for RS256 signing: {e}"))?;
        let kid = hex::encode(&sha2_digest(n.as_bytes())[..16]);
        let header = serde_json::to_vec(&JoseHeader {
            typ: "JWT",
            alg: "RS256",
            kid: &kid,
        })?;
        Ok(Self {
            pair,
            header_b64: URL_SAFE_NO_PAD.encode(header),
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
            pem,
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

    /// The private key as PKCS#1 PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// `claims` as an RS256 JWT with this key's `kid`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> anyhow::Result<String> {
        let claims = serde_json::to_vec(claims)?;
        let sig_len = self.pair.public_modulus_len();
        let mut token = String::with_capacity(
            self.header_b64.len() + 2 + (claims.len() + sig_len).div_ceil(3) * 4,
        );
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let mut signature = vec![0; sig_len];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
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
    keys: RwLock<Vec<Arc<SigningKey>>>,
}

impl KeyRing {
    pub fn new(first: SigningKey) -> Self {
        Self {
            keys: RwLock::new(vec![Arc::new(first)]),
        }
    }

    /// Makes `key` the signing key; older keys stay in the JWKS.
    pub fn rotate(&self, key: SigningKey) {
        self.keys.write().push(Arc::new(key));
    }

    /// Every key, oldest first, as PKCS#1 PEM (what saved state keeps).
    pub fn export_pem(&self) -> Vec<String> {
        self.keys.read().iter().map(|k| k.pem.clone()).collect()
    }

    /// Replaces the ring with `keys`, oldest first (the last one signs); refuses an empty list.
    pub fn replace(&self, keys: Vec<SigningKey>) -> anyhow::Result<()> {
        anyhow::ensure!(!keys.is_empty(), "no signing key");
        *self.keys.write() = keys.into_iter().map(Arc::new).collect();
        Ok(())
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
        // The lock is not held while signing: a rotation never waits for a signature.
        let key = self
            .keys
            .read()
            .last()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        key.sign(claims)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        exp: i64,
    }

    #[test]
    fn tokens_are_the_rs256_jwts_jsonwebtoken_would_make() {
        let key = SigningKey::process_default().expect("key");
        let claims = Claims {
            sub: "player-1".into(),
            exp: 4_102_444_800,
        };
        let token = key.sign(&claims).expect("sign");

        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));

        let ring = KeyRing::new(key);
        let back: Claims = ring.verify(&token, 0).expect("verifies with the JWKS key");
        assert_eq!(back, claims);

        // A flipped signature byte is refused.
        let mut bad = token.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).expect("ascii");
        assert_eq!(
            ring.verify::<Claims>(&bad, 0),
            Err(TokenError::BadSignature)
        );
    }

    /// PKCS#1 v1.5 signatures are deterministic: the same header, claims and key give the same
    /// token through jsonwebtoken's own encoder.
    #[test]
    fn signatures_match_jsonwebtoken_encode_byte_for_byte() {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
        let pem = private
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .expect("pem");
        let key = SigningKey::from_pem(&pem).expect("from pem");
        let claims = Claims {
            sub: "player-2".into(),
            exp: 4_102_444_800,
        };
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        let reference = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key"),
        )
        .expect("reference token");
        assert_eq!(key.sign(&claims).expect("sign"), reference);
    }
}
