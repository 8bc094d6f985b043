//! IAM (`/iam`): OAuth2 login flows, tokens, JWKS, revocation, users and roles.
//!
//! [`store`] holds the data and rules, [`verified`] its cache of tokens whose signature it has
//! checked; [`oauth`], [`users`] and [`roles`] are the routes. OAuth routes answer errors as
//! `oauthmodel.ErrorResponse`, the rest as `rest.ErrorResponse`.

pub mod oauth;
pub mod roles;
pub mod store;
pub mod users;
pub mod verified;

use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};

use crate::error::ErrorShape;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    let oauth = Router::new()
        .route("/iam/v3/oauth/authorize", get(oauth::authorize))
        .route("/iam/v3/authenticate", post(oauth::authenticate))
        .route("/iam/v3/oauth/token", post(oauth::token_v3))
        .route("/iam/oauth/token", post(oauth::token_legacy))
        .route("/iam/v3/oauth/verify", post(oauth::verify_v3))
        .route("/iam/oauth/verify", post(oauth::verify_legacy))
        .route("/iam/v3/oauth/revoke", post(oauth::revoke))
        .route("/iam/oauth/revoke/token", post(oauth::revoke_token_legacy))
        .route("/iam/oauth/revoke/user", post(oauth::revoke_user_legacy))
        .route(
            "/iam/v3/oauth/admin/namespaces/{namespace}/users/{user_id}/revoke",
            post(oauth::revoke_user),
        )
        .layer(Extension(ErrorShape::OAuth));
    let rest = Router::new()
        .route("/iam/v3/oauth/jwks", get(oauth::jwks))
        .route("/iam/oauth/jwks", get(oauth::jwks))
        .route("/iam/v3/oauth/revocationlist", get(oauth::revocation_list))
        .route("/iam/oauth/revocationlist", get(oauth::revocation_list))
        .route("/iam/v3/logout", post(oauth::logout))
        .route(
            "/iam/v4/public/namespaces/{namespace}/users",
            post(users::create_user_v4),
        )
        .route(
            "/iam/v4/public/namespaces/{namespace}/test_users",
            post(users::create_user_v4),
        )
        .route(
            "/iam/v4/admin/namespaces/{namespace}/test_users",
            post(users::create_test_users),
        )
        .route(
            "/iam/v3/public/namespaces/{namespace}/users",
            post(users::create_user_v3),
        )
        .route("/iam/v3/public/users/me", get(users::me))
        .route(
            "/iam/v3/public/namespaces/{namespace}/users/{user_id}",
            get(users::public_user),
        )
        .route(
            "/iam/v3/admin/namespaces/{namespace}/users/{user_id}/information",
            delete(users::delete_user),
        )
        .route("/iam/roles/{role_id}", get(roles::role_legacy))
        .route("/iam/v3/admin/roles/{role_id}", get(roles::role_v3))
        .route(
            "/iam/v3/admin/namespaces/{namespace}/roleoverride/{role_id}/permissions",
            get(roles::role_override),
        )
        .route(
            "/iam/v3/admin/namespaces/{namespace}/clients/{client_id}",
            get(roles::client_info),
        )
        .route("/iam/healthz", get(health))
        .layer(Extension(ErrorShape::Rest));
    oauth.merge(rest)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"name": "iam", "healthy": true, "dependencies": [], "others": []}))
}
