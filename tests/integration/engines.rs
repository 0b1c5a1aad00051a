//! GitOps engines pointed at the compiled output (issue #18), on the KubeSphere tier: the real
//! API server with KubeSphere's own controllers and admission webhook.
//!
//! **Argo CD's sync, emulated from its documented algorithm** (sync phases and waves): the
//! output built by `kubectl kustomize` as Argo CD's repo server does, objects grouped by phase
//! (PreSync, Sync, PostSync; a plain object is in Sync) and `argocd.argoproj.io/sync-wave`,
//! applied wave by wave with server-side apply (the output's `ServerSideApply=true`) under
//! Argo CD's field manager `argocd-controller`; hooks run in their phase and wave, deleted
//! first (`BeforeHookCreation`) and created — the status Job "run" as its pod would run it (the
//! test cluster has no nodes): the pitrix binary with the Job's arguments, a kubeconfig holding
//! the Job's ServiceAccount token and nothing more, and the Job then marked complete.
//!
//! **Flux's**, emulated the same way: `flux/store` built (load restrictions off, as Flux builds),
//! server-side applied under `kustomize-controller`, the status Job waited for (run as above),
//! then `flux/releases` (`dependsOn` the store).
//!
//! The catalog is the example's without its repositories and the release of a synced-repo
//! chart (an engine does not trigger repo syncs; KubeSphere syncs on its own period), and
//! without whoami's Service and PodDisruptionBudget (a 1.20 API server, as in
//! kubesphere_controllers.rs).

use crate::cluster;
use crate::common;
use crate::kubesphere::{APPS, CATEGORIES, KubeSphere, RELEASES, VERSIONS};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(90);
const CATALOG: &str = "acme-store";

/// The releases of the adapted example: (name, helm?).
const RELEASES_OF_CATALOG: [(&str, bool); 5] = [
    ("storefront", true),
    ("whoami-debug", false),
    ("orders-db", true),
    ("storefront-eu", true),
    ("web-metrics", true),
];

fn catalog(dir: &Path) -> PathBuf {
    let catalog = dir.join("catalog");
    common::copy_tree(&common::example_catalog(), &catalog);
    for gone in [
        "apps/whoami/1.0.0/service.yaml",
        "apps/whoami/1.1.0/service.yaml",
        "apps/whoami/1.1.0/poddisruptionbudget.yaml",
        "releases/host/data/session-cache.yaml",
        "repos/bitnami.yaml",
        "repos/acme-internal.yaml",
    ] {
        std::fs::remove_file(catalog.join(gone)).unwrap();
    }
    // A package over what client-side apply can carry: 340 KiB that do not compress.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let blob: String = (0..340 * 1024)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 100 == 99 {
                '\n'
            } else {
                char::from(b'a' + (x % 26) as u8)
            }
        })
        .collect();
    let files = catalog.join(BIG_PACKAGE_FILES);
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("blob.txt"), blob).unwrap();
    catalog
}

/// Where the large package's extra file goes, and its storage ConfigMap.
const BIG_PACKAGE_FILES: &str = "apps/nginx/1.0.0/files";
const BIG_PACKAGE: &str = "objects/configmaps/extension-openpitrix/nginx-1.0.0.yaml";

/// The large package is over 256 KiB, so client-side apply (its last-applied annotation)
/// cannot carry it: the API server refuses it; the output applies it server-side.
fn assert_big_package_needs_server_side_apply(ks: &KubeSphere, out: &Path) {
    let text = std::fs::read(out.join(BIG_PACKAGE)).unwrap();
    assert!(text.len() > 262_144, "{} bytes", text.len());
    let refused = ks.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &text);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("Too long"),
        "client-side apply of a {} byte ConfigMap: {stderr}",
        text.len()
    );
}

fn pitrix(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .output()
        .unwrap()
}

fn compile(catalog: &Path, out: &Path) {
    let o = pitrix(&[
        "compile",
        catalog.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "compile: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `kubectl kustomize DIR` as objects.
fn kustomize(dir: &Path, no_restrictions: bool) -> Vec<Value> {
    let mut cmd = Command::new(cluster::kubectl_program());
    cmd.arg("kustomize").arg(dir);
    if no_restrictions {
        cmd.arg("--load-restrictor=LoadRestrictionsNone");
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Server-side apply of `objects` under `manager` (conflicts forced, as Argo CD and Flux do).
fn server_side_apply(ks: &KubeSphere, objects: &[&Value], manager: &str) {
    let mut text = String::new();
    for o in objects {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(o).unwrap());
    }
    let field_manager = format!("--field-manager={manager}");
    ks.kubectl_stdin_ok(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            &field_manager,
            "-f",
            "-",
        ],
        text.as_bytes(),
    );
}

/// Runs the status Job as its pod would: its container's arguments, with a kubeconfig holding
/// only its ServiceAccount's token; then marks it complete (no kubelet here).
fn run_status_job(ks: &KubeSphere, job: &Value, work: &Path) {
    let ns = job["metadata"]["namespace"].as_str().unwrap();
    let name = job["metadata"]["name"].as_str().unwrap();
    let spec = &job["spec"]["template"]["spec"];
    let sa = spec["serviceAccountName"].as_str().unwrap();
    let token = ks
        .kubectl_ok(&["create", "token", sa, "-n", ns])
        .trim()
        .to_string();
    let ca = work.join("ca.crt");
    std::fs::write(&ca, &ks.cluster.ca_pem).unwrap();
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": ks.server, "certificate-authority": ca}}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "pod", "context": {"cluster": "c", "user": sa}}],
        "current-context": "pod",
    });
    let path = work.join("pod-kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig).unwrap()).unwrap();
    let args: Vec<String> = spec["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(
        spec["containers"][0]["command"].is_null(),
        "the image's entrypoint is pitrix"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(&args)
        .env("KUBECONFIG", &path)
        .env_remove("HOME")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the status Job ({args:?}) failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    ks.complete_job(ns, name);
}

/// Argo CD's sync of the output root: phases, waves, hooks (module docs).
fn argocd_sync(ks: &KubeSphere, out: &Path, work: &Path) {
    let objects = kustomize(out, false);
    let phase_of = |o: &Value| match annotation(o, "argocd.argoproj.io/hook") {
        Some("PreSync") => 0,
        Some("Sync") | None => 1,
        Some("PostSync") => 2,
        Some(other) => panic!("hook {other}"),
    };
    let wave_of = |o: &Value| -> i32 {
        annotation(o, "argocd.argoproj.io/sync-wave")
            .map(|w| w.parse().unwrap())
            .unwrap_or(0)
    };
    let mut steps: BTreeMap<(i32, i32), Vec<&Value>> = BTreeMap::new();
    for o in &objects {
        // Every object is applied server-side (a package over 256 KiB could not be otherwise).
        let options = annotation(o, "argocd.argoproj.io/sync-options").unwrap_or_default();
        assert!(
            options.split(',').any(|x| x == "ServerSideApply=true"),
            "{} {} lacks ServerSideApply=true",
            o["kind"],
            o["metadata"]["name"]
        );
        steps.entry((phase_of(o), wave_of(o))).or_default().push(o);
    }
    let namespace = objects.iter().find(|o| o["kind"] == "Namespace").unwrap();
    assert_eq!(
        annotation(namespace, "argocd.argoproj.io/sync-options"),
        Some("Prune=false,ServerSideApply=true")
    );
    let mut order = Vec::new();
    for ((_, wave), objects) in &steps {
        let (hooks, plain): (Vec<&Value>, Vec<&Value>) = objects
            .iter()
            .partition(|o| annotation(o, "argocd.argoproj.io/hook").is_some());
        if !plain.is_empty() {
            server_side_apply(ks, &plain, "argocd-controller");
        }
        for hook in hooks {
            assert_eq!(
                annotation(hook, "argocd.argoproj.io/hook-delete-policy"),
                Some("BeforeHookCreation")
            );
            let ns = hook["metadata"]["namespace"].as_str().unwrap();
            let name = hook["metadata"]["name"].as_str().unwrap();
            ks.kubectl_ok(&["delete", "job", name, "-n", ns, "--ignore-not-found"]);
            server_side_apply(ks, &[hook], "argocd-controller");
            run_status_job(ks, hook, work);
        }
        for o in objects.iter() {
            order.push((*wave, o["kind"].as_str().unwrap().to_string()));
        }
    }
    // KubeSphere's dependency order: each kind's wave after the kinds it needs.
    let first = |kind: &str| order.iter().find(|(_, k)| k == kind).map(|(w, _)| *w);
    let job = order
        .iter()
        .find(|(_, k)| k == "Job")
        .map(|(w, _)| *w)
        .unwrap();
    let chain = [
        first("Namespace"),
        first("Category"),
        first("ConfigMap"),
        first("Application"),
        first("ApplicationVersion"),
        Some(job),
        first("ApplicationRelease"),
    ];
    assert!(chain.windows(2).all(|w| w[0] < w[1]), "waves {chain:?}");
}

/// Flux's two Kustomizations: the store (waiting for the status Job), then the releases.
fn flux_sync(ks: &KubeSphere, out: &Path, work: &Path) {
    let store = kustomize(&out.join("flux/store"), true);
    assert!(store.iter().all(|o| o["kind"] != "ApplicationRelease"));
    let (jobs, plain): (Vec<&Value>, Vec<&Value>) = store.iter().partition(|o| o["kind"] == "Job");
    server_side_apply(ks, &plain, "kustomize-controller");
    for job in jobs {
        // `kustomize.toolkit.fluxcd.io/force: enabled`: a changed Job is re-created.
        assert_eq!(
            annotation(job, "kustomize.toolkit.fluxcd.io/force"),
            Some("enabled")
        );
        let ns = job["metadata"]["namespace"].as_str().unwrap();
        let name = job["metadata"]["name"].as_str().unwrap();
        let live = ks.kubectl(&["get", "job", name, "-n", ns, "-o", "json"]);
        let changed = !live.status.success() || {
            let live: Value = serde_json::from_slice(&live.stdout).unwrap();
            live["spec"]["template"]["metadata"]["annotations"]
                != job["spec"]["template"]["metadata"]["annotations"]
        };
        if changed {
            ks.kubectl_ok(&["delete", "job", name, "-n", ns, "--ignore-not-found"]);
            server_side_apply(ks, &[job], "kustomize-controller");
            run_status_job(ks, job, work);
        }
    }
    let releases = kustomize(&out.join("flux/releases"), true);
    assert!(releases.iter().all(|o| o["kind"] == "ApplicationRelease"));
    let releases: Vec<&Value> = releases.iter().collect();
    server_side_apply(ks, &releases, "kustomize-controller");
}

fn desired_states(out: &Path) -> Vec<Value> {
    let cm = out.join(format!(
        "engine/configmap/extension-openpitrix/pitrix-status-{CATALOG}.yaml"
    ));
    let cm: Value = serde_yaml::from_str(&std::fs::read_to_string(cm).unwrap()).unwrap();
    serde_json::from_str(cm["data"]["states.json"].as_str().unwrap()).unwrap()
}

fn state(v: &Value) -> &str {
    v.pointer("/status/state")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Every version and app in its desired state; every release admitted and given its executor
/// Job (Helm: `created`; the YAML app: applied, `active`) on `version` of its app.
fn assert_end_state(ks: &KubeSphere, out: &Path, versions: &[(&str, &str)]) {
    for want in desired_states(out) {
        let resource = match want["kind"].as_str().unwrap() {
            "Application" => APPS,
            _ => VERSIONS,
        };
        let name = want["metadata"]["name"].as_str().unwrap();
        let live = ks.get_json(resource, name).unwrap();
        assert_eq!(live["status"]["state"], want["status"]["state"], "{name}");
        if resource == APPS {
            assert!(live["status"]["updateTime"].is_string(), "{live}");
        }
    }
    ks.wait_for(CONVERGE, "KubeSphere to install every release", || {
        let mut pending = Vec::new();
        for (name, helm) in RELEASES_OF_CATALOG {
            let Some(r) = ks.get_json(RELEASES, name) else {
                pending.push(format!("{name}: missing"));
                continue;
            };
            let version = versions.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            if let Some(v) = version
                && r["spec"]["appVersionID"] != v
            {
                pending.push(format!("{name}: {}", r["spec"]["appVersionID"]));
            }
            // Helm: the executor Job made (`created`, or `upgraded` after a version bump);
            // the YAML app: applied in-process.
            let want: &[&str] = if helm {
                &["created", "upgraded"]
            } else {
                &["active"]
            };
            let job = r.pointer("/status/installJobName").and_then(Value::as_str);
            let jobs = ks.executor_jobs(name);
            let job_exists =
                !helm || job.is_some_and(|j| jobs.iter().any(|x| x["metadata"]["name"] == j));
            if !want.contains(&state(&r)) || !job_exists {
                pending.push(format!("{name}: {}", r["status"]));
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

/// `pitrix apply OUT` after an engine's sync: nothing to create, replace, prune or write.
fn assert_pitrix_apply_is_a_no_op(ks: &KubeSphere, out: &Path, kubeconfig: &Path) {
    let o = pitrix(&[
        "apply",
        "--from",
        out.to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "pitrix apply after the engine:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let changed: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] != "unchanged")
        .map(|r| format!("{} {}", r["outcome"], r["object"]))
        .collect();
    assert!(
        changed.is_empty(),
        "pitrix apply after the engine: {changed:?}"
    );
    // The engine-only objects stay: pitrix neither applies nor prunes them.
    let job = format!("pitrix-status-{CATALOG}");
    assert!(
        ks.kubectl(&["get", "configmap", &job, "-n", "extension-openpitrix"])
            .status
            .success()
    );
}

/// The resourceVersion of every object of the catalog, and of the status writer's objects but
/// its Job (a hook, re-created on every sync).
fn resource_versions(ks: &KubeSphere) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let selectors = [
        format!("pitrix.io/catalog={CATALOG}"),
        format!("pitrix.io/status-of={CATALOG}"),
    ];
    for resource in [
        RELEASES,
        VERSIONS,
        APPS,
        CATEGORIES,
        "configmaps",
        "namespaces",
        "serviceaccounts",
        "roles.rbac.authorization.k8s.io",
        "clusterroles.rbac.authorization.k8s.io",
    ] {
        for selector in &selectors {
            for o in ks.list(resource, None, selector) {
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
    }
    all
}

/// The executor Jobs KubeSphere made, per release.
fn executor_job_counts(ks: &KubeSphere) -> Vec<(&'static str, usize)> {
    RELEASES_OF_CATALOG
        .iter()
        .map(|(name, _)| (*name, ks.executor_jobs(name).len()))
        .collect()
}

/// The catalog change of the second sync: nginx 1.2.0 (a version bump both storefront releases
/// move to) and nginx 1.0.0 suspended.
fn change_catalog(catalog: &Path) {
    let apps = catalog.join("apps/nginx");
    common::copy_tree(&apps.join("1.1.0"), &apps.join("1.2.0"));
    let chart = apps.join("1.2.0/Chart.yaml");
    let text = std::fs::read_to_string(&chart).unwrap();
    std::fs::write(&chart, text.replace("version: 1.1.0", "version: 1.2.0")).unwrap();
    let app = apps.join("app.yaml");
    let text = std::fs::read_to_string(&app).unwrap().replace(
        "  \"1.0.0\":\n    state: active\n",
        "  \"1.0.0\":\n    state: suspended\n  \"1.2.0\":\n    state: active\n",
    );
    std::fs::write(&app, text).unwrap();
    for (release, from) in [
        ("releases/host/web/storefront.yaml", "version: 1.1.0"),
        ("releases/edge-eu/web/storefront-eu.yaml", "version: 1.0.0"),
    ] {
        let release = catalog.join(release);
        let text = std::fs::read_to_string(&release).unwrap();
        assert!(text.contains(from), "{text}");
        std::fs::write(&release, text.replace(from, "version: 1.2.0")).unwrap();
    }
}

#[test]
fn argocd_sync_reaches_pitrix_apply_s_end_state_and_converges_after_a_change() {
    let ks = KubeSphere::start();
    ks.prepare_for_example_catalog();
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog(tmp.path());
    let out = tmp.path().join("out");
    compile(&catalog, &out);

    argocd_sync(&ks, &out, tmp.path());
    assert_big_package_needs_server_side_apply(&ks, &out);
    assert_end_state(&ks, &out, &[("storefront", "nginx-1.1.0")]);
    assert_pitrix_apply_is_a_no_op(&ks, &out, &ks.kubeconfig);

    // A second sync after a catalog change converges too.
    change_catalog(&catalog);
    compile(&catalog, &out);
    argocd_sync(&ks, &out, tmp.path());
    assert_eq!(
        state(&ks.get_json(VERSIONS, "nginx-1.0.0").unwrap()),
        "suspended"
    );
    assert_end_state(
        &ks,
        &out,
        &[
            ("storefront", "nginx-1.2.0"),
            ("storefront-eu", "nginx-1.2.0"),
        ],
    );
    // pitrix apply after the engine: KubeSphere has nothing to act on (no new executor Job);
    // then an engine sync after pitrix apply writes nothing at all.
    let jobs = executor_job_counts(&ks);
    assert_pitrix_apply_is_a_no_op(&ks, &out, &ks.kubeconfig);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        executor_job_counts(&ks),
        jobs,
        "pitrix apply re-installed a release"
    );
    let before = resource_versions(&ks);
    argocd_sync(&ks, &out, tmp.path());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        resource_versions(&ks),
        before,
        "an engine sync after pitrix apply wrote"
    );
    assert_eq!(executor_job_counts(&ks), jobs);
    assert_end_state(
        &ks,
        &out,
        &[
            ("storefront", "nginx-1.2.0"),
            ("storefront-eu", "nginx-1.2.0"),
        ],
    );
}

#[test]
fn flux_sync_reaches_pitrix_apply_s_end_state_and_converges_after_a_change() {
    let ks = KubeSphere::start();
    ks.prepare_for_example_catalog();
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog(tmp.path());
    let out = tmp.path().join("out");
    compile(&catalog, &out);

    flux_sync(&ks, &out, tmp.path());
    assert_end_state(&ks, &out, &[("storefront", "nginx-1.1.0")]);
    assert_pitrix_apply_is_a_no_op(&ks, &out, &ks.kubeconfig);

    change_catalog(&catalog);
    compile(&catalog, &out);
    flux_sync(&ks, &out, tmp.path());
    assert_eq!(
        state(&ks.get_json(VERSIONS, "nginx-1.0.0").unwrap()),
        "suspended"
    );
    assert_end_state(
        &ks,
        &out,
        &[
            ("storefront", "nginx-1.2.0"),
            ("storefront-eu", "nginx-1.2.0"),
        ],
    );
}
