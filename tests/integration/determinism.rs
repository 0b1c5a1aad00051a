//! The same catalog compiles to the same bytes: twice in a row, and from a copy at another
//! path whose files have other mtimes and permissions.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use common::{compile_files, copy_tree, example_catalog};

#[test]
fn compiling_twice_gives_identical_bytes() {
    let catalog = example_catalog();
    assert_eq!(compile_files(&catalog), compile_files(&catalog));
}

#[test]
fn a_copy_elsewhere_with_other_mtimes_gives_identical_bytes() {
    let original = compile_files(&example_catalog());
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("some/other/place/catalog");
    copy_tree(&example_catalog(), &copy);
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for entry in walkdir::WalkDir::new(&copy) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let file = fs::File::options().write(true).open(entry.path()).unwrap();
            file.set_modified(past).unwrap();
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    assert_eq!(original, compile_files(&copy));
}

#[test]
fn output_is_written_whole_and_replaced_atomically() {
    let files = compile_files(&example_catalog());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    pitrix::emit::write_atomic(&out, &files).unwrap();
    // A second write replaces the first: a stale file from before is gone.
    fs::write(out.join("objects/stale.yaml"), "stale").unwrap();
    pitrix::emit::write_atomic(&out, &files).unwrap();
    assert!(!out.join("objects/stale.yaml").exists());
    for (path, bytes) in &files {
        assert_eq!(
            &fs::read(out.join(path)).unwrap(),
            bytes,
            "{}",
            path.display()
        );
    }
    // Nothing is left beside the output.
    let siblings: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(siblings.len(), 1);
}

#[test]
fn a_directory_pitrix_did_not_write_is_never_replaced() {
    let files = compile_files(&example_catalog());
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("precious.txt"), "keep me").unwrap();
    let err = pitrix::emit::write_atomic(tmp.path(), &files).unwrap_err();
    assert!(err.to_string().contains("refusing"), "{err}");
    assert_eq!(
        fs::read_to_string(tmp.path().join("precious.txt")).unwrap(),
        "keep me"
    );
}

/// Every file under `dir`, by relative path, but pitrix's marker (which `render` leaves out).
fn read_tree(dir: &std::path::Path) -> pitrix::emit::Files {
    let mut files: pitrix::emit::Files = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file() && e.path() != dir.join(pitrix::emit::MARKER_FILE))
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
            (rel, fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// `emit::write` against `emit::render` + `write_atomic`: on the example, and on the example as
/// `standalone`, whose member cluster has its own all.yaml and kustomization.yaml.
#[test]
fn streamed_output_is_the_rendered_output() {
    let tmp = tempfile::tempdir().unwrap();
    let standalone = tmp.path().join("standalone");
    copy_tree(&example_catalog(), &standalone);
    let settings = standalone.join("pitrix.toml");
    let text = fs::read_to_string(&settings).unwrap();
    fs::write(
        &settings,
        text.replace(r#"target = "kubesphere""#, r#"target = "standalone""#),
    )
    .unwrap();
    // A synced-repo release, which standalone cannot install.
    fs::remove_file(standalone.join("releases/host/data/session-cache.yaml")).unwrap();

    for catalog in [example_catalog(), standalone] {
        let (compiled, _) = pitrix::pipeline::build(&catalog).unwrap();
        let out = tmp.path().join("out");
        let extra = vec![(
            std::path::PathBuf::from("charts/index.yaml"),
            b"extra\n".to_vec(),
        )];
        pitrix::emit::write(&out, &compiled, &extra).unwrap();
        let mut expected = pitrix::emit::render(&compiled);
        expected.extend(extra);
        expected.sort();
        let written = read_tree(&out);
        assert!(out.join(pitrix::emit::MARKER_FILE).is_file());
        assert!(written.iter().any(|(p, _)| p.ends_with("all.yaml")));
        assert_eq!(written, expected, "{}", catalog.display());
    }
}

#[test]
fn the_package_cache_changes_no_byte() {
    use pitrix::chart::PackageCache;
    use pitrix::pipeline::{CheckOptions, build_with};

    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let cached = |catalog: &std::path::Path| {
        let opts = CheckOptions {
            package_cache: Some(PackageCache::new(&cache_dir)),
            ..CheckOptions::default()
        };
        let (_, compiled, _) = build_with(catalog, &opts).unwrap();
        pitrix::emit::render(&compiled)
    };
    let catalog = example_catalog();
    let uncached = compile_files(&catalog);
    assert_eq!(cached(&catalog), uncached, "cold cache");
    let entries = fs::read_dir(&cache_dir).unwrap().count();
    assert!(entries > 0, "the cold compile filled the cache");
    assert_eq!(cached(&catalog), uncached, "warm cache");

    // A changed chart file: its version is packed anew, the cache keeps both packages.
    let copy = tmp.path().join("catalog");
    copy_tree(&catalog, &copy);
    let values = copy.join("apps/nginx/1.1.0/values.yaml");
    let mut text = fs::read_to_string(&values).unwrap();
    text.push_str("# changed\n");
    fs::write(&values, text).unwrap();
    let changed = cached(&copy);
    assert_eq!(changed, compile_files(&copy));
    assert_ne!(changed, uncached);
    assert_eq!(fs::read_dir(&cache_dir).unwrap().count(), entries + 1);
}
