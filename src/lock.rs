//! `pitrix.lock`: for every chart version that a release takes from a synced repo
//! (`app: bitnami/redis`), the digest and URL that repo's index gave when `pitrix lock` ran.
//! Validation checks releases against it offline; `--online` checks against the live index.
//!
//! The file is TOML, sorted, rewritten only when its content changes:
//!
//! ```toml
//! version = 1
//!
//! [[repo]]
//! name = "bitnami"
//! url = "https://charts.bitnami.com/bitnami"
//!
//! [[repo.chart]]
//! name = "redis"
//! version = "19.6.4"
//! digest = "sha256:…"
//! url = "https://charts.bitnami.com/bitnami/redis-19.6.4.tgz"
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::{AppRef, Catalog, Release, Repo};
use crate::diagnostics::{Code, Diagnostic, Pos, did_you_mean};
use crate::error::Error;
use crate::repo::{ChartVersion, FetchOptions, Fetcher, Filter, Index, RepoError, repo_auth};

pub const LOCK_FILE: &str = "pitrix.lock";
const FORMAT_VERSION: u32 = 1;
const HEADER: &str = "# pitrix.lock: the chart versions releases take from synced repos, as their index gave them.\n# Written by `pitrix lock`; checked by `pitrix validate`. Do not edit by hand.\n\n";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    #[serde(default, rename = "repo")]
    pub repos: Vec<LockedRepo>,
}

impl Default for Lock {
    fn default() -> Self {
        Lock {
            version: FORMAT_VERSION,
            repos: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRepo {
    pub name: String,
    /// The repo URL the entries were read from; entries of another URL are stale.
    pub url: String,
    #[serde(default, rename = "chart")]
    pub charts: Vec<LockedChart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedChart {
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the archive.
    pub digest: String,
    /// The archive's absolute URL.
    pub url: String,
}

impl Lock {
    /// The lock of the catalog at `root`; `None` when there is none.
    pub fn read(root: &Path) -> Result<Option<Lock>, Error> {
        match crate::confine::read_to_string(root, Path::new(LOCK_FILE)) {
            Ok(text) => Lock::parse(&text).map(Some),
            Err(crate::confine::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(Error::Catalog(format!("cannot read {LOCK_FILE}: {e}"))),
        }
    }

    /// The lock in `text`; an [`Error::Catalog`] when it is not one this pitrix reads.
    pub fn parse(text: &str) -> Result<Lock, Error> {
        let lock: Lock =
            toml::from_str(text).map_err(|e| Error::Catalog(e.message().to_string()))?;
        if lock.version != FORMAT_VERSION {
            return Err(Error::Catalog(format!(
                "format version {} (this pitrix reads {FORMAT_VERSION})",
                lock.version
            )));
        }
        Ok(lock)
    }

    /// The file's text: sorted, so equal locks are equal bytes.
    pub fn render(&self) -> String {
        let mut sorted = self.clone();
        sorted.repos.sort_by(|a, b| a.name.cmp(&b.name));
        for r in &mut sorted.repos {
            r.charts.sort_by(|a, b| {
                (&a.name, semver_key(&a.version)).cmp(&(&b.name, semver_key(&b.version)))
            });
        }
        let body = toml::to_string(&sorted).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    pub fn repo(&self, name: &str) -> Option<&LockedRepo> {
        self.repos.iter().find(|r| r.name == name)
    }

    /// The entry for a chart version of a repo, if the lock has it for that repo URL.
    pub fn entry(&self, repo: &str, url: &str, chart: &str, version: &str) -> Option<&LockedChart> {
        self.repo(repo)
            .filter(|r| same_url(&r.url, url))?
            .charts
            .iter()
            .find(|c| c.name == chart && c.version == version)
    }
}

fn semver_key(v: &str) -> (Option<semver::Version>, String) {
    (semver::Version::parse(v).ok(), v.to_string())
}

pub(crate) fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A chart version that releases take from a synced repo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub repo: String,
    pub chart: String,
    pub version: String,
}

/// Every synced-repo chart version the releases reference, with the releases naming it.
/// Releases of repos the catalog lacks are left out (validation reports them).
pub fn references(catalog: &Catalog) -> BTreeMap<Reference, Vec<&Release>> {
    let mut refs: BTreeMap<Reference, Vec<&Release>> = BTreeMap::new();
    for r in &catalog.releases {
        if let AppRef::Repo { repo, chart } = r.app_ref()
            && catalog.repo(repo).is_some()
        {
            refs.entry(Reference {
                repo: repo.to_string(),
                chart: chart.to_string(),
                version: r.spec.version.value.clone(),
            })
            .or_default()
            .push(r);
        }
    }
    refs
}

/// Whether a repo serves an index.yaml (http(s)); oci:// registries do not.
pub fn has_index(repo: &Repo) -> bool {
    let url = repo.spec.url.value.as_str();
    url.starts_with("http://") || url.starts_with("https://")
}

/// A fetcher for a catalog repo, with its credentials from the environment.
pub fn fetcher(repo: &Repo, base: &FetchOptions) -> Result<Fetcher, RepoError> {
    let opts = FetchOptions {
        auth: repo_auth(repo)?,
        ..base.clone()
    };
    Fetcher::new(&repo.spec.url.value, opts)
}

/// The diagnostic for a repo whose index cannot be had.
pub fn index_error(repo: &Repo, e: &RepoError) -> Diagnostic {
    Diagnostic::error(
        Code::RepoIndex,
        format!("repo `{}`: cannot read its index: {e}", repo.name),
    )
    .in_file(&repo.file)
    .at(repo.spec.url.pos)
    .hint(e.hint())
}

/// Looks a release's chart version up in its repo's index: the entry, or the diagnostic for a
/// chart or version the index lacks.
pub fn lookup<'i>(
    index: &'i Index,
    reference: &Reference,
    release: &Release,
) -> Result<&'i ChartVersion, Diagnostic> {
    let Some(versions) = index.chart(&reference.chart) else {
        let d = Diagnostic::error(
            Code::UnknownChart,
            format!(
                "release `{}` installs `{}/{}`, but the index of repo `{}` has no chart `{}`",
                release.name, reference.repo, reference.chart, reference.repo, reference.chart
            ),
        )
        .in_file(&release.file)
        .at(release.spec.app.pos);
        return Err(
            match did_you_mean(&reference.chart, index.names.iter().map(String::as_str)) {
                Some(m) => d.hint(format!("did you mean `{}/{m}`?", reference.repo)),
                None => d.hint(format!(
                    "the index has {} charts; check the chart's name in the repo",
                    index.names.len()
                )),
            },
        );
    };
    if let Some(v) = versions.iter().find(|v| v.version == reference.version) {
        return Ok(v);
    }
    let newest: Vec<&str> = versions
        .iter()
        .take(5)
        .map(|v| v.version.as_str())
        .collect();
    Err(Diagnostic::error(
        Code::UnknownVersion,
        format!(
            "release `{}` installs {}/{} {}, which the index of repo `{}` does not have",
            release.name, reference.repo, reference.chart, reference.version, reference.repo
        ),
    )
    .in_file(&release.file)
    .at(release.spec.version.pos)
    .hint(if newest.is_empty() {
        "the index lists no usable version of this chart".to_string()
    } else {
        format!("newest versions in the index: {}", newest.join(", "))
    }))
}

/// Options of `pitrix lock`.
#[derive(Debug, Clone, Default)]
pub struct LockOptions {
    pub fetch: FetchOptions,
    /// Accept a changed upstream digest for a version already locked.
    pub update: bool,
}

/// What `pitrix lock` found.
#[derive(Debug, Clone)]
pub struct LockOutcome {
    pub lock: Lock,
    /// The text differs from the file on disk (and was written).
    pub changed: bool,
    /// One line per locked chart version: `bitnami/redis 19.6.4 sha256:…`.
    pub lines: Vec<String>,
}

/// `pitrix lock`: fetch the index of every repo that releases take charts from, download each
/// referenced version and check it against the index's digest, and write `pitrix.lock` — all
/// or nothing: on any error nothing is written.
pub fn lock(
    root: &Path,
    catalog: &Catalog,
    opts: &LockOptions,
) -> Result<LockOutcome, Vec<Diagnostic>> {
    let previous = Lock::read(root).map_err(|e| {
        vec![
            Diagnostic::error(Code::LockInvalid, format!("{LOCK_FILE}: {e}"))
                .in_file(LOCK_FILE)
                .hint("delete it and run `pitrix lock` again"),
        ]
    })?;
    let refs = references(catalog);
    let mut errors = Vec::new();
    let mut lock = Lock::default();
    let mut lines = Vec::new();
    let mut by_repo: BTreeMap<&str, Vec<(&Reference, &Vec<&Release>)>> = BTreeMap::new();
    for (reference, releases) in &refs {
        by_repo
            .entry(reference.repo.as_str())
            .or_default()
            .push((reference, releases));
    }
    for (repo_name, wanted) in by_repo {
        let Some(repo) = catalog.repo(repo_name) else {
            continue;
        };
        if !has_index(repo) {
            lines.push(format!(
                "{repo_name}: oci:// repository, no index to lock (its releases stay unverified)"
            ));
            continue;
        }
        let fetched = fetcher(repo, &opts.fetch).and_then(|f| {
            let filter = Filter::only(wanted.iter().map(|(r, _)| r.chart.clone()));
            let index = f.index(&filter)?;
            Ok((f, index))
        });
        let (fetcher, index) = match fetched {
            Ok(x) => x,
            Err(e) => {
                errors.push(index_error(repo, &e));
                continue;
            }
        };
        let mut locked = LockedRepo {
            name: repo.name.clone(),
            url: repo.spec.url.value.clone(),
            charts: Vec::new(),
        };
        for (reference, releases) in wanted {
            let entry = match lookup(&index, reference, releases[0]) {
                Ok(e) => e,
                Err(d) => {
                    errors.push(d);
                    continue;
                }
            };
            match lock_one(&fetcher, repo, reference, entry, releases[0]) {
                Ok(chart) => {
                    let old = previous.as_ref().and_then(|p| {
                        p.entry(
                            &repo.name,
                            &repo.spec.url.value,
                            &chart.name,
                            &chart.version,
                        )
                    });
                    if let Some(old) = old
                        && old.digest != chart.digest
                        && !opts.update
                    {
                        errors.push(changed_upstream(reference, old, &chart));
                        continue;
                    }
                    lines.push(format!(
                        "{}/{} {} {}",
                        reference.repo, reference.chart, reference.version, chart.digest
                    ));
                    locked.charts.push(chart);
                }
                Err(d) => errors.push(d),
            }
        }
        lock.repos.push(locked);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = lock.render();
    let path = root.join(LOCK_FILE);
    let on_disk = fs::read_to_string(&path).ok();
    let changed = on_disk.as_deref() != Some(text.as_str());
    if changed {
        write_file_atomic(&path, text.as_bytes()).map_err(|e| {
            vec![
                Diagnostic::error(Code::Io, format!("cannot write {LOCK_FILE}: {e}"))
                    .in_file(LOCK_FILE),
            ]
        })?;
    }
    Ok(LockOutcome {
        lock,
        changed,
        lines,
    })
}

fn lock_one(
    fetcher: &Fetcher,
    repo: &Repo,
    reference: &Reference,
    entry: &ChartVersion,
    release: &Release,
) -> Result<LockedChart, Diagnostic> {
    let Some(digest) = entry.digest_hex() else {
        return Err(Diagnostic::error(
            Code::RepoIndex,
            format!(
                "repo `{}`: the index gives no digest for {} {}; KubeSphere never syncs such a version",
                repo.name, reference.chart, reference.version
            ),
        )
        .in_file(&release.file)
        .at(release.spec.version.pos)
        .hint("ask the repository's owner to index it with digests (helm repo index does)"));
    };
    let url = &entry.urls[0];
    let (url, _bytes) = fetcher.chart(url, &digest).map_err(|e| {
        index_error(repo, &e)
            .in_file(&release.file)
            .at(release.spec.version.pos)
    })?;
    Ok(LockedChart {
        name: reference.chart.clone(),
        version: reference.version.clone(),
        digest: format!("sha256:{digest}"),
        url,
    })
}

fn changed_upstream(reference: &Reference, old: &LockedChart, new: &LockedChart) -> Diagnostic {
    Diagnostic::error(
        Code::LockMismatch,
        format!(
            "{}/{} {}: the repo now serves digest {}, but {LOCK_FILE} has {}",
            reference.repo, reference.chart, reference.version, new.digest, old.digest
        ),
    )
    .in_file(LOCK_FILE)
    .hint("a published chart version changed upstream; review it, then `pitrix lock --update`")
}

/// Writes a file through a temporary sibling and a rename: readers see the old or the new.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Where in pitrix.lock an entry is, for diagnostics (first line naming the version).
pub fn pos_in_lock(text: &str, chart: &str, version: &str) -> Option<Pos> {
    let mut chart_seen = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t == format!("name = \"{chart}\"") {
            chart_seen = true;
        } else if chart_seen && t == format!("version = \"{version}\"") {
            return Some(Pos {
                line: i as u32 + 1,
                column: 1,
            });
        } else if t.starts_with("[[") {
            chart_seen = false;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_and_reads_back() {
        let lock = Lock {
            version: 1,
            repos: vec![LockedRepo {
                name: "b".into(),
                url: "http://h/b".into(),
                charts: vec![
                    LockedChart {
                        name: "x".into(),
                        version: "1.10.0".into(),
                        digest: "sha256:1".into(),
                        url: "http://h/b/x-1.10.0.tgz".into(),
                    },
                    LockedChart {
                        name: "x".into(),
                        version: "1.9.0".into(),
                        digest: "sha256:2".into(),
                        url: "http://h/b/x-1.9.0.tgz".into(),
                    },
                ],
            }],
        };
        let text = lock.render();
        assert!(text.find("1.9.0").unwrap() < text.find("1.10.0").unwrap());
        let back = Lock::parse(&text).unwrap();
        assert_eq!(back.render(), text);
        assert!(back.entry("b", "http://h/b/", "x", "1.9.0").is_some());
        assert!(back.entry("b", "http://other/b", "x", "1.9.0").is_none());
        let line = pos_in_lock(&text, "x", "1.10.0").unwrap().line as usize;
        assert_eq!(text.lines().nth(line - 1), Some("version = \"1.10.0\""));
        assert!(Lock::parse("version = 2\n").is_err());
    }
}
