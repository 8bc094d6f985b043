//! The lobby WebSocket at `/lobby/` (and `/lobby`): authentication at the upgrade, the
//! `connectNotif` greeting, notification delivery, and answers to what clients send.
//!
//! One tokio task per socket reads the client and writes the frames the [`Hub`] hands it; it
//! never holds a lock. What the lobby answers:
//! - `offlineNotificationRequest` → `offlineNotificationResponse` (`code: 0`), then anything
//!   still queued for the user;
//! - `heartbeat` → nothing (the frame only keeps proxies from idling the socket out);
//! - protocol pings → pongs (tungstenite queues them and flushes on the next read);
//! - anything else, including the tutorial client's deliberately broken `messageNotif`, →
//!   `errorNotif`, and the socket stays open: real clients send frames we do not emulate and
//!   must not be cut off for it.
//!
//! Every `messageNotif` comes from the hub's single send path; this module only writes them.

use std::sync::Arc;
use std::time::Duration;

use accelbyte::frame::{self, Frame, FrameError};
use accelbyte::models::error::codes;
use accelbyte::models::lobby::{ConnectNotif, ErrorNotif, OfflineNotificationResponse, types};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorShape};
use crate::lobby::cluster::shard::{RemoteFeed, ShardCounters};
use crate::lobby::hub::{CHANNEL_CAPACITY, Close, Connection, Hub, Outbound};
use crate::state::AppState;

/// Read buffer per socket. Lobby frames are a few hundred bytes; tungstenite's 128 KiB default
/// costs ~137 KB per connection, a small one a few KB, which is what lets one process hold 100k
/// sockets. tungstenite zero-fills the whole buffer on every read, so all of it is resident; a
/// larger frame still arrives whole (the buffer grows for it).
const READ_BUFFER_BYTES: usize = 1024;

/// Largest message (and frame) a client may send. Real lobby requests are well under 1 KiB;
/// anything bigger is refused by tungstenite and ends the connection.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Longest piece of client text echoed in an error.
const MAX_ECHOED_CHARS: usize = 64;

/// How long to wait for the client's answer to our close frame before dropping the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `errorNotif` code for a frame that is not `key: value` lines starting with `type:`
/// (the Unity SDK's `MessageFormatInvalid`; the live lobby's code is unknown).
pub const ERROR_MALFORMED_FRAME: i64 = 14016;

/// `errorNotif` code for a well-formed frame of a type fakes does not handle
/// (the Unity SDK's `MessageTypeNotSupported`).
pub const ERROR_UNSUPPORTED_TYPE: i64 = 14020;

/// Request header asking for the Unreal SDK's `LbS` … `LbE` envelope (both must be present).
const ENVELOPE_START_HEADER: &str = "x-ab-envelopestart";
const ENVELOPE_END_HEADER: &str = "x-ab-envelopeend";

/// `loginType` of every `connectNotif`: fakes never resumes a session, even when the client
/// sends `X-Ab-LobbySessionID` (there is nothing to resume in an emulator that keeps no
/// per-session state beyond the connection).
const LOGIN_TYPE_NEW: &str = "NewRegister";

/// `reconnectFromCode` the live service sends on a fresh login.
const RECONNECT_FROM_NONE: i64 = 5000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/lobby/", get(upgrade))
        .route("/lobby", get(upgrade))
        // Auth failures at the upgrade answer in the IAM REST shape.
        .layer(axum::Extension(ErrorShape::Rest))
}

/// `GET /lobby/`: authenticates the user token *before* upgrading, so a bad token is a plain
/// HTTP 401 the client can read rather than a socket that opens and dies.
async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(user_id) = caller.user_id().map(str::to_owned) else {
        return ApiError::unauthorized("the lobby needs a user token, not a client token")
            .into_response();
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::new(
                rejection.status(),
                codes::VALIDATION_ERROR,
                rejection.body_text(),
            )
            .into_response();
        }
    };
    let namespace = caller.namespace().to_owned();
    let envelope = wants_envelope(&headers);
    configure(ws).on_upgrade(move |socket| async move {
        let conn = state.lobby.connect(&namespace, &user_id);
        serve_socket(
            socket,
            Feed::Local(conn),
            Counts::Hub(state.lobby.clone()),
            envelope,
        )
        .await;
    })
}

/// The socket limits every lobby WebSocket gets, in this process or a shard.
pub(crate) fn configure(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER_BYTES)
        // 0 = write each frame straight through; we flush every message anyway.
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
}

/// Greets and serves one upgraded socket until either side closes.
pub(crate) async fn serve_socket(socket: WebSocket, feed: Feed, counts: Counts, envelope: bool) {
    Session {
        socket,
        counts,
        envelope,
        sequence: 0,
    }
    .run(feed)
    .await;
}

/// Where a socket's outbound frames come from: this process's hub, or (in a lobby shard) the
/// primary's hub over the bus.
pub(crate) enum Feed {
    Local(Connection),
    Remote(RemoteFeed),
}

impl Feed {
    async fn next(&mut self) -> Outbound {
        match self {
            Feed::Local(conn) => conn.next().await,
            Feed::Remote(remote) => remote.next().await,
        }
    }

    fn pending(&self) -> usize {
        match self {
            Feed::Local(conn) => conn.pending(),
            Feed::Remote(remote) => remote.pending(),
        }
    }

    /// Pulls more of the user's backlog; `true` while some remains. A shard's feed has none
    /// to pull: the primary relays the backlog as fast as the bus takes it.
    fn pump(&self) -> bool {
        match self {
            Feed::Local(conn) => conn.pump(),
            Feed::Remote(_) => false,
        }
    }
}

/// Where a socket's own counters go.
#[derive(Clone)]
pub(crate) enum Counts {
    Hub(Hub),
    Shard(Arc<ShardCounters>),
}

impl Counts {
    fn frame_received(&self) {
        match self {
            Counts::Hub(hub) => hub.count_frame_received(),
            Counts::Shard(counters) => counters.frame_received(),
        }
    }

    fn error_frame(&self) {
        match self {
            Counts::Hub(hub) => hub.count_error_frame(),
            Counts::Shard(counters) => counters.error_frame(),
        }
    }
}

/// Both envelope headers present (their values are fixed by the Unreal SDK; we only check
/// that the client asked).
pub(crate) fn wants_envelope(headers: &HeaderMap) -> bool {
    headers.contains_key(ENVELOPE_START_HEADER) && headers.contains_key(ENVELOPE_END_HEADER)
}

/// One open socket.
struct Session {
    socket: WebSocket,
    counts: Counts,
    envelope: bool,
    /// Frames this connection has sent (`connectNotif` is number 1).
    sequence: u64,
}

/// What the read side asks the loop to do next.
enum Next {
    Continue,
    /// Pull more of the user's backlog (after an `offlineNotificationRequest`).
    Pump,
    Stop,
}

impl Session {
    /// Greets, then serves until either side closes. A local [`Connection`] unregisters itself
    /// when dropped at the end, so cleanup also runs if this task is cancelled.
    async fn run(mut self, mut conn: Feed) {
        let greeting = self.connect_notif();
        if self.send_text(greeting).await.is_err() {
            return;
        }
        // The backlog goes out after the greeting; newer notifications wait behind it.
        let mut backlog_left = conn.pump();
        loop {
            tokio::select! {
                outbound = conn.next() => {
                    let text = match outbound {
                        Outbound::Frame(text) => text,
                        Outbound::Close(close) => {
                            self.close(close).await;
                            return;
                        }
                    };
                    if self.send_text(text).await.is_err() {
                        return;
                    }
                    // Refill once the channel is half empty rather than after every frame,
                    // so a long backlog costs a lock per batch, not per message.
                    if backlog_left && conn.pending() <= CHANNEL_CAPACITY / 2 {
                        backlog_left = conn.pump();
                    }
                }
                incoming = self.socket.recv() => {
                    let next = match incoming {
                        Some(Ok(message)) => self.on_message(message).await,
                        // A reset, a protocol error or an oversized message: nothing to answer.
                        Some(Err(_)) | None => Next::Stop,
                    };
                    match next {
                        Next::Continue => {}
                        Next::Pump => backlog_left = conn.pump(),
                        Next::Stop => return,
                    }
                }
            }
        }
    }

    fn connect_notif(&mut self) -> String {
        let notif = ConnectNotif {
            login_type: LOGIN_TYPE_NEW.to_owned(),
            reconnect_from_code: RECONNECT_FROM_NONE,
            lobby_session_id: uuid::Uuid::new_v4().simple().to_string(),
            // The live service's sequenceID looks like the Unix time of the connect
            // (`1705900094` in a January 2024 capture), and its sequenceNumber counts frames.
            sequence_id: u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default(),
            sequence_number: self.sequence + 1,
        };
        notif.to_frame().encode()
    }

    async fn on_message(&mut self, message: Message) -> Next {
        let text = match message {
            Message::Text(text) => text,
            // Some clients send lobby frames as binary; accept them when they are UTF-8.
            Message::Binary(bytes) => match Utf8Bytes::try_from(bytes) {
                Ok(text) => text,
                Err(_) => {
                    self.counts.frame_received();
                    let error = ErrorNotif {
                        id: None,
                        code: ERROR_MALFORMED_FRAME,
                        message: "binary frame is not UTF-8 text".to_owned(),
                    };
                    return self.send_error(error).await;
                }
            },
            // tungstenite answers pings itself and finishes the close handshake on the next
            // read, after which the stream ends.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Next::Continue,
        };
        self.counts.frame_received();
        self.on_text(frame::strip_envelope(text.as_str())).await
    }

    async fn on_text(&mut self, text: &str) -> Next {
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(error) => {
                let error = ErrorNotif {
                    id: find_id(text),
                    code: ERROR_MALFORMED_FRAME,
                    message: malformed_message(&error),
                };
                return self.send_error(error).await;
            }
        };
        let id = frame.get("id").map(str::to_owned);
        match frame.message_type() {
            types::HEARTBEAT => Next::Continue,
            types::OFFLINE_NOTIFICATION_REQUEST => {
                let response = OfflineNotificationResponse {
                    id: id.unwrap_or_default(),
                    code: 0,
                };
                match self.send_text(response.to_frame().encode()).await {
                    Ok(()) => Next::Pump,
                    Err(_) => Next::Stop,
                }
            }
            other => {
                let error = ErrorNotif {
                    id,
                    code: ERROR_UNSUPPORTED_TYPE,
                    message: unsupported_message(other),
                };
                self.send_error(error).await
            }
        }
    }

    async fn send_error(&mut self, error: ErrorNotif) -> Next {
        self.counts.error_frame();
        match self.send_text(error.to_frame().encode()).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::Stop,
        }
    }

    /// Writes one text frame, enveloped if the client asked for it.
    async fn send_text(&mut self, text: String) -> Result<(), axum::Error> {
        self.sequence += 1;
        let text = if self.envelope {
            frame::wrap_envelope(&text)
        } else {
            text
        };
        self.socket.send(Message::Text(text.into())).await
    }

    /// Sends `close` and waits briefly for the client's close frame, so the client reads our
    /// code before the TCP connection goes away.
    async fn close(mut self, close: Close) {
        let frame = CloseFrame {
            code: close.code,
            reason: Utf8Bytes::from(close.reason.into_owned()),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let drain = async { while let Some(Ok(_)) = self.socket.recv().await {} };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    }
}

/// The `id` of an unparsable frame, when one of its lines is `id: …`, so the client can match
/// the error to its request.
fn find_id(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (key.trim().eq_ignore_ascii_case("id") && !value.is_empty()).then(|| value.to_owned())
    })
}

/// Error texts avoid `": "` inside the value: the Go SDK splits lines on it and drops lines
/// with more than two parts. They also never echo the offending text back.
fn malformed_message(error: &FrameError) -> String {
    match error {
        FrameError::Empty => "empty frame".to_owned(),
        FrameError::MissingType { line } => {
            format!("malformed frame, line {line} must be the type line")
        }
        FrameError::MalformedLine { line, .. } => {
            format!("malformed frame, line {line} is not a key-value pair")
        }
    }
}

/// The error for a well-formed frame of a type fakes does not handle, naming the type
/// (shortened, and without `": "`, for the reason given at [`malformed_message`]).
fn unsupported_message(message_type: &str) -> String {
    let shown: String = message_type.chars().take(MAX_ECHOED_CHARS).collect();
    format!(
        "fakes does not handle message type {}",
        shown.replace(": ", ":")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_id_reads_an_id_line_anywhere() {
        assert_eq!(find_id("type: x\nbroken\nid: 42"), Some("42".to_owned()));
        assert_eq!(
            find_id("type: messageNotif\n0123456789abcdef01234567"),
            None
        );
        assert_eq!(find_id("ID:   \nid: 7"), Some("7".to_owned()));
    }

    #[test]
    fn error_texts_stay_single_key_value_pairs() {
        let tutorial =
            Frame::parse("type: messageNotif\n0123456789abcdef01234567").expect_err("malformed");
        let text = malformed_message(&tutorial);
        assert_eq!(text, "malformed frame, line 2 is not a key-value pair");
        let text = unsupported_message(&format!("a: b{}", "x".repeat(500)));
        assert!(!text.contains(": "), "{text}");
        assert!(text.len() < 120, "{text}");
    }

    #[test]
    fn envelope_needs_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Ab-EnvelopeStart", "LbS".parse().expect("header value"));
        assert!(!wants_envelope(&headers));
        headers.insert("X-Ab-EnvelopeEnd", "LbE".parse().expect("header value"));
        assert!(wants_envelope(&headers));
    }
}
