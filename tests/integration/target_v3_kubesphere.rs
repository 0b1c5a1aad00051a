//! pitrix's own `kubesphere-v3` output applied to KubeSphere 3.4.1's own App Store controllers
//! (`kubesphere_v3::KubeSphereV3`): they take pitrix's objects as they take the console's — the
//! app's state derived from pitrix's review states, the store copy counted in its category, the
//! release installed by the in-process Helm from the package pitrix uploaded — and the catalog's
//! history (upgrade, suspend, remove) plays out as KubeSphere 3 plays it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::unique_name;
use crate::common;
use crate::kubesphere_v3::{BUCKET, KubeSphereV3};

const APPS: &str = "helmapplications.application.kubesphere.io";
const VERSIONS: &str = "helmapplicationversions.application.kubesphere.io";
const RELEASES: &str = "helmreleases.application.kubesphere.io";
const CATEGORIES: &str = "helmcategories.application.kubesphere.io";
/// How long KubeSphere 3 may take to react (Helm installs in process).
const REACT: Duration = Duration::from_secs(90);

/// The scaffold's catalog for KubeSphere 3 and this store, with names of its own (the API
/// server is shared): app `id`, category `id`, release `id` in `namespace`.
fn catalog(ks: &KubeSphereV3, id: &str, namespace: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("catalog");
    pitrix::scaffold::new_named(&root, id).unwrap();
    let edit = |file: &Path, from: &str, to: &str| {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(from), "{} has no `{from}`", file.display());
        std::fs::write(file, text.replace(from, to)).unwrap();
    };
    let settings = root.join("pitrix.toml");
    edit(
        &settings,
        "target = \"kubesphere\"",
        "target = \"kubesphere-v3\"",
    );
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        format!(
            "{text}\n[storage.s3]\nendpoint = \"{}\"\nbucket = \"{BUCKET}\"\n",
            ks.s3.endpoint
        ),
    )
    .unwrap();
    // The synced repo is not what this test is about (3.x would fetch it from the internet).
    std::fs::remove_file(root.join("repos/bitnami.yaml")).unwrap();
    std::fs::rename(root.join("apps/hello"), root.join(format!("apps/{id}"))).unwrap();
    std::fs::rename(
        root.join("categories/tools.yaml"),
        root.join(format!("categories/{id}.yaml")),
    )
    .unwrap();
    edit(
        &root.join(format!("categories/{id}.yaml")),
        "displayName: Tools",
        &format!("displayName: Tools {id}"),
    );
    edit(
        &root.join(format!("apps/{id}/app.yaml")),
        "category: tools",
        &format!("category: {id}"),
    );
    edit(
        &root.join(format!("apps/{id}/app.yaml")),
        "displayName: Hello",
        &format!("displayName: Hello {id}"),
    );
    let releases = root.join("releases/host").join(namespace);
    std::fs::create_dir_all(&releases).unwrap();
    std::fs::rename(
        root.join("releases/host/default/hello.yaml"),
        releases.join(format!("{id}.yaml")),
    )
    .unwrap();
    edit(
        &releases.join(format!("{id}.yaml")),
        "app: hello",
        &format!("app: {id}"),
    );
    // No kubelet here: KubeSphere 3's Helm waits for the Deployment, ready with no replicas.
    edit(
        &releases.join(format!("{id}.yaml")),
        "  message: Hello from pitrix",
        "  message: Hello from pitrix\n  replicaCount: 0",
    );
    (tmp, root)
}

fn apply(ks: &KubeSphereV3, root: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("apply")
        .arg(root)
        .arg("--kubeconfig")
        .arg(&ks.kubeconfig)
        .args(["--output", "json"])
        .args(extra)
        .env("PITRIX_S3_ACCESS_KEY_ID", &ks.s3.access_key)
        .env("PITRIX_S3_SECRET_ACCESS_KEY", &ks.s3.secret_key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "apply failed:\n{report:#}");
    report
}

fn state(v: &Value) -> &str {
    v["status"]["state"].as_str().unwrap_or_default()
}

fn wait_state(ks: &KubeSphereV3, resource: &str, name: &str, want: &str) -> Value {
    ks.wait_for(REACT, &format!("{resource} {name} to be {want}"), || {
        ks.get_json(resource, None, name)
            .filter(|v| state(v) == want)
    })
}

/// The scaffold chart's Deployment, named after the release.
fn deployment(ks: &KubeSphereV3, namespace: &str, release: &str) -> Option<Value> {
    ks.get_json("deployments.apps", Some(namespace), release)
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

#[test]
fn kubesphere_3_takes_pitrix_objects_as_its_own_through_a_catalog_history() {
    let ks = KubeSphereV3::start();
    let id = unique_name("pv3");
    let namespace = ks.create_namespace("pv3");
    let (_tmp, root) = catalog(&ks, &id, &namespace);

    // 1. Uploaded, reviewed active, released: the first apply.
    apply(&ks, &root, &[]);
    let app = format!("app-{id}");
    let version = format!("appv-{id}-0.1.0");
    assert!(
        ks.s3
            .object(BUCKET, &format!("system-workspace/{version}"))
            .is_some(),
        "the package where KubeSphere reads it"
    );
    // KubeSphere derives the app's state from the version pitrix reviewed, and counts the store
    // copy in its category.
    wait_state(&ks, APPS, &app, "active");
    let copy = wait_state(&ks, APPS, &format!("{app}-store"), "active");
    assert_eq!(
        copy["metadata"]["labels"]["application.kubesphere.io/repo-id"],
        "repo-helm"
    );
    let category = format!("ctg-{id}");
    ks.wait_for(REACT, "the category to count the app", || {
        ks.get_json(CATEGORIES, None, &category)
            .filter(|c| c["status"]["total"] == 1)
    });
    let v = ks.get(VERSIONS, &version);
    assert_eq!(state(&v), "active", "{v:#}");
    // The release: installed by KubeSphere's in-process Helm from the package in S3.
    let releases = ks.list(RELEASES, None, &format!("pitrix.io/catalog={id}"));
    assert_eq!(releases.len(), 1, "{releases:#?}");
    let rls = releases[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let r = wait_state(&ks, RELEASES, &rls, "active");
    let installed = r["status"]["version"].clone();
    assert_eq!(installed, r["spec"]["version"], "{r:#}");
    let d = ks.wait_for(REACT, "the chart's Deployment", || {
        deployment(&ks, &namespace, &id)
    });
    assert_eq!(
        d["metadata"]["labels"]["app.kubesphere.io/instance"],
        id.as_str(),
        "{d:#}"
    );

    // 2. Re-applied unchanged: KubeSphere's own writes (finalizers, labels, status) are no
    // difference, and the release is not upgraded.
    let report = apply(&ks, &root, &[]);
    let writes: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !matches!(r["outcome"].as_str(), Some("unchanged")))
        .collect();
    assert!(writes.is_empty(), "a second apply wrote {writes:#?}");

    // 3. 0.2.0 uploaded and released, the release upgraded to it with new values: KubeSphere
    // upgrades, because pitrix's spec.version changed with the spec.
    common::copy_tree(
        &root.join(format!("apps/{id}/0.1.0")),
        &root.join(format!("apps/{id}/0.2.0")),
    );
    edit(
        &root.join(format!("apps/{id}/0.2.0/Chart.yaml")),
        "version: 0.1.0",
        "version: 0.2.0",
    );
    let app_yaml = root.join(format!("apps/{id}/app.yaml"));
    let text = std::fs::read_to_string(&app_yaml).unwrap();
    std::fs::write(&app_yaml, format!("{text}  0.2.0:\n    state: active\n")).unwrap();
    let release_file = root
        .join("releases/host")
        .join(&namespace)
        .join(format!("{id}.yaml"));
    edit(&release_file, "version: 0.1.0", "version: 0.2.0");
    edit(&release_file, "Hello from pitrix", "Hello from 0.2.0");
    apply(&ks, &root, &[]);
    let r = ks.wait_for(REACT, "the upgrade", || {
        ks.get_json(RELEASES, None, &rls).filter(|r| {
            state(r) == "active"
                && r["status"]["version"] == r["spec"]["version"]
                && r["status"]["version"] != installed
        })
    });
    assert_eq!(r["spec"]["chartVersion"], "0.2.0");
    ks.wait_for(REACT, "the Deployment with the new values", || {
        deployment(&ks, &namespace, &id).filter(|d| d.to_string().contains("Hello from 0.2.0"))
    });

    // 4. 0.1.0 suspended: the version's state, the app still active through 0.2.0.
    edit(
        &app_yaml,
        "  0.1.0:\n    state: active",
        "  0.1.0:\n    state: suspended",
    );
    apply(&ks, &root, &[]);
    wait_state(&ks, VERSIONS, &version, "suspended");
    let a = ks.get(APPS, &app);
    assert_eq!(state(&a), "active", "{a:#}");

    // 5. The app and its release removed: pruned, the release uninstalled by KubeSphere, the
    // store copy gone with its app, the packages deleted from S3.
    std::fs::remove_file(&release_file).unwrap();
    std::fs::remove_dir_all(root.join(format!("apps/{id}"))).unwrap();
    // Most of the catalog goes: past the prune guard on purpose.
    apply(&ks, &root, &["--allow-mass-prune"]);
    ks.wait_for(REACT, "the release uninstalled", || {
        (ks.get_json(RELEASES, None, &rls).is_none() && deployment(&ks, &namespace, &id).is_none())
            .then_some(())
    });
    ks.wait_for(REACT, "the app and its store copy gone", || {
        (ks.get_json(APPS, None, &app).is_none()
            && ks.get_json(APPS, None, &format!("{app}-store")).is_none())
        .then_some(())
    });
    let keys = ks.s3.keys(BUCKET);
    assert!(
        !keys.iter().any(|k| k.contains(&format!("appv-{id}-"))),
        "packages left in S3: {keys:?}"
    );
}
