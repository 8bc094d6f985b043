//! Every file in `scenarios/` parses, and opens with a comment saying what question it answers.

use std::path::PathBuf;

use sim::scenario::{Plan, TargetPlan};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn every_scenario_parses_and_says_what_it_answers() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir()).expect("scenarios dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let plan = Plan::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).expect("read");
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("# ") && first.contains(':'),
            "{} must open with a comment naming its question, got {first:?}",
            path.display()
        );
        assert!(
            text.contains('?'),
            "{}: the opening comment asks a question",
            path.display()
        );
        names.push(plan.name.clone());
    }
    names.sort();
    for required in [
        "dsmc-brownout",
        "iam-slow",
        "launch-spike",
        "lobby-flaky",
        "parties-5v5",
        "smoke",
        "soak",
        "steady-1v1",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing scenario {required}: {names:?}"
        );
    }
}

#[test]
fn smoke_is_a_short_embedded_ci_run() {
    let plan = Plan::from_file(&dir().join("smoke.toml")).expect("smoke parses");
    assert!(matches!(plan.target, TargetPlan::Embedded(_)));
    let bound = plan.run.duration + plan.run.drain;
    assert!(
        bound.as_secs() < 20,
        "smoke must finish in under 20 s, bound {bound:?}"
    );
    assert!(plan.thresholds.min_matched.is_some());
}
