//! User routes: creation (v3, v4, test users), `users/me`, public lookup and admin deletion.
//!
//! Creation enforces AGS's documented rules (password 8–32 chars with three of four character
//! classes and no run of three equal characters; username 3–48 of letters, digits, `_` and `.`;
//! an ISO country; a `YYYY-MM-DD` birth date), so code that passes here will not trip on them live.

use accelbyte::models::error::codes;
use accelbyte::models::iam::{
    CreateTestUsersRequest, CreateTestUsersResponse, CreateUserRequestV4, CreateUserResponseV4,
    NamespaceRole, PublicUserResponseV3, TestUser, UserResponseV3,
};
use accelbyte::permission::action;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::iam::store::{UserRecord, new_id};
use crate::state::AppState;

/// Most test users one admin call may create (the sim creates its players in batches).
pub const MAX_TEST_USERS_PER_CALL: u32 = 10_000;

fn validate_password(password: &str) -> ApiResult<()> {
    let len = password.chars().count();
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let chars: Vec<char> = password.chars().collect();
    let triple = chars.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]);
    if !(8..=32).contains(&len) || classes < 3 || triple {
        return Err(ApiError::bad_request(
            "password must be 8-32 characters, use 3 of lower, upper, digit and symbol, and repeat no character more than twice in a row",
        ));
    }
    Ok(())
}

fn validate_username(username: &str) -> ApiResult<()> {
    let ok = (3..=48).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "username must be 3-48 letters, digits, '_' or '.'",
        ))
    }
}

fn validate_email(email: &str) -> ApiResult<()> {
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !email.contains(' ') =>
        {
            Ok(())
        }
        _ => Err(ApiError::bad_request(
            "emailAddress is not a valid email address",
        )),
    }
}

fn validate_country(country: &str) -> ApiResult<()> {
    if country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::COUNTRY_NOT_FOUND,
            "country not found",
        ))
    }
}

fn validate_birth_date(date: &str) -> ApiResult<()> {
    if date.is_empty() || chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() {
        Ok(())
    } else {
        Err(ApiError::bad_request("dateOfBirth must be YYYY-MM-DD"))
    }
}

fn record_from_v4(namespace: &str, body: &CreateUserRequestV4) -> ApiResult<UserRecord> {
    if body.auth_type != "EMAILPASSWD" {
        return Err(ApiError::bad_request("authType must be EMAILPASSWD"));
    }
    validate_email(&body.email_address)?;
    if let Some(password) = &body.password {
        validate_password(password)?;
    }
    if !body.username.is_empty() {
        validate_username(&body.username)?;
    }
    validate_country(&body.country)?;
    validate_birth_date(&body.date_of_birth)?;
    let display = if body.display_name.is_empty() {
        body.username.clone()
    } else {
        body.display_name.clone()
    };
    Ok(UserRecord {
        user_id: new_id(),
        username: body.username.clone(),
        // No password: the user exists but cannot use the password grant until they set one.
        password: body.password.clone().unwrap_or_default(),
        email: body.email_address.clone(),
        namespace: namespace.to_owned(),
        display_name: display,
        roles: Vec::new(),
        country: body.country.clone(),
        date_of_birth: body.date_of_birth.clone(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        enabled: true,
        bans: Vec::new(),
    })
}

fn response_v4(u: &UserRecord) -> CreateUserResponseV4 {
    CreateUserResponseV4 {
        auth_type: "EMAILPASSWD".into(),
        country: u.country.clone(),
        date_of_birth: u.date_of_birth.clone(),
        display_name: u.display_name.clone(),
        unique_display_name: u.display_name.clone(),
        email_address: u.email.clone(),
        namespace: u.namespace.clone(),
        user_id: u.user_id.clone(),
        username: u.username.clone(),
    }
}

/// `POST /iam/v4/public/namespaces/{namespace}/users` and `.../test_users`: `username` is
/// required (`account.createUserRequestV4`), `password` optional.
pub async fn create_user_v4(
    State(state): State<AppState>,
    _caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<CreateUserRequestV4>,
) -> ApiResult<(StatusCode, Json<CreateUserResponseV4>)> {
    state.iam.require_namespace(&namespace)?;
    validate_username(&body.username)?;
    let user = state.iam.create_user(record_from_v4(&namespace, &body)?)?;
    Ok((StatusCode::CREATED, Json(response_v4(&user))))
}

/// The v3 public creation body (no username; PascalCase `PasswordMD5Sum` is ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserRequestV3 {
    auth_type: String,
    email_address: String,
    password: String,
    #[serde(default)]
    display_name: String,
    country: String,
    #[serde(default)]
    date_of_birth: String,
}

/// `POST /iam/v3/public/namespaces/{namespace}/users`.
pub async fn create_user_v3(
    State(state): State<AppState>,
    _caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<CreateUserRequestV3>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    state.iam.require_namespace(&namespace)?;
    let v4 = CreateUserRequestV4 {
        auth_type: body.auth_type,
        email_address: body.email_address,
        username: String::new(),
        password: Some(body.password),
        country: body.country,
        date_of_birth: body.date_of_birth,
        display_name: body.display_name,
        unique_display_name: None,
        reach_minimum_age: None,
        verified: None,
    };
    let user = state.iam.create_user(record_from_v4(&namespace, &v4)?)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "authType": "EMAILPASSWD",
            "country": user.country,
            "dateOfBirth": user.date_of_birth,
            "displayName": user.display_name,
            "emailAddress": user.email,
            "namespace": user.namespace,
            "userId": user.user_id,
        })),
    ))
}

fn random_password() -> String {
    // Satisfies the password rule: a fixed mixed prefix plus random alphanumerics.
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    format!("Ab1!{tail}")
}

/// `POST /iam/v4/admin/namespaces/{namespace}/test_users`: creates `count` users with generated
/// credentials and returns them with their passwords.
pub async fn create_test_users(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<CreateTestUsersRequest>,
) -> ApiResult<(StatusCode, Json<CreateTestUsersResponse>)> {
    state.iam.require_namespace(&namespace)?;
    caller.require(&format!("ADMIN:NAMESPACE:{namespace}:USER"), action::CREATE)?;
    if body.count == 0 || body.count > MAX_TEST_USERS_PER_CALL {
        return Err(ApiError::bad_request(format!(
            "count must be 1-{MAX_TEST_USERS_PER_CALL}"
        )));
    }
    let country = if body.user_info.country.is_empty() {
        "US".to_owned()
    } else {
        body.user_info.country.clone()
    };
    validate_country(&country)?;
    let mut data = Vec::with_capacity(body.count as usize);
    for _ in 0..body.count {
        let id = new_id();
        let username = format!("test_{}", &id[..20]);
        let password = random_password();
        let user = state.iam.create_user(UserRecord {
            user_id: id,
            username: username.clone(),
            password: password.clone(),
            email: format!("{username}@test.matchbench.invalid"),
            namespace: namespace.clone(),
            display_name: username.clone(),
            roles: Vec::new(),
            country: country.clone(),
            date_of_birth: "1990-01-01".into(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            enabled: true,
            bans: Vec::new(),
        })?;
        data.push(TestUser {
            user_id: user.user_id,
            username: user.username,
            password,
            email_address: user.email,
            display_name: user.display_name.clone(),
            unique_display_name: user.display_name,
            namespace: user.namespace,
            country: user.country,
            date_of_birth: user.date_of_birth,
            auth_type: "EMAILPASSWD".into(),
            verified: true,
        });
    }
    Ok((StatusCode::CREATED, Json(CreateTestUsersResponse { data })))
}

/// `GET /iam/v3/public/users/me`: user tokens only.
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<UserResponseV3>> {
    let user_id = caller.user_id().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::TOKEN_IS_NOT_USER_TOKEN,
            "token is not user token",
        )
    })?;
    let user = state
        .iam
        .user(user_id)
        .ok_or_else(|| ApiError::not_found(codes::USER_NOT_FOUND, "user not found"))?;
    let permissions = state.iam.user_permissions(&user);
    Ok(Json(UserResponseV3 {
        auth_type: "EMAILPASSWD".into(),
        country: user.country.clone(),
        created_at: user.created_at.clone(),
        date_of_birth: user.date_of_birth.clone(),
        display_name: user.display_name.clone(),
        email_address: user.email.clone(),
        email_verified: true,
        enabled: user.enabled,
        last_date_of_birth_changed_time: user.created_at.clone(),
        last_enabled_changed_time: user.created_at.clone(),
        namespace: user.namespace.clone(),
        namespace_roles: caller.claims.namespace_roles.clone(),
        permissions,
        roles: user.roles.clone(),
        unique_display_name: user.display_name.clone(),
        user_id: user.user_id.clone(),
        user_name: user.username.clone(),
        ..UserResponseV3::default()
    }))
}

/// `GET /iam/v3/public/namespaces/{namespace}/users/{userId}`.
pub async fn public_user(
    State(state): State<AppState>,
    _caller: Caller,
    Path((namespace, user_id)): Path<(String, String)>,
) -> ApiResult<Json<PublicUserResponseV3>> {
    state.iam.require_namespace(&namespace)?;
    let user = state
        .iam
        .user(&user_id)
        .filter(|u| u.namespace == namespace)
        .ok_or_else(|| ApiError::not_found(codes::USER_NOT_FOUND, "user not found"))?;
    Ok(Json(PublicUserResponseV3 {
        auth_type: "EMAILPASSWD".into(),
        created_at: user.created_at.clone(),
        display_name: user.display_name.clone(),
        email_verified: true,
        enabled: user.enabled,
        last_date_of_birth_changed_time: user.created_at.clone(),
        last_enabled_changed_time: user.created_at.clone(),
        namespace_roles: user
            .roles
            .iter()
            .map(|role_id| NamespaceRole {
                namespace: user.namespace.clone(),
                role_id: role_id.clone(),
            })
            .collect(),
        namespace: user.namespace,
        roles: user.roles,
        unique_display_name: user.display_name,
        user_id: user.user_id,
        user_name: user.username,
        ..PublicUserResponseV3::default()
    }))
}

/// `DELETE /iam/v3/admin/namespaces/{namespace}/users/{userId}/information`: needs
/// `ADMIN:NAMESPACE:{namespace}:INFORMATION:USER:{userId}` DELETE (the spec's
/// `AdminDeleteUserInformationV3`).
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.iam.require_namespace(&namespace)?;
    caller.require(
        &format!("ADMIN:NAMESPACE:{namespace}:INFORMATION:USER:{user_id}"),
        action::DELETE,
    )?;
    state.iam.delete_user(&namespace, &user_id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rule() {
        assert!(validate_password(crate::seed::builtin::PLAYER1.1).is_ok());
        assert!(validate_password("short1A").is_err());
        assert!(validate_password("alllowercase").is_err());
        assert!(
            validate_password("Paaass1word").is_err(),
            "three equal characters in a row"
        );
        assert!(validate_password(&random_password()).is_ok());
    }

    #[test]
    fn username_rule() {
        assert!(validate_username("player_1.x").is_ok());
        assert!(validate_username("ab").is_err());
        assert!(validate_username("has space").is_err());
    }
}
