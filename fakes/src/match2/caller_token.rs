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
