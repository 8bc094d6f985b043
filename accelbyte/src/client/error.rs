//! Client errors, and a lenient reader for every AGS error body.
//!
//! AGS answers errors in five shapes depending on the service (contract section 1.4): OAuth's
//! `error`/`error_description`, camelCase `errorCode`/`errorMessage` (IAM REST, lobby admin,
//! session browser reads, DSMC), lobby notification's PascalCase `ErrorCode`/`ErrorMessage`, and
//! session browser's V2 (`errorCode`, `errorMessage`, `message`, `name`, `attributes`).
//! [`ErrorBody`] folds them into one view so callers match on a code without knowing which
//! service answered; the raw text stays in [`ClientError::Status`] for anything else.

use serde_json::Value;
use thiserror::Error;
use tokio_tungstenite::tungstenite;

use crate::frame::FrameError;
use crate::models::error::ErrorShape;

/// Longest excerpt of a body kept in an error, so a huge or hostile body cannot bloat memory
/// held by metrics or logs.
const MAX_EXCERPT_BYTES: usize = 4096;

/// Every way a client call can fail.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Connecting, sending or receiving over HTTP failed (includes timeouts).
    #[error("http transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered with a non-success status.
    #[error("http {status}: {body}")]
    Status {
        status: u16,
        body: ErrorBody,
        /// The body as text (lossy UTF-8), cut at a few KiB.
        raw: String,
    },
    /// A 2xx (or a 3xx where a 302 was due) other than the one the contract documents.
    #[error("expected http {expected}, got {status}")]
    UnexpectedStatus { expected: u16, status: u16 },
    /// The login flow was refused: the 302 `Location` carried `error` / `error_description`.
    #[error("login refused: [{error}] {description}")]
    Redirect { error: String, description: String },
    /// A success body that is not JSON, or not the documented shape.
    #[error("decode response body: {source}")]
    Decode {
        source: serde_json::Error,
        /// The offending body (lossy UTF-8), cut at a few KiB.
        body: String,
    },
    /// A success body with a content type that cannot carry JSON.
    #[error("unexpected content type {content_type:?}")]
    UnexpectedContentType { content_type: String },
    /// The server broke the protocol in a way no status code describes (no `Location`, no
    /// `request_id`, a first lobby frame that is not `connectNotif`).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The caller passed something that cannot go on the wire.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The lobby WebSocket failed (handshake, TLS, I/O or framing).
    #[error("websocket: {0}")]
    WebSocket(#[source] Box<tungstenite::Error>),
    /// A lobby text frame could not be parsed; the connection stays usable.
    #[error("lobby frame: {0}")]
    Frame(#[from] FrameError),
    /// The lobby connection closed (close code and reason when the server sent a close frame).
    #[error("lobby connection closed{}", close_suffix(*.code, .reason))]
    Closed { code: Option<u16>, reason: String },
    /// A lobby operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// Building a TLS configuration failed.
    #[error("tls: {0}")]
    Tls(String),
}

fn close_suffix(code: Option<u16>, reason: &str) -> String {
    match (code, reason.is_empty()) {
        (Some(code), true) => format!(" with code {code}"),
        (Some(code), false) => format!(" with code {code}: {reason}"),
        (None, _) => String::new(),
    }
}

impl From<tungstenite::Error> for ClientError {
    fn from(err: tungstenite::Error) -> Self {
        Self::WebSocket(Box::new(err))
    }
}

impl ClientError {
    /// A [`ClientError::Status`] from a status and its raw body.
    pub fn from_status(status: u16, raw: &[u8]) -> Self {
        Self::Status {
            status,
            body: ErrorBody::parse(raw),
            raw: excerpt(raw),
        }
    }

    /// The HTTP status of a [`Status`](Self::Status) or
    /// [`UnexpectedStatus`](Self::UnexpectedStatus) error, or of a transport error that carries
    /// one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::UnexpectedStatus { status, .. } => Some(*status),
            Self::Transport(err) => err.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// The parsed error body of a [`Status`](Self::Status) error.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Self::Status { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The numeric AGS error code (`errorCode` / `ErrorCode`), when the body had one.
    pub fn error_code(&self) -> Option<i64> {
        self.body().and_then(|body| body.code)
    }

    /// Whether the request or lobby operation timed out.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Transport(err) => err.is_timeout(),
            Self::Timeout(_) => true,
            _ => false,
        }
    }

    /// Whether the failure happened below HTTP (connect, TLS, reset), i.e. no server answered.
    pub fn is_transport(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::WebSocket(_))
    }
}

/// An AGS error body in a common view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The shape the body had; `None` when empty, not JSON, or JSON of no AGS error shape.
    pub shape: Option<ErrorShape>,
    /// `errorCode` / `ErrorCode`; OAuth errors carry none.
    pub code: Option<i64>,
    /// The OAuth `error` code (`invalid_grant`, ...).
    pub error: Option<String>,
    /// `errorMessage`, `ErrorMessage`, `error_description` or V2 `message`; for a body of no
    /// known shape, its (trimmed, cut) text.
    pub message: String,
}

impl ErrorBody {
    /// Reads any AGS error shape; never fails (an unreadable body has no shape and its text as
    /// the message).
    pub fn parse(raw: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(map)) => Self::from_object(&map).unwrap_or_else(|| Self::unknown(raw)),
            _ => Self::unknown(raw),
        }
    }

    fn from_object(map: &serde_json::Map<String, Value>) -> Option<Self> {
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(code) = map.get("errorCode").and_then(as_code) {
            let v2 = ["name", "attributes", "message"]
                .iter()
                .any(|key| map.contains_key(*key));
            let message = text("errorMessage")
                .filter(|m| !m.is_empty())
                .or_else(|| text("message"))
                .unwrap_or_default();
            let shape = if v2 {
                ErrorShape::SessionBrowserV2
            } else {
                ErrorShape::Rest
            };
            return Some(Self {
                shape: Some(shape),
                code: Some(code),
                error: None,
                message,
            });
        }
        if let Some(code) = map.get("ErrorCode").and_then(as_code) {
            return Some(Self {
                shape: Some(ErrorShape::LobbyNotification),
                code: Some(code),
                error: None,
                message: text("ErrorMessage").unwrap_or_default(),
            });
        }
        let error = text("error")?;
        Some(Self {
            shape: Some(ErrorShape::OAuth),
            code: None,
            message: text("error_description").unwrap_or_default(),
            error: Some(error),
        })
    }

    fn unknown(raw: &[u8]) -> Self {
        Self {
            shape: None,
            code: None,
            error: None,
            message: excerpt(raw).trim().to_owned(),
        }
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, &self.error) {
            (Some(code), _) => write!(f, "error {code}: {}", self.message),
            (None, Some(error)) if self.message.is_empty() => f.write_str(error),
            (None, Some(error)) => write!(f, "{error}: {}", self.message),
            (None, None) if self.message.is_empty() => f.write_str("(empty body)"),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// An error code as a number, or as a numeric string (seen in some gateways' bodies).
fn as_code(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// `raw` as lossy UTF-8, cut to at most [`MAX_EXCERPT_BYTES`] on a char boundary.
pub(crate) fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if text.len() <= MAX_EXCERPT_BYTES {
        return text.into_owned();
    }
    let mut end = MAX_EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oauth_errors() {
        let body = ErrorBody::parse(
            br#"{"error":"invalid_grant","error_description":"bad password","error_uri":""}"#,
        );
        assert_eq!(body.shape, Some(ErrorShape::OAuth));
        assert_eq!(body.error.as_deref(), Some("invalid_grant"));
        assert_eq!(body.code, None);
        assert_eq!(body.message, "bad password");
        assert_eq!(body.to_string(), "invalid_grant: bad password");
    }

    #[test]
    fn reads_rest_errors() {
        let body = ErrorBody::parse(br#"{"errorCode":20001,"errorMessage":"unauthorized access"}"#);
        assert_eq!(body.shape, Some(ErrorShape::Rest));
        assert_eq!(body.code, Some(20001));
        assert_eq!(body.message, "unauthorized access");
        assert_eq!(body.to_string(), "error 20001: unauthorized access");
    }

    #[test]
    fn reads_pascal_case_lobby_errors() {
        let body =
            ErrorBody::parse(br#"{"ErrorCode":20013,"ErrorMessage":"insufficient permissions"}"#);
        assert_eq!(body.shape, Some(ErrorShape::LobbyNotification));
        assert_eq!(body.code, Some(20013));
        assert_eq!(body.message, "insufficient permissions");
    }

    #[test]
    fn reads_session_browser_v2_errors() {
        let body = ErrorBody::parse(
            br#"{"attributes":{},"errorCode":20002,"errorMessage":"","message":"session full","name":"ValidationError"}"#,
        );
        assert_eq!(body.shape, Some(ErrorShape::SessionBrowserV2));
        assert_eq!(body.code, Some(20002));
        assert_eq!(body.message, "session full", "falls back to `message`");
    }

    #[test]
    fn tolerates_string_codes_and_garbage() {
        assert_eq!(
            ErrorBody::parse(br#"{"errorCode":"20008","errorMessage":"x"}"#).code,
            Some(20008)
        );
        let html = ErrorBody::parse(b"  <html>bad gateway</html>\n");
        assert_eq!(html.shape, None);
        assert_eq!(html.message, "<html>bad gateway</html>");
        let empty = ErrorBody::parse(b"");
        assert_eq!(empty.shape, None);
        assert_eq!(empty.to_string(), "(empty body)");
        assert_eq!(ErrorBody::parse(b"[1,2]").shape, None);
        assert_eq!(ErrorBody::parse(br#"{"other":1}"#).shape, None);
    }

    #[test]
    fn status_error_keeps_a_bounded_excerpt() {
        let raw = "é".repeat(MAX_EXCERPT_BYTES);
        let err = ClientError::from_status(502, raw.as_bytes());
        let ClientError::Status { status, raw, .. } = &err else {
            panic!("not a status error: {err:?}");
        };
        assert_eq!(*status, 502);
        assert!(raw.len() <= MAX_EXCERPT_BYTES);
        assert_eq!(err.status(), Some(502));
    }

    #[test]
    fn messages_are_lower_case() {
        let err = ClientError::from_status(
            401,
            br#"{"errorCode":20001,"errorMessage":"unauthorized access"}"#,
        );
        assert_eq!(
            err.to_string(),
            "http 401: error 20001: unauthorized access"
        );
        assert_eq!(err.error_code(), Some(20001));
        let closed = ClientError::Closed {
            code: Some(4020),
            reason: "token revoked".into(),
        };
        assert_eq!(
            closed.to_string(),
            "lobby connection closed with code 4020: token revoked"
        );
        let redirect = ClientError::Redirect {
            error: "access_denied".into(),
            description: "invalid username or password".into(),
        };
        assert_eq!(
            redirect.to_string(),
            "login refused: [access_denied] invalid username or password"
        );
    }
}
