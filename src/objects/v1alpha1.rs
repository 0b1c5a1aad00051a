//! Typed KubeSphere 3.x App Store objects (`application.kubesphere.io/v1alpha1`,
//! docs/kubesphere-v3.md §1), the `kubesphere-v3` target's output.
//!
//! All five kinds are cluster-scoped with a status subresource; each object's true name is its
//! `spec.name`, `metadata.name` an id. Their CRDs are KubeSphere's own (`config/ks-core/crds/`),
//! so no schema is generated here. Field order follows KubeSphere's Go types.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// `apiVersion` of every KubeSphere 3.x App Store object.
pub const API_VERSION: &str = "application.kubesphere.io/v1alpha1";

/// Label on versions turned active, the store copy and releases of uploaded apps (§2).
pub const REPO_ID: &str = "application.kubesphere.io/repo-id";
/// [`REPO_ID`] of the App Store: releases of it fetch their chart from S3 (§6.2).
pub const STORE_REPO: &str = "repo-helm";
/// Label on HelmApplication: the HelmCategory's `metadata.name` (§2, §8).
pub const APP_CATEGORY_ID: &str = "application.kubesphere.io/app-category-id";
/// Label on HelmRelease: the HelmApplicationVersion's name (§2).
pub const APP_VERSION_ID: &str = "application.kubesphere.io/app-version-id";
/// KubeSphere's own category for apps without one; its controller creates it (§8).
pub const UNCATEGORIZED: &str = "ctg-uncategorized";
/// The suffix of the App Store copy the app controller makes of a released app (§5.2).
pub const STORE_SUFFIX: &str = "-store";

/// HelmCategory: a category of the App Store (§1.4).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[kube(
    group = "application.kubesphere.io",
    version = "v1alpha1",
    kind = "HelmCategory",
    plural = "helmcategories",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HelmCategorySpec {
    /// The category's name, unique across categories.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// HelmRepo: a Helm repository KubeSphere syncs into its own `status.data` (§1.1, §7).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[kube(
    group = "application.kubesphere.io",
    version = "v1alpha1",
    kind = "HelmRepo",
    plural = "helmrepos",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepoSpec {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<HelmRepoCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seconds between syncs: 0 never re-syncs; KubeSphere raises others to at least 180.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_period: Option<i64>,
    /// The sync trigger: a sync runs when it differs from `status.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// HTTP basic credentials of a HelmRepo, filled in by the applier from the environment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepoCredential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// HelmApplication: an uploaded app (§1.2). Its state is derived from its versions.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[kube(
    group = "application.kubesphere.io",
    version = "v1alpha1",
    kind = "HelmApplication",
    plural = "helmapplications",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HelmApplicationSpec {
    /// The app's name, unique in its workspace.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abstraction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_home: Option<String>,
    /// An http(s) URL, or an attachment id: the S3 key of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Screenshots: attachment ids (S3 keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

/// HelmApplicationVersion: one chart version of an app; its package is the S3 object
/// `<workspace>/<metadata.name>` (§1.3, §4).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[kube(
    group = "application.kubesphere.io",
    version = "v1alpha1",
    kind = "HelmApplicationVersion",
    plural = "helmapplicationversions",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HelmApplicationVersionSpec {
    /// Chart.yaml's metadata, inlined.
    #[serde(flatten)]
    pub metadata: ChartMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `sha256:` of the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The Chart.yaml fields KubeSphere copies into a version (`spec.name` is the chart's name,
/// which the release controller gives Helm).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChartMetadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<ChartMaintainer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub chart_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ChartMaintainer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// HelmRelease: a Helm release ks-controller-manager installs itself (§1.5, §6). The target
/// namespace and cluster are labels; only a changed `spec.version` upgrades.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[kube(
    group = "application.kubesphere.io",
    version = "v1alpha1",
    kind = "HelmRelease",
    plural = "helmreleases",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseSpec {
    /// The Helm release name.
    pub name: String,
    /// The chart's name (the version's `spec.name`).
    pub chart_name: String,
    pub chart_version: String,
    /// Base64 of the values.yaml text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_app_ver: Option<String>,
    /// The upgrade trigger, which KubeSphere compares with `status.version`.
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_ver_id: Option<String>,
    /// [`STORE_REPO`] (or empty): the chart comes from S3; otherwise a HelmRepo's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
