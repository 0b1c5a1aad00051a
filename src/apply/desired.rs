//! What apply works from: the compiled objects as JSON in apply order, each with the digest
//! of its canonical form — made from a fresh compile or read back from an output directory
//! (what was reviewed is what is applied).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use serde_json::Value;

use crate::cluster::{KindInfo, ObjectRef};
use crate::compile::Compiled;
use crate::compile::executor::Standalone;
use crate::emit::{self, INVENTORY_FILE, Inventory};
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct DesiredObject {
    pub r: ObjectRef,
    pub kind: &'static KindInfo,
    /// `sha256:<hex>` of the compiled object, as in inventory.json.
    pub digest: String,
    /// Parsed once, shared by every caller (the failure too).
    body: OnceLock<Result<Value, Arc<Error>>>,
    /// Where the body is parsed from when asked for.
    source: Option<Source>,
}

#[derive(Debug, Clone)]
enum Source {
    /// An output directory's file, read (and checked against its file digest) with the
    /// inventory: what was reviewed is what is applied.
    Output { file: PathBuf, text: String },
    /// A controller's store of compiled bodies (JSON named by digest), read each time: a sync
    /// never holds every package of the catalog at once.
    Stored { file: PathBuf },
}

impl DesiredObject {
    pub fn new(r: ObjectRef, kind: &'static KindInfo, body: Value, digest: String) -> Self {
        DesiredObject {
            r,
            kind,
            digest,
            body: OnceLock::from(Ok(body)),
            source: None,
        }
    }

    /// A compiled object, with its body's digest.
    pub fn compiled(o: &crate::compile::Object) -> Self {
        let body = o.to_json();
        let digest = emit::digest(&body);
        let kind = KindInfo::of(o.kind()).expect("compiled kinds are known");
        DesiredObject::new(o.object_ref(), kind, body, digest)
    }

    /// This object with its body left in a store file ([`read_stored`]), read only when
    /// needed and never kept.
    pub fn stored_at(self, file: PathBuf) -> Self {
        DesiredObject {
            body: OnceLock::new(),
            source: Some(Source::Stored { file }),
            ..self
        }
    }

    /// An object of a known kind, named by its body.
    pub fn of(body: Value) -> Option<Self> {
        let kind = KindInfo::of(body["kind"].as_str()?)?;
        let digest = emit::digest(&body);
        Some(DesiredObject::new(
            ObjectRef::of_json(&body),
            kind,
            body,
            digest,
        ))
    }

    /// The object as compiled. From an output directory it is parsed (and checked against its
    /// digest) only now, and kept: a no-op apply sends nothing, and most bytes are packages.
    pub fn body(&self) -> Result<&Value, Error> {
        self.body
            .get_or_init(|| self.parse().map_err(Arc::new))
            .as_ref()
            .map_err(|e| Error::Shared(e.clone()))
    }

    /// The object as compiled, owned. One read from an output directory is parsed afresh and
    /// not kept: an apply sends each body once, and keeping thousands of packages parsed
    /// would hold them all in memory twice.
    pub fn to_body(&self) -> Result<Value, Error> {
        match self.body.get() {
            Some(body) => body.clone().map_err(Error::Shared),
            None => self.parse(),
        }
    }

    /// The body sent to a cluster: the compiled object, annotated with its digest.
    pub fn to_applied(&self) -> Result<Value, Error> {
        let mut body = self.to_body()?;
        body["metadata"]["annotations"][super::DIGEST_ANNOTATION] = self.digest.clone().into();
        Ok(body)
    }

    fn parse(&self) -> Result<Value, Error> {
        let (file, body) = match &self.source {
            None => {
                return Err(Error::Corrupt(format!(
                    "{} {} has no body",
                    self.r.kind, self.r.name
                )));
            }
            Some(Source::Output { file, text }) => (file, parse_checked(file, text, &self.digest)?),
            Some(Source::Stored { file }) => (file, read_stored(file, &self.digest)?),
        };
        if ObjectRef::of_json(&body) != self.r {
            return Err(another_object(&self.r, file));
        }
        Ok(body)
    }

    /// Replaces the body (and its digest).
    pub fn set_body(&mut self, body: Value) {
        self.digest = emit::digest(&body);
        self.body = OnceLock::from(Ok(body));
        self.source = None;
    }
}

/// A compiled body stored as JSON, checked against its digest.
pub fn read_stored(file: &Path, digest: &str) -> Result<Value, crate::Error> {
    let bytes = std::fs::read(file).map_err(|e| crate::Error::io(file, e))?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| crate::Error::Corrupt(format!("{}: {e}", file.display())))?;
    if emit::digest(&body) != digest {
        return Err(crate::Error::Corrupt(format!(
            "{} does not match its digest (the cache was altered)",
            file.display()
        )));
    }
    Ok(body)
}

/// Parses an output file and checks it against the digest its inventory recorded.
fn parse_checked(file: &Path, text: &str, digest: &str) -> Result<Value, Error> {
    let not_yaml =
        |e: serde_yaml::Error| Error::Corrupt(format!("{} is not YAML: {e}", file.display()));
    let body: Value = emit::from_yaml(text).map_err(not_yaml)?;
    // The fast reading is checked by the digest; the plain one has the last word.
    if emit::digest(&body) == digest {
        return Ok(body);
    }
    let body: Value = serde_yaml::from_str(text).map_err(not_yaml)?;
    if emit::digest(&body) != digest {
        return Err(edited(file));
    }
    Ok(body)
}

fn edited(file: &Path) -> Error {
    Error::Corrupt(format!(
        "{} does not match the digest in {INVENTORY_FILE}: the output was edited after compiling",
        file.display()
    ))
}

fn another_object(r: &ObjectRef, file: &Path) -> Error {
    Error::Corrupt(format!(
        "{INVENTORY_FILE} lists {} {} for {}, which holds another object: the output was edited after compiling",
        r.kind,
        r.name,
        file.display()
    ))
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub catalog: String,
    /// In apply order.
    pub objects: Vec<DesiredObject>,
    /// Status-subresource bodies (`apiVersion`, `kind`, `metadata.name`, `status`).
    pub status: Vec<Value>,
    /// `standalone`: pitrix runs the executor Jobs and writes release status from them.
    pub standalone: Option<Standalone>,
    /// The kubeconfig context of each catalog cluster that names one.
    pub contexts: BTreeMap<String, String>,
    /// Where the S3 objects are uploaded (`[storage.s3]`).
    pub object_store: Option<crate::catalog::S3Location>,
}

impl Desired {
    pub fn from_compiled(compiled: &Compiled) -> Desired {
        let objects = compiled
            .objects
            .iter()
            .map(DesiredObject::compiled)
            .collect();
        Desired::of(Compiled {
            catalog: compiled.catalog.clone(),
            objects,
            status: compiled.status.clone(),
            standalone: compiled.standalone.clone(),
            environment: None,
            contexts: compiled.contexts.clone(),
            status_image: None,
            object_store: compiled.object_store.clone(),
        })
    }

    /// A compile whose objects were made into [`DesiredObject`]s as they were compiled
    /// ([`crate::compile::compile_each`]).
    pub fn of(compiled: Compiled<DesiredObject>) -> Desired {
        Desired {
            catalog: compiled.catalog,
            objects: compiled.objects,
            status: compiled.status.iter().map(|s| s.to_json()).collect(),
            standalone: compiled.standalone,
            contexts: compiled.contexts,
            object_store: compiled.object_store,
        }
    }

    /// Reads an output directory written by `pitrix compile`, checking every file against the
    /// digest its inventory recorded.
    pub fn from_output_dir(dir: &Path) -> Result<Desired, Error> {
        let inventory_path = dir.join(INVENTORY_FILE);
        let text = std::fs::read_to_string(&inventory_path).map_err(|e| {
            Error::InvalidValue(format!("cannot read {}: {e}", inventory_path.display()))
        })?;
        let inventory: Inventory = serde_json::from_str(&text).map_err(|e| {
            Error::Corrupt(format!(
                "{} is not a pitrix inventory: {e}",
                inventory_path.display()
            ))
        })?;
        // The inventory names the files; it is read like a catalog: nothing outside the
        // output directory (an absolute path, `..`, a link out) is ever opened.
        let read = |path: &str| -> Result<(PathBuf, String), Error> {
            let file = dir.join(path);
            let text =
                crate::confine::read_to_string(dir, Path::new(path)).map_err(|e| match e {
                    crate::confine::ReadError::Escape => Error::Corrupt(format!(
                        "{INVENTORY_FILE} names `{path}`, which is outside {}",
                        dir.display()
                    )),
                    crate::confine::ReadError::Io(e) => {
                        Error::InvalidValue(format!("cannot read {}: {e}", file.display()))
                    }
                })?;
            Ok((file, text))
        };
        // Reading and checking thousands of files (packages are most of the bytes) is the bulk
        // of a no-op apply's own work: spread over the cores, and parsed only when needed.
        let objects = inventory
            .objects
            .par_iter()
            .map(|e| {
                let kind = KindInfo::of(&e.kind).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "{INVENTORY_FILE} lists an unknown kind `{}`",
                        e.kind
                    ))
                })?;
                let (file, text) = read(&e.path)?;
                let listed = ObjectRef {
                    api_version: e.api_version.clone(),
                    kind: e.kind.clone(),
                    namespace: e.namespace.clone(),
                    name: e.name.clone(),
                    cluster: e.cluster.clone(),
                };
                // The file as written (its bytes' digest) needs no parse now; an output from
                // before file digests is parsed and checked at once.
                let Some(file_digest) = &e.file_digest else {
                    let body = parse_checked(&file, &text, &e.digest)?;
                    if ObjectRef::of_json(&body) != listed {
                        return Err(another_object(&listed, &file));
                    }
                    return Ok(DesiredObject::new(listed, kind, body, e.digest.clone()));
                };
                if emit::file_digest(text.as_bytes()) != *file_digest {
                    return Err(edited(&file));
                }
                Ok(DesiredObject {
                    r: listed,
                    kind,
                    digest: e.digest.clone(),
                    body: OnceLock::new(),
                    source: Some(Source::Output { file, text }),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let status = inventory
            .status
            .iter()
            .map(|e| read(&e.path).and_then(|(file, text)| parse_checked(&file, &text, &e.digest)))
            .collect::<Result<_, _>>()?;
        Ok(Desired {
            catalog: inventory.catalog,
            objects,
            status,
            standalone: inventory.standalone,
            contexts: inventory.contexts,
            object_store: inventory.object_store,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::{Inventory, InventoryEntry};
    use serde_json::json;

    /// An output directory holding one Namespace per name, as compile writes it; `old`
    /// writes the inventory of a pitrix from before file digests.
    fn output(names: &[&str], old: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut inventory = Inventory::new("c");
        for name in names {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            let path = format!("objects/namespaces/{name}.yaml");
            let text = serde_yaml::to_string(&body).unwrap();
            std::fs::create_dir_all(dir.path().join("objects/namespaces")).unwrap();
            std::fs::write(dir.path().join(&path), &text).unwrap();
            let mut entry = InventoryEntry::new(
                ObjectRef::of_json(&body),
                Path::new(&path),
                emit::digest(&body),
                text.as_bytes(),
            );
            if old {
                entry.file_digest = None;
            }
            inventory.objects.push(entry);
        }
        std::fs::write(dir.path().join(INVENTORY_FILE), inventory.to_bytes()).unwrap();
        dir
    }

    fn inventory(dir: &Path) -> Inventory {
        serde_json::from_slice(&std::fs::read(dir.join(INVENTORY_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn bodies_are_parsed_when_asked_for_and_checked() {
        let dir = output(&["a", "b"], false);
        let desired = Desired::from_output_dir(dir.path()).unwrap();
        let names: Vec<&str> = desired.objects.iter().map(|o| o.r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(desired.objects[1].body().unwrap()["metadata"]["name"], "b");
    }

    #[test]
    fn a_file_changed_in_any_byte_is_refused_up_front() {
        let dir = output(&["a"], false);
        let file = dir.path().join("objects/namespaces/a.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        // The same object, written differently.
        std::fs::write(&file, format!("# reviewed\n{text}")).unwrap();
        let err = Desired::from_output_dir(dir.path()).unwrap_err();
        assert_eq!(err.metric_label(), "corrupt");
        let err = err.to_string();
        assert!(err.contains("does not match the digest"), "{err}");
    }

    #[test]
    fn an_entry_naming_another_object_s_file_is_refused_when_its_body_is_needed() {
        let dir = output(&["a", "b"], false);
        let mut inv = inventory(dir.path());
        // Entry `a` now points at b's file, with b's digests: every digest matches its file.
        let b = inv.objects[1].clone();
        inv.objects[0].path = b.path.clone();
        inv.objects[0].digest = b.digest.clone();
        inv.objects[0].file_digest = b.file_digest.clone();
        std::fs::write(dir.path().join(INVENTORY_FILE), inv.to_bytes()).unwrap();
        let desired = Desired::from_output_dir(dir.path()).unwrap();
        let err = desired.objects[0].body().unwrap_err();
        assert_eq!(err.metric_label(), "corrupt");
        let err = err.to_string();
        assert!(err.contains("holds another object"), "{err}");
    }

    #[test]
    fn an_inventory_naming_a_file_outside_the_output_is_refused_unread() {
        for outside in ["/etc/hostname", "../outside.yaml", "link/outside.yaml"] {
            let dir = output(&["a"], false);
            let parent = dir.path().parent().unwrap().to_path_buf();
            std::os::unix::fs::symlink(&parent, dir.path().join("link")).ok();
            let mut inv = inventory(dir.path());
            inv.objects[0].path = outside.into();
            std::fs::write(dir.path().join(INVENTORY_FILE), inv.to_bytes()).unwrap();
            let err = Desired::from_output_dir(dir.path())
                .err()
                .unwrap_or_else(|| panic!("{outside} was read"))
                .to_string();
            assert!(err.contains("which is outside"), "{outside}: {err}");
        }
    }

    #[test]
    fn an_output_from_before_file_digests_is_parsed_and_checked_at_once() {
        let dir = output(&["a"], true);
        assert!(inventory(dir.path()).objects[0].file_digest.is_none());
        let desired = Desired::from_output_dir(dir.path()).unwrap();
        assert_eq!(desired.objects[0].body().unwrap()["metadata"]["name"], "a");

        let file = dir.path().join("objects/namespaces/a.yaml");
        let text = std::fs::read_to_string(&file).unwrap().replace("a", "z");
        std::fs::write(&file, text).unwrap();
        let err = Desired::from_output_dir(dir.path()).unwrap_err();
        assert_eq!(err.metric_label(), "corrupt");
        let err = err.to_string();
        assert!(err.contains("does not match the digest"), "{err}");
    }
}
