//! Role and client look-ups the validator SDKs make: legacy `/iam/roles/{id}` (PascalCase),
//! `/iam/v3/admin/roles/{id}`, namespace role overrides and client info.

use accelbyte::models::error::codes;
use accelbyte::models::iam::{
    ClientV3Response, PermissionPascal, RoleOverridePermissions, RoleResponseLegacy, RoleResponseV3,
};
use accelbyte::permission::action;
use axum::Json;
use axum::extract::{Path, State};

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

/// `GET /iam/roles/{roleId}` (iam-python-sdk ≤ 1.3.3): needs `ROLE` READ (the spec's `GetRole`).
pub async fn role_legacy(
    State(state): State<AppState>,
    caller: Caller,
    Path(role_id): Path<String>,
) -> ApiResult<Json<RoleResponseLegacy>> {
    caller.require("ROLE", action::READ)?;
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

/// `GET /iam/v3/admin/roles/{roleId}`: needs `ADMIN:ROLE` READ (the spec's `AdminGetRoleV3`).
pub async fn role_v3(
    State(state): State<AppState>,
    caller: Caller,
    Path(role_id): Path<String>,
) -> ApiResult<Json<RoleResponseV3>> {
    caller.require("ADMIN:ROLE", action::READ)?;
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
/// permissions with placeholders left in (validators substitute them). Needs `ADMIN:ROLE` READ
/// (the spec's `AdminGetRoleNamespacePermissionV3`).
pub async fn role_override(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, role_id)): Path<(String, String)>,
) -> ApiResult<Json<RoleOverridePermissions>> {
    state.iam.require_namespace(&namespace)?;
    caller.require("ADMIN:ROLE", action::READ)?;
    let role = find_role(&state, &role_id)?;
    Ok(Json(RoleOverridePermissions {
        permissions: role
            .permissions
            .iter()
            .map(PermissionPascal::from)
            .collect(),
    }))
}

/// Scopes AGS gives a client by default.
const DEFAULT_CLIENT_SCOPES: [&str; 5] =
    ["commerce", "account", "social", "publishing", "analytics"];

/// `GET /iam/v3/admin/namespaces/{namespace}/clients/{clientId}` (audience validation): every
/// field `clientmodel.ClientV3Response` requires; 404 is 10365 "client not found".
pub async fn client_info(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, client_id)): Path<(String, String)>,
) -> ApiResult<Json<ClientV3Response>> {
    state.iam.require_namespace(&namespace)?;
    caller.require(&format!("ADMIN:NAMESPACE:{namespace}:CLIENT"), action::READ)?;
    let client = state
        .iam
        .client(&client_id)
        .filter(|c| c.namespace == namespace)
        .ok_or_else(|| ApiError::not_found(codes::CLIENT_NOT_FOUND, "client not found"))?;
    Ok(Json(ClientV3Response {
        audiences: Vec::new(),
        base_uri: String::new(),
        client_id: client.id,
        client_name: client.name,
        client_permissions: client.permissions,
        client_platform: String::new(),
        created_at: client.created_at.clone(),
        description: String::new(),
        modified_at: client.created_at,
        namespace: client.namespace,
        oauth_client_type: if client.secret.is_some() {
            "Confidential"
        } else {
            "Public"
        }
        .to_owned(),
        redirect_uri: client.redirect_uri,
        scopes: DEFAULT_CLIENT_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        skip_login_queue: false,
        two_factor_enabled: false,
    }))
}
