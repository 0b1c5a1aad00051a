//! Deterministic chart packaging.

use libdeflater::{CompressionLvl, Compressor};
use tar::{EntryType, Header};

use super::ChartFiles;

const BLOCK: usize = 512;
const USTAR_NAME_LEN: usize = 100;
const USTAR_PREFIX_LEN: usize = 155;
/// Name of the PAX extended header entries (never extracted by PAX readers).
const PAX_HEADER_NAME: &[u8] = b"././@PaxHeader";

/// libdeflate's level 6, as Helm's own (Go's `gzip.DefaultCompression`).
const LEVEL: CompressionLvl = match CompressionLvl::new(6) {
    Ok(level) => level,
    Err(_) => panic!("libdeflate has a level 6"),
};

/// A package this big at [`LEVEL`] is deflated again at libdeflate's strongest level, 12:
/// a quarter of KubeSphere's 1 MiB budget, where the bytes start to count against it.
const STRONG_FROM: usize = 256 * 1024;

/// Packages a chart as a gzip-compressed tar, byte-for-byte reproducibly.
///
/// Layout: one entry `<chart_name>/<path>` per file, in sorted path order,
/// regular files only with no directory entries (like `helm package`, whose
/// loader skips directory entries anyway). Each header is POSIX ustar:
/// mode `0644`, uid/gid 0, empty user/group names, mtime 0 (1970-01-01, the
/// fixed timestamp), device numbers 0. A path that does not fit ustar's
/// 100-byte name plus 155-byte prefix, or that is not ASCII, gets a PAX
/// `path` record (as Go's tar writer does), so Helm reads it back whole. The
/// archive ends with the two zero blocks of the tar end marker.
///
/// gzip: libdeflate over the whole tar at [`LEVEL`], or at level 12 when that gives
/// [`STRONG_FROM`] bytes or more; header with mtime 0, no file name, comment or extra field,
/// XFL 0 (level 6) or 2 (level 12, "maximum"), OS byte 255 ("unknown").
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
    // 1 MiB. Measured against `helm package` (pack format v3, issue #19): on KubeSphere's store
    // charts (74 that Helm packages, 2.49 MB from Helm) level 1 made 1.134x Helm's bytes
    // (69 packages over 1.02x), level 6 0.9985x (15 over, at 1.9x level 1's time), level 9
    // 0.978x (9 over, 5x the time), level 12 0.943x (6 over, 70x the time); on the synthetic
    // bench charts (pitrix_testkit::synth) level 1 1.067x, level 6 0.963x (none over) at
    // 2.5-3.3x level 1's time. What stays over 1.02x at level 12 is not deflate's doing: Helm
    // rewrites Chart.yaml without its comments and unpacks vendored `.tgz` subcharts.
    // So level 6 (Helm's own), and level 12 for the packages whose size begins to count.
    let tar = write_tar(chart_name, files);
    let gz = deflate(&tar, LEVEL);
    if gz.len() < STRONG_FROM {
        return gz;
    }
    deflate(&tar, CompressionLvl::best())
}

/// [`pack`] at one libdeflate level (0 to 12) for every package: level 1 gives the bytes of
/// pack format v2, so tests can stand for versions stored by an earlier pitrix.
#[doc(hidden)]
pub fn pack_with_level(chart_name: &str, files: &ChartFiles, level: i32) -> Vec<u8> {
    let level = CompressionLvl::new(level.clamp(0, 12)).unwrap_or(LEVEL);
    deflate(&write_tar(chart_name, files), level)
}

/// Whether two packages hold the same chart (name and files), whatever their bytes: a version
/// stored by an earlier pack format is the same version as long as its files are the same.
pub fn same_chart(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let limits = super::Limits::default();
    match (
        super::read_archive(a, &limits),
        super::read_archive(b, &limits),
    ) {
        (Ok(a), Ok(b)) => a == b,
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

fn write_tar(chart_name: &str, files: &ChartFiles) -> Vec<u8> {
    let size: usize = files
        .files
        .values()
        .map(|data| 2 * BLOCK + data.len())
        .sum();
    let mut tar = Vec::with_capacity(size + 2 * BLOCK);
    for (path, data) in &files.files {
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
