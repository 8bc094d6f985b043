//! Tests of the fault model as a whole: parsing, errors naming fields, files, routes,
//! services, distributions and windows.

use std::time::Duration;

use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

fn parse(value: Value) -> Result<Fault, FieldError> {
    parse_fault(value)
}

#[test]
fn a_full_fault_parses_and_serializes_flat() {
    let fault = parse(json!({
        "id": "slow-iam",
        "kind": "latency",
        "target": {"service": "iam", "method": "post"},
        "probability": 0.5,
        "window": {"start_s": 1, "end_s": 2.5},
        "delay": {"dist": "log_normal", "p50_ms": 80, "p99_ms": 800},
    }))
    .expect("valid");
    assert_eq!(fault.target.method.as_deref(), Some("POST"));
    assert_eq!(
        fault.kind,
        FaultKind::Latency(Latency {
            delay: Distribution::LogNormal {
                p50_ms: 80.0,
                p99_ms: 800.0
            }
        })
    );
    let back = serde_json::to_value(&fault).expect("serializes");
    assert_eq!(back["kind"], "latency");
    assert_eq!(back["delay"]["dist"], "log_normal");
    assert_eq!(parse(back).expect("round trip"), fault);
}

#[test]
fn target_shorthands() {
    let f =
        parse(json!({"kind": "error", "status": 503, "target": "dsmcontroller"})).expect("service");
    assert_eq!(f.target.service, Some(Service::Dsmc));
    let f = parse(json!({"kind": "error", "status": 503, "target": "/iam/**"})).expect("route");
    assert_eq!(f.target.route.as_deref(), Some("/iam/**"));
    let e =
        parse(json!({"kind": "error", "status": 503, "target": "billing"})).expect_err("unknown");
    assert_eq!(e.field, "target");
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            json!({"kind": "error", "status": 503, "probability": 1.5}),
            "probability",
        ),
        (json!({"kind": "error", "status": 200}), "status"),
        (json!({"kind": "error", "statuss": 503}), "statuss"),
        (json!({"kind": "error"}), "status"),
        (json!({"kind": "eror", "status": 503}), "kind"),
        (json!({"status": 503}), "kind"),
        (json!({"kind": "error", "status": "x"}), "status"),
        (
            json!({"kind": "latency", "delay": {"dist": "log_normal", "p50_ms": 80}}),
            "delay.p99_ms",
        ),
        (
            json!({"kind": "latency", "delay": {"dist": "log_normal", "p50_ms": 800, "p99_ms": 80}}),
            "delay.p99_ms",
        ),
        (
            json!({"kind": "latency", "delay": {"dist": "fixed", "ms": 1, "extra": 2}}),
            "delay.extra",
        ),
        (
            json!({"kind": "error", "status": 503, "window": {"start_s": 5, "end_s": 1}}),
            "window.end_s",
        ),
        (
            json!({"kind": "error", "status": 503, "window": {"begin": 5}}),
            "window.begin",
        ),
        (
            json!({"kind": "error", "status": 503, "target": {"topic": "x"}}),
            "target.topic",
        ),
        (
            json!({"kind": "error", "status": 503, "target": {"servce": "iam"}}),
            "target.servce",
        ),
        (
            json!({"kind": "drop_notification", "target": {"route": "/x"}}),
            "target.route",
        ),
        (
            json!({"kind": "drop_notification", "target": {"service": "iam"}}),
            "target.service",
        ),
        (json!({"kind": "outage", "probability": 0.5}), "probability"),
        (
            json!({"kind": "disconnect", "close_code": 1006}),
            "close_code",
        ),
        (
            json!({"kind": "disconnect", "per_minute": 2, "probability": 0.1}),
            "probability",
        ),
        (
            json!({"kind": "claim_outcome", "conflict": 0.7, "not_ready": 0.7}),
            "not_found",
        ),
        (json!({"kind": "ready_delay"}), "delay"),
        (json!({"kind": "token_expiry", "access_s": 0}), "access_s"),
        (json!({"kind": "hang", "hold_s": -1}), "hold_s"),
        (
            json!({"kind": "error", "status": 503, "id": "has space"}),
            "id",
        ),
        (json!({"kind": "error", "status": 503, "id": "seed"}), "id"),
    ];
    for (input, field) in cases {
        let error = parse(input.clone()).expect_err(&input.to_string());
        assert_eq!(error.field, field, "{input} → {error}");
        assert!(!error.message.is_empty());
    }
}

#[test]
fn a_file_names_the_fault_and_refuses_unknown_keys() {
    let text = "seed = 7\n[[faults]]\nkind = \"error\"\nstatus = 503\n[[faults]]\nkind = \"error\"\nstatus = 503\nprobability = 2.0\n";
    let error = FaultFile::from_toml(text).expect_err("bad probability");
    assert_eq!(error.field, "faults[1].probability");
    assert_eq!(
        error.to_string(),
        "faults[1].probability: must be between 0 and 1, got 2"
    );
    let error = FaultFile::from_toml("sead = 7\n").expect_err("unknown key");
    assert_eq!(error.field, "sead");
    let file = FaultFile::from_toml(&text.replace("2.0", "0.5")).expect("valid");
    assert_eq!((file.seed, file.faults.len()), (Some(7), 2));
    let dup =
        "[[faults]]\nid = \"a\"\nkind = \"outage\"\n[[faults]]\nid = \"a\"\nkind = \"outage\"\n";
    assert_eq!(
        FaultFile::from_toml(dup).expect_err("dup").field,
        "faults[1].id"
    );
}

#[test]
fn routes_and_globs() {
    let claim = "/dsmcontroller/namespaces/{namespace}/sessions/claim";
    assert!(route_matches(
        claim,
        "/dsmcontroller/namespaces/ns/sessions/claim"
    ));
    assert!(!route_matches(
        claim,
        "/dsmcontroller/namespaces/ns/sessions"
    ));
    assert!(route_matches(
        "/dsmcontroller/namespaces/*/sessions/claim",
        "/dsmcontroller/namespaces/ns/sessions/claim"
    ));
    assert!(route_matches("/iam/**", "/iam/v3/oauth/token"));
    assert!(route_matches("/iam/**", "/iam"));
    assert!(route_matches(
        "/**/claim",
        "/dsmcontroller/namespaces/ns/sessions/claim"
    ));
    assert!(!route_matches("/iam/*", "/iam/v3/oauth/token"));
    assert!(route_matches("/iam/v3/oauth/tok*", "/iam/v3/oauth/token"));
    assert!(glob("match*", "matchFound"));
    assert!(glob("*Found", "matchFound"));
    assert!(glob("*", ""));
    assert!(glob("a*b*c", "aXbYc"));
    assert!(!glob("a*b*c", "aXbY"));
    assert!(!glob("ab*ba", "aba"));
}

#[test]
fn services_by_path() {
    assert_eq!(Service::of_path("/iam/v3/oauth/token"), Service::Iam);
    assert_eq!(Service::of_path("/lobby/"), Service::Lobby);
    assert_eq!(Service::of_path("/lobby"), Service::Lobby);
    assert_eq!(
        Service::of_path("/notification/namespaces/x/freeform"),
        Service::Lobby
    );
    assert_eq!(
        Service::of_path("/sessionbrowser/namespaces/x/gamesession"),
        Service::SessionBrowser
    );
    assert_eq!(Service::of_path("/dsmcontroller/healthz"), Service::Dsmc);
    assert_eq!(Service::of_path("/iamx"), Service::Other);
}

/// Φ(x) by Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// The largest gap between the empirical CDF of `samples` and `cdf` (Kolmogorov–Smirnov D).
fn ks_distance(mut samples: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len() as f64;
    samples
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

const N: usize = 20_000;
/// KS critical value at α = 0.001 is 1.95/√n ≈ 0.0138 for n = 20,000.
const KS_BOUND: f64 = 0.0138;

fn samples(dist: Distribution, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..N)
        .map(|_| dist.sample(&mut rng).as_secs_f64() * 1000.0)
        .collect()
}

#[test]
fn normal_samples_follow_the_normal_cdf() {
    // Mean far from 0 so the clamp at 0 never bites.
    let dist = Distribution::Normal {
        mean_ms: 100.0,
        stddev_ms: 15.0,
    };
    let d = ks_distance(samples(dist, 1), |x| normal_cdf((x - 100.0) / 15.0));
    assert!(d < KS_BOUND, "KS distance {d}");
}

#[test]
fn log_normal_samples_hit_the_given_p50_and_p99() {
    let dist = Distribution::LogNormal {
        p50_ms: 80.0,
        p99_ms: 800.0,
    };
    let sigma = 10f64.ln() / Z_99;
    let all = samples(dist, 2);
    let d = ks_distance(all.clone(), |x| normal_cdf((x.ln() - 80f64.ln()) / sigma));
    assert!(d < KS_BOUND, "KS distance {d}");
    let below = |limit: f64| all.iter().filter(|&&x| x < limit).count() as f64 / N as f64;
    // Binomial σ at p = 0.5 is 0.0035 and at 0.99 is 0.0007 for n = 20,000: 4σ bounds.
    assert!((below(80.0) - 0.5).abs() < 0.014, "{}", below(80.0));
    assert!((below(800.0) - 0.99).abs() < 0.003, "{}", below(800.0));
}

#[test]
fn uniform_and_fixed_stay_in_range_and_sampling_is_reproducible() {
    let uniform = Distribution::Uniform {
        min_ms: 50.0,
        max_ms: 150.0,
    };
    let a = samples(uniform, 3);
    assert!(a.iter().all(|&x| (50.0..=150.0).contains(&x)));
    assert_eq!(a, samples(uniform, 3), "same seed, same samples");
    assert_ne!(a, samples(uniform, 4));
    let fixed = samples(Distribution::Fixed { ms: 200.0 }, 5);
    assert!(fixed.iter().all(|&x| (x - 200.0).abs() < 1e-6));
}

#[test]
fn windows() {
    let w = Window {
        start_s: 1.0,
        end_s: Some(2.0),
    };
    assert!(!w.contains(Duration::from_millis(999)));
    assert!(w.contains(Duration::from_secs(1)));
    assert!(!w.contains(Duration::from_secs(2)));
    assert!(
        Window {
            start_s: 0.0,
            end_s: None
        }
        .contains(Duration::from_secs(1_000_000))
    );
}

#[test]
fn durations_in_the_one_grammar_read_as_the_old_numbers() {
    let new = parse_fault_noting(json!({
        "kind": "latency",
        "window": {"start": "1s", "end": "2.5s"},
        "delay": {"dist": "log_normal", "p50": "80ms", "p99": "0.8s"},
    }))
    .expect("valid");
    let old = parse(json!({
        "kind": "latency",
        "window": {"start_s": 1, "end_s": 2.5},
        "delay": {"dist": "log_normal", "p50_ms": 80, "p99_ms": 800},
    }))
    .expect("valid");
    assert_eq!(new, (old, Vec::new()), "same fault, nothing deprecated");
    let hang = parse(json!({"kind": "hang", "hold": "1.5s"})).expect("hang");
    assert!(matches!(hang.kind, FaultKind::Hang(Hang { hold_s, .. }) if hold_s == 1.5));
    let tokens = parse(json!({"kind": "token_expiry", "access": "5m", "refresh": "1h"}))
        .expect("token_expiry");
    assert_eq!(
        tokens.kind,
        FaultKind::TokenExpiry(TokenExpiry {
            access_s: 300,
            refresh_s: Some(3600)
        })
    );
    for (input, field) in [
        (
            json!({"kind": "latency", "delay": {"dist": "fixed", "value": "250us"}}),
            0.25,
        ),
        (
            json!({"kind": "latency", "delay": {"dist": "uniform", "min": "1ms", "max": "2ms"}}),
            1.0,
        ),
    ] {
        let fault = parse(input.clone()).unwrap_or_else(|e| panic!("{input}: {e}"));
        let FaultKind::Latency(Latency { delay }) = fault.kind else {
            panic!("latency")
        };
        let first = match delay {
            Distribution::Fixed { ms } => ms,
            Distribution::Uniform { min_ms, .. } => min_ms,
            other => panic!("{other:?}"),
        };
        assert!((first - field).abs() < 1e-9, "{input}: {first}");
    }
}

#[test]
fn old_duration_keys_work_and_are_noted() {
    let (fault, notes) = parse_fault_noting(json!({
        "kind": "hang", "hold_s": 2, "window": {"start_s": 10}
    }))
    .expect("valid");
    assert!(matches!(fault.kind, FaultKind::Hang(Hang { hold_s, .. }) if hold_s == 2.0));
    let notes: Vec<String> = notes.iter().map(ToString::to_string).collect();
    assert_eq!(
        notes,
        [
            "`hold_s` is deprecated: write `hold = \"2s\"` instead",
            "`window.start_s` is deprecated: write `start = \"10s\"` instead",
        ]
    );
    let file = FaultFile::from_toml(
        "[[faults]]\nkind = \"outage\"\n[[faults]]\nkind = \"latency\"\ndelay = { dist = \"fixed\", ms = 300 }\n",
    )
    .expect("valid");
    assert_eq!(file.deprecated.len(), 1);
    assert_eq!(file.deprecated[0].old, "faults[1].delay.ms");
    assert_eq!(file.deprecated[0].new, "faults[1].delay.value");
}

#[test]
fn duration_errors_name_the_key_the_input_used() {
    let cases = [
        (
            json!({"kind": "hang", "hold": "2s", "hold_s": 2}),
            "hold",
            "not both",
        ),
        (
            json!({"kind": "hang", "hold": "2 secs"}),
            "hold",
            "\"1.5s\"",
        ),
        (json!({"kind": "hang", "hold": 2}), "hold", "\"300ms\""),
        (json!({"kind": "hang", "hold": "2h"}), "hold", "3600"),
        (
            json!({"kind": "error", "status": 503, "window": {"start": "5s", "end": "1s"}}),
            "window.end",
            "start_s",
        ),
        (
            json!({"kind": "latency", "delay": {"dist": "log_normal", "p50": "800ms", "p99": "80ms"}}),
            "delay.p99",
            "p50_ms",
        ),
        (
            json!({"kind": "token_expiry", "access": "1.5s"}),
            "access",
            "whole seconds",
        ),
        (
            json!({"kind": "ticket_expiry", "after": "1m", "after_s": 60}),
            "after",
            "not both",
        ),
    ];
    for (input, field, words) in cases {
        let error = parse(input.clone()).expect_err(&input.to_string());
        assert_eq!(error.field, field, "{input} → {error}");
        assert!(error.message.contains(words), "{input} → {error}");
    }
}
