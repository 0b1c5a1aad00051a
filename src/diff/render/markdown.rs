//! The diff as a pull request comment: a hidden marker (to find and update the one comment), a
//! summary table first, errors, releases and review states, then one `<details>` per app. It
//! always fits GitHub's 65,536-character limit: sections that do not fit are shortened to
//! their object list, then left out, with a note pointing at the full diff.

use std::fmt::Write as _;

use super::{
    Action, Diff, ObjectChange, Options, counts, escape_controls, escape_lines, field_line,
    release_values, release_versions, side_label, title,
};

/// GitHub's limit on a comment body (and a sensible size for a job summary).
pub const COMMENT_LIMIT: usize = 65_536;

/// Room kept for the truncation note.
const NOTE_RESERVE: usize = 800;
/// Rows of a table before "… and N more".
const MAX_ROWS: usize = 100;
/// Changed fields named in an object's line.
const MAX_FIELDS: usize = 8;

/// The hidden first line that identifies the comment of a catalog.
pub fn marker(catalog: &str) -> String {
    format!("<!-- pitrix-diff:{} -->", catalog.replace("--", "-"))
}

fn html(s: &str) -> String {
    escape_controls(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Inline code that survives backticks in `s`, its control characters escaped.
fn code(s: &str) -> String {
    let s = &*escape_controls(s);
    let longest = longest_backtick_run(s);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// A fenced block that no line of `body` can close, its control characters escaped.
fn fenced(lang: &str, body: &str) -> String {
    let body = &escape_lines(body);
    let fence = "`".repeat((longest_backtick_run(body) + 1).max(3));
    let mut s = format!("{fence}{lang}\n{body}");
    if !body.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(&fence);
    s.push('\n');
    s
}

/// A table cell (or a line of a quote): no pipes or line breaks, control characters escaped.
fn cell(s: &str) -> String {
    escape_controls(&s.replace(['\n', '\r'], " ")).replace('|', "\\|")
}

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Removed => "🗑️ **removed**",
        Action::Changed => "✏️ **changed**",
        Action::Added => "➕ **added**",
    }
}

fn head(diff: &Diff) -> String {
    let s = &diff.summary;
    let mut out = String::new();
    let _ = writeln!(out, "{}", marker(&diff.catalog));
    let _ = writeln!(out, "### pitrix diff: {}\n", code(&diff.catalog));
    let _ = writeln!(
        out,
        "{} → {}\n",
        code(&side_label(&diff.base, "base")),
        code(&side_label(&diff.head, "head"))
    );
    if !diff.has_changes() && diff.errors.is_empty() {
        let _ = writeln!(
            out,
            "**No changes**: merging this leaves the App Store as it is."
        );
        return out;
    }
    let _ = writeln!(out, "| kind | added | changed | removed |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for k in &s.kinds {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            k.kind, k.added, k.changed, k.removed
        );
    }
    if s.states > 0 {
        let _ = writeln!(out, "| review states | | {} | |", s.states);
    }
    let _ = writeln!(
        out,
        "| **total** | **{}** | **{}** | **{}** |\n",
        s.added, s.changed, s.removed
    );

    if !diff.errors.is_empty() {
        let _ = writeln!(out, "> [!CAUTION]");
        for e in diff.errors.iter().take(20) {
            let _ = write!(out, "> **{}** {}", code(&e.code), cell(&e.message));
            if let Some(f) = &e.file {
                let _ = write!(out, " ({})", code(f));
            }
            let _ = writeln!(out, "<br>");
            if let Some(h) = &e.hint {
                let _ = writeln!(out, "> *hint:* {}<br>", cell(h));
            }
        }
        if diff.errors.len() > 20 {
            let _ = writeln!(out, "> … and {} more", diff.errors.len() - 20);
        }
        out.push('\n');
    }

    if !diff.releases.is_empty() {
        let _ = writeln!(out, "**Releases**\n");
        let _ = writeln!(
            out,
            "| | release | app | version | cluster / namespace | values |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for r in diff.releases.iter().take(MAX_ROWS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} / {} | {} |",
                match r.action {
                    Action::Removed => "🗑️",
                    Action::Changed => "✏️",
                    Action::Added => "➕",
                },
                code(&r.name),
                cell(&r.app),
                cell(&release_versions(r)),
                cell(&r.cluster),
                cell(&r.namespace),
                release_values(r)
            );
        }
        if diff.releases.len() > MAX_ROWS {
            let _ = writeln!(
                out,
                "| | … and {} more | | | | |",
                diff.releases.len() - MAX_ROWS
            );
        }
        out.push('\n');
    }

    if !diff.states.is_empty() {
        let _ = writeln!(out, "**Review states**\n");
        let _ = writeln!(out, "| object | from | to | message |");
        let _ = writeln!(out, "|---|---|---|---|");
        for st in diff.states.iter().take(MAX_ROWS) {
            let _ = writeln!(
                out,
                "| {} {} | {} | {} | {} |",
                st.kind,
                code(&st.name),
                st.from.as_deref().unwrap_or("—"),
                st.to.as_deref().unwrap_or("—"),
                cell(st.message.as_deref().unwrap_or(""))
            );
        }
        if diff.states.len() > MAX_ROWS {
            let _ = writeln!(out, "| … and {} more | | | |", diff.states.len() - MAX_ROWS);
        }
        out.push('\n');
    }
    out
}

/// A group of objects: an app, the catalog-wide objects, or the releases.
struct Group<'a> {
    name: String,
    objects: Vec<&'a ObjectChange>,
}

fn groups(diff: &Diff) -> Vec<Group<'_>> {
    let mut catalog = Group {
        name: "catalog".into(),
        objects: Vec::new(),
    };
    let mut releases = Group {
        name: "releases".into(),
        objects: Vec::new(),
    };
    let mut apps: std::collections::BTreeMap<&str, Vec<&ObjectChange>> = Default::default();
    for c in &diff.objects {
        match (&c.app, c.kind.as_str()) {
            (_, "ApplicationRelease") => releases.objects.push(c),
            (Some(app), _) => apps.entry(app.as_str()).or_default().push(c),
            (None, _) => catalog.objects.push(c),
        }
    }
    let mut out = Vec::new();
    if !catalog.objects.is_empty() {
        out.push(catalog);
    }
    for (app, objects) in apps {
        out.push(Group {
            name: format!("app {app}"),
            objects,
        });
    }
    if !releases.objects.is_empty() {
        out.push(releases);
    }
    out
}

fn summary_line(g: &Group) -> String {
    let n = |a: Action| g.objects.iter().filter(|c| c.action == a).count();
    format!(
        "<details><summary><b>{}</b>: {}</summary>\n\n",
        html(&g.name),
        counts(n(Action::Added), n(Action::Changed), n(Action::Removed))
    )
}

fn object_line(c: &ObjectChange) -> String {
    let mut line = format!("- {} {}", action_word(c.action), code(&title(c)));
    if let Some(pkg) = &c.package {
        let _ = write!(line, ": {} package {}", pkg.kind, code(&pkg.version));
        if let Some(w) = &pkg.compared_with {
            let _ = write!(line, ", compared with {}", code(w));
        }
        if c.action != Action::Removed {
            let _ = write!(line, ", {} file(s)", pkg.files.len());
        }
    } else if c.action == Action::Changed && !c.fields.is_empty() {
        let paths: Vec<String> = c
            .fields
            .iter()
            .take(MAX_FIELDS)
            .map(|f| code(if f.path.is_empty() { "/" } else { &f.path }))
            .collect();
        let _ = write!(line, ": {}", paths.join(", "));
        if c.fields.len() > MAX_FIELDS {
            let _ = write!(line, " and {} more", c.fields.len() - MAX_FIELDS);
        }
    }
    line.push('\n');
    line
}

/// The body of one object: its field changes and hunks, or its package's files.
fn object_body(c: &ObjectChange) -> String {
    let mut out = String::new();
    if c.action == Action::Removed {
        return out;
    }
    if let Some(pkg) = &c.package {
        if let Some(n) = &pkg.note {
            let _ = writeln!(out, "\n  *{}*", cell(n));
        }
        let mut listing = String::new();
        let mut patch = String::new();
        for f in &pkg.files {
            match &f.hunks {
                Some(h) if !h.is_empty() => {
                    // Escaped here: a line break in the name would be one in the patch.
                    let path = escape_controls(&f.path);
                    let (a, b) = match f.action {
                        Action::Added => ("/dev/null".to_string(), format!("b/{path}")),
                        Action::Removed => (format!("a/{path}"), "/dev/null".to_string()),
                        Action::Changed => (format!("a/{path}"), format!("b/{path}")),
                    };
                    let _ = writeln!(patch, "--- {a}\n+++ {b}");
                    patch.push_str(h);
                }
                _ => {
                    let size = f.new_size.or(f.old_size).unwrap_or(0);
                    let kind = if f.binary { ", binary" } else { "" };
                    let _ = writeln!(
                        listing,
                        "  - {} {} ({size} bytes{kind})",
                        f.action.as_str(),
                        code(&f.path)
                    );
                }
            }
        }
        if !listing.is_empty() {
            out.push('\n');
            out.push_str(&listing);
        }
        if !patch.is_empty() {
            out.push('\n');
            out.push_str(&indent(&fenced("diff", &patch)));
        }
        return out;
    }
    if c.action == Action::Changed && c.yaml.is_empty() && !c.fields.is_empty() {
        let lines: Vec<String> = c.fields.iter().map(field_line).collect();
        out.push('\n');
        out.push_str(&indent(&fenced("", &lines.join("\n"))));
    }
    if !c.yaml.is_empty() {
        out.push('\n');
        out.push_str(&indent(&fenced("diff", &c.yaml)));
    }
    out
}

/// Indents a block under a list item.
fn indent(block: &str) -> String {
    let mut s = String::new();
    for line in block.lines() {
        if line.is_empty() {
            s.push('\n');
        } else {
            let _ = writeln!(s, "  {line}");
        }
    }
    s
}

fn group_block(g: &Group, full: bool) -> String {
    let mut s = summary_line(g);
    for c in &g.objects {
        s.push_str(&object_line(c));
        if full {
            s.push_str(&object_body(c));
        }
    }
    s.push_str("\n</details>\n\n");
    s
}

/// Cuts `s` at a line boundary at or before `max` bytes.
fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let end = s[..end].rfind('\n').map(|i| i + 1).unwrap_or(end);
    s.truncate(end);
}

pub fn render(diff: &Diff, options: &Options) -> String {
    let mut out = head(diff);
    let groups = groups(diff);
    let Some(limit) = options.limit else {
        for g in &groups {
            out.push_str(&group_block(g, true));
        }
        return out;
    };
    let budget = limit.saturating_sub(NOTE_RESERVE);
    let mut head_cut = false;
    if out.len() > budget {
        cut(&mut out, budget);
        head_cut = true;
    }
    let (mut shortened, mut omitted) = (0, 0);
    for g in &groups {
        if head_cut {
            omitted += 1;
            continue;
        }
        let full = group_block(g, true);
        if out.len() + full.len() <= budget {
            out.push_str(&full);
            continue;
        }
        let compact = group_block(g, false);
        if out.len() + compact.len() <= budget {
            out.push_str(&compact);
            shortened += 1;
        } else {
            omitted += 1;
        }
    }
    if head_cut || shortened + omitted > 0 {
        let mut note = String::from("\n> [!NOTE]\n> This diff is shortened to fit a comment");
        let mut parts = Vec::new();
        if head_cut {
            parts.push("the summary is cut".to_string());
        }
        if shortened > 0 {
            parts.push(format!("{shortened} section(s) list their objects only"));
        }
        if omitted > 0 {
            parts.push(format!("{omitted} section(s) are left out"));
        }
        let _ = write!(note, " ({})", parts.join(", "));
        let link: String = options
            .full_diff
            .as_deref()
            .unwrap_or("in the `pitrix-diff` artifact of this workflow run")
            .chars()
            .take(400)
            .collect();
        let _ = writeln!(
            note,
            ". The full diff is {}; `pitrix compile --diff` prints it locally.",
            cell(&link)
        );
        out.push_str(&note);
    }
    cut(&mut out, limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_fences_survive_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert!(fenced("diff", "```\n").starts_with("````diff\n"));
    }

    #[test]
    fn cut_keeps_whole_lines() {
        let mut s = "abc\ndef\nghi".to_string();
        cut(&mut s, 9);
        assert_eq!(s, "abc\ndef\n");
    }
}
