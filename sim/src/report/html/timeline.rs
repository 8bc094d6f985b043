//! When things happened in a run: its phases (ramp, steady, drain) and its fault windows, in
//! seconds since arrivals started — what the report's charts shade and label.
//!
//! Derived from what every report holds (the per-second target rate, the scheduled duration,
//! the fault timeline), so reports of older builds get the same shading.

use super::super::RunReport;

/// One labelled stretch of the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Span {
    pub label: String,
    pub from_s: f64,
    pub to_s: f64,
}

/// Seconds from the first arrival to the end of the drain.
pub fn end_s(report: &RunReport) -> f64 {
    let last = report.series.last().map_or(0.0, |p| f64::from(p.t) + 1.0);
    (report.elapsed_ms as f64 / 1000.0).max(last)
}

/// Ramp (target rate still climbing to its peak), steady (at or around the peak until the
/// scheduled duration ends) and drain (arrivals over, players in flight finishing).
pub fn phases(report: &RunReport) -> Vec<Span> {
    let duration = report.scenario.duration_ms as f64 / 1000.0;
    let end = end_s(report);
    let scheduled = report
        .series
        .iter()
        .filter(|p| f64::from(p.t) < duration)
        .collect::<Vec<_>>();
    let peak = scheduled.iter().map(|p| p.target_rate).fold(0.0, f64::max);
    // A point's target rate is the one at the end of its second.
    let ramp_end = scheduled
        .iter()
        .find(|p| peak > 0.0 && p.target_rate >= peak * 0.999)
        .map_or(0.0, |p| f64::from(p.t) + 1.0);
    let mut spans = Vec::new();
    let steady_from = if ramp_end > 1.0 {
        spans.push(Span {
            label: "ramp".to_owned(),
            from_s: 0.0,
            to_s: ramp_end,
        });
        ramp_end
    } else {
        0.0
    };
    let steady_to = duration.min(end);
    if steady_to > steady_from {
        spans.push(Span {
            label: "steady".to_owned(),
            from_s: steady_from,
            to_s: steady_to,
        });
    }
    if end > duration {
        spans.push(Span {
            label: "drain".to_owned(),
            from_s: duration,
            to_s: end,
        });
    }
    spans
}

/// The faults that were applied, each from when it began to when it was removed (or the end).
pub fn faults(report: &RunReport) -> Vec<Span> {
    let end = end_s(report);
    report
        .faults
        .iter()
        .filter(|f| f.applied)
        .map(|f| Span {
            label: f.label.clone(),
            from_s: f.at_ms as f64 / 1000.0,
            to_s: f.until_ms.map_or(end, |u| u as f64 / 1000.0),
        })
        .collect()
}
