//! The accept loop: takes connections off the listening socket, survives running out of file
//! descriptors, refuses connections past a cap with an immediate `503`, and hands each
//! connection to the HTTP server — or to a [`Dispatch`] that may take it elsewhere (fakes hands
//! lobby upgrades to its shard processes).
//!
//! Why our own loop rather than `axum::serve`'s: under overload `accept` fails with `EMFILE`
//! ("too many open files"); axum logs every failure and sleeps a fixed second, which is both a
//! log storm and a needless stall once descriptors free up. Here the loop backs off
//! exponentially from a few milliseconds to a second, logs once per [`LOG_EVERY`] with the
//! number of failures since the last line, and counts them. Errors that concern one connection
//! only (reset or aborted before we took it) are skipped at once.
//!
//! The cap keeps the process below its descriptor limit: past `max_connections` open HTTP
//! connections, a new one gets the server's [`Refusal`] (`503`, `Retry-After`, the server's
//! own error body) and is closed, so clients are told to back off instead of timing out and
//! the process keeps descriptors for its own outgoing calls.
//!
//! The loop never waits on a client: dispatch (reading a request head without consuming it)
//! and refusals run in a task per connection, so one slow client cannot hold up the others.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::watch::{Timeouts, Watch};

/// Shortest pause after a resource error.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause after repeated resource errors.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this interval about accept failures (and one about refusals).
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Connections accepted but not yet taken by the HTTP server; past this the loop waits, and
/// the kernel's backlog absorbs the burst.
const QUEUE: usize = 1024;
/// How long writing a refusal may take before the connection is just closed.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Counters of the accept loop, for a server's stats and metrics.
#[derive(Debug, Default)]
pub struct AcceptStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// `accept` failures for lack of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`); each made the loop pause.
    pub resource_errors: AtomicU64,
    /// Connections refused with the 503 because the cap was reached.
    pub refused_over_cap: AtomicU64,
    /// Connections a [`Dispatch`] took (e.g. handed to another process).
    pub handed_off: AtomicU64,
    /// Connections open now: being served over HTTP, or still being looked at by a dispatch.
    pub open: AtomicUsize,
    /// HTTP connections closed because a request head or the next request did not come in time.
    pub timed_out: AtomicU64,
}

impl AcceptStats {
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    pub fn resource_errors(&self) -> u64 {
        self.resource_errors.load(Ordering::Relaxed)
    }
    pub fn refused_over_cap(&self) -> u64 {
        self.refused_over_cap.load(Ordering::Relaxed)
    }
    pub fn handed_off(&self) -> u64 {
        self.handed_off.load(Ordering::Relaxed)
    }
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// What a connection past the cap is told: `503 Service Unavailable` with `Retry-After` and
/// the server's own error body.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub retry_after_secs: u32,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Refusal {
    /// The whole HTTP/1.1 response.
    fn response(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\ncontent-length: {}\r\nretry-after: {}\r\nconnection: close\r\n\r\n",
            self.content_type,
            self.body.len(),
            self.retry_after_secs
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Where a freshly accepted connection goes besides the HTTP server.
pub trait Dispatch: Send + Sync + 'static {
    /// Takes the connection (returns `None`) or gives it back for the HTTP server.
    fn dispatch(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) -> Dispatched;
}

/// What [`Dispatch::dispatch`] returns: the connection back for HTTP, or `None` once taken.
pub type Dispatched =
    Pin<Box<dyn std::future::Future<Output = Option<(TcpStream, SocketAddr)>> + Send>>;

/// How the loop treats connections.
#[derive(Clone)]
pub struct AcceptOptions {
    /// Open HTTP connections past which new ones are refused.
    pub max_connections: usize,
    pub refusal: Refusal,
    pub dispatch: Option<Arc<dyn Dispatch>>,
}

/// An open HTTP connection; closing it frees its place under the cap.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    stats: Arc<AcceptStats>,
    watch: Watch,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.watch.read(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.watch.expired(cx) => {
                self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Err(self.watch.error()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.watch.wrote(&buf[..n]);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            self.watch.wrote(&first[..n.min(first.len())]);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// An `axum::serve` listener fed by the accept loop: what axum accepts has already been
/// accepted, counted under the cap and kept for HTTP.
pub struct Accepted {
    rx: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for Accepted {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop ended: nothing more will come; graceful shutdown ends serving.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Starts the accept loop on `listener` with the default [`Timeouts`] and returns the listener
/// axum should serve. The loop ends when the returned [`Accepted`] is dropped.
pub fn start(
    listener: TcpListener,
    options: AcceptOptions,
    stats: Arc<AcceptStats>,
) -> io::Result<Accepted> {
    start_with(listener, options, stats, Timeouts::default())
}

/// [`start`] with the given connection [`Timeouts`] (see [`crate::watch`]).
pub fn start_with(
    listener: TcpListener,
    options: AcceptOptions,
    stats: Arc<AcceptStats>,
    timeouts: Timeouts,
) -> io::Result<Accepted> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let refusal: Arc<[u8]> = options.refusal.response().into();
    let loop_state = Loop {
        tx,
        stats,
        max_connections: options.max_connections.max(1),
        refusal,
        refusals_logged: Arc::default(),
        timeouts,
    };
    tokio::spawn(loop_state.run(listener, options.dispatch));
    Ok(Accepted { rx, local })
}

struct Loop {
    tx: mpsc::Sender<(Conn, SocketAddr)>,
    stats: Arc<AcceptStats>,
    max_connections: usize,
    refusal: Arc<[u8]>,
    refusals_logged: Arc<gate::LogGate>,
    timeouts: Timeouts,
}

impl Loop {
    async fn run(self, listener: TcpListener, dispatch: Option<Arc<dyn Dispatch>>) {
        let mut backoff = Backoff::default();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = self.tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(conn) => conn,
                Err(error) if is_resource_error(&error) => {
                    self.stats.resource_errors.fetch_add(1, Ordering::Relaxed);
                    let pause = backoff.failed(&error);
                    tokio::time::sleep(pause).await;
                    continue;
                }
                // Reset or aborted before we took it, or similar: that connection only.
                Err(_) => continue,
            };
            backoff.succeeded();
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            // Every accepted connection holds a descriptor from here on, including one still
            // being looked at by a dispatch: the cap counts them all.
            if !self.take_place() {
                tokio::spawn(refuse(stream, Arc::clone(&self.refusal)));
                continue;
            }
            match &dispatch {
                None => {
                    if !self.admit(stream, peer).await {
                        return;
                    }
                }
                Some(dispatch) => {
                    let dispatch = Arc::clone(dispatch);
                    let admit = self.handle();
                    tokio::spawn(async move {
                        match dispatch.dispatch(stream, peer).await {
                            Some((stream, peer)) => {
                                admit.admit(stream, peer).await;
                            }
                            None => {
                                // Handed to another process: its place here is free again.
                                admit.stats.open.fetch_sub(1, Ordering::Relaxed);
                                admit.stats.handed_off.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            }
        }
    }

    /// A cheap copy for per-connection tasks.
    fn handle(&self) -> Loop {
        Loop {
            tx: self.tx.clone(),
            stats: Arc::clone(&self.stats),
            max_connections: self.max_connections,
            refusal: Arc::clone(&self.refusal),
            refusals_logged: Arc::clone(&self.refusals_logged),
            timeouts: self.timeouts,
        }
    }

    /// Counts a new connection under the cap; `false` (and counted as refused) past it.
    fn take_place(&self) -> bool {
        let open = self.stats.open.fetch_add(1, Ordering::Relaxed);
        if open < self.max_connections {
            return true;
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        self.stats.refused_over_cap.fetch_add(1, Ordering::Relaxed);
        if self.refusals_logged.open() {
            tracing::warn!(
                refused = self.stats.refused_over_cap(),
                "{} connections open, the cap: refusing new ones with 503 + Retry-After",
                self.max_connections
            );
        }
        false
    }

    /// Queues a connection that already holds its place under the cap for HTTP (the
    /// [`Conn`] gives the place back when it closes); `false` once the HTTP side is gone.
    async fn admit(&self, stream: TcpStream, peer: SocketAddr) -> bool {
        let conn = Conn {
            stream,
            stats: Arc::clone(&self.stats),
            watch: Watch::new(self.timeouts),
        };
        self.tx.send((conn, peer)).await.is_ok()
    }
}

/// Writes the refusal and closes.
async fn refuse(mut stream: TcpStream, response: Arc<[u8]>) {
    let write = async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, write).await;
}

/// Failures that mean "no descriptors or memory right now": wait, do not spin.
pub fn is_resource_error(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == errno::EMFILE
            || code == errno::ENFILE
            || code == errno::ENOBUFS
            || code == errno::ENOMEM
    )
}

/// The errno values we react to (Linux numbering).
mod errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// A once-per-[`LOG_EVERY`] gate shared by tasks, without a lock.
mod gate {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    #[derive(Debug, Default)]
    pub struct LogGate {
        last_ms: AtomicU64,
    }

    impl LogGate {
        /// `true` for the first caller in each interval.
        pub fn open(&self) -> bool {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let last = self.last_ms.load(Ordering::Relaxed);
            let every = u64::try_from(super::LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
            (last == 0 || now.saturating_sub(last) >= every)
                && self
                    .last_ms
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
        }
    }
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
        if self
            .last_log
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
        {
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
    use tokio::io::AsyncReadExt;

    #[test]
    fn backoff_doubles_to_a_ceiling_and_resets() {
        let mut backoff = Backoff::default();
        let error = io::Error::from_raw_os_error(errno::EMFILE);
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

    #[test]
    fn the_log_gate_opens_once_per_interval() {
        let gate = gate::LogGate::default();
        assert!(gate.open());
        assert!(!gate.open());
    }

    fn refusal() -> Refusal {
        Refusal {
            retry_after_secs: 2,
            content_type: "application/json",
            body: Bytes::from_static(br#"{"errorCode":20000,"errorMessage":"busy"}"#),
        }
    }

    #[tokio::test]
    async fn past_the_cap_a_connection_gets_503_with_retry_after_then_the_next_fits() {
        let listener = crate::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stats = Arc::new(AcceptStats::default());
        let options = AcceptOptions {
            max_connections: 1,
            refusal: refusal(),
            dispatch: None,
        };
        let mut accepted = start(listener, options, Arc::clone(&stats)).expect("start");
        use axum::serve::Listener;

        let _first = TcpStream::connect(addr).await.expect("first connects");
        let (held, _) = accepted.accept().await;
        assert_eq!(stats.open(), 1);

        let mut second = TcpStream::connect(addr).await.expect("second connects");
        let mut answer = String::new();
        second
            .read_to_string(&mut answer)
            .await
            .expect("read the refusal");
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("retry-after: 2\r\n"), "{answer}");
        assert!(answer.ends_with(r#"{"errorCode":20000,"errorMessage":"busy"}"#));
        assert_eq!(stats.refused_over_cap(), 1);

        // Closing the held connection frees its place.
        drop(held);
        assert_eq!(stats.open(), 0);
        let _third = TcpStream::connect(addr).await.expect("third connects");
        let (_conn, _) = accepted.accept().await;
        assert_eq!(stats.open(), 1);
        assert_eq!(stats.accepted(), 3);
    }

    /// Serves a tiny app (`/slow` answers after `hold`) through the loop with `timeouts`.
    async fn serve_app(timeouts: Timeouts, hold: Duration) -> (SocketAddr, Arc<AcceptStats>) {
        let listener = crate::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stats = Arc::new(AcceptStats::default());
        let options = AcceptOptions {
            max_connections: 16,
            refusal: refusal(),
            dispatch: None,
        };
        let accepted = start_with(listener, options, Arc::clone(&stats), timeouts).expect("start");
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route(
                "/slow",
                axum::routing::get(move || async move {
                    tokio::time::sleep(hold).await;
                    "slow"
                }),
            );
        tokio::spawn(async move { axum::serve(accepted, app).await });
        (addr, stats)
    }

    /// Reads until the server closes; `None` if it did not within `within`.
    async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut out = Vec::new();
        let read = async {
            let mut buf = [0_u8; 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(within, read).await.ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    const WITHIN: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn slow_heads_and_idle_connections_are_closed_held_requests_are_not() {
        let timeouts = Timeouts {
            header: Duration::from_millis(200),
            idle: Duration::from_millis(300),
        };
        let (addr, stats) = serve_app(timeouts, Duration::from_millis(800)).await;

        // Nothing at all, then half a head: both closed without an answer.
        let mut silent = TcpStream::connect(addr).await.expect("connects");
        let answer = read_until_closed(&mut silent, WITHIN).await;
        assert_eq!(answer.as_deref(), Some(""), "closed, unanswered");
        let mut trickle = TcpStream::connect(addr).await.expect("connects");
        trickle
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let answer = read_until_closed(&mut trickle, WITHIN).await;
        assert_eq!(answer.as_deref(), Some(""), "closed, unanswered");

        // A request held longer than both timeouts is answered; then the idle connection closes.
        let started = Instant::now();
        let mut held = TcpStream::connect(addr).await.expect("connects");
        held.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let answer = read_until_closed(&mut held, WITHIN).await.expect("closed");
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(answer.ends_with("slow"), "{answer}");
        assert!(started.elapsed() >= Duration::from_millis(800));
        assert_eq!(stats.timed_out(), 3, "two slow heads, one idle connection");

        // A keep-alive connection serves request after request while they come in time.
        let mut busy = TcpStream::connect(addr).await.expect("connects");
        for _ in 0..3 {
            busy.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            let mut buf = [0_u8; 1024];
            let n = busy.read(&mut buf).await.expect("answer");
            assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
        }
    }
}
