//! Errors from reading and checking charts.

use std::fmt;
use std::io;

/// Why a chart directory or chart archive was refused.
///
/// Every variant that concerns one file or archive entry carries its path:
/// for archives the entry name as stored (lossily decoded if it is not UTF-8),
/// for directories the path relative to the chart root.
#[derive(Debug)]
pub enum ChartError {
    /// An archive entry is absolute, drive-qualified (`C:/...`) or has a `..`
    /// component, so it would land outside the chart directory.
    PathTraversal { path: String },
    /// A symbolic link (archive entry, or a file in the chart directory that
    /// `.helmignore` does not exclude).
    Symlink { path: String },
    /// A hard-link archive entry.
    Hardlink { path: String },
    /// Anything that is neither a regular file nor a directory: device, FIFO,
    /// socket, sparse file or an unknown tar entry type. `kind` names it.
    SpecialFile { path: String, kind: String },
    /// One file is larger than [`Limits::max_file_bytes`](super::Limits).
    /// `size` is its size as declared or as far as it was read.
    FileTooLarge { path: String, size: u64, limit: u64 },
    /// The chart's files add up to more than
    /// [`Limits::max_total_bytes`](super::Limits) (`path` is the file at which
    /// the limit was crossed), or the decompressed archive stream as a whole
    /// (headers and padding included) exceeds `limit` (`path` is `None`).
    TooLarge { path: Option<String>, limit: u64 },
    /// The bytes do not start with a gzip header.
    NotGzip,
    /// Damaged gzip or tar data, malformed headers, or data after the end of
    /// the archive.
    Corrupt {
        path: Option<String>,
        detail: String,
    },
    /// No files at all (after `.helmignore`, for a directory).
    Empty,
    /// Archive entries live under more than one top-level directory; `path`
    /// is the first entry under `second`.
    MultipleTopDirs {
        first: String,
        second: String,
        path: String,
    },
    /// An archive file entry is not inside a named top-level directory
    /// (`Chart.yaml`, `./mychart/Chart.yaml`, or the top directory itself).
    OutsideTopDir { path: String },
    /// The same file appears twice in an archive.
    Duplicate { path: String },
    /// A path is used both as a file and as a directory (`a` and `a/b`).
    FileDirConflict { path: String },
    /// A name Helm cannot carry faithfully: not UTF-8, contains `\` or NUL,
    /// starts with `..`, or begins with a drive letter.
    InvalidName { path: String, detail: String },
    /// `.helmignore` has a rule Helm refuses (`**`, malformed glob).
    HelmIgnore {
        line: usize,
        pattern: String,
        detail: String,
    },
    /// Reading the chart directory failed.
    Io { path: String, source: io::Error },
}

impl ChartError {
    /// Stable machine-readable code for diagnostics.
    pub fn code(&self) -> &'static str {
        match self {
            ChartError::PathTraversal { .. } => "chart-path-traversal",
            ChartError::Symlink { .. } => "chart-symlink",
            ChartError::Hardlink { .. } => "chart-hardlink",
            ChartError::SpecialFile { .. } => "chart-special-file",
            ChartError::FileTooLarge { .. } => "chart-file-too-large",
            ChartError::TooLarge { .. } => "chart-too-large",
            ChartError::NotGzip => "chart-not-gzip",
            ChartError::Corrupt { .. } => "chart-corrupt",
            ChartError::Empty
            | ChartError::MultipleTopDirs { .. }
            | ChartError::OutsideTopDir { .. }
            | ChartError::Duplicate { .. }
            | ChartError::FileDirConflict { .. } => "chart-layout",
            ChartError::InvalidName { .. } => "chart-invalid-name",
            ChartError::HelmIgnore { .. } => "chart-helmignore",
            ChartError::Io { .. } => "chart-io",
        }
    }

    /// The offending path, where there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ChartError::PathTraversal { path }
            | ChartError::Symlink { path }
            | ChartError::Hardlink { path }
            | ChartError::SpecialFile { path, .. }
            | ChartError::FileTooLarge { path, .. }
            | ChartError::OutsideTopDir { path }
            | ChartError::Duplicate { path }
            | ChartError::FileDirConflict { path }
            | ChartError::InvalidName { path, .. }
            | ChartError::MultipleTopDirs { path, .. }
            | ChartError::Io { path, .. } => Some(path),
            ChartError::TooLarge { path, .. } | ChartError::Corrupt { path, .. } => path.as_deref(),
            ChartError::HelmIgnore { .. } => Some(".helmignore"),
            ChartError::NotGzip | ChartError::Empty => None,
        }
    }

    /// A one-line suggestion for the chart author.
    pub fn hint(&self) -> String {
        match self {
            ChartError::PathTraversal { .. } => {
                "re-create the archive with `helm package`: every entry must be a \
                 relative path inside `<chart>/` with no `..` component"
                    .to_string()
            }
            ChartError::Symlink { .. } => {
                "replace the symbolic link with a copy of its target, or list it in \
                 .helmignore: charts may contain regular files only"
                    .to_string()
            }
            ChartError::Hardlink { .. } => {
                "re-create the archive with `helm package`, which stores regular files only"
                    .to_string()
            }
            ChartError::SpecialFile { .. } => {
                "remove the device, FIFO, socket or sparse file from the chart, or list \
                 it in .helmignore"
                    .to_string()
            }
            ChartError::FileTooLarge { limit, .. } => format!(
                "keep each chart file under {limit} bytes: move large data out of the \
                 chart or list the file in .helmignore"
            ),
            ChartError::TooLarge { limit, .. } => format!(
                "keep the unpacked chart under {limit} bytes: remove large files or list \
                 them in .helmignore"
            ),
            ChartError::NotGzip => {
                "a packaged chart must be a gzip-compressed tarball (.tgz) as written by \
                 `helm package`"
                    .to_string()
            }
            ChartError::Corrupt { .. } => {
                "the archive is damaged or not a tar file: re-create it with `helm package`"
                    .to_string()
            }
            ChartError::Empty => {
                "a chart needs at least Chart.yaml; check .helmignore does not exclude everything"
                    .to_string()
            }
            ChartError::MultipleTopDirs { .. }
            | ChartError::OutsideTopDir { .. }
            | ChartError::Duplicate { .. }
            | ChartError::FileDirConflict { .. } => {
                "a packaged chart holds exactly one top-level directory named after the \
                 chart (`mychart/Chart.yaml`, ...): re-create it with `helm package`"
                    .to_string()
            }
            ChartError::InvalidName { .. } => {
                "rename the file: chart paths must be UTF-8, use `/` separators, contain \
                 no `\\` or NUL, and not start with `..` or a drive letter"
                    .to_string()
            }
            ChartError::HelmIgnore { .. } => {
                "fix the rule: .helmignore uses Go filepath.Match globs (`*`, `?`, \
                 `[...]`), one per line, and Helm rejects `**`"
                    .to_string()
            }
            ChartError::Io { .. } => {
                "check that the chart directory exists and is readable".to_string()
            }
        }
    }
}

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartError::PathTraversal { path } => {
                write!(f, "chart entry `{path}` points outside the chart directory")
            }
            ChartError::Symlink { path } => write!(f, "chart entry `{path}` is a symbolic link"),
            ChartError::Hardlink { path } => write!(f, "chart entry `{path}` is a hard link"),
            ChartError::SpecialFile { path, kind } => {
                write!(f, "chart entry `{path}` is a {kind}, not a regular file")
            }
            ChartError::FileTooLarge { path, size, limit } => write!(
                f,
                "chart file `{path}` is {size} bytes, over the limit of {limit} bytes per file"
            ),
            ChartError::TooLarge {
                path: Some(path),
                limit,
            } => write!(
                f,
                "chart is larger than the limit of {limit} bytes unpacked (reached at `{path}`)"
            ),
            ChartError::TooLarge { path: None, limit } => write!(
                f,
                "decompressed chart archive is larger than the limit of {limit} bytes"
            ),
            ChartError::NotGzip => write!(f, "chart archive is not gzip-compressed"),
            ChartError::Corrupt {
                path: Some(path),
                detail,
            } => write!(f, "chart archive is corrupt at `{path}`: {detail}"),
            ChartError::Corrupt { path: None, detail } => {
                write!(f, "chart archive is corrupt: {detail}")
            }
            ChartError::Empty => write!(f, "chart contains no files"),
            ChartError::MultipleTopDirs {
                first,
                second,
                path,
            } => write!(
                f,
                "chart archive has more than one top-level directory: `{first}` and \
                 `{second}` (at `{path}`)"
            ),
            ChartError::OutsideTopDir { path } => write!(
                f,
                "chart archive entry `{path}` is not inside the chart's top-level directory"
            ),
            ChartError::Duplicate { path } => {
                write!(f, "chart archive contains `{path}` more than once")
            }
            ChartError::FileDirConflict { path } => {
                write!(f, "chart path `{path}` is both a file and a directory")
            }
            ChartError::InvalidName { path, detail } => {
                write!(f, "chart path `{path}` is not usable: {detail}")
            }
            ChartError::HelmIgnore {
                line,
                pattern,
                detail,
            } => write!(f, ".helmignore line {line} (`{pattern}`): {detail}"),
            ChartError::Io { path, source } => write!(f, "cannot read `{path}`: {source}"),
        }
    }
}

impl std::error::Error for ChartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChartError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
