//! The cluster-side inventory, ApplySet-style: one ConfigMap per catalog listing every object
//! pitrix applied for it. Prune compares it with the new catalog; it is widened to the union
//! before anything is applied, so an interrupted apply never leaves an object untracked.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};

use super::client::{describe, is_not_found, retry};
use crate::compile::ObjectRef;
use crate::objects::labels;

/// The first format: JSON in `data` (still read).
const KEY: &str = "inventory.json";
/// The object references, gzip'd JSON in `binaryData`: a ConfigMap holds at most 1 MiB, and a
/// catalog of 5,000 versions has over 10,000 objects.
const GZ_KEY: &str = "inventory.json.gz";
/// Label on inventory ConfigMaps: the catalog they track.
pub const INVENTORY_LABEL: &str = "pitrix.io/inventory";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInventory {
    /// Applied objects (the values are unused: digests live on the objects, see
    /// `DIGEST_ANNOTATION`).
    pub objects: BTreeMap<ObjectKey, String>,
}

/// An ObjectRef as a map key that serialises as a string: `kind/namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey(pub ObjectRef);

impl Serialize for ObjectKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        let mut key = format!(
            "{}|{}|{}|{}",
            r.api_version,
            r.kind,
            r.namespace.as_deref().unwrap_or_default(),
            r.name
        );
        // A member cluster's object carries its cluster; host objects keep the 4-part key.
        if let Some(cluster) = &r.cluster {
            key = format!("{key}|{cluster}");
        }
        s.serialize_str(&key)
    }
}

impl<'de> Deserialize<'de> for ObjectKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parts: Vec<&str> = text.split('|').collect();
        let (api_version, kind, namespace, name, cluster) = match parts[..] {
            [a, k, ns, n] => (a, k, ns, n, None),
            [a, k, ns, n, c] => (a, k, ns, n, Some(c.to_string())),
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "bad inventory key `{text}`"
                )));
            }
        };
        Ok(ObjectKey(ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
            name: name.into(),
            cluster,
        }))
    }
}

pub fn inventory_name(catalog: &str) -> String {
    format!("pitrix-inventory-{catalog}")
}

/// Reads the catalog's inventory; a missing one is empty (first apply).
pub async fn read(
    client: &Client,
    namespace: &str,
    catalog: &str,
) -> Result<ClusterInventory, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = inventory_name(catalog);
    match retry(5, || api.get(&name)).await {
        Ok(cm) => {
            let damaged = |e: String| format!("inventory {namespace}/{name} is damaged: {e}");
            if let Some(gz) = cm.binary_data.as_ref().and_then(|b| b.get(GZ_KEY)) {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::GzDecoder::new(&gz.0[..]),
                    &mut text,
                )
                .map_err(|e| damaged(e.to_string()))?;
                let keys: Vec<ObjectKey> =
                    serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
                return Ok(ClusterInventory {
                    objects: keys.into_iter().map(|k| (k, String::new())).collect(),
                });
            }
            let text = cm
                .data
                .and_then(|d| d.get(KEY).cloned())
                .unwrap_or_default();
            serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))
        }
        Err(e) if is_not_found(&e) => Ok(ClusterInventory::default()),
        Err(e) => Err(format!(
            "cannot read inventory {namespace}/{name}: {}",
            describe(&e)
        )),
    }
}

fn gzip(inventory: &ClusterInventory) -> Vec<u8> {
    let keys: Vec<&ObjectKey> = inventory.objects.keys().collect();
    let json = serde_json::to_vec(&keys).unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = std::io::Write::write_all(&mut gz, &json);
    gz.finish().unwrap_or_default()
}

/// Writes the inventory (creating its namespace if needed).
pub async fn write(
    client: &Client,
    namespace: &str,
    catalog: &str,
    inventory: &ClusterInventory,
) -> Result<(), String> {
    let params = PatchParams::apply("pitrix").force();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    if let Err(e) = retry(5, || ns_api.get(namespace)).await {
        if !is_not_found(&e) {
            return Err(format!(
                "cannot read namespace {namespace}: {}",
                describe(&e)
            ));
        }
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        let patch = Patch::Apply(&ns);
        retry(5, || ns_api.patch(namespace, &params, &patch))
            .await
            .map_err(|e| format!("cannot create namespace {namespace}: {}", describe(&e)))?;
    }
    let name = inventory_name(catalog);
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                INVENTORY_LABEL: catalog,
                labels::MANAGED_BY: labels::MANAGED_BY_PITRIX,
            },
        },
        "binaryData": {GZ_KEY: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, gzip(inventory))},
    });
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let patch = Patch::Apply(&body);
    retry(5, || api.patch(&name, &params, &patch))
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "cannot write inventory {namespace}/{name}: {}",
                describe(&e)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_with_and_without_a_cluster() {
        let host = ObjectRef {
            api_version: "application.kubesphere.io/v2".into(),
            kind: "Application".into(),
            namespace: None,
            name: "nginx".into(),
            cluster: None,
        };
        let member = ObjectRef {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            namespace: Some("web".into()),
            name: "helm-install-web-abc123".into(),
            cluster: Some("edge-eu".into()),
        };
        let keys = vec![ObjectKey(host.clone()), ObjectKey(member.clone())];
        let json = serde_json::to_string(&keys).unwrap();
        assert_eq!(
            json,
            r#"["application.kubesphere.io/v2|Application||nginx","batch/v1|Job|web|helm-install-web-abc123|edge-eu"]"#
        );
        let back: Vec<ObjectKey> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, keys);
        assert!(serde_json::from_str::<ObjectKey>(r#""v1|ConfigMap|x""#).is_err());
    }
}
