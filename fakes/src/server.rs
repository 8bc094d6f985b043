//! Binding and serving: a listener with a deep accept backlog, plain HTTP or TLS, graceful
//! shutdown, and [`spawn`] — the one way tests, benches and the sim start a fakes instance.
//! Connections come through [`serving::accept`], which survives descriptor exhaustion, refuses
//! connections past a cap with 503 + `Retry-After` and, with lobby shards, hands lobby sockets
//! to them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::keys::SigningKey;
use crate::lobby::cluster::{ClusterConfig, Primary};
use crate::state::{AppState, FakesConfig};
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

/// A running fakes instance; dropping it stops the server.
#[derive(Debug)]
pub struct Handle {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The lobby shards, when started with them.
    pub lobby_shards: Option<Arc<Primary>>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Handle {
    /// `http://127.0.0.1:PORT`: the base URL to give SDKs and clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.cancel.cancel();
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts fakes on 127.0.0.1 with an ephemeral port; returns once it accepts connections.
pub async fn spawn(config: FakesConfig) -> anyhow::Result<Handle> {
    spawn_with(config, None).await
}

/// [`spawn`], with the lobby's sockets held by shard processes when `lobby_shards` is given
/// (returns once every shard is connected).
pub async fn spawn_with(
    config: FakesConfig,
    lobby_shards: Option<ClusterConfig>,
) -> anyhow::Result<Handle> {
    let key = tokio::task::spawn_blocking(SigningKey::process_default).await??;
    let state = AppState::open(config, key)?;
    let primary = match &lobby_shards {
        Some(cluster) => Some(Primary::start(state.clone(), cluster).await?),
        None => None,
    };
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let task = tokio::spawn(serve_with(
        listener,
        state.clone(),
        primary.clone(),
        async move { stop.cancelled().await },
    ));
    Ok(Handle {
        addr,
        state,
        lobby_shards: primary,
        cancel,
        task: Some(task),
    })
}
