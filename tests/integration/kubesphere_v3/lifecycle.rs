//! What KubeSphere 3.4.1's own controllers do with App Store objects shaped as the console and
//! ks-apiserver make them (docs/kubesphere-v3.md §5, §6, §9): an uploaded app reviewed and
//! released to the store, suspended, deleted; a release installed by the in-controller Helm,
//! upgraded and uninstalled. These are the shapes `target = "kubesphere-v3"` must emit; every
//! expectation here was seen with the real controller.

use std::time::Duration;

use base64::Engine as _;
use pitrix::chart::{ChartFiles, pack};
use serde_json::{Value, json};

use super::{APPS, BUCKET, CATEGORIES, KubeSphereV3, RELEASES, VERSIONS};
use crate::cluster::unique_name;

/// The user the console acts as (annotation `kubesphere.io/creator`).
const CREATOR: &str = "admin";
/// The name of the test chart (a version's `spec.name`, a release's `spec.chartName`).
const CHART: &str = "v3probe";
/// The App Store's pseudo-repo (`application.kubesphere.io/repo-id` of store objects).
const STORE_REPO: &str = "repo-helm";

const WORKSPACE_LABEL: &str = "kubesphere.io/workspace";
const APP_ID_LABEL: &str = "application.kubesphere.io/app-id";
const REPO_ID_LABEL: &str = "application.kubesphere.io/repo-id";
const CATEGORY_LABEL: &str = "application.kubesphere.io/app-category-id";

/// How long a controller may take to react to one change (it reacts within a second here).
const REACT: Duration = Duration::from_secs(60);

/// One chart version of the test chart: `version`, `appVersion` and the default greeting its
/// ConfigMap carries.
struct ChartVersion {
    version: &'static str,
    app_version: &'static str,
}

const V1: ChartVersion = ChartVersion {
    version: "0.1.0",
    app_version: "1.0.0",
};
const V2: ChartVersion = ChartVersion {
    version: "0.2.0",
    app_version: "2.0.0",
};

impl ChartVersion {
    /// The chart's package, made by pitrix's own packer: a ConfigMap `<release>-config` with
    /// the chart version as a label and `.Values.greeting` as data.
    fn package(&self) -> Vec<u8> {
        let chart_yaml = json!({
            "apiVersion": "v2",
            "name": CHART,
            "version": self.version,
            "appVersion": self.app_version,
            "description": "A ConfigMap, for KubeSphere 3's release controller",
            "home": "https://example.com/v3probe",
        });
        let mut files = ChartFiles::new();
        files
            .insert(
                "Chart.yaml",
                serde_yaml::to_string(&chart_yaml).unwrap().into_bytes(),
            )
            .unwrap();
        files
            .insert(
                "values.yaml",
                serde_yaml::to_string(&json!({"greeting": "hello"}))
                    .unwrap()
                    .into_bytes(),
            )
            .unwrap();
        // A template is Helm's text, not a Kubernetes object assembled by this test.
        let template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n  \
                        labels:\n    chart-version: {{ .Chart.Version | quote }}\ndata:\n  \
                        greeting: {{ .Values.greeting | quote }}\n";
        files
            .insert("templates/configmap.yaml", template.as_bytes().to_vec())
            .unwrap();
        pack(CHART, &files)
    }

    /// The display name KubeSphere derives: `"<version> [<appVersion>]"`.
    fn display(&self) -> String {
        format!("{} [{}]", self.version, self.app_version)
    }
}

/// A category as ks-apiserver creates it (`categories.go`): `spec.name` and `description`.
fn category(name: &str, display: &str) -> Value {
    json!({
        "apiVersion": "application.kubesphere.io/v1alpha1",
        "kind": "HelmCategory",
        "metadata": {"name": name, "annotations": {"kubesphere.io/creator": CREATOR}},
        "spec": {"name": display, "description": "database"},
    })
}

/// An uploaded app as ks-apiserver creates it (`applications.go:248-265`), with the category
/// label ModifyApp adds (`applications.go:423-431`).
fn app(name: &str, workspace: &str, category: &str, display: &str) -> Value {
    json!({
        "apiVersion": "application.kubesphere.io/v1alpha1",
        "kind": "HelmApplication",
        "metadata": {
            "name": name,
            "annotations": {"kubesphere.io/creator": CREATOR},
            "labels": {WORKSPACE_LABEL: workspace, CATEGORY_LABEL: category},
        },
        "spec": {
            "name": display,
            "description": "A ConfigMap, for KubeSphere 3's release controller",
            "icon": "https://example.com/v3probe.png",
            "abstraction": "probe",
            "appHome": "https://example.com/v3probe",
        },
    })
}

/// A version as ks-apiserver creates it (`utils.go:553-600`, `applicationversions.go:467-501`):
/// labels app-id and workspace, a (non-controller) owner reference to the app, the Chart.yaml
/// metadata, `created`, `dataKey`; no `data`, no status (the controller writes `draft`).
fn version(name: &str, app: &str, app_uid: &str, workspace: &str, chart: &ChartVersion) -> Value {
    json!({
        "apiVersion": "application.kubesphere.io/v1alpha1",
        "kind": "HelmApplicationVersion",
        "metadata": {
            "name": name,
            "annotations": {"kubesphere.io/creator": CREATOR},
            "labels": {APP_ID_LABEL: app, WORKSPACE_LABEL: workspace},
            "ownerReferences": [{
                "apiVersion": "application.kubesphere.io/v1alpha1",
                "kind": "HelmApplication",
                "name": app,
                "uid": app_uid,
            }],
        },
        "spec": {
            "name": CHART,
            "version": chart.version,
            "appVersion": chart.app_version,
            "description": "A ConfigMap, for KubeSphere 3's release controller",
            "home": "https://example.com/v3probe",
            "created": "2026-12-05T00:00:00Z",
            "dataKey": name,
        },
    })
}

/// A release as ks-apiserver creates it (`release.go:144-210`).
#[allow(clippy::too_many_arguments)]
fn release(
    name: &str,
    release_name: &str,
    workspace: &str,
    namespace: &str,
    app: &str,
    version: &str,
    chart: &ChartVersion,
    values: &str,
) -> Value {
    json!({
        "apiVersion": "application.kubesphere.io/v1alpha1",
        "kind": "HelmRelease",
        "metadata": {
            "name": name,
            "annotations": {"kubesphere.io/creator": CREATOR},
            "labels": {
                "application.kubesphere.io/app-version-id": version,
                APP_ID_LABEL: app,
                WORKSPACE_LABEL: workspace,
                "kubesphere.io/namespace": namespace,
                REPO_ID_LABEL: STORE_REPO,
            },
        },
        "spec": {
            "name": release_name,
            "description": "the probe",
            "version": 1,
            "values": b64(values),
            "appId": app,
            "appVerId": version,
            "chartName": CHART,
            "repoId": STORE_REPO,
            "chartVersion": chart.version,
            "chartAppVer": chart.app_version,
        },
    })
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Now, as metav1.Time writes it (RFC 3339, UTC, whole seconds).
fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An uploaded app: the app, its versions (name, chart) and their packages in S3.
struct Upload {
    workspace: String,
    app: String,
    versions: Vec<String>,
}

/// Creates app `app-<id>` in `workspace` with one version `appv-<id>-<n>` per chart version,
/// each package uploaded first to `<workspace>/<version name>`, as ks-apiserver's upload does.
fn upload(
    ks: &KubeSphereV3,
    id: &str,
    workspace: &str,
    category: &str,
    charts: &[&ChartVersion],
) -> Upload {
    let app_name = format!("app-{id}");
    ks.create(&app(&app_name, workspace, category, &format!("Probe {id}")));
    let uid = ks.get(APPS, &app_name)["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut versions = Vec::new();
    for (n, chart) in charts.iter().enumerate() {
        let name = format!("appv-{id}-{n}");
        ks.upload(&format!("{workspace}/{name}"), &chart.package());
        ks.create(&version(&name, &app_name, &uid, workspace, chart));
        versions.push(name);
    }
    Upload {
        workspace: workspace.to_string(),
        app: app_name,
        versions,
    }
}

/// One review action as ks-apiserver's `DoAppVersionAction` writes it: the version's status
/// through `/status`, state and a new audit entry first (at most 10).
fn review(ks: &KubeSphereV3, version: &str, state: &str) {
    let current = ks.get(VERSIONS, version);
    let mut audit = current["status"]["audit"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The console sends no message; Go's `omitempty` then leaves `message` out (an empty
    // string in a merge patch is refused by the 1.20 API server as `null`).
    audit.insert(
        0,
        json!({"state": state, "operator": CREATOR, "time": now()}),
    );
    audit.truncate(10);
    ks.patch_status(
        VERSIONS,
        version,
        &json!({"status": {"state": state, "audit": audit}}),
    );
}

/// Waits until the version controller wrote the first status (`draft`) of `version`.
fn wait_draft(ks: &KubeSphereV3, version: &str) -> Value {
    ks.wait_for(REACT, &format!("{version} in draft"), || {
        let v = ks.get(VERSIONS, version);
        (v["status"]["state"] == "draft").then_some(v)
    })
}

/// Waits until `resource/name` has `status.state == state`, returning it.
fn wait_state(ks: &KubeSphereV3, resource: &str, name: &str, state: &str) -> Value {
    ks.wait_for(REACT, &format!("{name} in state {state}"), || {
        ks.get_json(resource, None, name)
            .filter(|v| v["status"]["state"] == state)
    })
}

/// A category's `status.total`: absent until the controller first counted a non-zero number
/// (it writes the status only when the count changes).
fn total(ks: &KubeSphereV3, category: &str) -> Option<i64> {
    ks.get(CATEGORIES, category)["status"]["total"].as_i64()
}

fn wait_total(ks: &KubeSphereV3, category: &str, want: i64) {
    ks.wait_for(REACT, &format!("{category} total {want}"), || {
        (total(ks, category).unwrap_or(0) == want).then_some(())
    });
}

fn labels(v: &Value) -> Value {
    v["metadata"]["labels"].clone()
}

fn finalizers(v: &Value) -> Vec<String> {
    v["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn review_states_derive_the_app_state_the_store_copy_and_the_category_count() {
    let ks = KubeSphereV3::start();
    let id = unique_name("rv");
    let workspace = unique_name("ws");
    let ctg = format!("ctg-{id}");

    ks.create(&category(&ctg, &format!("Databases {id}")));
    ks.wait_for(REACT, "the category's finalizer", || {
        finalizers(&ks.get(CATEGORIES, &ctg))
            .contains(&"helmcategories.application.kubesphere.io".to_string())
            .then_some(())
    });
    assert_eq!(
        total(&ks, &ctg),
        None,
        "a category without apps has no status yet"
    );

    let up = upload(&ks, &id, &workspace, &ctg, &[&V1]);
    let (app, v1) = (up.app.as_str(), up.versions[0].as_str());

    // The version controller writes `draft` with the first audit entry (time = creation).
    let v = wait_draft(&ks, v1);
    assert_eq!(
        v["status"]["audit"],
        json!([{"state": "draft", "operator": CREATOR, "time": v["metadata"]["creationTimestamp"]}]),
        "{v:#}"
    );
    ks.wait_for(REACT, "the version's finalizer", || {
        finalizers(&ks.get(VERSIONS, v1))
            .contains(&"helmappversion.application.kubesphere.io".to_string())
            .then_some(())
    });
    // ... and derives the app's state and latest version.
    let a = wait_state(&ks, APPS, app, "draft");
    assert_eq!(a["status"]["latestVersion"], V1.display(), "{a:#}");
    assert!(a["status"]["updateTime"].is_string() && a["status"]["statusTime"].is_string());
    assert_eq!(
        finalizers(&a),
        ["helmapplication.application.kubesphere.io"],
        "{a:#}"
    );

    // Submitted and passed never show on the app: it stays draft until a version is active.
    review(&ks, v1, "submitted");
    review(&ks, v1, "passed");
    wait_state(&ks, VERSIONS, v1, "passed");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ks.get(APPS, app)["status"]["state"], "draft");
    assert!(ks.get_json(APPS, None, &format!("{app}-store")).is_none());

    // Release: the app turns active, the version gets repo-id=repo-helm, the store copy appears
    // and the category counts it.
    review(&ks, v1, "active");
    let a = wait_state(&ks, APPS, app, "active");
    assert_eq!(a["status"]["latestVersion"], V1.display());
    ks.wait_for(REACT, "repo-id on the active version", || {
        (labels(&ks.get(VERSIONS, v1))[REPO_ID_LABEL] == STORE_REPO).then_some(())
    });
    let store_name = format!("{app}-store");
    let store = wait_state(&ks, APPS, &store_name, "active");
    assert_eq!(
        labels(&store),
        json!({
            CATEGORY_LABEL: ctg,
            REPO_ID_LABEL: STORE_REPO,
            "kubesphere.io/workspace-origin": workspace,
        }),
        "the store copy's labels: {store:#}"
    );
    assert_eq!(
        store["metadata"]["annotations"],
        json!({"kubesphere.io/creator": CREATOR})
    );
    assert_eq!(
        store["spec"], a["spec"],
        "the store copy's spec is the app's"
    );
    assert!(store["metadata"]["ownerReferences"].is_null(), "{store:#}");
    assert_eq!(store["status"]["latestVersion"], V1.display());
    wait_total(&ks, &ctg, 1);
    // The app itself is not counted: it has no repo-id label.
    assert!(labels(&ks.get(APPS, app))[REPO_ID_LABEL].is_null());
    ks.wait_for(Duration::from_secs(40), "ctg-uncategorized", || {
        ks.get_json(CATEGORIES, None, "ctg-uncategorized")
            .filter(|c| c["spec"]["name"] == "uncategorized")
    });

    // A new draft version: the workspace app's latest version moves, the store's does not.
    let uid = ks.get(APPS, app)["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let v2 = format!("appv-{id}-new");
    ks.upload(&format!("{workspace}/{v2}"), &V2.package());
    ks.create(&version(&v2, app, &uid, &workspace, &V2));
    wait_draft(&ks, &v2);
    ks.wait_for(REACT, "the app's latest version 0.2.0", || {
        (ks.get(APPS, app)["status"]["latestVersion"] == V2.display()).then_some(())
    });
    assert_eq!(ks.get(APPS, app)["status"]["state"], "active");
    assert_eq!(
        ks.get(APPS, &store_name)["status"]["latestVersion"],
        V1.display()
    );
    review(&ks, &v2, "submitted");
    review(&ks, &v2, "passed");
    review(&ks, &v2, "active");
    ks.wait_for(REACT, "the store's latest version 0.2.0", || {
        (ks.get(APPS, &store_name)["status"]["latestVersion"] == V2.display()).then_some(())
    });

    // Suspending every active version (the app's "suspend" action) suspends both apps and
    // takes the store copy out of the category count.
    review(&ks, v1, "suspended");
    review(&ks, &v2, "suspended");
    wait_state(&ks, APPS, app, "suspended");
    wait_state(&ks, APPS, &store_name, "suspended");
    wait_total(&ks, &ctg, 0);
    assert_eq!(total(&ks, &ctg), Some(0), "the count is written back as 0");
    // Recover one version: active again, counted again.
    review(&ks, &v2, "active");
    wait_state(&ks, APPS, &store_name, "active");
    wait_total(&ks, &ctg, 1);

    // Deleting the app: its finalizer deletes the store copy, the category count drops, the
    // versions go by garbage collection (owner reference), the packages stay in S3.
    ks.delete(APPS, app);
    ks.wait_for(
        Duration::from_secs(120),
        "the app, its store copy and versions gone",
        || {
            (ks.get_json(APPS, None, app).is_none()
                && ks.get_json(APPS, None, &store_name).is_none()
                && ks.get_json(VERSIONS, None, v1).is_none()
                && ks.get_json(VERSIONS, None, &v2).is_none())
            .then_some(())
        },
    );
    wait_total(&ks, &ctg, 0);
    for v in [v1, v2.as_str()] {
        assert!(
            ks.s3.object(BUCKET, &format!("{workspace}/{v}")).is_some(),
            "nothing deletes the package of {v}"
        );
    }
    // An empty category can be deleted (its finalizer lets go at total 0).
    ks.delete(CATEGORIES, &ctg);
    ks.wait_for(REACT, "the category gone", || {
        ks.get_json(CATEGORIES, None, &ctg).is_none().then_some(())
    });
}

/// The Helm release secrets of `release` in `namespace`, as `(name, status)`.
fn helm_secrets(ks: &KubeSphereV3, namespace: &str, release: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ks
        .list(
            "secrets",
            Some(namespace),
            &format!("owner=helm,name={release}"),
        )
        .iter()
        .map(|s| {
            (
                s["metadata"]["name"].as_str().unwrap().to_string(),
                s["metadata"]["labels"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn config_map(ks: &KubeSphereV3, namespace: &str, release: &str) -> Option<Value> {
    ks.get_json("configmaps", Some(namespace), &format!("{release}-config"))
}

#[test]
fn a_release_installs_from_s3_upgrades_only_when_spec_version_changes_and_uninstalls() {
    let ks = KubeSphereV3::start();
    let id = unique_name("rl");
    let workspace = unique_name("ws");
    let namespace = ks.create_namespace("v3rls");
    let ctg = format!("ctg-{id}");
    ks.create(&category(&ctg, &format!("Web {id}")));
    let up = upload(&ks, &id, &workspace, &ctg, &[&V1, &V2]);
    for v in &up.versions {
        wait_draft(&ks, v);
        for state in ["submitted", "passed", "active"] {
            review(&ks, v, state);
        }
    }
    wait_state(&ks, APPS, &format!("{}-store", up.app), "active");

    let rls = format!("rls-{id}");
    let release_name = format!("probe-{}", id.replace('_', "-"));
    ks.create(&release(
        &rls,
        &release_name,
        &workspace,
        &namespace,
        &up.app,
        &up.versions[0],
        &V1,
        "greeting: hello from values\n",
    ));
    let r = wait_state(&ks, RELEASES, &rls, "active");
    assert_eq!(r["status"]["version"], 1, "{r:#}");
    assert_eq!(
        finalizers(&r),
        ["helmrelease.application.kubesphere.io"],
        "{r:#}"
    );
    let states: Vec<&str> = r["status"]["deployStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "created"], "newest first: {r:#}");
    let cm = config_map(&ks, &namespace, &release_name).expect("the chart's ConfigMap");
    assert_eq!(cm["data"]["greeting"], "hello from values");
    assert_eq!(cm["metadata"]["labels"]["chart-version"], V1.version);
    assert_eq!(
        cm["metadata"]["labels"]["app.kubesphere.io/instance"], release_name,
        "the post-renderer's label: {cm:#}"
    );
    assert_eq!(
        cm["metadata"]["annotations"]["kubesphere.io/creator"], CREATOR,
        "{cm:#}"
    );
    assert_eq!(
        helm_secrets(&ks, &namespace, &release_name),
        [(
            format!("sh.helm.release.v1.{release_name}.v1"),
            "deployed".to_string()
        )]
    );

    // Changing only the values: nothing happens (the controller compares spec.version alone).
    ks.patch(
        RELEASES,
        &rls,
        &json!({"spec": {"values": b64("greeting: changed\n")}}),
    );
    std::thread::sleep(Duration::from_secs(8));
    let r = ks.get(RELEASES, &rls);
    assert_eq!(
        (&r["status"]["state"], &r["status"]["version"]),
        (&json!("active"), &json!(1))
    );
    assert_eq!(
        config_map(&ks, &namespace, &release_name).unwrap()["data"]["greeting"],
        "hello from values"
    );
    assert_eq!(helm_secrets(&ks, &namespace, &release_name).len(), 1);

    // Bumping spec.version (REST's upgrade: new version, same chartName) upgrades, with the
    // values the spec holds now.
    ks.patch(
        RELEASES,
        &rls,
        &json!({"spec": {
            "version": 2,
            "appVerId": up.versions[1],
            "chartVersion": V2.version,
            "chartAppVer": V2.app_version,
        }}),
    );
    let r = ks.wait_for(REACT, "the upgrade", || {
        ks.get_json(RELEASES, None, &rls)
            .filter(|r| r["status"]["state"] == "active" && r["status"]["version"] == 2)
    });
    let states: Vec<&str> = r["status"]["deployStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "upgraded", "active", "created"], "{r:#}");
    let cm = config_map(&ks, &namespace, &release_name).unwrap();
    assert_eq!(cm["data"]["greeting"], "changed");
    assert_eq!(cm["metadata"]["labels"]["chart-version"], V2.version);
    assert_eq!(
        helm_secrets(&ks, &namespace, &release_name),
        [
            (
                format!("sh.helm.release.v1.{release_name}.v1"),
                "superseded".to_string()
            ),
            (
                format!("sh.helm.release.v1.{release_name}.v2"),
                "deployed".to_string()
            ),
        ]
    );

    // Deleting the release uninstalls it.
    ks.delete(RELEASES, &rls);
    ks.wait_for(REACT, "the release uninstalled", || {
        (ks.get_json(RELEASES, None, &rls).is_none()
            && config_map(&ks, &namespace, &release_name).is_none()
            && helm_secrets(&ks, &namespace, &release_name).is_empty())
        .then_some(())
    });
}

#[test]
fn a_release_of_a_draft_version_waits_in_creating_until_its_package_is_uploaded() {
    let ks = KubeSphereV3::start();
    let id = unique_name("pk");
    let workspace = unique_name("ws");
    let namespace = ks.create_namespace("v3pkg");
    let ctg = format!("ctg-{id}");
    ks.create(&category(&ctg, &format!("Tools {id}")));
    // The app and version exist, the package does not yet.
    let app_name = format!("app-{id}");
    ks.create(&app(&app_name, &workspace, &ctg, &format!("Probe {id}")));
    let uid = ks.get(APPS, &app_name)["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let v1 = format!("appv-{id}-0");
    ks.create(&version(&v1, &app_name, &uid, &workspace, &V1));
    wait_draft(&ks, &v1);

    let rls = format!("rls-{id}");
    let release_name = format!("probe-{id}");
    let mut object = release(
        &rls,
        &release_name,
        &workspace,
        &namespace,
        &app_name,
        &v1,
        &V1,
        "greeting: early\n",
    );
    // A draft version has no repo-id: REST leaves the label and spec.repoId (`omitempty`) out.
    object["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(REPO_ID_LABEL);
    object["spec"].as_object_mut().unwrap().remove("repoId");
    ks.create(&object);
    wait_state(&ks, RELEASES, &rls, "creating");
    ks.wait_for(REACT, "the failed S3 read in the log", || {
        ks.log_text()
            .contains("load chart from storage failed")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        ks.get(RELEASES, &rls)["status"]["state"],
        "creating",
        "a missing package is retried, not a failure"
    );

    ks.upload(&format!("{workspace}/{v1}"), &V1.package());
    let r = ks.wait_for(Duration::from_secs(120), "the release active", || {
        ks.get_json(RELEASES, None, &rls)
            .filter(|r| r["status"]["state"] == "active")
    });
    assert_eq!(r["status"]["version"], 1);
    assert_eq!(
        config_map(&ks, &namespace, &release_name).unwrap()["data"]["greeting"],
        "early"
    );
    // The version is still draft: releases do not look at review states.
    assert_eq!(ks.get(VERSIONS, &v1)["status"]["state"], "draft");

    ks.delete(RELEASES, &rls);
    ks.wait_for(REACT, "the release uninstalled", || {
        (ks.get_json(RELEASES, None, &rls).is_none()
            && config_map(&ks, &namespace, &release_name).is_none())
        .then_some(())
    });
}

#[test]
fn a_first_install_that_fails_is_terminal_and_only_a_new_release_retries() {
    let ks = KubeSphereV3::start();
    let id = unique_name("fl");
    let workspace = unique_name("ws");
    let ctg = format!("ctg-{id}");
    ks.create(&category(&ctg, &format!("Failing {id}")));
    let up = upload(&ks, &id, &workspace, &ctg, &[&V1]);
    wait_draft(&ks, &up.versions[0]);

    // Into a namespace that does not exist: Helm's install fails (no CreateNamespace).
    let namespace = unique_name("v3missing");
    let rls = format!("rls-{id}");
    let release_name = format!("probe-{id}");
    let mut object = release(
        &rls,
        &release_name,
        &workspace,
        &namespace,
        &up.app,
        &up.versions[0],
        &V1,
        "greeting: nowhere\n",
    );
    object["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(REPO_ID_LABEL);
    object["spec"].as_object_mut().unwrap().remove("repoId");
    ks.create(&object);
    let r = wait_state(&ks, RELEASES, &rls, "failed");
    assert!(
        r["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&namespace)),
        "the failure names the namespace: {r:#}"
    );
    assert!(
        r["status"]["version"].is_null(),
        "status.version stays 0: {r:#}"
    );

    // The namespace appears and spec.version changes: nothing retries a failed first install.
    ks.kubectl_ok(&["create", "namespace", &namespace]);
    ks.patch(RELEASES, &rls, &json!({"spec": {"version": 2}}));
    std::thread::sleep(Duration::from_secs(8));
    let r = ks.get(RELEASES, &rls);
    assert_eq!(r["status"]["state"], "failed", "{r:#}");
    assert!(config_map(&ks, &namespace, &release_name).is_none());

    // Deleting it still works (uninstall of a release Helm never stored is fine), and the same
    // release created again installs.
    ks.delete(RELEASES, &rls);
    ks.wait_for(REACT, "the failed release gone", || {
        ks.get_json(RELEASES, None, &rls).is_none().then_some(())
    });
    ks.create(&object);
    wait_state(&ks, RELEASES, &rls, "active");
    assert_eq!(
        config_map(&ks, &namespace, &release_name).unwrap()["data"]["greeting"],
        "nowhere"
    );
    ks.delete(RELEASES, &rls);
    ks.wait_for(REACT, "the release uninstalled", || {
        (ks.get_json(RELEASES, None, &rls).is_none()
            && config_map(&ks, &namespace, &release_name).is_none())
        .then_some(())
    });
}

/// The store copy as the app controller makes it (§5.2): the app's labels plus repo-id and the
/// origin workspace, minus the workspace; the app's annotations and spec.
fn store_copy(app: &Value) -> Value {
    let mut labels = app["metadata"]["labels"].clone();
    let workspace = labels[WORKSPACE_LABEL].clone();
    let map = labels.as_object_mut().unwrap();
    map.remove(WORKSPACE_LABEL);
    map.insert(REPO_ID_LABEL.into(), json!(STORE_REPO));
    map.insert("kubesphere.io/workspace-origin".into(), workspace);
    json!({
        "apiVersion": "application.kubesphere.io/v1alpha1",
        "kind": "HelmApplication",
        "metadata": {
            "name": format!("{}-store", app["metadata"]["name"].as_str().unwrap()),
            "labels": labels,
            "annotations": app["metadata"]["annotations"],
        },
        "spec": app["spec"],
    })
}

#[test]
fn the_store_copy_is_made_once_and_whoever_writes_it_keeps_it_current() {
    let ks = KubeSphereV3::start();
    let id = unique_name("sc");
    let workspace = unique_name("ws");
    let (ctg_a, ctg_b) = (format!("ctg-{id}-a"), format!("ctg-{id}-b"));
    ks.create(&category(&ctg_a, &format!("A {id}")));
    ks.create(&category(&ctg_b, &format!("B {id}")));

    // Released by the controller: the copy is made once, then never updated by it.
    let first = upload(&ks, &format!("{id}-1"), &workspace, &ctg_a, &[&V1]);
    wait_draft(&ks, &first.versions[0]);
    review(&ks, &first.versions[0], "active");
    let store = format!("{}-store", first.app);
    wait_state(&ks, APPS, &store, "active");
    wait_total(&ks, &ctg_a, 1);
    ks.patch(
        APPS,
        &first.app,
        &json!({
            "metadata": {"labels": {CATEGORY_LABEL: ctg_b}},
            "spec": {"description": "changed in the workspace"},
        }),
    );
    std::thread::sleep(Duration::from_secs(5));
    let copy = ks.get(APPS, &store);
    assert_eq!(labels(&copy)[CATEGORY_LABEL], ctg_a.as_str(), "{copy:#}");
    assert_ne!(copy["spec"]["description"], "changed in the workspace");
    assert_eq!(total(&ks, &ctg_a), Some(1));
    // Writing the copy itself (what REST's release/recover does for the spec) moves it and
    // its count; the controllers leave it so.
    ks.patch(
        APPS,
        &store,
        &json!({
            "metadata": {"labels": {CATEGORY_LABEL: ctg_b}},
            "spec": {"description": "changed in the workspace"},
        }),
    );
    wait_total(&ks, &ctg_b, 1);
    wait_total(&ks, &ctg_a, 0);
    std::thread::sleep(Duration::from_secs(3));
    let copy = ks.get(APPS, &store);
    assert_eq!(labels(&copy)[CATEGORY_LABEL], ctg_b.as_str());
    assert_eq!(copy["spec"]["description"], "changed in the workspace");
    assert_eq!(copy["status"]["state"], "active");

    // Made before the release, in the controller's shape: it is taken as the copy (the app
    // controller's create-if-missing does nothing), tracks the app's state, and is counted
    // once active.
    let second = upload(&ks, &format!("{id}-2"), &workspace, &ctg_a, &[&V1]);
    let app = ks.get(APPS, &second.app);
    let store = format!("{}-store", second.app);
    ks.create(&store_copy(&app));
    let made = ks.get(APPS, &store)["metadata"]["uid"].clone();
    wait_draft(&ks, &second.versions[0]);
    let copy = wait_state(&ks, APPS, &store, "draft");
    assert!(copy["status"]["latestVersion"].is_null(), "{copy:#}");
    assert_eq!(
        total(&ks, &ctg_a).unwrap_or(0),
        0,
        "a draft copy is not counted"
    );
    review(&ks, &second.versions[0], "submitted");
    review(&ks, &second.versions[0], "passed");
    review(&ks, &second.versions[0], "active");
    let copy = wait_state(&ks, APPS, &store, "active");
    assert_eq!(copy["status"]["latestVersion"], V1.display());
    assert_eq!(labels(&copy), labels(&store_copy(&app)), "{copy:#}");
    assert_eq!(
        copy["metadata"]["uid"], made,
        "the same object, not replaced"
    );
    wait_total(&ks, &ctg_a, 1);

    // Deleting the app deletes a copy it did not make, too.
    ks.delete(APPS, &second.app);
    ks.wait_for(REACT, "the second app and its copy gone", || {
        (ks.get_json(APPS, None, &second.app).is_none()
            && ks.get_json(APPS, None, &store).is_none())
        .then_some(())
    });
    wait_total(&ks, &ctg_a, 0);
}
