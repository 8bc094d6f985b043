//! Passing an accepted TCP connection from the primary to a shard process: the socket's file
//! descriptor travels as `SCM_RIGHTS` ancillary data over a Unix stream socket, with the
//! connection id the primary gave it as the 8-byte message body.
//!
//! After a successful send the primary closes its copy; the kernel keeps the connection open
//! in the shard, so the client never notices the move. Received descriptors are marked
//! close-on-exec.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// Sends `stream` (and `id`) to the process at the other end of `link`. On error the stream
/// is given back so the caller can serve it itself.
pub async fn send(
    link: &UnixStream,
    id: u64,
    stream: std::net::TcpStream,
) -> Result<(), (io::Error, std::net::TcpStream)> {
    let body = id.to_le_bytes();
    let result = link
        .async_io(Interest::WRITABLE, || {
            let fds = [stream.as_fd()];
            let mut space = [0u8; rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            control.push(SendAncillaryMessage::ScmRights(&fds));
            let sent = rustix::net::sendmsg(
                link,
                &[IoSlice::new(&body)],
                &mut control,
                SendFlags::NOSIGNAL,
            )?;
            Ok(sent)
        })
        .await;
    match result {
        // A Unix stream socket takes an 8-byte message whole or not at all in practice; a
        // short write would desynchronise the link, so treat it as broken.
        Ok(n) if n == body.len() => Ok(()),
        Ok(n) => Err((
            io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short handoff write: {n}"),
            ),
            stream,
        )),
        Err(error) => Err((error, stream)),
    }
}

/// Receives the next connection; `Ok(None)` when the other end closed the link.
pub async fn recv(link: &UnixStream) -> io::Result<Option<(u64, std::net::TcpStream)>> {
    let mut body = [0u8; 8];
    let mut filled = 0;
    let mut fd: Option<OwnedFd> = None;
    while filled < body.len() {
        let n = link
            .async_io(Interest::READABLE, || {
                let mut space = [0u8; rustix::cmsg_space!(ScmRights(1))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let received = rustix::net::recvmsg(
                    link,
                    &mut [IoSliceMut::new(&mut body[filled..])],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )?;
                for message in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(fds) = message {
                        for received_fd in fds {
                            // One descriptor per message; extras (never sent) are closed.
                            if fd.is_none() {
                                fd = Some(received_fd);
                            }
                        }
                    }
                }
                Ok(received.bytes)
            })
            .await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "handoff link closed mid-message",
                ))
            };
        }
        filled += n;
    }
    let id = u64::from_le_bytes(body);
    let fd = fd.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("handoff {id} carried no descriptor"),
        )
    })?;
    Ok(Some((id, std::net::TcpStream::from(fd))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_connection_moves_and_keeps_its_bytes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        client.write_all(b"hello").await.expect("write");

        let (a, b) = UnixStream::pair().expect("pair");
        let server = server.into_std().expect("into std");
        send(&a, 42, server)
            .await
            .map_err(|(e, _)| e)
            .expect("send");
        let (id, moved) = recv(&b).await.expect("recv").expect("one connection");
        assert_eq!(id, 42);
        moved.set_nonblocking(true).expect("nonblocking");
        let mut moved = tokio::net::TcpStream::from_std(moved).expect("tokio stream");
        let mut got = [0u8; 5];
        moved.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"hello");
        moved.write_all(b"back").await.expect("write back");
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.expect("read back");
        assert_eq!(&back, b"back");

        drop(a);
        assert!(recv(&b).await.expect("eof").is_none());
    }
}
