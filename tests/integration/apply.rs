//! `pitrix apply` against a real kube-apiserver + etcd (pitrix-testkit's cluster): fresh apply, no-op
//! re-apply, updates of only what changed, review states in status, prune and its guard,
//! out-of-band edits restored, field conflicts, immutable packages.

use crate::cluster;
use crate::common;

use std::path::Path;
use std::process::Command;

use cluster::TestCluster;
use serde_json::Value;

fn cluster() -> TestCluster {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    k
}

fn scaffold() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    pitrix::scaffold::new_catalog(&tmp.path().join("catalog")).unwrap();
    tmp
}

/// Runs `pitrix apply` with JSON output: exit code and report.
fn apply(k: &TestCluster, catalog: &Path, extra: &[&str]) -> (i32, Value) {
    common::apply_json(&k.kubeconfig, catalog, extra)
}

fn outcomes<'a>(report: &'a Value, outcome: &str) -> Vec<(&'a str, &'a str)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == outcome)
        .map(|r| {
            (
                r["object"]["kind"].as_str().unwrap(),
                r["object"]["name"].as_str().unwrap(),
            )
        })
        .collect()
}

fn get(k: &TestCluster, resource: &str, name: &str) -> Value {
    serde_json::from_str(&k.kubectl_ok(&["get", resource, name, "-o", "json"])).unwrap()
}

fn exists(k: &TestCluster, resource: &str, name: &str) -> bool {
    k.kubectl(&["get", resource, name]).status.success()
}

const APPS: &str = "applications.application.kubesphere.io";
const VERSIONS: &str = "applicationversions.application.kubesphere.io";
const RELEASES: &str = "applicationreleases.application.kubesphere.io";
const CATEGORIES: &str = "categories.application.kubesphere.io";

/// resourceVersion of every object the catalog manages: equal before and after means no writes.
fn resource_versions(k: &TestCluster) -> Vec<(String, String)> {
    let mut all = Vec::new();
    // Every object of the catalog, and its inventory.
    for (resource, selector) in [
        (APPS, "pitrix.io/catalog"),
        (VERSIONS, "pitrix.io/catalog"),
        (RELEASES, "pitrix.io/catalog"),
        (CATEGORIES, "pitrix.io/catalog"),
        ("repos.application.kubesphere.io", "pitrix.io/catalog"),
        ("configmaps", "pitrix.io/catalog"),
        ("namespaces", "pitrix.io/catalog"),
        ("configmaps", "pitrix.io/inventory"),
    ] {
        let list: Value = serde_json::from_str(
            &k.kubectl_ok(&["get", resource, "-A", "-l", selector, "-o", "json"]),
        )
        .unwrap();
        for item in list["items"].as_array().unwrap() {
            all.push((
                format!("{resource}/{}", item["metadata"]["name"].as_str().unwrap()),
                item["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ));
        }
    }
    all.sort();
    all
}

#[test]
fn fresh_apply_then_noop_then_only_what_changed() {
    let k = cluster();
    let tmp = scaffold();
    let catalog = tmp.path().join("catalog");

    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 0, "{report:#}");
    let created = outcomes(&report, "created");
    for expected in [
        ("Namespace", "extension-openpitrix"),
        ("Category", "tools"),
        ("Repo", "bitnami"),
        ("ConfigMap", "hello-0.1.0"),
        ("Application", "hello"),
        ("ApplicationVersion", "hello-0.1.0"),
        ("ApplicationRelease", "hello"),
    ] {
        assert!(
            created.contains(&expected),
            "{expected:?} not created: {report:#}"
        );
    }

    // Review states landed in status, with the timestamps the CRDs require.
    let version = get(&k, VERSIONS, "hello-0.1.0");
    assert_eq!(version["status"]["state"], "active");
    assert_eq!(version["status"]["message"], "First release.");
    assert!(version["status"]["updated"].is_string());
    let app = get(&k, APPS, "hello");
    assert_eq!(app["status"]["state"], "active");
    assert!(app["status"]["updateTime"].is_string());
    // The version is a controller-owned child of its live app.
    let owner = &version["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Application");
    assert_eq!(owner["uid"], app["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    // The release, exactly as KubeSphere reads it.
    let release = get(&k, RELEASES, "hello");
    assert_eq!(release["spec"]["appID"], "hello");
    assert_eq!(release["spec"]["appVersionID"], "hello-0.1.0");
    assert_eq!(
        release["metadata"]["labels"]["kubesphere.io/namespace"],
        "default"
    );
    // The stored package, under BinaryKey, immutable.
    let stored: Value = serde_json::from_str(&k.kubectl_ok(&[
        "get",
        "configmap",
        "hello-0.1.0",
        "-n",
        "extension-openpitrix",
        "-o",
        "json",
    ]))
    .unwrap();
    assert!(stored["binaryData"]["BinaryKey"].as_str().unwrap().len() > 100);
    assert_eq!(stored["immutable"], true);

    // A second apply changes nothing: no object is written.
    let before = resource_versions(&k);
    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(outcomes(&report, "created").is_empty(), "{report:#}");
    assert!(outcomes(&report, "updated").is_empty(), "{report:#}");
    assert!(outcomes(&report, "statusWritten").is_empty(), "{report:#}");
    assert_eq!(
        resource_versions(&k),
        before,
        "a no-op apply wrote to the cluster"
    );

    // A changed category updates that category alone.
    let file = catalog.join("categories/tools.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("displayName: Tools", "displayName: Toolbox");
    std::fs::write(&file, text).unwrap();
    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        outcomes(&report, "updated"),
        [("Category", "tools")],
        "{report:#}"
    );
    assert_eq!(
        get(&k, CATEGORIES, "tools")["metadata"]["annotations"]["kubesphere.io/alias-name"],
        "Toolbox"
    );
    let after = resource_versions(&k);
    let changed: Vec<_> = after.iter().filter(|rv| !before.contains(rv)).collect();
    assert_eq!(changed.len(), 1, "only the category changed: {changed:?}");
}

#[test]
fn removed_app_is_pruned_with_versions_and_storage_and_the_guard_holds() {
    let k = cluster();
    let tmp = scaffold();
    let catalog = tmp.path().join("catalog");
    // A second app, so that removing it stays under the prune guard.
    let copy = common::copy_tree;
    for n in 2..=8 {
        copy(
            &catalog.join("apps/hello"),
            &catalog.join(format!("apps/hello{n}")),
        );
    }
    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(exists(&k, VERSIONS, "hello2-0.1.0"));

    std::fs::remove_dir_all(catalog.join("apps/hello2")).unwrap();
    let (code, report) = apply(&k, &catalog, &[]);
    // 3 of 28 tracked objects: within the guard.
    assert_eq!(code, 0, "{report:#}");
    let pruned = outcomes(&report, "pruned");
    assert_eq!(
        pruned,
        [
            ("ApplicationVersion", "hello2-0.1.0"),
            ("Application", "hello2"),
            ("ConfigMap", "hello2-0.1.0")
        ],
        "releases first, storage last: {report:#}"
    );
    assert!(!exists(&k, VERSIONS, "hello2-0.1.0"));
    assert!(!exists(&k, APPS, "hello2"));
    assert!(
        !k.kubectl(&[
            "get",
            "configmap",
            "hello2-0.1.0",
            "-n",
            "extension-openpitrix"
        ])
        .status
        .success()
    );
    assert!(exists(&k, APPS, "hello"), "the rest stays");

    // Emptying the catalog of apps and releases would delete 22 of 25: refused, nothing deleted.
    std::fs::remove_dir_all(catalog.join("apps")).unwrap();
    std::fs::remove_dir_all(catalog.join("releases")).unwrap();
    let before = resource_versions(&k);
    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 1);
    assert!(
        report["refused"]
            .as_str()
            .unwrap()
            .contains("--allow-mass-prune"),
        "{report:#}"
    );
    assert_eq!(resource_versions(&k), before, "the guard deleted nothing");
    assert!(exists(&k, APPS, "hello"));

    let (code, report) = apply(&k, &catalog, &["--allow-mass-prune"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(!exists(&k, APPS, "hello"));
    assert!(!exists(&k, RELEASES, "hello"));
    // The storage namespace is KubeSphere's: never pruned.
    assert!(exists(&k, "namespace", "extension-openpitrix"));
}

#[test]
fn out_of_band_edits_are_restored_and_conflicts_need_force() {
    let k = cluster();
    let tmp = scaffold();
    let catalog = tmp.path().join("catalog");
    assert_eq!(apply(&k, &catalog, &[]).0, 0);

    // Someone edits the category by hand: apply puts it back.
    k.kubectl_ok(&[
        "patch",
        CATEGORIES,
        "tools",
        "--type=merge",
        "-p",
        r#"{"spec":{"icon":"hacked"}}"#,
    ]);
    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(outcomes(&report, "updated"), [("Category", "tools")]);
    assert_eq!(get(&k, CATEGORIES, "tools")["spec"]["icon"], "tool");

    // A hand edit of a stored package's labels, its digest annotation untouched: apply lists
    // packages by metadata, but one another writer touched is read and compared in full.
    k.kubectl_ok(&[
        "label",
        "configmap",
        "hello-0.1.0",
        "-n",
        "extension-openpitrix",
        "app.kubernetes.io/managed-by=someone",
        "--overwrite",
    ]);
    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(outcomes(&report, "updated"), [("ConfigMap", "hello-0.1.0")]);
    let package = k.kubectl_ok(&[
        "get",
        "configmap",
        "hello-0.1.0",
        "-n",
        "extension-openpitrix",
        "-o",
        "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}",
    ]);
    assert_eq!(package, "pitrix");

    // Another field manager takes the field with server-side apply: a conflict, reported.
    let other = r#"{"apiVersion":"application.kubesphere.io/v2","kind":"Category","metadata":{"name":"tools"},"spec":{"icon":"theirs"}}"#;
    k.kubectl_stdin_ok(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=someone-else",
            "-f",
            "-",
        ],
        other.as_bytes(),
    );
    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 1, "{report:#}");
    let failure = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "failed")
        .unwrap();
    assert_eq!(failure["object"]["name"], "tools");
    let why = failure["detail"].as_str().unwrap();
    assert!(
        why.contains("someone-else") && why.contains("--force-conflicts"),
        "{why}"
    );
    assert_eq!(get(&k, CATEGORIES, "tools")["spec"]["icon"], "theirs");

    let (code, report) = apply(&k, &catalog, &["--force-conflicts"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(get(&k, CATEGORIES, "tools")["spec"]["icon"], "tool");
}

#[test]
fn a_changed_package_is_refused_unless_replacing_is_asked_for() {
    let k = cluster();
    let tmp = scaffold();
    let catalog = tmp.path().join("catalog");
    assert_eq!(apply(&k, &catalog, &[]).0, 0);

    // Same version, other chart bytes.
    let values = catalog.join("apps/hello/0.1.0/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap() + "extra: true\n";
    std::fs::write(&values, text).unwrap();
    let (code, report) = apply(&k, &catalog, &[]);
    assert_eq!(code, 1);
    let failure = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "failed")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(failure["object"]["name"], "hello-0.1.0");
    assert!(
        failure["detail"]
            .as_str()
            .unwrap()
            .contains("bump the version")
    );

    let (code, report) = apply(&k, &catalog, &["--replace-changed-packages"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        outcomes(&report, "replaced"),
        [("ConfigMap", "hello-0.1.0")]
    );
}

#[test]
fn dry_run_changes_nothing_and_from_applies_a_compiled_output() {
    let k = cluster();
    let tmp = scaffold();
    let catalog = tmp.path().join("catalog");
    let (code, report) = apply(&k, &catalog, &["--dry-run"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(!outcomes(&report, "wouldCreate").is_empty());
    assert!(!exists(&k, APPS, "hello"));

    let out = tmp.path().join("out");
    let compiled = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args([
            "compile",
            catalog.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(compiled.status.success());
    let (code, report) = apply(
        &k,
        Path::new("/nonexistent"),
        &["--from", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{report:#}");
    assert!(exists(&k, APPS, "hello"));

    // An output edited after compiling is refused.
    let file = out.join("objects/categories/tools.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("Tools", "Tampered");
    std::fs::write(&file, text).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args([
            "apply",
            "--from",
            out.to_str().unwrap(),
            "--kubeconfig",
            k.kubeconfig.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("does not match the digest"));
}

/// Every object of the compiled catalog is live and as compiled, and nothing else of the
/// catalog is: the end state of a clean apply.
fn assert_converged(k: &TestCluster, catalog: &Path) {
    let (compiled, _) = pitrix::pipeline::build(catalog).expect("compiles");
    let desired = pitrix::apply::Desired::from_compiled(&compiled);
    let mut live = std::collections::BTreeMap::new();
    for resource in [
        APPS,
        VERSIONS,
        RELEASES,
        CATEGORIES,
        "repos.application.kubesphere.io",
        "configmaps",
        "namespaces",
    ] {
        let list: Value = serde_json::from_str(&k.kubectl_ok(&[
            "get",
            resource,
            "-A",
            "-l",
            &format!("pitrix.io/catalog={}", compiled.catalog),
            "-o",
            "json",
        ]))
        .unwrap();
        for item in list["items"].as_array().unwrap() {
            let kind = item["kind"].as_str().unwrap().to_string();
            let name = item["metadata"]["name"].as_str().unwrap().to_string();
            live.insert((kind, name), item.clone());
        }
    }
    for o in &desired.objects {
        let key = (o.r.kind.clone(), o.r.name.clone());
        let l = live
            .remove(&key)
            .unwrap_or_else(|| panic!("{key:?} is missing"));
        assert!(
            pitrix::apply::contains(&l, o.body().unwrap()),
            "{key:?} differs from the compiled object"
        );
    }
    assert!(
        live.is_empty(),
        "orphans left behind: {:?}",
        live.keys().collect::<Vec<_>>()
    );
    for s in &desired.status {
        let resource = if s["kind"] == "Application" {
            APPS
        } else {
            VERSIONS
        };
        let l = get(k, resource, s["metadata"]["name"].as_str().unwrap());
        assert_eq!(
            l["status"]["state"], s["status"]["state"],
            "{}",
            s["metadata"]["name"]
        );
    }
}

/// Kill `pitrix apply` at seeded random moments, change the catalog, apply again: the end state
/// is a clean apply's — nothing lost, nothing orphaned.
#[test]
fn an_interrupted_apply_converges_on_the_next_run() {
    let k = cluster();
    let tmp = scaffold();
    let catalog = tmp.path().join("catalog");
    let copy = common::copy_tree;
    let template = tmp.path().join("hello-template");
    copy(&catalog.join("apps/hello"), &template);
    let mut seed: u64 = std::env::var("PITRIX_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x2026_1122);
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for round in 0..4 {
        // Round r: apps a<r>-0..5 exist; the next round drops two and adds one.
        for n in 0..6 {
            let dir = catalog.join(format!("apps/a{round}-{n}"));
            if !dir.exists() {
                copy(&template, &dir);
            }
        }
        let child = Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .arg("apply")
            .arg(&catalog)
            .args([
                "--kubeconfig",
                k.kubeconfig.to_str().unwrap(),
                "--allow-mass-prune",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut child = child;
        std::thread::sleep(std::time::Duration::from_millis(next() % 1500));
        let _ = child.kill();
        let _ = child.wait();
        // The catalog moves on while the cluster holds a half-applied state.
        for n in 0..2 {
            let _ = std::fs::remove_dir_all(catalog.join(format!("apps/a{round}-{n}")));
        }
        copy(&template, &catalog.join(format!("apps/b{round}")));
        let (code, report) = apply(&k, &catalog, &["--allow-mass-prune"]);
        assert_eq!(code, 0, "round {round}: {report:#}");
        assert_converged(&k, &catalog);
    }
}

/// The bundled example: repo credentials come from the environment at apply time and never
/// appear in the report; a missing variable fails that repo alone, by name.
#[test]
fn the_example_applies_with_credentials_from_the_environment() {
    let k = cluster();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/catalog");
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .arg("apply")
            .arg(&example)
            .args([
                "--kubeconfig",
                k.kubeconfig.to_str().unwrap(),
                "--output",
                "json",
            ])
            .env_remove("ACME_CHARTS_USERNAME")
            .env_remove("ACME_CHARTS_PASSWORD")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!stdout.contains("s3cr3t-pa55"), "a secret in the report");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cr3t-pa55"));
        (
            out.status.code().unwrap_or(-1),
            serde_json::from_str::<Value>(&stdout).unwrap(),
        )
    };

    let (code, report) = run(&[]);
    assert_eq!(code, 1);
    let failed: Vec<_> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["object"]["name"], "acme-internal");
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("ACME_CHARTS_USERNAME")
    );

    let (code, report) = run(&[
        ("ACME_CHARTS_USERNAME", "ci-bot"),
        ("ACME_CHARTS_PASSWORD", "s3cr3t-pa55"),
    ]);
    assert_eq!(code, 0, "{report:#}");
    let repo = get(&k, "repos.application.kubesphere.io", "acme-internal");
    assert_eq!(repo["spec"]["credential"]["username"], "ci-bot");
    assert_eq!(repo["spec"]["credential"]["password"], "s3cr3t-pa55");
    assert_eq!(repo["spec"]["syncPeriod"], 21600);
    assert_eq!(
        repo["metadata"]["labels"]["kubesphere.io/workspace"],
        "acme-platform"
    );
    // Suspended and draft versions are written as such; releases only of active ones.
    assert_eq!(
        get(&k, VERSIONS, "postgres-1.0.0")["status"]["state"],
        "suspended"
    );
    assert_eq!(
        get(&k, VERSIONS, "prometheus-lite-2.2.0-beta.1")["status"]["state"],
        "draft"
    );
    assert_eq!(
        get(&k, RELEASES, "session-cache")["spec"]["appID"],
        "bitnami-redis"
    );
    assert_convergence_of_example(&k, &example);
}

fn assert_convergence_of_example(k: &TestCluster, example: &Path) {
    // The same catalog again: nothing to do.
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("apply")
        .arg(example)
        .args([
            "--kubeconfig",
            k.kubeconfig.to_str().unwrap(),
            "--output",
            "json",
        ])
        .env("ACME_CHARTS_USERNAME", "ci-bot")
        .env("ACME_CHARTS_PASSWORD", "s3cr3t-pa55")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let written: Vec<_> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] != "unchanged")
        .collect();
    assert!(
        written.is_empty(),
        "a re-apply of the example wrote: {written:#?}"
    );
}

/// `--wait`: apply returns when KubeSphere's controller (played here by kubectl, writing the
/// release status the way the controller does) reports the release active — or failed.
#[test]
fn wait_follows_the_release_state() {
    let k = cluster();
    let tmp = scaffold();
    let catalog = tmp.path().join("catalog");
    for (final_state, expected_code) in [("active", 0), ("failed", 1)] {
        if final_state == "failed" {
            // A new spec, so that the wait starts over.
            let release = catalog.join("releases/host/default/hello.yaml");
            let text = std::fs::read_to_string(&release).unwrap() + "  replicaCount: 3\n";
            std::fs::write(&release, text).unwrap();
            k.kubectl_ok(&[
                "patch",
                RELEASES,
                "hello",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"state":"upgrading"}}"#,
            ]);
        }
        let child = Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .arg("apply")
            .arg(&catalog)
            .args([
                "--kubeconfig",
                k.kubeconfig.to_str().unwrap(),
                "--output",
                "json",
                "--wait",
                "--timeout",
                "60s",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The controller: once the release exists, it installs and reports.
        let mut seen = false;
        for _ in 0..100 {
            if exists(&k, RELEASES, "hello") {
                seen = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(seen);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let status = format!(
            r#"{{"status":{{"state":"{final_state}","message":"helm says {final_state}"}}}}"#
        );
        k.kubectl_ok(&[
            "patch",
            RELEASES,
            "hello",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ]);
        let out = child.wait_with_output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(expected_code), "{report:#}");
        let result = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|r| r["object"]["kind"] == "ApplicationRelease")
            .unwrap();
        match final_state {
            "active" => assert_eq!(result["outcome"], "ready", "{report:#}"),
            _ => assert!(
                result["detail"]
                    .as_str()
                    .unwrap()
                    .contains("helm says failed"),
                "{report:#}"
            ),
        }
    }
}

#[test]
fn a_pruned_release_kubesphere_still_uninstalls_is_reported_deleting_and_waited_for() {
    let k = cluster();
    let tmp = scaffold();
    let catalog = tmp.path().join("catalog");
    assert_eq!(apply(&k, &catalog, &[]).0, 0);
    // KubeSphere's release controller holds a release with its finalizer while it uninstalls.
    k.kubectl_ok(&[
        "patch",
        RELEASES,
        "hello",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["helmrelease.application.kubesphere.io"]}}"#,
    ]);
    std::fs::remove_dir_all(catalog.join("releases")).unwrap();

    for _ in 0..2 {
        let (code, report) = apply(&k, &catalog, &[]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(
            outcomes(&report, "deleting"),
            [("ApplicationRelease", "hello")]
        );
        let tracked = k.kubectl_ok(&[
            "get",
            "configmap",
            "-n",
            "pitrix-system",
            "pitrix-inventory-my-store",
            "-o",
            "json",
        ]);
        let inventory =
            pitrix::apply::decode_inventory(&serde_json::from_str(&tracked).unwrap()).unwrap();
        assert!(
            inventory
                .objects
                .keys()
                .any(|k| k.0.name == "hello" && k.0.kind == "ApplicationRelease"),
            "a release still deleting left the inventory"
        );
    }

    // The uninstall finishes while `apply --wait` waits: then it is pruned.
    let kubeconfig = k.kubeconfig.clone();
    let finisher = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        let out = Command::new(cluster::kubectl_program())
            .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
            .args(["patch", RELEASES, "hello", "--type=merge", "-p"])
            .arg(r#"{"metadata":{"finalizers":null}}"#)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let (code, report) = apply(&k, &catalog, &["--wait", "--timeout", "30s"]);
    finisher.join().unwrap();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        outcomes(&report, "pruned"),
        [("ApplicationRelease", "hello")]
    );
    assert!(!exists(&k, RELEASES, "hello"));
}
