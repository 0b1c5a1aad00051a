//! `pitrix import`, `pitrix lock` and `validate --online` against a Helm repository served on
//! loopback: charts packaged and indexed by real Helm (the oracle), then every bad case a
//! repository can present — each a clear error, and nothing written.

use crate::common;
use crate::repo_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::helm_oracle;
use repo_server::{Reply, Server};

/// A Helm repository on loopback: charts packaged and indexed by real Helm.
struct Repo {
    dir: tempfile::TempDir,
    server: Server,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::serve(dir.path());
        Repo { dir, server }
    }

    fn url(&self) -> String {
        self.server.url("/charts")
    }

    fn charts(&self) -> PathBuf {
        self.dir.path().join("charts")
    }

    /// Packages chart `name` `version` with real Helm into charts/ (the marker changes the
    /// archive's bytes), and re-indexes with real Helm.
    fn add(&self, name: &str, version: &str, marker: &str) {
        let src = tempfile::tempdir().unwrap();
        let chart = src.path().join(name);
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            format!(
                "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"7.2\"\ndescription: {name} for tests. In memory and fast.\nhome: https://example.test/{name}\nicon: {}\nmaintainers:\n  - name: Chart Team\n    email: charts@example.test\n",
                self.server.url(&format!("/icons/{name}.svg"))
            ),
        )
        .unwrap();
        std::fs::write(chart.join("values.yaml"), format!("marker: {marker}\n")).unwrap();
        std::fs::write(
            chart.join("templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  marker: {{ .Values.marker | quote }}\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("README.md"),
            format!("# {name}\n\nA test chart.\n"),
        )
        .unwrap();
        std::fs::create_dir_all(self.charts()).unwrap();
        let packaged = helm_oracle(&[
            "package",
            chart.to_str().unwrap(),
            self.charts().to_str().unwrap(),
        ]);
        assert_eq!(packaged["ok"], true, "{packaged}");
        self.reindex();
        std::fs::create_dir_all(self.dir.path().join("icons")).unwrap();
        std::fs::write(
            self.dir.path().join(format!("icons/{name}.svg")),
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><rect width=\"8\" height=\"8\" fill=\"red\"/></svg>\n",
        )
        .unwrap();
    }

    fn reindex(&self) {
        let _ = std::fs::remove_file(self.charts().join("index.yaml"));
        let indexed = helm_oracle(&["index", self.charts().to_str().unwrap()]);
        assert_eq!(indexed["ok"], true, "{indexed}");
    }

    fn archive(&self, name: &str, version: &str) -> Vec<u8> {
        std::fs::read(self.charts().join(format!("{name}-{version}.tgz"))).unwrap()
    }
}

fn catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cat");
    pitrix::scaffold::new_catalog(&root).unwrap();
    dir
}

fn root(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("cat")
}

fn pitrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .env_remove("PITRIX_CA_FILE")
        .output()
        .unwrap()
}

fn pitrix_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pitrix"));
    cmd.args(args).env_remove("PITRIX_CA_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
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

fn sha256(bytes: &[u8]) -> String {
    pitrix::chart::digest(bytes)
}

fn import(cat: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["import", url, "--catalog", cat.to_str().unwrap()];
    args.extend_from_slice(extra);
    pitrix(&args)
}

#[test]
fn import_is_verified_complete_and_idempotent() {
    let repo = Repo::new();
    repo.add("redis", "1.0.0", "a");
    repo.add("redis", "1.1.0", "b");
    repo.add("redis", "2.0.0-rc.1", "c");
    repo.add("nginx", "3.0.0", "d");
    let dir = catalog();
    let cat = root(&dir);

    let out = import(
        &cat,
        &repo.url(),
        &["--chart", "redis", "--versions", "2", "--category", "tools"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let app = cat.join("apps/redis");
    // The archives byte for byte, the newest two stable versions, no pre-release, no nginx.
    assert_eq!(
        std::fs::read(app.join("1.1.0.tgz")).unwrap(),
        repo.archive("redis", "1.1.0")
    );
    assert_eq!(
        std::fs::read(app.join("1.0.0.tgz")).unwrap(),
        repo.archive("redis", "1.0.0")
    );
    assert!(!app.join("2.0.0-rc.1.tgz").exists());
    assert!(!cat.join("apps/nginx").exists());
    let app_yaml = std::fs::read_to_string(app.join("app.yaml")).unwrap();
    for want in [
        "description: redis for tests. In memory and fast.",
        "abstraction: redis for tests.",
        "home: https://example.test/redis",
        "icon: icon.svg",
        "category: tools",
        "- name: Chart Team",
    ] {
        assert!(app_yaml.contains(want), "{want}:\n{app_yaml}");
    }
    assert!(
        std::fs::read_to_string(app.join("icon.svg"))
            .unwrap()
            .contains("<svg")
    );
    // The catalog with the imported app validates and compiles.
    let (_, diags) = pitrix::pipeline::check(&cat);
    assert!(
        diags.iter().all(|d| !d.is_error()),
        "{}",
        pitrix::diagnostics::render(&diags, &cat, pitrix::diagnostics::Format::Text)
    );
    assert!(pitrix::pipeline::build(&cat).is_ok());

    // A second run changes nothing, byte for byte.
    let before = snapshot(&cat);
    let out = import(
        &cat,
        &repo.url(),
        &["--chart", "redis", "--versions", "2", "--category", "tools"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to import"), "{}", text(&out));
    assert_eq!(snapshot(&cat), before);

    // --devel takes the pre-release; app.yaml is kept as it is (edited by hand here).
    std::fs::write(
        app.join("app.yaml"),
        app_yaml.replace("displayName: redis", "displayName: Redis"),
    )
    .unwrap();
    let out = import(&cat, &repo.url(), &["--chart", "redis", "--devel"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(app.join("2.0.0-rc.1.tgz").exists());
    assert!(
        std::fs::read_to_string(app.join("app.yaml"))
            .unwrap()
            .contains("displayName: Redis")
    );
    assert!(
        text(&out).contains("exists, kept as it is"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_changed_upstream_digest_is_reported_never_overwritten() {
    let repo = Repo::new();
    repo.add("redis", "1.0.0", "a");
    let dir = catalog();
    let cat = root(&dir);
    assert!(
        import(&cat, &repo.url(), &["--chart", "redis"])
            .status
            .success()
    );
    let before = snapshot(&cat);

    // The repository republishes 1.0.0 with other content.
    repo.add("redis", "1.0.0", "changed");
    let out = import(&cat, &repo.url(), &["--chart", "redis"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "apps/redis/1.0.0.tgz: the repository now serves redis 1.0.0 with digest sha256:"
        ),
        "{err}"
    );
    assert!(err.contains("not overwritten"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    assert_eq!(snapshot(&cat), before);
}

#[test]
fn import_all_versions_and_dry_run() {
    let repo = Repo::new();
    repo.add("nginx", "1.0.0", "a");
    repo.add("nginx", "1.0.1", "b");
    let dir = catalog();
    let cat = root(&dir);
    let before = snapshot(&cat);
    let out = import(&cat, &repo.url(), &["--all", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("+ apps/nginx/1.0.1.tgz"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("dry run: nothing written"),
        "{}",
        text(&out)
    );
    assert_eq!(snapshot(&cat), before);
    let out = import(&cat, &repo.url(), &["--all"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(cat.join("apps/nginx/1.0.0.tgz").exists() && cat.join("apps/nginx/1.0.1.tgz").exists());
}

/// Runs a failing import and checks the message and that the catalog is untouched.
fn refused(cat: &Path, url: &str, extra: &[&str], env: &[(&str, &str)], expect: &[&str]) {
    let before = snapshot(cat);
    let mut args = vec![
        "import",
        url,
        "--catalog",
        cat.to_str().unwrap(),
        "--chart",
        "redis",
    ];
    args.extend_from_slice(extra);
    let started = std::time::Instant::now();
    let out = pitrix_env(&args, env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in:\n{err}");
    }
    assert!(err.contains("= hint: "), "{err}");
    assert!(err.contains("error: nothing imported"), "{err}");
    assert_eq!(snapshot(cat), before, "the catalog changed");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn every_bad_repository_is_a_clear_error_and_writes_nothing() {
    let repo = Repo::new();
    repo.add("redis", "1.0.0", "a");
    let dir = catalog();
    let cat = root(&dir);
    let index_path = "/charts/index.yaml";

    // 404: a wrong URL.
    refused(
        &cat,
        &repo.server.url("/nothing-here"),
        &[],
        &[],
        &["/nothing-here/index.yaml: HTTP 404 Not Found"],
    );

    // Timeout: the index comes after 3s; the limit is 1s, no retries.
    repo.server
        .set(index_path, Reply::Slow(Duration::from_secs(3)));
    refused(
        &cat,
        &repo.url(),
        &["--timeout", "1s", "--retries", "0"],
        &[],
        &["no answer within 1s (timed out"],
    );
    repo.server.clear(index_path);

    // Malformed index.
    repo.server.set(
        index_path,
        Reply::Body(b"apiVersion: v1\nentries:\n  redis: [ {name: redis\n".to_vec()),
    );
    refused(
        &cat,
        &repo.url(),
        &[],
        &[],
        &["not a valid Helm repository index", "line "],
    );
    repo.server.set(
        index_path,
        Reply::Body(b"<html><body>Welcome to nginx!</body></html>\n".to_vec()),
    );
    refused(
        &cat,
        &repo.url(),
        &[],
        &[],
        &["not a valid Helm repository index"],
    );

    // Oversized index: 2 MiB against a 1 MiB limit.
    let mut big = b"apiVersion: v1\nentries: {}\n".to_vec();
    big.extend(std::iter::repeat_n(b'#', 2 * 1024 * 1024));
    repo.server.set(index_path, Reply::Body(big));
    refused(
        &cat,
        &repo.url(),
        &["--max-index-size", "1"],
        &[],
        &["larger than the limit of 1048576 bytes; refused"],
    );
    repo.server.clear(index_path);

    // Redirect loop.
    repo.server.set(
        "/loop/index.yaml",
        Reply::Redirect(repo.server.url("/loop/index.yaml")),
    );
    refused(
        &cat,
        &repo.server.url("/loop"),
        &[],
        &[],
        &["more than 5 redirects (a redirect loop?)"],
    );

    // Digest mismatch: the archive is not what the index says.
    repo.server.set(
        "/charts/redis-1.0.0.tgz",
        Reply::Body(b"\x1f\x8b\x08 not the chart".to_vec()),
    );
    refused(
        &cat,
        &repo.url(),
        &[],
        &[],
        &["does not match the index's digest", "refused"],
    );
    repo.server.clear("/charts/redis-1.0.0.tgz");

    // A chart the index does not have.
    let out = import(&cat, &repo.url(), &["--chart", "rediss"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("the repository has no chart `rediss`"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("did you mean `redis`?"),
        "{}",
        text(&out)
    );

    // Wrong credentials, and none.
    repo.server.require_auth("robot", "s3cret");
    refused(
        &cat,
        &repo.url(),
        &["--username-env", "REPO_USER", "--password-env", "REPO_PASS"],
        &[("REPO_USER", "robot"), ("REPO_PASS", "wrong-password")],
        &["HTTP 401: the repository refused the credentials"],
    );
    refused(
        &cat,
        &repo.url(),
        &[],
        &[],
        &["HTTP 401: the repository needs credentials"],
    );
    // The password never shows.
    let out = pitrix_env(
        &[
            "import",
            &repo.url(),
            "--catalog",
            cat.to_str().unwrap(),
            "--chart",
            "redis",
            "--username-env",
            "REPO_USER",
            "--password-env",
            "REPO_PASS",
        ],
        &[("REPO_USER", "robot"), ("REPO_PASS", "wrong-password")],
    );
    assert!(!text(&out).contains("wrong-password"));

    // And the right ones work.
    let out = pitrix_env(
        &[
            "import",
            &repo.url(),
            "--catalog",
            cat.to_str().unwrap(),
            "--chart",
            "redis",
            "--username-env",
            "REPO_USER",
            "--password-env",
            "REPO_PASS",
        ],
        &[("REPO_USER", "robot"), ("REPO_PASS", "s3cret")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(cat.join("apps/redis/1.0.0.tgz")).unwrap(),
        repo.archive("redis", "1.0.0")
    );
}

#[test]
fn transient_failures_are_retried() {
    let repo = Repo::new();
    repo.add("redis", "1.0.0", "a");
    let dir = catalog();
    let cat = root(&dir);
    repo.server.set("/charts/index.yaml", Reply::Status(503));
    let out = import(&cat, &repo.url(), &["--chart", "redis", "--retries", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("HTTP 503"), "{}", text(&out));
    assert_eq!(
        repo.server.hits("/charts/index.yaml"),
        3,
        "one try and two retries"
    );
}

// ---------------------------------------------------------------------------------------------
// pitrix lock and validate --online

/// A catalog whose release takes `local/<chart>` `<version>` from the loopback repo.
fn catalog_with_release(repo: &Repo, chart: &str, version: &str, creds: bool) -> tempfile::TempDir {
    let dir = catalog();
    let cat = root(&dir);
    let credentials = if creds {
        "credentials:\n  usernameEnv: LOCAL_USER\n  passwordEnv: LOCAL_PASS\n"
    } else {
        ""
    };
    std::fs::write(
        cat.join("repos/local.yaml"),
        format!("url: {}\nsyncPeriod: 0\n{credentials}", repo.url()),
    )
    .unwrap();
    std::fs::write(
        cat.join("releases/host/default/cache.yaml"),
        format!("app: local/{chart}\nversion: {version}\n"),
    )
    .unwrap();
    dir
}

fn validate(cat: &Path, online: bool, env: &[(&str, &str)]) -> serde_json::Value {
    let mut args = vec!["validate", cat.to_str().unwrap(), "--format", "json"];
    if online {
        args.push("--online");
    }
    let out = pitrix_env(&args, env);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)))
}

fn codes(v: &serde_json::Value) -> Vec<String> {
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}:{}",
                d["severity"].as_str().unwrap(),
                d["code"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn lock_records_digests_and_validate_checks_against_it() {
    let repo = Repo::new();
    repo.add("redis", "1.0.0", "a");
    repo.add("redis", "1.1.0", "b");
    let dir = catalog_with_release(&repo, "redis", "1.1.0", false);
    let cat = root(&dir);

    // No lock, offline: a warning, and it still compiles.
    let v = validate(&cat, false, &[]);
    assert_eq!(codes(&v), vec!["warning:unverified-release"], "{v:#}");
    assert!(
        v["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("pitrix.lock has no entry")
    );
    assert!(pitrix::pipeline::build(&cat).is_ok());

    // Online: verified against the live index.
    assert_eq!(codes(&validate(&cat, true, &[])), Vec::<String>::new());

    let out = pitrix(&["lock", cat.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let lock = std::fs::read_to_string(cat.join("pitrix.lock")).unwrap();
    let digest = sha256(&repo.archive("redis", "1.1.0"));
    assert!(
        lock.contains(&format!("digest = \"sha256:{digest}\"")),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("url = \"{}/redis-1.1.0.tgz\"", repo.url())),
        "{lock}"
    );
    assert!(
        !lock.contains("1.0.0"),
        "only what releases reference:\n{lock}"
    );

    // With the lock, offline validation is clean.
    assert_eq!(codes(&validate(&cat, false, &[])), Vec::<String>::new());
    // Locking again changes nothing.
    let out = pitrix(&["lock", cat.to_str().unwrap()]);
    assert!(text(&out).contains("up to date"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(cat.join("pitrix.lock")).unwrap(),
        lock
    );

    // Upstream republishes 1.1.0: --online reports the mismatch; lock refuses without --update.
    repo.add("redis", "1.1.0", "changed");
    let v = validate(&cat, true, &[]);
    assert_eq!(codes(&v), vec!["error:lock-mismatch"], "{v:#}");
    assert!(
        v["diagnostics"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("cat/pitrix.lock"),
        "{v:#}"
    );
    let out = pitrix(&["lock", cat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("lock-mismatch"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(cat.join("pitrix.lock")).unwrap(),
        lock
    );
    let out = pitrix(&["lock", cat.to_str().unwrap(), "--update"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        std::fs::read_to_string(cat.join("pitrix.lock"))
            .unwrap()
            .contains(&sha256(&repo.archive("redis", "1.1.0")))
    );

    // The repo's URL changes: the lock entry is stale, the release unverified again.
    let moved = std::fs::read_to_string(cat.join("repos/local.yaml"))
        .unwrap()
        .replace("/charts", "/charts/");
    std::fs::write(
        cat.join("repos/local.yaml"),
        moved.replace("/charts/", "/mirror"),
    )
    .unwrap();
    let v = validate(&cat, false, &[]);
    assert_eq!(codes(&v), vec!["warning:unverified-release"], "{v:#}");
    assert!(
        v["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("another URL"),
        "{v:#}"
    );
}

#[test]
fn versions_and_charts_the_index_lacks_are_errors() {
    let repo = Repo::new();
    repo.add("redis", "1.0.0", "a");
    let dir = catalog_with_release(&repo, "redis", "9.9.9", false);
    let cat = root(&dir);
    let v = validate(&cat, true, &[]);
    assert_eq!(codes(&v), vec!["error:unknown-version"], "{v:#}");
    assert!(
        v["diagnostics"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("1.0.0"),
        "{v:#}"
    );
    let out = pitrix(&["lock", cat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unknown-version"), "{}", text(&out));
    assert!(!cat.join("pitrix.lock").exists());

    let dir = catalog_with_release(&repo, "rediss", "1.0.0", false);
    let cat = root(&dir);
    let v = validate(&cat, true, &[]);
    assert_eq!(codes(&v), vec!["error:unknown-chart"], "{v:#}");
    assert!(
        v["diagnostics"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("local/redis"),
        "{v:#}"
    );

    // An index that cannot be fetched is an error on the repo file, online only.
    repo.server.set("/charts/index.yaml", Reply::Status(404));
    let v = validate(&cat, true, &[]);
    assert_eq!(codes(&v), vec!["error:repo-index"], "{v:#}");
    assert!(
        v["diagnostics"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("cat/repos/local.yaml"),
        "{v:#}"
    );
    let out = pitrix(&["lock", cat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!cat.join("pitrix.lock").exists());
}

#[test]
fn lock_and_online_use_the_repos_credentials_from_the_environment() {
    let repo = Repo::new();
    repo.add("redis", "1.0.0", "a");
    repo.server.require_auth("robot", "s3cret");
    let dir = catalog_with_release(&repo, "redis", "1.0.0", true);
    let cat = root(&dir);
    let good = [("LOCAL_USER", "robot"), ("LOCAL_PASS", "s3cret")];
    let bad = [("LOCAL_USER", "robot"), ("LOCAL_PASS", "nope-nope")];

    let v = validate(&cat, true, &bad);
    assert_eq!(codes(&v), vec!["error:repo-index"], "{v:#}");
    assert!(
        v["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("refused the credentials")
    );
    assert!(!v.to_string().contains("nope-nope"));
    let v = validate(&cat, true, &[]);
    assert!(
        v["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("LOCAL_USER is not set"),
        "{v:#}"
    );
    assert_eq!(codes(&validate(&cat, true, &good)), Vec::<String>::new());

    let out = pitrix_env(&["lock", cat.to_str().unwrap()], &bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(!cat.join("pitrix.lock").exists());
    let out = pitrix_env(&["lock", cat.to_str().unwrap()], &good);
    assert!(out.status.success(), "{}", text(&out));
    assert!(cat.join("pitrix.lock").exists());
}

// ---------------------------------------------------------------------------------------------
// a private CA

/// An HTTPS server (Python's http.server with TLS) over `dir`, with a certificate for
/// 127.0.0.1 signed by a CA made for the test; stopped (by its PID) on drop.
struct Https {
    child: std::process::Child,
    port: u16,
    ca: PathBuf,
    _pki: tempfile::TempDir,
}

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
}

fn https(dir: &Path) -> Https {
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    openssl(
        p,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=pitrix test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        p,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(p.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        p,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let script = r#"
import functools, http.server, ssl, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .arg(p.join("server.pem"))
        .arg(p.join("server.key"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line
        .trim()
        .parse()
        .expect("the HTTPS server prints its port");
    Https {
        child,
        port,
        ca: p.join("ca.pem"),
        _pki: pki,
    }
}

#[test]
fn a_private_ca_is_trusted_when_given_and_only_then() {
    let repo = Repo::new();
    repo.add("redis", "1.0.0", "a");
    let server = https(repo.dir.path());
    let url = format!("https://127.0.0.1:{}/charts", server.port);
    let dir = catalog();
    let cat = root(&dir);

    refused(&cat, &url, &["--retries", "0"], &[], &["certificate"]);
    let out = import(
        &cat,
        &url,
        &["--chart", "redis", "--ca-file", server.ca.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(cat.join("apps/redis/1.0.0.tgz")).unwrap(),
        repo.archive("redis", "1.0.0")
    );
    // PITRIX_CA_FILE does the same (for validate --online and lock too).
    let dir = catalog();
    let cat = root(&dir);
    let out = pitrix_env(
        &[
            "import",
            &url,
            "--catalog",
            cat.to_str().unwrap(),
            "--chart",
            "redis",
        ],
        &[("PITRIX_CA_FILE", server.ca.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out));
}
