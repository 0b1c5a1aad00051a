//! The validation rules, one mutation at a time.
//!
//! Every test starts from a fresh `pitrix new` scaffold in a temporary directory, applies ONE
//! breaking change (edit, add or remove a file) and asserts the complete outcome: the exact set
//! of error codes (nothing unrelated), the file, the line and column of the offending key or
//! value, and a hint that helps. Positions are computed from the text the test wrote, so they are
//! exact without depending on the scaffold's comments staying the same.
//!
//! The renderings (text, JSON, GitHub annotations) and the exit codes are tested end to end
//! through the `pitrix` binary at the end of the file.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{codes, dump};
use pitrix::diagnostics::{Diagnostic, Pos, Severity};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// helpers

/// A scaffolded catalog in a temporary directory (removed on drop).
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

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Writes a file (creating its directories) and returns its text for position lookups.
    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents.as_ref()).unwrap_or_else(|e| panic!("write {rel}: {e}"));
        String::from_utf8_lossy(contents.as_ref()).into_owned()
    }

    /// Replaces `old` (which must occur exactly once) by `new` in a file; returns the new text.
    fn edit(&self, rel: &str, old: &str, new: &str) -> String {
        let text = self.read(rel);
        assert_eq!(
            text.matches(old).count(),
            1,
            "`{old}` must occur once in {rel}:\n{text}"
        );
        self.write(rel, text.replacen(old, new, 1))
    }

    fn remove(&self, rel: &str) {
        let path = self.path(rel);
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {rel}: {e}"));
        }
    }

    fn rename(&self, from: &str, to: &str) {
        let to = self.path(to);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::rename(self.path(from), to).unwrap();
    }

    /// Copies a directory tree (charts).
    fn copy_dir(&self, from: &str, to: &str) {
        fn copy(from: &Path, to: &Path) {
            fs::create_dir_all(to).unwrap();
            for entry in fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                let target = to.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    copy(&entry.path(), &target);
                } else {
                    fs::copy(entry.path(), target).unwrap();
                }
            }
        }
        copy(&self.path(from), &self.path(to));
    }

    fn check(&self) -> Vec<Diagnostic> {
        pitrix::pipeline::check(&self.root).1
    }

    /// A new Helm app with one version, valid on its own.
    fn add_helm_app(&self, dir: &str, chart_name: &str, version: &str) {
        self.write(
            &format!("apps/{dir}/app.yaml"),
            "displayName: Another app\n",
        );
        self.write(
            &format!("apps/{dir}/{version}/Chart.yaml"),
            chart_yaml(chart_name, version),
        );
        self.write(
            &format!("apps/{dir}/{version}/templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
        );
    }

    /// A new YAML app (`type: yaml`) with one version holding `manifests` as `web.yaml`.
    fn add_yaml_app(&self, dir: &str, version: &str, manifests: &str) -> String {
        self.write(
            &format!("apps/{dir}/app.yaml"),
            "displayName: Plain manifests\ntype: yaml\n",
        );
        self.write(&format!("apps/{dir}/{version}/web.yaml"), manifests)
    }
}

fn chart_yaml(name: &str, version: &str) -> String {
    format!(
        "apiVersion: v2\nname: {name}\ndescription: A chart.\ntype: application\nversion: {version}\n"
    )
}

/// 1-based line and column where `needle` starts in `text` (its first occurrence).
fn at(text: &str, needle: &str) -> Pos {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{text}"));
    pos_at(text, offset)
}

/// Position of the text right after `prefix` (the value of a `key: value` line).
fn after(text: &str, prefix: &str) -> Pos {
    let offset = text
        .find(prefix)
        .unwrap_or_else(|| panic!("`{prefix}` not in:\n{text}"));
    pos_at(text, offset + prefix.len())
}

fn pos_at(text: &str, offset: usize) -> Pos {
    let before = &text[..offset];
    Pos {
        line: before.matches('\n').count() as u32 + 1,
        column: before.rsplit('\n').next().unwrap().chars().count() as u32 + 1,
    }
}

/// The error codes are exactly `expected` (with multiplicity, any order) and there are no
/// warnings.
#[track_caller]
fn assert_errors(diags: &[Diagnostic], expected: &[&str]) {
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(
        (
            codes(diags, Severity::Error),
            codes(diags, Severity::Warning)
        ),
        (expected, vec![]),
        "diagnostics:\n{}",
        dump(diags)
    );
}

/// The one diagnostic with `code`.
#[track_caller]
fn the<'a>(diags: &'a [Diagnostic], code: &str) -> &'a Diagnostic {
    let found: Vec<_> = diags.iter().filter(|d| d.code.as_str() == code).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{code}`; diagnostics:\n{}",
        dump(diags)
    );
    found[0]
}

/// Checks the file and the position of a diagnostic.
#[track_caller]
fn assert_at(d: &Diagnostic, file: &str, pos: Option<Pos>) {
    assert_eq!(
        (d.file.as_deref(), d.pos),
        (Some(Path::new(file)), pos),
        "{d:#?}"
    );
}

/// Checks the file and the line (not the column) of a diagnostic.
#[track_caller]
fn assert_line(d: &Diagnostic, file: &str, line: u32) {
    assert_eq!(
        (d.file.as_deref(), d.pos.map(|p| p.line)),
        (Some(Path::new(file)), Some(line)),
        "{d:#?}"
    );
}

/// The hint, which must be there.
#[track_caller]
fn hint(d: &Diagnostic) -> &str {
    d.hint
        .as_deref()
        .unwrap_or_else(|| panic!("no hint on {d:#?}"))
}

#[track_caller]
fn assert_hint_contains(d: &Diagnostic, needle: &str) {
    let h = hint(d);
    assert!(h.contains(needle), "hint `{h}` lacks `{needle}`");
}

/// Deterministic incompressible bytes (xorshift64*).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A PNG signature and IHDR chunk claiming `w`×`h` pixels (enough for a header sniff).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(b"IHDR");
    png.extend(w.to_be_bytes());
    png.extend(h.to_be_bytes());
    png.extend([8, 6, 0, 0, 0]); // 8-bit RGBA, deflate, no filter, no interlace
    png.extend([0, 0, 0, 0]); // CRC (not checked by a header sniff)
    png.extend(0u32.to_be_bytes());
    png.extend(b"IEND");
    png.extend([0xAE, 0x42, 0x60, 0x82]);
    png
}

const APP: &str = "apps/hello/app.yaml";
const CHART: &str = "apps/hello/0.1.0/Chart.yaml";
const RELEASE: &str = "releases/host/default/hello.yaml";
const REPO: &str = "repos/bitnami.yaml";
const CATEGORY: &str = "categories/tools.yaml";
const SETTINGS: &str = "pitrix.toml";

// ---------------------------------------------------------------------------------------------
// the baseline

#[test]
fn scaffold_is_valid() {
    let cat = scaffold();
    let diags = cat.check();
    assert!(diags.is_empty(), "diagnostics:\n{}", dump(&diags));
    assert!(pitrix::pipeline::build(&cat.root).is_ok());
}

#[test]
fn every_error_has_a_file_and_a_hint() {
    // One catalog with many kinds of breakage: whatever is reported carries a file and a hint.
    let cat = scaffold();
    cat.edit(REPO, "syncPeriod: 1h", "syncPeriod: 1x");
    cat.edit(RELEASE, "version: 0.1.0", "version: 0.1.1");
    cat.edit(APP, "category: tools", "category: tool");
    cat.edit(CHART, "apiVersion: v2", "apiVersion: v3");
    cat.write("categories/dev_tools.yaml", "displayName: Dev\n");
    cat.write("repos/upload.yaml", "url: https://example.com/charts\n");
    let diags = cat.check();
    assert_eq!(diags.len(), 6, "{}", dump(&diags));
    for d in &diags {
        assert!(d.file.is_some(), "no file: {d:#?}");
        assert!(!hint(d).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// syntax

#[test]
fn yaml_syntax_error_points_at_the_error() {
    let cat = scaffold();
    let text = cat.edit(
        CATEGORY,
        "description: Everyday tools",
        "description: Everyday: tools",
    );
    let diags = cat.check();
    // The category is not loaded, so the app's `category: tools` is unknown too.
    assert_errors(&diags, &["unknown-category", "yaml-syntax"]);
    let d = the(&diags, "yaml-syntax");
    assert_at(d, CATEGORY, Some(at(&text, ": tools")));
    assert!(d.message.contains("invalid YAML"), "{}", d.message);
}

#[test]
fn yaml_syntax_unclosed_flow_sequence_is_reported_in_its_file() {
    let cat = scaffold();
    let text = cat.edit(
        REPO,
        "description: Bitnami's public charts",
        "description: [unclosed",
    );
    let diags = cat.check();
    assert_errors(&diags, &["yaml-syntax"]);
    let d = the(&diags, "yaml-syntax");
    assert_eq!(d.file.as_deref(), Some(Path::new(REPO)));
    let pos = d.pos.expect("a position");
    // The scanner notices at or after the opening bracket, never before it.
    assert!(
        pos.line >= at(&text, "[unclosed").line,
        "{pos:?} is before the `[`"
    );
}

#[test]
fn yaml_duplicate_key_points_at_the_second_key() {
    let cat = scaffold();
    let text = cat.edit(
        APP,
        "home: https://example.com/hello\n",
        "home: https://example.com/hello\ndisplayName: Again\n",
    );
    let diags = cat.check();
    // app.yaml does not load: one root cause, one error (not also the release of `hello`).
    assert_errors(&diags, &["yaml-syntax"]);
    let d = the(&diags, "yaml-syntax");
    assert_at(d, APP, Some(at(&text, "displayName: Again")));
    assert!(
        d.message.contains("duplicate key `displayName`") && d.message.contains("line 2"),
        "{}",
        d.message
    );
}

#[test]
fn toml_syntax_error_points_at_the_value() {
    let cat = scaffold();
    let text = cat.edit(SETTINGS, r#"name = "my-store""#, "name = my-store");
    let diags = cat.check();
    assert_errors(&diags, &["toml-syntax"]);
    let d = the(&diags, "toml-syntax");
    assert_at(d, SETTINGS, Some(after(&text, "name = ")));
}

// ---------------------------------------------------------------------------------------------
// unknown-key

#[test]
fn unknown_key_in_app_yaml_suggests_the_right_one() {
    let cat = scaffold();
    let text = cat.edit(APP, "displayName: Hello", "displayNam: Hello");
    let diags = cat.check();
    // app.yaml does not load: one root cause, one error (not also the release of `hello`).
    assert_errors(&diags, &["unknown-key"]);
    let d = the(&diags, "unknown-key");
    assert_at(d, APP, Some(Pos { line: 2, column: 1 }));
    assert_eq!(d.pos, Some(at(&text, "displayNam:")));
    assert!(d.message.contains("`displayNam`"), "{}", d.message);
    assert_hint_contains(d, "did you mean `displayName`");
}

#[test]
fn unknown_key_in_a_nested_mapping() {
    let cat = scaffold();
    let text = cat.edit(
        APP,
        "    email: platform@example.com",
        "    emial: platform@example.com",
    );
    let diags = cat.check();
    assert_errors(&diags, &["unknown-key"]);
    let d = the(&diags, "unknown-key");
    assert_at(d, APP, Some(at(&text, "emial:")));
    assert_hint_contains(d, "did you mean `email`");
}

#[test]
fn unknown_key_in_a_category_file() {
    let cat = scaffold();
    let text = cat.write(CATEGORY, "displayName: Tools\ncolour: blue\n");
    let diags = cat.check();
    assert_errors(&diags, &["unknown-category", "unknown-key"]);
    let d = the(&diags, "unknown-key");
    assert_at(d, CATEGORY, Some(at(&text, "colour")));
    // Nothing is close: the hint lists what is allowed.
    assert_hint_contains(d, "`displayName`");
}

#[test]
fn unknown_key_in_pitrix_toml_suggests_the_right_one() {
    let cat = scaffold();
    let text = cat.edit(
        SETTINGS,
        r#"workspace = "system-workspace""#,
        r#"workspce = "system-workspace""#,
    );
    let diags = cat.check();
    assert_errors(&diags, &["unknown-key"]);
    let d = the(&diags, "unknown-key");
    assert_at(d, SETTINGS, Some(at(&text, "workspce")));
    assert!(d.message.contains("`workspce`"), "{}", d.message);
    assert_hint_contains(d, "did you mean `workspace`");
}

#[test]
fn unknown_table_in_pitrix_toml_suggests_the_right_one() {
    let cat = scaffold();
    let text = cat.edit(SETTINGS, "[clusters.host]", "[cluster.host]");
    let diags = cat.check();
    assert_errors(&diags, &["unknown-key"]);
    let d = the(&diags, "unknown-key");
    assert_at(d, SETTINGS, Some(at(&text, "cluster.host")));
    assert_hint_contains(d, "did you mean `clusters`");
}

// ---------------------------------------------------------------------------------------------
// literal-secret

#[test]
fn literal_secret_password_under_credentials() {
    let cat = scaffold();
    let text = cat.write(
        REPO,
        "url: https://charts.example.com\ncredentials:\n  usernameEnv: REPO_USER\n  password: hunter2\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["literal-secret"]);
    let d = the(&diags, "literal-secret");
    assert_at(d, REPO, Some(at(&text, "password:")));
    assert_hint_contains(d, "passwordEnv");
    assert!(!d.message.contains("hunter2"), "{}", d.message);
}

#[test]
fn literal_secret_token_in_app_yaml() {
    let cat = scaffold();
    let text = cat.edit(
        APP,
        "icon: icon.svg\n",
        "icon: icon.svg\napiToken: abc123\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["literal-secret"]);
    let d = the(&diags, "literal-secret");
    assert_at(d, APP, Some(at(&text, "apiToken")));
    assert!(!d.message.contains("abc123"), "{}", d.message);
    hint(d);
}

#[test]
fn literal_secret_user_info_in_repo_url() {
    let cat = scaffold();
    let text = cat.edit(
        REPO,
        "url: https://charts.bitnami.com/bitnami",
        "url: https://admin:hunter2@charts.bitnami.com/bitnami",
    );
    let diags = cat.check();
    assert_errors(&diags, &["literal-secret"]);
    let d = the(&diags, "literal-secret");
    assert_at(d, REPO, Some(after(&text, "url: ")));
    assert_hint_contains(d, "credentials");
    assert!(!d.message.contains("hunter2"), "{}", d.message);
}

#[test]
fn an_at_sign_in_the_url_path_is_not_user_info() {
    let cat = scaffold();
    cat.edit(
        REPO,
        "url: https://charts.bitnami.com/bitnami",
        "url: https://charts.example.com/team@infra/charts",
    );
    let diags = cat.check();
    assert_errors(&diags, &[]);
}

// ---------------------------------------------------------------------------------------------
// missing-key

#[test]
fn missing_key_release_without_app() {
    let cat = scaffold();
    let text = cat.edit(RELEASE, "app: hello\n", "");
    let diags = cat.check();
    assert_errors(&diags, &["missing-key"]);
    let d = the(&diags, "missing-key");
    assert!(d.message.contains("`app`"), "{}", d.message);
    // The mapping that lacks the key, which starts at its first key.
    assert_line(d, RELEASE, at(&text, "version:").line);
}

#[test]
fn missing_key_app_directory_without_app_yaml() {
    let cat = scaffold();
    cat.write("apps/world/0.1.0/Chart.yaml", chart_yaml("world", "0.1.0"));
    let diags = cat.check();
    assert_errors(&diags, &["missing-key"]);
    let d = the(&diags, "missing-key");
    assert_at(d, "apps/world", None);
    assert!(d.message.contains("app.yaml"), "{}", d.message);
    assert_hint_contains(d, "app.yaml");
}

#[test]
fn missing_key_repo_without_url() {
    let cat = scaffold();
    let text = cat.edit(REPO, "url: https://charts.bitnami.com/bitnami\n", "");
    let diags = cat.check();
    assert_errors(&diags, &["missing-key"]);
    let d = the(&diags, "missing-key");
    assert!(d.message.contains("`url`"), "{}", d.message);
    assert_line(d, REPO, at(&text, "syncPeriod").line);
}

#[test]
fn missing_key_credentials_need_both_variables() {
    let cat = scaffold();
    let text = cat.edit(
        REPO,
        "syncPeriod: 1h\n",
        "syncPeriod: 1h\ncredentials:\n  usernameEnv: REPO_USER\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["missing-key"]);
    let d = the(&diags, "missing-key");
    // The `credentials` mapping, which starts at its first key.
    assert_line(d, REPO, at(&text, "usernameEnv").line);
    assert_hint_contains(d, "both");
}

#[test]

fn missing_key_catalog_name_in_pitrix_toml() {
    let cat = scaffold();
    let text = cat.edit(SETTINGS, "name = \"my-store\"", "");
    let diags = cat.check();
    assert_errors(&diags, &["missing-key"]);
    let d = the(&diags, "missing-key");
    assert_eq!(d.file.as_deref(), Some(Path::new(SETTINGS)));
    assert_eq!(d.pos.map(|p| p.line), Some(at(&text, "[catalog]").line));
    assert!(d.message.contains("name"), "{}", d.message);
}

// ---------------------------------------------------------------------------------------------
// invalid-value

#[test]
fn invalid_value_app_type() {
    let cat = scaffold();
    let text = cat.edit(APP, "type: helm", "type: chart");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-value"]);
    let d = the(&diags, "invalid-value");
    assert_at(d, APP, Some(after(&text, "type: ")));
    assert!(
        d.message.contains("`chart`")
            && d.message.contains("`helm`")
            && d.message.contains("`yaml`"),
        "{}",
        d.message
    );
}

#[test]
fn invalid_value_app_type_with_suggestion() {
    let cat = scaffold();
    let text = cat.edit(APP, "type: helm", "type: hlem");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-value"]);
    let d = the(&diags, "invalid-value");
    assert_at(d, APP, Some(after(&text, "type: ")));
    assert_hint_contains(d, "did you mean `helm`");
}

#[test]
fn invalid_value_state_suggests_active() {
    let cat = scaffold();
    let text = cat.edit(APP, "state: active\nversions:", "state: actve\nversions:");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-value"]);
    let d = the(&diags, "invalid-value");
    assert_at(
        d,
        APP,
        Some(Pos {
            line: 12,
            column: 8,
        }),
    );
    assert_eq!(d.pos, Some(after(&text, "\nstate: ")));
    assert!(d.message.contains("`actve`"), "{}", d.message);
    assert_hint_contains(d, "did you mean `active`");
}

#[test]
fn invalid_value_version_state_suggests_suspended() {
    let cat = scaffold();
    let text = cat.edit(APP, "    state: active", "    state: suspend");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-value"]);
    let d = the(&diags, "invalid-value");
    assert_at(d, APP, Some(after(&text, "    state: ")));
    assert_hint_contains(d, "did you mean `suspended`");
}

#[test]
fn invalid_value_wrong_type_points_at_the_value() {
    let cat = scaffold();
    let text = cat.edit(CATEGORY, "displayName: Tools", "displayName: [Tools, More]");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-value", "unknown-category"]);
    let d = the(&diags, "invalid-value");
    assert_at(d, CATEGORY, Some(after(&text, "displayName: ")));
    assert!(d.message.contains("expected a string"), "{}", d.message);
}

#[test]
fn invalid_value_credentials_not_an_env_var_name() {
    let cat = scaffold();
    let text = cat.edit(
        REPO,
        "syncPeriod: 1h\n",
        "syncPeriod: 1h\ncredentials:\n  usernameEnv: REPO_USER\n  passwordEnv: s3cr3t!pass\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-value"]);
    let d = the(&diags, "invalid-value");
    assert_at(d, REPO, Some(after(&text, "passwordEnv: ")));
    assert_hint_contains(d, "environment variable");
}

#[test]

fn invalid_value_target_in_pitrix_toml() {
    let cat = scaffold();
    let text = cat.edit(
        SETTINGS,
        r#"target = "kubesphere""#,
        r#"target = "kubesfere""#,
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-value"]);
    let d = the(&diags, "invalid-value");
    assert_at(d, SETTINGS, Some(after(&text, "target = ")));
    assert_hint_contains(d, "did you mean `kubesphere`");
}

#[test]
fn invalid_value_status_image_in_pitrix_toml() {
    let cat = scaffold();
    let text = cat.edit(
        SETTINGS,
        r#"target = "kubesphere""#,
        "target = \"kubesphere\"\nstatusImage = \"ghcr.io/Acme/pitrix:0.1.0\"",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-value"]);
    let d = the(&diags, "invalid-value");
    assert_at(d, SETTINGS, Some(after(&text, "statusImage = ")));
    assert!(d.message.contains("lower case"), "{}", d.message);
    hint(d);
}

// ---------------------------------------------------------------------------------------------
// missing-settings, unexpected-file

#[test]
fn missing_settings() {
    let cat = scaffold();
    cat.remove(SETTINGS);
    let diags = cat.check();
    assert_errors(&diags, &["missing-settings"]);
    let d = the(&diags, "missing-settings");
    assert_hint_contains(d, "pitrix new");
}

#[test]
fn unexpected_file_is_a_warning() {
    let cat = scaffold();
    cat.write("apps/hello/notes.txt", "remember the milk\n");
    cat.write("categories/README.md", "# categories\n");
    let diags = cat.check();
    assert_eq!(
        codes(&diags, Severity::Error),
        Vec::<&str>::new(),
        "{}",
        dump(&diags)
    );
    assert_eq!(
        codes(&diags, Severity::Warning),
        vec!["unexpected-file", "unexpected-file"],
        "{}",
        dump(&diags)
    );
    assert_at(&diags[0], "apps/hello/notes.txt", None);
    assert_at(&diags[1], "categories/README.md", None);
    for d in &diags {
        hint(d);
    }
    // Warnings do not stop a build.
    let (_, warnings) = pitrix::pipeline::build(&cat.root).expect("builds with warnings");
    assert_eq!(warnings.len(), 2);
}

#[test]
fn unexpected_file_in_releases() {
    let cat = scaffold();
    cat.write("releases/host/notes.yaml", "app: hello\n");
    cat.write("releases/host/default/hello.json", "{}\n");
    let diags = cat.check();
    assert_eq!(
        codes(&diags, Severity::Error),
        Vec::<&str>::new(),
        "{}",
        dump(&diags)
    );
    assert_eq!(
        codes(&diags, Severity::Warning),
        vec!["unexpected-file", "unexpected-file"]
    );
    assert_hint_contains(&diags[0], "releases/<cluster>/<namespace>/<release>.yaml");
}

// ---------------------------------------------------------------------------------------------
// invalid-name

#[test]
fn invalid_name_uppercase_app_directory() {
    let cat = scaffold();
    cat.add_helm_app("MyApp", "myapp", "1.0.0");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-name"]);
    let d = the(&diags, "invalid-name");
    assert_at(d, "apps/MyApp/app.yaml", None);
    assert!(d.message.contains("`MyApp`"), "{}", d.message);
    assert_hint_contains(d, "lowercase");
}

#[test]
fn invalid_name_underscore_category() {
    let cat = scaffold();
    cat.write("categories/dev_tools.yaml", "displayName: Dev tools\n");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-name"]);
    let d = the(&diags, "invalid-name");
    assert_at(d, "categories/dev_tools.yaml", None);
    assert!(d.message.contains("`dev_tools`"), "{}", d.message);
    hint(d);
}

#[test]
fn invalid_name_release_file() {
    let cat = scaffold();
    cat.write(
        "releases/host/default/My_Hello.yaml",
        "app: hello\nversion: 0.1.0\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-name"]);
    let d = the(&diags, "invalid-name");
    assert_at(d, "releases/host/default/My_Hello.yaml", None);
    assert!(
        d.message.contains("release name `My_Hello`"),
        "{}",
        d.message
    );
    hint(d);
}

#[test]
fn invalid_name_namespace_directory() {
    let cat = scaffold();
    cat.write(
        "releases/host/Team.A/hello-a.yaml",
        "app: hello\nversion: 0.1.0\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-name"]);
    let d = the(&diags, "invalid-name");
    assert_at(d, "releases/host/Team.A", None);
    assert!(
        d.message.contains("namespace name `Team.A`"),
        "{}",
        d.message
    );
    hint(d);
}

#[test]
fn invalid_name_catalog_name_in_pitrix_toml() {
    let cat = scaffold();
    let text = cat.edit(SETTINGS, r#"name = "my-store""#, r#"name = "My_Store""#);
    let diags = cat.check();
    assert_errors(&diags, &["invalid-name"]);
    let d = the(&diags, "invalid-name");
    assert_at(d, SETTINGS, Some(after(&text, "name = ")));
    hint(d);
}

#[test]
fn invalid_name_repo_file() {
    let cat = scaffold();
    cat.write("repos/My.Repo.yaml", "url: https://example.com/charts\n");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-name"]);
    assert_at(the(&diags, "invalid-name"), "repos/My.Repo.yaml", None);
}

// ---------------------------------------------------------------------------------------------
// name-too-long

#[test]
fn name_too_long_release_of_42_characters() {
    let cat = scaffold();
    let name = format!("hello-{}", "x".repeat(36));
    assert_eq!(name.len(), 42);
    let file = format!("releases/host/default/{name}.yaml");
    cat.rename(RELEASE, &file);
    let diags = cat.check();
    assert_errors(&diags, &["name-too-long"]);
    let d = the(&diags, "name-too-long");
    assert_at(d, &file, None);
    assert!(d.message.contains("42"), "{}", d.message);
    assert_hint_contains(d, "63");
}

#[test]
fn release_name_of_41_characters_fits() {
    let cat = scaffold();
    let name = format!("hello-{}", "x".repeat(35));
    assert_eq!(name.len(), 41);
    cat.rename(RELEASE, &format!("releases/host/default/{name}.yaml"));
    assert_errors(&cat.check(), &[]);
}

#[test]
fn name_too_long_version_id_of_a_catalog_app() {
    let cat = scaffold();
    let app = format!("a{}", "b".repeat(59));
    assert_eq!(app.len(), 60); // a valid label; `<app>-0.1.0` is 66 characters
    cat.add_helm_app(&app, "long", "0.1.0");
    let diags = cat.check();
    assert_errors(&diags, &["name-too-long"]);
    let d = the(&diags, "name-too-long");
    assert_at(d, &format!("apps/{app}/0.1.0"), None);
    assert!(d.message.contains("66"), "{}", d.message);
    hint(d);
}

#[test]
fn name_too_long_version_id_of_a_repo_release() {
    let cat = scaffold();
    let version = format!("1.0.0-{}", "r".repeat(50));
    let text = cat.write(
        "releases/host/default/nginx.yaml",
        format!("app: bitnami/nginx\nversion: {version}\n"),
    );
    let diags = cat.check();
    assert_eq!(
        codes(&diags, Severity::Error),
        ["name-too-long"],
        "{}",
        dump(&diags)
    );
    let d = the(&diags, "name-too-long");
    assert_at(
        d,
        "releases/host/default/nginx.yaml",
        Some(after(&text, "app: ")),
    );
    assert!(d.message.contains("bitnami-nginx-1.0.0-"), "{}", d.message);
    // (its missing hint is covered by `every_error_has_a_hint`)
}

// ---------------------------------------------------------------------------------------------
// duplicate-release, reserved-name

#[test]
fn duplicate_release_in_two_namespaces() {
    let cat = scaffold();
    let second = "releases/host/kube-system/hello.yaml";
    cat.write(second, cat.read(RELEASE));
    let diags = cat.check();
    assert_errors(&diags, &["duplicate-release"]);
    let d = the(&diags, "duplicate-release");
    assert_at(d, second, None);
    assert!(d.message.contains(RELEASE), "{}", d.message);
    assert_hint_contains(d, "cluster-scoped");
}

#[test]
fn reserved_name_upload_repo() {
    let cat = scaffold();
    cat.write("repos/upload.yaml", "url: https://example.com/charts\n");
    let diags = cat.check();
    assert_errors(&diags, &["reserved-name"]);
    let d = the(&diags, "reserved-name");
    assert_at(d, "repos/upload.yaml", None);
    assert_hint_contains(d, "rename");
}

// ---------------------------------------------------------------------------------------------
// charts

#[test]
fn chart_missing() {
    let cat = scaffold();
    cat.write("apps/hello/0.2.0/values.yaml", "replicaCount: 1\n");
    let diags = cat.check();
    assert_errors(&diags, &["chart-missing"]);
    let d = the(&diags, "chart-missing");
    assert_at(d, "apps/hello/0.2.0", None);
    assert_hint_contains(d, "Chart.yaml");
}

#[test]
fn chart_invalid_api_version() {
    let cat = scaffold();
    let text = cat.edit(CHART, "apiVersion: v2", "apiVersion: v3");
    let diags = cat.check();
    assert_errors(&diags, &["chart-invalid"]);
    let d = the(&diags, "chart-invalid");
    assert_at(
        d,
        CHART,
        Some(Pos {
            line: 1,
            column: 13,
        }),
    );
    assert_eq!(d.pos, Some(after(&text, "apiVersion: ")));
    assert_hint_contains(d, "apiVersion: v2");
}

#[test]
fn chart_invalid_library_type() {
    let cat = scaffold();
    let text = cat.edit(CHART, "type: application", "type: library");
    let diags = cat.check();
    assert_errors(&diags, &["chart-invalid"]);
    let d = the(&diags, "chart-invalid");
    assert_at(d, CHART, Some(after(&text, "type: ")));
    assert!(d.message.contains("library"), "{}", d.message);
    hint(d);
}

#[test]
fn chart_invalid_unknown_type() {
    let cat = scaffold();
    let text = cat.edit(CHART, "type: application", "type: foo");
    let diags = cat.check();
    assert_errors(&diags, &["chart-invalid"]);
    let d = the(&diags, "chart-invalid");
    assert_at(d, CHART, Some(after(&text, "type: ")));
    assert!(d.message.contains("`foo`"), "{}", d.message);
    hint(d);
}

#[test]
fn chart_invalid_name_is_not_a_bare_file_name() {
    let cat = scaffold();
    let text = cat.edit(CHART, "name: hello", "name: ../hello");
    let diags = cat.check();
    assert_errors(&diags, &["chart-invalid"]);
    assert_at(
        the(&diags, "chart-invalid"),
        CHART,
        Some(after(&text, "name: ")),
    );
}

#[test]
fn chart_invalid_value_of_the_wrong_type() {
    let cat = scaffold();
    let text = cat.edit(
        CHART,
        "description: A small web page that says hello.",
        "description: [a, b]",
    );
    let diags = cat.check();
    // The version still loads (its files are fine); only its Chart.yaml is refused.
    assert_errors(&diags, &["chart-invalid"]);
    assert_at(
        the(&diags, "chart-invalid"),
        CHART,
        Some(after(&text, "description: ")),
    );
}

#[test]
fn chart_version_not_semver() {
    let cat = scaffold();
    cat.copy_dir("apps/hello/0.1.0", "apps/hello/1.0.0.0");
    let text = cat.edit(
        "apps/hello/1.0.0.0/Chart.yaml",
        "version: 0.1.0",
        "version: \"1.0.0.0\"",
    );
    let diags = cat.check();
    assert_errors(&diags, &["chart-version-not-semver"]);
    let d = the(&diags, "chart-version-not-semver");
    assert_at(
        d,
        "apps/hello/1.0.0.0/Chart.yaml",
        Some(after(&text, "version: ")),
    );
    assert!(d.message.contains("`1.0.0.0`"), "{}", d.message);
    assert_hint_contains(d, "SemVer");
}

#[test]
fn chart_version_not_semver_unquoted_number_keeps_its_text() {
    // `version: 1.10` is a YAML float; the version must still read as written.
    let cat = scaffold();
    cat.copy_dir("apps/hello/0.1.0", "apps/hello/1.10");
    let text = cat.edit(
        "apps/hello/1.10/Chart.yaml",
        "version: 0.1.0",
        "version: 1.10",
    );
    // Helm's loose form: a warning (real_charts checks Helm agrees).
    let diags = cat.check();
    assert_eq!(
        (
            codes(&diags, Severity::Error),
            codes(&diags, Severity::Warning)
        ),
        (
            vec![],
            vec!["chart-version-not-semver", "chart-version-number"]
        ),
        "{}",
        dump(&diags)
    );
    let d = the(&diags, "chart-version-not-semver");
    assert_at(
        d,
        "apps/hello/1.10/Chart.yaml",
        Some(after(&text, "version: ")),
    );
    assert!(d.message.contains("`1.10`"), "{}", d.message);
    // As a YAML number it is not the version Helm reads.
    let n = the(&diags, "chart-version-number");
    assert!(n.message.contains("as `1.1`"), "{}", n.message);
    assert_hint_contains(n, "version: \"1.10\"");
}

#[test]
fn chart_version_mismatch() {
    let cat = scaffold();
    let text = cat.edit(CHART, "version: 0.1.0", "version: 0.1.1");
    let diags = cat.check();
    assert_errors(&diags, &["chart-version-mismatch"]);
    let d = the(&diags, "chart-version-mismatch");
    assert_at(
        d,
        CHART,
        Some(Pos {
            line: 5,
            column: 10,
        }),
    );
    assert_eq!(d.pos, Some(after(&text, "version: ")));
    assert!(
        d.message.contains("`0.1.0`") && d.message.contains("`0.1.1`"),
        "{}",
        d.message
    );
    assert_hint_contains(d, "rename apps/hello/0.1.0 to 0.1.1");
}

#[test]
fn package_too_large() {
    let cat = scaffold();
    // ~1.5 MiB of incompressible data in three files, each far under Helm's 5 MiB per file.
    for i in 0..3u64 {
        cat.write(
            &format!("apps/hello/0.1.0/files/blob-{i}.bin"),
            noise(512 * 1024, 0x9E37_79B9_7F4A_7C15 ^ i),
        );
    }
    let diags = cat.check();
    assert_errors(&diags, &["package-too-large"]);
    let d = the(&diags, "package-too-large");
    assert_at(d, "apps/hello/0.1.0", None);
    assert!(d.message.contains("1048576"), "{}", d.message);
    assert_hint_contains(d, ".helmignore");
}

#[test]
fn helmignore_keeps_a_package_under_the_budget() {
    let cat = scaffold();
    for i in 0..3u64 {
        cat.write(
            &format!("apps/hello/0.1.0/files/blob-{i}.bin"),
            noise(512 * 1024, 7 + i),
        );
    }
    cat.write("apps/hello/0.1.0/.helmignore", "files/\n");
    assert_errors(&cat.check(), &[]);
}

#[test]
fn chart_too_large_single_file_over_5_mib() {
    let cat = scaffold();
    cat.copy_dir("apps/hello/0.1.0", "apps/hello/0.2.0");
    cat.edit(
        "apps/hello/0.2.0/Chart.yaml",
        "version: 0.1.0",
        "version: 0.2.0",
    );
    cat.write("apps/hello/0.2.0/files/big.bin", vec![0u8; 6 * 1024 * 1024]);
    let diags = cat.check();
    assert_errors(&diags, &["chart-too-large"]);
    let d = the(&diags, "chart-too-large");
    assert_at(d, "apps/hello/0.2.0", None);
    assert!(d.message.contains("files/big.bin"), "{}", d.message);
    hint(d);
}

#[test]
fn chart_archive_that_is_not_gzip() {
    let cat = scaffold();
    cat.write("apps/hello/0.2.0.tgz", "this is not a tarball\n");
    let diags = cat.check();
    assert_errors(&diags, &["chart-archive"]);
    let d = the(&diags, "chart-archive");
    assert_at(d, "apps/hello/0.2.0.tgz", None);
    assert_hint_contains(d, "gzip");
}

#[test]
fn chart_archive_truncated_gzip() {
    let cat = scaffold();
    cat.write("apps/hello/0.2.0.tgz", [0x1f, 0x8b, 0x08, 0, 0, 0]);
    let diags = cat.check();
    assert_errors(&diags, &["chart-archive"]);
    assert_at(the(&diags, "chart-archive"), "apps/hello/0.2.0.tgz", None);
}

// ---------------------------------------------------------------------------------------------
// references

#[test]
fn unknown_category_suggests_the_right_one() {
    let cat = scaffold();
    let text = cat.edit(APP, "category: tools", "category: tool");
    let diags = cat.check();
    assert_errors(&diags, &["unknown-category"]);
    let d = the(&diags, "unknown-category");
    assert_at(
        d,
        APP,
        Some(Pos {
            line: 6,
            column: 11,
        }),
    );
    assert_eq!(d.pos, Some(after(&text, "category: ")));
    assert_hint_contains(d, "did you mean `tools`");
}

#[test]
fn unknown_category_without_a_near_name() {
    let cat = scaffold();
    cat.edit(APP, "category: tools", "category: databases");
    let diags = cat.check();
    assert_errors(&diags, &["unknown-category"]);
    assert_hint_contains(the(&diags, "unknown-category"), "categories/databases.yaml");
}

#[test]
fn the_uncategorized_category_needs_no_file() {
    let cat = scaffold();
    cat.edit(
        APP,
        "category: tools",
        "category: kubesphere-app-uncategorized",
    );
    assert_errors(&cat.check(), &[]);
}

#[test]
fn unknown_app_suggests_the_right_one() {
    let cat = scaffold();
    let text = cat.edit(RELEASE, "app: hello", "app: helo");
    let diags = cat.check();
    assert_errors(&diags, &["unknown-app"]);
    let d = the(&diags, "unknown-app");
    assert_at(d, RELEASE, Some(after(&text, "app: ")));
    assert_hint_contains(d, "did you mean `hello`");
}

#[test]
fn unknown_version_of_a_release() {
    let cat = scaffold();
    let text = cat.edit(RELEASE, "version: 0.1.0", "version: 0.1.1");
    let diags = cat.check();
    assert_errors(&diags, &["unknown-version"]);
    let d = the(&diags, "unknown-version");
    assert_at(
        d,
        RELEASE,
        Some(Pos {
            line: 4,
            column: 10,
        }),
    );
    assert_eq!(d.pos, Some(after(&text, "version: ")));
    assert_hint_contains(d, "0.1.0");
}

#[test]
fn unknown_version_in_app_yaml_versions() {
    let cat = scaffold();
    let text = cat.edit(
        APP,
        "    message: First release.\n",
        "    message: First release.\n  2.0.0:\n    state: draft\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["unknown-version"]);
    let d = the(&diags, "unknown-version");
    assert_at(d, APP, Some(at(&text, "2.0.0:")));
    assert!(d.message.contains("`2.0.0`"), "{}", d.message);
    assert_hint_contains(d, "apps/hello/2.0.0");
}

#[test]
fn unknown_repo_suggests_the_right_one() {
    let cat = scaffold();
    let text = cat.write(
        "releases/host/default/nginx.yaml",
        "app: bitnamii/nginx\nversion: 15.0.1\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["unknown-repo"]);
    let d = the(&diags, "unknown-repo");
    assert_at(
        d,
        "releases/host/default/nginx.yaml",
        Some(after(&text, "app: ")),
    );
    assert_hint_contains(d, "did you mean `bitnami`");
}

#[test]
fn a_release_of_a_synced_repo_chart_is_valid() {
    let cat = scaffold();
    cat.write(
        "releases/host/default/nginx.yaml",
        "app: bitnami/nginx\nversion: 15.0.1\n",
    );
    // Valid, with one warning: nothing has checked the repo's index for that version yet.
    let diags = cat.check();
    assert_eq!(
        codes(&diags, Severity::Error),
        Vec::<&str>::new(),
        "{}",
        dump(&diags)
    );
    assert_eq!(
        codes(&diags, Severity::Warning),
        ["unverified-release"],
        "{}",
        dump(&diags)
    );
}

#[test]
fn unknown_cluster() {
    let cat = scaffold();
    let file = "releases/prod/default/hello.yaml";
    cat.rename(RELEASE, file);
    let diags = cat.check();
    assert_errors(&diags, &["unknown-cluster"]);
    let d = the(&diags, "unknown-cluster");
    assert_at(d, file, None);
    assert!(d.message.contains("`prod`"), "{}", d.message);
    assert_hint_contains(d, "[clusters.prod]");
}

#[test]
fn unknown_cluster_suggests_the_right_one() {
    let cat = scaffold();
    cat.rename(RELEASE, "releases/hosts/default/hello.yaml");
    let diags = cat.check();
    assert_errors(&diags, &["unknown-cluster"]);
    assert_hint_contains(the(&diags, "unknown-cluster"), "did you mean `host`");
}

#[test]
fn version_not_active() {
    let cat = scaffold();
    cat.copy_dir("apps/hello/0.1.0", "apps/hello/0.2.0");
    cat.edit(
        "apps/hello/0.2.0/Chart.yaml",
        "version: 0.1.0",
        "version: 0.2.0",
    );
    cat.edit(APP, "    state: active", "    state: suspended");
    let text = cat.read(RELEASE);
    let diags = cat.check();
    assert_errors(&diags, &["version-not-active"]);
    let d = the(&diags, "version-not-active");
    assert_at(d, RELEASE, Some(after(&text, "version: ")));
    assert!(d.message.contains("`suspended`"), "{}", d.message);
    assert_hint_contains(d, APP);
}

#[test]
fn no_active_version() {
    let cat = scaffold();
    let text = cat.edit(APP, "    state: active", "    state: draft");
    cat.remove(RELEASE);
    let diags = cat.check();
    assert_errors(&diags, &["no-active-version"]);
    let d = the(&diags, "no-active-version");
    assert_at(d, APP, Some(after(&text, "\nstate: ")));
    assert_hint_contains(d, "state: draft");
}

#[test]
fn a_passed_version_keeps_an_app_active() {
    let cat = scaffold();
    cat.edit(APP, "    state: active", "    state: passed");
    cat.remove(RELEASE);
    assert_errors(&cat.check(), &[]);
}

// ---------------------------------------------------------------------------------------------
// repos

#[test]
fn repo_url_ftp() {
    let cat = scaffold();
    let text = cat.edit(
        REPO,
        "url: https://charts.bitnami.com/bitnami",
        "url: ftp://charts.bitnami.com/bitnami",
    );
    let diags = cat.check();
    assert_errors(&diags, &["repo-url"]);
    let d = the(&diags, "repo-url");
    assert_at(d, REPO, Some(Pos { line: 3, column: 6 }));
    assert_eq!(d.pos, Some(after(&text, "url: ")));
    assert!(d.message.contains("ftp://"), "{}", d.message);
    hint(d);
}

#[test]
fn repo_url_oci_is_valid() {
    let cat = scaffold();
    cat.edit(
        REPO,
        "url: https://charts.bitnami.com/bitnami",
        "url: oci://registry-1.docker.io/bitnamicharts",
    );
    assert_errors(&cat.check(), &[]);
}

#[test]
fn invalid_duration() {
    let cat = scaffold();
    let text = cat.edit(REPO, "syncPeriod: 1h", "syncPeriod: 1x");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-duration"]);
    let d = the(&diags, "invalid-duration");
    assert_at(d, REPO, Some(after(&text, "syncPeriod: ")));
    assert!(d.message.contains("`1x`"), "{}", d.message);
    assert_hint_contains(d, "1h");
}

#[test]
fn sync_period_zero_is_valid() {
    let cat = scaffold();
    cat.edit(REPO, "syncPeriod: 1h", "syncPeriod: 0");
    assert_errors(&cat.check(), &[]);
}

// ---------------------------------------------------------------------------------------------
// YAML apps

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: b\n";

#[test]
fn a_yaml_app_is_valid() {
    let cat = scaffold();
    cat.add_yaml_app("web", "1.0.0", CONFIGMAP);
    assert_errors(&cat.check(), &[]);
}

#[test]
fn manifest_invalid_document_without_kind() {
    let cat = scaffold();
    let text = cat.add_yaml_app(
        "web",
        "1.0.0",
        &format!("{CONFIGMAP}---\napiVersion: v1\nmetadata:\n  name: other\n"),
    );
    let diags = cat.check();
    assert_errors(&diags, &["manifest-invalid"]);
    let d = the(&diags, "manifest-invalid");
    // The second document, which starts on the line after `---`.
    assert_line(d, "apps/web/1.0.0/web.yaml", after(&text, "---\n").line);
    assert!(d.message.contains("`kind`"), "{}", d.message);
    assert_hint_contains(d, "kind");
}

#[test]
fn manifest_invalid_version_without_manifests() {
    let cat = scaffold();
    cat.add_yaml_app("web", "1.0.0", CONFIGMAP);
    cat.remove("apps/web/1.0.0/web.yaml");
    cat.write("apps/web/1.0.0/README.txt", "nothing here\n");
    let diags = cat.check();
    // One root cause, one error: the refused version is not also "no active version".
    assert_errors(&diags, &["manifest-invalid"]);
    let d = the(&diags, "manifest-invalid");
    assert_at(d, "apps/web/1.0.0", None);
    hint(d);
}

// ---------------------------------------------------------------------------------------------
// invalid-image

#[test]
fn invalid_image_gif_icon() {
    let cat = scaffold();
    cat.write("apps/hello/logo.gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00");
    let text = cat.edit(APP, "icon: icon.svg", "icon: logo.gif");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-image"]);
    let d = the(&diags, "invalid-image");
    assert_at(d, APP, Some(Pos { line: 7, column: 7 }));
    assert_eq!(d.pos, Some(after(&text, "icon: ")));
    assert!(d.message.contains("not a png, jpg or svg"), "{}", d.message);
    assert_hint_contains(d, "png, jpg or svg");
}

#[test]
fn invalid_image_png_too_many_pixels() {
    let cat = scaffold();
    cat.write("apps/hello/icon.png", png_header(1024, 1024));
    let text = cat.edit(APP, "icon: icon.svg", "icon: icon.png");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-image"]);
    let d = the(&diags, "invalid-image");
    assert_at(d, APP, Some(after(&text, "icon: ")));
    assert!(d.message.contains("1024×1024"), "{}", d.message);
    assert_hint_contains(d, "512×512");
}

#[test]
fn a_png_icon_of_512_pixels_is_valid() {
    let cat = scaffold();
    cat.write("apps/hello/icon.png", png_header(512, 512));
    cat.edit(APP, "icon: icon.svg", "icon: icon.png");
    assert_errors(&cat.check(), &[]);
}

#[test]
fn invalid_image_missing_icon_file() {
    let cat = scaffold();
    let text = cat.edit(APP, "icon: icon.svg", "icon: logo.png");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-image"]);
    let d = the(&diags, "invalid-image");
    assert_at(d, APP, Some(after(&text, "icon: ")));
    assert_hint_contains(d, "apps/hello/logo.png");
}

#[test]
fn invalid_image_icon_outside_the_app_directory() {
    let cat = scaffold();
    let text = cat.edit(APP, "icon: icon.svg", "icon: ../../pitrix.toml");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-image"]);
    assert_at(
        the(&diags, "invalid-image"),
        APP,
        Some(after(&text, "icon: ")),
    );
}

#[test]
fn invalid_image_screenshot_that_is_not_an_image() {
    let cat = scaffold();
    cat.write("apps/hello/screenshots/home.png", "not an image\n");
    let text = cat.edit(
        APP,
        "icon: icon.svg\n",
        "icon: icon.svg\nscreenshots:\n  - screenshots/home.png\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-image"]);
    let d = the(&diags, "invalid-image");
    assert_at(d, APP, Some(at(&text, "screenshots/home.png")));
    hint(d);
}

// ---------------------------------------------------------------------------------------------
// invalid-attachment-id, duplicate-attachment-id: a screenshot's `id`

/// The scaffold's app with `screenshots` (YAML lines after `screenshots:`) and the PNG
/// `screenshots/home.png`; returns app.yaml's text.
fn with_screenshots(cat: &Cat, entries: &str) -> String {
    cat.write("apps/hello/screenshots/home.png", png_header(64, 64));
    cat.edit(
        APP,
        "icon: icon.svg\n",
        &format!("icon: icon.svg\nscreenshots:\n{entries}"),
    )
}

#[test]
fn a_screenshot_id_is_the_attachment_id_it_compiles_to() {
    let cat = scaffold();
    with_screenshots(
        &cat,
        "  - {file: screenshots/home.png, id: screenshot-att-k3x9p}\n",
    );
    let (compiled, _) =
        pitrix::pipeline::build(&cat.root).unwrap_or_else(|d| panic!("valid:\n{}", dump(&d)));
    let app = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "Application" && o.name() == "hello")
        .unwrap()
        .to_json();
    assert_eq!(
        app["spec"]["attachments"],
        serde_json::json!(["screenshot-att-k3x9p"])
    );
    let stored = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "ConfigMap" && o.name() == "screenshot-att-k3x9p")
        .expect("the screenshot stored under its ID")
        .to_json();
    assert!(stored["binaryData"]["BinaryKey"].is_string());
    // Without an `id`, one derived from the image, as before.
    let cat = scaffold();
    with_screenshots(&cat, "  - screenshots/home.png\n");
    let (compiled, _) =
        pitrix::pipeline::build(&cat.root).unwrap_or_else(|d| panic!("valid:\n{}", dump(&d)));
    let app = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "Application" && o.name() == "hello")
        .unwrap()
        .to_json();
    let id = app["spec"]["attachments"][0].as_str().unwrap();
    assert!(
        id.starts_with("hello-att-") && id.len() == "hello-att-".len() + 5,
        "{id}"
    );
}

#[test]
fn invalid_attachment_id() {
    let cat = scaffold();
    let text = with_screenshots(
        &cat,
        "  - file: screenshots/home.png\n    id: Screenshot-att-k3x9p2q7\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-attachment-id"]);
    let d = the(&diags, "invalid-attachment-id");
    assert_at(d, APP, Some(at(&text, "Screenshot-att-k3x9p2q7")));
    assert!(
        d.message.contains("Screenshot-att-k3x9p2q7"),
        "{}",
        d.message
    );
    assert_hint_contains(d, "<field>-att-<5 lowercase letters or digits>");
}

#[test]
fn duplicate_attachment_id_across_apps() {
    let cat = scaffold();
    with_screenshots(
        &cat,
        "  - {file: screenshots/home.png, id: screenshot-att-k3x9p}\n",
    );
    cat.add_helm_app("other", "other", "1.0.0");
    cat.write("apps/other/screenshots/shot.png", png_header(32, 32));
    let text = cat.write(
        "apps/other/app.yaml",
        "displayName: Another app\nscreenshots:\n  - file: screenshots/shot.png\n    id: screenshot-att-k3x9p\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["duplicate-attachment-id"]);
    let d = the(&diags, "duplicate-attachment-id");
    assert_at(d, "apps/other/app.yaml", Some(after(&text, "    id: ")));
    assert!(d.message.contains("apps/hello/app.yaml"), "{}", d.message);
    hint(d);
}

#[test]
fn a_screenshot_entry_with_an_unknown_key() {
    let cat = scaffold();
    let text = with_screenshots(
        &cat,
        "  - {file: screenshots/home.png, ident: screenshot-att-k3x9p}\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["unknown-key"]);
    assert_at(the(&diags, "unknown-key"), APP, Some(at(&text, "ident")));
}

// ---------------------------------------------------------------------------------------------
// invalid-values

#[test]
fn invalid_values_missing_values_file() {
    let cat = scaffold();
    let text = cat.edit(RELEASE, "  - values/common.yaml", "  - values/missing.yaml");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-values"]);
    let d = the(&diags, "invalid-values");
    assert_at(d, RELEASE, Some(after(&text, "  - ")));
    assert!(d.message.contains("values/missing.yaml"), "{}", d.message);
    assert_hint_contains(d, "relative to the catalog root");
}

#[test]
fn invalid_values_file_outside_the_catalog() {
    let cat = scaffold();
    let text = cat.edit(RELEASE, "  - values/common.yaml", "  - ../secrets.yaml");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-values"]);
    let d = the(&diags, "invalid-values");
    assert_at(d, RELEASE, Some(after(&text, "  - ")));
    assert!(d.message.contains("outside the catalog"), "{}", d.message);
}

#[test]
fn invalid_values_file_that_is_a_list() {
    let cat = scaffold();
    let text = cat.write(
        "values/common.yaml",
        "# shared\n- replicaCount: 2\n- debug: true\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-values"]);
    let d = the(&diags, "invalid-values");
    assert_at(d, "values/common.yaml", Some(at(&text, "- replicaCount")));
    assert_hint_contains(d, "mapping");
}

#[test]
fn values_file_with_a_syntax_error() {
    let cat = scaffold();
    let text = cat.write(
        "values/common.yaml",
        "replicaCount: 2\nimage: repo: nginx\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["yaml-syntax"]);
    let d = the(&diags, "yaml-syntax");
    assert_eq!(d.file.as_deref(), Some(Path::new("values/common.yaml")));
    assert_eq!(d.pos.map(|p| p.line), Some(at(&text, "image:").line));
}

#[test]
fn invalid_values_on_a_release_of_a_yaml_app() {
    let cat = scaffold();
    cat.add_yaml_app("web", "1.0.0", CONFIGMAP);
    let file = "releases/host/default/web.yaml";
    let text = cat.write(file, "app: web\nversion: 1.0.0\nvalues:\n  replicas: 2\n");
    let diags = cat.check();
    assert_errors(&diags, &["invalid-values"]);
    let d = the(&diags, "invalid-values");
    assert_eq!(d.file.as_deref(), Some(Path::new(file)));
    // `values` at its key, or its mapping on the next line: either names the offending entry.
    let line = d.pos.expect("a position").line;
    assert!(
        line == at(&text, "values:").line || line == at(&text, "  replicas").line,
        "{d:#?}"
    );
    assert_hint_contains(d, "YAML app");
}

#[test]
fn invalid_values_files_on_a_release_of_a_yaml_app() {
    let cat = scaffold();
    cat.add_yaml_app("web", "1.0.0", CONFIGMAP);
    let file = "releases/host/default/web.yaml";
    let text = cat.write(
        file,
        "app: web\nversion: 1.0.0\nvaluesFiles:\n  - values/common.yaml\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-values"]);
    assert_at(
        the(&diags, "invalid-values"),
        file,
        Some(after(&text, "  - ")),
    );
}

// ---------------------------------------------------------------------------------------------
// packaged charts, io

/// Packs the scaffold's chart as `apps/hello/<version>.tgz`, with its Chart.yaml saying
/// `chart_version`.
fn add_packaged_version(cat: &Cat, version: &str, chart_version: &str) {
    let mut files = pitrix::chart::read_dir(
        &cat.path("apps/hello/0.1.0"),
        &pitrix::chart::Limits::default(),
    )
    .expect("scaffold chart reads");
    let chart = chart_yaml("hello", chart_version);
    files.insert("Chart.yaml", chart.into_bytes()).unwrap();
    cat.write(
        &format!("apps/hello/{version}.tgz"),
        pitrix::chart::pack("hello", &files),
    );
}

#[test]
fn a_packaged_chart_version_is_valid() {
    let cat = scaffold();
    add_packaged_version(&cat, "0.2.0", "0.2.0");
    assert_errors(&cat.check(), &[]);
}

#[test]
fn chart_version_mismatch_inside_an_archive() {
    let cat = scaffold();
    add_packaged_version(&cat, "0.2.0", "0.3.0");
    let diags = cat.check();
    assert_errors(&diags, &["chart-version-mismatch"]);
    let d = the(&diags, "chart-version-mismatch");
    // No line: Chart.yaml is inside the archive.
    assert_at(d, "apps/hello/0.2.0.tgz", None);
    assert!(
        d.message.contains("inside apps/hello/0.2.0.tgz"),
        "{}",
        d.message
    );
    assert_hint_contains(d, "0.3.0.tgz");
}

#[test]
fn io_error_on_an_unreadable_settings_file() {
    let cat = scaffold();
    cat.remove(SETTINGS);
    fs::create_dir(cat.path(SETTINGS)).unwrap();
    let diags = cat.check();
    assert_errors(&diags, &["io"]);
    assert_at(the(&diags, "io"), SETTINGS, None);
}

// ---------------------------------------------------------------------------------------------
// bugs found in src/ (ignored until fixed)

#[test]

fn mapping_positions_point_at_their_first_key() {
    // missing-key: the mapping that lacks `app` starts at `version` (column 1, not 8).
    let cat = scaffold();
    let text = cat.edit(RELEASE, "app: hello\n", "");
    let diags = cat.check();
    assert_at(
        the(&diags, "missing-key"),
        RELEASE,
        Some(at(&text, "version:")),
    );

    // credentials: the mapping starts at `usernameEnv` (column 3, not 14).
    let cat = scaffold();
    let text = cat.edit(
        REPO,
        "syncPeriod: 1h\n",
        "syncPeriod: 1h\ncredentials:\n  usernameEnv: REPO_USER\n",
    );
    let diags = cat.check();
    assert_at(
        the(&diags, "missing-key"),
        REPO,
        Some(at(&text, "usernameEnv")),
    );

    // manifest-invalid: the document starts at `apiVersion` (column 1, not 11).
    let cat = scaffold();
    let text = cat.add_yaml_app(
        "web",
        "1.0.0",
        &format!("{CONFIGMAP}---\napiVersion: v1\nmetadata:\n  name: other\n"),
    );
    let diags = cat.check();
    assert_at(
        the(&diags, "manifest-invalid"),
        "apps/web/1.0.0/web.yaml",
        Some(after(&text, "---\n")),
    );
}

#[test]

fn every_error_has_a_hint() {
    type Mutation = fn(&Cat);
    let cases: &[(&str, Mutation)] = &[
        ("missing-key (release without app)", |c| {
            c.edit(RELEASE, "app: hello\n", "");
        }),
        ("invalid-value (a list for a string)", |c| {
            c.edit(CATEGORY, "displayName: Tools", "displayName: [a]");
        }),
        ("invalid-value (unknown enum value, nothing near)", |c| {
            c.edit(APP, "type: helm", "type: chart");
        }),
        ("chart-invalid (no name)", |c| {
            c.edit(CHART, "name: hello\n", "");
        }),
        ("chart-invalid (no version)", |c| {
            c.edit(CHART, "version: 0.1.0\n", "");
        }),
        ("chart-invalid (does not parse as Chart.yaml)", |c| {
            c.edit(CHART, "name: hello", "name: [hello]");
        }),
        ("chart-invalid (name with a slash)", |c| {
            c.edit(CHART, "name: hello", "name: a/b");
        }),
        ("manifest-invalid (no metadata.name)", |c| {
            c.add_yaml_app("web", "1.0.0", "apiVersion: v1\nkind: ConfigMap\n");
        }),
        ("manifest-invalid (not a mapping)", |c| {
            c.add_yaml_app("web", "1.0.0", "- just\n- a list\n");
        }),
        ("name-too-long (version ID of a repo release)", |c| {
            c.write(
                "releases/host/default/nginx.yaml",
                format!("app: bitnami/nginx\nversion: 1.0.0-{}\n", "r".repeat(50)),
            );
        }),
        ("invalid-image (icon outside the app directory)", |c| {
            c.edit(APP, "icon: icon.svg", "icon: ../../pitrix.toml");
        }),
    ];
    let mut missing = Vec::new();
    for (what, mutate) in cases {
        let cat = scaffold();
        mutate(&cat);
        let diags = cat.check();
        assert!(
            diags.iter().any(Diagnostic::is_error),
            "{what}: no error at all"
        );
        for d in diags.iter().filter(|d| d.is_error() && d.hint.is_none()) {
            missing.push(format!("{what}: [{}] {}", d.code.as_str(), d.message));
        }
    }
    assert!(
        missing.is_empty(),
        "errors without a hint:\n{}",
        missing.join("\n")
    );
}

#[test]

fn chart_missing_empty_version_directory() {
    let cat = scaffold();
    fs::create_dir_all(cat.path("apps/hello/0.2.0")).unwrap();
    let diags = cat.check();
    assert_errors(&diags, &["chart-missing"]);
    assert_at(the(&diags, "chart-missing"), "apps/hello/0.2.0", None);
}

#[test]

fn a_version_filed_twice_is_an_error() {
    let cat = scaffold();
    add_packaged_version(&cat, "0.1.0", "0.1.0");
    let diags = cat.check();
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "diagnostics:\n{}", dump(&diags));
    let file = errors[0].file.as_deref().map(Path::to_path_buf);
    assert!(
        file == Some("apps/hello/0.1.0.tgz".into()) || file == Some("apps/hello/0.1.0".into()),
        "{:#?}",
        errors[0]
    );
    hint(errors[0]);
}

#[test]

fn two_files_for_one_category_or_repo_are_an_error() {
    let cat = scaffold();
    cat.write("categories/tools.yml", "displayName: Tools again\n");
    let diags = cat.check();
    assert_eq!(codes(&diags, Severity::Error).len(), 1, "{}", dump(&diags));
    assert_eq!(
        diags[0].file.as_deref(),
        Some(Path::new("categories/tools.yml"))
    );

    let cat = scaffold();
    cat.write("repos/bitnami.yml", "url: https://charts.example.com\n");
    let diags = cat.check();
    assert_eq!(codes(&diags, Severity::Error).len(), 1, "{}", dump(&diags));
    assert_eq!(
        diags[0].file.as_deref(),
        Some(Path::new("repos/bitnami.yml"))
    );
}

#[test]
fn invalid_name_storage_namespace() {
    let cat = scaffold();
    let text = cat.edit(
        SETTINGS,
        r#"storageNamespace = "extension-openpitrix""#,
        r#"storageNamespace = "Extension_OpenPitrix""#,
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-name"]);
    assert_line(
        the(&diags, "invalid-name"),
        SETTINGS,
        at(&text, "storageNamespace").line,
    );
}

#[test]

fn invalid_name_workspace() {
    let cat = scaffold();
    let text = cat.edit(
        APP,
        "icon: icon.svg\n",
        "icon: icon.svg\nworkspace: Team Space!\n",
    );
    let diags = cat.check();
    assert_errors(&diags, &["invalid-name"]);
    assert_at(
        the(&diags, "invalid-name"),
        APP,
        Some(after(&text, "workspace: ")),
    );
}

#[test]

fn repo_url_message_does_not_leak_user_info() {
    let cat = scaffold();
    cat.edit(
        REPO,
        "url: https://charts.bitnami.com/bitnami",
        "url: ftp://admin:hunter2@charts.bitnami.com/bitnami",
    );
    let diags = cat.check();
    assert!(!diags.is_empty());
    for d in &diags {
        assert!(!d.message.contains("hunter2"), "{}", d.message);
    }
    for format in ["text", "json", "github"] {
        let out = pitrix(cwd(&cat), &["validate", "cat", "--format", format]);
        let all = stdout(&out) + &stderr(&out);
        assert!(
            !all.contains("hunter2"),
            "{format} leaks the secret:\n{all}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// everything in one run

#[test]
fn several_broken_files_are_all_reported_in_one_run() {
    let cat = scaffold();
    let repo = cat.edit(
        REPO,
        "url: https://charts.bitnami.com/bitnami\nsyncPeriod: 1h",
        "url: ftp://charts.bitnami.com/bitnami\nsyncPeriod: 1x",
    );
    let release = cat.edit(RELEASE, "version: 0.1.0", "version: 0.1.1");
    let chart = cat.edit(CHART, "apiVersion: v2", "apiVersion: v3");
    let app = cat.edit(APP, "category: tools", "category: tool");
    cat.write("categories/Bad_Name.yaml", "displayName: Bad\n");
    let broken = cat.write(
        "repos/broken.yaml",
        "url: https://example.com\ndescription: a: b\n",
    );
    cat.write("apps/hello/notes.txt", "stray\n");

    let diags = cat.check();
    assert_eq!(
        codes(&diags, Severity::Error),
        vec![
            "chart-invalid",
            "invalid-duration",
            "invalid-name",
            "repo-url",
            "unknown-category",
            "unknown-version",
            "yaml-syntax",
        ],
        "{}",
        dump(&diags)
    );
    assert_eq!(codes(&diags, Severity::Warning), vec!["unexpected-file"]);

    assert_at(the(&diags, "repo-url"), REPO, Some(after(&repo, "url: ")));
    assert_at(
        the(&diags, "invalid-duration"),
        REPO,
        Some(after(&repo, "syncPeriod: ")),
    );
    assert_at(
        the(&diags, "unknown-version"),
        RELEASE,
        Some(after(&release, "version: ")),
    );
    assert_at(
        the(&diags, "chart-invalid"),
        CHART,
        Some(after(&chart, "apiVersion: ")),
    );
    assert_at(
        the(&diags, "unknown-category"),
        APP,
        Some(after(&app, "category: ")),
    );
    assert_at(
        the(&diags, "invalid-name"),
        "categories/Bad_Name.yaml",
        None,
    );
    assert_eq!(
        the(&diags, "yaml-syntax").pos.map(|p| p.line),
        Some(at(&broken, "description").line)
    );

    // Sorted by file, then position.
    let order: Vec<_> = diags.iter().map(|d| (d.file.clone(), d.pos)).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    // And build refuses it with the same diagnostics.
    let Err(err) = pitrix::pipeline::build(&cat.root) else {
        panic!("a catalog with errors builds");
    };
    assert_eq!(err, diags);
}

#[test]
fn the_same_run_twice_gives_the_same_diagnostics() {
    let cat = scaffold();
    cat.edit(APP, "category: tools", "category: tool");
    cat.edit(RELEASE, "version: 0.1.0", "version: 0.1.1");
    cat.write("apps/b-app/app.yaml", "displayNam: B\n");
    cat.write("apps/c-app/app.yaml", "category: nope\n");
    cat.write("apps/c-app/1.0.0/Chart.yaml", chart_yaml("c", "1.0.0"));
    let first = cat.check();
    for _ in 0..3 {
        assert_eq!(cat.check(), first);
    }
}

// ---------------------------------------------------------------------------------------------
// the binary: renderings and exit codes

fn pitrix(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run pitrix")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scaffold with one error (unknown category, app.yaml 6:11) and one warning.
fn broken_for_cli() -> Cat {
    let cat = scaffold();
    cat.edit(APP, "category: tools", "category: tool");
    cat.write("apps/hello/notes.txt", "stray\n");
    cat
}

fn cwd(cat: &Cat) -> &Path {
    cat.root.parent().unwrap()
}

#[test]
fn cli_validate_valid_catalog() {
    let cat = scaffold();
    let out = pitrix(cwd(&cat), &["validate", "cat"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("catalog is valid"),
        "{}",
        stdout(&out)
    );

    let out = pitrix(cwd(&cat), &["validate", "cat", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["errors"], 0);
    assert_eq!(v["warnings"], 0);
    assert_eq!(v["diagnostics"], serde_json::json!([]));

    let out = pitrix(cwd(&cat), &["validate", "cat", "--format", "github"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
}

#[test]
fn cli_validate_json() {
    let cat = broken_for_cli();
    let out = pitrix(cwd(&cat), &["validate", "cat", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["errors"], 1, "{v:#}");
    assert_eq!(v["warnings"], 1, "{v:#}");
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 2);
    let e = diags.iter().find(|d| d["severity"] == "error").unwrap();
    assert_eq!(e["code"], "unknown-category");
    assert_eq!(e["file"], "cat/apps/hello/app.yaml");
    assert_eq!(e["line"], 6);
    assert_eq!(e["column"], 11);
    assert!(
        e["hint"].as_str().unwrap().contains("did you mean `tools`"),
        "{e:#}"
    );
    let w = diags.iter().find(|d| d["severity"] == "warning").unwrap();
    assert_eq!(w["code"], "unexpected-file");
    assert_eq!(w["file"], "cat/apps/hello/notes.txt");
    assert!(w.get("line").is_none());
}

#[test]
fn cli_validate_github() {
    let cat = broken_for_cli();
    let out = pitrix(cwd(&cat), &["validate", "cat", "--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let error = lines
        .iter()
        .find(|l| l.starts_with("::error "))
        .expect(&text);
    assert!(
        error.starts_with("::error file=cat/apps/hello/app.yaml,line=6,col=11,"),
        "{error}"
    );
    assert!(error.contains("title=pitrix unknown-category::"), "{error}");
    assert!(error.contains("%0Ahint: did you mean `tools`?"), "{error}");
    let warning = lines
        .iter()
        .find(|l| l.starts_with("::warning "))
        .expect(&text);
    assert!(
        warning
            .starts_with("::warning file=cat/apps/hello/notes.txt,title=pitrix unexpected-file::"),
        "{warning}"
    );
}

#[test]
fn cli_validate_text() {
    let cat = broken_for_cli();
    let out = pitrix(cwd(&cat), &["validate", "cat"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("error[unknown-category]: "), "{text}");
    assert!(
        text.contains("  --> cat/apps/hello/app.yaml:6:11\n"),
        "{text}"
    );
    assert!(text.contains("6 | category: tool\n"), "{text}");
    // The caret sits under the value.
    assert!(
        text.contains(&format!("  | {}^\n", " ".repeat(10))),
        "{text}"
    );
    assert!(text.contains("  = hint: did you mean `tools`?"), "{text}");
    assert!(text.contains("warning[unexpected-file]: "), "{text}");
    assert!(text.contains("  --> cat/apps/hello/notes.txt\n"), "{text}");
    assert!(text.ends_with("1 error(s), 1 warning(s)\n"), "{text}");
    assert!(!text.contains("catalog is valid"), "{text}");
}

#[test]
fn cli_text_redacts_a_literal_secret_in_the_snippet() {
    let cat = scaffold();
    cat.write(
        REPO,
        "url: https://charts.example.com\ncredentials:\n  password: hunter2\n",
    );
    for format in ["text", "json", "github"] {
        let out = pitrix(cwd(&cat), &["validate", "cat", "--format", format]);
        assert_eq!(out.status.code(), Some(1));
        let all = stdout(&out) + &stderr(&out);
        assert!(all.contains("literal-secret"), "{all}");
        assert!(
            !all.contains("hunter2"),
            "{format} leaks the secret:\n{all}"
        );
    }
}

#[test]

fn cli_redacts_user_info_of_a_repo_url() {
    let cat = scaffold();
    cat.edit(
        REPO,
        "url: https://charts.bitnami.com/bitnami",
        "url: https://admin:hunter2@charts.bitnami.com/bitnami",
    );
    for format in ["text", "json", "github"] {
        let out = pitrix(cwd(&cat), &["validate", "cat", "--format", format]);
        assert_eq!(out.status.code(), Some(1));
        let all = stdout(&out) + &stderr(&out);
        assert!(all.contains("literal-secret"), "{all}");
        assert!(
            !all.contains("hunter2"),
            "{format} leaks the secret:\n{all}"
        );
    }
}

#[test]
fn cli_compile_of_a_broken_catalog_writes_nothing() {
    let cat = broken_for_cli();
    let out = pitrix(cwd(&cat), &["compile", "cat", "-o", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("unknown-category"), "{err}");
    assert!(err.contains("not written"), "{err}");
    assert!(!cwd(&cat).join("out").exists(), "compile wrote output");
}

#[test]
fn cli_compile_of_a_valid_catalog_writes_the_output() {
    // The control for the test above: the same command does write `out/` when it can.
    let cat = scaffold();
    let out = pitrix(cwd(&cat), &["compile", "cat", "-o", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(cwd(&cat).join("out").is_dir());
}

#[test]
fn standalone_member_cluster_without_context() {
    let cat = scaffold();
    cat.edit(
        "pitrix.toml",
        r#"target = "kubesphere""#,
        r#"target = "standalone""#,
    );
    cat.edit(
        "pitrix.toml",
        "[clusters.host]",
        "[clusters.host]\n[clusters.edge]",
    );
    let file = "releases/edge/default/hello.yaml";
    cat.rename(RELEASE, file);
    let diags = cat.check();
    assert_errors(&diags, &["cluster-without-context"]);
    let d = the(&diags, "cluster-without-context");
    assert_at(d, file, None);
    assert!(d.message.contains("`edge`"), "{}", d.message);
    assert_hint_contains(d, "[clusters.edge]");

    // A context in the selected environment is enough; so is one for every environment.
    cat.edit(
        "pitrix.toml",
        "[clusters.edge]",
        "[clusters.edge]\n[env.prod.clusters.edge]\ncontext = \"edge-prod\"",
    );
    let with_env = pitrix::pipeline::check_with(
        &cat.path(""),
        &pitrix::pipeline::CheckOptions {
            env: Some("prod".into()),
            ..Default::default()
        },
    )
    .1;
    assert_errors(&with_env, &[]);
    assert_errors(&cat.check(), &["cluster-without-context"]);
    cat.edit(
        "pitrix.toml",
        "[clusters.edge]\n",
        "[clusters.edge]\ncontext = \"edge-admin\"\n",
    );
    assert_errors(&cat.check(), &[]);
}
