//! The worker side of a multi-process run (`sim worker`, started by `sim run`): runs the engine
//! for its shard, streams snapshots on stdout, takes commands on stdin, and never outlives the
//! parent.
//!
//! Orphans: on Linux the worker asks the kernel to kill it when its parent dies
//! (`PR_SET_PDEATHSIG`), then checks the parent is still the one that started it; everywhere,
//! the end of stdin (the parent's end of the pipe closed) stops and drains the run.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_util::sync::CancellationToken;

use super::wire::{WorkerMessage, parse_command};
use crate::engine::{Engine, EngineCommand, EngineOptions};
use crate::scenario::Plan;

/// How often a worker sends its snapshot (also its heartbeat).
pub const SNAPSHOT_EVERY: Duration = Duration::from_millis(500);

/// How a worker run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// The report was sent (whatever its verdict: the parent judges the merged one).
    Reported,
    /// A problem with the scenario or configuration.
    Config,
    /// The run failed.
    Failed,
}

/// Makes this process die with its parent; `false` when the parent is already gone.
pub fn die_with_parent(parent: Option<u32>) -> bool {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::signal::Signal;
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    }
    match parent {
        // The parent may have died before the death signal was armed.
        Some(pid) => u32::try_from(nix::unistd::getppid().as_raw()).is_ok_and(|p| p == pid),
        None => true,
    }
}

/// Runs worker `index` of `plan` (the options carry its shard) and reports on stdout.
pub async fn run(plan: Plan, mut options: EngineOptions, index: usize) -> WorkerExit {
    options.mergeable_snapshots = true;
    // The parent starts every worker's clock at once, when all are prepared.
    options.hold_start = true;
    options.process_role = format!("worker {index}");
    let engine = Engine::new(plan, options);
    let mut snapshots = engine.snapshots();
    let snapshots_final = engine.snapshots();
    let commands = engine.commands();
    let shutdown = CancellationToken::new();

    // Commands from the parent; the end of stdin stops the run.
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => match parse_command(&line) {
                    Some(EngineCommand::Stop) => stop.cancel(),
                    Some(command) => {
                        let _ = commands.send(command).await;
                    }
                    None => tracing::warn!("worker {index}: unknown command {line:?}"),
                },
                Ok(None) | Err(_) => {
                    stop.cancel();
                    return;
                }
            }
        }
    });
    // SIGTERM drains like `stop`.
    #[cfg(unix)]
    {
        let stop = shutdown.clone();
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::spawn(async move {
                if term.recv().await.is_some() {
                    stop.cancel();
                }
            });
        }
    }

    // Snapshots to the parent until the run ends.
    let streaming = CancellationToken::new();
    let streamer = {
        let streaming = streaming.clone();
        tokio::spawn(async move {
            let mut out = tokio::io::stdout();
            let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = streaming.cancelled() => return out,
                }
                let mut snapshot = snapshots.borrow_and_update().clone();
                snapshot.series.clear();
                snapshot.thresholds.clear();
                let message = WorkerMessage::Snapshot {
                    snapshot: Box::new(snapshot),
                };
                if write_line(&mut out, &message).await.is_err() {
                    // The parent is gone; the end of stdin stops the run.
                    return out;
                }
            }
        })
    };

    let result = engine.run_with_outcomes(shutdown).await;
    streaming.cancel();
    let mut out = match streamer.await {
        Ok(out) => out,
        Err(_) => tokio::io::stdout(),
    };
    // The last figures (phase `finished`), so the parent's live view ends where the run did.
    let mut last = snapshots_final.borrow().clone();
    last.series.clear();
    last.thresholds.clear();
    let _ = write_line(
        &mut out,
        &WorkerMessage::Snapshot {
            snapshot: Box::new(last),
        },
    )
    .await;
    let (message, exit) = match result {
        Ok((report, outcomes)) => {
            // The engine sampled this process (`worker I`) during the run.
            (
                WorkerMessage::Finished {
                    report: Box::new(report),
                    outcomes: Box::new(outcomes),
                },
                WorkerExit::Reported,
            )
        }
        Err(err) => {
            let config = err.is_config();
            (
                WorkerMessage::Failed {
                    message: err.to_string(),
                    config,
                },
                if config {
                    WorkerExit::Config
                } else {
                    WorkerExit::Failed
                },
            )
        }
    };
    if write_line(&mut out, &message).await.is_err() {
        return WorkerExit::Failed;
    }
    exit
}

async fn write_line(out: &mut tokio::io::Stdout, message: &WorkerMessage) -> std::io::Result<()> {
    let mut line = message.to_line();
    line.push('\n');
    out.write_all(line.as_bytes()).await?;
    out.flush().await
}
