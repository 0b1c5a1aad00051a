//! Live prerequisites: what KubeSphere needs to exist before it is given the catalog's objects,
//! checked before anything is written. Each missing one would turn into a loop or a dead
//! object on a real KubeSphere (shared/kubesphere/README.md): a Repo in a workspace without a
//! WorkspaceTemplate is deleted by KubeSphere and re-applied forever; a release into a missing
//! namespace goes `failed` and stays failed after the namespace appears; a release on a member
//! cluster without a Cluster object is retried forever with no status.
//!
//! The checks need KubeSphere's tenant API: on a cluster without it (a bare API server, the
//! `standalone` target without KubeSphere) there are no workspaces to check and none is made.

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde_json::Value;

use super::{Clusters, Desired};
use crate::cluster::{describe, is_not_found, retry};
use crate::error::Error;
use crate::objects::labels;

/// A prerequisite that is not there, and how to make it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub what: String,
    pub fix: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} — {}", self.what, self.fix)
    }
}

/// What the catalog needs of the cluster, read off its compiled objects.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Workspace → an object that uses it (for the message).
    pub workspaces: BTreeMap<String, String>,
    /// (namespace, workspace, release) of each release on the host.
    pub namespaces: Vec<(String, String, String)>,
    /// Member cluster → a release on it.
    pub clusters: BTreeMap<String, String>,
}

impl Needs {
    /// `is_host` says whether a catalog cluster name is the host.
    pub fn of(desired: &Desired, is_host: &dyn Fn(&str) -> bool) -> Needs {
        let mut needs = Needs::default();
        // The kinds compile labels with a workspace: the rest (package ConfigMaps, executor
        // Jobs, the storage Namespace) need nothing here, and parsing every package read from
        // an output directory would be most of a no-op apply's work.
        let labelled = |kind: &str| {
            matches!(
                kind,
                "Repo"
                    | "Application"
                    | "ApplicationVersion"
                    | "ApplicationRelease"
                    | "HelmRepo"
                    | "HelmApplication"
                    | "HelmApplicationVersion"
                    | "HelmRelease"
            )
        };
        for o in desired
            .objects
            .iter()
            .filter(|o| o.r.cluster.is_none() && labelled(o.kind.kind))
        {
            let Ok(body) = o.to_applied() else { continue };
            let name = o.r.display_name();
            if let Some(ws) = labels::label(&body, labels::WORKSPACE) {
                needs
                    .workspaces
                    .entry(ws.to_string())
                    .or_insert_with(|| name.clone());
            }
            // 3.x's release controller also fails for good into a missing namespace.
            if !matches!(o.kind.kind, "ApplicationRelease" | "HelmRelease") {
                continue;
            }
            let cluster = labels::label(&body, labels::CLUSTER).unwrap_or(labels::DEFAULT_CLUSTER);
            let namespace =
                labels::label(&body, labels::NAMESPACE).unwrap_or(labels::DEFAULT_NAMESPACE);
            let workspace = labels::label(&body, labels::WORKSPACE).unwrap_or_default();
            if is_host(cluster) {
                needs.namespaces.push((
                    namespace.to_string(),
                    workspace.to_string(),
                    o.r.name.clone(),
                ));
            } else {
                needs
                    .clusters
                    .entry(cluster.to_string())
                    .or_insert_with(|| o.r.name.clone());
            }
        }
        needs
    }
}

/// What the cluster has, as far as the checks look.
#[derive(Debug, Default)]
pub struct Found {
    pub workspaces: BTreeSet<String>,
    /// Namespace → its `kubesphere.io/workspace` label.
    pub namespaces: BTreeMap<String, Option<String>>,
    /// Cluster → whether its Ready condition is True.
    pub clusters: BTreeMap<String, bool>,
}

/// The missing prerequisites: pure, so that each rule is tested without a cluster.
pub fn missing(needs: &Needs, found: &Found) -> Vec<Missing> {
    let mut out = Vec::new();
    for (ws, user) in &needs.workspaces {
        if !found.workspaces.contains(ws) {
            out.push(Missing {
                what: format!("workspace `{ws}` (of {user}) has no WorkspaceTemplate"),
                fix: format!(
                    "create workspace `{ws}` in KubeSphere first, or set `workspace` in the catalog to one that exists (KubeSphere deletes a Repo whose workspace does not exist, and pitrix would apply it again, forever)"
                ),
            });
        }
    }
    let mut seen = BTreeSet::new();
    for (ns, ws, release) in &needs.namespaces {
        if !seen.insert((ns, ws)) {
            continue;
        }
        match found.namespaces.get(ns) {
            None => out.push(Missing {
                what: format!("namespace `{ns}` of release `{release}` does not exist"),
                fix: format!(
                    "create it as a project of workspace `{ws}` (kubectl create namespace {ns} && kubectl label namespace {ns} {}={ws}): a release into a missing namespace fails and stays failed",
                    labels::WORKSPACE
                ),
            }),
            Some(owner) if owner.as_deref() != Some(ws.as_str()) => out.push(Missing {
                what: format!(
                    "namespace `{ns}` of release `{release}` is {}, not in the release's workspace `{ws}`",
                    match owner {
                        Some(o) => format!("in workspace `{o}`"),
                        None => "in no workspace".to_string(),
                    }
                ),
                fix: format!(
                    "file the release under the namespace's workspace, or move the namespace (label {}={ws})",
                    labels::WORKSPACE
                ),
            }),
            Some(_) => {}
        }
    }
    for (cluster, release) in &needs.clusters {
        match found.clusters.get(cluster) {
            None => out.push(Missing {
                what: format!("cluster `{cluster}` of release `{release}` has no Cluster object"),
                fix: format!(
                    "join cluster `{cluster}` to KubeSphere's multi-cluster (or rename releases/{cluster}/ to a member's name): KubeSphere retries such a release forever"
                ),
            }),
            Some(false) => out.push(Missing {
                what: format!("cluster `{cluster}` of release `{release}` is not ready"),
                fix: format!(
                    "see `kubectl get clusters.cluster.kubesphere.io {cluster} -o yaml` for why"
                ),
            }),
            Some(true) => {}
        }
    }
    out
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Whether the API server serves `group/version`.
async fn serves(client: &Client, group_version: &str) -> Result<bool, Error> {
    match client.list_api_group_resources(group_version).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(Error::Cluster(format!(
            "cannot discover {group_version}: {}",
            describe(&e)
        ))),
    }
}

async fn list(client: &Client, r: &ApiResource) -> Result<Vec<DynamicObject>, Error> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), r);
    let params = ListParams::default();
    retry(5, || api.list(&params))
        .await
        .map(|l| l.items)
        .map_err(|e| Error::Cluster(format!("cannot list {}: {}", r.plural, describe(&e))))
}

/// Checks the live prerequisites of `desired` on the host: nothing when the cluster has no
/// KubeSphere tenant API. (A synced-repo release's repo is the catalog's: validation checks it.)
pub async fn check(clusters: &Clusters, desired: &Desired) -> Result<Vec<Missing>, Error> {
    let client = clusters.host();
    if !serves(client, "tenant.kubesphere.io/v1beta1").await? {
        return Ok(Vec::new());
    }
    let needs = Needs::of(desired, &|c| clusters.is_host(c));
    let mut found = Found::default();
    let templates = resource(
        "tenant.kubesphere.io",
        "v1beta1",
        "WorkspaceTemplate",
        "workspacetemplates",
    );
    found.workspaces = list(client, &templates)
        .await?
        .into_iter()
        .filter(|w| w.metadata.deletion_timestamp.is_none())
        .filter_map(|w| w.metadata.name)
        .collect();
    if !needs.namespaces.is_empty() {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let params = ListParams::default();
        let list = retry(5, || namespaces.list_metadata(&params))
            .await
            .map_err(|e| Error::Cluster(format!("cannot list namespaces: {}", describe(&e))))?;
        found.namespaces = list
            .items
            .into_iter()
            .filter_map(|n| {
                let ws = n
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::WORKSPACE))
                    .cloned();
                n.metadata.name.map(|name| (name, ws))
            })
            .collect();
    }
    // Without KubeSphere's multi-cluster API no member cluster is known: each is missing.
    if !needs.clusters.is_empty() && serves(client, "cluster.kubesphere.io/v1alpha1").await? {
        let r = resource("cluster.kubesphere.io", "v1alpha1", "Cluster", "clusters");
        for c in list(client, &r).await? {
            let v = serde_json::to_value(&c).unwrap_or_default();
            let ready = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            if let Some(name) = c.metadata.name {
                found.clusters.insert(name, ready);
            }
        }
    }
    Ok(missing(&needs, &found))
}

/// Why nothing was applied.
pub fn refusal(missing: &[Missing]) -> String {
    let mut text = format!(
        "{} live prerequisite(s) missing; nothing was applied (KubeSphere would turn each into a loop or a dead object):",
        missing.len()
    );
    for m in missing {
        text.push_str(&format!("\n  {m}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> Needs {
        Needs {
            workspaces: [("team-a".to_string(), "Repo/charts".to_string())].into(),
            namespaces: vec![
                ("web".into(), "team-a".into(), "storefront".into()),
                ("web".into(), "team-a".into(), "blog".into()),
                ("db".into(), "team-a".into(), "postgres".into()),
            ],
            clusters: [("edge".to_string(), "edge-web".to_string())].into(),
        }
    }

    #[test]
    fn everything_there_is_nothing_missing() {
        let found = Found {
            workspaces: ["team-a".to_string()].into(),
            namespaces: [
                ("web".to_string(), Some("team-a".to_string())),
                ("db".to_string(), Some("team-a".to_string())),
            ]
            .into(),
            clusters: [("edge".to_string(), true)].into(),
        };
        assert_eq!(missing(&needs(), &found), []);
    }

    #[test]
    fn each_missing_prerequisite_is_named_once_with_its_fix() {
        let found = Found {
            workspaces: BTreeSet::new(),
            namespaces: [("db".to_string(), Some("team-b".to_string()))].into(),
            clusters: [("edge".to_string(), false)].into(),
        };
        let m = missing(&needs(), &found);
        let text: Vec<String> = m.iter().map(|m| m.to_string()).collect();
        assert_eq!(m.len(), 4, "{text:#?}");
        assert!(text[0].contains("workspace `team-a` (of Repo/charts) has no WorkspaceTemplate"));
        assert!(text[1].contains("namespace `web` of release `storefront` does not exist"));
        assert!(text[1].contains("kubectl label namespace web kubesphere.io/workspace=team-a"));
        assert!(text[2].contains("namespace `db` of release `postgres` is in workspace `team-b`"));
        assert!(text[3].contains("cluster `edge` of release `edge-web` is not ready"));
        let no_cluster = Found {
            clusters: BTreeMap::new(),
            ..found
        };
        assert!(
            missing(&needs(), &no_cluster)
                .iter()
                .any(|m| m.what.contains("has no Cluster object"))
        );
    }
}
