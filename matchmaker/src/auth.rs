//! Local validation of players' bearer tokens, as AccelByte's validator SDKs do it — without a
//! call to IAM per request.
//!
//! A token is accepted when, in order:
//! 1. its header says `RS256` (nothing else: no `none`, no HMAC with a public key as secret) and
//!    names a `kid`;
//! 2. the `kid` is in the cached JWKS. The JWKS is refreshed every `jwks_refresh` (60 s by
//!    default); an unknown `kid` triggers one immediate refetch (a key rotation), at most once
//!    per `jwks_refetch_interval` however many requests carry unknown keys, so garbage tokens
//!    cannot turn the matchmaker into a JWKS flooder;
//! 3. the RS256 signature verifies, `exp` is present and not past, and `nbf` (when present) is
//!    reached — both with a bounded clock skew (`clock_skew`, at most 5 minutes);
//! 4. it is not revoked: neither in the revocation list's bloom filter (token hash, see
//!    `accelbyte::bloom`) nor issued (`iat`) at or before its user's `revoked_at`. The list is
//!    refreshed every `revocation_refresh`; the last good copy stays in use while IAM fails;
//! 5. it is a user token (`sub`) of the configured namespace;
//!    it carries no ban in force that keeps the player out of matchmaking: `bans` with `Ban`
//!    `MATCHMAKING` or `LOGIN` (a full ban), `Enabled`, `TargetedNamespace` empty or this
//!    namespace, and `EndDate` still ahead (403). With `require_comply`, `is_comply` must be
//!    true (403): AGS sets it once the user accepted the namespace's mandatory legal
//!    agreements; its validators do not read it and services enforce it by choice, hence off
//!    by default;
//! 6. it grants `NAMESPACE:{namespace}:MATCHMAKING` CREATE — from its own `permissions`
//!    (concrete, not substituted, as the SDKs read them), else from its roles: each role in
//!    `namespace_roles` (placeholders `{namespace}` → that role's namespace, `{userId}` → `sub`)
//!    and in `roles` (`{namespace}` → the token's namespace), looked up with the game client's
//!    token at `/iam/v3/admin/roles/{id}` and cached for `role_cache_ttl`. A role IAM says is
//!    missing or hidden (404/403) grants nothing (cached too); an unreachable IAM makes the
//!    request fail as unavailable (503) rather than forbidden.
//!
//! [`Auth::authenticate_caller`] checks a calling *service's* token instead (the match
//! function's callers, [`crate::extend::auth`]): steps 1–4, the namespace, and a permission the
//! caller names — a client token (no `sub`) is fine and bans are not looked at.
//!
//! A player sends the same token with every search, so a token whose signature verified is
//! remembered with its claims and key id (at most [`MAX_VERIFIED_TOKENS`]): a re-queued search
//! skips the RSA check and the claims' JSON. Only the signature is remembered — expiry, `nbf`,
//! revocation and the key still being in the JWKS are checked on every use.
//!
//! Before the first JWKS and revocation list have been fetched, validation answers "not ready"
//! (503) and `/readyz` says so. Must not know about HTTP routes or tickets: it turns a token
//! into a [`Principal`] or an [`AuthError`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use accelbyte::bloom::BloomFilter;
use accelbyte::models::iam::{JwtClaims, RevocationList};
use accelbyte::permission::{self, Permission, action};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use crate::ags::Ags;
use crate::metrics::Metrics;
use crate::ticket::PlayerId;

/// Longest token accepted; AGS tokens are a few KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Tokens remembered as verified before the memory starts over (~2 KiB each).
pub const MAX_VERIFIED_TOKENS: usize = 65_536;
/// Largest clock skew the configuration may allow.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Cached roles before the cache starts over (bounded memory whatever the tokens say).
const MAX_CACHED_ROLES: usize = 10_000;
/// Roles looked up per token at most (a token listing thousands of roles is refused).
const MAX_ROLES_PER_TOKEN: usize = 64;

/// Timings of token validation.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthConfig {
    /// How often the JWKS is refreshed.
    pub jwks_refresh: Duration,
    /// The least time between two refetches caused by unknown `kid`s.
    pub jwks_refetch_interval: Duration,
    /// How often the revocation list is refreshed.
    pub revocation_refresh: Duration,
    /// How soon a failed background refresh is retried.
    pub retry_after_failure: Duration,
    /// Tolerated clock difference for `exp` and `nbf` (at most [`MAX_CLOCK_SKEW`]).
    pub clock_skew: Duration,
    /// How long a role's permissions are cached.
    pub role_cache_ttl: Duration,
    /// Refuse tokens whose `is_comply` is false (the user has not accepted the namespace's
    /// mandatory legal agreements). Off by default, as in AGS, where enforcing it is a choice of
    /// the service.
    pub require_comply: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwks_refresh: Duration::from_secs(60),
            jwks_refetch_interval: Duration::from_secs(10),
            revocation_refresh: Duration::from_secs(60),
            retry_after_failure: Duration::from_secs(2),
            clock_skew: Duration::from_secs(30),
            role_cache_ttl: Duration::from_secs(300),
            require_comply: false,
        }
    }
}

impl AuthConfig {
    /// Checks the timings: refreshes positive, clock skew bounded.
    pub fn validate(&self) -> Result<(), String> {
        if self.jwks_refresh.is_zero()
            || self.revocation_refresh.is_zero()
            || self.retry_after_failure.is_zero()
        {
            return Err("refresh intervals must be positive".into());
        }
        if self.clock_skew > MAX_CLOCK_SKEW {
            return Err(format!(
                "clock skew must be at most {} s",
                MAX_CLOCK_SKEW.as_secs()
            ));
        }
        Ok(())
    }
}

/// Who a valid token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: PlayerId,
    pub namespace: String,
    pub display_name: String,
}

/// Who a valid service token belongs to ([`Auth::authenticate_caller`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The user, for a user token.
    pub user_id: Option<String>,
    pub namespace: String,
}

/// Why a token was refused. [`AuthError::status`] maps each to its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authorization header is missing")]
    Missing,
    #[error("invalid authorization: expecting a bearer token")]
    NotBearer,
    #[error("invalid authorization: more than one authorization header")]
    DuplicateHeader,
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm {0} is not accepted: RS256 only")]
    Algorithm(String),
    #[error("token was signed by an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was revoked")]
    Revoked,
    #[error("token is not a user token")]
    NotUserToken,
    #[error("token namespace {token} is not {expected}")]
    WrongNamespace { token: String, expected: String },
    #[error("user is banned ({ban}) until {until}")]
    Banned { ban: String, until: String },
    #[error("user has not accepted the mandatory legal agreements")]
    NotComply,
    #[error("insufficient permissions: {resource} [{action}] required")]
    Forbidden { resource: String, action: u32 },
    #[error("token validation is not ready: {0}")]
    NotReady(&'static str),
    #[error("iam is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The HTTP status this refusal answers with: 401 for a token that is not good, 403 for a
    /// good token without the right, 503 when the matchmaker cannot tell.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing
            | AuthError::NotBearer
            | AuthError::DuplicateHeader
            | AuthError::Malformed
            | AuthError::Algorithm(_)
            | AuthError::UnknownKey
            | AuthError::BadSignature
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::Revoked => 401,
            AuthError::NotUserToken
            | AuthError::WrongNamespace { .. }
            | AuthError::Banned { .. }
            | AuthError::NotComply
            | AuthError::Forbidden { .. } => 403,
            AuthError::NotReady(_) | AuthError::Unavailable(_) => 503,
        }
    }

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::NotBearer => "not_bearer",
            AuthError::DuplicateHeader => "duplicate_header",
            AuthError::Malformed => "malformed",
            AuthError::Algorithm(_) => "algorithm",
            AuthError::UnknownKey => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::Revoked => "revoked",
            AuthError::NotUserToken => "not_user_token",
            AuthError::WrongNamespace { .. } => "wrong_namespace",
            AuthError::Banned { .. } => "banned",
            AuthError::NotComply => "not_comply",
            AuthError::Forbidden { .. } => "forbidden",
            AuthError::NotReady(_) => "not_ready",
            AuthError::Unavailable(_) => "unavailable",
        }
    }
}

/// Extracts the token from an `Authorization` header value (`Bearer <token>`, scheme
/// case-insensitive).
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.map(str::trim).filter(|v| !v.is_empty());
    let value = value.ok_or(AuthError::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::NotBearer);
    }
    Ok(token)
}

/// The revocation list in a form that answers quickly.
struct Revocations {
    tokens: BloomFilter,
    /// User id → revoked at (Unix ms).
    users: HashMap<String, i64>,
}

struct CachedRole {
    /// Unsubstituted permissions.
    permissions: Arc<Vec<Permission>>,
    fetched: Instant,
}

/// The token validator. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    ags: Ags,
    config: AuthConfig,
    namespace: String,
    required: Permission,
    keys: RwLock<Arc<HashMap<String, Arc<DecodingKey>>>>,
    keys_loaded: AtomicBool,
    /// When unknown `kid`s last caused a refetch; the lock makes those refetches single-flight.
    refetched: tokio::sync::Mutex<Option<Instant>>,
    revocations: RwLock<Option<Arc<Revocations>>>,
    roles: Mutex<HashMap<String, CachedRole>>,
    /// Tokens whose signature verified (see the module docs). Keys are ~1 KiB tokens, hashed
    /// with foldhash rather than SipHash; only verified tokens get in.
    verified: Mutex<foldhash::HashMap<String, Verified>>,
    metrics: Arc<Metrics>,
}

/// A token whose RS256 signature verified with the key `kid`.
struct Verified {
    kid: String,
    claims: JwtClaims,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("namespace", &self.inner.namespace)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// A validator for tokens of the game namespace of `ags`. Nothing is fetched yet: call
    /// [`Auth::keep_fresh`] (or the two refresh methods).
    pub fn new(ags: Ags, config: AuthConfig, metrics: Arc<Metrics>) -> Self {
        let namespace = ags.namespace().to_owned();
        let required =
            Permission::new(format!("NAMESPACE:{namespace}:MATCHMAKING"), action::CREATE);
        Auth {
            inner: Arc::new(Inner {
                ags,
                config,
                namespace,
                required,
                keys: RwLock::new(Arc::new(HashMap::new())),
                keys_loaded: AtomicBool::new(false),
                refetched: tokio::sync::Mutex::new(None),
                revocations: RwLock::new(None),
                roles: Mutex::new(HashMap::new()),
                verified: Mutex::new(foldhash::HashMap::default()),
                metrics,
            }),
        }
    }

    /// The permission every caller needs.
    pub fn required_permission(&self) -> &Permission {
        &self.inner.required
    }

    /// Whether keys and a revocation list have been loaded.
    pub fn is_ready(&self) -> bool {
        self.inner.keys_loaded.load(Ordering::Acquire) && self.inner.revocations.read().is_some()
    }

    /// Fetches the JWKS and replaces the cached keys; returns how many usable keys it had.
    pub async fn refresh_keys(&self) -> Result<usize, AuthError> {
        let jwks = match self.inner.ags.jwks().await {
            Ok(jwks) => jwks,
            Err(e) => {
                self.inner.metrics.iam_fetch("jwks", "error");
                return Err(AuthError::Unavailable(format!("jwks: {e}")));
            }
        };
        let mut keys = HashMap::with_capacity(jwks.keys.len());
        for jwk in &jwks.keys {
            let usable = jwk.kty == "RSA"
                && (jwk.alg.is_empty() || jwk.alg == "RS256")
                && (jwk.use_.is_empty() || jwk.use_ == "sig")
                && !jwk.kid.is_empty();
            if !usable {
                continue;
            }
            match DecodingKey::from_rsa_components(&jwk.n, &jwk.e) {
                Ok(key) => {
                    keys.insert(jwk.kid.clone(), Arc::new(key));
                }
                Err(e) => tracing::warn!(kid = %jwk.kid, error = %e, "skipping an unreadable jwk"),
            }
        }
        let count = keys.len();
        if count == 0 && !self.inner.keys.read().is_empty() {
            // IAM always publishes a key; an empty set is a glitch, not a revocation of all keys.
            self.inner.metrics.iam_fetch("jwks", "empty");
            return Err(AuthError::Unavailable("the jwks has no usable key".into()));
        }
        *self.inner.keys.write() = Arc::new(keys);
        self.inner.keys_loaded.store(true, Ordering::Release);
        self.inner.metrics.iam_fetch("jwks", "ok");
        Ok(count)
    }

    /// Fetches the revocation list and replaces the cached one.
    pub async fn refresh_revocations(&self) -> Result<(), AuthError> {
        let list = match self.inner.ags.revocation_list().await {
            Ok(list) => list,
            Err(e) => {
                self.inner.metrics.iam_fetch("revocation_list", "error");
                return Err(AuthError::Unavailable(format!("revocation list: {e}")));
            }
        };
        *self.inner.revocations.write() = Some(Arc::new(read_revocations(list)));
        self.inner.metrics.iam_fetch("revocation_list", "ok");
        Ok(())
    }

    /// Keeps the JWKS and the revocation list fresh until `stop`: fetches both now, then every
    /// refresh interval (sooner after a failure).
    pub async fn keep_fresh(&self, stop: CancellationToken) {
        let config = &self.inner.config;
        let keys = refresh_loop(
            &stop,
            config.jwks_refresh,
            config.retry_after_failure,
            || async { self.refresh_keys().await.map(drop) },
            "jwks",
        );
        let revocations = refresh_loop(
            &stop,
            config.revocation_refresh,
            config.retry_after_failure,
            || self.refresh_revocations(),
            "revocation list",
        );
        tokio::join!(keys, revocations);
    }

    /// Validates `token` (the bearer credential, without the scheme) and checks the caller may
    /// matchmake in the game namespace.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let result = self.check(token).await;
        if let Err(e) = &result {
            self.inner.metrics.auth_rejected(e.reason());
        }
        result
    }

    async fn check(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.verify(token).await?;
        let user_id = claims
            .sub
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::NotUserToken)?;
        self.check_namespace(&claims)?;
        check_bans(&claims, &self.inner.namespace, chrono::Utc::now())?;
        if self.inner.config.require_comply && !claims.is_comply {
            return Err(AuthError::NotComply);
        }
        self.check_permission(&claims, &user_id, &self.inner.required)
            .await?;
        Ok(Principal {
            user_id: PlayerId::new(user_id),
            namespace: claims.namespace,
            display_name: claims.display_name,
        })
    }

    /// Validates the token of a service calling this one — a client token (no `sub`) or a
    /// user token alike, as AccelByte's validators do for an Extend app: signature, expiry,
    /// revocation, the game namespace, and `required` from the token or its roles (`{namespace}`
    /// in `required` is the game namespace). Bans and legal agreements are players' matters
    /// and not looked at. Refusals are counted like [`Auth::authenticate`]'s.
    pub async fn authenticate_caller(
        &self,
        token: &str,
        required: &Permission,
    ) -> Result<Caller, AuthError> {
        let result: Result<Caller, AuthError> = async {
            let claims = self.verify(token).await?;
            self.check_namespace(&claims)?;
            let vars = [("namespace", self.inner.namespace.as_str())];
            let required = Permission::new(
                permission::substitute(&required.resource, &vars),
                required.action,
            );
            let subject = claims.sub.clone().unwrap_or_default();
            self.check_permission(&claims, &subject, &required).await?;
            Ok(Caller {
                client_id: claims.client_id,
                user_id: claims.sub.filter(|s| !s.is_empty()),
                namespace: claims.namespace,
            })
        }
        .await;
        if let Err(e) = &result {
            self.inner.metrics.auth_rejected(e.reason());
        }
        result
    }

    /// Steps 1–4: a well-formed RS256 token of a known key, signed, in date, not revoked.
    async fn verify(&self, token: &str) -> Result<JwtClaims, AuthError> {
        if !self.is_ready() {
            return Err(AuthError::NotReady(
                "keys and revocation list not loaded yet",
            ));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        if let Some(claims) = self.remembered(token) {
            self.check_dates(&claims)?;
            self.check_revocation(token, &claims)?;
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = self.inner.config.clock_skew.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.required_spec_claims.insert("exp".to_owned());
        let claims = jsonwebtoken::decode::<JwtClaims>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm => AuthError::Algorithm("mismatch".into()),
                _ => AuthError::Malformed,
            })?
            .claims;
        self.check_revocation(token, &claims)?;
        self.remember(token, kid, &claims);
        Ok(claims)
    }

    /// The claims of a token whose signature verified before, while its key is still published.
    fn remembered(&self, token: &str) -> Option<JwtClaims> {
        let verified = self.inner.verified.lock();
        let hit = verified.get(token)?;
        self.inner
            .keys
            .read()
            .contains_key(&hit.kid)
            .then(|| hit.claims.clone())
    }

    fn remember(&self, token: &str, kid: String, claims: &JwtClaims) {
        insert_bounded(
            &mut self.inner.verified.lock(),
            MAX_VERIFIED_TOKENS,
            token.to_owned(),
            Verified {
                kid,
                claims: claims.clone(),
            },
        );
    }

    /// Step 3's dates for a remembered token, as `jsonwebtoken` checks them: `exp` not past and
    /// `nbf` reached, each within the clock skew.
    fn check_dates(&self, claims: &JwtClaims) -> Result<(), AuthError> {
        let now = chrono::Utc::now().timestamp();
        let skew = i64::try_from(self.inner.config.clock_skew.as_secs()).unwrap_or(i64::MAX);
        if claims.exp < now.saturating_sub(skew) {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
            return Err(AuthError::NotYetValid);
        }
        Ok(())
    }

    fn check_namespace(&self, claims: &JwtClaims) -> Result<(), AuthError> {
        if claims.namespace != self.inner.namespace {
            return Err(AuthError::WrongNamespace {
                token: claims.namespace.clone(),
                expected: self.inner.namespace.clone(),
            });
        }
        Ok(())
    }

    /// The key for `kid`, refetching the JWKS once (rate-limited) when it is unknown.
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(key) = self.inner.keys.read().get(kid) {
            return Ok(key.clone());
        }
        let mut last = self.inner.refetched.lock().await;
        // Another request may have refetched while we waited for the lock.
        if let Some(key) = self.inner.keys.read().get(kid) {
            return Ok(key.clone());
        }
        let interval = self.inner.config.jwks_refetch_interval;
        if last.is_some_and(|at| at.elapsed() < interval) {
            return Err(AuthError::UnknownKey);
        }
        *last = Some(Instant::now());
        if let Err(e) = self.refresh_keys().await {
            tracing::warn!(error = %e, "refetching the jwks for an unknown key failed");
        }
        let key = self.inner.keys.read().get(kid).cloned();
        key.ok_or(AuthError::UnknownKey)
    }

    fn check_revocation(&self, token: &str, claims: &JwtClaims) -> Result<(), AuthError> {
        let Some(revocations) = self.inner.revocations.read().clone() else {
            return Err(AuthError::NotReady("revocation list not loaded yet"));
        };
        if revocations.tokens.might_contain(token) {
            return Err(AuthError::Revoked);
        }
        if let Some(at) = claims.sub.as_ref().and_then(|s| revocations.users.get(s)) {
            if claims.iat.saturating_mul(1000) <= *at {
                return Err(AuthError::Revoked);
            }
        }
        Ok(())
    }

    async fn check_permission(
        &self,
        claims: &JwtClaims,
        user_id: &str,
        required: &Permission,
    ) -> Result<(), AuthError> {
        let own: Vec<Permission> = claims
            .permissions
            .iter()
            .map(|p| Permission::new(&p.resource, p.action))
            .collect();
        if permission::is_granted(&own, required) {
            return Ok(());
        }
        let roles = claims
            .namespace_roles
            .iter()
            .map(|r| (r.role_id.as_str(), r.namespace.as_str()))
            .chain(
                claims
                    .roles
                    .iter()
                    .map(|r| (r.as_str(), claims.namespace.as_str())),
            );
        for (checked, (role_id, namespace)) in roles.enumerate() {
            if checked >= MAX_ROLES_PER_TOKEN {
                break;
            }
            let vars = [("namespace", namespace), ("userId", user_id)];
            let granted: Vec<Permission> = self
                .role(role_id)
                .await?
                .iter()
                .map(|p| Permission::new(permission::substitute(&p.resource, &vars), p.action))
                .collect();
            if permission::is_granted(&granted, required) {
                return Ok(());
            }
        }
        Err(AuthError::Forbidden {
            resource: required.resource.clone(),
            action: required.action,
        })
    }

    /// A role's permissions, cached; a role IAM will not show (403/404) grants nothing.
    async fn role(&self, role_id: &str) -> Result<Arc<Vec<Permission>>, AuthError> {
        let ttl = self.inner.config.role_cache_ttl;
        if let Some(cached) = self.inner.roles.lock().get(role_id) {
            if cached.fetched.elapsed() < ttl {
                return Ok(cached.permissions.clone());
            }
        }
        let permissions = match self.inner.ags.role(role_id).await {
            Ok(role) => {
                self.inner.metrics.iam_fetch("role", "ok");
                role.permissions
                    .iter()
                    .map(|p| Permission::new(&p.resource, p.action))
                    .collect()
            }
            Err(e) if matches!(e.status(), Some(403 | 404)) => {
                self.inner.metrics.iam_fetch("role", "not_found");
                Vec::new()
            }
            Err(e) => {
                self.inner.metrics.iam_fetch("role", "error");
                return Err(AuthError::Unavailable(format!("role {role_id}: {e}")));
            }
        };
        let permissions = Arc::new(permissions);
        insert_bounded(
            &mut self.inner.roles.lock(),
            MAX_CACHED_ROLES,
            role_id.to_owned(),
            CachedRole {
                permissions: permissions.clone(),
                fetched: Instant::now(),
            },
        );
        Ok(permissions)
    }
}

/// Bans that keep a player out of matchmaking: `MATCHMAKING`, and `LOGIN` (a full ban: the
/// user may not use the game at all).
pub const BLOCKING_BANS: [&str; 2] = ["MATCHMAKING", "LOGIN"];

/// Refuses a token that carries a blocking ban in force: enabled, targeting this namespace (or
/// none), and ending after `now`. An end date that does not parse counts as in force — a ban is
/// never lifted by a typo.
fn check_bans(
    claims: &JwtClaims,
    namespace: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AuthError> {
    for ban in claims.bans.iter().flatten() {
        if !ban.enabled || !BLOCKING_BANS.contains(&ban.ban.as_str()) {
            continue;
        }
        if !ban.targeted_namespace.is_empty() && ban.targeted_namespace != namespace {
            continue;
        }
        let ends = chrono::DateTime::parse_from_rfc3339(&ban.end_date);
        if ends.map_or(true, |end| end > now) {
            return Err(AuthError::Banned {
                ban: ban.ban.clone(),
                until: ban.end_date.clone(),
            });
        }
    }
    Ok(())
}

fn read_revocations(list: RevocationList) -> Revocations {
    if let Err(e) = list.revoked_tokens.validate() {
        // `might_contain` then answers false for every token: a corrupt list must not lock
        // every player out.
        tracing::warn!(error = %e, "the revocation list's bloom filter is unusable");
    }
    let users = list
        .revoked_users
        .into_iter()
        .filter_map(
            |u| match chrono::DateTime::parse_from_rfc3339(&u.revoked_at) {
                Ok(at) => Some((u.id, at.timestamp_millis())),
                Err(e) => {
                    tracing::warn!(user = %u.id, error = %e, "skipping an unreadable revoked_at");
                    None
                }
            },
        )
        .collect();
    Revocations {
        tokens: list.revoked_tokens,
        users,
    }
}

async fn refresh_loop<F, Fut>(
    stop: &CancellationToken,
    every: Duration,
    retry: Duration,
    mut refresh: F,
    what: &str,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), AuthError>>,
{
    let mut failing = false;
    loop {
        let wait = match refresh().await {
            Ok(()) => {
                if failing {
                    tracing::info!("{what} refreshed again");
                }
                failing = false;
                every
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "{what} refresh failed; retrying");
                }
                failing = true;
                retry
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Inserts into a cache that starts over when full: bounded memory whatever the tokens say.
fn insert_bounded<K, V, S>(map: &mut HashMap<K, V, S>, capacity: usize, key: K, value: V)
where
    K: std::hash::Hash + Eq,
    S: std::hash::BuildHasher,
{
    if map.len() >= capacity {
        map.clear();
    }
    map.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::Missing));
        assert_eq!(bearer_token(Some("  ")), Err(AuthError::Missing));
        assert_eq!(bearer_token(Some("Basic abc")), Err(AuthError::NotBearer));
        assert_eq!(bearer_token(Some("Bearer")), Err(AuthError::NotBearer));
        assert_eq!(bearer_token(Some("Bearer ")), Err(AuthError::NotBearer));
    }

    #[test]
    fn statuses() {
        assert_eq!(AuthError::Expired.status(), 401);
        assert_eq!(AuthError::NotUserToken.status(), 403);
        assert_eq!(AuthError::NotReady("x").status(), 503);
    }
}
