//! The lobby: one player's WebSocket ([`LobbyConnection`]) and the free-form notification REST
//! calls on [`AbClient`].
//!
//! The connection is built for load tests with tens of thousands of players per process:
//! - small buffers by default (1 KiB read buffer, no write buffering) and a small stream (TLS
//!   boxed, the upgrade done in [`upgrade`](super::upgrade) so tungstenite keeps no 4 KiB
//!   handshake buffer): about 3 KB of user memory per idle connection instead of ~137 KB with
//!   tungstenite's defaults;
//! - an optional local source address, so players can spread over loopback addresses
//!   (`127.0.0.x`) when one source address runs out of ephemeral ports;
//! - TLS settings ([`LobbyTls`]) built once and shared, e.g. to trust the emulator's self-signed
//!   CA.
//!
//! Wire details follow contract section 3: `GET /lobby/` upgraded with
//! `Authorization: Bearer <token>`, a `connectNotif` as the first frame, `key: value` text frames
//! (optionally in the `LbS`…`LbE` envelope), and protocol-level pings answered with pongs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use url::{Host, Url};

use super::upgrade::{self, LobbyStream};
use super::{AbClient, Auth, ClientError, Result, bearer, endpoint, send_empty};
use crate::frame::{Frame, strip_envelope};
use crate::models::lobby::{
    AdminFreeFormNotificationRequest, BulkUsersFreeFormNotificationRequest, ConnectNotif,
    FreeFormNotificationRequest, MessageNotif,
};

/// Read buffer per connection; lobby frames are a few hundred bytes.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 1024;
/// Largest lobby message accepted; free-form payloads are short, and a cap keeps a hostile
/// server from making one player allocate tungstenite's default 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 20;
/// Bound on TCP connect + TLS + upgrade + the `connectNotif`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`LobbyConnection::close`] waits for the server's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Header asking the lobby to resume a previous session (Go/Unity/Unreal SDKs).
const LOBBY_SESSION_HEADER: &str = "x-ab-lobbysessionid";

/// Options of [`LobbyConnection::connect`]. `Default` gives the small-buffer profile.
#[derive(Debug, Clone)]
pub struct LobbyOptions {
    /// Source IP to bind the TCP socket to (port chosen by the OS). Must be of the same family
    /// as the server address.
    pub local_addr: Option<IpAddr>,
    /// tungstenite read buffer (eagerly allocated per connection).
    pub read_buffer_size: usize,
    /// tungstenite write buffer; 0 writes every frame straight to the socket.
    pub write_buffer_size: usize,
    /// Largest incoming message.
    pub max_message_size: usize,
    /// TLS for `wss://` bases; `None` trusts the public web PKI roots.
    pub tls: Option<LobbyTls>,
    /// Bound on connecting through the first frame.
    pub connect_timeout: Duration,
    /// Sent as `X-Ab-LobbySessionID` to resume a previous lobby session.
    pub lobby_session_id: Option<String>,
}

impl Default for LobbyOptions {
    fn default() -> Self {
        Self {
            local_addr: None,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            write_buffer_size: 0,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            lobby_session_id: None,
        }
    }
}

impl LobbyOptions {
    fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }
}

/// A TLS client configuration for `wss://` lobbies, built once and shared by every connection
/// (cloning is an `Arc` bump).
#[derive(Clone)]
pub struct LobbyTls {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for LobbyTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LobbyTls").finish_non_exhaustive()
    }
}

impl LobbyTls {
    /// Trusts exactly the CA certificates in `pem` (e.g. the emulator's self-signed CA).
    pub fn with_root_pem(pem: &[u8]) -> Result<Self> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;

        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|err| ClientError::Tls(format!("read pem: {err}")))?;
            roots
                .add(cert)
                .map_err(|err| ClientError::Tls(format!("add root certificate: {err}")))?;
        }
        if roots.is_empty() {
            return Err(ClientError::Tls("no certificate in pem".into()));
        }
        let config = builder()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// Accepts any server certificate. For a local emulator with a throwaway certificate only:
    /// it removes all protection against an active attacker.
    pub fn insecure() -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(insecure::AcceptAnyCert(provider));
        let config = builder()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// A rustls builder pinned to the `ring` provider, so it works whether or not the process
/// installed a default provider.
fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| ClientError::Tls(err.to_string()))
}

mod insecure {
    use std::sync::Arc;

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    /// Skips chain and name checks but still verifies handshake signatures, so the session is
    /// at least bound to the presented key.
    #[derive(Debug)]
    pub(super) struct AcceptAnyCert(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCert {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// The close frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// e.g. 1000 normal, 4020 token revoked, 4041 multiple sessions (contract 3.3).
    pub code: u16,
    pub reason: String,
}

/// One player's lobby WebSocket.
pub struct LobbyConnection {
    socket: Socket,
    connect_notif: ConnectNotif,
    local_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for LobbyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LobbyConnection")
            .field("lobby_session_id", &self.connect_notif.lobby_session_id)
            .field("local_addr", &self.local_addr)
            .field("closed", &self.socket.closed)
            .finish_non_exhaustive()
    }
}

impl LobbyConnection {
    /// Connects to `{base_url}/lobby/` (`http`→`ws`, `https`→`wss`) with the bearer token and
    /// reads the `connectNotif`. A rejected upgrade is a [`ClientError::Status`].
    pub async fn connect(
        base_url: &Url,
        access_token: &str,
        options: &LobbyOptions,
    ) -> Result<Self> {
        let url = lobby_url(base_url)?;
        let mut request = url.as_str().into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, bearer(access_token)?);
        if let Some(session_id) = &options.lobby_session_id {
            let value = HeaderValue::from_str(session_id).map_err(|_| {
                ClientError::InvalidInput("lobby session id is not a valid header value".into())
            })?;
            headers.insert(HeaderName::from_static(LOBBY_SESSION_HEADER), value);
        }

        let connect = async {
            let tcp = open_tcp(&url, options.local_addr).await?;
            let local_addr = tcp.local_addr().ok();
            let mut stream = match url.scheme() {
                "wss" => {
                    let config = match &options.tls {
                        Some(tls) => Arc::clone(&tls.config),
                        None => upgrade::web_pki(),
                    };
                    let host = match url.host() {
                        Some(Host::Domain(domain)) => domain.to_owned(),
                        Some(Host::Ipv4(ip)) => ip.to_string(),
                        Some(Host::Ipv6(ip)) => ip.to_string(),
                        None => String::new(),
                    };
                    LobbyStream::tls(tcp, &host, config).await?
                }
                _ => LobbyStream::Plain(tcp),
            };
            let tail = upgrade::upgrade(&mut stream, request)
                .await
                .map_err(handshake_error)?;
            let ws = WebSocketStream::from_partially_read(
                stream,
                tail,
                Role::Client,
                Some(options.websocket_config()),
            )
            .await;
            let mut socket = Socket { ws, closed: None };
            let first = match socket.next_frame().await? {
                Some(frame) => frame,
                None => return Err(socket.closed_error()),
            };
            let connect_notif = ConnectNotif::from_frame(&first).ok_or_else(|| {
                ClientError::Protocol(format!(
                    "first lobby frame must be a connectNotif with a lobbySessionID, got {}",
                    first.message_type()
                ))
            })?;
            Ok(Self {
                socket,
                connect_notif,
                local_addr,
            })
        };
        tokio::time::timeout(options.connect_timeout, connect)
            .await
            .map_err(|_| ClientError::Timeout("lobby connect"))?
    }

    /// The `connectNotif` the server sent first.
    pub fn connect_notif(&self) -> &ConnectNotif {
        &self.connect_notif
    }

    /// The local address of the TCP socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The server's close frame, once one arrived.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.socket.closed.as_ref()
    }

    /// The next text frame; `None` once the connection closed (see
    /// [`close_info`](Self::close_info)). Pings are answered, binary and pong frames skipped. A
    /// text frame that does not parse is a [`ClientError::Frame`] and the connection stays
    /// usable.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>> {
        self.socket.next_frame().await
    }

    /// Waits for a `messageNotif` matching `predicate`, skipping every other frame (including
    /// unparsable ones). Bound it with `tokio::time::timeout`. A closed connection is
    /// [`ClientError::Closed`].
    pub async fn wait_message(
        &mut self,
        mut predicate: impl FnMut(&MessageNotif) -> bool,
    ) -> Result<MessageNotif> {
        loop {
            let frame = match self.socket.next_frame().await {
                Ok(Some(frame)) => frame,
                Ok(None) => return Err(self.socket.closed_error()),
                Err(ClientError::Frame(err)) => {
                    tracing::debug!(%err, "skipping unparsable lobby frame");
                    continue;
                }
                Err(err) => return Err(err),
            };
            if let Some(message) = MessageNotif::from_frame(&frame) {
                if predicate(&message) {
                    return Ok(message);
                }
            }
        }
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &Frame) -> Result<()> {
        self.send_text(&frame.encode()).await
    }

    /// Sends raw text as one text frame, e.g. the tutorial client's deliberately malformed one.
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.socket.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends a protocol-level ping (the Go SDK pings every 4 s).
    pub async fn ping(&mut self) -> Result<()> {
        self.socket
            .ws
            .send(Message::Ping(Default::default()))
            .await?;
        Ok(())
    }

    /// Closes with code 1000 and waits (bounded) for the server's close frame. Closing an
    /// already closed connection is not an error.
    pub async fn close(&mut self) -> Result<()> {
        let frame = tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        match self.socket.ws.close(Some(frame)).await {
            Ok(()) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        }
        let drain = async { while let Some(Ok(_)) = self.socket.ws.next().await {} };
        // A server that never answers the close must not hang the caller.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
        Ok(())
    }
}

/// The WebSocket plus what it told us about its end.
struct Socket {
    ws: WebSocketStream<LobbyStream>,
    closed: Option<CloseInfo>,
}

impl Socket {
    async fn next_frame(&mut self) -> Result<Option<Frame>> {
        loop {
            let message = match self.ws.next().await {
                None => return Ok(None),
                Some(Ok(message)) => message,
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => return Ok(None),
                Some(Err(err)) => return Err(err.into()),
            };
            match message {
                Message::Text(text) => return Ok(Some(Frame::parse(strip_envelope(&text))?)),
                Message::Ping(_) => {
                    // tungstenite queued the pong; flush so it leaves now rather than with the
                    // next write, which for an idle player may never come.
                    self.ws.flush().await?;
                }
                Message::Close(frame) => {
                    self.closed = Some(match frame {
                        Some(frame) => CloseInfo {
                            code: frame.code.into(),
                            reason: frame.reason.to_string(),
                        },
                        None => CloseInfo {
                            code: u16::from(CloseCode::Status),
                            reason: String::new(),
                        },
                    });
                }
                Message::Binary(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    fn closed_error(&self) -> ClientError {
        ClientError::Closed {
            code: self.closed.as_ref().map(|c| c.code),
            reason: self
                .closed
                .as_ref()
                .map(|c| c.reason.clone())
                .unwrap_or_default(),
        }
    }
}

/// `{base}/lobby/` with `ws`/`wss` in place of `http`/`https`.
pub fn lobby_url(base_url: &Url) -> Result<Url> {
    let scheme = match base_url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(ClientError::InvalidInput(format!(
                "lobby base url scheme must be http(s) or ws(s), got {other}"
            )));
        }
    };
    if base_url.cannot_be_a_base() || base_url.host().is_none() {
        return Err(ClientError::InvalidInput(format!(
            "base url {base_url} has no host"
        )));
    }
    let mut url = endpoint(base_url, &["lobby", ""]);
    // http→ws and https→wss stay within the special schemes, which `set_scheme` allows.
    url.set_scheme(scheme).map_err(|()| {
        ClientError::InvalidInput(format!("cannot use scheme {scheme} for {base_url}"))
    })?;
    Ok(url)
}

/// Opens the TCP connection, bound to `local` when given.
async fn open_tcp(url: &Url, local: Option<IpAddr>) -> Result<TcpStream> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| ClientError::InvalidInput(format!("no port for {url}")))?;
    let remotes: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(domain)) => tokio::net::lookup_host((domain, port))
            .await
            .map_err(|err| ClientError::from(tungstenite::Error::Io(err)))?
            .collect(),
        None => return Err(ClientError::InvalidInput(format!("no host in {url}"))),
    };
    let stream = match local {
        None => TcpStream::connect(remotes.as_slice()).await,
        Some(local) => {
            let remote = remotes
                .iter()
                .copied()
                .find(|remote| remote.is_ipv4() == local.is_ipv4())
                .ok_or_else(|| {
                    ClientError::InvalidInput(format!(
                        "local address {local} and {url} have no address family in common"
                    ))
                })?;
            connect_from(local, remote).await
        }
    }
    .map_err(|err| ClientError::from(tungstenite::Error::Io(err)))?;
    // Lobby frames are small and latency matters more than packet count.
    stream
        .set_nodelay(true)
        .map_err(|err| ClientError::from(tungstenite::Error::Io(err)))?;
    Ok(stream)
}

async fn connect_from(local: IpAddr, remote: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if local.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(remote).await
}

/// A refused upgrade becomes a [`ClientError::Status`] with the server's body.
fn handshake_error(err: tungstenite::Error) -> ClientError {
    match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            ClientError::from_status(status, body)
        }
        other => other.into(),
    }
}

impl AbClient {
    /// Opens a lobby WebSocket for `access_token` on this client's base URL.
    pub async fn connect_lobby(
        &self,
        access_token: &str,
        options: &LobbyOptions,
    ) -> Result<LobbyConnection> {
        LobbyConnection::connect(self.base_url(), access_token, options).await
    }

    /// `POST /notification/namespaces/{namespace}/users/{userId}/freeform` (204): the call the
    /// sample makes for `searching` and `found <ip> <port>`.
    pub async fn notify_user(
        &self,
        bearer: &str,
        namespace: &str,
        user_id: &str,
        topic: &str,
        message: &str,
    ) -> Result<()> {
        let body = FreeFormNotificationRequest {
            message: message.to_owned(),
            topic: topic.to_owned(),
        };
        let path = [
            "notification",
            "namespaces",
            namespace,
            "users",
            user_id,
            "freeform",
        ];
        self.post_notification(bearer, &path, &body, StatusCode::NO_CONTENT)
            .await
    }

    /// `POST /notification/namespaces/{namespace}/freeform` (202): every connected user of the
    /// namespace.
    pub async fn notify_namespace(
        &self,
        bearer: &str,
        namespace: &str,
        topic: &str,
        message: &str,
    ) -> Result<()> {
        let body = FreeFormNotificationRequest {
            message: message.to_owned(),
            topic: topic.to_owned(),
        };
        let path = ["notification", "namespaces", namespace, "freeform"];
        self.post_notification(bearer, &path, &body, StatusCode::ACCEPTED)
            .await
    }

    /// `POST /lobby/v1/admin/notification/namespaces/{namespace}/users/{userId}/freeform/notify`
    /// (204).
    pub async fn admin_notify_user(
        &self,
        bearer: &str,
        namespace: &str,
        user_id: &str,
        topic: &str,
        message: &str,
    ) -> Result<()> {
        let body = admin_body(topic, message);
        let path = admin_path(namespace, &["users", user_id, "freeform", "notify"]);
        self.post_notification(bearer, &path, &body, StatusCode::NO_CONTENT)
            .await
    }

    /// `POST /lobby/v1/admin/notification/namespaces/{namespace}/freeform/notify` (202).
    pub async fn admin_notify_namespace(
        &self,
        bearer: &str,
        namespace: &str,
        topic: &str,
        message: &str,
    ) -> Result<()> {
        let body = admin_body(topic, message);
        let path = admin_path(namespace, &["freeform", "notify"]);
        self.post_notification(bearer, &path, &body, StatusCode::ACCEPTED)
            .await
    }

    /// `POST /lobby/v1/admin/notification/namespaces/{namespace}/bulkUsers/freeform/notify`
    /// (204).
    pub async fn admin_notify_users(
        &self,
        bearer: &str,
        namespace: &str,
        user_ids: &[impl AsRef<str>],
        topic: &str,
        message: &str,
    ) -> Result<()> {
        let body = BulkUsersFreeFormNotificationRequest {
            message: message.to_owned(),
            topic_name: topic.to_owned(),
            user_ids: user_ids.iter().map(|id| id.as_ref().to_owned()).collect(),
        };
        let path = admin_path(namespace, &["bulkUsers", "freeform", "notify"]);
        self.post_notification(bearer, &path, &body, StatusCode::NO_CONTENT)
            .await
    }

    /// The one way every notification route is called: a Bearer POST of a JSON body whose
    /// answer is an empty `expected` status.
    async fn post_notification(
        &self,
        bearer: &str,
        path: &[&str],
        body: &impl serde::Serialize,
        expected: StatusCode,
    ) -> Result<()> {
        let request = self
            .request(Method::POST, path, Auth::Bearer(bearer))?
            .json(body);
        send_empty(request, expected).await
    }
}

/// `lobby/v1/admin/notification/namespaces/{namespace}/` followed by `tail`.
fn admin_path<'a>(namespace: &'a str, tail: &[&'a str]) -> Vec<&'a str> {
    let mut path = vec![
        "lobby",
        "v1",
        "admin",
        "notification",
        "namespaces",
        namespace,
    ];
    path.extend_from_slice(tail);
    path
}

fn admin_body(topic: &str, message: &str) -> AdminFreeFormNotificationRequest {
    AdminFreeFormNotificationRequest {
        message: message.to_owned(),
        topic_name: topic.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::io::AsyncWriteExt as _;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer};

    use super::*;
    use crate::client::test_support::*;
    use crate::frame::wrap_envelope;

    const SESSION_ID: &str = "0123456789abcdef0123456789abcdef";

    fn connect_notif_text() -> String {
        ConnectNotif {
            login_type: "NewRegister".into(),
            reconnect_from_code: 5000,
            lobby_session_id: SESSION_ID.into(),
            sequence_id: 1,
            sequence_number: 0,
        }
        .to_frame()
        .encode()
    }

    fn message_notif(payload: &str) -> String {
        MessageNotif {
            id: "5c1f0e2d3b4a59687766554433221100".into(),
            from: "system".into(),
            to: "u1".into(),
            topic: "NOTIF".into(),
            payload: payload.into(),
            sent_at: "2022-08-25T00:45:32Z".into(),
        }
        .to_frame()
        .encode()
    }

    async fn listener() -> (TcpListener, Url) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        (
            listener,
            Url::parse(&format!("http://{addr}")).expect("url"),
        )
    }

    /// What the fake lobby saw of the upgrade request.
    #[derive(Debug, Default)]
    struct Seen {
        path: String,
        authorization: Option<String>,
        session_header: Option<String>,
        peer: Option<SocketAddr>,
        pong: Option<Vec<u8>>,
        client_frame: Option<String>,
    }

    #[tokio::test]
    async fn player_session_end_to_end_against_a_socket() {
        let (listener, base) = listener().await;
        let server = tokio::spawn(async move {
            let mut seen = Seen::default();
            let (tcp, peer) = listener.accept().await.expect("accept");
            seen.peer = Some(peer);
            let mut captured = (String::new(), None, None);
            // The callback's signature (and its large error type) is tungstenite's.
            #[allow(clippy::result_large_err)]
            let callback = |request: &Request, response: Response| {
                let get = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                captured = (
                    request.uri().path().to_owned(),
                    get("authorization"),
                    get(LOBBY_SESSION_HEADER),
                );
                Ok(response)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
                .await
                .expect("upgrade");
            (seen.path, seen.authorization, seen.session_header) = captured;
            ws.send(Message::text(connect_notif_text()))
                .await
                .expect("send");
            ws.send(Message::Ping(b"hb".to_vec().into()))
                .await
                .expect("ping");
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Pong(data) = message {
                    seen.pong = Some(data.to_vec());
                    break;
                }
            }
            for text in [
                "not a frame".to_owned(),
                "type: errorNotif\ncode: 20019\nmessage: unable to parse request body".to_owned(),
                message_notif("searching"),
                wrap_envelope(&message_notif("found 127.0.0.1 7777")),
            ] {
                ws.send(Message::text(text)).await.expect("send");
            }
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    seen.client_frame = Some(text.to_string());
                    break;
                }
            }
            ws.close(Some(tungstenite::protocol::CloseFrame {
                code: CloseCode::Library(4020),
                reason: "token revoked".into(),
            }))
            .await
            .expect("close");
            seen
        });

        // Linux routes all of 127.0.0.0/8 to loopback; elsewhere only 127.0.0.1 is certain.
        let source = if cfg!(target_os = "linux") {
            Ipv4Addr::new(127, 0, 0, 2)
        } else {
            Ipv4Addr::LOCALHOST
        };
        let options = LobbyOptions {
            local_addr: Some(IpAddr::V4(source)),
            lobby_session_id: Some("previous-session".into()),
            ..LobbyOptions::default()
        };
        let mut lobby = LobbyConnection::connect(&base, "at-1", &options)
            .await
            .expect("connect");
        assert_eq!(lobby.connect_notif().lobby_session_id, SESSION_ID);
        assert_eq!(lobby.connect_notif().reconnect_from_code, 5000);
        let local = lobby.local_addr().expect("local addr");
        assert_eq!(local.ip(), IpAddr::V4(source));

        let found = lobby
            .wait_message(|m| m.payload.starts_with("found "))
            .await
            .expect("found");
        assert_eq!(found.payload, "found 127.0.0.1 7777");
        assert_eq!(found.topic, "NOTIF");

        let request = Frame::new("offlineNotificationRequest").with("id", "r1");
        lobby.send(&request).await.expect("send");
        let err = lobby.wait_message(|_| true).await.expect_err("closed");
        assert!(
            matches!(&err, ClientError::Closed { code: Some(4020), reason } if reason == "token revoked"),
            "{err:?}"
        );
        assert_eq!(lobby.close_info().map(|c| c.code), Some(4020));
        assert!(
            lobby
                .next_frame()
                .await
                .expect("closed is not an error")
                .is_none()
        );
        lobby.close().await.expect("closing twice is fine");

        let seen = server.await.expect("server task");
        assert_eq!(seen.path, "/lobby/");
        assert_eq!(seen.authorization.as_deref(), Some("Bearer at-1"));
        assert_eq!(seen.session_header.as_deref(), Some("previous-session"));
        assert_eq!(seen.peer, Some(local));
        assert_eq!(seen.pong.as_deref(), Some(&b"hb"[..]));
        assert_eq!(
            seen.client_frame.as_deref(),
            Some("type: offlineNotificationRequest\nid: r1")
        );
    }

    #[tokio::test]
    async fn rejected_upgrade_is_a_status_error() {
        let (listener, base) = listener().await;
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            // Let the client's request arrive before answering.
            let mut buf = [0u8; 2048];
            let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
            let body = r#"{"errorCode":20001,"errorMessage":"unauthorized access"}"#;
            let response = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            tcp.write_all(response.as_bytes()).await.expect("write");
            tcp.flush().await.expect("flush");
        });
        let err = LobbyConnection::connect(&base, "bad", &LobbyOptions::default())
            .await
            .expect_err("401");
        assert_eq!(err.status(), Some(401), "{err:?}");
    }

    /// A server text frame (unmasked), as raw bytes.
    fn raw_text_frame(text: &str) -> Vec<u8> {
        let mut frame = vec![0x81];
        match text.len() {
            len @ 0..126 => frame.push(len as u8),
            len => {
                frame.push(126);
                frame.extend_from_slice(&u16::try_from(len).expect("short frame").to_be_bytes());
            }
        }
        frame.extend_from_slice(text.as_bytes());
        frame
    }

    /// Answers one upgrade with `101` and `frames` in a single write, taking the accept key from
    /// `accept` (the right one when `None`).
    async fn raw_lobby(listener: TcpListener, accept: Option<&'static str>, frames: Vec<u8>) {
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf)
                .await
                .expect("read");
            assert!(n > 0, "request cut short");
            request.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8(request).expect("utf-8");
        let key = request
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("key");
        let accept = accept.map_or_else(
            || tungstenite::handshake::derive_accept_key(key.as_bytes()),
            str::to_owned,
        );
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        answer.extend_from_slice(&frames);
        tcp.write_all(&answer).await.expect("write");
        // Hold the socket until the client is done with it.
        let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
    }

    #[tokio::test]
    async fn frames_that_arrive_with_the_upgrade_answer_are_read() {
        let (listener, base) = listener().await;
        let mut frames = raw_text_frame(&connect_notif_text());
        frames.extend(raw_text_frame(&message_notif("with the 101")));
        tokio::spawn(raw_lobby(listener, None, frames));
        let mut conn = LobbyConnection::connect(&base, "at", &LobbyOptions::default())
            .await
            .expect("connect");
        assert_eq!(conn.connect_notif().lobby_session_id, SESSION_ID);
        let frame = conn.next_frame().await.expect("read").expect("frame");
        let message = MessageNotif::from_frame(&frame).expect("messageNotif");
        assert_eq!(message.payload, "with the 101");
    }

    #[tokio::test]
    async fn a_wrong_accept_key_fails_the_upgrade() {
        let (listener, base) = listener().await;
        let frames = raw_text_frame(&connect_notif_text());
        tokio::spawn(raw_lobby(listener, Some("bm90IHRoZSBrZXk="), frames));
        let err = LobbyConnection::connect(&base, "at", &LobbyOptions::default())
            .await
            .expect_err("wrong accept key");
        assert!(
            format!("{err:?}").contains("SecWebSocketAcceptKeyMismatch"),
            "{err:?}"
        );
    }

    #[test]
    fn a_plain_connection_carries_no_tls_state_inline() {
        // tokio-tungstenite's `MaybeTlsStream` made every connection ~1.5 KB; with the TLS
        // stream boxed the connection is its codec, its stream and the `connectNotif`.
        let size = std::mem::size_of::<LobbyConnection>();
        assert!(size <= 768, "LobbyConnection is {size} bytes");
    }

    #[tokio::test]
    async fn first_frame_must_be_connect_notif() {
        let (listener, base) = listener().await;
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
            ws.send(Message::text(message_notif("early")))
                .await
                .expect("send");
            // Keep the socket open until the client gives up.
            while let Some(Ok(_)) = ws.next().await {}
        });
        let err = LobbyConnection::connect(&base, "at", &LobbyOptions::default())
            .await
            .expect_err("not a connectNotif");
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let (listener, base) = listener().await;
        let _hold = tokio::spawn(async move {
            let accepted = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(accepted);
        });
        let options = LobbyOptions {
            connect_timeout: Duration::from_millis(200),
            ..LobbyOptions::default()
        };
        let err = LobbyConnection::connect(&base, "at", &options)
            .await
            .expect_err("timeout");
        assert!(err.is_timeout(), "{err:?}");
    }

    /// A blocking TLS WebSocket server on a thread (sync tungstenite over rustls), answering
    /// `connections` upgrades with a `connectNotif`; failed TLS handshakes count too.
    fn spawn_tls_lobby(connections: usize) -> (Url, String) {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("certificate");
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server config");
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for _ in 0..connections {
                let Ok((tcp, _)) = listener.accept() else {
                    return;
                };
                let Ok(connection) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                    return;
                };
                let tls = rustls::StreamOwned::new(connection, tcp);
                let Ok(mut ws) = tungstenite::accept(tls) else {
                    continue;
                };
                if ws.send(Message::text(connect_notif_text())).is_err() {
                    continue;
                }
                // Serve until the client closes.
                while ws.read().is_ok() {}
            }
        });
        (
            Url::parse(&format!("https://{addr}")).expect("url"),
            certified.cert.pem(),
        )
    }

    #[tokio::test]
    async fn wss_with_a_custom_root_or_insecure() {
        let (base, ca_pem) = spawn_tls_lobby(3);
        let trusted = LobbyOptions {
            tls: Some(LobbyTls::with_root_pem(ca_pem.as_bytes()).expect("root")),
            ..LobbyOptions::default()
        };
        let mut lobby = LobbyConnection::connect(&base, "at", &trusted)
            .await
            .expect("trusted root");
        assert_eq!(lobby.connect_notif().lobby_session_id, SESSION_ID);
        lobby.close().await.expect("close");

        let err = LobbyConnection::connect(&base, "at", &LobbyOptions::default())
            .await
            .expect_err("self-signed certificate is not a public root");
        assert!(matches!(err, ClientError::WebSocket(_)), "{err:?}");

        let insecure = LobbyOptions {
            tls: Some(LobbyTls::insecure().expect("insecure")),
            ..LobbyOptions::default()
        };
        let mut lobby = LobbyConnection::connect(&base, "at", &insecure)
            .await
            .expect("insecure");
        lobby.close().await.expect("close");
    }

    #[test]
    fn lobby_url_swaps_scheme_and_appends_lobby() {
        let url = |s: &str| lobby_url(&Url::parse(s).expect("url")).map(|u| u.to_string());
        assert_eq!(
            url("http://127.0.0.1:8080").expect("ws"),
            "ws://127.0.0.1:8080/lobby/"
        );
        assert_eq!(
            url("https://demo.accelbyte.io/").expect("wss"),
            "wss://demo.accelbyte.io/lobby/"
        );
        assert_eq!(
            url("https://h:8443/prefix").expect("wss"),
            "wss://h:8443/prefix/lobby/"
        );
        assert!(matches!(url("ftp://h"), Err(ClientError::InvalidInput(_))));
    }

    #[test]
    fn tls_settings() {
        assert!(matches!(
            LobbyTls::with_root_pem(b"not a pem"),
            Err(ClientError::Tls(_))
        ));
        LobbyTls::insecure().expect("insecure config builds");
    }

    #[tokio::test]
    async fn notification_calls_send_contract_bodies() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/notification/namespaces/testgame/users/u1/freeform"))
            .and(header("authorization", "Bearer user"))
            .and(body_json(
                serde_json::json!({"message": "searching", "topic": "NOTIF"}),
            ))
            .respond_with(wiremock::ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/notification/namespaces/testgame/freeform"))
            .respond_with(wiremock::ResponseTemplate::new(202))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(
                "/lobby/v1/admin/notification/namespaces/testgame/bulkUsers/freeform/notify",
            ))
            .and(body_json(serde_json::json!(
                {"message": "hi", "topicName": "NOTIF", "userIds": ["u1", "u2"]}
            )))
            .respond_with(wiremock::ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(
                "/lobby/v1/admin/notification/namespaces/testgame/users/u1/freeform/notify",
            ))
            .and(body_json(
                serde_json::json!({"message": "hi", "topicName": "NOTIF"}),
            ))
            .respond_with(wiremock::ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(
                "/lobby/v1/admin/notification/namespaces/testgame/freeform/notify",
            ))
            .respond_with(wiremock::ResponseTemplate::new(202))
            .expect(1)
            .mount(&server)
            .await;
        let client = client(&server);
        client
            .notify_user("user", NAMESPACE, "u1", "NOTIF", "searching")
            .await
            .expect("user");
        client
            .notify_namespace("user", NAMESPACE, "NOTIF", "all")
            .await
            .expect("namespace");
        client
            .admin_notify_users("admin", NAMESPACE, &["u1", "u2"], "NOTIF", "hi")
            .await
            .expect("bulk");
        client
            .admin_notify_user("admin", NAMESPACE, "u1", "NOTIF", "hi")
            .await
            .expect("admin user");
        client
            .admin_notify_namespace("admin", NAMESPACE, "NOTIF", "hi")
            .await
            .expect("admin namespace");
    }

    #[tokio::test]
    async fn pascal_case_notification_error_is_parsed() {
        let server = MockServer::start().await;
        Mock::given(path("/notification/namespaces/testgame/users/u2/freeform"))
            .respond_with(json_with_type(
                403,
                r#"{"ErrorCode":20013,"ErrorMessage":"insufficient permissions"}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        let err = client(&server)
            .notify_user("user", NAMESPACE, "u2", "NOTIF", "found 127.0.0.1 7777")
            .await
            .expect_err("403");
        assert_eq!(err.status(), Some(403));
        assert_eq!(err.error_code(), Some(20013));
        assert_eq!(
            err.body().and_then(|b| b.shape),
            Some(crate::models::error::ErrorShape::LobbyNotification)
        );
        assert_eq!(
            err.body().map(|b| b.message.as_str()),
            Some("insufficient permissions")
        );
    }
}
