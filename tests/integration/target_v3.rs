//! `target = "kubesphere-v3"`: one catalog compiled for KubeSphere 3.x
//! (`application.kubesphere.io/v1alpha1`, packages and images in S3), validated with 3.x's own
//! rules, and applied to a real kube-apiserver carrying KubeSphere 3.4.1's own CRDs, with the
//! uploads going to a real, signature-checking S3 server (pitrix-testkit's s3s-fs). What
//! KubeSphere 3.x's controllers then do with the objects is `kubesphere_v3::`'s part.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use pitrix_testkit::s3::S3Server;
use serde_json::Value;

use crate::cluster::TestCluster;
use crate::common;

const BUCKET: &str = "app-store";

/// The scaffold's catalog (`pitrix new`), retargeted at KubeSphere 3.x and the given store.
fn v3_catalog(endpoint: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("catalog");
    pitrix::scaffold::new_catalog(&root).unwrap();
    let settings = root.join("pitrix.toml");
    let text = std::fs::read_to_string(&settings)
        .unwrap()
        .replace("target = \"kubesphere\"", "target = \"kubesphere-v3\"");
    assert!(text.contains("kubesphere-v3"), "the scaffold sets a target");
    let text = format!("{text}\n[storage.s3]\nendpoint = \"{endpoint}\"\nbucket = \"{BUCKET}\"\n");
    std::fs::write(&settings, text).unwrap();
    (tmp, root)
}

fn compile(root: &Path) -> pitrix::compile::Compiled {
    match pitrix::pipeline::build(root) {
        Ok((compiled, _)) => compiled,
        Err(diags) => panic!("the v3 catalog is valid:\n{}", common::dump(&diags)),
    }
}

fn find(c: &pitrix::compile::Compiled, kind: &str, name: &str) -> Value {
    c.objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| {
            let all: Vec<String> = c
                .objects
                .iter()
                .map(|o| format!("{}/{}", o.kind(), o.name()))
                .collect();
            panic!("no {kind}/{name} among {all:?}")
        })
        .to_json()
}

#[test]
fn the_scaffold_compiles_to_kubesphere_3_objects_and_s3_objects() {
    let (_tmp, root) = v3_catalog("http://127.0.0.1:9");
    let compiled = compile(&root);
    let kinds: std::collections::BTreeSet<&str> =
        compiled.objects.iter().map(|o| o.kind()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "HelmApplication",
            "HelmApplicationVersion",
            "HelmCategory",
            "HelmRelease",
            "HelmRepo",
            "S3Object"
        ],
        "nothing of KubeSphere 4's kinds"
    );
    let app = find(&compiled, "HelmApplication", "app-hello");
    assert_eq!(app["apiVersion"], "application.kubesphere.io/v1alpha1");
    assert_eq!(app["spec"]["name"], "Hello");
    assert_eq!(
        app["metadata"]["labels"]["kubesphere.io/workspace"],
        "system-workspace"
    );
    assert_eq!(
        app["metadata"]["labels"]["application.kubesphere.io/app-category-id"],
        "ctg-tools"
    );
    // The icon is an attachment: an S3 key in spec.icon, the image itself an S3 object.
    let icon = app["spec"]["icon"].as_str().unwrap();
    assert!(icon.starts_with("att-"), "{icon}");
    let stored_icon = find(&compiled, "S3Object", icon);
    let icon_bytes = base64::engine::general_purpose::STANDARD
        .decode(stored_icon["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        icon_bytes,
        std::fs::read(root.join("apps/hello/icon.svg")).unwrap()
    );

    // Released (an active version): the App Store copy, in the app controller's shape.
    let copy = find(&compiled, "HelmApplication", "app-hello-store");
    assert_eq!(
        copy["metadata"]["labels"]["application.kubesphere.io/repo-id"],
        "repo-helm"
    );
    assert_eq!(
        copy["metadata"]["labels"]["kubesphere.io/workspace-origin"],
        "system-workspace"
    );
    assert!(
        copy["metadata"]["labels"]
            .get("kubesphere.io/workspace")
            .is_none()
    );
    assert_eq!(copy["spec"], app["spec"]);

    let version = find(&compiled, "HelmApplicationVersion", "appv-hello-0.1.0");
    assert_eq!(
        version["spec"]["name"], "hello",
        "the chart's name, which Helm is given"
    );
    assert_eq!(version["spec"]["version"], "0.1.0");
    assert_eq!(
        version["metadata"]["labels"]["application.kubesphere.io/app-id"],
        "app-hello"
    );
    // The package at `<workspace>/<version>`, the bytes of the 4.x target's package.
    let package = find(&compiled, "S3Object", "system-workspace/appv-hello-0.1.0");
    let v3_bytes = base64::engine::general_purpose::STANDARD
        .decode(package["data"].as_str().unwrap())
        .unwrap();
    let digest = format!(
        "sha256:{}",
        pitrix::names::hex(&<sha2::Sha256 as sha2::Digest>::digest(&v3_bytes))
    );
    assert_eq!(version["spec"]["digest"], digest.as_str());

    let release = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "HelmRelease")
        .unwrap()
        .to_json();
    assert_eq!(release["spec"]["name"], "hello");
    assert_eq!(release["spec"]["chartName"], "hello");
    assert_eq!(release["spec"]["appVerId"], "appv-hello-0.1.0");
    assert_eq!(release["spec"]["repoId"], "repo-helm");
    assert_eq!(
        release["metadata"]["labels"]["kubesphere.io/namespace"],
        "default"
    );
    assert!(release["spec"]["version"].as_i64().unwrap() > 0);
    let values = base64::engine::general_purpose::STANDARD
        .decode(release["spec"]["values"].as_str().unwrap())
        .unwrap();
    let values: Value = serde_yaml::from_slice(&values).unwrap();
    assert_eq!(values["message"], "Hello from pitrix");

    // The review state is the version's, with its message; the app's is KubeSphere's to derive.
    let states: Vec<(String, String)> = compiled
        .status
        .iter()
        .map(|s| (s.kind.to_string(), s.name.clone()))
        .collect();
    assert_eq!(
        states,
        [(
            "HelmApplicationVersion".to_string(),
            "appv-hello-0.1.0".to_string()
        )]
    );

    // Emitted: S3 objects are files of the output, but no Kubernetes tool is handed them.
    let files = pitrix::emit::render(&compiled);
    let file = |p: &str| {
        files
            .iter()
            .find(|(path, _)| path == Path::new(p))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| panic!("no {p}"))
    };
    let all = file("all.yaml");
    assert!(
        all.contains("kind: HelmApplication") && !all.contains("S3Object"),
        "{all}"
    );
    let kustomization = file("kustomization.yaml");
    assert!(!kustomization.contains("s3objects"), "{kustomization}");
    let inventory = file("inventory.json");
    assert!(inventory.contains("\"kind\": \"S3Object\""), "{inventory}");
    assert!(
        inventory.contains("\"endpoint\": \"http://127.0.0.1:9\""),
        "{inventory}"
    );

    // A changed value upgrades the release (KubeSphere 3.x upgrades only on a new spec.version).
    let release_file = root.join("releases/host/default/hello.yaml");
    let text = std::fs::read_to_string(&release_file).unwrap();
    std::fs::write(
        &release_file,
        text.replace("Hello from pitrix", "Hello again"),
    )
    .unwrap();
    let changed = compile(&root);
    let changed = changed
        .objects
        .iter()
        .find(|o| o.kind() == "HelmRelease")
        .unwrap()
        .to_json();
    assert_ne!(changed["spec"]["version"], release["spec"]["version"]);
}

#[test]
fn what_kubesphere_3_cannot_hold_is_refused_with_the_reason() {
    let (_tmp, root) = v3_catalog("http://127.0.0.1:9");
    let settings = root.join("pitrix.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    let cut = text.find("[storage.s3]").unwrap();
    std::fs::write(&settings, &text[..cut]).unwrap();
    // A release of a synced repo's chart, and an app named like a store copy.
    std::fs::write(
        root.join("releases/host/default/redis.yaml"),
        "app: bitnami/redis\nversion: 17.0.0\n",
    )
    .unwrap();
    common::copy_tree(&root.join("apps/hello"), &root.join("apps/cache-store"));
    let app_yaml = root.join("apps/cache-store/app.yaml");
    let text = std::fs::read_to_string(&app_yaml)
        .unwrap()
        .replace("displayName: Hello", "displayName: Cache");
    std::fs::write(&app_yaml, text).unwrap();

    let (_, diags) = pitrix::pipeline::check(&root);
    let v3: Vec<&pitrix::diagnostics::Diagnostic> = diags
        .iter()
        .filter(|d| d.code.as_str() == "kubesphere-v3")
        .collect();
    let text = common::dump(&diags);
    assert!(
        v3.iter().any(|d| d.message.contains("[storage.s3]")
            && d.file.as_deref() == Some(Path::new("pitrix.toml"))),
        "{text}"
    );
    assert!(
        v3.iter()
            .any(|d| d.message.contains("bitnami/redis") && d.pos.is_some()),
        "{text}"
    );
    assert!(
        v3.iter()
            .any(|d| d.message.contains("`cache-store` ends in `-store`")),
        "{text}"
    );
    assert!(v3.iter().all(|d| d.hint.is_some()), "{text}");
}

/// `pitrix apply` with the S3 credentials in the environment.
fn apply(
    k: &TestCluster,
    s3: &S3Server,
    root: &Path,
    secret: &str,
    extra: &[&str],
) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("apply")
        .arg(root)
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .args(["--output", "json"])
        .args(extra)
        .env("PITRIX_S3_ACCESS_KEY_ID", &s3.access_key)
        .env("PITRIX_S3_SECRET_ACCESS_KEY", secret)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn get(k: &TestCluster, resource: &str, name: &str) -> Value {
    serde_json::from_str(&k.kubectl_ok(&["get", resource, name, "-o", "json"])).unwrap()
}

#[test]
fn apply_uploads_first_writes_the_objects_and_a_second_apply_changes_nothing() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let k = crate::kubesphere_v3::crds_only_cluster();
    let (_tmp, root) = v3_catalog(&s3.endpoint);

    // A dry run looks at the store and writes nothing.
    let (code, report, stderr) = apply(&k, &s3, &root, &s3.secret_key, &["--dry-run"]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let would = common::outcomes_of(&report, "wouldCreate");
    assert!(
        would.contains(&(
            "S3Object".into(),
            "system-workspace/appv-hello-0.1.0".into()
        )),
        "{report:#}"
    );
    assert!(s3.keys(BUCKET).is_empty(), "{:?}", s3.keys(BUCKET));

    let (code, report, stderr) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let created = common::outcomes_of(&report, "created");
    assert!(
        created.contains(&(
            "S3Object".into(),
            "system-workspace/appv-hello-0.1.0".into()
        )),
        "{created:?}\n{report:#}"
    );

    // The package in S3 is byte for byte the compiled one, where KubeSphere's release
    // controller reads it.
    let compiled = compile(&root);
    let package = find(&compiled, "S3Object", "system-workspace/appv-hello-0.1.0");
    let want = base64::engine::general_purpose::STANDARD
        .decode(package["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        s3.object(BUCKET, "system-workspace/appv-hello-0.1.0"),
        Some(want)
    );

    // The version: owned by its app, its review state written with an audit entry.
    let app = get(
        &k,
        "helmapplications.application.kubesphere.io",
        "app-hello",
    );
    let version = get(
        &k,
        "helmapplicationversions.application.kubesphere.io",
        "appv-hello-0.1.0",
    );
    assert_eq!(
        version["metadata"]["ownerReferences"][0]["uid"],
        app["metadata"]["uid"]
    );
    assert_eq!(
        version["metadata"]["ownerReferences"][0]["kind"],
        "HelmApplication"
    );
    assert_eq!(version["status"]["state"], "active");
    assert_eq!(version["status"]["audit"][0]["state"], "active");
    assert_eq!(version["status"]["audit"][0]["message"], "First release.");
    assert!(version["status"]["audit"][0]["time"].is_string());
    let release_list: Value = serde_json::from_str(&k.kubectl_ok(&[
        "get",
        "helmreleases.application.kubesphere.io",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(release_list["items"].as_array().unwrap().len(), 1);

    // Again: nothing uploaded, nothing written.
    let (code, report, stderr) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let changed: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] != "unchanged")
        .collect();
    assert!(changed.is_empty(), "a second apply changed {changed:#?}");
    let version_again = get(
        &k,
        "helmapplicationversions.application.kubesphere.io",
        "appv-hello-0.1.0",
    );
    assert_eq!(
        version_again["metadata"]["resourceVersion"],
        version["metadata"]["resourceVersion"]
    );

    // `pitrix diff` reads the cluster and the store: nothing to change.
    let diff = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("diff")
        .arg(&root)
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .env("PITRIX_S3_ACCESS_KEY_ID", &s3.access_key)
        .env("PITRIX_S3_SECRET_ACCESS_KEY", &s3.secret_key)
        .output()
        .unwrap();
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );

    // A stored package is never overwritten: other bytes under the key refuse the apply.
    std::fs::write(
        s3.data_dir
            .join(BUCKET)
            .join("system-workspace/appv-hello-0.1.0"),
        b"someone else's package",
    )
    .unwrap();
    let (code, report, _) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_ne!(code, 0, "{report:#}");
    assert_eq!(
        s3.object(BUCKET, "system-workspace/appv-hello-0.1.0")
            .as_deref(),
        Some(&b"someone else's package"[..])
    );
}

#[test]
fn refused_credentials_or_a_missing_bucket_apply_nothing_and_say_where() {
    let s3 = S3Server::start();
    let k = crate::kubesphere_v3::crds_only_cluster();
    let (_tmp, root) = v3_catalog(&s3.endpoint);

    // No bucket.
    let (code, report, stderr) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_ne!(code, 0);
    let refused = report["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains(BUCKET) && refused.contains(&s3.endpoint),
        "{report:#}\n{stderr}"
    );

    // A wrong secret: refused by the server's signature check; the secret is never printed.
    s3.create_bucket(BUCKET);
    let wrong = "not-the-secret-key-0123456789";
    let (code, report, stderr) = apply(&k, &s3, &root, wrong, &[]);
    assert_ne!(code, 0);
    let refused = report["refused"].as_str().unwrap_or_default();
    assert!(refused.contains(&s3.endpoint), "{report:#}");
    assert!(
        !format!("{report}{stderr}").contains(wrong),
        "the secret leaked"
    );

    // An endpoint nobody listens on: refused, named, in bounded time.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let settings = root.join("pitrix.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        text.replace(&s3.endpoint, &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (code, report, _) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_ne!(code, 0);
    let refused = report["refused"].as_str().unwrap_or_default();
    assert!(refused.contains(&format!("127.0.0.1:{port}")), "{report:#}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    std::fs::write(&settings, text).unwrap();

    // Neither left anything behind: no object in the cluster, nothing in the bucket.
    for plural in [
        "helmapplications",
        "helmapplicationversions",
        "helmreleases",
        "helmcategories",
    ] {
        let list: Value = serde_json::from_str(&k.kubectl_ok(&[
            "get",
            &format!("{plural}.application.kubesphere.io"),
            "-o",
            "json",
        ]))
        .unwrap();
        assert!(
            list["items"].as_array().unwrap().is_empty(),
            "{plural}: {list:#}"
        );
    }
    assert!(s3.keys(BUCKET).is_empty(), "{:?}", s3.keys(BUCKET));
}

#[test]
fn prune_deletes_the_s3_objects_of_versions_the_catalog_dropped() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let k = crate::kubesphere_v3::crds_only_cluster();
    let (_tmp, root) = v3_catalog(&s3.endpoint);
    // A second version, released by nothing.
    common::copy_tree(
        &root.join("apps/hello/0.1.0"),
        &root.join("apps/hello/0.2.0"),
    );
    let chart = root.join("apps/hello/0.2.0/Chart.yaml");
    let text = std::fs::read_to_string(&chart)
        .unwrap()
        .replace("version: 0.1.0", "version: 0.2.0");
    std::fs::write(&chart, text).unwrap();
    let (code, report, stderr) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert!(
        s3.keys(BUCKET)
            .contains(&"system-workspace/appv-hello-0.2.0".to_string())
    );

    std::fs::remove_dir_all(root.join("apps/hello/0.2.0")).unwrap();
    let (code, report, stderr) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let pruned = common::outcomes_of(&report, "pruned");
    assert!(
        pruned.contains(&(
            "S3Object".into(),
            "system-workspace/appv-hello-0.2.0".into()
        )),
        "{pruned:?}"
    );
    assert!(
        pruned.contains(&("HelmApplicationVersion".into(), "appv-hello-0.2.0".into())),
        "{pruned:?}"
    );
    let keys = s3.keys(BUCKET);
    assert!(
        !keys.contains(&"system-workspace/appv-hello-0.2.0".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"system-workspace/appv-hello-0.1.0".to_string()),
        "{keys:?}"
    );
}

/// Sets a version's review state (and the app's) in app.yaml.
fn set_states(root: &Path, versions: &[(&str, &str)]) {
    let file = root.join("apps/hello/app.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let head = &text[..text.find("versions:").unwrap()];
    let mut out = format!("{head}versions:\n");
    for (v, state) in versions {
        out.push_str(&format!("  {v}:\n    state: {state}\n"));
    }
    std::fs::write(&file, out).unwrap();
}

#[test]
fn the_3x_lifecycle_as_commits_diffs_readably() {
    let (_tmp, root) = v3_catalog("http://127.0.0.1:9");
    let base = compile(&root);

    // 0.2.0 uploaded and released; the release upgraded to it.
    common::copy_tree(
        &root.join("apps/hello/0.1.0"),
        &root.join("apps/hello/0.2.0"),
    );
    let chart = root.join("apps/hello/0.2.0/Chart.yaml");
    let text = std::fs::read_to_string(&chart)
        .unwrap()
        .replace("version: 0.1.0", "version: 0.2.0");
    std::fs::write(&chart, text).unwrap();
    let values = root.join("apps/hello/0.2.0/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(&values, format!("{text}replicaCount: 2\n")).unwrap();
    set_states(&root, &[("0.1.0", "active"), ("0.2.0", "active")]);
    let release = root.join("releases/host/default/hello.yaml");
    let text = std::fs::read_to_string(&release)
        .unwrap()
        .replace("version: 0.1.0", "version: 0.2.0");
    std::fs::write(&release, text).unwrap();
    let head = compile(&root);

    let d = pitrix::diff::diff(&base, &head);
    assert!(d.errors.is_empty(), "{:#?}", d.errors);
    // The new package, compared file by file with the version it follows.
    let package = d
        .objects
        .iter()
        .find(|c| c.kind == "S3Object" && c.name == "system-workspace/appv-hello-0.2.0")
        .and_then(|c| c.package.as_ref())
        .unwrap_or_else(|| panic!("no package diff: {:#?}", d.objects));
    assert_eq!(package.version, "0.2.0");
    assert_eq!(package.compared_with.as_deref(), Some("0.1.0"));
    let changed: Vec<&str> = package.files.iter().map(|f| f.path.as_str()).collect();
    assert!(
        changed.contains(&"values.yaml") && changed.contains(&"Chart.yaml"),
        "{changed:?}"
    );
    let values_diff = package
        .files
        .iter()
        .find(|f| f.path == "values.yaml")
        .unwrap();
    assert!(
        values_diff
            .hunks
            .as_deref()
            .unwrap_or_default()
            .contains("+replicaCount: 2")
    );
    // The release, one line: hello 0.1.0 → 0.2.0 in host/default.
    assert_eq!(d.releases.len(), 1, "{:#?}", d.releases);
    let line = &d.releases[0];
    assert_eq!(
        (line.name.as_str(), line.from.as_deref(), line.to.as_deref()),
        ("hello", Some("0.1.0"), Some("0.2.0"))
    );
    assert_eq!(line.namespace, "default");
    // The markdown a reviewer reads carries both, and no base64.
    let md = pitrix::diff::render::render(
        &d,
        pitrix::diff::render::Format::Markdown,
        &Default::default(),
    );
    assert!(md.contains("0.2.0") && md.contains("replicaCount"), "{md}");
    assert!(!md.contains("H4sI"), "a package shown as base64:\n{md}");

    // Then 0.1.0 suspended: a review state change of the version, nothing else.
    let before = head;
    set_states(&root, &[("0.1.0", "suspended"), ("0.2.0", "active")]);
    let after = compile(&root);
    let d = pitrix::diff::diff(&before, &after);
    assert!(d.objects.is_empty(), "{:#?}", d.objects);
    assert_eq!(d.states.len(), 1, "{:#?}", d.states);

    // Then the app removed (and its release): every object of it goes, packages included.
    std::fs::remove_file(&release).unwrap();
    std::fs::remove_dir_all(root.join("apps/hello")).unwrap();
    let gone = compile(&root);
    let d = pitrix::diff::diff(&after, &gone);
    let removed: std::collections::BTreeSet<(String, String)> = d
        .objects
        .iter()
        .filter(|c| c.action == pitrix::diff::Action::Removed)
        .map(|c| (c.kind.clone(), c.name.clone()))
        .collect();
    for (kind, name) in [
        ("HelmApplication", "app-hello"),
        ("HelmApplication", "app-hello-store"),
        ("HelmApplicationVersion", "appv-hello-0.1.0"),
        ("S3Object", "system-workspace/appv-hello-0.2.0"),
    ] {
        assert!(
            removed.contains(&(kind.to_string(), name.to_string())),
            "{kind}/{name}: {removed:?}"
        );
    }
}

#[test]
fn a_kubesphere_3_object_the_catalog_does_not_own_is_refused_unless_adopted() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let k = crate::kubesphere_v3::crds_only_cluster();
    let (_tmp, root) = v3_catalog(&s3.endpoint);
    // Made in the console: the category pitrix would write, without the catalog's mark.
    k.kubectl_stdin_ok(
        &["create", "-f", "-"],
        br#"{"apiVersion": "application.kubesphere.io/v1alpha1", "kind": "HelmCategory",
             "metadata": {"name": "ctg-tools"}, "spec": {"name": "Tools"}}"#,
    );
    let (code, report, _) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_ne!(code, 0, "{report:#}");
    let refused = report["refused"].as_str().unwrap_or_default();
    assert!(refused.contains("ctg-tools"), "{report:#}");
    assert!(
        s3.keys(BUCKET).is_empty(),
        "uploaded before refusing: {:?}",
        s3.keys(BUCKET)
    );
    let category = get(&k, "helmcategories.application.kubesphere.io", "ctg-tools");
    assert!(
        category["metadata"]["labels"]
            .get("pitrix.io/catalog")
            .is_none()
    );

    let (code, report, stderr) = apply(&k, &s3, &root, &s3.secret_key, &["--adopt"]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let category = get(&k, "helmcategories.application.kubesphere.io", "ctg-tools");
    assert_eq!(
        category["metadata"]["labels"]["pitrix.io/catalog"],
        "my-store"
    );
}

#[test]
fn one_catalog_compiles_for_both_kubesphere_versions_side_by_side() {
    let (tmp, root) = v3_catalog("http://127.0.0.1:9");
    let compile = |out: &str, extra: &[&str]| {
        let out = tmp.path().join(out);
        let run = Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .arg("compile")
            .arg(&root)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let mut dirs: Vec<String> = std::fs::read_dir(out.join("objects"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        dirs.sort();
        dirs
    };
    assert_eq!(
        compile("v3", &[]),
        [
            "helmapplications",
            "helmapplicationversions",
            "helmcategories",
            "helmreleases",
            "helmrepos",
            "s3objects"
        ]
    );
    // The same catalog for KubeSphere 4: its kinds, the packages in the same S3 store.
    assert_eq!(
        compile("v4", &["--target", "kubesphere"]),
        [
            "applicationreleases",
            "applications",
            "applicationversions",
            "categories",
            "repos",
            "s3objects"
        ]
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(["validate", "--target", "kubesphere-4"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("kubesphere-v3"),
        "the choices are named"
    );
}

#[test]
fn release_names_follow_helm_on_kubesphere_3() {
    let (_tmp, root) = v3_catalog("http://127.0.0.1:9");
    let release = std::fs::read_to_string(root.join("releases/host/default/hello.yaml")).unwrap();
    // 45 characters: over KubeSphere 4's 41 (its Job names), within Helm's 53; and the same name
    // in two namespaces, which 3.x keeps apart.
    let long = "a".repeat(45);
    std::fs::write(
        root.join(format!("releases/host/default/{long}.yaml")),
        &release,
    )
    .unwrap();
    std::fs::create_dir_all(root.join("releases/host/web")).unwrap();
    std::fs::write(root.join("releases/host/web/hello.yaml"), &release).unwrap();
    let (_, diags) = pitrix::pipeline::check(&root);
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "{}",
        common::dump(&diags)
    );
    let compiled = compile(&root);
    let releases = compiled
        .objects
        .iter()
        .filter(|o| o.kind() == "HelmRelease")
        .count();
    assert_eq!(releases, 3);

    let too_long = "b".repeat(54);
    std::fs::write(
        root.join(format!("releases/host/default/{too_long}.yaml")),
        &release,
    )
    .unwrap();
    let (_, diags) = pitrix::pipeline::check(&root);
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{}", common::dump(&diags));
    assert_eq!(errors[0].code.as_str(), "name-too-long");
    assert!(
        errors[0].message.contains("at most 53"),
        "{}",
        errors[0].message
    );
}

/// A screenshot KubeSphere 3.x's console already stored (`att-` + `GetUuid`, an S3 object
/// without pitrix's checksum) and that app.yaml names by that ID: the app lists the ID, and
/// apply stores nothing new for it and leaves the stored object as it is. A 4.x-style ID is
/// refused on this target, with the 3.x form in the hint.
#[test]
fn a_screenshot_named_by_its_kubesphere_3_id_keeps_its_s3_object() {
    const SHOT: &str = "att-B6BZVN3mOPvx";
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let k = crate::kubesphere_v3::crds_only_cluster();
    let (_tmp, root) = v3_catalog(&s3.endpoint);
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0".to_vec();
    std::fs::create_dir_all(root.join("apps/hello/screenshots")).unwrap();
    std::fs::write(root.join("apps/hello/screenshots/home.png"), &png).unwrap();
    let app_yaml = root.join("apps/hello/app.yaml");
    let text = std::fs::read_to_string(&app_yaml).unwrap();
    let with_id = |id: &str| {
        text.replace(
            "icon: icon.svg\n",
            &format!(
                "icon: icon.svg\nscreenshots:\n  - {{file: screenshots/home.png, id: {id}}}\n"
            ),
        )
    };

    std::fs::write(&app_yaml, with_id("screenshot-att-k3x9p")).unwrap();
    let (_, diags) = pitrix::pipeline::check(&root);
    let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["invalid-attachment-id"], "{}", common::dump(&diags));
    assert!(
        diags[0]
            .hint
            .as_deref()
            .unwrap_or_default()
            .contains("`att-`"),
        "{:?}",
        diags[0].hint
    );

    std::fs::write(&app_yaml, with_id(SHOT)).unwrap();
    // As 3.x's console stores it: an object without user metadata (s3s-fs serves its data
    // directory's files as the objects).
    std::fs::write(s3.data_dir.join(BUCKET).join(SHOT), &png).unwrap();
    let compiled = compile(&root);
    let app = find(&compiled, "HelmApplication", "app-hello");
    assert_eq!(app["spec"]["attachments"], serde_json::json!([SHOT]));
    find(&compiled, "S3Object", SHOT);
    let (code, report, stderr) = apply(&k, &s3, &root, &s3.secret_key, &[]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let app = get(
        &k,
        "helmapplications.application.kubesphere.io",
        "app-hello",
    );
    assert_eq!(app["spec"]["attachments"], serde_json::json!([SHOT]));
    assert_eq!(s3.object(BUCKET, SHOT), Some(png.clone()));
    // No other object holds the screenshot: it was not stored again under a derived key.
    let copies: Vec<String> = s3
        .keys(BUCKET)
        .into_iter()
        .filter(|k| s3.object(BUCKET, k).as_deref() == Some(png.as_slice()))
        .collect();
    assert_eq!(copies, [SHOT]);
}
