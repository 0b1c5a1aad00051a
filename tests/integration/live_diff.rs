//! `pitrix diff` against a real kube-apiserver: no differences right after apply, out-of-band
//! edits and catalog changes show field by field, planned deletions are listed, secrets hidden.

use crate::cluster;

use std::path::Path;
use std::process::Command;

use cluster::TestCluster;
use serde_json::Value;

fn pitrix(k: &TestCluster, args: &[&str], catalog: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .arg(catalog)
        .args(["--kubeconfig", k.kubeconfig.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("hunter2"), "a secret in stderr: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn live_diff_shows_drift_changes_and_deletions_without_secrets() {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog");
    pitrix::scaffold::new_catalog(&catalog).unwrap();
    let release = catalog.join("releases/host/default/hello.yaml");
    let text = std::fs::read_to_string(&release).unwrap() + "  dbPassword: hunter2\n";
    std::fs::write(&release, text).unwrap();

    // Before anything is applied, everything is to be added.
    let (code, out) = pitrix(&k, &["diff", "--exit-code", "--format", "json"], &catalog);
    assert_eq!(code, 1, "{out}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert!(d["summary"]["added"].as_u64().unwrap() >= 7, "{out}");
    assert!(!out.contains("hunter2"));

    let (code, _) = pitrix(&k, &["apply"], &catalog);
    assert_eq!(code, 0);
    let (code, out) = pitrix(&k, &["diff", "--exit-code"], &catalog);
    assert_eq!(code, 0, "no differences right after apply:\n{out}");

    // An out-of-band edit shows as a field change.
    k.kubectl_ok(&[
        "patch",
        "categories.application.kubesphere.io",
        "tools",
        "--type=merge",
        "-p",
        r#"{"spec":{"icon":"hacked"}}"#,
    ]);
    let (code, out) = pitrix(&k, &["diff", "--exit-code", "--format", "json"], &catalog);
    assert_eq!(code, 1, "{out}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let changed: Vec<&Value> = d["objects"].as_array().unwrap().iter().collect();
    assert_eq!(changed.len(), 1, "{out}");
    assert_eq!(changed[0]["kind"], "Category");
    assert_eq!(changed[0]["fields"][0]["path"], "/spec/icon");
    assert_eq!(changed[0]["fields"][0]["old"], "hacked");
    assert_eq!(changed[0]["fields"][0]["new"], "tool");
    let (code, _) = pitrix(&k, &["apply"], &catalog);
    assert_eq!(code, 0);

    // A changed secret value is hidden; a removed app is a planned deletion, listed first.
    let text = std::fs::read_to_string(&release)
        .unwrap()
        .replace("hunter2", "hunter3");
    std::fs::write(&release, text).unwrap();
    let (code, out) = pitrix(
        &k,
        &["diff", "--exit-code", "--format", "markdown"],
        &catalog,
    );
    assert_eq!(code, 1);
    assert!(
        !out.contains("hunter3") && !out.contains("hunter2"),
        "{out}"
    );
    for dir in ["apps/hello", "releases"] {
        std::fs::remove_dir_all(catalog.join(dir)).unwrap();
    }
    let (code, out) = pitrix(&k, &["diff", "--exit-code", "--format", "json"], &catalog);
    assert_eq!(code, 1, "{out}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let removed: Vec<(String, String)> = d["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "removed")
        .map(|o| {
            (
                o["kind"].as_str().unwrap().into(),
                o["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("ApplicationRelease", "hello"),
        ("Application", "hello"),
        ("ApplicationVersion", "hello-0.1.0"),
        ("ConfigMap", "hello-0.1.0"),
    ] {
        assert!(
            removed.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {removed:?}"
        );
    }
    assert_eq!(d["objects"][0]["action"], "removed", "deletions first");
}
