//! The fuzz targets themselves, shared by the cargo-fuzz project (`fuzz/fuzz_targets/*.rs`
//! include this file with `#[path]`) and by the in-suite run (`tests/integration/fuzz_smoke.rs`).
//!
//! Every target takes arbitrary bytes and must return without panicking; the checks below
//! (`assert!`) are properties that pitrix documents, so a failing one is a bug too.
//!
//! Targets: `yaml`, `chart_archive`, `catalog_loader` (the loader), `diff` (the diff engine,
//! its renderings and redaction), `values_template` (values templates terminate),
//! `helmignore`, `repo_index`, `kubeconfig` and `inventory` (the inventory ConfigMap, and
//! compile output read back for apply).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pitrix::catalog::{AppFile, CategoryFile, ChartMeta, ReleaseFile, RepoFile};
use pitrix::chart::{self, ChartFiles, Limits};
use pitrix::compile::Object;
use pitrix::diagnostics::{self, Diagnostic, Format};
use pitrix::yaml;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Target `yaml`: pitrix::yaml and the catalog file types.

/// Input: YAML text (invalid UTF-8 is read lossily, as the chart loader reads Chart.yaml).
pub fn yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(node) = yaml::parse(&text) {
        let _ = node.to_json();
        let _ = yaml::from_node::<AppFile>(&node);
        let _ = yaml::from_node::<ReleaseFile>(&node);
        let _ = yaml::from_node::<RepoFile>(&node);
        let _ = yaml::from_node::<CategoryFile>(&node);
        let _ = yaml::from_node::<ChartMeta>(&node);
        let _ = yaml::from_node::<Option<serde_json::Map<String, serde_json::Value>>>(&node);
        let _ = yaml::from_node::<serde_json::Value>(&node);
    }
    if let Ok(docs) = yaml::parse_stream(&text) {
        for doc in &docs {
            let _ = doc.to_json();
            let _ = doc.get("metadata").and_then(|m| m.get("name"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target `chart_archive`: pitrix::chart::read_archive and pack.

/// Limits small enough that the size checks are reached by small inputs.
pub const SMALL_LIMITS: Limits = Limits {
    max_total_bytes: 64 * 1024,
    max_file_bytes: 16 * 1024,
};

/// Input: the first byte says what follows:
/// * `F`: an uncompressed tar whose header checksums are fixed up (so mutations of the
///   headers reach the reader), then gzipped;
/// * `T`: an uncompressed tar, gzipped as it is;
/// * anything else: the bytes are the package (a `.tgz`) as they are.
pub fn chart_archive(data: &[u8]) {
    let package = archive_bytes(data);
    for limits in [Limits::default(), SMALL_LIMITS] {
        let Ok((top, files)) = chart::read_archive(&package, &limits) else {
            continue;
        };
        check_read_archive(&top, &files, &limits);
    }
}

/// The `.tgz` an input of [`chart_archive`] stands for.
pub fn archive_bytes(data: &[u8]) -> Cow<'_, [u8]> {
    match data.split_first() {
        Some((b'F', tar)) => {
            let mut tar = tar.to_vec();
            fix_tar_checksums(&mut tar);
            Cow::Owned(gzip(&tar))
        }
        Some((b'T', tar)) => Cow::Owned(gzip(tar)),
        _ => Cow::Borrowed(data),
    }
}

/// What `read_archive` promises of an archive it accepts.
fn check_read_archive(top: &str, files: &ChartFiles, limits: &Limits) {
    assert!(!files.files.is_empty(), "accepted an archive without files");
    assert!(
        !top.is_empty() && !top.contains(['/', '\\', '\0']) && top != "." && top != "..",
        "top-level directory {top:?} is not a plain name"
    );
    assert!(files.total_bytes() <= limits.max_total_bytes);
    let mut again = ChartFiles::new();
    for (path, data) in &files.files {
        assert!(
            u64::try_from(data.len()).unwrap_or(u64::MAX) <= limits.max_file_bytes,
            "{path}: over the per-file limit"
        );
        // `insert` checks the canonical-path and file/directory rules the docs promise.
        if let Err(e) = again.insert(path, data.clone()) {
            panic!("read_archive returned the non-canonical path {path:?}: {e}");
        }
    }
    // What is read can be packed, reproducibly, and reads back the same.
    let packed = chart::pack(top, files);
    assert_eq!(packed, chart::pack(top, files), "pack is not deterministic");
    match chart::read_archive(&packed, &Limits::default()) {
        Ok((top2, files2)) => {
            assert_eq!(top2, top, "pack → read_archive changed the chart name");
            assert!(files2 == *files, "pack → read_archive changed the files");
        }
        Err(e) => panic!("read_archive refuses what pack wrote for {top:?}: {e}"),
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// Walks a tar the way a reader does (header, data blocks, next header) and writes a correct
/// checksum into every header on the way. Zero blocks are stepped over.
pub fn fix_tar_checksums(tar: &mut [u8]) {
    let mut offset = 0usize;
    while let Some(block) = offset
        .checked_add(512)
        .and_then(|end| tar.get_mut(offset..end))
    {
        offset += 512;
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let data_blocks = tar_size(&block[124..136]).div_ceil(512);
        match usize::try_from(data_blocks)
            .ok()
            .and_then(|n| n.checked_mul(512))
            .and_then(|n| offset.checked_add(n))
        {
            Some(next) => offset = next,
            None => return,
        }
    }
}

/// A tar numeric field: octal text, or base-256 when the high bit of the first byte is set.
pub fn tar_size(field: &[u8]) -> u64 {
    match field.split_first() {
        Some((first, rest)) if first & 0x80 != 0 => {
            rest.iter().fold(u64::from(first & 0x7f), |acc, &b| {
                acc.saturating_mul(256).saturating_add(u64::from(b))
            })
        }
        _ => field
            .iter()
            .skip_while(|&&b| b == b' ' || b == 0)
            .take_while(|b| (b'0'..=b'7').contains(b))
            .fold(0u64, |acc, &b| {
                acc.saturating_mul(8).saturating_add(u64::from(b - b'0'))
            }),
    }
}

// ---------------------------------------------------------------------------------------------
// Target `catalog_loader`: pitrix::pipeline over a catalog directory made from the input.

/// At most this many files are written for one input.
pub const MAX_FILES: usize = 32;

/// Input: a [`container`] of files. A section whose path is `<archive>.tgz!<inner path>` is a
/// file inside that archive, which is then written with `chart::pack` (so the fuzzer can reach
/// a packaged chart's Chart.yaml without producing valid gzip itself). Paths are checked by
/// [`safe_path`]; sections with other paths are dropped.
///
/// Runs what `pitrix validate` and `pitrix compile` run: load and validate, the three
/// renderings of the diagnostics, and, for a catalog without errors, compile and emit.
pub fn catalog_loader(data: &[u8]) {
    let sections = container::decode(data);
    let dir = scratch_dir();
    let root = dir.path();
    write_catalog(root, &sections);

    let (catalog, diags) = pitrix::pipeline::check(root);
    for format in [Format::Text, Format::Json, Format::Github] {
        let _ = diagnostics::render(&diags, root, format);
    }
    if !diags.iter().any(Diagnostic::is_error) {
        let compiled =
            pitrix::compile::compile(&catalog).expect("packages in memory are always readable");
        let _ = pitrix::emit::render(&compiled);
    }
}

/// A fresh directory for one catalog: under `PITRIX_FUZZ_TMPDIR` if set, else in `/dev/shm`
/// where that is a usable tmpfs (thousands of small catalogs written and removed on a disk
/// that other builds keep busy are several times slower), else in the usual temp dir.
pub fn scratch_dir() -> tempfile::TempDir {
    static PARENT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let parent = PARENT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PITRIX_FUZZ_TMPDIR") {
            return Some(PathBuf::from(dir));
        }
        let shm = Path::new("/dev/shm");
        tempfile::tempdir_in(shm).is_ok().then(|| shm.to_path_buf())
    });
    match parent {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("temporary directory")
}

/// Writes the sections of a [`catalog_loader`] input under `root`.
pub fn write_catalog(root: &Path, sections: &[(&[u8], &[u8])]) {
    let mut archives: BTreeMap<PathBuf, ChartFiles> = BTreeMap::new();
    for (path, content) in sections.iter().take(MAX_FILES) {
        let Ok(path) = std::str::from_utf8(path) else {
            continue;
        };
        match path.split_once('!') {
            Some((archive, inner)) => {
                let Some(archive) = safe_path(archive) else {
                    continue;
                };
                // `insert` refuses what a chart cannot hold; that is fine here.
                let _ = archives
                    .entry(archive)
                    .or_default()
                    .insert(inner, content.to_vec());
            }
            None => {
                if let Some(file) = safe_path(path) {
                    write_file(&root.join(file), content);
                }
            }
        }
    }
    for (archive, files) in archives {
        write_file(&root.join(archive), &chart::pack("chart", &files));
    }
}

fn write_file(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        // Fails when a file is where a directory is wanted: the file is then not written.
        let _ = fs::create_dir_all(parent);
    }
    let _ = fs::write(path, content);
}

/// A relative path of at most 6 components of `[A-Za-z0-9._+-]{1,64}`, none `.` or `..`.
pub fn safe_path(path: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = path.split('/').collect();
    let ok = parts.len() <= 6
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 64
                && *p != "."
                && *p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        });
    ok.then(|| parts.iter().collect())
}

/// Files in one byte string: each section is a line `%%% <path>` and the bytes after it, up
/// to the next `\n%%% ` (that newline belongs to the separator). Bytes before the first
/// section are ignored.
pub mod container {
    pub const MARK: &[u8] = b"%%% ";
    const SEPARATOR: &[u8] = b"\n%%% ";

    /// The `(path, content)` sections of `data`.
    pub fn decode(data: &[u8]) -> Vec<(&[u8], &[u8])> {
        // (where the section's path starts, where the previous section ends)
        let mut marks: Vec<(usize, usize)> = Vec::new();
        if data.starts_with(MARK) {
            marks.push((MARK.len(), 0));
        }
        let mut from = 0;
        while let Some(found) = find(data.get(from..).unwrap_or_default(), SEPARATOR) {
            let at = from + found;
            marks.push((at + SEPARATOR.len(), at));
            from = at + 1;
        }
        let mut sections = Vec::with_capacity(marks.len());
        for (i, &(start, _)) in marks.iter().enumerate() {
            let end = marks.get(i + 1).map_or(data.len(), |&(_, end)| end);
            let section = data.get(start..end).unwrap_or_default();
            let (path, content) = match section.iter().position(|&b| b == b'\n') {
                Some(nl) => (&section[..nl], &section[nl + 1..]),
                None => (section, &section[section.len()..]),
            };
            sections.push((path, content));
        }
        sections
    }

    /// The inverse of [`decode`] for paths without `\n` and contents that neither hold
    /// `\n%%% ` nor start with `%%% `.
    pub fn encode<P: AsRef<[u8]>, C: AsRef<[u8]>>(sections: &[(P, C)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (path, content)) in sections.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(MARK);
            out.extend_from_slice(path.as_ref());
            out.push(b'\n');
            out.extend_from_slice(content.as_ref());
        }
        out
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }
}

// ---------------------------------------------------------------------------------------------
// Target `diff`: pitrix::diff::diff, its three renderings, and redaction.

/// Keys that look secret to `pitrix::redact::is_secret_key` (its word list and `*Key`).
pub const SECRET_KEYS: &[&str] = &[
    "password",
    "dbPassword",
    "api_token",
    "client-secret",
    "accessKey",
    "tls.privateKey",
    "passwd",
    "pwd",
    "apikey",
    "token",
    "credentials",
    "AWS_SECRET_ACCESS_KEY",
];

/// Keys of the broadened secret-key list of `src/redact.rs` (connection strings, passphrases,
/// htpasswd files, `auth`, kubeconfig's `*-key-data`, `.dockerconfigjson`, whatever the case
/// and separators). A leak of one of these is reported as such (see [`diff`]).
pub const BROADENED_SECRET_KEYS: &[&str] = &[
    "connectionString",
    "connection_string",
    "CONNECTION-STRING",
    "passphrase",
    "htpasswd",
    "auth",
    "client-key-data",
    "clientKeyData",
    ".dockerconfigjson",
    "DB_PASSWORD",
    "PassWord",
];

/// Innocent keys a chart's `values.schema.json` marks `writeOnly`.
pub const WRITE_ONLY_KEYS: &[&str] = &["phrase", "rootPhrase", "value", "note"];

/// Every planted secret starts with this; an input that holds it is not run (it could put the
/// text where it is no secret).
pub const SECRET_MARK: &str = "Pl4nted";

/// A secret planted by [`diff`], and where.
#[derive(Debug, Clone)]
pub struct Planted {
    pub value: String,
    pub key: String,
    pub place: String,
}

/// Choices read from the input's `plant` section, then from a generator seeded by the input.
struct Planter<'a> {
    bytes: &'a [u8],
    at: usize,
    state: u64,
}

impl<'a> Planter<'a> {
    fn new(bytes: &'a [u8], input: &[u8]) -> Self {
        let state = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Planter {
            bytes,
            at: 0,
            state,
        }
    }

    fn next(&mut self) -> usize {
        if let Some(&b) = self.bytes.get(self.at) {
            self.at += 1;
            return usize::from(b);
        }
        // SplitMix64.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) & 0xff) as usize
    }

    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.next() % items.len()]
    }
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// The mappings of `v` (the root first), at most 64, at most 16 deep.
fn mapping_paths(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    if out.len() >= 64 || path.len() > 16 {
        return;
    }
    match v {
        Value::Object(map) => {
            out.push(path.clone());
            for (k, child) in map {
                path.push(Seg::Key(k.clone()));
                mapping_paths(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                mapping_paths(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn mapping_at<'v>(
    v: &'v mut Value,
    path: &[Seg],
) -> Option<&'v mut serde_json::Map<String, Value>> {
    let mut node = v;
    for seg in path {
        node = match seg {
            Seg::Key(k) => node.as_object_mut()?.get_mut(k)?,
            Seg::Index(i) => node.as_array_mut()?.get_mut(*i)?,
        };
    }
    node.as_object_mut()
}

/// A JSON Schema marking `path` `writeOnly`.
fn write_only_schema(path: &[Seg]) -> Value {
    let mut node = json!({"type": "string", "writeOnly": true});
    for seg in path.iter().rev() {
        node = match seg {
            Seg::Key(k) => json!({"properties": {k.as_str(): node}}),
            Seg::Index(_) => json!({"items": node}),
        };
    }
    node
}

fn pointer(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Key(k) => format!("/{k}"),
            Seg::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// Plants secrets in `values` (a mapping): 1–3 under secret-looking keys, and, when
/// `write_only` is given, one under an innocent key whose path is pushed there (for the
/// chart's schema).
#[allow(clippy::too_many_arguments)]
fn plant_values(
    values: &mut Value,
    planter: &mut Planter,
    secret: &mut dyn FnMut(&str, String) -> String,
    place: &str,
    write_only: Option<&mut Vec<Vec<Seg>>>,
) {
    let mut paths = Vec::new();
    mapping_paths(values, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        return;
    }
    if let Some(write_only) = write_only {
        let path = planter.pick(&paths).clone();
        let key = *planter.pick(WRITE_ONLY_KEYS);
        let mut full = path.clone();
        full.push(Seg::Key(key.to_string()));
        if let Some(map) = mapping_at(values, &path) {
            let where_ = format!("{place}, writeOnly {}", pointer(&full));
            map.insert(key.to_string(), Value::String(secret(key, where_)));
            write_only.push(full);
        }
    }
    for _ in 0..1 + planter.next() % 3 {
        let path = planter.pick(&paths).clone();
        let key = if planter.next().is_multiple_of(3) {
            *planter.pick(BROADENED_SECRET_KEYS)
        } else {
            *planter.pick(SECRET_KEYS)
        };
        if let Some(map) = mapping_at(values, &path) {
            let where_ = format!("{place}, {}/{key}", pointer(&path));
            map.insert(key.to_string(), Value::String(secret(key, where_)));
        }
    }
}

/// The scaffold's compile, which every input of [`diff`] starts from.
struct DiffBase {
    catalog: String,
    objects: Vec<Value>,
    status: Vec<pitrix::compile::StatusIntent>,
    /// The release the planted writeOnly values go in, its version and that version's chart.
    release: String,
    version_id: String,
    chart_top: String,
    chart: ChartFiles,
}

fn diff_base() -> &'static DiffBase {
    static BASE: OnceLock<DiffBase> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = scratch_dir();
        let root = dir.path().join("catalog");
        pitrix::scaffold::new_catalog(&root).expect("scaffold a catalog");
        let (compiled, _) = pitrix::pipeline::build(&root).expect("the scaffold compiles");
        let objects: Vec<Value> = compiled.objects.iter().map(|o| o.to_json()).collect();
        let release = objects
            .iter()
            .find(|o| o["kind"] == "ApplicationRelease")
            .expect("the scaffold has a release");
        let version_id = release["metadata"]["labels"][pitrix::objects::labels::APP_VERSION_ID]
            .as_str()
            .expect("a release names its version")
            .to_string();
        let package = objects
            .iter()
            .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == version_id.as_str())
            .and_then(|o| o["binaryData"][pitrix::objects::labels::STORAGE_KEY].as_str())
            .expect("the version's package is stored");
        let package = BASE64.decode(package).expect("base64 package");
        let (chart_top, chart) =
            chart::read_archive(&package, &Limits::default()).expect("the package reads");
        DiffBase {
            catalog: compiled.catalog.clone(),
            release: release["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            objects,
            status: compiled.status.clone(),
            version_id,
            chart_top,
            chart,
        }
    })
}

/// A typed object from its JSON, as `pitrix diff` reads live objects.
pub fn typed(v: Value) -> Option<Object> {
    let kind = v.get("kind")?.as_str()?.to_string();
    Some(match kind.as_str() {
        "Namespace" => Object::Namespace(serde_json::from_value(v).ok()?),
        "Category" => Object::Category(serde_json::from_value(v).ok()?),
        "Repo" => Object::Repo(serde_json::from_value(v).ok()?),
        "ConfigMap" => Object::ConfigMap(serde_json::from_value(v).ok()?),
        "Application" => Object::Application(serde_json::from_value(v).ok()?),
        "ApplicationVersion" => Object::ApplicationVersion(serde_json::from_value(v).ok()?),
        "ApplicationRelease" => Object::ApplicationRelease(serde_json::from_value(v).ok()?),
        "Job" => Object::Job(Box::new(serde_json::from_value(v).ok()?)),
        _ => return None,
    })
}

/// The YAML documents of a text, as JSON (at most 8).
fn yaml_docs(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text).take(8) {
        match serde::Deserialize::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(v) => docs.push(v),
            Err(_) => break,
        }
    }
    docs
}

/// The part of a section path for `side` (`old:x`, `new:x`, or `x` for both).
fn side_path<'p>(path: &'p [u8], side: &str) -> Option<&'p str> {
    let path = std::str::from_utf8(path).ok()?;
    match path.split_once(':') {
        Some((s, rest)) if s == side => Some(rest),
        Some(("old" | "new", _)) => None,
        _ => Some(path),
    }
}

/// One side of a [`diff`] input: the scaffold's compile with the sections' edits, secrets
/// planted.
fn diff_side(
    base: &DiffBase,
    sections: &[(&[u8], &[u8])],
    side: &str,
    planter: &mut Planter,
    secret: &mut dyn FnMut(&str, String) -> String,
) -> pitrix::compile::Compiled {
    use pitrix::objects::labels;
    let managed = |v: &Value| {
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        matches!(
            v["kind"].as_str(),
            Some("ApplicationVersion" | "ConfigMap") if name == base.version_id
        ) || (v["kind"] == "ApplicationRelease" && name == base.release)
    };
    let mut objects = base.objects.clone();
    let mut status = base.status.clone();
    let mut chart = base.chart.clone();
    let mut fuzz_schema: Option<Value> = None;
    let mut values_text: Option<String> = None;
    for (path, content) in sections.iter().take(MAX_FILES) {
        let Some(path) = side_path(path, side) else {
            continue;
        };
        let text = String::from_utf8_lossy(content);
        match path {
            "values" => values_text = Some(text.into_owned()),
            "schema" => fuzz_schema = serde_json::from_slice(content).ok(),
            "object" => {
                for doc in yaml_docs(&text) {
                    if managed(&doc) || typed(doc.clone()).is_none() {
                        continue;
                    }
                    let r = pitrix::cluster::ObjectRef::of_json(&doc);
                    objects.retain(|o| pitrix::cluster::ObjectRef::of_json(o) != r);
                    objects.push(doc);
                }
            }
            "remove" => {
                for line in text.lines() {
                    let (kind, name) = line.split_once('/').unwrap_or(("", line));
                    objects.retain(|o| {
                        managed(o) || o["kind"] != kind || o["metadata"]["name"] != name
                    });
                }
            }
            "state" => {
                // `<Application|ApplicationVersion> <name> <state> [message]` per line.
                for line in text.lines().take(16) {
                    let mut parts = line.splitn(4, ' ');
                    let kind = match parts.next() {
                        Some("Application") => "Application",
                        Some("ApplicationVersion") => "ApplicationVersion",
                        _ => continue,
                    };
                    let (Some(name), Some(Ok(state))) =
                        (parts.next(), parts.next().map(str::parse))
                    else {
                        continue;
                    };
                    status.retain(|s| !(s.kind == kind && s.name == name));
                    status.push(pitrix::compile::StatusIntent {
                        kind,
                        name: name.to_string(),
                        state,
                        message: parts.next().map(str::to_string),
                    });
                }
            }
            p => {
                if let Some(file) = p.strip_prefix("chart/") {
                    // `insert` refuses what a chart cannot hold; that is fine here.
                    let _ = chart.insert(file, content.to_vec());
                }
            }
        }
    }

    // Secrets in every release's values and every ConfigMap's data; writeOnly values in the
    // managed release's values and its chart's values.yaml.
    let mut write_only: Vec<Vec<Seg>> = Vec::new();
    for o in &mut objects {
        let name = o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match o["kind"].as_str() {
            Some("ApplicationRelease") => {
                let ours = name == base.release;
                let text = match (&values_text, ours) {
                    (Some(t), true) => t.clone(),
                    _ => o["spec"]["values"]
                        .as_str()
                        .and_then(|b| BASE64.decode(b).ok())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default(),
                };
                let helm = o["spec"]["appType"].as_str().is_none_or(|t| t == "helm");
                let bytes = match serde_yaml::from_str::<Value>(&text) {
                    Ok(mut v @ (Value::Object(_) | Value::Null)) if helm => {
                        if v.is_null() {
                            v = json!({});
                        }
                        let place = format!("{side} release {name} values");
                        let wo = ours.then_some(&mut write_only);
                        plant_values(&mut v, planter, secret, &place, wo);
                        serde_yaml::to_string(&v).unwrap_or_default().into_bytes()
                    }
                    _ => text.into_bytes(),
                };
                o["spec"]["values"] = Value::String(BASE64.encode(bytes));
            }
            Some("ConfigMap") if o.get("data").is_some_and(Value::is_object) => {
                let key = *planter.pick(SECRET_KEYS);
                let where_ = format!("{side} ConfigMap {name} data/{key}");
                o["data"][key] = Value::String(secret(key, where_));
            }
            _ => {}
        }
    }
    let chart_values = chart
        .get("values.yaml")
        .map(|v| String::from_utf8_lossy(v).into_owned());
    if let Some(text) = chart_values
        && let Ok(mut v @ (Value::Object(_) | Value::Null)) = serde_yaml::from_str::<Value>(&text)
    {
        if v.is_null() {
            v = json!({});
        }
        let place = format!("{side} chart values.yaml");
        plant_values(&mut v, planter, secret, &place, Some(&mut write_only));
        let _ = chart.insert(
            "values.yaml",
            serde_yaml::to_string(&v).unwrap_or_default().into_bytes(),
        );
    }
    if !write_only.is_empty() || fuzz_schema.is_some() {
        let mut all: Vec<Value> = fuzz_schema.into_iter().collect();
        all.extend(write_only.iter().map(|p| write_only_schema(p)));
        let schema = json!({"allOf": all});
        let _ = chart.insert(
            "values.schema.json",
            serde_json::to_vec_pretty(&schema).unwrap_or_default(),
        );
    }
    let package = BASE64.encode(chart::pack(&base.chart_top, &chart));
    for o in &mut objects {
        if o["kind"] == "ConfigMap" && o["metadata"]["name"] == base.version_id.as_str() {
            o["binaryData"][labels::STORAGE_KEY] = Value::String(package.clone());
        }
    }

    let mut objects: Vec<Object> = objects.into_iter().filter_map(typed).collect();
    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    status.sort_by(|a, b| (a.order(), &a.name).cmp(&(b.order(), &b.name)));
    pitrix::compile::Compiled {
        catalog: base.catalog.clone(),
        objects,
        status,
        standalone: None,
        environment: None,
        contexts: BTreeMap::new(),
        status_image: None,
        object_store: None,
    }
}

/// Input: a [`container`] of edits to the scaffold's compile, for the base side (`old:<name>`),
/// the head side (`new:<name>`) or both (`<name>`):
/// * `values`: the scaffold release's values (YAML);
/// * `chart/<path>`: a file of its version's chart (`chart/values.yaml`, templates …);
/// * `schema`: the chart's values.schema.json (JSON);
/// * `object`: objects (YAML documents) added or replacing those of the same identity;
/// * `remove`: `<Kind>/<name>` lines of objects to remove;
/// * `state`: `<Kind> <name> <state> [message]` lines of review states;
/// * `plant` (both sides): the bytes that choose where secrets are planted.
///
/// Secrets are planted on both sides: under secret-looking keys ([`SECRET_KEYS`],
/// [`BROADENED_SECRET_KEYS`]) in every release's values, every ConfigMap's data and the chart's
/// values.yaml, and under innocent keys the chart's values.schema.json marks `writeOnly`.
/// Property: no rendering of the diff (text with and without colour, Markdown with and without
/// the comment limit, JSON, the diff's diagnostics) shows one, as it is or in base64. Also: the
/// JSON is JSON, the limited Markdown fits a comment, the diff is deterministic, and a side
/// compared with itself has no changes.
pub fn diff(data: &[u8]) {
    let _ = diff_checked(data);
}

/// The renderings [`diff`] checked: (what, text).
pub type Renderings = Vec<(String, String)>;

/// [`diff`], returning what it planted and the renderings it checked (`None`: the input holds
/// [`SECRET_MARK`] and was not run).
pub fn diff_checked(data: &[u8]) -> Option<(Vec<Planted>, Renderings)> {
    let lower = String::from_utf8_lossy(data).to_lowercase();
    // The mark, and its base64 (`UGw0bnRl…`).
    if lower.contains(&SECRET_MARK.to_lowercase()) || lower.contains("ugw0bnrl") {
        return None;
    }
    let sections = container::decode(data);
    let base = diff_base();
    let plant = sections
        .iter()
        .find(|(p, _)| *p == b"plant")
        .map(|(_, c)| *c)
        .unwrap_or_default();
    // Some inputs plant the same secrets on both sides (hidden as `***`), others different
    // ones (hidden as `*** (changed, …)`).
    let same = plant.first().is_some_and(|b| b % 2 == 0);
    let mut planted: Vec<Planted> = Vec::new();
    let mut sides = Vec::new();
    for side in ["old", "new"] {
        let mut n = 0usize;
        let mut secret = |key: &str, place: String| {
            let tag = if same { "o" } else { side };
            let value = format!("{SECRET_MARK}{n:03}{tag}Zq");
            n += 1;
            planted.push(Planted {
                value: value.clone(),
                key: key.to_string(),
                place,
            });
            value
        };
        let mut planter = Planter::new(plant, data);
        sides.push(diff_side(base, &sections, side, &mut planter, &mut secret));
    }
    let (old, new) = (&sides[0], &sides[1]);
    let d = pitrix::diff::diff(old, new);
    assert!(
        d == pitrix::diff::diff(old, new),
        "diff is not deterministic"
    );
    assert!(
        !pitrix::diff::diff(new, new).has_changes(),
        "a side compared with itself has changes"
    );

    use pitrix::diff::render::{self as diff_render, Options};
    let mut outputs: Renderings = Vec::new();
    for (what, format, color, limit) in [
        ("text", pitrix::diff::Format::Text, false, None),
        ("text (colour)", pitrix::diff::Format::Text, true, None),
        ("markdown", pitrix::diff::Format::Markdown, false, None),
        (
            "markdown (comment)",
            pitrix::diff::Format::Markdown,
            false,
            Some(diff_render::COMMENT_LIMIT),
        ),
        ("json", pitrix::diff::Format::Json, false, None),
    ] {
        let options = Options {
            color,
            limit,
            full_diff: Some("artifacts/diff.md".into()),
        };
        outputs.push((what.into(), diff_render::render(&d, format, &options)));
    }
    let json_out = &outputs[4].1;
    assert!(
        serde_json::from_str::<Value>(json_out).is_ok(),
        "the JSON rendering is no JSON"
    );
    let comment = &outputs[3].1;
    assert!(
        comment.len() <= diff_render::COMMENT_LIMIT,
        "the Markdown comment is {} bytes, over the limit",
        comment.len()
    );
    let diags = d.diagnostics();
    for format in [Format::Text, Format::Json, Format::Github] {
        outputs.push((
            format!("diagnostics {format:?}"),
            diagnostics::render(&diags, Path::new("catalog"), format),
        ));
    }

    for p in &planted {
        let b64 = BASE64.encode(&p.value);
        let b64 = &b64[..b64.len() - 4];
        for (what, text) in &outputs {
            if text.contains(&p.value) || text.contains(b64) {
                let broadened = BROADENED_SECRET_KEYS.contains(&p.key.as_str())
                    && !pitrix::redact::is_secret_key(&p.key);
                let note = if broadened {
                    " [the key is on the broadened secret-key list, which src/redact.rs does not have yet]"
                } else {
                    ""
                };
                panic!(
                    "planted secret {:?} under `{}` ({}) shows in the {what} rendering{note}:\n{text}",
                    p.value, p.key, p.place
                );
            }
        }
    }
    Some((planted, outputs))
}

// ---------------------------------------------------------------------------------------------
// Target `values_template`: release values templates (minijinja), through pitrix::load::load.

/// pitrix.toml of the [`values_template`] catalog: vars worth looping over.
pub const TEMPLATE_SETTINGS: &str = r#"[catalog]
name = "t"

[vars]
n = 12
word = "abc"
items = [1, 2, 3, "x"]
matrix = [[1, 2], [3, 4], []]
nested = { a = { b = ["c", "d"] }, e = 1.5 }
"#;

/// `text` as a YAML double-quoted scalar, every character but printable ASCII escaped.
pub fn yaml_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// Input: a template (text, invalid UTF-8 read lossily), used as a release's inline value and
/// as its `*.j2` values file. Property: loading terminates (the callers time each input: a
/// smoke run, and libFuzzer's `-timeout`), without a panic; an inline value that is no
/// template (no `{{`, `{%`, `{#`) is kept as it is.
pub fn values_template(data: &[u8]) {
    let _ = values_template_loaded(data);
}

/// [`values_template`], returning what was loaded (with the diagnostics).
pub fn values_template_loaded(data: &[u8]) -> (pitrix::catalog::Catalog, Vec<Diagnostic>) {
    let template = String::from_utf8_lossy(data);
    let dir = scratch_dir();
    let root = dir.path();
    write_file(&root.join("pitrix.toml"), TEMPLATE_SETTINGS.as_bytes());
    write_file(&root.join("values/v.yaml.j2"), template.as_bytes());
    let quoted = yaml_quote(&template);
    let release = format!(
        "app: hello\nversion: 0.1.0\nvaluesFiles: [values/v.yaml.j2]\nvalues:\n  t: {quoted}\n  list: [{quoted}, {{k: {quoted}}}]\n"
    );
    write_file(
        &root.join("releases/host/default/r.yaml"),
        release.as_bytes(),
    );

    let (catalog, diags) = pitrix::load::load(root);
    let diags = diags.into_sorted();
    for format in [Format::Text, Format::Json] {
        let _ = diagnostics::render(&diags, root, format);
    }
    let is_template = ["{{", "{%", "{#"].iter().any(|t| template.contains(t));
    if !is_template && let Some(r) = catalog.releases.first() {
        assert_eq!(
            r.values.get("t").and_then(Value::as_str),
            Some(&*template),
            "a value without template syntax changed"
        );
    }
    (catalog, diags)
}

// ---------------------------------------------------------------------------------------------
// Target `helmignore`: the `.helmignore` matcher.

/// Input: `%%% rules` (a .helmignore) and `%%% paths` (chart-relative paths, one a line; a
/// trailing `/` marks a directory) sections; an input without sections is both. At most 64
/// paths. Properties: no panic; parsing and deciding are deterministic; every rule matched
/// directly (a literal or `*suffix` rule) matches as the port of Go's `filepath.Match` does;
/// the chart root is never ignored; and of `filepath.Match` itself, that a name matches itself
/// with its metacharacters escaped, and `*` matches exactly the names without `/`.
pub fn helmignore(data: &[u8]) {
    use pitrix::chart::helmignore_fuzzing::{decide, go_match};
    let sections = container::decode(data);
    let find = |name: &[u8]| sections.iter().find(|(p, _)| *p == name).map(|(_, c)| *c);
    let (rules, paths_text) = match (find(b"rules"), find(b"paths")) {
        (None, None) => (data, data),
        (r, p) => (r.unwrap_or_default(), p.unwrap_or_default()),
    };
    let mut paths: Vec<(&[u8], bool)> = paths_text
        .split(|&b| b == b'\n')
        .take(64)
        .map(|line| match line.strip_suffix(b"/") {
            Some(dir) => (dir, true),
            None => (line, false),
        })
        .collect();
    let roots: [(&[u8], bool); 3] = [(b"", true), (b".", true), (b"./", true)];
    paths.extend(roots);

    let first = decide(rules, &paths);
    assert_eq!(first, decide(rules, &paths), "not deterministic");
    if let Ok((ignored, matches)) = &first {
        let n = paths.len();
        for (i, (direct, reference)) in matches.iter().enumerate() {
            assert_eq!(
                direct,
                reference,
                "rule #{} on {:?}: matched directly {direct}, by filepath.Match {reference}",
                i / n,
                String::from_utf8_lossy(paths[i % n].0)
            );
        }
        assert!(
            ignored[n - 3..].iter().all(|i| !i),
            "the chart root is ignored"
        );
    }

    for (path, _) in paths.iter().take(16) {
        let mut escaped = Vec::new();
        for &b in *path {
            if b"*?[\\".contains(&b) {
                escaped.push(b'\\');
            }
            escaped.push(b);
        }
        assert_eq!(
            go_match(&escaped, path),
            Some(true),
            "{:?} does not match itself escaped",
            String::from_utf8_lossy(path)
        );
        assert_eq!(
            go_match(b"*", path),
            Some(!path.contains(&b'/')),
            "`*` against {:?}",
            String::from_utf8_lossy(path)
        );
        for rule in rules.split(|&b| b == b'\n').take(8) {
            assert_eq!(go_match(rule, path), go_match(rule, path));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target `repo_index`: the Helm repository index parser.

/// Input: an index.yaml. Properties: no panic; deterministic; what is kept is valid (named as
/// its chart, SemVer, with a URL) and sorted newest first; a filter keeps the same entries as
/// no filter does, of the charts it names, and refuses nothing no filter accepts; the kept
/// entries, written as an index again, read back the same.
pub fn repo_index(data: &[u8]) {
    use pitrix::repo::index::{self, Filter, Index};
    let summary = |r: &Result<Index, index::ParseError>| match r {
        Ok(i) => Ok((
            i.api_version.clone(),
            i.entries.clone(),
            i.names.clone(),
            i.skipped,
        )),
        Err(e) => Err(e.clone()),
    };
    let all = index::parse(data, &Filter::All);
    assert_eq!(
        summary(&all),
        summary(&index::parse(data, &Filter::All)),
        "not deterministic"
    );
    let Ok(all) = all else {
        return;
    };
    assert_eq!(all.api_version, "v1");
    for (name, versions) in &all.entries {
        assert!(all.names.contains(name), "{name} kept but not named");
        for v in versions {
            assert_eq!(&v.name, name);
            assert!(v.semver().is_some() && !v.urls.is_empty(), "{v:?} kept");
            let _ = v.digest_hex();
            assert!(all.version(name, &v.version).is_some());
        }
        assert!(
            versions.windows(2).all(|w| w[0].semver() >= w[1].semver()),
            "{name}: not newest first"
        );
    }

    let wanted: BTreeSet<String> = all
        .names
        .iter()
        .step_by(2)
        .cloned()
        .chain(["not-in-the-index".to_string()])
        .collect();
    let only = match index::parse(data, &Filter::Only(wanted.clone())) {
        Ok(only) => only,
        Err(e) => panic!("a filter refuses an index no filter accepts: {e}"),
    };
    assert_eq!(only.names, all.names);
    assert!(only.skipped <= all.skipped);
    for name in &wanted {
        assert_eq!(only.entries.get(name), all.entries.get(name), "{name}");
    }
    assert!(only.entries.keys().all(|k| wanted.contains(k)));

    let again = json!({"apiVersion": "v1", "entries": all.entries});
    let text = serde_yaml::to_string(&again).expect("an index serialises");
    match index::parse(text.as_bytes(), &Filter::All) {
        Ok(back) => {
            assert_eq!(back.entries, all.entries, "written and read back:\n{text}");
            assert_eq!(back.skipped, 0);
        }
        Err(e) => panic!("the kept entries, written again, do not read: {e}\n{text}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Target `kubeconfig`: kubeconfig files, through pitrix::apply::client (no server contacted).

/// What a planted kubeconfig credential starts with.
pub const KUBE_SECRET_MARK: &str = "Pl4ntedKube";

/// Input: a kubeconfig (YAML). It is parsed (kube's `Kubeconfig::from_yaml`); one that parses
/// is made safe to load — no exec plugins, no auth-provider commands, no file references (a
/// kubeconfig may run commands and read files; the fuzzer must not) — and its tokens and
/// passwords are replaced by planted ones; then pitrix's client is made from the file for the
/// current context and each named one, and `Clusters::connect` maps the host and a member to
/// contexts. Making a client connects to nothing. Properties: no panic; no error message shows
/// a planted credential.
pub fn kubeconfig(data: &[u8]) {
    let _ = kubeconfig_clients(data);
}

/// [`kubeconfig`], returning how making the client went for the current context and then each
/// named one.
pub fn kubeconfig_clients(data: &[u8]) -> Vec<Result<(), String>> {
    use kube::config::Kubeconfig;
    use pitrix::cluster::{ClusterOptions, Clusters};
    let text = String::from_utf8_lossy(data);
    if text.contains(KUBE_SECRET_MARK) {
        return Vec::new();
    }
    let dir = scratch_dir();
    let path = dir.path().join("kubeconfig");
    let mut contexts: Vec<String> = Vec::new();
    let file = match Kubeconfig::from_yaml(&text) {
        Err(_) => data.to_vec(),
        Ok(mut kc) => {
            contexts = kc.contexts.iter().map(|c| c.name.clone()).take(3).collect();
            for named in &mut kc.clusters {
                if let Some(c) = &mut named.cluster {
                    c.certificate_authority = None;
                }
            }
            for (i, named) in kc.auth_infos.iter_mut().enumerate() {
                let Some(a) = &mut named.auth_info else {
                    continue;
                };
                a.exec = None;
                a.token_file = None;
                a.client_certificate = None;
                a.client_key = None;
                if let Some(p) = &mut a.auth_provider {
                    p.config.remove("cmd-path");
                }
                if a.token.is_some() {
                    a.token = Some(format!("{KUBE_SECRET_MARK}{i}Token").into());
                }
                if a.password.is_some() {
                    a.password = Some(format!("{KUBE_SECRET_MARK}{i}Pass").into());
                }
            }
            match serde_yaml::to_string(&kc) {
                Ok(t) => t.into_bytes(),
                Err(_) => return Vec::new(),
            }
        }
    };
    fs::write(&path, &file).expect("write the kubeconfig");

    let check = |what: &str, e: &str| {
        assert!(
            !e.contains(KUBE_SECRET_MARK),
            "{what}: a planted credential shows in the error: {e}"
        );
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut results = Vec::new();
        let opts = |context: Option<String>| ClusterOptions {
            kubeconfig: Some(path.clone()),
            context,
            member_kubeconfig: None,
        };
        for context in std::iter::once(None).chain(contexts.iter().cloned().map(Some)) {
            let made = pitrix::cluster::client(&opts(context))
                .await
                .map_err(|e| e.to_string());
            if let Err(e) = &made {
                check("client", e);
            }
            results.push(made.map(drop));
        }
        let mut map = BTreeMap::new();
        for (cluster, context) in ["host", "edge"].iter().zip(&contexts) {
            map.insert(cluster.to_string(), context.clone());
        }
        match Clusters::connect(&opts(None), &map).await {
            Ok(clusters) => {
                for cluster in ["edge", "unmapped"] {
                    let _ = clusters.is_host(cluster);
                    if let Err(e) = clusters.client(Some(cluster)).await {
                        check("member client", &e.to_string());
                    }
                }
            }
            Err(e) => check("connect", &e.to_string()),
        }
        results
    })
}

// ---------------------------------------------------------------------------------------------
// Target `inventory`: the inventory ConfigMap, and an output directory read back for apply.

/// Input: a [`container`] of
/// * `cm/data` (the inventory ConfigMap's `data[inventory.json]`, text), `cm/gz` (its
///   `binaryData[inventory.json.gz]`, gzipped by the harness) or `cm/binary` (the same, as it
///   is): decoded as apply reads the inventory. Properties: deterministic, and what decodes
///   decodes the same from both formats written again, each key the same through its string;
/// * `object` (YAML documents): objects emitted as `pitrix compile` does (`emit::render`) and
///   read back as `apply --from` does (`Desired::from_output_dir`). Property: the same objects,
///   in the same order, with the same bodies;
/// * `out/<path>`: files of an output directory (`out/inventory.json` …) read as
///   `apply --from` does. Properties: no panic; what reads gives bodies whose digest and
///   identity are those inventory.json records; every YAML file's fast reading
///   (`emit::from_yaml`) is serde_yaml's.
pub fn inventory(data: &[u8]) {
    use pitrix::apply::{ClusterInventory, Desired, decode_inventory};
    let sections = container::decode(data);

    // The ConfigMap.
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "pitrix-inventory-c", "namespace": "kubesphere-system"}});
    let mut has_cm = false;
    for (path, content) in sections.iter().take(MAX_FILES) {
        match *path {
            b"cm/data" => cm["data"]["inventory.json"] = String::from_utf8_lossy(content).into(),
            b"cm/gz" => cm["binaryData"]["inventory.json.gz"] = BASE64.encode(gzip(content)).into(),
            b"cm/binary" => cm["binaryData"]["inventory.json.gz"] = BASE64.encode(content).into(),
            _ => continue,
        }
        has_cm = true;
    }
    let decode = |v: Value| match typed(v) {
        Some(Object::ConfigMap(cm)) => decode_inventory(&cm).map_err(|e| e.to_string()),
        _ => panic!("an inventory ConfigMap does not type"),
    };
    if has_cm {
        let first = decode(cm.clone());
        assert_eq!(first, decode(cm), "not deterministic");
        if let Ok(inventory) = first {
            let keys: Vec<&pitrix::apply::ObjectKey> = inventory.objects.keys().collect();
            for key in &keys {
                let text = serde_json::to_string(key).expect("a key serialises");
                let back: pitrix::apply::ObjectKey =
                    serde_json::from_str(&text).expect("a key reads back");
                assert_eq!(&&back, key, "{text}");
            }
            let gz = gzip(&serde_json::to_vec(&keys).expect("keys serialise"));
            let as_gz = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "i"},
                "binaryData": {"inventory.json.gz": BASE64.encode(gz)}});
            let plain: ClusterInventory = ClusterInventory {
                objects: inventory
                    .objects
                    .keys()
                    .map(|k| (k.clone(), String::new()))
                    .collect(),
            };
            assert_eq!(decode(as_gz), Ok(plain.clone()), "gzip form");
            let as_data = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "i"},
                "data": {"inventory.json": serde_json::to_string(&inventory).expect("serialises")}});
            assert_eq!(decode(as_data), Ok(inventory.clone()), "data form");
        }
    }

    // Objects, emitted and read back.
    let mut objects: Vec<Object> = Vec::new();
    for (path, content) in sections.iter().take(MAX_FILES) {
        if *path != b"object" {
            continue;
        }
        for doc in yaml_docs(&String::from_utf8_lossy(content)) {
            // Emit writes where an object's names say: a catalog's names are DNS labels.
            let r = pitrix::cluster::ObjectRef::of_json(&doc);
            let names = [Some(&r.name), r.namespace.as_ref(), r.cluster.as_ref()];
            if names
                .iter()
                .flatten()
                .all(|n| safe_path(n).is_some() && !n.contains('/'))
                && let Some(o) = typed(doc)
                && !objects.iter().any(|x| x.object_ref() == o.object_ref())
            {
                objects.push(o);
            }
        }
    }
    if !objects.is_empty() {
        objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let compiled = pitrix::compile::Compiled {
            catalog: "c".into(),
            objects,
            status: Vec::new(),
            standalone: None,
            environment: None,
            contexts: BTreeMap::new(),
            status_image: None,
            object_store: None,
        };
        let dir = scratch_dir();
        for (path, bytes) in pitrix::emit::render(&compiled) {
            write_file(&dir.path().join(path), &bytes);
        }
        let desired = match Desired::from_output_dir(dir.path()) {
            Ok(d) => d,
            Err(e) => panic!("apply --from refuses what compile emitted: {e}"),
        };
        assert_eq!(desired.objects.len(), compiled.objects.len());
        for (d, o) in desired.objects.iter().zip(&compiled.objects) {
            assert_eq!(d.r, o.object_ref());
            match d.body() {
                Ok(body) => assert!(
                    *body == o.to_json(),
                    "{} {}: read back another body",
                    d.r.kind,
                    d.r.name
                ),
                Err(e) => panic!("{} {}: {e}", d.r.kind, d.r.name),
            }
        }
    }

    // An output directory as it is.
    let out: Vec<(&[u8], &[u8])> = sections
        .iter()
        .filter_map(|(p, c)| Some((p.strip_prefix(b"out/")?, *c)))
        .collect();
    for (_, content) in &out {
        check_from_yaml(&String::from_utf8_lossy(content));
    }
    if out.is_empty() {
        return;
    }
    // Only files of the directory: inventory.json may name any path, and apply reads it.
    if let Some((_, listing)) = out.iter().find(|(p, _)| *p == b"inventory.json")
        && let Ok(listing) = serde_json::from_slice::<Value>(listing)
    {
        let paths = ["objects", "status"]
            .iter()
            .filter_map(|k| listing.get(k)?.as_array())
            .flatten()
            .filter_map(|e| e.get("path")?.as_str());
        if paths.into_iter().any(|p| safe_path(p).is_none()) {
            return;
        }
    }
    let dir = scratch_dir();
    write_catalog(dir.path(), &out);
    if let Ok(desired) = Desired::from_output_dir(dir.path()) {
        for d in &desired.objects {
            if let Ok(body) = d.body() {
                assert_eq!(
                    pitrix::emit::digest(body),
                    d.digest,
                    "{} {}",
                    d.r.kind,
                    d.r.name
                );
                assert_eq!(pitrix::cluster::ObjectRef::of_json(body), d.r);
                let applied = d.to_applied().expect("a body that reads applies");
                assert_eq!(applied["kind"], body["kind"]);
            }
        }
    }
}

/// `emit::from_yaml` reads YAML as serde_yaml does.
fn check_from_yaml(text: &str) {
    let fast = pitrix::emit::from_yaml(text);
    let plain = serde_yaml::from_str::<Value>(text);
    match (fast, plain) {
        (Ok(a), Ok(b)) => assert!(
            a == b,
            "emit::from_yaml reads another value than serde_yaml"
        ),
        (Ok(_), Err(e)) => panic!("emit::from_yaml reads what serde_yaml refuses ({e})"),
        _ => {}
    }
}
