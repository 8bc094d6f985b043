//! `sim capacity`: the highest load a scenario's system still serves within its thresholds —
//! the knee — and the curve of latency and errors against load that shows it.
//!
//! The search ([`search`]) steps the load up by a factor, bisects between the highest pass and
//! the lowest failure, and holds the best pass for a longer confirmation period; it stops at
//! once when a process of the harness (the load generator or the embedded stack) saturates,
//! since higher loads would measure the harness, not the system under test ([`crate::verdict`]
//! tells the two apart; a step that shows saturation is run once more, and only a second
//! saturation in a row counts, so a burst of other work on a shared machine does not end the
//! search). A step that passed with only CPU busy in the harness — on time, no descriptor or
//! memory limit — still counts as a pass ([`StepResult::outcome`]): the harness's queueing can
//! only have added latency, and with everything in one process that is how the machine's own
//! capacity shows. Each step ([`step`]) is the scenario at one constant load, run by the
//! caller's step runner (in `sim`, an [`crate::engine::Engine`] in this process with a fresh
//! embedded target each step). The whole search is bounded by a time limit: a step that would
//! not finish in time is not started, one running at the limit is cut short and not judged.
//! [`report`] renders the result as JSON, a text summary and an HTML page.

pub mod report;
pub mod search;
pub mod step;

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::engine::EngineError;
use crate::report::RunReport;
use crate::scenario::Plan;

pub use report::CapacityReport;
pub use search::{Next, Search, SearchConfig, StepOutcome, StopReason};
pub use step::{LoadKind, StepResult, step_plan};

/// How a capacity search runs.
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    /// Each step's arrivals (open model) or search period (closed model).
    pub step: Duration,
    /// The confirmation hold of the knee.
    pub hold: Duration,
    /// The whole search, set-up and drains included.
    pub time_limit: Duration,
    /// The first load (default: the scenario's own).
    pub start: Option<f64>,
    pub factor: f64,
    pub precision: f64,
    pub max_load: Option<f64>,
}

impl Default for CapacityOptions {
    fn default() -> Self {
        CapacityOptions {
            step: Duration::from_secs(30),
            hold: Duration::from_secs(60),
            time_limit: Duration::from_secs(600),
            start: None,
            factor: 2.0,
            precision: 0.1,
            max_load: None,
        }
    }
}

/// The search's configuration for `plan`.
pub fn search_config(plan: &Plan, options: &CapacityOptions) -> SearchConfig {
    let kind = LoadKind::of(plan);
    let integer = kind == LoadKind::Players;
    SearchConfig {
        start: options
            .start
            .unwrap_or_else(|| LoadKind::scenario_load(plan))
            .max(if integer { 2.0 } else { 0.1 }),
        factor: options.factor,
        precision: options.precision,
        integer,
        min_load: if integer { 2.0 } else { 0.1 },
        max_load: options.max_load,
    }
}

/// Runs the search: `run_step(plan, stop)` runs one step's plan (draining when `stop` is
/// cancelled); `on_step` sees every step as it ends. `shutdown` interrupts the search.
pub async fn run<F, Fut>(
    base: &Plan,
    options: &CapacityOptions,
    shutdown: CancellationToken,
    mut run_step: F,
    mut on_step: impl FnMut(&StepResult),
) -> Result<CapacityReport, EngineError>
where
    F: FnMut(Plan, CancellationToken) -> Fut,
    Fut: Future<Output = Result<RunReport, EngineError>>,
{
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + options.time_limit;
    let kind = LoadKind::of(base);
    let mut search = Search::new(search_config(base, options));
    let mut steps: Vec<StepResult> = Vec::new();
    // What a step costs beyond its own duration (set-up, drain), learned as steps run; a
    // first guess before any has.
    let mut overhead = base.run.drain.min(Duration::from_secs(20)) + Duration::from_secs(3);
    // The load whose harness saturation is being checked a second time.
    let mut rechecking: Option<(f64, bool)> = None;
    loop {
        let (load, hold) = match search.next() {
            Next::Try { load, hold } => (load, hold),
            Next::Done(reason) => {
                search.stop(reason);
                break;
            }
        };
        if shutdown.is_cancelled() {
            search.stop(StopReason::Interrupted);
            break;
        }
        let period = if hold { options.hold } else { options.step };
        if started.elapsed() + period + overhead > options.time_limit {
            search.stop(StopReason::TimeLimit);
            break;
        }
        let stop = shutdown.child_token();
        let timer = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline).await;
                stop.cancel();
            })
        };
        let step_started = Instant::now();
        let result = run_step(step_plan(base, load, period), stop.clone()).await;
        timer.abort();
        let report = result?;
        let wall = step_started.elapsed();
        overhead = overhead.max(wall.saturating_sub(period));
        let mut step = StepResult::from_report(load, hold, &report, wall);
        if stop.is_cancelled() {
            step.cut_short = true;
            on_step(&step);
            steps.push(step);
            search.stop(if shutdown.is_cancelled() {
                StopReason::Interrupted
            } else {
                StopReason::TimeLimit
            });
            break;
        }
        on_step(&step);
        let outcome = step.outcome();
        steps.push(step);
        // On a shared machine a burst of other work can make one step look saturated: a
        // saturation ends the search only when the same step shows it twice in a row.
        if outcome == StepOutcome::HarnessSaturated && rechecking != Some((load, hold)) {
            rechecking = Some((load, hold));
            continue;
        }
        rechecking = None;
        search.record(load, hold, outcome);
    }
    Ok(CapacityReport::new(
        base,
        kind,
        options,
        &search,
        steps,
        started.elapsed(),
    ))
}
