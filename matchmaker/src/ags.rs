//! The AccelByte calls the matchmaker makes, as its confidential game client: one pooled HTTP
//! client (through [`AbClient`]) and one client-credentials token kept fresh for everything.
//!
//! - The token is fetched on first use, renewed at 80 % of its lifetime (as the validator SDKs
//!   do), one refresh at a time however many calls need it, and dropped and fetched again once
//!   when a call is answered 401 (the token may have been revoked or IAM restarted).
//! - Every call names the configured game namespace. The tutorial sends some calls with the
//!   *player's* token; a matchmaker cannot keep players' tokens (they would sit in Redis and
//!   expire mid-queue), so the game client needs the session browser, DSMC, notification and
//!   role-read permissions (the fakes seed grants exactly those).
//!
//! Errors are `accelbyte`'s [`ClientError`], status and AGS error body included, so callers
//! classify them (retry, requeue, fail) without parsing text. Must not know about matching,
//! tickets or HTTP serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accelbyte::client::{AbClient, ClientError, Config as AbConfig};
use accelbyte::models::dsmc::{
    CreateSessionRequest as RegisterRequest, SessionResponse as DsmcSession,
};
use accelbyte::models::iam::{Jwks, RevocationList, RoleResponseV3};
use accelbyte::models::sessionbrowser::{CreateSessionRequest, SessionResponse};
use parking_lot::RwLock;

use crate::metrics::Metrics;

/// Timeout of one AGS request (connect included).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The game client's view of AGS. Cheap to clone.
#[derive(Clone)]
pub struct Ags {
    inner: Arc<Inner>,
}

struct Inner {
    client: AbClient,
    token: RwLock<Option<Cached>>,
    /// Serialises refreshes, so a burst of calls on an expired token fetches one token.
    refresh: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

#[derive(Clone)]
struct Cached {
    token: Arc<str>,
    renew_at: Instant,
}

impl std::fmt::Debug for Ags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ags")
            .field("client", &self.inner.client)
            .finish_non_exhaustive()
    }
}

/// Runs `$call` with the client (`$c`) and token (`$t`); a 401 drops the token and retries once
/// with a new one.
macro_rules! with_token {
    ($self:ident, |$c:ident, $t:ident| $call:expr) => {{
        let token = $self.token().await?;
        let first = {
            let $c = &$self.inner.client;
            let $t: &str = &token;
            $call.await
        };
        match first {
            Err(e) if e.status() == Some(401) => {
                $self.invalidate(&token);
                let token = $self.token().await?;
                let $c = &$self.inner.client;
                let $t: &str = &token;
                $call.await
            }
            other => other,
        }
    }};
}

impl Ags {
    /// A client for `config` (base URL, game client, namespace) with its own connection pool.
    pub fn new(
        config: AbConfig,
        request_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ClientError> {
        let http = AbClient::http_builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout)
            .pool_max_idle_per_host(512)
            .build()?;
        let client = AbClient::with_http(config, http)?;
        Ok(Ags {
            inner: Arc::new(Inner {
                client,
                token: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
                metrics,
            }),
        })
    }

    /// The underlying client.
    pub fn client(&self) -> &AbClient {
        &self.inner.client
    }

    /// The game namespace.
    pub fn namespace(&self) -> &str {
        self.inner.client.namespace()
    }

    /// A valid client-credentials token (cached; renewed at 80 % of its lifetime).
    pub async fn token(&self) -> Result<Arc<str>, ClientError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _one_at_a_time = self.inner.refresh.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let granted = match self.inner.client.login_client().await {
            Ok(granted) => granted,
            Err(e) => {
                self.inner.metrics.iam_fetch("client_token", "error");
                return Err(e);
            }
        };
        self.inner.metrics.iam_fetch("client_token", "ok");
        let lifetime = Duration::from_secs(u64::try_from(granted.expires_in).unwrap_or(0).max(1));
        let token: Arc<str> = granted.access_token.into();
        *self.inner.token.write() = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime.mul_f64(0.8),
        });
        Ok(token)
    }

    fn fresh(&self) -> Option<Arc<str>> {
        self.inner
            .token
            .read()
            .as_ref()
            .filter(|c| Instant::now() < c.renew_at)
            .map(|c| c.token.clone())
    }

    /// Forgets `token` if it is still the cached one, so the next call fetches another.
    fn invalidate(&self, token: &str) {
        let mut cached = self.inner.token.write();
        if cached.as_ref().is_some_and(|c| &*c.token == token) {
            *cached = None;
        }
    }

    /// Session browser create (200).
    pub async fn create_session(
        &self,
        body: &CreateSessionRequest,
    ) -> Result<SessionResponse, ClientError> {
        let ns = self.namespace();
        with_token!(self, |c, t| c.session_browser().create_session(t, ns, body))
    }

    /// Session browser get.
    pub async fn session(&self, session_id: &str) -> Result<SessionResponse, ClientError> {
        let ns = self.namespace();
        with_token!(self, |c, t| c
            .session_browser()
            .get_session(t, ns, session_id))
    }

    /// Session browser add player (as a player, not a spectator).
    pub async fn add_player(&self, session_id: &str, user_id: &str) -> Result<(), ClientError> {
        let ns = self.namespace();
        let added = with_token!(self, |c, t| c
            .session_browser()
            .add_player(t, ns, session_id, user_id, false));
        added.map(drop)
    }

    /// Session browser delete (on fakes this also releases the DSMC session of the same id).
    pub async fn delete_session(&self, session_id: &str) -> Result<(), ClientError> {
        let ns = self.namespace();
        let deleted = with_token!(self, |c, t| c
            .session_browser()
            .delete_session(t, ns, session_id));
        deleted.map(drop)
    }

    /// DSMC register (200; the server may still be `CREATING`).
    pub async fn register(&self, body: &RegisterRequest) -> Result<DsmcSession, ClientError> {
        let ns = self.namespace();
        with_token!(self, |c, t| c.dsmc().register_session(t, ns, body))
    }

    /// DSMC claim (204).
    pub async fn claim(&self, session_id: &str) -> Result<(), ClientError> {
        let ns = self.namespace();
        with_token!(self, |c, t| c.dsmc().claim_server(t, ns, session_id))
    }

    /// DSMC get: the server under `session.Server`.
    pub async fn server(&self, session_id: &str) -> Result<DsmcSession, ClientError> {
        let ns = self.namespace();
        with_token!(self, |c, t| c.dsmc().get_session(t, ns, session_id))
    }

    /// DSMC admin delete: releases the server of a session that will not be played.
    pub async fn release_server(&self, session_id: &str) -> Result<(), ClientError> {
        let ns = self.namespace();
        with_token!(self, |c, t| c
            .dsmc()
            .admin_delete_session(t, ns, session_id))
    }

    /// Free-form notification to one user (204).
    pub async fn notify(
        &self,
        user_id: &str,
        topic: &str,
        message: &str,
    ) -> Result<(), ClientError> {
        let ns = self.namespace();
        with_token!(self, |c, t| c.notify_user(t, ns, user_id, topic, message))
    }

    /// A role and its permissions (`/iam/v3/admin/roles/{id}`).
    pub async fn role(&self, role_id: &str) -> Result<RoleResponseV3, ClientError> {
        with_token!(self, |c, t| c.role_v3(t, role_id))
    }

    /// The signing keys (Basic auth, as the validator SDKs send it).
    pub async fn jwks(&self) -> Result<Jwks, ClientError> {
        self.inner.client.jwks().await
    }

    /// The revocation list (Basic auth).
    pub async fn revocation_list(&self) -> Result<RevocationList, ClientError> {
        self.inner.client.revocation_list().await
    }
}
