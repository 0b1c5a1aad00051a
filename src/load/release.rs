//! Releases: `releases/<cluster>/<namespace>/<release>.yaml`, their values files and their
//! values templates. Inline string values and `*.j2` values files are minijinja templates,
//! rendered strictly (an undefined name is an error) with the release's context; every value
//! remembers the file and line that set it last, for diagnostics about the merged values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use super::{file_name, file_stem, is_yaml, read_dir_sorted, rel, syntax_diagnostic, unexpected};
use crate::catalog::{Release, ReleaseFile, Settings, ValuesFile};
use crate::confine;
use crate::diagnostics::{Code, Diagnostic, Diagnostics, Pos};
use crate::template;
use crate::yaml;

/// What templates see besides the release's own facts.
pub struct TemplateScope<'a> {
    pub settings: &'a Settings,
    /// The selected environment, if any.
    pub environment: Option<&'a str>,
    /// `[vars]` merged with the environment's vars.
    pub vars: &'a Map<String, Value>,
}

impl TemplateScope<'_> {
    /// The context of one release's templates.
    fn context(&self, cluster: &str, namespace: &str, release: &str, spec: &ReleaseFile) -> Value {
        // Only the environment variables pitrix.toml allows: a template must not be able to
        // read a CI secret by name.
        let env: Map<String, Value> = self
            .settings
            .catalog
            .allow_env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v.into())))
            .collect();
        serde_json::json!({
            "catalog": self.settings.catalog.name.get_ref(),
            "environment": self.environment,
            "cluster": cluster,
            "namespace": namespace,
            "release": release,
            "app": spec.app.value,
            "version": spec.version.value,
            "vars": self.vars,
            "env": env,
        })
    }
}

/// The environment of one values template: strict, and within [`template::VALUES`].
fn template_env(source: &str) -> Environment<'static> {
    let mut env = template::environment(template::VALUES, &[source]);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// A minijinja error as a diagnostic at `pos` (adjusted by the error's own line, if any).
fn template_diagnostic(e: &minijinja::Error, file: &Path, pos: Pos) -> Diagnostic {
    let line = e
        .line()
        .map(|l| pos.line + l as u32 - 1)
        .unwrap_or(pos.line);
    let column = if e.line().is_some_and(|l| l > 1) {
        1
    } else {
        pos.column
    };
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    if let Some(budget) = template::exceeded(e) {
        let message = e
            .detail()
            .map_or_else(|| budget.to_string(), str::to_string);
        return Diagnostic::error(Code::TemplateBudget, message)
            .in_file(file)
            .at(Pos { line, column })
            .hint(template::HINT);
    }
    let hint = match e.kind() {
        minijinja::ErrorKind::UndefinedError => {
            "templates see catalog, environment, cluster, namespace, release, app, version, vars.<name> and env.<NAME> (only names in [catalog] allowEnv)"
        }
        minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownFunction => {
            "see minijinja's built-in filters and functions"
        }
        _ => "values templates are minijinja (Jinja2) templates",
    };
    Diagnostic::error(
        Code::Template,
        format!("template error: {}{detail}", e.kind()),
    )
    .in_file(file)
    .at(Pos { line, column })
    .hint(hint)
}

/// Renders every templated string inside `value`, in place.
fn render_strings(
    value: &mut Value,
    pointer: &str,
    ctx: &Value,
    positions: &BTreeMap<String, Pos>,
    file: &Path,
    diags: &mut Diagnostics,
) {
    match value {
        Value::String(s) if is_template(s) => {
            let pos = positions.get(pointer).copied().unwrap_or_default();
            match template::render_str(&template_env(s), s, ctx, template::VALUES) {
                Ok(rendered) => *s = rendered,
                Err(e) => diags.push(template_diagnostic(&e, file, pos)),
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let p = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                render_strings(v, &p, ctx, positions, file, diags);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                render_strings(v, &format!("{pointer}/{i}"), ctx, positions, file, diags);
            }
        }
        _ => {}
    }
}

pub fn load_releases(root: &Path, scope: &TemplateScope, diags: &mut Diagnostics) -> Vec<Release> {
    let mut releases = Vec::new();
    let layout = "releases are filed as releases/<cluster>/<namespace>/<release>.yaml";
    for cluster_dir in read_dir_sorted(root, &root.join("releases"), diags) {
        if !cluster_dir.is_dir() {
            diags.push(unexpected(rel(root, &cluster_dir), layout));
            continue;
        }
        for ns_dir in read_dir_sorted(root, &cluster_dir, diags) {
            if !ns_dir.is_dir() {
                diags.push(unexpected(rel(root, &ns_dir), layout));
                continue;
            }
            for path in read_dir_sorted(root, &ns_dir, diags) {
                let file = rel(root, &path);
                if !path.is_file() || !is_yaml(&path) {
                    diags.push(unexpected(file, layout));
                    continue;
                }
                let (cluster, namespace, name) = (
                    file_name(&cluster_dir),
                    file_name(&ns_dir),
                    file_stem(&path),
                );
                if let Some(r) = load_release(root, file, cluster, namespace, name, scope, diags) {
                    releases.push(r);
                }
            }
        }
    }
    releases
}

fn load_release(
    root: &Path,
    file: PathBuf,
    cluster: String,
    namespace: String,
    name: String,
    scope: &TemplateScope,
    diags: &mut Diagnostics,
) -> Option<Release> {
    let text = match confine::read_to_string(root, &file) {
        Ok(t) => t,
        Err(e) => {
            diags.push(super::read_error(&file, &e));
            return None;
        }
    };
    let (spec, node): (ReleaseFile, yaml::Node) = super::parse_yaml_node(&text, &file)
        .map_err(|d| diags.push(d))
        .ok()?;
    let ctx = scope.context(&cluster, &namespace, &name, &spec);
    let mut origins = BTreeMap::new();

    let mut values_files = Vec::new();
    for vf in &spec.values_files {
        if let Some(v) = read_values_file(root, vf, &file, &ctx, &mut origins, diags) {
            values_files.push(v);
        }
    }

    let mut inline = spec
        .values
        .as_ref()
        .map(|v| Value::Object(v.value.clone()))
        .unwrap_or(Value::Object(Map::new()));
    if let Some(values_node) = node.get("values") {
        let mut positions = Vec::new();
        values_node.positions("", &mut positions);
        let positions: BTreeMap<String, Pos> = positions.into_iter().collect();
        render_strings(&mut inline, "", &ctx, &positions, &file, diags);
        for (pointer, pos) in positions {
            origins.insert(pointer, (file.clone(), pos));
        }
    }
    let Value::Object(values) = inline else {
        unreachable!("values is a mapping")
    };
    Some(Release {
        name,
        cluster,
        namespace,
        file,
        spec,
        values_files,
        values,
        origins,
    })
}

/// Reads (and for `*.j2`, renders) a values file; records where each of its values is.
fn read_values_file(
    root: &Path,
    name: &yaml::Spanned<String>,
    release_file: &Path,
    ctx: &Value,
    origins: &mut BTreeMap<String, (PathBuf, Pos)>,
    diags: &mut Diagnostics,
) -> Option<ValuesFile> {
    let file = PathBuf::from(&name.value);
    let problem = |message: String| {
        Diagnostic::error(Code::InvalidValues, message)
            .in_file(release_file)
            .at(name.pos)
            .hint("valuesFiles are paths relative to the catalog root, e.g. values/common.yaml")
    };
    let inside = file
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        diags.push(problem(format!(
            "values file `{}` is outside the catalog",
            name.value
        )));
        return None;
    }
    let mut text = match confine::read_to_string(root, &file) {
        Ok(t) => t,
        Err(confine::ReadError::Escape) => {
            diags.push(super::path_escape(&file).in_file(release_file).at(name.pos));
            return None;
        }
        Err(confine::ReadError::Io(e)) => {
            diags.push(problem(format!(
                "values file `{}` cannot be read: {e}",
                name.value
            )));
            return None;
        }
    };
    if name.value.ends_with(".j2") {
        text = match template::render_str(&template_env(&text), &text, ctx, template::VALUES) {
            Ok(t) => t,
            Err(e) => {
                diags.push(template_diagnostic(&e, &file, Pos { line: 1, column: 1 }));
                return None;
            }
        };
    }
    let node = match yaml::parse(&text) {
        Ok(n) => n,
        Err(e) => {
            diags.push(syntax_diagnostic(&e, &file));
            return None;
        }
    };
    let values = match node.to_json() {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValues,
                    format!("values file `{}` is not a mapping", name.value),
                )
                .in_file(&file)
                .at(node.pos)
                .hint("a values file is a YAML mapping of Helm values"),
            );
            return None;
        }
    };
    let mut positions = Vec::new();
    node.positions("", &mut positions);
    for (pointer, pos) in positions {
        origins.insert(pointer, (file.clone(), pos));
    }
    Some(ValuesFile { file, values })
}
