//! Reading the live store: lists only (list rights on the five kinds and on ConfigMaps in the
//! storage namespace), and, where KubeSphere keeps packages in S3, GETs of the uploaded
//! versions' and attachments' objects there.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::render::Live;
use crate::cluster::{KindInfo, api, describe, retry};
use crate::error::Error;
use crate::objects::labels;
use crate::storage::s3::{S3Client, S3Error};

async fn list(client: &Client, kind: &str) -> Result<Vec<Value>, Error> {
    let info = KindInfo::of(kind).ok_or_else(|| Error::Cluster(format!("unknown kind {kind}")))?;
    let api = api(client, info, None);
    let params = ListParams::default();
    let list = retry(5, || api.list(&params)).await.map_err(|e| {
        Error::Cluster(format!(
            "cannot list {}: {} (is KubeSphere's App Store installed, and may this user list it?)",
            info.plural,
            describe(&e)
        ))
    })?;
    Ok(list
        .items
        .iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect())
}

/// Everything export needs from the host cluster, and from KubeSphere's S3 store when it has
/// one (`store`).
pub async fn read(
    client: &Client,
    storage_namespace: &str,
    store: Option<S3Client>,
) -> Result<Live, Error> {
    let mut live = Live {
        categories: list(client, "Category").await?,
        repos: list(client, "Repo").await?,
        apps: list(client, "Application").await?,
        versions: list(client, "ApplicationVersion").await?,
        releases: list(client, "ApplicationRelease").await?,
        ..Live::default()
    };
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), storage_namespace);
    let params = ListParams::default();
    let stored = retry(5, || cms.list(&params)).await.map_err(|e| {
        Error::Cluster(format!(
            "cannot list the ConfigMaps of package storage ({storage_namespace}): {}",
            describe(&e)
        ))
    })?;
    for cm in stored.items {
        let (Some(name), Some(bytes)) = (
            cm.metadata.name,
            cm.binary_data
                .and_then(|mut d| d.remove(labels::STORAGE_KEY)),
        ) else {
            continue;
        };
        live.stored.insert(name, bytes.0);
    }
    if let Some(client) = store {
        let keys = stored_keys(&live);
        let found = tokio::task::spawn_blocking(move || read_s3(&client, keys))
            .await
            .map_err(|e| Error::Runtime(format!("reading S3 stopped: {e}")))??;
        live.stored.extend(found);
    }
    Ok(live)
}

/// The keys KubeSphere keeps in package storage for uploaded apps: each uploaded version's
/// package (under the version ID) and each attachment (under its ID). Synced-repo versions
/// are downloaded from their repo, never stored (`FromRepo` in store.go).
pub fn stored_keys(live: &Live) -> Vec<String> {
    let is_upload = |v: &&Value| labels::label(v, labels::REPO_NAME) == Some(labels::UPLOAD_REPO);
    let name = |v: &Value| {
        v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let versions = live.versions.iter().filter(is_upload).filter_map(name);
    let attachments = live.apps.iter().filter(is_upload).flat_map(|a| {
        a.pointer("/spec/attachments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
    });
    let mut keys: Vec<String> = versions.chain(attachments).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What S3 holds under `keys`, as KubeSphere 4 reads it (`FailOverGet` in
/// `pkg/simple/client/application/store.go`): the object when there is one; a key S3 does
/// not hold is left to the storage ConfigMap of that name; any other failure (unreachable,
/// refused credentials, no such bucket) fails the export, as it fails KubeSphere's read.
fn read_s3(client: &S3Client, keys: Vec<String>) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let failed = |e: S3Error| Error::storage("cannot read KubeSphere's package store", e);
    client.check_bucket().map_err(failed)?;
    let mut found = Vec::new();
    for key in keys {
        match client.get(&key) {
            Ok(Some(bytes)) => found.push((key, bytes)),
            // No such object; or an attachment ID no S3 key can be: the ConfigMap's, if any.
            Ok(None) | Err(S3Error::InvalidKey { .. }) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stored_keys_are_uploaded_versions_and_attachments_only() {
        let upload = |name: &str| {
            json!({"metadata": {"name": name,
                "labels": {"application.kubesphere.io/repo-name": "upload"}}})
        };
        let live = Live {
            apps: vec![
                json!({"metadata": {"name": "demo",
                    "labels": {"application.kubesphere.io/repo-name": "upload"}},
                    "spec": {"attachments": ["shot-att-b", "shot-att-a"]}}),
                json!({"metadata": {"name": "charts-redis",
                    "labels": {"application.kubesphere.io/repo-name": "charts"}},
                    "spec": {"attachments": ["not-stored"]}}),
            ],
            versions: vec![
                upload("demo-1.0.0"),
                upload("demo-0.9.0"),
                json!({"metadata": {"name": "charts-redis-7.0.0",
                    "labels": {"application.kubesphere.io/repo-name": "charts"}}}),
            ],
            ..Live::default()
        };
        assert_eq!(
            stored_keys(&live),
            ["demo-0.9.0", "demo-1.0.0", "shot-att-a", "shot-att-b"]
        );
    }
}
