//! Past capacity, over real processes and sockets: a process that runs short of open files is
//! named in the verdict with that limit, and a server that refuses at its connection cap is
//! counted as the system under test refusing, apart from the generator's own failures.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sim::engine::{Engine, EngineOptions};
use sim::scenario::Plan;
use sim::verdict::{Limit, Side};
use tokio_util::sync::CancellationToken;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-it-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Players that never match (a mode of 50 per team), so each keeps its lobby socket and its
/// matchmaking request open until the request times out.
const NO_MATCH_MODE: &str =
    r#"modes = [{ name = "big", teams = 2, team_size = 50, timeout = "4s" }]"#;

#[test]
fn a_process_short_of_open_files_is_named_with_that_limit() {
    let dir = temp_dir("open-files");
    let scenario = dir.join("short.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
version = 1
name = "short-of-files"
[run]
duration = "3s"
seed = 5
drain = "10s"
workers = 2
progress_every = "1s"
[target]
kind = "embedded"
[target.matchmaker]
{NO_MATCH_MODE}
[population]
arrival = {{ kind = "constant", rate = 40 }}
modes = [{{ name = "big" }}]
[population.behaviour]
login = "password"
request_timeout = "5s"
"#
        ),
    )
    .expect("write scenario");
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", "--headless", "--workers", "1"])
        .arg(&scenario)
        .arg("--report")
        .arg(&report)
        // 120 players hold about 4 descriptors each here: far past 200.
        .env("SIM_OPEN_FILES", "200")
        .output()
        .expect("run sim");
    assert_ne!(out.status.code(), Some(2), "{out:?}");
    let report = sim::report::RunReport::read_json(&report).expect("the report");
    let single = &report.processes[0];
    assert_eq!(single.role, "single");
    assert_eq!(single.open_files_limit, Some(200), "{single:?}");
    let v = &report.verdict;
    assert!(v.saturated() && !v.trustworthy, "{v:?}");
    let named = v
        .findings
        .iter()
        .find(|f| f.limit == Limit::OpenFiles && f.who.starts_with("single"))
        .unwrap_or_else(|| panic!("no open-files finding naming the process: {v:?}"));
    assert_eq!(named.side, Side::Generator);
    assert!(v.headline.starts_with("SATURATED: "), "{}", v.headline);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("verdict    SATURATED") && stdout.contains("[results NOT trustworthy]"),
        "{stdout}"
    );
}

/// `sim stack` in a process of its own with a low open-files limit, so its servers' connection
/// caps (the limit less their reserves) are small.
struct CappedStack {
    child: Child,
    /// Kept open: `sim stack` must not write into a closed pipe.
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
    fakes: url::Url,
    matchmaker: url::Url,
}

impl Drop for CappedStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn capped_stack(scenario: &Path, open_files: u32) -> CappedStack {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["stack", "--lobby-shards", "0", "--replicas", "0"])
        .arg(scenario)
        .env("SIM_OPEN_FILES", open_files.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sim stack");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut url_of = |prefix: &str| -> url::Url {
        let line = lines
            .next()
            .expect("a line from sim stack")
            .expect("readable");
        let url = line
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
        url.trim().parse().expect("a URL")
    };
    let fakes = url_of("fakes");
    let matchmaker = url_of("matchmaker");
    CappedStack {
        child,
        _stdout: lines,
        fakes,
        matchmaker,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_servers_503s_count_as_the_system_under_test_refusing() {
    let dir = temp_dir("capped");
    let stack_file = dir.join("stack.toml");
    std::fs::write(
        &stack_file,
        format!(
            r#"
version = 1
name = "capped-stack"
[run]
duration = "1s"
[target]
kind = "embedded"
[target.matchmaker]
{NO_MATCH_MODE}
[population]
arrival = {{ kind = "constant", rate = 1 }}
modes = [{{ name = "big" }}]
"#
        ),
    )
    .expect("write");
    // The fakes keep 512 descriptors out of their cap: 600 leaves room for 88 connections.
    let stack = capped_stack(&stack_file, 600);
    let text = format!(
        r#"
version = 1
name = "capped"
[run]
duration = "3s"
seed = 9
drain = "10s"
workers = 2
[target]
kind = "urls"
fakes = "{fakes}"
matchmaker = "{matchmaker}"
[population]
arrival = {{ kind = "closed", players = 150, ramp_up = "1s", think = "1s" }}
modes = [{{ name = "big" }}]
[population.behaviour]
login = "password"
request_timeout = "5s"
"#,
        fakes = stack.fakes,
        matchmaker = stack.matchmaker
    );
    let plan = Plan::parse(&text, "capped.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let report = Engine::new(plan, EngineOptions::default())
        .run(CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let refused_503: u64 = report
        .errors
        .iter()
        .filter(|e| e.kind == "http_503")
        .map(|e| e.count)
        .sum();
    assert!(refused_503 > 0, "{:?}", report.errors);
    let sut = report.sut.expect("the servers' counters were read");
    assert!(
        sut.fakes_refused_over_cap.is_some_and(|n| n > 0),
        "the fakes counted refusals at their cap: {sut:?}"
    );
    let v = &report.verdict;
    let refusal = v
        .findings
        .iter()
        .find(|f| f.side == Side::Sut && f.limit == Limit::Refusal && f.who == "fakes")
        .unwrap_or_else(|| panic!("no refusal finding for the fakes: {v:?}"));
    assert!(
        refusal.message.contains("got 429/503 from the fakes"),
        "{refusal:?}"
    );
    assert!(v.headline.contains("SUT REFUSED: "), "{}", v.headline);
    // The refusals are the server's answer, not this process running out of descriptors.
    assert!(
        !v.findings
            .iter()
            .any(|f| f.side == Side::Generator && f.limit == Limit::OpenFiles),
        "{v:?}"
    );
    assert!(
        report.errors.iter().all(|e| e.kind != "local_resources"),
        "{:?}",
        report.errors
    );
}
