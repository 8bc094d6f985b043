//! The chaos timeline: at each step's time, hurt a process or a link of the embedded stack
//! ([`StackControl`]), and undo the harm when the step's duration ends (start the killed
//! process again, SIGCONT the paused one, heal the link). A restart is done in one go.
//!
//! Each step becomes a [`FaultEvent`] beside the fakes' faults (so dashboards and reports show
//! its window) with its *recovery*: how long after the harm ended the stack completed a match
//! again — 0 when matching never stopped (another replica carried on).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::faults::{Action, FaultState, window_actions};
use crate::metrics::snapshot::MetricsSnapshot;
use crate::report::FaultEvent;
use crate::scenario::{ChaosAction, ChaosStep};
use crate::stack::control::StackControl;
use crate::stack::proxy::LinkMode;

/// How long after the harm ended recovery is looked for.
const RECOVERY_WINDOW: Duration = Duration::from_secs(120);

/// Harm at a step's start; undo at its end (a restart has none: it is over when done).
fn actions(steps: &[ChaosStep]) -> Vec<(Duration, Action)> {
    window_actions(steps.iter().map(|step| {
        let undone = !matches!(step.action, ChaosAction::Restart { .. });
        (step.at, step.duration.filter(|_| undone))
    }))
}

fn event_id(index: usize) -> String {
    format!("chaos-{}", index + 1)
}

/// Runs the timeline until its last action or `stop`, then heals what is still cut or paused.
pub async fn run_timeline(
    steps: Vec<ChaosStep>,
    control: Arc<StackControl>,
    state: Arc<FaultState>,
    snapshots: watch::Receiver<MetricsSnapshot>,
    start: Instant,
    stop: CancellationToken,
) {
    let since_start = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let recoveries = tokio_util::task::TaskTracker::new();
    for (at, action) in actions(&steps) {
        tokio::select! {
            () = tokio::time::sleep_until(start + at) => {}
            () = stop.cancelled() => break,
        }
        match action {
            Action::Add(i) => {
                let step = &steps[i];
                let at_ms = since_start();
                let result = harm(&control, step.action).await;
                let applied = result.is_ok();
                if applied {
                    state.active.lock().push(step.label.clone());
                }
                // A restart is over once it returns; so is a kill that stays down.
                let ended = match step.action {
                    ChaosAction::Restart { .. } => Some(since_start()),
                    _ => None,
                };
                if applied {
                    if let Some(until) = ended {
                        state.active.lock().retain(|l| *l != step.label);
                        recoveries.spawn(watch_recovery(
                            Arc::clone(&state),
                            event_id(i),
                            until,
                            snapshots.clone(),
                            stop.clone(),
                        ));
                    }
                }
                state.events.lock().push(FaultEvent {
                    label: step.label.clone(),
                    id: event_id(i),
                    at_ms,
                    until_ms: ended,
                    applied,
                    error: result.err().map(|e| format!("line {}: {e:#}", step.line)),
                    recovered_ms: None,
                });
            }
            Action::Remove(i) => {
                let step = &steps[i];
                let result = undo(&control, step.action).await;
                let until = since_start();
                state.active.lock().retain(|l| *l != step.label);
                let id = event_id(i);
                if let Some(event) = state
                    .events
                    .lock()
                    .iter_mut()
                    .find(|e| e.id == id && e.applied)
                {
                    event.until_ms = Some(until);
                    if let Err(e) = &result {
                        event.error = Some(format!("line {}: undo: {e:#}", step.line));
                    }
                }
                recoveries.spawn(watch_recovery(
                    Arc::clone(&state),
                    id,
                    until,
                    snapshots.clone(),
                    stop.clone(),
                ));
            }
        }
    }
    recoveries.close();
    stop.cancelled().await;
    recoveries.wait().await;
}

/// Undoes every step's harm at the end of a run: links healed, paused processes resumed.
/// Killed processes stay down; the stack's shutdown stops the rest.
pub fn cleanup(control: &StackControl, state: &FaultState) {
    control.heal_all();
    state.active.lock().clear();
}

async fn harm(control: &StackControl, action: ChaosAction) -> anyhow::Result<()> {
    match action {
        ChaosAction::Kill { process } => control.kill(process).await,
        ChaosAction::Pause { process } => control.pause(process),
        ChaosAction::Restart { process } => control.restart(process).await,
        ChaosAction::Partition { link, mode } => control.set_link(link, mode),
    }
}

async fn undo(control: &StackControl, action: ChaosAction) -> anyhow::Result<()> {
    match action {
        ChaosAction::Kill { process } => control.start(process).await,
        ChaosAction::Pause { process } => {
            control.resume(process);
            Ok(())
        }
        ChaosAction::Restart { .. } => Ok(()),
        ChaosAction::Partition { link, .. } => control.set_link(link, LinkMode::Pass),
    }
}

/// Records when the first match after `until_ms` completed, as the event's recovery.
async fn watch_recovery(
    state: Arc<FaultState>,
    id: String,
    until_ms: u64,
    mut snapshots: watch::Receiver<MetricsSnapshot>,
    stop: CancellationToken,
) {
    let matched_then = snapshots.borrow().matched;
    let found = async {
        snapshots
            .wait_for(|s| s.matched > matched_then)
            .await
            .map(|s| s.elapsed_ms)
            .ok()
    };
    let at = tokio::select! {
        at = found => at,
        () = tokio::time::sleep(RECOVERY_WINDOW) => None,
        () = stop.cancelled() => None,
    };
    if let Some(at) = at {
        if let Some(event) = state.events.lock().iter_mut().find(|e| e.id == id) {
            event.recovered_ms = Some(at.saturating_sub(until_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::control::{LinkName, ProcessName};

    fn step(at: u64, duration: Option<u64>, action: ChaosAction) -> ChaosStep {
        ChaosStep {
            at: Duration::from_secs(at),
            duration: duration.map(Duration::from_secs),
            label: action.describe(),
            action,
            line: 1,
        }
    }

    #[test]
    fn undo_follows_harm_and_restarts_have_none() {
        let steps = vec![
            step(
                10,
                Some(5),
                ChaosAction::Kill {
                    process: ProcessName::Replica(0),
                },
            ),
            step(
                15,
                None,
                ChaosAction::Restart {
                    process: ProcessName::Redis,
                },
            ),
            step(
                2,
                Some(1),
                ChaosAction::Partition {
                    link: LinkName::MatchmakerRedis,
                    mode: LinkMode::Blackhole,
                },
            ),
        ];
        let order: Vec<_> = actions(&steps)
            .into_iter()
            .map(|(t, a)| (t.as_secs(), a))
            .collect();
        assert_eq!(
            order,
            vec![
                (2, Action::Add(2)),
                (3, Action::Remove(2)),
                (10, Action::Add(0)),
                (15, Action::Remove(0)),
                (15, Action::Add(1)),
            ]
        );
        assert_eq!(steps[2].label, "partition matchmaker-redis (blackhole)");
    }
}
