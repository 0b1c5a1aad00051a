//! The review form of an object: its JSON with what a reviewer cannot read made readable or
//! summarised — release values decoded from base64, package bytes and inline icons shown as
//! digests — and every secret hidden, once, here, before anything is compared or rendered.

use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::compile::Object;
use crate::redact::{self, WriteOnly};

/// `sha256:<hex> (<n> bytes)`.
pub fn bytes_summary(bytes: &[u8]) -> String {
    format!("{} ({} bytes)", digest(bytes), bytes.len())
}

/// `sha256:<hex>`.
pub use crate::emit::file_digest as digest;

/// The review forms of the two sides of an object, secrets hidden. `write_only` are the
/// chart's writeOnly value paths, for a release's values.
pub fn pair(
    old: Option<&Object>,
    new: Option<&Object>,
    write_only: &WriteOnly,
) -> (Option<Value>, Option<Value>) {
    let mut o = old.map(review);
    let mut n = new.map(review);
    let in_values = |path: &redact::Path| {
        path.len() > 2 && path[0] == "spec" && path[1] == "values" && write_only.matches(&path[2..])
    };
    redact::json_pair(o.as_mut(), n.as_mut(), &in_values);
    (o, n)
}

/// An object's review form, before redaction.
fn review(o: &Object) -> Value {
    let mut v = o.to_json();
    match o {
        Object::ConfigMap(cm) => {
            if let Some(map) = v.get_mut("binaryData").and_then(Value::as_object_mut) {
                for (key, bytes) in cm.binary_data.iter().flatten() {
                    map.insert(key.clone(), bytes_summary(&bytes.0).into());
                }
            }
        }
        Object::Application(_) | Object::ApplicationVersion(_) => {
            if let Some(icon) = v.pointer_mut("/spec/icon") {
                summarise_icon(icon);
            }
        }
        Object::ApplicationRelease(r) => {
            let yaml_app = r.spec.app_type.as_deref() == Some("yaml");
            if let (Some(values), Some(spec)) = (
                &r.spec.values,
                v.get_mut("spec").and_then(Value::as_object_mut),
            ) {
                spec.insert("values".into(), decode_values(&values.0, yaml_app));
            }
        }
        // 3.x: the same base64 values; images and packages are S3 objects, shown as digests.
        Object::HelmRelease(r) => {
            if let (Some(values), Some(spec)) = (
                &r.spec.values,
                v.get_mut("spec").and_then(Value::as_object_mut),
            ) {
                spec.insert("values".into(), decode_values(&values.0, false));
            }
        }
        Object::Stored(s) => {
            v["data"] = bytes_summary(&s.bytes).into();
        }
        _ => {}
    }
    v
}

/// Inline base64 images are summarised; URLs stay.
fn summarise_icon(icon: &mut Value) {
    let Value::String(s) = icon else { return };
    if s.starts_with("http://") || s.starts_with("https://") || s.len() <= 128 {
        return;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .unwrap_or_else(|_| s.as_bytes().to_vec());
    *icon = Value::String(format!("inline image, {}", bytes_summary(&bytes)));
}

/// A release's values as data: the values mapping (Helm), or the list of manifests (YAML
/// apps). What does not parse is summarised, never shown raw: it may hold a secret.
fn decode_values(bytes: &[u8], yaml_app: bool) -> Value {
    let unreadable = || Value::String(format!("unreadable values, {}", bytes_summary(bytes)));
    let Ok(text) = std::str::from_utf8(bytes) else {
        return unreadable();
    };
    if yaml_app {
        let mut docs = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(text) {
            match Value::deserialize(doc) {
                Ok(Value::Null) => {}
                Ok(v) => docs.push(v),
                Err(_) => return unreadable(),
            }
        }
        return Value::Array(docs);
    }
    match serde_yaml::from_str::<Value>(text) {
        Ok(Value::Null) => Value::Object(Map::new()),
        Ok(v) => v,
        Err(_) => unreadable(),
    }
}

/// A review form as YAML text; empty for a missing side.
pub fn yaml(view: Option<&Value>) -> String {
    view.map(|v| serde_yaml::to_string(v).unwrap_or_default())
        .unwrap_or_default()
}
