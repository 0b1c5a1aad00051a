//! Stage 5, diff: what changes between two compiles of a catalog — per object added, changed
//! or removed (deletions first), with field-level changes as JSON pointers and YAML hunks; the
//! chart packages in storage ConfigMaps as file-level diffs of the charts inside; releases in
//! one line each; review-state changes; and the one error a diff can find, a package changed
//! under an existing version.
//!
//! [`diff`] works on two [`Compiled`] values, whatever their source: the base git revision
//! ([`revision`], `compile --diff`) or the live cluster. Secrets are hidden (by
//! [`crate::redact`]) while the [`Diff`] is built, so nothing rendered from it can show one.
//! Renderings: [`render::text`], [`render::markdown`] (a PR comment), [`render::json`] (the
//! stable schema published as `schema/diff.schema.json`, [`schema`]).

mod fields;
mod hunks;
mod package;
pub mod render;
pub mod revision;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::ObjectRef;
use crate::compile::{Compiled, Object, StatusIntent};
use crate::diagnostics::{Code, Diagnostic};
use crate::objects::labels;

pub use render::Format;

/// The version of the JSON format (`version` in the output). Bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// What changes from one compile of a catalog (the base) to another (the head).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "pitrix diff")]
pub struct Diff {
    /// Format version of this document (currently 1).
    pub version: u32,
    /// The catalog's name (the head side's).
    pub catalog: String,
    /// What the head is compared against, when known (a git revision, the cluster).
    pub base: Option<Side>,
    /// What is compared (the work tree, a commit).
    pub head: Option<Side>,
    /// Counts, overall and per kind.
    pub summary: Summary,
    /// Errors the diff found: a package changed under an existing version (`package-changed`).
    pub errors: Vec<DiffError>,
    /// One line per added, changed or removed ApplicationRelease.
    pub releases: Vec<ReleaseLine>,
    /// Desired review states that change (written to the status subresource on apply).
    pub states: Vec<StateChange>,
    /// Every added, changed or removed object: removals first, then changes, then additions,
    /// each in apply order.
    pub objects: Vec<ObjectChange>,
}

/// One side of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    /// How the side was named: a ref, `merge-base of HEAD and origin/main`, `work tree`.
    pub label: String,
    /// The git commit, full hex, when the side is one.
    pub commit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    /// Review states that change.
    pub states: usize,
    pub errors: usize,
    /// Per kind, in apply order; kinds without changes are left out.
    pub kinds: Vec<KindSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KindSummary {
    pub kind: String,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

impl Summary {
    /// Whether anything changes at all.
    pub fn has_changes(&self) -> bool {
        self.added + self.changed + self.removed + self.states > 0
    }
}

/// What happens to an object. Ordered as listed: removals first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Removed,
    Changed,
    Added,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Removed => "removed",
            Action::Changed => "changed",
            Action::Added => "added",
        }
    }
}

/// An error found by the diff, with the file to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiffError {
    /// A stable diagnostic code (`package-changed`).
    pub code: String,
    pub message: String,
    /// The file or directory to fix, relative to the catalog root.
    pub file: Option<String>,
    pub hint: Option<String>,
    /// The app and version concerned.
    pub app: Option<String>,
    pub version: Option<String>,
}

impl DiffError {
    /// As a diagnostic, for the usual renderings and the exit code.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let code = Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == self.code)
            .unwrap_or(Code::PackageChanged);
        let mut d = Diagnostic::error(code, self.message.clone());
        if let Some(f) = &self.file {
            d = d.in_file(f);
        }
        if let Some(h) = &self.hint {
            d = d.hint(h.clone());
        }
        d
    }
}

/// One ApplicationRelease that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseLine {
    pub action: Action,
    /// The release (and Helm release) name.
    pub name: String,
    pub cluster: String,
    pub namespace: String,
    /// The app ID.
    pub app: String,
    /// The version installed before (its name, e.g. `1.0.0`); none for an added release.
    pub from: Option<String>,
    /// The version installed after; none for a removed release.
    pub to: Option<String>,
    /// Whether the values (after merging values files) change.
    pub values_changed: bool,
}

/// A desired review state that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    /// `Application` or `ApplicationVersion`.
    pub kind: String,
    pub name: String,
    /// The app the object belongs to.
    pub app: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The review message after the change, when it has one.
    pub message: Option<String>,
}

/// One object that is added, changed or removed.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    pub action: Action,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// The catalog cluster a `standalone` executor object goes to; absent for the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The app the object belongs to (its Application, versions, packages, screenshots).
    pub app: Option<String>,
    /// Changed fields, as JSON pointers into the object's review form (release values decoded,
    /// package bytes shown as digests), secrets hidden. Empty for added and removed objects.
    pub fields: Vec<FieldChange>,
    /// A unified diff of the object's review form as YAML (the whole object, for an addition);
    /// empty for a removal and for chart packages (see `package`).
    pub yaml: String,
    /// For a storage ConfigMap holding a version's package: the files of the chart.
    pub package: Option<PackageDiff>,
}

impl ObjectChange {
    fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            cluster: self.cluster.clone(),
        }
    }
}

/// A changed field.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// JSON pointer (RFC 6901) into the object.
    pub path: String,
    /// `add`, `remove` or `replace`.
    pub op: FieldOp,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldOp {
    Add,
    Remove,
    Replace,
}

/// The package a storage ConfigMap holds, compared file by file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageDiff {
    /// `helm` (a chart .tgz), `yaml` (a YAML app's manifests) or `binary` (not readable).
    pub kind: String,
    /// The version's name (e.g. `1.2.0`).
    pub version: String,
    /// For a new version: the newest version of the app on the base side, which the files
    /// are compared with; none when the app is new.
    pub compared_with: Option<String>,
    /// `sha256:<hex>` of the stored bytes before and after.
    pub old_digest: Option<String>,
    pub new_digest: Option<String>,
    pub old_size: Option<u64>,
    pub new_size: Option<u64>,
    /// Files that differ (all files of a new app's package), by path.
    pub files: Vec<FileChange>,
    /// Why the files could not be read, if they could not.
    pub note: Option<String>,
}

/// One file of a chart that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    pub path: String,
    pub action: Action,
    /// Not text: only sizes and digests are shown.
    pub binary: bool,
    pub old_size: Option<u64>,
    pub new_size: Option<u64>,
    /// A unified diff of the text, secrets hidden; none for binary files and for the files of
    /// a package with nothing to compare with.
    pub hunks: Option<String>,
}

impl Diff {
    /// Whether anything changes (what `--exit-code` reports).
    pub fn has_changes(&self) -> bool {
        self.summary.has_changes()
    }

    /// The `package-changed` errors as diagnostics.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.errors.iter().map(DiffError::to_diagnostic).collect()
    }
}

/// The JSON Schema of [`render::json`]'s output, as published in `schema/diff.schema.json`.
pub fn schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Diff>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// What each side knows about versions: version ID → (app, version name, app type).
#[derive(Default)]
struct Versions<'a> {
    by_id: HashMap<&'a str, VersionInfo<'a>>,
}

#[derive(Clone, Copy)]
struct VersionInfo<'a> {
    app: &'a str,
    name: &'a str,
    app_type: &'a str,
}

impl<'a> Versions<'a> {
    fn of(compiled: &'a Compiled) -> Self {
        let mut by_id = HashMap::new();
        for o in &compiled.objects {
            // 3.x's versions are charts, named by their spec.
            if let Object::HelmApplicationVersion(v) = o {
                by_id.insert(
                    o.name(),
                    VersionInfo {
                        app: label(o, labels::APP_ID).unwrap_or_default(),
                        name: v.spec.metadata.version.as_str(),
                        app_type: "helm",
                    },
                );
            }
            if let Object::ApplicationVersion(v) = o {
                let app = v
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::APP_ID))
                    .map(String::as_str)
                    .unwrap_or_default();
                by_id.insert(
                    o.name(),
                    VersionInfo {
                        app,
                        name: v.spec.version_name.as_str(),
                        app_type: v.spec.app_type.as_deref().unwrap_or("helm"),
                    },
                );
            }
        }
        Versions { by_id }
    }

    fn get(&self, id: &str) -> Option<VersionInfo<'a>> {
        self.by_id.get(id).copied()
    }

    /// The versions of `app`, newest last (SemVer where it parses).
    fn of_app(&self, app: &str) -> Vec<(&'a str, VersionInfo<'a>)> {
        let mut list: Vec<_> = self
            .by_id
            .iter()
            .filter(|(_, v)| v.app == app)
            .map(|(id, v)| (*id, *v))
            .collect();
        list.sort_by(|a, b| version_order(a.1.name, b.1.name));
        list
    }
}

/// As the catalog orders versions (a leading `v` trimmed, as KubeSphere does).
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| semver::Version::parse(s.strip_prefix('v').unwrap_or(s));
    match (parse(a), parse(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

fn label<'a>(o: &'a Object, key: &str) -> Option<&'a str> {
    o.metadata()
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// Compares two compiles. Pure and deterministic; secrets are hidden in everything it returns.
pub fn diff(old: &Compiled, new: &Compiled) -> Diff {
    let old_index: BTreeMap<ObjectRef, &Object> =
        old.objects.iter().map(|o| (o.object_ref(), o)).collect();
    let new_index: BTreeMap<ObjectRef, &Object> =
        new.objects.iter().map(|o| (o.object_ref(), o)).collect();
    let old_versions = Versions::of(old);
    let new_versions = Versions::of(new);
    let apps: BTreeSet<&str> = old
        .objects
        .iter()
        .chain(&new.objects)
        .filter(|o| matches!(o, Object::Application(_) | Object::HelmApplication(_)))
        .map(Object::name)
        .collect();
    // Screenshot (attachment) ID → its app, whatever the ID looks like (app.yaml may name one).
    let attachments: BTreeMap<&str, &str> = old
        .objects
        .iter()
        .chain(&new.objects)
        .filter_map(|o| match o {
            Object::Application(a) => Some((&a.spec.attachments, o.name())),
            _ => None,
        })
        .flat_map(|(ids, app)| ids.iter().map(move |id| (id.as_str(), app)))
        .collect();
    let old_packages = package::packages(&old.objects);
    let new_packages = package::packages(&new.objects);
    let mut charts = package::ChartCache::default();

    let refs: BTreeSet<&ObjectRef> = old_index.keys().chain(new_index.keys()).collect();
    let mut objects = Vec::new();
    let mut releases = Vec::new();
    let mut errors = Vec::new();
    for r in refs {
        let (o, n) = (old_index.get(r).copied(), new_index.get(r).copied());
        let action = match (o, n) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => Action::Changed,
            (Some(_), None) => Action::Removed,
            (None, Some(_)) => Action::Added,
            (None, None) => continue,
        };
        let any = n.or(o).expect("one side has the object");
        let id = package::stored_id(any);
        let version = new_versions.get(id).or_else(|| old_versions.get(id));
        let app = match any {
            Object::Application(_) => Some(any.name().to_string()),
            // The App Store copy belongs to its app.
            Object::HelmApplication(_) => Some(
                any.name()
                    .strip_suffix(crate::objects::v1alpha1::STORE_SUFFIX)
                    .unwrap_or(any.name())
                    .to_string(),
            ),
            Object::ApplicationVersion(_) | Object::HelmApplicationVersion(_) => {
                label(any, labels::APP_ID).map(str::to_string)
            }
            Object::Stored(_) | Object::ConfigMap(_) => version
                .map(|v| v.app.to_string())
                .or_else(|| attachments.get(any.name()).map(|a| a.to_string()))
                .or_else(|| {
                    // Screenshots no app names any more: `<app>-att-<5>`.
                    any.name()
                        .rsplit_once("-att-")
                        .map(|(a, _)| a)
                        .filter(|a| apps.contains(a))
                        .map(str::to_string)
                }),
            _ => None,
        };

        // Release values are checked against the writeOnly paths of the chart they install.
        let write_only = match any {
            Object::ApplicationRelease(_) => {
                let mut wo = crate::redact::WriteOnly::default();
                let sides = [
                    (0, o, &old_versions, &old_packages),
                    (1, n, &new_versions, &new_packages),
                ];
                for (side, obj, versions, packages) in sides {
                    if let Some(obj) = obj
                        && let Some(id) = label(obj, labels::APP_VERSION_ID)
                    {
                        wo = wo.union(&charts.write_only(side, id, versions, packages));
                    }
                }
                wo
            }
            _ => crate::redact::WriteOnly::default(),
        };
        let (old_view, new_view) = view::pair(o, n, &write_only);

        let mut change = ObjectChange {
            action,
            api_version: any.api_version().to_string(),
            kind: any.kind().to_string(),
            namespace: any.namespace().map(str::to_string),
            name: any.name().to_string(),
            cluster: r.cluster.clone(),
            app,
            fields: Vec::new(),
            yaml: String::new(),
            package: None,
        };
        if action == Action::Changed {
            change.fields = fields::changes(
                old_view.as_ref().unwrap_or(&Value::Null),
                new_view.as_ref().unwrap_or(&Value::Null),
            );
        }
        let is_package =
            matches!(any, Object::ConfigMap(_) | Object::Stored(_)) && version.is_some();
        if !is_package {
            change.yaml = match action {
                Action::Removed => String::new(),
                _ => hunks::unified(
                    &view::yaml(old_view.as_ref()),
                    &view::yaml(new_view.as_ref()),
                ),
            };
        }
        if let (true, Some(v)) = (is_package, version) {
            // A new version is compared with the one it follows on the base side: the newest
            // older version (a backport follows its own line), else the newest.
            let compared_with = match action {
                Action::Added => {
                    let base: Vec<_> = old_versions
                        .of_app(v.app)
                        .into_iter()
                        .filter(|(base_id, _)| *base_id != id)
                        .collect();
                    base.iter()
                        .rev()
                        .find(|(_, info)| version_order(info.name, v.name).is_lt())
                        .or(base.last())
                        .map(|(id, info)| (*id, info.name))
                }
                _ => None,
            };
            let pkg = package::compare(o, n, v, compared_with, &old_packages);
            // Bytes that differ over the same files are a package of an earlier pack format
            // (pitrix's own, or Helm's): the same version, not a changed one.
            let files_differ =
                pkg.old_digest != pkg.new_digest && !package::same_chart_on_both_sides(o, n);
            if action == Action::Changed && files_differ && old_versions.get(any.name()).is_some() {
                errors.push(package::changed_error(v, any.name(), &pkg));
            }
            change.package = Some(pkg);
        }
        if matches!(any, Object::ApplicationRelease(_) | Object::HelmRelease(_)) {
            releases.push(release_line(action, o, n, &old_versions, &new_versions));
        }
        objects.push(change);
    }
    objects.sort_by(|a, b| {
        let key = |c: &ObjectChange| {
            let stage = new_index
                .get(&c.object_ref())
                .or_else(|| old_index.get(&c.object_ref()))
                .map(|o| o.stage())
                .unwrap_or(u8::MAX);
            (
                c.action,
                stage,
                c.cluster.clone(),
                c.namespace.clone(),
                c.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    releases.sort_by(|a, b| (a.action, &a.name).cmp(&(b.action, &b.name)));

    let states = state_changes(&old.status, &new.status, &old_versions, &new_versions);
    let summary = summarise(&objects, &states, &errors);
    Diff {
        version: FORMAT_VERSION,
        catalog: if new.catalog.is_empty() {
            old.catalog.clone()
        } else {
            new.catalog.clone()
        },
        base: None,
        head: None,
        summary,
        errors,
        releases,
        states,
        objects,
    }
}

fn release_line(
    action: Action,
    old: Option<&Object>,
    new: Option<&Object>,
    old_versions: &Versions,
    new_versions: &Versions,
) -> ReleaseLine {
    let any = new.or(old).expect("one side has the release");
    let version_of = |o: Option<&Object>, versions: &Versions| {
        o.and_then(|o| {
            label(o, labels::APP_VERSION_ID)
                .or_else(|| label(o, crate::objects::v1alpha1::APP_VERSION_ID))
        })
        .map(|id| {
            versions
                .get(id)
                .map(|v| v.name.to_string())
                .unwrap_or_else(|| id.to_string())
        })
    };
    let values = |o: Option<&Object>| match o {
        Some(Object::ApplicationRelease(r)) => r.spec.values.as_ref().map(|v| v.0.clone()),
        Some(Object::HelmRelease(r)) => r.spec.values.as_ref().map(|v| v.0.clone()),
        _ => None,
    };
    ReleaseLine {
        action,
        // 3.x's object name is an id; the release is its spec's name.
        name: match any {
            Object::HelmRelease(r) => r.spec.name.clone(),
            _ => any.name().to_string(),
        },
        cluster: label(any, labels::CLUSTER).unwrap_or_default().to_string(),
        namespace: label(any, labels::NAMESPACE)
            .unwrap_or_default()
            .to_string(),
        app: label(any, labels::APP_ID).unwrap_or_default().to_string(),
        from: version_of(old, old_versions),
        to: version_of(new, new_versions),
        values_changed: action == Action::Changed && values(old) != values(new),
    }
}

fn state_changes(
    old: &[StatusIntent],
    new: &[StatusIntent],
    old_versions: &Versions,
    new_versions: &Versions,
) -> Vec<StateChange> {
    let key = |s: &StatusIntent| (s.order(), s.kind, s.name.clone());
    let old_map: BTreeMap<_, &StatusIntent> = old.iter().map(|s| (key(s), s)).collect();
    let new_map: BTreeMap<_, &StatusIntent> = new.iter().map(|s| (key(s), s)).collect();
    let keys: BTreeSet<_> = old_map.keys().chain(new_map.keys()).cloned().collect();
    let mut out = Vec::new();
    for k in keys {
        let (o, n) = (old_map.get(&k), new_map.get(&k));
        if let (Some(a), Some(b)) = (o, n)
            && a.state == b.state
            && a.message == b.message
        {
            continue;
        }
        let any = n.or(o).expect("one side has the state");
        let app = match any.kind {
            "Application" => Some(any.name.clone()),
            _ => new_versions
                .get(&any.name)
                .or_else(|| old_versions.get(&any.name))
                .map(|v| v.app.to_string()),
        };
        out.push(StateChange {
            kind: any.kind.to_string(),
            name: any.name.clone(),
            app,
            from: o.map(|s| s.state.as_str().to_string()),
            to: n.map(|s| s.state.as_str().to_string()),
            message: n.and_then(|s| s.message.clone()),
        });
    }
    out
}

fn summarise(objects: &[ObjectChange], states: &[StateChange], errors: &[DiffError]) -> Summary {
    let mut summary = Summary {
        states: states.len(),
        errors: errors.len(),
        ..Summary::default()
    };
    // Apply order of kinds, as in the output.
    const KINDS: &[&str] = &[
        "Namespace",
        "Category",
        "Repo",
        "ConfigMap",
        "Application",
        "ApplicationVersion",
        "ApplicationRelease",
    ];
    let mut per_kind: BTreeMap<usize, KindSummary> = BTreeMap::new();
    for c in objects {
        let order = KINDS
            .iter()
            .position(|k| *k == c.kind)
            .unwrap_or(KINDS.len());
        let entry = per_kind.entry(order).or_insert_with(|| KindSummary {
            kind: c.kind.clone(),
            added: 0,
            changed: 0,
            removed: 0,
        });
        let (total, kind) = match c.action {
            Action::Added => (&mut summary.added, &mut entry.added),
            Action::Changed => (&mut summary.changed, &mut entry.changed),
            Action::Removed => (&mut summary.removed, &mut entry.removed),
        };
        *total += 1;
        *kind += 1;
    }
    summary.kinds = per_kind.into_values().collect();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(cluster: &str) -> Object {
        let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "helm-install-web",
                "namespace": "shop",
                "annotations": {labels::PITRIX_CLUSTER: cluster},
            },
        }))
        .unwrap();
        Object::Job(Box::new(job))
    }

    fn compiled(objects: Vec<Object>) -> Compiled {
        Compiled {
            catalog: "c".into(),
            objects,
            status: Vec::new(),
            standalone: None,
            environment: None,
            contexts: Default::default(),
            status_image: None,
            object_store: None,
        }
    }

    /// The scaffolded catalog compiled, and the same as pack format v2 (level 1) stored it,
    /// with `values.yaml` of version `hello-0.1.0` changed when `change` is set.
    fn stored_by_v2(change: bool) -> (Compiled, Compiled) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("catalog");
        crate::scaffold::new_catalog(&root).unwrap();
        let (new, _) = crate::pipeline::build(&root).unwrap();
        let mut old = new.clone();
        let mut digests = BTreeMap::new();
        for o in &mut old.objects {
            if let Object::ConfigMap(cm) = o
                && let Some(data) = cm.binary_data.as_mut()
                && let Some(bytes) = data.get_mut(labels::STORAGE_KEY)
                && let Ok((name, mut files)) =
                    crate::chart::read_archive(&bytes.0, &Default::default())
            {
                if change && cm.metadata.name.as_deref() == Some("hello-0.1.0") {
                    files
                        .insert("values.yaml", b"changed: true\n".to_vec())
                        .unwrap();
                }
                bytes.0 = crate::chart::pack_with_level(&name, &files, 1);
                let id = cm.metadata.name.clone().unwrap_or_default();
                digests.insert(id, crate::chart::digest(&bytes.0));
            }
        }
        for o in &mut old.objects {
            if let Object::ApplicationVersion(v) = o
                && let Some(d) = digests.get(v.metadata.name.as_deref().unwrap_or_default())
            {
                v.spec.digest = Some(d.clone());
            }
        }
        assert!(!digests.is_empty());
        (old, new)
    }

    #[test]
    fn a_package_of_an_earlier_pack_format_is_no_package_change() {
        let (old, new) = stored_by_v2(false);
        let d = diff(&old, &new);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let (old, new) = stored_by_v2(true);
        let d = diff(&old, &new);
        assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
        assert_eq!(d.errors[0].code, "package-changed");
        assert!(
            d.errors[0].message.contains("values.yaml differ"),
            "{:?}",
            d.errors
        );
    }

    #[test]
    fn a_member_cluster_s_objects_are_told_apart_and_named() {
        let d = diff(&compiled(vec![job("east")]), &compiled(vec![job("west")]));
        let changes: Vec<(Action, Option<&str>)> = d
            .objects
            .iter()
            .map(|c| (c.action, c.cluster.as_deref()))
            .collect();
        assert_eq!(
            changes,
            [
                (Action::Removed, Some("east")),
                (Action::Added, Some("west"))
            ]
        );
        let text = render::render(&d, render::Format::Text, &render::Options::default());
        assert!(
            text.contains("Job shop/helm-install-web (cluster west)"),
            "{text}"
        );
        assert!(
            text.contains("Job shop/helm-install-web (cluster east)"),
            "{text}"
        );

        // The host's objects carry no cluster, annotated or not.
        let host = diff(
            &compiled(vec![]),
            &compiled(vec![job(labels::DEFAULT_CLUSTER)]),
        );
        assert_eq!(host.objects[0].cluster, None);
    }
}
