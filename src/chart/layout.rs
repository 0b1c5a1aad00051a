//! What a package holds: the chart's files laid out as `helm package` lays them out, where that
//! makes the package smaller without changing what Helm loads from it.
//!
//! `helm package` does not copy the chart directory: it loads the chart and writes it back
//! (`chartutil.Save`), which (1) unpacks every vendored subchart archive `charts/*.tgz` into a
//! directory `charts/<name>/`, at any depth, and (2) writes each Chart.yaml from its parsed
//! metadata, without comments. Both make Helm's packages smaller than a copy: an archive inside
//! the package cannot be compressed again, and Chart.yaml comments are often a license header
//! of a kilobyte. pitrix does (1) as Helm does, and of (2) drops the comments only: Helm's
//! re-marshalling also drops fields it does not know, reorders keys and respells scalars
//! (`version: 1.10` becomes `"1.1"`), which pitrix would have to reproduce exactly (sigs.k8s.io/yaml's
//! coercions, encoding/json's case-insensitive keys) for the metadata to stay what Helm reads;
//! comments mean nothing to any loader, and dropping them is checked to leave the parsed YAML
//! exactly as it was.
//!
//! Both steps are idempotent, so packages of an earlier pack format (which kept the files as
//! they were) compare equal by their files laid out ([`super::same_chart`]).

use std::collections::BTreeMap;

use super::{ChartError, ChartFiles, Limits, read_archive};

const CHART_FILE: &str = "Chart.yaml";
const CHARTS_DIR: &str = "charts/";
/// Subcharts inside subcharts inside …: Helm recurses without a bound, this stops here and
/// keeps deeper archives as they are.
const MAX_DEPTH: usize = 8;

/// The files a package of `files` holds (see the module docs): vendored `charts/*.tgz`
/// subcharts unpacked into `charts/<name>/`, and comments dropped from every Chart.yaml.
/// An archive that cannot be unpacked faithfully (unreadable, over Helm's limits, without
/// Chart.yaml, named so Helm's loader would skip the directory, or clashing with a file or
/// directory already there) is kept as it is.
pub fn package_files(files: &ChartFiles) -> ChartFiles {
    let mut out = files.files.clone();
    let mut total = files.total_bytes();
    for _ in 0..MAX_DEPTH {
        if !unpack_archives(&mut out, &mut total) {
            break;
        }
    }
    for (path, data) in out.iter_mut() {
        if is_chart_file(path)
            && let Some(stripped) = without_comments(data)
        {
            *data = stripped;
        }
    }
    ChartFiles { files: out }
}

/// The vendored subchart archives of a chart as Helm's loader finds them (`charts/<file>.tgz`
/// of the chart or of a subchart directory, at any depth, names starting `_` or `.` skipped),
/// and those inside them: each with its path from the chart root (an archive inside an archive
/// as `charts/a-1.0.0.tgz/charts/b-1.0.0.tgz`) and what reading it gave.
pub fn subchart_archives(files: &ChartFiles) -> Vec<(String, Result<ChartFiles, ChartError>)> {
    let mut found = Vec::new();
    collect_archives(files, "", 0, &mut found);
    found
}

fn collect_archives(
    files: &ChartFiles,
    shown_prefix: &str,
    depth: usize,
    found: &mut Vec<(String, Result<ChartFiles, ChartError>)>,
) {
    for (path, data) in &files.files {
        if !is_subchart_archive(path) {
            continue;
        }
        let shown = format!("{shown_prefix}{path}");
        let read = read_archive(data, &Limits::default()).map(|(_, sub)| sub);
        if let (Ok(sub), true) = (&read, depth + 1 < MAX_DEPTH) {
            collect_archives(sub, &format!("{shown}/"), depth + 1, found);
        }
        found.push((shown, read));
    }
}

/// Unpacks the subchart archives of `files` one level; whether any was.
fn unpack_archives(files: &mut BTreeMap<String, Vec<u8>>, total: &mut u64) -> bool {
    let archives: Vec<String> = files
        .keys()
        .filter(|p| is_subchart_archive(p))
        .cloned()
        .collect();
    let mut any = false;
    for path in archives {
        let Some(data) = files.get(&path) else {
            continue;
        };
        let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
        // What Helm's loader allows a package: 100 MiB of files, 5 MiB each.
        let limits = Limits {
            max_total_bytes: Limits::HELM_MAX_TOTAL_BYTES
                .saturating_sub(total.saturating_sub(size)),
            ..Limits::default()
        };
        let Ok((top, sub)) = read_archive(data, &limits) else {
            continue;
        };
        if top.starts_with(['_', '.']) || !sub.files.contains_key(CHART_FILE) {
            continue;
        }
        let parent = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
        let dir = format!("{parent}/{top}");
        let clashes = files.contains_key(&dir)
            || files
                .range(format!("{dir}/")..)
                .next()
                .is_some_and(|(p, _)| p.starts_with(&format!("{dir}/")));
        if clashes {
            continue;
        }
        files.remove(&path);
        *total = total.saturating_sub(size).saturating_add(sub.total_bytes());
        for (rel, data) in sub.files {
            files.insert(format!("{dir}/{rel}"), data);
        }
        any = true;
    }
    any
}

/// `charts/<file>.tgz` of the chart or of a subchart directory (`charts/<dir>/…`, at any
/// depth), where no name on the way starts with `_` or `.` (Helm's loader skips those).
fn is_subchart_archive(path: &str) -> bool {
    subchart_rest(path).is_some_and(|rest| {
        rest.strip_prefix(CHARTS_DIR).is_some_and(|name| {
            !name.contains('/') && name.ends_with(".tgz") && !name.starts_with(['_', '.'])
        })
    })
}

/// Chart.yaml of the chart or of a subchart directory at any depth.
fn is_chart_file(path: &str) -> bool {
    subchart_rest(path) == Some(CHART_FILE)
}

/// The path relative to the innermost subchart directory holding it, or `None` when it is
/// under a `charts/` entry Helm's loader skips.
fn subchart_rest(path: &str) -> Option<&str> {
    let mut rest = path;
    loop {
        let Some((sub, after)) = rest
            .strip_prefix(CHARTS_DIR)
            .and_then(|r| r.split_once('/'))
        else {
            return Some(rest);
        };
        if sub.starts_with(['_', '.']) {
            return None;
        }
        rest = after;
    }
}

/// `data` without its comment lines and trailing comments, when it has any and dropping them
/// leaves the parsed YAML exactly as it was; `None` otherwise (not UTF-8, not one YAML
/// document, no comments, or a `#` that is content: in a block scalar, in quotes).
fn without_comments(data: &[u8]) -> Option<Vec<u8>> {
    if !data.contains(&b'#') {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let end = &line[body.len()..];
        if body.trim_start().starts_with('#') {
            continue;
        }
        match trailing_comment(body) {
            Some(at) => {
                out.push_str(body[..at].trim_end());
                out.push_str(end);
            }
            None => out.push_str(line),
        }
    }
    if out.len() == text.len() {
        return None;
    }
    let parse = |s: &str| serde_yaml::from_str::<serde_yaml::Value>(s).ok();
    let before = parse(text)?;
    (parse(&out)? == before).then(|| out.into_bytes())
}

/// Where a comment after content starts (` #` or a tab and `#`), on a line without quotes
/// before it (a `#` in a quoted scalar is content).
fn trailing_comment(line: &str) -> Option<usize> {
    for (at, pair) in line.as_bytes().windows(2).enumerate() {
        match pair {
            [b'\'' | b'"', _] => return None,
            [b' ' | b'\t', b'#'] => return Some(at),
            _ => {}
        }
    }
    None
}
