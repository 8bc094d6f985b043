//! The `sim` binary: exit codes and messages.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use crate::double;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("run sim")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-it-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn check_refuses_a_broken_scenario_with_exit_2_naming_file_line_and_field() {
    let dir = temp_dir("check");
    let file = dir.join("broken.toml");
    std::fs::write(
        &file,
        "version = 1\n[run]\nduration = \"10s\"\n[population]\narrival = { kind = \"zigzag\" }\n[thresholds]\ntimeout_rate = 2\n",
    )
    .expect("write");
    let out = sim(&["check", file.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = file.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{name}:5: population.arrival.kind: unknown arrival model \"zigzag\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{name}:7: thresholds.timeout_rate: must be between 0 and 1"
        )),
        "{stderr}"
    );
    // `run` refuses it the same way, before starting anything.
    let out = sim(&["run", "--headless", file.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn check_accepts_every_shipped_scenario() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = sim(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_threshold_exits_1_naming_it() {
    let fakes = fakes::spawn(fakes::FakesConfig::default())
        .await
        .expect("fakes");
    let base: url::Url = fakes.base_url().parse().expect("url");
    let mm = double::spawn(&base, Duration::from_secs(5), 0).await;
    let dir = temp_dir("threshold");
    let file = dir.join("impossible.toml");
    std::fs::write(
        &file,
        format!(
            r#"# impossible: does a one-microsecond median fail the run?
version = 1
name = "impossible"
[run]
duration = "1s"
seed = 2
drain = "10s"
workers = 2
progress_every = "500ms"
[target]
kind = "urls"
fakes = "{}"
matchmaker = "{}"
[population]
arrival = {{ kind = "constant", rate = 4 }}
[population.behaviour]
login = "password"
match_length = "forever"
[thresholds]
pairing_p50 = "1us"
error_rate = 0
"#,
            base, mm.url
        ),
    )
    .expect("write");
    let report = dir.join("out/report.json");
    let junit = dir.join("out/junit.xml");
    let html = dir.join("out/report.html");
    let args: Vec<String> = vec![
        "run".into(),
        file.display().to_string(),
        "--report".into(),
        report.display().to_string(),
        "--junit".into(),
        junit.display().to_string(),
        "--html".into(),
        html.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(&args)
            .output()
            .expect("run sim")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("sim: threshold pairing_p50 failed: pairing_p50 was"),
        "{stderr}"
    );
    assert!(stdout.contains("FAIL  pairing_p50 <= 1us"), "{stdout}");
    assert!(stdout.contains("PASS  error_rate <= 0%"), "{stdout}");
    assert!(
        stdout.contains("invariants PASS (4 players, 2 sessions)"),
        "{stdout}"
    );
    // Headless because stdout is not a terminal: progress lines on stdout.
    assert!(stdout.contains("matched"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("name=\"pairing_p50 &lt;= 1us\""), "{xml}");
    // The page carries its chart library and the verdict it draws.
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("uPlot"), "the chart library is embedded");
    assert!(
        page.contains("pairing_p50"),
        "the broken threshold is on the page"
    );

    // Merging a failing report with itself still fails, on the same threshold.
    let r = report.display().to_string();
    let out = sim(&["merge", &r, &r]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 shards"));
    drop(mm);
    drop(fakes);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
