//! `sim capacity` end to end on a tiny embedded target whose knee is known: a fleet of three
//! game servers kept for ever holds three 1v1 matches per step, so a step of one second passes
//! at 4 and 6 arrivals a second and fails `min_matched` (every player, scaled to the step) at 8:
//! the fourth match finds no server. On a busy machine the generator of a debug build may start
//! a player late twice in a row; the search then ends on that saturation, naming it.

use std::path::PathBuf;
use std::process::Command;

use sim::capacity::{CapacityReport, LoadKind, StopReason};

#[test]
fn the_search_finds_a_fleet_limited_knee_within_its_time_limit() {
    let dir = std::env::temp_dir().join(format!("sim-it-capacity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("three-servers.toml");
    std::fs::write(
        &file,
        r#"# three-servers: how many 1v1 arrivals a second fit a fleet of three servers for a second?
version = 1
name = "three-servers"
[run]
duration = "1s"
seed = 3
drain = "3s"
workers = 1
[target]
kind = "embedded"
[target.fleet]
regions = [{ name = "us-east-1", servers = 3 }]
[target.matchmaker]
modes = [{ name = "1v1", teams = 2, team_size = 1, timeout = "2s" }]
[population]
arrival = { kind = "constant", rate = 4 }
[population.behaviour]
login = "password"
request_timeout = "3s"
match_length = "forever"
verify_server = 0.0
[thresholds]
timeout_rate = 0
error_rate = 0
min_matched = 4
"#,
    )
    .expect("write");
    let json = dir.join("capacity.json");
    let html = dir.join("capacity.html");
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["capacity", &file.display().to_string()])
        .args([
            "--step-duration",
            "1s",
            "--hold",
            "1s",
            "--time-limit",
            "28s",
        ])
        .args(["--factor", "2", "--precision", "0.5"])
        .arg("--report")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .expect("run sim capacity");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report = CapacityReport::read_json(&json).expect("capacity report");
    assert_eq!(report.load_kind, LoadKind::ArrivalRate);
    assert!(report.elapsed_ms <= 28_000, "{}", report.elapsed_ms);
    assert!(
        report.steps[0].passed || !report.steps[0].saturated.is_empty(),
        "{stdout}"
    );
    if report.stop_reason == StopReason::HarnessSaturated {
        // Saturation ended it: named, seen twice in a row at the same load, above any knee.
        let at = report.saturated_at.expect("where");
        assert!(!report.saturated_by.is_empty(), "{stdout}");
        let twice = report.steps.windows(2).any(|w| {
            w[0].load == at && w[1].load == at && w.iter().all(|s| !s.saturated.is_empty())
        });
        assert!(twice, "{stdout}");
        assert!(report.knee.is_none_or(|k| k < at), "{stdout}");
        assert!(stdout.contains("the harness saturated at"), "{stdout}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        return;
    }
    let judged: Vec<&sim::capacity::StepResult> = report
        .steps
        .iter()
        .filter(|s| s.saturated.is_empty())
        .collect();
    assert_eq!(judged[0].load, 4.0, "{stdout}");
    let at8 = judged
        .iter()
        .find(|s| s.load == 8.0)
        .expect("a step at 8/s");
    assert!(!at8.passed, "{stdout}");
    assert!(
        at8.failures.iter().any(|f| f.starts_with("min_matched")),
        "{:?}",
        at8.failures
    );
    // 6 arrivals need exactly the three servers.
    let knee = report.knee.expect("a knee");
    assert!(knee == 4.0 || knee == 6.0, "{stdout}");
    assert_eq!(report.stop_reason, StopReason::Confirmed, "{stdout}");
    assert!(report.confirmed);
    let last = report.steps.last().expect("steps");
    assert!(last.hold && last.load == knee && last.passed, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "result     knee {knee}/s (confirmed by a hold); the system under test fails at"
        )),
        "{stdout}"
    );
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("<svg") && page.contains(&format!("knee {knee}/s")));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn bad_search_flags_exit_2() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["capacity", &file.display().to_string(), "--factor", "1"])
        .output()
        .expect("run sim capacity");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--factor must be above 1"));
}
