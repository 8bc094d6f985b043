//! Regression limits: `KEY=N%` (the figure may get worse by N percent of the base), or an
//! absolute worsening — a duration for latencies (`p99=200ms`), a number for rates
//! (`timeout_rate=0.01`) and throughput (`throughput=5`). Bad limits are refused with the
//! text that was wrong.

use std::time::Duration;

use super::{Better, Check, Row, Unit};
use crate::report::summary::ms;
use crate::scenario::parse_duration;

/// How much worse a figure may get.
#[derive(Debug, Clone, PartialEq)]
pub enum Allowance {
    /// Percent of the base.
    Percent(f64),
    /// In the figure's own unit (ms for latency).
    Absolute(f64),
}

/// One `--max-regression` limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub key: String,
    pub allowance: Allowance,
}

/// Why a limit could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("--max-regression {text:?}: {reason}")]
pub struct LimitError {
    pub text: String,
    pub reason: String,
}

/// Reads `KEY=LIMIT` items (each flag may hold several, separated by commas).
pub fn parse_limits<S: AsRef<str>>(items: &[S]) -> Result<Vec<Limit>, LimitError> {
    let mut out = Vec::new();
    for item in items {
        for text in item
            .as_ref()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            out.push(parse(text)?);
        }
    }
    Ok(out)
}

fn parse(text: &str) -> Result<Limit, LimitError> {
    let err = |reason: &str| LimitError {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| err("expected KEY=LIMIT, e.g. p99=10%"))?;
    let key = key.trim();
    let value = value.trim();
    if key.is_empty() {
        return Err(err("the key is empty"));
    }
    let latency = is_latency(key);
    let allowance = if let Some(p) = value.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| err("the percentage is not a number"))?;
        Allowance::Percent(p)
    } else if latency {
        let d: Duration = parse_duration(value)
            .map_err(|_| err("a latency limit is a percentage (10%) or a duration (200ms)"))?;
        Allowance::Absolute(d.as_secs_f64() * 1000.0)
    } else {
        Allowance::Absolute(
            value
                .parse()
                .map_err(|_| err("the limit is a percentage (10%) or a number"))?,
        )
    };
    match allowance {
        Allowance::Percent(v) | Allowance::Absolute(v) if !v.is_finite() || v < 0.0 => {
            return Err(err("the limit must be zero or more"));
        }
        _ => {}
    }
    if !known(key) {
        return Err(err(
            "unknown figure; one of p50, p90, p95, p99, max, throughput, players, matched, timeout_rate, error_rate, failed_rate, claim_failure_rate, ENDPOINT.p99, ENDPOINT.error_rate",
        ));
    }
    Ok(Limit {
        key: key.to_owned(),
        allowance,
    })
}

fn is_latency(key: &str) -> bool {
    matches!(key, "p50" | "p90" | "p95" | "p99" | "max") || key.ends_with(".p99")
}

fn known(key: &str) -> bool {
    matches!(
        key,
        "p50"
            | "p90"
            | "p95"
            | "p99"
            | "max"
            | "throughput"
            | "players"
            | "matched"
            | "timeout_rate"
            | "error_rate"
            | "failed_rate"
            | "claim_failure_rate"
    ) || key
        .split_once('.')
        .is_some_and(|(e, f)| !e.is_empty() && matches!(f, "p99" | "error_rate"))
}

/// A figure in its unit.
pub fn show(unit: Unit, v: Option<f64>) -> String {
    match v {
        None => "-".to_owned(),
        Some(v) => match unit {
            Unit::Ms => ms(v),
            Unit::Rate => format!("{:.2}%", v * 100.0),
            Unit::PerSecond => format!("{v:.1}/s"),
            Unit::Count => format!("{v:.0}"),
        },
    }
}

impl Limit {
    /// `p99 may get worse by 10%`.
    pub fn describe(&self) -> String {
        match self.allowance {
            Allowance::Percent(p) => format!("{} may get worse by {p}%", self.key),
            Allowance::Absolute(a) if is_latency(&self.key) => {
                format!("{} may get worse by {}", self.key, ms(a))
            }
            Allowance::Absolute(a) => format!("{} may get worse by {a}", self.key),
        }
    }

    /// Checks `row` against this limit.
    pub fn check(&self, row: &Row) -> Check {
        let condition = self.describe();
        let (Some(base), Some(new)) = (row.base, row.new) else {
            return Check {
                key: self.key.clone(),
                condition,
                passed: false,
                message: format!(
                    "{}: not measured in {} (base {}, new {})",
                    self.key,
                    if row.base.is_none() {
                        "the base"
                    } else {
                        "the new run"
                    },
                    show(row.unit, row.base),
                    show(row.unit, row.new)
                ),
            };
        };
        // How much worse, in the figure's unit (negative: better).
        let worse = match row.better {
            Better::Lower => new - base,
            Better::Higher => base - new,
        };
        let allowed = match self.allowance {
            Allowance::Percent(p) => base.abs() * p / 100.0,
            Allowance::Absolute(a) => a,
        };
        let passed = worse <= allowed + allowed.abs() * 1e-9;
        let change = row
            .change_percent()
            .map_or("n/a".to_owned(), |c| format!("{c:+.1}%"));
        Check {
            key: self.key.clone(),
            condition,
            passed,
            message: format!(
                "{}: base {}, new {} ({change}){}",
                self.key,
                show(row.unit, Some(base)),
                show(row.unit, Some(new)),
                if passed {
                    ""
                } else {
                    " — regression beyond the limit"
                }
            ),
        }
    }
}
