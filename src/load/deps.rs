//! A chart's dependencies, checked the way Helm checks them before it installs: every
//! dependency Chart.yaml names (apiVersion v2 `dependencies`, apiVersion v1
//! `requirements.yaml`) must be in `charts/`, as a directory or a `.tgz`, under its chart
//! name (Helm's `action.CheckDependencies`: `found in Chart.yaml, but missing in charts/
//! directory: …`). A chart there whose version does not satisfy the constraint is what
//! `helm dependency list` calls `wrong version`: Helm still installs it, so it is a warning.
//!
//! Version constraints follow Masterminds semver (Helm's library): `||` alternatives, ANDed
//! comparators separated by spaces or commas, `1.2 - 1.4` ranges, `~`, `^`, `x`/`*`
//! wildcards, `!=`, an optional leading `v`, and a bare version meaning exactly it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::chart::{self, ChartFiles, Limits};
use crate::diagnostics::{Code, Diagnostic, Diagnostics, Pos};
use crate::yaml::Spanned;

#[derive(Debug, Default, Deserialize)]
struct DepsFile {
    #[serde(default)]
    dependencies: Option<Vec<Dep>>,
}

#[derive(Debug, Deserialize)]
struct Dep {
    name: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct SubMeta {
    name: Option<String>,
    version: Option<String>,
}

/// A Masterminds semver constraint: alternatives of ANDed comparators.
#[derive(Debug, Clone)]
pub struct Constraint(Vec<Vec<Comparator>>);

#[derive(Debug, Clone)]
enum Comparator {
    Req(semver::VersionReq),
    NotEq(semver::Version),
}

/// A version as Masterminds reads it: an optional leading `v`, missing minor/patch as 0.
pub fn parse_version(text: &str) -> Option<semver::Version> {
    let t = text.trim();
    let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
    if let Ok(v) = semver::Version::parse(t) {
        return Some(v);
    }
    // `1` and `1.2` (Masterminds' loose parsing).
    let (core, rest) = match t.find(['-', '+']) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let parts = core.split('.').count();
    let padded = match parts {
        1 => format!("{core}.0.0{rest}"),
        2 => format!("{core}.0{rest}"),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}

impl Constraint {
    pub fn parse(text: &str) -> Option<Constraint> {
        let mut alternatives = Vec::new();
        for alt in text.split("||") {
            let mut comparators = Vec::new();
            for term in terms(alt)? {
                comparators.extend(comparator(&term)?);
            }
            if comparators.is_empty() {
                comparators.push(Comparator::Req(semver::VersionReq::STAR));
            }
            alternatives.push(comparators);
        }
        Some(Constraint(alternatives))
    }

    pub fn matches(&self, v: &semver::Version) -> bool {
        self.0.iter().any(|all| {
            all.iter().all(|c| match c {
                Comparator::Req(r) => r.matches(v),
                Comparator::NotEq(n) => n != v,
            })
        })
    }
}

/// The comparators of one alternative: hyphen ranges expanded, an operator and its version
/// joined (`>= 1.2`), commas and spaces as separators.
fn terms(alt: &str) -> Option<Vec<String>> {
    let words: Vec<&str> = alt
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if words.get(i + 1) == Some(&"-") {
            let hi = words.get(i + 2)?;
            out.push(format!(">={w}"));
            out.push(format!("<={hi}"));
            i += 3;
        } else if w.chars().all(|c| "<>=!~^".contains(c)) {
            out.push(format!("{w}{}", words.get(i + 1)?));
            i += 2;
        } else {
            out.push(w.to_string());
            i += 1;
        }
    }
    Some(out)
}

fn comparator(term: &str) -> Option<Vec<Comparator>> {
    let op_len = term
        .find(|c: char| !"<>=!~^".contains(c))
        .unwrap_or(term.len());
    let (op, version) = term.split_at(op_len);
    let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
    if version.is_empty() {
        return None;
    }
    let core = version.split(['-', '+']).next().unwrap_or("");
    let is_wildcard = |p: &str| matches!(p, "x" | "X" | "*");
    let wildcard = core.split('.').any(is_wildcard);
    // A wildcard major is any version to Masterminds (`*.*.*`, `x.x`: KubeSphere's jh chart
    // pins subcharts so); the semver crate takes only a bare `*` for it.
    let version = match core.split('.').next() {
        Some(major) if is_wildcard(major) => "*",
        _ => version,
    };
    let req = |op: &str| semver::VersionReq::parse(&format!("{op}{version}")).ok();
    Some(match op {
        // Masterminds: a bare version (or `=`) is exact; with a wildcard, a range.
        "" | "=" | "==" => vec![Comparator::Req(req(if wildcard { "" } else { "=" })?)],
        "!=" => {
            if wildcard {
                return None;
            }
            vec![Comparator::NotEq(parse_version(version)?)]
        }
        "~>" => vec![Comparator::Req(req("~")?)],
        "~" | "^" | ">" | ">=" | "<" | "<=" => vec![Comparator::Req(req(op)?)],
        "=>" => vec![Comparator::Req(req(">=")?)],
        "=<" => vec![Comparator::Req(req("<=")?)],
        _ => return None,
    })
}

/// The charts in `charts/` as Helm's loader finds them: `charts/<dir>/Chart.yaml` and
/// `charts/<file>.tgz` (names starting with `_` or `.` skipped), by chart name, with the
/// versions present.
fn present(files: &ChartFiles) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, data) in &files.files {
        let Some(rest) = path.strip_prefix("charts/") else {
            continue;
        };
        if rest.starts_with(['_', '.']) {
            continue;
        }
        let meta_bytes = if rest.ends_with(".tgz") && !rest.contains('/') {
            chart::read_archive(data, &Limits::default())
                .ok()
                .and_then(|(_, sub)| sub.files.get("Chart.yaml").cloned())
        } else if rest.split('/').nth(1) == Some("Chart.yaml") && rest.matches('/').count() == 1 {
            Some(data.clone())
        } else {
            None
        };
        let Some(bytes) = meta_bytes else { continue };
        let text = String::from_utf8_lossy(&bytes);
        let meta: SubMeta = super::parse_yaml(&text, Path::new("Chart.yaml")).unwrap_or_default();
        if let Some(name) = meta.name {
            out.entry(name)
                .or_default()
                .push(meta.version.unwrap_or_default());
        }
    }
    out
}

/// Checks that every dependency of the chart is in `charts/`. `chart_file` is where
/// Chart.yaml is (relative to the catalog root); `version_path` the version's directory or
/// archive; `in_archive` whether positions are meaningless. (When the catalog is read from git,
/// `compile --diff` says in the hint whether a `.gitignore` dropped the subchart.)
pub fn check(files: &ChartFiles, version_path: &Path, in_archive: bool, diags: &mut Diagnostics) {
    // Helm's loader reads requirements.yaml (apiVersion v1) over Chart.yaml's metadata: its
    // `dependencies`, when it has them, are the chart's.
    let from = |rel: &'static str| -> Option<(&'static str, Vec<Dep>)> {
        let text = String::from_utf8_lossy(files.get(rel)?);
        let parsed: DepsFile = super::parse_yaml(&text, Path::new(rel)).ok()?;
        Some((rel, parsed.dependencies?))
    };
    let declared = from("requirements.yaml").or_else(|| from("Chart.yaml"));
    let have = present(files);
    check_undeclared(&have, declared.as_ref(), version_path, in_archive, diags);
    let Some((source, deps)) = declared else {
        return;
    };
    if deps.is_empty() {
        return;
    }
    let file = if in_archive {
        version_path.to_path_buf()
    } else {
        version_path.join(source)
    };
    let at = |pos: Pos| if in_archive { None } else { Some(pos) };
    let inside = if in_archive {
        format!(" ({source} inside {})", version_path.display())
    } else {
        String::new()
    };
    for dep in &deps {
        let Some(name) = &dep.name else { continue };
        let Some(versions) = have.get(&name.value) else {
            let mut hint = format!(
                "run `helm dependency build {}` and commit its charts/ directory",
                version_path.display()
            );
            if in_archive {
                hint = format!(
                    "package the chart after `helm dependency build`, so the .tgz has charts/{}",
                    name.value
                );
            }
            diags.push(
                Diagnostic::error(
                    Code::ChartDependencyMissing,
                    format!(
                        "dependency `{}` is named in {source}, but missing in charts/ (Helm refuses to install the chart){inside}",
                        name.value
                    ),
                )
                .in_file(&file)
                .at_opt(at(name.pos))
                .hint(hint),
            );
            continue;
        };
        let Some(want) = &dep.version else { continue };
        if want.value.trim().is_empty() {
            continue;
        }
        let Some(constraint) = Constraint::parse(&want.value) else {
            diags.push(
                Diagnostic::warning(
                    Code::ChartDependencyMissing,
                    format!(
                        "dependency `{}`: version constraint `{}` is not one pitrix understands; not checked{inside}",
                        name.value, want.value
                    ),
                )
                .in_file(&file)
                .at_opt(at(want.pos))
                .hint("Helm uses Masterminds semver constraints, e.g. `~1.2.0`, `^2`, `>=1.0.0 <2.0.0`"),
            );
            continue;
        };
        let ok = versions
            .iter()
            .any(|v| parse_version(v).is_some_and(|v| constraint.matches(&v)));
        if !ok {
            diags.push(
                Diagnostic::warning(
                    Code::ChartDependencyMissing,
                    format!(
                        "dependency `{}` wants version `{}`, but charts/ has {} (`helm dependency list`: wrong version){inside}",
                        name.value,
                        want.value,
                        versions.join(", ")
                    ),
                )
                .in_file(&file)
                .at_opt(at(want.pos))
                .hint(format!(
                    "run `helm dependency update {}` and commit its charts/ directory",
                    version_path.display()
                )),
            );
        }
    }
}

/// Subcharts in `charts/` that the chart's `dependencies` do not name: Helm loads and installs
/// them, but `helm lint` fails the chart (pkg/lint/rules/dependencies.go,
/// `validateDependencyInMetadata`: `chart metadata is missing these dependencies: a,b`), so a
/// warning. Helm compares the subchart's own name with the declared names (not aliases).
fn check_undeclared(
    have: &BTreeMap<String, Vec<String>>,
    declared: Option<&(&'static str, Vec<Dep>)>,
    version_path: &Path,
    in_archive: bool,
    diags: &mut Diagnostics,
) {
    let named = |n: &str| {
        declared.is_some_and(|(_, deps)| {
            deps.iter()
                .any(|d| d.name.as_ref().is_some_and(|x| x.value == n))
        })
    };
    let missing: Vec<&str> = have
        .keys()
        .map(String::as_str)
        .filter(|n| !named(n))
        .collect();
    if missing.is_empty() {
        return;
    }
    let source = declared.map_or("Chart.yaml", |(source, _)| *source);
    let (file, inside) = if in_archive {
        (
            version_path.to_path_buf(),
            format!(" ({source} inside {})", version_path.display()),
        )
    } else {
        (version_path.join(source), String::new())
    };
    let listed: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
    diags.push(
        Diagnostic::warning(
            Code::ChartSubchartUndeclared,
            format!(
                "charts/ holds {} {}, which {source} does not name in `dependencies`: Helm \
                 installs it, but `helm lint` fails the chart (`chart metadata is missing these \
                 dependencies: {}`){inside}",
                if missing.len() == 1 {
                    "subchart"
                } else {
                    "subcharts"
                },
                listed.join(", "),
                missing.join(",")
            ),
        )
        .in_file(&file)
        .hint(format!(
            "name each in {source} `dependencies` (name, version, repository), or take it out of \
             charts/"
        )),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sat(c: &str, v: &str) -> bool {
        Constraint::parse(c)
            .unwrap_or_else(|| panic!("{c} parses"))
            .matches(&parse_version(v).unwrap())
    }

    #[test]
    fn masterminds_constraints() {
        assert!(sat("~1.2.0", "1.2.9"));
        assert!(!sat("~1.2.0", "1.3.0"));
        assert!(sat("^2", "2.9.1"));
        assert!(!sat("^2", "3.0.0"));
        assert!(sat(">=1.0.0 <2.0.0", "1.5.0"));
        assert!(!sat(">=1.0.0 <2.0.0", "2.0.0"));
        assert!(sat(">=1.0.0, <2.0.0", "1.0.0"));
        assert!(sat("1.x", "1.7.3"));
        assert!(!sat("1.x", "2.0.0"));
        assert!(sat("1.2.3", "1.2.3"));
        assert!(
            !sat("1.2.3", "1.2.4"),
            "a bare version is exact in Masterminds"
        );
        assert!(sat("v1.2.3", "1.2.3"));
        assert!(sat("1.2 - 1.4.5", "1.4.0"));
        assert!(!sat("1.2 - 1.4.5", "1.5.0"));
        assert!(sat("^1.0 || ^2.0", "2.1.0"));
        assert!(sat("!=1.2.3", "1.2.4"));
        assert!(!sat("!=1.2.3", "1.2.3"));
        assert!(sat(">= 1.2", "1.2.0"));
        assert!(sat("*", "0.1.0"));
        assert!(sat("*.*.*", "0.1.0"), "KubeSphere's jh chart");
        assert!(sat("x.x.x", "4.0.6"));
        assert!(sat("X.x", "1.2.3"));
        assert!(sat("1.*.*", "1.9.0"));
        assert!(!sat("1.*.*", "2.0.0"));
        assert!(sat("~1.19.0", "v1.19.6"));
        assert!(Constraint::parse("not a constraint").is_none());
    }

    #[test]
    fn masterminds_loose_versions() {
        for (loose, read) in [
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("v1.0", "1.0.0"),
            ("1.2.3-rc.1", "1.2.3-rc.1"),
            ("1.2+build.5", "1.2.0+build.5"),
            ("2.0-beta", "2.0.0-beta"),
        ] {
            assert_eq!(
                parse_version(loose).map(|v| v.to_string()).as_deref(),
                Some(read)
            );
        }
        for bad in [
            "", "latest", "1.0.0.0", "1..0", "v", "1.0-", "1.0+", "1.x", "01.0",
        ] {
            assert!(parse_version(bad).is_none(), "{bad}");
        }
    }
}
