//! Shared by the integration tests: the example catalog, compiling into temp dirs, copying
//! trees, and the Helm oracle.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example_catalog() -> PathBuf {
    repo_root().join("examples/catalog")
}

/// Compiles `catalog` in-process and returns the output files.
pub fn compile_files(catalog: &Path) -> pitrix::emit::Files {
    match pitrix::pipeline::build(catalog) {
        Ok((compiled, _warnings)) => pitrix::emit::render(&compiled),
        Err(diags) => panic!(
            "{} does not compile:\n{}",
            catalog.display(),
            pitrix::diagnostics::render(&diags, catalog, pitrix::diagnostics::Format::Text)
        ),
    }
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The Python with real Helm (helm-python-sdk) that `scripts/setup-test-env.sh` installs.
pub fn oracle_python() -> PathBuf {
    let python = std::env::var_os("PITRIX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/venv/bin/python"));
    assert!(
        python.exists(),
        "the Helm oracle is not installed ({}): run scripts/setup-test-env.sh, or scripts/test.sh",
        python.display()
    );
    python
}

/// Runs `tests/oracle/helm_oracle.py ARGS…` and parses its JSON answer.
pub fn helm_oracle(args: &[&str]) -> serde_json::Value {
    let out = Command::new(oracle_python())
        .arg(repo_root().join("tests/oracle/helm_oracle.py"))
        .args(args)
        .output()
        .expect("the Helm oracle runs");
    assert!(
        out.status.success(),
        "helm oracle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the Helm oracle prints JSON")
}

/// `pitrix apply CATALOG --kubeconfig KUBECONFIG --output json EXTRA`: the exit code and the
/// report (panics when it printed no JSON report).
pub fn apply_json(kubeconfig: &Path, catalog: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("apply")
        .arg(catalog)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--output", "json"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "apply printed no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// (kind, name) of every result of an apply report with `outcome`.
pub fn outcomes_of(report: &serde_json::Value, outcome: &str) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["outcome"] == outcome)
        .map(|r| {
            (
                r["object"]["kind"].as_str().unwrap_or_default().to_string(),
                r["object"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Diagnostics one per line, everything they carry: for assertion messages.
pub fn dump(diags: &[pitrix::diagnostics::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| {
            format!(
                "  {:?} {} {:?} {:?} :: {} (hint: {:?})",
                d.severity,
                d.code.as_str(),
                d.file,
                d.pos.map(|p| (p.line, p.column)),
                d.message,
                d.hint
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The codes of the diagnostics of `severity`, sorted.
pub fn codes(
    diags: &[pitrix::diagnostics::Diagnostic],
    severity: pitrix::diagnostics::Severity,
) -> Vec<&'static str> {
    let mut v: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == severity)
        .map(|d| d.code.as_str())
        .collect();
    v.sort_unstable();
    v
}
