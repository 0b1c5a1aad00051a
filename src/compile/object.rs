//! One compiled object: a typed Kubernetes value, and the facts every later stage asks of it.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::objects::{
    self, Application, ApplicationRelease, ApplicationVersion, Category, Repo, ReviewState, labels,
};

/// The objects pitrix emits, in apply order: each kind before the kinds that need it.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    Category(Category),
    Repo(Repo),
    /// Chart storage and attachments, in the storage namespace.
    ConfigMap(ConfigMap),
    Application(Application),
    ApplicationVersion(ApplicationVersion),
    ApplicationRelease(ApplicationRelease),
    /// `standalone`: the Helm executor Job of a release, in its target namespace.
    Job(Box<Job>),
}

/// What pitrix knows of each kind it emits, in apply order: each kind before those that
/// need it (storage before versions, versions before the releases the webhook checks).
#[derive(Debug)]
pub struct KindInfo {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub stage: u8,
}

pub const KINDS: &[KindInfo] = &[
    KindInfo {
        kind: "Namespace",
        api_version: "v1",
        plural: "namespaces",
        namespaced: false,
        stage: 0,
    },
    KindInfo {
        kind: "Category",
        api_version: objects::API_VERSION,
        plural: "categories",
        namespaced: false,
        stage: 1,
    },
    KindInfo {
        kind: "Repo",
        api_version: objects::API_VERSION,
        plural: "repos",
        namespaced: false,
        stage: 2,
    },
    KindInfo {
        kind: "ConfigMap",
        api_version: "v1",
        plural: "configmaps",
        namespaced: true,
        stage: 3,
    },
    KindInfo {
        kind: "Application",
        api_version: objects::API_VERSION,
        plural: "applications",
        namespaced: false,
        stage: 4,
    },
    KindInfo {
        kind: "ApplicationVersion",
        api_version: objects::API_VERSION,
        plural: "applicationversions",
        namespaced: false,
        stage: 5,
    },
    KindInfo {
        kind: "ApplicationRelease",
        api_version: objects::API_VERSION,
        plural: "applicationreleases",
        namespaced: false,
        stage: 6,
    },
    KindInfo {
        kind: "Job",
        api_version: "batch/v1",
        plural: "jobs",
        namespaced: true,
        stage: 7,
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
fn member_cluster(annotation: Option<&str>) -> Option<String> {
    annotation
        .filter(|c| *c != labels::DEFAULT_CLUSTER)
        .map(str::to_string)
}

macro_rules! each {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            Object::Namespace($o) => $e,
            Object::Category($o) => $e,
            Object::Repo($o) => $e,
            Object::ConfigMap($o) => $e,
            Object::Application($o) => $e,
            Object::ApplicationVersion($o) => $e,
            Object::ApplicationRelease($o) => $e,
            Object::Job($o) => $e,
        }
    };
}

impl Object {
    pub fn metadata(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::Category(_) => "Category",
            Object::Repo(_) => "Repo",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Application(_) => "Application",
            Object::ApplicationVersion(_) => "ApplicationVersion",
            Object::ApplicationRelease(_) => "ApplicationRelease",
            Object::Job(_) => "Job",
        }
    }

    fn kind_info(&self) -> &'static KindInfo {
        KindInfo::of(self.kind()).expect("every emitted kind is in KINDS")
    }

    pub fn api_version(&self) -> &'static str {
        self.kind_info().api_version
    }

    /// Lowercase plural, as in the API path (`applicationversions`).
    pub fn plural(&self) -> &'static str {
        self.kind_info().plural
    }

    /// Position in the apply order.
    pub fn stage(&self) -> u8 {
        self.kind_info().stage
    }

    pub fn sort_key(&self) -> (u8, Option<&str>, &str) {
        (self.stage(), self.namespace(), self.name())
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version().into(),
            kind: self.kind().into(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().into(),
            cluster: member_cluster(
                self.metadata()
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(labels::PITRIX_CLUSTER))
                    .map(String::as_str),
            ),
        }
    }

    /// The object as JSON, `apiVersion` and `kind` first.
    pub fn to_json(&self) -> serde_json::Value {
        // Typed Kubernetes values are plain data; serialising them cannot fail.
        each!(self, o => serde_json::to_value(o).expect("objects serialise"))
    }
}

/// A desired review state, written to the status subresource by the applier (KubeSphere has no
/// controller for review states, reference §6). The applier adds the timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusIntent {
    /// `Application` or `ApplicationVersion`.
    pub kind: &'static str,
    pub name: String,
    pub state: ReviewState,
    pub message: Option<String>,
}

impl StatusIntent {
    /// Versions first: KubeSphere activates an app only once one of its versions is active.
    pub fn order(&self) -> u8 {
        match self.kind {
            "ApplicationVersion" => 0,
            _ => 1,
        }
    }

    pub fn plural(&self) -> &'static str {
        KindInfo::of(self.kind)
            .map(|k| k.plural)
            .unwrap_or_default()
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: objects::API_VERSION.into(),
            kind: self.kind.into(),
            namespace: None,
            name: self.name.clone(),
            cluster: None,
        }
    }

    /// The body of a status-subresource apply, without timestamps.
    pub fn to_json(&self) -> serde_json::Value {
        let mut status = serde_json::Map::new();
        status.insert("state".into(), self.state.as_str().into());
        if let Some(m) = &self.message {
            status.insert("message".into(), m.clone().into());
        }
        serde_json::json!({
            "apiVersion": objects::API_VERSION,
            "kind": self.kind,
            "metadata": {"name": self.name},
            "status": status,
        })
    }
}
