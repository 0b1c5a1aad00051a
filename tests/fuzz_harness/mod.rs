//! The fuzz targets themselves, shared by the cargo-fuzz project (`fuzz/fuzz_targets/*.rs`
//! include this file with `#[path]`) and by the in-suite run (`tests/fuzz_smoke.rs`).
//!
//! Every target takes arbitrary bytes and must return without panicking; the checks below
//! (`assert!`) are properties that pitrix documents, so a failing one is a bug too.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pitrix::catalog::{AppFile, CategoryFile, ChartMeta, ReleaseFile, RepoFile};
use pitrix::chart::{self, ChartFiles, Limits};
use pitrix::diagnostics::{self, Diagnostic, Format};
use pitrix::load::yaml;

// ---------------------------------------------------------------------------------------------
// Target `yaml`: pitrix::load::yaml and the catalog file types.

/// Input: YAML text (invalid UTF-8 is read lossily, as the chart loader reads Chart.yaml).
pub fn yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(node) = yaml::parse(&text) {
        let _ = node.to_json();
        let _ = yaml::from_node::<AppFile>(&node);
        let _ = yaml::from_node::<ReleaseFile>(&node);
        let _ = yaml::from_node::<RepoFile>(&node);
        let _ = yaml::from_node::<CategoryFile>(&node);
        let _ = yaml::from_node::<ChartMeta>(&node);
        let _ = yaml::from_node::<Option<serde_json::Map<String, serde_json::Value>>>(&node);
        let _ = yaml::from_node::<serde_json::Value>(&node);
    }
    if let Ok(docs) = yaml::parse_stream(&text) {
        for doc in &docs {
            let _ = doc.to_json();
            let _ = doc.get("metadata").and_then(|m| m.get("name"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target `chart_archive`: pitrix::chart::read_archive and pack.

/// Limits small enough that the size checks are reached by small inputs.
pub const SMALL_LIMITS: Limits = Limits {
    max_total_bytes: 64 * 1024,
    max_file_bytes: 16 * 1024,
};

/// Input: the first byte says what follows:
/// * `F`: an uncompressed tar whose header checksums are fixed up (so mutations of the
///   headers reach the reader), then gzipped;
/// * `T`: an uncompressed tar, gzipped as it is;
/// * anything else: the bytes are the package (a `.tgz`) as they are.
pub fn chart_archive(data: &[u8]) {
    let package = archive_bytes(data);
    for limits in [Limits::default(), SMALL_LIMITS] {
        let Ok((top, files)) = chart::read_archive(&package, &limits) else {
            continue;
        };
        check_read_archive(&top, &files, &limits);
    }
}

/// The `.tgz` an input of [`chart_archive`] stands for.
pub fn archive_bytes(data: &[u8]) -> Cow<'_, [u8]> {
    match data.split_first() {
        Some((b'F', tar)) => {
            let mut tar = tar.to_vec();
            fix_tar_checksums(&mut tar);
            Cow::Owned(gzip(&tar))
        }
        Some((b'T', tar)) => Cow::Owned(gzip(tar)),
        _ => Cow::Borrowed(data),
    }
}

/// What `read_archive` promises of an archive it accepts.
fn check_read_archive(top: &str, files: &ChartFiles, limits: &Limits) {
    assert!(!files.files.is_empty(), "accepted an archive without files");
    assert!(
        !top.is_empty() && !top.contains(['/', '\\', '\0']) && top != "." && top != "..",
        "top-level directory {top:?} is not a plain name"
    );
    assert!(files.total_bytes() <= limits.max_total_bytes);
    let mut again = ChartFiles::new();
    for (path, data) in &files.files {
        assert!(
            u64::try_from(data.len()).unwrap_or(u64::MAX) <= limits.max_file_bytes,
            "{path}: over the per-file limit"
        );
        // `insert` checks the canonical-path and file/directory rules the docs promise.
        if let Err(e) = again.insert(path, data.clone()) {
            panic!("read_archive returned the non-canonical path {path:?}: {e}");
        }
    }
    // What is read can be packed, reproducibly, and reads back the same.
    let packed = chart::pack(top, files);
    assert_eq!(packed, chart::pack(top, files), "pack is not deterministic");
    match chart::read_archive(&packed, &Limits::default()) {
        Ok((top2, files2)) => {
            assert_eq!(top2, top, "pack → read_archive changed the chart name");
            assert!(files2 == *files, "pack → read_archive changed the files");
        }
        Err(e) => panic!("read_archive refuses what pack wrote for {top:?}: {e}"),
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// Walks a tar the way a reader does (header, data blocks, next header) and writes a correct
/// checksum into every header on the way. Zero blocks are stepped over.
pub fn fix_tar_checksums(tar: &mut [u8]) {
    let mut offset = 0usize;
    while let Some(block) = offset
        .checked_add(512)
        .and_then(|end| tar.get_mut(offset..end))
    {
        offset += 512;
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let data_blocks = tar_size(&block[124..136]).div_ceil(512);
        match usize::try_from(data_blocks)
            .ok()
            .and_then(|n| n.checked_mul(512))
            .and_then(|n| offset.checked_add(n))
        {
            Some(next) => offset = next,
            None => return,
        }
    }
}

/// A tar numeric field: octal text, or base-256 when the high bit of the first byte is set.
pub fn tar_size(field: &[u8]) -> u64 {
    match field.split_first() {
        Some((first, rest)) if first & 0x80 != 0 => {
            rest.iter().fold(u64::from(first & 0x7f), |acc, &b| {
                acc.saturating_mul(256).saturating_add(u64::from(b))
            })
        }
        _ => field
            .iter()
            .skip_while(|&&b| b == b' ' || b == 0)
            .take_while(|b| (b'0'..=b'7').contains(b))
            .fold(0u64, |acc, &b| {
                acc.saturating_mul(8).saturating_add(u64::from(b - b'0'))
            }),
    }
}

// ---------------------------------------------------------------------------------------------
// Target `catalog_loader`: pitrix::pipeline over a catalog directory made from the input.

/// At most this many files are written for one input.
pub const MAX_FILES: usize = 32;

/// Input: a [`container`] of files. A section whose path is `<archive>.tgz!<inner path>` is a
/// file inside that archive, which is then written with `chart::pack` (so the fuzzer can reach
/// a packaged chart's Chart.yaml without producing valid gzip itself). Paths are checked by
/// [`safe_path`]; sections with other paths are dropped.
///
/// Runs what `pitrix validate` and `pitrix compile` run: load and validate, the three
/// renderings of the diagnostics, and, for a catalog without errors, compile and emit.
pub fn catalog_loader(data: &[u8]) {
    let sections = container::decode(data);
    let dir = scratch_dir();
    let root = dir.path();
    write_catalog(root, &sections);

    let (catalog, diags) = pitrix::pipeline::check(root);
    for format in [Format::Text, Format::Json, Format::Github] {
        let _ = diagnostics::render(&diags, root, format);
    }
    if !diags.iter().any(Diagnostic::is_error) {
        let compiled = pitrix::compile::compile(&catalog);
        let _ = pitrix::emit::render(&compiled);
    }
}

/// A fresh directory for one catalog: under `PITRIX_FUZZ_TMPDIR` if set, else in `/dev/shm`
/// where that is a usable tmpfs (thousands of small catalogs written and removed on a disk
/// that other builds keep busy are several times slower), else in the usual temp dir.
pub fn scratch_dir() -> tempfile::TempDir {
    static PARENT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let parent = PARENT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PITRIX_FUZZ_TMPDIR") {
            return Some(PathBuf::from(dir));
        }
        let shm = Path::new("/dev/shm");
        tempfile::tempdir_in(shm).is_ok().then(|| shm.to_path_buf())
    });
    match parent {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("temporary directory")
}

/// Writes the sections of a [`catalog_loader`] input under `root`.
pub fn write_catalog(root: &Path, sections: &[(&[u8], &[u8])]) {
    let mut archives: BTreeMap<PathBuf, ChartFiles> = BTreeMap::new();
    for (path, content) in sections.iter().take(MAX_FILES) {
        let Ok(path) = std::str::from_utf8(path) else {
            continue;
        };
        match path.split_once('!') {
            Some((archive, inner)) => {
                let Some(archive) = safe_path(archive) else {
                    continue;
                };
                // `insert` refuses what a chart cannot hold; that is fine here.
                let _ = archives
                    .entry(archive)
                    .or_default()
                    .insert(inner, content.to_vec());
            }
            None => {
                if let Some(file) = safe_path(path) {
                    write_file(&root.join(file), content);
                }
            }
        }
    }
    for (archive, files) in archives {
        write_file(&root.join(archive), &chart::pack("chart", &files));
    }
}

fn write_file(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        // Fails when a file is where a directory is wanted: the file is then not written.
        let _ = fs::create_dir_all(parent);
    }
    let _ = fs::write(path, content);
}

/// A relative path of at most 6 components of `[A-Za-z0-9._+-]{1,64}`, none `.` or `..`.
pub fn safe_path(path: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = path.split('/').collect();
    let ok = parts.len() <= 6
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 64
                && *p != "."
                && *p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        });
    ok.then(|| parts.iter().collect())
}

/// Files in one byte string: each section is a line `%%% <path>` and the bytes after it, up
/// to the next `\n%%% ` (that newline belongs to the separator). Bytes before the first
/// section are ignored.
pub mod container {
    pub const MARK: &[u8] = b"%%% ";
    const SEPARATOR: &[u8] = b"\n%%% ";

    /// The `(path, content)` sections of `data`.
    pub fn decode(data: &[u8]) -> Vec<(&[u8], &[u8])> {
        // (where the section's path starts, where the previous section ends)
        let mut marks: Vec<(usize, usize)> = Vec::new();
        if data.starts_with(MARK) {
            marks.push((MARK.len(), 0));
        }
        let mut from = 0;
        while let Some(found) = find(data.get(from..).unwrap_or_default(), SEPARATOR) {
            let at = from + found;
            marks.push((at + SEPARATOR.len(), at));
            from = at + 1;
        }
        let mut sections = Vec::with_capacity(marks.len());
        for (i, &(start, _)) in marks.iter().enumerate() {
            let end = marks.get(i + 1).map_or(data.len(), |&(_, end)| end);
            let section = data.get(start..end).unwrap_or_default();
            let (path, content) = match section.iter().position(|&b| b == b'\n') {
                Some(nl) => (&section[..nl], &section[nl + 1..]),
                None => (section, &section[section.len()..]),
            };
            sections.push((path, content));
        }
        sections
    }

    /// The inverse of [`decode`] for paths without `\n` and contents that neither hold
    /// `\n%%% ` nor start with `%%% `.
    pub fn encode<P: AsRef<[u8]>, C: AsRef<[u8]>>(sections: &[(P, C)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (path, content)) in sections.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(MARK);
            out.extend_from_slice(path.as_ref());
            out.push(b'\n');
            out.extend_from_slice(content.as_ref());
        }
        out
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }
}
