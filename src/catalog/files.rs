//! The catalog's YAML files, exactly as users write them. Unknown keys are errors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::objects::ReviewState;
use crate::yaml::Spanned;

/// `categories/<name>.yaml`: a Category of the App Store.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pitrix category")]
pub struct CategoryFile {
    /// Name shown in the console.
    pub display_name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// An icon name from the KubeSphere console's icon set (e.g. `database`).
    pub icon: Option<Spanned<String>>,
}

/// `repos/<name>.yaml`: an external Helm repository that KubeSphere syncs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pitrix repo")]
pub struct RepoFile {
    /// Base URL: `https://…` (index.yaml is appended) or `oci://host/path`.
    pub url: Spanned<String>,
    /// How often KubeSphere syncs: a duration like `1h`, `30m`, `90s`, or `0` for never.
    pub sync_period: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// Workspace label of the Repo (default: the catalog's).
    pub workspace: Option<Spanned<String>>,
    /// Basic-auth credentials, named by environment variable and read at apply time.
    pub credentials: Option<Spanned<Credentials>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Credentials {
    /// Environment variable holding the user name.
    pub username_env: Option<Spanned<String>>,
    /// Environment variable holding the password.
    pub password_env: Option<Spanned<String>>,
}

/// Helm charts or plain manifests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppType {
    #[default]
    Helm,
    Yaml,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Helm => "helm",
            AppType::Yaml => "yaml",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintainer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub url: Option<String>,
}

/// `apps/<app>/app.yaml`: an app template and the desired review state of its versions.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pitrix app")]
pub struct AppFile {
    pub display_name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// One-line summary on the app card.
    pub abstraction: Option<Spanned<String>>,
    /// Home page URL.
    pub home: Option<Spanned<String>>,
    /// A category of the catalog (default: `kubesphere-app-uncategorized`).
    pub category: Option<Spanned<String>>,
    /// Icon file in the app directory: png, jpg or svg, ≤ 512 KiB, ≤ 512×512.
    pub icon: Option<Spanned<String>>,
    /// Screenshot files in the app directory.
    #[serde(default)]
    pub screenshots: Vec<Spanned<String>>,
    /// `helm` (chart versions) or `yaml` (plain manifests).
    #[serde(rename = "type")]
    pub app_type: Option<Spanned<AppType>>,
    #[serde(default)]
    pub maintainers: Vec<Maintainer>,
    /// Workspace of the app (default: the catalog's).
    pub workspace: Option<Spanned<String>>,
    /// Desired state of the app (default `active`).
    pub state: Option<Spanned<ReviewState>>,
    /// Desired review state per version (a version not listed is `active`).
    #[serde(default)]
    pub versions: BTreeMap<Spanned<String>, VersionIntent>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionIntent {
    pub state: Option<Spanned<ReviewState>>,
    /// Review note, shown with the version.
    pub message: Option<Spanned<String>>,
}

/// `releases/<cluster>/<namespace>/<release>.yaml`: a desired ApplicationRelease.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pitrix release")]
pub struct ReleaseFile {
    /// A catalog app, or `<repo>/<chart>` of a synced repo.
    pub app: Spanned<String>,
    /// The version to install; it must be active.
    pub version: Spanned<String>,
    /// Workspace label (default: the catalog's).
    pub workspace: Option<Spanned<String>>,
    /// Helm values, merged over the values files.
    pub values: Option<Spanned<serde_json::Map<String, serde_json::Value>>>,
    /// Values files, relative to the catalog root, merged in order.
    #[serde(default)]
    pub values_files: Vec<Spanned<String>>,
    /// User Helm impersonates (`--kube-as-user`); none means no impersonation.
    pub creator: Option<Spanned<String>>,
}

impl ReleaseFile {
    /// The creator, empty when none is named.
    pub fn creator(&self) -> &str {
        self.creator.as_ref().map_or("", |c| c.value.as_str())
    }
}
