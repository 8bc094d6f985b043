//! Who may call the match function: AGS calls an Extend app with its own bearer token in the gRPC
//! metadata (`authorization: Bearer <token>`), and the app checks it against IAM as AccelByte's
//! sample servers do — locally, with the cached JWKS and revocation list of [`crate::auth::Auth`],
//! for the game namespace and a permission ([`DEFAULT_CALLER_PERMISSION`] unless told otherwise).
//!
//! [`RequireToken`] is a tower layer in front of every gRPC service of the server. Each call is
//! checked before the service sees it, except the gRPC health service's (a load balancer's probe
//! carries no token; the samples skip it too). Refusals are gRPC statuses:
//! - no `authorization`, not a bearer token, malformed, unknown key, bad signature, expired, not
//!   yet valid, revoked → `UNAUTHENTICATED`;
//! - a good token of another namespace or without the permission → `PERMISSION_DENIED`;
//! - keys or revocation list not loaded yet, IAM unreachable for a role → `UNAVAILABLE`.
//!
//! With no [`CallerCheck`] the layer lets every call through: the samples'
//! `PLUGIN_GRPC_SERVER_AUTH_ENABLED=false`, for local development.

use std::sync::Arc;
use std::task::{Context, Poll};

use accelbyte::permission::{Permission, action};
use futures_util::future::BoxFuture;
use tonic::{Code, Status};

use crate::auth::{Auth, AuthError, bearer_token};

/// The permission a caller's token must grant by default: reading the namespace's match
/// functions (`{namespace}` is the game namespace).
pub const DEFAULT_CALLER_PERMISSION: (&str, u32) =
    ("NAMESPACE:{namespace}:MATCHMAKING:FUNCTIONS", action::READ);

/// The gRPC service whose calls need no token.
const HEALTH_SERVICE_PREFIX: &str = "/grpc.health.v1.Health/";

/// Validates callers' tokens: the matchmaker's validator and the permission to require.
#[derive(Clone, Debug)]
pub struct CallerCheck {
    auth: Auth,
    required: Permission,
}

impl CallerCheck {
    /// Callers must hold [`DEFAULT_CALLER_PERMISSION`].
    pub fn new(auth: Auth) -> Self {
        let (resource, action) = DEFAULT_CALLER_PERMISSION;
        Self::with_permission(auth, Permission::new(resource, action))
    }

    /// Callers must hold `required` (`{namespace}` stands for the game namespace).
    pub fn with_permission(auth: Auth, required: Permission) -> Self {
        CallerCheck { auth, required }
    }

    /// The permission callers need.
    pub fn required(&self) -> &Permission {
        &self.required
    }

    /// Checks one call's `authorization` header values.
    pub async fn check(&self, headers: &http::HeaderMap) -> Result<(), Status> {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(refusal(&AuthError::DuplicateHeader));
        }
        let header = match first.map(|v| v.to_str()) {
            Some(Ok(text)) => Some(text),
            Some(Err(_)) => return Err(refusal(&AuthError::NotBearer)),
            None => None,
        };
        let token = bearer_token(header).map_err(|e| refusal(&e))?;
        match self.auth.authenticate_caller(token, &self.required).await {
            Ok(caller) => {
                tracing::trace!(client = %caller.client_id, "match function call authorized");
                Ok(())
            }
            Err(e) => Err(refusal(&e)),
        }
    }
}

/// The gRPC status of a refused token.
pub fn refusal(error: &AuthError) -> Status {
    let code = match error.status() {
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        _ => Code::Unavailable,
    };
    Status::new(code, error.to_string())
}

/// The layer: [`RequireToken::new`] with a check, or [`RequireToken::off`].
#[derive(Clone, Debug, Default)]
pub struct RequireToken {
    check: Option<Arc<CallerCheck>>,
}

impl RequireToken {
    pub fn new(check: CallerCheck) -> Self {
        RequireToken {
            check: Some(Arc::new(check)),
        }
    }

    /// Every call goes through unchecked.
    pub fn off() -> Self {
        RequireToken::default()
    }

    /// Whether calls are checked.
    pub fn is_on(&self) -> bool {
        self.check.is_some()
    }
}

impl<S> tower::Layer<S> for RequireToken {
    type Service = RequireTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireTokenService {
            inner,
            check: self.check.clone(),
        }
    }
}

/// [`RequireToken`] around a service.
#[derive(Clone, Debug)]
pub struct RequireTokenService<S> {
    inner: S,
    check: Option<Arc<CallerCheck>>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RequireTokenService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The ready service answers this call; its clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let check = self
            .check
            .clone()
            .filter(|_| !request.uri().path().starts_with(HEALTH_SERVICE_PREFIX));
        Box::pin(async move {
            if let Some(check) = check {
                if let Err(status) = check.check(request.headers()).await {
                    tracing::info!(
                        path = request.uri().path(),
                        code = ?status.code(),
                        "match function call refused: {}",
                        status.message()
                    );
                    return Ok(status.into_http());
                }
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_grpc_codes() {
        assert_eq!(refusal(&AuthError::Missing).code(), Code::Unauthenticated);
        assert_eq!(refusal(&AuthError::Expired).code(), Code::Unauthenticated);
        assert_eq!(refusal(&AuthError::Revoked).code(), Code::Unauthenticated);
        let forbidden = AuthError::Forbidden {
            resource: "X".into(),
            action: 2,
        };
        assert_eq!(refusal(&forbidden).code(), Code::PermissionDenied);
        assert_eq!(refusal(&AuthError::NotReady("x")).code(), Code::Unavailable);
    }
}
