//! The catalog model: what the loader reads and every later stage works on. The file types
//! (`*File`) are the on-disk contract — their JSON Schemas are published in `schema/` — and
//! keep the position of every value for diagnostics.

mod files;
mod package;
mod settings;

use std::path::PathBuf;

pub use files::{
    AppFile, AppType, CategoryFile, Credentials, Maintainer, ReleaseFile, RepoFile,
    ScreenshotEntry, VersionIntent,
};
pub use package::{Package, spool_error};
pub use settings::{
    CatalogSettings, ClusterSettings, EnvSettings, S3Location, S3Settings, Settings,
    StorageSettings, Target,
};

use crate::chart;
use crate::objects::ReviewState;
use crate::yaml::Spanned;

/// The catalog's settings file, at its root (and how its root is recognised).
pub const SETTINGS_FILE: &str = "pitrix.toml";
/// The file that describes an app, in its directory under `apps/`.
pub const APP_FILE: &str = "app.yaml";

/// A whole catalog, sorted by name everywhere so every stage is deterministic.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub settings: Settings,
    /// The text of pitrix.toml, to place diagnostics about its values.
    pub settings_text: String,
    /// The environment the catalog was loaded for (`--env`).
    pub environment: Option<String>,
    /// The catalog's own templates (`templates/*.j2`), overriding the built-in ones by name:
    /// name → (file, text).
    pub templates: std::collections::BTreeMap<String, (PathBuf, String)>,
    pub categories: Vec<Category>,
    pub repos: Vec<Repo>,
    pub apps: Vec<App>,
    pub releases: Vec<Release>,
    /// Directories of apps/ that did not load (no app.yaml, or one that does not parse): their
    /// error is reported once, and nothing that names them is reported again.
    pub unloaded_apps: std::collections::BTreeSet<String>,
}

impl Catalog {
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.name == name)
    }

    pub fn category(&self, name: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.name == name)
    }

    /// The workspace an object falls in when its file names none: the environment's, else
    /// the catalog's.
    pub fn default_workspace(&self) -> &str {
        self.environment
            .as_ref()
            .and_then(|e| self.settings.env.get(e))
            .and_then(|e| e.workspace.as_ref())
            .map(|w| w.get_ref().as_str())
            .unwrap_or(self.settings.workspace())
    }

    /// The workspace of an app, repo or release: the one its file names, else the default.
    pub fn workspace_of<'a>(&'a self, named: &'a Option<Spanned<String>>) -> &'a str {
        named
            .as_ref()
            .map(|w| w.value.as_str())
            .unwrap_or_else(|| self.default_workspace())
    }

    /// The kubeconfig context of each catalog cluster that names one: `[clusters.<name>]`,
    /// with the environment's `[env.<env>.clusters.<name>]` over it.
    pub fn cluster_contexts(&self) -> std::collections::BTreeMap<String, String> {
        let env = self
            .environment
            .as_ref()
            .and_then(|e| self.settings.env.get(e));
        let mut contexts = std::collections::BTreeMap::new();
        for clusters in std::iter::once(&self.settings.clusters).chain(env.map(|e| &e.clusters)) {
            for (name, cluster) in clusters {
                if let Some(context) = &cluster.context {
                    contexts.insert(name.clone(), context.clone());
                }
            }
        }
        contexts
    }
}

#[derive(Debug, Clone)]
pub struct Category {
    pub name: String,
    /// Relative to the catalog root.
    pub file: PathBuf,
    pub spec: CategoryFile,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub name: String,
    pub file: PathBuf,
    pub spec: RepoFile,
}

#[derive(Debug, Clone)]
pub struct App {
    /// The app ID: the directory name.
    pub name: String,
    /// The app directory, relative to the catalog root.
    pub dir: PathBuf,
    /// `app.yaml`, relative to the catalog root.
    pub file: PathBuf,
    pub spec: AppFile,
    /// The icon file named by app.yaml, if it could be read.
    pub icon: Option<Asset>,
    /// The screenshots named by app.yaml that could be read, in order.
    pub screenshots: Vec<Screenshot>,
    /// Sorted by SemVer where versions parse, by name otherwise.
    pub versions: Vec<Version>,
    /// Versions whose directory or archive did not load (no Chart.yaml, a broken archive):
    /// their error is reported once, and nothing that names them is reported again.
    pub unloaded_versions: std::collections::BTreeSet<String>,
}

impl App {
    pub fn app_type(&self) -> AppType {
        self.spec
            .app_type
            .as_ref()
            .map(|t| t.value)
            .unwrap_or_default()
    }

    pub fn version(&self, name: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// The desired review state of a version: declared in app.yaml, `active` by default.
    pub fn version_state(&self, version: &str) -> ReviewState {
        self.spec
            .versions
            .get(version)
            .and_then(|i| i.state.as_ref())
            .map(|s| s.value)
            .unwrap_or(ReviewState::Active)
    }

    pub fn state(&self) -> ReviewState {
        self.spec
            .state
            .as_ref()
            .map(|s| s.value)
            .unwrap_or(ReviewState::Active)
    }
}

/// How a version is given in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSource {
    /// `apps/<app>/<version>/` holding a chart.
    ChartDir,
    /// `apps/<app>/<version>.tgz`, stored byte for byte.
    ChartArchive,
    /// `apps/<app>/<version>/` holding plain manifests (YAML apps).
    Manifests,
}

#[derive(Debug, Clone)]
pub struct Version {
    /// The version as filed: directory name or file name without `.tgz`.
    pub name: String,
    /// The directory or archive, relative to the catalog root.
    pub path: PathBuf,
    pub source: VersionSource,
    /// Chart.yaml, for chart versions that have a readable one.
    pub chart: Option<ChartMeta>,
    /// The bytes KubeSphere stores: the chart package, or the manifests as one YAML stream.
    pub package: Package,
    /// sha256 hex of `package` (Helm's digest for charts).
    pub digest: String,
}

impl Version {
    /// The chart's files, unpacked from the package: they are not kept in memory once
    /// packaged, and the few later stages that read them (values checks, publish, the site)
    /// read them for a handful of versions. `None` for YAML apps, which have no chart.
    pub fn chart_files(&self) -> Option<chart::ChartFiles> {
        if self.source == VersionSource::Manifests {
            return None;
        }
        let bytes = self.package.bytes().ok()?;
        let (_, files) = chart::read_archive(&bytes, &chart::Limits::default()).ok()?;
        Some(files)
    }

    /// One file of [`chart_files`](Self::chart_files).
    pub fn chart_file(&self, path: &str) -> Option<Vec<u8>> {
        self.chart_files()?.files.remove(path)
    }
}

/// The fields of Chart.yaml that pitrix reads. Helm ignores unknown keys here, so do we.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMeta {
    pub api_version: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub version: Option<Spanned<String>>,
    pub app_version: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub home: Option<Spanned<String>>,
    pub icon: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub chart_type: Option<Spanned<String>>,
    #[serde(default)]
    pub maintainers: Vec<Maintainer>,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub deprecated: Option<bool>,
    /// Where Chart.yaml is, relative to the catalog root (inside an archive: the archive).
    #[serde(skip)]
    pub file: PathBuf,
    /// Positions are meaningful only for Chart.yaml files on disk.
    #[serde(skip)]
    pub in_archive: bool,
    /// How Helm reads `version` when it is written as a YAML number whose text Helm does not
    /// keep (`1.10` reads as `1.1`); `None` when Helm reads it as written.
    #[serde(skip)]
    pub version_as_helm_reads: Option<String>,
}

/// A file of the catalog read as bytes (icons, screenshots).
#[derive(Debug, Clone)]
pub struct Asset {
    /// Relative to the catalog root.
    pub file: PathBuf,
    pub bytes: Vec<u8>,
}

/// A screenshot of an app: its file, read, and the attachment ID app.yaml gives it.
#[derive(Debug, Clone)]
pub struct Screenshot {
    pub asset: Asset,
    /// Its entry in app.yaml.
    pub entry: ScreenshotEntry,
}

impl Screenshot {
    /// The attachment ID it is stored under: the one app.yaml names, else one derived from
    /// the image (`derive`, the target's rule), so that it is stable.
    pub fn id(&self, derive: impl FnOnce(&[u8]) -> String) -> String {
        match &self.entry.id {
            Some(id) => id.value.clone(),
            None => derive(&self.asset.bytes),
        }
    }
}

impl std::ops::Deref for Screenshot {
    type Target = Asset;
    fn deref(&self) -> &Asset {
        &self.asset
    }
}

/// A values file a release names, parsed.
#[derive(Debug, Clone)]
pub struct ValuesFile {
    /// Relative to the catalog root.
    pub file: PathBuf,
    pub values: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct Release {
    /// The release name: the file name. Also the Helm release name.
    pub name: String,
    pub cluster: String,
    pub namespace: String,
    pub file: PathBuf,
    pub spec: ReleaseFile,
    /// The values files of `spec.valuesFiles` that could be read (and rendered), in order.
    pub values_files: Vec<ValuesFile>,
    /// `spec.values`, its templates rendered.
    pub values: serde_json::Map<String, serde_json::Value>,
    /// JSON pointer of a value → the file and position that set it last.
    pub origins: std::collections::BTreeMap<String, (PathBuf, crate::diagnostics::Pos)>,
}

/// What a release installs: an app of the catalog, or a chart of a synced repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRef<'a> {
    Catalog(&'a str),
    Repo { repo: &'a str, chart: &'a str },
}

/// Deep merge as Helm layers values: mappings merge key by key, anything else replaces.
pub fn merge_values(
    base: &mut serde_json::Map<String, serde_json::Value>,
    overlay: &serde_json::Map<String, serde_json::Value>,
) {
    for (key, value) in overlay {
        match (base.get_mut(key), value) {
            (Some(serde_json::Value::Object(b)), serde_json::Value::Object(o)) => {
                merge_values(b, o)
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

impl Release {
    /// The release's own values: values files in order, then inline values (not the chart's
    /// defaults, which Helm adds at install time).
    pub fn merged_values(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut merged = serde_json::Map::new();
        for file in &self.values_files {
            merge_values(&mut merged, &file.values);
        }
        merge_values(&mut merged, &self.values);
        merged
    }

    pub fn app_ref(&self) -> AppRef<'_> {
        match self.spec.app.value.split_once('/') {
            Some((repo, chart)) => AppRef::Repo { repo, chart },
            None => AppRef::Catalog(&self.spec.app.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merge_values;
    use serde_json::{Value, json};

    #[test]
    fn merge_is_deep_and_later_wins() {
        let mut base = json!({"a": {"b": 1, "c": 2}, "d": [1]})
            .as_object()
            .unwrap()
            .clone();
        let overlay = json!({"a": {"c": 3}, "d": [2], "e": null})
            .as_object()
            .unwrap()
            .clone();
        merge_values(&mut base, &overlay);
        assert_eq!(
            Value::Object(base),
            json!({"a": {"b": 1, "c": 3}, "d": [2], "e": null})
        );
    }
}
