//! DSMC (`/dsmcontroller`): register a session to get a dedicated server, claim it, read it,
//! cancel or delete it. The servers and sessions live in [`fleet`]; this module is the HTTP edge
//! that checks the caller, validates bodies and converts [`fleet::SessionInfo`] to wire types.
//!
//! Every route is Bearer with `NAMESPACE:{namespace}:DSM:SESSION` (CREATE register, READ get,
//! UPDATE claim, DELETE cancel) or, for admin routes, `ADMIN:NAMESPACE:{namespace}:DSM:SESSION`
//! (READ list, DELETE delete). Checks run in the order AGS middleware runs them, before the body
//! is read: token (401), namespace (404), permission (403). All errors are `response.Error`
//! (`errorCode`, `errorMessage`).
//!
//! Status choices where the spec leaves room:
//! - register: 409 when the session id exists in the namespace, 503 when no server is free (or
//!   the named `pod_name` is in use), 404 when `pod_name` names no server, 400 for an unknown
//!   region, a region that contradicts `pod_name`, an empty `session_id` or a body namespace
//!   other than the path's;
//! - claim: 204, 404 unknown session, 409 already claimed, 425 still `CREATING`, 503 unreachable
//!   (only through fault injection);
//! - cancel: 204 while `CREATING`, 422 otherwise (the 2025 spec's "session cannot be canceled"),
//!   404 unknown;
//! - admin delete: 204, 404 unknown (the spec documents only 204; a 404 tells a typo from a
//!   success). `withServer` on the admin list is validated but changes nothing: every fleet
//!   session holds a server.

pub mod fleet;

use std::collections::BTreeMap;

use accelbyte::models::dsmc::{
    ClaimSessionRequest, CreateSessionRequest, ListSessionResponse, Paging, Server, Session,
    SessionResponse, StatusHistory,
};
use accelbyte::models::error::codes;
use accelbyte::permission::action;
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorShape, code_for};
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;
use fleet::{CancelError, ClaimFailure, RegisterError, Registration, SessionInfo};

/// What every server reports as its provider and image: this is not a real cloud.
pub const PROVIDER: &str = "fakes";
pub const IMAGE_VERSION: &str = "fakes";
/// The port name under `ports`.
pub const PORT_NAME: &str = "default";
/// Admin list page size when `count` is absent, and the most one page may hold.
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 1000;

/// The DSMC routes, all answering errors as `response.Error`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dsmcontroller/healthz", get(healthz))
        .route(
            "/dsmcontroller/namespaces/{namespace}/sessions",
            post(register),
        )
        .route(
            "/dsmcontroller/namespaces/{namespace}/sessions/claim",
            post(claim),
        )
        .route(
            "/dsmcontroller/namespaces/{namespace}/sessions/{sessionID}",
            get(get_session),
        )
        .route(
            "/dsmcontroller/namespaces/{namespace}/sessions/{sessionID}/cancel",
            delete(cancel),
        )
        .route(
            "/dsmcontroller/admin/namespaces/{namespace}/sessions",
            get(admin_list),
        )
        .route(
            "/dsmcontroller/admin/namespaces/{namespace}/sessions/{sessionID}",
            delete(admin_delete),
        )
        .layer(Extension(ErrorShape::Rest))
}

/// A caller allowed `ACTION` on the DSMC sessions of the path's namespace (the `ADMIN:`
/// resource when `ADMIN`), plus the path parameters. Extracting it runs the 401/404/403 checks
/// before any body is read.
struct Authorized<const ACTION: u32, const ADMIN: bool = false> {
    namespace: String,
    /// Empty on routes without `{sessionID}`.
    session_id: String,
}

impl<const ACTION: u32, const ADMIN: bool> FromRequestParts<AppState>
    for Authorized<ACTION, ADMIN>
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_owned())
                .unwrap_or_default()
        };
        let namespace = param("namespace");
        state.iam.require_namespace(&namespace)?;
        let admin = if ADMIN { "ADMIN:" } else { "" };
        caller.require(&format!("{admin}NAMESPACE:{namespace}:DSM:SESSION"), ACTION)?;
        Ok(Self {
            namespace,
            session_id: param("sessionID"),
        })
    }
}

/// AccelByte's health shape (`healthcheck-go-sdk`).
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"name": "dsmcontroller", "healthy": true, "dependencies": [], "others": []}))
}

/// POST `/dsmcontroller/namespaces/{namespace}/sessions`.
async fn register(
    State(state): State<AppState>,
    auth: Authorized<{ action::CREATE }>,
    JsonBody(body): JsonBody<CreateSessionRequest>,
) -> ApiResult<Json<SessionResponse>> {
    if body.session_id.trim().is_empty() {
        return Err(ApiError::bad_request("session_id is required"));
    }
    if !body.namespace.is_empty() && body.namespace != auth.namespace {
        return Err(ApiError::bad_request(format!(
            "body namespace {} does not match path namespace {}",
            body.namespace, auth.namespace
        )));
    }
    let info = state
        .dsmc
        .register(Registration {
            namespace: auth.namespace,
            session_id: body.session_id,
            region: body.region,
            pod_name: body.pod_name,
            deployment: body.deployment,
            game_mode: body.game_mode,
            client_version: body.client_version,
            configuration: body.configuration,
        })
        .map_err(register_error)?;
    Ok(Json(SessionResponse {
        session: wire_session(&info),
    }))
}

fn register_error(e: RegisterError) -> ApiError {
    let status = match &e {
        RegisterError::Exists(_) => StatusCode::CONFLICT,
        RegisterError::NoCapacity { .. } | RegisterError::PodBusy(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        RegisterError::PodNotFound(_) => StatusCode::NOT_FOUND,
        RegisterError::UnknownRegion { .. } | RegisterError::RegionMismatch { .. } => {
            StatusCode::BAD_REQUEST
        }
    };
    error(status, e.to_string())
}

/// POST `/dsmcontroller/namespaces/{namespace}/sessions/claim` → 204.
async fn claim(
    State(state): State<AppState>,
    auth: Authorized<{ action::UPDATE }>,
    JsonBody(body): JsonBody<ClaimSessionRequest>,
) -> ApiResult<StatusCode> {
    if body.session_id.trim().is_empty() {
        return Err(ApiError::bad_request("session_id is required"));
    }
    state
        .dsmc
        .claim(&auth.namespace, &body.session_id)
        .map_err(|failure| {
            let status = match failure {
                ClaimFailure::NotFound => StatusCode::NOT_FOUND,
                ClaimFailure::Conflict => StatusCode::CONFLICT,
                ClaimFailure::NotReady => StatusCode::TOO_EARLY,
                ClaimFailure::Unreachable => StatusCode::SERVICE_UNAVAILABLE,
            };
            error(status, format!("session {}: {failure}", body.session_id))
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET `/dsmcontroller/namespaces/{namespace}/sessions/{sessionID}`.
async fn get_session(
    State(state): State<AppState>,
    auth: Authorized<{ action::READ }>,
) -> ApiResult<Json<SessionResponse>> {
    let info = state
        .dsmc
        .session(&auth.namespace, &auth.session_id)
        .ok_or_else(|| session_not_found(&auth.session_id))?;
    Ok(Json(SessionResponse {
        session: wire_session(&info),
    }))
}

/// DELETE `/dsmcontroller/namespaces/{namespace}/sessions/{sessionID}/cancel` → 204.
async fn cancel(
    State(state): State<AppState>,
    auth: Authorized<{ action::DELETE }>,
) -> ApiResult<StatusCode> {
    state
        .dsmc
        .cancel(&auth.namespace, &auth.session_id)
        .map_err(|e| match e {
            CancelError::NotFound => session_not_found(&auth.session_id),
            CancelError::NotCreating(_) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the admin list. Numbers arrive as text so a bad one gets a 400 naming it.
#[derive(Debug, Deserialize)]
struct ListArgs {
    count: Option<String>,
    offset: Option<String>,
    region: Option<String>,
    #[serde(rename = "withServer")]
    with_server: Option<String>,
}

/// GET `/dsmcontroller/admin/namespaces/{namespace}/sessions`.
async fn admin_list(
    State(state): State<AppState>,
    auth: Authorized<{ action::READ }, true>,
    uri: Uri,
    QueryParams(args): QueryParams<ListArgs>,
) -> ApiResult<Json<ListSessionResponse>> {
    let count = page_param("count", args.count.as_deref(), DEFAULT_PAGE)?.min(MAX_PAGE);
    let offset = page_param("offset", args.offset.as_deref(), 0)?;
    if let Some(value) = args.with_server.as_deref().filter(|v| !v.is_empty()) {
        parse_bool("withServer", value)?;
    }
    let region = args.region.as_deref().filter(|r| !r.is_empty());
    let all = state.dsmc.list(&auth.namespace, region);
    let (next, previous) = page_links(&uri, "count", offset, count, all.len());
    let sessions = all
        .iter()
        .skip(offset)
        .take(count)
        .map(wire_session)
        .collect();
    Ok(Json(ListSessionResponse {
        paging: Paging { next, previous },
        sessions,
    }))
}

/// DELETE `/dsmcontroller/admin/namespaces/{namespace}/sessions/{sessionID}` → 204.
async fn admin_delete(
    State(state): State<AppState>,
    auth: Authorized<{ action::DELETE }, true>,
) -> ApiResult<StatusCode> {
    if state.dsmc.delete(&auth.namespace, &auth.session_id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(session_not_found(&auth.session_id))
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code_for(status), message)
}

fn session_not_found(session_id: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        format!("session {session_id} not found"),
    )
}

/// A server as DSMC reports it.
pub fn wire_server(info: &SessionInfo) -> Server {
    let port = i32::from(info.port);
    Server {
        allocation_id: info.allocation_id.clone(),
        alternate_ips: Vec::new(),
        artifact_path: String::new(),
        cpu_limit: 0,
        created_at: rfc3339(info.created_at),
        custom_attribute: String::new(),
        deployment: info.deployment.clone(),
        game_version: info.client_version.clone(),
        image_version: IMAGE_VERSION.to_owned(),
        ip: info.ip.clone(),
        is_override_game_version: false,
        is_override_region: false,
        job_id: String::new(),
        last_update: rfc3339(info.last_update()),
        mem_limit: 0,
        namespace: info.namespace.clone(),
        params: String::new(),
        pod_name: info.pod_name.clone(),
        port,
        ports: BTreeMap::from([(PORT_NAME.to_owned(), port)]),
        protocol: "udp".to_owned(),
        provider: PROVIDER.to_owned(),
        region: info.region.clone(),
        session_id: info.id.clone(),
        status: info.status.as_str().to_owned(),
        status_history: wire_history(info),
        termination_reason: String::new(),
        ulimit_file_size: 0,
    }
}

/// A session as DSMC reports it (the server under the capital `Server` key).
pub fn wire_session(info: &SessionInfo) -> Session {
    Session {
        server: wire_server(info),
        id: info.id.clone(),
        namespace: info.namespace.clone(),
        provider: PROVIDER.to_owned(),
        region: info.region.clone(),
    }
}

/// The status history in wire form, oldest first.
pub fn wire_history(info: &SessionInfo) -> Vec<StatusHistory> {
    info.history
        .iter()
        .map(|change| StatusHistory {
            status: change.status.as_str().to_owned(),
            time_stamp: rfc3339(change.at),
        })
        .collect()
}

/// RFC 3339 in UTC with milliseconds, the form AGS timestamps take.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A non-negative page number from the query; absent, empty or `0` (for sizes) means `default`.
/// Shared with the session browser, which pages the same way.
pub(crate) fn page_param(name: &str, value: Option<&str>, default: usize) -> ApiResult<usize> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(0) if default > 0 => Ok(default),
            Ok(n) => Ok(n),
            Err(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::INVALID_PAGINATION_PARAMETER,
                format!("{name} must be a non-negative integer, got {text:?}"),
            )),
        },
    }
}

/// `true` / `false` from the query.
pub(crate) fn parse_bool(name: &str, value: &str) -> ApiResult<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be true or false, got {value:?}"
        ))),
    }
}

/// Cursor links for a page: the request's own path and query with `offset` (and the page-size
/// parameter `size_key`) replaced, or empty strings when there is no such page. Relative
/// links, because behind TLS or a proxy the server cannot know the scheme and host the client
/// used. Shared with the session browser.
pub(crate) fn page_links(
    uri: &Uri,
    size_key: &str,
    offset: usize,
    size: usize,
    total: usize,
) -> (String, String) {
    let query: Vec<(String, String)> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let link = |offset: usize| {
        let mut pairs: Vec<(&str, String)> = query
            .iter()
            .filter(|(key, _)| key != "offset" && key != size_key)
            .map(|(key, value)| (key.as_str(), value.clone()))
            .collect();
        pairs.push((size_key, size.to_string()));
        pairs.push(("offset", offset.to_string()));
        let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}?{encoded}", uri.path())
    };
    let end = offset.saturating_add(size);
    let next = if end < total {
        link(end)
    } else {
        String::new()
    };
    let previous = if offset > 0 {
        link(offset.saturating_sub(size))
    } else {
        String::new()
    };
    (next, previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_other_parameters_and_move_the_offset() {
        let uri: Uri = "/x?region=eu&count=2&offset=2".parse().expect("uri");
        let (next, previous) = page_links(&uri, "count", 2, 2, 5);
        assert_eq!(next, "/x?region=eu&count=2&offset=4");
        assert_eq!(previous, "/x?region=eu&count=2&offset=0");
        let (next, previous) = page_links(&uri, "count", 0, 2, 2);
        assert_eq!((next.as_str(), previous.as_str()), ("", ""));
    }

    #[test]
    fn page_param_rejects_garbage_and_defaults_zero_sizes() {
        assert_eq!(page_param("count", Some("0"), 20).ok(), Some(20));
        assert_eq!(page_param("offset", Some("0"), 0).ok(), Some(0));
        assert_eq!(page_param("count", None, 20).ok(), Some(20));
        let err = page_param("count", Some("-1"), 20).expect_err("negative");
        assert_eq!(err.code, codes::INVALID_PAGINATION_PARAMETER);
    }
}
