//! The Kubernetes manifests in `deploy/k8s`: rendered (`kubectl kustomize`, when kubectl is
//! installed) and validated against the Kubernetes schema with `kubernetes-validate` (PyPI; it
//! bundles the schemas and works offline — `.ci/run` installs it). Without the validator the
//! schema checks are skipped with a message saying so; the consistency checks always run: the
//! shard count agrees across the Job and its settings, and the stack runs what
//! `scenarios/steady-1v1.toml` describes.

use std::path::{Path, PathBuf};
use std::process::Command;

use sim::scenario::{Plan, TargetPlan};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the validator over `files`; (success, output).
fn validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !text.contains("ERROR"), text)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn manifests_validate_against_the_kubernetes_schema() {
    if !on_path("kubernetes-validate") {
        eprintln!(
            "SKIPPED manifests_validate_against_the_kubernetes_schema: kubernetes-validate is not installed (pip install kubernetes-validate)"
        );
        return;
    }
    let tmp = std::env::temp_dir().join(format!("sim-it-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let kubectl = on_path("kubectl");
    if !kubectl {
        eprintln!("kubectl is not installed: validating the files as written, not rendered");
    }
    for part in ["stack", "run"] {
        let dir = deploy().join("k8s").join(part);
        let files = yaml_files(&dir);
        assert!(files.len() >= 3, "{part}: {files:?}");
        let (ok, text) = validate(&files);
        assert!(ok, "{part}: {text}");
        assert!(text.contains("passed"), "{text}");
        if kubectl {
            let out = Command::new("kubectl")
                .args(["kustomize"])
                .arg(&dir)
                .output()
                .expect("kubectl kustomize");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rendered = tmp.join(format!("{part}.yaml"));
            std::fs::write(&rendered, &out.stdout).expect("write");
            let (ok, text) = validate(std::slice::from_ref(&rendered));
            assert!(ok, "{part} rendered: {text}");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("app.kubernetes.io/part-of: matchbench"));
        }
    }
    // The validator does reject what Kubernetes would: an unknown completion mode and field.
    let broken = tmp.join("broken.yaml");
    let shards = std::fs::read_to_string(deploy().join("k8s/run/shards.yaml")).expect("read");
    std::fs::write(
        &broken,
        shards
            .replace("completionMode: Indexed", "completionMode: 7")
            .replace("backoffLimit: 0", "backoffLimit: 0\n  shards: 4"),
    )
    .expect("write");
    let (ok, text) = validate(&[broken]);
    assert!(!ok, "a broken Job must fail validation: {text}");
    std::fs::remove_dir_all(&tmp).expect("cleanup");
}

/// The value after `key:` on the first line that has it (trimmed, quotes removed).
fn value_of(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key}"))
        .trim()
        .trim_matches('"')
        .to_owned()
}

#[test]
fn the_shard_count_agrees_and_the_stack_is_the_scenarios() {
    let run = deploy().join("k8s/run");
    let shards = std::fs::read_to_string(run.join("shards.yaml")).expect("shards");
    let settings = std::fs::read_to_string(run.join("settings.yaml")).expect("settings");
    let n = value_of(&settings, "SHARDS:");
    assert_eq!(value_of(&shards, "completions:"), n);
    assert_eq!(value_of(&shards, "parallelism:"), n);
    assert!(shards.contains("completionMode: Indexed"));
    assert!(shards.contains(r#"--shard "$JOB_COMPLETION_INDEX/$SHARDS""#));

    let scenario_file = value_of(&settings, "SCENARIO:");
    let plan = Plan::from_file(&deploy().join("..").join(&scenario_file)).expect("scenario");
    let TargetPlan::Embedded(embedded) = &plan.target else {
        panic!("{scenario_file}: the stack stands in for an embedded target");
    };
    // The ConfigMaps' TOML, as the fakes and matchmaker read it.
    let config = |file: &str, key: &str| -> toml::Table {
        let text = std::fs::read_to_string(deploy().join("k8s/stack").join(file)).expect("read");
        let start = text.find(&format!("{key}: |")).expect("the key") + key.len() + 3;
        let body: String = text[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .map(|l| format!("{}\n", &l[4..]))
            .collect();
        body.parse().expect("TOML")
    };
    let fleet: fakes::dsmc::fleet::FleetConfig =
        toml::Value::Table(config("fakes.yaml", "fleet.toml"))
            .try_into()
            .expect("a fleet file");
    let regions: Vec<(String, usize)> = fleet
        .regions
        .iter()
        .map(|r| (r.name.clone(), r.servers))
        .collect();
    assert_eq!(regions, embedded.fleet.regions);
    let mm = config("matchmaker.yaml", "matchmaker.toml");
    assert_eq!(mm.get("modes"), embedded.matchmaker.get("modes"));
}
