//! `pitrix.toml`: catalog-wide settings.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::objects::labels;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "pitrix.toml")]
pub struct Settings {
    pub catalog: CatalogSettings,
    /// Template variables for values files.
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Environments selected with `--env`.
    #[serde(default)]
    pub env: BTreeMap<String, EnvSettings>,
    /// Clusters named by `releases/<cluster>/`, mapped to kubeconfig contexts.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterSettings>,
}

impl Settings {
    pub fn workspace(&self) -> &str {
        self.catalog
            .workspace
            .as_ref()
            .map(|w| w.get_ref().as_str())
            .unwrap_or(labels::DEFAULT_WORKSPACE)
    }

    pub fn storage_namespace(&self) -> &str {
        self.catalog
            .storage_namespace
            .as_ref()
            .map(|n| n.get_ref().as_str())
            .unwrap_or(labels::STORAGE_NAMESPACE)
    }

    pub fn target(&self) -> Target {
        self.catalog.target.unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogSettings {
    /// The catalog's name, a DNS-1123 label; labels every object pitrix manages.
    #[schemars(with = "String")]
    pub name: toml::Spanned<String>,
    /// Default workspace of everything (default `system-workspace`).
    #[schemars(with = "Option<String>")]
    pub workspace: Option<toml::Spanned<String>>,
    /// `kubesphere` (KubeSphere's controllers install releases) or `standalone`.
    pub target: Option<Target>,
    /// Environment variables values templates may read as `env.<NAME>`; no others.
    #[serde(default)]
    pub allow_env: Vec<String>,
    /// `standalone`: the Helm executor image (default KubeSphere's `kubesphere/kubectl:v1.27.16`).
    pub executor_image: Option<String>,
    /// Argo CD / Flux: the image of the status Job that runs `pitrix write-status` (default
    /// pitrix's release image, `ghcr.io/<owner>/pitrix:<version>`); a tag or a digest.
    #[schemars(with = "Option<String>")]
    pub status_image: Option<toml::Spanned<String>>,
    /// `standalone`: the Secret (key `config`) in each release namespace holding the kubeconfig
    /// the executor's Helm uses (default `pitrix-executor-kubeconfig`). Never in the output.
    pub executor_kubeconfig_secret: Option<String>,
    /// Namespace of the chart-storage ConfigMaps (default `extension-openpitrix`).
    #[schemars(with = "Option<String>")]
    pub storage_namespace: Option<toml::Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    #[default]
    Kubesphere,
    Standalone,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    #[schemars(with = "Option<String>")]
    pub workspace: Option<toml::Spanned<String>>,
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Cluster mapping of this environment, over `[clusters]`.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterSettings>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// kubeconfig context of the cluster.
    pub context: Option<String>,
}
