//! IAM's state and rules: clients, roles, users, the OAuth login flow, token issue, verification
//! and revocation. Routes in [`super::oauth`] and [`super::users`] are thin wrappers over this.
//!
//! One `Mutex` guards the data: every operation is a few map look-ups and no `.await` happens
//! under the lock. Token signing (the expensive part) runs after the lock is released.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accelbyte::bloom::BloomFilter;
use accelbyte::models::error::codes;
use accelbyte::models::iam::{
    Ban, JwtBan, JwtClaims, NamespaceRole, PermissionPascal, PermissionV3, RevocationList,
    RevokedUser, TokenResponseV3,
};
use accelbyte::permission::{self, Permission};
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use rand::Rng;

use super::verified::{self, VerifiedCache};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::keys::{KeyRing, TokenError};
use crate::seed::{Seed, SeedPermission};

/// The scope AGS grants when none is asked for.
pub const DEFAULT_SCOPE: &str = "commerce account social publishing analytics";
/// How long a `request_id` from authorize and a `code` from authenticate stay usable.
const LOGIN_STEP_TTL: Duration = Duration::from_secs(600);
/// Clock skew tolerated when checking `exp`.
const LEEWAY_S: u64 = 0;

/// A registered OAuth client.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClientRecord {
    pub id: String,
    /// `None` for a public client.
    pub secret: Option<String>,
    pub namespace: String,
    pub name: String,
    pub redirect_uri: String,
    pub permissions: Vec<PermissionV3>,
    /// When the seed was applied (RFC 3339): the client's `createdAt` and `modifiedAt`.
    pub created_at: String,
}

/// A role; its permissions may hold `{namespace}` and `{userId}` placeholders.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    pub admin: bool,
    pub permissions: Vec<PermissionV3>,
}

/// A user account.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UserRecord {
    pub user_id: String,
    pub username: String,
    pub password: String,
    pub email: String,
    pub namespace: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub country: String,
    pub date_of_birth: String,
    pub created_at: String,
    pub enabled: bool,
    /// Bans as AGS records them; those in force go into the user's tokens.
    pub bans: Vec<Ban>,
}

impl UserRecord {
    /// The bans in force now: enabled and ending in the future (an unreadable end date counts
    /// as in force).
    pub fn bans_in_force(&self, now: DateTime<Utc>) -> Vec<Ban> {
        self.bans
            .iter()
            .filter(|b| b.enabled)
            .filter(|b| DateTime::parse_from_rfc3339(&b.end_date).map_or(true, |end| end > now))
            .cloned()
            .collect()
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct AuthRequest {
    client_id: String,
    challenge: Option<(String, String)>,
    scope: String,
    #[serde(with = "crate::durable::wallclock::instant")]
    created: Instant,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct AuthCode {
    client_id: String,
    user_id: String,
    challenge: Option<(String, String)>,
    scope: String,
    #[serde(with = "crate::durable::wallclock::instant")]
    created: Instant,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RefreshGrant {
    client_id: String,
    user_id: Option<String>,
    scope: String,
    #[serde(with = "crate::durable::wallclock::instant")]
    expires: Instant,
}

/// Token lifetimes; fault injection may shorten them at run time.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct TokenLifetimes {
    pub access: Duration,
    pub refresh: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access: Duration::from_secs(3600),
            refresh: Duration::from_secs(86_400),
        }
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct IamData {
    namespaces: BTreeSet<String>,
    clients: HashMap<String, ClientRecord>,
    roles: HashMap<String, RoleRecord>,
    default_user_roles: Vec<String>,
    users: HashMap<String, UserRecord>,
    /// Lower-cased username and email → user id.
    logins: HashMap<String, String>,
    auth_requests: HashMap<String, AuthRequest>,
    auth_codes: HashMap<String, AuthCode>,
    refresh_grants: HashMap<String, RefreshGrant>,
    revoked_tokens: HashSet<String>,
    bloom: BloomFilter,
    revoked_users: HashMap<String, DateTime<Utc>>,
    lifetimes: TokenLifetimes,
    /// The `iss` claim of every token.
    issuer: String,
    /// When [`prune_login_steps`] last swept.
    #[serde(skip)]
    pruned_at: Option<Instant>,
}

/// IAM: owns the key ring and all identity data.
#[derive(Debug)]
pub struct IamStore {
    keys: Arc<KeyRing>,
    data: Mutex<IamData>,
    /// Tokens whose signature was already verified, with their claims (see [`verified`]).
    verified: Mutex<VerifiedCache>,
}

/// Bloom filter sizing: grows (rebuilt from the exact set) when revocations outnumber it.
const BLOOM_INITIAL_CAPACITY: usize = 1024;
const BLOOM_FALSE_POSITIVE_RATE: f64 = 1e-4;
/// A user id that is always on the revoked-users list: old validators crash on an empty list.
const PLACEHOLDER_REVOKED_USER: &str = "00000000000000000000000000000000";

fn now_rfc3339_nanos(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A random lower-case hex id of 32 characters (AGS's id format).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn new_secret() -> String {
    let bytes: [u8; 24] = rand::thread_rng().r#gen();
    hex::encode(bytes)
}

fn to_v3(p: &SeedPermission, namespace: &str) -> PermissionV3 {
    PermissionV3 {
        resource: permission::substitute(&p.resource, &[("namespace", namespace)]),
        action: p.action,
        sched_action: None,
        sched_cron: None,
        sched_range: None,
    }
}

fn bearer_error(e: TokenError) -> ApiError {
    ApiError::unauthorized(e.to_string())
}

impl IamStore {
    pub fn new(keys: Arc<KeyRing>, seed: &Seed) -> Self {
        let store = Self {
            keys,
            data: Mutex::new(IamData::empty(TokenLifetimes::default())),
            verified: Mutex::new(VerifiedCache::default()),
        };
        store.reset(seed);
        store
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The `iss` claim tokens carry.
    pub fn issuer(&self) -> String {
        self.data.lock().issuer.clone()
    }

    /// Forgets everything and applies `seed` again (tokens already issued stop validating only
    /// if their user no longer exists; signatures stay valid).
    pub fn reset(&self, seed: &Seed) {
        let mut d = IamData::empty(self.data.lock().lifetimes);
        d.namespaces = seed.namespaces.iter().cloned().collect();
        d.issuer = seed.issuer.clone();
        let seeded_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for c in &seed.clients {
            d.clients.insert(
                c.id.clone(),
                ClientRecord {
                    id: c.id.clone(),
                    secret: c.secret.clone(),
                    namespace: c.namespace.clone(),
                    name: if c.name.is_empty() {
                        c.id.clone()
                    } else {
                        c.name.clone()
                    },
                    redirect_uri: c.redirect_uri.clone(),
                    permissions: c
                        .permissions
                        .iter()
                        .map(|p| to_v3(p, &c.namespace))
                        .collect(),
                    created_at: seeded_at.clone(),
                },
            );
        }
        for r in &seed.roles {
            let permissions = r
                .permissions
                .iter()
                .map(|p| PermissionV3 {
                    resource: p.resource.clone(),
                    action: p.action,
                    sched_action: None,
                    sched_cron: None,
                    sched_range: None,
                })
                .collect();
            d.roles.insert(
                r.id.clone(),
                RoleRecord {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    admin: r.admin,
                    permissions,
                },
            );
        }
        d.default_user_roles = seed.default_user_roles.clone();
        d.revoked_users.insert(
            PLACEHOLDER_REVOKED_USER.to_owned(),
            DateTime::<Utc>::from_timestamp(1_600_000_000, 123_456_789).unwrap_or_default(),
        );
        for u in &seed.users {
            let roles = if u.roles.is_empty() {
                d.default_user_roles.clone()
            } else {
                u.roles.clone()
            };
            let user = UserRecord {
                user_id: u.user_id.clone().unwrap_or_else(new_id),
                username: u.username.clone(),
                password: u.password.clone(),
                email: u
                    .email
                    .clone()
                    .unwrap_or_else(|| format!("{}@example.com", u.username)),
                namespace: u.namespace.clone(),
                display_name: u.display_name.clone().unwrap_or_else(|| u.username.clone()),
                roles,
                country: "US".into(),
                date_of_birth: "1990-01-01".into(),
                created_at: now_rfc3339_nanos(Utc::now()),
                enabled: true,
                bans: u
                    .bans
                    .iter()
                    .map(|b| Ban {
                        ban: b.ban.clone(),
                        enabled: b.enabled,
                        end_date: b.end_date.clone(),
                        targeted_namespace: b.targeted_namespace.clone(),
                        disabled_date: None,
                    })
                    .collect(),
            };
            insert_user(&mut d, user);
        }
        *self.data.lock() = d;
    }

    /// Writes the identity data as JSON (saved state).
    pub fn save_to(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &*self.data.lock())
    }

    /// Replaces the identity data with a saved one (the verified-token cache starts empty).
    pub fn restore_from(&self, saved: serde_json::Value) -> serde_json::Result<()> {
        let data: IamData = serde_json::from_value(saved)?;
        *self.data.lock() = data;
        self.verified.lock().clear();
        Ok(())
    }

    pub fn set_lifetimes(&self, lifetimes: TokenLifetimes) {
        self.data.lock().lifetimes = lifetimes;
    }

    pub fn lifetimes(&self) -> TokenLifetimes {
        self.data.lock().lifetimes
    }

    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.data.lock().namespaces.contains(namespace)
    }

    /// 404 unless `namespace` was seeded.
    pub fn require_namespace(&self, namespace: &str) -> ApiResult<()> {
        if self.has_namespace(namespace) {
            Ok(())
        } else {
            Err(ApiError::not_found(
                codes::VALIDATION_ERROR,
                format!("namespace {namespace} not found"),
            ))
        }
    }

    // ---- credentials -------------------------------------------------------------------

    /// Checks Basic credentials. Public clients must send an empty secret.
    pub fn authenticate_client(&self, id: &str, secret: &str) -> ApiResult<ClientRecord> {
        let d = self.data.lock();
        let client = d.clients.get(id).filter(|c| match &c.secret {
            Some(s) => s == secret,
            None => secret.is_empty(),
        });
        client.cloned().ok_or_else(|| {
            ApiError::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            )
        })
    }

    /// Verifies a Bearer token and works out the caller's effective permissions.
    pub fn authenticate(&self, token: &str) -> ApiResult<Caller> {
        let claims = self.verified_claims(token)?;
        let d = self.data.lock();
        if is_revoked(&d, token, &claims) {
            return Err(ApiError::unauthorized("token was revoked"));
        }
        if let Some(uid) = &claims.sub {
            match d.users.get(uid) {
                Some(u) if u.enabled => {}
                _ => return Err(ApiError::unauthorized("user no longer exists")),
            }
        }
        let mut permissions: Vec<Permission> = claims
            .permissions
            .iter()
            .map(|p| Permission::new(&p.resource, p.action))
            .collect();
        permissions.extend(
            role_permissions(&d, &claims)
                .into_iter()
                .map(|p| Permission::new(&p.resource, p.action)),
        );
        Ok(Caller {
            token: token.to_owned(),
            claims,
            permissions,
        })
    }

    /// Signature and expiry check, remembered per token: an RS256 verification costs tens of
    /// microseconds and every Bearer call repeats it, while a look-up costs well under one. Keys
    /// are only ever added (rotation keeps old ones), so a verified signature stays verified;
    /// expiry is re-checked on every hit and revocation is checked by the caller every time.
    fn verified_claims(&self, token: &str) -> ApiResult<JwtClaims> {
        let now = Utc::now().timestamp();
        let digest = verified::token_digest(token);
        let cached = self.verified.lock().get(&digest);
        if let Some(entry) = cached {
            if entry.exp() + LEEWAY_S as i64 > now {
                return Ok(entry.claims());
            }
            return Err(bearer_error(TokenError::Expired));
        }
        let claims: JwtClaims = self.keys.verify(token, LEEWAY_S).map_err(bearer_error)?;
        self.verified.lock().insert(digest, &claims);
        Ok(claims)
    }

    // ---- the PKCE login flow -----------------------------------------------------------

    /// `GET /iam/v3/oauth/authorize`: remembers the request and returns its `request_id`.
    pub fn authorize(
        &self,
        client_id: &str,
        challenge: Option<(String, String)>,
        scope: Option<String>,
    ) -> ApiResult<String> {
        let mut d = self.data.lock();
        if !d.clients.contains_key(client_id) {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "unknown client_id",
            ));
        }
        prune_login_steps(&mut d);
        let request_id = new_id();
        d.auth_requests.insert(
            request_id.clone(),
            AuthRequest {
                client_id: client_id.to_owned(),
                challenge,
                scope: scope.unwrap_or_else(|| DEFAULT_SCOPE.to_owned()),
                created: Instant::now(),
            },
        );
        Ok(request_id)
    }

    /// `POST /iam/v3/authenticate`: checks the password and turns the request into a `code`.
    pub fn authenticate_user(
        &self,
        request_id: &str,
        user_name: &str,
        password: &str,
    ) -> ApiResult<String> {
        let mut d = self.data.lock();
        let request = d
            .auth_requests
            .remove(request_id)
            .filter(|r| r.created.elapsed() < LOGIN_STEP_TTL)
            .ok_or_else(|| {
                ApiError::oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "request_id is unknown or expired",
                )
            })?;
        let client_ns = d
            .clients
            .get(&request.client_id)
            .map(|c| c.namespace.clone())
            .unwrap_or_default();
        let user = check_password(&d, user_name, password, &client_ns)?;
        let code = new_id();
        d.auth_codes.insert(
            code.clone(),
            AuthCode {
                client_id: request.client_id,
                user_id: user.user_id.clone(),
                challenge: request.challenge,
                scope: request.scope,
                created: Instant::now(),
            },
        );
        Ok(code)
    }

    // ---- grants ------------------------------------------------------------------------

    /// `grant_type=authorization_code`: single-use code, PKCE verifier checked (S256 or plain).
    pub fn grant_authorization_code(
        &self,
        client: &ClientRecord,
        code: &str,
        verifier: Option<&str>,
    ) -> ApiResult<TokenResponseV3> {
        let (user, scope) = {
            let mut d = self.data.lock();
            let grant = d
                .auth_codes
                .remove(code)
                .filter(|c| c.created.elapsed() < LOGIN_STEP_TTL);
            let grant = grant
                .ok_or_else(|| invalid_grant("authorization code is unknown, used or expired"))?;
            if grant.client_id != client.id {
                return Err(invalid_grant(
                    "authorization code was issued to another client",
                ));
            }
            if let Some((challenge, method)) = &grant.challenge {
                let verifier =
                    verifier.ok_or_else(|| invalid_grant("code_verifier is required"))?;
                if !pkce_matches(challenge, method, verifier) {
                    return Err(invalid_grant("code_verifier does not match code_challenge"));
                }
            }
            let user = d
                .users
                .get(&grant.user_id)
                .cloned()
                .ok_or_else(|| invalid_grant("user no longer exists"))?;
            (user, grant.scope)
        };
        self.issue_user_token(client, &user, &scope)
    }

    /// `grant_type=password`.
    pub fn grant_password(
        &self,
        client: &ClientRecord,
        username: &str,
        password: &str,
    ) -> ApiResult<TokenResponseV3> {
        let user = {
            let d = self.data.lock();
            check_password(&d, username, password, &client.namespace).map_err(|e| ApiError {
                oauth_error: "invalid_grant",
                ..e
            })?
        };
        self.issue_user_token(client, &user, DEFAULT_SCOPE)
    }

    /// `grant_type=client_credentials`: a client token (no `sub`). Public clients cannot.
    pub fn grant_client_credentials(&self, client: &ClientRecord) -> ApiResult<TokenResponseV3> {
        if client.secret.is_none() {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "a public client cannot use client_credentials",
            ));
        }
        let lifetimes = self.lifetimes();
        let now = Utc::now().timestamp();
        let claims = JwtClaims {
            iss: Some(self.issuer()),
            jti: Some(new_id()),
            iat: now,
            exp: now + lifetimes.access.as_secs() as i64,
            namespace: client.namespace.clone(),
            permissions: client
                .permissions
                .iter()
                .map(PermissionPascal::from)
                .collect(),
            scope: DEFAULT_SCOPE.to_owned(),
            client_id: client.id.clone(),
            ..JwtClaims::default()
        };
        let access_token = self
            .keys
            .sign(&claims)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(TokenResponseV3 {
            access_token,
            expires_in: lifetimes.access.as_secs() as i64,
            namespace: client.namespace.clone(),
            permissions: client.permissions.clone(),
            scope: DEFAULT_SCOPE.to_owned(),
            token_type: "Bearer".into(),
            ..TokenResponseV3::default()
        })
    }

    /// `grant_type=refresh_token`: the refresh token is single use and rotated.
    pub fn grant_refresh(
        &self,
        client: &ClientRecord,
        refresh_token: &str,
    ) -> ApiResult<TokenResponseV3> {
        let (user, scope) = {
            let mut d = self.data.lock();
            let grant = d
                .refresh_grants
                .remove(refresh_token)
                .filter(|g| g.expires > Instant::now());
            let grant =
                grant.ok_or_else(|| invalid_grant("refresh token is unknown, used or expired"))?;
            if grant.client_id != client.id {
                return Err(invalid_grant("refresh token was issued to another client"));
            }
            let user_id = grant
                .user_id
                .ok_or_else(|| invalid_grant("not a user refresh token"))?;
            let user = d
                .users
                .get(&user_id)
                .cloned()
                .ok_or_else(|| invalid_grant("user no longer exists"))?;
            (user, grant.scope)
        };
        self.issue_user_token(client, &user, &scope)
    }

    fn issue_user_token(
        &self,
        client: &ClientRecord,
        user: &UserRecord,
        scope: &str,
    ) -> ApiResult<TokenResponseV3> {
        let lifetimes = self.lifetimes();
        let permissions = {
            let d = self.data.lock();
            user_permissions(&d, user)
        };
        let namespace_roles: Vec<NamespaceRole> = user
            .roles
            .iter()
            .map(|r| NamespaceRole {
                role_id: r.clone(),
                namespace: user.namespace.clone(),
            })
            .collect();
        let bans = user.bans_in_force(Utc::now());
        let now = Utc::now().timestamp();
        let claims = JwtClaims {
            sub: Some(user.user_id.clone()),
            iss: Some(self.issuer()),
            jti: Some(new_id()),
            iat: now,
            exp: now + lifetimes.access.as_secs() as i64,
            namespace: user.namespace.clone(),
            display_name: user.display_name.clone(),
            roles: user.roles.clone(),
            namespace_roles: namespace_roles.clone(),
            permissions: permissions.iter().map(PermissionPascal::from).collect(),
            bans: Some(
                bans.iter()
                    .map(|b| JwtBan {
                        ban: b.ban.clone(),
                        end_date: b.end_date.clone(),
                        enabled: b.enabled,
                        targeted_namespace: b.targeted_namespace.clone(),
                    })
                    .collect(),
            ),
            jflgs: 1,
            scope: scope.to_owned(),
            country: user.country.clone(),
            client_id: client.id.clone(),
            is_comply: true,
            ..JwtClaims::default()
        };
        let access_token = self
            .keys
            .sign(&claims)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let refresh_token = new_secret();
        self.data.lock().refresh_grants.insert(
            refresh_token.clone(),
            RefreshGrant {
                client_id: client.id.clone(),
                user_id: Some(user.user_id.clone()),
                scope: scope.to_owned(),
                expires: Instant::now() + lifetimes.refresh,
            },
        );
        Ok(TokenResponseV3 {
            access_token,
            bans,
            display_name: user.display_name.clone(),
            expires_in: lifetimes.access.as_secs() as i64,
            is_comply: true,
            jflgs: 1,
            namespace: user.namespace.clone(),
            namespace_roles,
            permissions,
            refresh_expires_in: lifetimes.refresh.as_secs() as i64,
            refresh_token,
            roles: user.roles.clone(),
            scope: scope.to_owned(),
            token_type: "Bearer".into(),
            unique_display_name: user.display_name.clone(),
            user_id: user.user_id.clone(),
            ..TokenResponseV3::default()
        })
    }

    /// `POST /iam/v3/oauth/verify`: the token's details, or `None` when it is not valid.
    pub fn verify(&self, token: &str) -> Option<TokenResponseV3> {
        let caller = self.authenticate(token).ok()?;
        let c = caller.claims;
        let now = Utc::now().timestamp();
        Some(TokenResponseV3 {
            access_token: token.to_owned(),
            display_name: c.display_name.clone(),
            expires_in: (c.exp - now).max(1),
            is_comply: c.is_comply,
            jflgs: c.jflgs,
            namespace: c.namespace,
            namespace_roles: c.namespace_roles,
            permissions: c.permissions.iter().map(PermissionV3::from).collect(),
            roles: c.roles,
            scope: c.scope,
            token_type: "Bearer".into(),
            unique_display_name: c.display_name.clone(),
            user_id: c.sub.unwrap_or_default(),
            ..TokenResponseV3::default()
        })
    }

    // ---- revocation --------------------------------------------------------------------

    /// `POST /iam/v3/oauth/revoke` for `client_id`: revokes the token only if it was issued to
    /// that client (RFC 7009 §2.1); a token of another client is refused with
    /// `unauthorized_client`, one that is not a valid token is a no-op (§2.2).
    pub fn revoke_client_token(&self, client_id: &str, token: &str) -> ApiResult<()> {
        let owner = {
            let d = self.data.lock();
            d.refresh_grants.get(token).map(|g| g.client_id.clone())
        };
        let owner = match owner {
            Some(owner) => Some(owner),
            None => self.verified_claims(token).ok().map(|c| c.client_id),
        };
        match owner {
            None => Ok(()),
            Some(owner) if owner == client_id => {
                self.revoke_token(token);
                Ok(())
            }
            Some(_) => Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "the token was not issued to this client",
            )),
        }
    }

    /// Revokes one access token (it enters the bloom filter) or one refresh token.
    pub fn revoke_token(&self, token: &str) {
        let mut d = self.data.lock();
        if d.refresh_grants.remove(token).is_some() {
            return;
        }
        if d.revoked_tokens.insert(token.to_owned()) {
            d.bloom.insert(token);
            if d.revoked_tokens.len() > d.bloom_capacity() {
                let capacity = d.revoked_tokens.len() * 2;
                let mut bloom = BloomFilter::with_capacity(capacity, BLOOM_FALSE_POSITIVE_RATE);
                for t in &d.revoked_tokens {
                    bloom.insert(t);
                }
                d.bloom = bloom;
            }
        }
    }

    /// Revokes every token of a user issued up to now, and their refresh tokens.
    pub fn revoke_user(&self, user_id: &str) -> ApiResult<()> {
        let mut d = self.data.lock();
        if !d.users.contains_key(user_id) {
            return Err(ApiError::not_found(codes::USER_NOT_FOUND, "user not found"));
        }
        d.revoked_users.insert(user_id.to_owned(), Utc::now());
        d.refresh_grants
            .retain(|_, g| g.user_id.as_deref() != Some(user_id));
        Ok(())
    }

    /// `GET /iam/v3/oauth/revocationlist`.
    pub fn revocation_list(&self) -> RevocationList {
        let d = self.data.lock();
        RevocationList {
            revoked_tokens: d.bloom.clone(),
            revoked_users: d
                .revoked_users
                .iter()
                .map(|(id, at)| RevokedUser {
                    id: id.clone(),
                    revoked_at: now_rfc3339_nanos(*at),
                })
                .collect(),
        }
    }

    // ---- users and roles ---------------------------------------------------------------

    /// Creates a user; 409 (10177 / 10133) when the username or email is taken.
    pub fn create_user(&self, mut user: UserRecord) -> ApiResult<UserRecord> {
        let mut d = self.data.lock();
        if !d.namespaces.contains(&user.namespace) {
            return Err(ApiError::not_found(
                codes::VALIDATION_ERROR,
                format!("namespace {} not found", user.namespace),
            ));
        }
        if !user.username.is_empty() && d.logins.contains_key(&user.username.to_lowercase()) {
            return Err(ApiError::conflict(
                codes::USERNAME_ALREADY_USED,
                "username already used",
            ));
        }
        if d.logins.contains_key(&user.email.to_lowercase()) {
            return Err(ApiError::conflict(
                codes::EMAIL_ALREADY_USED,
                "email already used",
            ));
        }
        if user.roles.is_empty() {
            user.roles = d.default_user_roles.clone();
        }
        insert_user(&mut d, user.clone());
        Ok(user)
    }

    pub fn user(&self, user_id: &str) -> Option<UserRecord> {
        self.data.lock().users.get(user_id).cloned()
    }

    pub fn user_permissions(&self, user: &UserRecord) -> Vec<PermissionV3> {
        user_permissions(&self.data.lock(), user)
    }

    /// Deletes a user and everything that would let them log in.
    pub fn delete_user(&self, namespace: &str, user_id: &str) -> ApiResult<()> {
        let mut d = self.data.lock();
        match d.users.get(user_id) {
            Some(u) if u.namespace == namespace => {}
            _ => return Err(ApiError::not_found(codes::USER_NOT_FOUND, "user not found")),
        }
        if let Some(u) = d.users.remove(user_id) {
            d.logins.remove(&u.username.to_lowercase());
            d.logins.remove(&u.email.to_lowercase());
        }
        d.refresh_grants
            .retain(|_, g| g.user_id.as_deref() != Some(user_id));
        Ok(())
    }

    pub fn role(&self, role_id: &str) -> Option<RoleRecord> {
        self.data.lock().roles.get(role_id).cloned()
    }

    pub fn client(&self, client_id: &str) -> Option<ClientRecord> {
        self.data.lock().clients.get(client_id).cloned()
    }

    pub fn user_count(&self) -> usize {
        self.data.lock().users.len()
    }
}

impl IamData {
    fn empty(lifetimes: TokenLifetimes) -> Self {
        Self {
            namespaces: BTreeSet::new(),
            clients: HashMap::new(),
            roles: HashMap::new(),
            default_user_roles: Vec::new(),
            users: HashMap::new(),
            logins: HashMap::new(),
            auth_requests: HashMap::new(),
            auth_codes: HashMap::new(),
            refresh_grants: HashMap::new(),
            revoked_tokens: HashSet::new(),
            bloom: BloomFilter::with_capacity(BLOOM_INITIAL_CAPACITY, BLOOM_FALSE_POSITIVE_RATE),
            revoked_users: HashMap::new(),
            lifetimes,
            issuer: crate::seed::DEFAULT_ISSUER.to_owned(),
            pruned_at: None,
        }
    }

    fn bloom_capacity(&self) -> usize {
        // m = -n ln p / ln2²  ⇒  n = m ln2² / -ln p
        let m = self.bloom.m as f64;
        (m * std::f64::consts::LN_2.powi(2) / -BLOOM_FALSE_POSITIVE_RATE.ln()) as usize
    }
}

fn insert_user(d: &mut IamData, user: UserRecord) {
    if !user.username.is_empty() {
        d.logins
            .insert(user.username.to_lowercase(), user.user_id.clone());
    }
    d.logins
        .insert(user.email.to_lowercase(), user.user_id.clone());
    d.users.insert(user.user_id.clone(), user);
}

fn invalid_grant(description: &str) -> ApiError {
    ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn check_password(
    d: &IamData,
    login: &str,
    password: &str,
    client_namespace: &str,
) -> ApiResult<UserRecord> {
    let user = d
        .logins
        .get(&login.to_lowercase())
        .and_then(|id| d.users.get(id))
        .filter(|u| u.password == password)
        .ok_or_else(|| {
            ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "invalid username or password",
            )
        })?;
    if !user.enabled {
        return Err(ApiError::oauth(
            StatusCode::FORBIDDEN,
            "access_denied",
            "user is disabled",
        ));
    }
    if !client_namespace.is_empty() && user.namespace != client_namespace {
        return Err(ApiError::oauth(
            StatusCode::FORBIDDEN,
            "access_denied",
            "user belongs to another namespace",
        ));
    }
    Ok(user.clone())
}

fn pkce_matches(challenge: &str, method: &str, verifier: &str) -> bool {
    use base64::Engine;
    use sha2::Digest;
    if method.eq_ignore_ascii_case("S256") {
        let digest = sha2::Sha256::digest(verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == challenge
    } else {
        verifier == challenge
    }
}

/// How often [`prune_login_steps`] sweeps. A sweep walks every pending login step and refresh
/// grant, so sweeping on every `authorize` made each login cost grow with the logins before it
/// (at 100,000 players, a walk of 100,000 grants per login). Expired entries met between sweeps
/// are refused where they are used, so the sweep only bounds memory.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

fn prune_login_steps(d: &mut IamData) {
    let now = Instant::now();
    if d.pruned_at
        .is_some_and(|at| now.duration_since(at) < PRUNE_EVERY)
    {
        return;
    }
    d.pruned_at = Some(now);
    d.auth_requests
        .retain(|_, r| now.duration_since(r.created) < LOGIN_STEP_TTL);
    d.auth_codes
        .retain(|_, c| now.duration_since(c.created) < LOGIN_STEP_TTL);
    d.refresh_grants.retain(|_, g| g.expires > now);
}

/// A user's role permissions with `{namespace}` and `{userId}` filled in: what goes into their
/// token, so validators need no role look-up.
fn user_permissions(d: &IamData, user: &UserRecord) -> Vec<PermissionV3> {
    let vars = [
        ("namespace", user.namespace.as_str()),
        ("userId", user.user_id.as_str()),
    ];
    user.roles
        .iter()
        .filter_map(|r| d.roles.get(r))
        .flat_map(|role| role.permissions.iter())
        .map(|p| PermissionV3 {
            resource: permission::substitute(&p.resource, &vars),
            ..p.clone()
        })
        .collect()
}

/// Permissions granted through the token's role claims (as the validator SDKs resolve them).
fn role_permissions(d: &IamData, claims: &JwtClaims) -> Vec<PermissionV3> {
    let user_id = claims.sub.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for nr in &claims.namespace_roles {
        if let Some(role) = d.roles.get(&nr.role_id) {
            let vars = [("namespace", nr.namespace.as_str()), ("userId", user_id)];
            out.extend(role.permissions.iter().map(|p| PermissionV3 {
                resource: permission::substitute(&p.resource, &vars),
                ..p.clone()
            }));
        }
    }
    for r in &claims.roles {
        if let Some(role) = d.roles.get(r) {
            let vars = [
                ("namespace", claims.namespace.as_str()),
                ("userId", user_id),
            ];
            out.extend(role.permissions.iter().map(|p| PermissionV3 {
                resource: permission::substitute(&p.resource, &vars),
                ..p.clone()
            }));
        }
    }
    out
}

fn is_revoked(d: &IamData, token: &str, claims: &JwtClaims) -> bool {
    if d.revoked_tokens.contains(token) {
        return true;
    }
    claims
        .sub
        .as_ref()
        .and_then(|uid| d.revoked_users.get(uid))
        .is_some_and(|at| claims.iat <= at.timestamp())
}
