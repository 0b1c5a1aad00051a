//! Replacing an output directory atomically: the new tree is written beside it and swapped
//! into place, so a reader sees the old output or the new one, never a mix.
//!
//! **Ownership.** pitrix writes a marker file, [`MARKER_FILE`], into every output directory it
//! writes, and replaces an existing directory only when it is empty or carries a marker of a
//! format this pitrix understands: `-o` pointed at the wrong directory must never delete what
//! pitrix did not write. An `inventory.json` proves nothing (anyone can write one), so the
//! output of a pitrix from before the marker (an inventory, no marker) is refused too, with a
//! hint to remove it: one manual `rm -r`, once, rather than deleting a directory on a guess.
//! Compiling again into a directory pitrix wrote keeps working, as every write leaves a marker.
//!
//! **Swap.** The new tree is filled in `.<out>.new-<tag>` beside `out` (the marker written
//! first, so the directory is recognisably ours from its first moment) and exchanged with
//! `out` by `renameat2(RENAME_EXCHANGE)`: one atomic step, after which `.<out>.new-<tag>` holds
//! the old tree, which is removed. Where the exchange is unsupported (not Linux, an old kernel
//! or a file system without it), two renames: `out` → `.<out>.old-<tag>`, then
//! `.<out>.new-<tag>` → `out`. A crash between them leaves no `out`, and the complete old and
//! new trees under one tag; the next run puts `.<out>.old-<tag>` back (the crashed run undone)
//! before it writes.
//!
//! **Sweep.** Each run first removes what earlier runs left behind for the same `out`:
//! directories named exactly `.<out>.new-<tag>` or `.<out>.old-<tag>` (`<tag>` ASCII
//! alphanumeric, so no other output's staging names match), holding a valid marker, and not
//! locked. A running pitrix holds an advisory lock (flock) on its staging directory and on the
//! tree it swaps out, so a sweep never takes the directories of a run in progress; a crashed
//! run's locks died with it. Where the file system has no locks, nothing is swept. Trees are
//! removed marker last, so a removal cut short still leaves a directory that is visibly ours.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use super::{Files, INVENTORY_FILE};

/// The marker file pitrix writes into every output directory it writes: an existing
/// directory is replaced only when it is empty or carries one.
pub const MARKER_FILE: &str = ".pitrix-output";

/// The marker's format version. A marker of a greater one was written by a newer pitrix,
/// whose output this one does not replace.
pub const MARKER_FORMAT: u64 = 1;

/// The marker's bytes: the same on every run and every machine (no time, no host, not even
/// pitrix's version), so two compiles still give byte-identical trees. `format` is
/// [`MARKER_FORMAT`] (a unit test holds them together).
const MARKER: &str = concat!(
    "{\n",
    "  \"format\": 1,\n",
    "  \"writtenBy\": \"pitrix\",\n",
    "  \"note\": \"This directory is the output of pitrix compile, which replaces it whole on every run. Without this file pitrix refuses to replace it.\"\n",
    "}\n",
);

/// A marker larger than this is not one of ours.
const MARKER_MAX_LEN: u64 = 64 * 1024;

#[derive(Debug)]
pub enum WriteError {
    /// The directory exists, is not empty and carries no marker: pitrix did not write it.
    /// `inventory`: it has an `inventory.json` (an output of a pitrix from before the marker?).
    NotOurs {
        dir: PathBuf,
        inventory: bool,
    },
    /// The directory carries a marker this pitrix does not accept; why.
    BadMarker(PathBuf, String),
    /// Another pitrix run is replacing the directory at this very moment.
    Busy(PathBuf),
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            WriteError::NotOurs { dir, inventory } => {
                let d = dir.display();
                write!(
                    f,
                    "{d} exists and holds files pitrix did not write (it has no {MARKER_FILE} marker); \
                     refusing to replace it, which would delete them. Compile into a new or empty \
                     directory, or remove {d} yourself if nothing in it is needed"
                )?;
                if *inventory {
                    write!(
                        f,
                        " (it has an {INVENTORY_FILE}: an output of a pitrix from before \
                         {MARKER_FILE} is replaced only once it has been removed)"
                    )?;
                }
                Ok(())
            }
            WriteError::BadMarker(dir, why) => write!(
                f,
                "{d}: {why}; refusing to replace it. Compile into a new or empty directory, or \
                 remove {d} yourself if nothing in it is needed",
                d = dir.display()
            ),
            WriteError::Busy(dir) => write!(
                f,
                "{} is being replaced by another pitrix run; try again when it has finished",
                dir.display()
            ),
            WriteError::Io(p, e) => write!(f, "cannot write {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for WriteError {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |e| WriteError::Io(path.to_path_buf(), e)
}

/// Writes `files`, and the marker, as the whole content of `out`, replacing what was there
/// (if pitrix wrote it: see the module doc).
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
    replace_with(out, fill, Swap::Exchange)
}

/// How the staged tree takes `out`'s place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swap {
    /// `renameat2(RENAME_EXCHANGE)`, or the two renames where it is unsupported.
    Exchange,
    /// The two renames (what a file system without the exchange gets; for the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Renames,
}

fn replace_with(
    out: &Path,
    fill: impl FnOnce(&Path) -> Result<(), WriteError>,
    swap: Swap,
) -> Result<(), WriteError> {
    let (parent, base) = split(out)?;
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    recover_and_sweep(out, &parent, &base);
    check_ownership(out)?;
    let staging = Staging::create(&parent, &base)?;
    // On an error (or a panic) the staging directory goes with `staging`.
    fill(&staging.new)?;
    staging.commit(out, swap)
}

/// `out`'s parent directory (`.` for a bare name) and file name.
fn split(out: &Path) -> Result<(PathBuf, OsString), WriteError> {
    let Some(base) = out.file_name() else {
        let e = io::Error::new(
            io::ErrorKind::InvalidInput,
            "name the output directory itself (a path ending in a directory name)",
        );
        return Err(WriteError::Io(out.to_path_buf(), e));
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, base.to_os_string()))
}

/// Refuses an existing `out` that is neither empty nor marked as ours (see the module doc).
fn check_ownership(out: &Path) -> Result<(), WriteError> {
    match fs::metadata(out) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WriteError::Io(out.to_path_buf(), e)),
        Ok(meta) if !meta.is_dir() => {
            let e = io::Error::new(io::ErrorKind::AlreadyExists, "it is not a directory");
            return Err(WriteError::Io(out.to_path_buf(), e));
        }
        Ok(_) => {}
    }
    if fs::read_dir(out).map_err(io(out))?.next().is_none() {
        return Ok(());
    }
    match marker_of(out) {
        Marker::Valid => Ok(()),
        Marker::Missing => Err(WriteError::NotOurs {
            dir: out.to_path_buf(),
            inventory: out.join(INVENTORY_FILE).is_file(),
        }),
        Marker::Invalid(why) => Err(WriteError::BadMarker(out.to_path_buf(), why)),
    }
}

/// What a directory's marker says.
#[derive(Debug, PartialEq, Eq)]
enum Marker {
    Missing,
    /// Written by pitrix, in a format this pitrix understands.
    Valid,
    Invalid(String),
}

fn marker_of(dir: &Path) -> Marker {
    #[derive(Deserialize)]
    struct Fields {
        format: u64,
        #[serde(rename = "writtenBy")]
        written_by: String,
    }
    let path = dir.join(MARKER_FILE);
    let not_ours = || Marker::Invalid(format!("its {MARKER_FILE} is not a pitrix marker"));
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Marker::Missing,
        Err(e) => return Marker::Invalid(format!("cannot read its {MARKER_FILE}: {e}")),
        Ok(meta) if !meta.is_file() || meta.len() > MARKER_MAX_LEN => return not_ours(),
        Ok(_) => {}
    }
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => return Marker::Invalid(format!("cannot read its {MARKER_FILE}: {e}")),
    };
    match serde_json::from_slice::<Fields>(&bytes) {
        Ok(m) if m.written_by == "pitrix" && (1..=MARKER_FORMAT).contains(&m.format) => {
            Marker::Valid
        }
        Ok(m) if m.written_by == "pitrix" && m.format > MARKER_FORMAT => Marker::Invalid(format!(
            "it was written by a newer pitrix (output format {}; this pitrix knows {MARKER_FORMAT})",
            m.format
        )),
        _ => not_ours(),
    }
}

/// The two kinds of staging directory beside `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// `.<out>.new-<tag>`: a new tree being filled (or, after the exchange, the old one).
    New,
    /// `.<out>.old-<tag>`: the old tree, between the two renames of the fallback.
    Old,
}

/// `.<base>.new-<tag>` or `.<base>.old-<tag>`.
fn staging_name(base: &OsStr, kind: Kind, tag: &str) -> OsString {
    let mut name = OsString::from(".");
    name.push(base);
    name.push(match kind {
        Kind::New => ".new-",
        Kind::Old => ".old-",
    });
    name.push(tag);
    name
}

/// The kind and tag of a staging directory name of `base`'s, exactly as [`staging_name`]
/// makes them; `None` for every other name (another output's among them: a tag has no `.`).
fn staging_tag(name: &OsStr, base: &OsStr) -> Option<(Kind, String)> {
    let rest = name
        .as_encoded_bytes()
        .strip_prefix(b".")?
        .strip_prefix(base.as_encoded_bytes())?;
    let (kind, tag) = match rest.strip_prefix(b".new-") {
        Some(tag) => (Kind::New, tag),
        None => (Kind::Old, rest.strip_prefix(b".old-")?),
    };
    let valid = !tag.is_empty() && tag.iter().all(u8::is_ascii_alphanumeric);
    valid.then(|| (kind, String::from_utf8_lossy(tag).into_owned()))
}

/// An exclusive advisory lock on a directory, or why there is none.
enum Lock {
    /// Held while the handle lives.
    Held(File),
    /// Someone else holds it.
    Busy,
    /// The file system has no locks (an NFS mount, say).
    Unsupported,
}

fn try_lock(dir: &Path) -> io::Result<Lock> {
    let file = File::open(dir)?;
    Ok(match file.try_lock() {
        Ok(()) => Lock::Held(file),
        Err(TryLockError::WouldBlock) => Lock::Busy,
        Err(TryLockError::Error(_)) => Lock::Unsupported,
    })
}

/// Undoes a crash between the two renames of the fallback, then removes the staging
/// directories earlier runs left beside `out` (see the module doc). Best effort: what cannot
/// be recovered or removed is left as it is.
fn recover_and_sweep(out: &Path, parent: &Path, base: &OsStr) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    // Ours by name, a directory (not a link to one), and no run in progress holds it.
    let mut stale: BTreeMap<(String, Kind), (PathBuf, File)> = BTreeMap::new();
    for entry in entries.flatten() {
        let Some((kind, tag)) = staging_tag(&entry.file_name(), base) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Ok(Lock::Held(lock)) = try_lock(&entry.path()) {
            stale.insert((tag, kind), (entry.path(), lock));
        }
    }
    if fs::symlink_metadata(out).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        // A crashed run renamed `out` away and died before renaming its new tree in: both are
        // complete (the new one was filled before the first rename). Put the old one back.
        let crashed = stale.keys().find_map(|(tag, kind)| {
            let pair = *kind == Kind::Old && stale.contains_key(&(tag.clone(), Kind::New));
            pair.then(|| tag.clone())
        });
        if let Some(tag) = crashed {
            let old = &stale[&(tag.clone(), Kind::Old)].0;
            let new = &stale[&(tag.clone(), Kind::New)].0;
            if marker_of(old) == Marker::Valid
                && marker_of(new) == Marker::Valid
                && fs::rename(old, out).is_ok()
            {
                stale.remove(&(tag, Kind::Old));
            }
        }
    }
    for (path, _lock) in stale.values() {
        match marker_of(path) {
            Marker::Valid => {
                let _ = remove_tree(path);
            }
            // A run that died before writing its marker: only an empty directory goes.
            Marker::Missing => {
                let _ = fs::remove_dir(path);
            }
            Marker::Invalid(_) => {}
        }
    }
}

/// Removes a tree of ours, its marker last: a removal cut short leaves a directory the next
/// sweep still recognises. A link is removed, never followed; what is already gone is fine.
fn remove_tree(dir: &Path) -> io::Result<()> {
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    };
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(meta) if !meta.is_dir() => return gone(fs::remove_file(dir)),
        Ok(_) => {}
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == MARKER_FILE {
            continue;
        }
        let path = entry.path();
        gone(if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        })?;
    }
    gone(fs::remove_file(dir.join(MARKER_FILE)))?;
    gone(fs::remove_dir(dir))
}

/// One run's staging directory, `.<out>.new-<tag>`, marked and locked from its first moment.
/// Dropped before [`Staging::commit`] (an error, a panic), it removes itself.
struct Staging {
    new: PathBuf,
    /// Where the fallback renames the old output: `.<out>.old-<tag>`.
    old: PathBuf,
    lock: Option<File>,
    committed: bool,
}

impl Staging {
    fn create(parent: &Path, base: &OsStr) -> Result<Staging, WriteError> {
        let prefix = staging_name(base, Kind::New, "");
        for _ in 0..16 {
            let new = tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(parent)
                .map_err(io(parent))?
                .keep();
            let tag = match new.file_name().and_then(|n| staging_tag(n, base)) {
                Some((Kind::New, tag)) => tag,
                _ => {
                    let _ = fs::remove_dir(&new);
                    continue;
                }
            };
            let lock = match try_lock(&new) {
                Ok(Lock::Held(lock)) => Some(lock),
                Ok(Lock::Unsupported) => None,
                // A sweep took the empty directory for a crashed run's: it removes it.
                Ok(Lock::Busy) => continue,
                Err(_) => {
                    let _ = fs::remove_dir(&new);
                    continue;
                }
            };
            let old = parent.join(staging_name(base, Kind::Old, &tag));
            let staging = Staging {
                new,
                old,
                lock,
                committed: false,
            };
            // A leftover `.old-` of the same tag (one the sweep left alone) is not ours to take.
            if fs::symlink_metadata(&staging.old).is_ok() {
                continue;
            }
            match fs::write(staging.new.join(MARKER_FILE), MARKER) {
                Ok(()) => return Ok(staging),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(WriteError::Io(staging.new.join(MARKER_FILE), e)),
            }
        }
        let e = io::Error::other("cannot create a staging directory");
        Err(WriteError::Io(parent.to_path_buf(), e))
    }

    /// Swaps the filled tree in as `out` and removes the old one.
    fn commit(mut self, out: &Path, swap: Swap) -> Result<(), WriteError> {
        let fail = |e: io::Error| WriteError::Io(out.to_path_buf(), e);
        // The old tree is locked for as long as it exists, so no sweep takes it meanwhile.
        let _old_lock = match fs::symlink_metadata(out) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::rename(&self.new, out).map_err(fail)?;
                self.committed = true;
                return Ok(());
            }
            Err(e) => return Err(fail(e)),
            Ok(_) => match try_lock(out).map_err(fail)? {
                Lock::Busy => return Err(WriteError::Busy(out.to_path_buf())),
                Lock::Held(lock) => Some(lock),
                Lock::Unsupported => None,
            },
        };
        if swap == Swap::Exchange {
            match exchange(&self.new, out) {
                Ok(()) => {
                    // `self.new` now holds the old tree.
                    self.committed = true;
                    self.lock = None;
                    return remove_tree(&self.new).map_err(io(&self.new));
                }
                Err(e) if !exchange_unsupported(&e) => return Err(fail(e)),
                Err(_) => {}
            }
        }
        self.rename_old_away(out)?;
        if let Err(e) = fs::rename(&self.new, out) {
            // Put the old output back; the new one is abandoned (removed on drop).
            let _ = fs::rename(&self.old, out);
            return Err(fail(e));
        }
        self.committed = true;
        self.lock = None;
        remove_tree(&self.old).map_err(io(&self.old))
    }

    /// The fallback's first rename: `out` to `.<out>.old-<tag>`.
    fn rename_old_away(&self, out: &Path) -> Result<(), WriteError> {
        fs::rename(out, &self.old).map_err(io(out))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_tree(&self.new);
        }
    }
}

/// Atomically exchanges two paths: `renameat2(a, b, RENAME_EXCHANGE)`. A raw system call, so
/// that a C library without the wrapper (glibc before 2.28) still has it.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt as _;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated strings that outlive the call, which only reads them; every
    // argument is passed as a full register-width value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD as libc::c_long,
            a.as_ptr(),
            libc::AT_FDCWD as libc::c_long,
            b.as_ptr(),
            libc::RENAME_EXCHANGE as libc::c_long,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The exchange is not to be had here (the kernel, the file system, a seccomp filter): the
/// two renames instead. Any real trouble shows again in them.
fn exchange_unsupported(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    if let Some(libc::EINVAL | libc::ENOSYS | libc::EXDEV | libc::EOPNOTSUPP | libc::EPERM) =
        e.raw_os_error()
    {
        return true;
    }
    e.kind() == io::ErrorKind::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(tag: &str) -> Files {
        vec![
            (
                PathBuf::from(INVENTORY_FILE),
                format!("{{\"{tag}\":1}}\n").into_bytes(),
            ),
            (
                PathBuf::from("objects/a.yaml"),
                format!("a: {tag}\n").into_bytes(),
            ),
            (
                PathBuf::from("objects/deep/b.yaml"),
                format!("b: {tag}\n").into_bytes(),
            ),
        ]
    }

    /// Every file under `dir` with its bytes, by relative path.
    fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut v: Vec<_> = walkdir::WalkDir::new(dir)
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                (rel, fs::read(e.path()).unwrap())
            })
            .collect();
        v.sort();
        v
    }

    /// `files` plus the marker: what a written output directory holds.
    fn expected(tag: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let mut v = files(tag);
        v.push((PathBuf::from(MARKER_FILE), MARKER.as_bytes().to_vec()));
        v.sort();
        v
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A staging directory of ours, as a run leaves it: marked, holding `tag`'s tree.
    fn staged_by_hand(dir: &Path, tag: &str) {
        fs::create_dir(dir).unwrap();
        fs::write(dir.join(MARKER_FILE), MARKER).unwrap();
        for (rel, bytes) in files(tag) {
            put(dir, &rel, &bytes).unwrap();
        }
    }

    #[test]
    fn the_marker_is_valid_deterministic_and_of_this_format() {
        #[derive(Deserialize)]
        struct Fields {
            format: u64,
            #[serde(rename = "writtenBy")]
            written_by: String,
        }
        let m: Fields = serde_json::from_str(MARKER).unwrap();
        assert_eq!((m.format, m.written_by.as_str()), (MARKER_FORMAT, "pitrix"));

        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        write_atomic(&a, &files("x")).unwrap();
        write_atomic(&b, &files("x")).unwrap();
        assert_eq!(marker_of(&a), Marker::Valid);
        assert_eq!(tree(&a), tree(&b));
        assert_eq!(fs::read(a.join(MARKER_FILE)).unwrap(), MARKER.as_bytes());
    }

    /// `mkdir x/.ssh; echo '{}' > x/inventory.json; pitrix compile … -o x` deleted `x/.ssh`.
    #[test]
    fn an_inventory_without_a_marker_is_refused_and_nothing_is_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let x = tmp.path().join("x");
        fs::create_dir_all(x.join(".ssh")).unwrap();
        fs::write(x.join(".ssh/id_ed25519"), "secret").unwrap();
        fs::write(x.join(INVENTORY_FILE), "{}").unwrap();
        let err = write_atomic(&x, &files("new")).unwrap_err();
        assert!(
            matches!(&err, WriteError::NotOurs { dir, inventory: true } if dir == &x),
            "{err:?}"
        );
        let text = err.to_string();
        for part in [
            &*x.display().to_string(),
            MARKER_FILE,
            "refusing",
            "new or empty",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert_eq!(
            fs::read_to_string(x.join(".ssh/id_ed25519")).unwrap(),
            "secret"
        );
        assert_eq!(fs::read_to_string(x.join(INVENTORY_FILE)).unwrap(), "{}");
        assert_eq!(names(tmp.path()), ["x"], "no staging left behind");
    }

    #[test]
    fn a_foreign_or_newer_marker_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let cases = [
            ("{\"format\": 2, \"writtenBy\": \"pitrix\"}", "newer pitrix"),
            (
                "{\"format\": 1, \"writtenBy\": \"someone\"}",
                "not a pitrix marker",
            ),
            ("not json", "not a pitrix marker"),
        ];
        for (i, (marker, why)) in cases.into_iter().enumerate() {
            let dir = tmp.path().join(format!("d{i}"));
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join(MARKER_FILE), marker).unwrap();
            fs::write(dir.join("keep"), "keep").unwrap();
            let err = write_atomic(&dir, &files("new")).unwrap_err();
            assert!(matches!(err, WriteError::BadMarker(..)), "{err:?}");
            assert!(err.to_string().contains(why), "{err}");
            assert!(err.to_string().contains("refusing"), "{err}");
            assert_eq!(fs::read_to_string(dir.join("keep")).unwrap(), "keep");
        }
        // A marker that is a link (to a valid marker) is not one.
        let dir = tmp.path().join("linked");
        fs::create_dir(&dir).unwrap();
        let real = tmp.path().join("real-marker");
        fs::write(&real, MARKER).unwrap();
        std::os::unix::fs::symlink(&real, dir.join(MARKER_FILE)).unwrap();
        assert!(matches!(
            write_atomic(&dir, &files("new")),
            Err(WriteError::BadMarker(..))
        ));
    }

    #[test]
    fn an_empty_directory_is_written_and_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        write_atomic(&out, &files("one")).unwrap();
        assert_eq!(tree(&out), expected("one"));
        assert_eq!(names(tmp.path()), ["out"]);

        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            write_atomic(&file, &files("one")),
            Err(WriteError::Io(..))
        ));
        assert_eq!(fs::read_to_string(&file).unwrap(), "x");
    }

    #[test]
    fn a_marked_directory_is_replaced_whole_by_either_swap() {
        for swap in [Swap::Exchange, Swap::Renames] {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("out");
            let write = |tag: &str| {
                replace_with(
                    &out,
                    |staging| {
                        files(tag)
                            .iter()
                            .try_for_each(|(rel, bytes)| put(staging, rel, bytes))
                    },
                    swap,
                )
            };
            write("one").unwrap();
            fs::write(out.join("objects/stale.yaml"), "stale").unwrap();
            fs::create_dir(out.join("by-hand")).unwrap();
            write("two").unwrap();
            assert_eq!(tree(&out), expected("two"), "{swap:?}");
            assert!(!out.join("by-hand").exists());
            assert_eq!(names(tmp.path()), ["out"], "{swap:?}: nothing beside it");
        }
    }

    #[test]
    fn a_failed_fill_leaves_the_old_output_and_no_staging() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write_atomic(&out, &files("one")).unwrap();
        let err = replace_atomic(&out, |staging| {
            put(staging, Path::new("half.yaml"), b"half")?;
            Err(WriteError::Io(
                staging.to_path_buf(),
                io::Error::other("full disk"),
            ))
        })
        .unwrap_err();
        assert!(err.to_string().contains("full disk"));
        assert_eq!(tree(&out), expected("one"));
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn the_exchange_swaps_two_directories_or_is_unsupported() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        fs::write(a.join("in-a"), "").unwrap();
        match exchange(&a, &b) {
            Ok(()) => {
                assert!(b.join("in-a").exists());
                assert!(!a.join("in-a").exists());
            }
            Err(e) => assert!(exchange_unsupported(&e), "{e}"),
        }
    }

    /// The fallback's crash between its two renames, by its own steps: `out` renamed away,
    /// the process gone before the new tree is renamed in.
    #[test]
    fn a_crash_between_the_two_renames_is_undone_then_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write_atomic(&out, &files("one")).unwrap();
        let (parent, base) = split(&out).unwrap();
        let mut staging = Staging::create(&parent, &base).unwrap();
        for (rel, bytes) in files("two") {
            put(&staging.new, &rel, &bytes).unwrap();
        }
        staging.rename_old_away(&out).unwrap();
        // The crash: the locks die with the process, the directories stay.
        staging.lock = None;
        staging.committed = true;
        let (new, old) = (staging.new.clone(), staging.old.clone());
        drop(staging);

        assert!(!out.exists());
        assert_eq!(tree(&old), expected("one"), "the complete old output");
        assert_eq!(tree(&new), expected("two"), "the complete new output");

        // The next run recovers before it writes: its fill fails, the old output is back.
        let err = replace_atomic(&out, |_| {
            Err(WriteError::Io(
                out.clone(),
                io::Error::other("catalog trouble"),
            ))
        });
        assert!(err.is_err());
        assert_eq!(tree(&out), expected("one"), "the old output is put back");
        assert_eq!(
            names(tmp.path()),
            ["out"],
            "the crashed run's trees are swept"
        );

        write_atomic(&out, &files("three")).unwrap();
        assert_eq!(tree(&out), expected("three"));
        assert_eq!(names(tmp.path()), ["out"]);
    }

    /// The same crash made by hand, with `out` then recompiled: written, and swept.
    #[test]
    fn stale_staging_of_crashed_runs_is_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        staged_by_hand(&tmp.path().join(".out.old-Ab12cD"), "old");
        staged_by_hand(&tmp.path().join(".out.new-Ab12cD"), "new");
        // A removal cut short (only the marker left), and a run dead before its marker.
        fs::create_dir(tmp.path().join(".out.new-zz9")).unwrap();
        fs::write(tmp.path().join(".out.new-zz9").join(MARKER_FILE), MARKER).unwrap();
        fs::create_dir(tmp.path().join(".out.new-empty0")).unwrap();
        write_atomic(&out, &files("fresh")).unwrap();
        assert_eq!(tree(&out), expected("fresh"));
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn the_sweep_touches_nothing_that_is_not_this_outputs_stale_staging() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        let out = p.join("out");
        write_atomic(&out, &files("one")).unwrap();
        // Other outputs' staging, near misses of the name, foreign and live directories.
        let kept = [
            ".other.new-abc123",
            ".other.old-abc123",
            ".outx.new-abc123",
            ".out.new-abc-12",
            ".out.new-abc.12",
            ".out.new-",
            ".out.newer-abc123",
            "out.new-abc123",
            ".out.old-abc123.bak",
            ".out.new-abc123.new-xyz",
        ];
        for name in kept {
            staged_by_hand(&p.join(name), "theirs");
        }
        // Ours by name but not by content: no marker, or a file.
        fs::create_dir(p.join(".out.new-nomark1")).unwrap();
        fs::write(p.join(".out.new-nomark1/keep"), "keep").unwrap();
        fs::write(p.join(".out.old-file01"), "a file").unwrap();
        // A link to a marked directory elsewhere: neither followed nor removed.
        let elsewhere = p.join("elsewhere");
        staged_by_hand(&elsewhere, "elsewhere");
        std::os::unix::fs::symlink(&elsewhere, p.join(".out.new-link01")).unwrap();
        // A run in progress: marked, and locked.
        let live = p.join(".out.new-live01");
        staged_by_hand(&live, "live");
        let Lock::Held(_live_lock) = try_lock(&live).unwrap() else {
            panic!("no locks on this file system")
        };

        let before: Vec<_> = names(p)
            .into_iter()
            .filter(|n| n != "out")
            .map(|n| (n.clone(), tree(&p.join(&n))))
            .collect();
        write_atomic(&out, &files("two")).unwrap();
        let after: Vec<_> = names(p)
            .into_iter()
            .filter(|n| n != "out")
            .map(|n| (n.clone(), tree(&p.join(&n))))
            .collect();
        assert_eq!(before, after);
        assert!(
            fs::symlink_metadata(p.join(".out.new-link01"))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(tree(&out), expected("two"));
    }

    /// `out` missing and a crashed-looking pair whose new tree is locked: a run in progress
    /// between its renames. Neither is restored nor swept.
    #[test]
    fn a_run_between_its_renames_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        staged_by_hand(&p.join(".out.old-run001"), "old");
        staged_by_hand(&p.join(".out.new-run001"), "new");
        let Lock::Held(_old) = try_lock(&p.join(".out.old-run001")).unwrap() else {
            panic!("no locks on this file system")
        };
        let Lock::Held(_new) = try_lock(&p.join(".out.new-run001")).unwrap() else {
            panic!("no locks on this file system")
        };
        recover_and_sweep(&p.join("out"), p, OsStr::new("out"));
        assert_eq!(names(p), [".out.new-run001", ".out.old-run001"]);
    }

    #[test]
    fn an_output_being_replaced_by_another_run_is_busy() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write_atomic(&out, &files("one")).unwrap();
        let Lock::Held(_other) = try_lock(&out).unwrap() else {
            panic!("no locks on this file system")
        };
        let err = write_atomic(&out, &files("two")).unwrap_err();
        assert!(matches!(err, WriteError::Busy(_)), "{err:?}");
        assert_eq!(tree(&out), expected("one"));
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn staging_names_round_trip_and_belong_to_one_output() {
        let base = OsStr::new("out");
        let name = staging_name(base, Kind::Old, "Xy12");
        assert_eq!(name, ".out.old-Xy12");
        assert_eq!(staging_tag(&name, base), Some((Kind::Old, "Xy12".into())));
        // `out.new-a`'s staging is not `out`'s, and the other way round.
        let other = staging_name(OsStr::new("out.new-a"), Kind::New, "b");
        assert_eq!(staging_tag(&other, base), None);
        assert_eq!(staging_tag(&name, OsStr::new("out.old-Xy12")), None);
    }
}
