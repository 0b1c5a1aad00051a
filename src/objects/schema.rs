//! Schema helpers that keep every generated CRD schema structural and shaped like the
//! schemas controller-gen produces for KubeSphere's Go types.
//!
//! schemars 1 marks every `Option<T>` as `type: [T, "null"]`, which kube-derive then turns into
//! `nullable: true`. KubeSphere's CRDs declare no nullable field (Go `omitempty` simply leaves the
//! key out), so [`structural`] strips the `null` before that happens. The other helpers give the
//! exact `type`/`format` pairs of the upstream CRDs where schemars would say something else
//! (`int64` formats, k8s-openapi's long `Time` description, `ByteString` having no schema).

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value};

/// Container transform (`#[schemars(transform = ...)]`): removes the `null` alternative that
/// schemars adds for `Option<T>`, recursively, so no property ends up `nullable` or in an
/// `anyOf` with a null branch.
pub(crate) fn structural(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        strip_null(object);
    }
}

fn strip_null(object: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let single = types.remove(0);
            object.insert("type".to_owned(), single);
        }
    }
    // `Option<T>` where `T`'s schema has no `type` becomes `anyOf: [T, {type: null}]`.
    if let Some(Value::Array(branches)) = object.get("anyOf") {
        let rest: Vec<&Value> = branches.iter().filter(|b| !is_null_schema(b)).collect();
        if rest.len() == 1
            && rest.len() < branches.len()
            && let Value::Object(inner) = rest[0].clone()
        {
            object.remove("anyOf");
            for (key, value) in inner {
                object.entry(key).or_insert(value);
            }
        }
    }
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        for property in properties.values_mut() {
            if let Value::Object(p) = property {
                strip_null(p);
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(Value::Object(sub)) = object.get_mut(key) {
            strip_null(sub);
        }
    }
}

fn is_null_schema(schema: &Value) -> bool {
    match schema {
        Value::Object(o) => {
            o.get("type").is_some_and(|t| t == "null")
                || o.get("const").is_some_and(Value::is_null)
                || o.get("enum")
                    .is_some_and(|e| e.as_array().is_some_and(|a| a.iter().all(Value::is_null)))
        }
        _ => false,
    }
}

/// `type: integer` without a format, as controller-gen writes for a Go `int`.
pub(crate) fn integer(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// `type: string, format: date-time`, as controller-gen writes for `metav1.Time`.
pub(crate) fn date_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

/// `type: string, format: byte`: base64 of raw bytes, as controller-gen writes for `[]byte`.
pub(crate) fn bytes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "byte" })
}

/// An array of [`bytes`], as controller-gen writes for `[]json.RawMessage`.
pub(crate) fn bytes_list(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "array", "items": bytes(generator) })
}

/// The root `openAPIV3Schema` of a kind, shaped like controller-gen's: `apiVersion`, `kind`,
/// `metadata` (opaque object), `spec` and `status`, none of them required.
pub(crate) fn root<Spec: JsonSchema, Status: JsonSchema>(
    generator: &mut SchemaGenerator,
    description: &str,
) -> Schema {
    json_schema!({
        "description": description,
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion of this object: application.kubesphere.io/v2.",
                "type": "string",
            },
            "kind": {
                "description": "Kind of this object, in CamelCase.",
                "type": "string",
            },
            "metadata": { "type": "object" },
            "spec": generator.subschema_for::<Spec>(),
            "status": generator.subschema_for::<Status>(),
        },
    })
}

/// Implements `JsonSchema` for a root kind generated with `#[kube(schema = "manual")]`.
macro_rules! root_schema {
    ($kind:ident, $spec:ty, $status:ty, $description:literal) => {
        impl ::schemars::JsonSchema for $kind {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($kind).into()
            }

            fn json_schema(generator: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                super::schema::root::<$spec, $status>(generator, $description)
            }
        }
    };
}
pub(crate) use root_schema;

#[cfg(test)]
mod tests {
    use super::*;

    fn stripped(value: Value) -> Value {
        let mut schema = Schema::try_from(value).expect("a schema object");
        structural(&mut schema);
        schema.to_value()
    }

    #[test]
    fn removes_null_from_type_lists_at_any_depth() {
        let got = stripped(serde_json::json!({
            "type": "object",
            "properties": {
                "a": { "type": ["string", "null"] },
                "b": { "type": ["array", "null"], "items": { "type": ["integer", "null"] } },
                "c": { "type": ["object", "null"], "properties": { "d": { "type": ["boolean", "null"] } } },
            },
        }));
        assert_eq!(
            got,
            serde_json::json!({
                "type": "object",
                "properties": {
                    "a": { "type": "string" },
                    "b": { "type": "array", "items": { "type": "integer" } },
                    "c": { "type": "object", "properties": { "d": { "type": "boolean" } } },
                },
            })
        );
    }

    #[test]
    fn folds_an_any_of_with_a_null_branch() {
        let got = stripped(serde_json::json!({
            "type": "object",
            "properties": {
                "a": {
                    "description": "kept",
                    "anyOf": [{ "type": "string", "format": "byte" }, { "type": "null" }],
                },
                "b": { "anyOf": [{ "type": "string" }, { "enum": [null] }] },
                "keep": { "anyOf": [{ "type": "string" }, { "type": "integer" }] },
            },
        }));
        assert_eq!(
            got,
            serde_json::json!({
                "type": "object",
                "properties": {
                    "a": { "description": "kept", "type": "string", "format": "byte" },
                    "b": { "type": "string" },
                    "keep": { "anyOf": [{ "type": "string" }, { "type": "integer" }] },
                },
            })
        );
    }
}
