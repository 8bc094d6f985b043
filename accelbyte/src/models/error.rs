//! The error bodies AGS services answer with. Each service family has its own shape (contract
//! section 1.4), so the emulator must pick the right one per route and the client must read all.

use serde::{Deserialize, Serialize};

/// Numeric error codes shared across AGS services.
pub mod codes {
    pub const INTERNAL_SERVER_ERROR: i64 = 20000;
    pub const UNAUTHORIZED_ACCESS: i64 = 20001;
    pub const VALIDATION_ERROR: i64 = 20002;
    pub const FORBIDDEN_ACCESS: i64 = 20003;
    pub const TOO_MANY_REQUESTS: i64 = 20007;
    pub const USER_NOT_FOUND: i64 = 20008;
    pub const INSUFFICIENT_PERMISSIONS: i64 = 20013;
    pub const INVALID_AUDIENCE: i64 = 20014;
    pub const INSUFFICIENT_SCOPE: i64 = 20015;
    pub const UNABLE_TO_PARSE_REQUEST_BODY: i64 = 20019;
    pub const INVALID_PAGINATION_PARAMETER: i64 = 20021;
    pub const TOKEN_IS_NOT_USER_TOKEN: i64 = 20022;
    pub const NOT_IMPLEMENTED: i64 = 20024;
    pub const EMAIL_ALREADY_USED: i64 = 10133;
    pub const USERNAME_ALREADY_USED: i64 = 10177;
    pub const COUNTRY_NOT_FOUND: i64 = 10154;
    pub const USER_UNDER_AGE: i64 = 10130;
    pub const ROLE_NOT_FOUND: i64 = 10456;
    pub const CLIENT_NOT_FOUND: i64 = 10365;
}

/// The AGS error body families: the one a route answers with, or the one a body turned out to
/// have. The server picks one per route; the client reads all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ErrorShape {
    /// [`OAuthError`] (`error`, `error_description`): the IAM OAuth endpoints.
    OAuth,
    /// [`RestError`] (`errorCode`, `errorMessage`): IAM REST, lobby admin, session browser
    /// reads, DSMC.
    #[default]
    Rest,
    /// [`LobbyNotificationError`] (`ErrorCode`, `ErrorMessage`): lobby `/notification/...`
    /// (and Matchmaking v2).
    LobbyNotification,
    /// [`SessionBrowserErrorV2`] (`errorCode`, `errorMessage`, `message`, `name`,
    /// `attributes`): session browser writes and Session v2.
    SessionBrowserV2,
}

/// `oauthmodel.ErrorResponse`: the IAM OAuth endpoints (token, revoke, authorize errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

/// `rest.ErrorResponse` (other IAM REST), `restapi.ErrorResponseV1` (lobby admin) and
/// `response.Error` (session browser reads, DSMC): camelCase code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestError {
    pub error_code: i64,
    pub error_message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_permission: Option<RequiredPermission>,
}

/// The permission a 403 says was missing (IAM only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredPermission {
    pub action: u32,
    pub resource: String,
}

/// `restapi.ErrorResponseBody`: lobby's `/notification/...` routes use PascalCase keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyNotificationError {
    #[serde(rename = "ErrorCode")]
    pub error_code: i64,
    #[serde(rename = "ErrorMessage")]
    pub error_message: String,
}

/// `restapi.ErrorResponseV2`: session browser writes (create, update, add, remove, join).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionBrowserErrorV2 {
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub error_code: i64,
    pub error_message: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub name: String,
}
