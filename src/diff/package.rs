//! Packages in storage ConfigMaps, compared as the charts inside — file by file, text as
//! hunks, secrets hidden — never as base64.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Action, DiffError, FileChange, PackageDiff, VersionInfo, Versions, hunks, view};
use crate::chart::{self, Limits};
use crate::compile::Object;
use crate::objects::labels;
use crate::redact::{self, WriteOnly};

/// The package a storage ConfigMap or an S3 object holds.
pub fn package_bytes(o: &Object) -> Option<&[u8]> {
    match o {
        Object::Stored(s) => Some(&s.bytes),
        Object::ConfigMap(cm) => cm
            .binary_data
            .as_ref()
            .and_then(|d| d.get(labels::STORAGE_KEY))
            .map(|b| b.0.as_slice()),
        _ => None,
    }
}

/// Whether both sides' packages hold the same chart, whatever their bytes (see
/// [`chart::same_chart`]).
pub fn same_chart_on_both_sides(old: Option<&Object>, new: Option<&Object>) -> bool {
    match (old.and_then(package_bytes), new.and_then(package_bytes)) {
        (Some(a), Some(b)) => chart::same_chart(a, b),
        _ => false,
    }
}

/// Stored packages by version ID.
pub type Packages<'a> = HashMap<&'a str, &'a [u8]>;

pub fn packages<'a>(objects: &'a [Object]) -> Packages<'a> {
    objects
        .iter()
        .filter_map(|o| Some((stored_id(o), package_bytes(o)?)))
        .collect()
}

/// The version (or attachment) ID a stored object is kept under: a storage ConfigMap's name,
/// an S3 key's last segment (KubeSphere 3.x keys a package `<workspace>/<version ID>`).
pub fn stored_id(o: &Object) -> &str {
    match o {
        Object::Stored(_) => o.name().rsplit('/').next().unwrap_or_default(),
        _ => o.name(),
    }
}

/// A package's files by path: a chart's (Helm), or the one manifest stream (YAML apps).
fn unpack(bytes: &[u8], app_type: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    if app_type == "yaml" {
        return Ok(BTreeMap::from([(
            "manifests.yaml".to_string(),
            bytes.to_vec(),
        )]));
    }
    chart::read_archive(bytes, &Limits::default())
        .map(|(_, files)| files.files)
        .map_err(|e| format!("the package cannot be read as a chart: {e}"))
}

fn schema_write_only(files: &BTreeMap<String, Vec<u8>>) -> WriteOnly {
    files
        .get("values.schema.json")
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .map(|s| WriteOnly::from_schema(&s))
        .unwrap_or_default()
}

/// The writeOnly paths of versions' charts, read once per package.
#[derive(Default)]
pub struct ChartCache {
    seen: HashMap<(usize, String), WriteOnly>,
}

impl ChartCache {
    /// The writeOnly value paths of the chart of version `id` on one side (`side` tells the
    /// sides apart in the cache).
    pub fn write_only(
        &mut self,
        side: usize,
        id: &str,
        versions: &Versions,
        packages: &Packages,
    ) -> WriteOnly {
        self.seen
            .entry((side, id.to_string()))
            .or_insert_with(|| {
                let (Some(info), Some(bytes)) = (versions.get(id), packages.get(id)) else {
                    return WriteOnly::default();
                };
                unpack(bytes, info.app_type)
                    .map(|files| schema_write_only(&files))
                    .unwrap_or_default()
            })
            .clone()
    }
}

fn is_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()
}

/// A file's text with its secrets hidden ([`redact::chart_file_text`]: a chart's values files
/// hide their secrets, `values.yaml` its writeOnly paths too; templates and other files show
/// as they are but for Secret manifests). A YAML app's manifests are literal data: all hidden.
fn redacted(path: &str, bytes: &[u8], write_only: &WriteOnly, app_type: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    let is_values = path == "values.yaml";
    let write_only = |p: &redact::Path| is_values && write_only.matches(p);
    match app_type {
        "yaml" => redact::yaml_text(&text, &write_only),
        _ => redact::chart_file_text(path, &text, &write_only),
    }
}

/// Compares the package of `old` (or, for a new version, of the version it is
/// `compared_with` on the base side) with the package of `new`.
pub fn compare(
    old: Option<&Object>,
    new: Option<&Object>,
    version: VersionInfo,
    compared_with: Option<(&str, &str)>,
    old_packages: &Packages,
) -> PackageDiff {
    let old_bytes = old
        .and_then(package_bytes)
        .or_else(|| compared_with.and_then(|(id, _)| old_packages.get(id).copied()));
    let new_bytes = new.and_then(package_bytes);
    let own = |b: Option<&[u8]>| b.map(view::digest);
    let mut pkg = PackageDiff {
        kind: version.app_type.to_string(),
        version: version.name.to_string(),
        compared_with: compared_with.map(|(_, name)| name.to_string()),
        old_digest: own(old.and_then(package_bytes)),
        new_digest: own(new_bytes),
        old_size: old.and_then(package_bytes).map(|b| b.len() as u64),
        new_size: new_bytes.map(|b| b.len() as u64),
        files: Vec::new(),
        note: None,
    };
    let Some(new_bytes) = new_bytes else {
        // A removed package: the version goes, nothing to show file by file.
        return pkg;
    };
    if old_bytes == Some(new_bytes) {
        // Only the ConfigMap's metadata changed.
        return pkg;
    }
    let unpacked = |b: &[u8]| unpack(b, version.app_type);
    let new_files = match unpacked(new_bytes) {
        Ok(f) => f,
        Err(e) => {
            pkg.kind = "binary".into();
            pkg.note = Some(e);
            return pkg;
        }
    };
    let old_files = match old_bytes.map(unpacked) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            pkg.note = Some(format!("base side: {e}"));
            None
        }
        None => None,
    };
    let write_only = schema_write_only(&new_files).union(
        &old_files
            .as_ref()
            .map(schema_write_only)
            .unwrap_or_default(),
    );
    let Some(old_files) = old_files else {
        // A new app: list its files, nothing to compare them with.
        pkg.files = new_files
            .iter()
            .map(|(path, bytes)| FileChange {
                path: path.clone(),
                action: Action::Added,
                binary: !is_text(bytes),
                old_size: None,
                new_size: Some(bytes.len() as u64),
                hunks: None,
            })
            .collect();
        return pkg;
    };
    let paths: BTreeSet<&String> = old_files.keys().chain(new_files.keys()).collect();
    for path in paths {
        let (o, n) = (old_files.get(path), new_files.get(path));
        let action = match (o, n) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => Action::Changed,
            (Some(_), None) => Action::Removed,
            (None, Some(_)) => Action::Added,
            (None, None) => continue,
        };
        let binary = o.into_iter().chain(n).any(|b| !is_text(b));
        let hunks = (!binary).then(|| {
            let text = |b: Option<&Vec<u8>>| {
                b.map(|b| redacted(path, b, &write_only, version.app_type))
                    .unwrap_or_default()
            };
            hunks::unified(&text(o), &text(n))
        });
        pkg.files.push(FileChange {
            path: path.clone(),
            action,
            binary,
            old_size: o.map(|b| b.len() as u64),
            new_size: n.map(|b| b.len() as u64),
            hunks,
        });
    }
    pkg
}

/// The next patch version after `name`, spelled as `name` is (a leading `v` kept:
/// cert-manager's `v1.19.6` gives `v1.19.7`).
fn bump(name: &str) -> Option<String> {
    let (prefix, bare) = match name.strip_prefix('v') {
        Some(rest) => ("v", rest),
        None => ("", name),
    };
    let mut v = semver::Version::parse(bare).ok()?;
    v.patch += 1;
    v.pre = semver::Prerelease::EMPTY;
    v.build = semver::BuildMetadata::EMPTY;
    Some(format!("{prefix}{v}"))
}

#[cfg(test)]
#[test]
fn bump_keeps_a_leading_v() {
    assert_eq!(bump("1.2.3-rc.1").as_deref(), Some("1.2.4"));
    assert_eq!(bump("v1.19.6").as_deref(), Some("v1.19.7"));
    assert_eq!(bump("latest"), None);
}

/// The error for a package that changed under a version the base side already stores.
pub fn changed_error(version: VersionInfo, id: &str, pkg: &PackageDiff) -> DiffError {
    let what = if pkg.files.is_empty() {
        "its files are the same, but the stored bytes differ (re-packed?)".to_string()
    } else {
        let names: Vec<_> = pkg
            .files
            .iter()
            .map(|f| super::render::escape_controls(&f.path))
            .take(5)
            .collect();
        let more = pkg.files.len().saturating_sub(names.len());
        format!(
            "{}{} differ",
            names.join(", "),
            if more > 0 {
                format!(" and {more} more file(s)")
            } else {
                String::new()
            }
        )
    };
    let bump = bump(version.name)
        .map(|v| format!(" (e.g. {v})"))
        .unwrap_or_default();
    DiffError {
        code: crate::diagnostics::Code::PackageChanged
            .as_str()
            .to_string(),
        message: redact::text(&format!(
            "version {} of app `{}` ({id}) changes its package: {what}; KubeSphere never overwrites a stored package",
            version.name, version.app
        )),
        file: None,
        hint: Some(format!(
            "keep version {} as it is on the base side and publish the change as a new version{bump}: bump the chart's version and file it under the new version",
            version.name
        )),
        app: Some(version.app.to_string()),
        version: Some(version.name.to_string()),
    }
}
