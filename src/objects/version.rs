//! `ApplicationVersion` (`applicationversions.application.kubesphere.io`, reference §1.3):
//! one installable version of an Application.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
use super::states::{ParseStateError, ReviewState};

/// ApplicationVersionSpec is the desired state of an ApplicationVersion.
//
// Field order follows KubeSphere's Go type. Every `printcolumn` repeats `type_ = "string"`, which
// clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "application.kubesphere.io",
    version = "v2",
    kind = "ApplicationVersion",
    plural = "applicationversions",
    singular = "applicationversion",
    shortname = "appver",
    status = "ApplicationVersionStatus",
    schema = "manual",
    derive = "PartialEq",
    printcolumn(
        name = "repo",
        type_ = "string",
        json_path = ".metadata.labels.application\\.kubesphere\\.io/repo-name"
    ),
    printcolumn(
        name = "workspace",
        type_ = "string",
        json_path = ".metadata.labels.kubesphere\\.io/workspace"
    ),
    printcolumn(
        name = "app",
        type_ = "string",
        json_path = ".metadata.labels.application\\.kubesphere\\.io/app-id"
    ),
    printcolumn(name = "appType", type_ = "string", json_path = ".spec.appType"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct ApplicationVersionSpec {
    /// The human version, for example the chart `version`.
    pub version_name: String,

    /// Home page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_home: Option<String>,

    /// Icon: URL, raw base64 image bytes, or an attachment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,

    /// Creation time; KubeSphere's helper resets it on every create or update it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub created: Option<Time>,

    /// Chart digest from `index.yaml`; empty for uploads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,

    /// `helm`, `yaml` or `edge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,

    /// Chart maintainers (singular key, as in KubeSphere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainer: Vec<Maintainer>,

    /// Absolute chart URL (`http(s)://`, `oci://`); set only for repo-synced versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_url: Option<String>,
}

/// Maintainer describes a chart maintainer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct Maintainer {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,

    /// URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// ApplicationVersionStatus is the review state, written by the REST handlers or a client via `/status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct ApplicationVersionStatus {
    /// Review state (`draft` … `active`, `suspended`); only `active` versions can be installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,

    /// Review comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// The reviewer or actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,

    /// Time of the last state change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub updated: Option<Time>,
}

impl ApplicationVersionStatus {
    /// A status in `state`, changed at `updated`.
    pub fn new(state: ReviewState, updated: Time) -> Self {
        Self {
            state: Some(state.as_str().to_owned()),
            updated: Some(updated),
            ..Self::default()
        }
    }

    /// The state parsed as a [`ReviewState`]; `None` when unset.
    pub fn review_state(&self) -> Option<Result<ReviewState, ParseStateError>> {
        self.state.as_deref().map(str::parse)
    }
}

schema::root_schema!(
    ApplicationVersion,
    ApplicationVersionSpec,
    ApplicationVersionStatus,
    "ApplicationVersion is one installable version of an Application."
);
