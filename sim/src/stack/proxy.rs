//! A TCP proxy on one link of the stack (matchmaker → Redis, matchmaker → fakes) that a chaos
//! step can cut, as a network partition would.
//!
//! - **pass**: bytes flow both ways.
//! - **blackhole**: nothing flows, but nothing is closed either — connections stay open and
//!   new ones are accepted and then hang, the way a partitioned peer looks to a TCP client
//!   until its own timeouts fire. When the link heals, what was held back flows again (as TCP
//!   retransmission would deliver it).
//! - **reset**: every open connection is closed at once and new ones are closed on accept, the
//!   way a peer that restarted (or a firewall sending RSTs) looks.
//!
//! The proxy runs inside the parent process on a loopback port; the stack points the
//! children's configuration at it instead of at the real server.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the link does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    Pass,
    Blackhole,
    Reset,
}

/// A running proxy; dropping it closes the listener and every connection through it.
#[derive(Debug)]
pub struct LinkProxy {
    name: String,
    addr: SocketAddr,
    mode: watch::Sender<LinkMode>,
    stop: CancellationToken,
}

impl LinkProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(name: &str, upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(LinkMode::Pass);
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(
            listener,
            upstream,
            mode.subscribe(),
            stop.clone(),
        ));
        Ok(Self {
            name: name.to_owned(),
            addr,
            mode,
            stop,
        })
    }

    /// The link's name (`matchmaker-redis`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where clients connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn mode(&self) -> LinkMode {
        *self.mode.borrow()
    }

    /// Cuts (`Blackhole`, `Reset`) or heals (`Pass`) the link.
    pub fn set(&self, mode: LinkMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<LinkMode>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((client, _)) = accepted else {
            // Out of descriptors or similar: back off briefly rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        if *mode.borrow() == LinkMode::Reset {
            drop(client);
            continue;
        }
        let _ = client.set_nodelay(true);
        tokio::spawn(relay(client, upstream, mode.clone(), stop.clone()));
    }
}

/// One connection: connect upstream (once the link lets bytes through), then copy both ways
/// while the mode allows, until either side closes, the link resets, or the proxy stops.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    mode: watch::Receiver<LinkMode>,
    stop: CancellationToken,
) {
    let mut watch_reset = mode.clone();
    let reset = async move {
        let _ = watch_reset.wait_for(|m| *m == LinkMode::Reset).await;
    };
    let work = async {
        if !flowing(&mut mode.clone()).await {
            return;
        }
        let Ok(server) = TcpStream::connect(upstream).await else {
            return;
        };
        let _ = server.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::select! {
            () = pump(client_read, server_write, mode.clone()) => {}
            () = pump(server_read, client_write, mode.clone()) => {}
        }
    };
    tokio::select! {
        () = stop.cancelled() => {}
        () = reset => {}
        () = work => {}
    }
}

/// Waits until the link passes bytes; `false` when it resets (or the proxy is gone) instead.
async fn flowing(mode: &mut watch::Receiver<LinkMode>) -> bool {
    match mode.wait_for(|m| *m != LinkMode::Blackhole).await {
        Ok(m) => *m == LinkMode::Pass,
        Err(_) => false,
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<LinkMode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !flowing(&mut mode).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Read while the link was up, held back if it went down meanwhile.
        if !flowing(&mut mode).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An upstream that echoes what it reads.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(text).await?;
        let mut back = vec![0u8; text.len()];
        stream.read_exact(&mut back).await?;
        Ok(back)
    }

    #[tokio::test]
    async fn passes_holds_and_resets() {
        let proxy = LinkProxy::start("test", echo_server().await).await.unwrap();
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"hello").await.unwrap(), b"hello");

        // Blackhole: nothing comes back while cut, everything once healed.
        proxy.set(LinkMode::Blackhole);
        stream.write_all(b"held").await.unwrap();
        let mut back = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(200), stream.read_exact(&mut back));
        assert!(early.await.is_err(), "bytes crossed a blackholed link");
        proxy.set(LinkMode::Pass);
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
            .await
            .expect("healed link delivers what was held")
            .unwrap();
        assert_eq!(&back, b"held");

        // Reset: the open connection is closed, new ones too, until healed.
        proxy.set(LinkMode::Reset);
        let mut one = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut one))
            .await
            .expect("reset closes the connection");
        assert!(matches!(read, Ok(0) | Err(_)));
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(5), fresh.read(&mut one))
            .await
            .expect("a new connection is closed on accept");
        assert!(matches!(read, Ok(0) | Err(_)));
        proxy.set(LinkMode::Pass);
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut fresh, b"again").await.unwrap(), b"again");
    }
}
