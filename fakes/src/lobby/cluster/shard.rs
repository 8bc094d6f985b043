//! A lobby shard process: holds lobby WebSockets the primary hands it and relays their frames
//! over the bus (see the [module docs](super)).
//!
//! The shard keeps no user state: who a socket belongs to, what it should receive and when it
//! must close are all decided by the primary's hub. It only completes handshakes, runs the
//! same socket task a single-process fakes runs, writes what arrives on its channel, and
//! reports `opened`/`closed` and its counters. It exits when the primary's handoff link
//! closes (the primary is gone) or its bus subscription ends, taking its sockets with it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::{Channels, Down, STATS_EVERY, ShardStats, Up, handoff};
use crate::error::{ApiError, ErrorShape};
use crate::lobby::hub::{CHANNEL_CAPACITY, Close, Outbound};
use crate::lobby::ws::{self, Counts, Feed};
use accelbyte::models::error::codes;

/// How a shard is started (the primary passes these; not meant to be typed by people).
#[derive(Debug, Clone, clap::Args)]
pub struct ShardArgs {
    /// The primary's handoff socket.
    #[arg(long)]
    pub primary: PathBuf,
    /// The Redis the bus runs on.
    #[arg(long)]
    pub redis: String,
    /// The cluster's channel prefix.
    #[arg(long)]
    pub prefix: String,
    /// This shard's index.
    #[arg(long)]
    pub index: usize,
}

/// The shard's own counters.
#[derive(Debug, Default)]
pub struct ShardCounters {
    sockets_open: AtomicU64,
    frames_received: AtomicU64,
    error_frames_sent: AtomicU64,
    frames_dropped: AtomicU64,
}

impl ShardCounters {
    pub(crate) fn frame_received(&self) {
        self.frames_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error_frame(&self) {
        self.error_frames_sent.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ShardStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ShardStats {
            sockets_open: get(&self.sockets_open),
            frames_received: get(&self.frames_received),
            error_frames_sent: get(&self.error_frames_sent),
            frames_dropped: get(&self.frames_dropped),
        }
    }
}

/// What a socket's channel carries: 24 bytes, so a channel's first buffer block (32 slots,
/// allocated per connection) stays under 1 KiB.
pub(crate) enum ToSocket {
    Frame(Box<str>),
    Close(u16, Box<str>),
}

impl From<Down> for ToSocket {
    fn from(down: Down) -> Self {
        match down {
            Down::Frame { text, .. } => ToSocket::Frame(text.into_boxed_str()),
            Down::Close { code, reason, .. } => ToSocket::Close(code, reason.into_boxed_str()),
        }
    }
}

/// A socket's frames as the primary relays them.
pub(crate) struct RemoteFeed {
    rx: mpsc::Receiver<ToSocket>,
}

impl RemoteFeed {
    pub(crate) async fn next(&mut self) -> Outbound {
        match self.rx.recv().await {
            Some(ToSocket::Frame(text)) => Outbound::Frame(text.into()),
            Some(ToSocket::Close(code, reason)) => Outbound::Close(Close {
                code,
                reason: String::from(reason).into(),
            }),
            // The shard is shutting down.
            None => Outbound::Close(Close::UNKNOWN),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.rx.len()
    }
}

/// Open sockets by connection id.
type Sockets = Arc<Mutex<HashMap<u64, mpsc::Sender<ToSocket>>>>;

#[derive(Clone)]
struct ShardState {
    sockets: Sockets,
    counters: Arc<ShardCounters>,
    bus: redis::aio::MultiplexedConnection,
    up: Arc<str>,
}

impl ShardState {
    async fn publish(&self, message: &Up) {
        let Ok(payload) = serde_json::to_string(message) else {
            return;
        };
        let mut bus = self.bus.clone();
        let sent: redis::RedisResult<()> = redis::cmd("PUBLISH")
            .arg(&*self.up)
            .arg(payload)
            .query_async(&mut bus)
            .await;
        if let Err(error) = sent {
            tracing::warn!("lobby shard: bus publish failed: {error}");
        }
    }
}

/// The id the primary gave a handed-over connection.
#[derive(Debug, Clone, Copy)]
struct ConnId(u64);

/// Runs one shard until the primary goes away.
pub async fn run_shard(args: ShardArgs) -> anyhow::Result<()> {
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(
            "lobby shard {}: cannot raise open files: {error}",
            args.index
        );
    }
    let channels = Channels::new(args.prefix.clone());
    let client = redis::Client::open(args.redis.as_str()).context("lobby shard: redis url")?;
    let bus = client
        .get_multiplexed_async_connection_with_config(&super::bus_connection_config())
        .await
        .context("lobby shard: connect to the bus")?;
    let mut pubsub = client
        .get_async_pubsub()
        .await
        .context("lobby shard: subscribe to the bus")?;
    pubsub.subscribe(channels.down(args.index)).await?;

    let state = ShardState {
        sockets: Arc::default(),
        counters: Arc::default(),
        bus,
        up: channels.up().into(),
    };
    let mut link = UnixStream::connect(&args.primary)
        .await
        .with_context(|| format!("lobby shard: connect to {}", args.primary.display()))?;
    link.write_all(&(args.index as u64).to_le_bytes()).await?;

    let router = Router::new()
        .route("/lobby/", get(upgrade))
        .route("/lobby", get(upgrade))
        .with_state(state.clone());

    let mut messages = pubsub.into_on_message();
    let sockets = Arc::clone(&state.sockets);
    let counters = Arc::clone(&state.counters);
    let bus_task = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let Ok(down) = serde_json::from_slice::<Down>(message.get_payload_bytes()) else {
                tracing::warn!("lobby shard: unreadable bus message");
                continue;
            };
            let c = match &down {
                Down::Frame { c, .. } | Down::Close { c, .. } => *c,
            };
            let tx = sockets.lock().get(&c).cloned();
            // A frame for a socket that closed meanwhile is lost, as on the wire.
            if let Some(tx) = tx
                && tx.try_send(down.into()).is_err()
            {
                counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let stats_state = state.clone();
    let index = args.index;
    let stats_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(STATS_EVERY);
        loop {
            tick.tick().await;
            let stats = stats_state.counters.snapshot();
            stats_state
                .publish(&Up::Stats {
                    shard: index,
                    stats,
                })
                .await;
        }
    });

    tracing::info!("lobby shard {} ready", args.index);
    let result = tokio::select! {
        received = accept_handoffs(&link, router) => received,
        _ = bus_task => Err(anyhow::anyhow!("lobby shard {index}: bus subscription ended")),
    };
    stats_task.abort();
    result
}

/// Serves each connection the primary hands over, until the link closes.
async fn accept_handoffs(link: &UnixStream, router: Router) -> anyhow::Result<()> {
    while let Some((id, stream)) = handoff::recv(link).await? {
        stream.set_nonblocking(true)?;
        let stream = tokio::net::TcpStream::from_std(stream)?;
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnId(id));
                    let router = router.clone();
                    async move {
                        use tower::ServiceExt;
                        router.oneshot(request.map(axum::body::Body::new)).await
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await;
        });
    }
    Ok(())
}

/// The upgrade, for a connection the primary already authenticated.
async fn upgrade(
    State(state): State<ShardState>,
    Extension(ConnId(id)): Extension<ConnId>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            state.publish(&Up::Closed { c: id }).await;
            return ApiError::new(
                rejection.status(),
                codes::VALIDATION_ERROR,
                rejection.body_text(),
            )
            .with_shape(ErrorShape::Rest)
            .into_response();
        }
    };
    let envelope = ws::wants_envelope(&headers);
    ws::configure(ws).on_upgrade(move |socket| async move {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        state.sockets.lock().insert(id, tx);
        state.counters.sockets_open.fetch_add(1, Ordering::Relaxed);
        state.publish(&Up::Opened { c: id }).await;
        ws::serve_socket(
            socket,
            Feed::Remote(RemoteFeed { rx }),
            Counts::Shard(Arc::clone(&state.counters)),
            envelope,
        )
        .await;
        state.sockets.lock().remove(&id);
        state.counters.sockets_open.fetch_sub(1, Ordering::Relaxed);
        state.publish(&Up::Closed { c: id }).await;
    })
}
