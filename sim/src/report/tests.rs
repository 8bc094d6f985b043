use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;
use crate::invariants::{self, Violation};
use crate::metrics::{Collector, Recorder, new_histogram, record};
use crate::outcome::{ErrorKind, PlayerRecord, ServerAddr};

const SCENARIO: &str = r#"
version = 1
name = "unit"
[run]
duration = "5s"
seed = 3
[thresholds]
pairing_p95 = "1s"
timeout_rate = 0.2
min_matched = 3
"#;

fn plan() -> Plan {
    Plan::parse(SCENARIO, "unit.toml", Path::new(".")).expect("valid")
}

fn matched(r: &Recorder, arrival: u64, latency_ms: u64) {
    r.arrival(arrival, 1, Duration::ZERO);
    r.pairing(Duration::from_millis(latency_ms));
    r.call(
        Endpoint::Matchmaking,
        Duration::from_millis(latency_ms),
        Ok(()),
    );
    r.finish(
        PlayerRecord {
            arrival,
            member: 0,
            outcome: Outcome::Matched,
            error: None,
            session: Some(Arc::from(format!("s{arrival}"))),
            answered: Some(ServerAddr {
                ip: Arc::from("127.0.0.1"),
                port: 7000 + arrival as u16,
            }),
            found: Vec::new(),
            found_at_ms: Some(arrival * 10),
            answered_at_ms: Some(arrival * 10),
            dsmc_server: None,
        },
        None,
    );
}

/// A report with `n` matched players of latency `base + i` ms and one timed-out player.
pub(crate) fn report(n: u64, base: u64) -> RunReport {
    report_of(&(0..n).map(|i| base + i).collect::<Vec<_>>())
}

/// A report with one matched player per latency (ms) and one timed-out player.
pub(crate) fn report_of(latencies: &[u64]) -> RunReport {
    let n = latencies.len() as u64;
    let plan = plan();
    let (mut collector, recorders) = Collector::new(2);
    let mut started = Vec::new();
    for (i, &latency) in (0..n).zip(latencies) {
        matched(&recorders[(i % 2) as usize], i, latency);
        started.push((i, 1));
    }
    recorders[0].arrival(n, 1, Duration::ZERO);
    recorders[0].call(
        Endpoint::Matchmaking,
        Duration::from_millis(900),
        Err(ErrorKind::Status(408)),
    );
    recorders[0].finish(
        PlayerRecord {
            arrival: n,
            member: 0,
            outcome: Outcome::TimedOut,
            error: None,
            session: None,
            answered: None,
            found: Vec::new(),
            found_at_ms: None,
            answered_at_ms: None,
            dsmc_server: None,
        },
        None,
    );
    started.push((n, 1));
    collector.drain();
    collector.close_second(2.0, Vec::new());
    collector.set_claims(ClaimCounts {
        attempted: n,
        succeeded: n,
        ..ClaimCounts::default()
    });
    collector.finish();
    assert_eq!(collector.started.len(), started.len());
    let inv = invariants::check(&started, &collector.records, &collector.releases);
    RunReport::build(&plan, &collector, inv, Vec::new(), 5_000, Vec::new())
}

#[test]
fn json_round_trip_is_lossless() {
    let report = report(10, 100);
    assert!(report.passed, "{:?}", report.thresholds);
    let dir = std::env::temp_dir().join(format!("sim-report-{}", std::process::id()));
    let path = dir.join("r.json");
    report.write_json(&path).expect("write");
    let back = RunReport::read_json(&path).expect("read");
    assert_eq!(back, report);
    let h = metrics::decode(&back.pairing_histogram).expect("histogram");
    assert_eq!(h.len(), 10);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn merged_reports_equal_one_big_run() {
    let a = report(10, 100);
    let b = report(20, 2_000);
    let merged = RunReport::merge(&[a.clone(), b.clone()]).expect("merge");
    assert_eq!(merged.shards, 2);
    assert_eq!(merged.players, a.players + b.players);
    assert_eq!(merged.outcomes.matched, 30);
    assert_eq!(merged.outcomes.timed_out, 2);
    let mut all = new_histogram();
    for i in 0..10 {
        record(&mut all, Duration::from_millis(100 + i));
    }
    for i in 0..20 {
        record(&mut all, Duration::from_millis(2_000 + i));
    }
    assert_eq!(metrics::decode(&merged.pairing_histogram).expect("h"), all);
    assert_eq!(merged.pairing, Percentiles::of(&all));
    assert_eq!(merged.endpoints["matchmaking"].calls, 32);
    assert_eq!(merged.errors[0].count, 2);
    assert_eq!(merged.series[0].matched, 30);
    // Every shard follows the whole schedule: its target rate is the run's, not a share.
    assert_eq!(merged.series[0].target_rate, 2.0);
    // Claims come from one shared fakes: the larger view is kept, not the sum.
    assert_eq!(merged.claims.map(|c| c.attempted), Some(20));
    // Each shard passed p95 <= 1s alone (a: all ~100ms; b: all ~2s fails); merged p95 is ~2s.
    assert!(a.passed);
    assert!(!b.passed);
    assert!(!merged.passed);
    let failed: Vec<_> = merged
        .failed_thresholds()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(failed, vec!["pairing_p95"]);
    assert!(RunReport::merge(&[]).is_err());
    let mut other = a.clone();
    other.scenario.name = "else".into();
    assert!(matches!(
        RunReport::merge(&[a, other]),
        Err(ReportError::Merge(_))
    ));
}

#[test]
fn junit_has_a_case_per_threshold_one_for_invariants_and_one_for_saturation() {
    let mut report = report(2, 100);
    report.invariants.violations.push(Violation::NoOutcome {
        arrival: 7,
        member: 0,
    });
    report.passed = false;
    let xml = junit::render(&report);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"sim\" tests=\"7\" failures=\"3\""), "{xml}");
    assert!(
        xml.contains(
            "<testsuite name=\"sim.unit\" tests=\"7\" failures=\"3\" errors=\"0\" skipped=\"0\""
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase classname=\"sim.unit.thresholds\" name=\"pairing_p95 &lt;= 1s\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure type=\"threshold\" message=\"timeout_rate was 33.333% (1 of 3), above the limit of 20%\">"),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<failure type=\"threshold\" message=\"min_matched: 2 players matched, fewer than 3\">"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<failure type=\"invariant\" message=\"1 invariant violations\">player 7/0 ended with no outcome</failure>"),
        "{xml}"
    );
    assert_eq!(
        xml.matches("<testcase ").count(),
        7,
        "one case per threshold (defaults included), invariants, saturation"
    );
    assert!(
        xml.contains("name=\"saturation\" time=\"0\">\n      <system-out>OK: "),
        "{xml}"
    );
    // A saturated run: the saturation case is skipped with the verdict, not failed.
    report.saturation.warned = true;
    report.saturation.lagged_starts = 4;
    report.judge();
    let xml = junit::render(&report);
    assert!(
        xml.contains("failures=\"3\" errors=\"0\" skipped=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<skipped message=\"results not trustworthy: SATURATED: 4 players started more than 50 ms late"),
        "{xml}"
    );
    assert_eq!(
        junit::escape("a<b & \"c\"\u{1}"),
        "a&lt;b &amp; &quot;c&quot;"
    );
}

#[test]
fn summary_and_html_mention_what_matters() {
    let report = report(10, 100);
    let text = summary::render(&report);
    assert!(text.starts_with("sim: unit — PASS"), "{text}");
    assert!(text.contains("PASS  pairing_p95 <= 1s"), "{text}");
    assert!(
        text.contains("invariants PASS (11 players, 10 sessions)"),
        "{text}"
    );
    let page = html::render(&report);
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("id=\"chart-latency\""));
    assert!(page.contains("uPlot"));
}

/// A run whose players all failed (no server was free) sets no limit on failures, yet fails, and
/// the summary says why, from the matchmaker's codes.
#[test]
fn failed_players_fail_the_run_and_the_summary_names_why() {
    let plan = Plan::parse(
        "version = 1\nname = \"unit\"\n[run]\nduration = \"5s\"\n",
        "unit.toml",
        Path::new("."),
    )
    .expect("valid");
    let (mut collector, recorders) = Collector::new(1);
    let reasons = [510520, 510520, 510520, 510525];
    for (i, code) in reasons.into_iter().enumerate() {
        let i = i as u64;
        recorders[0].arrival(i, 1, Duration::ZERO);
        recorders[0].finish(
            PlayerRecord {
                arrival: i,
                member: 0,
                outcome: Outcome::Failed,
                error: None,
                session: None,
                answered: None,
                found: Vec::new(),
                found_at_ms: None,
                answered_at_ms: None,
                dsmc_server: None,
            },
            Some(crate::outcome::FailReason::from_code(Some(code))),
        );
    }
    collector.drain();
    collector.finish();
    let started: Vec<(u64, u16)> = (0..4).map(|i| (i, 1)).collect();
    let inv = invariants::check(&started, &collector.records, &collector.releases);
    let report = RunReport::build(&plan, &collector, inv, Vec::new(), 5_000, Vec::new());
    assert!(!report.passed, "{:?}", report.thresholds);
    assert_eq!(
        report.failure_reasons,
        BTreeMap::from([
            ("claim_unreachable".to_owned(), 1),
            ("no_capacity".to_owned(), 3)
        ])
    );
    assert_eq!(report.outcomes.failed_claim, 4);
    let text = summary::render(&report);
    assert!(text.starts_with("sim: unit — FAIL"), "{text}");
    assert!(
        text.contains("failures   no_capacity 3, claim_unreachable 1"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  failure_rate <= 1% (default)"),
        "{text}"
    );
    // The reasons survive a merge.
    let merged = RunReport::merge(&[report.clone(), report]).expect("merge");
    assert_eq!(merged.failure_reasons["no_capacity"], 6);
    assert!(!merged.passed);
}
