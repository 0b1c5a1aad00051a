//! Replacing an output directory atomically: the new tree is written beside it and renamed
//! into place, so a reader sees the old output or the new one, never a mix.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Files, INVENTORY_FILE};

#[derive(Debug)]
pub enum WriteError {
    /// The directory exists, is not empty and was not written by pitrix.
    NotOurs(PathBuf),
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            WriteError::NotOurs(p) => write!(
                f,
                "{} exists and holds files pitrix did not write (no {INVENTORY_FILE}); refusing to replace it",
                p.display()
            ),
            WriteError::Io(p, e) => write!(f, "cannot write {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for WriteError {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |e| WriteError::Io(path.to_path_buf(), e)
}

/// Writes `files` as the whole content of `out`, replacing what was there.
pub fn write_atomic(out: &Path, files: &Files) -> Result<(), WriteError> {
    replace_atomic(out, |staging| {
        files
            .par_iter()
            .try_for_each(|(rel, bytes)| put(staging, rel, bytes))
    })
}

/// Writes one file of the new tree, making its directory as needed.
pub(super) fn put(staging: &Path, rel: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let path = staging.join(rel);
    // Thousands of files share a directory; a mkdir of one that exists still locks its parent.
    if let Some(dir) = path.parent().filter(|dir| !dir.is_dir()) {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    fs::write(&path, bytes).map_err(io(&path))
}

/// Has `fill` write the new tree into a staging directory beside `out`, then swaps it in.
pub(super) fn replace_atomic(
    out: &Path,
    fill: impl FnOnce(&Path) -> Result<(), WriteError>,
) -> Result<(), WriteError> {
    if out.exists() {
        let empty = fs::read_dir(out).map_err(io(out))?.next().is_none();
        if !empty && !out.join(INVENTORY_FILE).is_file() {
            return Err(WriteError::NotOurs(out.to_path_buf()));
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let base = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{base}.new-"))
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    fill(staging.path())?;
    let staged = staging.keep();
    if out.exists() {
        let old = parent.join(format!(".{base}.old-{}", std::process::id()));
        fs::rename(out, &old).map_err(io(out))?;
        if let Err(e) = fs::rename(&staged, out) {
            // Put the old output back; the new one is abandoned.
            let _ = fs::rename(&old, out);
            let _ = fs::remove_dir_all(&staged);
            return Err(WriteError::Io(out.to_path_buf(), e));
        }
        fs::remove_dir_all(&old).map_err(io(&old))?;
    } else if let Err(e) = fs::rename(&staged, out) {
        let _ = fs::remove_dir_all(&staged);
        return Err(WriteError::Io(out.to_path_buf(), e));
    }
    Ok(())
}
