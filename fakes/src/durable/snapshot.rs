//! One snapshot of every store as a JSON document: the signing keys (so tokens issued before a
//! restart still validate), IAM, the lobby's queued notifications, the session browser, the
//! DSMC fleet, Session v2 and Matchmaking v2. Live things are not saved: lobby sockets (clients
//! reconnect), counters, fault hooks and registered match functions (configuration, applied
//! again at start).
//!
//! Each store writes its own part under its own lock, one after another, so a snapshot is not
//! one instant across stores; every part is consistent in itself, and a request's changes are
//! all in any snapshot taken after its handler returned.

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use crate::keys::SigningKey;
use crate::state::AppState;

/// Bumped when a store's saved shape changes incompatibly.
const FORMAT: u32 = 1;

/// A saved snapshot as read back; each part is restored by its own store.
#[derive(Debug, Deserialize)]
struct Saved {
    format: u32,
    keys: Vec<String>,
    iam: Value,
    lobby: Value,
    sessions: Value,
    dsmc: Value,
    game_sessions: Value,
    match2: Value,
}

/// Serializes every store of `state`.
pub fn save(state: &AppState) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(format!("{{\"format\":{FORMAT},\"keys\":").as_bytes());
    serde_json::to_writer(&mut out, &state.iam.keys().export_pem())?;
    out.extend_from_slice(b",\"iam\":");
    state.iam.save_to(&mut out)?;
    out.extend_from_slice(b",\"lobby\":");
    state.lobby.save_to(&mut out)?;
    out.extend_from_slice(b",\"sessions\":");
    state.sessions.save_to(&mut out)?;
    out.extend_from_slice(b",\"dsmc\":");
    state.dsmc.save_to(&mut out)?;
    out.extend_from_slice(b",\"game_sessions\":");
    state.game_sessions.save_to(&mut out)?;
    out.extend_from_slice(b",\"match2\":");
    state.match2.save_to(&mut out)?;
    out.push(b'}');
    Ok(out)
}

/// Replaces every store of `state` with the snapshot in `bytes`; errors name the part.
pub fn restore(state: &AppState, bytes: &[u8]) -> anyhow::Result<()> {
    let saved: Saved = serde_json::from_slice(bytes).context("not a fakes state snapshot")?;
    anyhow::ensure!(
        saved.format == FORMAT,
        "snapshot format {} is not the one this fakes reads ({FORMAT})",
        saved.format
    );
    let keys = saved
        .keys
        .iter()
        .map(|pem| SigningKey::from_pem(pem))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("keys")?;
    state.iam.keys().replace(keys).context("keys")?;
    state.iam.restore_from(saved.iam).context("iam")?;
    state.lobby.restore_from(saved.lobby).context("lobby")?;
    state
        .sessions
        .restore_from(saved.sessions)
        .context("sessions")?;
    state.dsmc.restore_from(saved.dsmc).context("dsmc")?;
    state
        .game_sessions
        .restore_from(saved.game_sessions)
        .context("game_sessions")?;
    state.match2.restore_from(saved.match2).context("match2")?;
    Ok(())
}
