//! Lobby: the WebSocket at `/lobby/` and the free-form notification REST routes.

pub mod hub;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
