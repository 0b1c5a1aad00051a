//! The JSON Schemas in schema/ are generated from the loader's own types; this fails when they
//! are stale. Regenerate with `cargo run -- schema --out schema`.

use std::path::Path;

#[test]
fn published_schemas_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut stale = Vec::new();
    for (name, text) in pitrix::schema::catalog_schemas() {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if on_disk != text {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas {stale:?}: run `cargo run -- schema --out schema`"
    );
}

#[test]
fn schemas_forbid_unknown_keys() {
    for (name, text) in pitrix::schema::catalog_schemas() {
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            schema["additionalProperties"],
            serde_json::Value::Bool(false),
            "{name} must reject unknown keys, like the loader"
        );
    }
}

#[test]
fn release_schema_requires_app_and_version() {
    let schemas = pitrix::schema::catalog_schemas();
    let (_, release) = schemas
        .iter()
        .find(|(n, _)| *n == "release.schema.json")
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(release).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["app", "version"]);
}
