//! `.helmignore` rules, evaluated the way Helm's `pkg/ignore` does.
//!
//! Helm's semantics, which this module reproduces on purpose (including the
//! surprising parts):
//!
//! * one rule per line; leading/trailing whitespace trimmed; blank lines and
//!   lines starting with `#` skipped; no inline comments;
//! * globs are Go's `path/filepath.Match`: `*` and `?` never match `/`,
//!   `[...]` classes (negated with `^`, not `!`), `\` escapes;
//! * a rule containing `**` is an error (Helm refuses it), as is a rule that
//!   Go's `filepath.Match` reports as malformed;
//! * a leading `!` negates, a trailing `/` restricts the rule to directories,
//!   a leading `/` anchors the rule at the chart root, a rule with a `/`
//!   elsewhere is matched against the whole relative path, and a rule without
//!   `/` is matched against the last path element only;
//! * rules are evaluated in order and the first decision wins. A negated rule
//!   that does **not** match the path ignores the path; one that matches lets
//!   evaluation continue with the next rule (Helm's `Rules.Ignore`);
//! * Helm appends the default rule `templates/.?*` after the file's rules.
//!
//! Paths given to [`Rules::ignore`] are chart-relative, `/`-separated, with no
//! trailing slash (`templates`, `templates/deploy.yaml`).

/// Go's `bufio.Scanner` default maximum token size: Helm fails on longer lines.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// The rule Helm adds after the user's rules (`Rules.AddDefaults`).
const DEFAULT_RULE: &str = "templates/.?*";

/// A parse failure: 1-based line number, the trimmed rule, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub(crate) line: usize,
    pub(crate) rule: String,
    pub(crate) detail: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Leading `/`: match the whole relative path.
    Anchored,
    /// Contains `/`: match the whole relative path.
    Structural,
    /// No `/`: match the last path element only.
    Basename,
}

#[derive(Debug, Clone)]
struct Pattern {
    glob: Vec<u8>,
    shape: Shape,
    negate: bool,
    must_dir: bool,
    scope: Scope,
}

/// What a glob can be matched as. Most `.helmignore` rules are a name (`.DS_Store`) or a
/// suffix (`*.swp`), and every file of every chart is matched against every rule: these two
/// are compared directly, with [`go_match`]'s result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// No metacharacter: the whole subject equals the glob.
    Literal,
    /// `*` then no metacharacter: the subject ends with the rest, and the star takes no `/`.
    StarSuffix,
    Glob,
}

impl Shape {
    fn of(glob: &[u8]) -> Shape {
        let meta = |b: &u8| matches!(b, b'*' | b'?' | b'[' | b'\\');
        match glob.split_first() {
            _ if !glob.iter().any(meta) => Shape::Literal,
            Some((b'*', rest)) if !rest.iter().any(meta) => Shape::StarSuffix,
            _ => Shape::Glob,
        }
    }
}

impl Pattern {
    fn matches(&self, path: &[u8]) -> bool {
        let subject = match self.scope {
            Scope::Anchored | Scope::Structural => path,
            Scope::Basename => go_base(path),
        };
        match self.shape {
            Shape::Literal => subject == self.glob,
            Shape::StarSuffix => {
                let suffix = self.glob.get(1..).unwrap_or_default();
                subject
                    .strip_suffix(suffix)
                    .is_some_and(|starred| !starred.contains(&b'/'))
            }
            // Helm logs and treats a pattern error at match time as "no match".
            Shape::Glob => go_match(&self.glob, subject).unwrap_or(false),
        }
    }
}

/// An ordered set of `.helmignore` rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    patterns: Vec<Pattern>,
}

impl Rules {
    /// Parses the contents of a `.helmignore` file.
    pub(crate) fn parse(text: &[u8]) -> Result<Rules, RuleError> {
        let mut rules = Rules::default();
        for (index, line) in scan_lines(text).enumerate() {
            let number = index + 1;
            if line.len() >= MAX_LINE_BYTES {
                return Err(RuleError {
                    line: number,
                    rule: String::from_utf8_lossy(line.get(..80).unwrap_or(line)).into_owned(),
                    detail: "line too long (Helm reads at most 64 KiB per line)",
                });
            }
            rules.add_rule(line).map_err(|detail| RuleError {
                line: number,
                rule: String::from_utf8_lossy(trim_go_space(line)).into_owned(),
                detail,
            })?;
        }
        Ok(rules)
    }

    /// Appends Helm's default rule (`templates/.?*`: dotfiles under `templates/`).
    pub(crate) fn add_defaults(&mut self) {
        // The default rule is well-formed, so this cannot fail.
        let _ = self.add_rule(DEFAULT_RULE.as_bytes());
    }

    /// Number of rules (comments and blank lines excluded).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether `path` (chart-relative, `/`-separated) should be left out.
    pub(crate) fn ignore(&self, path: &[u8], is_dir: bool) -> bool {
        // Helm never ignores the empty path or the chart root itself.
        if path.is_empty() || path == b"." || path == b"./" {
            return false;
        }
        for pattern in &self.patterns {
            if pattern.negate {
                if pattern.must_dir && !is_dir {
                    return true;
                }
                if !pattern.matches(path) {
                    return true;
                }
                continue;
            }
            if pattern.must_dir && !is_dir {
                continue;
            }
            if pattern.matches(path) {
                return true;
            }
        }
        false
    }

    fn add_rule(&mut self, line: &[u8]) -> Result<(), &'static str> {
        let rule = trim_go_space(line);
        if rule.is_empty() || rule.starts_with(b"#") {
            return Ok(());
        }
        if rule.windows(2).any(|w| w == b"**") {
            return Err("double-star (**) syntax is not supported by Helm");
        }
        // Helm validates the raw rule (including any `!` and `/`) this way.
        if go_match(rule, b"abc").is_err() {
            return Err("syntax error in pattern");
        }
        let mut glob = rule;
        let negate = match glob.strip_prefix(b"!") {
            Some(rest) => {
                glob = rest;
                true
            }
            None => false,
        };
        let must_dir = match glob.strip_suffix(b"/") {
            Some(rest) => {
                glob = rest;
                true
            }
            None => false,
        };
        let scope = if let Some(rest) = glob.strip_prefix(b"/") {
            glob = rest;
            Scope::Anchored
        } else if glob.contains(&b'/') {
            Scope::Structural
        } else {
            Scope::Basename
        };
        self.patterns.push(Pattern {
            shape: Shape::of(glob),
            glob: glob.to_vec(),
            negate,
            must_dir,
            scope,
        });
        Ok(())
    }
}

/// Splits like Go's `bufio.ScanLines`: on `\n`, dropping one trailing `\r`;
/// a final line without newline is kept, an empty final segment is not.
fn scan_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut lines = body.split(|&b| b == b'\n');
    if text.is_empty() {
        // `split` on an empty slice yields one empty item; Go yields none.
        let _ = lines.next();
    }
    lines.map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// Go's `strings.TrimSpace` (Unicode white space), on bytes.
fn trim_go_space(line: &[u8]) -> &[u8] {
    match std::str::from_utf8(line) {
        Ok(text) => text.trim().as_bytes(),
        Err(_) => line.trim_ascii(),
    }
}

/// Go's `path/filepath.Base` for `/`-separated paths.
fn go_base(path: &[u8]) -> &[u8] {
    if path.is_empty() {
        return b".";
    }
    let mut end = path.len();
    while end > 0 && path.get(end - 1) == Some(&b'/') {
        end -= 1;
    }
    if end == 0 {
        return b"/";
    }
    let trimmed = path.get(..end).unwrap_or(path);
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(slash) => trimmed.get(slash + 1..).unwrap_or(trimmed),
        None => trimmed,
    }
}

/// For the fuzzers (`tests/fuzz_harness`): Go's `filepath.Match` as [`go_match`] ports it, and
/// what a `.helmignore` text decides.
#[doc(hidden)]
pub mod fuzzing {
    /// [`super::go_match`]; `None` for a malformed pattern.
    pub fn go_match(pattern: &[u8], name: &[u8]) -> Option<bool> {
        super::go_match(pattern, name).ok()
    }

    /// Parses `text` (Helm's default rule appended) and decides each `(path, is_dir)`; also,
    /// for every rule and path (rule-major), the rule's match as made (literal and `*suffix`
    /// rules directly) and as [`super::go_match`] makes it. `Err`: the parse error.
    #[allow(clippy::type_complexity)]
    pub fn decide(
        text: &[u8],
        paths: &[(&[u8], bool)],
    ) -> Result<(Vec<bool>, Vec<(bool, bool)>), super::RuleError> {
        let mut rules = super::Rules::parse(text)?;
        rules.add_defaults();
        let ignored = paths.iter().map(|(p, d)| rules.ignore(p, *d)).collect();
        let mut matches = Vec::new();
        for pattern in &rules.patterns {
            for (path, _) in paths {
                let subject = match pattern.scope {
                    super::Scope::Basename => super::go_base(path),
                    _ => path,
                };
                let reference = super::go_match(&pattern.glob, subject).unwrap_or(false);
                matches.push((pattern.matches(path), reference));
            }
        }
        Ok((ignored, matches))
    }
}

/// Malformed glob (Go's `filepath.ErrBadPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPattern;

/// Go's `path/filepath.Match` on Unix: reports whether `name` matches the
/// shell pattern `pattern` as a whole. Errors exactly where Go errors.
pub(crate) fn go_match(pattern: &[u8], name: &[u8]) -> Result<bool, BadPattern> {
    let mut pattern = pattern;
    let mut name = name;
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest of the name unless it has a `/`.
            return Ok(!name.contains(&b'/'));
        }
        // Try to match the chunk at the current position.
        let attempt = match_chunk(chunk, name);
        if let Ok(Some(after)) = attempt
            && (after.is_empty() || !pattern.is_empty())
        {
            name = after;
            continue;
        }
        attempt?;
        if star {
            // Let the star swallow 1.. bytes, but never a `/`.
            let mut skip = 0;
            while skip < name.len() && name.get(skip) != Some(&b'/') {
                let tail = name.get(skip + 1..).unwrap_or_default();
                if let Some(after) = match_chunk(chunk, tail)? {
                    // The last chunk must consume the whole name.
                    if pattern.is_empty() && !after.is_empty() {
                        skip += 1;
                        continue;
                    }
                    name = after;
                    continue 'chunks;
                }
                skip += 1;
            }
        }
        // No match; still report a malformed remainder of the pattern.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the next chunk: an optional run of stars, then everything up to
/// the next star that is not inside a character class.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut pattern = pattern;
    let mut star = false;
    while let Some((&b'*', rest)) = pattern.split_first() {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut end = 0;
    while let Some(&byte) = pattern.get(end) {
        match byte {
            // An escape also covers the next byte (if any).
            b'\\' if end + 1 < pattern.len() => end += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        end += 1;
    }
    let (chunk, rest) = pattern.split_at(end.min(pattern.len()));
    (star, chunk, rest)
}

/// Matches a star-free chunk against the start of `s`. `Ok(Some(rest))` on a
/// match, `Ok(None)` on a mismatch. Like Go, keeps parsing the chunk after a
/// mismatch so that malformed classes are always reported.
fn match_chunk<'s>(chunk: &[u8], s: &'s [u8]) -> Result<Option<&'s [u8]>, BadPattern> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some((&first, after_first)) = chunk.split_first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match first {
            b'[' => {
                let mut rune = 0u32;
                if !failed {
                    let (decoded, width) = decode_rune(s);
                    rune = decoded;
                    s = s.get(width..).unwrap_or_default();
                }
                chunk = after_first;
                let mut negated = false;
                if let Some((&b'^', rest)) = chunk.split_first() {
                    negated = true;
                    chunk = rest;
                }
                let mut matched = false;
                let mut ranges = 0usize;
                loop {
                    if ranges > 0
                        && let Some((&b']', rest)) = chunk.split_first()
                    {
                        chunk = rest;
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if let Some((&b'-', rest)) = chunk.split_first() {
                        let (upper, rest) = get_esc(rest)?;
                        hi = upper;
                        chunk = rest;
                    }
                    if lo <= rune && rune <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s.first() == Some(&b'/') {
                        failed = true;
                    }
                    let (_, width) = decode_rune(s);
                    s = s.get(width..).unwrap_or_default();
                }
                chunk = after_first;
            }
            b'\\' => {
                let Some((&literal, rest)) = after_first.split_first() else {
                    return Err(BadPattern);
                };
                if !failed {
                    if s.first() != Some(&literal) {
                        failed = true;
                    }
                    s = s.get(1..).unwrap_or_default();
                }
                chunk = rest;
            }
            literal => {
                if !failed {
                    if s.first() != Some(&literal) {
                        failed = true;
                    }
                    s = s.get(1..).unwrap_or_default();
                }
                chunk = after_first;
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// Reads one possibly escaped character of a character class.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = chunk.get(1..).unwrap_or_default();
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        Some(_) => {}
    }
    let (rune, width) = decode_rune(chunk);
    if rune == REPLACEMENT && width == 1 {
        return Err(BadPattern);
    }
    let rest = chunk.get(width..).unwrap_or_default();
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((rune, rest))
}

const REPLACEMENT: u32 = 0xFFFD;

/// Go's `utf8.DecodeRune`: `(U+FFFD, 1)` for an invalid byte, `(U+FFFD, 0)`
/// for an empty input.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let Some(&lead) = s.first() else {
        return (REPLACEMENT, 0);
    };
    let width = match lead {
        0x00..=0x7F => return (u32::from(lead), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (REPLACEMENT, 1),
    };
    match s.get(..width).map(std::str::from_utf8) {
        Some(Ok(text)) => match text.chars().next() {
            Some(c) => (u32::from(c), width),
            None => (REPLACEMENT, 1),
        },
        _ => (REPLACEMENT, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> Result<bool, BadPattern> {
        go_match(pattern.as_bytes(), name.as_bytes())
    }

    #[test]
    fn literal_and_suffix_shapes_match_as_go_match_does() {
        let globs = [
            "abc",
            ".DS_Store",
            "*.swp",
            "*~",
            "*",
            "*/x",
            "a/*.tgz",
            "*a/b",
            "a*",
            "[a]",
            "a\\*",
            "*.",
            "templates/notes.txt",
            "",
        ];
        let subjects = [
            "abc",
            ".DS_Store",
            "x.swp",
            ".swp",
            "a/x.swp",
            "~",
            "a~",
            "a/b~",
            "",
            "a/x",
            "x",
            "a/b",
            "ba/b",
            "c/a/b",
            "a/x.tgz",
            "a/b/x.tgz",
            "a",
            "a*",
            "templates/notes.txt",
            "a.",
            "a/.",
        ];
        for glob in globs {
            let pattern = Pattern {
                glob: glob.as_bytes().to_vec(),
                shape: Shape::of(glob.as_bytes()),
                negate: false,
                must_dir: false,
                scope: Scope::Structural,
            };
            for subject in subjects {
                assert_eq!(
                    pattern.matches(subject.as_bytes()),
                    m(glob, subject).unwrap_or(false),
                    "{glob:?} against {subject:?} ({:?})",
                    pattern.shape
                );
            }
        }
        assert_eq!(Shape::of(b".DS_Store"), Shape::Literal);
        assert_eq!(Shape::of(b"*.swp"), Shape::StarSuffix);
        assert_eq!(Shape::of(b"*.sw?"), Shape::Glob);
        assert_eq!(Shape::of(b"a\\*"), Shape::Glob);
    }

    #[test]
    fn go_match_table() {
        // Cases from Go's path/filepath match_test.go semantics.
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[x-]", "-", Err(BadPattern)),
            ("[x-]", "z", Err(BadPattern)),
            ("[-x]", "x", Err(BadPattern)),
            ("[-x]", "-", Err(BadPattern)),
            ("[-x]", "a", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("a/b[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(m(pattern, name), *want, "Match({pattern:?}, {name:?})");
        }
    }

    fn rules(text: &str) -> Rules {
        Rules::parse(text.as_bytes()).expect("rules parse")
    }

    #[test]
    fn helm_ignore_table() {
        // Helm's pkg/ignore rules_test.go TestIgnore cases, with the fixture's
        // directory-ness spelled out.
        let cases: &[(&str, &str, bool, bool)] = &[
            ("helm.txt", "helm.txt", false, true),
            ("helm.*", "helm.txt", false, true),
            ("helm.*", "rudder.txt", false, false),
            ("*.txt", "tiller.txt", false, true),
            ("*.txt", "cargo/a.txt", false, true),
            ("cargo/*.txt", "cargo/a.txt", false, true),
            ("cargo/*.*", "cargo/a.txt", false, true),
            ("cargo/*.txt", "mast/a.txt", false, false),
            ("ru[c-e]?er.txt", "rudder.txt", false, true),
            ("templates/.?*", "templates/.dotfile", false, true),
            (".*", ".", true, false),
            (".*", "./", true, false),
            (".*", ".joonix", false, true),
            (".*", "helm.txt", false, false),
            (".*", "", false, false),
            ("cargo/", "cargo", true, true),
            ("cargo/", "mast", true, false),
            ("helm.txt/", "helm.txt", false, false),
            ("!helm.txt", "helm.txt", false, false),
            ("!helm.txt", "tiller.txt", false, true),
            ("!*.txt", "cargo", true, true),
            ("!cargo/", "mast", true, true),
            ("/a.txt", "a.txt", false, true),
            ("/a.txt", "cargo/a.txt", false, false),
            ("/cargo/a.txt", "cargo/a.txt", false, true),
        ];
        for (pattern, name, is_dir, want) in cases {
            let got = rules(pattern).ignore(name.as_bytes(), *is_dir);
            assert_eq!(got, *want, "pattern {pattern:?} on {name:?}");
        }
    }

    #[test]
    fn parse_skips_comments_and_blanks() {
        let r = rules("#ignore\n\n\t#ignore\nfoo\nbar/*\r\nbaz/bar/foo.txt\n\none/more");
        assert_eq!(r.len(), 4);
        assert!(r.ignore(b"bar/x", false));
        assert!(r.ignore(b"one/more", false));
        assert!(!r.ignore(b"one", true));
    }

    #[test]
    fn parse_rejects_double_star_and_bad_globs() {
        let err = Rules::parse(b"ok\nfoo/**/bar\n").expect_err("** must fail");
        assert_eq!(err.line, 2);
        assert_eq!(err.rule, "foo/**/bar");
        let err = Rules::parse(b"[z-").expect_err("bad class must fail");
        assert_eq!(err.line, 1);
        assert!(Rules::parse(&vec![b'a'; MAX_LINE_BYTES]).is_err());
    }

    #[test]
    fn first_decision_wins_and_negation_is_helms() {
        // Helm's documented way to keep only two files.
        let r = rules("!Chart.yaml\n!values.yaml\n*\n");
        // A negated rule that does not match ignores the path outright...
        assert!(r.ignore(b"values.yaml", false));
        assert!(r.ignore(b"templates", true));
        // ...and one that matches hands over to the next rules.
        assert!(r.ignore(b"Chart.yaml", false));
        // Plain rules: first match ignores; otherwise kept.
        let r = rules("*.bak\nsecret/\n/top.txt\n");
        assert!(r.ignore(b"a/b/c.bak", false));
        assert!(r.ignore(b"x/secret", true));
        assert!(!r.ignore(b"x/secret", false));
        assert!(r.ignore(b"top.txt", false));
        assert!(!r.ignore(b"sub/top.txt", false));
    }

    #[test]
    fn defaults_hide_template_dotfiles() {
        let mut r = Rules::default();
        r.add_defaults();
        assert_eq!(r.len(), 1);
        assert!(r.ignore(b"templates/.swp", false));
        assert!(!r.ignore(b"templates/a.yaml", false));
        assert!(!r.ignore(b"templates/sub/.x", false));
        assert!(!r.ignore(b".hidden", false));
    }

    #[test]
    fn go_base_matches_go() {
        assert_eq!(go_base(b""), b".");
        assert_eq!(go_base(b"///"), b"/");
        assert_eq!(go_base(b"a/b/"), b"b");
        assert_eq!(go_base(b"a"), b"a");
    }
}
