//! The parent side of a multi-process run: starts the workers, merges what they stream,
//! forwards commands, and turns a worker that dies or goes quiet into a verdict naming it.
//!
//! Every worker runs in its own process group (a terminal's Ctrl-C reaches only the parent,
//! which then tells each worker to stop and drain) and is killed when its handle is dropped,
//! so no path out of [`run`] leaves one behind; a worker also dies with the parent (see
//! [`super::child`]).

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::live::LiveMerge;
use super::wire::{WorkerMessage, command_line};
use crate::engine::{EngineCommand, Outcomes};
use crate::metrics::{MetricsSnapshot, Phase};
use crate::report::RunReport;
use crate::scenario::Thresholds;

/// How to start the workers: one argument list each (the program is the same).
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<Vec<OsString>>,
    /// Set in every worker's environment (secrets stay off the command line).
    pub env: Vec<(OsString, OsString)>,
}

/// How the parent watches.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// A worker that sends nothing for this long fails the run.
    pub stall_after: Duration,
    /// Live thresholds on the merged figures.
    pub thresholds: Thresholds,
}

/// Why a multi-process run failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    #[error("worker {index}: cannot start {program}: {source}")]
    Spawn {
        index: usize,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("worker {index} (pid {pid}) {how} before sending its report")]
    Died { index: usize, pid: u32, how: String },
    #[error("worker {index} (pid {pid}) {how} after sending its report")]
    ExitedBadly { index: usize, pid: u32, how: String },
    #[error("worker {index} (pid {pid}) stopped reporting: nothing for {secs:.0}s")]
    Stalled { index: usize, pid: u32, secs: f64 },
    #[error("worker {index} (pid {pid}) failed: {message}")]
    Failed {
        index: usize,
        pid: u32,
        message: String,
        config: bool,
    },
    #[error("worker {index} (pid {pid}) sent a line that is not a worker message: {message}")]
    Protocol {
        index: usize,
        pid: u32,
        message: String,
    },
}

impl WorkersError {
    /// A problem with the scenario or configuration (exit 2).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            WorkersError::Spawn { .. } | WorkersError::Failed { config: true, .. }
        )
    }
}

/// What the workers handed back, in worker order.
#[derive(Debug)]
pub struct Collected {
    pub reports: Vec<RunReport>,
    pub outcomes: Outcomes,
}

/// A line (or the end) from worker `index`'s stdout.
enum Event {
    Message(usize, Box<WorkerMessage>),
    Garbled(usize, String),
    Closed(usize),
}

struct Worker {
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    last_heard: Instant,
    /// It has sent its first snapshot.
    reporting: bool,
    /// It is prepared and holds its clock until every worker is (see `EngineOptions::hold_start`).
    ready: bool,
    finished: Option<(RunReport, Outcomes)>,
    exited: bool,
}

/// Describes how a process ended.
pub fn describe_exit(status: &ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map(|s| format!(" ({})", s.as_str()))
                .unwrap_or_default();
            return format!("was killed by signal {signal}{name}");
        }
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "ended".to_owned(),
    }
}

/// Starts the workers and runs them to the end: merged snapshots go to `snapshots`, commands
/// from `commands` go to every worker, `shutdown` makes them all stop and drain.
pub async fn run(
    launch: Launch,
    options: SupervisorOptions,
    snapshots: watch::Sender<MetricsSnapshot>,
    mut commands: mpsc::Receiver<EngineCommand>,
    shutdown: CancellationToken,
) -> Result<Collected, WorkersError> {
    let n = launch.args.len();
    let (events_tx, mut events) = mpsc::channel::<Event>(256);
    let mut workers = Vec::with_capacity(n);
    for (index, args) in launch.args.iter().enumerate() {
        let mut command = Command::new(&launch.program);
        command
            .args(args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|source| WorkersError::Spawn {
            index,
            program: launch.program.display().to_string(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        eprintln_held(&format!("sim: worker {index} started (pid {pid})"));
        if let Some(stdout) = child.stdout.take() {
            let tx = events_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if !line.starts_with('{') {
                        // Not a message: something in the worker printed to stdout.
                        eprintln_held(&format!("worker {index}: {line}"));
                        continue;
                    }
                    let event = match WorkerMessage::from_line(&line) {
                        Ok(m) => Event::Message(index, Box::new(m)),
                        Err(e) => Event::Garbled(index, e.to_string()),
                    };
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send(Event::Closed(index)).await;
            });
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln_held(&format!("worker {index}: {line}"));
                }
            });
        }
        workers.push(Worker {
            stdin: child.stdin.take(),
            child,
            pid,
            last_heard: Instant::now(),
            reporting: false,
            ready: false,
            finished: None,
            exited: false,
        });
    }
    drop(events_tx);

    let mut live = LiveMerge::new(n, options.thresholds.clone());
    let mut stopping = false;
    let mut started = false;
    let mut watchdog = tokio::time::interval(Duration::from_millis(500));
    loop {
        if workers.iter().all(|w| w.exited) {
            break;
        }
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    Event::Message(index, message) => {
                        let w = &mut workers[index];
                        w.last_heard = Instant::now();
                        match *message {
                            WorkerMessage::Snapshot { snapshot } => {
                                if !w.reporting {
                                    w.reporting = true;
                                    eprintln_held(&format!("sim: worker {index} (pid {}) reporting", w.pid));
                                }
                                // Past preparing counts as ready too (it cannot go back).
                                w.ready |= snapshot.ready || snapshot.phase != Phase::Preparing;
                                let pid = w.pid;
                                if let Err(e) = live.update(index, *snapshot) {
                                    return Err(WorkersError::Protocol { index, pid, message: e.to_string() });
                                }
                                snapshots.send_replace(live.snapshot());
                                if !started && workers.iter().all(|w| w.ready) {
                                    started = true;
                                    eprintln_held(&format!("sim: all {n} workers prepared; starting the clock"));
                                    send_all(&mut workers, EngineCommand::Start).await;
                                }
                            }
                            WorkerMessage::Finished { report, outcomes } => {
                                w.finished = Some((*report, *outcomes));
                                // Nothing more to tell it; closing its input lets it exit.
                                w.stdin = None;
                            }
                            WorkerMessage::Failed { message, config } => {
                                return Err(WorkersError::Failed { index, pid: w.pid, message, config });
                            }
                        }
                    }
                    Event::Garbled(index, message) => {
                        return Err(WorkersError::Protocol { index, pid: workers[index].pid, message });
                    }
                    Event::Closed(index) => {
                        let w = &mut workers[index];
                        // Its output is over; the process ends right after.
                        let status = match tokio::time::timeout(Duration::from_secs(10), w.child.wait()).await {
                            Ok(Ok(status)) => status,
                            _ => {
                                return Err(WorkersError::Died { index, pid: w.pid, how: "closed its output but did not exit".to_owned() });
                            }
                        };
                        w.exited = true;
                        if w.finished.is_none() {
                            return Err(WorkersError::Died { index, pid: w.pid, how: describe_exit(&status) });
                        }
                        if !status.success() {
                            return Err(WorkersError::ExitedBadly { index, pid: w.pid, how: describe_exit(&status) });
                        }
                    }
                }
            }
            Some(command) = commands.recv() => {
                if command == EngineCommand::Stop {
                    stopping = true;
                }
                send_all(&mut workers, command).await;
            }
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                send_all(&mut workers, EngineCommand::Stop).await;
            }
            _ = watchdog.tick() => {
                for (index, w) in workers.iter().enumerate() {
                    let quiet = w.last_heard.elapsed();
                    if !w.exited && quiet > options.stall_after {
                        return Err(WorkersError::Stalled { index, pid: w.pid, secs: quiet.as_secs_f64() });
                    }
                }
            }
        }
    }
    let mut reports = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    for (index, w) in workers.into_iter().enumerate() {
        let Some((report, part)) = w.finished else {
            return Err(WorkersError::Died {
                index,
                pid: w.pid,
                how: "ended".to_owned(),
            });
        };
        reports.push(report);
        outcomes.push(part);
    }
    Ok(Collected {
        reports,
        outcomes: Outcomes::combine(outcomes),
    })
}

/// Sends a command to every worker still listening.
async fn send_all(workers: &mut [Worker], command: EngineCommand) {
    let mut line = command_line(command);
    line.push('\n');
    for w in workers.iter_mut() {
        if let Some(stdin) = w.stdin.as_mut() {
            if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                w.stdin = None;
            }
        }
    }
}

/// A line on stderr, held while the dashboard owns the terminal.
fn eprintln_held(line: &str) {
    let mut err = crate::dashboard::terminal::HeldStderr;
    let _ = writeln!(err, "{line}");
}
