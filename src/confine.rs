//! Confinement to the catalog root: every file pitrix reads because a catalog names it is
//! resolved here first, symbolic links included, and refused when it leaves the root.
//!
//! A pull request is hostile: a committed `values/common.yaml` that is a link to
//! `~/.docker/config.json` must not be parsed into a release and printed in the PR comment.
//! Links are resolved by hand, one component at a time, and resolution stops the moment it
//! would leave the root, so nothing outside the catalog is ever opened, read or even
//! `stat`ed (which would tell an attacker whether a file exists on the runner). Links that
//! stay inside the root are followed, as Helm follows them.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Links followed in one resolution before giving up, as the kernel's `ELOOP` limit.
const MAX_LINKS: usize = 40;

/// Why a named file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// It resolves outside the catalog root.
    Escape,
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ReadError::Escape => f.write_str("it resolves outside the catalog root"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Where `path` (relative to `root`) really is: the path with every symbolic link resolved,
/// or `None` when it — or a link on the way — leaves `root`. An absolute `path` must start
/// with `root` as given or as resolved. Components that do not exist are kept as named
/// (reading them then fails as usual).
pub fn resolve(root: &Path, path: &Path) -> io::Result<Option<PathBuf>> {
    let canonical = fs::canonicalize(root)?;
    let rel = match path.is_absolute() {
        false => path,
        true => match path
            .strip_prefix(root)
            .or_else(|_| path.strip_prefix(&canonical))
        {
            Ok(rel) => rel,
            Err(_) => return Ok(None),
        },
    };
    resolve_below(&canonical, rel)
}

fn resolve_below(root: &Path, rel: &Path) -> io::Result<Option<PathBuf>> {
    let mut pending: VecDeque<OsString> = VecDeque::new();
    let mut names = Vec::new();
    if collect(rel, &mut names).is_none() {
        return Ok(None);
    }
    pending.extend(names);
    let mut current = root.to_path_buf();
    let mut depth = 0usize; // components of `current` below `root`
    let mut links = 0usize;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            if depth == 0 {
                return Ok(None);
            }
            current.pop();
            depth -= 1;
            continue;
        }
        let candidate = current.join(&name);
        let meta = match fs::symlink_metadata(&candidate) {
            Ok(meta) => meta,
            // Missing (or unreadable): keep the rest as named; the read reports it.
            Err(_) => {
                let mut rest = candidate;
                for name in pending {
                    if name == ".." {
                        return Ok(None);
                    }
                    rest.push(name);
                }
                return Ok(Some(rest));
            }
        };
        if !meta.file_type().is_symlink() {
            current = candidate;
            depth += 1;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::other(format!(
                "more than {MAX_LINKS} symbolic links on the way (a loop?)"
            )));
        }
        let target = fs::read_link(&candidate)?;
        let mut replacement: Vec<OsString> = Vec::new();
        if target.is_absolute() {
            // An absolute target is inside only if it names a path below the root as such.
            let Ok(below) = target.strip_prefix(root) else {
                return Ok(None);
            };
            current = root.to_path_buf();
            depth = 0;
            collect(below, &mut replacement);
        } else if collect(&target, &mut replacement).is_none() {
            return Ok(None);
        }
        for name in replacement.into_iter().rev() {
            pending.push_front(name);
        }
    }
    Ok(Some(current))
}

fn collect(path: &Path, out: &mut Vec<OsString>) -> Option<()> {
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name.to_os_string()),
            Component::ParentDir => out.push("..".into()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(())
}

/// Whether `path` (below `root`) leaves the root through a symbolic link.
pub fn escapes(root: &Path, path: &Path) -> bool {
    matches!(resolve(root, path), Ok(None))
}

/// Reads the file at `path` (relative to `root`), refusing one that resolves outside the root.
pub fn read(root: &Path, path: &Path) -> Result<Vec<u8>, ReadError> {
    match resolve(root, path) {
        Ok(Some(real)) => fs::read(real).map_err(ReadError::Io),
        Ok(None) => Err(ReadError::Escape),
        Err(e) => Err(ReadError::Io(e)),
    }
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(root: &Path, path: &Path) -> Result<String, ReadError> {
    let bytes = read(root, path)?;
    String::from_utf8(bytes)
        .map_err(|e| ReadError::Io(io::Error::new(io::ErrorKind::InvalidData, e.utf8_error())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("catalog");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(root.join("values")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), "TOKEN").unwrap();
        fs::write(root.join("values/real.yaml"), "a: 1").unwrap();
        (tmp, root, outside)
    }

    #[test]
    fn links_inside_are_followed() {
        let (_tmp, root, _) = tree();
        symlink("real.yaml", root.join("values/rel.yaml")).unwrap();
        symlink(root.join("values/real.yaml"), root.join("values/abs.yaml")).unwrap();
        symlink("values", root.join("v")).unwrap();
        symlink("../values/./real.yaml", root.join("values/up.yaml")).unwrap();
        for p in [
            "values/rel.yaml",
            "values/abs.yaml",
            "v/real.yaml",
            "v/up.yaml",
        ] {
            assert_eq!(read(&root, Path::new(p)).unwrap(), b"a: 1", "{p}");
        }
        assert_eq!(read(&root, &root.join("v/rel.yaml")).unwrap(), b"a: 1");
        assert_eq!(
            read(&root, Path::new("./v/../values/real.yaml")).unwrap(),
            b"a: 1"
        );
    }

    #[test]
    fn links_that_leave_are_refused_at_any_depth() {
        let (_tmp, root, outside) = tree();
        symlink(outside.join("secret"), root.join("values/abs.yaml")).unwrap();
        symlink("../../outside/secret", root.join("values/rel.yaml")).unwrap();
        symlink("../outside", root.join("dir")).unwrap();
        symlink("rel.yaml", root.join("values/chain.yaml")).unwrap();
        fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("../../../outside", root.join("a/b/deep")).unwrap();
        for p in [
            "values/abs.yaml",
            "values/rel.yaml",
            "dir/secret",
            "values/chain.yaml",
            "a/b/deep/secret",
            "../outside/secret",
            "/etc/passwd",
        ] {
            assert!(
                matches!(read(&root, Path::new(p)), Err(ReadError::Escape)),
                "{p}"
            );
        }
        assert!(escapes(&root, &root.join("dir")));
        assert!(!escapes(&root, &root.join("values")));
    }

    #[test]
    fn nothing_outside_is_looked_at() {
        // A link to a missing file outside is refused the same way as one to an existing
        // file: the answer tells nothing about the runner's files.
        let (_tmp, root, outside) = tree();
        symlink(outside.join("nope"), root.join("values/missing.yaml")).unwrap();
        assert!(matches!(
            read(&root, Path::new("values/missing.yaml")),
            Err(ReadError::Escape)
        ));
        // A missing file inside is an ordinary I/O error.
        assert!(matches!(
            read(&root, Path::new("values/none.yaml")),
            Err(ReadError::Io(_))
        ));
    }

    #[test]
    fn link_loops_end() {
        let (_tmp, root, _) = tree();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        assert!(matches!(read(&root, Path::new("a")), Err(ReadError::Io(_))));
    }
}
