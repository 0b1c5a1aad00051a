//! The example catalog's compiled output, byte for byte. A change here is a change of what
//! KubeSphere receives: review it, then bless it with `PITRIX_BLESS=1 cargo test --test golden`.

mod common;

use std::path::PathBuf;

use common::{compile_files, example_catalog, repo_root};

#[test]
fn example_output_matches_the_golden_tree() {
    let files = compile_files(&example_catalog());
    let golden = repo_root().join("tests/golden/example");
    if std::env::var_os("PITRIX_BLESS").is_some() {
        pitrix::emit::write_atomic(&golden, &files).unwrap();
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
    for (path, bytes) in &files {
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
