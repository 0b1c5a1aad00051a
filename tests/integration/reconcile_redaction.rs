//! `pitrix reconcile` against a real kube-apiserver + etcd (pitrix-testkit's cluster): a commit that does
//! not compile, whose errors point at lines holding secrets under the key names the redaction
//! policy knows, is reported — status annotation, CompileFailed Event, log — with every secret
//! hidden.

use crate::cluster;
use crate::reconcile_support;

use std::time::Duration;

use cluster::TestCluster;
use reconcile_support::*;

const SECRETS: [&str; 4] = [
    "planted-reconcile-connstr",
    "planted-reconcile-auth",
    "planted-reconcile-keydata",
    "planted-reconcile-userinfo",
];

#[test]
fn compile_failures_are_reported_with_secrets_hidden() {
    let k = TestCluster::start();
    install_crds(&k);
    let repo = Repo::scaffold();
    let first = repo.head();
    let r = Reconciler::start("a", &k.kubeconfig, repo.path(), FAST_LEASE);
    wait_sync(&k, &first, "Synced", Duration::from_secs(30));

    // Unknown keys (errors shown with their source line) that hold secrets, one per file.
    let category = repo.read("categories/tools.yaml");
    let planted = [
        format!("connectionString: Server=db;Password={}\n", SECRETS[0]),
        format!("auth: {}\n", SECRETS[1]),
        format!("client-key-data: {}\n", SECRETS[2]),
        format!("homepage: https://bot:{}@git.example.com/x\n", SECRETS[3]),
    ];
    for (i, line) in planted.iter().enumerate() {
        repo.write(
            &format!("categories/planted{i}.yaml"),
            &format!("{category}{line}"),
        );
    }
    let bad = repo.commit("secrets under unknown keys");
    let status = wait_sync(&k, &bad, "CompileFailed", Duration::from_secs(20));
    let message = status["pitrix.io/last-sync-message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("connectionString") && message.contains("***"),
        "the errors are reported, redacted: {message}"
    );
    let events = wait_for(Duration::from_secs(10), "the CompileFailed event", || {
        let e = events(&k);
        e.iter()
            .any(|(reason, _)| reason == "CompileFailed")
            .then_some(e)
    });
    let log = r.log_text();
    assert!(log.contains("does not compile"), "{log}");
    for s in SECRETS {
        assert!(
            !message.contains(s),
            "{s} in the status annotation: {message}"
        );
        for (reason, note) in &events {
            assert!(!note.contains(s), "{s} in Event {reason}: {note}");
        }
        assert!(!log.contains(s), "{s} in the log:\n{log}");
    }
}
