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
//!   connection is no longer HTTP/1 and is not watched.
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
    deadline: Pin<Box<Sleep>>,
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
            deadline: Box::pin(tokio::time::sleep(timeouts.header)),
            reader: None,
        }
    }

    fn start(&mut self, phase: Phase, timeout: Duration) {
        self.phase = phase;
        self.line_ended = false;
        self.head_bytes = 0;
        self.deadline.as_mut().reset(Instant::now() + timeout);
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
            self.phase = Phase::Upgraded;
            return;
        }
        self.head_bytes += bytes.len();
        for &b in bytes {
            match b {
                b'\n' if self.line_ended => {
                    self.phase = Phase::InRequest;
                    return;
                }
                b'\n' => self.line_ended = true,
                b'\r' => {}
                _ => self.line_ended = false,
            }
        }
    }

    /// Bytes the server wrote (`first` is the first buffer of the write).
    pub(crate) fn wrote(&mut self, first: &[u8]) {
        match self.phase {
            Phase::InRequest => {
                let status = first
                    .strip_prefix(b"HTTP/1.1 ")
                    .or_else(|| first.strip_prefix(b"HTTP/1.0 "));
                match status {
                    Some(s) if s.starts_with(b"101") => self.phase = Phase::Upgraded,
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
            Phase::Head | Phase::Idle => self.deadline.as_mut().poll(cx).is_ready(),
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
}
