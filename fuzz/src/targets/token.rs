//! The matchmaker's token validator ([`matchmaker::auth::Auth`]) against an in-process fakes:
//! the keys, revocation list and roles it fetches are real. Seeds are tokens fakes issued to
//! seeded players, plus tokens whose claims were mutated structurally and then signed with
//! fakes' own key — so mutants get past the signature into the revocation, namespace, ban,
//! legal-agreement and permission checks. Byte mutations of any of them exercise the decoding
//! and signature paths.

use std::sync::Arc;
use std::time::Duration;

use accelbyte::client::{AbClient, Config as AbConfig};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use matchmaker::ags::Ags;
use matchmaker::auth::{Auth, AuthConfig};
use matchmaker::metrics::Metrics;
use serde_json::Value;
use url::Url;

use crate::mutate::{Mutator, keys_of};
use crate::{Target, Verdict};

use fakes::seed::builtin::{self, NAMESPACE};
/// Claim mutants signed at start (signing costs a millisecond or two each).
const SIGNED_MUTANTS: usize = 600;

pub struct TokenTarget {
    runtime: tokio::runtime::Runtime,
    _fakes: fakes::Handle,
    auth: Auth,
    seeds: Vec<Vec<u8>>,
    keys: Vec<String>,
}

impl std::fmt::Debug for TokenTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenTarget").finish_non_exhaustive()
    }
}

impl TokenTarget {
    /// Starts fakes, logs the seeded players in and loads the validator's keys.
    pub fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (fakes, auth, tokens) = runtime.block_on(async {
            let fakes = fakes::spawn(fakes::FakesConfig::default()).await?;
            let base = Url::parse(&fakes.base_url())?;
            let players = AbClient::new(AbConfig::new(
                base.clone(),
                builtin::PLAYER_CLIENT_ID,
                None,
                NAMESPACE,
            ))?;
            let mut tokens = Vec::new();
            for (user, password) in [builtin::PLAYER1, builtin::PLAYER2] {
                tokens.push(players.login_password(user, password).await?.access_token);
            }
            let metrics = Arc::new(Metrics::new(["1v1"], "memory"));
            let ags = Ags::new(
                AbConfig::new(
                    base,
                    builtin::GAME_CLIENT_ID,
                    Some(builtin::GAME_CLIENT_SECRET.to_owned()),
                    NAMESPACE,
                ),
                Duration::from_secs(5),
                metrics.clone(),
            )?;
            let config = AuthConfig {
                // Unknown key ids must not make every mutant a JWKS fetch.
                jwks_refetch_interval: Duration::from_secs(3600),
                ..AuthConfig::default()
            };
            let auth = Auth::new(ags, config, metrics);
            auth.refresh_keys().await?;
            auth.refresh_revocations().await?;
            anyhow::Ok((fakes, auth, tokens))
        })?;
        let mut keys = Vec::new();
        let mut claims = Vec::new();
        for token in &tokens {
            let value = payload(token).ok_or_else(|| anyhow::anyhow!("unreadable seed token"))?;
            keys_of(&value, &mut keys);
            claims.push(value);
        }
        keys.extend(
            [
                "MATCHMAKING",
                "LOGIN",
                "CHAT_SEND",
                "NAMESPACE:matchbench:MATCHMAKING",
                "{namespace}",
                "{userId}",
            ]
            .map(str::to_owned),
        );
        keys.sort();
        keys.dedup();
        let words: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut m = Mutator::new(0x70_6b_65_6e, &words);
        let mut seeds: Vec<Vec<u8>> = tokens.iter().map(|t| t.as_bytes().to_vec()).collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for i in 0..SIGNED_MUTANTS {
            let mut value = claims[i % claims.len()].clone();
            // Keep most mutants in date, so the checks after `exp` run.
            value["exp"] = Value::from(now + 3600);
            m.json(&mut value);
            if let Ok(token) = fakes.state.iam.keys().sign(&value) {
                seeds.push(token.into_bytes());
            }
        }
        Ok(TokenTarget {
            runtime,
            _fakes: fakes,
            auth,
            seeds,
            keys,
        })
    }
}

/// The claims of a JWT, unverified.
fn payload(token: &str) -> Option<Value> {
    let part = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Target for TokenTarget {
    fn name(&self) -> &'static str {
        "token"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn dictionary(&self) -> Vec<String> {
        let mut words = self.keys.clone();
        words.extend(["eyJ", ".", "..", "=", "-", "_"].map(str::to_owned));
        words
    }

    fn mutate(&self, m: &mut Mutator, base: &[u8], other: &[u8]) -> Vec<u8> {
        // A third of the time, one part's claims re-encoded after a structural mutation (the
        // signature no longer matches, which is the point: claims must not be read unsigned).
        if m.chance(0.3) {
            if let Ok(text) = std::str::from_utf8(base) {
                let parts: Vec<&str> = text.split('.').collect();
                if parts.len() == 3 {
                    let part = m.below(2);
                    if let Some(mut value) = URL_SAFE_NO_PAD
                        .decode(parts[part])
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    {
                        m.json(&mut value);
                        let encoded =
                            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&value).unwrap_or_default());
                        let mut parts: Vec<String> =
                            parts.iter().map(|p| (*p).to_owned()).collect();
                        parts[part] = encoded;
                        return parts.join(".").into_bytes();
                    }
                }
            }
        }
        m.bytes(base, other)
    }

    fn execute(&mut self, input: &[u8]) -> Verdict {
        let token = String::from_utf8_lossy(input);
        match self.runtime.block_on(self.auth.authenticate(&token)) {
            Ok(principal) => {
                let sub = payload(&token).and_then(|c| c.get("sub")?.as_str().map(str::to_owned));
                assert_eq!(
                    Some(principal.user_id.as_str().to_owned()),
                    sub,
                    "an accepted token's principal is its subject"
                );
                Verdict::Accepted
            }
            Err(_) => Verdict::Refused,
        }
    }
}
