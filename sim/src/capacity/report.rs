//! The result of a capacity search: the knee, how the search ended, which harness process
//! saturated (if one did), and every step — the curve of pairing latency and errors against
//! load — as JSON, a text summary and a self-contained HTML page with the curve drawn in SVG.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::{ReportError, summary::ms, write_file};
use crate::scenario::{Plan, Thresholds};

use super::CapacityOptions;
use super::search::{Search, StepOutcome, StopReason};
use super::step::{LoadKind, StepResult, trim_number};

/// A capacity search's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    pub format: u32,
    pub scenario: String,
    pub file: String,
    pub load_kind: LoadKind,
    pub step_ms: u64,
    pub hold_ms: u64,
    pub time_limit_ms: u64,
    pub elapsed_ms: u64,
    /// The highest load that passed; `None` when none did.
    pub knee: Option<f64>,
    /// The knee passed its confirmation hold too.
    pub confirmed: bool,
    pub stop_reason: StopReason,
    /// The harness processes that saturated, and at which load (when one did).
    pub saturated_at: Option<f64>,
    pub saturated_by: Vec<String>,
    /// The scenario's thresholds each step was judged by (`min_matched` scaled per step).
    pub thresholds: Thresholds,
    /// Every step, in the order run.
    pub steps: Vec<StepResult>,
}

impl CapacityReport {
    pub fn new(
        plan: &Plan,
        load_kind: LoadKind,
        options: &CapacityOptions,
        search: &Search,
        steps: Vec<StepResult>,
        elapsed: Duration,
    ) -> CapacityReport {
        let stop_reason = search.stop_reason().unwrap_or(StopReason::Confirmed);
        // The saturation that ended the search (an earlier one may have been a passing burst).
        // (Only a saturation seen twice in a row at one step counts.)
        let saturated = (stop_reason == StopReason::HarnessSaturated)
            .then(|| {
                steps
                    .windows(2)
                    .rev()
                    .find(|w| {
                        w[0].load == w[1].load
                            && w[0].hold == w[1].hold
                            && w.iter()
                                .all(|s| s.outcome() == StepOutcome::HarnessSaturated)
                    })
                    .map(|w| &w[1])
            })
            .flatten();
        CapacityReport {
            format: 1,
            scenario: plan.name.clone(),
            file: plan.file.clone(),
            load_kind,
            step_ms: options.step.as_millis() as u64,
            hold_ms: options.hold.as_millis() as u64,
            time_limit_ms: options.time_limit.as_millis() as u64,
            elapsed_ms: elapsed.as_millis() as u64,
            knee: search.knee(),
            confirmed: search.confirmed(),
            stop_reason,
            saturated_at: saturated.map(|s| s.load),
            saturated_by: saturated.map(|s| s.saturated.clone()).unwrap_or_default(),
            thresholds: plan.thresholds.clone(),
            steps,
        }
    }

    /// One line: the knee and why the search ended.
    pub fn headline(&self) -> String {
        let k = self.load_kind;
        let knee = match self.knee {
            Some(load) => format!(
                "knee {} ({})",
                k.format(load),
                if self.confirmed {
                    "confirmed by a hold"
                } else {
                    "not confirmed"
                }
            ),
            None => "no load passed".to_owned(),
        };
        let why = match self.stop_reason {
            StopReason::Confirmed => match self.first_failure() {
                Some(f) => format!("the system under test fails at {}", k.format(f)),
                None => "search complete".to_owned(),
            },
            StopReason::HarnessSaturated => format!(
                "the harness saturated at {}: {} — the system under test may take more",
                self.saturated_at.map_or_else(String::new, |l| k.format(l)),
                self.saturated_by.join(", ")
            ),
            StopReason::NoPassingLoad => "even the lowest load failed".to_owned(),
            StopReason::MaxLoadPassed => "the maximum load passed".to_owned(),
            StopReason::TimeLimit => "stopped by the time limit".to_owned(),
            StopReason::Interrupted => "interrupted".to_owned(),
        };
        format!("{knee}; {why}")
    }

    /// The lowest load that failed its thresholds.
    pub fn first_failure(&self) -> Option<f64> {
        self.steps
            .iter()
            .filter(|s| !s.cut_short && !s.passed && s.saturated.is_empty())
            .map(|s| s.load)
            .fold(None, |a: Option<f64>, l| Some(a.map_or(l, |a| a.min(l))))
    }

    pub fn write_json(&self, path: &Path) -> Result<(), ReportError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| ReportError::Json {
            path: path.display().to_string(),
            source,
        })?;
        write_file(path, text.as_bytes())
    }

    pub fn read_json(path: &Path) -> Result<CapacityReport, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ReportError::Json {
            path: path.display().to_string(),
            source,
        })
    }
}

/// One step as a table row.
pub fn step_line(kind: LoadKind, s: &StepResult) -> String {
    let result = if s.cut_short {
        "CUT"
    } else if s.outcome() == StepOutcome::HarnessSaturated {
        "SATURATED"
    } else if !s.saturated.is_empty() {
        // Passed with only CPU busy in the harness: a lower bound, said so after the figures.
        "PASS, CPU-BOUND"
    } else if s.passed {
        "PASS"
    } else {
        "FAIL"
    };
    let achieved = format!("{:.1}/s", s.achieved_rate);
    let errors = format!("{:.2}%", s.error_rate * 100.0);
    let wall = format!("{:.0}s", s.wall_ms as f64 / 1000.0);
    let mut line = format!(
        "{:>14} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
        kind.format(s.load),
        if s.hold { "hold" } else { "step" },
        achieved,
        s.matched,
        ms(s.pairing.p50_ms),
        ms(s.pairing.p95_ms),
        ms(s.pairing.p99_ms),
        errors,
        wall,
        result
    );
    if !s.saturated.is_empty() {
        let _ = write!(line, " ({})", s.saturated.join(", "));
    } else if !s.passed && !s.failures.is_empty() {
        let _ = write!(line, " ({})", s.failures.join("; "));
    }
    if s.machine_busy {
        line.push_str(" [machine busy]");
    }
    line
}

/// The text summary.
pub fn render_summary(r: &CapacityReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "capacity   {} ({})", r.scenario, r.file);
    let _ = writeln!(
        out,
        "search     {} steps of {}s, hold {}s, {:.0}s of a {:.0}s limit",
        r.steps.len(),
        r.step_ms / 1000,
        r.hold_ms / 1000,
        r.elapsed_ms as f64 / 1000.0,
        r.time_limit_ms as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "{:>14} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}  result",
        match r.load_kind {
            LoadKind::ArrivalRate => "arrivals",
            LoadKind::Players => "players",
        },
        "",
        "achieved",
        "matched",
        "p50",
        "p95",
        "p99",
        "errors",
        "wall"
    );
    for s in &r.steps {
        let _ = writeln!(out, "{}", step_line(r.load_kind, s));
    }
    let _ = writeln!(out, "result     {}", r.headline());
    out
}

/// A self-contained HTML page: the table and the curve (p50/p99 and error rate against load).
pub fn render_html(r: &CapacityReport) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut points: Vec<&StepResult> = r.steps.iter().filter(|s| !s.cut_short).collect();
    points.sort_by(|a, b| a.load.total_cmp(&b.load));
    let (w, h, pad) = (720.0, 300.0, 50.0);
    let max_load = points.iter().map(|s| s.load).fold(1.0, f64::max);
    let max_ms = points
        .iter()
        .map(|s| s.pairing.p99_ms)
        .fold(1.0, f64::max)
        .max(1.0);
    let x = |l: f64| pad + l / max_load * (w - 2.0 * pad);
    let y_lat =
        |v: f64| h - pad - (v.max(0.1).log10() + 1.0) / (max_ms.log10() + 1.0) * (h - 2.0 * pad);
    let y_err = |v: f64| h - pad - v.min(1.0) * (h - 2.0 * pad);
    let line = |f: &dyn Fn(&StepResult) -> f64, color: &str| {
        let pts: Vec<String> = points
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.load), f(s)))
            .collect();
        format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        )
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><rect width="{w}" height="{h}" fill="white"/><line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>"#,
        h - pad,
        w - pad,
        h - pad,
        h - pad
    );
    svg.push_str(&line(&|s| y_lat(s.pairing.p50_ms), "#1f77b4"));
    svg.push_str(&line(&|s| y_lat(s.pairing.p99_ms), "#d62728"));
    svg.push_str(&line(&|s| y_err(s.error_rate), "#7f7f7f"));
    for s in &points {
        let color = if s.outcome() == StepOutcome::HarnessSaturated {
            "orange"
        } else if s.passed {
            "green"
        } else {
            "red"
        };
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{}</title></circle><text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(s.load),
            y_lat(s.pairing.p99_ms),
            esc(&step_line(r.load_kind, s)),
            x(s.load),
            h - pad + 15.0,
            trim_number(s.load)
        );
    }
    if let Some(k) = r.knee {
        let _ = write!(
            svg,
            r#"<line x1="{0:.1}" y1="{pad}" x2="{0:.1}" y2="{1}" stroke="green" stroke-dasharray="4 3"/><text x="{0:.1}" y="{2}" fill="green" text-anchor="middle">knee {3}</text>"#,
            x(k),
            h - pad,
            pad - 5.0,
            esc(&r.load_kind.format(k))
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{pad}" y="15">pairing p50 (blue), p99 (red, log scale; dots: green pass, red fail, orange harness saturated); error rate 0–100% (grey)</text><text x="{}" y="{}" text-anchor="middle">{}</text></svg>"##,
        w / 2.0,
        h - 10.0,
        match r.load_kind {
            LoadKind::ArrivalRate => "arrivals per second",
            LoadKind::Players => "players",
        }
    );
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>capacity: {name}</title></head><body style=\"font-family:sans-serif\"><h1>capacity: {name}</h1><p><b>{headline}</b></p>{svg}<pre>{table}</pre></body></html>\n",
        name = esc(&r.scenario),
        headline = esc(&r.headline()),
        table = esc(&render_summary(r)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Percentiles;
    use crate::verdict::Status;

    fn step(load: f64, passed: bool, saturated: &[&str]) -> StepResult {
        StepResult {
            load,
            hold: false,
            duration_ms: 5000,
            wall_ms: 7000,
            passed,
            cut_short: false,
            arrivals: (load * 5.0) as u64,
            achieved_rate: load,
            matched: (load * 5.0) as u64,
            timed_out: 0,
            errors: 0,
            failed: 0,
            error_rate: if passed { 0.0 } else { 0.2 },
            pairing: Percentiles {
                count: 10,
                p50_ms: load,
                p90_ms: load * 2.0,
                p95_ms: load * 3.0,
                p99_ms: load * 4.0,
                max_ms: load * 5.0,
            },
            failures: if passed {
                Vec::new()
            } else {
                vec!["pairing_p99: too slow".into()]
            },
            verdict: if saturated.is_empty() {
                Status::Ok
            } else {
                Status::Saturated
            },
            verdict_headline: String::new(),
            saturated: saturated.iter().map(|s| (*s).to_owned()).collect(),
            harness_cpu_only: false,
            machine_busy: false,
        }
    }

    #[test]
    fn a_cpu_bound_pass_is_a_pass_that_names_the_busy_process() {
        let mut s = step(20.0, true, &["single (pid 7) (cpu)"]);
        s.harness_cpu_only = true;
        let line = step_line(LoadKind::ArrivalRate, &s);
        assert!(
            line.contains("PASS, CPU-BOUND (single (pid 7) (cpu))"),
            "{line}"
        );
        s.harness_cpu_only = false;
        let line = step_line(LoadKind::ArrivalRate, &s);
        assert!(line.contains("SATURATED (single (pid 7) (cpu))"), "{line}");
    }

    #[test]
    fn the_summary_names_the_knee_the_failure_and_the_saturated_process() {
        let report = CapacityReport {
            format: 1,
            scenario: "s".into(),
            file: "s.toml".into(),
            load_kind: LoadKind::ArrivalRate,
            step_ms: 5000,
            hold_ms: 10000,
            time_limit_ms: 60000,
            elapsed_ms: 40000,
            knee: Some(20.0),
            confirmed: true,
            stop_reason: StopReason::HarnessSaturated,
            saturated_at: Some(40.0),
            saturated_by: vec!["single (pid 7) (cpu)".into()],
            thresholds: Thresholds::default(),
            steps: vec![
                step(10.0, true, &[]),
                step(20.0, true, &[]),
                step(40.0, false, &["single (pid 7) (cpu)"]),
            ],
        };
        let text = render_summary(&report);
        assert!(
            text.contains("knee 20/s (confirmed by a hold); the harness saturated at 40/s: single (pid 7) (cpu)"),
            "{text}"
        );
        assert!(text.contains("SATURATED (single (pid 7) (cpu))"), "{text}");
        let html = render_html(&report);
        assert!(
            html.contains("<svg") && html.contains("knee 20/s"),
            "{html}"
        );
        let json = serde_json::to_string(&report).expect("json");
        let back: CapacityReport = serde_json::from_str(&json).expect("read back");
        assert_eq!(back, report);
    }
}
