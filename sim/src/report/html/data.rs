//! The figures the page's charts draw, as one JSON document embedded in the page: per-second
//! series, the latency distribution (HDR percentile curve and a log-bucket histogram), fault
//! windows and phases, and each process's CPU and memory samples.
//!
//! Only numbers and labels; how they are drawn is the page script's job (`page.js`).

use serde_json::{Value, json};

use super::super::RunReport;
use super::timeline;
use crate::metrics;

/// Largest quantile the percentile curve goes to (99.999%).
const CURVE_MAX_QUANTILE: f64 = 0.99999;

/// The chart data of `report`.
pub fn chart_data(report: &RunReport) -> Value {
    let s = &report.series;
    let col =
        |f: &dyn Fn(&crate::metrics::SecondPoint) -> Value| s.iter().map(f).collect::<Vec<_>>();
    let lat = |which: fn(&crate::metrics::Percentiles) -> f64| {
        col(&|p| {
            if p.latency.count == 0 {
                Value::Null
            } else {
                json!(which(&p.latency))
            }
        })
    };
    let (curve, histogram) = distribution(&report.pairing_histogram);
    json!({
        "t": col(&|p| json!(p.t)),
        "latency": {
            "p50": lat(|l| l.p50_ms),
            "p90": lat(|l| l.p90_ms),
            "p99": lat(|l| l.p99_ms),
            "max": lat(|l| l.max_ms),
        },
        "throughput": {
            "target": col(&|p| json!(p.target_rate)),
            "arrived_players": col(&|p| json!(p.players)),
            "matched": col(&|p| json!(p.matched)),
            "timed_out": col(&|p| json!(p.timed_out)),
            "cancelled": col(&|p| json!(p.cancelled)),
            "failed": col(&|p| json!(p.failed)),
            "errors": col(&|p| json!(p.errors)),
            "searching": col(&|p| json!(p.searching)),
        },
        "claims": {
            "succeeded": col(&|p| json!(p.claims.succeeded)),
            "unreachable": col(&|p| json!(p.claims.unreachable)),
            "not_ready": col(&|p| json!(p.claims.not_ready)),
            "conflict": col(&|p| json!(p.claims.conflict)),
            "not_found": col(&|p| json!(p.claims.not_found)),
        },
        "generator": {
            "max_lag_ms": col(&|p| json!(p.max_lag_ms)),
            "lagged_starts": col(&|p| json!(p.lagged_starts)),
        },
        "phases": timeline::phases(report),
        "faults": timeline::faults(report),
        "end_s": timeline::end_s(report),
        "curve": curve,
        "histogram": histogram,
        "processes": report.processes.iter().filter(|p| !p.samples.is_empty()).map(|p| json!({
            "role": p.role,
            "t": p.samples.iter().map(|x| x.at_ms as f64 / 1000.0).collect::<Vec<_>>(),
            "cpu": p.samples.iter().map(|x| x.cpu_percent).collect::<Vec<_>>(),
            "rss_mib": p.samples.iter().map(|x| x.rss_bytes as f64 / (1024.0 * 1024.0)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The pairing latency distribution: the HDR percentile curve (`x` is `1 / (1 - q)`, so a log
/// axis spreads 90%, 99%, 99.9% evenly; `y` in ms) and a histogram over log-spaced buckets
/// (`x` the bucket's upper bound in ms, `y` players).
fn distribution(encoded: &str) -> (Value, Value) {
    let Ok(h) = metrics::decode(encoded) else {
        return (json!({"x": [], "y": []}), json!({"x": [], "y": []}));
    };
    if h.is_empty() {
        return (json!({"x": [], "y": []}), json!({"x": [], "y": []}));
    }
    let (mut cx, mut cy) = (Vec::new(), Vec::new());
    for v in h.iter_quantiles(4) {
        let q = v.quantile_iterated_to();
        if q > CURVE_MAX_QUANTILE {
            break;
        }
        let x = 1.0 / (1.0 - q);
        let y = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
        if cx.last().is_some_and(|&last: &f64| x <= last) {
            continue;
        }
        cx.push(x);
        cy.push(y);
    }
    // The top of the curve: the largest value, at the last quantile drawn.
    cx.push(1.0 / (1.0 - CURVE_MAX_QUANTILE.max(cx.last().map_or(0.0, |x| 1.0 - 1.0 / x))));
    cy.push(h.max() as f64 / 1000.0);
    let (mut hx, mut hy) = (Vec::new(), Vec::new());
    // Buckets of ×1.25 from 1 ms: about ten per decade.
    for v in h.iter_log(1000, 1.25) {
        hx.push(v.value_iterated_to() as f64 / 1000.0);
        hy.push(v.count_since_last_iteration());
    }
    (json!({"x": cx, "y": cy}), json!({"x": hx, "y": hy}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_curve_rises_and_the_histogram_holds_every_player() {
        let mut h = metrics::new_histogram();
        for ms in 1..=1000u64 {
            metrics::record(&mut h, std::time::Duration::from_millis(ms));
        }
        let (curve, histogram) = distribution(&metrics::encode(&h));
        let xs: Vec<f64> = serde_json::from_value(curve["x"].clone()).expect("x");
        let ys: Vec<f64> = serde_json::from_value(curve["y"].clone()).expect("y");
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        assert!(ys.windows(2).all(|w| w[0] <= w[1]), "{ys:?}");
        assert!((ys.last().copied().unwrap_or(0.0) - 1000.0).abs() < 1.0);
        let counts: Vec<u64> = serde_json::from_value(histogram["y"].clone()).expect("y");
        assert_eq!(counts.iter().sum::<u64>(), 1000);
    }
}
