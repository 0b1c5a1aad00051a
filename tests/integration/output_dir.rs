//! The compile output directory through the CLI: pitrix replaces only a directory it wrote
//! (one with its marker), and a crashed swap is undone and swept by the next compile.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{copy_tree, example_catalog};
use pitrix::emit::{INVENTORY_FILE, MARKER_FILE};

fn compile(out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(["compile", example_catalog().to_str().unwrap(), "-o"])
        .arg(out)
        .output()
        .unwrap()
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `mkdir x/.ssh; echo '{}' > x/inventory.json; pitrix compile catalog -o x` deleted `x/.ssh`.
#[test]
fn a_directory_with_an_inventory_but_no_marker_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x");
    fs::create_dir_all(x.join(".ssh")).unwrap();
    fs::write(x.join(".ssh/authorized_keys"), "ssh-ed25519 AAAA\n").unwrap();
    fs::write(x.join(INVENTORY_FILE), "{}\n").unwrap();

    let o = compile(&x);
    assert!(!o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&*x.display().to_string()), "{err}");
    assert!(
        err.contains("refusing") && err.contains(MARKER_FILE),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(x.join(".ssh/authorized_keys")).unwrap(),
        "ssh-ed25519 AAAA\n"
    );
    assert_eq!(names(&x), [".ssh", INVENTORY_FILE]);
    assert_eq!(names(tmp.path()), ["x"], "no staging left behind");
}

#[test]
fn compile_replaces_its_own_output_and_the_marker_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // An empty directory is fine to write into.
    fs::create_dir(&a).unwrap();
    for out in [&a, &b] {
        let o = compile(out);
        assert!(o.status.success(), "{}", show(&o));
    }
    let marker = fs::read(a.join(MARKER_FILE)).unwrap();
    assert_eq!(marker, fs::read(b.join(MARKER_FILE)).unwrap());
    let json: serde_json::Value = serde_json::from_slice(&marker).unwrap();
    assert_eq!(json["format"], pitrix::emit::MARKER_FORMAT);
    assert_eq!(json["writtenBy"], "pitrix");

    // Compiled again: what was added by hand is gone, the rest is the same bytes.
    fs::write(a.join("objects/by-hand.yaml"), "x: 1\n").unwrap();
    fs::create_dir(a.join("notes")).unwrap();
    let o = compile(&a);
    assert!(o.status.success(), "{}", show(&o));
    assert!(!a.join("objects/by-hand.yaml").exists() && !a.join("notes").exists());
    assert_eq!(tree(&a), tree(&b));
    assert_eq!(names(tmp.path()), ["a", "b"]);
}

/// A crash between the two renames of the fallback swap, as it leaves the parent directory:
/// no `out`, `.out.old-<tag>` the complete old output, `.out.new-<tag>` the complete new one.
#[test]
fn a_crashed_swap_is_recovered_and_swept_and_other_staging_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let built = p.join("built");
    let o = compile(&built);
    assert!(o.status.success(), "{}", show(&o));
    copy_tree(&built, &p.join(".out.old-Crash1"));
    copy_tree(&built, &p.join(".out.new-Crash1"));
    // Another output's staging, and a directory of someone else's named like ours.
    copy_tree(&built, &p.join(".other.new-Crash2"));
    fs::create_dir(p.join(".out.new-theirs")).unwrap();
    fs::write(p.join(".out.new-theirs/keep"), "keep").unwrap();
    fs::remove_dir_all(&built).unwrap();

    let o = compile(&p.join("out"));
    assert!(o.status.success(), "{}", show(&o));
    assert!(p.join("out").join(MARKER_FILE).is_file());
    assert!(p.join("out").join(INVENTORY_FILE).is_file());
    assert_eq!(names(p), [".other.new-Crash2", ".out.new-theirs", "out"]);
    assert_eq!(
        fs::read_to_string(p.join(".out.new-theirs/keep")).unwrap(),
        "keep"
    );
}

fn tree(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
            (rel, fs::read(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}
