//! Stage 1, load: walk a catalog directory and parse every file into the typed [`Catalog`],
//! each value with its position. Problems of form (syntax, unknown keys, unreadable charts)
//! are diagnostics here; problems of meaning are the validate stage's.

pub(crate) mod deps;
mod release;
mod version;

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::de::DeserializeOwned;

use crate::catalog::{
    APP_FILE, App, AppFile, AppType, Asset, Catalog, CatalogSettings, Category, Repo,
    SETTINGS_FILE, Settings,
};
use crate::chart::PackageCache;
use crate::confine;
use crate::diagnostics::{Code, Diagnostic, Diagnostics, Pos, did_you_mean};
use crate::redact;
use crate::yaml;

/// How to load a catalog.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The environment (`[env.<name>]` of pitrix.toml) to load for.
    pub env: Option<String>,
    /// Where chart packages built before are kept, to be reused instead of packed again.
    pub package_cache: Option<PackageCache>,
    /// The target to compile for, over pitrix.toml's (`compile --target`): one catalog for
    /// KubeSphere 4.x and 3.x side by side.
    pub target: Option<crate::catalog::Target>,
    /// Where to keep packages instead of memory (a controller's first sync of thousands of
    /// versions): compile reads each back when it stores it.
    pub spool: Option<PathBuf>,
}

/// Loads the catalog at `root`. The catalog is returned even when there are errors, so that
/// validation can report everything in one run; never compile one that has errors.
pub fn load(root: &Path) -> (Catalog, Diagnostics) {
    load_with(root, &LoadOptions::default())
}

pub fn load_with(root: &Path, opts: &LoadOptions) -> (Catalog, Diagnostics) {
    let mut diags = Diagnostics::default();
    let (mut settings, settings_text) = load_settings(root, &mut diags);
    if let Some(target) = opts.target {
        settings.catalog.target = Some(target);
    }
    let environment = select_environment(&settings, &settings_text, opts, &mut diags);
    let mut vars = settings.vars.clone();
    if let Some(env) = environment.as_ref().and_then(|e| settings.env.get(e)) {
        vars.extend(env.vars.clone());
    }
    let categories = load_named_files(root, "categories", &mut diags)
        .into_iter()
        .map(|(name, file, spec)| Category { name, file, spec })
        .collect();
    let repos = load_named_files(root, "repos", &mut diags)
        .into_iter()
        .map(|(name, file, spec)| Repo { name, file, spec })
        .collect();
    let (apps, unloaded_apps) = load_apps(root, opts, &mut diags);
    let scope = release::TemplateScope {
        settings: &settings,
        environment: environment.as_deref(),
        vars: &vars,
    };
    let releases = release::load_releases(root, &scope, &mut diags);
    let templates = load_templates(root, &mut diags);
    let catalog = Catalog {
        settings,
        settings_text,
        environment,
        templates,
        categories,
        repos,
        apps,
        releases,
        unloaded_apps,
    };
    (catalog, diags)
}

/// `templates/*.j2`: the catalog's overrides of built-in templates, looked up by name before
/// the built-in ones.
fn load_templates(
    root: &Path,
    diags: &mut Diagnostics,
) -> std::collections::BTreeMap<String, (PathBuf, String)> {
    let mut templates = std::collections::BTreeMap::new();
    for path in read_dir_sorted(root, &root.join("templates"), diags) {
        let name = file_name(&path);
        if !path.is_file() || !name.ends_with(".j2") {
            continue;
        }
        let file = rel(root, &path);
        match confine::read_to_string(root, &file) {
            Ok(text) => {
                templates.insert(name, (file, text));
            }
            Err(e) => diags.push(read_error(&file, &e)),
        }
    }
    templates
}

/// `--env NAME` must name an `[env.NAME]` table.
fn select_environment(
    settings: &Settings,
    settings_text: &str,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
) -> Option<String> {
    let name = opts.env.as_ref()?;
    if settings.env.contains_key(name) || settings_text.is_empty() {
        return Some(name.clone());
    }
    let d = Diagnostic::error(
        Code::UnknownEnvironment,
        format!("--env {name}: pitrix.toml has no [env.{name}]"),
    )
    .in_file(SETTINGS_FILE);
    diags.push(
        match did_you_mean(name, settings.env.keys().map(String::as_str)) {
            Some(m) => d.hint(format!("did you mean `{m}`?")),
            None => d.hint(format!(
                "environments: {}",
                settings.env.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        },
    );
    None
}

fn rel(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn io_error(file: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(Code::Io, format!("cannot read {}: {e}", file.display())).in_file(file)
}

fn load_settings(root: &Path, diags: &mut Diagnostics) -> (Settings, String) {
    let placeholder = || Settings {
        catalog: CatalogSettings {
            name: toml::Spanned::new(0..0, String::new()),
            workspace: None,
            target: None,
            allow_env: Vec::new(),
            executor_image: None,
            status_image: None,
            executor_kubeconfig_secret: None,
            storage_namespace: None,
        },
        vars: Default::default(),
        env: Default::default(),
        clusters: Default::default(),
        storage: Default::default(),
    };
    let text = match confine::read_to_string(root, Path::new(SETTINGS_FILE)) {
        Ok(t) => t,
        Err(confine::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            diags.push(
                Diagnostic::error(
                    Code::MissingSettings,
                    format!("{} has no {SETTINGS_FILE}", root.display()),
                )
                .in_file(SETTINGS_FILE)
                .hint("every catalog starts with pitrix.toml; `pitrix new DIR` scaffolds one"),
            );
            return (placeholder(), String::new());
        }
        Err(e) => {
            diags.push(read_error(Path::new(SETTINGS_FILE), &e));
            return (placeholder(), String::new());
        }
    };
    match toml::from_str::<Settings>(&text) {
        Ok(s) => (s, text),
        Err(e) => {
            let pos = e.span().map(|span| pos_at_offset(&text, span.start));
            diags.push(toml_diagnostic(&e).in_file(SETTINGS_FILE).at_opt(pos));
            (placeholder(), text)
        }
    }
}

/// toml reports what went wrong only in its message; serde's wording is stable.
fn toml_diagnostic(e: &toml::de::Error) -> Diagnostic {
    let message = e.message().to_string();
    // "unknown field `x`, expected one of `a`, `b`" / "unknown variant `x`, expected `a` or `b`"
    let quoted_after = |prefix: &str| -> Option<(String, Vec<String>)> {
        let rest = message.strip_prefix(prefix)?;
        let given = rest.split('`').next().unwrap_or_default().to_string();
        let allowed = rest
            .split_once("expected")
            .map(|(_, list)| {
                list.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some((given, allowed))
    };
    if let Some((given, allowed)) = quoted_after("unknown field `") {
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        return unknown_key_diagnostic(&given, &allowed);
    }
    if let Some((given, allowed)) = quoted_after("unknown variant `") {
        let d = Diagnostic::error(
            Code::InvalidValue,
            format!("`{given}` is not one of {}", quote_list(&allowed)),
        );
        return match did_you_mean(&given, allowed.iter().map(String::as_str)) {
            Some(m) => d.hint(format!("did you mean `{m}`?")),
            None => d.hint(format!("use one of {}", quote_list(&allowed))),
        };
    }
    if message.starts_with("missing field `") {
        let key = message.split('`').nth(1).unwrap_or_default();
        return Diagnostic::error(Code::MissingKey, format!("missing required key `{key}`")).hint(
            format!("add `{key} = ...` to this table; `pitrix new` shows a complete pitrix.toml"),
        );
    }
    if message.starts_with("invalid type") {
        return Diagnostic::error(Code::InvalidValue, redact::text(&message))
            .hint("see schema/pitrix.schema.json for the type of each key");
    }
    Diagnostic::error(Code::TomlSyntax, redact::text(&message))
        .hint("pitrix.toml is TOML: `key = \"value\"` under [catalog], [vars], [env.<name>], [clusters.<name>]")
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Line and column of a byte offset.
pub fn pos_at_offset(text: &str, offset: usize) -> Pos {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    Pos { line, column }
}

fn unknown_key_diagnostic(given: &str, allowed: &[&str]) -> Diagnostic {
    if redact::is_secret_key(given) {
        return Diagnostic::error(
            Code::LiteralSecret,
            format!("`{given}` would put a secret into the catalog"),
        )
        .hint(format!(
            "name an environment variable instead (`{}Env: MY_VAR`); pitrix reads it at apply time",
            given.trim_end_matches('s')
        ));
    }
    let d = Diagnostic::error(Code::UnknownKey, format!("unknown key `{given}`"));
    match did_you_mean(given, allowed.iter().copied()) {
        Some(m) => d.hint(format!("did you mean `{m}`?")),
        None if !allowed.is_empty() => d.hint(format!(
            "allowed here: {}",
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => d,
    }
}

/// Reads and parses a YAML file of the catalog into `T`, or reports why not.
pub(crate) fn read_yaml<T: DeserializeOwned>(
    root: &Path,
    file: &Path,
    diags: &mut Diagnostics,
) -> Option<T> {
    let text = match confine::read_to_string(root, file) {
        Ok(t) => t,
        Err(e) => {
            diags.push(read_error(file, &e));
            return None;
        }
    };
    parse_yaml(&text, file).map_err(|d| diags.push(d)).ok()
}

/// Parses YAML text into `T`; the error is a diagnostic for `file`.
pub(crate) fn parse_yaml<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, Diagnostic> {
    parse_yaml_node(text, file).map(|(t, _)| t)
}

/// [`parse_yaml`], keeping the node tree for positions.
pub(crate) fn parse_yaml_node<T: DeserializeOwned>(
    text: &str,
    file: &Path,
) -> Result<(T, yaml::Node), Diagnostic> {
    let node = yaml::parse(text).map_err(|e| syntax_diagnostic(&e, file))?;
    let t = yaml::from_node(&node).map_err(|e| de_diagnostic(e).in_file(file))?;
    Ok((t, node))
}

pub(crate) fn syntax_diagnostic(e: &yaml::SyntaxError, file: &Path) -> Diagnostic {
    Diagnostic::error(Code::YamlSyntax, format!("invalid YAML: {}", e.message))
        .in_file(file)
        .at(e.pos)
        .hint("check the indentation and quoting at this line and the one before it")
}

fn de_diagnostic(e: yaml::DeError) -> Diagnostic {
    let d = match &e.unknown {
        Some(u) if u.is_key => unknown_key_diagnostic(&u.given, &u.expected),
        Some(u) => {
            let d = Diagnostic::error(Code::InvalidValue, e.message.clone());
            match did_you_mean(&u.given, u.expected.iter().copied()) {
                Some(m) => d.hint(format!("did you mean `{m}`?")),
                None => d.hint(format!(
                    "use one of {}",
                    u.expected
                        .iter()
                        .map(|x| format!("`{x}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        None if e.message.starts_with("missing required key") => {
            Diagnostic::error(Code::MissingKey, e.message.clone())
                .hint("every key of each file is described in schema/ (`pitrix schema`)")
        }
        None => Diagnostic::error(Code::InvalidValue, e.message.clone())
            .hint("the type of every key is described in schema/ (`pitrix schema`)"),
    };
    d.at_opt(e.pos)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Sorted entries of a directory, hidden ones left out. A missing directory is empty. An
/// entry that is a symbolic link leading out of the catalog is reported and left out.
fn read_dir_sorted(root: &Path, dir: &Path, diags: &mut Diagnostics) -> Vec<PathBuf> {
    let mut entries: Vec<(PathBuf, bool)> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_symlink())))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            diags.push(io_error(&rel(root, dir), &e));
            return Vec::new();
        }
    };
    entries.retain(|(p, _)| !is_hidden(p));
    entries.sort();
    entries
        .into_iter()
        .filter(|(path, is_link)| {
            let escapes = *is_link && confine::escapes(root, &rel(root, path));
            if escapes {
                diags.push(path_escape(&rel(root, path)));
            }
            !escapes
        })
        .map(|(path, _)| path)
        .collect()
}

/// A file of the catalog that leads out of it (through a symbolic link). The link's target
/// is not named: it is the runner's file system, and the PR comment is public.
pub(crate) fn path_escape(file: &Path) -> Diagnostic {
    Diagnostic::error(
        Code::PathEscape,
        format!(
            "{} is a symbolic link that leads outside the catalog",
            file.display()
        ),
    )
    .in_file(file)
    .hint("pitrix reads nothing outside the catalog root: commit the file itself, or link to a file inside the catalog")
}

/// A file read failed: outside the catalog, or an I/O error.
fn read_error(file: &Path, e: &confine::ReadError) -> Diagnostic {
    match e {
        confine::ReadError::Escape => path_escape(file),
        confine::ReadError::Io(e) => io_error(file, e),
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn unexpected(file: PathBuf, what: &str) -> Diagnostic {
    Diagnostic::warning(
        Code::UnexpectedFile,
        format!(
            "{} is not part of the catalog layout and is ignored",
            file.display()
        ),
    )
    .in_file(file)
    .hint(what.to_string())
}

/// `categories/*.yaml`, `repos/*.yaml`: one object per file, named by the file.
fn load_named_files<T: DeserializeOwned + Send>(
    root: &Path,
    dir: &str,
    diags: &mut Diagnostics,
) -> Vec<(String, PathBuf, T)> {
    let mut out: Vec<(String, PathBuf, T)> = Vec::new();
    for path in read_dir_sorted(root, &root.join(dir), diags) {
        let file = rel(root, &path);
        if !path.is_file() || !is_yaml(&path) {
            diags.push(unexpected(
                file,
                &format!("{dir}/ holds one <name>.yaml per object"),
            ));
            continue;
        }
        let name = file_stem(&path);
        if let Some((_, first, _)) = out.iter().find(|(n, _, _)| n == &name) {
            diags.push(duplicate(&file, first, &format!("`{name}`")));
            continue;
        }
        if let Some(spec) = read_yaml(root, &file, diags) {
            out.push((name, file, spec));
        }
    }
    out
}

fn duplicate(file: &Path, first: &Path, what: &str) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateName,
        format!(
            "{} defines {what} again; {} already does",
            file.display(),
            first.display()
        ),
    )
    .in_file(file)
    .hint("one object per name: remove or rename one of the two files")
}

/// The apps that loaded, and the names of those that did not.
fn load_apps(
    root: &Path,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
) -> (Vec<App>, std::collections::BTreeSet<String>) {
    let dirs: Vec<PathBuf> = read_dir_sorted(root, &root.join("apps"), diags)
        .into_iter()
        .filter(|p| {
            if p.is_dir() {
                return true;
            }
            diags.push(unexpected(
                rel(root, p),
                "apps/ holds one directory per app",
            ));
            false
        })
        .collect();
    // Apps load in parallel: packaging charts is most of a compile's work.
    let loaded: Vec<(Option<App>, Diagnostics)> = dirs
        .par_iter()
        .map(|dir| {
            let mut d = Diagnostics::default();
            let app = load_app(root, dir, opts, &mut d);
            (app, d)
        })
        .collect();
    let mut apps = Vec::new();
    let mut unloaded = std::collections::BTreeSet::new();
    for ((app, d), dir) in loaded.into_iter().zip(&dirs) {
        diags.extend(d);
        match app {
            Some(app) => apps.push(app),
            None => {
                unloaded.insert(file_name(dir));
            }
        }
    }
    (apps, unloaded)
}

fn load_app(root: &Path, dir: &Path, opts: &LoadOptions, diags: &mut Diagnostics) -> Option<App> {
    let name = file_name(dir);
    let dir_rel = rel(root, dir);
    let file = dir_rel.join(APP_FILE);
    // Listed first: an entry leading out of the catalog (app.yaml included) is reported once.
    let entries = read_dir_sorted(root, dir, diags);
    if !entries.contains(&dir.join(APP_FILE)) && confine::escapes(root, &file) {
        return None;
    }
    if !dir.join(APP_FILE).is_file() {
        diags.push(
            Diagnostic::error(Code::MissingKey, format!("app `{name}` has no {APP_FILE}"))
                .in_file(&dir_rel)
                .hint("an app directory holds app.yaml and one directory or .tgz per version"),
        );
        return None;
    }
    let spec: AppFile = read_yaml(root, &file, diags)?;
    let app_type = spec.app_type.as_ref().map(|t| t.value).unwrap_or_default();

    let icon = spec
        .icon
        .as_ref()
        .and_then(|i| read_asset(root, &dir_rel, i, "icon", &file, diags));
    let screenshots = spec
        .screenshots
        .iter()
        .filter_map(|s| {
            read_asset(root, &dir_rel, &s.file, "screenshot", &file, diags).map(|asset| {
                crate::catalog::Screenshot {
                    asset,
                    entry: s.clone(),
                }
            })
        })
        .collect();

    let reserved: Vec<&str> = spec
        .icon
        .iter()
        .map(|i| i.value.as_str())
        .chain(["screenshots", APP_FILE, "README.md"])
        .collect();
    let mut versions = Vec::new();
    let mut unloaded_versions = std::collections::BTreeSet::new();
    for path in entries {
        let fname = file_name(&path);
        if reserved.contains(&fname.as_str()) || fname.starts_with("icon.") {
            continue;
        }
        let version_rel = rel(root, &path);
        let loaded = if path.is_dir() {
            match app_type {
                AppType::Helm => {
                    version::load_chart_dir(root, &version_rel, opts.package_cache.as_ref(), diags)
                }
                AppType::Yaml => version::load_manifests(root, &version_rel, diags),
            }
        } else if fname.ends_with(".tgz") && app_type == AppType::Helm {
            version::load_chart_archive(root, &version_rel, diags)
        } else {
            diags.push(unexpected(
                version_rel,
                "besides app.yaml, icon and screenshots/, an app holds versions: chart directories or <version>.tgz",
            ));
            continue;
        };
        let spooled = match (loaded, &opts.spool) {
            (Some(mut v), Some(spool)) => match v.package.clone().spool(spool, &v.digest) {
                Ok(package) => {
                    v.package = package;
                    Some(v)
                }
                Err(e) => {
                    diags.push(crate::catalog::spool_error(&e, Some(&version_rel)));
                    None
                }
            },
            (loaded, _) => loaded,
        };
        match spooled {
            Some(v) => versions.push(v),
            None => {
                unloaded_versions.insert(fname.trim_end_matches(".tgz").to_string());
            }
        }
    }
    versions.sort_by(|a, b| version::order(&a.name, &b.name));
    // `1.0.0/` and `1.0.0.tgz` would be one version twice; the first in path order stays.
    let mut unique: Vec<crate::catalog::Version> = Vec::with_capacity(versions.len());
    for v in versions {
        match unique.iter().find(|u| u.name == v.name) {
            Some(first) => {
                let (first, second) = if first.path < v.path {
                    (&first.path, &v.path)
                } else {
                    (&v.path, &first.path)
                };
                diags.push(duplicate(
                    second,
                    first,
                    &format!("version `{}` of app `{name}`", v.name),
                ));
            }
            None => unique.push(v),
        }
    }
    let versions = unique;
    Some(App {
        name,
        dir: dir_rel,
        file,
        spec,
        icon,
        screenshots,
        versions,
        unloaded_versions,
    })
}

fn read_asset(
    root: &Path,
    app_dir: &Path,
    name: &yaml::Spanned<String>,
    what: &str,
    app_file: &Path,
    diags: &mut Diagnostics,
) -> Option<Asset> {
    let file = app_dir.join(&name.value);
    let escapes = Path::new(&name.value)
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)));
    if escapes {
        diags.push(
            Diagnostic::error(
                Code::InvalidImage,
                format!(
                    "{what} `{}` must be a file inside the app directory",
                    name.value
                ),
            )
            .in_file(app_file)
            .at(name.pos)
            .hint(format!(
                "put the file in {} and name it relative to that directory",
                app_dir.display()
            )),
        );
        return None;
    }
    match confine::read(root, &file) {
        Ok(bytes) => Some(Asset { file, bytes }),
        Err(confine::ReadError::Escape) => {
            diags.push(path_escape(&file).in_file(app_file).at(name.pos));
            None
        }
        Err(confine::ReadError::Io(e)) => {
            diags.push(
                Diagnostic::error(
                    Code::InvalidImage,
                    format!("{what} `{}` cannot be read: {e}", name.value),
                )
                .in_file(app_file)
                .at(name.pos)
                .hint(format!("put the file at {}", file.display())),
            );
            None
        }
    }
}
