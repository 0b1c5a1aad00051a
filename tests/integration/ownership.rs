//! Ownership on a shared cluster, against a real kube-apiserver + etcd (pitrix-testkit's cluster): an
//! object made outside the catalog (the console, kubectl) or by another catalog is never taken
//! over silently, never pruned, and never given a review state; `--adopt` takes it over on
//! purpose; two catalogs that share a name do not take it from each other run after run.

use crate::cluster;
use crate::common;

use std::path::{Path, PathBuf};

use cluster::TestCluster;
use serde_json::Value;

const APPS: &str = "applications.application.kubesphere.io";
const CATEGORIES: &str = "categories.application.kubesphere.io";

fn cluster() -> TestCluster {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    k
}

/// A scaffolded catalog named `name`.
fn catalog(tmp: &tempfile::TempDir, name: &str) -> PathBuf {
    let dir = tmp.path().join(name);
    pitrix::scaffold::new_catalog(&dir).unwrap();
    let settings = dir.join("pitrix.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        text.replace("name = \"my-store\"", &format!("name = \"{name}\"")),
    )
    .unwrap();
    dir
}

/// `pitrix apply CATALOG` with JSON output: exit code and report.
fn run(k: &TestCluster, catalog: &Path, extra: &[&str]) -> (i32, Value) {
    common::apply_json(&k.kubeconfig, catalog, extra)
}

fn outcomes(report: &Value, outcome: &str) -> Vec<(String, String)> {
    common::outcomes_of(report, outcome)
}

fn get(k: &TestCluster, resource: &str, name: &str) -> Value {
    serde_json::from_str(&k.kubectl_ok(&["get", resource, name, "-o", "json"])).unwrap()
}

fn exists(k: &TestCluster, resource: &str, name: &str) -> bool {
    k.kubectl(&["get", resource, name]).status.success()
}

fn inventory_exists(k: &TestCluster, catalog: &str) -> bool {
    k.kubectl(&[
        "get",
        "configmap",
        "-n",
        "pitrix-system",
        &format!("pitrix-inventory-{catalog}"),
    ])
    .status
    .success()
}

/// An Application made the way the console makes one: no pitrix mark, its own field manager.
fn console_application(k: &TestCluster, name: &str) {
    let app = format!(
        r#"{{"apiVersion":"application.kubesphere.io/v2","kind":"Application","metadata":{{"name":"{name}","labels":{{"kubesphere.io/workspace":"system-workspace"}}}},"spec":{{"appType":"helm"}}}}"#
    );
    k.kubectl_stdin_ok(
        &["create", "--field-manager=ks-console", "-f", "-"],
        app.as_bytes(),
    );
}

#[test]
fn an_object_made_in_the_console_is_a_conflict_until_adopted() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let store = catalog(&tmp, "store-a");
    console_application(&k, "hello");
    let before = get(&k, APPS, "hello");

    // Refused before anything is written: no category, no inventory, no review state.
    let (code, report) = run(&k, &store, &[]);
    assert_ne!(code, 0, "{report:#}");
    let why = report["refused"].as_str().expect("refused");
    assert!(why.contains("Application/hello"), "{why}");
    assert!(why.contains("made outside this catalog"), "{why}");
    assert!(why.contains("ks-console"), "{why}");
    assert!(why.contains("--adopt"), "{why}");
    assert!(!exists(&k, CATEGORIES, "tools"), "something was applied");
    assert!(
        !inventory_exists(&k, "store-a"),
        "the inventory was written"
    );
    let after = get(&k, APPS, "hello");
    assert_eq!(before["metadata"]["labels"], after["metadata"]["labels"]);
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
    assert!(after.pointer("/status/state").is_none(), "{after:#}");

    // The plan says what --adopt would do, and writes nothing.
    let (code, report) = run(&k, &store, &["--adopt", "--dry-run"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        outcomes(&report, "wouldAdopt"),
        [("Application".to_string(), "hello".to_string())]
    );
    assert_eq!(
        get(&k, APPS, "hello")["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );

    // Adopted on purpose: marked as the catalog's, given its review state, then a no-op.
    let (code, report) = run(&k, &store, &["--adopt"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        outcomes(&report, "adopted"),
        [("Application".to_string(), "hello".to_string())]
    );
    let adopted = get(&k, APPS, "hello");
    assert_eq!(
        adopted["metadata"]["labels"]["pitrix.io/catalog"],
        "store-a"
    );
    assert_eq!(adopted["status"]["state"], "active");
    let (code, report) = run(&k, &store, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(outcomes(&report, "adopted").is_empty(), "{report:#}");
    assert!(outcomes(&report, "created").is_empty(), "{report:#}");
}

#[test]
fn two_catalogs_do_not_take_a_shared_name_from_each_other() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let a = catalog(&tmp, "store-a");
    let b = catalog(&tmp, "store-b");
    // B shares the category `tools` with A, and has its own app.
    std::fs::rename(b.join("apps/hello"), b.join("apps/hello-b")).unwrap();
    std::fs::remove_dir_all(b.join("releases")).unwrap();
    std::fs::remove_dir_all(b.join("repos")).unwrap();

    let (code, report) = run(&k, &a, &[]);
    assert_eq!(code, 0, "{report:#}");
    let tools = get(&k, CATEGORIES, "tools");
    assert_eq!(tools["metadata"]["labels"]["pitrix.io/catalog"], "store-a");

    // B is refused, naming A; A's category is untouched; B's shared storage namespace is not a
    // conflict (it is borrowed, never taken).
    for _ in 0..2 {
        let (code, report) = run(&k, &b, &[]);
        assert_ne!(code, 0, "{report:#}");
        let why = report["refused"].as_str().expect("refused");
        assert!(why.contains("Category/tools"), "{why}");
        assert!(why.contains("catalog `store-a`"), "{why}");
        assert!(!why.contains("Namespace"), "{why}");
        assert_eq!(
            get(&k, CATEGORIES, "tools")["metadata"]["resourceVersion"],
            tools["metadata"]["resourceVersion"]
        );
        // A sees nothing to do: no flip-flop.
        let (code, report) = run(&k, &a, &[]);
        assert_eq!(code, 0, "{report:#}");
        assert!(outcomes(&report, "created").is_empty(), "{report:#}");
        assert!(outcomes(&report, "updated").is_empty(), "{report:#}");
    }

    // Without the shared category B applies, and uses the storage namespace as it is.
    std::fs::remove_file(b.join("categories/tools.yaml")).unwrap();
    let app = std::fs::read_to_string(b.join("apps/hello-b/app.yaml")).unwrap();
    std::fs::write(
        b.join("apps/hello-b/app.yaml"),
        app.replace("category: tools\n", ""),
    )
    .unwrap();
    let (code, report) = run(&k, &b, &[]);
    assert_eq!(code, 0, "{report:#}");
    let skipped: Vec<(String, String)> = outcomes(&report, "skipped");
    assert!(
        skipped.contains(&("Namespace".to_string(), "extension-openpitrix".to_string())),
        "{report:#}"
    );
    let ns = get(&k, "namespaces", "extension-openpitrix");
    assert_eq!(ns["metadata"]["labels"]["pitrix.io/catalog"], "store-a");
    // And neither takes anything from the other afterwards.
    for store in [&a, &b, &a] {
        let (code, report) = run(&k, store, &[]);
        assert_eq!(code, 0, "{report:#}");
        assert!(outcomes(&report, "created").is_empty(), "{report:#}");
        assert!(outcomes(&report, "updated").is_empty(), "{report:#}");
    }
    assert_eq!(
        get(&k, CATEGORIES, "tools")["metadata"]["labels"]["pitrix.io/catalog"],
        "store-a"
    );
    assert!(exists(&k, APPS, "hello-b"));
}

#[test]
fn no_review_state_is_written_onto_an_object_whose_apply_failed() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let store = catalog(&tmp, "store-a");
    let (code, report) = run(&k, &store, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(get(&k, APPS, "hello")["status"]["state"], "active");

    // Another applier declares a field of the Application with another value: a conflict.
    let theirs = r#"{"apiVersion":"application.kubesphere.io/v2","kind":"Application","metadata":{"name":"hello"},"spec":{"appHome":"https://theirs.example.com"}}"#;
    k.kubectl_stdin_ok(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=someone-else",
            "-f",
            "-",
        ],
        theirs.as_bytes(),
    );
    // The catalog suspends the app: its apply fails on the conflict, so its state stays.
    let app_file = store.join("apps/hello/app.yaml");
    let text = std::fs::read_to_string(&app_file).unwrap();
    std::fs::write(
        &app_file,
        text.replace("state: active\nversions:", "state: suspended\nversions:"),
    )
    .unwrap();
    let (code, report) = run(&k, &store, &[]);
    assert_eq!(code, 1, "{report:#}");
    let failed = outcomes(&report, "failed");
    assert!(
        failed.contains(&("Application".to_string(), "hello".to_string())),
        "{report:#}"
    );
    assert!(
        !outcomes(&report, "statusWritten")
            .contains(&("Application".to_string(), "hello".to_string())),
        "{report:#}"
    );
    assert_eq!(get(&k, APPS, "hello")["status"]["state"], "active");
}

#[test]
fn orphans_of_a_lost_inventory_are_reported_and_pruned_only_when_asked() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let store = catalog(&tmp, "store-a");
    let (code, report) = run(&k, &store, &[]);
    assert_eq!(code, 0, "{report:#}");
    // The inventory is lost, and the catalog drops its repo meanwhile.
    k.kubectl_ok(&[
        "delete",
        "configmap",
        "-n",
        "pitrix-system",
        "pitrix-inventory-store-a",
    ]);
    std::fs::remove_dir_all(store.join("repos")).unwrap();

    let (code, report) = run(&k, &store, &[]);
    assert_eq!(code, 0, "{report:#}");
    let orphan = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["object"]["kind"] == "Repo")
        .unwrap_or_else(|| panic!("the orphaned repo is not reported: {report:#}"));
    assert_eq!(orphan["outcome"], "skipped", "{orphan}");
    assert!(
        orphan["detail"]
            .as_str()
            .unwrap()
            .contains("--prune-orphans"),
        "{orphan}"
    );
    assert!(exists(&k, "repos.application.kubesphere.io", "bitnami"));

    let (code, report) = run(&k, &store, &["--prune-orphans"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        outcomes(&report, "pruned"),
        [("Repo".to_string(), "bitnami".to_string())]
    );
    assert!(!exists(&k, "repos.application.kubesphere.io", "bitnami"));
}
