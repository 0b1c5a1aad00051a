//! Reading a chart directory the way `helm package` selects its files.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path};

use walkdir::WalkDir;

use super::helmignore::Rules;
use super::{ChartError, ChartFiles, Limits, check_relative_path};

const HELMIGNORE: &str = ".helmignore";

/// Reads the chart directory `dir` into memory.
///
/// Selection follows Helm's `loader.LoadDir` (used by `helm package`): every
/// file below `dir` except those excluded by `dir/.helmignore` (Helm's rules,
/// then Helm's default `templates/.?*`). `.helmignore` itself is included
/// unless it excludes itself, as with Helm. A `.helmignore` in a subchart
/// directory has no effect here, as in Helm. File contents are kept
/// byte-for-byte (Helm strips a UTF-8 BOM when it loads a file; this does not).
///
/// Refused, unless `.helmignore` excludes them: symbolic links (Helm would
/// follow them), FIFOs, sockets and devices, and names Helm cannot carry
/// through a package (not UTF-8, containing `\`, starting with `..` or with a
/// drive letter). Sizes are checked against `limits` before and while
/// reading, so a file growing underneath cannot exceed them either. A
/// directory with no files left is refused as [`ChartError::Empty`].
pub fn read_dir(dir: &Path, limits: &Limits) -> Result<ChartFiles, ChartError> {
    let meta = fs::metadata(dir).map_err(|source| io_error(dir, source))?;
    if !meta.is_dir() {
        return Err(io_error(
            dir,
            io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        ));
    }
    let mut rules = load_rules(dir, limits)?;
    rules.add_defaults();

    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut walker = WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(next) = walker.next() {
        let entry = next.map_err(walk_error)?;
        let rel = relative_bytes(dir, entry.path());
        let file_type = entry.file_type();

        if file_type.is_dir() {
            if rules.ignore(&rel, true) {
                walker.skip_current_dir();
            }
            continue;
        }
        if file_type.is_symlink() {
            // Helm follows links; judge the ignore rules by the target's kind
            // as Helm does, without reading anything through the link.
            let target_is_dir = fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            if rules.ignore(&rel, target_is_dir) {
                continue;
            }
            return Err(ChartError::Symlink {
                path: display(&rel),
            });
        }
        if rules.ignore(&rel, false) {
            continue;
        }
        let name = checked_name(&rel)?;
        if !file_type.is_file() {
            return Err(ChartError::SpecialFile {
                path: name,
                kind: special_kind(&file_type).to_string(),
            });
        }
        let data = read_file(entry.path(), &name, limits, total)?;
        total = total.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        files.insert(name, data);
    }
    if files.is_empty() {
        return Err(ChartError::Empty);
    }
    Ok(ChartFiles { files })
}

/// Parses `dir/.helmignore` if there is one.
fn load_rules(dir: &Path, limits: &Limits) -> Result<Rules, ChartError> {
    let path = dir.join(HELMIGNORE);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Rules::default()),
        Err(err) => return Err(io_error(&path, err)),
    };
    if meta.file_type().is_symlink() {
        return Err(ChartError::Symlink {
            path: HELMIGNORE.to_string(),
        });
    }
    if !meta.is_file() {
        return Err(io_error(
            &path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    let text = read_file(&path, HELMIGNORE, limits, 0)?;
    Rules::parse(&text).map_err(|err| ChartError::HelmIgnore {
        line: err.line,
        pattern: err.rule,
        detail: err.detail.to_string(),
    })
}

/// Reads one regular file, enforcing the per-file limit and what is left of
/// the total (`used` bytes are already taken).
fn read_file(path: &Path, name: &str, limits: &Limits, used: u64) -> Result<Vec<u8>, ChartError> {
    let file = File::open(path).map_err(|source| io_error(path, source))?;
    let meta = file.metadata().map_err(|source| io_error(path, source))?;
    if !meta.is_file() {
        return Err(ChartError::SpecialFile {
            path: name.to_string(),
            kind: special_kind(&meta.file_type()).to_string(),
        });
    }
    let remaining = limits.max_total_bytes.saturating_sub(used);
    check_size(name, meta.len(), limits, remaining)?;
    // Read at most one byte past the tighter limit, in case the file grew.
    let cap = limits.max_file_bytes.min(remaining);
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|source| io_error(path, source))?;
    check_size(
        name,
        u64::try_from(data.len()).unwrap_or(u64::MAX),
        limits,
        remaining,
    )?;
    Ok(data)
}

fn check_size(name: &str, size: u64, limits: &Limits, remaining: u64) -> Result<(), ChartError> {
    if size > limits.max_file_bytes {
        return Err(ChartError::FileTooLarge {
            path: name.to_string(),
            size,
            limit: limits.max_file_bytes,
        });
    }
    if size > remaining {
        return Err(ChartError::TooLarge {
            path: Some(name.to_string()),
            limit: limits.max_total_bytes,
        });
    }
    Ok(())
}

/// The chart-relative path of `path` as raw bytes, components joined by `/`
/// (the form Helm matches `.helmignore` rules against).
fn relative_bytes(root: &Path, path: &Path) -> Vec<u8> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut out = Vec::new();
    for component in rel.components() {
        if let Component::Normal(part) = component {
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(part.as_encoded_bytes());
        }
    }
    out
}

/// Turns a relative path into a checked chart path.
fn checked_name(rel: &[u8]) -> Result<String, ChartError> {
    let name = std::str::from_utf8(rel).map_err(|_| ChartError::InvalidName {
        path: display(rel),
        detail: "file name is not valid UTF-8".to_string(),
    })?;
    check_relative_path(name).map_err(|problem| ChartError::InvalidName {
        path: name.to_string(),
        detail: problem.detail().to_string(),
    })?;
    Ok(name.to_string())
}

fn special_kind(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_socket() {
            return "socket";
        }
        if file_type.is_block_device() {
            return "block device";
        }
        if file_type.is_char_device() {
            return "character device";
        }
    }
    let _ = file_type;
    "special file"
}

fn display(rel: &[u8]) -> String {
    String::from_utf8_lossy(rel).into_owned()
}

fn io_error(path: &Path, source: io::Error) -> ChartError {
    ChartError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn walk_error(err: walkdir::Error) -> ChartError {
    let path = err
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let message = err.to_string();
    let source = err
        .into_io_error()
        .unwrap_or_else(|| io::Error::other(message));
    ChartError::Io { path, source }
}
