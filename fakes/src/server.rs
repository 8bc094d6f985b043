//! Binding and serving: a listener with a deep accept backlog, plain HTTP or TLS, [`start`]
//! through the shared server lifecycle ([`serving::lifecycle`]: graceful shutdown that also
//! stops the state's background tasks), and [`spawn`] — the one way tests, benches and the
//! sim start a fakes instance (HTTPS too, with [`SpawnOptions::tls_cert_dir`]).
//! Connections come through [`serving::accept`], which survives descriptor exhaustion, refuses
//! connections past a cap with 503 + `Retry-After` and, with lobby shards, hands lobby sockets
//! to them.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::keys::SigningKey;
use crate::lobby::cluster::{ClusterConfig, Primary};
use crate::state::{AppState, FakesConfig};
use crate::tls::SelfSigned;
use serving::{AcceptOptions, Dispatch, Refusal};

pub use serving::{LISTEN_BACKLOG, bind};

/// Descriptors kept out of the connection cap for outgoing calls, lobby shard links, the bus
/// and files.
const DESCRIPTOR_RESERVE: u64 = 512;

/// The accept options for `state`: a connection cap under the open-files limit, refused in
/// the AGS REST error shape.
fn accept_options(lobby_shards: Option<Arc<Primary>>) -> AcceptOptions {
    let body = serde_json::json!({
        "errorCode": accelbyte::models::error::codes::TOO_MANY_REQUESTS,
        "errorMessage": "fakes is at its connection limit; retry later",
    });
    AcceptOptions {
        max_connections: serving::default_connection_cap(DESCRIPTOR_RESERVE, 16_384),
        refusal: Refusal {
            retry_after_secs: 1,
            content_type: "application/json",
            body: body.to_string().into(),
        },
        dispatch: lobby_shards.map(|p| p as Arc<dyn Dispatch>),
    }
}

/// Serves plain HTTP on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, None, shutdown).await
}

/// [`serve`], handing lobby sockets to `lobby_shards` when given.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    lobby_shards: Option<Arc<Primary>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::app::router(state.clone());
    let options = accept_options(lobby_shards);
    let accepted = serving::accept::start(listener, options, Arc::clone(&state.accept))?;
    axum::serve(accepted, app.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}

/// How [`spawn_with_options`] starts an instance besides its [`FakesConfig`].
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Hold the lobby's sockets in shard processes (plain HTTP only).
    pub lobby_shards: Option<ClusterConfig>,
    /// Serve HTTPS/WSS with a self-signed certificate written to this directory
    /// (`matchbench-fakes-PORT.pem`), as `fakes serve --tls --cert-dir` does.
    pub tls_cert_dir: Option<PathBuf>,
}

/// Serves `state` on `listener` through the server lifecycle: plain HTTP (lobby sockets
/// handed to `lobby_shards` when given) or, with `cert`, HTTPS/WSS. The returned handle stops
/// the server and every background task of `state` (see [`serving::lifecycle`]).
pub fn start(
    listener: TcpListener,
    state: AppState,
    lobby_shards: Option<Arc<Primary>>,
    cert: Option<SelfSigned>,
) -> std::io::Result<serving::Handle> {
    let server = serving::Server::new(state.tasks.clone());
    match cert {
        Some(cert) => server.start(listener, move |listener, stop| async move {
            crate::tls::serve_tls(listener, state, &cert, stop.cancelled_owned()).await
        }),
        None => server.start(listener, move |listener, stop| {
            serve_with(listener, state, lobby_shards, stop.cancelled_owned())
        }),
    }
}

/// A running fakes instance; dropping it stops the server and its background tasks.
#[derive(Debug)]
pub struct Handle {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The lobby shards, when started with them.
    pub lobby_shards: Option<Arc<Primary>>,
    /// Where the certificate's PEM was written, when serving HTTPS.
    pub cert_path: Option<PathBuf>,
    server: serving::Handle,
}

impl Handle {
    /// `http://127.0.0.1:PORT` (`https://` with TLS): the base URL to give SDKs and clients.
    pub fn base_url(&self) -> String {
        let scheme = if self.cert_path.is_some() {
            "https"
        } else {
            "http"
        };
        self.server.url(scheme)
    }

    /// Stops the server and its background tasks and waits for them; an error when the
    /// server failed or panicked, or a background task panicked or did not stop.
    pub async fn shutdown(self) -> Result<(), serving::ShutdownError> {
        self.server.shutdown().await
    }
}

/// Starts fakes on 127.0.0.1 with an ephemeral port; returns once it accepts connections.
pub async fn spawn(config: FakesConfig) -> anyhow::Result<Handle> {
    spawn_with_options(config, SpawnOptions::default()).await
}

/// [`spawn`], with the lobby's sockets held by shard processes when `lobby_shards` is given
/// (returns once every shard is connected).
pub async fn spawn_with(
    config: FakesConfig,
    lobby_shards: Option<ClusterConfig>,
) -> anyhow::Result<Handle> {
    spawn_with_options(
        config,
        SpawnOptions {
            lobby_shards,
            ..SpawnOptions::default()
        },
    )
    .await
}

/// [`spawn`] with [`SpawnOptions`]: lobby shards, or HTTPS/WSS.
pub async fn spawn_with_options(
    config: FakesConfig,
    options: SpawnOptions,
) -> anyhow::Result<Handle> {
    anyhow::ensure!(
        options.lobby_shards.is_none() || options.tls_cert_dir.is_none(),
        "lobby shards work with plain HTTP only (the primary reads each request head to route it)"
    );
    let key = tokio::task::spawn_blocking(SigningKey::process_default).await??;
    let state = AppState::open(config, key)?;
    let primary = match &options.lobby_shards {
        Some(cluster) => Some(Primary::start(state.clone(), cluster).await?),
        None => None,
    };
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = listener.local_addr()?;
    let cert = match &options.tls_cert_dir {
        Some(dir) => Some(crate::tls::self_signed(dir, addr.port())?),
        None => None,
    };
    let cert_path = cert.as_ref().map(|c| c.cert_path.clone());
    let server = start(listener, state.clone(), primary.clone(), cert)?;
    Ok(Handle {
        addr,
        state,
        lobby_shards: primary,
        cert_path,
        server,
    })
}
