//! The cluster-side inventory, ApplySet-style: one ConfigMap per catalog listing every object
//! pitrix applied for it. Prune compares it with the new catalog; it is widened to the union
//! before anything is applied, so an interrupted apply never leaves an object untracked.
//!
//! Writes are compare-and-set: each carries the resourceVersion its inventory was read at (or
//! creates the ConfigMap only if there is none), the API server refuses a stale one (409), and
//! [`update`] then reads again and merges again — so two writers (two applies, apply beside
//! reconcile) never lose each other's entries.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};

use crate::cluster::ObjectRef;
use crate::cluster::{describe, is_not_found, is_transient, retry};
use crate::error::Error;
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

/// Reads the catalog's inventory and the resourceVersion of its ConfigMap, which a [`write`]
/// of what is derived from it must carry; a missing one is empty, without a version (first
/// apply).
pub async fn read(
    client: &Client,
    namespace: &str,
    catalog: &str,
) -> Result<(ClusterInventory, Option<String>), Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = inventory_name(catalog);
    match retry(5, || api.get(&name)).await {
        Ok(cm) => decode(&cm)
            .map(|inventory| (inventory, cm.metadata.resource_version.clone()))
            .map_err(|e| Error::Corrupt(format!("inventory {namespace}/{name} is damaged: {e}"))),
        Err(e) if is_not_found(&e) => Ok((ClusterInventory::default(), None)),
        Err(e) => Err(Error::Cluster(format!(
            "cannot read inventory {namespace}/{name}: {}",
            describe(&e)
        ))),
    }
}

/// The inventory an inventory ConfigMap holds: gzip'd JSON keys in `binaryData`, else the first
/// format's JSON in `data`; the error says what is wrong with it.
pub fn decode(cm: &ConfigMap) -> Result<ClusterInventory, Error> {
    let damaged = |e: &dyn std::fmt::Display| Error::Corrupt(e.to_string());
    if let Some(gz) = cm.binary_data.as_ref().and_then(|b| b.get(GZ_KEY)) {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.0[..]), &mut text)
            .map_err(|e| damaged(&e))?;
        let keys: Vec<ObjectKey> = serde_json::from_str(&text).map_err(|e| damaged(&e))?;
        return Ok(ClusterInventory {
            objects: keys.into_iter().map(|k| (k, String::new())).collect(),
        });
    }
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(KEY))
        .map(String::as_str)
        .unwrap_or_default();
    serde_json::from_str(text).map_err(|e| damaged(&e))
}

fn gzip(inventory: &ClusterInventory) -> Vec<u8> {
    let keys: Vec<&ObjectKey> = inventory.objects.keys().collect();
    let json = serde_json::to_vec(&keys).unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = std::io::Write::write_all(&mut gz, &json);
    gz.finish().unwrap_or_default()
}

/// Why a [`write`] did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The ConfigMap is no longer at the expected resourceVersion (or exists when it was
    /// expected not to): another writer came first; read again and merge again.
    Conflict(String),
    Failed(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Conflict(m) | WriteError::Failed(m) => f.write_str(m),
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// [`retry`] of the failures that pass, but never of a 409: a refused precondition is the
/// caller's to handle.
async fn retry_unless_conflict<T, F, Fut>(mut op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1.. {
        match op().await {
            Err(e) if attempt < 5 && is_transient(&e) && !is_conflict(&e) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            result => return result,
        }
    }
    unreachable!("the loop returns")
}

/// Writes the inventory if its ConfigMap is still at resourceVersion `expected` (`None`: only
/// if there is none yet, creating its namespace if needed); returns the new resourceVersion.
/// The precondition travels in the apply patch's `metadata.resourceVersion` (a creation is a
/// POST): the API server refuses a stale write with 409 Conflict.
pub async fn write(
    client: &Client,
    namespace: &str,
    catalog: &str,
    inventory: &ClusterInventory,
    expected: Option<&str>,
) -> Result<String, WriteError> {
    let name = inventory_name(catalog);
    let failed = |e: &kube::Error| {
        WriteError::Failed(format!(
            "cannot write inventory {namespace}/{name}: {}",
            describe(e)
        ))
    };
    let conflict = |e: &kube::Error| {
        WriteError::Conflict(format!(
            "inventory {namespace}/{name} was changed by another writer: {}",
            describe(e)
        ))
    };
    let mut body = serde_json::json!({
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
    let Some(expected) = expected else {
        ensure_namespace(client, namespace)
            .await
            .map_err(|e| WriteError::Failed(e.to_string()))?;
        let cm: ConfigMap = serde_json::from_value(body).map_err(|e| {
            WriteError::Failed(format!("cannot build inventory {namespace}/{name}: {e}"))
        })?;
        let params = PostParams {
            field_manager: Some(super::FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        return match retry_unless_conflict(|| api.create(&params, &cm)).await {
            Ok(created) => Ok(created.metadata.resource_version.unwrap_or_default()),
            Err(e) if is_conflict(&e) => Err(conflict(&e)),
            Err(e) => Err(failed(&e)),
        };
    };
    body["metadata"]["resourceVersion"] = expected.into();
    let params = PatchParams::apply(super::FIELD_MANAGER).force();
    let patch = Patch::Apply(&body);
    match retry_unless_conflict(|| api.patch(&name, &params, &patch)).await {
        Ok(written) => Ok(written.metadata.resource_version.unwrap_or_default()),
        // Deleted since it was read: also another writer's doing.
        Err(e) if is_conflict(&e) || is_not_found(&e) => Err(conflict(&e)),
        Err(e) => Err(failed(&e)),
    }
}

async fn ensure_namespace(client: &Client, namespace: &str) -> Result<(), Error> {
    let ns_api: Api<Namespace> = Api::all(client.clone());
    match retry(5, || ns_api.get(namespace)).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => {
            let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
            let params = PatchParams::apply(super::FIELD_MANAGER).force();
            let patch = Patch::Apply(&ns);
            retry(5, || ns_api.patch(namespace, &params, &patch))
                .await
                .map(|_| ())
                .map_err(|e| {
                    Error::Cluster(format!(
                        "cannot create namespace {namespace}: {}",
                        describe(&e)
                    ))
                })
        }
        Err(e) => Err(Error::Cluster(format!(
            "cannot read namespace {namespace}: {}",
            describe(&e)
        ))),
    }
}

/// How many times [`update`] reads, merges and writes before it gives up.
pub const UPDATE_ATTEMPTS: u32 = 8;

/// Writes `merge(the inventory in the cluster)`: from `seen` (an inventory and the version it
/// was read at) first, and whenever another writer came first, from a fresh read — so what that
/// writer recorded is merged, never overwritten. Nothing is written when the merge changes
/// nothing. Returns what the cluster holds afterwards.
pub async fn update(
    client: &Client,
    namespace: &str,
    catalog: &str,
    mut seen: Option<(ClusterInventory, Option<String>)>,
    mut merge: impl FnMut(&ClusterInventory) -> ClusterInventory,
) -> Result<ClusterInventory, Error> {
    let mut attempt = 1;
    loop {
        let (inventory, version) = match seen.take() {
            Some(s) => s,
            None => read(client, namespace, catalog).await?,
        };
        let next = merge(&inventory);
        if next == inventory {
            return Ok(next);
        }
        match write(client, namespace, catalog, &next, version.as_deref()).await {
            Ok(_) => return Ok(next),
            Err(WriteError::Conflict(why)) => {
                if attempt >= UPDATE_ATTEMPTS {
                    return Err(Error::Cluster(format!(
                        "{why} (still after {attempt} attempts)"
                    )));
                }
                // Writers that collided retry at different times.
                let jitter = u64::from(std::process::id() % 7) * 15 + u64::from(attempt) * 25;
                tokio::time::sleep(Duration::from_millis(jitter)).await;
                attempt += 1;
            }
            Err(WriteError::Failed(why)) => return Err(Error::Cluster(why)),
        }
    }
}

/// The inventory before anything is applied: what the cluster tracks, plus every object the
/// catalog holds now.
pub fn widened(live: &ClusterInventory, current: &BTreeMap<ObjectKey, String>) -> ClusterInventory {
    let mut union = live.clone();
    for (k, v) in current {
        union.objects.entry(k.clone()).or_insert_with(|| v.clone());
    }
    union
}

/// The inventory after prune: what the cluster tracks now, without what this apply pruned
/// (deleted, or found gone), plus what it still tracks (the catalog's objects and those it
/// could not prune). An entry another writer added stays.
pub fn settled(
    live: &ClusterInventory,
    pruned: &BTreeSet<ObjectKey>,
    tracked: &BTreeMap<ObjectKey, String>,
) -> ClusterInventory {
    let mut last = live.clone();
    last.objects.retain(|k, _| !pruned.contains(k));
    for (k, v) in tracked {
        last.objects.entry(k.clone()).or_insert_with(|| v.clone());
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey(ObjectRef {
            api_version: "application.kubesphere.io/v2".into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
            cluster: None,
        })
    }

    fn inv(keys: &[&ObjectKey]) -> ClusterInventory {
        ClusterInventory {
            objects: keys.iter().map(|k| ((*k).clone(), String::new())).collect(),
        }
    }

    #[test]
    fn widening_merges_what_another_writer_recorded() {
        let (a, b, c) = (key("App", "a"), key("App", "b"), key("App", "c"));
        // This apply read {a}; meanwhile another writer recorded b; this catalog holds a, c.
        let reread = inv(&[&a, &b]);
        let current = inv(&[&a, &c]).objects;
        assert_eq!(widened(&reread, &current), inv(&[&a, &b, &c]));
        // Nothing new: the same inventory (and so no write).
        assert_eq!(widened(&reread, &inv(&[&b]).objects), reread);
    }

    #[test]
    fn settling_removes_only_what_this_apply_pruned() {
        let (a, b, c, d, e) = (
            key("App", "a"),
            key("App", "b"),
            key("App", "c"),
            key("App", "d"),
            key("App", "e"),
        );
        // Tracked before: a, b, c. The catalog now holds a; b was pruned, c could not be.
        // Another writer recorded d meanwhile.
        let reread = inv(&[&a, &b, &c, &d]);
        let pruned: BTreeSet<ObjectKey> = [b.clone()].into();
        let tracked = inv(&[&a, &c]).objects;
        assert_eq!(settled(&reread, &pruned, &tracked), inv(&[&a, &c, &d]));
        // An entry the re-read lost (another writer pruned it) but this apply still tracks
        // comes back; one this apply pruned does not.
        let reread = inv(&[&b, &e]);
        assert_eq!(settled(&reread, &pruned, &tracked), inv(&[&a, &c, &e]));
        // With no other writer, it is what the catalog holds plus what could not be pruned.
        let previous = inv(&[&a, &b, &c]);
        assert_eq!(settled(&previous, &pruned, &tracked), inv(&[&a, &c]));
    }

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
