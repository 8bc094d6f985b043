//! The accept loop: takes connections off the listening socket, survives running out of file
//! descriptors, and hands each connection to the HTTP server — or, for lobby upgrades when lobby
//! shards run, to a shard process (see [`crate::lobby::cluster`]).
//!
//! Why our own loop rather than `axum::serve`'s: under overload `accept` fails with `EMFILE`
//! ("too many open files"); axum logs every failure and sleeps a fixed second, which is both a
//! log storm and a needless stall once descriptors free up. Here the loop backs off
//! exponentially from a few milliseconds to a second, logs once per [`LOG_EVERY`] with the
//! number of failures since the last line, and counts them for `/_fakes/stats`. Errors that
//! concern one connection only (reset or aborted before we took it) are skipped at once.
//!
//! The loop never waits on a client: classification (reading the request head of a fresh
//! connection without consuming it) runs in a task per connection, so one slow client cannot
//! hold up the others.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Shortest pause after a resource error.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause after repeated resource errors.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this interval about accept failures.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Connections classified but not yet taken by the HTTP server; past this the acceptor waits,
/// and the kernel's backlog absorbs the burst.
const QUEUE: usize = 1024;

/// Counters of the accept loop, shared with the stats endpoint.
#[derive(Debug, Default)]
pub struct AcceptStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// `accept` failures for lack of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`).
    pub resource_errors: AtomicU64,
    /// Lobby connections handed to a shard process.
    pub handed_off: AtomicU64,
}

/// Where a freshly accepted connection goes. Implemented by the lobby cluster; without one,
/// every connection goes to the HTTP server.
pub trait Dispatch: Send + Sync + 'static {
    /// Takes the connection (handed to a shard) or gives it back for the HTTP server.
    fn dispatch(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) -> Dispatched;
}

/// What [`Dispatch::dispatch`] returns: the connection back for HTTP, or `None` once taken.
pub type Dispatched =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<(TcpStream, SocketAddr)>> + Send>>;

/// An `axum::serve` listener fed by [`run`]: what axum accepts has already been accepted,
/// classified and kept for HTTP.
pub struct Accepted {
    rx: mpsc::Receiver<(TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for Accepted {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop ended (shutdown): nothing more will come; axum's graceful
            // shutdown ends the serve future.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Starts the accept loop on `listener` and returns the listener axum should serve. The loop
/// ends when the returned [`Accepted`] is dropped.
pub fn start(
    listener: TcpListener,
    dispatch: Option<Arc<dyn Dispatch>>,
    stats: Arc<AcceptStats>,
) -> io::Result<Accepted> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(listener, dispatch, tx, stats));
    Ok(Accepted { rx, local })
}

async fn run(
    listener: TcpListener,
    dispatch: Option<Arc<dyn Dispatch>>,
    tx: mpsc::Sender<(TcpStream, SocketAddr)>,
    stats: Arc<AcceptStats>,
) {
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tx.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(error) if is_resource_error(&error) => {
                stats.resource_errors.fetch_add(1, Ordering::Relaxed);
                let pause = backoff.failed(&error);
                tokio::time::sleep(pause).await;
                continue;
            }
            // Reset or aborted before we took it, or similar: that connection only.
            Err(_) => continue,
        };
        backoff.succeeded();
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        match &dispatch {
            None => {
                if tx.send((stream, peer)).await.is_err() {
                    return;
                }
            }
            Some(dispatch) => {
                let dispatch = Arc::clone(dispatch);
                let tx = tx.clone();
                let stats = Arc::clone(&stats);
                tokio::spawn(async move {
                    match dispatch.dispatch(stream, peer).await {
                        Some(conn) => {
                            let _ = tx.send(conn).await;
                        }
                        None => {
                            stats.handed_off.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        }
    }
}

/// Failures that mean "no descriptors or memory right now": wait, do not spin.
pub fn is_resource_error(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == libc_codes::EMFILE
            || code == libc_codes::ENFILE
            || code == libc_codes::ENOBUFS
            || code == libc_codes::ENOMEM
    )
}

/// The errno values we react to (Linux numbering, which is what this emulator targets).
mod libc_codes {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// Exponential backoff with rate-limited logging.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    failures_since_log: u64,
    last_log: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: BACKOFF_MIN,
            failures_since_log: 0,
            last_log: None,
        }
    }
}

impl Backoff {
    /// Records a failure; returns how long to pause.
    fn failed(&mut self, error: &io::Error) -> Duration {
        self.failures_since_log += 1;
        let now = Instant::now();
        if self.last_log.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            tracing::warn!(
                failures = self.failures_since_log,
                "accept failed ({error}); backing off up to {BACKOFF_MAX:?} while descriptors are exhausted"
            );
            self.failures_since_log = 0;
            self.last_log = Some(now);
        }
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        pause
    }

    fn succeeded(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_ceiling_and_resets() {
        let mut backoff = Backoff::default();
        let error = io::Error::from_raw_os_error(libc_codes::EMFILE);
        let pauses: Vec<_> = (0..10).map(|_| backoff.failed(&error)).collect();
        assert_eq!(pauses[0], BACKOFF_MIN);
        assert_eq!(pauses[1], BACKOFF_MIN * 2);
        assert_eq!(*pauses.last().expect("ten pauses"), BACKOFF_MAX);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        backoff.succeeded();
        assert_eq!(backoff.failed(&error), BACKOFF_MIN);
    }

    #[test]
    fn only_resource_errors_back_off() {
        assert!(is_resource_error(&io::Error::from_raw_os_error(24)));
        assert!(is_resource_error(&io::Error::from_raw_os_error(23)));
        assert!(!is_resource_error(&io::Error::from_raw_os_error(103)));
        assert!(!is_resource_error(&io::Error::other("x")));
    }
}
