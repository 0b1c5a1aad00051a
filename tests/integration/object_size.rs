//! Compiled objects over etcd's 1.5 MiB request limit are refused before anything is written,
//! naming the object, its size and what made it large.

use std::path::Path;

use pitrix::diagnostics::Diagnostic;
use pitrix::pipeline::{CheckOptions, build_with, check_with};

const RELEASE: &str = "releases/host/default/hello.yaml";

fn catalog() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    pitrix::scaffold::new_catalog(&tmp.path().join("catalog")).unwrap();
    tmp
}

fn too_large(diags: &[Diagnostic]) -> Vec<&Diagnostic> {
    diags
        .iter()
        .filter(|d| d.code.as_str() == "object-too-large")
        .collect()
}

#[test]
fn a_release_with_a_huge_inline_value_is_refused_at_its_file() {
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    // 1.3 MB of values: 1.7 MB once base64-encoded into spec.values.
    let big = "x".repeat(1_300_000);
    std::fs::write(
        root.join(RELEASE),
        format!("app: hello\nversion: 0.1.0\nvalues:\n  small: 1\n  blob: {big}\n"),
    )
    .unwrap();

    // `validate`
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let found = too_large(&diags);
    assert_eq!(found.len(), 1, "{diags:#?}");
    let d = found[0];
    assert!(d.is_error());
    assert_eq!(d.file.as_deref(), Some(Path::new(RELEASE)));
    assert_eq!(d.pos.unwrap().line, 5, "{d:?}");
    assert!(
        d.message.contains("ApplicationRelease/hello"),
        "{}",
        d.message
    );
    assert!(d.message.contains("`spec.values`"), "{}", d.message);
    assert!(d.message.contains("`/blob`"), "{}", d.message);
    assert!(d.message.contains("1572864"), "{}", d.message);
    // The value itself is not in the report.
    assert!(!d.message.contains("xxxxxxxx"));

    // `compile` (and `compile --diff`, which builds the same way): nothing compiled.
    let diags = build_with(&root, &CheckOptions::default()).unwrap_err();
    assert_eq!(too_large(&diags).len(), 1, "{diags:#?}");

    // Just under the limit compiles.
    let fits = "x".repeat(900_000);
    std::fs::write(
        root.join(RELEASE),
        format!("app: hello\nversion: 0.1.0\nvalues:\n  blob: {fits}\n"),
    )
    .unwrap();
    assert!(build_with(&root, &CheckOptions::default()).is_ok());
}

#[test]
fn a_package_over_its_budget_is_reported_as_such_first() {
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    // 1.5 MB that gzip cannot shrink: the package is over the 1 MiB ConfigMap budget.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..1_500_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(root.join("apps/hello/0.1.0/files.bin"), noise).unwrap();
    let (_, diags) = check_with(&root, &CheckOptions::default());
    assert!(
        diags.iter().any(|d| d.code.as_str() == "package-too-large"),
        "{diags:#?}"
    );
    assert!(too_large(&diags).is_empty(), "{diags:#?}");
}
