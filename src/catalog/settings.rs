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
    /// Where packages and icons are stored: S3 (required by `kubesphere-v3`; optional for
    /// `kubesphere`, whose packages are otherwise kept in ConfigMaps).
    #[serde(default)]
    pub storage: StorageSettings,
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

    /// Whether packages and attachments are kept in S3 rather than ConfigMaps: always on
    /// KubeSphere 3.x; on 4.x when `[storage.s3]` is set (KubeSphere 4 then reads S3 first,
    /// `pkg/simple/client/application/store.go`), which lifts the 1 MiB ConfigMap budget.
    pub fn packages_in_s3(&self) -> bool {
        match self.target() {
            Target::KubesphereV3 => true,
            Target::Kubesphere => self.storage.s3.is_some(),
            Target::Standalone => false,
        }
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
    /// `kubesphere` (KubeSphere 4.x's controllers install releases), `kubesphere-v3`
    /// (KubeSphere 3.x, OpenPitrix v1alpha1, packages in S3) or `standalone`.
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
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// KubeSphere 4.x: `application.kubesphere.io/v2`.
    #[default]
    Kubesphere,
    /// KubeSphere 3.x: `application.kubesphere.io/v1alpha1`, packages and icons in S3.
    #[serde(rename = "kubesphere-v3")]
    KubesphereV3,
    /// KubeSphere 4.x objects, releases installed by pitrix's own executor Jobs.
    Standalone,
}

/// `[storage]` of pitrix.toml.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// An S3-compatible object store (MinIO in a default KubeSphere 3.x install).
    pub s3: Option<S3Settings>,
}

/// `[storage.s3]`: where, never who. The credentials are read from the environment variables
/// named here, at apply time only; they never reach the output.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3Settings {
    /// `http(s)://host[:port]` of the S3 API, as KubeSphere's `openpitrix.s3.endpoint`.
    #[schemars(with = "String")]
    pub endpoint: toml::Spanned<String>,
    /// The bucket, which must exist (KubeSphere's `openpitrix.s3.bucket`).
    #[schemars(with = "String")]
    pub bucket: toml::Spanned<String>,
    /// Signing region (default `us-east-1`, MinIO's).
    pub region: Option<String>,
    /// Path-style addressing, `endpoint/bucket/key` (default true, as MinIO and KubeSphere).
    pub path_style: Option<bool>,
    /// The environment variable holding the access key id (default `PITRIX_S3_ACCESS_KEY_ID`).
    pub access_key_id_env: Option<String>,
    /// The environment variable holding the secret key (default `PITRIX_S3_SECRET_ACCESS_KEY`).
    pub secret_access_key_env: Option<String>,
}

/// `[storage.s3]` as the output carries it (inventory.json), for apply and reconcile: where,
/// and the names of the variables holding the credentials — never the credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub path_style: bool,
    pub access_key_id_env: String,
    pub secret_access_key_env: String,
}

impl S3Settings {
    pub fn location(&self) -> S3Location {
        S3Location {
            endpoint: self.endpoint.get_ref().clone(),
            bucket: self.bucket.get_ref().clone(),
            region: self.region().to_string(),
            path_style: self.path_style(),
            access_key_id_env: self.access_key_id_env().to_string(),
            secret_access_key_env: self.secret_access_key_env().to_string(),
        }
    }

    pub const DEFAULT_REGION: &str = "us-east-1";
    pub const DEFAULT_ACCESS_KEY_ID_ENV: &str = "PITRIX_S3_ACCESS_KEY_ID";
    pub const DEFAULT_SECRET_ACCESS_KEY_ENV: &str = "PITRIX_S3_SECRET_ACCESS_KEY";

    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or(Self::DEFAULT_REGION)
    }

    pub fn path_style(&self) -> bool {
        self.path_style.unwrap_or(true)
    }

    pub fn access_key_id_env(&self) -> &str {
        self.access_key_id_env
            .as_deref()
            .unwrap_or(Self::DEFAULT_ACCESS_KEY_ID_ENV)
    }

    pub fn secret_access_key_env(&self) -> &str {
        self.secret_access_key_env
            .as_deref()
            .unwrap_or(Self::DEFAULT_SECRET_ACCESS_KEY_ENV)
    }
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
