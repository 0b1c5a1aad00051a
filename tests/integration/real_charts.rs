//! Issue 19 — what Helm accepts, pitrix accepts; what Helm refuses, pitrix refuses. Each case
//! is a chart like the real ones that broke (missing subcharts, cert-manager's `v` versions,
//! invalid UTF-8), checked by pitrix and, where Helm has a verdict, by real Helm (the oracle).

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{codes, dump, helm_oracle};
use pitrix::diagnostics::{Diagnostic, Severity};
use tempfile::TempDir;

struct Cat {
    _tmp: TempDir,
    root: PathBuf,
}

fn scaffold() -> Cat {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("cat");
    pitrix::scaffold::new_catalog(&root).expect("scaffold");
    Cat { _tmp: tmp, root }
}

impl Cat {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents.as_ref()).unwrap();
    }

    fn check(&self) -> Vec<Diagnostic> {
        pitrix::pipeline::check(&self.root).1
    }

    /// A Helm app `web` with version `version` whose Chart.yaml ends with `extra`.
    fn add_web(&self, version: &str, extra: &str) -> String {
        self.write("apps/web/app.yaml", "displayName: Web\n");
        let dir = format!("apps/web/{version}");
        self.write(
            &format!("{dir}/Chart.yaml"),
            format!(
                "apiVersion: v2\nname: web\ndescription: A chart.\ntype: application\nversion: {version}\n{extra}"
            ),
        );
        self.write(
            &format!("{dir}/templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
        );
        dir
    }

    /// A subchart `name` `version` as a directory under `parent`/charts/.
    fn add_subchart_dir(&self, parent: &str, name: &str, version: &str) {
        self.write(
            &format!("{parent}/charts/{name}/Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
        );
        self.write(
            &format!("{parent}/charts/{name}/templates/cm.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-{name}\n"
            ),
        );
    }

    /// Packs a chart directory of the catalog as pitrix does, into `dest`.
    fn pack(&self, dir: &str, dest: &Path) -> String {
        let files =
            pitrix::chart::read_dir(&self.path(dir), &pitrix::chart::Limits::default()).unwrap();
        let bytes = pitrix::chart::pack("web", &files);
        let path = dest.join("web.tgz");
        fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    }
}

#[track_caller]
fn assert_codes(diags: &[Diagnostic], errors: &[&str], warnings: &[&str]) {
    assert_eq!(
        (
            codes(diags, Severity::Error),
            codes(diags, Severity::Warning)
        ),
        (errors.to_vec(), warnings.to_vec()),
        "diagnostics:\n{}",
        dump(diags)
    );
}

/// Helm's verdict on installing a package (`helm template`: a client-side dry-run install).
fn helm_template(package: &str) -> serde_json::Value {
    helm_oracle(&["template", package])
}

// ---------------------------------------------------------------------------------------------
// 1. missing dependencies

const DEPS: &str = "dependencies:\n  - name: redis\n    version: ~17.3.0\n    repository: https://charts.example.com\n";

#[test]
fn a_dependency_missing_from_charts_is_an_error_as_helm_refuses_it() {
    let cat = scaffold();
    let dir = cat.add_web("1.0.0", DEPS);
    let diags = cat.check();
    assert_codes(&diags, &["chart-dependency-missing"], &[]);
    let d = &diags[0];
    assert_eq!(
        d.file.as_deref(),
        Some(Path::new(&format!("{dir}/Chart.yaml")))
    );
    assert_eq!(d.pos.map(|p| (p.line, p.column)), Some((7, 11)), "{d:#?}");
    assert!(d.message.contains("`redis`"), "{}", d.message);
    let hint = d.hint.as_deref().unwrap();
    assert!(hint.contains("helm dependency build"), "{hint}");

    // Helm refuses to install the same chart, naming the same dependency.
    let tmp = tempfile::tempdir().unwrap();
    let helm = helm_template(&cat.pack(&dir, tmp.path()));
    assert_eq!(helm["ok"], false, "Helm installs it: {helm}");
    let err = helm["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("missing in charts/") && err.contains("redis"),
        "{err}"
    );
}

#[test]
fn dependencies_present_as_directory_or_archive_are_accepted_by_both() {
    for archive in [false, true] {
        let cat = scaffold();
        let dir = cat.add_web("1.0.0", DEPS);
        cat.add_subchart_dir(&dir, "redis", "17.3.14");
        if archive {
            // The same subchart as a `.tgz` (as `helm dependency build` writes it).
            let sub = format!("{dir}/charts/redis");
            let files = pitrix::chart::read_dir(&cat.path(&sub), &pitrix::chart::Limits::default())
                .unwrap();
            let bytes = pitrix::chart::pack("redis", &files);
            fs::remove_dir_all(cat.path(&sub)).unwrap();
            cat.write(&format!("{dir}/charts/redis-17.3.14.tgz"), bytes);
        }
        assert_codes(&cat.check(), &[], &[]);
        let tmp = tempfile::tempdir().unwrap();
        let helm = helm_template(&cat.pack(&dir, tmp.path()));
        assert_eq!(helm["ok"], true, "archive={archive}: {helm}");
        assert!(
            helm["manifest"].as_str().unwrap().contains("-redis"),
            "the subchart renders: {helm}"
        );
    }
}

#[test]
fn a_v1_requirements_yaml_dependency_is_checked_too() {
    let cat = scaffold();
    let dir = cat.add_web("1.0.0", "");
    let chart = cat.path(&format!("{dir}/Chart.yaml"));
    let text = fs::read_to_string(&chart)
        .unwrap()
        .replace("apiVersion: v2", "apiVersion: v1")
        .replace("type: application\n", "");
    fs::write(&chart, text).unwrap();
    cat.write(&format!("{dir}/requirements.yaml"), DEPS);
    let diags = cat.check();
    assert_codes(&diags, &["chart-dependency-missing"], &[]);
    assert_eq!(
        diags[0].file.as_deref(),
        Some(Path::new(&format!("{dir}/requirements.yaml")))
    );

    let tmp = tempfile::tempdir().unwrap();
    let helm = helm_template(&cat.pack(&dir, tmp.path()));
    assert_eq!(helm["ok"], false, "Helm installs it: {helm}");

    cat.add_subchart_dir(&dir, "redis", "17.3.0");
    assert_codes(&cat.check(), &[], &[]);
}

#[test]
fn a_subchart_of_the_wrong_version_is_a_warning_as_helm_installs_it() {
    let cat = scaffold();
    let dir = cat.add_web("1.0.0", DEPS);
    cat.add_subchart_dir(&dir, "redis", "18.0.0");
    let diags = cat.check();
    assert_codes(&diags, &[], &["chart-dependency-missing"]);
    assert!(diags[0].message.contains("18.0.0"), "{}", diags[0].message);

    let tmp = tempfile::tempdir().unwrap();
    let helm = helm_template(&cat.pack(&dir, tmp.path()));
    assert_eq!(helm["ok"], true, "Helm refuses it: {helm}");
}

#[test]
fn an_unparsable_constraint_is_a_warning_not_an_error() {
    let cat = scaffold();
    let dir = cat.add_web(
        "1.0.0",
        "dependencies:\n  - name: redis\n    version: latest-and-greatest\n",
    );
    cat.add_subchart_dir(&dir, "redis", "17.3.0");
    assert_codes(&cat.check(), &[], &["chart-dependency-missing"]);
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn subcharts_a_gitignore_drops_are_an_error_when_the_catalog_is_read_from_git() {
    // kube-prometheus-stack's own .gitignore has `charts/*`: the work tree has the subchart,
    // git does not.
    let cat = scaffold();
    let dir = cat.add_web("1.0.0", DEPS);
    cat.add_subchart_dir(&dir, "redis", "17.3.14");
    cat.write(&format!("{dir}/.gitignore"), "charts/*\n");
    cat.write(&format!("{dir}/.helmignore"), ".gitignore\n");
    assert_codes(&cat.check(), &[], &[]);
    git(&cat.root, &["init", "-q", "-b", "main"]);
    git(&cat.root, &["add", "."]);
    git(&cat.root, &["commit", "-qm", "catalog"]);

    let Err(pitrix::diff::revision::Error::Catalog(diags)) =
        pitrix::diff::revision::compile_diff(&cat.root, Some("HEAD"), None, None)
    else {
        panic!("compile --diff accepts a chart whose subcharts git does not have");
    };
    assert_codes(&diags, &["chart-dependency-missing"], &[]);
    let d = &diags[0];
    assert!(
        d.message.contains("redis") && d.message.contains(".gitignore"),
        "{}",
        d.message
    );
    assert!(d.hint.as_deref().unwrap().contains("git add -f"), "{d:#?}");

    // Committed anyway (`git add -f`): git has it, all is well; the base (read from git, where
    // the subchart was missing) is only a warning.
    git(&cat.root, &["add", "-f", &format!("{dir}/charts")]);
    let compared =
        pitrix::diff::revision::compile_diff(&cat.root, Some("HEAD"), None, None).unwrap();
    let base = compared
        .base_problems
        .iter()
        .find(|d| d.code.as_str() == "chart-dependency-missing")
        .unwrap_or_else(|| panic!("{}", dump(&compared.base_problems)));
    // The hint names the .gitignore, which `helm dependency build` alone would not fix.
    assert!(
        base.hint.as_deref().unwrap().contains(".gitignore"),
        "{base:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. versions

#[test]
fn a_loose_version_helm_loads_is_a_warning_and_one_helm_refuses_an_error() {
    let cat = scaffold();
    let loose = cat.add_web("1.0", "");
    // Unquoted, `1.0` is a YAML number: Helm reads it as `1`, and pitrix says so.
    let diags = cat.check();
    assert_codes(
        &diags,
        &[],
        &["chart-version-not-semver", "chart-version-number"],
    );
    let tmp = tempfile::tempdir().unwrap();
    let package = cat.pack(&loose, tmp.path());
    assert_eq!(helm_oracle(&["load", &package])[0]["version"], "1");
    let number = diags
        .iter()
        .find(|d| d.code.as_str() == "chart-version-number")
        .unwrap();
    assert!(number.message.contains("as `1`"), "{}", number.message);
    // Quoted, it is read as written.
    cat.write(
        &format!("{loose}/Chart.yaml"),
        "apiVersion: v2\nname: web\ndescription: A chart.\ntype: application\nversion: \"1.0\"\n",
    );
    let diags = cat.check();
    assert_codes(&diags, &[], &["chart-version-not-semver"]);
    let tmp = tempfile::tempdir().unwrap();
    let package = cat.pack(&loose, tmp.path());
    let helm = helm_oracle(&["load", &package]);
    assert_eq!(helm[0]["ok"], true, "{helm}");
    assert_eq!(helm[0]["version"], "1.0");
    let lint = helm_oracle(&["lint", &cat.path(&loose).to_string_lossy()]);
    assert!(
        lint[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["severity"] == "WARNING"
                && m["message"] == "version '1.0' is not a valid SemVerV2"),
        "{lint}"
    );

    // Four numbers: Helm's loader refuses the chart, pitrix refuses it too.
    let cat = scaffold();
    let refused = cat.add_web("1.0.0.0", "");
    let diags = cat.check();
    assert_codes(&diags, &["chart-version-not-semver"], &[]);
    let lint = helm_oracle(&["lint", &cat.path(&refused).to_string_lossy()]);
    assert_eq!(lint[0]["ok"], false, "{lint}");
}

#[test]
fn a_v_prefixed_version_is_accepted_with_helm_lint_s_warning_and_ordered_as_kubesphere_does() {
    let cat = scaffold();
    let dir = cat.add_web("v1.19.6", "");
    cat.add_web("v1.9.0", "");
    cat.add_web("1.10.0", "");
    let diags = cat.check();
    assert_codes(
        &diags,
        &[],
        &["chart-version-not-semver", "chart-version-not-semver"],
    );
    let d = diags
        .iter()
        .find(|d| d.file.as_deref() == Some(Path::new(&format!("{dir}/Chart.yaml"))))
        .expect("a warning on v1.19.6");
    assert!(d.message.contains("v1.19.6"), "{}", d.message);
    assert_eq!(d.pos.map(|p| p.line), Some(5));

    let (compiled, _) = pitrix::pipeline::build(&cat.root).expect("compiles");
    let mut ids: Vec<&str> = compiled
        .objects
        .iter()
        .filter(|o| o.kind() == "ApplicationVersion" && o.name().starts_with("web-"))
        .map(|o| o.name())
        .collect();
    ids.sort_unstable();
    // KubeSphere's FormatVersion keeps a DNS-1123 version as it is, `v` included.
    assert_eq!(ids, ["web-1.10.0", "web-v1.19.6", "web-v1.9.0"]);
    let app = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "Application" && o.name() == "web")
        .unwrap();
    let app = app.to_json();
    assert_eq!(
        app["metadata"]["annotations"]["application.kubesphere.io/latest-app-version"], "v1.19.6",
        "KubeSphere trims the `v` to order: v1.19.6 > 1.10.0 > v1.9.0"
    );

    // Helm loads pitrix's package as that version, and its lint warns the same.
    let tmp = tempfile::tempdir().unwrap();
    let package = cat.pack(&dir, tmp.path());
    let helm = helm_oracle(&["load", &package]);
    assert_eq!(helm[0]["ok"], true, "{helm}");
    assert_eq!(helm[0]["version"], "v1.19.6");
    let lint = helm_oracle(&["lint", &cat.path(&dir).to_string_lossy()]);
    assert_eq!(lint[0]["ok"], true, "{lint}");
    assert!(
        lint[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["severity"] == "WARNING"
                && m["message"] == "version 'v1.19.6' is not a valid SemVerV2"),
        "{lint}"
    );
}

#[test]
fn invalid_utf8_in_chart_yaml_or_values_yaml_is_refused_as_helm_refuses_it() {
    for (file, text) in [
        (
            "Chart.yaml",
            &b"apiVersion: v2\nname: web\nversion: 1.0.0\n# caf\xe9\n"[..],
        ),
        ("values.yaml", &b"a: 1\n# caf\xe9 au lait\n"[..]),
    ] {
        let cat = scaffold();
        let dir = cat.add_web("1.0.0", "");
        cat.write(&format!("{dir}/{file}"), text);
        let diags = cat.check();
        assert_codes(&diags, &["yaml-syntax"], &[]);
        let d = &diags[0];
        assert_eq!(d.file.as_deref(), Some(Path::new(&format!("{dir}/{file}"))));
        assert_eq!(
            d.pos.map(|p| p.line),
            Some(
                text.split(|b| *b == b'\n')
                    .position(|l| !l.is_ascii())
                    .unwrap() as u32
                    + 1
            )
        );
        assert!(d.message.contains("UTF-8"), "{}", d.message);

        let tmp = tempfile::tempdir().unwrap();
        let helm = helm_oracle(&["load", &cat.pack(&dir, tmp.path())]);
        assert_eq!(helm[0]["ok"], false, "Helm loads it: {helm}");
        assert!(
            helm[0]["error"].as_str().unwrap().contains("UTF-8"),
            "{helm}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. one root cause, one error

#[test]
fn an_app_without_app_yaml_is_one_error_not_also_an_unknown_app_for_its_releases() {
    let cat = scaffold();
    fs::remove_file(cat.path("apps/hello/app.yaml")).unwrap();
    let diags = cat.check();
    assert_codes(&diags, &["missing-key"], &[]);
    assert_eq!(diags[0].file.as_deref(), Some(Path::new("apps/hello")));
    assert!(!diags[0].hint.as_deref().unwrap_or_default().is_empty());
}

#[test]
fn a_version_without_chart_yaml_is_one_error_with_a_hint() {
    let cat = scaffold();
    fs::remove_file(cat.path("apps/hello/0.1.0/Chart.yaml")).unwrap();
    let diags = cat.check();
    assert_codes(&diags, &["chart-missing"], &[]);
    assert_eq!(
        diags[0].file.as_deref(),
        Some(Path::new("apps/hello/0.1.0"))
    );
    assert!(!diags[0].hint.as_deref().unwrap_or_default().is_empty());
}

#[test]
fn a_release_of_a_version_that_is_not_there_still_is_an_error_with_a_hint() {
    // Suppression is for what did not load, not for what is not there.
    let cat = scaffold();
    let release = cat.path("releases/host/default/hello.yaml");
    let text = fs::read_to_string(&release).unwrap();
    fs::write(&release, text.replace("version: 0.1.0", "version: 0.9.0")).unwrap();
    let diags = cat.check();
    assert_codes(&diags, &["unknown-version"], &[]);
    assert!(!diags[0].hint.as_deref().unwrap_or_default().is_empty());
}

#[test]
fn published_v_prefixed_versions_are_ordered_as_helm_repo_index_orders_them() {
    let cat = scaffold();
    for v in ["v1.9.0", "v1.19.6", "1.10.0"] {
        cat.add_web(v, "");
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args([
            "compile",
            cat.root.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--publish",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let versions = |index: &Path| -> Vec<String> {
        let index: serde_json::Value =
            serde_yaml::from_str(&fs::read_to_string(index).unwrap()).unwrap();
        index["entries"]["web"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap().to_string())
            .collect()
    };
    let ours = versions(&out.join("charts/index.yaml"));
    assert_eq!(ours, ["v1.19.6", "1.10.0", "v1.9.0"]);

    let helm_dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(out.join("charts")).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("web-") {
            fs::copy(&p, helm_dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let helm = helm_oracle(&["index", helm_dir.path().to_str().unwrap()]);
    assert_eq!(helm["ok"], true, "{helm}");
    assert_eq!(versions(&helm_dir.path().join("index.yaml")), ours);
}

#[test]
fn a_dependency_disabled_by_its_condition_must_still_be_there_as_helm_requires() {
    let cat = scaffold();
    let dir = cat.add_web(
        "1.0.0",
        "dependencies:\n  - name: redis\n    version: ~17.3.0\n    condition: redis.enabled\n",
    );
    cat.write(&format!("{dir}/values.yaml"), "redis:\n  enabled: false\n");
    assert_codes(&cat.check(), &["chart-dependency-missing"], &[]);
    let tmp = tempfile::tempdir().unwrap();
    let helm = helm_template(&cat.pack(&dir, tmp.path()));
    assert_eq!(helm["ok"], false, "Helm installs it: {helm}");
}

#[test]
fn invalid_utf8_in_a_subchart_s_values_yaml_is_refused_as_helm_refuses_it() {
    let cat = scaffold();
    let dir = cat.add_web("1.0.0", DEPS);
    cat.add_subchart_dir(&dir, "redis", "17.3.14");
    let file = format!("{dir}/charts/redis/values.yaml");
    cat.write(&file, b"a: 1\n# caf\xe9\n");
    let diags = cat.check();
    assert_codes(&diags, &["yaml-syntax"], &[]);
    assert_eq!(diags[0].file.as_deref(), Some(Path::new(&file)));
    assert_eq!(diags[0].pos.map(|p| p.line), Some(2));

    let tmp = tempfile::tempdir().unwrap();
    let helm = helm_oracle(&["load", &cat.pack(&dir, tmp.path())]);
    assert_eq!(helm[0]["ok"], false, "Helm loads it: {helm}");
    assert!(
        helm[0]["error"].as_str().unwrap().contains("UTF-8"),
        "{helm}"
    );
}

/// `tar -czf` of the chart directory `dir` (whose last component is the archive's top
/// directory) into `dest`: a real archive, as `helm package` or any tar would make it.
fn tar_gz(dir: &Path, dest: &Path) {
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-czf")
        .arg(dest)
        .arg("-C")
        .arg(dir.parent().unwrap())
        .arg(dir.file_name().unwrap())
        .output()
        .expect("tar runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A chart directory `name` 1.0.0 under `parent`, with `values.yaml`.
fn write_chart(parent: &Path, name: &str, version: &str, values: &[u8]) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir_all(dir.join("templates")).unwrap();
    fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
    )
    .unwrap();
    fs::write(dir.join("values.yaml"), values).unwrap();
    fs::write(
        dir.join("templates/cm.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-{name}\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn invalid_utf8_inside_a_vendored_subchart_archive_is_refused_as_helm_refuses_it() {
    // charts/redis-17.3.14.tgz: its values.yaml is Latin-1. Then the same one level deeper:
    // redis's own vendored charts/common-2.0.0.tgz holds the Latin-1 values.yaml.
    for nested in [false, true] {
        let cat = scaffold();
        let dir = cat.add_web("1.0.0", DEPS);
        let build = tempfile::tempdir().unwrap();
        let latin1 = b"a: 1\n# caf\xe9\n";
        let redis = if nested {
            let redis = write_chart(build.path(), "redis", "17.3.14", b"a: 1\n");
            let common = write_chart(&build.path().join("src"), "common", "2.0.0", latin1);
            tar_gz(&common, &redis.join("charts/common-2.0.0.tgz"));
            redis
        } else {
            write_chart(build.path(), "redis", "17.3.14", latin1)
        };
        let archive = format!("{dir}/charts/redis-17.3.14.tgz");
        tar_gz(&redis, &cat.path(&archive));

        let diags = cat.check();
        assert_codes(&diags, &["yaml-syntax"], &[]);
        let d = &diags[0];
        assert_eq!(
            d.file.as_deref(),
            Some(Path::new(&archive)),
            "{}",
            dump(&diags)
        );
        let inside = if nested {
            "values.yaml inside charts/redis-17.3.14.tgz/charts/common-2.0.0.tgz"
        } else {
            "values.yaml inside charts/redis-17.3.14.tgz"
        };
        assert!(
            d.message.contains("UTF-8") && d.message.contains(inside),
            "{}",
            d.message
        );

        // Helm: the chart directory does not load, and neither does pitrix's package of it
        // (which holds the subchart unpacked, as `helm package` would).
        let tmp = tempfile::tempdir().unwrap();
        let helm = helm_oracle(&[
            "load",
            cat.path(&dir).to_str().unwrap(),
            &cat.pack(&dir, tmp.path()),
        ]);
        for verdict in helm.as_array().unwrap() {
            assert_eq!(verdict["ok"], false, "Helm loads it: {helm}");
            assert!(
                verdict["error"].as_str().unwrap().contains("UTF-8"),
                "{helm}"
            );
        }
    }

    // The same archive with a UTF-8 values.yaml: valid for both.
    let cat = scaffold();
    let dir = cat.add_web("1.0.0", DEPS);
    let build = tempfile::tempdir().unwrap();
    let redis = write_chart(build.path(), "redis", "17.3.14", "a: café\n".as_bytes());
    tar_gz(
        &redis,
        &cat.path(&format!("{dir}/charts/redis-17.3.14.tgz")),
    );
    assert_codes(&cat.check(), &[], &[]);
    let helm = helm_oracle(&["load", cat.path(&dir).to_str().unwrap()]);
    assert_eq!(helm[0]["ok"], true, "{helm}");
}

#[test]
fn an_undeclared_subchart_is_a_warning_as_helm_installs_it_and_only_lint_fails() {
    // charts/redis is there, Chart.yaml names no dependencies (test-nacos in KubeSphere's store
    // ships its mysql so); then the same with redis declared: no warning.
    for declared in [false, true] {
        let cat = scaffold();
        let dir = cat.add_web("1.0.0", if declared { DEPS } else { "" });
        cat.add_subchart_dir(&dir, "redis", "17.3.14");
        let diags = cat.check();
        let tmp = tempfile::tempdir().unwrap();
        let package = cat.pack(&dir, tmp.path());
        let lint = helm_oracle(&["lint", cat.path(&dir).to_str().unwrap()]);
        let lint_says = lint[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["message"] == "chart metadata is missing these dependencies: redis");
        assert_eq!(helm_template(&package)["ok"], true, "Helm installs it");
        if declared {
            assert_codes(&diags, &[], &[]);
            assert!(!lint_says, "{lint}");
            continue;
        }
        assert_codes(&diags, &[], &["chart-subchart-undeclared"]);
        assert!(lint_says, "{lint}");
        let d = &diags[0];
        assert_eq!(
            d.file.as_deref(),
            Some(Path::new(&format!("{dir}/Chart.yaml")))
        );
        assert!(
            d.message.contains("`redis`")
                && d.message
                    .contains("chart metadata is missing these dependencies: redis"),
            "{}",
            d.message
        );
    }
}

#[test]
fn a_vendored_subchart_archive_helm_cannot_load_is_refused_as_helm_refuses_it() {
    // Undeclared (so no dependency check speaks for it): garbage bytes named .tgz, and a real
    // archive of a directory without Chart.yaml.
    for broken in ["garbage", "no-chart-yaml"] {
        let cat = scaffold();
        let dir = cat.add_web("1.0.0", "");
        let archive = format!("{dir}/charts/cache-1.0.0.tgz");
        match broken {
            "garbage" => cat.write(&archive, b"this is not a gzip stream"),
            _ => {
                let build = tempfile::tempdir().unwrap();
                let sub = build.path().join("cache");
                fs::create_dir_all(&sub).unwrap();
                fs::write(sub.join("values.yaml"), "a: 1\n").unwrap();
                tar_gz(&sub, &cat.path(&archive));
            }
        }
        let diags = cat.check();
        assert_codes(&diags, &["chart-subchart-unreadable"], &[]);
        assert_eq!(
            diags[0].file.as_deref(),
            Some(Path::new(&archive)),
            "{broken}: {diags:#?}"
        );
        // Helm refuses to load the same chart directory.
        let helm = helm_oracle(&["load", cat.path(&dir).to_str().unwrap()]);
        assert_eq!(helm[0]["ok"], false, "{broken}: Helm loads it: {helm}");
    }
    // Named `_…`, Helm's loader skips it, and so does pitrix.
    let cat = scaffold();
    let dir = cat.add_web("1.0.0", "");
    cat.write(
        &format!("{dir}/charts/_cache-1.0.0.tgz"),
        b"not a gzip stream",
    );
    assert_codes(&cat.check(), &[], &[]);
    let helm = helm_oracle(&["load", cat.path(&dir).to_str().unwrap()]);
    assert_eq!(helm[0]["ok"], true, "{helm}");
}
