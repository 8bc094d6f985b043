//! Lobby wire models: the free-form notification REST bodies and the typed WebSocket messages
//! the emulator sends and the simulated players read.

use serde::{Deserialize, Serialize};

use crate::frame::Frame;

/// `POST /notification/namespaces/{ns}/users/{uid}/freeform` and `.../freeform` (broadcast).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeFormNotificationRequest {
    pub message: String,
    pub topic: String,
}

/// `POST /lobby/v1/admin/notification/namespaces/{ns}/users/{uid}/freeform/notify` and the
/// namespace-wide form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminFreeFormNotificationRequest {
    pub message: String,
    pub topic_name: String,
}

/// `POST /lobby/v1/admin/notification/namespaces/{ns}/bulkUsers/freeform/notify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkUsersFreeFormNotificationRequest {
    pub message: String,
    pub topic_name: String,
    pub user_ids: Vec<String>,
}

/// Message type names the lobby speaks.
pub mod types {
    pub const CONNECT_NOTIF: &str = "connectNotif";
    pub const MESSAGE_NOTIF: &str = "messageNotif";
    pub const ERROR_NOTIF: &str = "errorNotif";
    pub const SHUTDOWN_NOTIF: &str = "shutdownNotif";
    pub const DISCONNECT_NOTIF: &str = "disconnectNotif";
    pub const HEARTBEAT: &str = "heartbeat";
    pub const OFFLINE_NOTIFICATION_REQUEST: &str = "offlineNotificationRequest";
    pub const OFFLINE_NOTIFICATION_RESPONSE: &str = "offlineNotificationResponse";
}

/// The first frame on every lobby connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectNotif {
    pub login_type: String,
    pub reconnect_from_code: i64,
    pub lobby_session_id: String,
    pub sequence_id: u64,
    pub sequence_number: u64,
}

impl ConnectNotif {
    /// Encodes in the live service's field order.
    pub fn to_frame(&self) -> Frame {
        Frame::new(types::CONNECT_NOTIF)
            .with("loginType", &self.login_type)
            .with("reconnectFromCode", self.reconnect_from_code)
            .with("lobbySessionID", &self.lobby_session_id)
            .with("sequenceID", self.sequence_id)
            .with("sequenceNumber", self.sequence_number)
    }

    /// Reads a `connectNotif`; `None` when the frame is another type or lacks the session id.
    pub fn from_frame(frame: &Frame) -> Option<Self> {
        if frame.message_type() != types::CONNECT_NOTIF {
            return None;
        }
        Some(Self {
            login_type: frame.get("loginType").unwrap_or_default().to_owned(),
            reconnect_from_code: parse_or_default(frame.get("reconnectFromCode")),
            lobby_session_id: frame.get("lobbySessionID")?.to_owned(),
            sequence_id: parse_or_default(frame.get("sequenceID")),
            sequence_number: parse_or_default(frame.get("sequenceNumber")),
        })
    }
}

/// A delivered notification (free-form notifications arrive as this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageNotif {
    pub id: String,
    pub from: String,
    pub to: String,
    pub topic: String,
    pub payload: String,
    /// RFC 3339 UTC, whole seconds (`2022-08-25T00:45:32Z`).
    pub sent_at: String,
}

impl MessageNotif {
    /// Encodes in the contract's field order: the Python SDK requires `id` on line 2.
    pub fn to_frame(&self) -> Frame {
        Frame::new(types::MESSAGE_NOTIF)
            .with("id", &self.id)
            .with("from", &self.from)
            .with("to", &self.to)
            .with("topic", &self.topic)
            .with("payload", &self.payload)
            .with("sentAt", &self.sent_at)
    }

    /// Reads a `messageNotif`; `None` when the frame is another type.
    pub fn from_frame(frame: &Frame) -> Option<Self> {
        if frame.message_type() != types::MESSAGE_NOTIF {
            return None;
        }
        let field = |k: &str| frame.get(k).unwrap_or_default().to_owned();
        Some(Self {
            id: field("id"),
            from: field("from"),
            to: field("to"),
            topic: field("topic"),
            payload: field("payload"),
            sent_at: field("sentAt"),
        })
    }
}

/// The server's answer to a frame it could not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorNotif {
    pub id: Option<String>,
    pub code: i64,
    pub message: String,
}

impl ErrorNotif {
    pub fn to_frame(&self) -> Frame {
        let mut frame = Frame::new(types::ERROR_NOTIF);
        if let Some(id) = &self.id {
            frame.push("id", id);
        }
        frame.with("code", self.code).with("message", &self.message)
    }

    /// Reads an `errorNotif`; `None` when the frame is another type.
    pub fn from_frame(frame: &Frame) -> Option<Self> {
        if frame.message_type() != types::ERROR_NOTIF {
            return None;
        }
        Some(Self {
            id: frame.get("id").map(str::to_owned),
            code: parse_or_default(frame.get("code")),
            message: frame.get("message").unwrap_or_default().to_owned(),
        })
    }
}

/// The answer to `offlineNotificationRequest`: the request's `id` and `code` (0 = success); the
/// notifications queued while the user was offline follow as `messageNotif` frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineNotificationResponse {
    pub id: String,
    pub code: i64,
}

impl OfflineNotificationResponse {
    /// Encodes as the SDKs order responses: `type`, `id`, `code`.
    pub fn to_frame(&self) -> Frame {
        Frame::new(types::OFFLINE_NOTIFICATION_RESPONSE)
            .with("id", &self.id)
            .with("code", self.code)
    }

    /// Reads an `offlineNotificationResponse`; `None` when the frame is another type.
    pub fn from_frame(frame: &Frame) -> Option<Self> {
        if frame.message_type() != types::OFFLINE_NOTIFICATION_RESPONSE {
            return None;
        }
        Some(Self {
            id: frame.get("id").unwrap_or_default().to_owned(),
            code: parse_or_default(frame.get("code")),
        })
    }
}

fn parse_or_default<T: std::str::FromStr + Default>(value: Option<&str>) -> T {
    value.and_then(|v| v.parse().ok()).unwrap_or_default()
}
