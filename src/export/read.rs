//! Reading the live store: lists only (list rights on the five kinds and on ConfigMaps in the
//! storage namespace).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::render::Live;
use crate::cluster::{KindInfo, api, describe, retry};
use crate::error::Error;
use crate::objects::labels;

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

/// Everything export needs from the host cluster.
pub async fn read(client: &Client, storage_namespace: &str) -> Result<Live, Error> {
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
    Ok(live)
}
