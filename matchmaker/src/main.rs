//! `matchmaker serve`: parse flags, environment and an optional TOML file into a `Config`, bind,
//! install signal handlers, serve. Everything else lives in the library.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use matchmaker::{Config, FileConfig, Overrides};

/// mimalloc instead of glibc malloc: less CPU per matched player (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "matchmaker",
    version,
    about = "A matchmaker for AccelByte Gaming Services (or fakes): tutorial-compatible, Redis-backed replicas"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the matchmaking API until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Print the configuration `serve` would run with (secrets hidden) and exit.
    CheckConfig(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file (unknown keys are refused); flags and environment override it.
    #[arg(long, env = "MATCHMAKER_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

fn load(args: ServeArgs) -> anyhow::Result<Config> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            FileConfig::from_toml(&text).with_context(|| format!("{}", path.display()))?
        }
        None => FileConfig::default(),
    };
    Ok(Config::resolve(args.overrides, file)?)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::CheckConfig(args) => {
            use std::io::Write as _;
            let config = load(args)?;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout().lock(), "{config:#?}");
            Ok(())
        }
        Command::Serve(args) => {
            let config = load(args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(config))
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.addr;
    let listener = matchmaker::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let state = matchmaker::AppState::start(config).await?;
    tracing::info!(
        "matchmaker listening on http://{}  (POST /matchmaking, /v1/tickets; GET /readyz, /metrics)",
        listener.local_addr()?
    );
    matchmaker::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
