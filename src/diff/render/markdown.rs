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

/// How much of a group's diffs a comment shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Every hunk.
    Full,
    /// Every object and every changed file with its sizes, and the hunks, in review order
    /// ([`super::review_order`]: templates before docs), while they fit in this many bytes.
    Listed(usize),
    /// The object lines only.
    Objects,
}

/// The line that ends a hunk cut to fit a comment.
const CUT_LINE: &str = "@@ … cut to fit the comment: the full diff has the rest @@\n";
/// Room below which a hunk too long for it is left out rather than cut.
const MIN_PART: usize = 512;

/// What a piece of a patch adds to the comment: its escaped text, indented under its item.
fn shown_cost(piece: &str) -> usize {
    let text = escape_lines(piece);
    text.len() + 2 * text.lines().filter(|l| !l.is_empty()).count()
}

/// A unified diff's hunks, each from its `@@` line.
fn split_hunks(hunks: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in hunks.split_inclusive('\n') {
        if line.starts_with("@@") && at > start {
            out.push(&hunks[start..at]);
            start = at;
        }
        at += line.len();
    }
    if at > start {
        out.push(&hunks[start..at]);
    }
    out
}

fn sizes(f: &super::super::FileChange) -> String {
    let kind = if f.binary { ", binary" } else { "" };
    match (f.old_size, f.new_size) {
        (Some(a), Some(b)) if a != b => format!("{a} → {b} bytes{kind}"),
        (_, Some(b)) => format!("{b} bytes{kind}"),
        (Some(a), None) => format!("{a} bytes{kind}"),
        (None, None) => format!("0 bytes{kind}"),
    }
}

/// The `--- a/…`/`+++ b/…` header of a file's patch.
fn patch_header(f: &super::super::FileChange) -> String {
    // Escaped here: a line break in the name would be one in the patch.
    let path = escape_controls(&f.path);
    let (a, b) = match f.action {
        Action::Added => ("/dev/null".to_string(), format!("b/{path}")),
        Action::Removed => (format!("a/{path}"), "/dev/null".to_string()),
        Action::Changed => (format!("a/{path}"), format!("b/{path}")),
    };
    format!("--- {a}\n+++ {b}\n")
}

/// The body of one object: its field changes and hunks, or its package's files; at
/// [`Depth::Listed`], what fits of them in `budget` (what is shown is taken from it).
fn object_body(c: &ObjectChange, depth: Depth, budget: &mut usize) -> String {
    let mut out = String::new();
    if c.action == Action::Removed || depth == Depth::Objects {
        return out;
    }
    let full = depth == Depth::Full;
    if let Some(pkg) = &c.package {
        if let Some(n) = &pkg.note {
            let _ = writeln!(out, "\n  *{}*", cell(n));
        }
        let mut listing = String::new();
        let mut patch = String::new();
        for f in super::review_order(&pkg.files) {
            let hunks = f.hunks.as_deref().filter(|h| !h.is_empty());
            if full {
                match hunks {
                    Some(h) => {
                        patch.push_str(&patch_header(f));
                        patch.push_str(h);
                    }
                    None => {
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
                continue;
            }
            // Shortened: every file listed, its first hunks while they fit.
            let mut shown = String::new();
            let pieces = hunks.map(split_hunks).unwrap_or_default();
            let mut taken = 0;
            let mut cut_at = None;
            for piece in &pieces {
                let head = if taken == 0 {
                    patch_header(f)
                } else {
                    String::new()
                };
                let cost = shown_cost(&head) + shown_cost(piece);
                if cost > *budget {
                    // A hunk too long for the room left shows its first lines, if the room
                    // is worth it.
                    let mut part = String::new();
                    let mut spent = shown_cost(&head) + shown_cost(CUT_LINE);
                    for line in piece.split_inclusive('\n') {
                        if spent + shown_cost(line) > *budget {
                            break;
                        }
                        spent += shown_cost(line);
                        part.push_str(line);
                    }
                    if *budget >= MIN_PART && part.lines().count() > 1 {
                        *budget -= spent;
                        shown.push_str(&head);
                        shown.push_str(&part);
                        shown.push_str(CUT_LINE);
                        cut_at = Some(taken + 1);
                    }
                    break;
                }
                *budget -= cost;
                shown.push_str(&head);
                shown.push_str(piece);
                taken += 1;
            }
            patch.push_str(&shown);
            let what = match (pieces.len(), taken, cut_at) {
                (0, _, _) => String::new(),
                (n, t, None) if t == n => String::new(),
                (_, 0, None) => ", diff left out".to_string(),
                (n, t, None) => format!(", first {t} of {n} hunks shown"),
                (n, _, Some(h)) => format!(", diff cut in hunk {h} of {n}"),
            };
            let _ = writeln!(
                listing,
                "  - {} {} ({}){what}",
                f.action.as_str(),
                code(&f.path),
                sizes(f)
            );
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
    let mut block = |lang: &str, text: &str, out: &mut String| {
        let cost = shown_cost(text);
        if full || cost <= *budget {
            if !full {
                *budget -= cost;
            }
            out.push('\n');
            out.push_str(&indent(&fenced(lang, text)));
        } else {
            let _ = writeln!(out, "\n  *diff left out ({} lines)*", text.lines().count());
        }
    };
    if c.action == Action::Changed && c.yaml.is_empty() && !c.fields.is_empty() {
        let lines: Vec<String> = c.fields.iter().map(field_line).collect();
        block("", &lines.join("\n"), &mut out);
    }
    if !c.yaml.is_empty() {
        block("diff", &c.yaml, &mut out);
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

fn group_block(g: &Group, depth: Depth) -> String {
    let mut s = summary_line(g);
    let mut budget = match depth {
        Depth::Listed(b) => b,
        _ => 0,
    };
    // Objects' own (short) diffs take their room before the packages' files do.
    let mut bodies: Vec<String> = vec![String::new(); g.objects.len()];
    for pass in [false, true] {
        for (c, body) in g.objects.iter().zip(bodies.iter_mut()) {
            if c.package.is_some() == pass {
                *body = object_body(c, depth, &mut budget);
            }
        }
    }
    for (c, body) in g.objects.iter().zip(&bodies) {
        s.push_str(&object_line(c));
        s.push_str(body);
    }
    s.push_str("\n</details>\n\n");
    s
}

/// A group's block shortened to at most `max` bytes, its listing kept: the hunks that fit.
fn listed_block(g: &Group, listing: usize, max: usize) -> String {
    let mut extra = max.saturating_sub(listing);
    for _ in 0..6 {
        let block = group_block(g, Depth::Listed(extra));
        if block.len() <= max {
            return block;
        }
        // Fences and notes cost more than the hunks counted: ask for less.
        extra = extra.saturating_sub(block.len() - max + 64);
    }
    group_block(g, Depth::Listed(0))
}

/// Shares `spare` bytes among needs, the smallest first, none getting more than its need nor
/// (while others still need) more than an even share.
fn share(needs: &[usize], spare: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..needs.len()).collect();
    order.sort_by_key(|&i| needs[i]);
    let mut out = vec![0; needs.len()];
    let mut left = spare;
    for (k, &i) in order.iter().enumerate() {
        let even = left / (needs.len() - k);
        out[i] = needs[i].min(even);
        left -= out[i];
    }
    out
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
            out.push_str(&group_block(g, Depth::Full));
        }
        return out;
    };
    let budget = limit.saturating_sub(NOTE_RESERVE);
    let mut head_cut = false;
    if out.len() > budget {
        cut(&mut out, budget);
        head_cut = true;
    }
    let (mut listed, mut shortened, mut omitted) = (0, 0, 0);
    if head_cut {
        omitted = groups.len();
    } else {
        let avail = budget - out.len();
        let full: Vec<String> = groups.iter().map(|g| group_block(g, Depth::Full)).collect();
        let listings: Vec<String> = groups
            .iter()
            .map(|g| group_block(g, Depth::Listed(0)))
            .collect();
        let sum = |v: &[String]| v.iter().map(String::len).sum::<usize>();
        if sum(&full) <= avail {
            full.iter().for_each(|b| out.push_str(b));
        } else if sum(&listings) <= avail {
            // Every group keeps its files; the room left goes to hunks, shared evenly.
            let needs: Vec<usize> = full
                .iter()
                .zip(&listings)
                .map(|(f, l)| f.len().saturating_sub(l.len()))
                .collect();
            let given = share(&needs, avail - sum(&listings));
            for (i, g) in groups.iter().enumerate() {
                if full[i].len() <= listings[i].len() + given[i] {
                    out.push_str(&full[i]);
                } else {
                    let max = listings[i].len() + given[i];
                    out.push_str(&listed_block(g, listings[i].len(), max));
                    listed += 1;
                }
            }
        } else {
            // Not even every file list fits: in order, a group's files while the object lines
            // of the groups after it still fit, else its object lines, else nothing.
            let objects: Vec<String> = groups
                .iter()
                .map(|g| group_block(g, Depth::Objects))
                .collect();
            for i in 0..groups.len() {
                let rest: usize = objects[i + 1..].iter().map(String::len).sum();
                if out.len() + listings[i].len() + rest <= budget {
                    out.push_str(&listings[i]);
                    listed += 1;
                } else if out.len() + objects[i].len() <= budget {
                    out.push_str(&objects[i]);
                    shortened += 1;
                } else {
                    omitted += 1;
                }
            }
        }
    }
    if head_cut || listed + shortened + omitted > 0 {
        let mut note = String::from("\n> [!NOTE]\n> This diff is shortened to fit a comment");
        let mut parts = Vec::new();
        if head_cut {
            parts.push("the summary is cut".to_string());
        }
        if listed > 0 {
            parts.push(format!(
                "{listed} section(s) list every changed file but show only the diffs that fit, templates first"
            ));
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

    use crate::diff::{FileChange, PackageDiff, Summary};

    fn file(path: &str, lines: usize, tag: &str) -> FileChange {
        let mut h = String::new();
        // Hunks of 10 changed lines each.
        for k in 0..lines / 10 {
            let _ = writeln!(h, "@@ -{0},10 +{0},10 @@", k * 10 + 1);
            for n in 0..10 {
                let _ = writeln!(h, "-{tag} line {} before", k * 10 + n);
                let _ = writeln!(h, "+{tag} line {} after", k * 10 + n);
            }
        }
        FileChange {
            path: path.into(),
            action: Action::Changed,
            binary: false,
            old_size: Some(30 * lines as u64),
            new_size: Some(31 * lines as u64),
            hunks: Some(h),
        }
    }

    fn package(app: &str, files: Vec<FileChange>) -> ObjectChange {
        ObjectChange {
            action: Action::Added,
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("extension-openpitrix".into()),
            name: format!("{app}-12.0.0"),
            cluster: None,
            app: Some(app.into()),
            fields: Vec::new(),
            yaml: String::new(),
            package: Some(PackageDiff {
                kind: "helm".into(),
                version: "12.0.0".into(),
                compared_with: Some("10.0.0".into()),
                old_digest: None,
                new_digest: None,
                old_size: None,
                new_size: Some(1),
                files,
                note: None,
            }),
        }
    }

    fn diff(objects: Vec<ObjectChange>) -> Diff {
        Diff {
            version: 1,
            catalog: "store".into(),
            base: None,
            head: None,
            summary: Summary {
                added: objects.len(),
                ..Default::default()
            },
            errors: Vec::new(),
            releases: Vec::new(),
            states: Vec::new(),
            objects,
        }
    }

    /// grafana 10 → 12: a long README diff, many template changes. The comment keeps every
    /// file with its sizes and fills the budget with hunks, templates first.
    #[test]
    fn a_shortened_comment_keeps_every_file_and_the_first_hunks_templates_first() {
        let mut files = vec![
            file("README.md", 20_000, "readme"),
            file("Chart.yaml", 10, "chart"),
            file("values.yaml", 200, "values"),
        ];
        for t in 0..40 {
            files.push(file(
                &format!("templates/t{t:02}.yaml"),
                100,
                &format!("tpl{t:02}"),
            ));
        }
        let d = diff(vec![package("grafana", files)]);
        let md = render(&d, &Options::default());
        assert!(md.len() <= COMMENT_LIMIT, "{}", md.len());
        assert!(
            md.len() > COMMENT_LIMIT * 3 / 4,
            "the budget is used: {}",
            md.len()
        );
        // Every file is listed with its sizes, in review order.
        let at = |needle: &str| md.find(needle).unwrap_or_else(|| panic!("{needle}:\n{md}"));
        let chart = at("  - changed `Chart.yaml` (300 → 310 bytes)\n");
        let values = at("  - changed `values.yaml` (6000 → 6200 bytes)");
        let t39 = at("  - changed `templates/t39.yaml` (3000 → 3100 bytes)");
        let readme = at("  - changed `README.md` (600000 → 620000 bytes), ");
        assert!(chart < values && values < t39 && t39 < readme);
        // Hunks: Chart.yaml's, values' and the first templates' whole, the README's not all.
        assert!(md.contains("+chart line 9 after\n"));
        assert!(md.contains("+values line 199 after\n"));
        assert!(md.contains("+tpl00 line 99 after\n"));
        assert!(!md.contains("+readme line 19999 after"));
        assert!(
            md.find("--- a/templates/t00.yaml").unwrap() > md.find("--- a/values.yaml").unwrap()
        );
        assert!(md.contains("list every changed file but show only the diffs that fit"));
        assert_eq!(md.matches("```").count() % 2, 0, "fences are balanced");
        assert_eq!(
            md.matches("<details>").count(),
            md.matches("</details>").count()
        );
        // Several large apps share the room: each keeps its file list and some hunks.
        let apps: Vec<ObjectChange> = (0..5)
            .map(|a| {
                let files = (0..20)
                    .map(|t| {
                        file(
                            &format!("templates/t{t:02}.yaml"),
                            200,
                            &format!("app{a}t{t}"),
                        )
                    })
                    .collect();
                package(&format!("app{a}"), files)
            })
            .collect();
        let md = render(&diff(apps), &Options::default());
        assert!(md.len() <= COMMENT_LIMIT, "{}", md.len());
        for a in 0..5 {
            assert!(md.contains(&format!("<b>app app{a}</b>")), "app{a}");
            assert!(
                md.contains(&format!("+app{a}t0 line 0 after\n")),
                "app{a} has hunks"
            );
            assert!(md.contains("--- a/templates/t00.yaml"));
        }
        assert_eq!(md.matches("  - changed `templates/t19.yaml`").count(), 5);
    }

    #[test]
    fn hunks_split_at_their_headers() {
        let h = "@@ -1 +1 @@\n-a\n+b\n@@ -9 +9 @@\n-c\n\\ No newline at end of file\n+d\n";
        assert_eq!(
            split_hunks(h),
            [
                "@@ -1 +1 @@\n-a\n+b\n",
                "@@ -9 +9 @@\n-c\n\\ No newline at end of file\n+d\n"
            ]
        );
        assert_eq!(share(&[10, 1000, 50], 300), [10, 240, 50]);
        assert_eq!(share(&[10, 20], 1000), [10, 20]);
    }

    #[test]
    fn cut_keeps_whole_lines() {
        let mut s = "abc\ndef\nghi".to_string();
        cut(&mut s, 9);
        assert_eq!(s, "abc\ndef\n");
    }
}
