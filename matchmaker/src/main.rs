//! `matchmaker serve`: parse flags, environment and an optional TOML file into a `Config`, bind,
//! install signal handlers, serve. Everything else lives in the library.

use std::net::SocketAddr;
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
    /// Serve only the AGS Extend match function (gRPC) until SIGTERM or Ctrl-C: no AGS
    /// account, store or HTTP API needed, as in an Extend app container.
    MatchFunction(MatchFunctionArgs),
}

#[derive(Debug, clap::Args)]
struct MatchFunctionArgs {
    /// TOML config file; only its `grpc_addr`, `grpc_auth`, `[ags]` and `[auth]` are read here
    /// (unknown keys are still refused).
    #[arg(long, env = "MATCHMAKER_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0:6565, the port AGS Extend calls].
    #[arg(long, env = "MATCHMAKER_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// Check callers' bearer tokens against IAM (true/false) [default: true when an IAM base
    /// URL is configured, else false].
    #[arg(long, env = "PLUGIN_GRPC_SERVER_AUTH_ENABLED", value_parser = clap::builder::BoolishValueParser::new())]
    grpc_auth: Option<bool>,
    /// AGS (or fakes) base URL, whose IAM signs callers' tokens.
    #[arg(long, env = "AB_BASE_URL")]
    base_url: Option<url::Url>,
    /// The app's confidential IAM client (reads the revocation list and roles).
    #[arg(long, env = "AB_CLIENT_ID")]
    client_id: Option<String>,
    #[arg(long, env = "AB_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// The namespace callers' tokens must be of.
    #[arg(long, env = "AB_NAMESPACE")]
    namespace: Option<String>,
}

/// How `match-function` checks its callers: off when turned off, or by default without an IAM
/// base URL; otherwise the matchmaker's validator, kept fresh until the process ends.
async fn match_function_callers(
    args: MatchFunctionArgs,
    file: FileConfig,
) -> anyhow::Result<matchmaker::extend::RequireToken> {
    let has_iam = args.base_url.is_some() || file.ags.base_url.is_some();
    if !args.grpc_auth.or(file.grpc_auth).unwrap_or(has_iam) {
        tracing::warn!("callers' tokens are not checked (grpc auth is off)");
        return Ok(matchmaker::extend::RequireToken::off());
    }
    if !has_iam {
        anyhow::bail!(
            "checking callers' tokens needs the IAM base URL (--base-url, AB_BASE_URL, ags.base_url), \
             or turn it off with --grpc-auth false (PLUGIN_GRPC_SERVER_AUTH_ENABLED=false)"
        );
    }
    let flags = Overrides {
        base_url: args.base_url,
        client_id: args.client_id,
        client_secret: args.client_secret,
        namespace: args.namespace,
        ..Overrides::default()
    };
    let config = Config::resolve(flags, file)?;
    let metrics = std::sync::Arc::new(matchmaker::metrics::Metrics::new(
        config.modes.iter().map(|m| m.name.as_str()),
        "none",
    ));
    let ags = matchmaker::ags::Ags::new(config.ags.clone(), config.ags_timeout, metrics.clone())?;
    let auth = matchmaker::auth::Auth::new(ags, config.auth.clone(), metrics);
    {
        let auth = auth.clone();
        tokio::spawn(async move {
            auth.keep_fresh(tokio_util::sync::CancellationToken::new())
                .await;
        });
    }
    let check = matchmaker::extend::CallerCheck::new(auth);
    tracing::info!(
        "callers' tokens are checked against {} (namespace {}, permission {} [{}])",
        config.ags.base_url,
        config.ags.namespace,
        check.required().resource,
        check.required().action
    );
    Ok(matchmaker::extend::RequireToken::new(check))
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file (unknown keys are refused); flags and environment override it.
    #[arg(long, env = "MATCHMAKER_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

fn read_file(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    Ok(match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            let file =
                FileConfig::from_toml(&text).with_context(|| format!("{}", path.display()))?;
            for note in &file.deprecated {
                tracing::warn!("{}: {note}", path.display());
            }
            file
        }
        None => FileConfig::default(),
    })
}

fn load(args: ServeArgs) -> anyhow::Result<Config> {
    let file = read_file(args.config.as_ref())?;
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
            runtime()?.block_on(serve(config))
        }
        Command::MatchFunction(args) => {
            let file = read_file(args.config.as_ref())?;
            let addr = args
                .grpc_addr
                .or(file.grpc_addr)
                .unwrap_or(SocketAddr::from((
                    [0, 0, 0, 0],
                    matchmaker::extend::EXTEND_GRPC_PORT,
                )));
            runtime()?.block_on(async move {
                let callers = match_function_callers(args, file).await?;
                let listener = matchmaker::bind(addr)
                    .with_context(|| format!("cannot listen on {addr}"))?;
                tracing::info!(
                    "match function listening on {} (gRPC accelbyte.matchmaking.matchfunction.MatchFunction)",
                    listener.local_addr()?
                );
                matchmaker::extend::serve_grpc(
                    listener,
                    matchmaker::extend::MatchFunctionService::default(),
                    callers,
                    serving::shutdown_signal(),
                )
                .await?;
                Ok(())
            })
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.addr;
    let listener = matchmaker::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let grpc_listener = match config.grpc_addr {
        Some(grpc_addr) => Some(
            matchmaker::bind(grpc_addr).with_context(|| format!("cannot listen on {grpc_addr}"))?,
        ),
        None => None,
    };
    let state = matchmaker::AppState::start(config).await?;
    tracing::info!(
        "matchmaker listening on http://{}  (POST /matchmaking, /v1/tickets; GET /readyz, /metrics)",
        listener.local_addr()?
    );
    // The gRPC server stops on the same token as the HTTP API.
    let stop = state.tasks().token().clone();
    let grpc = match grpc_listener {
        Some(grpc_listener) => {
            tracing::info!(
                "match function listening on {} (gRPC accelbyte.matchmaking.matchfunction.MatchFunction)",
                grpc_listener.local_addr()?
            );
            Some(tokio::spawn(matchmaker::extend::serve_grpc(
                grpc_listener,
                matchmaker::extend::MatchFunctionService::default(),
                state.match_function_callers(),
                stop.cancelled_owned(),
            )))
        }
        None => None,
    };
    let server = matchmaker::start(listener, state)?;
    let http = server.serve_until(serving::shutdown_signal()).await;
    if let Some(grpc) = grpc {
        grpc.await??;
    }
    http?;
    Ok(())
}
