//! The engine and the player state machine over real sockets: an embedded fakes plus the test
//! double of the tutorial's HTTP contract, plugged in through the embedded seam.

use std::path::Path;
use std::time::Duration;

use sim::engine::{Engine, EngineCommand, EngineOptions};
use sim::metrics::Phase;
use sim::report::RunReport;
use sim::scenario::Plan;
use sim::target::TargetOptions;
use tokio_util::sync::CancellationToken;

use crate::double;

fn plan(text: &str) -> Plan {
    Plan::parse(text, "e2e.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn options(wait: Duration) -> EngineOptions {
    EngineOptions {
        target: TargetOptions {
            matchmaker: double::starter(wait),
            ..TargetOptions::default()
        },
        snapshot_every: Duration::from_millis(100),
        ..EngineOptions::default()
    }
}

async fn run(plan: Plan, wait: Duration) -> RunReport {
    Engine::new(plan, options(wait))
        .run(CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_pair_end_to_end_through_login_lobby_request_and_found() {
    let plan = plan(
        r#"
version = 1
name = "e2e"
[run]
duration = "2s"
seed = 5
drain = "10s"
workers = 2
[target]
source_addresses = 2
[target.fleet]
regions = [{ name = "us-east-1", servers = 50 }]
[population]
arrival = { kind = "constant", rate = 10 }
[population.behaviour]
login = "pkce"
request_timeout = "10s"
verify_server = 1.0
linger = "200ms"
match_length = "200ms"
[thresholds]
error_rate = 0
timeout_rate = 0
claim_failure_rate = 0
pairing_p99 = "5s"
min_matched = 20
"#,
    );
    let engine = Engine::new(plan, options(Duration::from_secs(5)));
    let mut snapshots = engine.snapshots();
    let watcher = tokio::spawn(async move {
        let mut phases = Vec::new();
        let mut max_sockets = 0;
        while snapshots.changed().await.is_ok() {
            let s = snapshots.borrow_and_update().clone();
            max_sockets = max_sockets.max(s.open_sockets);
            if phases.last() != Some(&s.phase) {
                phases.push(s.phase);
            }
            if s.phase == Phase::Finished {
                break;
            }
        }
        (phases, max_sockets)
    });
    let report = engine.run(CancellationToken::new()).await.expect("run");
    let (phases, max_sockets) = watcher.await.expect("watcher");

    assert!(report.passed, "{}", sim::report::summary::render(&report));
    assert_eq!(report.players, 20);
    assert_eq!(report.outcomes.matched, 20);
    assert_eq!(report.outcomes.error, 0, "{:?}", report.errors);
    assert_eq!(report.pairing.count, 20);
    assert_eq!(report.endpoints["login"].calls, 20);
    assert_eq!(report.endpoints["lobby_connect"].calls, 20);
    assert_eq!(report.endpoints["matchmaking"].calls, 20);
    assert_eq!(
        report.counters.verified, 20,
        "every matched party checked DSMC"
    );
    let claims = report.claims.expect("claims read from the embedded fakes");
    assert_eq!((claims.attempted, claims.failed()), (10, 0));
    assert_eq!(report.invariants.players, 20);
    assert_eq!(report.invariants.sessions, 10);
    assert!(report.invariants.violations.is_empty());
    assert!(!report.series.is_empty());
    assert!(max_sockets > 0, "sockets were counted while open");
    assert!(phases.contains(&Phase::Running), "{phases:?}");
    assert_eq!(phases.last(), Some(&Phase::Finished), "{phases:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lonely_player_retries_after_408_then_times_out_and_another_cancels() {
    // One arrival at 0.5 s, nobody to pair with: 408 after 300 ms, twice retried.
    let lonely = plan(
        r#"
version = 1
[run]
duration = "1s"
drain = "10s"
workers = 1
[population]
arrival = { kind = "constant", rate = 1 }
[population.behaviour]
login = "password"
retry_on_timeout = { max = 2, delay = "50ms" }
[thresholds]
timeout_rate = 0.5
"#,
    );
    let report = run(lonely, Duration::from_millis(300)).await;
    assert_eq!(report.players, 1);
    assert_eq!(report.outcomes.timed_out, 1);
    assert_eq!(report.counters.retries, 2);
    assert_eq!(report.endpoints["matchmaking"].calls, 3);
    assert!(!report.passed, "a 100% timeout rate breaks the 50% limit");
    assert_eq!(
        report
            .failed_thresholds()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["timeout_rate"]
    );

    // The double would wait 5 s; the player gives up after 200 ms.
    let impatient = plan(
        r#"
version = 1
[run]
duration = "1s"
drain = "10s"
workers = 1
[population]
arrival = { kind = "constant", rate = 1 }
[population.behaviour]
login = "password"
cancel = { probability = 1.0, after = "200ms" }
"#,
    );
    let report = run(impatient, Duration::from_secs(5)).await;
    assert_eq!(report.outcomes.cancelled, 1);
    assert!(report.invariants.violations.is_empty());
    assert!(report.passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_timeline_makes_every_claim_fail() {
    let plan = plan(
        r#"
version = 1
[run]
duration = "1s"
drain = "10s"
workers = 2
[population]
arrival = { kind = "constant", rate = 4 }
[population.behaviour]
login = "password"
[[faults]]
at = "0s"
label = "no claims"
kind = "claim_outcome"
unreachable = 1.0
[thresholds]
claim_failure_rate = 0.5
"#,
    );
    let report = run(plan, Duration::from_secs(5)).await;
    assert_eq!(report.faults.len(), 1);
    assert!(report.faults[0].applied, "{:?}", report.faults[0]);
    assert_eq!(report.faults[0].id, "sim-1");
    assert_eq!(
        report.outcomes.failed,
        4,
        "{}",
        sim::report::summary::render(&report)
    );
    assert_eq!(report.outcomes.failed_claim, 4);
    let claims = report.claims.expect("claims");
    assert_eq!(claims.attempted, 2);
    assert_eq!(claims.unreachable, 2);
    assert_eq!(
        report.failure_reasons["claim_failed"], 4,
        "from the double's error code"
    );
    assert!(!report.passed);
    let failed: Vec<(&str, bool)> = report
        .thresholds
        .iter()
        .filter(|t| !t.passed())
        .map(|t| (t.name.as_str(), t.default))
        .collect();
    // The scenario's claim limit, and the default limit on failed matches it did not set.
    assert_eq!(
        failed,
        [("failure_rate", true), ("claim_failure_rate", false)]
    );
    let text = sim::report::summary::render(&report);
    assert!(text.contains("failures   claim_failed 4"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pause_resume_and_stop_a_run() {
    let plan = plan(
        r#"
version = 1
[run]
duration = "60s"
drain = "10s"
workers = 2
[population]
arrival = { kind = "constant", rate = 20 }
[population.behaviour]
login = "password"
match_length = "forever"
"#,
    );
    let engine = Engine::new(plan, options(Duration::from_secs(2)));
    let commands = engine.commands();
    let mut snapshots = engine.snapshots();
    let driver = tokio::spawn(async move {
        let probe = snapshots.clone();
        let wait_for = |phase: Phase| {
            let mut rx = probe.clone();
            async move {
                rx.wait_for(|s| s.phase == phase)
                    .await
                    .expect("engine alive");
            }
        };
        wait_for(Phase::Running).await;
        commands.send(EngineCommand::Pause).await.expect("pause");
        wait_for(Phase::Paused).await;
        let arrived = snapshots.borrow_and_update().arrived;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let later = snapshots.borrow_and_update().arrived;
        commands.send(EngineCommand::Resume).await.expect("resume");
        commands
            .send(EngineCommand::SetRate(40.0))
            .await
            .expect("rate");
        wait_for(Phase::Running).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        commands.send(EngineCommand::Stop).await.expect("stop");
        (arrived, later)
    });
    let started = std::time::Instant::now();
    let report = engine.run(CancellationToken::new()).await.expect("run");
    let (arrived, later) = driver.await.expect("driver");
    assert!(
        later <= arrived + 2,
        "paused arrivals: {arrived} then {later}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "stopped early");
    assert!(report.players > 0);
    assert!(
        report.invariants.violations.is_empty(),
        "{:?}",
        report.invariants
    );
}

/// Under overload a player's matchmaking call can break (a timeout, a reset connection, a 503)
/// while the matchmaker goes on to build the match the ticket is in: the matchmaker finishes
/// a match it started building when the caller goes away, and the `found` still reaches the
/// player's socket — late, during that player's *next* search. Those `found`s were counted as
/// the next search's, so the check reported the player as sent two servers (`two_servers`) and
/// the next session as split (`match_split`). The double abandons the first request this way:
/// its player (P1) is matched with the second caller, who gets the 200 and is then in its
/// game (a long `match_length` keeps that server taken); P1 gets a 503, calls again, hears the
/// owed `found` first, and is matched with the third player on another server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_found_of_an_abandoned_request_is_not_a_second_server() {
    let plan = plan(
        r#"
version = 1
[run]
duration = "1s"
drain = "10s"
workers = 1
[target.fleet]
regions = [{ name = "us-east-1", servers = 50 }]
[population]
arrival = { kind = "closed", players = 3, ramp_up = "10ms", think = "50ms" }
[population.behaviour]
login = "password"
request_timeout = "10s"
match_length = "60s"
linger = "100ms"
"#,
    );
    let options = EngineOptions {
        target: TargetOptions {
            matchmaker: double::late_found_starter(Duration::from_secs(2)),
            ..TargetOptions::default()
        },
        snapshot_every: Duration::from_millis(100),
        ..EngineOptions::default()
    };
    let report = Engine::new(plan, options)
        .run(CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let text = sim::report::summary::render(&report);
    assert_eq!(report.outcomes.error, 1, "the abandoned request: {text}");
    assert_eq!(report.outcomes.matched, 3, "{text}");
    assert_eq!(report.invariants.sessions, 2, "{text}");
    assert_eq!(
        report.counters.stray_found, 1,
        "the abandoned request's found arrived in the next search: {text}"
    );
    assert_eq!(report.invariants.violations, Vec::new(), "{text}");
}

/// An engine holding its start (a worker of a multi-process run) prepares, says it is ready,
/// and schedules no arrival until it is told to start; then it runs as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_start_waits_for_the_start_command() {
    let plan = plan(
        r#"
version = 1
name = "held"
[run]
duration = "1s"
seed = 3
drain = "10s"
workers = 1
[population]
arrival = { kind = "constant", rate = 10 }
[population.behaviour]
request_timeout = "10s"
"#,
    );
    let mut options = options(Duration::from_secs(5));
    options.hold_start = true;
    let engine = Engine::new(plan, options);
    let mut snapshots = engine.snapshots();
    let commands = engine.commands();
    let run = tokio::spawn(engine.run(CancellationToken::new()));

    let ready = tokio::time::timeout(Duration::from_secs(30), snapshots.wait_for(|s| s.ready))
        .await
        .expect("ready in time")
        .expect("snapshots")
        .clone();
    assert_eq!(ready.phase, Phase::Preparing);
    assert_eq!(ready.arrived, 0, "nothing arrives before the start");

    commands
        .send(EngineCommand::Start)
        .await
        .expect("engine listens");
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("finished in time")
        .expect("run task")
        .expect("run");
    assert_eq!(report.players, 10);
    assert_eq!(report.outcomes.matched, 10);
}
