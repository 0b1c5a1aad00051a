//! `pitrix import URL`: charts from a Helm repository into the catalog, as
//! `apps/<chart>/<version>.tgz` (the archive byte for byte, its sha256 checked against the
//! index) plus an `app.yaml` made from Chart.yaml (description, home, icon, maintainers).
//!
//! Idempotent and never destructive: a version already in the catalog with the index's digest
//! is left alone, an existing app.yaml is never rewritten, and a version whose upstream digest
//! changed is reported and not overwritten (a released version is immutable). Everything is
//! fetched and checked first; on any problem nothing is written.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::chart::{self, Limits};
use crate::diagnostics::did_you_mean;
use crate::lock::write_file_atomic;
use crate::repo::{ChartVersion, FetchOptions, Fetcher, Filter, RepoError};
use crate::yaml;
use crate::{names, redact};

/// KubeSphere's ConfigMap storage budget for a package (reference §4, §9).
const STORAGE_BUDGET: usize = 1024 * 1024;
/// Console limit on icons (reference §9).
const MAX_ICON_BYTES: u64 = 512 * 1024;

/// Which versions of each chart to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// The newest N (SemVer order).
    Newest(usize),
    All,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The repository's base URL.
    pub url: String,
    /// Charts to import; empty: every chart of the index.
    pub charts: Vec<String>,
    pub versions: Versions,
    /// Include pre-release versions (`1.0.0-rc.1`).
    pub devel: bool,
    /// Category for new app.yaml files.
    pub category: Option<String>,
    pub fetch: FetchOptions,
    /// Plan only: fetch and check everything, write nothing.
    pub dry_run: bool,
}

/// One thing import did (or would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new version archive.
    Added {
        path: PathBuf,
        chart: String,
        version: String,
        digest: String,
        bytes: usize,
    },
    /// A new file other than a version: app.yaml, the icon.
    Created { path: PathBuf },
    /// A version the catalog already has with the index's digest.
    Unchanged { chart: String, version: String },
    /// A version the catalog files as a chart directory: pitrix's own package, not compared.
    Directory { chart: String, version: String },
    /// An app.yaml that exists and is kept as it is.
    Kept { path: PathBuf },
    /// Something to know that did not stop the import.
    Warning(String),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Action::Added {
                path,
                chart,
                version,
                digest,
                bytes,
            } => write!(
                f,
                "+ {} ({chart} {version}, sha256:{}, {} KiB)",
                path.display(),
                &digest[..12.min(digest.len())],
                bytes.div_ceil(1024)
            ),
            Action::Created { path } => write!(f, "+ {}", path.display()),
            Action::Unchanged { chart, version } => {
                write!(
                    f,
                    "= {chart} {version}: already in the catalog, same digest"
                )
            }
            Action::Directory { chart, version } => write!(
                f,
                "= {chart} {version}: filed as a chart directory; left alone"
            ),
            Action::Kept { path } => write!(f, "= {}: exists, kept as it is", path.display()),
            Action::Warning(w) => write!(f, "warning: {w}"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub actions: Vec<Action>,
    /// Files written (none on a dry run or when nothing changed).
    pub written: Vec<PathBuf>,
}

impl ImportReport {
    pub fn changed(&self) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a, Action::Added { .. } | Action::Created { .. }))
    }
}

/// Why an import did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}\n  = hint: {}",
            redact::text(&self.message),
            self.hint
        )
    }
}

fn problem(message: impl Into<String>, hint: impl Into<String>) -> Problem {
    Problem {
        message: message.into(),
        hint: hint.into(),
    }
}

fn repo_problem(e: &RepoError) -> Problem {
    problem(e.to_string(), e.hint())
}

/// Imports into the catalog at `root`. On error nothing was written.
pub fn import(root: &Path, opts: &ImportOptions) -> Result<ImportReport, Vec<Problem>> {
    if !root.join(crate::catalog::SETTINGS_FILE).is_file() {
        return Err(vec![problem(
            format!("{} is not a catalog (no pitrix.toml)", root.display()),
            "run in a catalog directory, or pass --catalog DIR (`pitrix new DIR` makes one)",
        )]);
    }
    if let Some(c) = &opts.category
        && c != crate::objects::labels::UNCATEGORIZED
        && !root.join("categories").join(format!("{c}.yaml")).is_file()
    {
        return Err(vec![problem(
            format!("category `{c}` is not in the catalog"),
            format!("add categories/{c}.yaml first, or leave --category out"),
        )]);
    }
    let fetcher =
        Fetcher::new(&opts.url, opts.fetch.clone()).map_err(|e| vec![repo_problem(&e)])?;
    let filter = if opts.charts.is_empty() {
        Filter::All
    } else {
        Filter::only(opts.charts.iter().cloned())
    };
    let index = fetcher.index(&filter).map_err(|e| vec![repo_problem(&e)])?;

    let mut problems = Vec::new();
    for wanted in &opts.charts {
        if index.chart(wanted).is_none() {
            let hint = match did_you_mean(wanted, index.names.iter().map(String::as_str)) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("the index has {} charts", index.names.len()),
            };
            problems.push(problem(
                format!("the repository has no chart `{wanted}`"),
                hint,
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut report = ImportReport::default();
    let mut files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    for (name, versions) in &index.entries {
        let planned = plan_chart(
            root,
            &fetcher,
            opts,
            name,
            versions,
            &mut report,
            &mut files,
        );
        if let Err(p) = planned {
            problems.extend(p);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if !opts.dry_run {
        for (rel, bytes) in &files {
            write_file_atomic(&root.join(rel), bytes).map_err(|e| {
                vec![problem(
                    format!("cannot write {}: {e}", rel.display()),
                    "check the permissions of the catalog directory",
                )]
            })?;
            report.written.push(rel.clone());
        }
    }
    Ok(report)
}

/// Plans one chart: which versions to add, which are there, app.yaml and icon.
#[allow(clippy::too_many_arguments)]
fn plan_chart(
    root: &Path,
    fetcher: &Fetcher,
    opts: &ImportOptions,
    name: &str,
    versions: &[ChartVersion],
    report: &mut ImportReport,
    files: &mut BTreeMap<PathBuf, Vec<u8>>,
) -> Result<(), Vec<Problem>> {
    if let Err(why) = names::dns1123_label(name) {
        return Err(vec![problem(
            format!("chart `{name}` cannot be an app ID: it {why}"),
            "KubeSphere app IDs are DNS-1123 labels; import it by hand under another directory name",
        )]);
    }
    let app_dir = PathBuf::from("apps").join(name);
    let app_file = app_dir.join(crate::catalog::APP_FILE);
    if let Some(kind) = existing_app_type(&root.join(&app_file))
        && kind != "helm"
    {
        return Err(vec![problem(
            format!(
                "{} is a `{kind}` app; charts cannot be added to it",
                app_file.display()
            ),
            "import the chart under another name",
        )]);
    }
    let candidates: Vec<&ChartVersion> = versions
        .iter()
        .filter(|v| opts.devel || v.semver().is_some_and(|s| s.pre.is_empty()))
        .collect();
    let selected: Vec<&ChartVersion> = match opts.versions {
        Versions::All => candidates,
        Versions::Newest(n) => candidates.into_iter().take(n).collect(),
    };
    if selected.is_empty() {
        return Err(vec![problem(
            format!(
                "chart `{name}` has no {}version to import",
                if opts.devel { "" } else { "stable " }
            ),
            "pass --devel to include pre-releases",
        )]);
    }

    let mut problems = Vec::new();
    // The newest selected version's Chart.yaml makes a new app.yaml.
    let mut newest_meta: Option<serde_json::Value> = None;
    for v in &selected {
        match plan_version(root, fetcher, &app_dir, name, v) {
            Ok(Planned::Add(path, bytes, meta, digest)) => {
                if bytes.len() > STORAGE_BUDGET {
                    report.actions.push(Action::Warning(format!(
                        "{name} {} is {} KiB, over KubeSphere's 1 MiB package budget: validation will refuse it",
                        v.version,
                        bytes.len().div_ceil(1024)
                    )));
                }
                newest_meta.get_or_insert(meta);
                report.actions.push(Action::Added {
                    path: path.clone(),
                    chart: name.to_string(),
                    version: v.version.clone(),
                    digest,
                    bytes: bytes.len(),
                });
                files.insert(path, bytes);
            }
            Ok(Planned::Unchanged(meta)) => {
                if newest_meta.is_none() {
                    newest_meta = meta;
                }
                report.actions.push(Action::Unchanged {
                    chart: name.to_string(),
                    version: v.version.clone(),
                });
            }
            Ok(Planned::Directory) => report.actions.push(Action::Directory {
                chart: name.to_string(),
                version: v.version.clone(),
            }),
            Err(p) => problems.push(p),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    if root.join(&app_file).exists() {
        report.actions.push(Action::Kept { path: app_file });
        return Ok(());
    }
    let meta = newest_meta.unwrap_or_else(|| serde_json::json!({}));
    let icon = fetch_icon(fetcher, &meta, report).map(|(ext, bytes)| {
        let path = app_dir.join(format!("icon.{ext}"));
        files.insert(path.clone(), bytes);
        report.actions.push(Action::Created { path });
        format!("icon.{ext}")
    });
    let text = app_yaml(
        &opts.url,
        name,
        &meta,
        icon.as_deref(),
        opts.category.as_deref(),
    );
    files.insert(app_file.clone(), text.into_bytes());
    report.actions.push(Action::Created { path: app_file });
    Ok(())
}

enum Planned {
    /// path, archive, Chart.yaml as JSON, sha256 hex
    Add(PathBuf, Vec<u8>, serde_json::Value, String),
    Unchanged(Option<serde_json::Value>),
    Directory,
}

fn plan_version(
    root: &Path,
    fetcher: &Fetcher,
    app_dir: &Path,
    name: &str,
    v: &ChartVersion,
) -> Result<Planned, Problem> {
    let path = app_dir.join(format!("{}.tgz", v.version));
    let Some(digest) = v.digest_hex() else {
        return Err(problem(
            format!("the index gives no digest for {name} {}", v.version),
            "pitrix verifies every archive against the index; ask the repository's owner to index it with digests",
        ));
    };
    if root.join(app_dir).join(&v.version).is_dir() {
        return Ok(Planned::Directory);
    }
    match fs::read(root.join(&path)) {
        Ok(existing) => {
            let have = chart::digest(&existing);
            if have == digest {
                return Ok(Planned::Unchanged(chart_yaml(&existing).ok()));
            }
            return Err(problem(
                format!(
                    "{}: the repository now serves {name} {} with digest sha256:{digest}, but the catalog has sha256:{have}; not overwritten",
                    path.display(),
                    v.version
                ),
                "a released version is immutable: review the upstream change, and if it is wanted, delete the file and import again",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(problem(
                format!("cannot read {}: {e}", path.display()),
                "check the permissions of the catalog directory",
            ));
        }
    }
    let (_, bytes) = fetcher
        .chart(&v.urls[0], &digest)
        .map_err(|e| repo_problem(&e))?;
    let meta = chart_yaml(&bytes).map_err(|why| {
        problem(
            format!(
                "{name} {}: the archive is not a usable chart: {why}",
                v.version
            ),
            "the repository serves a broken archive; it cannot be imported",
        )
    })?;
    let chart_name = meta
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    let chart_version = meta
        .get("version")
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    if chart_name != name || chart_version != v.version {
        return Err(problem(
            format!(
                "{name} {}: the archive holds chart `{chart_name}` version `{chart_version}`",
                v.version
            ),
            "the index and the archive disagree; the repository is broken",
        ));
    }
    Ok(Planned::Add(path, bytes, meta, digest))
}

/// Chart.yaml of an archive, as JSON; the archive is read with all of pitrix's checks.
fn chart_yaml(archive: &[u8]) -> Result<serde_json::Value, String> {
    let (_, files) = chart::read_archive(archive, &Limits::default()).map_err(|e| e.to_string())?;
    let text = files
        .get("Chart.yaml")
        .ok_or_else(|| "no Chart.yaml".to_string())?;
    let text = std::str::from_utf8(text).map_err(|_| "Chart.yaml is not UTF-8".to_string())?;
    let node = yaml::parse(text).map_err(|e| format!("Chart.yaml: {}", e.message))?;
    Ok(node.to_json())
}

/// `type` of an existing app.yaml (`helm` when unset); `None` when there is none.
fn existing_app_type(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let node = yaml::parse(&text).ok()?;
    Some(
        node.get("type")
            .map(|t| t.to_json().as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| "helm".into()),
    )
}

/// The icon Chart.yaml names, when it is an http(s) URL serving a png, jpeg or svg.
fn fetch_icon(
    fetcher: &Fetcher,
    meta: &serde_json::Value,
    report: &mut ImportReport,
) -> Option<(&'static str, Vec<u8>)> {
    let url = meta.get("icon")?.as_str()?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return None;
    }
    match fetcher.file(url, MAX_ICON_BYTES) {
        Ok(bytes) => match image_ext(&bytes) {
            Some(ext) => Some((ext, bytes)),
            None => {
                report.actions.push(Action::Warning(format!(
                    "icon {} is not a png, jpeg or svg image; app.yaml names no icon",
                    redact::text(url)
                )));
                None
            }
        },
        Err(e) => {
            report.actions.push(Action::Warning(format!(
                "icon not fetched ({e}); app.yaml names no icon"
            )));
            None
        }
    }
}

fn image_ext(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("png");
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return Some("jpg");
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_lowercase();
    (head.contains("<svg")).then_some("svg")
}

/// A new app.yaml from Chart.yaml's fields.
fn app_yaml(
    url: &str,
    name: &str,
    meta: &serde_json::Value,
    icon: Option<&str>,
    category: Option<&str>,
) -> String {
    let text = |key: &str| {
        meta.get(key)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut out = serde_json::Map::new();
    out.insert("displayName".into(), name.into());
    if let Some(d) = text("description") {
        out.insert("description".into(), d.clone().into());
        out.insert("abstraction".into(), first_sentence(&d).into());
    }
    if let Some(h) = text("home") {
        out.insert("home".into(), h.into());
    }
    if let Some(c) = category {
        out.insert("category".into(), c.into());
    }
    if let Some(i) = icon {
        out.insert("icon".into(), i.into());
    }
    let maintainers: Vec<serde_json::Value> = meta
        .get("maintainers")
        .and_then(|m| m.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|m| {
                    let mut o = serde_json::Map::new();
                    for key in ["name", "email", "url"] {
                        if let Some(v) = m
                            .get(key)
                            .and_then(|v| v.as_str())
                            .filter(|v| !v.is_empty())
                        {
                            o.insert(key.into(), v.into());
                        }
                    }
                    (!o.is_empty()).then_some(serde_json::Value::Object(o))
                })
                .collect()
        })
        .unwrap_or_default();
    if !maintainers.is_empty() {
        out.insert("maintainers".into(), maintainers.into());
    }
    let body = serde_yaml::to_string(&out).unwrap_or_default();
    format!(
        "# yaml-language-server: $schema=../../schema/app.schema.json\n# Imported from {} by `pitrix import`. Edit freely: import never rewrites this file.\n{body}",
        redact::text(url)
    )
}

fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    match line.find(". ") {
        Some(i) => line[..=i].to_string(),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_by_magic() {
        assert_eq!(image_ext(b"\x89PNG\r\n\x1a\nxxxx"), Some("png"));
        assert_eq!(image_ext(&[0xff, 0xd8, 0xff, 0xe0]), Some("jpg"));
        assert_eq!(image_ext(b"<?xml version='1.0'?><svg></svg>"), Some("svg"));
        assert_eq!(image_ext(b"<html>"), None);
    }

    #[test]
    fn app_yaml_from_chart_yaml() {
        let meta = serde_json::json!({
            "name": "redis", "description": "Redis. In memory.", "home": "https://redis.io",
            "maintainers": [{"name": "A", "email": ""}, {}]
        });
        let text = app_yaml("http://h/c", "redis", &meta, Some("icon.png"), None);
        assert!(text.contains("abstraction: Redis.\n"), "{text}");
        assert!(text.contains("- name: A\n"), "{text}");
        assert!(!text.contains("email"), "{text}");
        let node = yaml::parse(&text).unwrap();
        let _: crate::catalog::AppFile = yaml::from_node(&node).unwrap();
    }
}
