//! Smoke test of the real-Kubernetes harness (crates/testkit/src/cluster.rs): the cluster starts, kubectl
//! talks to it, server-side apply works for a large ConfigMap, pitrix's CRDs install and their
//! custom objects accept status writes through the status subresource; components can be stopped
//! and restarted.

use crate::cluster;

use std::process::Command;

use base64::Engine as _;
use cluster::{TestCluster, unique_name};
use serde_json::{Value, json};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Deterministic, incompressible bytes (xorshift64*).
fn pseudo_random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn shared_cluster_serves_pitrix_crds_and_large_configmaps() {
    let k = cluster::shared();

    // The server answers, with a real version.
    let version = json_of(&k.kubectl_ok(&["version", "-o", "json"]));
    let server_version = version["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no serverVersion in {version}"));
    assert!(server_version.starts_with("v1."), "{server_version}");
    if std::env::var_os("PITRIX_TEST_KUBECONFIG").is_none() {
        assert_eq!(server_version, cluster::BUILT_VERSION);
    }

    // A namespace of our own.
    let ns = k.create_namespace("pitrix-smoke");
    let phase = k.kubectl_ok(&["get", "namespace", &ns, "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Active");

    // Server-side apply of a ~900 KB binaryData ConfigMap, read back byte for byte.
    let payload = pseudo_random_bytes(900 * 1024, 0x5eed_1234_abcd_0001);
    let b64 = base64::engine::general_purpose::STANDARD;
    let configmap = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": ns},
        "binaryData": {"blob.bin": b64.encode(&payload)},
    });
    let applied = k.kubectl_stdin_ok(
        &[
            "apply",
            "--server-side",
            "--field-manager=pitrix-smoke",
            "-f",
            "-",
            "-o",
            "name",
        ],
        configmap.to_string().as_bytes(),
    );
    assert_eq!(applied.trim(), "configmap/big");
    let read = json_of(&k.kubectl_ok(&[
        "get",
        "configmap",
        "big",
        "-n",
        &ns,
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    let stored = b64
        .decode(
            read["binaryData"]["blob.bin"]
                .as_str()
                .expect("binaryData.blob.bin"),
        )
        .expect("base64");
    assert_eq!(stored.len(), payload.len());
    assert!(stored == payload, "binaryData changed on the way");
    let managers: Vec<&str> = read["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"pitrix-smoke"), "{managers:?}");
    // Re-applying the same object is a no-op: same resourceVersion.
    k.kubectl_stdin_ok(
        &[
            "apply",
            "--server-side",
            "--field-manager=pitrix-smoke",
            "-f",
            "-",
        ],
        configmap.to_string().as_bytes(),
    );
    let again = json_of(&k.kubectl_ok(&["get", "configmap", "big", "-n", &ns, "-o", "json"]));
    assert_eq!(
        again["metadata"]["resourceVersion"],
        read["metadata"]["resourceVersion"]
    );

    // pitrix's CRDs, as `pitrix crds` prints them, applied server-side and Established.
    let crds = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("crds")
        .output()
        .expect("run pitrix crds");
    assert!(
        crds.status.success(),
        "pitrix crds failed: {}",
        String::from_utf8_lossy(&crds.stderr)
    );
    let applied = k.kubectl_stdin_ok(
        &["apply", "--server-side", "-f", "-", "-o", "name"],
        &crds.stdout,
    );
    let crd_names: Vec<&str> = applied
        .lines()
        .map(|l| {
            l.strip_prefix("customresourcedefinition.apiextensions.k8s.io/")
                .unwrap_or_else(|| panic!("unexpected object applied: {l}"))
        })
        .collect();
    assert!(
        crd_names.contains(&"categories.application.kubesphere.io"),
        "{crd_names:?}"
    );
    for name in &crd_names {
        k.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{name}"),
        ]);
    }

    // A Category (cluster-scoped), its status written through the status subresource.
    let category = unique_name("smoke-category");
    let object = json!({
        "apiVersion": "application.kubesphere.io/v2",
        "kind": "Category",
        "metadata": {"name": category},
        "spec": {"icon": "database"},
    });
    k.kubectl_stdin_ok(
        &[
            "apply",
            "--server-side",
            "--field-manager=pitrix-smoke",
            "-f",
            "-",
        ],
        object.to_string().as_bytes(),
    );
    let resource = format!("categories.application.kubesphere.io/{category}");
    k.kubectl_ok(&[
        "patch",
        &resource,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"total":3}}"#,
    ]);
    // Through the main resource, status is ignored (the subresource is enabled).
    k.kubectl_ok(&[
        "patch",
        &resource,
        "--type=merge",
        "-p",
        r#"{"status":{"total":99}}"#,
    ]);
    let got = json_of(&k.kubectl_ok(&["get", &resource, "-o", "json"]));
    assert_eq!(got["apiVersion"], "application.kubesphere.io/v2");
    assert_eq!(got["kind"], "Category");
    assert_eq!(got["spec"], json!({"icon": "database"}));
    assert_eq!(got["status"], json!({"total": 3}));
    let short = k.kubectl_ok(&["get", "appctg", &category, "-o", "jsonpath={.status.total}"]);
    assert_eq!(short, "3");

    // Server-side apply still rejects fields the schema does not declare.
    let bad = json!({
        "apiVersion": "application.kubesphere.io/v2",
        "kind": "Category",
        "metadata": {"name": unique_name("smoke-bad")},
        "spec": {"icon": "x", "notAField": true},
    });
    let out = k.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=pitrix-smoke",
            "-f",
            "-",
        ],
        bad.to_string().as_bytes(),
    );
    assert!(
        !out.status.success(),
        "an undeclared field was accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    k.kubectl_ok(&["delete", &resource, "--wait=true"]);
    k.kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
fn shared_cluster_runs_controllers() {
    let k = cluster::shared();
    // The serviceaccount controller gives every new namespace a `default` ServiceAccount.
    let ns = k.create_namespace("pitrix-smoke-ctl");
    let mut found = false;
    for _ in 0..100 {
        if k.kubectl(&["get", "serviceaccount", "default", "-n", &ns])
            .status
            .success()
        {
            found = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(found, "no default ServiceAccount in {ns} after 20 s");
    // The namespace controller finishes namespace deletion.
    k.kubectl_ok(&["delete", "namespace", &ns, "--timeout=60s"]);
    let out = k.kubectl(&["get", "namespace", &ns]);
    assert!(!out.status.success(), "namespace {ns} still exists");
}

#[test]
fn private_cluster_survives_component_restarts() {
    if std::env::var_os("PITRIX_TEST_KUBECONFIG").is_some() {
        eprintln!("PITRIX_TEST_KUBECONFIG is set: components cannot be restarted, nothing to do");
        return;
    }
    let mut k = TestCluster::start();
    let dir = k.dir().expect("a local cluster has a dir").to_path_buf();
    k.kubectl_ok(&["create", "configmap", "before", "--from-literal=k=v"]);

    // apiserver down: requests fail; back up on the same port: data is still there.
    k.stop_apiserver();
    assert!(!k.is_ready());
    let out = k.kubectl(&["get", "configmap", "before", "--request-timeout=3s"]);
    assert!(!out.status.success(), "apiserver answered while stopped");
    k.start_apiserver();
    let v = k.kubectl_ok(&["get", "configmap", "before", "-o", "jsonpath={.data.k}"]);
    assert_eq!(v, "v");

    // etcd down: reads fail; back up: the apiserver reconnects and the data is intact.
    k.stop_etcd();
    let out = k.kubectl(&["get", "configmap", "before", "--request-timeout=5s"]);
    assert!(!out.status.success(), "read succeeded with etcd stopped");
    k.start_etcd();
    let mut value = String::new();
    for _ in 0..150 {
        let out = k.kubectl(&[
            "get",
            "configmap",
            "before",
            "-o",
            "jsonpath={.data.k}",
            "--request-timeout=5s",
        ]);
        if out.status.success() {
            value = String::from_utf8_lossy(&out.stdout).into_owned();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(value, "v", "data not readable after etcd restart");

    // Dropping stops everything and removes the directory.
    drop(k);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
