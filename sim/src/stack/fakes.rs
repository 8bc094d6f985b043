//! fakes as a child process of the stack, for scenarios whose `[[chaos]]` kill, pause or
//! restart it. In every other run fakes lives in the sim's own process and cannot be hurt.
//!
//! The child is this program's hidden `internal fakes --spec JSON` subcommand: it keeps its
//! state in a directory of the run (`--state-dir`, see `fakes::durable`), binds a loopback
//! port, prints `READY <url>` on stdout and serves until SIGTERM or until its stdin closes (the
//! parent died). Started again, it takes the same port and directory, so players and replicas
//! find it at the same URL with everything it acknowledged: tokens, users, queued lobby
//! notifications, sessions and claims.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use url::Url;

use super::child::{READY, SpecChild};

/// Everything the fakes process needs, passed as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakesSpec {
    /// The fleet as fakes' `[fleet]` table reads it.
    pub fleet: serde_json::Value,
    /// Where the state survives the process.
    pub state_dir: PathBuf,
    /// The loopback port; 0 for any (a restart takes the first start's port again).
    #[serde(default)]
    pub port: u16,
}

impl FakesSpec {
    /// The spec of `config` (its fleet; the built-in seed) keeping state in `state_dir`.
    pub fn new(config: &fakes::FakesConfig, state_dir: PathBuf) -> Self {
        let fleet = &config.fleet;
        Self {
            fleet: serde_json::json!({
                "regions": fleet
                    .regions
                    .iter()
                    .map(|r| serde_json::json!({ "name": r.name, "servers": r.servers }))
                    .collect::<Vec<_>>(),
                "ready_delay": u64::try_from(fleet.ready_delay.as_millis()).unwrap_or(u64::MAX),
                "deployment": fleet.deployment,
                "ip": fleet.ip,
                "base_port": fleet.base_port,
            }),
            state_dir,
            port: 0,
        }
    }

    fn config(&self) -> anyhow::Result<fakes::FakesConfig> {
        let fleet: fakes::dsmc::fleet::FleetConfig =
            serde_json::from_value(self.fleet.clone()).context("fakes spec: fleet")?;
        Ok(fakes::FakesConfig {
            fleet,
            state_dir: Some(self.state_dir.clone()),
            ..fakes::FakesConfig::default()
        })
    }
}

/// A running fakes process; dropping it kills the process.
#[derive(Debug)]
pub struct FakesProcess {
    pub url: Url,
    child: SpecChild,
}

impl FakesProcess {
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// SIGKILL, and reaps it.
    pub async fn kill(&mut self) {
        self.child.kill().await;
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub async fn terminate(&mut self, grace: Duration) {
        self.child.terminate(grace).await;
    }
}

/// Starts `program args… --spec JSON` and waits until it serves.
pub async fn spawn(
    program: &Path,
    args: &[String],
    spec: &FakesSpec,
) -> anyhow::Result<FakesProcess> {
    let json = serde_json::to_string(spec)?;
    let (child, url) = SpecChild::spawn(program, args, &json, "the fakes process").await?;
    let url = Url::parse(&url).context("fakes: READY with a bad url")?;
    Ok(FakesProcess { url, child })
}

/// The key a first start generates and keeps in `dir`; later starts read it (a saved state
/// brings its own keys, so this only spares a restart the generation).
fn signing_key(dir: &Path) -> anyhow::Result<fakes::keys::SigningKey> {
    let path = dir.join("signing-key.pem");
    if let Ok(pem) = std::fs::read_to_string(&path) {
        return fakes::keys::SigningKey::from_pem(&pem);
    }
    let key = fakes::keys::SigningKey::generate()?;
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    std::fs::write(&path, key.pem())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(key)
}

/// The fakes process's body: restore from the state directory, serve until SIGTERM or until
/// stdin closes.
pub async fn run(spec_json: &str) -> anyhow::Result<()> {
    let spec: FakesSpec = serde_json::from_str(spec_json).context("fakes spec")?;
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let config = spec.config()?;
    let key = tokio::task::spawn_blocking({
        let dir = spec.state_dir.clone();
        move || signing_key(&dir)
    })
    .await??;
    let state = fakes::AppState::open(config, key)?;
    let listener = fakes::server::bind(std::net::SocketAddr::from(([127, 0, 0, 1], spec.port)))
        .with_context(|| format!("fakes cannot listen on port {}", spec.port))?;
    let addr = listener.local_addr()?;
    println!("{READY}http://{addr}");
    let shutdown = super::child::stop_requested();
    // Open lobby sockets would hold a graceful shutdown forever: once asked to stop, in-flight
    // requests get a moment to finish (their changes are on disk before they answer anyway).
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(());
    };
    let serving = fakes::server::serve(listener, state, shutdown);
    let drained = async {
        if stop_rx.await.is_ok() {
            tokio::time::sleep(STOP_DRAIN).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = serving => served?,
        () = drained => {}
    }
    Ok(())
}

/// How long a stopping fakes lets in-flight requests finish.
const STOP_DRAIN: Duration = Duration::from_millis(500);
