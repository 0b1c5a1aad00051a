//! `compile --publish`: the catalog as a Helm repository in `out/charts/` — every active
//! version of every active Helm app as `<chart>-<version>.tgz` (the very bytes KubeSphere
//! stores) and an `index.yaml` in Helm's own format: entries keyed by chart name, newest SemVer
//! first, each with Chart.yaml's metadata, `digest`, `urls` (under `--base-url`, or relative)
//! and `created`. Deterministic: keys sorted, `created` from git ([`created`]) and `generated`
//! the newest of them, so an unchanged catalog gives a byte-identical index.

pub mod created;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::catalog::{App, AppType, Catalog, Version, VersionSource};
use crate::diagnostics::{Code, Diagnostic};
use crate::emit::Files;
use crate::objects::ReviewState;
use crate::yaml;

pub use created::CreatedTimes;

/// Where the repository goes inside the output directory.
pub const CHARTS_DIR: &str = "charts";

/// The Chart.yaml keys Helm's index carries (Helm's `chart.Metadata`).
const METADATA_KEYS: &[&str] = &[
    "annotations",
    "apiVersion",
    "appVersion",
    "condition",
    "dependencies",
    "deprecated",
    "description",
    "home",
    "icon",
    "keywords",
    "kubeVersion",
    "maintainers",
    "name",
    "sources",
    "tags",
    "type",
    "version",
];

#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Absolute URL the charts are served under; relative URLs when unset.
    pub base_url: Option<String>,
}

/// A version pitrix publishes: an active version of an active Helm app.
pub fn published(catalog: &Catalog) -> Vec<(&App, &Version)> {
    catalog
        .apps
        .iter()
        .filter(|a| a.app_type() == AppType::Helm && a.state() == ReviewState::Active)
        .flat_map(|a| {
            a.versions
                .iter()
                .filter(move |v| {
                    v.source != VersionSource::Manifests
                        && a.version_state(&v.name) == ReviewState::Active
                })
                .map(move |v| (a, v))
        })
        .collect()
}

/// Chart.yaml of a version, as JSON.
pub fn chart_yaml(v: &Version) -> Value {
    v.chart_file("Chart.yaml")
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| yaml::parse(&t).ok())
        .map(|n| n.to_json())
        .unwrap_or(Value::Null)
}

fn chart_name<'a>(app: &'a App, meta: &'a Value) -> &'a str {
    meta.get("name")
        .and_then(Value::as_str)
        .unwrap_or(app.name.as_str())
}

/// The repository's files, under `charts/`. Errors when two apps publish one chart name.
pub fn render(
    catalog: &Catalog,
    opts: &PublishOptions,
    created: &CreatedTimes,
) -> Result<Files, Vec<Diagnostic>> {
    let mut files: Files = Vec::new();
    let mut entries: BTreeMap<String, Vec<(semver::Version, Value)>> = BTreeMap::new();
    let mut owner: BTreeMap<String, &App> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut generated = i64::MIN;
    for (app, v) in published(catalog) {
        let meta = chart_yaml(v);
        let name = chart_name(app, &meta).to_string();
        if let Some(first) = owner.get(&name)
            && first.name != app.name
        {
            errors.push(
                Diagnostic::error(
                    Code::PublishConflict,
                    format!(
                        "apps `{}` and `{}` both publish chart `{name}`",
                        first.name, app.name
                    ),
                )
                .in_file(&app.file)
                .hint(
                    "a Helm repository keys charts by name: rename one chart (Chart.yaml `name`)",
                ),
            );
            continue;
        }
        owner.insert(name.clone(), app);
        let file = format!("{name}-{}.tgz", v.name);
        let url = match &opts.base_url {
            Some(base) => format!("{}/{file}", base.trim_end_matches('/')),
            None => file.clone(),
        };
        let mut entry: BTreeMap<String, Value> = BTreeMap::new();
        if let Value::Object(m) = &meta {
            for key in METADATA_KEYS {
                if let Some(value) = m.get(*key).filter(|v| !is_empty(v)) {
                    entry.insert((*key).to_string(), value.clone());
                }
            }
        }
        match index_dependencies(v, &meta) {
            Some(deps) => entry.insert("dependencies".into(), deps),
            None => entry.remove("dependencies"),
        };
        entry.entry("apiVersion".into()).or_insert("v1".into());
        entry.insert("name".into(), name.clone().into());
        entry.insert("version".into(), v.name.clone().into());
        entry.insert("digest".into(), v.digest.clone().into());
        entry.insert("urls".into(), Value::Array(vec![url.into()]));
        let seconds = created.seconds(&v.path);
        generated = generated.max(seconds);
        entry.insert("created".into(), created::rfc3339(seconds).into());
        // Helm's index sorts with Masterminds semver, which takes a leading `v`.
        let semver = semver::Version::parse(v.name.strip_prefix('v').unwrap_or(&v.name))
            .unwrap_or(semver::Version::new(0, 0, 0));
        entries
            .entry(name)
            .or_default()
            .push((semver, Value::Object(entry.into_iter().collect())));
        match v.package.bytes() {
            Ok(bytes) => files.push((PathBuf::from(CHARTS_DIR).join(file), bytes.into_owned())),
            Err(e) => errors.push(crate::catalog::spool_error(&e, Some(&v.path))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let entries: BTreeMap<String, Vec<Value>> = entries
        .into_iter()
        .map(|(name, mut versions)| {
            // Helm's SortEntries: newest SemVer first.
            versions.sort_by(|a, b| b.0.cmp(&a.0));
            (name, versions.into_iter().map(|(_, v)| v).collect())
        })
        .collect();
    let generated = if generated == i64::MIN { 0 } else { generated };
    let index = serde_json::json!({
        "apiVersion": "v1",
        "entries": entries,
        "generated": created::rfc3339(generated),
    });
    let text = serde_yaml::to_string(&index).unwrap_or_default();
    files.push((
        PathBuf::from(CHARTS_DIR).join("index.yaml"),
        text.into_bytes(),
    ));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// The `dependencies` of an index entry as `helm repo index` writes them: Helm's loader reads
/// `requirements.yaml` into the chart's metadata (apiVersion v1's dependencies; it wins over
/// Chart.yaml's, whatever the apiVersion), and the index serializes each as Helm's
/// `chart.Dependency`: `name` and `repository` always (an empty `repository: ""` kept),
/// `version`, `condition`, `tags`, `enabled`, `import-values` and `alias` when not empty,
/// other keys dropped. None when there are none.
fn index_dependencies(v: &Version, meta: &Value) -> Option<Value> {
    let requirements = v
        .chart_file("requirements.yaml")
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| yaml::parse(&t).ok())
        .map(|n| n.to_json())
        .filter(|r| r.get("dependencies").is_some());
    let deps = match &requirements {
        Some(r) => r.get("dependencies"),
        None => meta.get("dependencies"),
    }?
    .as_array()?;
    let text = |d: &Value, key: &str| -> Option<Value> {
        match d.get(key)? {
            Value::String(s) => Some(Value::String(s.clone())),
            Value::Null => None,
            Value::Bool(b) => Some(Value::String(b.to_string())),
            Value::Number(n) => Some(Value::String(n.to_string())),
            _ => None,
        }
    };
    let out: Vec<Value> = deps
        .iter()
        .map(|d| {
            let mut m = serde_json::Map::new();
            m.insert("name".into(), text(d, "name").unwrap_or("".into()));
            m.insert(
                "repository".into(),
                text(d, "repository").unwrap_or("".into()),
            );
            for key in ["version", "condition", "alias"] {
                if let Some(value) = text(d, key).filter(|v| !is_empty(v)) {
                    m.insert(key.into(), value);
                }
            }
            for key in ["tags", "import-values"] {
                if let Some(value) = d.get(key).filter(|v| v.is_array() && !is_empty(v)) {
                    m.insert(key.into(), value.clone());
                }
            }
            if d.get("enabled") == Some(&Value::Bool(true)) {
                m.insert("enabled".into(), true.into());
            }
            Value::Object(m)
        })
        .collect();
    (!out.is_empty()).then_some(Value::Array(out))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(_) => false,
    }
}
