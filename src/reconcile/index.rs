//! What the cluster should hold, kept small enough to stay resident between syncs: for each
//! desired object, the part of it a drift check compares (its "shape": the compiled body with
//! the digest annotation apply adds, without what KubeSphere's controllers own — reference §10
//! — and with package bytes reduced to their hash), and the desired review states. The full
//! bodies stay on disk ([`super::store`]); a correction reads one back.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::apply::{DIGEST_ANNOTATION, Desired, DesiredObject};
use crate::catalog::S3Location;
use crate::cluster::{KindInfo, ObjectRef};
use crate::objects::labels;

/// Values under `data`/`binaryData` longer than this are compared by hash.
const HEAVY: usize = 128;

/// One desired object, as a drift check needs it: the *skeleton* of its shape (every key
/// and list length, every scalar replaced by null — shared between the many objects built
/// alike) and the hash of the shape. A live object is projected onto the skeleton and hashed:
/// the same hash means every field pitrix sets holds the value pitrix sets, which is
/// [`crate::apply::contains`] without keeping ten thousand bodies in memory.
#[derive(Debug, Clone)]
pub struct Expected {
    pub kind: &'static KindInfo,
    /// `sha256:<hex>` of the compiled object: the name of its body in the store.
    pub digest: Box<str>,
    skeleton: Arc<Value>,
    hash: [u8; 32],
    meta_hash: [u8; 32],
    immutable: bool,
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

/// One watch's reach: a kind in a namespace (or cluster-wide) of a catalog cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    /// The catalog cluster; `None` for the host.
    pub cluster: Option<String>,
    pub kind: &'static str,
    pub namespace: Option<String>,
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
    /// `kubesphere-v3` (or `[storage.s3]`): the store and the keys of the S3 objects, which no
    /// watch sees; [`missing_s3_objects`] looks for them between syncs.
    pub object_store: Option<S3Location>,
    pub s3_keys: Vec<String>,
}

fn unescape(key: &str) -> String {
    key.replace('/', "~1")
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
                        *value = crate::emit::file_digest(s.as_bytes()).into();
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

/// What a projection shows where the live object lacks a field, or has a list of another
/// length, or a scalar where a mapping belongs (never a value pitrix sets).
const ABSENT: &str = "\u{0}pitrix:absent";

/// The shape with every scalar replaced by null.
fn skeleton(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), skeleton(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(skeleton).collect()),
        _ => Value::Null,
    }
}

/// `live` reduced to the keys and list lengths of `skel`.
fn project(live: Option<&Value>, skel: &Value) -> Value {
    match skel {
        Value::Object(m) => {
            let l = live.and_then(Value::as_object);
            Value::Object(
                m.iter()
                    .map(|(k, s)| (k.clone(), project(l.and_then(|l| l.get(k)), s)))
                    .collect(),
            )
        }
        Value::Array(a) => match live.and_then(Value::as_array) {
            Some(l) if l.len() == a.len() => Value::Array(
                a.iter()
                    .zip(l)
                    .map(|(s, lv)| project(Some(lv), s))
                    .collect(),
            ),
            _ => ABSENT.into(),
        },
        _ => match live {
            Some(v) if !v.is_object() && !v.is_array() => v.clone(),
            _ => ABSENT.into(),
        },
    }
}

fn digest32(v: &Value) -> [u8; 32] {
    Sha256::digest(serde_json::to_vec(v).unwrap_or_default()).into()
}

impl Expected {
    fn new(
        kind: &'static KindInfo,
        digest: &str,
        shape: &Value,
        skeletons: &mut HashMap<String, Arc<Value>>,
    ) -> Expected {
        let skel = skeleton(shape);
        let key = serde_json::to_string(&skel).unwrap_or_default();
        let skeleton = skeletons
            .entry(key)
            .or_insert_with(|| Arc::new(skel))
            .clone();
        let meta_skel = skeleton.get("metadata").cloned().unwrap_or(Value::Null);
        Expected {
            kind,
            digest: digest.into(),
            hash: digest32(&project(Some(shape), &skeleton)),
            meta_hash: digest32(&project(shape.get("metadata"), &meta_skel)),
            immutable: shape.get("immutable") == Some(&Value::Bool(true)),
            skeleton,
        }
    }

    /// Whether `live` (a whole object) holds every field of the shape.
    pub fn matches(&self, live: &Value) -> bool {
        digest32(&reduce(project(Some(live), &self.skeleton))) == self.hash
    }

    /// Whether the object cannot change but for its metadata (an immutable ConfigMap): then
    /// a metadata-only watch sees every change.
    pub fn immutable(&self) -> bool {
        self.immutable
    }

    /// Whether `meta` (an object's metadata only, as a metadata watch sees it) holds every
    /// metadata field of the shape.
    pub fn metadata_matches(&self, meta: &Value) -> bool {
        let skel = self.skeleton.get("metadata").unwrap_or(&Value::Null);
        let projected = reduce(json!({ "metadata": project(Some(meta), skel) }));
        digest32(&projected["metadata"]) == self.meta_hash
    }
}

impl State {
    /// The same test apply uses before writing a review state.
    pub fn matches(&self, live: &Value) -> bool {
        let status = live.get("status");
        // 3.x keeps the message in the newest audit entry (apply's status::write_one).
        let message =
            status.and_then(|s| s.get("message").or_else(|| s.pointer("/audit/0/message")));
        status.and_then(|s| s.get("state")).and_then(Value::as_str) == Some(&*self.state)
            && self
                .message
                .as_deref()
                .is_none_or(|m| message.and_then(Value::as_str) == Some(m))
    }

    /// The status-subresource body apply writes (`apiVersion`, `kind`, `metadata.name`, `status`).
    pub fn intent(&self, kind: &str, name: &str) -> Value {
        let mut status = serde_json::Map::new();
        status.insert("state".into(), (*self.state).into());
        if let Some(m) = &self.message {
            status.insert("message".into(), (**m).into());
        }
        json!({
            "apiVersion": KindInfo::of(kind).map_or(crate::objects::API_VERSION, |k| k.api_version),
            "kind": kind,
            "metadata": {"name": name},
            "status": status,
        })
    }
}

impl Index {
    pub fn new(desired: &Desired, revision: &str) -> Index {
        let mut objects = HashMap::with_capacity(desired.objects.len());
        let mut skeletons = HashMap::new();
        for o in &desired.objects {
            // Compiled objects always have their body; read one at a time, not kept.
            let Ok(mut body) = o.to_body() else { continue };
            body["metadata"]["annotations"][DIGEST_ANNOTATION] = o.digest.clone().into();
            let shape = reduce(body);
            objects.insert(
                o.r.clone(),
                Expected::new(o.kind, &o.digest, &shape, &mut skeletons),
            );
        }
        let mut states = HashMap::new();
        for s in &desired.status {
            let Some(kind) = s["kind"].as_str().and_then(state_kind) else {
                continue;
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
        let s3_keys = desired
            .objects
            .iter()
            .filter(|o| o.kind.write.in_object_store)
            .map(|o| o.r.name.clone())
            .collect();
        Index {
            catalog: desired.catalog.clone(),
            revision: revision.to_string(),
            objects,
            states,
            jobs,
            object_store: desired.object_store.clone(),
            s3_keys,
        }
    }

    pub fn state_of(&self, r: &ObjectRef) -> Option<&State> {
        self.states.get(&(state_kind(&r.kind)?, r.name.clone()))
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

    /// Where the objects live: what to watch.
    pub fn scopes(&self) -> std::collections::BTreeSet<Scope> {
        // S3 objects have no watch: nothing but pitrix writes them, and never over.
        self.objects
            .iter()
            .filter(|(_, e)| !e.kind.write.in_object_store)
            .map(|(r, e)| Scope {
                cluster: r.cluster.clone(),
                kind: e.kind.kind,
                namespace: r.namespace.clone(),
            })
            .collect()
    }

    /// Distinct skeletons held (objects built alike share one).
    pub fn skeletons(&self) -> usize {
        let mut seen: Vec<*const Value> = self
            .objects
            .values()
            .map(|e| Arc::as_ptr(&e.skeleton))
            .collect();
        seen.sort();
        seen.dedup();
        seen.len()
    }
}

/// The `keys` the store does not hold (the store's client blocks: call it off the async
/// threads). The credentials come from the environment, as apply's uploads take them.
pub fn missing_s3_objects(
    store: &S3Location,
    keys: &[String],
) -> Result<Vec<String>, crate::Error> {
    let held = crate::apply::held_s3_keys(Some(store), keys)?;
    Ok(keys
        .iter()
        .filter(|k| !held.contains(*k))
        .cloned()
        .collect())
}

/// The kinds that carry a review state pitrix writes: 4.x's apps and versions, 3.x's versions
/// (3.x derives the app's state from them, docs/kubesphere-v3.md §5.2).
fn state_kind(kind: &str) -> Option<&'static str> {
    [
        "Application",
        "ApplicationVersion",
        "HelmApplicationVersion",
    ]
    .into_iter()
    .find(|k| *k == kind)
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
        let obj = |body: Value| DesiredObject::of(body).unwrap();
        Desired {
            catalog: "c".into(),
            objects: vec![obj(cm), obj(version)],
            standalone: None,
            contexts: Default::default(),
            object_store: None,
            status: vec![json!({
                "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationVersion",
                "metadata": {"name": "hello-0.1.0"}, "status": {"state": "active"},
            })],
        }
    }

    /// What apply leaves in the cluster: the body, the digest annotation and server fields.
    fn live(d: &Desired, i: usize) -> Value {
        let mut v = d.objects[i].body().unwrap().clone();
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

    /// `kubesphere-v3`: review states live on HelmApplicationVersions (the message in the
    /// newest audit entry), and S3 objects are in the index but never watched.
    #[test]
    fn kubesphere_3_states_and_s3_objects() {
        let version = json!({
            "apiVersion": "application.kubesphere.io/v1alpha1", "kind": "HelmApplicationVersion",
            "metadata": {"name": "appv-hello-0.1.0", "labels": {"pitrix.io/catalog": "c"}},
            "spec": {"name": "hello", "version": "0.1.0"},
        });
        let package = json!({
            "apiVersion": "pitrix.io/v1alpha1", "kind": "S3Object",
            "metadata": {"name": "system-workspace/appv-hello-0.1.0",
                         "labels": {"pitrix.io/catalog": "c"}},
            "data": "aGVsbG8=",
        });
        let d = Desired {
            catalog: "c".into(),
            objects: vec![
                DesiredObject::of(version).unwrap(),
                DesiredObject::of(package).unwrap(),
            ],
            standalone: None,
            contexts: Default::default(),
            object_store: None,
            status: vec![json!({
                "apiVersion": "application.kubesphere.io/v1alpha1",
                "kind": "HelmApplicationVersion",
                "metadata": {"name": "appv-hello-0.1.0"},
                "status": {"state": "active", "message": "First release."},
            })],
        };
        let index = Index::new(&d, "abc");
        let r = d.objects[0].r.clone();
        let state = index.state_of(&r).expect("a 3.x version's review state");
        let mut v = live(&d, 0);
        v["status"] = json!({"state": "active", "audit": [
            {"state": "active", "message": "First release.", "operator": "pitrix"},
        ]});
        assert_eq!(index.drift(&r, Some(&v)), None);
        v["status"]["state"] = "suspended".into();
        assert_eq!(index.drift(&r, Some(&v)), Some(Drift::State));
        let intent = state.intent("HelmApplicationVersion", "appv-hello-0.1.0");
        assert_eq!(intent["apiVersion"], "application.kubesphere.io/v1alpha1");

        assert_eq!(index.s3_keys, ["system-workspace/appv-hello-0.1.0"]);
        assert_eq!(
            crate::apply::s3_list_prefix(&index.s3_keys[0]),
            "system-workspace/"
        );
        assert_eq!(crate::apply::s3_list_prefix("att-0123abcd"), "att-");
        assert!(index.objects.contains_key(&d.objects[1].r));
        let watched: Vec<&str> = index.scopes().iter().map(|s| s.kind).collect();
        assert_eq!(watched, ["HelmApplicationVersion"]);
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
    fn objects_built_alike_share_a_skeleton() {
        let mut d = desired();
        let mut other = d.objects[1].clone();
        other.r.name = "hello-0.2.0".into();
        let mut body = other.body().unwrap().clone();
        body["metadata"]["name"] = "hello-0.2.0".into();
        body["spec"]["versionName"] = "0.2.0".into();
        other.set_body(body);
        d.objects.push(other);
        let index = Index::new(&d, "abc");
        assert_eq!(index.objects.len(), 3);
        assert_eq!(index.skeletons(), 2);
        // Same skeleton, other values: each object still checks against its own.
        let mut live = live(&d, 2);
        assert_eq!(index.drift(&d.objects[2].r, Some(&live)), None);
        live["spec"]["versionName"] = "0.1.0".into();
        assert_eq!(
            index.drift(&d.objects[2].r, Some(&live)),
            Some(Drift::Changed)
        );
    }

    #[test]
    fn lists_and_types_are_compared_like_contains() {
        let mut d = desired();
        let mut body = d.objects[1].body().unwrap().clone();
        body["spec"]["maintainer"] = json!([{"name": "a"}, {"name": "b"}]);
        d.objects[1].set_body(body);
        let index = Index::new(&d, "abc");
        let r = &d.objects[1].r;
        let mut v = live(&d, 1);
        v["status"] = json!({"state": "active"});
        v["spec"]["maintainer"][0]["email"] = "extra@x".into();
        assert_eq!(index.drift(r, Some(&v)), None, "extra fields are not drift");
        v["spec"]["maintainer"] = json!([{"name": "a"}]);
        assert_eq!(index.drift(r, Some(&v)), Some(Drift::Changed));
        v["spec"]["maintainer"] = json!("a");
        assert_eq!(index.drift(r, Some(&v)), Some(Drift::Changed));
        v["spec"] = json!({"versionName": {"nested": "0.1.0"}});
        assert_eq!(index.drift(r, Some(&v)), Some(Drift::Changed));
    }
}
