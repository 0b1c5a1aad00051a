//! inventory.json: every emitted object's identity, file and content digest. Apply and prune
//! read it; `compile --diff` compares two of them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cluster::ObjectRef;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Format version of this file.
    pub version: u32,
    pub catalog: String,
    /// The environment (`--env`) the output was built for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The kubeconfig context of each catalog cluster that names one: where apply sends a
    /// member cluster's executor objects.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, String>,
    /// Objects, in apply order.
    pub objects: Vec<InventoryEntry>,
    /// Review states for the status subresource, in the order they are written.
    pub status: Vec<InventoryEntry>,
    /// For the `standalone` target: what apply needs to run the Helm executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standalone: Option<crate::compile::executor::Standalone>,
    /// Where apply uploads the S3 objects (`[storage.s3]`; credential variable names only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<crate::catalog::S3Location>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The catalog cluster of a member cluster's executor object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The file in the output directory.
    pub path: String,
    /// `sha256:<hex>` of the object's canonical JSON.
    pub digest: String,
    /// `sha256:<hex>` of the file's bytes: `apply --from` checks the file without parsing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_digest: Option<String>,
}

impl InventoryEntry {
    pub fn new(r: ObjectRef, path: &Path, digest: String, text: &[u8]) -> Self {
        InventoryEntry {
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
            cluster: r.cluster,
            path: path.to_string_lossy().replace('\\', "/"),
            digest,
            file_digest: Some(super::file_digest(text)),
        }
    }
}

impl Inventory {
    pub fn new(catalog: &str) -> Self {
        Inventory {
            version: 1,
            catalog: catalog.to_string(),
            environment: None,
            contexts: BTreeMap::new(),
            objects: Vec::new(),
            status: Vec::new(),
            standalone: None,
            object_store: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}
