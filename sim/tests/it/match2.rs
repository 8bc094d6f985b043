//! The `flow = "match2"` player flow end to end against the embedded fakes: the pool set up at
//! start, match tickets, `OnMatchFound`, joining the game session and its server from the
//! fleet — and the outcomes when the server cannot be had or no opponent comes; parties formed
//! over Session v2 queueing one ticket each.

use std::path::Path;
use std::time::Duration;

use sim::engine::{Engine, EngineOptions};
use sim::report::RunReport;
use sim::scenario::Plan;
use sim::target::TargetOptions;
use tokio_util::sync::CancellationToken;

use crate::double;

/// A match2 scenario with `extra` appended (faults, thresholds).
fn plan(duration: &str, rate: u32, expiry: &str, extra: &str) -> Plan {
    let text = format!(
        r#"
version = 1
name = "match2-e2e"
[run]
duration = "{duration}"
seed = 3
drain = "10s"
workers = 2
[target.fleet]
regions = [{{ name = "us-east-1", servers = 20 }}]
ready_delay = "50ms"
[target.match2]
pool = "duel-e2e"
ticket_expiration = "{expiry}"
ds_timeout = "5s"
[target.match2.ruleset]
alliance = {{ min_number = 2, max_number = 2, player_min_number = 1, player_max_number = 1 }}
[population]
arrival = {{ kind = "constant", rate = {rate} }}
modes = [{{ name = "duel" }}]
[population.behaviour]
flow = "match2"
login = "password"
request_timeout = "10s"
match_length = "300ms"
{extra}
"#
    );
    Plan::parse(&text, "match2-e2e.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(plan: Plan) -> RunReport {
    let options = EngineOptions {
        target: TargetOptions {
            // The tutorial matchmaker is not called by this flow; the double keeps it light.
            matchmaker: double::starter(Duration::from_secs(1)),
            ..TargetOptions::default()
        },
        snapshot_every: Duration::from_millis(100),
        ..EngineOptions::default()
    };
    Engine::new(plan, options)
        .run(CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solo_players_match_join_and_get_a_server() {
    let report = run(plan(
        "2s",
        5,
        "10s",
        "[thresholds]\nerror_rate = 0\ntimeout_rate = 0\nclaim_failure_rate = 0\nmin_matched = 10",
    ))
    .await;
    let summary = sim::report::summary::render(&report);
    assert!(report.passed, "{summary}");
    assert_eq!(report.players, 10, "{summary}");
    assert_eq!(report.outcomes.matched, 10, "{summary}");
    assert_eq!(report.pairing.count, 10, "{summary}");
    for endpoint in [
        "login",
        "lobby_connect",
        "match_ticket",
        "game_session",
        "ds_ready",
    ] {
        assert_eq!(
            report.endpoints[endpoint].calls, 10,
            "{endpoint}: {summary}"
        );
    }
    assert!(!report.endpoints.contains_key("matchmaking"), "{summary}");
    // Every server came from the fleet through a claim, one per session.
    let claims = report.claims.expect("claims read from the embedded fakes");
    assert_eq!((claims.attempted, claims.failed()), (5, 0), "{summary}");
    assert_eq!(report.invariants.players, 10);
    assert_eq!(report.invariants.sessions, 5);
    assert!(report.invariants.violations.is_empty(), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_claim_fails_both_players_of_the_session() {
    let report = run(plan(
        "1s",
        4,
        "10s",
        "[[faults]]\nat = \"0s\"\nkind = \"claim_outcome\"\nunreachable = 1.0",
    ))
    .await;
    let summary = sim::report::summary::render(&report);
    assert_eq!(report.players, 4, "{summary}");
    assert_eq!(report.outcomes.failed, 4, "{summary}");
    assert_eq!(report.outcomes.failed_claim, 4, "{summary}");
    assert_eq!(report.outcomes.matched, 0, "{summary}");
    assert!(!report.endpoints.contains_key("ds_ready"), "{summary}");
    // Each failed player still names its one session: two players per session.
    assert_eq!(report.invariants.sessions, 2, "{summary}");
    assert!(report.invariants.violations.is_empty(), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_without_an_opponent_expires_as_a_timeout() {
    // One arrival: nobody to match with, so the ticket expires after a second.
    let report = run(plan("1s", 1, "1s", "")).await;
    let summary = sim::report::summary::render(&report);
    assert_eq!(report.players, 1, "{summary}");
    assert_eq!(report.outcomes.timed_out, 1, "{summary}");
    assert_eq!(report.outcomes.error, 0, "{summary}");
    assert_eq!(report.pairing.count, 0, "{summary}");
    assert!(report.invariants.violations.is_empty(), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matchmakers_extend_function_makes_the_matches() {
    // The real embedded matchmaker: it serves the match function over gRPC, the target
    // registers it with fakes, and the pool names it (a pool naming an unregistered function
    // could not be created, so a run that matches used it).
    let text = r#"
version = 1
name = "match2-extend-e2e"
[run]
duration = "1s"
seed = 3
drain = "10s"
[target.fleet]
regions = [{ name = "us-east-1", servers = 20 }]
ready_delay = "50ms"
[target.match2]
pool = "duel-extend"
match_function = "matchmaker"
ticket_expiration = "10s"
ds_timeout = "5s"
[target.match2.ruleset]
alliance = { min_number = 2, max_number = 2, player_min_number = 1, player_max_number = 1 }
mmr_window = { start = 1000, widen_per_sec = 0, max = 1000 }
[population]
arrival = { kind = "constant", rate = 6 }
modes = [{ name = "duel" }]
[population.behaviour]
flow = "match2"
login = "password"
request_timeout = "10s"
match_length = "300ms"
[thresholds]
error_rate = 0
timeout_rate = 0
min_matched = 6
"#;
    let plan =
        Plan::parse(text, "match2-extend.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let options = EngineOptions {
        snapshot_every: Duration::from_millis(100),
        ..EngineOptions::default()
    };
    let report = Engine::new(plan, options)
        .run(CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let summary = sim::report::summary::render(&report);
    assert!(report.passed, "{summary}");
    assert_eq!(report.outcomes.matched, 6, "{summary}");
    assert!(report.invariants.violations.is_empty(), "{summary}");
    let function = report
        .scenario
        .match_function
        .as_deref()
        .unwrap_or_default();
    assert!(
        function.starts_with("matchmaker (") && function.contains("tokens checked"),
        "{summary}"
    );
    assert!(summary.contains("match fn   matchmaker"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_form_over_session_v2_and_queue_one_ticket_each() {
    // Parties of two in a 2v2 pool: each match is two parties, one per team.
    let scenario = r#"
version = 1
name = "match2-parties-e2e"
[run]
duration = "1s"
seed = 5
drain = "10s"
workers = 2
[target.fleet]
regions = [{ name = "us-east-1", servers = 20 }]
ready_delay = "50ms"
[target.match2]
pool = "duo-e2e"
ticket_expiration = "10s"
ds_timeout = "5s"
[target.match2.ruleset]
alliance = { min_number = 2, max_number = 2, player_min_number = 2, player_max_number = 2 }
[population]
arrival = { kind = "constant", rate = 4 }
modes = [{ name = "duo", party_sizes = [{ size = 2, weight = 1 }] }]
[population.behaviour]
flow = "match2"
login = "password"
request_timeout = "10s"
match_length = "300ms"
[thresholds]
error_rate = 0
timeout_rate = 0
min_matched = 8
"#;
    let plan = Plan::parse(scenario, "match2-parties-e2e.toml", Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    let report = run(plan).await;
    let summary = sim::report::summary::render(&report);
    assert!(report.passed, "{summary}");
    assert_eq!(report.players, 8, "{summary}");
    assert_eq!(report.outcomes.matched, 8, "{summary}");
    // One ticket per party, created by its leader.
    assert_eq!(report.endpoints["match_ticket"].calls, 4, "{summary}");
    // Per party: create, invite, the leader's wait, the member's check of the invite, join.
    assert_eq!(report.endpoints["party"].calls, 20, "{summary}");
    assert_eq!(report.endpoints["party"].errors, 0, "{summary}");
    // Every member joins the game session and sees its server.
    assert_eq!(report.endpoints["game_session"].calls, 8, "{summary}");
    assert_eq!(report.invariants.players, 8);
    assert_eq!(report.invariants.sessions, 2, "{summary}");
    assert!(report.invariants.violations.is_empty(), "{summary}");
}
