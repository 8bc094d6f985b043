//! Session Browser (`/sessionbrowser`).

pub mod store;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
