//! One server lifecycle for both servers: start, background tasks, stop.
//!
//! - [`Tasks`] — a cheap-clone pair of a [`CancellationToken`] (cancelled when the server
//!   stops) and a [`TaskTracker`] (every background task of the server, so stopping can wait
//!   for them). A task spawned here is stopped at the token; a panic in one is recorded, not
//!   lost, and makes [`Handle::shutdown`] fail.
//! - [`Server`] — takes a bound listener and a serve function (plain HTTP through
//!   [`crate::accept`], HTTPS, gRPC: whatever resolves once the token is cancelled) and runs
//!   it as the server task.
//! - [`Handle`] — the running server: its address, [`Handle::shutdown`] (cancel, wait for the
//!   server task, then for the tracked tasks within a grace period; an error when any of them
//!   panicked or failed), [`Handle::serve_until`] (what a binary runs: until a signal, or
//!   until the server fails on its own), and stop-on-drop.
//! - [`shutdown_signal`] — SIGINT or SIGTERM, what both binaries stop on.
//!
//! Why: without this every server copied its own `Handle`, turned a panicked server task into
//! `Ok`, and started timers that only stopped when the last reference to the state died.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

/// How long [`Handle::shutdown`] waits for tracked tasks after the server task ended, unless
/// [`Server::grace`] says otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The error a serve function may end with.
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// A server's background tasks: a stop token and a tracker. Cheap to clone; clones share both.
#[derive(Clone, Debug, Default)]
pub struct Tasks {
    token: CancellationToken,
    tracker: TaskTracker,
    panics: Arc<Mutex<Vec<String>>>,
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the server stops.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether stopping has begun.
    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Begins stopping: every task spawned by [`Tasks::spawn`] ends at its next `.await`.
    pub fn stop(&self) {
        self.token.cancel();
    }

    /// The tracker; [`TaskTracker::len`] counts the tasks still running.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Spawns `task` on the tracker, on the current runtime; it is dropped at its next
    /// `.await` once the token is cancelled, and a panic in it is recorded. `None` (and
    /// nothing runs) outside a tokio runtime, where there is no one to drive it — callers
    /// that can do the work synchronously then do.
    pub fn spawn<F>(&self, task: F) -> Option<JoinHandle<()>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.token.clone();
        self.spawn_watched(async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = task => {}
            }
        })
    }

    /// Like [`Tasks::spawn`], for a task that watches [`Tasks::token`] (or another token)
    /// itself because it has something to finish before it ends.
    pub fn spawn_watched<F>(&self, task: F) -> Option<JoinHandle<()>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let panics = Arc::clone(&self.panics);
        let caught = CatchUnwind(Box::pin(task));
        Some(self.tracker.spawn_on(
            async move {
                if let Err(payload) = caught.await {
                    let message = panic_message(payload.as_ref());
                    tracing::error!(%message, "a background task panicked");
                    lock(&panics).push(message);
                }
            },
            &runtime,
        ))
    }

    /// The messages of the tracked tasks that panicked so far.
    pub fn panics(&self) -> Vec<String> {
        lock(&self.panics).clone()
    }

    /// Cancels the token, then waits up to `grace` for every tracked task to end.
    pub async fn shutdown(&self, grace: Duration) -> Result<(), ShutdownError> {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            return Err(ShutdownError::TasksStillRunning {
                grace,
                running: self.tracker.len(),
            });
        }
        let panics = self.panics();
        if panics.is_empty() {
            Ok(())
        } else {
            Err(ShutdownError::TasksPanicked(panics))
        }
    }
}

fn lock(panics: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    panics
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

/// A future that turns a panic while polling `F` into an `Err` with the panic's payload.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// Why a server did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error("the server failed: {0}")]
    Server(ServeError),
    #[error("the server task panicked: {0}")]
    ServerPanicked(String),
    #[error("{} background task(s) panicked: {}", .0.len(), .0.join("; "))]
    TasksPanicked(Vec<String>),
    #[error("{running} background task(s) still running {grace:?} after the stop")]
    TasksStillRunning { grace: Duration, running: usize },
}

/// A server about to start: its [`Tasks`] and how long stopping may wait for them.
#[derive(Debug, Clone)]
pub struct Server {
    tasks: Tasks,
    grace: Duration,
}

impl Server {
    /// A server whose background tasks are `tasks` (the app state's, so routes and timers
    /// spawn on the same tracker the server waits for).
    pub fn new(tasks: Tasks) -> Self {
        Self {
            tasks,
            grace: DEFAULT_GRACE,
        }
    }

    /// How long [`Handle::shutdown`] waits for tracked tasks once the server task ended.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Runs `serve(listener, token)` as the server task; `serve` must resolve once the token
    /// is cancelled (after draining, if it drains). The listener's address is read first.
    pub fn start<S, Fut, E>(self, listener: TcpListener, serve: S) -> std::io::Result<Handle>
    where
        S: FnOnce(TcpListener, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<ServeError>,
    {
        let addr = listener.local_addr()?;
        let served = serve(listener, self.tasks.token.clone());
        let task = tokio::spawn(async move { served.await.map_err(Into::into) });
        Ok(Handle {
            addr,
            tasks: self.tasks,
            grace: self.grace,
            task: Some(task),
        })
    }
}

/// A running server; dropping it begins stopping (without waiting).
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    tasks: Tasks,
    grace: Duration,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Handle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{scheme}://IP:PORT`, e.g. `url("http")`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// The server's background tasks.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Stops: cancels the token, waits for the server task (it drains as it likes), then up
    /// to the grace period for the tracked tasks. An error when the server task failed or
    /// panicked, a tracked task panicked, or tracked tasks outlived the grace period.
    pub async fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.tasks.stop();
        let served = match self.task.take() {
            Some(task) => served(task.await),
            None => Ok(()),
        };
        let tasks = self.tasks.shutdown(self.grace).await;
        served.and(tasks)
    }

    /// Serves until `stop` resolves (e.g. [`shutdown_signal`]), then [`Handle::shutdown`]s; if
    /// the server task ends first (it failed to serve), stops the tracked tasks and reports
    /// why at once instead of waiting for `stop`.
    pub async fn serve_until(
        mut self,
        stop: impl Future<Output = ()>,
    ) -> Result<(), ShutdownError> {
        let Some(task) = self.task.as_mut() else {
            return self.shutdown().await;
        };
        let ended = tokio::select! {
            () = stop => None,
            joined = task => Some(joined),
        };
        match ended {
            None => self.shutdown().await,
            Some(joined) => {
                self.task = None;
                tracing::error!("the server stopped on its own");
                let served = served(joined);
                let tasks = self.tasks.shutdown(self.grace).await;
                served.and(tasks)
            }
        }
    }
}

/// What the server task's end says about how it served.
fn served(
    joined: Result<Result<(), ServeError>, tokio::task::JoinError>,
) -> Result<(), ShutdownError> {
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ShutdownError::Server(error)),
        Err(join) if join.is_panic() => Err(ShutdownError::ServerPanicked(panic_message(
            join.into_panic().as_ref(),
        ))),
        Err(join) => Err(ShutdownError::Server(Box::new(join))),
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.tasks.stop();
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT); a signal that cannot be listened for is logged
/// and never fires.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
