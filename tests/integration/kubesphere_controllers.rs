//! The KubeSphere tier: pitrix's example catalog against KubeSphere's own controllers and
//! admission webhook (tests/kubesphere: `ks-controller-manager` v4.1.3 built from source, beside
//! a real kube-apiserver 1.20). Applied by `pitrix apply` and by `pitrix reconcile`, KubeSphere
//! must reconcile it as it would a console user's work — finalizers on versions and categories,
//! category totals, repositories synced from the loopback Helm repositories to exactly the IDs
//! pitrix computes, releases `creating → created` with an executor Job each, the YAML app applied
//! in-process — with no error line about our objects in its log. The standalone target's
//! executor Jobs are compared field by field with the Jobs KubeSphere made for the same
//! releases.
//!
//! What the example catalog needs that a 1.20 API server without nodes cannot give, and what the
//! tests change for it (in a copy):
//! - whoami (a YAML app) without its PodDisruptionBudget (policy/v1 is 1.21+) and Service (1.20's
//!   server-side apply refuses it: `associative list … omits key field "protocol"`);
//! - the repositories point at loopback Helm repositories (no internet): `bitnami` serves
//!   `redis 19.6.4` (the chart of the `session-cache` release), `acme-internal` requires the
//!   basic-auth credentials the catalog names.
//!
//! Prerequisites a KubeSphere installation has and the tests create: WorkspaceTemplates
//! `acme-data` and `acme-platform`, namespaces `web` and `data` labelled with their releases'
//! workspace, the member Cluster `edge-eu`, and RBAC letting `bob`, the creator of the YAML
//! release that KubeSphere applies as him, write in `web`.
//!
//! Each test starts its own API server and KubeSphere (the App Store's kinds are
//! cluster-scoped, so the two flows cannot share one); KubeSphere's fixed ports make them run
//! one at a time, across test binaries too (tests/kubesphere's lock).

use crate::cluster;
use crate::common;
use crate::kubesphere;
use crate::reconcile_support;
use crate::repo_server;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kubesphere::{APPS, CATEGORIES, KubeSphere, RELEASES, REPOS, VERSIONS};
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(90);
const CATALOG: &str = "acme-store";
const CHARTS_USER: &str = "acme-ci";
const CHARTS_PASSWORD: &str = "s3cret-for-tests";

/// Releases of the example catalog: (name, cluster, namespace, app type).
const RELEASES_OF_EXAMPLE: [(&str, &str, &str, &str); 6] = [
    ("storefront", "host", "web", "helm"),
    ("whoami-debug", "host", "web", "yaml"),
    ("orders-db", "host", "data", "helm"),
    ("session-cache", "host", "data", "helm"),
    ("storefront-eu", "edge-eu", "web", "helm"),
    ("web-metrics", "edge-eu", "web", "helm"),
];

/// The release of a synced-repo chart (`bitnami/redis`), which the standalone target cannot
/// install (it holds no chart for it): KubeSphere's Job for it has no pitrix counterpart.
const SYNCED_RELEASE: &str = "session-cache";

fn helm_releases() -> impl Iterator<Item = &'static str> {
    RELEASES_OF_EXAMPLE
        .iter()
        .filter(|r| r.3 == "helm")
        .map(|r| r.0)
}

/// A step of a long test, timed on stderr.
fn step(started: Instant, what: &str) {
    eprintln!("[{:6.1}s] {what}", started.elapsed().as_secs_f64());
}

// --- the catalog and its loopback repositories -------------------------------------------------

/// The example catalog, adapted to this environment (module docs), with the two Helm
/// repositories it names served on loopback.
struct Store {
    tmp: tempfile::TempDir,
    catalog: PathBuf,
    /// `bitnami`: redis 19.6.4, packaged and indexed by real Helm.
    _bitnami: repo_server::Server,
    /// `acme-internal`: an empty index behind basic auth.
    _internal: repo_server::Server,
}

impl Store {
    fn new() -> Store {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = tmp.path().join("catalog");
        common::copy_tree(&common::example_catalog(), &catalog);
        for gone in [
            "apps/whoami/1.0.0/service.yaml",
            "apps/whoami/1.1.0/service.yaml",
            "apps/whoami/1.1.0/poddisruptionbudget.yaml",
        ] {
            std::fs::remove_file(catalog.join(gone)).unwrap();
        }

        let bitnami_dir = tmp.path().join("bitnami");
        package_chart(&bitnami_dir.join("charts"), "redis", "19.6.4");
        let bitnami = repo_server::Server::serve(&bitnami_dir);
        let internal_dir = tmp.path().join("internal");
        std::fs::create_dir_all(internal_dir.join("charts")).unwrap();
        let indexed =
            common::helm_oracle(&["index", internal_dir.join("charts").to_str().unwrap()]);
        assert_eq!(indexed["ok"], true, "{indexed}");
        let internal = repo_server::Server::serve(&internal_dir);
        internal.require_auth(CHARTS_USER, CHARTS_PASSWORD);

        replace(
            &catalog.join("repos/bitnami.yaml"),
            "https://charts.bitnami.com/bitnami",
            &bitnami.url("/charts"),
        );
        replace(
            &catalog.join("repos/acme-internal.yaml"),
            "https://charts.acme.example/internal",
            &internal.url("/charts"),
        );
        Store {
            tmp,
            catalog,
            _bitnami: bitnami,
            _internal: internal,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.catalog.join(rel)
    }

    /// A copy of the catalog with `target = "standalone"`, compiled into an output directory.
    fn compile_standalone(&self) -> PathBuf {
        let copy = self.tmp.path().join("standalone");
        let _ = std::fs::remove_dir_all(&copy);
        common::copy_tree(&self.catalog, &copy);
        replace(
            &copy.join("pitrix.toml"),
            r#"target = "kubesphere""#,
            r#"target = "standalone""#,
        );
        // The standalone target installs only charts the catalog holds, not synced ones.
        std::fs::remove_file(copy.join(format!("releases/host/data/{SYNCED_RELEASE}.yaml")))
            .unwrap();
        let out = self.tmp.path().join("standalone-out");
        let run = Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .arg("compile")
            .arg(&copy)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "pitrix compile (standalone) failed:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        out
    }
}

fn replace(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// Packages a small chart `name` `version` with real Helm into `charts`, and indexes it.
fn package_chart(charts: &Path, name: &str, version: &str) {
    let src = tempfile::tempdir().unwrap();
    let chart = src.path().join(name);
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"7.2.5\"\n\
             description: A stand-in for Bitnami's {name} chart.\nhome: https://example.test/{name}\n"
        ),
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "architecture: replication\n").unwrap();
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  architecture: {{ .Values.architecture | quote }}\n",
    )
    .unwrap();
    std::fs::create_dir_all(charts).unwrap();
    let packaged =
        common::helm_oracle(&["package", chart.to_str().unwrap(), charts.to_str().unwrap()]);
    assert_eq!(packaged["ok"], true, "{packaged}");
    let indexed = common::helm_oracle(&["index", charts.to_str().unwrap()]);
    assert_eq!(indexed["ok"], true, "{indexed}");
}

// --- prerequisites ------------------------------------------------------------------------------

/// A kubeconfig whose contexts name the catalog's clusters: `host` (current) and
/// `edge-eu-admin`, both this API server (the member Cluster object stands in the same way).
fn kubeconfig_with_member(ks: &KubeSphere, path: &Path) -> PathBuf {
    let text = std::fs::read_to_string(&ks.kubeconfig).unwrap();
    let mut config: Value = serde_yaml::from_str(&text).unwrap();
    let context = config["contexts"][0]["context"].clone();
    config["contexts"] = json!([
        {"name": "host", "context": context},
        {"name": "edge-eu-admin", "context": context},
    ]);
    config["current-context"] = "host".into();
    std::fs::write(path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path.to_path_buf()
}

// --- pitrix -------------------------------------------------------------------------------------

/// `pitrix apply CATALOG --kubeconfig KC --output json`, with the repository credentials in the
/// environment; panics unless it succeeds.
fn apply(kubeconfig: &Path, catalog: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("apply")
        .arg(catalog)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--output", "json"])
        .args(extra)
        .env("ACME_CHARTS_USERNAME", CHARTS_USER)
        .env("ACME_CHARTS_PASSWORD", CHARTS_PASSWORD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pitrix apply failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("apply's JSON: {e}\n{stdout}"))
}

/// (outcome, kind/name) of every result of an apply report, sorted.
fn outcomes(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}/{}",
                    r["object"]["kind"].as_str().unwrap_or_default(),
                    r["object"]["name"].as_str().unwrap_or_default()
                ),
            )
        })
        .collect();
    v.sort();
    v
}

// --- what KubeSphere did ------------------------------------------------------------------------

fn get(ks: &KubeSphere, resource: &str, name: &str) -> Value {
    ks.get_json(resource, name)
        .unwrap_or_else(|| panic!("{resource} {name} does not exist"))
}

fn state(v: &Value) -> &str {
    v.pointer("/status/state")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn has_finalizer(v: &Value, finalizer: &str) -> bool {
    v["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// The objects of kind `resource` that carry the catalog's label: name -> object.
fn ours(ks: &KubeSphere, resource: &str) -> BTreeMap<String, Value> {
    ks.list(resource, None, &format!("pitrix.io/catalog={CATALOG}"))
        .into_iter()
        .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), o))
        .collect()
}

/// resourceVersion of every object pitrix manages (the catalog's label), by kind/namespace/name.
fn resource_versions(ks: &KubeSphere) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for resource in [
        RELEASES,
        VERSIONS,
        APPS,
        CATEGORIES,
        REPOS,
        "configmaps",
        "namespaces",
    ] {
        for o in ks.list(resource, None, &format!("pitrix.io/catalog={CATALOG}")) {
            let m = &o["metadata"];
            all.insert(
                format!(
                    "{resource}/{}/{}",
                    m["namespace"].as_str().unwrap_or(""),
                    m["name"].as_str().unwrap()
                ),
                m["resourceVersion"].as_str().unwrap().to_string(),
            );
        }
    }
    all
}

/// Every name KubeSphere could mention in an error about our objects: releases, apps, versions,
/// categories and repos of the catalog, and what repo syncs made from them.
fn our_names(ks: &KubeSphere) -> Vec<String> {
    let mut names = BTreeSet::new();
    for resource in [RELEASES, VERSIONS, APPS, CATEGORIES, REPOS] {
        names.extend(ours(ks, resource).into_keys());
    }
    for resource in [APPS, VERSIONS] {
        for o in ks.list(
            resource,
            None,
            "application.kubesphere.io/repo-name in (bitnami,acme-internal)",
        ) {
            names.insert(o["metadata"]["name"].as_str().unwrap().to_string());
        }
    }
    names.into_iter().collect()
}

/// Waits until KubeSphere has reconciled everything the catalog holds: versions and categories
/// carry its finalizers, categories count their apps, repos synced, every release `created`
/// (Helm: its executor Job exists) or `active` (YAML, applied in-process).
fn wait_converged(ks: &KubeSphere, what: &str) {
    ks.wait_for(CONVERGE, what, || {
        let versions = ours(ks, VERSIONS);
        let categories = ours(ks, CATEGORIES);
        let repos = ours(ks, REPOS);
        let releases = ours(ks, RELEASES);
        let mut pending = Vec::new();
        if versions.len() < 9 || categories.len() != 3 || repos.len() != 2 {
            pending.push(format!(
                "{} versions, {} categories, {} repos",
                versions.len(),
                categories.len(),
                repos.len()
            ));
        }
        for (name, v) in &versions {
            if !has_finalizer(v, "application.kubesphere.io/cleanup") {
                pending.push(format!("version {name}: no finalizer"));
            }
        }
        let totals = [("web", 2), ("databases", 1), ("observability", 1)];
        for (name, total) in totals {
            let c = categories.get(name)?;
            if !has_finalizer(c, "categories.application.kubesphere.io")
                || c.pointer("/status/total") != Some(&json!(total))
            {
                pending.push(format!("category {name}: {}", c["status"]));
            }
        }
        for (name, r) in &repos {
            if state(r) != "successful" {
                pending.push(format!("repo {name}: {:?}", state(r)));
            }
        }
        for (name, _, _, kind) in RELEASES_OF_EXAMPLE {
            let Some(r) = releases.get(name) else {
                pending.push(format!("release {name}: missing"));
                continue;
            };
            let want = if kind == "helm" { "created" } else { "active" };
            let job = r.pointer("/status/installJobName").and_then(Value::as_str);
            if state(r) != want
                || !has_finalizer(r, "helmrelease.application.kubesphere.io")
                || (kind == "helm" && job.is_none_or(str::is_empty))
            {
                pending.push(format!("release {name}: {}", r["status"]));
            }
        }
        if pending.is_empty() {
            Some(())
        } else {
            eprintln!("  waiting: {}", pending.join("; "));
            None
        }
    });
}

/// The Job (and its ConfigMap) KubeSphere made for release `name` last (`status.installJobName`).
fn current_job(ks: &KubeSphere, release: &str) -> (Value, Value) {
    let r = get(ks, RELEASES, release);
    let job = r["status"]["installJobName"].as_str().unwrap();
    let ns = r["metadata"]["labels"]["kubesphere.io/namespace"]
        .as_str()
        .unwrap();
    let get_ns = |kind: &str| -> Value {
        serde_json::from_str(&ks.kubectl_ok(&["get", kind, job, "-n", ns, "-o", "json"])).unwrap()
    };
    (get_ns("job"), get_ns("configmap"))
}

/// The state sequence of every release, as a `kubectl get --watch` sees it.
struct StateWatch {
    child: Child,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl StateWatch {
    fn start(ks: &KubeSphere) -> StateWatch {
        let mut child = Command::new(cluster::kubectl_program())
            .arg("--kubeconfig")
            .arg(&ks.kubeconfig)
            .args([
                "get",
                RELEASES,
                "--watch",
                "-o",
                r#"jsonpath={.metadata.name}{"="}{.status.state}{"\n"}"#,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((name, state)) = line.split_once('=') {
                    sink.lock()
                        .unwrap()
                        .push((name.to_string(), state.to_string()));
                }
            }
        });
        StateWatch { child, seen }
    }

    /// The distinct successive states release `name` went through.
    fn states(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (n, s) in self.seen.lock().unwrap().iter() {
            if n == name && v.last() != Some(s) {
                v.push(s.clone());
            }
        }
        v
    }
}

impl Drop for StateWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- comparing executor Jobs --------------------------------------------------------------------

/// A Job as the API server stores it, without what the server or the controller that made it
/// set (identity, timestamps, status, the selector and labels the Job registry generates) and
/// with its own name (random suffix for KubeSphere, spec hash for pitrix) replaced by `<job>`.
fn normalize_job(job: &Value) -> Value {
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    let mut j = job.clone();
    let m = j["metadata"].as_object_mut().unwrap();
    for key in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "generation",
        "selfLink",
    ] {
        m.remove(key);
    }
    j.as_object_mut().unwrap().remove("status");
    let spec = j["spec"].as_object_mut().unwrap();
    spec.remove("selector");
    if let Some(labels) = j
        .pointer_mut("/spec/template/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("controller-uid");
        labels.remove("job-name");
    }
    if j.pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .is_some_and(|l| l.is_empty())
    {
        j["spec"]["template"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
    }
    let text = j.to_string().replace(&name, "<job>");
    serde_json::from_str(&text).unwrap()
}

/// `job` as the API server would store it in `namespace` (defaults applied): a server-side dry
/// run of its creation.
fn as_stored(ks: &KubeSphere, job: &Value) -> Value {
    let out = ks.kubectl_stdin_ok(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        job.to_string().as_bytes(),
    );
    serde_json::from_str(&out).unwrap()
}

/// Leaf values of `v` by JSON pointer.
fn leaves(v: &Value, at: String, out: &mut BTreeMap<String, Value>) {
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
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{at}/{i}"), out);
            }
        }
        _ => {
            out.insert(at, v.clone());
        }
    }
}

/// Field-by-field differences: (pointer, KubeSphere's value, pitrix's value); `null` = absent.
fn differences(kubesphere: &Value, pitrix: &Value) -> Vec<(String, Value, Value)> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(kubesphere, String::new(), &mut a);
    leaves(pitrix, String::new(), &mut b);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            (
                k.clone(),
                a.get(k).cloned().unwrap_or(Value::Null),
                b.get(k).cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// The differences between KubeSphere's executor Jobs and pitrix's standalone ones, the same
/// for every Helm release (`<release>` stands for its name). Anything else fails the test.
fn known_job_differences(release: &str) -> Vec<(String, Value, Value)> {
    let _ = release;
    vec![
        // pitrix's ownership marks.
        (
            "/metadata/annotations/pitrix.io~1cluster".into(),
            Value::Null,
            json!("<cluster>"),
        ),
        (
            "/metadata/labels/app.kubernetes.io~1managed-by".into(),
            Value::Null,
            json!("pitrix"),
        ),
        (
            "/metadata/labels/pitrix.io~1catalog".into(),
            Value::Null,
            json!(CATALOG),
        ),
        // KubeSphere mounts the ConfigMap that holds the kubeconfig (kube.config); pitrix
        // projects the ConfigMap and the kubeconfig Secret the user provides.
        (
            "/spec/template/spec/volumes/0/configMap/defaultMode".into(),
            json!(493),
            Value::Null,
        ),
        (
            "/spec/template/spec/volumes/0/configMap/name".into(),
            json!("<job>"),
            Value::Null,
        ),
        (
            "/spec/template/spec/volumes/0/projected/defaultMode".into(),
            Value::Null,
            json!(493),
        ),
        (
            "/spec/template/spec/volumes/0/projected/sources/0/configMap/name".into(),
            Value::Null,
            json!("<job>"),
        ),
        (
            "/spec/template/spec/volumes/0/projected/sources/1/secret/items/0/key".into(),
            Value::Null,
            json!("config"),
        ),
        (
            "/spec/template/spec/volumes/0/projected/sources/1/secret/items/0/path".into(),
            Value::Null,
            json!("kube.config"),
        ),
        (
            "/spec/template/spec/volumes/0/projected/sources/1/secret/name".into(),
            Value::Null,
            json!("pitrix-executor-kubeconfig"),
        ),
    ]
}

/// pitrix's standalone Job and ConfigMap for `release` in the compiled output `out`.
fn standalone_objects(out: &Path, cluster: &str, namespace: &str, release: &str) -> (Value, Value) {
    let base = if cluster == "host" {
        out.join("objects")
    } else {
        out.join("clusters").join(cluster).join("objects")
    };
    let find = |plural: &str| -> Value {
        let dir = base.join(plural).join(namespace);
        let prefix = format!("helm-install-{release}-");
        let file = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .find(|p| {
                let f = p.file_name().unwrap().to_str().unwrap();
                f.starts_with(&prefix) && f.len() == prefix.len() + 6 + ".yaml".len()
            })
            .unwrap_or_else(|| panic!("no {plural} {prefix}* in {}", dir.display()));
        serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
    };
    (find("jobs"), find("configmaps"))
}

/// binaryData (or data) of a ConfigMap, decoded: key -> bytes.
fn config_map_files(cm: &Value) -> BTreeMap<String, Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut files = BTreeMap::new();
    if let Some(data) = cm["binaryData"].as_object() {
        for (k, v) in data {
            files.insert(k.clone(), b64.decode(v.as_str().unwrap()).unwrap());
        }
    }
    if let Some(data) = cm["data"].as_object() {
        for (k, v) in data {
            files.insert(k.clone(), v.as_str().unwrap().as_bytes().to_vec());
        }
    }
    files
}

/// Compares, for every Helm release, KubeSphere's current executor Job and ConfigMap with
/// pitrix's standalone ones: the Jobs differ exactly by [`known_job_differences`]; the chart and
/// values KubeSphere stored are byte for byte pitrix's; KubeSphere's ConfigMap also holds the
/// kubeconfig and an unused post-renderer. The YAML app has no Job at KubeSphere.
fn compare_executor_jobs(ks: &KubeSphere, out: &Path) {
    for (release, cluster, namespace, kind) in RELEASES_OF_EXAMPLE {
        if release == SYNCED_RELEASE {
            continue;
        }
        if kind == "yaml" {
            assert!(
                ks.executor_jobs(release).is_empty(),
                "KubeSphere applies YAML apps itself, yet made a Job for {release}"
            );
            // pitrix's standalone target runs them in a Job (kubectl apply): that is the
            // difference, by design (README "Standalone target").
            continue;
        }
        let (ks_job, ks_cm) = current_job(ks, release);
        let (px_job, px_cm) = standalone_objects(out, cluster, namespace, release);
        let ks_name = ks_job["metadata"]["name"].as_str().unwrap();
        let px_name = px_job["metadata"]["name"].as_str().unwrap();
        for name in [ks_name, px_name] {
            let suffix = name
                .strip_prefix(&format!("helm-install-{release}-"))
                .unwrap_or_else(|| panic!("{name}: not helm-install-{release}-*"));
            assert!(
                suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_alphanumeric()),
                "{name}"
            );
        }
        let found = differences(
            &normalize_job(&ks_job),
            &normalize_job(&as_stored(ks, &px_job)),
        );
        let expected: Vec<(String, Value, Value)> = known_job_differences(release)
            .into_iter()
            .map(|(p, a, b)| {
                let b = if b == json!("<cluster>") {
                    json!(cluster)
                } else {
                    b
                };
                (p, a, b)
            })
            .collect();
        let show = |d: &[(String, Value, Value)]| {
            d.iter()
                .map(|(p, a, b)| format!("  {p}: KubeSphere {a} | pitrix {b}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        eprintln!(
            "executor Job of {release}: KubeSphere {ks_name} vs pitrix {px_name}:\n{}",
            show(&found)
        );
        assert_eq!(
            found,
            expected,
            "executor Job of {release}: the differences changed.\nfound:\n{}\nexpected:\n{}",
            show(&found),
            show(&expected)
        );

        let ks_files = config_map_files(&ks_cm);
        let px_files = config_map_files(&px_cm);
        for key in ["values.yaml", &format!("{release}.tgz"), "ca-helm.crt"] {
            assert_eq!(
                ks_files.get(key),
                px_files.get(key),
                "{release}: ConfigMap key {key} differs"
            );
        }
        let ks_keys: BTreeSet<&str> = ks_files.keys().map(String::as_str).collect();
        let px_keys: BTreeSet<&str> = px_files.keys().map(String::as_str).collect();
        let only_ks: Vec<&str> = ks_keys.difference(&px_keys).copied().collect();
        assert_eq!(
            only_ks,
            ["helm-post-render.sh", "kube.config", "kustomization.yaml"],
            "{release}: KubeSphere's ConfigMap keys beyond pitrix's"
        );
        assert!(
            px_keys.is_subset(&ks_keys),
            "{release}: pitrix's ConfigMap has keys KubeSphere's lacks: {px_keys:?} vs {ks_keys:?}"
        );
        // The same labels as their Jobs (pitrix's ownership marks aside).
        let labels = |cm: &Value| {
            let mut l = normalize_job(&json!({"metadata": cm["metadata"], "spec": {}}))["metadata"]
                ["labels"]
                .clone();
            let l = l.as_object_mut().unwrap();
            l.remove("app.kubernetes.io/managed-by");
            l.remove("pitrix.io/catalog");
            Value::Object(l.clone())
        };
        assert_eq!(
            labels(&ks_cm),
            labels(&px_cm),
            "{release}: ConfigMap labels"
        );
    }
}

/// An optimistic-concurrency conflict KubeSphere retried: its controllers `Update` whole objects
/// from their cache, so a write of ours between its read and its update (the review state
/// written just after a version is created, as a console user's review would be) fails its
/// update once. Not an error about the object: the retry succeeds (the waits above saw the
/// finalizers it was adding).
const RETRIED_CONFLICT: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// KubeSphere's log has no error line about our objects, but for retried conflicts (printed).
fn assert_log_clean(ks: &KubeSphere) {
    let names = our_names(ks);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (conflicts, errors): (Vec<String>, Vec<String>) = ks
        .errors_about(&names)
        .into_iter()
        .partition(|l| l.contains(RETRIED_CONFLICT));
    assert!(
        errors.is_empty(),
        "KubeSphere logged {} error line(s) about our objects ({}):\n{}",
        errors.len(),
        ks.log.display(),
        errors.join("\n")
    );
    if !conflicts.is_empty() {
        eprintln!(
            "KubeSphere retried {} conflict(s) on our objects:\n{}",
            conflicts.len(),
            conflicts.join("\n")
        );
    }
    let others: Vec<String> = ks
        .error_lines()
        .into_iter()
        .filter(|l| !names.iter().any(|n| l.contains(n)))
        .collect();
    if !others.is_empty() {
        eprintln!(
            "KubeSphere's other error lines ({}):\n{}",
            others.len(),
            others.join("\n")
        );
    }
}

// --- the tests ----------------------------------------------------------------------------------

#[test]
fn pitrix_apply_the_example_catalog_and_kubesphere_reconciles_it() {
    let started = Instant::now();
    let ks = KubeSphere::start();
    step(started, "KubeSphere running");
    let store = Store::new();
    ks.prepare_for_example_catalog();
    let kubeconfig = kubeconfig_with_member(&ks, &store.tmp.path().join("kubeconfig"));
    let watch = StateWatch::start(&ks);
    step(started, "prerequisites created");

    // 1. Apply. `--sync-repos`: KubeSphere syncs the repositories now, and the release of the
    //    synced chart waits for its version (KubeSphere's webhook refuses a release of a
    //    version that does not exist yet).
    apply(&kubeconfig, &store.catalog, &["--sync-repos"]);
    step(started, "applied");
    let version = get(&ks, VERSIONS, "bitnami-redis-19.6.4");
    assert_eq!(state(&version), "active", "{version}");
    assert_eq!(
        version["metadata"]["labels"]["application.kubesphere.io/app-id"],
        "bitnami-redis"
    );
    assert!(ks.get_json(APPS, "bitnami-redis").is_some());
    wait_converged(&ks, "KubeSphere to reconcile the catalog");
    step(started, "KubeSphere converged");
    for (name, _, _, kind) in RELEASES_OF_EXAMPLE {
        let want: &[&str] = if kind == "helm" {
            &["creating", "created"]
        } else {
            &["creating", "created", "active"]
        };
        let states = watch.states(name);
        let states: Vec<&str> = states
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(states, want, "states of release {name}");
    }
    for name in helm_releases() {
        assert_eq!(ks.executor_jobs(name).len(), 1, "{name}: one executor Job");
    }
    // The YAML app: applied in-process as its creator, with KubeSphere's field manager.
    let deployment: Value = serde_json::from_str(&ks.kubectl_ok(&[
        "get",
        "deployment",
        "whoami",
        "-n",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ]))
    .unwrap();
    let managers: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["v1.FieldManager"], "{deployment}");

    // 3. Re-applying changes nothing.
    let before = resource_versions(&ks);
    let report = apply(&kubeconfig, &store.catalog, &[]);
    let changed: Vec<(String, String)> = outcomes(&report)
        .into_iter()
        .filter(|(o, _)| o != "unchanged")
        .collect();
    assert!(changed.is_empty(), "a re-apply changed: {changed:?}");
    assert_eq!(resource_versions(&ks), before, "a re-apply wrote");
    step(started, "re-apply was a no-op");

    // 4. The standalone target's Jobs against KubeSphere's.
    let out = store.compile_standalone();
    compare_executor_jobs(&ks, &out);
    step(started, "executor Jobs compared");

    // 5. An upgrade: new values -> KubeSphere upgrades with a new Job.
    let (old_job, _) = current_job(&ks, "storefront");
    replace(
        &store.path("releases/host/web/storefront.yaml"),
        "replicaCount: 3",
        "replicaCount: 4",
    );
    // 6. And a version bump on the member cluster.
    let (old_eu_job, _) = current_job(&ks, "storefront-eu");
    replace(
        &store.path("releases/edge-eu/web/storefront-eu.yaml"),
        "version: 1.0.0",
        "version: 1.1.0",
    );
    let report = apply(&kubeconfig, &store.catalog, &[]);
    let changed: Vec<(String, String)> = outcomes(&report)
        .into_iter()
        .filter(|(o, _)| o != "unchanged")
        .collect();
    assert_eq!(
        changed,
        [
            (
                "updated".to_string(),
                "ApplicationRelease/storefront".to_string()
            ),
            (
                "updated".to_string(),
                "ApplicationRelease/storefront-eu".to_string()
            ),
        ],
        "{report}"
    );
    ks.wait_for(
        CONVERGE,
        "new Jobs for storefront and storefront-eu",
        || {
            let r = get(&ks, RELEASES, "storefront");
            let eu = get(&ks, RELEASES, "storefront-eu");
            let job = |r: &Value| {
                r["status"]["installJobName"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            };
            (state(&r) == "created"
                && state(&eu) == "created"
                && job(&r) != old_job["metadata"]["name"].as_str().unwrap()
                && job(&eu) != old_eu_job["metadata"]["name"].as_str().unwrap())
            .then_some(())
        },
    );
    step(started, "upgrades reconciled");
    for name in ["storefront", "storefront-eu"] {
        let states = watch.states(name);
        assert!(
            states.ends_with(&["created".into(), "upgrading".into(), "created".into()]),
            "states of {name}: {states:?}"
        );
        assert_eq!(ks.executor_jobs(name).len(), 2, "{name}: a new Job");
    }
    let eu = get(&ks, RELEASES, "storefront-eu");
    assert_eq!(
        eu["metadata"]["labels"]["application.kubesphere.io/appversion-id"],
        "nginx-1.1.0"
    );
    // The new Jobs carry what pitrix compiles for the changed releases.
    let out = store.compile_standalone();
    compare_executor_jobs(&ks, &out);
    step(started, "executor Jobs compared after the upgrades");

    // 7. Nothing KubeSphere logged is an error about our objects.
    assert_log_clean(&ks);
    step(started, "done");
}

#[test]
fn pitrix_reconcile_converges_the_example_catalog_the_same_way() {
    let started = Instant::now();
    let ks = KubeSphere::start();
    step(started, "KubeSphere running");
    let store = Store::new();
    ks.prepare_for_example_catalog();
    let kubeconfig = kubeconfig_with_member(&ks, &store.tmp.path().join("kubeconfig"));
    let watch = StateWatch::start(&ks);
    reconcile_support::git(&store.catalog, &["init", "-q"]);
    let first = commit(&store.catalog, "the example catalog");
    step(started, "prerequisites created, catalog committed");

    // One commit with everything: the release of the synced chart is refused by KubeSphere's
    // webhook until KubeSphere has synced the repository pitrix created; reconcile retries at
    // the next interval.
    let r = reconcile_support::Reconciler::start_with_env(
        "kubesphere-tier",
        &kubeconfig,
        store.catalog.to_str().unwrap(),
        &[reconcile_support::FAST_LEASE, &["--resync", "1s"]].concat(),
        &[
            ("ACME_CHARTS_USERNAME", CHARTS_USER),
            ("ACME_CHARTS_PASSWORD", CHARTS_PASSWORD),
        ],
    );
    wait_synced(&ks, &first);
    step(started, "reconcile synced");
    wait_converged(&ks, "KubeSphere to reconcile what pitrix reconcile applied");
    step(started, "KubeSphere converged");
    for name in helm_releases() {
        assert_eq!(ks.executor_jobs(name).len(), 1, "{name}: one executor Job");
        let states = watch.states(name);
        assert!(
            states.ends_with(&["creating".into(), "created".into()]),
            "states of {name}: {states:?}"
        );
    }

    // Steady: re-applies of the same revision (`--resync 1s`) write nothing, and KubeSphere's
    // own writes (finalizers, status) are not drift to undo.
    let before = resource_versions(&ks);
    let syncs = sync_count(&r);
    ks.wait_for(CONVERGE, "three more syncs", || {
        (sync_count(&r) >= syncs + 3.0).then_some(())
    });
    assert_eq!(
        resource_versions(&ks),
        before,
        "syncs of an unchanged revision wrote"
    );
    step(started, "steady");

    // An upgrade, committed.
    let (old_job, _) = current_job(&ks, "storefront");
    replace(
        &store.path("releases/host/web/storefront.yaml"),
        "replicaCount: 3",
        "replicaCount: 4",
    );
    let second = commit(&store.catalog, "storefront: 4 replicas");
    wait_synced(&ks, &second);
    ks.wait_for(CONVERGE, "a new Job for storefront", || {
        let r = get(&ks, RELEASES, "storefront");
        (state(&r) == "created" && r["status"]["installJobName"] != old_job["metadata"]["name"])
            .then_some(())
    });
    let states = watch.states("storefront");
    assert!(
        states.ends_with(&["created".into(), "upgrading".into(), "created".into()]),
        "states of storefront: {states:?}"
    );
    assert_eq!(ks.executor_jobs("storefront").len(), 2);
    step(started, "upgrade reconciled");

    assert_log_clean(&ks);
    drop(r);
    step(started, "done");
}

/// Commits everything in `dir`; returns the commit id.
fn commit(dir: &Path, message: &str) -> String {
    reconcile_support::git(dir, &["add", "-A"]);
    reconcile_support::git(dir, &["commit", "-q", "-m", message]);
    reconcile_support::git(dir, &["rev-parse", "HEAD"])
}

/// Waits until the inventory says the catalog's last sync applied `revision`.
fn wait_synced(ks: &KubeSphere, revision: &str) {
    ks.wait_for(CONVERGE, &format!("a sync of {revision}"), || {
        let cm = ks.kubectl(&[
            "get",
            "configmap",
            &format!("pitrix-inventory-{CATALOG}"),
            "-n",
            "pitrix-system",
            "-o",
            "json",
        ]);
        if !cm.status.success() {
            return None;
        }
        let cm: Value = serde_json::from_slice(&cm.stdout).unwrap();
        let a = &cm["metadata"]["annotations"];
        (a["pitrix.io/last-sync-revision"] == revision
            && a["pitrix.io/last-sync-result"] == "Synced")
            .then_some(())
    });
}

/// How many syncs the reconciler has finished (its duration histogram's count).
fn sync_count(r: &reconcile_support::Reconciler) -> f64 {
    r.metric("pitrix_sync_duration_seconds_count")
        .unwrap_or(0.0)
}

/// `pitrix apply`, whatever its exit: (exit 0, report).
fn try_apply(kubeconfig: &Path, catalog: &Path, extra: &[&str]) -> (bool, Value) {
    let (code, report) = common::apply_json(kubeconfig, catalog, extra);
    (code == 0, report)
}

/// Marks every executor Job of `release` succeeded (no node runs them here), as the Job
/// controller would once Helm is done.
fn complete_jobs(ks: &KubeSphere, release: &str) -> usize {
    let jobs = ks.executor_jobs(release);
    for job in &jobs {
        if job.pointer("/status/succeeded").and_then(Value::as_i64) != Some(1) {
            ks.complete_job(
                job["metadata"]["namespace"].as_str().unwrap(),
                job["metadata"]["name"].as_str().unwrap(),
            );
        }
    }
    jobs.len()
}

#[test]
fn missing_prerequisites_are_refused_and_a_pruned_release_is_followed_until_uninstalled() {
    let ks = KubeSphere::start();
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog");
    pitrix::scaffold::new_catalog(&catalog).unwrap();
    std::fs::remove_dir_all(catalog.join("repos")).unwrap();
    // A repo in a workspace KubeSphere does not have (it would delete the Repo, pitrix would
    // apply it again: a loop), and the release's namespace `default` in no workspace.
    std::fs::create_dir_all(catalog.join("repos")).unwrap();
    std::fs::write(
        catalog.join("repos/charts.yaml"),
        "url: http://127.0.0.1:1/charts\nsyncPeriod: 0\nworkspace: team-x\n",
    )
    .unwrap();

    let (ok, report) = try_apply(&ks.kubeconfig, &catalog, &[]);
    assert!(!ok, "{report:#}");
    let why = report["refused"].as_str().expect("refused");
    assert!(
        why.contains("workspace `team-x` (of Repo/charts) has no WorkspaceTemplate"),
        "{why}"
    );
    assert!(
        why.contains("namespace `default` of release `hello` is in no workspace"),
        "{why}"
    );
    assert!(
        ks.get_json(REPOS, "charts").is_none(),
        "the repo was applied"
    );
    assert!(
        ks.get_json(RELEASES, "hello").is_none(),
        "the release was applied"
    );

    // Made so, the same apply goes through and KubeSphere installs the release.
    ks.create_workspace("team-x");
    ks.kubectl_ok(&[
        "label",
        "namespace",
        "default",
        "kubesphere.io/workspace=system-workspace",
        "--overwrite",
    ]);
    let report = apply(&ks.kubeconfig, &catalog, &[]);
    assert!(
        outcomes(&report).contains(&("created".into(), "ApplicationRelease/hello".into())),
        "{report:#}"
    );
    ks.wait_for(CONVERGE, "hello created with its Job", || {
        let r = ks.get_json(RELEASES, "hello")?;
        (state(&r) == "created"
            && has_finalizer(&r, "helmrelease.application.kubesphere.io")
            && !ks.executor_jobs("hello").is_empty())
        .then_some(())
    });
    ks.wait_for(CONVERGE, "the repo kept (its workspace exists)", || {
        ks.get_json(REPOS, "charts").map(|_| ())
    });

    // Pruned: KubeSphere holds the release (its finalizer) until its Jobs are done.
    std::fs::remove_dir_all(catalog.join("releases")).unwrap();
    let report = apply(&ks.kubeconfig, &catalog, &[]);
    assert!(
        outcomes(&report).contains(&("deleting".into(), "ApplicationRelease/hello".into())),
        "{report:#}"
    );
    ks.wait_for(CONVERGE, "KubeSphere's deleting state", || {
        (state(&ks.get_json(RELEASES, "hello")?) == "deleting").then_some(())
    });
    // The Jobs finish while `apply --wait` waits: then the release is gone and pruned.
    let waiting = std::thread::spawn({
        let catalog = catalog.clone();
        let kubeconfig = ks.kubeconfig.clone();
        move || apply(&kubeconfig, &catalog, &["--wait", "--timeout", "60s"])
    });
    std::thread::sleep(Duration::from_secs(3));
    let deadline = Instant::now() + CONVERGE;
    while ks.get_json(RELEASES, "hello").is_some() {
        complete_jobs(&ks, "hello");
        if Instant::now() > deadline {
            panic!(
                "the release is still there after its Jobs completed:\n{:#}\njobs: {:#}\n{}",
                ks.get_json(RELEASES, "hello").unwrap_or_default(),
                Value::from(ks.executor_jobs("hello")),
                ks.errors_about(&["hello"]).join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let report = waiting.join().unwrap();
    assert!(
        outcomes(&report).contains(&("pruned".into(), "ApplicationRelease/hello".into())),
        "{report:#}"
    );
    ks.assert_no_errors_about(&["hello", "charts"]);
}
