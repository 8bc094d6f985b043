use std::path::PathBuf;
use std::process::Command;

use super::*;
use crate::metrics::snapshot::ErrorCount;
use crate::process::ProcessSample;
use crate::report::{FaultEvent, ProcessReport};

/// A known run: 30 matched players (100–129 ms), one timed out, a fault from 1 s to 2 s, a
/// process with samples, errors, and the scenario's provenance.
fn known() -> RunReport {
    let mut r = super::super::tests::report(30, 100);
    r.faults.push(FaultEvent {
        label: "claims fail 85%".to_owned(),
        id: "f1".to_owned(),
        at_ms: 1_000,
        until_ms: Some(2_000),
        applied: true,
        error: None,
        recovered_ms: Some(800),
    });
    r.errors.push(ErrorCount {
        endpoint: "matchmaking".to_owned(),
        kind: "http_503".to_owned(),
        count: 4,
    });
    let mut p = ProcessReport::of_self("single");
    p.samples = (0..3)
        .map(|i| ProcessSample {
            at_ms: i * 1000,
            cpu_percent: 10.0 * i as f64,
            open_files: 20,
            rss_bytes: (40 + i) * 1024 * 1024,
        })
        .collect();
    r.processes.push(p);
    r.set_provenance(
        Some("version = 1\nname = \"unit\"\n".to_owned()),
        vec!["--seed".to_owned(), "9".to_owned()],
    );
    r
}

#[test]
fn the_page_has_every_section_and_the_run_s_figures() {
    let r = known();
    let page = render(&r);
    for id in [
        "verdict",
        "checks",
        "figures",
        "chart-latency",
        "chart-throughput",
        "chart-claims",
        "chart-errors",
        "chart-curve",
        "chart-histogram",
        "chart-generator",
        "chart-cpu",
        "chart-rss",
        "funnel",
        "endpoints",
        "generator",
        "scenario",
        "summary",
        "report-data",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    assert!(r.passed);
    assert!(page.contains("<div class=\"badge\">PASS</div>"));
    // Every threshold with its figure and limit.
    for t in &r.thresholds {
        let actual = t.actual.as_deref().expect("measured");
        assert!(
            page.contains(&format!("<tr><td>{}</td><td>{}</td>", t.name, actual)),
            "{} {actual}",
            t.name
        );
    }
    assert!(page.contains("<td>&lt;= 1s</td>"), "pairing_p95's limit");
    assert!(page.contains("<td>invariants</td><td>31 players"));
    // The fault window in words, and as data for the shading.
    assert!(page.contains(
        "fault <strong>claims fail 85%</strong> from 1.0s to 2.0s; matching again 0.8s after it ended"
    ));
    let data = chart_data(&r);
    assert_eq!(data["faults"][0]["from_s"], 1.0);
    assert_eq!(data["faults"][0]["to_s"], 2.0);
    assert_eq!(data["t"].as_array().map(Vec::len), Some(r.series.len()));
    // Funnel and endpoint figures.
    assert!(page.contains("<tr><td>arrived (players)</td><td>31</td>"));
    assert!(page.contains("<tr><td>matched</td><td>30</td><td>96.8%</td>"));
    assert!(page.contains("<tr><td>timed out</td><td>1</td>"));
    let mm = &r.endpoints["matchmaking"];
    assert!(page.contains(&format!(
        "<tr><td>matchmaking</td><td>{}</td><td>{}</td>",
        mm.calls, mm.errors
    )));
    assert!(page.contains("http_503 4"));
    // Generator and processes.
    assert!(page.contains("kept its schedule"));
    assert!(page.contains("<td>single</td>"));
    assert_eq!(data["processes"][0]["rss_mib"][2], 42.0);
    // The scenario as run.
    assert!(page.contains("<code>--seed 9</code>"));
    assert!(page.contains("sim run unit.toml --seed 9"));
    assert!(page.contains("name = &quot;unit&quot;"));
    assert!(page.contains(env!("CARGO_PKG_VERSION")));
    // No external asset.
    assert!(!page.contains("src=\"http"));
    assert!(!page.contains("href=\"http"));
}

#[test]
fn a_failed_run_says_fail_and_names_the_broken_check() {
    // Latencies of 2 s and more break `pairing_p95 <= 1s`.
    let r = super::super::tests::report(30, 2_000);
    assert!(!r.passed);
    let page = render(&r);
    assert!(page.contains("<header id=\"verdict\" class=\"fail\"><div class=\"badge\">FAIL</div>"));
    assert!(page.contains("<td>pairing_p95</td>"));
    assert!(page.contains("<td class=\"fail\">FAIL: "));
}

#[test]
fn phases_follow_the_schedule() {
    let mut r = super::super::tests::report(3, 100);
    r.scenario.duration_ms = 3_000;
    r.elapsed_ms = 5_000;
    let mut points = Vec::new();
    for (t, rate) in [1.0, 2.0, 4.0, 4.0, 0.0].into_iter().enumerate() {
        points.push(crate::metrics::SecondPoint {
            t: t as u32,
            target_rate: rate,
            ..Default::default()
        });
    }
    r.series = points;
    let labels: Vec<(String, f64, f64)> = timeline::phases(&r)
        .into_iter()
        .map(|s| (s.label, s.from_s, s.to_s))
        .collect();
    assert_eq!(
        labels,
        vec![
            ("ramp".to_owned(), 0.0, 3.0),
            ("drain".to_owned(), 3.0, 5.0)
        ]
    );
}

#[test]
fn embedded_json_cannot_close_its_script() {
    let mut r = known();
    r.faults[0].label = "</script><script>alert(1)</script>".to_owned();
    let page = render(&r);
    assert!(!page.contains("</script><script>alert(1)"));
}

/// A Chromium or Chrome on this machine, if any.
fn chromium() -> Option<PathBuf> {
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .into_iter()
    .find_map(|name| {
        let out = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
    })
}

#[test]
fn the_page_renders_in_headless_chromium_without_script_errors() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED: no chromium, chromium-browser or google-chrome on PATH (apt-get install -y chromium)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("sim-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("report.html");
    std::fs::write(&path, render(&known())).expect("write");
    // `timeout` ends a browser that hangs; `output` reads the DOM while it is written.
    let out = Command::new("timeout")
        .arg("90")
        .arg(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--window-size=1400,3000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", path.display()))
        .stderr(std::process::Stdio::null())
        .output()
        .expect("start chromium");
    assert!(
        out.status.success(),
        "chromium failed or hung: {:?}",
        out.status
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-js-errors=\"0\""),
        "script errors: {}",
        &dom[..dom.len().min(2000)]
    );
    assert!(
        dom.contains("data-charts=\"9\""),
        "not every chart was drawn: {}",
        &dom[..dom.len().min(400)]
    );
    // uPlot drew into the placeholders.
    assert!(dom.matches("class=\"uplot").count() >= 9);
    std::fs::remove_dir_all(&dir).ok();
}
