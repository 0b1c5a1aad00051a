//! Reading a catalog at a git revision straight from the object database (git2): no checkout,
//! the work tree and the index untouched. `compile --diff` uses it to compile the base side.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, StatusOptions, Tree};

/// Something git could not do, said so that a user knows what to try.
#[derive(Debug)]
pub struct GitError(pub String);

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GitError {}

fn err(context: impl fmt::Display) -> impl FnOnce(git2::Error) -> GitError {
    move |e| GitError(format!("{context}: {}", e.message()))
}

/// The repository a catalog directory lives in, and where the catalog is inside it.
pub struct CatalogRepo {
    pub repo: Repository,
    /// The catalog directory relative to the work tree root, `/`-separated; empty at the root.
    pub prefix: String,
}

/// A resolved base revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// What the user asked for, or how the default was found (`merge-base of HEAD and origin/main`).
    pub label: String,
    /// The commit id, full hex.
    pub commit: String,
}

impl CatalogRepo {
    /// Finds the repository that holds `catalog_dir`.
    pub fn open(catalog_dir: &Path) -> Result<Self, GitError> {
        let dir = catalog_dir
            .canonicalize()
            .map_err(|e| GitError(format!("{}: {e}", catalog_dir.display())))?;
        let repo = Repository::discover(&dir).map_err(|e| {
            GitError(format!(
                "{} is not in a git repository ({}); `compile --diff` compares against a git revision",
                catalog_dir.display(),
                e.message()
            ))
        })?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| GitError("the repository is bare; run in a work tree".into()))?
            .canonicalize()
            .map_err(|e| GitError(format!("work tree: {e}")))?;
        let rel = dir.strip_prefix(&workdir).map_err(|_| {
            GitError(format!(
                "{} is outside the work tree {}",
                dir.display(),
                workdir.display()
            ))
        })?;
        let prefix = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        Ok(CatalogRepo { repo, prefix })
    }

    /// `prefix/path`, or `path` at the root.
    fn repo_path(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{path}", self.prefix),
        }
    }

    /// Resolves `--base`: a ref, a commit or any rev-parse expression; without one, the
    /// merge-base of HEAD with the remote default branch (`origin/HEAD`, else `origin/main`,
    /// else `origin/master`), else with the local `main` (or `master`).
    pub fn resolve_base(&self, spec: Option<&str>) -> Result<Revision, GitError> {
        let repo = &self.repo;
        if let Some(spec) = spec {
            let commit = repo
                .revparse_single(spec)
                .and_then(|o| o.peel_to_commit())
                .map_err(|e| {
                    let shallow = if repo.is_shallow() {
                        " (this clone is shallow: fetch the base, e.g. `actions/checkout` with `fetch-depth: 0`)"
                    } else {
                        ""
                    };
                    GitError(format!(
                        "base revision `{spec}` not found: {}{shallow}",
                        e.message()
                    ))
                })?;
            return Ok(Revision {
                label: spec.to_string(),
                commit: commit.id().to_string(),
            });
        }
        let head = repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(err("HEAD has no commit; name the base with --base"))?;
        let remote_default = repo
            .find_reference("refs/remotes/origin/HEAD")
            .ok()
            .and_then(|r| r.symbolic_target().ok().flatten().map(str::to_string))
            .into_iter()
            .chain(["refs/remotes/origin/main", "refs/remotes/origin/master"].map(String::from))
            .chain(["refs/heads/main", "refs/heads/master"].map(String::from));
        for name in remote_default {
            let Ok(target) = repo.find_reference(&name).and_then(|r| r.peel_to_commit()) else {
                continue;
            };
            let short = name
                .trim_start_matches("refs/remotes/")
                .trim_start_matches("refs/heads/");
            let base = repo.merge_base(head.id(), target.id()).map_err(|e| {
                GitError(format!(
                    "HEAD and {short} have no common ancestor ({}); name the base with --base{}",
                    e.message(),
                    if repo.is_shallow() {
                        " or fetch more history (the clone is shallow)"
                    } else {
                        ""
                    }
                ))
            })?;
            return Ok(Revision {
                label: format!("merge-base of HEAD and {short}"),
                commit: base.to_string(),
            });
        }
        Err(GitError(
            "no default base: neither origin/HEAD, origin/main, origin/master, main nor master exists; name the base with --base".into(),
        ))
    }

    /// The catalog's tree at `commit`, if the catalog directory exists there.
    pub fn catalog_tree(&self, commit: &str) -> Result<Option<Tree<'_>>, GitError> {
        let oid = Oid::from_str(commit).map_err(err(format!("commit {commit}")))?;
        let root = self
            .repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(err(format!("commit {commit}")))?;
        if self.prefix.is_empty() {
            return Ok(Some(root));
        }
        match root.get_path(Path::new(&self.prefix)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Tree) => self
                .repo
                .find_tree(entry.id())
                .map(Some)
                .map_err(err(format!("{} at {commit}", self.prefix))),
            _ => Ok(None),
        }
    }

    /// The catalog's tree at HEAD, if there is a HEAD commit holding the catalog.
    pub fn head_tree(&self) -> Option<Tree<'_>> {
        let commit = self.repo.head().ok()?.peel_to_commit().ok()?;
        self.catalog_tree(&commit.id().to_string()).ok().flatten()
    }

    /// The id of the HEAD commit, if any.
    pub fn head_commit(&self) -> Option<String> {
        let commit = self.repo.head().ok()?.peel_to_commit().ok()?;
        Some(commit.id().to_string())
    }

    /// Paths under the catalog (relative to it, `/`-separated) whose work-tree content may
    /// differ from HEAD: modified, staged, deleted, untracked or ignored. Uses the index's stat
    /// cache, so clean files are not read.
    pub fn dirty_paths(&self, under: &str) -> Result<BTreeSet<String>, GitError> {
        let mut opts = StatusOptions::new();
        opts.pathspec(self.repo_path(under))
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(true)
            .recurse_ignored_dirs(true)
            .exclude_submodules(false)
            .renames_head_to_index(false)
            .renames_index_to_workdir(false);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(err("git status"))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let relative = |path: &[u8]| {
            let path = String::from_utf8_lossy(path).into_owned();
            path.strip_prefix(&strip)
                .map(str::to_string)
                .unwrap_or(path)
        };
        let mut dirty: BTreeSet<String> = statuses
            .iter()
            .filter(|s| !s.status().is_empty())
            .map(|s| relative(s.path_bytes()))
            .collect();
        // Entries git is told not to look at (sparse checkout's skip-worktree, assume-unchanged)
        // may differ from HEAD without status saying so.
        let index = self.repo.index().map_err(err("git index"))?;
        let under_prefix = format!("{strip}{under}/");
        for entry in index.iter() {
            let unreliable = git2::IndexEntryFlag::from_bits_truncate(entry.flags).is_valid()
                || git2::IndexEntryExtendedFlag::from_bits_truncate(entry.flags_extended)
                    .is_skip_worktree();
            if unreliable && entry.path.starts_with(under_prefix.as_bytes()) {
                dirty.insert(relative(&entry.path));
            }
        }
        Ok(dirty)
    }
}

impl CatalogRepo {
    /// Whether a `.gitignore` rule drops `path` (relative to the catalog, `/`-separated),
    /// tracked or not.
    pub fn is_ignored(&self, path: &str) -> bool {
        self.repo
            .is_path_ignored(self.repo_path(path))
            .unwrap_or(false)
    }

    /// Whether `path` (relative to the catalog, `/`-separated; a file or a directory) is
    /// dropped by a `.gitignore` and nothing under it is in the index: git does not have it,
    /// so a revision read from git lacks it though the work tree has it.
    pub fn ignored_untracked(&self, path: &str) -> bool {
        let full = self.repo_path(path);
        if !self.is_ignored(path) {
            return false;
        }
        let Ok(index) = self.repo.index() else {
            return true;
        };
        let dir = format!("{full}/");
        !index
            .iter()
            .any(|e| e.path == full.as_bytes() || e.path.starts_with(dir.as_bytes()))
    }
}

/// The id of the entry `name` of `tree`, if it is a subtree.
pub fn subtree_id(tree: &Tree<'_>, name: &str) -> Option<Oid> {
    tree.get_name(name)
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .map(|e| e.id())
}

/// What [`materialize`] left out.
#[derive(Debug, Default)]
pub struct Materialized {
    pub files: usize,
    pub bytes: u64,
    /// Submodules and entries with unusable names, which are not written (relative to the
    /// tree's root).
    pub skipped: Vec<String>,
}

/// Writes the blobs of `tree` into `dest` (which must exist), skipping the paths (relative to
/// the tree, `/`-separated) for which `skip` says so — a skipped directory is not descended.
pub fn materialize(
    repo: &Repository,
    tree: &Tree<'_>,
    dest: &Path,
    skip: &dyn Fn(&str) -> bool,
) -> Result<Materialized, GitError> {
    let mut out = Materialized::default();
    write_tree(repo, tree, dest, "", skip, &mut out)?;
    Ok(out)
}

fn write_tree(
    repo: &Repository,
    tree: &Tree<'_>,
    dest: &Path,
    rel: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &mut Materialized,
) -> Result<(), GitError> {
    for entry in tree.iter() {
        let Ok(name) = entry.name() else {
            out.skipped.push(format!(
                "{rel}{}",
                String::from_utf8_lossy(entry.name_bytes())
            ));
            continue;
        };
        // Names from the object database are untrusted: never let one leave `dest`.
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            out.skipped.push(format!("{rel}{name}"));
            continue;
        }
        let path = format!("{rel}{name}");
        if skip(&path) {
            continue;
        }
        let target: PathBuf = dest.join(name);
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo
                    .find_tree(entry.id())
                    .map_err(err(format!("tree {path}")))?;
                fs::create_dir_all(&target)
                    .map_err(|e| GitError(format!("{}: {e}", target.display())))?;
                write_tree(repo, &sub, &target, &format!("{path}/"), skip, out)?;
            }
            Some(ObjectType::Blob) if entry.filemode() != 0o120000 => {
                let blob = repo
                    .find_blob(entry.id())
                    .map_err(err(format!("blob {path}")))?;
                fs::write(&target, blob.content())
                    .map_err(|e| GitError(format!("{}: {e}", target.display())))?;
                out.files += 1;
                out.bytes += blob.size() as u64;
            }
            // A symbolic link is written as the link it is, never dereferenced here: the
            // loader resolves it against the materialized root like a work tree's link, and
            // refuses one that leads outside (`crate::confine`).
            Some(ObjectType::Blob) => {
                let blob = repo
                    .find_blob(entry.id())
                    .map_err(err(format!("blob {path}")))?;
                use std::os::unix::ffi::OsStrExt as _;
                let link = std::ffi::OsStr::from_bytes(blob.content());
                std::os::unix::fs::symlink(link, &target)
                    .map_err(|e| GitError(format!("{}: {e}", target.display())))?;
                out.files += 1;
            }
            // Submodules (commits) are not catalog content.
            _ => out.skipped.push(path),
        }
    }
    Ok(())
}
