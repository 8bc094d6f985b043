//! A game session's dedicated server, claimed from the fleet the way AMS serves Session v2:
//! `DSInformation` goes `REQUESTED` → `AVAILABLE` (with the server), or `FAILED_TO_REQUEST`
//! when the fleet has no free server or the claim fails.
//!
//! The fleet ([`crate::dsmc::fleet`]) is the same one DSMC serves: a register gives the session
//! (same id as the game session) a server in the chosen region, `CREATING` until the fleet's
//! ready delay has passed; the claim then makes it `BUSY`. Every fleet fault applies unchanged:
//! `region_capacity` (no free server → `FAILED_TO_REQUEST`), `claim_outcome` (a failed claim
//! → `FAILED_TO_REQUEST`, the server released), `ready_delay` (slower, or with `never` stuck
//! in `REQUESTED`, as a fleet that never delivers leaves AGS sessions).
//!
//! The waiting task runs on the server's tasks (it ends when the server stops) and holds
//! only a weak reference to the state and sleeps exactly until the
//! fleet says the server is ready (no polling). Each change is announced with
//! `OnDSStatusChanged` to the session's members.

use std::time::Duration;

use accelbyte::models::session::{DsStatusChangedNotif, ds_status, topics};
use chrono::Utc;

use crate::dsmc::fleet::{Registration, ServerStatus, SessionInfo};
use crate::lobby::notify::send_json;
use crate::state::{AppState, WeakState};

use super::session_view;
use super::store::{DsState, GameSession, ServerRecord};

/// Claims tried while the server is reported not ready yet (a race with the ready clock).
const CLAIM_ATTEMPTS: u32 = 3;

/// Starts getting a server for `session` (a `DS` session in `NEED_TO_REQUEST`): marks it
/// `REQUESTED` now and finishes in a task. `region` is the match's region, if it had one.
pub fn request_server(state: &AppState, session: &GameSession, region: Option<String>) {
    let requested = set(
        state,
        session,
        DsState {
            status: ds_status::REQUESTED,
            requested_at: Some(Utc::now()),
            server: None,
            error: String::new(),
        },
    );
    let Some(requested) = requested else {
        return;
    };
    let weak = state.downgrade();
    state.tasks.spawn(fulfil(weak, requested, region));
}

/// Records `ds` on the session and announces it; `None` if the session is gone.
fn set(state: &AppState, session: &GameSession, ds: DsState) -> Option<GameSession> {
    let error = ds.error.clone();
    let updated = state
        .game_sessions
        .set_ds(&session.namespace, &session.id, ds)
        .ok()?;
    let body = DsStatusChangedNotif {
        session: session_view(&updated),
        session_id: updated.id.clone(),
        error,
    };
    for user in updated.audience() {
        send_json(
            &state.lobby,
            &updated.namespace,
            &user,
            topics::DS_STATUS_CHANGED,
            &body,
        );
    }
    Some(updated)
}

fn failed(state: &AppState, session: &GameSession, error: String) {
    tracing::debug!(session = %session.id, %error, "game session: no dedicated server");
    set(
        state,
        session,
        DsState {
            status: ds_status::FAILED_TO_REQUEST,
            requested_at: session.ds.requested_at,
            server: None,
            error,
        },
    );
}

/// The region to ask for: the match's, else the first requested one the fleet has, else any.
fn pick_region(state: &AppState, session: &GameSession, region: Option<String>) -> String {
    let known = |name: &str| state.dsmc.config().regions.iter().any(|r| r.name == name);
    region
        .filter(|r| known(r))
        .or_else(|| {
            session
                .template
                .requested_regions
                .iter()
                .find(|r| known(r))
                .cloned()
        })
        .unwrap_or_default()
}

async fn fulfil(weak: WeakState, session: GameSession, region: Option<String>) {
    let Some(state) = weak.upgrade() else {
        return;
    };
    let region = pick_region(&state, &session, region);
    state.faults.before_register(&state.dsmc);
    let registration = Registration {
        namespace: session.namespace.clone(),
        session_id: session.id.clone(),
        region,
        pod_name: String::new(),
        deployment: session.template.deployment.clone(),
        game_mode: session.match_pool.clone(),
        client_version: session.template.client_version.clone(),
        configuration: session.template.name.clone(),
    };
    if let Err(e) = state.dsmc.register(registration) {
        failed(&state, &session, e.to_string());
        return;
    }
    drop(state);
    for _ in 0..CLAIM_ATTEMPTS {
        let wait = {
            let Some(state) = weak.upgrade() else {
                return;
            };
            // `None`: the server never gets ready; the session stays REQUESTED.
            let Some(wait) = state.dsmc.time_to_ready(&session.namespace, &session.id) else {
                return;
            };
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let Some(state) = weak.upgrade() else {
            return;
        };
        if state
            .game_sessions
            .get(&session.namespace, &session.id)
            .is_none()
        {
            // Deleted while waiting: give the server back.
            state.dsmc.delete(&session.namespace, &session.id);
            return;
        }
        match state.dsmc.claim(&session.namespace, &session.id) {
            Ok(()) => {
                if let Some(info) = state.dsmc.session(&session.namespace, &session.id) {
                    available(&state, &session, &info);
                }
                return;
            }
            Err(crate::dsmc::fleet::ClaimFailure::NotReady) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(failure) => {
                state.dsmc.delete(&session.namespace, &session.id);
                failed(&state, &session, format!("claim failed: {failure}"));
                return;
            }
        }
    }
    if let Some(state) = weak.upgrade() {
        state.dsmc.delete(&session.namespace, &session.id);
        failed(
            &state,
            &session,
            "dedicated server never became claimable".into(),
        );
    }
}

fn available(state: &AppState, session: &GameSession, info: &SessionInfo) {
    let server = ServerRecord {
        pod_name: info.pod_name.clone(),
        ip: info.ip.clone(),
        port: info.port,
        region: info.region.clone(),
        deployment: info.deployment.clone(),
        game_version: info.client_version.clone(),
        status: if info.status == ServerStatus::Busy {
            "READY".to_owned()
        } else {
            info.status.as_str().to_owned()
        },
        last_update: info.last_update(),
    };
    set(
        state,
        session,
        DsState {
            status: ds_status::AVAILABLE,
            requested_at: session.ds.requested_at,
            server: Some(server),
            error: String::new(),
        },
    );
}
