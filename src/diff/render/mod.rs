//! Renderings of a [`Diff`]: text for a terminal (coloured on a TTY), Markdown for a pull
//! request comment (≤ 65,536 characters), JSON for machines (`schema/diff.schema.json`).
//! Everything they print was redacted when the diff was built.

mod markdown;
mod text;

use super::{Action, Diff, FieldChange, FieldOp, FileChange, ObjectChange};

pub use markdown::{COMMENT_LIMIT, marker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
    Yaml,
}

impl Format {
    /// By file extension: `.json`, `.yaml`/`.yml`, `.md`/`.markdown`, anything else text.
    pub fn for_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("yaml" | "yml") => Format::Yaml,
            Some("md" | "markdown") => Format::Markdown,
            _ => Format::Text,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// ANSI colours (text only).
    pub color: bool,
    /// Largest Markdown output in bytes (so also in characters); `None`: no limit (the full
    /// diff, for an artifact).
    pub limit: Option<usize>,
    /// Where the full diff is, for the note of a truncated Markdown diff.
    pub full_diff: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            color: false,
            limit: Some(COMMENT_LIMIT),
            full_diff: None,
        }
    }
}

pub fn render(diff: &Diff, format: Format, options: &Options) -> String {
    match format {
        Format::Text => text::render(diff, options.color),
        Format::Markdown => markdown::render(diff, options),
        Format::Json => json(diff),
        Format::Yaml => crate::diagnostics::json_as_yaml(&json(diff)),
    }
}

/// Text for a terminal or a Markdown page with what could hide or forge what a reviewer reads
/// made visible: C0 and C1 control characters but tab (a chart file named `a\n+++ b` would
/// start a line of its own; `\u{1b}[…` would drive the terminal), and the Unicode
/// bidirectional formatting characters and line separators (`evil\u{202e}lmth.js` reads
/// backwards): U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069, U+2028, U+2029. Each
/// shows as a Rust escape (`\n`, `\r`, `\u{1b}`, `\u{202e}`). Backslashes are kept as they
/// are (templates are full of them). The text and Markdown renderings show every name,
/// message and line of a diff through it; the JSON rendering keeps exact names and text: it
/// is data, and JSON escapes control characters itself.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    fn escaped(c: char) -> bool {
        (c.is_control() && c != '\t')
            || matches!(
                c,
                '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{2028}'
                    | '\u{2029}'
            )
    }
    if !s.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`escape_controls`] line by line: the line breaks of a text (`\n`, `\r\n`) stay line breaks.
fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| match line.strip_suffix('\r') {
            Some(l) => format!("{}\r", escape_controls(l)),
            None => escape_controls(line).into_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The diff as pretty JSON, per `schema/diff.schema.json`. Names and text are exact (no
/// [`escape_controls`]): JSON is data, and its encoding escapes control characters.
pub fn json(diff: &Diff) -> String {
    let mut s = serde_json::to_string_pretty(diff).unwrap_or_default();
    s.push('\n');
    s
}

/// The files of a package in the order a reviewer reads them (and a shortened comment keeps
/// them): `Chart.yaml` (and `Chart.lock`, `requirements.yaml`), values files and schema,
/// `templates/`, other files (`files/`, `crds/`, …), docs last (README, CHANGELOG, UPGRADE,
/// LICENSE, `*.md`, `docs/`); a chart's own files before its subcharts' (`charts/<name>/…`,
/// ranked the same way within), by path within a rank.
pub fn review_order(files: &[FileChange]) -> Vec<&FileChange> {
    let mut v: Vec<&FileChange> = files.iter().collect();
    v.sort_by_cached_key(|f| (review_rank(&f.path), f.path.clone()));
    v
}

/// `(docs, subchart depth, kind)` of a chart file's path (see [`review_order`]).
fn review_rank(path: &str) -> (bool, usize, u8) {
    let mut rest = path;
    let mut depth = 0;
    while let Some(r) = rest.strip_prefix("charts/")
        && let Some((_, inner)) = r.split_once('/')
    {
        rest = inner;
        depth += 1;
    }
    let name = rest.rsplit('/').next().unwrap_or(rest);
    let upper = name.to_ascii_uppercase();
    let lower = rest.to_ascii_lowercase();
    let docs = [
        "README",
        "CHANGELOG",
        "CHANGES",
        "UPGRAD",
        "LICENSE",
        "NOTICE",
        "CONTRIBUTING",
    ]
    .iter()
    .any(|d| upper.starts_with(d))
        || [".md", ".markdown", ".rst", ".adoc"]
            .iter()
            .any(|e| lower.ends_with(e))
        || lower.starts_with("docs/")
        || lower.starts_with("doc/");
    let kind = if matches!(
        rest,
        "Chart.yaml" | "Chart.lock" | "requirements.yaml" | "requirements.lock"
    ) {
        0
    } else if crate::redact::is_values_file(rest) || rest == "values.schema.json" {
        1
    } else if rest.starts_with("templates/") {
        2
    } else {
        3
    };
    (docs, depth, kind)
}

/// `Kind namespace/name` or `Kind name`, and `(cluster <name>)` for a member cluster's.
fn title(c: &ObjectChange) -> String {
    let object = match &c.namespace {
        Some(ns) => format!("{} {ns}/{}", c.kind, c.name),
        None => format!("{} {}", c.kind, c.name),
    };
    match &c.cluster {
        Some(cluster) => format!("{object} (cluster {cluster})"),
        None => object,
    }
}

fn sign(a: Action) -> char {
    match a {
        Action::Removed => '-',
        Action::Changed => '~',
        Action::Added => '+',
    }
}

/// A value for one line: compact JSON, cut at `max` characters.
fn short_value(v: &serde_json::Value, max: usize) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.chars().count() <= max {
        return s;
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// `path: old → new`, `path: + new`, `path: - old`.
fn field_line(f: &FieldChange) -> String {
    let path = if f.path.is_empty() { "/" } else { &f.path };
    let v =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| short_value(v, 100)).unwrap_or_default();
    match f.op {
        FieldOp::Replace => format!("{path}: {} → {}", v(&f.old), v(&f.new)),
        FieldOp::Add => format!("{path}: + {}", v(&f.new)),
        FieldOp::Remove => format!("{path}: - {}", v(&f.old)),
    }
}

fn counts(added: usize, changed: usize, removed: usize) -> String {
    let mut parts = Vec::new();
    if added > 0 {
        parts.push(format!("{added} added"));
    }
    if changed > 0 {
        parts.push(format!("{changed} changed"));
    }
    if removed > 0 {
        parts.push(format!("{removed} removed"));
    }
    if parts.is_empty() {
        "no object changes".into()
    } else {
        parts.join(", ")
    }
}

fn side_label(side: &Option<super::Side>, default: &str) -> String {
    match side {
        Some(s) => match &s.commit {
            Some(c) if !s.label.starts_with(c.as_str()) => {
                format!("{} ({})", s.label, &c[..c.len().min(12)])
            }
            _ => s.label.clone(),
        },
        None => default.to_string(),
    }
}

fn release_versions(r: &super::ReleaseLine) -> String {
    match (&r.from, &r.to) {
        (Some(a), Some(b)) if a != b => format!("{a} → {b}"),
        (Some(a), Some(_)) => a.clone(),
        (None, Some(b)) => format!("→ {b}"),
        (Some(a), None) => format!("{a} →"),
        (None, None) => String::new(),
    }
}

fn release_values(r: &super::ReleaseLine) -> &'static str {
    match r.action {
        Action::Changed if r.values_changed => "values changed",
        Action::Changed => "values unchanged",
        Action::Added => "new release",
        Action::Removed => "release removed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_in_review_order_templates_before_docs() {
        let file = |p: &str| FileChange {
            path: p.into(),
            action: Action::Changed,
            binary: false,
            old_size: Some(1),
            new_size: Some(2),
            hunks: None,
        };
        let files: Vec<FileChange> = [
            "README.md",
            "UPGRADE.md",
            "charts/redis/README.md",
            "charts/redis/templates/a.yaml",
            "charts/redis/Chart.yaml",
            "files/dashboard.json",
            "templates/_helpers.tpl",
            "templates/NOTES.txt",
            "values.schema.json",
            "values.yaml",
            "Chart.yaml",
            "ci/prod-values.yaml",
            "docs/install.txt",
        ]
        .map(file)
        .into();
        let order: Vec<&str> = review_order(&files)
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "Chart.yaml",
                "ci/prod-values.yaml",
                "values.schema.json",
                "values.yaml",
                "templates/NOTES.txt",
                "templates/_helpers.tpl",
                "files/dashboard.json",
                "charts/redis/Chart.yaml",
                "charts/redis/templates/a.yaml",
                "README.md",
                "UPGRADE.md",
                "docs/install.txt",
                "charts/redis/README.md",
            ]
        );
    }

    #[test]
    fn controls_and_bidi_characters_are_escaped() {
        assert_eq!(escape_controls("values.yaml"), "values.yaml");
        assert!(matches!(
            escape_controls("a\tb \\n"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("line\n+++ b/x\r\u{0}\u{7f}\u{85}\u{1b}[2J"),
            "line\\n+++ b/x\\r\\u{0}\\u{7f}\\u{85}\\u{1b}[2J"
        );
        assert_eq!(
            escape_controls(
                "evil\u{202e}lmth.js \u{2066}x\u{2069} \u{200e}\u{200f}\u{061c}\u{2028}"
            ),
            "evil\\u{202e}lmth.js \\u{2066}x\\u{2069} \\u{200e}\\u{200f}\\u{61c}\\u{2028}"
        );
        assert_eq!(escape_lines("a\u{202e}\r\nb\rc\n"), "a\\u{202e}\r\nb\\rc\n");
    }
}
