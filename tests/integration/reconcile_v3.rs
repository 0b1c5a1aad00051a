//! `pitrix reconcile` of a `target = "kubesphere-v3"` catalog: a real `pitrix reconcile`
//! process following a git repository, a real kube-apiserver with KubeSphere 3.4.1's own five
//! App Store CRDs, and a real, signature-checking S3 server (pitrix-testkit's s3s-fs) for the
//! packages and images. Uploads go before the objects that name them, a new version uploads
//! only its own package, out-of-band edits are undone, a deleted package is uploaded again at
//! the next resync, and an S3 outage fails the sync without writing anything.

use std::time::{Duration, SystemTime};

use pitrix_testkit::s3::S3Server;
use serde_json::Value;

use crate::cluster::TestCluster;
use crate::common;
use crate::kubesphere_v3::KubeSphereV3;
use crate::reconcile_support::{Reconciler, Repo, get, metric, sync_status, wait_for, wait_sync};

const BUCKET: &str = "app-store";
const APPS: &str = "helmapplications.application.kubesphere.io";
const VERSIONS: &str = "helmapplicationversions.application.kubesphere.io";
const RELEASES: &str = "helmreleases.application.kubesphere.io";
const CATEGORIES: &str = "helmcategories.application.kubesphere.io";
const PACKAGE_1: &str = "system-workspace/appv-hello-0.1.0";
const PACKAGE_2: &str = "system-workspace/appv-hello-0.2.0";

/// The scaffold (`pitrix new`) retargeted at KubeSphere 3.x and `endpoint`'s bucket,
/// committed; returns the repository and the commit.
fn v3_repo(endpoint: &str) -> (Repo, String) {
    let repo = Repo::scaffold();
    let text = repo
        .read("pitrix.toml")
        .replace("target = \"kubesphere\"", "target = \"kubesphere-v3\"");
    assert!(text.contains("kubesphere-v3"), "the scaffold sets a target");
    repo.write(
        "pitrix.toml",
        &format!("{text}\n[storage.s3]\nendpoint = \"{endpoint}\"\nbucket = \"{BUCKET}\"\n"),
    );
    let head = repo.commit("for KubeSphere 3.x, packages in S3");
    (repo, head)
}

/// Adds version 0.2.0 of hello (another values.yaml, so another package), active.
fn add_version(repo: &Repo) {
    common::copy_tree(
        &repo.dir.join("apps/hello/0.1.0"),
        &repo.dir.join("apps/hello/0.2.0"),
    );
    let chart = "apps/hello/0.2.0/Chart.yaml";
    repo.write(
        chart,
        &repo.read(chart).replace("version: 0.1.0", "version: 0.2.0"),
    );
    let values = "apps/hello/0.2.0/values.yaml";
    repo.write(values, &format!("{}replicaCount: 2\n", repo.read(values)));
    let app = repo.read("apps/hello/app.yaml");
    let head = &app[..app.find("versions:").unwrap()];
    repo.write(
        "apps/hello/app.yaml",
        &format!(
            "{head}versions:\n  0.1.0:\n    state: active\n    message: First release.\n  0.2.0:\n    state: active\n"
        ),
    );
}

/// `pitrix reconcile` with the store's credentials in its environment.
fn reconciler(
    name: &str,
    k: &TestCluster,
    repo: &Repo,
    s3: &S3Server,
    extra: &[&str],
) -> Reconciler {
    let mut args = vec!["--no-leader-election"];
    args.extend_from_slice(extra);
    Reconciler::start_with_env(
        name,
        &k.kubeconfig,
        repo.path(),
        &args,
        &[
            ("PITRIX_S3_ACCESS_KEY_ID", &s3.access_key),
            ("PITRIX_S3_SECRET_ACCESS_KEY", &s3.secret_key),
        ],
    )
}

fn stored_at(s3: &S3Server, key: &str) -> SystemTime {
    std::fs::metadata(s3.data_dir.join(BUCKET).join(key))
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{key} is not stored: {e}"))
}

/// resourceVersion of every KubeSphere 3.x object in the cluster.
fn v3_resource_versions(k: &TestCluster) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for resource in [APPS, VERSIONS, RELEASES, CATEGORIES] {
        let list: Value =
            serde_json::from_str(&k.kubectl_ok(&["get", resource, "-o", "json"])).unwrap();
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

fn patch(k: &TestCluster, resource: &str, name: &str, body: &str, status: bool) {
    let mut args = vec!["patch", resource, name, "--type=merge", "-p", body];
    if status {
        args.push("--subresource=status");
    }
    k.kubectl_ok(&args);
}

#[test]
fn uploads_then_objects_a_new_version_uploads_only_its_package_and_drift_is_undone() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let k = crate::kubesphere_v3::crds_only_cluster();
    let (repo, first) = v3_repo(&s3.endpoint);
    let r = reconciler("a", &k, &repo, &s3, &[]);

    // First sync: the package and the icon uploaded, the objects and the review state written.
    let status = wait_sync(&k, &first, "Synced", Duration::from_secs(60));
    assert_eq!(status["pitrix.io/applied-revision"], first.as_str());
    let keys = s3.keys(BUCKET);
    assert!(keys.contains(&PACKAGE_1.to_string()), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.starts_with("att-")),
        "no icon: {keys:?}"
    );
    let app = get(&k, APPS, "app-hello").expect("the app");
    assert_eq!(app["spec"]["name"], "Hello");
    assert!(get(&k, APPS, "app-hello-store").is_some(), "the store copy");
    assert!(get(&k, CATEGORIES, "ctg-tools").is_some());
    let version = get(&k, VERSIONS, "appv-hello-0.1.0").expect("the version");
    assert_eq!(
        version["metadata"]["ownerReferences"][0]["uid"],
        app["metadata"]["uid"]
    );
    assert_eq!(version["status"]["state"], "active");
    assert_eq!(version["status"]["audit"][0]["message"], "First release.");
    let releases: Value =
        serde_json::from_str(&k.kubectl_ok(&["get", RELEASES, "-o", "json"])).unwrap();
    assert_eq!(
        releases["items"].as_array().unwrap().len(),
        1,
        "{releases:#}"
    );
    let m = r.metrics();
    assert_eq!(metric(&m, "pitrix_last_sync_success"), Some(1.0), "{m}");
    assert_eq!(
        metric(&m, "pitrix_managed_objects{kind=\"S3Object\"}"),
        Some(keys.len() as f64),
        "{m}"
    );
    // S3 objects are not Kubernetes objects: no watch of them (it would fail, a 404 each time).
    assert_eq!(
        metric(&m, "pitrix_errors_total{stage=\"watch\"}"),
        None,
        "{m}"
    );
    let package_1 = s3.object(BUCKET, PACKAGE_1).unwrap();
    let package_1_at = stored_at(&s3, PACKAGE_1);

    // A new version: its package uploaded, the stored one not written again.
    add_version(&repo);
    let second = repo.commit("hello 0.2.0");
    wait_sync(&k, &second, "Synced", Duration::from_secs(60));
    assert!(
        s3.object(BUCKET, PACKAGE_2).is_some(),
        "{:?}",
        s3.keys(BUCKET)
    );
    assert_eq!(
        stored_at(&s3, PACKAGE_1),
        package_1_at,
        "0.1.0 uploaded again"
    );
    assert_eq!(s3.object(BUCKET, PACKAGE_1).unwrap(), package_1);
    let version_2 = get(&k, VERSIONS, "appv-hello-0.2.0").expect("0.2.0");
    assert_eq!(version_2["status"]["state"], "active");

    // An out-of-band edit of the app (kubectl) is undone.
    patch(
        &k,
        APPS,
        "app-hello",
        r#"{"spec":{"name":"Edited"}}"#,
        false,
    );
    wait_for(Duration::from_secs(20), "the app's name restored", || {
        (get(&k, APPS, "app-hello")?["spec"]["name"] == "Hello").then_some(())
    });
    // A version's review state changed out of band (3.x keeps it on versions) is written back.
    patch(
        &k,
        VERSIONS,
        "appv-hello-0.1.0",
        r#"{"status":{"state":"suspended"}}"#,
        true,
    );
    wait_for(Duration::from_secs(20), "0.1.0 active again", || {
        (get(&k, VERSIONS, "appv-hello-0.1.0")?["status"]["state"] == "active").then_some(())
    });
    // A deleted version comes back owned by its app, with its review state.
    k.kubectl_ok(&["delete", VERSIONS, "appv-hello-0.2.0", "--wait=false"]);
    let back = wait_for(Duration::from_secs(20), "0.2.0 re-created, active", || {
        let v = get(&k, VERSIONS, "appv-hello-0.2.0")?;
        (v["status"]["state"] == "active").then_some(v)
    });
    assert_ne!(back["metadata"]["uid"], version_2["metadata"]["uid"]);
    assert_eq!(
        back["metadata"]["ownerReferences"][0]["uid"],
        app["metadata"]["uid"]
    );
    let m = r.metrics();
    for kind in ["HelmApplication", "HelmApplicationVersion"] {
        assert!(
            metric(
                &m,
                &format!("pitrix_drift_corrections_total{{kind=\"{kind}\"}}")
            )
            .unwrap_or_default()
                >= 1.0,
            "{m}"
        );
    }

    // A package deleted from the bucket is uploaded again at the next interval (S3 has no
    // watch: the keys are listed between syncs; no --resync here).
    std::fs::remove_file(s3.data_dir.join(BUCKET).join(PACKAGE_1)).unwrap();
    // The sync that uploads it logs the correction once it is over.
    wait_for(
        Duration::from_secs(30),
        "0.1.0's package re-uploaded",
        || {
            r.log_text()
                .contains("drift corrected: S3Object system-workspace/appv-hello-0.1.0")
                .then_some(())
        },
    );
    assert_eq!(s3.object(BUCKET, PACKAGE_1), Some(package_1));

    // Each edit was undone by the drift watch itself, not only by a later resync.
    let log = r.log_text();
    for line in [
        "drift corrected: HelmApplication app-hello was changed out of band",
        "drift corrected: HelmApplicationVersion appv-hello-0.1.0 was review state changed out of band",
        "drift corrected: HelmApplicationVersion appv-hello-0.2.0 was deleted out of band",
        "drift: S3Object system-workspace/appv-hello-0.1.0 was deleted out of band",
        "drift corrected: S3Object system-workspace/appv-hello-0.1.0 was deleted out of band",
    ] {
        assert!(log.contains(line), "no `{line}` in:\n{log}");
    }
    assert!(!log.contains("correcting it failed"), "{log}");
    let m = r.metrics();
    assert_eq!(
        metric(&m, "pitrix_drift_corrections_total{kind=\"S3Object\"}"),
        Some(1.0),
        "{m}"
    );
    // Only 0.1.0's package was missing: the icon and 0.2.0's were not written again.
    assert_eq!(
        metric(&m, "pitrix_drift_detected_total{kind=\"S3Object\"}"),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn an_s3_outage_fails_the_sync_with_its_reason_and_writes_nothing() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let k = crate::kubesphere_v3::crds_only_cluster();
    let (repo, first) = v3_repo(&s3.endpoint);
    let endpoint = s3.endpoint.clone();
    let r = reconciler("a", &k, &repo, &s3, &[]);
    wait_sync(&k, &first, "Synced", Duration::from_secs(60));
    let before = v3_resource_versions(&k);

    // The store goes away: between syncs the check of its objects fails, said once.
    drop(s3);
    let unreachable = wait_for(Duration::from_secs(20), "the S3 check failing", || {
        let log = r.log_text();
        log.lines()
            .find(|l| l.contains("cannot check the S3 objects"))
            .map(str::to_string)
    });
    assert!(unreachable.contains(&endpoint), "{unreachable}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        r.log_text().matches("cannot check the S3 objects").count(),
        1,
        "{}",
        r.log_text()
    );
    assert_eq!(v3_resource_versions(&k), before);

    // A new version (and an edit of the app) is committed while it is down.
    add_version(&repo);
    repo.write(
        "apps/hello/app.yaml",
        &repo
            .read("apps/hello/app.yaml")
            .replace("Says hello", "Says hi"),
    );
    let second = repo.commit("hello 0.2.0 while S3 is down");
    let status = wait_sync(&k, &second, "Refused", Duration::from_secs(60));
    let message = status["pitrix.io/last-sync-message"].as_str().unwrap();
    assert!(
        message.contains(&endpoint) && message.contains(BUCKET),
        "the reason names the store: {message}"
    );
    assert_eq!(status["pitrix.io/applied-revision"], first.as_str());
    // Not written: no version naming the missing package, no edit of what is there.
    assert!(get(&k, VERSIONS, "appv-hello-0.2.0").is_none());
    assert_eq!(
        v3_resource_versions(&k),
        before,
        "a refused sync wrote objects"
    );
    // Retried at each interval (an outage passes), each time refused.
    wait_for(Duration::from_secs(20), "a retry", || {
        (metric(&r.metrics(), "pitrix_syncs_total{result=\"refused\"}")? >= 2.0).then_some(())
    });
    assert_eq!(v3_resource_versions(&k), before, "a retry wrote objects");
    let m = r.metrics();
    assert_eq!(metric(&m, "pitrix_last_sync_success"), Some(0.0), "{m}");
    assert!(
        metric(&m, "pitrix_errors_total{stage=\"apply\"}").unwrap_or_default() >= 1.0,
        "{m}"
    );
    let log = r.log_text();
    assert!(log.contains(&endpoint), "the log names the store:\n{log}");
    drop(r);

    // Another store (an empty one: each package is uploaded where it is missing), another
    // reconciler with its credentials: the catalog converges.
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let toml = repo.read("pitrix.toml").replace(&endpoint, &s3.endpoint);
    repo.write("pitrix.toml", &toml);
    let third = repo.commit("the new store");
    let _r = reconciler("b", &k, &repo, &s3, &[]);
    wait_sync(&k, &third, "Synced", Duration::from_secs(60));
    let keys = s3.keys(BUCKET);
    for key in [PACKAGE_1, PACKAGE_2] {
        assert!(keys.contains(&key.to_string()), "{keys:?}");
    }
    assert!(get(&k, VERSIONS, "appv-hello-0.2.0").is_some());
    assert!(
        get(&k, APPS, "app-hello")
            .unwrap()
            .to_string()
            .contains("Says hi"),
        "the app was not updated"
    );
    assert_eq!(
        sync_status(&k)["pitrix.io/applied-revision"],
        third.as_str()
    );
}

/// Beside KubeSphere 3.4.1's own ks-controller-manager: what it writes (the app's derived
/// state, the store copy's status and labels, finalizers, the release's status) is not drift,
/// so the reconciler and KubeSphere do not fight, and the release is installed once.
#[test]
fn beside_kubesphere_3_its_own_writes_are_not_drift() {
    let ks = KubeSphereV3::start_beside(TestCluster::start_with_controllers());
    let repo = Repo::scaffold();
    let text = repo
        .read("pitrix.toml")
        .replace("target = \"kubesphere\"", "target = \"kubesphere-v3\"");
    repo.write(
        "pitrix.toml",
        &format!(
            "{text}\n[storage.s3]\nendpoint = \"{}\"\nbucket = \"{}\"\n",
            ks.s3.endpoint,
            crate::kubesphere_v3::BUCKET
        ),
    );
    // 3.x would fetch the synced repo from the internet; no kubelet: ready with no replicas.
    std::fs::remove_file(repo.dir.join("repos/bitnami.yaml")).unwrap();
    let release = "releases/host/default/hello.yaml";
    repo.write(
        release,
        &repo.read(release).replace(
            "  message: Hello from pitrix",
            "  message: Hello from pitrix\n  replicaCount: 0",
        ),
    );
    let head = repo.commit("for KubeSphere 3.4.1");
    let r = reconciler("a", &ks, &repo, &ks.s3, &[]);
    wait_sync(&ks, &head, "Synced", Duration::from_secs(60));

    // KubeSphere takes the objects: the app's state derived, the release installed.
    let react = Duration::from_secs(90);
    wait_for(react, "the app active (KubeSphere derives it)", || {
        (get(&ks, APPS, "app-hello")?["status"]["state"] == "active").then_some(())
    });
    wait_for(react, "the store copy active", || {
        (get(&ks, APPS, "app-hello-store")?["status"]["state"] == "active").then_some(())
    });
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + react;
    let rls = loop {
        let list: Value =
            serde_json::from_str(&ks.kubectl_ok(&["get", RELEASES, "-o", "json"])).unwrap();
        if let Some(item) = list["items"].as_array().and_then(|a| a.first()) {
            if item["status"]["state"] == "active" {
                break item.clone();
            }
            last = item.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the release is not active after {react:?}: {last:#}\n{}",
            ks.log_tail(40)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let installed = rls["status"]["version"].clone();

    // A while of both running: nothing pitrix manages is seen as drift, nothing re-applied.
    std::thread::sleep(Duration::from_secs(8));
    let m = r.metrics();
    let drift: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("pitrix_drift_detected_total{"))
        .collect();
    assert!(
        drift.is_empty(),
        "KubeSphere's own writes seen as drift: {drift:?}\n{m}"
    );
    assert_eq!(
        metric(&m, "pitrix_syncs_total{result=\"synced\"}"),
        Some(1.0),
        "{m}"
    );
    let name = rls["metadata"]["name"].as_str().unwrap();
    let now = get(&ks, RELEASES, name).unwrap();
    assert_eq!(
        now["status"]["version"], installed,
        "upgraded again: {now:#}"
    );
    assert_eq!(now["status"]["state"], "active");
    assert_eq!(
        get(&ks, VERSIONS, "appv-hello-0.1.0").unwrap()["status"]["state"],
        "active"
    );
}

/// The controller's Pod without the store's credentials (a Secret not mounted): every sync is
/// refused naming the variables to set, and nothing is written or uploaded.
#[test]
fn without_the_s3_credentials_each_sync_is_refused_naming_the_variables() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let k = crate::kubesphere_v3::crds_only_cluster();
    let (repo, head) = v3_repo(&s3.endpoint);
    let r = Reconciler::start_with_env(
        "a",
        &k.kubeconfig,
        repo.path(),
        &["--no-leader-election"],
        &[],
    );
    let status = wait_sync(&k, &head, "Refused", Duration::from_secs(60));
    let message = status["pitrix.io/last-sync-message"].as_str().unwrap();
    assert!(
        message.contains("PITRIX_S3_ACCESS_KEY_ID") && message.contains(&s3.endpoint),
        "{message}"
    );
    assert!(v3_resource_versions(&k).is_empty(), "objects were written");
    assert!(s3.keys(BUCKET).is_empty(), "{:?}", s3.keys(BUCKET));
    assert_eq!(metric(&r.metrics(), "pitrix_last_sync_success"), Some(0.0));
}
