//! Helm charts: reading a chart directory or a packaged chart safely, and
//! packaging a chart deterministically.
//!
//! * [`read_dir`] walks a chart directory the way `helm package` does
//!   (honouring `.helmignore` with Helm's exact rules) but refuses symlinks,
//!   special files and names Helm cannot carry.
//! * [`read_archive`] reads a `.tgz` from memory with the checks of Helm's
//!   loader plus stricter ones (no links, devices, duplicates, ambiguous long
//!   names), and stops a decompression bomb while streaming.
//! * [`pack`] writes a byte-for-byte reproducible `.tgz` that Helm loads, and
//!   [`digest`] gives the sha256 Helm's repository index records for it.
//!
//! The module never panics on its input and uses no `unsafe`.

mod archive;
mod cache;
mod dir;
mod error;
mod helmignore;
mod layout;
mod pack;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

pub use archive::read_archive;
pub use cache::PackageCache;
pub use dir::read_dir;
pub use error::ChartError;
#[doc(hidden)]
pub use helmignore::fuzzing as helmignore_fuzzing;
pub use layout::{package_files, subchart_archives};
pub use pack::{pack, pack_with_level, same_chart};

/// A chart's files, keyed by path relative to the chart root
/// (`"Chart.yaml"`, `"templates/deploy.yaml"`), `/`-separated, sorted.
///
/// Paths produced by [`read_dir`] and [`read_archive`] are always canonical:
/// relative, no empty, `.` or `..` components, no `\` or NUL, not starting
/// with `..` or a drive letter, and no path is both a file and a directory.
/// [`ChartFiles::insert`] enforces the same when building one by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartFiles {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl ChartFiles {
    /// An empty set of files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a file after checking that its path is canonical
    /// (see the type's docs) and does not clash with an existing
    /// file/directory.
    pub fn insert(&mut self, path: &str, data: Vec<u8>) -> Result<(), ChartError> {
        check_relative_path(path).map_err(|problem| problem.into_error(path))?;
        if let Some(clash) = find_file_dir_clash(&self.files, path) {
            return Err(ChartError::FileDirConflict { path: clash });
        }
        self.files.insert(path.to_string(), data);
        Ok(())
    }

    /// A file's contents.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Sum of all file sizes in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files
            .values()
            .map(|data| u64::try_from(data.len()).unwrap_or(u64::MAX))
            .fold(0u64, u64::saturating_add)
    }
}

/// Size limits for reading charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sum of all file sizes (Helm: `MaxDecompressedChartSize`, 100 MiB).
    pub max_total_bytes: u64,
    /// Size of any one file (Helm: `MaxDecompressedFileSize`, 5 MiB).
    pub max_file_bytes: u64,
}

impl Limits {
    /// Helm's default limit on a chart's unpacked size: 100 MiB.
    pub const HELM_MAX_TOTAL_BYTES: u64 = 100 * 1024 * 1024;
    /// Helm's default limit on one file: 5 MiB.
    pub const HELM_MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;
}

impl Default for Limits {
    /// Helm's limits: 100 MiB unpacked in all, 5 MiB per file.
    fn default() -> Self {
        Limits {
            max_total_bytes: Self::HELM_MAX_TOTAL_BYTES,
            max_file_bytes: Self::HELM_MAX_FILE_BYTES,
        }
    }
}

/// Lower-case hex sha256 of `bytes`: the `digest` Helm's `index.yaml` records
/// for a packaged chart.
pub fn digest(bytes: &[u8]) -> String {
    crate::names::hex(&Sha256::digest(bytes))
}

/// What is wrong with a chart-relative path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathProblem {
    Empty,
    Absolute,
    ParentDir,
    NonCanonical,
    Backslash,
    Nul,
    DotDotPrefix,
    DriveLetter,
}

impl PathProblem {
    pub(crate) fn detail(self) -> &'static str {
        match self {
            PathProblem::Empty => "empty path",
            PathProblem::Absolute => "absolute path",
            PathProblem::ParentDir => "`..` component",
            PathProblem::NonCanonical => "empty or `.` path component",
            PathProblem::Backslash => {
                "contains `\\`, which Helm's archive loader treats as a directory separator"
            }
            PathProblem::Nul => "contains a NUL byte",
            PathProblem::DotDotPrefix => "starts with `..`, which Helm's archive loader refuses",
            PathProblem::DriveLetter => {
                "starts with a drive letter (`C:/`), which Helm's archive loader refuses"
            }
        }
    }

    /// The error for a path with this problem: escaping the chart is
    /// traversal, anything else an unusable name.
    pub(crate) fn into_error(self, path: &str) -> ChartError {
        match self {
            PathProblem::Absolute | PathProblem::ParentDir | PathProblem::DriveLetter => {
                ChartError::PathTraversal {
                    path: path.to_string(),
                }
            }
            other => ChartError::InvalidName {
                path: path.to_string(),
                detail: other.detail().to_string(),
            },
        }
    }
}

/// Checks that `path` is a canonical chart-relative path that Helm's archive
/// loader would take back unchanged (see [`ChartFiles`]).
pub(crate) fn check_relative_path(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    if path.contains('\0') {
        return Err(PathProblem::Nul);
    }
    if path.contains('\\') {
        return Err(PathProblem::Backslash);
    }
    for component in path.split('/') {
        match component {
            ".." => return Err(PathProblem::ParentDir),
            "" | "." => return Err(PathProblem::NonCanonical),
            _ => {}
        }
    }
    if path.starts_with("..") {
        return Err(PathProblem::DotDotPrefix);
    }
    if is_drive_path(path) {
        return Err(PathProblem::DriveLetter);
    }
    Ok(())
}

/// Helm's `^[a-zA-Z]:/` check.
pub(crate) fn is_drive_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    matches!(bytes, [letter, b':', b'/', ..] if letter.is_ascii_alphabetic())
}

/// If adding `path` would make some path both a file and a directory, returns
/// the path that is (or would be) the file.
pub(crate) fn find_file_dir_clash(files: &BTreeMap<String, Vec<u8>>, path: &str) -> Option<String> {
    // An existing file is a parent directory of `path`.
    let mut end = 0;
    while let Some(offset) = path.get(end..).and_then(|rest| rest.find('/')) {
        end += offset;
        let parent = path.get(..end).unwrap_or(path);
        if files.contains_key(parent) {
            return Some(parent.to_string());
        }
        end += 1;
    }
    // `path` is a parent directory of an existing file.
    let prefix = format!("{path}/");
    files
        .range(prefix.clone()..)
        .next()
        .filter(|(name, _)| name.starts_with(&prefix))
        .map(|_| path.to_string())
}
