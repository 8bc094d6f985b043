//! One step of a capacity search: the scenario rewritten to hold one load for one period, and
//! what its report says about that load.
//!
//! The load is the open model's arrival rate (parties per second, a constant profile keeping
//! the scenario's Poisson or even gaps) or the closed model's population. Everything else —
//! target, behaviour, faults, thresholds — is the scenario's, except `min_matched`, a count for
//! the scenario's own length and load, which is scaled to the step's expected arrivals.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metrics::Percentiles;
use crate::report::RunReport;
use crate::scenario::{ArrivalPlan, Plan, RateProfile};
use crate::verdict::{Limit, Side, Status};

use super::search::StepOutcome;

/// What a capacity search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// Open model: parties arriving per second.
    ArrivalRate,
    /// Closed model: concurrent players.
    Players,
}

impl LoadKind {
    pub fn of(plan: &Plan) -> LoadKind {
        match plan.population.arrival {
            ArrivalPlan::Open { .. } => LoadKind::ArrivalRate,
            ArrivalPlan::Closed { .. } => LoadKind::Players,
        }
    }

    /// The scenario's own load: its peak rate, or its population.
    pub fn scenario_load(plan: &Plan) -> f64 {
        match &plan.population.arrival {
            ArrivalPlan::Open { profile, .. } => profile.peak(),
            ArrivalPlan::Closed { players, .. } => f64::from(*players),
        }
    }

    /// `120/s` or `300 players`.
    pub fn format(self, load: f64) -> String {
        match self {
            LoadKind::ArrivalRate => format!("{}/s", trim_number(load)),
            LoadKind::Players => format!("{load:.0} players"),
        }
    }
}

/// `12.5`, `40`: a load without trailing zeros.
pub fn trim_number(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// `base` holding `load` for `duration`.
pub fn step_plan(base: &Plan, load: f64, duration: Duration) -> Plan {
    let mut plan = base.clone();
    let before = base.expected_arrivals();
    plan.run.duration = duration;
    match &mut plan.population.arrival {
        ArrivalPlan::Open { profile, .. } => *profile = RateProfile::constant(load),
        ArrivalPlan::Closed {
            players, ramp_up, ..
        } => {
            // Whole numbers of players; a ramp longer than a third of the step would leave
            // most of it below the load being measured.
            *players = load.round().max(1.0) as u32;
            *ramp_up = (*ramp_up).min(duration / 3);
        }
    }
    if let Some(min) = plan.thresholds.min_matched {
        let after = match base.population.arrival {
            // A closed population searches again and again: scale by players and time.
            ArrivalPlan::Closed { .. } => {
                f64::from(match plan.population.arrival {
                    ArrivalPlan::Closed { players, .. } => players,
                    ArrivalPlan::Open { .. } => 0,
                }) * duration.as_secs_f64()
                    / base.run.duration.as_secs_f64().max(0.001)
            }
            ArrivalPlan::Open { .. } => plan.expected_arrivals(),
        };
        let scale = if before > 0.0 { after / before } else { 1.0 };
        plan.thresholds.min_matched = Some((min as f64 * scale).floor() as u64);
    }
    plan
}

/// One step's figures, for the curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub load: f64,
    /// The longer confirmation hold.
    pub hold: bool,
    pub duration_ms: u64,
    /// Wall time of the whole step (setup, arrivals, drain).
    pub wall_ms: u64,
    /// Thresholds and invariants held.
    pub passed: bool,
    /// Ended early by the time limit or an interrupt: not judged.
    #[serde(default)]
    pub cut_short: bool,
    pub arrivals: u64,
    /// Searches started per second of the step.
    pub achieved_rate: f64,
    pub matched: u64,
    pub timed_out: u64,
    pub errors: u64,
    pub failed: u64,
    /// (timed out + errors + failed) / finished.
    pub error_rate: f64,
    pub pairing: Percentiles,
    /// `name: message` of every failed threshold; `invariants: N violations` too.
    pub failures: Vec<String>,
    pub verdict: Status,
    pub verdict_headline: String,
    /// The harness processes (generator, embedded stack) that hit a limit.
    pub saturated: Vec<String>,
    /// Every harness limit hit was CPU: no late starts (the offered load was met) and no
    /// open-files or memory limit (no local failures). The harness's own queueing can then
    /// only have added latency, so a step that passed still counts as a pass — a lower bound
    /// on what the system under test serves. With the default embedded target (players and
    /// stack in one process) that is the usual case near the machine's capacity.
    #[serde(default)]
    pub harness_cpu_only: bool,
    /// The machine as a whole was busy (other work may have caused it).
    pub machine_busy: bool,
}

impl StepResult {
    pub fn from_report(load: f64, hold: bool, report: &RunReport, wall: Duration) -> StepResult {
        let o = &report.outcomes;
        let finished = o.finished();
        let bad = o.timed_out + o.error + o.failed;
        let mut failures: Vec<String> = report
            .failed_thresholds()
            .map(|t| format!("{}: {}", t.name, t.message))
            .collect();
        if !report.invariants.passed() {
            failures.push(format!(
                "invariants: {} violations",
                report.invariants.violations.len()
            ));
        }
        let mut saturated = Vec::new();
        let mut harness_cpu_only = true;
        let mut machine_busy = false;
        for f in &report.verdict.findings {
            match f.side {
                Side::Generator | Side::Stack => {
                    harness_cpu_only &= f.limit == Limit::Cpu;
                    let who = format!("{} ({:?})", f.who, f.limit).to_lowercase();
                    if !saturated.contains(&who) {
                        saturated.push(who);
                    }
                }
                Side::Machine => machine_busy = true,
                Side::Sut => {}
            }
        }
        let secs = report.scenario.duration_ms as f64 / 1000.0;
        StepResult {
            load,
            hold,
            duration_ms: report.scenario.duration_ms,
            wall_ms: wall.as_millis() as u64,
            passed: report.passed,
            cut_short: false,
            arrivals: report.arrivals,
            achieved_rate: if secs > 0.0 {
                report.arrivals as f64 / secs
            } else {
                0.0
            },
            matched: o.matched,
            timed_out: o.timed_out,
            errors: o.error,
            failed: o.failed,
            error_rate: if finished > 0 {
                bad as f64 / finished as f64
            } else {
                0.0
            },
            pairing: report.pairing,
            failures,
            verdict: report.verdict.status,
            verdict_headline: report.verdict.headline.clone(),
            harness_cpu_only: harness_cpu_only && !saturated.is_empty(),
            saturated,
            machine_busy,
        }
    }

    /// What the search makes of it: pass or fail when the harness kept up; when it hit a
    /// limit, the figures measure the harness as much as the system under test — except a pass
    /// with only CPU busy ([`harness_cpu_only`](Self::harness_cpu_only)), which the harness can
    /// only have made look worse.
    pub fn outcome(&self) -> StepOutcome {
        let cpu_bound_pass = self.passed && self.harness_cpu_only;
        if !self.saturated.is_empty() && !cpu_bound_pass {
            StepOutcome::HarnessSaturated
        } else if self.passed {
            StepOutcome::Pass
        } else {
            StepOutcome::Fail
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn an_open_step_holds_a_constant_rate_and_scales_min_matched() {
        let text = r#"
version = 1
name = "t"
[run]
duration = "100s"
[population]
arrival = { kind = "poisson", rate = 10 }
[thresholds]
min_matched = 900
pairing_p99 = "2s"
"#;
        let base = Plan::parse(text, "t.toml", Path::new(".")).expect("plan");
        let step = step_plan(&base, 40.0, Duration::from_secs(5));
        assert_eq!(step.run.duration, Duration::from_secs(5));
        match &step.population.arrival {
            ArrivalPlan::Open { profile, poisson } => {
                assert!(*poisson);
                assert_eq!(profile.peak(), 40.0);
            }
            other => panic!("{other:?}"),
        }
        // 900 of 1000 expected → 180 of 200.
        assert_eq!(step.thresholds.min_matched, Some(180));
        assert_eq!(step.thresholds.pairing_p99, Some(Duration::from_secs(2)));
        assert_eq!(LoadKind::of(&base), LoadKind::ArrivalRate);
        assert_eq!(LoadKind::scenario_load(&base), 10.0);
    }

    #[test]
    fn a_closed_step_sets_the_population_and_shortens_a_long_ramp() {
        let text = r#"
version = 1
name = "t"
[run]
duration = "60s"
[population]
arrival = { kind = "closed", players = 100, ramp_up = "30s" }
[thresholds]
min_matched = 600
"#;
        let base = Plan::parse(text, "t.toml", Path::new(".")).expect("plan");
        let step = step_plan(&base, 250.0, Duration::from_secs(12));
        match step.population.arrival {
            ArrivalPlan::Closed {
                players, ramp_up, ..
            } => {
                assert_eq!(players, 250);
                assert_eq!(ramp_up, Duration::from_secs(4));
            }
            ArrivalPlan::Open { .. } => panic!("closed"),
        }
        // 600 per 100 players per 60 s → 250 players for 12 s: 300.
        assert_eq!(step.thresholds.min_matched, Some(300));
        assert_eq!(LoadKind::of(&base), LoadKind::Players);
    }

    fn finding(side: Side, limit: Limit) -> crate::verdict::Finding {
        crate::verdict::Finding {
            side,
            limit,
            who: "single (pid 7)".into(),
            message: String::new(),
        }
    }

    /// A step of a known report whose verdict found `findings`, passed or not.
    fn judged(passed: bool, findings: Vec<crate::verdict::Finding>) -> StepResult {
        let mut report = crate::report::tests_support::report(100, 10);
        report.passed = passed;
        report.verdict.findings = findings;
        StepResult::from_report(20.0, false, &report, Duration::from_secs(7))
    }

    #[test]
    fn a_pass_with_only_the_harness_cpu_busy_counts_as_a_pass() {
        let cpu = judged(true, vec![finding(Side::Stack, Limit::Cpu)]);
        assert!(cpu.harness_cpu_only);
        assert_eq!(cpu.saturated, ["single (pid 7) (cpu)"]);
        assert_eq!(cpu.outcome(), StepOutcome::Pass);
        // The machine busy as well changes nothing: it is not a harness limit.
        let busy = judged(
            true,
            vec![
                finding(Side::Generator, Limit::Cpu),
                finding(Side::Machine, Limit::Cpu),
            ],
        );
        assert!(busy.machine_busy);
        assert_eq!(busy.outcome(), StepOutcome::Pass);
    }

    #[test]
    fn late_starts_local_limits_or_a_failure_under_saturation_measure_the_harness() {
        for limit in [Limit::StartLag, Limit::OpenFiles, Limit::Memory] {
            let step = judged(
                true,
                vec![
                    finding(Side::Stack, Limit::Cpu),
                    finding(Side::Generator, limit),
                ],
            );
            assert!(!step.harness_cpu_only, "{limit:?}");
            assert_eq!(step.outcome(), StepOutcome::HarnessSaturated, "{limit:?}");
        }
        let failed = judged(false, vec![finding(Side::Stack, Limit::Cpu)]);
        assert_eq!(failed.outcome(), StepOutcome::HarnessSaturated);
        // Without any harness finding the thresholds decide, and nothing is "CPU only".
        let refused = judged(false, vec![finding(Side::Sut, Limit::Refusal)]);
        assert!(!refused.harness_cpu_only);
        assert_eq!(refused.outcome(), StepOutcome::Fail);
    }
}
