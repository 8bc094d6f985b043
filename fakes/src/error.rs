//! One error type for every fakes route, answered in the body shape AGS uses for that service.
//!
//! AGS has five error body shapes (contract section 1.4). A handler says which it speaks by the
//! [`ErrorShape`] it builds its error with; extractors that fail before a handler runs (bad JSON,
//! bad credentials, oversized bodies) read the shape from the request extensions, where each
//! service router puts its own.

pub use accelbyte::models::error::ErrorShape;
use accelbyte::models::error::{
    LobbyNotificationError, OAuthError, RequiredPermission, RestError, SessionBrowserErrorV2, codes,
};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer: status, AGS numeric code, message, and the shape to render it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: i64,
    /// The OAuth `error` code (`invalid_grant`, …); only the OAuth shape shows it.
    pub oauth_error: &'static str,
    pub message: String,
    pub shape: ErrorShape,
    pub required_permission: Option<RequiredPermission>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            oauth_error: oauth_error_for(status),
            message: message.into(),
            shape: ErrorShape::Rest,
            required_permission: None,
        }
    }

    /// An OAuth error (`error` + `error_description`).
    pub fn oauth(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            oauth_error: error,
            shape: ErrorShape::OAuth,
            ..Self::new(status, code_for(status), description)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::VALIDATION_ERROR, message)
    }

    pub fn unparsable_body(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::UNABLE_TO_PARSE_REQUEST_BODY,
            message,
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHORIZED_ACCESS,
            message,
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN_ACCESS, message)
    }

    pub fn insufficient_permissions(resource: String, action: u32) -> Self {
        Self {
            required_permission: Some(RequiredPermission { action, resource }),
            ..Self::new(
                StatusCode::FORBIDDEN,
                codes::INSUFFICIENT_PERMISSIONS,
                "insufficient permissions",
            )
        }
    }

    pub fn not_found(code: i64, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: i64, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::VALIDATION_ERROR,
            format!("request body is larger than {limit} bytes"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_SERVER_ERROR,
            message,
        )
    }

    /// Renders this error in another shape (extractors learn the route's shape late).
    pub fn with_shape(mut self, shape: ErrorShape) -> Self {
        self.shape = shape;
        self
    }
}

/// The numeric code AGS pairs with a bare status when a route has nothing more specific.
pub fn code_for(status: StatusCode) -> i64 {
    match status {
        StatusCode::UNAUTHORIZED => codes::UNAUTHORIZED_ACCESS,
        StatusCode::FORBIDDEN => codes::FORBIDDEN_ACCESS,
        StatusCode::TOO_MANY_REQUESTS => codes::TOO_MANY_REQUESTS,
        StatusCode::NOT_IMPLEMENTED => codes::NOT_IMPLEMENTED,
        s if s.is_server_error() => codes::INTERNAL_SERVER_ERROR,
        _ => codes::VALIDATION_ERROR,
    }
}

fn oauth_error_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "invalid_client",
        StatusCode::FORBIDDEN => "access_denied",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        match self.shape {
            ErrorShape::OAuth => (
                status,
                Json(OAuthError {
                    error: self.oauth_error.to_owned(),
                    error_description: Some(self.message),
                    error_uri: None,
                }),
            )
                .into_response(),
            ErrorShape::Rest => (
                status,
                Json(RestError {
                    error_code: self.code,
                    error_message: self.message,
                    required_permission: self.required_permission,
                }),
            )
                .into_response(),
            ErrorShape::LobbyNotification => (
                status,
                Json(LobbyNotificationError {
                    error_code: self.code,
                    error_message: self.message,
                }),
            )
                .into_response(),
            ErrorShape::SessionBrowserV2 => (
                status,
                Json(SessionBrowserErrorV2 {
                    attributes: serde_json::Map::new(),
                    error_code: self.code,
                    message: self.message.clone(),
                    error_message: self.message,
                    name: status.canonical_reason().unwrap_or("error").to_owned(),
                }),
            )
                .into_response(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
