//! Unified diffs of text (the `similar` crate): hunks with three lines of context, no header.

use std::time::Duration;

use similar::{Algorithm, TextDiff};

/// The hunks (`@@ -a,b +c,d @@` and the lines) turning `old` into `new`; empty when equal.
pub fn unified(old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        // Huge, wholly different files get a coarser diff rather than a long wait.
        .timeout(Duration::from_secs(5))
        .diff_lines(old, new);
    let mut text = diff
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(true)
        .to_string();
    if !text.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_have_context_and_markers() {
        let old = "a\nb\nc\nd\n";
        let new = "a\nb\nC\nd\n";
        assert_eq!(unified(old, new), "@@ -1,4 +1,4 @@\n a\n b\n-c\n+C\n d\n");
        assert_eq!(unified(old, old), "");
        assert_eq!(unified("", "x\n"), "@@ -0,0 +1 @@\n+x\n");
    }
}
