//! Lobby: the WebSocket players keep open at `/lobby/`, and the REST routes that push free-form
//! notifications to them (contract section 3).
//!
//! - [`hub`] is the registry of connected users and their queued notifications, and the one
//!   place a `messageNotif` is built and sent (fault injection hooks in there through
//!   `NotifyHook`);
//! - [`ws`] authenticates and serves the socket;
//! - [`notify`] serves the `/notification/...` and `/lobby/v1/admin/notification/...` routes.
//!
//! Invariant: lobby knows users only as `(namespace, user id)` from a verified token or a URL;
//! it never reads IAM's user records, so notifications to users IAM does not know are queued
//! like any other.

pub mod cluster;
pub mod hub;
pub mod notify;
pub mod ws;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub use hub::{Close, Connection, Delivery, Hub, LobbyStats, Outbound};

use crate::state::AppState;

/// Every lobby route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/lobby/healthz", get(healthz))
        .merge(ws::router())
        .merge(notify::router())
}

/// AccelByte's health shape (`healthcheck-go-sdk`), the same body as the root `/healthz`.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"name": "fakes", "healthy": true, "dependencies": [], "others": []}))
}
