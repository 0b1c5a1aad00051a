//! The `standalone` target: the Helm executor Job + ConfigMap KubeSphere's controller would
//! create (reference §5.4), checked field by field, and run on a real API server: the release
//! status follows the Job, a changed release gets a new Job and the old one goes, a removed
//! release gets its uninstall Job.

use crate::cluster;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use cluster::TestCluster;
use pitrix::compile::Object;
use serde_json::Value;

fn standalone_catalog() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog");
    pitrix::scaffold::new_catalog(&catalog).unwrap();
    let settings = catalog.join("pitrix.toml");
    let text = std::fs::read_to_string(&settings)
        .unwrap()
        .replace(r#"target = "kubesphere""#, r#"target = "standalone""#);
    std::fs::write(&settings, text).unwrap();
    // The standalone target installs charts it holds; the synced repo stays, unreleased.
    tmp
}

fn job_and_config_map(catalog: &Path) -> (Value, Value, Value) {
    let (compiled, _) = pitrix::pipeline::build(catalog).expect("compiles");
    let find = |kind: &str, prefix: &str| {
        compiled
            .objects
            .iter()
            .find(|o| o.kind() == kind && o.name().starts_with(prefix))
            .map(Object::to_json)
            .unwrap_or_else(|| panic!("no {kind} {prefix}*"))
    };
    (
        find("Job", "helm-install-hello-"),
        find("ConfigMap", "helm-install-hello-"),
        find("ApplicationRelease", "hello"),
    )
}

/// What the standalone Job is beyond KubeSphere's (whose every other field
/// `tests/integration/kubesphere_controllers.rs` compares with the Job KubeSphere's own controller makes): a name from
/// the spec hash instead of a random suffix, and the kubeconfig from a Secret, never in the
/// output.
#[test]
fn the_executor_job_is_named_by_its_spec_and_carries_no_credentials() {
    let tmp = standalone_catalog();
    let (job, cm, release) = job_and_config_map(&tmp.path().join("catalog"));
    let b64 = base64::engine::general_purpose::STANDARD;

    // Name: helm-install-<release>-<6 of the spec hash>, in the release's namespace.
    let spec: pitrix::objects::ApplicationReleaseSpec =
        serde_json::from_value(release["spec"].clone()).unwrap();
    let hash = pitrix::compile::executor::spec_hash(&spec);
    let name = format!("helm-install-hello-{}", &hash[..6]);
    assert_eq!(job["metadata"]["name"], name.as_str());
    assert!(name.len() <= 63);
    assert_eq!(job["metadata"]["namespace"], "default");
    assert_eq!(job["metadata"]["labels"]["name"], name.as_str());

    // The kubeconfig comes from a Secret in a projected volume beside the ConfigMap.
    let volumes = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let source = &volumes[0]["projected"];
    assert_eq!(source["sources"][0]["configMap"]["name"], name.as_str());
    assert_eq!(
        source["sources"][1]["secret"]["items"][0]["path"],
        "kube.config"
    );
    let data = cm["binaryData"].as_object().unwrap();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["ca-helm.crt", "hello.tgz", "values.yaml"]);
    assert_eq!(
        b64.decode(data["values.yaml"].as_str().unwrap()).unwrap(),
        b64.decode(release["spec"]["values"].as_str().unwrap())
            .unwrap()
    );
}

/// With `template` as the catalog's executor template, validation reports a template error in
/// it, at the line holding `needle`.
fn assert_template_error_at(catalog: &Path, template: &str, needle: &str) {
    std::fs::write(catalog.join("templates/executor-job.yaml.j2"), template).unwrap();
    let (_, diags) = pitrix::pipeline::check(catalog);
    let d = diags
        .iter()
        .find(|d| d.code.as_str() == "template")
        .unwrap_or_else(|| panic!("no template diagnostic: {diags:#?}"));
    assert_eq!(
        d.file.as_deref(),
        Some(Path::new("templates/executor-job.yaml.j2"))
    );
    let line = template.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1;
    assert_eq!(d.pos.unwrap().line, line, "{d:?}");
}

#[test]
fn a_catalog_template_overrides_the_built_in_one_and_errors_are_positioned() {
    let tmp = standalone_catalog();
    let catalog = tmp.path().join("catalog");
    std::fs::create_dir_all(catalog.join("templates")).unwrap();
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/executor-job.yaml.j2"),
    )
    .unwrap();
    let custom = builtin.replace("{{ image|tojson }}", "\"registry.acme.example/helm:3.14\"");
    std::fs::write(catalog.join("templates/executor-job.yaml.j2"), &custom).unwrap();
    let (job, _, _) = job_and_config_map(&catalog);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.acme.example/helm:3.14"
    );

    // An undefined name: a template diagnostic at its line.
    let broken = custom.replace(
        "namespace: {{ job.namespace }}",
        "namespace: {{ job.nmespace }}",
    );
    assert_template_error_at(&catalog, &broken, "job.nmespace");

    // An unknown filter: a template diagnostic at its line.
    let bad_filter = custom.replace(
        "namespace: {{ job.namespace }}",
        "namespace: {{ job.namespace|shout }}",
    );
    assert_template_error_at(&catalog, &bad_filter, "|shout");

    // An error only in the uninstall branch is caught now, not when a release is removed.
    let bad_uninstall = custom.replace(
        "helm uninstall {{ release.name }}",
        "helm uninstall {{ release.nme }}",
    );
    assert_ne!(bad_uninstall, custom);
    std::fs::write(
        catalog.join("templates/executor-job.yaml.j2"),
        &bad_uninstall,
    )
    .unwrap();
    let (_, diags) = pitrix::pipeline::check(&catalog);
    assert!(
        diags.iter().any(|d| d.code.as_str() == "template"),
        "{diags:#?}"
    );

    // A template that yields no valid Job: refused too.
    let invalid = custom.replace("backoffLimit: 0", "backoffLimit: 6");
    std::fs::write(catalog.join("templates/executor-job.yaml.j2"), &invalid).unwrap();
    let (_, diags) = pitrix::pipeline::check(&catalog);
    assert!(
        diags
            .iter()
            .any(|d| d.code.as_str() == "template" && d.message.contains("backoffLimit")),
        "{diags:#?}"
    );
}

fn apply(k: &TestCluster, catalog: &Path) -> Value {
    apply_with(&k.kubeconfig, catalog)
}

fn apply_with(kubeconfig: &Path, catalog: &Path) -> Value {
    apply_args(kubeconfig, &[catalog.as_os_str()])
}

/// `pitrix apply ARGS --kubeconfig K --output json`, which must succeed; its report.
fn apply_args(kubeconfig: &Path, args: &[&std::ffi::OsStr]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("apply")
        .args(args)
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    report
}

fn release_status(k: &TestCluster) -> Value {
    status_of(k, "hello")
}

fn status_of(k: &TestCluster, release: &str) -> Value {
    let v: Value = serde_json::from_str(&k.kubectl_ok(&[
        "get",
        "applicationreleases.application.kubesphere.io",
        release,
        "-o",
        "json",
    ]))
    .unwrap();
    v["status"].clone()
}

fn jobs(k: &TestCluster) -> Vec<String> {
    let v: Value =
        serde_json::from_str(&k.kubectl_ok(&["get", "jobs", "-n", "default", "-o", "json"]))
            .unwrap();
    let mut names: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn on_a_cluster_the_release_follows_its_job() {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    let tmp = standalone_catalog();
    let catalog = tmp.path().join("catalog");

    apply(&k, &catalog);
    let first = jobs(&k);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with("helm-install-hello-"));
    k.kubectl_ok(&["get", "configmap", &first[0], "-n", "default"]);
    assert_eq!(release_status(&k)["state"], "creating");
    assert_eq!(release_status(&k)["installJobName"], first[0].as_str());

    // The Job controller reports success: the release turns active.
    k.complete_job("default", &first[0]);
    apply(&k, &catalog);
    assert_eq!(release_status(&k)["state"], "active");

    // A changed release: a new Job; the old, finished one goes.
    let release = catalog.join("releases/host/default/hello.yaml");
    let text = std::fs::read_to_string(&release).unwrap() + "  replicaCount: 5\n";
    std::fs::write(&release, text).unwrap();
    apply(&k, &catalog);
    let second = jobs(&k);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first);
    assert_eq!(release_status(&k)["state"], "creating");

    // It fails, with Helm's message.
    let failed = r#"{"status":{"failed":1,"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Error: UPGRADE FAILED: timed out waiting for the condition"}]}}"#;
    k.kubectl_ok(&[
        "patch",
        "job",
        &second[0],
        "-n",
        "default",
        "--subresource=status",
        "--type=merge",
        "-p",
        failed,
    ]);
    apply(&k, &catalog);
    let status = release_status(&k);
    assert_eq!(status["state"], "failed");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("UPGRADE FAILED"),
        "{status}"
    );

    // The release leaves the catalog: its uninstall Job runs.
    std::fs::remove_dir_all(catalog.join("releases")).unwrap();
    let report = apply(&k, &catalog);
    let names = jobs(&k);
    assert!(
        names.iter().any(|n| n.starts_with("helm-uninstall-hello-")),
        "{names:?} {report:#}"
    );
    let uninstall = names
        .iter()
        .find(|n| n.starts_with("helm-uninstall-hello-"))
        .unwrap();
    let job: Value = serde_json::from_str(
        &k.kubectl_ok(&["get", "job", uninstall, "-n", "default", "-o", "json"]),
    )
    .unwrap();
    assert_eq!(
        job["metadata"]["annotations"]["executor.kubesphere.io/action"],
        "uninstall"
    );
    let script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
        .as_str()
        .unwrap();
    assert!(
        script.ends_with(
            "helm uninstall hello --namespace default --kubeconfig kube.config --debug --wait"
        ),
        "{script}"
    );
}

/// `[clusters.edge] context = "edge"`: the App Store's objects and every status stay on the
/// host; the edge release's executor Job and ConfigMap run on the edge cluster, its status
/// follows that Job, and its removal runs the uninstall Job there.
#[test]
fn executor_jobs_go_to_their_release_s_cluster() {
    let host = TestCluster::start();
    let edge = TestCluster::start();
    host.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    let tmp = standalone_catalog();
    let catalog = tmp.path().join("catalog");
    let kubeconfig = tmp.path().join("kubeconfig");
    cluster::two_cluster_kubeconfig(&host, &edge, &kubeconfig);
    let settings = catalog.join("pitrix.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, text + "\n[clusters.edge]\ncontext = \"edge\"\n").unwrap();
    let release =
        std::fs::read_to_string(catalog.join("releases/host/default/hello.yaml")).unwrap();
    std::fs::create_dir_all(catalog.join("releases/edge/default")).unwrap();
    std::fs::write(
        catalog.join("releases/edge/default/hello-edge.yaml"),
        release,
    )
    .unwrap();

    apply_with(&kubeconfig, &catalog);
    let on_host = jobs(&host);
    let on_edge = jobs(&edge);
    assert_eq!(on_host.len(), 1, "{on_host:?}");
    assert!(on_host[0].starts_with("helm-install-hello-") && !on_host[0].contains("edge"));
    assert_eq!(on_edge.len(), 1, "{on_edge:?}");
    assert!(
        on_edge[0].starts_with("helm-install-hello-edge-"),
        "{on_edge:?}"
    );
    edge.kubectl_ok(&["get", "configmap", &on_edge[0], "-n", "default"]);
    assert!(
        !edge
            .kubectl(&["get", "configmap", &on_host[0], "-n", "default"])
            .status
            .success()
    );
    // The App Store stays on the host: the edge cluster has not even the CRDs.
    host.kubectl_ok(&[
        "get",
        "applicationreleases.application.kubesphere.io",
        "hello-edge",
    ]);
    assert_eq!(
        status_of(&host, "hello-edge")["installJobName"],
        on_edge[0].as_str()
    );
    assert_eq!(status_of(&host, "hello-edge")["state"], "creating");

    // The edge Job succeeds: its release (on the host) turns active; the host's is unmoved.
    edge.complete_job("default", &on_edge[0]);
    let report = apply_with(&kubeconfig, &catalog);
    assert_eq!(status_of(&host, "hello-edge")["state"], "active");
    assert_eq!(status_of(&host, "hello")["state"], "creating");
    // Nothing else was written: the edge objects were found where they live.
    let writes: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !matches!(r["outcome"].as_str(), Some("unchanged" | "statusWritten")))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");

    // `pitrix diff` looks on both clusters too: nothing to change.
    let diff = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("diff")
        .arg(&catalog)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--exit-code"])
        .output()
        .unwrap();
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );

    // The reviewed output applies the same way: its inventory carries the contexts and each
    // member object's cluster.
    let out = tmp.path().join("out");
    let compiled = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("compile")
        .arg(&catalog)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(compiled.status.success(), "{compiled:?}");
    assert!(out.join("clusters/edge/kustomization.yaml").is_file());
    let report = apply_args(&kubeconfig, &["--from".as_ref(), out.as_os_str()]);
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "unchanged"),
        "{report:#}"
    );

    // The host's own kubeconfig knows no `edge` context: the edge objects fail, and say why;
    // `--member-kubeconfig` supplies it (pitrix in the host cluster, members from a Secret).
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .arg("apply")
            .arg(&catalog)
            .args([
                "--kubeconfig",
                host.kubeconfig.to_str().unwrap(),
                "--output",
                "json",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let without = run(&[]);
    assert_eq!(without.status.code(), Some(1));
    let text = String::from_utf8_lossy(&without.stdout);
    assert!(text.contains("cluster `edge` (context `edge`)"), "{text}");
    let with = run(&["--member-kubeconfig", kubeconfig.to_str().unwrap()]);
    assert_eq!(
        with.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&with.stdout)
    );

    // The edge release leaves the catalog: its finished Job is pruned from the edge cluster
    // and the uninstall Job runs there.
    std::fs::remove_dir_all(catalog.join("releases/edge")).unwrap();
    let report = apply_with(&kubeconfig, &catalog);
    let on_edge = jobs(&edge);
    assert_eq!(on_edge.len(), 1, "{on_edge:?} {report:#}");
    assert!(
        on_edge[0].starts_with("helm-uninstall-hello-edge-"),
        "{on_edge:?}"
    );
    assert_eq!(jobs(&host), on_host, "the host's Job stays");
    assert!(
        !host
            .kubectl(&[
                "get",
                "applicationreleases.application.kubesphere.io",
                "hello-edge"
            ])
            .status
            .success()
    );
}

/// Runs an executor Job's shell command here, as its pod would: the ConfigMap's files and the
/// kubeconfig in the source mount, kubectl on PATH. (The test cluster has no kubelet.)
fn run_executor(k: &TestCluster, job: &str) -> std::process::Output {
    let job_json: Value =
        serde_json::from_str(&k.kubectl_ok(&["get", "job", job, "-n", "default", "-o", "json"]))
            .unwrap();
    let cm: Value = serde_json::from_str(&k.kubectl_ok(&[
        "get",
        "configmap",
        job,
        "-n",
        "default",
        "-o",
        "json",
    ]))
    .unwrap();
    let pod = tempfile::tempdir().unwrap();
    let (source, work, bin) = (
        pod.path().join("source"),
        pod.path().join("work"),
        pod.path().join("bin"),
    );
    for dir in [&source, &work, &bin] {
        std::fs::create_dir_all(dir).unwrap();
    }
    for (key, b64) in cm["binaryData"].as_object().into_iter().flatten() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(source.join(key), bytes).unwrap();
    }
    std::fs::copy(&k.kubeconfig, source.join("kube.config")).unwrap();
    std::os::unix::fs::symlink(
        std::fs::canonicalize(cluster::kubectl_program())
            .unwrap_or_else(|_| cluster::kubectl_program()),
        bin.join("kubectl"),
    )
    .unwrap();
    let script = job_json["spec"]["template"]["spec"]["containers"][0]["command"][2]
        .as_str()
        .unwrap()
        .replace("/tmp/helm-executor-source", source.to_str().unwrap())
        .replace("/tmp/helm-executor", work.to_str().unwrap());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("/bin/sh")
        .args(["-c", &script])
        .current_dir(&work)
        .env("PATH", path)
        .output()
        .unwrap()
}

/// A YAML app in the standalone target: its Job applies the manifests server-side as the
/// release's creator (as KubeSphere's YAML installer does, §5.5), and its uninstall Job deletes
/// them.
#[test]
fn a_yaml_app_s_job_applies_its_manifests_and_its_uninstall_deletes_them() {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    // The creator, impersonated by the Job, may manage ConfigMaps in the namespace.
    k.kubectl_ok(&[
        "create",
        "role",
        "configmap-editor",
        "--verb=get,list,create,patch,update,delete",
        "--resource=configmaps",
        "-n",
        "default",
    ]);
    k.kubectl_ok(&[
        "create",
        "rolebinding",
        "dave-edits",
        "--role=configmap-editor",
        "--user=dave",
        "-n",
        "default",
    ]);
    let tmp = standalone_catalog();
    let catalog = tmp.path().join("catalog");
    std::fs::create_dir_all(catalog.join("apps/greeting/1.0.0")).unwrap();
    std::fs::write(
        catalog.join("apps/greeting/app.yaml"),
        "displayName: Greeting\ntype: yaml\n",
    )
    .unwrap();
    std::fs::write(
        catalog.join("apps/greeting/1.0.0/greeting.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  text: hello\n",
    )
    .unwrap();
    std::fs::write(
        catalog.join("releases/host/default/greeting.yaml"),
        "app: greeting\nversion: 1.0.0\ncreator: dave\n",
    )
    .unwrap();

    apply(&k, &catalog);
    let job = jobs(&k)
        .into_iter()
        .find(|j| j.starts_with("helm-install-greeting-"))
        .expect("the YAML release's Job");
    let out = run_executor(&k, &job);
    assert!(out.status.success(), "{out:?}");
    let applied: Value = serde_json::from_str(&k.kubectl_ok(&[
        "get",
        "configmap",
        "greeting",
        "-n",
        "default",
        "-o",
        "json",
        "--show-managed-fields",
    ]))
    .unwrap();
    assert_eq!(applied["data"]["text"], "hello");
    let managers: Vec<&str> = applied["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    // KubeSphere's own YAML installer's field manager (pkg/simple/client/application/yaml.go).
    assert_eq!(managers, ["v1.FieldManager"]);

    k.complete_job("default", &job);
    apply(&k, &catalog);
    assert_eq!(status_of(&k, "greeting")["state"], "active");

    std::fs::remove_file(catalog.join("releases/host/default/greeting.yaml")).unwrap();
    apply(&k, &catalog);
    let uninstall = jobs(&k)
        .into_iter()
        .find(|j| j.starts_with("helm-uninstall-greeting-"))
        .expect("the uninstall Job");
    let out = run_executor(&k, &uninstall);
    assert!(out.status.success(), "{out:?}");
    assert!(
        !k.kubectl(&["get", "configmap", "greeting", "-n", "default"])
            .status
            .success(),
        "the uninstall Job deleted the manifests' objects"
    );
}
