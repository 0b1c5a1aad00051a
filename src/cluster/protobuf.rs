//! Kubernetes' protobuf encoding for the objects pitrix creates in bulk: the chart-storage
//! ConfigMaps. Given JSON, the API server decodes a body twice (once with Go's encoding/json
//! only to find its kind), walking each package's ~50 KiB of base64 byte by byte: 60 % of
//! what a ConfigMap creation cost it. In protobuf a package is one length-prefixed copy.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde::Deserialize;
use serde_json::Value;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body opens with it ("k8s" and a zero byte), then a `runtime.Unknown`
/// holding the object's type and its own encoding.
const MAGIC: &[u8; 4] = b"k8s\0";

/// What a ConfigMap's body, and its metadata, may hold to be sent this way.
const CONFIG_MAP_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "data",
    "binaryData",
    "immutable",
];
const METADATA_KEYS: &[&str] = &["name", "namespace", "labels", "annotations"];

/// `body` in the API server's protobuf encoding when it is a ConfigMap made only of the
/// fields carried below; `None` otherwise (it is sent as JSON).
pub fn encode(body: &Value) -> Option<Vec<u8>> {
    if body["apiVersion"] != "v1" || body["kind"] != "ConfigMap" {
        return None;
    }
    let only = |v: &Value, keys: &[&str]| {
        v.as_object()
            .is_some_and(|m| m.keys().all(|k| keys.contains(&k.as_str())))
    };
    if !only(body, CONFIG_MAP_KEYS) || !only(&body["metadata"], METADATA_KEYS) {
        return None;
    }
    let typed = ConfigMap::deserialize(body).ok()?;
    Some(envelope(typed))
}

fn envelope(typed: ConfigMap) -> Vec<u8> {
    let meta = typed.metadata;
    let message = pb::ConfigMap {
        metadata: Some(pb_meta::ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            labels: meta.labels.unwrap_or_default(),
            annotations: meta.annotations.unwrap_or_default(),
            ..Default::default()
        }),
        data: typed.data.unwrap_or_default(),
        binary_data: typed
            .binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, bytes)| (key, bytes.0))
            .collect(),
        immutable: typed.immutable,
    };
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
        }),
        raw: Some(message.encode_to_vec()),
        // As client-go writes them: present and empty.
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut bytes = Vec::with_capacity(MAGIC.len() + unknown.encoded_len());
    bytes.extend_from_slice(MAGIC);
    unknown
        .encode(&mut bytes)
        .expect("a Vec grows to hold any message");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "hello-0.1.0",
                "namespace": "extension-openpitrix",
                "labels": {"app.kubernetes.io/managed-by": "pitrix"},
                "annotations": {"pitrix.io/digest": "sha256:00"},
            },
            "binaryData": {"BinaryKey": "H4sIAAAAAAAA/wMAAAAAAAAAAAA="},
            "data": {"values.yaml": "a: 1\n"},
            "immutable": true,
        })
    }

    /// Decodes what [`encode`] wrote, as the API server would.
    fn decode(bytes: &[u8]) -> (TypeMeta, pb::ConfigMap) {
        let rest = bytes.strip_prefix(MAGIC).expect("the magic prefix");
        let unknown = Unknown::decode(rest).unwrap();
        let raw = unknown.raw.unwrap();
        (
            unknown.type_meta.unwrap(),
            pb::ConfigMap::decode(&raw[..]).unwrap(),
        )
    }

    #[test]
    fn carries_every_field_of_a_package() {
        let (type_meta, cm) = decode(&encode(&package()).unwrap());
        assert_eq!(type_meta.api_version.as_deref(), Some("v1"));
        assert_eq!(type_meta.kind.as_deref(), Some("ConfigMap"));
        let meta = cm.metadata.unwrap();
        assert_eq!(meta.name.as_deref(), Some("hello-0.1.0"));
        assert_eq!(meta.namespace.as_deref(), Some("extension-openpitrix"));
        assert_eq!(meta.labels["app.kubernetes.io/managed-by"], "pitrix");
        assert_eq!(meta.annotations["pitrix.io/digest"], "sha256:00");
        // The package's bytes, not its base64.
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode("H4sIAAAAAAAA/wMAAAAAAAAAAAA=")
            .unwrap();
        assert_eq!(cm.binary_data["BinaryKey"], bytes);
        assert_eq!(cm.data["values.yaml"], "a: 1\n");
        assert_eq!(cm.immutable, Some(true));
    }

    #[test]
    fn anything_else_goes_as_json() {
        let mut owned = package();
        owned["metadata"]["ownerReferences"] = json!([{"kind": "Application"}]);
        let mut other_field = package();
        other_field["extra"] = json!(1);
        let mut other_kind = package();
        other_kind["kind"] = json!("Secret");
        let mut not_base64 = package();
        not_base64["binaryData"]["BinaryKey"] = json!("not base64!");
        for body in [owned, other_field, other_kind, not_base64] {
            assert_eq!(encode(&body), None, "{body}");
        }
    }
}
