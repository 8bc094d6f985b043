//! A [`MetricsSnapshot`] in the Prometheus text exposition format (version 0.0.4): players by
//! state, outcomes, the pairing latency histogram, errors by endpoint and kind, DSMC claim
//! outcomes, the generator's start lag, active faults and threshold status — what
//! `sim run --metrics-addr` serves and `docs/grafana/` charts.
//!
//! Pure: a snapshot in, text out. Every metric is prefixed `sim_`; counters end in `_total`.
//! The latency histogram needs the snapshot's exact histogram ([`MetricsSnapshot::mergeable`]);
//! without it only the percentile gauges are written.

use std::fmt::Write as _;

use super::{MetricsSnapshot, Phase, decode};

/// Upper bounds of the pairing latency histogram's buckets, seconds.
pub const LATENCY_BUCKETS_S: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0,
];

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{v}")
    }
}

/// The snapshot as Prometheus text.
pub fn render(s: &MetricsSnapshot) -> String {
    let mut o = Out(String::new());
    o.one(
        "sim_elapsed_seconds",
        "gauge",
        "Seconds since arrivals started.",
        s.elapsed_ms as f64 / 1000.0,
    );
    o.family("sim_phase", "gauge", "1 for the phase the run is in.");
    for p in [
        Phase::Preparing,
        Phase::Running,
        Phase::Paused,
        Phase::Draining,
        Phase::Finished,
    ] {
        o.sample(
            "sim_phase",
            &[("phase", p.as_str())],
            f64::from(u8::from(p == s.phase)),
        );
    }
    o.one(
        "sim_players_arrived_total",
        "counter",
        "Players that started a search.",
        s.arrived as f64,
    );
    o.family(
        "sim_players",
        "gauge",
        "Players now searching, and parties between arrival and outcome.",
    );
    o.sample("sim_players", &[("state", "searching")], s.searching as f64);
    o.sample("sim_players", &[("state", "in_flight")], s.in_flight as f64);
    o.family(
        "sim_players_finished_total",
        "counter",
        "Players by how their search ended.",
    );
    for (outcome, n) in [
        ("matched", s.matched),
        ("timed_out", s.timed_out),
        ("cancelled", s.cancelled),
        ("failed", s.failed),
        ("error", s.errors),
    ] {
        o.sample(
            "sim_players_finished_total",
            &[("outcome", outcome)],
            n as f64,
        );
    }
    o.one(
        "sim_open_sockets",
        "gauge",
        "Lobby WebSockets open.",
        s.open_sockets as f64,
    );
    o.one(
        "sim_target_arrival_rate",
        "gauge",
        "Parties per second the schedule asks for now.",
        s.target_rate,
    );
    o.one(
        "sim_arrival_rate",
        "gauge",
        "Parties that started in the last whole second.",
        s.actual_rate,
    );
    latency(&mut o, s);
    o.family(
        "sim_errors_total",
        "counter",
        "Errors by endpoint and kind (kind http_NNN is a status the server answered).",
    );
    for e in &s.errors_by {
        o.sample(
            "sim_errors_total",
            &[("endpoint", &e.endpoint), ("kind", &e.kind)],
            e.count as f64,
        );
    }
    o.family(
        "sim_claims_total",
        "counter",
        "DSMC claims during the run by outcome, from the fakes' counters.",
    );
    if let Some(c) = &s.claims {
        for (outcome, n) in [
            ("succeeded", c.succeeded),
            ("not_found", c.not_found),
            ("conflict", c.conflict),
            ("not_ready", c.not_ready),
            ("unreachable", c.unreachable),
        ] {
            o.sample("sim_claims_total", &[("outcome", outcome)], n as f64);
        }
    }
    o.one(
        "sim_generator_lag_max_seconds",
        "gauge",
        "Worst start lag behind schedule over the last few seconds.",
        s.max_lag_ms / 1000.0,
    );
    o.one(
        "sim_generator_saturated",
        "gauge",
        "1 while players start more than 50 ms late: the generator, not the system, limits the load.",
        f64::from(u8::from(s.saturated)),
    );
    o.one(
        "sim_failovers_total",
        "counter",
        "Matchmaking requests moved on to another matchmaker URL.",
        s.failovers as f64,
    );
    o.family(
        "sim_fault_active",
        "gauge",
        "1 for each fault in force now.",
    );
    for f in &s.active_faults {
        o.sample("sim_fault_active", &[("fault", f)], 1.0);
    }
    o.family(
        "sim_threshold_passing",
        "gauge",
        "Each threshold now: 1 passing, 0 failing, -1 not decided yet.",
    );
    for t in &s.thresholds {
        let v = match t.status {
            crate::thresholds::Status::Pass => 1.0,
            crate::thresholds::Status::Fail => 0.0,
            crate::thresholds::Status::Pending => -1.0,
        };
        o.sample("sim_threshold_passing", &[("threshold", &t.name)], v);
    }
    o.0
}

/// The pairing latency histogram (when the snapshot carries it) and percentile gauges.
fn latency(o: &mut Out, s: &MetricsSnapshot) {
    o.family(
        "sim_pairing_latency_seconds",
        "histogram",
        "Scheduled arrival to `found`, over matched players (closed seconds).",
    );
    let hist = s
        .mergeable
        .as_ref()
        .and_then(|m| decode(&m.pairing_hist).ok());
    if let Some(h) = hist {
        for le in LATENCY_BUCKETS_S {
            let us = (le * 1_000_000.0) as u64;
            let n = h.count_between(0, us);
            o.sample(
                "sim_pairing_latency_seconds_bucket",
                &[("le", &number(le))],
                n as f64,
            );
        }
        o.sample(
            "sim_pairing_latency_seconds_bucket",
            &[("le", "+Inf")],
            h.len() as f64,
        );
        o.sample(
            "sim_pairing_latency_seconds_sum",
            &[],
            h.mean() * h.len() as f64 / 1_000_000.0,
        );
        o.sample("sim_pairing_latency_seconds_count", &[], h.len() as f64);
    }
    o.family(
        "sim_pairing_latency_quantile_seconds",
        "gauge",
        "Pairing latency percentiles over the whole run so far (window=run) and the last whole second (window=second).",
    );
    for (window, p) in [("run", &s.latency), ("second", &s.latency_now)] {
        if p.count == 0 {
            continue;
        }
        for (q, v) in [
            ("0.5", p.p50_ms),
            ("0.9", p.p90_ms),
            ("0.95", p.p95_ms),
            ("0.99", p.p99_ms),
            ("1", p.max_ms),
        ] {
            o.sample(
                "sim_pairing_latency_quantile_seconds",
                &[("window", window), ("quantile", q)],
                v / 1000.0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::snapshot::ErrorCount;
    use crate::metrics::{ClaimCounts, Mergeable, encode, new_histogram, record};

    #[test]
    fn a_snapshot_renders_as_prometheus_text() {
        let mut h = new_histogram();
        for ms in [3u64, 40, 40, 700, 12_000] {
            record(&mut h, Duration::from_millis(ms));
        }
        let s = MetricsSnapshot {
            phase: Phase::Running,
            arrived: 9,
            searching: 2,
            matched: 5,
            timed_out: 1,
            claims: Some(ClaimCounts {
                attempted: 4,
                succeeded: 3,
                unreachable: 1,
                ..ClaimCounts::default()
            }),
            errors_by: vec![ErrorCount {
                endpoint: "matchmaking".to_owned(),
                kind: "http_503".to_owned(),
                count: 2,
            }],
            active_faults: vec!["claims \"fail\"".to_owned()],
            mergeable: Some(Mergeable {
                pairing_hist: encode(&h),
                recent_seconds: Vec::new(),
            }),
            ..MetricsSnapshot::default()
        };
        let text = render(&s);
        for line in [
            "sim_phase{phase=\"running\"} 1",
            "sim_players_arrived_total 9",
            "sim_players{state=\"searching\"} 2",
            "sim_players_finished_total{outcome=\"matched\"} 5",
            "sim_errors_total{endpoint=\"matchmaking\",kind=\"http_503\"} 2",
            "sim_claims_total{outcome=\"unreachable\"} 1",
            "sim_fault_active{fault=\"claims \\\"fail\\\"\"} 1",
            "sim_pairing_latency_seconds_bucket{le=\"0.005\"} 1",
            "sim_pairing_latency_seconds_bucket{le=\"0.05\"} 3",
            "sim_pairing_latency_seconds_bucket{le=\"1\"} 4",
            "sim_pairing_latency_seconds_bucket{le=\"15\"} 5",
            "sim_pairing_latency_seconds_bucket{le=\"+Inf\"} 5",
            "sim_pairing_latency_seconds_count 5",
            "# TYPE sim_pairing_latency_seconds histogram",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
