//! Matchmaker replicas as child processes of the stack, all on one Redis: the same matchmaker
//! an embedded target runs (its configuration comes from the same place,
//! [`crate::target::matchmaker_config`]), but each in its own process, as they would be
//! deployed — so each has its own descriptors and can fail on its own.
//!
//! The parent re-runs its own program with a hidden subcommand and a JSON spec. The child
//! binds an ephemeral loopback port, waits until it is ready, prints `READY <url>` on stdout
//! (`READY <url> <grpc-url>` when its configuration asks for the match function's gRPC server
//! too, `grpc_addr`), and serves until SIGTERM — or until its stdin closes, which is how it learns that the
//! parent died (no orphaned replicas after a crash).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use url::Url;

use super::child::{READY, READY_TIMEOUT, SpecChild};
use crate::scenario::ClientCredentials;
use crate::target::EmbeddedMatchmakerConfig;

/// Everything a replica process needs, passed as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaSpec {
    pub index: usize,
    pub fakes_base_url: String,
    pub namespace: String,
    pub game_client_id: String,
    pub game_client_secret: Option<String>,
    /// The scenario's `[target.matchmaker]` table, as TOML text.
    pub settings_toml: String,
    pub redis_url: String,
    pub redis_prefix: String,
    /// The loopback port to listen on; 0 for any. A restarted replica takes its old port
    /// again, so players' URLs stay valid.
    #[serde(default)]
    pub port: u16,
    /// The same for the match function's gRPC server, when the settings ask for one.
    #[serde(default)]
    pub grpc_port: u16,
}

impl ReplicaSpec {
    /// The spec of replica `index` of an embedded target.
    pub fn new(
        index: usize,
        embedded: &EmbeddedMatchmakerConfig,
        redis_url: &str,
        redis_prefix: &str,
    ) -> Self {
        Self {
            index,
            fakes_base_url: embedded.fakes_base_url.to_string(),
            namespace: embedded.namespace.clone(),
            game_client_id: embedded.game_client.id.clone(),
            game_client_secret: embedded.game_client.secret.clone(),
            settings_toml: embedded.settings.to_string(),
            redis_url: redis_url.to_owned(),
            redis_prefix: redis_prefix.to_owned(),
            port: 0,
            grpc_port: 0,
        }
    }

    fn matchmaker_config(&self) -> anyhow::Result<matchmaker::Config> {
        let settings: toml::Table =
            toml::from_str(&self.settings_toml).context("replica spec: settings")?;
        let embedded = EmbeddedMatchmakerConfig {
            fakes_base_url: Url::parse(&self.fakes_base_url).context("replica spec: fakes url")?,
            namespace: self.namespace.clone(),
            iam_client: ClientCredentials {
                id: String::new(),
                secret: None,
            },
            game_client: ClientCredentials {
                id: self.game_client_id.clone(),
                secret: self.game_client_secret.clone(),
            },
            settings,
        };
        let mut config = crate::target::matchmaker_config(&embedded)?;
        let mut redis = matchmaker::store::RedisConfig::new(&self.redis_url);
        redis.prefix = self.redis_prefix.clone();
        config.redis = Some(redis);
        Ok(config)
    }
}

/// A replica process; dropping it kills the process.
#[derive(Debug)]
pub struct Replica {
    pub index: usize,
    /// Where players POST their matchmaking request.
    pub url: Url,
    /// The match function's gRPC address, when it serves one.
    pub grpc_url: Option<Url>,
    child: SpecChild,
}

impl Replica {
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.exited()
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub async fn kill(&mut self) {
        self.child.kill().await;
    }

    /// Asks the process to stop (SIGTERM: drain, as on a rolling restart) and waits for it
    /// within `grace`, then kills it.
    pub async fn terminate(&mut self, grace: Duration) {
        self.child.terminate(grace).await;
    }
}

/// Starts replica `spec.index` as `program args… --spec JSON` and waits until it is ready.
pub async fn spawn(program: &Path, args: &[String], spec: &ReplicaSpec) -> anyhow::Result<Replica> {
    let json = serde_json::to_string(spec)?;
    let what = format!("matchmaker replica {}", spec.index);
    let (child, urls) = SpecChild::spawn(program, args, &json, &what).await?;
    let mut urls = urls.split_whitespace().map(Url::parse);
    let url = urls
        .next()
        .with_context(|| format!("{what}: READY without a url"))??;
    let grpc_url = urls.next().transpose()?;
    Ok(Replica {
        index: spec.index,
        url,
        grpc_url,
        child,
    })
}

/// The replica process's body: serve until SIGTERM or until stdin closes.
pub async fn run(spec_json: &str) -> anyhow::Result<()> {
    let spec: ReplicaSpec = serde_json::from_str(spec_json).context("replica spec")?;
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let config = spec.matchmaker_config()?;
    let listener = matchmaker::bind(std::net::SocketAddr::from(([127, 0, 0, 1], spec.port)))?;
    let addr = listener.local_addr()?;
    let grpc_listener = match config.grpc_addr {
        Some(_) => Some(matchmaker::bind(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            spec.grpc_port,
        )))?),
        None => None,
    };
    let grpc_addr = grpc_listener
        .as_ref()
        .map(tokio::net::TcpListener::local_addr)
        .transpose()?;
    let state = matchmaker::AppState::start(config).await?;
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while let Err(reasons) = state.readiness().await {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "replica {} not ready: {}",
            spec.index,
            reasons.join("; ")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The gRPC server stops on the state's token, which the server lifecycle cancels.
    let stop = state.tasks().token().clone();
    let grpc = grpc_listener.map(|listener| {
        tokio::spawn(matchmaker::extend::serve_grpc(
            listener,
            matchmaker::extend::MatchFunctionService::default(),
            state.match_function_callers(),
            stop.clone().cancelled_owned(),
        ))
    });
    match grpc_addr {
        Some(grpc) => println!("{READY}http://{addr}/matchmaking http://{grpc}"),
        None => println!("{READY}http://{addr}/matchmaking"),
    }
    let shutdown = super::child::stop_requested();
    // Through the matchmaker's server lifecycle: the drain, then its background tasks.
    let server = matchmaker::start(listener, state)?;
    shutdown.await;
    server.shutdown().await?;
    if let Some(grpc) = grpc {
        grpc.await??;
    }
    Ok(())
}
