//! Durable state (`--state-dir`): the emulated AGS keeps what it acknowledged across a crash,
//! as the real service does. Tokens issued before a restart stay valid (the signing keys are
//! saved), users, refresh tokens and revocations stay, queued lobby notifications are still
//! delivered on reconnect, sessions, servers and claims stay where they were.
//!
//! - [`snapshot`]: every store's part of one JSON document, and restoring from it;
//! - [`journal`]: group commit — a mutating request answers after a snapshot taken after its
//!   handler ran is on disk;
//! - [`file`]: write to a temporary file, `fsync`, rename;
//! - [`wallclock`]: serde helpers (instants as wall-clock time, tuple-keyed maps).
//!
//! Without a state directory none of this runs and nothing costs anything.

pub mod file;
pub mod journal;
pub mod snapshot;
pub mod wallclock;

use anyhow::Context;

use crate::state::AppState;

/// Restores `state` from its state directory's file, if there is one; `true` when it did.
/// Errors name the file and the part that could not be read.
pub fn load(state: &AppState) -> anyhow::Result<bool> {
    let Some(journal) = &state.journal else {
        return Ok(false);
    };
    let path = journal.path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the state directory", dir.display()))?;
    }
    match file::read(path)? {
        None => Ok(false),
        Some(bytes) => {
            snapshot::restore(state, &bytes).with_context(|| format!("{}", path.display()))?;
            Ok(true)
        }
    }
}
