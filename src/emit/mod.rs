//! Stage 4, emit: the compiled objects as files — one object per file at a predictable path,
//! an all-in-one stream, a kustomization.yaml for Argo CD and Flux, and an inventory of every
//! object with the digest of its canonical form. Written atomically: all or nothing.

mod inventory;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use crate::compile::{Compiled, Object, StatusIntent};

pub use inventory::{Inventory, InventoryEntry};
pub use write::{WriteError, write_atomic};

pub const INVENTORY_FILE: &str = "inventory.json";
pub const ALL_FILE: &str = "all.yaml";
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

/// The output tree: relative path → bytes, sorted by path.
pub type Files = Vec<(PathBuf, Vec<u8>)>;

/// Where an object's file goes: `objects/<plural>/[<namespace>/]<name>.yaml`, under
/// `clusters/<cluster>/` for a member cluster's executor objects.
pub fn object_path(o: &Object) -> PathBuf {
    let mut p = cluster_dir(o.object_ref().cluster.as_deref())
        .join("objects")
        .join(o.plural());
    if let Some(ns) = o.namespace() {
        p.push(ns);
    }
    p.join(format!("{}.yaml", o.name()))
}

/// The output directory of one cluster's objects: the root for the host, `clusters/<name>/`
/// for a member cluster — each with its own kustomization.yaml and all.yaml, so Argo CD or
/// Flux can point one Application/Kustomization at each cluster.
fn cluster_dir(cluster: Option<&str>) -> PathBuf {
    match cluster {
        Some(c) => PathBuf::from("clusters").join(c),
        None => PathBuf::new(),
    }
}

/// Where a status intent's file goes: `status/<plural>/<name>.yaml`.
pub fn status_path(s: &StatusIntent) -> PathBuf {
    PathBuf::from("status")
        .join(s.plural())
        .join(format!("{}.yaml", s.name))
}

/// `sha256:<hex>` of the canonical form: compact JSON with a fixed key order.
pub fn digest(value: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let hash = Sha256::digest(&bytes);
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn yaml(value: &serde_json::Value) -> Vec<u8> {
    serde_yaml::to_string(value)
        .unwrap_or_default()
        .into_bytes()
}

/// Every file of the output, in path order. Pure: the same compile gives the same bytes.
pub fn render(compiled: &Compiled) -> Files {
    let mut files: Files = Vec::new();
    // Per cluster (None: the host): the all-in-one stream and the kustomization's resources.
    let mut streams: BTreeMap<Option<String>, (String, Vec<String>)> = BTreeMap::new();
    streams.insert(None, Default::default());
    let mut inventory = Inventory::new(&compiled.catalog);
    inventory.standalone = compiled.standalone.clone();
    inventory.environment = compiled.environment.clone();
    inventory.contexts = compiled.contexts.clone();

    for o in &compiled.objects {
        let json = o.to_json();
        let path = object_path(o);
        let text = yaml(&json);
        let r = o.object_ref();
        let dir = cluster_dir(r.cluster.as_deref());
        let (all, resources) = streams.entry(r.cluster.clone()).or_default();
        all.push_str("---\n");
        all.push_str(&String::from_utf8_lossy(&text));
        let relative = path.strip_prefix(&dir).unwrap_or(&path);
        resources.push(relative.to_string_lossy().replace('\\', "/"));
        inventory
            .objects
            .push(InventoryEntry::new(r, &path, digest(&json)));
        files.push((path, text));
    }
    for s in &compiled.status {
        let json = s.to_json();
        let path = status_path(s);
        inventory
            .status
            .push(InventoryEntry::new(s.object_ref(), &path, digest(&json)));
        files.push((path, yaml(&json)));
    }

    for (cluster, (all, resources)) in streams {
        let dir = cluster_dir(cluster.as_deref());
        let kustomization = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        });
        files.push((dir.join(KUSTOMIZATION_FILE), yaml(&kustomization)));
        files.push((dir.join(ALL_FILE), all.into_bytes()));
    }
    files.push((PathBuf::from(INVENTORY_FILE), inventory.to_bytes()));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}
