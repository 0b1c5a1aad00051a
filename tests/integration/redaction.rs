//! One redaction policy, end to end: secrets planted under every secret-looking key name, in a
//! chart's `writeOnly` value (valid, then failing the schema) and in repo credentials'
//! environment variables show in no output of `validate` (text, JSON, GitHub), `compile`,
//! `compile --diff` (text, Markdown, JSON, `--diff-out` files) nor in the output directory;
//! and chart file names with control or bidi characters show escaped in the diff.

use crate::diff_common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use diff_common::{Repo, pitrix, show};

/// Release values under each secret-looking key name (a planted secret each).
const RELEASE_SECRETS: &[(&str, &str)] = &[
    ("connectionString", "planted-01-connstr"),
    ("connection_string", "planted-02-connstr"),
    ("CONNECTION-STRING", "planted-03-connstr"),
    ("passphrase", "planted-04-passphrase"),
    ("htpasswd", "planted-05-htpasswd"),
    ("auth", "planted-06-auth"),
    ("basicAuth", "planted-07-basicauth"),
    ("client-key-data", "planted-08-keydata"),
    ("clientKeyData", "planted-09-keydata"),
    (".dockerconfigjson", "planted-10-docker"),
    ("Authorization", "Bearer planted-11-bearer"),
    ("kubeconfig", "planted-12-kubeconfig"),
    ("DBPassword", "planted-13-dbpassword"),
    ("PGPASSWORD", "planted-14-pgpassword"),
    ("dbPass", "planted-15-dbpass"),
];
/// Under `registry.auth` (docker's `auth`, nested) and in a PEM block.
const NESTED_AUTH: &str = "planted-16-nested-auth";
const PEM_BODY: &str = "planted17pembody";
/// The chart's `writeOnly` value: valid, then failing the schema's pattern.
const WRITE_ONLY_OK: &str = "planted-write-only-ok";
const WRITE_ONLY_BAD: &str = "Planted-Write-Only-Bad";
/// The new chart version's defaults.
const CHART_SECRETS: &[(&str, &str)] = &[
    ("connectionString", "planted-20-chart-connstr"),
    ("auth", "planted-21-chart-auth"),
    ("client-key-data", "planted-22-chart-keydata"),
    ("passphrase", "planted-23-chart-passphrase"),
];
/// The values of the environment variables the repo's credentials name.
const ENV_USER: &str = "planted-env-user-value";
const ENV_PASSWORD: &str = "planted-env-password-value";

fn run(repo: &Repo, args: &[&str]) -> Output {
    Command::new(pitrix())
        .args(args)
        .current_dir(repo.catalog_dir())
        .env_remove("NO_COLOR")
        .env("PLANTED_REPO_USER", ENV_USER)
        .env("PLANTED_REPO_PASSWORD", ENV_PASSWORD)
        .output()
        .expect("pitrix runs")
}

fn all_secrets() -> Vec<&'static str> {
    let mut s: Vec<&str> = RELEASE_SECRETS.iter().map(|(_, v)| *v).collect();
    // `Bearer planted-…`: the token is the secret.
    for v in s.iter_mut() {
        *v = v.trim_start_matches("Bearer ");
    }
    s.extend(CHART_SECRETS.iter().map(|(_, v)| *v));
    s.extend([
        NESTED_AUTH,
        PEM_BODY,
        WRITE_ONLY_OK,
        WRITE_ONLY_BAD,
        ENV_USER,
        ENV_PASSWORD,
    ]);
    s
}

fn release_values(write_only: &str) -> String {
    let mut v = String::from("  message: Hello from pitrix\n");
    for (k, s) in RELEASE_SECRETS {
        v.push_str(&format!("  {k}: \"{s}\"\n"));
    }
    v.push_str(&format!(
        "  registry:\n    auth: {NESTED_AUTH}\n    email: a@example.com\n"
    ));
    v.push_str(&format!(
        "  tls:\n    cert: |\n      -----BEGIN PRIVATE KEY-----\n      {PEM_BODY}\n      -----END PRIVATE KEY-----\n"
    ));
    v.push_str(&format!("  rootPhrase: {write_only}\n"));
    v
}

/// A repository whose HEAD has the scaffold and a schema marking `rootPhrase` writeOnly; the
/// work tree adds version 0.2.0 (secret defaults), upgrades the release to it with a secret
/// under every key name, and gives the repo credentials.
fn planted() -> (Repo, String) {
    let repo = Repo::with_new_catalog("catalog");
    repo.write(
        "apps/hello/0.1.0/values.schema.json",
        r#"{"type": "object", "properties": {"rootPhrase": {"type": "string", "pattern": "^[a-z-]+$", "writeOnly": true}}}"#,
    );
    let base = repo.commit("a schema with a writeOnly value");
    repo.add_hello_version("0.1.0", "0.2.0");
    let chart_values: String = CHART_SECRETS
        .iter()
        .map(|(k, s)| format!("{k}: {s}\n"))
        .collect();
    repo.edit(
        "apps/hello/0.2.0/values.yaml",
        "replicaCount: 1\n",
        &format!("replicaCount: 1\n{chart_values}"),
    );
    repo.edit(
        "releases/host/default/hello.yaml",
        "version: 0.1.0",
        "version: 0.2.0",
    );
    repo.edit(
        "releases/host/default/hello.yaml",
        "  message: Hello from pitrix\n",
        &release_values(WRITE_ONLY_OK),
    );
    repo.write(
        "repos/bitnami.yaml",
        "url: https://charts.bitnami.com/bitnami\nsyncPeriod: 1h\ncredentials:\n  usernameEnv: PLANTED_REPO_USER\n  passwordEnv: PLANTED_REPO_PASSWORD\n",
    );
    (repo, base)
}

fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, as text.
fn tree_text(dir: &Path) -> Vec<(String, String)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().display().to_string(),
                String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned(),
            )
        })
        .collect()
}

fn assert_no_secret(seen: &[(String, String)], base64_too: bool) {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for (what, text) in seen {
        for s in all_secrets() {
            assert!(!text.contains(s), "secret {s} in {what}:\n{text}");
            if base64_too {
                let encoded = b64(s);
                assert!(
                    !text.contains(&encoded[..encoded.len() - 4]),
                    "base64 of {s} in {what}"
                );
            }
        }
    }
}

#[test]
fn planted_secrets_under_every_key_name_appear_in_no_output() {
    let (repo, base) = planted();
    let mut seen = Vec::new();
    let mut files_seen = Vec::new();

    // The catalog is valid: validate, compile, compile --diff in every format.
    for format in ["text", "json", "github"] {
        let out = run(&repo, &["validate", "--format", format]);
        assert!(out.status.success(), "{}", show(&out));
        seen.push((format!("validate {format}"), text_of(&out)));
    }
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("out");
    let out = run(&repo, &["compile", "-o", target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    seen.push(("compile".into(), text_of(&out)));
    let diff_dir = tempfile::tempdir().unwrap();
    for format in ["text", "markdown", "json"] {
        let mut args = vec!["compile", "--diff", "--base", &base, "--format", format];
        let files: Vec<String> = ["txt", "md", "json"]
            .iter()
            .map(|ext| {
                let p = diff_dir.path().join(format!("{format}.{ext}"));
                p.to_str().unwrap().to_string()
            })
            .collect();
        for f in &files {
            args.push("--diff-out");
            args.push(f);
        }
        let out = run(&repo, &args);
        assert!(out.status.success(), "{}", show(&out));
        let shown = text_of(&out);
        assert!(
            shown.contains("ApplicationRelease") && shown.contains("***"),
            "the diff shows the release, redacted:\n{shown}"
        );
        seen.push((format!("compile --diff {format}"), shown));
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            seen.push((f, text));
        }
    }
    assert_no_secret(&seen, true);
    // The output directory stores the release's values (KubeSphere installs them: base64 in
    // ApplicationRelease.spec.values) and the chart (gzip): never as readable text.
    files_seen.extend(tree_text(&target));
    assert!(!files_seen.is_empty());
    assert_no_secret(&files_seen, false);

    // The writeOnly value now fails the schema: every report of the error hides it.
    repo.edit(
        "releases/host/default/hello.yaml",
        &format!("rootPhrase: {WRITE_ONLY_OK}"),
        &format!("rootPhrase: {WRITE_ONLY_BAD}"),
    );
    let mut seen = Vec::new();
    for format in ["text", "json", "github"] {
        let out = run(&repo, &["validate", "--format", format]);
        assert!(!out.status.success(), "{}", show(&out));
        let shown = text_of(&out);
        assert!(shown.contains("values-schema"), "{shown}");
        seen.push((format!("failing validate {format}"), shown));
    }
    let failed = out_dir.path().join("failed");
    let out = run(&repo, &["compile", "-o", failed.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", show(&out));
    seen.push(("failing compile".into(), text_of(&out)));
    for format in ["text", "markdown", "json"] {
        let out = run(
            &repo,
            &["compile", "--diff", "--base", &base, "--format", format],
        );
        assert!(!out.status.success(), "{}", show(&out));
        seen.push((format!("failing compile --diff {format}"), text_of(&out)));
    }
    let text = &seen[0].1;
    assert!(
        text.contains("rootPhrase: ***"),
        "the source line is shown without its value:\n{text}"
    );
    assert_no_secret(&seen, true);
    assert!(!failed.exists() || tree_text(&failed).is_empty());
}

#[test]
fn chart_file_names_with_control_and_bidi_characters_show_escaped() {
    let repo = Repo::with_new_catalog("catalog");
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.add_hello_version("0.1.0", "0.2.0");
    repo.write("apps/hello/0.2.0/files/evil\u{202e}lmth.txt", "a\n");
    repo.write("apps/hello/0.2.0/files/line\n+++ b/forged.txt", "b\n");
    repo.write(
        "apps/hello/0.2.0/files/notes.txt",
        "safe \u{2066}hidden\u{2069} and \x1b[2J\n",
    );
    let escaped_names = [
        "files/evil\\u{202e}lmth.txt",
        "files/line\\n+++ b/forged.txt",
    ];
    for format in ["text", "markdown"] {
        let out = run(
            &repo,
            &["compile", "--diff", "--base", &base, "--format", format],
        );
        assert!(out.status.success(), "{}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        for name in escaped_names {
            assert!(stdout.contains(name), "{format}: no {name:?} in\n{stdout}");
        }
        assert!(
            stdout.contains("safe \\u{2066}hidden\\u{2069} and \\u{1b}[2J"),
            "{format}: file text escaped too:\n{stdout}"
        );
        for raw in ['\u{202e}', '\u{2066}', '\u{2069}', '\x1b'] {
            assert!(!stdout.contains(raw), "{format}: raw {raw:?} in\n{stdout}");
        }
        assert!(
            !stdout
                .lines()
                .any(|l| l.trim_start().starts_with("+++ b/forged")),
            "{format}: a file name forged a line:\n{stdout}"
        );
    }
    // JSON is data: the exact names, JSON-escaped.
    let out = run(
        &repo,
        &["compile", "--diff", "--base", &base, "--format", "json"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cm = d["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "hello-0.2.0")
        .unwrap_or_else(|| panic!("{d:#}"));
    let paths: Vec<&str> = cm["package"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"files/evil\u{202e}lmth.txt"), "{paths:?}");
    assert!(paths.contains(&"files/line\n+++ b/forged.txt"), "{paths:?}");
}
