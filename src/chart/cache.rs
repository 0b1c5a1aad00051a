//! A cache of chart packages keyed by the digest of what goes into them.
//!
//! A version is immutable and [`pack`] is deterministic, so the same chart name and files
//! always give the same package: a re-compile of an unchanged catalog can take each package
//! from the cache instead of deflating it again, which is most of a compile's work.
//!
//! An entry is the file `<dir>/<key>.tgz`: the package's sha256 (64 hex digits and a newline),
//! then the package. The key is the BLAKE3 hash of [`PACK_FORMAT`], the chart
//! name and every path, size and content. An entry whose package does not match its recorded digest (truncated,
//! corrupted) is rebuilt. The cache only ever speeds things up: an entry that cannot be read
//! or written is packed anew, silently.

use std::fs;
use std::path::{Path, PathBuf};

use super::{ChartFiles, digest, pack};
use crate::names::hex;

/// What [`pack`] writes, part of every key. Change it whenever the bytes `pack` writes for the
/// same input change (layout, gzip header, deflate level, a new libdeflate), so that no entry
/// from before is taken for a package of now.
/// v2 was level 1 for every package, v3 level 6 (12 from 256 KiB) with the files as given in
/// path order; versions they stored keep their bytes (apply and diff compare a stored package
/// by its files as [`super::pack`] lays them out, [`super::same_chart`]).
pub(super) const PACK_FORMAT: &str = "pitrix pack v4: files as helm package writes them \
     (charts/*.tgz unpacked, Chart.yaml comments dropped, Helm's order), ustar+pax, \
     gzip mtime 0 os 255, libdeflate 1.26.1 level 7, 12 from 256 KiB";

/// Chart packages by input digest, in one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageCache {
    dir: PathBuf,
}

impl PackageCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PackageCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// [`pack`] and [`digest`] of the chart: from the cache when it holds an intact entry,
    /// else packed now and stored.
    pub fn pack(&self, chart_name: &str, files: &ChartFiles) -> (Vec<u8>, String) {
        let key = key(chart_name, files);
        // Fanned out by the key's first byte, as git's objects are: packages are written from
        // several threads at once, and a file creation locks its whole directory.
        let path = self.dir.join(&key[..2]).join(format!("{key}.tgz"));
        if let Some(hit) = read_entry(&path) {
            return hit;
        }
        let package = pack(chart_name, files);
        let sha = digest(&package);
        // A failed write costs only the next compile's time.
        let _ = write_entry(&path, &sha, &package);
        (package, sha)
    }
}

/// BLAKE3, not sha256: a cold compile hashes every byte of every chart for its key, and
/// BLAKE3's vector code does it in a third of the time. The key is in no output.
fn key(chart_name: &str, files: &ChartFiles) -> String {
    let mut h = blake3::Hasher::new();
    h.update(PACK_FORMAT.as_bytes());
    h.update(chart_name.as_bytes());
    h.update(&[0]);
    for (path, data) in &files.files {
        h.update(path.as_bytes());
        h.update(&[0]);
        h.update(&(data.len() as u64).to_le_bytes());
        h.update(data);
    }
    hex(h.finalize().as_bytes())
}

/// The package and its digest, if the entry is there and its package matches its digest.
fn read_entry(path: &Path) -> Option<(Vec<u8>, String)> {
    let mut bytes = fs::read(path).ok()?;
    let recorded = String::from_utf8(bytes.get(..64)?.to_vec()).ok()?;
    if bytes.get(64) != Some(&b'\n') {
        return None;
    }
    let package = bytes.split_off(65);
    let sha = digest(&package);
    (sha == recorded).then_some((package, sha))
}

/// Writes the entry beside its place and renames it in, so that a reader (another compile
/// running at the same time) never sees half of one.
fn write_entry(path: &Path, sha: &str, package: &[u8]) -> std::io::Result<()> {
    let mut entry = Vec::with_capacity(sha.len() + 1 + package.len());
    entry.extend_from_slice(sha.as_bytes());
    entry.push(b'\n');
    entry.extend_from_slice(package);
    crate::lock::write_file_atomic(path, &entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: &str) -> ChartFiles {
        let mut files = ChartFiles::new();
        files
            .insert(
                "Chart.yaml",
                b"apiVersion: v2\nname: demo\nversion: 1.0.0\n".to_vec(),
            )
            .unwrap();
        files
            .insert("values.yaml", values.as_bytes().to_vec())
            .unwrap();
        files
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut list: Vec<PathBuf> = walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect();
        list.sort();
        list
    }

    #[test]
    fn a_hit_gives_the_bytes_packing_gives() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = PackageCache::new(tmp.path());
        let files = chart("replicas: 1\n");
        let expected = (pack("demo", &files), digest(&pack("demo", &files)));
        assert_eq!(cache.pack("demo", &files), expected, "miss");
        let stored = entries(tmp.path());
        assert_eq!(stored.len(), 1);
        assert_eq!(cache.pack("demo", &files), expected, "hit");
        assert_eq!(entries(tmp.path()), stored);
    }

    #[test]
    fn a_changed_file_or_chart_name_is_another_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = PackageCache::new(tmp.path());
        let (one, _) = cache.pack("demo", &chart("replicas: 1\n"));
        let (two, _) = cache.pack("demo", &chart("replicas: 2\n"));
        let (renamed, _) = cache.pack("other", &chart("replicas: 1\n"));
        assert_eq!(two, pack("demo", &chart("replicas: 2\n")));
        assert_eq!(renamed, pack("other", &chart("replicas: 1\n")));
        assert_ne!(one, two);
        assert_eq!(entries(tmp.path()).len(), 3);
    }

    #[test]
    fn a_hit_is_served_from_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = PackageCache::new(tmp.path());
        let files = chart("replicas: 1\n");
        cache.pack("demo", &files);
        let entry = &entries(tmp.path())[0];
        // An intact entry holding other bytes (as if packed by another pitrix): a hit returns
        // them, which shows the package came from the cache, not from deflating again.
        let other = pack("demo", &chart("something else\n"));
        write_entry(entry, &digest(&other), &other).unwrap();
        assert_eq!(cache.pack("demo", &files), (other.clone(), digest(&other)));
    }

    #[test]
    fn a_corrupted_entry_is_detected_and_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = PackageCache::new(tmp.path());
        let files = chart("replicas: 1\n");
        let expected = (pack("demo", &files), digest(&pack("demo", &files)));
        cache.pack("demo", &files);
        let entry = entries(tmp.path()).remove(0);
        let good = fs::read(&entry).unwrap();

        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        for broken in [flipped, good[..good.len() / 2].to_vec(), Vec::new()] {
            fs::write(&entry, &broken).unwrap();
            assert_eq!(cache.pack("demo", &files), expected);
            assert_eq!(fs::read(&entry).unwrap(), good, "the entry is rewritten");
        }
    }

    #[test]
    fn an_unwritable_cache_still_packs() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        fs::write(&file, "x").unwrap();
        let cache = PackageCache::new(&file);
        let files = chart("replicas: 1\n");
        assert_eq!(cache.pack("demo", &files).0, pack("demo", &files));
    }
}
