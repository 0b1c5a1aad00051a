//! Release values against the chart's `values.schema.json`, as Helm checks them at install:
//! chart defaults < values files < inline values, nulls removing defaults. Each violation is
//! reported where the offending value was set.

use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::catalog::{AppRef, AppType, Catalog, Release, Version, merge_values};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::load::yaml;

pub fn check(catalog: &Catalog, diags: &mut Diagnostics) {
    // In parallel: each release unpacks its chart and compiles its schema.
    let found: Vec<Diagnostics> = catalog
        .releases
        .par_iter()
        .filter_map(|r| {
            let AppRef::Catalog(app) = r.app_ref() else {
                return None;
            };
            let app = catalog.app(app).filter(|a| a.app_type() == AppType::Helm)?;
            let v = app.version(&r.spec.version.value)?;
            let mut found = Diagnostics::default();
            check_release(r, v, &mut found);
            Some(found)
        })
        .collect();
    for d in found {
        diags.extend(d);
    }
}

/// Helm's coalescing: a null in user values deletes the key.
fn drop_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
    for v in map.values_mut() {
        if let Value::Object(m) = v {
            drop_nulls(m);
        }
    }
}

fn check_release(r: &Release, v: &Version, diags: &mut Diagnostics) {
    let Some(mut files) = v.chart_files() else {
        return;
    };
    let Some(schema_bytes) = files.files.remove("values.schema.json") else {
        return;
    };
    let schema_file = v.path.join("values.schema.json");
    let schema: Value = match serde_json::from_slice(&schema_bytes) {
        Ok(s) => s,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::ChartInvalid,
                    format!("values.schema.json is not JSON: {e}"),
                )
                .in_file(&schema_file)
                .hint("Helm refuses to install a chart whose values.schema.json does not parse"),
            );
            return;
        }
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(val) => val,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::ChartInvalid,
                    format!("values.schema.json is not a valid JSON Schema: {e}"),
                )
                .in_file(&schema_file)
                .hint("fix the chart's schema"),
            );
            return;
        }
    };
    let mut merged = files
        .files
        .remove("values.yaml")
        .and_then(|b| yaml::parse(&String::from_utf8_lossy(&b)).ok())
        .and_then(|n| match n.to_json() {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    merge_values(&mut merged, &r.merged_values());
    drop_nulls(&mut merged);
    let instance = Value::Object(merged);
    for error in validator.iter_errors(&instance) {
        let pointer = error.instance_path().as_str().to_string();
        // The innermost value the release set on the way to the offending path.
        let origin = r
            .origins
            .range(..=pointer.clone())
            .rev()
            .find(|(p, _)| pointer == **p || pointer.starts_with(&format!("{p}/")) || p.is_empty())
            .map(|(_, o)| o.clone());
        let (file, pos) = match origin {
            Some((file, pos)) if !pointer.is_empty() || file == r.file => (file, Some(pos)),
            _ => (r.file.clone(), Some(r.spec.version.pos)),
        };
        let at = if pointer.is_empty() {
            "the values".to_string()
        } else {
            format!("values at `{pointer}`")
        };
        diags.push(
            Diagnostic::error(
                Code::ValuesSchema,
                format!("release `{}`: {at}: {error}", r.name),
            )
            .in_file(file)
            .at_opt(pos)
            .hint(format!(
                "{} {} checks its values with values.schema.json; Helm would refuse this install",
                r.spec.app.value, r.spec.version.value
            )),
        );
    }
}
