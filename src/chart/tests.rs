//! Tests for reading and packaging charts.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::{Compress, Compression, FlushCompress};
use tar::{EntryType, Header};

use super::*;

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------- helpers

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, data).unwrap();
}

fn sample_chart(root: &Path) {
    write(
        root,
        "Chart.yaml",
        b"apiVersion: v2\nname: demo\nversion: 1.0.0\n",
    );
    write(root, "values.yaml", b"replicas: 1\n");
    write(root, "templates/deploy.yaml", b"kind: Deployment\n");
    write(root, "templates/_helpers.tpl", b"{{/* helpers */}}\n");
    write(root, "templates/.editor.swp", b"swap");
    write(root, "files/conf/app.ini", b"[app]\nx=1\n");
    write(root, "README.md", b"# demo\n");
    write(root, ".helmignore", b"# comment\n*.md\n");
}

fn files(list: &[(&str, &[u8])]) -> ChartFiles {
    let mut out = ChartFiles::new();
    for (path, data) in list {
        out.insert(path, data.to_vec()).unwrap();
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Appends one raw tar member with the name bytes stored verbatim (no
/// checks, so hostile names can be written).
fn member(tar: &mut Vec<u8>, name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) {
    let mut header = Header::new_ustar();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

/// A pre-POSIX member: type flag NUL, no ustar magic.
fn old_style(tar: &mut Vec<u8>, name: &[u8], data: &[u8]) {
    let mut header = Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.as_old_mut().linkflag = [0];
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

fn file(tar: &mut Vec<u8>, name: &str, data: &[u8]) {
    member(tar, name.as_bytes(), EntryType::Regular, b"", data);
}

fn finish(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend_from_slice(&[0u8; 1024]);
    gzip(&tar)
}

fn read(bytes: &[u8]) -> Result<(String, ChartFiles), ChartError> {
    read_archive(bytes, &Limits::default())
}

fn code_of(result: Result<(String, ChartFiles), ChartError>) -> &'static str {
    match result {
        Ok((name, files)) => panic!("accepted: {name} {:?}", files.files.keys()),
        Err(err) => {
            // Every error renders and hints without panicking.
            assert!(!err.to_string().is_empty());
            assert!(!err.hint().is_empty());
            err.code()
        }
    }
}

// ----------------------------------------------------- directory reading

#[test]
fn read_dir_applies_helmignore_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    sample_chart(dir.path());
    let chart = read_dir(dir.path(), &Limits::default()).unwrap();
    let names: Vec<&str> = chart.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            ".helmignore",
            "Chart.yaml",
            "files/conf/app.ini",
            "templates/_helpers.tpl",
            "templates/deploy.yaml",
            "values.yaml",
        ]
    );
    assert_eq!(chart.get("values.yaml"), Some(&b"replicas: 1\n"[..]));
}

fn kept(helmignore: &str, paths: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".helmignore", helmignore.as_bytes());
    for path in paths {
        write(dir.path(), path, b"x");
    }
    let chart = read_dir(dir.path(), &Limits::default()).unwrap();
    chart.files.into_keys().collect()
}

#[test]
fn helmignore_globs_dirs_anchors_and_negation() {
    let all = [
        "Chart.yaml",
        "a.txt",
        "sub/a.txt",
        "sub/b.yaml",
        "build/out.bin",
        "docs/build/keep.md",
        "secret",
        "sub/secret/x",
        "x1.log",
        "x10.log",
    ];
    // Globs on the base name, classes and `?`.
    assert_eq!(
        kept("*.txt\nx?.log\n", &all),
        [
            ".helmignore",
            "Chart.yaml",
            "build/out.bin",
            "docs/build/keep.md",
            "secret",
            "sub/b.yaml",
            "sub/secret/x",
            "x10.log",
        ]
    );
    // Trailing `/`: directories only (the file `secret` stays).
    assert_eq!(
        kept("secret/\n", &all),
        [
            ".helmignore",
            "Chart.yaml",
            "a.txt",
            "build/out.bin",
            "docs/build/keep.md",
            "secret",
            "sub/a.txt",
            "sub/b.yaml",
            "x1.log",
            "x10.log",
        ]
    );
    // Leading `/` anchors at the root; a `/` inside matches whole paths.
    assert_eq!(
        kept("/build/\n/a.txt\nsub/*.yaml\n", &all),
        [
            ".helmignore",
            "Chart.yaml",
            "docs/build/keep.md",
            "secret",
            "sub/a.txt",
            "sub/secret/x",
            "x1.log",
            "x10.log",
        ]
    );
    // Helm's negation: a negated rule ignores whatever it does not match,
    // so "keep only" lists are written negations first.
    assert_eq!(kept("!Chart.yaml\n", &all), ["Chart.yaml"]);
    // Directories not matching a negated rule are skipped whole.
    assert_eq!(
        kept(
            "!*.yaml\nvalues.yaml\n",
            &["Chart.yaml", "values.yaml", "sub/x.yaml"]
        ),
        ["Chart.yaml"]
    );
    // A negated directory rule ignores every file: nothing is left.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".helmignore", b"!*.txt\n!sub/\n");
    write(dir.path(), "a.txt", b"x");
    write(dir.path(), "sub/a.txt", b"x");
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-layout");
    // `.helmignore` may exclude itself.
    assert_eq!(kept(".helmignore\n", &["Chart.yaml"]), ["Chart.yaml"]);
}

#[test]
fn helmignore_errors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Chart.yaml", b"name: x\n");
    write(dir.path(), ".helmignore", b"*.md\ntemplates/**/x\n");
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-helmignore");
    assert!(
        matches!(err, ChartError::HelmIgnore { line: 2, .. }),
        "{err}"
    );
    write(dir.path(), ".helmignore", b"[z-\n");
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-helmignore");
}

#[cfg(unix)]
#[test]
fn read_dir_refuses_symlinks_unless_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Chart.yaml", b"name: x\n");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.yaml")).unwrap();
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-symlink");
    assert_eq!(err.path(), Some("link.yaml"));

    write(dir.path(), ".helmignore", b"link.yaml\n");
    let chart = read_dir(dir.path(), &Limits::default()).unwrap();
    assert!(chart.get("link.yaml").is_none());

    // A symlinked directory is judged as a directory by the rules.
    fs::remove_file(dir.path().join("link.yaml")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("etcdir")).unwrap();
    write(dir.path(), ".helmignore", b"etcdir/\n");
    assert!(read_dir(dir.path(), &Limits::default()).is_ok());
    write(dir.path(), ".helmignore", b"");
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-symlink");
}

#[cfg(unix)]
#[test]
fn read_dir_refuses_bad_names_and_special_files() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Chart.yaml", b"name: x\n");
    let bad = std::ffi::OsStr::from_bytes(b"bad-\xff.yaml");
    fs::write(dir.path().join(bad), b"x").unwrap();
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-invalid-name");
    // Ignored (matched on the raw bytes, as Helm does): fine.
    write(dir.path(), ".helmignore", b"bad-*\n");
    assert!(read_dir(dir.path(), &Limits::default()).is_ok());

    write(dir.path(), "templates\\x.yaml", b"x");
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-invalid-name");
    fs::remove_file(dir.path().join("templates\\x.yaml")).unwrap();

    write(dir.path(), "..data", b"x");
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-invalid-name");
    fs::remove_file(dir.path().join("..data")).unwrap();

    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-special-file");
    assert_eq!(err.path(), Some("sock"));
}

#[test]
fn read_dir_limits() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Chart.yaml", b"name: x\n");
    write(dir.path(), "big.bin", &vec![7u8; 6 * MIB as usize]);
    let err = read_dir(dir.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-file-too-large");
    assert_eq!(err.path(), Some("big.bin"));

    fs::remove_file(dir.path().join("big.bin")).unwrap();
    for i in 0..4 {
        write(dir.path(), &format!("f{i}"), &[1u8; 400]);
    }
    let small = Limits {
        max_total_bytes: 1000,
        max_file_bytes: 500,
    };
    let err = read_dir(dir.path(), &small).unwrap_err();
    assert_eq!(err.code(), "chart-too-large");

    let empty = tempfile::tempdir().unwrap();
    fs::create_dir(empty.path().join("templates")).unwrap();
    let err = read_dir(empty.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-layout");
    let err = read_dir(&empty.path().join("missing"), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "chart-io");
}

// ------------------------------------------------------------- packaging

#[test]
fn round_trip_dir_pack_archive() {
    let dir = tempfile::tempdir().unwrap();
    sample_chart(dir.path());
    let long = format!("files/{}/{}.yaml", "d".repeat(120), "n".repeat(90));
    write(dir.path(), &long, b"long");
    write(dir.path(), "files/ünïcode.txt", b"utf8");
    write(dir.path(), "files/empty", b"");
    let chart = read_dir(dir.path(), &Limits::default()).unwrap();
    let packed = pack("demo", &chart);
    let (name, back) = read(&packed).unwrap();
    assert_eq!(name, "demo");
    assert_eq!(back, chart);
    assert_eq!(back.get(&long), Some(&b"long"[..]));
    // And again: packing what was read gives the same bytes.
    assert_eq!(pack(&name, &back), packed);
}

#[cfg(unix)]
#[test]
fn pack_is_reproducible_across_mtimes_and_modes() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, SystemTime};
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    sample_chart(a.path());
    sample_chart(b.path());
    for entry in walkdir::WalkDir::new(b.path()).min_depth(1) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let f = fs::File::options().write(true).open(entry.path()).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_234_567_890))
                .unwrap();
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let one = pack("demo", &read_dir(a.path(), &Limits::default()).unwrap());
    let two = pack("demo", &read_dir(b.path(), &Limits::default()).unwrap());
    assert_eq!(one, two);
    assert_eq!(digest(&one), digest(&two));
}

#[test]
fn pack_golden_digest() {
    // Pins the pack format (chart::pack): a change here means every package, and every
    // digest of one, would change, e.g. after a libdeflate upgrade or a new deflate level.
    let chart = files(&[
        (
            "Chart.yaml",
            b"apiVersion: v2\nname: golden\nversion: 0.1.0\n",
        ),
        ("values.yaml", b"a: 1\n"),
        ("templates/cm.yaml", b"kind: ConfigMap\n"),
    ]);
    let packed = pack("golden", &chart);
    assert_eq!(digest(&packed), GOLDEN_DIGEST);
    assert_eq!(
        digest(&pack_with_level("golden", &chart, 1)),
        GOLDEN_DIGEST_V2
    );
}

/// Pack format v4 (Helm's order, level 7); v2 (level 1 for every package, path order) is what
/// `pack_with_level(.., 1)` gives.
const GOLDEN_DIGEST: &str = "4c7bade1e165322286ce4f80fe554f0714aff02988dfa8d37d9480c40f083db6";
const GOLDEN_DIGEST_V2: &str = "97f27a0e06ae6a0d9647614f737fd5e759b8bb7ba525bb6f03bf727cf614a4e4";

#[test]
fn pack_compresses() {
    let values: String = (0..2000)
        .map(|i| format!("key{i}:\n  enabled: true\n  replicas: {}\n", i % 7))
        .collect();
    let chart = files(&[
        ("Chart.yaml", b"apiVersion: v2\nname: big\nversion: 0.1.0\n"),
        ("values.yaml", values.as_bytes()),
    ]);
    let packed = pack("big", &chart);
    assert!(
        packed.len() * 5 < values.len(),
        "{} bytes of values packed into {} bytes",
        values.len(),
        packed.len()
    );
}

#[test]
fn gzip_header_is_fixed() {
    let packed = pack("demo", &files(&[("Chart.yaml", b"name: demo\n")]));
    // magic, deflate, no flags (no name/comment/extra), mtime 0, XFL 0 (level 6), OS 255.
    assert_eq!(
        packed[..10],
        [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]
    );
}

/// Incompressible bytes, deterministic (xorshift).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn a_big_package_is_deflated_at_the_strongest_level() {
    let small = files(&[("Chart.yaml", b"name: demo\n")]);
    let data = noise(300 * 1024, 7);
    let big = files(&[("Chart.yaml", b"name: demo\n"), ("files/blob", &data)]);
    // XFL 2: libdeflate's "maximum" (level 8 and up); below the threshold, level 7's 0.
    assert_eq!(pack("demo", &big)[8], 2);
    assert_eq!(pack("demo", &small)[8], 0);
    assert_eq!(pack("demo", &big), pack_with_level("demo", &big, 12));
    assert_eq!(pack("demo", &small), pack_with_level("demo", &small, 7));
}

#[test]
fn a_package_of_pack_format_v2_is_the_same_chart() {
    let chart = files(&[
        (
            "Chart.yaml",
            b"apiVersion: v2\nname: demo\nversion: 0.1.0\n",
        ),
        ("values.yaml", "replicas: 1\n".repeat(200).as_bytes()),
    ]);
    let v2 = pack_with_level("demo", &chart, 1);
    let v3 = pack("demo", &chart);
    assert_ne!(v2, v3, "the formats differ in bytes");
    assert_eq!(v2[8], 4, "v2: level 1, XFL 4");
    assert!(same_chart(&v2, &v3));
    let mut other = chart.clone();
    other
        .insert("values.yaml", b"replicas: 2\n".to_vec())
        .unwrap();
    assert!(!same_chart(&v2, &pack("demo", &other)));
    assert!(
        !same_chart(&v3, &pack("other", &chart)),
        "another chart name"
    );
    assert!(!same_chart(b"not a package", b"not a package either"));
    assert!(same_chart(b"manifests", b"manifests"));
}

#[test]
fn tar_headers_are_fixed_and_in_helm_s_order() {
    let long = format!("templates/{}/x.yaml", "y".repeat(300));
    let chart = files(&[
        ("values.yaml", b"v"),
        ("Chart.yaml", b"c"),
        ("templates/a.yaml", b"a"),
        (&long, b"l"),
        ("files/ä.txt", b"u"),
    ]);
    let packed = pack("demo", &chart);
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    assert_eq!(tar_bytes.len() % 512, 0);
    assert!(tar_bytes[tar_bytes.len() - 1024..].iter().all(|&b| b == 0));

    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(h.entry_type(), EntryType::Regular);
        assert_eq!(&h.as_bytes()[257..265], b"ustar\x0000");
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        names.push(String::from_utf8(entry.path_bytes().into_owned()).unwrap());
    }
    // As `helm package` writes them: Chart.yaml, values.yaml, templates/, the other files.
    assert_eq!(
        names,
        [
            "demo/Chart.yaml".to_string(),
            "demo/values.yaml".to_string(),
            "demo/templates/a.yaml".to_string(),
            format!("demo/{long}"),
            "demo/files/ä.txt".to_string(),
        ]
    );
    assert_eq!(names.len(), 5);
    assert!(names.contains(&format!("demo/{long}")));
    assert!(names.contains(&"demo/files/ä.txt".to_string()));
    // The raw stream: a PAX header precedes the long and the non-ASCII path.
    let pax_headers = tar_bytes
        .chunks(512)
        .filter(|block| block[156] == b'x' && block.starts_with(b"././@PaxHeader"))
        .count();
    assert_eq!(pax_headers, 2);
    // Every ustar name/prefix field is plain ASCII, PAX or not.
    for block in tar_bytes.chunks(512).filter(|b| &b[257..263] == b"ustar\0") {
        assert!(block[..100].is_ascii() && block[345..500].is_ascii());
    }
}

#[test]
fn chart_files_insert_validates() {
    let mut chart = ChartFiles::new();
    chart.insert("a/b.yaml", vec![]).unwrap();
    let code = |r: Result<(), ChartError>| r.unwrap_err().code();
    assert_eq!(code(chart.insert("../x", vec![])), "chart-path-traversal");
    assert_eq!(code(chart.insert("/x", vec![])), "chart-path-traversal");
    assert_eq!(code(chart.insert("C:/x", vec![])), "chart-path-traversal");
    assert_eq!(code(chart.insert("a//b", vec![])), "chart-invalid-name");
    assert_eq!(code(chart.insert("a\\b", vec![])), "chart-invalid-name");
    assert_eq!(code(chart.insert("", vec![])), "chart-invalid-name");
    assert_eq!(code(chart.insert("a", vec![])), "chart-layout");
    assert_eq!(code(chart.insert("a/b.yaml/c", vec![])), "chart-layout");
    assert_eq!(chart.total_bytes(), 0);
}

#[test]
fn digest_is_sha256_hex() {
    assert_eq!(
        digest(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

// ------------------------------------------------------- hostile archives

#[test]
fn hostile_paths_are_refused() {
    let cases: &[(&[u8], &str)] = &[
        (b"../evil", "chart-path-traversal"),
        (b"demo/../../evil", "chart-path-traversal"),
        (b"demo/templates/../x", "chart-path-traversal"),
        (b"/abs/evil", "chart-path-traversal"),
        (b"demo\\..\\..\\evil", "chart-path-traversal"),
        (b"demo/C:/evil", "chart-path-traversal"),
        (b"demo/..data", "chart-invalid-name"),
        (b"demo/bad-\xff", "chart-invalid-name"),
        (b"Chart.yaml", "chart-layout"),
        (b"./demo/Chart.yaml", "chart-layout"),
        (b"demo", "chart-layout"),
    ];
    for (name, want) in cases {
        let mut tar = Vec::new();
        file(&mut tar, "demo/values.yaml", b"a: 1\n");
        member(&mut tar, name, EntryType::Regular, b"", b"evil");
        let got = code_of(read(&finish(tar)));
        assert_eq!(got, *want, "{}", String::from_utf8_lossy(name));
    }
    // Traversal in a directory entry is refused too.
    let mut tar = Vec::new();
    member(&mut tar, b"demo/../../", EntryType::Directory, b"", b"");
    file(&mut tar, "demo/Chart.yaml", b"x");
    assert_eq!(code_of(read(&finish(tar))), "chart-path-traversal");
}

#[test]
fn links_and_special_entries_are_refused() {
    let cases: &[(EntryType, &[u8], &str)] = &[
        (EntryType::Symlink, b"/etc/passwd", "chart-symlink"),
        (EntryType::Symlink, b"../../x", "chart-symlink"),
        (EntryType::Link, b"demo/Chart.yaml", "chart-hardlink"),
        (EntryType::Char, b"", "chart-special-file"),
        (EntryType::Block, b"", "chart-special-file"),
        (EntryType::Fifo, b"", "chart-special-file"),
        (EntryType::GNUSparse, b"", "chart-special-file"),
        (EntryType::new(b'Z'), b"", "chart-special-file"),
    ];
    for (kind, link, want) in cases {
        let mut tar = Vec::new();
        file(&mut tar, "demo/Chart.yaml", b"name: demo\n");
        member(&mut tar, b"demo/templates/x.yaml", *kind, link, b"");
        let err = read(&finish(tar)).unwrap_err();
        assert_eq!(err.code(), *want, "{kind:?}");
        assert_eq!(err.path(), Some("demo/templates/x.yaml"));
    }
}

#[test]
fn layout_problems_are_refused() {
    // Two top-level directories.
    let mut tar = Vec::new();
    file(&mut tar, "demo/Chart.yaml", b"x");
    file(&mut tar, "other/values.yaml", b"x");
    assert_eq!(code_of(read(&finish(tar))), "chart-layout");
    // Empty archive, and only directories.
    assert_eq!(code_of(read(&finish(Vec::new()))), "chart-layout");
    assert_eq!(code_of(read(&gzip(b""))), "chart-layout");
    let mut tar = Vec::new();
    member(&mut tar, b"demo/", EntryType::Directory, b"", b"");
    assert_eq!(code_of(read(&finish(tar))), "chart-layout");
    // Duplicate file.
    let mut tar = Vec::new();
    file(&mut tar, "demo/Chart.yaml", b"x");
    file(&mut tar, "demo//Chart.yaml", b"y");
    assert_eq!(code_of(read(&finish(tar))), "chart-layout");
    // A path that is both a file and a directory.
    let mut tar = Vec::new();
    file(&mut tar, "demo/templates", b"x");
    file(&mut tar, "demo/templates/a.yaml", b"y");
    assert_eq!(code_of(read(&finish(tar))), "chart-layout");
}

#[test]
fn not_gzip_and_corrupt_data_are_refused() {
    assert_eq!(code_of(read(b"")), "chart-not-gzip");
    assert_eq!(code_of(read(b"apiVersion: v2\n")), "chart-not-gzip");
    let mut tar = Vec::new();
    file(&mut tar, "demo/Chart.yaml", b"name: demo\n");
    assert_eq!(code_of(read(&tar)), "chart-not-gzip");

    // gzip of something that is not a tar.
    assert_eq!(code_of(read(&gzip(&[b'y'; 2048]))), "chart-corrupt");
    // Bad header checksum.
    let mut bad = tar.clone();
    bad[148] ^= 1;
    assert_eq!(code_of(read(&finish(bad))), "chart-corrupt");
    // Truncated gzip stream.
    let good = finish(tar.clone());
    assert_eq!(code_of(read(&good[..good.len() / 2])), "chart-corrupt");
    // Damaged gzip checksum (only visible once the stream is read to the end).
    let mut crc = good.clone();
    let n = crc.len();
    crc[n - 8] ^= 0xff;
    assert_eq!(code_of(read(&crc)), "chart-corrupt");
    // Truncated file data: the header promises more than the stream holds.
    let mut short = Vec::new();
    member(&mut short, b"demo/a", EntryType::Regular, b"", &[1u8; 2000]);
    short.truncate(512 + 700);
    assert_eq!(code_of(read(&gzip(&short))), "chart-corrupt");
    // Something hidden after the end-of-archive marker.
    let mut hidden = tar.clone();
    hidden.extend_from_slice(&[0u8; 1024]);
    file(&mut hidden, "demo/smuggled", b"x");
    assert_eq!(code_of(read(&gzip(&hidden))), "chart-corrupt");
    // Good one still reads.
    assert!(read(&good).is_ok());
}

#[test]
fn oversized_files_are_refused() {
    let mut tar = Vec::new();
    file(&mut tar, "demo/Chart.yaml", b"name: demo\n");
    file(&mut tar, "demo/big.bin", &vec![0u8; 6 * MIB as usize]);
    let err = read(&finish(tar)).unwrap_err();
    assert_eq!(err.code(), "chart-file-too-large");
    assert_eq!(err.path(), Some("demo/big.bin"));

    // A header that claims a huge size is refused before any data is read.
    let mut tar = Vec::new();
    let mut header = Header::new_ustar();
    header.set_path("demo/huge").unwrap();
    header.set_mode(0o644);
    header.set_size(1 << 40);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    let no_file_limit = Limits {
        max_total_bytes: 100 * MIB,
        max_file_bytes: u64::MAX,
    };
    let err = read_archive(&gzip(&tar), &no_file_limit).unwrap_err();
    assert_eq!(err.code(), "chart-too-large");
    assert_eq!(err.path(), Some("demo/huge"));
}

/// Raw deflate of `data`, ending on a byte boundary with a sync flush and
/// referring only to its own bytes, so copies can be concatenated.
fn deflate_segment(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() / 256 + 4096);
    loop {
        let done = c.total_in() as usize;
        c.compress_vec(&data[done..], &mut out, FlushCompress::Sync)
            .unwrap();
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

/// A gzip stream of `count` tar members of `each` zero bytes, built from one
/// compressed segment repeated: a few hundred KiB standing for
/// `count * each` bytes, without ever holding the expanded data.
fn gzip_bomb(count: usize, each: usize, kind: EntryType) -> Vec<u8> {
    let zeros = deflate_segment(&vec![0u8; each]);
    let mut out = vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];
    for i in 0..count {
        let mut header = Vec::new();
        member(
            &mut header,
            format!("demo/f{i:03}").as_bytes(),
            kind,
            b"",
            b"",
        );
        // Patch in the real size (member() wrote an empty body).
        let mut h = Header::new_ustar();
        h.as_mut_bytes().copy_from_slice(&header[..512]);
        h.set_size(each as u64);
        h.set_cksum();
        out.extend_from_slice(&deflate_segment(h.as_bytes()));
        out.extend_from_slice(&zeros);
    }
    // Final empty block; the trailer's CRC/size are never reached by a
    // reader that stops in time.
    let mut c = Compress::new(Compression::default(), false);
    let mut tail = Vec::with_capacity(64);
    c.compress_vec(&[], &mut tail, FlushCompress::Finish)
        .unwrap();
    out.extend_from_slice(&tail);
    out.extend_from_slice(&[0; 8]);
    out
}

#[test]
fn gzip_bomb_is_stopped_while_streaming() {
    // 200 MiB of zeros as 50 files of 4 MiB (each under the per-file limit),
    // compressed to ~200 KiB. Helm's limits stop it at the 26th file.
    let bomb = gzip_bomb(50, 4 * MIB as usize, EntryType::Regular);
    assert!(bomb.len() < 1024 * 1024, "bomb is {} bytes", bomb.len());
    let err = read(&bomb).unwrap_err();
    assert_eq!(err.code(), "chart-too-large");
    assert_eq!(err.path(), Some("demo/f025"));

    // Smaller limits stop it sooner.
    let limits = Limits {
        max_total_bytes: 16 * MIB,
        max_file_bytes: 5 * MIB,
    };
    let err = read_archive(&bomb, &limits).unwrap_err();
    assert_eq!(err.code(), "chart-too-large");
    assert_eq!(err.path(), Some("demo/f004"));

    // Data that is never kept (here: directory entries' bodies) still counts
    // against the cap on the whole decompressed stream (2 * 16 MiB + 1 MiB).
    let bomb = gzip_bomb(50, 4 * MIB as usize, EntryType::Directory);
    let err = read_archive(&bomb, &limits).unwrap_err();
    assert_eq!(err.code(), "chart-too-large");
    assert_eq!(err.path(), None);
}

#[test]
fn oversized_extension_headers_are_refused() {
    let mut tar = Vec::new();
    let mut header = Header::new_ustar();
    header.set_path("././@LongLink").unwrap();
    header.set_entry_type(EntryType::GNULongName);
    header.set_size(64 * MIB);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    assert_eq!(code_of(read(&gzip(&tar))), "chart-corrupt");
}

// ------------------------------------------------- formats Helm accepts

#[test]
fn gnu_and_pax_long_names_work() {
    let long = format!("demo/templates/{}/deploy.yaml", "x".repeat(200));
    // GNU long names, as the tar crate's builder writes them.
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in [("demo/Chart.yaml", &b"name: demo\n"[..]), (&long, b"long")] {
        let mut header = Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        builder.append_data(&mut header, path, data).unwrap();
    }
    let gnu = gzip(&builder.into_inner().unwrap());
    let (name, chart) = read(&gnu).unwrap();
    assert_eq!(name, "demo");
    assert_eq!(chart.get(&long["demo/".len()..]), Some(&b"long"[..]));

    // PAX path records written by hand, plus a global header to skip.
    let mut tar = Vec::new();
    let record = |key: &str, value: &str| {
        let base = key.len() + value.len() + 3;
        let mut len = base + 1;
        while len != base + len.to_string().len() {
            len = base + len.to_string().len();
        }
        format!("{len} {key}={value}\n")
    };
    let global = record("comment", "global");
    member(
        &mut tar,
        b"pax_global_header",
        EntryType::XGlobalHeader,
        b"",
        global.as_bytes(),
    );
    file(&mut tar, "demo/Chart.yaml", b"name: demo\n");
    let local = record("path", &long) + &record("size", "4") + &record("mtime", "1.5");
    member(
        &mut tar,
        b"././@PaxHeader",
        EntryType::XHeader,
        b"",
        local.as_bytes(),
    );
    file(&mut tar, "demo/truncated-name", b"long");
    let (_, chart) = read(&finish(tar)).unwrap();
    assert_eq!(chart.get(&long["demo/".len()..]), Some(&b"long"[..]));
    assert!(chart.get("truncated-name").is_none());

    // Conflicting GNU and PAX names are refused.
    let mut tar = Vec::new();
    member(
        &mut tar,
        b"././@LongLink",
        EntryType::GNULongName,
        b"",
        b"demo/a\0",
    );
    member(
        &mut tar,
        b"././@PaxHeader",
        EntryType::XHeader,
        b"",
        record("path", "demo/b").as_bytes(),
    );
    file(&mut tar, "demo/c", b"x");
    assert_eq!(code_of(read(&finish(tar))), "chart-corrupt");
}

#[test]
fn tolerated_variants_read_like_helm() {
    let mut tar = Vec::new();
    // Directory entries (including `./` and old-style trailing slash) are
    // skipped; Windows separators are normalised; `.` components dropped.
    member(&mut tar, b"./", EntryType::Directory, b"", b"");
    member(&mut tar, b"demo/", EntryType::Directory, b"", b"");
    old_style(&mut tar, b"demo/templates/", b"");
    file(&mut tar, "demo\\templates\\a.yaml", b"a");
    file(&mut tar, "demo/./values.yaml", b"v");
    old_style(&mut tar, b"demo/Chart.yaml", b"c");
    let first = finish(tar);
    // A second gzip member, as Go's multistream reader accepts.
    let mut two = gzip(&[]);
    two.extend_from_slice(&first);
    let (name, chart) = read(&two).unwrap();
    assert_eq!(name, "demo");
    let names: Vec<&str> = chart.files.keys().map(String::as_str).collect();
    assert_eq!(names, ["Chart.yaml", "templates/a.yaml", "values.yaml"]);
}

#[test]
fn mutated_archives_never_panic() {
    let mut tar = Vec::new();
    let long = format!("demo/{}/x", "l".repeat(150));
    member(
        &mut tar,
        b"././@LongLink",
        EntryType::GNULongName,
        b"",
        long.as_bytes(),
    );
    file(&mut tar, "demo/ignored", b"x");
    file(&mut tar, "demo/Chart.yaml", b"name: demo\n");
    member(
        &mut tar,
        b"././@PaxHeader",
        EntryType::XHeader,
        b"",
        b"15 path=demo/p\n",
    );
    file(&mut tar, "demo/q", b"p");
    tar.extend_from_slice(&[0u8; 1024]);
    let (_, chart) = read(&gzip(&tar)).unwrap();
    let names: Vec<&str> = chart.files.keys().map(String::as_str).collect();
    assert_eq!(names, ["Chart.yaml", &long["demo/".len()..], "p"]);
    // Header fields (name, mode, size, type, magic) and extension data set
    // to a few telling values; each result must be an answer, not a panic.
    let mut positions = Vec::new();
    for block in (0..tar.len() - 1024).step_by(512) {
        positions.extend((block..block + 160).chain(block + 257..block + 265));
    }
    positions.extend(512..512 + 161); // the GNU long name's data
    let pax_data = tar.len() - 1024 - 1024 - 512;
    assert_eq!(&tar[pax_data..pax_data + 3], b"15 ");
    positions.extend(pax_data..pax_data + 15);
    for pos in positions {
        for value in [0u8, 0xff] {
            let mut bad = tar.clone();
            bad[pos] = value;
            let _ = read(&gzip(&bad));
        }
    }
    // Every truncation of the compressed stream.
    let good = gzip(&tar);
    for len in 0..good.len() {
        assert!(read(&good[..len]).is_err());
    }
}

// ---------------------------------------------------------------- what a package holds

/// The entry names of a package, in their order, without the top directory.
fn entry_names(package: &[u8]) -> Vec<String> {
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(package)
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path().unwrap().to_string_lossy().into_owned();
            path.split_once('/').unwrap().1.to_string()
        })
        .collect()
}

fn subchart(name: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let chart_yaml = format!("apiVersion: v2\nname: {name}\nversion: 1.0.0\n");
    let mut list: Vec<(&str, &[u8])> = vec![
        ("Chart.yaml", chart_yaml.as_bytes()),
        ("values.yaml", b"port: 80\n"),
        ("templates/svc.yaml", b"kind: Service\n"),
    ];
    list.extend_from_slice(extra);
    pack_with_level(name, &files(&list), 1)
}

#[test]
fn vendored_subchart_archives_are_unpacked_as_helm_package_unpacks_them() {
    // redis-17.3.14.tgz holds a subchart of its own, common-2.0.0.tgz, unpacked too.
    let common = subchart("common", &[]);
    let redis = subchart("redis", &[("charts/common-2.0.0.tgz", &common)]);
    let chart = files(&[
        ("Chart.yaml", b"apiVersion: v2\nname: web\nversion: 1.0.0\n"),
        ("charts/redis-17.3.14.tgz", &redis),
        ("templates/cm.yaml", b"kind: ConfigMap\n"),
    ]);
    let packed = pack("web", &chart);
    assert_eq!(
        entry_names(&packed),
        [
            "Chart.yaml",
            "templates/cm.yaml",
            "charts/redis/Chart.yaml",
            "charts/redis/values.yaml",
            "charts/redis/templates/svc.yaml",
            "charts/redis/charts/common/Chart.yaml",
            "charts/redis/charts/common/values.yaml",
            "charts/redis/charts/common/templates/svc.yaml",
        ]
    );
    let (_, read) = read_archive(&packed, &Limits::default()).unwrap();
    assert_eq!(read, package_files(&chart));
    assert_eq!(
        read.get("charts/redis/charts/common/Chart.yaml"),
        Some(&b"apiVersion: v2\nname: common\nversion: 1.0.0\n"[..])
    );
    // Laid out once is laid out: packing the package's files again changes nothing.
    assert_eq!(pack("web", &read), packed);
}

#[test]
fn archives_that_cannot_be_unpacked_faithfully_are_kept_as_they_are() {
    let redis = subchart("redis", &[]);
    let no_chart_yaml = pack_with_level("x", &files(&[("values.yaml", b"a: 1\n")]), 1);
    let hidden_top = pack_with_level(".redis", &files(&[("Chart.yaml", b"name: r\n")]), 1);
    let chart = files(&[
        ("Chart.yaml", b"apiVersion: v2\nname: web\nversion: 1.0.0\n"),
        // Helm's loader skips `_` and `.` names in charts/: so does the unpacking.
        ("charts/_redis.tgz", &redis),
        ("charts/broken.tgz", b"\x1f\x8b\x08 not gzip data"),
        ("charts/empty.tgz", &no_chart_yaml),
        ("charts/hidden.tgz", &hidden_top),
        // charts/redis/ is taken by a directory subchart: the archive stays an archive.
        ("charts/redis-17.3.14.tgz", &redis),
        (
            "charts/redis/Chart.yaml",
            b"apiVersion: v2\nname: redis\nversion: 2.0.0\n",
        ),
        // Not a subchart archive: below templates/.
        ("templates/charts/x.tgz", &redis),
    ]);
    let laid = package_files(&chart);
    assert_eq!(laid, chart);
}

#[test]
fn chart_yaml_comments_are_dropped_where_that_keeps_its_yaml() {
    let with_comments = b"# Copyright The Authors.\n#\n# Licensed under the Apache License.\n\
        apiVersion: v2\nname: web # the chart's name\n  # an indented comment\n\
        description: 'a # in quotes stays'\nversion: 1.0.0\nkeywords:\n  - \"#hash\"  # kept key\n";
    let chart = files(&[
        ("Chart.yaml", with_comments),
        ("values.yaml", b"# values keep their comments\na: 1\n"),
        (
            "charts/sub/Chart.yaml",
            b"# sub\nname: sub\nversion: 1.0.0\n",
        ),
        (
            "charts/_skip/Chart.yaml",
            b"# skipped by Helm's loader\nname: x\n",
        ),
    ]);
    let laid = package_files(&chart);
    assert_eq!(
        std::str::from_utf8(laid.get("Chart.yaml").unwrap()).unwrap(),
        "apiVersion: v2\nname: web\ndescription: 'a # in quotes stays'\nversion: 1.0.0\n\
         keywords:\n  - \"#hash\"  # kept key\n"
    );
    assert_eq!(
        laid.get("charts/sub/Chart.yaml"),
        Some(&b"name: sub\nversion: 1.0.0\n"[..])
    );
    for kept in ["values.yaml", "charts/_skip/Chart.yaml"] {
        assert_eq!(laid.get(kept), chart.get(kept), "{kept}");
    }
    let parse = |b: &[u8]| serde_yaml::from_slice::<serde_yaml::Value>(b).unwrap();
    assert_eq!(parse(laid.get("Chart.yaml").unwrap()), parse(with_comments));
    assert_eq!(package_files(&laid), laid, "idempotent");

    // A `#` line that is content (a block scalar), invalid UTF-8, or YAML that does not parse:
    // the file stays as it is.
    for text in [
        &b"name: web\ndescription: |\n  # Heading, not a comment\n  text\nversion: 1.0.0\n"[..],
        &b"# caf\xe9\nname: web\nversion: 1.0.0\n"[..],
        &b"# comment\nname: [web\n"[..],
    ] {
        let chart = files(&[("Chart.yaml", text)]);
        assert_eq!(package_files(&chart), chart);
    }
}

#[test]
fn a_package_of_pack_format_v3_is_the_same_chart_as_today_s() {
    // v3 packed the files as given (comments, vendored archive) in path order at level 6.
    let redis = subchart("redis", &[]);
    let chart = files(&[
        (
            "Chart.yaml",
            b"# License header.\napiVersion: v2\nname: web\nversion: 1.0.0\n",
        ),
        ("charts/redis-17.3.14.tgz", &redis),
        ("values.yaml", b"a: 1\n"),
    ]);
    let v3 = pack_with_level("web", &chart, 6);
    let v4 = pack("web", &chart);
    assert_ne!(v3, v4);
    assert!(same_chart(&v3, &v4));
    let mut other = chart.clone();
    other.insert("values.yaml", b"a: 2\n".to_vec()).unwrap();
    assert!(!same_chart(&v3, &pack("web", &other)));
}

#[test]
fn subcharts_are_written_in_helm_s_order_after_the_parent_s_files() {
    let chart = files(&[
        ("Chart.yaml", b"name: web\n"),
        ("README.md", b"readme"),
        ("charts/.gitkeep", b""),
        ("charts/b/values.yaml", b"b: 1\n"),
        ("charts/b/Chart.yaml", b"name: b\n"),
        ("charts/a/templates/t.yaml", b"t"),
        ("charts/a/Chart.yaml", b"name: a\n"),
        ("charts/a-b/Chart.yaml", b"name: a-b\n"),
        ("templates/z.yaml", b"z"),
        ("values.schema.json", b"{}"),
    ]);
    assert_eq!(
        entry_names(&pack("web", &chart)),
        [
            "Chart.yaml",
            "values.schema.json",
            "templates/z.yaml",
            "README.md",
            "charts/a-b/Chart.yaml",
            "charts/a/Chart.yaml",
            "charts/a/templates/t.yaml",
            "charts/b/Chart.yaml",
            "charts/b/values.yaml",
            "charts/.gitkeep",
        ]
    );
}

#[test]
fn subchart_archives_are_found_at_any_depth_with_what_reading_them_gave() {
    let common = subchart("common", &[]);
    let redis = subchart("redis", &[("charts/common-2.0.0.tgz", &common)]);
    let chart = files(&[
        ("Chart.yaml", b"name: web\n"),
        ("charts/redis-17.3.14.tgz", &redis),
        ("charts/db/Chart.yaml", b"name: db\n"),
        ("charts/db/charts/broken.tgz", b"not gzip"),
        ("charts/_skipped.tgz", &redis),
    ]);
    let found: Vec<(String, bool)> = subchart_archives(&chart)
        .into_iter()
        .map(|(path, read)| (path, read.is_ok()))
        .collect();
    assert_eq!(
        found,
        [
            ("charts/db/charts/broken.tgz".to_string(), false),
            (
                "charts/redis-17.3.14.tgz/charts/common-2.0.0.tgz".to_string(),
                true
            ),
            ("charts/redis-17.3.14.tgz".to_string(), true),
        ]
    );
}
