//! `compile --diff`: the work tree against a git revision. The base side is read from git's
//! object database (no checkout) into a private temporary directory and run through the same
//! loader, so both sides are compiled by the same code. Work is shared: an app whose subtree
//! has the same git tree id at the base and at HEAD, and no work-tree changes, loads exactly as
//! the work tree's copy did, so that copy is reused instead of being read and packaged again.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Diff, Side, diff};
use crate::catalog::{App, Catalog};
use crate::compile::{Compiled, compile};
use crate::diagnostics::Diagnostic;
use crate::git::{CatalogRepo, GitError, Revision, materialize, subtree_id};
use crate::{load, pipeline, validate};

/// Why there is no diff.
#[derive(Debug)]
pub enum Error {
    /// The work tree's catalog has errors (nothing compiled).
    Catalog(Vec<Diagnostic>),
    /// Git could not give the base revision.
    Git(GitError),
    Io(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Error::Catalog(d) => write!(
                f,
                "the catalog has {} error(s)",
                d.iter().filter(|d| d.is_error()).count()
            ),
            Error::Git(e) => write!(f, "{e}"),
            Error::Io(e) => f.write_str(e),
        }
    }
}

impl From<GitError> for Error {
    fn from(e: GitError) -> Self {
        Error::Git(e)
    }
}

/// How the base side was built.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Apps reused from the work tree (unchanged subtree).
    pub apps_shared: usize,
    /// Apps read from git and loaded.
    pub apps_loaded: usize,
    /// Files written from git's object database.
    pub files_read: usize,
    pub head_time: Duration,
    pub base_time: Duration,
    pub diff_time: Duration,
}

/// Both sides compiled and compared.
pub struct Compared {
    pub diff: Diff,
    /// The work tree's compile (what `-o` writes).
    pub head: Compiled,
    /// Warnings of the work tree's catalog.
    pub warnings: Vec<Diagnostic>,
    /// Problems of the base revision's catalog, as warnings: the diff is against what it
    /// compiles to, but it did not validate (it may have been written for an older pitrix).
    pub base_problems: Vec<Diagnostic>,
    pub stats: Stats,
}

/// Compiles the catalog at `dir` (the work tree) and at the base revision (`base`, or the
/// default: see [`CatalogRepo::resolve_base`]), and compares them. Both sides are loaded for
/// `env` (`--env`): the diff shows what that environment's clusters would get.
pub fn compile_diff(
    dir: &Path,
    base: Option<&str>,
    env: Option<&str>,
    target: Option<crate::catalog::Target>,
) -> Result<Compared, Error> {
    let repo = CatalogRepo::open(dir)?;
    let revision = repo.resolve_base(base)?;

    let t = Instant::now();
    // Validated, compiled and the compiled objects checked (their size), as `compile` does.
    let checks = pipeline::CheckOptions {
        env: env.map(str::to_string),
        target,
        ..pipeline::CheckOptions::default()
    };
    let (mut head_catalog, head, diags) =
        pipeline::build_with(dir, &checks).map_err(Error::Catalog)?;
    let head_time = t.elapsed();
    let ignored = ignored_subcharts(&repo, dir, &head_catalog);
    if !ignored.is_empty() {
        return Err(Error::Catalog(ignored));
    }
    let paths = VersionPaths::of(&head_catalog);

    let t = Instant::now();
    let (base_compiled, mut base_problems, mut stats) =
        compile_base(&repo, &revision, &mut head_catalog, env, target)?;
    stats.head_time = head_time;
    name_ignored_subcharts(&repo, &mut base_problems);
    stats.base_time = t.elapsed();

    let t = Instant::now();
    let mut d = diff(&base_compiled, &head);
    stats.diff_time = t.elapsed();
    d.base = Some(Side {
        label: revision.label.clone(),
        commit: Some(revision.commit.clone()),
    });
    d.head = Some(Side {
        label: "work tree".into(),
        commit: repo.head_commit(),
    });
    paths.locate(&mut d, &repo.prefix);
    Ok(Compared {
        diff: d,
        head,
        warnings: diags,
        base_problems,
        stats,
    })
}

/// Subcharts in a chart directory's `charts/` that a `.gitignore` drops (kube-prometheus-stack's
/// own `.gitignore` has `charts/*`): the work tree has them, but what is committed, merged and
/// read from git by `reconcile` does not, so its package would be uninstallable.
fn ignored_subcharts(repo: &CatalogRepo, dir: &Path, catalog: &Catalog) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for app in &catalog.apps {
        for v in &app.versions {
            if v.source != crate::catalog::VersionSource::ChartDir {
                continue;
            }
            let charts = v.path.join("charts");
            let Ok(entries) = std::fs::read_dir(dir.join(&charts)) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with(['_', '.']))
                .collect();
            names.sort();
            let rel = charts.to_string_lossy().replace('\\', "/");
            let dropped: Vec<String> = names
                .into_iter()
                .filter(|n| repo.ignored_untracked(&format!("{rel}/{n}")))
                .collect();
            if dropped.is_empty() {
                continue;
            }
            out.push(
                Diagnostic::error(
                    crate::diagnostics::Code::ChartDependencyMissing,
                    format!(
                        "{rel}/ has {} that a .gitignore drops: git does not have {}, so the chart committed (and read from git by `compile --diff` and `reconcile`) lacks {}",
                        dropped.join(", "),
                        if dropped.len() == 1 { "it" } else { "them" },
                        if dropped.len() == 1 { "this dependency" } else { "these dependencies" },
                    ),
                )
                .in_file(&charts)
                .hint(format!(
                    "un-ignore them (add `!{rel}/` to the .gitignore, or `git add -f {rel}`) and commit them"
                )),
            );
        }
    }
    out
}

/// A dependency the base (read from git) lacks because a `.gitignore` drops it: the hint says
/// so, since `helm dependency build` alone would not get it into git.
fn name_ignored_subcharts(repo: &CatalogRepo, problems: &mut [Diagnostic]) {
    for d in problems {
        if d.code != crate::diagnostics::Code::ChartDependencyMissing
            || !d.message.contains("missing in charts/")
        {
            continue;
        }
        let (Some(file), Some(name)) = (&d.file, d.message.split('`').nth(1)) else {
            continue;
        };
        let Some(version) = file.parent() else {
            continue;
        };
        let charts = version.join("charts").to_string_lossy().replace('\\', "/");
        if repo.is_ignored(&format!("{charts}/{name}")) {
            d.hint = Some(format!(
                "a .gitignore drops {charts}/{name}, so git never had it: un-ignore it (add `!{charts}/` to the .gitignore, or `git add -f {charts}`) and commit it"
            ));
        }
    }
}

/// Where each version of the work tree's catalog is filed, for errors to point at.
struct VersionPaths(HashMap<(String, String), PathBuf>);

impl VersionPaths {
    fn of(catalog: &Catalog) -> Self {
        VersionPaths(
            catalog
                .apps
                .iter()
                .flat_map(|a| {
                    a.versions
                        .iter()
                        .map(|v| ((a.name.clone(), v.name.clone()), v.path.clone()))
                })
                .collect(),
        )
    }

    fn locate(&self, diff: &mut Diff, _prefix: &str) {
        for e in &mut diff.errors {
            if let (Some(app), Some(version)) = (&e.app, &e.version)
                && let Some(p) = self.0.get(&(app.clone(), version.clone()))
            {
                e.file = Some(p.to_string_lossy().replace('\\', "/"));
            }
        }
    }
}

/// The base side's compile. `head` lends its unchanged apps (they are moved out of it).
fn compile_base(
    repo: &CatalogRepo,
    revision: &Revision,
    head: &mut Catalog,
    env: Option<&str>,
    target: Option<crate::catalog::Target>,
) -> Result<(Compiled, Vec<Diagnostic>, Stats), Error> {
    let mut stats = Stats::default();
    let Some(tree) = repo.catalog_tree(&revision.commit)? else {
        // No catalog at the base: everything is new.
        let empty = Compiled {
            catalog: head.settings.catalog.name.get_ref().clone(),
            objects: Vec::new(),
            status: Vec::new(),
            standalone: None,
            environment: None,
            contexts: Default::default(),
            status_image: None,
            object_store: None,
        };
        return Ok((empty, Vec::new(), stats));
    };

    // Apps whose subtree is the same at the base and at HEAD, untouched in the work tree.
    let shared: BTreeSet<String> = {
        let base_apps = subtree_id(&tree, "apps").and_then(|id| repo.repo.find_tree(id).ok());
        let head_tree = repo.head_tree();
        let head_apps = head_tree
            .as_ref()
            .and_then(|t| subtree_id(t, "apps"))
            .and_then(|id| repo.repo.find_tree(id).ok());
        match (base_apps, head_apps) {
            (Some(base_apps), Some(head_apps)) => {
                let dirty: BTreeSet<String> = repo
                    .dirty_paths("apps")?
                    .iter()
                    .filter_map(|p| p.strip_prefix("apps/"))
                    .map(|p| p.split('/').next().unwrap_or(p).to_string())
                    .collect();
                let head_names: BTreeSet<&str> =
                    head.apps.iter().map(|a| a.name.as_str()).collect();
                base_apps
                    .iter()
                    .filter_map(|e| {
                        let name = e.name().ok()?;
                        let same = subtree_id(&base_apps, name).is_some()
                            && subtree_id(&base_apps, name) == subtree_id(&head_apps, name);
                        (same && !dirty.contains(name) && head_names.contains(name))
                            .then(|| name.to_string())
                    })
                    .collect()
            }
            _ => BTreeSet::new(),
        }
    };

    let tmp = tempfile::Builder::new()
        .prefix("pitrix-base-")
        .tempdir()
        .map_err(|e| Error::Io(format!("temporary directory: {e}")))?;
    let root = tmp.path();
    let written = materialize(&repo.repo, &tree, root, &|path| {
        path.strip_prefix("apps/")
            .is_some_and(|app| !app.contains('/') && shared.contains(app))
    })?;
    stats.files_read = written.files;

    let load_options = load::LoadOptions {
        env: env.map(str::to_string),
        target,
        ..load::LoadOptions::default()
    };
    let (mut catalog, load_diags) = load::load_with(root, &load_options);
    stats.apps_loaded = catalog.apps.len();
    let mut lent: Vec<App> = Vec::with_capacity(shared.len());
    let mut kept = Vec::with_capacity(head.apps.len());
    for app in head.apps.drain(..) {
        if shared.contains(&app.name) {
            lent.push(app);
        } else {
            kept.push(app);
        }
    }
    head.apps = kept;
    stats.apps_shared = lent.len();
    catalog.apps.extend(lent);
    catalog.apps.sort_by(|a, b| a.name.cmp(&b.name));

    let mut diags = load_diags;
    diags.extend(validate::validate(&catalog));
    let compiled = compile(&catalog).map_err(|e| Error::Io(e.to_string()))?;
    let mut problems: Vec<Diagnostic> = diags
        .into_sorted()
        .into_iter()
        .filter(Diagnostic::is_error)
        .map(|d| {
            let mut w = Diagnostic::warning(
                d.code,
                format!("base revision {}: {}", revision.label, d.message),
            );
            w.file = d.file;
            w.hint = d.hint;
            w
        })
        .collect();
    for s in written.skipped {
        problems.push(Diagnostic::warning(
            crate::diagnostics::Code::UnexpectedFile,
            format!(
                "base revision {}: {s} is a submodule or has an unusable name and was not read",
                revision.label
            ),
        ));
    }
    Ok((compiled, problems, stats))
}
