//! IAM wire models: token responses, JWT claims, JWKS, the revocation list, roles and users.
//!
//! Note the two casings of a permission: token responses (v3) use lowercase `resource`/`action`,
//! while the JWT's own claims and the legacy v1 endpoints use PascalCase `Resource`/`Action`.

use serde::{Deserialize, Serialize};

use crate::bloom::BloomFilter;

/// A permission as token responses and v3 role endpoints carry it (lowercase keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionV3 {
    pub resource: String,
    pub action: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_action: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_range: Option<Vec<String>>,
}

/// A permission as the JWT claims, legacy v1 roles and role overrides carry it (PascalCase keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionPascal {
    #[serde(rename = "Resource")]
    pub resource: String,
    #[serde(rename = "Action")]
    pub action: u32,
    #[serde(
        rename = "SchedAction",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sched_action: Option<u32>,
    #[serde(rename = "SchedCron", default, skip_serializing_if = "Option::is_none")]
    pub sched_cron: Option<String>,
    #[serde(
        rename = "SchedRange",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sched_range: Option<Vec<String>>,
}

impl From<&PermissionV3> for PermissionPascal {
    fn from(p: &PermissionV3) -> Self {
        Self {
            resource: p.resource.clone(),
            action: p.action,
            sched_action: p.sched_action,
            sched_cron: p.sched_cron.clone(),
            sched_range: p.sched_range.clone(),
        }
    }
}

impl From<&PermissionPascal> for PermissionV3 {
    fn from(p: &PermissionPascal) -> Self {
        Self {
            resource: p.resource.clone(),
            action: p.action,
            sched_action: p.sched_action,
            sched_cron: p.sched_cron.clone(),
            sched_range: p.sched_range.clone(),
        }
    }
}

/// A role granted within one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRole {
    pub role_id: String,
    pub namespace: String,
}

/// A ban as token responses carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ban {
    pub ban: String,
    pub enabled: bool,
    pub end_date: String,
    #[serde(default)]
    pub targeted_namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_date: Option<String>,
}

/// `oauthmodel.TokenResponseV3`: the answer of every `/iam/v3/oauth/token` grant and of verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TokenResponseV3 {
    pub access_token: String,
    pub bans: Vec<Ban>,
    pub display_name: String,
    pub expires_in: i64,
    pub is_comply: bool,
    pub jflgs: i64,
    pub namespace: String,
    pub namespace_roles: Vec<NamespaceRole>,
    pub permissions: Vec<PermissionV3>,
    pub platform_id: String,
    pub platform_user_id: String,
    pub refresh_expires_in: i64,
    pub refresh_token: String,
    pub roles: Vec<String>,
    pub scope: String,
    pub token_type: String,
    pub unique_display_name: String,
    pub user_id: String,
    pub xuid: String,
}

/// The legacy `/iam/oauth/token` and `/iam/oauth/verify` body: as v3, but PascalCase permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TokenResponseLegacy {
    pub access_token: String,
    pub bans: Vec<Ban>,
    pub display_name: String,
    pub expires_in: i64,
    pub is_comply: bool,
    pub jflgs: i64,
    pub namespace: String,
    pub namespace_roles: Vec<NamespaceRole>,
    pub permissions: Vec<PermissionPascal>,
    pub platform_id: String,
    pub platform_user_id: String,
    pub refresh_expires_in: i64,
    pub refresh_token: String,
    pub roles: Vec<String>,
    pub scope: String,
    pub token_type: String,
    pub user_id: String,
    pub xuid: String,
}

impl From<&TokenResponseV3> for TokenResponseLegacy {
    fn from(t: &TokenResponseV3) -> Self {
        Self {
            access_token: t.access_token.clone(),
            bans: t.bans.clone(),
            display_name: t.display_name.clone(),
            expires_in: t.expires_in,
            is_comply: t.is_comply,
            jflgs: t.jflgs,
            namespace: t.namespace.clone(),
            namespace_roles: t.namespace_roles.clone(),
            permissions: t.permissions.iter().map(PermissionPascal::from).collect(),
            platform_id: t.platform_id.clone(),
            platform_user_id: t.platform_user_id.clone(),
            refresh_expires_in: t.refresh_expires_in,
            refresh_token: t.refresh_token.clone(),
            roles: t.roles.clone(),
            scope: t.scope.clone(),
            token_type: t.token_type.clone(),
            user_id: t.user_id.clone(),
            xuid: t.xuid.clone(),
        }
    }
}

/// A ban as the JWT carries it (PascalCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtBan {
    #[serde(rename = "Ban")]
    pub ban: String,
    #[serde(rename = "EndDate")]
    pub end_date: String,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    #[serde(rename = "TargetedNamespace", default)]
    pub targeted_namespace: String,
}

/// The claims of an AGS access token (RS256). `sub` is absent for client tokens, and there is
/// deliberately no `aud`: older validators reject any non-empty audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JwtClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default)]
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub exp: i64,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub namespace_roles: Vec<NamespaceRole>,
    #[serde(default)]
    pub permissions: Vec<PermissionPascal>,
    #[serde(default)]
    pub bans: Option<Vec<JwtBan>>,
    #[serde(default)]
    pub jflgs: i64,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub is_comply: bool,
}

/// One RSA public key of the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub alg: String,
    #[serde(default, rename = "use")]
    pub use_: String,
    #[serde(default)]
    pub kid: String,
    #[serde(default)]
    pub n: String,
    #[serde(default)]
    pub e: String,
}

/// `GET /iam/v3/oauth/jwks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A user whose tokens issued at or before `revoked_at` are revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedUser {
    pub id: String,
    /// RFC 3339 UTC with at least three fractional digits and a `Z` (older validators parse
    /// exactly that).
    pub revoked_at: String,
}

/// `GET /iam/v3/oauth/revocationlist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    pub revoked_tokens: BloomFilter,
    pub revoked_users: Vec<RevokedUser>,
}

/// Legacy `GET /iam/roles/{roleId}`: PascalCase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleResponseLegacy {
    #[serde(rename = "RoleId")]
    pub role_id: String,
    #[serde(rename = "RoleName")]
    pub role_name: String,
    #[serde(rename = "IsWildcard")]
    pub is_wildcard: bool,
    #[serde(rename = "Permissions")]
    pub permissions: Vec<PermissionPascal>,
}

/// `GET /iam/v3/admin/roles/{roleId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleResponseV3 {
    pub admin_role: bool,
    pub is_wildcard: bool,
    pub permissions: Vec<PermissionV3>,
    pub role_id: String,
    pub role_name: String,
}

/// `GET /iam/v3/admin/namespaces/{ns}/roleoverride/{roleId}/permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleOverridePermissions {
    pub permissions: Vec<PermissionPascal>,
}

/// `POST /iam/v4/public/namespaces/{ns}/users` and `.../test_users` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserRequestV4 {
    pub auth_type: String,
    pub email_address: String,
    /// Required by `account.createUserRequestV4`.
    pub username: String,
    /// Optional in `account.createUserRequestV4` (a user may be created before choosing one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub country: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub date_of_birth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach_minimum_age: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// The 201 body of v4 user creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateUserResponseV4 {
    pub auth_type: String,
    pub country: String,
    pub date_of_birth: String,
    pub display_name: String,
    pub unique_display_name: String,
    pub email_address: String,
    pub namespace: String,
    pub user_id: String,
    pub username: String,
}

/// `POST /iam/v4/admin/namespaces/{ns}/test_users` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTestUsersRequest {
    pub count: u32,
    #[serde(default)]
    pub user_info: TestUserInfo,
}

/// Attributes every created test user shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TestUserInfo {
    pub country: String,
}

/// One created test user, password included (the only time it is visible).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct TestUser {
    pub user_id: String,
    pub username: String,
    pub password: String,
    pub email_address: String,
    pub display_name: String,
    pub unique_display_name: String,
    pub namespace: String,
    pub country: String,
    pub date_of_birth: String,
    pub auth_type: String,
    pub verified: bool,
}

/// The 201 body of admin test-user creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CreateTestUsersResponse {
    pub data: Vec<TestUser>,
}

/// `GET /iam/v3/public/users/me` (`model.UserResponseV3`, the fields an emulator can fill).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct UserResponseV3 {
    pub auth_type: String,
    pub bans: Vec<Ban>,
    pub country: String,
    pub created_at: String,
    pub date_of_birth: String,
    pub deletion_status: bool,
    pub display_name: String,
    pub email_address: String,
    pub email_verified: bool,
    pub enabled: bool,
    pub last_date_of_birth_changed_time: String,
    pub last_enabled_changed_time: String,
    pub namespace: String,
    pub namespace_roles: Vec<NamespaceRole>,
    pub permissions: Vec<PermissionV3>,
    pub phone_verified: bool,
    pub roles: Vec<String>,
    pub unique_display_name: String,
    pub user_id: String,
    pub user_name: String,
}

/// `GET /iam/v3/public/namespaces/{ns}/users/{userId}` (`model.PublicUserResponseV3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct PublicUserResponseV3 {
    pub auth_type: String,
    pub bans: Vec<Ban>,
    pub created_at: String,
    pub deletion_status: bool,
    pub display_name: String,
    pub email_verified: bool,
    pub enabled: bool,
    pub last_date_of_birth_changed_time: String,
    pub last_enabled_changed_time: String,
    pub namespace: String,
    pub namespace_roles: Vec<NamespaceRole>,
    pub permissions: Vec<PermissionV3>,
    pub phone_verified: bool,
    pub roles: Vec<String>,
    pub unique_display_name: String,
    pub user_id: String,
    pub user_name: String,
}

/// `GET /iam/v3/admin/namespaces/{ns}/clients/{clientId}` (`clientmodel.ClientV3Response`, its
/// required fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientV3Response {
    pub audiences: Vec<String>,
    pub base_uri: String,
    pub client_id: String,
    pub client_name: String,
    pub client_permissions: Vec<PermissionV3>,
    pub client_platform: String,
    pub created_at: String,
    pub description: String,
    pub modified_at: String,
    pub namespace: String,
    pub oauth_client_type: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub skip_login_queue: bool,
    pub two_factor_enabled: bool,
}
