//! The terminal summary table printed at the end of a run, and the one-line progress format.

use std::fmt::Write as _;

use super::RunReport;
use crate::metrics::{MetricsSnapshot, Percentiles};
use crate::thresholds::{Status, format_rate};

/// Violations printed in the terminal; the JSON report lists all.
const MAX_VIOLATIONS_SHOWN: usize = 20;

/// Milliseconds, with a unit that fits.
pub fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}s", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}ms")
    } else {
        format!("{v:.1}ms")
    }
}

fn pct(p: &Percentiles) -> String {
    if p.count == 0 {
        return "-".to_owned();
    }
    format!(
        "p50 {}  p90 {}  p99 {}  max {}",
        ms(p.p50_ms),
        ms(p.p90_ms),
        ms(p.p99_ms),
        ms(p.max_ms)
    )
}

/// The summary table.
pub fn render(report: &RunReport) -> String {
    let mut s = String::new();
    let verdict = if report.passed { "PASS" } else { "FAIL" };
    let sc = &report.scenario;
    let _ = writeln!(
        s,
        "sim: {} — {verdict}  ({} target, {}, seed {}, {:.1}s{})",
        sc.name,
        sc.target,
        sc.arrival,
        sc.seed,
        report.elapsed_ms as f64 / 1000.0,
        if report.shards > 1 {
            format!(", {} shards", report.shards)
        } else {
            String::new()
        }
    );
    if let Some(function) = &sc.match_function {
        let _ = writeln!(s, "  match fn   {function}");
    }
    if !report.verdict.headline.is_empty() {
        let trust = if report.verdict.trustworthy {
            ""
        } else {
            "  [results NOT trustworthy]"
        };
        let _ = writeln!(s, "  verdict    {}{trust}", report.verdict.headline);
    }
    let o = &report.outcomes;
    let _ = writeln!(
        s,
        "  players    {} in {} parties: matched {}, timed out {}, cancelled {}, failed {} ({} claim), errors {}",
        report.players,
        report.arrivals,
        o.matched,
        o.timed_out,
        o.cancelled,
        o.failed,
        o.failed_claim,
        o.error
    );
    if !report.failure_reasons.is_empty() {
        let mut reasons: Vec<(&String, &u64)> = report.failure_reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(s, "  failures   {}", list.join(", "));
    }
    let _ = writeln!(s, "  pairing    {}", pct(&report.pairing));
    match &report.claims {
        Some(c) => {
            let rate = if c.attempted == 0 {
                0.0
            } else {
                c.failed() as f64 / c.attempted as f64
            };
            let _ = writeln!(
                s,
                "  claims     {} attempted, {} failed ({}): not_ready {}, unreachable {}, conflict {}, not_found {}",
                c.attempted,
                c.failed(),
                format_rate(rate),
                c.not_ready,
                c.unreachable,
                c.conflict,
                c.not_found
            );
        }
        None => {
            let _ = writeln!(s, "  claims     not measured (fakes stats unreadable)");
        }
    }
    let c = &report.counters;
    if c.retries + c.socket_drops + c.reconnects + c.stray_found + c.verified > 0 {
        let _ = writeln!(
            s,
            "  behaviour  retries {}, sockets dropped {}, reconnects {}, stray found {}, servers verified {}",
            c.retries, c.socket_drops, c.reconnects, c.stray_found, c.verified
        );
    }
    if !report.endpoints.is_empty() {
        let _ = writeln!(
            s,
            "  {:<15} {:>9} {:>8} {:>9} {:>9} {:>9}",
            "endpoint", "calls", "errors", "p50", "p99", "max"
        );
        for (name, e) in &report.endpoints {
            let l = &e.latency;
            // Errors that are not timed calls (a closed socket, a missing `found`) have no
            // latency to show.
            let lat = |v: f64| if e.calls == 0 { "-".to_owned() } else { ms(v) };
            let _ = writeln!(
                s,
                "  {:<15} {:>9} {:>8} {:>9} {:>9} {:>9}",
                name,
                e.calls,
                e.errors,
                lat(l.p50_ms),
                lat(l.p99_ms),
                lat(l.max_ms)
            );
        }
    }
    if !report.failovers.is_empty() {
        let list: Vec<String> = report
            .failovers
            .iter()
            .map(|(url, n)| format!("{url} {n}"))
            .collect();
        let _ = writeln!(s, "  failovers  {}", list.join(", "));
    }
    for p in &report.processes {
        let files = match p.open_files_limit {
            Some(limit) => format!("  open files peak {}/{limit}", p.peak_open_files),
            None => String::new(),
        };
        let busy = if p.samples.is_empty() {
            String::new()
        } else {
            format!(" (peak {:.0}%)", p.peak_cpu_percent)
        };
        let _ = writeln!(
            s,
            "  process    {:<14} pid {:<8} peak RSS {:>8.1} MiB  CPU {:>7.2}s{busy}{files}",
            p.role,
            p.pid,
            p.peak_rss_bytes as f64 / (1024.0 * 1024.0),
            p.cpu_seconds
        );
    }
    if let Some(m) = &report.machine {
        let busiest = m.samples.iter().map(|x| x.busy_percent).fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "  machine    {} cores, busiest second {busiest:.0}%, least memory available {} of {} MiB",
            m.cores,
            m.min_mem_available_bytes / (1024 * 1024),
            m.mem_total_bytes / (1024 * 1024)
        );
    }
    if let Some(c) = &report.sut {
        let n = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
        if c.fakes_refused_over_cap.unwrap_or(0)
            + c.fakes_accept_resource_errors.unwrap_or(0)
            + c.matchmaker_refused.unwrap_or(0)
            + c.matchmaker_accept_resource_errors.unwrap_or(0)
            > 0
        {
            let _ = writeln!(
                s,
                "  servers    fakes refused {} over cap, {} accept resource errors; matchmaker refused {} over cap, {} accept resource errors",
                n(c.fakes_refused_over_cap),
                n(c.fakes_accept_resource_errors),
                n(c.matchmaker_refused),
                n(c.matchmaker_accept_resource_errors)
            );
        }
    }
    if !report.errors.is_empty() {
        let list: Vec<String> = report
            .errors
            .iter()
            .map(|e| format!("{}/{} {}", e.endpoint, e.kind, e.count))
            .collect();
        let _ = writeln!(s, "  errors     {}", list.join(", "));
    }
    for f in &report.faults {
        let until = f
            .until_ms
            .map_or("end".to_owned(), |u| format!("{:.1}s", u as f64 / 1000.0));
        let state = match (&f.error, f.applied) {
            (Some(e), _) => format!("not applied: {e}"),
            (None, true) => match f.recovered_ms {
                Some(ms) => format!(
                    "applied; matching again {} after it ended",
                    self::ms(ms as f64)
                ),
                None => "applied".to_owned(),
            },
            (None, false) => "not applied".to_owned(),
        };
        let _ = writeln!(
            s,
            "  fault      {} {:.1}s → {until}: {state}",
            f.label,
            f.at_ms as f64 / 1000.0
        );
    }
    if report.saturation.warned {
        let _ = writeln!(
            s,
            "  WARNING    saturated: {} players started more than 50ms late (worst {}); the offered load was not met",
            report.saturation.lagged_starts,
            ms(report.saturation.max_lag_ms)
        );
    }
    for w in &report.warnings {
        let _ = writeln!(s, "  WARNING    {w}");
    }
    if report.thresholds.is_empty() {
        let _ = writeln!(s, "  thresholds none set");
    } else {
        let _ = writeln!(s, "  thresholds");
        for t in &report.thresholds {
            let mark = match t.status {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Pending => "....",
            };
            let actual = t.actual.as_deref().unwrap_or("not measured");
            let condition = if t.default {
                format!("{} (default)", t.condition)
            } else {
                t.condition.clone()
            };
            let _ = writeln!(s, "    {mark}  {condition:<34} actual {actual}");
        }
    }
    let inv = &report.invariants;
    if inv.passed() {
        let _ = writeln!(
            s,
            "  invariants PASS ({} players, {} sessions)",
            inv.players, inv.sessions
        );
    } else {
        let _ = writeln!(
            s,
            "  invariants FAIL: {} violations ({} players, {} sessions)",
            inv.violations.len(),
            inv.players,
            inv.sessions
        );
        for v in inv.violations.iter().take(MAX_VIOLATIONS_SHOWN) {
            let _ = writeln!(s, "    - {v}");
        }
        if inv.violations.len() > MAX_VIOLATIONS_SHOWN {
            let _ = writeln!(
                s,
                "    … and {} more (all are in the JSON report)",
                inv.violations.len() - MAX_VIOLATIONS_SHOWN
            );
        }
    }
    s
}

/// One progress line for headless runs.
pub fn progress_line(snap: &MetricsSnapshot) -> String {
    let mut line = format!(
        "[{:>6.1}s {:<9}] arrived {} searching {} matched {} timeout {} cancel {} failed {} err {} | rate {:.1}/{:.1}/s | p50 {} p99 {} | sockets {}",
        snap.elapsed_ms as f64 / 1000.0,
        snap.phase.as_str(),
        snap.arrived,
        snap.searching,
        snap.matched,
        snap.timed_out,
        snap.cancelled,
        snap.failed,
        snap.errors,
        snap.actual_rate,
        snap.target_rate,
        ms(snap.latency.p50_ms),
        ms(snap.latency.p99_ms),
        snap.open_sockets,
    );
    if let Some(c) = &snap.claims {
        let _ = write!(line, " | claims {} ({} failed)", c.attempted, c.failed());
    }
    if !snap.active_faults.is_empty() {
        let _ = write!(line, " | faults: {}", snap.active_faults.join(", "));
    }
    if snap.failovers > 0 {
        let _ = write!(line, " | failovers {}", snap.failovers);
    }
    if snap.saturated {
        let _ = write!(line, " | SATURATED (lag {})", ms(snap.max_lag_ms));
    }
    line
}
