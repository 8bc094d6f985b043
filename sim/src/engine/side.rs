//! What runs beside the loop while arrivals go on: the claim counter poll (once a second,
//! counted from the baseline read before the start), the fault timeline (only the first of
//! several shards on one fakes applies it, seeded with the run's seed) and the `[[chaos]]`
//! timeline. All stop on one token; [`SideTasks::stop`] waits for them.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::faults::FaultState;
use super::{EngineError, EngineOptions, chaos, faults};
use crate::metrics::{ClaimCounts, MetricsSnapshot, Recorder};
use crate::scenario::Plan;
use crate::stack::control::StackControl;
use crate::target::{ClaimsReader, Target};

/// The side tasks of a running run and what they share with the loop.
pub(super) struct SideTasks {
    stop: CancellationToken,
    tracker: TaskTracker,
    /// The claim counters since the baseline, as last polled.
    pub latest_claims: Arc<Mutex<Option<ClaimCounts>>>,
    /// Faults and chaos steps active now, and every fault event of the run.
    pub fault_state: Arc<FaultState>,
    /// The embedded stack's processes, which a chaos step acts on.
    pub chaos_control: Option<Arc<StackControl>>,
}

/// What the side tasks need to start.
pub(super) struct SideInputs<'a> {
    pub plan: &'a Plan,
    pub options: &'a EngineOptions,
    pub target: &'a Target,
    pub http: &'a reqwest::Client,
    /// The claim counters before the start, when the target has them.
    pub baseline: Option<ClaimCounts>,
    pub claims: ClaimsReader,
    pub snapshots: watch::Receiver<MetricsSnapshot>,
    pub recorder: &'a Recorder,
    pub start: Instant,
}

impl SideTasks {
    /// Starts the claim poll and the timelines; a warning is pushed when the fakes' fault
    /// decisions could not be seeded. `[[chaos]]` without a stack to act on is a config error.
    pub(super) async fn start(
        inputs: SideInputs<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<SideTasks, EngineError> {
        let SideInputs {
            plan,
            options,
            target,
            http,
            baseline,
            claims,
            snapshots,
            recorder,
            start,
        } = inputs;
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let latest_claims: Arc<Mutex<Option<ClaimCounts>>> = Arc::new(Mutex::new(None));
        if let Some(base) = baseline {
            let (latest, http, stop) = (Arc::clone(&latest_claims), http.clone(), stop.clone());
            tracker.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = every.tick() => {}
                        () = stop.cancelled() => return,
                    }
                    if let Some(now) = claims.read(&http).await {
                        *latest.lock() = Some(now.since(&base));
                    }
                }
            });
        }
        let fault_state = Arc::new(FaultState::default());
        // With several shards on one fakes, only the first applies the timeline.
        let applies_faults = options.shard.is_none_or(|s| s.index == 0);
        if applies_faults && !plan.faults.is_empty() {
            // Same seed, same fault decisions.
            let seeded = http
                .put(target.faults_seed_url())
                .json(&serde_json::json!({"seed": plan.run.seed}))
                .send()
                .await;
            if !seeded.is_ok_and(|r| r.status().is_success()) {
                warnings.push(
                    "could not seed the fakes' fault decisions; faults are not reproducible"
                        .to_owned(),
                );
            }
            tracker.spawn(faults::run_timeline(
                plan.faults.clone(),
                http.clone(),
                target.faults_url(),
                Arc::clone(&fault_state),
                start,
                stop.clone(),
                recorder.clone(),
            ));
        }

        let chaos_control = target.stack_control();
        if !plan.chaos.is_empty() {
            let Some(control) = chaos_control.clone() else {
                // The tasks started so far end with the run that never starts.
                stop.cancel();
                return Err(EngineError::Config(format!(
                    "{}: [[chaos]] needs the embedded target run by this process with matchmaker replicas (not --workers N > 1, --shard, --replicas 0 or URLs)",
                    plan.file
                )));
            };
            tracker.spawn(chaos::run_timeline(
                plan.chaos.clone(),
                control,
                Arc::clone(&fault_state),
                snapshots,
                start,
                stop.clone(),
            ));
        }
        Ok(SideTasks {
            stop,
            tracker,
            latest_claims,
            fault_state,
            chaos_control,
        })
    }

    /// Stops every side task and waits for them.
    pub(super) async fn stop(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
