//! The synthetic catalog generator of the compile benchmark (pitrix_testkit::synth) writes valid,
//! deterministic catalogs: pitrix finds nothing to report, and two runs give the same bytes.

#[allow(dead_code)]
use crate::synth;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn synthetic_catalog_is_valid_and_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut spec = synth::Spec::new(12, 3);
    let summary = synth::generate(&a, &spec).unwrap();
    assert_eq!(
        (summary.apps, summary.versions, summary.releases),
        (12, 36, 2)
    );
    spec.threads = 1;
    synth::generate(&b, &spec).unwrap();
    assert_eq!(tree(&a), tree(&b), "same spec, different bytes");

    for i in 0..12 {
        let app = synth::app_name(i);
        for j in 0..3 {
            let version = synth::version_name(i, j);
            let chart =
                fs::read_to_string(a.join(format!("apps/{app}/{version}/Chart.yaml"))).unwrap();
            assert!(chart.contains("\napiVersion: v2\n"), "{app} {version}");
            assert!(
                chart.contains(&format!("\nname: {app}\n")),
                "{app} {version}"
            );
            assert!(
                chart.ends_with(&format!("\nversion: {version}\n")),
                "{app} {version}"
            );
            assert!(semver::Version::parse(&version).is_ok(), "{version}");
        }
    }

    let (catalog, diags) = pitrix::pipeline::check(&a);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(catalog.apps.len(), 12);
    let compiled = pitrix::compile::compile(&catalog).unwrap();
    assert_eq!(compiled.catalog, synth::CATALOG_NAME);
}
