//! Deterministic chart packaging.

use std::collections::BTreeMap;

use libdeflater::{CompressionLvl, Compressor};
use tar::{EntryType, Header};

use super::{ChartFiles, package_files};

const BLOCK: usize = 512;
const USTAR_NAME_LEN: usize = 100;
const USTAR_PREFIX_LEN: usize = 155;
/// Name of the PAX extended header entries (never extracted by PAX readers).
const PAX_HEADER_NAME: &[u8] = b"././@PaxHeader";

/// libdeflate's level 7: with the files in Helm's order, the first level at which no chart of
/// KubeSphere's store packs to more than 1.02x `helm package`'s bytes (see [`pack`]).
const LEVEL: CompressionLvl = match CompressionLvl::new(7) {
    Ok(level) => level,
    Err(_) => panic!("libdeflate has a level 7"),
};

/// A package this big at [`LEVEL`] is deflated again at libdeflate's strongest level, 12:
/// a quarter of KubeSphere's 1 MiB budget, where the bytes start to count against it.
const STRONG_FROM: usize = 256 * 1024;

/// The files of a chart `helm package` writes first, in its order (`chartutil.Save`).
const HELM_FIRST: [&str; 4] = [
    "Chart.yaml",
    "Chart.lock",
    "values.yaml",
    "values.schema.json",
];

/// Packages a chart as a gzip-compressed tar, byte-for-byte reproducibly.
///
/// Files: [`package_files`], i.e. `files` with vendored `charts/*.tgz` subcharts unpacked and
/// Chart.yaml comments dropped, as `helm package` writes them.
///
/// Layout: one entry `<chart_name>/<path>` per file, regular files only with no directory
/// entries (like `helm package`, whose loader skips directory entries anyway), in the order
/// `helm package` writes them (`chartutil.Save`): Chart.yaml, Chart.lock, values.yaml,
/// values.schema.json, `templates/`, the other files, then each subchart directory the same
/// way, what else is in `charts/` last; sorted by path within each group. Each header is
/// POSIX ustar: mode `0644`, uid/gid 0, empty user/group names, mtime 0 (1970-01-01, the
/// fixed timestamp), device numbers 0. A path that does not fit ustar's 100-byte name plus
/// 155-byte prefix, or that is not ASCII, gets a PAX `path` record (as Go's tar writer does),
/// so Helm reads it back whole. The archive ends with the two zero blocks of the tar end
/// marker.
///
/// gzip: libdeflate over the whole tar at [`LEVEL`], or at level 12 when that gives
/// [`STRONG_FROM`] bytes or more; header with mtime 0, no file name, comment or extra field,
/// XFL 0 (level 7) or 2 (level 12, "maximum"), OS byte 255 ("unknown").
///
/// These bytes are the *pack format*: every package digest, and so every ApplicationVersion's
/// `spec.digest` and every stored ConfigMap, depends on them, and KubeSphere's storage is
/// immutable (apply refuses to overwrite a stored package with other bytes). libdeflate's
/// output depends only on its version and level, not on the machine, and `Cargo.toml` pins
/// that version exactly; `pack_golden_digest` fails on any change. A change of format must be
/// deliberate: bump [`cache::PACK_FORMAT`](super::cache) and say so in the release notes.
///
/// `chart_name` and the paths in `files` are used as given: they are expected
/// to be valid (as [`read_dir`](super::read_dir), [`read_archive`](super::read_archive)
/// and [`ChartFiles::insert`] guarantee).
pub fn pack(chart_name: &str, files: &ChartFiles) -> Vec<u8> {
    // Packing is most of a compile's work, and the package's size counts against KubeSphere's
    // 1 MiB. Measured against `helm package` on KubeSphere's store charts (74 that Helm
    // packages, 2.49 MB from Helm; issue #19), with the files as Helm writes them
    // ([`package_files`]): in path order, level 6 made 0.994x Helm's bytes but 3 packages over
    // 1.02x (up to 1.051x), level 9 still 1 (1.029x), only levels 10-12 (25-35x level 6's time)
    // none. In Helm's order, which keeps values.yaml beside the templates and puts the big
    // files after them, level 6 made 1.0015x with none over but one at 1.017x (Helm's own size
    // varies by ~0.2% between runs), level 7 0.990x with the worst at 1.001x, level 8 0.983x
    // (0.992x) at 1.7x level 7's time. On the synthetic bench charts Helm's order costs 2% of
    // size (level 6: 7.07 MB in path order, 7.24 MB in Helm's; level 7 7.21 MB), and level 7
    // takes 1.3-1.6x level 6's time. So Helm's order at level 7, and level 12 for the packages
    // whose size begins to count. No faster level keeps real charts at Helm's size: Helm's own
    // tars of the 64 store charts it packages, deflated again, give level 4 1.045x (44 over
    // 1.02x), level 5 1.028x (19 over, up to 1.092x; on the synthetic bench charts it looks as
    // good as level 6), level 6 1.0023x (worst 1.014x), level 7 0.991x (worst 1.0017x), level 8
    // 0.984x; on the bench charts level 6 saves 15% of level 7's deflate time, level 5 30%.
    // Size wins (issue #19): a cold compile's CPU time is mostly this deflate, and a compile
    // with a package cache (the GitHub Action keeps one) deflates only what changed.
    let files = package_files(files);
    let tar = write_tar(chart_name, &helm_order(&files));
    let gz = deflate(&tar, LEVEL);
    if gz.len() < STRONG_FROM {
        return gz;
    }
    deflate(&tar, CompressionLvl::best())
}

/// The files of a chart in the order `helm package` writes them (see [`pack`]).
fn helm_order(files: &ChartFiles) -> Vec<(&str, &[u8])> {
    let mut out = Vec::with_capacity(files.files.len());
    push_chart(&files.files, "", &mut out);
    out
}

/// Pushes the files under `prefix` (the chart root, or `…charts/<dir>/`) in Helm's order.
fn push_chart<'a>(
    files: &'a BTreeMap<String, Vec<u8>>,
    prefix: &str,
    out: &mut Vec<(&'a str, &'a [u8])>,
) {
    let entries: Vec<(&'a str, &'a [u8], &'a str)> = files
        .range(prefix.to_string()..)
        .take_while(|(path, _)| path.starts_with(prefix))
        .map(|(path, data)| {
            let rel = path.get(prefix.len()..).unwrap_or_default();
            (path.as_str(), data.as_slice(), rel)
        })
        .collect();
    let push = |out: &mut Vec<(&'a str, &'a [u8])>, keep: &dyn Fn(&str) -> bool| {
        out.extend(
            entries
                .iter()
                .filter(|(_, _, rel)| keep(rel))
                .map(|(path, data, _)| (*path, *data)),
        );
    };
    for first in HELM_FIRST {
        push(out, &|rel| rel == first);
    }
    push(out, &|rel| rel.starts_with("templates/"));
    push(out, &|rel| {
        !HELM_FIRST.contains(&rel) && !rel.starts_with("templates/") && !rel.starts_with(CHARTS)
    });
    // Paths sharing a prefix are contiguous in path order, so each subchart comes once.
    let mut subcharts: Vec<&str> = entries
        .iter()
        .filter_map(|(_, _, rel)| subchart_dir(rel))
        .collect();
    subcharts.dedup();
    for dir in subcharts {
        push_chart(files, &format!("{prefix}{CHARTS}{dir}/"), out);
    }
    push(out, &|rel| {
        rel.starts_with(CHARTS) && subchart_dir(rel).is_none()
    });
}

const CHARTS: &str = "charts/";

/// `<dir>` of `charts/<dir>/…`, unless Helm's loader skips it (a name starting `_` or `.`).
fn subchart_dir(rel: &str) -> Option<&str> {
    let (dir, _) = rel.strip_prefix(CHARTS)?.split_once('/')?;
    (!dir.starts_with(['_', '.'])).then_some(dir)
}

/// `files` as they are (not laid out as [`pack`] lays them out, in path order) at one
/// libdeflate level (0 to 12) for every package: level 1 gives the bytes of pack format v2,
/// level 6 those of v3 for packages under 256 KiB, so tests can stand for versions stored by an earlier pitrix.
#[doc(hidden)]
pub fn pack_with_level(chart_name: &str, files: &ChartFiles, level: i32) -> Vec<u8> {
    let level = CompressionLvl::new(level.clamp(0, 12)).unwrap_or(LEVEL);
    let in_path_order: Vec<(&str, &[u8])> = files
        .files
        .iter()
        .map(|(path, data)| (path.as_str(), data.as_slice()))
        .collect();
    deflate(&write_tar(chart_name, &in_path_order), level)
}

/// Whether two packages hold the same chart (name and files, laid out as [`pack`] lays them
/// out), whatever their bytes: a version stored by an earlier pack format is the same version
/// as long as its files are the same (v2 and v3 kept vendored `.tgz` subcharts packed and
/// Chart.yaml comments).
pub fn same_chart(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let limits = super::Limits::default();
    match (
        super::read_archive(a, &limits),
        super::read_archive(b, &limits),
    ) {
        (Ok((a_name, a)), Ok((b_name, b))) => {
            a_name == b_name && (a == b || package_files(&a) == package_files(&b))
        }
        _ => false,
    }
}

fn deflate(tar: &[u8], level: CompressionLvl) -> Vec<u8> {
    let mut compressor = Compressor::new(level);
    let mut gz = vec![0; compressor.gzip_compress_bound(tar.len())];
    // The buffer has libdeflate's own bound, so compression cannot run out of room.
    let len = compressor.gzip_compress(tar, &mut gz).unwrap_or(0);
    gz.truncate(len);
    gz
}

fn write_tar(chart_name: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let size: usize = files.iter().map(|(_, data)| 2 * BLOCK + data.len()).sum();
    let mut tar = Vec::with_capacity(size + 2 * BLOCK);
    for (path, data) in files {
        let full = format!("{chart_name}/{path}");
        write_file(&mut tar, &full, data);
    }
    tar.extend_from_slice(&[0u8; 2 * BLOCK]);
    tar
}

fn write_file(out: &mut Vec<u8>, full: &str, data: &[u8]) {
    let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
    let mut header = base_header(size, EntryType::Regular);
    match ustar_split(full) {
        Some((prefix, name)) => {
            if let Some(ustar) = header.as_ustar_mut() {
                copy_field(&mut ustar.prefix, prefix.as_bytes());
                copy_field(&mut ustar.name, name.as_bytes());
            }
        }
        None => {
            let record = pax_record("path", full);
            let mut pax = base_header(
                u64::try_from(record.len()).unwrap_or(u64::MAX),
                EntryType::XHeader,
            );
            if let Some(ustar) = pax.as_ustar_mut() {
                copy_field(&mut ustar.name, PAX_HEADER_NAME);
            }
            write_member(out, &mut pax, &record);
            // Fallback for readers without PAX support: the start of the
            // path (relative, inside the chart directory), non-ASCII bytes
            // replaced by `_` so that the ustar field stays ASCII.
            if let Some(ustar) = header.as_ustar_mut() {
                copy_field(&mut ustar.name, &ascii_fallback(full));
            }
        }
    }
    write_member(out, &mut header, data)
}

/// A ustar header with the fixed metadata every entry carries.
fn base_header(size: u64, entry_type: EntryType) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(entry_type);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    if let Some(ustar) = header.as_ustar_mut() {
        ustar.dev_major = *b"0000000\0";
        ustar.dev_minor = *b"0000000\0";
    }
    header
}

fn write_member(out: &mut Vec<u8>, header: &mut Header, data: &[u8]) {
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    let padding = (BLOCK - data.len() % BLOCK) % BLOCK;
    out.extend_from_slice(&[0u8; BLOCK][..padding]);
}

/// Splits `path` into ustar (prefix, name) the way Go's tar writer does, or
/// `None` when it needs a PAX record (too long, or not ASCII, or has NUL).
fn ustar_split(path: &str) -> Option<(&str, &str)> {
    if !path.is_ascii() || path.contains('\0') {
        return None;
    }
    if path.len() <= USTAR_NAME_LEN {
        return Some(("", path));
    }
    let search_end = path.len().min(USTAR_PREFIX_LEN + 1);
    let slash = path.get(..search_end)?.rfind('/')?;
    let prefix = path.get(..slash)?;
    let name = path.get(slash + 1..)?;
    if slash == 0 || name.is_empty() || name.len() > USTAR_NAME_LEN {
        return None;
    }
    Some((prefix, name))
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole
/// record including its own digits.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = 1 + key.len() + 1 + value.len() + 1; // ' ' key '=' value '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

fn copy_field(field: &mut [u8], value: &[u8]) {
    for (slot, byte) in field.iter_mut().zip(value) {
        *slot = *byte;
    }
}

fn ascii_fallback(path: &str) -> Vec<u8> {
    path.bytes()
        .take(USTAR_NAME_LEN)
        .map(|b| if b.is_ascii() && b != 0 { b } else { b'_' })
        .collect()
}
