//! What a fault applies to: the emulated [`Service`]s (as a target names them and as request
//! paths are classified) and the [`Target`] filter every fault carries, with its matching of
//! HTTP requests, lobby notifications and sockets.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::FieldError;
use super::route::{glob, route_matches};

/// The emulated services, as a target names them and as requests are classified by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Service {
    #[serde(rename = "iam")]
    Iam,
    /// The WebSocket and both notification REST families (`/notification/...`, `/lobby/v1/...`).
    #[serde(rename = "lobby", alias = "notification")]
    Lobby,
    #[serde(rename = "sessionbrowser", alias = "session_browser")]
    SessionBrowser,
    #[serde(rename = "dsmc", alias = "dsmcontroller")]
    Dsmc,
    /// Session v2 (`/session/...`).
    #[serde(rename = "session")]
    Session,
    /// Matchmaking v2 (`/match2/...`).
    #[serde(rename = "match2")]
    Match2,
    /// Paths no service serves (404s); not a valid target.
    #[serde(rename = "other", skip_deserializing)]
    Other,
}

impl Service {
    /// Every service a target may name.
    pub const TARGETS: [Service; 6] = [
        Self::Iam,
        Self::Lobby,
        Self::SessionBrowser,
        Self::Dsmc,
        Self::Session,
        Self::Match2,
    ];

    /// Classifies a request path by its prefix, as AGS routes them.
    pub fn of_path(path: &str) -> Self {
        let first = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        match first {
            "iam" => Self::Iam,
            "lobby" | "notification" => Self::Lobby,
            "sessionbrowser" => Self::SessionBrowser,
            "dsmcontroller" => Self::Dsmc,
            "session" => Self::Session,
            "match2" => Self::Match2,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iam => "iam",
            Self::Lobby => "lobby",
            Self::SessionBrowser => "sessionbrowser",
            Self::Dsmc => "dsmc",
            Self::Session => "session",
            Self::Match2 => "match2",
            Self::Other => "other",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        match text {
            "iam" => Some(Self::Iam),
            "lobby" | "notification" => Some(Self::Lobby),
            "sessionbrowser" | "session_browser" => Some(Self::SessionBrowser),
            "dsmc" | "dsmcontroller" => Some(Self::Dsmc),
            "session" => Some(Self::Session),
            "match2" => Some(Self::Match2),
            _ => None,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a fault applies to. Every field given must match; an empty target matches everything
/// the kind can act on. Which fields a kind understands is checked when the fault is parsed.
///
/// In a file, `target = "dsmc"` is short for `target = { service = "dsmc" }`, and a string
/// starting with `/` is short for `{ route = "..." }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// HTTP faults: the service, by path prefix (`iam`, `lobby`, `sessionbrowser`, `dsmc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// HTTP faults: a path pattern. `*` matches within one segment, `{name}` matches one whole
    /// segment (so an axum route pattern works as is), `**` matches any number of segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// HTTP faults: the request method (upper case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Notification faults: the lobby frame type (every notification is a `messageNotif`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// Notification faults: the notification topic; `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Lobby faults: only this user's notifications or socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Target {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `"dsmc"` → a service, `"/iam/**"` → a route.
    pub(super) fn shorthand(text: &str) -> Result<Self, FieldError> {
        if text.starts_with('/') {
            return Ok(Self {
                route: Some(text.to_owned()),
                ..Self::default()
            });
        }
        Service::parse(text).map(|s| Self { service: Some(s), ..Self::default() }).ok_or_else(|| {
            FieldError::new(
                "target",
                format!(
                    "unknown service `{text}`, expected one of iam, lobby, sessionbrowser, dsmc \
                     (or a route pattern starting with /)"
                ),
            )
        })
    }

    /// Whether an HTTP request matches.
    pub fn matches_http(&self, service: Service, method: &str, path: &str) -> bool {
        self.service.is_none_or(|s| s == service)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .route
                .as_deref()
                .is_none_or(|pattern| route_matches(pattern, path))
    }

    /// Whether a lobby notification matches.
    pub fn matches_notification(&self, user_id: &str, topic: &str, message_type: &str) -> bool {
        self.user_id.as_deref().is_none_or(|u| u == user_id)
            && self
                .message_type
                .as_deref()
                .is_none_or(|t| t == message_type)
            && self
                .topic
                .as_deref()
                .is_none_or(|pattern| glob(pattern, topic))
    }

    /// Whether a lobby socket matches.
    pub fn matches_socket(&self, user_id: &str) -> bool {
        self.user_id.as_deref().is_none_or(|u| u == user_id)
    }
}
