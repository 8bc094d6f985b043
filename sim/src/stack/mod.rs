//! The embedded stack spread over processes, for loads one process cannot hold.
//!
//! One process holds at most ~20,000 open files, and every connected virtual player costs the
//! stack a lobby socket. So past a few thousand players the stack lays itself out over
//! processes — the open-files budget decides ([`StackLayout::for_population`]), not the user:
//!
//! - **fakes** stays in this process and keeps every service and all state; its lobby
//!   WebSockets live in *lobby shard* processes behind the same base URL (see
//!   `fakes::lobby::cluster`) — unless a chaos step targets it: then it runs as a process of
//!   its own with durable state ([`fakes`]);
//! - **matchmaker replicas** run as processes of their own on one Redis ([`replica`]), and
//!   players spread their requests over them;
//! - **Redis**, when nobody gave one, is a private `redis-server` this stack starts
//!   ([`redis`]) and stops.
//!
//! Every child runs this same program with a hidden `internal` subcommand, so one binary is
//! all a user needs, and every child exits when this process goes away (a shard when its
//! handoff link closes, a replica when its stdin closes), so a crash leaves no orphans.

pub mod child;
pub mod control;
pub mod fakes;
pub mod proxy;
pub mod redis;
pub mod replica;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use url::Url;

use crate::target::EmbeddedMatchmakerConfig;
use control::{LinkName, ReplicaSlot, StackControl};
use proxy::LinkProxy;
use redis::LocalRedis;
use replica::ReplicaSpec;

/// Descriptors a stack process keeps for everything but lobby sockets.
pub const PROCESS_RESERVE: u64 = 2_000;
/// Up to this many players, the whole stack stays in one process (today's embedded target).
pub const SINGLE_PROCESS_PLAYERS: u64 = 8_000;
/// Matchmaker replicas a multi-process stack runs unless told otherwise.
pub const DEFAULT_REPLICAS: usize = 2;

/// How the embedded stack is laid out over processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackLayout {
    /// Lobby shard processes (0: lobby sockets stay in the fakes process).
    pub lobby_shards: usize,
    /// Matchmaker replica processes on Redis (0: one matchmaker in this process, in memory).
    pub replicas: usize,
    /// Ready for chaos: Redis keeps an append-only file (a restart keeps the queue), and the
    /// replicas reach Redis and fakes through proxies a partition can cut.
    pub chaos: bool,
    /// fakes runs as a process of its own with durable state ([`fakes`]), so a chaos step can
    /// kill, pause or restart it; otherwise it lives in this process.
    pub fakes_process: bool,
}

impl StackLayout {
    /// Everything in this process.
    pub const SINGLE: StackLayout = StackLayout {
        lobby_shards: 0,
        replicas: 0,
        chaos: false,
        fakes_process: false,
    };

    /// The layout for `peak_players` connected players when each process may open
    /// `open_files` descriptors.
    pub fn for_population(peak_players: u64, open_files: u64) -> Self {
        if peak_players <= SINGLE_PROCESS_PLAYERS {
            return Self::SINGLE;
        }
        let per_shard = open_files.saturating_sub(PROCESS_RESERVE).max(1_000);
        let shards = peak_players.div_ceil(per_shard);
        Self {
            lobby_shards: usize::try_from(shards).unwrap_or(usize::MAX),
            replicas: DEFAULT_REPLICAS,
            chaos: false,
            fakes_process: false,
        }
    }

    /// Whether anything runs outside this process.
    pub fn is_multi_process(&self) -> bool {
        self.lobby_shards > 0 || self.replicas > 0
    }
}

/// One child process of the stack, for per-process figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackProcess {
    /// `lobby-shard-0`, `matchmaker-1`, `redis`, …
    pub role: String,
    pub pid: u32,
}

/// Where the stack's fakes runs.
#[derive(Debug)]
pub enum FakesHost {
    /// In this process, with its lobby shards if any.
    InProcess(::fakes::Handle),
    /// A process of its own (its slot is in [`StackControl::fakes`]), keeping its state in
    /// `state_dir`, removed when this goes away.
    Process { url: Url, state_dir: StateDir },
}

impl FakesHost {
    /// The base URL players and replicas use.
    pub fn base_url(&self) -> String {
        match self {
            FakesHost::InProcess(handle) => handle.base_url(),
            FakesHost::Process { url, .. } => url.as_str().trim_end_matches('/').to_owned(),
        }
    }

    /// The state, when fakes lives in this process.
    pub fn state(&self) -> Option<::fakes::AppState> {
        match self {
            FakesHost::InProcess(handle) => Some(handle.state.clone()),
            FakesHost::Process { .. } => None,
        }
    }

    /// Stops an in-process fakes (a process is stopped by its slot).
    pub async fn shutdown(self) {
        if let FakesHost::InProcess(handle) = self {
            let _ = handle.shutdown().await;
        }
    }
}

/// A directory of this run, removed on drop.
#[derive(Debug)]
pub struct StateDir(pub PathBuf);

impl StateDir {
    fn create(what: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "matchbench-{what}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running multi-process stack. Dropping it stops every child.
#[derive(Debug)]
pub struct MultiStack {
    pub fakes: FakesHost,
    /// The replicas, the Redis this stack started (none when one was given) and the links'
    /// proxies, for chaos steps.
    pub control: Arc<StackControl>,
    pub redis_url: Option<String>,
}

impl MultiStack {
    /// Starts fakes (with its lobby shards) in this process, then the replicas. `program` is
    /// this binary; children run `program internal …`. `matchmaker.fakes_base_url` is
    /// replaced by the started fakes' URL. `redis_url`: use this Redis instead of starting one.
    pub async fn start(
        layout: StackLayout,
        fakes_config: ::fakes::FakesConfig,
        mut matchmaker: EmbeddedMatchmakerConfig,
        program: &Path,
        redis_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let needs_redis = layout.lobby_shards > 0 || layout.replicas > 0;
        let (redis, redis_url) = match (needs_redis, redis_url) {
            (false, url) => (None, url),
            (true, Some(url)) => (None, Some(url)),
            (true, None) => {
                let local = LocalRedis::start(layout.chaos).await?;
                let url = local.url().to_owned();
                (Some(local), Some(url))
            }
        };
        let cluster = match (layout.lobby_shards, &redis_url) {
            (0, _) | (_, None) => None,
            (shards, Some(url)) => Some(::fakes::lobby::cluster::ClusterConfig {
                shards,
                redis_url: url.clone(),
                command: ::fakes::lobby::cluster::ShardCommand {
                    program: program.to_owned(),
                    args: internal_args(INTERNAL_LOBBY_SHARD),
                },
            }),
        };
        let (fakes, fakes_slot) = if layout.fakes_process {
            anyhow::ensure!(
                cluster.is_none(),
                "fakes as a process of its own holds its lobby sockets itself (no lobby shards)"
            );
            let state_dir = StateDir::create("fakes")?;
            let spec = fakes::FakesSpec::new(&fakes_config, state_dir.0.clone());
            let slot =
                control::FakesSlot::start(program.to_owned(), internal_args(INTERNAL_FAKES), spec)
                    .await
                    .context("fakes process")?;
            let url = slot.url.clone();
            (FakesHost::Process { url, state_dir }, Some(slot))
        } else {
            let handle = ::fakes::server::spawn_with(fakes_config, cluster)
                .await
                .context("embedded fakes")?;
            (FakesHost::InProcess(handle), None)
        };
        matchmaker.fakes_base_url = Url::parse(&fakes.base_url())?;

        // Under chaos the replicas reach Redis and fakes through proxies a partition can cut.
        let mut links = Vec::new();
        let mut replica_redis_url = redis_url.clone();
        if layout.chaos && layout.replicas > 0 {
            if let Some(url) = &redis_url {
                let proxy = LinkProxy::start(
                    &LinkName::MatchmakerRedis.to_string(),
                    socket_addr(&Url::parse(url)?)?,
                )
                .await?;
                replica_redis_url = Some(format!("redis://{}", proxy.addr()));
                links.push((LinkName::MatchmakerRedis, proxy));
            }
            let proxy = LinkProxy::start(
                &LinkName::MatchmakerFakes.to_string(),
                socket_addr(&matchmaker.fakes_base_url)?,
            )
            .await?;
            matchmaker
                .fakes_base_url
                .set_port(Some(proxy.addr().port()))
                .map_err(|()| anyhow::anyhow!("fakes url cannot take a port"))?;
            links.push((LinkName::MatchmakerFakes, proxy));
        }

        let mut replicas = Vec::with_capacity(layout.replicas);
        if let Some(url) = &replica_redis_url {
            let prefix = format!("matchbench:{}", std::process::id());
            for index in 0..layout.replicas {
                let spec = ReplicaSpec::new(index, &matchmaker, url, &prefix);
                let slot =
                    ReplicaSlot::start(program.to_owned(), internal_args(INTERNAL_REPLICA), spec)
                        .await?;
                replicas.push(slot);
            }
        }
        Ok(Self {
            fakes,
            control: Arc::new(StackControl::new(replicas, fakes_slot, redis, links)),
            redis_url,
        })
    }

    /// Where players send matchmaking requests, one per replica.
    pub fn matchmaker_urls(&self) -> Vec<Url> {
        self.control
            .replicas
            .iter()
            .map(|r| r.url.clone())
            .collect()
    }

    /// The replicas' match function gRPC addresses (none unless the settings ask for them).
    pub fn match_function_urls(&self) -> Vec<Url> {
        self.control
            .replicas
            .iter()
            .filter_map(|r| r.grpc_url.clone())
            .collect()
    }

    /// Every child process with its role.
    pub fn processes(&self) -> Vec<StackProcess> {
        let mut out = Vec::new();
        if let Some(primary) = match &self.fakes {
            FakesHost::InProcess(handle) => handle.lobby_shards.as_ref(),
            FakesHost::Process { .. } => None,
        } {
            for (index, pid) in primary.shard_pids().into_iter().enumerate() {
                if let Some(pid) = pid {
                    out.push(StackProcess {
                        role: format!("lobby-shard-{index}"),
                        pid,
                    });
                }
            }
        }
        out.extend(self.control.processes());
        out
    }
}

/// The loopback socket address a URL points at.
fn socket_addr(url: &Url) -> anyhow::Result<SocketAddr> {
    url.socket_addrs(|| None)?
        .into_iter()
        .next()
        .with_context(|| format!("{url} names no address"))
}

/// The hidden subcommand children run under.
pub const INTERNAL: &str = "internal";
/// `internal lobby-shard …`: one fakes lobby shard.
pub const INTERNAL_LOBBY_SHARD: &str = "lobby-shard";
/// `internal fakes --spec JSON`: fakes as a process of its own.
pub const INTERNAL_FAKES: &str = "fakes";
/// `internal matchmaker-replica --spec JSON`: one matchmaker replica.
pub const INTERNAL_REPLICA: &str = "matchmaker-replica";

fn internal_args(what: &str) -> Vec<String> {
    vec![INTERNAL.to_owned(), what.to_owned()]
}

/// This program, for starting children.
pub fn this_program() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find this program to start the stack's processes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_budget_decides_the_layout() {
        assert_eq!(
            StackLayout::for_population(500, 20_000),
            StackLayout::SINGLE
        );
        assert!(!StackLayout::SINGLE.is_multi_process());
        let launch = StackLayout::for_population(100_000, 20_000);
        assert_eq!(launch.lobby_shards, 6, "18,000 sockets per shard");
        assert_eq!(launch.replicas, DEFAULT_REPLICAS);
        assert!(launch.is_multi_process());
        assert_eq!(StackLayout::for_population(20_000, 20_000).lobby_shards, 2);
    }
}
