//! The command line people expect: `version`, shell completions, a man page, one schema per
//! call, a catalog found from any path inside it, and `pitrix new DIR` naming the catalog.

use std::path::Path;
use std::process::{Command, Output};

fn pitrix(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn version_completion_and_man_page() {
    let here = Path::new(".");
    let version = stdout(&pitrix(&["version"], here));
    assert!(
        version.starts_with(&format!("pitrix {} (", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(stdout(&pitrix(&["--version"], here)).contains(env!("CARGO_PKG_VERSION")));
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = stdout(&pitrix(&["completion", shell], here));
        assert!(
            script.contains("validate") && script.contains("reconcile"),
            "{shell}"
        );
    }
    assert!(!pitrix(&["completion", "tcsh"], here).status.success());
    let man = stdout(&pitrix(&["man"], here));
    assert!(man.contains(".TH pitrix 1"), "{man}");
    let dir = tempfile::tempdir().unwrap();
    stdout(&pitrix(
        &["man", "--out", dir.path().to_str().unwrap()],
        here,
    ));
    for page in ["pitrix.1", "pitrix-apply.1", "pitrix-compile.1"] {
        assert!(dir.path().join(page).is_file(), "no {page}");
    }
}

#[test]
fn one_schema_per_call_for_jq() {
    let here = Path::new(".");
    let names = stdout(&pitrix(&["schema"], here));
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["pitrix", "category", "repo", "app", "release"]
    );
    for name in names.lines() {
        let text = stdout(&pitrix(&["schema", name], here));
        let schema: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("schema {name} is not one JSON document: {e}"));
        assert!(schema["title"].is_string(), "{name}: {schema}");
    }
    let out = pitrix(&["schema", "apps"], here);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("one of: pitrix, category"));
}

#[test]
fn new_names_the_catalog_and_validate_finds_it_from_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let out = stdout(&pitrix(&["new", "team-a"], tmp.path()));
    assert!(out.contains("created catalog `team-a`"), "{out}");
    let catalog = tmp.path().join("team-a");
    let toml = std::fs::read_to_string(catalog.join("pitrix.toml")).unwrap();
    assert!(toml.contains("name = \"team-a\""), "{toml}");
    let out = pitrix(&["new", "Bad_Name"], tmp.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name"));
    stdout(&pitrix(
        &["new", "Bad_Name", "--name", "team-b"],
        tmp.path(),
    ));

    // A file or a directory inside the catalog names the catalog.
    for inside in [
        "team-a/apps/hello/app.yaml",
        "team-a/apps/hello",
        "team-a/releases",
    ] {
        let out = stdout(&pitrix(&["validate", inside], tmp.path()));
        assert!(out.contains("catalog is valid"), "{inside}: {out}");
    }
    let out = stdout(&pitrix(&["validate"], &catalog.join("apps/hello/0.1.0")));
    assert!(out.contains("catalog is valid"), "{out}");

    // Never above the git repository it starts in: a checkout without pitrix.toml, inside a
    // directory that has one, is not that directory's catalog.
    let checkout = catalog.join("checkout");
    std::fs::create_dir_all(checkout.join(".git")).unwrap();
    std::fs::create_dir_all(checkout.join("apps")).unwrap();
    let out = pitrix(&["validate", "apps"], &checkout);
    assert!(!out.status.success());
    let stderr =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing-settings"), "{stderr}");
}

/// `-o/--output` is the printed format on every command that prints (`--format` still works);
/// `yaml` is the JSON document as YAML. Compile's `-o` names its directory, as a compiler's
/// does (`--out-dir`), and its format is `--output`.
#[test]
fn output_is_the_format_and_yaml_is_the_json_document() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    pitrix::scaffold::new_catalog(&good).unwrap();
    let catalog = tmp.path().join("store");
    pitrix::scaffold::new_catalog(&catalog).unwrap();
    // An error, so the report has a diagnostic in it.
    std::fs::write(
        catalog.join("apps/hello/app.yaml"),
        std::fs::read_to_string(catalog.join("apps/hello/app.yaml")).unwrap() + "extra: 1\n",
    )
    .unwrap();
    let dir = catalog.to_str().unwrap();
    let json_of = |args: &[&str]| -> serde_json::Value {
        let out = pitrix(args, tmp.path());
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", String::from_utf8_lossy(&out.stdout)))
    };
    let yaml_of = |args: &[&str]| -> serde_json::Value {
        let out = pitrix(args, tmp.path());
        serde_yaml::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", String::from_utf8_lossy(&out.stdout)))
    };
    let json = json_of(&["validate", dir, "-o", "json"]);
    assert!(
        json["diagnostics"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{json}"
    );
    assert_eq!(json_of(&["validate", dir, "--output", "json"]), json);
    assert_eq!(json_of(&["validate", dir, "--format", "json"]), json);
    assert_eq!(yaml_of(&["validate", dir, "-o", "yaml"]), json);

    // compile: -o and --out-dir name the directory, --output the format.
    let dir = good.to_str().unwrap();
    let out = tmp.path().join("out");
    let compiled = pitrix(
        &[
            "compile",
            dir,
            "--out-dir",
            out.to_str().unwrap(),
            "--output",
            "yaml",
        ],
        tmp.path(),
    );
    assert!(compiled.status.success(), "{compiled:?}");
    assert!(out.join("kustomization.yaml").is_file());
    let legacy = tmp.path().join("legacy");
    let compiled = pitrix(
        &["compile", dir, "-o", legacy.to_str().unwrap()],
        tmp.path(),
    );
    assert!(compiled.status.success(), "{compiled:?}");
    assert!(legacy.join("kustomization.yaml").is_file());

    // A format that does not exist is refused at parse time, with the ones that do.
    let bad = pitrix(&["validate", dir, "-o", "xml"], tmp.path());
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("[possible values: text, json, yaml, github]"),
        "{err}"
    );
}
