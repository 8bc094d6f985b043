//! The byte stream under a lobby WebSocket and the client side of its HTTP upgrade, kept small
//! because a load test holds tens of thousands of idle lobby connections in one process.
//!
//! - [`LobbyStream`] is a plain TCP stream or a *boxed* TLS one. tokio-tungstenite's
//!   `MaybeTlsStream` holds the rustls connection inline, so every plain `ws://` socket paid
//!   for the TLS state it never uses (about 1 KB).
//! - [`upgrade`] sends the upgrade request and checks the `101` answer (RFC 6455 §4.1) itself.
//!   tungstenite's own client handshake reads the answer into a 4 KiB buffer and then keeps
//!   that very allocation as the connection's read buffer for its whole life, whatever
//!   `read_buffer_size` says. Here the answer is read through a stack buffer and only the
//!   bytes after it (typically the `connectNotif`) are handed to tungstenite, which then
//!   allocates the configured read buffer. Request building, the answer's parsing and the
//!   accept key stay tungstenite's.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::error::{Error, ProtocolError, SubProtocolError, TlsError};
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response, generate_request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse as _;
use tokio_tungstenite::tungstenite::http::{HeaderMap, StatusCode};

/// Largest upgrade answer head read before giving up (tungstenite allows the same order).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A lobby connection's transport: plain TCP, or TLS boxed so a plain socket does not carry
/// the TLS state inline.
pub(crate) enum LobbyStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl LobbyStream {
    /// Wraps `tcp` in TLS for `host` with `config`.
    pub(crate) async fn tls(
        tcp: TcpStream,
        host: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Self, Error> {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| Error::Tls(TlsError::InvalidDnsName))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(Error::Io)?;
        Ok(LobbyStream::Tls(Box::new(stream)))
    }
}

/// The client configuration for `wss://` when none was given: the public web PKI roots.
pub(crate) fn web_pki() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    }))
}

impl AsyncRead for LobbyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LobbyStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            LobbyStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for LobbyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            LobbyStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            LobbyStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LobbyStream::Plain(s) => Pin::new(s).poll_flush(cx),
            LobbyStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LobbyStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            LobbyStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Sends the upgrade `request` and reads the answer's head. Returns the bytes the server sent
/// after the head (frames that arrived with the `101`), to be handed to the WebSocket. Any other
/// status is an [`Error::Http`] carrying the response, with what followed its head as the body.
pub(crate) async fn upgrade(stream: &mut LobbyStream, request: Request) -> Result<Vec<u8>, Error> {
    let (head, key) = generate_request(request)?;
    stream.write_all(&head).await?;
    stream.flush().await?;
    drop(head);

    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    let (size, response) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(Error::Protocol(ProtocolError::HandshakeIncomplete));
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(parsed) = Response::try_parse(&received)? {
            break parsed;
        }
        if received.len() > MAX_HEAD_BYTES {
            return Err(Error::Protocol(ProtocolError::HandshakeIncomplete));
        }
    };
    // An exact-size copy: tungstenite grows it to the configured read buffer.
    let tail = received[size..].to_vec();
    drop(received);
    verify(response, &key, tail)
}

/// The checks tungstenite's client handshake makes on the answer (RFC 6455 §4.1, points 1–6;
/// no extensions or subprotocols are requested, so none may be accepted).
fn verify(mut response: Response, key: &str, tail: Vec<u8>) -> Result<Vec<u8>, Error> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        *response.body_mut() = Some(tail);
        return Err(Error::Http(Box::new(response)));
    }
    let headers = response.headers();
    if !header_is(headers, "upgrade", "websocket") {
        return Err(Error::Protocol(
            ProtocolError::MissingUpgradeWebSocketHeader,
        ));
    }
    if !header_is(headers, "connection", "upgrade") {
        return Err(Error::Protocol(
            ProtocolError::MissingConnectionUpgradeHeader,
        ));
    }
    let accept = derive_accept_key(key.as_bytes());
    if headers
        .get("sec-websocket-accept")
        .is_none_or(|value| value.as_bytes() != accept.as_bytes())
    {
        return Err(Error::Protocol(
            ProtocolError::SecWebSocketAcceptKeyMismatch,
        ));
    }
    if headers.contains_key("sec-websocket-protocol") {
        return Err(Error::Protocol(
            ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::ServerSentSubProtocolNoneRequested,
            ),
        ));
    }
    Ok(tail)
}

fn header_is(headers: &HeaderMap, name: &str, expected: &str) -> bool {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case(expected))
}
