//! Release values: minijinja templates with the release's context (strict), environments,
//! Helm's layering, and the chart's values.schema.json — checked where the value was set, and
//! confirmed by real Helm refusing the same values.

use crate::common;

use std::path::Path;

use pitrix::compile::Object;
use pitrix::diagnostics::Diagnostic;
use pitrix::pipeline::{CheckOptions, build_with, check_with};

fn catalog() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    pitrix::scaffold::new_catalog(&tmp.path().join("catalog")).unwrap();
    let settings = tmp.path().join("catalog/pitrix.toml");
    let text = std::fs::read_to_string(&settings).unwrap()
        + "\n[env.prod]\nworkspace = \"prod-ws\"\n\n[env.prod.vars]\ndomain = \"prod.example.com\"\n";
    let text = text.replace(
        "storageNamespace = \"extension-openpitrix\"",
        "storageNamespace = \"extension-openpitrix\"\nallowEnv = [\"PITRIX_TEST_BUILD\"]",
    );
    std::fs::write(&settings, text).unwrap();
    tmp
}

fn write(root: &Path, file: &str, text: &str) {
    std::fs::write(root.join(file), text).unwrap();
}

const RELEASE: &str = "releases/host/default/hello.yaml";

fn release_values(root: &Path, env: Option<&str>) -> (String, Vec<Diagnostic>) {
    let opts = CheckOptions {
        env: env.map(str::to_string),
        ..CheckOptions::default()
    };
    match build_with(root, &opts) {
        Ok((_, compiled, warnings)) => {
            let release = compiled
                .objects
                .iter()
                .find_map(|o| match o {
                    Object::ApplicationRelease(r) => Some(r.clone()),
                    _ => None,
                })
                .unwrap();
            let values = release
                .spec
                .values
                .map(|v| String::from_utf8(v.0).unwrap())
                .unwrap_or_default();
            (values, warnings)
        }
        Err(diags) => (String::new(), diags),
    }
}

#[test]
fn templates_render_with_the_release_context_and_the_environment() {
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvaluesFiles:\n  - values/common.yaml\n  - values/site.yaml.j2\nvalues:\n  host: \"{{ release }}.{{ vars.domain }}\"\n  build: \"{{ env.PITRIX_TEST_BUILD }}\"\n",
    );
    write(
        &root,
        "values/site.yaml.j2",
        "where: {{ cluster }}/{{ namespace }}\napp: {{ app }}-{{ version }}\nmessage: from the file\n",
    );
    // Through the binary, with the allow-listed variable set for it alone.
    let out = tmp.path().join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args([
            "compile",
            root.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .env("PITRIX_TEST_BUILD", "b42")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let release: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(out.join("objects/applicationreleases/hello.yaml")).unwrap(),
    )
    .unwrap();
    let values = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        release["spec"]["values"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(values).unwrap(),
        "replicaCount: 2\nwhere: host/default\napp: hello-0.1.0\nmessage: from the file\nhost: hello.apps.example.com\nbuild: b42\n"
    );
    // In-process the variable is not set, so `env.PITRIX_TEST_BUILD` is undefined: drop it.
    let text = std::fs::read_to_string(root.join(RELEASE))
        .unwrap()
        .replace("  build: \"{{ env.PITRIX_TEST_BUILD }}\"\n", "");
    write(&root, RELEASE, &text);
    let (values, diags) = release_values(&root, Some("prod"));
    assert!(diags.is_empty(), "{diags:#?}");
    assert!(values.contains("host: hello.prod.example.com"), "{values}");

    // The environment also picks the default workspace, and the output says which it was.
    let opts = CheckOptions {
        env: Some("prod".into()),
        ..CheckOptions::default()
    };
    let (_, compiled, _) = build_with(&root, &opts).unwrap();
    let app = compiled
        .objects
        .iter()
        .find(|o| o.kind() == "Application")
        .unwrap();
    assert_eq!(
        app.metadata().labels.as_ref().unwrap()["kubesphere.io/workspace"],
        "prod-ws"
    );
    let files = pitrix::emit::render(&compiled);
    let inventory = files
        .iter()
        .find(|(p, _)| p.ends_with("inventory.json"))
        .unwrap();
    assert!(String::from_utf8_lossy(&inventory.1).contains("\"environment\": \"prod\""));

    // An unknown environment is an error with a suggestion.
    let opts = CheckOptions {
        env: Some("prdo".into()),
        ..CheckOptions::default()
    };
    let (_, diags) = check_with(&root, &opts);
    let d = diags
        .iter()
        .find(|d| d.code.as_str() == "unknown-environment")
        .unwrap();
    assert!(d.hint.as_deref().unwrap().contains("prod"));
}

#[test]
fn template_errors_are_positioned() {
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    // An undefined name in an inline value: the line of that value.
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvalues:\n  a: 1\n  host: \"{{ vars.domian }}\"\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let d = diags
        .iter()
        .find(|d| d.code.as_str() == "template")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(d.file.as_deref(), Some(Path::new(RELEASE)));
    assert_eq!(d.pos.unwrap().line, 5);

    // A secret-ish environment variable not in allowEnv is simply undefined.
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvalues:\n  token: \"{{ env.HOME }}\"\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    assert!(
        diags
            .iter()
            .any(|d| d.code.as_str() == "template" && d.pos.unwrap().line == 4),
        "{diags:#?}"
    );

    // A bad filter in a .j2 values file: that file, that line.
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvaluesFiles: [values/x.yaml.j2]\n",
    );
    write(
        &root,
        "values/x.yaml.j2",
        "a: 1\nb: 2\nc: {{ release | shout }}\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let d = diags
        .iter()
        .find(|d| d.code.as_str() == "template")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(d.file.as_deref(), Some(Path::new("values/x.yaml.j2")));
    assert_eq!(d.pos.unwrap().line, 3);
}

#[test]
fn templates_that_do_too_much_work_stop_with_a_positioned_budget_error() {
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    let started = std::time::Instant::now();
    // Two nested loops of 10,000: a hundred million iterations, stopped by the instruction
    // budget at the template's line.
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvalues:\n  a: 1\n  spin: \"{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}\"\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let d = diags
        .iter()
        .find(|d| d.code.as_str() == "template-budget")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(d.file.as_deref(), Some(Path::new(RELEASE)));
    assert_eq!(d.pos.unwrap().line, 5);
    assert!(
        d.hint.as_deref().unwrap().contains("too much work"),
        "{d:?}"
    );

    // A string blown up in a .j2 values file: the output budget, at that file and line.
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvaluesFiles: [values/big.yaml.j2]\n",
    );
    write(
        &root,
        "values/big.yaml.j2",
        "a: 1\nb: {% for i in range(100000) %}{{ 'x' * 100000000 }}{% endfor %}\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let d = diags
        .iter()
        .find(|d| d.code.as_str() == "template-budget")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(d.file.as_deref(), Some(Path::new("values/big.yaml.j2")));
    assert_eq!(d.pos.unwrap().line, 2);
    // "Terminates", generously (a debug build on a busy machine): the unbounded versions take
    // minutes and tens of GB.
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[test]
fn schema_errors_never_echo_the_value() {
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    write(&root, "apps/hello/0.1.0/values.schema.json", SCHEMA);
    // A secret under an innocent key and under a password key, each of the wrong type.
    let secret = "PW-INLINE-111";
    write(
        &root,
        RELEASE,
        &format!(
            "app: hello\nversion: 0.1.0\nvaluesFiles: [values/common.yaml]\nvalues:\n  replicaCount: {secret}\n  service:\n    port: {secret}\n    password: {{a: {secret}}}\n"
        ),
    );
    write(
        &root,
        "apps/hello/0.1.0/values.schema.json",
        &SCHEMA.replace(
            r#""port": {"type": "integer"}"#,
            r#""port": {"type": "integer"}, "password": {"type": "string", "minLength": 40}"#,
        ),
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.code.as_str() == "values-schema")
        .cloned()
        .collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors.iter().any(|d| d
            .message
            .contains("`/replicaCount` is not of type \"integer\"")),
        "{errors:#?}"
    );
    for format in [
        pitrix::diagnostics::Format::Text,
        pitrix::diagnostics::Format::Json,
        pitrix::diagnostics::Format::Github,
    ] {
        let shown = pitrix::diagnostics::render(&errors, &root, format);
        assert!(!shown.contains(secret), "{shown}");
    }
    for d in &errors {
        assert!(!d.message.contains(secret), "{d:?}");
        assert!(!d.hint.as_deref().unwrap_or("").contains(secret), "{d:?}");
    }
}

const SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["replicaCount"],
  "properties": {
    "replicaCount": {"type": "integer", "minimum": 1},
    "service": {"type": "object", "properties": {"port": {"type": "integer"}}}
  }
}
"#;

#[test]
fn values_are_checked_against_the_chart_schema_where_they_were_set() {
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    write(&root, "apps/hello/0.1.0/values.schema.json", SCHEMA);
    let (_, diags) = check_with(&root, &CheckOptions::default());
    assert!(diags.is_empty(), "the scaffold's values fit: {diags:#?}");

    // Wrong type, set inline: reported at the inline line.
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvaluesFiles: [values/common.yaml]\nvalues:\n  service:\n    port: http\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code.as_str(), "values-schema");
    assert_eq!(errors[0].file.as_deref(), Some(Path::new(RELEASE)));
    assert_eq!(errors[0].pos.unwrap().line, 6);
    assert!(
        errors[0].message.contains("/service/port"),
        "{}",
        errors[0].message
    );

    // Set in a values file: reported there.
    write(&root, "values/common.yaml", "# shared\nreplicaCount: 0\n");
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvaluesFiles: [values/common.yaml]\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let d = diags
        .iter()
        .find(|d| d.code.as_str() == "values-schema")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(d.file.as_deref(), Some(Path::new("values/common.yaml")));
    assert_eq!(d.pos.unwrap().line, 2);

    // Real Helm refuses the same values for the same chart: our check runs before it would.
    let chart_dir = root.join("apps/hello/0.1.0");
    let files = pitrix::chart::read_dir(&chart_dir, &pitrix::chart::Limits::default()).unwrap();
    let package = tmp.path().join("hello.tgz");
    std::fs::write(&package, pitrix::chart::pack("hello", &files)).unwrap();
    let values = tmp.path().join("values.yaml");
    std::fs::write(&values, "replicaCount: 0\n").unwrap();
    let helm = common::helm_oracle(&[
        "template",
        package.to_str().unwrap(),
        "--values",
        values.to_str().unwrap(),
        "--name",
        "hello",
        "--namespace",
        "default",
    ]);
    assert_eq!(
        helm["ok"], false,
        "Helm accepts what pitrix refused: {helm}"
    );
    assert!(
        helm["error"].as_str().unwrap().contains("replicaCount"),
        "{helm}"
    );
}

#[test]
fn a_template_that_doubles_a_string_ends_at_the_memory_limit_with_an_error() {
    // Each `~` is one instruction: no instruction budget sees 2^36 bytes coming. The process's
    // memory limit does, and pitrix says so instead of aborting or taking the machine.
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    let template = format!(
        "{{% set s = 'xxxxxxxxxxxxxxxx' %}}{}{{{{ s | length }}}}",
        "{% set s = s ~ s %}".repeat(36)
    );
    write(
        &root,
        "releases/host/default/hello.yaml",
        &format!("app: hello\nversion: 0.1.0\nvalues:\n  message: \"{template}\"\n"),
    );
    let run = |limit: &str, dir: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .arg("validate")
            .arg(dir)
            .env("PITRIX_MEMORY_LIMIT", limit)
            .output()
            .unwrap()
    };
    let started = std::time::Instant::now();
    let out = run("512MiB", &root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error[out-of-memory]"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    // The limit does not get in the way of an ordinary catalog.
    let example = common::example_catalog();
    let out = run("512MiB", &example);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run("lots", &example);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PITRIX_MEMORY_LIMIT=lots"));
}

/// A subchart: Chart.yaml, values.yaml and values.schema.json.
fn subchart(name: &str, deps: &str, values: &str, schema: &str) -> Vec<(String, String)> {
    vec![
        (
            "Chart.yaml".into(),
            format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n{deps}"),
        ),
        ("values.yaml".into(), values.into()),
        ("values.schema.json".into(), schema.into()),
    ]
}

/// Subcharts' schemas are checked as Helm checks them at install: a directory subchart, a
/// `.tgz` one under an alias (with a schema on globals), a nested one, and a disabled one
/// (its condition false: not checked). Each refusal is positioned where the value was set,
/// and real Helm refuses the same values.
#[test]
fn subchart_schemas_are_checked_as_helm_checks_them() {
    let tmp = catalog();
    let root = tmp.path().join("catalog");
    let chart = root.join("apps/hello/0.1.0");
    let put = |dir: &Path, files: &[(String, String)]| {
        for (p, text) in files {
            let f = dir.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
    };
    let mut parent = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap();
    parent.push_str(
        "dependencies:\n  - name: dirsub\n    version: 0.1.0\n  - name: tgzsub\n    version: \"~0.1.0\"\n    alias: cache\n  - name: optional\n    version: 0.1.0\n    condition: optional.enabled\n",
    );
    write(&root, "apps/hello/0.1.0/Chart.yaml", &parent);
    let mut values = std::fs::read_to_string(chart.join("values.yaml")).unwrap();
    values.push_str("global:\n  region: eu\n");
    write(&root, "apps/hello/0.1.0/values.yaml", &values);
    // charts/dirsub (a directory) with charts/dirsub/charts/inner (nested, a directory).
    let dirsub = chart.join("charts/dirsub");
    put(
        &dirsub,
        &subchart(
            "dirsub",
            "dependencies:\n  - name: inner\n    version: 0.1.0\n    condition: inner.enabled\n",
            "replicaCount: 1\ninner:\n  enabled: true\n",
            r#"{"type": "object", "properties": {"replicaCount": {"type": "integer", "minimum": 0}}}"#,
        ),
    );
    put(
        &dirsub.join("charts/inner"),
        &subchart(
            "inner",
            "",
            "size: 1\n",
            r#"{"type": "object", "properties": {"size": {"type": "integer", "maximum": 10}}}"#,
        ),
    );
    // charts/tgzsub-0.1.0.tgz, installed as `cache`; its schema checks a global.
    let mut tgz = pitrix::chart::ChartFiles::new();
    for (p, text) in subchart(
        "tgzsub",
        "",
        "port: 6379\n",
        r#"{"type": "object", "properties": {"port": {"type": "integer"}, "global": {"type": "object", "properties": {"region": {"enum": ["eu", "us"]}}}}}"#,
    ) {
        tgz.insert(&p, text.into_bytes()).unwrap();
    }
    std::fs::write(
        chart.join("charts/tgzsub-0.1.0.tgz"),
        pitrix::chart::pack("tgzsub", &tgz),
    )
    .unwrap();
    // charts/optional: disabled by default; its schema refuses everything.
    put(
        &chart.join("charts/optional"),
        &subchart("optional", "", "enabled: false\n", r#"{"not": {}}"#),
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "the defaults fit: {errors:#?}");

    let package = tmp.path().join("hello.tgz");
    let files = pitrix::chart::read_dir(&chart, &pitrix::chart::Limits::default()).unwrap();
    std::fs::write(&package, pitrix::chart::pack("hello", &files)).unwrap();
    let helm = |values: &str| {
        let file = tmp.path().join("helm-values.yaml");
        std::fs::write(&file, values).unwrap();
        common::helm_oracle(&[
            "template",
            package.to_str().unwrap(),
            "--values",
            file.to_str().unwrap(),
            "--name",
            "hello",
            "--namespace",
            "default",
        ])
    };
    assert_eq!(helm("{}\n")["ok"], true, "Helm accepts the defaults");

    // Each case: inline values (YAML under `values:`), the pointer pitrix reports.
    for (inline, pointer) in [
        ("dirsub:\n    replicaCount: -1", "/dirsub/replicaCount"),
        ("cache:\n    port: redis", "/cache/port"),
        ("dirsub:\n    inner:\n      size: 11", "/dirsub/inner/size"),
        ("global:\n    region: mars", "/global/region"),
    ] {
        write(
            &root,
            RELEASE,
            &format!("app: hello\nversion: 0.1.0\nvalues:\n  message: hi\n  {inline}\n"),
        );
        let (_, diags) = check_with(&root, &CheckOptions::default());
        let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{inline}: {errors:#?}");
        let e = errors[0];
        assert_eq!(e.code.as_str(), "values-schema", "{e:#?}");
        assert!(e.message.contains(pointer), "{pointer}: {}", e.message);
        assert_eq!(e.file.as_deref(), Some(Path::new(RELEASE)));
        // The line of the offending value: the last line of the inline block.
        assert_eq!(
            e.pos.unwrap().line as usize,
            4 + inline.lines().count(),
            "{inline}: {e:#?}"
        );
        // Real Helm refuses the same values.
        let as_yaml = inline.replace("\n  ", "\n");
        let h = helm(&format!("{as_yaml}\n"));
        assert_eq!(
            h["ok"], false,
            "Helm accepts what pitrix refused ({inline}): {h}"
        );
    }

    // A disabled subchart's schema is not checked (Helm leaves it out); enabled, it is.
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvalues:\n  optional:\n    anything: 1\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    assert!(!diags.iter().any(|d| d.is_error()), "{diags:#?}");
    assert_eq!(helm("optional:\n  anything: 1\n")["ok"], true);
    write(
        &root,
        RELEASE,
        "app: hello\nversion: 0.1.0\nvalues:\n  optional:\n    enabled: true\n",
    );
    let (_, diags) = check_with(&root, &CheckOptions::default());
    assert!(
        diags
            .iter()
            .any(|d| d.code.as_str() == "values-schema" && d.message.contains("/optional")),
        "{diags:#?}"
    );
    assert_eq!(helm("optional:\n  enabled: true\n")["ok"], false);
}
