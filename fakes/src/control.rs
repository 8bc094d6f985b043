//! The fakes control API (`/_fakes/*`) and health.

use axum::Router;
use axum::routing::{get, post};
use axum::http::StatusCode;
use axum::extract::State;
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/_fakes/reset", post(reset))
}

/// AccelByte's health shape (`healthcheck-go-sdk`).
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"name": "fakes", "healthy": true, "dependencies": [], "others": []}))
}

/// Back to the seed.
async fn reset(State(state): State<AppState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}
