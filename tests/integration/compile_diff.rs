//! `pitrix compile --diff` end to end, against real git repositories: what the diff shows in
//! each format, the package-changed error, exit codes, the default base, the work tree left
//! untouched, work shared with the work tree giving the same diff as compiling both sides in
//! full, the Markdown size limit, the published JSON schema, and secrets never shown.

use crate::diff_common;

use std::fs;
use std::path::Path;

use base64::Engine as _;
use diff_common::{Repo, git_in, show};
use serde_json::Value;

fn json_diff(repo: &Repo, args: &[&str]) -> Value {
    let mut all = vec!["compile", "--diff", "--format", "json"];
    all.extend_from_slice(args);
    let out = repo.pitrix(&all);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "compile --diff failed:\n{}",
        show(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", show(&out)))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A repository whose HEAD, against the first commit: a new version 0.2.0 of `hello` (new
/// image tag), the release upgraded to it with one more value, a new category, the repo
/// removed, and the app's description edited.
fn upgraded() -> (Repo, String) {
    let repo = Repo::with_new_catalog("catalog");
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.add_hello_version("0.1.0", "0.2.0");
    repo.edit(
        "apps/hello/0.2.0/values.yaml",
        "tag: \"1.27\"",
        "tag: \"1.28\"",
    );
    repo.edit(
        "releases/host/default/hello.yaml",
        "version: 0.1.0",
        "version: 0.2.0",
    );
    repo.edit(
        "releases/host/default/hello.yaml",
        "message: Hello from pitrix",
        "message: Hello from pitrix\n  replicaCount: 3",
    );
    repo.write(
        "categories/databases.yaml",
        "displayName: Databases\ndescription: Data stores\n",
    );
    repo.remove("repos/bitnami.yaml");
    repo.edit(
        "apps/hello/app.yaml",
        "says hello;",
        "says hello, politely;",
    );
    repo.commit("hello 0.2.0");
    (repo, base)
}

#[test]
fn json_lists_objects_fields_charts_releases_and_states() {
    let (repo, base) = upgraded();
    let d = json_diff(&repo, &["--base", &base]);
    assert_eq!(d["version"], 1);
    assert_eq!(d["catalog"], "my-store");
    assert_eq!(d["base"]["commit"], base.as_str());
    assert_eq!(d["head"]["label"], "work tree");

    let objects = d["objects"].as_array().unwrap();
    let actions: Vec<&str> = objects
        .iter()
        .map(|o| o["action"].as_str().unwrap())
        .collect();
    let mut sorted = actions.clone();
    sorted.sort_by_key(|a| ["removed", "changed", "added"].iter().position(|x| x == a));
    assert_eq!(
        actions, sorted,
        "removals first, then changes, then additions"
    );
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {objects:#?}"))
    };
    assert_eq!(find("Repo", "bitnami")["action"], "removed");
    assert_eq!(find("Category", "databases")["action"], "added");

    let app = find("Application", "hello");
    assert_eq!(app["action"], "changed");
    let paths: Vec<&str> = app["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/metadata/annotations/kubesphere.io~1description"),
        "{paths:?}"
    );
    assert!(paths.contains(&"/metadata/annotations/application.kubesphere.io~1latest-app-version"));
    assert!(
        app["yaml"].as_str().unwrap().contains(
            "+    kubesphere.io/description: A small web page that says hello, politely;"
        )
    );

    // The new version's package, file by file against the newest version on the base side.
    let cm = find("ConfigMap", "hello-0.2.0");
    assert_eq!(cm["action"], "added");
    assert_eq!(cm["namespace"], "extension-openpitrix");
    let pkg = &cm["package"];
    assert_eq!(pkg["kind"], "helm");
    assert_eq!(pkg["version"], "0.2.0");
    assert_eq!(pkg["comparedWith"], "0.1.0");
    let files: Vec<&str> = pkg["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["Chart.yaml", "values.yaml"]);
    let values_hunks = pkg["files"][1]["hunks"].as_str().unwrap();
    assert!(
        values_hunks.contains("-  tag: \"1.27\"\n+  tag: \"1.28\"\n"),
        "{values_hunks}"
    );
    assert_eq!(cm["yaml"], "", "never the base64 of a package");
    assert!(
        !serde_json::to_string(&d).unwrap().contains("H4sI"),
        "no gzip base64 anywhere"
    );

    let release = find("ApplicationRelease", "hello");
    let fields: Vec<(&str, &Value)> = release["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), &f["new"]))
        .collect();
    assert!(
        fields.contains(&("/spec/appVersionID", &Value::from("hello-0.2.0"))),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("/spec/values/replicaCount", &Value::from(3))),
        "values are decoded: {fields:?}"
    );

    assert_eq!(
        d["releases"],
        serde_json::json!([{
            "action": "changed", "name": "hello", "cluster": "host", "namespace": "default",
            "app": "hello", "from": "0.1.0", "to": "0.2.0", "valuesChanged": true
        }])
    );
    assert_eq!(
        d["states"],
        serde_json::json!([{
            "kind": "ApplicationVersion", "name": "hello-0.2.0", "app": "hello",
            "from": null, "to": "active", "message": null
        }])
    );
    assert_eq!(d["summary"]["errors"], 0);
    assert_eq!(d["summary"]["removed"], 1);
}

#[test]
fn text_and_markdown_show_the_same_changes() {
    let (repo, base) = upgraded();
    let out = repo.pitrix(&["compile", "--diff", "--base", &base]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        !text.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );
    let removed = text
        .find("- Repo bitnami (removed)")
        .expect("removal shown");
    let changed = text.find("~ Application hello").expect("change shown");
    let added = text
        .find("+ ConfigMap extension-openpitrix/hello-0.2.0 (added)")
        .unwrap();
    assert!(removed < changed && changed < added, "{text}");
    assert!(
        text.contains("  ~ hello  host/default  hello 0.1.0 → 0.2.0  values changed"),
        "{text}"
    );
    assert!(text.contains("helm package, version 0.2.0, compared with 0.1.0: 2 file(s)"));
    assert!(text.contains("-  tag: \"1.27\""));

    // On a terminal (here: asked for), the text is coloured.
    let compared =
        pitrix::diff::revision::compile_diff(&repo.catalog_dir(), Some(&base), None, None).unwrap();
    let options = pitrix::diff::render::Options {
        color: true,
        ..Default::default()
    };
    let coloured =
        pitrix::diff::render::render(&compared.diff, pitrix::diff::Format::Text, &options);
    assert!(coloured.contains("\x1b[31m"), "removals in red");
    assert!(
        coloured.contains("\x1b[32m+  tag: \"1.28\"\x1b[0m"),
        "{coloured}"
    );

    let out = repo.pitrix(&["compile", "--diff", "--base", &base, "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let md = stdout(&out);
    assert!(md.starts_with("<!-- pitrix-diff:my-store -->\n"), "{md}");
    let table = md
        .find("| kind | added | changed | removed |")
        .expect("summary table");
    let details = md.find("<details>").expect("per-app details");
    assert!(table < details, "summary table first");
    assert!(md.contains("<details><summary><b>app hello</b>"), "{md}");
    assert!(
        md.contains("| ✏️ | `hello` | hello | 0.1.0 → 0.2.0 | host / default | values changed |"),
        "{md}"
    );
    assert!(md.contains("```diff\n"));
    assert!(md.len() <= 65_536);
}

#[test]
fn a_changed_package_of_an_existing_version_is_an_error() {
    let repo = Repo::with_new_catalog("");
    // Uncommitted work-tree edit of the released version's chart.
    repo.edit(
        "apps/hello/0.1.0/templates/service.yaml",
        "port:",
        "port:  ",
    );
    let out = repo.pitrix(&["compile", "--diff", "--base", "main"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("error[package-changed]: version 0.1.0 of app `hello` (hello-0.1.0) changes its package: templates/service.yaml differ"), "{err}");
    assert!(
        err.contains("--> ") && err.contains("apps/hello/0.1.0"),
        "{err}"
    );
    assert!(err.contains("new version (e.g. 0.1.1)"), "{err}");
    assert!(
        stdout(&out).contains("error[package-changed]"),
        "the diff shows it too"
    );

    let out = repo.pitrix(&["compile", "--diff", "--base", "main", "--exit-code"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "errors are 2 with --exit-code: {}",
        show(&out)
    );

    let d = json_diff(&repo, &["--base", "main"]);
    assert_eq!(d["errors"][0]["code"], "package-changed");
    assert_eq!(d["errors"][0]["file"], "apps/hello/0.1.0");
    assert_eq!(d["errors"][0]["version"], "0.1.0");

    let out = repo.pitrix(&[
        "compile", "--diff", "--base", "main", "--format", "markdown",
    ]);
    assert!(
        stdout(&out).contains("> [!CAUTION]\n> **`package-changed`** version 0.1.0"),
        "{}",
        show(&out)
    );

    // -o is not written when the diff has errors.
    let out = repo.pitrix(&["compile", "--diff", "--base", "main", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!repo.catalog_dir().join("out").exists());
}

#[test]
fn exit_code_is_like_git_diff() {
    let repo = Repo::with_new_catalog("catalog");
    let out = repo.pitrix(&["compile", "--diff", "--base", "HEAD", "--exit-code"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("no changes"));
    let out = repo.pitrix(&[
        "compile", "--diff", "--base", "HEAD", "--format", "markdown",
    ]);
    assert!(stdout(&out).contains("**No changes**"));

    repo.edit(
        "categories/tools.yaml",
        "displayName: Tools",
        "displayName: Handy tools",
    );
    let out = repo.pitrix(&["compile", "--diff", "--base", "HEAD", "--exit-code"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let out = repo.pitrix(&["compile", "--diff", "--base", "HEAD"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "changes are not failures without --exit-code"
    );

    let out = repo.pitrix(&["compile", "--diff", "--base", "no-such-ref", "--exit-code"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("base revision `no-such-ref` not found"));

    // A catalog with errors gives no diff.
    repo.write(
        "releases/host/default/broken.yaml",
        "app: nope\nversion: 1.0.0\n",
    );
    let out = repo.pitrix(&["compile", "--diff", "--base", "HEAD", "--exit-code"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("error[unknown-app]"),
        "{}",
        show(&out)
    );
}

#[test]
fn the_default_base_is_the_merge_base_with_the_remote_default_branch() {
    let repo = Repo::with_new_catalog("catalog");
    // An "origin" that moves on after the branch point.
    let origin = tempfile::tempdir().unwrap();
    git_in(origin.path(), &["init", "-q", "--bare", "-b", "main"]);
    repo.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    repo.git(&["fetch", "-q", "origin"]);
    repo.git(&["remote", "set-head", "origin", "main"]);
    let branch_point = repo.git(&["rev-parse", "HEAD"]);
    repo.edit(
        "categories/tools.yaml",
        "displayName: Tools",
        "displayName: Main moved on",
    );
    repo.commit("on main, after the branch point");
    repo.git(&["push", "-q", "origin", "main"]);
    repo.git(&["checkout", "-q", "-b", "feature", &branch_point]);
    repo.edit(
        "apps/hello/app.yaml",
        "Says hello over HTTP.",
        "Says hello over HTTPS.",
    );
    repo.commit("feature work");

    let d = json_diff(&repo, &[]);
    assert_eq!(d["base"]["label"], "merge-base of HEAD and origin/main");
    assert_eq!(d["base"]["commit"], branch_point.as_str());
    let kinds: Vec<&str> = d["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["Application"],
        "only the branch's own change, not main's"
    );

    // Without a remote: the local main.
    repo.git(&["remote", "remove", "origin"]);
    let d = json_diff(&repo, &[]);
    assert_eq!(d["base"]["label"], "merge-base of HEAD and main");
}

#[test]
fn the_work_tree_and_the_index_are_untouched() {
    let (repo, base) = upgraded();
    repo.edit(
        "categories/tools.yaml",
        "displayName: Tools",
        "displayName: Uncommitted",
    );
    fs::write(
        repo.catalog_dir().join("apps/hello/notes.txt"),
        "untracked\n",
    )
    .unwrap();
    let index = || fs::read(repo.root().join(".git/index")).unwrap();
    let status = || repo.git(&["status", "--porcelain=v2", "--untracked-files=all"]);
    let files = || {
        let mut v: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(repo.root())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && !e.path().starts_with(repo.root().join(".git")))
            .map(|e| (e.path().display().to_string(), fs::read(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    };
    let (index_before, status_before, files_before) = (index(), status(), files());
    let out = repo.pitrix(&["compile", "--diff", "--base", &base]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(index(), index_before, "the index is not rewritten");
    assert_eq!(status(), status_before);
    assert_eq!(files(), files_before, "no file written in the work tree");
    // The uncommitted edit is part of the diff.
    assert!(stdout(&out).contains("Uncommitted"));
}

/// The diff with work shared (unchanged apps reused) equals the diff of two full compiles.
#[test]
fn shared_work_gives_the_same_diff_as_compiling_both_sides_in_full() {
    let repo = Repo::with_new_catalog("catalog");
    for app in ["alpha", "beta", "gamma"] {
        repo.copy_dir("apps/hello", &format!("apps/{app}"));
        repo.edit(
            &format!("apps/{app}/0.1.0/Chart.yaml"),
            "name: hello",
            &format!("name: {app}"),
        );
    }
    let base = repo.commit("three more apps");
    // Change one app (committed) and one more in the work tree only.
    repo.add_hello_version("0.1.0", "0.3.0");
    repo.commit("hello 0.3.0");
    repo.edit(
        "apps/gamma/app.yaml",
        "displayName: Hello",
        "displayName: Gamma",
    );

    // An edit git status is told not to see: beta cannot be shared either.
    repo.git(&[
        "update-index",
        "--assume-unchanged",
        "catalog/apps/beta/app.yaml",
    ]);
    repo.edit(
        "apps/beta/app.yaml",
        "displayName: Hello",
        "displayName: Beta",
    );
    assert!(!repo.git(&["status", "--porcelain"]).contains("beta"));

    let catalog = repo.catalog_dir();
    let cwd = std::env::current_dir().unwrap();
    let compared = pitrix::diff::revision::compile_diff(&catalog, Some(&base), None, None).unwrap();
    assert_eq!(compared.stats.apps_shared, 1, "alpha is shared");
    assert_eq!(
        compared.stats.apps_loaded, 3,
        "hello, beta and gamma are read from git"
    );
    assert_eq!(std::env::current_dir().unwrap(), cwd);

    // The same two sides compiled in full: the base exported with git archive.
    let export = tempfile::tempdir().unwrap();
    let tar = std::process::Command::new("git")
        .args(["archive", "--format=tar", &base, "catalog"])
        .current_dir(repo.root())
        .output()
        .unwrap();
    tar::Archive::new(&tar.stdout[..])
        .unpack(export.path())
        .unwrap();
    let (old, _) = pitrix::pipeline::build(&export.path().join("catalog")).unwrap();
    let (new, _) = pitrix::pipeline::build(&catalog).unwrap();
    let mut full = pitrix::diff::diff(&old, &new);
    let mut shared = compared.diff;
    shared.base = None;
    shared.head = None;
    full.base = None;
    assert_eq!(shared, full);
    assert!(shared.objects.iter().any(|o| o.name == "gamma"));
    assert!(shared.objects.iter().any(|o| o.name == "beta"));
}

#[test]
fn a_catalog_new_at_the_base_is_all_added() {
    let repo = Repo::empty("store");
    fs::write(repo.root().join("README.md"), "nothing yet\n").unwrap();
    let base = repo.commit("empty");
    pitrix::scaffold::new_catalog(&repo.catalog_dir()).unwrap();
    let d = json_diff(&repo, &["--base", &base]);
    let objects = d["objects"].as_array().unwrap();
    assert!(!objects.is_empty());
    assert!(objects.iter().all(|o| o["action"] == "added"));
    assert_eq!(d["releases"][0]["action"], "added");
    assert_eq!(d["releases"][0]["to"], "0.1.0");
    // A new app's package lists its files, with nothing to compare them with.
    let cm = objects
        .iter()
        .find(|o| o["name"] == "hello-0.1.0" && o["kind"] == "ConfigMap")
        .unwrap();
    assert_eq!(cm["package"]["comparedWith"], Value::Null);
    assert!(
        cm["package"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["hunks"].is_null())
    );
}

#[test]
fn a_base_that_does_not_validate_still_gives_a_diff_with_a_warning() {
    let repo = Repo::with_new_catalog("catalog");
    repo.write(
        "releases/host/default/ghost.yaml",
        "app: ghost\nversion: 1.0.0\n",
    );
    let base = repo.commit("a broken release");
    repo.remove("releases/host/default/ghost.yaml");
    let out = repo.pitrix(&["compile", "--diff", "--base", &base]);
    assert!(out.status.success(), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("warning[unknown-app]: base revision"), "{err}");
    assert!(
        stdout(&out).contains("- ApplicationRelease ghost (removed)"),
        "{}",
        show(&out)
    );
}

#[test]
fn markdown_always_fits_a_comment_and_points_at_the_full_diff() {
    let repo = Repo::with_new_catalog("catalog");
    // Several apps, each with a new version whose big template changes entirely.
    for i in 0..6 {
        let app = format!("big{i}");
        repo.copy_dir("apps/hello", &format!("apps/{app}"));
        repo.edit(
            &format!("apps/{app}/0.1.0/Chart.yaml"),
            "name: hello",
            &format!("name: {app}"),
        );
        let lines: String = (0..1500)
            .map(|n| format!("# line {n} of {app} before\n"))
            .collect();
        repo.write(&format!("apps/{app}/0.1.0/templates/notes.yaml"), &lines);
    }
    let base2 = repo.commit("big apps");
    for i in 0..6 {
        let app = format!("big{i}");
        let dir = format!("apps/{app}/0.2.0");
        repo.copy_dir(&format!("apps/{app}/0.1.0"), &dir);
        repo.edit(
            &format!("{dir}/Chart.yaml"),
            "version: 0.1.0",
            "version: 0.2.0",
        );
        let lines: String = (0..1500)
            .map(|n| format!("# line {n} of {app} after\n"))
            .collect();
        repo.write(&format!("{dir}/templates/notes.yaml"), &lines);
        let app_yaml = repo.read(&format!("apps/{app}/app.yaml"));
        repo.write(
            &format!("apps/{app}/app.yaml"),
            &format!("{app_yaml}  0.2.0:\n    state: active\n"),
        );
    }
    let full = repo.catalog_dir().join("full.md");
    let out = repo.pitrix(&[
        "compile",
        "--diff",
        "--base",
        &base2,
        "--format",
        "markdown",
        "--full-diff-url",
        "https://ci.example.com/run/1",
        "--diff-out",
        full.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let md = stdout(&out);
    assert!(md.len() <= 65_536, "{} bytes", md.len());
    assert!(md.chars().count() <= 65_536);
    assert!(
        md.contains("> [!NOTE]\n> This diff is shortened to fit a comment"),
        "{}",
        &md[md.len().saturating_sub(600)..]
    );
    assert!(md.contains("The full diff is https://ci.example.com/run/1"));
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert_eq!(md.matches("```").count() % 2, 0, "fences are balanced");
    let full = fs::read_to_string(full).unwrap();
    assert!(full.len() > 65_536, "the full diff is not cut");
    assert!(full.contains("+# line 1499 of big5 after"));
    assert!(!full.contains("[!NOTE]"));
}

/// grafana 10 → 12 in small: a new version whose README changes wholly and whose templates
/// change too. The shortened comment lists every changed file with its sizes and fills the
/// budget with hunks, the chart's and templates' before the README's.
#[test]
fn a_shortened_comment_lists_every_changed_file_and_shows_templates_first() {
    let repo = Repo::with_new_catalog("catalog");
    let readme = |side: &str| -> String {
        (0..4000)
            .map(|n| format!("README line {n} of the {side} documentation, long enough\n"))
            .collect()
    };
    let template = |t: usize, side: &str| -> String {
        (0..60)
            .map(|n| format!("# template {t} line {n} {side}\n"))
            .collect()
    };
    repo.write("apps/hello/0.1.0/README.md", &readme("old"));
    for t in 0..12 {
        repo.write(
            &format!("apps/hello/0.1.0/templates/extra{t:02}.yaml"),
            &template(t, "old"),
        );
    }
    let base = repo.commit("hello with docs");
    repo.add_hello_version("0.1.0", "0.2.0");
    repo.write("apps/hello/0.2.0/README.md", &readme("new"));
    for t in 0..12 {
        repo.write(
            &format!("apps/hello/0.2.0/templates/extra{t:02}.yaml"),
            &template(t, "new"),
        );
    }
    let out = repo.pitrix(&["compile", "--diff", "--base", &base, "--format", "markdown"]);
    assert!(out.status.success(), "{}", show(&out));
    let md = stdout(&out);
    assert!(md.len() <= 65_536, "{} bytes", md.len());
    assert!(md.len() > 40_000, "the budget is used: {} bytes", md.len());
    assert!(
        md.contains("This diff is shortened to fit a comment"),
        "{md}"
    );
    let at = |needle: &str| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in:\n{md}"))
    };
    let chart = at("  - changed `Chart.yaml` (");
    let first = at("  - changed `templates/extra00.yaml` (");
    let last = at("  - changed `templates/extra11.yaml` (");
    let docs = at("  - changed `README.md` (");
    assert!(chart < first && first < last && last < docs, "{md}");
    // Every template's hunks fit; the README's only in part.
    for t in 0..12 {
        assert!(
            md.contains(&format!("+# template {t} line 59 new\n")),
            "template {t}"
        );
    }
    // The README (one hunk: all removed, then all added) shows its first lines, then a cut.
    assert!(
        md.contains("-README line 0 of the old documentation"),
        "{md}"
    );
    assert!(!md.contains("+README line 3999 of the new documentation"));
    assert!(md.contains("`README.md` ("), "{md}");
    assert!(md.contains("), diff cut in hunk 1 of 1\n"), "{md}");
    assert!(md.contains("@@ … cut to fit the comment"), "{md}");
    // The version's own object diff is kept too.
    assert!(!md.contains("diff left out ("), "{md}");
    assert_eq!(md.matches("```").count() % 2, 0, "fences are balanced");
}

/// A minimal JSON Schema (draft 7) validator: the keywords schemars emits.
fn validate(schema: &Value, root: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = root
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("bad $ref {r}"));
        return validate(target, root, value, at, errors);
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        errors.push(format!("{at}: {value} not in {options:?}"));
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        errors.push(format!("{at}: {value} is not {c}"));
    }
    for (key, need) in [("anyOf", 1..usize::MAX), ("oneOf", 1..2)] {
        if let Some(Value::Array(subs)) = schema.get(key) {
            let passing = subs
                .iter()
                .filter(|s| {
                    let mut e = Vec::new();
                    validate(s, root, value, at, &mut e);
                    e.is_empty()
                })
                .count();
            if !need.contains(&passing) {
                errors.push(format!("{at}: {passing} of {key} match"));
            }
        }
    }
    if let Some(Value::Array(subs)) = schema.get("allOf") {
        for s in subs {
            validate(s, root, value, at, errors);
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && value.as_f64().is_some_and(|v| v < min)
    {
        errors.push(format!("{at}: {value} < {min}"));
    }
    if let Value::Object(map) = value {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    errors.push(format!("{at}: missing required `{r}`"));
                }
            }
        }
        for (k, v) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(s, root, v, &format!("{at}/{k}"), errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{at}: unknown key `{k}`")),
                    Some(s @ Value::Object(_)) => {
                        validate(s, root, v, &format!("{at}/{k}"), errors)
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            validate(s, root, v, &format!("{at}/{i}"), errors);
        }
    }
}

#[test]
fn json_output_follows_the_published_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/diff.schema.json");
    let generated = pitrix::diff::schema();
    if std::env::var_os("PITRIX_BLESS").is_some() {
        fs::write(&path, &generated).unwrap();
    }
    let published = fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        published, generated,
        "schema/diff.schema.json is stale: run `PITRIX_BLESS=1 cargo test --test integration compile_diff::json_output`"
    );
    let schema: Value = serde_json::from_str(&published).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for key in [
        "version", "catalog", "summary", "errors", "releases", "states", "objects",
    ] {
        assert!(required.contains(&key), "`{key}` is required at the top");
    }

    let (repo, base) = upgraded();
    repo.edit("apps/hello/0.1.0/values.yaml", "port: 8080", "port: 8081");
    for d in [
        json_diff(&repo, &["--base", &base]),
        json_diff(&repo, &["--base", "HEAD"]),
    ] {
        let mut errors = Vec::new();
        validate(&schema, &schema, &d, "", &mut errors);
        assert!(errors.is_empty(), "{errors:#?}");
    }
}

/// A secret planted in release values (under a secret-looking key and under a path the
/// chart's values.schema.json marks writeOnly), in a values file and in a chart's values.yaml
/// shows in no output, log or error message of any format.
#[test]
fn planted_secrets_appear_in_no_output_of_any_format() {
    const SECRETS: [&str; 7] = [
        "Hunter2-release-password",
        "open-sesame-write-only",
        "values-file-api-token",
        "chart-default-admin-password",
        "chart-write-only-default",
        "url-userinfo-in-release",
        "url-userinfo-in-chart",
    ];
    let repo = Repo::with_new_catalog("catalog");
    repo.write(
        "apps/hello/0.1.0/values.schema.json",
        r#"{"type": "object", "properties": {"auth": {"type": "object", "properties": {"phrase": {"type": "string", "writeOnly": true}}}}}"#,
    );
    repo.write("values/secret.yaml", "apiToken: old-token\n");
    let base = repo.commit("schema with a writeOnly value");

    // The new side: secrets everywhere, and a package change (an error) that involves one.
    repo.edit(
        "releases/host/default/hello.yaml",
        "message: Hello from pitrix",
        &format!(
            "message: Hello from pitrix\n  db:\n    password: {}\n  auth:\n    phrase: {}\n  databaseUrl: postgres://app:{}@db:5432/app",
            SECRETS[0], SECRETS[1], SECRETS[5]
        ),
    );
    repo.edit(
        "releases/host/default/hello.yaml",
        "  - values/common.yaml",
        "  - values/common.yaml\n  - values/secret.yaml",
    );
    repo.write("values/secret.yaml", &format!("apiToken: {}\n", SECRETS[2]));
    repo.edit(
        "apps/hello/0.1.0/values.yaml",
        "replicaCount: 1",
        &format!(
            "replicaCount: 1\nadminPassword: {}\nauth:\n  phrase: {}\nupstream: https://bot:{}@git.example.com/x",
            SECRETS[3], SECRETS[4], SECRETS[6]
        ),
    );

    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut seen = Vec::new();
    let full_dir = tempfile::tempdir().unwrap();
    for format in ["text", "markdown", "json"] {
        for extra in [&[][..], &["--exit-code"][..]] {
            let txt = full_dir.path().join(format!("{format}.txt"));
            let md = full_dir.path().join(format!("{format}.md"));
            let json = full_dir.path().join(format!("{format}.json"));
            let mut args = vec!["compile", "--diff", "--base", &base, "--format", format];
            args.extend_from_slice(extra);
            let files = [&txt, &md, &json].map(|p| p.to_str().unwrap().to_string());
            for f in &files {
                args.push("--diff-out");
                args.push(f);
            }
            let out = repo.pitrix(&args);
            assert!(stderr(&out).contains("package-changed"), "{}", show(&out));
            seen.push((format!("{format} {extra:?} stdout"), stdout(&out)));
            seen.push((format!("{format} {extra:?} stderr"), stderr(&out)));
            for f in files {
                seen.push((f.clone(), fs::read_to_string(&f).unwrap()));
            }
        }
    }
    // The library's own renderings and diagnostics, and validate's output.
    let compared =
        pitrix::diff::revision::compile_diff(&repo.catalog_dir(), Some(&base), None, None).unwrap();
    for format in [
        pitrix::diff::Format::Text,
        pitrix::diff::Format::Markdown,
        pitrix::diff::Format::Json,
    ] {
        let options = pitrix::diff::render::Options {
            color: true,
            limit: None,
            full_diff: None,
        };
        seen.push((
            format!("{format:?}"),
            pitrix::diff::render::render(&compared.diff, format, &options),
        ));
    }
    seen.push(("debug".into(), format!("{:?}", compared.diff)));
    for f in [
        pitrix::diagnostics::Format::Text,
        pitrix::diagnostics::Format::Json,
        pitrix::diagnostics::Format::Github,
    ] {
        let diags = compared.diff.diagnostics();
        seen.push((
            format!("diagnostics {f:?}"),
            pitrix::diagnostics::render(&diags, &repo.catalog_dir(), f),
        ));
    }
    let out = repo.pitrix(&["validate", "--format", "github"]);
    seen.push((
        "validate".into(),
        format!("{}{}", stdout(&out), stderr(&out)),
    ));

    for (what, text) in &seen {
        for s in SECRETS {
            assert!(!text.contains(s), "secret {s} in {what}:\n{text}");
            assert!(
                !text.contains(&b64(s)[..b64(s).len() - 4]),
                "base64 of {s} in {what}"
            );
        }
    }
    // The redacted values still say what changed.
    let json = &seen
        .iter()
        .find(|(w, _)| w.ends_with("json.json"))
        .unwrap()
        .1;
    assert!(json.contains("*** (changed, sha256:"), "{json}");
    let text = &seen.iter().find(|(w, _)| w == "Text").unwrap().1;
    assert!(text.contains("adminPassword: *** (sha256:"), "{text}");
}

/// A new chart version: its templates' changed lines show as they are (`export
/// REDIS_PASSWORD=` is script code, not a secret), its values.yaml's secrets and its Secret
/// template's data stay hidden.
#[test]
fn template_code_shows_values_and_secret_templates_stay_hidden() {
    let repo = Repo::with_new_catalog("catalog");
    repo.write(
        "apps/hello/0.1.0/templates/script.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\ndata:\n  start.sh: |\n    export REDIS_PASSWORD=$(cat /run/secrets/old)\n",
    );
    repo.write(
        "apps/hello/0.1.0/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: b2xkLXRlbXBsYXRlLXRva2Vu\n",
    );
    let base = repo.commit("hello with a script and a Secret template");
    repo.add_hello_version("0.1.0", "0.2.0");
    repo.edit(
        "apps/hello/0.2.0/templates/script.yaml",
        "export REDIS_PASSWORD=$(cat /run/secrets/old)",
        "export REDIS_PASSWORD=$(cat /run/secrets/new-template-line)",
    );
    repo.edit(
        "apps/hello/0.2.0/templates/secret.yaml",
        "b2xkLXRlbXBsYXRlLXRva2Vu",
        "bmV3LXRlbXBsYXRlLXRva2Vu",
    );
    repo.edit(
        "apps/hello/0.2.0/values.yaml",
        "replicaCount: 1",
        "replicaCount: 1\nredisPassword: values-yaml-password",
    );
    for format in ["text", "markdown", "json"] {
        let out = repo.pitrix(&["compile", "--diff", "--base", &base, "--format", format]);
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", show(&out));
        let shown = stdout(&out);
        assert!(
            shown.contains("export REDIS_PASSWORD=$(cat /run/secrets/new-template-line)"),
            "{format}: the template's changed line shows:\n{shown}"
        );
        for secret in ["values-yaml-password", "bmV3LXRlbXBsYXRlLXRva2Vu"] {
            assert!(
                !shown.contains(secret),
                "{format}: {secret} shown:\n{shown}"
            );
        }
        assert!(shown.contains("redisPassword: *** (sha256:"), "{shown}");
        assert!(shown.contains("data: *** (sha256:"), "{shown}");
    }
}

#[test]
fn a_new_version_is_compared_with_the_one_it_follows() {
    let repo = Repo::with_new_catalog("catalog");
    repo.add_hello_version("0.1.0", "0.3.0");
    let base = repo.commit("hello 0.3.0");
    // A backport between the two: compared with 0.1.0, not the newest.
    repo.add_hello_version("0.1.0", "0.2.0");
    let d = json_diff(&repo, &["--base", &base]);
    let cm = d["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["name"] == "hello-0.2.0")
        .unwrap();
    assert_eq!(cm["package"]["comparedWith"], "0.1.0");
    // A version after every other: compared with the newest.
    repo.add_hello_version("0.1.0", "0.4.0");
    let d = json_diff(&repo, &["--base", &base]);
    let cm = d["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["name"] == "hello-0.4.0")
        .unwrap();
    assert_eq!(cm["package"]["comparedWith"], "0.3.0");
}

/// `--env` reaches both sides of the diff: a change to one environment's settings shows when
/// diffing for that environment, and not for another.
#[test]
fn the_diff_is_compiled_for_the_environment_asked() {
    let repo = Repo::with_new_catalog("catalog");
    let settings = repo.read("pitrix.toml");
    repo.write(
        "pitrix.toml",
        &format!("{settings}\n[env.staging]\nworkspace = \"team-a\"\n"),
    );
    let base = repo.commit("an environment");
    repo.edit("pitrix.toml", "\"team-a\"", "\"team-b\"");

    let objects = |args: &[&str]| -> usize {
        let mut all = vec!["--base", base.as_str()];
        all.extend_from_slice(args);
        json_diff(&repo, &all)["objects"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert!(
        objects(&["--env", "staging"]) > 0,
        "staging's workspace changed: its objects move"
    );
    assert_eq!(objects(&[]), 0, "nothing changed outside staging");
}
