//! The compiled bodies of the applied revision, on disk in the private cache, named by digest:
//! a drift correction reads back the one object it re-applies instead of keeping every body
//! (chart packages included) in memory. Unchanged objects keep their file across revisions.

use std::collections::HashSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::apply::Desired;
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

    /// Writes the bodies that are not stored yet.
    pub fn put_all(&self, desired: &Desired) -> Result<usize, Error> {
        let mut written = 0;
        for o in &desired.objects {
            let Some(name) = file_name(&o.digest) else {
                return Err(Error::Corrupt(format!(
                    "bad digest `{}` of {}",
                    o.digest, o.r.name
                )));
            };
            let path = self.dir.join(&name);
            if path.is_file() {
                continue;
            }
            let bytes = serde_json::to_vec(o.body()?).unwrap_or_default();
            let tmp = self.dir.join(format!(".{name}.tmp"));
            let write = || -> std::io::Result<()> {
                let mut f = fs::File::create(&tmp)?;
                f.write_all(&bytes)?;
                fs::rename(&tmp, &path)
            };
            write().map_err(|e| Error::io(&path, e))?;
            written += 1;
        }
        Ok(written)
    }

    /// The body with this digest, checked against it.
    pub fn get(&self, digest: &str) -> Result<Value, Error> {
        let name =
            file_name(digest).ok_or_else(|| Error::Corrupt(format!("bad digest `{digest}`")))?;
        let path = self.dir.join(name);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
        if crate::emit::digest(&body) != digest {
            return Err(Error::Corrupt(format!(
                "{} does not match its digest (the cache was altered)",
                path.display()
            )));
        }
        Ok(body)
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
        let desired = Desired {
            catalog: "c".into(),
            objects: vec![DesiredObject::of(body.clone()).unwrap()],
            status: vec![],
            standalone: None,
            contexts: Default::default(),
            object_store: None,
        };
        assert_eq!(store.put_all(&desired).unwrap(), 1);
        assert_eq!(store.put_all(&desired).unwrap(), 0);
        assert_eq!(store.get(&digest).unwrap(), body);
        assert!(store.get("sha256:../../etc/passwd").is_err());
        // Tampering is noticed.
        let path = tmp.path().join("objects").join(file_name(&digest).unwrap());
        fs::write(&path, br#"{"kind":"Other"}"#).unwrap();
        let altered = store.get(&digest).unwrap_err();
        assert_eq!(altered.metric_label(), "corrupt");
        assert!(altered.to_string().contains("does not match"), "{altered}");
        store.retain(&HashSet::new());
        assert!(!path.exists());
    }
}
