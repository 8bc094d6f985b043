//! The whole fakes HTTP surface: every service's router merged on one base URL, as AGS serves
//! them, each tagged with the error shape it answers in, behind the fault layer; the control
//! API, `/metrics` and `/healthz` sit outside it so faults never hide them. With a state
//! directory, the group commit ([`crate::durable::journal::commit`]) wraps them all.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use accelbyte::models::error::codes;

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// Builds the router for `state`.
pub fn router(state: AppState) -> Router {
    let services = Router::new()
        .merge(crate::iam::router())
        .merge(crate::lobby::router())
        .merge(crate::sessionbrowser::router())
        .merge(crate::dsmc::router())
        .merge(crate::session::router())
        .merge(crate::match2::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::faults::layer::apply,
        ));
    services
        .merge(crate::control::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::durable::journal::commit,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Unknown routes: 404 with "not implemented", so a user can tell a missing emulation from a
/// missing entity.
async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_IMPLEMENTED,
        format!("fakes does not serve {}", uri.path()),
    )
    .into_response()
}
