//! State faults and the fault clock: what has to happen when a window opens or closes rather
//! than on a call.
//!
//! [`reconcile`] compares the active faults with what was applied and changes the stores:
//! - `token_expiry`: IAM token lifetimes become the shortest active ones, and go back to what
//!   they were when none is active;
//! - `region_capacity`: each named region's capacity becomes the lowest active one, and goes
//!   back to all its servers when none is active (only regions a fault changed are touched);
//! - `ready_delay`: the fleet's ready delay goes back to the configured one when none is active;
//! - `revoke_user`: once per fault, when its window opens — the user's tokens are revoked and
//!   their lobby socket is closed with 4020 (token revoked);
//! - `jwks_rotation`: when its window opens, then every `every_s` while active — a new key is
//!   generated off the async threads and becomes the signing key.
//!
//! A revocation or a rotation is not undone when its fault goes away (AGS cannot un-revoke a
//! token either); the others are.
//!
//! The control API calls [`reconcile`] after every change, so a change takes effect before the
//! answer is sent; the driver task ([`spawn`]) calls it at the next window boundary and at least
//! once a second, and rolls socket disconnects every [`DISCONNECT_TICK`] while a disconnect
//! fault is active. The task runs on the server's tasks and ends when the server stops (or the
//! state is dropped: it holds only a weak reference).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{DISCONNECT_TICK, Entry, FaultKind};
use crate::iam::store::TokenLifetimes;
use crate::keys::SigningKey;
use crate::lobby::hub::Close;
use crate::state::{AppState, WeakState};

/// The longest the driver sleeps, so it notices a dropped state.
const IDLE: Duration = Duration::from_secs(1);

/// Close for a revoked user's socket (Unity SDK `DisconnectTokenRevokedCode`).
pub const CLOSE_TOKEN_REVOKED: Close = Close {
    code: 4020,
    reason: std::borrow::Cow::Borrowed("token revoked"),
};

/// Reason sent with injected disconnects.
pub const INJECTED_DISCONNECT_REASON: &str = "injected disconnect";

/// What fault injection has changed in the stores, so it restores exactly that.
#[derive(Debug, Default)]
pub struct Applied {
    /// The lifetimes before a `token_expiry` fault shortened them.
    base_lifetimes: Option<TokenLifetimes>,
    /// Regions whose capacity a fault set, with the capacity set.
    capacities: BTreeMap<String, usize>,
}

impl Applied {
    /// Forgets capacity changes (the fleet's reset already undid them).
    pub(crate) fn fleet_was_reset(&mut self) {
        self.capacities.clear();
    }
}

fn same(a: TokenLifetimes, b: TokenLifetimes) -> bool {
    a.access == b.access && a.refresh == b.refresh
}

/// Brings the stores in line with the faults active now (see the module docs).
pub fn reconcile(state: &AppState) {
    let faults = &state.faults;
    let snapshot = faults.snapshot();
    let now = Instant::now();
    let active: Vec<&Arc<Entry>> = snapshot.state.iter().filter(|e| e.active(now)).collect();
    let mut applied = faults.applied();

    // Token lifetimes.
    let base = applied
        .base_lifetimes
        .unwrap_or_else(|| state.iam.lifetimes());
    let mut wanted: Option<TokenLifetimes> = None;
    for entry in &active {
        if let FaultKind::TokenExpiry(expiry) = &entry.fault.kind {
            let access = Duration::from_secs(expiry.access_s);
            let refresh = expiry.refresh_s.map_or(base.refresh, Duration::from_secs);
            let current = wanted.unwrap_or(TokenLifetimes { access, refresh });
            wanted = Some(TokenLifetimes {
                access: current.access.min(access),
                refresh: current.refresh.min(refresh),
            });
            first_fire(faults, entry);
        }
    }
    match wanted {
        Some(lifetimes) => {
            applied.base_lifetimes = Some(base);
            if !same(state.iam.lifetimes(), lifetimes) {
                state.iam.set_lifetimes(lifetimes);
            }
        }
        None => {
            if let Some(base) = applied.base_lifetimes.take() {
                state.iam.set_lifetimes(base);
            }
        }
    }

    // Region capacities.
    let mut capacities: BTreeMap<String, (usize, Vec<&Arc<Entry>>)> = BTreeMap::new();
    for entry in &active {
        if let FaultKind::RegionCapacity(limit) = &entry.fault.kind {
            let slot = capacities
                .entry(limit.region.clone())
                .or_insert((limit.capacity, Vec::new()));
            slot.0 = slot.0.min(limit.capacity);
            slot.1.push(entry);
        }
    }
    for (region, (capacity, entries)) in &capacities {
        if applied.capacities.get(region) == Some(capacity) {
            continue;
        }
        match state.dsmc.set_region_capacity(region, *capacity) {
            Ok(_) => {
                applied.capacities.insert(region.clone(), *capacity);
                for entry in entries {
                    first_fire(faults, entry);
                }
            }
            Err(error) => {
                for entry in entries {
                    entry.runtime().error = Some(error.to_string());
                }
            }
        }
    }
    let released: Vec<String> = applied
        .capacities
        .keys()
        .filter(|r| !capacities.contains_key(*r))
        .cloned()
        .collect();
    for region in released {
        // Clamped to the region's servers: all of them again.
        let _ = state.dsmc.set_region_capacity(&region, usize::MAX);
        applied.capacities.remove(&region);
    }
    drop(applied);

    // The ready delay, once no fault sets it.
    if !snapshot.ready_delay.iter().any(|e| e.active(now))
        && faults
            .ready_delay_overridden()
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    {
        state.dsmc.set_ready_delay(state.dsmc.config().ready_delay);
    }

    // One-shot actions.
    for entry in &active {
        match &entry.fault.kind {
            FaultKind::RevokeUser(revoke) => {
                let mut runtime = entry.runtime();
                if runtime.fires > 0 {
                    continue;
                }
                runtime.fires = 1;
                match state.iam.revoke_user(&revoke.user_id) {
                    Ok(()) => {
                        faults.hit(entry);
                        if let Some(user) = state.iam.user(&revoke.user_id) {
                            state.lobby.disconnect(
                                &user.namespace,
                                &revoke.user_id,
                                CLOSE_TOKEN_REVOKED,
                            );
                        }
                    }
                    Err(error) => {
                        runtime.error = Some(format!("user {}: {}", revoke.user_id, error.message))
                    }
                }
            }
            FaultKind::JwksRotation(rotation) => {
                let mut runtime = entry.runtime();
                let Some(opened) = entry.opens_at() else {
                    continue;
                };
                let due = match rotation.every_s {
                    _ if runtime.fires == 0 => true,
                    Some(every) => {
                        let next = Duration::try_from_secs_f64(every * runtime.fires as f64)
                            .unwrap_or(Duration::MAX);
                        now.saturating_duration_since(opened) >= next
                    }
                    None => false,
                };
                if due {
                    runtime.fires += 1;
                    faults.hit(entry);
                    rotate_key(state);
                }
            }
            _ => {}
        }
    }
}

/// Counts a level fault (expiry, capacity) once, when first applied.
fn first_fire(faults: &super::Faults, entry: &Entry) {
    let mut runtime = entry.runtime();
    if runtime.fires == 0 {
        runtime.fires = 1;
        runtime.error = None;
        drop(runtime);
        faults.hit(entry);
    }
}

/// Generates a key on the blocking pool and makes it the signing key.
fn rotate_key(state: &AppState) {
    let weak = state.downgrade();
    let spawned = state.tasks.spawn(async move {
        match tokio::task::spawn_blocking(SigningKey::generate).await {
            Ok(Ok(key)) => {
                if let Some(state) = weak.upgrade() {
                    tracing::info!(kid = %key.kid, "fault injection rotated the signing key");
                    state.iam.keys().rotate(key);
                }
            }
            Ok(Err(error)) => tracing::warn!("jwks rotation: key generation failed: {error}"),
            Err(error) => tracing::warn!("jwks rotation: key generation task failed: {error}"),
        }
    });
    if spawned.is_none() {
        tracing::warn!("jwks rotation needs a tokio runtime; skipped");
    }
}

/// Closes the sockets chosen for one disconnect tick.
fn disconnect_tick(state: &AppState) {
    let sockets = state.lobby.connected();
    if sockets.is_empty() {
        return;
    }
    for (index, code) in state.faults.disconnect_victims(&sockets, DISCONNECT_TICK) {
        if let Some((namespace, user_id)) = sockets.get(index) {
            state.lobby.disconnect(
                namespace,
                user_id,
                Close {
                    code,
                    reason: std::borrow::Cow::Borrowed(INJECTED_DISCONNECT_REASON),
                },
            );
        }
    }
}

/// The next moment a window opens or closes, or a rotation is due, after `now`.
fn next_boundary(state: &AppState, now: Instant) -> Option<Instant> {
    let snapshot = state.faults.snapshot();
    let mut next: Option<Instant> = None;
    let mut consider = |at: Instant| {
        if at > now && next.is_none_or(|n| at < n) {
            next = Some(at);
        }
    };
    for entry in &snapshot.all {
        let Some(opened) = entry.opens_at() else {
            continue;
        };
        consider(opened);
        if let Some(end) = entry.fault.window.and_then(|w| w.end()) {
            if let Some(at) = entry.added.checked_add(end) {
                consider(at);
            }
        }
        if let FaultKind::JwksRotation(rotation) = &entry.fault.kind {
            if let Some(every) = rotation.every_s {
                let fires = entry.runtime().fires.max(1);
                if let Some(at) = Duration::try_from_secs_f64(every * fires as f64)
                    .ok()
                    .and_then(|d| opened.checked_add(d))
                {
                    consider(at);
                }
            }
        }
    }
    next
}

/// Starts the driver task on the server's tasks if a tokio runtime is running (see the
/// module docs); it ends when the server stops or the state is dropped.
pub fn spawn(state: &AppState) {
    state
        .tasks
        .spawn(run(state.downgrade(), state.faults.waker()));
}

async fn run(weak: WeakState, wake: Arc<Notify>) {
    let mut next_tick = Instant::now();
    loop {
        let until = {
            let Some(state) = weak.upgrade() else {
                return;
            };
            let now = Instant::now();
            reconcile(&state);
            let disconnecting = state
                .faults
                .snapshot()
                .disconnect
                .iter()
                .any(|e| e.active(now));
            if disconnecting && now >= next_tick {
                disconnect_tick(&state);
                next_tick = now + DISCONNECT_TICK;
            }
            let mut until = now + IDLE;
            if let Some(boundary) = next_boundary(&state, now) {
                until = until.min(boundary);
            }
            if disconnecting {
                until = until.min(next_tick);
            }
            until
        };
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            () = wake.notified() => {}
        }
    }
}
