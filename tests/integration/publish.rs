//! `compile --publish`: out/charts/ is a Helm repository real Helm reads (through a loopback
//! server: `repo_index`, then `pull` of a chart whose digest matches), equal in entries and
//! digests to what `helm repo index` makes of the same packages, and deterministic.

use crate::common;
use crate::repo_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{copy_tree, example_catalog, helm_oracle};
use repo_server::Server;

fn pitrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn publish(catalog: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "compile",
        catalog.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--publish",
    ];
    args.extend_from_slice(extra);
    let o = pitrix(&args);
    assert!(o.status.success(), "{}", text(&o));
}

fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The example catalog outside git: `created` is then fixed (SOURCE_DATE_EPOCH or epoch).
fn example_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&example_catalog(), &dir.path().join("cat"));
    dir
}

fn index(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("charts/index.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// name → [(version, digest, url)], as an index lists them.
fn entries(index: &serde_json::Value) -> BTreeMap<String, Vec<(String, String, String)>> {
    index["entries"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, versions)| {
            let list = versions
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v["version"].as_str().unwrap().to_string(),
                        v["digest"].as_str().unwrap().to_string(),
                        v["urls"][0].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (name.clone(), list)
        })
        .collect()
}

#[test]
fn published_repository_is_what_helm_makes_of_the_same_packages() {
    let dir = example_copy();
    let cat = dir.path().join("cat");
    let out = dir.path().join("out");
    publish(&cat, &out, &[]);
    let ours = index(&out);
    let ours_entries = entries(&ours);

    // Active versions of active Helm apps only: postgres 1.0.0 is suspended, the
    // prometheus-lite 2.2.0-beta.1 is a draft, whoami is a YAML app.
    let listed: Vec<String> = ours_entries
        .iter()
        .flat_map(|(n, vs)| vs.iter().map(move |v| format!("{n}-{}", v.0)))
        .collect();
    assert_eq!(
        listed,
        [
            "nginx-1.1.0",
            "nginx-1.0.0",
            "postgres-1.1.0",
            "prometheus-lite-2.1.0",
            "prometheus-lite-2.0.0",
        ]
    );
    // Each package is the very bytes KubeSphere stores, and the digest is its sha256.
    let compiled = common::compile_files(&cat);
    for (name, versions) in &ours_entries {
        for (version, digest, url) in versions {
            let bytes = std::fs::read(out.join("charts").join(url)).unwrap();
            assert_eq!(&pitrix::chart::digest(&bytes), digest);
            let cm = compiled
                .iter()
                .find(|(p, _)| {
                    p.ends_with(format!("{name}-{version}.yaml"))
                        && p.starts_with("objects/configmaps")
                })
                .unwrap_or_else(|| panic!("no storage ConfigMap for {name}-{version}"));
            let cm: serde_json::Value = serde_yaml::from_slice(&cm.1).unwrap();
            use base64::Engine as _;
            let stored = base64::engine::general_purpose::STANDARD
                .decode(cm["binaryData"]["BinaryKey"].as_str().unwrap())
                .unwrap();
            assert_eq!(stored, bytes, "{name} {version}");
        }
    }

    // Real Helm's `helm repo index` over the same packages lists the same entries.
    let helm_dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(out.join("charts")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "tgz") {
            std::fs::copy(&p, helm_dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let helm = helm_oracle(&["index", helm_dir.path().to_str().unwrap()]);
    assert_eq!(helm["ok"], true, "{helm}");
    let helm_index: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(helm_dir.path().join("index.yaml")).unwrap())
            .unwrap();
    assert_eq!(entries(&helm_index), ours_entries);
    // And the same metadata per entry, but for `created` (Helm writes the time it ran).
    for (name, versions) in ours["entries"].as_object().unwrap() {
        for (i, v) in versions.as_array().unwrap().iter().enumerate() {
            let h = &helm_index["entries"][name][i];
            for key in v.as_object().unwrap().keys().filter(|k| *k != "created") {
                assert_eq!(&v[key], &h[key], "{name} {} `{key}`", v["version"]);
            }
        }
    }
}

#[test]
fn real_helm_reads_the_published_index_and_pulls_a_matching_chart() {
    let dir = example_copy();
    let cat = dir.path().join("cat");
    let out = dir.path().join("out");
    publish(&cat, &out, &[]);
    let server = Server::serve(&out);
    let url = server.url("/charts");

    let read = helm_oracle(&["repo-index", &url]);
    assert_eq!(read["ok"], true, "{read}");
    let helm_entries = entries(&read["index"]);
    assert_eq!(helm_entries, entries(&index(&out)));

    let dest = tempfile::tempdir().unwrap();
    let pulled = helm_oracle(&[
        "pull",
        "nginx",
        "--repo",
        &url,
        "--version",
        "1.1.0",
        "--dest",
        dest.path().to_str().unwrap(),
    ]);
    assert_eq!(pulled["ok"], true, "{pulled}");
    let want = &helm_entries["nginx"]
        .iter()
        .find(|v| v.0 == "1.1.0")
        .unwrap()
        .1;
    assert_eq!(pulled["digest"].as_str().unwrap(), want);
    assert!(server.hits("/charts/nginx-1.1.0.tgz") >= 1);

    // With --base-url the URLs are absolute, and Helm follows them.
    let out2 = dir.path().join("out2");
    publish(&cat, &out2, &["--base-url", &format!("{url}/")]);
    let absolute = entries(&index(&out2));
    assert_eq!(absolute["nginx"][0].2, format!("{url}/nginx-1.1.0.tgz"));
    let server2 = Server::serve(&out2);
    let dest2 = tempfile::tempdir().unwrap();
    let pulled = helm_oracle(&[
        "pull",
        "postgres",
        "--repo",
        &server2.url("/charts"),
        "--version",
        "1.1.0",
        "--dest",
        dest2.path().to_str().unwrap(),
    ]);
    assert_eq!(pulled["ok"], true, "{pulled}");
    // The archive came from the URL the index named (the first server).
    assert!(server.hits("/charts/postgres-1.1.0.tgz") >= 1);
}

#[test]
fn publishing_is_deterministic_and_created_comes_from_git() {
    let dir = example_copy();
    let cat = dir.path().join("cat");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    publish(&cat, &a, &[]);
    publish(&cat, &b, &[]);
    let (ta, tb) = (tree(&a), tree(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (p, bytes) in &ta {
        assert_eq!(
            bytes,
            &tb[p],
            "{} differs between two compiles",
            p.display()
        );
    }
    assert!(ta.keys().any(|p| p.starts_with("charts")) && ta.keys().any(|p| p.starts_with("site")));
    // Outside git: fixed times, so the index never churns.
    let idx = index(&a);
    assert_eq!(idx["generated"], "1970-01-01T00:00:00Z");

    // In git: a version's `created` is when its content was committed; `generated` the newest.
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(args)
            .current_dir(&cat)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.test")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.test")
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", text(&o));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    let first = "2024-01-01T00:00:00Z";
    let commit = |date: &str, msg: &str| {
        let o = Command::new("git")
            .args(["commit", "-q", "-m", msg])
            .current_dir(&cat)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.test")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.test")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    };
    commit(first, "one");
    // A later commit that touches no chart leaves the index as it was.
    std::fs::write(cat.join("values/extra.yaml"), "a: 1\n").unwrap();
    git(&["add", "."]);
    commit("2024-02-01T00:00:00Z", "values only");
    let c = dir.path().join("c");
    publish(&cat, &c, &[]);
    let idx = index(&c);
    assert_eq!(idx["generated"], first);
    assert_eq!(idx["entries"]["nginx"][0]["created"], first);
    // A new version gets its commit's time; the others keep theirs.
    copy_tree(&cat.join("apps/nginx/1.1.0"), &cat.join("apps/nginx/1.2.0"));
    let chart = cat.join("apps/nginx/1.2.0/Chart.yaml");
    let text = std::fs::read_to_string(&chart)
        .unwrap()
        .replace("version: 1.1.0", "version: 1.2.0");
    std::fs::write(&chart, text).unwrap();
    git(&["add", "."]);
    commit("2024-03-01T00:00:00Z", "nginx 1.2.0");
    let d = dir.path().join("d");
    publish(&cat, &d, &[]);
    let idx = index(&d);
    assert_eq!(idx["entries"]["nginx"][0]["version"], "1.2.0");
    assert_eq!(
        idx["entries"]["nginx"][0]["created"],
        "2024-03-01T00:00:00Z"
    );
    assert_eq!(idx["entries"]["nginx"][1]["created"], first);
    assert_eq!(idx["generated"], "2024-03-01T00:00:00Z");
}

#[test]
fn two_apps_publishing_one_chart_name_is_an_error() {
    let dir = example_copy();
    let cat = dir.path().join("cat");
    copy_tree(&cat.join("apps/nginx"), &cat.join("apps/nginx-copy"));
    let out = dir.path().join("out");
    let o = pitrix(&[
        "compile",
        cat.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--publish",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("publish-conflict"), "{}", text(&o));
    assert!(!out.exists(), "nothing written");
}

/// Dependencies in the index as `helm repo index` writes them: apiVersion v1's
/// `requirements.yaml` ones, and `repository: ""` kept for a dependency without a repository;
/// `condition`, `tags`, `alias`, `import-values` as Helm keeps them.
#[test]
fn index_dependencies_are_what_helm_repo_index_writes() {
    let dir = example_copy();
    let cat = dir.path().join("cat");
    let sub = |chart: &str, name: &str| {
        let d = cat.join(format!("apps/nginx/{chart}/charts/{name}"));
        std::fs::create_dir_all(d.join("templates")).unwrap();
        std::fs::write(
            d.join("Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
        )
        .unwrap();
        std::fs::write(d.join("values.yaml"), "enabled: true\n").unwrap();
    };
    // 1.0.0: an apiVersion v1 chart whose dependencies are in requirements.yaml.
    let chart = cat.join("apps/nginx/1.0.0/Chart.yaml");
    let text_of = std::fs::read_to_string(&chart).unwrap();
    std::fs::write(&chart, text_of.replace("apiVersion: v2", "apiVersion: v1")).unwrap();
    std::fs::write(
        cat.join("apps/nginx/1.0.0/requirements.yaml"),
        "dependencies:\n  - name: cache\n    version: 0.1.0\n    repository: https://charts.example.com\n    condition: cache.enabled\n  - name: local\n    version: \">=0.1.0\"\n    repository: file://charts/local\n    tags: [extras]\n    unknown: dropped\n",
    )
    .unwrap();
    sub("1.0.0", "cache");
    sub("1.0.0", "local");
    // 1.1.0: v2 dependencies, one without a repository, an alias, import-values.
    let chart = cat.join("apps/nginx/1.1.0/Chart.yaml");
    let mut text_of = std::fs::read_to_string(&chart).unwrap();
    text_of.push_str(
        "dependencies:\n  - name: vendored\n    version: 0.1.0\n  - name: cache\n    version: ~0.1.0\n    repository: \"\"\n    alias: redis\n    import-values:\n      - child: exports\n        parent: imported\n    tags: []\n",
    );
    std::fs::write(&chart, text_of).unwrap();
    sub("1.1.0", "vendored");
    sub("1.1.0", "cache");

    let out = dir.path().join("out");
    publish(&cat, &out, &[]);
    let ours = index(&out);
    let helm_dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(out.join("charts")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "tgz") {
            std::fs::copy(&p, helm_dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let helm = helm_oracle(&["index", helm_dir.path().to_str().unwrap()]);
    assert_eq!(helm["ok"], true, "{helm}");
    let helm_index: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(helm_dir.path().join("index.yaml")).unwrap())
            .unwrap();
    for i in 0..2 {
        let (o, h) = (
            &ours["entries"]["nginx"][i],
            &helm_index["entries"]["nginx"][i],
        );
        assert_eq!(o["version"], h["version"]);
        assert!(h["dependencies"].is_array(), "Helm lists them: {h}");
        assert_eq!(
            o["dependencies"], h["dependencies"],
            "nginx {}",
            o["version"]
        );
        // Every key Helm writes, pitrix writes, with the same value (but `created`).
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(o), keys(h), "nginx {}", o["version"]);
        for key in keys(h).iter().filter(|k| *k != "created") {
            assert_eq!(o[key], h[key], "nginx {} `{key}`", o["version"]);
        }
    }
    let v1 = &ours["entries"]["nginx"][1];
    assert_eq!(v1["dependencies"][1]["name"], "local");
    assert!(v1["dependencies"][1].get("unknown").is_none());
    let v2 = &ours["entries"]["nginx"][0];
    assert_eq!(v2["dependencies"][0]["repository"], "");
}
