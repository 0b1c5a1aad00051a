//! `Application` (`applications.application.kubesphere.io`, reference §1.2): an app template,
//! the parent of its ApplicationVersions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
use super::states::{ParseStateError, ReviewState};

/// ApplicationSpec is the desired state of an Application.
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
    kind = "Application",
    plural = "applications",
    singular = "application",
    shortname = "app",
    status = "ApplicationStatus",
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
pub struct ApplicationSpec {
    /// Home page URL (the chart's `home`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_home: Option<String>,

    /// `helm`, `yaml` or `edge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,

    /// An http(s) URL, raw base64 image bytes (no `data:` prefix), or an attachment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,

    /// Short summary; defaults to the chart description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abstraction: Option<String>,

    /// Attachment ids (screenshots) in package storage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,

    /// CRDs the chart ships.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<GroupVersionResource>,
}

/// GroupVersionResource names a CRD shipped by the chart; its JSON keys are capitalised.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "PascalCase")]
#[schemars(transform = schema::structural)]
pub struct GroupVersionResource {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,

    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// Plural resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,

    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,

    /// Parent node in the console's tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_node: Option<String>,
}

/// ApplicationStatus is the review state, written by the REST handlers or a client via `/status`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct ApplicationStatus {
    /// Review state: `draft`, `submitted`, `passed`, `rejected`, `active` or `suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,

    /// Time of the last state change. Required whenever status is written.
    #[schemars(schema_with = "schema::date_time")]
    pub update_time: Time,
}

impl ApplicationStatus {
    /// A status in `state`, changed at `update_time`.
    pub fn new(state: ReviewState, update_time: Time) -> Self {
        Self {
            state: Some(state.as_str().to_owned()),
            update_time,
        }
    }

    /// The state parsed as a [`ReviewState`]; `None` when unset.
    pub fn review_state(&self) -> Option<Result<ReviewState, ParseStateError>> {
        self.state.as_deref().map(str::parse)
    }
}

schema::root_schema!(
    Application,
    ApplicationSpec,
    ApplicationStatus,
    "Application is an App Store app template."
);
