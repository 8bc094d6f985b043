//! IAM (`/iam`): OAuth2 login flows, tokens, JWKS, revocation, users and roles.

pub mod store;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
