//! Connection timeouts that `axum::serve` does not have: hyper's `header_read_timeout` needs a
//! timer axum never installs, so a client that opens a connection and trickles a request head
//! (or sends nothing, or parks an idle keep-alive connection) would hold a descriptor forever.
//!
//! [`Watch`] follows an HTTP/1 connection from the bytes that cross it, without parsing HTTP:
//!
//! - **head**: from accept, a request head must be complete (an empty line) within
//!   [`Timeouts::header`];
//! - **in request**: once the head is in, no deadline — the handler may hold the request as long
//!   as it likes (the matchmaker's synchronous call waits for a match), and hyper keeps polling
//!   the socket only to notice the client leaving. Bodies are bounded by the servers themselves;
//! - **idle**: once the server writes a final response (not a `1xx`), the connection may stay
//!   quiet for [`Timeouts::idle`]; the first byte of the next request starts a new head deadline;
//! - **upgraded**: after `101 Switching Protocols` (lobby WebSockets) or an HTTP/2 preface the
//!   connection is no longer HTTP/1 and is not watched. The watch then drops its timer and the
//!   waker it kept: both point at the HTTP connection's task, which ends at the upgrade, and
//!   would otherwise keep that task's memory (~2.3 KB) alive as long as the WebSocket is open.
//!
//! A deadline that passes turns the next read into a `TimedOut` error: hyper then closes the
//! connection.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// How long a connection may take over each phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept (or the first byte after an idle spell) to the end of the request head.
    pub header: Duration,
    /// From a final response to the first byte of the next request.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Head,
    InRequest,
    Idle,
    Upgraded,
}

/// One connection's phase and deadline.
#[derive(Debug)]
pub(crate) struct Watch {
    timeouts: Timeouts,
    phase: Phase,
    /// The last byte of the head seen so far ended a line (`\r` aside).
    line_ended: bool,
    /// Bytes of the head seen so far (to recognise the HTTP/2 preface).
    head_bytes: usize,
    /// The current phase's deadline; `None` once upgraded.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Who last waited on a read: a read that waited without a deadline must be polled again
    /// once one starts, or the deadline would never be noticed.
    reader: Option<Waker>,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl Watch {
    pub(crate) fn new(timeouts: Timeouts) -> Self {
        Watch {
            timeouts,
            phase: Phase::Head,
            line_ended: false,
            head_bytes: 0,
            deadline: Some(Box::pin(tokio::time::sleep(timeouts.header))),
            reader: None,
        }
    }

    fn start(&mut self, phase: Phase, timeout: Duration) {
        self.phase = phase;
        self.line_ended = false;
        self.head_bytes = 0;
        let deadline = Instant::now() + timeout;
        match &mut self.deadline {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// The connection is no longer HTTP/1: no more deadlines, and nothing kept of the task
    /// that served it as HTTP (see the module docs).
    fn upgraded(&mut self) {
        self.phase = Phase::Upgraded;
        self.deadline = None;
        self.reader = None;
    }

    /// Bytes the server read.
    pub(crate) fn read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.phase == Phase::Idle {
            self.start(Phase::Head, self.timeouts.header);
        }
        if self.phase != Phase::Head {
            return;
        }
        if self.head_bytes == 0 && bytes.starts_with(H2_PREFACE) {
            self.upgraded();
            return;
        }
        self.head_bytes += bytes.len();
        // Line by line (`memchr` finds the ends): a head carries a ~1 KB bearer token, and a
        // byte-at-a-time scan of every head was 1% of a server's CPU.
        let only_cr = |line: &[u8]| line.iter().all(|&b| b == b'\r');
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', bytes) {
            // The first line of this read continues the one the last read left open.
            let continued = start == 0 && !self.line_ended;
            if !continued && only_cr(&bytes[start..end]) {
                self.phase = Phase::InRequest;
                return;
            }
            start = end + 1;
        }
        self.line_ended = (start > 0 || self.line_ended) && only_cr(&bytes[start..]);
    }

    /// Bytes the server wrote (`first` is the first buffer of the write).
    pub(crate) fn wrote(&mut self, first: &[u8]) {
        match self.phase {
            Phase::InRequest => {
                let status = first
                    .strip_prefix(b"HTTP/1.1 ")
                    .or_else(|| first.strip_prefix(b"HTTP/1.0 "));
                match status {
                    Some(s) if s.starts_with(b"101") => self.upgraded(),
                    // `100 Continue` and kin: the request goes on.
                    Some(s) if s.starts_with(b"1") => {}
                    _ => {
                        self.start(Phase::Idle, self.timeouts.idle);
                        if let Some(reader) = self.reader.take() {
                            reader.wake();
                        }
                    }
                }
            }
            // The rest of a response: the connection is not idle yet.
            Phase::Idle => self.start(Phase::Idle, self.timeouts.idle),
            Phase::Head | Phase::Upgraded => {}
        }
    }

    /// Whether the current deadline has passed (registering a wake-up for it otherwise).
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        match self.phase {
            Phase::Head | Phase::Idle => self
                .deadline
                .as_mut()
                .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready()),
            Phase::InRequest => {
                self.reader = Some(cx.waker().clone());
                false
            }
            Phase::Upgraded => false,
        }
    }

    pub(crate) fn error(&self) -> io::Error {
        let what = if self.phase == Phase::Idle {
            "idle connection timed out"
        } else {
            "request head timed out"
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn phases_follow_the_bytes() {
        let mut watch = Watch::new(Timeouts::default());
        watch.read(b"GET / HTTP/1.1\r\nHost: x\r\n");
        assert_eq!(watch.phase, Phase::Head);
        watch.read(b"\r\nbody\r\n\r\n");
        assert_eq!(watch.phase, Phase::InRequest);
        watch.wrote(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(watch.phase, Phase::InRequest);
        watch.wrote(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(watch.phase, Phase::Idle);
        watch.read(b"G");
        assert_eq!(watch.phase, Phase::Head);
        watch.read(b"ET / HTTP/1.1\n\n");
        assert_eq!(
            watch.phase,
            Phase::InRequest,
            "bare newlines end a head too"
        );
        watch.wrote(b"HTTP/1.1 101 Switching Protocols\r\n");
        assert_eq!(watch.phase, Phase::Upgraded);

        let mut h2 = Watch::new(Timeouts::default());
        h2.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(h2.phase, Phase::Upgraded);
    }

    /// Stands for a task: the wakers that point at it keep it alive.
    struct Task;

    impl std::task::Wake for Task {
        fn wake(self: Arc<Self>) {}
    }

    #[tokio::test]
    async fn an_upgraded_connection_keeps_nothing_of_its_http_task() {
        let task = Arc::new(Task);
        let waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&waker);
        let mut watch = fresh();
        assert!(!watch.expired(&mut cx), "waits on the head's deadline");
        watch.read(b"GET /lobby/ HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
        assert!(!watch.expired(&mut cx), "waits for the handler");
        assert!(
            Arc::strong_count(&task) > 2,
            "the timer and the watch hold it"
        );
        watch.wrote(b"HTTP/1.1 101 Switching Protocols\r\n");
        assert_eq!(watch.phase, Phase::Upgraded);
        assert!(!watch.expired(&mut cx));
        assert_eq!(
            Arc::strong_count(&task),
            2,
            "only this test's own handles remain"
        );
    }

    /// The byte-at-a-time rule `read` implements: the head ends at the first line that is
    /// empty but for `\r`. Returns how many bytes it takes, if it ends.
    fn head_end(bytes: &[u8]) -> Option<usize> {
        let mut line_ended = false;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' if line_ended => return Some(i + 1),
                b'\n' => line_ended = true,
                b'\r' => {}
                _ => line_ended = false,
            }
        }
        None
    }

    fn fresh() -> Watch {
        Watch::new(Timeouts {
            header: Duration::from_secs(5),
            idle: Duration::from_secs(5),
        })
    }

    const HEADS: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /m HTTP/1.1\r\nAuthorization: Bearer x.y.z\r\ncontent-length: 2\r\n\r\n{}",
        b"GET / HTTP/1.1\nHost: a\n\nbody",
        b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: \r\r\n\r\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
    ];

    #[tokio::test]
    async fn a_head_ends_at_its_empty_line_however_the_reads_split_it() {
        for head in HEADS {
            let expected = head_end(head);
            for split in 0..=head.len() {
                for second in split..=head.len() {
                    let mut watch = fresh();
                    let mut ended_after = None;
                    for (from, to) in [(0, split), (split, second), (second, head.len())] {
                        watch.read(&head[from..to]);
                        if ended_after.is_none() && watch.phase == Phase::InRequest {
                            ended_after = Some(to);
                        }
                    }
                    let ended = watch.phase == Phase::InRequest;
                    assert_eq!(
                        ended,
                        expected.is_some(),
                        "{:?} split at {split} and {second}",
                        String::from_utf8_lossy(head)
                    );
                    if let (Some(end), Some(after)) = (expected, ended_after) {
                        assert!(
                            after >= end,
                            "ended before its empty line: {:?} split at {split} and {second}",
                            String::from_utf8_lossy(head)
                        );
                    }
                }
            }
        }
    }
}
