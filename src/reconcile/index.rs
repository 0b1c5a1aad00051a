//! What the cluster should hold, kept small enough to stay resident between syncs: for each
//! desired object, the part of it a drift check compares (its "shape": the compiled body with
//! the digest annotation apply adds, without what KubeSphere's controllers own — reference §10
//! — and with package bytes reduced to their hash), and the desired review states. The full
//! bodies stay on disk ([`super::store`]); a correction reads one back.

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::apply::{DIGEST_ANNOTATION, Desired, DesiredObject, contains};
use crate::compile::{KindInfo, ObjectRef};
use crate::objects::labels;

/// Values under `data`/`binaryData` longer than this are compared by hash.
const HEAVY: usize = 128;

/// One desired object, as a drift check needs it.
#[derive(Debug, Clone)]
pub struct Expected {
    pub kind: &'static KindInfo,
    /// `sha256:<hex>` of the compiled object: the name of its body in the store.
    pub digest: Box<str>,
    /// Compact JSON of the shape (see the module docs).
    shape: Box<str>,
}

/// A desired review state (the status subresource of apps and versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub state: Box<str>,
    pub message: Option<Box<str>>,
}

/// Why an object is not as desired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// It does not exist.
    Missing,
    /// A field pitrix sets has another value (or is gone).
    Changed,
    /// Its review state is not the desired one.
    State,
}

impl Drift {
    pub fn as_str(&self) -> &'static str {
        match self {
            Drift::Missing => "deleted",
            Drift::Changed => "changed",
            Drift::State => "review state changed",
        }
    }
}

/// Everything a revision wants in the cluster.
#[derive(Debug, Default)]
pub struct Index {
    pub catalog: String,
    /// The git commit it was compiled from.
    pub revision: String,
    pub objects: HashMap<ObjectRef, Expected>,
    /// Review states by (kind, name).
    pub states: HashMap<(&'static str, String), State>,
    /// `standalone` target: the executor Jobs, whose progress the releases' status follows.
    pub jobs: Vec<DesiredObject>,
}

fn unescape(key: &str) -> String {
    key.replace('/', "~1")
}

/// `sha256:<hex>` of a string.
fn hash(s: &str) -> String {
    let h = Sha256::digest(s.as_bytes());
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Reduces an object (desired or live) to what a drift check compares: no status, no
/// finalizers, no annotation the release controller writes, heavy values hashed. The same
/// function on both sides keeps the comparison exact.
pub fn reduce(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
        for key in ["data", "binaryData"] {
            if let Some(map) = o.get_mut(key).and_then(Value::as_object_mut) {
                for value in map.values_mut() {
                    if let Some(s) = value.as_str()
                        && s.len() > HEAVY
                    {
                        *value = hash(s).into();
                    }
                }
            }
        }
    }
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("finalizers");
        meta.remove("managedFields");
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove(labels::TIMEOUT_RECHECK);
        }
    }
    v
}

impl Expected {
    pub fn shape(&self) -> Value {
        serde_json::from_str(&self.shape).unwrap_or(Value::Null)
    }

    /// Whether `live` (a whole object) holds every field of the shape.
    pub fn matches(&self, live: &Value) -> bool {
        contains(&reduce(live.clone()), &self.shape())
    }

    /// Whether the object cannot change but for its metadata (an immutable ConfigMap): then
    /// a metadata-only watch sees every change.
    pub fn immutable(&self) -> bool {
        self.shape().get("immutable") == Some(&Value::Bool(true))
    }

    /// Whether `meta` (an object's metadata only, as a metadata watch sees it) holds every
    /// metadata field of the shape.
    pub fn metadata_matches(&self, meta: &Value) -> bool {
        let shape = self.shape();
        let want = shape.get("metadata").cloned().unwrap_or(Value::Null);
        let live = reduce(json!({ "metadata": meta }));
        contains(&live["metadata"], &want)
    }
}

impl State {
    /// The same test apply uses before writing a review state.
    pub fn matches(&self, live: &Value) -> bool {
        let status = live.get("status");
        status.and_then(|s| s.get("state")).and_then(Value::as_str) == Some(&*self.state)
            && self.message.as_deref().is_none_or(|m| {
                status
                    .and_then(|s| s.get("message"))
                    .and_then(Value::as_str)
                    == Some(m)
            })
    }

    /// The status-subresource body apply writes (`apiVersion`, `kind`, `metadata.name`, `status`).
    pub fn intent(&self, kind: &str, name: &str) -> Value {
        let mut status = serde_json::Map::new();
        status.insert("state".into(), (*self.state).into());
        if let Some(m) = &self.message {
            status.insert("message".into(), (**m).into());
        }
        json!({
            "apiVersion": crate::objects::API_VERSION,
            "kind": kind,
            "metadata": {"name": name},
            "status": status,
        })
    }
}

impl Index {
    pub fn new(desired: &Desired, revision: &str) -> Index {
        let mut objects = HashMap::with_capacity(desired.objects.len());
        for o in &desired.objects {
            let mut body = o.body.clone();
            body["metadata"]["annotations"][DIGEST_ANNOTATION] = o.digest.clone().into();
            let shape = serde_json::to_string(&reduce(body)).unwrap_or_default();
            objects.insert(
                o.r.clone(),
                Expected {
                    kind: o.kind,
                    digest: o.digest.clone().into(),
                    shape: shape.into(),
                },
            );
        }
        let mut states = HashMap::new();
        for s in &desired.status {
            let kind = match s["kind"].as_str() {
                Some("Application") => "Application",
                Some("ApplicationVersion") => "ApplicationVersion",
                _ => continue,
            };
            let name = s["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let status = &s["status"];
            states.insert(
                (kind, name),
                State {
                    state: status["state"].as_str().unwrap_or_default().into(),
                    message: status
                        .get("message")
                        .and_then(Value::as_str)
                        .map(Into::into),
                },
            );
        }
        let jobs = match desired.standalone {
            Some(_) => desired
                .objects
                .iter()
                .filter(|o| o.kind.kind == "Job")
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Index {
            catalog: desired.catalog.clone(),
            revision: revision.to_string(),
            objects,
            states,
            jobs,
        }
    }

    pub fn state_of(&self, r: &ObjectRef) -> Option<&State> {
        let kind = match r.kind.as_str() {
            "Application" => "Application",
            "ApplicationVersion" => "ApplicationVersion",
            _ => return None,
        };
        self.states.get(&(kind, r.name.clone()))
    }

    /// Why the live object (None: it does not exist) is not as desired, if it is not.
    pub fn drift(&self, r: &ObjectRef, live: Option<&Value>) -> Option<Drift> {
        let expected = self.objects.get(r)?;
        let Some(live) = live else {
            return Some(Drift::Missing);
        };
        if !expected.matches(live) {
            return Some(Drift::Changed);
        }
        if let Some(state) = self.state_of(r)
            && !state.matches(live)
        {
            return Some(Drift::State);
        }
        None
    }

    /// The (kind, namespace) pairs the objects live in: what to watch.
    pub fn scopes(&self) -> std::collections::BTreeSet<(&'static str, Option<String>)> {
        self.objects
            .values()
            .zip(self.objects.keys())
            .map(|(e, r)| (e.kind.kind, r.namespace.clone()))
            .collect()
    }

    /// Approximate bytes held (for the memory budget's sake, in tests and metrics).
    pub fn approx_bytes(&self) -> usize {
        self.objects
            .iter()
            .map(|(r, e)| {
                r.api_version.len()
                    + r.kind.len()
                    + r.name.len()
                    + r.namespace.as_ref().map_or(0, String::len)
                    + e.digest.len()
                    + e.shape.len()
                    + 160
            })
            .sum()
    }
}

/// The key of a label in a JSON pointer.
pub fn label_pointer(key: &str) -> String {
    format!("/metadata/labels/{}", unescape(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "hello-0.1.0", "namespace": "extension-openpitrix",
                         "labels": {"pitrix.io/catalog": "c"}},
            "binaryData": {"BinaryKey": "A".repeat(500)},
            "immutable": true,
        });
        let version = json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationVersion",
            "metadata": {"name": "hello-0.1.0", "labels": {"pitrix.io/catalog": "c"}},
            "spec": {"versionName": "0.1.0"},
        });
        let obj = |body: Value| DesiredObject {
            r: ObjectRef {
                api_version: body["apiVersion"].as_str().unwrap().into(),
                kind: body["kind"].as_str().unwrap().into(),
                namespace: body["metadata"]["namespace"].as_str().map(Into::into),
                name: body["metadata"]["name"].as_str().unwrap().into(),
            },
            kind: KindInfo::of(body["kind"].as_str().unwrap()).unwrap(),
            digest: crate::emit::digest(&body),
            body,
        };
        Desired {
            catalog: "c".into(),
            objects: vec![obj(cm), obj(version)],
            standalone: None,
            status: vec![json!({
                "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationVersion",
                "metadata": {"name": "hello-0.1.0"}, "status": {"state": "active"},
            })],
        }
    }

    /// What apply leaves in the cluster: the body, the digest annotation and server fields.
    fn live(d: &Desired, i: usize) -> Value {
        let mut v = d.objects[i].body.clone();
        v["metadata"]["annotations"][DIGEST_ANNOTATION] = d.objects[i].digest.clone().into();
        v["metadata"]["uid"] = "u".into();
        v["metadata"]["resourceVersion"] = "7".into();
        v
    }

    #[test]
    fn what_counts_as_drift() {
        let d = desired();
        let index = Index::new(&d, "abc");
        let cm = d.objects[0].r.clone();
        let version = d.objects[1].r.clone();

        assert_eq!(index.drift(&cm, Some(&live(&d, 0))), None);
        assert_eq!(index.drift(&cm, None), Some(Drift::Missing));
        let mut edited = live(&d, 0);
        edited["binaryData"]["BinaryKey"] = "B".repeat(500).into();
        assert_eq!(index.drift(&cm, Some(&edited)), Some(Drift::Changed));
        let mut relabelled = live(&d, 0);
        relabelled["metadata"]["labels"]["pitrix.io/catalog"] = "other".into();
        assert_eq!(index.drift(&cm, Some(&relabelled)), Some(Drift::Changed));

        // Fields KubeSphere's controllers own never count (reference §10), nor added labels.
        let mut v = live(&d, 1);
        v["status"] = json!({"state": "active", "updated": "now"});
        v["metadata"]["finalizers"] = json!(["application.kubesphere.io/cleanup"]);
        v["metadata"]["annotations"][labels::TIMEOUT_RECHECK] = "3".into();
        v["metadata"]["labels"]["application.kubesphere.io/app-store"] = "true".into();
        assert_eq!(index.drift(&version, Some(&v)), None);
        // The review state does.
        v["status"]["state"] = "suspended".into();
        assert_eq!(index.drift(&version, Some(&v)), Some(Drift::State));
        // A spec edit does.
        let mut v = live(&d, 1);
        v["status"] = json!({"state": "active"});
        v["spec"]["versionName"] = "9.9.9".into();
        assert_eq!(index.drift(&version, Some(&v)), Some(Drift::Changed));
        // Objects the revision does not hold are none of drift's business.
        let other = ObjectRef {
            name: "other".into(),
            ..version.clone()
        };
        assert_eq!(index.drift(&other, None), None);
    }

    #[test]
    fn metadata_only_checks() {
        let d = desired();
        let index = Index::new(&d, "abc");
        let e = &index.objects[&d.objects[0].r];
        let live = live(&d, 0);
        assert!(e.metadata_matches(&live["metadata"]));
        let mut meta = live["metadata"].clone();
        meta["annotations"][DIGEST_ANNOTATION] = "sha256:old".into();
        assert!(!e.metadata_matches(&meta));
    }

    #[test]
    fn the_shape_is_small() {
        let d = desired();
        let index = Index::new(&d, "abc");
        // The 500-byte package is held as its hash.
        assert!(index.approx_bytes() < 1500, "{}", index.approx_bytes());
    }
}
