//! Request extractors that fail with AGS-shaped errors instead of axum's plain-text rejections.
//!
//! Each service router inserts its [`ErrorShape`] as a request extension; these extractors read
//! it so a malformed body on a session browser route answers in the session browser's shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorShape};

/// Largest request body any route accepts (1 MiB, as the contract asks).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The error shape of the route handling this request.
pub fn shape_of(parts: &Parts) -> ErrorShape {
    parts
        .extensions
        .get::<ErrorShape>()
        .copied()
        .unwrap_or_default()
}

async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    let shape = req
        .extensions()
        .get::<ErrorShape>()
        .copied()
        .unwrap_or_default();
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::payload_too_large(MAX_BODY_BYTES).with_shape(shape))?;
    Ok(body)
}

/// A JSON body parsed into `T`; a parse failure is a 400 (20019 for syntax, 20002 for a missing
/// or mistyped field) naming what was wrong.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let shape = req
            .extensions()
            .get::<ErrorShape>()
            .copied()
            .unwrap_or_default();
        let bytes = read_body(req).await?;
        parse_json(&bytes)
            .map(JsonBody)
            .map_err(|e| e.with_shape(shape))
    }
}

/// Parses JSON, classifying the failure the way AGS does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unparsable_body("request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::bad_request(format!("invalid request body: {e}")),
            _ => ApiError::unparsable_body(format!("unable to parse request body: {e}")),
        }
    })
}

/// An `application/x-www-form-urlencoded` body parsed into `T`.
#[derive(Debug)]
pub struct FormBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let shape = req
            .extensions()
            .get::<ErrorShape>()
            .copied()
            .unwrap_or_default();
        let bytes = read_body(req).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(FormBody)
            .map_err(|e| {
                ApiError::oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("invalid form: {e}"),
                )
                .with_shape(shape)
            })
    }
}

/// Query parameters parsed into `T`, with an AGS-shaped 400 on failure.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(QueryParams)
            .map_err(|e| {
                ApiError::bad_request(format!("invalid query parameters: {e}"))
                    .with_shape(shape_of(parts))
            })
    }
}
