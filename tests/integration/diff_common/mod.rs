//! Shared by the `compile --diff` and GitHub Action tests: real git repositories holding a
//! catalog, edited and committed step by step, and the pitrix binary.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn pitrix() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pitrix"))
}

/// A git repository in a temporary directory, with a catalog at `catalog` inside it.
pub struct Repo {
    pub dir: tempfile::TempDir,
    /// The catalog directory, relative to the repository root ("" for the root).
    pub catalog: String,
}

/// Runs git with a fixed identity and no user or system configuration.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", "2025-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Repo {
    /// A repository whose first commit holds the scaffolded catalog (`pitrix new`) at `catalog`.
    pub fn with_new_catalog(catalog: &str) -> Repo {
        let repo = Repo::empty(catalog);
        // Scaffolded beside the repository, then copied in (the root is not empty: .git).
        let scratch = tempfile::tempdir().unwrap();
        let fresh = scratch.path().join("catalog");
        pitrix::scaffold::new_catalog(&fresh).expect("scaffold");
        copy_tree(&fresh, &repo.catalog_dir());
        repo.commit("base catalog");
        repo
    }

    /// An empty repository on branch `main`.
    pub fn empty(catalog: &str) -> Repo {
        let dir = tempfile::Builder::new()
            .prefix("pitrix-diff-test-")
            .tempdir()
            .unwrap();
        git_in(dir.path(), &["init", "-q", "-b", "main"]);
        Repo {
            dir,
            catalog: catalog.to_string(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn catalog_dir(&self) -> PathBuf {
        if self.catalog.is_empty() {
            self.root().to_path_buf()
        } else {
            self.root().join(&self.catalog)
        }
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(self.root(), args)
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Writes a file of the catalog.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.catalog_dir().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.catalog_dir().join(rel)).unwrap()
    }

    /// Replaces `from` by `to` in a file of the catalog (which must contain it).
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} has no {from:?}:\n{text}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    pub fn remove(&self, rel: &str) {
        let path = self.catalog_dir().join(rel);
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }

    /// Copies a directory of the catalog.
    pub fn copy_dir(&self, from: &str, to: &str) {
        copy_tree(&self.catalog_dir().join(from), &self.catalog_dir().join(to));
    }

    /// Adds version `to` of the scaffold's `hello` app as a copy of `from`, listed in app.yaml.
    pub fn add_hello_version(&self, from: &str, to: &str) {
        self.copy_dir(&format!("apps/hello/{from}"), &format!("apps/hello/{to}"));
        self.edit(
            &format!("apps/hello/{to}/Chart.yaml"),
            &format!("version: {from}"),
            &format!("version: {to}"),
        );
        let app = self.read("apps/hello/app.yaml");
        self.write(
            "apps/hello/app.yaml",
            &format!(
                "{}  {to}:\n    state: active\n",
                app.trim_end_matches('\n').to_string() + "\n"
            ),
        );
    }

    /// `pitrix ARGS` in the catalog directory.
    pub fn pitrix(&self, args: &[&str]) -> Output {
        Command::new(pitrix())
            .args(args)
            .current_dir(self.catalog_dir())
            .env_remove("NO_COLOR")
            .output()
            .expect("pitrix runs")
    }
}

/// Copies a directory tree (files and directories).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// stdout and stderr of a run, for messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
