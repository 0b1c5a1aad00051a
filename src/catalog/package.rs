//! A version's package: the bytes KubeSphere stores. Held in memory, or — for a controller
//! that must not hold every package of a large catalog at once — spooled to a file and read
//! back by the one stage that needs the bytes (compile), one version at a time.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use crate::diagnostics::{Code, Diagnostic};
use crate::error::Error;

/// A package that could not be spooled or read back, as a diagnostic (on the version's
/// `file` when known).
pub fn spool_error(e: &Error, file: Option<&Path>) -> Diagnostic {
    let d = Diagnostic::error(Code::CacheIo, e.to_string()).hint(
        "packages are spooled in pitrix's own cache directory: check its disk space and permissions",
    );
    match file {
        Some(file) => d.in_file(file),
        None => d,
    }
}

#[derive(Debug, Clone)]
pub struct Package {
    len: usize,
    data: Data,
}

#[derive(Debug, Clone)]
enum Data {
    Memory(Arc<[u8]>),
    /// A file in a spool directory, named by the package's digest and written by [`Package::spool`].
    Spooled(Arc<Path>),
}

impl Package {
    pub fn new(bytes: Vec<u8>) -> Package {
        Package {
            len: bytes.len(),
            data: Data::Memory(bytes.into()),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes: borrowed when in memory, read when spooled (checked against the length
    /// recorded, so a spool file cut short or replaced by another package is an error).
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>, Error> {
        match &self.data {
            Data::Memory(bytes) => Ok(Cow::Borrowed(bytes)),
            Data::Spooled(path) => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path.as_ref(), e))?;
                if bytes.len() != self.len {
                    return Err(Error::Corrupt(format!(
                        "{} holds {} bytes where {} were spooled (the spool was altered)",
                        path.display(),
                        bytes.len(),
                        self.len
                    )));
                }
                Ok(Cow::Owned(bytes))
            }
        }
    }

    /// Moves the bytes to `<dir>/<digest>.tgz` (written once per digest; a file already there
    /// with the right length is kept) and keeps only the file's name in memory.
    pub fn spool(self, dir: &Path, digest: &str) -> Result<Package, Error> {
        let Data::Memory(bytes) = &self.data else {
            return Ok(self);
        };
        let path: Arc<Path> = dir.join(format!("{digest}.tgz")).into();
        let present = std::fs::metadata(&path).is_ok_and(|m| m.len() == self.len as u64);
        if !present {
            crate::lock::write_file_atomic(&path, bytes)
                .map_err(|e| Error::io(path.as_ref(), e))?;
        }
        Ok(Package {
            len: self.len,
            data: Data::Spooled(path),
        })
    }
}

impl From<Vec<u8>> for Package {
    fn from(bytes: Vec<u8>) -> Package {
        Package::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spooled_bytes_read_back_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"a package".to_vec();
        let digest = crate::chart::digest(&bytes);
        let p = Package::new(bytes.clone());
        assert_eq!(&*p.bytes().unwrap(), bytes.as_slice());
        let spooled = p.spool(dir.path(), &digest).unwrap();
        assert_eq!(spooled.len(), bytes.len());
        let file = dir.path().join(format!("{digest}.tgz"));
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
        assert_eq!(&*spooled.bytes().unwrap(), bytes.as_slice());
        // Spooling the same package again writes nothing new.
        let again = Package::new(bytes.clone())
            .spool(dir.path(), &digest)
            .unwrap();
        assert_eq!(&*again.bytes().unwrap(), bytes.as_slice());
        // A file cut short is an error, never other bytes.
        std::fs::write(&file, b"a pack").unwrap();
        let err = spooled.bytes().unwrap_err();
        assert_eq!(err.metric_label(), "corrupt");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(spooled.bytes().unwrap_err().metric_label(), "io");
    }
}
