//! Hostile `.tgz` versions in a catalog: each is refused with a diagnostic naming the archive,
//! compile writes nothing, and nothing appears outside the output directory.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A gzip'd tar written header by header, so that names like `../x` go in unchecked.
fn archive(entries: &[Entry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, data, kind, link): (&str, &[u8], tar::EntryType, Option<&str>) = match e {
            Entry::File(n, d) => (n, d, tar::EntryType::Regular, None),
            Entry::Symlink(n, t) => (n, b"", tar::EntryType::Symlink, Some(t)),
            Entry::Hardlink(n, t) => (n, b"", tar::EntryType::Link, Some(t)),
        };
        // Write the raw name bytes: set_path would refuse `..` and absolute paths.
        let field = &mut h.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(t) = link {
            h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, data).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

const CHART: &[u8] = b"apiVersion: v2\nname: hello\nversion: 0.2.0\n";

fn gzip_bomb() -> Vec<u8> {
    // 200 MiB of zeros in one file: a few hundred KiB compressed.
    let mut h = tar::Header::new_gnu();
    h.set_path("hello/Chart.yaml").unwrap();
    h.set_size(200 * 1024 * 1024);
    h.set_mode(0o644);
    h.set_cksum();
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..200 {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap()
}

fn hostile_cases() -> Vec<(&'static str, Vec<u8>)> {
    let big = vec![b'x'; 6 * 1024 * 1024];
    vec![
        (
            "dot-dot",
            archive(&[
                Entry::File("hello/Chart.yaml", CHART),
                Entry::File("hello/../../evil.txt", b"pwned"),
            ]),
        ),
        (
            "absolute",
            archive(&[
                Entry::File("hello/Chart.yaml", CHART),
                Entry::File("/tmp/pitrix-evil.txt", b"pwned"),
            ]),
        ),
        (
            "symlink",
            archive(&[
                Entry::File("hello/Chart.yaml", CHART),
                Entry::Symlink("hello/values.yaml", "/etc/passwd"),
            ]),
        ),
        (
            "hardlink",
            archive(&[
                Entry::File("hello/Chart.yaml", CHART),
                Entry::Hardlink("hello/values.yaml", "/etc/passwd"),
            ]),
        ),
        (
            "big-file",
            archive(&[
                Entry::File("hello/Chart.yaml", CHART),
                Entry::File("hello/big.bin", &big),
            ]),
        ),
        ("gzip-bomb", gzip_bomb()),
    ]
}

fn snapshot(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    files
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written() {
    for (case, bytes) in hostile_cases() {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = tmp.path().join("catalog");
        pitrix::scaffold::new_catalog(&catalog).unwrap();
        std::fs::write(catalog.join("apps/hello/0.2.0.tgz"), &bytes).unwrap();
        let before = snapshot(tmp.path());

        let (_, diags) = pitrix::pipeline::check(&catalog);
        let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{case}: {errors:#?}");
        let d = errors[0];
        assert!(
            matches!(d.code.as_str(), "chart-archive" | "chart-too-large"),
            "{case}: {}",
            d.code
        );
        assert_eq!(
            d.file.as_deref(),
            Some(Path::new("apps/hello/0.2.0.tgz")),
            "{case}"
        );
        assert!(d.hint.is_some(), "{case}: a hint");

        let out = tmp.path().join("out");
        let status = Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .args([
                "compile",
                catalog.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(status.status.code(), Some(1), "{case}");
        assert!(!out.exists(), "{case}: no output on error");
        assert_eq!(
            snapshot(tmp.path()),
            before,
            "{case}: nothing written anywhere"
        );
        assert!(!tmp.path().join("evil.txt").exists());
        assert!(!Path::new("/tmp/pitrix-evil.txt").exists());
    }
}
