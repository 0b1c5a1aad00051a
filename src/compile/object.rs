//! One compiled object: a typed Kubernetes value, and the facts every later stage asks of it.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cluster::{KindInfo, ObjectRef, member_cluster};
use crate::objects::v1alpha1::{
    HelmApplication, HelmApplicationVersion, HelmCategory, HelmRelease, HelmRepo,
};
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
    // `kubesphere-v3`: KubeSphere 3.x's kinds, and the S3 objects they refer to.
    HelmCategory(HelmCategory),
    HelmRepo(HelmRepo),
    /// A package, icon or screenshot in S3 (`metadata.name` is the key).
    Stored(Stored),
    HelmApplication(HelmApplication),
    HelmApplicationVersion(HelmApplicationVersion),
    HelmRelease(HelmRelease),
}

/// An object of the S3 store KubeSphere 3.x keeps packages and images in: not a Kubernetes
/// object, but identified, emitted, diffed, applied (uploaded) and pruned like one.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// `name` is the S3 key; the labels mark it as the catalog's, like every object.
    pub metadata: ObjectMeta,
    pub bytes: Vec<u8>,
}

impl Stored {
    /// The kind name objects of the S3 store go by.
    pub const KIND: &str = "S3Object";
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
            Object::HelmCategory($o) => $e,
            Object::HelmRepo($o) => $e,
            Object::Stored($o) => $e,
            Object::HelmApplication($o) => $e,
            Object::HelmApplicationVersion($o) => $e,
            Object::HelmRelease($o) => $e,
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
            Object::HelmCategory(_) => "HelmCategory",
            Object::HelmRepo(_) => "HelmRepo",
            Object::Stored(_) => Stored::KIND,
            Object::HelmApplication(_) => "HelmApplication",
            Object::HelmApplicationVersion(_) => "HelmApplicationVersion",
            Object::HelmRelease(_) => "HelmRelease",
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

    /// The object as JSON, `apiVersion` and `kind` first. An S3 object's bytes are `data`,
    /// base64 as a ConfigMap's `binaryData`.
    pub fn to_json(&self) -> serde_json::Value {
        if let Object::Stored(s) = self {
            use base64::Engine as _;
            return serde_json::json!({
                "apiVersion": self.api_version(),
                "kind": Stored::KIND,
                "metadata": s.metadata,
                "data": base64::engine::general_purpose::STANDARD.encode(&s.bytes),
            });
        }
        // Typed Kubernetes values are plain data; serialising them cannot fail.
        match self {
            Object::Namespace(o) => serde_json::to_value(o),
            Object::Category(o) => serde_json::to_value(o),
            Object::Repo(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Application(o) => serde_json::to_value(o),
            Object::ApplicationVersion(o) => serde_json::to_value(o),
            Object::ApplicationRelease(o) => serde_json::to_value(o),
            Object::Job(o) => serde_json::to_value(o),
            Object::HelmCategory(o) => serde_json::to_value(o),
            Object::HelmRepo(o) => serde_json::to_value(o),
            Object::HelmApplication(o) => serde_json::to_value(o),
            Object::HelmApplicationVersion(o) => serde_json::to_value(o),
            Object::HelmRelease(o) => serde_json::to_value(o),
            Object::Stored(_) => unreachable!("returned above"),
        }
        .expect("objects serialise")
    }
}

/// A desired review state, written to the status subresource by the applier (KubeSphere has no
/// controller for review states, reference §6; 3.x's REST API writes them, docs/kubesphere-v3.md
/// §5.1). The applier adds the timestamps and, on 3.x, the audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusIntent {
    /// `Application`, `ApplicationVersion` or (3.x) `HelmApplicationVersion`.
    pub kind: &'static str,
    pub name: String,
    pub state: ReviewState,
    pub message: Option<String>,
}

impl StatusIntent {
    /// Versions first: KubeSphere activates an app only once one of its versions is active.
    pub fn order(&self) -> u8 {
        match self.kind {
            "ApplicationVersion" | "HelmApplicationVersion" => 0,
            _ => 1,
        }
    }

    pub fn plural(&self) -> &'static str {
        KindInfo::of(self.kind)
            .map(|k| k.plural)
            .unwrap_or_default()
    }

    pub fn api_version(&self) -> &'static str {
        KindInfo::of(self.kind)
            .map(|k| k.api_version)
            .unwrap_or(objects::API_VERSION)
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version().into(),
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
            "apiVersion": self.api_version(),
            "kind": self.kind,
            "metadata": {"name": self.name},
            "status": status,
        })
    }
}
