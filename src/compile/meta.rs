//! Object metadata every compiled object shares: pitrix's ownership labels.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::objects::labels;

/// Builds metadata carrying the labels that mark an object as this catalog's.
pub struct MetaFactory {
    catalog: String,
}

impl MetaFactory {
    pub fn new(catalog: &str) -> Self {
        MetaFactory {
            catalog: catalog.to_string(),
        }
    }

    pub fn meta(
        &self,
        name: &str,
        namespace: Option<&str>,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> ObjectMeta {
        let mut all: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.insert(labels::MANAGED_BY.into(), labels::MANAGED_BY_PITRIX.into());
        all.insert(labels::PITRIX_CATALOG.into(), self.catalog.clone());
        let annotations: BTreeMap<String, String> = annotations
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: namespace.map(str::to_string),
            labels: Some(all),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        }
    }
}

/// Annotations that keep Argo CD and Flux from pruning an object pitrix only borrows
/// (the storage namespace, KubeSphere's built-in category).
pub const KEEP_ON_PRUNE: &[(&str, &str)] = &[
    // Server-side too, as every object of the output (gitops::argocd_patches).
    (
        "argocd.argoproj.io/sync-options",
        "Prune=false,ServerSideApply=true",
    ),
    ("kustomize.toolkit.fluxcd.io/prune", "disabled"),
    (labels::PITRIX_PRUNE, "disabled"),
];
