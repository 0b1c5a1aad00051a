//! `Repo` (`repos.application.kubesphere.io`, reference §1.1, §7): a Helm or OCI chart
//! repository that the repo controller syncs into Applications and ApplicationVersions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// RepoSpec is the desired state of a Repo.
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
    kind = "Repo",
    plural = "repos",
    singular = "repo",
    shortname = "repo",
    status = "RepoStatus",
    schema = "manual",
    derive = "PartialEq",
    printcolumn(
        name = "Workspace",
        type_ = "string",
        json_path = ".metadata.labels.kubesphere\\.io/workspace"
    ),
    printcolumn(name = "url", type_ = "string", json_path = ".spec.url"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct RepoSpec {
    /// Repository base URL: `http(s)://…` (the controller appends `index.yaml`) or `oci://host/path`.
    pub url: String,

    /// Credentials for the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<RepoCredential>,

    /// Free text; the REST handler cuts it to 512 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Seconds between automatic syncs; 0 disables them. Always serialised: the CRD requires the key.
    #[schemars(schema_with = "schema::integer")]
    pub sync_period: i64,
}

/// RepoCredential is what the repo controller uses to reach the repository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct RepoCredential {
    /// Basic-auth user; sent only when the password is set too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,

    /// Basic-auth password; sent only when the username is set too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,

    /// Path, inside the ks-controller-manager pod, of the TLS client certificate file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,

    /// Path, inside the ks-controller-manager pod, of the TLS client key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,

    /// Path, inside the ks-controller-manager pod, of the CA bundle that verifies the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,

    /// Skip TLS verification. Missing means skip; only an explicit `false` verifies.
    #[serde(
        default,
        rename = "insecureSkipTLSVerify",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_tls_verify: Option<bool>,
}

/// RepoStatus is written by the repo controller, or by a client asking for `manualTrigger`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct RepoStatus {
    /// When the controller last wrote this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub last_update_time: Option<Time>,

    /// Sync state: `created`, `syncing`, `successful` or `manualTrigger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

schema::root_schema!(
    Repo,
    RepoSpec,
    RepoStatus,
    "Repo is a Helm or OCI chart repository synced into the App Store."
);
