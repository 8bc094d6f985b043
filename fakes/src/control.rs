//! The fakes control API (`/_fakes/*`), `/metrics` and health — fakes' own API, outside the
//! fault layer so faults never hide it. Errors answer in the REST shape (`errorCode`,
//! `errorMessage`), and a refused fault's message starts with the field at fault.
//!
//! Faults, toxiproxy-style:
//! - `GET /_fakes/faults` — `{"seed", "faults": [...]}`, each fault with a read-only `state`;
//! - `POST /_fakes/faults` — add one (201, `Location: /_fakes/faults/{id}`; 409 if the id is
//!   taken);
//! - `PUT /_fakes/faults` — replace the whole set with `{"seed"?, "faults": [...]}`;
//! - `DELETE /_fakes/faults` — remove every fault;
//! - `GET`, `PUT` (replace or create; the window restarts), `DELETE /_fakes/faults/{id}`;
//! - `GET`, `PUT /_fakes/faults/seed` — `{"seed": 42}` restarts every decision stream.
//!
//! Match functions: `PUT /_fakes/match-functions/{name}` with `{"url": "http://host:port",
//! "timeout_ms"?: 5000}` registers (or replaces) a match function pools may name, called over AGS
//! Extend's `MakeMatches` gRPC (204); it stays across `/_fakes/reset`.
//!
//! Stats: `GET /_fakes/stats` (JSON) and `GET /metrics` (Prometheus text), see [`crate::stats`].
//!
//! With `--control-token` (required when fakes listens on a non-loopback address) every
//! `/_fakes/*` route needs `Authorization: Bearer <token>`; `/healthz` and `/metrics` stay open.
//! `POST /_fakes/reset` goes back to the seed data and the fault set loaded at start.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use accelbyte::models::error::codes;

use crate::error::{ApiError, ApiResult};
use crate::faults::model::parse_fault;
use crate::faults::{FaultFile, FaultList, FaultView, FaultsError, driver};
use crate::state::AppState;
use crate::stats::{self, PROMETHEUS_CONTENT_TYPE, StatsReport};

pub fn router(state: AppState) -> Router<AppState> {
    let control = Router::new()
        .route("/_fakes/reset", post(reset))
        .route("/_fakes/stats", get(stats_json))
        .route(
            "/_fakes/faults",
            get(list).post(add).put(replace_all).delete(clear),
        )
        .route("/_fakes/faults/seed", get(get_seed).put(put_seed))
        .route(
            "/_fakes/match-functions/{name}",
            axum::routing::put(put_match_function),
        )
        .route(
            "/_fakes/faults/{id}",
            get(get_one).put(put_one).delete(delete_one),
        )
        .route_layer(middleware::from_fn_with_state(state, require_control_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(control)
}

/// With a control token configured, `/_fakes/*` needs `Authorization: Bearer <token>` (401 in
/// the REST shape otherwise).
async fn require_control_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.config.control_token.as_deref() else {
        return next.run(request).await;
    };
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let given = match (values.next(), values.next()) {
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim()),
        _ => None,
    };
    if given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())) {
        next.run(request).await
    } else {
        let mut response =
            ApiError::unauthorized("the control API needs its bearer token").into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    }
}

/// Compares without stopping at the first difference (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AccelByte's health shape (`healthcheck-go-sdk`).
async fn healthz() -> Json<Value> {
    Json(json!({"name": "fakes", "healthy": true, "dependencies": [], "others": []}))
}

/// Back to the seed, and to the faults loaded at start.
async fn reset(State(state): State<AppState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchFunctionBody {
    url: String,
    timeout_ms: Option<u64>,
}

/// Registers an Extend match function under `name` (204).
async fn put_match_function(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let body: MatchFunctionBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    if crate::match2::store::BUILT_IN_FUNCTIONS.contains(&name.as_str()) {
        return Err(ApiError::bad_request(format!(
            "{name:?} is the built-in match function's name"
        )));
    }
    let mut function = crate::match2::remote::RemoteMatchFunction::new(&body.url)
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .with_bearer(crate::match2::caller_token::CallerToken::of_match2(&state));
    if let Some(ms) = body.timeout_ms {
        if ms == 0 {
            return Err(ApiError::bad_request("timeout_ms: must be above 0"));
        }
        function = function.with_timeout(std::time::Duration::from_millis(ms));
    }
    state
        .match2
        .register_function(&name, std::sync::Arc::new(function));
    Ok(StatusCode::NO_CONTENT)
}

async fn stats_json(State(state): State<AppState>) -> Json<StatsReport> {
    Json(stats::report(&state))
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        stats::prometheus(&state),
    )
        .into_response()
}

fn faults_error(error: FaultsError) -> ApiError {
    match error {
        FaultsError::Invalid(field) => ApiError::bad_request(field.to_string()),
        FaultsError::Conflict(_) => ApiError::conflict(codes::VALIDATION_ERROR, error.to_string()),
        FaultsError::NotFound(_) => ApiError::not_found(codes::VALIDATION_ERROR, error.to_string()),
    }
}

/// A JSON body, or a 400 saying why it is not JSON.
fn json_body(bytes: &[u8]) -> ApiResult<Value> {
    crate::extract::parse_json(bytes)
}

async fn list(State(state): State<AppState>) -> Json<FaultList> {
    Json(state.faults.list())
}

async fn add(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let fault = parse_fault(json_body(&body)?).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let view = state.faults.add(fault).map_err(faults_error)?;
    driver::reconcile(&state);
    let location = format!("/_fakes/faults/{}", view.fault.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

async fn replace_all(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<FaultList>> {
    let file = FaultFile::from_value(json_body(&body)?)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state.faults.replace_all(file).map_err(faults_error)?;
    driver::reconcile(&state);
    Ok(Json(state.faults.list()))
}

async fn clear(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    driver::reconcile(&state);
    StatusCode::NO_CONTENT
}

async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<FaultView>> {
    state
        .faults
        .get(&id)
        .map(Json)
        .ok_or_else(|| faults_error(FaultsError::NotFound(id)))
}

async fn put_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let fault = parse_fault(json_body(&body)?).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (view, created) = state.faults.put(&id, fault).map_err(faults_error)?;
    driver::reconcile(&state);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

async fn delete_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.faults.remove(&id) {
        return Err(faults_error(FaultsError::NotFound(id)));
    }
    driver::reconcile(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// `{"seed": 42}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedBody {
    seed: u64,
}

async fn get_seed(State(state): State<AppState>) -> Json<SeedBody> {
    Json(SeedBody {
        seed: state.faults.seed(),
    })
}

async fn put_seed(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<SeedBody>> {
    let SeedBody { seed } = crate::extract::parse_json(&body)?;
    state.faults.reseed(seed);
    Ok(Json(SeedBody { seed }))
}
