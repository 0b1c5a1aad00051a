//! What the cluster holds of a catalog: one list call per kind, on the host and on each member
//! cluster. Chart packages are most of the bytes, so an apply lists ConfigMaps by metadata only
//! and fetches the content of just those another writer has touched.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt, TryStreamExt};
use kube::Client;
use kube::api::ListParams;
use serde_json::Value;

use super::{ClusterInventory, Clusters, DIGEST_ANNOTATION, Desired, FIELD_MANAGER};
use crate::cluster::{KINDS, KindInfo, ObjectRef};
use crate::cluster::{api, describe, is_not_found, retry};
use crate::error::Error;
use crate::objects::labels;

/// How much of each object to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Everything (`pitrix diff` shows content).
    Full,
    /// ConfigMaps by metadata where only pitrix has written them (their content is what their
    /// digest annotation says), read from the API server's watch cache as informers read
    /// (Argo CD's and Flux's live state is such a cache): a consistent list reads every
    /// package's bytes out of etcd, most of a no-op apply's cost. Packages are immutable, so
    /// the cache can only lag on one that appeared or vanished in the last moment: a creation
    /// then meets AlreadyExists and applies over it; a vanished one is re-created by the next
    /// apply, or at once by reconcile, whose watch saw it go. Everything else in full, from
    /// etcd.
    Lean,
}

/// The live objects of a catalog, by identity.
#[derive(Debug, Clone, Default)]
pub struct Live {
    objects: BTreeMap<ObjectRef, Value>,
    /// Held by metadata only (see [`Listing::Lean`]).
    metadata_only: BTreeSet<ObjectRef>,
    /// Objects the catalog wants that exist without its mark (see [`scan_foreign`]).
    foreign: BTreeMap<ObjectRef, Foreign>,
}

/// Who has an object that a catalog wants but does not own: one without the catalog's
/// `pitrix.io/catalog` label (made in the console, by kubectl, by another tool) or with
/// another catalog's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// The catalog whose label it carries, if any.
    pub catalog: Option<String>,
    /// Its field managers and how they wrote (`kubectl-client-side-apply (Update)`).
    pub managers: Vec<String>,
}

impl Foreign {
    /// The owner of a live object, from its metadata.
    pub fn of(live: &Value) -> Foreign {
        let catalog = labels::label(live, labels::PITRIX_CATALOG).map(str::to_string);
        let mut managers: Vec<String> = live
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} ({})",
                    e["manager"].as_str().unwrap_or("?"),
                    e["operation"].as_str().unwrap_or("?")
                )
            })
            .collect();
        managers.dedup();
        Foreign { catalog, managers }
    }

    /// Whether `live` belongs to `catalog` (carries its mark).
    pub fn owned_by(live: &Value, catalog: &str) -> bool {
        Foreign::of(live).catalog.as_deref() == Some(catalog)
    }

    /// `catalog `team-b`'s (field managers: pitrix (Apply))`, `made outside pitrix (…)`.
    pub fn describe(&self) -> String {
        let managers = match self.managers.is_empty() {
            true => "no field managers recorded".to_string(),
            false => format!("field managers: {}", self.managers.join(", ")),
        };
        match &self.catalog {
            Some(c) => format!("it belongs to catalog `{c}` ({managers})"),
            None => format!("it was made outside this catalog ({managers})"),
        }
    }
}

impl Live {
    pub fn new() -> Live {
        Live::default()
    }

    pub fn get(&self, r: &ObjectRef) -> Option<&Value> {
        self.objects.get(r)
    }

    pub fn insert(&mut self, r: ObjectRef, v: Value) {
        self.metadata_only.remove(&r);
        self.objects.insert(r, v);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ObjectRef, &Value)> {
        self.objects.iter()
    }

    /// Whether only the metadata of `r` was read.
    pub fn is_metadata_only(&self, r: &ObjectRef) -> bool {
        self.metadata_only.contains(r)
    }

    /// Who has `r`, when it exists without this catalog's mark.
    pub fn foreign(&self, r: &ObjectRef) -> Option<&Foreign> {
        self.foreign.get(r)
    }

    pub fn insert_foreign(&mut self, r: ObjectRef, f: Foreign) {
        self.foreign.insert(r, f);
    }

    fn extend(&mut self, other: Live) {
        self.objects.extend(other.objects);
        self.metadata_only.extend(other.metadata_only);
        self.foreign.extend(other.foreign);
    }
}

/// Finds the objects `desired` wants that exist without the catalog's mark: the listing of
/// [`list_live`] selects by that mark, so it cannot see them, and applying over one would take
/// it over silently. One metadata list (from the watch cache) per kind and namespace that has
/// a wanted object not already listed; nothing at all when every object is listed (a no-op
/// apply).
pub async fn scan_foreign(
    clusters: &Clusters,
    desired: &Desired,
    live: &mut Live,
) -> Result<(), Error> {
    type Scope = (Option<String>, &'static str, Option<String>);
    let mut wanted: BTreeMap<Scope, (&'static KindInfo, BTreeSet<&str>)> = BTreeMap::new();
    let in_cluster = |o: &&super::DesiredObject| !o.kind.write.in_object_store;
    for o in desired
        .objects
        .iter()
        .filter(in_cluster)
        .filter(|o| live.get(&o.r).is_none())
    {
        wanted
            .entry((o.r.cluster.clone(), o.kind.kind, o.r.namespace.clone()))
            .or_insert_with(|| (o.kind, BTreeSet::new()))
            .1
            .insert(o.r.name.as_str());
    }
    let cached = ListParams {
        resource_version: Some("0".into()),
        ..ListParams::default()
    };
    for ((cluster, _, namespace), (kind, names)) in wanted {
        let client = clusters.client(cluster.as_deref()).await?;
        let list_api = api(&client, kind, namespace.as_deref());
        let list = retry(5, || list_api.list_metadata(&cached))
            .await
            .map_err(|e| {
                Error::Cluster(format!("cannot list {}: {}", kind.plural, describe(&e)))
            })?;
        for item in list.items {
            if !item
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| names.contains(n))
            {
                continue;
            }
            let v = serde_json::json!({
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "metadata": item.metadata,
            });
            if !Foreign::owned_by(&v, &desired.catalog) {
                let mut r = ObjectRef::of_json(&v);
                r.cluster = cluster.clone();
                live.insert_foreign(r, Foreign::of(&v));
            }
        }
    }
    Ok(())
}

/// Whether `live` is exactly what pitrix applied from the compiled object with `digest`: it
/// carries that digest and no writer but pitrix (its server-side apply, or its creation of a
/// package or Job) has touched it (any edit, patch or replace adds its manager to
/// managedFields).
pub fn applied_as_is(live: &Value, digest: &str) -> bool {
    let annotation = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DIGEST_ANNOTATION))
        .and_then(Value::as_str);
    annotation == Some(digest) && only_pitrix_wrote(live)
}

fn only_pitrix_wrote(live: &Value) -> bool {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            !entries.is_empty() && entries.iter().all(|e| e["manager"] == FIELD_MANAGER)
        })
}

/// The member clusters the objects tracked before and the objects wanted now are in.
pub fn member_clusters(previous: &ClusterInventory, desired: &Desired) -> BTreeSet<String> {
    previous
        .objects
        .keys()
        .map(|k| &k.0)
        .chain(desired.objects.iter().map(|o| &o.r))
        .filter_map(|r| r.cluster.clone())
        .collect()
}

/// The kinds a catalog's live objects can be of: its target's (KubeSphere 3.x's when it
/// compiles to them, else 4.x's), and any kind the inventory tracks from before. Not every
/// kind pitrix knows: a cluster of one KubeSphere has no CRDs of the other, and the
/// controller's RBAC (`deploy-manifests`) grants its target's kinds only.
pub fn kinds_of(desired: &Desired, previous: &ClusterInventory) -> Vec<&'static KindInfo> {
    let v3 = |k: &KindInfo| k.api_version == crate::objects::v1alpha1::API_VERSION;
    let target_v3 = desired.objects.iter().any(|o| v3(o.kind));
    KINDS
        .iter()
        .filter(|k| v3(k) == target_v3 || previous.objects.keys().any(|key| key.0.kind == k.kind))
        .collect()
}

/// The live objects of a catalog, of `kinds`, on the host and on every member cluster named
/// in `members` (where only executor kinds live); namespaced kinds only in the
/// `(kind, namespace)` pairs given, if any.
pub async fn list_live(
    clusters: &Clusters,
    catalog: &str,
    kinds: &[&'static KindInfo],
    namespaces: Option<&[(String, String)]>,
    members: &BTreeSet<String>,
    listing: Listing,
) -> Result<Live, Error> {
    let mut live = list_in(
        clusters.host(),
        catalog,
        namespaces,
        kinds.iter().copied(),
        listing,
    )
    .await?;
    for cluster in members.iter().filter(|c| !clusters.is_host(c)) {
        let client = clusters.client(Some(cluster)).await?;
        // What a member cluster holds: the executor Jobs and their ConfigMaps.
        let executor_kinds = KINDS
            .iter()
            .filter(|k| matches!(k.kind, "ConfigMap" | "Job"));
        let found = list_in(&client, catalog, namespaces, executor_kinds, listing)
            .await
            .map_err(|e| Error::Cluster(format!("cluster `{cluster}`: {e}")))?;
        live.extend(found);
    }
    Ok(live)
}

/// [`list_live`] on one cluster.
async fn list_in(
    client: &Client,
    catalog: &str,
    namespaces: Option<&[(String, String)]>,
    kinds: impl Iterator<Item = &'static KindInfo>,
    listing: Listing,
) -> Result<Live, Error> {
    let selector = format!("{}={catalog}", labels::PITRIX_CATALOG);
    let params = ListParams::default().labels(&selector);
    let mut live = Live::new();
    for kind in kinds.filter(|k| !k.write.in_object_store) {
        let scopes: Vec<Option<&str>> = match namespaces {
            Some(pairs) if kind.namespaced => pairs
                .iter()
                .filter(|(k, _)| k == kind.kind)
                .map(|(_, n)| Some(n.as_str()))
                .collect(),
            _ => vec![None],
        };
        let cannot = |e: kube::Error| {
            Error::Cluster(format!("cannot list {}: {}", kind.plural, describe(&e)))
        };
        // Lists leave apiVersion and kind out of their items.
        let typed = |mut v: Value| {
            v["apiVersion"] = kind.api_version.into();
            v["kind"] = kind.kind.into();
            v
        };
        for scope in scopes {
            let list_api = api(client, kind, scope);
            if listing == Listing::Lean && kind.kind == "ConfigMap" {
                // resourceVersion=0: any version, from the cache.
                let cached = ListParams {
                    resource_version: Some("0".into()),
                    ..params.clone()
                };
                let list = retry(5, || list_api.list_metadata(&cached))
                    .await
                    .map_err(cannot)?;
                let mut touched = Vec::new();
                for item in list.items {
                    let v = typed(serde_json::json!({ "metadata": item.metadata }));
                    let r = ObjectRef::of_json(&v);
                    if only_pitrix_wrote(&v) {
                        live.metadata_only.insert(r.clone());
                        live.objects.insert(r, v);
                    } else {
                        touched.push(r);
                    }
                }
                // Another writer touched these: their content is needed.
                let full: Vec<(ObjectRef, Value)> = stream::iter(touched)
                    .map(|r| {
                        let api = api(client, kind, r.namespace.as_deref());
                        async move {
                            let o = retry(5, || api.get(&r.name)).await?;
                            Ok::<_, kube::Error>((r, serde_json::to_value(&o).unwrap_or_default()))
                        }
                    })
                    .buffer_unordered(16)
                    .try_collect()
                    .await
                    .map_err(cannot)?;
                for (r, v) in full {
                    live.objects.insert(r, typed(v));
                }
                continue;
            }
            let list = match retry(5, || list_api.list(&params)).await {
                Ok(list) => list,
                // The kinds of the other KubeSphere version: no CRD, so no objects of them.
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(cannot(e)),
            };
            for item in list.items {
                let v = typed(serde_json::to_value(&item).unwrap_or_default());
                live.objects.insert(ObjectRef::of_json(&v), v);
            }
        }
    }
    Ok(live)
}
