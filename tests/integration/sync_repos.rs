//! `pitrix apply --sync-repos` against a real kube-apiserver + etcd (pitrix-testkit's cluster): repos that
//! apply creates or changes get `status.state=manualTrigger` (KubeSphere's repo controller then
//! syncs them at once, reference §7); unchanged repos are left alone; without the flag nothing
//! is triggered.

use crate::cluster;
use crate::common;

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
    let (ok, report) = try_apply(k, catalog, extra);
    assert!(ok, "apply failed:\n{report:#}");
    report
}

/// `pitrix apply`: whether it exited 0, and its report.
fn try_apply(k: &TestCluster, catalog: &Path, extra: &[&str]) -> (bool, Value) {
    let (code, report) = common::apply_json(&k.kubeconfig, catalog, extra);
    (code == 0, report)
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

/// The version ID of the one ApplicationRelease the catalog compiles to (its appversion-id label).
fn release_version_id(catalog: &Path) -> String {
    let (compiled, _) = pitrix::pipeline::build(catalog).expect("the catalog compiles");
    compiled
        .objects
        .iter()
        .map(|o| o.to_json())
        .find(|v| v["kind"] == "ApplicationRelease")
        .and_then(|v| {
            v["metadata"]["labels"]["application.kubesphere.io/appversion-id"]
                .as_str()
                .map(str::to_string)
        })
        .expect("a release with a version ID")
}

#[test]
fn releases_of_synced_charts_wait_for_kubesphere_to_make_their_versions() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let cat = tmp.path().join("catalog");
    pitrix::scaffold::new_catalog(&cat).unwrap();
    std::fs::write(
        cat.join("releases/host/default/hello.yaml"),
        "app: bitnami/nginx\nversion: 15.0.0\n",
    )
    .unwrap();
    let version = release_version_id(&cat);

    // The sync never makes the version: the release is refused with why, never sent.
    let (ok, report) = try_apply(&k, &cat, &["--sync-repos", "--wait", "--timeout", "3s"]);
    assert!(!ok, "{report:#}");
    let release = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["object"]["kind"] == "ApplicationRelease")
        .unwrap_or_else(|| panic!("no release in {report:#}"));
    assert_eq!(release["outcome"], "failed", "{release}");
    let why = release["detail"].as_str().unwrap();
    assert!(
        why.contains(&version) && why.contains("repo `bitnami`"),
        "{why}"
    );
    assert!(
        !k.kubectl(&[
            "get",
            "applicationreleases.application.kubesphere.io",
            "hello"
        ])
        .status
        .success()
    );

    // KubeSphere's sync (played here) makes the version a few seconds later: apply waits for
    // it, then sends the release.
    let kubeconfig = k.kubeconfig.clone();
    let body = format!(
        r#"{{"apiVersion":"application.kubesphere.io/v2","kind":"ApplicationVersion","metadata":{{"name":"{version}","labels":{{"application.kubesphere.io/repo-name":"bitnami"}}}},"spec":{{"versionName":"15.0.0"}}}}"#
    );
    let sync = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        let mut child = Command::new(cluster::kubectl_program())
            .args([
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "create",
                "-f",
                "-",
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    });
    let report = apply(&k, &cat, &["--sync-repos"]);
    sync.join().unwrap();
    let release = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["object"]["kind"] == "ApplicationRelease")
        .unwrap_or_else(|| panic!("no release in {report:#}"));
    assert_eq!(release["outcome"], "created", "{report:#}");
}
