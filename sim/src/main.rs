//! `sim`: run matchmaking load scenarios.
//!
//! - `sim check FILE...` validates scenario files (exit 2 with `file:line: field: message`).
//! - `sim run FILE` runs one: a live dashboard while it runs, a summary table at the end,
//!   optional JSON report, JUnit XML and HTML page. Headless (`--headless`, or whenever stdout is
//!   not a terminal): a progress line every few seconds.
//! - `sim merge A.json B.json ...` combines the reports of shards (`--shard i/n`) exactly.
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
    /// Serve a scenario's embedded target (fakes and matchmaker in this process) until
    /// interrupted, for `sim run --shard I/N --fakes-url … --matchmaker-url …` processes that
    /// together hold more sockets than one process may open.
    Stack {
        /// The scenario whose `[target]` to serve.
        file: PathBuf,
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
    /// Run against this fakes (or AGS) instead of the scenario's target (needs --matchmaker-url).
    #[arg(long, env = "SIM_FAKES_URL", requires = "matchmaker_url")]
    fakes_url: Option<url::Url>,
    /// Run against this matchmaking endpoint instead of the scenario's target.
    #[arg(long, env = "SIM_MATCHMAKER_URL", requires = "fakes_url")]
    matchmaker_url: Option<url::Url>,
    /// Secret of the game client (with --fakes-url; the fakes' built-in one by default).
    #[arg(long, env = "SIM_GAME_CLIENT_SECRET", hide_env_values = true)]
    game_client_secret: Option<String>,
}

#[derive(Args, Debug)]
struct MergeArgs {
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    #[command(flatten)]
    outputs: Outputs,
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
        Command::Stack { file } => stack(&file),
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for file in files {
        match Plan::from_file(file) {
            Ok(plan) => println!("{}: ok ({})", file.display(), sim::engine::describe(&plan)),
            Err(err) => {
                eprintln!("{err}");
                bad = true;
            }
        }
    }
    ExitCode::from(if bad { EXIT_CONFIG } else { EXIT_PASS })
}

fn run(args: RunArgs) -> ExitCode {
    let mut plan = match Plan::from_file(&args.file) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(seed) = args.seed {
        plan.run.seed = seed;
    }
    if let Some(duration) = args.duration {
        plan.run.duration = duration;
    }
    if let (Some(fakes), Some(matchmaker)) = (args.fakes_url.clone(), args.matchmaker_url.clone()) {
        plan.target = TargetPlan::Urls(Box::new(UrlsPlan {
            fakes,
            matchmaker,
            namespace: sim::target::builtin::NAMESPACE.to_owned(),
            player_client: ClientCredentials {
                id: sim::target::builtin::PLAYER_CLIENT.to_owned(),
                secret: None,
            },
            game_client: Some(ClientCredentials {
                id: sim::target::builtin::GAME_CLIENT.0.to_owned(),
                secret: Some(
                    args.game_client_secret
                        .clone()
                        .unwrap_or_else(|| sim::target::builtin::GAME_CLIENT.1.to_owned()),
                ),
            }),
            accounts: None,
            insecure_tls: false,
            source_addresses: plan.target.source_addresses().clone(),
        }));
    }
    let limit = match sim::limits::raise_open_files() {
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sim: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let options = EngineOptions {
        shard: args.shard,
        open_files: limit,
        ..EngineOptions::default()
    };
    let outputs = args.outputs.clone();
    let result = runtime.block_on(async move {
        let progress_every = plan.run.progress_every;
        eprintln!("sim: {}", sim::engine::describe(&plan));
        let header = sim::dashboard::Header::from_plan(&plan);
        let engine = Engine::new(plan, options);
        let snapshots = engine.snapshots();
        let commands = engine.commands();
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("sim: interrupted, draining (press again to quit)");
                on_signal.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    sim::dashboard::terminal::restore();
                    std::process::exit(130);
                }
            }
        });
        let mut printer = if headless {
            tokio::spawn(progress(snapshots, true, progress_every))
        } else {
            tokio::spawn(dashboard(
                header,
                snapshots,
                commands,
                shutdown.clone(),
                progress_every,
            ))
        };
        let result = engine.run(shutdown).await;
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
        result
    });
    match result {
        Ok(report) => finish(&report, &outputs),
        Err(err) => {
            eprintln!("sim: {err}");
            ExitCode::from(if err.is_config() {
                EXIT_CONFIG
            } else {
                EXIT_BREACH
            })
        }
    }
}

/// The live dashboard until the run finishes; where the terminal cannot host it, the live
/// progress line.
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

fn stack(file: &Path) -> ExitCode {
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
    match sim::limits::raise_open_files() {
        Ok((soft, _)) => eprintln!("sim: open files {soft}"),
        Err(err) => eprintln!("sim: cannot raise the open-files limit: {err}"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sim: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    runtime.block_on(async move {
        let target = match sim::target::Target::start(&plan.target, &Default::default()).await {
            Ok(target) => target,
            Err(err) => {
                eprintln!("sim: {err}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        println!("fakes       {}", target.fakes_url);
        println!("matchmaker  {}", target.matchmaker_url);
        println!(
            "run shards with: sim run FILE --shard I/N --fakes-url {} --matchmaker-url {}",
            target.fakes_url, target.matchmaker_url
        );
        let _ = std::io::stdout().flush();
        let _ = tokio::signal::ctrl_c().await;
        target.shutdown().await;
        ExitCode::from(EXIT_PASS)
    })
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
