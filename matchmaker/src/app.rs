//! The running service: [`AppState`] (everything a request needs, built once from a
//! [`Config`]), [`serve`] (runs the HTTP API on a bound listener until a shutdown future
//! resolves, then drains), [`start`] ([`serve`] through the shared server lifecycle,
//! [`serving::lifecycle`]) and [`spawn`] (binds 127.0.0.1:0, waits until ready, stops on
//! drop): the one way tests, benches and the simulator's embedded mode start a matchmaker.
//!
//! **Start.** [`AppState::start`] connects the store (Redis when configured — failing fast if it
//! does not answer — else memory, with a log line saying so), builds the AGS client, starts the
//! engine (matching loops, reaper), the token validator's refresh loops and the announcement
//! dispatcher. AGS being unreachable does not fail the start: `/readyz` stays 503 until the
//! keys and revocation list arrive.
//!
//! **Shutdown** ([`serve`]'s future resolves, e.g. on SIGTERM):
//! 1. `/readyz` turns 503, new tickets are refused (503), the listener stops accepting;
//! 2. the engine stops forming matches and lets the matches in flight finish — notifications
//!    included — for up to `shutdown_grace`; what is still running then is handed back to the
//!    queue (without counting an attempt);
//! 3. held `POST /matchmaking` calls whose ticket is still queued answer 503: the ticket stays
//!    in the store, where other replicas (on Redis) match it and its players still get their
//!    `found` on the lobby socket;
//! 4. background tasks stop and `serve` returns once every connection has closed.
//!
//! Must not know how the configuration was read.

use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ags::Ags;
use crate::auth::Auth;
use crate::clock::SystemClock;
use crate::config::{Config, LoadError};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::store::{AnyStore, MemoryStore, RedisStore, Store as _, StoreError};
use crate::waiters::Waiters;

pub use serving::LISTEN_BACKLOG;

/// How long [`spawn`] waits for the service to become ready.
const SPAWN_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the service did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] LoadError),
    #[error("ags client: {0}")]
    Ags(#[from] accelbyte::client::ClientError),
    #[error("ticket store: {0}")]
    Store(#[from] StoreError),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("not ready after {0:?}: {1}")]
    NotReady(Duration, String),
}

/// The engine as the service runs it.
pub type ServiceEngine = Engine<AnyStore, Pipeline>;

/// Everything a request needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: Config,
    engine: ServiceEngine,
    store: AnyStore,
    auth: Auth,
    pipeline: Pipeline,
    metrics: Arc<Metrics>,
    waiters: Arc<Waiters>,
    /// The accept loop's counters (connections, refusals at the cap, descriptor exhaustion).
    accept: Arc<serving::AcceptStats>,
    /// Set when shutdown starts: not ready, no new tickets.
    draining: CancellationToken,
    /// Set once matches in flight are done: held requests answer 503.
    release_waiters: CancellationToken,
    /// Stops the refresh loops and the dispatcher (after the drain, not when it starts).
    background: CancellationToken,
    /// The server's background tasks (see [`serving::lifecycle`]): the refresh loops, the
    /// dispatcher, cancellations of abandoned tickets.
    tasks: serving::Tasks,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("store", &self.inner.store.kind())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Validates `config`, connects the store and starts every background part (on the
    /// current tokio runtime).
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let store: AnyStore = match &config.redis {
            Some(redis) => {
                let store = RedisStore::connect(redis.clone()).await?;
                tracing::info!(
                    redis = %crate::config::redact_url(&redis.url),
                    prefix = %redis.prefix,
                    "tickets live in redis, shared with every replica using this prefix"
                );
                store.into()
            }
            None => {
                tracing::info!(
                    "no redis url given: tickets live in this process only (in-memory store); \
                     set MATCHMAKER_REDIS_URL or --redis-url to share them between replicas"
                );
                MemoryStore::new().into()
            }
        };
        let metrics = Arc::new(Metrics::new(
            config.modes.iter().map(|m| m.name.as_str()),
            store.kind(),
        ));
        let ags = Ags::new(config.ags.clone(), config.ags_timeout, metrics.clone())?;
        let auth = Auth::new(ags.clone(), config.auth.clone(), metrics.clone());
        let pipeline = Pipeline::new(ags, config.pipeline.clone(), metrics.clone());
        let waiters = Waiters::new();
        let background = CancellationToken::new();
        let tasks = serving::Tasks::new();
        // Subscribed before the engine starts, so no announcement is missed.
        let events = store.events();
        let engine = Engine::start(
            store.clone(),
            pipeline.clone(),
            config.modes.clone(),
            Arc::new(SystemClock),
            config.engine.clone(),
        );
        // Both watch `background`, cancelled once the drain is done, not when it starts.
        tasks.spawn_watched(waiters.clone().dispatch(events, background.clone()));
        {
            let auth = auth.clone();
            let stop = background.clone();
            tasks.spawn_watched(async move { auth.keep_fresh(stop).await });
        }
        Ok(AppState {
            inner: Arc::new(Shared {
                config,
                engine,
                store,
                auth,
                pipeline,
                metrics,
                waiters,
                accept: Arc::default(),
                draining: CancellationToken::new(),
                release_waiters: CancellationToken::new(),
                background,
                tasks,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn engine(&self) -> &ServiceEngine {
        &self.inner.engine
    }

    pub fn store(&self) -> &AnyStore {
        &self.inner.store
    }

    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// How the match function's gRPC server checks its callers: with this service's token
    /// validator, unless `grpc_auth` is off.
    pub fn match_function_callers(&self) -> crate::extend::RequireToken {
        if self.inner.config.grpc_auth {
            crate::extend::RequireToken::new(crate::extend::CallerCheck::new(
                self.inner.auth.clone(),
            ))
        } else {
            crate::extend::RequireToken::off()
        }
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.inner.pipeline
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn accept_stats(&self) -> &Arc<serving::AcceptStats> {
        &self.inner.accept
    }

    pub fn waiters(&self) -> &Arc<Waiters> {
        &self.inner.waiters
    }

    /// The background tasks; a server started on them ([`spawn`], `main`) stops them.
    pub fn tasks(&self) -> &serving::Tasks {
        &self.inner.tasks
    }

    /// Whether shutdown has started.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.is_cancelled()
    }

    /// Resolves when held requests must answer (matches in flight are done).
    pub async fn waiters_released(&self) {
        self.inner.release_waiters.cancelled().await;
    }

    /// `Ok` when this replica can take requests; else why not.
    pub async fn readiness(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if self.is_draining() {
            reasons.push("shutting down".to_owned());
        }
        if !self.inner.auth.is_ready() {
            reasons.push("token keys or revocation list not loaded yet".to_owned());
        }
        if let Err(e) = self.inner.store.ping().await {
            reasons.push(format!("ticket store: {e}"));
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// Shutdown, step 1: not ready, no new tickets.
    pub fn begin_drain(&self) {
        self.inner.draining.cancel();
    }

    /// Shutdown, steps 2–4 (see the module docs).
    pub async fn finish_drain(&self) {
        self.begin_drain();
        self.inner
            .engine
            .shutdown(self.inner.config.shutdown_grace)
            .await;
        self.inner.release_waiters.cancel();
        self.inner.background.cancel();
        let tracker = self.inner.tasks.tracker();
        tracker.close();
        tracker.wait().await;
    }
}

pub use serving::bind;

/// Descriptors kept out of the connection cap for the pooled calls to AGS, Redis and files.
const DESCRIPTOR_RESERVE: u64 = 512;

/// Connections past the cap are refused at once with 503 + `Retry-After`, in AGS's REST
/// error shape.
fn accept_options() -> serving::AcceptOptions {
    let body = serde_json::json!({
        "errorCode": accelbyte::models::error::codes::TOO_MANY_REQUESTS,
        "errorMessage": "the matchmaker is at its connection limit; retry later",
    });
    serving::AcceptOptions {
        max_connections: serving::default_connection_cap(DESCRIPTOR_RESERVE, 16_384),
        refusal: serving::Refusal {
            retry_after_secs: 1,
            content_type: "application/json",
            body: body.to_string().into(),
        },
        dispatch: None,
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then drains (see the module docs)
/// and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_accepting = CancellationToken::new();
    let app = crate::http::router(state.clone());
    let http = &state.config().http;
    let timeouts = serving::Timeouts {
        header: http.header_timeout,
        idle: http.idle_timeout,
    };
    let accepted = serving::accept::start_with(
        listener,
        accept_options(),
        Arc::clone(state.accept_stats()),
        timeouts,
    )?;
    let server = axum::serve(accepted, app)
        .with_graceful_shutdown(stop_accepting.clone().cancelled_owned())
        .into_future();
    let drain = async {
        shutdown.await;
        tracing::info!("shutting down: finishing matches in flight");
        state.begin_drain();
        stop_accepting.cancel();
        state.finish_drain().await;
        tracing::info!("matches in flight finished or handed back");
    };
    let (served, ()) = tokio::join!(server, drain);
    served
}

/// Serves `state` on `listener` through the server lifecycle ([`serving::lifecycle`]): the
/// returned handle's `shutdown` drains (see the module docs), then waits for the state's
/// background tasks; dropping it starts the same drain without waiting.
pub fn start(listener: TcpListener, state: AppState) -> std::io::Result<serving::Handle> {
    serving::Server::new(state.tasks().clone()).start(listener, move |listener, stop| {
        serve(listener, state, stop.cancelled_owned())
    })
}

/// A running matchmaker; dropping it starts a graceful shutdown.
#[derive(Debug)]
pub struct Handle {
    pub addr: SocketAddr,
    /// The match function's gRPC address, when the config asked for one.
    pub grpc_addr: Option<SocketAddr>,
    pub state: AppState,
    server: serving::Handle,
    grpc: Option<serving::Handle>,
}

impl Handle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.url("http")
    }

    /// `http://127.0.0.1:PORT` of the match function's gRPC server, when it serves one.
    pub fn grpc_url(&self) -> Option<String> {
        self.grpc_addr.map(|addr| format!("http://{addr}"))
    }

    /// Shuts down gracefully and waits until it is done (the match function first, then the
    /// HTTP API's drain); an error when a server failed or panicked, or a background task
    /// panicked or did not stop.
    pub async fn shutdown(self) -> Result<(), serving::ShutdownError> {
        if let Some(grpc) = self.grpc {
            grpc.shutdown().await?;
        }
        self.server.shutdown().await
    }
}

/// Starts a matchmaker on 127.0.0.1 with an ephemeral port (`config.addr` is ignored) and
/// returns once it is ready: store answering, keys and revocation list loaded. With a
/// `grpc_addr` it serves the match function too, on another ephemeral port of 127.0.0.1
/// ([`Handle::grpc_addr`]), its callers checked as `grpc_auth` says.
pub async fn spawn(mut config: Config) -> Result<Handle, StartError> {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = listener.local_addr()?;
    config.addr = addr;
    let grpc_listener = match config.grpc_addr {
        Some(_) => Some(bind(SocketAddr::from(([127, 0, 0, 1], 0)))?),
        None => None,
    };
    let grpc_addr = grpc_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    config.grpc_addr = grpc_addr;
    let state = AppState::start(config).await?;
    let grpc = grpc_listener
        .map(|listener| {
            let callers = state.match_function_callers();
            serving::Server::new(serving::Tasks::new()).start(listener, move |listener, stop| {
                crate::extend::serve_grpc(
                    listener,
                    crate::extend::MatchFunctionService::default(),
                    callers,
                    stop.cancelled_owned(),
                )
            })
        })
        .transpose()?;
    let server = start(listener, state.clone())?;
    let handle = Handle {
        addr,
        grpc_addr,
        state,
        server,
        grpc,
    };
    let deadline = tokio::time::Instant::now() + SPAWN_READY_TIMEOUT;
    loop {
        match handle.state.readiness().await {
            Ok(()) => return Ok(handle),
            Err(reasons) if tokio::time::Instant::now() >= deadline => {
                return Err(StartError::NotReady(
                    SPAWN_READY_TIMEOUT,
                    reasons.join("; "),
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
