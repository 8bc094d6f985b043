use std::path::Path;
use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;

const MINIMAL: &str = r#"
version = 1

[run]
duration = "10s"
"#;

fn parse(text: &str) -> Result<Plan, ScenarioError> {
    Plan::parse(text, "t.toml", Path::new("."))
}

/// `(line, field)` of every problem, and the rendered message.
fn problems(text: &str) -> (Vec<(usize, String)>, String) {
    let err = parse(text).expect_err("should be refused");
    let list = err
        .problems()
        .iter()
        .map(|p| (p.line, p.field.clone()))
        .collect();
    (list, err.to_string())
}

#[test]
fn minimal_scenario_takes_defaults() {
    let plan = parse(MINIMAL).expect("valid");
    assert_eq!(plan.name, "t");
    assert_eq!(plan.run.duration, Duration::from_secs(10));
    assert_eq!(plan.run.seed, 1);
    assert_eq!(plan.run.workers, DEFAULT_WORKERS);
    assert!(matches!(plan.target, TargetPlan::Embedded(_)));
    assert_eq!(plan.population.modes[0].name, "1v1");
    assert_eq!(plan.population.behaviour.login, LoginFlow::Pkce);
    assert_eq!(plan.thresholds, Thresholds::default());
    assert!(plan.faults.is_empty());
}

#[test]
fn full_scenario_reads_every_section() {
    let text = r#"
version = 1
name = "full"
description = "everything"

[run]
duration = "1m"
seed = 7
drain = "20s"
workers = 4

[target]
kind = "urls"
fakes = "http://127.0.0.1:8080"
matchmaker = "http://127.0.0.1:3000/"
namespace = "game"
accounts = "accounts.csv"
source_addresses = 4
player_client = { id = "pub" }
game_client = { id = "srv", secret = "s" }

[population]
arrival = { kind = "ramp", from = 0, stages = [{ to = 100, over = "30s" }, { to = 20, over = "30s" }] }
modes = [
  { name = "1v1", weight = 3 },
  { name = "5v5", weight = 1, party_sizes = [{ size = 1, weight = 0.5 }, { size = 5, weight = 0.5 }] },
]
mmr = { distribution = "normal", mean = 1500, stddev = 300, min = 0, max = 3000 }
regions = [{ name = "us-east-1", weight = 2 }, { name = "eu-west-1" }]

[population.behaviour]
login = "password"
cancel = { after = "5s", probability = 0.1 }
drop_socket = { after = "2s", probability = 0.05 }
retry_on_timeout = { max = 2, delay = "500ms" }
verify_server = 0.25
match_length = "forever"

[[faults]]
at = "10s"
duration = "20s"
kind = "claim_outcome"
unreachable = 0.5

[thresholds]
pairing_p50 = "500ms"
pairing_p99 = "5s"
timeout_rate = 0.01
claim_failure_rate = 0.6
error_rate = 0
min_matched = 100
"#;
    let plan = Plan::parse(text, "dir/full.toml", Path::new("dir")).expect("valid");
    assert_eq!(plan.name, "full");
    let TargetPlan::Urls(urls) = &plan.target else {
        panic!("urls target");
    };
    assert_eq!(urls.namespace, "game");
    assert_eq!(
        urls.accounts.as_deref(),
        Some(Path::new("dir/accounts.csv"))
    );
    assert_eq!(urls.source_addresses, SourceAddresses::Count(4));
    assert_eq!(
        urls.game_client.as_ref().map(|c| c.id.as_str()),
        Some("srv")
    );
    let ArrivalPlan::Open { profile, poisson } = &plan.population.arrival else {
        panic!("open");
    };
    assert!(!poisson);
    assert_eq!(profile.segments.len(), 2);
    assert_eq!(profile.rate_at(15.0), 50.0);
    assert_eq!(profile.expected(60.0), 1500.0 + 1800.0);
    assert_eq!(
        plan.population.modes[1].party_sizes,
        vec![(1, 0.5), (5, 0.5)]
    );
    assert_eq!(plan.population.regions[1], ("eu-west-1".to_owned(), 1.0));
    let b = &plan.population.behaviour;
    assert_eq!(b.match_length, None);
    assert_eq!(b.retry_on_timeout.map(|r| r.max), Some(2));
    assert_eq!(plan.faults[0].label, "claim_outcome");
    assert_eq!(
        plan.faults[0].body,
        serde_json::json!({"kind": "claim_outcome", "unreachable": 0.5})
    );
    assert_eq!(plan.faults[0].line, 39);
    assert_eq!(plan.thresholds.min_matched, Some(100));
    assert_eq!(plan.thresholds.error_rate, Some(0.0));
    assert!((plan.mean_party_size() - (0.75 + 0.25 * 3.0)).abs() < 1e-9);
}

#[test]
fn unknown_keys_are_refused_with_line_and_field() {
    let (list, text) = problems(
        "version = 1\nspeed = 3\n[run]\nduration = \"5s\"\ndurashun = \"5s\"\n[population]\narrival = { kind = \"constant\", rate = 1, burst = 2 }\n",
    );
    assert_eq!(
        list,
        vec![
            (2, "speed".to_owned()),
            (5, "run.durashun".to_owned()),
            (7, "population.arrival.burst".to_owned()),
        ]
    );
    assert!(text.contains("t.toml:2: speed: unknown key"), "{text}");
    assert!(
        text.contains("t.toml:5: run.durashun: unknown key"),
        "{text}"
    );
}

#[test]
fn wrong_types_name_what_was_expected() {
    let (list, text) = problems("version = 1\n[run]\nduration = 10\nseed = \"abc\"\n");
    assert_eq!(
        list,
        vec![(3, "run.duration".to_owned()), (4, "run.seed".to_owned())]
    );
    assert!(
        text.contains("t.toml:3: run.duration: expected a duration string such as \"500ms\""),
        "{text}"
    );
    assert!(
        text.contains("t.toml:4: run.seed: expected an integer, found a string"),
        "{text}"
    );
}

#[test]
fn bad_thresholds_are_refused() {
    let (list, text) = problems(&format!(
        "{MINIMAL}\n[thresholds]\ntimeout_rate = 1.5\npairing_p99 = \"fast\"\nmin_matched = -1\nlatency = \"1s\"\n"
    ));
    assert_eq!(
        list,
        vec![
            (8, "thresholds.timeout_rate".to_owned()),
            (9, "thresholds.pairing_p99".to_owned()),
            (10, "thresholds.min_matched".to_owned()),
            (11, "thresholds.latency".to_owned()),
        ]
    );
    assert!(
        text.contains("thresholds.timeout_rate: must be between 0 and 1"),
        "{text}"
    );
    assert!(text.contains("\"fast\" is not a duration"), "{text}");
    assert!(
        text.contains("thresholds.min_matched: must not be negative"),
        "{text}"
    );
}

#[test]
fn bad_arrival_models_are_refused() {
    let (list, text) = problems(&format!(
        "{MINIMAL}[population]\narrival = {{ kind = \"zigzag\", rate = 5 }}\n"
    ));
    assert_eq!(list, vec![(7, "population.arrival.kind".to_owned())]);
    assert!(text.contains("unknown arrival model \"zigzag\""), "{text}");

    let (list, _) = problems(&format!(
        "{MINIMAL}[population]\narrival = {{ kind = \"constant\", rate = -2 }}\n"
    ));
    assert_eq!(list, vec![(7, "population.arrival.rate".to_owned())]);

    let (list, text) = problems(&format!(
        "{MINIMAL}[population.arrival]\nkind = \"ramp\"\nstages = [{{ to = 10 }}]\n"
    ));
    assert_eq!(
        list,
        vec![(8, "population.arrival.stages[0].over".to_owned())]
    );
    assert!(text.contains("missing (required)"), "{text}");

    let (list, _) = problems(&format!(
        "{MINIMAL}[population.arrival]\nkind = \"closed\"\n"
    ));
    assert_eq!(list, vec![(6, "population.arrival.players".to_owned())]);
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let (list, _) = problems(
        r#"version = 2
[run]
duration = "0s"
workers = 0
[target]
kind = "cloud"
[population]
arrival = { kind = "spike", base = 1, peak = 10, at = "5s" }
[population.behaviour]
cancel = { probability = 2, after = "1s" }
[[faults]]
at = "1s"
probability = 0.5
"#,
    );
    let fields: Vec<_> = list.iter().map(|(l, f)| format!("{l}:{f}")).collect();
    assert_eq!(
        fields,
        vec![
            "1:version",
            "3:run.duration",
            "4:run.workers",
            "6:target.kind",
            "8:population.arrival.length",
            "10:population.behaviour.cancel.probability",
            "11:faults[0].kind",
        ]
    );
}

#[test]
fn syntax_errors_point_at_their_line() {
    let (list, text) = problems("version = 1\n[run]\nduration = \"5s\n");
    assert_eq!(list, vec![(3, "(syntax)".to_owned())]);
    assert!(text.starts_with("t.toml:3: (syntax): "), "{text}");
}

#[test]
fn missing_sections_and_fields() {
    let (list, _) = problems("name = \"x\"\n");
    assert_eq!(list, vec![(1, "version".to_owned()), (1, "run".to_owned())]);
    let (list, _) = problems(&format!(
        "{MINIMAL}[target]\nkind = \"urls\"\nfakes = \"ftp://x\"\n"
    ));
    assert_eq!(
        list,
        vec![
            (6, "target.matchmaker".to_owned()),
            (8, "target.fakes".to_owned())
        ]
    );
}

#[test]
fn fault_after_the_run_is_refused() {
    let (list, text) = problems(&format!(
        "{MINIMAL}[[faults]]\nat = \"30s\"\nkind = \"outage\"\n"
    ));
    assert_eq!(list, vec![(6, "faults[0].at".to_owned())]);
    assert!(
        text.contains("is not before the end of arrivals (10s)"),
        "{text}"
    );
}

#[test]
fn fault_objects_are_checked_by_the_fakes_rules() {
    let (list, text) = problems(&format!(
        "{MINIMAL}[[faults]]\nat = \"1s\"\nkind = \"claim_outcome\"\nunreachable = 1.5\n[[faults]]\nat = \"2s\"\nkind = \"teleport\"\n"
    ));
    assert_eq!(
        list,
        vec![
            (9, "faults[0].unreachable".to_owned()),
            (12, "faults[1].kind".to_owned())
        ]
    );
    assert!(text.contains("must be between 0 and 1"), "{text}");
    assert!(text.contains("unknown kind `teleport`"), "{text}");
}

#[test]
fn spike_and_profile_arithmetic() {
    let plan = parse(&format!(
        "{MINIMAL}[population]\narrival = {{ kind = \"spike\", base = 2, peak = 20, at = \"3s\", length = \"2s\" }}\n"
    ))
    .expect("valid");
    let ArrivalPlan::Open { profile, .. } = &plan.population.arrival else {
        panic!("open");
    };
    assert_eq!(profile.rate_at(1.0), 2.0);
    assert_eq!(profile.rate_at(4.0), 20.0);
    assert_eq!(profile.rate_at(9.0), 2.0);
    assert_eq!(profile.expected(10.0), 6.0 + 40.0 + 10.0);
    assert_eq!(profile.peak(), 20.0);
    assert_eq!(plan.expected_arrivals(), 56.0);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let c = ClientCredentials {
        id: "srv".into(),
        secret: Some("hunter2".into()),
    };
    let text = format!("{c:?}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn matchmaker_takes_one_url_or_a_list() {
    let urls = |value: &str| {
        let plan = parse(&format!(
            "{MINIMAL}[target]\nkind = \"urls\"\nfakes = \"http://127.0.0.1:8080\"\nmatchmaker = {value}\n"
        ))
        .expect("valid");
        let TargetPlan::Urls(u) = plan.target else {
            panic!("urls target");
        };
        u.matchmaker.iter().map(Url::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        urls("\"http://127.0.0.1:3000/matchmaking\""),
        vec!["http://127.0.0.1:3000/matchmaking"]
    );
    assert_eq!(
        urls("[\"http://127.0.0.1:3000/\", \"http://127.0.0.1:3001/\"]"),
        vec!["http://127.0.0.1:3000/", "http://127.0.0.1:3001/"]
    );
}

#[test]
fn bad_matchmaker_lists_name_the_item() {
    let target = |value: &str| {
        format!(
            "{MINIMAL}[target]\nkind = \"urls\"\nfakes = \"http://127.0.0.1:8080\"\nmatchmaker = {value}\n"
        )
    };
    let (list, text) = problems(&target("[]"));
    assert_eq!(list, vec![(9, "target.matchmaker".to_owned())]);
    assert!(text.contains("needs at least one URL"), "{text}");
    let (list, text) = problems(&target(
        "[\n  \"http://127.0.0.1:3000/\",\n  \"ftp://x\",\n  3,\n  \"http://127.0.0.1:3000/\",\n]",
    ));
    assert_eq!(
        list,
        vec![
            (11, "target.matchmaker[1]".to_owned()),
            (12, "target.matchmaker[2]".to_owned()),
            (13, "target.matchmaker[3]".to_owned()),
        ]
    );
    assert!(text.contains("listed twice"), "{text}");
    let (list, _) = problems(&target("7"));
    assert_eq!(list, vec![(9, "target.matchmaker".to_owned())]);
}

#[test]
fn chaos_steps_are_read_and_checked() {
    let plan = parse(
        r#"version = 1
[run]
duration = "30s"
[target]
replicas = 3
[[chaos]]
at = "5s"
action = "kill"
process = "matchmaker-2"
duration = "4s"
[[chaos]]
at = "10s"
action = "partition"
link = "matchmaker-fakes"
mode = "reset"
label = "AGS gone"
[[chaos]]
at = "12s"
action = "pause"
process = "redis"
duration = "1s"
"#,
    )
    .expect("valid");
    assert_eq!(plan.chaos.len(), 3);
    assert_eq!(plan.chaos[0].label, "kill matchmaker-2");
    assert_eq!(plan.chaos[0].duration, Some(Duration::from_secs(4)));
    assert_eq!(plan.chaos[1].label, "AGS gone");
    assert!(matches!(
        plan.chaos[1].action,
        crate::scenario::ChaosAction::Partition {
            mode: crate::stack::proxy::LinkMode::Reset,
            ..
        }
    ));
    let TargetPlan::Embedded(e) = &plan.target else {
        panic!("embedded")
    };
    assert_eq!(e.replicas, Some(3));

    let (list, text) = problems(
        r#"version = 1
[run]
duration = "30s"
[[chaos]]
at = "5s"
action = "kill"
process = "matchmaker-2"
[[chaos]]
at = "6s"
action = "pause"
process = "redis"
[[chaos]]
at = "7s"
action = "explode"
[[chaos]]
at = "40s"
action = "partition"
link = "sim-fakes"
[[chaos]]
at = "8s"
action = "restart"
process = "fakes"
duration = "1s"
"#,
    );
    assert!(list.contains(&(7, "chaos[0].process".into())), "{text}");
    assert!(text.contains("2 matchmaker replicas"), "{text}");
    assert!(list.contains(&(8, "chaos[1].duration".into())), "{text}");
    assert!(list.contains(&(14, "chaos[2].action".into())), "{text}");
    assert!(list.contains(&(15, "chaos[3].at".into())), "{text}");
    assert!(list.contains(&(18, "chaos[3].link".into())), "{text}");
    assert!(
        !list.iter().any(|(_, field)| field == "chaos[4].process"),
        "fakes is a process chaos can act on: {text}"
    );
    assert!(list.contains(&(23, "chaos[4].duration".into())), "{text}");

    let (list, text) = problems(
        r#"version = 1
[run]
duration = "30s"
[target]
kind = "urls"
fakes = "http://127.0.0.1:8080"
matchmaker = "http://127.0.0.1:8090/matchmaking"
[[chaos]]
at = "5s"
action = "kill"
process = "redis"
"#,
    );
    assert!(list.iter().any(|(_, f)| f == "chaos"), "{text}");
}

const MATCH2: &str = r#"
version = 1
[run]
duration = "10s"
[target.match2]
pool = "duel"
ticket_expiration = "12s"
[target.match2.ruleset]
alliance = { min_number = 2, max_number = 2, player_min_number = 1, player_max_number = 1 }
alliance_flexing_rule = [{ duration = 5, min_number = 1, max_number = 2, player_min_number = 1, player_max_number = 1 }]
matching_rule = [{ attribute = "mmr", criteria = "distance", reference = 100 }]
[population]
arrival = { kind = "constant", rate = 5 }
[population.behaviour]
flow = "match2"
"#;

#[test]
fn match2_flow_and_pool_are_read() {
    let plan = parse(MATCH2).expect("valid");
    assert_eq!(plan.population.behaviour.flow, Flow::Match2);
    let m2 = plan.match2.expect("[target.match2]");
    assert_eq!(m2.pool, "duel");
    assert_eq!(m2.rule_set_name(), "duel-rules");
    assert_eq!(m2.template_name(), "duel-template");
    assert_eq!(m2.ticket_expiration, Duration::from_secs(12));
    assert_eq!(m2.ds_timeout, Duration::from_secs(30));
    // Flexing lets a 1-team match form: the template must admit one player.
    assert_eq!((m2.min_players, m2.max_players), (1, 2));
    assert_eq!(m2.ruleset["matching_rule"][0]["reference"], 100);
    // The default flow is the tutorial's, with no pool.
    let plain = parse(MINIMAL).expect("valid");
    assert_eq!(plain.population.behaviour.flow, Flow::Tutorial);
    assert!(plain.match2.is_none());
}

#[test]
fn the_matchmakers_match_function_is_chosen_and_its_rules_read_by_its_parser() {
    let m2 = parse(MATCH2)
        .expect("valid")
        .match2
        .expect("[target.match2]");
    assert_eq!(m2.match_function, Match2Function::Default, "the default");
    let dialect = MATCH2
        .replace(
            r#"pool = "duel""#,
            "pool = \"duel\"\nmatch_function = \"matchmaker\"",
        )
        .replace(
            "alliance_flexing_rule = [{ duration = 5, min_number = 1, max_number = 2, player_min_number = 1, player_max_number = 1 }]\n",
            "",
        );
    let plan = parse(&dialect).unwrap_or_else(|e| panic!("{e}"));
    let m2 = plan.match2.expect("[target.match2]");
    assert_eq!(m2.match_function, Match2Function::Matchmaker);
    assert_eq!(m2.match_function.pool_function_name(), MATCHMAKER_FUNCTION);
    assert_eq!((m2.min_players, m2.max_players), (2, 2));
    match plan.target {
        TargetPlan::Embedded(e) => assert!(e.serve_match_function),
        TargetPlan::Urls(_) => panic!("embedded"),
    }

    // The matchmaker's parser refuses what only the built-in reads (its flexing rule).
    let flexing = MATCH2.replace(
        r#"pool = "duel""#,
        "pool = \"duel\"\nmatch_function = \"matchmaker\"",
    );
    let (list, message) = problems(&flexing);
    assert_eq!(
        list,
        vec![(9, "target.match2.ruleset".to_owned())],
        "{message}"
    );
    assert!(
        message.contains("the matchmaker's match function"),
        "{message}"
    );

    let unknown = MATCH2.replace(
        r#"pool = "duel""#,
        "pool = \"duel\"\nmatch_function = \"mine\"",
    );
    let (list, message) = problems(&unknown);
    assert_eq!(
        list,
        vec![(7, "target.match2.match_function".to_owned())],
        "{message}"
    );

    let urls = dialect.replace(
        "[target.match2]",
        "[target]\nkind = \"urls\"\nfakes = \"http://127.0.0.1:8080\"\nmatchmaker = \"http://127.0.0.1:8090/matchmaking\"\n[target.match2]",
    );
    let (list, message) = problems(&urls);
    assert!(
        list.contains(&(11, "target.match2.match_function".to_owned())),
        "{list:?} {message}"
    );
    assert!(message.contains("needs an embedded target"), "{message}");
}

#[test]
fn bad_match2_settings_name_file_line_and_field() {
    let text = MATCH2
        .replace(r#"pool = "duel""#, r#"pool = "a b""#)
        .replace(r#"criteria = "distance""#, r#"criteria = "exact""#)
        .replace(
            r#"ticket_expiration = "12s""#,
            "ticket_expiration = \"12s\"\nextra = 1",
        );
    let (list, message) = problems(&text);
    assert_eq!(
        list,
        vec![
            (6, "target.match2.pool".to_owned()),
            (8, "target.match2.extra".to_owned()),
            (9, "target.match2.ruleset".to_owned()),
        ],
        "{message}"
    );
    assert!(
        message.contains("t.toml:9: target.match2.ruleset: matching_rule[0].criteria"),
        "{message}"
    );

    let unknown = MATCH2.replace(r#"flow = "match2""#, r#"flow = "v3""#);
    let (list, message) = problems(&unknown);
    assert_eq!(
        list,
        vec![(15, "population.behaviour.flow".to_owned())],
        "{message}"
    );

    // The flow needs the pool; parties are welcome.
    let no_pool = r#"
version = 1
[run]
duration = "10s"
[population]
arrival = { kind = "constant", rate = 5 }
[population.behaviour]
flow = "match2"
"#;
    let (list, message) = problems(no_pool);
    assert_eq!(
        list,
        vec![(8, "population.behaviour.flow".to_owned())],
        "{message}"
    );
    assert!(
        message.contains("\"match2\" needs a [target.match2]"),
        "{message}"
    );

    let parties = MATCH2.replace(
        "arrival = { kind = \"constant\", rate = 5 }",
        "arrival = { kind = \"constant\", rate = 5 }\nmodes = [{ name = \"5v5\", party_sizes = [{ size = 1, weight = 1 }, { size = 2, weight = 1 }] }]",
    );
    // Parties form over Session v2 and queue one party ticket.
    let plan = parse(&parties).expect("a match2 population with parties is accepted");
    assert!(plan.mean_party_size() > 1.0);
}

/// A scenario writing every section's durations in the one grammar: its own keys, the
/// embedded matchmaker's, the fleet's and the faults'.
const ONE_GRAMMAR: &str = r#"
version = 1

[run]
duration = "1.5m"
drain = "2.5s"

[target]
kind = "embedded"

[target.fleet]
ready_delay = "250ms"

[target.matchmaker]
shutdown_grace = "1.5s"
engine = { lease = "5s", tick = "250ms" }
modes = [{ name = "1v1", teams = 2, team_size = 1, timeout = "30s", region_wait = "2s" }]

[[faults]]
at = "10s"
duration = "20s"
kind = "hang"
hold = "1.5s"
window = { start = "0s", end = "1h" }

[[faults]]
at = "20s"
kind = "latency"
delay = { dist = "log_normal", p50 = "80ms", p99 = "0.8s" }
"#;

#[test]
fn every_section_reads_the_one_grammar_without_warnings() {
    let plan = parse(ONE_GRAMMAR).expect("valid");
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert_eq!(plan.run.duration, Duration::from_secs(90));
    assert_eq!(plan.run.drain, Duration::from_millis(2500));
    let TargetPlan::Embedded(embedded) = &plan.target else {
        panic!("embedded")
    };
    assert_eq!(embedded.fleet.ready_delay, Duration::from_millis(250));
    let file = matchmaker::config::FileConfig::from_table(embedded.matchmaker.clone())
        .expect("the matchmaker reads its table");
    assert_eq!(file.engine.lease, Some(Duration::from_secs(5)));
    assert_eq!(file.modes[0].timeout, Some(Duration::from_secs(30)));
    assert_eq!(plan.faults.len(), 2);
    let hang = fakes::faults::model::parse_fault(plan.faults[0].body.clone()).expect("hang");
    assert!(matches!(
        hang.kind,
        fakes::faults::FaultKind::Hang(fakes::faults::Hang { hold_s, .. }) if hold_s == 1.5
    ));
}

#[test]
fn old_spellings_still_work_with_a_warning_at_their_line() {
    let text = ONE_GRAMMAR
        .replace("lease = \"5s\"", "lease_secs = 5")
        .replace("timeout = \"30s\"", "timeout_secs = 30")
        .replace("hold = \"1.5s\"", "hold_s = 1.5")
        .replace("p99 = \"0.8s\"", "p99_ms = 800");
    let plan = parse(&text).expect("old spellings are accepted");
    let warnings: Vec<(usize, &str)> = plan
        .warnings
        .iter()
        .map(|w| (w.line, w.field.as_str()))
        .collect();
    assert_eq!(
        warnings,
        [
            (16, "target.matchmaker.engine.lease_secs"),
            (17, "target.matchmaker.modes[0].timeout_secs"),
            (23, "faults[0].hold_s"),
            (29, "faults[1].delay.p99_ms"),
        ]
    );
    assert_eq!(
        plan.warning_lines()[2],
        "t.toml:23: faults[0].hold_s: warning: `hold_s` is deprecated: write `hold = \"1.5s\"` instead"
    );
}

#[test]
fn both_spellings_or_a_bad_duration_are_refused_with_line_and_field() {
    let both = ONE_GRAMMAR.replace("hold = \"1.5s\"", "hold = \"1.5s\"\nhold_s = 1.5");
    let (list, message) = problems(&both);
    assert_eq!(list, [(23, "faults[0].hold".to_owned())], "{message}");
    assert!(message.contains("not both"), "{message}");
    let bad = ONE_GRAMMAR.replace("p99 = \"0.8s\"", "p99 = \"0.8 sec\"");
    let (list, message) = problems(&bad);
    assert_eq!(list, [(29, "faults[1].delay.p99".to_owned())], "{message}");
    assert!(message.contains("\"1.5s\""), "{message}");
    let bad = ONE_GRAMMAR.replace("tick = \"250ms\"", "tick = 250");
    let (list, message) = problems(&bad);
    assert_eq!(list.len(), 1, "{message}");
    assert!(
        message.contains("tick") && message.contains("\"300ms\""),
        "{message}"
    );
    let bad = ONE_GRAMMAR.replace("ready_delay = \"250ms\"", "ready_delay = \"soon\"");
    let (list, message) = problems(&bad);
    assert_eq!(
        list,
        [(12, "target.fleet.ready_delay".to_owned())],
        "{message}"
    );
    assert!(message.contains("\"1.5s\""), "{message}");
}
