//! The bearer token match2 sends with its calls of an Extend match function, as AGS sends its
//! own: a client token of this fakes' IAM for the seed client [`CALLER_CLIENT`] (whose
//! permissions include what a function asks of its callers), minted in process — no HTTP
//! round trip — and minted again once [`REFRESH_AT`] of its lifetime has passed, so a call never
//! carries a token about to expire.
//!
//! A seed without that client gives no token: calls go without `authorization`, which a
//! function that checks tokens refuses (counted as a failed call like any other).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::remote::BearerSource;
use crate::state::{AppState, WeakState};

/// The seed client whose token match2 presents to match functions.
pub const CALLER_CLIENT: &str = "matchbench-match2";

/// Share of a token's lifetime after which a new one is minted.
pub const REFRESH_AT: f64 = 0.8;

/// Mints and caches [`CALLER_CLIENT`]'s token from a fakes' own IAM.
#[derive(Debug)]
pub struct CallerToken {
    state: WeakState,
    client_id: String,
    cached: Mutex<Option<Minted>>,
}

#[derive(Debug, Clone)]
struct Minted {
    token: String,
    renew_after: Instant,
}

impl CallerToken {
    /// [`CALLER_CLIENT`]'s tokens from the IAM of `state`: what every registered function is
    /// called with.
    pub fn of_match2(state: &AppState) -> Arc<dyn BearerSource> {
        Self::new(state.downgrade(), CALLER_CLIENT)
    }

    /// Tokens of `client_id` from the IAM of `state`.
    pub fn new(state: WeakState, client_id: &str) -> Arc<Self> {
        Arc::new(CallerToken {
            state,
            client_id: client_id.to_owned(),
            cached: Mutex::new(None),
        })
    }

    fn mint(&self) -> Result<Option<Minted>, String> {
        let Some(state) = self.state.upgrade() else {
            return Err("the fakes has stopped".to_owned());
        };
        let Some(client) = state.iam.client(&self.client_id) else {
            return Ok(None);
        };
        let minted = state
            .iam
            .grant_client_credentials(&client)
            .map_err(|e| format!("minting {}'s token: {}", self.client_id, e.message))?;
        let lifetime = Duration::from_secs(u64::try_from(minted.expires_in).unwrap_or(0));
        Ok(Some(Minted {
            token: minted.access_token,
            renew_after: Instant::now() + lifetime.mul_f64(REFRESH_AT),
        }))
    }
}

impl BearerSource for CallerToken {
    fn bearer(&self) -> Result<Option<String>, String> {
        let mut cached = self.cached.lock();
        if let Some(minted) = cached.as_ref().filter(|m| Instant::now() < m.renew_after) {
            return Ok(Some(minted.token.clone()));
        }
        let fresh = self.mint()?;
        if fresh.is_none() {
            tracing::warn!(
                client = %self.client_id,
                "match2: no such client in the seed; match functions are called without a token"
            );
        }
        *cached = fresh.clone();
        Ok(fresh.map(|m| m.token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakesConfig;
    use crate::keys::SigningKey;

    #[test]
    fn the_token_is_the_seed_clients_own_cached_until_renewal_and_absent_without_the_client() {
        let state = AppState::new(
            FakesConfig::default(),
            SigningKey::process_default().expect("key"),
        );
        let source = CallerToken::of_match2(&state);
        let token = source
            .bearer()
            .expect("minted")
            .expect("the seed has the client");
        let verified = state.iam.verify(&token).expect("a token of this IAM");
        assert!(
            verified.permissions.iter().any(|p| p.resource
                == "NAMESPACE:matchbench:MATCHMAKING:FUNCTIONS"
                && p.action == 2),
            "{:?}",
            verified.permissions
        );
        assert_eq!(
            source.bearer().expect("cached"),
            Some(token.clone()),
            "cached"
        );

        // Past its renewal time a new one is minted.
        let caller = CallerToken::new(state.downgrade(), CALLER_CLIENT);
        let first = caller.bearer().expect("minted").expect("token");
        if let Some(minted) = caller.cached.lock().as_mut() {
            minted.renew_after = Instant::now();
        }
        let second = caller.bearer().expect("minted").expect("token");
        assert_ne!(first, second, "re-minted after its renewal time");

        let nobody = CallerToken::new(state.downgrade(), "no-such-client");
        assert_eq!(nobody.bearer().expect("no error"), None);
    }
}
