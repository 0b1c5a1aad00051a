//! Renderings of diagnostics: text for people (with the source line), JSON for machines,
//! GitHub workflow commands for annotations on a pull request's files.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::{Code, Diagnostic, Severity};
use crate::redact;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Yaml,
    Github,
}

/// Renders `diagnostics` for a catalog at `root` (file paths are shown joined to it).
pub fn render(diagnostics: &[Diagnostic], root: &Path, format: Format) -> String {
    match format {
        Format::Text => text(diagnostics, root),
        Format::Json => json(diagnostics, root),
        Format::Yaml => json_as_yaml(&json(diagnostics, root)),
        Format::Github => github(diagnostics, root),
    }
}

/// A JSON report as YAML, for `-o yaml`: the same document, so the JSON schema describes both.
pub fn json_as_yaml(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| serde_yaml::to_string(&v).ok())
        .unwrap_or_else(|| json.to_string())
}

fn shown_path(root: &Path, d: &Diagnostic) -> Option<String> {
    d.file
        .as_ref()
        .map(|f| root.join(f).to_string_lossy().replace('\\', "/"))
}

fn text(diagnostics: &[Diagnostic], root: &Path) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{level}[{}]: {}", d.code, redact::text(&d.message));
        if let Some(path) = shown_path(root, d) {
            match d.pos {
                Some(pos) => {
                    let _ = writeln!(out, "  --> {path}:{}:{}", pos.line, pos.column);
                    if let Some(line) = source_line(root, d.file.as_ref().unwrap(), pos.line) {
                        let gutter = pos.line.to_string();
                        let pad = " ".repeat(gutter.len());
                        let caret = " ".repeat(pos.column.saturating_sub(1) as usize);
                        let _ = writeln!(out, "{pad} |");
                        let _ = writeln!(out, "{gutter} | {}", snippet(d, &line));
                        let _ = writeln!(out, "{pad} | {caret}^");
                    }
                }
                None => {
                    let _ = writeln!(out, "  --> {path}");
                }
            }
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "  = hint: {}", redact::text(hint));
        }
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let _ = writeln!(out, "{errors} error(s), {warnings} warning(s)");
    out
}

/// The source line shown under a diagnostic, redacted. A values-schema error points at a
/// value the chart's schema may mark `writeOnly` (a secret under an innocent key): that value
/// is not shown at all, the message says what is wrong with it.
fn snippet(d: &Diagnostic, line: &str) -> String {
    if d.code == Code::ValuesSchema {
        redact::line_without_value(line)
    } else {
        redact::line(line)
    }
}

/// The line to show under a diagnostic; never one of a file outside the catalog.
fn source_line(root: &Path, file: &Path, line: u32) -> Option<String> {
    let text = crate::confine::read_to_string(root, file).ok()?;
    let line = text.lines().nth(line.checked_sub(1)? as usize)?;
    // Long lines (minified JSON, base64) are not worth showing.
    (line.len() <= 200).then(|| line.trim_end().to_string())
}

#[derive(Serialize)]
struct JsonReport<'a> {
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: Severity,
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    #[serde(skip)]
    _d: std::marker::PhantomData<&'a ()>,
}

fn json(diagnostics: &[Diagnostic], root: &Path) -> String {
    let report = JsonReport {
        errors: diagnostics.iter().filter(|d| d.is_error()).count(),
        warnings: diagnostics.iter().filter(|d| !d.is_error()).count(),
        diagnostics: diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                severity: d.severity,
                code: d.code.as_str(),
                message: redact::text(&d.message),
                file: shown_path(root, d),
                line: d.pos.map(|p| p.line),
                column: d.pos.map(|p| p.column),
                hint: d.hint.as_deref().map(redact::text),
                _d: std::marker::PhantomData,
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
    s.push('\n');
    s
}

/// The catalog root as GitHub annotations name files: relative to the repository (the git
/// work tree around it, else `GITHUB_WORKSPACE`), neither `./`-prefixed nor absolute — GitHub
/// shows an annotation on a pull request's file only when its path is the repository's.
/// Outside of both, the root as given, without `.` components.
fn repository_relative(root: &Path) -> PathBuf {
    let absolute = root
        .canonicalize()
        .or_else(|_| std::path::absolute(root))
        .unwrap_or_else(|_| root.to_path_buf());
    let work_tree = absolute
        .ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf);
    let workspace = || {
        std::env::var_os("GITHUB_WORKSPACE")
            .filter(|w| !w.is_empty())
            .and_then(|w| PathBuf::from(w).canonicalize().ok())
    };
    let relative = work_tree
        .or_else(workspace)
        .and_then(|base| absolute.strip_prefix(base).ok().map(Path::to_path_buf));
    relative.unwrap_or_else(|| {
        root.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    })
}

/// GitHub workflow commands: `::error file=…,line=…,col=…,title=…::message`.
fn github(diagnostics: &[Diagnostic], root: &Path) -> String {
    let base = repository_relative(root);
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = Vec::new();
        if let Some(file) = &d.file {
            let path: PathBuf = base
                .join(file)
                .components()
                .filter(|c| !matches!(c, Component::CurDir))
                .collect();
            let path = path.to_string_lossy().replace('\\', "/");
            props.push(format!("file={}", escape_property(&path)));
        }
        if let Some(pos) = d.pos {
            props.push(format!("line={}", pos.line));
            props.push(format!("col={}", pos.column));
        }
        props.push(format!(
            "title={}",
            escape_property(&format!("pitrix {}", d.code))
        ));
        let mut message = redact::text(&d.message);
        if let Some(hint) = &d.hint {
            message.push_str("\nhint: ");
            message.push_str(&redact::text(hint));
        }
        let _ = writeln!(
            out,
            "::{level} {}::{}",
            props.join(","),
            escape_data(&message)
        );
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Pos;

    fn sample() -> Vec<Diagnostic> {
        vec![
            Diagnostic::error(Code::UnknownKey, "unknown key `displayNam`")
                .in_file("apps/nginx/app.yaml")
                .at(Pos { line: 3, column: 1 })
                .hint("did you mean `displayName`?"),
            Diagnostic::warning(Code::UnknownRepo, "unverified, with a comma"),
        ]
    }

    #[test]
    fn every_format_redacts_messages_hints_and_source_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hello.yaml"),
            "values:\n  rootPhrase: open-sesame\n  dbPassword: hunter2\n",
        )
        .unwrap();
        let diags = [
            Diagnostic::error(
                Code::ValuesSchema,
                "release `hello`: values at `/rootPhrase`: bad; auth: \"c2VjcmV0\"",
            )
            .in_file("hello.yaml")
            .at(Pos {
                line: 2,
                column: 15,
            })
            .hint("set client-key-data: LS0tsecret or https://bot:pw-123@git.example.com/x"),
            Diagnostic::error(Code::InvalidValue, "connection_string=Server=db;pwd=x1")
                .in_file("hello.yaml")
                .at(Pos { line: 3, column: 3 }),
        ];
        for format in [Format::Text, Format::Json, Format::Github] {
            let out = render(&diags, dir.path(), format);
            for secret in [
                "open-sesame",
                "hunter2",
                "c2VjcmV0",
                "LS0tsecret",
                "pw-123",
                "Server=db",
            ] {
                assert!(!out.contains(secret), "{secret} in {format:?}:\n{out}");
            }
        }
        let text = render(&diags, dir.path(), Format::Text);
        assert!(text.contains("2 |   rootPhrase: ***\n"), "{text}");
        assert!(text.contains("3 |   dbPassword: ***\n"), "{text}");
        // A Diagnostic serialized on its own is redacted too.
        let json = serde_json::to_string(&diags[0]).unwrap();
        assert!(
            !json.contains("c2VjcmV0") && !json.contains("pw-123"),
            "{json}"
        );
    }

    #[test]
    fn github_annotations_escape_properties() {
        let out = render(&sample(), Path::new("cat"), Format::Github);
        let first = out.lines().next().unwrap();
        assert_eq!(
            first,
            "::error file=cat/apps/nginx/app.yaml,line=3,col=1,title=pitrix unknown-key::unknown key `displayNam`%0Ahint: did you mean `displayName`?"
        );
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .starts_with("::warning title=pitrix unknown-repo::")
        );
    }

    #[test]
    fn json_report_counts() {
        let out = render(&sample(), Path::new("cat"), Format::Json);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["errors"], 1);
        assert_eq!(v["warnings"], 1);
        assert_eq!(v["diagnostics"][0]["code"], "unknown-key");
        assert_eq!(v["diagnostics"][0]["line"], 3);
        assert_eq!(v["diagnostics"][0]["file"], "cat/apps/nginx/app.yaml");
    }

    #[test]
    fn text_shows_location_and_hint() {
        let out = render(&sample(), Path::new("cat"), Format::Text);
        assert!(out.contains("error[unknown-key]: unknown key `displayNam`"));
        assert!(out.contains("  --> cat/apps/nginx/app.yaml:3:1"));
        assert!(out.contains("  = hint: did you mean `displayName`?"));
        assert!(out.ends_with("1 error(s), 1 warning(s)\n"));
    }
}
