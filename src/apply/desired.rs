//! What apply works from: the compiled objects as JSON in apply order, each with the digest
//! of its canonical form — made from a fresh compile or read back from an output directory
//! (what was reviewed is what is applied).

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::Value;

use crate::compile::executor::Standalone;
use crate::compile::{Compiled, KindInfo, ObjectRef};
use crate::emit::{self, INVENTORY_FILE, Inventory};

#[derive(Debug, Clone)]
pub struct DesiredObject {
    pub r: ObjectRef,
    pub kind: &'static KindInfo,
    pub body: Value,
    /// `sha256:<hex>` of the compiled object, as in inventory.json.
    pub digest: String,
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
}

impl Desired {
    pub fn from_compiled(compiled: &Compiled) -> Desired {
        let objects = compiled
            .objects
            .iter()
            .map(|o| {
                let body = o.to_json();
                DesiredObject {
                    r: o.object_ref(),
                    kind: KindInfo::of(o.kind()).expect("compiled kinds are known"),
                    digest: emit::digest(&body),
                    body,
                }
            })
            .collect();
        Desired {
            catalog: compiled.catalog.clone(),
            objects,
            status: compiled.status.iter().map(|s| s.to_json()).collect(),
            standalone: compiled.standalone.clone(),
            contexts: compiled.contexts.clone(),
        }
    }

    /// Reads an output directory written by `pitrix compile`, checking every file against the
    /// digest its inventory recorded.
    pub fn from_output_dir(dir: &Path) -> Result<Desired, String> {
        let inventory_path = dir.join(INVENTORY_FILE);
        let text = std::fs::read_to_string(&inventory_path)
            .map_err(|e| format!("cannot read {}: {e}", inventory_path.display()))?;
        let inventory: Inventory = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a pitrix inventory: {e}",
                inventory_path.display()
            )
        })?;
        let read = |path: &str, digest: &str| -> Result<Value, String> {
            let file = dir.join(path);
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let not_yaml = |e: serde_yaml::Error| format!("{} is not YAML: {e}", file.display());
            let mut body: Value = emit::from_yaml(&text).map_err(not_yaml)?;
            // The fast reading is checked by the digest; the plain one has the last word.
            if emit::digest(&body) != digest {
                body = serde_yaml::from_str(&text).map_err(not_yaml)?;
            }
            if emit::digest(&body) != digest {
                return Err(format!(
                    "{} does not match the digest in {INVENTORY_FILE}: the output was edited after compiling",
                    file.display()
                ));
            }
            Ok(body)
        };
        // Reading, parsing and digest-checking thousands of files (packages are most of the
        // bytes) is the bulk of a no-op apply's own work: spread over the cores, in order.
        let objects = inventory
            .objects
            .par_iter()
            .map(|e| {
                let kind = KindInfo::of(&e.kind).ok_or_else(|| {
                    format!("{INVENTORY_FILE} lists an unknown kind `{}`", e.kind)
                })?;
                let body = read(&e.path, &e.digest)?;
                let r = ObjectRef::of_json(&body);
                let listed = ObjectRef {
                    api_version: e.api_version.clone(),
                    kind: e.kind.clone(),
                    namespace: e.namespace.clone(),
                    name: e.name.clone(),
                    cluster: e.cluster.clone(),
                };
                if r != listed {
                    return Err(format!(
                        "{INVENTORY_FILE} lists {} {} for {}, which holds another object: the output was edited after compiling",
                        e.kind, e.name, e.path
                    ));
                }
                Ok(DesiredObject {
                    r,
                    kind,
                    body,
                    digest: e.digest.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let status = inventory
            .status
            .iter()
            .map(|e| read(&e.path, &e.digest))
            .collect::<Result<_, _>>()?;
        Ok(Desired {
            catalog: inventory.catalog,
            objects,
            status,
            standalone: inventory.standalone,
            contexts: inventory.contexts,
        })
    }
}
