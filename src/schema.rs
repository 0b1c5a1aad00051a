//! JSON Schemas of the catalog files, generated from the same types the loader reads, so the
//! editor's view of a file and pitrix's can never drift. Published in `schema/`.

use schemars::{JsonSchema, generate::SchemaSettings};

use crate::catalog::{AppFile, CategoryFile, ReleaseFile, RepoFile, Settings};

fn schema_of<T: JsonSchema>() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// `(file name, schema)` for every catalog file kind, in a fixed order.
pub fn catalog_schemas() -> Vec<(&'static str, String)> {
    vec![
        ("pitrix.schema.json", schema_of::<Settings>()),
        ("category.schema.json", schema_of::<CategoryFile>()),
        ("repo.schema.json", schema_of::<RepoFile>()),
        ("app.schema.json", schema_of::<AppFile>()),
        ("release.schema.json", schema_of::<ReleaseFile>()),
    ]
}
