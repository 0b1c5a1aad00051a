//! The compiled bodies of the applied revision, on disk in the private cache, named by digest:
//! a drift correction reads back the one object it re-applies instead of keeping every body
//! (chart packages included) in memory. Unchanged objects keep their file across revisions.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::apply::read_stored;
use crate::error::Error;

pub struct Store {
    dir: PathBuf,
}

fn file_name(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("{hex}.json"))
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// Stores a body under its digest (once: an unchanged object keeps its file) and says
    /// where.
    pub fn put(&self, body: &Value, digest: &str) -> Result<PathBuf, Error> {
        let name =
            file_name(digest).ok_or_else(|| Error::Corrupt(format!("bad digest `{digest}`")))?;
        let path = self.dir.join(&name);
        if path.is_file() {
            return Ok(path);
        }
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        crate::lock::write_file_atomic(&path, &bytes).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// The body with this digest, checked against it.
    pub fn get(&self, digest: &str) -> Result<Value, Error> {
        let name =
            file_name(digest).ok_or_else(|| Error::Corrupt(format!("bad digest `{digest}`")))?;
        read_stored(&self.dir.join(name), digest)
    }

    /// Removes the bodies no digest in `keep` names.
    pub fn retain(&self, keep: &HashSet<&str>) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let digest = name
                .strip_suffix(".json")
                .map(|hex| format!("sha256:{hex}"));
            if digest.is_none_or(|d| !keep.contains(d.as_str())) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::DesiredObject;

    #[test]
    fn put_get_retain() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("objects")).unwrap();
        let body =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
        let digest = crate::emit::digest(&body);
        let path = store.put(&body, &digest).unwrap();
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(store.put(&body, &digest).unwrap(), path);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
        assert_eq!(store.get(&digest).unwrap(), body);
        assert!(store.put(&body, "sha256:../x").is_err());
        // A desired object backed by the store reads it when asked, and does not keep it.
        let o = DesiredObject::of(body.clone())
            .unwrap()
            .stored_at(path.clone());
        assert_eq!(o.to_body().unwrap(), body);
        assert!(store.get("sha256:../../etc/passwd").is_err());
        // Tampering is noticed.
        fs::write(&path, br#"{"kind":"Other"}"#).unwrap();
        let altered = store.get(&digest).unwrap_err();
        assert_eq!(altered.metric_label(), "corrupt");
        assert!(altered.to_string().contains("does not match"), "{altered}");
        assert!(
            o.to_body()
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        store.retain(&HashSet::new());
        assert!(!path.exists());
    }
}
