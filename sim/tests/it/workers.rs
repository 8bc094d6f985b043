//! `sim run --workers N`: worker processes started and supervised by one `sim run`, their
//! figures merged into one report, and a worker that dies or goes quiet failing the run.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sim::metrics;
use sim::report::RunReport;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A small embedded scenario: `rate` solo players a second for `duration`.
fn scenario(dir: &Path, duration: &str, rate: u32) -> PathBuf {
    let file = dir.join("small.toml");
    std::fs::write(
        &file,
        format!(
            r#"# small: do two worker processes add up to one run?
version = 1
name = "small"
[run]
duration = "{duration}"
seed = 4
drain = "10s"
workers = 2
progress_every = "1s"
[target]
kind = "embedded"
[target.fleet]
regions = [{{ name = "us-east-1", servers = 200 }}]
[target.matchmaker]
modes = [{{ name = "1v1", teams = 2, team_size = 1, timeout = "10s" }}]
[population]
arrival = {{ kind = "constant", rate = {rate} }}
[population.behaviour]
login = "password"
request_timeout = "15s"
match_length = "1s"
verify_server = 0.5
[thresholds]
error_rate = 0
timeout_rate = 0
"#
        ),
    )
    .expect("write");
    file
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn two_workers_make_one_report_equal_to_merging_theirs() {
    let dir = temp_dir("workers2");
    let file = scenario(&dir, "3s", 8);
    let report = dir.join("report.json");
    let parts = dir.join("parts");
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "run",
            "--headless",
            "--workers",
            "2",
            &path(&file),
            "--report",
            &path(&report),
            "--worker-reports",
            &path(&parts),
        ])
        .output()
        .expect("run sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("worker 0 started (pid"), "{stderr}");
    assert!(stderr.contains("worker 1 started (pid"), "{stderr}");

    let merged = RunReport::read_json(&report).expect("merged report");
    let a = RunReport::read_json(&parts.join("worker-0.json")).expect("worker 0");
    let b = RunReport::read_json(&parts.join("worker-1.json")).expect("worker 1");

    // The players are split, not repeated, and all matched.
    assert_eq!(merged.shards, 2);
    assert_eq!(merged.players, 24);
    assert!(
        a.players > 0 && b.players > 0,
        "{} + {}",
        a.players,
        b.players
    );
    assert_eq!(merged.players, a.players + b.players);
    assert_eq!(
        merged.outcomes.matched,
        a.outcomes.matched + b.outcomes.matched
    );
    assert_eq!(merged.outcomes.matched, 24, "{:?}", merged.errors);
    assert_eq!(merged.scenario.target, "embedded");

    // The invariant check ran over every worker's outcomes at once.
    assert!(merged.invariants.passed(), "{:?}", merged.invariants);
    assert_eq!(merged.invariants.players, 24);
    assert_eq!(merged.invariants.sessions, 12);
    assert!(merged.passed);

    // The merged histogram is the exact sum of the workers', bucket for bucket.
    let mut manual = metrics::decode(&a.pairing_histogram).expect("a");
    metrics::merge_into(
        &mut manual,
        &metrics::decode(&b.pairing_histogram).expect("b"),
    );
    assert_eq!(
        metrics::decode(&merged.pairing_histogram).expect("merged"),
        manual
    );
    assert_eq!(merged.pairing_histogram, metrics::encode(&manual));
    assert_eq!(merged.pairing.count, 24);

    // Every process is listed with what it cost.
    let roles: Vec<&str> = merged.processes.iter().map(|p| p.role.as_str()).collect();
    assert_eq!(roles, ["parent", "worker 0", "worker 1"]);
    for p in &merged.processes {
        assert!(
            p.pid > 0 && p.peak_rss_bytes > 0 && p.cpu_seconds > 0.0,
            "{p:?}"
        );
    }
    assert!(stdout.contains("process    parent"), "{stdout}");
    assert!(stdout.contains("process    worker 1"), "{stdout}");

    // `sim merge` of the workers' reports gives the same figures.
    let again = dir.join("again.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "merge",
            &path(&parts.join("worker-0.json")),
            &path(&parts.join("worker-1.json")),
            "--report",
            &path(&again),
        ])
        .output()
        .expect("sim merge");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let again = RunReport::read_json(&again).expect("merge report");
    assert_eq!(again.pairing_histogram, merged.pairing_histogram);
    assert_eq!(again.outcomes, merged.outcomes);
    assert_eq!(again.endpoints, merged.endpoints);
    assert_eq!(again.series, merged.series);
    assert_eq!(again.errors, merged.errors);
    assert_eq!(again.thresholds, merged.thresholds);
    assert_eq!(
        (again.arrivals, again.players),
        (merged.arrivals, merged.players)
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// Starts `sim run --workers 2` on a long scenario and returns it with the workers' pids, read
/// from its output as it announces them, and the rest of its output (stdout and stderr lines).
fn start_two_workers(
    dir: &Path,
    extra: &[&str],
) -> (
    std::process::Child,
    Vec<u32>,
    std::sync::mpsc::Receiver<String>,
) {
    let file = scenario(dir, "60s", 4);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", "--headless", "--workers", "2", &path(&file)])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sim");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if out_tx.send(line).is_err() {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut pids = Vec::new();
    let mut reporting = 0;
    let mut seen = Vec::new();
    // Both started and sending their figures (so both are set up and running players).
    while pids.len() < 2 || reporting < 2 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}; output so far:\n{}", seen.join("\n")));
        if let Some(rest) = line.split("started (pid ").nth(1) {
            pids.push(rest.trim_end_matches(')').parse().expect("pid"));
        }
        if line.starts_with("sim: worker") && line.ends_with(") reporting") {
            reporting += 1;
        }
        seen.push(line);
    }
    (child, pids, rx)
}

/// Whether `pid` is gone (or a zombie nobody needs to wait for any more).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sim run did not end in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rest_of(rx: &std::sync::mpsc::Receiver<String>) -> String {
    rx.iter().collect::<Vec<_>>().join("\n")
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_worker_fails_the_run_with_a_verdict_naming_it() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let dir = temp_dir("killed");
    let (mut child, pids, rx) = start_two_workers(&dir, &[]);
    let victim = pids[1];
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill worker 1");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let stderr = rest_of(&rx);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sim: worker 1 (pid {victim}) was killed by signal 9 (SIGKILL) before sending its report"
        )),
        "{stderr}"
    );
    // The other worker did not outlive the run.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(pids[0]) {
        assert!(
            Instant::now() < deadline,
            "worker 0 (pid {}) was left behind",
            pids[0]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[cfg(target_os = "linux")]
#[test]
fn a_worker_that_stops_reporting_fails_the_run() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let dir = temp_dir("stalled");
    let (mut child, pids, rx) = start_two_workers(&dir, &["--worker-stall-timeout", "2s"]);
    kill(Pid::from_raw(pids[0] as i32), Signal::SIGSTOP).expect("stop worker 0");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let stderr = rest_of(&rx);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sim: worker 0 (pid {}) stopped reporting: nothing for",
            pids[0]
        )),
        "{stderr}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in &pids {
        while !gone(*pid) {
            assert!(
                Instant::now() < deadline,
                "worker pid {pid} was left behind"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_drains_every_worker_into_one_report() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let dir = temp_dir("sigterm");
    let report = dir.join("report.json");
    let (mut child, pids, rx) = start_two_workers(&dir, &["--report", &path(&report)]);
    // Wait until players are matching, then ask the run to stop.
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}; stderr so far:\n{}", seen.join("\n")));
        let matching = line.contains("matched") && !line.contains("matched 0 ");
        seen.push(line);
        if matching {
            break;
        }
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("sigterm");
    let status = wait_exit(&mut child, Duration::from_secs(40));
    let output = rest_of(&rx);
    // A lone player cut off by the drain may break a threshold (exit 1); a worker never fails.
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "{}\n{output}",
        seen.join("\n")
    );
    assert!(!output.contains("sim: worker"), "{output}");
    let merged = RunReport::read_json(&report).expect("report");
    assert_eq!(merged.shards, 2);
    assert!(
        merged.players > 0 && merged.players < 240,
        "{}",
        merged.players
    );
    assert!(merged.invariants.passed(), "{:?}", merged.invariants);
    assert!(output.contains("interrupted, draining"), "{output}");
    for pid in &pids {
        assert!(gone(*pid), "worker pid {pid} outlived the run");
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[cfg(target_os = "linux")]
#[test]
fn workers_die_with_a_parent_that_is_killed_outright() {
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::Pid;

    // Orphans are handed to this process, so it can see how they ended.
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    let dir = temp_dir("orphans");
    let (mut child, pids, _rx) = start_two_workers(&dir, &[]);
    // Stopped workers cannot notice anything themselves, and a parent killed outright cleans
    // nothing up: only the kernel's parent-death signal can end them, with SIGKILL. (Without
    // it, the orphaned process group's SIGHUP would.)
    for pid in &pids {
        kill(Pid::from_raw(*pid as i32), Signal::SIGSTOP).expect("stop worker");
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill parent");
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in &pids {
        let status = loop {
            match waitpid(Pid::from_raw(*pid as i32), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => {
                    // Not yet handed over, or not yet dead.
                    assert!(
                        Instant::now() < deadline,
                        "worker pid {pid} outlived its parent: {:?} {:?}",
                        waitpid(Pid::from_raw(*pid as i32), Some(WaitPidFlag::WNOHANG)),
                        std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(WaitStatus::Stopped(..) | WaitStatus::Continued(..)) => {}
                Ok(status) => break status,
                Err(e) => panic!("waitpid {pid}: {e}"),
            }
        };
        assert_eq!(
            status,
            WaitStatus::Signaled(Pid::from_raw(*pid as i32), Signal::SIGKILL, false),
            "worker pid {pid}"
        );
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
