//! `sim`: run matchmaking load scenarios.
//!
//! - `sim check FILE...` validates scenario files (exit 2 with `file:line: field: message`).
//! - `sim run FILE` runs one: a live dashboard while it runs, a summary table at the end,
//!   optional JSON report, JUnit XML and HTML page. Headless (`--headless`, or whenever stdout is
//!   not a terminal): a progress line every few seconds.
//! - `sim merge A.json B.json ...` combines the reports of shards (`--shard i/n`) exactly.
//! - `sim compare BASE.json NEW.json` sets two reports side by side; `--max-regression
//!   p99=10%` limits set the exit code and JUnit cases.
//! - `sim watch FILE redis://…/RUN-ID` follows shards that `--publish` there ([`sim::remote`]).
//! - `sim capacity FILE` searches the highest load that meets the thresholds ([`sim::capacity`]).
//! - `sim stack FILE` serves a scenario's embedded target for shards run by hand.
//!
//! When the players of a run need more open files than one process may have, `sim run` starts
//! worker processes (`--workers N`, or as many as the limit asks for): this binary again as the
//! hidden `sim worker` subcommand, one shard each, merged live into one dashboard and one
//! report ([`sim::workers`]).
//!
//! Exit codes: 0 pass, 1 a threshold or invariant broke, 2 bad scenario or configuration.
//! This file only parses flags, raises the open-files limit, wires signals and prints; the
//! library does the rest.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use sim::engine::{Engine, EngineOptions, ShardSpec};
use sim::report::{RunReport, html, junit, summary, write_file};
use sim::scenario::{ClientCredentials, Plan, TargetPlan, UrlsPlan, parse_duration};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc malloc: less CPU per matched player (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_PASS: u8 = 0;
const EXIT_BREACH: u8 = 1;
const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "sim",
    version,
    about = "Thousands of virtual players against a matchmaker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate scenario files.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a scenario.
    Run(Box<RunArgs>),
    /// Merge the JSON reports of shards into one.
    Merge(MergeArgs),
    /// Compare two JSON reports (a baseline and a new run), with regression limits.
    Compare(CompareArgs),
    /// Find the highest load (arrival rate, or players for a closed model) that still meets
    /// the scenario's thresholds: step up, bisect, confirm with a hold.
    Capacity(Box<CapacityArgs>),
    /// Follow the shards of a run that publish to Redis (`sim run --publish`): the merged
    /// dashboard or progress lines while they run, the merged report when all have finished.
    Watch(Box<WatchArgs>),
    /// One worker process of a `sim run` (started by it; not for people).
    #[command(hide = true)]
    Worker(Box<WorkerArgs>),
    /// Serve a scenario's embedded target (fakes and matchmaker in this process) until
    /// interrupted, for `sim run --shard I/N --fakes-url … --matchmaker-url …` processes that
    /// together hold more sockets than one process may open.
    Stack {
        /// The scenario whose `[target]` to serve.
        file: PathBuf,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// A process of a multi-process stack (started by this program, not by hand).
    #[command(hide = true, subcommand)]
    Internal(Internal),
}

/// The stack's child processes (see `sim::stack`).
#[derive(Subcommand, Debug)]
enum Internal {
    /// One lobby shard of the embedded fakes.
    LobbyShard(fakes::lobby::cluster::ShardArgs),
    /// fakes as a process of its own, with durable state (a chaos step targets it).
    Fakes {
        /// The process's spec (JSON).
        #[arg(long)]
        spec: String,
    },
    /// One matchmaker replica on Redis.
    MatchmakerReplica {
        /// The replica's spec (JSON).
        #[arg(long)]
        spec: String,
    },
}

#[derive(Args, Debug, Clone, Default)]
struct Outputs {
    /// Write the full results as JSON (histograms included, mergeable).
    #[arg(long, env = "SIM_REPORT", value_name = "FILE.json")]
    report: Option<PathBuf>,
    /// Write JUnit XML: one test case per threshold, one for the invariant check.
    #[arg(long, env = "SIM_JUNIT", value_name = "FILE.xml")]
    junit: Option<PathBuf>,
    /// Write an HTML page with latency and throughput plots.
    #[arg(long, env = "SIM_HTML", value_name = "FILE.html")]
    html: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The scenario file.
    file: PathBuf,
    /// Progress lines instead of the live dashboard (automatic when stdout is not a terminal).
    #[arg(long, env = "SIM_HEADLESS")]
    headless: bool,
    #[command(flatten)]
    outputs: Outputs,
    /// Override the scenario's seed.
    #[arg(long, env = "SIM_SEED")]
    seed: Option<u64>,
    /// Override the scenario's duration (e.g. `30s`).
    #[arg(long, env = "SIM_DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Run only shard `i` of `n` (0-based) of the arrivals; merge the reports afterwards.
    #[arg(long, env = "SIM_SHARD", value_parser = parse_shard, value_name = "I/N")]
    shard: Option<ShardSpec>,
    #[command(flatten)]
    target: TargetArgs,
    /// Worker processes to spread the players over (1: everything in this process). By
    /// default, as many as the open-files limit needs for the scenario's peak population.
    #[arg(long, env = "SIM_WORKERS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256), conflicts_with = "shard")]
    workers: Option<u32>,
    /// With several workers, also write each worker's JSON report here (`worker-I.json`).
    #[arg(long, value_name = "DIR")]
    worker_reports: Option<PathBuf>,
    /// With several workers, a worker silent for this long fails the run (generous: on a
    /// saturated machine the parent itself may read its pipes late).
    #[arg(long, default_value = "45s", value_parser = parse_duration, hide = true)]
    worker_stall_timeout: Duration,
    #[command(flatten)]
    stack: StackArgs,
    /// Serve the run's live figures at http://ADDR/metrics in the Prometheus text format
    /// (e.g. `127.0.0.1:9464`; port 0 picks one and prints it).
    #[arg(long, env = "SIM_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Publish this run's live figures and final report to a Redis stream,
    /// `redis://HOST:PORT/RUN-ID`, for `sim watch` (every shard of a run names the same one).
    #[arg(long, env = "SIM_PUBLISH", value_parser = parse_run_channel, value_name = "REDIS-URL/RUN-ID")]
    publish: Option<sim::remote::RunChannel>,
}

/// How an embedded target is spread over processes; by default the open-files budget decides
/// from the scenario's peak population.
#[derive(Args, Debug, Clone, Default)]
struct StackArgs {
    /// Lobby shard processes of the embedded fakes (0: lobby sockets in the fakes process).
    #[arg(long, env = "SIM_LOBBY_SHARDS", value_name = "N")]
    lobby_shards: Option<usize>,
    /// Matchmaker replica processes on a private Redis (0: one matchmaker in this process).
    #[arg(long, env = "SIM_REPLICAS", value_name = "N")]
    replicas: Option<usize>,
}

impl StackArgs {
    /// The layout for `plan` under an open-files `limit`, with the flags' overrides. A
    /// scenario with `[[chaos]]` gets replica processes and a stack ready for chaos.
    fn layout(&self, plan: &Plan, limit: u64) -> sim::stack::StackLayout {
        let auto =
            sim::stack::StackLayout::for_population(sim::workers::count::peak_players(plan), limit);
        let chaos = !plan.chaos.is_empty();
        let planned = match &plan.target {
            TargetPlan::Embedded(e) => e.replicas,
            TargetPlan::Urls(_) => None,
        };
        let replicas = self.replicas.or(planned).unwrap_or(if chaos {
            auto.replicas
                .max(sim::scenario::chaos::DEFAULT_CHAOS_REPLICAS)
        } else {
            auto.replicas
        });
        let fakes_process = plan
            .chaos
            .iter()
            .any(|step| step.action.process() == Some(sim::stack::control::ProcessName::Fakes));
        sim::stack::StackLayout {
            // fakes as a process of its own holds its lobby sockets itself.
            lobby_shards: if fakes_process {
                0
            } else {
                self.lobby_shards.unwrap_or(auto.lobby_shards)
            },
            replicas,
            chaos,
            fakes_process,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// Run against this fakes (or AGS) instead of the scenario's target (needs --matchmaker-url).
    #[arg(long, env = "SIM_FAKES_URL", requires = "matchmaker_url")]
    fakes_url: Option<url::Url>,
    /// Run against this matchmaking endpoint instead of the scenario's target; repeat the flag
    /// or separate URLs with commas for several replicas (players fail over between them).
    #[arg(
        long,
        env = "SIM_MATCHMAKER_URL",
        requires = "fakes_url",
        value_delimiter = ','
    )]
    matchmaker_url: Vec<url::Url>,
    /// Secret of the game client (with --fakes-url; the fakes' built-in one by default).
    #[arg(long, env = "SIM_GAME_CLIENT_SECRET", hide_env_values = true)]
    game_client_secret: Option<String>,
    /// Bearer token of the fakes' control API, for `/_fakes/stats` (with --fakes-url, when the
    /// fakes listens beyond loopback and so requires `--control-token`).
    #[arg(long, env = "SIM_FAKES_CONTROL_TOKEN", hide_env_values = true)]
    fakes_control_token: Option<String>,
}

impl TargetArgs {
    /// The target options these flags ask for, on top of `layout`.
    fn options(&self, layout: sim::stack::StackLayout) -> sim::target::TargetOptions {
        sim::target::TargetOptions {
            layout,
            fakes_control_token: self.fakes_control_token.clone(),
            ..Default::default()
        }
    }
}

#[derive(Args, Debug)]
struct WorkerArgs {
    file: PathBuf,
    /// This worker's shard, `I/N`.
    #[arg(long, value_parser = parse_shard)]
    shard: ShardSpec,
    /// The `sim run` that started it: the worker exits if that process is gone.
    #[arg(long)]
    parent_pid: Option<u32>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// The baseline report (JSON).
    base: PathBuf,
    /// The new run's report (JSON).
    new: PathBuf,
    /// How much worse a figure may get: `KEY=N%`, or `p99=200ms`, `timeout_rate=0.01`.
    /// Keys: p50 p90 p95 p99 max throughput players matched timeout_rate error_rate
    /// failed_rate claim_failure_rate ENDPOINT.p99 ENDPOINT.error_rate. Repeat or separate with
    /// commas.
    #[arg(long, value_name = "KEY=LIMIT")]
    max_regression: Vec<String>,
    /// Write the comparison as an HTML page.
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
    /// Write JUnit XML: one test case per limit.
    #[arg(long, value_name = "FILE.xml")]
    junit: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct MergeArgs {
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    #[command(flatten)]
    outputs: Outputs,
}

#[derive(Args, Debug)]
struct CapacityArgs {
    /// The scenario file.
    file: PathBuf,
    /// The whole search, set-up and drains included (e.g. `10m`).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    time_limit: Duration,
    /// How long each step holds its load.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    step_duration: Duration,
    /// How long the knee is held to confirm it (default: twice a step).
    #[arg(long, value_parser = parse_duration)]
    hold: Option<Duration>,
    /// The first load: arrivals per second (open model) or players (closed); default: the
    /// scenario's own.
    #[arg(long)]
    start: Option<f64>,
    /// Never try more than this load.
    #[arg(long)]
    max: Option<f64>,
    /// Step-up factor while every step passes.
    #[arg(long, default_value_t = 2.0)]
    factor: f64,
    /// Stop bisecting when the lowest failure is within this fraction of the highest pass.
    #[arg(long, default_value_t = 0.1)]
    precision: f64,
    /// Override the scenario's seed.
    #[arg(long, env = "SIM_SEED")]
    seed: Option<u64>,
    /// Write the search (every step, the knee) as JSON.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
    /// Write an HTML page with the curve.
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    stack: StackArgs,
}

#[derive(Args, Debug)]
struct WatchArgs {
    /// The scenario the shards run (for the dashboard's header and the live thresholds).
    file: PathBuf,
    /// The run's stream, as the shards' `--publish`.
    #[arg(value_parser = parse_run_channel, value_name = "REDIS-URL/RUN-ID")]
    from: sim::remote::RunChannel,
    /// How many shards to wait for (default: the count the first message names).
    #[arg(long)]
    shards: Option<u32>,
    /// Progress lines instead of the live dashboard (automatic when stdout is not a terminal).
    #[arg(long, env = "SIM_HEADLESS")]
    headless: bool,
    #[command(flatten)]
    outputs: Outputs,
}

fn parse_run_channel(text: &str) -> Result<sim::remote::RunChannel, String> {
    sim::remote::RunChannel::parse(text)
}

fn parse_shard(text: &str) -> Result<ShardSpec, String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not I/N"))?;
    let index: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("{i:?} is not a number"))?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a number"))?;
    if count == 0 || index >= count {
        return Err(format!("shard {index}/{count}: need 0 <= I < N"));
    }
    Ok(ShardSpec { index, count })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sim::dashboard::terminal::HeldStderr)
        .init();
    match cli.command {
        Command::Check { files } => check(&files),
        Command::Run(args) => run(*args),
        Command::Merge(args) => merge(args),
        Command::Compare(args) => compare(&args),
        Command::Capacity(args) => capacity(*args),
        Command::Watch(args) => watch(*args),
        Command::Stack {
            file,
            stack: layout,
        } => stack(&file, &layout),
        Command::Internal(internal) => run_internal(internal),
        Command::Worker(args) => worker(*args),
    }
}

/// The multi-threaded runtime every subcommand runs on; on failure, says why and gives the
/// exit code.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("sim: cannot start the runtime: {err}");
            ExitCode::from(EXIT_CONFIG)
        })
}

/// Says how an embedded stack spread over processes is laid out.
fn announce_layout(layout: &sim::stack::StackLayout) {
    eprintln!(
        "sim: embedded stack over processes — {} lobby shards, {} matchmaker replicas on Redis",
        layout.lobby_shards, layout.replicas
    );
}

/// Runs one child process of a multi-process stack until its parent goes away.
fn run_internal(internal: Internal) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        match internal {
            Internal::LobbyShard(args) => fakes::lobby::cluster::run_shard(args).await,
            Internal::MatchmakerReplica { spec } => sim::stack::replica::run(&spec).await,
            Internal::Fakes { spec } => sim::stack::fakes::run(&spec).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sim internal: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for file in files {
        match Plan::from_file(file) {
            Ok(plan) => {
                for line in plan.warning_lines() {
                    eprintln!("{line}");
                }
                println!("{}: ok ({})", file.display(), sim::engine::describe(&plan))
            }
            Err(err) => {
                eprintln!("{err}");
                bad = true;
            }
        }
    }
    ExitCode::from(if bad { EXIT_CONFIG } else { EXIT_PASS })
}

/// Reads the scenario and applies the overrides of the command line.
fn load_plan(
    file: &Path,
    seed: Option<u64>,
    duration: Option<Duration>,
    target: &TargetArgs,
) -> Result<Plan, ExitCode> {
    let mut plan = match Plan::from_file(file) {
        Ok(plan) => {
            for line in plan.warning_lines() {
                eprintln!("{line}");
            }
            plan
        }
        Err(err) => {
            eprintln!("{err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    if let Some(seed) = seed {
        plan.run.seed = seed;
    }
    if let Some(duration) = duration {
        plan.run.duration = duration;
    }
    let args = target;
    if let Some(fakes) = args.fakes_url.clone() {
        let mut matchmaker: Vec<url::Url> = Vec::new();
        for url in &args.matchmaker_url {
            if !matchmaker.contains(url) {
                matchmaker.push(url.clone());
            }
        }
        plan.target = TargetPlan::Urls(Box::new(UrlsPlan {
            fakes,
            matchmaker,
            namespace: fakes::seed::builtin::NAMESPACE.to_owned(),
            player_client: ClientCredentials {
                id: fakes::seed::builtin::PLAYER_CLIENT_ID.to_owned(),
                secret: None,
            },
            game_client: Some(ClientCredentials {
                id: fakes::seed::builtin::GAME_CLIENT.0.to_owned(),
                secret: Some(
                    args.game_client_secret
                        .clone()
                        .unwrap_or_else(|| fakes::seed::builtin::GAME_CLIENT.1.to_owned()),
                ),
            }),
            accounts: None,
            insecure_tls: false,
            source_addresses: plan.target.source_addresses().clone(),
        }));
    }
    Ok(plan)
}

/// Raises the open-files limit to the hard limit, or, with `SIM_OPEN_FILES=N` in the
/// environment, sets it to N (to see how a run reports a process that meets its limit).
/// Worker and stack processes inherit both the variable and the limit.
fn open_files() -> std::io::Result<(u64, u64)> {
    match std::env::var("SIM_OPEN_FILES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        Some(soft) => sim::limits::lower_open_files(soft),
        None => sim::limits::raise_open_files(),
    }
}

fn run(args: RunArgs) -> ExitCode {
    let plan = match load_plan(&args.file, args.seed, args.duration, &args.target) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let limit = match open_files() {
        Ok((soft, hard)) => {
            let embedded = sim::limits::capacity(soft, 4, plan.run.workers).players;
            let remote = sim::limits::capacity(soft, 2, plan.run.workers).players;
            eprintln!(
                "sim: open files {soft} (hard {hard}): room for about {embedded} players searching at once with an embedded target, {remote} against URLs"
            );
            Some(soft)
        }
        Err(err) => {
            eprintln!("sim: cannot raise the open-files limit: {err}");
            None
        }
    };
    let headless = args.headless || !std::io::stdout().is_terminal();
    let processes = match (args.workers, args.shard) {
        (Some(n), _) => n as usize,
        (None, Some(_)) => 1,
        (None, None) => sim::workers::count::workers_for(&plan, limit.unwrap_or(1024)),
    };
    if processes > 1 {
        if args.publish.is_some() {
            eprintln!(
                "sim: --publish runs one process per shard: add --workers 1, or --shard I/N for each process"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        return run_workers(args, plan, processes, headless, limit);
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let layout = args.stack.layout(&plan, limit.unwrap_or(1024));
    if matches!(plan.target, TargetPlan::Embedded(_)) && layout.is_multi_process() {
        announce_layout(&layout);
    }
    let options = EngineOptions {
        shard: args.shard,
        open_files: limit,
        target: args.target.options(layout),
        // The metrics endpoint's latency histogram and a watcher's merge need the exact one.
        mergeable_snapshots: args.metrics_addr.is_some() || args.publish.is_some(),
        ..EngineOptions::default()
    };
    let outputs = args.outputs.clone();
    let metrics_addr = args.metrics_addr;
    let provenance = provenance(&args);
    let shard = args.shard.unwrap_or(ShardSpec { index: 0, count: 1 });
    let publish = args.publish.clone();
    let result = runtime.block_on(async move {
        let publisher = match publish {
            Some(channel) => {
                match sim::remote::publish::Publisher::connect(channel, shard.index, shard.count)
                    .await
                {
                    Ok(p) => Some(p),
                    Err(err) => {
                        eprintln!("sim: --publish: {err:#}");
                        return Err(ExitCode::from(EXIT_BREACH));
                    }
                }
            }
            None => None,
        };
        let progress_every = plan.run.progress_every;
        eprintln!("sim: {}", sim::engine::describe(&plan));
        let header = sim::dashboard::Header::from_plan(&plan);
        let engine = Engine::new(plan, options);
        let snapshots = engine.snapshots();
        let exporter = match start_exporter(metrics_addr, &snapshots).await {
            Ok(exporter) => exporter,
            Err(code) => return Err(code),
        };
        let commands = engine.commands();
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(on_interrupt(on_signal));
        let mut printer = spawn_display(
            headless,
            header,
            snapshots,
            commands,
            shutdown.clone(),
            progress_every,
        );
        let published = CancellationToken::new();
        let publishing = publisher
            .as_ref()
            .map(|p| p.spawn_snapshots(engine.snapshots(), published.clone()));
        // The engine samples this process (`single`) and the stack's children.
        let result = engine.run(shutdown).await;
        if let Some(exporter) = exporter {
            exporter.stop().await;
        }
        if let (Some(p), Some(task)) = (&publisher, publishing) {
            published.cancel();
            let _ = task.await;
            let sent = p.finish(result.as_ref().map_err(ToString::to_string)).await;
            if let Err(err) = sent {
                eprintln!("sim: --publish: the report did not reach Redis: {err}");
            }
        }
        if headless {
            printer.abort();
        } else {
            // The dashboard returns on the final snapshot with the terminal restored; the
            // progress line it falls back to never returns.
            if tokio::time::timeout(Duration::from_secs(2), &mut printer)
                .await
                .is_err()
            {
                printer.abort();
            }
            eprintln!();
        }
        Ok(result)
    });
    match result {
        Ok(Ok(mut report)) => {
            report.set_provenance(provenance.0, provenance.1);
            finish(&report, &outputs)
        }
        Ok(Err(err)) => {
            eprintln!("sim: {err}");
            ExitCode::from(if err.is_config() {
                EXIT_CONFIG
            } else {
                EXIT_BREACH
            })
        }
        Err(code) => code,
    }
}

/// The scenario file's text and the command line's overrides of it, for the report.
fn provenance(args: &RunArgs) -> (Option<String>, Vec<String>) {
    let text = std::fs::read_to_string(&args.file).ok();
    let mut flags: Vec<String> = Vec::new();
    let mut add = |flag: &str, value: String| {
        flags.push(flag.to_owned());
        flags.push(value);
    };
    if let Some(seed) = args.seed {
        add("--seed", seed.to_string());
    }
    if let Some(d) = args.duration {
        add("--duration", format!("{}ms", d.as_millis()));
    }
    if let Some(s) = args.shard {
        add("--shard", format!("{}/{}", s.index, s.count));
    }
    if let Some(url) = &args.target.fakes_url {
        add("--fakes-url", url.to_string());
    }
    if !args.target.matchmaker_url.is_empty() {
        let urls: Vec<&str> = args
            .target
            .matchmaker_url
            .iter()
            .map(url::Url::as_str)
            .collect();
        add("--matchmaker-url", urls.join(","));
    }
    if let Some(n) = args.workers {
        add("--workers", n.to_string());
    }
    if let Some(n) = args.stack.lobby_shards {
        add("--lobby-shards", n.to_string());
    }
    if let Some(n) = args.stack.replicas {
        add("--replicas", n.to_string());
    }
    (text, flags)
}

/// Starts the live metrics endpoint when asked for; says where it listens.
async fn start_exporter(
    addr: Option<std::net::SocketAddr>,
    snapshots: &tokio::sync::watch::Receiver<sim::metrics::MetricsSnapshot>,
) -> Result<Option<sim::exporter::Exporter>, ExitCode> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    match sim::exporter::Exporter::start(addr, snapshots.clone()).await {
        Ok(exporter) => {
            eprintln!("sim: metrics at http://{}/metrics", exporter.addr);
            Ok(Some(exporter))
        }
        Err(err) => {
            eprintln!("sim: --metrics-addr {addr}: {err}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// On Ctrl-C or SIGTERM: drain; on a second one: quit at once (worker processes die with
/// this one).
async fn on_interrupt(shutdown: CancellationToken) {
    if interrupted().await {
        eprintln!("sim: interrupted, draining (press again to quit)");
        shutdown.cancel();
        if interrupted().await {
            sim::dashboard::terminal::restore();
            std::process::exit(130);
        }
    }
}

/// Waits for Ctrl-C or SIGTERM; `false` if neither can be listened for.
async fn interrupted() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            s = term.recv() => s.is_some(),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// The live dashboard until the run finishes; where the terminal cannot host it, the live
/// progress line.
/// The live view of a run: progress lines when headless, else the dashboard.
fn spawn_display(
    headless: bool,
    header: sim::dashboard::Header,
    snapshots: tokio::sync::watch::Receiver<sim::metrics::MetricsSnapshot>,
    commands: tokio::sync::mpsc::Sender<sim::engine::EngineCommand>,
    shutdown: CancellationToken,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    if headless {
        tokio::spawn(progress(snapshots, true, every))
    } else {
        tokio::spawn(dashboard(header, snapshots, commands, shutdown, every))
    }
}

async fn dashboard(
    header: sim::dashboard::Header,
    snapshots: tokio::sync::watch::Receiver<sim::metrics::MetricsSnapshot>,
    commands: tokio::sync::mpsc::Sender<sim::engine::EngineCommand>,
    shutdown: CancellationToken,
    every: Duration,
) {
    if let Err(err) = sim::dashboard::run(header, snapshots.clone(), commands, shutdown).await {
        eprintln!("sim: no dashboard ({err}); showing a progress line instead");
        progress(snapshots, false, every).await;
    }
}

/// Prints progress until aborted: a line every `every` (headless) or one live line.
async fn progress(
    mut snapshots: tokio::sync::watch::Receiver<sim::metrics::MetricsSnapshot>,
    headless: bool,
    every: Duration,
) {
    let mut warned = false;
    let mut tick = tokio::time::interval(if headless {
        every
    } else {
        Duration::from_millis(500)
    });
    tick.tick().await;
    loop {
        tick.tick().await;
        let snap = snapshots.borrow_and_update().clone();
        if snap.saturated && !warned {
            warned = true;
            eprintln!(
                "\nsim: WARNING saturated: players start more than 50ms after their scheduled time (worst {}); the offered load is not being met",
                summary::ms(snap.max_lag_ms)
            );
        }
        let line = summary::progress_line(&snap);
        if headless {
            println!("{line}");
        } else {
            eprint!("\r{line}\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}

fn finish(report: &RunReport, outputs: &Outputs) -> ExitCode {
    print!("{}", summary::render(report));
    if let Err(err) = write_outputs(report, outputs) {
        eprintln!("sim: {err:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    for t in report.failed_thresholds() {
        eprintln!("sim: threshold {} failed: {}", t.name, t.message);
    }
    if report.verdict.saturated() {
        eprintln!(
            "sim: WARNING the results are not trustworthy: {}",
            report.verdict.headline
        );
    }
    if !report.invariants.passed() {
        eprintln!(
            "sim: invariant check failed: {} violations",
            report.invariants.violations.len()
        );
    }
    ExitCode::from(if report.passed {
        EXIT_PASS
    } else {
        EXIT_BREACH
    })
}

fn write_outputs(report: &RunReport, outputs: &Outputs) -> anyhow::Result<()> {
    if let Some(path) = &outputs.report {
        report.write_json(path)?;
    }
    if let Some(path) = &outputs.junit {
        write_file(path, junit::render(report).as_bytes()).context("junit")?;
    }
    if let Some(path) = &outputs.html {
        write_file(path, html::render(report).as_bytes()).context("html")?;
    }
    Ok(())
}

/// `sim run` with worker processes: hosts an embedded target here, starts `processes` workers
/// (this binary, `sim worker`), shows their merged figures, and writes the merged report.
fn run_workers(
    args: RunArgs,
    plan: Plan,
    processes: usize,
    headless: bool,
    limit: Option<u64>,
) -> ExitCode {
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(err) => {
            eprintln!("sim: cannot find this program to start workers: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let outputs = args.outputs.clone();
    let worker_reports = args.worker_reports.clone();
    let provenance = provenance(&args);
    let result = runtime.block_on(async move {
        eprintln!(
            "sim: {} — {processes} worker processes",
            sim::engine::describe(&plan)
        );
        // An embedded target lives here (spread over processes when one cannot hold it); the
        // workers reach it over its URLs.
        let hosted_embedded = matches!(plan.target, TargetPlan::Embedded(_));
        let peak = sim::workers::count::peak_players(&plan);
        let layout = args.stack.layout(&plan, limit.unwrap_or(1024));
        if hosted_embedded && !layout.is_multi_process() {
            // This process holds the servers' end of every player's sockets.
            let room = sim::limits::capacity(limit.unwrap_or(1024), 2, 1).players;
            if peak > room {
                eprintln!(
                    "sim: WARNING the embedded target in this process has room for about {room} players at once (2 open files each) but the scenario may hold {peak}; run the target elsewhere (urls target) if searches fail to connect"
                );
            }
        }
        if hosted_embedded && layout.is_multi_process() {
            announce_layout(&layout);
        }
        let hosted = match &plan.target {
            TargetPlan::Embedded(_) => {
                let options = sim::target::TargetOptions {
                    layout,
                    ..Default::default()
                };
                match sim::target::Target::start(&plan.target, &options).await {
                    Ok(target) => Some(target),
                    Err(err) => return Err((format!("{err}"), EXIT_CONFIG)),
                }
            }
            TargetPlan::Urls(_) => None,
        };
        // This process (hosting the embedded target) and the stack's children; the workers
        // sample themselves.
        let mut watched = vec![sim::sampler::Watched {
            role: "parent".to_owned(),
            pid: std::process::id(),
        }];
        if let Some(target) = &hosted {
            watched.extend(target.stack_processes().into_iter().map(|p| {
                sim::sampler::Watched {
                    role: p.role,
                    pid: p.pid,
                }
            }));
        }
        let sampler = sim::sampler::Sampler::start(watched, sim::sampler::EVERY);
        let mut common: Vec<std::ffi::OsString> = vec![args.file.clone().into()];
        if let Some(seed) = args.seed {
            common.extend(["--seed".into(), seed.to_string().into()]);
        }
        if let Some(d) = args.duration {
            common.extend(["--duration".into(), format!("{}ms", d.as_millis()).into()]);
        }
        let (fakes, matchmakers) = match (&hosted, &args.target.fakes_url) {
            (Some(t), _) => (Some(t.fakes_url.clone()), t.matchmaker_urls.clone()),
            (None, Some(f)) => (Some(f.clone()), args.target.matchmaker_url.clone()),
            (None, None) => (None, Vec::new()),
        };
        if let Some(fakes) = fakes {
            let list = matchmakers
                .iter()
                .map(url::Url::as_str)
                .collect::<Vec<_>>()
                .join(",");
            common.extend([
                "--fakes-url".into(),
                fakes.to_string().into(),
                "--matchmaker-url".into(),
                list.into(),
            ]);
        }
        let mut env = Vec::new();
        if let Some(secret) = &args.target.game_client_secret {
            env.push(("SIM_GAME_CLIENT_SECRET".into(), secret.into()));
        }
        if let Some(token) = &args.target.fakes_control_token {
            env.push(("SIM_FAKES_CONTROL_TOKEN".into(), token.into()));
        }
        let parent = std::process::id().to_string();
        let launch = sim::workers::supervisor::Launch {
            program,
            args: (0..processes)
                .map(|i| {
                    let mut a: Vec<std::ffi::OsString> = vec!["worker".into()];
                    a.extend(common.iter().cloned());
                    a.extend([
                        "--shard".into(),
                        format!("{i}/{processes}").into(),
                        "--parent-pid".into(),
                        parent.clone().into(),
                    ]);
                    a
                })
                .collect(),
            env,
        };
        let (snap_tx, snapshots) =
            tokio::sync::watch::channel(sim::metrics::MetricsSnapshot::default());
        // The parent serves the merged figures.
        let exporter = start_exporter(args.metrics_addr, &snapshots)
            .await
            .map_err(|_| ("cannot serve the metrics endpoint".to_owned(), EXIT_CONFIG))?;
        let (commands, commands_rx) = tokio::sync::mpsc::channel(64);
        let shutdown = CancellationToken::new();
        tokio::spawn(on_interrupt(shutdown.clone()));
        let mut header = sim::dashboard::Header::from_plan(&plan);
        header.target = format!("{}, {processes} worker processes", header.target);
        let progress_every = plan.run.progress_every;
        let mut printer = spawn_display(
            headless,
            header,
            snapshots,
            commands,
            shutdown.clone(),
            progress_every,
        );
        let options = sim::workers::supervisor::SupervisorOptions {
            stall_after: args.worker_stall_timeout,
            thresholds: plan.thresholds.clone(),
        };
        let collected =
            sim::workers::supervisor::run(launch, options, snap_tx, commands_rx, shutdown).await;
        if let Some(exporter) = exporter {
            exporter.stop().await;
        }
        if headless {
            printer.abort();
        } else {
            if tokio::time::timeout(Duration::from_secs(2), &mut printer)
                .await
                .is_err()
            {
                printer.abort();
                sim::dashboard::terminal::restore();
            }
            eprintln!();
        }
        // Read before the stack's processes stop.
        let sampled = sampler.finish().await;
        if let Some(target) = hosted {
            target.shutdown().await;
        }
        let collected = collected.map_err(|err| {
            let code = if err.is_config() {
                EXIT_CONFIG
            } else {
                EXIT_BREACH
            };
            (err.to_string(), code)
        })?;
        if let Some(dir) = &worker_reports {
            for (i, r) in collected.reports.iter().enumerate() {
                r.write_json(&dir.join(format!("worker-{i}.json")))
                    .map_err(|e| (e.to_string(), EXIT_CONFIG))?;
            }
        }
        let mut merged =
            RunReport::merge(&collected.reports).map_err(|e| (e.to_string(), EXIT_BREACH))?;
        merged
            .set_invariants(collected.outcomes.check())
            .map_err(|e| (e.to_string(), EXIT_BREACH))?;
        let mut mine = sampled.processes.into_iter();
        if let Some(parent) = mine.next() {
            merged.processes.insert(0, parent);
        }
        merged.processes.extend(mine);
        if sampled.machine.is_some() {
            merged.machine = sampled.machine;
        }
        if hosted_embedded {
            // The workers saw URLs; the scenario's target is the one this process hosted.
            merged.scenario.target = "embedded".to_owned();
        }
        merged.judge();
        merged.set_provenance(provenance.0, provenance.1);
        Ok(merged)
    });
    match result {
        Ok(report) => finish(&report, &outputs),
        Err((message, code)) => {
            eprintln!("sim: {message}");
            ExitCode::from(code)
        }
    }
}

/// `sim worker`: one shard of a `sim run`, reporting to it on stdout.
fn worker(args: WorkerArgs) -> ExitCode {
    if !sim::workers::child::die_with_parent(args.parent_pid) {
        eprintln!("sim: the parent process is gone");
        return ExitCode::from(EXIT_BREACH);
    }
    let plan = match load_plan(&args.file, args.seed, args.duration, &args.target) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let limit = open_files().ok().map(|(soft, _)| soft);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let options = EngineOptions {
        shard: Some(args.shard),
        open_files: limit,
        target: args.target.options(sim::stack::StackLayout::SINGLE),
        ..EngineOptions::default()
    };
    let index = args.shard.index as usize;
    let exit = runtime.block_on(sim::workers::child::run(plan, options, index));
    // The stdin reader may still be blocked in a read; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match exit {
        sim::workers::child::WorkerExit::Reported => ExitCode::from(EXIT_PASS),
        sim::workers::child::WorkerExit::Config => ExitCode::from(EXIT_CONFIG),
        sim::workers::child::WorkerExit::Failed => ExitCode::from(EXIT_BREACH),
    }
}

fn stack(file: &Path, stack_args: &StackArgs) -> ExitCode {
    let plan = match Plan::from_file(file) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if !matches!(plan.target, TargetPlan::Embedded(_)) {
        eprintln!(
            "sim: {}: stack serves an embedded target only",
            file.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let limit = match open_files() {
        Ok((soft, _)) => {
            eprintln!("sim: open files {soft}");
            soft
        }
        Err(err) => {
            eprintln!("sim: cannot raise the open-files limit: {err}");
            1024
        }
    };
    let layout = stack_args.layout(&plan, limit);
    if layout.is_multi_process() {
        announce_layout(&layout);
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let options = sim::target::TargetOptions {
            layout,
            ..Default::default()
        };
        let target = match sim::target::Target::start(&plan.target, &options).await {
            Ok(target) => target,
            Err(err) => {
                eprintln!("sim: {err}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let matchmakers = target
            .matchmaker_urls
            .iter()
            .map(url::Url::as_str)
            .collect::<Vec<_>>()
            .join(",");
        println!("fakes       {}", target.fakes_url);
        println!("matchmaker  {matchmakers}");
        println!(
            "run shards with: sim run FILE --shard I/N --fakes-url {} --matchmaker-url {matchmakers}",
            target.fakes_url
        );
        let _ = std::io::stdout().flush();
        let _ = tokio::signal::ctrl_c().await;
        target.shutdown().await;
        ExitCode::from(EXIT_PASS)
    })
}

/// `sim capacity`: steps of the scenario at one load each, in this process (a fresh embedded
/// target every step), until the knee is found, the harness saturates or time runs out.
fn capacity(args: CapacityArgs) -> ExitCode {
    let plan = match load_plan(&args.file, args.seed, None, &args.target) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if args.factor.is_nan()
        || args.factor <= 1.0
        || args.precision.is_nan()
        || args.precision <= 0.0
    {
        eprintln!("sim: --factor must be above 1 and --precision above 0");
        return ExitCode::from(EXIT_CONFIG);
    }
    if args.step_duration.is_zero() {
        eprintln!("sim: --step-duration must be above 0");
        return ExitCode::from(EXIT_CONFIG);
    }
    let limit = open_files().ok().map(|(soft, _)| soft);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let options = sim::capacity::CapacityOptions {
        step: args.step_duration,
        hold: args.hold.unwrap_or(args.step_duration * 2),
        time_limit: args.time_limit,
        start: args.start,
        factor: args.factor,
        precision: args.precision,
        max_load: args.max,
    };
    let kind = sim::capacity::LoadKind::of(&plan);
    eprintln!(
        "sim: capacity of {} — {} steps, a {}s hold, within {}s",
        plan.name,
        sim::scenario::format_duration(options.step),
        options.hold.as_secs(),
        options.time_limit.as_secs()
    );
    let stack_args = args.stack;
    let target_args = args.target;
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(on_interrupt(shutdown.clone()));
        let run_step = |step: Plan, stop: CancellationToken| {
            let layout = stack_args.layout(&step, limit.unwrap_or(1024));
            let options = EngineOptions {
                open_files: limit,
                target: target_args.options(layout),
                ..EngineOptions::default()
            };
            eprintln!(
                "sim: step {} for {}",
                kind.format(sim::capacity::LoadKind::scenario_load(&step)),
                sim::scenario::format_duration(step.run.duration)
            );
            Engine::new(step, options).run(stop)
        };
        sim::capacity::run(&plan, &options, shutdown, run_step, |step| {
            eprintln!("sim: {}", sim::capacity::report::step_line(kind, step));
        })
        .await
    });
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            eprintln!("sim: {err}");
            return ExitCode::from(if err.is_config() {
                EXIT_CONFIG
            } else {
                EXIT_BREACH
            });
        }
    };
    print!("{}", sim::capacity::report::render_summary(&report));
    if let Some(path) = &args.report {
        if let Err(err) = report.write_json(path) {
            eprintln!("sim: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    if let Some(path) = &args.html {
        if let Err(err) = write_file(path, sim::capacity::report::render_html(&report).as_bytes()) {
            eprintln!("sim: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    ExitCode::from(if report.knee.is_some() {
        EXIT_PASS
    } else {
        EXIT_BREACH
    })
}

/// `sim watch`: the merged live view of shards that publish to Redis, then their merged report.
fn watch(args: WatchArgs) -> ExitCode {
    let plan = match Plan::from_file(&args.file) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let headless = args.headless || !std::io::stdout().is_terminal();
    let result = runtime.block_on(async move {
        let (snap_tx, snapshots) =
            tokio::sync::watch::channel(sim::metrics::MetricsSnapshot::default());
        // Watching sends no commands: the shards are driven where they run.
        let (commands, _commands_rx) = tokio::sync::mpsc::channel(1);
        let shutdown = CancellationToken::new();
        tokio::spawn(on_interrupt(shutdown.clone()));
        let mut header = sim::dashboard::Header::from_plan(&plan);
        header.target = format!("{} (watching {})", header.target, args.from.key());
        eprintln!("sim: watching {} on {}", args.from.key(), args.from.redis);
        let mut printer = spawn_display(
            headless,
            header,
            snapshots,
            commands,
            shutdown.clone(),
            plan.run.progress_every,
        );
        let merged = sim::remote::watch::follow(
            &args.from,
            plan.thresholds.clone(),
            args.shards,
            snap_tx,
            shutdown,
        )
        .await;
        if headless {
            printer.abort();
        } else {
            if tokio::time::timeout(Duration::from_secs(2), &mut printer)
                .await
                .is_err()
            {
                printer.abort();
                sim::dashboard::terminal::restore();
            }
            eprintln!();
        }
        merged
    });
    match result {
        Ok(report) => finish(&report, &args.outputs),
        Err(err) => {
            eprintln!("sim: {err}");
            ExitCode::from(EXIT_BREACH)
        }
    }
}

fn merge(args: MergeArgs) -> ExitCode {
    let mut reports = Vec::new();
    for path in &args.reports {
        match RunReport::read_json(Path::new(path)) {
            Ok(r) => reports.push(r),
            Err(err) => {
                eprintln!("sim: {err}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    match RunReport::merge(&reports) {
        Ok(merged) => finish(&merged, &args.outputs),
        Err(err) => {
            eprintln!("sim: {err}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// `sim compare`: prints the comparison, writes its HTML and JUnit, exits 1 on a regression
/// beyond a limit.
fn compare(args: &CompareArgs) -> ExitCode {
    let limits = match sim::compare::parse_limits(&args.max_regression) {
        Ok(limits) => limits,
        Err(err) => {
            eprintln!("sim: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut reports = Vec::new();
    for path in [&args.base, &args.new] {
        match RunReport::read_json(path) {
            Ok(r) => reports.push(r),
            Err(err) => {
                eprintln!("sim: {err}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    let (base, new) = (&reports[0], &reports[1]);
    let comparison = sim::compare::compare(base, new, &limits);
    let files = (
        args.base.display().to_string(),
        args.new.display().to_string(),
    );
    print!(
        "{}",
        sim::compare::render::text(&comparison, &files.0, &files.1)
    );
    let written = (|| -> anyhow::Result<()> {
        if let Some(path) = &args.html {
            let page = sim::compare::render::html(&comparison, base, new, (&files.0, &files.1));
            write_file(path, page.as_bytes()).context("html")?;
        }
        if let Some(path) = &args.junit {
            write_file(path, sim::compare::render::junit(&comparison).as_bytes())
                .context("junit")?;
        }
        Ok(())
    })();
    if let Err(err) = written {
        eprintln!("sim: {err:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    ExitCode::from(if comparison.passed() {
        EXIT_PASS
    } else {
        EXIT_BREACH
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse() {
        assert_eq!(parse_shard("1/4"), Ok(ShardSpec { index: 1, count: 4 }));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("x").is_err());
    }
}
