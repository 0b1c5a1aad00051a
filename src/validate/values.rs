//! Release values against the chart's `values.schema.json`, as Helm checks them at install:
//! chart defaults < values files < inline values, nulls removing defaults. Each violation is
//! reported where the offending value was set.

use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::catalog::{AppRef, AppType, Catalog, Release, Version, merge_values};
use std::collections::{HashMap, HashSet};

use jsonschema::error::{TypeKind, ValidationErrorKind};

use crate::diagnostics::{Code, Diagnostic, Diagnostics, Pos};
use crate::yaml;

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
    let Some(files) = v.chart_files() else {
        return;
    };
    let mut chart = ChartNode::read(files, v.path.clone(), 0);
    chart.schema_file = v.path.join("values.schema.json");
    // The chart's defaults under the release's values, nulls kept (they remove defaults of
    // subcharts too) until each chart's values are checked.
    let mut merged = chart.values.clone();
    merge_values(&mut merged, &r.merged_values());
    match &chart.schema {
        Some(Ok(schema)) => {
            let mut top = merged.clone();
            drop_nulls(&mut top);
            let whose = format!("{} {}", r.spec.app.value, r.spec.version.value);
            let file = &chart.schema_file;
            check_values(r, schema, file, &top, &|p| p.to_string(), &whose, diags);
        }
        Some(Err(e)) => diags.push(
            Diagnostic::error(
                Code::ChartInvalid,
                format!("values.schema.json is not JSON: {e}"),
            )
            .in_file(&chart.schema_file)
            .hint("Helm refuses to install a chart whose values.schema.json does not parse"),
        ),
        None => {}
    }
    let tags = match merged.get("tags") {
        Some(Value::Object(t)) => t.clone(),
        _ => Map::new(),
    };
    check_subcharts(r, &chart, &merged, "", &tags, diags);
}

/// A chart of a release's chart tree: its values.yaml, schema, dependencies and subcharts
/// (`charts/<dir>/` and `charts/<name>.tgz`, as Helm's loader reads them).
struct ChartNode {
    name: String,
    version: Option<semver::Version>,
    values: Map<String, Value>,
    /// The schema, or the diagnostic for one that does not parse, and the file it is in.
    schema: Option<Result<Value, String>>,
    schema_file: std::path::PathBuf,
    /// Chart.yaml `dependencies`, or requirements.yaml's (Helm reads it last).
    deps: Option<Vec<Dependency>>,
    charts: Vec<ChartNode>,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
struct Dependency {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Subcharts nest no deeper than this (a chart tree is not a place for recursion).
const MAX_DEPTH: usize = 8;

impl ChartNode {
    /// `path`: where the chart is, for diagnostics (a directory, or the `.tgz` holding it).
    fn read(mut files: crate::chart::ChartFiles, path: std::path::PathBuf, depth: usize) -> Self {
        let json = |b: Option<Vec<u8>>| -> Option<Value> {
            b.and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| yaml::parse(&t).ok())
                .map(|n| n.to_json())
        };
        let meta = json(files.files.get("Chart.yaml").cloned()).unwrap_or(Value::Null);
        let deps_of = |v: &Value| -> Option<Vec<Dependency>> {
            serde_json::from_value(v.get("dependencies")?.clone()).ok()
        };
        let deps = json(files.files.get("requirements.yaml").cloned())
            .filter(|r| r.get("dependencies").is_some())
            .and_then(|r| deps_of(&r))
            .or_else(|| deps_of(&meta));
        let values = match json(files.files.remove("values.yaml")) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let schema = files
            .files
            .remove("values.schema.json")
            .map(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
        let in_archive = path.extension().is_some_and(|e| e == "tgz");
        let schema_file = if in_archive {
            path.clone()
        } else {
            path.join("values.schema.json")
        };
        let mut charts = Vec::new();
        if depth < MAX_DEPTH {
            let mut dirs: std::collections::BTreeMap<String, crate::chart::ChartFiles> =
                Default::default();
            for (p, bytes) in &files.files {
                let Some(rest) = p.strip_prefix("charts/") else {
                    continue;
                };
                match rest.split_once('/') {
                    Some((dir, inner)) => {
                        let _ = dirs
                            .entry(dir.to_string())
                            .or_default()
                            .insert(inner, bytes.clone());
                    }
                    None if rest.ends_with(".tgz") => {
                        if let Ok((_, sub)) =
                            crate::chart::read_archive(bytes, &crate::chart::Limits::default())
                        {
                            let at = if in_archive {
                                path.clone()
                            } else {
                                path.join(p)
                            };
                            charts.push(ChartNode::read(sub, at, depth + 1));
                        }
                    }
                    None => {}
                }
            }
            for (dir, sub) in dirs {
                if sub.files.contains_key("Chart.yaml") {
                    let at = if in_archive {
                        path.clone()
                    } else {
                        path.join("charts").join(&dir)
                    };
                    charts.push(ChartNode::read(sub, at, depth + 1));
                }
            }
        }
        let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
        ChartNode {
            name: text("name").unwrap_or_default(),
            version: text("version").and_then(|v| crate::load::deps::parse_version(&v)),
            values,
            schema,
            schema_file,
            deps,
            charts,
        }
    }
}

/// Helm's `IsCompatibleRange`: a dependency's version constraint admits a chart's version
/// (no constraint admits nothing).
fn compatible(dep: &Dependency, chart: &ChartNode) -> bool {
    match (&dep.version, &chart.version) {
        (Some(c), Some(v)) => crate::load::deps::Constraint::parse(c).is_some_and(|c| c.matches(v)),
        _ => false,
    }
}

/// Helm's `coalesceGlobals` then `coalesceValues` for a subchart: `dest` (the parent's values
/// under the subchart's name) gets the parent's globals (the parent's win), then the
/// subchart's defaults where it has none (a null removes a default).
fn coalesce_sub(
    dest: &Map<String, Value>,
    parent: &Map<String, Value>,
    defaults: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = dest.clone();
    let mut globals = match out.remove("global") {
        Some(Value::Object(g)) => g,
        _ => Map::new(),
    };
    if let Some(Value::Object(pg)) = parent.get("global") {
        for (k, v) in pg {
            match (v, globals.get(k)) {
                (Value::Object(pv), Some(Value::Object(dv))) => {
                    let mut merged = pv.clone();
                    fill(&mut merged, dv);
                    globals.insert(k.clone(), Value::Object(merged));
                }
                (Value::Object(_), Some(_)) => {}
                _ => {
                    globals.insert(k.clone(), v.clone());
                }
            }
        }
    }
    out.insert("global".into(), Value::Object(globals));
    fill(&mut out, defaults);
    out
}

/// Helm's `coalesceTablesFullKey`: `src`'s keys fill `dst` where it has none; a null in `dst`
/// removes the key; tables merge key by key.
fn fill(dst: &mut Map<String, Value>, src: &Map<String, Value>) {
    for (k, sv) in src {
        match dst.get_mut(k) {
            Some(Value::Null) => {
                dst.remove(k);
            }
            Some(Value::Object(dv)) => {
                if let Value::Object(sv) = sv {
                    fill(dv, sv);
                }
            }
            Some(_) => {}
            None => {
                dst.insert(k.clone(), sv.clone());
            }
        }
    }
}

/// A dotted path (`redis.enabled`) in values.
fn path_value<'a>(values: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut at = values.get(parts.next()?)?;
    for p in parts {
        at = at.as_object()?.get(p)?;
    }
    Some(at)
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The subcharts of `chart` whose values Helm checks, as Helm's `processDependencyEnabled`
/// picks them (aliases, `condition`, `tags`), each checked against its own schema with its
/// values coalesced as Helm does (the parent's values under its name or alias, globals
/// merged, its defaults), then their subcharts. `values`: `chart`'s coalesced values, nulls
/// kept; `at`: their JSON pointer in the release's values.
fn check_subcharts(
    r: &Release,
    chart: &ChartNode,
    values: &Map<String, Value>,
    at: &str,
    tags: &Map<String, Value>,
    diags: &mut Diagnostics,
) {
    // (subchart, name in the parent's values, the dependency that names it)
    let mut subs: Vec<(&ChartNode, String, Option<&Dependency>)> = Vec::new();
    match &chart.deps {
        // Without dependencies Helm keeps every subchart, enabled, by its own name.
        None => subs.extend(chart.charts.iter().map(|c| (c, c.name.clone(), None))),
        Some(deps) => {
            for c in &chart.charts {
                if !deps.iter().any(|d| d.name == c.name && compatible(d, c)) {
                    subs.push((c, c.name.clone(), None));
                }
            }
            for d in deps {
                if let Some(c) = chart
                    .charts
                    .iter()
                    .find(|c| c.name == d.name && compatible(d, c))
                {
                    let name = d
                        .alias
                        .clone()
                        .filter(|a| !a.is_empty())
                        .unwrap_or(c.name.clone());
                    subs.push((c, name, Some(d)));
                }
            }
        }
    }
    let mut coalesced: Vec<Option<Map<String, Value>>> = Vec::new();
    let mut view = values.clone();
    for (c, name, _) in &subs {
        let dest = match values.get(name) {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            // Helm: `type mismatch on <name>`; not a schema question.
            Some(_) => None,
        };
        let sub = dest.map(|d| coalesce_sub(&d, values, &c.values));
        if let Some(s) = &sub {
            view.insert(name.clone(), Value::Object(s.clone()));
        }
        coalesced.push(sub);
    }
    for ((c, name, dep), sub) in subs.iter().zip(coalesced) {
        let Some(sub) = sub else {
            continue;
        };
        if let Some(d) = dep {
            let mut enabled = true;
            let (mut yes, mut no) = (false, false);
            for t in &d.tags {
                match tags.get(t) {
                    Some(Value::Bool(true)) => yes = true,
                    Some(Value::Bool(false)) => no = true,
                    _ => {}
                }
            }
            if !yes && no {
                enabled = false;
            }
            for cond in d.condition.as_deref().unwrap_or("").trim().split(',') {
                if let Some(Value::Bool(b)) = path_value(&view, cond.trim()) {
                    enabled = *b;
                    break;
                }
            }
            if !enabled {
                continue;
            }
        }
        let sub_at = format!("{at}/{}", escape_pointer(name));
        match &c.schema {
            Some(Ok(schema)) => {
                let mut instance = sub.clone();
                drop_nulls(&mut instance);
                let whose = format!("subchart `{name}` ({} of {})", c.name, r.spec.app.value);
                let to_top = |p: &str| {
                    if p == "/global" || p.starts_with("/global/") {
                        p.to_string()
                    } else {
                        format!("{sub_at}{p}")
                    }
                };
                let file = &c.schema_file;
                check_values(r, schema, file, &instance, &to_top, &whose, diags);
            }
            Some(Err(e)) => diags.push(
                Diagnostic::error(
                    Code::ChartInvalid,
                    format!("the values.schema.json of subchart `{name}` is not JSON: {e}"),
                )
                .in_file(&c.schema_file)
                .hint("Helm refuses to install a chart whose values.schema.json does not parse"),
            ),
            None => {}
        }
        check_subcharts(r, c, &sub, &sub_at, tags, diags);
    }
}

/// Checks `values` against `schema` (the schema of the release's chart or of a subchart,
/// `whose`), each violation reported where the release set the offending value:
/// `to_top` maps a pointer into `values` to one into the release's values.
fn check_values(
    r: &Release,
    schema: &Value,
    schema_file: &std::path::Path,
    values: &Map<String, Value>,
    to_top: &dyn Fn(&str) -> String,
    whose: &str,
    diags: &mut Diagnostics,
) {
    let validator = match jsonschema::validator_for(schema) {
        Ok(val) => val,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::ChartInvalid,
                    format!("values.schema.json is not a valid JSON Schema: {e}"),
                )
                .in_file(schema_file)
                .hint("fix the chart's schema"),
            );
            return;
        }
    };
    let instance = Value::Object(values.clone());
    // jsonschema walks every branch of anyOf/allOf/oneOf and follows `$ref`s without
    // memoizing: a schema whose references branch in a cycle costs exponential time in the
    // depth of the values. Estimated first; refused over the budget.
    if let Err(evaluations) = schema_cost(schema, &instance) {
        diags.push(
            Diagnostic::error(
                Code::SchemaBudget,
                format!(
                    "values.schema.json cannot check the values of release `{}` within the budget: over {evaluations} schema evaluations",
                    r.name
                ),
            )
            .in_file(schema_file)
            .at(Pos { line: 1, column: 1 })
            .hint("the schema's `$ref`s branch in a cycle (anyOf/allOf/oneOf of references back to an enclosing schema): each level of the values multiplies the work; make each reference apply once per level"),
        );
        return;
    }
    for error in validator.iter_errors(&instance) {
        let pointer = to_top(error.instance_path().as_str());
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
                format!("release `{}`: {at} {}", r.name, describe(error.kind())),
            )
            .in_file(file)
            .at_opt(pos)
            .hint(format!(
                "{whose} checks its values with values.schema.json; Helm would refuse this install"
            )),
        );
    }
}

/// What a schema error says, from the rule and never the value: values may be secrets (a
/// password under an innocent key), and diagnostics end up in CI logs and PR comments. Names
/// of properties are keys, and may be said; limits, patterns and options come from the chart.
fn describe(kind: &ValidationErrorKind) -> String {
    use ValidationErrorKind as K;
    let keys = |keys: &[String]| {
        keys.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        K::AdditionalItems { limit } => format!("has more than {limit} items"),
        K::AdditionalProperties { unexpected } => {
            format!(
                "has properties the schema does not allow: {}",
                keys(unexpected)
            )
        }
        K::UnevaluatedProperties { unexpected } => {
            format!(
                "has properties no subschema evaluates: {}",
                keys(unexpected)
            )
        }
        K::UnevaluatedItems { .. } => "has items no subschema evaluates".into(),
        K::AnyOf { .. } => "matches none of the schemas of `anyOf`".into(),
        K::OneOfNotValid { .. } => "matches none of the schemas of `oneOf`".into(),
        K::OneOfMultipleValid { .. } => "matches more than one schema of `oneOf`".into(),
        K::Not { .. } => "matches the schema of `not`".into(),
        K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } => {
            "could not be checked against its `pattern`".into()
        }
        K::Pattern { pattern } => format!("does not match the pattern `{pattern}`"),
        K::Constant { expected_value } => format!("is not {}", schema_value(expected_value)),
        K::Enum { options } => format!("is not one of {}", schema_value(options)),
        K::Contains => "has no item that matches `contains`".into(),
        K::ContentEncoding { content_encoding } => format!("is not valid {content_encoding}"),
        K::FromUtf8 { .. } => "is not UTF-8 once decoded".into(),
        K::ContentMediaType { content_media_type } => {
            format!("is not valid {content_media_type}")
        }
        K::Custom { keyword, .. } => format!("fails `{keyword}`"),
        K::ExclusiveMaximum { limit } => format!("is not less than {limit}"),
        K::ExclusiveMinimum { limit } => format!("is not greater than {limit}"),
        K::Maximum { limit } => format!("is greater than the maximum {limit}"),
        K::Minimum { limit } => format!("is less than the minimum {limit}"),
        K::MultipleOf { multiple_of } => format!("is not a multiple of {multiple_of}"),
        K::FalseSchema => "is not allowed (the schema is `false`)".into(),
        K::Format { format } => format!("is not a valid `{format}`"),
        K::MaxItems { limit } => format!("has more than {limit} items"),
        K::MinItems { limit } => format!("has fewer than {limit} items"),
        K::MaxLength { limit } => format!("is longer than {limit} characters"),
        K::MinLength { limit } => format!("is shorter than {limit} characters"),
        K::MaxProperties { limit } => format!("has more than {limit} properties"),
        K::MinProperties { limit } => format!("has fewer than {limit} properties"),
        K::PropertyNames { .. } => "has a property name that `propertyNames` refuses".into(),
        K::Required { property } => match property.as_str() {
            Some(name) => format!("is missing the required property `{name}`"),
            None => "is missing a required property".into(),
        },
        K::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => format!("\"{t}\""),
                TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| format!("\"{t}\""))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("is not of type {expected}")
        }
        K::UniqueItems => "has duplicate items".into(),
        K::Referencing(e) => format!("cannot be checked: the schema's `$ref` fails: {e}"),
    }
}

/// A value from the schema (an enum's options, a const), shortened.
fn schema_value(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The most (schema node, value) evaluations a release's values may cost, counted along
/// every path jsonschema takes.
const SCHEMA_EVALUATIONS: u64 = 5_000_000;

/// The most distinct (schema node, value) pairs the estimate itself visits.
const SCHEMA_PAIRS: usize = 1_000_000;

/// How many (schema node, value) evaluations validating `instance` against `schema` costs at
/// most, counted along every path (`anyOf` branches, `$ref`s); `Err` with the budget when it
/// is over [`SCHEMA_EVALUATIONS`]. A reference back to a schema already being evaluated for
/// the same value is counted once (jsonschema stops there too).
fn schema_cost(schema: &Value, instance: &Value) -> Result<u64, u64> {
    let mut estimate = Estimate {
        root: schema,
        anchors: HashMap::new(),
        ids: HashMap::new(),
        memo: HashMap::new(),
        active: HashSet::new(),
    };
    estimate.index(schema);
    match estimate.cost(schema, instance) {
        Some(n) if n <= SCHEMA_EVALUATIONS => Ok(n),
        _ => Err(SCHEMA_EVALUATIONS),
    }
}

type Pair = (*const Value, *const Value);

struct Estimate<'a> {
    root: &'a Value,
    /// `$anchor` names and `$id`s to their schemas, for `$ref`s that are not JSON pointers.
    anchors: HashMap<&'a str, &'a Value>,
    ids: HashMap<&'a str, &'a Value>,
    memo: HashMap<Pair, u64>,
    active: HashSet<Pair>,
}

impl<'a> Estimate<'a> {
    fn index(&mut self, node: &'a Value) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(a)) = map.get("$anchor") {
                    self.anchors.insert(a, node);
                }
                if let Some(Value::String(id)) = map.get("$id") {
                    self.ids.insert(id, node);
                }
                map.values().for_each(|v| self.index(v));
            }
            Value::Array(items) => items.iter().for_each(|v| self.index(v)),
            _ => {}
        }
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let (base, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let doc = if base.is_empty() {
            self.root
        } else {
            // `$id`-relative: the subschema whose `$id` ends with the reference's base.
            self.ids
                .iter()
                .find(|(id, _)| id.ends_with(base) || base.ends_with(**id))
                .map(|(_, v)| *v)?
        };
        if fragment.is_empty() {
            Some(doc)
        } else if fragment.starts_with('/') {
            doc.pointer(fragment)
        } else {
            self.anchors.get(fragment).copied()
        }
    }

    /// `None` when the estimate itself went over its budget.
    fn cost(&mut self, schema: &'a Value, instance: &Value) -> Option<u64> {
        let key: Pair = (schema, instance);
        if let Some(&n) = self.memo.get(&key) {
            return Some(n);
        }
        if self.active.contains(&key) {
            return Some(1);
        }
        if self.memo.len() >= SCHEMA_PAIRS {
            return None;
        }
        let Value::Object(node) = schema else {
            return Some(1);
        };
        self.active.insert(key);
        let mut same: Vec<&'a Value> = Vec::new();
        for key in ["$ref", "$dynamicRef", "$recursiveRef"] {
            if let Some(Value::String(r)) = node.get(key)
                && let Some(target) = self.resolve(r)
            {
                same.push(target);
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(list)) = node.get(key) {
                same.extend(list);
            }
        }
        for key in ["not", "if", "then", "else"] {
            same.extend(node.get(key));
        }
        for key in ["dependentSchemas", "dependencies"] {
            if let Some(Value::Object(deps)) = node.get(key) {
                same.extend(deps.values().filter(|v| v.is_object()));
            }
        }
        let mut total: u64 = 1;
        for sub in same {
            total = total.saturating_add(self.cost(sub, instance)?);
        }
        match instance {
            Value::Object(values) => {
                let properties = node.get("properties").and_then(Value::as_object);
                let patterns = node.get("patternProperties").and_then(Value::as_object);
                for (name, value) in values {
                    let mut subs: Vec<&'a Value> = Vec::new();
                    match properties.and_then(|p| p.get(name)) {
                        Some(sub) => subs.push(sub),
                        None => {
                            subs.extend(node.get("additionalProperties"));
                            subs.extend(node.get("unevaluatedProperties"));
                        }
                    }
                    subs.extend(patterns.into_iter().flat_map(|p| p.values()));
                    for sub in subs {
                        total = total.saturating_add(self.cost(sub, value)?);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let mut subs: Vec<&'a Value> = Vec::new();
                    match node.get("items") {
                        Some(Value::Array(list)) => subs.extend(list.get(i)),
                        Some(sub) => subs.push(sub),
                        None => {}
                    }
                    if let Some(Value::Array(list)) = node.get("prefixItems") {
                        subs.extend(list.get(i));
                    }
                    for key in ["additionalItems", "unevaluatedItems", "contains"] {
                        subs.extend(node.get(key));
                    }
                    for sub in subs {
                        total = total.saturating_add(self.cost(sub, item)?);
                    }
                }
            }
            _ => {}
        }
        self.active.remove(&key);
        self.memo.insert(key, total);
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!({}), |inner, _| json!({ "a": inner }))
    }

    #[test]
    fn subchart_values_coalesce_as_helm_s() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        // The parent's values under the subchart's name, the parent's globals winning over
        // the subchart's own, tables merged; the subchart's defaults fill the rest; a null
        // removes a default.
        let parent = obj(json!({
            "global": {"region": "eu", "image": {"registry": "r.example"}},
            "sub": {"a": 1, "gone": null, "global": {"region": "us", "image": {"tag": "x"}}},
        }));
        let dest = obj(parent["sub"].clone());
        let defaults = obj(json!({"a": 0, "b": 2, "gone": 3, "nested": {"c": 4}}));
        let out = coalesce_sub(&dest, &parent, &defaults);
        assert_eq!(
            Value::Object(out),
            json!({
                "a": 1, "b": 2, "nested": {"c": 4},
                "global": {"region": "eu", "image": {"registry": "r.example", "tag": "x"}},
            })
        );
        let values = obj(json!({"redis": {"enabled": false}}));
        assert_eq!(path_value(&values, "redis.enabled"), Some(&json!(false)));
        assert_eq!(path_value(&values, "redis.missing"), None);
    }

    #[test]
    fn branching_reference_cycles_are_over_the_budget() {
        let branching = json!({
            "type": "object",
            "properties": {"a": {"anyOf": [{"$ref": "#"}, {"$ref": "#"}, {"type": "string"}]}},
            "required": ["zz"],
        });
        // Depth 20 costs jsonschema about 40 s (2^20 paths); the estimate is instant.
        assert!(schema_cost(&branching, &nested(3)).is_ok());
        assert_eq!(
            schema_cost(&branching, &nested(40)),
            Err(SCHEMA_EVALUATIONS)
        );
        let self_loop = json!({"anyOf": vec![json!({"$ref": "#"}); 8]});
        assert!(schema_cost(&self_loop, &nested(100)).is_ok());
    }

    #[test]
    fn ordinary_recursive_schemas_are_within_the_budget() {
        let tree = json!({
            "$defs": {"node": {"type": "object", "properties": {
                "left": {"$ref": "#/$defs/node"}, "right": {"$ref": "#/$defs/node"},
                "name": {"type": "string"}}}},
            "$ref": "#/$defs/node",
        });
        let mut value = json!({"name": "leaf"});
        for _ in 0..12 {
            value = json!({"left": value.clone(), "right": value, "name": "n"});
        }
        let cost = schema_cost(&tree, &value).unwrap();
        assert!(cost < 100_000, "{cost}");
    }

    #[test]
    fn messages_name_the_rule_not_the_value() {
        let schema = json!({
            "type": "object",
            "properties": {
                "port": {"type": "integer"},
                "mode": {"enum": ["a", "b"]},
                "name": {"pattern": "^[a-z]+$", "maxLength": 3},
            },
            "required": ["must"],
            "additionalProperties": false,
        });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let secret = "PW-INLINE-111";
        let instance = json!({"port": secret, "mode": secret, "name": secret, "extra": secret});
        let messages: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| describe(e.kind()))
            .collect();
        assert!(messages.len() >= 5, "{messages:?}");
        for m in &messages {
            assert!(!m.contains(secret), "{m}");
        }
        assert!(
            messages.contains(&"is not of type \"integer\"".to_string()),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("`extra`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("`must`")),
            "{messages:?}"
        );
    }
}
