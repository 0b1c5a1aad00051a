//! Writing an export: into a new or empty directory, or over a catalog of the same name — whose
//! exported parts (pitrix.toml, categories/, repos/, apps/, releases/) are replaced as a whole
//! while everything else (.git, README, values/…) stays. Files are staged in a temporary
//! directory beside DIR and moved into place at the end: a failure leaves no partial catalog.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The top-level entries an export owns.
pub const EXPORTED: &[&str] = &["pitrix.toml", "categories", "repos", "apps", "releases"];

/// A file an export adds, changes or removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Added(String),
    Changed(String),
    Removed(String),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added(p) => write!(f, "+ {p}"),
            Change::Changed(p) => write!(f, "~ {p}"),
            Change::Removed(p) => write!(f, "- {p}"),
        }
    }
}

/// The catalog name of `dir/pitrix.toml`, if it has one.
pub fn existing_name(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join("pitrix.toml")).ok()?;
    let v: toml::Value = toml::from_str(&text).ok()?;
    v.get("catalog")?.get("name")?.as_str().map(str::to_string)
}

/// The `[storage.s3]` of `dir/pitrix.toml`, if it has one: where an earlier export (or the
/// catalog's author) said the packages are.
pub fn existing_store(dir: &Path) -> Option<crate::catalog::S3Location> {
    let text = fs::read_to_string(dir.join("pitrix.toml")).ok()?;
    let settings: crate::catalog::Settings = toml::from_str(&text).ok()?;
    settings.storage.s3.map(|s3| s3.location())
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Refuses a directory that is neither new, nor empty, nor a catalog named `name`.
pub fn check_target(dir: &Path, name: &str) -> Result<(), Error> {
    if !dir.exists() || is_empty_dir(dir) {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(Error::Catalog(format!(
            "{} exists and is no directory",
            dir.display()
        )));
    }
    match existing_name(dir) {
        Some(n) if n == name => Ok(()),
        Some(n) => Err(Error::Catalog(format!(
            "{} holds catalog `{n}`, not `{name}`: export into a new directory, or pass --name {n}",
            dir.display()
        ))),
        None => Err(Error::Catalog(format!(
            "{} is not empty and holds no catalog: export into a new or empty directory",
            dir.display()
        ))),
    }
}

/// Every file under `dir`'s exported entries, catalog-relative with `/`.
fn existing_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), Error> {
        let meta = fs::symlink_metadata(at).map_err(|e| Error::io(at, e))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = fs::read_dir(at)
                .map_err(|e| Error::io(at, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                walk(root, &e, out)?;
            }
        } else {
            let rel = at
                .strip_prefix(root)
                .unwrap_or(at)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let bytes = fs::read(at).map_err(|e| Error::io(at, e))?;
            out.insert(rel, bytes);
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    for entry in EXPORTED {
        let p = dir.join(entry);
        if fs::symlink_metadata(&p).is_ok() {
            walk(dir, &p, &mut out)?;
        }
    }
    Ok(out)
}

/// What writing `files` into `dir` changes.
pub fn changes(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<Change>, Error> {
    let old = if dir.is_dir() {
        existing_files(dir)?
    } else {
        BTreeMap::new()
    };
    let mut out = Vec::new();
    let paths: BTreeSet<&String> = old.keys().chain(files.keys()).collect();
    for p in paths {
        match (old.get(p), files.get(p)) {
            (None, Some(_)) => out.push(Change::Added(p.clone())),
            (Some(_), None) => out.push(Change::Removed(p.clone())),
            (Some(a), Some(b)) if a != b => out.push(Change::Changed(p.clone())),
            _ => {}
        }
    }
    Ok(out)
}

/// Writes `files` (catalog-relative paths) as the catalog in `dir`; returns what changed.
/// Refuses a directory [`check_target`] refuses.
pub fn write_catalog(
    dir: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    dry_run: bool,
) -> Result<Vec<Change>, Error> {
    for p in files.keys() {
        let first = p.split('/').next().unwrap_or_default();
        if !EXPORTED.contains(&first) || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::Catalog(format!(
                "export would write outside the catalog: {p}"
            )));
        }
    }
    let changes = changes(dir, files)?;
    if dry_run || (changes.is_empty() && dir.is_dir()) {
        return Ok(changes);
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".pitrix-export-")
        .tempdir_in(&parent)
        .map_err(|e| {
            Error::Catalog(format!(
                "cannot make a temporary directory in {}: {e}",
                parent.display()
            ))
        })?;
    for (rel, bytes) in files {
        let path = staging.path().join(rel);
        if let Some(d) = path.parent() {
            fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }

    if !dir.exists() || is_empty_dir(dir) {
        if dir.exists() {
            fs::remove_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        let staged = staging.keep();
        return fs::rename(&staged, dir)
            .map(|()| changes.clone())
            .map_err(|e| {
                let _ = fs::remove_dir_all(&staged);
                Error::Catalog(format!(
                    "cannot move the export into {}: {e}",
                    dir.display()
                ))
            });
    }

    // A catalog of the same name: swap the exported entries, keeping the old ones until
    // every new one is in place.
    let backup = tempfile::Builder::new()
        .prefix(".pitrix-export-old-")
        .tempdir_in(&parent)
        .map_err(|e| {
            Error::Catalog(format!(
                "cannot make a temporary directory in {}: {e}",
                parent.display()
            ))
        })?;
    let mut moved: Vec<&str> = Vec::new();
    let mut placed: Vec<&str> = Vec::new();
    let result = (|| {
        for entry in EXPORTED {
            let old = dir.join(entry);
            if fs::symlink_metadata(&old).is_ok() {
                fs::rename(&old, backup.path().join(entry)).map_err(|e| Error::io(&old, e))?;
                moved.push(entry);
            }
            let new = staging.path().join(entry);
            if new.exists() {
                fs::rename(&new, &old).map_err(|e| Error::io(&old, e))?;
                placed.push(entry);
            }
        }
        Ok::<_, Error>(())
    })();
    if let Err(e) = result {
        // Back as it was.
        for entry in placed {
            let _ = fs::rename(dir.join(entry), staging.path().join(entry));
        }
        for entry in moved {
            let _ = fs::rename(backup.path().join(entry), dir.join(entry));
        }
        return Err(Error::Catalog(format!(
            "{e}; {} is left as it was",
            dir.display()
        )));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn export_new_then_same_catalog_keeps_foreign_files_and_reports_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let first = files(&[
            ("pitrix.toml", "[catalog]\nname = \"store\"\n"),
            ("repos/a.yaml", "url: x\n"),
            ("categories/c.yaml", "{}\n"),
        ]);
        check_target(&dir, "store").unwrap();
        let c = write_catalog(&dir, &first, false).unwrap();
        assert_eq!(c.len(), 3);
        fs::write(dir.join("README.md"), "mine").unwrap();
        assert_eq!(existing_name(&dir).as_deref(), Some("store"));
        check_target(&dir, "store").unwrap();
        assert!(check_target(&dir, "other").is_err());

        let second = files(&[
            ("pitrix.toml", "[catalog]\nname = \"store\"\n"),
            ("repos/a.yaml", "url: y\n"),
            ("repos/b.yaml", "url: z\n"),
        ]);
        let dry = write_catalog(&dir, &second, true).unwrap();
        assert_eq!(
            dry,
            vec![
                Change::Removed("categories/c.yaml".into()),
                Change::Changed("repos/a.yaml".into()),
                Change::Added("repos/b.yaml".into()),
            ]
        );
        assert_eq!(
            fs::read_to_string(dir.join("repos/a.yaml")).unwrap(),
            "url: x\n"
        );
        write_catalog(&dir, &second, false).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("repos/a.yaml")).unwrap(),
            "url: y\n"
        );
        assert!(!dir.join("categories").exists());
        assert_eq!(fs::read_to_string(dir.join("README.md")).unwrap(), "mine");
        assert!(write_catalog(&dir, &second, false).unwrap().is_empty());
        assert_eq!(existing_store(&dir), None);
        fs::write(
            dir.join("pitrix.toml"),
            "[catalog]\nname = \"store\"\n\n[storage.s3]\nendpoint = \"http://s3:9000\"\nbucket = \"app-store\"\n",
        )
        .unwrap();
        let store = existing_store(&dir).unwrap();
        assert_eq!(
            (
                store.endpoint.as_str(),
                store.bucket.as_str(),
                store.region.as_str()
            ),
            ("http://s3:9000", "app-store", "us-east-1")
        );
        // Nothing left beside it.
        let siblings: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(siblings.len(), 1);
    }

    #[test]
    fn a_non_catalog_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("x"), "").unwrap();
        assert!(check_target(tmp.path(), "store").is_err());
        let outside = files(&[("../x", "")]);
        assert!(write_catalog(&tmp.path().join("new"), &outside, false).is_err());
    }
}
