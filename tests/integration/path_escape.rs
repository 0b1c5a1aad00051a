//! Nothing outside the catalog root is ever read: a hostile pull request's symbolic links to
//! the runner's files (a docker config, a kubeconfig, an SSH directory) are refused with a
//! positioned `path-escape` error, in the work tree and in the git base, and their contents
//! reach no output. Links that stay inside the catalog are followed.

use crate::diff_common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use diff_common::{Repo, show};

const DOCKER_SECRET: &str = "PLANTED-DOCKER-AUTH-7f3a";
const KEY_SECRET: &str = "PLANTED-CLIENT-KEY-91bc";

/// The runner's files: beside the repository, never part of it.
struct Runner {
    _dir: tempfile::TempDir,
    home: PathBuf,
}

impl Runner {
    fn new() -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        fs::create_dir_all(home.join(".docker")).unwrap();
        fs::write(
            home.join(".docker/config.json"),
            format!("{{\"auths\": {{\"ghcr.io\": {{\"auth\": \"{DOCKER_SECRET}\"}}}}}}\n"),
        )
        .unwrap();
        fs::create_dir_all(home.join(".kube")).unwrap();
        fs::write(
            home.join(".kube/config"),
            format!("users:\n- name: ci\n  user:\n    client-key-data: {KEY_SECRET}\n"),
        )
        .unwrap();
        // Looks like a chart and like an app, so that only the path check can stop it.
        let fake_app = home.join("app");
        fs::create_dir_all(fake_app.join("0.1.0/templates")).unwrap();
        fs::write(
            fake_app.join("app.yaml"),
            format!("description: {KEY_SECRET}\n"),
        )
        .unwrap();
        fs::write(
            fake_app.join("0.1.0/Chart.yaml"),
            format!("apiVersion: v2\nname: evil\nversion: 0.1.0\ndescription: {KEY_SECRET}\n"),
        )
        .unwrap();
        fs::write(
            fake_app.join("0.1.0/values.yaml"),
            format!("k: {KEY_SECRET}\n"),
        )
        .unwrap();
        Runner { _dir: dir, home }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_nothing_leaked(what: &str, out: &str) {
    for secret in [DOCKER_SECRET, KEY_SECRET] {
        assert!(
            !out.contains(secret),
            "{what}: {secret} leaked into the output:\n{out}"
        );
    }
}

/// Runs every reading command in every format; each must fail with `path-escape` at `file`
/// (and `line`, when the escape is named by another file) and show no planted secret.
fn assert_refused(repo: &Repo, base: &str, file: &str, line: Option<u32>) {
    let out_dir = repo.root().join("out");
    let runs: Vec<(String, Output)> = vec![
        ("validate".into(), repo.pitrix(&["validate"])),
        (
            "validate --format json".into(),
            repo.pitrix(&["validate", "--format", "json"]),
        ),
        (
            "validate --format github".into(),
            repo.pitrix(&["validate", "--format", "github"]),
        ),
        (
            "compile".into(),
            repo.pitrix(&["compile", "-o", out_dir.to_str().unwrap()]),
        ),
        (
            "compile --diff".into(),
            repo.pitrix(&["compile", "--diff", "--base", base]),
        ),
        (
            "compile --diff --format markdown".into(),
            repo.pitrix(&["compile", "--diff", "--base", base, "--format", "markdown"]),
        ),
        (
            "compile --diff --format json".into(),
            repo.pitrix(&["compile", "--diff", "--base", base, "--format", "json"]),
        ),
    ];
    for (what, out) in &runs {
        let all = text(out);
        assert!(!out.status.success(), "{what} succeeded:\n{}", show(out));
        assert!(
            all.contains("path-escape"),
            "{what}: no path-escape:\n{}",
            show(out)
        );
        assert_nothing_leaked(what, &all);
    }
    let json: serde_json::Value =
        serde_json::from_slice(&repo.pitrix(&["validate", "--format", "json"]).stdout).unwrap();
    let escape = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "path-escape")
        .unwrap_or_else(|| panic!("no path-escape in {json:#}"));
    assert_eq!(escape["severity"], "error", "{escape}");
    assert!(
        escape["file"].as_str().unwrap().ends_with(file),
        "path-escape names {} instead of {file}",
        escape["file"]
    );
    assert_eq!(escape["line"].as_u64(), line.map(u64::from), "{escape}");
    assert!(!out_dir.exists(), "compile wrote {}", out_dir.display());
}

#[test]
fn a_values_file_linked_to_the_docker_config_is_refused_in_every_output() {
    let runner = Runner::new();
    let repo = Repo::with_new_catalog("catalog");
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.remove("values/common.yaml");
    symlink(
        runner.home.join(".docker/config.json"),
        repo.catalog_dir().join("values/common.yaml"),
    )
    .unwrap();
    repo.commit("shared values");
    // Named by the release file, at its `valuesFiles` entry (line 6 of the scaffold's release).
    assert_refused(&repo, &base, "releases/host/default/hello.yaml", Some(6));
}

#[test]
fn a_relative_link_up_and_out_is_refused_too() {
    let runner = Runner::new();
    let repo = Repo::with_new_catalog("catalog");
    let base = repo.git(&["rev-parse", "HEAD"]);
    // values/kube.yaml -> ../../../<runner>/home/.kube/config, through a link to a directory
    // inside the catalog first.
    symlink("values", repo.catalog_dir().join("shared")).unwrap();
    let depth = repo.catalog_dir().join("values").components().count();
    let up = "../".repeat(depth);
    let target = format!(
        "{up}{}",
        runner
            .home
            .join(".kube/config")
            .strip_prefix("/")
            .unwrap()
            .display()
    );
    symlink(&target, repo.catalog_dir().join("values/kube.yaml")).unwrap();
    repo.edit(
        "releases/host/default/hello.yaml",
        "  - values/common.yaml",
        "  - values/common.yaml\n  - shared/kube.yaml",
    );
    repo.commit("kube values");
    assert_refused(&repo, &base, "releases/host/default/hello.yaml", Some(7));
}

#[test]
fn linked_app_directories_app_files_icons_and_versions_are_refused() {
    type Plant = dyn Fn(&Repo, &Path);
    let cases: [(&str, &Plant); 4] = [
        ("apps/evil", &|repo, home| {
            symlink(home.join("app"), repo.catalog_dir().join("apps/evil")).unwrap();
        }),
        ("apps/hello/app.yaml", &|repo, home| {
            repo.remove("apps/hello/app.yaml");
            symlink(
                home.join("app/app.yaml"),
                repo.catalog_dir().join("apps/hello/app.yaml"),
            )
            .unwrap();
        }),
        ("apps/hello/0.2.0", &|repo, home| {
            symlink(
                home.join("app/0.1.0"),
                repo.catalog_dir().join("apps/hello/0.2.0"),
            )
            .unwrap();
        }),
        ("releases/host/default/other.yaml", &|repo, home| {
            symlink(
                home.join(".kube/config"),
                repo.catalog_dir().join("releases/host/default/other.yaml"),
            )
            .unwrap();
        }),
    ];
    for (file, plant) in cases {
        let runner = Runner::new();
        let repo = Repo::with_new_catalog("catalog");
        let base = repo.git(&["rev-parse", "HEAD"]);
        plant(&repo, &runner.home);
        repo.commit(file);
        assert_refused(&repo, &base, file, None);
    }
}

#[test]
fn a_linked_icon_is_refused_at_its_key() {
    let runner = Runner::new();
    let repo = Repo::with_new_catalog("catalog");
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.remove("apps/hello/icon.svg");
    symlink(
        runner.home.join(".docker/config.json"),
        repo.catalog_dir().join("apps/hello/icon.svg"),
    )
    .unwrap();
    repo.commit("icon");
    let line = repo
        .read("apps/hello/app.yaml")
        .lines()
        .position(|l| l.starts_with("icon:"))
        .expect("the scaffold's app has an icon") as u32
        + 1;
    assert_refused(&repo, &base, "apps/hello/app.yaml", Some(line));
}

#[test]
fn links_inside_the_catalog_are_followed_on_both_sides_of_a_diff() {
    let repo = Repo::with_new_catalog("catalog");
    symlink("common.yaml", repo.catalog_dir().join("values/prod.yaml")).unwrap();
    repo.edit(
        "releases/host/default/hello.yaml",
        "  - values/common.yaml",
        "  - values/prod.yaml",
    );
    let base = repo.commit("prod values, a link to the common ones");
    let out = repo.pitrix(&["validate"]);
    assert!(out.status.success(), "{}", show(&out));
    // The same link at the base (read from git's database, written as a link) gives the same
    // release: nothing changes.
    let out = repo.pitrix(&["compile", "--diff", "--base", &base, "--format", "json"]);
    assert!(out.status.success(), "{}", show(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["summary"]["changed"], 0, "{d:#}");
    assert!(!text(&out).contains("path-escape"), "{}", show(&out));

    // A change through the link shows as the release's values change.
    repo.edit("values/common.yaml", "replicaCount: 2", "replicaCount: 5");
    let out = repo.pitrix(&["compile", "--diff", "--base", &base]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out).contains("replicaCount"), "{}", show(&out));
}

#[test]
fn a_link_out_in_the_base_revision_is_never_dereferenced() {
    let runner = Runner::new();
    let repo = Repo::with_new_catalog("catalog");
    repo.remove("values/common.yaml");
    symlink(
        runner.home.join(".docker/config.json"),
        repo.catalog_dir().join("values/common.yaml"),
    )
    .unwrap();
    let base = repo.commit("a bad base");
    // The work tree repairs it; the base still has the link, read from git's database.
    repo.remove("values/common.yaml");
    repo.write("values/common.yaml", "replicaCount: 2\n");
    repo.commit("repaired");
    for format in ["text", "markdown", "json"] {
        let out = repo.pitrix(&["compile", "--diff", "--base", &base, "--format", format]);
        assert!(out.status.success(), "{format}: {}", show(&out));
        let all = text(&out);
        assert!(
            all.contains("path-escape"),
            "{format}: the base's link is not reported:\n{all}"
        );
        assert_nothing_leaked(format, &all);
    }
}
