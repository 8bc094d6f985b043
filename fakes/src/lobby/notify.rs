//! Lobby REST: the free-form notification endpoints (contract section 3.4).
//!
//! Two families with different error shapes, each router tagging its requests so extractor
//! failures (bad JSON, oversized bodies, bad tokens) answer in the right one:
//! - `/notification/namespaces/...` (game/server API, used by the tutorial):
//!   `{"ErrorCode", "ErrorMessage"}`;
//! - `/lobby/v1/admin/notification/namespaces/...`: `{"errorCode", "errorMessage"}`.
//!
//! Checks run in the order a caller can act on: token (401), namespace (404), permission
//! (403), then the body (400). A notification for a user who is not connected still succeeds
//! and is queued for their next connection (AGS behaviour unknown; our documented choice).

use accelbyte::models::lobby::{
    AdminFreeFormNotificationRequest, BulkUsersFreeFormNotificationRequest,
    FreeFormNotificationRequest,
};
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorShape};
use crate::extract::JsonBody;
use crate::state::AppState;

/// The IAM action bit every notification route requires.
const CREATE: u32 = 1;

const USER_PATH: &str = "/notification/namespaces/{namespace}/users/{userId}/freeform";
const NAMESPACE_PATH: &str = "/notification/namespaces/{namespace}/freeform";
const ADMIN_USER_PATH: &str =
    "/lobby/v1/admin/notification/namespaces/{namespace}/users/{userId}/freeform/notify";
const ADMIN_NAMESPACE_PATH: &str =
    "/lobby/v1/admin/notification/namespaces/{namespace}/freeform/notify";
const ADMIN_BULK_PATH: &str =
    "/lobby/v1/admin/notification/namespaces/{namespace}/bulkUsers/freeform/notify";

pub fn router() -> Router<AppState> {
    let public = Router::new()
        .route(USER_PATH, post(user_freeform))
        .route(NAMESPACE_PATH, post(namespace_freeform))
        .layer(axum::Extension(ErrorShape::LobbyNotification));
    let admin = Router::new()
        .route(ADMIN_USER_PATH, post(admin_user_freeform))
        .route(ADMIN_NAMESPACE_PATH, post(admin_namespace_freeform))
        .route(ADMIN_BULK_PATH, post(admin_bulk_freeform))
        .layer(axum::Extension(ErrorShape::Rest));
    public.merge(admin)
}

#[derive(Debug, Deserialize)]
struct NamespacePath {
    namespace: String,
}

#[derive(Debug, Deserialize)]
struct UserPath {
    namespace: String,
    #[serde(rename = "userId")]
    user_id: String,
}

/// A path that failed to decode (say, invalid percent-encoding) as an AGS 400.
fn path<T>(path: Result<Path<T>, PathRejection>) -> ApiResult<T> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))
}

/// 404 for an unknown namespace, then 403 unless the caller holds `resource` CREATE.
fn authorize(state: &AppState, caller: &Caller, namespace: &str, resource: &str) -> ApiResult<()> {
    state.iam.require_namespace(namespace)?;
    caller.require(resource, CREATE)
}

/// Runs `f`, rendering its error in the `/notification` shape: errors built in handlers and
/// helpers default to the REST shape.
fn in_notification_shape<T>(f: impl FnOnce() -> ApiResult<T>) -> ApiResult<T> {
    f().map_err(|e| e.with_shape(ErrorShape::LobbyNotification))
}

fn require_topic(topic: &str) -> ApiResult<()> {
    if topic.trim().is_empty() {
        Err(ApiError::bad_request("topic must not be empty"))
    } else {
        Ok(())
    }
}

/// `POST /notification/namespaces/{namespace}/users/{userId}/freeform` → 204.
async fn user_freeform(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Path<UserPath>, PathRejection>,
    body: Result<JsonBody<FreeFormNotificationRequest>, ApiError>,
) -> ApiResult<StatusCode> {
    in_notification_shape(|| {
        let UserPath { namespace, user_id } = path(params)?;
        let resource = format!("NAMESPACE:{namespace}:USER:{user_id}:NOTIFICATION");
        authorize(&state, &caller, &namespace, &resource)?;
        let JsonBody(body) = body?;
        require_topic(&body.topic)?;
        state
            .lobby
            .notify(&namespace, &user_id, &body.topic, &body.message);
        Ok(StatusCode::NO_CONTENT)
    })
}

/// `POST /notification/namespaces/{namespace}/freeform` → 202 (to every connected user).
async fn namespace_freeform(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Path<NamespacePath>, PathRejection>,
    body: Result<JsonBody<FreeFormNotificationRequest>, ApiError>,
) -> ApiResult<StatusCode> {
    in_notification_shape(|| {
        let NamespacePath { namespace } = path(params)?;
        authorize(
            &state,
            &caller,
            &namespace,
            &format!("NAMESPACE:{namespace}:NOTIFICATION"),
        )?;
        let JsonBody(body) = body?;
        require_topic(&body.topic)?;
        state
            .lobby
            .broadcast(&namespace, &body.topic, &body.message);
        Ok(StatusCode::ACCEPTED)
    })
}

fn admin_resource(namespace: &str) -> String {
    format!("ADMIN:NAMESPACE:{namespace}:NOTIFICATION")
}

/// `POST /lobby/v1/admin/notification/namespaces/{namespace}/users/{userId}/freeform/notify`
/// → 204.
async fn admin_user_freeform(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Path<UserPath>, PathRejection>,
    body: Result<JsonBody<AdminFreeFormNotificationRequest>, ApiError>,
) -> ApiResult<StatusCode> {
    let UserPath { namespace, user_id } = path(params)?;
    authorize(&state, &caller, &namespace, &admin_resource(&namespace))?;
    let JsonBody(body) = body?;
    require_topic(&body.topic_name)?;
    state
        .lobby
        .notify(&namespace, &user_id, &body.topic_name, &body.message);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /lobby/v1/admin/notification/namespaces/{namespace}/freeform/notify` → 202.
async fn admin_namespace_freeform(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Path<NamespacePath>, PathRejection>,
    body: Result<JsonBody<AdminFreeFormNotificationRequest>, ApiError>,
) -> ApiResult<StatusCode> {
    let NamespacePath { namespace } = path(params)?;
    authorize(&state, &caller, &namespace, &admin_resource(&namespace))?;
    let JsonBody(body) = body?;
    require_topic(&body.topic_name)?;
    state
        .lobby
        .broadcast(&namespace, &body.topic_name, &body.message);
    Ok(StatusCode::ACCEPTED)
}

/// `POST /lobby/v1/admin/notification/namespaces/{namespace}/bulkUsers/freeform/notify` → 204.
/// Each distinct user id receives the notification once; an empty list or an empty id is a
/// 400 (most likely a caller bug, and AGS marks `userIds` required).
async fn admin_bulk_freeform(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Path<NamespacePath>, PathRejection>,
    body: Result<JsonBody<BulkUsersFreeFormNotificationRequest>, ApiError>,
) -> ApiResult<StatusCode> {
    let NamespacePath { namespace } = path(params)?;
    authorize(&state, &caller, &namespace, &admin_resource(&namespace))?;
    let JsonBody(body) = body?;
    require_topic(&body.topic_name)?;
    if body.user_ids.is_empty() {
        return Err(ApiError::bad_request("userIds must not be empty"));
    }
    if body.user_ids.iter().any(|id| id.trim().is_empty()) {
        return Err(ApiError::bad_request("userIds must not contain empty ids"));
    }
    let user_ids = body.user_ids.iter().map(String::as_str);
    state
        .lobby
        .notify_many(&namespace, user_ids, &body.topic_name, &body.message);
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a service notification (Session v2, Matchmaking v2) to one user through the hub's one
/// send path: topic as given, payload the JSON of `body` in standard base64, as AGS encodes
/// them (the client SDKs decode the payload before parsing it).
pub fn send_json<T: serde::Serialize>(
    hub: &crate::lobby::hub::Hub,
    namespace: &str,
    user_id: &str,
    topic: &str,
    body: &T,
) -> crate::lobby::hub::Delivery {
    use base64::Engine;
    let json = serde_json::to_vec(body).unwrap_or_default();
    let payload = base64::engine::general_purpose::STANDARD.encode(json);
    hub.notify(namespace, user_id, topic, &payload)
}
