//! The example catalog's compiled output, byte for byte. A change here is a change of what
//! KubeSphere receives: review it, then bless it with `PITRIX_BLESS=1 cargo test --test integration golden::`.

use crate::common;

use std::path::{Path, PathBuf};

use common::{compile_files, copy_tree, example_catalog, repo_root};

/// Compares `files` with the tree at `tests/golden/<name>` (or writes it, blessing).
fn assert_golden(name: &str, files: &pitrix::emit::Files) {
    let golden = repo_root().join("tests/golden").join(name);
    if std::env::var_os("PITRIX_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        pitrix::emit::write_atomic(&golden, files).unwrap();
        // pitrix's output marker is no file of `render`'s: the golden tree holds those only.
        std::fs::remove_file(golden.join(pitrix::emit::MARKER_FILE)).unwrap();
        return;
    }
    let mut on_disk: Vec<PathBuf> = walkdir::WalkDir::new(&golden)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(&golden).unwrap().to_path_buf())
        .collect();
    on_disk.sort();
    let compiled: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(compiled, on_disk, "the set of output files changed");
    for (path, bytes) in files {
        let expected = std::fs::read(golden.join(path)).unwrap();
        if &expected != bytes {
            let old = String::from_utf8_lossy(&expected);
            let new = String::from_utf8_lossy(bytes);
            let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
                .unified_diff()
                .header("golden", "compiled")
                .to_string();
            panic!(
                "{} differs from the golden output (PITRIX_BLESS=1 to accept):\n{diff}",
                path.display()
            );
        }
    }
}

#[test]
fn example_output_matches_the_golden_tree() {
    assert_golden("example", &compile_files(&example_catalog()));
}

/// The example as `target = "standalone"`: the executor Job + ConfigMap of each release — Helm
/// for charts, `kubectl apply` for the YAML app (the synced-repo release left out: standalone
/// installs only what the catalog holds) — the edge cluster's under `clusters/edge-eu/`.
#[test]
fn example_executor_jobs_match_the_golden_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog");
    copy_tree(&example_catalog(), &catalog);
    let settings = catalog.join("pitrix.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        text.replace(r#"target = "kubesphere""#, r#"target = "standalone""#),
    )
    .unwrap();
    std::fs::remove_file(catalog.join("releases/host/data/session-cache.yaml")).unwrap();

    let executor_files: pitrix::emit::Files = compile_files(&catalog)
        .into_iter()
        .filter(|(path, _)| is_executor_file(path))
        .collect();
    let jobs = executor_files
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("/jobs/"))
        .count();
    assert_eq!(jobs, 5, "one Job per release the catalog holds the app of");
    assert_golden("example-standalone", &executor_files);
}

/// A Job, its ConfigMap, or a member cluster's kustomization and stream.
fn is_executor_file(path: &Path) -> bool {
    path.starts_with("clusters")
        || path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("helm-install-"))
}
