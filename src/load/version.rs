//! Versions of an app: chart directories (packaged here, deterministically), packaged charts
//! (stored byte for byte) and directories of plain manifests (YAML apps).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crate::catalog::{ChartMeta, Version, VersionSource};
use crate::chart::{self, ChartError, ChartFiles, Limits, PackageCache};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};

use super::{file_name, parse_yaml_node, syntax_diagnostic};
use crate::yaml;

const CHART_FILE: &str = "Chart.yaml";

/// SemVer order where both parse (newest last), name order otherwise. A leading `v` is
/// trimmed first, as KubeSphere does when it picks an app's latest version
/// (kubesphere 04a29b5, pkg/simple/client/application/helper.go:305,310:
/// `semver.Make(strings.TrimPrefix(v.Spec.VersionName, "v"))`); equal versions (`v1.0.0`,
/// `1.0.0`) keep name order.
pub fn order(a: &str, b: &str) -> Ordering {
    let parse = |s: &str| semver::Version::parse(s.strip_prefix('v').unwrap_or(s));
    match (parse(a), parse(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

fn chart_diagnostic(e: &ChartError, file: &Path) -> Diagnostic {
    let code = match e.code() {
        "chart-file-too-large" | "chart-too-large" => Code::ChartTooLarge,
        "chart-io" => Code::Io,
        _ => Code::ChartArchive,
    };
    Diagnostic::error(code, format!("{}: {e}", file.display()))
        .in_file(file)
        .hint(e.hint())
}

/// The files Helm's loader parses as YAML at load time: invalid UTF-8 in any of them and Helm
/// refuses the chart (`cannot load values.yaml: … yaml: invalid trailing UTF-8 octet`), where a
/// lossy reading would accept it. Returns whether Chart.yaml is valid UTF-8.
fn check_utf8(files: &ChartFiles, path: &Path, in_archive: bool, diags: &mut Diagnostics) -> bool {
    let mut chart_ok = true;
    // Subcharts' too, directories in charts/ at any depth: Helm loads them with the chart.
    let loaded = files
        .files
        .iter()
        .filter(|(p, _)| loaded_as_yaml(p))
        .map(|(name, bytes)| (None, name, bytes));
    // And those of vendored `charts/*.tgz` subcharts (and archives inside them), which Helm's
    // loader unpacks and loads the same way (`error unpacking subchart …: yaml: invalid
    // trailing UTF-8 octet`).
    let archives = chart::subchart_archives(files);
    // One Helm cannot unpack, or without a Chart.yaml, fails the whole chart
    // (`error unpacking subchart <name> in <chart>`), declared as a dependency or not.
    for (archive, read) in &archives {
        let why = match read {
            Err(e) => e.to_string(),
            Ok(sub) if sub.get(CHART_FILE).is_none() => "it has no Chart.yaml".to_string(),
            Ok(_) => continue,
        };
        let outermost = archive
            .find(".tgz/")
            .map_or(archive.as_str(), |at| &archive[..at + 4]);
        let (file, inside) = match in_archive {
            false => (path.join(outermost), String::new()),
            true => (path.to_path_buf(), " inside the archive".to_string()),
        };
        diags.push(
            Diagnostic::error(
                Code::ChartSubchartUnreadable,
                format!(
                    "subchart archive {archive}{inside} cannot be loaded ({why}): Helm refuses to load the chart (`error unpacking subchart`)"
                ),
            )
            .in_file(file)
            .hint("replace it with the subchart `helm dependency build` writes, or remove it from charts/"),
        );
    }
    let vendored = archives.iter().flat_map(|(archive, read)| {
        read.iter().flat_map(move |sub| {
            sub.files
                .iter()
                .filter(|(p, _)| loaded_as_yaml(p))
                .map(move |(name, bytes)| (Some(archive), name, bytes))
        })
    });
    for (archive, name, bytes) in loaded.chain(vendored) {
        let name = name.as_str();
        let Err(e) = std::str::from_utf8(bytes) else {
            continue;
        };
        chart_ok &= archive.is_some() || name != CHART_FILE;
        let offset = e.valid_up_to();
        let before = String::from_utf8_lossy(&bytes[..offset]);
        let pos = crate::diagnostics::Pos {
            line: u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX),
            column: u32::try_from(before.rsplit('\n').next().unwrap_or("").chars().count() + 1)
                .unwrap_or(u32::MAX),
        };
        let (file, pos, inside) = match (archive, in_archive) {
            (Some(archive), false) => (
                // The outermost archive: the file in the chart directory.
                path.join(
                    archive
                        .find(".tgz/")
                        .map_or(archive.as_str(), |at| &archive[..at + 4]),
                ),
                None,
                format!(" ({name} inside {archive})"),
            ),
            (Some(archive), true) => (
                path.to_path_buf(),
                None,
                format!(" ({name} inside {archive} inside the archive)"),
            ),
            (None, true) => (
                path.to_path_buf(),
                None,
                format!(" ({name} inside the archive)"),
            ),
            (None, false) => (path.join(name), Some(pos), String::new()),
        };
        diags.push(
            Diagnostic::error(
                Code::YamlSyntax,
                format!(
                    "invalid UTF-8 at byte {offset}{inside}: Helm refuses to load the chart (`yaml: invalid trailing UTF-8 octet`)"
                ),
            )
            .in_file(file)
            .at_opt(pos)
            .hint(match archive {
                None => format!("save {name} as UTF-8 (it is probably Latin-1)"),
                Some(archive) => format!(
                    "save the subchart's {name} as UTF-8 (it is probably Latin-1) and package it \
                     again (`helm package`, then replace {archive})"
                ),
            }),
        );
    }
    chart_ok
}

/// Chart.yaml, requirements.yaml and values.yaml of the chart or of a subchart directory
/// (`charts/<name>/…`, nested at any depth; Helm's loader skips names starting `_` or `.`).
fn loaded_as_yaml(path: &str) -> bool {
    let mut rest = path;
    loop {
        if matches!(rest, CHART_FILE | "requirements.yaml" | "values.yaml") {
            return true;
        }
        let Some((sub, after)) = rest.strip_prefix("charts/").and_then(|r| r.split_once('/'))
        else {
            return false;
        };
        if sub.starts_with(['_', '.']) {
            return false;
        }
        rest = after;
    }
}

/// A plain YAML number as Helm reads it into a string field (YAML → JSON number → its
/// shortest text: `1.10` → `1.1`, `1.0` → `1`), when that differs from what is written.
fn number_as_helm_reads(node: &yaml::Node) -> Option<String> {
    let read = match node.value {
        yaml::Value::Float(f) if f.is_finite() => format!("{f}"),
        yaml::Value::Int(i) => i.to_string(),
        _ => return None,
    };
    (node.raw.as_deref() != Some(read.as_str())).then_some(read)
}

/// Parses Chart.yaml out of the chart's files, if it has one.
fn chart_meta(
    files: &ChartFiles,
    chart_file: PathBuf,
    in_archive: bool,
    diags: &mut Diagnostics,
) -> Option<ChartMeta> {
    let bytes = files.files.get(CHART_FILE)?;
    let text = String::from_utf8_lossy(bytes);
    match parse_yaml_node::<ChartMeta>(&text, &chart_file) {
        Ok((mut meta, node)) => {
            meta.file = chart_file;
            meta.in_archive = in_archive;
            meta.version_as_helm_reads = node.get("version").and_then(number_as_helm_reads);
            Some(meta)
        }
        Err(mut d) => {
            if in_archive {
                d.message = format!("Chart.yaml inside the archive: {}", d.message);
                d.pos = None;
            }
            d.code = if d.code == Code::YamlSyntax {
                Code::YamlSyntax
            } else {
                Code::ChartInvalid
            };
            d.hint = d.hint.or(Some(
                "Chart.yaml needs apiVersion, name and version (Helm's chart format)".into(),
            ));
            diags.push(d);
            None
        }
    }
}

fn missing_chart_file(path: &Path) -> Diagnostic {
    Diagnostic::error(
        Code::ChartMissing,
        format!("version {} has no Chart.yaml", path.display()),
    )
    .in_file(path)
    .hint("a Helm version is a chart directory (Chart.yaml, values.yaml, templates/) or a .tgz from `helm package`")
}

pub fn load_chart_dir(
    root: &Path,
    path: &Path,
    cache: Option<&PackageCache>,
    diags: &mut Diagnostics,
) -> Option<Version> {
    let files = match chart::read_dir(&root.join(path), &Limits::default()) {
        Ok(f) => f,
        Err(ChartError::Empty) => {
            diags.push(missing_chart_file(path));
            return None;
        }
        Err(e) => {
            diags.push(chart_diagnostic(&e, path));
            return None;
        }
    };
    if !files.files.contains_key(CHART_FILE) {
        diags.push(missing_chart_file(path));
        return None;
    }
    let meta = check_utf8(&files, path, false, diags)
        .then(|| chart_meta(&files, path.join(CHART_FILE), false, diags))
        .flatten();
    super::deps::check(&files, path, false, diags);
    // The package's top directory is the chart's name, as `helm package` writes it.
    let chart_name = meta
        .as_ref()
        .and_then(|m| m.name.as_ref())
        .map(|n| n.value.clone())
        .filter(|n| is_bare_file_name(n))
        .unwrap_or_else(|| file_name(path));
    let (package, digest) = match cache {
        Some(cache) => cache.pack(&chart_name, &files),
        None => {
            let package = chart::pack(&chart_name, &files);
            let digest = chart::digest(&package);
            (package, digest)
        }
    };
    Some(Version {
        name: file_name(path),
        path: path.to_path_buf(),
        source: VersionSource::ChartDir,
        chart: meta,
        digest,
        package: package.into(),
    })
}

fn is_bare_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != ".."
}

pub fn load_chart_archive(root: &Path, path: &Path, diags: &mut Diagnostics) -> Option<Version> {
    let bytes = match crate::confine::read(root, path) {
        Ok(b) => b,
        Err(e) => {
            diags.push(super::read_error(path, &e));
            return None;
        }
    };
    let (_top, files) = match chart::read_archive(&bytes, &Limits::default()) {
        Ok(x) => x,
        Err(e) => {
            diags.push(chart_diagnostic(&e, path));
            return None;
        }
    };
    if !files.files.contains_key(CHART_FILE) {
        diags.push(missing_chart_file(path));
        return None;
    }
    let meta = check_utf8(&files, path, true, diags)
        .then(|| chart_meta(&files, path.to_path_buf(), true, diags))
        .flatten();
    super::deps::check(&files, path, true, diags);
    let name = file_name(path).trim_end_matches(".tgz").to_string();
    Some(Version {
        name,
        path: path.to_path_buf(),
        source: VersionSource::ChartArchive,
        chart: meta,
        digest: chart::digest(&bytes),
        package: bytes.into(),
    })
}

/// A YAML app's version: every `*.yaml`/`*.yml` file of the directory, in path order, each
/// document a Kubernetes object. Stored as one multi-document stream.
pub fn load_manifests(root: &Path, path: &Path, diags: &mut Diagnostics) -> Option<Version> {
    let files = match chart::read_dir(&root.join(path), &Limits::default()) {
        Ok(f) => f,
        Err(e) => {
            diags.push(chart_diagnostic(&e, path));
            return None;
        }
    };
    let mut stream = String::new();
    let mut documents = 0;
    for (name, bytes) in &files.files {
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let file = path.join(name);
        let Ok(text) = std::str::from_utf8(bytes) else {
            diags.push(
                Diagnostic::error(Code::ManifestInvalid, "manifest is not UTF-8 text")
                    .in_file(&file),
            );
            continue;
        };
        let docs = match yaml::parse_stream(text) {
            Ok(d) => d,
            Err(e) => {
                diags.push(syntax_diagnostic(&e, &file));
                continue;
            }
        };
        for doc in docs.iter().filter(|d| d.value != yaml::Value::Null) {
            documents += 1;
            check_manifest(doc, &file, diags);
        }
        if !stream.is_empty() {
            stream.push_str("---\n");
        }
        stream.push_str(text);
        if !text.ends_with('\n') {
            stream.push('\n');
        }
    }
    if documents == 0 {
        diags.push(
            Diagnostic::error(
                Code::ManifestInvalid,
                format!("YAML version {} holds no manifests", path.display()),
            )
            .in_file(path)
            .hint("a YAML app's version is a directory of Kubernetes manifests (*.yaml)"),
        );
        return None;
    }
    let package = stream.into_bytes();
    Some(Version {
        name: file_name(path),
        path: path.to_path_buf(),
        source: VersionSource::Manifests,
        chart: None,
        digest: chart::digest(&package),
        package: package.into(),
    })
}

/// Every document must decode as a Kubernetes object (reference §9).
fn check_manifest(doc: &yaml::Node, file: &Path, diags: &mut Diagnostics) {
    let yaml::Value::Map(_) = doc.value else {
        diags.push(
            Diagnostic::error(
                Code::ManifestInvalid,
                "a manifest must be a mapping (a Kubernetes object)",
            )
            .in_file(file)
            .at(doc.pos)
            .hint("each YAML document of a YAML app is one Kubernetes object"),
        );
        return;
    };
    for key in ["apiVersion", "kind"] {
        let ok = matches!(doc.get(key), Some(yaml::Node { value: yaml::Value::String(s), .. }) if !s.is_empty());
        if !ok {
            diags.push(
                Diagnostic::error(Code::ManifestInvalid, format!("manifest has no `{key}`"))
                    .in_file(file)
                    .at(doc.get(key).map(|n| n.pos).unwrap_or(doc.pos))
                    .hint("KubeSphere decodes every document as a Kubernetes object: apiVersion and kind are required"),
            );
        }
    }
    let named = doc
        .get("metadata")
        .and_then(|m| m.get("name"))
        .is_some_and(|n| matches!(&n.value, yaml::Value::String(s) if !s.is_empty()));
    if !named {
        diags.push(
            Diagnostic::error(Code::ManifestInvalid, "manifest has no `metadata.name`")
                .in_file(file)
                .at(doc.pos)
                .hint("every object needs a name; KubeSphere applies it as written"),
        );
    }
}
