//! Results of a run, in every form: the [`RunReport`] (all results, serialized as JSON with exact
//! mergeable histograms), the terminal summary table ([`summary`]), JUnit XML ([`junit`]) and a
//! self-contained HTML page with interactive charts ([`html`]).
//!
//! Owns the report format (`format = 1`) and [`RunReport::merge`], which combines the reports of
//! several processes or machines exactly (histograms are added bucket for bucket, then
//! thresholds are checked again on the merged data). Must not know how the numbers were
//! measured or how a run is driven.

pub mod html;
pub mod junit;
pub mod summary;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::invariants::InvariantReport;
use crate::metrics::snapshot::ErrorCount;
use crate::metrics::{
    self, ClaimCounts, Collector, Counters, MetricsError, Percentiles, SecondPoint,
};
use crate::outcome::{Endpoint, Outcome};
pub use crate::process::ProcessReport;
use crate::sampler::MachineReport;
use crate::scenario::{ArrivalPlan, Plan, TargetPlan, Thresholds, format_duration};
use crate::sut::SutCounters;
use crate::thresholds::{self, ResultView, ThresholdResult};
use crate::verdict::Verdict;

/// The report format this build writes and reads.
pub const REPORT_FORMAT: u32 = 1;

/// Why a report could not be written, read or merged.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a sim report: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: report format {found} is not {REPORT_FORMAT}")]
    Format { path: String, found: u32 },
    #[error("cannot merge: {0}")]
    Merge(String),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Which scenario ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    #[serde(default)]
    pub description: Option<String>,
    pub seed: u64,
    pub duration_ms: u64,
    /// `embedded` or `urls`.
    pub target: String,
    /// A one-line description of the arrival model.
    pub arrival: String,
    /// The match function that made a match2 run's matches (`None`: not a match2 scenario).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_function: Option<String>,
    /// The scenario file's text as it was run (absent in reports of older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Command-line overrides of the file, as flags (`--seed 7`, `--duration 30s`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// Versions of what produced the report (`sim`, the report format).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, String>,
}

/// The versions a report of this build records.
pub fn versions() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("sim".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        ("report_format".to_owned(), REPORT_FORMAT.to_string()),
    ])
}

/// Final outcome counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub matched: u64,
    pub timed_out: u64,
    pub cancelled: u64,
    pub failed: u64,
    pub error: u64,
    /// Failed because no server could be claimed (part of `failed`).
    pub failed_claim: u64,
}

impl OutcomeCounts {
    pub fn finished(&self) -> u64 {
        self.matched + self.timed_out + self.cancelled + self.failed + self.error
    }

    fn add(&mut self, o: &OutcomeCounts) {
        self.matched += o.matched;
        self.timed_out += o.timed_out;
        self.cancelled += o.cancelled;
        self.failed += o.failed;
        self.error += o.error;
        self.failed_claim += o.failed_claim;
    }
}

/// One endpoint's calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointReport {
    pub calls: u64,
    pub errors: u64,
    pub latency: Percentiles,
    /// Exact histogram (microseconds), base64 V2 + DEFLATE.
    pub histogram: String,
}

/// Whether the load generator kept up with its schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    /// Some player started more than 50 ms after its scheduled time.
    pub warned: bool,
    pub lagged_starts: u64,
    pub max_lag_ms: f64,
}

/// One fault of the timeline, as it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub label: String,
    /// The id the fakes know it by.
    pub id: String,
    /// Since arrivals started.
    pub at_ms: u64,
    /// When it was removed; `None` while it lasted to the end.
    pub until_ms: Option<u64>,
    pub applied: bool,
    #[serde(default)]
    pub error: Option<String>,
    /// A chaos step's recovery: how long after the harm ended the next match completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_ms: Option<u64>,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub format: u32,
    pub scenario: ScenarioInfo,
    /// How many reports were merged into this one (1 for a single process).
    pub shards: u32,
    /// Wall time from the first arrival to the end of the drain (the longest shard's).
    pub elapsed_ms: u64,
    pub passed: bool,
    /// Parties that started a search.
    pub arrivals: u64,
    /// Players in them.
    pub players: u64,
    pub outcomes: OutcomeCounts,
    pub counters: Counters,
    pub saturation: Saturation,
    /// Scheduled arrival → `found`, over matched players.
    pub pairing: Percentiles,
    /// Exact pairing histogram (microseconds), base64 V2 + DEFLATE.
    pub pairing_histogram: String,
    pub endpoints: BTreeMap<String, EndpointReport>,
    pub errors: Vec<ErrorCount>,
    /// DSMC claims during the run, from the fakes' counters (`None`: unreadable).
    pub claims: Option<ClaimCounts>,
    pub series: Vec<SecondPoint>,
    pub faults: Vec<FaultEvent>,
    pub thresholds: Vec<ThresholdResult>,
    /// The limits, so a merge can check them again.
    pub threshold_limits: Thresholds,
    pub invariants: InvariantReport,
    pub warnings: Vec<String>,
    /// Matchmaking requests moved on to the next matchmaker URL, by the URL that could not be
    /// reached (empty with one URL or when every replica answered).
    #[serde(default)]
    pub failovers: BTreeMap<String, u64>,
    /// Every process of the run (one, or a parent and its workers) with what it cost and how
    /// close it came to its limits.
    #[serde(default)]
    pub processes: Vec<ProcessReport>,
    /// The machine during the run (busy cores, available memory), as the first process saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineReport>,
    /// The servers' own refusal counters over the run (`None`: not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sut: Option<SutCounters>,
    /// Who refused or saturated, and whether the figures can be trusted ([`crate::verdict`]).
    #[serde(default)]
    pub verdict: Verdict,
    /// Players whose match failed for good, by the failure class the matchmaker's error code
    /// named (`no_capacity`, `claim_unreachable`, …; `unclassified` without a known code).
    #[serde(default)]
    pub failure_reasons: BTreeMap<String, u64>,
}

/// Names the match function of a match2 run in one line.
/// `tokens_checked`: whether the function checks its callers' tokens (`grpc_auth`).
pub fn describe_match_function(
    function: crate::scenario::Match2Function,
    tokens_checked: bool,
) -> String {
    match function {
        crate::scenario::Match2Function::Default => "default (fakes' built-in matcher)".to_owned(),
        crate::scenario::Match2Function::Matchmaker => format!(
            "{} (the matchmaker's Extend match function over gRPC, callers' tokens {})",
            crate::scenario::MATCHMAKER_FUNCTION,
            if tokens_checked {
                "checked"
            } else {
                "not checked"
            }
        ),
    }
}

/// Describes an arrival model in one line.
pub fn describe_arrival(plan: &Plan) -> String {
    match &plan.population.arrival {
        ArrivalPlan::Open { profile, poisson } => {
            let shape = if profile.segments.len() == 1 {
                format!("{} arrivals/s", profile.segments[0].to)
            } else {
                format!(
                    "{} stages up to {} arrivals/s",
                    profile.segments.len(),
                    profile.peak()
                )
            };
            let gaps = if *poisson { "poisson" } else { "even" };
            format!("open, {shape}, {gaps} gaps")
        }
        ArrivalPlan::Closed {
            players,
            ramp_up,
            think,
        } => format!(
            "closed, {players} players, ramp-up {}, think {}",
            format_duration(*ramp_up),
            format_duration(*think)
        ),
    }
}

impl RunReport {
    /// Builds the report of a finished run.
    pub fn build(
        plan: &Plan,
        collector: &Collector,
        invariants: InvariantReport,
        faults: Vec<FaultEvent>,
        elapsed_ms: u64,
        warnings: Vec<String>,
    ) -> RunReport {
        let t = collector.totals_now();
        let outcomes = OutcomeCounts {
            matched: t.outcome(Outcome::Matched),
            timed_out: t.outcome(Outcome::TimedOut),
            cancelled: t.outcome(Outcome::Cancelled),
            failed: t.outcome(Outcome::Failed),
            error: t.outcome(Outcome::Error),
            failed_claim: t.fail_claim(),
        };
        let failure_reasons = t
            .counts
            .fails
            .iter()
            .map(|(reason, n)| (reason.class().to_owned(), *n))
            .collect();
        let mut endpoints = BTreeMap::new();
        for endpoint in Endpoint::ALL {
            let calls = t.counts.calls[endpoint.index()];
            let errors: u64 = t
                .counts
                .errors
                .iter()
                .filter(|((e, _), _)| *e == endpoint)
                .map(|(_, n)| n)
                .sum();
            if calls == 0 && errors == 0 {
                continue;
            }
            let h = &t.endpoints[endpoint.index()];
            endpoints.insert(
                endpoint.to_string(),
                EndpointReport {
                    calls,
                    errors,
                    latency: Percentiles::of(h),
                    histogram: metrics::encode(h),
                },
            );
        }
        let errors = t
            .counts
            .errors
            .iter()
            .map(|((endpoint, kind), count)| ErrorCount {
                endpoint: endpoint.to_string(),
                kind: kind.to_string(),
                count: *count,
            })
            .collect();
        let mut report = RunReport {
            format: REPORT_FORMAT,
            scenario: ScenarioInfo {
                name: plan.name.clone(),
                file: plan.file.clone(),
                description: plan.description.clone(),
                seed: plan.run.seed,
                duration_ms: u64::try_from(plan.run.duration.as_millis()).unwrap_or(u64::MAX),
                target: match plan.target {
                    TargetPlan::Embedded(_) => "embedded".to_owned(),
                    TargetPlan::Urls(_) => "urls".to_owned(),
                },
                arrival: describe_arrival(plan),
                match_function: plan.match2.as_ref().map(|m| {
                    let checked = match &plan.target {
                        TargetPlan::Embedded(e) => e
                            .matchmaker
                            .get("grpc_auth")
                            .and_then(toml::Value::as_bool)
                            .unwrap_or(true),
                        TargetPlan::Urls(_) => false,
                    };
                    describe_match_function(m.match_function, checked)
                }),
                text: None,
                overrides: Vec::new(),
                versions: versions(),
            },
            shards: 1,
            elapsed_ms,
            passed: false,
            arrivals: t.counts.arrivals,
            players: t.counts.players,
            outcomes,
            counters: t.counts.counters,
            saturation: Saturation {
                warned: t.counts.counters.lagged_starts > 0,
                lagged_starts: t.counts.counters.lagged_starts,
                max_lag_ms: t.counts.max_lag_us as f64 / 1000.0,
            },
            pairing: Percentiles::of(&t.pairing),
            pairing_histogram: metrics::encode(&t.pairing),
            endpoints,
            errors,
            claims: collector.claims,
            series: collector.series.clone(),
            faults,
            thresholds: Vec::new(),
            threshold_limits: plan.thresholds.clone(),
            invariants,
            warnings,
            failovers: t.counts.failovers.clone(),
            processes: Vec::new(),
            machine: None,
            sut: None,
            verdict: Verdict::default(),
            failure_reasons,
        };
        report.check_thresholds(&t.pairing);
        report.judge();
        report
    }

    /// Checks the limits against this report's numbers and sets `passed`.
    fn check_thresholds(&mut self, pairing: &hdrhistogram::Histogram<u64>) {
        let view = ResultView {
            pairing,
            matched: self.outcomes.matched,
            timed_out: self.outcomes.timed_out,
            failed: self.outcomes.failed,
            errors: self.outcomes.error,
            finished: self.outcomes.finished(),
            claims: self.claims,
        };
        self.thresholds = thresholds::evaluate(&self.threshold_limits, &view, false);
        self.passed =
            self.thresholds.iter().all(ThresholdResult::passed) && self.invariants.passed();
    }

    /// Replaces the invariant check (a parent's check over every worker's outcomes) and
    /// decides `passed` again.
    pub fn set_invariants(&mut self, invariants: InvariantReport) -> Result<(), ReportError> {
        self.invariants = invariants;
        let pairing = metrics::decode(&self.pairing_histogram)?;
        self.check_thresholds(&pairing);
        Ok(())
    }

    /// Records how the run can be reproduced: the scenario file's text and the command line's
    /// overrides of it.
    pub fn set_provenance(&mut self, text: Option<String>, overrides: Vec<String>) {
        self.scenario.text = text;
        self.scenario.overrides = overrides;
    }

    /// Judges saturation and refusals again from what the report holds now (after processes,
    /// machine or server counters were added). Leaves `passed` alone.
    pub fn judge(&mut self) {
        self.verdict = crate::verdict::judge(self);
    }

    /// The thresholds that failed.
    pub fn failed_thresholds(&self) -> impl Iterator<Item = &ThresholdResult> {
        self.thresholds.iter().filter(|t| !t.passed())
    }

    /// Writes pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), ReportError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| ReportError::Json {
            path: path.display().to_string(),
            source,
        })?;
        write_file(path, text.as_bytes())
    }

    /// Reads a report written by [`write_json`](Self::write_json).
    pub fn read_json(path: &Path) -> Result<RunReport, ReportError> {
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| ReportError::Io {
            path: name.clone(),
            source,
        })?;
        let report: RunReport =
            serde_json::from_slice(&text).map_err(|source| ReportError::Json {
                path: name.clone(),
                source,
            })?;
        if report.format != REPORT_FORMAT {
            return Err(ReportError::Format {
                path: name,
                found: report.format,
            });
        }
        Ok(report)
    }

    /// Combines the reports of shards of one scenario (several processes or machines).
    /// Counters and histograms add exactly; per-second points add by second; claim counts come
    /// from the fakes' shared counters, so the largest shard view is kept rather than a sum;
    /// thresholds are checked again on the merged numbers.
    pub fn merge(reports: &[RunReport]) -> Result<RunReport, ReportError> {
        let (first, rest) = reports
            .split_first()
            .ok_or_else(|| ReportError::Merge("no report to merge".to_owned()))?;
        let mut out = first.clone();
        let mut pairing = metrics::decode(&first.pairing_histogram)?;
        let mut endpoint_hists: BTreeMap<String, hdrhistogram::Histogram<u64>> = BTreeMap::new();
        for (name, e) in &first.endpoints {
            endpoint_hists.insert(name.clone(), metrics::decode(&e.histogram)?);
        }
        let mut series: BTreeMap<u32, (SecondPoint, hdrhistogram::Histogram<u64>)> =
            BTreeMap::new();
        for p in &first.series {
            series.insert(p.t, (p.clone(), metrics::decode(&p.pairing_hist)?));
        }
        let mut errors: BTreeMap<(String, String), u64> = first
            .errors
            .iter()
            .map(|e| ((e.endpoint.clone(), e.kind.clone()), e.count))
            .collect();
        for r in rest {
            if r.scenario.name != out.scenario.name {
                return Err(ReportError::Merge(format!(
                    "reports are of different scenarios ({} and {})",
                    out.scenario.name, r.scenario.name
                )));
            }
            out.shards += r.shards;
            out.elapsed_ms = out.elapsed_ms.max(r.elapsed_ms);
            out.arrivals += r.arrivals;
            out.players += r.players;
            out.outcomes.add(&r.outcomes);
            for (reason, n) in &r.failure_reasons {
                *out.failure_reasons.entry(reason.clone()).or_default() += n;
            }
            out.counters.add(&r.counters);
            out.saturation.warned |= r.saturation.warned;
            out.saturation.lagged_starts += r.saturation.lagged_starts;
            out.saturation.max_lag_ms = out.saturation.max_lag_ms.max(r.saturation.max_lag_ms);
            metrics::merge_into(&mut pairing, &metrics::decode(&r.pairing_histogram)?);
            for (name, e) in &r.endpoints {
                let h = metrics::decode(&e.histogram)?;
                let slot = endpoint_hists
                    .entry(name.clone())
                    .or_insert_with(metrics::new_histogram);
                metrics::merge_into(slot, &h);
                let entry = out.endpoints.entry(name.clone()).or_insert(EndpointReport {
                    calls: 0,
                    errors: 0,
                    latency: Percentiles::default(),
                    histogram: String::new(),
                });
                entry.calls += e.calls;
                entry.errors += e.errors;
            }
            for e in &r.errors {
                *errors
                    .entry((e.endpoint.clone(), e.kind.clone()))
                    .or_default() += e.count;
            }
            out.claims = match (out.claims, r.claims) {
                (Some(a), Some(b)) => Some(max_claims(&a, &b)),
                (a, b) => a.or(b),
            };
            for p in &r.series {
                let h = metrics::decode(&p.pairing_hist)?;
                match series.get_mut(&p.t) {
                    Some((acc, acc_h)) => {
                        add_point(acc, p);
                        metrics::merge_into(acc_h, &h);
                    }
                    None => {
                        series.insert(p.t, (p.clone(), h));
                    }
                }
            }
            for f in &r.faults {
                if !out
                    .faults
                    .iter()
                    .any(|x| x.id == f.id && x.at_ms == f.at_ms)
                {
                    out.faults.push(f.clone());
                }
            }
            out.invariants.players += r.invariants.players;
            out.invariants.sessions += r.invariants.sessions;
            out.invariants
                .violations
                .extend(r.invariants.violations.iter().cloned());
            for (url, n) in &r.failovers {
                *out.failovers.entry(url.clone()).or_default() += n;
            }
            out.processes.extend(r.processes.iter().cloned());
            if out.machine.is_none() {
                out.machine.clone_from(&r.machine);
            }
            out.sut = match (out.sut, r.sut) {
                (Some(a), Some(b)) => Some(a.max(&b)),
                (a, b) => a.or(b),
            };
            for w in &r.warnings {
                if !out.warnings.contains(w) {
                    out.warnings.push(w.clone());
                }
            }
        }
        for (name, h) in &endpoint_hists {
            if let Some(e) = out.endpoints.get_mut(name) {
                e.latency = Percentiles::of(h);
                e.histogram = metrics::encode(h);
            }
        }
        out.errors = errors
            .into_iter()
            .map(|((endpoint, kind), count)| ErrorCount {
                endpoint,
                kind,
                count,
            })
            .collect();
        out.series = series
            .into_values()
            .map(|(mut p, h)| {
                p.latency = Percentiles::of(&h);
                p.pairing_hist = metrics::encode(&h);
                p
            })
            .collect();
        out.pairing = Percentiles::of(&pairing);
        out.pairing_histogram = metrics::encode(&pairing);
        out.check_thresholds(&pairing);
        out.judge();
        Ok(out)
    }
}

pub(crate) fn max_claims(a: &ClaimCounts, b: &ClaimCounts) -> ClaimCounts {
    ClaimCounts {
        attempted: a.attempted.max(b.attempted),
        succeeded: a.succeeded.max(b.succeeded),
        not_found: a.not_found.max(b.not_found),
        conflict: a.conflict.max(b.conflict),
        not_ready: a.not_ready.max(b.not_ready),
        unreachable: a.unreachable.max(b.unreachable),
    }
}

/// Adds one shard's second into another's. Every shard follows the whole schedule, so the
/// target rate is the same in each and is kept, not summed.
pub(crate) fn add_point(acc: &mut SecondPoint, p: &SecondPoint) {
    acc.arrivals += p.arrivals;
    acc.players += p.players;
    acc.matched += p.matched;
    acc.timed_out += p.timed_out;
    acc.cancelled += p.cancelled;
    acc.failed += p.failed;
    acc.errors += p.errors;
    acc.target_rate = acc.target_rate.max(p.target_rate);
    acc.searching += p.searching;
    acc.open_sockets += p.open_sockets;
    acc.claims = max_claims(&acc.claims, &p.claims);
    acc.max_lag_ms = acc.max_lag_ms.max(p.max_lag_ms);
    acc.lagged_starts += p.lagged_starts;
    for f in &p.active_faults {
        if !acc.active_faults.contains(f) {
            acc.active_faults.push(f.clone());
        }
    }
}

/// Writes `bytes` to `path`, creating parent directories.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, bytes).map_err(io)
}

#[cfg(test)]
mod tests;
/// Known reports for the tests of other modules.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::{report, report_of};
}
