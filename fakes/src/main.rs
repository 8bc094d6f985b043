//! `fakes serve`: run the offline AccelByte on one base URL.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fakes::dsmc::fleet::FleetConfig;
use fakes::faults::{FaultFile, Faults};
use fakes::keys::SigningKey;
use fakes::seed::Seed;
use fakes::{AppState, FakesConfig};

/// mimalloc instead of glibc malloc: less CPU per matched player (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "fakes",
    version,
    about = "An offline AccelByte Gaming Services: IAM, Lobby, Session Browser and DSMC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every emulated service on one listener.
    Serve(ServeArgs),
    /// Print the built-in seed (a starting point for --seed).
    DefaultSeed,
    /// One lobby shard process (started by `serve --lobby-shards`, not by hand).
    #[command(hide = true)]
    LobbyShard(fakes::lobby::cluster::ShardArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FAKES_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Bearer token the control API (`/_fakes/*`) requires; required when `--addr` is not a
    /// loopback address.
    #[arg(long, env = "FAKES_CONTROL_TOKEN", hide_env_values = true)]
    control_token: Option<String>,
    /// A match function pools may name: `NAME=http://host:port`, called over AGS Extend's
    /// `MakeMatches` gRPC (e.g. `matchmaker match-function`). Repeat for several.
    #[arg(long = "match-function", value_name = "NAME=URL", value_parser = parse_match_function)]
    match_functions: Vec<(String, String)>,
    /// Seed file (TOML): namespaces, clients, roles, users. Default: the built-in seed.
    #[arg(long, env = "FAKES_SEED")]
    seed: Option<PathBuf>,
    /// Fleet file (TOML): regions, servers per region, ready delay. Default: one region.
    #[arg(long, env = "FAKES_FLEET")]
    fleet: Option<PathBuf>,
    /// Fault file (TOML): `seed` and `[[faults]]` active from the start. Default: no faults.
    #[arg(long, env = "FAKES_FAULTS")]
    faults: Option<PathBuf>,
    /// Seed of every fault decision, overriding the fault file's `seed` (default: random).
    #[arg(long, env = "FAKES_FAULT_SEED")]
    fault_seed: Option<u64>,
    /// RSA private key (PEM) to sign tokens with; default: generated at start.
    #[arg(long, env = "FAKES_KEY")]
    key: Option<PathBuf>,
    /// Serve HTTPS/WSS with a self-signed certificate written next to the system temp dir.
    #[arg(long, env = "FAKES_TLS")]
    tls: bool,
    /// Directory the TLS certificate is written to (default: the system temp dir).
    #[arg(long, env = "FAKES_CERT_DIR")]
    cert_dir: Option<PathBuf>,
    /// Hold lobby WebSockets in this many shard processes (each up to ~19,000 sockets under a
    /// 20,000 open-files limit) behind the same base URL; 0 keeps them in this process.
    /// Needs --redis.
    #[arg(long, env = "FAKES_LOBBY_SHARDS", default_value_t = 0)]
    lobby_shards: usize,
    /// Keep the emulated services' state in this directory so it survives a crash or restart:
    /// every change is on disk before its response leaves (group commit), and a restart with
    /// the same directory carries on from it (tokens issued before stay valid).
    #[arg(long, env = "FAKES_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Redis URL of the bus between this process and its lobby shards.
    #[arg(long, env = "FAKES_REDIS")]
    redis: Option<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::DefaultSeed => {
            print!("{}", fakes::seed::DEFAULT_SEED_TOML);
            Ok(())
        }
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve(args)),
        Command::LobbyShard(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(fakes::lobby::cluster::run_shard(args)),
    }
}

fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("could not raise the open-files limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let seed = match &args.seed {
        Some(path) => Seed::load(path)?,
        None => Seed::builtin(),
    };
    let fleet = match &args.fleet {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            toml::from_str::<FleetConfig>(&text)
                .with_context(|| format!("{}: invalid fleet file", path.display()))?
        }
        None => FleetConfig::default(),
    };
    let mut faults = match &args.faults {
        Some(path) => load_faults(path)?,
        None => FaultFile::default(),
    };
    if let Some(seed) = args.fault_seed {
        faults.seed = Some(seed);
    }
    let control_token = args.control_token.clone().filter(|t| !t.is_empty());
    if control_token.is_none() && !args.addr.ip().is_loopback() {
        anyhow::bail!(
            "--control-token is required when listening on a non-loopback address ({}): /_fakes/* changes faults and data",
            args.addr
        );
    }
    let config = FakesConfig {
        seed: seed.clone(),
        fleet,
        faults,
        control_token,
        match_functions: args.match_functions.iter().cloned().collect(),
        state_dir: args.state_dir.clone(),
    };
    if let Some(path) = &args.faults {
        Faults::check_file(&config.faults, &config.fault_context())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let key = match &args.key {
        Some(path) => SigningKey::from_pem(
            &std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?,
        )?,
        None => tokio::task::spawn_blocking(SigningKey::generate).await??,
    };
    let cluster = lobby_cluster(&args)?;
    let files = raise_open_files_limit();
    let state = AppState::open(config, key)?;
    let primary = match &cluster {
        Some(cluster) => Some(fakes::lobby::cluster::Primary::start(state.clone(), cluster).await?),
        None => None,
    };
    let listener = fakes::server::bind(args.addr)
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;

    let scheme = if args.tls { "https" } else { "http" };
    let cert = if args.tls {
        let dir = args.cert_dir.clone().unwrap_or_else(std::env::temp_dir);
        Some(fakes::tls::self_signed(&dir, addr.port())?)
    } else {
        None
    };
    print_banner(
        &format!("{scheme}://{addr}"),
        &seed,
        cert.as_ref().map(|c| c.cert_path.as_path()),
        files,
    );
    if let Some(primary) = &primary {
        let pids: Vec<String> = primary
            .shard_pids()
            .iter()
            .map(|pid| pid.map_or_else(|| "?".to_owned(), |p| p.to_string()))
            .collect();
        println!(
            "  lobby shards  {} processes hold the WebSockets (pids {})",
            pids.len(),
            pids.join(", ")
        );
        println!();
    }
    let faults = state.faults.list();
    if !faults.faults.is_empty() {
        println!(
            "  faults: {} loaded, seed {}   (GET {scheme}://{addr}/_fakes/faults)",
            faults.faults.len(),
            faults.seed
        );
        println!();
    }
    let server = fakes::server::start(listener, state, primary, cert)?;
    server.serve_until(serving::shutdown_signal()).await?;
    Ok(())
}

/// The lobby shards asked for, if any.
fn lobby_cluster(args: &ServeArgs) -> anyhow::Result<Option<fakes::lobby::cluster::ClusterConfig>> {
    if args.lobby_shards == 0 {
        return Ok(None);
    }
    anyhow::ensure!(
        !args.tls,
        "--lobby-shards works with plain HTTP only (the primary reads each request head to route it)"
    );
    let redis_url = args
        .redis
        .clone()
        .context("--lobby-shards needs --redis URL (the bus between the processes)")?;
    Ok(Some(fakes::lobby::cluster::ClusterConfig {
        shards: args.lobby_shards,
        redis_url,
        command: fakes::lobby::cluster::ShardCommand {
            program: std::env::current_exe().context("cannot find this program to start shards")?,
            args: vec!["lobby-shard".to_owned()],
        },
    }))
}

/// Reads a fault file; errors name the file and the field.
fn load_faults(path: &std::path::Path) -> anyhow::Result<FaultFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let file =
        FaultFile::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for note in &file.deprecated {
        tracing::warn!("{}: {note}", path.display());
    }
    Ok(file)
}

fn print_banner(base_url: &str, seed: &Seed, cert: Option<&std::path::Path>, open_files: u64) {
    println!("fakes is serving AccelByte IAM, Lobby, Session Browser and DSMC");
    println!();
    println!("  AB_BASE_URL   {base_url}");
    println!("  AB_NAMESPACE  {}", seed.namespaces.join(", "));
    if let Some(path) = cert {
        println!(
            "  TLS cert      {}   (SSL_CERT_FILE / REQUESTS_CA_BUNDLE)",
            path.display()
        );
    }
    println!();
    println!("  clients (AB_CLIENT_ID / AB_CLIENT_SECRET):");
    for c in &seed.clients {
        let secret = c.secret.as_deref().unwrap_or("(public: no secret)");
        println!("    {:<22} {:<26} {}", c.id, secret, c.name);
    }
    println!("  users (username / password):");
    for u in &seed.users {
        println!("    {:<22} {}", u.username, u.password);
    }
    println!();
    println!(
        "  lobby WebSocket {}/lobby/   control API {base_url}/_fakes/   open-files limit {open_files}",
        base_url.replacen("http", "ws", 1)
    );
    println!();
}

/// `NAME=URL` for `--match-function`: a non-empty name and a plain-HTTP gRPC address.
fn parse_match_function(value: &str) -> Result<(String, String), String> {
    let (name, url) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?}: expected NAME=http://host:port"))?;
    if name.is_empty() {
        return Err(format!("{value:?}: the match function's name is empty"));
    }
    if fakes::match2::store::BUILT_IN_FUNCTIONS.contains(&name) {
        return Err(format!(
            "{value:?}: {name:?} is the built-in match function's name"
        ));
    }
    fakes::match2::remote::RemoteMatchFunction::new(url).map_err(|e| e.to_string())?;
    Ok((name.to_owned(), url.to_owned()))
}
