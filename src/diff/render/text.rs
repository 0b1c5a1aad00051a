//! The diff for a terminal: a summary, errors, release lines, review states, then every object
//! (removals first) with its changed fields and hunks. ANSI colours when asked.

use std::fmt::Write as _;

use super::{
    Action, Diff, ObjectChange, counts, escape_controls as esc, field_line, release_values,
    release_versions, side_label, sign, title,
};

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn action(&self, a: Action, s: &str) -> String {
        let code = match a {
            Action::Removed => "31",
            Action::Changed => "33",
            Action::Added => "32",
        };
        self.wrap(code, s)
    }
    /// One line of a unified diff.
    fn hunk_line(&self, line: &str) -> String {
        match line.as_bytes().first() {
            Some(b'+') => self.wrap("32", line),
            Some(b'-') => self.wrap("31", line),
            Some(b'@') => self.wrap("36", line),
            _ => line.to_string(),
        }
    }
}

fn indented(out: &mut String, paint: &Paint, text: &str, indent: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{indent}{}", paint.hunk_line(&esc(line)));
    }
}

pub fn render(diff: &Diff, color: bool) -> String {
    let p = Paint { on: color };
    let mut out = String::new();
    let s = &diff.summary;
    let _ = writeln!(
        out,
        "{} `{}`: {} → {}",
        p.bold("pitrix diff"),
        diff.catalog,
        side_label(&diff.base, "base"),
        side_label(&diff.head, "head"),
    );
    let mut line = counts(s.added, s.changed, s.removed);
    if s.states > 0 {
        let _ = write!(line, ", {} review state(s) changed", s.states);
    }
    if s.errors > 0 {
        let _ = write!(line, ", {} error(s)", s.errors);
    }
    let _ = writeln!(out, "  {line}");
    if !diff.has_changes() && diff.errors.is_empty() {
        let _ = writeln!(out, "\nno changes");
        return out;
    }

    for e in &diff.errors {
        let _ = writeln!(
            out,
            "\n{}: {}",
            p.wrap("1;31", &format!("error[{}]", e.code)),
            esc(&e.message)
        );
        if let Some(f) = &e.file {
            let _ = writeln!(out, "  --> {}", esc(f));
        }
        if let Some(h) = &e.hint {
            let _ = writeln!(out, "  = hint: {}", esc(h));
        }
    }

    if !diff.releases.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("releases:"));
        for r in &diff.releases {
            let _ = writeln!(
                out,
                "  {} {}  {}/{}  {} {}  {}",
                p.action(r.action, &sign(r.action).to_string()),
                r.name,
                r.cluster,
                r.namespace,
                r.app,
                release_versions(r),
                release_values(r)
            );
        }
    }

    if !diff.states.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("review states:"));
        for st in &diff.states {
            let _ = writeln!(
                out,
                "  {} {}: {} → {}{}",
                st.kind,
                st.name,
                st.from.as_deref().unwrap_or("(none)"),
                st.to.as_deref().unwrap_or("(none)"),
                st.message
                    .as_deref()
                    .map(|m| format!(" ({})", esc(m)))
                    .unwrap_or_default()
            );
        }
    }

    for c in &diff.objects {
        object(&mut out, &p, c);
    }
    out
}

fn object(out: &mut String, p: &Paint, c: &ObjectChange) {
    let head = format!("{} {}", sign(c.action), title(c));
    let suffix = match c.action {
        Action::Removed => " (removed)",
        Action::Added => " (added)",
        Action::Changed => "",
    };
    let _ = writeln!(out, "\n{}{}", p.action(c.action, &p.bold(&head)), suffix);
    if c.action == Action::Removed {
        return;
    }
    if c.package.is_none() || c.action == Action::Changed {
        for f in &c.fields {
            let _ = writeln!(out, "    {}", esc(&field_line(f)));
        }
    }
    if !c.yaml.is_empty() {
        indented(out, p, &c.yaml, "    ");
    }
    if let Some(pkg) = &c.package {
        let mut line = format!("{} package, version {}", pkg.kind, pkg.version);
        if let Some(w) = &pkg.compared_with {
            let _ = write!(line, ", compared with {w}");
        }
        let _ = write!(line, ": {} file(s)", pkg.files.len());
        let _ = writeln!(out, "    {line}");
        if let Some(n) = &pkg.note {
            let _ = writeln!(out, "    note: {}", esc(n));
        }
        for f in super::review_order(&pkg.files) {
            let size = match (f.old_size, f.new_size) {
                (Some(a), Some(b)) => format!("{a} → {b} bytes"),
                (None, Some(b)) => format!("{b} bytes"),
                (Some(a), None) => format!("{a} bytes"),
                (None, None) => String::new(),
            };
            let kind = if f.binary { ", binary" } else { "" };
            let _ = writeln!(
                out,
                "    {} {} ({size}{kind})",
                p.action(f.action, &sign(f.action).to_string()),
                esc(&f.path)
            );
            if let Some(h) = &f.hunks {
                indented(out, p, h, "      ");
            }
        }
    }
}
