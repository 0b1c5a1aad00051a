//! `pitrix reconcile` under faults, on the real test API server: kube-apiserver restarted
//! during a sync, etcd stopped for a while, SIGTERM during a sync, and two replicas with one
//! leader failing over.

use crate::cluster;
use crate::reconcile_support;

use std::time::{Duration, Instant};

use cluster::TestCluster;
use reconcile_support::*;
use serde_json::Value;

fn cluster() -> TestCluster {
    let k = TestCluster::start();
    install_crds(&k);
    k
}

/// Number of the catalog's objects of `resource` in the cluster.
fn count(k: &TestCluster, resource: &str) -> usize {
    let out = k.kubectl(&[
        "get",
        resource,
        "-A",
        "-l",
        "pitrix.io/catalog=my-store",
        "-o",
        "json",
    ]);
    if !out.status.success() {
        return 0;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["items"].as_array().map_or(0, Vec::len)
}

fn lease_holder(k: &TestCluster) -> String {
    let out = k.kubectl(&[
        "get",
        "lease",
        "pitrix-reconcile",
        "-n",
        INVENTORY_NS,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until the log shows that a sync started.
fn wait_sync_started(r: &Reconciler) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !r.log_text().contains("syncing ") {
        assert!(
            Instant::now() < deadline,
            "no sync started:\n{}",
            r.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn apiserver_restarted_during_a_sync_reconnects_and_converges() {
    let mut k = cluster();
    let repo = Repo::with_apps(60);
    let head = repo.head();
    let r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync_started(&r);
    // Let the first objects land, then pull the API server from under the sync.
    wait_for(Duration::from_secs(20), "the first objects", || {
        (count(&k, CATEGORIES) > 0).then_some(())
    });
    k.stop_apiserver();
    std::thread::sleep(Duration::from_secs(3));
    k.start_apiserver();

    let status = wait_sync(&k, &head, "Synced", Duration::from_secs(45));
    assert_eq!(status["pitrix.io/applied-revision"], head.as_str());
    assert_eq!(count(&k, APPS), 61);
    assert_eq!(count(&k, VERSIONS), 61);
    assert_eq!(count(&k, RELEASES), 1);
    let m = r.metrics();
    let errors: f64 = m
        .lines()
        .filter(|l| l.starts_with("pitrix_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        errors >= 1.0,
        "the outage left no trace in the metrics:\n{m}"
    );

    // The watches are back: drift is corrected again.
    k.kubectl_ok(&[
        "patch",
        CATEGORIES,
        "tools",
        "--type=merge",
        "-p",
        r#"{"spec":{"icon":"hacked"}}"#,
    ]);
    wait_for(
        Duration::from_secs(15),
        "drift corrected after the restart",
        || (get(&k, CATEGORIES, "tools").unwrap()["spec"]["icon"] == "tool").then_some(()),
    );
}

#[test]
fn etcd_stopped_for_a_while_errors_are_reported_and_it_resumes() {
    let mut k = cluster();
    let repo = Repo::scaffold();
    let head = repo.head();
    let mut r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&k, &head, "Synced", Duration::from_secs(30));

    k.stop_etcd();
    // The leader cannot renew its lease: it steps down, says why, and stays alive.
    wait_for(Duration::from_secs(20), "the outage reported", || {
        let m = r.metrics();
        (metric(&m, "pitrix_errors_total{stage=\"lease\"}").is_some_and(|v| v >= 1.0)
            && metric(&m, "pitrix_leader") == Some(0.0))
        .then_some(())
    });
    wait_for(Duration::from_secs(10), "/readyz failing", || {
        (r.http("/readyz").ok()?.0 == 503).then_some(())
    });
    assert_eq!(r.http("/healthz").unwrap().0, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert!(r.running(), "pitrix exited during the outage");
    k.start_etcd();

    // Back: it leads again and applies the next commit.
    repo.write(
        "categories/tools.yaml",
        &repo
            .read("categories/tools.yaml")
            .replace("icon: tool", "icon: wrench"),
    );
    let next = repo.commit("a new icon");
    wait_sync(&k, &next, "Synced", Duration::from_secs(45));
    assert_eq!(
        get(&k, CATEGORIES, "tools").unwrap()["spec"]["icon"],
        "wrench"
    );
    assert!(r.is_leader());
    assert_eq!(r.http("/readyz").unwrap().0, 200);
    assert!(r.log_text().contains("stepping down"));
}

#[test]
fn sigterm_during_a_sync_lets_it_finish_releases_the_lease_and_exits_zero() {
    let k = cluster();
    let repo = Repo::with_apps(60);
    let head = repo.head();
    let mut r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_for(Duration::from_secs(20), "the first objects", || {
        (count(&k, CATEGORIES) > 0).then_some(())
    });
    r.sigterm();
    let status = r.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}:\n{}", r.log_text());
    let log = r.log_text();
    assert!(log.contains("letting the sync in flight finish"), "{log}");
    assert!(log.contains("lease pitrix-reconcile released"), "{log}");
    // The sync it was in completed before the exit.
    let s = sync_status(&k);
    assert_eq!(s["pitrix.io/last-sync-result"], "Synced", "{s:#}");
    assert_eq!(s["pitrix.io/applied-revision"], head.as_str());
    assert_eq!(count(&k, VERSIONS), 61);
    assert_eq!(lease_holder(&k), "");
}

#[test]
fn two_replicas_one_leader_and_failover_within_the_lease_duration() {
    let k = cluster();
    let repo = Repo::scaffold();
    let head = repo.head();
    let mut a = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&k, &head, "Synced", Duration::from_secs(30));
    let b = Reconciler::start("b", &k.kubeconfig, repo.path(), FAST_LEASE);
    // One leader: a keeps the lease, b stands by, ready, and never syncs.
    for _ in 0..10 {
        assert!(a.is_leader());
        assert_eq!(b.metric("pitrix_leader"), Some(0.0));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(lease_holder(&k), "a");
    assert_eq!(b.http("/readyz").unwrap().0, 200);
    assert_eq!(b.metric("pitrix_syncs_total{result=\"synced\"}"), None);
    assert!(b.log_text().contains("standing by"));

    // The leader dies without a word: b takes over once the lease runs out (3 s).
    a.sigkill();
    let killed = Instant::now();
    wait_for(Duration::from_secs(10), "b to lead", || {
        b.is_leader().then_some(())
    });
    let failover = killed.elapsed();
    eprintln!("failover after SIGKILL: {failover:?} (lease duration 3s, retry period 500ms)");
    assert!(
        failover <= Duration::from_millis(4500),
        "failover took {failover:?}"
    );
    assert_eq!(lease_holder(&k), "b");
    repo.write(
        "categories/tools.yaml",
        &repo
            .read("categories/tools.yaml")
            .replace("icon: tool", "icon: wrench"),
    );
    let next = repo.commit("a new icon");
    wait_sync(&k, &next, "Synced", Duration::from_secs(20));

    // A graceful stop hands over at once: b releases the lease, a new replica takes it.
    let c = Reconciler::start("c", &k.kubeconfig, repo.path(), FAST_LEASE);
    std::thread::sleep(Duration::from_secs(1));
    assert!(!c.is_leader());
    let mut b = b;
    b.sigterm();
    let stopped = Instant::now();
    assert!(b.wait_exit(Duration::from_secs(15)).success());
    wait_for(Duration::from_secs(10), "c to lead", || {
        c.is_leader().then_some(())
    });
    let handover = stopped.elapsed();
    eprintln!("handover after SIGTERM: {handover:?}");
    assert!(
        handover < Duration::from_secs(3),
        "handover took {handover:?}"
    );
    assert_eq!(lease_holder(&k), "c");
}

/// Sum of the drift-correction latency histogram.
fn correction_seconds(r: &Reconciler) -> f64 {
    let m = r.metrics();
    m.lines()
        .find(|l| l.starts_with("pitrix_drift_correction_duration_seconds_sum"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no drift latency histogram:\n{m}"))
}

#[test]
fn drift_after_an_apiserver_restart_is_seen_at_once_and_timed_from_the_change() {
    let mut k = cluster();
    let repo = Repo::scaffold();
    let head = repo.head();
    let r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&k, &head, "Synced", Duration::from_secs(45));

    // Drift right after a restart: the watches start again with a fresh list at once (a
    // resumed watch with backoff left it unseen for 30–40 s).
    k.stop_apiserver();
    std::thread::sleep(Duration::from_secs(3));
    k.start_apiserver();
    k.kubectl_ok(&[
        "patch",
        CATEGORIES,
        "tools",
        "--type=merge",
        "-p",
        r#"{"spec":{"icon":"hacked"}}"#,
    ]);
    let t = Instant::now();
    wait_for(
        Duration::from_secs(12),
        "drift corrected soon after the restart",
        || (get(&k, CATEGORIES, "tools").unwrap()["spec"]["icon"] == "tool").then_some(()),
    );
    eprintln!("corrected {:?} after the restart", t.elapsed());

    // A change the controller hears of late (it was stopped) counts its whole delay: the
    // latency is taken from the change's own time, not from the event's arrival.
    let before = correction_seconds(&r);
    let pid = r.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    k.kubectl_ok(&[
        "patch",
        CATEGORIES,
        "tools",
        "--type=merge",
        "-p",
        r#"{"spec":{"icon":"hacked-again"}}"#,
    ]);
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for(Duration::from_secs(15), "the late drift corrected", || {
        (get(&k, CATEGORIES, "tools").unwrap()["spec"]["icon"] == "tool").then_some(())
    });
    let latency = wait_for(Duration::from_secs(5), "the latency recorded", || {
        let sum = correction_seconds(&r);
        (sum > before).then_some(sum - before)
    });
    assert!(
        latency >= 3.5,
        "the drift waited ~5 s unheard, but its latency was recorded as {latency:.2} s"
    );
}
