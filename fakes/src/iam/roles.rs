//! Role and client look-ups the validator SDKs make: legacy `/iam/roles/{id}` (PascalCase),
//! `/iam/v3/admin/roles/{id}`, namespace role overrides and client info.

use accelbyte::models::error::codes;
use accelbyte::models::iam::{
    PermissionPascal, RoleOverridePermissions, RoleResponseLegacy, RoleResponseV3,
};
use accelbyte::permission::action;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::iam::store::RoleRecord;
use crate::state::AppState;

fn find_role(state: &AppState, role_id: &str) -> ApiResult<RoleRecord> {
    state
        .iam
        .role(role_id)
        .ok_or_else(|| ApiError::not_found(codes::ROLE_NOT_FOUND, "role not found"))
}

/// `GET /iam/roles/{roleId}` (iam-python-sdk ≤ 1.3.3). Any valid token may read roles.
pub async fn role_legacy(
    State(state): State<AppState>,
    _caller: Caller,
    Path(role_id): Path<String>,
) -> ApiResult<Json<RoleResponseLegacy>> {
    let role = find_role(&state, &role_id)?;
    Ok(Json(RoleResponseLegacy {
        role_id: role.id,
        role_name: role.name,
        is_wildcard: false,
        permissions: role
            .permissions
            .iter()
            .map(PermissionPascal::from)
            .collect(),
    }))
}

/// `GET /iam/v3/admin/roles/{roleId}`: needs `ROLE` READ.
pub async fn role_v3(
    State(state): State<AppState>,
    caller: Caller,
    Path(role_id): Path<String>,
) -> ApiResult<Json<RoleResponseV3>> {
    caller.require("ROLE", action::READ)?;
    let role = find_role(&state, &role_id)?;
    Ok(Json(RoleResponseV3 {
        admin_role: role.admin,
        is_wildcard: false,
        permissions: role.permissions,
        role_id: role.id,
        role_name: role.name,
    }))
}

/// `GET /iam/v3/admin/namespaces/{namespace}/roleoverride/{roleId}/permissions`: the role's
/// permissions with placeholders left in (validators substitute them).
pub async fn role_override(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, role_id)): Path<(String, String)>,
) -> ApiResult<Json<RoleOverridePermissions>> {
    state.iam.require_namespace(&namespace)?;
    caller.require("ROLE", action::READ)?;
    let role = find_role(&state, &role_id)?;
    Ok(Json(RoleOverridePermissions {
        permissions: role
            .permissions
            .iter()
            .map(PermissionPascal::from)
            .collect(),
    }))
}

/// `GET /iam/v3/admin/namespaces/{namespace}/clients/{clientId}` (audience validation).
pub async fn client_info(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, client_id)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    state.iam.require_namespace(&namespace)?;
    caller.require(&format!("ADMIN:NAMESPACE:{namespace}:CLIENT"), action::READ)?;
    let client = state
        .iam
        .client(&client_id)
        .filter(|c| c.namespace == namespace)
        .ok_or_else(|| ApiError::not_found(codes::VALIDATION_ERROR, "client not found"))?;
    Ok(Json(json!({
        "clientId": client.id,
        "clientName": client.name,
        "namespace": client.namespace,
        "redirectUri": client.redirect_uri,
        "baseUri": "",
        "oauthClientType": if client.secret.is_some() { "Confidential" } else { "Public" },
        "clientPermissions": client.permissions,
    })))
}
