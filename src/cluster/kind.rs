//! The kinds pitrix writes and how each must be written (the kind table), and the identity
//! of one object ([`ObjectRef`]) that inventories, diffs, reports and prune work with.

use serde::Serialize;

use crate::objects::{self, labels, v1alpha1};

/// What pitrix knows of each kind it emits, in apply order: each kind before those that
/// need it (storage before versions, versions before the releases the webhook checks).
#[derive(Debug)]
pub struct KindInfo {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub stage: u8,
    /// How objects of the kind must be written: the apply planner's per-kind rules.
    pub write: WriteRules,
}

/// The per-kind rules of the apply planner (`apply::plan`), as data.
#[derive(Debug, Clone, Copy)]
pub struct WriteRules {
    /// Never patched: one that differs is deleted and created again (Jobs).
    pub immutable: bool,
    /// Holds a stored package or attachment, which KubeSphere never overwrites: other bytes are
    /// refused unless the user asks for a replacement.
    pub stored_bytes: bool,
    /// Carries content only the cluster supplies (an owner's UID, credentials from the
    /// environment), which the compiled digest does not cover: compared in full.
    pub compared_in_full: bool,
    /// Created by a protobuf POST answered with metadata only: big or immutable objects that
    /// are never patched afterwards, so a creation is all their field ownership needs.
    pub created_as_protobuf: bool,
    /// The kind of the controller owner, named by the object's app label (KubeSphere makes
    /// each version a child of its Application).
    pub owner: Option<&'static str>,
    /// Repo credentials, read from the environment variables its annotations name.
    pub credentials_from_env: bool,
    /// Write attempts: an admission webhook whose cache lags a version's new status refuses
    /// a release for a moment, so releases are retried longer.
    pub write_attempts: u32,
    /// Lives in the S3 store, not the API server: uploaded, never overwritten (`kubesphere-v3`).
    pub in_object_store: bool,
}

const PLAIN: WriteRules = WriteRules {
    immutable: false,
    stored_bytes: false,
    compared_in_full: false,
    created_as_protobuf: false,
    owner: None,
    credentials_from_env: false,
    write_attempts: 5,
    in_object_store: false,
};

pub const KINDS: &[KindInfo] = &[
    KindInfo {
        kind: "Namespace",
        api_version: "v1",
        plural: "namespaces",
        namespaced: false,
        stage: 0,
        write: PLAIN,
    },
    KindInfo {
        kind: "Category",
        api_version: objects::API_VERSION,
        plural: "categories",
        namespaced: false,
        stage: 1,
        write: PLAIN,
    },
    KindInfo {
        kind: "Repo",
        api_version: objects::API_VERSION,
        plural: "repos",
        namespaced: false,
        stage: 2,
        write: WriteRules {
            compared_in_full: true,
            credentials_from_env: true,
            ..PLAIN
        },
    },
    KindInfo {
        kind: "ConfigMap",
        api_version: "v1",
        plural: "configmaps",
        namespaced: true,
        stage: 3,
        write: WriteRules {
            stored_bytes: true,
            created_as_protobuf: true,
            ..PLAIN
        },
    },
    KindInfo {
        kind: "Application",
        api_version: objects::API_VERSION,
        plural: "applications",
        namespaced: false,
        stage: 4,
        write: PLAIN,
    },
    KindInfo {
        kind: "ApplicationVersion",
        api_version: objects::API_VERSION,
        plural: "applicationversions",
        namespaced: false,
        stage: 5,
        write: WriteRules {
            compared_in_full: true,
            owner: Some("Application"),
            ..PLAIN
        },
    },
    KindInfo {
        kind: "ApplicationRelease",
        api_version: objects::API_VERSION,
        plural: "applicationreleases",
        namespaced: false,
        stage: 6,
        write: WriteRules {
            write_attempts: 8,
            ..PLAIN
        },
    },
    KindInfo {
        kind: "Job",
        api_version: "batch/v1",
        plural: "jobs",
        namespaced: true,
        stage: 7,
        write: WriteRules {
            immutable: true,
            created_as_protobuf: true,
            ..PLAIN
        },
    },
    // `kubesphere-v3` (docs/kubesphere-v3.md §11): the same stages as their 4.x counterparts.
    KindInfo {
        kind: "HelmCategory",
        api_version: v1alpha1::API_VERSION,
        plural: "helmcategories",
        namespaced: false,
        stage: 1,
        write: PLAIN,
    },
    KindInfo {
        kind: "HelmRepo",
        api_version: v1alpha1::API_VERSION,
        plural: "helmrepos",
        namespaced: false,
        stage: 2,
        write: WriteRules {
            compared_in_full: true,
            credentials_from_env: true,
            ..PLAIN
        },
    },
    // Packages and images before the apps and versions that name them.
    KindInfo {
        kind: "S3Object",
        api_version: "pitrix.io/v1alpha1",
        plural: "s3objects",
        namespaced: false,
        stage: 3,
        write: WriteRules {
            stored_bytes: true,
            in_object_store: true,
            ..PLAIN
        },
    },
    KindInfo {
        kind: "HelmApplication",
        api_version: v1alpha1::API_VERSION,
        plural: "helmapplications",
        namespaced: false,
        stage: 4,
        write: PLAIN,
    },
    KindInfo {
        kind: "HelmApplicationVersion",
        api_version: v1alpha1::API_VERSION,
        plural: "helmapplicationversions",
        namespaced: false,
        stage: 5,
        write: WriteRules {
            compared_in_full: true,
            owner: Some("HelmApplication"),
            ..PLAIN
        },
    },
    KindInfo {
        kind: "HelmRelease",
        api_version: v1alpha1::API_VERSION,
        plural: "helmreleases",
        namespaced: false,
        stage: 6,
        write: PLAIN,
    },
];

impl KindInfo {
    pub fn of(kind: &str) -> Option<&'static KindInfo> {
        KINDS.iter().find(|k| k.kind == kind)
    }

    /// `(group, version)` of the API version.
    pub fn group_version(&self) -> (&'static str, &'static str) {
        self.api_version
            .split_once('/')
            .unwrap_or(("", self.api_version))
    }
}

/// Which object: the identity the inventory, diffs and prune work with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The catalog cluster of a `standalone` executor object (its [`labels::PITRIX_CLUSTER`]
    /// annotation) when it is not the host; `None` for everything on the host cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl ObjectRef {
    /// The identity of an object given as JSON (compiled, read back or live).
    /// `Kind/namespace/name (cluster c)`, as reports name an object.
    pub fn display_name(&self) -> String {
        let mut name = match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        };
        if let Some(cluster) = &self.cluster {
            name = format!("{name} (cluster {cluster})");
        }
        name
    }

    pub fn of_json(v: &serde_json::Value) -> ObjectRef {
        let s = |p: &str| v.pointer(p).and_then(serde_json::Value::as_str);
        ObjectRef {
            api_version: s("/apiVersion").unwrap_or_default().into(),
            kind: s("/kind").unwrap_or_default().into(),
            namespace: s("/metadata/namespace").map(str::to_string),
            name: s("/metadata/name").unwrap_or_default().into(),
            cluster: member_cluster(
                v.pointer("/metadata/annotations")
                    .and_then(|a| a.get(labels::PITRIX_CLUSTER))
                    .and_then(serde_json::Value::as_str),
            ),
        }
    }
}

/// `Some` for a cluster other than the host: the host's objects need no routing, so they
/// have one identity whether or not they carry the annotation.
pub(crate) fn member_cluster(annotation: Option<&str>) -> Option<String> {
    annotation
        .filter(|c| *c != labels::DEFAULT_CLUSTER)
        .map(str::to_string)
}
