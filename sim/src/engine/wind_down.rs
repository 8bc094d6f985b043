//! After the loop: side tasks stopped, faults and chaos harm undone, the last claim counters
//! read, the invariant check over every recorded outcome, the report (with the servers' own
//! refusal counters since the start), the final snapshot, and the outcomes handed back for a
//! parent that checks invariants over several processes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::side::SideTasks;
use super::{EngineOptions, Outcomes, chaos, faults, publish};
use crate::invariants;
use crate::metrics::{ClaimCounts, Collector, LiveContext, MetricsSnapshot, Phase, Recorder};
use crate::report::RunReport;
use crate::scenario::Plan;
use crate::sut::SutCounters;
use crate::target::Target;

/// What the wind-down works with.
pub(super) struct Finished<'a> {
    pub plan: &'a Arc<Plan>,
    pub options: &'a EngineOptions,
    pub snapshots: &'a watch::Sender<MetricsSnapshot>,
    pub target: &'a Target,
    pub http: &'a reqwest::Client,
    pub recorder: &'a Recorder,
    pub collector: Collector,
    pub side: SideTasks,
    /// The claim counters before the start, when the target has them.
    pub baseline: Option<ClaimCounts>,
    pub sut_before: SutCounters,
    pub warnings: Vec<String>,
    pub elapsed: Duration,
    pub start_unix_us: u64,
}

/// Winds the run down and builds its report.
pub(super) async fn wind_down(finished: Finished<'_>) -> (RunReport, Outcomes) {
    let Finished {
        plan,
        options,
        snapshots,
        target,
        http,
        recorder,
        mut collector,
        side,
        baseline,
        sut_before,
        warnings,
        elapsed,
        start_unix_us,
    } = finished;
    side.stop().await;
    faults::cleanup(http, &target.faults_url(), &side.fault_state, recorder).await;
    if let Some(control) = &side.chaos_control {
        chaos::cleanup(control, &side.fault_state);
    }
    if let Some(base) = baseline {
        if let Some(now) = target.claims_reader().read(http).await {
            collector.set_claims(now.since(&base));
        }
    }
    collector.finish();
    let invariants = invariants::check(&collector.started, &collector.records, &collector.releases);
    let fault_events = side.fault_state.events.lock().clone();
    let mut report = RunReport::build(
        plan,
        &collector,
        invariants,
        fault_events,
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        warnings,
    );
    let sut_after = SutCounters::read_with_token(
        &target.fakes_url,
        &target.matchmaker_urls,
        target.fakes_control_token.as_deref(),
    )
    .await;
    report.sut = Some(sut_after.since(&sut_before));
    let active: Vec<String> = Vec::new();
    publish(
        snapshots,
        options.mergeable_snapshots,
        &collector,
        &LiveContext {
            elapsed,
            phase: Phase::Finished,
            active_faults: &active,
            target_rate: 0.0,
            thresholds: &plan.thresholds,
        },
    );
    let outcomes = Outcomes {
        start_unix_us,
        started: std::mem::take(&mut collector.started),
        records: std::mem::take(&mut collector.records),
        releases: std::mem::take(&mut collector.releases),
    };
    (report, outcomes)
}
