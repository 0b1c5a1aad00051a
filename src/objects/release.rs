//! `ApplicationRelease` (`applicationreleases.application.kubesphere.io`, reference §1.4, §5):
//! an installed app. Cluster-scoped; the target cluster and namespace come only from the
//! [`CLUSTER`](super::labels::CLUSTER) and [`NAMESPACE`](super::labels::NAMESPACE) labels, and
//! `metadata.name` is the Helm release name.

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
use super::states::{ParseStateError, ReleaseState};

/// ApplicationReleaseSpec is the desired state of an ApplicationRelease.
//
// Field order follows KubeSphere's Go type, so the JSON encoding has the key order that
// KubeSphere hashes into `status.specHash`. Every `printcolumn` repeats `type_ = "string"`, which
// clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "application.kubesphere.io",
    version = "v2",
    kind = "ApplicationRelease",
    plural = "applicationreleases",
    singular = "applicationrelease",
    shortname = "apprls",
    status = "ApplicationReleaseStatus",
    schema = "manual",
    derive = "PartialEq",
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
    printcolumn(
        name = "appversion",
        type_ = "string",
        json_path = ".metadata.labels.application\\.kubesphere\\.io/appversion-id"
    ),
    printcolumn(name = "appType", type_ = "string", json_path = ".spec.appType"),
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".metadata.labels.kubesphere\\.io/cluster"
    ),
    printcolumn(
        name = "Namespace",
        type_ = "string",
        json_path = ".metadata.labels.kubesphere\\.io/namespace"
    ),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct ApplicationReleaseSpec {
    /// Name of the Application.
    #[serde(rename = "appID")]
    pub app_id: String,

    /// Name of the ApplicationVersion; it must be `active` for the webhook to admit the release.
    #[serde(rename = "appVersionID")]
    pub app_version_id: String,

    /// Raw bytes, base64 on the wire: a `values.yaml` for Helm apps, the whole manifest for YAML apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::bytes")]
    pub values: Option<ByteString>,

    /// `helm` selects the Helm Job path; anything else the YAML installer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,

    /// Display icon; part of the spec hash, so changing it upgrades the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
}

/// ApplicationReleaseStatus is written by the release controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct ApplicationReleaseStatus {
    /// Release state, for example `creating`, `active` or `failed`. Required whenever status is written.
    pub state: String,

    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// MD5 of the JSON spec the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,

    /// Name of the last install or upgrade Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_job_name: Option<String>,

    /// Name of the uninstall Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall_job_name: Option<String>,

    /// When the controller last wrote this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub last_update: Option<Time>,

    /// Live resources, filled only in REST responses; never persisted by the controller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::bytes_list")]
    pub real_time_resources: Vec<ByteString>,
}

impl ApplicationReleaseStatus {
    /// The state parsed as a [`ReleaseState`]; `None` when empty.
    pub fn release_state(&self) -> Option<Result<ReleaseState, ParseStateError>> {
        (!self.state.is_empty()).then(|| self.state.parse())
    }
}

schema::root_schema!(
    ApplicationRelease,
    ApplicationReleaseSpec,
    ApplicationReleaseStatus,
    "ApplicationRelease is an installed app; its name is the Helm release name."
);
