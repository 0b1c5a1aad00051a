//! Versions stored under an earlier pack format (v2: libdeflate level 1 for every package; v3:
//! level 6; both with the chart's files as committed, in path order, where v4 unpacks vendored
//! subchart archives and drops Chart.yaml comments, as `helm package` does) hold the same chart
//! as today's packages in other bytes: `pitrix apply` and `pitrix diff` treat them as
//! unchanged, never as `package-changed`, and never replace a stored package.

use crate::cluster;
use crate::common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use cluster::TestCluster;
use serde_json::Value;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn compile(catalog: &Path, out: &Path) {
    let compiled = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args([
            "compile",
            catalog.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
}

/// Every chart directory of the catalog (`apps/<app>/<version>/`): today's package of it, and
/// its files as committed.
fn chart_sources(catalog: &Path) -> Vec<(Vec<u8>, pitrix::chart::ChartFiles)> {
    let mut sources = Vec::new();
    for app in std::fs::read_dir(catalog.join("apps")).unwrap() {
        for version in std::fs::read_dir(app.unwrap().path()).unwrap() {
            let dir = version.unwrap().path();
            if !dir.join("Chart.yaml").is_file() {
                continue;
            }
            let files = pitrix::chart::read_dir(&dir, &Default::default()).unwrap();
            let meta: serde_yaml::Value =
                serde_yaml::from_slice(files.get("Chart.yaml").unwrap()).unwrap();
            let name = meta["name"].as_str().unwrap().to_string();
            sources.push((pitrix::chart::pack(&name, &files), files));
        }
    }
    sources
}

/// Rewrites a compiled output as a pitrix of pack format v3 would have written it: every
/// stored package re-packed from the chart's files as committed (`sources`), in path order at
/// level 6, its ApplicationVersion's `spec.digest` and the inventory's digests to match.
/// Returns the v3 packages by version ID.
fn as_pack_format_v3(
    out: &Path,
    sources: &[(Vec<u8>, pitrix::chart::ChartFiles)],
) -> Vec<(String, Vec<u8>)> {
    let inventory_file = out.join(pitrix::emit::INVENTORY_FILE);
    let mut inventory: pitrix::emit::Inventory =
        serde_json::from_slice(&std::fs::read(&inventory_file).unwrap()).unwrap();
    let read = |path: &str| -> Value {
        pitrix::emit::from_yaml(&std::fs::read_to_string(out.join(path)).unwrap()).unwrap()
    };
    let mut packages = Vec::new();
    for e in inventory
        .objects
        .iter_mut()
        .filter(|e| e.kind == "ConfigMap")
    {
        let mut body = read(&e.path);
        let Some(b64) = body
            .pointer("/binaryData/BinaryKey")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let new = B64.decode(b64).unwrap();
        let (name, _) = pitrix::chart::read_archive(&new, &Default::default()).unwrap();
        let (_, committed) = sources
            .iter()
            .find(|(package, _)| *package == new)
            .expect("a package of a chart directory of the catalog");
        let old = pitrix::chart::pack_with_level(&name, committed, 6);
        assert_ne!(old, new, "{}: the formats give other bytes", e.name);
        body["binaryData"]["BinaryKey"] = B64.encode(&old).into();
        std::fs::write(out.join(&e.path), serde_yaml::to_string(&body).unwrap()).unwrap();
        e.digest = pitrix::emit::digest(&body);
        e.file_digest = None;
        packages.push((e.name.clone(), old));
    }
    assert!(!packages.is_empty());
    for e in inventory
        .objects
        .iter_mut()
        .filter(|e| e.kind == "ApplicationVersion")
    {
        let (_, old) = packages.iter().find(|(id, _)| *id == e.name).unwrap();
        let mut body = read(&e.path);
        body["spec"]["digest"] = pitrix::chart::digest(old).into();
        std::fs::write(out.join(&e.path), serde_yaml::to_string(&body).unwrap()).unwrap();
        e.digest = pitrix::emit::digest(&body);
        e.file_digest = None;
    }
    std::fs::write(
        &inventory_file,
        serde_json::to_vec_pretty(&inventory).unwrap(),
    )
    .unwrap();
    packages
}

fn stored(k: &TestCluster, id: &str) -> (Vec<u8>, String) {
    let cm: Value = serde_json::from_str(&k.kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        "extension-openpitrix",
        id,
        "-o",
        "json",
    ]))
    .unwrap();
    let version: Value = serde_json::from_str(&k.kubectl_ok(&[
        "get",
        "applicationversions.application.kubesphere.io",
        id,
        "-o",
        "json",
    ]))
    .unwrap();
    (
        B64.decode(cm["binaryData"]["BinaryKey"].as_str().unwrap())
            .unwrap(),
        version["spec"]["digest"].as_str().unwrap().to_string(),
    )
}

#[test]
fn versions_stored_by_pack_format_v3_are_unchanged_for_apply_and_diff() {
    let k = TestCluster::start();
    k.install_crds(Path::new(env!("CARGO_BIN_EXE_pitrix")));
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog");
    pitrix::scaffold::new_catalog(&catalog).unwrap();
    // What v3 stored as committed and v4 does not: a Chart.yaml comment, a vendored subchart
    // archive (undeclared: Helm installs it all the same).
    let chart_yaml = catalog.join("apps/hello/0.1.0/Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(
        &chart_yaml,
        format!("# Copyright the hello authors.\n{text}"),
    )
    .unwrap();
    let mut sub = pitrix::chart::ChartFiles::new();
    sub.insert(
        "Chart.yaml",
        b"apiVersion: v2\nname: common\nversion: 2.0.0\n".to_vec(),
    )
    .unwrap();
    sub.insert("values.yaml", b"a: 1\n".to_vec()).unwrap();
    std::fs::create_dir_all(catalog.join("apps/hello/0.1.0/charts")).unwrap();
    std::fs::write(
        catalog.join("apps/hello/0.1.0/charts/common-2.0.0.tgz"),
        pitrix::chart::pack("common", &sub),
    )
    .unwrap();

    // The cluster as an earlier pitrix left it.
    let out = tmp.path().join("out");
    compile(&catalog, &out);
    let packages = as_pack_format_v3(&out, &chart_sources(&catalog));
    let (code, report) = common::apply_json(
        &k.kubeconfig,
        Path::new("/nonexistent"),
        &["--from", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{report:#}");
    for (id, old) in &packages {
        assert_eq!(stored(&k, id), (old.clone(), pitrix::chart::digest(old)));
    }

    // `pitrix diff`: nothing to change, no package-changed.
    let diff = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(["diff", "--exit-code", "--format", "json"])
        .arg(&catalog)
        .args(["--kubeconfig", k.kubeconfig.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(!stdout.contains("package-changed"), "{stdout}");

    // `pitrix apply` of today's compile: every object unchanged, the packages kept.
    let (code, report) = common::apply_json(&k.kubeconfig, &catalog, &[]);
    assert_eq!(code, 0, "{report:#}");
    let results = report["results"].as_array().unwrap();
    let moved: Vec<&Value> = results
        .iter()
        .filter(|r| r["outcome"] != "unchanged")
        .collect();
    assert!(moved.is_empty(), "{moved:#?}");
    for (id, old) in &packages {
        assert_eq!(stored(&k, id), (old.clone(), pitrix::chart::digest(old)));
    }

    // A real change of the chart is still refused.
    let values = catalog.join("apps/hello/0.1.0/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap() + "extra: true\n";
    std::fs::write(&values, text).unwrap();
    let (code, report) = common::apply_json(&k.kubeconfig, &catalog, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        report.to_string().contains("bump the version"),
        "{report:#}"
    );
}
