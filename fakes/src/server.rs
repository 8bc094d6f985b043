//! Binding and serving: a listener with a deep accept backlog, plain HTTP or TLS, graceful
//! shutdown, and [`spawn`] — the one way tests, benches and the sim start a fakes instance.
//! Connections come through [`crate::accept`], which survives descriptor exhaustion and, with
//! lobby shards, hands lobby sockets to them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::accept::{self, Dispatch};
use crate::keys::SigningKey;
use crate::lobby::cluster::{ClusterConfig, Primary};
use crate::state::{AppState, FakesConfig};

/// Accept backlog: the default 128 overflows under connection bursts and stalls clients 1–2 s.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with [`LISTEN_BACKLOG`] and `SO_REUSEADDR`.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
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
    let dispatch = lobby_shards.map(|p| p as Arc<dyn Dispatch>);
    let accepted = accept::start(listener, dispatch, Arc::clone(&state.accept))?;
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
    let state = AppState::new(config, key);
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
