//! An ApplicationRelease: the five labels, an annotations map, `appID`/`appVersionID`, and the
//! values as base64 of a values.yaml (Helm apps) or of the full manifest stream (YAML apps).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use serde_json::Value;

use super::Object;
use super::executor::Payload;
use super::meta::MetaFactory;
use crate::catalog::{AppRef, AppType, Catalog, Release};
use crate::error::Error;
use crate::names;
use crate::objects::{self, ApplicationReleaseSpec, labels};
use crate::yaml;

/// Kinds that live outside namespaces; every other manifest is placed in the release's
/// namespace, as KubeSphere's REST API insists (reference §9).
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "PersistentVolume",
    "PriorityClass",
    "RuntimeClass",
    "StorageClass",
    "ValidatingWebhookConfiguration",
];

pub fn compile_release(
    catalog: &Catalog,
    r: &Release,
    meta: &MetaFactory,
) -> Result<Object, Error> {
    let (app_id, app_type, values) = match r.app_ref() {
        AppRef::Repo { repo, chart } => (
            names::repo_app_id(repo, chart),
            AppType::Helm,
            helm_values(r),
        ),
        AppRef::Catalog(name) => {
            let app = catalog.app(name);
            let app_type = app.map(|a| a.app_type()).unwrap_or_default();
            let values = match (app_type, app.and_then(|a| a.version(&r.spec.version.value))) {
                (AppType::Yaml, Some(v)) => {
                    manifests_in_namespace(&v.package.bytes()?, &r.namespace)
                }
                _ => helm_values(r),
            };
            (name.to_string(), app_type, values)
        }
    };
    let version_id = names::version_id(&app_id, &r.spec.version.value);
    let workspace = catalog.workspace_of(&r.spec.workspace);
    let creator = r.spec.creator();

    let mut release = objects::ApplicationRelease::new(
        &r.name,
        ApplicationReleaseSpec {
            app_id: app_id.clone(),
            app_version_id: version_id.clone(),
            values: (!values.is_empty()).then(|| ByteString(values.into_bytes())),
            app_type: Some(app_type.as_str().to_string()),
            icon: None,
        },
    );
    release.metadata = meta.meta(
        &r.name,
        None,
        &[
            (labels::APP_ID, &app_id),
            (labels::APP_VERSION_ID, &version_id),
            (labels::CLUSTER, &r.cluster),
            (labels::NAMESPACE, &r.namespace),
            (labels::WORKSPACE, workspace),
            (labels::APP_TYPE, app_type.as_str()),
        ],
        &[(labels::CREATOR, creator)],
    );
    // KubeSphere's release controller writes into the annotations map; it must exist.
    release
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    Ok(Object::ApplicationRelease(release))
}

fn helm_values(r: &Release) -> String {
    let merged = r.merged_values();
    if merged.is_empty() {
        return String::new();
    }
    serde_yaml::to_string(&merged).unwrap_or_default()
}

/// A YAML app's manifests with every namespaced object placed in `namespace`.
pub(crate) fn manifests_in_namespace(package: &[u8], namespace: &str) -> String {
    let text = String::from_utf8_lossy(package);
    let Ok(docs) = yaml::parse_stream(&text) else {
        return text.into_owned();
    };
    let mut out = String::new();
    for doc in docs.iter().filter(|d| d.value != yaml::Value::Null) {
        let mut object = doc.to_json();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !CLUSTER_SCOPED.contains(&kind)
            && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.insert("namespace".into(), namespace.into());
        }
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(&object).unwrap_or_default());
    }
    out
}

/// The chart a Helm release of a catalog app installs, as stored.
/// What a standalone release's executor works on: the chart the catalog holds (Helm apps) or
/// the manifest stream in the release's values (YAML apps); `None` for a synced repo's chart.
pub fn executor_payload<'a>(
    catalog: &'a Catalog,
    r: &Release,
) -> Result<Option<Payload<'a>>, Error> {
    let AppRef::Catalog(name) = r.app_ref() else {
        return Ok(None);
    };
    let Some((app, version)) = catalog
        .app(name)
        .and_then(|a| Some((a, a.version(&r.spec.version.value)?)))
    else {
        return Ok(None);
    };
    Ok(Some(match app.app_type() {
        AppType::Helm => Payload::Chart(version.package.bytes()?),
        AppType::Yaml => Payload::Manifests,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_get_the_release_namespace() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\n";
        let out = manifests_in_namespace(text.as_bytes(), "web");
        let docs = yaml::parse_stream(&out).unwrap();
        assert_eq!(docs[0].to_json()["metadata"]["namespace"], "web");
        assert!(docs[1].to_json()["metadata"].get("namespace").is_none());
    }
}
