//! `created` times of published chart versions, deterministic: when the version's current
//! content entered the catalog's git history (the commit time of the oldest commit on HEAD's
//! first-parent line since which its files are unchanged). So compiling the same commit gives
//! the same index on any machine, and an index only changes when a chart does.
//!
//! A version not committed yet (new or modified in the work tree) takes HEAD's commit time; a
//! catalog outside git takes `SOURCE_DATE_EPOCH`, else 1970-01-01T00:00:00Z.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, StatusOptions};

/// Times by version path (relative to the catalog root, as `Version::path`).
#[derive(Debug, Clone, Default)]
pub struct CreatedTimes {
    times: BTreeMap<PathBuf, i64>,
    fallback: i64,
}

impl CreatedTimes {
    /// The same time for every version (tests, or no git).
    pub fn fixed(seconds: i64) -> Self {
        CreatedTimes {
            times: BTreeMap::new(),
            fallback: seconds,
        }
    }

    /// Seconds since the epoch at which `version_path` was created.
    pub fn seconds(&self, version_path: &Path) -> i64 {
        self.times
            .get(version_path)
            .copied()
            .unwrap_or(self.fallback)
    }

    /// RFC 3339, as Helm writes `created`.
    pub fn rfc3339(&self, version_path: &Path) -> String {
        rfc3339(self.seconds(version_path))
    }
}

pub fn rfc3339(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn source_date_epoch() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Resolves the times of `versions` (paths relative to `root`) from git.
pub fn resolve(root: &Path, versions: &[PathBuf]) -> CreatedTimes {
    from_git(root, versions).unwrap_or_else(|| CreatedTimes::fixed(source_date_epoch()))
}

fn from_git(root: &Path, versions: &[PathBuf]) -> Option<CreatedTimes> {
    let repo = Repository::discover(root).ok()?;
    let workdir = repo.workdir()?.canonicalize().ok()?;
    let prefix = root
        .canonicalize()
        .ok()?
        .strip_prefix(&workdir)
        .ok()?
        .to_path_buf();
    let head = repo.head().ok()?.peel_to_commit().ok()?;
    let head_time = head.time().seconds();
    let in_repo = |v: &Path| prefix.join(v);

    // Versions with uncommitted changes take HEAD's time.
    let mut dirty: BTreeSet<PathBuf> = BTreeSet::new();
    let mut status_opts = StatusOptions::new();
    status_opts
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    status_opts.pathspec(prefix.join("apps").to_string_lossy().replace('\\', "/"));
    if let Ok(statuses) = repo.statuses(Some(&mut status_opts)) {
        for s in statuses.iter() {
            if let Ok(p) = s.path() {
                dirty.insert(PathBuf::from(p));
            }
        }
    }
    let is_dirty = |v: &Path| {
        let full = in_repo(v);
        dirty.iter().any(|d| d.starts_with(&full))
    };

    let oid_at = |tree: &git2::Tree, path: &Path| -> Option<Oid> {
        tree.get_path(path).ok().map(|e| e.id())
    };
    let head_tree = head.tree().ok()?;
    let mut times = BTreeMap::new();
    // path in repo → (path in catalog, the oid HEAD has)
    let mut open: Vec<(PathBuf, PathBuf, Oid)> = Vec::new();
    for v in versions {
        if is_dirty(v) {
            times.insert(v.clone(), head_time);
            continue;
        }
        match oid_at(&head_tree, &in_repo(v)) {
            Some(oid) => open.push((in_repo(v), v.clone(), oid)),
            None => {
                times.insert(v.clone(), head_time);
            }
        }
    }
    let apps = prefix.join("apps");
    let mut commit = head;
    while !open.is_empty() {
        let time = commit.time().seconds();
        let Ok(parent) = commit.parent(0) else {
            // The root commit introduced whatever is still open.
            for (_, v, _) in open.drain(..) {
                times.insert(v, time);
            }
            break;
        };
        let (Ok(tree), Ok(parent_tree)) = (commit.tree(), parent.tree()) else {
            break;
        };
        if oid_at(&tree, &apps) != oid_at(&parent_tree, &apps) {
            open.retain(|(full, v, oid)| {
                if oid_at(&parent_tree, full) == Some(*oid) {
                    true
                } else {
                    times.insert(v.clone(), time);
                    false
                }
            });
        }
        commit = parent;
    }
    Some(CreatedTimes {
        times,
        fallback: head_time,
    })
}
