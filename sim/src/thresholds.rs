//! Thresholds: a scenario's pass/fail limits checked against measured results, live (for the
//! dashboard) and at the end of a run (for the exit code, the report and JUnit).
//!
//! Owns the rules — which ratio each rate is, what "no data" means, the defaults — and nothing
//! else: it reads a [`ResultView`] and knows no engine, no I/O and no output format.
//!
//! **Defaults.** A scenario that sets no limit on errors, failed matches or timeouts still gets
//! one ([`DEFAULT_ERROR_RATE`], [`DEFAULT_FAILURE_RATE`], [`DEFAULT_TIMEOUT_RATE`]), so a run
//! whose players all failed can never pass for want of thresholds. A limit the scenario sets
//! replaces its default; results from a default say so (`default: true`, "(default)" in the
//! summary).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::metrics::ClaimCounts;
use crate::scenario::{Thresholds, format_duration};

/// `error_rate` when the scenario sets none: more than 1% of players ending in an error fails.
pub const DEFAULT_ERROR_RATE: f64 = 0.01;
/// `failure_rate` when the scenario sets none: more than 1% of players whose match failed for
/// good (no server, claims failing) fails.
pub const DEFAULT_FAILURE_RATE: f64 = 0.01;
/// `timeout_rate` when the scenario sets none: more than 5% of players timing out fails (some
/// timeouts are normal at the end of a run, when the last players have nobody left to meet).
pub const DEFAULT_TIMEOUT_RATE: f64 = 0.05;

/// What thresholds are checked against.
#[derive(Debug, Clone, Copy)]
pub struct ResultView<'a> {
    pub pairing: &'a Histogram<u64>,
    pub matched: u64,
    pub timed_out: u64,
    /// Players whose match failed for good.
    pub failed: u64,
    pub errors: u64,
    /// Players with a final outcome.
    pub finished: u64,
    /// `None` when the fakes' stats could not be read.
    pub claims: Option<ClaimCounts>,
}

/// Where a threshold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Live only: not decided yet (`min_matched` before the end, a latency with no data yet).
    Pending,
}

/// One threshold's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The scenario key, e.g. `pairing_p95`.
    pub name: String,
    /// `pairing_p95 <= 2s`: the test name in JUnit.
    pub condition: String,
    /// The measured value, formatted; `None` when there was nothing to measure.
    pub actual: Option<String>,
    pub status: Status,
    /// Why it failed, in one line.
    pub message: String,
    /// The limit is a default the scenario did not set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

impl ThresholdResult {
    pub fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}

/// Checks every threshold the scenario sets. `live` keeps undecidable ones pending instead of
/// failing them.
pub fn evaluate(th: &Thresholds, view: &ResultView<'_>, live: bool) -> Vec<ThresholdResult> {
    let mut out = Vec::new();
    let latency = [
        ("pairing_p50", th.pairing_p50, 0.50),
        ("pairing_p95", th.pairing_p95, 0.95),
        ("pairing_p99", th.pairing_p99, 0.99),
        ("pairing_max", th.pairing_max, 1.0),
    ];
    for (name, limit, q) in latency {
        let Some(limit) = limit else { continue };
        let condition = format!("{name} <= {}", format_duration(limit));
        if view.pairing.is_empty() {
            out.push(ThresholdResult {
                name: name.to_owned(),
                condition,
                actual: None,
                status: if live { Status::Pending } else { Status::Fail },
                message: "no player was matched, so there is no pairing latency to check"
                    .to_owned(),
                default: false,
            });
            continue;
        }
        let us = if q >= 1.0 {
            view.pairing.max()
        } else {
            view.pairing.value_at_quantile(q)
        };
        let actual = Duration::from_micros(us);
        let ok = actual <= limit;
        out.push(ThresholdResult {
            name: name.to_owned(),
            condition,
            actual: Some(format_duration(actual)),
            status: if ok { Status::Pass } else { Status::Fail },
            message: if ok {
                String::new()
            } else {
                format!(
                    "{name} was {}, above the limit of {}",
                    format_duration(actual),
                    format_duration(limit)
                )
            },
            default: false,
        });
    }
    let or_default = |set: Option<f64>, default: f64| match set {
        Some(limit) => Some((limit, false)),
        None => Some((default, true)),
    };
    let rates = [
        (
            "timeout_rate",
            or_default(th.timeout_rate, DEFAULT_TIMEOUT_RATE),
            Some((view.timed_out, view.finished)),
        ),
        (
            "error_rate",
            or_default(th.error_rate, DEFAULT_ERROR_RATE),
            Some((view.errors, view.finished)),
        ),
        (
            "failure_rate",
            or_default(th.failure_rate, DEFAULT_FAILURE_RATE),
            Some((view.failed, view.finished)),
        ),
        (
            "claim_failure_rate",
            th.claim_failure_rate.map(|limit| (limit, false)),
            view.claims.map(|c| (c.failed(), c.attempted)),
        ),
    ];
    for (name, limit, counts) in rates {
        let Some((limit, default)) = limit else {
            continue;
        };
        let condition = format!("{name} <= {}", format_rate(limit));
        let limit_name = if default {
            "the default limit"
        } else {
            "the limit"
        };
        let Some((part, whole)) = counts else {
            out.push(ThresholdResult {
                name: name.to_owned(),
                condition,
                actual: None,
                status: if live { Status::Pending } else { Status::Fail },
                message: "not measured: the fakes' claim counters could not be read".to_owned(),
                default,
            });
            continue;
        };
        let rate = if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        };
        let ok = rate <= limit;
        out.push(ThresholdResult {
            name: name.to_owned(),
            condition,
            actual: Some(format!("{} ({part}/{whole})", format_rate(rate))),
            status: if ok { Status::Pass } else { Status::Fail },
            message: if ok {
                String::new()
            } else {
                format!(
                    "{name} was {} ({part} of {whole}), above {limit_name} of {}",
                    format_rate(rate),
                    format_rate(limit)
                )
            },
            default,
        });
    }
    if let Some(min) = th.min_matched {
        let ok = view.matched >= min;
        out.push(ThresholdResult {
            name: "min_matched".to_owned(),
            condition: format!("matched >= {min}"),
            actual: Some(view.matched.to_string()),
            status: match (ok, live) {
                (true, _) => Status::Pass,
                (false, true) => Status::Pending,
                (false, false) => Status::Fail,
            },
            message: if ok {
                String::new()
            } else {
                format!(
                    "min_matched: {} players matched, fewer than {min}",
                    view.matched
                )
            },
            default: false,
        });
    }
    out
}

/// `0.015` → `1.5%`.
pub fn format_rate(rate: f64) -> String {
    let pct = rate * 100.0;
    let s = format!("{pct:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, record};

    fn view(h: &Histogram<u64>) -> ResultView<'_> {
        ResultView {
            pairing: h,
            matched: 90,
            timed_out: 5,
            failed: 0,
            errors: 5,
            finished: 100,
            claims: Some(ClaimCounts {
                attempted: 50,
                succeeded: 40,
                unreachable: 10,
                ..ClaimCounts::default()
            }),
        }
    }

    #[test]
    fn every_threshold_passes_or_fails_with_a_reason() {
        let mut h = new_histogram();
        for i in 1..=100 {
            record(&mut h, Duration::from_millis(i * 10));
        }
        let th = Thresholds {
            pairing_p50: Some(Duration::from_secs(1)),
            pairing_p99: Some(Duration::from_millis(500)),
            pairing_max: Some(Duration::from_secs(2)),
            timeout_rate: Some(0.01),
            claim_failure_rate: Some(0.25),
            error_rate: Some(0.05),
            min_matched: Some(1000),
            ..Thresholds::default()
        };
        let results = evaluate(&th, &view(&h), false);
        let verdicts: Vec<_> = results
            .iter()
            .map(|r| (r.name.as_str(), r.status))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("pairing_p50", Status::Pass),
                ("pairing_p99", Status::Fail),
                ("pairing_max", Status::Pass),
                ("timeout_rate", Status::Fail),
                ("error_rate", Status::Pass),
                ("failure_rate", Status::Pass),
                ("claim_failure_rate", Status::Pass),
                ("min_matched", Status::Fail),
            ]
        );
        assert!(
            results[5].default,
            "failure_rate was not set: its default applies"
        );
        assert!(!results[4].default);
        assert_eq!(results[1].condition, "pairing_p99 <= 500ms");
        assert!(
            results[1].message.starts_with("pairing_p99 was 99"),
            "{}",
            results[1].message
        );
        assert_eq!(
            results[3].message,
            "timeout_rate was 5% (5 of 100), above the limit of 1%"
        );
        assert_eq!(results[6].actual.as_deref(), Some("20% (10/50)"));
        // Live, an unmet minimum is still pending.
        let live = evaluate(&th, &view(&h), true);
        assert_eq!(live[7].status, Status::Pending);
    }

    #[test]
    fn a_run_without_thresholds_still_fails_when_players_fail() {
        let h = new_histogram();
        // The run that printed PASS: 2000 players, every match failed, no thresholds set.
        let all_failed = ResultView {
            pairing: &h,
            matched: 0,
            timed_out: 0,
            failed: 2000,
            errors: 0,
            finished: 2000,
            claims: None,
        };
        let results = evaluate(&Thresholds::default(), &all_failed, false);
        let failed: Vec<_> = results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| (r.name.as_str(), r.default))
            .collect();
        assert_eq!(failed, [("failure_rate", true)]);
        let failure = results
            .iter()
            .find(|r| r.name == "failure_rate")
            .expect("failure_rate");
        assert_eq!(
            failure.message,
            "failure_rate was 100% (2000 of 2000), above the default limit of 1%"
        );
        // Errors and timeouts have their defaults too.
        let errors = ResultView {
            failed: 0,
            errors: 30,
            timed_out: 200,
            ..all_failed
        };
        let results = evaluate(&Thresholds::default(), &errors, false);
        let failed: Vec<_> = results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(failed, ["timeout_rate", "error_rate"]);
        // A limit the scenario sets replaces the default.
        let lenient = Thresholds {
            failure_rate: Some(1.0),
            ..Thresholds::default()
        };
        let results = evaluate(&lenient, &all_failed, false);
        assert!(results.iter().all(ThresholdResult::passed), "{results:?}");
        assert!(
            results
                .iter()
                .any(|r| r.name == "failure_rate" && !r.default)
        );
    }

    #[test]
    fn missing_data_fails_at_the_end_and_waits_live() {
        let h = new_histogram();
        let th = Thresholds {
            pairing_p95: Some(Duration::from_secs(1)),
            claim_failure_rate: Some(0.1),
            ..Thresholds::default()
        };
        let mut v = view(&h);
        v.claims = None;
        let end = evaluate(&th, &v, false);
        let set: Vec<_> = end.iter().filter(|r| !r.default).collect();
        assert!(set.iter().all(|r| r.status == Status::Fail), "{end:?}");
        assert!(set[1].message.contains("not measured"));
        let live = evaluate(&th, &v, true);
        assert!(
            live.iter()
                .filter(|r| !r.default)
                .all(|r| r.status == Status::Pending)
        );
    }
}
