//! The OAuth2 routes: authorize → authenticate → token (the SDK's PKCE login), the password,
//! client-credentials and refresh grants, verify, revoke, logout, JWKS and the revocation list,
//! in their v3 and legacy (`/iam/oauth/*`) forms.
//!
//! authorize and authenticate answer 302 only, as AGS does: success and failure both travel in the
//! `Location` query, so SDKs that read the header (and never follow it) see either a `request_id`
//! / `code` or an `error` + `error_description`.

use accelbyte::models::iam::{Jwks, RevocationList, TokenResponseLegacy, TokenResponseV3};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{AnyCredentials, BasicClient, Caller, basic_credentials, bearer_token};
use crate::error::{ApiError, ApiResult, ErrorShape};
use crate::extract::{FormBody, QueryParams};
use crate::iam::store::ClientRecord;
use crate::lobby::hub::Close;
use crate::state::AppState;

/// Where authorize sends the browser on success: the (emulated) login page.
const LOGIN_PAGE: &str = "/auth/";

#[derive(Debug, Deserialize)]
pub struct AuthorizeQuery {
    client_id: Option<String>,
    response_type: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
}

/// A 302 to `base` with `params` appended to its query.
fn redirect(base: &str, params: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if base.contains('?') { '&' } else { '?' };
    let location = format!("{base}{sep}{query}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn redirect_error(base: &str, error: &ApiError, state: Option<&str>) -> Response {
    let mut params = vec![
        ("error", error.oauth_error),
        ("error_description", error.message.as_str()),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect(base, &params)
}

/// The redirect URIs registered for a client: its `redirect_uri`, a comma-separated list as in
/// AGS's client model.
fn registered_uris(client: &ClientRecord) -> impl Iterator<Item = &str> {
    client
        .redirect_uri
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
}

/// Where the browser goes, success or error: the request's `redirect_uri` when it is exactly one
/// the client registered, else the client's first registered URI when the request names none,
/// else the login page. `Err` carries the reason when the request names a client or URI that
/// does not check out — errors then go to the login page, never to the unregistered URI.
fn redirect_target(
    state: &AppState,
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
) -> Result<String, &'static str> {
    let requested = redirect_uri.filter(|u| !u.is_empty());
    let Some(client) = client_id
        .filter(|c| !c.is_empty())
        .and_then(|id| state.iam.client(id))
    else {
        return match requested {
            Some(_) => Err("redirect_uri does not match a registered redirect URI of the client"),
            None => Ok(LOGIN_PAGE.to_owned()),
        };
    };
    match requested {
        Some(uri) if registered_uris(&client).any(|r| r == uri) => Ok(uri.to_owned()),
        Some(_) => Err("redirect_uri does not match a registered redirect URI of the client"),
        None => Ok(registered_uris(&client)
            .next()
            .unwrap_or(LOGIN_PAGE)
            .to_owned()),
    }
}

fn invalid_redirect(description: &str, state: Option<&str>) -> Response {
    redirect_error(
        LOGIN_PAGE,
        &ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_request", description),
        state,
    )
}

/// `GET /iam/v3/oauth/authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<AuthorizeQuery>,
) -> Response {
    let target = match redirect_target(&state, q.client_id.as_deref(), q.redirect_uri.as_deref()) {
        Ok(target) => target,
        Err(why) => return invalid_redirect(why, q.state.as_deref()),
    };
    let fail = |error: &'static str, description: &str| {
        redirect_error(
            &target,
            &ApiError::oauth(StatusCode::BAD_REQUEST, error, description),
            q.state.as_deref(),
        )
    };
    let Some(client_id) = q.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return fail("invalid_request", "client_id is required");
    };
    if q.response_type.as_deref() != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let challenge = match (
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    ) {
        (None | Some(""), _) => None,
        (Some(c), None | Some("") | Some("plain")) => Some((c.to_owned(), "plain".to_owned())),
        (Some(c), Some("S256")) => Some((c.to_owned(), "S256".to_owned())),
        (Some(_), Some(_)) => {
            return fail(
                "invalid_request",
                "code_challenge_method must be S256 or plain",
            );
        }
    };
    match state.iam.authorize(client_id, challenge, q.scope.clone()) {
        Ok(request_id) => {
            let mut params = vec![
                ("request_id", request_id.as_str()),
                ("client_id", client_id),
            ];
            if let Some(s) = q.state.as_deref() {
                params.push(("state", s));
            }
            redirect(LOGIN_PAGE, &params)
        }
        Err(e) => redirect_error(&target, &e, q.state.as_deref()),
    }
}

#[derive(Debug, Deserialize)]
pub struct AuthenticateForm {
    user_name: Option<String>,
    password: Option<String>,
    request_id: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// `POST /iam/v3/authenticate`.
pub async fn authenticate(
    State(state): State<AppState>,
    FormBody(f): FormBody<AuthenticateForm>,
) -> Response {
    let target = match redirect_target(&state, f.client_id.as_deref(), f.redirect_uri.as_deref()) {
        Ok(target) => target,
        Err(why) => return invalid_redirect(why, f.state.as_deref()),
    };
    let (Some(user), Some(password), Some(request_id)) = (
        f.user_name.as_deref(),
        f.password.as_deref(),
        f.request_id.as_deref(),
    ) else {
        let e = ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "user_name, password and request_id are required",
        );
        return redirect_error(&target, &e, f.state.as_deref());
    };
    match state.iam.authenticate_user(request_id, user, password) {
        Ok(code) => {
            let mut params = vec![("code", code.as_str())];
            if let Some(s) = f.state.as_deref() {
                params.push(("state", s));
            }
            redirect(&target, &params)
        }
        Err(e) => redirect_error(&target, &e, f.state.as_deref()),
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The client a token request comes from: Basic header, or (public clients and the 2025 spec's
/// form fields) `client_id` / `client_secret` in the form.
fn token_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> ApiResult<ClientRecord> {
    let (id, secret) = match basic_credentials(headers) {
        Some(creds) => creds,
        None => match form.client_id.as_deref() {
            Some(id) => (
                id.to_owned(),
                form.client_secret.clone().unwrap_or_default(),
            ),
            None => {
                return Err(ApiError::oauth(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication is required",
                ));
            }
        },
    };
    state.iam.authenticate_client(&id, &secret)
}

fn required<'a>(value: &'a Option<String>, name: &str) -> ApiResult<&'a str> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{name} is required"),
        )
    })
}

fn grant(state: &AppState, headers: &HeaderMap, form: &TokenForm) -> ApiResult<TokenResponseV3> {
    let client = token_client(state, headers, form)?;
    match required(&form.grant_type, "grant_type")? {
        "authorization_code" => {
            let code = required(&form.code, "code")?;
            state
                .iam
                .grant_authorization_code(&client, code, form.code_verifier.as_deref())
        }
        "password" => {
            let username = required(&form.username, "username")?;
            let password = required(&form.password, "password")?;
            state.iam.grant_password(&client, username, password)
        }
        "client_credentials" => state.iam.grant_client_credentials(&client),
        "refresh_token" => state
            .iam
            .grant_refresh(&client, required(&form.refresh_token, "refresh_token")?),
        other => Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant_type {other} is not supported"),
        )),
    }
}

/// `POST /iam/v3/oauth/token`.
pub async fn token_v3(
    State(state): State<AppState>,
    headers: HeaderMap,
    FormBody(form): FormBody<TokenForm>,
) -> ApiResult<Json<TokenResponseV3>> {
    grant(&state, &headers, &form).map(Json)
}

/// `POST /iam/oauth/token` (legacy: PascalCase permissions).
pub async fn token_legacy(
    State(state): State<AppState>,
    headers: HeaderMap,
    FormBody(form): FormBody<TokenForm>,
) -> ApiResult<Json<TokenResponseLegacy>> {
    grant(&state, &headers, &form).map(|t| Json(TokenResponseLegacy::from(&t)))
}

#[derive(Debug, Deserialize)]
pub struct TokenOnlyForm {
    token: Option<String>,
}

/// `POST /iam/v3/oauth/verify`: 200 with the token's details, 400 (never 401: validators read 401
/// as "my own client token expired" and retry forever) when the token is not valid.
pub async fn verify_v3(
    State(state): State<AppState>,
    _client: BasicClient,
    FormBody(form): FormBody<TokenOnlyForm>,
) -> Response {
    match form.token.as_deref().and_then(|t| state.iam.verify(t)) {
        Some(t) => Json(t).into_response(),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `POST /iam/oauth/verify` (legacy body).
pub async fn verify_legacy(
    State(state): State<AppState>,
    _client: BasicClient,
    FormBody(form): FormBody<TokenOnlyForm>,
) -> Response {
    match form.token.as_deref().and_then(|t| state.iam.verify(t)) {
        Some(t) => Json(TokenResponseLegacy::from(&t)).into_response(),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `POST /iam/v3/oauth/revoke`: 200 whether or not the token was known (RFC 7009).
pub async fn revoke(
    State(state): State<AppState>,
    BasicClient(client): BasicClient,
    FormBody(form): FormBody<TokenOnlyForm>,
) -> ApiResult<StatusCode> {
    let token = required(&form.token, "token")?;
    state.iam.revoke_client_token(&client.id, token)?;
    Ok(StatusCode::OK)
}

/// Legacy `POST /iam/oauth/revoke/token` (`RevokeToken`): Basic client or Bearer token, form
/// `token`; 200. The token must have been issued to the calling client (the Bearer token's
/// client), as on the v3 route.
pub async fn revoke_token_legacy(
    State(state): State<AppState>,
    headers: HeaderMap,
    FormBody(form): FormBody<TokenOnlyForm>,
) -> ApiResult<StatusCode> {
    let oauth = |e: ApiError| e.with_shape(ErrorShape::OAuth);
    let client_id = if let Some((id, secret)) = basic_credentials(&headers) {
        state
            .iam
            .authenticate_client(&id, &secret)
            .map_err(oauth)?
            .id
    } else if let Some(token) = bearer_token(&headers) {
        state
            .iam
            .authenticate(token)
            .map_err(oauth)?
            .claims
            .client_id
    } else {
        return Err(ApiError::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication is required",
        ));
    };
    let token = required(&form.token, "token")?;
    state.iam.revoke_client_token(&client_id, token)?;
    Ok(StatusCode::OK)
}

/// `POST /iam/v3/logout`: revokes the caller's own token and closes their lobby socket with
/// 4021 (`DisconnectDueToIAMLoggedOut`), as AGS does.
pub async fn logout(State(state): State<AppState>, caller: Caller) -> StatusCode {
    state.iam.revoke_token(&caller.token);
    if let Some(user_id) = caller.user_id() {
        state
            .lobby
            .disconnect(caller.namespace(), user_id, Close::LOGGED_OUT);
    }
    StatusCode::NO_CONTENT
}

/// `POST /iam/v3/oauth/admin/namespaces/{namespace}/users/{userId}/revoke`: every token of the
/// user issued until now stops validating (it enters `revoked_users`) and their lobby socket
/// closes with 4020 (`DisconnectTokenRevokedCode`). Errors are `oauthmodel.ErrorResponse`.
pub async fn revoke_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let oauth = |e: ApiError| e.with_shape(ErrorShape::OAuth);
    state.iam.require_namespace(&namespace).map_err(oauth)?;
    caller
        .require(
            &format!("ADMIN:NAMESPACE:{namespace}:USER:{user_id}"),
            accelbyte::permission::action::UPDATE,
        )
        .map_err(oauth)?;
    state.iam.revoke_user(&user_id).map_err(oauth)?;
    state
        .lobby
        .disconnect(&namespace, &user_id, Close::TOKEN_REVOKED);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct UserIdForm {
    #[serde(rename = "userID")]
    user_id: Option<String>,
}

/// Legacy `POST /iam/oauth/revoke/user` (`RevokeAUser`): Bearer, form `userID`, needs
/// `NAMESPACE:{namespace}:USER:{userId}:ADMIN` UPDATE in the caller's namespace; 200. Closes
/// the user's lobby socket with 4020 like the v3 route.
pub async fn revoke_user_legacy(
    State(state): State<AppState>,
    caller: Caller,
    FormBody(form): FormBody<UserIdForm>,
) -> ApiResult<StatusCode> {
    let user_id = required(&form.user_id, "userID")?;
    let namespace = caller.namespace().to_owned();
    caller
        .require(
            &format!("NAMESPACE:{namespace}:USER:{user_id}:ADMIN"),
            accelbyte::permission::action::UPDATE,
        )
        .map_err(|e| e.with_shape(ErrorShape::OAuth))?;
    state
        .iam
        .revoke_user(user_id)
        .map_err(|e| e.with_shape(ErrorShape::OAuth))?;
    state
        .lobby
        .disconnect(&namespace, user_id, Close::TOKEN_REVOKED);
    Ok(StatusCode::OK)
}

/// `GET /iam/v3/oauth/jwks` (and legacy): any credentials or none.
pub async fn jwks(State(state): State<AppState>, _creds: AnyCredentials) -> Json<Jwks> {
    Json(state.iam.keys().jwks())
}

/// `GET /iam/v3/oauth/revocationlist` (and legacy): never an empty or null `revoked_users`.
pub async fn revocation_list(
    State(state): State<AppState>,
    _creds: AnyCredentials,
) -> Json<RevocationList> {
    Json(state.iam.revocation_list())
}
