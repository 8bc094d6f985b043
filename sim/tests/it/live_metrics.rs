//! `sim run --metrics-addr`: the Prometheus endpoint scraped during a run, the Grafana
//! dashboard's metrics all served; `sim compare` on the run's report.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-it-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const SCENARIO: &str = r#"
version = 1
name = "live-metrics"
[run]
duration = "6s"
seed = 9
workers = 2
progress_every = "1s"
[target]
kind = "embedded"
[target.fleet]
regions = [{ name = "us-east-1", servers = 200 }]
[target.matchmaker]
modes = [{ name = "1v1", teams = 2, team_size = 1, timeout = "10s" }]
[population]
arrival = { kind = "constant", rate = 10 }
modes = [{ name = "1v1" }]
[population.behaviour]
login = "password"
request_timeout = "10s"
[[faults]]
at = "0s"
duration = "4s"
label = "claims fail 20%"
kind = "claim_outcome"
unreachable = 0.2
[thresholds]
timeout_rate = 0.5
"#;

/// Every `sim_…` metric a dashboard panel or annotation queries.
fn dashboard_metrics() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/sim-run.json");
    let text = std::fs::read_to_string(&path).expect("dashboard");
    let json: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut names: Vec<String> = Vec::new();
    for e in exprs {
        let bytes = e.as_bytes();
        let mut i = 0;
        while let Some(at) = e[i..].find("sim_") {
            let start = i + at;
            let end = e[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(e.len(), |n| start + n);
            let boundary = start == 0
                || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            if boundary && !names.contains(&e[start..end].to_owned()) {
                names.push(e[start..end].to_owned());
            }
            i = end;
        }
    }
    names
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

fn value(scrape: &str, sample: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_serves_the_live_run_and_every_dashboard_metric() {
    let dir = temp_dir("live-metrics");
    let file = dir.join("live.toml");
    std::fs::write(&file, SCENARIO).expect("write");
    let report = dir.join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "run",
            "--headless",
            "--workers",
            "1",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .arg(&file)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sim");
    // The endpoint's address is announced on stderr before arrivals start.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut url = None;
    let mut seen = String::new();
    let mut line = String::new();
    while url.is_none() && stderr.read_line(&mut line).expect("read") > 0 {
        seen.push_str(&line);
        url = line
            .trim()
            .strip_prefix("sim: metrics at ")
            .map(str::to_owned);
        line.clear();
    }
    let url = url.unwrap_or_else(|| panic!("no metrics address announced:\n{seen}"));
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    // Scrape during the run until players have been matched.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let scrape = loop {
        let response = client.get(&url).send().await.expect("scrape");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.expect("body");
        let matched =
            value(&text, "sim_players_finished_total{outcome=\"matched\"}").unwrap_or(0.0);
        // The histogram holds closed seconds only; the counters include the open one.
        let histogram = value(&text, "sim_pairing_latency_seconds_count").unwrap_or(0.0);
        if matched >= 4.0 && histogram >= 4.0 && text.contains("sim_fault_active{") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no matched players in 60 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        value(&scrape, "sim_phase{phase=\"running\"}") == Some(1.0),
        "{scrape}"
    );
    assert!(value(&scrape, "sim_players_arrived_total").unwrap_or(0.0) >= 4.0);
    let inf = value(&scrape, "sim_pairing_latency_seconds_bucket{le=\"+Inf\"}").expect("histogram");
    let count = value(&scrape, "sim_pairing_latency_seconds_count").expect("count");
    assert_eq!(inf, count);
    assert!(count >= 4.0, "{scrape}");
    assert!(
        scrape.contains("sim_claims_total{outcome=\"succeeded\"}"),
        "{scrape}"
    );
    assert!(
        scrape.contains("sim_fault_active{fault=\"claims fail 20%\"} 1"),
        "{scrape}"
    );
    // Every metric the Grafana dashboard queries is served.
    for name in dashboard_metrics() {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            scrape.contains(&format!("# TYPE {family} ")),
            "the dashboard queries {name}, which the endpoint does not serve"
        );
        // Errors have samples only once some call failed; this run need not have any.
        if name != "sim_errors_total" {
            assert!(
                scrape
                    .lines()
                    .any(|l| l.starts_with(&format!("{name} "))
                        || l.starts_with(&format!("{name}{{"))),
                "no sample of {name}"
            );
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "the run failed");

    // `sim compare`: the run against itself passes; with p99 planted at twice the base's it
    // fails, naming the limit.
    let mut planted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    let p99 = planted["pairing"]["p99_ms"].as_f64().expect("p99");
    assert!(p99 > 0.0);
    planted["pairing"]["p99_ms"] = serde_json::json!(p99 * 2.0);
    let slow = dir.join("slow.json");
    std::fs::write(&slow, serde_json::to_vec(&planted).expect("json")).expect("write");
    let compare = |new: &PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(["compare", "--max-regression", "p99=10%,error_rate=0.01"])
            .arg(&report)
            .arg(new)
            .arg("--junit")
            .arg(dir.join("compare.xml"))
            .output()
            .expect("compare")
    };
    let same = compare(&report);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let worse = compare(&slow);
    let text = String::from_utf8_lossy(&worse.stdout);
    assert_eq!(worse.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL p99 may get worse by 10%"), "{text}");
    let xml = std::fs::read_to_string(dir.join("compare.xml")).expect("junit");
    assert!(xml.contains("<failure type=\"regression\""), "{xml}");
    // A bad limit is a usage error.
    let bad = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["compare", "--max-regression", "p99=fast"])
        .arg(&report)
        .arg(&report)
        .output()
        .expect("compare");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--max-regression \"p99=fast\""));
    std::fs::remove_dir_all(&dir).ok();
}
