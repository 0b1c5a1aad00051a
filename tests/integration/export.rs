//! `pitrix export` on the KubeSphere tier (issue #22): a store built the way KubeSphere's console
//! builds it — each object exactly as `pkg/kapis/application/v2` writes it (names, labels,
//! annotations, the storage ConfigMap, status through the status subresource), with
//! KubeSphere's own controllers and release webhook running — is exported; the catalog
//! validates and compiles to the live objects; `pitrix diff` shows nothing but ownership;
//! `pitrix apply --adopt` changes no spec and starts no executor Job; a second export is
//! byte-identical; the planted secrets are in no file and no output.

use crate::cluster::TestCluster;
use crate::common;
use crate::kubesphere::{self, APPS, CATEGORIES, KubeSphere, RELEASES, REPOS, VERSIONS};
use crate::repo_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use pitrix_testkit::s3::S3Server;
use serde_json::{Value, json};

const APP: &str = "demo-k3x9p";
/// A release of the synced repo's chart.
const SYNCED_RELEASE: &str = "cache-web";
const RELEASE: &str = "demo-web";
const REPO_USER: &str = "acme-ci";
const REPO_SECRET: &str = "planted-repo-s3cret-7f3a";
const VALUES_SECRET: &str = "planted-values-s3cret-91bd";
const PREFIX: &str = "ACME";
/// A screenshot's ID as KubeSphere 4's CreateAttachment makes it (`<field>-att-<5 of a-z0-9>`,
/// `GetUuid36`).
const ATTACHMENT: &str = "screenshot-att-k3x9p";
/// A 1×1 PNG, as the console uploads an icon (raw base64, no `data:` prefix).
const ICON: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn create(ks: &KubeSphere, object: Value) {
    ks.kubectl_stdin_ok(&["create", "-f", "-"], object.to_string().as_bytes());
}

fn patch_status(ks: &KubeSphere, resource: &str, name: &str, status: Value) {
    ks.kubectl_ok(&[
        "patch",
        resource,
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &json!({ "status": status }).to_string(),
    ]);
}

/// A chart `demo` `version`, packaged by real Helm (what a user uploads).
fn package(version: &str) -> Vec<u8> {
    package_chart("demo", version)
}

fn package_chart(name: &str, version: &str) -> Vec<u8> {
    package_chart_with(name, version, &[])
}

/// [`package_chart`] with `extra` files (path, text) in the chart.
fn package_chart_with(name: &str, version: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    let chart = src.path().join(name);
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: {name}\nversion: {version}\ndescription: A demo web app.\n\
             home: https://example.test/demo\nmaintainers:\n  - name: Jane Doe\n    email: jane@example.test\n"
        ),
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "replicaCount: 1\n").unwrap();
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  replicas: {{ .Values.replicaCount | quote }}\n",
    )
    .unwrap();
    for (path, text) in extra {
        std::fs::write(chart.join(path), text).unwrap();
    }
    let out = src.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let packaged =
        common::helm_oracle(&["package", chart.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(packaged["ok"], true, "{packaged}");
    std::fs::read(out.join(format!("{name}-{version}.tgz"))).unwrap()
}

const VALUES: &str =
    "replicaCount: 2\nauth:\n  password: planted-values-s3cret-91bd\nservice:\n  type: ClusterIP\n";

/// The store, as the console's API handlers write it (reference §2–§6; handler_category.go,
/// handler_repo.go, helper.go's CreateOrUpdateApp/AppVersion, handler_apprls.go).
fn build_store(ks: &KubeSphere, repo_url: &str) {
    ks.create_workspace("team-a");
    ks.create_namespace_in("web", "team-a");
    // The OpenPitrix extension's namespace: package storage.
    ks.kubectl_ok(&["create", "namespace", "extension-openpitrix"]);
    create(
        ks,
        json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "Category",
            "metadata": {"name": "databases", "annotations": {
                "kubesphere.io/alias-name": "Databases",
                "kubesphere.io/description": "Stores of data."}},
            "spec": {"icon": "database"},
        }),
    );
    // The URL's user info becomes the credential; syncPeriod 0: never synced (no network).
    create(
        ks,
        json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "Repo",
            "metadata": {"name": "acme-charts",
                "labels": {"kubesphere.io/workspace": "team-a"},
                "annotations": {"kubesphere.io/alias-name": "acme-charts"}},
            "spec": {"url": repo_url, "syncPeriod": 0,
                "description": "Internal charts",
                "credential": {"username": REPO_USER, "password": REPO_SECRET}},
        }),
    );
    // Upload of the app (version 0.9.0), then of version 1.0.0.
    create(
        ks,
        json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "Application",
            "metadata": {"name": APP,
                "labels": {
                    "application.kubesphere.io/repo-name": "upload",
                    "application.kubesphere.io/app-type": "helm",
                    "application.kubesphere.io/hascrd": "",
                    "application.kubesphere.io/app-category-name": "databases",
                    "kubesphere.io/workspace": "team-a"},
                "annotations": {
                    "kubesphere.io/alias-name": "Demo App",
                    "kubesphere.io/description": "A demo web app.",
                    "application.kubesphere.io/app-originalName": "demo",
                    "application.kubesphere.io/app-maintainers": "Jane Doe",
                    "application.kubesphere.io/latest-app-version": "1.0.0"}},
            "spec": {"icon": ICON, "appHome": "https://example.test/demo", "appType": "helm",
                "abstraction": "Says hello, twice.", "attachments": [ATTACHMENT]},
        }),
    );
    // Its screenshot, as CreateAttachment stores it without S3 (`CmStore.Upload`): a
    // ConfigMap named by the attachment ID, not immutable.
    create(
        ks,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": ATTACHMENT, "namespace": "extension-openpitrix"},
            "binaryData": {"BinaryKey": ICON},
        }),
    );
    patch_status(
        ks,
        APPS,
        APP,
        json!({"state": "draft", "updateTime": "2026-01-01T00:00:00Z"}),
    );
    let uid = ks.get_json(APPS, APP).unwrap()["metadata"]["uid"].clone();
    for version in ["0.9.0", "1.0.0"] {
        let id = format!("{APP}-{version}");
        create(
            ks,
            json!({
                "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationVersion",
                "metadata": {"name": id,
                    "labels": {
                        "application.kubesphere.io/repo-name": "upload",
                        "application.kubesphere.io/app-id": APP,
                        "application.kubesphere.io/app-type": "helm",
                        "kubesphere.io/workspace": "team-a"},
                    "annotations": {
                        "kubesphere.io/alias-name": "Demo App",
                        "kubesphere.io/description": "A demo web app.",
                        "application.kubesphere.io/app-maintainers": "Jane Doe"},
                    "finalizers": ["application.kubesphere.io/cleanup"],
                    "ownerReferences": [{"apiVersion": "application.kubesphere.io/v2",
                        "kind": "Application", "name": APP, "uid": uid,
                        "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"versionName": version, "appHome": "https://example.test/demo",
                    "created": "2026-01-01T00:00:00Z", "appType": "helm",
                    "maintainer": [{"name": "Jane Doe", "email": "jane@example.test"}]},
            }),
        );
        create(
            ks,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": id, "namespace": "extension-openpitrix"},
                "binaryData": {"BinaryKey": b64(&package(version))},
            }),
        );
        patch_status(
            ks,
            VERSIONS,
            &id,
            json!({"state": "draft", "updated": "2026-01-01T00:00:00Z"}),
        );
    }
    // Review: both released, then 0.9.0 suspended; the app released.
    patch_status(
        ks,
        VERSIONS,
        &format!("{APP}-1.0.0"),
        json!({"state": "active", "message": "LGTM"}),
    );
    patch_status(
        ks,
        VERSIONS,
        &format!("{APP}-0.9.0"),
        json!({"state": "suspended", "message": "CVE-2026-0001"}),
    );
    patch_status(
        ks,
        APPS,
        APP,
        json!({"state": "active", "updateTime": "2026-01-02T00:00:00Z"}),
    );
    ks.kubectl_ok(&[
        "label",
        APPS,
        APP,
        "application.kubesphere.io/app-store=true",
    ]);
    // The release, as the console posts it and the handler stores it (the webhook checks it).
    let release = json!({
        "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationRelease",
        "metadata": {"name": RELEASE,
            "labels": {
                "application.kubesphere.io/app-id": APP,
                "application.kubesphere.io/appversion-id": format!("{APP}-1.0.0"),
                "application.kubesphere.io/app-type": "helm",
                "kubesphere.io/cluster": "host",
                "kubesphere.io/namespace": "web",
                "kubesphere.io/workspace": "team-a"},
            "annotations": {
                "kubesphere.io/creator": "admin",
                "application.kubesphere.io/app-displayName": "Demo App",
                "application.kubesphere.io/app-versionName": "1.0.0"}},
        "spec": {"appID": APP, "appVersionID": format!("{APP}-1.0.0"),
            "values": b64(VALUES.as_bytes()), "appType": "helm", "icon": ICON},
    });
    ks.wait_for(
        Duration::from_secs(60),
        "the webhook admits the release",
        || {
            ks.kubectl_stdin(&["create", "-f", "-"], release.to_string().as_bytes())
                .status
                .success()
                .then_some(())
        },
    );
}

fn pitrix(ks: &KubeSphere, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .env("KUBECONFIG", &ks.kubeconfig)
        .env(format!("{PREFIX}_ACME_CHARTS_USERNAME"), REPO_USER)
        .env(format!("{PREFIX}_ACME_CHARTS_PASSWORD"), REPO_SECRET)
        .env(format!("{PREFIX}_DEMO_WEB_AUTH_PASSWORD"), VALUES_SECRET)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn export(ks: &KubeSphere, dir: &Path) -> String {
    let out = pitrix(
        ks,
        &[
            "export",
            dir.to_str().unwrap(),
            "--name",
            "acme",
            "--credentials-env-prefix",
            PREFIX,
        ],
    );
    let all = text(&out);
    assert!(out.status.success(), "export failed:\n{all}");
    for secret in [REPO_SECRET, VALUES_SECRET] {
        assert!(!all.contains(secret), "export printed a secret:\n{all}");
    }
    all
}

fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walk(dir) {
        out.insert(
            e.strip_prefix(dir).unwrap().to_path_buf(),
            std::fs::read(&e).unwrap(),
        );
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// `kind/name` → the live object.
fn live(ks: &KubeSphere) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (kind, resource) in [
        ("Category", CATEGORIES),
        ("Repo", REPOS),
        ("Application", APPS),
        ("ApplicationVersion", VERSIONS),
        ("ApplicationRelease", RELEASES),
    ] {
        for o in ks.list(resource, None, "") {
            out.insert(
                format!("{kind}/{}", o["metadata"]["name"].as_str().unwrap()),
                o,
            );
        }
    }
    for o in ks.list("configmaps", Some("extension-openpitrix"), "") {
        out.insert(
            format!("ConfigMap/{}", o["metadata"]["name"].as_str().unwrap()),
            o,
        );
    }
    out
}

/// The names of the ConfigMaps of package storage in [`live`]'s listing.
fn config_maps(live: &BTreeMap<String, Value>) -> Vec<&str> {
    live.keys()
        .filter_map(|k| k.strip_prefix("ConfigMap/"))
        .collect()
}

/// Ownership: what adopting adds and nothing else — pitrix's own labels and annotations.
fn is_ownership(path: &str) -> bool {
    path.contains("pitrix.io") || path.contains("app.kubernetes.io~1managed-by")
}

/// Leaves of `v` as (JSON pointer, value).
fn leaves(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                leaves(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => out.push((at, v.clone())),
    }
}

#[test]
fn an_exported_console_store_compiles_back_and_is_adopted_without_change() {
    let ks = KubeSphere::start();
    // The repo: `cache` 1.2.0 behind basic auth, synced by KubeSphere's own controller.
    let served = tempfile::tempdir().unwrap();
    let charts = served.path().join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    std::fs::write(
        charts.join("cache-1.2.0.tgz"),
        package_chart("cache", "1.2.0"),
    )
    .unwrap();
    let indexed = common::helm_oracle(&["index", charts.to_str().unwrap()]);
    assert_eq!(indexed["ok"], true, "{indexed}");
    let server = repo_server::Server::serve(served.path());
    server.require_auth(REPO_USER, REPO_SECRET);
    build_store(&ks, &server.url("/charts"));
    patch_status(&ks, REPOS, "acme-charts", json!({"state": "manualTrigger"}));
    ks.wait_for(Duration::from_secs(90), "KubeSphere syncs the repo", || {
        ks.get_json(VERSIONS, "acme-charts-cache-1.2.0")
    });
    let synced = json!({
        "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationRelease",
        "metadata": {"name": SYNCED_RELEASE,
            "labels": {
                "application.kubesphere.io/app-id": "acme-charts-cache",
                "application.kubesphere.io/appversion-id": "acme-charts-cache-1.2.0",
                "application.kubesphere.io/app-type": "helm",
                "kubesphere.io/cluster": "host",
                "kubesphere.io/namespace": "web",
                "kubesphere.io/workspace": "team-a"},
            "annotations": {"kubesphere.io/creator": "admin"}},
        "spec": {"appID": "acme-charts-cache", "appVersionID": "acme-charts-cache-1.2.0",
            "appType": "helm"},
    });
    ks.wait_for(
        Duration::from_secs(60),
        "the webhook admits the synced release",
        || {
            ks.kubectl_stdin(&["create", "-f", "-"], synced.to_string().as_bytes())
                .status
                .success()
                .then_some(())
        },
    );
    ks.wait_for(
        Duration::from_secs(90),
        "KubeSphere's executor Job for the synced release",
        || (!ks.executor_jobs(SYNCED_RELEASE).is_empty()).then_some(()),
    );
    ks.wait_for(
        Duration::from_secs(90),
        "KubeSphere's executor Job for the release",
        || {
            let r = ks.get_json(RELEASES, RELEASE)?;
            let hash = r.pointer("/status/specHash")?.as_str()?.to_string();
            (!ks.executor_jobs(RELEASE).is_empty()).then_some(hash)
        },
    );
    let before = live(&ks);
    let jobs_before = ks.executor_jobs(RELEASE).len();
    let synced_jobs_before = ks.executor_jobs(SYNCED_RELEASE).len();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acme");
    let printed = export(&ks, &dir);
    for var in [
        "ACME_ACME_CHARTS_USERNAME",
        "ACME_ACME_CHARTS_PASSWORD",
        "ACME_DEMO_WEB_AUTH_PASSWORD",
    ] {
        assert!(printed.contains(var), "export names {var}:\n{printed}");
    }
    // A store made as the console makes it compiles back whole: nothing to list.
    assert!(
        !printed.contains("cannot express"),
        "export lists something:\n{printed}"
    );
    let files = tree(&dir);
    for (path, bytes) in &files {
        for secret in [REPO_SECRET, VALUES_SECRET] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a planted secret",
                path.display()
            );
        }
    }
    // The packages, byte for byte; the review states; the icon as a file.
    for version in ["0.9.0", "1.0.0"] {
        let cm = &before[&format!("ConfigMap/{APP}-{version}")];
        let stored = base64::engine::general_purpose::STANDARD
            .decode(cm["binaryData"]["BinaryKey"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            files[Path::new(&format!("apps/{APP}/{version}.tgz"))],
            stored
        );
    }
    let app: Value =
        serde_yaml::from_slice(&files[Path::new(&format!("apps/{APP}/app.yaml"))]).unwrap();
    assert_eq!(app["displayName"], "Demo App");
    assert_eq!(app["category"], "databases");
    assert_eq!(app["icon"], "icon.png");
    // The screenshot under the ID it has, so that adopting keeps it.
    assert_eq!(
        app["screenshots"],
        json!([{"file": format!("screenshots/{ATTACHMENT}.png"), "id": ATTACHMENT}])
    );
    assert_eq!(
        files[Path::new(&format!("apps/{APP}/screenshots/{ATTACHMENT}.png"))],
        base64::engine::general_purpose::STANDARD
            .decode(ICON)
            .unwrap()
    );
    assert_eq!(app["versions"]["0.9.0"]["state"], "suspended");
    assert_eq!(app["versions"]["0.9.0"]["message"], "CVE-2026-0001");
    assert_eq!(app["versions"]["1.0.0"]["state"], "active");
    let release: Value =
        serde_yaml::from_slice(&files[Path::new(&format!("releases/host/web/{RELEASE}.yaml"))])
            .unwrap();
    assert_eq!(
        release["values"]["auth"]["password"],
        "{{ env.ACME_DEMO_WEB_AUTH_PASSWORD }}"
    );
    assert_eq!(release["values"]["replicaCount"], 2);
    let cache: Value = serde_yaml::from_slice(
        &files[Path::new(&format!("releases/host/web/{SYNCED_RELEASE}.yaml"))],
    )
    .unwrap();
    assert_eq!(cache["app"], "acme-charts/cache");
    assert_eq!(cache["version"], "1.2.0");
    assert!(
        !files
            .keys()
            .any(|p| p.starts_with("apps/acme-charts-cache"))
    );
    let settings = String::from_utf8(files[Path::new("pitrix.toml")].clone()).unwrap();
    assert!(settings.contains("workspace = \"team-a\""), "{settings}");

    // It validates and compiles to the live objects, field by field (what KubeSphere's
    // controllers own aside: status, finalizers, server metadata; and ownership).
    let out = pitrix(&ks, &["validate", dir.to_str().unwrap()]);
    assert!(out.status.success(), "validate:\n{}", text(&out));
    let compiled = tmp.path().join("out");
    let out = pitrix(
        &ks,
        &[
            "compile",
            dir.to_str().unwrap(),
            "-o",
            compiled.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "compile:\n{}", text(&out));
    let stream = std::fs::read_to_string(compiled.join("all.yaml")).unwrap();
    let mut differences = Vec::new();
    let mut compiled_keys = Vec::new();
    let mut compared = 0;
    for doc in serde_yaml::Deserializer::from_str(&stream) {
        let object: Value = serde::Deserialize::deserialize(doc).unwrap();
        let key = format!(
            "{}/{}",
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        );
        let Some(l) = before.get(&key) else {
            if key != "Namespace/extension-openpitrix"
                && key != "Category/kubesphere-app-uncategorized"
            {
                differences.push(format!("{key}: compiled, not live"));
            }
            continue;
        };
        compared += 1;
        compiled_keys.push(key.clone());
        let mut fields = Vec::new();
        leaves(&object, String::new(), &mut fields);
        for (path, value) in fields {
            // What pitrix marks its own packages with, and adopting leaves out of a package
            // stored by the console (apply::stored): `immutable`, the version's digest.
            let marks = path == "/immutable"
                || (key.starts_with("ApplicationVersion/") && path == "/spec/digest");
            if marks || is_ownership(&path) || path == "/status" || path.starts_with("/status/") {
                continue;
            }
            let live_value = l.pointer(&path).cloned().unwrap_or(Value::Null);
            if live_value != value {
                differences.push(format!("{key} {path}: live {live_value}, compiled {value}"));
            }
        }
    }
    assert!(compared >= 9, "compared {compared} objects");
    assert!(
        compiled_keys.contains(&format!("ConfigMap/{ATTACHMENT}")),
        "the screenshot compiles to its live ConfigMap: {compiled_keys:?}"
    );
    assert!(
        differences.is_empty(),
        "compile differs from live:\n{}",
        differences.join("\n")
    );

    // `pitrix diff`: nothing but ownership.
    let out = pitrix(&ks, &["diff", dir.to_str().unwrap(), "--format", "json"]);
    let d: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diff JSON: {e}\n{}", text(&out)));
    for secret in [REPO_SECRET, VALUES_SECRET] {
        assert!(!text(&out).contains(secret), "diff printed a secret");
    }
    // A release line says it is adopted, no more: same version, same values.
    for r in d["releases"].as_array().unwrap() {
        assert!(
            r["from"] == r["to"] && r["valuesChanged"] == false,
            "diff changes release {r}"
        );
    }
    assert_eq!(d["states"], json!([]), "{d:#}");
    for o in d["objects"].as_array().unwrap() {
        for f in o["fields"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            // A whole labels map added to an object that had none: pitrix's labels only.
            let whole = (path == "/metadata/labels" || path == "/metadata/annotations")
                && f["old"].is_null()
                && f["new"]
                    .as_object()
                    .is_some_and(|m| m.keys().all(|k| is_ownership(&k.replace('/', "~1"))));
            assert!(
                whole || is_ownership(path),
                "diff changes {} {}: {f}",
                o["name"],
                path
            );
        }
        // diff::Action's names: "removed", "changed", "added".
        assert_eq!(o["action"], "changed", "diff adds or removes {o}");
    }
    for e in d["errors"].as_array().unwrap() {
        assert_eq!(e["code"], "not-owned", "diff error {e}");
    }

    // Adopt: ownership only — no spec changes, no package replaced, no new executor Job.
    let out = pitrix(
        &ks,
        &[
            "apply",
            dir.to_str().unwrap(),
            "--adopt",
            "--output",
            "json",
        ],
    );
    assert!(out.status.success(), "apply --adopt:\n{}", text(&out));
    let report = text(&out);
    for secret in [REPO_SECRET, VALUES_SECRET] {
        assert!(
            !report.contains(secret),
            "apply printed a secret:\n{report}"
        );
    }
    let after_adopt = live(&ks);
    // No ConfigMap added: the screenshot keeps its own (and its ID, in the app's spec).
    assert_eq!(
        config_maps(&after_adopt),
        config_maps(&before),
        "adopt stored a ConfigMap: {report:#}"
    );
    assert_eq!(
        after_adopt[&format!("Application/{APP}")]["spec"]["attachments"],
        json!([ATTACHMENT])
    );
    for (key, l) in &before {
        let a = after_adopt
            .get(key)
            .unwrap_or_else(|| panic!("{key} is gone after adopt: {report:#}"));
        assert_eq!(
            l.get("spec"),
            a.get("spec"),
            "{key}: adopt changed its spec"
        );
        assert_eq!(
            l.get("binaryData"),
            a.get("binaryData"),
            "{key}: adopt replaced its package"
        );
    }
    for key in &compiled_keys {
        assert_eq!(
            after_adopt[key]["metadata"]["labels"]["pitrix.io/catalog"], "acme",
            "{key} is not adopted: {report:#}"
        );
    }
    let hash = |m: &BTreeMap<String, Value>| {
        m[&format!("ApplicationRelease/{RELEASE}")]["status"]["specHash"].clone()
    };
    assert_eq!(hash(&before), hash(&after_adopt));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        ks.executor_jobs(RELEASE).len(),
        jobs_before,
        "adopt started an executor Job"
    );
    assert_eq!(
        ks.executor_jobs(SYNCED_RELEASE).len(),
        synced_jobs_before,
        "adopt started an executor Job for the synced release"
    );
    assert_eq!(
        ks.get_json(RELEASES, RELEASE).unwrap()["status"]["specHash"],
        hash(&before)
    );

    // A second export (after adopting) is byte-identical; into the same catalog it changes
    // nothing, and a directory of another catalog is refused.
    let again = tmp.path().join("again");
    export(&ks, &again);
    assert_eq!(tree(&again), files, "a second export differs");
    let printed = export(&ks, &dir);
    assert!(printed.contains("(0 changed)"), "{printed}");
    // A change in the console: --dry-run names the file, and writes nothing.
    ks.kubectl_ok(&[
        "annotate",
        "--overwrite",
        CATEGORIES,
        "databases",
        "kubesphere.io/description=Where data lives.",
    ]);
    let out = pitrix(
        &ks,
        &[
            "export",
            dir.to_str().unwrap(),
            "--name",
            "acme",
            "--credentials-env-prefix",
            PREFIX,
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "export --dry-run:\n{}", text(&out));
    assert!(
        text(&out).contains("~ categories/databases.yaml"),
        "{}",
        text(&out)
    );
    assert_eq!(tree(&dir), files, "--dry-run wrote");
    let out = pitrix(&ks, &["export", dir.to_str().unwrap(), "--name", "other"]);
    assert!(
        !out.status.success(),
        "export over another catalog:\n{}",
        text(&out)
    );
    let _ = kubesphere::NOISE;
}

// --- KubeSphere 4 with S3, and a member cluster ---------------------------------------------------

/// The bucket of KubeSphere's S3 store (kubesphere.yaml `s3.bucket`).
const BUCKET: &str = "ks-app-store";
/// The member cluster a release is installed into.
const MEMBER: &str = "edge";
/// The kubeconfig context of the host: another name than the catalog's `host`.
const HOST_CONTEXT: &str = "ks-host";
const MEMBER_RELEASE: &str = "demo-edge";

/// `pitrix ARGS` with `kubeconfig` and the S3 credentials in pitrix's default variables.
fn pitrix_s3(kubeconfig: &Path, s3: &S3Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("PITRIX_S3_ACCESS_KEY_ID", &s3.access_key)
        .env("PITRIX_S3_SECRET_ACCESS_KEY", &s3.secret_key)
        .output()
        .unwrap()
}

/// Stores `body` under `key` as KubeSphere's console does (`kubesphere.io/utils/s3` Upload):
/// an object without user metadata — not through pitrix's own client, which adds the SHA-256
/// that `put_if_absent` trusts. s3s-fs serves the files of its data directory as the objects
/// (pitrix_testkit::s3), so the file is the object.
fn console_upload(s3: &S3Server, key: &str, body: &[u8]) {
    assert!(s3.has_bucket(BUCKET));
    std::fs::write(s3.data_dir.join(BUCKET).join(key), body).unwrap();
    assert_eq!(s3.object(BUCKET, key).as_deref(), Some(body));
}

/// The executor Jobs KubeSphere made for release `release` in cluster `k` (any namespace).
fn executor_jobs_in(k: &TestCluster, release: &str) -> usize {
    let out = k.kubectl_ok(&[
        "get",
        "jobs.batch",
        "--all-namespaces",
        "-l",
        &format!("application.kubesphere.io/app-release-name={release}"),
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().map_or(0, Vec::len)
}

/// An uploaded Helm app `APP` with `versions` (version, review state), made as the console's
/// handlers make it; each package stored by `store`.
fn upload_app(ks: &KubeSphere, versions: &[(&str, &str)], store: impl Fn(&str, &[u8])) {
    create(
        ks,
        json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "Application",
            "metadata": {"name": APP,
                "labels": {
                    "application.kubesphere.io/repo-name": "upload",
                    "application.kubesphere.io/app-type": "helm",
                    "application.kubesphere.io/hascrd": "",
                    "application.kubesphere.io/app-category-name": "kubesphere-app-uncategorized",
                    "kubesphere.io/workspace": "team-a"},
                "annotations": {
                    "kubesphere.io/alias-name": "Demo App",
                    "kubesphere.io/description": "A demo web app.",
                    "application.kubesphere.io/app-originalName": "demo",
                    "application.kubesphere.io/app-maintainers": "Jane Doe",
                    "application.kubesphere.io/latest-app-version": versions.last().unwrap().0}},
            "spec": {"icon": ICON, "appHome": "https://example.test/demo", "appType": "helm",
                "abstraction": "A demo web app."},
        }),
    );
    let uid = ks.get_json(APPS, APP).unwrap()["metadata"]["uid"].clone();
    for (version, _) in versions {
        let id = format!("{APP}-{version}");
        create(
            ks,
            json!({
                "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationVersion",
                "metadata": {"name": id,
                    "labels": {
                        "application.kubesphere.io/repo-name": "upload",
                        "application.kubesphere.io/app-id": APP,
                        "application.kubesphere.io/app-type": "helm",
                        "kubesphere.io/workspace": "team-a"},
                    "annotations": {
                        "kubesphere.io/alias-name": "Demo App",
                        "kubesphere.io/description": "A demo web app.",
                        "application.kubesphere.io/app-maintainers": "Jane Doe"},
                    "finalizers": ["application.kubesphere.io/cleanup"],
                    "ownerReferences": [{"apiVersion": "application.kubesphere.io/v2",
                        "kind": "Application", "name": APP, "uid": uid,
                        "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"versionName": version, "appHome": "https://example.test/demo",
                    "created": "2026-01-01T00:00:00Z", "appType": "helm",
                    "maintainer": [{"name": "Jane Doe", "email": "jane@example.test"}]},
            }),
        );
        store(&id, &package(version));
    }
    for (version, state) in versions {
        patch_status(
            ks,
            VERSIONS,
            &format!("{APP}-{version}"),
            json!({"state": state, "updated": "2026-01-01T00:00:00Z"}),
        );
    }
    patch_status(
        ks,
        APPS,
        APP,
        json!({"state": "active", "updateTime": "2026-01-02T00:00:00Z"}),
    );
    ks.kubectl_ok(&[
        "label",
        APPS,
        APP,
        "application.kubesphere.io/app-store=true",
    ]);
}

/// A release of `APP` `version` in namespace `web` of `cluster`, as the console posts it;
/// waits for KubeSphere's executor Job in `runs_in`, the API server of that cluster.
fn release_of(ks: &KubeSphere, name: &str, cluster: &str, version: &str, runs_in: &TestCluster) {
    let release = json!({
        "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationRelease",
        "metadata": {"name": name,
            "labels": {
                "application.kubesphere.io/app-id": APP,
                "application.kubesphere.io/appversion-id": format!("{APP}-{version}"),
                "application.kubesphere.io/app-type": "helm",
                "kubesphere.io/cluster": cluster,
                "kubesphere.io/namespace": "web",
                "kubesphere.io/workspace": "team-a"},
            "annotations": {"kubesphere.io/creator": "admin"}},
        "spec": {"appID": APP, "appVersionID": format!("{APP}-{version}"),
            "values": b64(b"replicaCount: 0\n"), "appType": "helm", "icon": ICON},
    });
    ks.wait_for(
        Duration::from_secs(60),
        &format!("the webhook admits release {name}"),
        || {
            ks.kubectl_stdin(&["create", "-f", "-"], release.to_string().as_bytes())
                .status
                .success()
                .then_some(())
        },
    );
    ks.wait_for(
        Duration::from_secs(90),
        &format!("KubeSphere's executor Job for {name}"),
        || (executor_jobs_in(runs_in, name) > 0).then_some(()),
    );
}

/// `diff --format json`'s changes beyond ownership, as `kind/name path` lines.
fn beyond_ownership(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for r in d["releases"].as_array().unwrap() {
        if r["from"] != r["to"] || r["valuesChanged"] != false {
            out.push(format!("release {r}"));
        }
    }
    if d["states"] != json!([]) {
        out.push(format!("states {}", d["states"]));
    }
    for o in d["objects"].as_array().unwrap() {
        if o["action"] != "changed" {
            out.push(format!(
                "{} {}/{}",
                o["action"].as_str().unwrap_or_default(),
                o["kind"].as_str().unwrap_or_default(),
                o["name"].as_str().unwrap_or_default()
            ));
        }
        for f in o["fields"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let whole = (path == "/metadata/labels" || path == "/metadata/annotations")
                && f["old"].is_null()
                && f["new"]
                    .as_object()
                    .is_some_and(|m| m.keys().all(|k| is_ownership(&k.replace('/', "~1"))));
            if !(whole || is_ownership(path)) {
                out.push(format!(
                    "{}/{} {path}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    for e in d["errors"].as_array().unwrap() {
        if e["code"] != "not-owned" {
            out.push(format!("error {e}"));
        }
    }
    out
}

/// KubeSphere 4 with S3 configured keeps uploaded packages in S3 under the version ID and
/// writes no storage ConfigMap (`FailOverUpload`); an older version stored before S3 was
/// configured is still a ConfigMap, which KubeSphere reads when S3 has no such key
/// (`FailOverGet`). A release runs on a member cluster: a second API server (etcd and
/// kube-apiserver of its own), joined as KubeSphere joins a member (Cluster, direct
/// connection), where KubeSphere's controller runs that release's executor Job; the host's
/// kubeconfig context is not named `host`. Export reads both stores, writes `[storage.s3]` (no
/// credential) and each cluster's context; the catalog compiles to S3 objects holding the
/// stored bytes; `pitrix diff` shows nothing but ownership — and the copy of the ConfigMap-only
/// package adopting would put into S3, where KubeSphere reads it first.
#[test]
fn an_exported_store_with_packages_in_s3_and_a_member_cluster_release_round_trips() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let ks = KubeSphere::start_with_s3(&s3, BUCKET);
    let started = std::time::Instant::now();
    let edge = TestCluster::start();
    eprintln!(
        "[export] member API server ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    ks.add_member(MEMBER, &edge);
    // Joined as itself: KubeSphere's Cluster carries the member's kube-system UID.
    let uid = |k: &TestCluster| -> Value {
        serde_json::from_str::<Value>(&k.kubectl_ok(&[
            "get",
            "namespace",
            "kube-system",
            "-o",
            "json",
        ]))
        .unwrap()["metadata"]["uid"]
            .clone()
    };
    let joined = ks.get_json(kubesphere::CLUSTERS, MEMBER).unwrap();
    assert_eq!(joined["status"]["uid"], uid(&edge));
    assert_ne!(joined["status"]["uid"], uid(&ks.cluster));
    ks.create_workspace("team-a");
    ks.create_namespace_in("web", "team-a");
    edge.kubectl_ok(&["create", "namespace", "web"]);
    ks.kubectl_ok(&["create", "namespace", "extension-openpitrix"]);
    // 0.8.0 from before S3: a ConfigMap. 0.9.0 and 1.0.0: in S3 only.
    upload_app(
        &ks,
        &[
            ("0.8.0", "active"),
            ("0.9.0", "suspended"),
            ("1.0.0", "active"),
        ],
        |id, bytes| {
            if id.ends_with("0.8.0") {
                create(
                    &ks,
                    json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": id, "namespace": "extension-openpitrix"},
                        "binaryData": {"BinaryKey": b64(bytes)},
                    }),
                );
            } else {
                console_upload(&s3, id, bytes);
            }
        },
    );
    // A screenshot, uploaded as the console's CreateAttachment does: into S3 under its ID.
    let screenshot = base64::engine::general_purpose::STANDARD
        .decode(ICON)
        .unwrap();
    console_upload(&s3, ATTACHMENT, &screenshot);
    ks.kubectl_ok(&[
        "patch",
        APPS,
        APP,
        "--type=merge",
        "-p",
        &json!({"spec": {"attachments": [ATTACHMENT]}}).to_string(),
    ]);
    release_of(&ks, RELEASE, "host", "1.0.0", &ks);
    release_of(&ks, MEMBER_RELEASE, MEMBER, "0.8.0", &edge);
    // The member's release is installed in the member (its ApplicationRelease is the host's,
    // as KubeSphere 4's handler writes it), the host's in the host.
    assert_eq!(executor_jobs_in(&ks, MEMBER_RELEASE), 0);
    assert_eq!(executor_jobs_in(&edge, RELEASE), 0);
    // What KubeSphere itself read: 1.0.0 from S3, 0.8.0 from its ConfigMap after S3 had none.
    let log = ks.log_text();
    assert!(
        log.contains(&format!("read from oss {APP}-1.0.0")),
        "KubeSphere reads 1.0.0 from S3"
    );
    assert!(
        log.contains(&format!("FailOver read from configMap {APP}-0.8.0")),
        "KubeSphere reads 0.8.0 from its ConfigMap"
    );
    let before = live(&ks);
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    pitrix_testkit::cluster::kubeconfig_with_contexts(
        &[(HOST_CONTEXT, &ks.cluster), (MEMBER, &edge)],
        &kubeconfig,
    );
    let dir = tmp.path().join("acme");
    let d = dir.to_str().unwrap();
    let export_args = [
        "export",
        d,
        "--name",
        "acme",
        "--context",
        HOST_CONTEXT,
        "--s3-endpoint",
        &s3.endpoint,
        "--s3-bucket",
        BUCKET,
    ];

    // Without the credential variables: refused before anything is written, naming them.
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(export_args)
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("PITRIX_S3_ACCESS_KEY_ID")
        .env_remove("PITRIX_S3_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("PITRIX_S3_ACCESS_KEY_ID"),
        "{}",
        text(&out)
    );
    assert!(!dir.exists(), "a refused export wrote {}", dir.display());

    // A key S3 refuses: the export fails (exit 2) naming the variables, and writes nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(export_args)
        .env("KUBECONFIG", &kubeconfig)
        .env("PITRIX_S3_ACCESS_KEY_ID", &s3.access_key)
        .env("PITRIX_S3_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("refused the credentials from PITRIX_S3_ACCESS_KEY_ID"),
        "{}",
        text(&out)
    );
    assert!(!dir.exists(), "a failed export wrote {}", dir.display());

    let out = pitrix_s3(&kubeconfig, &s3, &export_args);
    let printed = text(&out);
    assert!(out.status.success(), "export:\n{printed}");
    assert!(
        !printed.contains(&s3.secret_key) && !printed.contains(&s3.access_key),
        "{printed}"
    );
    let files = tree(&dir);
    for (path, bytes) in &files {
        for secret in [&s3.secret_key, &s3.access_key] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds an S3 credential",
                path.display()
            );
        }
    }
    // Each package byte for byte: from S3, and from the ConfigMap where S3 has none.
    for version in ["0.9.0", "1.0.0"] {
        let stored = s3.object(BUCKET, &format!("{APP}-{version}")).unwrap();
        assert_eq!(
            files[Path::new(&format!("apps/{APP}/{version}.tgz"))],
            stored,
            "{version}"
        );
    }
    assert_eq!(s3.object(BUCKET, &format!("{APP}-0.8.0")), None);
    assert_eq!(
        files[Path::new(&format!("apps/{APP}/screenshots/{ATTACHMENT}.png"))],
        screenshot
    );
    let cm = &before[&format!("ConfigMap/{APP}-0.8.0")];
    assert_eq!(
        files[Path::new(&format!("apps/{APP}/0.8.0.tgz"))],
        base64::engine::general_purpose::STANDARD
            .decode(cm["binaryData"]["BinaryKey"].as_str().unwrap())
            .unwrap()
    );
    // pitrix.toml: the store (where, no credential) and both clusters' contexts.
    let settings_text = String::from_utf8(files[Path::new("pitrix.toml")].clone()).unwrap();
    let settings: pitrix::catalog::Settings = toml::from_str(&settings_text).unwrap();
    let store = settings
        .storage
        .s3
        .as_ref()
        .expect("[storage.s3]")
        .location();
    assert_eq!(store.endpoint, s3.endpoint, "{settings_text}");
    assert_eq!(store.bucket, BUCKET);
    assert_eq!(store.region, "us-east-1");
    assert!(store.path_style);
    assert_eq!(
        settings.clusters["host"].context.as_deref(),
        Some(HOST_CONTEXT),
        "{settings_text}"
    );
    assert_eq!(
        settings.clusters[MEMBER].context.as_deref(),
        Some(MEMBER),
        "{settings_text}"
    );
    let member: Value = serde_yaml::from_slice(
        &files[Path::new(&format!("releases/{MEMBER}/web/{MEMBER_RELEASE}.yaml"))],
    )
    .unwrap();
    assert_eq!(member["app"], APP);
    assert_eq!(member["version"], "0.8.0");

    // It validates; it compiles to S3 objects holding the stored bytes, and no ConfigMap.
    let out = pitrix_s3(&kubeconfig, &s3, &["validate", d]);
    assert!(out.status.success(), "validate:\n{}", text(&out));
    let compiled = match pitrix::pipeline::build(&dir) {
        Ok((compiled, _)) => compiled,
        Err(diags) => panic!("the export is valid:\n{}", common::dump(&diags)),
    };
    for version in ["0.8.0", "0.9.0", "1.0.0"] {
        let id = format!("{APP}-{version}");
        let object = compiled
            .objects
            .iter()
            .find(|o| o.kind() == "S3Object" && o.name() == id)
            .unwrap_or_else(|| panic!("no S3Object {id}"))
            .to_json();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(object["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            bytes,
            files[Path::new(&format!("apps/{APP}/{version}.tgz"))],
            "{id}"
        );
    }
    assert!(
        !compiled.objects.iter().any(|o| o.kind() == "ConfigMap"),
        "a storage ConfigMap compiled beside [storage.s3]"
    );
    let release = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "ApplicationRelease" && o.name() == MEMBER_RELEASE)
        .unwrap()
        .to_json();
    assert_eq!(
        release["metadata"]["labels"]["kubesphere.io/cluster"],
        MEMBER
    );

    // The screenshot: named by the ID it has, and compiled to the S3 object of that key.
    let app: Value =
        serde_yaml::from_slice(&files[Path::new(&format!("apps/{APP}/app.yaml"))]).unwrap();
    assert_eq!(
        app["screenshots"],
        json!([{"file": format!("screenshots/{ATTACHMENT}.png"), "id": ATTACHMENT}])
    );
    let shot = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "S3Object" && o.name() == ATTACHMENT)
        .expect("the screenshot compiled as the S3 object of its ID")
        .to_json();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap(),
        screenshot
    );
    assert!(!printed.contains("content-derived"), "{printed}");

    // `pitrix diff` against the same cluster and S3: ownership, and the upload of 0.8.0 —
    // the console's versions have no `spec.digest`, and adopting adds none (apply/stored.rs),
    // whether their package is in S3 or, for 0.8.0, only in a ConfigMap; the app's
    // attachments and the screenshot's object are as they are.
    let out = pitrix_s3(&kubeconfig, &s3, &["diff", d, "--format", "json"]);
    let diff: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diff JSON: {e}\n{}", text(&out)));
    assert_eq!(
        beyond_ownership(&diff),
        [format!("added S3Object/{APP}-0.8.0")],
        "{diff:#}"
    );

    // A second export (before adopting) is byte-identical.
    let again = tmp.path().join("again");
    let mut args = export_args.to_vec();
    args[1] = again.to_str().unwrap();
    let out = pitrix_s3(&kubeconfig, &s3, &args);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tree(&again), files, "a second export differs");
    // Exported again into the catalog without the --s3-* flags: its [storage.s3] says where
    // the packages are, so nothing changes.
    let out = pitrix_s3(
        &kubeconfig,
        &s3,
        &["export", d, "--name", "acme", "--context", HOST_CONTEXT],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("(0 changed)"), "{}", text(&out));
    assert_eq!(tree(&dir), files);

    // Adopt: the console's S3 objects are the compiled bytes, so none is replaced; the
    // ConfigMap-only package is copied into S3; no release is installed again.
    let jobs = [
        executor_jobs_in(&ks, RELEASE),
        executor_jobs_in(&edge, MEMBER_RELEASE),
    ];
    let keys_before = s3.keys(BUCKET);
    let out = pitrix_s3(
        &kubeconfig,
        &s3,
        &["apply", d, "--adopt", "--output", "json"],
    );
    assert!(out.status.success(), "apply --adopt:\n{}", text(&out));
    for version in ["0.8.0", "0.9.0", "1.0.0"] {
        assert_eq!(
            s3.object(BUCKET, &format!("{APP}-{version}")).as_deref(),
            Some(files[Path::new(&format!("apps/{APP}/{version}.tgz"))].as_slice()),
            "{version} in S3 after adopt"
        );
    }
    let after = live(&ks);
    for name in [RELEASE, MEMBER_RELEASE] {
        let key = format!("ApplicationRelease/{name}");
        assert_eq!(before[&key]["spec"], after[&key]["spec"], "{key}");
        assert_eq!(
            before[&key]["status"]["specHash"], after[&key]["status"]["specHash"],
            "{key}"
        );
        assert_eq!(
            after[&key]["metadata"]["labels"]["pitrix.io/catalog"],
            "acme"
        );
    }
    std::thread::sleep(Duration::from_secs(5));
    let jobs_after = [
        executor_jobs_in(&ks, RELEASE),
        executor_jobs_in(&edge, MEMBER_RELEASE),
    ];
    assert_eq!(jobs, jobs_after, "adopt started an executor Job");
    // The screenshot keeps its ID and its S3 object; the one new object is 0.8.0's copy.
    assert_eq!(s3.object(BUCKET, ATTACHMENT), Some(screenshot.clone()));
    assert_eq!(
        after[&format!("Application/{APP}")]["spec"]["attachments"],
        json!([ATTACHMENT])
    );
    let mut expected_keys = keys_before.clone();
    expected_keys.push(format!("{APP}-0.8.0"));
    expected_keys.sort();
    let mut keys_after = s3.keys(BUCKET);
    keys_after.sort();
    assert_eq!(keys_after, expected_keys, "adopt stored new S3 objects");
    for (key, l) in &before {
        assert_eq!(
            l.get("spec"),
            after.get(key).and_then(|a| a.get("spec")),
            "{key}: adopt changed its spec"
        );
    }
    assert_eq!(
        config_maps(&after),
        config_maps(&before),
        "adopt stored a ConfigMap"
    );
}

// --- --unpack and YAML apps -----------------------------------------------------------------------

const YAML_APP: &str = "hello-yaml";
const YAML_RELEASE: &str = "hello-web";
/// The manifests a user uploads as YAML app `hello-yaml` 1.0.0 (keys in sorted order).
const MANIFESTS: &str =
    "apiVersion: v1\ndata:\n  greeting: hi\nkind: ConfigMap\nmetadata:\n  name: hello\n";
/// The same, placed in namespace `web`: what the console posts as the release's values.
const PLACED: &str = "apiVersion: v1\ndata:\n  greeting: hi\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: web\n";

/// A store of ConfigMap packages: Helm app `APP` 1.0.0 as `helm package` makes it (re-packing
/// it loses nothing), 0.9.0 with a `.helmignore` (re-packing could drop files), and YAML app
/// `hello-yaml` with a release. `--unpack` writes 1.0.0 as a chart directory and keeps 0.9.0's
/// `.tgz`, saying why; the YAML app's manifests are written byte for byte; the catalog
/// compiles back to the same packages and `pitrix diff` shows nothing but ownership.
#[test]
fn export_unpack_writes_lossless_charts_as_directories_and_a_yaml_app_compiles_back() {
    let ks = KubeSphere::start();
    ks.create_workspace("team-a");
    ks.create_namespace_in("web", "team-a");
    ks.kubectl_ok(&["create", "namespace", "extension-openpitrix"]);
    let packages: BTreeMap<&str, Vec<u8>> = BTreeMap::from([
        (
            "0.9.0",
            package_chart_with("demo", "0.9.0", &[(".helmignore", "*.bak\n")]),
        ),
        ("1.0.0", package("1.0.0")),
    ]);
    let config_map = |id: &str, bytes: &[u8]| {
        create(
            &ks,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": id, "namespace": "extension-openpitrix"},
                "binaryData": {"BinaryKey": b64(bytes)},
            }),
        )
    };
    upload_app(&ks, &[("0.9.0", "active"), ("1.0.0", "active")], |id, _| {
        let version = id.rsplit('-').next().unwrap();
        config_map(id, &packages[version]);
    });
    // The YAML app, as the console's handlers write it (appType yaml; the manifests stored
    // under the version ID).
    create(
        &ks,
        json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "Application",
            "metadata": {"name": YAML_APP,
                "labels": {
                    "application.kubesphere.io/repo-name": "upload",
                    "application.kubesphere.io/app-type": "yaml",
                    "application.kubesphere.io/app-category-name": "kubesphere-app-uncategorized",
                    "kubesphere.io/workspace": "team-a"},
                "annotations": {
                    "kubesphere.io/alias-name": "Hello YAML",
                    "kubesphere.io/description": "Greets.",
                    "application.kubesphere.io/latest-app-version": "1.0.0"}},
            "spec": {"appType": "yaml", "abstraction": "Greets."},
        }),
    );
    let uid = ks.get_json(APPS, YAML_APP).unwrap()["metadata"]["uid"].clone();
    let yaml_version = format!("{YAML_APP}-1.0.0");
    create(
        &ks,
        json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationVersion",
            "metadata": {"name": yaml_version,
                "labels": {
                    "application.kubesphere.io/repo-name": "upload",
                    "application.kubesphere.io/app-id": YAML_APP,
                    "application.kubesphere.io/app-type": "yaml",
                    "kubesphere.io/workspace": "team-a"},
                "annotations": {
                    "kubesphere.io/alias-name": "Hello YAML",
                    "kubesphere.io/description": "Greets."},
                "finalizers": ["application.kubesphere.io/cleanup"],
                "ownerReferences": [{"apiVersion": "application.kubesphere.io/v2",
                    "kind": "Application", "name": YAML_APP, "uid": uid,
                    "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"versionName": "1.0.0", "created": "2026-01-01T00:00:00Z",
                "appType": "yaml"},
        }),
    );
    config_map(&yaml_version, MANIFESTS.as_bytes());
    patch_status(
        &ks,
        VERSIONS,
        &yaml_version,
        json!({"state": "active", "updated": "2026-01-01T00:00:00Z"}),
    );
    patch_status(
        &ks,
        APPS,
        YAML_APP,
        json!({"state": "active", "updateTime": "2026-01-02T00:00:00Z"}),
    );
    let release = json!({
        "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationRelease",
        "metadata": {"name": YAML_RELEASE,
            "labels": {
                "application.kubesphere.io/app-id": YAML_APP,
                "application.kubesphere.io/appversion-id": yaml_version,
                "application.kubesphere.io/app-type": "yaml",
                "kubesphere.io/cluster": "host",
                "kubesphere.io/namespace": "web",
                "kubesphere.io/workspace": "team-a"},
            "annotations": {"kubesphere.io/creator": "admin"}},
        "spec": {"appID": YAML_APP, "appVersionID": yaml_version,
            "values": b64(PLACED.as_bytes()), "appType": "yaml"},
    });
    ks.wait_for(
        Duration::from_secs(60),
        "the webhook admits the YAML release",
        || {
            ks.kubectl_stdin(&["create", "-f", "-"], release.to_string().as_bytes())
                .status
                .success()
                .then_some(())
        },
    );
    let before = live(&ks);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acme");
    let d = dir.to_str().unwrap();
    let out = pitrix(&ks, &["export", d, "--name", "acme", "--unpack"]);
    let printed = text(&out);
    assert!(out.status.success(), "export --unpack:\n{printed}");
    let files = tree(&dir);
    let paths: Vec<String> = files.keys().map(|p| p.display().to_string()).collect();
    // 1.0.0: a chart directory holding the package's files.
    let (_, stored) =
        pitrix::chart::read_archive(&packages["1.0.0"], &pitrix::chart::Limits::default()).unwrap();
    assert!(!stored.files.is_empty());
    for (path, bytes) in &stored.files {
        assert_eq!(
            files.get(Path::new(&format!("apps/{APP}/1.0.0/{path}"))),
            Some(bytes),
            "{path} of 1.0.0 unpacked: {paths:?}"
        );
    }
    assert!(!files.contains_key(Path::new(&format!("apps/{APP}/1.0.0.tgz"))));
    // 0.9.0: kept as stored, with the reason.
    assert_eq!(
        files[Path::new(&format!("apps/{APP}/0.9.0.tgz"))],
        packages["0.9.0"]
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with(&format!("apps/{APP}/0.9.0/")))
    );
    assert!(
        printed.contains(&format!(
            "ApplicationVersion/{APP}-0.9.0: --unpack: kept as the stored 0.9.0.tgz: it holds .helmignore"
        )),
        "{printed}"
    );
    // The YAML app: its manifests byte for byte, its release without values.
    assert_eq!(
        files[Path::new(&format!("apps/{YAML_APP}/1.0.0/manifests.yaml"))],
        MANIFESTS.as_bytes()
    );
    let app: Value =
        serde_yaml::from_slice(&files[Path::new(&format!("apps/{YAML_APP}/app.yaml"))]).unwrap();
    assert_eq!(app["type"], "yaml");
    let rel: Value = serde_yaml::from_slice(
        &files[Path::new(&format!("releases/host/web/{YAML_RELEASE}.yaml"))],
    )
    .unwrap();
    assert_eq!(rel["app"], YAML_APP);
    assert!(rel.get("values").is_none(), "{rel:?}");

    // Compiled: the .tgz and the manifests byte for byte, the unpacked chart with the same
    // files (apply keeps the stored bytes); the YAML release's values as live.
    let out = pitrix(&ks, &["validate", d]);
    assert!(out.status.success(), "validate:\n{}", text(&out));
    let compiled = match pitrix::pipeline::build(&dir) {
        Ok((compiled, _)) => compiled,
        Err(diags) => panic!("the export is valid:\n{}", common::dump(&diags)),
    };
    let package_of = |id: &str| {
        let object = compiled
            .objects
            .iter()
            .find(|o| o.kind() == "ConfigMap" && o.name() == id)
            .unwrap_or_else(|| panic!("no ConfigMap {id}"))
            .to_json();
        base64::engine::general_purpose::STANDARD
            .decode(object["binaryData"]["BinaryKey"].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(package_of(&format!("{APP}-0.9.0")), packages["0.9.0"]);
    assert!(pitrix::chart::same_chart(
        &package_of(&format!("{APP}-1.0.0")),
        &packages["1.0.0"]
    ));
    assert_eq!(package_of(&yaml_version), MANIFESTS.as_bytes());
    let compiled_release = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "ApplicationRelease" && o.name() == YAML_RELEASE)
        .unwrap()
        .to_json();
    let key = format!("ApplicationRelease/{YAML_RELEASE}");
    assert_eq!(compiled_release["spec"], before[&key]["spec"]);

    // `pitrix diff`: nothing but ownership.
    let out = pitrix(&ks, &["diff", d, "--format", "json"]);
    let diff: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diff JSON: {e}\n{}", text(&out)));
    assert_eq!(beyond_ownership(&diff), Vec::<String>::new(), "{diff:#}");
}
