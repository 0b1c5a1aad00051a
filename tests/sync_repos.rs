//! `pitrix apply --sync-repos` against a real kube-apiserver + etcd (tests/cluster): repos that
//! apply creates or changes get `status.state=manualTrigger` (KubeSphere's repo controller then
//! syncs them at once, reference §7); unchanged repos are left alone; without the flag nothing
//! is triggered.

mod cluster;

use std::path::Path;
use std::process::Command;

use cluster::TestCluster;
use serde_json::Value;

const REPOS: &str = "repos.application.kubesphere.io";

fn cluster() -> TestCluster {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    k
}

fn apply(k: &TestCluster, catalog: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("apply")
        .arg(catalog)
        .args([
            "--kubeconfig",
            k.kubeconfig.to_str().unwrap(),
            "--output",
            "json",
        ])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "apply failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

/// (outcome, name) of every Repo result of a report.
fn repo_outcomes(report: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["object"]["kind"] == "Repo")
        .map(|r| {
            (
                r["outcome"].as_str().unwrap().to_string(),
                r["object"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn state(k: &TestCluster, name: &str) -> String {
    let v: Value =
        serde_json::from_str(&k.kubectl_ok(&["get", REPOS, name, "-o", "json"])).unwrap();
    v.pointer("/status/state")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn new_and_changed_repos_are_triggered_unchanged_ones_are_not() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let cat = tmp.path().join("catalog");
    pitrix::scaffold::new_catalog(&cat).unwrap();
    std::fs::write(
        cat.join("repos/local.yaml"),
        "url: http://127.0.0.1:1/charts\nsyncPeriod: 0\ndescription: first\n",
    )
    .unwrap();

    // Dry run: what would be triggered, nothing written.
    let report = apply(&k, &cat, &["--sync-repos", "--dry-run"]);
    assert_eq!(
        repo_outcomes(&report),
        pairs(&[
            ("wouldCreate", "bitnami"),
            ("wouldCreate", "local"),
            ("wouldWriteStatus", "bitnami"),
            ("wouldWriteStatus", "local"),
        ])
    );

    let report = apply(&k, &cat, &["--sync-repos"]);
    assert_eq!(
        repo_outcomes(&report),
        pairs(&[
            ("created", "bitnami"),
            ("created", "local"),
            ("statusWritten", "bitnami"),
            ("statusWritten", "local"),
        ])
    );
    assert_eq!(state(&k, "bitnami"), "manualTrigger");
    assert_eq!(state(&k, "local"), "manualTrigger");

    // Nothing changed: nothing triggered.
    let report = apply(&k, &cat, &["--sync-repos"]);
    assert_eq!(
        repo_outcomes(&report),
        pairs(&[("unchanged", "bitnami"), ("unchanged", "local")])
    );

    // A changed repo without the flag: updated, not triggered.
    std::fs::write(
        cat.join("repos/local.yaml"),
        "url: http://127.0.0.1:1/charts\nsyncPeriod: 0\ndescription: second\n",
    )
    .unwrap();
    let report = apply(&k, &cat, &[]);
    assert_eq!(
        repo_outcomes(&report),
        pairs(&[("unchanged", "bitnami"), ("updated", "local")])
    );

    // A changed repo with the flag: only that one is triggered.
    std::fs::write(
        cat.join("repos/local.yaml"),
        "url: http://127.0.0.1:1/other\nsyncPeriod: 0\ndescription: second\n",
    )
    .unwrap();
    let report = apply(&k, &cat, &["--sync-repos"]);
    assert_eq!(
        repo_outcomes(&report),
        pairs(&[
            ("statusWritten", "local"),
            ("unchanged", "bitnami"),
            ("updated", "local"),
        ])
    );
    assert_eq!(state(&k, "local"), "manualTrigger");
}
