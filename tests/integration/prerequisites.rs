//! Live prerequisites on the real test API server with KubeSphere's tenant API served: a
//! workspace without a WorkspaceTemplate, a release namespace that is missing or in another
//! workspace, and a member cluster without a Cluster object are each named with their fix, and
//! nothing is applied; once they exist the same apply goes through.

use crate::cluster;
use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use cluster::TestCluster;
use serde_json::Value;

/// KubeSphere's WorkspaceTemplate, reduced to what the check reads (its name).
const TENANT_CRD: &str = r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
"metadata":{"name":"workspacetemplates.tenant.kubesphere.io"},
"spec":{"group":"tenant.kubesphere.io","scope":"Cluster",
"names":{"kind":"WorkspaceTemplate","plural":"workspacetemplates","singular":"workspacetemplate","listKind":"WorkspaceTemplateList"},
"versions":[{"name":"v1beta1","served":true,"storage":true,
"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}"#;

fn pitrix(k: &TestCluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .args(["--kubeconfig", k.kubeconfig.to_str().unwrap()])
        .output()
        .unwrap()
}

fn apply(k: &TestCluster, catalog: &Path) -> (i32, Value) {
    common::apply_json(&k.kubeconfig, catalog, &[])
}

fn wait_served(k: &TestCluster, resource: &str) {
    for _ in 0..100 {
        if k.kubectl(&["get", resource]).status.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{resource} is not served");
}

#[test]
fn missing_prerequisites_are_named_and_nothing_is_applied_until_they_exist() {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    k.kubectl_stdin_ok(&["apply", "-f", "-"], TENANT_CRD.as_bytes());
    wait_served(&k, "workspacetemplates.tenant.kubesphere.io");
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog");
    pitrix::scaffold::new_catalog(&catalog).unwrap();
    // A second release, into a namespace of another workspace.
    k.kubectl_ok(&["create", "namespace", "web"]);
    k.kubectl_ok(&[
        "label",
        "namespace",
        "web",
        "kubesphere.io/workspace=team-b",
    ]);
    let release =
        std::fs::read_to_string(catalog.join("releases/host/default/hello.yaml")).unwrap();
    std::fs::create_dir_all(catalog.join("releases/host/web")).unwrap();
    std::fs::write(catalog.join("releases/host/web/hello-web.yaml"), &release).unwrap();

    let (code, report) = apply(&k, &catalog);
    assert_ne!(code, 0, "{report:#}");
    let why = report["refused"].as_str().expect("refused");
    for expected in [
        "workspace `system-workspace`",
        "has no WorkspaceTemplate",
        "namespace `default` of release `hello` is in no workspace",
        "namespace `web` of release `hello-web` is in workspace `team-b`",
    ] {
        assert!(why.contains(expected), "no {expected:?} in:\n{why}");
    }
    assert!(
        !k.kubectl(&[
            "get",
            "configmap",
            "-n",
            "pitrix-system",
            "pitrix-inventory-my-store"
        ])
        .status
        .success(),
        "the inventory was written"
    );
    assert!(
        !k.kubectl(&["get", "categories.application.kubesphere.io", "tools"])
            .status
            .success(),
        "something was applied"
    );

    // pitrix diff says the same, as not-applicable errors, and fails.
    let out = pitrix(&k, &["diff", catalog.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("missing-prerequisite"), "{text}");
    assert!(text.contains("has no WorkspaceTemplate"), "{text}");

    // Made so, the same apply goes through.
    k.kubectl_stdin_ok(
        &["apply", "-f", "-"],
        br#"{"apiVersion":"tenant.kubesphere.io/v1beta1","kind":"WorkspaceTemplate","metadata":{"name":"system-workspace"},"spec":{"template":{"spec":{"manager":"admin"}}}}"#,
    );
    k.kubectl_ok(&[
        "label",
        "namespace",
        "default",
        "kubesphere.io/workspace=system-workspace",
    ]);
    k.kubectl_ok(&[
        "label",
        "namespace",
        "web",
        "kubesphere.io/workspace=system-workspace",
        "--overwrite",
    ]);
    let (code, report) = apply(&k, &catalog);
    assert_eq!(code, 0, "{report:#}");

    // A release on a member cluster KubeSphere does not know.
    let settings = std::fs::read_to_string(catalog.join("pitrix.toml")).unwrap();
    std::fs::write(
        catalog.join("pitrix.toml"),
        format!("{settings}\n[clusters.edge]\n"),
    )
    .unwrap();
    std::fs::create_dir_all(catalog.join("releases/edge/web")).unwrap();
    std::fs::write(catalog.join("releases/edge/web/hello-edge.yaml"), &release).unwrap();
    let (code, report) = apply(&k, &catalog);
    assert_ne!(code, 0, "{report:#}");
    let why = report["refused"].as_str().expect("refused");
    assert!(
        why.contains("cluster `edge` of release `hello-edge` has no Cluster object"),
        "{why}"
    );
}
