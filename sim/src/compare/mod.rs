//! `sim compare BASE.json NEW.json`: two reports side by side — pairing latency percentiles,
//! throughput, timeouts, error rates, claim failures, per-endpoint latency and errors — with
//! regression limits (`p99=10%`) that decide the exit code and JUnit cases, for CI jobs that
//! keep a baseline report as an artefact.
//!
//! Pure: two [`RunReport`]s and the limits in, a [`Comparison`] out; [`render`] turns it into
//! text, HTML and JUnit.

pub mod limit;
pub mod render;

use crate::report::RunReport;

pub use limit::{Limit, LimitError, parse_limits};

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// What a figure measures (how it is shown and which limits it takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ms,
    /// A share between 0 and 1.
    Rate,
    PerSecond,
    Count,
}

/// One figure of both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The key limits name it by: `p99`, `timeout_rate`, `matchmaking.p99`.
    pub key: String,
    pub base: Option<f64>,
    pub new: Option<f64>,
    pub unit: Unit,
    pub better: Better,
}

impl Row {
    /// New relative to base, percent (`None` when either is missing or base is zero).
    pub fn change_percent(&self) -> Option<f64> {
        match (self.base, self.new) {
            (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b * 100.0),
            _ => None,
        }
    }
}

/// One limit checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub key: String,
    /// `p99 may rise by 10%`.
    pub condition: String,
    pub passed: bool,
    /// Base, new and the change, in one line.
    pub message: String,
}

/// Both runs' figures and the limits' verdicts.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub base_name: String,
    pub new_name: String,
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The figures compared, by key, of one report.
pub fn figures(r: &RunReport) -> Vec<(String, Option<f64>, Unit, Better)> {
    let p = &r.pairing;
    let lat = |v: f64| (p.count > 0).then_some(v);
    let o = &r.outcomes;
    let finished = o.finished();
    let seconds = r.scenario.duration_ms as f64 / 1000.0;
    let mut out = vec![
        ("p50".to_owned(), lat(p.p50_ms), Unit::Ms, Better::Lower),
        ("p90".to_owned(), lat(p.p90_ms), Unit::Ms, Better::Lower),
        ("p95".to_owned(), lat(p.p95_ms), Unit::Ms, Better::Lower),
        ("p99".to_owned(), lat(p.p99_ms), Unit::Ms, Better::Lower),
        ("max".to_owned(), lat(p.max_ms), Unit::Ms, Better::Lower),
        (
            "throughput".to_owned(),
            (seconds > 0.0).then(|| o.matched as f64 / seconds),
            Unit::PerSecond,
            Better::Higher,
        ),
        (
            "players".to_owned(),
            Some(r.players as f64),
            Unit::Count,
            Better::Higher,
        ),
        (
            "matched".to_owned(),
            Some(o.matched as f64),
            Unit::Count,
            Better::Higher,
        ),
        (
            "timeout_rate".to_owned(),
            rate(o.timed_out, finished),
            Unit::Rate,
            Better::Lower,
        ),
        (
            "error_rate".to_owned(),
            rate(o.error, finished),
            Unit::Rate,
            Better::Lower,
        ),
        (
            "failed_rate".to_owned(),
            rate(o.failed, finished),
            Unit::Rate,
            Better::Lower,
        ),
        (
            "claim_failure_rate".to_owned(),
            r.claims.and_then(|c| rate(c.failed(), c.attempted)),
            Unit::Rate,
            Better::Lower,
        ),
    ];
    for (name, e) in &r.endpoints {
        let l = &e.latency;
        out.push((
            format!("{name}.p99"),
            (l.count > 0).then_some(l.p99_ms),
            Unit::Ms,
            Better::Lower,
        ));
        out.push((
            format!("{name}.error_rate"),
            rate(e.errors, e.calls),
            Unit::Rate,
            Better::Lower,
        ));
    }
    out
}

/// Compares `new` with `base` under `limits`.
pub fn compare(base: &RunReport, new: &RunReport, limits: &[Limit]) -> Comparison {
    let b = figures(base);
    let n = figures(new);
    let mut rows: Vec<Row> = Vec::new();
    for (key, value, unit, better) in &b {
        let new_value = n.iter().find(|f| &f.0 == key).and_then(|f| f.1);
        rows.push(Row {
            key: key.clone(),
            base: *value,
            new: new_value,
            unit: *unit,
            better: *better,
        });
    }
    for (key, value, unit, better) in &n {
        if !rows.iter().any(|r| &r.key == key) {
            rows.push(Row {
                key: key.clone(),
                base: None,
                new: *value,
                unit: *unit,
                better: *better,
            });
        }
    }
    let checks = limits
        .iter()
        .map(|l| match rows.iter().find(|r| r.key == l.key) {
            Some(row) => l.check(row),
            None => Check {
                key: l.key.clone(),
                condition: l.describe(),
                passed: false,
                message: format!("{} is in neither report", l.key),
            },
        })
        .collect();
    Comparison {
        base_name: base.scenario.name.clone(),
        new_name: new.scenario.name.clone(),
        rows,
        checks,
    }
}

#[cfg(test)]
mod tests;
