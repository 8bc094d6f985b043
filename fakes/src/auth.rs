//! Who is calling: Basic client credentials and Bearer access tokens, checked as AGS does.
//!
//! [`Caller`] verifies a Bearer token (signature with a JWKS key, expiry, revocation) and carries
//! the caller's effective permissions: the token's own plus those of its roles, with `{userId}`
//! and `{namespace}` filled in. Handlers call [`Caller::require`] with the resource and action the
//! AGS spec names for the route.

use accelbyte::models::iam::JwtClaims;
use accelbyte::permission::{self, Permission};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;

use crate::error::{ApiError, ApiResult};
use crate::extract::shape_of;
use crate::iam::store::ClientRecord;
use crate::state::AppState;

/// An authenticated Bearer caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: String,
    pub claims: JwtClaims,
    pub permissions: Vec<Permission>,
}

impl Caller {
    /// The user id, or `None` for a client token.
    pub fn user_id(&self) -> Option<&str> {
        self.claims.sub.as_deref()
    }

    pub fn namespace(&self) -> &str {
        &self.claims.namespace
    }

    /// Fails with 403 (20013, naming the permission) unless the caller holds `resource`/`action`.
    pub fn require(&self, resource: &str, action: u32) -> ApiResult<()> {
        let required = Permission::new(resource, action);
        if permission::is_granted(&self.permissions, &required) {
            Ok(())
        } else {
            Err(ApiError::insufficient_permissions(
                resource.to_owned(),
                action,
            ))
        }
    }
}

/// The token from an `Authorization: Bearer …` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let shape = shape_of(parts);
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("missing bearer token").with_shape(shape))?;
        state
            .iam
            .authenticate(token)
            .map_err(|e| e.with_shape(shape))
    }
}

/// `Authorization: Basic base64(client_id:secret)`: the OAuth client making the call. Public
/// clients send an empty secret.
#[derive(Debug, Clone)]
pub struct BasicClient(pub ClientRecord);

/// Decodes a Basic header into `(client_id, secret)`.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':').unwrap_or((text.as_str(), ""));
    Some((id.to_owned(), secret.to_owned()))
}

impl FromRequestParts<AppState> for BasicClient {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let shape = shape_of(parts);
        let (id, secret) = basic_credentials(&parts.headers).ok_or_else(|| {
            ApiError::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required",
            )
            .with_shape(shape)
        })?;
        state
            .iam
            .authenticate_client(&id, &secret)
            .map(BasicClient)
            .map_err(|e| e.with_shape(shape))
    }
}

/// Either a Basic client or a Bearer token, or nothing: JWKS and the revocation list are fetched
/// with any of the three by the different SDKs, so those routes accept all of them but still
/// refuse credentials that are present and wrong.
#[derive(Debug, Clone)]
pub struct AnyCredentials;

impl FromRequestParts<AppState> for AnyCredentials {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let shape = shape_of(parts);
        if let Some((id, secret)) = basic_credentials(&parts.headers) {
            state
                .iam
                .authenticate_client(&id, &secret)
                .map_err(|e| e.with_shape(shape))?;
        } else if let Some(token) = bearer_token(&parts.headers) {
            state
                .iam
                .authenticate(token)
                .map_err(|e| e.with_shape(shape))?;
        }
        Ok(AnyCredentials)
    }
}
