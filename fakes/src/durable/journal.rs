//! Group commit: a mutating request's response leaves only after a snapshot taken after its
//! handler ran is on disk.
//!
//! Each request takes a ticket (a counter incremented after the handler ran) and wakes the one
//! flusher task. The flusher reads the newest ticket, takes a snapshot of every store, writes
//! it ([`super::file::write_atomic`]) and publishes "flushed up to that ticket". Requests that
//! arrive while a flush is on disk share the next one, so the cost is one `fsync` per batch,
//! not per request. Changes made by background tasks (lobby queues, match2's engine, a game
//! session's server) are covered by the next flush; a tick flushes at least every second.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{Notify, watch};

use crate::error::ApiError;
use crate::state::AppState;

/// How often the flusher writes even when no request asked it to.
const BACKGROUND_FLUSH: Duration = Duration::from_secs(1);

/// The outcome of the newest flush.
#[derive(Debug, Clone, Default)]
struct Flushed {
    /// Every ticket up to this one is on disk (or failed with `error`).
    upto: u64,
    error: Option<Arc<str>>,
}

/// The state file's writer (see the module docs).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    tickets: AtomicU64,
    wake: Notify,
    flushed: watch::Sender<Flushed>,
    flushes: AtomicU64,
}

impl Journal {
    /// A journal writing `dir`'s state file; nothing is written until the flusher runs.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            path: super::file::state_path(&dir),
            tickets: AtomicU64::new(0),
            wake: Notify::new(),
            flushed: watch::Sender::new(Flushed::default()),
            flushes: AtomicU64::new(0),
        }
    }

    /// The state file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// How many snapshots were written since start.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Waits until everything done before this call is on disk.
    pub async fn commit(&self) -> Result<(), Arc<str>> {
        let mut flushed = self.flushed.subscribe();
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake.notify_one();
        let outcome = flushed
            .wait_for(|f| f.upto >= ticket)
            .await
            .map_err(|_| Arc::<str>::from("the state flusher has stopped"))?;
        match &outcome.error {
            Some(error) => Err(Arc::clone(error)),
            None => Ok(()),
        }
    }
}

/// Starts the flusher of `state`'s journal (none without one). It holds the state weakly and
/// ends when the state is dropped.
pub fn spawn(state: &AppState) {
    let Some(journal) = state.journal.clone() else {
        return;
    };
    let weak = state.downgrade();
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(BACKGROUND_FLUSH, journal.wake.notified()).await;
            let Some(state) = weak.upgrade() else { return };
            let upto = journal.tickets.load(Ordering::SeqCst);
            let path = journal.path.clone();
            let written = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let bytes = super::snapshot::save(&state)?;
                let serialized = started.elapsed();
                super::file::write_atomic(&path, &bytes)?;
                tracing::debug!(
                    bytes = bytes.len(),
                    serialize_us = serialized.as_micros() as u64,
                    total_us = started.elapsed().as_micros() as u64,
                    "fakes: state flushed"
                );
                anyhow::Ok(())
            })
            .await;
            let error = match written {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{e:#}")),
                Err(e) => Some(format!("state snapshot task failed: {e}")),
            };
            if let Some(error) = &error {
                tracing::error!(%error, "fakes: state not saved");
            } else {
                journal.flushes.fetch_add(1, Ordering::Relaxed);
            }
            journal.flushed.send_replace(Flushed {
                upto,
                error: error.map(Arc::from),
            });
        }
    });
}

/// The middleware: a request that may change state (any method but GET, HEAD and OPTIONS)
/// answers only once its effect is on disk; a failed write answers 500 in the AGS shape.
pub async fn commit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(journal) = state.journal.clone() else {
        return next.run(request).await;
    };
    let method = request.method().clone();
    let response = next.run(request).await;
    if method.is_safe() {
        return response;
    }
    match journal.commit().await {
        Ok(()) => response,
        Err(error) => {
            ApiError::internal(format!("the change was not saved: {error}")).into_response()
        }
    }
}
