//! Concurrent applies of one catalog against a real kube-apiserver + etcd (pitrix-testkit's cluster): the
//! per-catalog apply lock (a Lease) serialises two `pitrix apply` processes, refuses when
//! someone else holds it, takes over an expired one; the inventory's compare-and-set refuses a
//! stale write and its update loop merges again instead of losing the other writer's entries.

use crate::cluster;
use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::TestCluster;
use pitrix::apply::{self, ClusterInventory, InventoryWriteError, ObjectKey};
use pitrix::cluster::ObjectRef;
use serde_json::Value;

/// The scaffold's catalog name.
const CATALOG: &str = "my-store";
const NAMESPACE: &str = "pitrix-system";
const LOCK: &str = "pitrix-apply-my-store";

fn cluster() -> TestCluster {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    k
}

fn scaffold(dir: &Path) {
    pitrix::scaffold::new_catalog(dir).unwrap();
}

/// `pitrix apply <catalog> --output json <extra>`, started (not waited for).
fn start_apply(k: &TestCluster, catalog: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("apply")
        .arg(catalog)
        .args([
            "--kubeconfig",
            k.kubeconfig.to_str().unwrap(),
            "--output",
            "json",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Exit code, JSON report and stderr of a finished apply.
fn finish(out: Output) -> (i32, Value, String) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("apply printed no JSON ({e}):\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn apply(k: &TestCluster, catalog: &Path, extra: &[&str]) -> (i32, Value, String) {
    finish(start_apply(k, catalog, extra).wait_with_output().unwrap())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(k: &TestCluster) -> kube::Client {
    pitrix::cluster::client(&pitrix::cluster::ClusterOptions {
        kubeconfig: Some(k.kubeconfig.clone()),
        ..pitrix::cluster::ClusterOptions::default()
    })
    .await
    .unwrap()
}

/// (kind, namespace, name): how the inventory and the live objects are compared.
type Id = (String, String, String);

fn id(r: &ObjectRef) -> Id {
    (
        r.kind.clone(),
        r.namespace.clone().unwrap_or_default(),
        r.name.clone(),
    )
}

/// The inventory ConfigMap's entries, read by the library.
fn inventory(k: &TestCluster) -> BTreeSet<Id> {
    let (inv, version) = runtime().block_on(async {
        apply::read_inventory(&client(k).await, NAMESPACE, CATALOG)
            .await
            .unwrap()
    });
    assert!(version.is_some(), "no inventory ConfigMap");
    inv.objects.keys().map(|k| id(&k.0)).collect()
}

/// Every live object carrying the catalog's label.
fn labelled(k: &TestCluster) -> BTreeSet<Id> {
    let mut all = BTreeSet::new();
    for resource in [
        "applications.application.kubesphere.io",
        "applicationversions.application.kubesphere.io",
        "applicationreleases.application.kubesphere.io",
        "categories.application.kubesphere.io",
        "repos.application.kubesphere.io",
        "configmaps",
        "namespaces",
    ] {
        let list: Value = serde_json::from_str(&k.kubectl_ok(&[
            "get",
            resource,
            "-A",
            "-l",
            &format!("pitrix.io/catalog={CATALOG}"),
            "-o",
            "json",
        ]))
        .unwrap();
        for item in list["items"].as_array().unwrap() {
            all.insert((
                item["kind"].as_str().unwrap().to_string(),
                item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                item["metadata"]["name"].as_str().unwrap().to_string(),
            ));
        }
    }
    all
}

/// The objects a catalog compiles to.
fn compiled(catalog: &Path) -> BTreeSet<Id> {
    let (compiled, _) = pitrix::pipeline::build(catalog)
        .unwrap_or_else(|_| panic!("{} does not compile", catalog.display()));
    apply::Desired::from_compiled(&compiled)
        .objects
        .iter()
        .map(|o| id(&o.r))
        .collect()
}

fn lease(k: &TestCluster) -> Value {
    serde_json::from_str(&k.kubectl_ok(&["get", "lease", LOCK, "-n", NAMESPACE, "-o", "json"]))
        .unwrap()
}

/// A Lease `LOCK` held by `holder`, renewed at `renewed`, for `seconds`.
fn hold_lock(k: &TestCluster, holder: &str, renewed: &str, seconds: u32) {
    if !k.kubectl(&["get", "namespace", NAMESPACE]).status.success() {
        k.kubectl_ok(&["create", "namespace", NAMESPACE]);
    }
    let lease = format!(
        r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"{LOCK}","namespace":"{NAMESPACE}"}},"spec":{{"holderIdentity":"{holder}","acquireTime":"{renewed}","renewTime":"{renewed}","leaseDurationSeconds":{seconds},"leaseTransitions":0}}}}"#
    );
    k.kubectl_stdin_ok(&["apply", "-f", "-"], lease.as_bytes());
}

fn now_micro() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Two `pitrix apply` processes of two versions of one catalog, started together: one waits
/// for the other's lock, both succeed, and the inventory ends as the last one's catalog with
/// every labelled live object in it.
#[test]
fn two_concurrent_applies_are_serialised_and_nothing_is_left_untracked() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    scaffold(&a);
    // Enough apps that an apply takes a while: the second process finds the lock held.
    for n in 1..=24 {
        common::copy_tree(&a.join("apps/hello"), &a.join(format!("apps/common{n}")));
    }
    common::copy_tree(&a, &b);
    // Each version has an app of its own: whichever applies last prunes the other's.
    common::copy_tree(&a.join("apps/hello"), &a.join("apps/alpha"));
    common::copy_tree(&b.join("apps/hello"), &b.join("apps/beta"));

    // Compiled beforehand (`--from`): both processes reach the lock within milliseconds.
    let out = |dir: &Path| {
        let out = dir.with_extension("out");
        let compiled = Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .arg("compile")
            .arg(dir)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(compiled.status.success(), "{compiled:?}");
        out
    };
    let (out_a, out_b) = (out(&a), out(&b));
    let from = |out: &Path| ["--from".to_string(), out.to_str().unwrap().to_string()];
    let (from_a, from_b) = (from(&out_a), from(&out_b));

    let started = Instant::now();
    let first = start_apply(&k, &a, &[&from_a[0], &from_a[1]]);
    let second = start_apply(&k, &b, &[&from_b[0], &from_b[1]]);
    let (code_a, report_a, err_a) = finish(first.wait_with_output().unwrap());
    let (code_b, report_b, err_b) = finish(second.wait_with_output().unwrap());
    eprintln!(
        "both applies done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code_a, 0, "{report_a:#}\n{err_a}");
    assert_eq!(code_b, 0, "{report_b:#}\n{err_b}");

    let waiting = "waiting for the apply lock of catalog my-store, held by pitrix apply on ";
    let (waited_a, waited_b) = (err_a.contains(waiting), err_b.contains(waiting));
    assert!(
        waited_a != waited_b,
        "exactly one apply should have waited for the other:\n--- a:\n{err_a}\n--- b:\n{err_b}"
    );
    let (last, last_report, gone) = if waited_a {
        (&a, &report_a, "beta")
    } else {
        (&b, &report_b, "alpha")
    };

    // The last one found the first one's inventory and pruned the first one's own app.
    let pruned: Vec<&str> = last_report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "pruned")
        .map(|r| r["object"]["name"].as_str().unwrap())
        .collect();
    assert!(pruned.contains(&gone), "{gone} not pruned: {last_report:#}");

    let tracked = inventory(&k);
    let want = compiled(last);
    let missing: Vec<_> = want.difference(&tracked).collect();
    assert!(
        missing.is_empty(),
        "the last writer's objects are not all tracked: {missing:?}"
    );
    let live = labelled(&k);
    let untracked: Vec<_> = live.difference(&tracked).collect();
    assert!(
        untracked.is_empty(),
        "live objects of the catalog are untracked (orphaned): {untracked:?}"
    );
    // Serialised, the last apply ends exactly with its own catalog.
    assert_eq!(tracked, want);
    assert!(
        !live.iter().any(|(_, _, name)| name == gone),
        "{gone} is still live"
    );

    // Both released the lock.
    let lease = lease(&k);
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{lease:#}"
    );
    assert!(lease["spec"]["leaseTransitions"].as_i64().unwrap() >= 1);
}

/// A lock someone else holds (fresh, long) makes apply give up after --lock-timeout, naming the
/// holder, with nothing written.
#[test]
fn a_lock_held_by_someone_else_is_refused_after_the_timeout_and_nothing_is_written() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog");
    scaffold(&catalog);
    let since = now_micro();
    hold_lock(&k, "someone-else", &since, 3600);

    let started = Instant::now();
    let (code, report, stderr) = apply(&k, &catalog, &["--lock-timeout", "2s"]);
    let took = started.elapsed();
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "refused only after {took:?}"
    );
    assert!(took >= Duration::from_secs(2), "did not wait: {took:?}");
    let why = report["refused"]
        .as_str()
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(
        why.contains("the apply lock of catalog my-store is held by someone-else since"),
        "{why}"
    );
    assert!(
        why.contains(&since[..19]),
        "the acquire time {since} is not named: {why}"
    );
    assert!(report["results"].as_array().unwrap().is_empty());
    assert!(stderr.contains("waiting for the apply lock"), "{stderr}");

    // Nothing written: no inventory, no object of the catalog; the lock is still theirs.
    assert!(
        !k.kubectl(&[
            "get",
            "configmap",
            "pitrix-inventory-my-store",
            "-n",
            NAMESPACE
        ])
        .status
        .success()
    );
    assert!(labelled(&k).is_empty(), "{:?}", labelled(&k));
    assert_eq!(lease(&k)["spec"]["holderIdentity"], "someone-else");

    // `--dry-run` reads only: it takes no lock.
    let (code, report, _) = apply(&k, &catalog, &["--dry-run", "--lock-timeout", "0"]);
    assert_eq!(code, 0, "{report:#}");
}

/// A lock whose holder stopped renewing it (crashed) is taken over once it has gone unrenewed
/// for its duration, and released after the apply.
#[test]
fn an_expired_lock_is_taken_over() {
    let k = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog");
    scaffold(&catalog);
    hold_lock(&k, "crashed-apply", "2020-01-01T00:00:00.000000Z", 1);

    let started = Instant::now();
    let (code, report, stderr) = apply(&k, &catalog, &[]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(!labelled(&k).is_empty());
    assert_eq!(inventory(&k), compiled(&catalog));
    let lease = lease(&k);
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "released after the apply: {lease:#}"
    );
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease:#}");
}

fn key(name: &str) -> ObjectKey {
    ObjectKey(ObjectRef {
        api_version: "application.kubesphere.io/v2".into(),
        kind: "Application".into(),
        namespace: None,
        name: name.into(),
        cluster: None,
    })
}

fn inv(names: &[&str]) -> ClusterInventory {
    ClusterInventory {
        objects: names.iter().map(|n| (key(n), String::new())).collect(),
    }
}

/// The inventory's precondition on the real API server: a write from a stale read is refused
/// (409), and the update loop reads again and merges again, keeping the other writer's entries.
#[test]
fn a_stale_inventory_write_is_refused_and_the_update_merges_again() {
    let k = cluster();
    let catalog = "cas";
    runtime().block_on(async {
        let c = client(&k).await;
        let write = |i: ClusterInventory, v: Option<String>| {
            let c = c.clone();
            async move { apply::write_inventory(&c, NAMESPACE, catalog, &i, v.as_deref()).await }
        };
        let read = || apply::read_inventory(&c, NAMESPACE, catalog);

        // None: only if there is none yet.
        let v1 = write(inv(&["a"]), None).await.unwrap();
        assert!(matches!(
            write(inv(&["x"]), None).await,
            Err(InventoryWriteError::Conflict(_))
        ));
        assert_eq!(read().await.unwrap(), (inv(&["a"]), Some(v1.clone())));

        // Writer 1 writes from its read; writer 2, from the same (now stale) read, is refused.
        let v2 = write(inv(&["a", "b"]), Some(v1.clone())).await.unwrap();
        assert_ne!(v1, v2);
        let refused = write(inv(&["a", "c"]), Some(v1.clone())).await;
        assert!(
            matches!(refused, Err(InventoryWriteError::Conflict(_))),
            "{refused:?}"
        );
        assert_eq!(read().await.unwrap().0, inv(&["a", "b"]));

        // The widening of an apply that read {a} at v1: refused once, merged over a fresh read.
        let mut merges = 0;
        let current = inv(&["a", "c"]).objects;
        let written = apply::update_inventory(
            &c,
            NAMESPACE,
            catalog,
            Some((inv(&["a"]), Some(v1.clone()))),
            |live| {
                merges += 1;
                apply::widened_inventory(live, &current)
            },
        )
        .await
        .unwrap();
        assert_eq!(merges, 2, "one refused write, one merged again");
        assert_eq!(written, inv(&["a", "b", "c"]));
        let (now, v3) = read().await.unwrap();
        assert_eq!(now, inv(&["a", "b", "c"]));

        // Reconcile's status annotations (another field manager) move the version too: the
        // final write of an apply that pruned `a` and tracks `c` merges over them, keeping `b`
        // and the annotation.
        k.kubectl_ok(&[
            "annotate",
            "configmap",
            "pitrix-inventory-cas",
            "-n",
            NAMESPACE,
            "pitrix.io/last-sync-result=Synced",
        ]);
        let mut merges = 0;
        let pruned: BTreeSet<ObjectKey> = [key("a")].into();
        let tracked = inv(&["c"]).objects;
        let written =
            apply::update_inventory(&c, NAMESPACE, catalog, Some((now.clone(), v3)), |live| {
                merges += 1;
                apply::settled_inventory(live, &pruned, &tracked)
            })
            .await
            .unwrap();
        assert_eq!(merges, 2);
        assert_eq!(written, inv(&["b", "c"]));
        assert_eq!(read().await.unwrap().0, inv(&["b", "c"]));
        let cm: Value = serde_json::from_str(&k.kubectl_ok(&[
            "get",
            "configmap",
            "pitrix-inventory-cas",
            "-n",
            NAMESPACE,
            "-o",
            "json",
        ]))
        .unwrap();
        assert_eq!(
            cm["metadata"]["annotations"]["pitrix.io/last-sync-result"],
            "Synced"
        );
        assert_eq!(cm["metadata"]["labels"]["pitrix.io/inventory"], "cas");

        // Nothing to change: nothing written.
        let (_, before) = read().await.unwrap();
        apply::update_inventory(&c, NAMESPACE, catalog, None, |live| live.clone())
            .await
            .unwrap();
        assert_eq!(read().await.unwrap().1, before);
    });
}
