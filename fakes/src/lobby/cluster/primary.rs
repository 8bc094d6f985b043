//! The primary's side of the lobby shards: starting them, handing them lobby connections, and
//! relaying the hub's frames to them (see the [module docs](super)).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serving::{Dispatch, Dispatched};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::classify::{self, Head};
use super::{Channels, ClusterConfig, Down, Up, handoff};
use crate::lobby::hub::{CHANNEL_CAPACITY, Hub, Outbound};
use crate::state::AppState;

/// How long shards may take to start and connect.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a handed-over connection may take to finish its WebSocket handshake.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// One shard as the primary sees it.
#[derive(Debug)]
struct Link {
    index: usize,
    stream: UnixStream,
    alive: AtomicBool,
    /// Connections handed over and not yet closed.
    open: AtomicU64,
    pid: Option<u32>,
}

/// What a shard says about one of its connections. One byte: a channel of these costs a
/// relay 32 bytes of buffer, not 32 bus messages' worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Opened,
    Closed,
}

/// A handed-over connection's event inbox.
#[derive(Debug)]
struct RelayEntry {
    shard: usize,
    events: mpsc::Sender<Lifecycle>,
}

type Relays = Arc<Mutex<HashMap<u64, RelayEntry>>>;

/// The running shards of one fakes instance. Dropping it kills them.
#[derive(Debug)]
pub struct Primary {
    state: AppState,
    links: Vec<Arc<Link>>,
    relays: Relays,
    bus: redis::aio::MultiplexedConnection,
    channels: Channels,
    bus_alive: Arc<AtomicBool>,
    next_id: AtomicU64,
    _children: Vec<Child>,
}

impl Primary {
    /// Starts `config.shards` shard processes and waits until each has connected.
    pub async fn start(state: AppState, config: &ClusterConfig) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(config.shards > 0, "lobby shards: at least one is needed");
        let client = redis::Client::open(config.redis_url.as_str())
            .with_context(|| format!("lobby shards: bad redis url {}", config.redis_url))?;
        let bus = client
            .get_multiplexed_async_connection_with_config(&super::bus_connection_config())
            .await
            .with_context(|| format!("lobby shards: cannot reach redis at {}", config.redis_url))?;
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let channels = Channels::new(format!("fakes:{run_id}"));
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channels.up()).await?;

        let socket_path = std::env::temp_dir().join(format!("fakes-lobby-{run_id}.sock"));
        let listener = UnixListener::bind(&socket_path)
            .with_context(|| format!("lobby shards: cannot bind {}", socket_path.display()))?;
        let _remove = RemoveOnDrop(socket_path.clone());

        let mut children = Vec::with_capacity(config.shards);
        for index in 0..config.shards {
            let child = Command::new(&config.command.program)
                .args(&config.command.args)
                .arg("--primary")
                .arg(&socket_path)
                .arg("--redis")
                .arg(&config.redis_url)
                .arg("--prefix")
                .arg(channels.prefix())
                .arg("--index")
                .arg(index.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| {
                    format!(
                        "lobby shards: cannot start {}",
                        config.command.program.display()
                    )
                })?;
            children.push(child);
        }

        let mut streams: Vec<Option<UnixStream>> = (0..config.shards).map(|_| None).collect();
        tokio::time::timeout(START_TIMEOUT, async {
            while streams.iter().any(Option::is_none) {
                let (mut stream, _) = listener.accept().await?;
                let mut index = [0u8; 8];
                stream.read_exact(&mut index).await?;
                let index = usize::try_from(u64::from_le_bytes(index))?;
                let slot = streams
                    .get_mut(index)
                    .ok_or_else(|| anyhow::anyhow!("lobby shard index {index} out of range"))?;
                *slot = Some(stream);
            }
            anyhow::Ok(())
        })
        .await
        .context("lobby shards did not all connect in time")??;

        let links: Vec<Arc<Link>> = streams
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(index, stream)| {
                Arc::new(Link {
                    index,
                    stream,
                    alive: AtomicBool::new(true),
                    open: AtomicU64::new(0),
                    pid: children[index].id(),
                })
            })
            .collect();
        let primary = Arc::new(Self {
            state,
            links,
            relays: Arc::default(),
            bus,
            channels,
            bus_alive: Arc::new(AtomicBool::new(true)),
            next_id: AtomicU64::new(1),
            _children: children,
        });
        for link in &primary.links {
            primary
                .state
                .tasks
                .spawn(watch_link(Arc::downgrade(&primary), Arc::clone(link)));
        }
        primary
            .state
            .tasks
            .spawn(listen(Arc::downgrade(&primary), pubsub));
        tracing::info!(
            "lobby: {} shard processes hold the WebSockets",
            primary.links.len()
        );
        Ok(primary)
    }

    /// Process ids of the shards, by index.
    pub fn shard_pids(&self) -> Vec<Option<u32>> {
        self.links.iter().map(|l| l.pid).collect()
    }

    /// Shards still connected.
    pub fn live_shards(&self) -> usize {
        self.links
            .iter()
            .filter(|l| l.alive.load(Ordering::Relaxed))
            .count()
    }

    /// The live shard with the fewest connections.
    fn pick(&self) -> Option<Arc<Link>> {
        if !self.bus_alive.load(Ordering::Relaxed) {
            return None;
        }
        self.links
            .iter()
            .filter(|l| l.alive.load(Ordering::Relaxed))
            .min_by_key(|l| l.open.load(Ordering::Relaxed))
            .cloned()
    }

    /// Hands `stream` to a shard if it is a lobby upgrade of a valid user; gives it back
    /// otherwise.
    async fn route(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(TcpStream, SocketAddr)> {
        let Head::LobbyUpgrade {
            bearer: Some(token),
        } = classify::peek_head(&stream).await
        else {
            return Some((stream, peer));
        };
        let Ok(caller) = self.state.iam.authenticate(&token) else {
            return Some((stream, peer));
        };
        let Some(user_id) = caller.user_id() else {
            return Some((stream, peer));
        };
        let Some(link) = self.pick() else {
            return Some((stream, peer));
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (events, inbox) = mpsc::channel(4);
        self.relays.lock().insert(
            id,
            RelayEntry {
                shard: link.index,
                events,
            },
        );
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(error) => {
                self.relays.lock().remove(&id);
                tracing::warn!("lobby: cannot detach a connection for handoff: {error}");
                return None;
            }
        };
        link.open.fetch_add(1, Ordering::Relaxed);
        match handoff::send(&link.stream, id, std_stream).await {
            Ok(()) => {
                let relay = Relay {
                    id,
                    hub: self.state.lobby.clone(),
                    bus: self.bus.clone(),
                    down: self.channels.down(link.index).into(),
                    relays: Arc::clone(&self.relays),
                    link,
                };
                let namespace = caller.namespace().to_owned();
                let user_id = user_id.to_owned();
                tokio::spawn(relay.run(namespace.into(), user_id.into(), inbox));
                None
            }
            Err((error, std_stream)) => {
                self.relays.lock().remove(&id);
                link.open.fetch_sub(1, Ordering::Relaxed);
                link.alive.store(false, Ordering::Relaxed);
                tracing::error!("lobby shard {}: handoff failed: {error}", link.index);
                let stream = TcpStream::from_std(std_stream).ok()?;
                Some((stream, peer))
            }
        }
    }
}

impl Dispatch for Primary {
    fn dispatch(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) -> Dispatched {
        Box::pin(self.route(stream, peer))
    }
}

/// One handed-over connection's stand-in: registered in the hub like a local socket task,
/// forwarding what the hub hands it to the shard.
struct Relay {
    id: u64,
    hub: Hub,
    bus: redis::aio::MultiplexedConnection,
    down: Arc<str>,
    relays: Relays,
    link: Arc<Link>,
}

impl Relay {
    async fn run(
        mut self,
        namespace: Box<str>,
        user_id: Box<str>,
        mut inbox: mpsc::Receiver<Lifecycle>,
    ) {
        let opened = tokio::time::timeout(OPEN_TIMEOUT, inbox.recv()).await;
        if matches!(opened, Ok(Some(Lifecycle::Opened))) {
            Box::pin(self.serve(&namespace, &user_id, &mut inbox)).await;
        }
        self.relays.lock().remove(&self.id);
        self.link.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Relays until the socket closes or the hub closes it.
    async fn serve(
        &mut self,
        namespace: &str,
        user_id: &str,
        inbox: &mut mpsc::Receiver<Lifecycle>,
    ) {
        let mut conn = self.hub.connect(namespace, user_id);
        let mut backlog_left = conn.pump();
        loop {
            tokio::select! {
                biased;
                event = inbox.recv() => match event {
                    Some(Lifecycle::Closed) | None => return,
                    Some(Lifecycle::Opened) => {}
                },
                outbound = conn.next() => match outbound {
                    Outbound::Frame(text) => {
                        // Boxed: the bus call's future is large, and inlined it would sit in
                        // every idle relay's state (100,000 of them at launch scale).
                        Box::pin(self.publish(&Down::Frame { c: self.id, text })).await;
                        if backlog_left && conn.pending() <= CHANNEL_CAPACITY / 2 {
                            backlog_left = conn.pump();
                        }
                    }
                    Outbound::Close(close) => {
                        let message = Down::Close {
                            c: self.id,
                            code: close.code,
                            reason: close.reason.into_owned(),
                        };
                        Box::pin(self.publish(&message)).await;
                        return;
                    }
                },
            }
        }
    }

    async fn publish(&mut self, message: &Down) {
        let Ok(payload) = serde_json::to_string(message) else {
            return;
        };
        let sent: redis::RedisResult<()> = redis::cmd("PUBLISH")
            .arg(&*self.down)
            .arg(payload)
            .query_async(&mut self.bus)
            .await;
        if let Err(error) = sent {
            tracing::warn!("lobby: bus publish failed: {error}");
        }
    }
}

/// Marks a shard dead when its link closes, and ends its connections' relays.
async fn watch_link(primary: Weak<Primary>, link: Arc<Link>) {
    let mut buf = [0u8; 64];
    loop {
        if link.stream.readable().await.is_err() {
            break;
        }
        match link.stream.try_read(&mut buf) {
            Ok(0) => break,
            // Shards send nothing after their index; ignore stray bytes.
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    link.alive.store(false, Ordering::Relaxed);
    let Some(primary) = primary.upgrade() else {
        return;
    };
    let mut relays = primary.relays.lock();
    let before = relays.len();
    // Dropping a relay's inbox ends it, which unregisters its hub connection.
    relays.retain(|_, entry| entry.shard != link.index);
    tracing::error!(
        "lobby shard {} is gone; its {} sockets are closed",
        link.index,
        before - relays.len()
    );
}

/// Reads the shards' announcements.
async fn listen(primary: Weak<Primary>, pubsub: redis::aio::PubSub) {
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Some(primary) = primary.upgrade() else {
            return;
        };
        let Ok(up) = serde_json::from_slice::<Up>(message.get_payload_bytes()) else {
            tracing::warn!("lobby: unreadable bus message");
            continue;
        };
        match up {
            Up::Opened { c } | Up::Closed { c } => {
                let event = if matches!(up, Up::Opened { .. }) {
                    Lifecycle::Opened
                } else {
                    Lifecycle::Closed
                };
                let events = primary
                    .relays
                    .lock()
                    .get(&c)
                    .map(|entry| entry.events.clone());
                if let Some(events) = events {
                    let _ = events.try_send(event);
                }
            }
            Up::Stats { shard, stats } => primary.state.lobby_shards.record(shard, stats),
        }
    }
    if let Some(primary) = primary.upgrade() {
        primary.bus_alive.store(false, Ordering::Relaxed);
        tracing::error!(
            "lobby: the bus subscription ended; new lobby sockets stay in this process"
        );
    }
}

/// Removes the handoff socket's path once every shard has connected (or start failed).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
