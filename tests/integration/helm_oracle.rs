//! Real Helm as the oracle (helm-python-sdk wraps Helm's own Go SDK): every package pitrix
//! stores loads with Helm's loader as the chart it claims to be, Helm computes the same digest,
//! the example charts lint clean, and every example release renders with the values pitrix
//! compiled for it.

use crate::common;

use std::collections::BTreeMap;
use std::fs;

use common::{example_catalog, helm_oracle};
use pitrix::compile::Object;

struct Package {
    path: String,
    version: String,
    digest: String,
}

#[test]
fn stored_packages_load_in_helm_with_helm_s_digest_and_charts_lint_clean() {
    let (compiled, _) = pitrix::pipeline::build(&example_catalog()).expect("example compiles");
    let tmp = tempfile::tempdir().unwrap();

    // Storage ConfigMaps by name, and the Helm versions they belong to.
    let stored: BTreeMap<&str, &[u8]> = compiled
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::ConfigMap(cm) => Some((
                o.name(),
                cm.binary_data.as_ref()?.get("BinaryKey")?.0.as_slice(),
            )),
            _ => None,
        })
        .collect();
    let mut packages = Vec::new();
    for o in &compiled.objects {
        let Object::ApplicationVersion(v) = o else {
            continue;
        };
        if v.spec.app_type.as_deref() != Some("helm") {
            continue;
        }
        let bytes = stored
            .get(o.name())
            .expect("every version has its storage ConfigMap");
        let path = tmp.path().join(format!("{}.tgz", o.name()));
        fs::write(&path, bytes).unwrap();
        packages.push(Package {
            path: path.to_string_lossy().into_owned(),
            version: v.spec.version_name.clone(),
            digest: v.spec.digest.clone().unwrap_or_default(),
        });
    }
    assert!(packages.len() >= 6, "the example has several Helm versions");

    let mut args = vec!["load"];
    args.extend(packages.iter().map(|p| p.path.as_str()));
    let loaded = helm_oracle(&args);
    for (p, helm) in packages.iter().zip(loaded.as_array().unwrap()) {
        assert_eq!(
            helm["ok"], true,
            "Helm cannot load {}: {}",
            p.path, helm["error"]
        );
        assert_eq!(helm["version"], p.version.as_str(), "{}", p.path);
        assert_eq!(
            helm["digest"],
            p.digest.as_str(),
            "Helm's digest of {}",
            p.path
        );
        assert!(
            helm["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "values.yaml"),
            "{} has its values.yaml",
            p.path
        );
    }

    let mut lint = vec!["lint"];
    lint.extend(packages.iter().map(|p| p.path.as_str()));
    for result in helm_oracle(&lint).as_array().unwrap() {
        assert_eq!(result["ok"], true, "helm lint: {result}");
    }
}

#[test]
fn example_chart_directories_lint_clean() {
    let mut dirs = Vec::new();
    for app in fs::read_dir(example_catalog().join("apps")).unwrap() {
        for version in fs::read_dir(app.unwrap().path()).unwrap() {
            let path = version.unwrap().path();
            if path.join("Chart.yaml").is_file() {
                dirs.push(path.to_string_lossy().into_owned());
            }
        }
    }
    assert!(!dirs.is_empty());
    let mut args = vec!["lint"];
    args.extend(dirs.iter().map(String::as_str));
    for result in helm_oracle(&args).as_array().unwrap() {
        assert_eq!(result["ok"], true, "helm lint: {result}");
    }
}

#[test]
fn every_example_release_renders_with_its_compiled_values() {
    let (compiled, _) = pitrix::pipeline::build(&example_catalog()).expect("example compiles");
    let tmp = tempfile::tempdir().unwrap();
    let stored: BTreeMap<&str, &[u8]> = compiled
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::ConfigMap(cm) => Some((
                o.name(),
                cm.binary_data.as_ref()?.get("BinaryKey")?.0.as_slice(),
            )),
            _ => None,
        })
        .collect();
    let mut rendered = 0;
    for o in &compiled.objects {
        let Object::ApplicationRelease(r) = o else {
            continue;
        };
        // Charts of synced repos are fetched by KubeSphere at install time; YAML apps have no chart.
        let Some(package) = stored.get(r.spec.app_version_id.as_str()) else {
            continue;
        };
        if r.spec.app_type.as_deref() != Some("helm") {
            continue;
        }
        let chart = tmp.path().join(format!("{}.tgz", o.name()));
        let values = tmp.path().join(format!("{}.values.yaml", o.name()));
        fs::write(&chart, package).unwrap();
        fs::write(
            &values,
            r.spec
                .values
                .as_ref()
                .map(|v| v.0.clone())
                .unwrap_or_default(),
        )
        .unwrap();
        let namespace = r.metadata.labels.as_ref().unwrap()["kubesphere.io/namespace"].clone();
        let result = helm_oracle(&[
            "template",
            chart.to_str().unwrap(),
            "--values",
            values.to_str().unwrap(),
            "--name",
            o.name(),
            "--namespace",
            &namespace,
        ]);
        assert_eq!(
            result["ok"],
            true,
            "release {}: {}",
            o.name(),
            result["error"]
        );
        assert!(!result["manifest"].as_str().unwrap_or_default().is_empty());
        rendered += 1;
    }
    assert!(
        rendered >= 3,
        "the example has several catalog Helm releases"
    );
}
