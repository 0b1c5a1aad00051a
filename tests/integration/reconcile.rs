//! `pitrix reconcile` against a real kube-apiserver + etcd (pitrix-testkit's cluster), with a local git
//! repository as the source: each new commit applied, a bad commit changing nothing (status
//! says why) until the next good one, drift corrected within seconds (or only reported with
//! `--drift warn`), an unreachable source keeping the last good state, and the RBAC of
//! `pitrix deploy-manifests` being enough to do all of it.

use crate::cluster;
use crate::reconcile_support;

use std::time::{Duration, Instant};

use cluster::TestCluster;
use reconcile_support::*;

fn cluster() -> TestCluster {
    let k = TestCluster::start();
    install_crds(&k);
    k
}

#[test]
fn each_commit_is_applied_and_a_bad_one_changes_nothing() {
    let k = cluster();
    let repo = Repo::scaffold();
    let first = repo.head();
    let r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);

    let status = wait_sync(&k, &first, "Synced", Duration::from_secs(30));
    assert_eq!(status["pitrix.io/applied-revision"], first.as_str());
    assert!(
        status["pitrix.io/last-sync-message"]
            .as_str()
            .unwrap()
            .contains("created"),
        "{status:#}"
    );
    assert_eq!(get(&k, APPS, "hello").unwrap()["status"]["state"], "active");
    assert!(get(&k, CATEGORIES, "tools").is_some());
    assert_eq!(r.http("/healthz").unwrap().0, 200);
    assert_eq!(r.http("/readyz").unwrap().0, 200);
    let m = r.metrics();
    assert_eq!(metric(&m, "pitrix_leader"), Some(1.0));
    assert_eq!(
        metric(
            &m,
            &format!("pitrix_sync_revision_info{{revision=\"{first}\",state=\"applied\"}}")
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "pitrix_managed_objects{kind=\"Category\"}"),
        Some(1.0)
    );
    assert_eq!(metric(&m, "pitrix_last_sync_success"), Some(1.0));
    assert!(metric(&m, "pitrix_process_resident_memory_bytes").unwrap() > 0.0);
    let content_type = |head: &str| {
        head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
    };
    let (_, head, _) = r.http_get("/metrics", "").unwrap();
    assert_eq!(
        content_type(&head).as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // What Prometheus asks for, it gets: OpenMetrics, the same samples.
    let (code, head, om) = r
        .http_get(
            "/metrics",
            "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n",
        )
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        content_type(&head).as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert_eq!(metric(&om, "pitrix_leader"), Some(1.0), "{om}");
    assert_eq!(metric(&om, "pitrix_last_sync_success"), Some(1.0), "{om}");

    // A commit that does not compile: nothing applied, the status says why.
    let before = resource_versions(&k);
    let good_category = repo.read("categories/tools.yaml");
    repo.write(
        "categories/tools.yaml",
        &good_category.replace("displayName:", "displayNam:"),
    );
    repo.write(
        "apps/hello/app.yaml",
        &repo
            .read("apps/hello/app.yaml")
            .replace("Says hello", "Says hi"),
    );
    let bad = repo.commit("a typo");
    let status = wait_sync(&k, &bad, "CompileFailed", Duration::from_secs(20));
    let message = status["pitrix.io/last-sync-message"].as_str().unwrap();
    assert!(
        message.contains("categories/tools.yaml") && message.contains("displayNam"),
        "{message}"
    );
    assert!(message.contains("nothing applied"), "{message}");
    assert_eq!(status["pitrix.io/applied-revision"], first.as_str());
    // Give it a few more intervals: still nothing written (the bad revision is not retried).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        resource_versions(&k),
        before,
        "a bad commit changed the cluster"
    );
    let m = r.metrics();
    assert_eq!(
        metric(&m, "pitrix_syncs_total{result=\"compile_failed\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(metric(&m, "pitrix_last_sync_success"), Some(0.0));
    assert!(
        events(&k)
            .iter()
            .any(|(reason, note)| reason == "CompileFailed" && note.contains("displayNam")),
        "{:?}",
        events(&k)
    );

    // The next good commit applies (with the app change made in the bad one).
    repo.write("categories/tools.yaml", &good_category);
    let fixed = repo.commit("fix the typo");
    let status = wait_sync(&k, &fixed, "Synced", Duration::from_secs(20));
    assert_eq!(status["pitrix.io/applied-revision"], fixed.as_str());
    let app = get(&k, APPS, "hello").unwrap();
    assert!(
        app.to_string().contains("Says hi"),
        "the app was not updated: {app:#}"
    );
    assert!(
        events(&k).iter().any(|(reason, _)| reason == "Synced"),
        "{:?}",
        events(&k)
    );
    assert!(r.log_text().contains("does not compile"));
}

/// A sync keeps compiled bodies in its cache, not memory (issue #20): a cache it cannot write
/// to fails the revision with the reason, and changes nothing in the cluster.
#[test]
fn a_cache_that_cannot_be_written_fails_the_sync_changes_nothing_and_is_retried() {
    let k = cluster();
    let repo = Repo::scaffold();
    let first = repo.head();
    let r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&k, &first, "Synced", Duration::from_secs(30));
    let before = resource_versions(&k);

    // The bodies' store replaced by a file: nothing can be stored under it.
    let objects = r.cache_dir().join("objects");
    std::fs::remove_dir_all(&objects).unwrap();
    std::fs::write(&objects, "not a directory").unwrap();
    repo.write(
        "apps/hello/app.yaml",
        &repo
            .read("apps/hello/app.yaml")
            .replace("Says hello", "Says hi"),
    );
    let second = repo.commit("a change the cache cannot hold");
    // The controller's disk, not the catalog: not CompileFailed, which would be settled.
    let status = wait_sync(&k, &second, "BuildFailed", Duration::from_secs(30));
    let message = status["pitrix.io/last-sync-message"].as_str().unwrap();
    assert!(
        message.contains("objects")
            && message.contains("nothing applied")
            && message.contains("tried again"),
        "{message}"
    );
    assert_eq!(status["pitrix.io/applied-revision"], first.as_str());
    assert_eq!(
        resource_versions(&k),
        before,
        "a failed sync changed the cluster"
    );
    // No package left spooled by the failed build.
    let work = r.cache_dir().join("work");
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", work.display());

    // With the cache usable again, the same revision applies, with no new commit.
    std::fs::remove_file(&objects).unwrap();
    std::fs::create_dir(&objects).unwrap();
    wait_sync(&k, &second, "Synced", Duration::from_secs(30));
    let app = get(&k, APPS, "hello").unwrap();
    assert!(app.to_string().contains("Says hi"), "{app:#}");
}

#[test]
fn drift_is_corrected_within_seconds_or_only_reported_with_warn() {
    let k = cluster();
    let repo = Repo::scaffold();
    let head = repo.head();
    let mut r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&k, &head, "Synced", Duration::from_secs(30));

    let corrected = |what: &str, check: &dyn Fn() -> bool| {
        let started = Instant::now();
        wait_for(Duration::from_secs(10), what, || check().then_some(()));
        started.elapsed()
    };

    // An edit of a field pitrix sets.
    k.kubectl_ok(&[
        "patch",
        CATEGORIES,
        "tools",
        "--type=merge",
        "-p",
        r#"{"spec":{"icon":"hacked"}}"#,
    ]);
    let took = corrected("the category's icon restored", &|| {
        get(&k, CATEGORIES, "tools").unwrap()["spec"]["icon"] == "tool"
    });
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // A deletion.
    k.kubectl_ok(&["delete", REPOS, "bitnami"]);
    corrected("the repo re-created", &|| {
        get(&k, REPOS, "bitnami").is_some()
    });

    // The review state, on the status subresource (the console's "suspend").
    k.kubectl_ok(&[
        "patch",
        APPS,
        "hello",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"state":"suspended"}}"#,
    ]);
    corrected("the app's review state restored", &|| {
        get(&k, APPS, "hello").unwrap()["status"]["state"] == "active"
    });

    // The package ConfigMap, watched as metadata only: an annotation edit, then a deletion.
    k.kubectl_ok(&[
        "annotate",
        "configmap",
        "hello-0.1.0",
        "-n",
        STORAGE_NS,
        "--overwrite",
        "pitrix.io/digest=tampered",
    ]);
    corrected("the package's annotation restored", &|| {
        get_ns(&k, "configmap", STORAGE_NS, "hello-0.1.0").unwrap()["metadata"]["annotations"]
            ["pitrix.io/digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    });
    k.kubectl_ok(&["delete", "configmap", "hello-0.1.0", "-n", STORAGE_NS]);
    corrected("the package re-created", &|| {
        get_ns(&k, "configmap", STORAGE_NS, "hello-0.1.0")
            .is_some_and(|cm| cm["binaryData"]["BinaryKey"].as_str().is_some())
    });

    // Fields KubeSphere's controllers own are no fight: a finalizer and the recheck annotation
    // on the release stay, and cause no correction.
    let m = r.metrics();
    let corrections = |m: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with("pitrix_drift_corrections_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = corrections(&m);
    assert!(before >= 5.0, "{m}");
    k.kubectl_ok(&[
        "patch",
        RELEASES,
        "hello",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["helmrelease.application.kubesphere.io"],"annotations":{"application.kubesphere.io/timeout-recheck":"1"}}}"#,
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let release = get(&k, RELEASES, "hello").unwrap();
    assert_eq!(
        release["metadata"]["finalizers"][0],
        "helmrelease.application.kubesphere.io"
    );
    assert_eq!(corrections(&r.metrics()), before);
    assert!(
        events(&k)
            .iter()
            .any(|(reason, note)| reason == "DriftCorrected" && note.contains("Repo bitnami")),
        "{:?}",
        events(&k)
    );
    assert!(
        r.metric("pitrix_drift_correction_duration_seconds_count")
            .unwrap()
            >= 5.0
    );
    // Let the release controller's finalizer go, the way it would.
    k.kubectl_ok(&[
        "patch",
        RELEASES,
        "hello",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);

    // SIGTERM: a clean exit, then the same with --drift warn: reported, not corrected.
    r.sigterm();
    assert!(r.wait_exit(Duration::from_secs(15)).success());
    let w = Reconciler::start(
        "w",
        &k.kubeconfig,
        repo.path(),
        &[FAST_LEASE, &["--drift", "warn"]].concat(),
    );
    wait_for(Duration::from_secs(20), "the warn replica to sync", || {
        (w.metric("pitrix_last_sync_success") == Some(1.0)).then_some(())
    });
    k.kubectl_ok(&[
        "patch",
        CATEGORIES,
        "tools",
        "--type=merge",
        "-p",
        r#"{"spec":{"icon":"hacked"}}"#,
    ]);
    wait_for(Duration::from_secs(10), "the drift reported", || {
        (w.metric("pitrix_drift_detected_total{kind=\"Category\"}") == Some(1.0)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        get(&k, CATEGORIES, "tools").unwrap()["spec"]["icon"],
        "hacked"
    );
    assert!(w.log_text().contains("not corrected"));
    assert!(
        events(&k)
            .iter()
            .any(|(reason, note)| reason == "DriftDetected" && note.contains("Category tools")),
        "{:?}",
        events(&k)
    );
}

#[test]
fn an_unreachable_source_keeps_the_last_good_state() {
    let k = cluster();
    let repo = Repo::scaffold();
    let head = repo.head();
    let r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&k, &head, "Synced", Duration::from_secs(30));
    let before = resource_versions(&k);

    let moved = repo.tmp.path().join("moved");
    std::fs::rename(&repo.dir, &moved).unwrap();
    let status = wait_sync(&k, &head, "FetchFailed", Duration::from_secs(15));
    assert!(
        status["pitrix.io/last-sync-message"]
            .as_str()
            .unwrap()
            .contains("cannot fetch"),
        "{status:#}"
    );
    assert_eq!(status["pitrix.io/applied-revision"], head.as_str());
    assert!(r.metric("pitrix_errors_total{stage=\"fetch\"}").unwrap() >= 1.0);
    assert_eq!(r.http("/healthz").unwrap().0, 200);
    assert_eq!(resource_versions(&k), before);
    // Drift is still corrected against the last good revision.
    k.kubectl_ok(&["delete", CATEGORIES, "tools"]);
    wait_for(Duration::from_secs(10), "the category re-created", || {
        get(&k, CATEGORIES, "tools").map(|_| ())
    });

    // The source comes back with a new commit: applied.
    std::fs::rename(&moved, &repo.dir).unwrap();
    repo.write(
        "categories/tools.yaml",
        &repo
            .read("categories/tools.yaml")
            .replace("icon: tool", "icon: wrench"),
    );
    let next = repo.commit("a new icon");
    wait_sync(&k, &next, "Synced", Duration::from_secs(20));
    assert_eq!(
        get(&k, CATEGORIES, "tools").unwrap()["spec"]["icon"],
        "wrench"
    );
}

#[test]
fn not_ready_until_the_source_has_been_fetched() {
    let k = cluster();
    let repo = Repo::scaffold();
    let head = repo.head();
    let moved = repo.tmp.path().join("moved");
    std::fs::rename(&repo.dir, &moved).unwrap();
    let r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    // Leading, with a source that cannot be fetched: not ready, and the body says why.
    let (code, body) = wait_for(Duration::from_secs(20), "a failed fetch", || {
        let (code, body) = r.http("/readyz").unwrap();
        (r.is_leader() && body.contains("cannot fetch")).then_some((code, body))
    });
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("has not been fetched since start") && body.contains(repo.path()),
        "{body}"
    );
    assert_eq!(r.http("/healthz").unwrap().0, 200);

    // The source is there: ready once it has been fetched.
    std::fs::rename(&moved, &repo.dir).unwrap();
    wait_sync(&k, &head, "Synced", Duration::from_secs(30));
    assert_eq!(r.http("/readyz").unwrap(), (200, "ok\n".to_string()));
    // A later failure keeps it ready (the status and the metrics say it).
    std::fs::rename(&repo.dir, &moved).unwrap();
    wait_sync(&k, &head, "FetchFailed", Duration::from_secs(15));
    assert_eq!(r.http("/readyz").unwrap().0, 200);
}

#[test]
fn json_logs_one_object_per_line_with_secrets_masked() {
    let k = cluster();
    // A source that refuses connections, its URL carrying a token: the fetch error names it.
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let source = format!("https://pitrix:{token}@127.0.0.1:{port}/catalog.git");
    let r = Reconciler::start(
        "a",
        &k.kubeconfig,
        &source,
        &[
            FAST_LEASE,
            &["--log-format", "json", "--log-level", "debug"],
        ]
        .concat(),
    );
    let (code, body) = wait_for(Duration::from_secs(20), "a failed fetch", || {
        let (code, body) = r.http("/readyz").unwrap();
        body.contains("has not been fetched since start")
            .then_some((code, body))
    });
    assert_eq!(code, 503, "{body}");
    assert!(!body.contains(token), "{body}");
    let log = wait_for(Duration::from_secs(10), "the fetch error logged", || {
        let log = r.log_text();
        log.contains("\"level\":\"warn\"").then_some(log)
    });
    assert!(!log.contains(token), "{log}");
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v["time"].is_string() && v["msg"].is_string(), "{line}");
        assert!(
            ["error", "warn", "info", "debug"].contains(&v["level"].as_str().unwrap()),
            "{line}"
        );
    }
    assert!(
        log.lines()
            .any(|l| l.contains("\"level\":\"warn\"") && l.contains("cannot fetch")),
        "{log}"
    );
    // (A secret planted in the message itself: src/reconcile/log.rs's unit tests.)
}

#[test]
fn deploy_manifests_grant_enough_to_reconcile_and_no_more() {
    let k = TestCluster::start_with_controllers();
    install_crds(&k);
    let repo = Repo::scaffold();

    let manifests = std::process::Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args([
            "deploy-manifests",
            "--source",
            "https://git.example/catalog.git",
        ])
        .output()
        .unwrap();
    assert!(manifests.status.success());
    let text = String::from_utf8(manifests.stdout).unwrap();
    // Never the storage namespace (KubeSphere's package store): it must exist first, as
    // KubeSphere's OpenPitrix extension makes it.
    for doc in text
        .split("---\n")
        .filter(|d| d.contains("\nkind: Namespace\n"))
    {
        assert!(!doc.contains(&format!("name: {STORAGE_NS}\n")), "{doc}");
    }
    let missing = k.kubectl_stdin(&["apply", "-f", "-"], text.as_bytes());
    assert!(!missing.status.success());
    k.kubectl_ok(&["create", "namespace", STORAGE_NS]);
    // The API server takes every manifest (the Deployment's Pods never run: no kubelet). The
    // test server is 1.20, where policy/v1 is not served yet: its PodDisruptionBudget goes in
    // as policy/v1beta1, whose spec is the same.
    let text = text.replace("apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n");
    k.kubectl_stdin_ok(&["apply", "-f", "-"], text.as_bytes());
    assert!(get_ns(&k, "poddisruptionbudget", "pitrix-system", "pitrix").is_some());

    // A token of the ServiceAccount, filled in by the token controller.
    let secret = r#"{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/service-account-token","metadata":{"name":"pitrix-token","namespace":"pitrix-system","annotations":{"kubernetes.io/service-account.name":"pitrix"}}}"#;
    k.kubectl_stdin_ok(&["apply", "-f", "-"], secret.as_bytes());
    let token = wait_for(Duration::from_secs(30), "the service account token", || {
        let out = k.kubectl(&[
            "get",
            "secret",
            "pitrix-token",
            "-n",
            "pitrix-system",
            "-o",
            "jsonpath={.data.token}",
        ]);
        let b64 = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!b64.is_empty()).then(|| {
            use base64::Engine as _;
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap()
        })
    });
    let sa_kubeconfig = repo.tmp.path().join("sa-kubeconfig");
    let admin = std::fs::read_to_string(&k.kubeconfig).unwrap();
    let admin_token = &k.token;
    std::fs::write(&sa_kubeconfig, admin.replace(admin_token.as_str(), &token)).unwrap();

    // What the Deployment runs, with the ServiceAccount's rights only.
    let head = repo.head();
    let _r = Reconciler::start(
        "sa",
        &sa_kubeconfig,
        repo.path(),
        &[
            FAST_LEASE,
            &[
                "--lease-name",
                "pitrix-reconcile",
                "--lease-namespace",
                "pitrix-system",
            ],
        ]
        .concat(),
    );
    wait_sync(&k, &head, "Synced", Duration::from_secs(30));
    assert!(
        events(&k).iter().any(|(reason, _)| reason == "Synced"),
        "{:?}",
        events(&k)
    );
    k.kubectl_ok(&["delete", "configmap", "hello-0.1.0", "-n", STORAGE_NS]);
    k.kubectl_ok(&[
        "patch",
        APPS,
        "hello",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"state":"suspended"}}"#,
    ]);
    wait_for(Duration::from_secs(10), "drift corrected as the SA", || {
        (get_ns(&k, "configmap", STORAGE_NS, "hello-0.1.0").is_some()
            && get(&k, APPS, "hello").unwrap()["status"]["state"] == "active")
            .then_some(())
    });
    // A later commit, pruning a removed release.
    std::fs::remove_file(repo.dir.join("releases/host/default/hello.yaml")).unwrap();
    let next = repo.commit("no release");
    wait_sync(&k, &next, "Synced", Duration::from_secs(20));
    assert!(get(&k, RELEASES, "hello").is_none());

    // And nothing more.
    let sa = "system:serviceaccount:pitrix-system:pitrix";
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend(args);
        all.extend(["--as", sa]);
        String::from_utf8_lossy(&k.kubectl(&all).stdout).trim() == "yes"
    };
    assert!(can(&["patch", "configmaps", "-n", STORAGE_NS]));
    assert!(!can(&["list", "secrets", "-A"]));
    assert!(!can(&["get", "secrets", "-n", "pitrix-system"]));
    assert!(!can(&["list", "configmaps", "-n", "default"]));
    assert!(!can(&["delete", "namespaces"]));
    assert!(!can(&["create", "deployments", "-n", "pitrix-system"]));
    // Leases: its own namespace only (leader election, and the catalogs' apply locks, whose
    // names follow the catalog).
    assert!(!can(&["update", "leases", "-n", "kube-system"]));
    assert!(!can(&["update", "leases", "-n", "default"]));
    assert!(can(&[
        "update",
        "leases/pitrix-apply-my-store",
        "-n",
        "pitrix-system"
    ]));
    assert!(can(&[
        "update",
        "leases/pitrix-reconcile",
        "-n",
        "pitrix-system"
    ]));
}

/// The scaffold with `target = "standalone"`, and `more` appended to its pitrix.toml.
fn standalone_repo(more: &str) -> Repo {
    let repo = Repo::scaffold();
    let settings = repo
        .read("pitrix.toml")
        .replace(r#"target = "kubesphere""#, r#"target = "standalone""#);
    repo.write("pitrix.toml", &(settings + more));
    repo
}

/// `status.state` of the scaffold's release `hello`.
fn release_state(k: &TestCluster) -> serde_json::Value {
    get(k, RELEASES, "hello").unwrap()["status"]["state"].clone()
}

/// The name of the catalog's executor Job in `default` (the scaffold's one release).
fn executor_job(k: &TestCluster) -> String {
    k.kubectl_ok(&[
        "get",
        "jobs",
        "-n",
        "default",
        "-l",
        "pitrix.io/catalog=my-store",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ])
    .trim()
    .to_string()
}

#[test]
fn standalone_releases_follow_their_executor_jobs_between_commits() {
    let k = cluster();
    let repo = standalone_repo("");
    let head = repo.commit("standalone");
    let _r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&k, &head, "Synced", Duration::from_secs(30));
    let job = executor_job(&k);
    assert!(job.starts_with("helm-install-hello-"), "{job}");
    assert_eq!(release_state(&k), "creating");
    // The Job controller reports success: the release turns active without a new commit.
    k.complete_job("default", &job);
    wait_for(Duration::from_secs(10), "the release active", || {
        (release_state(&k) == "active").then_some(())
    });
}

/// In `standalone`, a release of a member cluster has its executor Job and ConfigMap there:
/// they are watched there, so the Job's success reaches the release on the host without a new
/// commit, and a deletion out of band is undone on the cluster it happened on.
#[test]
fn a_member_cluster_s_executor_objects_are_watched_where_they_live() {
    let host = cluster();
    let edge = TestCluster::start();
    let repo = standalone_repo("\n[clusters.edge]\ncontext = \"edge\"\n");
    let release = repo.read("releases/host/default/hello.yaml");
    std::fs::remove_dir_all(std::path::Path::new(repo.path()).join("releases/host")).unwrap();
    std::fs::create_dir_all(std::path::Path::new(repo.path()).join("releases/edge/default"))
        .unwrap();
    repo.write("releases/edge/default/hello.yaml", &release);
    let head = repo.commit("the release moves to the edge cluster");
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    cluster::two_cluster_kubeconfig(&host, &edge, &kubeconfig);

    let r = Reconciler::start("a", &kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&host, &head, "Synced", Duration::from_secs(30));
    let job = executor_job(&edge);
    assert!(job.starts_with("helm-install-hello-"), "{job}");
    assert!(
        !host
            .kubectl(&["get", "job", &job, "-n", "default"])
            .status
            .success()
    );
    assert_eq!(release_state(&host), "creating");

    edge.complete_job("default", &job);
    wait_for(Duration::from_secs(10), "the edge release active", || {
        (release_state(&host) == "active").then_some(())
    });

    edge.kubectl_ok(&["delete", "configmap", &job, "-n", "default"]);
    wait_for(
        Duration::from_secs(10),
        "the executor ConfigMap re-created on the edge",
        || get_ns(&edge, "configmap", "default", &job),
    );
    assert!(get_ns(&host, "configmap", "default", &job).is_none());
    let log = std::fs::read_to_string(&r.log).unwrap_or_default();
    assert!(!log.contains("no drift watch"), "{log}");
}
