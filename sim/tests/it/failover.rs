//! Several matchmaker URLs: players spread over them and fail over to the next when one cannot
//! be reached, the way a client behind a load balancer would.

use std::path::Path;
use std::time::Duration;

use sim::engine::{Engine, EngineOptions};
use sim::scenario::Plan;
use tokio_util::sync::CancellationToken;

use crate::double;

/// A URL on 127.0.0.1 where nothing listens: bound, then closed.
fn closed_port_url() -> url::Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    url::Url::parse(&format!("http://{addr}/matchmaking")).expect("url")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_fail_over_from_an_unreachable_matchmaker_and_all_match() {
    let fakes = fakes::spawn(fakes::FakesConfig::default())
        .await
        .expect("fakes");
    let base: url::Url = fakes.base_url().parse().expect("url");
    let mm = double::spawn(&base, Duration::from_secs(5), 0).await;
    let dead = closed_port_url();
    let text = format!(
        r#"
version = 1
name = "failover"
[run]
duration = "2s"
seed = 3
drain = "10s"
workers = 2
[target]
kind = "urls"
fakes = "{base}"
matchmaker = ["{dead}", "{live}"]
[population]
arrival = {{ kind = "constant", rate = 6 }}
[population.behaviour]
login = "password"
match_length = "forever"
[thresholds]
error_rate = 0
timeout_rate = 0
"#,
        live = mm.url
    );
    let plan =
        Plan::parse(&text, "failover.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let report = Engine::new(plan, EngineOptions::default())
        .run(CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert!(report.passed, "{}", sim::report::summary::render(&report));
    assert_eq!(report.players, 12);
    assert_eq!(report.outcomes.matched, 12, "{:?}", report.errors);
    assert_eq!(mm.state.matches(), 6);
    // Arrivals with an even id start at the dead URL (the first in the list) and move on.
    assert_eq!(
        report.failovers.get(dead.as_str()).copied(),
        Some(report.arrivals.div_ceil(2)),
        "{:?}",
        report.failovers
    );
    assert_eq!(report.failovers.len(), 1, "the live URL never failed");
    // A failover is part of one call, not a call of its own.
    assert_eq!(report.endpoints["matchmaking"].calls, 12);
    assert!(report.invariants.passed());
    drop(mm);
    drop(fakes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_unreachable_url_requests_fail_as_before_without_failovers() {
    let fakes = fakes::spawn(fakes::FakesConfig::default())
        .await
        .expect("fakes");
    let base: url::Url = fakes.base_url().parse().expect("url");
    let dead = closed_port_url();
    let text = format!(
        r#"
version = 1
[run]
duration = "1s"
drain = "5s"
workers = 1
[target]
kind = "urls"
fakes = "{base}"
matchmaker = "{dead}"
[population]
arrival = {{ kind = "constant", rate = 2 }}
[population.behaviour]
login = "password"
"#
    );
    let plan = Plan::parse(&text, "one.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let report = Engine::new(plan, EngineOptions::default())
        .run(CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.players, 2);
    assert_eq!(report.outcomes.error, 2);
    assert!(report.failovers.is_empty(), "{:?}", report.failovers);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.endpoint == "matchmaking" && e.kind == "transport"),
        "{:?}",
        report.errors
    );
    drop(fakes);
}
