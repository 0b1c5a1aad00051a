//! Stage 4, emit: the compiled objects as files — one object per file at a predictable path,
//! an all-in-one stream, a kustomization.yaml for Argo CD and Flux, and an inventory of every
//! object with the digest of its canonical form. Written atomically: all or nothing.

mod inventory;
mod write;

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

/// Where an object's file goes: `objects/<plural>/[<namespace>/]<name>.yaml`.
pub fn object_path(o: &Object) -> PathBuf {
    let mut p = PathBuf::from("objects").join(o.plural());
    if let Some(ns) = o.namespace() {
        p.push(ns);
    }
    p.join(format!("{}.yaml", o.name()))
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
    let mut all = String::new();
    let mut inventory = Inventory::new(&compiled.catalog);
    inventory.standalone = compiled.standalone.clone();
    inventory.environment = compiled.environment.clone();
    let mut resources = Vec::new();

    for o in &compiled.objects {
        let json = o.to_json();
        let path = object_path(o);
        let text = yaml(&json);
        all.push_str("---\n");
        all.push_str(&String::from_utf8_lossy(&text));
        inventory
            .objects
            .push(InventoryEntry::new(o.object_ref(), &path, digest(&json)));
        resources.push(path.to_string_lossy().replace('\\', "/"));
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

    let kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    });
    files.push((PathBuf::from(KUSTOMIZATION_FILE), yaml(&kustomization)));
    files.push((PathBuf::from(ALL_FILE), all.into_bytes()));
    files.push((PathBuf::from(INVENTORY_FILE), inventory.to_bytes()));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}
