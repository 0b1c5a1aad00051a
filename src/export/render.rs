//! The live store as catalog files: a pure function of what was read ([`Live`]), so that two
//! exports of one store give the same bytes. Everything pitrix cannot express is listed
//! ([`Export::skipped`]) with the reason, never guessed at; every secret found is replaced by
//! the name of an environment variable ([`Export::variables`]), never written.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::names;
use crate::objects::labels;

/// What export read of the store: every object of the five kinds (as the API server gives
/// them, JSON), and the packages and attachments of package storage by name.
#[derive(Debug, Default, Clone)]
pub struct Live {
    pub categories: Vec<Value>,
    pub repos: Vec<Value>,
    pub apps: Vec<Value>,
    pub versions: Vec<Value>,
    pub releases: Vec<Value>,
    /// Storage ConfigMaps: name → `binaryData.BinaryKey`.
    pub stored: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The catalog's name (pitrix.toml).
    pub name: String,
    /// Prefix of the environment variables that stand for secrets.
    pub prefix: String,
    /// Write each package as a chart directory where re-packing it loses nothing.
    pub unpack: bool,
    /// KubeSphere's S3 store, where packages and attachments were read: written as
    /// `[storage.s3]` so that the catalog compiles to S3 objects again.
    pub s3: Option<crate::catalog::S3Location>,
    /// The kubeconfig context export read the host through (`--context`), if one was named.
    pub host_context: Option<String>,
    /// The contexts of that kubeconfig: a member cluster's context is the one of its name.
    pub contexts: BTreeSet<String>,
}

/// An object left out, or exported with a difference, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    /// `Kind/name`.
    pub object: String,
    pub reason: String,
}

/// An environment variable the catalog reads instead of a secret found live.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Variable {
    pub name: String,
    /// What it must hold (never the value).
    pub holds: String,
}

#[derive(Debug, Default)]
pub struct Export {
    /// Catalog-relative path → content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Objects not exported (their reason), and exported objects that a compile will not
    /// reproduce exactly (what differs): everything the catalog cannot express.
    pub skipped: Vec<Skipped>,
    pub variables: Vec<Variable>,
}

fn name(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn label<'a>(v: &'a Value, key: &str) -> &'a str {
    labels::label(v, key).unwrap_or_default()
}

fn annotation<'a>(v: &'a Value, key: &str) -> &'a str {
    labels::annotation(v, key).unwrap_or_default()
}

fn spec_str<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get("spec")
        .and_then(|s| s.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `text` under `key`, when there is any: an empty field is left out of the file, as a
/// catalog author would.
fn insert_text(obj: &mut Map<String, Value>, key: &str, text: &str) {
    if !text.is_empty() {
        obj.insert(key.into(), text.into());
    }
}

/// Sorted by name: the order objects were listed in must not matter.
fn sorted(list: &[Value]) -> Vec<&Value> {
    let mut out: Vec<&Value> = list.iter().collect();
    out.sort_by(|a, b| name(a).cmp(name(b)));
    out
}

/// `KEY_PART`: upper case, every other character `_`.
pub fn env_part(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out.trim_matches('_').to_string()
}

/// A duration pitrix.toml and repo files accept: `0`, `2h`, `30m`, `90s`.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s <= 0 => "0".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The image type of an icon or screenshot, by its first bytes.
pub fn image_extension(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("png");
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return Some("jpg");
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if (head.starts_with("<svg") || head.starts_with("<?xml") || head.starts_with("<!--"))
        && head.contains("<svg")
    {
        return Some("svg");
    }
    None
}

fn yaml_file(v: &Value) -> Vec<u8> {
    serde_yaml::to_string(v).unwrap_or_default().into_bytes()
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

struct Ctx<'a> {
    live: &'a Live,
    opts: &'a Options,
    out: Export,
    workspace: String,
    variables: BTreeSet<String>,
}

impl Ctx<'_> {
    fn skip(&mut self, kind: &str, name: &str, reason: impl Into<String>) {
        self.out.skipped.push(Skipped {
            object: format!("{kind}/{name}"),
            reason: reason.into(),
        });
    }

    /// A fresh variable `<PREFIX>_<parts>` (suffixed `_2`, `_3`… on a clash).
    fn variable(&mut self, parts: &[&str], holds: String) -> String {
        let mut base = env_part(&self.opts.prefix);
        for p in parts {
            let p = env_part(p);
            if !p.is_empty() {
                base = format!("{base}_{p}");
            }
        }
        let mut candidate = base.clone();
        let mut n = 1;
        while self.variables.contains(&candidate) {
            n += 1;
            candidate = format!("{base}_{n}");
        }
        self.variables.insert(candidate.clone());
        self.out.variables.push(Variable {
            name: candidate.clone(),
            holds,
        });
        candidate
    }

    fn workspace_key(&self, obj: &mut Map<String, Value>, v: &Value) {
        let ws = label(v, labels::WORKSPACE);
        if !ws.is_empty() && ws != self.workspace {
            obj.insert("workspace".into(), ws.into());
        }
    }
}

/// The workspace most objects carry (ties: the first by name); `system-workspace` when none.
fn common_workspace(live: &Live) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let uploads = live
        .apps
        .iter()
        .filter(|a| label(a, labels::REPO_NAME) == labels::UPLOAD_REPO);
    for v in uploads.chain(&live.repos).chain(&live.releases) {
        let ws = label(v, labels::WORKSPACE);
        if !ws.is_empty() {
            *counts.entry(ws).or_default() += 1;
        }
    }
    let best = counts.values().copied().max().unwrap_or(0);
    counts
        .into_iter()
        .find(|(_, n)| *n == best && best > 0)
        .map(|(w, _)| w.to_string())
        .unwrap_or_else(|| labels::DEFAULT_WORKSPACE.to_string())
}

/// Renders the catalog.
pub fn render(live: &Live, opts: &Options) -> Export {
    let mut cx = Ctx {
        live,
        opts,
        out: Export::default(),
        workspace: common_workspace(live),
        variables: BTreeSet::new(),
    };
    categories(&mut cx);
    repos(&mut cx);
    let exported = apps(&mut cx);
    let clusters = releases(&mut cx, &exported);
    settings(&mut cx, &clusters);
    cx.out.skipped.sort();
    cx.out.variables.sort();
    cx.out
}

fn settings(cx: &mut Ctx, clusters: &BTreeSet<String>) {
    let mut text = String::from(
        "# Exported by `pitrix export` from a live KubeSphere App Store.\n[catalog]\n",
    );
    text.push_str(&format!("name = {}\n", toml_string(&cx.opts.name)));
    text.push_str(&format!("workspace = {}\n", toml_string(&cx.workspace)));
    text.push_str("target = \"kubesphere\"\n");
    let release_vars: Vec<&String> = cx
        .out
        .variables
        .iter()
        .filter(|v| v.holds.starts_with("value "))
        .map(|v| &v.name)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !release_vars.is_empty() {
        let list: Vec<String> = release_vars.iter().map(|v| toml_string(v)).collect();
        text.push_str(&format!("allowEnv = [{}]\n", list.join(", ")));
    }
    let mut clusters = clusters.clone();
    clusters.insert(labels::DEFAULT_CLUSTER.to_string());
    for c in &clusters {
        let key = if c
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            c.clone()
        } else {
            toml_string(c)
        };
        text.push_str(&format!("\n[clusters.{key}]\n"));
        let context = if c == labels::DEFAULT_CLUSTER {
            cx.opts.host_context.as_ref()
        } else {
            cx.opts.contexts.get(c)
        };
        match context {
            Some(context) => text.push_str(&format!("context = {}\n", toml_string(context))),
            // Only `standalone` runs anything in a member cluster itself.
            None if c != labels::DEFAULT_CLUSTER => text.push_str(&format!(
                "# The kubeconfig export read has no context named {}: set `context` here if \
                 pitrix must reach this cluster itself (target standalone).\n",
                toml_string(c)
            )),
            None => {}
        }
    }
    if let Some(s3) = &cx.opts.s3 {
        // Where, and the names of the variables holding the credentials: never credentials.
        text.push_str("\n[storage.s3]\n");
        text.push_str(&format!("endpoint = {}\n", toml_string(&s3.endpoint)));
        text.push_str(&format!("bucket = {}\n", toml_string(&s3.bucket)));
        text.push_str(&format!("region = {}\n", toml_string(&s3.region)));
        text.push_str(&format!("pathStyle = {}\n", s3.path_style));
        use crate::catalog::S3Settings;
        if s3.access_key_id_env != S3Settings::DEFAULT_ACCESS_KEY_ID_ENV {
            let name = toml_string(&s3.access_key_id_env);
            text.push_str(&format!("accessKeyIdEnv = {name}\n"));
        }
        if s3.secret_access_key_env != S3Settings::DEFAULT_SECRET_ACCESS_KEY_ENV {
            let name = toml_string(&s3.secret_access_key_env);
            text.push_str(&format!("secretAccessKeyEnv = {name}\n"));
        }
    }
    cx.out.files.insert("pitrix.toml".into(), text.into_bytes());
}

fn categories(cx: &mut Ctx) {
    for c in sorted(&cx.live.categories) {
        let n = name(c);
        if n == labels::UNCATEGORIZED {
            continue;
        }
        if names::dns1123_label(n).is_err() {
            cx.skip(
                "Category",
                n,
                "its name is no DNS-1123 label, which a catalog file name must be",
            );
            continue;
        }
        let mut obj = Map::new();
        insert_text(&mut obj, "displayName", annotation(c, labels::ALIAS_NAME));
        insert_text(&mut obj, "description", annotation(c, labels::DESCRIPTION));
        let icon = spec_str(c, "icon");
        if !icon.is_empty() {
            if icon.len() > 64
                || !icon
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch))
            {
                cx.skip(
                    "Category",
                    n,
                    "its icon is no icon name of the console's set (an image or URL?): exported without it",
                );
            } else {
                obj.insert("icon".into(), icon.into());
            }
        }
        cx.out.files.insert(
            format!("categories/{n}.yaml"),
            yaml_file(&Value::Object(obj)),
        );
    }
}

fn repos(cx: &mut Ctx) {
    for r in sorted(&cx.live.repos) {
        let n = name(r).to_string();
        if n == labels::UPLOAD_REPO {
            continue;
        }
        if names::dns1123_label(&n).is_err() {
            cx.skip(
                "Repo",
                &n,
                "its name is no DNS-1123 label, which a catalog file name must be",
            );
            continue;
        }
        let url = spec_str(r, "url");
        if url.is_empty() {
            cx.skip("Repo", &n, "it has no spec.url");
            continue;
        }
        let mut obj = Map::new();
        obj.insert("url".into(), url.into());
        let period = r
            .pointer("/spec/syncPeriod")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        obj.insert("syncPeriod".into(), duration(period).into());
        insert_text(&mut obj, "description", spec_str(r, "description"));
        cx.workspace_key(&mut obj, r);
        let cred = r
            .pointer("/spec/credential")
            .cloned()
            .unwrap_or(Value::Null);
        let field = |k: &str| {
            cred.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if !field("username").is_empty() || !field("password").is_empty() {
            let user = cx.variable(&[&n, "username"], format!("the user name of repo {n}"));
            let pass = cx.variable(&[&n, "password"], format!("the password of repo {n}"));
            let mut c = Map::new();
            c.insert("usernameEnv".into(), user.into());
            c.insert("passwordEnv".into(), pass.into());
            obj.insert("credentials".into(), Value::Object(c));
        }
        let tls: Vec<&str> = ["certFile", "keyFile", "caFile"]
            .into_iter()
            .filter(|k| !field(k).is_empty())
            .collect();
        if !tls.is_empty() || cred.get("insecureSkipTLSVerify").is_some() {
            cx.skip(
                "Repo",
                &n,
                format!(
                    "its TLS settings ({}) are no catalog key: exported without them (apply leaves them as they are)",
                    tls.iter()
                        .copied()
                        .chain(cred.get("insecureSkipTLSVerify").map(|_| "insecureSkipTLSVerify"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        cx.out
            .files
            .insert(format!("repos/{n}.yaml"), yaml_file(&Value::Object(obj)));
    }
}

/// A base64 image as live (`spec.icon`): its bytes and extension, when re-encoding gives the
/// same text (what pitrix will write).
fn decoded_image(text: &str) -> Option<(Vec<u8>, &'static str)> {
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(text.trim()).ok()?;
    if engine.encode(&bytes) != text {
        return None;
    }
    let ext = image_extension(&bytes)?;
    Some((bytes, ext))
}

fn maintainers(v: &Value) -> Vec<Value> {
    v.pointer("/spec/maintainer")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|m| {
                    let mut o = Map::new();
                    for k in ["name", "email", "url"] {
                        if let Some(s) = m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
                        {
                            o.insert(k.into(), s.into());
                        }
                    }
                    Value::Object(o)
                })
                .filter(|m| m.as_object().is_some_and(|o| !o.is_empty()))
                .collect()
        })
        .unwrap_or_default()
}

/// SemVer order where both parse (a leading `v` allowed), else by text.
/// The catalog's version order (`load::version::order`): SemVer first, then by text.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let parse = |s: &str| semver::Version::parse(s.strip_prefix('v').unwrap_or(s)).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Why a package is kept as its `.tgz` rather than written as a chart directory
/// ([`unpacked`]): what would not come back the same.
#[derive(Debug, thiserror::Error)]
pub enum NotUnpacked {
    #[error("pitrix cannot read it as a chart archive ({0})")]
    Unreadable(crate::chart::ChartError),
    #[error("it holds {0}, which would leave files out when the directory is packed again")]
    HelmIgnore(String),
    #[error("its Chart.yaml has no name")]
    NoName,
    #[error(
        "pitrix's packer gives other files back (the archive's root is not the chart's name, or its files are not as Helm packs them)"
    )]
    OtherFiles,
    #[error("packed again it gives other bytes, and the package in S3 is never replaced")]
    OtherBytes,
}

/// The files of a package, when writing them as a chart directory loses nothing: pitrix's
/// packer gives the same chart (name and files) back, and no .helmignore drops any of them —
/// and, where packages are kept in S3 (`in_s3`), the very same bytes, since a stored object
/// is never replaced (a ConfigMap package with the same files is kept by `apply`). Else why not.
pub fn unpacked(package: &[u8], in_s3: bool) -> Result<crate::chart::ChartFiles, NotUnpacked> {
    let (_, files) = crate::chart::read_archive(package, &crate::chart::Limits::default())
        .map_err(NotUnpacked::Unreadable)?;
    if let Some(ignore) = files.files.keys().find(|p| p.ends_with(".helmignore")) {
        return Err(NotUnpacked::HelmIgnore(ignore.clone()));
    }
    let name = files
        .get("Chart.yaml")
        .and_then(|text| serde_yaml::from_slice::<Value>(text).ok())
        .and_then(|chart| chart.get("name")?.as_str().map(str::to_string))
        .ok_or(NotUnpacked::NoName)?;
    let repacked = crate::chart::pack(&name, &files);
    if !crate::chart::same_chart(&repacked, package) {
        return Err(NotUnpacked::OtherFiles);
    }
    if in_s3 && repacked != package {
        return Err(NotUnpacked::OtherBytes);
    }
    Ok(files)
}

/// Chart.yaml of a package, as JSON.
fn chart_meta(package: &[u8]) -> Value {
    crate::chart::read_archive(package, &crate::chart::Limits::default())
        .ok()
        .and_then(|(_, files)| {
            let text = files.get("Chart.yaml")?;
            serde_yaml::from_slice::<Value>(text).ok()
        })
        .unwrap_or(Value::Null)
}

fn meta_str<'a>(chart: &'a Value, key: &str) -> &'a str {
    chart.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn short(s: &str) -> String {
    match s.char_indices().nth(48) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What a compile of the exported app writes differently from the live objects (the rules of
/// `compile::app`), each a note: adopting changes it. `versions`: (live version, state,
/// Chart.yaml), oldest first.
fn predict(
    cx: &mut Ctx,
    a: &Value,
    app_file: &Map<String, Value>,
    versions: &[(&Value, String, Value)],
) {
    let app = name(a).to_string();
    let file = |k: &str| {
        app_file
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let Some(latest) = versions
        .iter()
        .rev()
        .find(|(_, state, _)| state == "active")
        .or(versions.last())
    else {
        return;
    };
    let chart = &latest.2;
    let or_chart = |own: String, key: &str| {
        if own.is_empty() {
            meta_str(chart, key).to_string()
        } else {
            own
        }
    };
    let display = match file("displayName") {
        d if d.is_empty() => app.clone(),
        d => d,
    };
    let description = or_chart(file("description"), "description");
    let home = or_chart(file("home"), "home");
    let mut notes: Vec<(String, String, String, String)> = Vec::new();
    let mut check = |kind: &str, name: &str, what: &str, live: &str, compiled: &str| {
        if live != compiled && !compiled.is_empty() {
            notes.push((
                kind.to_string(),
                name.to_string(),
                what.to_string(),
                format!(
                    "adopting changes {what} from `{}` to `{}`",
                    short(live),
                    short(compiled)
                ),
            ));
        }
    };
    check(
        "Application",
        &app,
        "alias-name",
        annotation(a, labels::ALIAS_NAME),
        &display,
    );
    check(
        "Application",
        &app,
        "description",
        annotation(a, labels::DESCRIPTION),
        &description,
    );
    check(
        "Application",
        &app,
        "latest-app-version",
        annotation(a, labels::LATEST_APP_VERSION),
        spec_str(latest.0, "versionName"),
    );
    check(
        "Application",
        &app,
        "spec.appHome",
        spec_str(a, "appHome"),
        &home,
    );
    if !app_file.contains_key("icon") {
        check(
            "Application",
            &app,
            "spec.icon",
            spec_str(a, "icon"),
            meta_str(chart, "icon"),
        );
    }
    let abstraction = match file("abstraction") {
        s if s.is_empty() => description.clone(),
        s => s,
    };
    check(
        "Application",
        &app,
        "spec.abstraction",
        spec_str(a, "abstraction"),
        &abstraction,
    );
    for (v, _, vchart) in versions {
        let id = name(v);
        let vdesc = match meta_str(vchart, "description") {
            "" => description.clone(),
            d => d.to_string(),
        };
        let vhome = match meta_str(vchart, "home") {
            "" => home.clone(),
            h => h.to_string(),
        };
        check(
            "ApplicationVersion",
            id,
            "alias-name",
            annotation(v, labels::ALIAS_NAME),
            &display,
        );
        check(
            "ApplicationVersion",
            id,
            "description",
            annotation(v, labels::DESCRIPTION),
            &vdesc,
        );
        check(
            "ApplicationVersion",
            id,
            "spec.appHome",
            spec_str(v, "appHome"),
            &vhome,
        );
        let icon = meta_str(vchart, "icon");
        if icon.starts_with("http") {
            check(
                "ApplicationVersion",
                id,
                "spec.icon",
                spec_str(v, "icon"),
                icon,
            );
        }
    }
    for (kind, name, _, why) in notes {
        cx.skip(&kind, &name, why);
    }
}

/// Uploaded apps; returns the version IDs exported, by app.
fn apps(cx: &mut Ctx) -> BTreeMap<String, BTreeSet<String>> {
    let mut exported = BTreeMap::new();
    // Attachment IDs written so far: one ID names one screenshot in a catalog.
    let mut attachment_ids: BTreeSet<String> = BTreeSet::new();
    let uploads: Vec<&Value> = sorted(&cx.live.apps)
        .into_iter()
        .filter(|a| label(a, labels::REPO_NAME) == labels::UPLOAD_REPO)
        .collect();
    for a in uploads {
        let app = name(a).to_string();
        if names::dns1123_label(&app).is_err() {
            cx.skip(
                "Application",
                &app,
                "its name is no DNS-1123 label, which an app directory must be",
            );
            continue;
        }
        let app_type = match spec_str(a, "appType") {
            "" => label(a, labels::APP_TYPE),
            t => t,
        };
        let yaml_app = app_type == "yaml";
        if !app_type.is_empty() && app_type != "helm" && !yaml_app {
            cx.skip(
                "Application",
                &app,
                format!("a `{app_type}` app: pitrix knows Helm and YAML apps"),
            );
            continue;
        }
        let dir = format!("apps/{app}");
        let mut versions: Vec<&Value> = sorted(&cx.live.versions)
            .into_iter()
            .filter(|v| {
                label(v, labels::APP_ID) == app
                    && label(v, labels::REPO_NAME) == labels::UPLOAD_REPO
            })
            .collect();
        versions
            .sort_by(|x, y| version_order(spec_str(x, "versionName"), spec_str(y, "versionName")));
        let mut intents = Map::new();
        let mut ids = BTreeSet::new();
        let mut newest: Option<&Value> = None;
        let mut kept: Vec<(&Value, String, Value)> = Vec::new();
        for v in versions {
            let id = name(v);
            let version = spec_str(v, "versionName");
            if version.is_empty() || version.contains('/') || version.starts_with('.') {
                cx.skip(
                    "ApplicationVersion",
                    id,
                    format!("its version name `{version}` cannot name a file"),
                );
                continue;
            }
            if names::version_id(&app, version) != id {
                cx.skip(
                    "ApplicationVersion",
                    id,
                    format!(
                        "its name is not KubeSphere's ID for app {app} version {version} (`{}`)",
                        names::version_id(&app, version)
                    ),
                );
                continue;
            }
            let Some(package) = cx.live.stored.get(id) else {
                cx.skip(
                    "ApplicationVersion",
                    id,
                    if cx.opts.s3.is_some() {
                        "it has no package: neither S3 nor package storage's ConfigMaps hold one of that name"
                    } else {
                        "it has no package: no storage ConfigMap of that name (packages in S3? pass --s3-endpoint and --s3-bucket)"
                    },
                );
                continue;
            };
            if yaml_app {
                // load::version::load_manifests stores one file's text as it is, ending in
                // a newline.
                let text = std::str::from_utf8(package).ok();
                match text.filter(|t| t.ends_with('\n') && crate::yaml::parse_stream(t).is_ok()) {
                    Some(_) => {
                        cx.out
                            .files
                            .insert(format!("{dir}/{version}/manifests.yaml"), package.clone());
                    }
                    None => {
                        cx.skip(
                            "ApplicationVersion",
                            id,
                            "its stored manifests are no UTF-8 YAML ending in a newline, which a catalog cannot store byte for byte",
                        );
                        continue;
                    }
                }
            } else {
                match cx
                    .opts
                    .unpack
                    .then(|| unpacked(package, cx.opts.s3.is_some()))
                {
                    Some(Ok(files)) => {
                        for (path, bytes) in files.files {
                            cx.out
                                .files
                                .insert(format!("{dir}/{version}/{path}"), bytes);
                        }
                    }
                    unpack => {
                        if let Some(Err(why)) = unpack {
                            cx.skip(
                                "ApplicationVersion",
                                id,
                                format!("--unpack: kept as the stored {version}.tgz: {why}"),
                            );
                        }
                        cx.out
                            .files
                            .insert(format!("{dir}/{version}.tgz"), package.clone());
                    }
                }
            }
            ids.insert(id.to_string());
            newest = Some(v);
            let review = match v.pointer("/status/state").and_then(Value::as_str) {
                Some(s) if !s.is_empty() => s.to_string(),
                _ => "draft".to_string(),
            };
            kept.push((v, review, chart_meta(package)));
            let mut intent = Map::new();
            let state = v
                .pointer("/status/state")
                .and_then(Value::as_str)
                .unwrap_or("");
            intent.insert(
                "state".into(),
                if state.is_empty() { "draft" } else { state }.into(),
            );
            if let Some(m) = v
                .pointer("/status/message")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
            {
                intent.insert("message".into(), m.into());
            }
            intents.insert(version.to_string(), Value::Object(intent));
        }
        if ids.is_empty() {
            cx.skip(
                "Application",
                &app,
                "none of its versions has a package to export",
            );
            continue;
        }

        let mut obj = Map::new();
        insert_text(&mut obj, "displayName", annotation(a, labels::ALIAS_NAME));
        insert_text(&mut obj, "description", annotation(a, labels::DESCRIPTION));
        insert_text(&mut obj, "abstraction", spec_str(a, "abstraction"));
        insert_text(&mut obj, "home", spec_str(a, "appHome"));
        let category = label(a, labels::APP_CATEGORY_NAME);
        if !category.is_empty() && category != labels::UNCATEGORIZED {
            obj.insert("category".into(), category.into());
        }
        let icon = spec_str(a, "icon");
        if !icon.is_empty() && !icon.starts_with("http://") && !icon.starts_with("https://") {
            match decoded_image(icon) {
                Some((bytes, ext)) => {
                    let file = format!("icon.{ext}");
                    cx.out.files.insert(format!("{dir}/{file}"), bytes);
                    obj.insert("icon".into(), file.into());
                }
                None => cx.skip(
                    "Application",
                    &app,
                    "its icon is neither a URL nor a PNG, JPEG or SVG image in base64 (an attachment id?): exported without it",
                ),
            }
        }
        let attachments: Vec<String> = a
            .pointer("/spec/attachments")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut shots = Vec::new();
        let mut renamed = false;
        for id in &attachments {
            match cx.live.stored.get(id).and_then(|b| image_extension(b).map(|e| (b, e))) {
                Some((bytes, ext)) => {
                    let file = format!("screenshots/{id}.{ext}");
                    cx.out.files.insert(format!("{dir}/{file}"), bytes.clone());
                    // The ID it has: adopting keeps it (spec.attachments unchanged, no copy
                    // stored). One the catalog cannot name is left to the content rule.
                    if crate::names::attachment_id(id).is_ok() && attachment_ids.insert(id.clone())
                    {
                        shots.push(serde_json::json!({"file": file, "id": id}));
                    } else {
                        renamed = true;
                        shots.push(Value::from(file));
                    }
                }
                None => cx.skip(
                    "Application",
                    &app,
                    format!("its attachment {id} is not stored as a PNG, JPEG or SVG image: exported without it"),
                ),
            }
        }
        if renamed {
            cx.skip(
                "Application",
                &app,
                "an attachment ID that is not KubeSphere 4's `<field>-att-<5>`, or that another screenshot has too: that screenshot gets a content-derived ID, and adopting changes spec.attachments (no release is affected)",
            );
        }
        if !shots.is_empty() {
            obj.insert("screenshots".into(), Value::Array(shots));
        }
        obj.insert("type".into(), if yaml_app { "yaml" } else { "helm" }.into());
        if let Some(m) = newest.map(maintainers).filter(|m| !m.is_empty()) {
            obj.insert("maintainers".into(), Value::Array(m));
        }
        cx.workspace_key(&mut obj, a);
        let state = a
            .pointer("/status/state")
            .and_then(Value::as_str)
            .unwrap_or("");
        obj.insert(
            "state".into(),
            if state.is_empty() { "draft" } else { state }.into(),
        );
        obj.insert("versions".into(), Value::Object(intents));
        predict(cx, a, &obj, &kept);
        cx.out
            .files
            .insert(format!("{dir}/app.yaml"), yaml_file(&Value::Object(obj)));
        exported.insert(app, ids);
    }
    exported
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

fn secret_looking(key: &str, value: &Value) -> bool {
    let text = match value {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return false,
    };
    crate::redact::is_secret_key(key) || crate::redact::text(&text) != text
}

/// Replaces secret-looking scalars under `value` by `{{ env.X }}` and escapes strings that
/// would read as templates; `retyped` is set when a non-string secret becomes a string.
fn template_values(
    cx: &mut Ctx,
    release: &str,
    path: &mut Vec<String>,
    value: &mut Value,
    retyped: &mut bool,
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                path.push(k.clone());
                if secret_looking(k, v) {
                    if !v.is_string() {
                        *retyped = true;
                    }
                    let parts: Vec<&str> = std::iter::once(release)
                        .chain(path.iter().map(String::as_str))
                        .collect();
                    let var = cx.variable(
                        &parts,
                        format!("value {} of release {release}", path.join(".")),
                    );
                    *v = Value::String(format!("{{{{ env.{var} }}}}"));
                } else {
                    template_values(cx, release, path, v, retyped);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                let key = path.iter().rev().nth(1).cloned().unwrap_or_default();
                if secret_looking(&key, v) {
                    if !v.is_string() {
                        *retyped = true;
                    }
                    let parts: Vec<&str> = std::iter::once(release)
                        .chain(path.iter().map(String::as_str))
                        .collect();
                    let var = cx.variable(
                        &parts,
                        format!("value {} of release {release}", path.join(".")),
                    );
                    *v = Value::String(format!("{{{{ env.{var} }}}}"));
                } else {
                    template_values(cx, release, path, v, retyped);
                }
                path.pop();
            }
        }
        Value::String(s) if is_template(s) => {
            *s = format!("{{% raw %}}{s}{{% endraw %}}");
        }
        _ => {}
    }
}

fn releases(cx: &mut Ctx, exported: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut clusters = BTreeSet::new();
    let versions: BTreeMap<&str, &Value> = cx.live.versions.iter().map(|v| (name(v), v)).collect();
    let apps: BTreeMap<&str, &Value> = cx.live.apps.iter().map(|a| (name(a), a)).collect();
    for r in sorted(&cx.live.releases) {
        let rel = name(r).to_string();
        let cluster = match label(r, labels::CLUSTER) {
            "" => labels::DEFAULT_CLUSTER,
            c => c,
        }
        .to_string();
        let namespace = match label(r, labels::NAMESPACE) {
            "" => labels::DEFAULT_NAMESPACE,
            n => n,
        }
        .to_string();
        for part in [&cluster, &namespace, &rel] {
            if names::dns1123_label(part).is_err() {
                cx.skip(
                    "ApplicationRelease",
                    &rel,
                    format!("`{part}` cannot name a catalog directory or file"),
                );
            }
        }
        if [&cluster, &namespace, &rel]
            .iter()
            .any(|p| names::dns1123_label(p).is_err())
        {
            continue;
        }
        let app_type = spec_str(r, "appType");
        let yaml_release = app_type == "yaml";
        if app_type != "helm" && !yaml_release {
            cx.skip(
                "ApplicationRelease",
                &rel,
                format!("a `{app_type}` release: pitrix knows Helm and YAML releases"),
            );
            continue;
        }
        let app_id = spec_str(r, "appID");
        let version_id = spec_str(r, "appVersionID");
        let Some(version) = versions.get(version_id) else {
            cx.skip(
                "ApplicationRelease",
                &rel,
                format!("its version {version_id} no longer exists"),
            );
            continue;
        };
        let version_name = spec_str(version, "versionName");
        let repo = label(version, labels::REPO_NAME);
        let app_ref = if repo == labels::UPLOAD_REPO {
            if !exported
                .get(app_id)
                .is_some_and(|ids| ids.contains(version_id))
            {
                cx.skip(
                    "ApplicationRelease",
                    &rel,
                    format!("its app version {version_id} was not exported (see above)"),
                );
                continue;
            }
            app_id.to_string()
        } else {
            let app = apps.get(app_id);
            let chart = app.into_iter().flat_map(|a| {
                [
                    annotation(a, labels::APP_ORIGINAL_NAME),
                    annotation(a, labels::ALIAS_NAME),
                ]
            });
            let found = chart.filter(|c| !c.is_empty()).find(|c| {
                names::repo_app_id(repo, c) == app_id
                    && names::version_id(app_id, version_name) == version_id
            });
            match found {
                Some(chart) if !repo.is_empty() => format!("{repo}/{chart}"),
                _ => {
                    cx.skip(
                        "ApplicationRelease",
                        &rel,
                        format!("the chart of app {app_id} (repo `{repo}`) cannot be told from the live objects"),
                    );
                    continue;
                }
            }
        };

        let mut obj = Map::new();
        obj.insert("app".into(), app_ref.into());
        obj.insert("version".into(), version_name.into());
        cx.workspace_key(&mut obj, r);
        insert_text(&mut obj, "creator", annotation(r, labels::CREATOR));
        let encoded = spec_str(r, "values");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).into_owned();
        if yaml_release {
            // A YAML release installs its version's manifests, placed in its namespace.
            let compiled = cx
                .live
                .stored
                .get(version_id)
                .map(|p| crate::compile::manifests_in_namespace(p, &namespace))
                .unwrap_or_default();
            if compiled.as_bytes() != raw.as_slice() {
                cx.skip(
                    "ApplicationRelease",
                    &rel,
                    "its manifests are not its version's as pitrix places them in the namespace: adopting it changes spec.values (KubeSphere applies them again)",
                );
            }
        } else if !text.trim().is_empty() {
            match serde_yaml::from_str::<Value>(&text) {
                Ok(Value::Object(mut map)) => {
                    let canonical =
                        serde_yaml::to_string(&Value::Object(map.clone())).unwrap_or_default();
                    if map.is_empty() || canonical != text {
                        cx.skip(
                            "ApplicationRelease",
                            &rel,
                            "its values are written as pitrix writes YAML (same values, other bytes): adopting it changes spec.values, and KubeSphere upgrades the release once",
                        );
                    }
                    let mut retyped = false;
                    let mut value = Value::Object(std::mem::take(&mut map));
                    template_values(cx, &rel, &mut Vec::new(), &mut value, &mut retyped);
                    if retyped {
                        cx.skip(
                            "ApplicationRelease",
                            &rel,
                            "a secret value that is no string becomes one through its `{{ env.X }}` template: adopting it changes spec.values",
                        );
                    }
                    if value.as_object().is_some_and(|m| !m.is_empty()) {
                        obj.insert("values".into(), value);
                    }
                }
                _ => {
                    cx.skip(
                        "ApplicationRelease",
                        &rel,
                        "its values are no YAML mapping: exported without values (adopting would change them)",
                    );
                }
            }
        }
        clusters.insert(cluster.clone());
        cx.out.files.insert(
            format!("releases/{cluster}/{namespace}/{rel}.yaml"),
            yaml_file(&Value::Object(obj)),
        );
    }
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(version: &str) -> Vec<u8> {
        let mut files = crate::chart::ChartFiles::new();
        files
            .insert(
                "Chart.yaml",
                format!("apiVersion: v2\nname: demo\nversion: {version}\ndescription: Demo.\n")
                    .into_bytes(),
            )
            .unwrap();
        crate::chart::pack("demo", &files)
    }

    fn store() -> Live {
        let values = "replicaCount: 2 # two\ndb:\n  password: hunter2-secret\nnote: '{{ not a template }}'\n";
        let mut live = Live {
            categories: vec![
                json!({"metadata": {"name": "kubesphere-app-uncategorized"}, "spec": {}}),
                json!({"metadata": {"name": "db", "annotations": {"kubesphere.io/alias-name": "Databases"}}, "spec": {"icon": "database"}}),
            ],
            repos: vec![json!({
                "metadata": {"name": "internal", "labels": {"kubesphere.io/workspace": "ws"}},
                "spec": {"url": "https://charts.example/", "syncPeriod": 3600,
                         "credential": {"username": "ci", "password": "repo-secret-1"}},
            })],
            apps: vec![
                json!({"metadata": {"name": "demo-abcde", "labels": {
                    "application.kubesphere.io/repo-name": "upload",
                    "application.kubesphere.io/app-category-name": "db",
                    "kubesphere.io/workspace": "ws"},
                    "annotations": {"kubesphere.io/alias-name": "Demo", "kubesphere.io/description": "Demo.",
                        "application.kubesphere.io/latest-app-version": "1.0.0"}},
                    "spec": {"appType": "helm", "abstraction": "Demo."},
                    "status": {"state": "active"}}),
                json!({"metadata": {"name": "internal-redis", "labels": {"application.kubesphere.io/repo-name": "internal"},
                    "annotations": {"kubesphere.io/alias-name": "redis"}}, "spec": {"appType": "helm"}}),
            ],
            versions: vec![
                json!({"metadata": {"name": "demo-abcde-1.0.0", "labels": {
                    "application.kubesphere.io/repo-name": "upload", "application.kubesphere.io/app-id": "demo-abcde"},
                    "annotations": {"kubesphere.io/alias-name": "Demo", "kubesphere.io/description": "Demo."}},
                    "spec": {"versionName": "1.0.0"}, "status": {"state": "active"}}),
                json!({"metadata": {"name": "demo-abcde-0.9.0", "labels": {
                    "application.kubesphere.io/repo-name": "upload", "application.kubesphere.io/app-id": "demo-abcde"}},
                    "spec": {"versionName": "0.9.0"}, "status": {"state": "suspended", "message": "old"}}),
                json!({"metadata": {"name": "demo-abcde-0.1.0", "labels": {
                    "application.kubesphere.io/repo-name": "upload", "application.kubesphere.io/app-id": "demo-abcde"}},
                    "spec": {"versionName": "0.1.0"}, "status": {"state": "draft"}}),
                json!({"metadata": {"name": "internal-redis-7.0.0", "labels": {
                    "application.kubesphere.io/repo-name": "internal", "application.kubesphere.io/app-id": "internal-redis"}},
                    "spec": {"versionName": "7.0.0"}}),
            ],
            releases: vec![
                json!({"metadata": {"name": "shop-db", "labels": {
                    "kubesphere.io/cluster": "edge", "kubesphere.io/namespace": "shop", "kubesphere.io/workspace": "ws"},
                    "annotations": {"kubesphere.io/creator": "admin"}},
                    "spec": {"appID": "demo-abcde", "appVersionID": "demo-abcde-1.0.0", "appType": "helm",
                        "values": base64::engine::general_purpose::STANDARD.encode(values)}}),
                json!({"metadata": {"name": "cache", "labels": {"kubesphere.io/namespace": "shop"}},
                    "spec": {"appID": "internal-redis", "appVersionID": "internal-redis-7.0.0", "appType": "helm"}}),
                json!({"metadata": {"name": "gone"},
                    "spec": {"appID": "demo-abcde", "appVersionID": "demo-abcde-0.0.1", "appType": "helm"}}),
            ],
            stored: BTreeMap::new(),
        };
        live.stored
            .insert("demo-abcde-1.0.0".into(), package("1.0.0"));
        live.stored
            .insert("demo-abcde-0.9.0".into(), package("0.9.0"));
        live
    }

    fn opts() -> Options {
        Options {
            name: "acme".into(),
            prefix: "ACME".into(),
            unpack: false,
            s3: None,
            host_context: None,
            contexts: BTreeSet::new(),
        }
    }

    #[test]
    fn unpack_writes_chart_directories_where_repacking_is_lossless() {
        let live = store();
        let e = render(
            &live,
            &Options {
                unpack: true,
                ..opts()
            },
        );
        assert!(e.files.contains_key("apps/demo-abcde/1.0.0/Chart.yaml"));
        assert!(!e.files.contains_key("apps/demo-abcde/1.0.0.tgz"));
        let mut files = crate::chart::ChartFiles::new();
        files
            .insert(
                "Chart.yaml",
                b"apiVersion: v2\nname: demo\nversion: 1.0.0\n".to_vec(),
            )
            .unwrap();
        files.insert(".helmignore", b"*.bak\n".to_vec()).unwrap();
        let why = unpacked(&crate::chart::pack("demo", &files), false)
            .unwrap_err()
            .to_string();
        assert!(why.contains(".helmignore"), "{why}");
        files.files.remove(".helmignore");
        assert!(unpacked(&crate::chart::pack("demo", &files), false).is_ok());
        assert!(unpacked(&crate::chart::pack("other-root", &files), false).is_err());
    }

    #[test]
    fn screenshots_keep_the_attachment_ids_they_have() {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-a-png";
        let mut live = store();
        live.apps[0]["spec"]["attachments"] = json!(["screenshot-att-k3x9p", "Shot_1-att-abcde"]);
        live.stored
            .insert("screenshot-att-k3x9p".into(), PNG.to_vec());
        live.stored.insert("Shot_1-att-abcde".into(), PNG.to_vec());
        let e = render(&live, &opts());
        let app: Value = serde_yaml::from_slice(&e.files["apps/demo-abcde/app.yaml"]).unwrap();
        // The live ID, where the catalog can name it; else the file alone (a derived ID).
        assert_eq!(
            app["screenshots"],
            json!([
                {"file": "screenshots/screenshot-att-k3x9p.png", "id": "screenshot-att-k3x9p"},
                "screenshots/Shot_1-att-abcde.png",
            ])
        );
        assert_eq!(
            e.files["apps/demo-abcde/screenshots/screenshot-att-k3x9p.png"],
            PNG
        );
        let notes: Vec<&Skipped> = e
            .skipped
            .iter()
            .filter(|s| s.object == "Application/demo-abcde")
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].reason.contains("content-derived"), "{notes:?}");
        // Both parse back as app.yaml's entries, the first with its ID.
        let node = crate::yaml::parse(&file(&e, "apps/demo-abcde/app.yaml")).unwrap();
        let parsed: crate::catalog::AppFile = crate::yaml::from_node(&node).unwrap();
        let ids: Vec<Option<&str>> = parsed
            .screenshots
            .iter()
            .map(|s| s.id.as_ref().map(|i| i.value.as_str()))
            .collect();
        assert_eq!(ids, [Some("screenshot-att-k3x9p"), None]);

        // Another app naming the same ID (not the console's doing): that one is left to the
        // content rule, so that the catalog validates.
        let mut other = live.apps[0].clone();
        other["metadata"]["name"] = "other-abcde".into();
        other["spec"]["attachments"] = json!(["screenshot-att-k3x9p"]);
        live.apps.push(other);
        let mut version = live.versions[0].clone();
        version["metadata"]["name"] = "other-abcde-1.0.0".into();
        version["metadata"]["labels"]["application.kubesphere.io/app-id"] = "other-abcde".into();
        live.versions.push(version);
        live.stored
            .insert("other-abcde-1.0.0".into(), package("1.0.0"));
        let e = render(&live, &opts());
        let other: Value = serde_yaml::from_slice(&e.files["apps/other-abcde/app.yaml"]).unwrap();
        assert_eq!(
            other["screenshots"],
            json!(["screenshots/screenshot-att-k3x9p.png"])
        );
    }

    fn file(e: &Export, path: &str) -> String {
        String::from_utf8(e.files[path].clone()).unwrap_or_else(|_| panic!("{path} is text"))
    }

    #[test]
    fn a_store_becomes_catalog_files_without_its_secrets() {
        let live = store();
        let e = render(&live, &opts());
        let paths: Vec<&str> = e.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "apps/demo-abcde/0.9.0.tgz",
                "apps/demo-abcde/1.0.0.tgz",
                "apps/demo-abcde/app.yaml",
                "categories/db.yaml",
                "pitrix.toml",
                "releases/edge/shop/shop-db.yaml",
                "releases/host/shop/cache.yaml",
                "repos/internal.yaml",
            ]
        );
        assert_eq!(
            e.files["apps/demo-abcde/1.0.0.tgz"],
            live.stored["demo-abcde-1.0.0"]
        );
        for (path, bytes) in &e.files {
            for secret in ["hunter2-secret", "repo-secret-1"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{path}"
                );
            }
        }
        let repo = file(&e, "repos/internal.yaml");
        assert!(repo.contains("syncPeriod: 1h"), "{repo}");
        assert!(
            repo.contains("usernameEnv: ACME_INTERNAL_USERNAME"),
            "{repo}"
        );
        assert!(
            !repo.contains("workspace"),
            "the default workspace is implied: {repo}"
        );
        let release = file(&e, "releases/edge/shop/shop-db.yaml");
        assert!(
            release.contains("password: '{{ env.ACME_SHOP_DB_DB_PASSWORD }}'"),
            "{release}"
        );
        assert!(
            release.contains("{% raw %}{{ not a template }}{% endraw %}"),
            "{release}"
        );
        assert!(release.contains("creator: admin"), "{release}");
        let cache = file(&e, "releases/host/shop/cache.yaml");
        assert!(cache.contains("app: internal/redis"), "{cache}");
        let app = file(&e, "apps/demo-abcde/app.yaml");
        assert!(app.contains("category: db"), "{app}");
        assert!(
            app.contains("0.9.0:\n    state: suspended\n    message: old"),
            "{app}"
        );
        let settings = file(&e, "pitrix.toml");
        assert!(settings.contains("workspace = \"ws\""), "{settings}");
        assert!(
            settings.contains("allowEnv = [\"ACME_SHOP_DB_DB_PASSWORD\"]"),
            "{settings}"
        );
        assert!(settings.contains("[clusters.edge]") && settings.contains("[clusters.host]"));
        let names: Vec<&str> = e.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ACME_INTERNAL_PASSWORD",
                "ACME_INTERNAL_USERNAME",
                "ACME_SHOP_DB_DB_PASSWORD"
            ]
        );
        let skipped: Vec<String> = e
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.object, s.reason))
            .collect();
        let text = skipped.join("\n");
        assert!(
            text.contains("ApplicationVersion/demo-abcde-0.1.0: it has no package"),
            "{text}"
        );
        assert!(
            text.contains("ApplicationRelease/gone: its version demo-abcde-0.0.1 no longer exists"),
            "{text}"
        );
        assert!(
            text.contains(
                "ApplicationRelease/shop-db: its values are written as pitrix writes YAML"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_same_store_listed_in_another_order_gives_the_same_bytes() {
        let live = store();
        let first = render(&live, &opts());
        let mut shuffled = live.clone();
        shuffled.apps.reverse();
        shuffled.versions.reverse();
        shuffled.releases.reverse();
        shuffled.categories.reverse();
        let second = render(&shuffled, &opts());
        assert_eq!(first.files, second.files);
        assert_eq!(first.skipped, second.skipped);
    }

    #[test]
    fn a_yaml_app_is_exported_as_its_manifests() {
        let manifests = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n";
        let placed = crate::compile::manifests_in_namespace(manifests.as_bytes(), "web");
        let live = Live {
            apps: vec![json!({"metadata": {"name": "hello", "labels": {
                "application.kubesphere.io/repo-name": "upload"}},
                "spec": {"appType": "yaml"}, "status": {"state": "active"}})],
            versions: vec![json!({"metadata": {"name": "hello-1.0.0", "labels": {
                "application.kubesphere.io/repo-name": "upload", "application.kubesphere.io/app-id": "hello"}},
                "spec": {"versionName": "1.0.0"}, "status": {"state": "active"}})],
            releases: vec![
                json!({"metadata": {"name": "hi", "labels": {"kubesphere.io/namespace": "web"}},
                    "spec": {"appID": "hello", "appVersionID": "hello-1.0.0", "appType": "yaml",
                        "values": base64::engine::general_purpose::STANDARD.encode(&placed)}}),
                json!({"metadata": {"name": "edited", "labels": {"kubesphere.io/namespace": "web"}},
                    "spec": {"appID": "hello", "appVersionID": "hello-1.0.0", "appType": "yaml",
                        "values": base64::engine::general_purpose::STANDARD.encode("kind: Other\n")}}),
            ],
            stored: BTreeMap::from([("hello-1.0.0".to_string(), manifests.as_bytes().to_vec())]),
            ..Live::default()
        };
        let e = render(&live, &opts());
        assert_eq!(
            e.files["apps/hello/1.0.0/manifests.yaml"],
            manifests.as_bytes()
        );
        assert!(file(&e, "apps/hello/app.yaml").contains("type: yaml"));
        assert!(!file(&e, "releases/host/web/hi.yaml").contains("values"));
        let releases: Vec<&str> = e
            .skipped
            .iter()
            .map(|s| s.object.as_str())
            .filter(|o| o.starts_with("ApplicationRelease/"))
            .collect();
        assert_eq!(releases, ["ApplicationRelease/edited"], "{:?}", e.skipped);
    }

    #[test]
    fn settings_name_the_contexts_and_the_s3_store_but_no_credentials() {
        let live = store();
        let e = render(
            &live,
            &Options {
                s3: Some(crate::catalog::S3Location {
                    endpoint: "http://minio.kubesphere-system:9000".into(),
                    bucket: "app-store".into(),
                    region: "eu-west-1".into(),
                    path_style: false,
                    access_key_id_env: "PITRIX_S3_ACCESS_KEY_ID".into(),
                    secret_access_key_env: "KS_S3_SECRET".into(),
                }),
                host_context: Some("ks-host".into()),
                contexts: BTreeSet::from(["ks-host".to_string(), "edge".to_string()]),
                ..opts()
            },
        );
        let settings = file(&e, "pitrix.toml");
        let parsed: crate::catalog::Settings = toml::from_str(&settings).unwrap();
        assert_eq!(
            parsed.clusters["host"].context.as_deref(),
            Some("ks-host"),
            "{settings}"
        );
        assert_eq!(parsed.clusters["edge"].context.as_deref(), Some("edge"));
        let s3 = parsed.storage.s3.expect("[storage.s3]").location();
        assert_eq!(s3.endpoint, "http://minio.kubesphere-system:9000");
        assert_eq!(s3.bucket, "app-store");
        assert_eq!(s3.region, "eu-west-1");
        assert!(!s3.path_style);
        assert_eq!(s3.access_key_id_env, "PITRIX_S3_ACCESS_KEY_ID");
        assert_eq!(s3.secret_access_key_env, "KS_S3_SECRET");
        assert!(!settings.contains("accessKeyIdEnv"), "{settings}");

        // Without a context of its name, a member cluster is declared bare, with why.
        let e = render(&live, &opts());
        let settings = file(&e, "pitrix.toml");
        let parsed: crate::catalog::Settings = toml::from_str(&settings).unwrap();
        assert_eq!(parsed.clusters["edge"].context, None);
        assert_eq!(parsed.clusters["host"].context, None);
        assert!(settings.contains("no context named \"edge\""), "{settings}");
        assert!(parsed.storage.s3.is_none());
    }

    #[test]
    fn unpack_in_s3_keeps_a_package_whose_bytes_would_change_and_says_why() {
        let mut live = store();
        // Same files as pitrix packs them, other bytes (another compression level).
        let mut files = crate::chart::ChartFiles::new();
        files
            .insert(
                "Chart.yaml",
                b"apiVersion: v2\nname: demo\nversion: 1.0.0\ndescription: Demo.\n".to_vec(),
            )
            .unwrap();
        let other_bytes = crate::chart::pack_with_level("demo", &files, 1);
        assert_ne!(other_bytes, crate::chart::pack("demo", &files));
        live.stored
            .insert("demo-abcde-1.0.0".into(), other_bytes.clone());
        let s3 = crate::catalog::S3Location {
            endpoint: "http://s3:9000".into(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            path_style: true,
            access_key_id_env: "A".into(),
            secret_access_key_env: "B".into(),
        };
        let with = |s3| Options {
            unpack: true,
            s3,
            ..opts()
        };
        let in_s3 = render(&live, &with(Some(s3)));
        assert_eq!(in_s3.files["apps/demo-abcde/1.0.0.tgz"], other_bytes);
        assert!(in_s3.files.contains_key("apps/demo-abcde/0.9.0/Chart.yaml"));
        let why: Vec<&Skipped> = in_s3
            .skipped
            .iter()
            .filter(|s| s.object == "ApplicationVersion/demo-abcde-1.0.0")
            .collect();
        assert_eq!(why.len(), 1, "{:?}", in_s3.skipped);
        assert!(why[0].reason.contains("never replaced"), "{:?}", why[0]);
        // In ConfigMaps, apply keeps a stored package with the same files: unpacked.
        let in_config_maps = render(&live, &with(None));
        assert!(
            in_config_maps
                .files
                .contains_key("apps/demo-abcde/1.0.0/Chart.yaml")
        );
    }

    #[test]
    fn images_durations_and_variable_names() {
        assert_eq!(image_extension(b"\x89PNG\r\n\x1a\nrest"), Some("png"));
        assert_eq!(image_extension(b"<?xml version='1.0'?><svg/>"), Some("svg"));
        assert_eq!(image_extension(b"GIF89a"), None);
        assert_eq!(duration(0), "0");
        assert_eq!(duration(180), "3m");
        assert_eq!(duration(7200), "2h");
        assert_eq!(duration(90), "90s");
        assert_eq!(env_part("shop-db.auth/x"), "SHOP_DB_AUTH_X");
    }
}
