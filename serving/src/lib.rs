//! How matchbench's servers (fakes and the matchmaker) take connections — one copy, so both
//! behave the same under overload:
//!
//! - [`bind`]: a listener with a [`LISTEN_BACKLOG`]-deep accept queue (the default 128 overflows
//!   under connection bursts and stalls clients for a second or two);
//! - [`accept`]: the accept loop. It backs off instead of spinning or dying when descriptors run
//!   out, refuses connections past a cap with an immediate `503` and `Retry-After` (a client
//!   learns "come back later" in microseconds instead of timing out), and can hand connections
//!   to someone else before HTTP sees them (fakes' lobby shards);
//! - [`lifecycle`]: start and stop — a [`Server`] over a listener, its background [`Tasks`]
//!   (stopped on one token, tracked, panics reported), the [`Handle`] and [`shutdown_signal`];
//! - [`watch`]: connection timeouts — a request head must arrive within a bound, an idle
//!   keep-alive connection is closed after another (slow-header clients cannot pin descriptors).

pub mod accept;
pub mod lifecycle;
pub mod watch;

use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use accept::{AcceptOptions, AcceptStats, Accepted, Dispatch, Dispatched, Refusal};
pub use lifecycle::{
    CancellationToken, Handle, Server, ShutdownError, TaskTracker, Tasks, shutdown_signal,
};
pub use watch::Timeouts;

/// Accept backlog: the default 128 overflows under connection bursts and stalls clients 1–2 s.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with [`LISTEN_BACKLOG`], `SO_REUSEADDR` and `TCP_NODELAY`.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The soft open-files limit of this process, when it can be read.
pub fn open_files_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| parse_open_files_limit(&text))
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A connection cap that leaves `reserve` descriptors of the open-files limit for everything
/// else (outgoing pools, files, the runtime); `fallback` when the limit cannot be read.
pub fn default_connection_cap(reserve: u64, fallback: usize) -> usize {
    open_files_limit()
        .map(|limit| usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX))
        .filter(|&cap| cap > 0)
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_open_files_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            20000                20000                files     \n";
        assert_eq!(parse_open_files_limit(text), Some(20_000));
        assert_eq!(parse_open_files_limit("nothing"), None);
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }
}
